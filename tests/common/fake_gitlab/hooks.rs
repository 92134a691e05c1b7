//! Webhook payloads built from the fake's state, in the shapes of GitLab's webhook
//! documentation ("Issue events", "Comment events"): what GitLab would deliver for an issue
//! opened, edited, closed or reopened, and for a comment on an issue. Pure functions of the
//! state; the tests send them (as `Issue Hook` / `Note Hook`).

use super::state::*;
use serde_json::{Value, json};

const WEB: &str = "https://gitlab.example.com";

/// GitLab's time format in webhook payloads: `2026-11-24 12:00:00 UTC`.
pub fn hook_time(ms: i64) -> String {
    let t = iso(ms);
    format!("{} {} UTC", &t[..10], &t[11..19])
}

/// A user as webhook payloads show one (the address redacted, as GitLab does).
pub fn hook_user(s: &FakeState, id: u64) -> Value {
    let u = &s.users[&id];
    json!({"id": u.id, "name": u.username, "username": u.username,
        "avatar_url": format!("https://www.gravatar.com/avatar/{}?s=80&d=identicon", u.id),
        "email": "[REDACTED]"})
}

/// The subaccounts project as webhook payloads show it.
pub fn hook_project(s: &FakeState) -> Value {
    let namespace = PROJECT_PATH.rsplit_once('/').map_or("", |(g, _)| g);
    json!({
        "id": PROJECT_ID, "name": "subaccounts", "description": "",
        "web_url": format!("{WEB}/{PROJECT_PATH}"), "avatar_url": null,
        "git_ssh_url": format!("git@gitlab.example.com:{PROJECT_PATH}.git"),
        "git_http_url": format!("{WEB}/{PROJECT_PATH}.git"),
        "namespace": namespace, "visibility_level": 0,
        "path_with_namespace": PROJECT_PATH, "default_branch": s.default_branch,
        "ci_config_path": null, "homepage": format!("{WEB}/{PROJECT_PATH}"),
        "url": format!("git@gitlab.example.com:{PROJECT_PATH}.git"),
        "ssh_url": format!("git@gitlab.example.com:{PROJECT_PATH}.git"),
        "http_url": format!("{WEB}/{PROJECT_PATH}.git")
    })
}

fn hook_repository() -> Value {
    json!({"name": "subaccounts", "url": format!("git@gitlab.example.com:{PROJECT_PATH}.git"),
        "description": "", "homepage": format!("{WEB}/{PROJECT_PATH}")})
}

fn issue_url(iid: u64) -> String {
    format!("{WEB}/{PROJECT_PATH}/-/issues/{iid}")
}

fn hook_labels(i: &FakeIssue) -> Vec<Value> {
    i.labels
        .iter()
        .enumerate()
        .map(|(n, l)| {
            json!({"id": 200 + n, "title": l, "color": "#6699cc", "project_id": PROJECT_ID,
                "template": false, "description": null, "type": "ProjectLabel", "group_id": null})
        })
        .collect()
}

/// The `Issue Hook` GitLab sends when `actor` does `action` (`open`, `update`, `close`,
/// `reopen`) on issue `iid`. `changes` is empty (the fake keeps no previous values).
pub fn issue_hook(s: &FakeState, iid: u64, action: &str, actor: u64) -> Value {
    let i = &s.issues[&iid];
    let last_edit = i
        .notes
        .iter()
        .rfind(|n| n.system && n.body == "changed the description");
    json!({
        "object_kind": "issue",
        "event_type": if i.confidential { "confidential_issue" } else { "issue" },
        "user": hook_user(s, actor),
        "project": hook_project(s),
        "object_attributes": {
            "id": 5000 + iid, "iid": iid, "title": i.title, "description": i.description,
            "author_id": i.author, "project_id": PROJECT_ID,
            "assignee_ids": i.assignees, "assignee_id": i.assignees.first(),
            "created_at": hook_time(i.created_ms()), "updated_at": hook_time(i.updated_ms()),
            "updated_by_id": actor,
            "last_edited_at": last_edit.map(|n| hook_time(n.created_ms)),
            "last_edited_by_id": last_edit.map(|n| n.author),
            "milestone_id": null, "state_id": if i.state == "closed" { 2 } else { 1 },
            "confidential": i.confidential, "discussion_locked": null, "due_date": null,
            "type": "Issue", "url": issue_url(iid), "state": i.state, "action": action,
            "labels": hook_labels(i)
        },
        "repository": hook_repository(),
        "assignees": i.assignees.iter().map(|u| hook_user(s, *u)).collect::<Vec<_>>(),
        "labels": hook_labels(i),
        "changes": {}
    })
}

/// The `Note Hook` GitLab sends for note `note_id` on issue `iid` (by the note's author).
pub fn issue_note_hook(s: &FakeState, iid: u64, note_id: u64) -> Value {
    let i = &s.issues[&iid];
    let n = i
        .notes
        .iter()
        .find(|n| n.id == note_id)
        .unwrap_or_else(|| panic!("issue #{iid} has no note {note_id}"));
    json!({
        "object_kind": "note",
        "event_type": if i.confidential { "confidential_note" } else { "note" },
        "user": hook_user(s, n.author),
        "project_id": PROJECT_ID,
        "project": hook_project(s),
        "repository": hook_repository(),
        "object_attributes": {
            "id": n.id, "note": n.body, "noteable_type": "Issue", "author_id": n.author,
            "created_at": hook_time(n.created_ms), "updated_at": hook_time(n.created_ms),
            "project_id": PROJECT_ID, "attachment": null, "line_code": null, "commit_id": "",
            "noteable_id": 5000 + iid, "system": n.system, "st_diff": null,
            "internal": false, "confidential": false, "action": "create",
            "url": format!("{}#note_{}", issue_url(iid), n.id)
        },
        "issue": {
            "id": 5000 + iid, "iid": iid, "title": i.title, "description": i.description,
            "state": i.state, "author_id": i.author, "project_id": PROJECT_ID,
            "assignee_ids": i.assignees, "confidential": i.confidential,
            "created_at": hook_time(i.created_ms()), "updated_at": hook_time(i.updated_ms()),
            "labels": hook_labels(i), "url": issue_url(iid)
        }
    })
}
