//! The MR note in GitLab Markdown: the hidden marker, a one-line verdict, the summary, every
//! violation with file:line and its fix, the approvals, and one collapsible section per
//! account with its steps and the diff of its declarations.

use super::escape::{code, fenced, html, inline};
use super::{NOTE_MARKER, action_word, approvals_sentence, counts, describe, headline};
use crate::plan::{Action, Change};
use crate::policy::{Severity, Violation};
use crate::report::{Report, Verdict};
use similar::TextDiff;
use std::fmt::Write;

pub fn render(report: &Report) -> String {
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
    let _ = write!(out, "**{}**", counts(report));
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
        let _ = write!(out, " · at {}", code(label));
    }
    out.push_str("\n\n");

    if !report.parse_errors.is_empty() {
        out.push_str("#### Syntax errors\n\n");
        for e in &report.parse_errors {
            let _ = writeln!(
                out,
                "- {} {}",
                code(&format!("{}:{}:{}", e.at.file, e.at.line, e.at.col)),
                inline(&format!("`{}`", e.message))
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
    if !errors.is_empty() {
        out.push_str("#### Violations\n\n");
        for v in errors {
            violation(&mut out, v);
        }
        out.push('\n');
    }
    if !warnings.is_empty() {
        out.push_str("#### ⚠️ Destructive changes\n\n");
        for v in warnings {
            violation(&mut out, v);
        }
        out.push('\n');
    }

    if report.parse_errors.is_empty() {
        let _ = writeln!(
            out,
            "#### Approvals\n\n{}\n",
            inline(&approvals_sentence(report))
        );
    }

    if !report.plan.changes.is_empty() {
        out.push_str("#### Plan\n\n");
        for c in &report.plan.changes {
            change(&mut out, c);
        }
    }
    out
}

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

fn change(out: &mut String, c: &Change) {
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
    if c.steps.is_empty() {
        out.push_str("No change in AWS.\n");
    }
    for (i, step) in c.steps.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, inline(&describe(step)));
    }
    let diff = TextDiff::from_lines(&c.before_text, &c.after_text);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header("base", "head")
        .to_string();
    if !unified.is_empty() {
        out.push('\n');
        out.push_str(&fenced("diff", &unified));
    }
    out.push_str("\n</details>\n\n");
}
