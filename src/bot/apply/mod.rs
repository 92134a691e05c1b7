//! Apply on merge: make AWS match what the merge commit declares, exactly once.
//!
//! 1. **Gate**: re-read the MR; judge the merge commit against the policy of the target branch
//!    *before* the merge (the merge's first parent) and against the approvals the API shows.
//!    Refuse — in the note and in an alert log line — when the change breaks policy, lacks the
//!    required Infrastructure approvals, or changed the policy it would be judged by.
//! 2. **Reconcile, not replay**: every step of every changed account checks what exists before
//!    it changes anything, so a second apply makes no mutating call.
//! 3. **Ledger**: each step records its intent before the AWS call and its result after;
//!    CreateAccount's request id is stored the moment AWS returns it. Without one, the account
//!    is looked for by email (ListAccounts) and by name among requests in flight
//!    (ListCreateAccountStatus) before any new CreateAccount.
//!
//! Applies are serialised per organisation; creations run concurrently up to AWS's limit.

/// What each account was last applied as, under approval.
mod approved;
/// What the account runs of one apply share.
mod context;
/// Merges from before applying was turned on: left alone unless asked.
pub mod first_run;
/// The merge judged: policy before the merge, approvals from the API.
mod gate;
/// Intent and result of every step, and what is known of each account, across crashes.
mod ledger;
/// Drift put back, as the declarations already say.
mod repair;
/// The apply of one merge, account by account, step by step.
mod run;
/// The steps, one file per area.
pub mod steps;

use crate::aws::{self, Aws};
use crate::config::AwsConfig;
use anyhow::{Context, Result};
use std::time::Duration;

/// Everything the apply needs besides the bot: the AWS client and its settings.
pub struct Applier<A> {
    pub aws: A,
    pub settings: ApplySettings,
    /// Who grants access to new accounts: Identity Center and Okta, where configured.
    pub access: steps::access::AccessClients,
    /// One apply at a time per organization.
    pub(crate) lock: tokio::sync::Mutex<()>,
}

impl<A: Aws> Applier<A> {
    pub fn new(aws: A, settings: ApplySettings) -> Applier<A> {
        Applier {
            aws,
            settings,
            access: steps::access::AccessClients::default(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// With the access providers the policy may choose.
    pub fn with_access(mut self, access: steps::access::AccessClients) -> Applier<A> {
        self.access = access;
        self
    }
}

#[derive(Debug, Clone)]
pub struct ApplySettings {
    pub saml_metadata: String,
    pub create_timeout: Duration,
    pub max_creations: usize,
    pub poll: Duration,
    pub assume_timeout: Duration,
}

impl ApplySettings {
    /// Reads the SAML metadata file named in the config and checks that it is metadata.
    pub fn from_config(c: &AwsConfig) -> Result<ApplySettings> {
        let metadata = std::fs::read_to_string(&c.saml_metadata_file).with_context(|| {
            format!(
                "reading aws.saml_metadata_file {}",
                c.saml_metadata_file.display()
            )
        })?;
        anyhow::ensure!(
            metadata.contains("EntityDescriptor"),
            "{} is not SAML metadata (no EntityDescriptor)",
            c.saml_metadata_file.display()
        );
        Ok(ApplySettings {
            saml_metadata: metadata,
            create_timeout: Duration::from_secs(c.create_timeout_seconds),
            max_creations: c.max_concurrent_creations,
            poll: Duration::from_millis(c.poll_interval_ms),
            assume_timeout: Duration::from_secs(c.assume_role_timeout_seconds),
        })
    }
}

/// How a step failed: `retryable` failures are tried again by orgvend itself.
#[derive(Debug)]
pub(crate) struct StepFailure {
    pub(crate) message: String,
    pub(crate) retryable: bool,
    /// Stopped on purpose until asked again ([`crate::serve::worker::ParkNow`]).
    pub(crate) parked: bool,
}

pub(crate) fn failure(e: anyhow::Error) -> StepFailure {
    let parked = e
        .chain()
        .any(|c| c.downcast_ref::<crate::serve::worker::ParkNow>().is_some());
    StepFailure {
        retryable: !parked
            && (aws::is_retryable(&e)
                || !e.chain().any(|c| c.downcast_ref::<Terminal>().is_some())),
        parked,
        message: format!("{e:#}"),
    }
}

/// A failure trying again cannot fix (an email AWS already knows, an alias taken).
#[derive(Debug)]
pub(crate) struct Terminal(pub String);

impl std::fmt::Display for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Terminal {}

/// The failures' messages, in one line.
pub(crate) fn messages(failures: &[StepFailure]) -> String {
    failures
        .iter()
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

pub use repair::Asker;
pub use steps::repository::Bootstrap;
