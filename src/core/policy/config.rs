//! The policy file, `policies/orgvend.toml`: its TOML shape (every table `deny_unknown_fields`)
//! and its compilation into a [`Policy`]. Every error names file:line.
//! The documented reference is `docs/policy.md`.

use super::requests::{AccessLevel, access_level};
use super::spans::Spans;
use super::{Policy, PolicyError, TypeRules};
use crate::core::model::Loc;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    modules: ModulesConf,
    #[serde(default)]
    email: EmailConf,
    #[serde(default)]
    naming: NamingConf,
    #[serde(default)]
    changes: ChangesConf,
    #[serde(default)]
    approvals: ApprovalsConf,
    types: Spanned<BTreeMap<String, TypeConf>>,
    #[serde(default)]
    baseline: BaselineConf,
    #[serde(default)]
    repository: RepositoryConf,
    #[serde(default)]
    access: super::access::AccessConf,
    #[serde(default)]
    requests: super::requests::RequestsConf,
    #[serde(default)]
    rego: super::rego::RegoConf,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModulesConf {
    /// Source address(es) of the module that creates an account; the `?ref=` is ignored.
    account_source: Spanned<OneOrMany>,
    /// Source address(es) of the module that provisions an account's baseline.
    base_source: Spanned<OneOrMany>,
    /// The output of the account module that `account_id` refers to. Default `id`.
    #[serde(default = "default_id_output")]
    account_id_output: String,
    /// Whether account and base modules must pin a ref. Default true.
    #[serde(default = "yes")]
    require_ref: bool,
    /// A pattern every ref must match, e.g. a release tag. Default: any ref.
    ref_pattern: Option<Spanned<String>>,
    /// Addresses of other modules the repository may use. Default: none.
    #[serde(default)]
    allowed_sources: Vec<String>,
    /// The ref `orgvend new` and requests pin new account modules to. Default: the newest
    /// ref the repository's account modules use.
    account_ref: Option<Spanned<String>>,
    /// The same for base modules.
    base_ref: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailConf {
    /// Domains an account email may use (case-insensitive). Default: any.
    #[serde(default)]
    domains: Vec<String>,
    /// A pattern the whole email must match. Default: none.
    pattern: Option<Spanned<String>>,
    /// The exact email expected, with `{name}`, `{alias}` and `{type}` filled in. Default: none.
    template: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamingConf {
    /// Whether `account_alias` must equal the account `name`. Default false.
    #[serde(default)]
    alias_equals_name: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesConf {
    /// Fields of an existing account that may not change. Default: email, account_type, role_name.
    #[serde(default = "default_immutable")]
    immutable: Vec<Spanned<String>>,
    /// Whether removing an account's blocks may close the account. Default false.
    #[serde(default)]
    allow_close: bool,
    /// Approvals a close needs. Default: the most any type needs; never 0.
    close_approvals: Option<Spanned<u32>>,
    /// The OU a closed account is moved to once suspended (`/Suspended`). Default: it stays.
    suspended_ou: Option<Spanned<String>>,
    /// Whether an account's email may change (a two-phase change through the Account
    /// Management API). Default false: email is immutable.
    #[serde(default)]
    allow_email_change: bool,
    /// At most this many closures in a rolling 30 days, below AWS's own quota (the higher of
    /// 250 and 20% of the member accounts, at most 1,000). Default: AWS's.
    close_quota: Option<Spanned<u32>>,
}

impl Default for ChangesConf {
    fn default() -> Self {
        ChangesConf {
            immutable: default_immutable(),
            allow_close: false,
            close_approvals: None,
            suspended_ou: None,
            close_quota: None,
            allow_email_change: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsConf {
    /// GitLab group (full path or numeric id) whose members' approvals count.
    /// Default `infrastructure`.
    #[serde(default = "default_group")]
    group: String,
    /// Approvals needed where a type does not say. Default 1; never 0.
    default: Option<Spanned<u32>>,
    /// Whether a push after an approval voids it (judged by GitLab's times). Default true.
    #[serde(default = "yes")]
    reset_on_push: bool,
    /// The least access to `group` an approver needs: `guest`, `reporter`, `developer`,
    /// `maintainer`, `owner` (or GitLab's number). Default `developer`.
    #[serde(default)]
    min_access_level: Option<Spanned<AccessLevel>>,
    /// Whether members of `group`'s ancestor groups (and, since GitLab 17.0, of groups
    /// invited to it) count, as GitLab's `members/all` reports them; `false`: direct members
    /// only. Default true.
    #[serde(default = "yes")]
    inherited: bool,
    /// Approvals an MR that changes `policies/` needs. Default: the most any type needs.
    policy_changes: Option<Spanned<u32>>,
}

impl Default for ApprovalsConf {
    fn default() -> Self {
        ApprovalsConf {
            group: default_group(),
            default: None,
            reset_on_push: true,
            min_access_level: None,
            inherited: true,
            policy_changes: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeConf {
    /// One line shown in messages.
    #[serde(default)]
    description: String,
    /// Pattern the whole account name must match. Default: any name AWS accepts.
    name_pattern: Option<Spanned<String>>,
    /// Pattern the whole alias must match. Default: any alias IAM accepts.
    alias_pattern: Option<Spanned<String>>,
    /// The OU accounts of this type live in, as a path from the root (`/Clients`).
    ou: Spanned<String>,
    /// Tag keys an account of this type must carry with a non-empty value. Default: none.
    #[serde(default)]
    required_tags: Vec<String>,
    /// Infrastructure approvals an MR creating or changing such an account needs.
    /// Default: `approvals.default`; never 0.
    approvals: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineConf {
    #[serde(default = "default_role_name")]
    role_name: String,
    #[serde(default = "default_saml")]
    saml_provider: String,
    #[serde(default = "default_boundary")]
    permissions_boundary: String,
    #[serde(default = "default_roles")]
    roles: Vec<RoleConf>,
    #[serde(default = "default_bucket")]
    state_bucket: Spanned<String>,
    #[serde(default = "default_table")]
    lock_table: String,
    /// The account's KMS key, Config and CloudTrail, and their overrides per type.
    #[serde(default)]
    kms: Option<Spanned<super::security::KmsConf>>,
    #[serde(default)]
    config: Option<Spanned<super::security::ConfigConf>>,
    #[serde(default)]
    cloudtrail: Option<Spanned<super::security::TrailConf>>,
    #[serde(default)]
    types: BTreeMap<String, Spanned<super::security::GuardConf>>,
}

impl Default for BaselineConf {
    fn default() -> Self {
        BaselineConf {
            role_name: default_role_name(),
            saml_provider: default_saml(),
            permissions_boundary: default_boundary(),
            roles: default_roles(),
            state_bucket: default_bucket(),
            lock_table: default_table(),
            kms: None,
            config: None,
            cloudtrail: None,
            types: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleConf {
    name: String,
    policy_arn: String,
    #[serde(default)]
    bounded: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepositoryConf {
    /// Group path new account projects go in. Default `accounts`.
    #[serde(default = "default_namespace")]
    namespace: String,
    /// Project path template (`{alias}`, `{name}`). Default `{alias}`.
    #[serde(default = "default_repo_path")]
    path: String,
    /// Keyless CI: an OIDC provider for the GitLab instance and two roles in each account.
    /// Default true.
    #[serde(default = "yes")]
    keyless_ci: bool,
    /// The role the project's pipelines assume to plan. Default `gitlab-ci-plan`.
    #[serde(default = "default_plan_role")]
    plan_role: String,
    /// The role only the protected master assumes to apply. Default `gitlab-ci-apply`.
    #[serde(default = "default_apply_role")]
    apply_role: String,
}

impl Default for RepositoryConf {
    fn default() -> Self {
        RepositoryConf {
            namespace: default_namespace(),
            path: default_repo_path(),
            keyless_ci: true,
            plan_role: default_plan_role(),
            apply_role: default_apply_role(),
        }
    }
}

fn default_plan_role() -> String {
    "gitlab-ci-plan".into()
}
fn default_apply_role() -> String {
    "gitlab-ci-apply".into()
}

fn yes() -> bool {
    true
}
fn default_id_output() -> String {
    "id".into()
}
fn default_group() -> String {
    "infrastructure".into()
}
fn default_immutable() -> Vec<Spanned<String>> {
    ["email", "account_type", "role_name"]
        .into_iter()
        .map(|f| Spanned::new(0..0, f.to_string()))
        .collect()
}
fn default_role_name() -> String {
    "OrganizationAccountAccessRole".into()
}
fn default_saml() -> String {
    "sso".into()
}
fn default_boundary() -> String {
    "orgvend-baseline-boundary".into()
}
fn default_bucket() -> Spanned<String> {
    Spanned::new(0..0, "{alias}-terraform-state".into())
}
fn default_table() -> String {
    "terraform-locks".into()
}
fn default_namespace() -> String {
    "accounts".into()
}
fn default_repo_path() -> String {
    "{alias}".into()
}
fn default_roles() -> Vec<RoleConf> {
    let role = |name: &str, arn: &str, bounded| RoleConf {
        name: name.into(),
        policy_arn: arn.into(),
        bounded,
    };
    vec![
        role(
            "Admin",
            "arn:aws:iam::aws:policy/AdministratorAccess",
            false,
        ),
        role(
            "BoundedAdmin",
            "arn:aws:iam::aws:policy/AdministratorAccess",
            true,
        ),
        role(
            "PowerUser",
            "arn:aws:iam::aws:policy/PowerUserAccess",
            false,
        ),
        role("ReadOnly", "arn:aws:iam::aws:policy/ReadOnlyAccess", false),
        role(
            "ViewOnly",
            "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
            false,
        ),
    ]
}

/// Fields `changes.immutable` may name.
pub const CHANGEABLE_FIELDS: &[&str] = &[
    "name",
    "email",
    "account_alias",
    "account_type",
    "role_name",
    "tags",
];

pub(super) fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
    let spans = Spans::new(file, text);
    let raw: PolicyFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => spans.err(span, message),
            None => PolicyError {
                at: Some(Loc::new(file, 1, 1)),
                message,
            },
        }
    })?;

    let types_span = raw.types.span();
    let at_least_one = |n: &Option<Spanned<u32>>, what: &str| match n {
        Some(n) if *n.get_ref() == 0 => Err(spans.err(
            n.span(),
            format!("{what} is 0: every change needs at least one approval"),
        )),
        Some(n) => Ok(Some(*n.get_ref())),
        None => Ok(None),
    };
    let default_approvals = at_least_one(&raw.approvals.default, "approvals.default")?.unwrap_or(1);
    let types_conf = raw.types.into_inner();
    if types_conf.is_empty() {
        return Err(spans.err(types_span, "[types] must declare at least one account type"));
    }
    let mut types = BTreeMap::new();
    for (name, t) in types_conf {
        let ou = t.ou.get_ref();
        if !ou.starts_with('/') || ou.len() < 2 || ou.ends_with('/') {
            return Err(spans.err(
                t.ou.span(),
                format!("types.{name}.ou must be an OU path from the root, like \"/Clients\""),
            ));
        }
        types.insert(
            name.clone(),
            TypeRules {
                description: t.description,
                name_pattern: t
                    .name_pattern
                    .as_ref()
                    .map(|p| spans.regex(p, &format!("types.{name}.name_pattern")))
                    .transpose()?,
                alias_pattern: t
                    .alias_pattern
                    .as_ref()
                    .map(|p| spans.regex(p, &format!("types.{name}.alias_pattern")))
                    .transpose()?,
                ou: ou.clone(),
                required_tags: t.required_tags,
                approvals: at_least_one(&t.approvals, &format!("types.{name}.approvals"))?
                    .unwrap_or(default_approvals),
            },
        );
    }

    let mut immutable = Vec::new();
    for f in &raw.changes.immutable {
        if !CHANGEABLE_FIELDS.contains(&f.get_ref().as_str()) {
            return Err(spans.err(
                f.span(),
                format!(
                    "changes.immutable names `{}`; the fields are {}",
                    f.get_ref(),
                    CHANGEABLE_FIELDS.join(", ")
                ),
            ));
        }
        immutable.push(f.get_ref().clone());
    }
    // An email changes only in two phases (a one-time code mailed to the new address), and
    // only where the policy says so: otherwise it stays immutable.
    if raw.changes.allow_email_change {
        immutable.retain(|f| f != "email");
    } else if !immutable.iter().any(|f| f == "email") {
        immutable.push("email".into());
    }

    let bucket = raw.baseline.state_bucket.get_ref();
    if !bucket.contains("{alias}") && !bucket.contains("{account_id}") && !bucket.contains("{name}")
    {
        return Err(spans.err(
            raw.baseline.state_bucket.span(),
            "baseline.state_bucket must contain {alias}, {name} or {account_id}: S3 bucket names are global",
        ));
    }
    let email_template = raw.email.template.map(|t| t.into_inner());
    let close_approvals = at_least_one(&raw.changes.close_approvals, "changes.close_approvals")?;
    let close_quota = match &raw.changes.close_quota {
        Some(n) if *n.get_ref() == 0 => {
            return Err(spans.err(
                n.span(),
                "changes.close_quota is 0: to refuse every closure, set allow_close = false",
            ));
        }
        n => n.as_ref().map(|n| *n.get_ref()),
    };
    let suspended_ou = match &raw.changes.suspended_ou {
        Some(ou) => {
            let path = ou.get_ref();
            if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
                return Err(spans.err(
                    ou.span(),
                    "changes.suspended_ou must be an OU path from the root, like \"/Suspended\"",
                ));
            }
            Some(path.clone())
        }
        None => None,
    };
    let most_any_type = types.values().map(|t| t.approvals).max().unwrap_or(1);
    let policy_approvals = at_least_one(&raw.approvals.policy_changes, "approvals.policy_changes")?
        .unwrap_or(most_any_type);
    let min_access_level = access_level(&spans, &raw.approvals.min_access_level, "approvals", 30)?;
    let requests = super::requests::compile(&spans, raw.requests)?;
    let pinned = |r: &Option<Spanned<String>>, what: &str| -> Result<Option<String>, PolicyError> {
        let Some(r) = r else { return Ok(None) };
        let ok = r
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/+".contains(c))
            && !r.get_ref().is_empty();
        if !ok {
            return Err(spans.err(
                r.span(),
                format!("modules.{what} `{}` is not a git ref", r.get_ref()),
            ));
        }
        Ok(Some(r.get_ref().clone()))
    };
    let account_ref = pinned(&raw.modules.account_ref, "account_ref")?;
    let base_ref = pinned(&raw.modules.base_ref, "base_ref")?;

    let mut raw_baseline = raw.baseline;
    let guard = super::security::GuardConf {
        kms: raw_baseline.kms.take(),
        config: raw_baseline.config.take(),
        cloudtrail: raw_baseline.cloudtrail.take(),
    };
    let guard_types = std::mem::take(&mut raw_baseline.types);
    let baseline = baseline(raw_baseline);
    let type_names: Vec<String> = types.keys().cloned().collect();
    let access = super::access::compile(&spans, raw.access, &baseline.roles, &type_names)?;
    let security = super::security::compile(&spans, guard, guard_types, &type_names)?;
    let account_sources = raw.modules.account_source.into_inner().into_vec();
    let base_sources = raw.modules.base_source.into_inner().into_vec();
    Ok(Policy {
        file: file.to_string(),
        sources: crate::core::decl::ModuleSources {
            account: account_sources,
            base: base_sources,
        },
        account_id_output: raw.modules.account_id_output,
        require_ref: raw.modules.require_ref,
        ref_pattern: raw
            .modules
            .ref_pattern
            .as_ref()
            .map(|p| spans.regex(p, "modules.ref_pattern"))
            .transpose()?,
        allowed_sources: raw.modules.allowed_sources,
        account_ref,
        base_ref,
        requests,
        email_domains: raw
            .email
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        email_pattern: raw
            .email
            .pattern
            .as_ref()
            .map(|p| spans.regex(p, "email.pattern"))
            .transpose()?,
        email_template,
        alias_equals_name: raw.naming.alias_equals_name,
        immutable,
        allow_close: raw.changes.allow_close,
        close_approvals,
        suspended_ou,
        close_quota,
        approval_group: raw.approvals.group,
        reset_on_push: raw.approvals.reset_on_push,
        min_access_level,
        inherited_members: raw.approvals.inherited,
        policy_approvals,
        types,
        baseline,
        repository: repository(raw.repository),
        access,
        security,
        rego: Vec::new(),
        rego_per_account: raw.rego.per_account,
    })
}

fn baseline(b: BaselineConf) -> super::Baseline {
    super::Baseline {
        role_name: b.role_name,
        saml_provider: b.saml_provider,
        permissions_boundary: b.permissions_boundary,
        roles: b
            .roles
            .into_iter()
            .map(|r| super::BaselineRole {
                name: r.name,
                policy_arn: r.policy_arn,
                bounded: r.bounded,
            })
            .collect(),
        state_bucket: b.state_bucket.into_inner(),
        lock_table: b.lock_table,
    }
}

fn repository(r: RepositoryConf) -> super::Repository {
    super::Repository {
        namespace: r.namespace,
        path: r.path,
        keyless_ci: r.keyless_ci,
        plan_role: r.plan_role,
        apply_role: r.apply_role,
    }
}

/// The baseline a policy without `[baseline]` has.
pub(super) fn default_baseline() -> super::Baseline {
    baseline(BaselineConf::default())
}

/// The repository settings a policy without `[repository]` has.
pub(super) fn default_repository() -> super::Repository {
    repository(RepositoryConf::default())
}
