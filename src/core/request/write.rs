//! The new account's text: the banner, the two module blocks in the repository's style, and
//! where in the file they go. Every value is validated before it gets here; HCL strings are
//! escaped all the same.

use super::style::{Style, TagStyle, same_case, snake};
use crate::core::decl::{self, Account, Declarations};

/// The module keys, made the way the sibling's were.
pub(super) fn keys(style: &Style, name: &str) -> (String, String) {
    let new = snake(name);
    match &style.keys {
        Some((key, base, old)) if !old.is_empty() && key.contains(old.as_str()) => {
            let account = key.replacen(old.as_str(), &new, 1);
            let base = base
                .as_ref()
                .filter(|b| b.contains(old.as_str()))
                .map(|b| b.replacen(old.as_str(), &new, 1))
                .unwrap_or_else(|| format!("{account}_base"));
            (account, base)
        }
        _ => (
            format!("subaccount_{new}"),
            format!("subaccount_{new}_base"),
        ),
    }
}

pub(super) struct Blocks<'a> {
    pub(super) style: &'a Style,
    pub(super) name: &'a str,
    pub(super) slug: &'a str,
    pub(super) email: &'a str,
    pub(super) account_type: &'a str,
    pub(super) purpose: Option<&'a str>,
    pub(super) adopt: Option<&'a str>,
    pub(super) tags: &'a [(String, String)],
    pub(super) access: &'a [(String, String)],
    pub(super) account_key: &'a str,
    pub(super) base_key: &'a str,
    pub(super) account_source: &'a str,
    pub(super) base_source: &'a str,
    pub(super) output: &'a str,
}

/// The two blocks, with the banner and the purpose above them.
pub(super) fn blocks(b: &Blocks) -> String {
    let s = b.style;
    let mut out = String::new();
    match &s.banner {
        Some((banner, old)) => {
            out.push_str(&banner.replacen(old.as_str(), &same_case(old, b.slug), 1));
            out.push('\n');
        }
        None => out.push_str(&format!("# {}\n", b.name)),
    }
    if let Some(p) = b.purpose.filter(|p| !p.trim().is_empty()) {
        out.push_str(&format!("# Purpose: {}\n", p.trim()));
    }
    let interpolated = |expr: &str| {
        if !s.legacy {
            expr.to_string()
        } else if s.spaced {
            format!("\"${{ {expr} }}\"")
        } else {
            format!("\"${{{expr}}}\"")
        }
    };
    let account_id = interpolated(&format!("module.{}.{}", b.account_key, b.output));
    let tags = tags_expr(s, b.tags, &interpolated);
    let access = (!b.access.is_empty()).then(|| access_expr(b.access));

    let mut account: Vec<(String, String)> = Vec::new();
    let ours_account = [
        ("source", Some(string(b.account_source))),
        (decl::NAME, Some(string(b.name))),
        (decl::EMAIL, Some(string(b.email))),
        (decl::ADOPT, b.adopt.map(string)),
    ];
    fill(&mut account, &s.account_attrs, &ours_account);
    let mut base: Vec<(String, String)> = Vec::new();
    let ours_base = [
        ("source", Some(string(b.base_source))),
        (decl::ACCOUNT_ID, Some(account_id)),
        (decl::ALIAS, Some(string(b.name))),
        (decl::ACCOUNT_TYPE, Some(string(b.account_type))),
        (decl::TAGS, tags),
        (decl::ACCESS, access),
    ];
    fill(&mut base, &s.base_attrs, &ours_base);
    out.push_str(&block(b.account_key, &account, &s.indent));
    out.push('\n');
    out.push_str(&block(b.base_key, &base, &s.indent));
    out
}

/// Attributes in the sibling's order (its generic ones as written), then ours it lacked.
fn fill(
    out: &mut Vec<(String, String)>,
    sibling: &[(String, Option<String>)],
    ours: &[(&str, Option<String>)],
) {
    for (name, copied) in sibling {
        if let Some((_, value)) = ours.iter().find(|(n, _)| n == name) {
            if let Some(v) = value {
                out.push((name.clone(), v.clone()));
            }
        } else if let Some(text) = copied {
            out.push((name.clone(), text.clone()));
        }
    }
    for (name, value) in ours {
        if let Some(v) = value
            && !out.iter().any(|(n, _)| n == name)
        {
            out.push((name.to_string(), v.clone()));
        }
    }
}

/// One block, its single-line attributes aligned as `terraform fmt` aligns them.
fn block(key: &str, attrs: &[(String, String)], indent: &str) -> String {
    let width = attrs
        .iter()
        .filter(|(_, v)| !v.contains('\n'))
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    let mut out = format!("module \"{key}\" {{\n");
    for (name, value) in attrs {
        let pad = if value.contains('\n') {
            0
        } else {
            width - name.len()
        };
        out.push_str(&format!("{indent}{name}{} = {value}\n", " ".repeat(pad)));
    }
    out.push_str("}\n");
    out
}

/// An HCL string literal. The values are validated before they get here; escaping is the
/// second line of defence: quotes, backslashes, and template sequences (`${`, `%{`).
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An object key: bare where HCL takes it bare, else a string.
fn key(k: &str) -> String {
    let bare = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { k.to_string() } else { string(k) }
}

fn tags_expr(
    s: &Style,
    tags: &[(String, String)],
    interpolated: &dyn Fn(&str) -> String,
) -> Option<String> {
    let map = || {
        format!(
            "{{ {} }}",
            tags.iter()
                .map(|(k, v)| format!("{} = {}", key(k), string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match &s.tags {
        TagStyle::Merge { base, .. } if tags.is_empty() => Some(interpolated(base)),
        TagStyle::Merge {
            base,
            legacy_map: true,
        } => Some(interpolated(&format!(
            "merge({base}, map({}))",
            tags.iter()
                .map(|(k, v)| format!("{}, {}", string(k), string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        TagStyle::Merge { base, .. } => Some(format!("merge({base}, {})", map())),
        TagStyle::Literal if tags.is_empty() => None,
        TagStyle::Literal => Some(map()),
    }
}

fn access_expr(access: &[(String, String)]) -> String {
    let mut by_role: Vec<(&str, Vec<&str>)> = Vec::new();
    for (role, group) in access {
        match by_role.iter_mut().find(|(r, _)| r == role) {
            Some((_, groups)) => groups.push(group),
            None => by_role.push((role, vec![group])),
        }
    }
    format!(
        "{{ {} }}",
        by_role
            .iter()
            .map(|(role, groups)| format!(
                "{} = [{}]",
                key(role),
                groups
                    .iter()
                    .map(|g| string(g))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `text` put into `before`: in name order where the file's accounts are in name order
/// (before the first whose name sorts after), else at the end. Returns the new content and
/// the first line of `text` in it.
pub(super) fn insert(
    before: &str,
    text: &str,
    decls: &Declarations,
    path: &str,
    name: &str,
) -> (String, usize) {
    let in_file: Vec<&Account> = decls
        .accounts
        .iter()
        .filter(|a| &*a.at.file == path)
        .collect();
    let names: Vec<&str> = in_file.iter().map(|a| a.label()).collect();
    let sorted = names.windows(2).all(|w| w[0] <= w[1]);
    let lines: Vec<&str> = before.split_inclusive('\n').collect();
    let next = in_file
        .iter()
        .find(|a| a.label() > name)
        .filter(|_| sorted && in_file.len() > 1);
    if let Some(next) = next {
        // the comment lines above it belong to it
        let mut at = next.at.line as usize - 1;
        while at > 0 && {
            let l = lines[at - 1].trim();
            l.starts_with('#') || l.starts_with("//")
        } {
            at -= 1;
        }
        let mut out: String = lines[..at].concat();
        out.push_str(text);
        out.push('\n');
        out.push_str(&lines[at..].concat());
        return (out, at + 1);
    }
    let mut out = before.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.trim().is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    let first = out.lines().count() + 1;
    out.push_str(text);
    (out, first)
}
