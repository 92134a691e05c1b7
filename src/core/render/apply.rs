//! The MR note during and after the apply: the outcome, who approved and merged, and each
//! account's steps as they complete, with its id once AWS gave one.

use super::escape::{code, html, inline};
use super::{NOTE_MARKER, action_word, describe};
use crate::core::progress::{AccountProgress, ApplyReport, Outcome, StepState};
use std::fmt::Write;

pub fn render(r: &ApplyReport) -> String {
    render_within(r, super::markdown::NOTE_LIMIT)
}

/// The note in at most `budget` bytes (GitLab's limit counts characters; bytes are stricter).
pub fn render_within(r: &ApplyReport, budget: usize) -> String {
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
    if let Some(by) = &r.repair {
        let headline = match &r.outcome {
            Outcome::Running => format!("🔧 Repairing drift: {accounts}"),
            Outcome::Applied => format!("✅ Repaired: {accounts}"),
            Outcome::Failed { retrying: true } => {
                format!("⚠️ The repair stopped for {failed} of {accounts}: orgvend will retry")
            }
            _ => format!(
                "❌ The repair failed for {failed} of {accounts}: fix the cause, then comment `/orgvend apply` again"
            ),
        };
        let _ = writeln!(
            out,
            "### {}
",
            inline(&headline)
        );
        let _ = writeln!(
            out,
            "{}
",
            inline(&format!(
                "Asked by `{by}`: each account put back as `{}` of the target branch declares it (and as it was last applied under approval).",
                short(&r.merge_sha)
            ))
        );
        return finish(out, r, budget);
    }
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
        Outcome::Parked { .. } => format!("⏸️ Parked: {accounts}, waiting for a quota"),
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
    if let Outcome::Parked { reason } = &r.outcome {
        let _ = writeln!(
            out,
            "{}\n",
            inline(&format!(
                "orgvend stopped here on purpose: {reason}. Nothing failed; what is done stays done. Comment `/orgvend retry` once the quota allows, and the apply goes on from here."
            ))
        );
    }
    if let Outcome::Refused { reasons } = &r.outcome {
        out.push_str("orgvend refused to change AWS:\n\n");
        for reason in reasons {
            let _ = writeln!(out, "- {}", inline(reason));
        }
        out.push_str("\nNothing was created or changed. Revert the merge, or fix what is missing in a new merge request.\n");
        return out;
    }
    finish(out, r, budget)
}

/// The accounts' sections after the headline, folded to fit `budget`.
fn finish(mut out: String, r: &ApplyReport, budget: usize) -> String {
    let running = matches!(r.outcome, Outcome::Running);
    let sections: Vec<String> = r.accounts.iter().map(|a| section(a, running)).collect();
    if out.len() + sections.iter().map(String::len).sum::<usize>() <= budget {
        sections.iter().for_each(|s| out.push_str(s));
        return out;
    }
    // Too long for one note: accounts without a failure fold to one line each, failures keep
    // their details while the lines of the rest still fit.
    let lines: Vec<String> = r.accounts.iter().map(line).collect();
    let mut after = vec![0usize; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        after[i] = after[i + 1] + lines[i].len();
    }
    let _ = writeln!(
        out,
        "Accounts without a failure are folded to one line each to fit GitLab's note size limit.\n"
    );
    for (i, a) in r.accounts.iter().enumerate() {
        let detailed =
            a.error.is_some() && out.len() + sections[i].len() + after[i + 1] + RESERVE <= budget;
        if detailed {
            out.push_str(&sections[i]);
        } else if out.len() + lines[i].len() + RESERVE <= budget {
            out.push_str(&lines[i]);
        } else {
            let _ = writeln!(out, "- …and {} more accounts", r.accounts.len() - i);
            break;
        }
    }
    out
}

/// Room kept for the last line.
const RESERVE: usize = 200;

fn icon(a: &AccountProgress) -> &'static str {
    let finished = a
        .steps
        .iter()
        .all(|(_, s)| matches!(s, StepState::Done | StepState::Skipped));
    match (&a.error, finished) {
        (Some(_), _) => "❌",
        (None, true) => "✅",
        (None, false) => "⏳",
    }
}

fn section(a: &AccountProgress, running: bool) -> String {
    let mut out = String::new();
    let id = a
        .account_id
        .as_deref()
        .map(|i| format!(" — <code>{}</code>", html(i)))
        .unwrap_or_default();
    let open = if a.error.is_some() || running {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<details{open}><summary>{} <b>{}</b> <code>{}</code>{id}</summary>\n",
        icon(a),
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
    out
}

/// One account on one line: its state, id, repository and how many steps are done.
fn line(a: &AccountProgress) -> String {
    let done = a
        .steps
        .iter()
        .filter(|(_, s)| matches!(s, StepState::Done | StepState::Skipped))
        .count();
    let id = a
        .account_id
        .as_deref()
        .map(|i| format!(" — {}", code(i)))
        .unwrap_or_default();
    let repo = a
        .repository
        .as_deref()
        .filter(|u| is_web_url(u))
        .map(|u| format!(" — <a href=\"{}\">repository</a>", html(u)))
        .unwrap_or_default();
    let failed = a
        .error
        .as_deref()
        .map(|e| format!(" — **failed:** {}", code(e)))
        .unwrap_or_default();
    format!(
        "- {} {} {}{id}{repo} — {done}/{} steps{failed}\n",
        icon(a),
        action_word(a.action),
        code(&a.name),
        a.steps.len()
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::{Action, Step};

    fn account(i: usize, failed: bool) -> AccountProgress {
        AccountProgress {
            action: Action::Create,
            name: format!("client-a{i}"),
            email: format!("aws+client-a{i}@example.com"),
            account_id: Some(format!("{:012}", 100_000_000_000usize + i)),
            steps: (0..24)
                .map(|k| {
                    (
                        Step::LockTable {
                            table: format!("terraform-locks-{k}"),
                        },
                        StepState::Done,
                    )
                })
                .collect(),
            error: failed.then(|| "AccessDenied: no".to_string()),
            notes: Vec::new(),
            repository: Some(format!("https://gitlab.example.com/aws-accounts/a{i}")),
        }
    }

    #[test]
    fn a_large_apply_folds_to_fit_and_keeps_failures_in_full() {
        let report = |n: usize| ApplyReport {
            outcome: Outcome::Failed { retrying: false },
            merge_sha: "0123456789abcdef".into(),
            merged_by: Some("infra-bob".into()),
            approved_by: vec!["infra-alice".into()],
            accounts: (0..n).map(|i| account(i, i == 1500)).collect(),
            repair: None,
        };
        let small = render(&report(3));
        assert_eq!(small.matches("<details").count(), 3, "{small}");

        let big = render(&report(3000));
        assert!(
            big.len() <= crate::core::render::markdown::NOTE_LIMIT,
            "{}",
            big.len()
        );
        assert!(big.contains("folded to one line each"));
        assert_eq!(
            big.matches("<details").count(),
            1,
            "the failed account keeps its details"
        );
        assert!(big.contains("<code>client-a1500</code>"));
        assert!(big.contains("`client-a2999`"), "every account is listed");
        assert!(big.contains("— 24/24 steps"));

        let tiny = render_within(&report(3000), 50_000);
        assert!(tiny.len() <= 50_000);
        assert!(
            tiny.contains("more accounts"),
            "{}",
            &tiny[tiny.len() - 300..]
        );
    }
}
