//! The MR review: on an MR event or `/orgvend plan`, read the MR from the API, its files at
//! the base and the head, the policy from the **target branch**, and the approvals; run the
//! core; keep the one bot note up to date and set the `orgvend` commit status. Thin: gather,
//! call the core, act.
//!
//! API calls per review, with a warm cache: the MR; then at once its diffs, its approvals and
//! (on a new head) the pending status; one membership check per approver; the note; the
//! status.
//! Base files are read once per blob id and kept; the head is the base with the MR's diffs
//! applied, or, when GitLab collapsed a diff, read from the head's tree.

use crate::approval::{self, Approver};
use crate::aws::Aws;
use crate::command::{self, Command};
use crate::decl;
use crate::event::{Event, MrAction};
use crate::gitlab::{CommitStatus, FileDiff, GitLab, MergeRequest, StatusState, TreeEntry, User};
use crate::model::SourceFile;
use crate::policy::{MrFacts, Policy};
use crate::render;
use crate::report::{self, AssessInput, IgnoredApproval, Report, Verdict};
use crate::server::Ctx;
use crate::store::{NewDelivery, ReviewRecord};
use crate::worker::{Handler, Job};
use anyhow::{Context, Result, anyhow};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The policy directory at the root of the subaccounts repository.
pub const POLICY_DIR: &str = "policies";
/// The commit status's name.
pub const STATUS_NAME: &str = "orgvend";
/// Blob contents kept in memory, in bytes.
const BLOB_CACHE_BYTES: usize = 256 * 1024 * 1024;
/// Trees kept in memory (a tree of a commit never changes).
const TREE_CACHE_ENTRIES: usize = 64;
/// Blob reads in flight at once for one review.
const PARALLEL_READS: usize = 8;

/// A map bounded by a total weight, oldest entries out first. Its entries are immutable
/// (contents by blob id, trees by commit), so nothing expires.
struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    weight: usize,
    limit: usize,
    weigh: fn(&V) -> usize,
}

impl<V: Clone> Bounded<V> {
    fn new(limit: usize, weigh: fn(&V) -> usize) -> Bounded<V> {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            limit,
            weigh,
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: &str, value: V) {
        if self.map.contains_key(key) {
            return;
        }
        self.weight += (self.weigh)(&value);
        self.map.insert(key.to_string(), value);
        self.order.push_back(key.to_string());
        while self.weight > self.limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                self.weight -= (self.weigh)(&v);
            }
        }
    }
}

/// Contents by blob id (bounded in bytes) and trees by commit (bounded in count).
pub struct Cache {
    blobs: Mutex<Bounded<Arc<str>>>,
    trees: Mutex<Bounded<Arc<Vec<TreeEntry>>>>,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            blobs: Mutex::new(Bounded::new(BLOB_CACHE_BYTES, |t| t.len())),
            trees: Mutex::new(Bounded::new(TREE_CACHE_ENTRIES, |_| 1)),
        }
    }
}

impl Cache {
    fn blob(&self, id: &str) -> Option<Arc<str>> {
        self.blobs.lock().expect("cache lock").get(id)
    }

    fn put_blob(&self, id: &str, text: Arc<str>) {
        self.blobs.lock().expect("cache lock").put(id, text);
    }

    fn tree(&self, sha: &str) -> Option<Arc<Vec<TreeEntry>>> {
        self.trees.lock().expect("cache lock").get(sha)
    }

    fn put_tree(&self, sha: &str, tree: Arc<Vec<TreeEntry>>) {
        self.trees.lock().expect("cache lock").put(sha, tree);
    }
}

/// The bot: reviews MRs and applies merges.
pub struct Bot<G, A = crate::aws::sdk::SdkAws> {
    pub ctx: Arc<Ctx>,
    pub gitlab: Arc<G>,
    pub cache: Cache,
    /// Applying merges; `None` reviews only.
    pub applier: Option<crate::apply::Applier<A>>,
    /// Bootstrapping each new account's repository; `None` skips it.
    pub bootstrap: Option<crate::bootstrap::Bootstrap>,
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    pub fn new(ctx: Arc<Ctx>, gitlab: G) -> Bot<G, A> {
        Bot {
            ctx,
            gitlab: Arc::new(gitlab),
            cache: Cache::default(),
            applier: None,
            bootstrap: None,
        }
    }

    pub fn with_applier(mut self, applier: crate::apply::Applier<A>) -> Bot<G, A> {
        self.applier = Some(applier);
        self
    }

    pub fn with_bootstrap(mut self, bootstrap: crate::bootstrap::Bootstrap) -> Bot<G, A> {
        self.bootstrap = Some(bootstrap);
        self
    }

    /// The subaccounts project as the API names it.
    pub fn project(&self) -> String {
        match &self.ctx.config.gitlab.project {
            crate::config::ProjectSelector::Id(id) => id.to_string(),
            crate::config::ProjectSelector::Path(p) => p.clone(),
        }
    }

    pub(crate) async fn tree(&self, sha: &str) -> Result<Arc<Vec<TreeEntry>>> {
        if let Some(t) = self.cache.tree(sha) {
            return Ok(t);
        }
        let t = Arc::new(
            self.gitlab
                .tree(&self.project(), sha)
                .await
                .with_context(|| format!("reading the tree of {sha}"))?,
        );
        self.cache.put_tree(sha, t.clone());
        Ok(t)
    }

    /// The files among `entries` that `wanted` selects, read by blob id (cached).
    pub(crate) async fn read_files(
        &self,
        entries: &[TreeEntry],
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<SourceFile>> {
        let chosen: Vec<&TreeEntry> = entries
            .iter()
            .filter(|e| e.kind == "blob" && wanted(&e.path))
            .collect();
        let missing: Vec<String> = chosen
            .iter()
            .filter(|e| self.cache.blob(&e.id).is_none())
            .map(|e| e.id.clone())
            .collect();
        let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL_READS));
        let mut reads = tokio::task::JoinSet::new();
        for id in missing {
            let (gitlab, project, limit) = (self.gitlab.clone(), self.project(), limit.clone());
            reads.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let bytes = gitlab
                    .blob(&project, &id)
                    .await
                    .with_context(|| format!("reading blob {id}"))?;
                Ok::<_, anyhow::Error>((id, bytes))
            });
        }
        while let Some(done) = reads.join_next().await {
            let (id, bytes) = done.map_err(|e| anyhow!("a blob read failed: {e}"))??;
            self.cache
                .put_blob(&id, Arc::from(String::from_utf8_lossy(&bytes).as_ref()));
        }
        chosen
            .iter()
            .map(|e| {
                let text = self
                    .cache
                    .blob(&e.id)
                    .ok_or_else(|| anyhow!("blob {} vanished from the cache", e.id))?;
                Ok(SourceFile::new(e.path.clone(), text.to_string()))
            })
            .collect()
    }

    /// The MR's diffs, when GitLab's diff is of the current head (else `None`).
    async fn diffs(&self, mr: &MergeRequest, head_sha: &str) -> Result<Option<Vec<FileDiff>>> {
        let fresh = mr.diff_refs.as_ref().and_then(|r| r.head_sha.as_deref()) == Some(head_sha);
        if !fresh {
            return Ok(None);
        }
        let diffs = self
            .gitlab
            .merge_request_diffs(&self.project(), mr.iid)
            .await;
        Ok(Some(diffs.context("reading the MR's diffs")?))
    }

    /// The head's Terraform files: the base's with the MR's diffs applied. Falls back to the
    /// head's own tree when the diff is stale, collapsed, or does not apply.
    async fn head_files(
        &self,
        mr: &MergeRequest,
        diffs: Option<&[FileDiff]>,
        base_files: &[SourceFile],
        head_sha: &str,
    ) -> Result<Vec<SourceFile>> {
        if let Some(diffs) = diffs {
            if let Some(files) = apply_diffs(base_files, diffs) {
                return Ok(files);
            }
            tracing::info!(
                mr = mr.iid,
                "a diff is collapsed or does not apply: reading the head's tree"
            );
        }
        let tree = self.tree(head_sha).await?;
        self.read_files(&tree, decl::is_terraform_file).await
    }

    /// Reviews one MR now.
    pub async fn review(&self, iid: u64) -> Result<()> {
        let project = self.project();
        let ctx = &self.ctx;
        let mr = self
            .gitlab
            .merge_request(&project, iid)
            .await
            .context("reading the merge request")?;
        if mr.state != "opened" {
            tracing::info!(mr = iid, state = mr.state, "not open: nothing to review");
            return Ok(());
        }
        let head = mr
            .sha
            .clone()
            .ok_or_else(|| anyhow!("the MR has no head commit yet"))?;
        let refs = mr.diff_refs.clone().unwrap_or_default();
        let base_sha = refs
            .base_sha
            .clone()
            .ok_or_else(|| anyhow!("GitLab has not prepared the MR's diff yet"))?;
        let policy_sha = refs.start_sha.clone().unwrap_or_else(|| base_sha.clone());

        // Three independent calls at once: a new head gets `pending` (no merge while orgvend
        // looks); the diffs and the approvals are read meanwhile.
        let pending = async {
            if ctx.store.last_status(&project, &head).await?.is_none() {
                let why = "orgvend is reviewing this change";
                self.status(&mr, &head, StatusState::Pending, why, None)
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        };
        let approvals = async {
            self.gitlab
                .approvals(&project, iid)
                .await
                .context("reading approvals")
        };
        let ((), diffs, approvers) = tokio::try_join!(pending, self.diffs(&mr, &head), approvals)?;

        let policy_tree = self.tree(&policy_sha).await?;
        let policy_files = self.read_files(&policy_tree, in_policy_dir).await?;
        let policy = match Policy::load(&policy_files, POLICY_DIR) {
            Ok(p) => p,
            Err(e) => {
                let body =
                    broken_policy_note(&e.to_string(), &mr.target_branch, self.footer(&head));
                let note_id = self.upsert_note(&mr, &body).await?;
                let url = format!("{}#note_{note_id}", mr.web_url);
                self.status(
                    &mr,
                    &head,
                    StatusState::Failed,
                    "the target branch's policy is broken",
                    Some(url),
                )
                .await?;
                return Ok(());
            }
        };
        let base_tree = if policy_sha == base_sha {
            policy_tree.clone()
        } else {
            self.tree(&base_sha).await?
        };
        let base_files = self.read_files(&base_tree, decl::is_terraform_file).await?;
        let head_files = self
            .head_files(&mr, diffs.as_deref(), &base_files, &head)
            .await?;
        let base = decl::read(&base_files, &policy.sources);
        let head_decls = decl::read(&head_files, &policy.sources);

        // Approvals come from the API, bound to the head they were first seen on.
        let approvers = self
            .approvers(&project, &mr, &policy, &approvers, &head)
            .await?;
        let (counted, ignored) = decide_approvals(&mr, &policy, &approvers, &head);
        let facts = mr_facts(&project, &mr, &counted);
        let report = report::assess(AssessInput {
            base: Some(&base),
            head: &head_decls,
            policy: &policy,
            mr: Some(&facts),
            approvals: Some((counted.clone(), ignored.clone())),
            head_label: Some(short(&head).to_string()),
        });

        let footer = self.footer(&head);
        let note = render::markdown::render_within(
            &report,
            render::markdown::NOTE_LIMIT - footer.len() - 2,
        );
        let note_id = self.upsert_note(&mr, &format!("{note}\n{footer}")).await?;
        let url = format!("{}#note_{note_id}", mr.web_url);
        let (state, description) = status_of(&report);
        self.status(&mr, &head, state, &description, Some(url))
            .await?;

        let record = serde_json::json!({
            "author": mr.author.username,
            "title": mr.title,
            "base_sha": base_sha,
            "policy_sha": policy_sha,
            "head_sha": head,
            "approvals_counted": counted,
            "approvals_ignored": ignored,
            "summary": report.summary,
            "violations": report.violations.iter().map(|v| &v.rule).collect::<Vec<_>>(),
            "required": report.approvals.required(),
        });
        ctx.store
            .record_review(ReviewRecord {
                project: project.clone(),
                iid,
                head_sha: head.clone(),
                verdict: verdict_name(report.verdict).into(),
                reviewed_at_ms: ctx.clock.now_ms(),
                facts: record.to_string(),
            })
            .await?;
        tracing::info!(
            mr = iid,
            head = short(&head),
            verdict = verdict_name(report.verdict),
            approvals = counted.len(),
            "reviewed"
        );
        Ok(())
    }

    pub(crate) async fn approvers(
        &self,
        project: &str,
        mr: &MergeRequest,
        policy: &Policy,
        users: &[User],
        head: &str,
    ) -> Result<Vec<Approver>> {
        let pairs: Vec<(u64, String)> = users.iter().map(|u| (u.id, u.username.clone())).collect();
        let seen = self
            .ctx
            .store
            .bind_approvals(project, mr.iid, &pairs, head, self.ctx.clock.now_ms())
            .await?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            // The author never counts; no need to ask about their membership.
            let membership = if u.id == mr.author.id {
                None
            } else {
                self.gitlab
                    .group_member(&policy.approval_group, u.id)
                    .await
                    .with_context(|| format!("checking {}'s membership", u.username))?
            };
            let first_seen_sha = seen
                .iter()
                .find(|(id, _)| *id == u.id)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| head.to_string());
            out.push(Approver {
                user: u.clone(),
                membership,
                first_seen_sha,
            });
        }
        Ok(out)
    }

    fn footer(&self, head: &str) -> String {
        format!(
            "<sub>orgvend · reviewed {} at {} · comment <code>/orgvend plan</code> to review again</sub>",
            render::code(short(head)),
            crate::clock::format_utc(self.ctx.clock.now_ms())
        )
    }

    /// Edits the MR's bot note, or creates it. The note is found by the id kept in the store
    /// or, if the store lost it, by its hidden marker among the bot's notes.
    pub(crate) async fn upsert_note(&self, mr: &MergeRequest, body: &str) -> Result<u64> {
        let (project, iid) = (self.project(), mr.iid);
        let ctx = &self.ctx;
        let mut id = ctx.store.note_id(&project, iid).await?;
        // An MR without comments has no orgvend note to find.
        if id.is_none() && mr.user_notes_count != Some(0) {
            let bot = &ctx.config.gitlab.bot_username;
            let notes = self
                .gitlab
                .notes(&project, iid)
                .await
                .context("looking for orgvend's note")?;
            id = notes
                .iter()
                .find(|n| {
                    !n.system
                        && n.author.username == *bot
                        && n.body.starts_with(render::NOTE_MARKER)
                })
                .map(|n| n.id);
        }
        if let Some(id) = id {
            if self
                .gitlab
                .update_note(&project, iid, id, body)
                .await
                .context("editing orgvend's note")?
            {
                ctx.store.set_note_id(&project, iid, id).await?;
                return Ok(id);
            }
            tracing::info!(
                mr = iid,
                note = id,
                "orgvend's note was deleted: writing a new one"
            );
        }
        let note = self
            .gitlab
            .create_note(&project, iid, body)
            .await
            .context("writing orgvend's note")?;
        ctx.store.set_note_id(&project, iid, note.id).await?;
        Ok(note.id)
    }

    /// Sets the `orgvend` status on a commit, unless it already says exactly that.
    async fn status(
        &self,
        mr: &MergeRequest,
        sha: &str,
        state: StatusState,
        description: &str,
        url: Option<String>,
    ) -> Result<()> {
        let project = self.project();
        let description: String = description.chars().take(255).collect();
        if self.ctx.store.last_status(&project, sha).await?
            == Some((state.as_str().to_string(), description.clone()))
        {
            return Ok(());
        }
        let status = CommitStatus {
            state,
            name: STATUS_NAME.into(),
            description: description.clone(),
            target_url: url,
            git_ref: Some(mr.source_branch.clone()).filter(|b| !b.is_empty()),
        };
        self.gitlab.set_status(&project, sha, &status).await?;
        self.ctx
            .store
            .set_last_status(&project, sha, state.as_str(), &description)
            .await
    }

    /// Open MRs whose head orgvend has not reviewed get a review, and so do those waiting for
    /// approvals (an approval delivery may have been lost: GitLab does not retry). Queued as
    /// deliveries, so they keep their MR's order. Returns how many were queued.
    /// Reviews and applies no delivery asked for: see [`Bot::reconcile_reviews`] and
    /// [`Bot::reconcile_merges`]. Returns how many deliveries were queued.
    pub async fn reconcile(&self) -> Result<usize> {
        let queued = self.reconcile_reviews().await? + self.reconcile_merges().await?;
        if queued > 0 {
            self.ctx.wake.notify_one();
        }
        Ok(queued)
    }

    pub async fn reconcile_reviews(&self) -> Result<usize> {
        let project = self.project();
        let ctx = &self.ctx;
        let now = ctx.clock.now_ms();
        let interval_ms = (ctx.config.gitlab.reconcile_interval_seconds.max(1) * 1000) as i64;
        let mut queued = 0;
        for mr in self
            .gitlab
            .open_merge_requests(&project)
            .await
            .context("listing open merge requests")?
        {
            let Some(sha) = mr.sha else { continue };
            match ctx.store.review(&project, mr.iid, &sha).await? {
                None => {}
                Some(r) if r.verdict == verdict_name(Verdict::AwaitingApproval) => {}
                Some(_) => continue,
            }
            // Once per period and head: a review queued this period is not queued again.
            let key = format!("reconcile:{}:{sha}:{}", mr.iid, now / interval_ms);
            let body = serde_json::json!({
                "object_kind": "merge_request",
                "object_attributes": {"iid": mr.iid, "action": "reconcile", "last_commit": {"id": sha}},
            });
            let inserted = ctx
                .store
                .insert(NewDelivery {
                    dedup_key: key,
                    received_at_ms: now,
                    event_name: "Merge Request Hook".into(),
                    kind: "merge_request".into(),
                    action: "reconcile".into(),
                    ordering_key: Some(crate::event::mr_key(mr.iid)),
                    ignored: None,
                    headers: "{}".into(),
                    body: body.to_string().into(),
                })
                .await?;
            if matches!(inserted, crate::store::Inserted::New(_)) {
                queued += 1;
            }
        }
        if queued > 0 {
            ctx.wake.notify_one();
            tracing::info!(queued, "reconciliation queued reviews");
        }
        Ok(queued)
    }
}

impl<G: GitLab, A: Aws> Handler for Bot<G, A> {
    async fn handle(&self, job: Job) -> Result<()> {
        match &job.event {
            Event::MergeRequest(e) => match e.action {
                MrAction::Merged => self.apply(e.iid).await,
                MrAction::Closed => {
                    tracing::info!(mr = e.iid, "closed: nothing to review");
                    Ok(())
                }
                _ => self.review(e.iid).await,
            },
            Event::Note(n) => {
                let bot = &self.ctx.config.gitlab.bot_username;
                if n.system
                    || n.edited
                    || n.author.as_ref().and_then(|a| a.username.as_deref()) == Some(bot.as_str())
                {
                    return Ok(());
                }
                match command::parse(&n.body) {
                    Some(Command::Plan) => self.review(n.mr_iid).await,
                    Some(Command::Retry) => {
                        let who = n.author.as_ref().and_then(|a| a.id).unwrap_or(0);
                        self.retry(n.mr_iid, who).await
                    }
                    Some(other) => {
                        tracing::info!(mr = n.mr_iid, command = ?other, "command not handled here");
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            Event::Ignored { .. } => Ok(()),
        }
    }

    async fn reconcile(&self) -> Result<usize> {
        Bot::reconcile(self).await
    }
}

/// Which of an MR's approvals count under `policy`, as of `head_sha`, and why the others do
/// not. The review and the apply gate decide the same way.
pub(crate) fn decide_approvals(
    mr: &MergeRequest,
    policy: &Policy,
    approvers: &[Approver],
    head_sha: &str,
) -> (Vec<String>, Vec<IgnoredApproval>) {
    approval::decide(&approval::Facts {
        approvers,
        author_id: mr.author.id,
        head_sha,
        reset_on_push: policy.reset_on_push,
        group: &policy.approval_group,
    })
}

/// What policy (and Rego) know of an MR, with the usernames whose approvals count.
pub(crate) fn mr_facts(project: &str, mr: &MergeRequest, approved_by: &[String]) -> MrFacts {
    MrFacts {
        project: project.to_string(),
        iid: mr.iid,
        author: mr.author.username.clone(),
        title: mr.title.clone(),
        source_branch: mr.source_branch.clone(),
        target_branch: mr.target_branch.clone(),
        labels: mr.labels.clone(),
        approved_by: approved_by.to_vec(),
    }
}

pub(crate) fn in_policy_dir(path: &str) -> bool {
    path.strip_prefix(POLICY_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|name| {
            !name.contains('/') && (name.ends_with(".toml") || name.ends_with(".rego"))
        })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}

pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Invalid => "invalid",
        Verdict::Blocked => "blocked",
        Verdict::AwaitingApproval => "awaiting_approval",
        Verdict::Passes => "passes",
        Verdict::Ready => "ready",
    }
}

/// The commit status for a review: success only when merging is safe.
pub fn status_of(report: &Report) -> (StatusState, String) {
    let line = render::plain(&render::headline(report).replace('`', ""));
    let state = if report.verdict.blocks() {
        StatusState::Failed
    } else {
        StatusState::Success
    };
    (state, line)
}

fn broken_policy_note(error: &str, target: &str, footer: String) -> String {
    format!(
        "{}\n### 🚫 The policy of {} cannot be read\n\n{}\n\nNothing can be checked until the policy on the target branch is fixed (in its own merge request).\n\n{footer}",
        render::NOTE_MARKER,
        render::code(target),
        render::code(error)
    )
}

/// The base's files with the MR's diffs applied; `None` when a Terraform file's diff is
/// collapsed or does not apply (the caller reads the head's tree instead).
pub fn apply_diffs(base: &[SourceFile], diffs: &[FileDiff]) -> Option<Vec<SourceFile>> {
    let mut files: HashMap<String, String> = base
        .iter()
        .map(|f| (f.path.clone(), f.text.clone()))
        .collect();
    for d in diffs {
        let touches = decl::is_terraform_file(&d.old_path) || decl::is_terraform_file(&d.new_path);
        if !touches {
            continue;
        }
        if d.too_large == Some(true) || d.collapsed == Some(true) {
            return None;
        }
        let old = if d.new_file {
            String::new()
        } else {
            files.remove(&d.old_path)?
        };
        if d.deleted_file {
            continue;
        }
        if d.diff.is_empty() && !(d.renamed_file || d.new_file) {
            return None; // a change GitLab did not show
        }
        let new = if d.diff.is_empty() {
            old
        } else {
            crate::patch::apply(&old, &d.diff).ok()?
        };
        if decl::is_terraform_file(&d.new_path) {
            files.insert(d.new_path.clone(), new);
        }
    }
    let mut out: Vec<SourceFile> = files
        .into_iter()
        .map(|(p, t)| SourceFile::new(p, t))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: &str, new: &str, a: &str, b: &str) -> FileDiff {
        FileDiff {
            old_path: old.into(),
            new_path: new.into(),
            diff: similar::TextDiff::from_lines(a, b)
                .unified_diff()
                .to_string(),
            new_file: a.is_empty(),
            deleted_file: b.is_empty() && !a.is_empty(),
            renamed_file: old != new,
            ..Default::default()
        }
    }

    #[test]
    fn head_is_base_plus_diffs() {
        let base = vec![
            SourceFile::new("a.tf", "x\ny\n"),
            SourceFile::new("b.tf", "keep\n"),
            SourceFile::new("gone.tf", "bye\n"),
        ];
        let diffs = vec![
            diff("a.tf", "a.tf", "x\ny\n", "x\nY\n"),
            diff("new.tf", "new.tf", "", "fresh\n"),
            diff("gone.tf", "gone.tf", "bye\n", ""),
            diff("README.md", "README.md", "", "docs\n"),
        ];
        let head = apply_diffs(&base, &diffs).unwrap();
        let got: Vec<(&str, &str)> = head
            .iter()
            .map(|f| (f.path.as_str(), f.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a.tf", "x\nY\n"),
                ("b.tf", "keep\n"),
                ("new.tf", "fresh\n")
            ]
        );
    }

    #[test]
    fn collapsed_or_mismatched_diffs_fall_back() {
        let base = vec![SourceFile::new("a.tf", "x\n")];
        let mut d = diff("a.tf", "a.tf", "x\n", "y\n");
        d.collapsed = Some(true);
        assert!(apply_diffs(&base, &[d]).is_none());
        let stale = diff("a.tf", "a.tf", "other\n", "y\n");
        assert!(apply_diffs(&base, &[stale]).is_none());
    }

    #[test]
    fn the_cache_drops_its_oldest_past_the_bound() {
        let mut b: Bounded<Arc<str>> = Bounded::new(10, |t| t.len());
        b.put("a", Arc::from("12345"));
        b.put("b", Arc::from("12345"));
        assert!(b.get("a").is_some());
        b.put("c", Arc::from("1"));
        assert!(b.get("a").is_none(), "oldest out");
        assert!(b.get("b").is_some() && b.get("c").is_some());
        assert_eq!(b.weight, 6);
    }

    #[test]
    fn policy_files_are_the_top_of_policies() {
        assert!(in_policy_dir("policies/orgvend.toml"));
        assert!(in_policy_dir("policies/x.rego"));
        assert!(!in_policy_dir("policies/sub/x.rego"));
        assert!(!in_policy_dir("other/policies/x.rego"));
    }
}
