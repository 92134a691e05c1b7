//! `orgvend check` run as a user runs it: a real binary on real git repositories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICY: &str = include_str!("../policies/orgvend.toml");
const REGO: &str = include_str!("../policies/clients.rego");

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A git repository holding the example policy.
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "master"]);
        repo.git(&["config", "user.email", "dev@example.com"]);
        repo.git(&["config", "user.name", "Dev"]);
        repo.write("policies/orgvend.toml", POLICY);
        repo.write("policies/clients.rego", REGO);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn remove(&self, rel: &str) {
        fs::remove_file(self.path().join(rel)).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn check(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgvend"));
        cmd.arg("check").args(args).current_dir(self.path());
        Run::from(cmd.output().expect("orgvend runs"))
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().expect("exited"),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn client(slug: &str, style_011: bool) -> String {
    let key = format!("subaccount_client_{}", slug.replace('-', "_"));
    let (id, tags) = if style_011 {
        (
            format!("\"${{ module.{key}.id }}\""),
            format!("\"${{merge(var.tags, map(\"client\", \"{slug}\"))}}\""),
        )
    } else {
        (
            format!("module.{key}.id"),
            format!("merge(var.tags, {{ client = \"{slug}\" }})"),
        )
    };
    format!(
        r#"
### Client - {slug} ###
module "{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "client-{slug}"
  email  = "aws+client-{slug}@example.com"
}}

module "{key}_base" {{
  source        = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id    = {id}
  account_alias = "client-{slug}"
  account_type  = "client"
  tags          = {tags}
}}
"#
    )
}

const VARIABLES: &str = r#"
variable "tags" {
  default = {
    owner       = "platform"
    cost-center = "cc-1"
  }
}
"#;

#[test]
fn the_fixture_checks_clean_with_no_arguments() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/subaccounts");
    let out = Run::from(
        Command::new(env!("CARGO_BIN_EXE_orgvend"))
            .arg("check")
            .current_dir(&fixture)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("Passes policy"), "{out:?}");
    assert!(out.stdout.contains("10 to create"), "{out:?}");
}

#[test]
fn the_fixture_policy_is_the_shipped_policy() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for name in ["orgvend.toml", "clients.rego"] {
        assert_eq!(
            fs::read_to_string(root.join("policies").join(name)).unwrap(),
            fs::read_to_string(root.join("fixtures/subaccounts/policies").join(name)).unwrap(),
            "fixtures/subaccounts/policies/{name} must stay a copy of policies/{name}"
        );
    }
}

#[test]
fn both_interpolation_styles_pass() {
    for style_011 in [true, false] {
        let repo = Repo::new();
        repo.write("variables.tf", VARIABLES);
        repo.write(
            "clients.tf",
            &(client("acme", style_011) + &client("globex", style_011)),
        );
        let out = repo.check(&[]);
        assert_eq!(out.code, 0, "0.11 style: {style_011}\n{out:?}");
        assert!(out.stdout.contains("2 to create"), "{out:?}");
    }
}

#[test]
fn a_violation_exits_1_naming_module_and_line() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write(
        "clients.tf",
        &client("acme", false).replace("\"client-acme\"\n  email", "\"acme\"\n  email"),
    );
    let out = repo.check(&[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("clients.tf:5: [naming.name] subaccount_client_acme"),
        "{out:?}"
    );
    assert!(out.stdout.contains("fix: "), "{out:?}");
}

#[test]
fn a_syntax_error_exits_2_with_file_line_and_column() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write("clients.tf", &client("acme", false));
    repo.write(
        "broken.tf",
        "module \"x\" {\n  source = \"y\"\n  name = \"unterminated\n}\n",
    );
    let out = repo.check(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("broken.tf:3:"), "{out:?}");
    assert!(out.stdout.contains("syntax error"), "{out:?}");
}

#[test]
fn with_base_a_removed_account_and_a_changed_email_are_caught() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write(
        "clients.tf",
        &(client("acme", true) + &client("globex", true)),
    );
    repo.commit("two clients");
    repo.git(&["checkout", "-q", "-b", "change"]);
    repo.write(
        "clients.tf",
        &client("acme", true).replace(
            "aws+client-acme@example.com",
            "aws+client-acme-2@example.com",
        ),
    );
    repo.commit("drop globex, change acme's email");

    let out = repo.check(&["--base", "master", "--head", "change"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("[change.close] subaccount_client_globex"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("clients.tf:6: [change.immutable] subaccount_client_acme"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("0 to create, 1 to update, 1 to close"),
        "{out:?}"
    );

    // without --head, the working tree is the head: same answer, and git status untouched
    let status_before = repo.git(&["status", "--porcelain"]);
    let out = repo.check(&["--base", "master"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(repo.git(&["status", "--porcelain"]), status_before);
}

#[test]
fn head_ref_is_read_from_git_not_the_working_tree() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write("clients.tf", &client("acme", false));
    repo.commit("acme");
    // an uncommitted, broken edit does not affect a check of HEAD
    repo.write("clients.tf", "module {");
    let out = repo.check(&["--head", "HEAD"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = repo.check(&[]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn the_policy_comes_from_the_base_not_the_change() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write("clients.tf", &client("acme", false));
    repo.commit("acme");
    repo.git(&["checkout", "-q", "-b", "loosen"]);
    // the MR tries to allow any client name, and adds a badly named client
    repo.write(
        "policies/orgvend.toml",
        &POLICY.replace("'client-[a-z0-9]+(-[a-z0-9]+)*'", "'.*'"),
    );
    repo.write(
        "extra.tf",
        &client("x", false).replace("\"client-x\"\n  email", "\"whatever\"\n  email"),
    );
    repo.commit("loosen the rules");
    let out = repo.check(&["--base", "master", "--head", "loosen"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("[naming.name]"), "{out:?}");
}

#[test]
fn formats_json_and_markdown() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write("clients.tf", &client("acme", false));
    let out = repo.check(&["--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_eq!(doc["verdict"], "passes");
    assert_eq!(doc["summary"]["create"], 1);
    assert_eq!(
        doc["plan"]["changes"][0]["steps"][0]["step"],
        "create_account"
    );
    assert!(
        doc["plan"]["changes"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+module \"subaccount_client_acme\"")
    );

    let out = repo.check(&["--format", "markdown"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("<!-- orgvend:plan -->"), "{out:?}");
    assert!(out.stdout.contains("<details>"), "{out:?}");
}

#[test]
fn usage_and_setup_errors_exit_2() {
    let repo = Repo::new();
    repo.write("clients.tf", &client("acme", false));
    assert_eq!(repo.check(&["--format", "yaml"]).code, 2);
    assert_eq!(repo.check(&["--nope"]).code, 2);
    let out = repo.check(&["--base", "no-such-branch"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no-such-branch"), "{out:?}");
    let out = repo.check(&["--repo", "/nonexistent/dir"]);
    assert_eq!(out.code, 2, "{out:?}");

    // a broken policy names its file and line
    repo.write(
        "policies/orgvend.toml",
        &POLICY.replace("[naming]", "[naming]\ncolour = \"red\""),
    );
    let out = repo.check(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("policies/orgvend.toml:"), "{out:?}");
    assert!(out.stderr.contains("colour"), "{out:?}");

    // no policy at all says how to give one
    repo.remove("policies/orgvend.toml");
    let out = repo.check(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--policy"), "{out:?}");
}

#[test]
fn policy_dir_flag_overrides_the_repository() {
    let repo = Repo::new();
    repo.write("variables.tf", VARIABLES);
    repo.write(
        "clients.tf",
        &client("acme", false).replace("client-acme", "acme"),
    );
    let loose = tempfile::tempdir().unwrap();
    fs::write(
        loose.path().join("orgvend.toml"),
        POLICY
            .replace("'client-[a-z0-9]+(-[a-z0-9]+)*'", "'.*'")
            .replace("template = \"aws+{name}@example.com\"", ""),
    )
    .unwrap();
    assert_eq!(repo.check(&[]).code, 1);
    let out = repo.check(&["--policy", loose.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn a_project_in_a_subdirectory_reads_its_refs_relative_to_it() {
    let repo = Repo::new();
    repo.remove("policies/orgvend.toml");
    repo.remove("policies/clients.rego");
    repo.write("terraform/policies/orgvend.toml", POLICY);
    repo.write("terraform/variables.tf", VARIABLES);
    repo.write("terraform/clients.tf", &client("acme", false));
    repo.write("other/ignored.tf", "this is { not terraform");
    repo.commit("nested");
    let out = Run::from(
        Command::new(env!("CARGO_BIN_EXE_orgvend"))
            .args([
                "check",
                "--repo",
                "terraform",
                "--base",
                "HEAD",
                "--head",
                "HEAD",
            ])
            .current_dir(repo.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Passes policy: no account changes"),
        "{out:?}"
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let repo = Repo::new();
    repo.write("variables.tf", &format!("\u{feff}{VARIABLES}"));
    repo.write("clients.tf", &client("acme", false));
    let out = repo.check(&[]);
    assert_eq!(out.code, 0, "{out:?}");
}

/// `orgvend check | head`: the reader goes away after a few bytes; orgvend says nothing and
/// exits with its verdict, not with a panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    // far more output than a pipe holds (64 KiB)
    let repo = Repo::new();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/subaccounts");
    for name in ["main.tf", "variables.tf", "terraform.tfvars"] {
        repo.write(name, &fs::read_to_string(fixture.join(name)).unwrap());
    }
    let many: String = (0..400).map(|i| client(&format!("c{i}"), false)).collect();
    repo.write("clients.tf", &many);
    let mut child = Command::new(env!("CARGO_BIN_EXE_orgvend"))
        .args(["check", "--format", "json", "--repo"])
        .arg(repo.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // the pipe is closed here, before orgvend has written everything
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
