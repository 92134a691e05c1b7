//! What the HTTP front and the worker share: the configuration, the webhook secrets, the
//! store, the metrics and the clock.

use super::auth::WebhookAuth;
use crate::clock::Clock;
use crate::config::{Config, ProjectSelector};
use crate::gitlab::event::Event;
use crate::metrics::Metrics;
use crate::store::Store;
use anyhow::Result;
use std::sync::Arc;
use tokio::sync::{Notify, Semaphore};

/// Everything the handlers and the worker share.
pub struct Ctx {
    pub config: Config,
    pub auth: WebhookAuth,
    pub store: Store,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    /// Wakes an idle worker when a delivery arrives.
    pub wake: Notify,
    /// This replica's name (`server.replica_id`): kept with its claims.
    pub replica: String,
    /// This process's hold on a SQLite store (released with the context).
    pub owner: Option<crate::store::Owner>,
    /// Webhook body bytes that may be held at once (`server.max_body_bytes_in_flight`).
    pub body_budget: Semaphore,
    /// The store's gauges as last read for `/metrics`, and when: scrapes (or a flood of
    /// them) read the store at most once every few seconds, one at a time.
    pub gauges_cache: tokio::sync::Mutex<Option<CachedGauges>>,
}

/// See [`Ctx::gauges_cache`].
pub struct CachedGauges {
    pub read_at: std::time::Instant,
    pub inbox: Option<crate::metrics::InboxGauges>,
    pub store: Option<crate::metrics::StoreGauges>,
}

impl Ctx {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> Result<Ctx> {
        let auth = WebhookAuth::new(&config.webhook)
            .map_err(|e| anyhow::anyhow!("webhook signing key: {e}"))?;
        let config_budget = config.server.max_body_bytes_in_flight;
        Ok(Ctx {
            replica: config.server.replica(),
            config,
            auth,
            store,
            metrics: Metrics::default(),
            clock,
            wake: Notify::new(),
            owner: None,
            body_budget: Semaphore::new(config_budget),
            gauges_cache: tokio::sync::Mutex::new(None),
        })
    }

    /// Events of other projects are ignored. A payload that does not say which project it is
    /// from (very old GitLab, or only the id where a path is configured) is kept: the hook is
    /// authenticated, and handlers read the MR of the configured project from the API anyway.
    pub fn scope(&self, event: Event) -> Event {
        let Some(p) = event.project() else {
            return event;
        };
        let other = match &self.config.gitlab.project {
            ProjectSelector::Id(id) => p.id.is_some_and(|x| x != *id),
            ProjectSelector::Path(path) => p
                .path
                .as_ref()
                .is_some_and(|x| !x.eq_ignore_ascii_case(path)),
        };
        if other {
            return Event::Ignored {
                kind: event.kind().to_string(),
                reason: format!(
                    "an event of project {}, not the subaccounts project",
                    p.key()
                ),
            };
        }
        event
    }
}
