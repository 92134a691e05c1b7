//! Repair: `/orgvend apply` on the drift issue, by a member of the approval group, or
//! `orgvend apply --account <name>` from the command line. It puts back what the target
//! branch's head already declares of accounts that exist — their OU, tags, name, and
//! everything inside them and in their projects — by running the apply's own steps for each
//! (each reads before it changes anything), with the ledger, the apply lock and a progress
//! note on the drift issue. Then drift runs again.
//!
//! What it never does: create an account (a missing one needs its merge through the gate),
//! change an email (a two-phase change), declare or close anything, or apply a declaration
//! that differs from what was last applied under approval ([`super::approved`]): a merge
//! the gate refused, or a push, is not made good by asking for a repair.

use super::context::{AccountRun, RunCtx, Sink};
use crate::aws::Aws;
use crate::bot::Bot;
use crate::core::approval::membership_problem;
use crate::core::drift::Kind;
use crate::core::plan::{Change, Step};
use crate::core::progress::{AccountProgress, ApplyReport, Outcome, StepState};
use crate::gitlab::GitLab;
use crate::store::Lease;
use anyhow::{Result, bail};
use std::sync::Mutex;

/// Who asked for a repair.
#[derive(Debug, Clone)]
pub enum Asker {
    /// A comment on the drift issue: allowed to members of the approval group.
    Member { id: u64, username: String },
    /// `orgvend apply --account` (whoever can write to the store).
    Cli,
}

impl Asker {
    fn name(&self) -> String {
        match self {
            Asker::Member { username, .. } => username.clone(),
            Asker::Cli => "the command line".into(),
        }
    }
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Repairs the drifted accounts (`only`: the one of that name or module key, whatever its
    /// drift), then looks at drift again.
    pub async fn repair(
        &self,
        asker: Asker,
        only: Option<&str>,
        fence: Option<Lease>,
    ) -> Result<()> {
        let Some(applier) = &self.applier else {
            tracing::info!("repair asked, but applying is not configured ([aws] in orgvend.toml)");
            return Ok(());
        };
        let issue = self.drift_issue_iid().await?;
        // Who may ask is settled first, before any lock or AWS call.
        if let Asker::Member { id, username } = &asker {
            let Some((_, policy)) = self.head_policy().await? else {
                return Ok(());
            };
            let member = self.membership(&policy, *id).await?;
            if let Some(problem) =
                membership_problem(&member, &policy.approval_group, policy.min_access_level)
            {
                tracing::warn!(
                    user = username,
                    problem,
                    "repair refused: not a member of the approval group"
                );
                if let Some(iid) = issue {
                    let body = format!(
                        "🚫 `/orgvend apply` from `{username}` was not carried out: only members of `{}` may repair drift ({problem}).",
                        policy.approval_group
                    );
                    self.gitlab
                        .create_issue_note(&self.project(), iid, &body)
                        .await?;
                }
                return Ok(());
            }
        }
        let _org = applier.lock.lock().await;
        let replicas = self.ctx.store.apply_lock().await?;
        let Some(survey) = self.survey().await? else {
            tracing::warn!(
                "nothing to repair from: the target branch's policy is not in force, or its Terraform does not parse"
            );
            return Ok(());
        };

        // `only`: exactly one account, by name, else by module key.
        let only_index = match only {
            None => None,
            Some(n) => {
                let found = survey
                    .plan
                    .changes
                    .iter()
                    .position(|c| c.name == n)
                    .or_else(|| survey.plan.changes.iter().position(|c| c.key == n));
                match found {
                    Some(i) => Some(i),
                    None => {
                        tracing::warn!(
                            account = n,
                            "repair asked for an account no declaration names, or that is not active in the organization"
                        );
                        return Ok(());
                    }
                }
            }
        };
        // What is repaired, and what is left with the reason.
        let mut chosen: Vec<&Change> = Vec::new();
        let mut left: Vec<String> = Vec::new();
        for (i, c) in survey.plan.changes.iter().enumerate() {
            if only_index.is_some_and(|o| o != i) {
                continue;
            }
            let Some(h) = c.head else { continue };
            let drifted = survey
                .items
                .iter()
                .any(|i| i.account == c.name && i.kind.repairable());
            if only.is_none() && !drifted {
                continue;
            }
            let id = c
                .target
                .as_ref()
                .and_then(|t| t.adopt.as_deref())
                .unwrap_or_default();
            if survey.unapplied.contains(&h) {
                left.push(format!("`{}`: its declaration differs from what was last applied under approval (a merge the gate refused, an apply that failed or still runs, a push): settle it in an MR", c.name));
            } else if self.approved_digest(id).await?.is_none() {
                left.push(format!("`{}`: orgvend has no record of it applied under approval (applied before orgvend kept them): an approved MR adding `adopt = \"{id}\"` to it starts one", c.name));
            } else {
                chosen.push(c);
            }
        }
        let only_name = only_index.map(|i| survey.plan.changes[i].name.as_str());
        for i in survey.items.iter().filter(|i| !i.kind.repairable()) {
            if only_name.is_none_or(|n| n == i.account) && i.kind != Kind::Unapplied {
                left.push(format!("`{}` ({}): {}", i.account, i.kind.name(), i.fix));
            }
        }
        let key = format!("repair:{}:{}", survey.sha, self.ctx.clock.now_ms());
        let runs: Vec<AccountRun> = chosen
            .iter()
            .enumerate()
            .map(|(index, change)| AccountRun {
                index,
                change,
                steps: repair_steps(&survey, change),
                email: change
                    .target
                    .as_ref()
                    .map(|t| t.email.to_lowercase())
                    .unwrap_or_default(),
                account_id: change.target.as_ref().and_then(|t| t.adopt.clone()),
                approval: None,
            })
            .collect();
        let report = ApplyReport {
            outcome: Outcome::Running,
            merge_sha: survey.sha.clone(),
            merged_by: None,
            approved_by: Vec::new(),
            accounts: runs
                .iter()
                .map(|r| AccountProgress {
                    // an account that exists, put back: shown as an update
                    action: crate::core::plan::Action::Update,
                    name: r.change.name.clone(),
                    email: r.email.clone(),
                    account_id: r.account_id.clone(),
                    steps: r
                        .steps
                        .iter()
                        .map(|s| (s.clone(), StepState::Pending))
                        .collect(),
                    error: None,
                    notes: Vec::new(),
                    repository: None,
                })
                .collect(),
            repair: Some(asker.name()),
        };
        let sink = match issue {
            Some(iid) => Sink::Issue {
                iid,
                note: Mutex::new(None),
                left,
            },
            None => Sink::Log { left },
        };
        let cx = RunCtx::new(sink, &key, fence, &replicas, report, 1);
        tracing::info!(
            accounts = runs.len(),
            by = asker.name(),
            sha = crate::bot::short(&survey.sha),
            "repairing drift"
        );
        self.progress(&cx, true).await;
        let policy = &survey.policy;
        let (outcome, failures) = self.run_accounts(applier, &cx, runs, policy).await;
        drop(_org);
        drop(replicas);
        // What is left: the issue edited (or closed when clean).
        self.drift_now().await?;
        if matches!(outcome, Outcome::Failed { retrying: true }) {
            bail!("the repair will be retried: {}", super::messages(&failures));
        }
        Ok(())
    }

    /// Writes the repair's note on the drift issue: the first time, then edits it.
    pub(super) async fn write_repair_note(
        &self,
        iid: u64,
        note: &Mutex<Option<u64>>,
        left: &[String],
        report: &ApplyReport,
    ) -> Result<()> {
        let project = self.project();
        let body = repair_note(report, left);
        let id = *note.lock().expect("note lock");
        if let Some(id) = id
            && self
                .gitlab
                .update_issue_note(&project, iid, id, &body)
                .await?
        {
            return Ok(());
        }
        let created = self.gitlab.create_issue_note(&project, iid, &body).await?;
        *note.lock().expect("note lock") = Some(created.id);
        Ok(())
    }
}

/// The repair note: the apply's report, then what was left and why.
pub(super) fn repair_note(report: &ApplyReport, left: &[String]) -> String {
    let mut body = crate::core::render::apply::render(report);
    if !left.is_empty() {
        body.push_str("\n**Not repaired** (a repair puts back only what the declarations already say of accounts that exist):\n\n");
        for l in left.iter().take(50) {
            body.push_str(&format!("- {}\n", crate::core::render::inline(l)));
        }
        if left.len() > 50 {
            body.push_str(&format!("- … and {} more\n", left.len() - 50));
        }
    }
    body
}

/// The account's steps as a repair runs them: the whole baseline on the adopted account, with
/// a rename where the name differs and the tags it should not have taken off.
fn repair_steps(survey: &crate::bot::drift::Survey, change: &Change) -> Vec<Step> {
    let mut steps = survey.plan.steps(change);
    let Some(t) = &change.target else {
        return steps;
    };
    let existing = survey
        .existing
        .iter()
        .find(|e| t.adopt.as_deref() == Some(e.id.as_str()));
    let mut extra = Vec::new();
    if let Some(e) = existing {
        if e.name != t.name {
            extra.push(Step::RenameAccount {
                name: t.name.clone(),
            });
        }
        let keys: Vec<String> = e
            .tags
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !k.to_ascii_lowercase().starts_with("aws:") && !t.tags.contains_key(k))
            .collect();
        if !keys.is_empty() {
            extra.push(Step::UntagAccount { keys });
        }
    }
    let at = steps
        .iter()
        .position(|s| matches!(s, Step::MoveAccount { .. }))
        .map_or(steps.len().min(1), |i| i + 1);
    steps.splice(at..at, extra);
    steps
}
