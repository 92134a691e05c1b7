//! Access through Okta, end to end: a merged MR for a client account ends with five Okta
//! groups named as the AWS app's group filter expects, each assigned to the app, the granted
//! groups feeding them through active rules (Admin only from the admin group), the account's
//! SAML provider made from the app's own metadata; a redelivery creates nothing; a close
//! takes it all back. AWS is moto's server; Okta is the stateful fake.

mod common;

use common::fake_aws::Scripted;
use common::fake_okta::{CLIENT_ID, ClientKey, FakeOkta, OktaState, test_es256_key};
use common::moto::Moto;
use common::world::{ALICE, BOB, World, fixture_repo, initial_state};
use orgvend::bot::apply::steps::access::{AccessClients, OktaAccess};
use orgvend::config::Secret;
use orgvend::okta::{OktaAuth, OktaClient};
use std::collections::BTreeSet;
use std::time::Duration;

const ROLES: [&str; 5] = ["Admin", "BoundedAdmin", "PowerUser", "ReadOnly", "ViewOnly"];

struct Okta {
    fake: FakeOkta,
    app: String,
}

/// Okta with the AWS app, the groups the policy grants and a member in each.
async fn okta() -> (Okta, String) {
    let (pem, public) = test_es256_key();
    let mut state = OktaState::new();
    state.client_key = Some(ClientKey::Es256(public));
    let app = state.add_app("amazon_aws");
    for (group, user) in [
        ("aws-infrastructure", "alice@example.com"),
        ("client-zeta-engineers", "eve@example.com"),
        ("auditors", "audrey@example.com"),
    ] {
        let g = state.add_group(group);
        let u = state.add_user(user);
        state.add_member(&g, &u);
    }
    (
        Okta {
            fake: FakeOkta::start(state).await,
            app,
        },
        pem,
    )
}

async fn world(moto: &Moto) -> (World, Okta) {
    world_with(moto, |s| s).await
}

/// The world with Okta chosen in the policy (and `edit` applied to the policy).
async fn world_with(moto: &Moto, edit: impl Fn(String) -> String) -> (World, Okta) {
    moto.organization().await;
    let (okta, pem) = okta().await;
    let mut files = fixture_repo();
    for (path, text) in files.iter_mut() {
        if path == "policies/orgvend.toml" {
            *text = edit(text.replace("provider = \"none\"", "provider = \"okta\""));
        }
    }
    let client = OktaClient::new(
        &okta.fake.url(),
        OktaAuth::PrivateKeyJwt {
            client_id: CLIENT_ID.into(),
            key_pem: Secret::new(pem),
            key_id: None,
            scopes: Vec::new(),
        },
        Duration::from_secs(10),
    )
    .unwrap()
    .with_retry_base(Duration::from_millis(5));
    let mut w = World::with_state(initial_state(&files), "").await;
    w.aws = Some(Scripted::new(moto.aws_with_account_api().await));
    w.access = AccessClients::default().with_okta(OktaAccess::new(client, okta.app.clone(), true));
    w.restart();
    (w, okta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_groups_per_role_assigned_to_the_app_and_fed_by_active_rules() {
    let moto = Moto::start();
    let (w, okta) = world(&moto).await;
    let (iid, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(
        w.apply_run(&sha).await.decision,
        "applied",
        "{}",
        w.bot_note(iid)
    );
    let id = moto.account_id("client-zeta").await;

    let feeds = |role: &str| -> BTreeSet<String> {
        okta.fake.with(|s| {
            let target = s
                .group_named(&format!("aws#client-zeta#{role}#{id}"))
                .unwrap_or_else(|| panic!("no group for {role}"));
            assert!(
                s.apps[&okta.app].groups.contains(&target),
                "{role}'s group is assigned to the app"
            );
            s.rules
                .values()
                .filter(|r| r.group_ids.contains(&target))
                .map(|r| {
                    assert_eq!(r.status, "ACTIVE", "{}", r.name);
                    let source = s
                        .groups
                        .values()
                        .find(|g| r.expression.contains(&g.id))
                        .unwrap();
                    source.name.clone()
                })
                .collect()
        })
    };
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        feeds("Admin"),
        set(&["aws-infrastructure"]),
        "Admin only from Infrastructure"
    );
    assert_eq!(feeds("PowerUser"), set(&["client-zeta-engineers"]));
    assert_eq!(feeds("ReadOnly"), set(&["auditors"]));
    assert_eq!(feeds("BoundedAdmin"), set(&[]));
    assert_eq!(feeds("ViewOnly"), set(&[]));
    let groups = okta.fake.with(|s| {
        s.groups
            .values()
            .filter(|g| g.name.ends_with(&format!("#{id}")))
            .count()
    });
    assert_eq!(groups, ROLES.len(), "one group per role, no more");
    // the rules fill the groups: who can sign in as what
    let power = okta.fake.with(|s| {
        let g = s
            .group_named(&format!("aws#client-zeta#PowerUser#{id}"))
            .unwrap();
        s.member_logins(&g)
    });
    assert_eq!(power, BTreeSet::from(["eve@example.com".to_string()]));

    // the account's SAML provider holds Okta's metadata for the app
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&id).await);
    let arn = format!("arn:aws:iam::{id}:saml-provider/corp-sso");
    let doc = iam
        .get_saml_provider()
        .saml_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(
        doc.saml_metadata_document()
            .unwrap()
            .contains(&format!("http://www.okta.com/{}", okta.app))
    );

    // a redelivery of the merge creates nothing at Okta
    let writes = |okta: &Okta| {
        okta.fake
            .calls()
            .iter()
            .filter(|(m, p)| m != "GET" && p.starts_with("/api/v1"))
            .count()
    };
    let before = writes(&okta);
    w.deliver_mr(iid, "merge", BOB, None).await;
    w.settle().await;
    assert_eq!(writes(&okta), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_and_a_lagging_search_never_make_a_second_group() {
    let moto = Moto::start();
    let (w, okta) = world(&moto).await;
    okta.fake.with(|s| {
        s.lost_answer_next = true; // the first group is made, its answer lost
        s.search_lag = Duration::from_millis(900); // and the search does not show it yet
    });
    let (iid, sha) = w.merge_approved("zeta").await;
    let mut failed = 0;
    for _ in 0..10 {
        failed += w.settle_allowing_failures().await.1;
        if w.apply_run(&sha).await.decision != "running" {
            break;
        }
        assert!(
            w.bot_note(iid).contains("orgvend will retry"),
            "{}",
            w.bot_note(iid)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.server.clock.advance_ms(600_000);
    }
    assert!(failed >= 1, "the lost answer failed an attempt");
    assert_eq!(
        w.apply_run(&sha).await.decision,
        "applied",
        "{}",
        w.bot_note(iid)
    );
    let id = moto.account_id("client-zeta").await;
    for role in ROLES {
        let n = okta.fake.with(|s| {
            s.groups_named(&format!("aws#client-zeta#{role}#{id}"))
                .len()
        });
        assert_eq!(n, 1, "{role}: one group, whatever the retries");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_account_takes_its_okta_groups_and_rules_back() {
    let moto = Moto::start();
    let (w, okta) = world_with(&moto, |p| {
        p.replace("allow_close = false", "allow_close = true")
    })
    .await;
    let (_, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let id = moto.account_id("client-zeta").await;
    let ours = |okta: &Okta| {
        okta.fake.with(|s| {
            let groups: Vec<String> = s
                .groups
                .values()
                .filter(|g| g.name.ends_with(&format!("#{id}")))
                .map(|g| g.id.clone())
                .collect();
            let rules = s
                .rules
                .values()
                .filter(|r| r.group_ids.iter().any(|g| groups.contains(g)))
                .count();
            let assigned = s.apps[&okta.app].groups.len();
            (groups.len(), rules, assigned)
        })
    };
    assert_eq!(ours(&okta), (5, 3, 5));
    w.merge_change("close zeta", &[("clients-zeta.tf", None)], &[ALICE, BOB])
        .await;
    assert_eq!(
        ours(&okta),
        (0, 0, 0),
        "no group, rule or app assignment left"
    );
    // the groups the policy granted from are Okta's own: untouched
    for g in ["aws-infrastructure", "client-zeta-engineers", "auditors"] {
        assert!(okta.fake.with(|s| s.group_named(g)).is_some(), "{g}");
    }
}

/// The account file of `zeta` with `access` added to its base module.
fn zeta_with(access: Option<&str>, name: &str) -> (String, String) {
    let (path, text) = common::world::account_file("zeta");
    let mut text = text
        .replace("name   = \"client-zeta\"", &format!("name   = \"{name}\""))
        .replace(
            "account_alias   = \"client-zeta\"",
            &format!("account_alias   = \"{name}\""),
        )
        .replace(
            "\"client\", \"zeta\"",
            &format!("\"client\", \"{}\"", name.trim_start_matches("client-")),
        );
    if let Some(a) = access {
        text = text.replace(
            "  account_type    = \"client\"\n",
            &format!("  account_type    = \"client\"\n  access          = {a}\n"),
        );
    }
    (path, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_takes_its_members_out_and_a_renamed_account_keeps_its_groups() {
    let moto = Moto::start();
    let (w, okta) = world_with(&moto, |p| {
        p.replace("allow_close = false", "allow_close = true")
            .replace("template = \"aws+{name}@example.com\"\n", "")
    })
    .await;
    let support_user = okta.fake.with(|s| {
        let g = s.add_group("client-zeta-support");
        let u = s.add_user("sam@example.com");
        s.add_member(&g, &u);
        u
    });
    let (path, text) = zeta_with(
        Some(r#"{ ReadOnly = ["client-zeta-support"] }"#),
        "client-zeta",
    );
    w.merge_change("Add client-zeta", &[(&path, Some(&text))], &[ALICE])
        .await;
    let id = moto.account_id("client-zeta").await;
    let read_only = |alias: &str| {
        okta.fake.with(|s| {
            s.group_named(&format!("aws#{alias}#ReadOnly#{id}"))
                .map(|g| s.members(&g))
        })
    };
    assert!(read_only("client-zeta").unwrap().contains(&support_user));

    // the grant taken back: its rule goes, and the users it put in go with it
    let (path, text) = zeta_with(None, "client-zeta");
    w.merge_change("No more support", &[(&path, Some(&text))], &[ALICE])
        .await;
    let members = read_only("client-zeta").unwrap();
    assert!(!members.contains(&support_user), "{members:?}");
    assert!(!members.is_empty(), "the auditors stay");

    // a new name and alias: the account's groups are renamed, not made again
    okta.fake.with(|s| s.add_group("client-zeta2-engineers"));
    let (path, text) = zeta_with(None, "client-zeta2");
    w.merge_change("Rename zeta", &[(&path, Some(&text))], &[ALICE])
        .await;
    assert!(read_only("client-zeta").is_none());
    assert!(read_only("client-zeta2").is_some());
    let ours = |okta: &Okta| {
        okta.fake.with(|s| {
            s.groups
                .values()
                .filter(|g| g.name.ends_with(&format!("#{id}")))
                .count()
        })
    };
    assert_eq!(ours(&okta), ROLES.len());

    // so the close finds and removes them all
    w.merge_change("Close zeta", &[(&path, None)], &[ALICE, BOB])
        .await;
    assert_eq!(ours(&okta), 0);
}
