//! `[okta]`: how orgvend reaches Okta, for a policy whose `access.provider` is `okta`. An
//! OAuth 2.0 service app (client credentials with a private-key JWT, the scopes
//! `okta.groups.manage` and `okta.apps.manage`) is preferred; an SSWS API token from
//! `ORGVEND_OKTA_TOKEN` is the fallback. The key file and the token are never printed.

use super::Secret;
use serde::Deserialize;

/// The environment variable of the SSWS API token.
pub const ENV_OKTA_TOKEN: &str = "ORGVEND_OKTA_TOKEN";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// The Okta org, `https://example.okta.com`.
    pub url: String,
    /// The AWS Account Federation app the account groups are assigned to.
    pub app_id: String,
    /// The service app's client id (OAuth 2.0 with a private-key JWT).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The service app's private key (PKCS#8 PEM, RSA or EC P-256).
    #[serde(default)]
    pub private_key_file: Option<std::path::PathBuf>,
    /// The key's id (`kid`) as Okta shows it, when the app has more than one key.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Fetch each account's SAML provider metadata from the app instead of
    /// `aws.saml_metadata_file`. Default true.
    #[serde(default = "yes")]
    pub saml_metadata_from_app: bool,
    /// How long one request may take. Default 30.
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: u64,
    /// The SSWS token, from `ORGVEND_OKTA_TOKEN` only.
    #[serde(skip)]
    pub token: Option<Secret>,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    30
}

impl OktaConfig {
    /// What is wrong with it, if anything.
    pub(super) fn problem(&self) -> Option<String> {
        // http only to this machine (a local test server): the host exactly loopback
        let loopback = reqwest::Url::parse(&self.url).is_ok_and(|u| {
            u.scheme() == "http"
                && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        });
        if !(self.url.starts_with("https://") || loopback) {
            return Some(format!(
                "okta.url `{}` must start with https:// (http:// only for a local test server)",
                self.url
            ));
        }
        let oauth = self.client_id.is_some() || self.private_key_file.is_some();
        if oauth && (self.client_id.is_none() || self.private_key_file.is_none()) {
            return Some("okta: OAuth needs both client_id and private_key_file".into());
        }
        if !oauth && self.token.is_none() {
            return Some(format!(
                "okta: set client_id and private_key_file (an OAuth 2.0 service app), or {ENV_OKTA_TOKEN} (an SSWS API token)"
            ));
        }
        None
    }
}
