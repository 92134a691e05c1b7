//! What the policy *checks*: one file per built-in rule, and the custom Rego rules
//! evaluated ([`rego`]). [`check`] is a pure function of the declarations, the plan and the
//! MR facts; the rules' parameters are the [`Policy`]'s.

mod access;
mod adopt;
mod aws;
mod changes;
mod email;
mod naming;
mod pairing;
pub mod rego;
mod repository;
mod sources;
mod tags;
mod unique;
mod values;

use crate::core::decl::Declarations;
use crate::core::model::Loc;
use crate::core::plan::Plan;
use crate::core::policy::Policy;
use serde::Serialize;

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
    /// For a request by issue (the MR's author is then orgvend): who asked.
    pub requested_by: Option<String>,
}

pub struct CheckInput<'a> {
    pub head: &'a Declarations,
    pub base: Option<&'a Declarations>,
    pub plan: &'a Plan,
    pub mr: Option<&'a MrFacts>,
    /// The files of `policies/` the change touches.
    pub policy_changed: &'a [String],
    /// Why the policy the change proposes does not load, if it does not.
    pub proposed_policy: Option<&'a crate::core::policy::PolicyError>,
}

/// Runs every rule. The result is ordered by file, line and rule, so notes are stable.
pub fn check(policy: &Policy, input: &CheckInput) -> Vec<Violation> {
    check_with(policy, input, true)
}

/// Whether the custom rules can be judged before the plan is made: none reads
/// `input.changes` (see [`check_custom`]).
pub fn custom_before_plan(policy: &Policy) -> bool {
    !policy.rego.is_empty() && !policy.rego.iter().any(|m| m.needs.changes)
}

/// The custom rules alone (unsorted); `input.plan` is read only by rules that read
/// `input.changes`.
pub fn check_custom(policy: &Policy, input: &CheckInput) -> Vec<Violation> {
    let mut out = Vec::new();
    rego::check_rego(policy, input, &mut out);
    out
}

/// Every built-in rule, and the custom rules when `custom`. Ordered as [`check`] orders.
pub fn check_with(policy: &Policy, input: &CheckInput, custom: bool) -> Vec<Violation> {
    // Custom rules run beside the built-in ones: on a large repository each takes about as long.
    let mut out = std::thread::scope(|s| {
        let custom =
            (custom && !policy.rego.is_empty()).then(|| s.spawn(|| check_custom(policy, input)));
        let mut out = builtin(policy, input);
        if let Some(custom) = custom {
            out.extend(custom.join().expect("the Rego thread panicked"));
        }
        out
    });
    settle(&mut out);
    out
}

/// Violations in the order notes show them (severity, file, line, rule), each once
/// (whatever order they came in: the whole of each is compared).
pub fn settle(out: &mut Vec<Violation>) {
    out.sort_by(|a, b| {
        (a.severity, &a.at, &a.rule, &a.message, &a.module, &a.fix)
            .cmp(&(b.severity, &b.at, &b.rule, &b.message, &b.module, &b.fix))
    });
    out.dedup();
}

/// Every built-in rule. Each reads the whole repository on its own: they are shared between
/// the cores, each taken by whichever is free, the costliest first (on a large repository
/// the custom rules run beside them, and one thread taking them all in turn was the last to
/// finish).
fn builtin(policy: &Policy, input: &CheckInput) -> Vec<Violation> {
    // below a thousand accounts they take less time than starting a thread
    let parallel = input.head.accounts.len() >= 1_000;
    builtin_on(policy, input, parallel)
}

/// [`builtin`], on every core or on this thread alone.
fn builtin_on(policy: &Policy, input: &CheckInput, parallel: bool) -> Vec<Violation> {
    let head = input.head;
    type Rule<'r> = &'r (dyn Fn(&mut Vec<Violation>) + Sync);
    let rules: [Rule; 12] = [
        &|out| unique::check_unique(head, out),
        &|out| email::check_email(policy, head, input.base, out),
        &|out| aws::check_aws_limits(head, out),
        &|out| sources::check_sources(policy, head, out),
        &|out| repository::check_repository(policy, input, out),
        &|out| values::check_values(policy, head, out),
        &|out| naming::check_naming(policy, head, out),
        &|out| tags::check_tags(policy, head, out),
        &|out| pairing::check_pairing(policy, head, out),
        &|out| access::check_access(policy, head, out),
        &|out| adopt::check_adopt(head, out),
        &|out| changes::check_changes(policy, input, out),
    ];
    let min = if parallel { 2 } else { usize::MAX };
    crate::core::par::map(&rules, min, |rule| {
        let mut out = Vec::new();
        rule(&mut out);
        out
    })
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests;
