//! The IO around the component: HTTP, the clock, randomness and the kept
//! connections. The harness decides nothing about OAuth; the component
//! says what to send and reads what came back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::component::{
    Connection, ConnectorHost, Context, Failure, Introspection, Login, LoginStep, ObtainedToken,
    Renewal, Request, Response, Step, TokenFetch, TokenState, TokenTypeHint, describe,
};
use crate::http_client::{HttpClient, HttpSettings};
use crate::lock;

/// Why no token was obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The component refused: bad configuration, the server's error or an
    /// unreadable response.
    #[error("{}", describe(.0))]
    Connector(Failure),
    /// The token endpoint answered with a refresh token but no access token
    /// that can be used, and a renewal with that refresh token brought none
    /// either: why, and what the component keeps of the answers. Keep its
    /// state as a token's (store it, or save its refresh token): the server
    /// may have rotated the refresh token presented, spending it.
    #[error("{}", .0.reason)]
    Unusable(Box<UnusableToken>),
    /// The host failed: HTTP, TLS, a store, a trap in the component.
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

/// Answers that left a refresh token to keep but no usable access token.
#[derive(Debug)]
pub struct UnusableToken {
    /// Why no usable token came of them: the server's fault in the
    /// component's words, or what failed while renewing.
    pub reason: TokenError,
    /// What the component keeps: the refresh token, with no access token.
    /// Its `state` is to be stored like any obtained token's.
    pub kept: ObtainedToken,
}

/// Where the harness reads the time: unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How many configurations a harness keeps open at once. Each open
/// connection holds an instance of the component and its memory (a quarter
/// of a MiB after ordinary calls, at most the memory limit); past this many,
/// one of them is closed to make room for the next.
const MAX_OPEN_CONNECTIONS: usize = 64;

/// How many token requests one fetch may chain: the request, and the
/// component's fallback after a refused refresh token.
const MAX_CHAINED_FETCHES: usize = 2;

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

    /// The longest one request can take: connecting, sending, and reading
    /// the answer.
    pub fn request_time_bound(&self) -> std::time::Duration {
        self.http.time_bound()
    }

    /// The longest a renewal's requests can take: each of its chained token
    /// requests bounded by the connect and read timeouts, with a margin.
    pub fn renewal_time_bound(&self) -> std::time::Duration {
        let one = self.http.time_bound();
        one * MAX_CHAINED_FETCHES as u32 + std::time::Duration::from_secs(5)
    }

    /// Sends a request as it is.
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

    /// Obtains a new token with the configured grant, whatever is kept.
    ///
    /// Fails with [`TokenError::Unusable`], holding the state to keep, when
    /// the server's answers carry a refresh token but no usable access
    /// token, even after the renewal with it that a call would make.
    pub fn obtain_token(&self, config: &str) -> Result<ObtainedToken, TokenError> {
        let connection = self.connection(config)?;
        let fetch = connection
            .token_request(&self.context()?)?
            .map_err(TokenError::Connector)?;
        let (state, _, obtained_at) = self.fetch_at(&connection, fetch, None)?;
        self.usable(&connection, state, obtained_at)
    }

    /// The token of a state just obtained, once the component says it can
    /// be used, asked as a call asks before it sends: the component's
    /// `next`, at the time the state was obtained.
    ///
    /// A state whose answer carried a refresh token but no usable access
    /// token is one `next` renews at once; the renewal is sent, as a call
    /// would send it. If the component then still has no token to send,
    /// its reason (the server's fault, in its words) is the error, with the
    /// state to keep. Before a renewal, a reason not to send (a token type
    /// the API would not take as a bearer token, say) is no fault of
    /// obtaining: that token is the one obtained.
    fn usable(
        &self,
        connection: &Connection,
        mut state: TokenState,
        mut obtained_at: u64,
    ) -> Result<ObtainedToken, TokenError> {
        // A request to no API in particular, as the driver's `token` asks.
        let nowhere = Request {
            method: "GET".into(),
            url: "https://localhost/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let mut renewed = false;
        let reason = loop {
            let cx = Context {
                now: obtained_at,
                ..self.context()?
            };
            match connection.next(&nowhere, Some(&state), &cx)? {
                Ok(Step::Fetch(fetch)) if !renewed => {
                    renewed = true;
                    match self.fetch_at(connection, fetch, Some(&state)) {
                        Ok((renewal, _, at)) => (state, obtained_at) = (renewal, at),
                        Err(error) => break error,
                    }
                }
                Ok(Step::Send(_)) => return self.describe(connection, &state),
                Err(_) if !renewed => return self.describe(connection, &state),
                Err(failure) => break TokenError::Connector(failure),
                Ok(Step::Fetch(_)) => {
                    break TokenError::Host(anyhow::anyhow!(
                        "the component asked for another token request after a renewal of a token just obtained"
                    ));
                }
                Ok(Step::LogIn(reason)) => break TokenError::Host(anyhow::anyhow!("{reason}")),
            }
        };
        let kept = self.describe(connection, &state)?;
        Err(TokenError::Unusable(Box::new(UnusableToken {
            reason,
            kept,
        })))
    }

    /// Sends a token request the component asked for and has the component
    /// read the answer, following its fallback request when it names one:
    /// the state to store before the token is used, and which renewal
    /// obtained it.
    pub fn fetch(
        &self,
        connection: &Connection,
        fetch: TokenFetch,
        held: Option<&TokenState>,
    ) -> Result<(TokenState, Renewal), TokenError> {
        self.fetch_at(connection, fetch, held)
            .map(|(state, renewal, _)| (state, renewal))
    }

    /// [`Harness::fetch`], with the time the state was obtained at.
    fn fetch_at(
        &self,
        connection: &Connection,
        mut fetch: TokenFetch,
        held: Option<&TokenState>,
    ) -> Result<(TokenState, Renewal, u64), TokenError> {
        for _ in 0..MAX_CHAINED_FETCHES {
            let response = self.http.send(&fetch.request)?;
            let cx = self.context()?;
            let obtained_at = cx.now;
            match connection.took(fetch.renewal, &response, held, &cx)? {
                Ok(state) => return Ok((state, fetch.renewal, obtained_at)),
                Err(refusal) => match refusal.fallback {
                    Some(fallback) => fetch = fallback,
                    None => return Err(TokenError::Connector(refusal.failure)),
                },
            }
        }
        Err(TokenError::Host(anyhow::anyhow!(
            "the component asked for more than {MAX_CHAINED_FETCHES} token requests in a row"
        )))
    }

    /// What a state holds, for showing.
    pub fn describe(
        &self,
        connection: &Connection,
        state: &TokenState,
    ) -> Result<ObtainedToken, TokenError> {
        connection.describe(state)?.map_err(TokenError::Connector)
    }

    /// Starts a browser login: the URL to open, and what finishing it
    /// needs. `state` and `code_verifier` are random unless given.
    pub fn authorization(
        &self,
        config: &str,
        state: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Login, TokenError> {
        self.connection(config)?
            .begin_login(&self.context()?, state, code_verifier, None)?
            .map_err(TokenError::Connector)
    }

    /// Finishes a browser login from the URL the browser was sent back
    /// to: the component checks it and says whether a code exchange follows
    /// (sent here) or the token is already there (the implicit grant).
    ///
    /// Fails with [`TokenError::Unusable`], holding the state to keep, when
    /// the server's answers carry a refresh token but no usable access
    /// token, even after the renewal with it that a call would make.
    pub fn finish_login(
        &self,
        config: &str,
        redirect_url: &str,
        login: &Login,
    ) -> Result<ObtainedToken, TokenError> {
        let connection = self.connection(config)?;
        let cx = self.context()?;
        let step = connection
            .finish_login(redirect_url, login, &cx)?
            .map_err(TokenError::Connector)?;
        let (state, obtained_at) = match step {
            LoginStep::Exchange(fetch) => {
                let (state, _, obtained_at) = self.fetch_at(&connection, fetch, None)?;
                (state, obtained_at)
            }
            LoginStep::Done(state) => (state, cx.now),
        };
        self.usable(&connection, state, obtained_at)
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

    /// The time and fresh random bytes for a call that may build a request.
    pub fn context(&self) -> Result<Context> {
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
