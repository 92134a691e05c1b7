//! Drift over 1,000 accounts, through the whole bot (the target branch read through the fake
//! GitLab, the organization, the inside of every account, every account's project) against an
//! in-memory AWS Organization that counts calls as the SDK client does. Records the calls and
//! the time of one pass with nothing to report, and of one with a difference in every account
//! (a role's policy detached by hand), and checks both found exactly that.
//!
//! Writes BENCHMARKS.md between the `bench:drift` markers. `cargo bench --bench drift`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::fake_aws::Scripted;
use common::mem_aws::MemAws;
use common::world::{ALICE, BOB, DEV, World, client_account, fixture_repo, initial_state};
use orgvend::aws::Aws;
use std::fmt::Write as _;
use std::time::Instant;

type Org = Scripted<MemAws>;

const MANY: usize = 1_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // a repository of MANY client accounts, applied (so that each has its baseline and
        // its project); the fixture's own accounts are left out (never created)
        let files: Vec<(String, String)> = fixture_repo()
            .into_iter()
            .filter(|(p, _)| !["management.tf", "internal.tf", "clients.tf"].contains(&p.as_str()))
            .collect();
        let w = World::<Org>::bootstrapping_with(initial_state(&files), Scripted::new(MemAws::new()))
            .await;
        let slugs: Vec<String> = (0..MANY).map(|i| format!("d{i}")).collect();
        let new: Vec<(String, String)> = slugs
            .chunks(500)
            .enumerate()
            .map(|(i, c)| (format!("clients-{i}.tf"), c.iter().map(|s| client_account(s)).collect()))
            .collect();
        let changes: Vec<(&str, Option<&str>)> =
            new.iter().map(|(p, t)| (p.as_str(), Some(t.as_str()))).collect();
        let iid = w.open_mr(DEV, "Add many", &changes).await;
        w.approve_as(iid, ALICE).await;
        w.settle().await;
        w.merge_as(iid, BOB).await;
        w.settle().await;
        assert!(w.bot_note(iid).contains("✅ Applied"), "not applied");
        let aws = w.aws.clone().unwrap();
        assert_eq!(aws.inner.account_count(), MANY);

        // 1. nothing differs
        let before = aws.calls().snapshot();
        w.gitlab.clear_calls();
        let t0 = Instant::now();
        let items = w.bot.drift_now().await.unwrap();
        let clean_took = t0.elapsed();
        assert_eq!(items, [], "drift right after the apply");
        let after = aws.calls().snapshot();
        let (reads, writes) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(writes, 0, "drift wrote to AWS");
        let gitlab_calls = w.gitlab.calls().len();

        // 2. a role's policy detached in every account
        aws.inner.detach_everywhere("ReadOnly", "arn:aws:iam::aws:policy/ReadOnlyAccess");
        let t0 = Instant::now();
        let items = w.bot.drift_now().await.unwrap();
        let drift_took = t0.elapsed();
        assert_eq!(items.len(), MANY);
        assert!(items.iter().all(|i| i.kind.name() == "role"));

        let mut t = String::new();
        let _ = writeln!(t, "{MANY} client accounts applied with their baseline and repositories; the in-memory Organization counts calls as the SDK client does (ListAccounts: one read per page of 20); the fake GitLab without added latency.\n");
        let _ = writeln!(t, "| measurement | result |");
        let _ = writeln!(t, "|---|---:|");
        let _ = writeln!(t, "| one drift pass, nothing differs: AWS reads | {reads} ({:.1} per account) |", reads as f64 / MANY as f64);
        let _ = writeln!(t, "| of which Organizations (listing, parent and tags of each account) | {} |", MANY / 20 + 1 + 2 * MANY);
        let _ = writeln!(t, "| AWS writes | **{writes}** |");
        let _ = writeln!(t, "| GitLab calls (the target branch, and each project's protection and variables) | {gitlab_calls} |");
        let _ = writeln!(t, "| wall time, nothing differs | {:.2} s |", clean_took.as_secs_f64());
        let _ = writeln!(t, "| wall time, a role drifted in each of the {MANY} accounts (found: {MANY}) | {:.2} s |", drift_took.as_secs_f64());
        let _ = writeln!(t, "\nAgainst AWS the time is the calls' latency. The Organizations reads of a pass (about 2,050 for 1,000 accounts) are made one at a time: at AWS's usual 50–100 ms a call that is 10–20 calls a second over 2–4 minutes, once an hour by default. Organizations does not publish its per-API rates; above them it answers TooManyRequestsException, which the SDK's standard retry waits out with backoff. The inside of the accounts (through each account's own session, so each account's own IAM, S3 and DynamoDB quotas) is read 8 accounts at a time. The command: `cargo bench --bench drift`.");
        println!("{t}");
        common::write_bench_section("drift", &t);
    });
}
