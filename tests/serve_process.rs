//! `orgvend serve` as a process: nothing answered 2xx is lost to a SIGKILL; SIGTERM shuts
//! down cleanly; a broken config is refused with file:line.

mod common;

use common::{Delivery, TOKEN};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    addr: SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
}

fn write_config(dir: &std::path::Path, gitlab_url: &str) -> std::path::PathBuf {
    let path = dir.join("orgvend.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_seconds = 5\n[store]\nurl = \"sqlite://{}/data/orgvend.db\"\n[gitlab]\nurl = \"{gitlab_url}\"\nproject = \"infra/subaccounts\"\n[worker]\npoll_interval_ms = 50\n",
            dir.display()
        ),
    )
    .unwrap();
    path
}

/// A fake GitLab holding the fixture repository and seven open MRs (1..=7).
async fn gitlab_with_mrs() -> common::fake_gitlab::FakeGitlab {
    let mut state = common::world::initial_state(&common::world::fixture_repo());
    let master = state.branches["master"].clone();
    for iid in 1..=7u64 {
        let account = common::world::client_account(&format!("c{iid}"));
        let head = state.commit(
            Some(&master),
            &[(&format!("client-c{iid}.tf"), Some(&account))],
        );
        state.mrs.insert(
            iid,
            common::fake_gitlab::FakeMr {
                iid,
                title: format!("client c{iid}"),
                author: common::world::DEV,
                source_branch: format!("mr-{iid}"),
                target_branch: "master".into(),
                state: "opened".into(),
                base_sha: master.clone(),
                start_sha: master.clone(),
                head_sha: head,
                approvals: vec![],
                notes: vec![],
                labels: vec![],
                merge_commit_sha: None,
                merged_by: None,
                collapse_diffs: false,
            },
        );
    }
    common::fake_gitlab::FakeGitlab::start(state).await
}

fn spawn(config: &std::path::Path) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["serve", "--config"])
        .arg(config)
        .env("ORGVEND_WEBHOOK_TOKENS", TOKEN)
        .env("ORGVEND_GITLAB_TOKEN", common::fake_gitlab::BOT_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgvend starts");
    let (tx, rx) = std::sync::mpsc::channel();
    // Owned by `Serve` from here on, whose Drop kills and reaps it whatever happens next.
    let mut serve = Serve {
        child,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        log: rx,
    };
    let out: Box<dyn std::io::Read + Send> = Box::new(serve.child.stdout.take().expect("piped"));
    let err: Box<dyn std::io::Read + Send> = Box::new(serve.child.stderr.take().expect("piped"));
    for pipe in [out, err] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = serve
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("orgvend says where it listens within 20 s");
        if let Some(rest) = line.split("listen=").nth(1) {
            serve.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return serve;
        }
    }
}

impl Drop for Serve {
    /// A failing test never leaves a server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_after_the_answers_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = gitlab_with_mrs().await;
    let config = write_config(dir.path(), &gitlab.url());
    let mut serve = spawn(&config);
    let addr = serve.addr;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            tokio::spawn(async move {
                let d = Delivery::mr(1 + i % 7, "update");
                common::request(
                    addr,
                    "POST",
                    orgvend::server::WEBHOOK_PATH,
                    &d.headers(),
                    d.body.clone(),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    signal(&serve.child, "-KILL");
    serve.child.wait().unwrap();

    let _serve = spawn(&config);
    // The webhook deliveries (reconciliation queues its own, with action `reconcile`).
    let store = orgvend::store::Store::open(&format!(
        "sqlite://{}/data/orgvend.db",
        dir.path().display()
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = store.list(None, 10_000).await.unwrap();
        let updates: Vec<_> = all.iter().filter(|d| d.action == "updated").collect();
        assert_eq!(
            updates.len(),
            60,
            "each delivery answered 2xx is stored, once"
        );
        if updates.iter().all(|d| d.state == "done") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every delivery answered 2xx was processed after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // every MR was reviewed, and has exactly one note
    for iid in 1..=7 {
        assert_eq!(gitlab.with(|s| s.bot_notes(iid).len()), 1, "MR {iid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = gitlab_with_mrs().await;
    let mut serve = spawn(&write_config(dir.path(), &gitlab.url()));
    let d = Delivery::mr(1, "open");
    let r = common::request(
        serve.addr,
        "POST",
        orgvend::server::WEBHOOK_PATH,
        &d.headers(),
        d.body.clone(),
    )
    .await;
    assert_eq!(r.status, 200);
    signal(&serve.child, "-TERM");
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = serve.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("orgvend stopped")),
        "{log:#?}"
    );
    assert!(!log.join("\n").contains(TOKEN), "the token reached the log");
}

#[test]
fn config_errors_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[gitlab]\nurl = \"https://g\"\nproject = \"a/b\"\n[server]\nlisten = 8080\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("ORGVEND_WEBHOOK_TOKENS", "t")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:5:"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["serve", "--config", "/nonexistent/orgvend.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));

    std::fs::write(&path, "[gitlab]\nurl = \"https://g\"\nproject = \"a/b\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("ORGVEND_WEBHOOK_TOKENS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ORGVEND_WEBHOOK_TOKENS"));
}

#[test]
fn the_example_config_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("orgvend.example.toml")).unwrap();
    let env = |k: &str| (k == "ORGVEND_WEBHOOK_TOKENS").then(|| "t".to_string());
    orgvend::config::Config::parse("orgvend.example.toml", &text, env)
        .expect("the shipped example config loads");
}
