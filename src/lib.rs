//! orgvend: a GitLab merge-request bot that vends AWS accounts declared in a Terraform
//! `subaccounts` repository.
//!
//! The core (`decl`, `policy`, `plan`, `report`, `render`) is pure: values in, values out.
//! The shell around it: `webhook` (authenticate → inbox → 2xx), `store`, `worker`, `server`.

pub mod apply;
pub mod approval;
pub mod aws;
pub mod baseline;
pub mod bootstrap;
pub mod checkout;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod decl;
pub mod event;
pub mod gitlab;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod patch;
pub mod plan;
pub mod policy;
pub mod render;
pub mod report;
pub mod review;
pub mod server;
pub mod store;
pub mod template;
pub mod webhook;
pub mod worker;
