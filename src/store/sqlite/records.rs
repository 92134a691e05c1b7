//! The bot's records on SQLite: the note of each MR, approvals bound to the head they were
//! seen on, reviews, commit statuses, apply runs, the step ledger and known accounts.

use super::SqliteStore;
use crate::store::{
    ApplyRun, AuditRecord, KnownAccount, Lease, Pruned, ReviewRecord, StepRecord, StepWrite,
};
use anyhow::Result;
use rusqlite::{OptionalExtension, params};

/// An audit record, stamped with the database's clock.
const AUDIT_INSERT: &str =
    "INSERT INTO audit (at_ms, project, iid, kind, sha, decision, reason, facts)
     VALUES (CAST(unixepoch('subsec') * 1000 AS INTEGER), ?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl SqliteStore {
    pub async fn note_id(&self, project: String, iid: u64) -> Result<Option<u64>> {
        self.call(move |c| {
            c.prepare_cached("SELECT note_id FROM mr_notes WHERE project = ?1 AND iid = ?2")?
                .query_row(params![project, iid as i64], |r| r.get::<_, i64>(0))
                .optional()
                .map(|o| o.map(|n| n as u64))
        })
        .await
    }

    pub async fn set_note_id(&self, project: String, iid: u64, note_id: u64) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO mr_notes (project, iid, note_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (project, iid) DO UPDATE SET note_id = excluded.note_id",
            )?
            .execute(params![project, iid as i64, note_id as i64])
            .map(drop)
        })
        .await
    }

    pub async fn policy_accepted(&self, digest: String) -> Result<Option<bool>> {
        self.call(move |c| {
            let any: bool = c
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM accepted_policies)")?
                .query_row([], |r| r.get(0))?;
            if !any {
                return Ok(None);
            }
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM accepted_policies WHERE digest = ?1)")?
                .query_row([&digest], |r| r.get(0))
                .map(Some)
        })
        .await
    }

    pub async fn accept_policy(
        &self,
        digest: String,
        sha: String,
        source: String,
        now_ms: i64,
        files: Option<String>,
    ) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO accepted_policies (digest, sha, source, accepted_at_ms, files) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (digest) DO NOTHING",
            )?
            .execute(params![digest, sha, source, now_ms, files])
            .map(drop)
        })
        .await
    }

    pub async fn last_loaded_policy(&self) -> Result<Option<(String, String)>> {
        self.call(|c| {
            c.prepare_cached(
                "SELECT sha, files FROM accepted_policies WHERE files IS NOT NULL ORDER BY accepted_at_ms DESC, rowid DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
        })
        .await
    }

    pub async fn state(&self, key: String) -> Result<Option<String>> {
        self.call(move |c| {
            c.prepare_cached("SELECT value FROM bot_state WHERE key = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// Sets `key` unless it is set; the value in force either way.
    pub async fn init_state(&self, key: String, value: String, now_ms: i64) -> Result<String> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO bot_state (key, value, updated_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
            )?
            .execute(params![key, value, now_ms])?;
            c.prepare_cached("SELECT value FROM bot_state WHERE key = ?1")?
                .query_row([&key], |r| r.get(0))
        })
        .await
    }

    pub async fn closures_since(&self, since_ms: i64) -> Result<u64> {
        self.call(move |c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM bot_state WHERE key LIKE 'closed:%' AND updated_at_ms >= ?1",
            )?
            .query_row([since_ms], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
        })
        .await
    }

    pub async fn set_state(&self, key: String, value: String, now_ms: i64) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO bot_state (key, value, updated_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![key, value, now_ms])
            .map(drop)
        })
        .await
    }

    pub async fn record_review(&self, r: ReviewRecord) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO reviews (project, iid, head_sha, verdict, reviewed_at_ms, facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (project, iid, head_sha) DO UPDATE SET verdict = excluded.verdict,
                     reviewed_at_ms = excluded.reviewed_at_ms, facts = excluded.facts",
            )?
            .execute(params![r.project, r.iid as i64, r.head_sha, r.verdict, r.reviewed_at_ms, r.facts])?;
            // the same transaction: no review without its audit record
            c.prepare_cached(AUDIT_INSERT)?
                .execute(params![r.project, r.iid as i64, "review", r.head_sha, r.verdict, None::<String>, r.facts])
                .map(drop)
        })
        .await
    }

    pub async fn audit(
        &self,
        project: String,
        iid: Option<u64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, at_ms, project, iid, kind, sha, decision, reason, facts FROM audit
                 WHERE project = ?1 AND (?2 IS NULL OR iid = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![project, iid.map(|i| i as i64), limit], |r| {
                Ok(AuditRecord {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    project: r.get(2)?,
                    iid: r.get::<_, i64>(3)? as u64,
                    kind: r.get(4)?,
                    sha: r.get(5)?,
                    decision: r.get(6)?,
                    reason: r.get(7)?,
                    facts: r.get(8)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Drops the bodies of deliveries finished (or ignored) before `bodies_before_ms`, and
    /// deletes those finished before `keys_before_ms` (their dedup keys go with them), a
    /// batch at a time. Pending, running and parked deliveries are never touched.
    pub async fn prune(
        &self,
        bodies_before_ms: i64,
        keys_before_ms: i64,
        batch: i64,
    ) -> Result<Pruned> {
        self.call(move |c| {
            let deleted = c
                .prepare_cached(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
                     WHERE state IN ('done', 'ignored') AND COALESCE(finished_at_ms, received_at_ms) < ?1 LIMIT ?2)
                     AND state IN ('done', 'ignored') AND COALESCE(finished_at_ms, received_at_ms) < ?1",
                )?
                .execute(params![keys_before_ms, batch])?;
            let bodies = c
                .prepare_cached(
                    "UPDATE deliveries SET body = X'', body_encoding = 'dropped' WHERE id IN (SELECT id FROM deliveries
                     WHERE state IN ('done', 'ignored') AND body_encoding <> 'dropped'
                       AND COALESCE(finished_at_ms, received_at_ms) < ?1 LIMIT ?2)
                     AND state IN ('done', 'ignored') AND COALESCE(finished_at_ms, received_at_ms) < ?1",
                )?
                .execute(params![bodies_before_ms, batch])?;
            Ok(Pruned {
                bodies: bodies as u64,
                deliveries: deleted as u64,
            })
        })
        .await
    }

    pub async fn oldest_running_apply(&self) -> Result<Option<i64>> {
        self.call(|c| {
            c.prepare_cached(
                "SELECT min(started_at_ms) FROM apply_runs WHERE decision = 'running'",
            )?
            .query_row([], |r| r.get(0))
        })
        .await
    }

    /// The bytes the database holds in use (its pages less the free ones).
    pub async fn size_bytes(&self) -> Result<u64> {
        self.call(|c| {
            let (pages, free, size): (i64, i64, i64) = c.query_row(
                "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()), (SELECT page_size FROM pragma_page_size())",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            Ok(((pages - free) * size) as u64)
        })
        .await
    }

    pub async fn review(
        &self,
        project: String,
        iid: u64,
        head_sha: String,
    ) -> Result<Option<ReviewRecord>> {
        self.call(move |c| {
            c.prepare_cached(
                "SELECT verdict, reviewed_at_ms, facts FROM reviews WHERE project = ?1 AND iid = ?2 AND head_sha = ?3",
            )?
            .query_row(params![project, iid as i64, head_sha], |r| {
                Ok(ReviewRecord {
                    project: project.clone(),
                    iid,
                    head_sha: head_sha.clone(),
                    verdict: r.get(0)?,
                    reviewed_at_ms: r.get(1)?,
                    facts: r.get(2)?,
                })
            })
            .optional()
        })
        .await
    }

    pub async fn last_status(
        &self,
        project: String,
        sha: String,
    ) -> Result<Option<(String, String)>> {
        self.call(move |c| {
            c.prepare_cached(
                "SELECT state, description FROM commit_statuses WHERE project = ?1 AND sha = ?2",
            )?
            .query_row(params![project, sha], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
        })
        .await
    }

    pub async fn set_last_status(
        &self,
        project: String,
        sha: String,
        state: String,
        description: String,
    ) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO commit_statuses (project, sha, state, description) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project, sha) DO UPDATE SET state = excluded.state, description = excluded.description",
            )?
            .execute(params![project, sha, state, description])
            .map(drop)
        })
        .await
    }

    pub async fn apply_run(&self, merge_sha: String) -> Result<Option<ApplyRun>> {
        self.call(move |c| {
            c.prepare_cached(
                "SELECT merge_sha, project, iid, decision, reason, facts, started_at_ms, finished_at_ms
                 FROM apply_runs WHERE merge_sha = ?1",
            )?
            .query_row([&merge_sha], |r| {
                Ok(ApplyRun {
                    merge_sha: r.get(0)?,
                    project: r.get(1)?,
                    iid: r.get::<_, i64>(2)? as u64,
                    decision: r.get(3)?,
                    reason: r.get(4)?,
                    facts: r.get(5)?,
                    started_at_ms: r.get(6)?,
                    finished_at_ms: r.get(7)?,
                })
            })
            .optional()
        })
        .await
    }

    pub async fn put_apply_run(&self, run: ApplyRun) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO apply_runs (merge_sha, project, iid, decision, reason, facts, started_at_ms, finished_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (merge_sha) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
                     facts = excluded.facts, finished_at_ms = excluded.finished_at_ms",
            )?
            .execute(params![
                run.merge_sha,
                run.project,
                run.iid as i64,
                run.decision,
                run.reason,
                run.facts,
                run.started_at_ms,
                run.finished_at_ms
            ])?;
            c.prepare_cached(AUDIT_INSERT)?
                .execute(params![run.project, run.iid as i64, "apply", run.merge_sha, run.decision, run.reason, run.facts])
                .map(drop)
        })
        .await
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
        self.call(move |c| {
            let attempt = i64::from(state == "intent");
            c.prepare_cached(
                "INSERT INTO apply_steps (merge_sha, account, step, state, detail, attempts, updated_at_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE ?8 IS NULL OR EXISTS (
                     SELECT 1 FROM deliveries WHERE id = ?8 AND claim = ?9 AND state = 'running')
                 ON CONFLICT (merge_sha, account, step) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                     attempts = apply_steps.attempts + ?6, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![merge_sha, account, step, state, detail, attempt, now_ms, fence.map(|f| f.id), fence.map(|f| f.claim)])
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn steps(&self, merge_sha: String) -> Result<Vec<StepRecord>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT account, step, state, detail, attempts FROM apply_steps WHERE merge_sha = ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([&merge_sha], |r| {
                Ok(StepRecord {
                    account: r.get(0)?,
                    step: r.get(1)?,
                    state: r.get(2)?,
                    detail: r.get(3)?,
                    attempts: r.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub async fn known_account(&self, email: String) -> Result<Option<KnownAccount>> {
        self.call(move |c| {
            c.prepare_cached(
                "SELECT email, name, account_id, create_request_id, creating FROM accounts WHERE email = ?1",
            )?
            .query_row([&email], |r| {
                Ok(KnownAccount {
                    email: r.get(0)?,
                    name: r.get(1)?,
                    account_id: r.get(2)?,
                    create_request_id: r.get(3)?,
                    creating: r.get(4)?,
                })
            })
            .optional()
        })
        .await
    }

    pub async fn put_known_account(
        &self,
        a: KnownAccount,
        merge_sha: String,
        now_ms: i64,
        fence: Option<Lease>,
    ) -> Result<bool> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO accounts (email, name, account_id, create_request_id, merge_sha, updated_at_ms, creating)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE ?8 IS NULL OR EXISTS (
                     SELECT 1 FROM deliveries WHERE id = ?8 AND claim = ?9 AND state = 'running')
                 ON CONFLICT (email) DO UPDATE SET name = excluded.name,
                     account_id = coalesce(excluded.account_id, accounts.account_id),
                     create_request_id = coalesce(excluded.create_request_id, accounts.create_request_id),
                     merge_sha = excluded.merge_sha, updated_at_ms = excluded.updated_at_ms,
                     creating = excluded.creating",
            )?
            .execute(params![a.email.to_lowercase(), a.name, a.account_id, a.create_request_id, merge_sha, now_ms, a.creating, fence.map(|f| f.id), fence.map(|f| f.claim)])
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn clear_create_request(&self, email: String) -> Result<()> {
        self.call(move |c| {
            c.prepare_cached("UPDATE accounts SET create_request_id = NULL, creating = 0 WHERE email = ?1 AND account_id IS NULL")?
                .execute([&email])
                .map(drop)
        })
        .await
    }
}
