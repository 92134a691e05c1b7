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
    /// orgvend's note on the issue.
    pub note_id: Option<u64>,
    pub updated_at_ms: i64,
}

pub(crate) const REQUEST_COLUMNS: &str =
    "project, issue_iid, requester_id, requester, branch, mr_iid, mr_state, note_id, updated_at_ms";

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

    /// Records a request (the requester is kept as first recorded).
    pub async fn put_request(&self, r: RequestRecord) -> Result<()> {
        crate::hold::check()?;
        each!(self, s => s.put_request(r).await)
    }
}
