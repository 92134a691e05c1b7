//! A request in a GitLab issue: the first fenced block whose info string is `orgvend`, one
//! `field: value` per line (GitLab has Markdown issue templates, not forms; the template is
//! `templates/subaccounts/.gitlab/issue_templates/aws-account.md`).
//!
//! ````text
//! ```orgvend
//! type: client
//! name: acme
//! owner: data-team
//! purpose: Analytics for ACME
//! tags: cost-center=cc-3100, client=acme
//! access: ReadOnly=client-acme-support
//! ```
//! ````
//!
//! Reading is strict: an unknown or repeated field, a line that is not `field: value`, a
//! control character or an overlong block is a [`Problem`], never guessed around.

use super::{MAX_ACCESS, MAX_TAGS, Problem, Request, char_name, shown};

/// The fence's info string.
pub const INFO: &str = "orgvend";
/// The fields, in the template's order.
pub const FIELDS: [&str; 7] = [
    "type", "name", "owner", "purpose", "tags", "access", "email",
];
/// The longest block read.
pub const MAX_BLOCK: usize = 4096;

/// The request block of an issue's description: `None` when it has none (the issue is not a
/// request); else the request, or everything wrong with the block.
pub fn read(description: &str) -> Option<Result<Request, Vec<Problem>>> {
    // what GitLab does not show (HTML comments) is not read either
    let shown = without_comments(description);
    let block = block(&shown)?;
    Some(parse(block))
}

/// The text without `<!-- … -->` comments (an unclosed one runs to the end).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The text inside the first ```` ```orgvend ```` (or `~~~orgvend`) fence; an unclosed
/// fence runs to the end, as Markdown has it.
fn block(description: &str) -> Option<&str> {
    let mut offset = 0;
    let mut inner: Option<(usize, &str)> = None; // (start, fence)
    for line in description.split_inclusive('\n') {
        let trimmed = line.trim();
        match inner {
            None => {
                for fence in ["```", "~~~"] {
                    if let Some(info) = trimmed.strip_prefix(fence)
                        && info.trim().eq_ignore_ascii_case(INFO)
                    {
                        inner = Some((offset + line.len(), fence));
                        break;
                    }
                }
            }
            Some((start, fence))
                if trimmed.starts_with(fence)
                    && trimmed
                        .trim_matches(fence.chars().next().unwrap())
                        .is_empty() =>
            {
                return Some(&description[start..offset]);
            }
            Some(_) => {}
        }
        offset += line.len();
    }
    inner.map(|(start, _)| &description[start..])
}

fn parse(block: &str) -> Result<Request, Vec<Problem>> {
    let mut problems = Vec::new();
    if block.len() > MAX_BLOCK {
        return Err(vec![Problem::new(
            "request",
            format!("the block has {} bytes; at most {MAX_BLOCK}", block.len()),
        )]);
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut req = Request::default();
    for (n, raw) in block.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            problems.push(Problem::new(
                "request",
                format!("line {} (`{}`) is not `field: value`", n + 1, shown(line)),
            ));
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let Some(field) = FIELDS.iter().find(|f| **f == key) else {
            problems.push(Problem::new(
                "request",
                format!(
                    "unknown field `{}`; the fields are {}",
                    shown(&key),
                    FIELDS.join(", ")
                ),
            ));
            continue;
        };
        if seen.contains(field) {
            problems.push(Problem::new(field, "given twice"));
            continue;
        }
        seen.push(field);
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            problems.push(Problem::new(field, format!("has {}", char_name(c))));
            continue;
        }
        // the template's placeholders, left as they were: the field is empty
        if value.is_empty() || is_placeholder(value) {
            continue;
        }
        match *field {
            "type" => req.account_type = value.to_string(),
            "name" => req.name = value.to_string(),
            "owner" => req.owner = Some(value.to_string()),
            "purpose" => req.purpose = Some(value.to_string()),
            "email" => req.email = Some(value.to_string()),
            "tags" => match pairs(value, MAX_TAGS) {
                Ok(p) => req.tags = p,
                Err(e) => problems.push(Problem::new("tags", e)),
            },
            "access" => match pairs(value, MAX_ACCESS) {
                Ok(p) => req.access = p,
                Err(e) => problems.push(Problem::new("access", e)),
            },
            _ => unreachable!("every field is matched"),
        }
    }
    for (field, missing) in [
        ("type", req.account_type.is_empty()),
        ("name", req.name.is_empty()),
    ] {
        if missing && !problems.iter().any(|p| p.field == field) {
            problems.push(Problem::new(field, "is missing"));
        }
    }
    if problems.is_empty() {
        Ok(req)
    } else {
        Err(problems)
    }
}

/// The template's `<what goes here>`: words in angle brackets, nothing else.
fn is_placeholder(value: &str) -> bool {
    value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .is_some_and(|v| {
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || " ,.'=-".contains(c))
        })
}

/// `a=b, c=d` → [(a, b), (c, d)]; at most `max` pairs.
pub fn pairs(value: &str, max: usize) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("`{}` is not `key=value`", shown(part)));
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    if out.len() > max {
        return Err(format!("{} entries; at most {max}", out.len()));
    }
    Ok(out)
}
