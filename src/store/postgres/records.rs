//! The bot's records on PostgreSQL: the note of each MR, approvals bound to the head they
//! were seen on, reviews, commit statuses, apply runs, the step ledger and known accounts.

use super::PgStore;
use crate::store::{
    ApplyRun, AuditRecord, KnownAccount, Lease, Pruned, ReviewRecord, StepRecord, StepWrite,
};
use anyhow::Result;

impl PgStore {
    pub async fn note_id(&self, project: String, iid: u64) -> Result<Option<u64>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT note_id FROM mr_notes WHERE project = $1 AND iid = $2",
                &[&project, &(iid as i64)],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    pub async fn set_note_id(&self, project: String, iid: u64, note_id: u64) -> Result<()> {
        self.exec(
            "INSERT INTO mr_notes (project, iid, note_id) VALUES ($1, $2, $3)
             ON CONFLICT (project, iid) DO UPDATE SET note_id = excluded.note_id",
            &[&project, &(iid as i64), &(note_id as i64)],
        )
        .await
        .map(drop)
    }

    pub async fn policy_accepted(&self, digest: String) -> Result<Option<bool>> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM accepted_policies),
                        EXISTS (SELECT 1 FROM accepted_policies WHERE digest = $1)",
                &[&digest],
            )
            .await?;
        Ok(r.get::<_, bool>(0).then(|| r.get(1)))
    }

    pub async fn accept_policy(
        &self,
        digest: String,
        sha: String,
        source: String,
        now_ms: i64,
        files: Option<String>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO accepted_policies (digest, sha, source, accepted_at_ms, files) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (digest) DO NOTHING",
            &[&digest, &sha, &source, &now_ms, &files],
        )
        .await
        .map(drop)
    }

    pub async fn last_loaded_policy(&self) -> Result<Option<(String, String)>> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT sha, files FROM accepted_policies WHERE files IS NOT NULL ORDER BY accepted_at_ms DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    pub async fn state(&self, key: String) -> Result<Option<String>> {
        Ok(self
            .client()
            .await?
            .query_opt("SELECT value FROM bot_state WHERE key = $1", &[&key])
            .await?
            .map(|r| r.get(0)))
    }

    /// Sets `key` unless it is set; the value in force either way.
    pub async fn init_state(&self, key: String, value: String, now_ms: i64) -> Result<String> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO bot_state (key, value, updated_at_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
            &[&key, &value, &now_ms],
        )
        .await?;
        Ok(
            c.query_one("SELECT value FROM bot_state WHERE key = $1", &[&key])
                .await?
                .get(0),
        )
    }

    pub async fn closures_since(&self, since_ms: i64) -> Result<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM bot_state WHERE key LIKE 'closed:%' AND updated_at_ms >= $1",
                &[&since_ms],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    pub async fn set_state(&self, key: String, value: String, now_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO bot_state (key, value, updated_at_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
            &[&key, &value, &now_ms],
        )
        .await
        .map(drop)
    }

    pub async fn record_review(&self, r: ReviewRecord) -> Result<()> {
        // one statement: no review without its audit record
        self.exec(
            "WITH kept AS (
                 INSERT INTO reviews (project, iid, head_sha, verdict, reviewed_at_ms, facts) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (project, iid, head_sha) DO UPDATE SET verdict = excluded.verdict,
                     reviewed_at_ms = excluded.reviewed_at_ms, facts = excluded.facts
                 RETURNING 1)
             INSERT INTO audit (at_ms, project, iid, kind, sha, decision, reason, facts)
             SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $1, $2, 'review', $3, $4, NULL, $6 FROM kept",
            &[&r.project, &(r.iid as i64), &r.head_sha, &r.verdict, &r.reviewed_at_ms, &r.facts],
        )
        .await
        .map(drop)
    }

    pub async fn review(
        &self,
        project: String,
        iid: u64,
        head_sha: String,
    ) -> Result<Option<ReviewRecord>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT verdict, reviewed_at_ms, facts FROM reviews WHERE project = $1 AND iid = $2 AND head_sha = $3",
                &[&project, &(iid as i64), &head_sha],
            )
            .await?;
        Ok(row.map(|r| ReviewRecord {
            project,
            iid,
            head_sha,
            verdict: r.get(0),
            reviewed_at_ms: r.get(1),
            facts: r.get(2),
        }))
    }

    pub async fn last_status(
        &self,
        project: String,
        sha: String,
    ) -> Result<Option<(String, String)>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT state, description FROM commit_statuses WHERE project = $1 AND sha = $2",
                &[&project, &sha],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    pub async fn set_last_status(
        &self,
        project: String,
        sha: String,
        state: String,
        description: String,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO commit_statuses (project, sha, state, description) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project, sha) DO UPDATE SET state = excluded.state, description = excluded.description",
            &[&project, &sha, &state, &description],
        )
        .await
        .map(drop)
    }

    pub async fn apply_run(&self, merge_sha: String) -> Result<Option<ApplyRun>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT merge_sha, project, iid, decision, reason, facts, started_at_ms, finished_at_ms
                 FROM apply_runs WHERE merge_sha = $1",
                &[&merge_sha],
            )
            .await?;
        Ok(row.map(|r| ApplyRun {
            merge_sha: r.get(0),
            project: r.get(1),
            iid: r.get::<_, i64>(2) as u64,
            decision: r.get(3),
            reason: r.get(4),
            facts: r.get(5),
            started_at_ms: r.get(6),
            finished_at_ms: r.get(7),
        }))
    }

    pub async fn put_apply_run(&self, run: ApplyRun) -> Result<()> {
        self.exec(
            "WITH kept AS (
                 INSERT INTO apply_runs (merge_sha, project, iid, decision, reason, facts, started_at_ms, finished_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (merge_sha) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
                     facts = excluded.facts, finished_at_ms = excluded.finished_at_ms
                 RETURNING 1)
             INSERT INTO audit (at_ms, project, iid, kind, sha, decision, reason, facts)
             SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $2, $3, 'apply', $1, $4, $5, $6 FROM kept",
            &[
                &run.merge_sha,
                &run.project,
                &(run.iid as i64),
                &run.decision,
                &run.reason,
                &run.facts,
                &run.started_at_ms,
                &run.finished_at_ms,
            ],
        )
        .await
        .map(drop)
    }

    pub async fn step(&self, w: StepWrite, fence: Option<Lease>) -> Result<bool> {
        let StepWrite {
            merge_sha,
            account,
            step,
            state,
            detail,
            now_ms,
        } = w;
        let attempt = i64::from(state == "intent");
        self.exec(
            "INSERT INTO apply_steps (merge_sha, account, step, state, detail, attempts, updated_at_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $8::bigint IS NULL OR EXISTS (
                 SELECT 1 FROM deliveries WHERE id = $8 AND claim = $9 AND state = 'running')
             ON CONFLICT (merge_sha, account, step) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                 attempts = apply_steps.attempts + $6, updated_at_ms = excluded.updated_at_ms",
            &[&merge_sha, &account, &step, &state, &detail, &attempt, &now_ms, &fence.map(|f| f.id), &fence.map(|f| f.claim)],
        )
        .await
        .map(|n| n == 1)
    }

    pub async fn steps(&self, merge_sha: String) -> Result<Vec<StepRecord>> {
        // ctid follows insertion order closely enough for a report; the order does not
        // carry meaning
        let rows = self
            .client()
            .await?
            .query(
                "SELECT account, step, state, detail, attempts FROM apply_steps WHERE merge_sha = $1
                 ORDER BY updated_at_ms, account, step",
                &[&merge_sha],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StepRecord {
                account: r.get(0),
                step: r.get(1),
                state: r.get(2),
                detail: r.get(3),
                attempts: r.get(4),
            })
            .collect())
    }

    pub async fn known_account(&self, email: String) -> Result<Option<KnownAccount>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT email, name, account_id, create_request_id, creating FROM accounts WHERE email = $1",
                &[&email],
            )
            .await?;
        Ok(row.map(|r| KnownAccount {
            email: r.get(0),
            name: r.get(1),
            account_id: r.get(2),
            create_request_id: r.get(3),
            creating: r.get(4),
        }))
    }

    pub async fn put_known_account(
        &self,
        a: KnownAccount,
        merge_sha: String,
        now_ms: i64,
        fence: Option<Lease>,
    ) -> Result<bool> {
        self.exec(
            "INSERT INTO accounts (email, name, account_id, create_request_id, merge_sha, updated_at_ms, creating)
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $8::bigint IS NULL OR EXISTS (
                 SELECT 1 FROM deliveries WHERE id = $8 AND claim = $9 AND state = 'running')
             ON CONFLICT (email) DO UPDATE SET name = excluded.name,
                 account_id = coalesce(excluded.account_id, accounts.account_id),
                 create_request_id = coalesce(excluded.create_request_id, accounts.create_request_id),
                 merge_sha = excluded.merge_sha, updated_at_ms = excluded.updated_at_ms,
                 creating = excluded.creating",
            &[
                &a.email.to_lowercase(),
                &a.name,
                &a.account_id,
                &a.create_request_id,
                &merge_sha,
                &now_ms,
                &a.creating,
                &fence.map(|f| f.id),
                &fence.map(|f| f.claim),
            ],
        )
        .await
        .map(|n| n == 1)
    }

    pub async fn clear_create_request(&self, email: String) -> Result<()> {
        self.exec(
            "UPDATE accounts SET create_request_id = NULL, creating = FALSE WHERE email = $1 AND account_id IS NULL",
            &[&email],
        )
        .await
        .map(drop)
    }

    pub async fn audit(
        &self,
        project: String,
        iid: Option<u64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, at_ms, project, iid, kind, sha, decision, reason, facts FROM audit
                 WHERE project = $1 AND ($2::BIGINT IS NULL OR iid = $2) ORDER BY id DESC LIMIT $3",
                &[&project, &iid.map(|i| i as i64), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                id: r.get(0),
                at_ms: r.get(1),
                project: r.get(2),
                iid: r.get::<_, i64>(3) as u64,
                kind: r.get(4),
                sha: r.get(5),
                decision: r.get(6),
                reason: r.get(7),
                facts: r.get(8),
            })
            .collect())
    }

    /// See the SQLite store's `prune`.
    pub async fn prune(
        &self,
        bodies_before_ms: i64,
        keys_before_ms: i64,
        batch: i64,
    ) -> Result<Pruned> {
        let deleted = self
            .exec(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
                 WHERE state IN ('done', 'ignored') AND COALESCE(finished_at_ms, received_at_ms) < $1 LIMIT $2)
                 AND state IN ('done', 'ignored') AND COALESCE(finished_at_ms, received_at_ms) < $1",
                &[&keys_before_ms, &batch],
            )
            .await?;
        let bodies = self
            .exec(
                "UPDATE deliveries SET body = ''::bytea, body_encoding = 'dropped' WHERE id IN (SELECT id FROM deliveries
                 WHERE state IN ('done', 'ignored') AND body_encoding <> 'dropped'
                   AND COALESCE(finished_at_ms, received_at_ms) < $1 LIMIT $2)
                 AND state IN ('done', 'ignored') AND COALESCE(finished_at_ms, received_at_ms) < $1",
                &[&bodies_before_ms, &batch],
            )
            .await?;
        Ok(Pruned {
            bodies,
            deliveries: deleted,
        })
    }

    pub async fn oldest_running_apply(&self) -> Result<Option<i64>> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT min(started_at_ms) FROM apply_runs WHERE decision = 'running'",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The database's size on disk.
    pub async fn size_bytes(&self) -> Result<u64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
