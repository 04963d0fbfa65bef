//! An embedded OAuth 2.0 authorization server for the demo and the tests.
//!
//! Written from RFC 6749 and RFC 6750, independently of the connector, and
//! strict where the RFCs allow it: a client must authenticate exactly the
//! way it was registered, parameters may not repeat, and every refusal is a
//! section 5.2 error. It listens on loopback only, over plain HTTP or over
//! HTTPS with a CA and certificate generated at start-up.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use tokio_rustls::TlsAcceptor;

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "oauth-harness";
/// The largest request body the server reads.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How a registered client must authenticate (RFC 7591 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the RFC 6749 section 2.3.1 encoding.
    ClientSecretBasic,
    /// `client_id` and `client_secret` form parameters.
    ClientSecretPost,
}

/// A client registered with the embedded server.
#[derive(Clone)]
pub struct RegisteredClient {
    /// The client identifier.
    pub client_id: &'static str,
    /// The client secret. These are published test fixtures.
    pub client_secret: &'static str,
    /// The only authentication method the server accepts from this client.
    pub auth: TokenEndpointAuth,
    /// The scopes the client may request.
    pub scopes: &'static [&'static str],
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// The test clients every embedded server knows.
pub const TEST_CLIENTS: &[RegisteredClient] = &[
    RegisteredClient {
        client_id: "demo-basic",
        client_secret: "demo-basic-secret",
        auth: TokenEndpointAuth::ClientSecretBasic,
        scopes: &["read", "write"],
    },
    RegisteredClient {
        client_id: "demo-post",
        client_secret: "demo-post-secret",
        auth: TokenEndpointAuth::ClientSecretPost,
        scopes: &["read", "write"],
    },
    // Every character RFC 6749 section 2.3.1's encoding must carry.
    RegisteredClient {
        client_id: "tricky:client %+/é",
        client_secret: "p@ss:w%rd +/ü 鍵",
        auth: TokenEndpointAuth::ClientSecretBasic,
        scopes: &["read"],
    },
];

/// Where and how the server listens.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// The loopback port; 0 picks a free one.
    pub port: u16,
    /// Serve HTTPS with a certificate generated at start-up.
    pub tls: bool,
    /// The lifetime of issued access tokens, in seconds.
    pub token_lifetime_secs: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            port: 0,
            tls: false,
            token_lifetime_secs: 3600,
        }
    }
}

/// A token request as it arrived, secrets removed, for tests to inspect.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// Header names and values; the `Authorization` value is reduced to its scheme.
    pub headers: Vec<(String, String)>,
    /// Form parameters; secret-bearing values are replaced with `[redacted]`.
    pub parameters: Vec<(String, String)>,
    /// The client the server authenticated, if any.
    pub authenticated_client: Option<String>,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    scope: Option<String>,
    expires_at: u64,
}

#[derive(Default)]
struct State {
    lifetime_secs: u64,
    access_tokens: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, Grant>,
    received: Vec<ReceivedRequest>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain maps behind; keep serving.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running embedded authorization server; it stops when dropped.
pub struct AuthorizationServer {
    base_url: String,
    ca_pem: Option<String>,
    state: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl AuthorizationServer {
    /// Starts listening on loopback.
    pub fn start(options: ServerOptions) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))
            .with_context(|| format!("failed to listen on 127.0.0.1:{}", options.port))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let (acceptor, ca_pem) = if options.tls {
            let (acceptor, ca_pem) = tls_acceptor()?;
            (Some(acceptor), Some(ca_pem))
        } else {
            (None, None)
        };
        let scheme = if options.tls { "https" } else { "http" };
        let state: Shared = Arc::new(Mutex::new(State {
            lifetime_secs: options.token_lifetime_secs,
            ..State::default()
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("authorization-server")
            .enable_io()
            .enable_time()
            .build()
            .context("failed to start the server's runtime")?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, acceptor, state.clone()));
        Ok(Self {
            base_url: format!("{scheme}://{address}"),
            ca_pem,
            state,
            runtime: Some(runtime),
        })
    }

    /// The server's base URL, such as `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// The bearer-protected resource.
    pub fn resource_url(&self) -> String {
        format!("{}/resource", self.base_url)
    }

    /// The PEM of the CA that signed the HTTPS certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Issues a refresh token to a registered client, as an earlier
    /// authorization would have, so refresh flows can start from it.
    pub fn issue_refresh_token(&self, client_id: &str, scope: Option<&str>) -> String {
        let token = random_token();
        lock(&self.state).refresh_tokens.insert(
            token.clone(),
            Grant {
                client_id: client_id.to_owned(),
                scope: scope.map(str::to_owned),
                expires_at: u64::MAX,
            },
        );
        token
    }

    /// The token requests received so far, oldest first.
    pub fn received_requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).received.clone()
    }

    /// Whether an access token is currently valid.
    pub fn is_active(&self, access_token: &str) -> bool {
        lock(&self.state)
            .access_tokens
            .get(access_token)
            .is_some_and(|grant| grant.expires_at > unix_now())
    }
}

impl Drop for AuthorizationServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A CA and a leaf certificate for `localhost`, `127.0.0.1` and `::1`.
fn tls_acceptor() -> Result<(TlsAcceptor, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    let ca_key = KeyPair::generate().context("failed to generate the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "oauth-harness test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().context("failed to generate the server key")?;
    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "oauth-harness authorization server");
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
    .context("failed to configure TLS")?;
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: Option<TlsAcceptor>,
    state: Shared,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            // A client that hangs up or fails the handshake ends only its own connection.
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

async fn handle(state: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    match path.as_str() {
        "/token" => token_endpoint(state, request).await,
        "/resource" => resource_endpoint(state, request.headers()),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

/// A section 5.2 error response.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            challenge: false,
        }
    }

    /// `invalid_client` with 401 and a Basic challenge, as section 5.2
    /// requires when the client tried the Authorization header.
    fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
            challenge: true,
        }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
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

async fn token_endpoint(state: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        let mut response =
            OAuthError::new("invalid_request", "the token endpoint accepts POST only")
                .into_response();
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return OAuthError::new("invalid_request", "the request body is too large or broken")
                .into_response();
        }
    };
    let mut received = ReceivedRequest {
        headers: received_headers(&parts.headers),
        parameters: Vec::new(),
        authenticated_client: None,
    };
    let result = token_grant(state, &parts.headers, &body, &mut received);
    lock(state).received.push(received);
    match result {
        Ok(token) => {
            let mut response = json_response(StatusCode::OK, &token);
            // Section 5.1: token responses must not be cached.
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => error.into_response(),
    }
}

fn token_grant(
    state: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    received: &mut ReceivedRequest,
) -> Result<Value, OAuthError> {
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
        let shown = if matches!(
            name.as_ref(),
            "client_secret" | "refresh_token" | "password" | "code" | "assertion"
        ) {
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

    let client = authenticate(headers, &parameters)?;
    received.authenticated_client = Some(client.client_id.to_owned());

    let grant_type = parameters.get("grant_type").ok_or_else(|| {
        OAuthError::new("invalid_request", "the parameter `grant_type` is missing")
    })?;
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

    let mut state = lock(state);
    let now = unix_now();
    let (scope, refresh_token) = match grant_type.as_str() {
        // Section 4.4.3: no refresh token for client credentials.
        "client_credentials" => (granted_scope(client, requested_scope, None)?, None),
        "refresh_token" => {
            let presented = parameters.get("refresh_token").ok_or_else(|| {
                OAuthError::new(
                    "invalid_request",
                    "the parameter `refresh_token` is missing",
                )
            })?;
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
            let rotated = random_token();
            state.refresh_tokens.insert(rotated.clone(), grant);
            (scope, Some(rotated))
        }
        "authorization_code" | "password" | "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            return Err(OAuthError::new(
                "unauthorized_client",
                format!("the client may not use the grant type `{grant_type}`"),
            ));
        }
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("the grant type `{other}` is not supported"),
            ));
        }
    };

    let access_token = random_token();
    let lifetime = state.lifetime_secs;
    state.access_tokens.insert(
        access_token.clone(),
        Grant {
            client_id: client.client_id.to_owned(),
            scope: scope.clone(),
            expires_at: now + lifetime,
        },
    );
    let mut token = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
    });
    if let Some(scope) = scope {
        token["scope"] = Value::String(scope);
    }
    if let Some(refresh_token) = refresh_token {
        token["refresh_token"] = Value::String(refresh_token);
    }
    Ok(token)
}

/// Section 2.3: the client authenticates with exactly one method, the one
/// it was registered for.
fn authenticate(
    headers: &HeaderMap,
    parameters: &HashMap<String, String>,
) -> Result<&'static RegisteredClient, OAuthError> {
    let body_id = parameters.get("client_id");
    let body_secret = parameters.get("client_secret");
    let (client_id, secret, method) = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            if body_secret.is_some() {
                return Err(OAuthError::new(
                    "invalid_request",
                    "the client authenticated with both the Authorization header and the body",
                ));
            }
            let (id, secret) = decode_basic(value)?;
            if body_id.is_some_and(|body_id| *body_id != id) {
                return Err(OAuthError::new(
                    "invalid_request",
                    "`client_id` in the body differs from the Authorization header",
                ));
            }
            (id, secret, TokenEndpointAuth::ClientSecretBasic)
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => (
                id.clone(),
                secret.clone(),
                TokenEndpointAuth::ClientSecretPost,
            ),
            _ => {
                return Err(OAuthError::invalid_client(
                    "the client did not authenticate",
                ));
            }
        },
    };
    let client = TEST_CLIENTS
        .iter()
        .find(|client| client.client_id == client_id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client or wrong secret"))?;
    // Constant time, so the response time says nothing about the secret.
    let secret_matches: bool = client
        .client_secret
        .as_bytes()
        .ct_eq(secret.as_bytes())
        .into();
    if !secret_matches {
        return Err(OAuthError::invalid_client("unknown client or wrong secret"));
    }
    if client.auth != method {
        return Err(OAuthError::invalid_client(format!(
            "the client is registered for {:?}, not {method:?}",
            client.auth
        )));
    }
    Ok(client)
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
fn granted_scope(
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

/// RFC 6750 section 3: a bearer-protected resource and its challenges.
fn resource_endpoint(state: &Shared, headers: &HeaderMap) -> Response<Full<Bytes>> {
    let challenge = |error: Option<(&str, &str)>| {
        let mut value = format!("Bearer realm=\"{REALM}\"");
        if let Some((error, description)) = error {
            value.push_str(&format!(
                ", error=\"{error}\", error_description=\"{description}\""
            ));
        }
        let mut response =
            json_response(StatusCode::UNAUTHORIZED, &json!({"error": "unauthorized"}));
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = presented else {
        return challenge(None);
    };
    let grant = lock(state).access_tokens.get(&token).cloned();
    match grant {
        Some(grant) if grant.expires_at > unix_now() => json_response(
            StatusCode::OK,
            &json!({"client_id": grant.client_id, "scope": grant.scope}),
        ),
        Some(_) => challenge(Some(("invalid_token", "the access token expired"))),
        None => challenge(Some(("invalid_token", "the access token is unknown"))),
    }
}

fn received_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            let shown = if name == header::AUTHORIZATION {
                format!("{} [redacted]", value.split(' ').next().unwrap_or_default())
            } else {
                value.into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 32 random bytes, base64url: an opaque token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The operating system's generator does not fail on supported platforms;
    // a zeroed token would still be unique enough for a test server.
    let _ = getrandom::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
