//! Policy: the rules an MR is judged by, read from `policies/` of the target branch.
//!
//! `orgvend.toml` parameterises the built-in rules (one file each below); `*.rego` files add
//! custom rules in the conftest style. [`check`] is a pure function of the declarations, the
//! plan and the MR facts.

mod approvals;
mod aws;
mod changes;
mod config;
mod email;
mod naming;
mod pairing;
mod rego;
mod sources;
mod tags;
mod unique;
mod values;

pub use approvals::{ApprovalRequirement, requirement};
pub use config::CHANGEABLE_FIELDS;

use crate::decl::{Declarations, ModuleSources};
use crate::model::{Loc, SourceFile};
use crate::plan::Plan;
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The policy file's name inside the policy directory.
pub const POLICY_FILE: &str = "orgvend.toml";

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Path of the policy file, for messages.
    pub file: String,
    pub sources: ModuleSources,
    pub account_id_output: String,
    pub require_ref: bool,
    pub ref_pattern: Option<Regex>,
    pub allowed_sources: Vec<String>,
    pub email_domains: Vec<String>,
    pub email_pattern: Option<Regex>,
    pub email_template: Option<String>,
    pub alias_equals_name: bool,
    pub immutable: Vec<String>,
    pub allow_close: bool,
    pub close_approvals: Option<u32>,
    pub approval_group: String,
    pub reset_on_push: bool,
    pub types: BTreeMap<String, TypeRules>,
    pub baseline: Baseline,
    pub repository: Repository,
    pub rego: Vec<rego::Module>,
}

#[derive(Debug, Clone)]
pub struct TypeRules {
    pub description: String,
    pub name_pattern: Option<Regex>,
    pub alias_pattern: Option<Regex>,
    pub ou: String,
    pub required_tags: Vec<String>,
    pub approvals: u32,
}

/// What every new account gets inside it.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub role_name: String,
    pub saml_provider: String,
    pub permissions_boundary: String,
    pub roles: Vec<BaselineRole>,
    /// Bucket name template: `{alias}`, `{name}`, `{account_id}`.
    pub state_bucket: String,
    pub lock_table: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineRole {
    pub name: String,
    pub policy_arn: String,
    /// Whether the role carries the permissions boundary.
    pub bounded: bool,
}

/// Where each new account's GitLab project goes.
#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    /// Group path.
    pub namespace: String,
    /// Project path template: `{alias}`, `{name}`.
    pub path: String,
    /// Whether each account gets keyless CI (an OIDC provider and the two roles below).
    pub keyless_ci: bool,
    /// Role the project's pipelines assume to plan (read only).
    pub plan_role: String,
    /// Role only the project's protected master assumes to apply.
    pub apply_role: String,
}

impl Policy {
    /// Reads `dir/orgvend.toml` and `dir/*.rego` from the given files.
    pub fn load(files: &[SourceFile], dir: &str) -> Result<Policy, PolicyError> {
        let dir = dir.trim_end_matches('/');
        let in_dir = |path: &str| -> Option<String> {
            let rest = if dir.is_empty() || dir == "." {
                path
            } else {
                path.strip_prefix(dir)?.strip_prefix('/')?
            };
            (!rest.contains('/')).then(|| rest.to_string())
        };
        let toml_file = files
            .iter()
            .find(|f| in_dir(&f.path).as_deref() == Some(POLICY_FILE))
            .ok_or_else(|| PolicyError {
                at: None,
                message: format!(
                    "no policy: {} not found",
                    if dir.is_empty() {
                        POLICY_FILE.to_string()
                    } else {
                        format!("{dir}/{POLICY_FILE}")
                    }
                ),
            })?;
        let mut policy = config::parse(&toml_file.path, &toml_file.text)?;
        let mut rego_files: Vec<&SourceFile> = files
            .iter()
            .filter(|f| in_dir(&f.path).is_some_and(|n| n.ends_with(".rego")))
            .collect();
        rego_files.sort_by(|a, b| a.path.cmp(&b.path));
        policy.rego = rego::compile(&rego_files)?;
        Ok(policy)
    }

    /// The rules of an account type, if the type is known.
    pub fn type_rules(&self, account_type: &str) -> Option<&TypeRules> {
        self.types.get(account_type)
    }
}

/// A policy that cannot be used, with where it went wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyError {
    pub at: Option<Loc>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}:{}:{}: {}", at.file, at.line, at.col, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks the merge.
    Error,
    /// Shown prominently, does not block (a permitted but destructive change).
    Warning,
}

/// One broken rule: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Stable rule id, e.g. `aws.email` or `rego.main`.
    pub rule: String,
    pub severity: Severity,
    /// The module the violation is about.
    pub module: Option<String>,
    pub at: Option<Loc>,
    pub message: String,
    pub fix: String,
}

impl Violation {
    pub fn error(rule: &str, at: &Loc, module: &str, message: String, fix: String) -> Violation {
        Violation {
            rule: rule.to_string(),
            severity: Severity::Error,
            module: Some(module.to_string()),
            at: Some(at.clone()),
            message,
            fix,
        }
    }

    pub fn warning(self) -> Violation {
        Violation {
            severity: Severity::Warning,
            ..self
        }
    }
}

/// Facts about the MR that custom rules may use (absent for a local `orgvend check`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MrFacts {
    pub project: String,
    pub iid: u64,
    pub author: String,
    pub title: String,
    pub source_branch: String,
    pub target_branch: String,
    pub labels: Vec<String>,
    /// Usernames whose approvals count (Infrastructure members, not the author).
    pub approved_by: Vec<String>,
}

pub struct CheckInput<'a> {
    pub head: &'a Declarations,
    pub base: Option<&'a Declarations>,
    pub plan: &'a Plan,
    pub mr: Option<&'a MrFacts>,
}

/// Runs every rule. The result is ordered by file, line and rule, so notes are stable.
pub fn check(policy: &Policy, input: &CheckInput) -> Vec<Violation> {
    // Custom rules run beside the built-in ones: on a large repository each takes about as long.
    let mut out = std::thread::scope(|s| {
        let custom = (!policy.rego.is_empty()).then(|| {
            s.spawn(|| {
                let mut out = Vec::new();
                rego::check_rego(policy, input, &mut out);
                out
            })
        });
        let mut out = builtin(policy, input);
        if let Some(custom) = custom {
            out.extend(custom.join().expect("the Rego thread panicked"));
        }
        out
    });
    out.sort_by(|a, b| {
        (a.severity, &a.at, &a.rule, &a.message).cmp(&(b.severity, &b.at, &b.rule, &b.message))
    });
    out.dedup();
    out
}

fn builtin(policy: &Policy, input: &CheckInput) -> Vec<Violation> {
    let head = input.head;
    let mut out = Vec::new();
    values::check_values(policy, head, &mut out);
    aws::check_aws_limits(head, &mut out);
    naming::check_naming(policy, head, &mut out);
    email::check_email(policy, head, &mut out);
    unique::check_unique(head, &mut out);
    pairing::check_pairing(policy, head, &mut out);
    sources::check_sources(policy, head, &mut out);
    tags::check_tags(policy, head, &mut out);
    changes::check_changes(policy, input, &mut out);
    out
}

#[cfg(test)]
mod tests;
