//! The fake Okta's HTTP front: the OAuth token endpoint (client credentials with a
//! private-key JWT, optionally DPoP with a server nonce) and the management routes orgvend
//! uses (groups, group rules, app group assignments, SAML metadata), in the shapes of
//! Okta's documentation: `errorCode`/`errorSummary`/`errorCauses` bodies, `Link` headers
//! (`self`, `next`) with `after` cursors, `X-Rate-Limit-*` on every answer, 401 E0000011
//! without valid credentials and 403 E0000006 without the scope. One fallback handler
//! dispatches on method and path, so each route reads like Okta's endpoint table.
//!
//! Not verified against a real org: the error code and text for replacing or deleting an
//! ACTIVE rule (Okta refuses both; the SDKs and the Terraform provider deactivate first).
// A refusal is the answer itself (an axum `Response`), returned early as the error.
#![allow(clippy::result_large_err)]

use super::state::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type S = Arc<Mutex<OktaState>>;

const TIME: &str = "2026-11-24T12:00:00.000Z";

pub(super) fn router(state: S) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// One request, as the routes see it.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    query: BTreeMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

async fn handle(State(st): State<S>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    answer(&st, &parts.method, &parts.uri, &parts.headers, &bytes)
}

fn answer(st: &S, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut s = st.lock().unwrap();
    let path_q = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_string(),
    };
    s.calls.push((method.to_string(), path_q));
    let call = Call {
        method: method.as_str(),
        path: uri.path(),
        query: pairs(uri.query().unwrap_or("")),
        headers,
        body,
    };
    if call.path == "/oauth2/v1/token" {
        return rate_headers(s.token_endpoint(&call), false);
    }
    if !call.path.starts_with("/api/v1/") {
        return not_found(call.path);
    }
    if s.rate_limit_next > 0 {
        s.rate_limit_next -= 1;
        let mut r = okta_err(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        );
        let h = r.headers_mut();
        h.insert("x-rate-limit-limit", hv("600"));
        h.insert("x-rate-limit-remaining", hv("0"));
        h.insert("x-rate-limit-reset", hv(&(now_epoch() + 1).to_string()));
        return r;
    }
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return rate_headers(
            okta_err(500, "E0000009", "Internal Server Error", &[]),
            false,
        );
    }
    let scopes = match s.authenticate(&call) {
        Ok(scopes) => scopes,
        Err(r) => return rate_headers(r, false),
    };
    let resp = s.route(&call, &scopes);
    let exhausted = s.exhaust_next > 0;
    if exhausted {
        s.exhaust_next -= 1;
    }
    rate_headers(resp, exhausted)
}

// ---- responses ----

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

fn json_resp(status: u16, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", hv("application/json"));
    r
}

fn empty(status: u16) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn okta_err(status: u16, code: &str, summary: &str, causes: &[&str]) -> Response {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    json_resp(
        status,
        &json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
                "errorId": "oaeFakeOkta0000000001", "errorCauses": causes}),
    )
}

fn oauth_err(status: u16, error: &str, description: &str) -> Response {
    json_resp(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn not_found(what: &str) -> Response {
    okta_err(
        404,
        "E0000007",
        &format!("Not found: Resource not found: {what}"),
        &[],
    )
}

fn unauthorized() -> Response {
    okta_err(401, "E0000011", "Invalid token provided", &[])
}

fn forbidden() -> Response {
    okta_err(
        403,
        "E0000006",
        "You do not have permission to perform the requested action",
        &[],
    )
}

fn rate_headers(mut r: Response, exhausted: bool) -> Response {
    let h = r.headers_mut();
    h.insert("x-rate-limit-limit", hv("600"));
    h.insert(
        "x-rate-limit-remaining",
        hv(if exhausted { "0" } else { "599" }),
    );
    let reset = now_epoch() + if exhausted { 1 } else { 60 };
    h.insert("x-rate-limit-reset", hv(&reset.to_string()));
    r
}

fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---- parsing ----

fn dec(s: &str) -> String {
    let plus = s.replace('+', " ");
    match urlencoding::decode(&plus) {
        Ok(c) => c.into_owned(),
        Err(_) => plus.clone(),
    }
}

/// `a=1&b=2` (a query or a form body), decoded.
fn pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

fn has_scope(scopes: &[String], any: &[&str]) -> bool {
    scopes.iter().any(|s| any.contains(&s.as_str()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A JWS's header and claims, the signed bytes and the signature.
fn decode_jwt(jwt: &str) -> Option<(Value, Value, Vec<u8>, Vec<u8>)> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).ok()?).ok()?;
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).ok()?;
    let signed = format!("{}.{}", parts[0], parts[1]).into_bytes();
    Some((header, claims, signed, sig))
}

fn verify(
    alg: &'static dyn ring::signature::VerificationAlgorithm,
    public: &[u8],
    signed: &[u8],
    sig: &[u8],
) -> bool {
    ring::signature::UnparsedPublicKey::new(alg, public)
        .verify(signed, sig)
        .is_ok()
}

/// `profile.name eq "…"` → the name (`\"` and `\\` unescaped); anything else → `None`.
fn name_eq(search: &str) -> Option<String> {
    let inner = search
        .trim()
        .strip_prefix("profile.name eq \"")?
        .strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn body_json(call: &Call) -> Option<Value> {
    serde_json::from_slice(call.body).ok()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Why a DPoP proof was refused.
enum DpopProblem {
    /// Well formed, but without the nonce the server asked for.
    Nonce,
    Invalid(String),
}

impl OktaState {
    fn base(&self) -> String {
        match &self.link_host {
            Some(h) => format!("http://{h}"),
            None => self.url.clone(),
        }
    }

    /// Checks a DPoP proof for `method` on `path`; the key's (`x`, `y`).
    fn check_dpop(
        &mut self,
        proof: &str,
        method: &str,
        path: &str,
        ath: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<(String, String), DpopProblem> {
        let bad = |why: &str| DpopProblem::Invalid(why.to_string());
        let (h, c, signed, sig) = decode_jwt(proof).ok_or_else(|| bad("not a JWS"))?;
        if str_at(&h, "/typ") != Some("dpop+jwt") || str_at(&h, "/alg") != Some("ES256") {
            return Err(bad("typ must be dpop+jwt and alg ES256"));
        }
        if str_at(&h, "/jwk/kty") != Some("EC") || str_at(&h, "/jwk/crv") != Some("P-256") {
            return Err(bad("jwk must be an EC P-256 key"));
        }
        if h.pointer("/jwk/d").is_some() {
            return Err(bad("the jwk holds a private key"));
        }
        let x = str_at(&h, "/jwk/x").unwrap_or("").to_string();
        let y = str_at(&h, "/jwk/y").unwrap_or("").to_string();
        let (Ok(xb), Ok(yb)) = (URL_SAFE_NO_PAD.decode(&x), URL_SAFE_NO_PAD.decode(&y)) else {
            return Err(bad("jwk x/y are not base64url"));
        };
        if xb.len() != 32 || yb.len() != 32 {
            return Err(bad("jwk x/y are not 32 bytes"));
        }
        let mut public = vec![4u8];
        public.extend_from_slice(&xb);
        public.extend_from_slice(&yb);
        if !verify(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &public,
            &signed,
            &sig,
        ) {
            return Err(bad("signature does not verify with the jwk"));
        }
        if str_at(&c, "/htm") != Some(method) {
            return Err(bad("htm does not match the method"));
        }
        let htu = format!("{}{}", self.url, path);
        if str_at(&c, "/htu") != Some(htu.as_str()) {
            return Err(bad("htu does not match the URL"));
        }
        let iat = c.get("iat").and_then(Value::as_u64).unwrap_or(0);
        if iat + 300 < now_epoch() || iat > now_epoch() + 60 {
            return Err(bad("iat out of range"));
        }
        if let Some(expected) = ath
            && str_at(&c, "/ath") != Some(expected)
        {
            return Err(bad("ath does not match the access token"));
        }
        if let Some(expected) = nonce
            && str_at(&c, "/nonce") != Some(expected)
        {
            return Err(DpopProblem::Nonce);
        }
        let Some(jti) = str_at(&c, "/jti") else {
            return Err(bad("no jti"));
        };
        if !self.used_jtis.insert(jti.to_string()) {
            return Err(bad("jti replayed"));
        }
        Ok((x, y))
    }

    /// A client assertion (RFC 7523) of the service app.
    fn check_assertion(&mut self, jwt: &str) -> Result<(), String> {
        let (h, c, signed, sig) = decode_jwt(jwt).ok_or("the assertion is not a JWS")?;
        let alg = str_at(&h, "/alg").unwrap_or("");
        let ok = match &self.client_key {
            None => return Err("no public key is registered for the client".into()),
            Some(ClientKey::Es256(pk)) => {
                alg == "ES256"
                    && verify(&ring::signature::ECDSA_P256_SHA256_FIXED, pk, &signed, &sig)
            }
            Some(ClientKey::Rs256(pk)) => {
                alg == "RS256"
                    && verify(
                        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                        pk,
                        &signed,
                        &sig,
                    )
            }
        };
        if !ok {
            return Err("The client_assertion signature is invalid.".into());
        }
        if str_at(&c, "/iss") != Some(self.client_id.as_str())
            || str_at(&c, "/sub") != Some(self.client_id.as_str())
        {
            return Err("iss and sub must be the client_id".into());
        }
        let aud = format!("{}/oauth2/v1/token", self.url);
        if str_at(&c, "/aud") != Some(aud.as_str()) {
            return Err(format!("aud must be {aud}"));
        }
        let exp = c.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if exp <= now_epoch() {
            return Err("The client_assertion token is expired.".into());
        }
        let Some(jti) = str_at(&c, "/jti") else {
            return Err("no jti".into());
        };
        if !self.used_jtis.insert(jti.to_string()) {
            return Err("The client_assertion token has already been used.".into());
        }
        Ok(())
    }

    fn token_endpoint(&mut self, call: &Call) -> Response {
        if call.method != "POST" {
            return oauth_err(405, "invalid_request", "POST only");
        }
        let form = pairs(std::str::from_utf8(call.body).unwrap_or(""));
        let get = |k: &str| -> String { form.get(k).cloned().unwrap_or_default() };
        if get("grant_type") != "client_credentials" {
            return oauth_err(400, "unsupported_grant_type", "client_credentials only");
        }
        if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        {
            return oauth_err(
                401,
                "invalid_client",
                "client_assertion_type is missing or wrong",
            );
        }
        if let Err(why) = self.check_assertion(&get("client_assertion")) {
            return oauth_err(401, "invalid_client", &why);
        }
        let requested: Vec<String> = get("scope")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if requested.is_empty() {
            return oauth_err(
                400,
                "invalid_scope",
                "The authorization request needs a scope.",
            );
        }
        let refused: Vec<&String> = requested
            .iter()
            .filter(|s| !self.granted_scopes.contains(*s))
            .collect();
        if !refused.is_empty() {
            return oauth_err(
                400,
                "invalid_scope",
                &format!("The following scopes are not allowed: {refused:?}"),
            );
        }
        let mut bound = None;
        if self.require_dpop {
            let Some(proof) = header(call.headers, "dpop").map(str::to_string) else {
                return oauth_err(
                    400,
                    "invalid_dpop_proof",
                    "The DPoP proof JWT header is missing.",
                );
            };
            let nonce = self.dpop_nonce.clone();
            match self.check_dpop(
                &proof,
                "POST",
                "/oauth2/v1/token",
                None,
                Some(nonce.as_str()),
            ) {
                Ok(jwk) => bound = Some(jwk),
                Err(DpopProblem::Nonce) => {
                    let mut r = oauth_err(
                        400,
                        "use_dpop_nonce",
                        "Authorization server requires nonce in DPoP proof.",
                    );
                    r.headers_mut().insert("dpop-nonce", hv(&nonce));
                    return r;
                }
                Err(DpopProblem::Invalid(why)) => {
                    return oauth_err(400, "invalid_dpop_proof", &why);
                }
            }
        }
        self.tokens_issued += 1;
        let token = format!("fake-okta-at-{:04}", self.tokens_issued);
        let token_type = if bound.is_some() { "DPoP" } else { "Bearer" };
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                scopes: requested.clone(),
                dpop_jwk: bound,
                expires: Instant::now() + Duration::from_secs(self.token_lifetime_s),
            },
        );
        json_resp(
            200,
            &json!({"token_type": token_type, "expires_in": self.token_lifetime_s,
                    "access_token": token, "scope": requested.join(" ")}),
        )
    }

    /// The scopes the request's credentials carry, or the 401 to answer.
    fn authenticate(&mut self, call: &Call) -> Result<Vec<String>, Response> {
        let auth = header(call.headers, "authorization")
            .unwrap_or("")
            .to_string();
        if let Some(t) = auth.strip_prefix("SSWS ") {
            if self.ssws_token.as_deref() == Some(t) {
                return Ok([
                    SCOPE_GROUPS_MANAGE,
                    SCOPE_GROUPS_READ,
                    SCOPE_APPS_MANAGE,
                    SCOPE_APPS_READ,
                ]
                .iter()
                .map(|s| s.to_string())
                .collect());
            }
            return Err(unauthorized());
        }
        let (scheme_dpop, token) = if let Some(t) = auth.strip_prefix("Bearer ") {
            (false, t.to_string())
        } else if let Some(t) = auth.strip_prefix("DPoP ") {
            (true, t.to_string())
        } else {
            return Err(unauthorized());
        };
        let Some(issued) = self.tokens.get(&token).cloned() else {
            return Err(unauthorized());
        };
        if Instant::now() >= issued.expires {
            return Err(unauthorized());
        }
        match (&issued.dpop_jwk, scheme_dpop) {
            (None, false) => Ok(issued.scopes),
            (Some(bound), true) => {
                let Some(proof) = header(call.headers, "dpop").map(str::to_string) else {
                    return Err(unauthorized());
                };
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                let ath = URL_SAFE_NO_PAD.encode(digest);
                match self.check_dpop(&proof, call.method, call.path, Some(ath.as_str()), None) {
                    Ok(jwk) if &jwk == bound => Ok(issued.scopes),
                    _ => Err(unauthorized()),
                }
            }
            _ => Err(unauthorized()),
        }
    }

    /// The management routes.
    fn route(&mut self, call: &Call, scopes: &[String]) -> Response {
        let groups_read = has_scope(scopes, &[SCOPE_GROUPS_READ, SCOPE_GROUPS_MANAGE]);
        let groups_write = has_scope(scopes, &[SCOPE_GROUPS_MANAGE]);
        let apps_read = has_scope(scopes, &[SCOPE_APPS_READ, SCOPE_APPS_MANAGE]);
        let apps_write = has_scope(scopes, &[SCOPE_APPS_MANAGE]);
        let rest = call.path.trim_start_matches("/api/v1/");
        let segs: Vec<&str> = rest.split('/').collect();
        let allowed = match (call.method, segs.first().copied()) {
            ("GET", Some("groups")) => groups_read,
            (_, Some("groups")) => groups_write,
            ("GET", Some("apps")) => apps_read,
            (_, Some("apps")) => apps_write,
            _ => true,
        };
        if !allowed {
            return forbidden();
        }
        match (call.method, segs.as_slice()) {
            ("GET", ["groups"]) => self.list_groups(call),
            ("POST", ["groups"]) => self.create_group(call),
            ("GET", ["groups", "rules"]) => self.list_rules(call),
            ("POST", ["groups", "rules"]) => self.create_rule(call),
            ("GET", ["groups", "rules", id]) => match self.rules.get(*id) {
                Some(r) => json_resp(200, &rule_json(r)),
                None => not_found(&format!("{id} (GroupRule)")),
            },
            ("PUT", ["groups", "rules", id]) => self.replace_rule(call, id),
            ("DELETE", ["groups", "rules", id]) => {
                let remove_users = call.query.get("removeUsers").is_some_and(|v| v == "true");
                self.delete_rule_route(id, remove_users)
            }
            ("PUT", ["groups", id]) => self.replace_group(call, id),
            ("POST", ["groups", "rules", id, "lifecycle", action]) => self.lifecycle(id, action),
            ("GET", ["groups", id]) => match self.groups.get(*id) {
                Some(g) => json_resp(200, &group_json(g)),
                None => not_found(&format!("{id} (UserGroup)")),
            },
            ("DELETE", ["groups", id]) => {
                if self.groups.remove(*id).is_none() {
                    return not_found(&format!("{id} (UserGroup)"));
                }
                for app in self.apps.values_mut() {
                    app.groups.remove(*id);
                }
                empty(204)
            }
            ("GET", ["groups", id, "users"]) => {
                if !self.groups.contains_key(*id) {
                    return not_found(&format!("{id} (UserGroup)"));
                }
                let items: Vec<(String, Value)> = self
                    .members(id)
                    .iter()
                    .filter_map(|u| self.users.get(u))
                    .map(|u| (u.id.clone(), user_json(u)))
                    .collect();
                self.page(call, items, 200)
            }
            (_, ["apps", app, ..]) if !self.apps.contains_key(*app) => {
                not_found(&format!("{app} (AppInstance)"))
            }
            ("GET", ["apps", app, "groups"]) => {
                let items: Vec<(String, Value)> = self.apps[*app]
                    .groups
                    .iter()
                    .map(|g| (g.clone(), assignment_json(g)))
                    .collect();
                self.page(call, items, 20)
            }
            ("GET", ["apps", app, "groups", gid]) => {
                if self.apps[*app].groups.contains(*gid) {
                    json_resp(200, &assignment_json(gid))
                } else {
                    not_found(&format!("{gid} (ApplicationGroupAssignment)"))
                }
            }
            ("PUT", ["apps", app, "groups", gid]) => {
                if !self.groups.contains_key(*gid) {
                    return not_found(&format!("{gid} (UserGroup)"));
                }
                if let Some(a) = self.apps.get_mut(*app) {
                    a.groups.insert(gid.to_string());
                }
                json_resp(200, &assignment_json(gid))
            }
            ("DELETE", ["apps", app, "groups", gid]) => {
                let removed = self
                    .apps
                    .get_mut(*app)
                    .is_some_and(|a| a.groups.remove(*gid));
                if removed {
                    empty(204)
                } else {
                    not_found(&format!("{gid} (ApplicationGroupAssignment)"))
                }
            }
            ("GET", ["apps", app, "sso", "saml", "metadata"]) => {
                let accept = header(call.headers, "accept").unwrap_or("");
                if !accept.contains("xml") {
                    return okta_err(
                        406,
                        "E0000066",
                        "The requested media type is not supported: Accept must be application/xml",
                        &[],
                    );
                }
                let label = self.apps[*app].label.clone();
                let mut r = Response::new(Body::from(saml_metadata(&self.url, app, &label)));
                r.headers_mut()
                    .insert("content-type", hv("application/xml"));
                r
            }
            _ => not_found(call.path),
        }
    }

    /// One page of `items` (sorted by id), after the `after` cursor, with Okta's `Link`
    /// headers: `self` always, `next` when more remain.
    fn page(&self, call: &Call, items: Vec<(String, Value)>, default_limit: usize) -> Response {
        let limit = call
            .query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(default_limit)
            .max(1);
        let size = limit.min(self.page_size.max(1));
        let start = match call.query.get("after") {
            Some(after) => items
                .iter()
                .position(|(id, _)| id.as_str() > after.as_str())
                .unwrap_or(items.len()),
            None => 0,
        };
        let slice: Vec<Value> = items[start..]
            .iter()
            .take(size)
            .map(|(_, v)| v.clone())
            .collect();
        let more = start + size < items.len();
        let query = |after: Option<&str>| -> String {
            let mut q: Vec<String> = call
                .query
                .iter()
                .filter(|(k, _)| k.as_str() != "after")
                .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
                .collect();
            if let Some(a) = after {
                q.push(format!("after={a}"));
            }
            if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            }
        };
        let base = self.base();
        let mut r = json_resp(200, &Value::Array(slice));
        let self_link = format!(
            "<{base}{}{}>; rel=\"self\"",
            call.path,
            query(call.query.get("after").map(String::as_str))
        );
        r.headers_mut().append("link", hv(&self_link));
        if more {
            let last = &items[start + size - 1].0;
            let next = format!(
                "<{base}{}{}>; rel=\"next\"",
                call.path,
                query(Some(last.as_str()))
            );
            r.headers_mut().append("link", hv(&next));
        }
        r
    }

    fn list_groups(&self, call: &Call) -> Response {
        let now = Instant::now();
        let mut items: Vec<(String, Value)> = Vec::new();
        if let Some(search) = call.query.get("search") {
            let Some(name) = name_eq(search) else {
                return okta_err(400, "E0000031", "Invalid search criteria.", &[]);
            };
            for g in self.groups.values() {
                if g.name == name && g.indexed_at <= now {
                    items.push((g.id.clone(), group_json(g)));
                }
            }
        } else if let Some(q) = call.query.get("q") {
            // Okta's `q`: a case-insensitive prefix match on the name
            let q = q.to_lowercase();
            for g in self.groups.values() {
                if g.name.to_lowercase().starts_with(&q) {
                    items.push((g.id.clone(), group_json(g)));
                }
            }
        } else {
            for g in self.groups.values() {
                items.push((g.id.clone(), group_json(g)));
            }
        }
        self.page(call, items, 200)
    }

    fn create_group(&mut self, call: &Call) -> Response {
        let body = body_json(call).unwrap_or(Value::Null);
        let name = str_at(&body, "/profile/name").unwrap_or("").to_string();
        let description = str_at(&body, "/profile/description")
            .unwrap_or("")
            .to_string();
        if name.is_empty() || name.chars().count() > 255 {
            return okta_err(
                400,
                "E0000001",
                "Api validation failed: name",
                &["name: The field cannot be left blank or exceed 255 characters"],
            );
        }
        if self.groups.values().any(|g| g.name == name) {
            return okta_err(
                400,
                "E0000001",
                "Api validation failed: name",
                &["name: An object with this field already exists in the current organization"],
            );
        }
        let id = self.new_id("00g");
        let group = FakeOktaGroup {
            id: id.clone(),
            name,
            description,
            members: Default::default(),
            indexed_at: Instant::now() + self.search_lag,
        };
        let answer = group_json(&group);
        self.groups.insert(id, group);
        self.created(answer)
    }

    /// `PUT /api/v1/groups/{id}`: a new profile (a rename), refused when the name is taken.
    fn replace_group(&mut self, call: &Call, id: &str) -> Response {
        let body = body_json(call).unwrap_or(Value::Null);
        let name = str_at(&body, "/profile/name").unwrap_or("").to_string();
        let description = str_at(&body, "/profile/description")
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return okta_err(
                400,
                "E0000001",
                "Api validation failed: name",
                &["name: The field cannot be left blank"],
            );
        }
        if self.groups.values().any(|g| g.name == name && g.id != id) {
            return okta_err(
                400,
                "E0000001",
                "Api validation failed: name",
                &["name: An object with this field already exists in the current organization"],
            );
        }
        let Some(g) = self.groups.get_mut(id) else {
            return not_found(&format!("{id} (UserGroup)"));
        };
        g.name = name;
        g.description = description;
        g.indexed_at = Instant::now() + self.search_lag;
        let answer = group_json(g);
        json_resp(200, &answer)
    }

    /// The answer to a create: 200, or a 500 after the work when its answer is to be lost.
    fn created(&mut self, answer: Value) -> Response {
        if self.lost_answer_next {
            self.lost_answer_next = false;
            return okta_err(500, "E0000009", "Internal Server Error", &[]);
        }
        json_resp(200, &answer)
    }

    fn list_rules(&self, call: &Call) -> Response {
        let search = call.query.get("search").map(|s| s.to_lowercase());
        let items: Vec<(String, Value)> = self
            .rules
            .values()
            .filter(|r| {
                search
                    .as_ref()
                    .is_none_or(|s| r.name.to_lowercase().contains(s.as_str()))
            })
            .map(|r| (r.id.clone(), rule_json(r)))
            .collect();
        self.page(call, items, 50)
    }

    /// A rule from a create or replace body, or the 400 to answer.
    fn rule_from_body(&self, call: &Call) -> Result<(String, String, Vec<String>), Response> {
        let body = body_json(call).unwrap_or(Value::Null);
        let invalid = |field: &str, why: &str| -> Response {
            let summary = format!("Api validation failed: {field}");
            let cause = format!("{field}: {why}");
            okta_err(400, "E0000001", &summary, &[cause.as_str()])
        };
        if str_at(&body, "/type") != Some("group_rule") {
            return Err(invalid("type", "must be group_rule"));
        }
        let name = str_at(&body, "/name").unwrap_or("").to_string();
        if name.is_empty() || name.chars().count() > 50 {
            return Err(invalid("name", "must be 1 to 50 characters"));
        }
        if str_at(&body, "/conditions/expression/type") != Some("urn:okta:expression:1.0") {
            return Err(invalid(
                "conditions.expression.type",
                "must be urn:okta:expression:1.0",
            ));
        }
        let expression = str_at(&body, "/conditions/expression/value")
            .unwrap_or("")
            .to_string();
        if expression.is_empty() {
            return Err(invalid("conditions.expression.value", "cannot be blank"));
        }
        let group_ids: Vec<String> = body
            .pointer("/actions/assignUserToGroups/groupIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if group_ids.is_empty() {
            return Err(invalid(
                "actions.assignUserToGroups.groupIds",
                "cannot be empty",
            ));
        }
        if let Some(missing) = group_ids.iter().find(|g| !self.groups.contains_key(*g)) {
            return Err(invalid(
                "actions.assignUserToGroups.groupIds",
                &format!("group {missing} does not exist"),
            ));
        }
        Ok((name, expression, group_ids))
    }

    fn create_rule(&mut self, call: &Call) -> Response {
        let (name, expression, group_ids) = match self.rule_from_body(call) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let id = self.new_id("0pr");
        let rule = FakeOktaRule {
            id: id.clone(),
            name,
            status: "INACTIVE".to_string(),
            expression,
            group_ids,
            activated_at: None,
            added: Default::default(),
        };
        let answer = rule_json(&rule);
        self.rules.insert(id, rule);
        self.created(answer)
    }

    fn replace_rule(&mut self, call: &Call, id: &str) -> Response {
        let Some(status) = self.rules.get(id).map(|r| r.status.clone()) else {
            return not_found(&format!("{id} (GroupRule)"));
        };
        if status == "ACTIVE" {
            return okta_err(400, "E0000090", "Cannot update rule in active status", &[]);
        }
        let (name, expression, group_ids) = match self.rule_from_body(call) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let Some(rule) = self.rules.get_mut(id) else {
            return not_found(&format!("{id} (GroupRule)"));
        };
        rule.name = name;
        rule.expression = expression;
        rule.group_ids = group_ids;
        rule.status = "INACTIVE".to_string();
        json_resp(200, &rule_json(rule))
    }

    fn delete_rule_route(&mut self, id: &str, remove_users: bool) -> Response {
        match self.rules.get(id).map(|r| r.status.clone()) {
            None => not_found(&format!("{id} (GroupRule)")),
            Some(s) if s == "ACTIVE" => okta_err(
                400,
                "E0000090",
                "Cannot delete rule in active status",
                &["Deactivate the rule before deleting it"],
            ),
            Some(_) => {
                self.delete_rule(id, remove_users);
                empty(202)
            }
        }
    }

    fn lifecycle(&mut self, id: &str, action: &str) -> Response {
        let Some(status) = self.rules.get(id).map(|r| r.status.clone()) else {
            return not_found(&format!("{id} (GroupRule)"));
        };
        if status == "INVALID" {
            return okta_err(
                400,
                "E0000001",
                "Api validation failed: updateRuleStatus",
                &["Cannot activate or deactivate a Group Rule with the status INVALID."],
            );
        }
        match action {
            "activate" => {
                if let Some(r) = self.rules.get_mut(id)
                    && r.status != "ACTIVE"
                {
                    r.status = "ACTIVE".to_string();
                    r.activated_at = Some(Instant::now());
                }
                empty(204)
            }
            "deactivate" => {
                if status == "ACTIVE" {
                    self.settle_rule(id);
                }
                if let Some(r) = self.rules.get_mut(id) {
                    r.status = "INACTIVE".to_string();
                    r.activated_at = None;
                }
                empty(204)
            }
            _ => not_found(&format!("lifecycle/{action}")),
        }
    }
}

fn group_json(g: &FakeOktaGroup) -> Value {
    json!({
        "id": g.id, "created": TIME, "lastUpdated": TIME, "lastMembershipUpdated": TIME,
        "objectClass": ["okta:user_group"], "type": "OKTA_GROUP",
        "profile": {"name": g.name, "description": g.description},
        "_links": {"users": {"href": format!("/api/v1/groups/{}/users", g.id)}}
    })
}

fn user_json(u: &FakeOktaUser) -> Value {
    json!({"id": u.id, "status": "ACTIVE", "created": TIME,
           "profile": {"login": u.login, "email": u.login}})
}

fn rule_json(r: &FakeOktaRule) -> Value {
    json!({
        "type": "group_rule", "id": r.id, "status": r.status, "name": r.name,
        "created": TIME, "lastUpdated": TIME,
        "conditions": {
            "people": {"users": {"exclude": []}, "groups": {"exclude": []}},
            "expression": {"value": r.expression, "type": "urn:okta:expression:1.0"}
        },
        "actions": {"assignUserToGroups": {"groupIds": r.group_ids}}
    })
}

fn assignment_json(group_id: &str) -> Value {
    json!({"id": group_id, "lastUpdated": TIME, "priority": 0, "profile": {},
           "_links": {"group": {"href": format!("/api/v1/groups/{group_id}")}}})
}

fn saml_metadata(url: &str, app: &str, label: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/{app}"><md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>MIIDpDCCAoygAwIBAgIGAFakeOkta</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{url}/app/{label}/{app}/sso/saml"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}
