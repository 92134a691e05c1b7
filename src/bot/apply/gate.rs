//! The gate of an apply: what landed on the target branch, judged against the policy in
//! force on that branch *before* the MR landed, with the approvals the API shows. Refused
//! when the change breaks policy, lacks the required approvals, changed the policy beside
//! accounts, or the policy in force was never approved.
//!
//! "Before" is found the same way for every merge method: from the commit that landed, back
//! along first parents past the MR's own commits (a fast-forward lands them one after
//! another) to the first commit that is not the MR's: a merge commit's first parent, a squash
//! commit's parent, or, for a fast-forward, the target branch's previous head.

use crate::aws::Aws;
use crate::bot::facts::{decide_approvals, mr_facts};
use crate::bot::policy::{Rules, policy_changes, terraform_changed};
use crate::bot::{Bot, short};
use crate::core::decl;
use crate::core::plan::{Change, Plan};
use crate::core::policy::Policy;
use crate::core::report::{self, ChangeInput, Verdict};
use crate::gitlab::{GitLab, MergeRequest};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashSet;

/// The most commits an MR may land by fast-forward before orgvend gives up finding "before".
const MAX_MR_COMMITS: usize = 1000;

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The target branch's head just before `landed` (what the MR put on it) landed.
    pub(crate) async fn before_landing(&self, mr: &MergeRequest, landed: &str) -> Result<String> {
        let project = self.project();
        let own: HashSet<String> = self
            .gitlab
            .merge_request_commits(&project, mr.iid)
            .await
            .context("reading the MR's commits")?
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut at = landed.to_string();
        for _ in 0..=MAX_MR_COMMITS {
            let commit = self
                .gitlab
                .commit(&project, &at)
                .await
                .with_context(|| format!("reading commit {}", short(&at)))?;
            let parent = commit.parent_ids.first().cloned().ok_or_else(|| {
                anyhow!(
                    "commit {} has no parent: nothing landed before it",
                    short(&at)
                )
            })?;
            if !own.contains(&parent) {
                return Ok(parent);
            }
            at = parent;
        }
        bail!("the MR landed more than {MAX_MR_COMMITS} commits by fast-forward")
    }

    /// Judges what landed: the landed commit against the policy in force before it, and the
    /// approvals the API shows.
    pub(super) async fn gate(&self, mr: &MergeRequest, merge_sha: &str) -> Result<Gate> {
        let project = self.project();
        let parent = self.before_landing(mr, merge_sha).await?;
        let parent_tree = self.tree(&parent).await?;
        let merge_tree = self.tree(merge_sha).await?;
        let mut refusals = Vec::new();
        let policy_changed = policy_changes(&parent_tree, &merge_tree);
        let mut repair = None;
        let mut only = false;
        let policy = match self.rules(&parent_tree, &parent, &merge_tree).await? {
            Rules::InForce(p) | Rules::Restoring(p) => p,
            Rules::Repairing {
                policy,
                why,
                policy_only,
            } => {
                if policy_only && terraform_changed(&parent_tree, &merge_tree) {
                    return Ok(Gate::refused(format!(
                        "{why} It changed Terraform too: a repair under the fallback changes only the policy"
                    )));
                }
                repair = Some(why);
                only = policy_only;
                policy
            }
            Rules::Untrusted(why) => return Ok(Gate::refused(why)),
            Rules::Broken(e) => {
                return Ok(Gate::refused(format!(
                    "the target branch's policy cannot be read: {e}"
                )));
            }
        };
        let base_files = self
            .read_files(&parent_tree, decl::is_terraform_file)
            .await?;
        let head_files = self
            .read_files(&merge_tree, decl::is_terraform_file)
            .await?;
        let (mut base, head) = if only {
            // The fallback knows no accounts; the Terraform is unchanged (checked above).
            (decl::Declarations::default(), decl::Declarations::default())
        } else {
            let sources = policy.sources.clone();
            crate::bot::off_runtime(move || {
                (
                    decl::read(&base_files, &sources),
                    decl::read(&head_files, &sources),
                )
            })
            .await
        };
        // A repair of Terraform that did not parse: planned against the last that did.
        if !base.parse_errors.is_empty()
            && head.parse_errors.is_empty()
            && let Some((sha, decls)) = self.last_parsing_base(&parent, &policy.sources).await?
        {
            repair = Some(format!(
                "planned against `{sha}`, the last commit whose Terraform parsed"
            ));
            base = decls;
        }

        let users = self
            .gitlab
            .approvals(&project, mr.iid)
            .await
            .context("reading approvals")?;
        let head_sha = mr.sha.clone().unwrap_or_else(|| merge_sha.to_string());
        let approval_facts = self
            .approval_facts(&project, mr, &policy, &users, &head_sha)
            .await?;
        let (counted, ignored) = decide_approvals(mr, &policy, &approval_facts);
        let requested_by = self
            .ctx
            .store
            .request_for_mr(&project, mr.iid)
            .await?
            .map(|r| r.requester);
        let facts = mr_facts(&project, mr, &counted, requested_by);
        let proposed = self
            .proposed_policy_error(&policy_changed, &merge_tree)
            .await?;
        let (base, head, report) = {
            let (judge, changed) = (policy.clone(), policy_changed.clone());
            let approvals = (counted.clone(), ignored.clone());
            let label = merge_sha.to_string();
            crate::bot::off_runtime(move || {
                let change = ChangeInput {
                    policy: &judge,
                    mr: Some(&facts),
                    policy_changed: &changed,
                    proposed_policy: proposed.as_ref(),
                    approvals: Some(approvals),
                    head_label: Some(label),
                };
                let report = report::assess(change.with(Some(&base), &head));
                (base, head, report)
            })
            .await
        };
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
        if !policy_changed.is_empty() && !report.plan.changes.is_empty() {
            refusals.push("the MR changed the policy it is judged by: merge policy changes on their own, then the accounts".to_string());
        }
        if refusals.is_empty() && !policy_changed.is_empty() {
            // An approved change of the rules: they are the rules in force from now on.
            let source = format!("!{} approved by {}", mr.iid, counted.join(", "));
            self.accept_policy(&merge_tree, merge_sha, &source).await?;
            tracing::info!(mr = mr.iid, merge = %merge_sha, "the policy changed by an approved MR is accepted as the rules in force");
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
            "judged_by": repair,
            "changes": report.plan.changes.iter().map(|c| serde_json::json!({"action": c.action, "name": c.name, "key": c.key})).collect::<Vec<_>>(),
        });
        Ok(Gate {
            emails: collect_emails(&report.plan, &base, &head),
            digests: report
                .plan
                .changes
                .iter()
                .map(|c| {
                    let of = |d: &decl::Declarations, i: Option<usize>| {
                        i.and_then(|i| d.accounts.get(i))
                            .map(decl::Account::declared_digest)
                    };
                    (of(&head, c.head), of(&base, c.base))
                })
                .collect(),
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
    /// Each change's account's declared digest at the head and at the base.
    pub(super) digests: Vec<(Option<String>, Option<String>)>,
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
            digests: Vec::new(),
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
