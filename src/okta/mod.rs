//! Adapter: Okta's management API (groups, group rules, app group assignments, SAML
//! metadata) on a thin reqwest client, modelled on the GitLab client. It authenticates with
//! an SSWS API token or, better, as an OAuth 2.0 service app (a private-key JWT for an
//! access token, cached; DPoP-bound when Okta asks for it: no setting needed). Redirects are
//! not followed, pagination stays on the org's `/api/v1`, every request has a timeout, and
//! building the client makes no network call.
//!
//! Creating is not idempotent at Okta: [`OktaClient::create_group`] and
//! [`OktaClient::create_rule`] are sent once; the caller looks the object up by name
//! ([`OktaClient::group_by_name`], [`OktaClient::rule_by_name`]) before every create, so an
//! ambiguous failure ([`is_ambiguous`]) is followed by a lookup, never a blind resend. Okta's group search index may lag
//! a create by a few seconds: a second create of the same group name then fails with
//! [`is_already_exists`], which says to look again later, never to make another.

mod auth;
mod http;
mod shapes;

pub(crate) use self::shapes::parse_error;

use self::http::{Credentials, OAuth, Replay, TokenState, enc, ok};
use self::shapes::{group_from, group_search, rule_body, rule_from};
use crate::config::Secret;
use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const JSON: &str = "application/json";
/// The scopes asked for when the configuration names none.
const DEFAULT_SCOPES: [&str; 2] = ["okta.groups.manage", "okta.apps.manage"];

/// How orgvend proves itself to Okta.
#[derive(Clone, Debug)]
pub enum OktaAuth {
    /// An API service app: OAuth 2.0 client credentials with a private-key JWT signed by
    /// `key_pem` (PKCS#8 PEM, EC P-256 → ES256 or RSA → RS256), `key_id` the `kid` of its
    /// public key in Okta. `scopes` empty means `okta.groups.manage okta.apps.manage`. If
    /// the app requires DPoP, Okta says so at the token endpoint and the client switches
    /// to DPoP by itself.
    PrivateKeyJwt {
        client_id: String,
        key_pem: Secret,
        key_id: Option<String>,
        scopes: Vec<String>,
    },
    /// An SSWS API token (acts with the rights of the admin who made it).
    Ssws { token: Secret },
}

/// A failed Okta call: the HTTP status when there was an answer, Okta's `errorCode`
/// (`E0000001`) or OAuth `error`, and its summary with the causes.
#[derive(Debug, Clone)]
pub struct OktaError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub summary: String,
}

impl std::fmt::Display for OktaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "Okta answered {s} ({c}): {}", self.summary),
            (Some(s), None) => write!(f, "Okta answered {s}: {}", self.summary),
            (None, _) => write!(f, "Okta could not be reached: {}", self.summary),
        }
    }
}

impl std::error::Error for OktaError {}

impl OktaError {
    /// The request may have acted although it failed (no answer, or a 5xx): look before
    /// sending a create again.
    pub fn is_ambiguous(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// The [`OktaError`] inside `e`, if it is one.
pub fn okta_error(e: &anyhow::Error) -> Option<&OktaError> {
    e.downcast_ref::<OktaError>()
}

/// Whether a failed call may have acted (see [`OktaError::is_ambiguous`]).
pub fn is_ambiguous(e: &anyhow::Error) -> bool {
    okta_error(e).is_some_and(OktaError::is_ambiguous)
}

/// Whether Okta refused a create because the name is taken (`E0000001`, "already exists").
pub fn is_already_exists(e: &anyhow::Error) -> bool {
    okta_error(e).is_some_and(|o| {
        o.code.as_deref() == Some("E0000001") && o.summary.contains("already exists")
    })
}

fn is_not_found(e: &anyhow::Error) -> bool {
    okta_error(e).is_some_and(|o| o.status == Some(404))
}

/// An Okta group (`OKTA_GROUP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaGroup {
    pub id: String,
    pub name: String,
    /// `profile.description` (orgvend marks its own groups there).
    pub description: String,
}

/// A group rule: users matching `expression` are put in `group_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaRule {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `INACTIVE` or `INVALID`.
    pub status: String,
    pub expression: String,
    pub group_ids: Vec<String>,
}

pub struct OktaClient {
    http: reqwest::Client,
    /// `https://example.okta.com`, no trailing slash.
    org: String,
    origin: reqwest::Url,
    creds: Credentials,
    calls: AtomicU64,
    /// First retry delay; tests shorten it.
    retry_base: Duration,
    /// Set when an answer said `X-Rate-Limit-Remaining: 0`: no request before then.
    not_before: std::sync::Mutex<Option<Instant>>,
}

impl OktaClient {
    /// `org_url` is the org (`https://example.okta.com`). The private key is read here (a
    /// bad key fails now, not at the first call); no request is made.
    pub fn new(org_url: &str, auth: OktaAuth, timeout: Duration) -> Result<OktaClient> {
        let org = org_url.trim().trim_end_matches('/').to_string();
        let origin = reqwest::Url::parse(&org)
            .with_context(|| format!("the Okta org URL {org:?} is not a URL"))?;
        if !matches!(origin.scheme(), "https" | "http")
            || origin.host_str().is_none()
            || origin.path() != "/"
            || origin.query().is_some()
            || !origin.username().is_empty()
        {
            bail!(
                "the Okta org URL {org:?} must be the org's address alone, like https://example.okta.com"
            );
        }
        let creds = match auth {
            OktaAuth::Ssws { token } => Credentials::Ssws(token),
            OktaAuth::PrivateKeyJwt {
                client_id,
                key_pem,
                key_id,
                scopes,
            } => {
                let signer = auth::Signer::from_pem(key_pem.expose())?;
                let scopes = if scopes.is_empty() {
                    DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
                } else {
                    scopes
                };
                Credentials::OAuth(Box::new(OAuth {
                    client_id,
                    key_id,
                    scopes,
                    signer,
                    dpop_key: auth::DpopKey::generate()?,
                    state: tokio::sync::Mutex::new(TokenState::default()),
                }))
            }
        };
        // reqwest is built without a default crypto provider: orgvend uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("orgvend/", env!("CARGO_PKG_VERSION")))
            // the token is a header reqwest would carry along a redirect to any host
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(OktaClient {
            http,
            org,
            origin,
            creds,
            calls: AtomicU64::new(0),
            retry_base: Duration::from_millis(200),
            not_before: std::sync::Mutex::new(None),
        })
    }

    /// Shortens the retry delays (for tests against a fake that fails on purpose).
    pub fn with_retry_base(mut self, base: Duration) -> OktaClient {
        self.retry_base = base;
        self
    }

    /// HTTP requests sent so far (token requests and every attempt count).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.org)
    }

    /// A request whose answer must be a success.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        replay: Replay,
    ) -> Result<reqwest::Response> {
        let resp = self.send(method, url, body, JSON, replay).await?;
        ok(resp).await
    }

    async fn call_json(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        replay: Replay,
    ) -> Result<Value> {
        let resp = self.call(method, url, body, replay).await?;
        resp.json::<Value>()
            .await
            .context("reading Okta's JSON answer")
    }

    /// A DELETE for which 404 (already gone) is success.
    async fn delete(&self, url: &str) -> Result<()> {
        match self.call(Method::DELETE, url, None, Replay::Safe).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The group named exactly `name` (Okta's `search` on `profile.name eq`, not the prefix
    /// match of `q`), if there is one; two of that name is an error naming both.
    pub async fn group_by_name(&self, name: &str) -> Result<Option<OktaGroup>> {
        let url = self.api(&format!("/groups?search={}&limit=200", group_search(name)));
        let all = self
            .get_all(url)
            .await
            .with_context(|| format!("looking up the Okta group {name:?}"))?;
        let mut found: Vec<OktaGroup> = Vec::new();
        for v in &all {
            let g = group_from(v)?;
            if g.name == name {
                found.push(g);
            }
        }
        if found.len() > 1 {
            let ids: Vec<&str> = found.iter().map(|g| g.id.as_str()).collect();
            bail!(
                "Okta has {} groups named {name:?} ({}); orgvend cannot tell which one is its own: rename or delete the others",
                found.len(),
                ids.join(", ")
            );
        }
        Ok(found.pop())
    }

    /// The group with this id (`GET /api/v1/groups/{id}`: found at once, whatever the search
    /// index shows), if it exists.
    pub async fn group(&self, id: &str) -> Result<Option<OktaGroup>> {
        let url = self.api(&format!("/groups/{}", enc(id)));
        match self.call_json(Method::GET, &url, None, Replay::Safe).await {
            Ok(v) => Ok(Some(group_from(&v)?)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.context(format!("reading the Okta group {id}"))),
        }
    }

    /// Creates an `OKTA_GROUP`. Sent once: after an ambiguous failure, look it up by name
    /// before creating again.
    pub async fn create_group(&self, name: &str, description: &str) -> Result<OktaGroup> {
        let body = json!({"profile": {"name": name, "description": description}});
        let v = self
            .call_json(
                Method::POST,
                &self.api("/groups"),
                Some(&body),
                Replay::Once,
            )
            .await
            .with_context(|| format!("creating the Okta group {name:?}"))?;
        group_from(&v)
    }

    /// Deletes a group; one already gone is fine.
    pub async fn delete_group(&self, id: &str) -> Result<()> {
        self.delete(&self.api(&format!("/groups/{}", enc(id))))
            .await
            .with_context(|| format!("deleting the Okta group {id}"))
    }

    /// Whether the group is assigned to the app.
    pub async fn app_group(&self, app_id: &str, group_id: &str) -> Result<bool> {
        let url = self.api(&format!("/apps/{}/groups/{}", enc(app_id), enc(group_id)));
        match self.call(Method::GET, &url, None, Replay::Safe).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.context(format!(
                "reading the assignment of Okta group {group_id} to app {app_id}"
            ))),
        }
    }

    /// Assigns the group to the app (a PUT: assigning twice is assigning once).
    pub async fn assign_group_to_app(&self, app_id: &str, group_id: &str) -> Result<()> {
        let url = self.api(&format!("/apps/{}/groups/{}", enc(app_id), enc(group_id)));
        self.call(Method::PUT, &url, Some(&json!({})), Replay::Safe)
            .await
            .with_context(|| format!("assigning Okta group {group_id} to app {app_id}"))?;
        Ok(())
    }

    /// Removes the group's assignment to the app; one already gone is fine.
    pub async fn unassign_group_from_app(&self, app_id: &str, group_id: &str) -> Result<()> {
        let url = self.api(&format!("/apps/{}/groups/{}", enc(app_id), enc(group_id)));
        self.delete(&url)
            .await
            .with_context(|| format!("unassigning Okta group {group_id} from app {app_id}"))
    }

    /// The group rule named exactly `name` (Okta's rule `search` is a keyword match),
    /// if there is one; two of that name is an error.
    pub async fn rule_by_name(&self, name: &str) -> Result<Option<OktaRule>> {
        let url = self.api(&format!("/groups/rules?search={}&limit=50", enc(name)));
        let all = self
            .get_all(url)
            .await
            .with_context(|| format!("looking up the Okta group rule {name:?}"))?;
        let mut found: Vec<OktaRule> = Vec::new();
        for v in &all {
            let r = rule_from(v)?;
            if r.name == name {
                found.push(r);
            }
        }
        if found.len() > 1 {
            let ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
            bail!(
                "Okta has {} group rules named {name:?} ({}); orgvend cannot tell which one is its own",
                found.len(),
                ids.join(", ")
            );
        }
        Ok(found.pop())
    }

    /// The group rules whose actions add users to `group_id` (every rule listed, then
    /// filtered: Okta cannot search rules by their target).
    pub async fn rules_for_group(&self, group_id: &str) -> Result<Vec<OktaRule>> {
        let url = self.api("/groups/rules?limit=50");
        let all = self
            .get_all(url)
            .await
            .context("listing the Okta group rules")?;
        let mut out = Vec::new();
        for v in &all {
            let r = rule_from(v)?;
            if r.group_ids.iter().any(|g| g == group_id) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Creates a group rule (Okta makes it `INACTIVE`). Sent once: after an ambiguous
    /// failure, look it up by name before creating again.
    pub async fn create_rule(
        &self,
        name: &str,
        expression: &str,
        group_ids: &[String],
    ) -> Result<OktaRule> {
        let body = rule_body(None, name, expression, group_ids);
        let v = self
            .call_json(
                Method::POST,
                &self.api("/groups/rules"),
                Some(&body),
                Replay::Once,
            )
            .await
            .with_context(|| format!("creating the Okta group rule {name:?}"))?;
        rule_from(&v)
    }

    /// Replaces a rule's name, expression and target groups. Okta allows it only while the
    /// rule is `INACTIVE` (deactivate, replace, activate).
    pub async fn replace_rule(
        &self,
        id: &str,
        name: &str,
        expression: &str,
        group_ids: &[String],
    ) -> Result<OktaRule> {
        let body = rule_body(Some(id), name, expression, group_ids);
        let url = self.api(&format!("/groups/rules/{}", enc(id)));
        let v = self
            .call_json(Method::PUT, &url, Some(&body), Replay::Safe)
            .await
            .with_context(|| format!("replacing the Okta group rule {id} ({name:?})"))?;
        rule_from(&v)
    }

    /// Activates a rule: Okta then fills its groups (not at once).
    pub async fn activate_rule(&self, id: &str) -> Result<()> {
        self.lifecycle(id, "activate").await
    }

    /// Deactivates a rule (its users stay in the groups).
    pub async fn deactivate_rule(&self, id: &str) -> Result<()> {
        self.lifecycle(id, "deactivate").await
    }

    async fn lifecycle(&self, id: &str, action: &str) -> Result<()> {
        let url = self.api(&format!("/groups/rules/{}/lifecycle/{action}", enc(id)));
        // landing twice is landing once: safe to send again
        self.call(Method::POST, &url, None, Replay::Safe)
            .await
            .with_context(|| format!("{action} of the Okta group rule {id}"))?;
        Ok(())
    }

    /// Deletes a rule and takes out of its groups the users it put there
    /// (`removeUsers=true`: deactivating alone leaves them in); one already gone is fine.
    /// Okta refuses to delete an `ACTIVE` rule: deactivate it first.
    pub async fn delete_rule(&self, id: &str) -> Result<()> {
        self.delete(&self.api(&format!("/groups/rules/{}?removeUsers=true", enc(id))))
            .await
            .with_context(|| format!("deleting the Okta group rule {id}"))
    }

    /// Renames a group (`PUT /api/v1/groups/{id}` with its whole profile).
    pub async fn rename_group(&self, id: &str, name: &str, description: &str) -> Result<()> {
        let body = json!({"profile": {"name": name, "description": description}});
        self.call(
            Method::PUT,
            &self.api(&format!("/groups/{}", enc(id))),
            Some(&body),
            Replay::Safe,
        )
        .await
        .with_context(|| format!("renaming the Okta group {id} to {name:?}"))?;
        Ok(())
    }

    /// The app's SAML IdP metadata (an `EntityDescriptor` XML document), for AWS's
    /// `CreateSAMLProvider`.
    pub async fn saml_metadata(&self, app_id: &str) -> Result<String> {
        let url = self.api(&format!("/apps/{}/sso/saml/metadata", enc(app_id)));
        let resp = self
            .send(Method::GET, &url, None, "application/xml", Replay::Safe)
            .await?;
        let resp = ok(resp)
            .await
            .with_context(|| format!("reading the SAML metadata of Okta app {app_id}"))?;
        resp.text()
            .await
            .with_context(|| format!("reading the SAML metadata of Okta app {app_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssws() -> OktaAuth {
        OktaAuth::Ssws {
            token: Secret::new("00abc-secret"),
        }
    }

    #[test]
    fn building_the_client_makes_no_request_and_checks_its_inputs() {
        let c =
            OktaClient::new("https://example.okta.com/", ssws(), Duration::from_secs(1)).unwrap();
        assert_eq!(c.calls(), 0);
        assert_eq!(c.api("/groups"), "https://example.okta.com/api/v1/groups");
        for bad in [
            "example.okta.com",
            "ftp://x",
            "https://o.okta.com/admin",
            "https://o/?a=1",
        ] {
            assert!(
                OktaClient::new(bad, ssws(), Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
        let bad_key = OktaAuth::PrivateKeyJwt {
            client_id: "0oa1".into(),
            key_pem: Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            key_id: None,
            scopes: vec![],
        };
        let err = OktaClient::new("https://o.okta.com", bad_key, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("key"), "{err}");
    }

    #[test]
    fn links_are_followed_only_on_the_org_under_api_v1() {
        let c =
            OktaClient::new("https://example.okta.com", ssws(), Duration::from_secs(1)).unwrap();
        assert!(c.follows("https://example.okta.com/api/v1/groups?after=00g1&limit=200"));
        for other in [
            "https://evil.example.com/api/v1/groups?after=1",
            "http://example.okta.com/api/v1/groups",
            "https://example.okta.com:8443/api/v1/groups",
            "https://example.okta.com.evil.com/api/v1/groups",
            "https://example.okta.com/oauth2/v1/token",
            "https://example.okta.com/api/v2/groups",
            "https://user:pw@example.okta.com/api/v1/groups",
            "/api/v1/groups",
            "not a url",
        ] {
            assert!(!c.follows(other), "{other}");
        }
        let local =
            OktaClient::new("http://127.0.0.1:8080", ssws(), Duration::from_secs(1)).unwrap();
        assert!(local.follows("http://127.0.0.1:8080/api/v1/groups/rules?after=0pr1"));
        assert!(!local.follows("http://127.0.0.1:8081/api/v1/groups"));
    }
}
