//! Custom rules evaluated: every message of a package's `deny` set is a violation, in the
//! conftest style. The input document is described in `docs/policy.md` ("Custom rules");
//! [`input`] builds it.
//!
//! A `deny` entry is a string, or an object `{"msg": ..., "module": ..., "fix": ...}` that
//! points the violation at a module. A rule that fails to evaluate is itself a violation:
//! a broken custom rule must not let an MR through.

use super::{CheckInput, MrFacts, Severity, Violation};
use crate::core::decl::{Account, Module};
use crate::core::model::Loc;
use crate::core::plan::Change;
use crate::core::policy::Policy;
use crate::core::policy::rego::{Needs, first_line};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

type Rv = regorus::Value;

/// Strings the input repeats (keys, file names, types): made once, shared by reference count.
#[derive(Default)]
struct Interned(RefCell<HashMap<String, Rv>>);

impl Interned {
    fn get(&self, s: &str) -> Rv {
        if let Some(v) = self.0.borrow().get(s) {
            return v.clone();
        }
        let v = Rv::from(s);
        self.0.borrow_mut().insert(s.to_string(), v.clone());
        v
    }

    fn obj<'a>(&self, entries: impl IntoIterator<Item = (&'a str, Rv)>) -> Rv {
        Rv::from(
            entries
                .into_iter()
                .map(|(k, v)| (self.get(k), v))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    }
}

fn obj<'a>(entries: impl IntoIterator<Item = (&'a str, Rv)>) -> Rv {
    Rv::from(
        entries
            .into_iter()
            .map(|(k, v)| (Rv::from(k), v))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
}

fn opt(s: Option<&str>) -> Rv {
    s.map(Rv::from).unwrap_or(Rv::Null)
}

/// A declaration value as Rego sees it: plain JSON, module references as
/// `{"module_ref": "module.x.id"}`, unknown values as `{"unknown": "why"}`.
fn value(v: &crate::core::decl::Value) -> Rv {
    use crate::core::decl::Value as V;
    match v {
        V::Null => Rv::Null,
        V::Bool(b) => Rv::from(*b),
        V::Number(n) => n
            .parse::<i64>()
            .map(Rv::from)
            .or_else(|_| n.parse::<f64>().map(Rv::from))
            .unwrap_or_else(|_| Rv::from(n.as_str())),
        V::String(s) => Rv::from(s.as_str()),
        V::List(items) => Rv::from(items.iter().map(value).collect::<Vec<_>>()),
        V::Map(m) => obj(m.iter().map(|(k, v)| (k.as_str(), value(v)))),
        V::ModuleRef(r) => obj([("module_ref", Rv::from(r.to_string()))]),
        V::Unknown(why) => obj([("unknown", Rv::from(why.as_str()))]),
    }
}

/// The input document custom rules see (documented in docs/policy.md, "Custom rules"):
/// `accounts`, `modules`, `changes` and `mr`. Built as Rego values directly: a JSON round trip
/// of a 10,000-account repository costs more than all the built-in rules together.
pub fn input(input: &CheckInput, needs: Needs) -> Rv {
    let head = input.head;
    let part = Part {
        accounts: head.accounts.iter().collect(),
        modules: head.modules.iter().collect(),
        changes: input.plan.changes.iter().collect(),
    };
    document(&part, input.mr, needs)
}

/// What of the declarations and the plan one input document holds.
struct Part<'a> {
    accounts: Vec<&'a Account>,
    modules: Vec<&'a Module>,
    changes: Vec<&'a Change>,
}

/// The names of an account's fields in the input document, in the order the document builder
/// gives their values.
const ACCOUNT_FIELDS: [&str; 10] = [
    "key",
    "base_key",
    "name",
    "email",
    "alias",
    "account_type",
    "role_name",
    "tags",
    "file",
    "line",
];

/// The names of a module's fields, in the order the document builder gives their values.
const MODULE_FIELDS: [&str; 7] = ["key", "kind", "source", "ref", "file", "line", "attributes"];

/// An object of `names` (made once per document, shared by every object) and `values`, as
/// many of each.
fn record<const N: usize>(names: &[Rv; N], values: [Rv; N]) -> Rv {
    Rv::from(
        names
            .iter()
            .cloned()
            .zip(values)
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
}

/// The file's name as a Rego string, made once for a run of objects from the same file.
#[derive(Default)]
struct Files(RefCell<Option<(Arc<str>, Rv)>>);

impl Files {
    fn get(&self, file: &Arc<str>) -> Rv {
        let mut last = self.0.borrow_mut();
        match &*last {
            Some((f, v)) if Arc::ptr_eq(f, file) => v.clone(),
            _ => {
                let v = Rv::from(&**file);
                *last = Some((file.clone(), v.clone()));
                v
            }
        }
    }
}

fn document(part: &Part, mr: Option<&MrFacts>, needs: Needs) -> Rv {
    // Names and the few values that repeat (types, tag keys) are made once and shared; a
    // name's hash is never computed per object.
    let i = Interned::default();
    let files = Files::default();
    let (account_names, module_names) = (ACCOUNT_FIELDS.map(Rv::from), MODULE_FIELDS.map(Rv::from));
    let accounts = part.accounts.iter().map(|a| {
        record(
            &account_names,
            [
                Rv::from(a.key.as_str()),
                opt(a.base_key.as_deref()),
                opt(a.name()),
                opt(a.email()),
                opt(a.alias()),
                a.account_type().map(|t| i.get(t)).unwrap_or(Rv::Null),
                a.role_name().map(|r| i.get(r)).unwrap_or(Rv::Null),
                a.tags()
                    .map(|t| i.obj(t.iter().map(|&(k, v)| (k, Rv::from(v)))))
                    .unwrap_or(Rv::Null),
                files.get(&a.at.file),
                Rv::from(a.at.line),
            ],
        )
    });
    let modules = part.modules.iter().map(|m| {
        let kind = match m.kind {
            crate::core::decl::ModuleKind::Account => "account",
            crate::core::decl::ModuleKind::Base => "base",
            crate::core::decl::ModuleKind::Other => "other",
        };
        record(
            &module_names,
            [
                Rv::from(m.key.as_str()),
                i.get(kind),
                m.source
                    .as_ref()
                    .map(|s| i.get(&s.address))
                    .unwrap_or(Rv::Null),
                m.source
                    .as_ref()
                    .and_then(|s| s.reference.as_deref())
                    .map(|r| i.get(r))
                    .unwrap_or(Rv::Null),
                files.get(&m.at.file),
                Rv::from(m.at.line),
                i.obj(m.attrs.iter().map(|(k, f)| (k.as_str(), value(&f.value)))),
            ],
        )
    });
    let changes = part.changes.iter().map(|c| {
        let action = match c.action {
            crate::core::plan::Action::Create => "create",
            crate::core::plan::Action::Update => "update",
            crate::core::plan::Action::Close => "close",
        };
        let fields = c.fields.iter().map(|f| {
            obj([
                ("field", Rv::from(f.field.as_str())),
                ("before", value(&f.before)),
                ("after", value(&f.after)),
            ])
        });
        obj([
            ("action", Rv::from(action)),
            ("key", Rv::from(c.key.as_str())),
            ("name", Rv::from(c.name.as_str())),
            ("account_type", opt(c.account_type.as_deref())),
            ("file", Rv::from(&*c.at.file)),
            ("line", Rv::from(c.at.line)),
            ("fields", Rv::from(fields.collect::<Vec<_>>())),
        ])
    });
    let mr = match mr {
        None => Rv::Null,
        Some(mr) => obj([
            ("project", Rv::from(mr.project.as_str())),
            ("iid", Rv::from(mr.iid)),
            ("author", Rv::from(mr.author.as_str())),
            (
                "requested_by",
                mr.requested_by.as_deref().map(Rv::from).unwrap_or(Rv::Null),
            ),
            ("title", Rv::from(mr.title.as_str())),
            ("source_branch", Rv::from(mr.source_branch.as_str())),
            ("target_branch", Rv::from(mr.target_branch.as_str())),
            (
                "labels",
                Rv::from(
                    mr.labels
                        .iter()
                        .map(|l| Rv::from(l.as_str()))
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "approved_by",
                Rv::from(
                    mr.approved_by
                        .iter()
                        .map(|u| Rv::from(u.as_str()))
                        .collect::<Vec<_>>(),
                ),
            ),
        ]),
    };
    let mut doc = vec![("mr", mr)];
    if needs.accounts {
        doc.push(("accounts", Rv::from(accounts.collect::<Vec<_>>())));
    }
    if needs.modules {
        doc.push(("modules", Rv::from(modules.collect::<Vec<_>>())));
    }
    if needs.changes {
        doc.push(("changes", Rv::from(changes.collect::<Vec<_>>())));
    }
    obj(doc)
}

pub(super) fn check_rego(policy: &Policy, input: &CheckInput, out: &mut Vec<Violation>) {
    if policy.rego.is_empty() {
        return;
    }
    let needs = policy
        .rego
        .iter()
        .fold(Needs::default(), |n, m| n.union(m.needs));
    // Rules that judge each account on their own are evaluated on runs of accounts, on every
    // core: each run's document is built, judged and dropped in turn.
    let parts = match policy.rego_per_account {
        true => per_account(input),
        false => vec![Part {
            accounts: input.head.accounts.iter().collect(),
            modules: input.head.modules.iter().collect(),
            changes: input.plan.changes.iter().collect(),
        }],
    };
    // where a denied module is, looked up only when something is denied
    let modules: OnceLock<HashMap<&str, &Module>> = OnceLock::new();
    let at = |key: &str| {
        modules
            .get_or_init(|| {
                input
                    .head
                    .modules
                    .iter()
                    .map(|m| (m.key.as_str(), m))
                    .collect()
            })
            .get(key)
            .map(|m| m.at.clone())
    };
    let found: Vec<Vec<Violation>> = crate::core::par::map(&parts, 2, |part| {
        let doc = document(part, input.mr, needs);
        let mut out = Vec::new();
        evaluate(policy, &doc, &at, &mut out);
        out
    });
    out.extend(found.into_iter().flatten());
}

/// The accounts in runs of [`RUN`], each with its modules and its change; modules of no
/// account and closes (whose account the head no longer has) go with the first.
fn per_account<'a>(input: &CheckInput<'a>) -> Vec<Part<'a>> {
    // Each run's document is built, judged and dropped before the next: runs of 250 accounts
    // made less fresh memory than runs of 1,000, and the text check a little faster
    // (BENCHMARKS.md, fifth round); runs of 100 were no better than 250.
    const RUN: usize = 250;
    let head = input.head;
    let runs = head.accounts.len().div_ceil(RUN).max(1);
    let mut parts: Vec<Part> = (0..runs)
        .map(|_| Part {
            accounts: Vec::new(),
            modules: Vec::new(),
            changes: Vec::new(),
        })
        .collect();
    let mut owner = vec![0; head.modules.len()];
    for (i, a) in head.accounts.iter().enumerate() {
        parts[i / RUN].accounts.push(a);
        owner[a.module] = i / RUN;
        if let Some(b) = a.base {
            owner[b] = i / RUN;
        }
    }
    for (m, run) in head.modules.iter().zip(owner) {
        parts[run].modules.push(m);
    }
    for c in &input.plan.changes {
        parts[c.head.map_or(0, |h| h / RUN)].changes.push(c);
    }
    parts
}

/// Every rule's `deny` on one input document; `at` finds a denied module.
fn evaluate(
    policy: &Policy,
    doc: &Rv,
    at: &(dyn Fn(&str) -> Option<Loc> + Sync),
    out: &mut Vec<Violation>,
) {
    for m in &policy.rego {
        let rule = format!("rego.{}", m.package.trim_start_matches("data."));
        let mut engine = m.engine.clone();
        engine.set_input(doc.clone());
        let result = engine
            .eval_rule(format!("{}.deny", m.package))
            .and_then(|v| v.to_json_str());
        let denied = match result {
            Ok(text) => serde_json::from_str::<Json>(&text).unwrap_or(Json::Null),
            Err(e) => {
                out.push(Violation {
                    rule: rule.clone(),
                    severity: Severity::Error,
                    module: None,
                    at: None,
                    message: format!(
                        "custom rule `{}.deny` in {} failed: {}",
                        m.package,
                        m.path,
                        first_line(&e.to_string())
                    ),
                    fix: format!("fix {} in the target branch's policy", m.path),
                });
                continue;
            }
        };
        let entries = match denied {
            Json::Array(items) => items,
            Json::Null => Vec::new(),
            Json::String(s) if s == "<undefined>" => Vec::new(),
            other => vec![other],
        };
        for entry in entries {
            let (message, module, fix) = match &entry {
                Json::String(s) => (s.clone(), None, None),
                Json::Object(o) => (
                    o.get("msg")
                        .and_then(Json::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| entry.to_string()),
                    o.get("module").and_then(Json::as_str).map(str::to_string),
                    o.get("fix").and_then(Json::as_str).map(str::to_string),
                ),
                other => (other.to_string(), None, None),
            };
            let at = module.as_deref().and_then(at);
            out.push(Violation {
                rule: rule.clone(),
                severity: Severity::Error,
                module,
                at,
                message,
                fix: fix.unwrap_or_else(|| format!("see the custom rule in {}", m.path)),
            });
        }
    }
}
