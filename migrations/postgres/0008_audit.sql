-- The audit trail: one record per decision orgvend took — each review of a head, each start,
-- retry and outcome of an apply — with the facts it rested on (who approved and who did not
-- count, who merged, the policy's commit). `reviews` and `apply_runs` hold the latest state;
-- this table only grows: a redelivery or a retry adds a record and never rewrites an earlier
-- one. The trigger refuses every UPDATE, DELETE and TRUNCATE, whoever sends it.
CREATE TABLE audit (
    id       BIGSERIAL PRIMARY KEY,
    at_ms    BIGINT NOT NULL,
    project  TEXT   NOT NULL,
    iid      BIGINT NOT NULL,
    kind     TEXT   NOT NULL,
    sha      TEXT   NOT NULL,
    decision TEXT   NOT NULL,
    reason   TEXT,
    facts    TEXT   NOT NULL
);
CREATE INDEX audit_mr ON audit (project, iid, id);
CREATE FUNCTION orgvend_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION orgvend_audit_append_only();
-- (INSERT … ON CONFLICT DO UPDATE fires the statement's UPDATE trigger too)
CREATE INDEX deliveries_finished ON deliveries (state, finished_at_ms);
