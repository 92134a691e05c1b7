//! Requests by issue, on either backend: one record per issue of the subaccounts project.

use super::Store;
use anyhow::Result;
use serde::Serialize;

/// One request by issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub project: String,
    pub issue_iid: u64,
    /// The issue's author: never an approver of the request's MR.
    pub requester_id: u64,
    pub requester: String,
    pub branch: String,
    pub mr_iid: Option<u64>,
    /// `opened`, `merged`, `closed`, as last seen.
    pub mr_state: Option<String>,
    /// The commit orgvend made on the branch.
    pub commit_sha: Option<String>,
    /// Everyone whose words the request holds (the requester, anyone who edited the issue's
    /// description); only ever added to. None of them counts as an approver.
    pub contributors: Vec<u64>,
    /// orgvend's note on the issue.
    pub note_id: Option<u64>,
    pub updated_at_ms: i64,
}

pub(crate) const REQUEST_COLUMNS: &str = "project, issue_iid, requester_id, requester, branch, mr_iid, mr_state, note_id, updated_at_ms, commit_sha, contributors";

/// The contributors as stored (a JSON array of ids).
pub(crate) fn ids_json(ids: &[u64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn ids_from(json: &str) -> Vec<u64> {
    serde_json::from_str(json).unwrap_or_default()
}

impl Store {
    pub async fn request(&self, project: &str, issue_iid: u64) -> Result<Option<RequestRecord>> {
        each!(self, s => s.request(project.to_string(), issue_iid).await)
    }

    /// The request an MR was opened for, if it was.
    pub async fn request_for_mr(
        &self,
        project: &str,
        mr_iid: u64,
    ) -> Result<Option<RequestRecord>> {
        each!(self, s => s.request_for_mr(project.to_string(), mr_iid).await)
    }

    /// Every request of one requester.
    pub async fn requests_by(
        &self,
        project: &str,
        requester_id: u64,
    ) -> Result<Vec<RequestRecord>> {
        each!(self, s => s.requests_by(project.to_string(), requester_id).await)
    }

    /// Records a request (the requester is kept as first recorded; contributors are added
    /// to what is stored, never replaced).
    pub async fn put_request(&self, mut r: RequestRecord) -> Result<()> {
        crate::hold::check()?;
        // one issue's deliveries are handled one at a time: read, add, write is safe
        if let Some(old) = self.request(&r.project, r.issue_iid).await? {
            for id in old.contributors {
                if !r.contributors.contains(&id) {
                    r.contributors.push(id);
                }
            }
        }
        r.contributors.sort_unstable();
        each!(self, s => s.put_request(r).await)
    }
}
