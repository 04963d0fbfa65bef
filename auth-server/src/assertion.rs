//! Verifying JWT assertions (RFC 7523 section 3) against registered keys.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::registry::keys;

/// Clock skew tolerated between the signer and the server.
const LEEWAY_SECS: u64 = 5;

/// What a verified assertion says.
pub struct VerifiedAssertion {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
}

/// Verifies signature, `aud` (the token endpoint), `exp`, `nbf`, `iat`
/// and `jti`, which must not have been seen before its `exp`.
pub fn verify(
    jwt: &str,
    token_url: &str,
    seen_ids: &mut HashMap<String, u64>,
    now: u64,
) -> Result<VerifiedAssertion, String> {
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|e| format!("the assertion is not a JWT: {e}"))?;
    let key = match header.alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(keys::RSA_PUBLIC.as_bytes()),
        Algorithm::ES256 => DecodingKey::from_ec_pem(keys::EC_PUBLIC.as_bytes()),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(keys::ED25519_PUBLIC.as_bytes()),
        other => return Err(format!("the algorithm {other:?} is not accepted")),
    }
    .map_err(|e| format!("the registered key cannot be read: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|e| format!("the assertion is invalid: {e}"))?
        .claims;
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
