//! `orgvend import`: reads the organization (accounts, their OUs and tags) and writes a
//! declaration, in the repository's style and with `adopt = "<id>"`, for every account the
//! checkout does not declare; the core's `request::import` decides what and how. Reads AWS
//! only; writes files (or, with `--dry-run`, prints the diff). Exit 0 when something was
//! written or nothing was missing, 1 when some accounts could not be written, 2 on errors.

use crate::aws::Aws;
use crate::cli::check::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATIONS, POLICY_DIR};
use crate::cli::checkout;
use crate::core::policy::Policy;
use crate::core::request::generate::file_diff;
use crate::core::request::import::{self, Imported};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The service configuration (its `[aws]` section says how to reach the organization).
    #[arg(long, default_value = "orgvend.toml")]
    pub config: PathBuf,
    /// The subaccounts checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The type of accounts no type's OU or name pattern claims.
    #[arg(long = "type")]
    pub account_type: Option<String>,
    /// Write every imported account into this file (default: by type, as `orgvend new`).
    #[arg(long)]
    pub file: Option<String>,
    /// Print the change as a diff; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Imports into `args.repo` what `aws` has; prints what it did. Returns the exit code.
pub async fn run<A: Aws>(aws: &A, args: &ImportArgs) -> Result<i32> {
    let files = checkout::working_tree(&args.repo, POLICY_DIR)?;
    let policy = Policy::load(&files, POLICY_DIR)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading the policy of {}", args.repo.display()))?;
    let (have, management) = crate::bot::drift::organization(aws).await?;
    let out = import::import(
        &policy,
        &files,
        &have,
        &management,
        args.account_type.as_deref(),
        args.file.as_deref(),
    );
    if args.dry_run {
        for (path, before, after) in &out.files {
            super::print(&file_diff(path, before, after, before.is_empty()));
        }
    } else {
        for (path, _, after) in &out.files {
            let target = args.repo.join(path);
            std::fs::write(&target, after)
                .with_context(|| format!("writing {}", target.display()))?;
        }
    }
    eprint!("{}", summary(&out));
    Ok(if out.undeclarable > 0 {
        EXIT_VIOLATIONS
    } else {
        EXIT_CLEAN
    })
}

fn summary(out: &Imported) -> String {
    let mut text = String::new();
    for (id, name, path, broken) in &out.written {
        text.push_str(&format!(
            "declared {name} ({id}) in {path}, with adopt = \"{id}\""
        ));
        if !broken.is_empty() {
            text.push_str(&format!(
                "; it breaks the policy ({}): see the comment above it",
                broken.len()
            ));
        }
        text.push('\n');
    }
    for (id, name, why) in &out.skipped {
        text.push_str(&format!("not declared: {name} ({id}): {why}\n"));
    }
    if out.written.is_empty() && out.skipped.is_empty() {
        text.push_str("every account of the organization is declared already\n");
    }
    text
}

/// `orgvend import` from the command line: the organization from `[aws]` of the config.
pub async fn import_cmd(args: &ImportArgs, aws: &crate::config::AwsConfig) -> i32 {
    let target = crate::aws::sdk::AwsTarget::of(aws);
    let sdk = crate::aws::sdk::SdkAws::new(&target).await;
    match run(&sdk, args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orgvend import: {e:#}");
            EXIT_ERROR
        }
    }
}
