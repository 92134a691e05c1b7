//! orgvend's own deliveries in the inbox, beside GitLab's webhooks: what marks them (a
//! header no webhook can carry: orgvend keeps only GitLab's own headers of a webhook), and
//! the repairs it queues. `bot::dispatch` acts on a delivery only with its mark.

use crate::gitlab::event::{DRIFT_KEY, DRIFT_KIND};
use crate::store::NewDelivery;
use anyhow::Result;

/// The action of a delivery `orgvend apply --mr N` puts in the inbox.
pub const CLI_APPLY: &str = "orgvend_apply";
/// The header such a delivery carries: a webhook's stored headers never hold it (only the
/// ones orgvend keeps, all GitLab's).
pub const CLI_HEADER: &str = "orgvend-source";
/// The value `drift_if_due` marks its deliveries with.
pub const TIMER: &str = "timer";

/// The mark of a repair asked on the drift issue (the delivery holds who asked; the repair
/// checks them when it runs).
pub const FROM_ISSUE: &str = "drift-issue";

/// Queues a repair (`account`: one, or empty for every drifted account) in the inbox, ordered
/// with the drift runs: asked by `asker` on the drift issue, or else from the command line.
/// The mark is a header no webhook can carry. `asked`: what makes the request one of its
/// own (the comment's id; the time, from the command line).
pub async fn queue_repair(
    store: &crate::store::Store,
    account: &str,
    asker: Option<(u64, &str)>,
    asked: &str,
    now_ms: i64,
) -> Result<i64> {
    let source = if asker.is_some() { FROM_ISSUE } else { "cli" };
    let mut body = serde_json::json!({ "object_kind": DRIFT_KIND, "repair": account });
    if let Some((id, username)) = asker {
        body["asker_id"] = id.into();
        body["asker"] = username.into();
    }
    let inserted = store
        .insert(NewDelivery {
            dedup_key: format!("repair:{source}:{account}:{asked}"),
            received_at_ms: now_ms,
            event_name: "orgvend repair".into(),
            kind: "drift".into(),
            action: "repair".into(),
            ordering_key: Some(DRIFT_KEY.into()),
            ignored: None,
            headers: serde_json::json!({ CLI_HEADER: source }).to_string(),
            body: body.to_string().into(),
        })
        .await?;
    Ok(match inserted {
        crate::store::Inserted::New(id) | crate::store::Inserted::Duplicate(id) => id,
    })
}
