//! Prometheus metrics, in the text exposition format at `GET /metrics`. Label values come
//! from a bounded set (see `Event::kind`), so a payload cannot explode the series count.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Request latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(String, String, String), u64>>,
    worker_attempts: Mutex<BTreeMap<String, u64>>,
    worker_failures: Mutex<BTreeMap<String, u64>>,
    worker_parked: AtomicU64,
    /// MRs into another branch than the target, by stage (`review`, `apply`).
    ignored_branch: Mutex<BTreeMap<String, u64>>,
    apply_refused: AtomicU64,
    /// Reviews judged on the part of the repository their change reaches, and whole.
    reviews_part: AtomicU64,
    reviews_whole: AtomicU64,
    reconcile_ok: AtomicU64,
    reconcile_failed: AtomicU64,
    /// Unix seconds of the last reconciliation that succeeded (0: none yet).
    reconcile_last_ok_s: AtomicU64,
    pruned_bodies: AtomicU64,
    pruned_deliveries: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// The last drift run's differences by kind; `None` before the first.
    drift: Mutex<Option<BTreeMap<String, u64>>>,
}

/// Inbox gauges, read from the store at scrape time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InboxGauges {
    pub pending: u64,
    pub running: u64,
    pub parked: u64,
    pub done: u64,
    pub ignored: u64,
}

/// Store gauges beside the inbox's, read at scrape time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreGauges {
    /// When the oldest apply still running started (ms), if one is.
    pub oldest_running_apply_ms: Option<i64>,
    /// The store's size in bytes.
    pub bytes: u64,
}

impl Metrics {
    /// One webhook delivery and what became of it: accepted, duplicate, ignored,
    /// unauthorized, too_large, busy, body_timeout or store_error.
    pub fn delivery(&self, kind: &str, action: &str, outcome: &str) {
        let mut m = self.deliveries.lock().expect("metrics lock");
        *m.entry((kind.to_string(), action.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    pub fn observe_request(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn worker_attempt(&self, kind: &str) {
        *self
            .worker_attempts
            .lock()
            .expect("metrics lock")
            .entry(kind.to_string())
            .or_default() += 1;
    }

    pub fn worker_failure(&self, kind: &str) {
        *self
            .worker_failures
            .lock()
            .expect("metrics lock")
            .entry(kind.to_string())
            .or_default() += 1;
    }

    /// Failed attempts, over all kinds (for tests and logs).
    pub fn worker_failures_total(&self) -> u64 {
        self.worker_failures
            .lock()
            .expect("metrics lock")
            .values()
            .sum()
    }

    pub fn worker_parked(&self) {
        self.worker_parked.fetch_add(1, Ordering::Relaxed);
    }

    /// An MR into another branch than the one orgvend applies, at `stage` (`review`,
    /// `apply`): not reviewed, not applied.
    pub fn ignored_branch(&self, stage: &str) {
        *self
            .ignored_branch
            .lock()
            .expect("metrics lock")
            .entry(stage.to_string())
            .or_default() += 1;
    }

    pub fn ignored_branch_total(&self, stage: &str) -> u64 {
        self.ignored_branch
            .lock()
            .expect("metrics lock")
            .get(stage)
            .copied()
            .unwrap_or(0)
    }

    /// One review, judged on the part its change reaches (`part`) or on the whole head.
    pub fn reviewed(&self, part: bool) {
        let n = if part {
            &self.reviews_part
        } else {
            &self.reviews_whole
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// Reviews so far, judged on the part (`true`) or whole.
    pub fn reviewed_total(&self, part: bool) -> u64 {
        match part {
            true => self.reviews_part.load(Ordering::Relaxed),
            false => self.reviews_whole.load(Ordering::Relaxed),
        }
    }

    /// A merged MR the gate refused to apply.
    /// One reconciliation pass and whether it worked; `now_s` is the wall clock.
    pub fn reconciled(&self, ok: bool, now_s: u64) {
        if ok {
            self.reconcile_ok.fetch_add(1, Ordering::Relaxed);
            self.reconcile_last_ok_s.store(now_s, Ordering::Relaxed);
        } else {
            self.reconcile_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What a pass of the retention removed.
    pub fn pruned(&self, bodies: u64, deliveries: u64) {
        self.pruned_bodies.fetch_add(bodies, Ordering::Relaxed);
        self.pruned_deliveries
            .fetch_add(deliveries, Ordering::Relaxed);
    }

    /// The differences the last drift run found, by kind (every kind, zeros included).
    pub fn drift(&self, counts: BTreeMap<String, u64>) {
        *self.drift.lock().expect("metrics lock") = Some(counts);
    }

    pub fn apply_refused(&self) {
        self.apply_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn apply_refused_total(&self) -> u64 {
        self.apply_refused.load(Ordering::Relaxed)
    }

    /// The count of deliveries with this outcome, over all kinds (for tests and logs).
    pub fn deliveries_with(&self, outcome: &str) -> u64 {
        let m = self.deliveries.lock().expect("metrics lock");
        m.iter()
            .filter(|((_, _, o), _)| o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn render(&self, inbox: Option<&InboxGauges>, store: Option<&StoreGauges>) -> String {
        let mut out = String::new();
        out.push_str("# HELP orgvend_webhook_deliveries_total Webhook deliveries by event kind, action and outcome.\n");
        out.push_str("# TYPE orgvend_webhook_deliveries_total counter\n");
        for ((kind, action, outcome), n) in self.deliveries.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "orgvend_webhook_deliveries_total{{kind=\"{}\",action=\"{}\",outcome=\"{}\"}} {n}",
                esc(kind),
                esc(action),
                esc(outcome)
            );
        }
        out.push_str(
            "# HELP orgvend_webhook_request_duration_seconds Time to answer a webhook delivery.\n",
        );
        out.push_str("# TYPE orgvend_webhook_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "orgvend_webhook_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "orgvend_webhook_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "orgvend_webhook_request_duration_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "orgvend_webhook_request_duration_seconds_count {count}"
        );
        if let Some(g) = inbox {
            out.push_str("# HELP orgvend_inbox_deliveries Stored deliveries by state.\n");
            out.push_str("# TYPE orgvend_inbox_deliveries gauge\n");
            for (state, n) in [
                ("pending", g.pending),
                ("running", g.running),
                ("parked", g.parked),
                ("done", g.done),
                ("ignored", g.ignored),
            ] {
                let _ = writeln!(out, "orgvend_inbox_deliveries{{state=\"{state}\"}} {n}");
            }
            out.push_str("# HELP orgvend_inbox_depth Deliveries waiting or running.\n");
            out.push_str("# TYPE orgvend_inbox_depth gauge\n");
            let _ = writeln!(out, "orgvend_inbox_depth {}", g.pending + g.running);
        }
        if let Some(g) = store {
            out.push_str("# HELP orgvend_apply_oldest_running_start_timestamp_seconds When the oldest apply still running started (0: none runs).\n");
            out.push_str("# TYPE orgvend_apply_oldest_running_start_timestamp_seconds gauge\n");
            let _ = writeln!(
                out,
                "orgvend_apply_oldest_running_start_timestamp_seconds {}",
                g.oldest_running_apply_ms.map_or(0, |ms| ms / 1000)
            );
            out.push_str("# HELP orgvend_store_bytes The store's size.\n");
            out.push_str("# TYPE orgvend_store_bytes gauge\n");
            let _ = writeln!(out, "orgvend_store_bytes {}", g.bytes);
        }
        out.push_str("# HELP orgvend_reconcile_runs_total Reconciliation passes, by outcome.\n");
        out.push_str("# TYPE orgvend_reconcile_runs_total counter\n");
        for (outcome, n) in [
            ("ok", &self.reconcile_ok),
            ("failed", &self.reconcile_failed),
        ] {
            let _ = writeln!(
                out,
                "orgvend_reconcile_runs_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP orgvend_reconcile_last_success_timestamp_seconds When a reconciliation last succeeded (0: not yet).\n");
        out.push_str("# TYPE orgvend_reconcile_last_success_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "orgvend_reconcile_last_success_timestamp_seconds {}",
            self.reconcile_last_ok_s.load(Ordering::Relaxed)
        );
        out.push_str("# HELP orgvend_retention_pruned_total Delivery bodies dropped and deliveries deleted by the retention.\n");
        out.push_str("# TYPE orgvend_retention_pruned_total counter\n");
        for (what, n) in [
            ("bodies", &self.pruned_bodies),
            ("deliveries", &self.pruned_deliveries),
        ] {
            let _ = writeln!(
                out,
                "orgvend_retention_pruned_total{{what=\"{what}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        for (name, help, map) in [
            (
                "orgvend_worker_attempts_total",
                "Deliveries the worker attempted, by kind.",
                &self.worker_attempts,
            ),
            (
                "orgvend_worker_failures_total",
                "Attempts that failed and will be retried or parked, by kind.",
                &self.worker_failures,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (kind, n) in map.lock().expect("metrics lock").iter() {
                let _ = writeln!(out, "{name}{{kind=\"{}\"}} {n}", esc(kind));
            }
        }
        out.push_str(
            "# HELP orgvend_worker_parked_total Deliveries parked after their last attempt.\n",
        );
        out.push_str("# TYPE orgvend_worker_parked_total counter\n");
        let _ = writeln!(
            out,
            "orgvend_worker_parked_total {}",
            self.worker_parked.load(Ordering::Relaxed)
        );
        out.push_str("# HELP orgvend_ignored_target_branch_total MRs into another branch than the one orgvend applies: not reviewed, never applied.\n");
        out.push_str("# TYPE orgvend_ignored_target_branch_total counter\n");
        for (stage, n) in self.ignored_branch.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "orgvend_ignored_target_branch_total{{stage=\"{}\"}} {n}",
                esc(stage)
            );
        }
        out.push_str("# HELP orgvend_reviews_total MR reviews, by what was judged: the part of the repository the change reaches, or the whole head.\n");
        out.push_str("# TYPE orgvend_reviews_total counter\n");
        for (judged, n) in [("part", &self.reviews_part), ("whole", &self.reviews_whole)] {
            let _ = writeln!(
                out,
                "orgvend_reviews_total{{judged=\"{judged}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        if let Some(counts) = self.drift.lock().expect("metrics lock").as_ref() {
            out.push_str("# HELP orgvend_drift_items Differences between the declarations and the organization at the last drift run, by kind.\n");
            out.push_str("# TYPE orgvend_drift_items gauge\n");
            for (kind, n) in counts {
                let _ = writeln!(out, "orgvend_drift_items{{kind=\"{}\"}} {n}", esc(kind));
            }
        }
        out.push_str("# HELP orgvend_apply_refused_total Merged MRs the gate refused to apply.\n");
        out.push_str("# TYPE orgvend_apply_refused_total counter\n");
        let _ = writeln!(
            out,
            "orgvend_apply_refused_total {}",
            self.apply_refused.load(Ordering::Relaxed)
        );
        out
    }
}

/// Escapes a label value: backslash, quote and newline.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.delivery("merge_request", "opened", "accepted");
        m.delivery("merge_request", "opened", "accepted");
        m.delivery("we\"ird", "x\ny", "ignored");
        m.observe_request(Duration::from_micros(700));
        m.observe_request(Duration::from_millis(30));
        m.reconciled(true, 1_700_000_000);
        m.reconciled(false, 1_700_000_300);
        let text = m.render(
            Some(&InboxGauges {
                pending: 2,
                running: 1,
                ..Default::default()
            }),
            Some(&StoreGauges {
                oldest_running_apply_ms: Some(1_700_000_000_500),
                bytes: 4096,
            }),
        );
        for line in [
            "orgvend_apply_oldest_running_start_timestamp_seconds 1700000000",
            "orgvend_store_bytes 4096",
            "orgvend_reconcile_runs_total{outcome=\"ok\"} 1",
            "orgvend_reconcile_runs_total{outcome=\"failed\"} 1",
            "orgvend_reconcile_last_success_timestamp_seconds 1700000000",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(text.contains("orgvend_webhook_deliveries_total{kind=\"merge_request\",action=\"opened\",outcome=\"accepted\"} 2"), "{text}");
        assert!(
            text.contains("kind=\"we\\\"ird\",action=\"x\\ny\""),
            "{text}"
        );
        assert!(
            text.contains("orgvend_webhook_request_duration_seconds_bucket{le=\"0.001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("orgvend_webhook_request_duration_seconds_bucket{le=\"0.05\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("orgvend_webhook_request_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("orgvend_inbox_depth 3"), "{text}");
        m.ignored_branch("apply");
        m.apply_refused();
        let text = m.render(None, None);
        assert!(
            text.contains("orgvend_ignored_target_branch_total{stage=\"apply\"} 1"),
            "{text}"
        );
        assert!(text.contains("orgvend_apply_refused_total 1"), "{text}");
        assert_eq!(m.deliveries_with("accepted"), 2);
    }
}
