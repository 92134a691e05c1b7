//! Apply on merge, against moto's server: the real AWS SDK client through a layer that adds
//! what moto cannot show (creation that takes time or fails, throttling, crashes).

mod common;

use common::fake_aws::{Boundary, CRASH, Scripted};
use common::moto::Moto;
use common::world::{ALICE, BOB, DEV, MALLORY, World, client_account};
use orgvend::aws::Aws;
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn world(moto: &Moto) -> World {
    moto.organization().await;
    World::applying(Scripted::new(moto.aws().await)).await
}

/// An approved MR adding `slug`'s account, merged by BOB.
async fn merge_approved(w: &World, slug: &str) -> (u64, String) {
    let iid = w
        .open_mr(
            DEV,
            &format!("Add client-{slug}"),
            &[(&format!("clients-{slug}.tf"), Some(&client_account(slug)))],
        )
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "success");
    let sha = w.merge_as(iid, BOB).await;
    (iid, sha)
}

fn accounts_named<'a>(
    all: &'a [(String, String, String)],
    name: &str,
) -> Vec<&'a (String, String, String)> {
    all.iter().filter(|(_, n, _)| n == name).collect()
}

/// Everything the baseline promises, read straight from moto.
async fn assert_baseline(moto: &Moto, account_id: &str, alias: &str) {
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
    let (iid, merge_sha) = merge_approved(&w, "alpha").await;
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
    let run = w
        .server
        .ctx
        .store
        .apply_run(&merge_sha)
        .await
        .unwrap()
        .unwrap();
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
