//! `orgvend apply --mr N`: asks the running `orgvend serve` to apply a merged MR that it
//! leaves alone by itself (merged before applying was turned on). A delivery in the inbox,
//! marked as the command line's (a mark no webhook can carry); the gate judges it as any
//! merge.

use crate::bot::inbox::{CLI_APPLY, CLI_HEADER};
use crate::store::{Inserted, NewDelivery, Store};
use anyhow::Result;

/// Puts the request in the inbox; returns the delivery's id.
pub async fn enqueue(store: &Store, iid: u64, now_ms: i64) -> Result<i64> {
    let body = serde_json::json!({
        "object_kind": "merge_request",
        "object_attributes": {"iid": iid, "action": CLI_APPLY},
    });
    let inserted = store
        .insert(NewDelivery {
            dedup_key: format!("cli-apply:{iid}:{now_ms}"),
            received_at_ms: now_ms,
            event_name: "Merge Request Hook".into(),
            kind: "merge_request".into(),
            action: CLI_APPLY.into(),
            ordering_key: Some(crate::gitlab::event::mr_key(iid)),
            ignored: None,
            headers: serde_json::json!({ CLI_HEADER: "cli" }).to_string(),
            body: body.to_string().into(),
        })
        .await?;
    Ok(match inserted {
        Inserted::New(id) | Inserted::Duplicate(id) => id,
    })
}

/// `orgvend apply --account NAME` (`all`: every account with drift): a repair, in the inbox
/// with the drift runs (ordered with them), marked as the command line's.
pub async fn enqueue_repair(store: &Store, account: &str, now_ms: i64) -> Result<i64> {
    let account = if account == "all" { "" } else { account };
    crate::bot::inbox::queue_repair(store, account, None, &now_ms.to_string(), now_ms).await
}
