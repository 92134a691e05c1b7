//! The `orgvend` command: parses arguments, builds the real adapters, runs.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use orgvend::clock::{Clock, SystemClock};
use orgvend::config::Config;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc: reading a large repository allocates millions of small objects across threads;
/// measured 20-30% faster than the system allocator on it (BENCHMARKS.md). Its stable line,
/// 2.x (the crate's `v2` feature): a 10,000-account check touched 15 MB less fresh memory and
/// took about a tenth less time than with 3.x (BENCHMARKS.md, fifth round).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "orgvend",
    version,
    about = "Vends AWS accounts from merge requests on a Terraform subaccounts repository"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a subaccounts checkout against policy and print the plan.
    Check(orgvend::cli::CheckArgs),
    /// Write a new account's module pair into the checkout, in its house style, checked by
    /// the policy (`orgvend new client acme --owner data-team`).
    New(orgvend::cli::NewArgs),
    /// Declare the organization's accounts the checkout does not (with `adopt = "<id>"`), in
    /// its house style; reads AWS only.
    Import(orgvend::cli::import::ImportArgs),
    /// Compare what the checkout declares with what the organization has (reads only).
    Drift(orgvend::cli::drift::DriftArgs),
    /// Complete an email change with the one-time code AWS mailed to the new address (read
    /// from standard input).
    AcceptEmail(orgvend::cli::email::AcceptEmailArgs),
    /// Receive GitLab webhooks and work through them.
    Serve {
        /// The service configuration.
        #[arg(long, default_value = "orgvend.toml")]
        config: PathBuf,
    },
    /// Check the GitLab and AWS set-up orgvend's safety depends on (reads only).
    Doctor {
        #[arg(long, default_value = "orgvend.toml")]
        config: PathBuf,
    },
    /// Apply a merged MR deliberately (one that merged before applying was turned on), or
    /// repair an account's drift: the running `orgvend serve` does it, through the same gate
    /// (a repair: only what the target branch declares as it was last applied).
    Apply {
        #[arg(long, default_value = "orgvend.toml")]
        config: PathBuf,
        /// The merged MR's number (`!N`).
        #[arg(long, required_unless_present = "account", conflicts_with = "account")]
        mr: Option<u64>,
        /// Repair this account's drift (its name or module key); `all` for every account
        /// with drift.
        #[arg(long)]
        account: Option<String>,
    },
    /// The audit trail: every review and apply decision with its facts, newest first, one
    /// JSON object per line.
    Audit {
        #[arg(long, default_value = "orgvend.toml")]
        config: PathBuf,
        /// Only this MR (`!N`).
        #[arg(long)]
        mr: Option<u64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Inspect and replay stored deliveries.
    Inbox {
        #[arg(long, default_value = "orgvend.toml")]
        config: PathBuf,
        #[command(subcommand)]
        command: InboxCommand,
    },
}

#[derive(Subcommand)]
enum InboxCommand {
    /// The latest deliveries, newest first.
    List {
        /// Only this state: pending, running, done, parked, ignored.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One delivery, with its headers and body.
    Show { id: i64 },
    /// Put a parked or finished delivery back in line (the running server picks it up).
    Retry { id: i64 },
}

/// mimalloc gives memory it freed back to the OS after 10 ms by default ("purging"). A large
/// check frees and takes again hundreds of megabytes between its phases, and the kernel then
/// zeroes every page again: a quarter of the wall time of a 10,000-account check
/// (BENCHMARKS.md). A one-shot command keeps what it freed until it exits; the service gives
/// it back after a second of disuse.
fn allocator_purge_delay(ms: i64) {
    // mimalloc.h: `mi_option_purge_delay` is option 15 in mimalloc 2 and 3 (counted in
    // the enum of both headers the `libmimalloc-sys` crate builds)
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: a setter of the mimalloc linked in by the `mimalloc` crate (the global
    // allocator), which takes any value at any time from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, ms as std::ffi::c_long) }
}

fn main() {
    let cli = Cli::parse();
    allocator_purge_delay(match cli.command {
        Command::Serve { .. } => 1_000,
        _ => -1,
    });
    let code = match cli.command {
        Command::Check(args) => orgvend::cli::check(&args),
        Command::New(args) => orgvend::cli::new(&args),
        Command::AcceptEmail(args) => {
            match runtime().and_then(|rt| rt.block_on(accept_email(args))) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("orgvend accept-email: {e:#}");
                    2
                }
            }
        }
        Command::Drift(args) => match runtime().and_then(|rt| rt.block_on(drift(args))) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("orgvend drift: {e:#}");
                2
            }
        },
        Command::Import(args) => match runtime().and_then(|rt| rt.block_on(import(args))) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("orgvend import: {e:#}");
                2
            }
        },
        Command::Serve { config } => report(runtime().and_then(|rt| rt.block_on(serve(config)))),
        Command::Doctor { config } => match runtime().and_then(|rt| rt.block_on(doctor(config))) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("orgvend: {e:#}");
                2
            }
        },
        Command::Apply {
            config,
            mr,
            account,
        } => report(runtime().and_then(|rt| rt.block_on(apply(config, mr, account)))),
        Command::Inbox { config, command } => {
            report(runtime().and_then(|rt| rt.block_on(inbox(config, command))))
        }
        Command::Audit { config, mr, limit } => {
            report(runtime().and_then(|rt| rt.block_on(audit(config, mr, limit))))
        }
    };
    std::process::exit(code);
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn report(result: Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("orgvend: {e:#}");
            2
        }
    }
}

fn load(path: &std::path::Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The GitLab client of the configuration, with the bot's token.
fn gitlab_client(config: &Config) -> Result<orgvend::gitlab::client::GitlabClient> {
    let token = config.gitlab.token.clone().with_context(|| {
        format!(
            "no GitLab token: set {} (a token of the bot user with the api scope)",
            orgvend::config::ENV_GITLAB_TOKEN
        )
    })?;
    let timeout = std::time::Duration::from_secs(config.gitlab.request_timeout_seconds);
    orgvend::gitlab::client::GitlabClient::new(&config.gitlab.url, Some(token), timeout)
}

async fn import(args: orgvend::cli::import::ImportArgs) -> Result<i32> {
    let config = load(&args.config)?;
    let aws = config
        .aws
        .as_ref()
        .context("no [aws] section in the configuration: orgvend import reads the organization")?;
    Ok(orgvend::cli::import::import_cmd(&args, aws).await)
}

async fn accept_email(args: orgvend::cli::email::AcceptEmailArgs) -> Result<i32> {
    let config = load(&args.config)?;
    let aws = config.aws.as_ref().context(
        "no [aws] section in the configuration: orgvend accept-email calls the organization's Account Management API",
    )?;
    Ok(orgvend::cli::email::accept_cmd(&args, aws).await)
}

async fn drift(args: orgvend::cli::drift::DriftArgs) -> Result<i32> {
    let config = load(&args.config)?;
    Ok(orgvend::cli::drift::drift_cmd(&args, &config).await)
}

async fn doctor(path: PathBuf) -> Result<i32> {
    let config = load(&path)?;
    let gitlab = gitlab_client(&config)?;
    let mut findings = orgvend::cli::doctor::check_gitlab(&gitlab, &config.gitlab).await;
    match &config.aws {
        Some(aws) => {
            let target = orgvend::aws::sdk::AwsTarget::of(aws);
            let aws = orgvend::aws::sdk::SdkAws::new(&target).await;
            findings.extend(orgvend::cli::doctor::check_aws(&aws).await);
            findings
                .push(orgvend::cli::doctor::check_identity_center(&aws.identity_center()).await);
        }
        None => println!("no [aws] section: only GitLab is checked"),
    }
    if let Some(o) = &config.okta {
        let okta = orgvend::bot::apply::steps::access::OktaAccess::from_config(o)?;
        findings.extend(orgvend::cli::doctor::check_okta(&okta.client, &o.app_id).await);
    }
    orgvend::cli::print(&orgvend::cli::doctor::render(&findings));
    Ok(orgvend::cli::doctor::exit_code(&findings))
}

async fn serve(path: PathBuf) -> Result<()> {
    let config = load(&path)?;
    orgvend::logging::init(&config.log)?;
    let gitlab = gitlab_client(&config)?;
    let applier = match &config.aws {
        Some(aws) => {
            let settings = orgvend::bot::apply::ApplySettings::from_config(aws)?;
            let target = orgvend::aws::sdk::AwsTarget::of(aws);
            let sdk = orgvend::aws::sdk::SdkAws::new(&target).await;
            let mut access = orgvend::bot::apply::steps::access::AccessClients::default()
                .with_identity_center(Arc::new(sdk.identity_center()));
            if let Some(o) = &config.okta {
                access = access.with_okta(
                    orgvend::bot::apply::steps::access::OktaAccess::from_config(o)?,
                );
            }
            Some(orgvend::bot::apply::Applier::new(sdk, settings).with_access(access))
        }
        None => {
            tracing::warn!("no [aws] section: orgvend reviews merge requests and applies nothing");
            None
        }
    };
    let bootstrap = match (&config.bootstrap, &config.aws) {
        (Some(b), Some(aws)) => Some(orgvend::bot::apply::Bootstrap::from_config(
            b,
            &config.gitlab.url,
            &aws.region,
        )?),
        _ => None,
    };
    let ctx = orgvend::serve::server::start(config, Arc::new(SystemClock)).await?;
    let mut bot: orgvend::bot::Bot<_, orgvend::aws::sdk::SdkAws> =
        orgvend::bot::Bot::new(ctx.clone(), gitlab);
    if let Some(a) = applier {
        bot = bot.with_applier(a);
    }
    if let Some(b) = bootstrap {
        bot = bot.with_bootstrap(b);
    }
    orgvend::serve::server::serve(ctx, bot).await
}

async fn apply(path: PathBuf, iid: Option<u64>, account: Option<String>) -> Result<()> {
    let config = load(&path)?;
    let store = orgvend::store::Store::open(config.store.url.expose()).await?;
    let now = SystemClock.now_ms();
    let Some(iid) = iid else {
        let account = account.unwrap_or_default();
        let id = orgvend::cli::apply::enqueue_repair(&store, &account, now).await?;
        println!(
            "delivery {id}: `orgvend serve` repairs {} next (what the target branch declares, as it was last applied); follow it with `orgvend inbox show {id}` and on the drift issue",
            if account == "all" {
                "every account with drift".to_string()
            } else {
                format!("`{account}`")
            }
        );
        return Ok(());
    };
    let id = orgvend::cli::apply::enqueue(&store, iid, now).await?;
    println!(
        "delivery {id}: `orgvend serve` applies !{iid} next (the gate judges it as any merge); follow it with `orgvend inbox show {id}` and in the MR's note"
    );
    Ok(())
}

async fn audit(path: PathBuf, mr: Option<u64>, limit: i64) -> Result<()> {
    let config = load(&path)?;
    let store = orgvend::store::Store::open(config.store.url.expose()).await?;
    let project = match &config.gitlab.project {
        orgvend::config::ProjectSelector::Id(id) => id.to_string(),
        orgvend::config::ProjectSelector::Path(p) => p.clone(),
    };
    let mut out = String::new();
    for record in store.audit(&project, mr, limit).await? {
        out.push_str(&serde_json::to_string(&record)?);
        out.push('\n');
    }
    orgvend::cli::print(&out);
    Ok(())
}

async fn inbox(path: PathBuf, command: InboxCommand) -> Result<()> {
    let config = load(&path)?;
    let store = orgvend::store::Store::open(config.store.url.expose()).await?;
    match command {
        InboxCommand::List { state, limit } => {
            println!(
                "{:>8}  {:<8}  {:>3}  {:<14}  {:<16}  {:<24}  last error",
                "id", "state", "try", "kind", "action", "mr"
            );
            for d in store.list(state.as_deref(), limit).await? {
                println!(
                    "{:>8}  {:<8}  {:>3}  {:<14}  {:<16}  {:<24}  {}",
                    d.id,
                    d.state,
                    d.attempts,
                    d.kind,
                    d.action,
                    d.ordering_key.as_deref().unwrap_or("-"),
                    orgvend::core::render::plain(d.last_error.as_deref().unwrap_or(""))
                );
            }
        }
        InboxCommand::Show { id } => {
            let d = store
                .get(id)
                .await?
                .with_context(|| format!("no delivery {id}"))?;
            println!("{}", serde_json::to_string_pretty(&d)?);
            if d.body.is_empty() && matches!(d.state.as_str(), "done" | "ignored") {
                println!("(the body was dropped by the retention: store.body_retention_days)");
            }
            println!(
                "{}",
                orgvend::core::render::plain(&String::from_utf8_lossy(&d.body))
            );
        }
        InboxCommand::Retry { id } => {
            anyhow::ensure!(
                store.requeue(id, SystemClock.now_ms()).await?,
                "delivery {id} is not parked or done, or its body was dropped by the retention (or it does not exist)"
            );
            println!("delivery {id} is pending again");
        }
    }
    Ok(())
}
