//! The token loop: ask the component for a request, send it, hand back the
//! response. The harness decides nothing about OAuth; the component does.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::{Value, json};

use crate::component::{
    Authorization, Connection, ConnectorHost, Context, Failure, Introspection, LoginStep, Request,
    Response, Token, TokenTypeHint,
};
use crate::http_client::{HttpClient, HttpSettings};
use crate::lock;

/// A string that Debug output shows as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself; the caller must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A token the component read from the server's response.
#[derive(Clone)]
pub struct ObtainedToken {
    /// The access token.
    pub access_token: Redacted,
    /// The token type, such as `Bearer`.
    pub token_type: String,
    /// When it expires, unix seconds.
    pub expires_at: Option<u64>,
    /// The refresh token to keep: the server's new one, or the one the
    /// request presented.
    pub refresh_token: Option<Redacted>,
    /// Whether the server issued a refresh token other than the presented one.
    pub refresh_token_rotated: bool,
    /// The granted scope, if stated.
    pub scope: Option<String>,
    /// Every other member of the response, as a JSON object.
    pub extra: String,
}

/// `extra` may hold secrets (an `id_token`): Debug shows its size only.
impl fmt::Debug for ObtainedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObtainedToken")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_token_rotated", &self.refresh_token_rotated)
            .field("scope", &self.scope)
            .field("extra_len", &self.extra.len())
            .finish()
    }
}

impl From<Token> for ObtainedToken {
    fn from(token: Token) -> Self {
        Self {
            access_token: Redacted(token.access_token),
            token_type: token.token_type,
            expires_at: token.expires_at,
            refresh_token: token.refresh_token.map(Redacted),
            refresh_token_rotated: token.refresh_token_rotated,
            scope: token.scope,
            extra: token.extra,
        }
    }
}

impl ObtainedToken {
    /// The token as JSON for printing: the access and refresh tokens, and
    /// every string in `extra` (an `id_token`, say), show as `[redacted]`
    /// unless `show_secrets`.
    pub fn to_json(&self, show_secrets: bool) -> Value {
        let secret = |value: &str| {
            if show_secrets {
                Value::String(value.to_owned())
            } else {
                Value::String("[redacted]".to_owned())
            }
        };
        let mut extra: Value = serde_json::from_str(&self.extra).unwrap_or_else(|_| json!({}));
        if !show_secrets {
            redact_strings(&mut extra);
        }
        json!({
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "access_token": secret(self.access_token.expose()),
            "refresh_token": self.refresh_token.as_ref().map(|t| secret(t.expose())),
            "refresh_token_rotated": self.refresh_token_rotated,
            "extra": extra,
        })
    }
}

/// Replaces every string in a JSON value, however deeply nested (Slack's
/// `authed_user.access_token`), with `[redacted]`.
fn redact_strings(value: &mut Value) {
    match value {
        Value::String(text) => *text = "[redacted]".to_owned(),
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(members) => members.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// Why no token was obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The component refused: bad configuration, the server's error or an
    /// unreadable response.
    #[error("{}", describe(.0))]
    Connector(Failure),
    /// The host failed: HTTP, TLS, a trap in the component.
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

/// A readable message for a component failure.
pub fn describe(failure: &Failure) -> String {
    match failure {
        Failure::InvalidConfig(errors) => {
            let problems: Vec<String> = errors
                .iter()
                .map(|e| {
                    let field = if e.field.is_empty() {
                        "configuration"
                    } else {
                        &e.field
                    };
                    format!("{field}: {} ({})", e.message, e.fix)
                })
                .collect();
            format!("invalid configuration: {}", problems.join("; "))
        }
        Failure::Rejected(e) => {
            let mut text = match e.status {
                Some(status) => format!(
                    "the authorization server refused the request (HTTP {status}): {}",
                    e.error
                ),
                None => format!("the authorization server refused the login: {}", e.error),
            };
            if let Some(description) = &e.error_description {
                text.push_str(&format!(": {description}"));
            }
            if let Some(uri) = &e.error_uri {
                text.push_str(&format!(" [see {uri}]"));
            }
            text
        }
        Failure::UnreadableResponse(u) => {
            let mut text = format!(
                "unreadable token response (HTTP {}): {}",
                u.status, u.problem
            );
            if !u.location.is_empty() {
                text.push_str(&format!(" at {}", u.location));
            }
            if !u.snippet.is_empty() {
                text.push_str(&format!("; the body starts: {}", u.snippet));
            }
            text
        }
        Failure::BadRedirect(message) => format!("unusable redirect: {message}"),
        Failure::Other(message) => message.clone(),
    }
}

/// Where the harness reads the time: unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How many configurations a harness keeps open at once. Each open
/// connection holds an instance of the component and its memory (a quarter
/// of a MiB after ordinary calls, at most the memory limit); past this many,
/// one of them is closed to make room for the next.
const MAX_OPEN_CONNECTIONS: usize = 64;

/// The component and an HTTP client: everything needed to obtain tokens.
pub struct Harness {
    connector: ConnectorHost,
    http: HttpClient,
    clock: Clock,
    /// Each configuration opened once and kept, by its document.
    connections: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Harness {
    /// A harness for this component and these HTTP settings.
    pub fn new(connector: ConnectorHost, http: &HttpSettings) -> Self {
        Self {
            connector,
            http: HttpClient::new(http),
            clock: Arc::new(unix_now),
            connections: Mutex::default(),
        }
    }

    /// The connection for a configuration document: opened at the first
    /// use, then kept, so later calls neither instantiate the component nor
    /// parse the document or its keys again.
    pub fn connection(&self, config: &str) -> Result<Arc<Connection>, TokenError> {
        if let Some(connection) = lock(&self.connections).get(config) {
            return Ok(Arc::clone(connection));
        }
        // Opened outside the lock: opening signs with the key once, and
        // other configurations need not wait for that.
        let opened = Arc::new(
            self.connector
                .open(config)?
                .map_err(TokenError::Connector)?,
        );
        let mut connections = lock(&self.connections);
        if let Some(raced) = connections.get(config) {
            // Another caller opened it meanwhile: keep one.
            return Ok(Arc::clone(raced));
        }
        // Closed after the lock is released: dropping an instance unmaps
        // its memory.
        let mut closed = None;
        if connections.len() >= MAX_OPEN_CONNECTIONS
            && let Some(any) = connections.keys().next().cloned()
        {
            closed = connections.remove(&any);
        }
        connections.insert(config.to_owned(), Arc::clone(&opened));
        drop(connections);
        drop(closed);
        Ok(opened)
    }

    /// The same harness reading the time from `clock`, such as a test's
    /// controlled clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The current time by this harness's clock, unix seconds.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Sends a request as it is: for API calls the component authorized.
    pub fn send(&self, request: &Request) -> Result<Response> {
        self.http.send(request)
    }

    /// The loaded component.
    pub fn connector(&self) -> &ConnectorHost {
        &self.connector
    }

    /// Gives the component back, e.g. to pair it with other HTTP settings.
    pub fn into_connector(self) -> ConnectorHost {
        self.connector
    }

    /// Obtains a token with the configured grant.
    pub fn obtain_token(&self, config: &str) -> Result<ObtainedToken, TokenError> {
        let connection = self.connection(config)?;
        let request = connection.token_request(&self.context()?)?;
        self.exchange(&connection, request, None)
    }

    /// Exchanges a refresh token for a new access token.
    pub fn refresh_token(
        &self,
        config: &str,
        refresh_token: &str,
    ) -> Result<ObtainedToken, TokenError> {
        let connection = self.connection(config)?;
        let request = connection.refresh_request(refresh_token, &self.context()?)?;
        self.exchange(&connection, request, Some(refresh_token))
    }

    /// Starts a browser login: the URL to open, the state and verifier to keep.
    pub fn authorization(
        &self,
        config: &str,
        state: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Authorization, TokenError> {
        self.connection(config)?
            .authorization_url(&self.context()?, state, code_verifier)?
            .map_err(TokenError::Connector)
    }

    /// Finishes a browser login from the URL the browser was sent back
    /// to: the component checks it and says whether a code exchange follows
    /// (sent here) or the token is already there (the implicit grant).
    pub fn finish_login(
        &self,
        config: &str,
        redirect_url: &str,
        state: &str,
        code_verifier: Option<&str>,
    ) -> Result<ObtainedToken, TokenError> {
        let connection = self.connection(config)?;
        let step = connection
            .finish_login(redirect_url, state, code_verifier, &self.context()?)?
            .map_err(TokenError::Connector)?;
        match step {
            LoginStep::Exchange(request) => self.exchange(&connection, Ok(request), None),
            LoginStep::Done(token) => Ok(token.into()),
        }
    }

    /// Asks the configured introspection endpoint about a token (RFC 7662).
    pub fn introspect(
        &self,
        config: &str,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Introspection, TokenError> {
        let request = self
            .connection(config)?
            .introspection_request(token, hint, &self.context()?)?
            .map_err(TokenError::Connector)?;
        let response = self.http.send(&request)?;
        self.connector
            .read_introspection_response(&response)?
            .map_err(TokenError::Connector)
    }

    /// Revokes a token at the configured revocation endpoint (RFC 7009).
    pub fn revoke(
        &self,
        config: &str,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<(), TokenError> {
        let request = self
            .connection(config)?
            .revocation_request(token, hint, &self.context()?)?
            .map_err(TokenError::Connector)?;
        let response = self.http.send(&request)?;
        self.connector
            .read_revocation_response(&response)?
            .map_err(TokenError::Connector)
    }

    /// Sends a request the component built and reads the response.
    fn exchange(
        &self,
        connection: &Connection,
        request: Result<Request, Failure>,
        presented_refresh_token: Option<&str>,
    ) -> Result<ObtainedToken, TokenError> {
        let request = request.map_err(TokenError::Connector)?;
        let response: Response = self.http.send(&request)?;
        let token = connection
            .read_token_response(&response, self.now(), presented_refresh_token)?
            .map_err(TokenError::Connector)?;
        Ok(token.into())
    }

    /// The time and fresh random bytes for a request.
    fn context(&self) -> Result<Context> {
        let mut nonce = vec![0u8; 32];
        getrandom::fill(&mut nonce)
            .map_err(|e| anyhow::anyhow!("the system random generator failed: {e}"))?;
        Ok(Context {
            now: self.now(),
            nonce,
        })
    }
}

/// Seconds since the unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
