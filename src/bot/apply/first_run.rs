//! The first run: when applying is turned on for a repository that has been in use, the
//! merges that landed before are not applied by themselves (an operator turning on `[aws]`
//! does not expect a week of old merges to vend accounts). The target branch's head at that
//! first start is kept (`applied_as_of`); a merge is applied by itself only if it landed
//! after it. `/orgvend apply` or `orgvend apply --mr N` applies an older one deliberately,
//! through the same gate.

use crate::aws::Aws;
use crate::bot::Bot;
use crate::gitlab::{GitLab, MergeRequest};
use crate::store::ApplyRun;
use anyhow::{Context, Result};

/// The state key of the first run's head.
pub const APPLIED_AS_OF: &str = "applied_as_of";

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// At start, with applying configured: keeps the target branch's head as `applied_as_of`
    /// if this is the first start that applies (kept by whichever replica comes first).
    pub(crate) async fn mark_first_run(&self) -> Result<()> {
        if self.applier.is_none() {
            return Ok(());
        }
        if self.ctx.store.state(APPLIED_AS_OF).await?.is_some() {
            return Ok(());
        }
        let branch = self.target_branch().await?;
        let head = self
            .gitlab
            .commit(&self.project(), &branch)
            .await
            .with_context(|| format!("reading the head of `{branch}`"))?
            .id;
        let kept = self
            .ctx
            .store
            .init_state(APPLIED_AS_OF, &head, self.ctx.clock.now_ms())
            .await?;
        tracing::warn!(
            applied_as_of = %kept,
            "first start that applies merges: merges that landed on `{branch}` before {} are applied only when asked (`/orgvend apply`, `orgvend apply --mr N`)",
            super::super::short(&kept)
        );
        Ok(())
    }

    /// The first run's head, when `landed` is not after it (the merge landed before
    /// applying was turned on); `None` when it may be applied by itself.
    pub(crate) async fn landed_before_first_run(&self, landed: &str) -> Result<Option<String>> {
        let Some(as_of) = self.ctx.store.state(APPLIED_AS_OF).await? else {
            return Ok(None);
        };
        if landed == as_of {
            return Ok(Some(as_of));
        }
        let base = self
            .gitlab
            .merge_base(&self.project(), &as_of, landed)
            .await
            .context("comparing the merge with the first run's head")?;
        Ok((base.as_deref() != Some(as_of.as_str())).then_some(as_of))
    }

    /// Leaves a merge from before the first run alone, and says so (note, audit, log).
    pub(crate) async fn leave_old_merge(
        &self,
        mr: &MergeRequest,
        merge_sha: &str,
        as_of: &str,
    ) -> Result<()> {
        tracing::info!(mr = mr.iid, merge = %merge_sha, applied_as_of = %as_of, "merged before applying was turned on: not applied unless asked");
        let now = self.ctx.clock.now_ms();
        self.ctx
            .store
            .put_apply_run(ApplyRun {
                merge_sha: merge_sha.to_string(),
                project: self.project(),
                iid: mr.iid,
                decision: "before_first_run".into(),
                reason: Some(format!("landed before applied_as_of {as_of}")),
                facts: serde_json::json!({ "applied_as_of": as_of }).to_string(),
                started_at_ms: now,
                finished_at_ms: Some(now),
            })
            .await?;
        let body = format!(
            "{}\n### ➖ Not applied: merged before orgvend started applying\n\norgvend applies by itself only what merges after it was first started with `[aws]` (at {}). To apply this merge now, through the same checks, a member of the approval group comments `/orgvend apply`.\n",
            crate::core::render::NOTE_MARKER,
            crate::core::render::code(super::super::short(as_of))
        );
        self.upsert_note(mr, &body).await.map(drop)
    }
}
