//! Helpers shared by the end-to-end tests: a loaded component, servers and
//! configuration documents.

use std::sync::OnceLock;

use host_harness::server::{RegisteredClient, TEST_CLIENTS};
use host_harness::{AuthorizationServer, ConnectorHost, Harness, HttpSettings, ServerOptions};
use serde_json::{Value, json};

/// The embedded connector component, compiled once for the whole test
/// binary: compiling is the slow part, while every call still gets a fresh
/// instance in a fresh store.
pub fn connector() -> ConnectorHost {
    static COMPILED: OnceLock<ConnectorHost> = OnceLock::new();
    COMPILED
        .get_or_init(|| ConnectorHost::embedded().expect("the embedded component loads"))
        .clone()
}

/// A plain-HTTP embedded server.
pub fn http_server() -> AuthorizationServer {
    AuthorizationServer::start(ServerOptions::default()).expect("the server starts")
}

/// An HTTPS embedded server with its own CA.
pub fn https_server() -> AuthorizationServer {
    AuthorizationServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .expect("the server starts")
}

/// A harness that trusts the server's CA, if it has one.
pub fn harness_for(server: &AuthorizationServer) -> Harness {
    let mut settings = HttpSettings::default();
    if let Some(pem) = server.ca_pem() {
        settings.trusted_cas =
            Some(host_harness::http_client::ca_certificates(pem.as_bytes()).expect("CA PEM"));
    }
    Harness::new(connector(), &settings)
}

/// The registered test client with this id.
pub fn client(client_id: &str) -> &'static RegisteredClient {
    TEST_CLIENTS
        .iter()
        .find(|c| c.client_id == client_id)
        .expect("a registered test client")
}

/// A client-credentials configuration for a registered client.
pub fn client_credentials(
    server: &AuthorizationServer,
    client_id: &str,
    client_auth: &str,
) -> Value {
    let client = client(client_id);
    json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "client_auth": client_auth,
    })
}
