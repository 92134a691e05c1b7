//! What the bot knows of an MR for the core: its approvers (from the API, with their
//! membership of the approval group and the head each approval was first seen on), which of
//! them count, and the facts policy and Rego rules see.

use super::Bot;
use crate::aws::Aws;
use crate::core::approval::{self, Approver, IgnoredApproval, Membership, Person};
use crate::core::policy::Policy;
use crate::core::rules::MrFacts;
use crate::gitlab::{GitLab, MergeRequest, User};
use anyhow::{Context, Result};

impl<G: GitLab, A: Aws> Bot<G, A> {
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
                self.membership(&policy.approval_group, u.id)
                    .await
                    .with_context(|| format!("checking {}'s membership", u.username))?
            };
            let first_seen_sha = seen
                .iter()
                .find(|(id, _)| *id == u.id)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| head.to_string());
            out.push(Approver {
                user: Person {
                    id: u.id,
                    username: u.username.clone(),
                },
                membership,
                first_seen_sha,
            });
        }
        Ok(out)
    }

    /// A user's membership of a group, as the core's approval rules see it; `None` when not
    /// a member.
    pub(crate) async fn membership(&self, group: &str, user_id: u64) -> Result<Option<Membership>> {
        let member = self.gitlab.group_member(group, user_id).await?;
        Ok(member.map(|m| Membership {
            access_level: m.access_level,
            state: m.state,
        }))
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
