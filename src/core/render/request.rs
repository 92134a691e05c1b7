//! Requests by issue in words: orgvend's one note on the issue (what is missing or wrong, or
//! the MR it opened) and the description of that MR. Everything the requester wrote is
//! escaped: nothing in an issue becomes a link, a mention, HTML or a Markdown structure.

use super::escape::{cell, code, inline, text};
use crate::core::request::{Generated, Problem, form};

/// The hidden marker of orgvend's note on a request's issue.
pub const REQUEST_MARKER: &str = "<!-- orgvend:request -->";

/// What orgvend answers a request with.
#[derive(Debug)]
pub enum Answer<'a> {
    /// The block is there, and this is wrong with it.
    Problems(&'a [Problem]),
    /// orgvend will not take this request (who asks, how many are open, the rules in force);
    /// the sentence says why, its values in backticks.
    Refused(String),
    /// `/orgvend request` on an issue without a request block.
    NoBlock,
    /// The MR is open (or was brought up to date).
    Opened {
        mr_iid: u64,
        generated: &'a Generated,
        updated: bool,
    },
    /// The request's MR was merged: a new account is a new issue.
    Merged { mr_iid: u64 },
}

/// GitLab usernames are letters, digits, `_`, `.` and `-`: such a name may be mentioned.
fn mention(username: &str) -> String {
    if !username.is_empty()
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        format!("@{username}")
    } else {
        text(username)
    }
}

/// orgvend's note on the issue.
pub fn request_note(answer: &Answer, requester: &str, footer: &str) -> String {
    let who = mention(requester);
    let body = match answer {
        Answer::Problems(problems) => {
            let mut out = format!(
                "### ✋ This request cannot be made yet\n\n{who}, please edit the issue's `{}` block:\n\n",
                form::INFO
            );
            for p in problems.iter() {
                out.push_str(&format!(
                    "- **{}**: {}\n",
                    text(&p.field),
                    inline(&p.message)
                ));
            }
            out.push_str("\norgvend reads the block again when the issue is edited (or comment `/orgvend request`).");
            out
        }
        Answer::Refused(why) => format!(
            "### 🚫 orgvend will not make this request\n\n{}",
            inline(why)
        ),
        Answer::NoBlock => format!(
            "### ❔ No request here\n\norgvend reads a fenced block with the info string `{}` (the issue template **aws-account** has one). Fields: {}.",
            form::INFO,
            form::FIELDS
                .iter()
                .map(|f| code(f))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Answer::Opened {
            mr_iid,
            generated: g,
            updated,
        } => format!(
            "### ✅ {} !{mr_iid}\n\n{who}: the {} account {} ({}), written to {}. The merge request is reviewed like any other and needs approval from Infrastructure; **your own approval does not count**. Edit this issue to change the request: the same merge request is updated.",
            if *updated {
                "Merge request updated:"
            } else {
                "Merge request opened:"
            },
            code(&g.account_type),
            code(&g.name),
            code(&g.email),
            code(&g.path),
        ),
        Answer::Merged { mr_iid } => format!(
            "### ✔️ Done in !{mr_iid}\n\nThis request was merged. For another account, open a new issue."
        ),
    };
    format!("{REQUEST_MARKER}\n{body}\n\n{footer}")
}

/// The request MR's description.
pub fn mr_description(
    issue_iid: u64,
    requester: &str,
    editors: &[String],
    purpose: Option<&str>,
    g: &Generated,
) -> String {
    let edited = if editors.is_empty() {
        String::new()
    } else {
        format!(
            " (edited by {})",
            editors
                .iter()
                .map(|e| code(e))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut out = format!(
        "Closes #{issue_iid}\n\nRequested by {}{edited} in #{issue_iid}; written by orgvend from the issue's request. The approvals of those who wrote or edited the request do not count.\n\n",
        mention(requester)
    );
    if let Some(p) = purpose.filter(|p| !p.trim().is_empty()) {
        // a code span: nothing in it becomes a link, not even `www.example.com`
        out.push_str(&format!("**Purpose:** {}\n\n", code(p)));
    }
    out.push_str(&format!(
        "| | |\n|---|---|\n| type | {} |\n| name and alias | {} |\n| email | {} |\n| file | {} |\n",
        cell(&g.account_type),
        cell(&g.name),
        cell(&g.email),
        cell(&g.path)
    ));
    for (k, v) in &g.tags {
        out.push_str(&format!("| tag {} | {} |\n", cell(k), cell(v)));
    }
    for (role, group) in &g.access {
        out.push_str(&format!("| access {} | {} |\n", cell(role), cell(group)));
    }
    out.push_str(
        "\nEdit the issue to change this request; orgvend keeps this merge request in step.",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_a_requester_wrote_becomes_markdown() {
        let problems = [Problem::new(
            "tags",
            "tag key `<img src=x onerror=alert(1)>` has `<`",
        )];
        let note = request_note(&Answer::Problems(&problems), "ev<il", "");
        // a value stays in its code span, which GitLab shows literally
        let outside = note.replace("`<img src=x onerror=alert(1)>`", "");
        assert!(!outside.contains("<img"), "{note}");
        assert!(note.contains("ev&lt;il"), "{note}");
        assert!(note.starts_with(REQUEST_MARKER));
        let note = request_note(
            &Answer::Refused("`@all` [x](javascript:y)".into()),
            "dev",
            "",
        );
        assert!(note.contains("`@all`"), "{note}");
        assert!(note.contains("\\[x\\]\\(javascript:"), "{note}");
    }
}
