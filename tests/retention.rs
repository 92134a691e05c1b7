//! Bounded storage and an append-only audit trail, on both backends: the retention drops old
//! bodies and then old deliveries (never work that waits, runs or is parked); under a steady
//! stream the store stops growing; the audit trail takes a record per decision and refuses
//! every UPDATE and DELETE, whoever sends it; a retry of an apply adds a record and leaves the
//! first decision as it was.

mod common;

use common::fake_aws::Scripted;
use common::moto::Moto;
use common::pg::Postgres;
use common::world::{ALICE, World};
use orgvend::store::{ApplyRun, Inserted, NewDelivery, ReviewRecord, Store};

const DAY: i64 = 86_400_000;

fn delivery(key: &str, mr: &str, at: i64, body_len: usize) -> NewDelivery {
    NewDelivery {
        dedup_key: key.into(),
        received_at_ms: at,
        event_name: "Merge Request Hook".into(),
        kind: "merge_request".into(),
        action: "update".into(),
        ordering_key: Some(mr.into()),
        ignored: None,
        headers: "{}".into(),
        body: bytes::Bytes::from(vec![b'x'; body_len]),
    }
}

fn new(i: Inserted) -> i64 {
    match i {
        Inserted::New(id) => id,
        other => panic!("{other:?}"),
    }
}

/// Stores a delivery and works it off (done at `at`).
async fn done(store: &Store, key: &str, at: i64, body_len: usize) -> i64 {
    let id = new(store
        .insert(delivery(key, &format!("mr:{key}"), at, body_len))
        .await
        .unwrap());
    let d = store.claim(at, 30_000).await.unwrap().expect("claimable");
    assert_eq!(d.id, id);
    assert!(store.complete(d.lease(), at).await.unwrap());
    id
}

/// Runs `sql` on the store's database behind its back, as an operator with a SQL shell
/// would; the error's text if it is refused.
type Raw =
    Box<dyn Fn(&'static str) -> futures_util::future::BoxFuture<'static, Result<(), String>>>;

async fn retention_and_audit(store: Store, raw: &Raw) {
    // retention: finished work loses its body after the first cut, its record (and dedup
    // key) after the second; waiting and parked work is never touched
    let old = done(&store, "old", DAY, 20_000).await;
    let recent = done(&store, "recent", 9 * DAY, 20_000).await;
    let waiting = new(store
        .insert(delivery("waiting", "mr:w", DAY, 20_000))
        .await
        .unwrap());
    let parked = new(store
        .insert(delivery("parked", "mr:p", DAY, 20_000))
        .await
        .unwrap());
    let d = store.claim(DAY, 30_000).await.unwrap().unwrap();
    assert_eq!(d.id, waiting, "oldest first");
    assert!(store.retry(d.lease(), DAY * 100, "later").await.unwrap());
    let p = store.claim(DAY, 30_000).await.unwrap().unwrap();
    assert_eq!(p.id, parked);
    assert!(store.park(p.lease(), DAY, "needs a person").await.unwrap());

    // bodies before day 5, records before day 2
    let pruned = store.prune(5 * DAY, 2 * DAY, 1_000).await.unwrap();
    assert_eq!((pruned.bodies, pruned.deliveries), (0, 1), "{pruned:?}");
    assert!(store.get(old).await.unwrap().is_none());
    // its dedup key went with it: GitLab's resend would now be new
    assert!(matches!(
        store
            .insert(delivery("old", "mr:old", 20 * DAY, 10))
            .await
            .unwrap(),
        Inserted::New(_)
    ));
    let pruned = store.prune(10 * DAY, 2 * DAY, 1_000).await.unwrap();
    assert_eq!(pruned.bodies, 1, "{pruned:?}");
    let r = store.get(recent).await.unwrap().expect("kept");
    assert!(r.body.is_empty(), "dropped");
    assert_eq!(r.state, "done");
    assert!(
        !store.requeue(recent, 20 * DAY).await.unwrap(),
        "a delivery without its body cannot run again"
    );
    assert!(
        matches!(
            store.insert(delivery("recent", "mr:recent", 20 * DAY, 10)).await.unwrap(),
            Inserted::Duplicate(id) if id == recent
        ),
        "its key still holds"
    );
    for id in [waiting, parked] {
        let d = store.get(id).await.unwrap().expect("kept");
        assert_eq!(d.body.len(), 20_000, "work keeps its body");
    }
    // nothing left to do: a second pass removes nothing
    assert_eq!(
        store.prune(10 * DAY, 2 * DAY, 1_000).await.unwrap().bodies,
        0
    );

    // the audit trail: every review and every apply decision is a record of its own
    let review = ReviewRecord {
        project: "p".into(),
        iid: 7,
        head_sha: "h1".into(),
        verdict: "awaiting_approval".into(),
        reviewed_at_ms: 1,
        facts: r#"{"approvals_counted":[]}"#.into(),
    };
    store.record_review(review.clone()).await.unwrap();
    store
        .record_review(ReviewRecord {
            verdict: "ready".into(),
            facts: r#"{"approvals_counted":["alice"]}"#.into(),
            ..review
        })
        .await
        .unwrap();
    let run = ApplyRun {
        merge_sha: "m1".into(),
        project: "p".into(),
        iid: 7,
        decision: "refused".into(),
        reason: Some("merged without the required approval".into()),
        facts: r#"{"merged_by":"mallory"}"#.into(),
        started_at_ms: 10,
        finished_at_ms: Some(11),
    };
    store.put_apply_run(run.clone()).await.unwrap();
    store
        .put_apply_run(ApplyRun {
            decision: "applied".into(),
            reason: None,
            facts: r#"{"merged_by":"mallory","retried_by":"alice"}"#.into(),
            ..run
        })
        .await
        .unwrap();
    let trail = store.audit("p", Some(7), 100).await.unwrap();
    let seen: Vec<(&str, &str)> = trail
        .iter()
        .rev()
        .map(|a| (a.kind.as_str(), a.decision.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("review", "awaiting_approval"),
            ("review", "ready"),
            ("apply", "refused"),
            ("apply", "applied")
        ]
    );
    let first = trail.last().unwrap().clone();
    assert!(
        first.at_ms > 1_600_000_000_000,
        "stamped by the database's clock"
    );
    assert_eq!(
        trail[1].reason.as_deref(),
        Some("merged without the required approval"),
        "the refusal stays on record"
    );
    assert!(store.audit("p", Some(8), 100).await.unwrap().is_empty());

    // nobody rewrites or removes it, not even with SQL
    for sql in [
        "UPDATE audit SET decision = 'applied'",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE kind = 'apply'",
        "INSERT INTO audit (id, at_ms, project, iid, kind, sha, decision, facts)
         SELECT id, at_ms, project, iid, kind, sha, 'rewritten', facts FROM audit WHERE kind = 'apply'
         ON CONFLICT (id) DO UPDATE SET decision = excluded.decision",
    ] {
        let refused = raw(sql).await.expect_err(sql);
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }
    assert_eq!(store.audit("p", None, 100).await.unwrap(), trail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_the_audit_trail_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let raw: Raw = Box::new(move |sql| {
        let path = path.clone();
        Box::pin(async move {
            let c = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
            c.execute(sql, []).map(drop).map_err(|e| e.to_string())
        })
    });
    retention_and_audit(store, &raw).await;
    let refused = raw(
        "INSERT OR REPLACE INTO audit (id, at_ms, project, iid, kind, sha, decision, facts)
         SELECT id, at_ms, project, iid, kind, sha, 'rewritten', facts FROM audit",
    )
    .await
    .expect_err("INSERT OR REPLACE");
    assert!(refused.contains("append-only"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_the_audit_trail_on_postgres() {
    let pg = Postgres::start();
    let url = pg.database().await;
    let store = Store::open(&url).await.unwrap();
    let raw: Raw = Box::new(move |sql| {
        let url = url.clone();
        Box::pin(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            client
                .batch_execute(sql)
                .await
                .map_err(|e| format!("{e} {:?}", e.as_db_error().map(|d| d.message())))
        })
    });
    retention_and_audit(store, &raw).await;
    let refused = raw("TRUNCATE audit").await.expect_err("TRUNCATE");
    assert!(refused.contains("append-only"), "{refused}");
}

/// A steady stream of deliveries, worked off as they come: with the retention the store's
/// size levels off; without it, it keeps growing (the contrast shows the measure can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_steady_stream_the_store_stops_growing() {
    async fn stream(days: i64, retention: bool) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
            .await
            .unwrap();
        let mut sizes = Vec::new();
        let mut n = 0;
        for day in 0..days {
            // 4 bursts a day of 25 deliveries of 8 KiB (compressible: 2 KiB-ish stored)
            for burst in 0..4 {
                let at = day * DAY + burst * DAY / 4;
                for _ in 0..25 {
                    n += 1;
                    done(&store, &format!("k{n}"), at, 8 * 1024).await;
                }
                if retention {
                    // bodies kept a day, records two
                    store.prune(at - DAY, at - 2 * DAY, 5_000).await.unwrap();
                }
            }
            sizes.push(store.size_bytes().await.unwrap());
        }
        sizes
    }
    let kept = stream(12, true).await;
    let grown = stream(12, false).await;
    let (settled, last) = (kept[4], kept[11]);
    assert!(
        last <= settled + settled / 10,
        "with retention the store levels off: {kept:?}"
    );
    assert!(
        grown[11] > grown[4] * 3 / 2,
        "without it, it grows: {grown:?} (with it: {kept:?})"
    );
}

/// A retry of an apply (here: `/orgvend retry` after AWS refused for good) adds its records;
/// the first decision stays on record as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_adds_to_the_audit_trail_and_rewrites_nothing() {
    let moto = Moto::start();
    moto.organization().await;
    let w = World::applying(Scripted::new(moto.aws().await)).await;
    let aws = w.aws.clone().unwrap();
    aws.script
        .lock()
        .unwrap()
        .fail_next
        .push_back("EMAIL_ALREADY_EXISTS".into());
    let (iid, sha) = w.merge_approved("dup").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "failed");
    let store = &w.server.ctx.store;
    let project = common::fake_gitlab::PROJECT_PATH;
    let before = store.audit(project, Some(iid), 1_000).await.unwrap();
    let applies: Vec<&str> = before
        .iter()
        .rev()
        .filter(|a| a.kind == "apply")
        .map(|a| a.decision.as_str())
        .collect();
    assert_eq!(applies, ["running", "failed"]);
    assert!(before.iter().any(|a| a.kind == "review"));

    // a redelivery of the merge and a retry by an Infrastructure member
    w.deliver_mr(iid, "merge", ALICE, None).await;
    w.comment(iid, ALICE, "/orgvend retry").await;
    w.settle().await;
    assert_eq!(w.apply_run(&sha).await.decision, "applied");
    let after = store.audit(project, Some(iid), 1_000).await.unwrap();
    assert!(after.len() > before.len());
    // the earlier records are there, unchanged, in their place
    assert_eq!(&after[after.len() - before.len()..], &before[..]);
    let first_failure = after
        .iter()
        .rev()
        .find(|a| a.kind == "apply" && a.decision == "failed")
        .unwrap();
    assert!(
        first_failure
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("EMAIL_ALREADY_EXISTS")),
        "{first_failure:?}"
    );
    assert_eq!(
        after
            .iter()
            .find(|a| a.kind == "apply")
            .map(|a| a.decision.as_str()),
        Some("applied"),
        "the newest says how it ended"
    );
}

/// A decision is recorded only while the attempt holds its delivery: a worker that stalled
/// past its lease writes no review, no apply run, no audit record.
#[tokio::test]
async fn no_decision_is_recorded_after_the_lease_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    let review = ReviewRecord {
        project: "p".into(),
        iid: 3,
        head_sha: "h".into(),
        verdict: "ready".into(),
        reviewed_at_ms: 1,
        facts: "{}".into(),
    };
    let run = ApplyRun {
        merge_sha: "m".into(),
        project: "p".into(),
        iid: 3,
        decision: "failed".into(),
        reason: None,
        facts: "{}".into(),
        started_at_ms: 1,
        finished_at_ms: Some(2),
    };
    let over = orgvend::hold::Hold::until(std::time::Instant::now());
    let (r, a) = orgvend::hold::scope(over, async {
        (
            store.record_review(review.clone()).await,
            store.put_apply_run(run.clone()).await,
        )
    })
    .await;
    for e in [r.unwrap_err(), a.unwrap_err()] {
        assert!(
            e.downcast_ref::<orgvend::hold::HoldLost>().is_some(),
            "{e:#}"
        );
    }
    assert!(store.review("p", 3, "h").await.unwrap().is_none());
    assert!(store.apply_run("m").await.unwrap().is_none());
    assert!(store.audit("p", None, 10).await.unwrap().is_empty());
    // the same, holding: recorded
    store.record_review(review).await.unwrap();
    store.put_apply_run(run).await.unwrap();
    assert_eq!(store.audit("p", None, 10).await.unwrap().len(), 2);
}
