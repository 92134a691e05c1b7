use super::*;

const MINIMAL: &str =
    "[gitlab]\nurl = \"https://gitlab.example.com\"\nproject = \"infra/subaccounts\"\n";

fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn minimal_config_with_token_from_env() {
    let c = Config::parse(
        "orgvend.toml",
        MINIMAL,
        env(&[(ENV_WEBHOOK_TOKENS, "old, new")]),
    )
    .unwrap();
    assert_eq!(c.webhook.tokens, [Secret::new("old"), Secret::new("new")]);
    assert_eq!(c.server.body_limit, 25 * 1024 * 1024);
    assert_eq!(
        c.gitlab.project,
        ProjectSelector::Path("infra/subaccounts".into())
    );
    assert_eq!(c.store.url.expose(), "sqlite://orgvend.db");
}

#[test]
fn secrets_never_print() {
    let c = Config::parse(
        "orgvend.toml",
        MINIMAL,
        env(&[
            (ENV_WEBHOOK_TOKENS, "hunter2"),
            (ENV_GITLAB_TOKEN, "glpat-SECRET"),
            (ENV_STORE_URL, "postgres://u:pw@db/x"),
        ]),
    )
    .unwrap();
    let shown = format!("{c:?} {}", c.webhook.tokens[0]);
    assert!(
        !shown.contains("hunter2") && !shown.contains("glpat-SECRET") && !shown.contains(":pw@"),
        "{shown}"
    );
}

#[test]
fn errors_name_file_and_line() {
    let e = Config::parse(
        "o.toml",
        &format!("{MINIMAL}colour = 1\n"),
        env(&[(ENV_WEBHOOK_TOKENS, "t")]),
    )
    .unwrap_err();
    assert_eq!(e.at.as_ref().unwrap().line, 4, "{e}");
    assert!(e.message.contains("colour"), "{e}");
    let e = Config::parse("o.toml", "[server]\nlisten = \"nope\"\n", env(&[])).unwrap_err();
    assert_eq!(e.at.as_ref().unwrap().line, 2, "{e}");
    let e = Config::parse("o.toml", "[server]\n", env(&[])).unwrap_err();
    assert!(e.message.contains("gitlab"), "{e}");
}

#[test]
fn required_auth_needs_its_secret() {
    let e = Config::parse("o.toml", MINIMAL, env(&[])).unwrap_err();
    assert!(e.message.contains(ENV_WEBHOOK_TOKENS), "{e}");
    let sig = format!("{MINIMAL}[webhook]\nrequire = [\"signature\"]\n");
    let e = Config::parse("o.toml", &sig, env(&[])).unwrap_err();
    assert!(e.message.contains(ENV_SIGNING_KEYS), "{e}");
    let e = Config::parse("o.toml", &sig, env(&[(ENV_SIGNING_KEYS, "not-a-key")])).unwrap_err();
    assert!(e.message.contains("signing key #1"), "{e}");
    assert!(
        !e.message.contains("not-a-key"),
        "the key is not echoed: {e}"
    );
    let none = format!("{MINIMAL}[webhook]\nrequire = []\n");
    assert!(Config::parse("o.toml", &none, env(&[])).is_err());
}
