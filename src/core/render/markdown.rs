//! The MR note in GitLab Markdown: the hidden marker, a one-line verdict, the summary, every
//! violation with file:line and its fix, the approvals, and one collapsible section per
//! account with its steps and the diff of its declarations.

use super::escape::{code, fenced, html, inline};
use super::{
    NOTE_MARKER, action_word, approvals_sentence, counts, describe, headline, unified_diff,
};
use crate::core::plan::{Action, Change, Plan};
use crate::core::report::{Report, Verdict};
use crate::core::rules::{Severity, Violation};
use std::fmt::Write;

/// GitLab refuses notes over 1,000,000 characters.
pub const NOTE_LIMIT: usize = 1_000_000;
/// Room kept for the lines that say what was folded.
const RESERVE: usize = 2_000;

/// The note, within GitLab's size limit.
pub fn render(report: &Report) -> String {
    render_within(report, NOTE_LIMIT)
}

/// The note in at most `budget` characters (about; the header and the approvals always stay).
/// Detail is folded section by section, never cutting Markdown: violations past half the
/// budget and plan sections past the rest become a compact list, then a count.
pub fn render_within(report: &Report, budget: usize) -> String {
    let mut out = String::new();
    out.push_str(NOTE_MARKER);
    out.push('\n');
    let icon = match report.verdict {
        Verdict::Invalid | Verdict::Blocked => "🚫",
        Verdict::AwaitingApproval => "⏳",
        Verdict::Passes | Verdict::Ready => "✅",
    };
    let _ = writeln!(out, "### {icon} {}\n", inline(&headline(report)));
    let s = &report.summary;
    if report.verdict != Verdict::Invalid {
        let _ = write!(out, "**{}**", counts(report));
    }
    if s.errors > 0 {
        let _ = write!(
            out,
            " · {} violation{}",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        );
    }
    if s.warnings > 0 {
        let _ = write!(
            out,
            " · {} warning{}",
            s.warnings,
            if s.warnings == 1 { "" } else { "s" }
        );
    }
    if let Some(label) = &report.head_label {
        let sep = if report.verdict == Verdict::Invalid {
            ""
        } else {
            " · "
        };
        let _ = write!(out, "{sep}at {}", code(label));
    }
    out.push_str("\n\n");

    if !report.parse_errors.is_empty() {
        out.push_str("#### Syntax errors\n\n");
        // within half the budget, as the violations are: 10,000 broken files made a note
        // GitLab refuses, and the MR was left with none
        let mut shown = 0;
        for e in &report.parse_errors {
            let line = format!(
                "- {} {}\n",
                code(&format!("{}:{}:{}", e.at.file, e.at.line, e.at.col)),
                code(&e.message)
            );
            if out.len() + line.len() + RESERVE > budget / 2 {
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        if shown < report.parse_errors.len() {
            let _ = writeln!(
                out,
                "- …and {} more, {FOLDED}",
                report.parse_errors.len() - shown
            );
        }
        out.push_str("\nFix the syntax and push again; nothing else was checked.\n\n");
    }

    let errors: Vec<&Violation> = report
        .violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .collect();
    let warnings: Vec<&Violation> = report
        .violations
        .iter()
        .filter(|v| v.severity == Severity::Warning)
        .collect();
    let approvals = if report.parse_errors.is_empty() {
        format!(
            "#### Approvals\n\n{}\n\n",
            inline(&approvals_sentence(report))
        )
    } else {
        String::new()
    };
    let violations_budget = budget / 2;
    for (title, list) in [
        ("#### Violations", errors),
        ("#### ⚠️ Destructive changes", warnings),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}\n");
        let mut shown = 0;
        for v in &list {
            let mut line = String::new();
            violation(&mut line, v);
            if out.len() + line.len() + RESERVE > violations_budget {
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        if shown < list.len() {
            let _ = writeln!(out, "- …and {} more, {FOLDED}", list.len() - shown);
        }
        out.push('\n');
    }
    out.push_str(&approvals);

    let changes = &report.plan.changes;
    if changes.is_empty() {
        return out;
    }
    out.push_str("#### Plan\n\n");
    // Each change folded to one line; a detailed section is written only while the lines of
    // every change after it still fit, so folding never drops an account from the note.
    let lines: Vec<String> = changes
        .iter()
        .map(|c| {
            let kind = c.account_type.as_deref().map(|t| format!(" ({})", code(t)));
            format!(
                "- {} {}{}\n",
                action_word(c.action),
                code(&c.name),
                kind.unwrap_or_default()
            )
        })
        .collect();
    let mut after = vec![0usize; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        after[i] = after[i + 1] + lines[i].len();
    }
    let folded_header = format!("The other changes, {FOLDED}:\n\n");
    let mut detailed = 0;
    for (i, c) in changes.iter().enumerate() {
        let mut section = String::new();
        change(&mut section, &report.plan, c);
        let rest = if i + 1 == changes.len() {
            0
        } else {
            folded_header.len() + after[i + 1]
        };
        if out.len() + section.len() + rest + RESERVE > budget {
            break;
        }
        out.push_str(&section);
        detailed += 1;
    }
    if detailed == changes.len() {
        return out;
    }
    out.push_str(&folded_header);
    let mut listed = detailed;
    for line in &lines[detailed..] {
        if out.len() + line.len() + RESERVE / 4 > budget {
            break;
        }
        out.push_str(line);
        listed += 1;
    }
    if listed < changes.len() {
        let _ = writeln!(out, "- …and {} more", changes.len() - listed);
    }
    out
}

/// What a folded part says.
const FOLDED: &str =
    "folded to fit GitLab's note size limit: `orgvend check --base <target branch>` shows them all";

fn violation(out: &mut String, v: &Violation) {
    let at =
        v.at.as_ref()
            .map(|a| format!("{} ", code(&a.to_string())))
            .unwrap_or_default();
    let module = v
        .module
        .as_ref()
        .map(|m| format!("{} ", code(m)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- {at}{module}{} — {}<br>**Fix:** {}",
        code(&v.rule),
        inline(&v.message),
        inline(&v.fix)
    );
}

fn change(out: &mut String, plan: &Plan, c: &Change) {
    let sign = match c.action {
        Action::Create => "➕",
        Action::Update => "✏️",
        Action::Close => "🗑️",
    };
    let kind = c
        .account_type
        .as_deref()
        .map(|t| format!(" ({})", html(t)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "<details><summary>{sign} <b>{}</b> <code>{}</code>{kind} — <code>{}</code></summary>\n",
        action_word(c.action),
        html(&c.name),
        html(&c.at.to_string()),
    );
    for f in &c.fields {
        let _ = writeln!(
            out,
            "- {}",
            inline(&format!(
                "`{}`: `{:#}` → `{:#}`",
                f.field, f.before, f.after
            ))
        );
    }
    if !c.fields.is_empty() {
        out.push('\n');
    }
    if let Some(who) = super::access_sentence(plan, c) {
        let _ = writeln!(out, "{}\n", inline(&who));
    }
    let steps = plan.steps(c);
    if steps.is_empty() {
        out.push_str("No change in AWS.\n");
    }
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, inline(&describe(step)));
    }
    let unified = unified_diff(c);
    if !unified.is_empty() {
        out.push('\n');
        out.push_str(&fenced("diff", &unified));
    }
    out.push_str("\n</details>\n\n");
}
