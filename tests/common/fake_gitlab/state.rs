//! The fake GitLab's state model: users, groups, commits and branches, merge requests with
//! their approvals and notes, commit statuses, and the accounts' projects. What GitLab does
//! (a commit, a merge) is done here; the HTTP routes only read and write it.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

pub const PROJECT_ID: u64 = 15;
pub const PROJECT_PATH: &str = "infra/subaccounts";
pub const BOT_TOKEN: &str = "glpat-orgvend-bot";

#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: u64,
    pub username: String,
}

#[derive(Clone, Debug)]
pub struct FakeNote {
    pub id: u64,
    pub author: u64,
    pub body: String,
    pub system: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FakeStatus {
    pub sha: String,
    pub state: String,
    pub name: String,
    pub description: String,
    pub target_url: Option<String>,
    pub git_ref: Option<String>,
}

#[derive(Clone, Debug)]
pub struct FakeMr {
    pub iid: u64,
    pub title: String,
    pub author: u64,
    pub source_branch: String,
    pub target_branch: String,
    pub state: String,
    /// Merge base, target branch head when the diff was made, and the MR head.
    pub base_sha: String,
    pub start_sha: String,
    pub head_sha: String,
    pub approvals: Vec<u64>,
    pub notes: Vec<FakeNote>,
    pub labels: Vec<String>,
    pub merge_commit_sha: Option<String>,
    pub merged_by: Option<u64>,
    /// Serve the diffs as GitLab does for very large ones: collapsed, without content.
    pub collapse_diffs: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    ServerError,
    RateLimited { retry_after_s: u64 },
}

#[derive(Default)]
pub struct FakeState {
    pub users: BTreeMap<u64, FakeUser>,
    pub bot_user: u64,
    pub blobs: HashMap<String, Vec<u8>>,
    /// commit sha → path → blob id.
    pub commits: HashMap<String, BTreeMap<String, String>>,
    /// commit sha → parent shas.
    pub parents: HashMap<String, Vec<String>>,
    pub branches: BTreeMap<String, String>,
    pub mrs: BTreeMap<u64, FakeMr>,
    /// group path → user id → (state, access level).
    pub groups: HashMap<String, HashMap<u64, (String, u32)>>,
    pub statuses: Vec<FakeStatus>,
    pub next_note: u64,
    pub next_commit: u64,
    pub faults: VecDeque<Fault>,
    pub latency: Duration,
    pub calls: Vec<(String, String)>,
    /// Groups that exist, by full path → id (for `GET /groups/:id` and new projects).
    pub group_ids: BTreeMap<String, u64>,
    /// Projects other than the subaccounts repository (the accounts' repositories), by id.
    pub projects: BTreeMap<u64, FakeProject>,
    /// The instance's default branch protection, applied to the default branch of every new
    /// project as GitLab does; `None` leaves new projects unprotected.
    pub default_protection: Option<FakeProtection>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeProtection {
    pub push: u32,
    pub merge: u32,
    pub allow_force_push: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeVariable {
    pub value: String,
    pub protected: bool,
    pub masked: bool,
}

#[derive(Clone, Debug, Default)]
pub struct FakeProject {
    pub id: u64,
    pub path_with_namespace: String,
    pub namespace_id: u64,
    pub visibility: String,
    pub default_branch: String,
    pub description: String,
    /// branch → path → content.
    pub branches: BTreeMap<String, BTreeMap<String, String>>,
    /// (branch, message) of every commit after the initial one.
    pub commits: Vec<(String, String)>,
    pub protected: BTreeMap<String, FakeProtection>,
    pub variables: BTreeMap<String, FakeVariable>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FakeState {
    pub fn user(&mut self, id: u64, username: &str) {
        self.users.insert(
            id,
            FakeUser {
                id,
                username: username.into(),
            },
        );
    }

    pub fn blob_id(content: &[u8]) -> String {
        hex(&Sha256::digest(content))[..40].to_string()
    }

    /// A commit on `parent` (or empty) with `changes` applied (`None` deletes a file).
    pub fn commit(&mut self, parent: Option<&str>, changes: &[(&str, Option<&str>)]) -> String {
        let mut tree = parent
            .and_then(|p| self.commits.get(p).cloned())
            .unwrap_or_default();
        for (path, content) in changes {
            match content {
                Some(c) => {
                    let id = Self::blob_id(c.as_bytes());
                    self.blobs.insert(id.clone(), c.as_bytes().to_vec());
                    tree.insert(path.to_string(), id);
                }
                None => {
                    tree.remove(*path);
                }
            }
        }
        self.next_commit += 1;
        let sha = hex(&Sha256::digest(
            format!("commit {} {:?}", self.next_commit, tree).as_bytes(),
        ))[..40]
            .to_string();
        self.commits.insert(sha.clone(), tree);
        self.parents.insert(
            sha.clone(),
            parent.map(|p| vec![p.to_string()]).unwrap_or_default(),
        );
        sha
    }

    /// Merges an MR into its target branch as GitLab's merge commit method does: the target's
    /// tree with the MR's changes, parents (target, head). Returns the merge commit.
    pub fn merge(&mut self, iid: u64, by: u64) -> String {
        let mr = self.mrs[&iid].clone();
        let target = self.branches[&mr.target_branch].clone();
        let base = self.commits[&mr.base_sha].clone();
        let head = self.commits[&mr.head_sha].clone();
        let mut tree = self.commits[&target].clone();
        for (path, id) in &head {
            if base.get(path) != Some(id) {
                tree.insert(path.clone(), id.clone());
            }
        }
        for path in base.keys().filter(|p| !head.contains_key(*p)) {
            tree.remove(path);
        }
        self.next_commit += 1;
        let sha = hex(&Sha256::digest(
            format!("merge {} {:?}", self.next_commit, tree).as_bytes(),
        ))[..40]
            .to_string();
        self.commits.insert(sha.clone(), tree);
        self.parents
            .insert(sha.clone(), vec![target, mr.head_sha.clone()]);
        self.branches.insert(mr.target_branch.clone(), sha.clone());
        let m = self.mrs.get_mut(&iid).unwrap();
        m.state = "merged".into();
        m.merge_commit_sha = Some(sha.clone());
        m.merged_by = Some(by);
        sha
    }

    /// The account project at `path` (`group/name`), if it exists.
    pub fn project_at(&self, path: &str) -> Option<&FakeProject> {
        self.projects
            .values()
            .find(|p| p.path_with_namespace == path)
    }

    pub fn project_id_of(&self, id: &str) -> Option<u64> {
        self.projects
            .values()
            .find(|p| p.path_with_namespace == id || p.id.to_string() == id)
            .map(|p| p.id)
    }

    pub fn file_at(&self, sha: &str, path: &str) -> Option<String> {
        let id = self.commits.get(sha)?.get(path)?;
        Some(String::from_utf8_lossy(&self.blobs[id]).into_owned())
    }

    pub fn bot_notes(&self, iid: u64) -> Vec<FakeNote> {
        self.mrs[&iid]
            .notes
            .iter()
            .filter(|n| n.author == self.bot_user)
            .cloned()
            .collect()
    }

    pub fn statuses_of(&self, sha: &str) -> Vec<FakeStatus> {
        self.statuses
            .iter()
            .filter(|s| s.sha == sha)
            .cloned()
            .collect()
    }
}
