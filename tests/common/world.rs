//! The whole bot against the fake GitLab, as a story: open an MR, approve it, push to it,
//! comment on it; deliveries are built from the fake's state, signed, and sent through the
//! real router; the worker is stepped with `run_until_idle`.
#![allow(dead_code)]

use super::fake_aws::Scripted;
use super::fake_gitlab::{
    BOT_TOKEN, FakeGitlab, FakeNote, FakeProtection, FakeState, FakeStatus, PROJECT_ID,
    PROJECT_PATH,
};
use super::{Delivery, TestServer};
use orgvend::aws::Aws;
use orgvend::aws::sdk::SdkAws;
use orgvend::bot::Bot;
use orgvend::bot::apply::Bootstrap;
use orgvend::bot::apply::steps::access::AccessClients;
use orgvend::bot::apply::{Applier, ApplySettings};
use orgvend::config::Secret;
use orgvend::core::template::Templates;
use orgvend::gitlab::client::GitlabClient;
use orgvend::serve::worker::Worker;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const DEV: u64 = 10;
pub const ALICE: u64 = 20; // Infrastructure
pub const BOB: u64 = 21; // Infrastructure
pub const MALLORY: u64 = 30; // not a member
pub const BOT: u64 = 99;
pub const GROUP: &str = "infrastructure";

pub type TestAws = Scripted<SdkAws>;
pub type TestBot<A = TestAws> = Bot<GitlabClient, A>;

/// The world; `A` is the AWS the bot applies through (moto's server behind the scripted
/// layer by default, or the in-memory organization of the benchmarks).
pub struct World<A: Aws + Clone = TestAws> {
    pub gitlab: FakeGitlab,
    pub server: TestServer,
    pub bot: Arc<TestBot<A>>,
    pub worker: Worker<Arc<TestBot<A>>>,
    /// The AWS layer the bot applies through, when it applies.
    pub aws: Option<A>,
    /// How account repositories are made, when they are.
    pub bootstrap: Option<Bootstrap>,
    /// The apply's settings.
    pub settings: ApplySettings,
    /// The access providers the bot may grant through.
    pub access: AccessClients,
}

/// The group new account projects go in (the policy's default `repository.namespace`).
pub const ACCOUNTS_GROUP: &str = "aws-accounts";
pub const ACCOUNTS_GROUP_ID: u64 = 77;
/// The GitLab instance as CI ID tokens name it.
pub const ISSUER: &str = "https://gitlab.example.com";

/// Fast polling and short deadlines for tests.
pub fn test_settings() -> ApplySettings {
    ApplySettings {
        saml_metadata: super::moto::saml_metadata(),
        create_timeout: Duration::from_secs(60),
        max_creations: 5,
        poll: Duration::from_millis(20),
        assume_timeout: Duration::from_secs(5),
    }
}

/// The fixture subaccounts repository and the shipped policy, as `master`'s first commit.
pub fn fixture_repo() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for name in [
        "main.tf",
        "variables.tf",
        "terraform.tfvars",
        "management.tf",
        "internal.tf",
        "clients.tf",
    ] {
        files.push((
            name.to_string(),
            std::fs::read_to_string(root.join("fixtures/subaccounts").join(name)).unwrap(),
        ));
    }
    for name in ["orgvend.toml", "clients.rego"] {
        files.push((
            format!("policies/{name}"),
            std::fs::read_to_string(root.join("policies").join(name)).unwrap(),
        ));
    }
    files
}

/// A client account pair in the fixture's style.
pub fn client_account(slug: &str) -> String {
    format!(
        r#"
### Client - {slug} ###
module "subaccount_client_{key}" {{
  source = "git::https://gitlab.example.com/infra/modules/subaccount.git?ref=v1.4.0"
  name   = "client-{slug}"
  email  = "aws+client-{slug}@example.com"
}}

module "subaccount_client_{key}_base" {{
  source          = "git::https://gitlab.example.com/infra/modules/subaccount-base.git?ref=v2.1.0"
  account_id      = "${{module.subaccount_client_{key}.id}}"
  root_account_id = "${{var.root_account_id}}"
  account_alias   = "client-{slug}"
  account_type    = "client"
  tags            = "${{merge(var.tags, map("client", "{slug}"))}}"
}}
"#,
        key = slug.replace('-', "_")
    )
}

/// The users of every world: id and username.
const USERS: [(u64, &str); 5] = [
    (DEV, "dev"),
    (ALICE, "infra-alice"),
    (BOB, "infra-bob"),
    (MALLORY, "mallory"),
    (BOT, "orgvend"),
];

/// The file an MR adds for `slug`'s client account: its path and text.
/// A subaccounts repository of `accounts` client accounts, `per_file` to a file, with the
/// shipped policy: what the benchmarks review.
pub fn big_repo(accounts: usize, per_file: usize) -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        (
            "variables.tf".to_string(),
            std::fs::read_to_string(root.join("fixtures/subaccounts/variables.tf")).unwrap(),
        ),
        (
            "terraform.tfvars".to_string(),
            "root_account_id = \"123456789012\"\n".to_string(),
        ),
    ];
    for name in ["orgvend.toml", "clients.rego"] {
        files.push((
            format!("policies/{name}"),
            std::fs::read_to_string(root.join("policies").join(name)).unwrap(),
        ));
    }
    for f in 0..accounts / per_file {
        let text: String = (0..per_file)
            .map(|i| client_account(&format!("a{}", f * per_file + i)))
            .collect();
        files.push((format!("clients-{f:03}.tf"), text));
    }
    files
}

pub fn account_file(slug: &str) -> (String, String) {
    (format!("clients-{slug}.tf"), client_account(slug))
}

pub fn initial_state(files: &[(String, String)]) -> FakeState {
    let mut s = FakeState::default();
    for (id, name) in USERS {
        s.user(id, name);
    }
    s.bot_user = BOT;
    let changes: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    let root = s.commit(None, &changes);
    s.branches.insert("master".into(), root);
    s.default_branch = "master".into();
    s.token_scopes = vec!["api".into()];
    let mut members = std::collections::HashMap::new();
    members.insert(ALICE, ("active".to_string(), 40));
    members.insert(BOB, ("active".to_string(), 30));
    members.insert(DEV, ("active".to_string(), 30)); // the author is a member too: still never counts
    s.groups.insert(GROUP.into(), members);
    s
}

impl World {
    pub async fn new() -> World {
        World::with_state(initial_state(&fixture_repo()), "").await
    }

    pub async fn with_state(state: FakeState, extra_config: &str) -> World {
        World::<TestAws>::build(state, extra_config).await
    }

    /// The world, applying merges through `aws`.
    pub async fn applying(aws: TestAws) -> World {
        let mut w = World::new().await;
        w.aws = Some(aws);
        w.restart();
        w
    }

    /// The world, applying merges through `aws` and bootstrapping each new account's
    /// repository in the `accounts` group, on an instance whose default branch protection
    /// lets maintainers push (so orgvend meets GitLab's 409 and must replace it).
    pub async fn bootstrapping(aws: TestAws) -> World {
        World::<TestAws>::bootstrapping_with(initial_state(&fixture_repo()), aws).await
    }
}

impl<A: Aws + Clone> World<A> {
    pub async fn build(state: FakeState, extra_config: &str) -> World<A> {
        World::<A>::build_on(state, extra_config, None).await
    }

    /// [`World::build`] on the store at `store_url` (default: a new SQLite file).
    pub async fn build_on(
        state: FakeState,
        extra_config: &str,
        store_url: Option<String>,
    ) -> World<A> {
        let gitlab = FakeGitlab::start(state).await;
        let url = gitlab.url();
        let drift = extra_config.contains("[drift]");
        let server = TestServer::start_with(extra_config, |c| {
            // drift runs (and opens its issue) only in the stories about it
            if !drift {
                c.drift.interval_seconds = 0;
            }
            c.gitlab.url = url.clone();
            c.gitlab.token = Some(Secret::new(BOT_TOKEN));
            if let Some(s) = store_url {
                c.store.url = Secret::new(s);
            }
        })
        .await;
        let client = GitlabClient::new(&url, Some(Secret::new(BOT_TOKEN)), Duration::from_secs(10))
            .unwrap()
            .with_retry_base(Duration::from_millis(5));
        let bot = Arc::new(Bot::new(server.ctx.clone(), client));
        let worker = Worker::new(server.ctx.clone(), bot.clone());
        World {
            gitlab,
            server,
            bot,
            worker,
            aws: None,
            bootstrap: None,
            settings: test_settings(),
            access: AccessClients::default(),
        }
    }

    /// [`World::bootstrapping`] on `state`, through any AWS.
    pub async fn bootstrapping_with(state: FakeState, aws: A) -> World<A> {
        World::<A>::bootstrapping_on(state, aws, None).await
    }

    /// [`World::bootstrapping_with`] on the store at `store_url`.
    pub async fn bootstrapping_on(
        mut state: FakeState,
        aws: A,
        store_url: Option<String>,
    ) -> World<A> {
        state
            .group_ids
            .insert(ACCOUNTS_GROUP.into(), ACCOUNTS_GROUP_ID);
        state.group_ids.insert(GROUP.into(), 5);
        state.default_protection = Some(FakeProtection {
            push: 40,
            merge: 40,
            allow_force_push: false,
        });
        let mut w = World::<A>::build_on(state, "", store_url).await;
        w.aws = Some(aws);
        w.bootstrap = Some(Bootstrap {
            gitlab_url: ISSUER.into(),
            region: "us-east-1".into(),
            visibility: "private".into(),
            templates: Templates::embedded(),
        });
        w.restart();
        w
    }

    /// A new bot on the same store and GitLab, as after a restart of the process: in-memory
    /// state is gone; deliveries left running are pending again.
    pub fn restart(&mut self) {
        let client = GitlabClient::new(
            &self.gitlab.url(),
            Some(Secret::new(BOT_TOKEN)),
            Duration::from_secs(10),
        )
        .unwrap()
        .with_retry_base(Duration::from_millis(5));
        let mut bot = Bot::new(self.server.ctx.clone(), client);
        if let Some(aws) = &self.aws {
            bot = bot.with_applier(
                Applier::new(aws.clone(), self.settings.clone()).with_access(self.access.clone()),
            );
        }
        if let Some(b) = &self.bootstrap {
            bot = bot.with_bootstrap(b.clone());
        }
        self.bot = Arc::new(bot);
        self.worker = Worker::new(self.server.ctx.clone(), self.bot.clone());
    }

    /// Other apply settings, from now on.
    pub fn set_settings(&mut self, settings: ApplySettings) {
        self.settings = settings;
        self.restart();
    }

    /// The stored run of the apply of `merge_sha`; panics when there is none.
    pub async fn apply_run(&self, merge_sha: &str) -> orgvend::store::ApplyRun {
        self.server
            .ctx
            .store
            .apply_run(merge_sha)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no apply run for {merge_sha}"))
    }

    /// An MR by DEV adding `slug`'s client account, approved by ALICE (status `success`),
    /// then merged by BOB. Returns the MR and the merge commit.
    pub async fn merge_approved(&self, slug: &str) -> (u64, String) {
        let iid = self
            .open_account_mr(&format!("Add client-{slug}"), slug)
            .await;
        self.approve_as(iid, ALICE).await;
        self.settle().await;
        assert_eq!(
            self.status_state(&self.head(iid)),
            "success",
            "{}",
            self.bot_note(iid)
        );
        let sha = self.merge_as(iid, BOB).await;
        (iid, sha)
    }

    /// An MR by DEV with `changes`, approved by `approvers` (status `success`), merged by BOB
    /// and applied. Returns the MR and the merge commit.
    pub async fn merge_change(
        &self,
        title: &str,
        changes: &[(&str, Option<&str>)],
        approvers: &[u64],
    ) -> (u64, String) {
        let iid = self.open_mr(DEV, title, changes).await;
        for a in approvers {
            self.approve_as(iid, *a).await;
        }
        self.settle().await;
        let note = self.bot_note(iid);
        assert_eq!(self.status_state(&self.head(iid)), "success", "{note}");
        let sha = self.merge_as(iid, BOB).await;
        self.settle().await;
        let run = self.apply_run(&sha).await;
        assert_eq!(run.decision, "applied", "{}", self.bot_note(iid));
        (iid, sha)
    }

    /// `by` merges the MR; the merge delivery is sent. Returns the merge commit.
    pub async fn merge_as(&self, iid: u64, by: u64) -> String {
        let sha = self.gitlab.with(|s| s.merge(iid, by));
        self.deliver_mr(iid, "merge", by, None).await;
        sha
    }

    pub fn master(&self) -> String {
        self.gitlab.with(|s| s.branches["master"].clone())
    }

    /// Commits `changes` on `master` directly (as a merge would).
    pub fn commit_to_master(&self, changes: &[(&str, Option<&str>)]) -> String {
        self.gitlab.with(|s| {
            let parent = s.branches["master"].clone();
            let sha = s.commit(Some(&parent), changes);
            s.branches.insert("master".into(), sha.clone());
            sha
        })
    }

    /// `author` opens an MR with `changes` on a new branch; the open delivery is sent.
    pub async fn open_mr(&self, author: u64, title: &str, changes: &[(&str, Option<&str>)]) -> u64 {
        let iid = self.open_mr_quietly(author, title, changes);
        self.deliver_mr(iid, "open", author, None).await;
        iid
    }

    /// DEV opens an MR titled `title` adding `slug`'s client account in `clients-<slug>.tf`.
    pub async fn open_account_mr(&self, title: &str, slug: &str) -> u64 {
        let (path, text) = account_file(slug);
        self.open_mr(DEV, title, &[(&path, Some(&text))]).await
    }

    /// [`World::open_account_mr`] without any delivery (as if GitLab lost it).
    pub fn open_account_mr_quietly(&self, title: &str, slug: &str) -> u64 {
        let (path, text) = account_file(slug);
        self.open_mr_quietly(DEV, title, &[(&path, Some(&text))])
    }

    /// Opens an MR without any delivery (as if GitLab lost it).
    pub fn open_mr_quietly(
        &self,
        author: u64,
        title: &str,
        changes: &[(&str, Option<&str>)],
    ) -> u64 {
        self.open_mr_into_quietly(author, title, "master", changes)
    }

    /// Opens an MR into `target` without any delivery: one commit by `author` on a new
    /// branch from `target`'s head.
    pub fn open_mr_into_quietly(
        &self,
        author: u64,
        title: &str,
        target: &str,
        changes: &[(&str, Option<&str>)],
    ) -> u64 {
        self.gitlab.with(|s| {
            let base = s.branches[target].clone();
            let head = s.commit_by(author, Some(&base), changes);
            let branch = format!("mr-{}", s.mrs.len() + 1);
            s.branches.insert(branch.clone(), head);
            s.open_mr(author, title, &branch, target)
        })
    }

    /// `author` opens an MR into `target`; the open delivery is sent.
    pub async fn open_mr_into(
        &self,
        author: u64,
        title: &str,
        target: &str,
        changes: &[(&str, Option<&str>)],
    ) -> u64 {
        let iid = self.open_mr_into_quietly(author, title, target, changes);
        self.deliver_mr(iid, "open", author, None).await;
        iid
    }

    /// Pushes `changes` to the MR's branch; GitLab's own approvals are kept (a project may
    /// keep them on push); the update delivery carries `oldrev`.
    pub async fn push(&self, iid: u64, changes: &[(&str, Option<&str>)]) -> String {
        let author = self.gitlab.with(|s| s.mrs[&iid].author);
        self.push_as(iid, author, changes).await
    }

    /// `by` pushes `changes` to the MR's branch (GitLab writes "added 1 commit" as `by`).
    pub async fn push_as(&self, iid: u64, by: u64, changes: &[(&str, Option<&str>)]) -> String {
        let (old, new) = self.gitlab.with(|s| {
            let old = s.mrs[&iid].head_sha.clone();
            (old, s.push(iid, by, changes))
        });
        self.deliver_mr(iid, "update", by, Some(&old)).await;
        new
    }

    pub async fn approve_as(&self, iid: u64, user: u64) {
        self.gitlab.with(|s| s.approve(iid, user));
        self.deliver_mr(iid, "approved", user, None).await;
    }

    pub async fn unapprove_as(&self, iid: u64, user: u64) {
        self.gitlab.with(|s| s.unapprove(iid, user));
        self.deliver_mr(iid, "unapproved", user, None).await;
    }

    /// A comment by `user`, delivered as a Note Hook.
    pub async fn comment(&self, iid: u64, user: u64, body: &str) {
        let (note_id, username) = self.gitlab.with(|s| {
            let created_ms = s.tick();
            s.next_note += 1;
            let id = s.next_note;
            s.mrs.get_mut(&iid).unwrap().notes.push(FakeNote {
                id,
                author: user,
                body: body.into(),
                system: false,
                created_ms,
            });
            (id, s.users[&user].username.clone())
        });
        let payload = json!({
            "object_kind": "note", "event_type": "note",
            "user": {"id": user, "username": username},
            "project_id": PROJECT_ID, "project": {"id": PROJECT_ID, "path_with_namespace": PROJECT_PATH},
            "object_attributes": {"id": note_id, "note": body, "noteable_type": "MergeRequest", "system": false, "action": "create"},
            "merge_request": {"iid": iid, "id": 1000 + iid}
        });
        let r = self
            .server
            .post(&Delivery::new(
                "Note Hook",
                payload.to_string().into_bytes(),
            ))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }

    /// An MR delivery built from the fake's state (`actor` caused it).
    pub async fn deliver_mr(&self, iid: u64, action: &str, actor: u64, oldrev: Option<&str>) {
        let payload = self.mr_payload(iid, action, actor, oldrev);
        let r = self
            .server
            .post(&Delivery::new(
                "Merge Request Hook",
                payload.to_string().into_bytes(),
            ))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }

    pub fn mr_payload(
        &self,
        iid: u64,
        action: &str,
        actor: u64,
        oldrev: Option<&str>,
    ) -> serde_json::Value {
        self.gitlab.with(|s| {
            let mr = &s.mrs[&iid];
            let mut attrs = json!({
                "iid": iid, "id": 1000 + iid, "action": action, "state": mr.state,
                "source_branch": mr.source_branch, "target_branch": mr.target_branch,
                "author_id": mr.author, "target_project_id": PROJECT_ID,
                "last_commit": {"id": mr.head_sha}, "merge_commit_sha": mr.merge_commit_sha,
            });
            if let Some(o) = oldrev {
                attrs["oldrev"] = json!(o);
            }
            json!({
                "object_kind": "merge_request", "event_type": "merge_request",
                "user": {"id": actor, "username": s.users[&actor].username},
                "project": {"id": PROJECT_ID, "path_with_namespace": PROJECT_PATH},
                "object_attributes": attrs, "changes": {}, "labels": []
            })
        })
    }

    /// Works through every delivery that is due. Fails the test when a job failed (an error,
    /// a panic): a failure nobody expected is a bug, as bors fails a test on an unread
    /// comment. Where a failure is the story, use [`World::settle_allowing_failures`].
    pub async fn settle(&self) -> usize {
        let (attempts, failed) = self.settle_allowing_failures().await;
        if failed > 0 {
            let errors: Vec<String> = self
                .server
                .ctx
                .store
                .list(None, 50)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|d| {
                    d.last_error
                        .map(|e| format!("delivery {} ({} {}): {e}", d.id, d.kind, d.action))
                })
                .collect();
            panic!(
                "{failed} job(s) failed unexpectedly (settle_allowing_failures where that is the story):\n{}",
                errors.join("\n")
            );
        }
        attempts
    }

    /// Works through every delivery that is due; returns the attempts made and how many of
    /// them failed.
    pub async fn settle_allowing_failures(&self) -> (usize, u64) {
        let metrics = &self.server.ctx.metrics;
        let before = metrics.worker_failures_total();
        let attempts = self.worker.run_until_idle().await.unwrap();
        (attempts, metrics.worker_failures_total() - before)
    }

    pub fn head(&self, iid: u64) -> String {
        self.gitlab.with(|s| s.mrs[&iid].head_sha.clone())
    }

    /// The bot's one note on the MR; fails if there is none or several.
    pub fn bot_note(&self, iid: u64) -> String {
        let notes = self.gitlab.with(|s| s.bot_notes(iid));
        assert_eq!(
            notes.len(),
            1,
            "expected exactly one orgvend note, found {}",
            notes.len()
        );
        notes[0].body.clone()
    }

    /// The latest `orgvend` status on a commit.
    pub fn status(&self, sha: &str) -> Option<FakeStatus> {
        self.gitlab.with(|s| {
            s.statuses_of(sha)
                .into_iter()
                .rfind(|st| st.name == "orgvend")
        })
    }

    pub fn status_state(&self, sha: &str) -> String {
        self.status(sha)
            .map(|s| s.state)
            .unwrap_or_else(|| "none".into())
    }
}

/// The note without its footer line (which carries the time).
pub fn without_footer(note: &str) -> String {
    note.lines()
        .filter(|l| !l.starts_with("<sub>orgvend · reviewed"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Adds an MR by DEV on master adding `slug`'s client account, approved by `approvals`;
/// returns its head. (For tests that build the fake's state before a process starts.)
pub fn add_account_mr(state: &mut FakeState, iid: u64, slug: &str, approvals: &[u64]) -> String {
    let master = state.branches["master"].clone();
    let (path, text) = account_file(slug);
    let head = state.commit_by(DEV, Some(&master), &[(&path, Some(&text))]);
    let branch = format!("add-{slug}");
    state.branches.insert(branch.clone(), head.clone());
    let opened = state.open_mr(DEV, &format!("Add client-{slug}"), &branch, "master");
    assert_eq!(opened, iid, "MRs are numbered in order");
    for a in approvals {
        state.approve(iid, *a);
    }
    head
}

/// The merge delivery GitLab sends when `by` merges MR `iid` as `merge_sha`.
pub fn merge_payload(iid: u64, by: u64, merge_sha: &str) -> serde_json::Value {
    let username = USERS.iter().find(|(id, _)| *id == by).map(|(_, n)| *n);
    json!({
        "object_kind": "merge_request", "event_type": "merge_request",
        "user": {"id": by, "username": username},
        "project": {"id": PROJECT_ID, "path_with_namespace": PROJECT_PATH},
        "object_attributes": {"iid": iid, "id": 1000 + iid, "action": "merge", "state": "merged",
            "source_branch": format!("mr-{iid}"), "target_branch": "master", "author_id": DEV,
            "target_project_id": PROJECT_ID, "merge_commit_sha": merge_sha}
    })
}
