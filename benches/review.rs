//! The MR review against the fake GitLab with 20 ms added to every API call: a repository
//! of 1,000 accounts, an MR that adds one. Webhook-to-note time and API calls per review,
//! with a warm cache (another MR was reviewed first). Writes BENCHMARKS.md between the
//! `bench:review` markers. `cargo bench --bench review`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::world::{ALICE, DEV, World, client_account, initial_state};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 1_000;
const PER_FILE: usize = 500;
const LATENCY: Duration = Duration::from_millis(20);
const RUNS: usize = 7;

fn repo() -> Vec<(String, String)> {
    common::world::big_repo(ACCOUNTS, PER_FILE)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let w = World::with_state(initial_state(&repo()), "").await;
        // warm: one MR reviewed, so the base's blobs and trees are cached
        let warm = w.open_mr(DEV, "warm", &[("clients-warm.tf", Some(&client_account("warm")))]).await;
        w.settle().await;
        assert!(w.bot_note(warm).contains("client-warm"));
        w.gitlab.with(|s| s.latency = LATENCY);

        let mut opened = Vec::new();
        let mut approved = Vec::new();
        for run in 0..RUNS {
            let slug = format!("bench{run}");
            let iid = w.open_account_mr_quietly(&slug, &slug);
            w.gitlab.clear_calls();
            let t = Instant::now();
            w.deliver_mr(iid, "open", DEV, None).await;
            w.settle().await;
            let took = t.elapsed();
            assert!(w.bot_note(iid).contains(&format!("client-{slug}")), "the note is there");
            opened.push((took, w.gitlab.calls().len()));

            w.gitlab.with(|s| s.approve(iid, ALICE));
            w.gitlab.clear_calls();
            let t = Instant::now();
            w.deliver_mr(iid, "approved", ALICE, None).await;
            w.settle().await;
            let took = t.elapsed();
            assert_eq!(w.status_state(&w.head(iid)), "success");
            approved.push((took, w.gitlab.calls().len()));
        }
        let calls_example = {
            let iid = w.open_mr_quietly(DEV, "example", &[("clients-example.tf", Some(&client_account("example")))]);
            w.gitlab.clear_calls();
            w.deliver_mr(iid, "open", DEV, None).await;
            w.settle().await;
            w.gitlab.calls().into_iter().map(|(m, p)| format!("{m} {}", p.replace("/api/v4/projects/infra%2Fsubaccounts", ""))).collect::<Vec<_>>()
        };

        let med = |v: &mut Vec<(Duration, usize)>| {
            v.sort();
            v[v.len() / 2]
        };
        let (open_t, open_calls) = med(&mut opened);
        let (appr_t, appr_calls) = med(&mut approved);
        let mut t = String::new();
        let _ = writeln!(t, "{ACCOUNTS} accounts in {} files; {} ms added to every API call by the fake GitLab; median of {RUNS} MRs; warm cache.\n", ACCOUNTS / PER_FILE, LATENCY.as_millis());
        let _ = writeln!(t, "| review | webhook to note | API calls |");
        let _ = writeln!(t, "|---|---:|---:|");
        let _ = writeln!(t, "| MR opened, adding one account (note created, status pending then failed) | {:.0} ms | {open_calls} |", open_t.as_secs_f64() * 1000.0);
        let _ = writeln!(t, "| the same MR approved by an Infrastructure member (note edited, status success) | {:.0} ms | {appr_calls} |", appr_t.as_secs_f64() * 1000.0);
        let _ = writeln!(t, "\nThe calls of one opened MR, in order: {}.", calls_example.join(", "));
        println!("{t}");
        common::write_bench_section("review", &t);
    });
}
