//! What a delivery does: the bot reviews MRs of the subaccounts project and applies their
//! merges. The only floor that knows GitLab and AWS together; it gathers facts, calls the
//! core, and acts.

/// A refused merge made visible: one GitLab issue per refused MR.
pub mod alert;
/// The apply on merge: gate, ledger, run, and the steps by area.
pub mod apply;
/// The worker's `Handler`: which event leads to what.
pub mod dispatch;
/// Drift on a schedule: the target branch against the organization, one issue kept up to date.
pub mod drift;
/// An MR's approvers and facts, from the API, for the core.
pub mod facts;
/// orgvend's own deliveries: their marks, and the repairs it queues.
pub mod inbox;
/// The one bot note per MR and the `orgvend` commit status.
pub mod note;
/// The rules in force: the target branch's policy, trusted only once accepted.
pub mod policy;
/// Work no delivery announced, found on a timer.
pub mod reconcile;
/// Reading the subaccounts project (trees, blobs, the head as base + diffs), cached.
pub mod repo;
/// Requests by GitLab issue: the note, the request's branch and MR.
pub mod request;
/// The review of an open MR.
pub mod review;

use crate::aws::Aws;
use crate::gitlab::GitLab;
use crate::serve::ctx::Ctx;
use std::sync::Arc;

/// Runs CPU-heavy work — reading declarations, checking, rendering — on tokio's blocking
/// pool, off the async runtime, so a review of 50,000 accounts never delays a webhook's
/// answer. A panic in `f` is the caller's panic (the worker counts it a failed attempt).
pub(crate) async fn off_runtime<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(t) => t,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the blocking pool dropped a task: {e}"),
    }
}

/// The policy directory at the root of the subaccounts repository.
pub const POLICY_DIR: &str = "policies";
/// The commit status's name.
pub const STATUS_NAME: &str = "orgvend";

/// The bot: reviews MRs and applies merges.
pub struct Bot<G, A = crate::aws::sdk::SdkAws> {
    pub ctx: Arc<Ctx>,
    pub gitlab: Arc<G>,
    pub cache: repo::Cache,
    /// Applying merges; `None` reviews only.
    pub applier: Option<apply::Applier<A>>,
    /// Bootstrapping each new account's repository; `None` skips it.
    pub bootstrap: Option<apply::steps::repository::Bootstrap>,
    /// The branch orgvend reviews and applies, and when it was read.
    target: tokio::sync::Mutex<Option<(String, i64)>>,
    /// orgvend's own GitLab user, once read.
    bot_user: tokio::sync::OnceCell<u64>,
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    pub fn new(ctx: Arc<Ctx>, gitlab: G) -> Bot<G, A> {
        Bot {
            ctx,
            gitlab: Arc::new(gitlab),
            cache: repo::Cache::default(),
            applier: None,
            bootstrap: None,
            target: tokio::sync::Mutex::new(None),
            bot_user: tokio::sync::OnceCell::new(),
        }
    }

    pub fn with_applier(mut self, applier: apply::Applier<A>) -> Bot<G, A> {
        self.applier = Some(applier);
        self
    }

    pub fn with_bootstrap(mut self, bootstrap: apply::steps::repository::Bootstrap) -> Bot<G, A> {
        self.bootstrap = Some(bootstrap);
        self
    }

    /// The subaccounts project as the API names it.
    pub fn project(&self) -> String {
        match &self.ctx.config.gitlab.project {
            crate::config::ProjectSelector::Id(id) => id.to_string(),
            crate::config::ProjectSelector::Path(p) => p.clone(),
        }
    }
}

pub(crate) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}
