//! A stateful fake GitLab: a state model ([`state`]: commits, branches, merge requests,
//! approvals, groups, notes, commit statuses) and an HTTP front ([`routes`]) that answers the
//! REST calls orgvend makes, in the shapes of GitLab's API documentation
//! (`reference/gitlab-api.md`): `Link` pagination, 404 for non-members, 401 without the
//! token, 409/400 where GitLab refuses. Faults (500, 429 with `Retry-After`) and latency can
//! be injected; every call is logged. [`hooks`] builds the webhook payloads GitLab would
//! send for issues and their comments.
#![allow(dead_code)]

pub mod hooks;
mod routes;
mod state;

pub use state::*;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct FakeGitlab {
    pub state: Arc<Mutex<FakeState>>,
    pub addr: SocketAddr,
}

impl FakeGitlab {
    pub async fn start(state: FakeState) -> FakeGitlab {
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = routes::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGitlab { state, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn calls(&self) -> Vec<(String, String)> {
        self.with(|s| s.calls.clone())
    }

    pub fn clear_calls(&self) {
        self.with(|s| s.calls.clear());
    }
}
