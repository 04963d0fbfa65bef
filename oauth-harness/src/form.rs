//! `oauth-harness form`: the configuration form a person fills in, served on
//! loopback.
//!
//! The page (`oauth-harness/form/`) renders the component's schema with
//! JSON Editor, an off-the-shelf JSON Schema form library installed from
//! the npm registry (`npm ci --prefix oauth-harness/form`); the harness serves
//! the library's own bundle from there, so nothing is fetched from a CDN.
//! Every check and every token goes through the component: this module only
//! carries the page's requests to [`ConnectorHost::validate`] and to the
//! [`Harness`], and remembers a browser login between its two halves.
//!
//! Every user of the machine can reach its loopback port, so the API
//! answers only calls that carry a token drawn when the server starts: it
//! is in the address the command prints, the page reads it from its own
//! address and sends it in [`TOKEN_HEADER`]. The page itself and the
//! login's redirect (`/callback...`) are served without it: they hold no
//! secret, and an authorization server cannot know the token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};

use host_harness::component::{Failure, FieldError, Login};
use host_harness::harness::UnusableToken;
use host_harness::{ConnectorHost, Harness, HttpSettings, TokenError};

/// The page itself.
const INDEX_HTML: &str = include_str!("../form/index.html");
/// The page's code: turns the schema's hints into the library's options.
const FORM_JS: &str = include_str!("../form/form.js");
/// Where the form library's bundle lies below the assets directory.
const LIBRARY_BUNDLE: &str = "node_modules/@json-editor/json-editor/dist/jsoneditor.js";
/// The largest request body the page may send (a configuration with keys).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// The header in which the page sends the server's token with each call.
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-form-token");
/// The query parameter of the printed address that holds the token.
const TOKEN_PARAMETER: &str = "token";

/// The directory holding the page's npm packages in this repository.
pub fn default_assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("form")
}

/// Whether the form library has been installed in `assets`.
pub fn library_installed(assets: &Path) -> bool {
    assets.join(LIBRARY_BUNDLE).is_file()
}

/// Where and how the form server listens and reaches authorization servers.
#[derive(Debug, Clone)]
pub struct FormOptions {
    /// The loopback port; 0 picks a free one.
    pub port: u16,
    /// The directory where `npm ci` installed the form library.
    pub assets: PathBuf,
    /// How token requests are sent.
    pub http: HttpSettings,
}

/// A browser login between the authorization URL and the redirect.
struct PendingLogin {
    config: String,
    login: Login,
}

struct Shared {
    /// `127.0.0.1:PORT`: the only `Host` the server answers to.
    authority: String,
    /// What every `/api/` call must carry in [`TOKEN_HEADER`]: 32 random
    /// bytes, base64url.
    token: String,
    harness: Harness,
    assets: PathBuf,
    logins: Mutex<PendingLogins>,
    callbacks: Mutex<CallbackPaths>,
}

/// A running form server; it stops when dropped.
pub struct FormServer {
    /// `http://127.0.0.1:PORT/`, without the token.
    base: String,
    /// The page's address with the token, for the person who runs it.
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FormServer {
    /// Starts serving the form on loopback.
    pub fn start(connector: ConnectorHost, options: FormOptions) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))
            .with_context(|| format!("failed to listen on 127.0.0.1:{}", options.port))?;
        listener.set_nonblocking(true)?;
        let authority = listener.local_addr()?.to_string();
        let mut token = [0u8; 32];
        getrandom::fill(&mut token)
            .map_err(|e| anyhow::anyhow!("the random generator failed: {e}"))?;
        let token = URL_SAFE_NO_PAD.encode(token);
        let base = format!("http://{authority}/");
        // base64url needs no escaping in a query.
        let url = format!("{base}?{TOKEN_PARAMETER}={token}");
        let shared = Arc::new(Shared {
            authority,
            token,
            harness: Harness::new(connector, &options.http),
            assets: options.assets,
            logins: Mutex::new(PendingLogins::default()),
            callbacks: Mutex::new(CallbackPaths::default()),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("form-server")
            .enable_io()
            .enable_time()
            .build()
            .context("failed to start the form server's runtime")?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, shared));
        Ok(Self {
            base,
            url,
            runtime: Some(runtime),
        })
    }

    /// The page's URL with the token its calls need, such as
    /// `http://127.0.0.1:41234/?token=...`: for the person who runs the
    /// form only, since whoever holds it can use the form's API.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where browser logins started from the form come back: this, or
    /// this followed by `/NAME`, a path for each authorization server.
    /// It holds no token: authorization servers are told it.
    pub fn callback_url(&self) -> String {
        format!("{}callback", self.base)
    }
}

impl Drop for FormServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let mut response = answer(shared, request).await;
    // No other page may show this one in a frame, where it could trick the
    // user into clicking its buttons (clickjacking); and no address of the
    // page, which may hold the token, goes out in a Referer.
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn answer(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    // Only this server's own pages may use it. Another site's page could
    // otherwise post configurations to it (cross-site requests), or read its
    // answers under a hostile name that resolves to 127.0.0.1 (DNS
    // rebinding): the Host must be this address, an Origin this origin, and
    // calls must be JSON, which a cross-site form cannot send.
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    if header(header::HOST).as_deref() != Some(shared.authority.as_str()) {
        return problem(
            StatusCode::FORBIDDEN,
            &format!("this form answers only at http://{}/", shared.authority),
        );
    }
    if header(header::ORIGIN).is_some_and(|origin| origin != format!("http://{}", shared.authority))
    {
        return problem(StatusCode::FORBIDDEN, "calls from other sites are refused");
    }
    // Other local users pass the checks above: they send the right Host
    // and no Origin. Only the token in the printed address lets a call in.
    if request.uri().path().starts_with("/api/")
        && !header(TOKEN_HEADER)
            .is_some_and(|given| same_token(given.as_bytes(), shared.token.as_bytes()))
    {
        return problem(
            StatusCode::FORBIDDEN,
            "this call lacks the form's token: open the page at the address `oauth-harness form` printed, which holds it",
        );
    }
    if request.method() == Method::POST
        && !header(header::CONTENT_TYPE)
            .is_some_and(|media| media.trim_start().starts_with("application/json"))
    {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "calls must be application/json",
        );
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match (method, path.as_str()) {
        // The login's redirect comes back to the page, which finishes it.
        (Method::GET, page) if page == "/" || is_callback_path(page) => {
            text(StatusCode::OK, "text/html", INDEX_HTML)
        }
        (Method::GET, "/form.js") => text(StatusCode::OK, "text/javascript", FORM_JS),
        (Method::GET, "/vendor/jsoneditor.js") => library(&shared.assets).await,
        (Method::POST, api) if api.starts_with("/api/") => {
            let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return problem(StatusCode::PAYLOAD_TOO_LARGE, "the request is too large");
                }
            };
            let body = String::from_utf8_lossy(&body).into_owned();
            let api = api.to_owned();
            // The component and the token request block: keep them off the
            // connection tasks.
            tokio::task::spawn_blocking(move || call(&shared, &api, body))
                .await
                .unwrap_or_else(|_| {
                    problem(StatusCode::INTERNAL_SERVER_ERROR, "the request failed")
                })
        }
        (Method::GET, "/api/schema") => {
            let schema = tokio::task::spawn_blocking(move || shared.harness.connector().schema())
                .await
                .map_err(anyhow::Error::from)
                .and_then(|schema| schema);
            match schema {
                Ok(schema) => text(StatusCode::OK, "application/json", &schema),
                Err(error) => problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error:#}")),
            }
        }
        _ => problem(StatusCode::NOT_FOUND, "no such page"),
    }
}

/// Whether `given` is the server's token. Every byte is compared whatever
/// differs, so the time taken says nothing of how much of a guess was
/// right; the length is no secret (every token has 43 characters).
fn same_token(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            // black_box keeps the compiler from ending the loop early.
            .fold(0u8, |differ, (a, b)| std::hint::black_box(differ | (a ^ b)))
            == 0
}

/// The page's calls: validate, obtain a token, start and finish a login.
fn call(shared: &Shared, api: &str, body: String) -> Response<Full<Bytes>> {
    let result = match api {
        "/api/validate" => shared
            .harness
            .connector()
            .validate(&body)
            .map(|errors| json!({"errors": errors.iter().map(field_error).collect::<Vec<_>>()}))
            .map_err(|error| TokenError::Host(error).into()),
        "/api/token" => match shared.harness.obtain_token(&body) {
            Ok(token) => {
                Ok(json!({"token": token.to_json(false), "keep": to_keep(shared, &body, &token)}))
            }
            Err(error) => Err(Refusal::of(shared, &body, error)),
        },
        "/api/login" => start_login(shared, body).map_err(Refusal::from),
        "/api/finish" => finish_login(shared, &body),
        _ => return problem(StatusCode::NOT_FOUND, "no such call"),
    };
    match result {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(refusal) => json_response(StatusCode::UNPROCESSABLE_ENTITY, &refusal.to_json()),
    }
}

/// Why a call brought no answer, as the page is told it.
enum Refusal {
    /// The call failed: only why is shown.
    Failed(TokenError),
    /// The server's answers held no usable access token but a refresh
    /// token, which may have replaced the one presented (then spent): its
    /// fault is shown, and the page is still offered the refresh token to
    /// keep, as after a token obtained, or told why it is not kept.
    Unusable {
        /// The server's fault, in the component's words.
        reason: TokenError,
        /// What [`to_keep`] says of the refresh token kept.
        keep: Value,
    },
}

impl Refusal {
    /// The refusal of a call about `document` that failed with `error`.
    fn of(shared: &Shared, document: &str, error: TokenError) -> Self {
        match error {
            TokenError::Unusable(unusable) => {
                let UnusableToken { reason, kept } = *unusable;
                Self::Unusable {
                    keep: to_keep(shared, document, &kept),
                    reason,
                }
            }
            error => Self::Failed(error),
        }
    }

    /// The answer's body: `error`, worded as every other failure, and with
    /// the server's fault the same `keep` a token's answer carries. The
    /// token itself (`kept`) stays out: it has no usable access token to
    /// show, and its refresh token goes no further than `keep` shows it.
    fn to_json(&self) -> Value {
        match self {
            Self::Failed(error) => json!({"error": format!("{error:#}")}),
            Self::Unusable { reason, keep } => {
                json!({"error": format!("{reason:#}"), "keep": keep})
            }
        }
    }
}

impl From<TokenError> for Refusal {
    fn from(error: TokenError) -> Self {
        Self::Failed(error)
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(error: anyhow::Error) -> Self {
        Self::Failed(error.into())
    }
}

fn start_login(shared: &Shared, config: String) -> Result<Value, TokenError> {
    let authorization = shared.harness.authorization(&config, None, None)?;
    let server = authorization_server(&authorization.url);
    let mut callbacks = shared
        .callbacks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(path) = callback_path_here(&authorization.redirect_uri, &shared.authority) else {
        return Err(anyhow::anyhow!(
            "redirect_uri {} does not come back to this form: set it to {}, and register that at the authorization server",
            authorization.redirect_uri,
            callbacks.suggestion(&shared.authority, &server)
        )
        .into());
    };
    match callbacks.bind(&path, &server) {
        Bound::Yes => {}
        Bound::ToAnother(other) => {
            return Err(anyhow::anyhow!(
                "{path} already receives the logins of {other} in this form (until it restarts): give {server} a path of its own, such as {}, and register that there. With one redirect URI for two servers, an answer from one could be taken for the other's (a mix-up attack, RFC 9700 section 4.4)",
                callbacks.suggestion(&shared.authority, &server)
            )
            .into());
        }
        Bound::Full => {
            return Err(anyhow::anyhow!(
                "this form has given out its {MAX_CALLBACK_PATHS} callback paths, each to one authorization server: restart it to use {path} for {server}"
            )
            .into());
        }
    }
    drop(callbacks);
    let url = authorization.url.clone();
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("the random generator failed: {e}"))?;
    let id = URL_SAFE_NO_PAD.encode(id);
    shared
        .logins
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(
            id.clone(),
            PendingLogin {
                config,
                login: authorization,
            },
            Instant::now(),
        );
    Ok(json!({"login": id, "url": url}))
}

/// The path logins come back to, alone or followed by `/NAME`.
const CALLBACK_PATH: &str = "/callback";

/// Whether the page is served at `path` as a login's redirect target:
/// `/callback`, or `/callback/NAME` with a short name of letters, digits,
/// `-`, `.` and `_`.
fn is_callback_path(path: &str) -> bool {
    path == CALLBACK_PATH
        || path
            .strip_prefix(CALLBACK_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| {
                (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            })
}

/// The callback path of a redirect URI that comes back to this form.
fn callback_path_here(redirect_uri: &str, authority: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let here = url.scheme() == "http"
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url[url::Position::BeforeHost..url::Position::BeforePath] == *authority;
    (here && is_callback_path(url.path())).then(|| url.path().to_owned())
}

/// An authorization server as the form tells them apart: the authorization
/// endpoint without its query. Tenants of one host are different servers.
fn authorization_server(authorization_url: &str) -> String {
    match url::Url::parse(authorization_url) {
        Ok(url) => url[..url::Position::AfterPath].to_owned(),
        Err(_) => authorization_url.to_owned(),
    }
}

/// How many callback paths the form remembers; beyond it, restart the form.
const MAX_CALLBACK_PATHS: usize = 64;

/// Which authorization server each callback path serves, for as long as the
/// form runs. A redirect that arrives at one server's path never finishes
/// another server's login (the connector checks the path), so a server
/// that sends the browser on to another cannot pass that one's answer off
/// as its own (mix-up, RFC 9700 section 4.4.2). That holds only while each
/// path belongs to one server, which this keeps.
#[derive(Default)]
struct CallbackPaths {
    servers: HashMap<String, String>,
}

/// Whether a callback path could be bound to a server.
#[derive(Debug, PartialEq)]
enum Bound {
    /// It serves that server (now, or already).
    Yes,
    /// It serves this other server.
    ToAnother(String),
    /// It is new, and no more paths are given out.
    Full,
}

impl CallbackPaths {
    /// A redirect URI for `server` that no other server has here: named
    /// after its host, port and path, numbered when that name is taken.
    fn suggestion(&self, authority: &str, server: &str) -> String {
        let parts: Vec<String> = match url::Url::parse(server) {
            Ok(url) => url
                .host_str()
                .map(str::to_owned)
                .into_iter()
                .chain(url.port().map(|port| port.to_string()))
                .chain(url.path_segments().into_iter().flatten().map(str::to_owned))
                .collect(),
            Err(_) => Vec::new(),
        };
        let name: String = parts
            .iter()
            .map(|part| {
                part.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
                    .collect::<String>()
            })
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-")
            .chars()
            .take(56)
            .collect();
        let name = if name.is_empty() {
            "server".to_owned()
        } else {
            name
        };
        let free = |path: &String| self.servers.get(path).is_none_or(|bound| bound == server);
        let path = (1..)
            .map(|n| match n {
                1 => format!("{CALLBACK_PATH}/{name}"),
                n => format!("{CALLBACK_PATH}/{name}-{n}"),
            })
            .find(free)
            .unwrap_or_default();
        format!("http://{authority}{path}")
    }

    /// Binds `path` to `server` unless it serves another.
    fn bind(&mut self, path: &str, server: &str) -> Bound {
        match self.servers.get(path) {
            Some(bound) if bound == server => Bound::Yes,
            Some(bound) => Bound::ToAnother(bound.clone()),
            None if self.servers.len() >= MAX_CALLBACK_PATHS => Bound::Full,
            None => {
                self.servers.insert(path.to_owned(), server.to_owned());
                Bound::Yes
            }
        }
    }
}

/// How long a login started from the form waits for its redirect.
const LOGIN_EXPIRES: Duration = Duration::from_secs(10 * 60);

/// How many logins may wait at once: each holds a configuration (up to
/// 256 KiB), so their number is bounded; the oldest goes first.
const MAX_PENDING_LOGINS: usize = 16;

/// The logins waiting for their redirect, each with when it started.
#[derive(Default)]
struct PendingLogins {
    waiting: HashMap<String, (PendingLogin, Instant)>,
}

impl PendingLogins {
    /// Keeps a login; expired ones, and the oldest beyond the bound, go.
    fn insert(&mut self, id: String, login: PendingLogin, now: Instant) {
        self.waiting
            .retain(|_, (_, started)| now.duration_since(*started) < LOGIN_EXPIRES);
        while self.waiting.len() >= MAX_PENDING_LOGINS {
            let Some(oldest) = self
                .waiting
                .iter()
                .min_by_key(|(_, (_, started))| *started)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.waiting.remove(&oldest);
        }
        self.waiting.insert(id, (login, now));
    }

    /// The login and when it started, unless it expired.
    fn take(&mut self, id: &str, now: Instant) -> Option<(PendingLogin, Instant)> {
        let (login, started) = self.waiting.remove(id)?;
        (now.duration_since(started) < LOGIN_EXPIRES).then_some((login, started))
    }

    /// Puts back a login taken for a redirect that was not its own; it
    /// keeps its start, so it expires when it would have.
    fn put_back(&mut self, id: String, login: PendingLogin, started: Instant) {
        self.waiting.insert(id, (login, started));
    }
}

/// The page's report of where the browser came back to.
#[derive(Deserialize)]
struct Finish {
    login: String,
    redirect_url: String,
}

fn finish_login(shared: &Shared, body: &str) -> Result<Value, Refusal> {
    let finish: Finish = serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("the page sent an unreadable login report: {e}"))?;
    let (pending, started) = shared
        .logins
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take(&finish.login, Instant::now())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no login is waiting here (they expire after {} minutes): start it again from the form",
                LOGIN_EXPIRES.as_secs() / 60
            )
        })?;
    match shared
        .harness
        .finish_login(&pending.config, &finish.redirect_url, &pending.login)
    {
        Ok(token) => Ok(json!({"token": token.to_json(false)})),
        // Not this login's redirect (no or another `state`, another
        // issuer): any page can send the browser to /callback, and must not
        // end the login, which goes on waiting for its own redirect.
        Err(TokenError::Connector(Failure::BadRedirect(why))) => {
            shared
                .logins
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .put_back(finish.login, pending, started);
            Ok(json!({"ignored": format!(
                "this redirect does not belong to the login that is waiting ({why}); it was ignored, and the login goes on waiting for its own"
            )}))
        }
        // The login's document says whether it keeps a refresh token (a
        // browser grant's does not, and the page says so).
        Err(error) => Err(Refusal::of(shared, &pending.config, error)),
    }
}

/// What the page does with a new refresh token: the one in the form is
/// spent when the server rotated it, so the page takes the new one in its
/// place where the component says the document keeps it (the only copy
/// left), and otherwise says why it is not kept.
fn to_keep(shared: &Shared, document: &str, token: &host_harness::ObtainedToken) -> Value {
    let Some(refresh_token) = token
        .refresh_token
        .as_ref()
        .filter(|_| token.refresh_token_rotated)
    else {
        return json!({});
    };
    let kept = shared
        .harness
        .connection(document)
        .map_err(anyhow::Error::from)
        .and_then(|connection| connection.keep_in_document(document, &token.state));
    match kept {
        Ok(Ok(_)) => json!({"refresh_token": refresh_token.expose()}),
        Ok(Err(failure)) => json!({"not_kept": host_harness::component::describe(&failure)}),
        Err(error) => json!({"not_kept": format!("{error:#}")}),
    }
}

fn field_error(error: &FieldError) -> Value {
    json!({"field": error.field, "message": error.message, "fix": error.fix})
}

async fn library(assets: &Path) -> Response<Full<Bytes>> {
    let path = assets.join(LIBRARY_BUNDLE);
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bundle)) => {
            let mut response = Response::new(Full::new(Bytes::from(bundle)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript"),
            );
            response
        }
        Ok(Err(_)) | Err(_) => problem(
            StatusCode::NOT_FOUND,
            &format!(
                "the form library is not installed: run `npm ci --prefix {}`",
                assets.display()
            ),
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    text(status, "application/json", &body.to_string())
}

fn problem(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({"error": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingLogin {
        PendingLogin {
            config: "{}".into(),
            login: host_harness::component::Login {
                url: "https://as.example/authorize".into(),
                state: "s".into(),
                code_verifier: None,
                redirect_uri: "http://127.0.0.1:1/callback".into(),
            },
        }
    }

    #[test]
    fn each_callback_path_serves_one_authorization_server() {
        let authority = "127.0.0.1:4000";
        let here = |uri: &str| callback_path_here(uri, authority);
        assert_eq!(
            here("http://127.0.0.1:4000/callback").as_deref(),
            Some("/callback")
        );
        assert_eq!(
            here("http://127.0.0.1:4000/callback/login.example").as_deref(),
            Some("/callback/login.example")
        );
        for elsewhere in [
            "http://127.0.0.1:4001/callback",
            "http://[::1]:4000/callback",
            "https://127.0.0.1:4000/callback",
            "http://127.0.0.1:4000/",
            "http://127.0.0.1:4000/callbacks",
            "http://127.0.0.1:4000/callback/",
            "http://127.0.0.1:4000/callback/a/b",
            "http://127.0.0.1:4000/callback/%2e%2e",
            "http://127.0.0.1:4000/callback?x=1",
            "http://user@127.0.0.1:4000/callback",
        ] {
            assert_eq!(here(elsewhere), None, "{elsewhere}");
        }

        let tenant = |t: &str| {
            authorization_server(&format!("https://login.example/{t}/authorize?client_id=c"))
        };
        assert_eq!(tenant("a"), "https://login.example/a/authorize");
        let mut paths = CallbackPaths::default();
        assert_eq!(paths.bind("/callback/a", &tenant("a")), Bound::Yes);
        assert_eq!(paths.bind("/callback/a", &tenant("a")), Bound::Yes, "again");
        assert_eq!(
            paths.bind("/callback/a", &tenant("b")),
            Bound::ToAnother(tenant("a")),
            "another tenant of the same host is another server"
        );
        for n in 1..MAX_CALLBACK_PATHS {
            assert_eq!(
                paths.bind(&format!("/callback/{n}"), &n.to_string()),
                Bound::Yes
            );
        }
        assert_eq!(paths.bind("/callback/new", "new"), Bound::Full);
        assert_eq!(paths.bind("/callback/a", &tenant("a")), Bound::Yes, "kept");

        // Suggestions tell tenants and ports apart, and skip taken names.
        assert_eq!(
            paths.suggestion(authority, &tenant("b")),
            "http://127.0.0.1:4000/callback/login.example-b-authorize"
        );
        paths.servers.insert(
            "/callback/login.example-b-authorize".into(),
            "https://elsewhere.example/".into(),
        );
        assert_eq!(
            paths.suggestion(authority, &tenant("b")),
            "http://127.0.0.1:4000/callback/login.example-b-authorize-2"
        );
        assert_eq!(
            paths.suggestion(authority, "http://127.0.0.1:9/authorize"),
            "http://127.0.0.1:4000/callback/127.0.0.1-9-authorize"
        );
    }

    #[test]
    fn only_the_whole_token_is_the_token() {
        let token = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        assert!(same_token(token, token));
        assert!(!same_token(
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFH",
            token
        ));
        assert!(!same_token(&token[..42], token), "a prefix");
        assert!(
            !same_token(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH", token),
            "longer"
        );
        assert!(!same_token(b"", token));
    }

    #[test]
    fn pending_logins_expire_and_are_bounded() {
        let start = Instant::now();
        let mut logins = PendingLogins::default();
        logins.insert("a".into(), pending(), start);
        assert!(logins.take("a", start + LOGIN_EXPIRES).is_none(), "expired");
        logins.insert("b".into(), pending(), start);
        let (login, started) = logins.take("b", start).expect("waiting");
        logins.put_back("b".into(), login, started);
        assert!(
            logins.take("b", start + LOGIN_EXPIRES).is_none(),
            "put back, it expires when it would have"
        );
        for n in 0..MAX_PENDING_LOGINS + 5 {
            logins.insert(
                n.to_string(),
                pending(),
                start + Duration::from_secs(n as u64),
            );
        }
        assert_eq!(logins.waiting.len(), MAX_PENDING_LOGINS);
        let later = start + Duration::from_secs(60);
        assert!(logins.take("0", later).is_none(), "the oldest went first");
        assert!(
            logins
                .take(&(MAX_PENDING_LOGINS + 4).to_string(), later)
                .is_some()
        );
    }
}
