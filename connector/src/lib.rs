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
///
/// No failure quotes a secret the connection holds (its client secret,
/// password, refresh tokens, key passwords, credential headers), however
/// the server echoes it back.
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
    let mut secrets = config.known_secrets();
    secrets.add_secret(presented);
    let mut token =
        response::read_token_response(response, now, presented.or(configured), &secrets)?;
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

    /// The failure `read_token_response` reports for a 500 page with this
    /// body, as the user reads it.
    fn shown_for_page(config: &Config, presented: Option<&Secret>, page: &str) -> String {
        let response = Response {
            status: 500,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: page.as_bytes().to_vec(),
        };
        read_token_response(config, &response, 0, presented)
            .expect_err("a page is no token")
            .to_string()
    }

    fn password_config(client_secret: &str, password: &str) -> Config {
        Config::parse(
            &serde_json::json!({
                "grant_type": "password",
                "token_url": "https://as.example/token",
                "client_id": "app",
                "client_secret": client_secret,
                "client_auth": "body",
                "username": "alice",
                "password": password,
            })
            .to_string(),
        )
        .expect("valid")
    }

    #[test]
    fn a_page_echoing_the_request_shows_none_of_the_connections_secrets() {
        let config = password_config("hunter2x", "Tr0ub4dor");
        for (page, kept) in [
            (
                "<p>invalid credentials for alice (Tr0ub4dor)</p>",
                "invalid credentials for alice ([redacted])",
            ),
            (
                "<p>client secret 'hunter2x' is wrong</p>",
                "client secret '[redacted]' is wrong",
            ),
            (
                "<pre>client_secret = hunter2x</pre>",
                "client_secret = [redacted]",
            ),
        ] {
            let shown = shown_for_page(&config, None, page);
            assert!(!shown.contains("hunter2x"), "{shown}");
            assert!(!shown.contains("Tr0ub4dor"), "{shown}");
            assert!(shown.contains(kept), "{shown}");
        }
    }

    #[test]
    fn echoed_secrets_are_redacted_encoded_too() {
        let config = password_config("hunter+x y", "pa\"ss\\word");
        for page in [
            // Form-encoded, as the body carried them.
            "echo: client_secret%3Dhunter%2Bx+y%26password%3Dpa%22ss%5Cword",
            "you sent hunter%2Bx+y and pa%22ss%5Cword",
            // Percent-encoded, lower-case hex and %20 for the space.
            "you sent hunter%2bx%20y",
            // As JSON writes them.
            r#"{"you_sent": ["hunter+x y", "pa\"ss\\word"],}"#,
        ] {
            let shown = shown_for_page(&config, None, page);
            for secret in ["hunter", "ss%5Cword", "pa\\\"ss", "ss\\\\word"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        // The Basic credentials, as an echoed `Authorization` header shows them.
        let basic = Config::parse(
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"app","client_secret":"hunter2x"}"#,
        )
        .expect("valid");
        let header = crate::basic_authorization("app", "hunter2x");
        let shown = shown_for_page(&basic, None, &format!("you sent {header}"));
        assert!(
            !shown.contains(header.trim_start_matches("Basic ")),
            "{shown}"
        );
    }

    #[test]
    fn every_secret_the_connection_holds_is_redacted_by_value() {
        let config = Config::parse(
            &serde_json::json!({
                "grant_type": "refresh_token",
                "token_url": "https://as.example/token",
                "client_id": "app",
                "client_auth": "private_key_jwt",
                "refresh_token": "configured-rt",
                "client_assertion": {
                    "header": {"alg": "HS256"},
                    "shared_secret": "a shared secret of thirty-two bytes!",
                },
                "extra_headers": {"X-Api-Key": "key-4711", "Accept-Language": "en"},
                "extra_body": {"tenant_secret": "tenant-0815"},
            })
            .to_string(),
        )
        .expect("valid");
        let page = "rt configured-rt, held presented-rt, key key-4711, tenant tenant-0815, \
                    secret a shared secret of thirty-two bytes!, language en";
        let shown = shown_for_page(&config, Some(&Secret::new("presented-rt")), page);
        for secret in [
            "configured-rt",
            "presented-rt",
            "key-4711",
            "tenant-0815",
            "thirty-two",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("language en"),
            "a header that holds no credential is kept: {shown}"
        );

        let encrypted = Config::parse(
            &serde_json::json!({
                "grant_type": "jwt_bearer",
                "token_url": "https://as.example/token",
                "client_auth": "none",
                "jwt": {
                    "header": {"alg": "RS256"}, "issuer": "i", "subject": "s",
                    "private_key": include_str!("../testdata/rsa-pkcs8-encrypted.pem"),
                    "private_key_password": "correct horse",
                },
            })
            .to_string(),
        )
        .expect("valid");
        let shown = shown_for_page(&encrypted, None, "the key password is correct horse");
        assert!(!shown.contains("correct horse"), "{shown}");
    }

    #[test]
    fn short_secrets_are_redacted_as_whole_words_only() {
        let config = password_config("hunter2x", "abc");
        let shown = shown_for_page(&config, None, "password abc; abcdef and xabc stay");
        assert!(shown.contains("password [redacted];"), "{shown}");
        assert!(shown.contains("abcdef and xabc stay"), "{shown}");
    }

    #[test]
    fn a_secret_cut_by_the_snippets_end_shows_no_part_of_itself() {
        let config = password_config("hunter2x-and-a-long-tail", "Tr0ub4dor");
        for offset in 185..200 {
            let page = format!("{}hunter2x-and-a-long-tail", "x ".repeat(offset / 2));
            let shown = shown_for_page(&config, None, &page);
            assert!(!shown.contains("hunter"), "{offset}: {shown}");
        }
    }

    #[test]
    fn an_oauth_error_quoting_a_secret_shows_it_redacted() {
        let config = password_config("hunter2x", "Tr0ub4dor");
        let response = Response {
            status: 401,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"error":"invalid_client","error_description":"secret hunter2x does not match","error_uri":"https://as.example/e?p=Tr0ub4dor"}"#.to_vec(),
        };
        let shown = read_token_response(&config, &response, 0, None)
            .expect_err("refused")
            .to_string();
        assert!(!shown.contains("hunter2x"), "{shown}");
        assert!(!shown.contains("Tr0ub4dor"), "{shown}");
        assert!(
            shown.contains("secret [redacted] does not match"),
            "{shown}"
        );
    }
}
