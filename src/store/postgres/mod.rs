//! The PostgreSQL store, for several replicas on one database. The same tables as SQLite
//! (`migrations/postgres/`, kept in step by a test); what differs is what several processes
//! need:
//!
//! - **Claims** run in a transaction under a transaction-level advisory lock, so the rule
//!   "one delivery of an MR at a time, in order" holds across replicas, and the candidate row
//!   is taken `FOR UPDATE SKIP LOCKED`. A claim is a lease: a replica that dies stops
//!   renewing it, and another claims the delivery when it runs out.
//! - **Nothing is reset at start** (`recover` is a no-op): running deliveries may belong to a
//!   live replica; the dead ones' leases run out.
//! - **Applies** take a session-level advisory lock on a connection of their own
//!   ([`PgStore::apply_lock`]): two replicas never apply at once, and the lock goes with the
//!   connection if the replica dies.
//!
//! Connections: eight for single statements, used in turn (tokio-postgres pipelines
//! concurrent queries on each), and one for transactions; all are opened when first needed
//! and reopened when the server closed them.
//!
//! TLS ([`connect`]): libpq's `sslmode` and `sslrootcert` in the URL. A server that
//! offers TLS is always verified (chain and host name) against `sslrootcert`, or the system's
//! trust store without it; `sslmode=require` (or `verify-ca`, `verify-full`) refuses a server
//! without TLS; `sslmode=disable` never tries.

use super::migrate::{MIGRATIONS, latest};
use super::{Delivery, Inserted, Lease, NewDelivery};
use crate::metrics::InboxGauges;
use anyhow::{Context, Result};
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Row};

/// The URL, TLS and connections.
mod connect;
/// The bot's records (notes, approvals, reviews, statuses, applies, ledger).
mod records;
mod requests;

use connect::{Target, connect};

/// The database's clock, in milliseconds since the epoch.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Advisory lock keys (arbitrary, fixed): claims, migrations, applies.
const CLAIM_LOCK: i64 = 0x6f72_6776_0001;
const MIGRATE_LOCK: i64 = 0x6f72_6776_0002;
const APPLY_LOCK: i64 = 0x6f72_6776_0003;

#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    /// Connections for single statements, used in turn: concurrent commits on several
    /// connections share PostgreSQL's WAL flushes (its group commit).
    shared: Vec<Mutex<Option<Arc<Client>>>>,
    next: std::sync::atomic::AtomicUsize,
    tx: Mutex<Option<Client>>,
}

/// Connections for single statements.
const SHARED_CONNECTIONS: usize = 8;

/// Held while an apply runs; dropping it closes its connection, which releases the lock.
pub struct ApplyLock {
    client: Client,
}

/// Held while the process lives: its replica name is in use.
pub struct ReplicaLock {
    _client: Client,
}

/// The advisory lock space of replica names (two-key locks: space, hash of the name).
const REPLICA_LOCK_SPACE: i32 = 0x6f76_0004;

/// A replica name as a lock key (FNV-1a, folded to 32 bits).
fn replica_key(name: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32 as i32
}

impl ApplyLock {
    /// Whether this replica still holds the apply lock: its connection is alive and the
    /// server still counts the lock as this connection's. A dropped connection (a network
    /// cut, a server restart) loses the lock silently; an apply checks before every step.
    pub async fn ensure(&self) -> Result<()> {
        let held: bool = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                     AND pid = pg_backend_pid() AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid)",
                &[&APPLY_LOCK],
            )
            .await
            .context("checking the apply lock (its connection is gone)")?
            .get(0);
        anyhow::ensure!(
            held,
            "the apply lock is no longer held by this replica: the apply stops before changing anything more"
        );
        Ok(())
    }
}

/// Whether a connection's statements ran on different server sessions: a pooler in
/// transaction mode (PgBouncer's `pool_mode = transaction`) hands each statement to any
/// session, and session locks (the apply lock) then hold nothing.
pub fn pooled_per_transaction(backend_pids: &[i32]) -> bool {
    backend_pids.windows(2).any(|w| w[0] != w[1])
}

impl PgStore {
    /// Connects, and applies the migrations (one replica at a time, under a lock).
    pub async fn open(url: &str) -> Result<PgStore> {
        let target = Target::parse(url)?;
        let mut client = connect(&target).await?;
        // Session state must stay with the connection: not behind a transaction pooler.
        let mut pids = Vec::new();
        for _ in 0..4 {
            pids.push(
                client
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await?
                    .get::<_, i32>(0),
            );
        }
        anyhow::ensure!(
            !pooled_per_transaction(&pids),
            "PostgreSQL answers each statement from another session ({pids:?}): a pooler in transaction mode (PgBouncer pool_mode = transaction) sits in between, and orgvend's apply lock (a session lock) would hold nothing. Connect orgvend to PostgreSQL directly, or through session pooling"
        );
        migrate(&mut client).await.context("migrating PostgreSQL")?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                target,
                shared: std::iter::once(Mutex::new(Some(Arc::new(client))))
                    .chain((1..SHARED_CONNECTIONS).map(|_| Mutex::new(None)))
                    .collect(),
                next: std::sync::atomic::AtomicUsize::new(0),
                tx: Mutex::new(None),
            }),
        })
    }

    async fn client(&self) -> Result<Arc<Client>> {
        let i = self
            .inner
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.inner.shared.len();
        let mut guard = self.inner.shared[i].lock().await;
        if let Some(c) = guard.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(connect(&self.inner.target).await?);
        *guard = Some(c.clone());
        Ok(c)
    }

    /// The transaction connection, reopened when closed; held for the whole transaction.
    async fn tx_client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>> {
        let mut guard = self.inner.tx.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(connect(&self.inner.target).await?);
        }
        Ok(guard)
    }

    /// Waits until no other replica applies, then holds the organisation's apply lock.
    /// Takes this replica's name for the life of the process (a session lock on a connection
    /// of its own, released when the process dies): a restarted replica takes back its own
    /// running work at once, so no two live processes may share a name.
    pub async fn register_replica(&self, replica: &str) -> Result<ReplicaLock> {
        let client = connect(&self.inner.target).await?;
        let key = replica_key(replica);
        let taken: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&REPLICA_LOCK_SPACE, &key],
            )
            .await?
            .get(0);
        anyhow::ensure!(
            taken,
            "another live replica uses the name `{replica}`: give each replica its own server.replica_id (or ORGVEND_REPLICA_ID)"
        );
        Ok(ReplicaLock { _client: client })
    }

    pub async fn apply_lock(&self) -> Result<ApplyLock> {
        let client = connect(&self.inner.target).await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&APPLY_LOCK])
            .await
            .context("waiting for the apply lock")?;
        Ok(ApplyLock { client })
    }

    pub async fn insert(&self, d: NewDelivery) -> Result<Inserted> {
        let (encoding, body) = super::encode_body(&d.body);
        let state = if d.ignored.is_some() {
            "ignored"
        } else {
            "pending"
        };
        let c = self.client().await?;
        let row = c
            .query_opt(
                "INSERT INTO deliveries (dedup_key, received_at_ms, event_name, kind, action, ordering_key,
                    state, next_attempt_at_ms, last_error, headers, body_encoding, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $2, $8, $9, $10, $11)
                 ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                &[
                    &d.dedup_key,
                    &d.received_at_ms,
                    &d.event_name,
                    &d.kind,
                    &d.action,
                    &d.ordering_key,
                    &state,
                    &d.ignored,
                    &d.headers,
                    &encoding,
                    &body,
                ],
            )
            .await?;
        match row {
            Some(r) => Ok(Inserted::New(r.get(0))),
            None => {
                let r = c
                    .query_one(
                        "SELECT id FROM deliveries WHERE dedup_key = $1",
                        &[&d.dedup_key],
                    )
                    .await?;
                Ok(Inserted::Duplicate(r.get(0)))
            }
        }
    }

    pub async fn claim(&self, now_ms: i64, lease_ms: i64, by: String) -> Result<Option<Delivery>> {
        let mut guard = self.tx_client().await?;
        let c = guard.as_mut().expect("connected");
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
            .await?;
        // Leases are judged by the database's clock: replicas' clocks differ.
        let db_now: i64 = tx
            .query_one(&format!("SELECT {DB_NOW_MS}"), &[])
            .await?
            .get(0);
        let row = tx
            .query_opt(
                "SELECT d.id FROM deliveries d
                 WHERE d.state IN ('pending', 'running')
                   AND ((d.state = 'pending' AND d.next_attempt_at_ms <= $1)
                     OR (d.state = 'running' AND d.lease_until_ms < $2))
                   AND (d.ordering_key IS NULL OR NOT EXISTS (
                         SELECT 1 FROM deliveries e
                         WHERE e.ordering_key = d.ordering_key AND e.id <> d.id
                           AND ((e.id < d.id AND e.state IN ('pending', 'running'))
                             OR (e.state = 'running' AND e.lease_until_ms >= $2))))
                 ORDER BY d.id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&now_ms, &db_now],
            )
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let id: i64 = row.get(0);
        let claimed = tx
            .query_one(
                &format!(
                    "UPDATE deliveries SET state = 'running', attempts = attempts + 1, claim = claim + 1, lease_until_ms = $2, claimed_by = $3
                     WHERE id = $1 RETURNING {}",
                    super::COLUMNS
                ),
                &[&id, &(db_now + lease_ms), &by],
            )
            .await?;
        tx.commit().await?;
        delivery(&claimed).map(Some)
    }

    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        Ok(self.client().await?.execute(sql, params).await?)
    }

    pub async fn complete(&self, lease: Lease, now_ms: i64) -> Result<bool> {
        self.exec(
            "UPDATE deliveries SET state = 'done', lease_until_ms = NULL, finished_at_ms = $3, last_error = NULL
             WHERE id = $1 AND claim = $2 AND state = 'running'",
            &[&lease.id, &lease.claim, &now_ms],
        )
        .await
        .map(|n| n == 1)
    }

    pub async fn retry(&self, lease: Lease, at_ms: i64, error: &str) -> Result<bool> {
        self.exec(
            "UPDATE deliveries SET state = 'pending', lease_until_ms = NULL, next_attempt_at_ms = $3, last_error = $4
             WHERE id = $1 AND claim = $2 AND state = 'running'",
            &[&lease.id, &lease.claim, &at_ms, &error],
        )
        .await
        .map(|n| n == 1)
    }

    pub async fn park(&self, lease: Lease, now_ms: i64, error: &str) -> Result<bool> {
        self.exec(
            "UPDATE deliveries SET state = 'parked', lease_until_ms = NULL, finished_at_ms = $3, last_error = $4
             WHERE id = $1 AND claim = $2 AND state = 'running'",
            &[&lease.id, &lease.claim, &now_ms, &error],
        )
        .await
        .map(|n| n == 1)
    }

    pub async fn renew(&self, lease: Lease, _now_ms: i64, lease_ms: i64) -> Result<bool> {
        self.exec(
            &format!("UPDATE deliveries SET lease_until_ms = {DB_NOW_MS} + $3 WHERE id = $1 AND claim = $2 AND state = 'running'"),
            &[&lease.id, &lease.claim, &lease_ms],
        )
        .await
        .map(|n| n == 1)
    }

    /// Several replicas share the inbox: a running delivery may be another replica's, and
    /// those are claimed again when their leases run out. This replica's own (`me`, from
    /// before its restart: it runs nothing yet) are pending again at once, their claims
    /// fenced off.
    pub async fn recover(&self, me: String) -> Result<u64> {
        self.exec(
            "UPDATE deliveries SET state = 'pending', lease_until_ms = NULL, claim = claim + 1
             WHERE state = 'running' AND claimed_by = $1",
            &[&me],
        )
        .await
    }

    pub async fn has_work(&self, ordering_key: String, action: String) -> Result<bool> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE ordering_key = $1 AND action = $2 AND state IN ('pending', 'running'))",
                &[&ordering_key, &action],
            )
            .await?
            .get(0))
    }

    pub async fn requeue(&self, id: i64, now_ms: i64) -> Result<bool> {
        let n = self
            .exec(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = $2, lease_until_ms = NULL,
                     finished_at_ms = NULL WHERE id = $1 AND state IN ('parked', 'done') AND body_encoding <> 'dropped'",
                &[&id, &now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn gauges(&self) -> Result<InboxGauges> {
        let rows = self
            .client()
            .await?
            .query("SELECT state, count(*) FROM deliveries GROUP BY state", &[])
            .await?;
        let mut g = InboxGauges::default();
        for r in rows {
            let n = r.get::<_, i64>(1) as u64;
            match r.get::<_, &str>(0) {
                "pending" => g.pending = n,
                "running" => g.running = n,
                "parked" => g.parked = n,
                "done" => g.done = n,
                "ignored" => g.ignored = n,
                _ => {}
            }
        }
        Ok(g)
    }

    pub async fn get(&self, id: i64) -> Result<Option<Delivery>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {} FROM deliveries WHERE id = $1", super::COLUMNS),
                &[&id],
            )
            .await?;
        row.as_ref().map(delivery).transpose()
    }

    pub async fn list(&self, state: Option<String>, limit: i64) -> Result<Vec<Delivery>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {} FROM deliveries WHERE ($1::TEXT IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
                    super::COLUMNS
                ),
                &[&state, &limit],
            )
            .await?;
        rows.iter().map(delivery).collect()
    }

    pub async fn schema_version(&self) -> Result<i64> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations",
                &[],
            )
            .await?;
        Ok(r.get(0))
    }

    /// Every table's columns, `table.column type`, sorted (for the schema comparison).
    pub async fn columns(&self) -> Result<Vec<(String, String)>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
                 WHERE table_schema = current_schema() ORDER BY 1, 2",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

fn delivery(r: &Row) -> Result<Delivery> {
    let encoding: String = r.get(11);
    Ok(Delivery {
        id: r.get(0),
        received_at_ms: r.get(1),
        event_name: r.get(2),
        kind: r.get(3),
        action: r.get(4),
        ordering_key: r.get(5),
        state: r.get(6),
        attempts: r.get(7),
        next_attempt_at_ms: r.get(8),
        last_error: r.get(9),
        headers: r.get(10),
        body: super::decode_body(&encoding, r.get(12))?,
        claim: r.get(13),
    })
}

async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await?;
    // one replica migrates at a time; the others wait, then find nothing to do
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(
        current <= latest(),
        "the database is at schema version {current}, newer than this orgvend ({}): upgrade orgvend",
        latest()
    );
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.postgres)
            .await
            .with_context(|| format!("migration {} ({})", m.version, m.name))?;
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &now],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_transaction_pooler_shows_as_changing_sessions() {
        assert!(!super::pooled_per_transaction(&[41, 41, 41, 41]));
        assert!(super::pooled_per_transaction(&[41, 42, 41, 41]));
        assert!(!super::pooled_per_transaction(&[]));
    }
}
