//! `orgvend import`: the accounts an organization has and the repository does not declare,
//! written as declarations in the repository's style by the same generator as `orgvend new`,
//! each with `adopt = "<id>"` (the review shows "will adopt <id>"). What an account breaks
//! in the policy is written above its blocks as comments, for the MR that brings it in.

use super::{Request, generate};
use crate::core::decl::{self, Declarations};
use crate::core::model::SourceFile;
use crate::core::policy::Policy;
use serde::Serialize;

/// An account as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
    /// Its OU as a path from the root (`/Clients`); `/` at the root.
    pub ou: String,
    pub tags: Vec<(String, String)>,
    /// The address an email change awaits its one-time code for (orgvend started it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_email: Option<String>,
}

/// What one import wrote and left.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    /// The files written, with their content before and after (`before` empty when new).
    #[serde(skip)]
    pub files: Vec<(String, String, String)>,
    /// (account id, name, file, what it breaks).
    pub written: Vec<(String, String, String, Vec<String>)>,
    /// (account id, name, why not).
    pub skipped: Vec<(String, String, String)>,
    /// How many of `skipped` should have been declared (no type fits, the generator
    /// refused); the management, suspended and closing accounts never are.
    pub undeclarable: usize,
}

/// Declares every account of `existing` that `files` do not: by id (`adopt`) and by email.
/// `default_type` is the type of an account no type's OU or name pattern claims; `file`
/// puts them all in one file.
pub fn import(
    policy: &Policy,
    files: &[SourceFile],
    existing: &[Existing],
    management_id: &str,
    default_type: Option<&str>,
    file: Option<&str>,
) -> Imported {
    let mut files = files.to_vec();
    let mut decls = decl::read(&files, &policy.sources);
    let mut out = Imported::default();
    let mut sorted: Vec<&Existing> = existing.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    for a in sorted {
        let skip = |why: &str| (a.id.clone(), a.name.clone(), why.to_string());
        if a.id == management_id {
            out.skipped
                .push(skip("the management account: not a member orgvend vends"));
            continue;
        }
        if a.status != "ACTIVE" {
            out.skipped
                .push(skip(&format!("{}: not an account to declare", a.status)));
            continue;
        }
        if declared(&decls, a) {
            continue;
        }
        let Some(account_type) = type_of(policy, a).or(default_type.map(str::to_string)) else {
            out.undeclarable += 1;
            out.skipped.push(skip(&format!(
                "no account type's OU or name pattern fits it (its OU is `{}`): pass --type",
                a.ou
            )));
            continue;
        };
        let req = Request {
            account_type,
            name: a.name.clone(),
            email: Some(a.email.clone()),
            tags: a
                .tags
                .iter()
                .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("aws:"))
                .cloned()
                .collect(),
            file: file.map(str::to_string),
            adopt: Some(a.id.clone()),
            ..Request::default()
        };
        match generate(policy, &files, &decls, &req) {
            Ok(g) => {
                match out.files.iter_mut().find(|(p, _, _)| *p == g.path) {
                    Some(f) => f.2 = g.after.clone(),
                    None => out
                        .files
                        .push((g.path.clone(), g.before.clone(), g.after.clone())),
                }
                files.retain(|f| f.path != g.path);
                files.push(SourceFile::new(g.path.clone(), g.after.clone()));
                decls = decl::read(&files, &policy.sources);
                out.written
                    .push((a.id.clone(), a.name.clone(), g.path.clone(), g.violations));
            }
            Err(problems) => {
                out.undeclarable += 1;
                out.skipped.push(skip(
                    &problems
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                ));
            }
        }
    }
    out
}

/// Whether the repository declares the account: it adopts its id, or has its email.
fn declared(decls: &Declarations, a: &Existing) -> bool {
    decls.accounts.iter().any(|d| {
        d.adopt() == Some(a.id.as_str())
            || d.email().is_some_and(|e| e.eq_ignore_ascii_case(&a.email))
    })
}

/// The type whose OU the account is in, else the only type whose name pattern fits it.
fn type_of(policy: &Policy, a: &Existing) -> Option<String> {
    if let Some((t, _)) = policy
        .types
        .iter()
        .find(|(_, r)| r.ou.eq_ignore_ascii_case(&a.ou))
    {
        return Some(t.clone());
    }
    let fits: Vec<&String> = policy
        .types
        .iter()
        .filter(|(_, r)| r.name_pattern.as_ref().is_some_and(|p| p.is_match(&a.name)))
        .map(|(t, _)| t)
        .collect();
    (fits.len() == 1).then(|| fits[0].clone())
}
