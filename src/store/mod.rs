//! The store: the durable inbox of deliveries (and, as later features arrive, notes, the
//! apply ledger and the audit trail). SQLite by default; one writer thread commits each batch
//! of operations in one transaction, so concurrent deliveries share one fsync.

mod migrate;
pub mod sqlite;

pub use migrate::latest as latest_migration;

use crate::metrics::InboxGauges;
use anyhow::Result;
use serde::Serialize;

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
}

/// The store, chosen by the URL in config.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
}

impl Store {
    /// Opens (creating where needed) and migrates the store at `url`.
    pub async fn open(url: &str) -> Result<Store> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Store::Sqlite(sqlite::SqliteStore::open(path.into()).await?));
        }
        anyhow::bail!("unsupported store URL (expected sqlite://PATH)")
    }

    pub async fn insert(&self, d: NewDelivery) -> Result<Inserted> {
        match self {
            Store::Sqlite(s) => s.insert(d).await,
        }
    }

    /// Claims the oldest due delivery whose MR has nothing older pending or running, for
    /// `lease_ms`. Deliveries whose lease ran out (a crashed worker) are claimed again.
    pub async fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Delivery>> {
        match self {
            Store::Sqlite(s) => s.claim(now_ms, lease_ms).await,
        }
    }

    pub async fn complete(&self, id: i64, now_ms: i64) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.complete(id, now_ms).await,
        }
    }

    pub async fn retry(&self, id: i64, at_ms: i64, error: &str) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.retry(id, at_ms, error).await,
        }
    }

    pub async fn park(&self, id: i64, now_ms: i64, error: &str) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.park(id, now_ms, error).await,
        }
    }

    /// Extends the lease of a long-running delivery.
    pub async fn renew(&self, id: i64, lease_until_ms: i64) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.renew(id, lease_until_ms).await,
        }
    }

    /// Run once at start by the only process using the store: deliveries it was running
    /// when it stopped are pending again.
    pub async fn recover(&self) -> Result<u64> {
        match self {
            Store::Sqlite(s) => s.recover().await,
        }
    }

    pub async fn gauges(&self) -> Result<InboxGauges> {
        match self {
            Store::Sqlite(s) => s.gauges().await,
        }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Delivery>> {
        match self {
            Store::Sqlite(s) => s.get(id).await,
        }
    }

    pub async fn list(&self, state: Option<&str>, limit: i64) -> Result<Vec<Delivery>> {
        match self {
            Store::Sqlite(s) => s.list(state.map(str::to_string), limit).await,
        }
    }

    /// Puts a parked (or finished) delivery back in line, attempts reset.
    pub async fn requeue(&self, id: i64, now_ms: i64) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.requeue(id, now_ms).await,
        }
    }

    /// The id of the bot's note on an MR, if orgvend created one.
    pub async fn note_id(&self, project: &str, iid: u64) -> Result<Option<u64>> {
        match self {
            Store::Sqlite(s) => s.note_id(project.to_string(), iid).await,
        }
    }

    pub async fn set_note_id(&self, project: &str, iid: u64, note_id: u64) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.set_note_id(project.to_string(), iid, note_id).await,
        }
    }

    /// Records the MR's current approvers: each keeps the head it was first seen on, and an
    /// approval that was withdrawn is forgotten (a new one starts afresh). Returns, for each
    /// current approver, the head it was first seen on.
    pub async fn bind_approvals(
        &self,
        project: &str,
        iid: u64,
        approvers: &[(u64, String)],
        head_sha: &str,
        now_ms: i64,
    ) -> Result<Vec<(u64, String)>> {
        match self {
            Store::Sqlite(s) => {
                s.bind_approvals(
                    project.to_string(),
                    iid,
                    approvers.to_vec(),
                    head_sha.to_string(),
                    now_ms,
                )
                .await
            }
        }
    }

    /// Keeps the review of one head: the verdict and the facts it rests on.
    pub async fn record_review(&self, r: ReviewRecord) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.record_review(r).await,
        }
    }

    /// The review of an MR's head, if there is one.
    pub async fn review(
        &self,
        project: &str,
        iid: u64,
        head_sha: &str,
    ) -> Result<Option<ReviewRecord>> {
        match self {
            Store::Sqlite(s) => {
                s.review(project.to_string(), iid, head_sha.to_string())
                    .await
            }
        }
    }

    /// The last commit status orgvend set on a commit: (state, description).
    pub async fn last_status(&self, project: &str, sha: &str) -> Result<Option<(String, String)>> {
        match self {
            Store::Sqlite(s) => s.last_status(project.to_string(), sha.to_string()).await,
        }
    }

    pub async fn set_last_status(
        &self,
        project: &str,
        sha: &str,
        state: &str,
        description: &str,
    ) -> Result<()> {
        match self {
            Store::Sqlite(s) => {
                s.set_last_status(
                    project.to_string(),
                    sha.to_string(),
                    state.to_string(),
                    description.to_string(),
                )
                .await
            }
        }
    }

    pub async fn apply_run(&self, merge_sha: &str) -> Result<Option<ApplyRun>> {
        match self {
            Store::Sqlite(s) => s.apply_run(merge_sha.to_string()).await,
        }
    }

    /// Starts (or restarts) the run of a merge commit, or records its outcome.
    pub async fn put_apply_run(&self, run: ApplyRun) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.put_apply_run(run).await,
        }
    }

    /// Records a step's state: `intent` before the AWS call (counting an attempt), `done` or
    /// `failed` after.
    pub async fn step(
        &self,
        merge_sha: &str,
        account: &str,
        step: &str,
        state: &str,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        match self {
            Store::Sqlite(s) => {
                s.step(
                    merge_sha.to_string(),
                    account.to_string(),
                    step.to_string(),
                    state.to_string(),
                    detail.map(str::to_string),
                    now_ms,
                )
                .await
            }
        }
    }

    pub async fn steps(&self, merge_sha: &str) -> Result<Vec<StepRecord>> {
        match self {
            Store::Sqlite(s) => s.steps(merge_sha.to_string()).await,
        }
    }

    pub async fn known_account(&self, email: &str) -> Result<Option<KnownAccount>> {
        match self {
            Store::Sqlite(s) => s.known_account(email.to_lowercase()).await,
        }
    }

    /// Records what is known of an account (a request id the moment AWS returns it, then the
    /// account id). Fields given as `None` keep their value.
    pub async fn put_known_account(
        &self,
        a: KnownAccount,
        merge_sha: &str,
        now_ms: i64,
    ) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.put_known_account(a, merge_sha.to_string(), now_ms).await,
        }
    }

    /// Forgets a failed creation request, so that the next attempt creates again.
    pub async fn clear_create_request(&self, email: &str) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.clear_create_request(email.to_lowercase()).await,
        }
    }

    /// Readiness: the store answers and every migration is applied.
    pub async fn ready(&self) -> Result<()> {
        let version = match self {
            Store::Sqlite(s) => s.schema_version().await?,
        };
        anyhow::ensure!(
            version == latest_migration(),
            "the store is at schema version {version}, this orgvend needs {}",
            latest_migration()
        );
        Ok(())
    }
}
