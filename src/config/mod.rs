//! The service configuration, `orgvend.toml` (documented in `docs/serve.md`; an example ships
//! as `orgvend.example.toml`). Secrets come from the environment and are never printed:
//! [`Secret`]'s `Debug` and `Display` show only `***`.

/// `[drift]`.
pub mod drift;
/// `[okta]`: reaching Okta.
pub mod okta;
pub use okta::OktaConfig;

use crate::core::model::{LineIndex, Loc};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// Environment variables that override (or supply) secrets.
pub const ENV_WEBHOOK_TOKENS: &str = "ORGVEND_WEBHOOK_TOKENS";
pub const ENV_SIGNING_KEYS: &str = "ORGVEND_WEBHOOK_SIGNING_KEYS";
pub const ENV_GITLAB_TOKEN: &str = "ORGVEND_GITLAB_TOKEN";
pub const ENV_STORE_URL: &str = "ORGVEND_STORE_URL";

/// A secret value: compared and used, never shown.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub webhook: WebhookConfig,
    pub gitlab: GitlabConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// Applying merges. Without it, orgvend reviews and never applies.
    #[serde(default)]
    pub aws: Option<AwsConfig>,
    /// Bootstrapping each new account's GitLab repository. Without it, the repository steps
    /// are reported as skipped.
    #[serde(default)]
    pub bootstrap: Option<BootstrapConfig>,
    /// Who may approve the repair of a target-branch policy that does not load, when orgvend
    /// never loaded one it could fall back on. Without it, such a repair waits for one.
    #[serde(default)]
    pub fallback: Option<FallbackConfig>,
    /// Reaching Okta, for a policy that grants access through it.
    #[serde(default)]
    pub okta: Option<OktaConfig>,
    /// Drift detection on a schedule (with `[aws]`).
    #[serde(default)]
    pub drift: drift::DriftConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    /// The GitLab group whose members' approvals count.
    pub approval_group: String,
    /// How many (at least 1).
    pub approvals: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// A directory of `*.j2` templates instead of the shipped `templates/account-repo/`.
    #[serde(default)]
    pub templates_dir: Option<std::path::PathBuf>,
    /// Visibility of new projects: `private` or `internal`. Default `private`.
    #[serde(default = "default_visibility")]
    pub visibility: String,
    /// The GitLab URL that issues CI ID tokens (their `iss`), when it differs from
    /// `gitlab.url` (an internal API address). Default `gitlab.url`.
    #[serde(default)]
    pub oidc_issuer: Option<String>,
}

fn default_visibility() -> String {
    "private".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region of the API calls. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// An endpoint instead of AWS's own (moto, LocalStack). Default: AWS.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The Account Management API's endpoint, where it differs from `endpoint_url`.
    /// Default: as `endpoint_url`.
    #[serde(default)]
    pub account_endpoint_url: Option<String>,
    /// The identity provider's SAML metadata (an XML file), for each account's SAML provider.
    pub saml_metadata_file: std::path::PathBuf,
    /// How long an account creation may take before orgvend reports it and tries later.
    /// Default 1800.
    #[serde(default = "default_create_timeout")]
    pub create_timeout_seconds: u64,
    /// Account creations in flight at once; AWS allows 5 per organization. Default 5.
    #[serde(default = "default_max_creations")]
    pub max_concurrent_creations: usize,
    /// First wait between polls of a creation, in milliseconds, doubling to 8 times that (at most 30 s).
    /// Default 2000.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How long a new account may refuse AssumeRole before orgvend gives up for now, in
    /// seconds. Default 300.
    #[serde(default = "default_assume_timeout")]
    pub assume_role_timeout_seconds: u64,
    /// Attempts per AWS call, the first included: the SDK's standard retry of throttling and
    /// transient failures, the one retry layer of a call (`CreateAccount` excepted: never
    /// retried blindly). Default 5.
    #[serde(default = "default_aws_attempts")]
    pub max_attempts: u32,
    /// How long one attempt of an AWS call may take. Default 30.
    #[serde(default = "default_aws_attempt_timeout")]
    pub attempt_timeout_seconds: u64,
}

fn default_aws_attempts() -> u32 {
    5
}

fn default_aws_attempt_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/orgvend.db` (created on first run) or, for several replicas,
    /// `postgres://…`. Default `sqlite://orgvend.db`. `ORGVEND_STORE_URL` overrides it.
    #[serde(default = "default_store_url")]
    pub url: Secret,
    /// Days the body of a finished or ignored delivery is kept (for `orgvend inbox show`);
    /// then only its record remains. Waiting, running and parked deliveries keep theirs.
    /// Default 7.
    #[serde(default = "default_body_days")]
    pub body_retention_days: u64,
    /// Days a finished or ignored delivery (and its dedup key) is kept: a resend of it from
    /// GitLab within that time is recognised as a duplicate. GitLab lists a hook's requests,
    /// and offers to resend them, for 7 days (a month in older releases). Default 30.
    #[serde(default = "default_dedup_days")]
    pub dedup_retention_days: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
            body_retention_days: default_body_days(),
            dedup_retention_days: default_dedup_days(),
        }
    }
}

fn default_body_days() -> u64 {
    7
}

fn default_dedup_days() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `X-Gitlab-Token`, compared in constant time with each configured token.
    Token,
    /// GitLab's HMAC signing (`webhook-signature`), checked with each configured key.
    Signature,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The checks every delivery must pass. Default `["token"]`. A check that is not required
    /// still rejects a delivery that carries a wrong token or signature, where one is configured.
    #[serde(default = "default_require")]
    pub require: Vec<AuthMethod>,
    /// Accepted tokens (several during a rotation). Prefer `ORGVEND_WEBHOOK_TOKENS`
    /// (comma-separated), which replaces this list.
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// Accepted signing keys, `whsec_<base64>`. Prefer `ORGVEND_WEBHOOK_SIGNING_KEYS`.
    #[serde(default)]
    pub signing_keys: Vec<Secret>,
    /// How far `webhook-timestamp` may be from now, in seconds. Default 300.
    #[serde(default = "default_tolerance")]
    pub tolerance_seconds: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            require: default_require(),
            tokens: Vec::new(),
            signing_keys: Vec::new(),
            tolerance_seconds: default_tolerance(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabConfig {
    /// Base URL, e.g. `https://gitlab.example.com`.
    pub url: String,
    /// The subaccounts project, by path (`infra/subaccounts`) or numeric id. Deliveries for
    /// other projects are stored as ignored.
    pub project: ProjectSelector,
    /// The bot's username: its own notes never trigger it. Default `orgvend`.
    #[serde(default = "default_bot")]
    pub bot_username: String,
    /// The only branch orgvend reviews MRs into and applies: merges into any other branch
    /// are ignored. Default: the project's default branch, as the API says.
    #[serde(default)]
    pub target_branch: Option<String>,
    /// API token. Prefer `ORGVEND_GITLAB_TOKEN`, which replaces it.
    #[serde(default)]
    pub token: Option<Secret>,
    /// How often open MRs are checked for reviews no delivery asked for. Default 300.
    #[serde(default = "default_reconcile")]
    pub reconcile_interval_seconds: u64,
    /// Timeout of one API request, in seconds. Default 20.
    #[serde(default = "default_api_timeout")]
    pub request_timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ProjectSelector {
    Id(u64),
    Path(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Deliveries processed at once (never two of the same MR). Default 4.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Attempts before a delivery is parked. Default 8.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay in seconds, doubled each attempt. Default 2.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_seconds: u64,
    /// Longest retry delay in seconds. Default 600.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: u64,
    /// How long a claimed delivery stays claimed without renewal (renewed every third of it
    /// while its job runs): how soon another replica takes over the work of one that died.
    /// Default 30.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
    /// How often the worker looks for due retries when nothing new arrived. Default 1000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: default_concurrency(),
            max_attempts: default_max_attempts(),
            backoff_base_seconds: default_backoff_base(),
            backoff_max_seconds: default_backoff_max(),
            lease_seconds: default_lease(),
            poll_interval_ms: default_poll(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`. Default `text`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter, e.g. `info,orgvend=debug`. `RUST_LOG` overrides it. Default `info`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_store_url() -> Secret {
    Secret::new("sqlite://orgvend.db")
}
fn default_require() -> Vec<AuthMethod> {
    vec![AuthMethod::Token]
}
fn default_tolerance() -> u64 {
    300
}
fn default_bot() -> String {
    "orgvend".into()
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_create_timeout() -> u64 {
    1800
}
fn default_max_creations() -> usize {
    5
}
fn default_poll_ms() -> u64 {
    2000
}
fn default_assume_timeout() -> u64 {
    300
}
fn default_reconcile() -> u64 {
    300
}
fn default_api_timeout() -> u64 {
    20
}
fn default_concurrency() -> usize {
    4
}
fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_base() -> u64 {
    2
}
fn default_backoff_max() -> u64 {
    600
}
fn default_lease() -> u64 {
    30
}
fn default_poll() -> u64 {
    1000
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

/// A config that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub at: Option<Loc>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}:{}:{}: {}", at.file, at.line, at.col, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the file at `path` and applies the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            at: None,
            message: format!("cannot read config file {}: {e}", path.display()),
        })?;
        Config::parse(&path.display().to_string(), &text, |k| {
            std::env::var(k).ok()
        })
    }

    /// Parses `text` (named `file` in errors), then applies overrides from `env`.
    pub fn parse(
        file: &str,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let lines = LineIndex::new(text);
            let (line, col) = e
                .span()
                .map(|s| lines.line_col(text, s.start))
                .unwrap_or((1, 1));
            ConfigError {
                at: Some(Loc::new(file, line, col)),
                message: e.message().trim().to_string(),
            }
        })?;
        let list = |v: String| -> Vec<Secret> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect()
        };
        if let Some(v) = env(ENV_WEBHOOK_TOKENS) {
            config.webhook.tokens = list(v);
        }
        if let Some(v) = env(ENV_SIGNING_KEYS) {
            config.webhook.signing_keys = list(v);
        }
        if let Some(v) = env(ENV_GITLAB_TOKEN).filter(|v| !v.is_empty()) {
            config.gitlab.token = Some(Secret::new(v));
        }
        if let Some(v) = env(ENV_STORE_URL).filter(|v| !v.is_empty()) {
            config.store.url = Secret::new(v);
        }
        if let (Some(o), Some(v)) = (
            config.okta.as_mut(),
            env(okta::ENV_OKTA_TOKEN).filter(|v| !v.is_empty()),
        ) {
            o.token = Some(Secret::new(v));
        }
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError {
            at: None,
            message: format!("{file}: {message}"),
        };
        let w = &self.webhook;
        if w.require.is_empty() {
            return Err(err("webhook.require is empty: orgvend never accepts unauthenticated deliveries; use [\"token\"], [\"signature\"] or both".into()));
        }
        if w.require.contains(&AuthMethod::Token) && w.tokens.is_empty() {
            return Err(err(format!(
                "webhook.require includes \"token\" but no token is configured: set {ENV_WEBHOOK_TOKENS} (the Secret token of the GitLab webhook)"
            )));
        }
        if w.require.contains(&AuthMethod::Signature) && w.signing_keys.is_empty() {
            return Err(err(format!(
                "webhook.require includes \"signature\" but no signing key is configured: set {ENV_SIGNING_KEYS} (whsec_…)"
            )));
        }
        for (i, key) in w.signing_keys.iter().enumerate() {
            if let Err(why) = decode_signing_key(key) {
                return Err(err(format!("signing key #{} is not usable: {why}", i + 1)));
            }
        }
        if let Some(why) = self.okta.as_ref().and_then(|o| o.problem()) {
            return Err(err(why));
        }
        if self.worker.concurrency == 0 || self.worker.max_attempts == 0 {
            return Err(err(
                "worker.concurrency and worker.max_attempts must be at least 1".into(),
            ));
        }
        if !(self.gitlab.url.starts_with("http://") || self.gitlab.url.starts_with("https://")) {
            return Err(err(format!(
                "gitlab.url `{}` must start with https:// (or http:// for a local test)",
                self.gitlab.url
            )));
        }
        if let Some(aws) = &self.aws
            && !(1..=5).contains(&aws.max_concurrent_creations)
        {
            return Err(err(
                "aws.max_concurrent_creations must be 1 to 5 (AWS allows 5 creations at once)"
                    .into(),
            ));
        }
        if let Some(b) = &self.bootstrap {
            if self.aws.is_none() {
                return Err(err(
                    "[bootstrap] needs [aws]: repositories are made for the accounts orgvend creates"
                        .into(),
                ));
            }
            if !matches!(b.visibility.as_str(), "private" | "internal") {
                return Err(err(format!(
                    "bootstrap.visibility `{}` must be \"private\" or \"internal\": an account's Terraform is not public",
                    b.visibility
                )));
            }
        }
        if self.store.dedup_retention_days > 36_500 || self.store.body_retention_days > 36_500 {
            return Err(err("store.body_retention_days and store.dedup_retention_days must be at most 36500 (a hundred years)".into()));
        }
        if self.store.dedup_retention_days == 0 {
            return Err(err("store.dedup_retention_days must be at least 1: a resend from GitLab's hook log must be known as one".into()));
        }
        let sv = &self.server;
        if sv.max_connections == 0
            || sv.header_timeout_seconds == 0
            || sv.body_timeout_seconds == 0
            || sv.request_timeout_seconds == 0
        {
            return Err(err(
                "server.max_connections and the server's timeouts must be at least 1".into(),
            ));
        }
        if sv.max_body_bytes_in_flight < sv.body_limit
            || sv.max_body_bytes_in_flight > u32::MAX as usize
        {
            return Err(err(format!(
                "server.max_body_bytes_in_flight ({}) must be at least server.body_limit ({}) and at most {}",
                sv.max_body_bytes_in_flight,
                sv.body_limit,
                u32::MAX
            )));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(err(format!(
                "log.format `{}` must be \"text\" or \"json\"",
                self.log.format
            )));
        }
        let url = self.store.url.expose();
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(err("store.url must be sqlite://PATH or postgres://… (the value is not shown: it may hold a password)".into()));
        }
        Ok(())
    }
}

/// `whsec_<base64>` → the HMAC key.
pub fn decode_signing_key(key: &Secret) -> Result<Vec<u8>, String> {
    let Some(b64) = key.expose().strip_prefix("whsec_") else {
        return Err("it does not start with whsec_".into());
    };
    let bytes = B64
        .decode(b64.trim())
        .map_err(|_| "the part after whsec_ is not base64".to_string())?;
    if bytes.len() < 16 {
        return Err(format!(
            "it holds {} bytes; GitLab's keys hold 32",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// `[server]`: the HTTP front and its limits.
mod server;
pub use server::ServerConfig;

#[cfg(test)]
mod tests;
