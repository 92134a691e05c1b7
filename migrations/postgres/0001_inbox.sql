-- The durable inbox: every authenticated delivery, stored before GitLab gets its 2xx.
-- The same tables and columns as migrations/sqlite/0001_inbox.sql (a test compares them).
CREATE TABLE deliveries (
    id                 BIGSERIAL PRIMARY KEY,
    -- Idempotency-Key / webhook-id / event UUID + body hash: a delivery is stored once
    dedup_key          TEXT    NOT NULL UNIQUE,
    received_at_ms     BIGINT  NOT NULL,
    event_name         TEXT    NOT NULL,           -- X-Gitlab-Event
    kind               TEXT    NOT NULL,           -- merge_request, note, push, invalid, ...
    action             TEXT    NOT NULL,
    -- deliveries with the same key (one MR) run one at a time, in id order
    ordering_key       TEXT,
    -- pending | running | done | parked | ignored
    state              TEXT    NOT NULL,
    attempts           BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT  NOT NULL,
    lease_until_ms     BIGINT,
    last_error         TEXT,
    finished_at_ms     BIGINT,
    headers            TEXT    NOT NULL,           -- JSON; never X-Gitlab-Token
    body_encoding      TEXT    NOT NULL,           -- lz4 | identity
    body               BYTEA   NOT NULL            -- the raw delivery, as encoded
);
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_order ON deliveries (ordering_key, id);
