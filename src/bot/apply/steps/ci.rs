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
                let (managed, boundary) = if purpose == "apply" {
                    (
                        baseline::ADMINISTRATOR_ACCESS,
                        Some(baseline::policy_arn(
                            m.account_id(),
                            &policy.baseline.permissions_boundary,
                        )),
                    )
                } else {
                    (baseline::READ_ONLY_ACCESS, None)
                };
                match m.role(name).await? {
                    None => {
                        m.create_role(name, &trust, boundary.as_deref()).await?;
                        m.attach_role_policy(name, managed).await?;
                        Ok(Some(format!("trusts {project}")))
                    }
                    Some(state) => {
                        let mut repaired = Vec::new();
                        if !state
                            .trust
                            .as_deref()
                            .is_some_and(|t| baseline::same_document(t, &trust))
                        {
                            m.update_trust(name, &trust).await?;
                            repaired.push("trust");
                        }
                        if let Some(b) = &boundary
                            && state.boundary.as_deref() != Some(b.as_str())
                        {
                            m.put_role_boundary(name, b).await?;
                            repaired.push("boundary");
                        }
                        if !state.attached.iter().any(|a| a == managed) {
                            m.attach_role_policy(name, managed).await?;
                            repaired.push("policy");
                        }
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
