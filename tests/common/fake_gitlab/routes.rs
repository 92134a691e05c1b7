//! The fake GitLab's HTTP front: GitLab's REST routes over the state model, in the shapes of
//! GitLab's API documentation (JSON bodies, `Link` pagination, the status codes GitLab
//! answers with), with injected faults and latency.

use super::state::*;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

impl FakeProject {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "path": self.path_with_namespace.rsplit('/').next().unwrap(),
            "path_with_namespace": self.path_with_namespace,
            "name": self.path_with_namespace.rsplit('/').next().unwrap(),
            "description": self.description,
            "visibility": self.visibility,
            "default_branch": self.default_branch,
            "web_url": format!("https://gitlab.example.com/{}", self.path_with_namespace),
            "http_url_to_repo": format!("https://gitlab.example.com/{}.git", self.path_with_namespace),
            "namespace": {"id": self.namespace_id},
            "creator_id": self.creator_id,
            "archived": self.archived,
        })
    }
}

impl FakeState {
    pub(super) fn user_json(&self, id: u64) -> Value {
        let u = &self.users[&id];
        json!({"id": u.id, "username": u.username, "name": u.username, "state": "active",
               "avatar_url": null, "web_url": format!("https://gitlab.example.com/{}", u.username), "locked": false})
    }

    fn mr_json(&self, mr: &FakeMr) -> Value {
        json!({
            "id": 1000 + mr.iid, "iid": mr.iid, "project_id": PROJECT_ID, "title": mr.title,
            "description": mr.description, "state": mr.state, "draft": false, "work_in_progress": false,
            "source_branch": mr.source_branch, "target_branch": mr.target_branch,
            "source_project_id": PROJECT_ID, "target_project_id": PROJECT_ID,
            "author": self.user_json(mr.author), "assignees": [], "reviewers": [],
            "labels": mr.labels, "sha": mr.head_sha, "force_remove_source_branch": mr.remove_source_branch, "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": mr.squash_commit_sha, "merged_by": mr.merged_by.map(|u| self.user_json(u)),
            "merge_user": mr.merged_by.map(|u| self.user_json(u)),
            "user_notes_count": mr.notes.iter().filter(|n| !n.system).count(),
            "detailed_merge_status": "mergeable", "merge_status": "can_be_merged", "changes_count": "1",
            "web_url": format!("https://gitlab.example.com/{PROJECT_PATH}/-/merge_requests/{}", mr.iid),
            "diff_refs": {"base_sha": mr.base_sha, "head_sha": mr.head_sha, "start_sha": mr.start_sha},
            "references": {"short": format!("!{}", mr.iid)}, "time_stats": {}, "task_completion_status": {"count": 0},
            "a_field_from_the_future": {"nested": [1, 2, 3]}
        })
    }

    fn diffs(&self, mr: &FakeMr) -> Vec<Value> {
        let base = self.tree_of(&mr.base_sha);
        let head = self.tree_of(&mr.head_sha);
        let mut paths: Vec<&String> = base.keys().chain(head.keys()).collect();
        paths.sort();
        paths.dedup();
        let mut out = Vec::new();
        for path in paths {
            let (a, b) = (base.get(path), head.get(path));
            if a == b {
                continue;
            }
            let text = |id: Option<&String>| {
                id.map(|i| String::from_utf8_lossy(&self.blobs[i]).into_owned())
                    .unwrap_or_default()
            };
            let (old, new) = (text(a), text(b));
            let mut diff = similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .to_string();
            if mr.collapse_diffs {
                diff.clear();
            }
            out.push(json!({
                "old_path": path, "new_path": path, "a_mode": "100644", "b_mode": "100644",
                "new_file": a.is_none(), "renamed_file": false, "deleted_file": b.is_none(),
                "generated_file": false, "diff": diff,
                "collapsed": mr.collapse_diffs, "too_large": false
            }));
        }
        out
    }
}

type S = Arc<Mutex<FakeState>>;

fn err(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"message": message}))).into_response()
}

/// A page of `items` with GitLab's pagination headers.
fn paged(uri: &Uri, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let mut resp = axum::Json(slice).into_response();
    let h = resp.headers_mut();
    h.insert("x-page", page.to_string().parse().unwrap());
    h.insert("x-per-page", per_page.to_string().parse().unwrap());
    h.insert("x-total", items.len().to_string().parse().unwrap());
    h.insert("x-total-pages", total_pages.to_string().parse().unwrap());
    if page < total_pages {
        let mut params: Vec<String> = q
            .iter()
            .filter(|(k, _)| *k != "page")
            .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
            .collect();
        params.push(format!("page={}", page + 1));
        params.sort();
        let next = format!(
            "<http://{}{}?{}>; rel=\"next\"",
            "fake",
            uri.path(),
            params.join("&")
        );
        // a real host, so the client can follow it
        h.insert("x-next-page", (page + 1).to_string().parse().unwrap());
        h.insert("link", next.parse().unwrap());
    }
    resp
}

fn project_ok(id: &str) -> bool {
    id == PROJECT_ID.to_string() || id == PROJECT_PATH
}

async fn gate(state: &S, headers: &HeaderMap, method: &str, uri: &Uri) -> Option<Response> {
    let (fault, latency) = {
        let mut s = state.lock().unwrap();
        s.calls.push((method.to_string(), uri.path().to_string()));
        (s.faults.pop_front(), s.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(Fault::ServerError) => {
            return Some(err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error",
            ));
        }
        Some(Fault::Redirect { to }) => {
            let mut r = (StatusCode::FOUND, "Moved\n").into_response();
            r.headers_mut().insert("location", to.parse().unwrap());
            return Some(r);
        }
        Some(Fault::RateLimited { retry_after_s }) => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "Retry later\n").into_response();
            r.headers_mut()
                .insert("retry-after", retry_after_s.to_string().parse().unwrap());
            return Some(r);
        }
        None => {}
    }
    if headers.get("private-token").and_then(|v| v.to_str().ok()) != Some(BOT_TOKEN) {
        return Some(err(StatusCode::UNAUTHORIZED, "401 Unauthorized"));
    }
    None
}

/// The `Link` header must point at this server: rewrite the placeholder host.
fn fix_link(mut resp: Response, host: Option<&str>) -> Response {
    if let (Some(link), Some(host)) = (
        resp.headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        host,
    ) {
        resp.headers_mut().insert(
            "link",
            link.replace("http://fake", &format!("http://{host}"))
                .parse()
                .unwrap(),
        );
    }
    resp
}

pub(super) fn router(state: S) -> Router {
    Router::new()
        .route(
            "/api/v4/projects/{id}/merge_requests",
            get(list_mrs).post(create_mr),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}",
            get(get_mr).put(update_mr),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}/diffs",
            get(get_diffs),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}/approvals",
            get(get_approvals),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}/notes",
            get(list_notes).post(create_note),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}/notes/{note}",
            axum::routing::put(update_note),
        )
        .route("/api/v4/projects/{id}/repository/tree", get(get_tree))
        .route(
            "/api/v4/projects/{id}/repository/commits/{sha}",
            get(get_commit),
        )
        .route(
            "/api/v4/projects/{id}/repository/blobs/{sha}/raw",
            get(get_blob),
        )
        .route(
            "/api/v4/projects/{id}/repository/files/{path}/raw",
            get(get_file),
        )
        .route(
            "/api/v4/projects/{id}/statuses/{sha}",
            axum::routing::post(post_status),
        )
        .route("/api/v4/groups/{group}/members/all/{user}", get(get_member))
        .route(
            "/api/v4/groups/{group}/members/{user}",
            get(get_direct_member),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}/versions",
            get(get_versions),
        )
        .route(
            "/api/v4/projects/{id}/merge_requests/{iid}/commits",
            get(get_mr_commits),
        )
        .route(
            "/api/v4/projects/{id}/issues",
            get(list_issues).post(create_issue),
        )
        .route(
            "/api/v4/projects/{id}/issues/{iid}",
            get(get_issue).put(update_issue),
        )
        .route(
            "/api/v4/projects/{id}/issues/{iid}/notes",
            get(list_issue_notes).post(create_issue_note),
        )
        .route(
            "/api/v4/projects/{id}/issues/{iid}/notes/{note}",
            axum::routing::put(update_issue_note),
        )
        .route(
            "/api/v4/projects/{id}/members/all/{user}",
            get(get_project_member),
        )
        .route("/api/v4/projects/{id}/hooks", get(list_hooks))
        .route("/api/v4/user", get(get_self))
        .route(
            "/api/v4/projects/{id}/repository/merge_base",
            get(get_merge_base),
        )
        .route("/api/v4/users/{id}", get(get_user))
        .route("/api/v4/personal_access_tokens/self", get(get_token))
        .route("/api/v4/groups/{group}", get(get_group))
        .route("/api/v4/projects", axum::routing::post(create_project))
        .route("/api/v4/projects/{id}", get(get_project))
        .route(
            "/api/v4/projects/{id}/archive",
            axum::routing::post(archive_project),
        )
        .route(
            "/api/v4/projects/{id}/repository/commits",
            axum::routing::post(create_commit),
        )
        .route(
            "/api/v4/projects/{id}/protected_branches",
            axum::routing::post(protect_branch),
        )
        .route(
            "/api/v4/projects/{id}/protected_branches/{name}",
            get(get_protected_branch).delete(unprotect_branch),
        )
        .route(
            "/api/v4/projects/{id}/variables",
            axum::routing::post(create_variable),
        )
        .route(
            "/api/v4/projects/{id}/variables/{key}",
            get(get_variable).put(update_variable),
        )
        .route(
            "/api/v4/projects/{id}/repository/commits/{sha}/statuses",
            get(list_statuses),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            targeted_faults,
        ))
        .with_state(state)
}

fn s_calls(st: &S, method: &str, path: &str) {
    st.lock()
        .unwrap()
        .calls
        .push((method.to_string(), path.to_string()));
}

/// The [`Targeted`] fault layer (and the [`FakeState::link_host`] rewrite).
async fn targeted_faults(
    State(st): State<S>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let fault = {
        let mut s = st.lock().unwrap();
        let hit = s
            .targeted
            .front()
            .is_some_and(|f| f.method == method && path.ends_with(&f.path_ends));
        if hit { s.targeted.pop_front() } else { None }
    };
    if let Some(Targeted {
        acts: false,
        status,
        ..
    }) = &fault
    {
        s_calls(&st, &method, &path);
        let code = StatusCode::from_u16(status.unwrap_or(503)).unwrap();
        return err(code, "503 Service Unavailable");
    }
    let mut answer = next.run(req).await;
    let link_host = st.lock().unwrap().link_host.clone();
    if let (Some(to), Some(link)) = (
        link_host,
        answer
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    ) {
        // <http://HOST/path…>: the host replaced
        let moved = link
            .split(',')
            .map(|part| match part.split_once("://") {
                Some((scheme, rest)) => {
                    let path = rest.find('/').map_or("", |i| &rest[i..]);
                    format!("{scheme}://{to}{path}")
                }
                None => part.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        answer.headers_mut().insert("link", moved.parse().unwrap());
    }
    match fault {
        None => answer,
        Some(Targeted {
            status: Some(code), ..
        }) => err(
            StatusCode::from_u16(code).unwrap(),
            "502 Bad Gateway: the upstream did not answer in time",
        ),
        Some(Targeted { status: None, .. }) => {
            // no answer at all: the client's connection breaks off
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

macro_rules! gated {
    ($state:expr, $headers:expr, $method:expr, $uri:expr) => {
        if let Some(r) = gate(&$state, &$headers, $method, &$uri).await {
            return r;
        }
    };
}

fn host(headers: &HeaderMap) -> Option<String> {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

async fn list_mrs(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return err(StatusCode::NOT_FOUND, "404 Project Not Found");
    }
    let s = st.lock().unwrap();
    let want = q.get("state").cloned().filter(|s| s != "all");
    let target = q.get("target_branch").cloned();
    let source = q.get("source_branch").cloned();
    let items: Vec<Value> = s
        .mrs
        .values()
        .filter(|m| want.as_deref().is_none_or(|w| w == m.state))
        .filter(|m| target.as_deref().is_none_or(|t| t == m.target_branch))
        .filter(|m| source.as_deref().is_none_or(|b| b == m.source_branch))
        .map(|m| s.mr_json(m))
        .collect();
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

async fn get_mr(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    match s.mrs.get(&iid).filter(|_| project_ok(&id)) {
        Some(m) => axum::Json(s.mr_json(m)).into_response(),
        None => err(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

/// GitLab's answer when an MR's branches do not validate: `{"message": [text]}`.
fn branch_error(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({"message": [text]}))).into_response()
}

/// `labels` as a comma-separated string or an array of strings.
fn body_labels(b: &Value) -> Option<Vec<String>> {
    match b.get("labels")? {
        Value::String(l) => Some(
            l.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

/// `POST /projects/:id/merge_requests`: the bot opens an MR.
async fn create_mr(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let mut s = st.lock().unwrap();
    let (Some(source), Some(target), Some(title)) = (
        body_str(&b, "source_branch"),
        body_str(&b, "target_branch"),
        body_str(&b, "title"),
    ) else {
        return err(
            StatusCode::BAD_REQUEST,
            "source_branch, target_branch, title are missing",
        );
    };
    if source == target {
        return branch_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You can't use same project/branch for source and target",
        );
    }
    if !s.branches.contains_key(source) {
        return branch_error(
            StatusCode::BAD_REQUEST,
            &format!("Source branch \"{source}\" does not exist"),
        );
    }
    if !s.branches.contains_key(target) {
        return branch_error(
            StatusCode::BAD_REQUEST,
            &format!("Target branch \"{target}\" does not exist"),
        );
    }
    if let Some(other) = s
        .mrs
        .values()
        .find(|m| m.state == "opened" && m.source_branch == source)
    {
        return branch_error(
            StatusCode::CONFLICT,
            &format!(
                "Another open merge request already exists for this source branch: !{}",
                other.iid
            ),
        );
    }
    let bot = s.bot_user;
    let iid = s.open_mr(bot, title, source, target);
    let m = s.mrs.get_mut(&iid).unwrap();
    m.description = body_str(&b, "description").unwrap_or("").into();
    m.labels = body_labels(&b).unwrap_or_default();
    m.remove_source_branch = body_bool(&b, "remove_source_branch").unwrap_or(false);
    let out = s.mr_json(&s.mrs[&iid]);
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

/// `PUT /projects/:id/merge_requests/:iid`: title, description, labels, `state_event`.
/// A changed description gets GitLab's "changed the description" system note, by the bot.
async fn update_mr(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "PUT", uri);
    let mut s = st.lock().unwrap();
    let bot = s.bot_user;
    let Some(old) = s
        .mrs
        .get(&iid)
        .filter(|_| project_ok(&id))
        .map(|m| m.description.clone())
    else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    if let Some(d) = body_str(&b, "description")
        && d != old
    {
        s.mrs.get_mut(&iid).unwrap().description = d.into();
        let created_ms = s.tick();
        s.next_note += 1;
        let note = FakeNote {
            id: s.next_note,
            author: bot,
            body: "changed the description".into(),
            system: true,
            created_ms,
        };
        s.mrs.get_mut(&iid).unwrap().notes.push(note);
    }
    let m = s.mrs.get_mut(&iid).unwrap();
    if let Some(t) = body_str(&b, "title") {
        m.title = t.into();
    }
    if let Some(l) = body_labels(&b) {
        m.labels = l;
    }
    if let Some(r) = body_bool(&b, "remove_source_branch") {
        m.remove_source_branch = r;
    }
    match body_str(&b, "state_event") {
        Some("close") if m.state == "opened" => m.state = "closed".into(),
        Some("reopen") if m.state == "closed" => m.state = "opened".into(),
        _ => {}
    }
    let out = s.mr_json(&s.mrs[&iid]);
    axum::Json(out).into_response()
}

async fn get_diffs(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    match s.mrs.get(&iid).filter(|_| project_ok(&id)) {
        Some(m) => fix_link(paged(&uri, s.diffs(m), &q), host(&headers).as_deref()),
        None => err(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

async fn get_approvals(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let Some(m) = s.mrs.get(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    let by: Vec<Value> = m
        .approvals
        .iter()
        .map(|u| {
            let mut a = json!({"user": s.user_json(*u)});
            if s.approved_at_in_api {
                a["approved_at"] = json!(m.approved_ms.get(u).map(|t| iso(*t)));
            }
            a
        })
        .collect();
    axum::Json(json!({
        "id": 1000 + iid, "iid": iid, "project_id": PROJECT_ID, "approved": !m.approvals.is_empty(),
        "user_has_approved": false, "user_can_approve": true, "approved_by": by
    }))
    .into_response()
}

fn note_json(s: &FakeState, n: &FakeNote, iid: u64) -> Value {
    noteable_note_json(s, n, "MergeRequest", iid)
}

fn issue_note_json(s: &FakeState, n: &FakeNote, iid: u64) -> Value {
    noteable_note_json(s, n, "Issue", iid)
}

fn noteable_note_json(s: &FakeState, n: &FakeNote, noteable_type: &str, iid: u64) -> Value {
    json!({"id": n.id, "type": null, "body": n.body, "author": s.user_json(n.author), "system": n.system,
           "noteable_type": noteable_type, "noteable_iid": iid, "resolvable": false, "internal": false,
           "created_at": iso(n.created_ms), "updated_at": iso(n.created_ms)})
}

async fn list_notes(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let Some(m) = s.mrs.get(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    let items: Vec<Value> = m.notes.iter().map(|n| note_json(&s, n, iid)).collect();
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

async fn create_note(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    body: axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if text.is_empty() {
        return err(StatusCode::BAD_REQUEST, "400 Bad request - body is missing");
    }
    if text.chars().count() > 1_000_000 {
        return err(
            StatusCode::BAD_REQUEST,
            "Note is too long (maximum is 1000000 characters)",
        );
    }
    let mut s = st.lock().unwrap();
    let created_ms = s.tick();
    s.next_note += 1;
    let note = FakeNote {
        id: s.next_note,
        author: s.bot_user,
        body: text,
        system: false,
        created_ms,
    };
    let Some(m) = s.mrs.get_mut(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    m.notes.push(note.clone());
    (StatusCode::CREATED, axum::Json(note_json(&s, &note, iid))).into_response()
}

async fn update_note(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid, note)): Path<(String, u64, u64)>,
    body: axum::Json<Value>,
) -> Response {
    gated!(st, headers, "PUT", uri);
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if text.chars().count() > 1_000_000 {
        return err(
            StatusCode::BAD_REQUEST,
            "Note is too long (maximum is 1000000 characters)",
        );
    }
    let mut s = st.lock().unwrap();
    let bot = s.bot_user;
    let Some(m) = s.mrs.get_mut(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    let Some(n) = m.notes.iter_mut().find(|n| n.id == note) else {
        return err(StatusCode::NOT_FOUND, "404 Note Not Found");
    };
    if n.author != bot {
        return err(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    n.body = text;
    let n = n.clone();
    axum::Json(note_json(&s, &n, iid)).into_response()
}

async fn get_tree(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let sha = q.get("ref").cloned().unwrap_or_default();
    if let Some(pid) = s.project_id_of(&id) {
        let Some(files) = s.projects[&pid].branches.get(&sha) else {
            return err(StatusCode::NOT_FOUND, "404 Tree Not Found");
        };
        let items: Vec<Value> = files
            .iter()
            .map(|(path, text)| {
                json!({"id": FakeState::blob_id(text.as_bytes()), "name": path.rsplit('/').next().unwrap(),
                    "type": "blob", "path": path, "mode": "100644"})
            })
            .collect();
        return fix_link(paged(&uri, items, &q), host(&headers).as_deref());
    }
    let sha = s.branches.get(&sha).cloned().unwrap_or(sha);
    let Some(tree) = s
        .commits
        .get(&sha)
        .map(|c| &c.tree)
        .filter(|_| project_ok(&id))
    else {
        return err(StatusCode::NOT_FOUND, "404 Tree Not Found");
    };
    let mut items = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for (path, blob) in tree {
        let mut parts: Vec<&str> = path.split('/').collect();
        parts.pop();
        for i in 1..=parts.len() {
            let d = parts[..i].join("/");
            if !dirs.contains(&d) {
                dirs.push(d.clone());
                items.push(json!({"id": "0000000000000000000000000000000000000000", "name": parts[i - 1], "type": "tree", "path": d, "mode": "040000"}));
            }
        }
        let name = path.rsplit('/').next().unwrap();
        items.push(
            json!({"id": blob, "name": name, "type": "blob", "path": path, "mode": "100644"}),
        );
    }
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

async fn get_commit(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, sha)): Path<(String, String)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let sha = s.branches.get(&sha).cloned().unwrap_or(sha);
    match s.commits.get(&sha).filter(|_| project_ok(&id)) {
        Some(c) => axum::Json(commit_json(&s, &sha, c)).into_response(),
        None => err(StatusCode::NOT_FOUND, "404 Commit Not Found"),
    }
}

async fn get_blob(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, sha)): Path<(String, String)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    match s.blobs.get(&sha).filter(|_| project_ok(&id)) {
        Some(b) => b.clone().into_response(),
        None => err(StatusCode::NOT_FOUND, "404 Blob Not Found"),
    }
}

async fn get_file(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let sha = q.get("ref").cloned().unwrap_or_default();
    let sha = s.branches.get(&sha).cloned().unwrap_or(sha);
    match s.file_at(&sha, &path).filter(|_| project_ok(&id)) {
        Some(text) => text.into_response(),
        None => err(StatusCode::NOT_FOUND, "404 File Not Found"),
    }
}

async fn post_status(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, sha)): Path<(String, String)>,
    body: axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let mut s = st.lock().unwrap();
    if !project_ok(&id) || !s.commits.contains_key(&sha) {
        return err(StatusCode::NOT_FOUND, "404 Commit Not Found");
    }
    let state = body
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if ![
        "pending", "running", "success", "failed", "canceled", "skipped",
    ]
    .contains(&state.as_str())
    {
        return err(
            StatusCode::BAD_REQUEST,
            "400 Bad request - state does not have a valid value",
        );
    }
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if description.chars().count() > 255 {
        return err(
            StatusCode::BAD_REQUEST,
            "400 Bad request - description is too long",
        );
    }
    let status = FakeStatus {
        sha: sha.clone(),
        state: state.clone(),
        name: body
            .get("name")
            .or_else(|| body.get("context"))
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string(),
        description,
        target_url: body
            .get("target_url")
            .and_then(Value::as_str)
            .map(str::to_string),
        git_ref: body.get("ref").and_then(Value::as_str).map(str::to_string),
    };
    s.statuses.push(status.clone());
    (StatusCode::CREATED, axum::Json(json!({"id": s.statuses.len(), "sha": sha, "status": state, "name": status.name,
        "description": status.description, "target_url": status.target_url, "ref": status.git_ref, "allow_failure": false})))
        .into_response()
}

async fn get_member(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((group, user)): Path<(String, u64)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let group = group_path(&s, &group);
    match s.member_all(&group, user) {
        Some((state, level)) => {
            let u = &s.users[&user];
            axum::Json(
                json!({"id": u.id, "username": u.username, "name": u.username, "state": state,
                "access_level": level, "expires_at": null, "membership_state": "active"}),
            )
            .into_response()
        }
        None => err(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

fn protection_json(name: &str, p: &FakeProtection) -> Value {
    let level = |l: u32| {
        let description = match l {
            0 => "No one",
            30 => "Developers + Maintainers",
            40 => "Maintainers",
            _ => "Admins",
        };
        json!([{"id": 1, "access_level": l, "access_level_description": description, "user_id": null, "group_id": null}])
    };
    json!({"id": 1, "name": name, "push_access_levels": level(p.push), "merge_access_levels": level(p.merge),
        "unprotect_access_levels": level(40), "allow_force_push": p.allow_force_push, "code_owner_approval_required": false})
}

fn variable_json(key: &str, v: &FakeVariable) -> Value {
    json!({"variable_type": "env_var", "key": key, "value": v.value, "protected": v.protected, "masked": v.masked,
        "hidden": false, "raw": true, "environment_scope": "*", "description": null})
}

fn not_found(what: &str) -> Response {
    err(StatusCode::NOT_FOUND, &format!("404 {what} Not Found"))
}

fn body_str<'a>(b: &'a Value, key: &str) -> Option<&'a str> {
    b.get(key).and_then(Value::as_str)
}

fn body_u32(b: &Value, key: &str) -> Option<u32> {
    b.get(key).and_then(|v| {
        v.as_u64()
            .map(|n| n as u32)
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

fn body_bool(b: &Value, key: &str) -> Option<bool> {
    b.get(key)
        .and_then(|v| v.as_bool().or_else(|| v.as_str().map(|s| s == "true")))
}

async fn get_group(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(group): Path<String>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    match s
        .group_ids
        .iter()
        .find(|(path, id)| **path == group || id.to_string() == group)
    {
        Some((path, id)) => axum::Json(
            json!({"id": id, "full_path": path, "path": path.rsplit('/').next().unwrap()}),
        )
        .into_response(),
        None => not_found("Group"),
    }
}

async fn get_project(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    if project_ok(&id) {
        return axum::Json(
            json!({"id": PROJECT_ID, "path_with_namespace": PROJECT_PATH,
            "default_branch": s.default_branch, "merge_method": s.merge_method.api_name(),
            "squash_option": "default_off",
            "only_allow_merge_if_pipeline_succeeds": s.pipelines_must_succeed,
            "web_url": format!("https://gitlab.example.com/{PROJECT_PATH}")}),
        )
        .into_response();
    }
    match s.project_id_of(&id) {
        Some(pid) => axum::Json(s.projects[&pid].json()).into_response(),
        None => not_found("Project"),
    }
}

/// `POST /projects/:id/archive`: the project, archived (again: unchanged).
async fn archive_project(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let mut s = st.lock().unwrap();
    match s.project_id_of(&id) {
        Some(pid) => {
            let p = s.projects.get_mut(&pid).unwrap();
            p.archived = true;
            (StatusCode::CREATED, axum::Json(p.json())).into_response()
        }
        None => not_found("Project"),
    }
}

async fn create_project(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let mut s = st.lock().unwrap();
    let Some(namespace_id) = b.get("namespace_id").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
    }) else {
        return err(StatusCode::BAD_REQUEST, "namespace_id is missing");
    };
    let Some((group, _)) = s
        .group_ids
        .iter()
        .find(|(_, id)| **id == namespace_id)
        .map(|(p, id)| (p.clone(), *id))
    else {
        return not_found("Namespace");
    };
    let Some(path) = body_str(&b, "path")
        .or(body_str(&b, "name"))
        .map(str::to_string)
    else {
        return err(StatusCode::BAD_REQUEST, "name or path is missing");
    };
    let full = format!("{group}/{path}");
    if s.project_at(&full).is_some() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": {"path": ["has already been taken"], "name": ["has already been taken"]}})),
        )
            .into_response();
    }
    let readme = body_bool(&b, "initialize_with_readme").unwrap_or(false);
    // GitLab honours default_branch only with initialize_with_readme
    let default_branch = match body_str(&b, "default_branch") {
        Some(d) if readme => d.to_string(),
        _ => "main".to_string(),
    };
    let id = 1000 + s.projects.len() as u64;
    let mut p = FakeProject {
        id,
        path_with_namespace: full,
        namespace_id,
        visibility: body_str(&b, "visibility").unwrap_or("private").into(),
        default_branch: default_branch.clone(),
        description: body_str(&b, "description").unwrap_or("").into(),
        creator_id: s.next_project_creator.take().unwrap_or(s.bot_user),
        ..Default::default()
    };
    if readme {
        p.branches.insert(
            default_branch.clone(),
            BTreeMap::from([("README.md".to_string(), format!("# {path}\n"))]),
        );
        if let Some(d) = &s.default_protection {
            p.protected.insert(default_branch, d.clone());
        }
    }
    let out = p.json();
    s.projects.insert(id, p);
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn create_commit(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let mut s = st.lock().unwrap();
    if project_ok(&id) {
        return subaccounts_commit(&mut s, &b);
    }
    let Some(pid) = s.project_id_of(&id) else {
        return not_found("Project");
    };
    let (Some(branch), Some(message), Some(actions)) = (
        body_str(&b, "branch"),
        body_str(&b, "commit_message"),
        b.get("actions").and_then(Value::as_array),
    ) else {
        return err(
            StatusCode::BAD_REQUEST,
            "branch, commit_message, actions are missing",
        );
    };
    let p = s.projects.get_mut(&pid).unwrap();
    let mut files = p.branches.get(branch).cloned().unwrap_or_default();
    for a in actions {
        let (Some(action), Some(path)) = (body_str(a, "action"), body_str(a, "file_path")) else {
            return err(StatusCode::BAD_REQUEST, "action and file_path are required");
        };
        let content = body_str(a, "content").unwrap_or("").to_string();
        match action {
            "create" if files.contains_key(path) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "A file with this name already exists",
                );
            }
            "update" if !files.contains_key(path) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "A file with this name doesn't exist",
                );
            }
            "create" | "update" => {
                files.insert(path.to_string(), content);
            }
            "delete" => {
                files.remove(path);
            }
            other => {
                return err(
                    StatusCode::BAD_REQUEST,
                    &format!("unsupported action {other}"),
                );
            }
        }
    }
    p.branches.insert(branch.to_string(), files);
    p.commits.push((branch.to_string(), message.to_string()));
    let sha = hex(&Sha256::digest(
        format!("{pid} {}", p.commits.len()).as_bytes(),
    ))[..40]
        .to_string();
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": sha, "short_id": &sha[..8], "title": message, "message": message})),
    )
        .into_response()
}

/// A commit to the subaccounts project through the API, by the bot (see
/// [`FakeState::commit_actions`]).
fn subaccounts_commit(s: &mut FakeState, b: &Value) -> Response {
    let (Some(branch), Some(message), Some(raw)) = (
        body_str(b, "branch"),
        body_str(b, "commit_message"),
        b.get("actions").and_then(Value::as_array),
    ) else {
        return err(
            StatusCode::BAD_REQUEST,
            "branch, commit_message, actions are missing",
        );
    };
    let mut actions = Vec::new();
    for a in raw {
        let (Some(action), Some(path)) = (body_str(a, "action"), body_str(a, "file_path")) else {
            return err(StatusCode::BAD_REQUEST, "action and file_path are required");
        };
        actions.push((
            action.to_string(),
            path.to_string(),
            body_str(a, "content").map(str::to_string),
        ));
    }
    let bot = s.bot_user;
    match s.commit_actions(
        bot,
        branch,
        body_str(b, "start_sha").or(body_str(b, "start_branch")),
        body_bool(b, "force").unwrap_or(false),
        message,
        &actions,
    ) {
        Ok(sha) => {
            let parents = s.commits[&sha].parents.clone();
            let title = message.lines().next().unwrap_or_default();
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": sha, "short_id": &sha[..8], "title": title,
                    "message": message, "parent_ids": parents})),
            )
                .into_response()
        }
        Err(e) => err(StatusCode::BAD_REQUEST, &e),
    }
}

async fn get_protected_branch(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let found = if project_ok(&id) {
        s.protected.get(&name)
    } else {
        s.project_id_of(&id)
            .and_then(|pid| s.projects[&pid].protected.get(&name))
    };
    match found {
        Some(p) => axum::Json(protection_json(&name, p)).into_response(),
        None => not_found(""),
    }
}

async fn protect_branch(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let mut s = st.lock().unwrap();
    let Some(pid) = s.project_id_of(&id) else {
        return not_found("Project");
    };
    let Some(name) = body_str(&b, "name").map(str::to_string) else {
        return err(StatusCode::BAD_REQUEST, "name is missing");
    };
    let p = s.projects.get_mut(&pid).unwrap();
    if p.protected.contains_key(&name) {
        return err(
            StatusCode::CONFLICT,
            &format!("Protected branch '{name}' already exists"),
        );
    }
    let prot = FakeProtection {
        push: body_u32(&b, "push_access_level").unwrap_or(40),
        merge: body_u32(&b, "merge_access_level").unwrap_or(40),
        allow_force_push: body_bool(&b, "allow_force_push").unwrap_or(false),
    };
    let out = protection_json(&name, &prot);
    p.protected.insert(name, prot);
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn unprotect_branch(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    gated!(st, headers, "DELETE", uri);
    let mut s = st.lock().unwrap();
    let Some(pid) = s.project_id_of(&id) else {
        return not_found("Project");
    };
    match s.projects.get_mut(&pid).unwrap().protected.remove(&name) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(""),
    }
}

async fn get_variable(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    match s
        .project_id_of(&id)
        .and_then(|pid| s.projects[&pid].variables.get(&key))
    {
        Some(v) => axum::Json(variable_json(&key, v)).into_response(),
        None => not_found("Variable"),
    }
}

fn variable_from(b: &Value, old: Option<&FakeVariable>) -> FakeVariable {
    FakeVariable {
        value: body_str(b, "value")
            .map(str::to_string)
            .or(old.map(|o| o.value.clone()))
            .unwrap_or_default(),
        protected: body_bool(b, "protected")
            .or(old.map(|o| o.protected))
            .unwrap_or(false),
        masked: body_bool(b, "masked")
            .or(old.map(|o| o.masked))
            .unwrap_or(false),
    }
}

async fn create_variable(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let mut s = st.lock().unwrap();
    let Some(pid) = s.project_id_of(&id) else {
        return not_found("Project");
    };
    let Some(key) = body_str(&b, "key").map(str::to_string) else {
        return err(StatusCode::BAD_REQUEST, "key is missing");
    };
    let p = s.projects.get_mut(&pid).unwrap();
    if p.variables.contains_key(&key) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": {"key": [format!("({key}) has already been taken")]}})),
        )
            .into_response();
    }
    let v = variable_from(&b, None);
    let out = variable_json(&key, &v);
    p.variables.insert(key, v);
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn update_variable(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, key)): Path<(String, String)>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "PUT", uri);
    let mut s = st.lock().unwrap();
    let Some(pid) = s.project_id_of(&id) else {
        return not_found("Project");
    };
    let p = s.projects.get_mut(&pid).unwrap();
    let Some(old) = p.variables.get(&key).cloned() else {
        return not_found("Variable");
    };
    let v = variable_from(&b, Some(&old));
    let out = variable_json(&key, &v);
    p.variables.insert(key, v);
    axum::Json(out).into_response()
}

/// A group named by path or numeric id, as its path.
fn group_path(s: &FakeState, group: &str) -> String {
    s.group_ids
        .iter()
        .find(|(_, id)| id.to_string() == group)
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| group.to_string())
}

fn member_json(s: &FakeState, user: u64, state: &str, level: u32) -> Value {
    let u = &s.users[&user];
    json!({"id": u.id, "username": u.username, "name": u.username, "state": state,
        "access_level": level, "expires_at": null, "membership_state": "active"})
}

async fn get_direct_member(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((group, user)): Path<(String, u64)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let group = group_path(&s, &group);
    match s.groups.get(&group).and_then(|g| g.get(&user)) {
        Some((state, level)) => axum::Json(member_json(&s, user, state, *level)).into_response(),
        None => err(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

fn commit_json(s: &FakeState, sha: &str, c: &FakeCommit) -> Value {
    let (name, email) = s
        .users
        .get(&c.author)
        .map(|u| (u.username.clone(), u.email.clone()))
        .unwrap_or_else(|| ("dev".into(), "dev@example.com".into()));
    json!({"id": sha, "short_id": &sha[..8], "title": c.message, "message": format!("{}\n", c.message),
        "parent_ids": c.parents, "author_name": name, "author_email": email,
        "committer_name": name, "committer_email": email,
        "authored_date": iso(c.created_ms), "committed_date": iso(c.created_ms),
        "created_at": iso(c.created_ms)})
}

async fn get_versions(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let Some(m) = s.mrs.get(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    // newest first
    let items: Vec<Value> = m
        .versions
        .iter()
        .rev()
        .map(|v| {
            json!({"id": v.id, "head_commit_sha": v.head_sha, "base_commit_sha": v.base_sha,
                "start_commit_sha": v.start_sha, "created_at": iso(v.created_ms),
                "merge_request_id": 1000 + iid, "state": "collected", "real_size": "1",
                "patch_id_sha": "d504412d5b6e6739647e752aff8e468dde093f2f"})
        })
        .collect();
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

async fn get_mr_commits(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    if !project_ok(&id) || !s.mrs.contains_key(&iid) {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    }
    let items: Vec<Value> = s
        .mr_commits(iid)
        .iter()
        .map(|sha| commit_json(&s, sha, &s.commits[sha]))
        .collect();
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

fn issue_json(s: &FakeState, i: &FakeIssue) -> Value {
    json!({"id": 5000 + i.iid, "iid": i.iid, "project_id": PROJECT_ID, "title": i.title,
        "description": i.description, "state": i.state, "labels": i.labels,
        "assignees": i.assignees.iter().map(|u| s.user_json(*u)).collect::<Vec<_>>(),
        "author": s.user_json(i.author), "confidential": i.confidential,
        "user_notes_count": i.user_notes_count(), "type": "ISSUE", "issue_type": "issue",
        "created_at": iso(i.created_ms()), "updated_at": iso(i.updated_ms()),
        "closed_at": null, "references": {"short": format!("#{}", i.iid)},
        "web_url": format!("https://gitlab.example.com/{PROJECT_PATH}/-/issues/{}", i.iid)})
}

async fn get_issue(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let s = st.lock().unwrap();
    match s.issues.get(&iid) {
        Some(i) => axum::Json(issue_json(&s, i)).into_response(),
        None => err(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

/// The issue's notes, system notes included, oldest first.
async fn list_issue_notes(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    let Some(i) = s.issues.get(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    let items: Vec<Value> = i
        .notes
        .iter()
        .map(|n| issue_note_json(&s, n, iid))
        .collect();
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

async fn create_issue_note(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    body: axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if text.is_empty() {
        return err(StatusCode::BAD_REQUEST, "400 Bad request - body is missing");
    }
    if text.chars().count() > 1_000_000 {
        return err(
            StatusCode::BAD_REQUEST,
            "Note is too long (maximum is 1000000 characters)",
        );
    }
    let mut s = st.lock().unwrap();
    if !project_ok(&id) || !s.issues.contains_key(&iid) {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    }
    let bot = s.bot_user;
    let note_id = s.comment_issue(iid, bot, &text);
    let note = s.issues[&iid]
        .notes
        .iter()
        .find(|n| n.id == note_id)
        .cloned()
        .unwrap();
    (
        StatusCode::CREATED,
        axum::Json(issue_note_json(&s, &note, iid)),
    )
        .into_response()
}

async fn update_issue_note(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid, note)): Path<(String, u64, u64)>,
    body: axum::Json<Value>,
) -> Response {
    gated!(st, headers, "PUT", uri);
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if text.chars().count() > 1_000_000 {
        return err(
            StatusCode::BAD_REQUEST,
            "Note is too long (maximum is 1000000 characters)",
        );
    }
    let mut s = st.lock().unwrap();
    let bot = s.bot_user;
    let Some(i) = s.issues.get_mut(&iid).filter(|_| project_ok(&id)) else {
        return err(StatusCode::NOT_FOUND, "404 Not found");
    };
    let Some(n) = i.notes.iter_mut().find(|n| n.id == note) else {
        return err(StatusCode::NOT_FOUND, "404 Note Not Found");
    };
    if n.author != bot {
        return err(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    n.body = text;
    let n = n.clone();
    axum::Json(issue_note_json(&s, &n, iid)).into_response()
}

/// `GET /projects/:id/members/all/:user` of the subaccounts project: direct, or through its
/// group and that group's ancestors.
async fn get_project_member(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, user)): Path<(String, u64)>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let s = st.lock().unwrap();
    match s.project_member_all(user) {
        Some((state, level)) => axum::Json(member_json(&s, user, &state, level)).into_response(),
        None => err(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

async fn list_issues(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let s = st.lock().unwrap();
    let state = q.get("state").cloned();
    let labels: Vec<String> = q
        .get("labels")
        .map(|l| l.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let search = q.get("search").cloned();
    let items: Vec<Value> = s
        .issues
        .values()
        .filter(|i| {
            state
                .as_deref()
                .is_none_or(|st| st == "all" || st == i.state)
        })
        .filter(|i| labels.iter().all(|l| i.labels.contains(l)))
        .filter(|i| {
            search.as_deref().is_none_or(|t| {
                i.title.to_lowercase().contains(&t.to_lowercase())
                    || i.description.to_lowercase().contains(&t.to_lowercase())
            })
        })
        .map(|i| issue_json(&s, i))
        .collect();
    fix_link(paged(&uri, items, &q), host(&headers).as_deref())
}

fn ids(b: &Value, key: &str) -> Option<Vec<u64>> {
    b.get(key)?
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
}

async fn create_issue(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "POST", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let mut s = st.lock().unwrap();
    let Some(title) = body_str(&b, "title").map(str::to_string) else {
        return err(StatusCode::BAD_REQUEST, "title is missing");
    };
    let iid = s.issues.keys().max().copied().unwrap_or(0) + 1;
    let issue = FakeIssue {
        iid,
        title,
        description: body_str(&b, "description").unwrap_or("").into(),
        state: "opened".into(),
        labels: body_str(&b, "labels")
            .map(|l| l.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        assignees: ids(&b, "assignee_ids").unwrap_or_default(),
        author: s.bot_user,
        notes: vec![],
        confidential: body_bool(&b, "confidential").unwrap_or(false),
    };
    let out = issue_json(&s, &issue);
    s.issues.insert(iid, issue);
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn update_issue(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, iid)): Path<(String, u64)>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    gated!(st, headers, "PUT", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let mut s = st.lock().unwrap();
    let Some(old) = s.issues.get(&iid).map(|i| i.description.clone()) else {
        return not_found("Issue");
    };
    // a changed description: GitLab's "changed the description" system note, by the bot
    if let Some(d) = body_str(&b, "description")
        && d != old
    {
        let bot = s.bot_user;
        s.edit_issue(iid, bot, d);
    }
    let mut issue = s.issues[&iid].clone();
    if let Some(c) = body_bool(&b, "confidential") {
        issue.confidential = c;
    }
    if let Some(t) = body_str(&b, "title") {
        issue.title = t.into();
    }
    if let Some(a) = ids(&b, "assignee_ids") {
        issue.assignees = a;
    }
    match body_str(&b, "state_event") {
        Some("close") => issue.state = "closed".into(),
        Some("reopen") => issue.state = "opened".into(),
        _ => {}
    }
    let out = issue_json(&s, &issue);
    s.issues.insert(iid, issue);
    axum::Json(out).into_response()
}

async fn list_hooks(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let s = st.lock().unwrap();
    let items: Vec<Value> = s
        .hooks
        .iter()
        .map(|h| {
            json!({"id": h.id, "url": h.url, "project_id": PROJECT_ID,
                "merge_requests_events": h.merge_requests_events, "note_events": h.note_events,
                "push_events": false, "issues_events": h.issues_events, "enable_ssl_verification": true,
                "token_present": h.token, "signing_token_present": false})
        })
        .collect();
    axum::Json(items).into_response()
}

async fn get_self(State(st): State<S>, headers: HeaderMap, uri: Uri) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    axum::Json(s.user_json(s.bot_user)).into_response()
}

async fn get_user(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<u64>,
) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    match s.users.get(&id) {
        Some(u) => {
            let mut j = s.user_json(id);
            j["public_email"] = json!(u.email);
            axum::Json(j).into_response()
        }
        None => not_found("User"),
    }
}

async fn get_token(State(st): State<S>, headers: HeaderMap, uri: Uri) -> Response {
    gated!(st, headers, "GET", uri);
    let s = st.lock().unwrap();
    axum::Json(
        json!({"id": 1, "name": "orgvend", "revoked": false, "active": true,
        "scopes": s.token_scopes, "user_id": s.bot_user, "expires_at": "2027-11-24"}),
    )
    .into_response()
}

/// `refs[]=a&refs[]=b`: the newest common ancestor (along first parents of the first).
async fn get_merge_base(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return not_found("Project");
    }
    let s = st.lock().unwrap();
    let refs: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| urlencoding::decode(k).is_ok_and(|k| k == "refs[]"))
        .map(|(_, v)| urlencoding::decode(v).unwrap().into_owned())
        .map(|r| s.branches.get(&r).cloned().unwrap_or(r))
        .collect();
    if refs.len() != 2 || !refs.iter().all(|r| s.commits.contains_key(r)) {
        return err(StatusCode::BAD_REQUEST, "refs must name two commits");
    }
    let base = s.merge_base(&refs[1], &refs[0]);
    match s.commits.get(&base) {
        Some(c) if s.is_ancestor(&base, &refs[0]) => {
            axum::Json(commit_json(&s, &base, c)).into_response()
        }
        _ => not_found("Merge Base"),
    }
}

async fn list_statuses(
    State(st): State<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, sha)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    gated!(st, headers, "GET", uri);
    if !project_ok(&id) {
        return err(StatusCode::NOT_FOUND, "404 Project Not Found");
    }
    let s = st.lock().unwrap();
    let mut seen: Vec<Value> = s
        .statuses
        .iter()
        .enumerate()
        .filter(|(_, st)| st.sha == sha)
        .filter(|(_, st)| q.get("name").is_none_or(|n| *n == st.name))
        .map(|(i, st)| {
            json!({"id": i + 1, "sha": st.sha, "status": st.state, "name": st.name,
                "description": st.description, "target_url": st.target_url, "ref": st.git_ref})
        })
        .collect();
    if q.get("sort").map(String::as_str) == Some("desc") {
        seen.reverse();
    }
    fix_link(paged(&uri, seen, &q), host(&headers).as_deref())
}
