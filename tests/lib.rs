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

/// A one-shot server on loopback that reads one request and answers with
/// these raw bytes: for responses no real authorization server should send
/// (a redirect, an HTML error page, an endless body).
pub struct CannedServer {
    url: String,
    served: std::thread::JoinHandle<Vec<u8>>,
}

impl CannedServer {
    /// Starts serving `response` to the first connection.
    pub fn start(response: Vec<u8>) -> Self {
        use std::io::{BufRead as _, BufReader, Read as _, Write as _};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/token", listener.local_addr().expect("address"));
        let served = std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return Vec::new();
            };
            let mut reader = BufReader::new(stream);
            let mut head = Vec::new();
            let mut content_length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    content_length = value.trim().parse().unwrap_or(0);
                }
                head.extend_from_slice(line.as_bytes());
            }
            let mut body = vec![0u8; content_length];
            let _ = reader.read_exact(&mut body);
            let _ = reader.get_mut().write_all(&response);
            head
        });
        Self { url, served }
    }

    /// The URL to use as `token_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the request and returns its request line and headers.
    pub fn request_head(self) -> String {
        String::from_utf8_lossy(&self.served.join().unwrap_or_default()).into_owned()
    }
}
