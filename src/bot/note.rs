//! The one bot note on an MR (found by id or by its marker, edited in place) and the
//! `orgvend` commit status (set only when it changes).

use super::{Bot, STATUS_NAME, short};
use crate::aws::Aws;
use crate::core::render;
use crate::core::report::Report;
use crate::gitlab::{CommitStatus, GitLab, MergeRequest, StatusState};
use anyhow::{Context, Result};

impl<G: GitLab, A: Aws> Bot<G, A> {
    pub(crate) fn footer(&self, head: &str) -> String {
        format!(
            "<sub>orgvend · reviewed {} at {} · comment <code>/orgvend plan</code> to review again</sub>",
            render::code(short(head)),
            crate::clock::format_utc(self.ctx.clock.now_ms())
        )
    }

    /// Edits the MR's bot note, or creates it. The note is found by the id kept in the store
    /// or, if the store lost it, by its hidden marker among the bot's notes.
    pub(crate) async fn upsert_note(&self, mr: &MergeRequest, body: &str) -> Result<u64> {
        let (project, iid) = (self.project(), mr.iid);
        let ctx = &self.ctx;
        let mut id = ctx.store.note_id(&project, iid).await?;
        // An MR without comments has no orgvend note to find.
        if id.is_none() && mr.user_notes_count != Some(0) {
            let bot = &ctx.config.gitlab.bot_username;
            let notes = self
                .gitlab
                .notes(&project, iid)
                .await
                .context("looking for orgvend's note")?;
            id = notes
                .iter()
                .find(|n| {
                    !n.system
                        && n.author.username == *bot
                        && n.body.starts_with(render::NOTE_MARKER)
                })
                .map(|n| n.id);
        }
        if let Some(id) = id {
            if self
                .gitlab
                .update_note(&project, iid, id, body)
                .await
                .context("editing orgvend's note")?
            {
                ctx.store.set_note_id(&project, iid, id).await?;
                return Ok(id);
            }
            tracing::info!(
                mr = iid,
                note = id,
                "orgvend's note was deleted: writing a new one"
            );
        }
        let note = self
            .gitlab
            .create_note(&project, iid, body)
            .await
            .context("writing orgvend's note")?;
        ctx.store.set_note_id(&project, iid, note.id).await?;
        Ok(note.id)
    }

    /// Sets the `orgvend` status on a commit, unless it already says exactly that.
    pub(crate) async fn status(
        &self,
        mr: &MergeRequest,
        sha: &str,
        state: StatusState,
        description: &str,
        url: Option<String>,
    ) -> Result<()> {
        let project = self.project();
        let description: String = description.chars().take(255).collect();
        if self.ctx.store.last_status(&project, sha).await?
            == Some((state.as_str().to_string(), description.clone()))
        {
            return Ok(());
        }
        let status = CommitStatus {
            state,
            name: STATUS_NAME.into(),
            description: description.clone(),
            target_url: url,
            git_ref: Some(mr.source_branch.clone()).filter(|b| !b.is_empty()),
        };
        self.gitlab.set_status(&project, sha, &status).await?;
        self.ctx
            .store
            .set_last_status(&project, sha, state.as_str(), &description)
            .await
    }
}

/// The commit status for a review: success only when merging is safe.
pub fn status_of(report: &Report) -> (StatusState, String) {
    let line = render::plain(&render::headline(report).replace('`', "")).into_owned();
    let state = if report.verdict.blocks() {
        StatusState::Failed
    } else {
        StatusState::Success
    };
    (state, line)
}

pub(crate) fn broken_policy_note(error: &str, target: &str, footer: String) -> String {
    format!(
        "{}\n### 🚫 The policy of {} cannot be read\n\n{}\n\nNothing can be checked until the policy on the target branch is fixed (in its own merge request).\n\n{footer}",
        render::NOTE_MARKER,
        render::code(target),
        render::code(error)
    )
}

pub(crate) fn untrusted_policy_note(why: &str, footer: String) -> String {
    format!(
        "{}\n### 🚫 The rules in force were not approved\n\n{}\n\n{footer}",
        render::NOTE_MARKER,
        render::escape::text(why)
    )
}

pub(crate) fn other_branch_note(target: &str, applied: &str, footer: String) -> String {
    format!(
        "{}\n### ➖ Not reviewed: this MR targets {}\n\norgvend reviews and applies only merge requests into {}. Nothing of this MR will reach AWS or GitLab through orgvend; to vend accounts, target {}.\n\n{footer}",
        render::NOTE_MARKER,
        render::code(target),
        render::code(applied),
        render::code(applied)
    )
}
