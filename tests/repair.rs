//! A broken target branch does not lock everyone out: the MR that repairs it is judged —
//! by the last policy orgvend loaded, or the service's fallback, for a policy that does not
//! load; against the last commit that parsed, for Terraform that does not — and the note says
//! so. Everything else stays blocked until then.

mod common;

use common::world::{ALICE, DEV, World, account_file, fixture_repo, initial_state};

fn shipped_policy() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/orgvend.toml"
    ))
    .unwrap()
}

#[tokio::test]
async fn broken_terraform_on_the_target_is_repaired_by_an_mr_planned_against_the_last_that_parsed()
{
    let w = World::new().await;
    let clients = w
        .gitlab
        .with(|s| s.file_at(&s.branches["master"], "clients.tf").unwrap());
    w.commit_to_master(&[(
        "clients.tf",
        Some(&format!("{clients}\nmodule \"broken\" {{\n")),
    )]);
    // an MR that adds an account on top of it cannot be judged
    let blocked = w.open_account_mr("Add client-waiting", "waiting").await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(blocked)), "failed");
    // the repair (and an account with it) is planned against the last commit that parsed
    let (path, text) = account_file("mended");
    let iid = w
        .open_mr(
            DEV,
            "repair clients.tf",
            &[("clients.tf", Some(&clients)), (&path, Some(&text))],
        )
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(
        note.contains("does not parse") && note.contains("last commit that parsed"),
        "{note}"
    );
    assert!(note.contains("client-mended"), "{note}");
    assert_eq!(w.status_state(&w.head(iid)), "success", "{note}");
}

#[tokio::test]
async fn a_policy_that_does_not_load_is_repaired_under_the_services_fallback() {
    let mut files = fixture_repo();
    for (p, t) in files.iter_mut() {
        if p == "policies/orgvend.toml" {
            *t = "[modules]\nnonsense = true\n".into();
        }
    }
    let w = World::with_state(
        initial_state(&files),
        "[fallback]\napproval_group = \"infrastructure\"\napprovals = 1\n",
    )
    .await;
    // an account MR cannot be judged
    let blocked = w.open_account_mr("Add client-waiting", "waiting").await;
    w.settle().await;
    assert!(w.bot_note(blocked).contains("cannot be read"));
    assert_eq!(w.status_state(&w.head(blocked)), "failed");
    // a repair that also changes Terraform is refused
    let (path, text) = account_file("smuggled");
    let mixed = w
        .open_mr(
            DEV,
            "repair and more",
            &[
                ("policies/orgvend.toml", Some(&shipped_policy())),
                (&path, Some(&text)),
            ],
        )
        .await;
    w.approve_as(mixed, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(mixed)), "failed");
    assert!(
        w.bot_note(mixed).contains("It changes Terraform too"),
        "{}",
        w.bot_note(mixed)
    );
    // a repair that does not load is no repair
    let bad = w
        .open_mr(
            DEV,
            "another broken policy",
            &[(
                "policies/orgvend.toml",
                Some("[modules]\nstill = \"wrong\"\n"),
            )],
        )
        .await;
    w.approve_as(bad, ALICE).await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(bad)), "failed");
    assert!(
        w.bot_note(bad).contains("policy.invalid"),
        "{}",
        w.bot_note(bad)
    );
    // the repair alone: judged by the fallback, approved by one member
    let iid = w
        .open_mr(
            DEV,
            "repair the policy",
            &[("policies/orgvend.toml", Some(&shipped_policy()))],
        )
        .await;
    w.settle().await;
    assert_eq!(w.status_state(&w.head(iid)), "failed", "not approved yet");
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(note.contains("service's fallback"), "{note}");
    assert_eq!(w.status_state(&w.head(iid)), "success", "{note}");
}

/// An upgrade can make an accepted policy stop loading (new checks): the last policy orgvend
/// loaded judges its repair.
#[tokio::test]
async fn a_policy_that_stopped_loading_is_repaired_under_the_last_one_that_loaded() {
    let w = World::new().await;
    // the policy in force is read (and kept) by a first review
    let first = w.open_account_mr("Add client-first", "first").await;
    w.settle().await;
    assert!(w.bot_note(first).contains("client-first"));
    // now the target branch holds a policy that does not load, accepted (as after an upgrade)
    let sha = w.commit_to_master(&[("policies/orgvend.toml", Some("[modules]\n"))]);
    let tree = w.gitlab.with(|s| {
        let id = s.commits[&sha].tree["policies/orgvend.toml"].clone();
        let rego = s.commits[&sha].tree["policies/clients.rego"].clone();
        (id, rego)
    });
    let entries = vec![
        orgvend::gitlab::TreeEntry {
            id: tree.1,
            path: "policies/clients.rego".into(),
            kind: "blob".into(),
        },
        orgvend::gitlab::TreeEntry {
            id: tree.0,
            path: "policies/orgvend.toml".into(),
            kind: "blob".into(),
        },
    ];
    w.server
        .ctx
        .store
        .accept_policy(
            &orgvend::bot::policy::policy_digest(&entries),
            &sha,
            "accepted by an older orgvend",
            1,
            None,
        )
        .await
        .unwrap();
    let iid = w
        .open_mr(
            DEV,
            "repair the policy",
            &[("policies/orgvend.toml", Some(&shipped_policy()))],
        )
        .await;
    w.approve_as(iid, ALICE).await;
    w.settle().await;
    let note = w.bot_note(iid);
    assert!(note.contains("last policy orgvend loaded"), "{note}");
    assert!(
        note.contains("Needs 2 approvals"),
        "the policy's own count: {note}"
    );
    assert_eq!(w.status_state(&w.head(iid)), "failed");
    w.approve_as(iid, common::world::BOB).await;
    w.settle().await;
    assert_eq!(
        w.status_state(&w.head(iid)),
        "success",
        "{}",
        w.bot_note(iid)
    );
}
