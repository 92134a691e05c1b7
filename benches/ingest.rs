//! Webhook ingest under load: validly signed, unique deliveries sent over keep-alive
//! connections to `orgvend serve`'s router (HMAC check, parse, durable SQLite insert with
//! group commit, 2xx) and, in the same run, to a bare axum server that answers 200 without
//! work: the ceiling. Writes the figures to BENCHMARKS.md between the `bench:ingest` markers.
//!
//! `cargo bench --bench ingest` (or scripts/bench).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use orgvend::clock::SystemClock;
use orgvend::config::Config;
use orgvend::serve::server;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONNECTIONS: usize = 64;
const REQUESTS: usize = 30_000;
const KEY: &[u8] = b"orgvend-bench-signing-key-32byte";

struct Result_ {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite_config = config(&format!("sqlite://{}", dir.path().join("orgvend.db").display()));
        let ctx = server::start(sqlite_config, Arc::new(SystemClock)).await.unwrap();
        let orgvend_addr = serve(server::app(ctx.clone())).await;
        let bare_addr = serve(axum::Router::new().route(
            server::WEBHOOK_PATH,
            axum::routing::post(|| async { axum::http::StatusCode::OK }),
        ))
        .await;

        let template = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/payloads/modern_mr_open.json")).unwrap();
        // warm up both, then measure each twice, alternating, and keep the better run
        let _ = load(&[bare_addr], &requests(&template, 2_000, "warm-b")).await;
        let _ = load(&[orgvend_addr], &requests(&template, 2_000, "warm-o")).await;
        let mut bare = Vec::new();
        let mut real = Vec::new();
        for round in 0..2 {
            let (b, o) = (requests(&template, REQUESTS, &format!("b{round}")), requests(&template, REQUESTS, &format!("o{round}")));
            bare.push(load(&[bare_addr], &b).await);
            real.push(load(&[orgvend_addr], &o).await);
        }
        let best = |v: Vec<Result_>| v.into_iter().max_by(|a, b| a.per_sec.total_cmp(&b.per_sec)).unwrap();
        let (bare, real) = (best(bare), best(real));
        let stored = ctx.store.gauges().await.unwrap().pending;
        assert_eq!(stored as usize, 2_000 + 2 * REQUESTS, "every accepted delivery is stored");

        let mut t = String::new();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let _ = writeln!(t, "{cores} cores; server and load generator in one process and runtime; {CONNECTIONS} keep-alive connections; {REQUESTS} unique deliveries of {} bytes per run, each signed (HMAC-SHA256) and checked; best of two runs each, alternating.\n", template.len());
        let _ = writeln!(t, "| server | deliveries/s | p50 | p99 | max |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|");
        for (name, r) in [("bare axum, answers 200 (ceiling)", &bare), ("orgvend: verify, parse, store durably (SQLite, synchronous=FULL), 200", &real)] {
            let _ = writeln!(t, "| {name} | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms |", r.per_sec, ms(r.p50), ms(r.p99), ms(r.max));
        }
        let _ = writeln!(t, "\nRatio: orgvend handles {:.0}% of the ceiling's throughput. {} deliveries were stored, each once, and were on disk before their 2xx.", 100.0 * real.per_sec / bare.per_sec, stored);
        println!("{t}");
        common::write_bench_section("ingest", &t);

        // PostgreSQL, for replicas: one and two orgvend servers on one database, next to
        // the SQLite figure above (same machine, same load)
        let pg = common::pg::Postgres::start();
        let url = pg.database().await;
        let mut rows = vec![("SQLite (one process)".to_string(), real)];
        for replicas in [1usize, 2] {
            let mut addrs = Vec::new();
            for _ in 0..replicas {
                let ctx = server::start(config(&url), Arc::new(SystemClock)).await.unwrap();
                addrs.push(serve(server::app(ctx)).await);
            }
            let _ = load(&addrs, &requests(&template, 2_000, &format!("warm-pg{replicas}"))).await;
            let mut runs = Vec::new();
            for round in 0..2 {
                runs.push(load(&addrs, &requests(&template, REQUESTS, &format!("pg{replicas}-{round}"))).await);
            }
            rows.push((format!("PostgreSQL, {replicas} replica{}", if replicas == 1 { "" } else { "s" }), best(runs)));
        }
        let pg_store = orgvend::store::Store::open(&url).await.unwrap();
        let stored = pg_store.gauges().await.unwrap().pending;
        assert_eq!(stored as usize, 2 * 2_000 + 4 * REQUESTS, "every accepted delivery is stored once");
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let version: String = client.query_one("SHOW server_version", &[]).await.unwrap().get(0);
        let version = version.split_whitespace().next().unwrap_or_default().to_string();
        let mut t = String::new();
        let _ = writeln!(t, "The same load (signed, unique deliveries over {CONNECTIONS} keep-alive connections, spread round-robin over the replicas); PostgreSQL {version} from the machine's binaries on loopback with fsync on and its default synchronous_commit; replicas are orgvend servers in the bench process sharing its {cores} cores, so two replicas measure the database path, not more CPU.\n");
        let _ = writeln!(t, "| store | deliveries/s | p50 | p99 | max |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|");
        for (name, r) in &rows {
            let _ = writeln!(t, "| {name} | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms |", r.per_sec, ms(r.p50), ms(r.p99), ms(r.max));
        }
        println!("{t}");
        common::write_bench_section("ingest-replicas", &t);
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn config(store_url: &str) -> Config {
    let text = format!(
        "[store]\nurl = \"{store_url}\"\n[webhook]\nrequire = [\"signature\"]\n[gitlab]\nurl = \"https://gitlab.example.com\"\nproject = 1\n[log]\nlevel = \"warn\"\n"
    );
    let key = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, KEY)
    );
    Config::parse("bench.toml", &text, |k| {
        (k == "ORGVEND_WEBHOOK_SIGNING_KEYS").then(|| key.clone())
    })
    .unwrap()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Unique, signed deliveries, prepared before the clock starts.
fn requests(template: &str, n: usize, tag: &str) -> Requests {
    let now = (orgvend::clock::Clock::now_ms(&SystemClock) / 1000).to_string();
    (0..n)
        .map(|i| {
            let body = template.replace("\"iid\": 1,", &format!("\"iid\": {},", i + 1));
            let id = format!("{tag}-{i:08}");
            let headers = vec![
                ("content-type".into(), "application/json".into()),
                ("x-gitlab-event".into(), "Merge Request Hook".into()),
                ("idempotency-key".into(), id.clone()),
                ("webhook-id".into(), id.clone()),
                ("webhook-timestamp".into(), now.clone()),
                (
                    "webhook-signature".into(),
                    orgvend::serve::auth::signature_header(KEY, &id, &now, body.as_bytes()),
                ),
            ];
            (headers, Bytes::from(body))
        })
        .collect::<Vec<_>>()
        .into()
}

type Requests = Arc<Vec<(Vec<(String, String)>, Bytes)>>;

/// Sends every request over `CONNECTIONS` connections spread over `addrs` (replicas behind
/// a round-robin balancer).
async fn load(addrs: &[SocketAddr], reqs: &Requests) -> Result_ {
    let reqs = reqs.clone();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let (reqs, next) = (reqs.clone(), next.clone());
            let addr = addrs[c % addrs.len()];
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((headers, body)) = reqs.get(i) else {
                        break;
                    };
                    let mut req = hyper::Request::builder()
                        .method("POST")
                        .uri(server::WEBHOOK_PATH)
                        .header("host", "bench");
                    for (k, v) in headers {
                        req = req.header(k.as_str(), v.as_str());
                    }
                    let t = Instant::now();
                    let resp = sender
                        .send_request(req.body(Full::new(body.clone())).unwrap())
                        .await
                        .unwrap();
                    let status = resp.status();
                    let _ = resp.into_body().collect().await;
                    latencies.push(t.elapsed());
                    assert!(status.is_success(), "{status}");
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(reqs.len());
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Result_ {
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: *all.last().unwrap(),
    }
}
