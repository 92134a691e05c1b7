//! Reading a checkout: every file parsed on every core, each directory's values (variables,
//! locals, tfvars) first, then every other file parsed and evaluated at once, each module
//! block evaluated as soon as the fast path has read it: a 10,000-account repository never
//! holds the lowered form of a whole file, let alone of every file (fresh memory is the
//! largest cost of a large read).

use super::eval::Env;
use super::kept::Layout;
use super::parse::{FileFacts, FileKind, RawModule};
use super::{Declarations, Module, ModuleSources, ParseError, Value, fast, module, pair, parse};
use crate::core::model::SourceFile;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "read_parts.rs"]
mod parts;

/// [`super::read`], and when `keep` is given, what a later read a few files apart needs
/// there: each file's modules, and each directory's variables, locals and tfvars.
pub(super) fn read_with(
    files: &[SourceFile],
    sources: &ModuleSources,
    keep: Option<&mut Layout>,
) -> Declarations {
    let mut wanted: Vec<(&SourceFile, FileKind)> = files
        .iter()
        .filter_map(|f| parse::file_kind(&f.path).map(|k| (f, k)))
        .collect();
    wanted.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let read = match read_phased(&wanted, sources, false) {
        Some(read) => read,
        // a file read late gave values after all: every file is read with the values
        None => read_phased(&wanted, sources, true).expect("every file read first"),
    };
    let count = read
        .dirs
        .values()
        .flatten()
        .flat_map(|f| &f.modules)
        .map(Vec::len)
        .sum();
    let mut decls = Declarations {
        modules: Vec::with_capacity(count),
        parse_errors: read.errors,
        ..Declarations::default()
    };
    let mut keep = keep;
    for (dir, files) in read.dirs {
        for file in files {
            if let Some(keep) = keep.as_deref_mut() {
                let at = decls.modules.len();
                let len: usize = file.modules.iter().map(Vec::len).sum();
                keep.file(file.path, at..at + len, file.values.is_some());
                if let Some((kind, facts)) = file.values {
                    keep.env(dir, file.path, kind, facts);
                }
            }
            for run in file.modules {
                decls.modules.extend(run);
            }
        }
    }
    pair(&mut decls);
    decls
}

/// One file read: its modules evaluated (in runs, one for each part of a large file), and what
/// values it gives its directory.
struct FileRead<'f> {
    path: &'f str,
    modules: Vec<Vec<Module>>,
    values: Option<(FileKind, FileFacts)>,
}

struct Phased<'f> {
    /// By directory, each file in path order.
    dirs: BTreeMap<&'f str, Vec<FileRead<'f>>>,
    errors: Vec<ParseError>,
}

/// Files that may give their directory values: tfvars, and configuration that mentions
/// `variable` or `locals` (a superset of those that declare one).
fn may_give_values(f: &SourceFile, kind: FileKind) -> bool {
    kind != FileKind::Config || f.text.contains("variable") || f.text.contains("locals")
}

/// Reads the files that may give values first (all of them when `all_first`), then parses
/// and evaluates each other file at once. `None` when a file read late gives values.
fn read_phased<'f>(
    wanted: &[(&'f SourceFile, FileKind)],
    sources: &ModuleSources,
    all_first: bool,
) -> Option<Phased<'f>> {
    let (first, late): (Vec<_>, Vec<_>) = wanted
        .iter()
        .copied()
        .partition(|(f, k)| all_first || may_give_values(f, *k));
    let mut errors: Vec<(&str, ParseError)> = Vec::new();
    let mut values: BTreeMap<&str, Vec<(&str, FileKind, FileFacts)>> = BTreeMap::new();
    let first_read = parse_all(
        &first,
        |(f, _)| f.text.len(),
        |&(f, k)| parse_one(&f.path, &f.text, k),
    );
    for ((f, k), r) in first.iter().zip(first_read) {
        match r {
            Ok(facts) => values
                .entry(dir_of(&f.path))
                .or_default()
                .push((&f.path, *k, facts)),
            Err(e) => errors.push((&f.path, e)),
        }
    }
    let mut raw: BTreeMap<&str, Vec<RawModule>> = BTreeMap::new();
    for files in values.values_mut() {
        for (path, _, facts) in files.iter_mut() {
            raw.insert(path, std::mem::take(&mut facts.modules));
        }
    }
    // every directory its own values and budget, those that give none too (one budget
    // shared by all of them was spent by any, and did not grow with their size)
    let bytes = dir_bytes(wanted.iter().map(|(f, _)| *f));
    let envs: BTreeMap<&str, Env> = bytes
        .iter()
        .map(|(dir, bytes)| {
            let refs: Vec<(&str, FileKind, &FileFacts)> = values
                .get(dir)
                .map(|files| files.iter().map(|(p, k, f)| (*p, *k, f)).collect())
                .unwrap_or_default();
            (*dir, dir_env(&refs, *bytes))
        })
        .collect();
    let env_of = |path: &str| &envs[dir_of(path)];

    // every other file: parsed and evaluated at once, on every core, each module as it is
    // read, a large file in parts
    let late_read = parts::read_late(&late, &env_of, sources, parts::PART);
    let mut dirs: BTreeMap<&str, Vec<FileRead>> = BTreeMap::new();
    for ((f, _), r) in late.iter().zip(late_read) {
        match r {
            Ok(Some(modules)) => dirs.entry(dir_of(&f.path)).or_default().push(FileRead {
                path: &f.path,
                modules,
                values: None,
            }),
            Ok(None) => return None,
            Err(e) => errors.push((&f.path, e)),
        }
    }
    // the files read first: their modules with their directory's values
    for (path, modules) in raw {
        let mut out = Vec::new();
        evaluate(env_of(path), modules, sources, &mut out);
        dirs.entry(dir_of(path)).or_default().push(FileRead {
            path,
            modules: vec![out],
            values: None,
        });
    }
    drop(envs);
    // each file's values, found by path (a directory of thousands of files that each
    // declare a variable was otherwise looked through once for each)
    let mut given: HashMap<&str, (FileKind, FileFacts)> = values
        .into_values()
        .flatten()
        .filter(|(_, kind, facts)| has_env(*kind, facts))
        .map(|(path, kind, facts)| (path, (kind, facts)))
        .collect();
    for file in dirs.values_mut().flatten() {
        if let Some(v) = given.remove(file.path) {
            file.values = Some(v);
        }
    }
    for files in dirs.values_mut() {
        files.sort_by(|a, b| a.path.cmp(b.path));
    }
    errors.sort_by(|a, b| a.0.cmp(b.0));
    Some(Phased {
        dirs,
        errors: errors.into_iter().map(|(_, e)| e).collect(),
    })
}

/// How many of a file's lines begin with `module`: about how many module blocks it has, to
/// size its vector of modules once. Grown by doubling, the vectors of a 10,000-account
/// repository took 8 MB of fresh memory (each a few hundred KB, copied at each doubling),
/// and the kernel zeroing it was a tenth of a JSON check's time (perf). A line counted that
/// is no block, or a block indented, only makes the estimate a little off.
pub(super) fn module_lines(text: &str) -> usize {
    let b = text.as_bytes();
    usize::from(b.starts_with(b"module")) + memchr::memmem::find_iter(b, b"\nmodule").count()
}

/// Whether a file gives its directory variables, locals or tfvars values (what every module
/// of the directory is evaluated with).
pub(super) fn has_env(kind: FileKind, facts: &FileFacts) -> bool {
    kind != FileKind::Config
        || !facts.variables.is_empty()
        || !facts.locals.is_empty()
        || !facts.assignments.is_empty()
}

/// `parse` of every file (or part of one, of `size` bytes) on every core, the results in the
/// files' order: files parse independently, and parsing is most of the cost.
pub(super) fn parse_all<T: Sync, R: Send>(
    files: &[T],
    size: impl Fn(&T) -> usize,
    parse: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let parse = &parse;
    let total: usize = files.iter().map(size).sum();
    let threads = crate::core::par::cores().min(files.len());
    if threads <= 1 || total < 256 * 1024 {
        return files.iter().map(parse).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = files.get(i) else { break };
            out.push((i, parse(file)));
        }
        out
    };
    // the calling thread parses too
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut out = work();
        for w in workers {
            out.extend(w.join().expect("a parser thread panicked"));
        }
        out
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// One file: the fast path first; hcl-edit for whatever it leaves, and for every syntax error.
pub(super) fn parse_one(
    path: &str,
    text: &Arc<str>,
    kind: FileKind,
) -> Result<FileFacts, ParseError> {
    let mut modules = Vec::new();
    let mut facts = parse_one_into(path, text, kind, &mut modules, |m| m)?;
    facts.modules = modules;
    Ok(facts)
}

/// [`parse_one`], each module block made into `T` by `each` and added to `out` as soon as it
/// is read rather than kept in the facts (which come back without modules): the fast path
/// never holds a file's lowered form whole. Nothing is added on an error.
pub(super) fn parse_one_into<T>(
    path: &str,
    text: &Arc<str>,
    kind: FileKind,
    out: &mut Vec<T>,
    each: impl Fn(RawModule) -> T,
) -> Result<FileFacts, ParseError> {
    let start = out.len();
    if kind != FileKind::TfvarsJson {
        let fast = fast::parse_each(
            &Arc::from(path),
            text,
            super::parse::bom(text),
            kind,
            &mut |m| out.push(each(m)),
        );
        match fast {
            Some(facts) => return Ok(facts),
            // what the fast path gave before it gave up is read again by hcl-edit
            None => out.truncate(start),
        }
    }
    let mut facts = parse::parse_file(path, text, kind)?;
    out.extend(std::mem::take(&mut facts.modules).into_iter().map(each));
    Ok(facts)
}

pub(super) fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// The bytes of each directory's files (what its evaluation's budget is made from).
pub(super) fn dir_bytes<'f>(
    files: impl Iterator<Item = &'f SourceFile>,
) -> HashMap<&'f str, usize> {
    let mut bytes = HashMap::new();
    for f in files {
        *bytes.entry(dir_of(&f.path)).or_default() += f.text.len();
    }
    bytes
}

/// The values a directory's modules are evaluated with: the variable defaults, tfvars and
/// locals `files` give, the directory being of `bytes` of files in all.
pub(super) fn dir_env<'a>(files: &[(&str, FileKind, &'a FileFacts)], bytes: usize) -> Env<'a> {
    let literal = Env::empty();
    let mut vars: HashMap<String, Value> = HashMap::new();
    let mut declared: HashMap<&str, ()> = HashMap::new();
    for (_, _, facts) in files {
        for (name, default, _) in &facts.variables {
            if declared.insert(name, ()).is_none()
                && let Some(d) = default
            {
                vars.insert(name.clone(), literal.eval(d));
            }
        }
    }
    // Terraform's order: terraform.tfvars, terraform.tfvars.json, then *.auto.tfvars(.json)
    // in lexical order; later files win.
    let mut tfvars: Vec<&(&str, FileKind, &FileFacts)> = files
        .iter()
        .filter(|(_, k, _)| *k != FileKind::Config)
        .collect();
    tfvars.sort_by_key(|(path, _, _)| {
        let name = path.rsplit('/').next().unwrap_or(path);
        let rank = match name {
            "terraform.tfvars" => 0,
            "terraform.tfvars.json" => 1,
            _ => 2,
        };
        (rank, name.to_string())
    });
    for (_, _, facts) in tfvars {
        for a in &facts.assignments {
            if declared.contains_key(a.name.as_str()) {
                vars.insert(a.name.clone(), literal.eval(&a.expr));
            }
        }
    }
    let mut locals = HashMap::new();
    for (_, _, facts) in files {
        for a in &facts.locals {
            locals.entry(a.name.clone()).or_insert(&a.expr);
        }
    }
    let mut env = Env::new(vars, locals).budget_for(bytes);
    env.declare(declared.keys().map(|k| k.to_string()));
    env.settled()
}

/// Modules evaluated with `env`, on every core for many.
pub(super) fn evaluate(
    env: &Env,
    raw: Vec<RawModule>,
    sources: &ModuleSources,
    out: &mut Vec<Module>,
) {
    out.extend(crate::core::par::chunks(raw, 2_000, |chunk| {
        let env = env.fork();
        chunk
            .into_iter()
            .map(|m| module(&env, m, sources))
            .collect()
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_given_before_the_fast_path_gives_up_are_read_again_by_hcl_edit() {
        let text: Arc<str> = "module \"a\" {\n  source = \"x\"\n}\n\nmodule \"b\" {\n  name = concat(var.x...)\n}\n\nmodule \"c\" {\n  source = \"y\"\n}\n".into();
        // the fast path reads `a`, then gives up on the expanded argument
        let mut given = Vec::new();
        let fast = fast::parse_each(
            &Arc::from("main.tf"),
            &text,
            0,
            FileKind::Config,
            &mut |m| given.push(m.key),
        );
        assert!(fast.is_none());
        assert_eq!(given, ["a"]);

        let mut out = vec!["before".to_string()];
        let facts =
            parse_one_into("main.tf", &text, FileKind::Config, &mut out, |m| m.key).unwrap();
        assert_eq!(out, ["before", "a", "b", "c"]);
        assert!(facts.modules.is_empty());
        let whole = parse_one("main.tf", &text, FileKind::Config).unwrap();
        let keys: Vec<String> = whole.modules.into_iter().map(|m| m.key).collect();
        assert_eq!(keys, out[1..]);
    }

    #[test]
    fn a_file_in_error_adds_no_module() {
        let text: Arc<str> = "module \"a\" {\n  source = \"x\"\n}\n\nmodule \"b\" {\n".into();
        let mut out = Vec::new();
        assert!(parse_one_into("main.tf", &text, FileKind::Config, &mut out, |m| m.key).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn a_file_is_sized_for_the_lines_that_begin_a_module() {
        let text =
            "module \"a\" {\n  x = module.b.id\n}\n# module\n  module \"c\" {}\nmodule \"d\" {}\n";
        assert_eq!(module_lines(text), 2);
        assert_eq!(module_lines(""), 0);
        assert_eq!(module_lines("locals {}\n"), 0);
    }
}
