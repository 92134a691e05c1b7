-- The policies orgvend accepts as the rules in force: each was brought by an MR whose gate
-- passed with the policy's own approvals, or was the one in force when orgvend first judged
-- anything. A policy on the target branch that is not here was changed without approval.
CREATE TABLE accepted_policies (
    digest         TEXT    NOT NULL PRIMARY KEY,  -- sha256 of the policy files' paths and blob ids
    sha            TEXT    NOT NULL,              -- the commit it was accepted at
    source         TEXT    NOT NULL,              -- how: `first seen`, `!12 approved by …`
    files          TEXT,                          -- JSON [[path, text], …] when it loaded: the
                                                  -- last of these judges a repair of a broken one
    accepted_at_ms BIGINT  NOT NULL
);
-- Approvals are judged by GitLab's own times now, not by when orgvend first saw them.
DROP TABLE approvals_seen;
-- Set just before orgvend calls CreateAccount and cleared once the request id is kept: an
-- account with this email found while it is set was made by orgvend's interrupted request;
-- found while it is not, the account is someone else's and is never taken over silently.
ALTER TABLE accounts ADD COLUMN creating BOOLEAN NOT NULL DEFAULT FALSE;
