//! Rules `email.*`: the account email follows the organisation's convention (domain, pattern,
//! or an exact template such as `aws+{name}@example.com`).

use super::{Policy, Violation};
use crate::core::decl::Declarations;

/// `base`: the declarations before the change. An account (the same module) that keeps the
/// address it already had is not held to the template (its name may change; its email
/// cannot).
pub(super) fn check_email(
    policy: &Policy,
    decls: &Declarations,
    base: Option<&Declarations>,
    out: &mut Vec<Violation>,
) {
    // module key → the email its account had
    let kept: std::collections::HashMap<&str, String> = base
        .map(|b| {
            b.accounts
                .iter()
                .filter_map(|a| Some((a.key.as_str(), a.email()?.to_lowercase())))
                .collect()
        })
        .unwrap_or_default();
    for a in &decls.accounts {
        let (Some(email), Some(field)) = (a.email(), &a.email) else {
            continue;
        };
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if !policy.email_domains.is_empty() && !policy.email_domains.contains(&domain) {
            out.push(Violation::error(
                "email.domain",
                &field.at,
                &a.key,
                format!(
                    "email `{email}` of account `{}` is not in an allowed domain",
                    a.label()
                ),
                format!("use an address at {}", policy.email_domains.join(" or ")),
            ));
        }
        if let Some(pattern) = &policy.email_pattern
            && !pattern.is_match(email)
        {
            out.push(Violation::error(
                "email.pattern",
                &field.at,
                &a.key,
                format!(
                    "email `{email}` of account `{}` does not follow the email convention",
                    a.label()
                ),
                format!(
                    "use an address matching `{}`",
                    super::naming::display_pattern(pattern.as_str())
                ),
            ));
        }
        if let Some(template) = &policy.email_template
            && kept.get(a.key.as_str()) != Some(&email.to_lowercase())
            && let Some(expected) = expected_email(template, a)
            && !expected.eq_ignore_ascii_case(email)
        {
            out.push(Violation::error(
                "email.template",
                &field.at,
                &a.key,
                format!(
                    "email `{email}` of account `{}` is not the conventional `{expected}`",
                    a.label()
                ),
                format!("set `email = \"{expected}\"`"),
            ));
        }
    }
}

/// The template filled in; `None` when a placeholder's value is unknown (reported elsewhere).
fn expected_email(template: &str, a: &crate::core::decl::Account) -> Option<String> {
    let mut out = template.to_string();
    for (placeholder, value) in [
        ("{name}", a.name()),
        ("{alias}", a.alias()),
        ("{type}", a.account_type()),
    ] {
        if out.contains(placeholder) {
            out = out.replace(placeholder, value?);
        }
    }
    Some(out)
}
