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
//! TLS ([`Target::parse`]): libpq's `sslmode` and `sslrootcert` in the URL. A server that
//! offers TLS is always verified (chain and host name) against `sslrootcert`, or the system's
//! trust store without it; `sslmode=require` (or `verify-ca`, `verify-full`) refuses a server
//! without TLS; `sslmode=disable` never tries.

use super::migrate::{MIGRATIONS, latest};
use super::{
    ApplyRun, Delivery, Inserted, KnownAccount, Lease, NewDelivery, ReviewRecord, StepRecord,
};
use crate::metrics::InboxGauges;
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

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
    _client: Client,
}

/// Where to connect, and how: the parsed URL and its TLS settings.
struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// For messages: `sslrootcert`'s path, if given.
    root_cert: Option<String>,
}

impl Target {
    /// A `postgres://` URL with libpq's parameters. Besides tokio-postgres's own, it takes
    /// `sslrootcert=PATH` (a PEM bundle of the CAs to trust, e.g. RDS's) and `sslmode`
    /// `verify-ca` / `verify-full` (both the same as `require` here: verification is
    /// never off).
    fn parse(url: &str) -> Result<Target> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslrootcert" => {
                    let path = urlencoding::decode(value)
                        .map_err(|_| anyhow!("store URL: sslrootcert is not valid UTF-8"))?;
                    root_cert = Some(path.into_owned());
                }
                "sslmode" if matches!(value, "verify-ca" | "verify-full") => {
                    kept.push("sslmode=require".to_string())
                }
                _ => kept.push(pair.to_string()),
            }
        }
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        // tokio-postgres's messages name the option, never the URL's password
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| anyhow!("store URL: {} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=…&sslrootcert=…])", with_source(&e)))?;
        let tls = MakeRustlsConnect::new(tls_config(root_cert.as_deref())?);
        Ok(Target {
            config,
            tls,
            root_cert,
        })
    }
}

/// rustls with ring (the provider the rest of orgvend uses), verifying against `root_cert`'s
/// CAs or, without it, the platform's trust store.
fn tls_config(root_cert: Option<&str>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS for PostgreSQL")?;
    let Some(path) = root_cert else {
        let provider = builder.crypto_provider().clone();
        return Ok(match rustls_platform_verifier::Verifier::new(provider) {
            Ok(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
            // A machine without CA certificates (a slim container) still reaches a server
            // without TLS; one that offers TLS is refused with the hint to add sslrootcert.
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the system's trust store is empty: a PostgreSQL server that offers TLS will be refused unless the store URL names its CA (sslrootcert)"
                );
                builder
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            }
        });
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("store URL: sslrootcert {path}"))?
    {
        let cert = cert.with_context(|| format!("store URL: sslrootcert {path}"))?;
        roots
            .add(cert)
            .with_context(|| format!("store URL: sslrootcert {path}: a certificate"))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "store URL: sslrootcert {path} holds no PEM certificate"
    );
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// tokio-postgres's message with its cause (which it leaves out of its own).
fn with_source(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

async fn connect(target: &Target) -> Result<Client> {
    let (client, connection) = target
        .config
        .connect(target.tls.clone())
        .await
        .map_err(|e| {
            let hint = match &target.root_cert {
                _ if !e.to_string().contains("TLS") => String::new(),
                Some(path) => format!(" (the server's certificate is checked against {path})"),
                None => " (a server that offers TLS must present a certificate the system trusts: \
                         add sslrootcert=PATH, its CA in PEM, to the URL)"
                    .to_string(),
            };
            anyhow!("connecting to PostgreSQL: {}{hint}", with_source(&e))
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

impl PgStore {
    /// Connects, and applies the migrations (one replica at a time, under a lock).
    pub async fn open(url: &str) -> Result<PgStore> {
        let target = Target::parse(url)?;
        let mut client = connect(&target).await?;
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
    pub async fn apply_lock(&self) -> Result<ApplyLock> {
        let client = connect(&self.inner.target).await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&APPLY_LOCK])
            .await
            .context("waiting for the apply lock")?;
        Ok(ApplyLock { _client: client })
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

    pub async fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Delivery>> {
        let mut guard = self.tx_client().await?;
        let c = guard.as_mut().expect("connected");
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
            .await?;
        let row = tx
            .query_opt(
                "SELECT d.id FROM deliveries d
                 WHERE d.state IN ('pending', 'running')
                   AND ((d.state = 'pending' AND d.next_attempt_at_ms <= $1)
                     OR (d.state = 'running' AND d.lease_until_ms < $1))
                   AND (d.ordering_key IS NULL OR NOT EXISTS (
                         SELECT 1 FROM deliveries e
                         WHERE e.ordering_key = d.ordering_key AND e.id <> d.id
                           AND ((e.id < d.id AND e.state IN ('pending', 'running'))
                             OR (e.state = 'running' AND e.lease_until_ms >= $1))))
                 ORDER BY d.id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&now_ms],
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
                    "UPDATE deliveries SET state = 'running', attempts = attempts + 1, claim = claim + 1, lease_until_ms = $2
                     WHERE id = $1 RETURNING {}",
                    super::COLUMNS
                ),
                &[&id, &(now_ms + lease_ms)],
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

    pub async fn renew(&self, lease: Lease, lease_until_ms: i64) -> Result<bool> {
        self.exec(
            "UPDATE deliveries SET lease_until_ms = $3 WHERE id = $1 AND claim = $2 AND state = 'running'",
            &[&lease.id, &lease.claim, &lease_until_ms],
        )
        .await
        .map(|n| n == 1)
    }

    /// Several replicas share the inbox: a running delivery may be another replica's. Dead
    /// replicas' deliveries are claimed again when their leases run out.
    pub async fn recover(&self) -> Result<u64> {
        Ok(0)
    }

    pub async fn requeue(&self, id: i64, now_ms: i64) -> Result<bool> {
        let n = self
            .exec(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = $2, lease_until_ms = NULL,
                     finished_at_ms = NULL WHERE id = $1 AND state IN ('parked', 'done')",
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

    pub async fn bind_approvals(
        &self,
        project: String,
        iid: u64,
        approvers: Vec<(u64, String)>,
        head_sha: String,
        now_ms: i64,
    ) -> Result<Vec<(u64, String)>> {
        let mut guard = self.tx_client().await?;
        let c = guard.as_mut().expect("connected");
        let tx = c.transaction().await?;
        let iid = iid as i64;
        let ids: Vec<i64> = approvers.iter().map(|(id, _)| *id as i64).collect();
        // withdrawn approvals are forgotten
        tx.execute(
            "DELETE FROM approvals_seen WHERE project = $1 AND iid = $2 AND NOT (user_id = ANY($3))",
            &[&project, &iid, &ids],
        )
        .await?;
        let mut out = Vec::with_capacity(approvers.len());
        for (id, username) in &approvers {
            tx.execute(
                "INSERT INTO approvals_seen (project, iid, user_id, username, first_seen_sha, first_seen_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, iid, user_id) DO NOTHING",
                &[&project, &iid, &(*id as i64), username, &head_sha, &now_ms],
            )
            .await?;
            let r = tx
                .query_one(
                    "SELECT first_seen_sha FROM approvals_seen WHERE project = $1 AND iid = $2 AND user_id = $3",
                    &[&project, &iid, &(*id as i64)],
                )
                .await?;
            out.push((*id, r.get(0)));
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn record_review(&self, r: ReviewRecord) -> Result<()> {
        self.exec(
            "INSERT INTO reviews (project, iid, head_sha, verdict, reviewed_at_ms, facts) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project, iid, head_sha) DO UPDATE SET verdict = excluded.verdict,
                 reviewed_at_ms = excluded.reviewed_at_ms, facts = excluded.facts",
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
            "INSERT INTO apply_runs (merge_sha, project, iid, decision, reason, facts, started_at_ms, finished_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (merge_sha) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
                 facts = excluded.facts, finished_at_ms = excluded.finished_at_ms",
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

    pub async fn step(
        &self,
        merge_sha: String,
        account: String,
        step: String,
        state: String,
        detail: Option<String>,
        now_ms: i64,
    ) -> Result<()> {
        let attempt = i64::from(state == "intent");
        self.exec(
            "INSERT INTO apply_steps (merge_sha, account, step, state, detail, attempts, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (merge_sha, account, step) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                 attempts = apply_steps.attempts + $6, updated_at_ms = excluded.updated_at_ms",
            &[&merge_sha, &account, &step, &state, &detail, &attempt, &now_ms],
        )
        .await
        .map(drop)
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
                "SELECT email, name, account_id, create_request_id FROM accounts WHERE email = $1",
                &[&email],
            )
            .await?;
        Ok(row.map(|r| KnownAccount {
            email: r.get(0),
            name: r.get(1),
            account_id: r.get(2),
            create_request_id: r.get(3),
        }))
    }

    pub async fn put_known_account(
        &self,
        a: KnownAccount,
        merge_sha: String,
        now_ms: i64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO accounts (email, name, account_id, create_request_id, merge_sha, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (email) DO UPDATE SET name = excluded.name,
                 account_id = coalesce(excluded.account_id, accounts.account_id),
                 create_request_id = coalesce(excluded.create_request_id, accounts.create_request_id),
                 merge_sha = excluded.merge_sha, updated_at_ms = excluded.updated_at_ms",
            &[
                &a.email.to_lowercase(),
                &a.name,
                &a.account_id,
                &a.create_request_id,
                &merge_sha,
                &now_ms,
            ],
        )
        .await
        .map(drop)
    }

    pub async fn clear_create_request(&self, email: String) -> Result<()> {
        self.exec(
            "UPDATE accounts SET create_request_id = NULL WHERE email = $1 AND account_id IS NULL",
            &[&email],
        )
        .await
        .map(drop)
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
