//! The shipped Prometheus alerting rules (`contrib/prometheus/`): valid for `promtool check
//! rules`, their unit tests green under `promtool test rules`, every metric they use one
//! that orgvend exports, every alert with a runbook in docs/runbooks.md.

use orgvend::metrics::{InboxGauges, Metrics, StoreGauges};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rules() -> String {
    std::fs::read_to_string(root().join("contrib/prometheus/orgvend.rules.yml")).unwrap()
}

/// promtool: `ORGVEND_PROMTOOL`, else the one on PATH. Missing, the test fails and says how
/// to get it.
fn promtool() -> PathBuf {
    let found = std::env::var_os("ORGVEND_PROMTOOL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("promtool"))
                    .find(|p| p.is_file())
            })
        });
    found.unwrap_or_else(|| {
        panic!(
            "promtool not found: run the suite with scripts/test (it unpacks Debian's prometheus package into .tools), \
             or install it (apt-get install prometheus) or set ORGVEND_PROMTOOL to its path"
        )
    })
}

fn run(args: &[&str]) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(root().join("contrib/prometheus"))
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_rules() {
    run(&["check", "rules", "orgvend.rules.yml"]);
}

#[test]
fn promtool_runs_the_rules_unit_tests() {
    run(&["test", "rules", "orgvend.rules.test.yml"]);
}

/// Every `orgvend_…` name in the rules is one orgvend exports.
#[test]
fn the_rules_use_only_metrics_orgvend_exports() {
    let m = Metrics::default();
    m.delivery("merge_request", "opened", "accepted");
    m.drift([("ou".to_string(), 0)].into_iter().collect());
    let exported = m.render(Some(&InboxGauges::default()), Some(&StoreGauges::default()));
    let text = rules();
    let mut names: Vec<&str> = text
        .match_indices("orgvend_")
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        assert!(
            exported.contains(&format!("# TYPE {name} ")),
            "the rules use {name}, which orgvend does not export"
        );
    }
}

/// Every alert has its runbook: a `## AlertName` section, the anchor its `runbook_url` names.
#[test]
fn every_alert_has_a_runbook() {
    let runbooks = std::fs::read_to_string(root().join("docs/runbooks.md")).unwrap();
    let text = rules();
    let alerts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 9, "{alerts:?}");
    for alert in alerts {
        assert!(
            runbooks.contains(&format!("\n## {alert}\n")),
            "docs/runbooks.md has no section for {alert}"
        );
        assert!(
            text.contains(&format!("runbooks.md#{}", alert.to_lowercase())),
            "{alert}'s runbook_url"
        );
    }
}
