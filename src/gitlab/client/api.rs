//! The endpoints orgvend calls, as [`GitLab`] on [`GitlabClient`]: one request (or one
//! paginated listing) each, in the shapes of GitLab's REST API documentation.

use super::issues::On;
use super::{GitlabClient, GitlabError, Posted, Replay, enc, is_not_found};
use crate::gitlab::{
    Approval, CiVariable, Commit, CommitStatus, FileDiff, GitLab, Group, Hook, Issue, Member,
    MergeRequest, MrSummary, MrVersion, NewCommit, NewIssue, NewMergeRequest, NewProject, Note,
    Profile, Project, Protection, TreeEntry, User,
};
use anyhow::{Context, Result, anyhow};
use reqwest::Method;

#[derive(serde::Deserialize)]
struct Approvals {
    #[serde(default)]
    approved_by: Vec<Approval>,
}

impl GitLab for GitlabClient {
    async fn merge_request(&self, project: &str, iid: u64) -> Result<MergeRequest> {
        self.get_json(&format!("/projects/{}/merge_requests/{iid}", enc(project)))
            .await
    }

    async fn merge_request_diffs(&self, project: &str, iid: u64) -> Result<Vec<FileDiff>> {
        self.get_all(&format!(
            "/projects/{}/merge_requests/{iid}/diffs",
            enc(project)
        ))
        .await
    }

    async fn tree(&self, project: &str, sha: &str) -> Result<Vec<TreeEntry>> {
        self.get_all(&format!(
            "/projects/{}/repository/tree?recursive=true&ref={}",
            enc(project),
            enc(sha)
        ))
        .await
    }

    async fn blob(&self, project: &str, blob_id: &str) -> Result<Vec<u8>> {
        let url = self.url(&format!(
            "/projects/{}/repository/blobs/{}/raw",
            enc(project),
            enc(blob_id)
        ));
        let resp = Self::ok(self.send(|| self.http.get(&url), Replay::Safe).await?).await?;
        Ok(resp.bytes().await?.to_vec())
    }

    async fn file(&self, project: &str, path: &str, sha: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(&format!(
            "/projects/{}/repository/files/{}/raw?ref={}",
            enc(project),
            enc(path),
            enc(sha)
        ));
        match Self::ok(self.send(|| self.http.get(&url), Replay::Safe).await?).await {
            Ok(resp) => Ok(Some(resp.bytes().await?.to_vec())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn approvals(&self, project: &str, iid: u64) -> Result<Vec<Approval>> {
        let a: Approvals = self
            .get_json(&format!(
                "/projects/{}/merge_requests/{iid}/approvals",
                enc(project)
            ))
            .await?;
        Ok(a.approved_by)
    }

    async fn group_member(&self, group: &str, user_id: u64) -> Result<Option<Member>> {
        match self
            .get_json(&format!("/groups/{}/members/all/{user_id}", enc(group)))
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn group_member_direct(&self, group: &str, user_id: u64) -> Result<Option<Member>> {
        self.get_optional(&format!("/groups/{}/members/{user_id}", enc(group)))
            .await
    }

    async fn merge_request_versions(&self, project: &str, iid: u64) -> Result<Vec<MrVersion>> {
        self.get_all(&format!(
            "/projects/{}/merge_requests/{iid}/versions",
            enc(project)
        ))
        .await
    }

    async fn merge_request_commits(&self, project: &str, iid: u64) -> Result<Vec<Commit>> {
        self.get_all(&format!(
            "/projects/{}/merge_requests/{iid}/commits",
            enc(project)
        ))
        .await
    }

    async fn merge_base(&self, project: &str, a: &str, b: &str) -> Result<Option<String>> {
        let c: Option<Commit> = self
            .get_optional(&format!(
                "/projects/{}/repository/merge_base?refs[]={}&refs[]={}",
                enc(project),
                enc(a),
                enc(b)
            ))
            .await?;
        Ok(c.map(|c| c.id))
    }

    async fn current_user(&self) -> Result<User> {
        self.get_json("/user").await
    }

    async fn profile(&self, user_id: u64) -> Result<Option<Profile>> {
        self.get_optional(&format!("/users/{user_id}")).await
    }

    async fn issues(&self, project: &str, label: &str) -> Result<Vec<Issue>> {
        self.get_all(&format!(
            "/projects/{}/issues?state=opened&labels={}",
            enc(project),
            enc(label)
        ))
        .await
    }

    async fn create_issue(&self, project: &str, issue: &NewIssue) -> Result<Issue> {
        let url = self.url(&format!("/projects/{}/issues", enc(project)));
        let payload = serde_json::json!({
            "title": issue.title,
            "description": issue.description,
            "labels": issue.labels.join(","),
            "assignee_ids": issue.assignee_ids,
        });
        let posted = self
            .post_once(
                "creating an issue",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    let label = issue.labels.first().map(String::as_str).unwrap_or_default();
                    Ok(self
                        .issues(project, label)
                        .await?
                        .into_iter()
                        .find(|i| i.title == issue.title))
                },
            )
            .await?;
        match posted {
            Posted::Found(i) => Ok(i),
            Posted::Answered(resp) => Self::ok(resp)
                .await?
                .json()
                .await
                .context("reading the created issue"),
        }
    }

    async fn update_issue(
        &self,
        project: &str,
        iid: u64,
        description: &str,
        assignee_ids: &[u64],
    ) -> Result<()> {
        let payload = serde_json::json!({
            "description": description,
            "assignee_ids": assignee_ids,
        });
        self.put_json(
            &format!("/projects/{}/issues/{iid}", enc(project)),
            &payload,
        )
        .await
    }

    async fn close_issue(&self, project: &str, iid: u64) -> Result<()> {
        self.put_issue_state(project, iid, "close").await
    }

    async fn archive_project(&self, project: &str) -> Result<()> {
        self.post_archive(project).await
    }

    async fn hooks(&self, project: &str) -> Result<Vec<Hook>> {
        self.get_all(&format!("/projects/{}/hooks", enc(project)))
            .await
    }

    async fn token_scopes(&self) -> Result<Option<Vec<String>>> {
        #[derive(serde::Deserialize)]
        struct TokenSelf {
            #[serde(default)]
            scopes: Vec<String>,
        }
        let t: Option<TokenSelf> = self.get_optional("/personal_access_tokens/self").await?;
        Ok(t.map(|t| t.scopes))
    }

    async fn notes(&self, project: &str, iid: u64) -> Result<Vec<Note>> {
        self.list_notes(project, On::Mr, iid).await
    }

    async fn create_note(&self, project: &str, iid: u64, body: &str) -> Result<Note> {
        self.post_note(project, On::Mr, iid, body).await
    }

    async fn update_note(&self, project: &str, iid: u64, note_id: u64, body: &str) -> Result<bool> {
        self.put_note(project, On::Mr, iid, note_id, body).await
    }

    async fn issue(&self, project: &str, iid: u64) -> Result<Option<Issue>> {
        self.get_optional(&format!("/projects/{}/issues/{iid}", enc(project)))
            .await
    }

    async fn issue_notes(&self, project: &str, iid: u64) -> Result<Vec<Note>> {
        self.list_notes(project, On::Issue, iid).await
    }

    async fn create_issue_note(&self, project: &str, iid: u64, body: &str) -> Result<Note> {
        self.post_note(project, On::Issue, iid, body).await
    }

    async fn update_issue_note(
        &self,
        project: &str,
        iid: u64,
        note_id: u64,
        body: &str,
    ) -> Result<bool> {
        self.put_note(project, On::Issue, iid, note_id, body).await
    }

    async fn project_member(&self, project: &str, user_id: u64) -> Result<Option<Member>> {
        self.get_project_member(project, user_id).await
    }

    async fn commit_to_branch(&self, project: &str, commit: &NewCommit) -> Result<String> {
        self.post_commit(project, commit).await
    }

    async fn create_merge_request(
        &self,
        project: &str,
        mr: &NewMergeRequest,
    ) -> Result<Option<MergeRequest>> {
        self.post_merge_request(project, mr).await
    }

    async fn merge_requests_from(
        &self,
        project: &str,
        source_branch: &str,
    ) -> Result<Vec<MergeRequest>> {
        self.list_from(project, source_branch).await
    }

    async fn update_merge_request(
        &self,
        project: &str,
        iid: u64,
        title: &str,
        description: &str,
    ) -> Result<()> {
        self.put_merge_request(project, iid, title, description)
            .await
    }

    async fn set_status(&self, project: &str, sha: &str, status: &CommitStatus) -> Result<()> {
        let url = self.url(&format!("/projects/{}/statuses/{}", enc(project), enc(sha)));
        let mut payload = serde_json::json!({
            "state": status.state.as_str(),
            "name": status.name,
            "description": status.description.chars().take(255).collect::<String>(),
        });
        if let Some(u) = &status.target_url {
            payload["target_url"] = serde_json::json!(u.chars().take(255).collect::<String>());
        }
        if let Some(r) = &status.git_ref {
            payload["ref"] = serde_json::json!(r);
        }
        let posted = self
            .post_once(
                "setting a commit status",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    // the newest status of that name says whether the POST landed
                    #[derive(serde::Deserialize)]
                    struct Seen {
                        status: String,
                        name: String,
                        #[serde(default)]
                        description: Option<String>,
                    }
                    let seen: Vec<Seen> = self
                        .get_json(&format!(
                            "/projects/{}/repository/commits/{}/statuses?name={}&all=true&order_by=id&sort=desc&per_page=20",
                            enc(project),
                            enc(sha),
                            enc(&status.name)
                        ))
                        .await?;
                    let landed = seen.into_iter().find(|s| s.name == status.name).is_some_and(|s| {
                        s.status == status.state.as_str()
                            && s.description.as_deref().unwrap_or_default() == payload["description"]
                    });
                    Ok(landed.then_some(()))
                },
            )
            .await
            .map_err(|e| anyhow!("setting the commit status of {sha}: {e:#}"))?;
        match posted {
            Posted::Found(()) => Ok(()),
            Posted::Answered(resp) => Self::ok(resp)
                .await
                .map(drop)
                .map_err(|e| anyhow!("setting the commit status of {sha}: {e:#}")),
        }
    }

    async fn open_merge_requests(&self, project: &str) -> Result<Vec<MrSummary>> {
        self.get_all(&format!(
            "/projects/{}/merge_requests?state=opened",
            enc(project)
        ))
        .await
    }

    async fn merged_merge_requests(&self, project: &str, since: &str) -> Result<Vec<MrSummary>> {
        self.get_all(&format!(
            "/projects/{}/merge_requests?state=merged&updated_after={}",
            enc(project),
            enc(since)
        ))
        .await
    }

    async fn commit(&self, project: &str, sha: &str) -> Result<Commit> {
        self.get_json(&format!(
            "/projects/{}/repository/commits/{}",
            enc(project),
            enc(sha)
        ))
        .await
    }

    async fn group(&self, path: &str) -> Result<Option<Group>> {
        match self.get_json(&format!("/groups/{}", enc(path))).await {
            Ok(g) => Ok(Some(g)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn project(&self, path: &str) -> Result<Option<Project>> {
        match self.get_json(&format!("/projects/{}", enc(path))).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_project(&self, p: &NewProject) -> Result<Project> {
        let url = self.url("/projects");
        let payload = serde_json::json!({
            "name": p.name, "path": p.path, "namespace_id": p.namespace_id, "description": p.description,
            "visibility": p.visibility, "initialize_with_readme": true, "default_branch": "master",
        });
        let full_path = format!("{}/{}", p.namespace, p.path);
        let posted = self
            .post_once(
                "creating a project",
                || self.http.request(Method::POST, &url).json(&payload),
                || self.project(&full_path),
            )
            .await?;
        match posted {
            Posted::Found(p) => Ok(p),
            Posted::Answered(resp) => Self::ok(resp)
                .await?
                .json()
                .await
                .context("reading the created project"),
        }
    }

    async fn commit_files(
        &self,
        project: &str,
        branch: &str,
        message: &str,
        files: &[(String, String, bool)],
    ) -> Result<()> {
        let url = self.url(&format!("/projects/{}/repository/commits", enc(project)));
        let actions: Vec<serde_json::Value> = files
            .iter()
            .map(|(path, content, exists)| {
                serde_json::json!({"action": if *exists { "update" } else { "create" }, "file_path": path, "content": content})
            })
            .collect();
        let payload =
            serde_json::json!({"branch": branch, "commit_message": message, "actions": actions});
        let posted = self
            .post_once(
                "committing files",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    // landed when every file is on the branch (a template's files are new)
                    let tree = self.tree(project, branch).await?;
                    let landed = !files.is_empty()
                        && files
                            .iter()
                            .all(|(path, _, _)| tree.iter().any(|e| e.path == *path));
                    Ok(landed.then_some(()))
                },
            )
            .await?;
        match posted {
            Posted::Found(()) => Ok(()),
            Posted::Answered(resp) => Self::ok(resp).await.map(drop),
        }
    }

    async fn protected_branch(&self, project: &str, branch: &str) -> Result<Option<Protection>> {
        #[derive(serde::Deserialize)]
        struct Level {
            access_level: Option<u32>,
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(default)]
            push_access_levels: Vec<Level>,
            #[serde(default)]
            merge_access_levels: Vec<Level>,
            #[serde(default)]
            allow_force_push: bool,
        }
        let path = format!(
            "/projects/{}/protected_branches/{}",
            enc(project),
            enc(branch)
        );
        match self.get_json::<Raw>(&path).await {
            Ok(r) => Ok(Some(Protection {
                push: r
                    .push_access_levels
                    .iter()
                    .filter_map(|l| l.access_level)
                    .collect(),
                merge: r
                    .merge_access_levels
                    .iter()
                    .filter_map(|l| l.access_level)
                    .collect(),
                allow_force_push: r.allow_force_push,
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn protect_branch(&self, project: &str, branch: &str, p: &Protection) -> Result<bool> {
        let url = self.url(&format!("/projects/{}/protected_branches", enc(project)));
        let payload = serde_json::json!({
            "name": branch,
            "push_access_level": p.push.first().copied().unwrap_or(0),
            "merge_access_level": p.merge.first().copied().unwrap_or(40),
            "allow_force_push": p.allow_force_push,
        });
        let posted = self
            .post_once(
                "protecting a branch",
                || self.http.request(Method::POST, &url).json(&payload),
                || async {
                    Ok(self
                        .protected_branch(project, branch)
                        .await?
                        .filter(|have| have == p)
                        .map(|_| ()))
                },
            )
            .await?;
        let resp = match posted {
            Posted::Found(()) => return Ok(true),
            Posted::Answered(resp) => resp,
        };
        match Self::ok(resp).await {
            Ok(_) => Ok(true),
            Err(e)
                if e.downcast_ref::<GitlabError>()
                    .is_some_and(|g| g.status == Some(409)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn unprotect_branch(&self, project: &str, branch: &str) -> Result<()> {
        let url = self.url(&format!(
            "/projects/{}/protected_branches/{}",
            enc(project),
            enc(branch)
        ));
        match Self::ok(
            self.send(|| self.http.request(Method::DELETE, &url), Replay::Safe)
                .await?,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn variable(&self, project: &str, key: &str) -> Result<Option<CiVariable>> {
        match self
            .get_json(&format!(
                "/projects/{}/variables/{}",
                enc(project),
                enc(key)
            ))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_variable(&self, project: &str, v: &CiVariable, exists: bool) -> Result<()> {
        let payload = serde_json::json!({"key": v.key, "value": v.value, "protected": v.protected, "masked": v.masked, "raw": true});
        let (method, url) = if exists {
            (
                Method::PUT,
                self.url(&format!(
                    "/projects/{}/variables/{}",
                    enc(project),
                    enc(&v.key)
                )),
            )
        } else {
            (
                Method::POST,
                self.url(&format!("/projects/{}/variables", enc(project))),
            )
        };
        if exists {
            return Self::ok(
                self.send(
                    || self.http.request(method.clone(), &url).json(&payload),
                    Replay::Safe,
                )
                .await?,
            )
            .await
            .map(drop);
        }
        let posted = self
            .post_once(
                "creating a CI/CD variable",
                || self.http.request(method.clone(), &url).json(&payload),
                || async {
                    Ok(self
                        .variable(project, &v.key)
                        .await?
                        .filter(|have| have == v)
                        .map(|_| ()))
                },
            )
            .await?;
        match posted {
            Posted::Found(()) => Ok(()),
            Posted::Answered(resp) => Self::ok(resp).await.map(drop),
        }
    }
}
