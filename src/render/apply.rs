//! The MR note during and after the apply: the outcome, who approved and merged, and each
//! account's steps as they complete, with its id once AWS gave one.

use super::escape::{code, html, inline};
use super::{NOTE_MARKER, action_word, describe};
use crate::apply::{ApplyReport, Outcome, StepState};
use std::fmt::Write;

pub fn render(r: &ApplyReport) -> String {
    let mut out = String::new();
    out.push_str(NOTE_MARKER);
    out.push('\n');
    let n = r.accounts.len();
    let accounts = if n == 1 {
        "1 account".to_string()
    } else {
        format!("{n} accounts")
    };
    let failed = r.accounts.iter().filter(|a| a.error.is_some()).count();
    let headline = match &r.outcome {
        Outcome::Running => format!("🚀 Applying the merge: {accounts}"),
        Outcome::Applied => format!("✅ Applied: {accounts}"),
        Outcome::Failed { retrying: true } => {
            format!("⚠️ The apply stopped for {failed} of {accounts}: orgvend will retry")
        }
        Outcome::Failed { retrying: false } => {
            format!(
                "❌ The apply failed for {failed} of {accounts}: fix the cause, then comment `/orgvend retry`"
            )
        }
        Outcome::Refused { .. } => "🚫 Merged, but NOT applied".to_string(),
    };
    let _ = writeln!(out, "### {}\n", inline(&headline));
    let merged_by = r
        .merged_by
        .as_deref()
        .map(|m| format!("by `{m}` "))
        .unwrap_or_default();
    let approved = if r.approved_by.is_empty() {
        "approved by no member of the approval group".to_string()
    } else {
        format!(
            "approved by {}",
            r.approved_by
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let _ = writeln!(
        out,
        "{}\n",
        inline(&format!(
            "Merged {merged_by}as `{}`; {approved}.",
            short(&r.merge_sha)
        ))
    );
    if let Outcome::Refused { reasons } = &r.outcome {
        out.push_str("orgvend refused to change AWS:\n\n");
        for reason in reasons {
            let _ = writeln!(out, "- {}", inline(reason));
        }
        out.push_str("\nNothing was created or changed. Revert the merge, or fix what is missing in a new merge request.\n");
        return out;
    }
    for a in &r.accounts {
        let id = a
            .account_id
            .as_deref()
            .map(|i| format!(" — <code>{}</code>", html(i)))
            .unwrap_or_default();
        let open = if a.error.is_some() || matches!(r.outcome, Outcome::Running) {
            " open"
        } else {
            ""
        };
        let icon = match (
            &a.error,
            a.steps
                .iter()
                .all(|(_, s)| matches!(s, StepState::Done | StepState::Skipped)),
        ) {
            (Some(_), _) => "❌",
            (None, true) => "✅",
            (None, false) => "⏳",
        };
        let _ = writeln!(
            out,
            "<details{open}><summary>{icon} <b>{}</b> <code>{}</code>{id}</summary>\n",
            action_word(a.action),
            html(&a.name)
        );
        for (step, state) in &a.steps {
            let mark = match state {
                StepState::Done => "✅",
                StepState::Running => "⏳",
                StepState::Pending => "⬜",
                StepState::Failed => "❌",
                StepState::Skipped => "➖",
            };
            let _ = writeln!(out, "- {mark} {}", inline(&describe(step)));
        }
        if let Some(url) = a.repository.as_deref().filter(|u| is_web_url(u)) {
            let _ = writeln!(
                out,
                "\n📁 Repository: <a href=\"{}\">{}</a>",
                html(url),
                html(url)
            );
        }
        for note in &a.notes {
            let _ = writeln!(out, "\n➖ {}", inline(note));
        }
        if let Some(e) = &a.error {
            let _ = writeln!(out, "\n**Failed:** {}", code(e));
        }
        out.push_str("\n</details>\n\n");
    }
    out
}

/// A link orgvend will write: http(s), no whitespace or quotes.
fn is_web_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && !u
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'<>`".contains(c))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}
