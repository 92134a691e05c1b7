//! The event model over recorded payloads of several GitLab eras.

use orgvend::gitlab::event::{self, Event, MrAction};

fn parse(name: &str, header: &str) -> Event {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/payloads")
        .join(name);
    event::parse(Some(header), &std::fs::read(&path).unwrap())
}

fn mr(name: &str) -> orgvend::gitlab::event::MrEvent {
    match parse(name, "Merge Request Hook") {
        Event::MergeRequest(m) => m,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn modern_open() {
    let m = mr("modern_mr_open.json");
    assert_eq!(m.action, MrAction::Opened);
    assert_eq!(
        (m.project.id, m.project.path.as_deref()),
        (Some(1), Some("gitlabhq/gitlab-test"))
    );
    assert_eq!(m.iid, 1);
    assert_eq!(
        m.head_sha.as_deref(),
        Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    );
    assert_eq!(m.actor.unwrap().username.as_deref(), Some("root"));
}

#[test]
fn approvals_of_both_tiers_are_approvals() {
    let m = mr("2025_mr_approval.json");
    assert_eq!(m.action, MrAction::Approved);
    // the actor is the approver, not the MR's author
    assert_eq!(m.actor.unwrap().id, Some(587951));
    assert_eq!(mr("2017_mr_approved.json").action, MrAction::Approved);
    assert_eq!(mr("2017_mr_unapproved.json").action, MrAction::Unapproved);
    assert_eq!(mr("2025_mr_unapproval.json").action, MrAction::Unapproved);
}

#[test]
fn payloads_of_2016_have_no_project_id() {
    let push = mr("2016_mr_update_push.json");
    assert_eq!(push.action, MrAction::Updated { new_commits: true });
    // the id comes from object_attributes.target_project_id, the path from project
    assert_eq!(push.project.id, Some(1843));
    assert_eq!(push.project.path.as_deref(), Some("infra/subaccounts"));
    assert_eq!(push.actor.unwrap().id, None);
    assert_eq!(
        mr("2016_mr_update_edit.json").action,
        MrAction::Updated { new_commits: false }
    );
    let merged = mr("2016_mr_merge.json");
    assert_eq!(merged.action, MrAction::Merged);
    assert_eq!(
        merged.merge_commit_sha.as_deref(),
        Some("c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00")
    );
    assert_eq!(mr("2016_mr_close.json").action, MrAction::Closed);
    assert_eq!(mr("2017_mr_reopen.json").action, MrAction::Reopened);
}

#[test]
fn notes_on_merge_requests() {
    let Event::Note(n) = parse("modern_note_mr.json", "Note Hook") else {
        panic!()
    };
    assert_eq!(
        (n.mr_iid, n.note_id, n.system, n.edited),
        (1, Some(1244), false, false)
    );
    assert_eq!(n.body, "This MR needs work.");
    let Event::Note(n) = parse("2023_note_mr_command.json", "Note Hook") else {
        panic!()
    };
    assert_eq!(n.body, "/orgvend plan");
    assert!(!n.edited, "no action: a 2023 note is a creation");
}

#[test]
fn other_kinds_are_ignored_with_reasons() {
    for (file, header, kind) in [
        ("push.json", "Push Hook", "push"),
        ("pipeline.json", "Pipeline Hook", "pipeline"),
        ("headers_example.json", "Push Hook", "push"),
    ] {
        match parse(file, header) {
            Event::Ignored { kind: k, reason } => {
                assert_eq!(k, kind, "{file}");
                assert!(!reason.is_empty());
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}

/// Issues and their comments are requests for accounts (and `/orgvend request`), ordered
/// per issue like an MR's deliveries.
#[test]
fn issues_and_their_comments() {
    for (file, action) in [
        ("issue_open.json", "opened"),
        ("issue_update.json", "updated"),
    ] {
        let e = parse(file, "Issue Hook");
        let Event::Issue(i) = &e else {
            panic!("{file}: {e:?}")
        };
        assert_eq!((i.iid, i.project.id), (7, Some(15)), "{file}");
        assert_eq!(e.action(), action, "{file}");
        assert_eq!(e.ordering_key().as_deref(), Some("issue:7"));
        assert_eq!(e.kind(), "issue");
    }
    let e = parse("issue_note.json", "Note Hook");
    let Event::IssueNote(n) = &e else {
        panic!("{e:?}")
    };
    assert_eq!((n.issue_iid, n.body.as_str()), (17, "Hello"));
    assert_eq!(e.ordering_key().as_deref(), Some("issue:17"));
    // a payload without the issue's iid cannot be placed: ignored, with the reason
    let bare = br#"{"object_kind":"note","object_attributes":{"noteable_type":"Issue","note":"/orgvend request"}}"#;
    assert!(
        matches!(event::parse(None, bare), Event::Ignored { reason, .. } if reason.contains("issue.iid"))
    );
}

#[test]
fn every_recorded_payload_parses_to_something() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/payloads");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let e = event::parse(None, &std::fs::read(&path).unwrap());
            assert!(!e.kind().is_empty(), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 15, "{n} payloads");
}
