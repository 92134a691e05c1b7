//! Access through IAM Identity Center: a permission set per baseline role (found by name,
//! created once, compared with the policy on every entitlement and re-provisioned to its
//! accounts when it changed), groups found by display name in the identity store, and
//! account assignments created, and deleted, then polled until they finish — at most
//! [`MAX_OUTSTANDING_ASSIGNMENTS`](super::MAX_OUTSTANDING_ASSIGNMENTS) at a time.

use super::super::super::{Applier, Terminal};
use crate::aws::identity_center::{IdentityCenter, Instance, PermissionSet, Principal, Progress};
use crate::core::plan::{Grant, Step};
use crate::core::policy::Policy;
use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The start of the description of every permission set orgvend makes: its mark of
/// ownership (a set of the same name made by someone else is never taken over).
const OWN_SET: &str = "orgvend:";

/// What is known of the instance across applies.
#[derive(Default)]
pub(crate) struct Known {
    instance: Option<Instance>,
    /// name → permission set.
    sets: HashMap<String, PermissionSet>,
}

/// Which operation a request id belongs to.
#[derive(Clone, Copy)]
enum Operation {
    Provisioning,
    Creation,
    Deletion,
}

pub(super) async fn exec<A>(
    ic: &dyn IdentityCenter,
    applier: &Applier<A>,
    account: &str,
    step: &Step,
    policy: &Policy,
    grants: &[Grant],
) -> Result<Option<String>> {
    match step {
        Step::Entitlement { role, .. } => {
            let (inst, set, mut details) = permission_set(ic, applier, policy, role).await?;
            // Nothing else: a group or a user assigned this permission set on the account by
            // hand is taken back.
            let mut declared = Vec::new();
            for g in grants.iter().filter(|g| &g.role == role) {
                if let Some(id) = ic.group_id(&inst.identity_store_id, &g.group).await? {
                    declared.push(Principal::Group(id));
                }
            }
            for p in ic.assigned(&inst.arn, account, &set.arn).await? {
                if !declared.contains(&p) {
                    unassign(ic, applier, &inst, account, &set.arn, &p).await?;
                    details.push(format!("took back the undeclared assignment of {p:?}"));
                }
            }
            Ok((!details.is_empty()).then(|| format!("repaired: {}", details.join("; "))))
        }
        Step::Grant { role, group, .. } => {
            let (inst, set) = existing_set(ic, applier, policy, role).await?;
            let set = set.ok_or_else(|| {
                anyhow!("the permission set of `{role}` is missing: its entitlement comes first")
            })?;
            let gid = group_id(ic, &inst, policy, group).await?;
            let assigned = ic.assigned(&inst.arn, account, &set.arn).await?;
            if assigned.contains(&Principal::Group(gid.clone())) {
                return Ok(None);
            }
            let _slot = applier.access.outstanding.acquire().await?;
            let started = ic
                .create_assignment(&inst.arn, account, &set.arn, &gid)
                .await?;
            finish(ic, applier, &inst, Operation::Creation, started).await?;
            Ok(None)
        }
        Step::Revoke { role, group, .. } => {
            // no set, no assignment of it to take back
            let (inst, Some(set)) = existing_set(ic, applier, policy, role).await? else {
                return Ok(None);
            };
            let Some(gid) = ic.group_id(&inst.identity_store_id, group).await? else {
                return Ok(Some(format!("the group `{group}` no longer exists")));
            };
            let p = Principal::Group(gid);
            if !ic
                .assigned(&inst.arn, account, &set.arn)
                .await?
                .contains(&p)
            {
                return Ok(None);
            }
            unassign(ic, applier, &inst, account, &set.arn, &p).await?;
            Ok(None)
        }
        Step::RevokeAccess { .. } => {
            let inst = instance(ic, applier).await?;
            let prefix = &policy.access.identity_center.permission_set_prefix;
            let mut taken = 0;
            for set in ic.permission_sets(&inst.arn).await? {
                if !set.name.starts_with(prefix.as_str()) {
                    continue;
                }
                for p in ic.assigned(&inst.arn, account, &set.arn).await? {
                    unassign(ic, applier, &inst, account, &set.arn, &p).await?;
                    taken += 1;
                }
            }
            Ok(Some(format!("took back {taken} assignment(s)")))
        }
        other => Err(anyhow!("not an Identity Center step: {}", other.key())),
    }
}

async fn instance<A>(ic: &dyn IdentityCenter, applier: &Applier<A>) -> Result<Instance> {
    let mut known = applier.access.ic.lock().await;
    if let Some(i) = &known.instance {
        return Ok(i.clone());
    }
    let i = ic.instance().await?;
    known.instance = Some(i.clone());
    Ok(i)
}

/// The role's permission set, made to match the policy: created when missing; its session
/// duration, AWS managed policy and boundary repaired, then re-provisioned to the accounts
/// that have it. Returns what was repaired.
async fn permission_set<A>(
    ic: &dyn IdentityCenter,
    applier: &Applier<A>,
    policy: &Policy,
    role: &str,
) -> Result<(Instance, PermissionSet, Vec<String>)> {
    let inst = instance(ic, applier).await?;
    let spec = policy
        .baseline
        .roles
        .iter()
        .find(|r| r.name == role)
        .ok_or_else(|| Terminal(format!("the policy has no baseline role `{role}`")))?;
    let name = policy.access.permission_set_name(role);
    let session = &policy.access.identity_center.session_duration;
    let boundary = spec
        .bounded
        .then_some(policy.baseline.permissions_boundary.as_str());
    // One at a time: two applies must not both create the same permission set.
    let mut known = applier.access.ic.lock().await;
    let current = find_set(ic, &inst, &mut known, &name).await?;
    let mut details = Vec::new();
    let set = match current {
        Some(s) => s,
        None => {
            let description = format!("{OWN_SET} the {role} role of every account");
            let arn = ic
                .create_permission_set(&inst.arn, &name, &description, session)
                .await?;
            ic.attach_managed_policy(&inst.arn, &arn, &spec.policy_arn)
                .await?;
            if let Some(b) = boundary {
                ic.put_permissions_boundary(&inst.arn, &arn, b).await?;
            }
            let set = PermissionSet {
                arn,
                name: name.clone(),
                session_duration: Some(session.clone()),
            };
            known.sets.insert(name, set.clone());
            return Ok((inst, set, details));
        }
    };
    if set.session_duration.as_deref() != Some(session.as_str()) {
        ic.update_permission_set(&inst.arn, &set.arn, session)
            .await?;
        details.push(format!("session duration {session}"));
        if let Some(s) = known.sets.get_mut(&name) {
            s.session_duration = Some(session.clone());
        }
    }
    let attached = ic.managed_policies(&inst.arn, &set.arn).await?;
    if !attached.contains(&spec.policy_arn) {
        ic.attach_managed_policy(&inst.arn, &set.arn, &spec.policy_arn)
            .await?;
        details.push(format!("attached {}", spec.policy_arn));
    }
    for other in attached.iter().filter(|a| **a != spec.policy_arn) {
        ic.detach_managed_policy(&inst.arn, &set.arn, other).await?;
        details.push(format!("detached {other}"));
    }
    if let Some(b) = boundary
        && ic
            .permissions_boundary(&inst.arn, &set.arn)
            .await?
            .as_deref()
            != Some(b)
    {
        ic.put_permissions_boundary(&inst.arn, &set.arn, b).await?;
        details.push(format!("boundary {b}"));
    }
    if !details.is_empty() {
        let started = ic.provision_all(&inst.arn, &set.arn).await?;
        finish(ic, applier, &inst, Operation::Provisioning, started).await?;
        details.push(format!("re-provisioned `{name}` to its accounts"));
    }
    Ok((inst, set, details))
}

/// The permission set called `name`, read again (a set changed or deleted by hand is seen at
/// once; what is known is listed again when it is gone), if orgvend made it; a set of that
/// name someone else made is an error, never taken over.
async fn find_set(
    ic: &dyn IdentityCenter,
    inst: &Instance,
    known: &mut Known,
    name: &str,
) -> Result<Option<PermissionSet>> {
    let mut current = match known.sets.get(name) {
        Some(s) => ic.describe_permission_set(&inst.arn, &s.arn).await?,
        None => None,
    };
    if current.is_none() {
        known.sets = ic
            .permission_sets(&inst.arn)
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        if let Some(s) = known.sets.get(name) {
            current = ic.describe_permission_set(&inst.arn, &s.arn).await?;
        }
    }
    match current {
        Some((s, description)) if description.starts_with(OWN_SET) => Ok(Some(s)),
        Some((s, _)) => Err(Terminal(format!(
            "a permission set `{name}` exists that orgvend did not make ({}): rename or delete it, or choose another access.identity_center.permission_set_prefix",
            s.arn
        ))
        .into()),
        None => Ok(None),
    }
}

/// The role's permission set as it is, for a grant or a revocation: its entitlement (which
/// makes and repairs it) comes before them in every plan.
async fn existing_set<A>(
    ic: &dyn IdentityCenter,
    applier: &Applier<A>,
    policy: &Policy,
    role: &str,
) -> Result<(Instance, Option<PermissionSet>)> {
    let inst = instance(ic, applier).await?;
    let name = policy.access.permission_set_name(role);
    let mut known = applier.access.ic.lock().await;
    let set = find_set(ic, &inst, &mut known, &name).await?;
    Ok((inst, set))
}

/// The group's id in the identity store; created only where the policy allows it.
async fn group_id(
    ic: &dyn IdentityCenter,
    inst: &Instance,
    policy: &Policy,
    group: &str,
) -> Result<String> {
    if let Some(id) = ic.group_id(&inst.identity_store_id, group).await? {
        return Ok(id);
    }
    if !policy.access.identity_center.create_groups {
        return Err(Terminal(format!(
            "the identity store has no group `{group}`: with an external identity provider it must come from there (SCIM); or set access.identity_center.create_groups"
        ))
        .into());
    }
    ic.create_group(&inst.identity_store_id, group).await
}

async fn unassign<A>(
    ic: &dyn IdentityCenter,
    applier: &Applier<A>,
    inst: &Instance,
    account: &str,
    set: &str,
    principal: &Principal,
) -> Result<()> {
    let _slot = applier.access.outstanding.acquire().await?;
    let started = ic
        .delete_assignment(&inst.arn, account, set, principal)
        .await?;
    finish(ic, applier, inst, Operation::Deletion, started).await
}

/// Polls an asynchronous operation until it succeeds, fails, or the creation timeout passes
/// (then the step fails, and its next attempt looks again before it asks again).
async fn finish<A>(
    ic: &dyn IdentityCenter,
    applier: &Applier<A>,
    inst: &Instance,
    op: Operation,
    mut progress: Progress,
) -> Result<()> {
    let what = match op {
        Operation::Provisioning => "provisioning the permission set",
        Operation::Creation => "the account assignment",
        Operation::Deletion => "deleting the account assignment",
    };
    let deadline = Instant::now() + applier.settings.create_timeout;
    let mut wait = applier.settings.poll.max(Duration::from_millis(10));
    loop {
        let request_id = match progress {
            Progress::Succeeded => return Ok(()),
            Progress::Failed { reason } => bail!("Identity Center: {what} failed: {reason}"),
            Progress::InProgress { request_id } => request_id,
        };
        if Instant::now() >= deadline {
            bail!(
                "Identity Center: {what} ({request_id}) still in progress after {} s",
                applier.settings.create_timeout.as_secs()
            );
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        progress = match op {
            Operation::Provisioning => ic.provisioning_status(&inst.arn, &request_id).await?,
            Operation::Creation => {
                ic.assignment_creation_status(&inst.arn, &request_id)
                    .await?
            }
            Operation::Deletion => {
                ic.assignment_deletion_status(&inst.arn, &request_id)
                    .await?
            }
        };
    }
}
