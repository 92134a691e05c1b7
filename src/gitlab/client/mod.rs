//! The GitLab REST client: a thin reqwest client. `PRIVATE-TOKEN` auth; every listing follows
//! `Link: rel="next"` to the end, on the configured origin only (the token never goes
//! elsewhere; redirects are not followed). Reads and idempotent writes are retried after 5xx
//! and network errors with backoff, 429 after `Retry-After` (or `RateLimit-Reset`). A POST
//! that creates something is never sent again blindly: after an ambiguous failure (a 5xx, a
//! timeout, a connection dropped after sending) the client looks for what it may have created
//! first ([`GitlabClient::post_once`]). This is the one retry layer of a GitLab call. Every
//! request has a timeout. Building the client makes no network call.

/// The endpoints: `GitLab` for the client.
mod api;
mod issues;

use crate::config::Secret;
use anyhow::{Context, Result, bail};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts per request (the first and three retries).
const ATTEMPTS: u32 = 4;
/// The longest wait a 429 may ask for before orgvend gives up on the request (and the worker
/// retries the whole delivery later).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A failed GitLab call, with its HTTP status when there was one.
#[derive(Debug)]
pub struct GitlabError {
    pub status: Option<u16>,
    pub message: String,
    /// The request may have acted although it failed (a 5xx or a broken connection after
    /// it was sent): look before sending it again.
    pub ambiguous: bool,
}

impl std::fmt::Display for GitlabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "GitLab answered {s}: {}", self.message),
            None => write!(f, "GitLab could not be reached: {}", self.message),
        }
    }
}

/// How a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Reads, and writes that land the same however often they are sent (PUT, DELETE).
    Safe,
    /// A POST that creates: sent again only when GitLab surely did not act on it (the
    /// connection was never made, or it answered 429); any other failure is ambiguous and
    /// returned, for [`GitlabClient::post_once`] to look before it sends again.
    Once,
}

/// What [`GitlabClient::post_once`] got: GitLab's answer, or what an earlier, ambiguous
/// attempt had created.
pub(crate) enum Posted<T> {
    Answered(Response),
    Found(T),
}

impl std::error::Error for GitlabError {}

pub struct GitlabClient {
    http: reqwest::Client,
    /// `https://host/api/v4`.
    api: String,
    token: Option<Secret>,
    calls: AtomicU64,
    /// First retry delay; tests shorten it.
    retry_base: Duration,
}

impl GitlabClient {
    /// `base_url` is the instance (`https://gitlab.example.com`). No request is made here.
    pub fn new(base_url: &str, token: Option<Secret>, timeout: Duration) -> Result<GitlabClient> {
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
        Ok(GitlabClient {
            http,
            api: format!("{}/api/v4", base_url.trim_end_matches('/')),
            token,
            calls: AtomicU64::new(0),
            retry_base: Duration::from_millis(200),
        })
    }

    /// Shortens the retry delays (for tests against a fake that fails on purpose).
    pub fn with_retry_base(mut self, base: Duration) -> GitlabClient {
        self.retry_base = base;
        self
    }

    /// API requests made so far (each attempt counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// Whether `url` is on the configured API's origin (scheme, host and port) and under its
    /// `/api/v4`.
    fn same_origin(&self, url: &str) -> bool {
        let (Ok(u), Ok(api)) = (reqwest::Url::parse(url), reqwest::Url::parse(&self.api)) else {
            return false;
        };
        u.origin() == api.origin() && u.path().starts_with(api.path())
    }

    /// Sends a request built by `build`, retrying where GitLab or the network failed, as
    /// far as `replay` allows.
    async fn send(&self, build: impl Fn() -> RequestBuilder, replay: Replay) -> Result<Response> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let mut req = build();
            if let Some(t) = &self.token {
                req = req.header("PRIVATE-TOKEN", t.expose());
            }
            let request = req.build().context("building a GitLab request")?;
            if request.method() != reqwest::Method::GET {
                // a write of an attempt that lost its lease is not sent
                crate::hold::check()?;
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let wait = match self.http.execute(request).await {
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let wait =
                        rate_limit_wait(&resp).unwrap_or(self.retry_base * 2u32.pow(attempt + 1));
                    if wait > MAX_RATE_LIMIT_WAIT {
                        return Err(GitlabError {
                            status: Some(429),
                            message: format!("rate limited for {} s", wait.as_secs()),
                            ambiguous: false,
                        }
                        .into());
                    }
                    last = "429 Too Many Requests".into();
                    wait
                }
                Ok(resp) if resp.status().is_server_error() => {
                    if replay == Replay::Once {
                        let status = resp.status().as_u16();
                        let text = resp.text().await.unwrap_or_default();
                        return Err(GitlabError {
                            status: Some(status),
                            message: text.chars().take(300).collect(),
                            ambiguous: true,
                        }
                        .into());
                    }
                    last = format!("{}", resp.status());
                    self.retry_base * 2u32.pow(attempt)
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    if replay == Replay::Once && !e.is_connect() {
                        return Err(GitlabError {
                            status: None,
                            message: e.to_string(),
                            ambiguous: true,
                        }
                        .into());
                    }
                    last = e.to_string();
                    self.retry_base * 2u32.pow(attempt)
                }
            };
            if attempt + 1 < ATTEMPTS {
                tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %last, "GitLab call failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
        Err(GitlabError {
            status: None,
            message: format!("gave up after {ATTEMPTS} attempts: {last}"),
            ambiguous: false,
        }
        .into())
    }

    /// A POST that creates something (`what`), sent so that it acts once: after an ambiguous
    /// failure it looks for the result with `find` before it sends the POST again.
    pub(crate) async fn post_once<T, F, Fut>(
        &self,
        what: &str,
        post: impl Fn() -> RequestBuilder,
        find: F,
    ) -> Result<Posted<T>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            match self.send(&post, Replay::Once).await {
                Ok(resp) => return Ok(Posted::Answered(resp)),
                Err(e) if is_ambiguous(&e) => {
                    tracing::warn!(what, error = %e, "GitLab may have acted on a request that failed; looking before sending it again");
                    tokio::time::sleep(self.retry_base * 2u32.pow(attempt)).await;
                    if let Some(found) = find().await? {
                        tracing::info!(what, "found what the failed request had created");
                        return Ok(Posted::Found(found));
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!("{what}: gave up after {ATTEMPTS} attempts")))
    }

    /// The body of a successful answer; otherwise a [`GitlabError`] with GitLab's message.
    async fn ok(resp: Response) -> Result<Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Err(GitlabError {
            status: Some(status),
            message: text.chars().take(300).collect(),
            ambiguous: false,
        }
        .into())
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        let resp = Self::ok(self.send(|| self.http.get(&url), Replay::Safe).await?).await?;
        resp.json()
            .await
            .with_context(|| format!("reading GitLab's answer to GET {path}"))
    }

    /// Every page of a listing, following `Link: <…>; rel="next"`.
    /// `PUT` of `payload` to `path` (a replacement: safe to repeat); the answer is not read.
    async fn put_json(&self, path: &str, payload: &serde_json::Value) -> Result<()> {
        let url = self.url(path);
        Self::ok(
            self.send(
                || self.http.request(reqwest::Method::PUT, &url).json(payload),
                Replay::Safe,
            )
            .await?,
        )
        .await
        .map(drop)
    }

    /// `GET` one object; `None` on 404.
    async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        match self.get_json(path).await {
            Ok(t) => Ok(Some(t)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = Some(self.url(&format!("{path}{sep}per_page=100")));
        let mut out = Vec::new();
        let mut pages = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > 10_000 {
                bail!("GET {path}: more than 10,000 pages");
            }
            let resp = Self::ok(self.send(|| self.http.get(&u), Replay::Safe).await?).await?;
            url = match next_link(resp.headers()) {
                Some(next) if self.same_origin(&next) => Some(next),
                Some(next) => bail!(
                    "GET {path}: GitLab's Link header points to another origin ({}); orgvend follows pages only on {} (its token never goes elsewhere)",
                    origin(&next).unwrap_or_else(|| "an unparsable URL".into()),
                    origin(&self.api).unwrap_or_default()
                ),
                None => None,
            };
            let mut page: Vec<T> = resp
                .json()
                .await
                .with_context(|| format!("reading a page of GET {path}"))?;
            out.append(&mut page);
        }
        Ok(out)
    }
}

/// `Retry-After` in seconds, else `RateLimit-Reset` (a Unix time).
fn rate_limit_wait(resp: &Response) -> Option<Duration> {
    let h = resp.headers();
    if let Some(secs) = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(secs));
    }
    let reset = h
        .get("ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| {
                p.trim().trim_matches('"') == "rel=\"next\""
                    || p.trim() == "rel=\"next\""
                    || p.trim() == "rel=next"
            })
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// `scheme://host:port` of a URL, for messages.
fn origin(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// Whether a failed request may have acted (see [`GitlabError::ambiguous`]).
pub fn is_ambiguous(e: &anyhow::Error) -> bool {
    e.downcast_ref::<GitlabError>().is_some_and(|g| g.ambiguous)
}

fn enc(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

/// Whether GitLab answered 404.
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<GitlabError>()
        .is_some_and(|g| g.status == Some(404))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn next_link_follows_rel_next_only() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(
                "<https://g/api/v4/x?page=1>; rel=\"prev\", <https://g/api/v4/x?page=3&per_page=100>; rel=\"next\", <https://g/api/v4/x?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://g/api/v4/x?page=3&per_page=100")
        );
        h.insert(
            "link",
            HeaderValue::from_static("<https://g/api/v4/x?page=1>; rel=\"first\""),
        );
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn building_the_client_makes_no_request() {
        let c = GitlabClient::new("https://gitlab.invalid", None, Duration::from_secs(1)).unwrap();
        assert_eq!(c.calls(), 0);
        assert_eq!(
            c.url("/projects/1"),
            "https://gitlab.invalid/api/v4/projects/1"
        );
    }
}
