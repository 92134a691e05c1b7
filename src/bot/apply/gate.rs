//! The gate of an apply: the merge commit judged against the policy of the target branch
//! *before* the merge and the approvals the API shows. Refused when the change breaks policy,
//! lacks the required approvals, or changed the policy it would be judged by.

use crate::aws::Aws;
use crate::bot::facts::{decide_approvals, mr_facts};
use crate::bot::repo::in_policy_dir;
use crate::bot::{Bot, POLICY_DIR};
use crate::core::decl;
use crate::core::plan::{Change, Plan};
use crate::core::policy::Policy;
use crate::core::report::{self, AssessInput, Verdict};
use crate::gitlab::{GitLab, MergeRequest};
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Judges the merge: the merge commit against the target branch's policy before the
    /// merge, and the approvals the API shows.
    pub(super) async fn gate(&self, mr: &MergeRequest, merge_sha: &str) -> Result<Gate> {
        let project = self.project();
        let commit = self
            .gitlab
            .commit(&project, merge_sha)
            .await
            .context("reading the merge commit")?;
        let parent = commit
            .parent_ids
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("the merge commit has no parent"))?;
        let parent_tree = self.tree(&parent).await?;
        let merge_tree = self.tree(merge_sha).await?;
        let policy_files = self.read_files(&parent_tree, in_policy_dir).await?;
        let mut refusals = Vec::new();
        let policy = match Policy::load(&policy_files, POLICY_DIR) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Gate::refused(format!(
                    "the target branch's policy cannot be read: {e}"
                )));
            }
        };
        let policy_ids = |tree: &[crate::gitlab::TreeEntry]| -> BTreeMap<String, String> {
            tree.iter()
                .filter(|e| in_policy_dir(&e.path))
                .map(|e| (e.path.clone(), e.id.clone()))
                .collect()
        };
        let policy_changed = policy_ids(&parent_tree) != policy_ids(&merge_tree);
        let base_files = self
            .read_files(&parent_tree, decl::is_terraform_file)
            .await?;
        let head_files = self
            .read_files(&merge_tree, decl::is_terraform_file)
            .await?;
        let base = decl::read(&base_files, &policy.sources);
        let head = decl::read(&head_files, &policy.sources);

        let users = self
            .gitlab
            .approvals(&project, mr.iid)
            .await
            .context("reading approvals")?;
        let head_sha = mr.sha.clone().unwrap_or_else(|| merge_sha.to_string());
        let approvers = self
            .approvers(&project, mr, &policy, &users, &head_sha)
            .await?;
        let (counted, ignored) = decide_approvals(mr, &policy, &approvers, &head_sha);
        let facts = mr_facts(&project, mr, &counted);
        let report = report::assess(AssessInput {
            base: Some(&base),
            head: &head,
            policy: &policy,
            mr: Some(&facts),
            approvals: Some((counted.clone(), ignored.clone())),
            head_label: Some(merge_sha.to_string()),
        });
        match report.verdict {
            Verdict::Invalid => {
                refusals.push("the merge commit's Terraform does not parse".to_string())
            }
            Verdict::Blocked => refusals.push(format!(
                "the merge commit breaks the policy ({} violations)",
                report.summary.errors
            )),
            Verdict::AwaitingApproval => {
                let r = report.approvals.required();
                refusals.push(format!(
                    "merged without the required approval: {} of {} approvals from members of `{}`",
                    counted.len(),
                    r.count,
                    r.group
                ));
            }
            Verdict::Passes | Verdict::Ready => {}
        }
        if policy_changed && !report.plan.changes.is_empty() {
            refusals.push("the MR changed the policy it is judged by: merge policy changes on their own, then the accounts".to_string());
        }
        let audit = serde_json::json!({
            "author": mr.author.username,
            "merged_by": mr.merged_by.as_ref().map(|u| &u.username),
            "merge_sha": merge_sha,
            "parent_sha": parent,
            "approvals_counted": counted,
            "approvals_ignored": ignored,
            "violations": report.violations.iter().map(|v| &v.rule).collect::<Vec<_>>(),
            "summary": report.summary,
            "policy_changed": policy_changed,
            "changes": report.plan.changes.iter().map(|c| serde_json::json!({"action": c.action, "name": c.name, "key": c.key})).collect::<Vec<_>>(),
        });
        Ok(Gate {
            emails: collect_emails(&report.plan, &base, &head),
            plan: report.plan,
            policy: Some(policy),
            counted,
            refusals,
            facts: audit,
        })
    }
}

/// What the gate found.
pub(super) struct Gate {
    pub(super) plan: Plan,
    /// `None` when the target branch's policy could not be read (the apply is refused).
    pub(super) policy: Option<Policy>,
    pub(super) counted: Vec<String>,
    pub(super) refusals: Vec<String>,
    pub(super) facts: serde_json::Value,
    /// The email of each change's account (at the head, or at the base for a close).
    pub(super) emails: Vec<String>,
}

impl Gate {
    fn refused(reason: String) -> Gate {
        Gate {
            plan: Plan::default(),
            policy: None,
            counted: Vec::new(),
            refusals: vec![reason.clone()],
            facts: serde_json::json!({ "refused": reason }),
            emails: Vec::new(),
        }
    }
}

fn collect_emails(
    plan: &Plan,
    base: &decl::Declarations,
    head: &decl::Declarations,
) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| {
            let a = match (c.head, c.base) {
                (Some(h), _) => head.accounts.get(h),
                (None, Some(b)) => base.accounts.get(b),
                (None, None) => None,
            };
            a.and_then(|a| a.email()).unwrap_or_default().to_string()
        })
        .collect()
}

pub(super) fn change_email(change: &Change, gate: &Gate) -> Option<String> {
    let i = gate
        .plan
        .changes
        .iter()
        .position(|c| std::ptr::eq(c, change))?;
    gate.emails.get(i).cloned()
}
