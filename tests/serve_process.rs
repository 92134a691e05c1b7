//! `orgvend serve` as a process: nothing answered 2xx is lost to a SIGKILL; SIGTERM shuts
//! down cleanly; a broken config is refused with file:line.

mod common;

use common::process::{signal, spawn, spawn_env};
use common::{Delivery, TOKEN, eventually};
use std::process::Command;
use std::time::Duration;

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
    for iid in 1..=7u64 {
        common::world::add_account_mr(&mut state, iid, &format!("c{iid}"), &[]);
    }
    common::fake_gitlab::FakeGitlab::start(state).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_after_the_answers_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = gitlab_with_mrs().await;
    let config = write_config(dir.path(), &gitlab.url());
    let mut serve = spawn(&config);
    let addr = serve.addr;
    let tasks: Vec<_> = (0..60)
        .map(|i| tokio::spawn(async move { Delivery::mr(1 + i % 7, "update").send_to(addr).await }))
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
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let all = store.list(None, 10_000).await.unwrap();
            let updates: Vec<_> = all.iter().filter(|d| d.action == "updated").collect();
            assert_eq!(
                updates.len(),
                60,
                "each delivery answered 2xx is stored, once"
            );
            if updates.iter().all(|d| d.state == "done") {
                Ok(())
            } else {
                Err("not every delivery answered 2xx was processed after the restart".into())
            }
        },
    )
    .await;
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
    let r = d.send_to(serve.addr).await;
    assert_eq!(r.status, 200);
    signal(&serve.child, "-TERM");
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let log = serve.finished_log();
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

/// A merge replayed as a user would: `orgvend serve` as configured in docs/serve.md, AWS at
/// moto's server, the fake GitLab holding a merged, approved MR. The process is SIGKILLed as
/// soon as the account exists and started again: the vend finishes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_vends_the_account_and_its_repository_across_a_sigkill() {
    use common::world::{ALICE, BOB};
    let moto = common::moto::Moto::start();
    moto.organization().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = common::world::initial_state(&common::world::fixture_repo());
    state.group_ids.insert("aws-accounts".into(), 77);
    common::world::add_account_mr(&mut state, 1, "zenith", &[ALICE]);
    let gitlab = common::fake_gitlab::FakeGitlab::start(state).await;

    // the shipped example metadata, as docs/apply.md tells a user to try it
    let metadata =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idp-metadata.xml");
    let config = write_config(dir.path(), &gitlab.url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[aws]\nendpoint_url = \"{}\"\nsaml_metadata_file = \"{}\"\npoll_interval_ms = 50\nassume_role_timeout_seconds = 30\n[bootstrap]\noidc_issuer = \"https://gitlab.example.com\"\n",
        moto.url,
        metadata.display()
    ));
    std::fs::write(&config, text).unwrap();
    let env = common::moto::PROCESS_ENV;

    let mut serve = spawn_env(&config, &env);
    // merged once orgvend runs (what merged before its first run waits until asked)
    let merge_sha = gitlab.with(|s| s.merge(1, BOB));
    let merge = common::world::merge_payload(1, BOB, &merge_sha);
    let d = Delivery::new("Merge Request Hook", merge.to_string().into_bytes());
    let r = d.send_to(serve.addr).await;
    assert_eq!(r.status, 200);

    // kill it as soon as AWS has the account: the baseline and the repository are unfinished
    eventually(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async {
            let accounts = moto.accounts().await;
            if accounts.iter().any(|(_, n, _)| n == "client-zenith") {
                Ok(())
            } else {
                Err(format!("no account client-zenith: {accounts:?}"))
            }
        },
    )
    .await;
    signal(&serve.child, "-KILL");
    serve.child.wait().unwrap();
    let _serve = spawn_env(&config, &env);

    eventually(
        Duration::from_secs(120),
        Duration::from_millis(100),
        || async {
            let note = gitlab.with(|s| s.bot_notes(1).first().map(|n| n.body.clone()));
            if note.as_deref().is_some_and(|n| n.contains("✅ Applied")) {
                Ok(())
            } else {
                Err(format!("not applied after the restart: {note:?}"))
            }
        },
    )
    .await;
    let all = moto.accounts().await;
    assert_eq!(
        all.iter().filter(|(_, n, _)| n == "client-zenith").count(),
        1,
        "{all:?}"
    );
    gitlab.with(|s| {
        assert_eq!(s.projects.len(), 1);
        let p = s.project_at("aws-accounts/client-zenith").unwrap();
        assert_eq!(p.commits.len(), 1);
        assert!(p.branches["master"].contains_key("backend.tf"));
        assert_eq!(p.protected["master"].push, 0);
        assert!(p.variables["AWS_APPLY_ROLE_ARN"].protected);
        assert_eq!(s.bot_notes(1).len(), 1);
    });

    // the audit trail, as the security team reads it: both processes' records, newest first
    // (a second attempt at the same merge — reconciliation's, queued while the first was
    // unfinished — may still be going over it again, making no change: wait for it)
    let audit = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_orgvend"))
            .args(["audit", "--mr", "1", "--config"])
            .arg(&config)
            .env("ORGVEND_WEBHOOK_TOKENS", common::TOKEN)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect::<Vec<serde_json::Value>>()
    };
    let mut records = audit();
    for _ in 0..100 {
        let newest = records.iter().find(|r| r["kind"] == "apply");
        if newest.is_some_and(|r| r["decision"] == "applied") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        records = audit();
    }
    let decisions: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "apply")
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions.first(), Some(&"applied"), "{records:?}");
    assert!(decisions.contains(&"running"), "{decisions:?}");
    assert!(
        records.iter().all(
            |r| r["facts"].as_str().is_some_and(|f| f.contains("merged_by"))
                || r["kind"] != "apply"
        ),
        "every apply record keeps who merged: {records:?}"
    );
}

/// Two processes on one SQLite file (a rolling deploy on a shared volume) would reset each
/// other's work and apply twice: the second refuses to start and names the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = gitlab_with_mrs().await;
    let config = write_config(dir.path(), &gitlab.url());
    let first = common::process::spawn(&config);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("ORGVEND_WEBHOOK_TOKENS", common::TOKEN)
        .env("ORGVEND_GITLAB_TOKEN", common::fake_gitlab::BOT_TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is in use by another orgvend")
            && stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
    // the first one goes on serving
    let r = common::request(first.addr, "GET", "/readyz", &[], Vec::new()).await;
    assert_eq!(r.status, 200);
    // `orgvend inbox` still reads the store beside it
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["inbox", "--config"])
        .arg(&config)
        .arg("list")
        .env("ORGVEND_WEBHOOK_TOKENS", common::TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(first);
    // once it is gone, a new one starts
    let again = common::process::spawn(&config);
    let r = common::request(again.addr, "GET", "/readyz", &[], Vec::new()).await;
    assert_eq!(r.status, 200);
}
