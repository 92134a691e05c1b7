//! Keyless CI: the GitLab instance as an IAM OIDC provider in the account, and the plan and
//! apply roles that only the account's project pipelines (apply: its protected master) may
//! assume with their ID tokens.

use super::super::Applier;
use super::super::context::{AccountRun, RunCtx};
use crate::aws::{Aws, MemberAws};
use crate::bot::Bot;
use crate::core::baseline;
use crate::core::plan::Step;
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use anyhow::{Result, anyhow};

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The OIDC provider and the CI roles (skipped without the repository bootstrap).
    pub(super) async fn exec_keyless_ci(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let aws = &applier.aws;
        match step {
            Step::CiOidcProvider => {
                let Some(b) = &self.bootstrap else {
                    return Ok(Some(super::not_configured(step)));
                };
                let m = self.member(aws, cx, run, policy).await?;
                let url = b.gitlab_url.trim_end_matches('/');
                match m.oidc_provider(url).await? {
                    Some(arn) => Ok(Some(arn)),
                    None => Ok(Some(m.create_oidc_provider(url, url).await?)),
                }
            }
            Step::CiRole { name, purpose } => {
                let Some(b) = &self.bootstrap else {
                    return Ok(Some(super::not_configured(step)));
                };
                let m = self.member(aws, cx, run, policy).await?;
                let target = run
                    .change
                    .target
                    .as_ref()
                    .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
                let project = crate::core::plan::project_path(&policy.repository, target);
                if !crate::core::plan::valid_project_path(&project) {
                    return Err(super::super::Terminal(format!(
                        "`{project}` is not a plain GitLab project path: no role will trust it"
                    ))
                    .into());
                }
                let trust =
                    baseline::ci_trust_document(m.account_id(), &b.gitlab_url, &project, purpose);
                let (managed, boundary) = ci_role_policies(policy, purpose, m.account_id());
                match m.role(name).await? {
                    None => {
                        m.create_role(name, &trust, boundary.as_deref()).await?;
                        m.attach_role_policy(name, managed).await?;
                        Ok(Some(format!("trusts {project}")))
                    }
                    Some(state) => {
                        let repaired =
                            super::role_repairs(&state, &trust, boundary.as_deref(), managed);
                        super::repair_role(
                            &*m,
                            name,
                            &repaired,
                            &trust,
                            boundary.as_deref(),
                            managed,
                        )
                        .await?;
                        Ok(Some(if repaired.is_empty() {
                            format!("trusts {project}")
                        } else {
                            format!("trusts {project} (repaired {})", repaired.join(", "))
                        }))
                    }
                }
            }
            other => Err(anyhow!("not a step of this area: {}", other.key())),
        }
    }
}

/// A CI role's managed policy and boundary: the apply role administers the account within
/// the boundary; the plan role reads.
pub(crate) fn ci_role_policies(
    policy: &Policy,
    purpose: &str,
    account_id: &str,
) -> (&'static str, Option<String>) {
    if purpose == "apply" {
        (
            baseline::ADMINISTRATOR_ACCESS,
            Some(baseline::policy_arn(
                account_id,
                &policy.baseline.permissions_boundary,
            )),
        )
    } else {
        (baseline::READ_ONLY_ACCESS, None)
    }
}
