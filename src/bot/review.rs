//! The MR review: on an MR event or `/orgvend plan`, read the MR from the API, its files at
//! the base and the head, the policy from the **target branch**, and the approvals; run the
//! core; keep the one bot note up to date and set the `orgvend` commit status. Thin: gather,
//! call the core, act.
//!
//! API calls per review, with a warm cache: the MR; then at once its diffs, its approvals and
//! (on a new head) the pending status; one membership check per approver; the note; the
//! status.
//! Base files are read once per blob id and kept, and the target head's declarations once per
//! commit; the head is the base with the MR's diffs applied, or, when GitLab collapsed a
//! diff, read from the head's tree.

use super::facts::{decide_approvals, mr_facts};
use super::note::{broken_policy_note, other_branch_note, status_of, untrusted_policy_note};
use super::policy::{Rules, policy_changes, terraform_changed};
use super::repo::in_policy_dir;
use super::{Bot, short};
use crate::aws::Aws;
use crate::core::decl;
use crate::core::incremental::{self, ChangeInput};
use crate::core::render;
use crate::core::report;
use crate::gitlab::{FileDiff, GitLab, StatusState};
use crate::store::ReviewRecord;
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;

impl<G: GitLab, A: Aws> Bot<G, A> {
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
        let target = self.target_branch().await?;
        if mr.target_branch != target {
            ctx.metrics.ignored_branch("review");
            tracing::info!(
                mr = iid,
                target = mr.target_branch,
                applied = target,
                "an MR into another branch: not reviewed"
            );
            let head = mr.sha.clone().unwrap_or_default();
            let body = other_branch_note(&mr.target_branch, &target, self.footer(&head));
            self.upsert_note(&mr, &body).await?;
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

        // The rules: the target branch's accepted policy (or, for an MR that restores an
        // accepted one, that one).
        let policy_tree = self.tree(&policy_sha).await?;
        let policy_changed = match diffs.as_deref().and_then(policy_diff) {
            Some(changed) => changed,
            None => policy_changes(&self.tree(&base_sha).await?, &self.tree(&head).await?),
        };
        let head_tree_for_rules = if policy_changed.is_empty() {
            policy_tree.clone()
        } else {
            self.tree(&head).await?
        };
        let mut repair = None;
        let mut policy_only = false;
        let mut in_force = false;
        let problem = match self
            .rules(&policy_tree, &policy_sha, &head_tree_for_rules)
            .await?
        {
            Rules::InForce(p) => {
                in_force = true;
                Ok(p)
            }
            Rules::Restoring(p) => Ok(p),
            Rules::Repairing {
                policy,
                why,
                policy_only: only,
            } => {
                if only && terraform_changed(&self.tree(&base_sha).await?, &self.tree(&head).await?)
                {
                    Err((
                        untrusted_policy_note(
                            &format!(
                                "{why} It changes Terraform too: move that into an MR of its own."
                            ),
                            self.footer(&head),
                        ),
                        "a repair of the broken policy may change only the policy",
                    ))
                } else {
                    repair = Some(why);
                    policy_only = only;
                    Ok(policy)
                }
            }
            Rules::Untrusted(why) => Err((
                untrusted_policy_note(&why, self.footer(&head)),
                "the target branch's policy was changed without approval",
            )),
            Rules::Broken(e) => Err((
                broken_policy_note(&e.to_string(), &mr.target_branch, self.footer(&head)),
                "the target branch's policy is broken",
            )),
        };
        let policy = match problem {
            Ok(p) => Arc::new(p),
            Err((body, status)) => {
                let note_id = self.upsert_note(&mr, &body).await?;
                let url = format!("{}#note_{note_id}", mr.web_url);
                self.status(&mr, &head, StatusState::Failed, status, Some(url))
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
        // An MR into a target head judged before under this policy is judged in proportion to
        // its change; otherwise the head is read whole.
        let (mut base, known, head_decls, head_files) = if policy_only {
            // The fallback knows no accounts; the Terraform is unchanged (checked above).
            (
                Arc::default(),
                None,
                decl::Declarations::default(),
                head_files,
            )
        } else {
            // the target head's declarations are read once for every MR into it
            let read = self.read(&base_sha, base_files, &policy.sources).await;
            let digest = super::policy::policy_digest(&policy_tree);
            let known = match in_force && repair.is_none() {
                true => self.known(&base_sha, &digest, &read, &policy).await,
                false => None,
            };
            // the head is read whole now, or later only if the change reaches beyond its part
            let (head, head_files) = match known {
                Some(_) => (decl::Declarations::default(), head_files),
                None => {
                    let sources = policy.sources.clone();
                    let read = move || decl::read(&head_files, &sources);
                    (super::off_runtime(read).await, Vec::new())
                }
            };
            (read.decls, known, head, head_files)
        };
        // The target's Terraform does not parse, this MR's does: a repair, planned against
        // the last commit that parsed (its plan includes what changed since).
        if known.is_none()
            && !base.parse_errors.is_empty()
            && head_decls.parse_errors.is_empty()
            && let Some((sha, decls)) = self.last_parsing_base(&base_sha, &policy.sources).await?
        {
            let first = &base.parse_errors[0];
            repair = Some(format!(
                "The target branch's Terraform does not parse ({}:{}: {}). This MR repairs it: it is planned against `{}`, the last commit that parsed, so its plan includes what changed since.",
                first.at.file,
                first.at.line,
                first.message,
                short(&sha)
            ));
            base = Arc::new(decls);
        }

        // Approvals come from the API, judged by GitLab's own records.
        let (counted, ignored) = if approvers.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let facts = self
                .approval_facts(&project, &mr, &policy, &approvers, &head)
                .await?;
            decide_approvals(&mr, &policy, &facts)
        };
        let request = ctx.store.request_for_mr(&project, iid).await?;
        let facts = mr_facts(
            &project,
            &mr,
            &counted,
            request.as_ref().map(|r| r.requester.clone()),
        );
        let proposed = self
            .proposed_policy_error(&policy_changed, &head_tree_for_rules)
            .await?;
        let footer = self.footer(&head);
        let (report, mut note, part) = {
            let (policy, changed, label) = (
                policy.clone(),
                policy_changed.clone(),
                short(&head).to_string(),
            );
            let approvals = (counted.clone(), ignored.clone());
            let room = render::markdown::NOTE_LIMIT - footer.len() - 2;
            let sources = policy.sources.clone();
            super::off_runtime(move || {
                // the same facts on the part or whole
                let input = || ChangeInput {
                    policy: &policy,
                    mr: Some(&facts),
                    policy_changed: &changed,
                    proposed_policy: proposed.as_ref(),
                    approvals: Some(approvals.clone()),
                    head_label: Some(label.clone()),
                };
                let change = known
                    .as_deref()
                    .and_then(|known| incremental::assess_change(known, &head_files, input()));
                let part = change.is_some();
                let report = change.unwrap_or_else(|| {
                    let read;
                    let head = match known {
                        // judged whole after all: the change reaches beyond its modules
                        Some(_) => {
                            read = decl::read(&head_files, &sources);
                            &read
                        }
                        None => &head_decls,
                    };
                    report::assess(input().with(Some(&*base), head))
                });
                let note = render::markdown::render_within(&report, room);
                (report, note, part)
            })
            .await
        };
        ctx.metrics.reviewed(part);
        if let Some(why) = &repair {
            // said first, under the marker: which rules judged this repair
            let said = format!("\n> ⚠️ {}\n", render::escape::text(why));
            let at = note.find('\n').map(|i| i + 1).unwrap_or(note.len());
            note.insert_str(at, &said);
        }
        if let Some(r) = &request {
            // who asked; and whether the head is still the commit orgvend wrote
            let ours = r.commit_sha.as_deref() == Some(head.as_str());
            let said = format!(
                "\n> 📨 Requested by {} in #{}: {} The approvals of those who wrote or edited the request do not count.\n",
                render::code(&r.requester),
                r.issue_iid,
                if ours {
                    "orgvend wrote this change from the issue."
                } else {
                    "⚠️ this branch holds commits orgvend did not write: read the whole diff (orgvend puts its own commit back when the issue is next edited, or on `/orgvend request` there)."
                }
            );
            let at = note.find('\n').map(|i| i + 1).unwrap_or(note.len());
            note.insert_str(at, &said);
        }
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
            "policy_changed": policy_changed,
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
                verdict: report.verdict.name().into(),
                reviewed_at_ms: ctx.clock.now_ms(),
                facts: record.to_string(),
            })
            .await?;
        tracing::info!(
            mr = iid,
            head = short(&head),
            verdict = report.verdict.name(),
            approvals = counted.len(),
            judged = if part { "part" } else { "whole" },
            "reviewed"
        );
        Ok(())
    }
}

/// The policy files the MR's diffs touch; `None` when a diff of `policies/` was collapsed
/// (the trees are compared instead).
fn policy_diff(diffs: &[FileDiff]) -> Option<Vec<String>> {
    let mut changed = Vec::new();
    for d in diffs {
        for path in [&d.old_path, &d.new_path] {
            if in_policy_dir(path) && !changed.contains(path) {
                changed.push(path.clone());
            }
        }
        let touches = in_policy_dir(&d.old_path) || in_policy_dir(&d.new_path);
        if touches && (d.collapsed == Some(true) || d.too_large == Some(true)) {
            return None;
        }
    }
    changed.sort();
    Some(changed)
}
