//! `[requests]`: who may ask for an account by GitLab issue, and how many at once.

use super::spans::Spans;
use super::{PolicyError, Requests};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestsConf {
    /// Whether a GitLab issue can ask for an account. Default true.
    #[serde(default = "yes")]
    enabled: bool,
    /// Open requests (request MRs not merged or closed) one user may have. Default 3; at
    /// least 1.
    #[serde(default = "default_open_requests")]
    max_open_per_user: Spanned<u32>,
    /// The least access to the subaccounts project a requester needs. Default `reporter`.
    min_access_level: Option<Spanned<AccessLevel>>,
}

impl Default for RequestsConf {
    fn default() -> Self {
        RequestsConf {
            enabled: true,
            max_open_per_user: default_open_requests(),
            min_access_level: None,
        }
    }
}

fn default_open_requests() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}

fn yes() -> bool {
    true
}

pub(super) fn compile(spans: &Spans, raw: RequestsConf) -> Result<Requests, PolicyError> {
    let max = *raw.max_open_per_user.get_ref();
    if max == 0 {
        return Err(spans.err(
            raw.max_open_per_user.span(),
            "requests.max_open_per_user is 0: set enabled = false to turn requests off",
        ));
    }
    Ok(Requests {
        enabled: raw.enabled,
        max_open_per_user: max,
        min_access_level: access_level(spans, &raw.min_access_level, "requests", 20)?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum AccessLevel {
    Name(String),
    Number(u32),
}

/// A GitLab access level by name (`developer`) or number; `default` when absent.
pub(super) fn access_level(
    spans: &Spans,
    level: &Option<Spanned<AccessLevel>>,
    table: &str,
    default: u32,
) -> Result<u32, PolicyError> {
    let Some(l) = level else { return Ok(default) };
    match l.get_ref() {
        AccessLevel::Number(n) => Ok(*n),
        AccessLevel::Name(name) => crate::core::approval::ACCESS_LEVELS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, level)| *level)
            .ok_or_else(|| {
                spans.err(
                    l.span(),
                    format!("{table}.min_access_level `{name}`: use guest, reporter, developer, maintainer or owner"),
                )
            }),
    }
}
