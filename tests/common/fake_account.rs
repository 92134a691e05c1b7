//! A fake of the AWS Account Management API (`account`), which moto does not implement:
//! the state model first (names, primary emails, pending email updates with their one-time
//! codes, trusted access), then the REST-JSON routes the SDK calls, with AWS's documented
//! shapes: `POST /putAccountName {AccountId, AccountName}`, `POST /getAccountInformation`,
//! `POST /startPrimaryEmailUpdate {AccountId, PrimaryEmail}` → `{Status: PENDING}`,
//! `POST /acceptPrimaryEmailUpdate {AccountId, Otp, PrimaryEmail}` → `{Status: ACCEPTED}`,
//! `POST /getPrimaryEmail`; errors as `x-amzn-errortype` and `{"message"}`
//! (`AccessDeniedException` 403 without trusted access, `ResourceNotFoundException` 404,
//! `ValidationException` 400, `ConflictException` 409, `TooManyRequestsException` 429).
#![allow(dead_code)]

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub email: String,
}

/// The state behind the API.
#[derive(Debug, Default)]
pub struct AccountApi {
    /// Trusted access for AWS Account Management enabled in the organization.
    pub trusted_access: bool,
    pub accounts: HashMap<String, Account>,
    /// Account → (new email, one-time code) awaiting acceptance.
    pub pending: HashMap<String, (String, String)>,
    /// The one-time codes "mailed": (to, code).
    pub outbox: Vec<(String, String)>,
    /// Calls answered TooManyRequestsException before one goes through.
    pub throttle_next: usize,
    /// Every call, as (operation, account id).
    pub calls: Vec<(String, String)>,
    /// Any 12-digit id is a member account (for stories where the accounts come and go
    /// through moto, which the fake does not see).
    pub any_account: bool,
    next_code: u32,
}

pub struct Failure(StatusCode, &'static str, String);

impl AccountApi {
    pub fn register(&mut self, id: &str, name: &str, email: &str) {
        self.accounts.insert(
            id.to_string(),
            Account {
                name: name.into(),
                email: email.into(),
            },
        );
    }

    fn check(&mut self, op: &str, id: &str) -> Result<(), Failure> {
        self.calls.push((op.into(), id.into()));
        if self.throttle_next > 0 {
            self.throttle_next -= 1;
            return Err(Failure(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate exceeded".into(),
            ));
        }
        if !self.trusted_access {
            return Err(Failure(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "The request failed because the account does not have trusted access enabled for AWS Account Management".into(),
            ));
        }
        if self.any_account
            && id.len() == 12
            && id.bytes().all(|b| b.is_ascii_digit())
            && !self.accounts.contains_key(id)
        {
            self.register(id, "", "");
        }
        if !self.accounts.contains_key(id) {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                format!("Account {id} was not found"),
            ));
        }
        Ok(())
    }

    pub fn put_name(&mut self, id: &str, name: &str) -> Result<(), Failure> {
        self.check("PutAccountName", id)?;
        if name.is_empty() || name.len() > 50 {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "AccountName must be 1 to 50 characters".into(),
            ));
        }
        self.accounts.get_mut(id).expect("checked").name = name.into();
        Ok(())
    }

    pub fn start_email(&mut self, id: &str, email: &str) -> Result<(), Failure> {
        self.check("StartPrimaryEmailUpdate", id)?;
        if !email.contains('@') {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "PrimaryEmail is not an email address".into(),
            ));
        }
        self.next_code += 1;
        let code = format!("{:06}", 314159 + self.next_code * 7919 % 100000);
        self.pending
            .insert(id.into(), (email.to_string(), code.clone()));
        self.outbox.push((email.to_string(), code));
        Ok(())
    }

    pub fn accept_email(&mut self, id: &str, email: &str, otp: &str) -> Result<(), Failure> {
        self.check("AcceptPrimaryEmailUpdate", id)?;
        match self.pending.get(id) {
            Some((e, code)) if e == email && code == otp => {
                self.pending.remove(id);
                self.accounts.get_mut(id).expect("checked").email = email.into();
                Ok(())
            }
            Some(_) => Err(Failure(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "The one-time password or the email does not match".into(),
            )),
            None => Err(Failure(
                StatusCode::CONFLICT,
                "ConflictException",
                "No primary email update is pending for this account".into(),
            )),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (
            self.0,
            [
                ("x-amzn-errortype", self.1),
                ("content-type", "application/json"),
            ],
            json!({ "message": self.2 }).to_string(),
        )
            .into_response()
    }
}

type Shared = Arc<Mutex<AccountApi>>;

fn field<'a>(body: &'a Value, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or_default()
}

async fn put_account_name(State(s): State<Shared>, Json(b): Json<Value>) -> Response {
    match s
        .lock()
        .unwrap()
        .put_name(field(&b, "AccountId"), field(&b, "AccountName"))
    {
        Ok(()) => (StatusCode::OK, Json(json!({}))).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn get_account_information(State(s): State<Shared>, Json(b): Json<Value>) -> Response {
    let mut api = s.lock().unwrap();
    let id = field(&b, "AccountId");
    if let Err(f) = api.check("GetAccountInformation", id) {
        return f.into_response();
    }
    let a = &api.accounts[id];
    Json(json!({ "AccountId": id, "AccountName": a.name, "AccountCreatedDate": 1.7e9 }))
        .into_response()
}

async fn start_primary_email_update(State(s): State<Shared>, Json(b): Json<Value>) -> Response {
    match s
        .lock()
        .unwrap()
        .start_email(field(&b, "AccountId"), field(&b, "PrimaryEmail"))
    {
        Ok(()) => Json(json!({ "Status": "PENDING" })).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn accept_primary_email_update(State(s): State<Shared>, Json(b): Json<Value>) -> Response {
    match s.lock().unwrap().accept_email(
        field(&b, "AccountId"),
        field(&b, "PrimaryEmail"),
        field(&b, "Otp"),
    ) {
        Ok(()) => Json(json!({ "Status": "ACCEPTED" })).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn get_primary_email(State(s): State<Shared>, Json(b): Json<Value>) -> Response {
    let mut api = s.lock().unwrap();
    let id = field(&b, "AccountId");
    if let Err(f) = api.check("GetPrimaryEmail", id) {
        return f.into_response();
    }
    Json(json!({ "PrimaryEmail": api.accounts[id].email })).into_response()
}

/// The fake, listening on a local port.
pub struct FakeAccount {
    pub url: String,
    pub state: Shared,
}

impl FakeAccount {
    pub async fn start() -> FakeAccount {
        let state: Shared = Arc::new(Mutex::new(AccountApi {
            trusted_access: true,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/putAccountName", post(put_account_name))
            .route("/getAccountInformation", post(get_account_information))
            .route("/startPrimaryEmailUpdate", post(start_primary_email_update))
            .route(
                "/acceptPrimaryEmailUpdate",
                post(accept_primary_email_update),
            )
            .route("/getPrimaryEmail", post(get_primary_email))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeAccount { url, state }
    }
}
