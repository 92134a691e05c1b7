//! The hold a worker's attempt has on its delivery, for the calls that must never be made
//! once it is lost. The worker sets it around each attempt (a task-local) and moves its end
//! with every renewal of the lease; every AWS call and every GitLab write checks it first,
//! synchronously, by the monotonic clock. A process that was stalled (SIGSTOP, a paused VM)
//! past its lease wakes up with the hold already over: its next call is refused before it is
//! sent, whatever the rest of the attempt was about to do, while another replica carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Until when the running attempt may act.
#[derive(Debug)]
pub struct Hold {
    start: Instant,
    /// Milliseconds after `start`.
    until_ms: AtomicU64,
}

impl Hold {
    pub fn until(until: Instant) -> Arc<Hold> {
        let start = Instant::now();
        let hold = Arc::new(Hold {
            start,
            until_ms: AtomicU64::new(0),
        });
        hold.extend(until);
        hold
    }

    /// Moves the end (a renewed lease).
    pub fn extend(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.start).as_millis() as u64;
        self.until_ms.store(ms, Ordering::Release);
    }

    /// Whether it still holds now.
    pub fn holds(&self) -> bool {
        let until = self.start + Duration::from_millis(self.until_ms.load(Ordering::Acquire));
        Instant::now() < until
    }
}

tokio::task_local! {
    static HOLD: Arc<Hold>;
}

/// Runs `f` under `hold`: the calls it makes check it.
pub async fn scope<F: std::future::Future>(hold: Arc<Hold>, f: F) -> F::Output {
    HOLD.scope(hold, f).await
}

/// A call refused because the attempt that would make it lost its lease.
#[derive(Debug)]
pub struct HoldLost;

impl std::fmt::Display for HoldLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this attempt's lease ran out (the process stalled or the store was out of reach): the call is not made; the delivery is another worker's now")
    }
}

impl std::error::Error for HoldLost {}

/// Checks the hold of the attempt this task runs for; outside any attempt (the command
/// line, `orgvend doctor`) there is none to lose.
pub fn check() -> Result<(), HoldLost> {
    match HOLD.try_with(|h| h.holds()) {
        Ok(false) => Err(HoldLost),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_outside_its_hold_is_refused() {
        assert!(check().is_ok(), "no attempt: nothing to lose");
        let hold = Hold::until(Instant::now() + Duration::from_millis(50));
        let h = hold.clone();
        scope(hold, async move {
            assert!(check().is_ok());
            tokio::time::sleep(Duration::from_millis(80)).await;
            assert!(check().is_err(), "past its end");
            h.extend(Instant::now() + Duration::from_secs(5));
            assert!(check().is_ok(), "renewed");
        })
        .await;
    }
}
