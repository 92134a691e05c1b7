-- The MR review: the one bot note per MR, approvals bound to the head they were given on,
-- the review of each head, and the last commit status set on each commit.
CREATE TABLE mr_notes (
    project  TEXT   NOT NULL,
    iid      BIGINT NOT NULL,
    note_id  BIGINT NOT NULL,
    PRIMARY KEY (project, iid)
);
CREATE TABLE approvals_seen (
    project          TEXT   NOT NULL,
    iid              BIGINT NOT NULL,
    user_id          BIGINT NOT NULL,
    username         TEXT   NOT NULL,
    first_seen_sha   TEXT   NOT NULL,
    first_seen_at_ms BIGINT NOT NULL,
    PRIMARY KEY (project, iid, user_id)
);
CREATE TABLE reviews (
    project        TEXT   NOT NULL,
    iid            BIGINT NOT NULL,
    head_sha       TEXT   NOT NULL,
    verdict        TEXT   NOT NULL,
    reviewed_at_ms BIGINT NOT NULL,
    facts          TEXT   NOT NULL,
    PRIMARY KEY (project, iid, head_sha)
);
CREATE TABLE commit_statuses (
    project     TEXT NOT NULL,
    sha         TEXT NOT NULL,
    state       TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (project, sha)
);
