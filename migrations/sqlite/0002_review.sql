-- The MR review: the one bot note per MR, approvals bound to the head they were given on,
-- the review of each head (the audit trail of what orgvend decided, on which facts), and the
-- last commit status set on each commit.
CREATE TABLE mr_notes (
    project  TEXT    NOT NULL,
    iid      INTEGER NOT NULL,
    note_id  INTEGER NOT NULL,
    PRIMARY KEY (project, iid)
);
CREATE TABLE approvals_seen (
    project          TEXT    NOT NULL,
    iid              INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    username         TEXT    NOT NULL,
    first_seen_sha   TEXT    NOT NULL,
    first_seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (project, iid, user_id)
);
CREATE TABLE reviews (
    project        TEXT    NOT NULL,
    iid            INTEGER NOT NULL,
    head_sha       TEXT    NOT NULL,
    verdict        TEXT    NOT NULL,
    reviewed_at_ms INTEGER NOT NULL,
    facts          TEXT    NOT NULL,    -- JSON: author, approvals counted and ignored, shas, summary
    PRIMARY KEY (project, iid, head_sha)
);
CREATE TABLE commit_statuses (
    project     TEXT NOT NULL,
    sha         TEXT NOT NULL,
    state       TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (project, sha)
);
