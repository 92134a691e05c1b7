//! Rule `value.*`: the attributes orgvend needs are present, known offline, and of the
//! right type. Other rules skip a value this rule already reported.

use super::{Policy, Violation};
use crate::core::decl::{self, Account, Declarations, Field, Value};

pub(super) fn check_values(_policy: &Policy, decls: &Declarations, out: &mut Vec<Violation>) {
    for account in &decls.accounts {
        let module = decls.module(account.module);
        string(
            out,
            account,
            &module.key,
            &module.at,
            decl::NAME,
            &account.name,
            true,
        );
        string(
            out,
            account,
            &module.key,
            &module.at,
            decl::EMAIL,
            &account.email,
            true,
        );
        string(
            out,
            account,
            &module.key,
            &module.at,
            decl::ROLE_NAME,
            &account.role_name,
            false,
        );
        string(
            out,
            account,
            &module.key,
            &module.at,
            decl::ADOPT,
            &account.adopt,
            false,
        );
        let Some(base) = account.base.map(|b| decls.module(b)) else {
            continue; // pairing reports it; the base's fields are not this account's yet
        };
        string(
            out,
            account,
            &base.key,
            &base.at,
            decl::ALIAS,
            &account.alias,
            true,
        );
        string(
            out,
            account,
            &base.key,
            &base.at,
            decl::ACCOUNT_TYPE,
            &account.account_type,
            true,
        );
        if let Some(tags) = &account.tags {
            check_tags_value(out, &base.key, tags);
        }
    }
}

fn string(
    out: &mut Vec<Violation>,
    account: &Account,
    module: &str,
    module_at: &crate::core::model::Loc,
    attr: &str,
    field: &Option<Field>,
    required: bool,
) {
    let label = account.label();
    match field {
        None if required => out.push(Violation::error(
            "value.missing",
            module_at,
            module,
            format!("module `{module}` (account `{label}`) has no `{attr}`"),
            format!("add `{attr} = \"...\"` to module `{module}`"),
        )),
        None => {}
        Some(Field { value: Value::String(_), .. }) => {}
        Some(Field { value: Value::Unknown(why), at }) => out.push(Violation::error(
            "value.unknown",
            at,
            module,
            format!("`{attr}` of module `{module}` cannot be known before apply: {why}"),
            "write the value as a literal, or give the variable a default or a value in terraform.tfvars".into(),
        )),
        Some(Field { value, at }) => out.push(Violation::error(
            "value.type",
            at,
            module,
            format!("`{attr}` of module `{module}` is {}, not a string", value.kind()),
            format!("set `{attr}` to a quoted string"),
        )),
    }
}

fn check_tags_value(out: &mut Vec<Violation>, module: &str, tags: &Field) {
    let problem = match &tags.value {
        Value::Map(m) => {
            m.iter()
                .find(|(_, v)| v.template_text().is_none())
                .map(|(k, v)| match v {
                    Value::Unknown(why) => format!(
                        "tag `{k}` of module `{module}` cannot be known before apply: {why}"
                    ),
                    other => format!(
                        "tag `{k}` of module `{module}` is {}, not a string",
                        other.kind()
                    ),
                })
        }
        Value::Unknown(why) => Some(format!(
            "the tags of module `{module}` cannot be known before apply: {why}"
        )),
        other => Some(format!(
            "the tags of module `{module}` are {}, not a map",
            other.kind()
        )),
    };
    if let Some(message) = problem {
        out.push(Violation::error(
            "value.tags",
            &tags.at,
            module,
            message,
            "write tags as a map of strings: a literal `{ key = \"value\" }`, `var.tags` with a default, or `merge(...)` of those".into(),
        ));
    }
}
