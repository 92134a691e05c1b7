//! Asking for an account without writing Terraform: what a request says ([`Request`], read
//! from a GitLab issue's fenced block by [`form`] or from `orgvend new`'s flags), and the
//! generator ([`generate`]) that writes the account's module pair into the repository in its
//! house style — or refuses, saying why. Every value is validated before it reaches
//! Terraform, and what is written is checked by the same rules as any MR.

pub mod form;
pub mod generate;
pub mod import;
mod place;
mod style;
#[cfg(test)]
mod tests;
mod write;

pub use generate::{Generated, generate};

use serde::Serialize;

/// What someone asked for. Values are as given: [`generate`] validates them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    /// An account type of the policy (`client`).
    pub account_type: String,
    /// The account's name, or the part after the type's prefix (`acme` for `client-acme`).
    pub name: String,
    /// Who owns it: the `owner` tag.
    pub owner: Option<String>,
    /// One line on what it is for: a comment above the blocks, and the MR's description.
    pub purpose: Option<String>,
    /// Tags besides `owner`, in the order given.
    pub tags: Vec<(String, String)>,
    /// Groups added to roles the type grants: (role, group).
    pub access: Vec<(String, String)>,
    /// The root email, where the policy has no template for it.
    pub email: Option<String>,
    /// The file to write into (relative to the repository root); default: the file that
    /// holds the other accounts of the type.
    pub file: Option<String>,
    /// An existing account this declaration adopts (`orgvend import`): its name and email
    /// are written as AWS has them, and what breaks the policy is written above the blocks
    /// as comments instead of refused.
    pub adopt: Option<String>,
}

/// Why a request cannot be written: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `type`, `name`, `owner`, `purpose`, `tags`, `tags.<key>`, `access`, `email`, `file`,
    /// or `check` (a rule of the policy the written blocks break).
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: &str, message: impl Into<String>) -> Problem {
        Problem {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A required tag that no flag, field or default gives.
    pub fn missing_tag(&self) -> Option<&str> {
        self.field
            .strip_prefix("tags.")
            .filter(|_| self.message.starts_with(MISSING_TAG))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub(crate) const MISSING_TAG: &str = "required by the type";

/// The longest value of any field; a purpose may be longer.
pub const MAX_VALUE: usize = 128;
pub const MAX_PURPOSE: usize = 200;
pub const MAX_TAGS: usize = 20;
pub const MAX_ACCESS: usize = 10;

/// AWS's tag rules: keys 1–128 and values 0–256 characters of letters, digits, spaces and
/// `_ . : / = + - @`; `aws:` is reserved. Nothing else can reach Terraform through a tag.
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if key.is_empty() || key.chars().count() > 128 {
        return Err("a tag key has 1 to 128 characters".into());
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!("`{}`: the `aws:` prefix is AWS's own", shown(key)));
    }
    if let Some(c) = key.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "tag key `{}` has {}; AWS allows letters, digits, spaces and _ . : / = + - @",
            shown(key),
            char_name(c)
        ));
    }
    if value.chars().count() > 256 {
        return Err(format!(
            "the value of `{}` is over 256 characters",
            shown(key)
        ));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "the value of tag `{}` has {}; AWS allows letters, digits, spaces and _ . : / = + - @",
            shown(key),
            char_name(c)
        ));
    }
    Ok(())
}

/// A group name as Identity Center and Okta take it, and as orgvend writes it into
/// Terraform: letters, digits and `. _ - @ +`, 1–128 characters.
pub fn check_group(group: &str) -> Result<(), String> {
    if group.is_empty() || group.chars().count() > MAX_VALUE {
        return Err("a group name has 1 to 128 characters".into());
    }
    match group
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-@+".contains(*c)))
    {
        Some(c) => Err(format!(
            "group `{}` has {}; use letters, digits and . _ - @ +",
            shown(group),
            char_name(c)
        )),
        None => Ok(()),
    }
}

/// A value for a message: control characters shown escaped, at most 60 characters, and no
/// backtick (messages put values in code spans; renderers escape the rest).
pub fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(60)
        .flat_map(|c| {
            if c.is_control() || c == '`' {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if value.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// A character named for a message.
pub fn char_name(c: char) -> String {
    match c {
        '\n' => "a line break".into(),
        '\t' => "a tab".into(),
        c if c.is_control() || c == '`' => format!("the character {}", c.escape_unicode()),
        c => format!("`{c}`"),
    }
}
