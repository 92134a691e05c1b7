//! `orgvend serve`'s front and engine: authenticate a webhook, store it durably, answer; then
//! work through the stored deliveries in order. Knows nothing of reviews or AWS (it never
//! imports `bot/`): the bot plugs in through the worker's [`worker::Handler`] trait.

/// Who may deliver: token and HMAC signature.
pub mod auth;
/// What the front and the worker share ([`ctx::Ctx`]).
pub mod ctx;
/// The HTTP front: connections under limits (header and request timeouts, connection cap).
pub mod front;
/// `orgvend serve`: routes, health, metrics, reconciliation timer, graceful shutdown.
pub mod server;
/// `POST /webhooks/gitlab`: authenticate → store durably → 2xx.
pub mod webhook;
/// Claims stored deliveries in order and hands each to a `Handler`, with retries.
pub mod worker;
