//! The store's contract, on both backends: SQLite (the embedded default) and PostgreSQL
//! (several replicas). The same checks run on each; the schemas are compared; concurrent
//! claims from two processes' worth of connections never hand out a delivery twice or an
//! MR's deliveries out of order.

mod common;

use common::pg::Postgres;
use orgvend::store::{
    ApplyRun, Inserted, KnownAccount, NewDelivery, ReviewRecord, StepWrite, Store,
};
use std::collections::{BTreeMap, HashSet};

fn delivery(key: &str, mr: Option<&str>, at: i64, body_len: usize) -> NewDelivery {
    NewDelivery {
        dedup_key: key.into(),
        received_at_ms: at,
        event_name: "Merge Request Hook".into(),
        kind: "merge_request".into(),
        action: "update".into(),
        ordering_key: mr.map(str::to_string),
        ignored: None,
        headers: "{}".into(),
        body: bytes::Bytes::from(vec![b'x'; body_len]),
    }
}

/// Every operation of the store, checked.
async fn contract(store: Store) {
    store.ready().await.expect("migrated");
    // inserts, duplicates, bodies (small stored as is, large compressed) come back whole
    let a = store
        .insert(delivery("a", Some("mr:1"), 1_000, 10))
        .await
        .unwrap();
    let Inserted::New(a) = a else { panic!("{a:?}") };
    assert_eq!(
        store
            .insert(delivery("a", Some("mr:1"), 1_001, 10))
            .await
            .unwrap(),
        Inserted::Duplicate(a)
    );
    let Inserted::New(b) = store
        .insert(delivery("b", Some("mr:1"), 1_002, 100_000))
        .await
        .unwrap()
    else {
        panic!()
    };
    let Inserted::New(c) = store
        .insert(delivery("c", Some("mr:2"), 1_003, 10))
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut ignored = delivery("d", None, 1_004, 10);
    ignored.ignored = Some("a push".into());
    store.insert(ignored).await.unwrap();
    assert_eq!(store.get(b).await.unwrap().unwrap().body.len(), 100_000);

    // claims: oldest first, one per MR at a time
    let first = store.claim(2_000, 60_000).await.unwrap().unwrap();
    assert_eq!(
        (first.id, first.attempts, first.state.as_str()),
        (a, 1, "running")
    );
    let second = store.claim(2_000, 60_000).await.unwrap().unwrap();
    assert_eq!(second.id, c, "b waits for a (same MR); c is another MR");
    assert!(store.claim(2_000, 60_000).await.unwrap().is_none());
    assert!(store.complete(second.lease(), 2_001).await.unwrap());
    // a retry waits for its time; b still waits behind a
    assert!(
        store
            .retry(first.lease(), 5_000, "GitLab 502")
            .await
            .unwrap()
    );
    assert!(store.claim(3_000, 60_000).await.unwrap().is_none());
    let again = store.claim(5_000, 60_000).await.unwrap().unwrap();
    assert_eq!(
        (again.id, again.attempts, again.last_error.as_deref()),
        (a, 2, Some("GitLab 502"))
    );
    assert!(
        !store.complete(first.lease(), 5_001).await.unwrap(),
        "an earlier claim finishes nothing"
    );
    assert!(store.complete(again.lease(), 5_001).await.unwrap());
    // leases run on real time here: PostgreSQL judges them by its own clock
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let next = store.claim(5_002, 300).await.unwrap().unwrap();
    assert_eq!(next.id, b);
    // a lease that runs out (a dead worker) is claimed again
    assert!(store.claim(5_003, 60_000).await.unwrap().is_none());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let reclaimed = store.claim(wall(), 60_000).await.unwrap().unwrap();
    assert_eq!((reclaimed.id, reclaimed.attempts), (b, 2));
    // the first claimant, whose lease ran out, can neither renew nor finish it any more
    assert_eq!(reclaimed.claim, next.claim + 1);
    assert!(!store.renew(next.lease(), wall(), 900_000).await.unwrap());
    assert!(!store.complete(next.lease(), 70_001).await.unwrap());
    assert!(!store.retry(next.lease(), 70_001, "stale").await.unwrap());
    assert!(!store.park(next.lease(), 70_001, "stale").await.unwrap());
    let b_now = store.get(b).await.unwrap().unwrap();
    assert_eq!((b_now.state.as_str(), b_now.last_error), ("running", None));
    assert!(
        store
            .renew(reclaimed.lease(), wall(), 60_000)
            .await
            .unwrap()
    );
    assert!(
        store.claim(wall(), 60_000).await.unwrap().is_none(),
        "renewed"
    );
    assert!(
        store
            .park(reclaimed.lease(), 150_001, "gave up")
            .await
            .unwrap()
    );
    let parked = store.list(Some("parked"), 10).await.unwrap();
    assert_eq!(parked.iter().map(|d| d.id).collect::<Vec<_>>(), [b]);
    assert!(store.requeue(b, 150_003).await.unwrap());
    assert!(
        !store.requeue(b, 150_003).await.unwrap(),
        "only parked or done"
    );
    // a requeue starts the attempts again, never the claims: the old holders stay fenced off
    let requeued = store.claim(150_004, 60_000).await.unwrap().unwrap();
    assert_eq!((requeued.id, requeued.attempts), (b, 1));
    assert_eq!(requeued.claim, reclaimed.claim + 1);
    assert!(!store.complete(next.lease(), 150_005).await.unwrap());
    assert!(
        store
            .retry(requeued.lease(), 150_004, "again")
            .await
            .unwrap()
    );
    let g = store.gauges().await.unwrap();
    assert_eq!((g.pending, g.done, g.ignored, g.parked), (1, 2, 1, 0));
    assert_eq!(store.list(None, 2).await.unwrap().len(), 2);

    // notes, approvals, reviews, statuses
    assert_eq!(store.note_id("p", 1).await.unwrap(), None);
    store.set_note_id("p", 1, 42).await.unwrap();
    store.set_note_id("p", 1, 43).await.unwrap();
    assert_eq!(store.note_id("p", 1).await.unwrap(), Some(43));
    // accepted policies: none at first, then those accepted, for good
    assert_eq!(store.last_loaded_policy().await.unwrap(), None);
    assert_eq!(store.policy_accepted("d1").await.unwrap(), None);
    store
        .accept_policy("d1", "s1", "first seen", 1, Some("[[\"p\", \"t\"]]"))
        .await
        .unwrap();
    assert_eq!(store.policy_accepted("d1").await.unwrap(), Some(true));
    assert_eq!(store.policy_accepted("d2").await.unwrap(), Some(false));
    store
        .accept_policy("d2", "s2", "!4", 2, None)
        .await
        .unwrap();
    store
        .accept_policy("d1", "s3", "again", 3, None)
        .await
        .unwrap();
    assert_eq!(
        store.last_loaded_policy().await.unwrap(),
        Some(("s1".to_string(), "[[\"p\", \"t\"]]".to_string())),
        "the last that loaded (d2 did not)"
    );
    assert_eq!(store.policy_accepted("d2").await.unwrap(), Some(true));
    let review = ReviewRecord {
        project: "p".into(),
        iid: 1,
        head_sha: "h3".into(),
        verdict: "blocked".into(),
        reviewed_at_ms: 5,
        facts: "{}".into(),
    };
    store.record_review(review.clone()).await.unwrap();
    store
        .record_review(ReviewRecord {
            verdict: "ready".into(),
            ..review.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.review("p", 1, "h3").await.unwrap().unwrap().verdict,
        "ready"
    );
    assert!(store.review("p", 1, "h9").await.unwrap().is_none());
    store
        .set_last_status("p", "h3", "failed", "1 violation")
        .await
        .unwrap();
    store
        .set_last_status("p", "h3", "success", "ok")
        .await
        .unwrap();
    assert_eq!(
        store.last_status("p", "h3").await.unwrap(),
        Some(("success".into(), "ok".into()))
    );

    // the apply ledger
    let run = ApplyRun {
        merge_sha: "m1".into(),
        project: "p".into(),
        iid: 1,
        decision: "running".into(),
        reason: None,
        facts: "{}".into(),
        started_at_ms: 10,
        finished_at_ms: None,
    };
    store.put_apply_run(run.clone()).await.unwrap();
    store
        .put_apply_run(ApplyRun {
            decision: "applied".into(),
            finished_at_ms: Some(20),
            ..run
        })
        .await
        .unwrap();
    let got = store.apply_run("m1").await.unwrap().unwrap();
    assert_eq!(
        (got.decision.as_str(), got.started_at_ms, got.finished_at_ms),
        ("applied", 10, Some(20))
    );
    store
        .step(
            StepWrite {
                merge_sha: "m1".into(),
                account: "x@example.com".into(),
                step: "create_account".into(),
                state: "intent".into(),
                detail: None,
                now_ms: 11,
            },
            None,
        )
        .await
        .unwrap();
    store
        .step(
            StepWrite {
                merge_sha: "m1".into(),
                account: "x@example.com".into(),
                step: "create_account".into(),
                state: "failed".into(),
                detail: Some("throttled".into()),
                now_ms: 12,
            },
            None,
        )
        .await
        .unwrap();
    store
        .step(
            StepWrite {
                merge_sha: "m1".into(),
                account: "x@example.com".into(),
                step: "create_account".into(),
                state: "intent".into(),
                detail: None,
                now_ms: 13,
            },
            None,
        )
        .await
        .unwrap();
    store
        .step(
            StepWrite {
                merge_sha: "m1".into(),
                account: "x@example.com".into(),
                step: "create_account".into(),
                state: "done".into(),
                detail: Some("request car-1".into()),
                now_ms: 14,
            },
            None,
        )
        .await
        .unwrap();
    let steps = store.steps("m1").await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (
            steps[0].state.as_str(),
            steps[0].attempts,
            steps[0].detail.as_deref()
        ),
        ("done", 2, Some("request car-1"))
    );
    let known = KnownAccount {
        email: "X@Example.com".into(),
        name: "client-x".into(),
        account_id: None,
        create_request_id: Some("car-1".into()),
        creating: false,
    };
    store
        .put_known_account(known, "m1", 15, None)
        .await
        .unwrap();
    store
        .put_known_account(
            KnownAccount {
                email: "x@example.com".into(),
                name: "client-x".into(),
                account_id: Some("111122223333".into()),
                create_request_id: None,
                creating: false,
            },
            "m1",
            16,
            None,
        )
        .await
        .unwrap();
    let k = store.known_account("x@EXAMPLE.com").await.unwrap().unwrap();
    assert_eq!(
        (k.account_id.as_deref(), k.create_request_id.as_deref()),
        (Some("111122223333"), Some("car-1")),
        "None keeps a value"
    );
    store
        .put_known_account(
            KnownAccount {
                email: "y@example.com".into(),
                name: "y".into(),
                account_id: None,
                create_request_id: None,
                creating: true,
            },
            "m1",
            17,
            None,
        )
        .await
        .unwrap();
    let y = store.known_account("y@example.com").await.unwrap().unwrap();
    assert!(y.creating, "a creation under way is kept");
    store
        .put_known_account(
            KnownAccount {
                email: "y@example.com".into(),
                name: "y".into(),
                account_id: None,
                create_request_id: Some("car-2".into()),
                creating: false,
            },
            "m1",
            18,
            None,
        )
        .await
        .unwrap();
    let y = store.known_account("y@example.com").await.unwrap().unwrap();
    assert_eq!(
        (y.create_request_id.as_deref(), y.creating),
        (Some("car-2"), false)
    );
    store.clear_create_request("y@example.com").await.unwrap();
    let y = store.known_account("y@example.com").await.unwrap().unwrap();
    assert_eq!((y.create_request_id, y.creating), (None, false));

    // the ledger takes a write only while the claim it names holds (a fencing token)
    let Inserted::New(f) = store
        .insert(delivery("fenced", Some("mr:9"), 1, 10))
        .await
        .unwrap()
    else {
        panic!()
    };
    let held = loop {
        let d = store.claim(i64::MAX / 2, 60_000).await.unwrap().unwrap();
        if d.id == f {
            break d;
        }
        store.complete(d.lease(), 1).await.unwrap();
    };
    store
        .step(
            StepWrite {
                merge_sha: "m9".into(),
                account: "z@example.com".into(),
                step: "create_account".into(),
                state: "intent".into(),
                detail: None,
                now_ms: 20,
            },
            Some(held.lease()),
        )
        .await
        .unwrap();
    let stale = orgvend::store::Lease {
        id: held.id,
        claim: held.claim - 1,
    };
    let e = store
        .step(
            StepWrite {
                merge_sha: "m9".into(),
                account: "z@example.com".into(),
                step: "create_account".into(),
                state: "done".into(),
                detail: None,
                now_ms: 21,
            },
            Some(stale),
        )
        .await
        .unwrap_err();
    assert!(
        e.downcast_ref::<orgvend::store::FenceLost>().is_some(),
        "{e:#}"
    );
    let z = KnownAccount {
        email: "z@example.com".into(),
        name: "z".into(),
        account_id: Some("444455556666".into()),
        create_request_id: None,
        creating: false,
    };
    assert!(
        store
            .put_known_account(z.clone(), "m9", 22, Some(stale))
            .await
            .is_err()
    );
    assert!(
        store
            .known_account("z@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.steps("m9").await.unwrap()[0].state,
        "intent",
        "nothing written"
    );
    store
        .put_known_account(z, "m9", 23, Some(held.lease()))
        .await
        .unwrap();
    assert!(store.complete(held.lease(), 24).await.unwrap());
    // once the delivery is done, its claim holds nothing any more
    let e = store
        .step(
            StepWrite {
                merge_sha: "m9".into(),
                account: "z@example.com".into(),
                step: "create_account".into(),
                state: "done".into(),
                detail: None,
                now_ms: 25,
            },
            Some(held.lease()),
        )
        .await
        .unwrap_err();
    assert!(e.downcast_ref::<orgvend::store::FenceLost>().is_some());
    requests(&store).await;
}

/// Requests by issue: the requester is kept as first recorded; the MR, its state and the
/// note are filled in as they come and never lost to a write that does not know them.
async fn requests(store: &Store) {
    use orgvend::store::RequestRecord;
    let r = RequestRecord {
        project: "15".into(),
        issue_iid: 3,
        requester_id: 10,
        requester: "dev".into(),
        branch: "orgvend/request-3".into(),
        mr_iid: None,
        mr_state: None,
        commit_sha: None,
        contributors: vec![10],
        note_id: Some(41),
        updated_at_ms: 1,
    };
    store.put_request(r.clone()).await.unwrap();
    store
        .put_request(RequestRecord {
            requester_id: 66,
            requester: "someone-else".into(),
            mr_iid: Some(7),
            mr_state: Some("opened".into()),
            commit_sha: Some("c1".into()),
            contributors: vec![20],
            note_id: None,
            updated_at_ms: 2,
            ..r.clone()
        })
        .await
        .unwrap();
    let got = store.request("15", 3).await.unwrap().unwrap();
    assert_eq!((got.requester_id, got.requester.as_str()), (10, "dev"));
    assert_eq!((got.mr_iid, got.note_id), (Some(7), Some(41)));
    assert_eq!(got.commit_sha.as_deref(), Some("c1"));
    assert_eq!(
        got.contributors,
        [10, 20],
        "contributors are only ever added to"
    );
    assert_eq!(
        store.request_for_mr("15", 7).await.unwrap(),
        Some(got.clone())
    );
    assert_eq!(store.request_for_mr("15", 8).await.unwrap(), None);
    assert_eq!(store.request_for_mr("16", 7).await.unwrap(), None);
    store
        .put_request(RequestRecord {
            issue_iid: 4,
            branch: "orgvend/request-4".into(),
            ..r
        })
        .await
        .unwrap();
    let mine = store.requests_by("15", 10).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.issue_iid).collect::<Vec<_>>(), [3, 4]);
    assert!(store.requests_by("15", 66).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    contract(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_on_postgres() {
    let pg = Postgres::start();
    let store = Store::open(&pg.database().await).await.unwrap();
    contract(store).await;
}

/// The apply lock lives on a connection of its own; when that connection drops (a network
/// cut, a killed backend) the lock is gone without a word, and another replica may apply.
/// The holder finds out before its next step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_apply_lock_is_noticed() {
    let pg = Postgres::start();
    let url = pg.database().await;
    let store = Store::open(&url).await.unwrap();
    let lock = store.apply_lock().await.unwrap();
    lock.ensure().await.expect("held");
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1);
    let e = lock.ensure().await.unwrap_err();
    assert!(format!("{e:#}").contains("apply lock"), "{e:#}");
    // another replica takes it
    let other = Store::open(&url).await.unwrap();
    let taken = tokio::time::timeout(std::time::Duration::from_secs(5), other.apply_lock())
        .await
        .expect("the lock is free again")
        .unwrap();
    taken.ensure().await.unwrap();
}

/// A replica's name is its own while it lives: a second live process with the same name is
/// refused (it would take the first one's running work); once the first is gone, it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_name_is_held_by_one_live_process() {
    let pg = Postgres::start();
    let url = pg.database().await;
    let (_one, first) = Store::open_owned(&url, "replica-a").await.unwrap();
    let e = Store::open_owned(&url, "replica-a").await.err().unwrap();
    assert!(
        format!("{e:#}").contains("another live replica uses the name `replica-a`"),
        "{e:#}"
    );
    let (_two, _b) = Store::open_owned(&url, "replica-b").await.unwrap();
    drop(first);
    let again = eventually_open(&url, "replica-a").await;
    assert!(again.is_ok());
}

async fn eventually_open(url: &str, name: &str) -> anyhow::Result<(Store, orgvend::store::Owner)> {
    for _ in 0..50 {
        if let Ok(o) = Store::open_owned(url, name).await {
            return Ok(o);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Store::open_owned(url, name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_over_tls_is_verified() {
    let pg = Postgres::start_tls();
    let url = pg.database().await;
    let db = url.rsplit('/').next().unwrap().to_string();
    let ca = pg.ca().display().to_string();

    // the CA given: the contract holds, and every connection of the store is encrypted
    let store = Store::open(&format!("{url}?sslmode=verify-full&sslrootcert={ca}"))
        .await
        .unwrap();
    contract(store.clone()).await;
    let (admin, conn) = tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
             FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.datname = $1",
            &[&db],
        )
        .await
        .unwrap();
    let (tls, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        tls >= 2 && plain == 0,
        "{tls} over TLS, {plain} in the clear"
    );
    drop(store);

    // refused, each with the reason: a CA the system does not trust, another CA, the wrong
    // host name (the certificate is for 127.0.0.1), a file that is no CA bundle
    let err = |r: anyhow::Result<Store>| format!("{:#}", r.err().expect("refused"));
    let e = err(Store::open(&format!("{url}?sslmode=require")).await);
    assert!(e.contains("TLS") && e.contains("sslrootcert=PATH"), "{e}");
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other.pem");
    let other_pg = Postgres::start_tls();
    std::fs::copy(other_pg.ca(), &other_ca).unwrap();
    drop(other_pg);
    let e = err(Store::open(&format!("{url}?sslrootcert={}", other_ca.display())).await);
    assert!(
        e.contains("TLS") && e.contains(&other_ca.display().to_string()),
        "{e}"
    );
    let by_name = url.replace("127.0.0.1", "localhost");
    let e = err(Store::open(&format!("{by_name}?sslmode=require&sslrootcert={ca}")).await);
    assert!(e.contains("TLS"), "{e}");
    let not_pem = other.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let e = err(Store::open(&format!("{url}?sslrootcert={}", not_pem.display())).await);
    assert!(e.contains("holds no PEM certificate"), "{e}");
    let e = err(Store::open(&format!("{url}?sslmode=sometimes")).await);
    assert!(e.contains("sslmode"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_migrate_to_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    let pg = Postgres::start();
    let postgres = Store::open(&pg.database().await).await.unwrap();
    // with sample data: the contract's rows are in both
    let (s, p) = (
        sqlite.columns().await.unwrap(),
        postgres.columns().await.unwrap(),
    );
    assert!(s.len() > 40, "{s:?}");
    let tables: HashSet<&str> = s.iter().map(|(t, _)| t.as_str()).collect();
    for t in [
        "deliveries",
        "mr_notes",
        "accepted_policies",
        "reviews",
        "commit_statuses",
        "apply_runs",
        "apply_steps",
        "accounts",
        "schema_migrations",
    ] {
        assert!(tables.contains(t), "{t}");
    }
    assert_eq!(s, p, "the SQLite and PostgreSQL schemas differ");
    contract(sqlite).await;
    contract(postgres).await;
}

/// Two stores on one database (two replicas' connections) claim the same inbox at once:
/// every delivery is claimed exactly once, and one MR's deliveries never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claim_each_delivery_once_and_in_order() {
    let pg = Postgres::start();
    let url = pg.database().await;
    let one = Store::open(&url).await.unwrap();
    let two = Store::open(&url).await.unwrap();
    const N: usize = 300;
    for i in 0..N {
        one.insert(delivery(
            &format!("k{i}"),
            Some(&format!("mr:{}", i % 7)),
            i as i64,
            10,
        ))
        .await
        .unwrap();
    }
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let running = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, i64>::new()));
    let mut workers = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 { one.clone() } else { two.clone() };
        let (log, running) = (log.clone(), running.clone());
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 20 {
                match store.claim(1_000_000, 600_000).await.unwrap() {
                    Some(d) => {
                        idle = 0;
                        let mr = d.ordering_key.clone().unwrap();
                        if let Some(other) = running.lock().unwrap().insert(mr.clone(), d.id) {
                            panic!("{mr}: {} claimed while {other} runs", d.id);
                        }
                        log.lock().unwrap().push((mr.clone(), d.id));
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        running.lock().unwrap().remove(&mr);
                        assert!(store.complete(d.lease(), 1_000_001).await.unwrap());
                    }
                    None => {
                        idle += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), N, "every delivery claimed exactly once");
    let ids: HashSet<i64> = log.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), N);
    let mut last = BTreeMap::new();
    for (mr, id) in &log {
        if let Some(prev) = last.insert(mr.clone(), *id) {
            assert!(prev < *id, "{mr}: {id} ran after {prev}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_system_ca_certificates_postgresql_without_tls_still_works() {
    // a slim container: no CA certificates anywhere (rustls-native-certs reads these)
    let pg = Postgres::start();
    let plain = pg.database().await;
    let tls_pg = Postgres::start_tls();
    let tls = tls_pg.database().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    let inbox = |url: &str| {
        let config = dir.path().join("orgvend.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nurl = \"{url}\"\n[gitlab]\nurl = \"https://gitlab.example.com\"\nproject = \"infra/subaccounts\"\n"
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_orgvend"))
            .args(["inbox", "--config"])
            .arg(&config)
            .arg("list")
            .env("SSL_CERT_FILE", dir.path().join("empty.pem"))
            .env("SSL_CERT_DIR", dir.path().join("certs"))
            .env("ORGVEND_WEBHOOK_TOKENS", "t")
            .output()
            .unwrap()
    };
    let out = inbox(&plain);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a server that offers TLS is refused, with the way out
    let out = inbox(&format!("{tls}?sslmode=require"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("sslrootcert=PATH"),
        "{err}"
    );
    // unless its CA is named
    let out = inbox(&format!(
        "{tls}?sslmode=require&sslrootcert={}",
        tls_pg.ca().display()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
