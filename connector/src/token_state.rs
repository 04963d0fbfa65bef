//! The token lifecycle: what a host keeps between calls ([`TokenState`]),
//! and what it must do next for an API call ([`next`], [`took`], [`judge`]).
//!
//! Every rule about tokens lives here — when a token is renewed, with which
//! request, what is kept from an answer, which refusal spends a token and
//! when the configured grant stands in for a refused refresh token — so a
//! host in any language only sends, stores and asks again.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::api_call::{self, Verdict as RetryVerdict};
use crate::config::{Config, Grant, key};
use crate::error::{Failure, Unreadable};
use crate::lifecycle::TokenTypeHint;
use crate::login::{self, Authorization, LoginStep};
use crate::request::{self, Context, Request};
use crate::response::{Response, Token};
use crate::secret::Secret;

/// The longest lifetime a token is taken to have, whatever the server says:
/// a year. An `expires_in` of 1e19 would otherwise keep a token until long
/// after the server forgot it.
pub const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

/// The longest margin before expiry at which a token is renewed.
pub const MAX_RENEWAL_MARGIN_SECS: u64 = 60;

/// What the host keeps for a cache key: the connector's record of a token,
/// encoded, and when the host may forget it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenState {
    /// The record, as text; opaque to the host. Holds secrets.
    pub data: String,
    /// After this time (unix seconds) the state holds nothing usable.
    pub evict_after: Option<u64>,
}

/// The record holds tokens: Debug shows its size only.
impl fmt::Debug for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenState")
            .field("data_len", &self.data.len())
            .field("evict_after", &self.evict_after)
            .finish()
    }
}

/// The version of [`Record`]'s encoding; a state of another version is
/// unknown.
const RECORD_VERSION: u8 = 1;

/// What a state holds, as the connector reads and writes it.
#[derive(Serialize, Deserialize)]
struct Record {
    /// [`RECORD_VERSION`].
    v: u8,
    access_token: String,
    token_type: String,
    /// When the answer arrived, unix seconds.
    obtained_at: u64,
    /// When the token expires, clamped to [`MAX_LIFETIME_SECS`].
    expires_at: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Whether the answer carried a new refresh token, or one of the
    /// answers without a usable access token just before it did.
    #[serde(default)]
    rotated: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    extra: Map<String, Value>,
    /// An API refused the access token, or it was revoked.
    #[serde(default)]
    spent: bool,
    /// Set when the state keeps only the refresh token of answers whose
    /// access token was unusable: why, and how many such answers came in a
    /// row, so that a server that keeps sending them is reported in its
    /// own words instead of being asked again and again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unusable: Option<UnusableAnswers>,
}

/// Answers in a row whose access token could not be used.
#[derive(Serialize, Deserialize)]
struct UnusableAnswers {
    /// What was wrong with the last one ([`Unreadable`]'s members; its
    /// snippet is redacted).
    problem: String,
    location: String,
    status: u16,
    snippet: String,
    /// How many came in a row.
    answers: u32,
}

/// After this many unusable answers in a row, [`next`] reports the last
/// one's fault instead of asking again...
const MAX_UNUSABLE_ANSWERS: u32 = 2;

/// ...until this many seconds after it, when one more attempt is made.
const UNUSABLE_RETRY_AFTER_SECS: u64 = 30;

impl Record {
    fn from_token(token: Token, obtained_at: u64) -> Self {
        Self {
            v: RECORD_VERSION,
            access_token: token.access_token.into_exposed(),
            token_type: token.token_type,
            obtained_at,
            expires_at: token
                .expires_at
                .map(|at| at.min(obtained_at.saturating_add(MAX_LIFETIME_SECS))),
            refresh_token: token.refresh_token.map(Secret::into_exposed),
            rotated: token.refresh_token_rotated,
            scope: token.scope,
            extra: token.extra,
            spent: false,
            unusable: None,
        }
    }

    fn decode(state: &TokenState) -> Result<Self, Failure> {
        // The error's position only: its text may quote a token.
        let record: Record = serde_json::from_str(&state.data).map_err(|e| {
            Failure::UnknownState(format!(
                "the kept token state is unreadable (at line {}, column {}); forget it and obtain a new token",
                e.line(),
                e.column()
            ))
        })?;
        if record.v != RECORD_VERSION {
            return Err(Failure::UnknownState(format!(
                "the kept token state is of version {}, this connector writes version {RECORD_VERSION}; forget it and obtain a new token",
                record.v
            )));
        }
        Ok(record)
    }

    fn encode(&self, default_lifetime: u64) -> TokenState {
        TokenState {
            // Serialising plain strings, numbers and a JSON map cannot fail.
            data: serde_json::to_string(self).unwrap_or_default(),
            evict_after: match self.refresh_token {
                Some(_) => None,
                None => Some(self.expires_at(default_lifetime)),
            },
        }
    }

    /// When the token expires: as the server said, or after the default
    /// lifetime.
    fn expires_at(&self, default_lifetime: u64) -> u64 {
        self.expires_at
            .unwrap_or(self.obtained_at.saturating_add(default_lifetime))
    }

    /// When the token stops being used: a quarter of its lifetime before it
    /// expires, but no earlier than [`MAX_RENEWAL_MARGIN_SECS`] before. A
    /// 30 s token is renewed after 23 s, not on every call as a fixed 60 s
    /// margin would; an hour's token 60 s before it ends.
    fn renew_at(&self, default_lifetime: u64) -> u64 {
        let expires_at = self.expires_at(default_lifetime);
        let lifetime = expires_at.saturating_sub(self.obtained_at);
        expires_at - (lifetime / 4).min(MAX_RENEWAL_MARGIN_SECS)
    }

    /// Whether the access token may be sent now. A token obtained this very
    /// second is used once even if the server gave it no time at all:
    /// otherwise a server issuing already-expired tokens would be asked
    /// again and again.
    fn usable(&self, now: u64, default_lifetime: u64) -> bool {
        !self.spent && (now < self.renew_at(default_lifetime) || now <= self.obtained_at)
    }

    fn token(self) -> Token {
        Token {
            access_token: Secret::new(self.access_token),
            token_type: self.token_type,
            expires_at: self.expires_at,
            refresh_token: self.refresh_token.map(Secret::new),
            refresh_token_rotated: self.rotated,
            scope: self.scope,
            extra: self.extra,
        }
    }
}

/// Which renewal a fetch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The configured grant.
    ConfiguredGrant,
    /// The held refresh token.
    Refresh,
    /// The configured grant after the server refused the held refresh token.
    ConfiguredGrantAfterRefusedRefresh,
    /// A browser login's code exchange.
    CodeExchange,
}

/// A request for the token endpoint, and which renewal it is.
#[derive(Debug, Clone)]
pub struct TokenFetch {
    /// The request to send.
    pub request: Request,
    /// What [`took`] reads the answer as.
    pub renewal: Renewal,
}

/// What the host does next for an API call.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send this: the API request with the token in it.
    Send(Request),
    /// Obtain a token first.
    Fetch(TokenFetch),
    /// A person must log in; why.
    LogIn(String),
}

/// Why [`took`] produced no state.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What went wrong.
    pub failure: Failure,
    /// A request that can still get a token.
    pub fallback: Option<TokenFetch>,
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            fallback: None,
        }
    }
}

/// What the host does with an API's response.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Hand the response to the caller.
    Accept,
    /// Store this state (the used one, spent) and retry once.
    RenewAndRetry(TokenState),
}

/// What to do next for an API call: send it with the held token, fetch a
/// token first, or have a person log in.
pub fn next(
    config: &Config,
    api_request: Request,
    held: Option<&TokenState>,
    cx: &Context,
) -> Result<Step, Failure> {
    let held = held.map(Record::decode).transpose()?;
    match held {
        Some(record) if record.usable(cx.now, config.default_expires_in) => api_call::authorize(
            config,
            api_request,
            &record.token_type,
            &record.access_token,
        )
        .map(Step::Send),
        // The server's last answers carried a refresh token but no usable
        // access token: say what was wrong, rather than ask at once again.
        Some(Record {
            unusable: Some(unusable),
            obtained_at,
            ..
        }) if unusable.answers >= MAX_UNUSABLE_ANSWERS
            && cx.now < obtained_at.saturating_add(UNUSABLE_RETRY_AFTER_SECS) =>
        {
            let at = if unusable.location.is_empty() {
                String::new()
            } else {
                format!(" at {}", unusable.location)
            };
            Err(Failure::Unreadable(Unreadable {
                problem: format!(
                    "{}{at}, in {} answers in a row (the refresh token they sent is kept, and a call after {UNUSABLE_RETRY_AFTER_SECS} s asks again)",
                    unusable.problem, unusable.answers
                ),
                location: String::new(),
                status: unusable.status,
                snippet: unusable.snippet,
            }))
        }
        Some(Record {
            refresh_token: Some(refresh_token),
            ..
        }) => request::refresh_request(config, &Secret::new(refresh_token), cx).map(|request| {
            Step::Fetch(TokenFetch {
                request,
                renewal: Renewal::Refresh,
            })
        }),
        _ => match &config.grant {
            Grant::AuthorizationCode(_) | Grant::Implicit(_) => Ok(Step::LogIn(format!(
                "grant_type `{}` needs a person to log in through the browser, and no refresh token is kept",
                config.grant.name()
            ))),
            _ => token_request(config, cx).map(Step::Fetch),
        },
    }
}

/// The configured grant's request, whatever is held.
pub fn token_request(config: &Config, cx: &Context) -> Result<TokenFetch, Failure> {
    request::token_request(config, cx).map(|request| TokenFetch {
        request,
        renewal: Renewal::ConfiguredGrant,
    })
}

/// Reads the token endpoint's answer to a fetch: the state to store before
/// the token is used. (The refusal is boxed: it carries a whole request.)
pub fn took(
    config: &Config,
    renewal: Renewal,
    response: &Response,
    held: Option<&TokenState>,
    cx: &Context,
) -> Result<TokenState, Box<Refusal>> {
    let held = held
        .map(Record::decode)
        .transpose()
        .map_err(|failure| Box::new(Refusal::from(failure)))?;
    let unusable_before = held
        .as_ref()
        .and_then(|record| record.unusable.as_ref())
        .map_or(0, |unusable| unusable.answers);
    // Answers with no usable access token that rotated the refresh token
    // spent the one a host may still hold (a document's, a form's): the
    // states that follow them say so too, until a usable token is obtained.
    let rotated_before = held
        .as_ref()
        .is_some_and(|record| record.unusable.is_some() && record.rotated);
    let presented = match renewal {
        Renewal::Refresh => held
            .and_then(|record| record.refresh_token)
            .map(Secret::new),
        // The configured refresh token, for the `refresh_token` grant, is
        // assumed by the reader; the others present none.
        _ => None,
    };
    match crate::read_token_response(config, response, cx.now, presented.as_ref()) {
        Ok(token) => {
            let mut record = Record::from_token(token, cx.now);
            record.rotated |= rotated_before;
            Ok(record.encode(config.default_expires_in))
        }
        // The answer's access token is unusable, but it carries a refresh
        // token: keep it (the presented one is spent if the server
        // rotated), as a spent state that the next step renews with it.
        Err(Failure::Unreadable(why))
            if let Some(refresh_token) = crate::response::salvage_refresh_token(response) =>
        {
            let record = Record {
                v: RECORD_VERSION,
                access_token: String::new(),
                token_type: "Bearer".into(),
                obtained_at: cx.now,
                expires_at: Some(cx.now),
                rotated: rotated_before
                    || presented
                        .as_ref()
                        .is_none_or(|presented| presented.expose() != refresh_token.expose()),
                refresh_token: Some(refresh_token.into_exposed()),
                scope: None,
                extra: Map::new(),
                spent: true,
                unusable: Some(UnusableAnswers {
                    problem: why.problem,
                    location: why.location,
                    status: why.status,
                    snippet: why.snippet,
                    answers: unusable_before.saturating_add(1),
                }),
            };
            Ok(record.encode(config.default_expires_in))
        }
        Err(failure) => {
            // The server refused the refresh token itself: the configured
            // grant may still work, when it is one that needs no person and
            // is not that same refresh token again.
            let fallback = renewal == Renewal::Refresh
                && api_call::falls_back_to_grant(&failure)
                && matches!(
                    config.grant,
                    Grant::ClientCredentials | Grant::Password { .. } | Grant::JwtBearer(_)
                );
            let fallback = if fallback {
                match request::token_request(config, cx) {
                    Ok(request) => Some(TokenFetch {
                        request,
                        renewal: Renewal::ConfiguredGrantAfterRefusedRefresh,
                    }),
                    Err(failure) => return Err(Box::new(Refusal::from(failure))),
                }
            } else {
                None
            };
            Err(Box::new(Refusal { failure, fallback }))
        }
    }
}

/// Judges an API's response to a request [`next`] authorized with `used`.
pub fn judge(config: &Config, response: &Response, used: &TokenState, retried: bool) -> Verdict {
    match api_call::judge(config.token_retry_check_level, response, retried) {
        RetryVerdict::RenewTokenAndRetry => match Record::decode(used) {
            Ok(mut record) => {
                record.spent = true;
                Verdict::RenewAndRetry(record.encode(config.default_expires_in))
            }
            Err(_) => Verdict::Accept,
        },
        _ => Verdict::Accept,
    }
}

/// What a state holds.
pub fn describe(state: &TokenState) -> Result<Token, Failure> {
    Record::decode(state).map(Record::token)
}

/// The state after one of its tokens was revoked; `None` when nothing
/// usable is left.
pub fn revoked(
    config: &Config,
    state: &TokenState,
    which: TokenTypeHint,
) -> Result<Option<TokenState>, Failure> {
    let mut record = Record::decode(state)?;
    match which {
        TokenTypeHint::AccessToken => record.spent = true,
        TokenTypeHint::RefreshToken => record.refresh_token = None,
    }
    let left = record.refresh_token.is_some() || !record.spent;
    Ok(left.then(|| record.encode(config.default_expires_in)))
}

/// `document` with the state's refresh token written into it.
pub fn keep_in_document(document: &str, state: &TokenState) -> Result<String, Failure> {
    let record = Record::decode(state)?;
    let refresh_token = record
        .refresh_token
        .ok_or_else(|| Failure::Other("the server issued no refresh token to keep".into()))?;
    // The position only: serde's text may quote the document, secrets and all.
    let mut members: Map<String, Value> = serde_json::from_str(document).map_err(|e| {
        Failure::Other(format!(
            "the configuration is not a JSON object (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    // Only the refresh-token grant (the default) reads the refresh token
    // from the document; written into another grant's, it would be ignored
    // and the user led to think it kept.
    match members.get(key::GRANT_TYPE) {
        None => {}
        Some(Value::String(grant)) if grant == "refresh_token" => {}
        Some(grant) => {
            let grant = grant
                .as_str()
                .map_or_else(|| grant.to_string(), str::to_owned);
            return Err(Failure::Other(format!(
                "grant_type `{}` does not read a refresh token from the configuration, so one written there would go unused: keep the token state in the host's token store instead",
                crate::response::shown(&grant, crate::response::SHORT_TEXT)
            )));
        }
    }
    members.insert(key::REFRESH_TOKEN.into(), Value::String(refresh_token));
    serde_json::to_string_pretty(&members)
        .map_err(|e| Failure::Other(format!("the configuration could not be written: {e}")))
}

/// Where a host listens for a login's redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loopback {
    /// `127.0.0.1` or `::1`.
    pub address: String,
    /// The port; 0 for any.
    pub port: u16,
    /// The redirect's path.
    pub path: String,
}

/// The configured redirect URI as a loopback address to listen on.
pub fn loopback_redirect(config: &Config) -> Result<Loopback, Failure> {
    let redirect = &login_of(config)?.redirect_uri;
    let address = match redirect.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => ip.to_string(),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => ip.to_string(),
        Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
            "127.0.0.1".into()
        }
        _ => {
            return Err(Failure::Other(format!(
                "the redirect URI {redirect} is not a loopback address: to receive the redirect here, set redirect_uri to http://127.0.0.1:PORT/… (RFC 8252 section 7.3)"
            )));
        }
    };
    if redirect.scheme() != "http" {
        return Err(Failure::Other(format!(
            "the redirect URI {redirect} is not plain http: a loopback redirect is received over http://127.0.0.1:PORT/… (RFC 8252 section 7.3)"
        )));
    }
    Ok(Loopback {
        address,
        port: redirect.port().unwrap_or(0),
        path: redirect.path().to_owned(),
    })
}

/// What a login's redirect leads to.
#[derive(Debug, Clone)]
pub enum LoginNext {
    /// Send this code exchange and read it with [`took`].
    Exchange(TokenFetch),
    /// The implicit grant's state, complete.
    Done(TokenState),
}

/// Starts a browser login; `port` fills in a redirect URI that names none.
pub fn begin_login(
    config: &Config,
    cx: &Context,
    state: Option<&str>,
    code_verifier: Option<&str>,
    port: Option<u16>,
) -> Result<Authorization, Failure> {
    let configured = login_of(config)?.redirect_uri.clone();
    // Only a loopback redirect takes the host's port (RFC 8252 section 7.3).
    let redirect_uri = match port {
        Some(port) if configured.port().is_none() && loopback_redirect(config).is_ok() => {
            let mut with_port = configured;
            // Only URLs without a host refuse a port; this one has a host.
            let _ = with_port.set_port(Some(port));
            with_port
        }
        _ => configured,
    };
    login::authorization_url(
        &with_redirect_uri(config, &redirect_uri),
        cx,
        state,
        code_verifier,
    )
}

/// Finishes a login from the URL the browser came back to.
pub fn finish_login(
    config: &Config,
    redirect_url: &str,
    login: &Authorization,
    cx: &Context,
) -> Result<LoginNext, Failure> {
    let configured = &login_of(config)?.redirect_uri;
    let used = Url::parse(&login.redirect_uri)
        .ok()
        .filter(|used| {
            // The configured URI, or it with the port the host chose.
            let mut without_port = used.clone();
            let _ = without_port.set_port(None);
            used == configured
                || (configured.port().is_none()
                    && loopback_redirect(config).is_ok()
                    && &without_port == configured)
        })
        .ok_or_else(|| {
            Failure::BadRedirect(format!(
                "the login was started for the redirect URI {}, not the configured one",
                login.redirect_uri
            ))
        })?;
    let config = with_redirect_uri(config, &used);
    match login::finish_login(
        &config,
        redirect_url,
        &login.state,
        login.code_verifier.as_deref(),
        cx,
    )? {
        LoginStep::Exchange(request) => Ok(LoginNext::Exchange(TokenFetch {
            request,
            renewal: Renewal::CodeExchange,
        })),
        LoginStep::Done(token) => Ok(LoginNext::Done(
            Record::from_token(token, cx.now).encode(config.default_expires_in),
        )),
    }
}

fn login_of(config: &Config) -> Result<&crate::config::UserLogin, Failure> {
    config.user_login().ok_or_else(|| {
        Failure::InvalidConfig(vec![crate::FieldError::new(
            key::GRANT_TYPE,
            format!("grant_type `{}` has no browser login", config.grant.name()),
            "choose authorization_code (or implicit) for a browser login",
        )])
    })
}

/// The configuration with another redirect URI (the configured one with a
/// port chosen at run time).
fn with_redirect_uri(config: &Config, redirect_uri: &Url) -> Config {
    let mut config = config.clone();
    if let Grant::AuthorizationCode(login) | Grant::Implicit(login) = &mut config.grant {
        login.redirect_uri = redirect_uri.clone();
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(&format!(
            r#"{{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"app","client_secret":"s3cret"{extra}}}"#
        ))
        .expect("valid")
    }

    /// A public client's browser login coming back to `redirect_uri`.
    fn login_config(redirect_uri: &str) -> Config {
        Config::parse(&format!(
            r#"{{"grant_type":"authorization_code","token_url":"https://as.example/token","client_id":"app","client_auth":"none",
                "authorization_url":"https://as.example/authorize","redirect_uri":"{redirect_uri}"}}"#
        ))
        .expect("valid")
    }

    /// The state after a first answer at time 1: access token `at-1`,
    /// refresh token `rt-1`.
    fn first_answer(config: &Config) -> TokenState {
        took(
            config,
            Renewal::ConfiguredGrant,
            &json(
                200,
                r#"{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1"}"#,
            ),
            None,
            &cx(1),
        )
        .expect("a state")
    }

    fn cx(now: u64) -> Context {
        Context {
            now,
            nonce: vec![9; 32],
        }
    }

    fn api() -> Request {
        Request {
            method: "GET".into(),
            url: "https://api.example/v1".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn json(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn fetch(step: Step) -> TokenFetch {
        match step {
            Step::Fetch(fetch) => fetch,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    fn sent(step: Step) -> Request {
        match step {
            Step::Send(request) => request,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    fn form(request: &Request) -> String {
        String::from_utf8(request.body.clone()).expect("UTF-8")
    }

    #[test]
    fn a_token_is_fetched_used_and_renewed_a_quarter_of_its_lifetime_early() {
        let config = config("");
        let first = fetch(next(&config, api(), None, &cx(1000)).expect("step"));
        assert_eq!(first.renewal, Renewal::ConfiguredGrant);
        assert!(form(&first.request).starts_with("grant_type=client_credentials"));
        let state = took(
            &config,
            first.renewal,
            &json(
                200,
                r#"{"access_token":"at-1","token_type":"Bearer","expires_in":40}"#,
            ),
            None,
            &cx(1000),
        )
        .expect("a state");
        assert_eq!(state.evict_after, Some(1040), "no refresh token: evictable");
        for now in [1000, 1029] {
            let request = sent(next(&config, api(), Some(&state), &cx(now)).expect("step"));
            assert_eq!(request.header("Authorization"), Some("Bearer at-1"));
        }
        // 40 s lifetime: renewed 10 s before the end.
        let renewal = fetch(next(&config, api(), Some(&state), &cx(1030)).expect("step"));
        assert_eq!(renewal.renewal, Renewal::ConfiguredGrant);
    }

    #[test]
    fn lifetimes_are_defaulted_and_clamped() {
        let config = config(r#","default_expires_in":100"#);
        let read = |body: &str| {
            took(
                &config,
                Renewal::ConfiguredGrant,
                &json(200, body),
                None,
                &cx(1000),
            )
            .expect("a state")
        };
        let unstated = read(r#"{"access_token":"a","token_type":"Bearer"}"#);
        assert_eq!(unstated.evict_after, Some(1100), "the configured default");
        assert!(matches!(
            next(&config, api(), Some(&unstated), &cx(1074)),
            Ok(Step::Send(_))
        ));
        assert!(matches!(
            next(&config, api(), Some(&unstated), &cx(1075)),
            Ok(Step::Fetch(_))
        ));
        let absurd = read(r#"{"access_token":"a","token_type":"Bearer","expires_in":1e19}"#);
        assert_eq!(absurd.evict_after, Some(1000 + MAX_LIFETIME_SECS));
        assert_eq!(
            describe(&absurd).expect("known").expires_at,
            Some(1000 + MAX_LIFETIME_SECS)
        );
        // Expired at issue (zero): used once, in the second it arrived,
        // then renewed. A negative lifetime is unknown: the default applies.
        let expired = read(r#"{"access_token":"a","token_type":"Bearer","expires_in":0}"#);
        assert!(matches!(
            next(&config, api(), Some(&expired), &cx(1000)),
            Ok(Step::Send(_))
        ));
        assert!(matches!(
            next(&config, api(), Some(&expired), &cx(1001)),
            Ok(Step::Fetch(_))
        ));
        let negative = read(r#"{"access_token":"a","token_type":"Bearer","expires_in":-5}"#);
        assert_eq!(negative.evict_after, Some(1100));
    }

    #[test]
    fn the_refresh_token_renews_and_a_rotated_one_is_kept() {
        let config = config("");
        let state = took(
            &config,
            Renewal::ConfiguredGrant,
            &json(200, r#"{"access_token":"at-1","token_type":"Bearer","expires_in":60,"refresh_token":"rt-1"}"#),
            None,
            &cx(1000),
        )
        .expect("a state");
        assert_eq!(state.evict_after, None, "a refresh token keeps it useful");
        let refresh = fetch(next(&config, api(), Some(&state), &cx(2000)).expect("step"));
        assert_eq!(refresh.renewal, Renewal::Refresh);
        assert!(form(&refresh.request).contains("refresh_token=rt-1"));
        // The server rotates: the new refresh token is kept.
        let rotated = took(
            &config,
            refresh.renewal,
            &json(
                200,
                r#"{"access_token":"at-2","token_type":"Bearer","refresh_token":"rt-2"}"#,
            ),
            Some(&state),
            &cx(2000),
        )
        .expect("a state");
        let token = describe(&rotated).expect("known");
        assert_eq!(
            token.refresh_token.map(Secret::into_exposed).as_deref(),
            Some("rt-2")
        );
        assert!(token.refresh_token_rotated);
        // The server issues none: the presented one is kept.
        let kept = took(
            &config,
            Renewal::Refresh,
            &json(200, r#"{"access_token":"at-3","token_type":"Bearer"}"#),
            Some(&rotated),
            &cx(3000),
        )
        .expect("a state");
        let token = describe(&kept).expect("known");
        assert_eq!(
            token.refresh_token.map(Secret::into_exposed).as_deref(),
            Some("rt-2")
        );
        assert!(!token.refresh_token_rotated);
    }

    #[test]
    fn a_refused_refresh_token_falls_back_to_the_grant_only_where_it_can_work() {
        let refused = json(400, r#"{"error":"invalid_grant"}"#);
        let held = took(
            &config(""),
            Renewal::ConfiguredGrant,
            &json(
                200,
                r#"{"access_token":"a","token_type":"Bearer","refresh_token":"rt-1"}"#,
            ),
            None,
            &cx(1),
        )
        .expect("a state");
        let refusal = took(&config(""), Renewal::Refresh, &refused, Some(&held), &cx(2))
            .expect_err("refused");
        let fallback = refusal.fallback.expect("client credentials can still work");
        assert_eq!(
            fallback.renewal,
            Renewal::ConfiguredGrantAfterRefusedRefresh
        );
        assert!(form(&fallback.request).starts_with("grant_type=client_credentials"));
        // Another refusal: the client itself is refused, no fallback.
        let refusal = took(
            &config(""),
            Renewal::Refresh,
            &json(401, r#"{"error":"invalid_client"}"#),
            Some(&held),
            &cx(2),
        )
        .expect_err("refused");
        assert!(refusal.fallback.is_none());
        // A login grant cannot fall back without a person.
        let login = login_config("http://127.0.0.1:5000/cb");
        let refusal =
            took(&login, Renewal::Refresh, &refused, Some(&held), &cx(2)).expect_err("refused");
        assert!(refusal.fallback.is_none());
        assert!(matches!(
            next(&login, api(), None, &cx(2)),
            Ok(Step::LogIn(_))
        ));
    }

    #[test]
    fn odd_members_cost_neither_the_token_nor_a_rotated_refresh_token() {
        let config = config(r#","scope":"read","default_expires_in":100"#);
        let read = |body: &str| {
            let response = Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.as_bytes().to_vec(),
            };
            took(
                &config,
                Renewal::ConfiguredGrant,
                &response,
                None,
                &cx(1000),
            )
            .map_err(|refusal| refusal.failure)
            .and_then(|state| describe(&state))
            .expect("kept")
        };
        let listed = read(r#"{"access_token":"a","token_type":"Bearer","scope":["read","write"]}"#);
        assert_eq!(listed.scope.as_deref(), Some("read write"));
        let typed = read(r#"{"access_token":"a","token_type":7}"#);
        assert_eq!(typed.token_type, "Bearer");
        for lifetime in ["1e400", "\"NaN\"", "-5"] {
            let token = read(&format!(
                r#"{{"access_token":"a","token_type":"Bearer","expires_in":{lifetime},"refresh_token":"rt-2"}}"#
            ));
            assert_eq!(
                token.expires_at, None,
                "{lifetime}: unknown, the default applies"
            );
            assert_eq!(
                token.refresh_token.map(Secret::into_exposed).as_deref(),
                Some("rt-2")
            );
        }
        let huge = read(r#"{"access_token":"a","token_type":"Bearer","expires_in":1e19}"#);
        assert_eq!(
            huge.expires_at,
            Some(1000 + MAX_LIFETIME_SECS),
            "clamped to a year"
        );
    }

    #[test]
    fn a_new_refresh_token_is_kept_even_when_the_access_token_is_unusable() {
        let config = config("");
        let held = first_answer(&config);
        // The server rotated rt-1 into rt-2, but its access token is not a string.
        let broken = json(
            200,
            r#"{"access_token":{"v":"at-2"},"token_type":"Bearer","refresh_token":"rt-2"}"#,
        );
        let state = took(&config, Renewal::Refresh, &broken, Some(&held), &cx(2)).expect("kept");
        let token = describe(&state).expect("known");
        assert_eq!(
            token.refresh_token.map(Secret::into_exposed).as_deref(),
            Some("rt-2")
        );
        assert!(token.refresh_token_rotated);
        // Nothing to use: the next step renews with it at once.
        let renewal = fetch(next(&config, api(), Some(&state), &cx(2)).expect("step"));
        assert_eq!(renewal.renewal, Renewal::Refresh);
        assert!(form(&renewal.request).contains("refresh_token=rt-2"));
    }

    #[test]
    fn a_rotation_in_an_unusable_answer_shows_in_the_states_that_follow_it() {
        let config = config("");
        let held = first_answer(&config);
        // rt-1 is rotated into rt-2 by an answer whose access token is unusable.
        let broken = |refresh_token: &str| {
            json(
                200,
                &format!(
                    r#"{{"access_token":5,"token_type":"Bearer","refresh_token":"{refresh_token}"}}"#
                ),
            )
        };
        let unusable = took(
            &config,
            Renewal::Refresh,
            &broken("rt-2"),
            Some(&held),
            &cx(2),
        )
        .expect("kept");
        let rotated = |state: &TokenState| describe(state).expect("known").refresh_token_rotated;
        // Another such answer, repeating rt-2, and then a good one keeping
        // it: rt-1, which a host without a store may still hold, is spent.
        let again = took(
            &config,
            Renewal::Refresh,
            &broken("rt-2"),
            Some(&unusable),
            &cx(2),
        )
        .expect("kept");
        assert!(rotated(&again));
        let good = json(200, r#"{"access_token":"at-3","token_type":"Bearer"}"#);
        let state = took(&config, Renewal::Refresh, &good, Some(&again), &cx(2)).expect("a token");
        let token = describe(&state).expect("known");
        assert_eq!(
            token.refresh_token.map(Secret::into_exposed).as_deref(),
            Some("rt-2")
        );
        assert!(token.refresh_token_rotated);
        // After a usable token the flag is about one answer again.
        let later = took(&config, Renewal::Refresh, &good, Some(&state), &cx(3)).expect("a token");
        assert!(!rotated(&later));
    }

    #[test]
    fn a_server_that_keeps_sending_unusable_tokens_is_reported_in_its_own_words() {
        let config = config("");
        let mut state = first_answer(&config);
        // Each answer rotates the refresh token but brings no usable
        // access token.
        for (n, now) in [(2, 2), (3, 2)] {
            let broken = json(
                200,
                &format!(r#"{{"access_token":7,"token_type":"Bearer","refresh_token":"rt-{n}"}}"#),
            );
            state = took(&config, Renewal::Refresh, &broken, Some(&state), &cx(now)).expect("kept");
        }
        let kept = describe(&state).expect("known").refresh_token;
        assert_eq!(kept.map(Secret::into_exposed).as_deref(), Some("rt-3"));
        // After two such answers the next step says what is wrong...
        let Err(Failure::Unreadable(why)) = next(&config, api(), Some(&state), &cx(3)) else {
            panic!("the server's fault is reported");
        };
        let message = why.to_string();
        assert!(message.contains("`access_token`"), "{message}");
        assert!(message.contains("is not a string at access_token, in 2 answers in a row (the refresh token they sent is kept, and a call after 30 s asks again); the body starts"), "{message}");
        assert!(!message.contains("rt-3"), "{message}");
        // ...until the pause is over, when it asks once more.
        let renewal = fetch(next(&config, api(), Some(&state), &cx(32)).expect("step"));
        assert!(form(&renewal.request).contains("refresh_token=rt-3"));
        // A good answer ends the count.
        let good = json(
            200,
            r#"{"access_token":"at-4","token_type":"Bearer","refresh_token":"rt-4","expires_in":600}"#,
        );
        let state = took(&config, Renewal::Refresh, &good, Some(&state), &cx(32)).expect("a token");
        assert!(matches!(
            next(&config, api(), Some(&state), &cx(33)),
            Ok(Step::Send(_))
        ));
        assert!(!state.data.contains("unusable"));
    }

    #[test]
    fn an_apis_refusal_spends_the_token_and_the_next_step_renews() {
        let config = config("");
        let state = took(
            &config,
            Renewal::ConfiguredGrant,
            &json(
                200,
                r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#,
            ),
            None,
            &cx(1000),
        )
        .expect("a state");
        let mut refused = json(401, "");
        refused.headers.push((
            "WWW-Authenticate".into(),
            r#"Bearer error="invalid_token""#.into(),
        ));
        let Verdict::RenewAndRetry(spent) = judge(&config, &refused, &state, false) else {
            panic!("an invalid_token refusal renews");
        };
        assert!(matches!(
            next(&config, api(), Some(&spent), &cx(1001)),
            Ok(Step::Fetch(_))
        ));
        assert!(matches!(
            judge(&config, &refused, &state, true),
            Verdict::Accept
        ));
        assert!(matches!(
            judge(&config, &json(200, "{}"), &state, false),
            Verdict::Accept
        ));
    }

    #[test]
    fn foreign_states_are_refused_clearly() {
        let config = config("");
        for data in ["", "not json", r#"{"v":99,"access_token":"a"}"#] {
            let state = TokenState {
                data: data.into(),
                evict_after: None,
            };
            let error = next(&config, api(), Some(&state), &cx(1)).expect_err("unknown");
            assert!(matches!(error, Failure::UnknownState(_)), "{error}");
            assert!(error.to_string().contains("forget it"), "{error}");
        }
    }

    #[test]
    fn revocation_spends_or_drops_and_the_document_keeps_the_refresh_token() {
        let config = config("");
        let state = first_answer(&config);
        let spent = revoked(&config, &state, TokenTypeHint::AccessToken)
            .expect("known")
            .expect("the refresh token is left");
        assert!(matches!(
            next(&config, api(), Some(&spent), &cx(1)),
            Ok(Step::Fetch(_))
        ));
        assert!(
            revoked(&config, &spent, TokenTypeHint::RefreshToken)
                .expect("known")
                .is_none()
        );
        let document = keep_in_document(
            r#"{"grant_type":"refresh_token","client_id":"app"}"#,
            &state,
        )
        .expect("written");
        let document: Value = serde_json::from_str(&document).expect("JSON");
        assert_eq!(document["refresh_token"], "rt-1");
        assert_eq!(document["client_id"], "app");
        assert!(!format!("{state:?}").contains("rt-1"));
        // The default grant reads it too; another grant would ignore it.
        assert!(keep_in_document(r#"{"client_id":"app"}"#, &state).is_ok());
        for other in [r#"{"grant_type":"password"}"#, r#"{"grant_type":7}"#] {
            let Err(Failure::Other(why)) = keep_in_document(other, &state) else {
                panic!("{other}: kept where it would go unused");
            };
            assert!(why.contains("would go unused"), "{why}");
            assert!(!why.contains("rt-1"), "{why}");
        }
    }

    #[test]
    fn a_login_on_a_chosen_port_comes_back_to_it() {
        let config = login_config("http://127.0.0.1/callback");
        let listen = loopback_redirect(&config).expect("loopback");
        assert_eq!(
            (listen.address.as_str(), listen.port, listen.path.as_str()),
            ("127.0.0.1", 0, "/callback")
        );
        let login = begin_login(&config, &cx(1), None, None, Some(41234)).expect("login");
        assert_eq!(login.redirect_uri, "http://127.0.0.1:41234/callback");
        assert!(
            login
                .url
                .contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A41234%2Fcallback")
        );
        let redirect = format!(
            "http://127.0.0.1:41234/callback?code=c-1&state={}",
            login.state
        );
        let LoginNext::Exchange(exchange) =
            finish_login(&config, &redirect, &login, &cx(2)).expect("finished")
        else {
            panic!("a code exchange follows");
        };
        assert_eq!(exchange.renewal, Renewal::CodeExchange);
        assert!(
            form(&exchange.request)
                .contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A41234%2Fcallback")
        );
        // A login record pointing elsewhere is not this configuration's.
        let mut elsewhere = login.clone();
        elsewhere.redirect_uri = "http://127.0.0.1:41234/other".into();
        assert!(matches!(
            finish_login(&config, &redirect, &elsewhere, &cx(2)),
            Err(Failure::BadRedirect(_))
        ));
        let remote = login_config("https://app.example/callback");
        let error = loopback_redirect(&remote).expect_err("not loopback");
        assert!(
            error.to_string().contains("not a loopback address"),
            "{error}"
        );
        // A port is the loopback's business only (RFC 8252 section 7.3).
        let elsewhere = begin_login(&remote, &cx(1), None, None, Some(41234)).expect("login");
        assert_eq!(elsewhere.redirect_uri, "https://app.example/callback");
    }
}
