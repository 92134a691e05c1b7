//! Okta's OAuth 2.0 credentials, signed here with ring: the private-key JWT that proves the
//! service app's identity at `/oauth2/v1/token` (ES256 or RS256, from a PKCS#8 PEM), and the
//! DPoP proofs (RFC 9449) of an ephemeral P-256 key that bind a token to this process. No
//! network here: [`super::http`] sends what this builds. Nothing here prints a key or a token.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long a client assertion is valid (Okta accepts at most an hour).
const ASSERTION_LIFETIME_S: u64 = 300;

/// The key that signs client assertions.
pub(crate) enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl Signer {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, EC P-256 or RSA) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). The key itself never appears in an error.
    pub(crate) fn from_pem(pem: &str) -> Result<Signer> {
        let (label, der) = pem_to_der(pem)?;
        let rng = SystemRandom::new();
        match label.as_str() {
            "PRIVATE KEY" => {
                if let Ok(k) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                {
                    return Ok(Signer::Es256(k));
                }
                match RsaKeyPair::from_pkcs8(&der) {
                    Ok(k) => Ok(Signer::Rs256(k)),
                    Err(e) => bail!(
                        "the Okta private key is neither an EC P-256 nor an RSA PKCS#8 key ({e})"
                    ),
                }
            }
            "RSA PRIVATE KEY" => match RsaKeyPair::from_der(&der) {
                Ok(k) => Ok(Signer::Rs256(k)),
                Err(e) => bail!("the Okta RSA private key was refused ({e})"),
            },
            "EC PRIVATE KEY" => bail!(
                "the Okta private key is a SEC1 EC key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"
            ),
            "ENCRYPTED PRIVATE KEY" => {
                bail!("the Okta private key is encrypted; orgvend needs it unencrypted (PKCS#8)")
            }
            other => bail!("the Okta private key is a PEM `{other}`, not a PKCS#8 private key"),
        }
    }

    pub(crate) fn alg(&self) -> &'static str {
        match self {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match self {
            Signer::Es256(k) => {
                let sig = k
                    .sign(&rng, message)
                    .map_err(|_| anyhow!("signing the Okta client assertion (ES256) failed"))?;
                Ok(sig.as_ref().to_vec())
            }
            Signer::Rs256(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| anyhow!("signing the Okta client assertion (RS256) failed"))?;
                Ok(sig)
            }
        }
    }
}

/// The label (`PRIVATE KEY`) and DER bytes of the first PEM block in `pem`. A key pasted
/// into an environment variable with literal `\n` for its line breaks is read too.
pub(crate) fn pem_to_der(pem: &str) -> Result<(String, Vec<u8>)> {
    let text = pem.replace("\\n", "\n");
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            if label.is_none() {
                label = Some(rest.trim_end_matches('-').trim().to_string());
            }
            continue;
        }
        if line.starts_with("-----END ") {
            if label.is_some() {
                break;
            }
            continue;
        }
        if label.is_some() {
            body.push_str(line);
        }
    }
    let Some(label) = label else {
        bail!("the Okta private key is not PEM (no `-----BEGIN PRIVATE KEY-----` line)");
    };
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| anyhow!("the Okta private key's PEM body is not valid base64"))?;
    if der.is_empty() {
        bail!("the Okta private key's PEM block is empty");
    }
    Ok((label, der))
}

/// Unpadded base64url, as JWS wants it.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 16 random bytes, base64url: a `jti`.
pub(crate) fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow!("the system random number generator failed"))?;
    Ok(b64url(&bytes))
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A compact JWS: `header.claims.signature`, each base64url.
fn compact_jws(
    header: &Value,
    claims: &Value,
    sign: &dyn Fn(&[u8]) -> Result<Vec<u8>>,
) -> Result<String> {
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

/// The client assertion (RFC 7523) for Okta's token endpoint `aud`:
/// `iss` = `sub` = the client id, valid for five minutes from `iat`, with a fresh `jti`.
pub(crate) fn client_assertion(
    signer: &Signer,
    client_id: &str,
    key_id: Option<&str>,
    aud: &str,
    iat: u64,
) -> Result<String> {
    let mut header = json!({"alg": signer.alg(), "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = Value::String(kid.to_string());
    }
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME_S,
        "jti": random_id()?,
    });
    compact_jws(&header, &claims, &|m: &[u8]| signer.sign(m))
}

/// An ephemeral P-256 key for DPoP proofs: made once per client, never stored.
pub(crate) struct DpopKey {
    pair: EcdsaKeyPair,
    /// The public JWK (`kty`, `crv`, `x`, `y`) every proof carries in its header.
    jwk: Value,
}

impl DpopKey {
    pub(crate) fn generate() -> Result<DpopKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("generating the DPoP key failed"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| anyhow!("reading the generated DPoP key failed ({e})"))?;
        // uncompressed point: 0x04 || x (32 bytes) || y (32 bytes)
        let public: Vec<u8> = pair.public_key().as_ref().to_vec();
        if public.len() != 65 || public[0] != 4 {
            bail!("the generated DPoP key's public point is not an uncompressed P-256 point");
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(&public[1..33]),
            "y": b64url(&public[33..65]),
        });
        Ok(DpopKey { pair, jwk })
    }

    /// A DPoP proof for one request: `htm` the method, `htu` the URL without query or
    /// fragment, the server's `nonce` when it asked for one, and `ath` (the hash of the
    /// access token) on resource requests.
    pub(crate) fn proof(
        &self,
        htm: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "htm": htm,
            "htu": htu(url)?,
            "iat": now_secs(),
            "jti": random_id()?,
        });
        if let Some(n) = nonce {
            claims["nonce"] = Value::String(n.to_string());
        }
        if let Some(token) = access_token {
            claims["ath"] = Value::String(ath(token));
        }
        let rng = SystemRandom::new();
        compact_jws(&header, &claims, &|m: &[u8]| {
            self.pair
                .sign(&rng, m)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| anyhow!("signing a DPoP proof failed"))
        })
    }
}

/// `htu`: the request URL without its query and fragment.
pub(crate) fn htu(url: &str) -> Result<String> {
    let mut u = reqwest::Url::parse(url).context("parsing a request URL for DPoP")?;
    u.set_query(None);
    u.set_fragment(None);
    Ok(u.to_string())
}

/// `ath`: base64url(SHA-256(access token)).
pub(crate) fn ath(access_token: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(access_token.as_bytes()).into();
    b64url(&digest)
}

/// Okta's answer from the token endpoint. Not `Debug`: it holds the token.
#[derive(serde::Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test-only RSA key, generated for these tests; it protects nothing.
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

    fn es256_pem() -> (String, Vec<u8>) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let b64 = STANDARD.encode(doc.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        (pem, public)
    }

    fn part(jwt: &str, i: usize) -> Value {
        let p = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn pem_blocks_are_read_and_bad_ones_refused() {
        let (pem, _) = es256_pem();
        let (label, der) = pem_to_der(&pem).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        // literal \n from an environment variable
        let flat = pem.replace('\n', "\\n");
        assert_eq!(pem_to_der(&flat).unwrap().1, der);
        assert!(matches!(Signer::from_pem(&pem).unwrap(), Signer::Es256(_)));
        assert!(matches!(
            Signer::from_pem(TEST_RSA_PEM).unwrap(),
            Signer::Rs256(_)
        ));
        assert!(pem_to_der("not a key").is_err());
        assert!(pem_to_der("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----").is_err());
        let sec1 = pem.replace("BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY");
        let err = Signer::from_pem(&sec1).err().unwrap().to_string();
        assert!(err.contains("openssl pkcs8"), "{err}");
        assert!(!err.contains(&pem[30..60]), "no key material in errors");
    }

    #[test]
    fn a_client_assertion_is_a_signed_jwt_with_okta_claims() {
        let (pem, public) = es256_pem();
        let signer = Signer::from_pem(&pem).unwrap();
        let aud = "https://example.okta.com/oauth2/v1/token";
        let jwt = client_assertion(&signer, "0oaclient", Some("kid-1"), aud, 1_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(
            parts
                .iter()
                .all(|p| !p.contains('=') && !p.contains('+') && !p.contains('/'))
        );
        let header = part(&jwt, 0);
        assert_eq!(
            header,
            json!({"alg": "ES256", "typ": "JWT", "kid": "kid-1"})
        );
        let claims = part(&jwt, 1);
        assert_eq!(claims["iss"], "0oaclient");
        assert_eq!(claims["sub"], "0oaclient");
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_300);
        let jti = claims["jti"].as_str().unwrap();
        assert!(jti.len() >= 16);
        let again = client_assertion(&signer, "0oaclient", None, aud, 1_000).unwrap();
        assert_ne!(
            part(&again, 1)["jti"],
            claims["jti"],
            "a fresh jti each time"
        );
        assert!(part(&again, 0).get("kid").is_none());
        // the signature verifies with the public key
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let msg = format!("{}.{}", parts[0], parts[1]);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
            .verify(msg.as_bytes(), &sig)
            .expect("ES256 signature verifies");
    }

    #[test]
    fn an_rs256_assertion_verifies() {
        let signer = Signer::from_pem(TEST_RSA_PEM).unwrap();
        let Signer::Rs256(pair) = &signer else {
            panic!("RSA")
        };
        let public = pair.public().as_ref().to_vec();
        let jwt = client_assertion(&signer, "c", None, "https://o/oauth2/v1/token", 5).unwrap();
        assert_eq!(part(&jwt, 0)["alg"], "RS256");
        let parts: Vec<&str> = jwt.split('.').collect();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let msg = format!("{}.{}", parts[0], parts[1]);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &public,
        )
        .verify(msg.as_bytes(), &sig)
        .expect("RS256 signature verifies");
    }

    #[test]
    fn a_dpop_proof_carries_its_key_and_binds_the_request() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof(
                "GET",
                "https://example.okta.com/api/v1/groups?search=x#frag",
                Some("n-1"),
                Some("tok"),
            )
            .unwrap();
        let header = part(&proof, 0);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header["jwk"].get("d").is_none(), "no private part");
        let claims = part(&proof, 1);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://example.okta.com/api/v1/groups");
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], ath("tok"));
        // known answer: SHA-256("abc")
        assert_eq!(ath("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        let x = URL_SAFE_NO_PAD
            .decode(header["jwk"]["x"].as_str().unwrap())
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode(header["jwk"]["y"].as_str().unwrap())
            .unwrap();
        let mut public = vec![4u8];
        public.extend_from_slice(&x);
        public.extend_from_slice(&y);
        let parts: Vec<&str> = proof.split('.').collect();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let msg = format!("{}.{}", parts[0], parts[1]);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
            .verify(msg.as_bytes(), &sig)
            .expect("the proof verifies with its own jwk");
        let token_proof = key
            .proof("POST", "https://o/oauth2/v1/token", None, None)
            .unwrap();
        assert!(part(&token_proof, 1).get("ath").is_none());
        assert!(part(&token_proof, 1).get("nonce").is_none());
    }
}
