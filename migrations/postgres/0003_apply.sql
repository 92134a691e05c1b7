-- The apply ledger. Every step records its intent before the AWS call and its result after;
-- CreateAccount's request id is stored the moment AWS returns it.
CREATE TABLE apply_runs (
    merge_sha      TEXT   PRIMARY KEY,
    project        TEXT   NOT NULL,
    iid            BIGINT NOT NULL,
    decision       TEXT   NOT NULL,
    reason         TEXT,
    facts          TEXT   NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT
);
CREATE TABLE apply_steps (
    merge_sha     TEXT   NOT NULL,
    account       TEXT   NOT NULL,
    step          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    detail        TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merge_sha, account, step)
);
CREATE TABLE accounts (
    email             TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    account_id        TEXT,
    create_request_id TEXT,
    merge_sha         TEXT,
    updated_at_ms     BIGINT NOT NULL
);
