//! The host side of the OAuth connector: loads the connector component in
//! wasmtime ([`component`]), performs its HTTP requests over real, verified
//! TLS ([`http_client`], [`browser`]), runs its token loop ([`driver`]) and
//! keeps its token states ([`stores`]).
//!
//! The host holds no OAuth rule of its own: the component builds every
//! request, reads every response and decides the token lifecycle. The
//! `oauth-harness` CLI and the embedded authorization server are crates of
//! their own.

pub mod browser;
pub mod component;
pub mod driver;
pub mod files;
pub mod harness;
pub mod http_client;
pub mod stores;

pub use component::{ConnectorHost, ObtainedToken, Redacted, TokenState};
pub use harness::{Harness, TokenError};
pub use http_client::{HttpClient, HttpSettings};

/// Locks a mutex, also after another thread panicked while holding it: the
/// data it guards (caches, kept instances) stays consistent between
/// statements, so a panic elsewhere is no reason to stop serving.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
