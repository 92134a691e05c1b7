//! Reconciliation: work no delivery announced (GitLab does not retry a lost one) is found on
//! a timer and queued as deliveries, so it keeps its MR's order: open MRs without a current
//! review, merged MRs whose apply never ran or did not finish; and, when due, a drift run.

use super::Bot;
use crate::aws::Aws;
use crate::core::report::Verdict;
use crate::gitlab::GitLab;
use crate::store::NewDelivery;
use anyhow::{Context, Result};

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Reviews and applies no delivery asked for: see [`Bot::reconcile_reviews`] and
    /// [`Bot::reconcile_merges`]. Returns how many deliveries were queued.
    pub async fn reconcile(&self) -> Result<usize> {
        let queued = self.reconcile_reviews().await? + self.reconcile_merges().await?;
        // a drift run when one is due (not counted: not work a delivery missed)
        let drift = self.drift_if_due().await?;
        if queued > 0 || drift {
            self.ctx.wake.notify_one();
        }
        Ok(queued)
    }

    /// Open MRs whose head orgvend has not reviewed get a review, and so do those waiting for
    /// approvals (an approval delivery may have been lost: GitLab does not retry). Returns
    /// how many were queued.
    pub async fn reconcile_reviews(&self) -> Result<usize> {
        let project = self.project();
        let ctx = &self.ctx;
        let now = ctx.clock.now_ms();
        let interval_ms = (ctx.config.gitlab.reconcile_interval_seconds.max(1) * 1000) as i64;
        let mut queued = 0;
        let target = self.target_branch().await?;
        for mr in self
            .gitlab
            .open_merge_requests(&project)
            .await
            .context("listing open merge requests")?
        {
            if !mr.target_branch.is_empty() && mr.target_branch != target {
                continue; // never reviewed, never applied
            }
            let Some(sha) = mr.sha else { continue };
            match ctx.store.review(&project, mr.iid, &sha).await? {
                None => {}
                Some(r) if r.verdict == Verdict::AwaitingApproval.name() => {}
                Some(_) => continue,
            }
            // Never while the same work waits or runs; once per period and head.
            let mr_key = crate::gitlab::event::mr_key(mr.iid);
            if ctx.store.has_work(&mr_key, "reconcile").await? {
                continue;
            }
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
                    ordering_key: Some(crate::gitlab::event::mr_key(mr.iid)),
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

    /// Merged MRs of the last week whose apply never ran or did not finish, as deliveries.
    pub(crate) async fn reconcile_merges(&self) -> Result<usize> {
        if self.applier.is_none() {
            return Ok(0);
        }
        let project = self.project();
        let target = self.target_branch().await?;
        let now = self.ctx.clock.now_ms();
        let since = crate::clock::format_iso(now - 7 * 24 * 3600 * 1000);
        let interval_ms = (self.ctx.config.gitlab.reconcile_interval_seconds.max(1) * 1000) as i64;
        let mut queued = 0;
        for mr in self
            .gitlab
            .merged_merge_requests(&project, &since)
            .await
            .context("listing merged merge requests")?
        {
            if !mr.target_branch.is_empty() && mr.target_branch != target {
                continue;
            }
            let Some(sha) = mr
                .merge_commit_sha
                .clone()
                .or(mr.squash_commit_sha.clone())
                .or(mr.sha.clone())
            else {
                continue;
            };
            match self.ctx.store.apply_run(&sha).await? {
                Some(run) if run.decision != "running" => continue,
                _ => {}
            }
            // A merge from before applying was turned on is left alone, once and for all.
            if let Some(as_of) = self.landed_before_first_run(&sha).await? {
                self.ctx
                    .store
                    .put_apply_run(crate::store::ApplyRun {
                        merge_sha: sha.clone(),
                        project: project.clone(),
                        iid: mr.iid,
                        decision: "before_first_run".into(),
                        reason: Some(format!("landed before applied_as_of {as_of}")),
                        facts: serde_json::json!({ "applied_as_of": as_of }).to_string(),
                        started_at_ms: now,
                        finished_at_ms: Some(now),
                    })
                    .await?;
                continue;
            }
            // An apply that waits or runs (a stale claim, a retry's backoff) is not queued again.
            let mr_key = crate::gitlab::event::mr_key(mr.iid);
            if self.ctx.store.has_work(&mr_key, "merged").await? {
                continue;
            }
            let body = serde_json::json!({
                "object_kind": "merge_request",
                "object_attributes": {"iid": mr.iid, "action": "merge", "state": "merged", "merge_commit_sha": sha},
            });
            let inserted = self
                .ctx
                .store
                .insert(crate::store::NewDelivery {
                    dedup_key: format!("reconcile-merge:{}:{sha}:{}", mr.iid, now / interval_ms),
                    received_at_ms: now,
                    event_name: "Merge Request Hook".into(),
                    kind: "merge_request".into(),
                    action: "merged".into(),
                    ordering_key: Some(crate::gitlab::event::mr_key(mr.iid)),
                    ignored: None,
                    headers: "{}".into(),
                    body: body.to_string().into(),
                })
                .await?;
            if matches!(inserted, crate::store::Inserted::New(_)) {
                queued += 1;
            }
        }
        Ok(queued)
    }
}
