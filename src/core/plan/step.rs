//! The steps of a change: what the apply does, in order, for a new, changed or closed
//! account ([`Plan::steps`]), each with its ledger key and its area.

use super::{Action, Change, FieldChange, Plan, Target};
use crate::core::decl::{Map, Value};
use crate::core::policy::security::Guard;
use crate::core::policy::{Access, Baseline, Provider, Repository};
use serde::Serialize;
use std::collections::BTreeMap;

/// One thing the apply does, in order. Names templated with `{account_id}` are filled in once
/// the account exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    CreateAccount {
        name: String,
        email: String,
        role_name: String,
        tags: BTreeMap<String, String>,
    },
    WaitForAccount,
    /// Take over an existing account instead of creating one (the declaration says
    /// `adopt = "<id>"`): it must be in the organization, active, with the declared email.
    AdoptAccount {
        account_id: String,
        email: String,
    },
    MoveAccount {
        ou: String,
    },
    TagAccount {
        tags: BTreeMap<String, String>,
    },
    UntagAccount {
        keys: Vec<String>,
    },
    RenameAccount {
        name: String,
    },
    /// The first phase of an email change: AWS mails a one-time code to the new address;
    /// an operator completes it (`orgvend accept-email`).
    StartEmailUpdate {
        from: String,
        to: String,
    },
    AssumeRole {
        role_name: String,
    },
    SetAlias {
        alias: String,
    },
    SamlProvider {
        name: String,
    },
    PermissionsBoundary {
        policy: String,
    },
    AccessRole {
        name: String,
        policy_arn: String,
        bounded: bool,
    },
    /// The account's KMS key: found by alias (or by orgvend's tag after a crash), rotation on.
    KmsKey {
        alias: String,
        /// The alias before the account's alias changed: the key found by it gets the new one.
        #[serde(skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
    },
    /// AWS Config's recorder (an existing one, of any name, is adopted): all supported
    /// resources, global ones included, recording.
    ConfigRecorder {
        name: String,
    },
    /// Config's delivery channel, to the central bucket.
    DeliveryChannel {
        bucket: String,
    },
    /// An AWS managed Config rule.
    ConfigRule {
        name: String,
        identifier: String,
        parameters: BTreeMap<String, String>,
    },
    /// A multi-region trail in the account, log-file validation on, encrypted with the key.
    Trail {
        name: String,
        bucket: String,
    },
    /// The organization's trail, verified from the management account: logging,
    /// multi-region, log-file validation on.
    OrganizationTrail,
    StateBucket {
        bucket: String,
    },
    LockTable {
        table: String,
    },
    /// An IAM OIDC provider for the GitLab instance, for keyless CI.
    CiOidcProvider,
    /// A role the account's project pipelines assume with their GitLab ID token.
    CiRole {
        name: String,
        /// `plan` (any pipeline of the project, read only) or `apply` (protected master).
        purpose: String,
    },
    GitlabProject {
        namespace: String,
        path: String,
    },
    CommitTemplate,
    ProtectMaster,
    CiVariables,
    /// A closure counted against AWS's rolling 30-day quota before anything of the close is
    /// done (parked when the quota is spent).
    ReserveClosure,
    /// Closed (AWS refusing for its quota: parked).
    CloseAccount {
        name: String,
    },
    /// Polled until AWS has suspended it (`PENDING_CLOSURE` → `SUSPENDED`).
    WaitForClosure,
    /// The account's GitLab project archived: read only, and no pipeline runs (so no CI ID
    /// token its CI roles would trust).
    ArchiveProject {
        path: String,
    },
    /// A baseline role made available for sign-in: the role's permission set, provisioned to
    /// the account (Identity Center), or the account's group for the role, assigned to the
    /// AWS app (Okta). `name` is the permission set's or the group's name.
    Entitlement {
        provider: Provider,
        role: String,
        name: String,
        /// The group's name before the account's alias or name changed (Okta): renamed.
        #[serde(skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
    },
    /// A group granted a role: an account assignment (Identity Center) or a group rule that
    /// feeds the account's role group from `group` (Okta).
    Grant {
        provider: Provider,
        role: String,
        group: String,
    },
    /// A grant taken back.
    Revoke {
        provider: Provider,
        role: String,
        group: String,
    },
    /// Before a close: every grant on the account taken back, its Okta groups removed
    /// (`groups`: the account's entitlement names, `{account_id}` to fill in).
    RevokeAccess {
        provider: Provider,
        groups: Vec<String>,
    },
}

/// Which part of the world a step changes. The apply executes each area's steps in a file of
/// its own (`bot/apply/steps/`), so a new area is a new file, not a longer match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// The organization, from the management account: create, wait, move, tag, close.
    Organizations,
    /// Inside the account: the assumed role, alias, SAML provider, boundary, access roles.
    Iam,
    /// The account's guard: its KMS key, AWS Config, CloudTrail.
    Guard,
    /// The account's Terraform state: bucket and lock table.
    StateBackend,
    /// Keyless CI: the GitLab OIDC provider and the plan/apply roles.
    KeylessCi,
    /// The account's GitLab project.
    Repository,
    /// Who may sign in: Identity Center or Okta.
    Access,
}

impl Step {
    /// The step's kind, in snake case (the `step` tag of its JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::CreateAccount { .. } => "create_account",
            Step::WaitForAccount => "wait_for_account",
            Step::AdoptAccount { .. } => "adopt_account",
            Step::MoveAccount { .. } => "move_account",
            Step::TagAccount { .. } => "tag_account",
            Step::UntagAccount { .. } => "untag_account",
            Step::RenameAccount { .. } => "rename_account",
            Step::StartEmailUpdate { .. } => "start_email_update",
            Step::AssumeRole { .. } => "assume_role",
            Step::SetAlias { .. } => "set_alias",
            Step::SamlProvider { .. } => "saml_provider",
            Step::PermissionsBoundary { .. } => "permissions_boundary",
            Step::AccessRole { .. } => "access_role",
            Step::KmsKey { .. } => "kms_key",
            Step::ConfigRecorder { .. } => "config_recorder",
            Step::DeliveryChannel { .. } => "delivery_channel",
            Step::ConfigRule { .. } => "config_rule",
            Step::Trail { .. } => "trail",
            Step::OrganizationTrail => "organization_trail",
            Step::StateBucket { .. } => "state_bucket",
            Step::LockTable { .. } => "lock_table",
            Step::CiOidcProvider => "ci_oidc_provider",
            Step::CiRole { .. } => "ci_role",
            Step::GitlabProject { .. } => "gitlab_project",
            Step::CommitTemplate => "commit_template",
            Step::ProtectMaster => "protect_master",
            Step::CiVariables => "ci_variables",
            Step::ReserveClosure => "reserve_closure",
            Step::CloseAccount { .. } => "close_account",
            Step::WaitForClosure => "wait_for_closure",
            Step::ArchiveProject { .. } => "archive_project",
            Step::Entitlement { .. } => "entitlement",
            Step::Grant { .. } => "grant",
            Step::Revoke { .. } => "revoke",
            Step::RevokeAccess { .. } => "revoke_access",
        }
    }

    /// The ledger's name of the step, unique within an account's steps. Stored: never change
    /// the name of an existing step.
    pub fn key(&self) -> String {
        match self {
            Step::AccessRole { name, .. } => format!("access_role:{name}"),
            Step::CiRole { name, .. } => format!("ci_role:{name}"),
            Step::Entitlement {
                role,
                previous: Some(_),
                ..
            } => format!("entitlement:{role}:renamed"),
            Step::Entitlement { role, .. } => format!("entitlement:{role}"),
            Step::ConfigRule { name, .. } => format!("config_rule:{name}"),
            Step::Grant { role, group, .. } => format!("grant:{role}:{group}"),
            Step::Revoke { role, group, .. } => format!("revoke:{role}:{group}"),
            other => other.kind().to_string(),
        }
    }

    pub fn area(&self) -> Area {
        match self {
            Step::CreateAccount { .. }
            | Step::WaitForAccount
            | Step::AdoptAccount { .. }
            | Step::MoveAccount { .. }
            | Step::TagAccount { .. }
            | Step::UntagAccount { .. }
            | Step::RenameAccount { .. }
            | Step::StartEmailUpdate { .. }
            | Step::ReserveClosure
            | Step::CloseAccount { .. }
            | Step::WaitForClosure => Area::Organizations,
            Step::AssumeRole { .. }
            | Step::SetAlias { .. }
            | Step::SamlProvider { .. }
            | Step::PermissionsBoundary { .. }
            | Step::AccessRole { .. } => Area::Iam,
            Step::KmsKey { .. }
            | Step::ConfigRecorder { .. }
            | Step::DeliveryChannel { .. }
            | Step::ConfigRule { .. }
            | Step::Trail { .. }
            | Step::OrganizationTrail => Area::Guard,
            Step::StateBucket { .. } | Step::LockTable { .. } => Area::StateBackend,
            Step::CiOidcProvider | Step::CiRole { .. } => Area::KeylessCi,
            Step::GitlabProject { .. }
            | Step::CommitTemplate
            | Step::ProtectMaster
            | Step::CiVariables
            | Step::ArchiveProject { .. } => Area::Repository,
            Step::Entitlement { .. }
            | Step::Grant { .. }
            | Step::Revoke { .. }
            | Step::RevokeAccess { .. } => Area::Access,
        }
    }
}

impl Plan {
    /// The ordered steps the apply performs for one change.
    pub fn steps(&self, change: &Change) -> Vec<Step> {
        let access = self.access.as_deref();
        let close = || {
            let mut steps = vec![Step::ReserveClosure];
            if let (Some(a), Some(t), Some((b, _))) = (
                access.filter(|a| a.provider != Provider::None),
                change.closing.as_ref(),
                self.baseline.as_deref(),
            ) {
                steps.push(super::access::revoke_all(a, t, b));
            }
            if let (Some(t), Some((_, repo))) = (change.closing.as_ref(), self.baseline.as_deref())
            {
                steps.push(Step::ArchiveProject {
                    path: project_path(repo, t),
                });
            }
            steps.push(Step::CloseAccount {
                name: change.name.clone(),
            });
            steps.push(Step::WaitForClosure);
            if let Some(ou) = &self.suspended_ou {
                steps.push(Step::MoveAccount { ou: ou.clone() });
            }
            steps
        };
        let Some(t) = &change.target else {
            return close();
        };
        // `adopt` added to an account declared before (its creation failed because the
        // account existed): the whole baseline, on the adopted account.
        let adopting = t.adopt.is_some() && change.fields.iter().any(|f| f.field == "adopt");
        let guard = self
            .security
            .as_deref()
            .map(|s| s.of(change.account_type.as_deref()));
        match change.action {
            Action::Create => create_steps(t, self.baseline.as_deref(), access, guard),
            Action::Update if adopting => create_steps(t, self.baseline.as_deref(), access, guard),
            Action::Update => {
                update_steps(t, &change.fields, access, self.baseline.as_deref(), guard)
            }
            Action::Close => close(),
        }
    }
}

/// Fills `{alias}` and `{name}`; `{account_id}` waits for the account to exist.
pub fn fill(template: &str, t: &Target) -> String {
    template
        .replace("{alias}", &t.alias)
        .replace("{name}", &t.name)
}

fn create_steps(
    t: &Target,
    baseline: Option<&(Baseline, Repository)>,
    access: Option<&Access>,
    guard: Option<&Guard>,
) -> Vec<Step> {
    let mut steps = match &t.adopt {
        Some(id) => vec![Step::AdoptAccount {
            account_id: id.clone(),
            email: t.email.clone(),
        }],
        None => vec![
            Step::CreateAccount {
                name: t.name.clone(),
                email: t.email.clone(),
                role_name: t.role_name.clone(),
                tags: t.tags.to_map(),
            },
            Step::WaitForAccount,
        ],
    };
    steps.push(Step::MoveAccount { ou: t.ou.clone() });
    if !t.tags.is_empty() {
        steps.push(Step::TagAccount {
            tags: t.tags.to_map(),
        });
    }
    steps.extend([
        Step::AssumeRole {
            role_name: t.role_name.clone(),
        },
        Step::SetAlias {
            alias: t.alias.clone(),
        },
    ]);
    let Some((b, repo)) = baseline else {
        return steps;
    };
    steps.extend([
        Step::SamlProvider {
            name: b.saml_provider.clone(),
        },
        Step::PermissionsBoundary {
            policy: b.permissions_boundary.clone(),
        },
    ]);
    steps.extend(b.roles.iter().map(|r| Step::AccessRole {
        name: r.name.clone(),
        policy_arn: r.policy_arn.clone(),
        bounded: r.bounded,
    }));
    if let Some(g) = guard {
        steps.extend(super::guard::steps(g, t));
    }
    if let Some(a) = access.filter(|a| a.provider != Provider::None) {
        steps.extend(super::access::granted(a, t, b));
    }
    steps.extend([
        Step::StateBucket {
            bucket: fill(&b.state_bucket, t),
        },
        Step::LockTable {
            table: b.lock_table.clone(),
        },
    ]);
    // The project first: it is created by orgvend (or found to be orgvend's) before any
    // role trusts its path.
    steps.push(Step::GitlabProject {
        namespace: repo.namespace.clone(),
        path: fill(&repo.path, t),
    });
    if repo.keyless_ci {
        steps.extend([
            Step::CiOidcProvider,
            Step::CiRole {
                name: repo.plan_role.clone(),
                purpose: "plan".into(),
            },
            Step::CiRole {
                name: repo.apply_role.clone(),
                purpose: "apply".into(),
            },
        ]);
    }
    steps.extend([Step::CommitTemplate, Step::ProtectMaster, Step::CiVariables]);
    steps
}

/// Whether `path` is a GitLab project path orgvend uses: segments of letters, digits, `.`,
/// `_` and `-`, not starting with `.` or `-`. Nothing else ever reaches an IAM trust condition
/// (where `*` and `?` are wildcards).
pub fn valid_project_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with(['.', '-'])
                && !seg.ends_with(".git")
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// `group/path` of an account's GitLab project.
pub fn project_path(repo: &Repository, t: &Target) -> String {
    format!(
        "{}/{}",
        repo.namespace.trim_end_matches('/'),
        fill(&repo.path, t)
    )
}

fn update_steps(
    t: &Target,
    fields: &[FieldChange],
    access: Option<&Access>,
    baseline: Option<&(Baseline, Repository)>,
    guard: Option<&Guard>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    // A new email first: the account is found by the one it has until the change is accepted.
    if let Some(f) = fields.iter().find(|f| f.field == "email") {
        steps.push(Step::StartEmailUpdate {
            from: f.before.as_str().unwrap_or_default().to_string(),
            to: t.email.clone(),
        });
    }
    // Okta groups are named after the account: a new alias or name renames them first, so
    // the grants below find them.
    if let (Some(a), Some((b, _))) = (access, baseline) {
        steps.extend(super::access::renamed(a, t, b, fields));
    }
    for f in fields {
        match f.field.as_str() {
            "access" => {
                if let Some(a) = access {
                    steps.extend(super::access::changed(a, t, f));
                }
            }
            "name" => steps.push(Step::RenameAccount {
                name: t.name.clone(),
            }),
            // A new type brings its own guard: the boundary (which protects it) and the guard
            // steps run again, so an account never keeps a lighter type's guard.
            "account_type" => {
                steps.push(Step::MoveAccount { ou: t.ou.clone() });
                if let (Some((b, _)), Some(g)) = (baseline, guard) {
                    steps.extend([
                        Step::AssumeRole {
                            role_name: t.role_name.clone(),
                        },
                        Step::PermissionsBoundary {
                            policy: b.permissions_boundary.clone(),
                        },
                    ]);
                    steps.extend(super::guard::steps(g, t));
                }
            }
            "tags" => {
                let empty = Map::new();
                let before = f.before.as_map().unwrap_or(&empty);
                let set: BTreeMap<String, String> = t
                    .tags
                    .iter()
                    .filter(|(k, v)| before.get(k).and_then(Value::as_str) != Some(v.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Vec<String> = before
                    .keys()
                    .filter(|k| !t.tags.contains_key(k))
                    .cloned()
                    .collect();
                if !set.is_empty() {
                    steps.push(Step::TagAccount { tags: set });
                }
                if !removed.is_empty() {
                    steps.push(Step::UntagAccount { keys: removed });
                }
            }
            "account_alias" => {
                steps.extend([
                    Step::AssumeRole {
                        role_name: t.role_name.clone(),
                    },
                    Step::SetAlias {
                        alias: t.alias.clone(),
                    },
                ]);
                // The key is named after the alias: it gets the new name, and the boundary
                // protects it under that name.
                if let (Some((b, _)), Some(k)) = (baseline, guard.and_then(|g| g.kms.as_ref())) {
                    let old = Target {
                        alias: f.before.as_str().unwrap_or(&t.alias).to_string(),
                        ..t.clone()
                    };
                    steps.extend([
                        Step::KmsKey {
                            alias: fill(&k.alias, t),
                            previous: Some(fill(&k.alias, &old)),
                        },
                        Step::PermissionsBoundary {
                            policy: b.permissions_boundary.clone(),
                        },
                    ]);
                }
            }
            // email and role_name only matter at creation; the policy reports changes to them
            _ => {}
        }
    }
    steps
}

#[cfg(test)]
mod tests;
