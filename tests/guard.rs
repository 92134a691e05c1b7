//! The account's guard on moto: drift made by hand (the key's rotation off and the key
//! disabled, the recorder stopped, a rule deleted, the trail's validation off and logging
//! stopped) is repaired by the next apply; a recorder of another name (Control Tower's) is
//! adopted, never doubled; an organization trail that is not logging stops an account that
//! relies on it, with what to do.

mod common;

use common::fake_aws::Scripted;
use common::moto::Moto;
use common::world::{ALICE, BOB, World};

async fn world(moto: &Moto) -> World {
    moto.organization().await;
    World::applying(Scripted::new(moto.aws().await)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_made_drift_is_repaired_by_the_next_apply() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let (iid, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let id = moto.account_id("client-zeta").await;
    moto.assert_guard(&id, "client-zeta").await;

    // someone with the account's full admin weakens everything
    let cfg = moto.member_config(&id).await;
    let kms = aws_sdk_kms::Client::new(&cfg);
    let key = kms
        .describe_key()
        .key_id("alias/orgvend-client-zeta")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    kms.disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(&key).send().await.unwrap();
    let config = aws_sdk_config::Client::new(&cfg);
    let recorder = config
        .describe_configuration_recorders()
        .send()
        .await
        .unwrap()
        .configuration_recorders()[0]
        .name()
        .unwrap()
        .to_string();
    config
        .stop_configuration_recorder()
        .configuration_recorder_name(&recorder)
        .send()
        .await
        .unwrap();
    config
        .delete_config_rule()
        .config_rule_name("root-account-mfa-enabled")
        .send()
        .await
        .unwrap();
    let ct = aws_sdk_cloudtrail::Client::new(&cfg);
    ct.update_trail()
        .name("orgvend-trail")
        .enable_log_file_validation(false)
        .send()
        .await
        .unwrap();
    ct.stop_logging()
        .name("orgvend-trail")
        .send()
        .await
        .unwrap();
    // and the trail stops logging writes
    ct.put_event_selectors()
        .trail_name("orgvend-trail")
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::ReadOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // and the delivery channel gets a topic of someone else's
    config
        .put_delivery_channel()
        .delivery_channel(
            aws_sdk_config::types::DeliveryChannel::builder()
                .name("default")
                .s3_bucket_name("example-config-logs")
                .sns_topic_arn("arn:aws:sns:us-east-1:999999999999:elsewhere")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // the next apply (here: the merge delivered again) puts it all back
    w.deliver_mr(iid, "merge", BOB, None).await;
    w.settle().await;
    moto.assert_guard(&id, "client-zeta").await;
    let meta = kms.describe_key().key_id(&key).send().await.unwrap();
    assert!(
        meta.key_metadata().unwrap().enabled(),
        "the key is enabled again"
    );
    // and says so in the ledger
    let steps = w
        .server
        .ctx
        .store
        .steps(&sha)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.detail)
        .filter(|d| d.starts_with("repaired"))
        .collect::<Vec<_>>();
    let all = steps.join("\n");
    for what in [
        "the key enabled",
        "rotation on",
        "records again",
        "validated",
        "logs again",
        "every management event",
        "nothing else",
    ] {
        assert!(all.contains(what), "{what}: {all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_of_another_name_is_adopted_not_doubled() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let (iid, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let id = moto.account_id("client-zeta").await;
    let config = aws_sdk_config::Client::new(&moto.member_config(&id).await);
    // replaced by hand with a stopped recorder of another name, recording less
    let old = config
        .describe_configuration_recorders()
        .send()
        .await
        .unwrap()
        .configuration_recorders()[0]
        .clone();
    config
        .stop_configuration_recorder()
        .configuration_recorder_name(old.name().unwrap())
        .send()
        .await
        .unwrap();
    config
        .delete_delivery_channel()
        .delivery_channel_name("default")
        .send()
        .await
        .unwrap();
    config
        .delete_configuration_recorder()
        .configuration_recorder_name(old.name().unwrap())
        .send()
        .await
        .unwrap();
    config
        .put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("aws-controltower-BaselineConfigRecorder")
                .role_arn(old.role_arn().unwrap())
                .recording_group(
                    aws_sdk_config::types::RecordingGroup::builder()
                        .all_supported(false)
                        .include_global_resource_types(false)
                        .resource_types(aws_sdk_config::types::ResourceType::Bucket)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    w.deliver_mr(iid, "merge", BOB, None).await;
    w.settle().await;
    let recorders = config
        .describe_configuration_recorders()
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = recorders
        .configuration_recorders()
        .iter()
        .filter_map(|r| r.name())
        .collect();
    assert_eq!(
        names,
        ["aws-controltower-BaselineConfigRecorder"],
        "adopted, not doubled"
    );
    moto.assert_guard(&id, "client-zeta").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_trail_that_is_not_logging_stops_the_account_that_relies_on_it() {
    let moto = Moto::start();
    let w = world(&moto).await;
    // internal accounts rely on the organization's trail (the shipped policy)
    let internal = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/subaccounts/internal.tf"
    ))
    .unwrap()
    .split("### Internal - Shared services ###")
    .next()
    .unwrap()
    .replace("internal_ci", "internal_tools")
    .replace("internal-ci", "internal-tools");
    let ct = aws_sdk_cloudtrail::Client::new(&moto.management_config().await);
    ct.stop_logging().name("org-trail").send().await.unwrap();
    let iid = w
        .open_mr(
            common::world::DEV,
            "Add internal-tools",
            &[("internal-tools.tf", Some(&internal))],
        )
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(
        w.status_state(&w.head(iid)),
        "success",
        "{}",
        w.bot_note(iid)
    );
    let sha = w.merge_as(iid, BOB).await;
    w.settle_allowing_failures().await;
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("no organization trail is logging"), "{note}");

    // logging again: `/orgvend retry` finishes the account
    ct.start_logging().name("org-trail").send().await.unwrap();
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(
        w.apply_run(&sha).await.decision,
        "applied",
        "{}",
        w.bot_note(iid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_alias_names_the_same_key_and_the_boundary_follows() {
    use common::world::{account_file, fixture_repo, initial_state};
    let moto = Moto::start();
    moto.organization().await;
    let mut files = fixture_repo();
    for (path, text) in files.iter_mut() {
        if path == "policies/orgvend.toml" {
            *text = text.replace("template = \"aws+{name}@example.com\"\n", "");
        }
    }
    let mut w = World::with_state(initial_state(&files), "").await;
    w.aws = Some(Scripted::new(moto.aws_with_account_api().await));
    w.restart();
    let (path, text) = account_file("zeta");
    w.merge_change("Add client-zeta", &[(&path, Some(&text))], &[ALICE])
        .await;
    let id = moto.account_id("client-zeta").await;
    let renamed = text
        .replace("\"client-zeta\"", "\"client-zeta2\"")
        .replace("\"client\", \"zeta\"", "\"client\", \"zeta2\"");
    assert_ne!(renamed, text);
    w.merge_change("Rename zeta", &[(&path, Some(&renamed))], &[ALICE])
        .await;
    let kms = aws_sdk_kms::Client::new(&moto.member_config(&id).await);
    let key_of = |alias: &'static str| {
        let kms = kms.clone();
        async move {
            kms.describe_key()
                .key_id(alias)
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_string()
        }
    };
    assert_eq!(
        key_of("alias/orgvend-client-zeta2").await,
        key_of("alias/orgvend-client-zeta").await,
        "the same key, under its new name"
    );
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&id).await);
    let arn = format!("arn:aws:iam::{id}:policy/orgvend-baseline-boundary");
    let version = iam
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_string();
    let doc = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(version)
        .send()
        .await
        .unwrap();
    let doc = urlencoding::decode(doc.policy_version().unwrap().document().unwrap())
        .unwrap()
        .into_owned();
    assert!(
        doc.contains("alias/orgvend-client-zeta2"),
        "the boundary protects the key by its new name: {doc}"
    );
}
