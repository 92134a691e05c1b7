//! The apply's steps, one file per area of work ([`Area`]): a new area (KMS, Config, Identity
//! Center) is a new file here and a line in [`Bot::exec_step`]. Every step checks what exists
//! before it changes anything and returns a detail for the ledger (`skipped: …` for a step
//! orgvend leaves to a person). Below: the lookups the areas share, each done once per apply.

/// Who may sign in: Identity Center permission sets and assignments, or Okta groups and rules.
pub mod access;
/// Keyless CI: the OIDC provider and the CI roles.
pub(crate) mod ci;
/// The account's guard: KMS key, Config, CloudTrail.
mod guard;
/// Inside the account: assumed role, alias, SAML provider, boundary, access roles.
mod iam;
/// The organization: create, wait, move, tag, close.
mod organizations;
/// The account's GitLab project.
pub mod repository;
/// The account's Terraform state: bucket and lock table.
mod state;

use super::context::{AccountRun, RunCtx};
use super::{Applier, Terminal};
use crate::aws::{Aws, OrgAccount};
use crate::bot::Bot;
use crate::core::plan::{Area, Step, Target};
use crate::core::policy::Policy;
use crate::gitlab::GitLab;
use anyhow::{Result, anyhow};

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// Performs one step, in the file of its area.
    pub(super) async fn exec_step(
        &self,
        applier: &Applier<A>,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        step: &Step,
        policy: &Policy,
    ) -> Result<Option<String>> {
        match step.area() {
            Area::Organizations => {
                self.exec_organizations(applier, cx, run, step, policy)
                    .await
            }
            Area::Iam => self.exec_iam(applier, cx, run, step, policy).await,
            Area::Guard => self.exec_guard(applier, cx, run, step, policy).await,
            Area::StateBackend => {
                self.exec_state_backend(applier, cx, run, step, policy)
                    .await
            }
            Area::KeylessCi => self.exec_keyless_ci(applier, cx, run, step, policy).await,
            Area::Repository => self.exec_repository(applier, cx, run, step, policy).await,
            Area::Access => self.exec_access(applier, cx, run, step, policy).await,
        }
    }

    /// The organization's account with this email, from one listing per apply (refreshed
    /// when `fresh` and after a creation).
    async fn org_account(
        &self,
        aws: &A,
        cx: &RunCtx<'_, A::Member>,
        email: &str,
        fresh: bool,
    ) -> Result<Option<OrgAccount>> {
        let mut cached = cx.org_accounts.lock().await;
        if cached.is_none()
            || (fresh
                && cached
                    .as_ref()
                    .is_some_and(|c| !c.iter().any(|a| a.email.eq_ignore_ascii_case(email))))
        {
            *cached = Some(aws.list_accounts().await?);
        }
        Ok(cached.as_ref().and_then(|all| {
            all.iter()
                .find(|a| a.email.eq_ignore_ascii_case(email))
                .cloned()
        }))
    }

    async fn account_id_of(
        &self,
        aws: &A,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
    ) -> Result<String> {
        if let Some(id) = &run.account_id {
            return Ok(id.clone());
        }
        let email = run.email.clone();
        let id = match self
            .ctx
            .store
            .known_account(&email)
            .await?
            .and_then(|k| k.account_id)
        {
            Some(id) => id,
            None => self
                .org_account(aws, cx, &email, true)
                .await?
                .map(|a| a.id)
                .ok_or_else(|| Terminal(format!("no AWS account has the email {email}")))?,
        };
        cx.set_account_id(run.index, &id);
        run.account_id = Some(id.clone());
        Ok(id)
    }

    /// The id of an OU given as a path from the root (`/Workloads/Clients`), found once.
    async fn ou_id(&self, aws: &A, cx: &RunCtx<'_, A::Member>, path: &str) -> Result<String> {
        if let Some(id) = cx.ous.lock().await.get(path) {
            return Ok(id.clone());
        }
        let mut parent = aws.root_id().await?;
        for part in path.trim_matches('/').split('/') {
            let children = aws.child_ous(&parent).await?;
            parent = children
                .into_iter()
                .find(|(_, name)| name == part)
                .map(|(id, _)| id)
                .ok_or_else(|| Terminal(format!("the organization has no OU `{path}` (missing `{part}`): create it, or fix the policy's ou")))?;
        }
        cx.ous.lock().await.insert(path.to_string(), parent.clone());
        Ok(parent)
    }

    /// The member account session of this run (AssumeRole comes first among the steps).
    async fn member(
        &self,
        aws: &A,
        cx: &RunCtx<'_, A::Member>,
        run: &mut AccountRun<'_>,
        policy: &Policy,
    ) -> Result<std::sync::Arc<A::Member>> {
        let id = self.account_id_of(aws, cx, run).await?;
        if let Some(m) = cx.members.lock().await.get(&id) {
            return Ok(m.clone());
        }
        let role = match run.change.target.as_ref() {
            Some(t) => t.role_name.clone(),
            None => policy.baseline.role_name.clone(),
        };
        let m = std::sync::Arc::new(aws.assume(&id, &role).await?);
        cx.members.lock().await.insert(id, m.clone());
        Ok(m)
    }

    fn bucket_name(&self, run: &AccountRun<'_>, policy: &Policy) -> Result<String> {
        let target = run
            .change
            .target
            .as_ref()
            .ok_or_else(|| anyhow!("no target for {}", run.change.name))?;
        Ok(state_bucket(
            policy,
            target,
            run.account_id.as_deref().unwrap_or(""),
        ))
    }
}

/// The account's state bucket.
pub(crate) fn state_bucket(policy: &Policy, target: &Target, account_id: &str) -> String {
    crate::core::plan::fill(&policy.baseline.state_bucket, target)
        .replace("{account_id}", account_id)
}

/// The alias of the account's KMS key, when its type's baseline has one.
pub(crate) fn key_alias(policy: &Policy, account_type: Option<&str>, t: &Target) -> Option<String> {
    let kms = policy.security.of(account_type).kms.as_ref()?;
    Some(crate::core::plan::fill(&kms.alias, t))
}

/// The permissions boundary the account should have.
pub(crate) fn boundary_document(
    policy: &Policy,
    account_type: Option<&str>,
    t: &Target,
    account_id: &str,
) -> String {
    let repo = &policy.repository;
    let ci_roles: Vec<&str> = if repo.keyless_ci {
        vec![repo.plan_role.as_str(), repo.apply_role.as_str()]
    } else {
        Vec::new()
    };
    crate::core::baseline::boundary_document(&crate::core::baseline::Protected {
        account_id,
        baseline: &policy.baseline,
        access_role: &t.role_name,
        ci_roles: &ci_roles,
        state_bucket: &state_bucket(policy, t, account_id),
        key_alias: key_alias(policy, account_type, t).as_deref(),
    })
}

/// What differs of a role from what it should be (`trust`, `boundary`, `policy`): what the
/// apply repairs and drift reports.
pub(crate) fn role_repairs(
    state: &crate::aws::RoleState,
    trust: &str,
    boundary: Option<&str>,
    managed: &str,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !state
        .trust
        .as_deref()
        .is_some_and(|t| crate::core::baseline::same_document(t, trust))
    {
        out.push("trust");
    }
    if boundary.is_some_and(|b| state.boundary.as_deref() != Some(b)) {
        out.push("boundary");
    }
    if !state.attached.iter().any(|a| a == managed) {
        out.push("policy");
    }
    out
}

/// Puts back what [`role_repairs`] found.
pub(crate) async fn repair_role<M: crate::aws::MemberAws>(
    m: &M,
    name: &str,
    repairs: &[&str],
    trust: &str,
    boundary: Option<&str>,
    managed: &str,
) -> Result<()> {
    for what in repairs {
        match *what {
            "trust" => m.update_trust(name, trust).await?,
            "boundary" => {
                if let Some(b) = boundary {
                    m.put_role_boundary(name, b).await?
                }
            }
            _ => m.attach_role_policy(name, managed).await?,
        }
    }
    Ok(())
}

/// What differs of a state bucket from what it should be.
pub(crate) fn bucket_repairs(state: &crate::aws::BucketState) -> Vec<&'static str> {
    [
        (state.versioned, "versioning"),
        (state.encrypted, "encryption"),
        (state.public_access_blocked, "public access block"),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| what)
    .collect()
}

impl<G: GitLab, A: Aws> Bot<G, A> {
    /// The alias of the account's KMS key, when its type's baseline has one.
    fn key_alias(&self, run: &AccountRun<'_>, policy: &Policy) -> Option<String> {
        key_alias(
            policy,
            run.change.account_type.as_deref(),
            run.change.target.as_ref()?,
        )
    }
}

pub(super) fn not_configured(step: &Step) -> String {
    format!(
        "skipped: {} needs the repository bootstrap, which is not configured ([bootstrap] in orgvend.toml)",
        step.key()
    )
}
