//! Sends the connector's requests over real HTTP.
//!
//! TLS is rustls with verified certificates: Mozilla's roots by default, or
//! exactly the CAs of a PEM file (a private CA, as an engine's trust store
//! would hold). Redirects are never followed — a token endpoint that
//! redirects would otherwise receive the client's credentials at a second
//! address — and the response body is capped.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ureq::Agent;
use ureq::http;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::component::{Request, Response};

/// How the harness talks HTTP.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time to establish the TCP connection and the TLS session.
    pub connect_timeout: Duration,
    /// Time to wait for the response's head, and again for its body.
    pub read_timeout: Duration,
    /// The largest response body read; longer bodies are an error.
    pub max_response_bytes: u64,
    /// The largest response head (status line and headers) read; a longer
    /// one, or more than 128 header fields, is an error.
    pub max_header_bytes: usize,
    /// Trust exactly the CAs in these DER certificates instead of Mozilla's roots.
    pub trusted_cas: Option<Vec<Vec<u8>>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_response_bytes: 1 << 20,
            max_header_bytes: 64 << 10,
            trusted_cas: None,
        }
    }
}

impl HttpSettings {
    /// Trusts exactly the CA certificates of a PEM file.
    pub fn trust_ca_file(mut self, path: &Path) -> Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("failed to read CA file `{}`", path.display()))?;
        let cas = ca_certificates(&pem)
            .with_context(|| format!("failed to read CA file `{}`", path.display()))?;
        self.trusted_cas = Some(cas);
        Ok(self)
    }
}

/// The DER certificates in a PEM text; anything else in it is ignored.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut cas = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(cert) = item.context("the PEM text is malformed")? {
            cas.push(cert.der().to_vec());
        }
    }
    if cas.is_empty() {
        bail!("it holds no `BEGIN CERTIFICATE` block");
    }
    Ok(cas)
}

/// An HTTP client for token requests.
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// Through the proxy the environment names (`HTTPS_PROXY`, `HTTP_PROXY`,
    /// `ALL_PROXY`, and `NO_PROXY` for exceptions), if any.
    agent: Agent,
    /// Straight to the server: for loopback, which no proxy may see.
    direct: Agent,
    max_response_bytes: u64,
    time_bound: std::time::Duration,
}

impl HttpClient {
    /// A client with these settings.
    pub fn new(settings: &HttpSettings) -> Self {
        let roots = match &settings.trusted_cas {
            Some(cas) => RootCerts::new_with_certs(
                &cas.iter()
                    .map(|der| Certificate::from_der(der).to_owned())
                    .collect::<Vec<_>>(),
            ),
            None => RootCerts::WebPki,
        };
        // The whole exchange, sending included, within the connect timeout
        // and twice the read timeout (head, then body).
        let time_bound = settings.connect_timeout + settings.read_timeout * 2;
        let agent = |proxy: Option<ureq::Proxy>| -> Agent {
            Agent::config_builder()
                .proxy(proxy)
                .timeout_global(Some(time_bound))
                .tls_config(TlsConfig::builder().root_certs(roots.clone()).build())
                .timeout_connect(Some(settings.connect_timeout))
                .timeout_recv_response(Some(settings.read_timeout))
                .timeout_recv_body(Some(settings.read_timeout))
                .max_redirects(0)
                .max_response_header_size(settings.max_header_bytes)
                .http_status_as_error(false)
                .build()
                .into()
        };
        Self {
            agent: agent(ureq::Proxy::try_from_env()),
            direct: agent(None),
            max_response_bytes: settings.max_response_bytes,
            time_bound,
        }
    }

    /// The longest one exchange can take before it fails.
    pub fn time_bound(&self) -> std::time::Duration {
        self.time_bound
    }

    /// Sends a request exactly as the connector built it.
    pub fn send(&self, request: &Request) -> Result<Response> {
        let url = shown_url(&request.url);
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        // The request's headers may carry credentials: errors name the URL only.
        let http_request = builder
            .body(request.body.clone())
            .with_context(|| format!("the connector built an invalid request for `{}`", url))?;
        // A token request to a loopback server carries a secret in clear
        // (plain http is allowed there): it must never reach a proxy.
        let agent = if is_loopback(&request.url) {
            &self.direct
        } else {
            &self.agent
        };
        let mut response = agent.run(http_request).map_err(|e| {
            anyhow::anyhow!(
                "{request_method} {url} failed: {e}",
                request_method = request.method,
            )
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => {
                    anyhow::anyhow!("the response from {} is larger than {limit} bytes", url)
                }
                other => {
                    anyhow::anyhow!("reading the response from {url} failed: {other}")
                }
            })?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A URL for messages: without its query, fragment and password, which may
/// carry credentials (an API key in the query, say).
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// Whether a URL's host is this machine's loopback interface.
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|url| url.host().map(|host| host.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
