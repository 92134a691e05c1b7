//! IAM Identity Center in orgvend's words: permission sets, groups of the identity store,
//! and account assignments. One API call (or one paginated listing) per method, so a caller
//! always checks before it changes. Object-safe (boxed futures): the apply holds it as
//! `Arc<dyn IdentityCenter>`, the SDK's in production, a fault layer over moto in tests.

use anyhow::Result;
use futures_util::future::BoxFuture;

/// A permission set as orgvend compares it with the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSet {
    pub arn: String,
    pub name: String,
    /// ISO-8601 (`PT8H`).
    pub session_duration: Option<String>,
}

/// Who an account assignment is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Principal {
    Group(String),
    User(String),
}

impl Principal {
    pub fn id(&self) -> &str {
        match self {
            Principal::Group(id) | Principal::User(id) => id,
        }
    }
}

/// Where an asynchronous Identity Center operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    InProgress { request_id: String },
    Succeeded,
    Failed { reason: String },
}

/// The instance (`arn:aws:sso:::instance/ssoins-…`) and its identity store (`d-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub arn: String,
    pub identity_store_id: String,
}

pub trait IdentityCenter: Send + Sync + 'static {
    /// The organization's instance (ListInstances; an organization has one).
    fn instance(&self) -> BoxFuture<'_, Result<Instance>>;
    /// Every permission set of the instance, described.
    fn permission_sets<'a>(
        &'a self,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PermissionSet>>>;
    /// The permission set as it is now, with its description (orgvend marks its own there);
    /// `None` when it is gone.
    fn describe_permission_set<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<(PermissionSet, String)>>>;
    /// Returns the new permission set's ARN.
    fn create_permission_set<'a>(
        &'a self,
        instance: &'a str,
        name: &'a str,
        description: &'a str,
        session_duration: &'a str,
    ) -> BoxFuture<'a, Result<String>>;
    fn update_permission_set<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        session_duration: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// The AWS managed policies attached (their ARNs).
    fn managed_policies<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>>>;
    fn attach_managed_policy<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        policy_arn: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    fn detach_managed_policy<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        policy_arn: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// The name of the customer-managed policy that bounds the permission set, if any.
    fn permissions_boundary<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>>;
    /// Bounds the permission set by the customer-managed policy `name` (path `/`) that each
    /// account holds.
    fn put_permissions_boundary<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// Provisions the permission set to every account it is provisioned to (after a change).
    fn provision_all<'a>(
        &'a self,
        instance: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Progress>>;
    fn provisioning_status<'a>(
        &'a self,
        instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>>;
    /// The group with this display name in the identity store (GetGroupId).
    fn group_id<'a>(
        &'a self,
        store: &'a str,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>>;
    fn create_group<'a>(
        &'a self,
        store: &'a str,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<String>>;
    /// Everyone assigned the permission set on the account: groups and users.
    fn assigned<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Principal>>>;
    fn create_assignment<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
        group_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>>;
    fn assignment_creation_status<'a>(
        &'a self,
        instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>>;
    fn delete_assignment<'a>(
        &'a self,
        instance: &'a str,
        account: &'a str,
        arn: &'a str,
        principal: &'a Principal,
    ) -> BoxFuture<'a, Result<Progress>>;
    fn assignment_deletion_status<'a>(
        &'a self,
        instance: &'a str,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress>>;
}
