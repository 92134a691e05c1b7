//! The worker: claims stored deliveries in order and hands each to a [`Handler`]. Deliveries
//! of one MR never run concurrently (the store's claim sees to it); a failure is retried with
//! exponential backoff and parked after `worker.max_attempts`; a delivery claimed by a process
//! that died is claimed again when its lease runs out. `run_until_idle()` drives it in tests.

use super::ctx::Ctx;
use crate::gitlab::event::{self, Event};
use crate::store::Delivery;
use anyhow::Result;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One claimed delivery and what it says.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery: Delivery,
    pub event: Event,
}

/// An error that parks its delivery at once rather than trying again later: waiting cannot
/// help by itself (an AWS quota spent for 30 days); a person asks again when it can.
#[derive(Debug)]
pub struct ParkNow(pub String);

impl std::fmt::Display for ParkNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParkNow {}

/// What to do with a delivery. An error means "try again later"; a [`ParkNow`] in its chain,
/// "not until asked".
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, job: Job) -> impl Future<Output = Result<()>> + Send;

    /// Finds work that no delivery announced (GitLab does not retry a lost one) and queues it.
    /// Run at start and on a timer. Returns how many deliveries it queued.
    fn reconcile(&self) -> impl Future<Output = Result<usize>> + Send {
        async { Ok(0) }
    }

    /// Runs once before any delivery is handled (`orgvend serve` does not start without it).
    fn start(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

impl<H: Handler> Handler for Arc<H> {
    fn handle(&self, job: Job) -> impl Future<Output = Result<()>> + Send {
        (**self).handle(job)
    }

    fn reconcile(&self) -> impl Future<Output = Result<usize>> + Send {
        (**self).reconcile()
    }

    fn start(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).start()
    }
}

/// Classifies and logs: the handler of a server that reviews and applies nothing.
pub struct LogHandler;

impl Handler for LogHandler {
    async fn handle(&self, job: Job) -> Result<()> {
        let project = job.event.project().map(|p| p.key()).unwrap_or_default();
        let (mr, detail) = match &job.event {
            Event::MergeRequest(e) => (Some(e.iid), e.head_sha.clone().unwrap_or_default()),
            Event::Note(n) => (Some(n.mr_iid), format!("note {}", n.note_id.unwrap_or(0))),
            Event::Issue(e) => (None, format!("issue {}", e.iid)),
            Event::IssueNote(n) => (
                None,
                format!("issue {} note {}", n.issue_iid, n.note_id.unwrap_or(0)),
            ),
            Event::Drift { .. } => (None, "drift".into()),
            Event::Ignored { reason, .. } => (None, reason.clone()),
        };
        tracing::info!(
            delivery = job.delivery.id,
            kind = job.event.kind(),
            action = job.event.action(),
            project,
            mr = mr.unwrap_or(0),
            detail,
            "delivery handled"
        );
        Ok(())
    }
}

pub struct Worker<H> {
    ctx: Arc<Ctx>,
    handler: Arc<H>,
}

impl<H: Handler> Worker<H> {
    pub fn new(ctx: Arc<Ctx>, handler: H) -> Worker<H> {
        Worker {
            ctx,
            handler: Arc::new(handler),
        }
    }

    /// Handles every delivery that is due now, one after another, until none is left.
    /// Returns how many attempts were made.
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut n = 0;
        while self.step().await? {
            n += 1;
        }
        Ok(n)
    }

    /// Runs `worker.concurrency` loops until `shutdown` turns true; a job under way finishes.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let loops: Vec<_> = (0..self.ctx.config.worker.concurrency)
            .map(|_| {
                let me = self.clone();
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move { me.run_loop(&mut shutdown).await })
            })
            .collect();
        for l in loops {
            let _ = l.await;
        }
    }

    async fn run_loop(&self, shutdown: &mut watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.ctx.config.worker.poll_interval_ms);
        while !*shutdown.borrow() {
            match self.step().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "worker: the store failed; retrying")
                }
            }
            tokio::select! {
                _ = self.ctx.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims and handles one due delivery; `false` when none is due.
    pub async fn step(&self) -> Result<bool> {
        let ctx = &self.ctx;
        let w = &ctx.config.worker;
        let lease_ms = (w.lease_seconds * 1000) as i64;
        let lease_len = Duration::from_millis(lease_ms as u64);
        // The lease counts from before the claim: it cannot run out later here than in the
        // store (on PostgreSQL, by the database's clock).
        let asked = Instant::now();
        let Some(delivery) = ctx
            .store
            .claim_as(ctx.clock.now_ms(), lease_ms, &ctx.replica)
            .await?
        else {
            return Ok(false);
        };
        let mut lease_until = asked + lease_len;
        let event = ctx.scope(event::parse(
            Some(&delivery.event_name)
                .filter(|e| !e.is_empty())
                .map(String::as_str),
            &delivery.body,
        ));
        let kind = event.kind().to_string();
        ctx.metrics.worker_attempt(&kind);
        let (id, attempts, lease) = (delivery.id, delivery.attempts, delivery.lease());

        // The handler runs in its own task: a panic is a failed attempt, not a dead worker.
        let handler = self.handler.clone();
        let job = Job { delivery, event };
        // Every AWS call and GitLab write of the attempt checks this hold first.
        let hold = crate::hold::Hold::until(lease_until);
        let mut task = tokio::spawn(crate::hold::scope(hold.clone(), async move {
            handler.handle(job).await
        }));
        let renew_every = Duration::from_millis((lease_ms / 3).max(1) as u64);
        let outcome = loop {
            let tick = renew_every.min(lease_until.saturating_duration_since(Instant::now()));
            tokio::select! {
                result = &mut task => break result,
                _ = tokio::time::sleep(tick) => {
                    let asked = Instant::now();
                    let left = lease_until.saturating_duration_since(asked);
                    // A renewal that does not answer before the lease ends counts as failed.
                    match tokio::time::timeout(left, ctx.store.renew(lease, ctx.clock.now_ms(), lease_ms)).await {
                        Ok(Ok(true)) => {
                            lease_until = asked + lease_len;
                            hold.extend(lease_until);
                        }
                        Ok(Ok(false)) => {
                            // Our lease ran out (the store unreachable, the process stalled)
                            // and another worker claimed the delivery: it is theirs now.
                            // Stopping here is a crash at this point, which every handler
                            // survives; running on would be two of us at once.
                            stop(&mut task).await;
                            tracing::warn!(
                                delivery = id,
                                kind,
                                "lease lost to a later claim; this attempt stops and the new claimant carries on"
                            );
                            return Ok(true);
                        }
                        // The store may be back before the lease runs out: try again next tick.
                        Ok(Err(e)) => tracing::error!(
                            delivery = id,
                            error = %format!("{e:#}"),
                            "renewing the lease failed; retrying"
                        ),
                        Err(_) => tracing::error!(delivery = id, "renewing the lease did not answer in time"),
                    }
                    if Instant::now() >= lease_until {
                        // No renewal within the lease: another worker may claim the delivery
                        // now. Stop before it can, and record nothing (the store decides).
                        stop(&mut task).await;
                        tracing::error!(
                            delivery = id,
                            kind,
                            "the lease ran out without a renewal (is the store reachable?): this attempt stops; the delivery runs again once it is claimed"
                        );
                        return Ok(true);
                    }
                }
            }
        };
        let (error, park_now) = match outcome {
            Ok(Ok(())) => (None, false),
            Ok(Err(e)) => (
                Some(format!("{e:#}")),
                e.chain().any(|c| c.downcast_ref::<ParkNow>().is_some()),
            ),
            Err(join) => (Some(format!("the handler panicked: {join}")), false),
        };
        let now = ctx.clock.now_ms();
        let recorded = match error {
            None => ctx.store.complete(lease, now).await?,
            Some(error) => {
                ctx.metrics.worker_failure(&kind);
                if park_now {
                    ctx.metrics.worker_parked();
                    tracing::warn!(
                        delivery = id,
                        kind,
                        error,
                        "delivery PARKED on purpose, until asked again: see `orgvend inbox`"
                    );
                    ctx.store.park(lease, now, &error).await?
                } else if attempts >= w.max_attempts as i64 {
                    ctx.metrics.worker_parked();
                    tracing::error!(
                        delivery = id,
                        kind,
                        attempts,
                        error,
                        "delivery PARKED after its last attempt: see `orgvend inbox`"
                    );
                    ctx.store.park(lease, now, &error).await?
                } else {
                    let delay = backoff(w.backoff_base_seconds, w.backoff_max_seconds, attempts);
                    tracing::warn!(
                        delivery = id,
                        kind,
                        attempts,
                        retry_in_s = delay.as_secs(),
                        error,
                        "delivery failed; will retry"
                    );
                    ctx.store
                        .retry(lease, now + delay.as_millis() as i64, &error)
                        .await?
                }
            }
        };
        if !recorded {
            tracing::warn!(
                delivery = id,
                kind,
                "finished after its lease was lost to a later claim: the outcome is the new claimant's to record"
            );
        }
        Ok(true)
    }
}

/// Stops a handler's attempt and waits until it has (an abort takes effect at the task's
/// next poll), so that it holds nothing on return.
async fn stop<T>(task: &mut tokio::task::JoinHandle<T>) {
    task.abort();
    let _ = task.await;
}

/// `base · 2^(attempt-1)`, at most `max`.
pub fn backoff(base_secs: u64, max_secs: u64, attempt: i64) -> Duration {
    let exp = (attempt.max(1) - 1).min(30) as u32;
    Duration::from_secs(base_secs.saturating_mul(1u64 << exp).min(max_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(2, 600, 1), Duration::from_secs(2));
        assert_eq!(backoff(2, 600, 2), Duration::from_secs(4));
        assert_eq!(backoff(2, 600, 5), Duration::from_secs(32));
        assert_eq!(backoff(2, 600, 10), Duration::from_secs(600));
        assert_eq!(backoff(2, 600, 100), Duration::from_secs(600));
    }
}
