//! Test harness: an orgvend server on a real loopback socket, a plain HTTP client, and
//! GitLab-like deliveries, signed as GitLab signs them.
#![allow(dead_code)]

pub mod fake_account;
pub mod fake_aws;
pub mod fake_gitlab;
pub mod fake_okta;
pub mod fault_ic;
pub mod mem_aws;
pub mod moto;
pub mod pg;
pub mod process;
pub mod world;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use orgvend::clock::ManualClock;
use orgvend::config::Config;
use orgvend::serve::ctx::Ctx;
use orgvend::serve::server;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Polls `check` every `every` until it gives `Ok`; after `within`, fails with the last
/// `Err` it gave (what was still missing).
pub async fn eventually<T, F, Fut>(
    within: std::time::Duration,
    every: std::time::Duration,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(t) => return t,
            Err(missing) if std::time::Instant::now() >= deadline => {
                panic!("after {within:?}: {missing}")
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

pub const TOKEN: &str = "test-webhook-token";
pub const KEY: &[u8] = b"orgvend-test-signing-key-32bytes";
/// 2026-11-24 12:00:00 UTC.
pub const NOW_MS: i64 = 1_795_521_600_000;

pub fn signing_key() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    )
}

/// A config for tests: token and signature accepted, a store in `dir`.
pub fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
body_limit = 65536
[store]
url = "sqlite://{}/orgvend.db"
[gitlab]
url = "https://gitlab.example.com"
project = "infra/subaccounts"
[worker]
backoff_base_seconds = 2
max_attempts = 3
poll_interval_ms = 50
{extra}
"#,
        dir.display()
    );
    let env = |k: &str| match k {
        "ORGVEND_WEBHOOK_TOKENS" => Some(format!("old-token,{TOKEN}")),
        "ORGVEND_WEBHOOK_SIGNING_KEYS" => Some(signing_key()),
        _ => None,
    };
    Config::parse("test.toml", &text, env).expect("test config")
}

pub struct TestServer {
    pub ctx: Arc<Ctx>,
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    /// The HTTP front's task.
    pub http: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// The HTTP front only: tests step the worker themselves.
    pub async fn start(extra_config: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra_config).await
    }

    /// With the parsed config adjusted by `adjust`.
    pub async fn start_with(extra_config: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), extra_config);
        adjust(&mut c);
        Self::start_config(dir, c).await
    }

    pub async fn start_in(dir: tempfile::TempDir, extra_config: &str) -> TestServer {
        let c = config(dir.path(), extra_config);
        Self::start_config(dir, c).await
    }

    pub async fn start_config(dir: tempfile::TempDir, config: Config) -> TestServer {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let ctx = server::start(config, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = server::app(ctx.clone());
        let limits = orgvend::serve::front::Limits::of(&ctx.config.server);
        let http = tokio::spawn(async move {
            let _ =
                orgvend::serve::front::serve(listener, app, limits, std::future::pending()).await;
        });
        TestServer {
            ctx,
            addr,
            clock,
            dir,
            http,
        }
    }

    pub async fn post(&self, delivery: &Delivery) -> Response {
        delivery.send_to(self.addr).await
    }

    pub async fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], Vec::new()).await
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Response {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "orgvend.test");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// How a delivery proves where it comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Auth {
    Token,
    Signature,
    Both,
    Forged,
    None,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub event: String,
    pub body: Vec<u8>,
    pub idempotency_key: Option<String>,
    pub event_uuid: Option<String>,
    pub auth: Auth,
    pub timestamp_s: i64,
}

impl Delivery {
    pub fn new(event: &str, body: Vec<u8>) -> Delivery {
        Delivery {
            event: event.to_string(),
            body,
            idempotency_key: Some(uuid_like(&body_seed())),
            event_uuid: None,
            auth: Auth::Token,
            timestamp_s: NOW_MS / 1000,
        }
    }

    /// A merge request event of the subaccounts project (id 15).
    pub fn mr(iid: u64, action: &str) -> Delivery {
        let body = serde_json::json!({
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": {"id": 7, "username": "dana"},
            "project": {"id": 15, "path_with_namespace": "infra/subaccounts"},
            "object_attributes": {
                "iid": iid, "action": action, "state": "opened",
                "source_branch": "add-account", "target_branch": "master",
                "last_commit": {"id": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"}
            }
        });
        Delivery::new("Merge Request Hook", body.to_string().into_bytes())
    }

    pub fn fixture(name: &str, event: &str) -> Delivery {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/payloads")
            .join(name);
        Delivery::new(
            event,
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
    }

    pub fn auth(mut self, auth: Auth) -> Delivery {
        self.auth = auth;
        self
    }

    pub fn key(mut self, key: Option<&str>) -> Delivery {
        self.idempotency_key = key.map(str::to_string);
        self
    }

    pub fn uuid(mut self, uuid: &str) -> Delivery {
        self.event_uuid = Some(uuid.to_string());
        self
    }

    pub fn at(mut self, timestamp_s: i64) -> Delivery {
        self.timestamp_s = timestamp_s;
        self
    }

    /// POSTs it to the webhook of the orgvend at `addr`.
    pub async fn send_to(&self, addr: SocketAddr) -> Response {
        request(
            addr,
            "POST",
            server::WEBHOOK_PATH,
            &self.headers(),
            self.body.clone(),
        )
        .await
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-gitlab-event".to_string(), self.event.clone()),
            ("user-agent".to_string(), "GitLab/19.0.0".to_string()),
        ];
        if let Some(k) = &self.idempotency_key {
            h.push(("idempotency-key".into(), k.clone()));
        }
        if let Some(u) = &self.event_uuid {
            h.push(("x-gitlab-event-uuid".into(), u.clone()));
        }
        let id = self
            .idempotency_key
            .clone()
            .unwrap_or_else(|| "msg_none".into());
        let ts = self.timestamp_s.to_string();
        let token = ("x-gitlab-token".to_string(), TOKEN.to_string());
        let sig = orgvend::serve::auth::signature_header(KEY, &id, &ts, &self.body);
        let signed = [
            ("webhook-id".to_string(), id.clone()),
            ("webhook-timestamp".to_string(), ts.clone()),
            ("webhook-signature".to_string(), sig),
        ];
        match self.auth {
            Auth::Token => h.push(token),
            Auth::Signature => h.extend(signed),
            Auth::Both => {
                h.push(token);
                h.extend(signed);
            }
            Auth::Forged => h.push(("x-gitlab-token".into(), "guessed-token".into())),
            Auth::None => {}
        }
        h
    }
}

fn body_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u64) << 32
}

fn uuid_like(n: &u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    )
}

/// Replaces the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in
/// BENCHMARKS.md (for the bench binaries).
pub fn write_bench_section(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let all = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- bench:{name}:start -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    match (all.find(&start), all.find(&end)) {
        (Some(a), Some(b)) => {
            std::fs::write(&path, format!("{}{start}\n{text}{}", &all[..a], &all[b..])).unwrap();
            eprintln!("wrote {}", path.display());
        }
        _ => eprintln!("BENCHMARKS.md has no {start} … {end} markers; not written"),
    }
}
