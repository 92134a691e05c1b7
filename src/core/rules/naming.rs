//! Rules `type.known` and `naming.*`: the account type is one the policy knows, and the name
//! and alias follow that type's convention.

use super::{Policy, Violation};
use crate::core::decl::Declarations;

pub(super) fn check_naming(policy: &Policy, decls: &Declarations, out: &mut Vec<Violation>) {
    let known = || {
        policy
            .types
            .keys()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for a in &decls.accounts {
        let base_key = a.base_key.as_deref().unwrap_or(&a.key);
        let Some(account_type) = a.account_type() else {
            continue;
        };
        let type_at = &a.account_type.as_ref().expect("a type has a field").at;
        let Some(rules) = policy.type_rules(account_type) else {
            out.push(Violation::error(
                "type.known",
                type_at,
                base_key,
                format!(
                    "account type `{account_type}` of `{}` is not one of {}",
                    a.label(),
                    known()
                ),
                format!("set `account_type` to one of {}", known()),
            ));
            continue;
        };
        if let (Some(name), Some(pattern), Some(f)) = (a.name(), &rules.name_pattern, &a.name)
            && !pattern.is_match(name)
        {
            out.push(Violation::error(
                "naming.name",
                &f.at,
                &a.key,
                format!(
                    "account name `{name}` does not follow the naming of `{account_type}` accounts"
                ),
                format!("name it to match `{}`", display_pattern(pattern.as_str())),
            ));
        }
        if let (Some(alias), Some(pattern), Some(f)) = (a.alias(), &rules.alias_pattern, &a.alias)
            && !pattern.is_match(alias)
        {
            out.push(Violation::error(
                    "naming.alias",
                    &f.at,
                    base_key,
                    format!("account alias `{alias}` does not follow the naming of `{account_type}` accounts"),
                    format!("choose an alias matching `{}`", display_pattern(pattern.as_str())),
                ));
        }
        if policy.alias_equals_name
            && let (Some(name), Some(alias), Some(f)) = (a.name(), a.alias(), &a.alias)
            && name != alias
        {
            out.push(Violation::error(
                "naming.alias-matches-name",
                &f.at,
                base_key,
                format!("account alias `{alias}` differs from the account name `{name}`"),
                format!("set `account_alias = \"{name}\"`"),
            ));
        }
    }
}

/// The pattern as the policy author wrote it, without the anchors orgvend added.
pub(super) fn display_pattern(anchored: &str) -> &str {
    anchored
        .strip_prefix("^(?:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or(anchored)
}
