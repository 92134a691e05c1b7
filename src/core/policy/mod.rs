//! What the policy *says*: the data of `policies/orgvend.toml` (parsed in [`config`]) and the
//! compiled `*.rego` files ([`rego`]), read from `policies/` of the target branch. What it
//! *checks* over a change is `core::rules`.

/// `[access]`: who may sign in to each new account, and as what.
pub mod access;
mod config;
pub mod rego;
mod requests;
/// The account's KMS key, Config and CloudTrail, per account type.
pub mod security;
mod spans;
#[cfg(test)]
mod tests;

pub use access::{Access, Provider};
pub use config::CHANGEABLE_FIELDS;

use crate::core::decl::ModuleSources;
use crate::core::model::{Loc, SourceFile};
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
    /// The refs new account and base modules are pinned to (`orgvend new`, requests);
    /// `None`: the newest in use.
    pub account_ref: Option<String>,
    pub base_ref: Option<String>,
    /// Accounts asked for by GitLab issue.
    pub requests: Requests,
    pub email_domains: Vec<String>,
    pub email_pattern: Option<Regex>,
    pub email_template: Option<String>,
    pub alias_equals_name: bool,
    pub immutable: Vec<String>,
    pub allow_close: bool,
    pub close_approvals: Option<u32>,
    /// Where a closed account goes once suspended.
    pub suspended_ou: Option<String>,
    /// Closures allowed in a rolling 30 days, when lower than AWS's quota.
    pub close_quota: Option<u32>,
    pub approval_group: String,
    pub reset_on_push: bool,
    /// The least access level to the approval group an approver needs (GitLab's numbers).
    pub min_access_level: u32,
    /// Whether inherited members of the approval group count.
    pub inherited_members: bool,
    /// Approvals an MR changing `policies/` needs (never 0).
    pub policy_approvals: u32,
    pub types: BTreeMap<String, TypeRules>,
    pub baseline: Baseline,
    pub repository: Repository,
    /// Who may sign in to each new account, and as what.
    pub access: Access,
    /// Each account's KMS key, Config and CloudTrail, per account type.
    pub security: security::Security,
    pub rego: Vec<rego::Module>,
    /// `[rego] per_account`: each custom rule judges one account on its own (an MR's review
    /// then evaluates only the accounts it touches).
    pub rego_per_account: bool,
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

/// `[requests]`: who may ask for an account by GitLab issue, and how many at once.
#[derive(Debug, Clone, Serialize)]
pub struct Requests {
    pub enabled: bool,
    /// Open request MRs one user may have (at least 1).
    pub max_open_per_user: u32,
    /// The least access to the subaccounts project a requester needs (GitLab's number).
    pub min_access_level: u32,
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            enabled: true,
            max_open_per_user: 3,
            min_access_level: 20,
        }
    }
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

    /// The rules a repair of a broken policy is judged by when no policy ever loaded: no
    /// account types, no account modules (the repair changes the policy only), `approvals`
    /// from members of `group` (at least one).
    pub fn fallback(group: &str, approvals: u32) -> Policy {
        Policy {
            file: "the service's [fallback]".into(),
            sources: ModuleSources::default(),
            account_id_output: "id".into(),
            require_ref: false,
            ref_pattern: None,
            allowed_sources: Vec::new(),
            account_ref: None,
            base_ref: None,
            requests: Requests {
                enabled: false,
                ..Requests::default()
            },
            email_domains: Vec::new(),
            email_pattern: None,
            email_template: None,
            alias_equals_name: false,
            immutable: vec!["email".into()],
            allow_close: false,
            close_approvals: None,
            suspended_ou: None,
            close_quota: None,
            approval_group: group.to_string(),
            reset_on_push: true,
            min_access_level: 30,
            inherited_members: true,
            policy_approvals: approvals.max(1),
            types: BTreeMap::new(),
            baseline: config::default_baseline(),
            repository: config::default_repository(),
            access: Access::default(),
            security: security::Security::default(),
            rego: Vec::new(),
            rego_per_account: false,
        }
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

/// AWS's quota of account closures in a rolling 30 days: the higher of 250 and 20% of the
/// member accounts, at most 1,000 (`CloseAccount`); lower where the policy says.
pub fn close_quota(members: usize, policy_cap: Option<u32>) -> usize {
    let aws = (members / 5).clamp(250, 1000);
    policy_cap.map_or(aws, |c| aws.min(c as usize))
}
