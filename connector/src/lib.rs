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
//! let request = connector::token_request(&config, &Context { now: 1_700_000_000, nonce: vec![] });
//! assert_eq!(request.method, "POST");
//!
//! // … the host sends `request` and receives:
//! let response = Response {
//!     status: 200,
//!     headers: vec![("Content-Type".into(), "application/json".into())],
//!     body: br#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#.to_vec(),
//! };
//! let token = connector::read_token_response(&response, 1_700_000_001).expect("token");
//! assert_eq!(token.expires_at, Some(1_700_000_061));
//! ```

mod client_auth;
mod config;
mod error;
mod request;
mod response;
mod schema;
mod secret;

// The generated canonical-ABI bindings use `unsafe`; no hand-written code does.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;

pub use client_auth::basic_authorization;
pub use config::{ClientAuthMethod, ClientCredentials, Config, FieldError, Grant, RetryCheckLevel};
pub use error::{Failure, OAuthError, Unreadable};
pub use request::{Context, Request, refresh_request, token_request};
pub use response::{Response, Token, read_token_response};
pub use schema::schema;
pub use secret::Secret;

/// Every problem in a configuration document; empty when it can be used.
pub fn validate(document: &str) -> Vec<FieldError> {
    Config::parse(document).err().unwrap_or_default()
}
