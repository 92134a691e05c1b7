//! `orgvend check` at scale: generated repositories of 1,000, 10,000 and 50,000 accounts in
//! each style the reader accepts, the `orgvend` binary timed start to exit in every output
//! format with its peak memory; the in-process MR review (a base and a head one account
//! apart); and, in the same run, how long HashiCorp's HCL parser (`@cdktf/hcl2json` from
//! npm, Go compiled to WebAssembly) takes merely to parse the same files.
//!
//! Run with `cargo bench --bench check` (or `scripts/bench`): it builds nothing itself, so
//! `cargo build --release` first; it installs `@cdktf/hcl2json` into `target/bench-node`
//! with npm when missing. The figures are written to BENCHMARKS.md between the
//! `bench:check` markers.
//!
//! Each in-process measurement runs in a child process of this binary, so its peak memory is
//! its own.

#[path = "check/stress.rs"]
mod stress;

use mimalloc::MiMalloc as System;
use orgvend::cli::checkout;
use orgvend::core::decl;
use orgvend::core::incremental::{self, ChangeInput, Known};
use orgvend::core::model::SourceFile;
use orgvend::core::policy::Policy;
use orgvend::core::render;
use orgvend::core::report::{self, AssessInput};
use std::alloc::{GlobalAlloc, Layout};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live and peak heap bytes, over mimalloc as the `orgvend` binary uses.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new) };
        if !q.is_null() {
            if new > layout.size() {
                let live =
                    LIVE.fetch_add(new - layout.size(), Ordering::Relaxed) + new - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SIZES: [usize; 3] = [1_000, 10_000, 50_000];
const PER_FILE: usize = 500;
const RUNS: usize = 7;
const FORMATS: [&str; 3] = ["text", "markdown", "json"];
const HCL2JSON: &str = "@cdktf/hcl2json@0.21.0";

/// The ways a subaccounts repository is written that the benchmark generates.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    /// Terraform 0.11: every reference interpolated, tags as
    /// `"${ merge(var.tags, map("client", "c00001")) }"`, client accounts only.
    Interpolated,
    /// Half 0.11 interpolation, half HCL2 (`merge(var.tags, { … })`), three account types.
    Mixed,
    /// HCL2 only: locals, multi-line objects inside `merge(…)`, comments.
    Hcl2,
    /// HCL2, a file for each account, names and emails read from one local map of every
    /// account (`local.clients.c00001.name`), and a heredoc in each account's block.
    PerAccount,
    /// HCL2 with what the fast reader hands to hcl-edit expression by expression: an
    /// escaped quote, a conditional, a `/* */` comment mid-line in every account.
    Expressions,
    /// HCL2, every account in one file (`main.tf`, 6 MB at 10,000 accounts).
    OneFile,
}

impl Style {
    fn name(self) -> &'static str {
        match self {
            Style::Interpolated => "0.11 interpolation, merge/map per account",
            Style::Mixed => "half 0.11, half HCL2, three types",
            Style::Hcl2 => "HCL2, locals, multi-line objects",
            Style::PerAccount => "a file per account, a local map of names, heredocs",
            Style::Expressions => "HCL2, an escape, a conditional, a comment mid-line",
            Style::OneFile => "HCL2, every account in one file",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Style::Interpolated => "interp",
            Style::Mixed => "mixed",
            Style::Hcl2 => "hcl2",
            Style::PerAccount => "files",
            Style::Expressions => "exprs",
            Style::OneFile => "onefile",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target/bench-repos");
    let bin = root.join("target/release/orgvend");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first (scripts/bench does)",
        bin.display()
    );
    let node = hcl2json(&root);
    let all_sizes = std::env::var("BENCH_HCL2JSON_ALL").is_ok_and(|v| v == "1");

    // the scale: the 0.11 style at every size, every format
    let mut scale = Vec::new();
    for &n in &SIZES {
        let base = out_dir.join(format!("interp-{n}"));
        let head = out_dir.join(format!("interp-{n}-mr"));
        let bytes = generate(&base, n, Style::Interpolated, false);
        generate(&head, n, Style::Interpolated, true);
        let formats: Vec<Run> = FORMATS.iter().map(|f| binary(&bin, &base, f)).collect();
        let (b, h) = (base.to_str().unwrap(), head.to_str().unwrap());
        let mr = (
            measure(&["mr", "part", b, h]),
            measure(&["mr", "whole", b, h]),
        );
        let go = (n <= 10_000 || all_sizes).then(|| hcl2json_parse(&node, &base));
        eprintln!("{n}: {formats:?} mr {mr:?} hcl2json {go:?}");
        scale.push((n, bytes, formats, mr, go));
    }
    // every style at 10,000
    let mut styles = Vec::new();
    for style in [
        Style::Interpolated,
        Style::Mixed,
        Style::Hcl2,
        Style::PerAccount,
        Style::Expressions,
        Style::OneFile,
    ] {
        let dir = out_dir.join(format!("{}-10000", style.slug()));
        let bytes = generate(&dir, 10_000, style, false);
        let text = binary(&bin, &dir, "text");
        let json = binary(&bin, &dir, "json");
        let go = hcl2json_parse(&node, &dir);
        eprintln!("{style:?}: text {text:?} json {json:?} hcl2json {go:?}");
        styles.push((style, bytes, text, json, go));
    }
    // shapes written to slow the reader
    let mut shapes = Vec::new();
    for (i, shape) in stress::SHAPES.iter().enumerate() {
        let dir = out_dir.join(format!("stress-{i}"));
        let bytes = stress::generate(&dir, shape);
        let run = run_binary(&bin, &dir, "text", false);
        eprintln!("{}: {run:?}", shape.name);
        shapes.push((shape.name, bytes, run));
    }
    let mut table = table(&scale, &styles);
    let _ = writeln!(
        table,
        "\nShapes a Developer could write into one MR to slow the reader (text; the exit code is the verdict's):\n\n| shape | size | time | peak RSS |\n|---|---:|---:|---:|"
    );
    for (name, bytes, run) in &shapes {
        let _ = writeln!(
            table,
            "| {name} | {} | {} | {} |",
            mb(*bytes),
            ms(run.median),
            mb(run.rss)
        );
    }
    println!("{table}");
    write_benchmarks(&table);
}

/// The `orgvend` binary, start to exit, as a user runs it: median and slowest wall time over
/// `RUNS` runs after one warm-up, and the largest peak RSS (GNU time).
#[derive(Debug, Clone, Copy)]
struct Run {
    median: Duration,
    max: Duration,
    rss: usize,
}

fn binary(bin: &Path, repo: &Path, format: &str) -> Run {
    run_binary(bin, repo, format, true)
}

/// [`binary`]; a repository that need not be clean must still give a verdict (exit 0 or 1),
/// never a crash.
fn run_binary(bin: &Path, repo: &Path, format: &str, clean: bool) -> Run {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "GNU time is needed: apt-get install time");
    let mut walls = Vec::new();
    let mut rss = 0;
    for run in 0..=RUNS {
        let start = Instant::now();
        let out = Command::new(time)
            .args(["-f", "%M"])
            .arg(bin)
            .args(["check", "--format", format, "--repo"])
            .arg(repo)
            .arg("--policy")
            .arg(root.join("policies"))
            .stdout(std::process::Stdio::null())
            .output()
            .expect("GNU time runs");
        let wall = start.elapsed();
        let verdicts: &[i32] = if clean { &[0] } else { &[0, 1] };
        assert!(
            out.status.code().is_some_and(|c| verdicts.contains(&c)),
            "{} gave {:?}: {}",
            repo.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let kb: usize = err
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if run > 0 {
            walls.push(wall);
            rss = rss.max(kb * 1024);
        }
    }
    walls.sort();
    Run {
        median: walls[walls.len() / 2],
        max: walls[walls.len() - 1],
        rss,
    }
}

/// Where `@cdktf/hcl2json` is installed (with npm, into target/bench-node, when missing).
fn hcl2json(root: &Path) -> PathBuf {
    let dir = root.join("target/bench-node");
    if !dir.join("node_modules/@cdktf/hcl2json").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(HCL2JSON)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "installing {HCL2JSON} with npm into {} failed: the comparison needs Node.js and npm (apt-get install nodejs npm)",
            dir.display()
        );
    }
    dir
}

/// Seconds HashiCorp's parser spends in `parse` over the repo's .tf files, one after the
/// other as orgvend's threads would (Node start-up and the WebAssembly load excluded).
fn hcl2json_parse(node: &Path, dir: &Path) -> Duration {
    let script = r#"
const { parse } = require(process.argv[1] + "/node_modules/@cdktf/hcl2json");
const fs = require("fs"), path = require("path");
(async () => {
  const dir = process.argv[2];
  const files = fs.readdirSync(dir).filter(f => f.endsWith(".tf")).sort()
    .map(f => [f, fs.readFileSync(path.join(dir, f), "utf8")]);
  await parse("warm-up.tf", "a = 1\n");
  const start = process.hrtime.bigint();
  let modules = 0;
  for (const [f, t] of files) modules += Object.keys((await parse(f, t)).module || {}).length;
  console.log(`${Number(process.hrtime.bigint() - start) / 1e9} ${modules}`);
})();
"#;
    let out = Command::new("node")
        .args(["-e", script])
        .arg(node)
        .arg(dir)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "hcl2json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap();
    let modules: usize = it.next().and_then(|s| s.parse().ok()).unwrap();
    assert!(modules > 0, "hcl2json read the modules");
    Duration::from_secs_f64(secs)
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    median: Duration,
    cpu: Duration,
    peak_heap: usize,
}

fn measure(args: &[&str]) -> Figures {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u128> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    Figures {
        median: Duration::from_nanos(nums[0] as u64),
        cpu: Duration::from_nanos(nums[1] as u64),
        peak_heap: nums[2] as usize,
    }
}

/// In the child, the review of an MR as `orgvend serve` makes it: what the service works out
/// once per target head (its declarations read, and for `part` what is known of it) is done
/// before timing; each timed run copies the head's files (as the service applies the diffs
/// to the base's), judges the head and renders the note: `part` on what the change reaches,
/// `whole` by reading and judging the whole head. One untimed run to warm up, then `RUNS`.
/// Prints: median_wall_ns median_cpu_ns peak_heap_bytes peak_rss_bytes.
fn child(args: &[String]) {
    assert_eq!(
        args[0], "mr",
        "the child reviews an MR: mr part|whole BASE HEAD"
    );
    let part = match args[1].as_str() {
        "part" => true,
        "whole" => false,
        other => panic!("part or whole, not {other}"),
    };
    let policy = policy();
    let head_files = files(&args[3]);
    let (base, reading) = decl::read_kept(files(&args[2]), &policy.sources);
    let base = Arc::new(base);
    let known = part.then(|| {
        Known::new(base.clone(), Arc::new(reading), &policy)
            .expect("the shipped policy's MRs are judged on their part")
    });
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut peak = 0;
    for run in 0..=RUNS {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let (start, cpu) = (Instant::now(), cpu_time());
        let out = one_review(&base, known.as_ref(), head_files.clone(), &policy);
        let (wall, cpu) = (start.elapsed(), cpu_time() - cpu);
        assert!(out > 0);
        if run > 0 {
            walls.push(wall);
            cpus.push(cpu);
            peak = peak.max(PEAK.load(Ordering::Relaxed));
        }
    }
    walls.sort();
    cpus.sort();
    println!(
        "{} {} {} {}",
        walls[walls.len() / 2].as_nanos(),
        cpus[cpus.len() / 2].as_nanos(),
        peak,
        peak_rss()
    );
}

/// CPU time of the whole process (every thread), as the kernel counts it.
fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec the call fills.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn policy() -> Policy {
    let policy_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    let policy_files: Vec<SourceFile> = std::fs::read_dir(policy_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            SourceFile::new(
                format!("policies/{name}"),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    Policy::load(&policy_files, "policies").unwrap()
}

fn files(dir: &str) -> Vec<SourceFile> {
    checkout::working_tree(Path::new(dir), "policies").unwrap()
}

/// Judges the head and renders the note, as the service does for one review: on the part the
/// change reaches when the base is known, else whole. Returns the note's size.
fn one_review(
    base: &decl::Declarations,
    known: Option<&Known>,
    head_files: Vec<SourceFile>,
    policy: &Policy,
) -> usize {
    let r = match known {
        Some(known) => incremental::assess_change(known, &head_files, ChangeInput::local(policy))
            .expect("an added account's file is judged on its part"),
        None => {
            let head = decl::read(&head_files, &policy.sources);
            report::assess(AssessInput::local(Some(base), &head, policy))
        }
    };
    assert!(
        r.violations.is_empty() && r.plan.changes.len() == 1,
        "the MR adds one clean account: {:?}",
        r.violations.first()
    );
    render::markdown::render(&r).len()
}

fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Writes a repo of `n` accounts in `style`, in files of 500; `plus_one` adds one more
/// account in its own file, as an MR would. Returns the bytes of the accounts' files.
fn generate(dir: &Path, n: usize, style: Style, plus_one: bool) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("variables.tf"),
        "variable \"root_account_id\" { default = \"123456789012\" }\nvariable \"tags\" {\n  default = {\n    owner = \"platform\"\n    cost-center = \"cc-1\"\n  }\n}\n\nlocals {\n  root_account_id = var.root_account_id\n  common_tags = {\n    owner       = \"platform\"\n    cost-center = \"cc-1\"\n  }\n}\n",
    )
    .unwrap();
    let mut total = 0;
    if style == Style::PerAccount {
        let clients: String = (0..n)
            .map(|i| format!("    c{i:05} = {{ name = \"client-c{i:05}\", email = \"aws+client-c{i:05}@example.com\" }}\n"))
            .collect();
        let locals = format!("locals {{\n  clients = {{\n{clients}  }}\n}}\n");
        total += locals.len();
        let mut variables = std::fs::read_to_string(dir.join("variables.tf")).unwrap();
        variables.push_str(&locals);
        std::fs::write(dir.join("variables.tf"), variables).unwrap();
        for i in 0..n {
            let text = account(i, style);
            total += text.len();
            std::fs::write(dir.join(format!("client-c{i:05}.tf")), text).unwrap();
        }
        return total;
    }
    if style == Style::OneFile {
        let text: String = (0..n).map(|i| account(i, style)).collect();
        std::fs::write(dir.join("main.tf"), &text).unwrap();
        return text.len();
    }
    for (f, chunk) in (0..n).collect::<Vec<_>>().chunks(PER_FILE).enumerate() {
        let text: String = chunk.iter().map(|&i| account(i, style)).collect();
        total += text.len();
        std::fs::write(dir.join(format!("accounts-{f:03}.tf")), text).unwrap();
    }
    if plus_one {
        std::fs::write(dir.join("new-account.tf"), account(n, style)).unwrap();
    }
    total
}

fn account(i: usize, style: Style) -> String {
    let (kind, prefix) = match (style, i % 10) {
        (Style::Mixed, 0) => ("management", "mgmt"),
        (Style::Mixed, 1 | 2) => ("internal", "internal"),
        _ => ("client", "client"),
    };
    let slug = format!("c{i:05}");
    let name = format!("{prefix}-{slug}");
    let key = format!("subaccount_{}", name.replace('-', "_"));
    let (id, root, tags) = match style {
        Style::Interpolated => (
            format!("\"${{module.{key}.id}}\""),
            "\"${var.root_account_id}\"".to_string(),
            format!("\"${{ merge(var.tags, map(\"client\", \"{slug}\")) }}\""),
        ),
        Style::Mixed if i.is_multiple_of(2) => (
            format!("\"${{module.{key}.id}}\""),
            "\"${var.root_account_id}\"".to_string(),
            format!("\"${{merge(var.tags, map(\"client\", \"{slug}\"))}}\""),
        ),
        Style::Mixed => (
            format!("module.{key}.id"),
            "var.root_account_id".to_string(),
            format!("merge(var.tags, {{ client = \"{slug}\" }})"),
        ),
        Style::Hcl2 | Style::PerAccount | Style::Expressions | Style::OneFile => (
            format!("module.{key}.id"),
            "local.root_account_id".to_string(),
            format!(
                "merge(local.common_tags, {{\n    client = \"{slug}\" # the client it serves\n  }})"
            ),
        ),
    };
    let (name_v, email_v, more) = match style {
        Style::PerAccount => (
            format!("local.clients.{slug}.name"),
            format!("local.clients[\"{slug}\"].email"),
            format!(
                "  description = <<-EOT\n    The account of client {slug}.\n    Requested in INFRA-{i}.\n  EOT\n"
            ),
        ),
        Style::Expressions => (
            format!("/* the name */ \"{name}\""),
            format!("\"aws+{name}@example.com\""),
            format!(
                "  description = \"Client \\\"{slug}\\\" (INFRA-{i})\"\n  enabled     = var.root_account_id != \"\" ? true : false\n"
            ),
        ),
        _ => (
            format!("\"{name}\""),
            format!("\"aws+{name}@example.com\""),
            String::new(),
        ),
    };
    format!(
        r#"### {kind} - {name} ###
module "{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = {name_v}
  email  = {email_v}
{more}}}

module "{key}_base" {{
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = {id}
  root_account_id = {root}
  account_alias   = "{name}"
  account_type    = "{kind}"
  tags            = {tags}
}}

"#
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mb(b: usize) -> String {
    format!("{:.1} MB", b as f64 / 1_000_000.0)
}

/// Accounts, bytes, the binary in each format, the review (on the part; whole), hcl2json.
type Scale = (usize, usize, Vec<Run>, (Figures, Figures), Option<Duration>);
type StyleRow = (Style, usize, Run, Run, Duration);

fn table(scale: &[Scale], styles: &[StyleRow]) -> String {
    let mut t = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let _ = writeln!(
        t,
        "Machine: {cores} cores, {cpu}. The `orgvend` binary (release build) start to exit, `check --repo DIR --format F` on a clean repository: median (and slowest) wall time of {RUNS} runs after one warm-up, largest peak RSS. hcl2json: HashiCorp's parser, `parse` alone over the same files.\n"
    );
    let _ = writeln!(t, "Style: {}.\n", Style::Interpolated.name());
    let _ = writeln!(
        t,
        "| accounts | .tf size | text | markdown | json | peak RSS (largest) | review of an MR adding one: on its part (median) | the same review judged whole | hcl2json parse only | orgvend text faster by |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, bytes, runs, (part, whole), go) in scale {
        let cell = |r: &Run| format!("{} ({})", ms(r.median), ms(r.max));
        let review = |f: &Figures| {
            format!(
                "{} wall, {} CPU, {} heap",
                ms(f.median),
                ms(f.cpu),
                mb(f.peak_heap)
            )
        };
        let rss = runs.iter().map(|r| r.rss).max().unwrap_or(0);
        let (go_text, ratio) = match go {
            Some(g) => (
                format!("{:.2} s", g.as_secs_f64()),
                format!("{:.0}×", g.as_secs_f64() / runs[0].median.as_secs_f64()),
            ),
            None => ("not run (BENCH_HCL2JSON_ALL=1)".into(), String::new()),
        };
        let _ = writeln!(
            t,
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {go_text} | {ratio} |",
            mb(*bytes),
            cell(&runs[0]),
            cell(&runs[1]),
            cell(&runs[2]),
            mb(rss),
            review(part),
            review(whole),
        );
    }
    if let [(n1, _, a, ..), .., (n2, _, b, ..)] = scale {
        let per = |r: &Run, n: &usize| r.median.as_secs_f64() / *n as f64 * 1e6;
        let _ = writeln!(
            t,
            "\nCost per account (text / json): {:.1} / {:.1} µs at {n1}, {:.1} / {:.1} µs at {n2} accounts.",
            per(&a[0], n1),
            per(&a[2], n1),
            per(&b[0], n2),
            per(&b[2], n2)
        );
    }
    let _ = writeln!(t, "\nEvery style at 10,000 accounts:\n");
    let _ = writeln!(
        t,
        "| style | .tf size | text | json | peak RSS (largest) | hcl2json parse only | orgvend text / json faster by |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|");
    for (style, bytes, text, json, go) in styles {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {:.2} s | {:.0}× / {:.0}× |",
            style.name(),
            mb(*bytes),
            ms(text.median),
            ms(json.median),
            mb(text.rss.max(json.rss)),
            go.as_secs_f64(),
            go.as_secs_f64() / text.median.as_secs_f64(),
            go.as_secs_f64() / json.median.as_secs_f64(),
        );
    }
    t
}

fn write_benchmarks(table: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = ("<!-- bench:check:start -->", "<!-- bench:check:end -->");
    let (Some(a), Some(b)) = (text.find(start), text.find(end)) else {
        eprintln!("BENCHMARKS.md has no {start} … {end} markers; not written");
        return;
    };
    let updated = format!("{}{start}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(&path, updated).unwrap();
    eprintln!("wrote {}", path.display());
}
