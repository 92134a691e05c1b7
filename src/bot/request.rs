//! Requests by GitLab issue: on an issue opened or edited (or `/orgvend request` in its
//! comments), read the issue's request block, judge it by the rules in force on the target
//! branch, and answer in one note on the issue, edited in place: what is wrong, or the MR
//! orgvend opened. The MR is one commit on `orgvend/request-<issue>` made by the same
//! generator as `orgvend new`; an edit of the issue replaces that commit and updates the same
//! MR. Who asked (the issue's author, and whoever edited its description) never counts as an
//! approver of it: `requesters` is what the review and the gate exclude.

use super::policy::Rules;
use super::{Bot, short};
use crate::aws::Aws;
use crate::core::decl;
use crate::core::render::request::{Answer, REQUEST_MARKER, mr_description, request_note};
use crate::core::request::{self, Generated, form};
use crate::gitlab::client::is_not_found;
use crate::gitlab::{GitLab, Issue, MergeRequest, NewCommit, NewMergeRequest, Note};
use crate::store::RequestRecord;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// GitLab's system notes when someone edits an issue's description: a plain edit, or one
/// that also ticks a task (then GitLab writes only the task's note).
const EDITED_NOTES: [&str; 3] = [
    "changed the description",
    "marked the task",
    "marked the checklist item",
];
/// The branch of a request's MR.
pub const BRANCH_PREFIX: &str = "orgvend/request-";
/// The label of request MRs.
pub const LABEL: &str = "orgvend-request";

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Handles the request of issue `iid`; `asked`: someone commented `/orgvend request`;
    /// `editor`: who edited the issue (id, username), when the event was an edit.
    pub async fn request(
        &self,
        iid: u64,
        asked: bool,
        editor: Option<(u64, String)>,
    ) -> Result<()> {
        let project = self.project();
        let Some(issue) = self
            .gitlab
            .issue(&project, iid)
            .await
            .context("reading the issue")?
        else {
            return Ok(());
        };
        let Some(form) = form::read(issue.description.as_deref().unwrap_or_default()) else {
            // a request withdrawn (its block removed) leaves nothing mergeable
            self.hold(&issue).await?;
            if asked {
                self.answer(&issue, &Answer::NoBlock).await?;
            }
            return Ok(());
        };
        if issue.state != "opened" {
            tracing::info!(
                issue = iid,
                state = issue.state,
                "a closed request: its MR is held"
            );
            return self.hold(&issue).await;
        }
        let record = self.ctx.store.request(&project, iid).await?;
        if let Some(mr_iid) = record.as_ref().and_then(|r| r.mr_iid)
            && self.mr_state(&project, mr_iid).await?.as_deref() == Some("merged")
        {
            return self.answer(&issue, &Answer::Merged { mr_iid }).await;
        }
        if issue.confidential {
            let why = "This issue is confidential, but the merge request and its branch would be seen by everyone with access to the project: ask in an issue that is not confidential.".to_string();
            return self.refuse(&issue, &Answer::Refused(why)).await;
        }

        // Whose words these are: the author's and every editor's. None of them approves it.
        let notes = self
            .gitlab
            .issue_notes(&project, iid)
            .await
            .context("reading the issue's notes")?;
        let bot = self.bot_id().await?;
        let mut people = requesters(&issue, &notes, bot);
        if let Some((id, name)) = editor
            && id != bot
            && !people.iter().any(|(p, _)| *p == id)
        {
            people.push((id, name));
        }
        let ids: Vec<u64> = people.iter().map(|(id, _)| *id).collect();
        self.remember_request(&issue, None, &ids, None).await?;

        // The rules in force on the target branch, and nothing else.
        let target = self.target_branch().await?;
        let sha = self
            .gitlab
            .commit(&project, &target)
            .await
            .with_context(|| format!("reading the head of {target}"))?
            .id;
        let tree = self.tree(&sha).await?;
        let policy = match self.rules(&tree, &sha, &tree).await? {
            Rules::InForce(p) => p,
            _ => {
                let why = format!(
                    "The policy on `{target}` (at `{}`) is not one orgvend can judge by now; a request waits until it is repaired. Comment `/orgvend request` then.",
                    short(&sha)
                );
                return self.refuse(&issue, &Answer::Refused(why)).await;
            }
        };
        if !policy.requests.enabled {
            let why = "Requests by issue are turned off in the policy (`requests.enabled`): open a merge request, or run `orgvend new`.".to_string();
            return self.refuse(&issue, &Answer::Refused(why)).await;
        }

        // The author needs access to the project.
        let member = self
            .gitlab
            .project_member(&project, issue.author.id)
            .await
            .with_context(|| format!("checking {}'s access", issue.author.username))?;
        let ok = member.as_ref().is_some_and(|m| {
            m.access_level >= policy.requests.min_access_level
                && m.state.as_deref().is_none_or(|s| s == "active")
        });
        if !ok {
            let why = format!(
                "`{}` wrote this request but has no {} access to this project: only its members may ask for accounts.",
                request::shown(&issue.author.username),
                crate::core::approval::access_level_name(policy.requests.min_access_level)
            );
            return self.refuse(&issue, &Answer::Refused(why)).await;
        }
        let open = self.open_requests(&issue).await?;
        if open.len() >= policy.requests.max_open_per_user as usize {
            let why = format!(
                "`{}` has {} open requests ({}); the policy allows {} at once (`requests.max_open_per_user`). This one is made when one of them is merged or closed: comment `/orgvend request` then.",
                request::shown(&issue.author.username),
                open.len(),
                open.iter()
                    .map(|i| format!("#{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                policy.requests.max_open_per_user
            );
            return self.refuse(&issue, &Answer::Refused(why)).await;
        }
        let req = match form {
            Ok(r) => r,
            Err(problems) => return self.refuse(&issue, &Answer::Problems(&problems)).await,
        };

        // Written by the generator, judged by the target branch's rules.
        let files = self.read_files(&tree, decl::is_terraform_file).await?;
        let generated = {
            let req = req.clone();
            super::off_runtime(move || {
                let decls = decl::read(&files, &policy.sources);
                request::generate(&policy, &files, &decls, &req)
            })
            .await
        };
        let g = match generated {
            Ok(g) => g,
            Err(problems) => return self.refuse(&issue, &Answer::Problems(&problems)).await,
        };
        // a branch of that name that someone else opened an MR from is theirs: not touched
        let branch = format!("{BRANCH_PREFIX}{iid}");
        let bot_mr = self.request_mr(record.as_ref(), &branch, &target).await?;
        if bot_mr.is_none()
            && let Some(other) = self
                .gitlab
                .merge_requests_from(&project, &branch)
                .await?
                .into_iter()
                .find(|m| m.state == "opened" && m.source_project_id == m.target_project_id)
        {
            let why = format!(
                "A merge request orgvend did not open (!{}) is open from `{branch}`, the branch this request's change goes to: orgvend does not touch it. Close it, then comment `/orgvend request`.",
                other.iid
            );
            return self.answer(&issue, &Answer::Refused(why)).await;
        }
        let editors: Vec<String> = people
            .iter()
            .filter(|(id, _)| *id != issue.author.id)
            .map(|(_, name)| name.clone())
            .collect();
        let (mr, updated, commit) = self
            .publish(&issue, record.as_ref(), &target, &sha, (&req, &editors), &g)
            .await?;
        self.remember_request(&issue, Some(&mr), &ids, commit)
            .await?;
        self.answer(
            &issue,
            &Answer::Opened {
                mr_iid: mr.iid,
                generated: &g,
                updated,
            },
        )
        .await
    }

    /// The branch holds the generated change and nothing else: orgvend's own commit (kept
    /// when the branch's head is still that commit and holds the same content, made again on
    /// `base_sha` otherwise), and one open MR of orgvend's from it says so. Returns the MR,
    /// whether it existed, and the commit made (if one was).
    async fn publish(
        &self,
        issue: &Issue,
        record: Option<&RequestRecord>,
        target: &str,
        base_sha: &str,
        (req, editors): (&request::Request, &[String]),
        g: &Generated,
    ) -> Result<(MergeRequest, bool, Option<String>)> {
        let project = self.project();
        let branch = format!("{BRANCH_PREFIX}{}", issue.iid);
        let ours = record.and_then(|r| r.commit_sha.clone());
        let head = match &ours {
            Some(_) => self
                .gitlab
                .commit(&project, &branch)
                .await
                .ok()
                .map(|c| c.id),
            None => None,
        };
        let same = head.is_some()
            && head == ours
            && self
                .gitlab
                .file(&project, &g.path, &branch)
                .await
                .context("reading the request's branch")?
                .as_deref()
                == Some(g.after.as_bytes());
        let mut made = None;
        if !same {
            let digest: String = Sha256::digest(format!("{base_sha}\n{}", g.after).as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let message = format!(
                "Request #{}: {} account {}\n\nWritten by orgvend for @{} from issue #{} (content {}).",
                issue.iid,
                g.account_type,
                g.name,
                issue.author.username,
                issue.iid,
                &digest[..16]
            );
            let sha = self
                .gitlab
                .commit_to_branch(
                    &project,
                    &NewCommit {
                        branch: branch.clone(),
                        start_sha: base_sha.to_string(),
                        force: true,
                        message,
                        files: vec![(g.path.clone(), g.after.clone(), !g.new_file)],
                    },
                )
                .await
                .context("committing the request")?;
            made = Some(sha);
        }
        let title = format!(
            "Request #{}: {} account {}",
            issue.iid, g.account_type, g.name
        );
        let description = mr_description(
            issue.iid,
            &issue.author.username,
            editors,
            req.purpose.as_deref(),
            g,
        );
        let existing = self.request_mr(record, &branch, target).await?;
        let (mr, updated) = match existing {
            Some(mr) => (mr, true),
            None => {
                let new = NewMergeRequest {
                    source_branch: branch.clone(),
                    target_branch: target.to_string(),
                    title: title.clone(),
                    description: description.clone(),
                    labels: vec![LABEL.to_string()],
                    remove_source_branch: true,
                };
                match self.gitlab.create_merge_request(&project, &new).await? {
                    Some(mr) => (mr, false),
                    // 409: an MR is open from the branch already; orgvend's, or no one's
                    None => (
                        self.request_mr(None, &branch, target).await?.context(
                            "an MR that is not orgvend's is open from the request's branch: close it, then comment `/orgvend request`",
                        )?,
                        true,
                    ),
                }
            }
        };
        if updated && (mr.title != title || mr.description.as_deref() != Some(description.as_str()))
        {
            self.gitlab
                .update_merge_request(&project, mr.iid, &title, &description)
                .await
                .context("updating the request's MR")?;
        }
        tracing::info!(
            issue = issue.iid,
            mr = mr.iid,
            pushed = made.is_some(),
            updated,
            "request published"
        );
        Ok((mr, updated, made))
    }

    /// The open MR of this request: the one recorded, else one orgvend opened from the
    /// branch into the target branch of this project. Never an MR someone else opened from
    /// a branch of that name (a fork's, a person's).
    async fn request_mr(
        &self,
        record: Option<&RequestRecord>,
        branch: &str,
        target: &str,
    ) -> Result<Option<MergeRequest>> {
        let project = self.project();
        let bot = self.bot_id().await?;
        let ours = |m: &MergeRequest| {
            m.state == "opened"
                && m.author.id == bot
                && m.source_branch == branch
                && m.target_branch == target
                && m.source_project_id == m.target_project_id
        };
        if let Some(iid) = record.and_then(|r| r.mr_iid) {
            let mr = self.gitlab.merge_request(&project, iid).await?;
            if ours(&mr) {
                return Ok(Some(mr));
            }
        }
        Ok(self
            .gitlab
            .merge_requests_from(&project, branch)
            .await?
            .into_iter()
            .find(|m| ours(m)))
    }

    /// Answers with a refusal or the problems, and holds the request's open MR as a draft
    /// (GitLab merges no draft): its content is no longer what was asked for.
    async fn refuse(&self, issue: &Issue, answer: &Answer<'_>) -> Result<()> {
        self.hold(issue).await?;
        self.answer(issue, answer).await
    }

    /// Holds the request's open MR (if it has one) as a draft.
    async fn hold(&self, issue: &Issue) -> Result<()> {
        let record = self.ctx.store.request(&self.project(), issue.iid).await?;
        if record.is_none() {
            return Ok(()); // never a request: no MR of orgvend's to hold
        }
        let target = self.target_branch().await?;
        let branch = format!("{BRANCH_PREFIX}{}", issue.iid);
        if let Some(mr) = self.request_mr(record.as_ref(), &branch, &target).await?
            && !mr.title.starts_with("Draft:")
        {
            let description = mr.description.clone().unwrap_or_default();
            self.gitlab
                .update_merge_request(
                    &self.project(),
                    mr.iid,
                    &format!("Draft: {}", mr.title),
                    &description,
                )
                .await
                .context("holding the request's MR as a draft")?;
        }
        Ok(())
    }

    /// An MR's state; `None` when it is gone (deleted, or no longer visible to orgvend).
    async fn mr_state(&self, project: &str, iid: u64) -> Result<Option<String>> {
        match self.gitlab.merge_request(project, iid).await {
            Ok(mr) => Ok(Some(mr.state)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The requester's other requests whose MRs are open (their state read again).
    async fn open_requests(&self, issue: &Issue) -> Result<Vec<u64>> {
        let project = self.project();
        let mut open = Vec::new();
        for r in self
            .ctx
            .store
            .requests_by(&project, issue.author.id)
            .await?
        {
            // merged is final; closed MRs may be reopened: read again
            if r.issue_iid == issue.iid || r.mr_state.as_deref() == Some("merged") {
                continue;
            }
            let Some(mr_iid) = r.mr_iid else { continue };
            // read, never written back from here: that record is its own issue's to write
            if self.mr_state(&project, mr_iid).await?.as_deref() == Some("opened") {
                open.push(r.issue_iid);
            }
        }
        Ok(open)
    }

    async fn remember_request(
        &self,
        issue: &Issue,
        mr: Option<&MergeRequest>,
        contributors: &[u64],
        commit_sha: Option<String>,
    ) -> Result<()> {
        self.ctx
            .store
            .put_request(RequestRecord {
                mr_iid: mr.map(|m| m.iid),
                mr_state: mr.map(|m| m.state.clone()),
                commit_sha,
                contributors: contributors.to_vec(),
                updated_at_ms: self.ctx.clock.now_ms(),
                ..self.new_record(issue)
            })
            .await
    }

    /// The record of `issue`'s request as it starts: its author the requester.
    fn new_record(&self, issue: &Issue) -> RequestRecord {
        RequestRecord {
            project: self.project(),
            issue_iid: issue.iid,
            requester_id: issue.author.id,
            requester: issue.author.username.clone(),
            branch: format!("{BRANCH_PREFIX}{}", issue.iid),
            mr_iid: None,
            mr_state: None,
            commit_sha: None,
            contributors: vec![issue.author.id],
            note_id: None,
            updated_at_ms: 0,
        }
    }

    /// Edits orgvend's note on the issue, or writes it.
    async fn answer(&self, issue: &Issue, answer: &Answer<'_>) -> Result<()> {
        let project = self.project();
        let footer = format!(
            "<sub>orgvend · read at {} · comment <code>/orgvend request</code> to read it again</sub>",
            crate::clock::format_utc(self.ctx.clock.now_ms())
        );
        let body = request_note(answer, &issue.author.username, &footer);
        let stored = self.ctx.store.request(&project, issue.iid).await?;
        let mut id = stored.as_ref().and_then(|r| r.note_id);
        if id.is_none() {
            let bot = self.bot_id().await?;
            id = self
                .gitlab
                .issue_notes(&project, issue.iid)
                .await?
                .iter()
                .find(|n| !n.system && n.author.id == bot && n.body.starts_with(REQUEST_MARKER))
                .map(|n| n.id);
        }
        let note_id = match id {
            Some(id)
                if self
                    .gitlab
                    .update_issue_note(&project, issue.iid, id, &body)
                    .await
                    .context("editing orgvend's note on the issue")? =>
            {
                id
            }
            _ => {
                self.gitlab
                    .create_issue_note(&project, issue.iid, &body)
                    .await
                    .context("writing orgvend's note on the issue")?
                    .id
            }
        };
        let record = stored.unwrap_or_else(|| self.new_record(issue));
        self.ctx
            .store
            .put_request(RequestRecord {
                note_id: Some(note_id),
                updated_at_ms: self.ctx.clock.now_ms(),
                ..record
            })
            .await
    }

    /// Who asked for what MR `mr` vends, if it is a request's: the issue's author and
    /// whoever edited its description (from GitLab's records), and the requester orgvend
    /// recorded. Their approvals never count.
    pub(crate) async fn requesters_of(&self, mr: &MergeRequest) -> Result<Vec<u64>> {
        let project = self.project();
        let record = self.ctx.store.request_for_mr(&project, mr.iid).await?;
        let from_branch = mr
            .source_branch
            .strip_prefix(BRANCH_PREFIX)
            .and_then(|n| n.parse::<u64>().ok());
        let by_branch = match from_branch {
            Some(i) => self.ctx.store.request(&project, i).await?,
            None => None,
        };
        let mut ids: Vec<u64> = record
            .iter()
            .chain(by_branch.iter())
            .flat_map(|r| r.contributors.iter().copied().chain([r.requester_id]))
            .collect();
        let issues: Vec<u64> = record
            .iter()
            .map(|r| r.issue_iid)
            .chain(from_branch)
            .collect();
        let bot = self.bot_id().await?;
        for iid in issues {
            if let Some(issue) = self.gitlab.issue(&project, iid).await? {
                let notes = self.gitlab.issue_notes(&project, iid).await?;
                ids.extend(
                    requesters(&issue, &notes, bot)
                        .into_iter()
                        .map(|(id, _)| id),
                );
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// The issue's author and everyone GitLab says changed its description (not orgvend).
/// Where GitLab's record could miss one, the edit's own delivery names its author too.
fn requesters(issue: &Issue, notes: &[Note], bot: u64) -> Vec<(u64, String)> {
    let mut out = vec![(issue.author.id, issue.author.username.clone())];
    for n in notes {
        if n.system
            && EDITED_NOTES
                .iter()
                .any(|e| n.body.trim_start().starts_with(e))
            && n.author.id != bot
            && !out.iter().any(|(id, _)| *id == n.author.id)
        {
            out.push((n.author.id, n.author.username.clone()));
        }
    }
    out
}
