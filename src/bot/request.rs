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
use crate::gitlab::{GitLab, Issue, MergeRequest, NewCommit, NewMergeRequest, Note};
use crate::store::RequestRecord;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// GitLab's system note when someone edits an issue's description.
const EDITED_NOTE: &str = "changed the description";
/// The branch of a request's MR.
pub const BRANCH_PREFIX: &str = "orgvend/request-";
/// The label of request MRs.
pub const LABEL: &str = "orgvend-request";

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Handles the request of issue `iid`; `asked`: someone commented `/orgvend request`.
    pub async fn request(&self, iid: u64, asked: bool) -> Result<()> {
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
            if asked {
                self.answer(&issue, &Answer::NoBlock).await?;
            }
            return Ok(());
        };
        if issue.state != "opened" {
            tracing::info!(
                issue = iid,
                state = issue.state,
                "a closed request: nothing to do"
            );
            return Ok(());
        }
        let record = self.ctx.store.request(&project, iid).await?;
        if let Some(mr_iid) = record.as_ref().and_then(|r| r.mr_iid) {
            let mr = self.gitlab.merge_request(&project, mr_iid).await?;
            if mr.state == "merged" {
                self.remember_request(&issue, Some(&mr)).await?;
                return self.answer(&issue, &Answer::Merged { mr_iid }).await;
            }
        }

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
                return self.answer(&issue, &Answer::Refused(why)).await;
            }
        };
        if !policy.requests.enabled {
            let why = "Requests by issue are turned off in the policy (`requests.enabled`): open a merge request, or run `orgvend new`.".to_string();
            return self.answer(&issue, &Answer::Refused(why)).await;
        }

        // Who asks: everyone whose words the request is, each with access to the project.
        let notes = self
            .gitlab
            .issue_notes(&project, iid)
            .await
            .context("reading the issue's notes")?;
        for (id, username) in requesters(&issue, &notes, self.bot_id().await?) {
            let member = self
                .gitlab
                .project_member(&project, id)
                .await
                .with_context(|| format!("checking {username}'s access"))?;
            let ok = member.as_ref().is_some_and(|m| {
                m.access_level >= policy.requests.min_access_level
                    && m.state.as_deref().is_none_or(|s| s == "active")
            });
            if !ok {
                let why = format!(
                    "`{}` wrote this request but has no {} access to this project: only its members may ask for accounts.",
                    request::shown(&username),
                    crate::core::approval::access_level_name(policy.requests.min_access_level)
                );
                return self.answer(&issue, &Answer::Refused(why)).await;
            }
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
            return self.answer(&issue, &Answer::Refused(why)).await;
        }
        let req = match form {
            Ok(r) => r,
            Err(problems) => return self.answer(&issue, &Answer::Problems(&problems)).await,
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
            Err(problems) => return self.answer(&issue, &Answer::Problems(&problems)).await,
        };
        let (mr, updated) = self.publish(&issue, &target, &sha, &req, &g).await?;
        self.remember_request(&issue, Some(&mr)).await?;
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

    /// The branch holds the generated change (one commit on the target, made again only when
    /// the content differs), and one open MR from it says so.
    async fn publish(
        &self,
        issue: &Issue,
        target: &str,
        base_sha: &str,
        req: &request::Request,
        g: &Generated,
    ) -> Result<(MergeRequest, bool)> {
        let project = self.project();
        let branch = format!("{BRANCH_PREFIX}{}", issue.iid);
        let have = self
            .gitlab
            .file(&project, &g.path, &branch)
            .await
            .context("reading the request's branch")?;
        let mut pushed = false;
        if have.as_deref() != Some(g.after.as_bytes()) {
            let digest: String = Sha256::digest(g.after.as_bytes())
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
                &digest[..12]
            );
            self.gitlab
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
            pushed = true;
        }
        let title = format!(
            "Request #{}: {} account {}",
            issue.iid, g.account_type, g.name
        );
        let description =
            mr_description(issue.iid, &issue.author.username, req.purpose.as_deref(), g);
        let open = |mrs: Vec<MergeRequest>| mrs.into_iter().find(|m| m.state == "opened");
        let existing = open(self.gitlab.merge_requests_from(&project, &branch).await?);
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
                    // 409: one is open from the branch already (made since we looked)
                    None => (
                        open(self.gitlab.merge_requests_from(&project, &branch).await?).context(
                            "GitLab says an MR is open from the request's branch, but lists none",
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
            pushed,
            updated,
            "request published"
        );
        Ok((mr, updated))
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
            if r.issue_iid == issue.iid || r.mr_state.as_deref() != Some("opened") {
                continue;
            }
            let Some(mr_iid) = r.mr_iid else { continue };
            let mr = self.gitlab.merge_request(&project, mr_iid).await?;
            if mr.state == "opened" {
                open.push(r.issue_iid);
            } else {
                self.ctx
                    .store
                    .put_request(RequestRecord {
                        mr_state: Some(mr.state.clone()),
                        ..r
                    })
                    .await?;
            }
        }
        Ok(open)
    }

    async fn remember_request(&self, issue: &Issue, mr: Option<&MergeRequest>) -> Result<()> {
        self.ctx
            .store
            .put_request(RequestRecord {
                project: self.project(),
                issue_iid: issue.iid,
                requester_id: issue.author.id,
                requester: issue.author.username.clone(),
                branch: format!("{BRANCH_PREFIX}{}", issue.iid),
                mr_iid: mr.map(|m| m.iid),
                mr_state: mr.map(|m| m.state.clone()),
                note_id: None,
                updated_at_ms: self.ctx.clock.now_ms(),
            })
            .await
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
        let record = stored.unwrap_or_else(|| RequestRecord {
            project: project.clone(),
            issue_iid: issue.iid,
            requester_id: issue.author.id,
            requester: issue.author.username.clone(),
            branch: format!("{BRANCH_PREFIX}{}", issue.iid),
            mr_iid: None,
            mr_state: None,
            note_id: None,
            updated_at_ms: 0,
        });
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
        let mut ids: Vec<u64> = record.iter().map(|r| r.requester_id).collect();
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
fn requesters(issue: &Issue, notes: &[Note], bot: u64) -> Vec<(u64, String)> {
    let mut out = vec![(issue.author.id, issue.author.username.clone())];
    for n in notes {
        if n.system
            && n.body.trim() == EDITED_NOTE
            && n.author.id != bot
            && !out.iter().any(|(id, _)| *id == n.author.id)
        {
            out.push((n.author.id, n.author.username.clone()));
        }
    }
    out
}
