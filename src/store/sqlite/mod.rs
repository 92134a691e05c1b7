//! The SQLite store: WAL mode with `synchronous=FULL`, so a commit is on disk when it
//! returns. One thread owns the connection; every operation is sent to it, and it runs all
//! operations that are waiting in one transaction (group commit: one fsync for many
//! concurrent deliveries). An operation's answer is sent only after its batch commits.
//!
//! Under load the disk's bandwidth, not the CPU, limits ingest: bodies are stored LZ4
//! compressed (compressed by the caller, in parallel), and a second connection checkpoints
//! the WAL in the background so that commits never wait for a checkpoint.

use super::migrate::{MIGRATIONS, latest};
use super::{Delivery, Inserted, Lease, NewDelivery};
use crate::metrics::InboxGauges;
use anyhow::{Context, Result, anyhow};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// The bot's records (notes, approvals, reviews, statuses, applies, ledger).
mod records;
mod requests;

/// The most operations committed together.
const MAX_BATCH: usize = 1024;

type Reply = Box<dyn FnOnce(Option<&str>) + Send>;
type Op = Box<dyn FnOnce(&Connection) -> Reply + Send>;

#[derive(Clone)]
pub struct SqliteStore {
    ops: mpsc::Sender<Op>,
}

/// How long a process waits for the previous owner of the store to let go (a restart).
const OWNER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The exclusive hold of one process on a SQLite store: an advisory lock (`flock`) on
/// `<database>.lock`, which says who holds it. Released when the process ends, however.
pub struct Owner {
    _file: std::fs::File,
}

/// Takes the store at `db` for this process, or says which process has it.
pub fn take_ownership(db: &std::path::Path) -> Result<Owner> {
    use std::io::Write;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let deadline = std::time::Instant::now() + OWNER_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = std::fs::read_to_string(&lock_path).unwrap_or_default();
                anyhow::bail!(
                    "the store {} is in use by another orgvend ({}): one SQLite file serves one process. Stop that one first, or run several replicas on PostgreSQL (store.url = \"postgres://…\")",
                    db.display(),
                    who.trim().replace('\n', ", ")
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "?".into());
    file.set_len(0)?;
    writeln!(
        file,
        "pid {} on {host}, since {}",
        std::process::id(),
        crate::clock::format_iso(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        )
    )?;
    file.flush()?;
    Ok(Owner { _file: file })
}

impl SqliteStore {
    /// Opens the database at `path` (created with its directory on first run), applies the
    /// migrations, and starts the writer and checkpoint threads.
    pub async fn open(path: PathBuf) -> Result<SqliteStore> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let (ops, rx) = mpsc::channel::<Op>();
        let path_for_checkpoints = path.clone();
        // The checkpointer stops when the writer's channel closes (every handle dropped).
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("orgvend-sqlite".into())
            .spawn(move || {
                let conn = match setup(&path) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                writer(conn, rx);
                drop(stop_tx);
            })
            .context("starting the SQLite writer thread")?;
        ready_rx
            .await
            .map_err(|_| anyhow!("the SQLite writer thread died"))??;
        std::thread::Builder::new()
            .name("orgvend-sqlite-checkpoint".into())
            .spawn(move || checkpointer(path_for_checkpoints, stop_rx))
            .context("starting the SQLite checkpoint thread")?;
        Ok(SqliteStore { ops })
    }

    /// Runs `f` in the writer's next transaction; answers once that transaction committed.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let op: Op = Box::new(move |conn| {
            // each operation in a savepoint of the batch's transaction: one that fails
            // leaves nothing behind (a review without its audit record), the others commit
            let result = match conn.execute_batch("SAVEPOINT op") {
                Err(e) => Err(e),
                Ok(()) => match f(conn) {
                    Ok(r) => conn.execute_batch("RELEASE op").map(|()| r),
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK TO op; RELEASE op");
                        Err(e)
                    }
                },
            };
            Box::new(move |commit_error: Option<&str>| {
                let answer = match (result, commit_error) {
                    (Err(e), _) => Err(anyhow!(e)),
                    (Ok(_), Some(e)) => Err(anyhow!("commit failed: {e}")),
                    (Ok(r), None) => Ok(r),
                };
                let _ = tx.send(answer);
            })
        });
        self.ops
            .send(op)
            .map_err(|_| anyhow!("the SQLite writer thread has stopped"))?;
        rx.await
            .map_err(|_| anyhow!("the SQLite writer thread dropped an operation"))?
    }

    pub async fn insert(&self, d: NewDelivery) -> Result<Inserted> {
        let (encoding, body) = encode_body(&d.body);
        self.call(move |c| {
            let state = if d.ignored.is_some() { "ignored" } else { "pending" };
            let id: Option<i64> = c
                .prepare_cached(
                    "INSERT INTO deliveries (dedup_key, received_at_ms, event_name, kind, action, ordering_key,
                        state, next_attempt_at_ms, last_error, headers, body_encoding, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?2, ?8, ?9, ?10, ?11)
                     ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                )?
                .query_row(
                    params![
                        d.dedup_key,
                        d.received_at_ms,
                        d.event_name,
                        d.kind,
                        d.action,
                        d.ordering_key,
                        state,
                        d.ignored,
                        d.headers,
                        encoding,
                        body
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => Ok(Inserted::New(id)),
                None => c
                    .prepare_cached("SELECT id FROM deliveries WHERE dedup_key = ?1")?
                    .query_row([&d.dedup_key], |r| r.get(0))
                    .map(Inserted::Duplicate),
            }
        })
        .await
    }

    pub async fn claim(&self, now_ms: i64, lease_ms: i64, by: String) -> Result<Option<Delivery>> {
        self.call(move |c| {
            let id: Option<i64> = c
                .prepare_cached(
                    "SELECT d.id FROM deliveries d
                     WHERE d.state IN ('pending', 'running')
                       AND ((d.state = 'pending' AND d.next_attempt_at_ms <= ?1)
                         OR (d.state = 'running' AND d.lease_until_ms < ?1))
                       AND (d.ordering_key IS NULL OR NOT EXISTS (
                             SELECT 1 FROM deliveries e
                             WHERE e.ordering_key = d.ordering_key AND e.id <> d.id
                               AND ((e.id < d.id AND e.state IN ('pending', 'running'))
                                 OR (e.state = 'running' AND e.lease_until_ms >= ?1))))
                     ORDER BY d.id LIMIT 1",
                )?
                .query_row([now_ms], |r| r.get(0))
                .optional()?;
            let Some(id) = id else { return Ok(None) };
            c.prepare_cached(
                "UPDATE deliveries SET state = 'running', attempts = attempts + 1, claim = claim + 1, lease_until_ms = ?2, claimed_by = ?3 WHERE id = ?1",
            )?
            .execute(params![id, now_ms + lease_ms, by])?;
            get(c, id)
        })
        .await
    }

    pub async fn complete(&self, lease: Lease, now_ms: i64) -> Result<bool> {
        self.call(move |c| {
            c.prepare_cached(
                "UPDATE deliveries SET state = 'done', lease_until_ms = NULL, finished_at_ms = ?3, last_error = NULL
                 WHERE id = ?1 AND claim = ?2 AND state = 'running'",
            )?
            .execute(params![lease.id, lease.claim, now_ms])
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn retry(&self, lease: Lease, at_ms: i64, error: &str) -> Result<bool> {
        let error = error.to_string();
        self.call(move |c| {
            c.prepare_cached(
                "UPDATE deliveries SET state = 'pending', lease_until_ms = NULL, next_attempt_at_ms = ?3, last_error = ?4
                 WHERE id = ?1 AND claim = ?2 AND state = 'running'",
            )?
            .execute(params![lease.id, lease.claim, at_ms, error])
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn park(&self, lease: Lease, now_ms: i64, error: &str) -> Result<bool> {
        let error = error.to_string();
        self.call(move |c| {
            c.prepare_cached(
                "UPDATE deliveries SET state = 'parked', lease_until_ms = NULL, finished_at_ms = ?3, last_error = ?4
                 WHERE id = ?1 AND claim = ?2 AND state = 'running'",
            )?
            .execute(params![lease.id, lease.claim, now_ms, error])
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn renew(&self, lease: Lease, now_ms: i64, lease_ms: i64) -> Result<bool> {
        self.call(move |c| {
            c.prepare_cached(
                "UPDATE deliveries SET lease_until_ms = ?3 WHERE id = ?1 AND claim = ?2 AND state = 'running'",
            )?
            .execute(params![lease.id, lease.claim, now_ms + lease_ms])
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn recover(&self, _me: String) -> Result<u64> {
        self.call(|c| {
            c.execute("UPDATE deliveries SET state = 'pending', lease_until_ms = NULL, claim = claim + 1 WHERE state = 'running'", [])
                .map(|n| n as u64)
        })
        .await
    }

    pub async fn has_work(&self, ordering_key: String, action: String) -> Result<bool> {
        self.call(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE ordering_key = ?1 AND action = ?2 AND state IN ('pending', 'running'))",
            )?
            .query_row(params![ordering_key, action], |r| r.get(0))
        })
        .await
    }

    pub async fn requeue(&self, id: i64, now_ms: i64) -> Result<bool> {
        self.call(move |c| {
            c.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = ?2, lease_until_ms = NULL,
                     finished_at_ms = NULL WHERE id = ?1 AND state IN ('parked', 'done') AND body_encoding <> 'dropped'",
                params![id, now_ms],
            )
            .map(|n| n == 1)
        })
        .await
    }

    pub async fn gauges(&self) -> Result<InboxGauges> {
        self.call(|c| {
            let mut g = InboxGauges::default();
            let mut stmt =
                c.prepare_cached("SELECT state, count(*) FROM deliveries GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                let n = n as u64;
                match state.as_str() {
                    "pending" => g.pending = n,
                    "running" => g.running = n,
                    "parked" => g.parked = n,
                    "done" => g.done = n,
                    "ignored" => g.ignored = n,
                    _ => {}
                }
            }
            Ok(g)
        })
        .await
    }

    pub async fn get(&self, id: i64) -> Result<Option<Delivery>> {
        self.call(move |c| get(c, id)).await
    }

    pub async fn list(&self, state: Option<String>, limit: i64) -> Result<Vec<Delivery>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deliveries WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![state, limit], row)?;
            rows.collect()
        })
        .await
    }

    /// Every table's columns: (table, column), sorted.
    pub async fn columns(&self) -> Result<Vec<(String, String)>> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1, 2",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    pub async fn schema_version(&self) -> Result<i64> {
        self.call(|c| {
            c.query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
        })
        .await
    }
}

use super::{COLUMNS, encode_body};

fn decode_body(encoding: &str, stored: Vec<u8>) -> rusqlite::Result<Vec<u8>> {
    super::decode_body(encoding, stored)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.to_string().into()))
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        received_at_ms: r.get(1)?,
        event_name: r.get(2)?,
        kind: r.get(3)?,
        action: r.get(4)?,
        ordering_key: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        next_attempt_at_ms: r.get(8)?,
        last_error: r.get(9)?,
        headers: r.get(10)?,
        body: decode_body(&r.get::<_, String>(11)?, r.get(12)?)?,
        claim: r.get(13)?,
    })
}

fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<Delivery>> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
}

fn setup(path: &PathBuf) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("opening SQLite database {}", path.display()))?;
    // WAL lets readers run beside the writer; FULL makes every commit durable.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints run on their own connection (see `checkpointer`), not inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn).with_context(|| format!("migrating {}", path.display()))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    anyhow::ensure!(
        current <= latest(),
        "the database is at schema version {current}, newer than this orgvend ({}): upgrade orgvend",
        latest()
    );
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sqlite)
            .with_context(|| format!("migration {} ({})", m.version, m.name))?;
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, now],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Copies the WAL into the database every half second, on a connection of its own, so that
/// commits on the writer connection never pause for it. PASSIVE: it never blocks the writer.
fn checkpointer(path: PathBuf, stop: mpsc::Receiver<()>) {
    let conn = match Connection::open(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "SQLite: the checkpoint connection did not open; the WAL will grow");
            return;
        }
    };
    let _ = conn.pragma_update(None, "busy_timeout", 10_000);
    let _ = conn.pragma_update(None, "synchronous", "FULL");
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(std::time::Duration::from_millis(500))
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite: checkpoint failed; will retry");
        }
    }
    // A last full checkpoint on the way out leaves a compact database behind.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// The writer thread: takes every waiting operation, runs them in one transaction, commits,
/// then answers each. Ends when every `SqliteStore` handle is dropped.
fn writer(mut conn: Connection, rx: mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                // Dropping the operations answers each of them with an error.
                tracing::error!(error = %e, "SQLite: cannot begin a transaction");
                drop(batch);
                continue;
            }
        };
        let replies: Vec<Reply> = batch.into_iter().map(|op| op(&tx)).collect();
        let commit_error = tx.commit().err().map(|e| e.to_string());
        if let Some(e) = &commit_error {
            tracing::error!(error = %e, "SQLite: commit failed; the batch is not stored");
        }
        for reply in replies {
            reply(commit_error.as_deref());
        }
    }
}
