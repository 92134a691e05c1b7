//! The webhook receiver, the durable inbox and the worker, through the real router on a
//! real socket.

mod common;

use common::{Auth, Delivery, NOW_MS, TOKEN, TestServer};
use orgvend::clock::Clock;
use orgvend::serve::worker::{Handler, Job, Worker};
use orgvend::store::Store;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn an_accepted_delivery_is_on_disk_before_the_answer() {
    let s = TestServer::start("").await;
    let r = s.post(&Delivery::mr(4, "open")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["status"], "accepted");
    let id = r.json()["delivery"].as_i64().unwrap();
    // a second, independent connection to the same file sees it committed
    let other = Store::open(&format!("sqlite://{}/orgvend.db", s.dir.path().display()))
        .await
        .unwrap();
    let d = other.get(id).await.unwrap().expect("stored");
    assert_eq!(
        (d.kind.as_str(), d.action.as_str(), d.state.as_str()),
        ("merge_request", "opened", "pending")
    );
    assert_eq!(d.ordering_key.as_deref(), Some("mr:4"));
    assert!(
        !d.headers.contains(TOKEN),
        "the token is never stored: {}",
        d.headers
    );
    assert!(String::from_utf8_lossy(&d.body).contains("\"iid\":4"));
}

#[tokio::test]
async fn duplicates_are_answered_2xx_and_stored_once() {
    let s = TestServer::start("").await;
    let d = Delivery::mr(1, "open").key(Some("5f0e-resend"));
    let first = s.post(&d).await.json();
    let again = s.post(&d).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["status"], "duplicate");
    assert_eq!(again.json()["delivery"], first["delivery"]);
    // without Idempotency-Key, webhook-id (GitLab sends the same value) dedups
    let mut headers = d.clone().auth(Auth::Both).headers();
    headers.retain(|(k, _)| k != "idempotency-key");
    let signed = common::request(
        s.addr,
        "POST",
        orgvend::serve::server::WEBHOOK_PATH,
        &headers,
        d.body.clone(),
    )
    .await;
    assert_eq!(signed.json()["status"], "duplicate");
    // no Idempotency-Key: the event UUID and the body decide
    let old = Delivery::mr(2, "open").key(None).uuid("ev-1");
    assert_eq!(s.post(&old).await.json()["status"], "accepted");
    assert_eq!(s.post(&old).await.json()["status"], "duplicate");
    assert_eq!(
        s.post(&Delivery::mr(3, "open").key(None).uuid("ev-1"))
            .await
            .json()["status"],
        "accepted"
    );
    let g = s.ctx.store.gauges().await.unwrap();
    assert_eq!(g.pending, 3);
    assert_eq!(s.ctx.metrics.deliveries_with("duplicate"), 3);
}

#[tokio::test]
async fn forged_and_stale_deliveries_get_401_and_are_not_stored() {
    let s = TestServer::start("[webhook]\nrequire = [\"token\", \"signature\"]").await;
    for (d, why) in [
        (Delivery::mr(1, "open").auth(Auth::Forged), "forged token"),
        (Delivery::mr(1, "open").auth(Auth::None), "no credentials"),
        (
            Delivery::mr(1, "open").auth(Auth::Token),
            "token without the required signature",
        ),
        (
            Delivery::mr(1, "open")
                .auth(Auth::Both)
                .at(NOW_MS / 1000 - 3600),
            "replayed an hour later",
        ),
    ] {
        let r = s.post(&d).await;
        assert_eq!(r.status, 401, "{why}: {r:?}");
    }
    assert_eq!(
        s.post(&Delivery::mr(1, "open").auth(Auth::Both))
            .await
            .status,
        200
    );
    let g = s.ctx.store.gauges().await.unwrap();
    assert_eq!(g.pending, 1, "only the authentic delivery is stored");
    assert_eq!(s.ctx.metrics.deliveries_with("unauthorized"), 4);
}

#[tokio::test]
async fn a_tampered_body_fails_its_signature() {
    let s = TestServer::start("[webhook]\nrequire = [\"signature\"]").await;
    let good = Delivery::mr(1, "open").auth(Auth::Signature);
    let mut headers = good.headers();
    let tampered = String::from_utf8(good.body.clone())
        .unwrap()
        .replace("\"iid\":1", "\"iid\":666");
    let r = common::request(
        s.addr,
        "POST",
        orgvend::serve::server::WEBHOOK_PATH,
        &headers,
        tampered.into_bytes(),
    )
    .await;
    assert_eq!(r.status, 401);
    headers.retain(|(k, _)| k != "webhook-signature");
    let r = common::request(
        s.addr,
        "POST",
        orgvend::serve::server::WEBHOOK_PATH,
        &headers,
        good.body.clone(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(s.post(&good).await.status, 200);
}

#[tokio::test]
async fn oversized_bodies_get_413_without_being_read() {
    let s = TestServer::start("").await; // body_limit = 65536 in the test config
    let big = Delivery::new("Merge Request Hook", vec![b' '; 70_000]);
    let r = s.post(&big).await;
    assert_eq!(r.status, 413, "{r:?}");
    // chunked, no Content-Length: refused once the limit is crossed
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: t\r\nx-gitlab-token: {TOKEN}\r\nx-gitlab-event: Merge Request Hook\r\ntransfer-encoding: chunked\r\n\r\n",
        orgvend::serve::server::WEBHOOK_PATH
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 16_384];
    for _ in 0..5 {
        let _ = conn
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = conn.write_all(&chunk).await;
        let _ = conn.write_all(b"\r\n").await;
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0; 256];
    let n = conn.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert_eq!(s.ctx.store.gauges().await.unwrap(), Default::default());
    assert_eq!(s.ctx.metrics.deliveries_with("too_large"), 2);
}

#[tokio::test]
async fn unknown_events_other_projects_and_garbage_are_2xx_and_ignored() {
    let s = TestServer::start("").await;
    for d in [
        Delivery::fixture("push.json", "Push Hook"),
        Delivery::fixture("pipeline.json", "Pipeline Hook"),
        // a comment on a snippet (comments on issues are requests: see tests/request.rs)
        Delivery::new(
            "Note Hook",
            br#"{"object_kind": "note", "object_attributes": {"noteable_type": "Snippet", "note": "hi"}}"#.to_vec(),
        ),
        Delivery::fixture("modern_mr_open.json", "Merge Request Hook"), // project gitlabhq/gitlab-test
        Delivery::new("Merge Request Hook", b"not json at all".to_vec()),
        Delivery::new(
            "Future Hook",
            br#"{"object_kind": "quantum_entanglement"}"#.to_vec(),
        ),
    ] {
        let r = s.post(&d).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.json()["status"],
            "ignored",
            "{}",
            String::from_utf8_lossy(&d.body[..d.body.len().min(60)])
        );
    }
    let g = s.ctx.store.gauges().await.unwrap();
    assert_eq!(
        (g.ignored, g.pending),
        (6, 0),
        "stored for the record, never worked on"
    );
    // an MR of the subaccounts project, as old GitLab sent it (no project id), is accepted
    let r = s
        .post(&Delivery::fixture(
            "2016_mr_update_push.json",
            "Merge Request Hook",
        ))
        .await;
    assert_eq!(r.json()["status"], "accepted");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = TestServer::start("").await;
    assert_eq!(s.get("/healthz").await.status, 200);
    let ready = s.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    s.post(&Delivery::mr(1, "open")).await;
    s.post(&Delivery::mr(1, "open").auth(Auth::Forged)).await;
    let m = s.get("/metrics").await;
    assert_eq!(m.status, 200);
    for expected in [
        "orgvend_webhook_deliveries_total{kind=\"merge_request\",action=\"opened\",outcome=\"accepted\"} 1",
        "orgvend_webhook_deliveries_total{kind=\"unknown\",action=\"unknown\",outcome=\"unauthorized\"} 1",
        "orgvend_inbox_depth 1",
        "orgvend_webhook_request_duration_seconds_count 2",
    ] {
        assert!(m.body.contains(expected), "missing {expected}:\n{}", m.body);
    }
}

#[tokio::test]
async fn refusals_are_logged_without_secrets() {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = TestServer::start("").await;
    s.post(&Delivery::mr(1, "open").auth(Auth::Forged)).await;
    s.post(&Delivery::mr(1, "open")).await;
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("webhook refused: unauthorized"), "{logs}");
    assert!(logs.contains("matches no configured token"), "{logs}");
    for secret in [TOKEN, "old-token", "guessed-token", &common::signing_key()] {
        assert!(
            !logs.contains(secret),
            "a secret reached the log: {secret}\n{logs}"
        );
    }
}

/// Records which deliveries ran, and how many of one MR overlapped.
#[derive(Default)]
struct Recorder {
    order: Mutex<Vec<(String, i64)>>,
    running: Mutex<std::collections::HashMap<String, usize>>,
    overlap: AtomicUsize,
    fail_first: AtomicUsize,
}

impl Handler for Recorder {
    async fn handle(&self, job: Job) -> anyhow::Result<()> {
        let key = job.delivery.ordering_key.clone().unwrap_or_default();
        {
            let mut r = self.running.lock().unwrap();
            let n = r.entry(key.clone()).or_default();
            *n += 1;
            if *n > 1 {
                self.overlap.fetch_add(1, Ordering::SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        *self.running.lock().unwrap().get_mut(&key).unwrap() -= 1;
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            anyhow::bail!("GitLab answered 502");
        }
        self.order.lock().unwrap().push((key, job.delivery.id));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mr_at_a_time_in_order_while_mrs_run_in_parallel() {
    let s = TestServer::start_with("", |c| c.worker.concurrency = 4).await;
    let mut ids: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for round in 0..4 {
        for mr in 1..=3u64 {
            let action = if round == 0 { "open" } else { "update" };
            let id = s.post(&Delivery::mr(mr, action)).await.json()["delivery"]
                .as_i64()
                .unwrap();
            ids.entry(format!("mr:{mr}")).or_default().push(id);
        }
    }
    let rec = Arc::new(Recorder::default());
    let worker = Arc::new(Worker::new(s.ctx.clone(), rec.clone()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(worker.run(stopped));
    for _ in 0..200 {
        if rec.order.lock().unwrap().len() == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    run.await.unwrap();
    assert_eq!(
        rec.overlap.load(Ordering::SeqCst),
        0,
        "two deliveries of one MR ran at once"
    );
    let order = rec.order.lock().unwrap().clone();
    assert_eq!(order.len(), 12);
    for (key, expected) in ids {
        let seen: Vec<i64> = order
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(seen, expected, "{key} out of order");
    }
}

#[tokio::test]
async fn failures_back_off_then_park_and_block_nothing_else() {
    let s = TestServer::start("").await; // max_attempts = 3, backoff 2 s, 4 s
    let rec = Arc::new(Recorder::default());
    rec.fail_first.store(usize::MAX, Ordering::SeqCst);
    let worker = Worker::new(s.ctx.clone(), rec.clone());
    let id = s.post(&Delivery::mr(9, "open")).await.json()["delivery"]
        .as_i64()
        .unwrap();
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    let d = s.ctx.store.get(id).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.attempts), ("pending", 1));
    assert_eq!(d.next_attempt_at_ms, NOW_MS + 2_000);
    assert_eq!(d.last_error.as_deref(), Some("GitLab answered 502"));
    // not due yet
    assert_eq!(worker.run_until_idle().await.unwrap(), 0);
    s.clock.advance_ms(2_000);
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    assert_eq!(
        s.ctx
            .store
            .get(id)
            .await
            .unwrap()
            .unwrap()
            .next_attempt_at_ms,
        NOW_MS + 2_000 + 4_000
    );
    s.clock.advance_ms(4_000);
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    let d = s.ctx.store.get(id).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.attempts), ("parked", 3));
    let m = s.get("/metrics").await.body;
    assert!(m.contains("orgvend_worker_parked_total 1"), "{m}");
    assert!(
        m.contains("orgvend_worker_failures_total{kind=\"merge_request\"} 3"),
        "{m}"
    );
    // a parked delivery does not hold up the next one of its MR
    rec.fail_first.store(0, Ordering::SeqCst);
    let next = s.post(&Delivery::mr(9, "update")).await.json()["delivery"]
        .as_i64()
        .unwrap();
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    assert_eq!(s.ctx.store.get(next).await.unwrap().unwrap().state, "done");
    // an operator can put the parked one back in line
    assert!(s.ctx.store.requeue(id, s.clock.now_ms()).await.unwrap());
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    assert_eq!(s.ctx.store.get(id).await.unwrap().unwrap().state, "done");
}

#[tokio::test]
async fn a_panicking_handler_is_a_failed_attempt() {
    struct Panics;
    impl Handler for Panics {
        async fn handle(&self, _job: Job) -> anyhow::Result<()> {
            panic!("bug");
        }
    }
    let s = TestServer::start("").await;
    let id = s.post(&Delivery::mr(1, "open")).await.json()["delivery"]
        .as_i64()
        .unwrap();
    let worker = Worker::new(s.ctx.clone(), Panics);
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    let d = s.ctx.store.get(id).await.unwrap().unwrap();
    assert_eq!(d.state, "pending");
    assert!(d.last_error.unwrap().contains("panicked"));
}

#[tokio::test]
async fn work_left_running_resumes_after_a_restart() {
    let s = TestServer::start("").await;
    let id = s.post(&Delivery::mr(5, "merge")).await.json()["delivery"]
        .as_i64()
        .unwrap();
    // a worker claims it and the process dies before finishing
    let claimed = s
        .ctx
        .store
        .claim(s.clock.now_ms(), 300_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    let dir = s.dir;
    // the process ends: its front, its context, its hold on the store
    s.http.abort();
    let _ = s.http.await;
    drop(s.ctx);
    // restart on the same store
    let s = TestServer::start_in(dir, "").await;
    let rec = Arc::new(Recorder::default());
    let worker = Worker::new(s.ctx.clone(), rec.clone());
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    let d = s.ctx.store.get(id).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.attempts), ("done", 2));
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again() {
    let s = TestServer::start("").await;
    let id = s.post(&Delivery::mr(5, "open")).await.json()["delivery"]
        .as_i64()
        .unwrap();
    assert!(
        s.ctx
            .store
            .claim(s.clock.now_ms(), 1_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.ctx
            .store
            .claim(s.clock.now_ms(), 1_000)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );
    s.clock.advance_ms(1_001);
    assert_eq!(
        s.ctx
            .store
            .claim(s.clock.now_ms(), 1_000)
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_are_all_stored() {
    let s = Arc::new(TestServer::start("").await);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.post(&Delivery::mr(i % 17, "update")).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(s.ctx.store.gauges().await.unwrap().pending, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_stops_and_records_nothing() {
    /// Starts, then waits forever; says when it was dropped unfinished.
    struct Stalls {
        started: tokio::sync::Notify,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }
    struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    impl Handler for Stalls {
        async fn handle(&self, _job: Job) -> anyhow::Result<()> {
            let _guard = SetOnDrop(self.dropped.clone());
            self.started.notify_one();
            std::future::pending::<()>().await;
            Ok(())
        }
    }
    let s = TestServer::start_with("", |c| c.worker.lease_seconds = 1).await;
    let id = s.post(&Delivery::mr(5, "merge")).await.json()["delivery"]
        .as_i64()
        .unwrap();
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handler = Arc::new(Stalls {
        started: tokio::sync::Notify::new(),
        dropped: dropped.clone(),
    });
    let worker = Worker::new(s.ctx.clone(), handler.clone());
    let step = tokio::spawn(async move { worker.step().await });
    handler.started.notified().await;

    // this worker stalls past its lease (renewals keep failing to arrive in time, a paused
    // VM): another replica claims the delivery
    let theirs = loop {
        s.clock.advance_ms(5_000);
        if let Some(d) = s.ctx.store.claim(s.clock.now_ms(), 60_000).await.unwrap() {
            break d;
        }
    };
    assert_eq!((theirs.id, theirs.attempts), (id, 2));

    // at its next renewal the first worker finds the claim gone, and stops its attempt
    let handled = tokio::time::timeout(Duration::from_secs(10), step)
        .await
        .expect("the worker gives up within a renewal period")
        .unwrap()
        .unwrap();
    assert!(handled);
    assert!(dropped.load(Ordering::SeqCst), "the stale attempt runs on");
    let d = s.ctx.store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (d.state.as_str(), d.claim, d.last_error),
        ("running", theirs.claim, None),
        "the stale worker changed the new claimant's delivery"
    );
    assert!(
        s.ctx
            .store
            .complete(theirs.lease(), s.clock.now_ms())
            .await
            .unwrap()
    );
}

/// The store goes away while a handler works (PostgreSQL down, the network cut): renewals
/// fail, and the attempt stops once its lease has run out, before another replica could
/// claim the delivery, instead of running on unwatched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_stops_when_its_lease_runs_out_unrenewed() {
    struct Stalls {
        started: tokio::sync::Notify,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }
    struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    impl Handler for Stalls {
        async fn handle(&self, _job: Job) -> anyhow::Result<()> {
            let _guard = SetOnDrop(self.dropped.clone());
            self.started.notify_one();
            std::future::pending::<()>().await;
            Ok(())
        }
    }
    let pg = common::pg::Postgres::start();
    let url = pg.database().await;
    let s = TestServer::start_with("", |c| {
        c.store.url = orgvend::config::Secret::new(url);
        c.worker.lease_seconds = 1;
    })
    .await;
    s.post(&Delivery::mr(6, "merge")).await;
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handler = Arc::new(Stalls {
        started: tokio::sync::Notify::new(),
        dropped: dropped.clone(),
    });
    let worker = Worker::new(s.ctx.clone(), handler.clone());
    let step = tokio::spawn(async move { worker.step().await });
    handler.started.notified().await;
    let stopped_at = std::time::Instant::now();
    pg.stop();
    let handled = tokio::time::timeout(Duration::from_secs(10), step)
        .await
        .expect("the attempt stops within its lease")
        .unwrap()
        .unwrap();
    assert!(handled);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the attempt runs on unwatched"
    );
    assert!(
        stopped_at.elapsed() < Duration::from_millis(2000),
        "stopped after {:?}, past its one-second lease",
        stopped_at.elapsed()
    );
}

/// The whole process stalls mid-attempt past its lease (SIGSTOP, a paused VM: here the
/// runtime's only thread is blocked) and wakes up in the middle of the handler's code: the
/// next AWS call the handler makes is refused before it is sent, without waiting for the
/// worker to notice the lost lease.
#[tokio::test]
async fn a_call_after_a_stall_past_the_lease_is_refused() {
    struct StallsThenCalls {
        calls: orgvend::aws::Calls,
        refused: std::sync::atomic::AtomicBool,
    }
    impl Handler for StallsThenCalls {
        async fn handle(&self, _job: Job) -> anyhow::Result<()> {
            assert!(self.calls.write().is_ok(), "within the lease");
            std::thread::sleep(Duration::from_millis(1_500)); // everything stops
            let refused = self.calls.write().is_err(); // the very next call, no yield between
            self.refused.store(refused, Ordering::SeqCst);
            Ok(())
        }
    }
    let s = TestServer::start_with("", |c| c.worker.lease_seconds = 1).await;
    s.post(&Delivery::mr(6, "merge")).await;
    let handler = Arc::new(StallsThenCalls {
        calls: Default::default(),
        refused: Default::default(),
    });
    let worker = Worker::new(s.ctx.clone(), handler.clone());
    assert!(worker.step().await.unwrap());
    assert!(handler.refused.load(Ordering::SeqCst), "the call was sent");
    assert_eq!(
        handler.calls.snapshot(),
        (0, 1),
        "only the call within the lease"
    );
}
