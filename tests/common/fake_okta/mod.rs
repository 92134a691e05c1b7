//! A stateful fake Okta: a state model ([`state`]: users, groups and members, apps and their
//! group assignments, group rules that fill their groups after a delay, the credentials it
//! accepts) and an HTTP front ([`routes`]) that answers the management API and the OAuth
//! token endpoint in the shapes of Okta's documentation: `errorCode` bodies, `Link`
//! pagination with `after` cursors, `X-Rate-Limit-*` headers, scopes per endpoint,
//! private-key JWT client assertions and DPoP proofs checked with ring. Faults (429, 500, a
//! create whose answer is lost), a search-index lag and a `Link` to another host can be
//! injected; every call is logged.
#![allow(dead_code)]

mod routes;
mod state;

pub use state::*;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct FakeOkta {
    pub state: Arc<Mutex<OktaState>>,
    pub addr: SocketAddr,
}

impl FakeOkta {
    /// Serves `state` on a loopback port; its `url` is set to that address.
    pub async fn start(mut state: OktaState) -> FakeOkta {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        state.url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(state));
        let app = routes::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeOkta { state, addr }
    }

    /// `http://127.0.0.1:PORT`: the org URL to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut OktaState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Every request received: (method, path with query).
    pub fn calls(&self) -> Vec<(String, String)> {
        self.with(|s| s.calls.clone())
    }

    pub fn clear_calls(&self) {
        self.with(|s| s.calls.clear());
    }
}
