//! The apply of one merge: the gate, then each changed account's steps in order (creations
//! up to AWS's limit at once), each step recorded in the ledger before and after, retried when
//! AWS throttles, with the progress in the MR note. `/orgvend retry` runs it again.

use super::approved::Approval;
use super::context::{AccountRun, RunCtx, Sink};
use super::gate::{Gate, change_email};
use super::{Applier, StepFailure, failure, messages};
use crate::aws::{self, Aws};
use crate::bot::Bot;
use crate::bot::policy::Rules;
use crate::core::approval::membership_problem;
use crate::core::plan::Step;
use crate::core::policy::Policy;
use crate::core::progress::{AccountProgress, ApplyReport, Outcome, StepState};
use crate::gitlab::{GitLab, MergeRequest};
use crate::store::{ApplyRun, Lease};
use anyhow::{Context, Result, anyhow, bail};
use std::time::{Duration, Instant};

/// Attempts of a step that AWS refused for a concurrent change, and the first wait.
const CONCURRENT_ATTEMPTS: u32 = 4;
const CONCURRENT_RETRY_BASE: Duration = Duration::from_millis(500);

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Applies a merged MR: the gate, then the reconciliation, with progress in the note.
    /// `fence` is the claim of the delivery it runs for: the ledger takes its writes only
    /// while that claim holds.
    /// `force`: also a merge that landed before applying was first turned on (asked for by
    /// `/orgvend apply` or `orgvend apply --mr`).
    pub async fn apply(&self, iid: u64, fence: Option<Lease>, force: bool) -> Result<()> {
        let Some(applier) = &self.applier else {
            tracing::info!(
                mr = iid,
                "merged, but applying is not configured ([aws] in orgvend.toml)"
            );
            return Ok(());
        };
        let project = self.project();
        let mr = self
            .gitlab
            .merge_request(&project, iid)
            .await
            .context("reading the merge request")?;
        if mr.state != "merged" {
            tracing::info!(mr = iid, state = mr.state, "not merged: nothing to apply");
            return Ok(());
        }
        let target = self.target_branch().await?;
        if mr.target_branch != target {
            self.ctx.metrics.ignored_branch("apply");
            tracing::warn!(
                mr = iid,
                target = mr.target_branch,
                applied = target,
                "merged into another branch: NOT applied"
            );
            let body =
                crate::bot::note::other_branch_note(&mr.target_branch, &target, String::new());
            self.upsert_note(&mr, &body).await?;
            return Ok(());
        }
        let merge_sha = mr
            .landed_sha()
            .ok_or_else(|| anyhow!("the merged MR names no commit"))?
            .to_string();
        if !force && let Some(as_of) = self.landed_before_first_run(&merge_sha).await? {
            return self.leave_old_merge(&mr, &merge_sha, &as_of).await;
        }
        let _org = applier.lock.lock().await;
        // and across replicas sharing a PostgreSQL store
        let replicas = self.ctx.store.apply_lock().await?;
        tracing::info!(mr = iid, merge = %merge_sha, "applying");

        let gate = self.gate(&mr, &merge_sha).await?;
        let started = self.ctx.clock.now_ms();
        let previous = self.ctx.store.apply_run(&merge_sha).await?;
        let mut run = ApplyRun {
            merge_sha: merge_sha.clone(),
            project: project.clone(),
            iid,
            decision: "running".into(),
            reason: None,
            facts: gate.facts.to_string(),
            started_at_ms: previous
                .as_ref()
                .map(|p| p.started_at_ms)
                .unwrap_or(started),
            finished_at_ms: None,
        };
        let mut report = ApplyReport {
            outcome: Outcome::Running,
            merge_sha: merge_sha.clone(),
            merged_by: mr.merged_by.as_ref().map(|u| u.username.clone()),
            approved_by: gate.counted.clone(),
            accounts: Vec::new(),
            repair: None,
        };
        if !gate.refusals.is_empty() {
            tracing::error!(
                alert = true,
                mr = iid,
                merge = %merge_sha,
                merged_by = report.merged_by.as_deref().unwrap_or("?"),
                reasons = %gate.refusals.join("; "),
                "ALERT: a merged MR was NOT applied"
            );
            if previous.as_ref().is_none_or(|p| p.decision != "refused") {
                self.ctx.metrics.apply_refused();
            }
            run.decision = "refused".into();
            run.reason = Some(gate.refusals.join("; "));
            run.finished_at_ms = Some(self.ctx.clock.now_ms());
            self.ctx.store.put_apply_run(run).await?;
            self.alert_refused(&mr, &merge_sha, &gate.refusals).await?;
            report.outcome = Outcome::Refused {
                reasons: gate.refusals,
            };
            self.write_apply_note(&mr, &report).await?;
            return Ok(());
        }
        self.ctx.store.put_apply_run(run.clone()).await?;
        report.accounts = gate
            .plan
            .changes
            .iter()
            .map(|c| AccountProgress {
                action: c.action,
                name: c.name.clone(),
                email: change_email(c, &gate).unwrap_or_default(),
                account_id: None,
                steps: gate
                    .plan
                    .steps(c)
                    .into_iter()
                    .map(|s| (s, StepState::Pending))
                    .collect(),
                error: None,
                notes: Vec::new(),
                repository: None,
            })
            .collect();
        if report.accounts.is_empty() {
            run.decision = "applied".into();
            run.finished_at_ms = Some(self.ctx.clock.now_ms());
            self.ctx.store.put_apply_run(run).await?;
            tracing::info!(mr = iid, "merged: no account changes to apply");
            return Ok(());
        }

        let policy = gate.policy.as_ref().ok_or_else(|| anyhow!("no policy"))?;
        let cx = RunCtx::new(
            Sink::Mr(&mr),
            &merge_sha,
            fence,
            &replicas,
            report,
            applier.settings.max_creations,
        );
        self.progress(&cx, true).await;
        let runs: Vec<AccountRun> = gate
            .plan
            .changes
            .iter()
            .enumerate()
            .map(|(index, change)| AccountRun {
                index,
                change,
                steps: gate.plan.steps(change),
                email: change_email(change, &gate)
                    .unwrap_or_default()
                    .to_lowercase(),
                account_id: None,
                approval: approval(change, &gate, index),
            })
            .collect();
        let (outcome, failures) = self.run_accounts(applier, &cx, runs, policy).await;
        let retrying = matches!(outcome, Outcome::Failed { retrying: true });
        run.decision = match outcome {
            Outcome::Applied => "applied",
            Outcome::Failed { retrying: true } => "running",
            Outcome::Parked { .. } => "parked",
            _ => "failed",
        }
        .into();
        run.reason = (!failures.is_empty()).then(|| messages(&failures));
        run.finished_at_ms = (run.decision != "running").then(|| self.ctx.clock.now_ms());
        self.ctx.store.put_apply_run(run).await?;
        tracing::info!(mr = iid, merge = %merge_sha, outcome = ?outcome, "apply finished");
        if let Outcome::Parked { reason } = &outcome {
            // not retried by itself: `/orgvend retry` once the quota allows
            return Err(crate::serve::worker::ParkNow(format!(
                "the apply of !{iid} is parked: {reason}"
            ))
            .into());
        }
        if retrying {
            // The worker tries the delivery again later; the ledger resumes where it stopped.
            bail!(
                "the apply of !{iid} will be retried: {}",
                messages(&failures)
            );
        }
        Ok(())
    }

    /// Every account's steps, the accounts at once; the outcome (shown in the note at once)
    /// and what failed.
    pub(super) async fn run_accounts(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        runs: Vec<AccountRun<'_>>,
        policy: &Policy,
    ) -> (Outcome, Vec<StepFailure>) {
        let results = futures_util::future::join_all(
            runs.into_iter()
                .map(|r| self.run_account(applier, cx, r, policy)),
        )
        .await;
        let failures: Vec<StepFailure> = results.into_iter().filter_map(Result::err).collect();
        let retrying = failures.iter().any(|f| f.retryable);
        let parked = failures.iter().find(|f| f.parked);
        let outcome = match (failures.is_empty(), retrying, parked) {
            (true, _, _) => Outcome::Applied,
            // the rest goes on by itself; the parked closure waits for the retry after it
            (false, true, _) => Outcome::Failed { retrying: true },
            (false, false, Some(p)) => Outcome::Parked {
                reason: p.message.clone(),
            },
            (false, false, None) => Outcome::Failed { retrying: false },
        };
        cx.report.lock().expect("report lock").outcome = outcome.clone();
        self.progress(cx, true).await;
        (outcome, failures)
    }

    /// One account's steps, in order; the first failure stops the account.
    pub(super) async fn run_account(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        mut run: AccountRun<'_>,
        policy: &Policy,
    ) -> Result<(), StepFailure> {
        let steps = run.steps.clone();
        let mut permit = None;
        for (i, step) in steps.iter().enumerate() {
            let key = step.key();
            self.set_step(cx, run.index, i, StepState::Running, None);
            if matches!(step, Step::CreateAccount { .. }) {
                permit = Some(
                    cx.creations
                        .acquire()
                        .await
                        .map_err(|e| failure(anyhow!("{e}")))?,
                );
            }
            // Another replica may apply once this one's lock is gone: check before acting.
            cx.apply_lock.ensure().await.map_err(failure)?;
            self.record_step(cx, &run.email, &key, "intent", None)
                .await
                .map_err(failure)?;
            // Each call retries throttling and transient failures itself (the SDK's retry,
            // the GitLab client's); a step that still fails is tried again with the whole
            // apply, by the worker, from the ledger. The one failure no call retries is AWS's
            // ConcurrentModificationException (parallel writes to one organization or
            // account): the step itself is the one layer that tries it again, a few times.
            let mut result = self.exec_step(applier, cx, &mut run, step, policy).await;
            let mut wait = CONCURRENT_RETRY_BASE;
            for _ in 1..CONCURRENT_ATTEMPTS {
                match &result {
                    Err(e) if aws::has_code(e, "ConcurrentModificationException") => {
                        tracing::info!(
                            step = key,
                            wait_ms = wait.as_millis() as u64,
                            "AWS reports a concurrent change; trying the step again"
                        );
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                        cx.apply_lock.ensure().await.map_err(failure)?;
                        result = self.exec_step(applier, cx, &mut run, step, policy).await;
                    }
                    _ => break,
                }
            }
            if matches!(step, Step::WaitForAccount) {
                permit.take();
            }
            match result {
                Ok(detail) => {
                    self.record_step(cx, &run.email, &key, "done", detail.as_deref())
                        .await
                        .map_err(failure)?;
                    let state = if detail.as_deref().is_some_and(|d| d.starts_with("skipped:")) {
                        StepState::Skipped
                    } else {
                        StepState::Done
                    };
                    self.set_step(
                        cx,
                        run.index,
                        i,
                        state,
                        detail.filter(|d| d.starts_with("skipped:")),
                    );
                }
                Err(e) => {
                    let f = failure(e);
                    self.record_step(cx, &run.email, &key, "failed", Some(&f.message))
                        .await
                        .map_err(failure)?;
                    self.set_step(cx, run.index, i, StepState::Failed, None);
                    cx.report.lock().expect("report lock").accounts[run.index].error =
                        Some(f.message.clone());
                    tracing::warn!(
                        account = run.email,
                        step = key,
                        retryable = f.retryable,
                        error = f.message,
                        "apply step failed"
                    );
                    return Err(f);
                }
            }
            // Milestones in the note: the account exists, and the account is done.
            if matches!(step, Step::WaitForAccount) || i + 1 == steps.len() {
                self.progress(cx, false).await;
            }
        }
        if let (Some(a), Some(id)) = (&run.approval, &run.account_id) {
            self.keep_approval(id, a).await.map_err(failure)?;
        }
        Ok(())
    }

    fn set_step(
        &self,
        cx: &RunCtx<'_, A::Member>,
        account: usize,
        step: usize,
        state: StepState,
        note: Option<String>,
    ) {
        let mut r = cx.report.lock().expect("report lock");
        let a = &mut r.accounts[account];
        a.steps[step].1 = state;
        if let Some(n) = note {
            a.notes
                .push(n.trim_start_matches("skipped:").trim().to_string());
        }
    }

    /// Writes the progress to the note: at once when `now`, otherwise at most once a second.
    pub(super) async fn progress(&self, cx: &RunCtx<'_, A::Member>, now: bool) {
        {
            let mut last = cx.last_note.lock().expect("note lock");
            if !now && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let report = cx.report.lock().expect("report lock").clone();
        let written = match &cx.sink {
            Sink::Mr(mr) => self.write_apply_note(mr, &report).await,
            Sink::Issue { iid, note, left } => {
                self.write_repair_note(*iid, note, left, &report).await
            }
            Sink::Log { left } => {
                if !matches!(report.outcome, crate::core::progress::Outcome::Running) {
                    tracing::info!(
                        report = super::repair::repair_note(&report, left),
                        "repair finished"
                    );
                }
                Ok(())
            }
        };
        if let Err(e) = written {
            // Progress is a courtesy: the apply goes on, and the final note is written again.
            tracing::warn!(error = %format!("{e:#}"), "could not update the note with the apply's progress");
        }
    }

    async fn write_apply_note(&self, mr: &MergeRequest, report: &ApplyReport) -> Result<()> {
        let body = crate::core::render::apply::render(report);
        self.upsert_note(mr, &body).await.map(drop)
    }
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// `/orgvend retry` (`force`: `/orgvend apply`) on a merged MR: only a member of the
    /// approval group may ask; the gate judges the merge as always.
    pub async fn asked_to_apply(
        &self,
        iid: u64,
        user_id: u64,
        fence: Option<Lease>,
        force: bool,
    ) -> Result<()> {
        let project = self.project();
        let mr = self
            .gitlab
            .merge_request(&project, iid)
            .await
            .context("reading the merge request")?;
        let Some(merge_sha) = mr.landed_sha().filter(|_| mr.state == "merged") else {
            tracing::info!(
                mr = iid,
                "`/orgvend retry` on an MR that is not merged: nothing to retry"
            );
            return Ok(());
        };
        // Only MRs into the target branch are ever applied.
        if mr.target_branch != self.target_branch().await? {
            return self.apply(iid, fence, false).await;
        }
        // The group comes from the policy the merge is judged by.
        let before = self.before_landing(&mr, merge_sha).await?;
        let before_tree = self.tree(&before).await?;
        let landed_tree = self.tree(merge_sha).await?;
        let policy = match self.rules(&before_tree, &before, &landed_tree).await? {
            Rules::InForce(p) | Rules::Restoring(p) | Rules::Repairing { policy: p, .. } => p,
            Rules::Untrusted(why) => bail!("{why}"),
            Rules::Broken(e) => bail!("the target branch's policy cannot be read: {e}"),
        };
        let member = self.membership(&policy, user_id).await?;
        let problem = membership_problem(&member, &policy.approval_group, policy.min_access_level);
        if let Some(problem) = problem {
            tracing::warn!(
                mr = iid,
                user = user_id,
                problem,
                "`/orgvend retry` refused: only members of the approval group may retry"
            );
            return Ok(());
        }
        tracing::info!(mr = iid, user = user_id, "`/orgvend retry`: applying again");
        self.apply(iid, fence, force).await
    }
}

/// What an applied change of an account makes approved (none for a close).
fn approval(change: &crate::core::plan::Change, gate: &Gate, index: usize) -> Option<Approval> {
    let target = change.target.as_ref()?;
    let (Some(digest), base) = gate.digests.get(index).cloned()? else {
        return None;
    };
    let adopting = target.adopt.is_some() && change.fields.iter().any(|f| f.field == "adopt");
    Some(Approval {
        digest,
        base,
        fresh: change.action == crate::core::plan::Action::Create || adopting,
    })
}
