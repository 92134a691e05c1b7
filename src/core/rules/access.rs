//! Rules `access.*`: the groups a declaration adds (`access = { <role> = ["<group>"] }`)
//! stay within what its account type allows, and no group but the policy's admin group ever
//! holds an admin role. What the type itself grants is checked when the policy loads.

use super::Violation;
use crate::core::decl::{Account, Declarations};
use crate::core::policy::access::{fill_group, valid_group_name};
use crate::core::policy::{Policy, Provider};
use std::collections::HashMap;

pub(super) fn check_access(policy: &Policy, decls: &Declarations, out: &mut Vec<Violation>) {
    // The type's grants, with the account's name filled in, must still be group names.
    if policy.access.provider != Provider::None {
        for a in &decls.accounts {
            let at = a.name.as_ref().map(|f| &f.at).unwrap_or(&a.at);
            for g in crate::core::plan::grants(policy, a) {
                if !g.declared && !valid_group_name(&g.group) {
                    out.push(Violation::error(
                        "access.group",
                        at,
                        &a.key,
                        format!("the account's name makes the group `{}` (granted `{}` by its type), which is not a group name orgvend accepts", g.group, g.role),
                        "use a name without quotes, backslashes, `*`, `?` or backticks".into(),
                    ));
                }
            }
        }
    }
    for a in &decls.accounts {
        let Some(field) = &a.access else { continue };
        let at = &field.at;
        let Some(added) = a.added_access() else {
            out.push(Violation::error(
                "access.value",
                at,
                &a.key,
                "`access` is not a map of roles to lists of group names".into(),
                "write it as `access = { ReadOnly = [\"<group>\"] }`, with literal strings".into(),
            ));
            continue;
        };
        if policy.access.provider == Provider::None && !added.is_empty() {
            out.push(Violation::error(
                "access.provider",
                at,
                &a.key,
                "`access` adds groups, but the policy grants no access (`access.provider` is not set)".into(),
                "remove `access`, or ask Infrastructure to choose an access provider in the policy".into(),
            ));
            continue;
        }
        // each role's pattern made once for the account, not once for each group
        let mut patterns = HashMap::new();
        for (role, group) in added {
            if let Some(v) = check_one(policy, a, &role, &group, &mut patterns) {
                out.push(Violation::error(v.0, at, &a.key, v.1, v.2));
            }
        }
    }
}

/// The rule a declared grant breaks, if any: (rule, message, fix).
fn check_one(
    policy: &Policy,
    a: &Account,
    role: &str,
    group: &str,
    patterns: &mut HashMap<String, Option<regex::Regex>>,
) -> Option<(&'static str, String, String)> {
    let access = &policy.access;
    if !policy.baseline.roles.iter().any(|r| r.name == role) {
        let roles: Vec<&str> = policy
            .baseline
            .roles
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        return Some((
            "access.role",
            format!("`access` names the role `{role}`, which accounts do not have"),
            format!("use one of {}", roles.join(", ")),
        ));
    }
    if !valid_group_name(group) {
        return Some((
            "access.group",
            format!("`{group}` is not a group name orgvend accepts"),
            "use 1–128 printable characters without quotes, backslashes, `*`, `?` or backticks"
                .into(),
        ));
    }
    if access.is_admin_role(role) {
        // only the type grants an admin role: a declaration may name the admin group there
        // only where its type already does (then it adds nothing)
        let ty = a.account_type().unwrap_or("");
        let granted = access
            .types
            .get(ty)
            .is_some_and(|t| t.grants.iter().any(|(r, g)| r == role && g == group));
        if access.admin_group.as_deref() == Some(group) && granted {
            return None;
        }
        return Some((
            "access.admin",
            format!(
                "`access` grants `{role}` to `{group}`: only {} may hold `{role}`",
                access
                    .admin_group
                    .as_deref()
                    .map(|g| format!("the admin group `{g}`"))
                    .unwrap_or_else(|| "no group".into())
            ),
            format!(
                "grant `{group}` a role without full administrator access (BoundedAdmin, PowerUser, ReadOnly, ViewOnly)"
            ),
        ));
    }
    let (name, alias) = (a.name().unwrap_or(""), a.alias().unwrap_or(""));
    let ty = a.account_type().unwrap_or("");
    let allowed = access
        .types
        .get(ty)
        .and_then(|t| t.may_add.get(role))
        .map(|p| {
            patterns
                .entry(role.to_string())
                .or_insert_with(|| pattern(p, name, alias))
                .clone()
        });
    match allowed {
        None => Some((
            "access.not_allowed",
            format!("accounts of type `{ty}` may not add groups to `{role}`"),
            format!(
                "remove `{group}` from `access`, or ask Infrastructure to allow it in the policy (access.types.{ty}.may_add)"
            ),
        )),
        Some(re) if !re.as_ref().is_some_and(|re| re.is_match(group)) => Some((
            "access.not_allowed",
            format!("`{group}` is not a group accounts of type `{ty}` may add to `{role}`"),
            format!("use a group matching `{}`", access.types[ty].may_add[role]),
        )),
        Some(_) => None,
    }
}

/// The whole-name regex of a `may_add` pattern for this account (`{name}` and `{alias}`
/// filled in, escaped).
fn pattern(p: &str, name: &str, alias: &str) -> Option<regex::Regex> {
    let filled = fill_group(p, &regex::escape(name), &regex::escape(alias));
    regex::Regex::new(&format!("^(?:{filled})$")).ok()
}
