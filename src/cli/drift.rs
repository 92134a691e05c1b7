//! `orgvend drift`: what the checkout declares against what the organization has (read
//! through `[aws]`), printed as text, Markdown or JSON. Reads only. Exit 0 when there is no
//! drift, 1 when there is, 2 on errors.

use crate::aws::Aws;
use crate::cli::check::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATIONS, Format, POLICY_DIR};
use crate::cli::checkout;
use crate::core::decl;
use crate::core::drift::{self, Item};
use crate::core::policy::Policy;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// The service configuration (its `[aws]` section says how to reach the organization).
    #[arg(long, default_value = "orgvend.toml")]
    pub config: PathBuf,
    /// The subaccounts checkout (the default branch's head, checked out).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Every difference between the checkout at `repo` and the organization, inside its
/// accounts too (their CI roles when `gitlab_url`, the instance keyless CI trusts, is known).
/// The GitLab projects are compared by the service (`orgvend serve`), which holds GitLab's
/// token.
pub async fn items<A: Aws>(aws: &A, repo: &Path, gitlab_url: Option<&str>) -> Result<Vec<Item>> {
    let files = checkout::working_tree(repo, POLICY_DIR)?;
    let policy = Policy::load(&files, POLICY_DIR)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading the policy of {}", repo.display()))?;
    let decls = decl::read(&files, &policy.sources);
    if let Some(e) = decls.parse_errors.first() {
        anyhow::bail!("the checkout does not parse: {e}");
    }
    let (have, management) = crate::bot::drift::organization(aws).await?;
    let mut items = drift::drift(&policy, &decls, &have, &management);
    let plan = crate::core::plan::repair(&policy, &decls, &drift::present(&decls, &have));
    items.extend(crate::bot::drift::inspect::aws_facts(aws, &policy, &plan, gitlab_url).await?);
    items.sort_by(|a, b| (&a.account, a.kind).cmp(&(&b.account, b.kind)));
    Ok(items)
}

/// Prints the drift of `args.repo`; returns the exit code.
pub async fn run<A: Aws>(aws: &A, args: &DriftArgs, gitlab_url: Option<&str>) -> Result<i32> {
    let items = items(aws, &args.repo, gitlab_url).await?;
    let out = match args.format {
        Format::Text => drift::text(&items),
        Format::Markdown => drift::markdown(&items),
        Format::Json => serde_json::to_string_pretty(&items)? + "\n",
    };
    super::print(&out);
    Ok(if items.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_VIOLATIONS
    })
}

/// `orgvend drift` from the command line: the organization from `[aws]` of the config.
pub async fn drift_cmd(args: &DriftArgs, config: &crate::config::Config) -> i32 {
    let Some(aws) = &config.aws else {
        eprintln!(
            "orgvend drift: no [aws] section in the configuration: orgvend drift reads the organization"
        );
        return EXIT_ERROR;
    };
    let target = crate::aws::sdk::AwsTarget::of(aws);
    let sdk = crate::aws::sdk::SdkAws::new(&target).await;
    // the instance keyless CI trusts, as the service's bootstrap names it
    let gitlab_url = config.bootstrap.as_ref().map(|b| {
        b.oidc_issuer
            .clone()
            .unwrap_or_else(|| config.gitlab.url.clone())
            .trim_end_matches('/')
            .to_string()
    });
    match run(&sdk, args, gitlab_url.as_deref()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orgvend drift: {e:#}");
            EXIT_ERROR
        }
    }
}
