//! `[access]` of the policy file: who may sign in to each new account, and as what. The
//! provider (IAM Identity Center or Okta), the groups each account type grants each baseline
//! role, the groups a declaration may add, and the one group that may hold the admin roles.
//! Every error names file:line; the documented reference is `docs/policy.md`.

use super::PolicyError;
use super::spans::Spans;
use crate::core::model::Loc;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use toml::Spanned;

/// Who grants access to each new account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// No one: orgvend creates the roles and grants nothing.
    None,
    /// IAM Identity Center: permission sets and account assignments.
    IdentityCenter,
    /// Okta: a group per account and role, assigned to the AWS Account Federation app.
    Okta,
}

impl Provider {
    pub fn label(self) -> &'static str {
        match self {
            Provider::None => "none",
            Provider::IdentityCenter => "IAM Identity Center",
            Provider::Okta => "Okta",
        }
    }
}

/// The compiled `[access]`.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub provider: Provider,
    /// The one group the admin roles may be granted to (the Infrastructure group).
    pub admin_group: Option<String>,
    /// Roles only `admin_group` may hold.
    pub admin_roles: Vec<String>,
    /// Per account type: its grants and what a declaration may add.
    pub types: BTreeMap<String, TypeAccess>,
    pub identity_center: IdentityCenter,
    pub okta: Okta,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            provider: Provider::None,
            admin_group: None,
            admin_roles: vec!["Admin".into()],
            types: BTreeMap::new(),
            identity_center: IdentityCenter::default(),
            okta: Okta::default(),
        }
    }
}

impl Access {
    pub fn is_admin_role(&self, role: &str) -> bool {
        self.admin_roles.iter().any(|r| r == role)
    }

    /// The permission set of a baseline role (Identity Center).
    pub fn permission_set_name(&self, role: &str) -> String {
        format!("{}{role}", self.identity_center.permission_set_prefix)
    }
}

/// One account type's access.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeAccess {
    /// (role, group name template with `{name}`/`{alias}`), in the file's order.
    pub grants: Vec<(String, String)>,
    /// role → the pattern (a regex, `{name}`/`{alias}` filled in and escaped) the groups a
    /// declaration adds must match.
    pub may_add: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentityCenter {
    /// Permission set names are this prefix and the role's name (≤ 32 characters in all).
    pub permission_set_prefix: String,
    /// ISO-8601 session duration of every permission set (`PT8H`).
    pub session_duration: String,
    /// Whether a group missing from the identity store is created (only without an external
    /// identity provider: with one, groups come by SCIM and a missing group is an error).
    pub create_groups: bool,
}

impl Default for IdentityCenter {
    fn default() -> Self {
        IdentityCenter {
            permission_set_prefix: "orgvend-".into(),
            session_duration: "PT8H".into(),
            create_groups: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Okta {
    /// The Okta group of an account and role, as the AWS app's group filter expects it:
    /// `{alias}`, `{name}`, `{role}`, `{account_id}`.
    pub group_name: String,
}

impl Default for Okta {
    fn default() -> Self {
        Okta {
            group_name: "aws#{alias}#{role}#{account_id}".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessConf {
    provider: Option<Spanned<String>>,
    admin_group: Option<Spanned<String>>,
    admin_roles: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    types: BTreeMap<String, Spanned<TypeAccessConf>>,
    #[serde(default)]
    identity_center: IdentityCenterConf,
    #[serde(default)]
    okta: OktaConf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeAccessConf {
    #[serde(default)]
    grants: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    may_add: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityCenterConf {
    permission_set_prefix: Option<Spanned<String>>,
    session_duration: Option<Spanned<String>>,
    #[serde(default)]
    create_groups: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OktaConf {
    group_name: Option<Spanned<String>>,
}

/// Whether a group name is one orgvend passes on: 1–128 printable characters, none of them a
/// quote, a backslash or a wildcard (names reach search filters and messages).
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 128
        && name.trim() == name
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\\' | '*' | '?' | '`'))
}

/// Identity Center's `Name` pattern for a permission set: 1–32 of `[\w+=,.@-]`.
pub fn valid_permission_set_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// An ISO-8601 duration Identity Center accepts for a session: `PT<n>H` or `PT<n>M`, 1 to 12 hours.
fn valid_session_duration(d: &str) -> bool {
    let minutes = if let Some(h) = d.strip_prefix("PT").and_then(|r| r.strip_suffix('H')) {
        h.parse::<u32>().ok().and_then(|h| h.checked_mul(60))
    } else {
        d.strip_prefix("PT")
            .and_then(|r| r.strip_suffix('M'))
            .and_then(|m| m.parse::<u32>().ok())
    };
    minutes.is_some_and(|m| (60..=720).contains(&m))
}

/// Fills `{name}` and `{alias}` of a group name template.
pub fn fill_group(template: &str, name: &str, alias: &str) -> String {
    template.replace("{name}", name).replace("{alias}", alias)
}

/// Compiles `[access]` against the roles of the baseline and the account types.
pub(super) fn compile(
    spans: &Spans<'_>,
    conf: AccessConf,
    baseline_roles: &[super::BaselineRole],
    types: &[String],
) -> Result<Access, PolicyError> {
    // sets: a policy file of thousands of types or roles was checked name by name against
    // every other
    let roles: Vec<&str> = baseline_roles.iter().map(|r| r.name.as_str()).collect();
    let known_roles: HashSet<&str> = roles.iter().copied().collect();
    let types: HashSet<&str> = types.iter().map(String::as_str).collect();
    let mut access = Access::default();
    if let Some(p) = &conf.provider {
        access.provider = match p.get_ref().as_str() {
            "none" => Provider::None,
            "identity-center" => Provider::IdentityCenter,
            "okta" => Provider::Okta,
            other => {
                return Err(spans.err(
                    p.span(),
                    format!(
                        "access.provider `{other}`: use \"identity-center\", \"okta\" or \"none\""
                    ),
                ));
            }
        };
    }
    if let Some(roles_conf) = &conf.admin_roles {
        for r in roles_conf.get_ref() {
            if !known_roles.contains(r.as_str()) {
                return Err(spans.err(
                    roles_conf.span(),
                    format!("access.admin_roles names `{r}`, which is not a role of [baseline]"),
                ));
            }
        }
        access.admin_roles = roles_conf.get_ref().clone();
    }
    // Full administrators by their policy are admin roles, whatever they are called.
    for r in baseline_roles {
        let full = ["/AdministratorAccess", "/IAMFullAccess"]
            .iter()
            .any(|p| r.policy_arn.ends_with(p));
        if full && !r.bounded && !access.admin_roles.contains(&r.name) {
            access.admin_roles.push(r.name.clone());
        }
    }
    access
        .admin_roles
        .retain(|r| known_roles.contains(r.as_str()));
    if access.provider != Provider::None && access.admin_roles.is_empty() {
        return Err(PolicyError {
            at: Some(Loc::new(spans.file, 1, 1)),
            message: "[access] grants sign-in, but no role of [baseline] is an admin role: name the full administrator role in access.admin_roles".into(),
        });
    }
    if let Some(g) = &conf.admin_group {
        if !valid_group_name(g.get_ref()) {
            return Err(spans.err(g.span(), "access.admin_group is not a valid group name"));
        }
        access.admin_group = Some(g.get_ref().clone());
    }
    for (ty, t) in conf.types {
        if !types.contains(ty.as_str()) {
            return Err(spans.err(
                t.span(),
                format!("access.types.{ty}: there is no account type `{ty}` in [types]"),
            ));
        }
        let t = t.into_inner();
        let mut out = TypeAccess::default();
        for (role, groups) in t.grants {
            let role_known = known_roles.contains(role.as_str());
            for g in groups {
                let at = || g.span();
                if !role_known {
                    return Err(spans.err(
                        at(),
                        format!("access.types.{ty}.grants names the role `{role}`, which is not a role of [baseline]"),
                    ));
                }
                let name = g.get_ref();
                if !valid_group_name(&fill_group(name, "n", "a")) {
                    return Err(spans.err(
                        at(),
                        format!(
                            "access.types.{ty}.grants.{role}: `{name}` is not a valid group name"
                        ),
                    ));
                }
                if access.is_admin_role(&role)
                    && access.admin_group.as_deref() != Some(name.as_str())
                {
                    return Err(spans.err(
                        at(),
                        format!(
                            "access.types.{ty}.grants.{role} grants `{role}` to `{name}`: only the admin group ({}) may hold {role}",
                            access.admin_group.as_deref().map(|g| format!("`{g}`")).unwrap_or_else(|| "none is set: access.admin_group".into())
                        ),
                    ));
                }
                out.grants.push((role.clone(), name.clone()));
            }
        }
        for (role, pattern) in t.may_add {
            if !known_roles.contains(role.as_str()) {
                return Err(spans.err(
                    pattern.span(),
                    format!("access.types.{ty}.may_add names the role `{role}`, which is not a role of [baseline]"),
                ));
            }
            if access.is_admin_role(&role) {
                return Err(spans.err(
                    pattern.span(),
                    format!("access.types.{ty}.may_add.{role}: a declaration may never add groups to an admin role"),
                ));
            }
            let filled = pattern
                .get_ref()
                .replace("{name}", "n")
                .replace("{alias}", "a");
            if let Err(e) = regex::Regex::new(&filled) {
                return Err(spans.err(
                    pattern.span(),
                    format!("access.types.{ty}.may_add.{role} is not a valid regex: {e}"),
                ));
            }
            out.may_add.insert(role, pattern.into_inner());
        }
        access.types.insert(ty, out);
    }
    let ic = conf.identity_center;
    if let Some(p) = ic.permission_set_prefix {
        if p.get_ref().is_empty() {
            return Err(spans.err(
                p.span(),
                "access.identity_center.permission_set_prefix is empty: orgvend tells its permission sets by it",
            ));
        }
        access.identity_center.permission_set_prefix = p.get_ref().clone();
        for &role in &roles {
            let name = access.permission_set_name(role);
            if !valid_permission_set_name(&name) {
                return Err(spans.err(p.span(), format!("the permission set of `{role}` would be `{name}`: Identity Center allows 1–32 of letters, digits and _+=,.@-")));
            }
        }
    }
    for &role in &roles {
        let name = access.permission_set_name(role);
        if access.provider == Provider::IdentityCenter && !valid_permission_set_name(&name) {
            return Err(PolicyError {
                at: Some(Loc::new(spans.file, 1, 1)),
                message: format!(
                    "the permission set of the role `{role}` would be `{name}`: Identity Center allows 1–32 of letters, digits and _+=,.@- (shorten the role or access.identity_center.permission_set_prefix)"
                ),
            });
        }
        if access.provider == Provider::Okta
            && !role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(PolicyError {
                at: Some(Loc::new(spans.file, 1, 1)),
                message: format!(
                    "the role `{role}` cannot be named in an Okta group for the AWS app's group filter: use letters, digits, _ and -"
                ),
            });
        }
    }
    if let Some(d) = ic.session_duration {
        if !valid_session_duration(d.get_ref()) {
            return Err(spans.err(d.span(), "access.identity_center.session_duration: use an ISO-8601 duration of 1 to 12 hours, like \"PT8H\""));
        }
        access.identity_center.session_duration = d.into_inner();
    }
    access.identity_center.create_groups = ic.create_groups;
    if let Some(g) = conf.okta.group_name {
        let t = g.get_ref();
        if !t.contains("{role}") || !t.contains("{account_id}") {
            return Err(spans.err(
                g.span(),
                "access.okta.group_name must contain {role} and {account_id}: the AWS app's group filter reads both from the group's name",
            ));
        }
        access.okta.group_name = g.into_inner();
    }
    Ok(access)
}
