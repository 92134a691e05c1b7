//! orgvend: a GitLab merge-request bot that vends AWS accounts declared in a Terraform
//! `subaccounts` repository.
//!
//! The core (`decl`, `policy`, `plan`, `report`, `render`) is pure: values in, values out.

pub mod checkout;
pub mod cli;
pub mod decl;
pub mod model;
pub mod plan;
pub mod policy;
pub mod render;
pub mod report;
