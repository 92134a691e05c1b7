//! Apply on merge, against moto's server: the real AWS SDK client through a layer that adds
//! what moto cannot show (creation that takes time or fails, throttling, crashes).

mod common;

use common::fake_aws::{Boundary, CRASH, Scripted};
use common::moto::Moto;
use common::world::{ALICE, BOB, DEV, MALLORY, World, account_file, client_account};
use orgvend::aws::Aws;
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn world(moto: &Moto) -> World {
    moto.organization().await;
    World::applying(Scripted::new(moto.aws().await)).await
}

fn accounts_named<'a>(
    all: &'a [(String, String, String)],
    name: &str,
) -> Vec<&'a (String, String, String)> {
    all.iter().filter(|(_, n, _)| n == name).collect()
}

/// Everything the baseline promises, read straight from moto.
async fn assert_baseline(moto: &Moto, account_id: &str, alias: &str) {
    moto.assert_guard(account_id, alias).await;
    let cfg = moto.member_config(account_id).await;
    let iam = aws_sdk_iam::Client::new(&cfg);
    let aliases = iam.list_account_aliases().send().await.unwrap();
    assert_eq!(aliases.account_aliases(), [alias.to_string()]);
    let providers = iam.list_saml_providers().send().await.unwrap();
    assert!(
        providers
            .saml_provider_list()
            .iter()
            .any(|p| p.arn().unwrap().ends_with(":saml-provider/corp-sso"))
    );
    let boundary = format!("arn:aws:iam::{account_id}:policy/orgvend-baseline-boundary");
    iam.get_policy()
        .policy_arn(&boundary)
        .send()
        .await
        .expect("the boundary policy exists");
    for (role, managed) in [
        ("Admin", "AdministratorAccess"),
        ("BoundedAdmin", "AdministratorAccess"),
        ("PowerUser", "PowerUserAccess"),
        ("ReadOnly", "ReadOnlyAccess"),
        ("ViewOnly", "job-function/ViewOnlyAccess"),
    ] {
        let r = iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .unwrap_or_else(|e| panic!("role {role}: {e:?}"));
        let r = r.role().unwrap();
        let trust = urlencoding::decode(r.assume_role_policy_document().unwrap())
            .unwrap()
            .into_owned();
        assert!(
            trust.contains(":saml-provider/corp-sso") && trust.contains("sts:AssumeRoleWithSAML"),
            "{role}: {trust}"
        );
        let bounded = r
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn());
        assert_eq!(
            bounded,
            (role == "BoundedAdmin").then_some(boundary.as_str()),
            "{role}'s boundary"
        );
        let attached = iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap();
        let arns: Vec<&str> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        assert_eq!(
            arns,
            [format!("arn:aws:iam::aws:policy/{managed}").as_str()],
            "{role}"
        );
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("example-tfstate-{alias}");
    let v = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        v.status(),
        Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled)
    );
    s3.get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .expect("encrypted");
    let pab = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pab.public_access_block_configuration()
            .unwrap()
            .block_public_policy(),
        Some(true)
    );
    let ddb = aws_sdk_dynamodb::Client::new(&cfg);
    ddb.describe_table()
        .table_name("terraform-locks")
        .send()
        .await
        .expect("the lock table exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_approved_mr_creates_the_account_and_its_baseline_once() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let ous = std::collections::HashMap::<String, String>::new();
    let _ = ous;
    let (iid, merge_sha) = w.merge_approved("alpha").await;
    w.settle().await;

    let all = moto.accounts().await;
    let created = accounts_named(&all, "client-alpha");
    assert_eq!(created.len(), 1, "{all:?}");
    let (id, _, email) = created[0].clone();
    assert_eq!(email, "aws+client-alpha@example.com");
    // the account is in its OU, with its tags
    let orgs = moto.organizations().await;
    let parent = orgs
        .list_parents()
        .child_id(&id)
        .send()
        .await
        .unwrap()
        .parents()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = orgs
        .describe_organizational_unit()
        .organizational_unit_id(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(ou.organizational_unit().unwrap().name(), Some("Clients"));
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "client" && t.value() == "alpha")
    );
    assert_baseline(&moto, &id, "client-alpha").await;

    // the note shows the outcome and the account id
    let note = w.bot_note(iid);
    assert!(note.contains("✅ Applied: 1 account"), "{note}");
    assert!(note.contains(&id), "{note}");
    assert!(
        note.contains("`infra-bob`") && note.contains("`infra-alice`"),
        "who merged and who approved: {note}"
    );
    // the ledger holds every step, done; the audit trail who approved and merged
    let steps = w.server.ctx.store.steps(&merge_sha).await.unwrap();
    assert!(steps.iter().all(|s| s.state == "done"), "{steps:?}");
    let run = w.apply_run(&merge_sha).await;
    assert_eq!(run.decision, "applied");
    let facts: serde_json::Value = serde_json::from_str(&run.facts).unwrap();
    assert_eq!(facts["merged_by"], "infra-bob");
    assert_eq!(
        facts["approvals_counted"],
        serde_json::json!(["infra-alice"])
    );

    // applying again (a redelivery, a retry) makes no change in AWS
    let aws = w.aws.as_ref().unwrap();
    let (_, writes_before) = aws.calls().snapshot();
    w.deliver_mr(iid, "merge", BOB, None).await;
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    let (_, writes_after) = aws.calls().snapshot();
    assert_eq!(
        writes_after, writes_before,
        "a second apply made a mutating call"
    );
    assert_eq!(
        accounts_named(&moto.accounts().await, "client-alpha").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bypass_applies() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/orgvend.toml"
    ))
    .unwrap();
    let mut merged = Vec::new();

    // 1. merged without any approval (GitLab let it through: no approval rules on Free)
    let a = w.open_account_mr("no approval", "nobody").await;
    merged.push((
        w.merge_as(a, BOB).await,
        a,
        "merged without the required approval",
    ));
    // 2. approved by its author only (the author is an Infrastructure member)
    let b = w.open_account_mr("self", "self").await;
    w.approve_as(b, DEV).await;
    merged.push((
        w.merge_as(b, BOB).await,
        b,
        "merged without the required approval",
    ));
    // 3. approved by a non-member
    let c = w.open_account_mr("stranger", "stranger").await;
    w.approve_as(c, MALLORY).await;
    merged.push((
        w.merge_as(c, BOB).await,
        c,
        "merged without the required approval",
    ));
    // 4. approved, then a push the approval did not see (GitLab kept the approval)
    let d = w.open_account_mr("late push", "late").await;
    w.approve_as(d, ALICE).await;
    w.settle().await;
    w.push(
        d,
        &[(
            "clients-late.tf",
            Some(
                &client_account("late")
                    .replace("\"client\", \"late\"", "\"client\", \"late\", \"x\", \"y\""),
            ),
        )],
    )
    .await;
    merged.push((
        w.merge_as(d, BOB).await,
        d,
        "merged without the required approval",
    ));
    // 5. approved, but the MR also loosened the policy it is judged by
    let loose = policy.replace("'client-[a-z0-9]+(-[a-z0-9]+)*'", "'.*'");
    let e = w
        .open_mr(
            DEV,
            "loosen",
            &[
                ("policies/orgvend.toml", Some(&loose)),
                ("clients-loose.tf", Some(&client_account("loose"))),
            ],
        )
        .await;
    w.approve_as(e, ALICE).await;
    merged.push((
        w.merge_as(e, BOB).await,
        e,
        "changed the policy it is judged by",
    ));

    w.settle().await;
    let all = moto.accounts().await;
    for (sha, iid, why) in merged {
        let run = w.apply_run(&sha).await;
        assert_eq!(run.decision, "refused", "!{iid}");
        assert!(
            run.reason.as_deref().unwrap().contains(why),
            "!{iid}: {:?}",
            run.reason
        );
        let note = w.bot_note(iid);
        assert!(note.contains("Merged, but NOT applied"), "!{iid}: {note}");
        assert!(
            w.server.ctx.store.steps(&sha).await.unwrap().is_empty(),
            "!{iid} took a step"
        );
    }
    for name in [
        "client-nobody",
        "client-self",
        "client-stranger",
        "client-late",
        "client-loose",
    ] {
        assert!(accounts_named(&all, name).is_empty(), "{name} was created");
    }
    assert_eq!(
        w.aws.as_ref().unwrap().calls().snapshot().1,
        0,
        "no mutating AWS call at all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_failed_and_throttled_creations() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let aws = w.aws.clone().unwrap();

    // creation takes a while: polled until it succeeds
    aws.script.lock().unwrap().creation_takes = Duration::from_millis(400);
    let (iid, _) = w.merge_approved("slow").await;
    w.settle().await;
    assert_eq!(
        accounts_named(&moto.accounts().await, "client-slow").len(),
        1
    );
    assert!(w.bot_note(iid).contains("✅ Applied"));

    // AWS refuses for good: the note says why and how to go on; nothing is retried by itself
    {
        let mut s = aws.script.lock().unwrap();
        s.creation_takes = Duration::ZERO;
        s.fail_next.push_back("EMAIL_ALREADY_EXISTS".into());
    }
    let (iid, sha) = w.merge_approved("dup").await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(
        note.contains("EMAIL_ALREADY_EXISTS") && note.contains("emails can never be reused"),
        "{note}"
    );
    assert!(note.contains("/orgvend retry"), "{note}");
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    assert!(accounts_named(&moto.accounts().await, "client-dup").is_empty());
    // a non-member's retry is ignored; an Infrastructure member's retry applies
    w.comment(iid, MALLORY, "/orgvend retry").await;
    w.settle().await;
    assert!(accounts_named(&moto.accounts().await, "client-dup").is_empty());
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(
        accounts_named(&moto.accounts().await, "client-dup").len(),
        1
    );
    assert!(w.bot_note(iid).contains("✅ Applied"));

    // a concurrent change (which no call retries): the step tries again, within the attempt
    aws.script.lock().unwrap().concurrent_next = 2;
    let (iid, sha) = w.merge_approved("busy").await;
    w.settle().await; // no failed attempt
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    assert!(w.bot_note(iid).contains("✅ Applied"));
    assert_eq!(aws.script.lock().unwrap().concurrent_next, 0, "it was hit");

    // a transient failure and throttling that outlast a call's own retries (the SDK's; the
    // script answers above it): the worker tries the apply again later, from the ledger,
    // once per failure
    {
        let mut s = aws.script.lock().unwrap();
        s.fail_next.push_back("INTERNAL_FAILURE".into());
        s.throttle_next = 1;
    }
    let (iid, sha) = w.merge_approved("flaky").await;
    let mut failed_attempts = 0;
    for _ in 0..8 {
        let (_, failed) = w.settle_allowing_failures().await;
        failed_attempts += failed;
        if w.apply_run(&sha).await.decision != "running" {
            break;
        }
        assert!(w.bot_note(iid).contains("orgvend will retry"));
        w.server.clock.advance_ms(600_000); // past the worker's longest backoff
    }
    assert_eq!(failed_attempts, 2, "one failed attempt per failure");
    assert_eq!(
        accounts_named(&moto.accounts().await, "client-flaky").len(),
        1
    );
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_five_creations_in_flight() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let aws = w.aws.clone().unwrap();
    aws.script.lock().unwrap().creation_takes = Duration::from_millis(500);
    let slugs: Vec<String> = (0..8).map(|i| format!("fleet{i}")).collect();
    let files: Vec<(String, String)> = slugs.iter().map(|s| account_file(s)).collect();
    let changes: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    let iid = w.open_mr(DEV, "a fleet", &changes).await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    w.merge_as(iid, BOB).await;
    w.settle().await;
    let all = moto.accounts().await;
    for s in &slugs {
        assert_eq!(accounts_named(&all, &format!("client-{s}")).len(), 1, "{s}");
    }
    assert_eq!(
        aws.max_in_flight.load(Ordering::SeqCst),
        5,
        "creations ran five at a time"
    );
    assert!(w.bot_note(iid).contains("✅ Applied: 8 accounts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_whose_delivery_was_lost_is_applied_by_reconciliation() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let iid = w.open_account_mr("Add client-quiet", "quiet").await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let sha = w.gitlab.with(|s| s.merge(iid, BOB)); // no delivery
    assert_eq!(w.bot.reconcile().await.unwrap(), 1);
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    assert_eq!(
        accounts_named(&moto.accounts().await, "client-quiet").len(),
        1
    );
    assert_eq!(
        w.bot.reconcile().await.unwrap(),
        0,
        "applied: nothing more to do"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_an_allowed_close() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let (_, _) = w.merge_approved("beta").await;
    w.settle().await;
    let id = accounts_named(&moto.accounts().await, "client-beta")[0]
        .0
        .clone();

    // retag: the new tag reaches the account
    let retagged = client_account("beta").replace(
        "map(\"client\", \"beta\")",
        "map(\"client\", \"beta\", \"team\", \"blue\")",
    );
    let iid = w
        .open_mr(DEV, "retag", &[("clients-beta.tf", Some(&retagged))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    w.merge_as(iid, BOB).await;
    w.settle().await;
    let orgs = moto.organizations().await;
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "team" && t.value() == "blue"),
        "{tags:?}"
    );

    // the policy allows closing (its own MR), then an MR removes the account
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/orgvend.toml"
    ))
    .unwrap();
    let p = w
        .open_mr(
            DEV,
            "allow closing",
            &[(
                "policies/orgvend.toml",
                Some(&policy.replace("allow_close = false", "allow_close = true")),
            )],
        )
        .await;
    w.approve_as(p, ALICE).await;
    w.approve_as(p, BOB).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(p)), "success", "{}", w.bot_note(p));
    let policy_merge = w.merge_as(p, BOB).await;
    w.settle().await;
    assert_eq!(w.apply_run(&policy_merge).await.decision, "applied");
    let iid = w
        .open_mr(DEV, "close beta", &[("clients-beta.tf", None)])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(
        w.status_state(&w.head(iid)),
        "failed",
        "a close needs two approvals"
    );
    w.approve_as(iid, BOB).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "success");
    w.merge_as(iid, BOB).await;
    w.settle().await;
    let d = orgs
        .describe_account()
        .account_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.account().unwrap().status().unwrap().as_str(), "SUSPENDED");
}

/// Kills the apply at every mutating call, before and after it reaches AWS; after a restart
/// the apply resumes: one account per declaration, and a complete baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_boundary_never_makes_a_second_account() {
    let moto = Moto::start();
    let mut w = world(&moto).await;
    let aws = w.aws.clone().unwrap();
    // a clean run tells how many mutating calls one new account takes
    let (_, _) = w.merge_approved("probe").await;
    w.settle().await;
    let per_account = aws.mutations.load(Ordering::SeqCst);
    assert!(per_account >= 15, "{per_account} mutating calls");

    for n in 1..=per_account {
        for boundary in [Boundary::Before, Boundary::After] {
            let slug = format!(
                "crash{n}{}",
                if boundary == Boundary::Before {
                    "b"
                } else {
                    "a"
                }
            );
            let start = aws.mutations.load(Ordering::SeqCst);
            aws.script.lock().unwrap().crash_at = Some((start + n, boundary));
            let (iid, sha) = w.merge_approved(&slug).await;
            w.settle_allowing_failures().await; // the handler dies at the boundary
            assert!(aws.script.lock().unwrap().crash_at.is_some());
            let d = w.server.ctx.store.list(Some("pending"), 10).await.unwrap();
            assert!(
                d.iter()
                    .any(|d| d.last_error.as_deref().is_some_and(|e| e.contains(CRASH))),
                "{slug}: the crash was not hit: {d:?}"
            );
            aws.script.lock().unwrap().crash_at = None;
            w.restart();
            w.server.clock.advance_ms(60_000);
            w.settle().await;
            let all = moto.accounts().await;
            let found = accounts_named(&all, &format!("client-{slug}"));
            assert_eq!(found.len(), 1, "{slug}: {} accounts", found.len());
            assert_baseline(&moto, &found[0].0, &format!("client-{slug}")).await;
            assert_eq!(w.apply_run(&sha).await.decision, "applied", "{slug}");
            assert!(w.bot_note(iid).contains("✅ Applied"), "{slug}");
        }
    }
}
