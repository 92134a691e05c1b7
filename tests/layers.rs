//! The layout holds its design: `core/` imports only `core/` and does no I/O, `serve/` never
//! imports `bot/`, no two files of `src/` import each other in a circle, and no file of
//! `src/` is over 600 lines. Read from the sources themselves: every `crate::` and `super::`
//! path (in `use` trees and inline) is resolved to the file that defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// What `core/` may not name outside its tests: I/O, async runtimes, clocks, the environment.
const IMPURE: &[&str] = &[
    "std::fs",
    "std::env",
    "std::net",
    "std::process",
    "SystemTime",
    "Instant::now",
    "tokio",
    "reqwest",
    "axum",
    "rusqlite",
    "tokio_postgres",
    "aws_sdk",
];

/// One source file: its path under `src/`, its module path, its lines without comments.
struct Source {
    rel: String,
    module: Vec<String>,
    lines: Vec<String>,
    /// The first line of an inline module (`mod tests {`): `super` goes one level further.
    inline_from: usize,
    /// The first line of `#[cfg(test)]` code, where the purity rule stops.
    test_from: usize,
}

/// A path named in a file, at a line.
struct Named {
    line: usize,
    path: Vec<String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn sources() -> Vec<Source> {
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| !p.ends_with("main.rs"))
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap();
            let lines: Vec<String> = text.lines().map(strip_comment).collect();
            let inline_from = lines
                .iter()
                .position(|l| {
                    let t = l.trim_start();
                    let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
                    t.starts_with("mod ") && t.trim_end().ends_with('{')
                })
                .unwrap_or(lines.len());
            let test_from = lines
                .iter()
                .position(|l| l.trim() == "#[cfg(test)]")
                .unwrap_or(lines.len());
            Source {
                module: module_of(&rel),
                rel,
                lines,
                inline_from,
                test_from,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(rel: &str) -> Vec<String> {
    let no_ext = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = no_ext.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The line without a `//` comment (a `//` inside a string may cut a string short: paths are
/// not written in strings).
fn strip_comment(line: &str) -> String {
    match line.find("//") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        return vec![path.to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.to_string()
            } else {
                format!("{prefix}::{p}")
            }
        })
        .collect()
}

/// Every `crate::…` and `super::…` path a file names, resolved to a module path.
fn named(s: &Source) -> Vec<Named> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.lines.len() {
        let line = s.lines[i].trim();
        let is_use = line.starts_with("use ") || line.starts_with("pub use ");
        if is_use && (line.contains("crate::") || line.contains("super::")) {
            // a use statement, to its `;`
            let start = i;
            let mut stmt = String::new();
            loop {
                stmt.push_str(&s.lines[i]);
                stmt.push(' ');
                if s.lines[i].contains(';') || i + 1 == s.lines.len() {
                    break;
                }
                i += 1;
            }
            let tree = stmt
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("use ")
                .trim_end()
                .trim_end_matches(';');
            for p in expand(tree) {
                if let Some(path) = resolve(s, &p, start) {
                    out.push(Named { line: start, path });
                }
            }
        } else {
            for start in ["crate::", "super::"] {
                let mut from = 0;
                while let Some(k) = s.lines[i][from..].find(start) {
                    let at = from + k;
                    from = at + start.len();
                    if at > 0 && is_ident(s.lines[i][..at].chars().last().unwrap()) {
                        continue;
                    }
                    let end = s.lines[i][at..]
                        .find(|c: char| !(is_ident(c) || c == ':'))
                        .map(|e| at + e)
                        .unwrap_or(s.lines[i].len());
                    if let Some(path) = resolve(s, &s.lines[i][at..end], i) {
                        out.push(Named { line: i, path });
                    }
                }
            }
        }
        i += 1;
    }
    out
}

/// `crate::a::b` or `super::x` (from line `at` of `s`) as a module path from the crate root.
fn resolve(s: &Source, path: &str, at: usize) -> Option<Vec<String>> {
    let segs: Vec<&str> = path
        .split("::")
        .filter(|x| !x.is_empty() && *x != "*")
        .collect();
    match segs.first() {
        Some(&"crate") => Some(segs[1..].iter().map(|x| x.to_string()).collect()),
        Some(&"super") => {
            let mut base = s.module.clone();
            // inside an inline module, the first `super` is the file itself
            let mut supers = segs.iter().take_while(|x| **x == "super").count();
            if at >= s.inline_from {
                supers -= 1;
            }
            for _ in 0..supers {
                base.pop()?;
            }
            base.extend(
                segs.iter()
                    .skip_while(|x| **x == "super")
                    .map(|x| x.to_string()),
            );
            Some(base)
        }
        _ => None,
    }
}

/// The file that defines the longest prefix of a module path.
fn file_of(path: &[String], files: &BTreeSet<String>) -> Option<String> {
    (0..=path.len()).rev().find_map(|n| {
        let p = path[..n].join("/");
        let candidates = if n == 0 {
            vec!["lib.rs".to_string()]
        } else {
            vec![format!("{p}.rs"), format!("{p}/mod.rs")]
        };
        candidates.into_iter().find(|c| files.contains(c))
    })
}

fn floor(rel: &str) -> &str {
    rel.split('/').next().unwrap_or("")
}

#[test]
fn the_floors_hold() {
    let sources = sources();
    assert!(sources.len() > 40, "src/ was not read");
    let files: BTreeSet<String> = sources.iter().map(|s| s.rel.clone()).collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for s in &sources {
        for n in named(s) {
            let target = n.path.first().map(String::as_str).unwrap_or("");
            let at = format!("src/{}:{}", s.rel, n.line + 1);
            let line = s.lines[n.line].trim();
            if floor(&s.rel) == "core" && target != "core" {
                problems.push(format!(
                    "{at}: core/ imports `{}` outside core/: {line}",
                    n.path.join("::")
                ));
            }
            if floor(&s.rel) == "serve" && target == "bot" {
                problems.push(format!("{at}: serve/ imports bot/: {line}"));
            }
            if let Some(to) = file_of(&n.path, &files)
                && to != s.rel
            {
                edges
                    .entry(s.rel.clone())
                    .or_default()
                    .entry(to)
                    .or_insert(n.line + 1);
            }
        }
        if floor(&s.rel) == "core" {
            for (i, l) in s.lines[..s.test_from].iter().enumerate() {
                if let Some(bad) = IMPURE.iter().find(|w| l.contains(*w)) {
                    problems.push(format!(
                        "src/{}:{}: core/ must not do I/O or read time ({bad}): {}",
                        s.rel,
                        i + 1,
                        l.trim()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    // the rules are seen at all: core/ names core/, bot/ names serve/
    assert!(edges["core/report.rs"].contains_key("core/plan/mod.rs"));
    assert!(edges["bot/dispatch.rs"].contains_key("serve/worker.rs"));
    if let Some(cycle) = find_cycle(&edges) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("src/{}:{} → src/{}", w[0], edges[&w[0]][&w[1]], w[1]))
            .collect();
        panic!("an import circle:\n{}", steps.join("\n"));
    }
}

/// A circle of imports, as the files along it (the first repeated at the end).
fn find_cycle(edges: &BTreeMap<String, BTreeMap<String, usize>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeMap<String, usize>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        let next: Vec<&String> = edges.get(n).map(|m| m.keys().collect()).unwrap_or_default();
        for to in next {
            match marks.get(to.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|s| s == to).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(to.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(to, edges, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in edges.keys() {
        if marks.get(n).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(n, edges, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_file_is_over_600_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.lines.len() > MAX_LINES)
        .map(|s| format!("src/{}: {} lines", s.rel, s.lines.len()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The checker itself: a use tree expands, `super` resolves, a circle is found.
#[test]
fn the_checker_sees_what_it_checks() {
    assert_eq!(
        expand("crate::core::{plan::{self, Step}, policy::Policy}"),
        [
            "crate::core::plan",
            "crate::core::plan::Step",
            "crate::core::policy::Policy"
        ]
    );
    let s = Source {
        rel: "bot/apply/steps/iam.rs".into(),
        module: module_of("bot/apply/steps/iam.rs"),
        lines: vec!["use super::super::context::RunCtx;".into()],
        inline_from: 1,
        test_from: 1,
    };
    let n = named(&s);
    assert_eq!(n[0].path, ["bot", "apply", "context", "RunCtx"]);
    let files: BTreeSet<String> = ["bot/apply/context.rs".to_string()].into();
    assert_eq!(
        file_of(&n[0].path, &files).as_deref(),
        Some("bot/apply/context.rs")
    );
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into(), 1);
    edges.entry("b".into()).or_default().insert("c".into(), 2);
    assert!(find_cycle(&edges).is_none());
    edges.entry("c".into()).or_default().insert("a".into(), 3);
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
}
