//! Plain text for terminals (`orgvend check`): the same facts as the note, without Markdown,
//! with every value stripped of control characters.

use super::escape::plain;
use super::{action_word, approvals_sentence, counts, describe, headline};
use crate::core::plan::Action;
use crate::core::report::Report;
use crate::core::rules::Severity;
use std::fmt::Write;

/// Past this many changes the terminal gets one line per change, not every step.
pub const TEXT_DETAIL_LIMIT: usize = 50;

pub fn render(report: &Report) -> String {
    // a plan too large to list in detail gets one line of about 60 bytes for each change
    let mut out = String::with_capacity(4096 + 64 * report.plan.changes.len());
    let _ = writeln!(out, "{}", plain(&headline(report)));
    let _ = writeln!(out, "{}", counts(report).replace(" ·", ","));
    for e in &report.parse_errors {
        let _ = writeln!(
            out,
            "\n{}:{}:{}: syntax error: {}",
            plain(&e.at.file),
            e.at.line,
            e.at.col,
            plain(&e.message)
        );
    }
    for severity in [Severity::Error, Severity::Warning] {
        let list: Vec<_> = report
            .violations
            .iter()
            .filter(|v| v.severity == severity)
            .collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}:",
            if severity == Severity::Error {
                "violations"
            } else {
                "destructive changes"
            }
        );
        for v in list {
            let at =
                v.at.as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into());
            let module = v
                .module
                .as_deref()
                .map(|m| format!(" {m}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {}: [{}]{}", plain(&at), v.rule, plain(&module));
            let _ = writeln!(out, "      {}", plain(&v.message));
            let _ = writeln!(out, "      fix: {}", plain(&v.fix));
        }
    }
    if report.parse_errors.is_empty() {
        let _ = writeln!(out, "\napprovals: {}", plain(&approvals_sentence(report)));
    }
    if !report.plan.changes.is_empty() {
        out.push_str("\nplan:\n");
    }
    let detailed = if report.plan.changes.len() > TEXT_DETAIL_LIMIT {
        0
    } else {
        usize::MAX
    };
    if detailed == 0 {
        let _ = writeln!(
            out,
            "  ({} changes: steps are listed with --format json)",
            report.plan.changes.len()
        );
    }
    for (n, c) in report.plan.changes.iter().enumerate() {
        let sign = match c.action {
            Action::Create => '+',
            Action::Update => '~',
            Action::Close => '-',
        };
        // `plain` replaces character by character: the line is written in pieces, with no
        // string made for its parts (a line for each of 10,000 changes)
        let _ = write!(out, "  {sign} {} {}", action_word(c.action), plain(&c.name));
        if let Some(t) = c.account_type.as_deref() {
            let _ = write!(out, " ({})", plain(t));
        }
        let _ = writeln!(out, "  {}:{}", plain(&c.at.file), c.at.line);
        if n >= detailed {
            continue;
        }
        for f in &c.fields {
            let _ = writeln!(
                out,
                "      {}: {:#} -> {:#}",
                f.field,
                plain(&f.before.to_string()),
                plain(&f.after.to_string())
            );
        }
        if let Some(who) = super::access_sentence(&report.plan, c) {
            let _ = writeln!(out, "      {}", plain(&who));
        }
        for (i, step) in report.plan.steps(c).iter().enumerate() {
            let _ = writeln!(out, "      {:>2}. {}", i + 1, plain(&describe(step)));
        }
    }
    out
}
