//! Using a token: adding it to an API request, and judging the API's
//! response by the 401 retry rule (`token_retry_check_level`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::challenge::{Challenge, parse_challenges};
use crate::config::{ClientAuth, Config, Grant, RetryCheckLevel};
use crate::error::Failure;
use crate::request::Request;
use crate::response::Response;

/// What the host does with an API's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Hand the response to the caller as it is.
    Accept,
    /// Obtain a new token (the current one is spent) and send the call once more.
    RenewTokenAndRetry,
}

/// The API request with `Authorization: Bearer <access_token>`, replacing
/// any `Authorization` header it had.
///
/// Only bearer tokens (RFC 6750) can be used this way; a token of another
/// type (`mac`, `DPoP`) needs a proof this connector does not make, unless
/// the configuration says to send any token as a bearer token.
pub fn authorize(
    config: &Config,
    mut request: Request,
    token_type: &str,
    access_token: &str,
) -> Result<Request, Failure> {
    if !token_type.eq_ignore_ascii_case("bearer") && !config.bearer_any_token_type {
        return Err(Failure::Other(format!(
            "the token is of type `{token_type}`, which is not sent as a bearer token; ask the authorization server for a Bearer token, or set `bearer_any_token_type` if the API accepts it so"
        )));
    }
    // RFC 6750 section 5.3: a bearer token travels over TLS only; plain
    // http is for the loopback interface, where it never leaves the host.
    let url = url::Url::parse(&request.url)
        .map_err(|e| Failure::Other(format!("the API URL is not an absolute URL: {e}")))?;
    if url.scheme() != "https" && !(url.scheme() == "http" && crate::config::is_loopback(&url)) {
        return Err(Failure::Other(format!(
            "the API URL {}://{}/… is not https: a bearer token would travel in clear (RFC 6750 section 5.3); use https, or http only to the loopback interface (127.0.0.1, [::1], localhost)",
            url.scheme(),
            url.host_str().unwrap_or_default()
        )));
    }
    if access_token.bytes().any(|b| b.is_ascii_control()) {
        return Err(Failure::Other(
            "the access token holds control characters and cannot be sent in a header".into(),
        ));
    }
    request
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    request
        .headers
        .push(("Authorization".into(), format!("Bearer {access_token}")));
    Ok(request)
}

/// Whether an API's response means the token must be renewed and the call
/// retried, at `level`:
///
/// - 1: any 401;
/// - 2: a 401 with a `Bearer` challenge (the API says a bearer token is
///   what it wants, whatever the reason);
/// - 3: a 401 whose `Bearer` challenge says `error="invalid_token"` (RFC 6750
///   section 3.1: expired, revoked or malformed), the only case where a new
///   token can help.
///
/// `retried` says whether this response answered a retry: a call is retried
/// at most once, whatever the response says.
pub fn judge(level: RetryCheckLevel, response: &Response, retried: bool) -> Verdict {
    if retried || response.status != 401 {
        return Verdict::Accept;
    }
    let challenges = challenges(response);
    let mut bearer = challenges.iter().filter(|c| c.is("Bearer"));
    let renew = match level.get() {
        1 => true,
        2 => bearer.next().is_some(),
        _ => bearer.any(|c| c.param("error") == Some("invalid_token")),
    };
    if renew {
        Verdict::RenewTokenAndRetry
    } else {
        Verdict::Accept
    }
}

/// Whether, after a refresh request failed so, the host should obtain a new
/// token with the configured grant: when the server refused the refresh
/// token itself (`invalid_grant`: expired, revoked or already used, RFC
/// 6749 section 5.2), the grant may still work; a refused client, a network
/// failure or an unreadable answer would fail the same way again.
pub fn falls_back_to_grant(failure: &Failure) -> bool {
    matches!(failure, Failure::Rejected(e) if e.error == "invalid_grant")
}

/// Every challenge in a response's `WWW-Authenticate` headers.
pub fn challenges(response: &Response) -> Vec<Challenge> {
    parse_challenges(
        response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, value)| value.as_str()),
    )
}

/// The key under which a host caches and stores this configuration's
/// tokens: equal for configurations whose tokens are interchangeable,
/// different when any of what makes tokens differ differs — the token URL,
/// the client, the grant, whom the token is for (user, assertion subject,
/// the configured refresh token), the scope, audience, resource and extra
/// parameters — and when the credentials differ, so that a configuration
/// with a wrong secret, password or key never receives a token that the
/// right ones obtained.
///
/// It is one SHA-256 digest of all of these: no secret appears in it, but
/// as it depends on them, keep it where the token store is rather than in
/// public logs (a weak password could be guessed from it).
pub fn token_cache_key(config: &Config, store_secret: &[u8]) -> String {
    let digest = |text: &str| URL_SAFE_NO_PAD.encode(Sha256::digest(text));
    let key_digest =
        |assertion: &crate::config::Assertion| URL_SAFE_NO_PAD.encode(assertion.key.digest());
    // Everything an assertion claims but its lifetime: its header (`kid`),
    // its audience and its extra claims (a scope, say) change what the
    // token grants.
    let assertion = |assertion: &crate::config::Assertion| {
        json!([
            assertion.header,
            assertion.issuer,
            assertion.subject,
            assertion.audience,
            assertion.claims,
            key_digest(assertion)
        ])
    };
    let credential = match &config.client.auth {
        ClientAuth::Basic(secret) | ClientAuth::Body(secret) => json!(digest(secret.expose())),
        ClientAuth::None => json!(null),
        ClientAuth::PrivateKeyJwt(client) => assertion(client),
    };
    let whom = match &config.grant {
        Grant::ClientCredentials => json!(null),
        // The refresh token stands for a user; a different one may be another.
        Grant::RefreshToken { refresh_token } => json!(digest(refresh_token.expose())),
        Grant::Password { username, password } => json!([username, digest(password.expose())]),
        Grant::JwtBearer(grant) => assertion(grant),
        // What the authorization request asks for beyond the scope: the
        // user, a refresh token, extra parameters (`acr_values`, `claims`).
        Grant::AuthorizationCode(login) | Grant::Implicit(login) => json!([
            login.authorization_url.as_str(),
            login.login_hint,
            login
                .request_refresh_token
                .then_some(&login.refresh_token_scope),
            login.extra_params.0,
        ]),
    };
    let parts = json!([
        config.token_url.as_ref().map(|url| url.as_str()),
        config.client.client_id,
        credential,
        config.grant.name(),
        whom,
        config.scope,
        config.audience,
        config.resource.as_ref().map(|url| url.as_str()),
        config.extra_body.0,
    ]);
    // Keyed by the store's own secret: without it, the key is no oracle
    // for guessing a weak client secret or password offline.
    use hmac::Mac as _;
    // HMAC accepts a key of any length: this cannot fail.
    let mut mac =
        <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(store_secret).expect("any key length");
    mac.update(parts.to_string().as_bytes());
    format!("v2.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(n: u8) -> RetryCheckLevel {
        crate::Config::parse(&format!(
            r#"{{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","token_retry_check_level":{n}}}"#
        ))
        .expect("valid")
        .token_retry_check_level
    }

    fn response(status: u16, challenges: &[&str]) -> Response {
        Response {
            status,
            headers: challenges
                .iter()
                .map(|c| ("WWW-Authenticate".to_owned(), (*c).to_owned()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn each_level_retries_exactly_what_it_says() {
        use Verdict::{Accept as A, RenewTokenAndRetry as R};
        let cases: &[(Response, [Verdict; 3])] = &[
            (
                response(401, &[r#"Bearer realm="api", error="invalid_token""#]),
                [R, R, R],
            ),
            (
                response(401, &[r#"Bearer error="insufficient_scope""#]),
                [R, R, A],
            ),
            (response(401, &[]), [R, A, A]),
            (response(401, &[r#"Basic realm="api""#]), [R, A, A]),
            (
                response(401, &[r#"Basic realm="x""#, "bearer ERROR=invalid_token"]),
                [R, R, R],
            ),
            (response(401, &["Bearer error=\"invalid_token"]), [R, R, A]),
            (
                response(403, &[r#"Bearer error="invalid_token""#]),
                [A, A, A],
            ),
            (response(200, &[]), [A, A, A]),
        ];
        for (response, expected) in cases {
            for (n, verdict) in (1..=3).zip(expected) {
                assert_eq!(
                    judge(level(n), response, false),
                    *verdict,
                    "level {n}, {:?}",
                    response.headers
                );
                assert_eq!(
                    judge(level(n), response, true),
                    Verdict::Accept,
                    "a retry is never retried"
                );
            }
        }
    }

    #[test]
    fn the_cache_key_follows_what_makes_tokens_differ() {
        let key = |document: &str| {
            token_cache_key(&Config::parse(document).expect("valid"), b"store secret")
        };
        let base = r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read"}"#;
        let same = [
            // Member order and extra headers do not change what a token is.
            r#"{"token_url":"https://as.example/token","scope":"read","client_id":"c","client_secret":"s","grant_type":"client_credentials","extra_headers":{"X-Trace":"1"}}"#,
            r#"{"token_url":"https://as.example/token","scope":"read","client_id":"c","client_secret":"s","client_auth":"body","grant_type":"client_credentials"}"#,
        ];
        let different = [
            // A wrong secret must not be answered from the right one's cache.
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"other","scope":"read"}"#,
            r#"{"grant_type":"password","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read","username":"u","password":"q"}"#,
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token2","client_id":"c","client_secret":"s","scope":"read"}"#,
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"d","client_secret":"s","scope":"read"}"#,
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"write"}"#,
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read","audience":"a"}"#,
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read","resource":"https://api/"}"#,
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read","extra_body":{"tenant":"t"}}"#,
            r#"{"grant_type":"password","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read","username":"u","password":"p"}"#,
            r#"{"grant_type":"password","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read","username":"v","password":"p"}"#,
            // Assertions that claim other scopes or audiences grant other tokens.
            r#"{"grant_type":"jwt_bearer","token_url":"https://as.example/token","client_auth":"none","scope":"read","jwt":{"header":{"alg":"HS256"},"issuer":"i","subject":"s","shared_secret":"0123456789abcdef0123456789abcdef"}}"#,
            r#"{"grant_type":"jwt_bearer","token_url":"https://as.example/token","client_auth":"none","scope":"read","jwt":{"header":{"alg":"HS256"},"issuer":"i","subject":"s","shared_secret":"0123456789abcdef0123456789abcdef","claims":{"scope":"admin"}}}"#,
            r#"{"grant_type":"jwt_bearer","token_url":"https://as.example/token","client_auth":"none","scope":"read","jwt":{"header":{"alg":"HS256"},"issuer":"i","subject":"s","shared_secret":"0123456789abcdef0123456789abcdef","audience":"https://other.example"}}"#,
            r#"{"grant_type":"jwt_bearer","token_url":"https://as.example/token","client_auth":"none","scope":"read","jwt":{"header":{"alg":"HS256","kid":"k2"},"issuer":"i","subject":"s","shared_secret":"0123456789abcdef0123456789abcdef"}}"#,
        ];
        for document in same {
            assert_eq!(key(base), key(document), "{document}");
        }
        let mut keys: Vec<String> = different.iter().map(|d| key(d)).collect();
        keys.push(key(base));
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count, "every configuration has its own key");
        assert!(!key(base).contains("read"), "the key is a digest");
        // Another store's secret, another key: no oracle across stores.
        let config = Config::parse(base).expect("valid");
        assert_ne!(
            token_cache_key(&config, b"one"),
            token_cache_key(&config, b"two")
        );
    }

    #[test]
    fn only_a_refused_refresh_token_falls_back_to_the_grant() {
        let refused = |error: &str| {
            Failure::Rejected(crate::OAuthError {
                error: error.into(),
                error_description: None,
                error_uri: None,
                status: Some(400),
            })
        };
        assert!(falls_back_to_grant(&refused("invalid_grant")));
        assert!(!falls_back_to_grant(&refused("invalid_client")));
        assert!(!falls_back_to_grant(&Failure::Other("timeout".into())));
    }

    #[test]
    fn authorize_sets_one_bearer_header() {
        let request = Request {
            method: "GET".into(),
            url: "https://api.example/v1".into(),
            headers: vec![
                ("authorization".into(), "Basic old".into()),
                ("Accept".into(), "*/*".into()),
            ],
            body: Vec::new(),
        };
        let config = Config::parse(
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s"}"#,
        )
        .expect("valid");
        let authorized = authorize(&config, request, "bearer", "at-1").expect("bearer");
        assert_eq!(
            authorized.headers,
            [
                ("Accept".to_owned(), "*/*".to_owned()),
                ("Authorization".to_owned(), "Bearer at-1".to_owned()),
            ]
        );
        let refused = authorize(&config, authorized.clone(), "mac", "at-1").expect_err("mac");
        assert!(refused.to_string().contains("`mac`"), "{refused}");
        assert!(!refused.to_string().contains("at-1"));
        assert!(authorize(&config, authorized.clone(), "Bearer", "a\r\nX-Injected: 1").is_err());
        let lenient = Config::parse(
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","bearer_any_token_type":true}"#,
        )
        .expect("valid");
        let sent = authorize(&lenient, authorized, "JWT", "at-2").expect("configured");
        assert_eq!(sent.header("Authorization"), Some("Bearer at-2"));
    }
}
