//! `--format json`: the report as one JSON document, with each change's diff. The shape is
//! documented in `docs/check.md`.

use crate::core::report::Report;
use serde_json::{Value, json};

pub fn render(report: &Report) -> String {
    let mut doc = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(changes) = doc
        .pointer_mut("/plan/changes")
        .and_then(Value::as_array_mut)
    {
        for (c, out) in report.plan.changes.iter().zip(changes) {
            let diff = super::unified_diff(c);
            out["diff"] = json!(diff);
            out["destructive"] = json!(c.destructive());
            out["steps"] = serde_json::to_value(report.plan.steps(c)).unwrap_or(Value::Null);
        }
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "null".into());
    text.push('\n');
    text
}
