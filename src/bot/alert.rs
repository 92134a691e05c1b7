//! A refused merge is never silent: besides the MR's note and the ERROR log line, one GitLab
//! issue per refused MR on the subaccounts project (found again by its label and title, and
//! updated rather than repeated), assigned to whoever merged, and a metric to alert on.

use super::Bot;
use crate::aws::Aws;
use crate::core::render;
use crate::gitlab::{GitLab, MergeRequest, NewIssue};
use anyhow::{Context, Result};

/// The label of orgvend's refusal issues.
pub const REFUSED_LABEL: &str = "orgvend-refused";

fn title(mr: &MergeRequest) -> String {
    format!("orgvend refused to apply !{}", mr.iid)
}

fn description(mr: &MergeRequest, merge_sha: &str, reasons: &[String]) -> String {
    let mut out = format!(
        "{} merged {} as {}, but orgvend did **not** apply it:\n\n",
        mr.merged_by
            .as_ref()
            .map(|u| format!("@{}", render::escape::text(&u.username)))
            .unwrap_or_else(|| "Someone".into()),
        render::escape::text(&mr.web_url),
        render::code(merge_sha),
    );
    for r in reasons {
        out.push_str(&format!("- {}\n", render::inline(r)));
    }
    out.push_str("\nNothing was created or changed in AWS or GitLab. The target branch now declares what was not applied: revert the merge, or fix what is missing in a new merge request. Close this issue once that is done.\n");
    out
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Opens (or updates) the issue that says MR `mr` was merged and refused.
    pub(crate) async fn alert_refused(
        &self,
        mr: &MergeRequest,
        merge_sha: &str,
        reasons: &[String],
    ) -> Result<()> {
        let project = self.project();
        let title = title(mr);
        let body = description(mr, merge_sha, reasons);
        let assignees: Vec<u64> = mr.merged_by.iter().map(|u| u.id).collect();
        let open = self
            .gitlab
            .issues(&project, REFUSED_LABEL)
            .await
            .context("looking for the refusal issue")?;
        match open.iter().find(|i| i.title == title) {
            Some(issue) => self
                .gitlab
                .update_issue(&project, issue.iid, &body, &assignees)
                .await
                .context("updating the refusal issue"),
            None => self
                .gitlab
                .create_issue(
                    &project,
                    &NewIssue {
                        title,
                        description: body,
                        labels: vec!["orgvend".into(), REFUSED_LABEL.into()],
                        assignee_ids: assignees,
                    },
                )
                .await
                .map(drop)
                .context("opening the refusal issue"),
        }
    }
}
