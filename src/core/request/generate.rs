//! The generator behind `orgvend new` and requests by issue: a [`Request`] → the account's
//! module pair, written into the repository's files in their house style, checked by the
//! policy's own rules. It refuses (with every [`Problem`]) rather than write anything the
//! policy would block.
//!
//! What it derives from the policy: the full name (the request's name, or the type's prefix
//! and it, whichever fits `name_pattern`), the alias (the name), the email (`email.template`),
//! the module sources and their refs (`modules.account_ref`/`base_ref`, else the newest in
//! use). What it learns from the repository: see `style`.

use super::place::{literal_prefix, place, source_of};
use super::style;
use super::write::{Blocks, blocks, insert, keys};
use super::{
    MAX_PURPOSE, MAX_VALUE, MISSING_TAG, Problem, Request, char_name, check_group, check_tag, shown,
};
use crate::core::decl::{self, Account, Declarations};
use crate::core::model::SourceFile;
use crate::core::policy::Policy;
use crate::core::report::{self, AssessInput};
use crate::core::rules::Severity;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the generator wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// The file written, relative to the repository root.
    pub path: String,
    /// Its content before (empty for a new file) and after.
    #[serde(skip)]
    pub before: String,
    #[serde(skip)]
    pub after: String,
    pub new_file: bool,
    pub name: String,
    pub alias: String,
    pub email: String,
    pub account_type: String,
    pub account_key: String,
    pub base_key: String,
    /// The account's tags as Terraform will see them (defaults merged).
    pub tags: BTreeMap<String, String>,
    /// Groups added to the type's grants: (role, group).
    pub access: Vec<(String, String)>,
    /// 1-based lines of the new blocks in the file after.
    pub lines: (usize, usize),
    /// What an adopted account breaks (written above its blocks); empty otherwise.
    pub violations: Vec<String>,
}

impl Generated {
    /// The change as a unified diff with file headers.
    pub fn diff(&self) -> String {
        file_diff(&self.path, &self.before, &self.after, self.new_file)
    }
}

/// A file's change as a unified diff with `a/`/`b/` headers (`/dev/null` for a new file).
pub fn file_diff(path: &str, before: &str, after: &str, new_file: bool) -> String {
    let from = if new_file {
        "/dev/null".to_string()
    } else {
        format!("a/{path}")
    };
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&from, &format!("b/{path}"))
        .to_string()
}

/// Writes `req` into the repository whose files are `files` (already read into `decls` with
/// `policy.sources`), or says everything that stands in the way.
pub fn generate(
    policy: &Policy,
    files: &[SourceFile],
    decls: &Declarations,
    req: &Request,
) -> Result<Generated, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(e) = decls.parse_errors.first() {
        return Err(vec![Problem::new(
            "repository",
            format!("the repository does not parse: {e}"),
        )]);
    }
    let Some(rules) = policy.types.get(&req.account_type) else {
        return Err(vec![Problem::new(
            "type",
            format!(
                "`{}` is not an account type; the policy has {}",
                shown(&req.account_type),
                policy
                    .types
                    .keys()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )]);
    };
    let account_type = req.account_type.clone();

    // The name: as given, or with the type's prefix, whichever the pattern takes.
    let prefix = rules
        .name_pattern
        .as_ref()
        .map(|p| literal_prefix(p.as_str()))
        .unwrap_or_default();
    // An adopted account keeps its name and email as AWS has them; what breaks the policy
    // is said above its blocks.
    let import = req.adopt.is_some();
    let mut soft: Vec<String> = Vec::new();
    if let Some(id) = &req.adopt
        && (id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(vec![Problem::new(
            "adopt",
            format!("`{}` is not an AWS account id", shown(id)),
        )]);
    }
    let name = match check_slug(&req.name) {
        _ if import && !req.name.chars().any(char::is_control) && !req.name.is_empty() => {
            if let Some(p) = rules
                .name_pattern
                .as_ref()
                .filter(|p| !p.is_match(&req.name))
            {
                soft.push(format!(
                    "the name does not fit the {account_type} naming pattern `{}`",
                    p.as_str()
                ));
            }
            Some(req.name.clone())
        }
        Err(e) => {
            problems.push(Problem::new("name", e));
            None
        }
        Ok(()) => {
            let candidates = [
                req.name.clone(),
                format!("{prefix}{}", req.name),
                format!("{account_type}-{}", req.name),
            ];
            let fits = |n: &str| rules.name_pattern.as_ref().is_none_or(|p| p.is_match(n));
            match candidates.iter().find(|c| fits(c) && c.len() <= 50) {
                Some(n) => Some(n.clone()),
                None => {
                    problems.push(Problem::new(
                        "name",
                        format!(
                            "`{}` does not fit the {account_type} naming pattern `{}` (tried {})",
                            shown(&req.name),
                            rules
                                .name_pattern
                                .as_ref()
                                .map(|p| p.as_str())
                                .unwrap_or(".*"),
                            candidates
                                .iter()
                                .map(|c| format!("`{}`", shown(c)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    None
                }
            }
        }
    };
    let slug = name
        .as_deref()
        .map(|n| n.strip_prefix(prefix.as_str()).unwrap_or(n).to_string());

    // Tags: owner first, then the rest; each by AWS's rules.
    let mut given: Vec<(String, String)> = Vec::new();
    if let Some(owner) = &req.owner {
        given.push(("owner".into(), owner.clone()));
    }
    given.extend(req.tags.iter().cloned());
    let mut tags_ok = true;
    for (i, (k, v)) in given.iter().enumerate() {
        if let Err(e) = check_tag(k, v) {
            problems.push(Problem::new(
                if k == "owner" && i == 0 && req.owner.is_some() {
                    "owner"
                } else {
                    "tags"
                },
                e,
            ));
            tags_ok = false;
        } else if given[..i].iter().any(|(x, _)| x == k) {
            problems.push(Problem::new(
                "tags",
                format!("`{}` is given twice", shown(k)),
            ));
            tags_ok = false;
        }
    }
    for (role, group) in &req.access {
        if let Err(e) = check_group(group) {
            problems.push(Problem::new("access", e));
        }
        if !role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || role.is_empty()
            || role.len() > 64
        {
            problems.push(Problem::new(
                "access",
                format!("`{}` is not a role name", shown(role)),
            ));
        }
    }
    if let Some(purpose) = &req.purpose {
        // It lands in a Terraform comment and in the MR's Markdown: plain prose only.
        if let Some(c) = purpose
            .chars()
            .find(|c| !(c.is_alphanumeric() || " .,;:'()/&+-_!?@#".contains(*c)))
        {
            problems.push(Problem::new(
                "purpose",
                format!(
                    "has {}; use letters, digits, spaces and . , ; : ' ( ) / & + - _ ! ? @ #",
                    char_name(c)
                ),
            ));
        } else if purpose.chars().count() > MAX_PURPOSE {
            problems.push(Problem::new(
                "purpose",
                format!("is over {MAX_PURPOSE} characters"),
            ));
        }
    }

    // The email: given, or the policy's template.
    let email = match (&req.email, &policy.email_template, &name) {
        (Some(e), _, _) => match check_email(e) {
            Ok(()) => Some(e.clone()),
            Err(why) => {
                problems.push(Problem::new("email", why));
                None
            }
        },
        (None, Some(t), Some(n)) => Some(
            t.replace("{name}", n)
                .replace("{alias}", n)
                .replace("{type}", &account_type),
        ),
        (None, None, _) => {
            problems.push(Problem::new(
                "email",
                "the policy has no email template (`email.template`): give the account's email",
            ));
            None
        }
        (None, Some(_), None) => None,
    };

    // Taken already?
    let taken = |what: &str, value: &str, get: &dyn Fn(&Account) -> Option<&str>| {
        decls
            .accounts
            .iter()
            .find(|a| get(a).is_some_and(|v| v.eq_ignore_ascii_case(value)))
            .map(|a| {
                Problem::new(
                    what,
                    format!("`{}` is taken by `{}` at {}", shown(value), a.key, a.at),
                )
            })
    };
    if let Some(n) = &name {
        problems.extend(taken("name", n, &|a| a.name()));
        if !problems.iter().any(|p| p.field == "name") {
            problems.extend(taken("name", n, &|a| a.alias()));
        }
    }
    if let Some(e) = &email {
        problems.extend(taken("email", e, &|a| a.email()));
    }

    // Where it goes, and in what style.
    let (path, sibling) = match place(decls, &account_type, req.file.as_deref()) {
        Ok(p) => p,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };
    let before = files
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.text.to_string());
    let sibling_slug = sibling.and_then(|s| {
        s.name()
            .map(|n| n.strip_prefix(prefix.as_str()).unwrap_or(n).to_string())
    });
    let style = style::learn(
        decls,
        before.as_deref(),
        &path,
        sibling,
        sibling_slug.as_deref(),
    );

    // Sources and refs.
    let account_source = source_of(policy, decls, true, policy.account_ref.as_deref());
    let base_source = source_of(policy, decls, false, policy.base_ref.as_deref());
    for (what, s) in [("account", &account_source), ("base", &base_source)] {
        if let Err(e) = s {
            problems.push(Problem::new("repository", format!("{what} module: {e}")));
        }
    }
    if !problems.is_empty() || !tags_ok {
        return Err(problems);
    }
    let (name, email, slug) = (name.unwrap(), email.unwrap(), slug.unwrap());
    let (account_source, base_source) = (account_source.unwrap(), base_source.unwrap());
    let (account_key, base_key) = keys(&style, &name);
    for key in [&account_key, &base_key] {
        if let Some(m) = decls.modules.iter().find(|m| {
            &m.key == key
                && m.at.file.rsplit_once('/').map(|(d, _)| d)
                    == path.rsplit_once('/').map(|(d, _)| d)
        }) {
            problems.push(Problem::new(
                "name",
                format!("module `{key}` exists already at {}", m.at),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let text = blocks(&Blocks {
        style: &style,
        name: &name,
        slug: &slug,
        email: &email,
        account_type: &account_type,
        purpose: req.purpose.as_deref(),
        adopt: req.adopt.as_deref(),
        tags: &given,
        access: &req.access,
        account_key: &account_key,
        base_key: &base_key,
        account_source: &account_source,
        base_source: &base_source,
        output: &policy.account_id_output,
    });
    let before_text = before.clone().unwrap_or_default();
    let (after, first_line) = insert(&before_text, &text, decls, &path, &name);
    let last_line = first_line + text.lines().count() - 1;

    // The check: read the new file as the repository would, and judge the new account by
    // every rule of the policy, beside the accounts already there.
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let holds_modules: std::collections::HashSet<&str> =
        decls.modules.iter().map(|m| &*m.at.file).collect();
    let mut mini: Vec<SourceFile> = files
        .iter()
        .filter(|f| {
            f.path != path
                && f.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir
                && decl::is_terraform_file(&f.path)
                && !holds_modules.contains(f.path.as_str())
        })
        .cloned()
        .collect();
    mini.push(SourceFile::new(path.clone(), after.clone()));
    let read = decl::read(&mini, &policy.sources);
    if let Some(e) = read.parse_errors.first() {
        return Err(vec![Problem::new(
            "check",
            format!("orgvend wrote Terraform that does not parse ({e}); please report this"),
        )]);
    }
    let Some(i) = read.accounts.iter().position(|a| a.key == account_key) else {
        return Err(vec![Problem::new(
            "check",
            "orgvend could not read back the account it wrote; please report this",
        )]);
    };
    let mut head = decls.clone();
    head.add_account(&read, i);
    let new = head.accounts.last().expect("just added");
    let tags = new.owned_tags().unwrap_or_default();
    for required in &rules.required_tags {
        if tags.get(required).is_none_or(|v| v.trim().is_empty()) {
            if import {
                soft.push(format!("no `{required}` tag, which the type requires"));
                continue;
            }
            problems.push(Problem::new(
                &format!("tags.{required}"),
                format!("{MISSING_TAG} `{account_type}` and not given"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let report = report::assess(AssessInput::local(Some(decls), &head, policy));
    for v in &report.violations {
        let ours = v
            .module
            .as_deref()
            .is_some_and(|m| m == account_key || m == base_key)
            || v.at.as_ref().is_some_and(|at| {
                *at.file == *path && (first_line..=last_line).contains(&(at.line as usize))
            });
        if ours && v.severity == Severity::Error && import {
            soft.push(format!("{}: {}", v.rule, v.message));
        } else if ours && v.severity == Severity::Error {
            problems.push(Problem::new(
                "check",
                format!("{}: {} ({})", v.rule, v.message, v.fix),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // what an adopted account breaks, said above its blocks for the MR that brings it in
    let (after, first_line, last_line) = if soft.is_empty() {
        (after, first_line, last_line)
    } else {
        soft.sort();
        soft.dedup();
        let mut said = String::from(
            "# orgvend import: this account breaks the policy; fix it here or in AWS:\n",
        );
        for s in &soft {
            let line: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            said.push_str(&format!("#   - {line}\n"));
        }
        let (after, first) = insert(&before_text, &format!("{said}{text}"), decls, &path, &name);
        let last = first + said.lines().count() + text.lines().count() - 1;
        (after, first, last)
    };
    Ok(Generated {
        path,
        new_file: before.is_none(),
        before: before_text,
        after,
        violations: soft,
        alias: name.clone(),
        name,
        email,
        account_type,
        account_key,
        base_key,
        tags,
        access: req.access.clone(),
        lines: (first_line, last_line),
    })
}

/// What a name or slug may hold before any pattern: what every account name and alias
/// orgvend writes must be (lower-case letters, digits and dashes).
fn check_slug(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.chars().count() > MAX_VALUE {
        return Err(format!("is over {MAX_VALUE} characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "`{}` has {}; use lower-case letters, digits and dashes",
            shown(s),
            char_name(c)
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(format!("`{}` starts or ends with a dash", shown(s)));
    }
    Ok(())
}

fn check_email(e: &str) -> Result<(), String> {
    let ok = e.len() <= 64
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an address orgvend writes (letters, digits and + . _ - before the @)",
            shown(e)
        ))
    }
}
