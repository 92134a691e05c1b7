//! [`IdentityCenter`] on the AWS SDK (`sso-admin` and `identitystore`), with the retries and
//! the hold check of every other client here. Throttling (Identity Center allows about 20
//! calls a second across the instance) is retried by the SDK's standard retry with backoff.

use super::{HoldCheck, err};
use crate::aws::identity_center::{IdentityCenter, Instance, PermissionSet, Principal, Progress};
use anyhow::{Result, anyhow};
use aws_config::SdkConfig;
use aws_sdk_identitystore::types::{AlternateIdentifier, UniqueAttribute};
use aws_sdk_ssoadmin::types::{
    AccountAssignmentOperationStatus, CustomerManagedPolicyReference,
    PermissionSetProvisioningStatus, PermissionsBoundary, PrincipalType, ProvisionTargetType,
    StatusValues, TargetType,
};
use futures_util::future::BoxFuture;

pub struct SdkIdentityCenter {
    admin: aws_sdk_ssoadmin::Client,
    store: aws_sdk_identitystore::Client,
}

impl SdkIdentityCenter {
    pub(super) fn new(base: &SdkConfig, hold: HoldCheck) -> SdkIdentityCenter {
        SdkIdentityCenter {
            admin: aws_sdk_ssoadmin::Client::from_conf(
                aws_sdk_ssoadmin::config::Builder::from(base)
                    .interceptor(hold)
                    .build(),
            ),
            store: aws_sdk_identitystore::Client::from_conf(
                aws_sdk_identitystore::config::Builder::from(base)
                    .interceptor(hold)
                    .build(),
            ),
        }
    }
}

fn progress(
    status: Option<&StatusValues>,
    request_id: Option<&str>,
    reason: Option<&str>,
) -> Progress {
    match status {
        Some(StatusValues::Succeeded) => Progress::Succeeded,
        Some(StatusValues::Failed) => Progress::Failed {
            reason: reason.unwrap_or("no reason given").to_string(),
        },
        _ => Progress::InProgress {
            request_id: request_id.unwrap_or_default().to_string(),
        },
    }
}

fn assignment(s: Option<&AccountAssignmentOperationStatus>) -> Result<Progress> {
    let s = s.ok_or_else(|| anyhow!("Identity Center returned no assignment status"))?;
    Ok(progress(s.status(), s.request_id(), s.failure_reason()))
}

fn provisioning(s: Option<&PermissionSetProvisioningStatus>) -> Result<Progress> {
    let s = s.ok_or_else(|| anyhow!("Identity Center returned no provisioning status"))?;
    Ok(progress(s.status(), s.request_id(), s.failure_reason()))
}

impl IdentityCenter for SdkIdentityCenter {
    fn instance(&self) -> BoxFuture<'_, Result<Instance>> {
        Box::pin(async move {
            let out = self.admin.list_instances().send().await.map_err(err)?;
            let i = out.instances().first().ok_or_else(|| {
                anyhow!("IAM Identity Center is not enabled in this organization (ListInstances found no instance)")
            })?;
            Ok(Instance {
                arn: i.instance_arn().unwrap_or_default().to_string(),
                identity_store_id: i.identity_store_id().unwrap_or_default().to_string(),
            })
        })
    }

    fn permission_sets<'a>(
        &'a self,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PermissionSet>>> {
        Box::pin(async move {
            let arns: Vec<String> = self
                .admin
                .list_permission_sets()
                .instance_arn(instance)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(err)?;
            let mut out = Vec::with_capacity(arns.len());
            for arn in arns {
                let d = self
                    .admin
                    .describe_permission_set()
                    .instance_arn(instance)
                    .permission_set_arn(&arn)
                    .send()
                    .await
                    .map_err(err)?;
                let ps = d.permission_set();
                out.push(PermissionSet {
                    name: ps.and_then(|p| p.name()).unwrap_or_default().to_string(),
                    session_duration: ps.and_then(|p| p.session_duration()).map(str::to_string),
                    arn,
                });
            }
            Ok(out)
        })
    }

    fn create_permission_set<'a>(
        &'a self,
        instance: &'a str,
        name: &'a str,
        description: &'a str,
        session_duration: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let out = self
                .admin
                .create_permission_set()
                .instance_arn(instance)
                .name(name)
                .description(description)
                .session_duration(session_duration)
                .send()
                .await
                .map_err(err)?;
            out.permission_set()
                .and_then(|p| p.permission_set_arn())
                .map(str::to_string)
                .ok_or_else(|| anyhow!("CreatePermissionSet returned no ARN"))
        })
    }

    fn update_permission_set<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        session_duration: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.admin
                .update_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .session_duration(session_duration)
                .send()
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn managed_policies<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let items: Vec<_> = self
                .admin
                .list_managed_policies_in_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(err)?;
            Ok(items
                .iter()
                .filter_map(|p| p.arn().map(str::to_string))
                .collect())
        })
    }

    fn attach_managed_policy<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        policy_arn: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.admin
                .attach_managed_policy_to_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .managed_policy_arn(policy_arn)
                .send()
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn detach_managed_policy<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        policy_arn: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.admin
                .detach_managed_policy_from_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .managed_policy_arn(policy_arn)
                .send()
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn permissions_boundary<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            match self
                .admin
                .get_permissions_boundary_for_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .send()
                .await
            {
                Ok(out) => Ok(out
                    .permissions_boundary()
                    .and_then(|b| b.customer_managed_policy_reference())
                    .map(|r| r.name().to_string())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(err(e)),
            }
        })
    }

    fn put_permissions_boundary<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let reference = CustomerManagedPolicyReference::builder()
                .name(name)
                .path("/")
                .build()
                .map_err(|e| anyhow!("{e}"))?;
            self.admin
                .put_permissions_boundary_to_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .permissions_boundary(
                    PermissionsBoundary::builder()
                        .customer_managed_policy_reference(reference)
                        .build(),
                )
                .send()
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn provision_all<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let out = self
                .admin
                .provision_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .target_type(ProvisionTargetType::AllProvisionedAccounts)
                .send()
                .await
                .map_err(err)?;
            provisioning(out.permission_set_provisioning_status())
        })
    }

    fn provisioning_status<'a>(
        &'a self,
        instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let out = self
                .admin
                .describe_permission_set_provisioning_status()
                .instance_arn(instance)
                .provision_permission_set_request_id(request_id)
                .send()
                .await
                .map_err(err)?;
            provisioning(out.permission_set_provisioning_status())
        })
    }

    fn group_id<'a>(
        &'a self,
        store: &'a str,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let id = AlternateIdentifier::UniqueAttribute(
                UniqueAttribute::builder()
                    .attribute_path("displayName")
                    .attribute_value(aws_smithy_types::Document::String(display_name.to_string()))
                    .build()
                    .map_err(|e| anyhow!("{e}"))?,
            );
            match self
                .store
                .get_group_id()
                .identity_store_id(store)
                .alternate_identifier(id)
                .send()
                .await
            {
                Ok(out) => Ok(Some(out.group_id().to_string())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(err(e)),
            }
        })
    }

    fn create_group<'a>(
        &'a self,
        store: &'a str,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let out = self
                .store
                .create_group()
                .identity_store_id(store)
                .display_name(display_name)
                .description("Created by orgvend")
                .send()
                .await
                .map_err(err)?;
            Ok(out.group_id().to_string())
        })
    }

    fn assigned<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Principal>>> {
        Box::pin(async move {
            let items: Vec<_> = self
                .admin
                .list_account_assignments()
                .instance_arn(instance)
                .account_id(account)
                .permission_set_arn(arn)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(err)?;
            Ok(items
                .iter()
                .filter_map(|a| {
                    let id = a.principal_id()?.to_string();
                    Some(match a.principal_type() {
                        Some(PrincipalType::Group) => Principal::Group(id),
                        _ => Principal::User(id),
                    })
                })
                .collect())
        })
    }

    fn describe_permission_set<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<(PermissionSet, String)>>> {
        Box::pin(async move {
            match self
                .admin
                .describe_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .send()
                .await
            {
                Ok(d) => Ok(d.permission_set().map(|p| {
                    (
                        PermissionSet {
                            arn: arn.to_string(),
                            name: p.name().unwrap_or_default().to_string(),
                            session_duration: p.session_duration().map(str::to_string),
                        },
                        p.description().unwrap_or_default().to_string(),
                    )
                })),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(err(e)),
            }
        })
    }

    fn create_assignment<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
        group_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let out = self
                .admin
                .create_account_assignment()
                .instance_arn(instance)
                .target_id(account)
                .target_type(TargetType::AwsAccount)
                .permission_set_arn(arn)
                .principal_type(PrincipalType::Group)
                .principal_id(group_id)
                .send()
                .await
                .map_err(err)?;
            assignment(out.account_assignment_creation_status())
        })
    }

    fn assignment_creation_status<'a>(
        &'a self,
        instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let out = self
                .admin
                .describe_account_assignment_creation_status()
                .instance_arn(instance)
                .account_assignment_creation_request_id(request_id)
                .send()
                .await
                .map_err(err)?;
            assignment(out.account_assignment_creation_status())
        })
    }

    fn delete_assignment<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
        principal: &'a Principal,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let kind = match principal {
                Principal::Group(_) => PrincipalType::Group,
                Principal::User(_) => PrincipalType::User,
            };
            let out = self
                .admin
                .delete_account_assignment()
                .instance_arn(instance)
                .target_id(account)
                .target_type(TargetType::AwsAccount)
                .permission_set_arn(arn)
                .principal_type(kind)
                .principal_id(principal.id())
                .send()
                .await
                .map_err(err)?;
            assignment(out.account_assignment_deletion_status())
        })
    }

    fn assignment_deletion_status<'a>(
        &'a self,
        instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let out = self
                .admin
                .describe_account_assignment_deletion_status()
                .instance_arn(instance)
                .account_assignment_deletion_request_id(request_id)
                .send()
                .await
                .map_err(err)?;
            assignment(out.account_assignment_deletion_status())
        })
    }
}
