//! AWS, in orgvend's words: what the apply reads and changes in the organization (from the
//! management account) and inside a member account (through the role AWS creates in it).
//! One implementation, [`sdk::SdkAws`], on the AWS SDK for Rust; the endpoint can point at
//! moto or LocalStack. Every method is one API call or one paginated listing, so a caller can
//! always check before it changes.

/// The account's guard: KMS key, Config, CloudTrail.
pub mod guard;
/// IAM Identity Center: permission sets, identity-store groups, account assignments.
pub mod identity_center;
pub mod sdk;

use anyhow::Result;
use std::collections::BTreeMap;
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateState {
    InProgress,
    Succeeded {
        account_id: String,
    },
    /// AWS's `FailureReason` (`EMAIL_ALREADY_EXISTS`, …).
    Failed {
        reason: String,
    },
}

/// A CreateAccount request as `ListCreateAccountStatus` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub id: String,
    pub account_name: String,
    pub state: CreateState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub name: String,
    pub email: String,
    pub role_name: String,
    pub tags: BTreeMap<String, String>,
}

/// A role as the baseline cares about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleState {
    pub boundary: Option<String>,
    pub attached: Vec<String>,
    /// The trust policy, as JSON.
    pub trust: Option<String>,
}

/// A customer-managed policy: its default version's document and its other versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagedPolicy {
    pub arn: String,
    /// The default version's document, as JSON.
    pub document: String,
    /// The versions that are not the default, oldest first (IAM keeps at most five).
    pub other_versions: Vec<String>,
}

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// A bucket as the baseline cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketState {
    pub versioned: bool,
    pub encrypted: bool,
    pub public_access_blocked: bool,
}

/// AWS API calls made, split into reads and changes (for the benchmarks and the
/// "a second apply changes nothing" guarantee).
#[derive(Debug, Default)]
pub struct Calls {
    pub reads: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
}

impl Calls {
    /// Counts a read, if the running attempt still holds its delivery ([`crate::hold`]).
    pub fn read(&self) -> Result<(), crate::hold::HoldLost> {
        crate::hold::check()?;
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    /// Counts a change, if the running attempt still holds its delivery.
    pub fn write(&self) -> Result<(), crate::hold::HoldLost> {
        crate::hold::check()?;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.reads.load(std::sync::atomic::Ordering::Relaxed),
            self.writes.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// The organization, from the management account.
pub trait Aws: Send + Sync + 'static {
    type Member: MemberAws + guard::MemberGuard;

    fn calls(&self) -> &Calls;
    fn list_accounts(&self) -> impl Future<Output = Result<Vec<OrgAccount>>> + Send;
    /// Starts a creation; returns the request id (`car-…`). Not idempotent.
    fn create_account(&self, account: &NewAccount) -> impl Future<Output = Result<String>> + Send;
    fn create_account_status(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<CreateState>> + Send;
    fn list_create_requests(&self) -> impl Future<Output = Result<Vec<CreateRequest>>> + Send;
    fn root_id(&self) -> impl Future<Output = Result<String>> + Send;
    /// The account orgvend's credentials belong to (STS GetCallerIdentity).
    fn caller_account_id(&self) -> impl Future<Output = Result<String>> + Send;
    /// The organization's management account (never adopted, never changed by orgvend).
    fn management_account_id(&self) -> impl Future<Output = Result<String>> + Send;
    /// The OUs directly under `parent`: (id, name).
    fn child_ous(&self, parent: &str)
    -> impl Future<Output = Result<Vec<(String, String)>>> + Send;
    fn parent_of(&self, account_id: &str) -> impl Future<Output = Result<String>> + Send;
    fn move_account(
        &self,
        account_id: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn account_tags(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>>> + Send;
    fn tag_account(
        &self,
        account_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn untag_account(
        &self,
        account_id: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<()>> + Send;
    fn close_account(&self, account_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Starts changing a member account's primary email (`StartPrimaryEmailUpdate`): AWS
    /// mails a one-time code to `email`.
    fn start_email_update(
        &self,
        account_id: &str,
        email: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Completes it with the code (`AcceptPrimaryEmailUpdate`). The code is never logged.
    fn accept_email_update(
        &self,
        account_id: &str,
        email: &str,
        code: &crate::config::Secret,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Renames a member account (Account Management API `PutAccountName`, from the
    /// management account; needs trusted access for AWS Account Management).
    fn rename_account(
        &self,
        account_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The organization's trails as the management account sees them (with their status).
    fn organization_trails(&self) -> impl Future<Output = Result<Vec<guard::TrailState>>> + Send;
    /// Credentials inside a member account, through `role_name`.
    fn assume(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> impl Future<Output = Result<Self::Member>> + Send;
}

/// Inside one member account.
pub trait MemberAws: Send + Sync + 'static {
    fn account_id(&self) -> &str;
    fn alias(&self) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Sets the alias (an account has one: an old one is deleted first).
    fn set_alias(
        &self,
        alias: &str,
        replacing: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The ARN of the SAML provider called `name`, if it exists.
    fn saml_provider(&self, name: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    fn create_saml_provider(
        &self,
        name: &str,
        metadata: &str,
    ) -> impl Future<Output = Result<String>> + Send;
    /// The customer-managed policy `name` with its default version's document, if it exists.
    fn policy(&self, name: &str) -> impl Future<Output = Result<Option<ManagedPolicy>>> + Send;
    fn create_policy(
        &self,
        name: &str,
        document: &str,
    ) -> impl Future<Output = Result<String>> + Send;
    /// A new default version of the policy `name`.
    fn create_policy_version(
        &self,
        name: &str,
        document: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_policy_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn role(&self, name: &str) -> impl Future<Output = Result<Option<RoleState>>> + Send;
    fn create_role(
        &self,
        name: &str,
        trust: &str,
        boundary: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn update_trust(&self, role: &str, trust: &str) -> impl Future<Output = Result<()>> + Send;
    /// The ARN of the OIDC provider for `url` (`https://gitlab.example.com`), if it exists.
    fn oidc_provider(&self, url: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    fn create_oidc_provider(
        &self,
        url: &str,
        audience: &str,
    ) -> impl Future<Output = Result<String>> + Send;
    fn attach_role_policy(
        &self,
        role: &str,
        policy_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn put_role_boundary(
        &self,
        role: &str,
        boundary_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// `None` when no bucket of that name exists; an error when another account owns it.
    fn bucket(&self, name: &str) -> impl Future<Output = Result<Option<BucketState>>> + Send;
    fn create_bucket(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn enable_versioning(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn enable_encryption(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn block_public_access(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn table_exists(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;
    fn create_lock_table(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
}

/// An AWS error with its code, for the caller to branch on.
#[derive(Debug)]
pub struct AwsError {
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    /// Throttling and AWS's own transient failures: worth trying again soon.
    pub fn retryable(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "TooManyRequestsException"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "ConcurrentModificationException"
                    | "ConflictException"
                    | "ServiceException"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "Unanswered"
            )
        )
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "AWS {c}: {}", self.message),
            None => write!(f, "AWS: {}", self.message),
        }
    }
}

impl std::error::Error for AwsError {}

/// Whether an error chain holds an [`AwsError`] with this code.
pub fn has_code(e: &anyhow::Error, code: &str) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<AwsError>()
            .is_some_and(|a| a.code.as_deref() == Some(code))
    })
}

/// Whether an error chain holds an [`AwsError`] whose message names this reason (the
/// `Reason` of Organizations' `ConstraintViolationException`, put first in the message).
pub fn has_reason(e: &anyhow::Error, reason: &str) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<AwsError>()
            .is_some_and(|a| a.message.starts_with(reason))
    })
}

/// Whether an error chain holds a retryable [`AwsError`].
pub fn is_retryable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<AwsError>()
            .is_some_and(AwsError::retryable)
    })
}

/// The clear sentence for each `CreateAccountFailureReason`, and whether trying again may help.
pub fn failure_reason(reason: &str) -> (&'static str, bool) {
    match reason {
        "EMAIL_ALREADY_EXISTS" => (
            "an AWS account with this email already exists (emails can never be reused): choose another email",
            false,
        ),
        "ACCOUNT_LIMIT_EXCEEDED" => (
            "the organization has reached its account quota: ask AWS Support for a higher quota",
            false,
        ),
        "INVALID_ADDRESS" => (
            "AWS refused the organization's address: fix it in the management account",
            false,
        ),
        "INVALID_EMAIL" => ("AWS refused the email address as invalid", false),
        "CONCURRENT_ACCOUNT_MODIFICATION" => (
            "another change to the organization ran at the same moment",
            true,
        ),
        "INTERNAL_FAILURE" => ("AWS failed internally", true),
        "GOVCLOUD_ACCOUNT_ALREADY_EXISTS" => {
            ("a GovCloud account already exists for this account", false)
        }
        "MISSING_BUSINESS_VALIDATION"
        | "FAILED_BUSINESS_VALIDATION"
        | "PENDING_BUSINESS_VALIDATION"
        | "INVALID_IDENTITY_FOR_BUSINESS_VALIDATION"
        | "UNKNOWN_BUSINESS_VALIDATION" => (
            "AWS has not validated the organization's business details: complete them in the management account",
            false,
        ),
        "MISSING_PAYMENT_INSTRUMENT" | "INVALID_PAYMENT_INSTRUMENT" => (
            "the management account has no valid payment method: add one",
            false,
        ),
        "UPDATE_EXISTING_RESOURCE_POLICY_WITH_TAGS_NOT_SUPPORTED" => (
            "AWS cannot apply the tags with the organization's resource policy: create without tags",
            false,
        ),
        _ => ("AWS gave a reason orgvend does not know", false),
    }
}
