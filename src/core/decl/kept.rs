//! What a read keeps for reading another checkout a few files apart (an MR's head against its
//! target head): every Terraform file's text and where its modules are, and each directory's
//! variables, locals and tfvars. [`changed_files`] then reads only the files whose text
//! differs.

use super::eval::Env;
use super::parse::{FileFacts, FileKind, file_kind};
use super::{Declarations, Module, ModuleSources, dir_env, dir_of, evaluate, has_env, parse_one};
use crate::core::model::SourceFile;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

/// Filled by the reader as it goes ([`super::read_with`]).
#[derive(Default)]
pub(super) struct Layout {
    /// Per file: the indices of its modules in the declarations, and whether it gives its
    /// directory variables, locals or tfvars values.
    files: HashMap<String, (Range<usize>, bool)>,
    /// Per directory, in path order: the files that give it variables, locals or tfvars.
    dirs: HashMap<String, Vec<(String, FileKind, FileFacts)>>,
}

impl Layout {
    pub(super) fn file(&mut self, path: &str, modules: Range<usize>, env: bool) {
        self.files.insert(path.to_string(), (modules, env));
    }

    pub(super) fn env(&mut self, dir: &str, path: &str, kind: FileKind, facts: FileFacts) {
        self.dirs
            .entry(dir.to_string())
            .or_default()
            .push((path.to_string(), kind, facts));
    }
}

/// A checkout as read: its Terraform files and where each one's modules are in the
/// declarations read with it.
pub struct Reading {
    texts: HashMap<String, Arc<str>>,
    layout: Layout,
    /// Whether every file parsed (otherwise nothing can be read against this one).
    parsed: bool,
}

/// Reads the declarations as [`super::read`] does, keeping the files and what a later read of
/// a checkout a few files apart needs ([`changed_files`]).
pub fn read_kept(files: Vec<SourceFile>, sources: &ModuleSources) -> (Declarations, Reading) {
    let mut layout = Layout::default();
    let decls = super::read_with(&files, sources, Some(&mut layout));
    let texts = files
        .into_iter()
        .filter(|f| file_kind(&f.path).is_some())
        .map(|f| (f.path, f.text))
        .collect();
    let parsed = decls.parse_errors.is_empty();
    (
        decls,
        Reading {
            texts,
            layout,
            parsed,
        },
    )
}

/// A Terraform file whose text differs between a read checkout and another.
#[derive(Debug)]
pub struct ChangedFile {
    pub path: String,
    /// The indices of its modules in the read checkout's declarations (none for a new file).
    pub before: Range<usize>,
    /// Its modules in the other checkout, evaluated as [`super::read`] would (none for a
    /// file that is gone), in the order written.
    pub after: Vec<Module>,
}

/// The Terraform files of `files` whose text differs from the reading's, sorted by path.
/// `None` when a difference reaches beyond the file's own modules, and the checkout must be
/// read whole: a variable, a local or a tfvars value changes (every module of the directory
/// is evaluated with them), or a file does not parse (the whole read reports where).
/// `sources` must be those the reading was read under.
pub fn changed_files(
    reading: &Reading,
    files: &[SourceFile],
    sources: &ModuleSources,
) -> Option<Vec<ChangedFile>> {
    if !reading.parsed {
        return None;
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut changed: Vec<(&str, Option<&Arc<str>>)> = Vec::new();
    for f in files {
        if file_kind(&f.path).is_none() {
            continue;
        }
        if !seen.insert(&f.path) {
            return None; // a path given twice: the whole read decides
        }
        if reading.texts.get(&f.path) != Some(&f.text) {
            changed.push((&f.path, Some(&f.text)));
        }
    }
    for path in reading.texts.keys() {
        if !seen.contains(path.as_str()) {
            changed.push((path, None));
        }
    }
    changed.sort();
    // as the whole read counts them: the Terraform files of each directory
    let bytes = super::dir_bytes(files.iter().filter(|f| file_kind(&f.path).is_some()));
    let mut out = Vec::with_capacity(changed.len());
    // each directory's values made once, for every file read again in it (made again for
    // each, a 10,000-entry local map was evaluated once per new file)
    let mut envs: HashMap<&str, Env> = HashMap::new();
    for (path, text) in changed {
        let kind = file_kind(path)?;
        let before = match reading.layout.files.get(path) {
            Some((_, true)) => return None,
            Some((modules, false)) => modules.clone(),
            None => 0..0,
        };
        let after = match text {
            None => Vec::new(),
            Some(text) => {
                let facts = parse_one(path, text, kind).ok()?;
                if has_env(kind, &facts) {
                    return None;
                }
                let dir = dir_of(path);
                let env = envs.entry(dir).or_insert_with(|| {
                    let files: Vec<(&str, FileKind, &FileFacts)> = reading
                        .layout
                        .dirs
                        .get(dir)
                        .map(|files| files.iter().map(|(p, k, f)| (p.as_str(), *k, f)).collect())
                        .unwrap_or_default();
                    dir_env(&files, bytes.get(dir).copied().unwrap_or(0))
                });
                let mut modules = Vec::new();
                evaluate(env, facts.modules, sources, &mut modules);
                modules
            }
        };
        out.push(ChangedFile {
            path: path.to_string(),
            before,
            after,
        });
    }
    Some(out)
}

/// Declarations of the given modules, in the order given, paired (a part of a checkout).
pub fn from_modules(modules: Vec<Module>) -> Declarations {
    let mut decls = Declarations {
        modules,
        ..Declarations::default()
    };
    super::pair(&mut decls);
    decls
}
