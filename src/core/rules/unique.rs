//! Rules `unique.*`: module keys, account names, aliases and emails are each used once in the
//! repository. Emails and names compare case-insensitively, as AWS does for emails.

use super::Violation;
use crate::core::decl::{Declarations, Field};
use crate::core::model::Loc;
use std::borrow::Cow;
use std::collections::HashMap;

pub(super) fn check_unique(decls: &Declarations, out: &mut Vec<Violation>) {
    let mut keys: HashMap<&str, &Loc> = HashMap::with_capacity(decls.modules.len());
    for m in &decls.modules {
        if let Some(first) = keys.get(m.key.as_str()) {
            out.push(Violation::error(
                "unique.module-key",
                &m.at,
                &m.key,
                format!("module key `{}` is already used at {first}", m.key),
                "give each module its own key".into(),
            ));
        } else {
            keys.insert(&m.key, &m.at);
        }
    }
    let n = decls.accounts.len();
    let (mut names, mut aliases, mut emails) = (
        HashMap::with_capacity(n),
        HashMap::with_capacity(n),
        HashMap::with_capacity(n),
    );
    for a in &decls.accounts {
        let base_key = a.base_key.as_deref().unwrap_or(&a.key);
        duplicate(
            &mut names,
            &a.name,
            true,
            out,
            "unique.name",
            &a.key,
            "account name",
        );
        duplicate(
            &mut aliases,
            &a.alias,
            false,
            out,
            "unique.alias",
            base_key,
            "account alias",
        );
        duplicate(
            &mut emails,
            &a.email,
            true,
            out,
            "unique.email",
            &a.key,
            "email",
        );
    }
}

fn duplicate<'a>(
    seen: &mut HashMap<Cow<'a, str>, (&'a str, &'a Loc)>,
    field: &'a Option<Field>,
    fold_case: bool,
    out: &mut Vec<Violation>,
    rule: &str,
    module: &'a str,
    what: &str,
) {
    let Some(f) = field else { return };
    let Some(value) = f.as_str() else { return };
    // borrowed when folding cannot change it (lower-case ASCII, as names and emails nearly
    // always are)
    let unchanged = value.is_ascii() && !value.bytes().any(|b| b.is_ascii_uppercase());
    let key = match fold_case && !unchanged {
        true => Cow::Owned(value.to_lowercase()),
        false => Cow::Borrowed(value),
    };
    match seen.get(&key) {
        Some((other, at)) => out.push(Violation::error(
            rule,
            &f.at,
            module,
            format!("{what} `{value}` is already used by module `{other}` at {at}"),
            format!(
                "choose {} {what} no other account uses",
                if what.starts_with(['a', 'e']) {
                    "an"
                } else {
                    "a"
                }
            ),
        )),
        None => {
            seen.insert(key, (module, &f.at));
        }
    }
}
