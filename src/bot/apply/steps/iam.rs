//! The account's baseline inside it, through the role AWS created there: the assumed role,
//! the account alias, the SAML provider, the permissions boundary and the access roles.

use super::super::context::{AccountRun, RunCtx};
use super::super::{Applier, Terminal};
use crate::aws::{self, Aws, MemberAws};
use crate::bot::Bot;
use crate::core::baseline;
use crate::core::plan::Step;
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use anyhow::{Result, anyhow};
use std::time::{Duration, Instant};

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Assume the role, then alias, SAML provider, boundary and access roles.
    pub(super) async fn exec_iam(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        let aws = &applier.aws;
        match step {
            Step::AssumeRole { role_name } => {
                let id = self.account_id_of(aws, cx, run).await?;
                // A new account may refuse AssumeRole for a while.
                let deadline = Instant::now() + applier.settings.assume_timeout;
                let mut wait = Duration::from_secs(2)
                    .min(applier.settings.poll.max(Duration::from_millis(10)));
                loop {
                    match aws.assume(&id, role_name).await {
                        Ok(m) => {
                            cx.members
                                .lock()
                                .await
                                .insert(id.clone(), std::sync::Arc::new(m));
                            return Ok(None);
                        }
                        Err(e) if Instant::now() < deadline => {
                            tracing::debug!(account = id, error = %format!("{e:#}"), "AssumeRole not possible yet");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(15));
                        }
                        Err(e) => return Err(e.context(format!("assuming {role_name} in {id}"))),
                    }
                }
            }
            Step::SetAlias { alias } => {
                let m = self.member(aws, cx, run, policy).await?;
                let have = m.alias().await?;
                if have.as_deref() == Some(alias.as_str()) {
                    return Ok(None);
                }
                match m.set_alias(alias, have.as_deref()).await {
                    Ok(()) => Ok(None),
                    Err(e) if e.chain().any(|c| c.downcast_ref::<aws::AwsError>().is_some_and(|a| a.code.as_deref() == Some("EntityAlreadyExists"))) => {
                        Err(Terminal(format!("the alias `{alias}` belongs to another AWS account: choose another account_alias")).into())
                    }
                    Err(e) => Err(e),
                }
            }
            Step::SamlProvider { name } => {
                let m = self.member(aws, cx, run, policy).await?;
                if m.saml_provider(name).await?.is_none() {
                    // Okta's own metadata for its AWS app, when the policy signs in by Okta.
                    let from_okta = applier.access.okta.as_ref().filter(|o| {
                        o.metadata_from_app
                            && policy.access.provider == crate::core::policy::Provider::Okta
                    });
                    let metadata = match from_okta {
                        Some(o) => o.saml_metadata().await?,
                        None => applier.settings.saml_metadata.clone(),
                    };
                    m.create_saml_provider(name, &metadata).await?;
                }
                Ok(None)
            }
            Step::PermissionsBoundary { policy: boundary } => {
                let m = self.member(aws, cx, run, policy).await?;
                let target = run
                    .change
                    .target
                    .as_ref()
                    .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
                let want = super::boundary_document(
                    policy,
                    run.change.account_type.as_deref(),
                    target,
                    m.account_id(),
                );
                match m.policy(boundary).await? {
                    None => {
                        m.create_policy(boundary, &want).await?;
                        Ok(None)
                    }
                    Some(have) if baseline::same_document(&have.document, &want) => Ok(None),
                    Some(have) => {
                        // Drifted or older: a new default version. IAM keeps five; the
                        // oldest goes first.
                        if have.other_versions.len() + 1 >= aws::MAX_POLICY_VERSIONS {
                            m.delete_policy_version(boundary, &have.other_versions[0])
                                .await?;
                        }
                        m.create_policy_version(boundary, &want).await?;
                        Ok(Some(
                            "repaired: a new version of the boundary is the default".into(),
                        ))
                    }
                }
            }
            Step::AccessRole {
                name,
                policy_arn,
                bounded,
            } => {
                let m = self.member(aws, cx, run, policy).await?;
                let boundary = bounded.then(|| {
                    baseline::policy_arn(m.account_id(), &policy.baseline.permissions_boundary)
                });
                match m.role(name).await? {
                    None => {
                        let trust = baseline::trust_document(
                            m.account_id(),
                            &policy.baseline.saml_provider,
                        );
                        m.create_role(name, &trust, boundary.as_deref()).await?;
                        m.attach_role_policy(name, policy_arn).await?;
                    }
                    Some(state) => {
                        let trust = baseline::trust_document(
                            m.account_id(),
                            &policy.baseline.saml_provider,
                        );
                        let repairs =
                            super::role_repairs(&state, &trust, boundary.as_deref(), policy_arn);
                        super::repair_role(
                            &*m,
                            name,
                            &repairs,
                            &trust,
                            boundary.as_deref(),
                            policy_arn,
                        )
                        .await?;
                    }
                }
                Ok(None)
            }
            other => Err(anyhow!("not a step of this area: {}", other.key())),
        }
    }
}
