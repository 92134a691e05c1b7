//! Drift: what the target branch declares against what the organization has, account by
//! account, as a pure function. Each difference says what is declared, what exists, and how
//! it is fixed (the apply repairs what the declarations say; anything else needs an MR).
//! Here the organization's facts (existence, status, name, email, OU, tags); the facts inside
//! each account and its GitLab project are read by the bot (`bot::drift`) into the same items.

use crate::core::decl::Declarations;
use crate::core::policy::Policy;
use crate::core::request::import::Existing;
use serde::Serialize;
use std::collections::BTreeMap;

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Declared, but no such account exists (a refused or lost merge, one from before
    /// orgvend).
    Missing,
    /// Declared and exists, but suspended or closing.
    Status,
    /// The target branch declares the account otherwise than it was last applied (a merge
    /// the gate refused, or a push): nothing of it is repaired until an MR settles it.
    Unapplied,
    Name,
    Email,
    Ou,
    Tags,
    /// Inside the account: its alias.
    Alias,
    /// The SAML provider sign-in goes through.
    Saml,
    /// The permissions boundary's document.
    Boundary,
    /// An access role: missing, or its trust, boundary or policy.
    Role,
    StateBucket,
    LockTable,
    /// The GitLab instance as the account's OIDC provider.
    Oidc,
    /// A keyless CI role: missing, or its trust, boundary or policy.
    CiRole,
    /// The account's GitLab project: missing.
    Project,
    /// Protection of the project's master.
    Protection,
    /// The project's CI/CD variables.
    Variables,
    /// Exists, declared nowhere.
    Undeclared,
    /// Could not be read (an access denied inside the account, GitLab refusing): nothing
    /// about it is known this time.
    Unreadable,
}

impl Kind {
    /// Every kind, for metrics that show zeros.
    pub const ALL: [Kind; 20] = [
        Kind::Missing,
        Kind::Status,
        Kind::Unapplied,
        Kind::Name,
        Kind::Email,
        Kind::Ou,
        Kind::Tags,
        Kind::Alias,
        Kind::Saml,
        Kind::Boundary,
        Kind::Role,
        Kind::StateBucket,
        Kind::LockTable,
        Kind::Oidc,
        Kind::CiRole,
        Kind::Project,
        Kind::Protection,
        Kind::Variables,
        Kind::Undeclared,
        Kind::Unreadable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Status => "status",
            Kind::Unapplied => "unapplied",
            Kind::Name => "name",
            Kind::Email => "email",
            Kind::Ou => "ou",
            Kind::Tags => "tags",
            Kind::Alias => "alias",
            Kind::Saml => "saml",
            Kind::Boundary => "boundary",
            Kind::Role => "role",
            Kind::StateBucket => "state_bucket",
            Kind::LockTable => "lock_table",
            Kind::Oidc => "oidc",
            Kind::CiRole => "ci_role",
            Kind::Project => "project",
            Kind::Protection => "protection",
            Kind::Variables => "variables",
            Kind::Undeclared => "undeclared",
            Kind::Unreadable => "unreadable",
        }
    }

    /// Whether a repair (`/orgvend apply` on the drift issue, `orgvend apply --account`)
    /// puts it back: what the declarations already say of an account that exists. A missing
    /// account needs its merge through the gate; an email, a two-phase change; an
    /// undeclared account or an unapplied declaration, an MR.
    pub fn repairable(self) -> bool {
        !matches!(
            self,
            Kind::Missing
                | Kind::Status
                | Kind::Unapplied
                | Kind::Email
                | Kind::Undeclared
                | Kind::Unreadable
        )
    }
}

/// The fix of a difference a repair puts back.
pub const REPAIR: &str = "`/orgvend apply` on the drift issue (or `orgvend apply --account <name>`) puts it back as declared";

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: Kind,
    /// The declaration's account name (or AWS's, for an undeclared account).
    pub account: String,
    /// The AWS account id, where one exists.
    pub account_id: Option<String>,
    /// Where it is declared (`file:line`).
    pub at: Option<String>,
    pub declared: String,
    pub existing: String,
    pub fix: String,
}

/// Every difference between `decls` (read with `policy`) and `existing`; the management
/// account is never undeclared drift. Sorted by account, then kind.
pub fn drift(
    policy: &Policy,
    decls: &Declarations,
    existing: &[Existing],
    management_id: &str,
) -> Vec<Item> {
    let mut out = Vec::new();
    let mut matched: Vec<&str> = Vec::new();
    for (d, found) in decls.accounts.iter().zip(found(decls, existing)) {
        let name = d.label().to_string();
        let at = Some(d.at.to_string());
        let item = |kind, declared: String, existing: String, fix: &str| Item {
            kind,
            account: name.clone(),
            account_id: found.map(|e| e.id.clone()),
            at: at.clone(),
            declared,
            existing,
            fix: fix.to_string(),
        };
        let Some(e) = found else {
            out.push(item(
                Kind::Missing,
                d.email().unwrap_or_default().to_string(),
                "no account with this email (or adopted id)".into(),
                "the merge that declared it was never applied: `orgvend apply --mr <N>` applies it through the gate; or remove the declaration in an MR",
            ));
            continue;
        };
        matched.push(&e.id);
        if e.status != "ACTIVE" {
            out.push(item(
                Kind::Status,
                "ACTIVE".into(),
                e.status.clone(),
                "remove the declaration in an MR (the account is closing or closed), or reopen it with AWS Support",
            ));
            continue;
        }
        if let Some(n) = d.name()
            && n != e.name
        {
            out.push(item(
                Kind::Name,
                n.to_string(),
                e.name.clone(),
                "a repair renames the account as declared (Account Management API); or declare the name AWS has, in an MR",
            ));
        }
        if let Some(m) = d.email()
            && !m.eq_ignore_ascii_case(&e.email)
        {
            match &e.pending_email {
                Some(p) if p.eq_ignore_ascii_case(m) => out.push(item(
                    Kind::Email,
                    m.to_string(),
                    format!("{} (pending: AWS mailed a one-time code to {p})", e.email),
                    &format!(
                        "an operator who has the code completes it: `orgvend accept-email --account-id {} --email {p}`",
                        e.id
                    ),
                )),
                _ => out.push(item(
                    Kind::Email,
                    m.to_string(),
                    e.email.clone(),
                    "an email changes only through an allowed two-phase update (its MR applied); or declare the address AWS has",
                )),
            }
        }
        if let Some(ou) = d
            .account_type()
            .and_then(|t| policy.type_rules(t))
            .map(|r| r.ou.clone())
            && !ou.eq_ignore_ascii_case(&e.ou)
        {
            out.push(item(
                Kind::Ou,
                ou,
                e.ou.clone(),
                "a repair moves the account to its type's OU; or change its type in an MR",
            ));
        }
        if let Some(declared) = d.owned_tags() {
            let have: BTreeMap<String, String> = e
                .tags
                .iter()
                .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("aws:"))
                .cloned()
                .collect();
            if declared != have {
                out.push(item(
                    Kind::Tags,
                    tags_text(&declared),
                    tags_text(&have),
                    "a repair tags the account as declared; or declare the tags it has, in an MR",
                ));
            }
        }
    }
    for e in existing {
        if e.id == management_id || matched.contains(&e.id.as_str()) || e.status != "ACTIVE" {
            continue;
        }
        out.push(Item {
            kind: Kind::Undeclared,
            account: e.name.clone(),
            account_id: Some(e.id.clone()),
            at: None,
            declared: "nothing".into(),
            existing: format!("{} <{}> in {}", e.name, e.email, e.ou),
            fix: "declare it with `orgvend import` (adopt) in an MR, or close it".into(),
        });
    }
    out.sort_by(|a, b| (&a.account, a.kind).cmp(&(&b.account, b.kind)));
    out
}

/// The existing account of each declaration, in order: the adopted id, else the email,
/// else the email an email change awaits its code for.
pub fn found<'e>(decls: &Declarations, existing: &'e [Existing]) -> Vec<Option<&'e Existing>> {
    decls
        .accounts
        .iter()
        .map(|d| {
            existing
                .iter()
                .find(|e| d.adopt() == Some(e.id.as_str()))
                .or_else(|| {
                    existing
                        .iter()
                        .find(|e| d.email().is_some_and(|m| m.eq_ignore_ascii_case(&e.email)))
                })
                .or_else(|| {
                    existing.iter().find(|e| {
                        d.email().is_some_and(|m| {
                            e.pending_email
                                .as_deref()
                                .is_some_and(|p| p.eq_ignore_ascii_case(m))
                        })
                    })
                })
        })
        .collect()
}

/// Each declaration whose account exists and is active, with the account's id: what is
/// read inside accounts, and what a repair may run for.
pub fn present(decls: &Declarations, existing: &[Existing]) -> Vec<(usize, String)> {
    found(decls, existing)
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.filter(|e| e.status == "ACTIVE")
                .map(|e| (i, e.id.clone()))
        })
        .collect()
}

fn tags_text(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return "none".into();
    }
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drift as text for a terminal, one difference per paragraph.
pub fn text(items: &[Item]) -> String {
    if items.is_empty() {
        return "No drift: the organization is what the declarations say.\n".into();
    }
    let mut out = format!("{} difference(s):\n", items.len());
    for i in items {
        out.push_str(&format!(
            "\n{} {}{}{}\n  declared: {}\n  exists:   {}\n  fix:      {}\n",
            i.kind.name(),
            crate::core::render::plain(&i.account),
            i.account_id
                .as_deref()
                .map(|id| format!(" ({id})"))
                .unwrap_or_default(),
            i.at.as_deref()
                .map(|a| format!(" at {a}"))
                .unwrap_or_default(),
            crate::core::render::plain(&i.declared),
            crate::core::render::plain(&i.existing),
            i.fix
        ));
    }
    out
}

/// Drift as Markdown (the drift issue's body): every value in a code span.
pub fn markdown(items: &[Item]) -> String {
    use crate::core::render::escape::cell;
    if items.is_empty() {
        return "✅ No drift: the organization is what the declarations say.\n".into();
    }
    let mut out = format!(
        "### {} difference(s) between the declarations and the organization\n\n| kind | account | declared | exists | fix |\n|---|---|---|---|---|\n",
        items.len()
    );
    for i in items {
        out.push_str(&format!(
            "| {} | {}{} | {} | {} | {} |\n",
            i.kind.name(),
            cell(&i.account),
            i.account_id
                .as_deref()
                .map(|id| format!(" {}", cell(id)))
                .unwrap_or_default(),
            cell(&i.declared),
            cell(&i.existing),
            crate::core::render::inline(&i.fix).replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
