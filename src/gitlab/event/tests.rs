use super::*;

#[test]
fn kind_comes_from_the_header_when_the_body_lacks_it() {
    assert_eq!(kind_from_header("Merge Request Hook"), "merge_request");
    assert_eq!(kind_from_header("Tag Push Hook"), "tag_push");
    assert_eq!(kind_from_header("System Hook"), "system");
    let e = parse(
        Some("Merge Request Hook"),
        br#"{"object_attributes": {"iid": 3, "action": "open"}}"#,
    );
    assert!(
        matches!(
            e,
            Event::MergeRequest(MrEvent {
                iid: 3,
                action: MrAction::Opened,
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn wrong_types_are_absent_not_fatal() {
    let e = parse(
        None,
        br#"{"object_kind": "merge_request", "user": "not an object", "project": {"id": "17", "path_with_namespace": 5},
            "object_attributes": {"iid": 2, "action": "update", "oldrev": 12, "last_commit": []}}"#,
    );
    let Event::MergeRequest(m) = e else {
        panic!("{e:?}")
    };
    assert_eq!(m.project.id, Some(17));
    assert_eq!(m.project.path, None);
    assert_eq!(m.action, MrAction::Updated { new_commits: false });
    assert_eq!(m.actor, None);
}

#[test]
fn garbage_is_ignored_with_a_reason() {
    assert!(matches!(parse(None, b"<html>"), Event::Ignored { .. }));
    assert!(matches!(parse(None, b"[1,2]"), Event::Ignored { .. }));
    assert!(matches!(parse(None, b"{}"), Event::Ignored { .. }));
    let e = parse(
        None,
        br#"{"object_kind": "merge_request", "object_attributes": {}}"#,
    );
    assert!(
        matches!(&e, Event::Ignored { reason, .. } if reason.contains("iid")),
        "{e:?}"
    );
}

#[test]
fn unknown_actions_are_kept_bounded() {
    let long = "x".repeat(1000);
    let body = format!(
        r#"{{"object_kind":"merge_request","object_attributes":{{"iid":1,"action":"{long}"}}}}"#
    );
    let Event::MergeRequest(m) = parse(None, body.as_bytes()) else {
        panic!()
    };
    assert!(matches!(m.action, MrAction::Unknown { ref action } if action.len() == 64));
}
