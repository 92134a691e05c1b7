//! [`Aws`] on the AWS SDK for Rust. Credentials come from the default chain; the endpoint may
//! be overridden (moto, LocalStack), in which case S3 uses path-style addressing. Every call
//! is counted as a read or a write.
//!
//! Retries: one layer per call, the SDK's standard `RetryConfig` (throttling and transient
//! failures, with backoff and jitter), configured once here from `[aws]`. `CreateAccount` is
//! never retried by the SDK — a retry after a lost answer would start a second creation that
//! fails with `EMAIL_ALREADY_EXISTS` while the first succeeds — so its unanswered failures go
//! back to the apply, which looks for the account it may have started before it asks again
//! (the ledger's `creating` mark). A call that got no answer at all is `Unanswered`: the
//! worker tries the apply again later.

use super::{Aws, AwsError, Calls, CreateRequest, CreateState, NewAccount, OrgAccount};
use anyhow::{Context, Result};

/// The account's guard: KMS, Config, CloudTrail.
/// The Account Management API: renames and email changes.
mod account;
mod guard;
/// IAM Identity Center, from the management (or delegated administrator) account.
mod identity_center;
/// Inside a member account.
mod member;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_organizations::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls;
pub use identity_center::SdkIdentityCenter;
pub use member::SdkMember;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where and how to reach AWS.
#[derive(Debug, Clone)]
pub struct AwsTarget {
    pub region: String,
    /// `None` for AWS itself; `http://127.0.0.1:5000` for moto.
    pub endpoint_url: Option<String>,
    /// Fixed keys for a local endpoint (moto); `None` uses the default credential chain.
    pub static_keys: Option<(String, String)>,
    /// The Account Management API's endpoint, where it differs from `endpoint_url` (moto
    /// has none: the tests' fake of it).
    pub account_endpoint_url: Option<String>,
    /// Attempts per call, the first included (the SDK's standard retry).
    pub max_attempts: u32,
    /// How long one attempt of a call may take.
    pub attempt_timeout: Duration,
}

impl AwsTarget {
    pub fn of(aws: &crate::config::AwsConfig) -> AwsTarget {
        AwsTarget {
            region: aws.region.clone(),
            endpoint_url: aws.endpoint_url.clone(),
            static_keys: None,
            account_endpoint_url: aws.account_endpoint_url.clone(),
            max_attempts: aws.max_attempts,
            attempt_timeout: Duration::from_secs(aws.attempt_timeout_seconds),
        }
    }
}

/// Checks the running attempt's hold ([`crate::hold`]) before every attempt of a call,
/// the SDK's own retries included: a process that stalled in the middle of a call does not
/// send it again once its lease is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoldCheck;

impl aws_smithy_runtime_api::client::interceptors::Intercept for HoldCheck {
    fn name(&self) -> &'static str {
        "orgvend-hold"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_sdk_organizations::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        crate::hold::check().map_err(Into::into)
    }
}

/// The code of a call that got no answer (a timeout, a broken connection).
pub const UNANSWERED: &str = "Unanswered";

pub(crate) fn err<E, R>(e: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // refused by the hold, before an attempt: say so, not "unanswered"
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.downcast_ref::<crate::hold::HoldLost>().is_some() {
            return crate::hold::HoldLost.into();
        }
        source = s.source();
    }
    let unanswered = matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    let code = if unanswered {
        Some(UNANSWERED.to_string())
    } else {
        e.code().map(str::to_string)
    };
    let message = e
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| DisplayErrorContext(&e).to_string());
    AwsError { code, message }.into()
}

fn code_of<E: ProvideErrorMetadata>(e: &E) -> Option<&str> {
    e.code()
}

/// The SDK's HTTP client on rustls with ring (no aws-lc; see reference/build-stack.md).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

pub struct SdkAws {
    base: SdkConfig,
    orgs: aws_sdk_organizations::Client,
    account: aws_sdk_account::Client,
    sts: aws_sdk_sts::Client,
    path_style: bool,
    calls: Arc<Calls>,
}

impl SdkAws {
    /// Loads the configuration (credentials from the default chain). No API call is made.
    pub async fn new(target: &AwsTarget) -> SdkAws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(target.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(500))
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(target.attempt_timeout)
                    .build(),
            )
            .region(Region::new(target.region.clone()));
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &target.static_keys {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                key, secret, None, None, "static",
            ));
        }
        let base = loader.load().await;
        let mut account = aws_sdk_account::config::Builder::from(&base).interceptor(HoldCheck);
        if let Some(url) = &target.account_endpoint_url {
            account = account.endpoint_url(url);
        }
        SdkAws {
            account: aws_sdk_account::Client::from_conf(account.build()),
            orgs: aws_sdk_organizations::Client::from_conf(
                aws_sdk_organizations::config::Builder::from(&base)
                    .interceptor(HoldCheck)
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&base)
                    .interceptor(HoldCheck)
                    .build(),
            ),
            path_style: target.endpoint_url.is_some(),
            base,
            calls: Arc::new(Calls::default()),
        }
    }
}

impl SdkAws {
    /// The management account's view of the organization's trails.
    pub(super) fn cloudtrail(&self) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(&self.base)
                .interceptor(HoldCheck)
                .build(),
        )
    }

    /// Identity Center through the same configuration (credentials, endpoint, retries).
    pub fn identity_center(&self) -> SdkIdentityCenter {
        SdkIdentityCenter::new(&self.base, HoldCheck)
    }
}

impl Aws for SdkAws {
    type Member = SdkMember;

    async fn organization_trails(&self) -> Result<Vec<super::guard::TrailState>> {
        self.calls.read()?;
        guard::trails(&self.cloudtrail(), None, true).await
    }

    fn calls(&self) -> &Calls {
        &self.calls
    }

    async fn list_accounts(&self) -> Result<Vec<OrgAccount>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.calls.read()?;
            let page = self
                .orgs
                .list_accounts()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(err)?;
            out.extend(page.accounts().iter().map(|a| {
                OrgAccount {
                    id: a.id().unwrap_or_default().to_string(),
                    name: a.name().unwrap_or_default().to_string(),
                    email: a.email().unwrap_or_default().to_string(),
                    status: a
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                }
            }));
            // a page may be empty before the end: only the token says when it ends
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn create_account(&self, a: &NewAccount) -> Result<String> {
        let tags = a
            .tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_organizations::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.calls.write()?;
        let out = self
            .orgs
            .create_account()
            .email(&a.email)
            .account_name(&a.name)
            .role_name(&a.role_name)
            .iam_user_access_to_billing(aws_sdk_organizations::types::IamUserAccessToBilling::Deny)
            .set_tags(Some(tags).filter(|t| !t.is_empty()))
            .customize()
            .config_override(
                aws_sdk_organizations::Config::builder().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(err)?;
        out.create_account_status()
            .and_then(|s| s.id())
            .map(str::to_string)
            .context("CreateAccount answered without a request id")
    }

    async fn create_account_status(&self, request_id: &str) -> Result<CreateState> {
        self.calls.read()?;
        let out = self
            .orgs
            .describe_create_account_status()
            .create_account_request_id(request_id)
            .send()
            .await
            .map_err(err)?;
        let s = out
            .create_account_status()
            .context("no status in the answer")?;
        Ok(state_of(s))
    }

    async fn list_create_requests(&self) -> Result<Vec<CreateRequest>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.calls.read()?;
            let page = self
                .orgs
                .list_create_account_status()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(err)?;
            out.extend(
                page.create_account_statuses()
                    .iter()
                    .map(|s| CreateRequest {
                        id: s.id().unwrap_or_default().to_string(),
                        account_name: s.account_name().unwrap_or_default().to_string(),
                        state: state_of(s),
                    }),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn caller_account_id(&self) -> Result<String> {
        self.calls.read()?;
        let out = self.sts.get_caller_identity().send().await.map_err(err)?;
        out.account()
            .map(str::to_string)
            .context("GetCallerIdentity answered without an account")
    }

    async fn management_account_id(&self) -> Result<String> {
        self.calls.read()?;
        let out = self
            .orgs
            .describe_organization()
            .send()
            .await
            .map_err(err)?;
        out.organization()
            .and_then(|o| o.master_account_id())
            .map(str::to_string)
            .context("DescribeOrganization answered without the management account")
    }

    async fn root_id(&self) -> Result<String> {
        self.calls.read()?;
        let out = self.orgs.list_roots().send().await.map_err(err)?;
        out.roots()
            .first()
            .and_then(|r| r.id())
            .map(str::to_string)
            .context("the organization has no root")
    }

    async fn child_ous(&self, parent: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.calls.read()?;
            let page = self
                .orgs
                .list_organizational_units_for_parent()
                .parent_id(parent)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(err)?;
            out.extend(page.organizational_units().iter().map(|ou| {
                (
                    ou.id().unwrap_or_default().to_string(),
                    ou.name().unwrap_or_default().to_string(),
                )
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn parent_of(&self, account_id: &str) -> Result<String> {
        self.calls.read()?;
        let out = self
            .orgs
            .list_parents()
            .child_id(account_id)
            .send()
            .await
            .map_err(err)?;
        out.parents()
            .first()
            .and_then(|p| p.id())
            .map(str::to_string)
            .context("the account has no parent")
    }

    async fn move_account(&self, account_id: &str, from: &str, to: &str) -> Result<()> {
        self.calls.write()?;
        self.orgs
            .move_account()
            .account_id(account_id)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn account_tags(&self, account_id: &str) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            self.calls.read()?;
            let page = self
                .orgs
                .list_tags_for_resource()
                .resource_id(account_id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(err)?;
            out.extend(
                page.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn tag_account(&self, account_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_organizations::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.calls.write()?;
        self.orgs
            .tag_resource()
            .resource_id(account_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn untag_account(&self, account_id: &str, keys: &[String]) -> Result<()> {
        self.calls.write()?;
        self.orgs
            .untag_resource()
            .resource_id(account_id)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn close_account(&self, account_id: &str) -> Result<()> {
        self.calls.write()?;
        let out = self
            .orgs
            .close_account()
            .account_id(account_id)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) => {
                use aws_sdk_organizations::operation::close_account::CloseAccountError;
                // the reason (CLOSE_ACCOUNT_QUOTA_EXCEEDED, …) first in the message
                if let SdkError::ServiceError(s) = &e
                    && let CloseAccountError::ConstraintViolationException(c) = s.err()
                {
                    return Err(AwsError {
                        code: Some("ConstraintViolationException".into()),
                        message: format!(
                            "{}: {}",
                            c.reason().map(|r| r.as_str()).unwrap_or("UNKNOWN"),
                            c.message().unwrap_or_default()
                        ),
                    }
                    .into());
                }
                Err(err(e))
            }
        }
    }

    async fn start_email_update(&self, account_id: &str, email: &str) -> Result<()> {
        self.start_email(account_id, email).await
    }

    async fn accept_email_update(
        &self,
        account_id: &str,
        email: &str,
        code: &crate::config::Secret,
    ) -> Result<()> {
        self.accept_email(account_id, email, code).await
    }

    async fn rename_account(&self, account_id: &str, name: &str) -> Result<()> {
        self.put_name(account_id, name).await
    }

    async fn assume(&self, account_id: &str, role_name: &str) -> Result<SdkMember> {
        self.calls.read()?;
        let out = self
            .sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account_id}:role/{role_name}"))
            .role_session_name("orgvend")
            .send()
            .await
            .map_err(err)?;
        let c = out
            .credentials()
            .context("AssumeRole answered without credentials")?;
        let creds = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "orgvend-assumed-role",
        );
        let config = self
            .base
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            )
            .build();
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(self.path_style)
            .interceptor(HoldCheck)
            .build();
        Ok(SdkMember {
            account_id: account_id.to_string(),
            region: self
                .base
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
                    .interceptor(HoldCheck)
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&config)
                    .interceptor(HoldCheck)
                    .build(),
            ),
            guard: guard::GuardClients::new(&config, HoldCheck),
            calls: self.calls.clone(),
        })
    }
}

fn state_of(s: &aws_sdk_organizations::types::CreateAccountStatus) -> CreateState {
    use aws_sdk_organizations::types::CreateAccountState as S;
    match s.state() {
        Some(S::Succeeded) => CreateState::Succeeded {
            account_id: s.account_id().unwrap_or_default().to_string(),
        },
        Some(S::Failed) => CreateState::Failed {
            reason: s
                .failure_reason()
                .map(|r| r.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".into()),
        },
        _ => CreateState::InProgress,
    }
}
