//! The account after its creation, against moto and the fake GitLab: drift made by hand
//! inside an account and in its project is listed on the drift issue and repaired by
//! `/orgvend apply` there (by a member of the approval group only); a declaration a refused
//! merge changed is never repaired; a rename in an MR goes through the Account Management
//! API (moto has none: its fake).

mod common;

use common::fake_account::FakeAccount;
use common::fake_aws::Scripted;
use common::fake_gitlab::hooks;
use common::moto::Moto;
use common::world::{ALICE, BOB, DEV, MALLORY, World, fixture_repo, initial_state};
use orgvend::aws::sdk::SdkAws;

async fn comment_issue(w: &World, iid: u64, by: u64, body: &str) {
    let hook = w.gitlab.with(|s| {
        let note = s.comment_issue(iid, by, body);
        hooks::issue_note_hook(s, iid, note)
    });
    let r = w
        .server
        .post(&common::Delivery::new(
            "Note Hook",
            hook.to_string().into_bytes(),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn drift_issue(w: &World) -> Option<(u64, String, String)> {
    w.gitlab.with(|s| {
        s.issues
            .values()
            .find(|i| i.title == orgvend::bot::drift::TITLE)
            .map(|i| (i.iid, i.state.clone(), i.description.clone()))
    })
}

fn kinds(items: &[orgvend::core::drift::Item]) -> Vec<(String, &'static str)> {
    items
        .iter()
        .map(|i| (i.account.clone(), i.kind.name()))
        .collect()
}

/// A repository without accounts yet (the fixture's were merged before orgvend): its policy
/// (`edit` applied to `policies/orgvend.toml`) and variables.
fn repository(edit: impl Fn(&str) -> String) -> Vec<(String, String)> {
    fixture_repo()
        .into_iter()
        .filter(|(p, _)| !["management.tf", "internal.tf", "clients.tf"].contains(&p.as_str()))
        .map(|(p, t)| {
            let t = if p == "policies/orgvend.toml" {
                edit(&t)
            } else {
                t
            };
            (p, t)
        })
        .collect()
}

/// The world on `moto` (and the fake Account Management API, if any), its policy `edit`ed.
async fn world(
    moto: &Moto,
    account_api: Option<&FakeAccount>,
    edit: impl Fn(&str) -> String,
) -> World {
    let mut target = moto.target();
    target.account_endpoint_url = account_api.map(|a| a.url.clone());
    World::bootstrapping_with(
        initial_state(&repository(edit)),
        Scripted::new(SdkAws::new(&target).await),
    )
    .await
}

/// client-alpha vended in a world with the fake Account Management API (which knows it, and
/// whose trusted access is `trusted`), the policy `edit`ed: the world, the API and alpha's id.
async fn alpha_with_account_api(
    moto: &Moto,
    trusted: bool,
    edit: impl Fn(&str) -> String,
) -> (World, FakeAccount, String) {
    moto.organization().await;
    let api = FakeAccount::start().await;
    api.state.lock().unwrap().trusted_access = trusted;
    let w = world(moto, Some(&api), edit).await;
    vend(&w, "alpha").await;
    let alpha = moto.account_id("client-alpha").await;
    api.state
        .lock()
        .unwrap()
        .register(&alpha, "client-alpha", "aws+client-alpha@example.com");
    (w, api, alpha)
}

/// The file declaring client-alpha, and its text on master.
fn alpha_file(w: &World) -> (&'static str, String) {
    let file = "clients-alpha.tf";
    let master = w.master();
    let text = w
        .gitlab
        .with(|s| s.file_at(&master, file))
        .expect("alpha's file");
    (file, text)
}

/// alpha's declaration renamed to `client-<slug>` (its client tag following).
fn renamed(text: &str, slug: &str) -> String {
    let out = text
        .replace(
            r#"name   = "client-alpha""#,
            &format!(r#"name   = "client-{slug}""#),
        )
        .replace(
            r#"map("client", "alpha")"#,
            &format!(r#"map("client", "{slug}")"#),
        );
    assert_ne!(out, text);
    out
}

async fn vend(w: &World, slug: &str) {
    let (_, sha) = w.merge_approved(slug).await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_inside_accounts_and_projects_is_listed_and_repaired_on_the_issue() {
    let moto = Moto::start();
    moto.organization().await;
    let w = world(&moto, None, str::to_string).await;
    vend(&w, "alpha").await;
    vend(&w, "beta").await;
    // as vended: nothing differs, inside the accounts or in their projects
    assert_eq!(w.bot.drift_now().await.unwrap(), []);

    // by hand, in alpha: its alias deleted, a role's policy detached, its state bucket's
    // versioning suspended, its lock table deleted; in beta's project: master unprotected
    // and a CI variable edited
    let alpha = moto.account_id("client-alpha").await;
    let cfg = moto.member_config(&alpha).await;
    let iam = aws_sdk_iam::Client::new(&cfg);
    iam.delete_account_alias()
        .account_alias("client-alpha")
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("ReadOnly")
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await
        .unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build(),
    );
    s3.put_bucket_versioning()
        .bucket("example-tfstate-client-alpha")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_dynamodb::Client::new(&cfg)
        .delete_table()
        .table_name("terraform-locks")
        .send()
        .await
        .unwrap();
    w.gitlab.with(|s| {
        let p = s
            .projects
            .values_mut()
            .find(|p| p.path_with_namespace.ends_with("/client-beta"))
            .expect("beta's project");
        p.protected.clear();
        p.variables.get_mut("AWS_ACCOUNT_ID").unwrap().value = "000000000000".into();
    });

    let items = w.bot.drift_now().await.unwrap();
    assert_eq!(
        kinds(&items),
        [
            ("client-alpha".to_string(), "alias"),
            ("client-alpha".to_string(), "role"),
            ("client-alpha".to_string(), "state_bucket"),
            ("client-alpha".to_string(), "lock_table"),
            ("client-beta".to_string(), "protection"),
            ("client-beta".to_string(), "variables"),
        ],
        "{items:#?}"
    );
    let role = items.iter().find(|i| i.kind.name() == "role").unwrap();
    assert!(
        role.declared.contains("ReadOnly") && role.existing.contains("policy"),
        "{role:?}"
    );
    let (iid, state, body) = drift_issue(&w).expect("the drift issue");
    assert_eq!(state, "opened");
    for want in [
        "| alias | `client-alpha`",
        "| lock_table |",
        "| protection | `client-beta`",
        "AWS_ACCOUNT_ID (changed)",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }

    // a webhook cannot ask for a repair, whoever it names (only orgvend's own deliveries
    // carry the mark)
    let forged = common::Delivery::new(
        "System Hook",
        br#"{"object_kind":"orgvend_drift","repair":"","asker_id":20,"asker":"infra-alice"}"#
            .to_vec(),
    );
    assert_eq!(w.server.post(&forged).await.status, 200);
    w.settle().await;
    assert_eq!(
        w.bot.drift_now().await.unwrap().len(),
        6,
        "nothing repaired"
    );

    // someone outside the approval group asks: refused, nothing changes
    comment_issue(&w, iid, MALLORY, "/orgvend apply").await;
    w.settle().await;
    let notes = w.gitlab.with(|s| s.bot_issue_notes(iid));
    assert!(
        notes
            .last()
            .is_some_and(|n| n.body.contains("only members of `infrastructure`")),
        "{notes:?}"
    );
    assert_eq!(w.bot.drift_now().await.unwrap().len(), 6);

    // a member asks: everything put back, the issue closed
    comment_issue(&w, iid, ALICE, "/orgvend apply").await;
    w.settle().await;
    let notes = w.gitlab.with(|s| s.bot_issue_notes(iid));
    let note = &notes.last().unwrap().body;
    assert!(note.contains("Repaired: 2 accounts"), "{note}");
    assert!(note.contains("Asked by `infra-alice`"), "{note}");
    assert_eq!(w.bot.drift_now().await.unwrap(), []);
    assert_eq!(drift_issue(&w).unwrap().1, "closed");
    let protected = w.gitlab.with(|s| {
        s.projects
            .values()
            .find(|p| p.path_with_namespace.ends_with("/client-beta"))
            .map(|p| p.protected.contains_key("master"))
    });
    assert_eq!(protected, Some(true));
}

/// A merge the gate refused changed an account's declaration: drift shows it, and a repair
/// leaves that account alone (it would apply what nobody approved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_merge_is_not_made_good_by_a_repair() {
    let moto = Moto::start();
    let ous = moto.organization().await;
    let w = world(&moto, None, str::to_string).await;
    vend(&w, "alpha").await;
    let alpha = moto.account_id("client-alpha").await;

    // DEV's MR tags alpha as someone else's client; merged by BOB without an approval
    let (file, text) = alpha_file(&w);
    let changed = text.replace(
        r#"map("client", "alpha")"#,
        r#"map("client", "alpha", "billing", "mallory-corp")"#,
    );
    assert_ne!(text, changed);
    let iid = w
        .open_mr(DEV, "retag alpha", &[(file, Some(&changed))])
        .await;
    w.settle().await;
    let sha = w.merge_as(iid, BOB).await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "refused");

    // and by hand, alpha moved out of its OU
    let orgs = moto.organizations().await;
    orgs.move_account()
        .account_id(&alpha)
        .source_parent_id(&ous["/Clients"])
        .destination_parent_id(&ous["/Internal"])
        .send()
        .await
        .unwrap();
    let items = w.bot.drift_now().await.unwrap();
    assert_eq!(
        kinds(&items),
        [
            ("client-alpha".to_string(), "unapplied"),
            ("client-alpha".to_string(), "ou"),
            ("client-alpha".to_string(), "tags"),
        ],
        "{items:#?}"
    );
    let (issue, _, _) = drift_issue(&w).unwrap();
    comment_issue(&w, issue, ALICE, "/orgvend apply").await;
    w.settle().await;
    let note = w
        .gitlab
        .with(|s| s.bot_issue_notes(issue))
        .last()
        .unwrap()
        .body
        .clone();
    assert!(note.contains("Not repaired"), "{note}");
    assert!(
        note.contains("differs from what was last applied under approval"),
        "{note}"
    );
    // nothing changed in AWS: still out of its OU, and not tagged as the refused merge says
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(&alpha)
        .send()
        .await
        .unwrap();
    assert!(
        !tags.tags().iter().any(|t| t.key() == "billing"),
        "{tags:?}"
    );
    let parent = orgs.list_parents().child_id(&alpha).send().await.unwrap();
    assert_eq!(parent.parents()[0].id(), Some(ous["/Internal"].as_str()));
}

/// A rename in an MR is planned and applied through the Account Management API; without
/// trusted access for it, the apply fails terminally and says what to enable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_goes_through_the_account_management_api() {
    let moto = Moto::start();
    let (w, api, alpha) = alpha_with_account_api(&moto, true, |t| {
        t.replace("alias_equals_name = true", "alias_equals_name = false")
    })
    .await;
    let (file, text) = alpha_file(&w);
    let renamed = renamed(&text, "alpha-analytics");
    let (iid, _) = w
        .merge_change("rename alpha", &[(file, Some(&renamed))], &[ALICE])
        .await;
    let note = w.bot_note(iid);
    assert!(
        note.contains("✅ Account: rename the account to `client-alpha-analytics`"),
        "{note}"
    );
    assert_eq!(
        api.state.lock().unwrap().accounts[&alpha].name,
        "client-alpha-analytics"
    );
    assert_eq!(w.bot.drift_now().await.unwrap(), []);
}

/// Without trusted access for AWS Account Management, a rename fails once, terminally, and
/// says what to enable; nothing is retried blindly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_without_trusted_access_says_what_to_enable() {
    let moto = Moto::start();
    let (w, api, alpha) = alpha_with_account_api(&moto, false, |t| {
        t.replace("alias_equals_name = true", "alias_equals_name = false")
    })
    .await;
    let (file, text) = alpha_file(&w);
    let renamed = renamed(&text, "alpha-bi");
    let iid = w
        .open_mr(DEV, "rename alpha", &[(file, Some(&renamed))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let sha = w.merge_as(iid, BOB).await;
    w.settle_allowing_failures().await;
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("enable-aws-service-access"), "{note}");
    let calls = api.state.lock().unwrap().calls.clone();
    assert_eq!(
        calls
            .iter()
            .filter(|(op, _)| op == "PutAccountName")
            .count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        api.state.lock().unwrap().accounts[&alpha].name,
        "client-alpha"
    );
    // drift shows the name and tags AWS still has, and a declaration not applied through
    let items = w.bot.drift_now().await.unwrap();
    assert_eq!(
        kinds(&items),
        [
            ("client-alpha-bi".to_string(), "unapplied"),
            ("client-alpha-bi".to_string(), "name"),
            ("client-alpha-bi".to_string(), "tags"),
        ],
        "{items:#?}"
    );
    // trusted access enabled, `/orgvend retry`: renamed, and nothing differs
    api.state.lock().unwrap().trusted_access = true;
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(
        w.apply_run(&sha).await.decision,
        "applied",
        "{}",
        w.bot_note(iid)
    );
    assert_eq!(
        api.state.lock().unwrap().accounts[&alpha].name,
        "client-alpha-bi"
    );
    assert_eq!(w.bot.drift_now().await.unwrap(), []);
}

/// Closures within AWS's 30-day quota: one AWS refuses for its quota is parked (not failed)
/// and goes through on `/orgvend retry`, waiting out PENDING_CLOSURE; the account is
/// suspended, moved to the policy's OU and its project archived. One over the quota the
/// ledger counts is parked before any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closures_stay_within_the_quota_and_are_parked_beyond_it() {
    let moto = Moto::start();
    let ous = moto.organization().await;
    let files = repository(|t| {
        t.replace(
            "allow_close = false",
            "allow_close = true\nsuspended_ou = \"/Suspended\"\nclose_quota = 2",
        )
    });
    let aws = Scripted::new(moto.aws().await);
    {
        let mut s = aws.script.lock().unwrap();
        s.closure_takes = std::time::Duration::from_millis(300);
        s.close_refusals
            .push_back("CLOSE_ACCOUNT_QUOTA_EXCEEDED".into());
    }
    let w = World::bootstrapping_with(initial_state(&files), aws.clone()).await;
    for slug in ["alpha", "beta", "gamma"] {
        vend(&w, slug).await;
    }
    let close = |slug: &'static str| {
        let w = &w;
        async move {
            let iid = w
                .open_mr(
                    DEV,
                    &format!("close {slug}"),
                    &[(&format!("clients-{slug}.tf"), None)],
                )
                .await;
            // a close needs two approvals
            w.approve_as(iid, ALICE).await;
            w.approve_as(iid, BOB).await;
            w.settle().await;
            assert_eq!(
                w.status_state(&w.head(iid)),
                "success",
                "{}",
                w.bot_note(iid)
            );
            let sha = w.merge_as(iid, BOB).await;
            w.settle_allowing_failures().await;
            (iid, sha)
        }
    };
    let status = |name: &'static str| {
        let moto = &moto;
        async move {
            let id = moto.account_id(name).await;
            let a = moto
                .organizations()
                .await
                .describe_account()
                .account_id(id)
                .send()
                .await
                .unwrap();
            a.account().unwrap().status().unwrap().as_str().to_string()
        }
    };

    // AWS says its quota is spent: parked, nothing failed, the delivery waits for a person
    let (alpha_mr, alpha_sha) = close("alpha").await;
    assert_eq!(w.apply_run(&alpha_sha).await.decision, "parked");
    let note = w.bot_note(alpha_mr);
    assert!(note.contains("Parked"), "{note}");
    assert!(note.contains("/orgvend retry"), "{note}");
    assert_eq!(status("client-alpha").await, "ACTIVE");
    let parked = w.server.ctx.store.list(Some("parked"), 10).await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    // asked again: closed, suspended after PENDING_CLOSURE, moved, its project archived
    w.comment(alpha_mr, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(
        w.apply_run(&alpha_sha).await.decision,
        "applied",
        "{}",
        w.bot_note(alpha_mr)
    );
    assert_eq!(status("client-alpha").await, "SUSPENDED");
    let alpha = moto.account_id("client-alpha").await;
    let orgs = moto.organizations().await;
    let parent = orgs.list_parents().child_id(&alpha).send().await.unwrap();
    assert_eq!(parent.parents()[0].id(), Some(ous["/Suspended"].as_str()));
    let archived = w.gitlab.with(|s| {
        s.projects
            .values()
            .find(|p| p.path_with_namespace.ends_with("/client-alpha"))
            .map(|p| p.archived)
    });
    assert_eq!(archived, Some(true));

    // the second of the quota of 2: through
    let (_, beta_sha) = close("beta").await;
    assert_eq!(w.apply_run(&beta_sha).await.decision, "applied");
    // the third: the ledger counts 2 in 30 days; parked before any CloseAccount
    let before = aws.mutations.load(std::sync::atomic::Ordering::SeqCst);
    let (gamma_mr, gamma_sha) = close("gamma").await;
    assert_eq!(w.apply_run(&gamma_sha).await.decision, "parked");
    assert!(
        w.bot_note(gamma_mr)
            .contains("2 of 2 accounts closed by orgvend in the last 30 days"),
        "{}",
        w.bot_note(gamma_mr)
    );
    assert_eq!(status("client-gamma").await, "ACTIVE");
    assert_eq!(
        aws.mutations.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    // nothing of the close is done before the quota allows it: its project is as it was
    let archived = w.gitlab.with(|s| {
        s.projects
            .values()
            .find(|p| p.path_with_namespace.ends_with("/client-gamma"))
            .map(|p| p.archived)
    });
    assert_eq!(archived, Some(false));
    // drift: the closed accounts are neither missing nor undeclared
    assert_eq!(
        kinds(&w.bot.drift_now().await.unwrap()),
        [("client-gamma".to_string(), "undeclared")]
    );
}

/// An email change where the policy allows it: the apply starts it (AWS mails a code to the
/// new address) and says what is awaited, drift shows it pending, and the code — read by
/// `orgvend accept-email`, never in a note — completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_is_started_by_the_apply_and_completed_with_the_code() {
    let moto = Moto::start();
    let (w, api, alpha) = alpha_with_account_api(&moto, true, |t| {
        t.replace("template = \"aws+{name}@example.com\"", "")
            .replace(
                "allow_close = false",
                "allow_close = false\nallow_email_change = true",
            )
    })
    .await;
    let aws = w.aws.clone().unwrap();
    let (file, text) = alpha_file(&w);
    let new = "aws+alpha-root@example.com";
    let changed = text.replace("aws+client-alpha@example.com", new);
    let (iid, _) = w
        .merge_change(
            "alpha's new root email",
            &[(file, Some(&changed))],
            &[ALICE],
        )
        .await;
    let note = w.bot_note(iid);
    assert!(note.contains("awaiting the one-time code"), "{note}");
    assert!(note.contains("orgvend accept-email"), "{note}");
    let (to, code) = api.state.lock().unwrap().outbox.last().cloned().unwrap();
    assert_eq!(to, new);
    assert!(!note.contains(&code), "the code never lands in a note");

    let items = w.bot.drift_now().await.unwrap();
    assert_eq!(
        kinds(&items),
        [("client-alpha".to_string(), "email")],
        "{items:#?}"
    );
    assert!(items[0].existing.contains("pending"), "{items:#?}");
    assert!(items[0].fix.contains("accept-email"), "{items:#?}");

    // a wrong code is refused; the right one completes it
    let wrong = orgvend::config::Secret::new("000000");
    assert!(
        orgvend::cli::email::accept(&aws, &alpha, new, &wrong)
            .await
            .is_err()
    );
    let code = orgvend::config::Secret::new(code);
    orgvend::cli::email::accept(&aws, &alpha, new, &code)
        .await
        .unwrap();
    assert_eq!(api.state.lock().unwrap().accounts[&alpha].email, new);
    assert_eq!(w.bot.drift_now().await.unwrap(), []);
}
