//! Verifying JWT assertions (RFC 7523 section 3) against registered keys.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::registry::RegisteredKey;

/// Clock skew tolerated between the signer and the server.
const LEEWAY_SECS: u64 = 5;

/// What a verified assertion says.
pub struct VerifiedAssertion {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
}

/// The `iss` an assertion claims, read before its signature is checked:
/// it says whose registered keys check it.
pub fn claimed_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["iss"].as_str().map(str::to_owned)
}

/// Verifies the signature with one of `keys` (the one its `kid` names, or
/// any of the algorithm's kind when it names none), then `aud` (the token
/// endpoint), `exp`, `nbf`, `iat` and `jti`, which must not have been seen
/// before its `exp`.
pub fn verify(
    jwt: &str,
    token_url: &str,
    seen_ids: &mut HashMap<String, u64>,
    now: u64,
    keys: &[RegisteredKey],
) -> Result<VerifiedAssertion, String> {
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|e| format!("the assertion is not a JWT: {e}"))?;
    let candidates: Vec<&RegisteredKey> = match &header.kid {
        Some(kid) => keys.iter().filter(|key| key.kid == kid).collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(match header.kid {
            Some(kid) => format!("no key `{kid}` is registered for this signer"),
            None => "no key is registered for this signer".into(),
        });
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let mut last_problem = String::from("no registered key verifies its signature");
    let mut claims = None;
    for candidate in candidates {
        let key = match header.alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(candidate.pem.as_bytes()),
            Algorithm::ES256 => DecodingKey::from_ec_pem(candidate.pem.as_bytes()),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(candidate.pem.as_bytes()),
            other => return Err(format!("the algorithm {other:?} is not accepted")),
        };
        // A key of another kind does not read as this algorithm's: next.
        let Ok(key) = key else {
            continue;
        };
        match jsonwebtoken::decode::<Value>(jwt, &key, &validation) {
            Ok(decoded) => {
                claims = Some(decoded.claims);
                break;
            }
            Err(e) => last_problem = e.to_string(),
        }
    }
    let claims = claims.ok_or_else(|| format!("the assertion is invalid: {last_problem}"))?;
    if claims["iat"]
        .as_u64()
        .is_some_and(|iat| iat > now + LEEWAY_SECS)
    {
        return Err("the assertion was issued in the future".into());
    }
    let jti = claims["jti"].as_str().ok_or("the assertion has no `jti`")?;
    // Remembered for as long as the assertion could still be accepted.
    let accepted_until = claims["exp"]
        .as_u64()
        .unwrap_or(now)
        .saturating_add(LEEWAY_SECS);
    seen_ids.retain(|_, until| *until >= now);
    if seen_ids.insert(jti.to_owned(), accepted_until).is_some() {
        return Err("the assertion's `jti` was used before".into());
    }
    let text = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
    Ok(VerifiedAssertion {
        issuer: text("iss"),
        subject: text("sub"),
    })
}
