//! What the bot knows of an MR for the core, read from GitLab's API (never from a webhook
//! payload): its approvers with their membership of the approval group and the time GitLab
//! recorded each approval, who pushed or wrote its commits, when its current head was pushed,
//! which approvals count, and the facts policy and Rego rules see.

use super::Bot;
use crate::aws::Aws;
use crate::clock::parse_iso;
use crate::core::approval::{self, Approver, IgnoredApproval, Membership, Person};
use crate::core::policy::Policy;
use crate::core::rules::MrFacts;
use crate::gitlab::{Approval, Commit, GitLab, MergeRequest, MrVersion, Note};
use anyhow::{Context, Result};
use std::collections::BTreeSet;

/// GitLab's system note when someone approves an MR.
const APPROVED_NOTE: &str = "approved this merge request";

/// An MR's approvals as GitLab records them, and who worked on it.
#[derive(Debug, Clone)]
pub(crate) struct ApprovalFacts {
    pub approvers: Vec<Approver>,
    pub committers: Vec<u64>,
    pub requesters: Vec<u64>,
    pub head_pushed_at_ms: Option<i64>,
    pub bot_id: u64,
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Reads what deciding the approvals of `mr` at `head` needs: the MR's notes (approval
    /// times, pushers), its versions (when `head` was pushed), its commits (their authors),
    /// and each approver's membership of the policy's group.
    pub(crate) async fn approval_facts(
        &self,
        project: &str,
        mr: &MergeRequest,
        policy: &Policy,
        approvals: &[Approval],
        head: &str,
    ) -> Result<ApprovalFacts> {
        let gl = &self.gitlab;
        let (notes, versions, commits, bot_id, requesters) = tokio::try_join!(
            async {
                gl.notes(project, mr.iid)
                    .await
                    .context("reading the MR's notes")
            },
            async {
                gl.merge_request_versions(project, mr.iid)
                    .await
                    .context("reading the MR's versions")
            },
            async {
                gl.merge_request_commits(project, mr.iid)
                    .await
                    .context("reading the MR's commits")
            },
            self.bot_id(),
            async {
                self.requesters_of(mr)
                    .await
                    .context("reading who asked for the account")
            },
        )?;
        let head_pushed_at_ms = pushed_at(&versions, head);
        let mut committers = pushers(&notes);
        let mut approvers = Vec::with_capacity(approvals.len());
        for approval in approvals {
            let u = &approval.user;
            let excluded = u.id == bot_id
                || u.id == mr.author.id
                || committers.contains(&u.id)
                || requesters.contains(&u.id);
            let wrote = !excluded && self.wrote_commits(u.id, &commits).await?;
            if wrote {
                committers.insert(u.id);
            }
            // An approval that never counts needs no membership check.
            let membership = if excluded || wrote {
                None
            } else {
                self.membership(policy, u.id)
                    .await
                    .with_context(|| format!("checking {}'s membership", u.username))?
            };
            approvers.push(Approver {
                user: Person {
                    id: u.id,
                    username: u.username.clone(),
                },
                membership,
                // the approvals API's own time where GitLab gives it, else its system note
                approved_at_ms: approval
                    .approved_at
                    .as_deref()
                    .and_then(parse_iso)
                    .or_else(|| approved_at(&notes, u.id)),
            });
        }
        Ok(ApprovalFacts {
            approvers,
            committers: committers.into_iter().collect(),
            requesters,
            head_pushed_at_ms,
            bot_id,
        })
    }

    /// A user's membership of the policy's approval group, as the core's approval rules see
    /// it: inherited (GitLab's `members/all`) or direct only, as the policy says; `None` when
    /// not a member.
    pub(crate) async fn membership(
        &self,
        policy: &Policy,
        user_id: u64,
    ) -> Result<Option<Membership>> {
        let group = &policy.approval_group;
        let member = if policy.inherited_members {
            self.gitlab.group_member(group, user_id).await?
        } else {
            self.gitlab.group_member_direct(group, user_id).await?
        };
        Ok(member.map(|m| Membership {
            access_level: m.access_level,
            state: m.state,
        }))
    }

    /// Whether the commits name one of the user's addresses as their author or committer
    /// (as far as GitLab shows the user's addresses to orgvend).
    async fn wrote_commits(&self, user_id: u64, commits: &[Commit]) -> Result<bool> {
        let Some(p) = self.gitlab.profile(user_id).await? else {
            return Ok(false);
        };
        let mine: Vec<String> = [p.public_email, p.email]
            .into_iter()
            .flatten()
            .filter(|e| !e.is_empty())
            .map(|e| e.to_lowercase())
            .collect();
        Ok(commits.iter().any(|c| {
            [&c.author_email, &c.committer_email]
                .into_iter()
                .flatten()
                .any(|e| mine.contains(&e.to_lowercase()))
        }))
    }
}

/// When the current head was pushed: the newest version's time, if it is of `head`.
fn pushed_at(versions: &[MrVersion], head: &str) -> Option<i64> {
    let newest = versions
        .iter()
        .max_by_key(|v| (v.created_at.as_deref().and_then(parse_iso), v.id))?;
    (newest.head_commit_sha.as_deref() == Some(head))
        .then(|| newest.created_at.as_deref().and_then(parse_iso))
        .flatten()
}

/// Everyone GitLab says pushed commits to the MR ("added 1 commit", by the pusher).
fn pushers(notes: &[Note]) -> BTreeSet<u64> {
    notes
        .iter()
        .filter(|n| n.system && n.body.starts_with("added ") && n.body.contains("commit"))
        .map(|n| n.author.id)
        .collect()
}

/// When GitLab last recorded `user`'s approval (its system note).
fn approved_at(notes: &[Note], user: u64) -> Option<i64> {
    notes
        .iter()
        .filter(|n| n.system && n.author.id == user && n.body.trim() == APPROVED_NOTE)
        .filter_map(|n| n.created_at.as_deref().and_then(parse_iso))
        .max()
}

/// Which of an MR's approvals count under `policy`, and why the others do not. The review
/// and the apply gate decide the same way.
pub(crate) fn decide_approvals(
    mr: &MergeRequest,
    policy: &Policy,
    facts: &ApprovalFacts,
) -> (Vec<String>, Vec<IgnoredApproval>) {
    approval::decide(&approval::Facts {
        approvers: &facts.approvers,
        author_id: mr.author.id,
        bot_id: facts.bot_id,
        committers: &facts.committers,
        requesters: &facts.requesters,
        head_pushed_at_ms: facts.head_pushed_at_ms,
        // a request's content changes when its issue is edited, by whoever may edit issues:
        // an approval holds only for the content it saw, whatever the policy says
        reset_on_push: policy.reset_on_push || !facts.requesters.is_empty(),
        group: &policy.approval_group,
        min_access_level: policy.min_access_level,
    })
}

/// What policy (and Rego) know of an MR, with the usernames whose approvals count.
pub(crate) fn mr_facts(
    project: &str,
    mr: &MergeRequest,
    approved_by: &[String],
    requested_by: Option<String>,
) -> MrFacts {
    MrFacts {
        project: project.to_string(),
        iid: mr.iid,
        author: mr.author.username.clone(),
        title: mr.title.clone(),
        source_branch: mr.source_branch.clone(),
        target_branch: mr.target_branch.clone(),
        labels: mr.labels.clone(),
        approved_by: approved_by.to_vec(),
        requested_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(author: u64, body: &str, at: &str) -> Note {
        Note {
            id: 1,
            body: body.into(),
            author: crate::gitlab::User {
                id: author,
                username: String::new(),
            },
            system: true,
            created_at: Some(at.into()),
        }
    }

    #[test]
    fn gitlabs_records_give_the_times_and_the_pushers() {
        let notes = vec![
            note(20, APPROVED_NOTE, "2026-11-24T12:00:01.000Z"),
            note(
                10,
                "added 1 commit\n\n<ul><li>abc</li></ul>",
                "2026-11-24T12:00:02.000Z",
            ),
            note(21, "added 3 commits", "2026-11-24T12:00:03.000Z"),
            note(
                20,
                "unapproved this merge request",
                "2026-11-24T12:00:04.000Z",
            ),
            note(20, APPROVED_NOTE, "2026-11-24T12:00:05.000Z"),
            Note {
                system: false,
                ..note(22, APPROVED_NOTE, "2026-11-24T12:00:06.000Z")
            },
        ];
        assert_eq!(approved_at(&notes, 20), parse_iso("2026-11-24T12:00:05Z"));
        assert_eq!(
            approved_at(&notes, 22),
            None,
            "a comment is not GitLab's record"
        );
        assert_eq!(pushers(&notes).into_iter().collect::<Vec<_>>(), [10, 21]);

        let v = |id, head: &str, at: &str| MrVersion {
            id,
            head_commit_sha: Some(head.into()),
            created_at: Some(at.into()),
        };
        let versions = vec![
            v(2, "h2", "2026-11-24T12:00:03.000Z"),
            v(1, "h1", "2026-11-24T12:00:01.000Z"),
        ];
        assert_eq!(
            pushed_at(&versions, "h2"),
            parse_iso("2026-11-24T12:00:03Z")
        );
        assert_eq!(pushed_at(&versions, "h1"), None, "not the newest version");
        assert_eq!(pushed_at(&versions, "h3"), None, "not recorded yet");
    }
}
