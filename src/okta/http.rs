//! How an Okta request is sent: the `Authorization` header (SSWS, or an OAuth access token
//! fetched with a private-key JWT, cached, and DPoP-bound when Okta asks for it), Okta's
//! rate limits (`X-Rate-Limit-*`), retries, the lease check before a write, and `Link`
//! pagination that never leaves the org's `/api/v1`.
//!
//! Retries: a 429 waits until `X-Rate-Limit-Reset` (at least 1 s; more than 60 s away is an
//! error) and is sent again, whatever the method, because Okta did not act on it. A 5xx or a
//! network failure is retried with backoff for requests that land the same however often
//! they are sent ([`Replay::Safe`]); a creating POST ([`Replay::Once`]) is sent again only
//! when the connection was never made, and otherwise fails with an ambiguous
//! [`OktaError`] so that its caller looks for what it may have created first.

use super::auth::{self, DpopKey, Signer, TokenAnswer};
use super::{OktaClient, OktaError, parse_error};
use crate::config::Secret;
use anyhow::{Context, Result, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Attempts of a request that fails with a 5xx or a network error (the first and three
/// retries).
const ATTEMPTS: u32 = 4;
/// 429 answers one request may meet before orgvend gives up on it.
const MAX_RATE_LIMITED: u32 = 5;
/// The longest wait for a rate limit's reset; further away, the request fails (and the
/// worker retries the whole delivery later).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// A cached access token is replaced this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Challenges (`use_dpop_nonce`, `invalid_dpop_proof`) the token endpoint may send before
/// orgvend gives up.
const MAX_DPOP_CHALLENGES: u32 = 3;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `DPoP` header.
fn dpop_header() -> HeaderName {
    HeaderName::from_static("dpop")
}

/// How a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Reads, and writes that land the same however often they are sent (PUT, DELETE,
    /// lifecycle POSTs).
    Safe,
    /// A POST that creates: never sent again after a failure that may have acted.
    Once,
}

/// What the client authenticates with.
pub(crate) enum Credentials {
    Ssws(Secret),
    OAuth(Box<OAuth>),
}

/// An OAuth 2.0 service app (client credentials with a private-key JWT).
pub(crate) struct OAuth {
    pub(crate) client_id: String,
    pub(crate) key_id: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) signer: Signer,
    /// This client's own DPoP key, used once Okta asks for DPoP.
    pub(crate) dpop_key: DpopKey,
    /// One token fetch at a time; the others wait for its token.
    pub(crate) state: tokio::sync::Mutex<TokenState>,
}

#[derive(Default)]
pub(crate) struct TokenState {
    token: Option<Token>,
    /// Okta asked for DPoP (or gave a DPoP token): proofs are sent from now on.
    dpop: bool,
    /// The last `DPoP-Nonce` the token endpoint gave.
    nonce: Option<String>,
}

struct Token {
    value: Secret,
    /// `token_type` was `DPoP`.
    dpop: bool,
    /// When it is replaced ([`TOKEN_MARGIN`] before it expires).
    refresh_after: Instant,
}

impl OktaClient {
    /// Sends one request, retrying as [`Replay`] allows; answers of any status but 429, a
    /// 5xx (retried) and a first 401 with a cached OAuth token (refetched) are returned.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        accept: &str,
        replay: Replay,
    ) -> Result<Response> {
        let mut failures: u32 = 0;
        let mut limited: u32 = 0;
        let mut reauthorized = false;
        loop {
            self.pace().await;
            if method != Method::GET {
                // nothing at all (not even a token request) for a write that may not be made
                crate::hold::check()?;
            }
            let auth = self.authorization(&method, url).await?;
            let mut req = self
                .http
                .request(method.clone(), url)
                .header(ACCEPT, accept);
            for (name, value) in auth {
                req = req.header(name, value);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            if method != Method::GET {
                // checked again: the token request or a rate-limit wait took time
                crate::hold::check()?;
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            match req.send().await {
                Ok(resp) => {
                    self.note_rate_limit(resp.headers());
                    let status = resp.status();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        limited += 1;
                        let wait = reset_wait(resp.headers()).unwrap_or(Duration::from_secs(1));
                        if wait > MAX_RATE_LIMIT_WAIT || limited > MAX_RATE_LIMITED {
                            let mut e = error_from(resp).await;
                            e.summary = format!(
                                "{} (rate limited {limited} times; the limit resets in {} s)",
                                e.summary,
                                wait.as_secs()
                            );
                            return Err(e.into());
                        }
                        tracing::debug!(
                            method = %method,
                            wait_ms = wait.as_millis() as u64,
                            "Okta rate limit reached; waiting for its reset"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && !reauthorized
                        && self.forget_token().await
                    {
                        // a token revoked or expired early: one more try with a new one
                        reauthorized = true;
                        continue;
                    }
                    if status.is_server_error() {
                        failures += 1;
                        if replay == Replay::Once || failures >= ATTEMPTS {
                            return Err(error_from(resp).await.into());
                        }
                        let wait = self.backoff(failures);
                        tracing::debug!(method = %method, %status, wait_ms = wait.as_millis() as u64, "Okta call failed; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    failures += 1;
                    // a connection never made cannot have acted
                    let again = replay == Replay::Safe || e.is_connect();
                    if !again || failures >= ATTEMPTS {
                        return Err(OktaError {
                            status: None,
                            code: None,
                            summary: e.to_string(),
                        }
                        .into());
                    }
                    let wait = self.backoff(failures);
                    tracing::debug!(method = %method, error = %e, wait_ms = wait.as_millis() as u64, "Okta could not be reached; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        self.retry_base * 2u32.pow(failures.saturating_sub(1).min(6))
    }

    /// Waits while the last answer said the rate limit is used up.
    async fn pace(&self) {
        let until: Option<Instant> = {
            let guard = self
                .not_before
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *guard
        };
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tracing::debug!(
                    wait_ms = (until - now).as_millis() as u64,
                    "Okta rate limit used up; waiting for its reset"
                );
                tokio::time::sleep(until - now).await;
            }
        }
    }

    /// Records `X-Rate-Limit-Remaining: 0`: the next request waits for the reset.
    fn note_rate_limit(&self, headers: &HeaderMap) {
        let remaining = header_str(headers, "x-rate-limit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if remaining != Some(0) {
            return;
        }
        let wait = reset_wait(headers)
            .unwrap_or(Duration::from_secs(1))
            .min(MAX_RATE_LIMIT_WAIT);
        let mut guard = self
            .not_before
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Some(Instant::now() + wait);
    }

    /// The headers that authenticate a request of `method` to `url`.
    async fn authorization(
        &self,
        method: &Method,
        url: &str,
    ) -> Result<Vec<(HeaderName, HeaderValue)>> {
        match &self.creds {
            Credentials::Ssws(token) => Ok(vec![(
                AUTHORIZATION,
                sensitive(&format!("SSWS {}", token.expose()))?,
            )]),
            Credentials::OAuth(oauth) => {
                let (token, dpop) = self.access_token(oauth).await?;
                if dpop {
                    let proof =
                        oauth
                            .dpop_key
                            .proof(method.as_str(), url, None, Some(token.expose()))?;
                    Ok(vec![
                        (
                            AUTHORIZATION,
                            sensitive(&format!("DPoP {}", token.expose()))?,
                        ),
                        (dpop_header(), sensitive(&proof)?),
                    ])
                } else {
                    Ok(vec![(
                        AUTHORIZATION,
                        sensitive(&format!("Bearer {}", token.expose()))?,
                    )])
                }
            }
        }
    }

    /// The cached access token, or a new one; and whether it is DPoP-bound.
    async fn access_token(&self, oauth: &OAuth) -> Result<(Secret, bool)> {
        let mut state = oauth.state.lock().await;
        if let Some(t) = &state.token
            && Instant::now() < t.refresh_after
        {
            return Ok((t.value.clone(), t.dpop));
        }
        let fresh = self.fetch_token(oauth, &mut state).await?;
        let out = (fresh.value.clone(), fresh.dpop);
        state.token = Some(fresh);
        Ok(out)
    }

    /// Drops the cached token; whether there was one to drop.
    async fn forget_token(&self) -> bool {
        match &self.creds {
            Credentials::Ssws(_) => false,
            Credentials::OAuth(oauth) => oauth.state.lock().await.token.take().is_some(),
        }
    }

    /// Client credentials with a private-key JWT at `{org}/oauth2/v1/token`. When Okta
    /// answers `invalid_dpop_proof` (DPoP required, no proof sent) or `use_dpop_nonce`
    /// (send its `DPoP-Nonce`), the request is made again with a proof, and so are all
    /// later ones: DPoP needs no configuration.
    async fn fetch_token(&self, oauth: &OAuth, state: &mut TokenState) -> Result<Token> {
        let url = format!("{}/oauth2/v1/token", self.org);
        let scope = oauth.scopes.join(" ");
        let mut failures: u32 = 0;
        let mut limited: u32 = 0;
        let mut challenges: u32 = 0;
        loop {
            // a fresh assertion (and jti) for every attempt: Okta refuses a replayed one
            let assertion = auth::client_assertion(
                &oauth.signer,
                &oauth.client_id,
                oauth.key_id.as_deref(),
                &url,
                auth::now_secs(),
            )?;
            let form = format!(
                "grant_type=client_credentials&scope={}&client_assertion_type={}&client_assertion={}",
                enc(&scope),
                enc(ASSERTION_TYPE),
                enc(&assertion)
            );
            let mut req = self
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(form);
            if state.dpop {
                let proof = oauth
                    .dpop_key
                    .proof("POST", &url, state.nonce.as_deref(), None)?;
                req = req.header(dpop_header(), sensitive(&proof)?);
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures += 1;
                    if failures >= ATTEMPTS {
                        return Err(OktaError {
                            status: None,
                            code: None,
                            summary: format!("getting an access token: {e}"),
                        }
                        .into());
                    }
                    tokio::time::sleep(self.backoff(failures)).await;
                    continue;
                }
            };
            if let Some(nonce) = header_str(resp.headers(), "dpop-nonce") {
                state.nonce = Some(nonce.to_string());
            }
            let status = resp.status();
            if status.is_success() {
                let answer: TokenAnswer =
                    resp.json().await.context("reading Okta's token answer")?;
                let dpop = answer.token_type.eq_ignore_ascii_case("DPoP");
                if dpop {
                    state.dpop = true;
                }
                let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
                tracing::debug!(
                    dpop,
                    lifetime_s = lifetime.as_secs(),
                    "got an Okta access token"
                );
                return Ok(Token {
                    value: Secret::new(answer.access_token),
                    dpop,
                    refresh_after: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
                });
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                limited += 1;
                let wait = reset_wait(resp.headers()).unwrap_or(Duration::from_secs(1));
                if wait > MAX_RATE_LIMIT_WAIT || limited > MAX_RATE_LIMITED {
                    return Err(error_from(resp).await.into());
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(error_from(resp).await.into());
                }
                tokio::time::sleep(self.backoff(failures)).await;
                continue;
            }
            let text = resp.text().await.unwrap_or_default();
            let error: String = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            let dpop_challenge = error == "use_dpop_nonce" || error == "invalid_dpop_proof";
            if status == StatusCode::BAD_REQUEST
                && dpop_challenge
                && challenges < MAX_DPOP_CHALLENGES
            {
                challenges += 1;
                if !state.dpop {
                    tracing::info!("Okta asks for DPoP-bound tokens; sending DPoP proofs");
                }
                state.dpop = true;
                continue;
            }
            let mut e = parse_error(Some(status.as_u16()), &text);
            e.summary = format!("getting an access token: {}", e.summary);
            return Err(e.into());
        }
    }

    /// Every item of a listing, following `Link: <…>; rel="next"` while it stays on the
    /// org's origin under `/api/v1/`; a `next` anywhere else is an error (the token never
    /// goes elsewhere, and a listing cut short could hide a duplicate).
    pub(crate) async fn get_all(&self, first: String) -> Result<Vec<Value>> {
        let mut url = Some(first);
        let mut out: Vec<Value> = Vec::new();
        let mut pages: u32 = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > 10_000 {
                bail!("GET {}: more than 10,000 pages", path_of(&u));
            }
            let resp = self
                .send(Method::GET, &u, None, "application/json", Replay::Safe)
                .await?;
            let resp = ok(resp).await?;
            url = match next_link(resp.headers()) {
                Some(next) if self.follows(&next) => Some(next),
                Some(next) => bail!(
                    "GET {}: Okta's Link header points outside {}/api/v1 (to {}); orgvend follows pages only there (its token never goes elsewhere)",
                    path_of(&u),
                    self.org,
                    origin_of(&next)
                ),
                None => None,
            };
            let page: Vec<Value> = resp
                .json()
                .await
                .with_context(|| format!("reading a page of GET {}", path_of(&u)))?;
            out.extend(page);
        }
        Ok(out)
    }

    /// Whether a `Link` target is on the org's origin (scheme, host, port), under
    /// `/api/v1/`, without credentials in it.
    pub(crate) fn follows(&self, url: &str) -> bool {
        let Ok(u) = reqwest::Url::parse(url) else {
            return false;
        };
        u.origin() == self.origin.origin()
            && u.username().is_empty()
            && u.password().is_none()
            && u.path().starts_with("/api/v1/")
            && !u.path().contains("/../")
    }
}

/// A successful answer, else an [`OktaError`] read from its body.
pub(crate) async fn ok(resp: Response) -> Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(error_from(resp).await.into())
}

/// The [`OktaError`] of a failed answer.
pub(crate) async fn error_from(resp: Response) -> OktaError {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    parse_error(Some(status), &text)
}

/// The `rel="next"` target of a `Link` header (Okta sends `self` and `next`, in one header
/// or in several).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(link) = value.to_str() else {
            continue;
        };
        for part in link.split(',') {
            let Some((target, params)) = part.split_once(';') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                let t = target.trim();
                let t = t.strip_prefix('<').unwrap_or(t);
                let t = t.strip_suffix('>').unwrap_or(t);
                return Some(t.to_string());
            }
        }
    }
    None
}

/// How long until `X-Rate-Limit-Reset` (a Unix time), at least a second.
fn reset_wait(headers: &HeaderMap) -> Option<Duration> {
    let reset = header_str(headers, "x-rate-limit-reset")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(
        reset.saturating_sub(auth::now_secs()).max(1),
    ))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header value that HTTP tooling must not print.
fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| anyhow::anyhow!("a credential holds characters a header cannot carry"))?;
    v.set_sensitive(true);
    Ok(v)
}

pub(crate) fn enc(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

/// The path of a URL, for messages (its query may hold a search, never a secret, but
/// paths are enough).
fn path_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| "an unparsable URL".to_string())
}

fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "an unparsable URL".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_reads_okta_link_headers() {
        let mut h = HeaderMap::new();
        h.append(
            "link",
            HeaderValue::from_static("<https://o.okta.com/api/v1/groups?limit=2>; rel=\"self\""),
        );
        h.append(
            "link",
            HeaderValue::from_static(
                "<https://o.okta.com/api/v1/groups?after=00g2&limit=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://o.okta.com/api/v1/groups?after=00g2&limit=2")
        );
        let mut one = HeaderMap::new();
        one.insert(
            "link",
            HeaderValue::from_static(
                "<https://o/api/v1/x?after=1>; rel=\"self\", <https://o/api/v1/x?after=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&one).as_deref(),
            Some("https://o/api/v1/x?after=2")
        );
        let mut only_self = HeaderMap::new();
        only_self.insert(
            "link",
            HeaderValue::from_static("<https://o/api/v1/x>; rel=\"self\""),
        );
        assert_eq!(next_link(&only_self), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn the_reset_is_waited_for_at_least_a_second() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&(auth::now_secs() + 5).to_string()).unwrap(),
        );
        let w = reset_wait(&h).unwrap();
        assert!(
            w >= Duration::from_secs(4) && w <= Duration::from_secs(5),
            "{w:?}"
        );
        h.insert("x-rate-limit-reset", HeaderValue::from_static("1"));
        assert_eq!(reset_wait(&h), Some(Duration::from_secs(1)));
        assert_eq!(reset_wait(&HeaderMap::new()), None);
    }
}
