//! The last step of vending, end to end through the fake GitLab and moto: the account's own
//! project, its files, its protected master, its CI/CD variables and its keyless CI roles —
//! exactly once, and repaired on the next apply when someone changed them.

mod common;

use common::fake_aws::Scripted;
use common::fake_gitlab::{FakeProtection, FakeState};
use common::moto::Moto;
use common::world::{ALICE, BOB, ISSUER, World};
use orgvend::aws::Aws;

const PROJECT: &str = "aws-accounts/client-zenith";

async fn world(moto: &Moto) -> World {
    moto.organization().await;
    World::bootstrapping(Scripted::new(moto.aws().await)).await
}

async fn merge_zenith(w: &World) -> u64 {
    let (iid, _) = w.merge_approved("zenith").await;
    w.settle().await;
    iid
}

/// The GitLab calls that change something.
fn mutations(calls: &[(String, String)]) -> Vec<(String, String)> {
    calls
        .iter()
        .filter(|(m, p)| m != "GET" && !p.contains("/notes") && !p.contains("/statuses/"))
        .cloned()
        .collect()
}

fn project(w: &World) -> common::fake_gitlab::FakeProject {
    w.gitlab.with(|s: &mut FakeState| {
        s.project_at(PROJECT)
            .unwrap_or_else(|| panic!("no project {PROJECT}"))
            .clone()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_bootstraps_the_account_repository_once() {
    let moto = Moto::start();
    let w = world(&moto).await;
    vend_once(&moto, &w).await;
}

/// The same story with the store on PostgreSQL: review, apply ledger, notes, bootstrap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_postgresql() {
    let pg = common::pg::Postgres::start();
    let moto = Moto::start();
    moto.organization().await;
    let w = World::bootstrapping_on(
        common::world::initial_state(&common::world::fixture_repo()),
        Scripted::new(moto.aws().await),
        Some(pg.database().await),
    )
    .await;
    assert!(w.server.ctx.store.is_shared());
    vend_once(&moto, &w).await;
}

async fn vend_once(moto: &Moto, w: &World) {
    let iid = merge_zenith(w).await;

    let note = w.bot_note(iid);
    assert!(note.contains("✅ Applied: 1 account"), "{note}");
    let all = moto.accounts().await;
    let id = all
        .iter()
        .find(|(_, n, _)| n == "client-zenith")
        .map(|(id, _, _)| id.clone())
        .expect("the account exists");

    // the project: in the group, private, master its default branch, one template commit
    let p = project(w);
    assert_eq!(p.visibility, "private");
    assert_eq!(p.default_branch, "master");
    assert_eq!(p.commits.len(), 1, "{:?}", p.commits);
    let files = &p.branches["master"];
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            ".gitlab-ci.yml",
            "README.md",
            "backend.tf",
            "main.tf",
            "providers.tf"
        ]
    );
    let bucket = "example-tfstate-client-zenith".to_string();
    assert!(
        files["backend.tf"].contains(&format!("bucket         = \"{bucket}\"")),
        "{}",
        files["backend.tf"]
    );
    assert!(files["backend.tf"].contains("dynamodb_table = \"terraform-locks\""));
    assert!(files["providers.tf"].contains(&format!("allowed_account_ids = [\"{id}\"]")));
    assert!(
        files[".gitlab-ci.yml"].contains(&format!("aud: \"{ISSUER}\"")),
        "{}",
        files[".gitlab-ci.yml"]
    );
    assert!(files["README.md"].starts_with("# client-zenith\n"));

    // master: nobody pushes, maintainers merge, no force push (the instance default that let
    // maintainers push was replaced)
    assert_eq!(
        p.protected.get("master"),
        Some(&FakeProtection {
            push: 0,
            merge: 40,
            allow_force_push: false
        })
    );
    // the variables the pipeline needs; only master sees the apply role
    let var = |k: &str| {
        p.variables
            .get(k)
            .unwrap_or_else(|| panic!("no variable {k}"))
    };
    assert_eq!(var("AWS_ACCOUNT_ID").value, id);
    assert_eq!(var("AWS_DEFAULT_REGION").value, "us-east-1");
    assert_eq!(var("TF_STATE_BUCKET").value, bucket);
    assert_eq!(var("TF_LOCK_TABLE").value, "terraform-locks");
    assert_eq!(
        var("AWS_PLAN_ROLE_ARN").value,
        format!("arn:aws:iam::{id}:role/gitlab-ci-plan")
    );
    assert!(!var("AWS_PLAN_ROLE_ARN").protected);
    assert_eq!(
        var("AWS_APPLY_ROLE_ARN").value,
        format!("arn:aws:iam::{id}:role/gitlab-ci-apply")
    );
    assert!(var("AWS_APPLY_ROLE_ARN").protected);
    assert!(
        !p.variables.keys().any(|k| k.contains("SECRET")),
        "no long-lived keys"
    );

    // keyless CI in the account: the instance's OIDC provider, roles trusting only this project
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&id).await);
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    let arns: Vec<&str> = providers
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn())
        .collect();
    assert_eq!(
        arns,
        [format!(
            "arn:aws:iam::{id}:oidc-provider/gitlab.example.com"
        )]
    );
    for (role, sub, managed, bounded) in [
        (
            "gitlab-ci-plan",
            format!("project_path:{PROJECT}:ref_type:branch:ref:*"),
            "ReadOnlyAccess",
            false,
        ),
        (
            "gitlab-ci-apply",
            format!("project_path:{PROJECT}:ref_type:branch:ref:master"),
            "AdministratorAccess",
            true,
        ),
    ] {
        let r = iam.get_role().role_name(role).send().await.unwrap();
        let r = r.role().unwrap();
        let trust: serde_json::Value = serde_json::from_str(
            &urlencoding::decode(r.assume_role_policy_document().unwrap()).unwrap(),
        )
        .unwrap();
        let st = &trust["Statement"][0];
        assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity", "{role}");
        assert_eq!(
            st["Principal"]["Federated"],
            format!("arn:aws:iam::{id}:oidc-provider/gitlab.example.com")
        );
        let cond = st["Condition"].to_string();
        assert!(cond.contains(&format!("\"{sub}\"")), "{role}: {cond}");
        assert!(
            cond.contains("\"gitlab.example.com:aud\":\"https://gitlab.example.com\""),
            "{cond}"
        );
        let attached = iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap();
        assert!(
            attached
                .attached_policies()
                .iter()
                .any(|a| a.policy_arn().unwrap().ends_with(&format!("/{managed}")))
        );
        assert_eq!(
            r.permissions_boundary().is_some(),
            bounded,
            "{role} boundary"
        );
    }

    // the note links to the repository
    assert!(
        note.contains(&format!(
            "<a href=\"https://gitlab.example.com/{PROJECT}\">"
        )),
        "{note}"
    );

    // a second apply (a redelivery and a retry) changes nothing, in GitLab or AWS
    let aws = w.aws.as_ref().unwrap();
    let (_, aws_writes) = aws.calls().snapshot();
    w.gitlab.clear_calls();
    w.deliver_mr(iid, "merge", BOB, None).await;
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(mutations(&w.gitlab.calls()), Vec::new());
    assert_eq!(aws.calls().snapshot().1, aws_writes, "AWS writes");
    assert_eq!(project(w).commits.len(), 1);
    let projects = w.gitlab.with(|s| s.projects.len());
    assert_eq!(projects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_apply_repairs_what_someone_changed() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let iid = merge_zenith(&w).await;
    let id = project(&w).variables["AWS_ACCOUNT_ID"].value.clone();

    // someone unprotects master, edits a variable, deletes another, and widens a CI role's
    // trust to any project
    w.gitlab.with(|s| {
        let pid = s.project_at(PROJECT).unwrap().id;
        let p = s.projects.get_mut(&pid).unwrap();
        p.protected.remove("master");
        p.variables.get_mut("AWS_APPLY_ROLE_ARN").unwrap().protected = false;
        p.variables.remove("TF_LOCK_TABLE");
    });
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&id).await);
    let wide = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{id}:oidc-provider/gitlab.example.com")},
        "Action": "sts:AssumeRoleWithWebIdentity"}]});
    iam.update_assume_role_policy()
        .role_name("gitlab-ci-apply")
        .policy_document(wide.to_string())
        .send()
        .await
        .unwrap();

    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;

    let p = project(&w);
    assert_eq!(
        p.protected.get("master"),
        Some(&FakeProtection {
            push: 0,
            merge: 40,
            allow_force_push: false
        }),
        "master is protected again"
    );
    assert!(p.variables["AWS_APPLY_ROLE_ARN"].protected);
    assert_eq!(p.variables["TF_LOCK_TABLE"].value, "terraform-locks");
    assert_eq!(p.commits.len(), 1, "the template is not committed twice");
    let r = iam
        .get_role()
        .role_name("gitlab-ci-apply")
        .send()
        .await
        .unwrap();
    let trust = urlencoding::decode(r.role().unwrap().assume_role_policy_document().unwrap())
        .unwrap()
        .into_owned();
    assert!(
        trust.contains(&format!(
            "project_path:{PROJECT}:ref_type:branch:ref:master"
        )),
        "{trust}"
    );
    let note = w.bot_note(iid);
    assert!(note.contains("✅ Applied: 1 account"), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_group_fails_with_what_to_do_and_a_retry_finishes() {
    let moto = Moto::start();
    let w = world(&moto).await;
    w.gitlab.with(|s| s.group_ids.remove("aws-accounts"));
    let iid = merge_zenith(&w).await;
    let note = w.bot_note(iid);
    assert!(note.contains("The apply failed"), "{note}");
    assert!(
        note.contains("the GitLab group `aws-accounts` does not exist"),
        "{note}"
    );
    assert!(w.gitlab.with(|s| s.projects.is_empty()));

    w.gitlab
        .with(|s| s.group_ids.insert("aws-accounts".into(), 77));
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(note.contains("✅ Applied: 1 account"), "{note}");
    assert_eq!(project(&w).commits.len(), 1);
    assert_eq!(
        moto.accounts()
            .await
            .iter()
            .filter(|(_, n, _)| n == "client-zenith")
            .count(),
        1
    );
}
