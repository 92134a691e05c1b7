//! The MR review end to end: the real router, the real reqwest client, the stateful fake
//! GitLab; deliveries built from the fake's state; the worker stepped until idle.

mod common;

use common::fake_gitlab::Fault;
use common::world::{ALICE, BOB, DEV, MALLORY, World, client_account, without_footer};

#[tokio::test]
async fn an_mr_adding_an_account_gets_one_note_and_a_failed_status_until_approved() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-zeta", "zeta").await;
    w.settle().await;
    let head = w.head(iid);
    let status = w.status(&head).expect("a status on the head commit");
    assert_eq!(status.state, "failed");
    assert_eq!(
        status.description,
        "Passes policy; waiting for 1 more approval from infrastructure"
    );
    assert_eq!(status.git_ref.as_deref(), Some("mr-1"));
    assert!(
        status
            .target_url
            .as_deref()
            .unwrap()
            .contains("/-/merge_requests/1#note_")
    );
    // pending came first, while orgvend looked
    let states: Vec<String> = w
        .gitlab
        .with(|s| s.statuses_of(&head))
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["pending", "failed"]);
    // the head commit's id follows every change of the fixture: not part of the snapshot
    let note = without_footer(&w.bot_note(iid)).replace(&format!("`{}`", &head[..8]), "`<head>`");
    insta::assert_snapshot!("review_opened", note);

    // a non-member and the author approve: nothing changes
    w.approve_as(iid, MALLORY).await;
    w.approve_as(iid, DEV).await;
    w.settle().await;
    assert_eq!(w.status_state(&head), "failed");
    let note = w.bot_note(iid);
    assert!(
        note.contains("Not counted: `mallory` \\(not a member of `infrastructure`\\)"),
        "{note}"
    );
    assert!(
        note.contains("Not counted: `dev` \\(the MR's author"),
        "{note}"
    );

    // a member approves: safe to merge, still one note, edited in place
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&head), "success");
    let note = w.bot_note(iid);
    assert!(note.contains("### ✅ Ready to merge"), "{note}");
    assert!(note.contains("Counted: `infra-alice`"), "{note}");
    let creates = w
        .gitlab
        .calls()
        .iter()
        .filter(|(m, p)| m == "POST" && p.ends_with("/notes"))
        .count();
    assert_eq!(creates, 1, "the note is created once, then edited");

    // a member withdraws the approval: blocked again
    w.unapprove_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&head), "failed");
}

#[tokio::test]
async fn a_push_after_approval_needs_approving_again() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-eta", "eta").await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "success");
    // GitLab here keeps approvals on push; the policy (reset_on_push) does not count them
    let new_head = w
        .push(
            iid,
            &[(
                "clients-eta.tf",
                Some(&client_account("eta").replace(
                    "\"client\", \"eta\"",
                    "\"client\", \"eta\", \"owner\", \"eta-team\"",
                )),
            )],
        )
        .await;
    w.settle().await;
    assert_eq!(w.status_state(&new_head), "failed");
    let note = w.bot_note(iid);
    assert!(
        note.contains("before the latest push; approve again"),
        "{note}"
    );
    assert!(note.contains("infra-alice"), "{note}");
    // approving the new head counts
    w.gitlab
        .with(|s| s.mrs.get_mut(&iid).unwrap().approvals.clear());
    w.approve_as(iid, BOB).await;
    w.settle().await;
    assert_eq!(w.status_state(&new_head), "success");
}

#[tokio::test]
async fn a_violation_blocks_with_file_line_and_fix() {
    let w = World::new().await;
    let bad = client_account("theta").replace("aws+client-theta@example.com", "theta@gmail.com");
    let iid = w
        .open_mr(DEV, "Add client-theta", &[("clients-theta.tf", Some(&bad))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let status = w.status(&w.head(iid)).unwrap();
    assert_eq!(status.state, "failed");
    assert_eq!(status.description, "Blocked: 2 policy violations");
    let note = w.bot_note(iid);
    assert!(
        note.contains("`clients-theta.tf:6` `subaccount_client_theta` `email.domain`"),
        "{note}"
    );
    assert!(note.contains("**Fix:**"), "{note}");
}

#[tokio::test]
async fn an_mr_cannot_loosen_the_policy_it_is_judged_by() {
    let w = World::new().await;
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/orgvend.toml"
    ))
    .unwrap();
    let loose = policy
        .replace("'client-[a-z0-9]+(-[a-z0-9]+)*'", "'.*'")
        .replace("template = \"aws+{name}@example.com\"", "");
    let account =
        client_account("iota").replace("name   = \"client-iota\"", "name   = \"IOTA corp\"");
    let iid = w
        .open_mr(
            DEV,
            "Loosen the rules and add iota",
            &[
                ("policies/orgvend.toml", Some(&loose)),
                ("clients-iota.tf", Some(&account)),
            ],
        )
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    let note = w.bot_note(iid);
    assert!(
        note.contains("`naming.name`"),
        "the target branch's naming rule applies: {note}"
    );
}

#[tokio::test]
async fn a_payload_claiming_an_approval_the_api_does_not_show_changes_nothing() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-kappa", "kappa").await;
    w.settle().await;
    // a forged-looking but authentic delivery: "approved" by ALICE, but GitLab knows no approval
    w.deliver_mr(iid, "approved", ALICE, None).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    assert!(
        w.bot_note(iid)
            .contains("Approved by no one who counts yet")
    );
}

#[tokio::test]
async fn gitlab_failures_are_retried_and_the_note_ends_up_right() {
    let w = World::new().await;
    let iid = w.open_account_mr_quietly("Add client-lambda", "lambda");
    w.gitlab.with(|s| {
        // three failures in a row: the client's own retries (one after Retry-After) get through
        s.faults.extend([
            Fault::ServerError,
            Fault::RateLimited { retry_after_s: 1 },
            Fault::ServerError,
        ]);
    });
    w.deliver_mr(iid, "open", DEV, None).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    assert!(w.bot_note(iid).contains("waiting for 1 more approval"));
    assert!(w.gitlab.with(|s| s.faults.is_empty()));

    // GitLab down for longer than the client's retries: the delivery is retried later
    w.gitlab
        .with(|s| s.faults.extend(std::iter::repeat_n(Fault::ServerError, 8)));
    w.approve_as(iid, ALICE).await;
    w.settle_allowing_failures().await;
    assert_eq!(
        w.status_state(&w.head(iid)),
        "failed",
        "not yet: the review failed and waits to be retried"
    );
    let failed = w.server.ctx.store.list(Some("pending"), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].last_error.as_deref().unwrap().contains("500"),
        "{:?}",
        failed[0].last_error
    );
    for _ in 0..3 {
        w.server.clock.advance_ms(60_000);
        w.settle_allowing_failures().await;
    }
    assert_eq!(w.status_state(&w.head(iid)), "success");
    assert!(w.gitlab.with(|s| s.faults.is_empty()));
}

#[tokio::test]
async fn the_note_is_found_again_and_replaced_when_deleted() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-mu", "mu").await;
    w.settle().await;
    let first = w.gitlab.with(|s| s.bot_notes(iid)[0].id);
    // the store forgets the note id (a restore from backup): the marker finds it again
    let project = w.bot.project();
    w.server
        .ctx
        .store
        .set_note_id(&project, iid, 999_999)
        .await
        .unwrap();
    w.comment(iid, DEV, "/orgvend plan").await;
    w.settle().await;
    // id 999999 does not exist: a new note is written, once
    let notes = w.gitlab.with(|s| s.bot_notes(iid));
    assert_eq!(notes.len(), 2);
    // someone deletes orgvend's notes; the next review writes one again
    w.gitlab
        .with(|s| s.mrs.get_mut(&iid).unwrap().notes.retain(|n| n.id != first));
    w.gitlab.with(|s| {
        let bot = s.bot_user;
        s.mrs
            .get_mut(&iid)
            .unwrap()
            .notes
            .retain(|n| n.author != bot);
    });
    w.comment(iid, DEV, "/orgvend plan").await;
    w.settle().await;
    assert_eq!(w.gitlab.with(|s| s.bot_notes(iid).len()), 1);
}

#[tokio::test]
async fn a_lost_note_id_is_found_by_its_marker() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-nu", "nu").await;
    w.settle().await;
    // a new orgvend with an empty store (the database was lost), same GitLab
    let w2 = World::with_state(w.gitlab.with(std::mem::take), "").await;
    w2.comment(iid, DEV, "/orgvend plan").await;
    w2.settle().await;
    assert_eq!(
        w2.gitlab.with(|s| s.bot_notes(iid).len()),
        1,
        "edited, not duplicated"
    );
}

#[tokio::test]
async fn comments_trigger_only_as_commands_and_never_from_the_bot() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-xi", "xi").await;
    w.settle().await;
    w.gitlab.clear_calls();
    w.comment(iid, DEV, "Looks good, thanks").await;
    w.comment(iid, common::world::BOT, "/orgvend plan").await;
    w.settle().await;
    assert!(
        w.gitlab.calls().is_empty(),
        "no API call for a plain comment or the bot's own: {:?}",
        w.gitlab.calls()
    );
    w.comment(iid, MALLORY, "/orgvend plan").await;
    w.settle().await;
    assert!(
        w.gitlab
            .calls()
            .iter()
            .any(|(m, p)| m == "GET" && p.ends_with("/merge_requests/1")),
        "a command re-reviews"
    );
}

#[tokio::test]
async fn reconciliation_reviews_mrs_whose_delivery_was_lost() {
    let w = World::new().await;
    let iid = w.open_account_mr_quietly("Add client-omicron", "omicron");
    assert_eq!(w.bot.reconcile().await.unwrap(), 1);
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    assert!(w.bot_note(iid).contains("client-omicron"));
    // reviewed: nothing more to do for this head (it waits for approval; asked again next period)
    assert_eq!(w.bot.reconcile().await.unwrap(), 0);
    // an approval whose delivery was lost is found on the next period
    w.gitlab.with(|s| s.approve(iid, ALICE));
    w.server.clock.advance_ms(300_000);
    assert_eq!(w.bot.reconcile().await.unwrap(), 1);
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "success");
    assert_eq!(w.bot.reconcile().await.unwrap(), 0);
}

#[tokio::test]
async fn collapsed_diffs_are_read_from_the_head_instead() {
    let w = World::new().await;
    let iid = w.open_account_mr_quietly("Add client-pi", "pi");
    w.gitlab
        .with(|s| s.mrs.get_mut(&iid).unwrap().collapse_diffs = true);
    w.deliver_mr(iid, "open", DEV, None).await;
    w.settle().await;
    assert!(w.bot_note(iid).contains("client-pi"));
    assert!(
        w.gitlab
            .calls()
            .iter()
            .any(|(_, p)| p.ends_with("/repository/tree")),
        "fell back to the head's tree"
    );
}

#[tokio::test]
async fn a_broken_policy_on_the_target_branch_is_said_plainly() {
    let w = World::new().await;
    w.commit_to_master(&[(
        "policies/orgvend.toml",
        Some("[modules]\nnonsense = true\n"),
    )]);
    let iid = w.open_account_mr("Add client-rho", "rho").await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(note.contains("cannot be read"), "{note}");
    assert!(note.contains("policies/orgvend.toml:2"), "{note}");
    assert_eq!(
        w.status(&w.head(iid)).unwrap().description,
        "the target branch's policy is broken"
    );
}

#[tokio::test]
async fn a_warm_review_makes_at_most_six_api_calls() {
    let w = World::new().await;
    let first = w.open_account_mr("Add client-sigma", "sigma").await;
    w.settle().await;
    assert!(w.bot_note(first).contains("client-sigma"));
    w.gitlab.clear_calls();
    let iid = w.open_account_mr("Add client-tau", "tau").await;
    w.settle().await;
    let calls = w.gitlab.calls();
    assert!(calls.len() <= 6, "{} calls: {calls:#?}", calls.len());
    assert!(w.bot_note(iid).contains("client-tau"));
}

#[tokio::test]
async fn the_facts_of_each_review_are_kept() {
    let w = World::new().await;
    let iid = w.open_account_mr("Add client-upsilon", "upsilon").await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let r = w
        .server
        .ctx
        .store
        .review(&w.bot.project(), iid, &w.head(iid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.verdict, "ready");
    let facts: serde_json::Value = serde_json::from_str(&r.facts).unwrap();
    assert_eq!(facts["author"], "dev");
    assert_eq!(
        facts["approvals_counted"],
        serde_json::json!(["infra-alice"])
    );
    assert_eq!(facts["summary"]["create"], 1);
}

/// The target head's declarations are kept per commit: once the target moves, an MR into the
/// new head is planned against the new head, never against what an earlier review kept.
#[tokio::test]
async fn an_mr_into_a_moved_target_is_planned_against_the_new_head() {
    let w = World::new().await;
    let first = w.open_account_mr("Add client-zeta", "zeta").await;
    w.settle().await;
    assert!(
        w.bot_note(first).contains("**1 to create"),
        "{}",
        w.bot_note(first)
    );
    // the target moves on: eta is declared (as a merge would)
    let (path, text) = common::world::account_file("eta");
    w.commit_to_master(&[(&path, Some(&text))]);
    let second = w.open_account_mr("Add client-theta", "theta").await;
    w.settle().await;
    let note = w.bot_note(second);
    assert!(
        note.contains("**1 to create · 0 to update · 0 to close**"),
        "{note}"
    );
    assert!(
        note.contains("client-theta") && !note.contains("client-eta"),
        "{note}"
    );
}

#[tokio::test]
async fn an_mr_is_judged_on_what_it_reaches_and_a_changed_variable_on_the_whole_head() {
    let w = World::new().await;
    let metrics = &w.server.ctx.metrics;
    // a new account taking an existing account's email: judged on the part it reaches,
    // which holds the account it collides with
    let taken = client_account("zeta")
        .replace("aws+client-zeta@example.com", "aws+client-acme@example.com");
    let iid = w
        .open_mr(DEV, "Add client-zeta", &[("clients-zeta.tf", Some(&taken))])
        .await;
    w.settle().await;
    assert_eq!(
        (metrics.reviewed_total(true), metrics.reviewed_total(false)),
        (1, 0)
    );
    let note = w.bot_note(iid);
    // clients-zeta.tf comes before clients.tf: the unchanged account is the second user
    assert!(
        note.contains("`clients.tf:5` `subaccount_client_acme` `unique.email` — email `aws+client-acme@example.com` is already used by module `subaccount_client_zeta`"),
        "{note}"
    );
    assert!(
        note.contains("choose an email no other account uses"),
        "{note}"
    );
    assert!(note.contains("the email of an existing account"), "{note}");
    assert_eq!(w.status_state(&w.head(iid)), "failed");

    // a variable every account reads: no part of the repository is safe to skip
    let variables = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/subaccounts/variables.tf"),
    )
    .unwrap()
    .replace("    owner       = \"platform-team\"\n", "");
    let iid = w
        .open_mr(DEV, "Tidy the tags", &[("variables.tf", Some(&variables))])
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    assert!(metrics.reviewed_total(false) >= 1, "judged whole");
    let note = w.bot_note(iid);
    assert!(note.contains("tags.required"), "{note}");
    assert!(note.contains("subaccount_client_acme_base"), "{note}");
    assert_eq!(w.status_state(&w.head(iid)), "failed");
}
