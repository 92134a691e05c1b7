//! The apply on merge, through the whole bot (worker, gate, ledger, note, repository
//! bootstrap against the fake GitLab) and an in-memory AWS Organization that counts calls as
//! the SDK client does. Three measurements:
//!
//! 1. AWS calls (reads, writes) for one new account, baseline and keyless CI included;
//! 2. a no-op re-apply (`/orgvend retry`) of a merge that created 1,000 accounts: writes must
//!    be 0; reads and time per account;
//! 3. a merge creating 20 accounts when each creation takes 6 s: wall time and accounts in
//!    flight, at AWS's limit of 5 and one at a time.
//!
//! Writes BENCHMARKS.md between the `bench:apply` markers. `cargo bench --bench apply`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::fake_aws::Scripted;
use common::mem_aws::MemAws;
use common::world::{
    ALICE, BOB, DEV, World, client_account, fixture_repo, initial_state, test_settings,
};
use orgvend::aws::Aws;
use orgvend::bot::apply::ApplySettings;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

type Org = Scripted<MemAws>;

const MANY: usize = 1_000;
const SLOW: usize = 20;
const CREATION: Duration = Duration::from_secs(6);
/// First wait between polls of a creation (doubling to 8 times that).
const POLL: Duration = Duration::from_millis(100);

async fn world() -> World<Org> {
    World::<Org>::bootstrapping_with(initial_state(&fixture_repo()), Scripted::new(MemAws::new()))
        .await
}

/// Opens, approves and merges an MR adding `slugs`' accounts (500 to a file); returns its
/// iid and the time from the merge delivery to the end of the apply.
async fn merge(w: &World<Org>, tag: &str, slugs: &[String]) -> (u64, Duration) {
    let files: Vec<(String, String)> = slugs
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| {
            (
                format!("clients-{tag}-{i}.tf"),
                chunk.iter().map(|s| client_account(s)).collect(),
            )
        })
        .collect();
    let changes: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    let iid = w.open_mr(DEV, &format!("Add {tag}"), &changes).await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(
        w.status_state(&w.head(iid)),
        "success",
        "{}",
        w.bot_note(iid)
    );
    let t = Instant::now();
    w.merge_as(iid, BOB).await;
    w.settle().await;
    let took = t.elapsed();
    let note = w.bot_note(iid);
    if !note.contains("✅ Applied") {
        let errors: Vec<String> = w
            .server
            .ctx
            .store
            .list(None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|d| {
                d.last_error
                    .map(|e| format!("{} {}: {e}", d.kind, d.action))
            })
            .collect();
        panic!(
            "{tag}: not applied: {errors:?}\n{}",
            &note[..note.len().min(1500)]
        );
    }
    (iid, took)
}

fn slugs(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Merges `SLOW` accounts whose creation takes `CREATION`, at most `limit` at once; returns
/// the wall time and the fewest creations in flight while any were still waiting to start.
async fn slow_merge(limit: usize) -> (Duration, usize, usize) {
    let mut w = world().await;
    if let Some(aws) = &w.aws {
        aws.script.lock().unwrap().creation_takes = CREATION;
    }
    w.set_settings(ApplySettings {
        max_creations: limit,
        poll: POLL,
        ..test_settings()
    });
    let aws = w.aws.clone().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (aws, done) = (aws.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(Ordering::SeqCst) {
                samples.push(aws.in_flight());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    let (_, took) = merge(
        &w,
        &format!("slow{limit}-"),
        &slugs(&format!("s{limit}x"), SLOW),
    )
    .await;
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let max = aws.max_in_flight.load(Ordering::SeqCst);
    // the saturated phase: while at least `limit` creations were still to finish
    let busy: Vec<usize> = samples.iter().copied().skip_while(|n| *n == 0).collect();
    let full_phase = (SLOW / limit).saturating_sub(1) * CREATION.as_millis() as usize / 100;
    let min = busy.iter().take(full_phase).copied().min().unwrap_or(0);
    (took, max, min)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut t = String::new();

        // 1. one new account
        let w = world().await;
        let aws = w.aws.clone().unwrap();
        let before = aws.calls().snapshot();
        w.gitlab.clear_calls();
        let (_, one_took) = merge(&w, "one", &["one".to_string()]).await;
        let after = aws.calls().snapshot();
        let gitlab_calls = w.gitlab.calls();
        let repo_calls = gitlab_calls
            .iter()
            .filter(|(_, p)| p.contains("aws-accounts") || p.ends_with("/projects") || p.contains("/groups/aws-accounts"))
            .count();
        let (one_reads, one_writes) = (after.0 - before.0, after.1 - before.1);

        // 2. 1,000 accounts, then a no-op re-apply
        let w = world().await;
        let aws = w.aws.clone().unwrap();
        let (iid, many_took) = merge(&w, "many", &slugs("m", MANY)).await;
        assert_eq!(aws.inner.account_count(), MANY);
        let before = aws.calls().snapshot();
        w.gitlab.clear_calls();
        let t0 = Instant::now();
        w.comment(iid, ALICE, "/orgvend retry").await;
        w.settle().await;
        let reapply_took = t0.elapsed();
        let after = aws.calls().snapshot();
        let (re_reads, re_writes) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(re_writes, 0, "a no-op re-apply made AWS writes");
        let gitlab_mutations = w
            .gitlab
            .calls()
            .iter()
            .filter(|(m, p)| m != "GET" && !p.contains("/notes") && !p.contains("/statuses/"))
            .count();
        assert_eq!(gitlab_mutations, 0, "a no-op re-apply changed GitLab");
        assert_eq!(aws.inner.account_count(), MANY);

        // 3. 20 slow creations
        let (fast_took, fast_max, fast_min) = slow_merge(5).await;
        let (seq_took, seq_max, _) = slow_merge(1).await;

        let _ = writeln!(t, "In-memory AWS Organization counting calls as the SDK client does (ListAccounts: one read per page of 20); the fake GitLab without added latency; every step through the worker, the gate, the ledger and the note.\n");
        let _ = writeln!(t, "| measurement | result |");
        let _ = writeln!(t, "|---|---:|");
        let _ = writeln!(t, "| AWS calls for one new account (create, OU, tags, alias, SAML, boundary, 5 roles, bucket, lock table, OIDC provider, 2 CI roles) | {one_reads} reads, {one_writes} writes |");
        let _ = writeln!(t, "| GitLab calls for its repository (project, template commit, protection, 6 variables) | {repo_calls} |");
        let _ = writeln!(t, "| merge to applied, one account | {:.2} s |", one_took.as_secs_f64());
        let _ = writeln!(t, "| merge to applied, {MANY} accounts in one MR | {:.1} s |", many_took.as_secs_f64());
        let _ = writeln!(t, "| no-op re-apply of those {MANY} accounts: AWS writes | **{re_writes}** |");
        let _ = writeln!(t, "| no-op re-apply: AWS reads | {re_reads} ({:.1} per account) |", re_reads as f64 / MANY as f64);
        let _ = writeln!(t, "| no-op re-apply: GitLab mutations (notes and statuses aside) | {gitlab_mutations} |");
        let _ = writeln!(t, "| no-op re-apply: wall time | {:.1} s |", reapply_took.as_secs_f64());
        let _ = writeln!(t, "| {SLOW} accounts, {} s per creation (polled from {} ms, doubling to 8×), 5 at once: merge to applied | {:.1} s (at most {fast_max} in flight; never fewer than {fast_min} while more were queued) |", CREATION.as_secs(), POLL.as_millis(), fast_took.as_secs_f64());
        let _ = writeln!(t, "| the same, one at a time | {:.1} s (at most {seq_max} in flight) |", seq_took.as_secs_f64());
        let _ = writeln!(t, "\nThe re-apply reads each account's state (OU, tags, alias, SAML provider, boundary, roles, bucket, table, OIDC provider) because it repairs drift; the ledger alone answers the creation steps (no ListAccounts), and the root and its OUs are read once per apply.");
        println!("{t}");
        common::write_bench_section("apply", &t);
    });
}
