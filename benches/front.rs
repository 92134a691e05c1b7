//! Webhook answers while a review of a 50,000-account repository runs: reading the
//! declarations, checking and rendering run on the blocking pool, so the webhook's answers
//! (authenticate, store with fsync, 200) should take about as long as when nothing else
//! runs. Writes BENCHMARKS.md between the `bench:front` markers. `cargo bench --bench front`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::Delivery;
use common::world::{DEV, World, client_account, initial_state};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 50_000;
const PER_FILE: usize = 500;
const DELIVERIES: usize = 300;

fn repo() -> Vec<(String, String)> {
    common::world::big_repo(ACCOUNTS, PER_FILE)
}

/// Answers to `DELIVERIES` pushes (stored, ignored), one after another: the times.
async fn answers(w: &World) -> Vec<Duration> {
    let mut took = Vec::new();
    for i in 0..DELIVERIES {
        let d = Delivery::new(
            "Push Hook",
            format!(r#"{{"object_kind":"push","ref":"refs/heads/b{i}"}}"#).into_bytes(),
        );
        let t = Instant::now();
        let r = w.server.post(&d).await;
        took.push(t.elapsed());
        assert_eq!(r.status, 200, "{r:?}");
    }
    took.sort();
    took
}

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let w = World::with_state(initial_state(&repo()), "").await;
        let idle = answers(&w).await;

        let iid = w.open_mr_quietly(
            DEV,
            "one more",
            &[("clients-new.tf", Some(&client_account("newest")))],
        );
        w.deliver_mr(iid, "open", DEV, None).await;
        let started = Instant::now();
        let w = std::sync::Arc::new(w);
        let reviewing = {
            let w = w.clone();
            tokio::spawn(async move {
                w.settle().await;
                started.elapsed()
            })
        };
        let mut during = Vec::new();
        while !reviewing.is_finished() {
            during.extend(answers(&w).await.into_iter().take(50));
        }
        let review_took = reviewing.await.unwrap();
        assert!(w.bot_note(iid).contains("client-newest"));
        during.sort();
        assert!(!during.is_empty());

        let mut t = String::new();
        let _ = writeln!(
            t,
            "{ACCOUNTS} accounts in {} files; the review of an MR adding one took {:.1} s (release build, 2 cores). Webhook answers (a push, stored with fsync and answered 200), one after another:\n",
            ACCOUNTS / PER_FILE,
            review_took.as_secs_f64()
        );
        let _ = writeln!(t, "| while | answers | p50 | p99 | max |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|");
        for (label, v) in [("nothing else runs", &idle), ("the review runs", &during)] {
            let _ = writeln!(
                t,
                "| {label} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
                v.len(),
                pct(v, 0.5),
                pct(v, 0.99),
                v.last().unwrap().as_secs_f64() * 1000.0
            );
        }
        println!("{t}");
        common::write_bench_section("front", &t);
    });
}
