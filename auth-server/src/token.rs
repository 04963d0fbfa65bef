//! The token endpoint (RFC 6749 sections 2.3, 3.2, 4, 5 and 6; RFC 7523;
//! RFC 7636 section 4.6).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::registry::{self, ASSERTION_ISSUER, JWT_BEARER, RegisteredClient, TokenEndpointAuth};
use super::{Grant, REALM, ReceivedRequest, State, assertion, json_response, unix_now};

/// The `client_assertion_type` of RFC 7523 section 2.2.
const JWT_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A section 5.2 error response.
pub(super) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    challenge: bool,
}

impl OAuthError {
    pub(super) fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            challenge: false,
        }
    }

    /// `invalid_client` with 401 and a Basic challenge. Section 5.2 requires
    /// them when the client tried the Authorization header and allows them
    /// otherwise; answering every failed authentication alike tells an
    /// attacker nothing about which method a client is registered for.
    fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
            challenge: true,
        }
    }

    pub(super) fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = json_response(
            self.status,
            &json!({"error": self.error, "error_description": self.description}),
        );
        if self.challenge {
            let challenge = format!("Basic realm=\"{REALM}\", charset=\"UTF-8\"");
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Form parameters whose values the record of received requests hides.
const SECRET_PARAMETERS: &[&str] = &[
    "client_secret",
    "refresh_token",
    "password",
    "code",
    "code_verifier",
    "assertion",
    "client_assertion",
    "token",
];

/// Handles one token request and returns the token response's members.
pub(super) fn token_grant(
    state: &mut State,
    headers: &HeaderMap,
    body: &[u8],
    received: &mut ReceivedRequest,
) -> Result<Value, OAuthError> {
    let now = unix_now();
    let (parameters, client) = authenticated_request(state, headers, body, received, now)?;

    let grant_type = parameters.get("grant_type").ok_or_else(|| {
        OAuthError::new("invalid_request", "the parameter `grant_type` is missing")
    })?;
    grant(state, client, grant_type, &parameters, now)
}

/// A request to the token, introspection or revocation endpoint: its form
/// parameters and the client that authenticated, both recorded in
/// `received`.
pub(super) fn authenticated_request(
    state: &mut State,
    headers: &HeaderMap,
    body: &[u8],
    received: &mut ReceivedRequest,
    now: u64,
) -> Result<(HashMap<String, String>, &'static RegisteredClient), OAuthError> {
    let parameters = form_parameters(headers, body, received)?;
    let client = authenticate(state, headers, &parameters, now)?;
    received.authenticated_client = Some(client.client_id.to_owned());
    Ok((parameters, client))
}

/// The form parameters of a request to the token, introspection or
/// revocation endpoint, recorded in `received` with secrets hidden.
fn form_parameters(
    headers: &HeaderMap,
    body: &[u8],
    received: &mut ReceivedRequest,
) -> Result<HashMap<String, String>, OAuthError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }

    // Section 3.1: parameters sent without a value are treated as omitted,
    // and none may be included more than once.
    let mut parameters: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        let shown = if SECRET_PARAMETERS.contains(&name.as_ref()) {
            "[redacted]".to_owned()
        } else {
            value.to_string()
        };
        received.parameters.push((name.to_string(), shown));
        if value.is_empty() {
            continue;
        }
        if parameters
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::new(
                "invalid_request",
                format!("the parameter `{name}` is repeated"),
            ));
        }
    }

    Ok(parameters)
}

fn grant(
    state: &mut State,
    client: &'static RegisteredClient,
    grant_type: &str,
    parameters: &HashMap<String, String>,
    now: u64,
) -> Result<Value, OAuthError> {
    if !matches!(
        grant_type,
        "client_credentials" | "refresh_token" | "password" | "authorization_code" | JWT_BEARER
    ) {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            format!("the grant type `{grant_type}` is not supported"),
        ));
    }
    if !client.may_use(grant_type) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!("the client may not use the grant type `{grant_type}`"),
        ));
    }
    if let Some(resource) = parameters.get("resource") {
        let valid = url::Url::parse(resource).is_ok_and(|url| url.fragment().is_none());
        if !valid {
            return Err(OAuthError::new(
                "invalid_target",
                "`resource` must be an absolute URI without a fragment",
            ));
        }
    }
    let requested_scope = parameters.get("scope").map(String::as_str);
    let required = |name: &str| {
        parameters.get(name).ok_or_else(|| {
            OAuthError::new(
                "invalid_request",
                format!("the parameter `{name}` is missing"),
            )
        })
    };

    let issued = match grant_type {
        // Section 4.4.3: no refresh token for client credentials.
        "client_credentials" => Issue {
            user: None,
            scope: granted_scope(client, requested_scope, None)?,
            refresh: false,
            family: None,
        },
        "password" => {
            let username = required("username")?;
            let password = required("password")?;
            let matches = registry::user(username).is_some_and(|user| {
                bool::from(user.password.as_bytes().ct_eq(password.as_bytes()))
            });
            if !matches {
                return Err(OAuthError::new(
                    "invalid_grant",
                    "the user name or password is wrong",
                ));
            }
            Issue {
                user: Some(username.clone()),
                scope: granted_scope(client, requested_scope, None)?,
                refresh: true,
                family: None,
            }
        }
        JWT_BEARER => {
            let token_url = state.token_url.clone();
            let verified = assertion::verify(
                required("assertion")?,
                &token_url,
                &mut state.seen_assertions,
                now,
                registry::ISSUER_KEYS,
            )
            .map_err(|e| OAuthError::new("invalid_grant", e))?;
            // The fixture keys belong to one trusted issuer: a client may
            // not issue grants to itself.
            if verified.issuer != ASSERTION_ISSUER {
                return Err(OAuthError::new(
                    "invalid_grant",
                    format!("the issuer `{}` is not trusted", verified.issuer),
                ));
            }
            if registry::user(&verified.subject).is_none() {
                return Err(OAuthError::new(
                    "invalid_grant",
                    format!("the subject `{}` is unknown", verified.subject),
                ));
            }
            // RFC 7523 section 2.1: no refresh token is needed, as the
            // client can always present a new assertion.
            Issue {
                user: Some(verified.subject),
                scope: granted_scope(client, requested_scope, None)?,
                refresh: false,
                family: None,
            }
        }
        "authorization_code" => {
            let code = required("code")?;
            // Section 4.1.2: a code is used once, whatever happens next.
            let grant = state
                .codes
                .remove(code)
                .filter(|grant| grant.client_id == client.client_id && grant.expires_at > now)
                .ok_or_else(|| {
                    OAuthError::new(
                        "invalid_grant",
                        "the code is invalid, expired, used or another client's",
                    )
                })?;
            // Section 4.1.3: the redirect URI must be the authorization request's.
            if parameters.get("redirect_uri") != Some(&grant.redirect_uri) {
                return Err(OAuthError::new(
                    "invalid_grant",
                    "`redirect_uri` differs from the authorization request's",
                ));
            }
            verify_pkce(&grant.challenge, parameters.get("code_verifier"))?;
            let refresh = grant
                .scope
                .as_deref()
                .is_some_and(|s| s.split(' ').any(|v| v == "offline_access"));
            Issue {
                user: Some(grant.user),
                scope: grant.scope,
                refresh,
                family: None,
            }
        }
        _ => {
            let presented = required("refresh_token")?;
            // Reuse detection (RFC 9700 section 4.14.2): a spent refresh
            // token presented again means two holders, one of them maybe an
            // attacker: the whole authorization is revoked.
            if let Some(family) = state.spent_refresh_tokens.get(presented).copied() {
                state.refresh_token_reuses += 1;
                state.revoke_family(family);
                return Err(OAuthError::new(
                    "invalid_grant",
                    "the refresh token was used before: every token of this authorization is revoked",
                ));
            }
            let grant = match state.refresh_tokens.get(presented) {
                Some(grant) if grant.client_id == client.client_id && grant.expires_at > now => {
                    grant.clone()
                }
                _ => {
                    return Err(OAuthError::new(
                        "invalid_grant",
                        "the refresh token is invalid, expired, revoked or was issued to another client",
                    ));
                }
            };
            let scope = granted_scope(client, requested_scope, grant.scope.as_deref())?;
            // Rotation (RFC 9700 section 4.14.2): the presented token is spent.
            state.refresh_tokens.remove(presented);
            state
                .spent_refresh_tokens
                .insert(presented.to_owned(), grant.family);
            let issue = Issue {
                user: grant.user.clone(),
                scope,
                refresh: true,
                family: Some(grant.family),
            };
            return Ok(issue.token(state, client, now, grant.scope));
        }
    };
    let original_scope = issued.scope.clone();
    Ok(issued.token(state, client, now, original_scope))
}

/// What a grant decided to issue.
struct Issue {
    user: Option<String>,
    scope: Option<String>,
    refresh: bool,
    /// The family of the refresh token exchanged; none for a new
    /// authorization.
    family: Option<u64>,
}

impl Issue {
    /// Stores and returns a token (section 5.1); a refresh token keeps the
    /// original grant's scope, so a narrower refresh can widen again later.
    fn token(
        self,
        state: &mut State,
        client: &RegisteredClient,
        now: u64,
        refresh_scope: Option<String>,
    ) -> Value {
        let access_token = state.new_token();
        let lifetime = state.lifetime_secs;
        let family = self.family.unwrap_or_else(|| state.new_family());
        state.access_tokens.insert(
            access_token.clone(),
            Grant {
                client_id: client.client_id.to_owned(),
                user: self.user.clone(),
                scope: self.scope.clone(),
                expires_at: now + lifetime,
                family,
            },
        );
        let mut token = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
        });
        if let Some(scope) = &self.scope {
            token["scope"] = Value::String(scope.clone());
        }
        if self.refresh && client.may_use("refresh_token") {
            let refresh_token = state.new_token();
            state.refresh_tokens.insert(
                refresh_token.clone(),
                Grant {
                    client_id: client.client_id.to_owned(),
                    user: self.user,
                    scope: refresh_scope,
                    expires_at: u64::MAX,
                    family,
                },
            );
            token["refresh_token"] = Value::String(refresh_token);
        }
        token
    }
}

/// RFC 7636 section 4.6: the verifier must hash (or equal) to the challenge.
fn verify_pkce(
    challenge: &Option<(String, String)>,
    verifier: Option<&String>,
) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::new(
            "invalid_request",
            "`code_verifier` sent, but the authorization request had no challenge",
        )),
        (Some(_), None) => Err(OAuthError::new(
            "invalid_request",
            "the parameter `code_verifier` is missing",
        )),
        (Some((method, challenge)), Some(verifier)) => {
            let computed = if method == "S256" {
                URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
            } else {
                verifier.clone()
            };
            if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                Ok(())
            } else {
                Err(OAuthError::new(
                    "invalid_grant",
                    "the code verifier does not match the challenge",
                ))
            }
        }
    }
}

/// Section 2.3: the client authenticates with exactly one method, the one
/// it was registered for.
fn authenticate(
    state: &mut State,
    headers: &HeaderMap,
    parameters: &HashMap<String, String>,
    now: u64,
) -> Result<&'static RegisteredClient, OAuthError> {
    let body_id = parameters.get("client_id");
    let body_secret = parameters.get("client_secret");
    let assertion = parameters.get("client_assertion");
    let methods_used = [
        headers.contains_key(header::AUTHORIZATION),
        body_secret.is_some(),
        assertion.is_some(),
    ]
    .into_iter()
    .filter(|used| *used)
    .count();
    if methods_used > 1 {
        return Err(OAuthError::new(
            "invalid_request",
            "the client used more than one authentication method",
        ));
    }
    let unknown = || OAuthError::invalid_client("unknown client or wrong credentials");

    let (client, method) = if let Some(value) = headers.get(header::AUTHORIZATION) {
        let (id, secret) = decode_basic(value)?;
        if body_id.is_some_and(|body_id| *body_id != id) {
            return Err(OAuthError::new(
                "invalid_request",
                "`client_id` in the body differs from the Authorization header",
            ));
        }
        let client = registry::client(&id).ok_or_else(unknown)?;
        check_secret(client, &secret)?;
        (client, TokenEndpointAuth::ClientSecretBasic)
    } else if let Some(secret) = body_secret {
        let client = registry::client(body_id.ok_or_else(unknown)?).ok_or_else(unknown)?;
        check_secret(client, secret)?;
        (client, TokenEndpointAuth::ClientSecretPost)
    } else if let Some(jwt) = assertion {
        if parameters.get("client_assertion_type").map(String::as_str) != Some(JWT_CLIENT_ASSERTION)
        {
            return Err(OAuthError::new(
                "invalid_request",
                "`client_assertion_type` must be the JWT bearer type",
            ));
        }
        let token_url = state.token_url.clone();
        // The client's own registered keys check its assertion.
        let claimed = assertion::claimed_issuer(jwt).unwrap_or_default();
        let verified = assertion::verify(
            jwt,
            &token_url,
            &mut state.seen_assertions,
            now,
            registry::client_keys(&claimed),
        )
        .map_err(OAuthError::invalid_client)?;
        // RFC 7523 section 3: for client authentication, iss and sub are the client.
        if verified.issuer != verified.subject || body_id.is_some_and(|id| *id != verified.subject)
        {
            return Err(OAuthError::invalid_client(
                "the assertion's `iss` and `sub` must be the client id",
            ));
        }
        let client = registry::client(&verified.subject).ok_or_else(unknown)?;
        (client, TokenEndpointAuth::PrivateKeyJwt)
    } else if let Some(id) = body_id {
        (
            registry::client(id).ok_or_else(unknown)?,
            TokenEndpointAuth::None,
        )
    } else {
        return Err(OAuthError::invalid_client(
            "the client did not identify itself",
        ));
    };
    if client.auth != method {
        return Err(OAuthError::invalid_client(format!(
            "the client is registered for {:?}, not {method:?}",
            client.auth
        )));
    }
    Ok(client)
}

/// Compares in constant time, so the response time says nothing about the secret.
fn check_secret(client: &RegisteredClient, secret: &str) -> Result<(), OAuthError> {
    let matches = !client.client_secret.is_empty()
        && bool::from(client.client_secret.as_bytes().ct_eq(secret.as_bytes()));
    if matches {
        Ok(())
    } else {
        Err(OAuthError::invalid_client(
            "unknown client or wrong credentials",
        ))
    }
}

/// RFC 7617 with the RFC 6749 section 2.3.1 rule: the user-id and password
/// are each `application/x-www-form-urlencoded` before Basic encoding.
fn decode_basic(value: &HeaderValue) -> Result<(String, String), OAuthError> {
    let malformed =
        || OAuthError::invalid_client("the Authorization header is not valid Basic credentials");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "the Authorization scheme must be Basic",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok((
        form_decode(id).ok_or_else(malformed)?,
        form_decode(secret).ok_or_else(malformed)?,
    ))
}

/// Decodes one form-urlencoded value: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// The scope to grant: the requested one if the client (and, on refresh,
/// the original grant) allows every value in it.
pub(super) fn granted_scope(
    client: &RegisteredClient,
    requested: Option<&str>,
    original: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(original.map(str::to_owned));
    };
    for value in requested.split(' ') {
        let allowed_by_client = client.scopes.contains(&value);
        let allowed_by_grant =
            original.is_none_or(|original| original.split(' ').any(|o| o == value));
        if !allowed_by_client || !allowed_by_grant {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("the scope `{value}` is not allowed"),
            ));
        }
    }
    Ok(Some(requested.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::TEST_CLIENTS;

    #[test]
    fn basic_credentials_decode_plus_as_space_and_percent_escapes() {
        let header =
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("a+b%2Bc:d%20e%3Af")))
                .expect("header");
        let (id, secret) = decode_basic(&header)
            .map_err(|e| e.description)
            .expect("decodes");
        assert_eq!(id, "a b+c");
        assert_eq!(secret, "d e:f");
    }

    #[test]
    fn scope_beyond_the_client_or_the_grant_is_refused() {
        let client = &TEST_CLIENTS[0];
        assert_eq!(
            granted_scope(client, Some("read"), None)
                .ok()
                .flatten()
                .as_deref(),
            Some("read")
        );
        assert!(granted_scope(client, Some("admin"), None).is_err());
        assert!(granted_scope(client, Some("write"), Some("read")).is_err());
        assert_eq!(
            granted_scope(client, None, Some("read"))
                .ok()
                .flatten()
                .as_deref(),
            Some("read")
        );
    }

    #[test]
    fn pkce_verifiers_are_checked_against_the_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned();
        // RFC 7636 appendix B's example.
        let challenge = Some((
            "S256".to_owned(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        ));
        assert!(verify_pkce(&challenge, Some(&verifier)).is_ok());
        assert!(verify_pkce(&challenge, Some(&"x".repeat(43))).is_err());
        assert!(verify_pkce(&challenge, None).is_err());
        assert!(verify_pkce(&None, Some(&verifier)).is_err());
    }
}
