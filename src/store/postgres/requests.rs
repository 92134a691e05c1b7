//! Requests by issue on PostgreSQL.

use super::PgStore;
use crate::store::RequestRecord;
use crate::store::requests::{REQUEST_COLUMNS, ids_from, ids_json};
use anyhow::Result;
use tokio_postgres::Row;

fn record(r: &Row) -> RequestRecord {
    RequestRecord {
        project: r.get(0),
        issue_iid: r.get::<_, i64>(1) as u64,
        requester_id: r.get::<_, i64>(2) as u64,
        requester: r.get(3),
        branch: r.get(4),
        mr_iid: r.get::<_, Option<i64>>(5).map(|n| n as u64),
        mr_state: r.get(6),
        note_id: r.get::<_, Option<i64>>(7).map(|n| n as u64),
        updated_at_ms: r.get(8),
        commit_sha: r.get(9),
        contributors: ids_from(&r.get::<_, String>(10)),
    }
}

impl PgStore {
    pub async fn request(&self, project: String, issue: u64) -> Result<Option<RequestRecord>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests WHERE project = $1 AND issue_iid = $2"
                ),
                &[&project, &(issue as i64)],
            )
            .await?;
        Ok(row.as_ref().map(record))
    }

    pub async fn request_for_mr(&self, project: String, mr: u64) -> Result<Option<RequestRecord>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE project = $1 AND mr_iid = $2 ORDER BY issue_iid LIMIT 1"),
                &[&project, &(mr as i64)],
            )
            .await?;
        Ok(row.as_ref().map(record))
    }

    pub async fn requests_by(&self, project: String, requester: u64) -> Result<Vec<RequestRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE project = $1 AND requester_id = $2 ORDER BY issue_iid"),
                &[&project, &(requester as i64)],
            )
            .await?;
        Ok(rows.iter().map(record).collect())
    }

    pub async fn put_request(&self, r: RequestRecord) -> Result<()> {
        self.exec(
            &format!(
                "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (project, issue_iid) DO UPDATE SET branch = excluded.branch,
                     mr_iid = coalesce(excluded.mr_iid, requests.mr_iid),
                     mr_state = coalesce(excluded.mr_state, requests.mr_state),
                     note_id = coalesce(excluded.note_id, requests.note_id),
                     commit_sha = coalesce(excluded.commit_sha, requests.commit_sha),
                     contributors = excluded.contributors,
                     updated_at_ms = excluded.updated_at_ms"
            ),
            &[
                &r.project,
                &(r.issue_iid as i64),
                &(r.requester_id as i64),
                &r.requester,
                &r.branch,
                &r.mr_iid.map(|n| n as i64),
                &r.mr_state,
                &r.note_id.map(|n| n as i64),
                &r.updated_at_ms,
                &r.commit_sha,
                &ids_json(&r.contributors),
            ],
        )
        .await
        .map(drop)
    }
}
