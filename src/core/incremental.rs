//! An MR's review in proportion to its change. Every MR into one target head is judged
//! against the same base; what is [`Known`] of that base (its declarations, its files, its
//! modules indexed by what relates them, its own violations) is worked out once. An MR is
//! then judged on the part of the repository its change can reach, and the rest of the
//! verdict is the base's.
//!
//! The part: the modules the MR removes, adds or changes, and, repeatedly, every module
//! related to one in the part, at the base or at the head, by what a rule or the plan
//! compares across modules: a module key (a base module's `account_id` names its account's),
//! a name, an email, an alias. Within the part the plan and every rule run as in a whole
//! check; outside it nothing changed, so neither did the plan (nothing) nor the violations
//! (the base's, each about one module). [`assess_change`] gives what [`report::assess`] gives
//! on the whole head; `tests` compares the two on randomized edits.

use crate::core::decl::Value;
use crate::core::decl::{self, ACCOUNT_ID, ALIAS, Declarations, EMAIL, Module, NAME, Reading};
use crate::core::model::SourceFile;
use crate::core::policy::Policy;
use crate::core::policy::rego::Needs;
pub use crate::core::report::ChangeInput;
use crate::core::report::{self, AssessInput, Report};
use crate::core::rules::{self, Violation};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// What is known of a target head under one policy: what every MR into it is judged against.
pub struct Known {
    base: Arc<Declarations>,
    reading: Arc<Reading>,
    /// Base modules (indices) by each of their [`links`].
    index: HashMap<String, Vec<usize>>,
    /// The base judged by itself: each violation names the module it is about.
    violations: Vec<Violation>,
}

impl Known {
    /// Judges the base (`reading` is what reading it kept, under `policy`'s module sources).
    /// `None` when MRs into it must be judged whole: its Terraform does not parse; the
    /// policy's custom rules may look across accounts (`[rego] per_account` is not set) or
    /// read the MR; or a violation of the base names no module of it.
    pub fn new(base: Arc<Declarations>, reading: Arc<Reading>, policy: &Policy) -> Option<Known> {
        if !base.parse_errors.is_empty() {
            return None;
        }
        let needs = policy
            .rego
            .iter()
            .fold(Needs::default(), |n, m| n.union(m.needs));
        if !policy.rego.is_empty() && (!policy.rego_per_account || needs.mr) {
            return None;
        }
        let report = report::assess(AssessInput::local(Some(&base), &base, policy));
        let keys: HashSet<&str> = base.modules.iter().map(|m| m.key.as_str()).collect();
        let placed = |v: &Violation| v.module.as_deref().is_some_and(|k| keys.contains(k));
        if !report.plan.changes.is_empty() || !report.violations.iter().all(placed) {
            return None;
        }
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, m) in base.modules.iter().enumerate() {
            for link in links(m) {
                index.entry(link).or_default().push(i);
            }
        }
        Some(Known {
            violations: report.violations,
            base,
            reading,
            index,
        })
    }
}

/// What relates a module to others in the rules and the plan: its key and the key its
/// `account_id` names; its name, email and alias, lowercased (a rule that compares them
/// exactly compares a subset).
fn links(m: &Module) -> Vec<String> {
    let mut out = vec![format!("k:{}", m.key)];
    if let Some(Value::ModuleRef(r)) = m.attr(ACCOUNT_ID).map(|f| &f.value) {
        out.push(format!("k:{}", r.module));
    }
    for (tag, attr) in [("n", NAME), ("e", EMAIL), ("a", ALIAS)] {
        if let Some(s) = m.attr(attr).and_then(|f| f.as_str()) {
            out.push(format!("{tag}:{}", s.to_lowercase()));
        }
    }
    out
}

/// Whether a module is unchanged: the same text at the same place, evaluated to the same
/// values (the values are compared too, so that nothing but what was read decides).
fn same(a: &Module, b: &Module) -> bool {
    a.text == b.text
        && a.at == b.at
        && a.key == b.key
        && a.kind == b.kind
        && a.source == b.source
        && a.attrs == b.attrs
}

/// Where a module comes in a whole read: directory, file, line, column.
fn place(m: &Module) -> (&str, &str, u32, u32) {
    let file = &*m.at.file;
    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    (dir, file, m.at.line, m.at.col)
}

/// Judges the head whose Terraform files are `files` against the known base, as
/// [`report::assess`] would judge the whole head; `None` when the change reaches beyond
/// its own modules ([`decl::changed_files`]) and the head must be read and judged whole.
pub fn assess_change(known: &Known, files: &[SourceFile], input: ChangeInput) -> Option<Report> {
    let base = &*known.base;
    let changed = decl::changed_files(&known.reading, files, &input.policy.sources)?;
    // a module at the same place, with the same text and values, is unchanged
    let mut removed: HashSet<usize> = HashSet::new();
    let mut added: Vec<Module> = Vec::new();
    for file in changed {
        let mut before: HashMap<(u32, u32), usize> = file
            .before
            .map(|i| ((base.modules[i].at.line, base.modules[i].at.col), i))
            .collect();
        for m in file.after {
            let at = (m.at.line, m.at.col);
            match before.get(&at) {
                Some(&i) if same(&base.modules[i], &m) => {
                    before.remove(&at);
                }
                _ => added.push(m),
            }
        }
        removed.extend(before.into_values());
    }

    // the part: what changed, and whatever a link reaches from it, at the base or the head
    let mut part: BTreeSet<usize> = removed.iter().copied().collect();
    let mut queue: Vec<String> = removed
        .iter()
        .flat_map(|&i| links(&base.modules[i]))
        .chain(added.iter().flat_map(links))
        .collect();
    let mut followed: HashSet<String> = HashSet::new();
    while let Some(link) = queue.pop() {
        if followed.contains(&link) {
            continue;
        }
        for &i in known.index.get(&link).into_iter().flatten() {
            if part.insert(i) {
                queue.extend(links(&base.modules[i]));
            }
        }
        followed.insert(link);
    }

    let keys: HashSet<&str> = part
        .iter()
        .map(|&i| base.modules[i].key.as_str())
        .chain(added.iter().map(|m| m.key.as_str()))
        .collect();
    let kept: Vec<Violation> = known
        .violations
        .iter()
        .filter(|v| !v.module.as_deref().is_some_and(|k| keys.contains(k)))
        .cloned()
        .collect();
    let mut head: Vec<Module> = part
        .iter()
        .filter(|i| !removed.contains(i))
        .map(|&i| base.modules[i].clone())
        .chain(added)
        .collect();
    head.sort_by(|a, b| place(a).cmp(&place(b)));
    let head = decl::from_modules(head);
    let base = decl::from_modules(part.iter().map(|&i| base.modules[i].clone()).collect());
    let mut report = report::assess(input.with(Some(&base), &head));
    report.violations.extend(kept);
    rules::settle(&mut report.violations);
    report.conclude();
    Some(report)
}

#[cfg(test)]
mod tests;
