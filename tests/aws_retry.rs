//! One retry layer per AWS call, configured once: the SDK's standard retry tries a read
//! `max_attempts` times, and never sends `CreateAccount` a second time (a lost answer would
//! start a second creation); a call without an answer is `Unanswered`, which the worker
//! retries. Against a local endpoint that fails on purpose, counting what reaches it.

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use orgvend::aws::sdk::{AwsTarget, SdkAws, UNANSWERED};
use orgvend::aws::{Aws, AwsError, NewAccount, is_retryable};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// An Organizations endpoint that answers every call 500 `ServiceException`, or, with
/// `silent`, takes the request and never answers.
async fn failing_endpoint(silent: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let counter = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            let op = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .rsplit('.')
                .next()
                .unwrap_or("-")
                .to_string();
            *counter.lock().unwrap().entry(op).or_default() += 1;
            if silent {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "application/x-amz-json-1.1")],
                r#"{"__type":"ServiceException","Message":"AWS Organizations can't complete your request because it encountered an internal error"}"#,
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn aws(url: &str) -> SdkAws {
    SdkAws::new(&AwsTarget {
        region: "us-east-1".into(),
        endpoint_url: Some(url.into()),
        static_keys: Some(("AKIAORGVENDTESTING".into(), "testing".into())),
        account_endpoint_url: None,
        max_attempts: 3,
        attempt_timeout: Duration::from_secs(1),
    })
    .await
}

fn account() -> NewAccount {
    NewAccount {
        name: "client-zeta".into(),
        email: "aws+client-zeta@example.com".into(),
        role_name: "OrganizationAccountAccessRole".into(),
        tags: Default::default(),
    }
}

fn code(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<AwsError>())
        .and_then(|a| a.code.clone())
}

#[tokio::test]
async fn reads_are_retried_by_the_sdk_and_create_account_never_is() {
    let (url, seen) = failing_endpoint(false).await;
    let aws = aws(&url).await;
    let e = aws.list_accounts().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ServiceException"));
    assert!(is_retryable(&e), "the worker tries again later");
    let e = aws.create_account(&account()).await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ServiceException"));
    assert!(is_retryable(&e));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.get("ListAccounts"), Some(&3), "{seen:?}");
    assert_eq!(seen.get("CreateAccount"), Some(&1), "{seen:?}");
}

#[tokio::test]
async fn a_call_without_an_answer_is_unanswered_and_create_account_is_sent_once() {
    let (url, seen) = failing_endpoint(true).await;
    let aws = aws(&url).await;
    let e = aws.create_account(&account()).await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some(UNANSWERED), "{e:#}");
    assert!(is_retryable(&e));
    assert_eq!(seen.lock().unwrap().get("CreateAccount"), Some(&1));
}
