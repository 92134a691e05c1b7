//! Pairing: each account module with the base module whose `account_id` points at it, and
//! the account built from the two.

use super::{
    ACCESS, ACCOUNT_ID, ACCOUNT_TYPE, ADOPT, ALIAS, Account, Declarations, EMAIL, Field,
    ModuleKind, NAME, PairingIssue, ROLE_NAME, TAGS, Value,
};
use std::collections::HashMap;

pub(super) fn pair(decls: &mut Declarations) {
    let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(decls.modules.len());
    for (i, m) in decls.modules.iter().enumerate() {
        by_key.entry(m.key.as_str()).or_insert(i);
    }
    // each account module's base module, by index
    let mut base_of: Vec<Option<usize>> = vec![None; decls.modules.len()];
    let mut issues = Vec::new();
    for (b, m) in decls.modules.iter().enumerate() {
        if m.kind != ModuleKind::Base {
            continue;
        }
        let target = match m.attr(ACCOUNT_ID).map(|f| &f.value) {
            Some(Value::ModuleRef(r)) => r,
            _ => {
                issues.push(PairingIssue::NoAccountRef { base: b });
                continue;
            }
        };
        match by_key.get(target.module.as_str()) {
            None => issues.push(PairingIssue::MissingTarget {
                base: b,
                target: target.to_string(),
            }),
            Some(&t) if decls.modules[t].kind != ModuleKind::Account => {
                issues.push(PairingIssue::NotAnAccount { base: b, target: t })
            }
            Some(&t) => match base_of[t] {
                Some(first) => issues.push(PairingIssue::ExtraBase {
                    account: t,
                    base: b,
                    first,
                }),
                None => base_of[t] = Some(b),
            },
        }
    }
    // each account is built from its two modules alone: on every core, in order
    let account_modules: Vec<usize> = (0..decls.modules.len())
        .filter(|&i| decls.modules[i].kind == ModuleKind::Account)
        .collect();
    let modules = &decls.modules;
    let accounts: Vec<Account> = crate::core::par::map(&account_modules, 2_000, |&i| {
        let m = &modules[i];
        let base = base_of[i].map(|b| &modules[b]);
        let from_base = |name: &str| base.and_then(|b| b.attr(name)).cloned();
        Account {
            key: m.key.clone(),
            at: m.at.clone(),
            module: i,
            base: base_of[i],
            base_key: base.map(|b| b.key.clone()),
            name: m.attr(NAME).cloned(),
            email: m.attr(EMAIL).cloned(),
            role_name: m.attr(ROLE_NAME).cloned(),
            adopt: m.attr(ADOPT).cloned(),
            alias: from_base(ALIAS),
            account_type: from_base(ACCOUNT_TYPE),
            tags: merged_tags(m.attr(TAGS), base.and_then(|b| b.attr(TAGS))),
            access: from_base(ACCESS),
        }
    });
    for a in &accounts {
        if a.base.is_none() {
            issues.push(PairingIssue::NoBase { account: a.module });
        }
    }
    decls.accounts = accounts;
    decls.pairing = issues;
}

fn merged_tags(account: Option<&Field>, base: Option<&Field>) -> Option<Field> {
    match (account, base) {
        (None, None) => None,
        (Some(f), None) | (None, Some(f)) => Some(f.clone()),
        (Some(a), Some(b)) => {
            let value = match (&a.value, &b.value) {
                (Value::Map(x), Value::Map(y)) => {
                    let mut m = x.clone();
                    m.extend(y.clone());
                    Value::Map(m)
                }
                (Value::Map(_), other) | (other, _) => other.clone(),
            };
            Some(Field {
                value,
                at: b.at.clone(),
            })
        }
    }
}
