//! The store: the durable inbox of deliveries (and, as later features arrive, notes, the
//! apply ledger and the audit trail). SQLite by default; one writer thread commits each batch
//! of operations in one transaction, so concurrent deliveries share one fsync.

mod migrate;
pub mod postgres;
pub mod sqlite;

pub use migrate::latest as latest_migration;

use crate::metrics::InboxGauges;
use anyhow::Result;
use serde::Serialize;

/// One decision in the audit trail (see `migrations/*/0008_audit.sql`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    /// When it was written, by the database's clock.
    pub at_ms: i64,
    pub project: String,
    pub iid: u64,
    /// `review` or `apply`.
    pub kind: String,
    /// The head reviewed, or the merge commit applied.
    pub sha: String,
    pub decision: String,
    pub reason: Option<String>,
    /// JSON: who approved (counted and not), who merged, the policy's commit, the plan.
    pub facts: String,
}

/// What one pass of the retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub bodies: u64,
    pub deliveries: u64,
}

/// A delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub dedup_key: String,
    pub received_at_ms: i64,
    pub event_name: String,
    pub kind: String,
    pub action: String,
    pub ordering_key: Option<String>,
    /// Why it will not be processed; `None` for work.
    pub ignored: Option<String>,
    pub headers: String,
    /// The raw body, shared with the request (no copy).
    pub body: bytes::Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New(i64),
    /// Already stored under this id.
    Duplicate(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub received_at_ms: i64,
    pub event_name: String,
    pub kind: String,
    pub action: String,
    pub ordering_key: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub headers: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    /// How many times it was claimed: the number of the current claim.
    pub claim: i64,
}

impl Delivery {
    /// The hold its claimant has on it.
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            claim: self.claim,
        }
    }
}

/// A worker's hold on a claimed delivery: its id and the number of the claim. Every claim
/// takes the next number, so a worker whose lease ran out (its delivery claimed again by
/// another worker or replica since) can no longer renew or finish it: those calls return
/// `false` and change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub claim: i64,
}

/// What orgvend decided about one head of an MR, and on which facts (the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewRecord {
    pub project: String,
    pub iid: u64,
    pub head_sha: String,
    pub verdict: String,
    pub reviewed_at_ms: i64,
    /// JSON.
    pub facts: String,
}

/// One apply of a merge commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyRun {
    pub merge_sha: String,
    pub project: String,
    pub iid: u64,
    pub decision: String,
    pub reason: Option<String>,
    pub facts: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// A step's new state, for the ledger.
#[derive(Debug, Clone)]
pub struct StepWrite {
    pub merge_sha: String,
    pub account: String,
    pub step: String,
    pub state: String,
    pub detail: Option<String>,
    pub now_ms: i64,
}

/// One step of one account in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub account: String,
    pub step: String,
    pub state: String,
    pub detail: Option<String>,
    pub attempts: i64,
}

/// An account orgvend knows, by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct KnownAccount {
    pub email: String,
    pub name: String,
    pub account_id: Option<String>,
    pub create_request_id: Option<String>,
    /// orgvend is calling CreateAccount for this email and has no request id yet.
    pub creating: bool,
}

/// A ledger write refused because the delivery it was made for was claimed again since (a
/// fencing token): the worker that made it has lost its lease and must stop.
#[derive(Debug)]
pub struct FenceLost(pub Lease);

impl std::fmt::Display for FenceLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "delivery {} was claimed again since claim {}: this attempt no longer holds it and stops",
            self.0.id, self.0.claim
        )
    }
}

impl std::error::Error for FenceLost {}

/// A conditional write's outcome: refused when its fence is lost.
fn fenced(written: bool, fence: Option<Lease>) -> Result<()> {
    match (written, fence) {
        (false, Some(lease)) => Err(FenceLost(lease).into()),
        _ => Ok(()),
    }
}

/// The store, chosen by the URL in config.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// The same call on whichever backend the store is.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

/// Requests by issue: who asked, the branch and MR, the issue note.
mod requests;
pub use requests::RequestRecord;

/// A process's hold on the store, for its life: the SQLite file, or its replica name on
/// PostgreSQL.
pub enum Owner {
    Sqlite(sqlite::Owner),
    Postgres(postgres::ReplicaLock),
}

/// Held while an apply runs: with PostgreSQL, the lock that keeps other replicas from
/// applying at the same time.
pub enum ApplyLock {
    /// One process owns a SQLite store; the applier's own lock suffices.
    Local,
    Postgres(postgres::ApplyLock),
}

impl ApplyLock {
    /// Whether the lock still holds (checked before every step of an apply).
    pub async fn ensure(&self) -> Result<()> {
        match self {
            ApplyLock::Local => Ok(()),
            ApplyLock::Postgres(l) => l.ensure().await,
        }
    }
}

impl Store {
    /// Opens (creating where needed) and migrates the store at `url`.
    pub async fn open(url: &str) -> Result<Store> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Store::Sqlite(sqlite::SqliteStore::open(path.into()).await?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store::Postgres(postgres::PgStore::open(url).await?));
        }
        anyhow::bail!("unsupported store URL (expected sqlite://PATH or postgres://…)")
    }

    /// [`Store::open`] for the process that works the inbox (`orgvend serve`): a SQLite
    /// store is taken for this process alone (two processes on one file would reset each
    /// other's work and apply twice); a second one is refused, naming the first. PostgreSQL
    /// is shared by design. The hold ends with the process.
    /// On PostgreSQL, the replica's name `replica` is taken for the process (a second live
    /// process with the same name is refused).
    pub async fn open_owned(url: &str, replica: &str) -> Result<(Store, Owner)> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = std::path::PathBuf::from(path);
            let owner =
                tokio::task::spawn_blocking(move || sqlite::take_ownership(&path)).await??;
            return Ok((Store::open(url).await?, Owner::Sqlite(owner)));
        }
        let store = Store::open(url).await?;
        let owner = match &store {
            Store::Postgres(p) => Owner::Postgres(p.register_replica(replica).await?),
            Store::Sqlite(_) => unreachable!("opened from a postgres URL"),
        };
        Ok((store, owner))
    }

    /// Whether several processes may share this store.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Waits until no other process applies, and holds that until the guard is dropped.
    pub async fn apply_lock(&self) -> Result<ApplyLock> {
        match self {
            Store::Sqlite(_) => Ok(ApplyLock::Local),
            Store::Postgres(p) => Ok(ApplyLock::Postgres(p.apply_lock().await?)),
        }
    }

    /// Every table's columns, sorted: (table, column). For comparing the backends' schemas.
    pub async fn columns(&self) -> Result<Vec<(String, String)>> {
        each!(self, s => s.columns().await)
    }

    pub async fn insert(&self, d: NewDelivery) -> Result<Inserted> {
        each!(self, s => s.insert(d).await)
    }

    /// Claims the oldest due delivery whose MR has nothing older pending or running, for
    /// `lease_ms`. Deliveries whose lease ran out (a crashed worker) are claimed again.
    pub async fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Delivery>> {
        self.claim_as(now_ms, lease_ms, "").await
    }

    /// [`Store::claim`] for the replica `by` (kept with the claim).
    pub async fn claim_as(&self, now_ms: i64, lease_ms: i64, by: &str) -> Result<Option<Delivery>> {
        each!(self, s => s.claim(now_ms, lease_ms, by.to_string()).await)
    }

    /// Whether deliveries of `ordering_key` with `action` wait or run now (reconciliation
    /// queues nothing twice).
    pub async fn has_work(&self, ordering_key: &str, action: &str) -> Result<bool> {
        each!(self, s => s.has_work(ordering_key.to_string(), action.to_string()).await)
    }

    /// Done. `false` (and nothing changed) when the lease was lost to a later claim; so
    /// for `retry`, `park` and `renew`.
    pub async fn complete(&self, lease: Lease, now_ms: i64) -> Result<bool> {
        each!(self, s => s.complete(lease, now_ms).await)
    }

    /// Failed; pending again from `at_ms`.
    pub async fn retry(&self, lease: Lease, at_ms: i64, error: &str) -> Result<bool> {
        each!(self, s => s.retry(lease, at_ms, error).await)
    }

    /// Failed for the last time: kept for an operator, not retried.
    pub async fn park(&self, lease: Lease, now_ms: i64, error: &str) -> Result<bool> {
        each!(self, s => s.park(lease, now_ms, error).await)
    }

    /// Extends the lease of a long-running delivery.
    /// Extends the lease by `lease_ms` from now: the caller's `now_ms` on SQLite (one
    /// process, one clock), the database's own clock on PostgreSQL (replicas' clocks differ).
    pub async fn renew(&self, lease: Lease, now_ms: i64, lease_ms: i64) -> Result<bool> {
        each!(self, s => s.renew(lease, now_ms, lease_ms).await)
    }

    /// Run once at start by replica `me`. SQLite, which one process owns: deliveries it was
    /// running when it stopped are pending again. PostgreSQL, shared: those `me` was running
    /// (its own, from before its restart); other replicas' run out with their leases.
    pub async fn recover(&self, me: &str) -> Result<u64> {
        each!(self, s => s.recover(me.to_string()).await)
    }

    pub async fn gauges(&self) -> Result<InboxGauges> {
        each!(self, s => s.gauges().await)
    }

    pub async fn get(&self, id: i64) -> Result<Option<Delivery>> {
        each!(self, s => s.get(id).await)
    }

    pub async fn list(&self, state: Option<&str>, limit: i64) -> Result<Vec<Delivery>> {
        each!(self, s => s.list(state.map(str::to_string), limit).await)
    }

    /// Puts a parked (or finished) delivery back in line, attempts reset.
    pub async fn requeue(&self, id: i64, now_ms: i64) -> Result<bool> {
        each!(self, s => s.requeue(id, now_ms).await)
    }

    /// The id of the bot's note on an MR, if orgvend created one.
    pub async fn note_id(&self, project: &str, iid: u64) -> Result<Option<u64>> {
        each!(self, s => s.note_id(project.to_string(), iid).await)
    }

    pub async fn set_note_id(&self, project: &str, iid: u64, note_id: u64) -> Result<()> {
        each!(self, s => s.set_note_id(project.to_string(), iid, note_id).await)
    }

    /// Whether the policy with this digest was accepted as the rules in force; `None` when
    /// no policy was ever accepted (the first run).
    pub async fn policy_accepted(&self, digest: &str) -> Result<Option<bool>> {
        each!(self, s => s.policy_accepted(digest.to_string()).await)
    }

    /// Accepts a policy as the rules in force (kept: an accepted policy stays accepted).
    /// `files` (JSON `[[path, text], …]`) is kept when the policy loaded: the last such
    /// judges an MR that repairs a policy that no longer loads.
    pub async fn accept_policy(
        &self,
        digest: &str,
        sha: &str,
        source: &str,
        now_ms: i64,
        files: Option<&str>,
    ) -> Result<()> {
        crate::hold::check()?;
        each!(self, s => {
            s.accept_policy(
                digest.to_string(),
                sha.to_string(),
                source.to_string(),
                now_ms,
                files.map(str::to_string),
            )
            .await
        })
    }

    /// The last accepted policy that loaded: (commit, files as JSON).
    pub async fn last_loaded_policy(&self) -> Result<Option<(String, String)>> {
        each!(self, s => s.last_loaded_policy().await)
    }

    /// A value the bot keeps about itself.
    pub async fn state(&self, key: &str) -> Result<Option<String>> {
        each!(self, s => s.state(key.to_string()).await)
    }

    /// Sets `key` to `value` unless it is set (by this or another replica); returns the
    /// value in force.
    pub async fn init_state(&self, key: &str, value: &str, now_ms: i64) -> Result<String> {
        each!(self, s => s.init_state(key.to_string(), value.to_string(), now_ms).await)
    }

    /// Accounts orgvend counted as closed (a `closed:<id>` mark, set once per account before
    /// its close) since `since_ms`: what counts against AWS's rolling 30-day closure quota.
    pub async fn closures_since(&self, since_ms: i64) -> Result<u64> {
        each!(self, s => s.closures_since(since_ms).await)
    }

    /// Sets `key` to `value`, whatever it was.
    pub async fn set_state(&self, key: &str, value: &str, now_ms: i64) -> Result<()> {
        each!(self, s => s.set_state(key.to_string(), value.to_string(), now_ms).await)
    }

    /// Keeps the review of one head: the verdict and the facts it rests on.
    pub async fn record_review(&self, r: ReviewRecord) -> Result<()> {
        // decisions are recorded only while the attempt holds its delivery
        crate::hold::check()?;
        each!(self, s => s.record_review(r).await)
    }

    /// The audit trail of the project (of one MR with `iid`), newest first.
    pub async fn audit(
        &self,
        project: &str,
        iid: Option<u64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        each!(self, s => s.audit(project.to_string(), iid, limit).await)
    }

    /// Applies the retention: bodies of deliveries finished before `bodies_before_ms` are
    /// dropped, deliveries finished before `keys_before_ms` deleted (with their dedup keys);
    /// at most `batch` of each per call. Work that waits, runs or is parked is kept whole.
    pub async fn prune(
        &self,
        bodies_before_ms: i64,
        keys_before_ms: i64,
        batch: i64,
    ) -> Result<Pruned> {
        each!(self, s => s.prune(bodies_before_ms, keys_before_ms, batch).await)
    }

    /// When the oldest apply still running started, if one is.
    pub async fn oldest_running_apply(&self) -> Result<Option<i64>> {
        each!(self, s => s.oldest_running_apply().await)
    }

    /// How many bytes the store takes.
    pub async fn size_bytes(&self) -> Result<u64> {
        each!(self, s => s.size_bytes().await)
    }

    /// The review of an MR's head, if there is one.
    pub async fn review(
        &self,
        project: &str,
        iid: u64,
        head_sha: &str,
    ) -> Result<Option<ReviewRecord>> {
        each!(self, s => {
            s.review(project.to_string(), iid, head_sha.to_string())
                .await
        })
    }

    /// The last commit status orgvend set on a commit: (state, description).
    pub async fn last_status(&self, project: &str, sha: &str) -> Result<Option<(String, String)>> {
        each!(self, s => s.last_status(project.to_string(), sha.to_string()).await)
    }

    pub async fn set_last_status(
        &self,
        project: &str,
        sha: &str,
        state: &str,
        description: &str,
    ) -> Result<()> {
        each!(self, s => {
            s.set_last_status(
                project.to_string(),
                sha.to_string(),
                state.to_string(),
                description.to_string(),
            )
            .await
        })
    }

    pub async fn apply_run(&self, merge_sha: &str) -> Result<Option<ApplyRun>> {
        each!(self, s => s.apply_run(merge_sha.to_string()).await)
    }

    /// Starts (or restarts) the run of a merge commit, or records its outcome.
    pub async fn put_apply_run(&self, run: ApplyRun) -> Result<()> {
        crate::hold::check()?;
        each!(self, s => s.put_apply_run(run).await)
    }

    /// Records a step's state: `intent` before the AWS call (counting an attempt), `done` or
    /// `failed` after. With a `fence`, only while that claim holds ([`FenceLost`] otherwise).
    pub async fn step(&self, w: StepWrite, fence: Option<Lease>) -> Result<()> {
        let written = each!(self, s => s.step(w, fence).await)?;
        fenced(written, fence)
    }

    pub async fn steps(&self, merge_sha: &str) -> Result<Vec<StepRecord>> {
        each!(self, s => s.steps(merge_sha.to_string()).await)
    }

    pub async fn known_account(&self, email: &str) -> Result<Option<KnownAccount>> {
        each!(self, s => s.known_account(email.to_lowercase()).await)
    }

    /// Records what is known of an account (a request id the moment AWS returns it, then the
    /// account id). Fields given as `None` keep their value.
    pub async fn put_known_account(
        &self,
        a: KnownAccount,
        merge_sha: &str,
        now_ms: i64,
        fence: Option<Lease>,
    ) -> Result<()> {
        let written =
            each!(self, s => s.put_known_account(a, merge_sha.to_string(), now_ms, fence).await)?;
        fenced(written, fence)
    }

    /// Forgets a failed creation request, so that the next attempt creates again.
    pub async fn clear_create_request(&self, email: &str) -> Result<()> {
        each!(self, s => s.clear_create_request(email.to_lowercase()).await)
    }

    /// Readiness: the store answers and every migration is applied.
    pub async fn ready(&self) -> Result<()> {
        let version = each!(self, s => s.schema_version().await?);
        anyhow::ensure!(
            version == latest_migration(),
            "the store is at schema version {version}, this orgvend needs {}",
            latest_migration()
        );
        Ok(())
    }
}

/// The delivery columns, in the order both backends read them.
pub(crate) const COLUMNS: &str = "id, received_at_ms, event_name, kind, action, ordering_key, state, attempts, \
                       next_attempt_at_ms, last_error, headers, body_encoding, body, claim";

/// Bodies under this size are stored as they are: compression would not pay.
const COMPRESS_FROM: usize = 512;

/// A body as stored: its encoding and bytes.
pub(crate) fn encode_body(body: &[u8]) -> (&'static str, Vec<u8>) {
    if body.len() < COMPRESS_FROM {
        return ("identity", body.to_vec());
    }
    ("lz4", lz4_flex::block::compress_prepend_size(body))
}

pub(crate) fn decode_body(encoding: &str, stored: Vec<u8>) -> Result<Vec<u8>> {
    match encoding {
        "identity" => Ok(stored),
        // dropped by the retention (`store.body_retention_days`)
        "dropped" => Ok(Vec::new()),
        "lz4" => lz4_flex::block::decompress_size_prepended(&stored)
            .map_err(|e| anyhow::anyhow!("a stored body does not decompress: {e}")),
        other => Err(anyhow::anyhow!("unknown body encoding `{other}`")),
    }
}
