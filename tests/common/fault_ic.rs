//! A layer over the real Identity Center client (talking to moto) for what moto cannot show,
//! written from AWS's documented shapes: `PutPermissionsBoundaryToPermissionSet` and
//! `GetPermissionsBoundaryForPermissionSet` (moto answers 500), AWS managed policies with a
//! path (`job-function/ViewOnlyAccess`, which moto refuses), operations that stay
//! `IN_PROGRESS` for a while (moto's succeed at once, and it answers 500 to
//! `DescribePermissionSetProvisioningStatus`), `ConflictException` and throttling, and
//! answers lost after the work was done. Every write is counted; so are assignments made
//! twice (moto accepts duplicates; AWS would not create a second one).
#![allow(dead_code)]

use anyhow::Result;
use futures_util::future::BoxFuture;
use orgvend::aws::AwsError;
use orgvend::aws::identity_center::{IdentityCenter, Instance, PermissionSet, Principal, Progress};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
pub struct IcScript {
    /// Polls an assignment or provisioning operation answers IN_PROGRESS before it finishes.
    pub in_progress_polls: usize,
    /// Writes answered ConflictException ("another operation is in progress") first.
    pub conflict_next: usize,
    /// Writes answered ThrottlingException first.
    pub throttle_next: usize,
    /// The next CreateAccountAssignment is done, and its answer lost.
    pub lose_next_assignment: bool,
}

pub struct FaultIc<I> {
    pub inner: I,
    pub script: Mutex<IcScript>,
    /// permission set → customer-managed boundary name.
    boundaries: Mutex<HashMap<String, String>>,
    /// permission set → AWS managed policies with a path.
    path_policies: Mutex<HashMap<String, Vec<String>>>,
    /// request id → polls left before it succeeds.
    operations: Mutex<HashMap<String, usize>>,
    next_request: AtomicUsize,
    pub writes: AtomicUsize,
    /// (account, permission set, group) of every CreateAccountAssignment that reached AWS.
    pub created: Mutex<Vec<(String, String, String)>>,
    pub outstanding: AtomicUsize,
    pub max_outstanding: AtomicUsize,
    pub provisioned_all: AtomicUsize,
}

fn aws_error(code: &str, message: &str) -> anyhow::Error {
    AwsError {
        code: Some(code.into()),
        message: message.into(),
    }
    .into()
}

/// A managed policy ARN with a path (`arn:aws:iam::aws:policy/job-function/ViewOnlyAccess`).
fn has_path(arn: &str) -> bool {
    arn.split_once(":policy/")
        .is_some_and(|(_, rest)| rest.contains('/'))
}

impl<I: IdentityCenter> FaultIc<I> {
    pub fn new(inner: I) -> FaultIc<I> {
        FaultIc {
            inner,
            script: Mutex::default(),
            boundaries: Mutex::default(),
            path_policies: Mutex::default(),
            operations: Mutex::default(),
            next_request: AtomicUsize::new(1),
            writes: AtomicUsize::new(0),
            created: Mutex::default(),
            outstanding: AtomicUsize::new(0),
            max_outstanding: AtomicUsize::new(0),
            provisioned_all: AtomicUsize::new(0),
        }
    }

    pub fn boundary_of(&self, arn: &str) -> Option<String> {
        self.boundaries.lock().unwrap().get(arn).cloned()
    }

    /// Counts a write; the scripted faults answer it first.
    fn write(&self) -> Result<()> {
        let mut s = self.script.lock().unwrap();
        if s.throttle_next > 0 {
            s.throttle_next -= 1;
            return Err(aws_error("ThrottlingException", "Rate exceeded"));
        }
        if s.conflict_next > 0 {
            s.conflict_next -= 1;
            return Err(aws_error(
                "ConflictException",
                "Operation is in progress for this resource",
            ));
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// An operation that succeeded at moto, shown IN_PROGRESS for the scripted polls.
    fn started(&self, done: Progress) -> Progress {
        let polls = self.script.lock().unwrap().in_progress_polls;
        if polls == 0 || done != Progress::Succeeded {
            return done;
        }
        let id = format!("req-{}", self.next_request.fetch_add(1, Ordering::SeqCst));
        self.operations.lock().unwrap().insert(id.clone(), polls);
        let now = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_outstanding.fetch_max(now, Ordering::SeqCst);
        Progress::InProgress { request_id: id }
    }

    fn poll(&self, request_id: &str) -> Result<Progress> {
        let mut ops = self.operations.lock().unwrap();
        let left = ops
            .get_mut(request_id)
            .ok_or_else(|| aws_error("ResourceNotFoundException", "no such request"))?;
        if *left > 1 {
            *left -= 1;
            return Ok(Progress::InProgress {
                request_id: request_id.to_string(),
            });
        }
        ops.remove(request_id);
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        Ok(Progress::Succeeded)
    }
}

impl<I: IdentityCenter> IdentityCenter for FaultIc<I> {
    fn instance(&self) -> BoxFuture<'_, Result<Instance>> {
        self.inner.instance()
    }

    fn permission_sets<'a>(
        &'a self,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PermissionSet>>> {
        self.inner.permission_sets(instance)
    }

    fn create_permission_set<'a>(
        &'a self,
        instance: &'a str,
        name: &'a str,
        description: &'a str,
        session_duration: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            self.write()?;
            self.inner
                .create_permission_set(instance, name, description, session_duration)
                .await
        })
    }

    fn update_permission_set<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        session_duration: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.write()?;
            self.inner
                .update_permission_set(instance, arn, session_duration)
                .await
        })
    }

    fn managed_policies<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let mut out = self.inner.managed_policies(instance, arn).await?;
            out.extend(
                self.path_policies
                    .lock()
                    .unwrap()
                    .get(arn)
                    .cloned()
                    .unwrap_or_default(),
            );
            Ok(out)
        })
    }

    fn attach_managed_policy<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        policy_arn: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.write()?;
            if has_path(policy_arn) {
                let mut all = self.path_policies.lock().unwrap();
                let list = all.entry(arn.to_string()).or_default();
                if !list.iter().any(|p| p == policy_arn) {
                    list.push(policy_arn.to_string());
                }
                return Ok(());
            }
            self.inner
                .attach_managed_policy(instance, arn, policy_arn)
                .await
        })
    }

    fn detach_managed_policy<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        policy_arn: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.write()?;
            if has_path(policy_arn) {
                if let Some(list) = self.path_policies.lock().unwrap().get_mut(arn) {
                    list.retain(|p| p != policy_arn);
                }
                return Ok(());
            }
            self.inner
                .detach_managed_policy(instance, arn, policy_arn)
                .await
        })
    }

    fn permissions_boundary<'a>(
        &'a self,
        _instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move { Ok(self.boundary_of(arn)) })
    }

    fn put_permissions_boundary<'a>(
        &'a self,
        _instance: &'a str,
        arn: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.write()?;
            self.boundaries
                .lock()
                .unwrap()
                .insert(arn.to_string(), name.to_string());
            Ok(())
        })
    }

    fn provision_all<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            self.write()?;
            self.provisioned_all.fetch_add(1, Ordering::SeqCst);
            let done = self.inner.provision_all(instance, arn).await?;
            Ok(self.started(done))
        })
    }

    fn provisioning_status<'a>(
        &'a self,
        _instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move { self.poll(request_id) })
    }

    fn group_id<'a>(
        &'a self,
        store: &'a str,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        self.inner.group_id(store, display_name)
    }

    fn create_group<'a>(
        &'a self,
        store: &'a str,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            self.write()?;
            self.inner.create_group(store, display_name).await
        })
    }

    fn assigned<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Principal>>> {
        self.inner.assigned(instance, account, arn)
    }

    fn describe_permission_set<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<(PermissionSet, String)>>> {
        self.inner.describe_permission_set(instance, arn)
    }

    fn create_assignment<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
        group_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            self.write()?;
            self.created.lock().unwrap().push((
                account.to_string(),
                arn.to_string(),
                group_id.to_string(),
            ));
            let done = self
                .inner
                .create_assignment(instance, account, arn, group_id)
                .await?;
            let lose = std::mem::take(&mut self.script.lock().unwrap().lose_next_assignment);
            if lose {
                return Err(aws_error(
                    "Unanswered",
                    "the connection closed before the answer",
                ));
            }
            Ok(self.started(done))
        })
    }

    fn assignment_creation_status<'a>(
        &'a self,
        _instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move { self.poll(request_id) })
    }

    fn delete_assignment<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
        principal: &'a Principal,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            self.write()?;
            let done = self
                .inner
                .delete_assignment(instance, account, arn, principal)
                .await?;
            Ok(self.started(done))
        })
    }

    fn assignment_deletion_status<'a>(
        &'a self,
        _instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move { self.poll(request_id) })
    }
}
