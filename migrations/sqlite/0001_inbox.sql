-- The durable inbox: every authenticated delivery, stored before GitLab gets its 2xx.
CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Idempotency-Key / webhook-id / event UUID + body hash: a delivery is stored once
    dedup_key          TEXT    NOT NULL UNIQUE,
    received_at_ms     INTEGER NOT NULL,
    event_name         TEXT    NOT NULL,           -- X-Gitlab-Event
    kind               TEXT    NOT NULL,           -- merge_request, note, push, invalid, ...
    action             TEXT    NOT NULL,
    -- deliveries with the same key (one MR) run one at a time, in id order
    ordering_key       TEXT,
    -- pending | running | done | parked | ignored
    state              TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    lease_until_ms     INTEGER,
    last_error         TEXT,
    finished_at_ms     INTEGER,
    headers            TEXT    NOT NULL,           -- JSON; never X-Gitlab-Token
    body_encoding      TEXT    NOT NULL,           -- lz4 | identity
    body               BLOB    NOT NULL            -- the raw delivery, as encoded
);
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_order ON deliveries (ordering_key, id);
