//! An embedded OAuth 2.0 authorization server for the demo and the tests.
//!
//! Written from RFC 6749, RFC 6750, RFC 7523, RFC 7636 and RFC 8252,
//! independently of the connector, and strict where the RFCs allow it: a
//! client must authenticate exactly the way it was registered, parameters
//! may not repeat, assertions and PKCE verifiers are checked for real, and
//! every refusal is a section 5.2 error. It listens on loopback only, over
//! plain HTTP or over HTTPS with a CA and certificate generated at start-up.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use token::OAuthError;

mod assertion;
mod authorize;
mod lifecycle;
pub mod registry;
mod token;

pub use registry::{RegisteredClient, TEST_CLIENTS, TokenEndpointAuth};

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "oauth-harness";
/// The largest request body the server reads.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Where and how the server listens.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// The loopback port; 0 picks a free one.
    pub port: u16,
    /// Serve HTTPS with a certificate generated at start-up.
    pub tls: bool,
    /// The lifetime of issued access tokens, in seconds.
    pub token_lifetime_secs: u64,
    /// How long the token endpoint waits before it answers, in
    /// milliseconds: a slow server, for tests of callers that wait.
    pub token_delay_ms: u64,
    /// What every issued access and refresh token starts with, so that a
    /// test can look for tokens in output it must not appear in.
    pub token_prefix: &'static str,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            port: 0,
            tls: false,
            token_lifetime_secs: 3600,
            token_delay_ms: 0,
            token_prefix: "",
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

/// What an access or refresh token stands for.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    user: Option<String>,
    scope: Option<String>,
    expires_at: u64,
    /// The authorization this token descends from: every refresh token
    /// rotated out of one, and every access token issued with them, share
    /// it, so a reused refresh token revokes them all.
    family: u64,
}

/// What an authorization code stands for (section 4.1.2).
#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    user: String,
    scope: Option<String>,
    /// The PKCE method and challenge.
    challenge: Option<(String, String)>,
    expires_at: u64,
}

#[derive(Default)]
struct State {
    token_url: String,
    /// The issuer identifier, which authorization responses carry as
    /// `iss` (RFC 9207).
    issuer: String,
    /// The `Host` values the server answers to: its loopback address and
    /// port, by number or as `localhost`.
    own_authorities: Vec<String>,
    lifetime_secs: u64,
    access_tokens: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, Grant>,
    /// Refresh tokens already exchanged, with their family: presenting one
    /// again is a reuse (RFC 9700 section 4.14.2).
    spent_refresh_tokens: HashMap<String, u64>,
    /// The last family handed out.
    families: u64,
    /// How many reuses were detected (and families revoked).
    refresh_token_reuses: u64,
    codes: HashMap<String, CodeGrant>,
    /// Assertion `jti`s seen, with their expiry, against replay.
    seen_assertions: HashMap<String, u64>,
    received: Vec<ReceivedRequest>,
    token_delay_ms: u64,
    token_prefix: &'static str,
    /// Introspection and revocation requests received, secrets removed.
    lifecycle_received: Vec<ReceivedRequest>,
    /// Requests to the protected resources, by path.
    resource_hits: HashMap<String, u64>,
}

impl State {
    /// A new access or refresh token.
    fn new_token(&self) -> String {
        format!("{}{}", self.token_prefix, random_token())
    }

    /// A family for a new authorization.
    fn new_family(&mut self) -> u64 {
        self.families += 1;
        self.families
    }

    /// Forgets what has expired, and keeps every table within a bound, so a
    /// server left running (or hammered) does not grow without end.
    fn tidy(&mut self, now: u64) {
        self.access_tokens.retain(|_, grant| grant.expires_at > now);
        self.codes.retain(|_, code| code.expires_at > now);
        // Kept through the second it lapses, as the verifier still accepts it.
        self.seen_assertions.retain(|_, expires| *expires >= now);
        for table_len in [
            self.access_tokens.len(),
            self.refresh_tokens.len(),
            self.codes.len(),
            self.spent_refresh_tokens.len(),
            self.seen_assertions.len(),
        ] {
            if table_len > MAX_TABLE_ENTRIES {
                // Far past any test's needs: an arbitrary half goes.
                let keep = MAX_TABLE_ENTRIES / 2;
                shrink(&mut self.access_tokens, keep);
                shrink(&mut self.refresh_tokens, keep);
                shrink(&mut self.codes, keep);
                shrink(&mut self.spent_refresh_tokens, keep);
                shrink(&mut self.seen_assertions, keep);
            }
        }
        for log in [&mut self.received, &mut self.lifecycle_received] {
            if log.len() > MAX_LOGGED_REQUESTS {
                let excess = log.len() - MAX_LOGGED_REQUESTS;
                log.drain(..excess);
            }
        }
    }

    /// How many tokens and codes the server holds now.
    fn entries(&self) -> usize {
        self.access_tokens.len() + self.refresh_tokens.len() + self.codes.len()
    }

    /// Revokes every token of a family, as reuse detection does.
    fn revoke_family(&mut self, family: u64) {
        self.access_tokens.retain(|_, grant| grant.family != family);
        self.refresh_tokens
            .retain(|_, grant| grant.family != family);
    }
}

/// The most entries a table of the server holds.
const MAX_TABLE_ENTRIES: usize = 100_000;

/// The most requests the server remembers for tests to inspect.
const MAX_LOGGED_REQUESTS: usize = 10_000;

/// The most distinct resource paths counted.
const MAX_COUNTED_PATHS: usize = 1_000;

fn shrink<V>(table: &mut HashMap<String, V>, keep: usize) {
    if table.len() > keep {
        let excess: Vec<String> = table.keys().skip(keep).cloned().collect();
        for key in excess {
            table.remove(&key);
        }
    }
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
        let base_url = format!("{scheme}://{address}");
        let state: Shared = Arc::new(Mutex::new(State {
            token_url: format!("{base_url}/token"),
            issuer: base_url.clone(),
            own_authorities: ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .map(|host| format!("{host}:{}", address.port()))
                .collect(),
            lifetime_secs: options.token_lifetime_secs,
            token_delay_ms: options.token_delay_ms,
            token_prefix: options.token_prefix,
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
            base_url,
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

    /// The authorization endpoint.
    pub fn authorization_url(&self) -> String {
        format!("{}/authorize", self.base_url)
    }

    /// The introspection endpoint (RFC 7662).
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.base_url)
    }

    /// The revocation endpoint (RFC 7009).
    pub fn revocation_url(&self) -> String {
        format!("{}/revoke", self.base_url)
    }

    /// The introspection and revocation requests received so far.
    pub fn lifecycle_requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).lifecycle_received.clone()
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
        let mut state = lock(&self.state);
        let token = state.new_token();
        let family = state.new_family();
        state.refresh_tokens.insert(
            token.clone(),
            Grant {
                client_id: client_id.to_owned(),
                user: None,
                scope: scope.map(str::to_owned),
                expires_at: u64::MAX,
                family,
            },
        );
        token
    }

    /// How many tokens and authorization codes the server holds: expired
    /// ones are forgotten at the next request.
    pub fn held_entries(&self) -> usize {
        lock(&self.state).entries()
    }

    /// Changes how long the token endpoint waits before it answers, from
    /// the next request on: a server that slows down, then recovers.
    pub fn set_token_delay_ms(&self, delay_ms: u64) {
        lock(&self.state).token_delay_ms = delay_ms;
    }

    /// How many times a refresh token was presented again after it had been
    /// exchanged; each revoked its whole family, as strict providers do.
    pub fn refresh_token_reuses(&self) -> u64 {
        lock(&self.state).refresh_token_reuses
    }

    /// The token requests received so far, oldest first.
    pub fn received_requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).received.clone()
    }

    /// How many requests a protected resource path (such as `/resource`
    /// or `/resource/challenge/basic`) has received.
    pub fn resource_hits(&self, path: &str) -> u64 {
        lock(&self.state)
            .resource_hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Revokes every access token issued so far, as an administrator
    /// would; refresh tokens stay valid.
    pub fn revoke_access_tokens(&self) {
        lock(&self.state).access_tokens.clear();
    }

    /// Revokes every refresh token issued so far.
    pub fn revoke_refresh_tokens(&self) {
        lock(&self.state).refresh_tokens.clear();
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

/// A CA and a server certificate it signed for `localhost`, `127.0.0.1`
/// and `::1`, generated afresh: what a loopback test server presents.
pub struct LoopbackIdentity {
    /// The CA certificate clients trust, PEM.
    pub ca_pem: String,
    /// The server certificate followed by the CA's, PEM.
    pub chain_pem: String,
    /// The server's private key, PKCS#8 PEM.
    pub key_pem: String,
    chain_der: Vec<rustls::pki_types::CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl LoopbackIdentity {
    /// Generates a CA and a server certificate.
    pub fn generate() -> Result<Self> {
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
        Ok(Self {
            ca_pem: ca_cert.pem(),
            chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
            key_pem: leaf_key.serialize_pem(),
            chain_der: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key_der: leaf_key.serialize_der(),
        })
    }
}

fn tls_acceptor() -> Result<(TlsAcceptor, String)> {
    let identity = LoopbackIdentity::generate()?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(identity.key_der.clone().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(identity.chain_der.clone(), key)
    .context("failed to configure TLS")?;
    Ok((TlsAcceptor::from(Arc::new(config)), identity.ca_pem))
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
    // Answer only under the server's own names: a hostile page that binds
    // its host name to 127.0.0.1 (DNS rebinding) reaches no endpoint.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    {
        let mut state = lock(state);
        if !state.own_authorities.contains(&host) {
            return json_response(
                StatusCode::MISDIRECTED_REQUEST,
                &json!({"error": "invalid_request", "error_description": "this server answers only at its loopback address"}),
            );
        }
        state.tidy(unix_now());
    }
    let path = request.uri().path().to_owned();
    match path.as_str() {
        "/token" => token_endpoint(state, request).await,
        "/authorize" if request.method() == Method::GET => {
            let query = request.uri().query().unwrap_or_default().to_owned();
            authorize::authorize(&mut lock(state), &query)
        }
        "/introspect" | "/revoke" => lifecycle_endpoint(state, &path, request).await,
        "/resource" => {
            count_hit(state, &path);
            resource_endpoint(state, request.headers())
        }
        fixed if fixed.starts_with("/resource/challenge/") => {
            count_hit(state, &path);
            fixed_answer(&fixed["/resource/challenge/".len()..])
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
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
    let delay = lock(state).token_delay_ms;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
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
    let result = {
        let mut state = lock(state);
        let result = token::token_grant(&mut state, &parts.headers, &body, &mut received);
        state.received.push(received);
        result
    };
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

/// The introspection and revocation endpoints: form `POST`s whose
/// refusals are section 5.2 errors, recorded like token requests.
async fn lifecycle_endpoint(
    state: &Shared,
    path: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        let mut response =
            OAuthError::new("invalid_request", "this endpoint accepts POST only").into_response();
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return response;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
        return OAuthError::new("invalid_request", "the request body is too large or broken")
            .into_response();
    };
    let body = body.to_bytes();
    let mut received = ReceivedRequest {
        headers: received_headers(&parts.headers),
        parameters: Vec::new(),
        authenticated_client: None,
    };
    let mut state = lock(state);
    let result = if path == "/introspect" {
        lifecycle::introspect(&mut state, &parts.headers, &body, &mut received)
    } else {
        lifecycle::revoke(&mut state, &parts.headers, &body, &mut received).map(|()| json!({}))
    };
    state.lifecycle_received.push(received);
    match result {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(error) => error.into_response(),
    }
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
            &json!({"client_id": grant.client_id, "user": grant.user, "scope": grant.scope}),
        ),
        Some(_) => challenge(Some(("invalid_token", "the access token expired"))),
        None => challenge(Some(("invalid_token", "the access token is unknown"))),
    }
}

fn count_hit(state: &Shared, path: &str) {
    let mut state = lock(state);
    if state.resource_hits.len() < MAX_COUNTED_PATHS || state.resource_hits.contains_key(path) {
        *state.resource_hits.entry(path.to_owned()).or_default() += 1;
    }
}

/// A resource that answers the same whatever token it is shown: the
/// answers an API gives, for tests of what a client does with them.
fn fixed_answer(kind: &str) -> Response<Full<Bytes>> {
    let (status, challenge) = match kind {
        "invalid_token" => (
            StatusCode::UNAUTHORIZED,
            Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"the access token is not valid\""
            )),
        ),
        "insufficient_scope" => (
            StatusCode::UNAUTHORIZED,
            Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"admin\""
            )),
        ),
        "no_challenge" => (StatusCode::UNAUTHORIZED, None),
        "basic" => (
            StatusCode::UNAUTHORIZED,
            Some(format!("Basic realm=\"{REALM}\"")),
        ),
        "forbidden" => (StatusCode::FORBIDDEN, None),
        "ok" => (StatusCode::OK, None),
        _ => return json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    };
    let mut response = json_response(status, &json!({"answer": kind}));
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
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
    static ISSUED: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // The system generator does not fail on supported platforms; if it
        // ever did, a counter and the clock still keep this test server's
        // tokens unique, which is what it relies on.
        let count = ISSUED.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..8].copy_from_slice(&count.to_le_bytes());
        bytes[8..24].copy_from_slice(&nanos.to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
