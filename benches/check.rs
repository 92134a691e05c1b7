//! `orgvend check` at scale: generated repositories of 1,000, 10,000 and 50,000 accounts,
//! timed for read + check + plan + render, with peak memory; and, in the same run, how long
//! python-hcl2 takes merely to parse the same files.
//!
//! Run with `scripts/bench` (it installs python-hcl2 into .venv); the figures are written to
//! BENCHMARKS.md between the `bench:check` markers.
//!
//! Each measurement runs in a child process of this binary, so its peak memory is its own.

use mimalloc::MiMalloc as System;
use orgvend::cli::checkout;
use orgvend::core::decl;
use orgvend::core::model::SourceFile;
use orgvend::core::policy::Policy;
use orgvend::core::render;
use orgvend::core::report::{self, AssessInput};
use std::alloc::{GlobalAlloc, Layout};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-repos");
    let python = python();
    let py_all = std::env::var("BENCH_PY_ALL").is_ok_and(|v| v == "1");
    let mut rows = Vec::new();
    for &n in &SIZES {
        let base = out_dir.join(format!("accounts-{n}"));
        let head = out_dir.join(format!("accounts-{n}-mr"));
        let bytes = generate(&base, n, false);
        generate(&head, n, true);
        let new = measure(&["new", base.to_str().unwrap()]);
        let mr = measure(&["mr", base.to_str().unwrap(), head.to_str().unwrap()]);
        let py = if n <= 10_000 || py_all {
            Some(python_parse(&python, &base))
        } else {
            None
        };
        eprintln!("{n}: new {new:?} mr {mr:?} python {py:?}");
        rows.push((n, bytes, new, mr, py));
    }
    let mut table = table(&rows);
    table.push_str(&binary_runs(&out_dir.join("accounts-10000")));
    println!("{table}");
    write_benchmarks(&table);
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    median: Duration,
    min: Duration,
    peak_heap: usize,
    peak_rss: usize,
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
        min: Duration::from_nanos(nums[1] as u64),
        peak_heap: nums[2] as usize,
        peak_rss: nums[3] as usize,
    }
}

/// In the child: one untimed run to warm the page cache, then `RUNS` timed runs.
/// Prints: median_ns min_ns peak_heap_bytes peak_rss_bytes.
fn child(args: &[String]) {
    let policy_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut times = Vec::new();
    let mut peak = 0;
    for run in 0..=RUNS {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let start = Instant::now();
        let out = one_check(args, &policy_dir);
        let took = start.elapsed();
        assert!(out > 0);
        if run > 0 {
            times.push(took);
            peak = peak.max(PEAK.load(Ordering::Relaxed));
        }
    }
    times.sort();
    println!(
        "{} {} {} {}",
        times[times.len() / 2].as_nanos(),
        times[0].as_nanos(),
        peak,
        peak_rss()
    );
}

/// Read + check + plan + render, as `orgvend check` does. Returns the rendered size.
fn one_check(args: &[String], policy_dir: &Path) -> usize {
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
    let policy = Policy::load(&policy_files, "policies").unwrap();
    let read = |dir: &str| {
        decl::read(
            &checkout::working_tree(Path::new(dir), "policies").unwrap(),
            &policy.sources,
        )
    };
    let (base, head) = match args[0].as_str() {
        "new" => (None, read(&args[1])),
        "mr" => (Some(read(&args[1])), read(&args[2])),
        other => panic!("unknown mode {other}"),
    };
    let r = report::assess(AssessInput {
        policy_changed: &[],
        proposed_policy: None,
        base: base.as_ref(),
        head: &head,
        policy: &policy,
        mr: None,
        approvals: None,
        head_label: None,
    });
    assert!(
        r.violations.is_empty(),
        "generated repos are clean: {:?}",
        &r.violations[..1]
    );
    render::markdown::render(&r).len() + render::text::render(&r).len()
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

/// Writes a repo of `n` accounts (two interpolation styles, three types) in files of 500;
/// `plus_one` adds one more account in its own file, as an MR would. Returns the bytes.
fn generate(dir: &Path, n: usize, plus_one: bool) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("variables.tf"),
        "variable \"root_account_id\" { default = \"123456789012\" }\nvariable \"tags\" {\n  default = {\n    owner = \"platform\"\n    cost-center = \"cc-1\"\n  }\n}\n",
    )
    .unwrap();
    let mut total = 0;
    for (f, chunk) in (0..n).collect::<Vec<_>>().chunks(PER_FILE).enumerate() {
        let text: String = chunk.iter().map(|&i| account(i)).collect();
        total += text.len();
        std::fs::write(dir.join(format!("accounts-{f:03}.tf")), text).unwrap();
    }
    if plus_one {
        std::fs::write(dir.join("new-account.tf"), account(n)).unwrap();
    }
    total
}

fn account(i: usize) -> String {
    let (kind, prefix) = match i % 10 {
        0 => ("management", "mgmt"),
        1 | 2 => ("internal", "internal"),
        _ => ("client", "client"),
    };
    let name = format!("{prefix}-a{i}");
    let key = format!("subaccount_{}", name.replace('-', "_"));
    let (id, root, tags) = if i.is_multiple_of(2) {
        (
            format!("\"${{module.{key}.id}}\""),
            "\"${var.root_account_id}\"".to_string(),
            format!("\"${{merge(var.tags, map(\"client\", \"a{i}\"))}}\""),
        )
    } else {
        (
            format!("module.{key}.id"),
            "var.root_account_id".to_string(),
            format!("merge(var.tags, {{ client = \"a{i}\" }})"),
        )
    };
    format!(
        r#"### {kind} - {name} ###
module "{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "{name}"
  email  = "aws+{name}@example.com"
}}

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

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let py = if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let ok = Command::new(&py)
        .args(["-c", "import hcl2"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python-hcl2 is not installed for {}: run scripts/bench, which installs it into .venv",
        py.display()
    );
    py
}

/// Seconds python-hcl2 spends in `hcl2.load` over the repo's .tf files (interpreter start-up
/// and imports excluded).
fn python_parse(python: &Path, dir: &Path) -> Duration {
    let script = r#"
import glob, sys, time, hcl2
files = sorted(glob.glob(sys.argv[1] + "/*.tf"))
start = time.perf_counter()
for f in files:
    with open(f) as fh:
        hcl2.load(fh)
print(time.perf_counter() - start)
"#;
    let out = Command::new(python)
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python-hcl2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_secs_f64(secs)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mb(b: usize) -> String {
    format!("{:.1} MB", b as f64 / 1_000_000.0)
}

type Row = (usize, usize, Figures, Figures, Option<Duration>);

fn table(rows: &[Row]) -> String {
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
        "Machine: {cores} cores, {cpu}. Median of {RUNS} runs after one warm-up, release build.\n"
    );
    let _ = writeln!(
        t,
        "| accounts | .tf size | check, all new (median / min) | peak heap | peak RSS | MR adding one (median) | peak heap | python-hcl2 parse only | orgvend faster by |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, bytes, new, mr, py) in rows {
        let (py_text, ratio) = match py {
            Some(p) => (
                format!("{:.2} s", p.as_secs_f64()),
                format!("{:.0}×", p.as_secs_f64() / new.median.as_secs_f64()),
            ),
            None => ("not run (BENCH_PY_ALL=1)".into(), "".into()),
        };
        let _ = writeln!(
            t,
            "| {n} | {} | {} / {} | {} | {} | {} | {} | {py_text} | {ratio} |",
            mb(*bytes),
            ms(new.median),
            ms(new.min),
            mb(new.peak_heap),
            mb(new.peak_rss),
            ms(mr.median),
            mb(mr.peak_heap),
        );
    }
    if let [(n1, _, a, ..), .., (n2, _, b, ..)] = rows {
        let per1 = a.median.as_secs_f64() / *n1 as f64 * 1e6;
        let per2 = b.median.as_secs_f64() / *n2 as f64 * 1e6;
        let _ = writeln!(
            t,
            "\nCost per account: {per1:.1} µs at {n1}, {per2:.1} µs at {n2} accounts."
        );
    }
    t
}

/// The `orgvend` binary itself on 10,000 accounts, as a user runs it: wall time and max RSS
/// from GNU time over five runs (scripts/bench builds the binary first).
fn binary_runs(repo: &Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/orgvend");
    if !bin.exists() || !Path::new("/usr/bin/time").exists() {
        return "\n(`orgvend` binary not measured: run scripts/bench, which builds it; needs GNU time)\n".into();
    }
    let mut runs: Vec<(f64, u64)> = (0..5)
        .map(|_| {
            let out = Command::new("/usr/bin/time")
                .args(["-f", "%e %M"])
                .arg(&bin)
                .args(["check", "--repo"])
                .arg(repo)
                .arg("--policy")
                .arg(root.join("policies"))
                .stdout(std::process::Stdio::null())
                .output()
                .expect("GNU time runs");
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or_default().to_string();
            let mut it = last.split_whitespace();
            let secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
            let kb: u64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            (secs, kb)
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (secs, _) = runs[runs.len() / 2];
    let max_kb = runs.iter().map(|r| r.1).max().unwrap_or(0);
    format!(
        "\nThe `orgvend check --repo <10,000 accounts>` binary, start to exit (text output): median {:.0} ms wall, max RSS {:.1} MB over 5 runs (GNU time).\n",
        secs * 1000.0,
        max_kb as f64 * 1024.0 / 1_000_000.0
    )
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
