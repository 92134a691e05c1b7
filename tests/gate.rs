//! The approval gate, attacked the way a Developer on the subaccounts project would: through
//! the fake GitLab (merge methods, side branches, versions and approval times, nested groups,
//! several committers) and moto. Every attack ends with no account, no role and no
//! repository that nobody approved; the approved path still vends.

mod common;

use common::fake_aws::Scripted;
use common::fake_gitlab::{FakeState, MergeMethod};
use common::moto::Moto;
use common::world::{
    ALICE, BOB, BOT, DEV, GROUP, MALLORY, World, account_file, client_account, fixture_repo,
    initial_state,
};
use orgvend::aws::Aws;

fn shipped_policy() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/orgvend.toml"
    ))
    .unwrap()
}

/// The shipped policy with the approval group swapped for one the attacker is in.
fn mallorys_policy() -> String {
    shipped_policy().replace("group = \"infrastructure\"", "group = \"mallory-friends\"")
}

async fn world(moto: &Moto) -> World {
    moto.organization().await;
    let mut state = initial_state(&fixture_repo());
    let mut friends = std::collections::HashMap::new();
    friends.insert(MALLORY, ("active".to_string(), 50));
    state.groups.insert("mallory-friends".into(), friends);
    World::bootstrapping_with(state, Scripted::new(moto.aws().await)).await
}

fn named<'a>(all: &'a [(String, String, String)], name: &str) -> Vec<&'a (String, String, String)> {
    all.iter().filter(|(_, n, _)| n == name).collect()
}

/// Nothing of `slug`'s account exists: no AWS account, no GitLab project.
async fn nothing_of(moto: &Moto, w: &World, slug: &str) {
    let name = format!("client-{slug}");
    assert!(
        named(&moto.accounts().await, &name).is_empty(),
        "{name} was created in AWS"
    );
    let project = format!("aws-accounts/{name}");
    assert!(
        w.gitlab.with(|s| s.project_at(&project).is_none()),
        "{project} was created in GitLab"
    );
}

fn writes(w: &World) -> u64 {
    w.aws.as_ref().unwrap().calls().snapshot().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_into_another_branch_are_never_reviewed_or_applied() {
    let moto = Moto::start();
    let w = world(&moto).await;
    // A side branch whose own policy lets the attacker's friends approve (pushed directly:
    // side branches are not protected).
    w.gitlab.with(|s: &mut FakeState| {
        let master = s.branches["master"].clone();
        let side = s.commit_by(
            DEV,
            Some(&master),
            &[("policies/orgvend.toml", Some(&mallorys_policy()))],
        );
        s.branches.insert("side".into(), side);
    });
    let (path, text) = account_file("sidecar");
    let iid = w
        .open_mr_into(DEV, "Add client-sidecar", "side", &[(&path, Some(&text))])
        .await;
    w.approve_as(iid, MALLORY).await;
    w.settle().await;
    assert!(
        w.bot_note(iid).contains("Not reviewed"),
        "{}",
        w.bot_note(iid)
    );
    assert_ne!(w.status_state(&w.head(iid)), "success");
    assert_eq!(w.bot.reconcile().await.unwrap(), 0, "nothing queued for it");

    let before = writes(&w);
    let sha = w.merge_as(iid, BOB).await;
    w.settle().await;
    nothing_of(&moto, &w, "sidecar").await;
    assert_eq!(writes(&w), before, "no mutating AWS call");
    assert!(w.server.ctx.store.apply_run(&sha).await.unwrap().is_none());
    assert!(w.bot_note(iid).contains("Not reviewed"));
    assert_eq!(w.server.ctx.metrics.ignored_branch_total("apply"), 1);
    assert_eq!(
        w.bot.reconcile().await.unwrap(),
        0,
        "and never by reconciliation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_merge_method_applies_exactly_what_landed() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let vended = |slugs: &'static [&'static str]| {
        let moto = &moto;
        async move {
            let all = moto.accounts().await;
            for slug in slugs {
                assert_eq!(
                    named(&all, &format!("client-{slug}")).len(),
                    1,
                    "client-{slug}"
                );
            }
        }
    };

    // a merge commit
    let (_, sha) = w.merge_approved("merged").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    vended(&["merged"]).await;

    // An approved MR of the accounts `slugs` (one commit each), landed by `method`: what
    // landed is applied, and exactly those accounts are vended.
    let land =
        |method: MergeMethod, title: &'static str, slugs: &'static [&'static str], squash: bool| {
            let w = &w;
            let vended = &vended;
            async move {
                w.gitlab.with(|s| s.merge_method = method);
                let iid = w.open_account_mr(title, slugs[0]).await;
                for slug in &slugs[1..] {
                    let (path, text) = account_file(slug);
                    w.push(iid, &[(&path, Some(&text))]).await;
                }
                w.gitlab
                    .with(|s| s.mrs.get_mut(&iid).unwrap().squash = squash);
                w.approve_as(iid, ALICE).await;
                w.settle().await;
                assert_eq!(w.status_state(&w.head(iid)), "success", "{title}");
                let sha = w.merge_as(iid, BOB).await;
                w.settle().await;
                assert_eq!(w.apply_run(&sha).await.decision, "applied", "{title}");
                vended(slugs).await;
                (iid, sha)
            }
        };

    // semi-linear: a merge commit on a rebased branch
    land(MergeMethod::RebaseMerge, "semi-linear", &["semi"], false).await;

    // fast-forward, one commit: no merge commit at all
    let (iid, sha) = land(MergeMethod::FastForward, "ff", &["ffone"], false).await;
    assert_eq!(sha, w.head(iid), "the landed commit is the MR's head");
    assert!(w.gitlab.with(|s| s.mrs[&iid].merge_commit_sha.is_none()));

    // fast-forward, several commits: the account of the first commit is created too
    land(
        MergeMethod::FastForward,
        "ff two",
        &["fffirst", "ffsecond"],
        false,
    )
    .await;

    // squash: a squash commit and a merge commit
    land(
        MergeMethod::Merge,
        "squash",
        &["squashed", "squashed2"],
        true,
    )
    .await;

    // squash and fast-forward: the squash commit is what lands
    land(
        MergeMethod::FastForward,
        "squash ff",
        &["sqff", "sqff2"],
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_come_from_the_target_before_the_mr_whatever_the_merge_method() {
    let moto = Moto::start();
    let w = world(&moto).await;
    for (method, squash, slug) in [
        (MergeMethod::FastForward, false, "fftrick"),
        (MergeMethod::FastForward, true, "sqtrick"),
        (MergeMethod::Merge, false, "mctrick"),
    ] {
        w.gitlab.with(|s| s.merge_method = method);
        // first the MR loosens the rules (its own commit), then adds the account
        let iid = w
            .open_mr(
                DEV,
                "two steps",
                &[("policies/orgvend.toml", Some(&mallorys_policy()))],
            )
            .await;
        let (path, text) = account_file(slug);
        w.push(iid, &[(&path, Some(&text))]).await;
        w.gitlab
            .with(|s| s.mrs.get_mut(&iid).unwrap().squash = squash);
        w.approve_as(iid, MALLORY).await;
        w.settle().await;
        assert_eq!(w.status_state(&w.head(iid)), "failed", "{slug}");
        assert!(
            w.bot_note(iid).contains("change.policy-and-accounts"),
            "{}",
            w.bot_note(iid)
        );
        let before = writes(&w);
        let sha = w.merge_as(iid, BOB).await;
        w.settle().await;
        assert_eq!(w.apply_run(&sha).await.decision, "refused", "{slug}");
        nothing_of(&moto, &w, slug).await;
        assert_eq!(writes(&w), before, "{slug}: no mutating AWS call");
        // restore the rules for the next round, through an approved MR
        w.merge_change(
            "restore",
            &[("policies/orgvend.toml", Some(&shipped_policy()))],
            &[ALICE, BOB],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_the_rules_needs_its_own_approvals_and_nothing_judges_by_unapproved_rules() {
    let moto = Moto::start();
    let w = world(&moto).await;
    // A policy change alone: the policy's own count (2), not 0
    let p = w
        .open_mr(
            DEV,
            "hand approvals to my friends",
            &[("policies/orgvend.toml", Some(&mallorys_policy()))],
        )
        .await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(p)), "failed");
    let note = w.bot_note(p);
    assert!(note.contains("changes the policy"), "{note}");
    assert!(note.contains("Needs 2 approvals"), "{note}");
    // merged anyway (GitLab Free enforces nothing): refused, said in an issue to the merger
    let sha = w.merge_as(p, BOB).await;
    w.settle().await;
    let run = w.apply_run(&sha).await;
    assert_eq!(run.decision, "refused");
    assert!(
        run.reason
            .unwrap()
            .contains("without the required approval")
    );
    let issues = w.gitlab.with(|s| s.issues_titled(&format!("!{p}")));
    assert_eq!(issues.len(), 1, "one issue for the refused merge");
    assert_eq!(issues[0].assignees, [BOB]);
    assert!(issues[0].labels.contains(&"orgvend-refused".to_string()));
    assert!(
        issues[0]
            .description
            .contains("without the required approval")
    );
    assert_eq!(w.server.ctx.metrics.apply_refused_total(), 1);
    // a redelivery updates the same issue, and counts once
    w.deliver_mr(p, "merge", BOB, None).await;
    w.settle().await;
    assert_eq!(w.gitlab.with(|s| s.issues.len()), 1);
    assert_eq!(w.server.ctx.metrics.apply_refused_total(), 1);

    // The next MR, "approved" under the unapproved rules: refused in review and at the gate
    let iid = w.open_account_mr("Add client-friendly", "friendly").await;
    w.approve_as(iid, MALLORY).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    assert!(
        w.bot_note(iid).contains("were not approved"),
        "{}",
        w.bot_note(iid)
    );
    let sha = w.merge_as(iid, BOB).await;
    w.settle().await;
    let run = w.apply_run(&sha).await;
    assert_eq!(run.decision, "refused");
    assert!(
        run.reason
            .unwrap()
            .contains("without an MR orgvend approved")
    );
    nothing_of(&moto, &w, "friendly").await;

    // Restoring the approved rules is judged by them: two Infrastructure approvals
    let revert = w
        .open_mr(
            DEV,
            "restore the rules",
            &[("policies/orgvend.toml", Some(&shipped_policy()))],
        )
        .await;
    w.approve_as(revert, MALLORY).await;
    w.approve_as(revert, ALICE).await;
    w.settle().await;
    assert_eq!(
        w.status_state(&w.head(revert)),
        "failed",
        "one of two counts"
    );
    w.approve_as(revert, BOB).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(revert)), "success");
    let sha = w.merge_as(revert, BOB).await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    // and the approved path vends again
    let (_, sha) = w.merge_approved("again").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    assert_eq!(named(&moto.accounts().await, "client-again").len(), 1);

    // An approved change of the rules becomes the rules in force
    let stricter = shipped_policy().replace(
        "required_tags = [\"owner\", \"cost-center\", \"client\"]\napprovals     = 1",
        "required_tags = [\"owner\", \"cost-center\", \"client\"]\napprovals     = 2",
    );
    assert_ne!(stricter, shipped_policy());
    let p = w
        .open_mr(
            DEV,
            "two approvals",
            &[("policies/orgvend.toml", Some(&stricter))],
        )
        .await;
    w.approve_as(p, ALICE).await;
    w.approve_as(p, BOB).await;
    w.settle().await;
    let sha = w.merge_as(p, BOB).await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let iid = w.open_account_mr("Add client-stricter", "stricter").await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert!(
        w.bot_note(iid).contains("Needs 2 approvals"),
        "{}",
        w.bot_note(iid)
    );
}

/// Newer GitLab says when an approval was given in the approvals API itself (`approved_at`);
/// older ones only in the approval's system note. Either record is GitLab's; with neither,
/// the approval does not count.
#[tokio::test]
async fn the_approvals_apis_own_time_is_used_where_gitlab_gives_it() {
    let forget_notes = |s: &mut FakeState, iid: u64| {
        for n in &mut s.mrs.get_mut(&iid).unwrap().notes {
            if n.system && n.body == "approved this merge request" {
                n.body = "(another system note)".into();
            }
        }
    };
    for in_api in [true, false] {
        let w = World::new().await;
        w.gitlab.with(|s| s.approved_at_in_api = in_api);
        let iid = w.open_account_mr("timed", "timed").await;
        w.gitlab.with(|s| s.approve(iid, ALICE));
        let (path, text) = account_file("timed");
        w.push(iid, &[(&path, Some(&text.replace("cc-1", "cc-2")))])
            .await;
        w.deliver_mr(iid, "approved", ALICE, None).await;
        w.settle().await;
        assert!(
            w.bot_note(iid).contains("before the latest push"),
            "{}",
            w.bot_note(iid)
        );
        // approved again after the push; the system notes are then out of sight
        w.gitlab.with(|s| {
            s.approve(iid, ALICE);
            forget_notes(s, iid);
        });
        w.deliver_mr(iid, "approved", ALICE, None).await;
        w.settle().await;
        let expected = if in_api { "success" } else { "failed" };
        assert_eq!(
            w.status_state(&w.head(iid)),
            expected,
            "approved_at in the API: {in_api}: {}",
            w.bot_note(iid)
        );
        if !in_api {
            assert!(w.bot_note(iid).contains("no record of this approval"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_counts_only_for_what_it_approved() {
    let moto = Moto::start();
    let w = world(&moto).await;
    w.gitlab.with(|s| {
        let g = s.groups.get_mut(GROUP).unwrap();
        g.insert(BOT, ("active".into(), 40));
        g.insert(MALLORY, ("active".into(), 10)); // a Guest
    });

    // approved on the first head, the approval delivered only after a push
    let iid = w.open_account_mr("late", "late").await;
    w.settle().await;
    w.gitlab.with(|s| s.approve(iid, ALICE));
    let (path, text) = account_file("late");
    w.push(
        iid,
        &[(
            &path,
            Some(&text.replace("\"client\", \"late\"", "\"client\", \"late\", \"x\", \"y\"")),
        )],
    )
    .await;
    w.deliver_mr(iid, "approved", ALICE, None).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    assert!(
        w.bot_note(iid).contains("before the latest push"),
        "{}",
        w.bot_note(iid)
    );
    let sha = w.merge_as(iid, BOB).await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "refused");
    nothing_of(&moto, &w, "late").await;

    // an Infrastructure member who pushed to the MR, the bot, a Guest: none counts
    let iid = w.open_account_mr("helped", "helped").await;
    let (path, text) = account_file("helped");
    w.push_as(iid, ALICE, &[(&path, Some(&text.replace("cc-1", "cc-2")))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.approve_as(iid, BOT).await;
    w.approve_as(iid, MALLORY).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("committer"), "{note}");
    assert!(note.contains("bot's approval never counts"), "{note}");
    assert!(note.contains("only guest access"), "{note}");
    let sha = w.merge_as(iid, BOB).await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "refused");
    nothing_of(&moto, &w, "helped").await;

    // a blocked member
    w.gitlab.with(|s| {
        s.groups
            .get_mut(GROUP)
            .unwrap()
            .insert(BOB, ("blocked".into(), 40))
    });
    let iid = w.open_account_mr("blocked", "blocked").await;
    w.approve_as(iid, BOB).await;
    w.settle().await;
    assert!(w.bot_note(iid).contains("`blocked`"), "{}", w.bot_note(iid));
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    assert_eq!(writes(&w), 0, "no mutating AWS call in this whole story");
}

/// The policy's approval group is `corp/infrastructure`; CAROL is a member of `corp` only.
async fn nested_world(inherited: bool) -> World {
    const CAROL: u64 = 40;
    let policy = shipped_policy()
        .replace(
            "group = \"infrastructure\"",
            "group = \"corp/infrastructure\"",
        )
        .replace("inherited = true", &format!("inherited = {inherited}"));
    let mut files = fixture_repo();
    for (p, t) in files.iter_mut() {
        if p == "policies/orgvend.toml" {
            *t = policy.clone();
        }
    }
    let mut state = initial_state(&files);
    state.user(CAROL, "carol");
    let mut corp = std::collections::HashMap::new();
    corp.insert(CAROL, ("active".to_string(), 40));
    state.groups.insert("corp".into(), corp);
    let mut infra = std::collections::HashMap::new();
    infra.insert(ALICE, ("active".to_string(), 40));
    state.groups.insert("corp/infrastructure".into(), infra);
    World::with_state(state, "").await
}

#[tokio::test]
async fn inherited_members_count_only_where_the_policy_says() {
    const CAROL: u64 = 40;
    for inherited in [true, false] {
        let w = nested_world(inherited).await;
        let iid = w.open_account_mr("Add client-nested", "nested").await;
        w.approve_as(iid, CAROL).await;
        w.settle().await;
        let expected = if inherited { "success" } else { "failed" };
        assert_eq!(
            w.status_state(&w.head(iid)),
            expected,
            "inherited = {inherited}: {}",
            w.bot_note(iid)
        );
        // a direct member counts either way
        let iid = w.open_account_mr("Add client-direct", "direct").await;
        w.approve_as(iid, ALICE).await;
        w.settle().await;
        assert_eq!(w.status_state(&w.head(iid)), "success");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_accounts_and_projects_are_never_taken_over() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let orgs = moto.organizations().await;
    // An account made outside orgvend, with the email a declaration will claim
    let made = orgs
        .create_account()
        .email("aws+client-taken@example.com")
        .account_name("someone-elses")
        .send()
        .await
        .unwrap();
    let taken = made
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string();
    // and a succeeded creation of another account under a name a declaration will use
    orgs.create_account()
        .email("other@elsewhere.example")
        .account_name("client-namesake")
        .send()
        .await
        .unwrap();

    let (iid, sha) = w.merge_approved("taken").await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(
        note.contains("already exists") && note.contains("adopt"),
        "{note}"
    );
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    // the account was not touched: still in the root, no alias, no roles
    let root = orgs.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let parent = orgs.list_parents().child_id(&taken).send().await.unwrap();
    assert_eq!(parent.parents()[0].id(), Some(root.as_str()), "moved");
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&taken).await);
    assert!(
        iam.list_account_aliases()
            .send()
            .await
            .unwrap()
            .account_aliases()
            .is_empty()
    );
    assert!(
        iam.get_role().role_name("Admin").send().await.is_err(),
        "a role was made in someone else's account"
    );
    assert!(
        w.gitlab
            .with(|s| s.project_at("aws-accounts/client-taken").is_none())
    );

    // the namesake: a new account, not the other one
    let (_, sha) = w.merge_approved("namesake").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let all = moto.accounts().await;
    let mine: Vec<_> = all
        .iter()
        .filter(|(_, _, e)| e == "aws+client-namesake@example.com")
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        named(&all, "client-namesake").len(),
        2,
        "two accounts of that name"
    );

    // adopting it deliberately: declared, reviewed, then the baseline on that account
    let declared = client_account("taken").replace(
        "email  = \"aws+client-taken@example.com\"",
        &format!("email  = \"aws+client-taken@example.com\"\n  adopt  = \"{taken}\""),
    );
    let iid = w
        .open_mr(
            DEV,
            "adopt client-taken",
            &[("clients-taken.tf", Some(&declared))],
        )
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert!(
        w.bot_note(iid)
            .contains(&format!("adopt the existing account `{taken}`")),
        "{}",
        w.bot_note(iid)
    );
    let sha = w.merge_as(iid, BOB).await;
    w.settle().await;
    assert_eq!(
        w.apply_run(&sha).await.decision,
        "applied",
        "{}",
        w.bot_note(iid)
    );
    assert_eq!(
        iam.list_account_aliases()
            .send()
            .await
            .unwrap()
            .account_aliases(),
        ["client-taken".to_string()]
    );

    // A project someone else made at the account's path
    w.gitlab.with(|s| {
        let id = 9000;
        s.projects.insert(
            id,
            common::fake_gitlab::FakeProject {
                id,
                path_with_namespace: "aws-accounts/client-squat".into(),
                namespace_id: 77,
                visibility: "private".into(),
                default_branch: "master".into(),
                creator_id: MALLORY,
                ..Default::default()
            },
        )
    });
    let (iid, sha) = w.merge_approved("squat").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    let note = w.bot_note(iid);
    assert!(note.contains("not by orgvend"), "{note}");
    let id = named(&moto.accounts().await, "client-squat")[0].0.clone();
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&id).await);
    for role in ["gitlab-ci-apply", "gitlab-ci-plan"] {
        assert!(
            iam.get_role().role_name(role).send().await.is_err(),
            "{role} trusts a project orgvend did not make"
        );
    }
    let squat = w
        .gitlab
        .with(|s| s.project_at("aws-accounts/client-squat").unwrap().clone());
    assert!(squat.commits.is_empty() && squat.variables.is_empty() && squat.protected.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permissions_boundary_is_repaired_on_every_apply() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let (iid, _) = w.merge_approved("bounded").await;
    w.settle().await;
    let id = named(&moto.accounts().await, "client-bounded")[0].0.clone();
    let iam = aws_sdk_iam::Client::new(&moto.member_config(&id).await);
    let arn = format!("arn:aws:iam::{id}:policy/orgvend-baseline-boundary");
    let document = |iam: aws_sdk_iam::Client, arn: String| async move {
        let p = iam.get_policy().policy_arn(&arn).send().await.unwrap();
        let v = p
            .policy()
            .unwrap()
            .default_version_id()
            .unwrap()
            .to_string();
        let doc = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&v)
            .send()
            .await
            .unwrap();
        urlencoding::decode(doc.policy_version().unwrap().document().unwrap())
            .unwrap()
            .into_owned()
    };
    let good = document(iam.clone(), arn.clone()).await;
    assert!(good.contains("iam:DeleteRolePermissionsBoundary"), "{good}");
    assert!(good.contains("organizations:LeaveOrganization"), "{good}");
    // someone loosened it, four times (IAM keeps five versions)
    for _ in 0..4 {
        iam.create_policy_version()
            .policy_arn(&arn)
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    }
    assert_ne!(document(iam.clone(), arn.clone()).await, good);
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    let repaired = document(iam.clone(), arn.clone()).await;
    assert!(
        orgvend::core::baseline::same_document(&repaired, &good),
        "{repaired}"
    );
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 5, "the oldest went first");
    // and an apply with nothing to repair changes nothing
    let (_, writes_before) = w.aws.as_ref().unwrap().calls().snapshot();
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(w.aws.as_ref().unwrap().calls().snapshot().1, writes_before);
}
