//! The MR review: on an MR event or `/orgvend plan`, read the MR from the API, its files at
//! the base and the head, the policy from the **target branch**, and the approvals; run the
//! core; keep the one bot note up to date and set the `orgvend` commit status. Thin: gather,
//! call the core, act.
//!
//! API calls per review, with a warm cache: the MR; then at once its diffs, its approvals and
//! (on a new head) the pending status; one membership check per approver; the note; the
//! status.
//! Base files are read once per blob id and kept; the head is the base with the MR's diffs
//! applied, or, when GitLab collapsed a diff, read from the head's tree.

use super::facts::{decide_approvals, mr_facts};
use super::note::{broken_policy_note, status_of};
use super::repo::in_policy_dir;
use super::{Bot, POLICY_DIR, short};
use crate::aws::Aws;
use crate::core::decl;
use crate::core::policy::Policy;
use crate::core::render;
use crate::core::report::{self, AssessInput};
use crate::gitlab::{GitLab, StatusState};
use crate::store::ReviewRecord;
use anyhow::{Context, Result, anyhow};

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

        let policy_tree = self.tree(&policy_sha).await?;
        let policy_files = self.read_files(&policy_tree, in_policy_dir).await?;
        let policy = match Policy::load(&policy_files, POLICY_DIR) {
            Ok(p) => p,
            Err(e) => {
                let body =
                    broken_policy_note(&e.to_string(), &mr.target_branch, self.footer(&head));
                let note_id = self.upsert_note(&mr, &body).await?;
                let url = format!("{}#note_{note_id}", mr.web_url);
                self.status(
                    &mr,
                    &head,
                    StatusState::Failed,
                    "the target branch's policy is broken",
                    Some(url),
                )
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
        let base = decl::read(&base_files, &policy.sources);
        let head_decls = decl::read(&head_files, &policy.sources);

        // Approvals come from the API, bound to the head they were first seen on.
        let approvers = self
            .approvers(&project, &mr, &policy, &approvers, &head)
            .await?;
        let (counted, ignored) = decide_approvals(&mr, &policy, &approvers, &head);
        let facts = mr_facts(&project, &mr, &counted);
        let report = report::assess(AssessInput {
            base: Some(&base),
            head: &head_decls,
            policy: &policy,
            mr: Some(&facts),
            approvals: Some((counted.clone(), ignored.clone())),
            head_label: Some(short(&head).to_string()),
        });

        let footer = self.footer(&head);
        let note = render::markdown::render_within(
            &report,
            render::markdown::NOTE_LIMIT - footer.len() - 2,
        );
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
            "reviewed"
        );
        Ok(())
    }
}
