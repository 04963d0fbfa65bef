//! Helpers shared by the end-to-end tests: a loaded component, servers and
//! configuration documents.

use std::sync::OnceLock;

use auth_server::{AuthorizationServer, ServerOptions};
use auth_server::{RegisteredClient, TEST_CLIENTS};
use host_harness::{ConnectorHost, Harness, HttpSettings};
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
    harness_trusting(server.ca_pem())
}

/// HTTP settings that trust this CA (or the public roots without one).
pub fn http_settings(ca_pem: Option<&str>) -> HttpSettings {
    let mut settings = HttpSettings::default();
    if let Some(pem) = ca_pem {
        settings.trusted_cas =
            Some(host_harness::http_client::ca_certificates(pem.as_bytes()).expect("CA PEM"));
    }
    settings
}

/// A harness that trusts this CA (or the public roots without one).
pub fn harness_trusting(ca_pem: Option<&str>) -> Harness {
    Harness::new(connector(), &http_settings(ca_pem))
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/token", listener.local_addr().expect("address"));
        let served = std::thread::spawn(move || match listener.accept() {
            Ok((stream, _)) => answer(stream, &response).0,
            Err(_) => Vec::new(),
        });
        Self { url, served }
    }

    /// Serves `response` to every connection, for as long as the test
    /// runs: the URL, and the body of each request that came.
    pub fn start_repeating(
        response: Vec<u8>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/token", listener.local_addr().expect("address"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let received = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (_, body) = answer(stream, &response);
                received
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
        });
        (url, bodies)
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

/// Reads one request from `stream`, answers it with `response` and closes:
/// the request line and headers it read, and the body.
fn answer(stream: std::net::TcpStream, response: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};

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
    let _ = reader.get_mut().write_all(response);
    (head, body)
}

/// A real authorization server written by others: Authlib's, run by
/// `tests/authlib-server/server.py` on loopback.
pub mod authlib {
    use std::io::{BufRead as _, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::OnceLock;

    use auth_server::LoopbackIdentity;
    use auth_server::registry::{ASSERTION_ISSUER, keys};
    use serde_json::{Value, json};

    /// The redirect URI registered for the login clients.
    pub const REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";
    /// The clients registered with the Authlib server: id, secret, method.
    pub const CLIENTS: &[(&str, &str, &str)] = &[
        ("cc-basic", "cc-basic-secret", "client_secret_basic"),
        ("cc-post", "cc-post-secret", "client_secret_post"),
        (
            "tricky:client %+/é",
            "p@ss:w%rd +/ü 鍵",
            "client_secret_basic",
        ),
        ("public-app", "", "none"),
        ("jwt-app", "", "private_key_jwt"),
    ];
    /// The user the password grant logs in as.
    pub const USER: (&str, &str) = ("alice", "wonderland");

    /// A running Authlib server; it exits when this process does.
    pub struct AuthlibServer {
        base_url: String,
        ca_pem: Option<String>,
        _child: Child,
        _stdin: ChildStdin,
    }

    impl AuthlibServer {
        /// The server's base URL.
        pub fn base_url(&self) -> &str {
            &self.base_url
        }
        /// The token endpoint.
        pub fn token_url(&self) -> String {
            format!("{}/token", self.base_url)
        }
        /// The authorization endpoint.
        pub fn authorization_url(&self) -> String {
            format!("{}/authorize", self.base_url)
        }
        /// The CA that signed its certificate, for HTTPS.
        pub fn ca_pem(&self) -> Option<&str> {
            self.ca_pem.as_deref()
        }
    }

    /// The shared plain-HTTP server.
    pub fn http() -> &'static AuthlibServer {
        static SERVER: OnceLock<AuthlibServer> = OnceLock::new();
        SERVER.get_or_init(|| start(false))
    }

    /// The shared HTTPS server.
    pub fn https() -> &'static AuthlibServer {
        static SERVER: OnceLock<AuthlibServer> = OnceLock::new();
        SERVER.get_or_init(|| start(true))
    }

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// A Python with the pinned Authlib: a virtual environment in the
    /// target directory, created on first use and recreated when the pins
    /// change.
    pub fn python() -> &'static Path {
        static PYTHON: OnceLock<PathBuf> = OnceLock::new();
        PYTHON.get_or_init(|| {
            let requirements = workspace().join("tests/authlib-server/requirements.txt");
            let pins = std::fs::read_to_string(&requirements).expect("the requirements file");
            let venv = workspace().join("target/authlib-venv");
            let marker = venv.join("installed-requirements.txt");
            let python = venv.join("bin/python");
            if std::fs::read_to_string(&marker).ok().as_deref() != Some(pins.as_str()) {
                let run = |command: &mut Command, what: &str| {
                    let status = command.status().unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(status.success(), "{what} failed");
                };
                run(
                    Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv),
                    "creating a Python virtual environment for the Authlib server (needs python3 with venv)",
                );
                run(
                    Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
                        .arg(&requirements),
                    "installing the Authlib server's requirements from PyPI",
                );
                std::fs::write(&marker, &pins).expect("write the marker");
            }
            python
        })
    }

    /// The trusted issuer's keys, for JWT bearer grants only.
    fn issuer_keys() -> Value {
        json!([
            {"kty": "RSA", "kid": "rsa-1", "pem": keys::RSA_PUBLIC},
            {"kty": "EC", "kid": "ec-1", "pem": keys::EC_PUBLIC},
        ])
    }

    /// The `private_key_jwt` client's own keys, for its assertions only: a
    /// key is bound to one role, as a real deployment registers it.
    fn client_keys() -> Value {
        json!([
            {"kty": "RSA", "kid": "client-rsa-1", "pem": keys::CLIENT_RSA_PUBLIC},
            {"kty": "EC", "kid": "client-ec-1", "pem": keys::CLIENT_EC_PUBLIC},
        ])
    }

    fn start(tls: bool) -> AuthlibServer {
        let dir = std::env::temp_dir().join(format!(
            "authlib-fixture-{}-{}",
            std::process::id(),
            if tls { "https" } else { "http" }
        ));
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let identity = tls.then(|| LoopbackIdentity::generate().expect("a certificate"));
        let tls_files = identity.as_ref().map(|identity| {
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            std::fs::write(&cert, &identity.chain_pem).expect("cert");
            std::fs::write(&key, &identity.key_pem).expect("key");
            json!({"cert_file": cert, "key_file": key})
        });
        let grants = [
            "client_credentials",
            "password",
            "refresh_token",
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ];
        let clients: Vec<Value> = CLIENTS
            .iter()
            .map(|(id, secret, method)| {
                let mut grants: Vec<&str> = grants.to_vec();
                if *method == "none" {
                    grants.retain(|g| *g != "client_credentials");
                    grants.push("implicit");
                }
                json!({
                    "client_id": id,
                    "client_secret": if secret.is_empty() { Value::Null } else { json!(secret) },
                    "token_endpoint_auth_method": method,
                    "grant_types": grants,
                    "redirect_uris": [REDIRECT_URI],
                    "scope": "read write offline_access",
                    "jwks": if *method == "private_key_jwt" { client_keys() } else { Value::Null },
                })
            })
            .collect();
        let fixture = json!({
            "port": 0,
            "tls": tls_files,
            "exit_with_stdin": true,
            "clients": clients,
            "users": [{"username": USER.0, "password": USER.1}, {"username": "bob", "password": "builder"}],
            "assertion_issuers": [{"issuer": ASSERTION_ISSUER, "jwks": issuer_keys()}],
        });
        let fixture_path = dir.join("fixture.json");
        std::fs::write(&fixture_path, fixture.to_string()).expect("fixture");

        let mut child = Command::new(python())
            .arg(workspace().join("tests/authlib-server/server.py"))
            .arg(&fixture_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the Authlib server starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's first line");
        let base_url = line
            .trim()
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("the Authlib server did not start: {line:?}"))
            .to_owned();
        AuthlibServer {
            base_url,
            ca_pem: identity.map(|identity| identity.ca_pem),
            _child: child,
            _stdin: stdin,
        }
    }
}
