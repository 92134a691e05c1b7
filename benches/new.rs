//! `orgvend new` on a repository of 10,000 accounts: in process (read the checkout, read the
//! declarations, generate and check the new pair) and as the binary, start to exit. The
//! figures are written to BENCHMARKS.md between the `bench:new` markers.
//!
//! Run with `cargo bench --bench new`. Target: under 200 ms for the binary.

/// The allocator the `orgvend` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use orgvend::cli::checkout;
use orgvend::core::decl;
use orgvend::core::policy::Policy;
use orgvend::core::request::{self, Request};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 10_000;
const PER_FILE: usize = 500;
const RUNS: usize = 9;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-repos/new-10000");
    let bytes = generate(&dir);
    let req = Request {
        account_type: "client".into(),
        name: "zeta".into(),
        owner: Some("data-team".into()),
        tags: vec![("client".into(), "zeta".into())],
        ..Request::default()
    };
    // in process
    let mut inproc = Vec::new();
    for _ in 0..RUNS + 1 {
        let t = Instant::now();
        let files = checkout::working_tree(&dir, "policies").unwrap();
        let policy = Policy::load(&files, "policies").unwrap();
        let decls = decl::read(&files, &policy.sources);
        let g = request::generate(&policy, &files, &decls, &req).expect("generated");
        assert_eq!(g.name, "client-zeta");
        inproc.push(t.elapsed());
    }
    inproc.remove(0); // warm-up
    // the binary, start to exit, as an engineer runs it
    let bin = env!("CARGO_BIN_EXE_orgvend");
    let mut wall = Vec::new();
    for _ in 0..RUNS + 1 {
        let t = Instant::now();
        let out = Command::new(bin)
            .args([
                "new",
                "client",
                "zeta",
                "--owner",
                "data-team",
                "--tag",
                "client=zeta",
                "--dry-run",
                "--repo",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        wall.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wall.remove(0);
    let table = format!(
        "Machine: 2 cores, release build; a repository of {ACCOUNTS} client accounts ({:.1} MB of .tf in {} files), the shipped policy with its Rego rule. Median (min) of {RUNS} runs after one warm-up.\n\n| what | median | min |\n|---|---:|---:|\n| in process: read the checkout, the declarations, generate and check the new pair | {:.0} ms | {:.0} ms |\n| `orgvend new client zeta … --dry-run`, start to exit | {:.0} ms | {:.0} ms |\n",
        bytes as f64 / 1_000_000.0,
        ACCOUNTS / PER_FILE + 1,
        ms(median(&inproc)),
        ms(*inproc.iter().min().unwrap()),
        ms(median(&wall)),
        ms(*wall.iter().min().unwrap()),
    );
    print!("{table}");
    write_benchmarks(&table);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn generate(dir: &Path) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for name in ["orgvend.toml", "clients.rego"] {
        std::fs::copy(
            root.join("policies").join(name),
            dir.join("policies").join(name),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("variables.tf"),
        "variable \"root_account_id\" { default = \"123456789012\" }\nvariable \"tags\" {\n  default = {\n    owner = \"platform\"\n    cost-center = \"cc-1\"\n  }\n}\n",
    )
    .unwrap();
    let mut total = 0;
    for f in 0..ACCOUNTS / PER_FILE {
        let text: String = (f * PER_FILE..(f + 1) * PER_FILE).map(account).collect();
        total += text.len();
        std::fs::write(dir.join(format!("clients-{f:03}.tf")), text).unwrap();
    }
    total
}

fn account(i: usize) -> String {
    let name = format!("client-a{i:05}");
    let key = format!("subaccount_{}", name.replace('-', "_"));
    let (id, tags) = if i.is_multiple_of(2) {
        (
            format!("\"${{module.{key}.id}}\""),
            format!("\"${{merge(var.tags, map(\"client\", \"a{i:05}\"))}}\""),
        )
    } else {
        (
            format!("module.{key}.id"),
            format!("merge(var.tags, {{ client = \"a{i:05}\" }})"),
        )
    };
    format!(
        r#"### Client - a{i:05} ###
module "{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "{name}"
  email  = "aws+{name}@example.com"
}}

module "{key}_base" {{
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = {id}
  root_account_id = var.root_account_id
  account_alias   = "{name}"
  account_type    = "client"
  tags            = {tags}
}}

"#
    )
}

fn write_benchmarks(table: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = ("<!-- bench:new:start -->", "<!-- bench:new:end -->");
    if !text.contains(start) {
        text.push_str(&format!(
            "\n## `orgvend new` on 10,000 accounts (issue 15)\n\nCommand: `cargo bench --bench new` (rewrites the table below). Target: under 200 ms start to exit.\n\n{start}\n{end}\n"
        ));
    }
    let (a, b) = (text.find(start).unwrap(), text.find(end).unwrap());
    let updated = format!("{}{start}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(&path, updated).unwrap();
    eprintln!("wrote {}", path.display());
}
