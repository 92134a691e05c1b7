//! The repository's house style, learned from the accounts already in the file a new one
//! goes into: interpolation (`"${module.x.id}"` or `module.x.id`), how tags are merged, the
//! comment banner above each account, module key names, indentation, and the attributes every
//! account carries (`root_account_id = var.root_account_id`).

use crate::core::decl::{self, Account, Declarations, Module};
use std::collections::BTreeMap;

/// Attributes the generator writes itself; a sibling's are never copied.
pub(super) const OWN_ATTRS: &[&str] = &[
    "source",
    "version",
    decl::NAME,
    decl::EMAIL,
    decl::ADOPT,
    decl::ACCOUNT_ID,
    decl::ALIAS,
    decl::ACCOUNT_TYPE,
    decl::TAGS,
    decl::ACCESS,
];

/// How the accounts' `tags` are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TagStyle {
    /// `merge(<base>, { k = "v" })` (HCL2) or `"${merge(<base>, map("k", "v"))}"` (0.11).
    Merge { base: String, legacy_map: bool },
    /// A map literal.
    Literal,
}

#[derive(Debug, Clone)]
pub(super) struct Style {
    /// Terraform 0.11 interpolation: `"${…}"`.
    pub legacy: bool,
    /// `"${ x }"` rather than `"${x}"`.
    pub spaced: bool,
    pub indent: String,
    pub tags: TagStyle,
    /// The sibling's banner line, and the sibling's slug as it appears in it.
    pub banner: Option<(String, String)>,
    /// Module keys: the sibling's keys and the name part they were made of.
    pub keys: Option<(String, Option<String>, String)>,
    /// Attributes of the sibling that are not the account's own (copied as written), with
    /// the order of every attribute of each module.
    pub account_attrs: Vec<(String, Option<String>)>,
    pub base_attrs: Vec<(String, Option<String>)>,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            legacy: false,
            spaced: false,
            indent: "  ".into(),
            tags: TagStyle::Literal,
            banner: None,
            keys: None,
            account_attrs: Vec::new(),
            base_attrs: Vec::new(),
        }
    }
}

/// Each attribute of a module as written: (name, the expression's source text).
pub(super) fn raw_attrs(m: &Module) -> Vec<(String, String)> {
    let lines: Vec<&str> = m.text.lines().collect();
    let first = m.at.line as usize;
    let mut starts: Vec<(usize, &str)> = m
        .attrs
        .iter()
        .map(|(name, f)| (f.at.line as usize, name.as_str()))
        .filter(|(line, _)| *line >= first)
        .collect();
    if let Some(src) = &m.source {
        starts.push((src.at.line as usize, "source"));
    }
    starts.sort();
    starts.dedup_by_key(|(line, _)| *line);
    let mut out = Vec::new();
    for (i, (line, name)) in starts.iter().enumerate() {
        // up to the next attribute, or the block's closing line
        let end = starts
            .get(i + 1)
            .map(|(l, _)| *l)
            .unwrap_or(first + lines.len().saturating_sub(1));
        let text: Vec<&str> = (*line..end)
            .filter_map(|l| lines.get(l - first).copied())
            .collect();
        let joined = text.join("\n");
        let Some((_, expr)) = joined.split_once('=') else {
            continue;
        };
        out.push((name.to_string(), expr.trim().to_string()));
    }
    out
}

/// The name part of a module key: `client-acme` → `client_acme`.
pub(super) fn snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Learns the style from `sibling` (an account of the same type in the same file, where
/// there is one) and the accounts of `file`.
pub(super) fn learn(
    decls: &Declarations,
    file_text: Option<&str>,
    file: &str,
    sibling: Option<&Account>,
    sibling_slug: Option<&str>,
) -> Style {
    let mut style = Style::default();
    let in_file: Vec<&Account> = decls
        .accounts
        .iter()
        .filter(|a| &*a.at.file == file)
        .collect();
    // interpolation: the majority of the file's `account_id`s
    let (mut legacy, mut modern, mut spaced) = (0, 0, 0);
    for a in &in_file {
        let Some(b) = a.base else { continue };
        if let Some((_, text)) = raw_attrs(&decls.modules[b])
            .into_iter()
            .find(|(n, _)| n == crate::core::decl::ACCOUNT_ID)
        {
            if text.starts_with("\"${") {
                legacy += 1;
                if text.starts_with("\"${ ") {
                    spaced += 1;
                }
            } else {
                modern += 1;
            }
        }
    }
    style.legacy = legacy > modern;
    style.spaced = style.legacy && spaced * 2 > legacy;

    let Some(sib) = sibling else {
        return style;
    };
    let module = &decls.modules[sib.module];
    let base = sib.base.map(|b| &decls.modules[b]);
    if let Some(indent) = module
        .text
        .lines()
        .nth(1)
        .map(|l| l[..l.len() - l.trim_start().len()].to_string())
        .filter(|i| !i.is_empty())
    {
        style.indent = indent;
    }
    let account_raw = raw_attrs(module);
    let base_raw = base.map(raw_attrs).unwrap_or_default();
    if let Some((_, tags)) = base_raw
        .iter()
        .chain(account_raw.iter())
        .find(|(n, _)| n == crate::core::decl::TAGS)
    {
        style.tags = tag_style(tags);
    }
    // what is the sibling's own (its name, alias, key) is never copied
    let own: Vec<String> = [
        sib.name().map(str::to_string),
        sib.alias().map(str::to_string),
        sibling_slug.map(str::to_string),
        Some(sib.key.clone()),
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.len() >= 3)
    .collect();
    let copy = |raw: &[(String, String)]| -> Vec<(String, Option<String>)> {
        raw.iter()
            .map(|(n, text)| {
                let generic = !OWN_ATTRS.contains(&n.as_str())
                    && !own.iter().any(|o| text.contains(o.as_str()))
                    && !text.contains("module.");
                (n.clone(), generic.then(|| text.clone()))
            })
            .collect()
    };
    style.account_attrs = copy(&account_raw);
    style.base_attrs = copy(&base_raw);
    style.keys = Some((
        sib.key.clone(),
        sib.base_key.clone(),
        snake(sib.name().unwrap_or_default()),
    ));
    if let (Some(text), Some(slug)) = (file_text, sibling_slug) {
        style.banner = banner_above(text, module.at.line as usize)
            .and_then(|b| found_in(&b, slug).map(|s| (b, s)));
    }
    style
}

fn tag_style(text: &str) -> TagStyle {
    let t = text.trim();
    let inner = t
        .strip_prefix("\"${")
        .and_then(|r| r.strip_suffix("}\""))
        .map(str::trim)
        .unwrap_or(t);
    if let Some(args) = inner.strip_prefix("merge(") {
        let base = args.split(',').next().unwrap_or("").trim().to_string();
        if is_reference(&base) {
            return TagStyle::Merge {
                base,
                legacy_map: inner.contains("map("),
            };
        }
    }
    if is_reference(inner) {
        return TagStyle::Merge {
            base: inner.to_string(),
            legacy_map: t.starts_with("\"${"),
        };
    }
    TagStyle::Literal
}

/// `var.tags`, `local.common_tags`: a plain reference.
fn is_reference(s: &str) -> bool {
    (s.starts_with("var.") || s.starts_with("local."))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The comment line that opens the comment block directly above `line` (1-based).
fn banner_above(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = line.checked_sub(1)?; // index of the module line
    let mut top = None;
    while i > 0 {
        let l = lines.get(i - 1)?.trim();
        if l.starts_with('#') || l.starts_with("//") {
            top = Some(l.to_string());
            i -= 1;
        } else {
            break;
        }
    }
    top
}

/// `slug` as it is written in `banner` (any case), if it is.
fn found_in(banner: &str, slug: &str) -> Option<String> {
    let lower = banner.to_lowercase();
    let at = lower.find(&slug.to_lowercase())?;
    banner.get(at..at + slug.len()).map(str::to_string)
}

/// `new_slug` written as `old` writes its slug: upper case, title case or as given.
pub(super) fn same_case(old: &str, new_slug: &str) -> String {
    let letters: Vec<char> = old.chars().filter(|c| c.is_alphabetic()).collect();
    if !letters.is_empty() && letters.iter().all(|c| c.is_uppercase()) {
        new_slug.to_uppercase()
    } else if letters.first().is_some_and(|c| c.is_uppercase()) {
        new_slug
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-")
    } else {
        new_slug.to_string()
    }
}

/// The newest of `refs` by their numbers (`v1.10.0` after `v1.9.2`).
pub(super) fn newest(refs: impl Iterator<Item = String>) -> Option<String> {
    let key = |r: &str| -> Vec<u64> {
        r.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let mut counted: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in refs {
        let k = key(&r);
        counted.insert(r, k);
    }
    counted
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
        .map(|(r, _)| r)
}
