//! The renderers over one review with every kind of content: file snapshots (insta) for the
//! MR note, the terminal text and the JSON; and hostile declarations that must not inject
//! Markdown, HTML, mentions or terminal escapes.

use orgvend::core::decl;
use orgvend::core::model::SourceFile;
use orgvend::core::policy::Policy;
use orgvend::core::render;
use orgvend::core::report::{self, ChangeInput, IgnoredApproval, Report};

const POLICY: &str = include_str!("../policies/orgvend.toml");
const REGO: &str = include_str!("../policies/clients.rego");

fn policy(allow_close: bool) -> Policy {
    let toml = if allow_close {
        POLICY.replace("allow_close = false", "allow_close = true")
    } else {
        POLICY.to_string()
    };
    Policy::load(
        &[
            SourceFile::new("policies/orgvend.toml", toml),
            SourceFile::new("policies/clients.rego", REGO),
        ],
        "policies",
    )
    .unwrap()
}

fn client(slug: &str, email: &str, tags: &str) -> String {
    let key = slug.replace('-', "_");
    format!(
        r#"
module "subaccount_client_{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "client-{slug}"
  email  = "{email}"
}}

module "subaccount_client_{key}_base" {{
  source        = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id    = module.subaccount_client_{key}.id
  account_alias = "client-{slug}"
  account_type  = "client"
  tags          = {{ owner = "team-a", cost-center = "cc-1", client = "{slug}"{tags} }}
}}
"#
    )
}

fn review(
    p: &Policy,
    base: Option<&str>,
    head: &str,
    approvals: Option<(Vec<String>, Vec<IgnoredApproval>)>,
) -> Report {
    let head = decl::read(&[SourceFile::new("clients.tf", head)], &p.sources);
    let base = base.map(|b| decl::read(&[SourceFile::new("clients.tf", b)], &p.sources));
    let change = ChangeInput {
        approvals,
        head_label: Some("3f2a9c1".into()),
        ..ChangeInput::local(p)
    };
    report::assess(change.with(base.as_ref(), &head))
}

/// Base: acme and beta. Head: acme retagged, beta closed, gamma new, delta new but misnamed.
fn mixed(p: &Policy) -> Report {
    let base = client("acme", "aws+client-acme@example.com", "")
        + &client("beta", "aws+client-beta@example.com", "");
    let head = client("acme", "aws+client-acme@example.com", ", env = \"prod\"")
        + &client("gamma", "aws+client-gamma@example.com", "")
        + &client("delta", "delta@gmail.com", "");
    review(p, Some(&base), &head, None)
}

#[test]
fn note_markdown() {
    insta::assert_snapshot!(
        "note_mixed",
        render::markdown::render(&mixed(&policy(true)))
    );
}

#[test]
fn terminal_text() {
    insta::assert_snapshot!("text_mixed", render::text::render(&mixed(&policy(true))));
}

#[test]
fn json_document() {
    insta::assert_snapshot!("json_mixed", render::json::render(&mixed(&policy(true))));
}

#[test]
fn note_when_approved_and_when_awaiting() {
    let p = policy(false);
    let head = client("gamma", "aws+client-gamma@example.com", "");
    let awaiting = review(
        &p,
        None,
        &head,
        Some((
            vec![],
            vec![IgnoredApproval {
                username: "dev".into(),
                reason: "the MR's author".into(),
            }],
        )),
    );
    insta::assert_snapshot!("note_awaiting", render::markdown::render(&awaiting));
    let ready = review(&p, None, &head, Some((vec!["infra-alice".into()], vec![])));
    assert_eq!(ready.verdict, report::Verdict::Ready);
    assert!(render::markdown::render(&ready).contains("### ✅ Ready to merge"));
}

#[test]
fn note_for_a_syntax_error() {
    let p = policy(false);
    let r = review(&p, None, "module \"x\" {\n  name = \n}\n", None);
    assert_eq!(r.verdict, report::Verdict::Invalid);
    insta::assert_snapshot!("note_syntax_error", render::markdown::render(&r));
}

/// Removes what Markdown shows literally: fenced blocks, code spans and <code> elements.
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let trimmed = line.trim_start();
        match &fence {
            Some(f) => {
                if trimmed.starts_with(f.as_str()) && trimmed.trim_start_matches('`').is_empty() {
                    fence = None;
                }
                continue;
            }
            None if trimmed.starts_with("```") => {
                fence = Some(trimmed.chars().take_while(|c| *c == '`').collect());
                continue;
            }
            None => {}
        }
        // strip <code>…</code>
        let mut rest = line.to_string();
        while let (Some(a), Some(b)) = (rest.find("<code>"), rest.find("</code>")) {
            if b < a {
                break;
            }
            rest = format!("{}{}", &rest[..a], &rest[b + 7..]);
        }
        // strip code spans of any fence length
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '`' {
                let n = chars[i..].iter().take_while(|c| **c == '`').count();
                let fence: String = "`".repeat(n);
                let after: String = chars[i + n..].iter().collect();
                if let Some(end) = after.find(&fence) {
                    i += n + after[..end].chars().count() + n;
                    continue;
                }
            }
            if chars[i] == '\\' && i + 1 < chars.len() {
                i += 2; // an escaped character is literal
                continue;
            }
            out.push(chars[i]);
            i += 1;
        }
        out.push('\n');
    }
    out
}

#[test]
fn hostile_declarations_cannot_inject() {
    let p = policy(false);
    let evil_name =
        "client-x<img src=x onerror=alert(1)>@admin [link](javascript:alert(1)) #12 `</code>";
    let head = client(
        "evil",
        "aws+client-evil@example.com",
        ", note = \"<script>alert(1)</script> @everyone ![i](http://t/x.png)\"",
    )
    .replace(
        "name   = \"client-evil\"",
        &format!("name   = {:?}", evil_name),
    )
    .replace(
        "tags          = {",
        "tags          = {\n    \"\\u001b[31mred\" = \"```\\n</details><h1>x</h1>\"\n   ",
    );
    let r = review(&p, None, &head, None);
    assert!(
        r.violations.iter().any(|v| v.message.contains("<img")),
        "the hostile name is reported"
    );
    let md = render::markdown::render(&r);
    let visible = outside_code(&md);
    let allowed = [
        "<!-- orgvend:plan -->",
        "<details>",
        "</details>",
        "<summary>",
        "</summary>",
        "<b>",
        "</b>",
        "<br>",
    ];
    let mut scrubbed = visible.clone();
    for tag in allowed {
        scrubbed = scrubbed.replace(tag, "");
    }
    assert!(
        !scrubbed.contains('<'),
        "raw HTML outside code:\n{scrubbed}"
    );
    assert!(
        !scrubbed.contains("](javascript"),
        "a link survived:\n{scrubbed}"
    );
    assert!(
        !scrubbed.contains("@admin") && !scrubbed.contains("@everyone"),
        "a mention survived:\n{scrubbed}"
    );
    assert!(
        !md.contains('\u{1b}'),
        "an escape character reached the note"
    );
    // every <details> still closes: the note's structure holds
    assert_eq!(visible.matches("<details>").count(), 1, "{visible}");
    assert_eq!(visible.matches("</details>").count(), 1, "{visible}");

    let text = render::text::render(&r);
    assert!(
        !text.contains('\u{1b}'),
        "an escape character reached the terminal"
    );
    assert!(
        text.contains("client-x<img"),
        "text shows values as they are: {text}"
    );
}

#[test]
fn large_notes_fold_whole_sections_within_the_budget() {
    let p = policy(false);
    // 400 new clients, each with two violations (wrong domain and not the template email)
    let head: String = (0..400)
        .map(|i| client(&format!("c{i}"), &format!("c{i}@gmail.com"), ""))
        .collect();
    let r = review(&p, None, &head, None);
    assert_eq!(r.summary.create, 400);
    assert_eq!(r.summary.errors, 800);
    for budget in [20_000, 100_000, render::markdown::NOTE_LIMIT] {
        let md = render::markdown::render_within(&r, budget);
        assert!(md.len() <= budget, "{} > {budget}", md.len());
        let visible = outside_code(&md);
        assert_eq!(
            visible.matches("<details>").count(),
            visible.matches("</details>").count()
        );
        // every fence that opens closes
        assert_eq!(
            md.matches("```diff").count() * 2,
            md.lines().filter(|l| l.starts_with("```")).count()
        );
        assert!(md.contains("#### Approvals"), "approvals always stay");
        if budget < render::markdown::NOTE_LIMIT {
            assert!(
                md.contains("folded to fit GitLab's note size limit"),
                "{budget}"
            );
        }
    }
    // the smallest budget still names every account or says how many are left
    let md = render::markdown::render_within(&r, 20_000);
    assert!(md.contains("- …and "), "{md}");
    // the full limit holds all 800 violations but not 400 detailed plans
    let md = render::markdown::render(&r);
    assert!(
        !md.contains("…and"),
        "everything is at least listed at the full limit"
    );
    assert_eq!(
        md.matches("<details>").count() + md.matches("\n- create `client-c").count(),
        400
    );
}

#[test]
fn terminal_text_lists_many_changes_one_line_each() {
    let p = policy(false);
    let head: String = (0..60)
        .map(|i| {
            client(
                &format!("c{i}"),
                &format!("aws+client-c{i}@example.com"),
                "",
            )
        })
        .collect();
    let text = render::text::render(&review(&p, None, &head, None));
    assert!(
        text.contains("(60 changes: steps are listed with --format json)"),
        "{text}"
    );
    assert_eq!(text.matches("  + create client-c").count(), 60);
    assert!(!text.contains("STS: assume"));
}

#[test]
fn json_steps_copied_from_the_change_before_are_each_changes_own() {
    let p = policy(false);
    // neighbours differ in a tag every third account: most steps repeat, some do not; 600
    // changes are written in several runs, each starting afresh
    let head: String = (0..600)
        .map(|i| {
            let tags = if i % 3 == 0 { ", env = \"prod\"" } else { "" };
            client(
                &format!("c{i}"),
                &format!("aws+client-c{i}@example.com"),
                tags,
            )
        })
        .collect();
    let report = review(&p, None, &head, None);
    let doc: serde_json::Value =
        serde_json::from_str(&render::json::render(&report)).expect("valid JSON");
    let changes = doc["plan"]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 600);
    for (c, out) in report.plan.changes.iter().zip(changes) {
        assert_eq!(out["key"], c.key.as_str());
        let steps = report.plan.steps(c);
        assert!(steps.len() > 10, "{}", c.key);
        assert_eq!(
            out["steps"],
            serde_json::to_value(&steps).unwrap(),
            "{}",
            c.key
        );
        assert_eq!(out["target"], serde_json::to_value(&c.target).unwrap());
    }
}

#[test]
fn a_note_of_thousands_of_syntax_errors_stays_within_the_limit() {
    // 20,000 broken files, each with a long path: listed whole, this was a note of about
    // 2.6 MB, which GitLab refuses (the MR was left without one)
    let p = policy(false);
    let dir = "accounts/".to_string() + &"deep/".repeat(10);
    let files: Vec<SourceFile> = (0..20_000)
        .map(|i| {
            SourceFile::new(
                format!("{dir}broken-{i:05}.tf"),
                "module \"x\" {\n  name = \n}\n",
            )
        })
        .collect();
    let head = decl::read(&files, &p.sources);
    assert_eq!(head.parse_errors.len(), 20_000);
    let r = report::assess(ChangeInput::local(&p).with(None, &head));
    assert_eq!(r.verdict, report::Verdict::Invalid);
    let md = render::markdown::render(&r);
    assert!(
        md.len() <= render::markdown::NOTE_LIMIT,
        "{} bytes",
        md.len()
    );
    assert!(
        md.contains(&format!("{dir}broken-00000.tf:2:")),
        "the first are listed"
    );
    assert!(md.contains("more, folded to fit GitLab's note size limit"));
    assert!(md.contains("Fix the syntax and push again"));
    // a few errors are all listed
    let few = decl::read(&files[..3], &p.sources);
    let md = render::markdown::render(&report::assess(ChangeInput::local(&p).with(None, &few)));
    assert!(
        md.contains("broken-00002.tf:2:") && !md.contains("more, folded"),
        "{md}"
    );
}
