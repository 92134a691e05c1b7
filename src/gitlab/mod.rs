//! GitLab, in orgvend's words: the few things the bot reads and writes, behind a trait
//! ([`GitLab`]) with one implementation over GitLab's REST API ([`client::GitlabClient`]).
//! Response types are lenient: every field the bot does not need is ignored, and a missing
//! optional field is `None`, so new GitLab versions do not break the bot.

pub mod client;
pub mod event;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct DiffRefs {
    #[serde(default)]
    pub base_sha: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub start_sha: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct MergeRequest {
    pub iid: u64,
    #[serde(default)]
    pub title: String,
    /// `opened`, `closed`, `merged`, `locked`.
    #[serde(default)]
    pub state: String,
    /// The head commit.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub squash_commit_sha: Option<String>,
    #[serde(default)]
    pub source_branch: String,
    #[serde(default)]
    pub target_branch: String,
    #[serde(default)]
    pub author: User,
    #[serde(default)]
    pub merged_by: Option<User>,
    #[serde(default)]
    pub web_url: String,
    #[serde(default)]
    pub diff_refs: Option<DiffRefs>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Comments that are not system notes; 0 means orgvend has not commented either.
    #[serde(default)]
    pub user_notes_count: Option<u64>,
    #[serde(default)]
    pub description: Option<String>,
    /// Differs from `target_project_id` for an MR from a fork.
    #[serde(default)]
    pub source_project_id: Option<u64>,
    #[serde(default)]
    pub target_project_id: Option<u64>,
}

/// One entry of a repository tree.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TreeEntry {
    /// The blob (or tree) id: the same id means the same content.
    pub id: String,
    pub path: String,
    /// `blob` or `tree`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One file's change in a merge request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct FileDiff {
    #[serde(default)]
    pub old_path: String,
    #[serde(default)]
    pub new_path: String,
    /// Unified-diff hunks; empty when GitLab collapsed a large diff.
    #[serde(default)]
    pub diff: String,
    #[serde(default)]
    pub new_file: bool,
    #[serde(default)]
    pub renamed_file: bool,
    #[serde(default)]
    pub deleted_file: bool,
    #[serde(default)]
    pub too_large: Option<bool>,
    #[serde(default)]
    pub collapsed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Note {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub author: User,
    #[serde(default)]
    pub system: bool,
    /// ISO 8601, as GitLab writes it.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One diff version of an MR (GitLab makes one when the MR opens and on every push).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MrVersion {
    pub id: u64,
    #[serde(default)]
    pub head_commit_sha: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A user's addresses as GitLab shows them to orgvend's token (`public_email` to anyone,
/// `email` to administrators).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct Profile {
    pub id: u64,
    #[serde(default)]
    pub public_email: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Issue {
    pub iid: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub web_url: String,
    #[serde(default)]
    pub author: User,
    #[serde(default)]
    pub confidential: bool,
    #[serde(default)]
    pub assignees: Vec<User>,
}

/// One commit of file actions on a branch (`POST /projects/:id/repository/commits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCommit {
    pub branch: String,
    /// The commit `branch` starts from when it does not exist (or, with `force`, is
    /// replaced): the commit the content was made from, so nothing landed since is undone.
    pub start_sha: String,
    /// Replace `branch` with this one commit on `start_branch`.
    pub force: bool,
    /// Unique per content: after an ambiguous failure the branch's head is looked at for it.
    pub message: String,
    /// (path, content, exists on `start_branch`).
    pub files: Vec<(String, String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMergeRequest {
    pub source_branch: String,
    pub target_branch: String,
    pub title: String,
    pub description: String,
    pub labels: Vec<String>,
    pub remove_source_branch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewIssue {
    pub title: String,
    pub description: String,
    pub labels: Vec<String>,
    pub assignee_ids: Vec<u64>,
}

/// A project hook, as far as `orgvend doctor` checks it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Hook {
    pub id: u64,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub merge_requests_events: bool,
    #[serde(default)]
    pub note_events: bool,
    /// Requests by issue need these.
    #[serde(default)]
    pub issues_events: bool,
    /// Whether a secret token is set (GitLab 17.x and later say so).
    #[serde(default)]
    pub token_present: Option<bool>,
}

/// One approval of an MR.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct Approval {
    pub user: User,
    /// When it was given, where GitLab says so in the approvals API (newer versions).
    #[serde(default)]
    pub approved_at: Option<String>,
}

/// A member of a group, direct or inherited.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Member {
    pub id: u64,
    #[serde(default)]
    pub username: String,
    /// `active`, `blocked`, `awaiting`, …
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub access_level: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Pending,
    Running,
    Success,
    Failed,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Running => "running",
            StatusState::Success => "success",
            StatusState::Failed => "failed",
        }
    }
}

/// A commit status as orgvend sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitStatus {
    pub state: StatusState,
    /// The status's name on the commit: `orgvend`.
    pub name: String,
    /// One line, at most 255 characters.
    pub description: String,
    pub target_url: Option<String>,
    /// The MR's source branch.
    pub git_ref: Option<String>,
}

/// A merge request in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MrSummary {
    pub iid: u64,
    #[serde(default)]
    pub target_branch: String,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub squash_commit_sha: Option<String>,
}

impl MergeRequest {
    /// The commit the merge put on the target branch: the merge commit, the squash commit,
    /// or (fast-forward) the head itself.
    pub fn landed_sha(&self) -> Option<&str> {
        self.merge_commit_sha
            .as_deref()
            .or(self.squash_commit_sha.as_deref())
            .or(self.sha.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Commit {
    pub id: String,
    #[serde(default)]
    pub parent_ids: Vec<String>,
    /// As the commit says (git does not verify it).
    #[serde(default)]
    pub author_email: Option<String>,
    #[serde(default)]
    pub committer_email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Group {
    pub id: u64,
    #[serde(default)]
    pub full_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Project {
    pub id: u64,
    #[serde(default)]
    pub path_with_namespace: String,
    #[serde(default)]
    pub web_url: String,
    #[serde(default)]
    pub default_branch: Option<String>,
    /// `merge`, `rebase_merge` (semi-linear) or `ff`.
    #[serde(default)]
    pub merge_method: Option<String>,
    #[serde(default)]
    pub only_allow_merge_if_pipeline_succeeds: Option<bool>,
    /// The user who created the project.
    #[serde(default)]
    pub creator_id: Option<u64>,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewProject {
    pub namespace_id: u64,
    /// The namespace's full path: where to look for the project after an ambiguous failure.
    pub namespace: String,
    pub path: String,
    pub name: String,
    pub description: String,
    pub visibility: String,
}

/// A protected branch: who may push and merge (GitLab access levels: 0 no one, 30
/// developers, 40 maintainers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protection {
    pub push: Vec<u32>,
    pub merge: Vec<u32>,
    pub allow_force_push: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CiVariable {
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub masked: bool,
}

/// What orgvend asks of GitLab. `project` is a path (`infra/subaccounts`) or a numeric id.
pub trait GitLab: Send + Sync + 'static {
    fn merge_request(
        &self,
        project: &str,
        iid: u64,
    ) -> impl Future<Output = Result<MergeRequest>> + Send;
    fn merge_request_diffs(
        &self,
        project: &str,
        iid: u64,
    ) -> impl Future<Output = Result<Vec<FileDiff>>> + Send;
    /// The whole tree of a commit.
    fn tree(&self, project: &str, sha: &str)
    -> impl Future<Output = Result<Vec<TreeEntry>>> + Send;
    fn blob(&self, project: &str, blob_id: &str) -> impl Future<Output = Result<Vec<u8>>> + Send;
    /// A file at a commit; `None` when it does not exist there.
    fn file(
        &self,
        project: &str,
        path: &str,
        sha: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Who approved the merge request (every tier has `approved_by`), and when where GitLab
    /// says so.
    fn approvals(
        &self,
        project: &str,
        iid: u64,
    ) -> impl Future<Output = Result<Vec<Approval>>> + Send;
    /// A user's membership of a group, direct or inherited (`members/all`: ancestors' and
    /// invited groups' members too); `None` when not a member.
    fn group_member(
        &self,
        group: &str,
        user_id: u64,
    ) -> impl Future<Output = Result<Option<Member>>> + Send;
    /// A user's direct membership of a group; `None` when not a direct member.
    fn group_member_direct(
        &self,
        group: &str,
        user_id: u64,
    ) -> impl Future<Output = Result<Option<Member>>> + Send;
    /// The MR's diff versions, newest first.
    fn merge_request_versions(
        &self,
        project: &str,
        iid: u64,
    ) -> impl Future<Output = Result<Vec<MrVersion>>> + Send;
    /// The MR's own commits, newest first.
    fn merge_request_commits(
        &self,
        project: &str,
        iid: u64,
    ) -> impl Future<Output = Result<Vec<Commit>>> + Send;
    /// The user orgvend's token belongs to.
    fn current_user(&self) -> impl Future<Output = Result<User>> + Send;
    /// A user's addresses, as far as GitLab shows them.
    fn profile(&self, user_id: u64) -> impl Future<Output = Result<Option<Profile>>> + Send;
    /// One issue of the project; `None` when orgvend cannot see it.
    fn issue(&self, project: &str, iid: u64) -> impl Future<Output = Result<Option<Issue>>> + Send;
    /// An issue's notes, oldest first (system notes included).
    fn issue_notes(
        &self,
        project: &str,
        iid: u64,
    ) -> impl Future<Output = Result<Vec<Note>>> + Send;
    fn create_issue_note(
        &self,
        project: &str,
        iid: u64,
        body: &str,
    ) -> impl Future<Output = Result<Note>> + Send;
    /// Edits a note of an issue; `Ok(false)` when it no longer exists (or is not orgvend's).
    fn update_issue_note(
        &self,
        project: &str,
        iid: u64,
        note_id: u64,
        body: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// A user's access to a project, direct or through its groups (`members/all`); `None`
    /// when they have none.
    fn project_member(
        &self,
        project: &str,
        user_id: u64,
    ) -> impl Future<Output = Result<Option<Member>>> + Send;
    /// One commit of file actions; the new commit's id.
    fn commit_to_branch(
        &self,
        project: &str,
        commit: &NewCommit,
    ) -> impl Future<Output = Result<String>> + Send;
    /// Opens a merge request; `Ok(None)` when one is open from that source branch already
    /// (GitLab's 409).
    fn create_merge_request(
        &self,
        project: &str,
        mr: &NewMergeRequest,
    ) -> impl Future<Output = Result<Option<MergeRequest>>> + Send;
    /// The merge requests from `source_branch`, in any state, newest first.
    fn merge_requests_from(
        &self,
        project: &str,
        source_branch: &str,
    ) -> impl Future<Output = Result<Vec<MergeRequest>>> + Send;
    /// Replaces an MR's title and description.
    fn update_merge_request(
        &self,
        project: &str,
        iid: u64,
        title: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Open issues carrying `label`.
    fn issues(&self, project: &str, label: &str)
    -> impl Future<Output = Result<Vec<Issue>>> + Send;
    fn create_issue(
        &self,
        project: &str,
        issue: &NewIssue,
    ) -> impl Future<Output = Result<Issue>> + Send;
    /// Replaces an issue's description and assignees.
    fn update_issue(
        &self,
        project: &str,
        iid: u64,
        description: &str,
        assignee_ids: &[u64],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Closes an issue.
    fn close_issue(&self, project: &str, iid: u64) -> impl Future<Output = Result<()>> + Send;
    /// Archives a project (read only, no pipelines); archiving it again changes nothing.
    fn archive_project(&self, project: &str) -> impl Future<Output = Result<()>> + Send;
    /// The project's webhooks (needs Maintainer access).
    fn hooks(&self, project: &str) -> impl Future<Output = Result<Vec<Hook>>> + Send;
    /// The scopes of orgvend's own token; `None` where GitLab cannot say (before 16.0).
    fn token_scopes(&self) -> impl Future<Output = Result<Option<Vec<String>>>> + Send;
    fn notes(&self, project: &str, iid: u64) -> impl Future<Output = Result<Vec<Note>>> + Send;
    fn create_note(
        &self,
        project: &str,
        iid: u64,
        body: &str,
    ) -> impl Future<Output = Result<Note>> + Send;
    /// Edits a note; `Ok(false)` when it no longer exists.
    fn update_note(
        &self,
        project: &str,
        iid: u64,
        note_id: u64,
        body: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn set_status(
        &self,
        project: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> impl Future<Output = Result<()>> + Send;
    fn open_merge_requests(
        &self,
        project: &str,
    ) -> impl Future<Output = Result<Vec<MrSummary>>> + Send;
    /// Merged MRs updated after `since` (an ISO 8601 time).
    fn merged_merge_requests(
        &self,
        project: &str,
        since: &str,
    ) -> impl Future<Output = Result<Vec<MrSummary>>> + Send;
    /// The newest common ancestor of two commits; `None` when they have none.
    fn merge_base(
        &self,
        project: &str,
        a: &str,
        b: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// A commit, with its parents.
    fn commit(&self, project: &str, sha: &str) -> impl Future<Output = Result<Commit>> + Send;
    fn group(&self, path: &str) -> impl Future<Output = Result<Option<Group>>> + Send;
    fn project(&self, path: &str) -> impl Future<Output = Result<Option<Project>>> + Send;
    fn create_project(&self, p: &NewProject) -> impl Future<Output = Result<Project>> + Send;
    /// One commit on `branch` creating or updating `files` (path, content, exists already).
    fn commit_files(
        &self,
        project: &str,
        branch: &str,
        message: &str,
        files: &[(String, String, bool)],
    ) -> impl Future<Output = Result<()>> + Send;
    fn protected_branch(
        &self,
        project: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Option<Protection>>> + Send;
    /// Protects a branch; `Ok(false)` when GitLab says it is protected already (409).
    fn protect_branch(
        &self,
        project: &str,
        branch: &str,
        p: &Protection,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn unprotect_branch(
        &self,
        project: &str,
        branch: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn variable(
        &self,
        project: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<CiVariable>>> + Send;
    /// Creates the variable, or (`exists`) updates it.
    fn set_variable(
        &self,
        project: &str,
        v: &CiVariable,
        exists: bool,
    ) -> impl Future<Output = Result<()>> + Send;
}
