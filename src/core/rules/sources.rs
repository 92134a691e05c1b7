//! Rules `source.*`: every module comes from an allowed source, account and base modules pin
//! a ref (matching `ref_pattern` where set), and no account module uses `count`/`for_each`,
//! which would make one declaration many accounts.

use super::{Policy, Violation};
use crate::core::decl::{Declarations, ModuleKind, same_address};

pub(super) fn check_sources(policy: &Policy, decls: &Declarations, out: &mut Vec<Violation>) {
    for m in &decls.modules {
        let Some(source) = &m.source else {
            out.push(Violation::error(
                "source.missing",
                &m.at,
                &m.key,
                format!("module `{}` has no literal `source`", m.key),
                "give the module a `source = \"...\"` string".into(),
            ));
            continue;
        };
        match m.kind {
            ModuleKind::Other => {
                if !policy
                    .allowed_sources
                    .iter()
                    .any(|a| same_address(a, &source.address))
                {
                    out.push(Violation::error(
                        "source.allowed",
                        &source.at,
                        &m.key,
                        format!(
                            "module `{}` uses source `{}`, which the policy does not allow",
                            m.key, source.address
                        ),
                        allowed_fix(policy),
                    ));
                }
            }
            ModuleKind::Account | ModuleKind::Base => {
                match &source.reference {
                    None if policy.require_ref => out.push(Violation::error(
                        "source.pinned",
                        &source.at,
                        &m.key,
                        format!("module `{}` does not pin a ref", m.key),
                        format!("append `?ref=<release tag>` to `{}`", source.address),
                    )),
                    Some(r) => {
                        if let Some(pattern) = &policy.ref_pattern
                            && !pattern.is_match(r)
                        {
                            out.push(Violation::error(
                                "source.pinned",
                                &source.at,
                                &m.key,
                                format!(
                                    "module `{}` pins ref `{r}`, which is not a release ref",
                                    m.key
                                ),
                                format!(
                                    "pin a ref matching `{}`",
                                    super::naming::display_pattern(pattern.as_str())
                                ),
                            ));
                        }
                    }
                    None => {}
                }
                for meta in ["count", "for_each"] {
                    if let Some(f) = m.attr(meta) {
                        out.push(Violation::error(
                            "source.meta-argument",
                            &f.at,
                            &m.key,
                            format!("module `{}` uses `{meta}`; each account is declared by its own pair of blocks", m.key),
                            format!("remove `{meta}` and write one module pair per account"),
                        ));
                    }
                }
            }
        }
    }
}

fn allowed_fix(policy: &Policy) -> String {
    let mut all: Vec<&str> = policy.sources.account.iter().map(String::as_str).collect();
    all.extend(policy.sources.base.iter().map(String::as_str));
    all.extend(policy.allowed_sources.iter().map(String::as_str));
    format!("use one of: {}", all.join(", "))
}
