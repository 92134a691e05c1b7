-- Accounts asked for by GitLab issue: who asked (the issue's author: the request MR's
-- author is orgvend, so this record is what keeps the requester's approval from counting),
-- the branch and MR orgvend opened for it (and that MR's state as last seen), the commit
-- orgvend made on the branch (a branch whose head is anything else is made again), everyone
-- whose words the request holds (JSON array of user ids, only ever added to: none of them
-- counts as an approver), and orgvend's one note on the issue.
CREATE TABLE requests (
    project       TEXT    NOT NULL,
    issue_iid     BIGINT NOT NULL,
    requester_id  BIGINT NOT NULL,
    requester     TEXT    NOT NULL,
    branch        TEXT    NOT NULL,
    mr_iid        BIGINT,
    mr_state      TEXT,
    commit_sha    TEXT,
    contributors  TEXT    NOT NULL DEFAULT '[]',
    note_id       BIGINT,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (project, issue_iid)
);
CREATE INDEX requests_by_mr ON requests (project, mr_iid);
CREATE INDEX requests_by_requester ON requests (project, requester_id);
