-- The audit trail: one record per decision orgvend took — each review of a head, each start,
-- retry and outcome of an apply — with the facts it rested on (who approved and who did not
-- count, who merged, the policy's commit). `reviews` and `apply_runs` hold the latest state;
-- this table only grows: a redelivery or a retry adds a record and never rewrites an earlier
-- one. The triggers refuse every UPDATE and DELETE, whoever sends it.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    project  TEXT    NOT NULL,
    iid      INTEGER NOT NULL,
    kind     TEXT    NOT NULL,   -- review | apply
    sha      TEXT    NOT NULL,   -- the head reviewed, or the merge commit applied
    decision TEXT    NOT NULL,   -- the verdict, or the apply's decision
    reason   TEXT,
    facts    TEXT    NOT NULL    -- JSON
);
CREATE INDEX audit_mr ON audit (project, iid, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
-- INSERT OR REPLACE deletes the row it replaces without firing the delete trigger
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
-- Retention finds old finished deliveries by when they finished.
CREATE INDEX deliveries_finished ON deliveries (state, finished_at_ms);
