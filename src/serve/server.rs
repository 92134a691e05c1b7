//! `orgvend serve`: the HTTP front (webhook, health, readiness, metrics) and the worker,
//! sharing one [`Ctx`]. Shutdown on SIGTERM/SIGINT stops accepting, lets in-flight requests
//! finish their writes, lets running jobs finish (up to the grace period), then exits.

use super::ctx::Ctx;
use super::webhook;
use super::worker::{Handler, Worker};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::StoreGauges;
use crate::store::Store;
use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub const WEBHOOK_PATH: &str = "/webhooks/gitlab";

pub fn app(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(webhook::receive))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

async fn readyz(State(ctx): State<Arc<Ctx>>) -> Response {
    match ctx.store.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {e:#}\n"),
        )
            .into_response(),
    }
}

/// How long the store's gauges are served from the cache.
const GAUGES_FRESH: Duration = Duration::from_secs(5);

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    let mut cache = ctx.gauges_cache.lock().await;
    if cache
        .as_ref()
        .is_none_or(|c| c.read_at.elapsed() >= GAUGES_FRESH)
    {
        let inbox = ctx.store.gauges().await.ok();
        let store = match (
            ctx.store.oldest_running_apply().await,
            ctx.store.size_bytes().await,
        ) {
            (Ok(oldest_running_apply_ms), Ok(bytes)) => Some(StoreGauges {
                oldest_running_apply_ms,
                bytes,
            }),
            _ => None,
        };
        *cache = Some(super::ctx::CachedGauges {
            read_at: std::time::Instant::now(),
            inbox,
            store,
        });
    }
    let c = cache.as_ref().expect("filled above");
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.metrics.render(c.inbox.as_ref(), c.store.as_ref()),
    )
        .into_response()
}

/// Opens the store, recovers work a previous process left running, and builds the context.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Ctx>> {
    let (store, owner) = Store::open_owned(config.store.url.expose(), &config.server.replica())
        .await
        .context("opening the store")?;
    let recovered = store.recover(&config.server.replica()).await?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "deliveries left running by a previous process are pending again"
        );
    }
    let mut ctx = Ctx::new(config, store, clock)?;
    ctx.owner = Some(owner);
    Ok(Arc::new(ctx))
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn serve<H: Handler>(ctx: Arc<Ctx>, handler: H) -> Result<()> {
    let listen = ctx.config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    run(ctx, handler, listener, shutdown_signal()).await
}

/// Serves on `listener` until `stop` completes (tests pass their own).
pub async fn run<H: Handler>(
    ctx: Arc<Ctx>,
    handler: H,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let handler = Arc::new(handler);
    handler.start().await.context("starting the handler")?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %bound, project = ?ctx.config.gitlab.project, replica = %ctx.replica, "orgvend serving");
    let worker = Arc::new(Worker::new(ctx.clone(), handler.clone()));
    let worker_task = tokio::spawn(worker.run(shutdown_rx.clone()));
    let retention_task = tokio::spawn(retention_loop(ctx.clone(), shutdown_rx.clone()));
    let reconcile_task = tokio::spawn(reconcile_loop(ctx.clone(), handler, shutdown_rx));
    let limits = super::front::Limits::of(&ctx.config.server);
    // One grace period for both, from the moment the stop comes: the worker takes no new
    // work while the front lets its open requests finish.
    let stopped_at = Arc::new(std::sync::OnceLock::new());
    let stop = {
        let stopped_at = stopped_at.clone();
        async move {
            stop.await;
            let _ = stopped_at.set(tokio::time::Instant::now());
            let _ = shutdown_tx.send(true);
            tracing::info!("stopped accepting; waiting for open requests and running jobs");
        }
    };
    super::front::serve(listener, app(ctx.clone()), limits, stop)
        .await
        .context("serving HTTP")?;
    let grace = Duration::from_secs(ctx.config.server.shutdown_grace_seconds);
    let deadline = stopped_at
        .get()
        .copied()
        .unwrap_or_else(tokio::time::Instant::now)
        + grace;
    if tokio::time::timeout_at(deadline, worker_task)
        .await
        .is_err()
    {
        tracing::warn!("jobs still running after the grace period; they resume after restart");
    }
    reconcile_task.abort();
    retention_task.abort();
    tracing::info!("orgvend stopped");
    Ok(())
}

/// Reconciles at start, then every `gitlab.reconcile_interval_seconds`, until shutdown.
async fn reconcile_loop<H: Handler>(
    ctx: Arc<Ctx>,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(ctx.config.gitlab.reconcile_interval_seconds.max(1));
    loop {
        let result = handler.reconcile().await;
        let now_s = (ctx.clock.now_ms() / 1000).max(0) as u64;
        ctx.metrics.reconciled(result.is_ok(), now_s);
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(queued = n, "reconciliation"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reconciliation failed; will try again")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// How often the retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Rows per statement of a retention pass (short transactions beside the webhook's).
const RETENTION_BATCH: i64 = 5_000;

/// One pass of the retention (`store.body_retention_days`, `store.dedup_retention_days`):
/// batch after batch until nothing is left to remove.
pub async fn retention_pass(ctx: &Ctx) -> Result<crate::store::Pruned> {
    const DAY_MS: i64 = 86_400_000;
    let now = ctx.clock.now_ms();
    let s = &ctx.config.store;
    let days = |d: u64| (d.min(36_500) as i64).saturating_mul(DAY_MS);
    let bodies_before = now.saturating_sub(days(s.body_retention_days));
    let keys_before = now.saturating_sub(days(s.dedup_retention_days));
    let mut total = crate::store::Pruned::default();
    for _ in 0..1_000 {
        let p = ctx
            .store
            .prune(bodies_before, keys_before, RETENTION_BATCH)
            .await?;
        ctx.metrics.pruned(p.bodies, p.deliveries);
        total.bodies += p.bodies;
        total.deliveries += p.deliveries;
        if p.bodies < RETENTION_BATCH as u64 && p.deliveries < RETENTION_BATCH as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}

/// The retention at start, then every hour, until shutdown.
async fn retention_loop(ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match retention_pass(&ctx).await {
            Ok(p) if p.bodies + p.deliveries > 0 => tracing::info!(
                bodies_dropped = p.bodies,
                deliveries_deleted = p.deliveries,
                "retention"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "retention failed; will try again")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
