//! The webhook front under abuse, through the real front on a real socket: slow-loris
//! connections (headers never finished, bodies trickled, idle sockets) cost bounded time and
//! never delay an honest delivery's answer; strangers' bodies are never read.

mod common;

use common::{Delivery, TOKEN, TestServer};
use orgvend::serve::server::WEBHOOK_PATH;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The front with short timeouts, so that abusers are cut off within the test.
async fn front() -> TestServer {
    TestServer::start_with("", |c| {
        c.server.header_timeout_seconds = 2;
        c.server.body_timeout_seconds = 2;
    })
    .await
}

/// How an abusive client behaves.
#[derive(Clone, Copy, Debug)]
enum Loris {
    /// Connects and sends nothing.
    Idle,
    /// Sends a header byte every 200 ms, never finishing them.
    Headers,
    /// Sends whole headers without a valid token, then trickles a body.
    StrangerBody,
    /// Sends whole headers with the token, then trickles a body it never finishes.
    InsiderBody,
}

/// What became of an abusive connection: how long the server kept it, and the first line of
/// its answer, if any.
async fn loris(addr: std::net::SocketAddr, kind: Loris) -> (Duration, String) {
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let head = |token: &str| {
        format!(
            "POST {WEBHOOK_PATH} HTTP/1.1\r\nhost: t\r\nx-gitlab-token: {token}\r\nx-gitlab-event: Merge Request Hook\r\ncontent-length: 50000\r\n\r\n"
        )
    };
    let (prefix, trickle): (String, &[u8]) = match kind {
        Loris::Idle => (String::new(), b""),
        Loris::Headers => (String::new(), b"POST /webhooks/gitlab HTTP/1.1\r\nx-a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        Loris::StrangerBody => (head("not-the-token"), b"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"),
        Loris::InsiderBody => (head(TOKEN), b"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"),
    };
    let _ = conn.write_all(prefix.as_bytes()).await;
    let (mut read, mut write) = conn.into_split();
    let dripping = tokio::spawn(async move {
        for b in trickle.iter().cycle() {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // idle: hold the socket open
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    // the server must end it: read until it closes (a limit keeps a broken test finite)
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    dripping.abort();
    assert!(
        closed.is_ok(),
        "{kind:?}: the server kept the connection 30 s"
    );
    let first = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    (started.elapsed(), first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_slow_loris_connections_never_delay_an_honest_delivery() {
    let s = front().await;
    let kinds = [
        Loris::Idle,
        Loris::Headers,
        Loris::StrangerBody,
        Loris::InsiderBody,
    ];
    let abusers: Vec<_> = (0..200)
        .map(|i| tokio::spawn(loris(s.addr, kinds[i % kinds.len()])))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await; // all of them connected and dripping

    // a steady stream of valid deliveries while the abusers hold their connections
    let mut slowest = Duration::ZERO;
    let mut stored = Vec::new();
    for round in 0..10 {
        let sent: Vec<_> = (0..10)
            .map(|i| {
                let addr = s.addr;
                tokio::spawn(async move {
                    let d = Delivery::mr(round * 10 + i + 1, "open");
                    let started = Instant::now();
                    let r = d.send_to(addr).await;
                    (started.elapsed(), r)
                })
            })
            .collect();
        for t in sent {
            let (took, r) = t.await.unwrap();
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.json()["status"], "accepted");
            slowest = slowest.max(took);
            stored.push(r.json()["delivery"].as_i64().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "an honest delivery waited {slowest:?} behind the abusers"
    );
    for id in &stored {
        let d = s.ctx.store.get(*id).await.unwrap().expect("stored");
        assert_eq!(d.state, "pending");
    }
    assert_eq!(s.ctx.store.gauges().await.unwrap().pending, 100);

    // every abuser was cut off, by the header or the body timeout, or refused unread
    for (i, a) in abusers.into_iter().enumerate() {
        let kind = kinds[i % kinds.len()];
        let (held, first) = a.await.unwrap();
        match kind {
            Loris::Idle | Loris::Headers => {
                assert!(held < Duration::from_secs(6), "{kind:?} held {held:?}");
                assert!(!first.contains("200"), "{kind:?}: {first}");
            }
            Loris::StrangerBody => assert!(
                first.starts_with("HTTP/1.1 401"),
                "{kind:?} must be refused before its body: {first:?} after {held:?}"
            ),
            Loris::InsiderBody => assert!(
                first.starts_with("HTTP/1.1 408"),
                "{kind:?} must time out: {first:?} after {held:?}"
            ),
        }
    }
    assert_eq!(s.ctx.metrics.deliveries_with("accepted"), 100);
    assert_eq!(s.ctx.metrics.deliveries_with("unauthorized"), 50);
    assert_eq!(s.ctx.metrics.deliveries_with("body_timeout"), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_refused_before_a_single_byte_of_body() {
    let s = front().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    // headers only: a body of 20 MB is announced and never sent
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nhost: t\r\nx-gitlab-token: guess\r\nx-gitlab-event: Merge Request Hook\r\ncontent-length: 20000000\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(s.ctx.metrics.deliveries_with("unauthorized"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_in_flight_are_bounded() {
    // room for one body of the limit at a time: two insiders who announce the largest body and
    // never send it hold the room in turn; an honest delivery waits for room (up to the body
    // timeout), then gets 503, and gets in once they are cut off
    let s = TestServer::start_with("", |c| {
        c.server.body_timeout_seconds = 1;
        c.server.max_body_bytes_in_flight = c.server.body_limit;
    })
    .await;
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nhost: t\r\nx-gitlab-token: {TOKEN}\r\nx-gitlab-event: Merge Request Hook\r\ncontent-length: {}\r\n\r\n{{",
        s.ctx.config.server.body_limit
    );
    let mut hogs = Vec::new();
    for _ in 0..2 {
        let mut hog = TcpStream::connect(s.addr).await.unwrap();
        hog.write_all(head.as_bytes()).await.unwrap();
        hogs.push(hog);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s.post(&Delivery::mr(1, "open")).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["status"], "busy");
    assert_eq!(s.ctx.metrics.deliveries_with("busy"), 1);
    for mut hog in hogs {
        let mut answer = vec![0; 256];
        let n = hog.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // once they timed out, their room is free again
    let r = s.post(&Delivery::mr(1, "open")).await;
    assert_eq!(r.status, 200, "{r:?}");
}
