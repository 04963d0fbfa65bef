//! The OAuth 2.0 client connector: sans-IO logic that builds the requests an
//! integration engine sends to an authorization server and reads the
//! responses it receives.
//!
//! Nothing here opens a socket, reads a clock or touches a file. The caller
//! passes the time (`now`, unix seconds) and random bytes, sends the
//! [`Request`]s and hands back the [`Response`]s. The same code runs natively
//! (unit tests, benchmarks) and as the WebAssembly component that hosts load
//! through the `oauth2:connector` WIT package.
//!
//! ```
//! use connector::{Config, Context, Response};
//!
//! let config = Config::parse(r#"{
//!     "grant_type": "client_credentials",
//!     "token_url": "https://as.example.com/token",
//!     "client_id": "app",
//!     "client_secret": "s3cret"
//! }"#).expect("valid configuration");
//! let request = connector::token_request(&config, &Context { now: 1_700_000_000, nonce: vec![7; 32] })
//!     .expect("a request");
//! assert_eq!(request.method, "POST");
//!
//! // … the host sends `request` and receives:
//! let response = Response {
//!     status: 200,
//!     headers: vec![("Content-Type".into(), "application/json".into())],
//!     body: br#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#.to_vec(),
//! };
//! let token = connector::read_token_response(&config, &response, 1_700_000_001, None).expect("token");
//! assert_eq!(token.expires_at, Some(1_700_000_061));
//! ```

// The schema is one `json!` literal, deeper than the default limit allows.
#![recursion_limit = "256"]

mod api_call;
mod challenge;
mod client_auth;
mod config;
mod error;
mod jwt;
mod layers;
mod lifecycle;
mod login;
mod request;
mod response;
mod schema;
mod secret;
pub mod token_state;

// The generated canonical-ABI bindings use `unsafe`; no hand-written code does.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;

pub use api_call::{Verdict, authorize, challenges, falls_back_to_grant, judge, token_cache_key};
pub use challenge::{Challenge, parse_challenges};
pub use client_auth::basic_authorization;
pub use config::{
    Assertion, Client, ClientAuth, Config, FieldError, Grant, Pkce, RetryCheckLevel, UserLogin,
};
pub use error::{Failure, OAuthError, Unreadable};
pub use layers::merge_layers;
pub use lifecycle::{
    Introspection, TokenTypeHint, introspection_request, read_introspection_response,
    read_revocation_response, revocation_request,
};
pub use login::{
    Authorization, LoginStep, authorization_url, finish_login, read_implicit_redirect,
    read_redirect,
};
pub use request::{
    Context, JWT_BEARER_GRANT, JWT_CLIENT_ASSERTION, Request, code_exchange_request,
    refresh_request, token_request,
};
pub use response::{Response, Token};
pub use schema::schema;
pub use secret::Secret;
pub use token_state::TokenState;

/// Every problem in a configuration document; empty when it can be used.
///
/// Beyond parsing, each signing key signs a throwaway message, so a key
/// that parses but cannot sign is reported here rather than at run time.
pub fn validate(document: &str) -> Vec<FieldError> {
    open(document).err().unwrap_or_default()
}

/// Parses a configuration document and proves that its signing keys sign:
/// everything [`validate`] checks, keeping the result. The keys stay parsed
/// inside the returned configuration (and its clones), so a caller that
/// keeps it signs later assertions without loading a key again.
pub fn open(document: &str) -> Result<Config, Vec<FieldError>> {
    let config = Config::parse(document)?;
    let problems: Vec<FieldError> = config
        .signing_keys()
        .into_iter()
        .filter_map(|(field, key)| {
            key.probe().err().map(|problem| FieldError {
                field: format!("{field}.private_key"),
                message: problem.message,
                fix: problem.fix,
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Reads a token endpoint response received at `now` (unix seconds).
///
/// `presented` is the refresh token the request sent (for a refresh
/// request); for the `refresh_token` grant the configured one is assumed.
/// The token always carries the refresh token to keep: the server's new
/// one, or the presented one when the server issued none.
pub fn read_token_response(
    config: &Config,
    response: &Response,
    now: u64,
    presented: Option<&Secret>,
) -> Result<Token, Failure> {
    let configured = match &config.grant {
        Grant::RefreshToken { refresh_token } => Some(refresh_token),
        _ => None,
    };
    let mut token = response::read_token_response(response, now, presented.or(configured))?;
    // RFC 6749 section 5.1: a server leaves `scope` out when it granted
    // exactly what was requested.
    if token.scope.is_none() {
        token.scope = config.scope.clone();
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_granted_scope_is_the_servers_or_else_the_requested_one() {
        let config = Config::parse(
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read write"}"#,
        )
        .expect("valid");
        let response = |body: &str| Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        };
        let granted = |body: &str| {
            read_token_response(&config, &response(body), 0, None)
                .expect("token")
                .scope
        };
        assert_eq!(
            granted(r#"{"access_token":"a","token_type":"Bearer"}"#).as_deref(),
            Some("read write"),
            "left out: exactly what was requested"
        );
        assert_eq!(
            granted(r#"{"access_token":"a","token_type":"Bearer","scope":"read"}"#).as_deref(),
            Some("read"),
            "narrowed: reported, not an error"
        );
    }
}
