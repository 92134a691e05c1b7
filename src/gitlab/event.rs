//! A raw GitLab delivery → an [`Event`]. Payloads differ across GitLab versions (2016 ones
//! have no `project.id`; `approved` means different things on Free and Premium), so the
//! private structs here are lenient: every field optional, and a field of an unexpected type
//! is read as absent instead of failing the payload. An event is a trigger, never a fact:
//! handlers re-read the MR from the API.

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// An issue opened, edited, closed or reopened: a request for an account, perhaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueEvent {
    pub project: ProjectRef,
    pub iid: u64,
    /// `open`, `update`, `close`, `reopen`; anything else bounded to 64 characters.
    pub action: String,
    pub actor: Option<Actor>,
    /// The update changed the description (`changes.description`): the actor edited it.
    pub description_changed: bool,
}

/// A comment on an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueNoteEvent {
    pub project: ProjectRef,
    pub issue_iid: u64,
    pub note_id: Option<u64>,
    pub body: String,
    pub author: Option<Actor>,
    pub system: bool,
    pub edited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MergeRequest(MrEvent),
    Note(NoteEvent),
    Issue(IssueEvent),
    IssueNote(IssueNoteEvent),
    /// orgvend's own timer: compare the target branch with the organization now. Queued by
    /// reconciliation (never acted on from a webhook: see `bot::dispatch`). With `repair`,
    /// a repair (the account's name; empty for every drifted account), asked by `asker` on
    /// the drift issue or by `orgvend apply --account`.
    Drift {
        repair: Option<String>,
        asker: Option<Actor>,
    },
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
            Event::Issue(_) => "issue",
            Event::IssueNote(_) => "issue_note",
            Event::Drift { .. } => "drift",
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
            Event::Issue(e) => match e.action.as_str() {
                "open" => "opened",
                "update" => "updated",
                "close" => "closed",
                "reopen" => "reopened",
                _ => "unknown",
            },
            Event::IssueNote(n) if n.edited => "edited",
            Event::IssueNote(_) => "created",
            Event::Drift { repair: None, .. } => "run",
            Event::Drift { .. } => "repair",
            Event::Ignored { .. } => "ignored",
        }
    }

    pub fn project(&self) -> Option<&ProjectRef> {
        match self {
            Event::MergeRequest(e) => Some(&e.project),
            Event::Note(n) => Some(&n.project),
            Event::Issue(e) => Some(&e.project),
            Event::IssueNote(n) => Some(&n.project),
            Event::Drift { .. } | Event::Ignored { .. } => None,
        }
    }

    /// Deliveries with the same key are processed one at a time, in order: one per MR. Events
    /// of other projects are ignored before this is asked, so the MR's iid is enough.
    pub fn ordering_key(&self) -> Option<String> {
        match self {
            Event::MergeRequest(e) => Some(mr_key(e.iid)),
            Event::Note(n) => Some(mr_key(n.mr_iid)),
            Event::Issue(e) => Some(issue_key(e.iid)),
            Event::IssueNote(n) => Some(issue_key(n.issue_iid)),
            Event::Drift { .. } => Some(DRIFT_KEY.into()),
            Event::Ignored { .. } => None,
        }
    }
}

/// The ordering key of one MR of the subaccounts project.
pub fn mr_key(iid: u64) -> String {
    format!("mr:{iid}")
}

/// The ordering key of drift runs: one at a time.
pub const DRIFT_KEY: &str = "drift";
/// The kind of orgvend's own drift deliveries.
pub const DRIFT_KIND: &str = "orgvend_drift";

/// The ordering key of one issue of the subaccounts project: its deliveries (edits,
/// comments) are handled one at a time, in order, like an MR's.
pub fn issue_key(iid: u64) -> String {
    format!("issue:{iid}")
}

/// A field read leniently: absent, null, or of an unexpected type all read as `None`,
/// without failing the payload and without building an intermediate JSON value (a webhook
/// body is parsed on the hot path of every delivery).
#[derive(Debug)]
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<T> Lenient<T> {
    fn get(self) -> Option<T> {
        self.0
    }
}

/// What a lenient field accepts.
trait Accept: Sized {
    fn str(_: &str) -> Option<Self> {
        None
    }
    fn u64(_: u64) -> Option<Self> {
        None
    }
    fn bool(_: bool) -> Option<Self> {
        None
    }
    /// Objects: read field by field (structs), or skipped (scalars).
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl Accept for String {
    fn str(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
}

/// A number that some payloads send as a string.
impl Accept for u64 {
    fn u64(n: u64) -> Option<Self> {
        Some(n)
    }
    fn str(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

impl Accept for bool {
    fn bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

/// Structs whose fields are all lenient read any object, and nothing else.
macro_rules! accept_object {
    ($($t:ty),*) => {$(
        impl Accept for $t {
            fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
                <$t>::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
            }
        }
    )*};
}

impl<'de, T: Accept> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Accept> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Lenient(T::str(s)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Lenient(T::u64(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Lenient(u64::try_from(n).ok().and_then(T::u64)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Lenient(T::bool(b)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Lenient::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::map(map).map(Lenient)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

accept_object!(
    RawHook, RawUser, RawProject, RawCommit, RawAttrs, RawMr, RawChanges, RawChange
);

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawHook {
    object_kind: Lenient<String>,
    user: Lenient<RawUser>,
    project: Lenient<RawProject>,
    project_id: Lenient<u64>,
    object_attributes: Lenient<RawAttrs>,
    merge_request: Lenient<RawMr>,
    issue: Lenient<RawMr>,
    changes: Lenient<RawChanges>,
    /// orgvend's own repair delivery: the account to repair, and who asked.
    repair: Lenient<String>,
    asker_id: Lenient<u64>,
    asker: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawChanges {
    description: Lenient<RawChange>,
}

/// `{"previous": …, "current": …}`: only its presence is read.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawChange {
    current: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUser {
    id: Lenient<u64>,
    username: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawProject {
    id: Lenient<u64>,
    path_with_namespace: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCommit {
    id: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAttrs {
    id: Lenient<u64>,
    iid: Lenient<u64>,
    action: Lenient<String>,
    state: Lenient<String>,
    oldrev: Lenient<String>,
    merge_commit_sha: Lenient<String>,
    last_commit: Lenient<RawCommit>,
    source_branch: Lenient<String>,
    target_branch: Lenient<String>,
    target_project_id: Lenient<u64>,
    note: Lenient<String>,
    noteable_type: Lenient<String>,
    system: Lenient<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMr {
    iid: Lenient<u64>,
    target_project_id: Lenient<u64>,
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
    let raw: RawHook = match serde_json::from_slice::<Lenient<RawHook>>(body) {
        Ok(Lenient(Some(r))) => r,
        Ok(Lenient(None)) => return ignored("invalid", "the body is not a JSON object"),
        Err(e) => return ignored("invalid", format!("the body is not JSON: {e}")),
    };
    let kind = raw
        .object_kind
        .get()
        .or_else(|| event_header.map(kind_from_header))
        .unwrap_or_else(|| "unknown".into());
    let attrs = raw.object_attributes.get().unwrap_or_default();
    let merge_request = raw.merge_request.get().unwrap_or_default();
    let actor = raw.user.get().map(|u| Actor {
        id: u.id.get(),
        username: u.username.get(),
    });
    let project = raw.project.get().unwrap_or_default();
    let project = ProjectRef {
        id: project
            .id
            .get()
            .or(raw.project_id.get())
            .or(attrs.target_project_id.0)
            .or(merge_request.target_project_id.0),
        path: project.path_with_namespace.get(),
    };
    match kind.as_str() {
        "merge_request" => {
            let Some(iid) = attrs.iid.get() else {
                return ignored("merge_request", "no object_attributes.iid");
            };
            let action = match attrs.action.get().as_deref() {
                Some("open") => MrAction::Opened,
                Some("update") => MrAction::Updated {
                    new_commits: attrs.oldrev.0.as_deref().is_some_and(|r| !r.is_empty()),
                },
                Some("approved" | "approval") => MrAction::Approved,
                Some("unapproved" | "unapproval") => MrAction::Unapproved,
                Some("merge") => MrAction::Merged,
                Some("close") => MrAction::Closed,
                Some("reopen") => MrAction::Reopened,
                // Very old payloads have no action: the state says what happened.
                None => match attrs.state.0.as_deref() {
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
                head_sha: attrs.last_commit.get().and_then(|c| c.id.get()),
                merge_commit_sha: attrs.merge_commit_sha.get(),
                source_branch: attrs.source_branch.get(),
                target_branch: attrs.target_branch.get(),
            })
        }
        DRIFT_KIND => Event::Drift {
            repair: raw.repair.get().map(|a| a.chars().take(128).collect()),
            asker: raw.asker_id.get().map(|id| Actor {
                id: Some(id),
                username: raw.asker.get().map(|u| u.chars().take(128).collect()),
            }),
        },
        "issue" => {
            let Some(iid) = attrs.iid.get() else {
                return ignored("issue", "no object_attributes.iid");
            };
            Event::Issue(IssueEvent {
                project,
                iid,
                action: attrs
                    .action
                    .get()
                    .map(|a| a.chars().take(64).collect())
                    .unwrap_or_default(),
                actor,
                description_changed: raw
                    .changes
                    .get()
                    .and_then(|c| c.description.get())
                    .is_some(),
            })
        }
        "note" if attrs.noteable_type.0.as_deref() == Some("Issue") => {
            let Some(issue_iid) = raw.issue.get().and_then(|i| i.iid.get()) else {
                return ignored("note", "no issue.iid");
            };
            Event::IssueNote(IssueNoteEvent {
                project,
                issue_iid,
                note_id: attrs.id.get(),
                body: attrs.note.get().unwrap_or_default(),
                author: actor,
                system: attrs.system.get().unwrap_or(false),
                edited: attrs.action.0.as_deref() == Some("update"),
            })
        }
        "note" => {
            if attrs.noteable_type.0.as_deref() != Some("MergeRequest") {
                return ignored(
                    "note",
                    "a comment on something other than a merge request or an issue",
                );
            }
            let Some(mr_iid) = merge_request.iid.get() else {
                return ignored("note", "no merge_request.iid");
            };
            Event::Note(NoteEvent {
                project,
                mr_iid,
                note_id: attrs.id.get(),
                body: attrs.note.get().unwrap_or_default(),
                author: actor,
                system: attrs.system.get().unwrap_or(false),
                edited: attrs.action.0.as_deref() == Some("update"),
            })
        }
        other => ignored(other, format!("orgvend does not act on `{other}` events")),
    }
}

#[cfg(test)]
mod tests;
