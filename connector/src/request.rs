//! Token requests as plain data (RFC 6749 sections 4.4.2 and 6).

use std::fmt;

use crate::client_auth;
use crate::config::{Assertion, ClientAuth, Config, FieldError, Grant, Pkce};
use crate::error::Failure;
use crate::jwt;
use crate::secret::Secret;

/// An HTTP request for the host to send exactly as given.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, such as `POST`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The header fields in sending order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Credentials travel in the `Authorization` header and the body, so Debug
/// shows neither: only the header names and the body's length.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &header_names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What the host passes to every request: the time and fresh random bytes.
#[derive(Clone, Default)]
pub struct Context {
    /// The current time, unix seconds.
    pub now: u64,
    /// Fresh random bytes for values that must not repeat.
    pub nonce: Vec<u8>,
}

/// The `grant_type` value of RFC 7523's JWT bearer grant.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `client_assertion_type` value of RFC 7523's client authentication.
pub const JWT_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The nonce seeds PKCE verifiers, so Debug shows only its length.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("nonce_len", &self.nonce.len())
            .finish()
    }
}

/// The token request for the configured grant.
pub fn token_request(config: &Config, cx: &Context) -> Result<Request, Failure> {
    match &config.grant {
        Grant::ClientCredentials => build(
            config,
            cx,
            vec![("grant_type", "client_credentials".into())],
        ),
        Grant::RefreshToken { refresh_token } => refresh_request(config, refresh_token, cx),
        Grant::Password { username, password } => build(
            config,
            cx,
            vec![
                ("grant_type", "password".into()),
                ("username", username.clone()),
                ("password", password.expose().to_owned()),
            ],
        ),
        Grant::JwtBearer(assertion) => {
            let token_url = config
                .token_endpoint()
                .map_err(|e| Failure::InvalidConfig(vec![e]))?;
            let jwt = sign_assertion(
                assertion,
                config.client.client_id.as_deref(),
                token_url,
                cx,
                "grant",
            )?;
            build(
                config,
                cx,
                vec![("grant_type", JWT_BEARER_GRANT.into()), ("assertion", jwt)],
            )
        }
        Grant::AuthorizationCode(_) | Grant::Implicit(_) => Err(Failure::Other(format!(
            "grant_type `{}` needs a user login in the browser: build the authorization URL, read the redirect{}",
            config.grant.name(),
            if matches!(config.grant, Grant::AuthorizationCode(_)) {
                ", then exchange the code"
            } else {
                ""
            }
        ))),
    }
}

/// A `refresh_token` grant request for this refresh token.
pub fn refresh_request(
    config: &Config,
    refresh_token: &Secret,
    cx: &Context,
) -> Result<Request, Failure> {
    build(
        config,
        cx,
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.expose().to_owned()),
        ],
    )
}

/// The authorization code exchange (RFC 6749 section 4.1.3, RFC 7636
/// section 4.5).
pub fn code_exchange_request(
    config: &Config,
    code: &str,
    code_verifier: Option<&str>,
    cx: &Context,
) -> Result<Request, Failure> {
    let Grant::AuthorizationCode(login) = &config.grant else {
        return Err(Failure::Other(format!(
            "grant_type `{}` has no authorization code to exchange",
            config.grant.name()
        )));
    };
    let mut parameters = vec![
        ("grant_type", String::from("authorization_code")),
        ("code", code.to_owned()),
        ("redirect_uri", login.redirect_uri.to_string()),
    ];
    match (login.pkce, code_verifier) {
        (Pkce::Disabled, _) => {}
        (_, Some(verifier)) => parameters.push(("code_verifier", verifier.to_owned())),
        (_, None) => {
            return Err(Failure::Other(String::from(
                "the code exchange needs the PKCE code verifier that the authorization URL was built with",
            )));
        }
    }
    build(config, cx, parameters)
}

/// Assembles a token endpoint request: the grant's parameters, then the
/// optional request parameters, the client credentials and `extra_body`.
fn build(
    config: &Config,
    cx: &Context,
    grant_parameters: Vec<(&str, String)>,
) -> Result<Request, Failure> {
    let token_url = config
        .token_endpoint()
        .map_err(|e| Failure::InvalidConfig(vec![e]))?;
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(&grant_parameters);
    // The scope of a code exchange was fixed by the authorization request.
    let sends_scope = grant_parameters
        .first()
        .is_none_or(|(_, grant_type)| grant_type != "authorization_code");
    if let Some(scope) = config.scope.as_ref().filter(|_| sends_scope) {
        form.append_pair("scope", scope);
    }
    if let Some(audience) = &config.audience {
        form.append_pair("audience", audience);
    }
    if let Some(resource) = &config.resource {
        form.append_pair("resource", resource.as_str());
    }
    authenticated(config, cx, token_url, form, true)
}

/// A form `POST` to an endpoint of the authorization server (the token,
/// introspection or revocation endpoint) with the client authenticated as
/// at the token endpoint and `extra_headers` added; `extra_body`, which
/// belongs to token requests, only when `with_extra_body`.
pub(crate) fn authenticated(
    config: &Config,
    cx: &Context,
    endpoint: &url::Url,
    mut form: form_urlencoded::Serializer<'_, String>,
    with_extra_body: bool,
) -> Result<Request, Failure> {
    // A client assertion's audience is the token endpoint, whichever
    // endpoint receives it (RFC 7523 section 3).
    let token_url = config
        .token_endpoint()
        .map_err(|e| Failure::InvalidConfig(vec![e]))?;
    let mut headers = vec![
        (
            String::from("Content-Type"),
            String::from("application/x-www-form-urlencoded"),
        ),
        (String::from("Accept"), String::from("application/json")),
    ];
    let client_id = config.client.client_id.as_deref();
    match &config.client.auth {
        ClientAuth::Basic(secret) => headers.push((
            String::from("Authorization"),
            client_auth::basic_authorization(client_id.unwrap_or_default(), secret.expose()),
        )),
        ClientAuth::Body(secret) => {
            form.append_pair("client_id", client_id.unwrap_or_default());
            form.append_pair("client_secret", secret.expose());
        }
        ClientAuth::None => {
            if let Some(client_id) = client_id {
                form.append_pair("client_id", client_id);
            }
        }
        ClientAuth::PrivateKeyJwt(assertion) => {
            let jwt = sign_assertion(assertion, client_id, token_url, cx, "client")?;
            if let Some(client_id) = client_id {
                form.append_pair("client_id", client_id);
            }
            form.append_pair("client_assertion_type", JWT_CLIENT_ASSERTION);
            form.append_pair("client_assertion", &jwt);
        }
    }
    if with_extra_body {
        form.extend_pairs(&config.extra_body.0);
    }

    for (name, value) in &config.extra_headers.0 {
        // A configured Accept replaces the default rather than doubling it.
        headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }

    Ok(Request {
        method: String::from("POST"),
        url: endpoint.to_string(),
        headers,
        body: form.finish().into_bytes(),
    })
}

/// Signs an assertion (RFC 7523 section 3): `iss` and `sub` default to the
/// client id, `aud` to the token endpoint; `iat`, `exp` and `jti` come from
/// the host's time and nonce.
fn sign_assertion(
    assertion: &Assertion,
    client_id: Option<&str>,
    token_url: &url::Url,
    cx: &Context,
    purpose: &str,
) -> Result<String, Failure> {
    let prefix = if purpose == "grant" {
        "jwt"
    } else {
        "client_assertion"
    };
    let missing = |field: &str| {
        Failure::InvalidConfig(vec![FieldError {
            field: format!("{prefix}.{field}"),
            message: String::from("required when there is no client_id to default to"),
            fix: format!("fill in `{prefix}.{field}` or `client_id`"),
        }])
    };
    let issuer = assertion
        .issuer
        .as_deref()
        .or(client_id)
        .ok_or_else(|| missing("issuer"))?;
    let subject = assertion
        .subject
        .as_deref()
        .or(client_id)
        .ok_or_else(|| missing("subject"))?;
    let audience = assertion
        .audience
        .clone()
        .unwrap_or_else(|| token_url.to_string());
    let mut payload = assertion.claims.clone();
    payload.insert("iss".into(), issuer.into());
    payload.insert("sub".into(), subject.into());
    payload.insert("aud".into(), audience.into());
    payload.insert("iat".into(), cx.now.into());
    payload.insert(
        "exp".into(),
        cx.now.saturating_add(assertion.lifetime_secs).into(),
    );
    payload.insert(
        "jti".into(),
        jwt::jti(&cx.nonce, purpose).map_err(Failure::Other)?.into(),
    );
    assertion
        .key
        .sign(&assertion.header, &payload)
        .map_err(Failure::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::{Value, json};

    const RSA_PRIVATE: &str = include_str!("../testdata/rsa-pkcs8.pem");
    const RSA_PUBLIC: &str = include_str!("../testdata/rsa-public.pem");
    const EC_PRIVATE: &str = include_str!("../testdata/ec-p256-sec1.pem");
    const EC_PUBLIC: &str = include_str!("../testdata/ec-p256-public.pem");

    fn config(value: Value) -> Config {
        Config::parse(&value.to_string()).expect("valid configuration")
    }

    fn cx() -> Context {
        Context {
            now: 1_700_000_000,
            nonce: (0u8..32).collect(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn form(request: &Request) -> Vec<(String, String)> {
        form_urlencoded::parse(&request.body).into_owned().collect()
    }

    fn parameter(request: &Request, name: &str) -> Option<String> {
        form(request)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Verifies a JWT with the public key and returns its claims.
    fn verified_claims(jwt: &str, algorithm: Algorithm, public_pem: &str, audience: &str) -> Value {
        let key = match algorithm {
            Algorithm::ES256 => DecodingKey::from_ec_pem(public_pem.as_bytes()),
            _ => DecodingKey::from_rsa_pem(public_pem.as_bytes()),
        }
        .expect("public key");
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[audience]);
        // The test's clock is fixed in 2023; check `exp` against it by hand.
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .expect("a valid signature")
            .claims
    }

    #[test]
    fn client_credentials_with_basic_authentication() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/oauth2/token?tenant=a",
            "client_id": "app",
            "client_secret": "s3cret",
            "scope": "read write",
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(
            request,
            Request {
                method: "POST".into(),
                url: "https://as.example.com/oauth2/token?tenant=a".into(),
                headers: headers(&[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Accept", "application/json"),
                    ("Authorization", "Basic YXBwOnMzY3JldA=="),
                ]),
                body: b"grant_type=client_credentials&scope=read+write".to_vec(),
            }
        );
    }

    #[test]
    fn client_credentials_with_body_authentication_and_every_option() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "http://127.0.0.1:8080/token",
            "client_id": "app id",
            "client_secret": "s&c=r+t",
            "client_auth": "body",
            "audience": "https://api.example.com",
            "resource": "https://api.example.com/v1",
            "extra_body": {"tenant": "acme corp"},
            "extra_headers": {"X-Request-Source": "engine", "accept": "application/json;charset=utf-8"},
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(
            request,
            Request {
                method: "POST".into(),
                url: "http://127.0.0.1:8080/token".into(),
                headers: headers(&[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("X-Request-Source", "engine"),
                    ("accept", "application/json;charset=utf-8"),
                ]),
                body: concat!(
                    "grant_type=client_credentials",
                    "&audience=https%3A%2F%2Fapi.example.com",
                    "&resource=https%3A%2F%2Fapi.example.com%2Fv1",
                    "&client_id=app+id&client_secret=s%26c%3Dr%2Bt",
                    "&tenant=acme+corp",
                )
                .as_bytes()
                .to_vec(),
            }
        );
        assert_eq!(request.header("authorization"), None);
    }

    #[test]
    fn refresh_request_sends_the_given_token() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "s3cret",
            "scope": "read",
        }));
        let request = refresh_request(&config, &Secret::new("rt/1+2"), &cx()).expect("a request");
        assert_eq!(
            String::from_utf8(request.body).expect("utf-8"),
            "grant_type=refresh_token&refresh_token=rt%2F1%2B2&scope=read"
        );
    }

    #[test]
    fn refresh_token_grant_uses_the_configured_token() {
        let config = config(json!({
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "s3cret",
            "refresh_token": "rt-9",
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(
            request.body,
            b"grant_type=refresh_token&refresh_token=rt-9".to_vec()
        );
    }

    #[test]
    fn password_grant_sends_the_users_credentials() {
        let config = config(json!({
            "grant_type": "password",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "s3cret",
            "username": "alice@example.com",
            "password": "p@ss word",
            "extra_body": {"tenant": "t1"},
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(
            String::from_utf8(request.body).expect("utf-8"),
            "grant_type=password&username=alice%40example.com&password=p%40ss+word&tenant=t1"
        );
    }

    #[test]
    fn public_clients_send_only_their_id() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "public-app",
            "client_auth": "none",
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(request.header("authorization"), None);
        assert_eq!(
            request.body,
            b"grant_type=client_credentials&client_id=public-app".to_vec()
        );
    }

    #[test]
    fn jwt_bearer_signs_an_rfc_7523_assertion() {
        let config = config(json!({
            "grant_type": "jwt_bearer",
            "token_url": "https://as.example.com/token",
            "client_auth": "none",
            "scope": "read",
            "jwt": {
                "header": {"alg": "RS256", "typ": "JWT", "kid": "k1", "x5t": "thumb"},
                "issuer": "svc@example.com",
                "subject": "alice",
                "lifetime_secs": 120,
                "claims": {"scope": "read", "tenant": 7},
                "private_key": RSA_PRIVATE,
            },
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(
            parameter(&request, "grant_type").as_deref(),
            Some(JWT_BEARER_GRANT)
        );
        assert_eq!(parameter(&request, "scope").as_deref(), Some("read"));
        let assertion = parameter(&request, "assertion").expect("an assertion");

        let header = jsonwebtoken::decode_header(&assertion).expect("a header");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.x5t.as_deref(), Some("thumb"));
        let claims = verified_claims(
            &assertion,
            Algorithm::RS256,
            RSA_PUBLIC,
            "https://as.example.com/token",
        );
        assert_eq!(claims["iss"], "svc@example.com");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["aud"], "https://as.example.com/token");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_120);
        assert_eq!(claims["tenant"], 7);
        assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16));
    }

    #[test]
    fn private_key_jwt_authenticates_the_client_with_a_signed_assertion() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_auth": "private_key_jwt",
            "client_assertion": {"header": {"alg": "ES256", "kid": "ec1"}, "private_key": EC_PRIVATE},
        }));
        let request = token_request(&config, &cx()).expect("a request");
        assert_eq!(request.header("authorization"), None);
        assert_eq!(parameter(&request, "client_id").as_deref(), Some("app"));
        assert_eq!(
            parameter(&request, "client_assertion_type").as_deref(),
            Some(JWT_CLIENT_ASSERTION)
        );
        let assertion = parameter(&request, "client_assertion").expect("an assertion");
        let claims = verified_claims(
            &assertion,
            Algorithm::ES256,
            EC_PUBLIC,
            "https://as.example.com/token",
        );
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some("app"), Some("app"))
        );
        assert_eq!(
            claims["exp"], 1_700_000_300,
            "the default lifetime is five minutes"
        );
    }

    #[test]
    fn two_assertions_in_one_request_have_different_identifiers() {
        let config = config(json!({
            "grant_type": "jwt_bearer",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_auth": "private_key_jwt",
            "client_assertion": {"header": {"alg": "RS256"}, "private_key": RSA_PRIVATE},
            "jwt": {"header": {"alg": "RS256"}, "subject": "alice", "private_key": RSA_PRIVATE},
        }));
        let request = token_request(&config, &cx()).expect("a request");
        let jti = |name: &str| {
            let jwt = parameter(&request, name).expect("an assertion");
            verified_claims(
                &jwt,
                Algorithm::RS256,
                RSA_PUBLIC,
                "https://as.example.com/token",
            )["jti"]
                .clone()
        };
        assert_ne!(jti("assertion"), jti("client_assertion"));
    }

    #[test]
    fn an_assertion_without_enough_entropy_is_refused() {
        let config = config(json!({
            "grant_type": "jwt_bearer",
            "token_url": "https://as.example.com/token",
            "client_auth": "none",
            "jwt": {"header": {"alg": "RS256"}, "issuer": "i", "subject": "s", "private_key": RSA_PRIVATE},
        }));
        let cx = Context {
            now: 1,
            nonce: vec![],
        };
        assert!(
            matches!(token_request(&config, &cx), Err(Failure::Other(m)) if m.contains("random bytes"))
        );
    }

    #[test]
    fn the_code_exchange_sends_code_redirect_uri_and_verifier() {
        let config = config(json!({
            "grant_type": "authorization_code",
            "token_url": "https://as.example.com/token",
            "authorization_url": "https://as.example.com/authorize",
            "redirect_uri": "http://127.0.0.1:53682/callback",
            "client_id": "app",
            "client_auth": "none",
            "scope": "read",
        }));
        let verifier = "v".repeat(43);
        let request =
            code_exchange_request(&config, "c0de", Some(&verifier), &cx()).expect("a request");
        assert_eq!(
            form(&request),
            [
                ("grant_type", "authorization_code"),
                ("code", "c0de"),
                ("redirect_uri", "http://127.0.0.1:53682/callback"),
                ("code_verifier", verifier.as_str()),
                ("client_id", "app"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert!(
            code_exchange_request(&config, "c0de", None, &cx()).is_err(),
            "PKCE needs the verifier"
        );
        assert!(
            matches!(token_request(&config, &cx()), Err(Failure::Other(m)) if m.contains("browser"))
        );
    }

    #[test]
    fn debug_output_shows_no_credentials() {
        for auth in ["body", "basic"] {
            let config = config(json!({
                "grant_type": "password",
                "token_url": "https://as.example.com/token",
                "client_id": "app",
                "client_secret": "topsecretvalue",
                "client_auth": auth,
                "username": "alice",
                "password": "userpasswordvalue",
            }));
            let request = token_request(&config, &cx()).expect("a request");
            let shown = format!("{request:?} {config:?}");
            let header = client_auth::basic_authorization("app", "topsecretvalue");
            for secret in ["topsecretvalue", "userpasswordvalue", &header[6..]] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
}
