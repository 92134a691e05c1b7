//! The fake Okta's state model: users, groups (with their direct members and when Okta's
//! search index sees them), apps and the groups assigned to them, group rules (INACTIVE when
//! made; once ACTIVE for `rule_delay`, they fill their target groups with the members of the
//! groups their `isMemberOfAnyGroup(…)` names, computed on read), the credentials it
//! accepts, and the faults to inject. The HTTP routes only read and write it. Time is the
//! real monotonic clock (`Instant`): lags and delays are short in tests.

use base64::Engine as _;
use ring::signature::KeyPair as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The SSWS API token the fake accepts by default.
pub const SSWS_TOKEN: &str = "00fake-ssws-token-orgvend";
/// The OAuth service app's client id.
pub const CLIENT_ID: &str = "0oaorgvendservice";
pub const SCOPE_GROUPS_MANAGE: &str = "okta.groups.manage";
pub const SCOPE_GROUPS_READ: &str = "okta.groups.read";
pub const SCOPE_APPS_MANAGE: &str = "okta.apps.manage";
pub const SCOPE_APPS_READ: &str = "okta.apps.read";

/// The public key registered for the service app, to verify its client assertions.
#[derive(Clone, Debug)]
pub enum ClientKey {
    /// An uncompressed P-256 point (65 bytes).
    Es256(Vec<u8>),
    /// A DER `RSAPublicKey`.
    Rs256(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct FakeOktaUser {
    pub id: String,
    pub login: String,
}

#[derive(Clone, Debug)]
pub struct FakeOktaGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Direct members (user ids); rules add theirs on read.
    pub members: BTreeSet<String>,
    /// From when `search` finds it (Okta's search index lags a create).
    pub indexed_at: Instant,
}

#[derive(Clone, Debug)]
pub struct FakeOktaApp {
    pub id: String,
    pub label: String,
    /// Assigned group ids.
    pub groups: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub struct FakeOktaRule {
    pub id: String,
    pub name: String,
    /// `INACTIVE`, `ACTIVE` or `INVALID`.
    pub status: String,
    /// The Okta expression (`isMemberOfAnyGroup("00g…")`).
    pub expression: String,
    /// Target groups.
    pub group_ids: Vec<String>,
    pub activated_at: Option<Instant>,
    /// Users this rule put in its groups and left there when it was deactivated.
    pub added: BTreeSet<String>,
}

/// An access token the fake issued.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub scopes: Vec<String>,
    /// The DPoP key (`x`, `y` of its JWK) the token is bound to.
    pub dpop_jwk: Option<(String, String)>,
    pub expires: Instant,
}

pub struct OktaState {
    /// `http://127.0.0.1:PORT`, set by `FakeOkta::start`.
    pub url: String,
    pub users: BTreeMap<String, FakeOktaUser>,
    pub groups: BTreeMap<String, FakeOktaGroup>,
    pub apps: BTreeMap<String, FakeOktaApp>,
    pub rules: BTreeMap<String, FakeOktaRule>,
    /// The SSWS token accepted (`None`: SSWS refused). Default [`SSWS_TOKEN`].
    pub ssws_token: Option<String>,
    /// The service app's client id. Default [`CLIENT_ID`].
    pub client_id: String,
    /// Its registered public key (`None`: every client assertion is refused).
    pub client_key: Option<ClientKey>,
    /// Scopes granted to the service app. Default groups.manage and apps.manage.
    pub granted_scopes: Vec<String>,
    /// `expires_in` of issued tokens. Default 3600.
    pub token_lifetime_s: u64,
    /// The service app requires DPoP: tokens only with a proof carrying `dpop_nonce`.
    pub require_dpop: bool,
    pub dpop_nonce: String,
    pub tokens: BTreeMap<String, IssuedToken>,
    /// Access tokens issued so far.
    pub tokens_issued: usize,
    /// `jti`s seen (client assertions and DPoP proofs): a replay is refused.
    pub used_jtis: BTreeSet<String>,
    /// Largest page served, whatever `limit` asks. Default 200.
    pub page_size: usize,
    /// How long a created group stays out of `search` results. Default zero.
    pub search_lag: Duration,
    /// How long an activated rule takes to fill its groups. Default zero.
    pub rule_delay: Duration,
    /// The next this many `/api/v1` requests are answered 429 (E0000047).
    pub rate_limit_next: usize,
    /// The next this many normal answers say `X-Rate-Limit-Remaining: 0`, reset in 1 s.
    pub exhaust_next: usize,
    /// The next this many `/api/v1` requests are answered 500 (E0000009).
    pub fail_next: usize,
    /// The next creating POST (group, rule) is done, then answered 500.
    pub lost_answer_next: bool,
    /// `Link` headers point at this host instead of the fake's own.
    pub link_host: Option<String>,
    pub calls: Vec<(String, String)>,
    pub next_id: u64,
}

impl Default for OktaState {
    fn default() -> Self {
        Self::new()
    }
}

impl OktaState {
    pub fn new() -> OktaState {
        OktaState {
            url: String::new(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            apps: BTreeMap::new(),
            rules: BTreeMap::new(),
            ssws_token: Some(SSWS_TOKEN.to_string()),
            client_id: CLIENT_ID.to_string(),
            client_key: None,
            granted_scopes: vec![
                SCOPE_GROUPS_MANAGE.to_string(),
                SCOPE_APPS_MANAGE.to_string(),
            ],
            token_lifetime_s: 3600,
            require_dpop: false,
            dpop_nonce: "fake-dpop-nonce-1".to_string(),
            tokens: BTreeMap::new(),
            tokens_issued: 0,
            used_jtis: BTreeSet::new(),
            page_size: 200,
            search_lag: Duration::ZERO,
            rule_delay: Duration::ZERO,
            rate_limit_next: 0,
            exhaust_next: 0,
            fail_next: 0,
            lost_answer_next: false,
            link_host: None,
            calls: Vec::new(),
            next_id: 0,
        }
    }

    /// A new id with Okta's prefix (`00g` group, `00u` user, `0oa` app, `0pr` rule); ids
    /// sort in creation order.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:017}", self.next_id)
    }

    pub fn add_user(&mut self, login: &str) -> String {
        let id = self.new_id("00u");
        self.users.insert(
            id.clone(),
            FakeOktaUser {
                id: id.clone(),
                login: login.to_string(),
            },
        );
        id
    }

    /// A group, found by `search` at once. No name check: Okta can hold two groups of one
    /// name (imported ones), which is how a test makes a duplicate.
    pub fn add_group(&mut self, name: &str) -> String {
        let id = self.new_id("00g");
        self.groups.insert(
            id.clone(),
            FakeOktaGroup {
                id: id.clone(),
                name: name.to_string(),
                description: String::new(),
                members: BTreeSet::new(),
                indexed_at: Instant::now(),
            },
        );
        id
    }

    pub fn add_member(&mut self, group_id: &str, user_id: &str) {
        self.groups
            .get_mut(group_id)
            .unwrap_or_else(|| panic!("no group {group_id}"))
            .members
            .insert(user_id.to_string());
    }

    /// An app (e.g. the AWS Account Federation app); its id.
    pub fn add_app(&mut self, label: &str) -> String {
        let id = self.new_id("0oa");
        self.apps.insert(
            id.clone(),
            FakeOktaApp {
                id: id.clone(),
                label: label.to_string(),
                groups: BTreeSet::new(),
            },
        );
        id
    }

    /// A rule as if made through the API earlier (no name check, so duplicates can be made).
    pub fn add_rule(&mut self, name: &str, expression: &str, group_ids: &[&str]) -> String {
        let id = self.new_id("0pr");
        self.rules.insert(
            id.clone(),
            FakeOktaRule {
                id: id.clone(),
                name: name.to_string(),
                status: "INACTIVE".to_string(),
                expression: expression.to_string(),
                group_ids: group_ids.iter().map(|g| g.to_string()).collect(),
                activated_at: None,
                added: BTreeSet::new(),
            },
        );
        id
    }

    /// The first group of exactly this name.
    pub fn group_named(&self, name: &str) -> Option<String> {
        self.groups
            .values()
            .find(|g| g.name == name)
            .map(|g| g.id.clone())
    }

    pub fn groups_named(&self, name: &str) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| g.name == name)
            .map(|g| g.id.clone())
            .collect()
    }

    pub fn rule_named(&self, name: &str) -> Option<String> {
        self.rules
            .values()
            .find(|r| r.name == name)
            .map(|r| r.id.clone())
    }

    /// A group's members now: its direct members and those its active rules (past their
    /// delay) put in.
    pub fn members(&self, group_id: &str) -> BTreeSet<String> {
        let mut out = self
            .groups
            .get(group_id)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        out.extend(self.rule_members(group_id));
        out
    }

    /// The logins of [`members`](Self::members).
    pub fn member_logins(&self, group_id: &str) -> BTreeSet<String> {
        self.members(group_id)
            .iter()
            .filter_map(|u| self.users.get(u).map(|x| x.login.clone()))
            .collect()
    }

    /// Who the active rules targeting `group_id` put in it, once their delay has passed.
    pub fn rule_members(&self, group_id: &str) -> BTreeSet<String> {
        let now = Instant::now();
        let mut out = BTreeSet::new();
        for r in self.rules.values() {
            if r.status != "ACTIVE" || !r.group_ids.iter().any(|g| g == group_id) {
                continue;
            }
            let Some(at) = r.activated_at else {
                continue;
            };
            if now < at + self.rule_delay {
                continue;
            }
            for source in expression_groups(&r.expression) {
                if let Some(g) = self.groups.get(&source) {
                    out.extend(g.members.iter().cloned());
                }
            }
        }
        out
    }

    /// A rule's users stay in its groups when it is deactivated: they become direct members.
    pub fn settle_rule(&mut self, rule_id: &str) {
        let Some(rule) = self.rules.get(rule_id).cloned() else {
            return;
        };
        if rule
            .activated_at
            .is_none_or(|at| Instant::now() < at + self.rule_delay)
        {
            return; // it had not filled its groups yet
        }
        // the members of the groups this rule's expression names
        let mut add = BTreeSet::new();
        for source in expression_groups(&rule.expression) {
            if let Some(g) = self.groups.get(&source) {
                add.extend(g.members.iter().cloned());
            }
        }
        for target in &rule.group_ids {
            if let Some(g) = self.groups.get_mut(target) {
                g.members.extend(add.iter().cloned());
            }
        }
        if let Some(r) = self.rules.get_mut(rule_id) {
            r.added.extend(add);
        }
    }

    /// Deletes a rule; with `remove_users`, the users it put in its groups leave them too.
    pub fn delete_rule(&mut self, rule_id: &str, remove_users: bool) {
        let Some(rule) = self.rules.remove(rule_id) else {
            return;
        };
        if remove_users {
            for target in &rule.group_ids {
                if let Some(g) = self.groups.get_mut(target) {
                    for u in &rule.added {
                        g.members.remove(u);
                    }
                }
            }
        }
    }
}

/// The group ids named by `isMemberOfAnyGroup("a","b")` / `isMemberOfGroup("a")` calls.
pub fn expression_groups(expression: &str) -> Vec<String> {
    let mut out = Vec::new();
    for call in ["isMemberOfAnyGroup(", "isMemberOfGroup("] {
        let mut rest = expression;
        while let Some(i) = rest.find(call) {
            let after = &rest[i + call.len()..];
            let Some(end) = after.find(')') else {
                break;
            };
            for arg in after[..end].split(',') {
                let id = arg.trim().trim_matches('"').trim_matches('\'');
                if !id.is_empty() {
                    out.push(id.to_string());
                }
            }
            rest = &after[end..];
        }
    }
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh ES256 key for a test: its PKCS#8 PEM (for the client) and its uncompressed
/// public point (for [`ClientKey::Es256`]).
pub fn test_es256_key() -> (String, Vec<u8>) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    (pem("PRIVATE KEY", doc.as_ref()), public)
}

/// A test-only RSA key, generated for these tests; it protects nothing. (ring cannot make
/// RSA keys.)
const TEST_RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCGhtv3Dky9s8Ra
MWtLElsG+mstSRGQJgLfOU8m6x11/c+/83dFp2qxjpDJftGLBXeMulolhmEtUBPl
mbTCV+k599hDksBaTazEhIoDVz7h/vc9QUi6IkZ3JLwKH46KoJUKFDf7JJn55Sms
yuV/QKBCZQLoOSofSaNFM37tcVGIjrZI+hB0gsm0NXnAOmKLwsTsr36cYEhjcGEG
RWbM88DSN8d4aK/6WBPAC7hnJWmFkOkBN3Nehuas2rUQ6CVdUObVrPlsu6qIZP/b
U5Z4zVy//xjzFPeUmuPSUCJh/c3pvlmZFQzedhMeedbChikm5rAvXxrTG9cVr3Nn
INnYKRB1AgMBAAECggEAAm/H8rTk+AAjxqWZqekR1aX/GlfUXYD820bY4fbXnXMv
xUqbiUpJOCDV4ogDTlv0/aYvgRSZ7Bs+DM6x6oYv2XoaLnyfxxcptq81XPVJLBYf
VBjPx0Ktxsz/o8TGWOqP5taEmUW4wv2q4f9KZbZLUoAfkNSaw3MoNqbgqBjEnZyr
g6Fhrna/iFCeYTuyctlDoyDy5lV5D/b1uMsBBX1e7zOVjecetmJS6TX+S0Vb8DQs
WnN+sf0WJdT1pTP9H7Pb636ews0T8kVgdBots2h2kci0poMChk+G40zaMPV0uYKH
GpwLiTA5HsbArPRDopV1o/63gOtJDsiatB04kOr+6QKBgQC9Wej8XhhX9EqQQObW
UXm42oa9/EVMRS0QmfGgpo6dqkY6kyioZ7614l+j4b39XUturr7Ryfcycv4u7/7M
AjNlOAAfAaLC5+GbLtbbcmXZ09nbMmPUzLsOu980MPMEcpS6auN/b+WwZ1w5REOI
TEM+Yr8hosXGJYMHHwDe+GdlUwKBgQC14NJSexIMEb6+sUCMJ8cda63pKlHqWd8F
Mx93InOHdk8wLnOtlDyxqkN3hS8Fnrln0oPqhElNH75O3J1jjBLlQQ1HE7XP9DjM
2QyhNlYawxOfTx+l72iTKr8b7ffsK+NdpZpmakeyxU7+ph/+4XCRhFAg26ZjNvXS
8KDpXUByFwKBgGki1BfUk0W68e/Y6ZNUl/aI98njmgK4YkZWg/CEqqlmkyoQ7cFc
IWtSb3JKdLiKpcimJHPN5YDQkswzG9Hg4vKvvnl46gu4vu7wegJNKbpiRBPOjdnp
d2+95zhOeZEdofFESl9HHUzuhymQ+sJiPfAU2jVt8MyNpYw9rbkgSiDbAoGAMgAx
sg01g+3o84HFTgKtgdAVipFg3b2BS2unjdgBzM7grE1I7gJfwTQewh/yMmhVbk54
h6OAh1xftEyAVFqw4yfEH7Mye44Xg3F0QGmwuEDDBzv4ZmTv6e2JhoMgcmQKaLdb
QCaduW727Zj8GNUfXlHyuWXJU2NLp4cRpbZGPlcCgYEAkSngNLb/JsqgkB54ZNdr
w/kfjZ09NNdPtc2zOXd+aNtA11C8u6eLTWGx3YRbtfN/rCWALBENOtLO4afyrFp4
B60U1mTz0me67iR8QgSn6fERsHi3jC9wIiSD6Nt8W53U8KqXsqr8dM5K7NQQwKaw
Tgyto0cYqQgVMU/z3gYnt6g=
-----END PRIVATE KEY-----
";

/// The test RSA key: its PKCS#8 PEM and its DER `RSAPublicKey` (for [`ClientKey::Rs256`]).
pub fn test_rs256_key() -> (String, Vec<u8>) {
    let body: String = TEST_RSA_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let public = pair.public().as_ref().to_vec();
    (TEST_RSA_PEM.to_string(), public)
}
