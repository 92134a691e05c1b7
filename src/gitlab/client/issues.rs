//! Notes on merge requests and issues alike, and what a request by issue needs: the issue,
//! the requester's access to the project, one commit on a branch, and the MR opened (or
//! found) from it. [`GitLab`](crate::gitlab::GitLab)'s methods in `api.rs` call these.

use super::{GitlabClient, GitlabError, Posted, Replay, enc, is_not_found};
use crate::gitlab::{Member, MergeRequest, NewCommit, NewMergeRequest, Note};
use anyhow::{Context, Result};
use reqwest::Method;

/// What a note is on: `merge_requests` or `issues` (GitLab's path segment).
#[derive(Clone, Copy)]
pub(super) enum On {
    Mr,
    Issue,
}

impl On {
    fn segment(self) -> &'static str {
        match self {
            On::Mr => "merge_requests",
            On::Issue => "issues",
        }
    }
}

impl GitlabClient {
    pub(super) async fn list_notes(&self, project: &str, on: On, iid: u64) -> Result<Vec<Note>> {
        self.get_all(&format!(
            "/projects/{}/{}/{iid}/notes?sort=asc",
            enc(project),
            on.segment()
        ))
        .await
    }

    pub(super) async fn post_note(
        &self,
        project: &str,
        on: On,
        iid: u64,
        body: &str,
    ) -> Result<Note> {
        let url = self.url(&format!(
            "/projects/{}/{}/{iid}/notes",
            enc(project),
            on.segment()
        ));
        let payload = serde_json::json!({ "body": body });
        let posted = self
            .post_once(
                "creating a note",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    // the bot's own note with this text (a copy by someone else is not it)
                    let me = self.current_user_id().await?;
                    Ok(self
                        .list_notes(project, on, iid)
                        .await?
                        .into_iter()
                        .rev()
                        .find(|n| n.body == body && !n.system && n.author.id == me))
                },
            )
            .await?;
        match posted {
            Posted::Found(n) => Ok(n),
            Posted::Answered(resp) => Self::ok(resp)
                .await?
                .json()
                .await
                .context("reading the created note"),
        }
    }

    pub(super) async fn put_note(
        &self,
        project: &str,
        on: On,
        iid: u64,
        note_id: u64,
        body: &str,
    ) -> Result<bool> {
        let url = self.url(&format!(
            "/projects/{}/{}/{iid}/notes/{note_id}",
            enc(project),
            on.segment()
        ));
        let payload = serde_json::json!({ "body": body });
        match Self::ok(
            self.send(
                || self.http.request(Method::PUT, &url).json(&payload),
                Replay::Safe,
            )
            .await?,
        )
        .await
        {
            Ok(_) => Ok(true),
            // gone, or not the bot's to edit (a note id that is not its own): a new one
            Err(e)
                if is_not_found(&e)
                    || e.downcast_ref::<GitlabError>()
                        .is_some_and(|g| g.status == Some(403)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn current_user_id(&self) -> Result<u64> {
        #[derive(serde::Deserialize)]
        struct Me {
            id: u64,
        }
        Ok(self.get_json::<Me>("/user").await?.id)
    }

    pub(super) async fn get_project_member(
        &self,
        project: &str,
        user_id: u64,
    ) -> Result<Option<Member>> {
        self.get_optional(&format!("/projects/{}/members/all/{user_id}", enc(project)))
            .await
    }

    pub(super) async fn post_commit(&self, project: &str, c: &NewCommit) -> Result<String> {
        let url = self.url(&format!("/projects/{}/repository/commits", enc(project)));
        let actions: Vec<serde_json::Value> = c
            .files
            .iter()
            .map(|(path, content, exists)| {
                serde_json::json!({"action": if *exists { "update" } else { "create" }, "file_path": path, "content": content})
            })
            .collect();
        let payload = serde_json::json!({
            "branch": c.branch, "start_sha": c.start_sha, "force": c.force,
            "commit_message": c.message, "actions": actions,
        });
        #[derive(serde::Deserialize)]
        struct Made {
            id: String,
            #[serde(default)]
            message: String,
        }
        let posted = self
            .post_once(
                "committing to a branch",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    // the message is unique to the content: the branch's head says it landed
                    let head: Option<Made> = self
                        .get_optional(&format!(
                            "/projects/{}/repository/commits/{}",
                            enc(project),
                            enc(&c.branch)
                        ))
                        .await?;
                    Ok(head.filter(|h| h.message.trim_end() == c.message.trim_end()))
                },
            )
            .await?;
        match posted {
            Posted::Found(m) => Ok(m.id),
            Posted::Answered(resp) => Ok(Self::ok(resp)
                .await?
                .json::<Made>()
                .await
                .context("reading the new commit")?
                .id),
        }
    }

    pub(super) async fn post_merge_request(
        &self,
        project: &str,
        mr: &NewMergeRequest,
    ) -> Result<Option<MergeRequest>> {
        let url = self.url(&format!("/projects/{}/merge_requests", enc(project)));
        let payload = serde_json::json!({
            "source_branch": mr.source_branch, "target_branch": mr.target_branch,
            "title": mr.title, "description": mr.description, "labels": mr.labels.join(","),
            "remove_source_branch": mr.remove_source_branch,
        });
        let posted = self
            .post_once(
                "opening a merge request",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    // only what this POST would have made: orgvend's, from this project
                    let me = self.current_user_id().await?;
                    Ok(self
                        .list_from(project, &mr.source_branch)
                        .await?
                        .into_iter()
                        .find(|m| {
                            m.state == "opened"
                                && m.author.id == me
                                && m.target_branch == mr.target_branch
                                && m.source_project_id == m.target_project_id
                        }))
                },
            )
            .await?;
        let resp = match posted {
            Posted::Found(m) => return Ok(Some(m)),
            Posted::Answered(resp) => resp,
        };
        match Self::ok(resp).await {
            Ok(resp) => Ok(Some(
                resp.json().await.context("reading the new merge request")?,
            )),
            // "Another open merge request already exists for this source branch"
            Err(e)
                if e.downcast_ref::<GitlabError>()
                    .is_some_and(|g| g.status == Some(409)) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn list_from(
        &self,
        project: &str,
        source_branch: &str,
    ) -> Result<Vec<MergeRequest>> {
        self.get_all(&format!(
            "/projects/{}/merge_requests?state=all&source_branch={}&order_by=created_at&sort=desc",
            enc(project),
            enc(source_branch)
        ))
        .await
    }

    pub(super) async fn put_merge_request(
        &self,
        project: &str,
        iid: u64,
        title: &str,
        description: &str,
    ) -> Result<()> {
        let payload = serde_json::json!({ "title": title, "description": description });
        self.put_json(
            &format!("/projects/{}/merge_requests/{iid}", enc(project)),
            &payload,
        )
        .await
    }

    /// `POST /projects/:id/archive` (idempotent: replayed safely).
    pub(super) async fn post_archive(&self, project: &str) -> Result<()> {
        let url = self.url(&format!("/projects/{}/archive", enc(project)));
        Self::ok(
            self.send(|| self.http.request(Method::POST, &url), Replay::Safe)
                .await?,
        )
        .await
        .map(drop)
    }

    pub(super) async fn put_issue_state(&self, project: &str, iid: u64, event: &str) -> Result<()> {
        let payload = serde_json::json!({ "state_event": event });
        self.put_json(
            &format!("/projects/{}/issues/{iid}", enc(project)),
            &payload,
        )
        .await
    }
}
