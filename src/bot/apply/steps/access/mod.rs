//! Who may sign in to the account: one interface — entitle a role, grant it to a group, take
//! a grant back, take every grant back before a close — over two providers, chosen by the
//! policy's `access.provider`: IAM Identity Center ([`identity_center`]) and Okta
//! ([`okta`]). Every step checks what exists first, so a retry or a redelivery creates
//! nothing twice; no group but the policy's admin group is ever given an admin role, whatever
//! the plan says.

mod identity_center;
mod okta;

pub use okta::OktaAccess;

use super::super::context::{AccountRun, RunCtx};
use super::super::{Applier, Terminal};
use crate::aws::Aws;
use crate::aws::identity_center::IdentityCenter;
use crate::bot::Bot;
use crate::core::plan::Step;
use crate::core::policy::{Policy, Provider};
use crate::gitlab::GitLab;
use anyhow::{Result, anyhow};
use std::sync::Arc;

/// Identity Center allows this many account assignment operations outstanding at once.
pub const MAX_OUTSTANDING_ASSIGNMENTS: usize = 10;

/// The access providers the policy may choose, with what they share across applies.
#[derive(Clone)]
pub struct AccessClients {
    pub identity_center: Option<Arc<dyn IdentityCenter>>,
    pub okta: Option<Arc<OktaAccess>>,
    /// Assignment operations in flight (created or deleted, not yet finished).
    pub(crate) outstanding: Arc<tokio::sync::Semaphore>,
    /// The instance and permission sets, found once; changes to permission sets one at a
    /// time (two accounts' applies must not both create `orgvend-ReadOnly`).
    pub(crate) ic: Arc<tokio::sync::Mutex<identity_center::Known>>,
}

impl Default for AccessClients {
    fn default() -> Self {
        AccessClients {
            identity_center: None,
            okta: None,
            outstanding: Arc::new(tokio::sync::Semaphore::new(MAX_OUTSTANDING_ASSIGNMENTS)),
            ic: Arc::default(),
        }
    }
}

impl AccessClients {
    pub fn with_identity_center(mut self, ic: Arc<dyn IdentityCenter>) -> AccessClients {
        self.identity_center = Some(ic);
        self
    }

    /// Fewer outstanding assignment operations than Identity Center allows (tests).
    pub fn with_max_outstanding(mut self, n: usize) -> AccessClients {
        self.outstanding = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    pub fn with_okta(mut self, okta: OktaAccess) -> AccessClients {
        self.okta = Some(Arc::new(okta));
        self
    }
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Entitlements, grants and revocations, by the provider the step names.
    pub(in crate::bot::apply) async fn exec_access(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let (provider, grant) = match step {
            Step::Entitlement { provider, .. } | Step::RevokeAccess { provider, .. } => {
                (*provider, None)
            }
            Step::Grant {
                provider,
                role,
                group,
            } => (*provider, Some((role, group))),
            Step::Revoke { provider, .. } => (*provider, None),
            other => return Err(anyhow!("not a step of this area: {}", other.key())),
        };
        // The plan was judged, but the apply holds the keys: an admin role goes to the
        // admin group or to no one.
        if let Some((role, group)) = grant
            && policy.access.is_admin_role(role)
            && policy.access.admin_group.as_deref() != Some(group.as_str())
        {
            return Err(Terminal(format!(
                "refused: `{role}` may only be granted to the policy's admin group, not `{group}`"
            ))
            .into());
        }
        let account = self.account_id_of(&applier.aws, cx, run).await?;
        match provider {
            Provider::IdentityCenter => {
                let ic = applier.access.identity_center.as_ref().ok_or_else(|| {
                    Terminal("the policy grants access through IAM Identity Center, which this orgvend cannot reach".into())
                })?;
                let grants = run
                    .change
                    .target
                    .as_ref()
                    .map(|t| t.grants.as_slice())
                    .unwrap_or_default();
                identity_center::exec(ic.as_ref(), applier, &account, step, policy, grants).await
            }
            Provider::Okta => {
                let okta = applier.access.okta.as_ref().ok_or_else(|| {
                    Terminal("the policy grants access through Okta, but [okta] is not configured in orgvend.toml".into())
                })?;
                okta.exec(&account, run.change.target.as_ref(), step, policy)
                    .await
            }
            Provider::None => Ok(Some("skipped: the policy grants no access".into())),
        }
    }
}
