//! GitLab calls that are safe to retry: a POST whose answer is lost (GitLab acted, then a
//! proxy answered 502) is looked for before it is sent again, so "one note per MR", one
//! status per state, one project, one set of files hold; pagination and redirects never take
//! the token to another origin.

mod common;

use common::fake_aws::Scripted;
use common::fake_gitlab::{BOT_TOKEN, FakeGitlab, FakeState, Fault, Targeted};
use common::moto::Moto;
use common::world::{DEV, World, initial_state};
use orgvend::config::Secret;
use orgvend::gitlab::GitLab;
use orgvend::gitlab::client::GitlabClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn posts(w: &World, path_ends: &str) -> usize {
    w.gitlab
        .calls()
        .iter()
        .filter(|(m, p)| m == "POST" && p.ends_with(path_ends))
        .count()
}

#[tokio::test]
async fn a_note_and_a_status_whose_answers_are_lost_are_not_posted_twice() {
    let w = World::new().await;
    let iid = w.open_account_mr_quietly("Add client-zeta", "zeta");
    let head = w.head(iid);
    w.gitlab.with(|s| {
        s.targeted
            .push_back(Targeted::lost_answer("POST", &format!("/statuses/{head}")));
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/notes"));
    });
    w.deliver_mr(iid, "open", DEV, None).await;
    w.settle().await;
    assert!(w.gitlab.with(|s| s.targeted.is_empty()), "both faults hit");
    assert_eq!(w.gitlab.with(|s| s.bot_notes(iid)).len(), 1);
    assert_eq!(posts(&w, "/notes"), 1, "found, not posted again");
    let states: Vec<String> = w
        .gitlab
        .with(|s| s.statuses_of(&head))
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["pending", "failed"], "each state once");
    assert!(w.bot_note(iid).contains("waiting for 1 more approval"));
}

#[tokio::test]
async fn a_post_that_did_not_land_is_sent_again() {
    // a 503 before GitLab acted: the note is not there, so it is posted again, once
    let w = World::new().await;
    let iid = w.open_account_mr_quietly("Add client-zeta", "zeta");
    w.gitlab.with(|s| {
        s.targeted
            .push_back(Targeted::unavailable("POST", "/notes"))
    });
    w.deliver_mr(iid, "open", DEV, None).await;
    w.settle().await;
    assert!(w.gitlab.with(|s| s.targeted.is_empty()), "the fault hit");
    assert_eq!(w.gitlab.with(|s| s.bot_notes(iid)).len(), 1);
    assert_eq!(posts(&w, "/notes"), 2, "looked, then posted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_whose_answer_is_lost_is_found_not_created_twice() {
    let moto = Moto::start();
    moto.organization().await;
    let w = World::bootstrapping(Scripted::new(moto.aws().await)).await;
    w.gitlab.with(|s| {
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/api/v4/projects"));
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/repository/commits"));
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/protected_branches"));
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/variables"));
    });
    let (iid, _) = w.merge_approved("zenith").await;
    w.settle().await;
    assert!(w.gitlab.with(|s| s.targeted.is_empty()), "every fault hit");
    let note = w.bot_note(iid);
    assert!(note.contains("✅ Applied: 1 account"), "{note}");
    let (projects, commits) = w.gitlab.with(|s: &mut FakeState| {
        let p = s
            .project_at("aws-accounts/client-zenith")
            .expect("the project")
            .clone();
        (
            s.projects
                .values()
                .filter(|p| p.path_with_namespace.ends_with("client-zenith"))
                .count(),
            p.commits.len(),
        )
    });
    assert_eq!(projects, 1);
    assert_eq!(commits, 1, "the template committed once");
    assert_eq!(posts(&w, "/api/v4/projects"), 1);
    assert_eq!(posts(&w, "/repository/commits"), 1);
    assert_eq!(posts(&w, "/protected_branches"), 1);
}

/// A listener that counts the connections made to it (a stranger's server).
async fn rogue() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (addr, seen)
}

fn client(g: &FakeGitlab) -> GitlabClient {
    GitlabClient::new(
        &g.url(),
        Some(Secret::new(BOT_TOKEN)),
        Duration::from_secs(5),
    )
    .unwrap()
    .with_retry_base(Duration::from_millis(5))
}

#[tokio::test]
async fn pagination_never_takes_the_token_to_another_origin() {
    let mut state = initial_state(&common::world::fixture_repo());
    let master = state.branches["master"].clone();
    for i in 0..120 {
        state.branches.insert(format!("b{i}"), master.clone());
        state.open_mr(DEV, &format!("MR {i}"), &format!("b{i}"), "master");
    }
    let g = FakeGitlab::start(state).await;
    let c = client(&g);
    // on the same origin, every page is read
    let all = c
        .open_merge_requests(common::fake_gitlab::PROJECT_PATH)
        .await
        .unwrap();
    assert_eq!(all.len(), 120);
    // a Link to another host is refused, and that host never hears from orgvend
    let (elsewhere, seen) = rogue().await;
    g.with(|s| s.link_host = Some(elsewhere.clone()));
    let e = c
        .open_merge_requests(common::fake_gitlab::PROJECT_PATH)
        .await
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("another origin"), "{msg}");
    assert!(msg.contains(&elsewhere), "{msg}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let g = FakeGitlab::start(initial_state(&common::world::fixture_repo())).await;
    let (elsewhere, seen) = rogue().await;
    g.with(|s| {
        s.faults.push_back(Fault::Redirect {
            to: format!("http://{elsewhere}/api/v4/user"),
        })
    });
    let e = client(&g).current_user().await.unwrap_err();
    assert!(format!("{e:#}").contains("302"), "{e:#}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

/// The bot's project POST loses its answer while the path was taken by someone else's
/// request (a race a Developer can try to win): what the client finds at the path is not
/// orgvend's, and it is never taken — the account's CI roles would trust it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_found_after_a_lost_answer_is_taken_only_if_orgvend_made_it() {
    let moto = Moto::start();
    moto.organization().await;
    let w = World::bootstrapping(Scripted::new(moto.aws().await)).await;
    w.gitlab.with(|s| {
        s.targeted
            .push_back(Targeted::lost_answer("POST", "/api/v4/projects"));
        s.next_project_creator = Some(common::world::MALLORY);
    });
    let (iid, sha) = w.merge_approved("zenith").await;
    w.settle_allowing_failures().await;
    assert!(w.gitlab.with(|s| s.targeted.is_empty()), "the fault hit");
    let note = w.bot_note(iid);
    assert!(note.contains("not by orgvend"), "{note}");
    assert_ne!(w.apply_run(&sha).await.decision, "applied");
    let p = w.gitlab.with(|s| {
        s.project_at("aws-accounts/client-zenith")
            .expect("mallory's project")
            .clone()
    });
    assert_eq!(p.creator_id, common::world::MALLORY);
    assert!(p.commits.is_empty(), "no template in it");
    assert!(p.variables.is_empty(), "no CI variables in it");
}
