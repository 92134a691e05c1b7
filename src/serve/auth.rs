//! Who may deliver: GitLab's `X-Gitlab-Token` (several accepted, for rotation) and its
//! HMAC signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`), checked by a pure
//! function of the headers, the raw body, the secrets and the time. Everything that needs no
//! body — the token, the signature's presence, its timestamp — is checked before the body
//! is read ([`check_headers`]).

use crate::config::{AuthMethod, Secret, WebhookConfig, decode_signing_key};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The secrets deliveries are checked against, decoded once.
#[derive(Clone)]
pub struct WebhookAuth {
    /// SHA-256 of each accepted token: compared digest to digest, so neither the content nor
    /// the length of a token shows in the time a comparison takes.
    tokens: Vec<[u8; 32]>,
    keys: Vec<Vec<u8>>,
    require_token: bool,
    require_signature: bool,
    tolerance_secs: i64,
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebhookAuth({} tokens, {} keys)",
            self.tokens.len(),
            self.keys.len()
        )
    }
}

impl WebhookAuth {
    pub fn new(config: &WebhookConfig) -> Result<WebhookAuth, String> {
        Ok(WebhookAuth {
            tokens: config.tokens.iter().map(digest).collect(),
            keys: config
                .signing_keys
                .iter()
                .map(decode_signing_key)
                .collect::<Result<_, _>>()?,
            require_token: config.require.contains(&AuthMethod::Token),
            require_signature: config.require.contains(&AuthMethod::Signature),
            tolerance_secs: config.tolerance_seconds as i64,
        })
    }
}

/// Why a delivery was refused. The messages never contain a secret or the offered token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    MissingToken,
    WrongToken,
    MissingSignature,
    MalformedSignature,
    WrongSignature,
    /// `webhook-timestamp` too far from now: a replay, or a clock off by more than the tolerance.
    StaleTimestamp,
}

impl AuthError {
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::MissingToken => "no X-Gitlab-Token header",
            AuthError::WrongToken => "X-Gitlab-Token matches no configured token",
            AuthError::MissingSignature => {
                "no webhook-signature (webhook-id, webhook-timestamp) headers"
            }
            AuthError::MalformedSignature => {
                "malformed webhook-signature or webhook-timestamp header"
            }
            AuthError::WrongSignature => "webhook-signature matches no configured signing key",
            AuthError::StaleTimestamp => {
                "webhook-timestamp is outside the tolerance (replay or clock skew)"
            }
        }
    }
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn digest(token: &Secret) -> [u8; 32] {
    sha2::Sha256::digest(token.expose().as_bytes()).into()
}

/// What can be checked before the body is read: the token, and the signature headers'
/// presence and timestamp. A delivery that fails here is refused unread.
pub fn check_headers(
    headers: &HeaderMap,
    auth: &WebhookAuth,
    now_secs: i64,
) -> Result<(), AuthError> {
    let token = headers.get("x-gitlab-token");
    match token {
        None if auth.require_token => return Err(AuthError::MissingToken),
        None => {}
        Some(offered) if auth.require_token || !auth.tokens.is_empty() => {
            // Every token is compared, digest to digest: the time tells neither which one
            // matched nor how long they are.
            let offered: [u8; 32] = sha2::Sha256::digest(offered.as_bytes()).into();
            let matched = auth
                .tokens
                .iter()
                .fold(subtle::Choice::from(0), |acc, t| acc | t.ct_eq(&offered));
            if !bool::from(matched) {
                return Err(AuthError::WrongToken);
            }
        }
        Some(_) => {}
    }
    match header(headers, "webhook-signature") {
        None if auth.require_signature => Err(AuthError::MissingSignature),
        None => Ok(()),
        Some(_) if !auth.require_signature && auth.keys.is_empty() => Ok(()),
        Some(_) => {
            let (Some(_), Some(ts)) = (
                header(headers, "webhook-id"),
                header(headers, "webhook-timestamp"),
            ) else {
                return Err(AuthError::MissingSignature);
            };
            let ts_secs: i64 = ts
                .trim()
                .parse()
                .map_err(|_| AuthError::MalformedSignature)?;
            // abs_diff: a hostile timestamp (i64::MIN) cannot overflow
            if now_secs.abs_diff(ts_secs) > auth.tolerance_secs.unsigned_abs() {
                return Err(AuthError::StaleTimestamp);
            }
            Ok(())
        }
    }
}

/// Checks a delivery: a pure function of its headers, its raw body, the secrets and the time.
/// A required method must pass; a method that is not required but is configured still
/// refuses a delivery that presents a wrong token or signature.
pub fn authenticate(
    headers: &HeaderMap,
    body: &[u8],
    auth: &WebhookAuth,
    now_secs: i64,
) -> Result<(), AuthError> {
    check_headers(headers, auth, now_secs)?;
    check_signature(headers, body, auth)
}

/// The rest of [`authenticate`] once [`check_headers`] passed: the signature over the body.
pub fn check_signature(
    headers: &HeaderMap,
    body: &[u8],
    auth: &WebhookAuth,
) -> Result<(), AuthError> {
    let signature = header(headers, "webhook-signature");
    match signature {
        None => Ok(()),
        Some(_) if !auth.require_signature && auth.keys.is_empty() => Ok(()),
        Some(signature) => {
            let (Some(id), Some(ts)) = (
                header(headers, "webhook-id"),
                header(headers, "webhook-timestamp"),
            ) else {
                return Err(AuthError::MissingSignature);
            };
            let offered: Vec<Vec<u8>> = signature
                .split_whitespace()
                .filter_map(|s| s.strip_prefix("v1,"))
                .filter_map(|b64| B64.decode(b64).ok())
                .collect();
            if offered.is_empty() {
                return Err(AuthError::MalformedSignature);
            }
            for key in &auth.keys {
                let mac = sign(key, id, ts, body);
                if offered.iter().any(|o| bool::from(o.as_slice().ct_eq(&mac))) {
                    return Ok(());
                }
            }
            Err(AuthError::WrongSignature)
        }
    }
}

/// HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, as GitLab (Standard Webhooks) signs.
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The `webhook-signature` header value for a body: what a GitLab that holds `key` sends.
pub fn signature_header(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v1,{}", B64.encode(sign(key, id, timestamp, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn auth(require: &[AuthMethod]) -> WebhookAuth {
        WebhookAuth::new(&WebhookConfig {
            require: require.to_vec(),
            tokens: vec![Secret::new("old-token"), Secret::new("new-token")],
            signing_keys: vec![Secret::new(format!("whsec_{}", B64.encode(KEY)))],
            tolerance_seconds: 300,
        })
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const BODY: &[u8] = br#"{"object_kind":"merge_request"}"#;
    const NOW: i64 = 1_700_000_000;

    fn signed(ts: i64, body: &[u8]) -> HeaderMap {
        let ts = ts.to_string();
        let sig = signature_header(KEY, "msg_1", &ts, body);
        headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &sig),
        ])
    }

    #[test]
    fn tokens_rotate() {
        let a = auth(&[AuthMethod::Token]);
        assert_eq!(
            authenticate(&headers(&[("x-gitlab-token", "old-token")]), BODY, &a, NOW),
            Ok(())
        );
        assert_eq!(
            authenticate(&headers(&[("x-gitlab-token", "new-token")]), BODY, &a, NOW),
            Ok(())
        );
        assert_eq!(
            authenticate(&headers(&[("x-gitlab-token", "new-token ")]), BODY, &a, NOW),
            Err(AuthError::WrongToken)
        );
        assert_eq!(
            authenticate(&headers(&[("x-gitlab-token", "")]), BODY, &a, NOW),
            Err(AuthError::WrongToken)
        );
        assert_eq!(
            authenticate(&HeaderMap::new(), BODY, &a, NOW),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn signatures_verify_the_raw_body() {
        let a = auth(&[AuthMethod::Signature]);
        assert_eq!(authenticate(&signed(NOW, BODY), BODY, &a, NOW), Ok(()));
        assert_eq!(
            authenticate(&signed(NOW, BODY), b"{\"tampered\":1}", &a, NOW),
            Err(AuthError::WrongSignature)
        );
        assert_eq!(
            authenticate(&HeaderMap::new(), BODY, &a, NOW),
            Err(AuthError::MissingSignature)
        );
        // several signatures, one valid (key rotation on GitLab's side)
        let mut h = signed(NOW, BODY);
        let good = h
            .get("webhook-signature")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&format!("v1,AAAA {good} v2,zzz")).unwrap(),
        );
        assert_eq!(authenticate(&h, BODY, &a, NOW), Ok(()));
        h.insert("webhook-signature", HeaderValue::from_static("v2,whatever"));
        assert_eq!(
            authenticate(&h, BODY, &a, NOW),
            Err(AuthError::MalformedSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let a = auth(&[AuthMethod::Signature]);
        assert_eq!(
            authenticate(&signed(NOW - 301, BODY), BODY, &a, NOW),
            Err(AuthError::StaleTimestamp)
        );
        assert_eq!(
            authenticate(&signed(NOW + 301, BODY), BODY, &a, NOW),
            Err(AuthError::StaleTimestamp)
        );
        assert_eq!(
            authenticate(&signed(NOW - 299, BODY), BODY, &a, NOW),
            Ok(())
        );
    }

    #[test]
    fn both_methods_when_both_required() {
        let a = auth(&[AuthMethod::Token, AuthMethod::Signature]);
        let mut h = signed(NOW, BODY);
        assert_eq!(
            authenticate(&h, BODY, &a, NOW),
            Err(AuthError::MissingToken)
        );
        h.insert("x-gitlab-token", HeaderValue::from_static("old-token"));
        assert_eq!(authenticate(&h, BODY, &a, NOW), Ok(()));
    }

    #[test]
    fn a_wrong_optional_check_still_refuses() {
        // token required; a present but forged signature is refused all the same
        let a = auth(&[AuthMethod::Token]);
        let mut h = signed(NOW, BODY);
        h.insert("x-gitlab-token", HeaderValue::from_static("old-token"));
        assert_eq!(authenticate(&h, BODY, &a, NOW), Ok(()));
        assert_eq!(
            authenticate(&h, b"{}", &a, NOW),
            Err(AuthError::WrongSignature)
        );
    }

    #[test]
    fn hostile_timestamps_are_stale_not_a_panic() {
        let a = auth(&[AuthMethod::Signature]);
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1, 0] {
            assert_eq!(
                check_headers(&signed(ts, BODY), &a, NOW),
                Err(AuthError::StaleTimestamp),
                "{ts}"
            );
        }
        // and at the other end of the clock
        assert_eq!(
            check_headers(&signed(i64::MIN, BODY), &a, i64::MAX),
            Err(AuthError::StaleTimestamp)
        );
        assert_eq!(check_headers(&signed(NOW + 300, BODY), &a, NOW), Ok(()));
        assert_eq!(
            check_headers(&signed(NOW + 301, BODY), &a, NOW),
            Err(AuthError::StaleTimestamp)
        );
    }

    #[test]
    fn a_token_must_match_whole_not_by_prefix_or_extension() {
        let a = auth(&[AuthMethod::Token]);
        for offered in [
            "old",
            "old-toke",
            "old-tokenX",
            "old-token ",
            "",
            "new-token\u{0}",
        ] {
            let Ok(v) = HeaderValue::from_str(offered) else {
                continue;
            };
            let mut h = HeaderMap::new();
            h.insert("x-gitlab-token", v);
            assert_eq!(
                check_headers(&h, &a, NOW),
                Err(AuthError::WrongToken),
                "{offered:?}"
            );
        }
    }

    #[test]
    fn the_headers_alone_refuse_what_needs_no_body() {
        // what can be refused unread is refused unread: missing or wrong token, missing
        // signature, a stale timestamp; a forged signature needs the body
        let both = auth(&[AuthMethod::Token, AuthMethod::Signature]);
        let mut h = signed(NOW, BODY);
        assert_eq!(check_headers(&h, &both, NOW), Err(AuthError::MissingToken));
        h.insert("x-gitlab-token", HeaderValue::from_static("new-token"));
        assert_eq!(check_headers(&h, &both, NOW), Ok(()));
        assert_eq!(
            authenticate(&h, b"{}", &both, NOW),
            Err(AuthError::WrongSignature)
        );
        h.remove("webhook-signature");
        assert_eq!(
            check_headers(&h, &both, NOW),
            Err(AuthError::MissingSignature)
        );
    }

    #[test]
    fn signing_keys_must_be_whsec() {
        assert!(decode_signing_key(&Secret::new("whsec_")).is_err());
        assert!(decode_signing_key(&Secret::new("abc")).is_err());
        assert!(decode_signing_key(&Secret::new("whsec_!!!")).is_err());
        assert_eq!(
            decode_signing_key(&Secret::new(format!("whsec_{}", B64.encode(KEY)))).unwrap(),
            KEY
        );
    }
}
