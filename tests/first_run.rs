//! The first run: turning on applying for a repository in use applies nothing that merged
//! before; an older merge is applied only when someone asks (`/orgvend apply` by an
//! Infrastructure member, or `orgvend apply --mr N`), through the same gate.

mod common;

use common::fake_aws::Scripted;
use common::moto::Moto;
use common::world::{ALICE, BOB, MALLORY, World, add_account_mr, fixture_repo, initial_state};
use orgvend::aws::Aws;
use orgvend::serve::worker::Handler;

fn named(all: &[(String, String, String)], name: &str) -> usize {
    all.iter().filter(|(_, n, _)| n == name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_from_before_the_first_run_wait_until_asked() {
    let moto = Moto::start();
    moto.organization().await;
    // two approved MRs merged last week, before orgvend applied anything
    let mut state = initial_state(&fixture_repo());
    add_account_mr(&mut state, 1, "old", &[ALICE]);
    let old = state.merge(1, BOB);
    add_account_mr(&mut state, 2, "older", &[ALICE]);
    let older = state.merge(2, BOB);
    let w = World::build(state, "").await;
    let mut w = w;
    w.aws = Some(Scripted::new(moto.aws().await));
    w.restart();
    // `orgvend serve` starts with [aws] for the first time
    w.bot.start().await.unwrap();
    let writes = || w.aws.as_ref().unwrap().calls().snapshot().1;

    // reconciliation finds them, and leaves them alone (no note on old MRs either)
    assert_eq!(w.bot.reconcile().await.unwrap(), 0);
    w.settle().await;
    assert_eq!(w.apply_run(&old).await.decision, "before_first_run");
    assert_eq!(w.apply_run(&older).await.decision, "before_first_run");
    // a late merge delivery of one of them changes nothing either, and says why
    w.deliver_mr(1, "merge", BOB, None).await;
    w.settle().await;
    assert!(
        w.bot_note(1)
            .contains("merged before orgvend started applying"),
        "{}",
        w.bot_note(1)
    );
    assert_eq!(writes(), 0, "nothing applied by itself");
    assert_eq!(named(&moto.accounts().await, "client-old"), 0);

    // a restart does not move the mark
    w.bot.start().await.unwrap();
    assert_eq!(w.bot.reconcile().await.unwrap(), 0);

    // someone outside the approval group cannot ask
    w.comment(1, MALLORY, "/orgvend apply").await;
    w.settle().await;
    assert_eq!(named(&moto.accounts().await, "client-old"), 0);
    // an Infrastructure member can: through the same gate
    w.comment(1, ALICE, "/orgvend apply").await;
    w.settle().await;
    assert_eq!(w.apply_run(&old).await.decision, "applied");
    assert_eq!(named(&moto.accounts().await, "client-old"), 1);

    // `orgvend apply --mr 2`: a delivery marked as the command line's
    orgvend::cli::apply::enqueue(&w.server.ctx.store, 2, common::NOW_MS)
        .await
        .unwrap();
    w.settle().await;
    assert_eq!(w.apply_run(&older).await.decision, "applied");
    assert_eq!(named(&moto.accounts().await, "client-older"), 1);

    // what merges after the first run is applied by itself
    let (_, sha) = w.merge_approved("fresh").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
}

/// A webhook that claims to be the command line's request is an ordinary event: the mark
/// is only ever in deliveries the command line stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_cannot_pose_as_orgvend_apply() {
    let moto = Moto::start();
    moto.organization().await;
    let mut state = initial_state(&fixture_repo());
    add_account_mr(&mut state, 1, "sneaky", &[ALICE]);
    let sha = state.merge(1, BOB);
    let mut w = World::build(state, "").await;
    w.aws = Some(Scripted::new(moto.aws().await));
    w.restart();
    w.bot.start().await.unwrap();
    let body = serde_json::json!({
        "object_kind": "merge_request",
        "object_attributes": {"iid": 1, "action": "orgvend_apply"},
    });
    let mut d = common::Delivery::new("Merge Request Hook", body.to_string().into_bytes());
    d.event = "Merge Request Hook".into();
    let r = w.server.post(&d).await;
    assert_eq!(r.status, 200);
    w.settle().await;
    assert_eq!(named(&moto.accounts().await, "client-sneaky"), 0);
    assert!(w.server.ctx.store.apply_run(&sha).await.unwrap().is_none());
}
