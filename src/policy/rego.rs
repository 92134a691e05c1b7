//! Custom rules: `policies/*.rego`, evaluated with regorus in the conftest style: every
//! message of a package's `deny` set is a violation. The input document is described in
//! `docs/policy.md` ("Custom rules"); [`input`] builds it.
//!
//! A `deny` entry is a string, or an object `{"msg": ..., "module": ..., "fix": ...}` that
//! points the violation at a module. A rule that fails to evaluate is itself a violation:
//! a broken custom rule must not let an MR through.

use super::{CheckInput, Policy, PolicyError, Violation};
use crate::model::SourceFile;
use regorus::Engine;
use serde::Serialize;
use serde_json::{Value as Json, json};
use std::collections::HashMap;

/// One compiled package with a `deny` rule.
#[derive(Debug, Clone)]
pub struct Module {
    pub path: String,
    /// `data.<package>`.
    pub package: String,
    engine: Engine,
}

pub(super) fn compile(files: &[&SourceFile]) -> Result<Vec<Module>, PolicyError> {
    let mut engine = Engine::new();
    let mut modules = Vec::new();
    for f in files {
        // Rego v1 (OPA 1.0, current conftest) first; older v0 policies still load.
        let package = match engine.add_policy(f.path.clone(), f.text.clone()) {
            Ok(p) => p,
            Err(v1_error) => {
                engine.set_rego_v0(true);
                let v0 = engine.add_policy(f.path.clone(), f.text.clone());
                engine.set_rego_v0(false);
                v0.map_err(|_| PolicyError {
                    at: None,
                    message: format!("{}: {}", f.path, first_line(&v1_error.to_string())),
                })?
            }
        };
        let declares_deny = engine
            .has_declared_rule_rooted_at(&f.path, "deny")
            .unwrap_or(false);
        if declares_deny && !modules.iter().any(|m: &Module| m.package == package) {
            modules.push(Module {
                path: f.path.clone(),
                package,
                engine: Engine::new(),
            });
        }
    }
    for m in &mut modules {
        m.engine = engine.clone();
    }
    Ok(modules)
}

fn first_line(s: &str) -> String {
    s.lines()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

/// The input document custom rules see.
pub fn input(input: &CheckInput) -> Json {
    #[derive(Serialize)]
    struct AccountIn<'a> {
        key: &'a str,
        base_key: Option<&'a str>,
        name: Option<&'a str>,
        email: Option<&'a str>,
        alias: Option<&'a str>,
        account_type: Option<&'a str>,
        role_name: Option<&'a str>,
        tags: Option<std::collections::BTreeMap<String, String>>,
        file: &'a str,
        line: u32,
    }
    let head = input.head;
    let accounts: Vec<AccountIn> = head
        .accounts
        .iter()
        .map(|a| AccountIn {
            key: &a.key,
            base_key: a.base_key.as_deref(),
            name: a.name(),
            email: a.email(),
            alias: a.alias(),
            account_type: a.account_type(),
            role_name: a.role_name(),
            tags: a.tags(),
            file: &a.at.file,
            line: a.at.line,
        })
        .collect();
    let modules: Vec<Json> = head
        .modules
        .iter()
        .map(|m| {
            json!({
                "key": m.key,
                "kind": m.kind,
                "source": m.source.as_ref().map(|s| &s.address),
                "ref": m.source.as_ref().and_then(|s| s.reference.as_ref()),
                "file": &*m.at.file,
                "line": m.at.line,
                "attributes": m.attrs.iter().map(|(k, f)| (k.clone(), serde_json::to_value(&f.value).unwrap_or(Json::Null))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    json!({
        "accounts": accounts,
        "modules": modules,
        "changes": input.plan.changes,
        "mr": input.mr,
    })
}

pub(super) fn check_rego(policy: &Policy, input: &CheckInput, out: &mut Vec<Violation>) {
    if policy.rego.is_empty() {
        return;
    }
    let doc = input_value(input);
    let modules: HashMap<&str, &crate::decl::Module> = input
        .head
        .modules
        .iter()
        .map(|m| (m.key.as_str(), m))
        .collect();
    for m in &policy.rego {
        let rule = format!("rego.{}", m.package.trim_start_matches("data."));
        let result = match &doc {
            Ok(doc) => {
                let mut engine = m.engine.clone();
                engine.set_input(doc.clone());
                engine
                    .eval_rule(format!("{}.deny", m.package))
                    .and_then(|v| v.to_json_str())
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        let denied = match result {
            Ok(text) => serde_json::from_str::<Json>(&text).unwrap_or(Json::Null),
            Err(e) => {
                out.push(Violation {
                    rule: rule.clone(),
                    severity: super::Severity::Error,
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
            let at = module
                .as_deref()
                .and_then(|k| modules.get(k))
                .map(|m| m.at.clone());
            out.push(Violation {
                rule: rule.clone(),
                severity: super::Severity::Error,
                module,
                at,
                message,
                fix: fix.unwrap_or_else(|| format!("see the custom rule in {}", m.path)),
            });
        }
    }
}

fn input_value(input: &CheckInput) -> anyhow::Result<regorus::Value> {
    let text = serde_json::to_string(&self::input(input))?;
    regorus::Value::from_json_str(&text)
}
