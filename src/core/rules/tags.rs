//! Rule `tags.required`: each account carries the tags its type requires, with a value.

use super::{Policy, Violation};
use crate::core::decl::Declarations;

pub(super) fn check_tags(policy: &Policy, decls: &Declarations, out: &mut Vec<Violation>) {
    for a in &decls.accounts {
        let Some(rules) = a.account_type().and_then(|t| policy.type_rules(t)) else {
            continue;
        };
        if rules.required_tags.is_empty() {
            continue;
        }
        let Some(tags) = a.tags() else { continue }; // unknown tags: value.tags reports it
        let missing: Vec<&str> = rules
            .required_tags
            .iter()
            .filter(|k| !tags.iter().any(|(t, v)| t == k && !v.trim().is_empty()))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            continue;
        }
        let (at, module) = match (&a.tags, a.base.map(|b| decls.module(b))) {
            (Some(f), _) => (&f.at, a.base_key.as_deref().unwrap_or(&a.key)),
            (None, Some(base)) => (&base.at, base.key.as_str()),
            (None, None) => (&a.at, a.key.as_str()),
        };
        let list = missing
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Violation::error(
            "tags.required",
            at,
            module,
            format!(
                "`{}` accounts need the tag{} {list}; `{}` lacks {}",
                a.account_type().unwrap_or_default(),
                if missing.len() > 1 { "s" } else { "" },
                a.label(),
                if missing.len() > 1 { "them" } else { "it" }
            ),
            format!(
                "add {} to the tags of module `{module}`",
                missing
                    .iter()
                    .map(|k| format!("{k} = \"...\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
}
