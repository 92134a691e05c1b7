//! A raw GitLab delivery → an [`Event`]. Payloads differ across GitLab versions (2016 ones
//! have no `project.id`; `approved` means different things on Free and Premium), so the
//! private structs here are lenient: every field optional, and a field of an unexpected type
//! is read as absent instead of failing the payload. An event is a trigger, never a fact:
//! handlers re-read the MR from the API.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectRef {
    pub id: Option<u64>,
    /// `path_with_namespace`.
    pub path: Option<String>,
}

impl ProjectRef {
    /// A stable name for ordering keys and logs: the id where known, else the path.
    pub fn key(&self) -> String {
        match (&self.id, &self.path) {
            (Some(id), _) => id.to_string(),
            (None, Some(p)) => p.clone(),
            (None, None) => "?".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub id: Option<u64>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MrAction {
    Opened,
    /// `new_commits`: the update carried `oldrev`, i.e. commits were pushed; otherwise the
    /// title, description, labels, draft state or target branch changed.
    Updated {
        new_commits: bool,
    },
    /// `approved` (GitLab Free, or the last approval on Premium) and `approval`.
    Approved,
    /// `unapproved` and `unapproval`.
    Unapproved,
    Merged,
    Closed,
    Reopened,
    /// An action this version of orgvend does not know; handled as "look again".
    Unknown {
        action: String,
    },
}

impl MrAction {
    pub fn name(&self) -> &str {
        match self {
            MrAction::Opened => "opened",
            MrAction::Updated { new_commits: true } => "updated_commits",
            MrAction::Updated { new_commits: false } => "updated",
            MrAction::Approved => "approved",
            MrAction::Unapproved => "unapproved",
            MrAction::Merged => "merged",
            MrAction::Closed => "closed",
            MrAction::Reopened => "reopened",
            MrAction::Unknown { .. } => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrEvent {
    pub project: ProjectRef,
    pub iid: u64,
    pub action: MrAction,
    /// Who caused the event (the approver of an approval, the merger of a merge).
    pub actor: Option<Actor>,
    /// The MR head when the event was sent (`last_commit.id`).
    pub head_sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub source_branch: Option<String>,
    pub target_branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteEvent {
    pub project: ProjectRef,
    pub mr_iid: u64,
    pub note_id: Option<u64>,
    pub body: String,
    pub author: Option<Actor>,
    /// A note GitLab wrote itself ("approved this merge request").
    pub system: bool,
    /// The note was edited, not created (GitLab 16.11+ sends `action: update`).
    pub edited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MergeRequest(MrEvent),
    Note(NoteEvent),
    /// Stored and answered 2xx, never processed.
    Ignored {
        kind: String,
        reason: String,
    },
}

impl Event {
    /// Label values for metrics and logs: a bounded set.
    pub fn kind(&self) -> &str {
        match self {
            Event::MergeRequest(_) => "merge_request",
            Event::Note(_) => "note",
            Event::Ignored { kind, .. } => match kind.as_str() {
                "push" | "tag_push" | "issue" | "pipeline" | "build" | "wiki_page"
                | "deployment" | "release" | "emoji" | "member" | "note" | "merge_request"
                | "invalid" => kind,
                _ => "other",
            },
        }
    }

    pub fn action(&self) -> &str {
        match self {
            Event::MergeRequest(e) => e.action.name(),
            Event::Note(n) if n.edited => "edited",
            Event::Note(_) => "created",
            Event::Ignored { .. } => "ignored",
        }
    }

    pub fn project(&self) -> Option<&ProjectRef> {
        match self {
            Event::MergeRequest(e) => Some(&e.project),
            Event::Note(n) => Some(&n.project),
            Event::Ignored { .. } => None,
        }
    }

    /// Deliveries with the same key are processed one at a time, in order: one per MR.
    pub fn ordering_key(&self) -> Option<String> {
        match self {
            Event::MergeRequest(e) => Some(format!("{}!{}", e.project.key(), e.iid)),
            Event::Note(n) => Some(format!("{}!{}", n.project.key(), n.mr_iid)),
            Event::Ignored { .. } => None,
        }
    }
}

/// Reads a field of any shape: absent, null, or of the wrong type all become `None`.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// A number that some payloads send as a string.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawHook {
    #[serde(deserialize_with = "lenient")]
    object_kind: Option<String>,
    #[serde(deserialize_with = "lenient")]
    user: Option<RawUser>,
    #[serde(deserialize_with = "lenient")]
    project: Option<RawProject>,
    #[serde(deserialize_with = "lenient_u64")]
    project_id: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    object_attributes: Option<RawAttrs>,
    #[serde(deserialize_with = "lenient")]
    merge_request: Option<RawMr>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUser {
    #[serde(deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    username: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawProject {
    #[serde(deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    path_with_namespace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCommit {
    #[serde(deserialize_with = "lenient")]
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAttrs {
    #[serde(deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    iid: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    action: Option<String>,
    #[serde(deserialize_with = "lenient")]
    state: Option<String>,
    #[serde(deserialize_with = "lenient")]
    oldrev: Option<String>,
    #[serde(deserialize_with = "lenient")]
    merge_commit_sha: Option<String>,
    #[serde(deserialize_with = "lenient")]
    last_commit: Option<RawCommit>,
    #[serde(deserialize_with = "lenient")]
    source_branch: Option<String>,
    #[serde(deserialize_with = "lenient")]
    target_branch: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    target_project_id: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    note: Option<String>,
    #[serde(deserialize_with = "lenient")]
    noteable_type: Option<String>,
    #[serde(deserialize_with = "lenient")]
    system: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMr {
    #[serde(deserialize_with = "lenient_u64")]
    iid: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    target_project_id: Option<u64>,
}

fn ignored(kind: &str, reason: impl Into<String>) -> Event {
    Event::Ignored {
        kind: kind.to_string(),
        reason: reason.into(),
    }
}

/// `X-Gitlab-Event: Merge Request Hook` → `merge_request`.
fn kind_from_header(header: &str) -> String {
    let h = header.trim().to_ascii_lowercase();
    let h = h.strip_suffix(" hook").unwrap_or(&h);
    h.replace(' ', "_")
}

/// Classifies one delivery. Never fails: what cannot be understood is `Ignored` with a reason.
pub fn parse(event_header: Option<&str>, body: &[u8]) -> Event {
    let raw: RawHook = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return ignored("invalid", format!("the body is not a JSON object: {e}")),
    };
    let kind = raw
        .object_kind
        .clone()
        .or_else(|| event_header.map(kind_from_header))
        .unwrap_or_else(|| "unknown".into());
    let attrs = raw.object_attributes.unwrap_or_default();
    let actor = raw.user.map(|u| Actor {
        id: u.id,
        username: u.username,
    });
    let project = ProjectRef {
        id: raw
            .project
            .as_ref()
            .and_then(|p| p.id)
            .or(raw.project_id)
            .or(attrs.target_project_id)
            .or(raw.merge_request.as_ref().and_then(|m| m.target_project_id)),
        path: raw.project.and_then(|p| p.path_with_namespace),
    };
    match kind.as_str() {
        "merge_request" => {
            let Some(iid) = attrs.iid else {
                return ignored("merge_request", "no object_attributes.iid");
            };
            let action = match attrs.action.as_deref() {
                Some("open") => MrAction::Opened,
                Some("update") => MrAction::Updated {
                    new_commits: attrs.oldrev.as_deref().is_some_and(|r| !r.is_empty()),
                },
                Some("approved" | "approval") => MrAction::Approved,
                Some("unapproved" | "unapproval") => MrAction::Unapproved,
                Some("merge") => MrAction::Merged,
                Some("close") => MrAction::Closed,
                Some("reopen") => MrAction::Reopened,
                // Very old payloads have no action: the state says what happened.
                None => match attrs.state.as_deref() {
                    Some("merged") => MrAction::Merged,
                    Some("closed") => MrAction::Closed,
                    Some("reopened") => MrAction::Reopened,
                    _ => MrAction::Unknown {
                        action: String::new(),
                    },
                },
                Some(other) => MrAction::Unknown {
                    action: other.chars().take(64).collect(),
                },
            };
            Event::MergeRequest(MrEvent {
                project,
                iid,
                action,
                actor,
                head_sha: attrs.last_commit.and_then(|c| c.id),
                merge_commit_sha: attrs.merge_commit_sha,
                source_branch: attrs.source_branch,
                target_branch: attrs.target_branch,
            })
        }
        "note" => {
            if attrs.noteable_type.as_deref() != Some("MergeRequest") {
                return ignored("note", "a comment on something other than a merge request");
            }
            let Some(mr_iid) = raw.merge_request.and_then(|m| m.iid) else {
                return ignored("note", "no merge_request.iid");
            };
            Event::Note(NoteEvent {
                project,
                mr_iid,
                note_id: attrs.id,
                body: attrs.note.unwrap_or_default(),
                author: actor,
                system: attrs.system.unwrap_or(false),
                edited: attrs.action.as_deref() == Some("update"),
            })
        }
        other => ignored(other, format!("orgvend does not act on `{other}` events")),
    }
}

#[cfg(test)]
mod tests {
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
}
