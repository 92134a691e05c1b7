//! `orgvend new` run as an engineer runs it: the real binary on a git checkout of the
//! fixture (and of 10,000 accounts), its output judged by `orgvend check` against the
//! commit before.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// The fixture repository with the shipped policy, committed on `master`.
    fn fixture() -> Repo {
        let repo = Repo::empty();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for entry in fs::read_dir(root.join("fixtures/subaccounts")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.file_name().unwrap().to_str().unwrap().to_string();
                repo.write(&name, &fs::read_to_string(&path).unwrap());
            }
        }
        repo.policy();
        repo.commit("fixture");
        repo
    }

    fn empty() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        repo.git(&["init", "-q", "-b", "master"]);
        repo.git(&["config", "user.email", "dev@example.com"]);
        repo.git(&["config", "user.name", "Dev"]);
        repo
    }

    fn policy(&self) {
        self.write(
            "policies/orgvend.toml",
            include_str!("../policies/orgvend.toml"),
        );
        self.write(
            "policies/clients.rego",
            include_str!("../policies/clients.rego"),
        );
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn orgvend(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_orgvend"))
            .args(args)
            .current_dir(self.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("orgvend runs");
        Run::from(out)
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

const HOOLI: &[&str] = &[
    "new",
    "client",
    "hooli",
    "--owner",
    "data-team",
    "--tag",
    "client=hooli",
    "--purpose",
    "Analytics for Hooli",
];

#[test]
fn what_new_writes_passes_check_against_the_commit_before() {
    let repo = Repo::fixture();
    let before = repo.read("clients.tf");

    let dry = repo.orgvend(&[HOOLI, &["--dry-run"]].concat());
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .starts_with("--- a/clients.tf\n+++ b/clients.tf\n"),
        "{dry:?}"
    );
    assert!(
        dry.stdout.contains("+  name   = \"client-hooli\""),
        "{dry:?}"
    );
    assert_eq!(repo.read("clients.tf"), before, "a dry run writes nothing");

    let run = repo.orgvend(HOOLI);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Wrote `client-hooli`"), "{run:?}");
    assert!(
        repo.read("clients.tf")
            .contains("module \"subaccount_client_hooli_base\"")
    );

    let check = repo.orgvend(&["check", "--base", "master"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("client-hooli"), "{check:?}");

    // and now the name is taken
    repo.commit("hooli");
    let again = repo.orgvend(HOOLI);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again
            .stderr
            .contains("name: `client-hooli` is taken by `subaccount_client_hooli` at clients.tf:"),
        "{again:?}"
    );
}

#[test]
fn refusals_say_why_and_write_nothing() {
    let repo = Repo::fixture();
    let before = repo.read("clients.tf");
    let missing = repo.orgvend(&["new", "client", "hooli", "--owner", "data-team"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing.stderr.contains(
            "tags.client: required by the type `client` and not given (pass --tag client=VALUE)"
        ),
        "{missing:?}"
    );
    let pattern = repo.orgvend(&["new", "client", "Hooli Inc", "--tag", "client=x"]);
    assert_eq!(pattern.code, 1, "{pattern:?}");
    assert!(
        pattern.stderr.contains("name: `Hooli Inc` has `H`"),
        "{pattern:?}"
    );
    let injected = repo.orgvend(&[
        "new",
        "client",
        "hooli",
        "--tag",
        "client=x\"}\nmodule \"evil\" {",
    ]);
    assert_eq!(injected.code, 1, "{injected:?}");
    assert!(injected.stderr.contains("tags:"), "{injected:?}");
    let usage = repo.orgvend(&["new", "client", "hooli", "--tag", "client"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert_eq!(repo.read("clients.tf"), before);
}

/// A client account pair in one of the two styles the repository mixes.
fn client(i: usize) -> String {
    let slug = format!("c{i:05}");
    let key = format!("subaccount_client_{slug}");
    let (id, tags) = if i.is_multiple_of(2) {
        (
            format!("\"${{module.{key}.id}}\""),
            format!("\"${{merge(var.tags, map(\"client\", \"{slug}\"))}}\""),
        )
    } else {
        (
            format!("module.{key}.id"),
            format!("merge(var.tags, {{ client = \"{slug}\" }})"),
        )
    };
    format!(
        r#"### Client - {slug} ###
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

#[test]
fn ten_thousand_accounts() {
    let repo = Repo::empty();
    repo.policy();
    repo.write(
        "variables.tf",
        "variable \"tags\" {\n  default = {\n    owner       = \"platform\"\n    cost-center = \"cc-1\"\n  }\n}\n",
    );
    for f in 0..20 {
        let text: String = (f * 500..(f + 1) * 500).map(client).collect();
        repo.write(&format!("clients-{f:02}.tf"), &text);
    }
    repo.commit("10,000 accounts");
    let run = repo.orgvend(&["new", "client", "zeta", "--tag", "client=zeta"]);
    assert_eq!(run.code, 0, "{run:?}");
    // the last file, in name order at its end
    assert!(
        repo.read("clients-19.tf")
            .ends_with("  tags          = merge(var.tags, { client = \"zeta\" })\n}\n"),
        "{}",
        {
            let t = repo.read("clients-19.tf");
            t[t.len() - 700..].to_string()
        }
    );
    let check = repo.orgvend(&["check", "--base", "master"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("client-zeta"), "{check:?}");
}
