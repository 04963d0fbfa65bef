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
pub mod driver;
pub mod files;
pub mod form;
pub mod harness;
pub mod http_client;
pub mod server;
pub mod stores;

pub use component::{ConnectorHost, ObtainedToken, Redacted, TokenState};
pub use harness::{Harness, TokenError};
pub use http_client::{HttpClient, HttpSettings};
pub use server::{AuthorizationServer, ServerOptions};

/// Locks a mutex, also after another thread panicked while holding it: the
/// data it guards (caches, kept instances) stays consistent between
/// statements, so a panic elsewhere is no reason to stop serving.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
