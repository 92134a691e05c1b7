//! orgvend: a GitLab merge-request bot that vends AWS accounts declared in a Terraform
//! `subaccounts` repository. One house with three floors over narrow adapters:
//!
//! - a webhook delivery **enters** at `serve::webhook` (authenticated by `serve::auth`,
//!   stored, answered) and is handed by `serve::worker` to the bot (`bot::dispatch`);
//! - the policy is **checked** in `core::rules` (one file per rule), its parameters read by
//!   `core::policy`, over the declarations of `core::decl` and the plan of `core::plan`;
//! - an AWS step is **executed** in `bot::apply::steps`, one file per area (organizations,
//!   IAM, state backend, keyless CI, repository), recorded in `bot::apply::ledger`.

/// What a delivery does: review an MR, apply a merge (gate, ledger, steps by area). The only
/// floor that knows GitLab and AWS together.
pub mod bot;
/// The command line's own work: `orgvend check`, and reading a checkout or git refs.
pub mod cli;
/// Pure: declarations, policy, rules, plan, approvals, report, rendering. Values in, values
/// out; imports only `core/`.
pub mod core;
/// `orgvend serve`: HTTP front, webhook auth, durable inbox, ordered worker. Never imports
/// `bot/`.
pub mod serve;

/// Adapter: AWS Organizations and member accounts in orgvend's words, on the AWS SDK.
pub mod aws;
/// Adapter: GitLab's REST API in orgvend's words, its client, and webhook payload parsing.
pub mod gitlab;
/// Adapter: Okta's management API (groups, group rules, app assignments), our own client.
pub mod okta;
/// Adapter: the durable store (inbox, reviews, ledger) on SQLite or PostgreSQL.
pub mod store;

/// Time, injected (a manual clock in tests).
pub mod clock;
/// The service configuration (`orgvend.toml`), secrets from the environment.
pub mod config;
/// The running attempt's hold on its delivery: no AWS call or GitLab write once it is lost.
pub mod hold;
/// Structured logs.
pub mod logging;
/// Prometheus metrics.
pub mod metrics;
