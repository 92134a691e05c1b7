//! The access steps of a change: for a new account, each role's entitlement and each grant;
//! for a changed one, the grants added and taken back, and its Okta groups renamed when the
//! names they carry change; before a close, every grant taken back.

use super::{FieldChange, Step, Target, fill};
use crate::core::decl::Value;
use crate::core::policy::{Access, Baseline, Provider};
use std::collections::HashSet;

/// A new account's entitlements (one per baseline role) and grants.
pub(super) fn granted(a: &Access, t: &Target, b: &Baseline) -> Vec<Step> {
    let mut steps: Vec<Step> = b.roles.iter().map(|r| entitlement(a, t, &r.name)).collect();
    steps.extend(t.grants.iter().map(|g| Step::Grant {
        provider: a.provider,
        role: g.role.clone(),
        group: g.group.clone(),
    }));
    steps
}

/// Before a close: every grant taken back (for Okta, the account's groups by name).
pub(super) fn revoke_all(a: &Access, t: &Target, b: &Baseline) -> Step {
    let groups = b.roles.iter().map(|r| group_name(a, t, &r.name)).collect();
    Step::RevokeAccess {
        provider: a.provider,
        groups,
    }
}

/// The steps of a change of the account's grants (`access`, or its type).
pub(super) fn changed(a: &Access, t: &Target, f: &FieldChange) -> Vec<Step> {
    if a.provider == Provider::None {
        return Vec::new();
    }
    let (before, after) = (grant_labels(&f.before), grant_labels(&f.after));
    let (was, is): (HashSet<_>, HashSet<_>) = (before.iter().collect(), after.iter().collect());
    let mut steps = Vec::new();
    for (role, group) in before.iter().filter(|g| !is.contains(g)) {
        steps.push(Step::Revoke {
            provider: a.provider,
            role: role.clone(),
            group: group.clone(),
        });
    }
    let mut entitled: HashSet<&str> = HashSet::new();
    for (role, group) in after.iter().filter(|g| !was.contains(g)) {
        if entitled.insert(role.as_str()) {
            steps.push(entitlement(a, t, role));
        }
        steps.push(Step::Grant {
            provider: a.provider,
            role: role.clone(),
            group: group.clone(),
        });
    }
    steps
}

/// Okta groups carry the account's alias (or name): when it changes, each role's group is
/// renamed (found by its old name), so a later close still finds it.
pub(super) fn renamed(a: &Access, t: &Target, b: &Baseline, fields: &[FieldChange]) -> Vec<Step> {
    if a.provider != Provider::Okta {
        return Vec::new();
    }
    let old = |field: &str, now: &str| {
        fields
            .iter()
            .find(|f| f.field == field)
            .and_then(|f| f.before.as_str().map(str::to_string))
            .unwrap_or_else(|| now.to_string())
    };
    let before = Target {
        alias: old("account_alias", &t.alias),
        name: old("name", &t.name),
        ..t.clone()
    };
    let mut steps = Vec::new();
    for role in b.roles.iter().map(|r| &r.name) {
        let (was, now) = (group_name(a, &before, role), group_name(a, t, role));
        if was != now {
            steps.push(Step::Entitlement {
                provider: a.provider,
                role: role.clone(),
                name: now,
                previous: Some(was),
            });
        }
    }
    steps
}

/// The entitlement step of a role: its permission set or its Okta group (`{account_id}`
/// filled in once the account exists).
pub(super) fn entitlement(a: &Access, t: &Target, role: &str) -> Step {
    Step::Entitlement {
        provider: a.provider,
        role: role.to_string(),
        name: group_name(a, t, role),
        previous: None,
    }
}

/// The permission set's name (Identity Center) or the account's group for the role (Okta).
fn group_name(a: &Access, t: &Target, role: &str) -> String {
    match a.provider {
        Provider::Okta => fill(&a.okta.group_name, t).replace("{role}", role),
        _ => a.permission_set_name(role),
    }
}

/// The grants a field change of `access` lists, as (role, group).
fn grant_labels(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::List(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|l| l.split_once(':'))
            .map(|(r, g)| (r.to_string(), g.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}
