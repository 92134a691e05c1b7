//! `POST /webhooks/gitlab`: authenticate → store durably → answer. Nothing else happens in
//! the request: GitLab waits about 10 s, never retries a failed delivery, and disables a
//! hook that keeps failing. Everything a delivery asks for happens later, in the worker.

use super::auth::{check_headers, check_signature, header};
use super::ctx::Ctx;
use crate::gitlab::event::{self, Event};
use crate::store::{Inserted, NewDelivery};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Headers kept with a delivery (never `X-Gitlab-Token`).
const KEPT_HEADERS: &[&str] = &[
    "x-gitlab-event",
    "idempotency-key",
    "x-gitlab-event-uuid",
    "x-gitlab-webhook-uuid",
    "x-gitlab-instance",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
];

/// What makes two deliveries the same: `Idempotency-Key` (stable across GitLab's resends),
/// else `webhook-id`, else `X-Gitlab-Event-UUID` with the body's hash, else the body's hash.
pub fn dedup_key(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(k) = header(headers, "idempotency-key").filter(|k| !k.is_empty()) {
        return format!("idem:{k}");
    }
    if let Some(k) = header(headers, "webhook-id").filter(|k| !k.is_empty()) {
        return format!("idem:{k}"); // GitLab sends webhook-id equal to Idempotency-Key
    }
    let hash = hex(&Sha256::digest(body));
    match header(headers, "x-gitlab-event-uuid").filter(|k| !k.is_empty()) {
        Some(uuid) => format!("uuid:{uuid}:{hash}"),
        None => format!("body:{hash}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kept_headers(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for name in KEPT_HEADERS {
        if let Some(v) = header(headers, name) {
            map.insert(
                (*name).to_string(),
                serde_json::Value::String(v.chars().take(512).collect()),
            );
        }
    }
    serde_json::Value::Object(map).to_string()
}

fn unauthorized(ctx: &Ctx, headers: &HeaderMap, reason: &str) -> Response {
    ctx.metrics.delivery("unknown", "unknown", "unauthorized");
    tracing::warn!(
        reason,
        event = header(headers, "x-gitlab-event").unwrap_or("-"),
        instance = header(headers, "x-gitlab-instance").unwrap_or("-"),
        "webhook refused: unauthorized"
    );
    (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response()
}

fn answer(status: StatusCode, outcome: &str, id: Option<i64>) -> Response {
    let body = match id {
        Some(id) => serde_json::json!({"status": outcome, "delivery": id}),
        None => serde_json::json!({"status": outcome}),
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The webhook endpoint.
pub async fn receive(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = receive_inner(&ctx, &headers, body).await;
    ctx.metrics.observe_request(started.elapsed());
    response
}

async fn receive_inner(ctx: &Ctx, headers: &HeaderMap, body: Body) -> Response {
    let now_secs = ctx.clock.now_ms() / 1000;
    // The token and the signature's headers first: a stranger's body is never read.
    if let Err(e) = check_headers(headers, &ctx.auth, now_secs) {
        return unauthorized(ctx, headers, e.reason());
    }
    let limit = ctx.config.server.body_limit;
    let declared = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        ctx.metrics.delivery("unknown", "unknown", "too_large");
        tracing::warn!(
            bytes = declared,
            limit,
            "webhook refused: body too large (not read)"
        );
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "too_large", None);
    }
    // Room for the body among all bodies being read (a chunked body may take the limit).
    let wait = Duration::from_secs(ctx.config.server.body_timeout_seconds);
    let want = declared.map_or(limit, |n| n as usize).max(1) as u32;
    let _room = match tokio::time::timeout(wait, ctx.body_budget.acquire_many(want)).await {
        Ok(Ok(permit)) => permit,
        _ => {
            ctx.metrics.delivery("unknown", "unknown", "busy");
            tracing::warn!(
                bytes = want,
                "webhook refused: too many body bytes in flight; GitLab shows a 503"
            );
            return answer(StatusCode::SERVICE_UNAVAILABLE, "busy", None);
        }
    };
    let body: Bytes = match tokio::time::timeout(wait, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            ctx.metrics.delivery("unknown", "unknown", "too_large");
            tracing::warn!(limit, "webhook refused: body too large or broken off");
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "too_large", None);
        }
        Err(_) => {
            ctx.metrics.delivery("unknown", "unknown", "body_timeout");
            tracing::warn!(
                seconds = wait.as_secs(),
                "webhook refused: the body did not arrive in time"
            );
            return answer(StatusCode::REQUEST_TIMEOUT, "body_timeout", None);
        }
    };
    // the headers passed above: what is left is the signature over the body
    if let Err(e) = check_signature(headers, &body, &ctx.auth) {
        return unauthorized(ctx, headers, e.reason());
    }

    let event_name = header(headers, "x-gitlab-event")
        .unwrap_or_default()
        .to_string();
    let event = event::parse(
        Some(&event_name)
            .filter(|e| !e.is_empty())
            .map(String::as_str),
        &body,
    );
    let event = ctx.scope(event);
    let (kind, action) = (event.kind().to_string(), event.action().to_string());
    let ignored = match &event {
        Event::Ignored { reason, .. } => Some(reason.clone()),
        _ => None,
    };
    let delivery = NewDelivery {
        dedup_key: dedup_key(headers, &body),
        received_at_ms: ctx.clock.now_ms(),
        event_name,
        kind: kind.clone(),
        action: action.clone(),
        ordering_key: event.ordering_key(),
        ignored: ignored.clone(),
        headers: kept_headers(headers),
        body,
    };
    match ctx.store.insert(delivery).await {
        Ok(Inserted::New(id)) => {
            let outcome = if ignored.is_some() {
                "ignored"
            } else {
                "accepted"
            };
            ctx.metrics.delivery(&kind, &action, outcome);
            tracing::info!(
                delivery = id,
                kind,
                action,
                outcome,
                reason = ignored.as_deref().unwrap_or(""),
                "webhook stored"
            );
            if ignored.is_none() {
                ctx.wake.notify_one();
            }
            answer(StatusCode::OK, outcome, Some(id))
        }
        Ok(Inserted::Duplicate(id)) => {
            ctx.metrics.delivery(&kind, &action, "duplicate");
            tracing::info!(
                delivery = id,
                kind,
                action,
                "webhook duplicate: already stored"
            );
            answer(StatusCode::OK, "duplicate", Some(id))
        }
        Err(e) => {
            // Not stored: say so, so GitLab's delivery log shows the failure.
            ctx.metrics.delivery(&kind, &action, "store_error");
            tracing::error!(error = %format!("{e:#}"), "webhook NOT stored: the store failed");
            answer(StatusCode::SERVICE_UNAVAILABLE, "store_error", None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const BODY: &[u8] = br#"{"object_kind":"merge_request"}"#;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn dedup_prefers_idempotency_key() {
        let h = headers(&[
            ("idempotency-key", "k1"),
            ("webhook-id", "k1"),
            ("x-gitlab-event-uuid", "u"),
        ]);
        assert_eq!(dedup_key(&h, BODY), "idem:k1");
        assert_eq!(
            dedup_key(&headers(&[("webhook-id", "k1")]), BODY),
            "idem:k1"
        );
        let u1 = dedup_key(&headers(&[("x-gitlab-event-uuid", "u")]), BODY);
        let u2 = dedup_key(&headers(&[("x-gitlab-event-uuid", "u")]), b"{}");
        assert!(u1.starts_with("uuid:u:") && u1 != u2);
        assert!(dedup_key(&HeaderMap::new(), BODY).starts_with("body:"));
    }
}
