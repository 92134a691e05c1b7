//! `orgvend doctor` against the fake GitLab and moto: a set-up that holds passes; each thing
//! orgvend's safety rests on, when missing, fails with how to fix it.

mod common;

use common::fake_gitlab::{BOT_TOKEN, FakeGitlab, FakeHook, FakeProtection, FakeState};
use common::moto::{Moto, PROCESS_ENV};
use common::world::{GROUP, fixture_repo, initial_state};
use orgvend::cli::doctor::{self, Level};
use std::process::Command;

/// The subaccounts project as docs/serve.md asks for it.
fn well_set_up() -> FakeState {
    let mut s = initial_state(&fixture_repo());
    s.group_ids.insert(GROUP.into(), 5);
    s.pipelines_must_succeed = true;
    s.protected.insert(
        "master".into(),
        FakeProtection {
            push: 0,
            merge: 40,
            allow_force_push: false,
        },
    );
    s.hooks.push(FakeHook {
        id: 1,
        url: "https://orgvend.example.com/webhooks/gitlab".into(),
        merge_requests_events: true,
        note_events: true,
        issues_events: true,
        token: true,
    });
    s
}

fn config(gitlab: &str, moto: Option<&str>) -> orgvend::config::Config {
    let mut text = format!("[gitlab]\nurl = \"{gitlab}\"\nproject = \"infra/subaccounts\"\n");
    if let Some(m) = moto {
        text.push_str(&format!(
            "[aws]\nendpoint_url = \"{m}\"\nsaml_metadata_file = \"fixtures/idp-metadata.xml\"\n"
        ));
    }
    let env = |k: &str| match k {
        "ORGVEND_WEBHOOK_TOKENS" => Some("t".to_string()),
        "ORGVEND_GITLAB_TOKEN" => Some(BOT_TOKEN.to_string()),
        _ => None,
    };
    orgvend::config::Config::parse("orgvend.toml", &text, env).unwrap()
}

fn client(url: &str) -> orgvend::gitlab::client::GitlabClient {
    orgvend::gitlab::client::GitlabClient::new(
        url,
        Some(orgvend::config::Secret::new(BOT_TOKEN)),
        std::time::Duration::from_secs(5),
    )
    .unwrap()
}

fn failed(findings: &[doctor::Finding]) -> Vec<&'static str> {
    findings
        .iter()
        .filter(|f| f.level == Level::Fail)
        .map(|f| f.check)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_up_that_holds_passes() {
    let gitlab = FakeGitlab::start(well_set_up()).await;
    let c = config(&gitlab.url(), None);
    let findings = doctor::check_gitlab(&client(&gitlab.url()), &c.gitlab).await;
    assert!(
        failed(&findings).is_empty(),
        "{}",
        doctor::render(&findings)
    );
    assert_eq!(doctor::exit_code(&findings), 0);
    assert!(
        findings.iter().all(|f| f.level == Level::Ok),
        "{findings:#?}"
    );
    // without issue events, requests by issue wait for a comment: said, not fatal
    gitlab.with(|s| s.hooks[0].issues_events = false);
    let findings = doctor::check_gitlab(&client(&gitlab.url()), &c.gitlab).await;
    let hook = findings.iter().find(|f| f.check == "webhook").unwrap();
    assert_eq!(hook.level, Level::Warn, "{findings:#?}");
    assert!(doctor::render(&findings).contains("Issues events"));

    let moto = Moto::start();
    moto.organization().await;
    let aws = moto.aws().await;
    let findings = doctor::check_aws(&aws).await;
    assert!(
        failed(&findings).is_empty(),
        "{}",
        doctor::render(&findings)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_safeguard_fails_with_its_fix() {
    for (name, break_it, check) in [
        (
            "unprotected",
            (|s: &mut FakeState| {
                s.protected.clear();
            }) as fn(&mut FakeState),
            "branch protection",
        ),
        (
            "developers push",
            |s| {
                s.protected.get_mut("master").unwrap().push = 30;
            },
            "branch protection",
        ),
        (
            "developers merge",
            |s| {
                s.protected.get_mut("master").unwrap().merge = 30;
            },
            "branch protection",
        ),
        (
            "pipelines",
            |s| s.pipelines_must_succeed = false,
            "pipelines must succeed",
        ),
        ("no hook", |s| s.hooks.clear(), "webhook"),
        ("no comments", |s| s.hooks[0].note_events = false, "webhook"),
        ("no token", |s| s.hooks[0].token = false, "webhook"),
        (
            "read_api",
            |s| s.token_scopes = vec!["read_api".into()],
            "token",
        ),
        (
            "another user",
            |s| s.users.get_mut(&s.bot_user).unwrap().username = "someone".into(),
            "bot user",
        ),
        (
            "hidden group",
            |s| {
                s.group_ids.remove(GROUP);
            },
            "approval group",
        ),
    ] {
        let mut state = well_set_up();
        break_it(&mut state);
        let gitlab = FakeGitlab::start(state).await;
        let c = config(&gitlab.url(), None);
        let findings = doctor::check_gitlab(&client(&gitlab.url()), &c.gitlab).await;
        assert_eq!(
            failed(&findings),
            [check],
            "{name}: {}",
            doctor::render(&findings)
        );
        let f = findings.iter().find(|f| f.level == Level::Fail).unwrap();
        assert!(
            f.fix.as_deref().is_some_and(|x| !x.is_empty()),
            "{name}: no fix"
        );
        assert_eq!(doctor::exit_code(&findings), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_says_what_to_fix_and_exits_1() {
    let moto = Moto::start();
    moto.organization().await;
    let mut state = well_set_up();
    state.protected.clear();
    let gitlab = FakeGitlab::start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orgvend.toml");
    let metadata =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idp-metadata.xml");
    std::fs::write(
        &path,
        format!(
            "[gitlab]\nurl = \"{}\"\nproject = \"infra/subaccounts\"\n[aws]\nendpoint_url = \"{}\"\nsaml_metadata_file = \"{}\"\n",
            gitlab.url(),
            moto.url,
            metadata.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["doctor", "--config"])
        .arg(&path)
        .envs(PROCESS_ENV)
        .env("ORGVEND_WEBHOOK_TOKENS", "t")
        .env("ORGVEND_GITLAB_TOKEN", BOT_TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FAIL branch protection: `master` is not protected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: Settings → Repository → Protected branches"),
        "{stdout}"
    );
    assert!(stdout.contains("ok   AWS identity"), "{stdout}");
    assert!(!stdout.contains(BOT_TOKEN), "the token is never printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_providers_are_checked() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = doctor::check_identity_center(&aws.identity_center()).await;
    assert_eq!(f.level, Level::Ok, "{f:?}");

    let mut state = common::fake_okta::OktaState::new();
    let app = state.add_app("amazon_aws");
    let fake = common::fake_okta::FakeOkta::start(state).await;
    let okta = |token: &str| {
        orgvend::okta::OktaClient::new(
            &fake.url(),
            orgvend::okta::OktaAuth::Ssws {
                token: orgvend::config::Secret::new(token),
            },
            std::time::Duration::from_secs(5),
        )
        .unwrap()
    };
    let good = okta(common::fake_okta::SSWS_TOKEN);
    let findings = doctor::check_okta(&good, &app).await;
    assert!(failed(&findings).is_empty(), "{findings:?}");
    let findings = doctor::check_okta(&good, "0oanotanapp").await;
    assert_eq!(failed(&findings), ["Okta app"]);
    let findings = doctor::check_okta(&okta("wrong"), &app).await;
    assert!(
        failed(&findings).contains(&"Okta credentials"),
        "{findings:?}"
    );
}
