//! Rules `pairing.*`: every account module has exactly one base module and every base module
//! points at a real account module through `account_id = module.<account>.<output>`.

use super::{Policy, Violation};
use crate::core::decl::{ACCOUNT_ID, Declarations, PairingIssue, Value};

pub(super) fn check_pairing(policy: &Policy, decls: &Declarations, out: &mut Vec<Violation>) {
    let output = &policy.account_id_output;
    for issue in &decls.pairing {
        let v = match issue {
            PairingIssue::NoBase { account } => {
                let m = decls.module(*account);
                Violation::error(
                    "pairing.no-base",
                    &m.at,
                    &m.key,
                    format!("account module `{}` has no base module", m.key),
                    format!(
                        "add a module with source `{}` and `account_id = module.{}.{output}`",
                        policy
                            .sources
                            .base
                            .first()
                            .map(String::as_str)
                            .unwrap_or("<base source>"),
                        m.key
                    ),
                )
            }
            PairingIssue::NoAccountRef { base } => {
                let m = decls.module(*base);
                let at = m.attr(ACCOUNT_ID).map(|f| &f.at).unwrap_or(&m.at);
                Violation::error(
                    "pairing.account-id",
                    at,
                    &m.key,
                    format!(
                        "base module `{}` does not set `account_id` to an account module's `{output}`",
                        m.key
                    ),
                    format!("set `account_id = module.<account module>.{output}`"),
                )
            }
            PairingIssue::MissingTarget { base, target } => {
                let m = decls.module(*base);
                let at = m.attr(ACCOUNT_ID).map(|f| &f.at).unwrap_or(&m.at);
                Violation::error(
                    "pairing.missing-account",
                    at,
                    &m.key,
                    format!(
                        "base module `{}` points at `{target}`, which does not exist",
                        m.key
                    ),
                    "point `account_id` at the account module this baseline belongs to".into(),
                )
            }
            PairingIssue::NotAnAccount { base, target } => {
                let m = decls.module(*base);
                let t = decls.module(*target);
                let at = m.attr(ACCOUNT_ID).map(|f| &f.at).unwrap_or(&m.at);
                Violation::error(
                    "pairing.not-an-account",
                    at,
                    &m.key,
                    format!(
                        "base module `{}` points at module `{}`, which is not an account module",
                        m.key, t.key
                    ),
                    "point `account_id` at the account module this baseline belongs to".into(),
                )
            }
            PairingIssue::ExtraBase {
                account,
                base,
                first,
            } => {
                let m = decls.module(*base);
                Violation::error(
                    "pairing.second-base",
                    &m.at,
                    &m.key,
                    format!(
                        "account `{}` already has base module `{}` at {}; `{}` is a second one",
                        decls.module(*account).key,
                        decls.module(*first).key,
                        decls.module(*first).at,
                        m.key
                    ),
                    "keep one base module per account".into(),
                )
            }
        };
        out.push(v);
    }
    // A pairing through another output (`module.x.arn`) would hand the baseline a wrong value.
    for a in &decls.accounts {
        let Some(base) = a.base.map(|b| decls.module(b)) else {
            continue;
        };
        if let Some(f) = base.attr(ACCOUNT_ID)
            && let Value::ModuleRef(r) = &f.value
            && &r.attr != output
        {
            out.push(Violation::error(
                "pairing.account-id",
                &f.at,
                &base.key,
                format!(
                    "base module `{}` uses `{r}`; the account id is `module.{}.{output}`",
                    base.key, r.module
                ),
                format!("set `account_id = module.{}.{output}`", r.module),
            ));
        }
    }
}
