//! Where a new account goes (the file holding its type's accounts, and the account whose
//! style it copies) and what its modules are pinned to.

use super::Problem;
use super::shown;
use super::style::newest;
use crate::core::decl::{self, Account, Declarations};
use crate::core::policy::Policy;
use std::collections::BTreeMap;

/// The literal start of a pattern: `client-[a-z0-9]+` → `client-`.
pub(super) fn literal_prefix(pattern: &str) -> String {
    // the policy compiles `p` as `^(?:p)$`
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    let p = p.strip_prefix("(?:").unwrap_or(p);
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) if "-.".contains(e) => out.push(e),
                _ => break,
            }
        } else if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            // a quantifier after it makes it optional: drop it
            if chars.peek().is_some_and(|n| "?*{".contains(*n)) {
                break;
            }
            out.push(c);
        } else {
            break;
        }
    }
    out
}

/// The file the account goes into, and the account of the same type whose style it copies.
pub(super) fn place<'a>(
    decls: &'a Declarations,
    account_type: &str,
    file: Option<&str>,
) -> Result<(String, Option<&'a Account>), Problem> {
    let of_type = |a: &&Account| a.account_type() == Some(account_type);
    if let Some(f) = file {
        let f = f.trim_start_matches("./").to_string();
        if !f.ends_with(".tf")
            || f.split('/').any(|p| p.is_empty() || p.starts_with('.'))
            || f.contains('\\')
        {
            return Err(Problem::new(
                "file",
                format!("`{}` is not a .tf file inside the repository", shown(&f)),
            ));
        }
        let in_file: Vec<&Account> = decls.accounts.iter().filter(|a| *a.at.file == *f).collect();
        let sibling = in_file
            .iter()
            .rev()
            .find(|a| of_type(a))
            .or(in_file.last())
            .copied()
            .or_else(|| decls.accounts.iter().rev().find(|a| of_type(a)))
            .or(decls.accounts.last());
        return Ok((f, sibling));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in decls.accounts.iter().filter(of_type) {
        *counts.entry(&a.at.file).or_default() += 1;
    }
    if let Some((file, _)) = counts.iter().max_by_key(|(f, n)| (**n, **f)) {
        let sibling = decls
            .accounts
            .iter()
            .rev()
            .find(|a| *a.at.file == **file && of_type(a));
        return Ok((file.to_string(), sibling));
    }
    // The first of its type: a file of its own beside the other accounts.
    let mut dirs: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &decls.accounts {
        *dirs
            .entry(a.at.file.rsplit_once('/').map(|(d, _)| d).unwrap_or(""))
            .or_default() += 1;
    }
    let dir = dirs
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(d, _)| *d)
        .unwrap_or("");
    let name = format!("{account_type}.tf");
    let path = if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    };
    Ok((path, decls.accounts.last()))
}

/// The module source with its pinned ref.
pub(super) fn source_of(
    policy: &Policy,
    decls: &Declarations,
    account: bool,
    pinned: Option<&str>,
) -> Result<String, String> {
    let addresses = if account {
        &policy.sources.account
    } else {
        &policy.sources.base
    };
    let Some(address) = addresses.first() else {
        return Err("the policy names no module source".into());
    };
    let kind = if account {
        decl::ModuleKind::Account
    } else {
        decl::ModuleKind::Base
    };
    let reference = pinned.map(str::to_string).or_else(|| {
        newest(
            decls
                .modules
                .iter()
                .filter(|m| m.kind == kind)
                .filter_map(|m| m.source.as_ref())
                .filter(|s| decl::same_address(&s.address, address))
                .filter_map(|s| s.reference.clone())
                .filter(|r| policy.ref_pattern.as_ref().is_none_or(|p| p.is_match(r))),
        )
    });
    match reference {
        Some(r) => Ok(format!("{address}?ref={r}")),
        None if policy.require_ref => Err(format!(
            "no ref to pin `{address}` to: set `modules.{}` in the policy",
            if account { "account_ref" } else { "base_ref" }
        )),
        None => Ok(address.clone()),
    }
}
