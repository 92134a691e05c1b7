-- The apply ledger. Every step records its intent before the AWS call and its result after;
-- CreateAccount's request id is stored the moment AWS returns it.
CREATE TABLE apply_runs (
    merge_sha      TEXT    PRIMARY KEY,
    project        TEXT    NOT NULL,
    iid            INTEGER NOT NULL,
    -- running | applied | failed | refused
    decision       TEXT    NOT NULL,
    reason         TEXT,
    -- JSON: who approved (counted and not), who merged, the parent commit, the plan summary
    facts          TEXT    NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE TABLE apply_steps (
    merge_sha     TEXT    NOT NULL,
    account       TEXT    NOT NULL,   -- the account's email, lower case
    step          TEXT    NOT NULL,   -- e.g. create_account, access_role:Admin
    -- intent | done | failed
    state         TEXT    NOT NULL,
    detail        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (merge_sha, account, step)
);
-- The accounts orgvend created or found, by email: the one identity AWS never reuses.
CREATE TABLE accounts (
    email             TEXT PRIMARY KEY,   -- lower case
    name              TEXT NOT NULL,
    account_id        TEXT,
    create_request_id TEXT,
    merge_sha         TEXT,
    updated_at_ms     INTEGER NOT NULL
);
