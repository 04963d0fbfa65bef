//! The host side of the OAuth connector: loads the connector component in
//! wasmtime, performs its HTTP requests over real, verified TLS, and runs an
//! embedded authorization server for the demo and the tests.
//!
//! The harness holds no OAuth rule of its own: the component builds every
//! request and reads every response.

pub mod bench;
pub mod browser;
pub mod component;
pub mod demo;
pub mod files;
pub mod form;
pub mod harness;
pub mod http_client;
pub mod server;
pub mod tokens;

pub use component::ConnectorHost;
pub use harness::{Harness, ObtainedToken, Redacted, TokenError};
pub use http_client::{HttpClient, HttpSettings};
pub use server::{AuthorizationServer, ServerOptions};
