//! Access to each new account, through IAM Identity Center (moto's `sso-admin` and
//! `identitystore` behind a fault layer for what moto cannot show), and the rule that no
//! group but the admin group ever holds an admin role. Okta: `tests/okta_access.rs`.

mod common;

use common::fake_aws::Scripted;
use common::fault_ic::FaultIc;
use common::moto::Moto;
use common::world::{ALICE, BOB, DEV, World, account_file, fixture_repo, initial_state};
use orgvend::aws::identity_center::{IdentityCenter, PermissionSet};
use orgvend::aws::sdk::SdkIdentityCenter;
use orgvend::bot::apply::steps::access::AccessClients;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

type Ic = Arc<FaultIc<SdkIdentityCenter>>;

/// The shipped policy with Identity Center chosen (and `edit` applied).
fn repo(edit: impl Fn(String) -> String) -> Vec<(String, String)> {
    let mut files = fixture_repo();
    for (path, text) in files.iter_mut() {
        if path == "policies/orgvend.toml" {
            assert!(
                text.contains("provider = \"none\""),
                "the shipped policy names its provider"
            );
            *text = edit(text.replace("provider = \"none\"", "provider = \"identity-center\""));
        }
    }
    files
}

/// The groups SCIM would have pushed from the identity provider.
const GROUPS: [&str; 4] = [
    "aws-infrastructure",
    "client-zeta-engineers",
    "client-beta-engineers",
    "auditors",
];

async fn world_with(moto: &Moto, files: Vec<(String, String)>, groups: &[&str]) -> (World, Ic) {
    moto.organization().await;
    let aws = Scripted::new(moto.aws().await);
    let ic = Arc::new(FaultIc::new(aws.inner.identity_center()));
    let store = ic.instance().await.unwrap().identity_store_id;
    for g in groups {
        ic.inner.create_group(&store, g).await.unwrap();
    }
    let mut w = World::with_state(initial_state(&files), "").await;
    w.aws = Some(aws);
    w.access = AccessClients::default().with_identity_center(ic.clone());
    w.restart();
    (w, ic)
}

async fn world(moto: &Moto) -> (World, Ic) {
    world_with(moto, repo(|p| p), &GROUPS).await
}

/// The permission set called `name`, read from moto.
async fn permission_set(ic: &Ic, name: &str) -> PermissionSet {
    let inst = ic.inner.instance().await.unwrap();
    ic.inner
        .permission_sets(&inst.arn)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no permission set {name}"))
}

/// (permission set, group) assigned on the account, read from moto.
async fn assignments(ic: &Ic, account: &str, groups: &[&str]) -> BTreeSet<(String, String)> {
    let inner = &ic.inner;
    let inst = inner.instance().await.unwrap();
    let mut name_of = BTreeMap::new();
    for g in groups {
        if let Some(id) = inner.group_id(&inst.identity_store_id, g).await.unwrap() {
            name_of.insert(id, g.to_string());
        }
    }
    let sets: BTreeMap<String, String> = inner
        .permission_sets(&inst.arn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.arn, s.name))
        .collect();
    let mut out = BTreeSet::new();
    for arn in sets.keys() {
        for p in inner.assigned(&inst.arn, account, arn).await.unwrap() {
            let gid = p.id().to_string();
            let group = name_of.get(&gid).cloned().unwrap_or(gid);
            out.insert((sets[arn].clone(), group));
        }
    }
    out
}

fn expected(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(s, g)| (s.to_string(), g.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_center_grants_the_declared_groups_and_nothing_else() {
    let moto = Moto::start();
    let (w, ic) = world(&moto).await;
    ic.script.lock().unwrap().in_progress_polls = 2; // AWS's assignments take a while
    let (iid, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let id = moto.account_id("client-zeta").await;
    assert_eq!(
        assignments(&ic, &id, &GROUPS).await,
        expected(&[
            ("orgvend-Admin", "aws-infrastructure"),
            ("orgvend-PowerUser", "client-zeta-engineers"),
            ("orgvend-ReadOnly", "auditors"),
        ])
    );
    // one permission set per role, as the policy says
    let inst = ic.inner.instance().await.unwrap();
    let sets = ic.inner.permission_sets(&inst.arn).await.unwrap();
    let names: BTreeSet<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "orgvend-Admin",
            "orgvend-BoundedAdmin",
            "orgvend-PowerUser",
            "orgvend-ReadOnly",
            "orgvend-ViewOnly"
        ])
    );
    for s in &sets {
        assert_eq!(s.session_duration.as_deref(), Some("PT8H"), "{}", s.name);
        let bounded = ic.boundary_of(&s.arn);
        if s.name == "orgvend-BoundedAdmin" {
            assert_eq!(bounded.as_deref(), Some("orgvend-baseline-boundary"));
        } else {
            assert_eq!(bounded, None, "{}", s.name);
        }
    }
    let view = sets.iter().find(|s| s.name == "orgvend-ViewOnly").unwrap();
    assert_eq!(
        ic.managed_policies(&inst.arn, &view.arn).await.unwrap(),
        ["arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"]
    );
    assert_eq!(
        ic.outstanding.load(Ordering::SeqCst),
        0,
        "every operation was polled to its end"
    );
    // the note says who may do what
    let note = w.bot_note(iid);
    assert!(note.contains("client-zeta-engineers"), "{note}");
    assert!(note.contains("PowerUser"), "{note}");

    // a redelivery of the merge creates nothing, changes nothing
    let writes = ic.writes.load(Ordering::SeqCst);
    w.deliver_mr(iid, "merge", BOB, None).await;
    w.settle().await;
    assert_eq!(ic.writes.load(Ordering::SeqCst), writes);

    // a second account reuses the permission sets: one more of each assignment, no new set
    let (_, sha) = w.merge_approved("beta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    assert_eq!(ic.inner.permission_sets(&inst.arn).await.unwrap().len(), 5);
    let created = ic.created.lock().unwrap().clone();
    let unique: BTreeSet<_> = created.iter().collect();
    assert_eq!(unique.len(), created.len(), "no assignment was made twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_and_a_conflict_create_nothing_twice() {
    let moto = Moto::start();
    let (w, ic) = world(&moto).await;
    {
        let mut s = ic.script.lock().unwrap();
        s.lose_next_assignment = true;
        s.in_progress_polls = 1;
    }
    let (iid, sha) = w.merge_approved("zeta").await;
    let mut failed = 0;
    for round in 0..6 {
        failed += w.settle_allowing_failures().await.1;
        if w.apply_run(&sha).await.decision != "running" {
            break;
        }
        assert!(w.bot_note(iid).contains("orgvend will retry"));
        if round == 0 {
            ic.script.lock().unwrap().conflict_next = 1; // the next attempt meets a conflict
        }
        w.server.clock.advance_ms(600_000);
    }
    assert_eq!(
        failed, 2,
        "one failed attempt for the lost answer, one for the conflict"
    );
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let id = moto.account_id("client-zeta").await;
    assert_eq!(assignments(&ic, &id, &GROUPS).await.len(), 3);
    let created = ic.created.lock().unwrap().clone();
    let unique: BTreeSet<_> = created.iter().collect();
    assert_eq!(
        unique.len(),
        created.len(),
        "the assignment whose answer was lost was found, not made again: {created:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_the_allowed_assignments_are_outstanding() {
    let moto = Moto::start();
    let (mut w, ic) = world_with(
        &moto,
        repo(|p| p),
        &[
            "aws-infrastructure",
            "auditors",
            "client-a0-engineers",
            "client-a1-engineers",
            "client-a2-engineers",
        ],
    )
    .await;
    ic.script.lock().unwrap().in_progress_polls = 4;
    w.access = AccessClients::default()
        .with_identity_center(ic.clone())
        .with_max_outstanding(2);
    w.restart();
    let files: Vec<(String, String)> = (0..3).map(|i| account_file(&format!("a{i}"))).collect();
    let changes: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    let iid = w.open_mr(DEV, "three clients", &changes).await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    w.merge_as(iid, BOB).await;
    w.settle().await;
    for i in 0..3 {
        let id = moto.account_id(&format!("client-a{i}")).await;
        let groups = [
            "aws-infrastructure",
            "auditors",
            &format!("client-a{i}-engineers"),
        ];
        assert_eq!(assignments(&ic, &id, &groups).await.len(), 3, "client-a{i}");
    }
    let max = ic.max_outstanding.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "at most 2 outstanding, saw {max}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_missing_from_the_identity_store_is_reported_not_created() {
    let moto = Moto::start();
    let (w, ic) = world_with(&moto, repo(|p| p), &["aws-infrastructure", "auditors"]).await;
    let (iid, sha) = w.merge_approved("zeta").await;
    w.settle_allowing_failures().await;
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("no group `client-zeta-engineers`"), "{note}");
    let store = ic.instance().await.unwrap().identity_store_id;
    assert_eq!(
        ic.inner
            .group_id(&store, "client-zeta-engineers")
            .await
            .unwrap(),
        None
    );

    // where the policy lets orgvend create groups (no external identity provider), it does
    let moto = Moto::start();
    let files = repo(|p| p.replace("create_groups = false", "create_groups = true"));
    let (w, ic) = world_with(&moto, files, &["aws-infrastructure", "auditors"]).await;
    let (_, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let store = ic.instance().await.unwrap().identity_store_id;
    assert!(
        ic.inner
            .group_id(&store, "client-zeta-engineers")
            .await
            .unwrap()
            .is_some()
    );
}

/// The client account `slug` whose base module adds `access`.
fn account_with_access(slug: &str, access: &str) -> (String, String) {
    let (path, text) = account_file(slug);
    let text = text.replace(
        "  account_type    = \"client\"\n",
        &format!("  account_type    = \"client\"\n  access          = {access}\n"),
    );
    assert!(text.contains("access"), "{text}");
    (path, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mr_granting_admin_to_a_client_group_is_blocked_at_its_line() {
    let w = World::with_state(initial_state(&repo(|p| p)), "").await;
    let (path, text) = account_with_access("zeta", r#"{ Admin = ["client-zeta-engineers"] }"#);
    let line = text.lines().position(|l| l.contains("access")).unwrap() + 1;
    let iid = w
        .open_mr(DEV, "Add client-zeta", &[(&path, Some(&text))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("access.admin"), "{note}");
    assert!(
        note.contains(&format!("{path}:{line}")),
        "{path}:{line} in {note}"
    );

    // within what the type allows, the same MR passes and the note lists the added group
    let (path, text) = account_with_access("beta", r#"{ ReadOnly = ["client-beta-support"] }"#);
    let iid = w
        .open_mr(DEV, "Add client-beta", &[(&path, Some(&text))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(
        w.status_state(&w.head(iid)),
        "success",
        "{}",
        w.bot_note(iid)
    );
    let note = w.bot_note(iid);
    assert!(
        note.contains("Who can sign in")
            && note.contains("members of `aws-infrastructure` as `Admin`"),
        "{note}"
    );
    assert!(
        note.contains("members of `client-beta-support` as `ReadOnly`")
            && note.contains("added by this declaration"),
        "{note}"
    );

    // a group outside the allowed pattern, or a role the type does not open, is blocked
    for access in [
        r#"{ ReadOnly = ["client-zeta-support"] }"#,
        r#"{ PowerUser = ["client-gamma-contractors"] }"#,
    ] {
        let (path, text) = account_with_access("gamma", access);
        let iid = w
            .open_mr(DEV, "Add client-gamma", &[(&path, Some(&text))])
            .await;
        w.approve_as(iid, ALICE).await;
        w.settle().await;
        assert_eq!(w.status_state(&w.head(iid)), "failed", "{access}");
        assert!(w.bot_note(iid).contains("access.not_allowed"), "{access}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_follow_the_declaration_and_hand_made_assignments_are_taken_back() {
    let moto = Moto::start();
    let groups = [
        "aws-infrastructure",
        "client-zeta-engineers",
        "auditors",
        "client-zeta-support",
    ];
    let files = repo(|p| p.replace("allow_close = false", "allow_close = true"));
    let (w, ic) = world_with(&moto, files, &groups).await;
    let (_, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let id = moto.account_id("client-zeta").await;

    // someone assigns ReadOnly on the account to the admin group by hand, in the console
    let inst = ic.inner.instance().await.unwrap();
    let read_only = permission_set(&ic, "orgvend-ReadOnly").await;
    let infra = ic
        .inner
        .group_id(&inst.identity_store_id, "aws-infrastructure")
        .await
        .unwrap()
        .unwrap();
    ic.inner
        .create_assignment(&inst.arn, &id, &read_only.arn, &infra)
        .await
        .unwrap();
    // and ReadOnly to one user directly
    moto.sso_admin()
        .await
        .create_account_assignment()
        .instance_arn(&inst.arn)
        .target_id(&id)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(&read_only.arn)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id("90676a1f-0000-4000-8000-00000000beef")
        .send()
        .await
        .unwrap();

    // an MR adds the client's support group, read only
    let (path, text) = account_with_access("zeta", r#"{ ReadOnly = ["client-zeta-support"] }"#);
    w.merge_change("zeta support", &[(&path, Some(&text))], &[ALICE])
        .await;
    assert_eq!(
        assignments(&ic, &id, &groups).await,
        expected(&[
            ("orgvend-Admin", "aws-infrastructure"),
            ("orgvend-PowerUser", "client-zeta-engineers"),
            ("orgvend-ReadOnly", "auditors"),
            ("orgvend-ReadOnly", "client-zeta-support"),
        ]),
        "the declared groups, and the hand-made assignments (a group's, a user's) taken back"
    );

    // taking the group out of the declaration takes its grant back
    let (path, text) = account_file("zeta");
    w.merge_change("no more zeta support", &[(&path, Some(&text))], &[ALICE])
        .await;
    assert_eq!(
        assignments(&ic, &id, &groups).await,
        expected(&[
            ("orgvend-Admin", "aws-infrastructure"),
            ("orgvend-PowerUser", "client-zeta-engineers"),
            ("orgvend-ReadOnly", "auditors"),
        ])
    );

    // closing the account takes every grant back before the account goes
    w.merge_change("close zeta", &[(&path, None)], &[ALICE, BOB])
        .await;
    assert!(assignments(&ic, &id, &groups).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_permission_set_is_repaired_and_provisioned_again() {
    let moto = Moto::start();
    let (w, ic) = world(&moto).await;
    let (_, sha) = w.merge_approved("zeta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    assert_eq!(ic.provisioned_all.load(Ordering::SeqCst), 0);
    // someone widens ReadOnly by hand
    let inst = ic.inner.instance().await.unwrap();
    let read_only = permission_set(&ic, "orgvend-ReadOnly").await;
    ic.attach_managed_policy(
        &inst.arn,
        &read_only.arn,
        "arn:aws:iam::aws:policy/AdministratorAccess",
    )
    .await
    .unwrap();
    ic.script.lock().unwrap().in_progress_polls = 2;
    // the next apply that entitles ReadOnly puts it back and provisions it again
    let (iid, sha) = w.merge_approved("beta").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    assert_eq!(
        ic.managed_policies(&inst.arn, &read_only.arn)
            .await
            .unwrap(),
        ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    );
    assert_eq!(ic.provisioned_all.load(Ordering::SeqCst), 1);
    assert_eq!(ic.outstanding.load(Ordering::SeqCst), 0);
    let ledger = w.bot_note(iid);
    assert!(ledger.contains("Applied"), "{ledger}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_set_orgvend_did_not_make_is_never_taken_over() {
    let moto = Moto::start();
    let (w, ic) = world(&moto).await;
    let inst = ic.inner.instance().await.unwrap();
    // someone made a permission set of that name, with more in it than the policy says
    ic.inner
        .create_permission_set(&inst.arn, "orgvend-PowerUser", "made by hand", "PT12H")
        .await
        .unwrap();
    let (iid, sha) = w.merge_approved("zeta").await;
    w.settle_allowing_failures().await;
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("orgvend did not make"), "{note}");
    let id = moto.account_id("client-zeta").await;
    assert!(
        !assignments(&ic, &id, &GROUPS)
            .await
            .iter()
            .any(|(set, _)| set == "orgvend-PowerUser"),
        "nothing was granted through it"
    );
}
