//! The whole organization against moto. `orgvend import`: an organization with accounts
//! orgvend never saw (in their OUs, with tags) and a checkout that declares some of them;
//! every undeclared member is declared with `adopt = "<id>"` in the repository's style, what
//! breaks the policy is said above it, the management account is never declared, a second
//! import finds nothing. `orgvend drift`: hand-made differences, each listed once. Drift in
//! `orgvend serve`: one issue, opened, edited in place and closed, and its metric.

mod common;

use common::fake_aws::Scripted;
use common::moto::Moto;
use common::world::{World, fixture_repo, initial_state};
use orgvend::cli::import::{ImportArgs, run};
use orgvend::core::decl;
use orgvend::core::model::SourceFile;
use orgvend::core::policy::Policy;
use orgvend::core::report::{self, AssessInput};
use std::path::{Path, PathBuf};

fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("fixtures/subaccounts")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    for name in ["orgvend.toml", "clients.rego"] {
        std::fs::copy(
            root.join("policies").join(name),
            dir.path().join("policies").join(name),
        )
        .unwrap();
    }
    dir
}

fn files(dir: &Path) -> Vec<SourceFile> {
    orgvend::cli::checkout::working_tree(dir, "policies").unwrap()
}

async fn member(moto: &Moto, name: &str, ou: &str, tags: &[(&str, &str)]) -> String {
    let orgs = moto.organizations().await;
    let mut create = orgs
        .create_account()
        .account_name(name)
        .email(format!("aws+{name}@example.com"));
    for (k, v) in tags {
        create = create.tags(
            aws_sdk_organizations::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    create.send().await.unwrap();
    let id = moto.account_id(name).await;
    let root = orgs.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    orgs.move_account()
        .account_id(&id)
        .source_parent_id(root)
        .destination_parent_id(ou)
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_orgvend_never_saw_is_declared_for_review() {
    let moto = Moto::start();
    let ous = moto.organization().await;
    let hooli = member(
        &moto,
        "client-hooli",
        &ous["/Clients"],
        &[("client", "hooli"), ("owner", "data")],
    )
    .await;
    let legacy = member(&moto, "legacy-billing", &ous["/Internal"], &[]).await;
    // declared already (by email): left alone
    member(
        &moto,
        "client-acme",
        &ous["/Clients"],
        &[("client", "acme")],
    )
    .await;
    let dir = checkout();
    let before = files(dir.path());
    let aws = moto.aws().await;
    let args = ImportArgs {
        config: "unused.toml".into(),
        repo: dir.path().to_path_buf(),
        account_type: None,
        file: None,
        dry_run: false,
    };
    let code = run(&aws, &args).await.unwrap();
    assert_eq!(code, 0);
    let clients = std::fs::read_to_string(dir.path().join("clients.tf")).unwrap();
    assert!(
        clients.contains(&format!("adopt  = \"{hooli}\"")),
        "{clients}"
    );
    assert!(clients.contains("### Client - Hooli ###"), "{clients}");
    let internal = std::fs::read_to_string(dir.path().join("internal.tf")).unwrap();
    assert!(
        internal.contains(&format!("adopt  = \"{legacy}\"")),
        "{internal}"
    );
    assert!(
        internal.contains("# orgvend import: this account breaks the policy"),
        "{internal}"
    );
    assert!(internal.contains("naming pattern"), "{internal}");
    assert_eq!(
        clients.matches("client-acme\"").count(),
        2,
        "acme is not declared twice"
    );

    // `orgvend check --base` of the import: the clean account passes, the legacy one is
    // blocked exactly where the comment says
    let after = files(dir.path());
    let policy = Policy::load(&after, "policies").unwrap();
    let (base, head) = (
        decl::read(&before, &policy.sources),
        decl::read(&after, &policy.sources),
    );
    let r = report::assess(AssessInput::local(Some(&base), &head, &policy));
    let blocked: Vec<String> = r
        .violations
        .iter()
        .filter_map(|v| v.module.clone())
        .collect();
    assert!(blocked.iter().all(|m| m.contains("legacy")), "{blocked:?}");
    assert!(!blocked.is_empty());
    assert!(
        r.plan
            .changes
            .iter()
            .any(|c| format!("{c:?}").contains(&hooli)),
        "the plan adopts {hooli}"
    );

    // nothing more to declare
    let again = run(&aws, &args).await.unwrap();
    assert_eq!(again, 0);
    assert_eq!(files(dir.path()), after);
}

/// `orgvend drift` against moto: hand-made differences, each listed once, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_lists_every_difference_and_nothing_else() {
    let moto = Moto::start();
    let ous = moto.organization().await;
    let dir = checkout();
    for f in ["management.tf", "internal.tf"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let base = [("owner", "platform-team"), ("managed-by", "orgvend")];
    let tags = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        base.iter().chain(extra).copied().collect()
    };
    member(
        &moto,
        "client-acme",
        &ous["/Clients"],
        &tags(&[("cost-center", "cc-1000"), ("client", "acme")]),
    )
    .await;
    let globex = member(
        &moto,
        "client-globex",
        &ous["/Internal"],
        &tags(&[("cost-center", "cc-3100"), ("client", "globex")]),
    )
    .await;
    member(
        &moto,
        "client-umbrella",
        &ous["/Clients"],
        &tags(&[("cost-center", "cc-1000")]),
    )
    .await;
    member(&moto, "shadow-it", &ous["/Internal"], &[]).await;
    let aws = moto.aws().await;
    let all = orgvend::cli::drift::items(&aws, dir.path(), None)
        .await
        .unwrap();
    // accounts made by hand have no baseline inside: each declared one that exists shows it
    // (its alias, SAML provider, boundary, roles, state bucket, lock table)
    for name in ["client-acme", "client-globex", "client-umbrella"] {
        let inside: Vec<&str> = all
            .iter()
            .filter(|i| i.account == name)
            .map(|i| i.kind.name())
            .collect();
        for kind in [
            "alias",
            "saml",
            "boundary",
            "role",
            "state_bucket",
            "lock_table",
        ] {
            assert!(inside.contains(&kind), "{name}: {kind} in {inside:?}");
        }
    }
    // the organization's own differences, each once
    let items: Vec<_> = all
        .into_iter()
        .filter(|i| {
            [
                "missing",
                "status",
                "name",
                "email",
                "ou",
                "tags",
                "undeclared",
            ]
            .contains(&i.kind.name())
        })
        .collect();
    let got: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.account.as_str(), i.kind.name()))
        .collect();
    assert_eq!(
        got,
        [
            ("client-globex", "ou"),
            ("client-initech", "missing"),
            ("client-umbrella", "tags"),
            ("shadow-it", "undeclared"),
        ],
        "{items:#?}"
    );
    assert_eq!(items[0].account_id.as_deref(), Some(globex.as_str()));
    assert_eq!(
        (items[0].declared.as_str(), items[0].existing.as_str()),
        ("/Clients", "/Internal")
    );
    let args = orgvend::cli::drift::DriftArgs {
        config: "unused.toml".into(),
        repo: dir.path().to_path_buf(),
        format: orgvend::cli::check::Format::Json,
    };
    assert_eq!(
        orgvend::cli::drift::run(&aws, &args, None).await.unwrap(),
        1
    );
}

/// Drift in `orgvend serve`: once per period over the replicas, one issue kept up to date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_keeps_one_drift_issue() {
    let moto = Moto::start();
    let ous = moto.organization().await;
    // a repository without accounts yet: policy and variables only
    let files: Vec<(String, String)> = fixture_repo()
        .into_iter()
        .filter(|(p, _)| !["management.tf", "internal.tf", "clients.tf"].contains(&p.as_str()))
        .collect();
    let mut w =
        World::with_state(initial_state(&files), "[drift]\ninterval_seconds = 3600\n").await;
    w.aws = Some(Scripted::new(moto.aws().await));
    w.restart();
    w.merge_approved("alpha").await;
    w.settle().await;
    let issue = |w: &World| {
        w.gitlab.with(|s| {
            s.issues
                .values()
                .find(|i| i.title == orgvend::bot::drift::TITLE)
                .map(|i| (i.iid, i.state.clone(), i.description.clone()))
        })
    };
    // vended as declared: no drift, no issue
    assert_eq!(w.bot.drift_now().await.unwrap(), []);
    assert!(issue(&w).is_none());
    let metrics = w.server.ctx.metrics.render(None, None);
    assert!(
        metrics.contains("orgvend_drift_items{kind=\"ou\"} 0"),
        "{metrics}"
    );

    // moved by hand: the issue appears with it
    let id = moto.account_id("client-alpha").await;
    let orgs = moto.organizations().await;
    let mv = |from: &str, to: &str| {
        orgs.move_account()
            .account_id(&id)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
    };
    mv(&ous["/Clients"], &ous["/Internal"]).await.unwrap();
    let items = w.bot.drift_now().await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let (iid, state, body) = issue(&w).expect("a drift issue");
    assert_eq!(state, "opened");
    assert!(body.contains("| ou | `client-alpha`"), "{body}");
    assert!(
        w.server
            .ctx
            .metrics
            .render(None, None)
            .contains("orgvend_drift_items{kind=\"ou\"} 1")
    );
    // a second run: the same issue, not even edited (whoever took it keeps it)
    w.gitlab
        .with(|s| s.issues.get_mut(&iid).unwrap().assignees = vec![common::world::ALICE]);
    w.gitlab.clear_calls();
    w.bot.drift_now().await.unwrap();
    assert_eq!(issue(&w).unwrap().0, iid);
    assert!(
        !w.gitlab.calls().iter().any(|(m, _)| m == "PUT"),
        "{:?}",
        w.gitlab.calls()
    );
    assert_eq!(
        w.gitlab.with(|s| s.issues[&iid].assignees.clone()),
        [common::world::ALICE]
    );
    assert_eq!(w.gitlab.with(|s| s.issues.len()), 1);

    // moved back: the issue is closed
    mv(&ous["/Internal"], &ous["/Clients"]).await.unwrap();
    assert_eq!(w.bot.drift_now().await.unwrap(), []);
    assert_eq!(issue(&w).unwrap().1, "closed");

    // on the timer: a delivery of the inbox, once per period over the replicas
    mv(&ous["/Clients"], &ous["/Internal"]).await.unwrap();
    assert!(w.bot.drift_if_due().await.unwrap(), "queued");
    assert!(
        !w.bot.drift_if_due().await.unwrap(),
        "not again in the same period"
    );
    w.settle().await;
    let opened = |w: &World| {
        w.gitlab
            .with(|s| s.issues.values().filter(|i| i.state == "opened").count())
    };
    assert_eq!(opened(&w), 1);
    // a webhook cannot ask for one (only the timer's deliveries carry its mark)
    let forged = common::Delivery::new(
        "System Hook",
        br#"{"object_kind":"orgvend_drift"}"#.to_vec(),
    );
    assert_eq!(w.server.post(&forged).await.status, 200);
    mv(&ous["/Internal"], &ous["/Clients"]).await.unwrap();
    w.settle().await;
    assert_eq!(opened(&w), 1, "a forged drift delivery runs nothing");
}
