//! The fake GitLab's state model: users, nested groups and their members, commits and
//! branches, merge requests with their versions, commits, approvals and notes (system notes
//! included, with times), commit statuses, issues, and the accounts' projects. What GitLab
//! does (a push, an approval, a merge by each merge method) is done here; the HTTP routes
//! only read and write it. Times come from a logical clock that moves one second per event.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

pub const PROJECT_ID: u64 = 15;
pub const PROJECT_PATH: &str = "infra/subaccounts";
pub const BOT_TOKEN: &str = "glpat-orgvend-bot";
/// The logical clock's start: 2026-11-24 12:00:00 UTC.
pub const CLOCK_START_MS: i64 = 1_795_521_600_000;

#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: u64,
    pub username: String,
    /// The address GitLab shows as `public_email` (commits are matched by it).
    pub email: String,
}

#[derive(Clone, Debug)]
pub struct FakeNote {
    pub id: u64,
    pub author: u64,
    pub body: String,
    pub system: bool,
    pub created_ms: i64,
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

/// One diff version of an MR: GitLab makes one when the MR opens and on every push.
#[derive(Clone, Debug)]
pub struct FakeVersion {
    pub id: u64,
    pub head_sha: String,
    pub base_sha: String,
    pub start_sha: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug)]
pub struct FakeMr {
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub author: u64,
    pub source_branch: String,
    pub target_branch: String,
    pub state: String,
    /// Merge base, target branch head when the diff was made, and the MR head.
    pub base_sha: String,
    pub start_sha: String,
    pub head_sha: String,
    pub approvals: Vec<u64>,
    /// When each current approval was given (GitLab's approval record).
    pub approved_ms: BTreeMap<u64, i64>,
    pub notes: Vec<FakeNote>,
    pub labels: Vec<String>,
    pub merge_commit_sha: Option<String>,
    pub squash_commit_sha: Option<String>,
    pub merged_by: Option<u64>,
    /// Squash the MR's commits into one when it merges.
    pub squash: bool,
    /// Serve the diffs as GitLab does for very large ones: collapsed, without content.
    pub collapse_diffs: bool,
    /// Newest last.
    pub versions: Vec<FakeVersion>,
    /// Delete the source branch when it merges (GitLab's `force_remove_source_branch`).
    pub remove_source_branch: bool,
}

#[derive(Clone, Debug)]
pub enum Fault {
    ServerError,
    RateLimited {
        retry_after_s: u64,
    },
    /// 302 to another URL (a hostile or misconfigured GitLab).
    Redirect {
        to: String,
    },
}

/// A fault aimed at one kind of request (see [`FakeState::targeted`]).
#[derive(Clone, Debug)]
pub struct Targeted {
    pub method: &'static str,
    /// The request's path ends with this.
    pub path_ends: String,
    /// `Some(status)`: answered with it; `None`: the connection is dropped without an
    /// answer.
    pub status: Option<u16>,
    /// Whether GitLab carried the request out before the answer was lost.
    pub acts: bool,
}

impl Targeted {
    /// GitLab acts, then a proxy answers 502: the client cannot tell it acted.
    pub fn lost_answer(method: &'static str, path_ends: &str) -> Targeted {
        Targeted {
            method,
            path_ends: path_ends.into(),
            status: Some(502),
            acts: true,
        }
    }

    /// A 503 before GitLab acted.
    pub fn unavailable(method: &'static str, path_ends: &str) -> Targeted {
        Targeted {
            method,
            path_ends: path_ends.into(),
            status: Some(503),
            acts: false,
        }
    }
}

/// The project's merge method, as GitLab's project setting `merge_method` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MergeMethod {
    /// A merge commit every time.
    #[default]
    Merge,
    /// Semi-linear: a merge commit, but only when the source is rebased on the target.
    RebaseMerge,
    /// No merge commit: the target moves to the MR's head (or its squash commit).
    FastForward,
}

impl MergeMethod {
    pub fn api_name(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::RebaseMerge => "rebase_merge",
            MergeMethod::FastForward => "ff",
        }
    }
}

/// A commit: its files (path → blob id), parents, and who wrote it.
#[derive(Clone, Debug, Default)]
pub struct FakeCommit {
    pub tree: BTreeMap<String, String>,
    pub parents: Vec<String>,
    pub author: u64,
    pub message: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug)]
pub struct FakeIssue {
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub state: String,
    pub labels: Vec<String>,
    pub assignees: Vec<u64>,
    pub author: u64,
    /// System notes included ("changed the description"), oldest first.
    pub notes: Vec<FakeNote>,
    pub confidential: bool,
}

impl FakeIssue {
    /// When it was opened (the fake keeps no opening time: the clock's start, before
    /// every event).
    pub fn created_ms(&self) -> i64 {
        CLOCK_START_MS
    }

    /// When it last changed as its notes tell (an edit writes a system note, a comment
    /// touches it as GitLab's notes do); else when it was opened.
    pub fn updated_ms(&self) -> i64 {
        self.notes
            .iter()
            .map(|n| n.created_ms)
            .max()
            .unwrap_or(CLOCK_START_MS)
            .max(self.created_ms())
    }

    /// Notes that are not system notes (GitLab's `user_notes_count`).
    pub fn user_notes_count(&self) -> usize {
        self.notes.iter().filter(|n| !n.system).count()
    }
}

#[derive(Clone, Debug)]
pub struct FakeHook {
    pub id: u64,
    pub url: String,
    pub merge_requests_events: bool,
    pub note_events: bool,
    pub issues_events: bool,
    pub token: bool,
}

#[derive(Default)]
pub struct FakeState {
    pub users: BTreeMap<u64, FakeUser>,
    pub bot_user: u64,
    pub blobs: HashMap<String, Vec<u8>>,
    pub commits: HashMap<String, FakeCommit>,
    pub branches: BTreeMap<String, String>,
    pub mrs: BTreeMap<u64, FakeMr>,
    /// group path → user id → (state, access level): direct members. A group's members
    /// include, through `members/all`, those of its ancestors (`a/b` inherits from `a`).
    pub groups: HashMap<String, HashMap<u64, (String, u32)>>,
    pub statuses: Vec<FakeStatus>,
    pub next_note: u64,
    pub next_commit: u64,
    pub next_version: u64,
    pub faults: VecDeque<Fault>,
    /// Faults aimed at one kind of request (a POST whose answer is lost after GitLab acted,
    /// a 503 before it acted): the next request whose method and path match the first of
    /// these takes it.
    pub targeted: VecDeque<Targeted>,
    /// Pagination `Link`s point here instead of at this server (a hostile or misconfigured
    /// GitLab): the client must not follow them.
    pub link_host: Option<String>,
    /// The next project created is someone else's (a race for the path: another user's
    /// request landed where the bot's did not).
    pub next_project_creator: Option<u64>,
    pub latency: Duration,
    pub calls: Vec<(String, String)>,
    /// Groups that exist, by full path → id (for `GET /groups/:id` and new projects).
    pub group_ids: BTreeMap<String, u64>,
    /// Projects other than the subaccounts repository (the accounts' repositories), by id.
    pub projects: BTreeMap<u64, FakeProject>,
    /// The instance's default branch protection, applied to the default branch of every new
    /// project as GitLab does; `None` leaves new projects unprotected.
    pub default_protection: Option<FakeProtection>,
    /// The subaccounts project's settings.
    pub default_branch: String,
    pub merge_method: MergeMethod,
    pub pipelines_must_succeed: bool,
    /// The subaccounts project's protected branches.
    pub protected: BTreeMap<String, FakeProtection>,
    pub hooks: Vec<FakeHook>,
    pub issues: BTreeMap<u64, FakeIssue>,
    /// user id → (state, access level): the direct members of the subaccounts project
    /// (`members/all` adds those of its group `infra` and that group's ancestors).
    pub project_members: HashMap<u64, (String, u32)>,
    /// The scopes of the bot's token.
    pub token_scopes: Vec<String>,
    /// The logical clock (0 = not started: [`CLOCK_START_MS`]).
    pub now_ms: i64,
    /// Whether the approvals API says when each approval was given (`approved_at`, newer
    /// GitLab); older ones say it only in the approval's system note.
    pub approved_at_in_api: bool,
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
    /// Who created it (GitLab's `creator_id`).
    pub creator_id: u64,
    /// branch → path → content.
    pub branches: BTreeMap<String, BTreeMap<String, String>>,
    /// (branch, message) of every commit after the initial one.
    pub commits: Vec<(String, String)>,
    pub protected: BTreeMap<String, FakeProtection>,
    pub variables: BTreeMap<String, FakeVariable>,
    pub archived: bool,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// GitLab's time format: `2026-11-24T12:00:00.000Z`.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

impl FakeState {
    pub fn user(&mut self, id: u64, username: &str) {
        self.users.insert(
            id,
            FakeUser {
                id,
                username: username.into(),
                email: format!("{username}@example.com"),
            },
        );
    }

    /// The clock moves one second and says the time.
    pub fn tick(&mut self) -> i64 {
        if self.now_ms == 0 {
            self.now_ms = CLOCK_START_MS;
        }
        self.now_ms += 1000;
        self.now_ms
    }

    pub fn blob_id(content: &[u8]) -> String {
        hex(&Sha256::digest(content))[..40].to_string()
    }

    /// A commit on `parent` (or empty) with `changes` applied (`None` deletes a file).
    pub fn commit(&mut self, parent: Option<&str>, changes: &[(&str, Option<&str>)]) -> String {
        self.commit_by(0, parent, changes)
    }

    /// [`FakeState::commit`] written by `author`.
    pub fn commit_by(
        &mut self,
        author: u64,
        parent: Option<&str>,
        changes: &[(&str, Option<&str>)],
    ) -> String {
        let mut tree = parent
            .and_then(|p| self.commits.get(p).map(|c| c.tree.clone()))
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
        let parents = parent.map(|p| vec![p.to_string()]).unwrap_or_default();
        self.add_commit(tree, parents, author, "commit")
    }

    fn add_commit(
        &mut self,
        tree: BTreeMap<String, String>,
        parents: Vec<String>,
        author: u64,
        message: &str,
    ) -> String {
        self.next_commit += 1;
        // (plain commits keep the ids they always had: snapshots show them)
        let seed = match message {
            "commit" => format!("commit {} {:?}", self.next_commit, tree),
            _ => format!("{message} {} {:?} {parents:?}", self.next_commit, tree),
        };
        let sha = hex(&Sha256::digest(seed.as_bytes()))[..40].to_string();
        let created_ms = self.tick();
        self.commits.insert(
            sha.clone(),
            FakeCommit {
                tree,
                parents,
                author,
                message: message.into(),
                created_ms,
            },
        );
        sha
    }

    pub fn tree_of(&self, sha: &str) -> BTreeMap<String, String> {
        self.commits
            .get(sha)
            .map(|c| c.tree.clone())
            .unwrap_or_default()
    }

    pub fn first_parent(&self, sha: &str) -> Option<String> {
        self.commits.get(sha)?.parents.first().cloned()
    }

    /// Whether `ancestor` is `sha` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, sha: &str) -> bool {
        let mut todo = vec![sha.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(c) = todo.pop() {
            if c == ancestor {
                return true;
            }
            if seen.insert(c.clone())
                && let Some(k) = self.commits.get(&c)
            {
                todo.extend(k.parents.iter().cloned());
            }
        }
        false
    }

    /// The MR's own commits, newest first: from its head back along first parents to its
    /// merge base (GitLab's `GET …/merge_requests/:iid/commits`).
    pub fn mr_commits(&self, iid: u64) -> Vec<String> {
        let mr = &self.mrs[&iid];
        let mut out = Vec::new();
        let mut c = mr.head_sha.clone();
        while c != mr.base_sha && !self.is_ancestor(&c, &mr.base_sha) {
            out.push(c.clone());
            match self.first_parent(&c) {
                Some(p) => c = p,
                None => break,
            }
        }
        out
    }

    fn system_note(&mut self, iid: u64, author: u64, body: &str) {
        let created_ms = self.tick();
        self.next_note += 1;
        let id = self.next_note;
        self.mrs.get_mut(&iid).unwrap().notes.push(FakeNote {
            id,
            author,
            body: body.into(),
            system: true,
            created_ms,
        });
    }

    fn new_version(&mut self, iid: u64) {
        let created_ms = self.tick();
        self.next_version += 1;
        let id = self.next_version;
        let mr = self.mrs.get_mut(&iid).unwrap();
        mr.versions.push(FakeVersion {
            id,
            head_sha: mr.head_sha.clone(),
            base_sha: mr.base_sha.clone(),
            start_sha: mr.start_sha.clone(),
            created_ms,
        });
    }

    /// `author` opens an MR from `source` (already pushed) into `target`; GitLab makes its
    /// first diff version.
    pub fn open_mr(&mut self, author: u64, title: &str, source: &str, target: &str) -> u64 {
        let head = self.branches[source].clone();
        let target_head = self.branches[target].clone();
        let base = self.merge_base(&head, &target_head);
        let iid = self.mrs.keys().max().copied().unwrap_or(0) + 1;
        self.mrs.insert(
            iid,
            FakeMr {
                iid,
                title: title.into(),
                description: String::new(),
                author,
                source_branch: source.into(),
                target_branch: target.into(),
                state: "opened".into(),
                base_sha: base,
                start_sha: target_head,
                head_sha: head,
                approvals: vec![],
                approved_ms: BTreeMap::new(),
                notes: vec![],
                labels: vec![],
                merge_commit_sha: None,
                squash_commit_sha: None,
                merged_by: None,
                squash: false,
                collapse_diffs: false,
                versions: vec![],
                remove_source_branch: false,
            },
        );
        self.new_version(iid);
        iid
    }

    /// The newest common ancestor along `a`'s first parents.
    pub fn merge_base(&self, a: &str, b: &str) -> String {
        let mut c = a.to_string();
        loop {
            if self.is_ancestor(&c, b) {
                return c;
            }
            match self.first_parent(&c) {
                Some(p) => c = p,
                None => return c,
            }
        }
    }

    /// `by` pushes a commit with `changes` to the MR's branch: a new diff version, and the
    /// system note GitLab writes ("added 1 commit"), by the pusher. Approvals are kept (as
    /// GitLab Free keeps them).
    pub fn push(&mut self, iid: u64, by: u64, changes: &[(&str, Option<&str>)]) -> String {
        let old = self.mrs[&iid].head_sha.clone();
        let new = self.commit_by(by, Some(&old), changes);
        self.move_head(iid, &new);
        self.push_note(iid, by, &new, "commit");
        new
    }

    /// The system note GitLab writes when one commit (`sha`, titled `title`) is pushed to
    /// the MR's branch, by the pusher.
    fn push_note(&mut self, iid: u64, by: u64, sha: &str, title: &str) {
        self.system_note(
            iid,
            by,
            &format!(
                "added 1 commit\n\n<ul><li>{} - {title}</li></ul>\n\n[Compare with previous version](https://gitlab.example.com/{PROJECT_PATH}/-/merge_requests/{iid}/diffs)",
                &sha[..8]
            ),
        );
    }

    /// A commit through the API (`POST /projects/:id/repository/commits`) by `by`: on
    /// `branch`'s head, or — when `branch` does not exist or `force` is set — on
    /// `start_branch`'s head; `actions` are (`create`|`update`|`delete`, path, content).
    /// `branch` then points at it, and an open MR from `branch` moves to it with the push
    /// system note GitLab writes ("added 1 commit", by `by`). Errors are GitLab's messages
    /// (its 400s); nothing changes then.
    pub fn commit_actions(
        &mut self,
        by: u64,
        branch: &str,
        start_branch: Option<&str>,
        force: bool,
        message: &str,
        actions: &[(String, String, Option<String>)],
    ) -> Result<String, String> {
        let parent = match (self.branches.get(branch), start_branch) {
            (Some(head), _) if !force => head.clone(),
            // `start_branch` names a branch, `start_sha` a commit
            (_, Some(start)) => self
                .branches
                .get(start)
                .cloned()
                .or_else(|| self.commits.contains_key(start).then(|| start.to_string()))
                .ok_or_else(|| format!("Invalid reference name: {start}"))?,
            _ => return Err("You can only create or edit files when you are on a branch".into()),
        };
        let mut tree = self.tree_of(&parent);
        let mut new_blobs = Vec::new();
        for (action, path, content) in actions {
            match action.as_str() {
                "create" if tree.contains_key(path) => {
                    return Err("A file with this name already exists".into());
                }
                "update" | "delete" if !tree.contains_key(path) => {
                    return Err("A file with this name doesn't exist".into());
                }
                "create" | "update" => {
                    let bytes = content.clone().unwrap_or_default().into_bytes();
                    let id = Self::blob_id(&bytes);
                    tree.insert(path.clone(), id.clone());
                    new_blobs.push((id, bytes));
                }
                "delete" => {
                    tree.remove(path);
                }
                _ => return Err("actions[action] does not have a valid value".into()),
            }
        }
        self.blobs.extend(new_blobs);
        let sha = self.add_commit(tree, vec![parent], by, message);
        self.branches.insert(branch.to_string(), sha.clone());
        let open = self
            .mrs
            .values()
            .find(|m| m.state == "opened" && m.source_branch == branch)
            .map(|m| m.iid);
        if let Some(iid) = open {
            self.move_head(iid, &sha);
            let title = message.lines().next().unwrap_or_default().to_string();
            self.push_note(iid, by, &sha, &title);
        }
        Ok(sha)
    }

    fn move_head(&mut self, iid: u64, new: &str) {
        let target = self.mrs[&iid].target_branch.clone();
        let target_head = self.branches[&target].clone();
        let base = self.merge_base(new, &target_head);
        let mr = self.mrs.get_mut(&iid).unwrap();
        mr.head_sha = new.to_string();
        mr.base_sha = base;
        mr.start_sha = target_head;
        let branch = mr.source_branch.clone();
        self.branches.insert(branch, new.to_string());
        self.new_version(iid);
    }

    /// `by` approves: on the MR's list and as GitLab's system note, at this time.
    pub fn approve(&mut self, iid: u64, by: u64) {
        self.system_note(iid, by, "approved this merge request");
        let at = self.now_ms;
        let mr = self.mrs.get_mut(&iid).unwrap();
        if !mr.approvals.contains(&by) {
            mr.approvals.push(by);
        }
        mr.approved_ms.insert(by, at);
    }

    pub fn unapprove(&mut self, iid: u64, by: u64) {
        self.mrs
            .get_mut(&iid)
            .unwrap()
            .approvals
            .retain(|u| *u != by);
        self.system_note(iid, by, "unapproved this merge request");
    }

    /// Replays the MR's commits on the target's head (GitLab's "Rebase"), by `by`.
    pub fn rebase(&mut self, iid: u64, by: u64) -> String {
        let mr = self.mrs[&iid].clone();
        let mut commits = self.mr_commits(iid);
        commits.reverse();
        let mut head = self.branches[&mr.target_branch].clone();
        for c in commits {
            let parent = self.first_parent(&c).unwrap_or_default();
            let (before, after) = (self.tree_of(&parent), self.tree_of(&c));
            let mut tree = self.tree_of(&head);
            for (p, id) in &after {
                if before.get(p) != Some(id) {
                    tree.insert(p.clone(), id.clone());
                }
            }
            for p in before.keys().filter(|p| !after.contains_key(*p)) {
                tree.remove(p);
            }
            let author = self.commits[&c].author;
            head = self.add_commit(tree, vec![head], author, "rebased commit");
        }
        self.move_head(iid, &head);
        self.system_note(iid, by, "added commits by rebasing on the target branch");
        head
    }

    /// Merges an MR into its target branch by the project's merge method, as GitLab does:
    /// a merge commit (parents: target, head — or the squash commit), or for fast-forward
    /// no merge commit at all (the target moves to the head, or to the squash commit). Returns
    /// the commit that landed; panics where GitLab would refuse (not rebased for a
    /// semi-linear or fast-forward merge).
    pub fn merge(&mut self, iid: u64, by: u64) -> String {
        let mr = self.mrs[&iid].clone();
        let target = self.branches[&mr.target_branch].clone();
        let method = self.merge_method;
        if method != MergeMethod::Merge {
            assert!(
                self.is_ancestor(&target, &mr.head_sha),
                "GitLab refuses: the source branch must be rebased onto the target first"
            );
        }
        let squash = mr.squash.then(|| {
            // one commit with the MR's whole change, on the merge base (fast-forward: on
            // the target, which is then the merge base)
            let base = if method == MergeMethod::FastForward {
                target.clone()
            } else {
                mr.base_sha.clone()
            };
            let tree = self.tree_of(&mr.head_sha);
            self.add_commit(tree, vec![base], mr.author, &mr.title)
        });
        let tip = squash.clone().unwrap_or_else(|| mr.head_sha.clone());
        let (landed, merge_commit) = match method {
            MergeMethod::FastForward => (tip.clone(), None),
            MergeMethod::Merge | MergeMethod::RebaseMerge => {
                let mut tree = self.tree_of(&target);
                let (base, head) = (self.tree_of(&mr.base_sha), self.tree_of(&mr.head_sha));
                for (path, id) in &head {
                    if base.get(path) != Some(id) {
                        tree.insert(path.clone(), id.clone());
                    }
                }
                for path in base.keys().filter(|p| !head.contains_key(*p)) {
                    tree.remove(path);
                }
                let m = self.add_commit(tree, vec![target, tip], by, "Merge branch");
                (m.clone(), Some(m))
            }
        };
        self.branches
            .insert(mr.target_branch.clone(), landed.clone());
        let m = self.mrs.get_mut(&iid).unwrap();
        m.state = "merged".into();
        m.merge_commit_sha = merge_commit;
        m.squash_commit_sha = squash;
        m.merged_by = Some(by);
        landed
    }

    /// A user's membership of a group as `members/all` answers: direct, or inherited from
    /// an ancestor group; the highest access level.
    pub fn member_all(&self, group: &str, user: u64) -> Option<(String, u32)> {
        let mut best: Option<(String, u32)> = None;
        let mut path = group.to_string();
        loop {
            if let Some(m) = self.groups.get(&path).and_then(|g| g.get(&user))
                && best.as_ref().is_none_or(|b| m.1 > b.1)
            {
                best = Some(m.clone());
            }
            match path.rsplit_once('/') {
                Some((parent, _)) => path = parent.to_string(),
                None => return best,
            }
        }
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
        let id = self.commits.get(sha)?.tree.get(path)?;
        Some(String::from_utf8_lossy(&self.blobs[id]).into_owned())
    }

    pub fn bot_notes(&self, iid: u64) -> Vec<FakeNote> {
        self.mrs[&iid]
            .notes
            .iter()
            .filter(|n| n.author == self.bot_user && !n.system)
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

    /// `author` opens an issue on the subaccounts project; returns its iid.
    pub fn open_issue(&mut self, author: u64, title: &str, description: &str) -> u64 {
        let iid = self.issues.keys().max().copied().unwrap_or(0) + 1;
        self.issues.insert(
            iid,
            FakeIssue {
                iid,
                title: title.into(),
                description: description.into(),
                state: "opened".into(),
                labels: vec![],
                assignees: vec![],
                author,
                notes: vec![],
                confidential: false,
            },
        );
        iid
    }

    fn issue_note(&mut self, iid: u64, author: u64, body: &str, system: bool) -> u64 {
        let created_ms = self.tick();
        self.next_note += 1;
        let id = self.next_note;
        self.issues.get_mut(&iid).unwrap().notes.push(FakeNote {
            id,
            author,
            body: body.into(),
            system,
            created_ms,
        });
        id
    }

    /// `by` replaces the issue's description: GitLab's system note "changed the
    /// description", by `by`, at this time.
    pub fn edit_issue(&mut self, iid: u64, by: u64, description: &str) {
        self.issues.get_mut(&iid).unwrap().description = description.into();
        self.issue_note(iid, by, "changed the description", true);
    }

    /// `by` comments on the issue; returns the note's id.
    pub fn comment_issue(&mut self, iid: u64, by: u64, body: &str) -> u64 {
        self.issue_note(iid, by, body, false)
    }

    /// The bot's own (non-system) notes on the issue, oldest first.
    pub fn bot_issue_notes(&self, iid: u64) -> Vec<FakeNote> {
        self.issues[&iid]
            .notes
            .iter()
            .filter(|n| n.author == self.bot_user && !n.system)
            .cloned()
            .collect()
    }

    pub fn close_issue(&mut self, iid: u64) {
        self.issues.get_mut(&iid).unwrap().state = "closed".into();
    }

    /// A user's membership of the subaccounts project as `members/all` answers: direct, or
    /// through its group (`infra`) and that group's ancestors; the highest access level.
    pub fn project_member_all(&self, user: u64) -> Option<(String, u32)> {
        let group = PROJECT_PATH.rsplit_once('/').map_or("", |(g, _)| g);
        let direct = self.project_members.get(&user).cloned();
        let inherited = self.member_all(group, user);
        match (direct, inherited) {
            (Some(d), Some(i)) => Some(if i.1 > d.1 { i } else { d }),
            (d, i) => d.or(i),
        }
    }

    /// Issues whose title contains `text`.
    pub fn issues_titled(&self, text: &str) -> Vec<FakeIssue> {
        self.issues
            .values()
            .filter(|i| i.title.contains(text))
            .cloned()
            .collect()
    }
}
