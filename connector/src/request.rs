//! Token requests as plain data (RFC 6749 sections 4.4.2 and 6).

use std::fmt;

use crate::client_auth::{self, Placement};
use crate::config::{Config, Grant};
use crate::secret::Secret;

/// An HTTP request for the host to send exactly as given.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, such as `POST`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The header fields in sending order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Credentials travel in the `Authorization` header and the body, so Debug
/// shows neither: only the header names and the body's length.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &header_names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What the host passes to every request: the time and fresh random bytes.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The current time, unix seconds.
    pub now: u64,
    /// Fresh random bytes for values that must not repeat.
    pub nonce: Vec<u8>,
}

/// The token request for the configured grant.
pub fn token_request(config: &Config, cx: &Context) -> Request {
    match &config.grant {
        Grant::ClientCredentials => build(config, &[("grant_type", "client_credentials")]),
        Grant::RefreshToken { refresh_token } => refresh_request(config, refresh_token, cx),
    }
}

/// A `refresh_token` grant request for this refresh token.
pub fn refresh_request(config: &Config, refresh_token: &Secret, _cx: &Context) -> Request {
    build(
        config,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ],
    )
}

/// Assembles a token endpoint request: the grant's parameters, then the
/// optional request parameters, the client credentials and `extra_body`.
fn build(config: &Config, grant_parameters: &[(&str, &str)]) -> Request {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(grant_parameters);
    if let Some(scope) = &config.scope {
        form.append_pair("scope", scope);
    }
    if let Some(audience) = &config.audience {
        form.append_pair("audience", audience);
    }
    if let Some(resource) = &config.resource {
        form.append_pair("resource", resource.as_str());
    }

    let mut headers = vec![
        (
            String::from("Content-Type"),
            String::from("application/x-www-form-urlencoded"),
        ),
        (String::from("Accept"), String::from("application/json")),
    ];
    match client_auth::place(&config.client) {
        Placement::Header(value) => headers.push((String::from("Authorization"), value)),
        Placement::Body(pairs) => {
            form.extend_pairs(pairs);
        }
    }
    form.extend_pairs(&config.extra_body);

    for (name, value) in &config.extra_headers {
        // A configured Accept replaces the default rather than doubling it.
        headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }

    Request {
        method: String::from("POST"),
        url: config.token_url.to_string(),
        headers,
        body: form.finish().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn config(value: Value) -> Config {
        Config::parse(&value.to_string()).expect("valid configuration")
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn client_credentials_with_basic_authentication() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/oauth2/token?tenant=a",
            "client_id": "app",
            "client_secret": "s3cret",
            "scope": "read write",
        }));
        let request = token_request(&config, &Context::default());
        assert_eq!(
            request,
            Request {
                method: "POST".into(),
                url: "https://as.example.com/oauth2/token?tenant=a".into(),
                headers: headers(&[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Accept", "application/json"),
                    ("Authorization", "Basic YXBwOnMzY3JldA=="),
                ]),
                body: b"grant_type=client_credentials&scope=read+write".to_vec(),
            }
        );
    }

    #[test]
    fn client_credentials_with_body_authentication_and_every_option() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "http://127.0.0.1:8080/token",
            "client_id": "app id",
            "client_secret": "s&c=r+t",
            "client_auth": "body",
            "audience": "https://api.example.com",
            "resource": "https://api.example.com/v1",
            "extra_body": {"tenant": "acme corp"},
            "extra_headers": {"X-Request-Source": "engine", "accept": "application/json;charset=utf-8"},
        }));
        let request = token_request(&config, &Context::default());
        assert_eq!(
            request,
            Request {
                method: "POST".into(),
                url: "http://127.0.0.1:8080/token".into(),
                headers: headers(&[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("X-Request-Source", "engine"),
                    ("accept", "application/json;charset=utf-8"),
                ]),
                body: concat!(
                    "grant_type=client_credentials",
                    "&audience=https%3A%2F%2Fapi.example.com",
                    "&resource=https%3A%2F%2Fapi.example.com%2Fv1",
                    "&client_id=app+id&client_secret=s%26c%3Dr%2Bt",
                    "&tenant=acme+corp",
                )
                .as_bytes()
                .to_vec(),
            }
        );
        assert_eq!(request.header("authorization"), None);
    }

    #[test]
    fn refresh_request_sends_the_given_token() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "s3cret",
            "scope": "read",
        }));
        let request = refresh_request(&config, &Secret::new("rt/1+2"), &Context::default());
        assert_eq!(
            String::from_utf8(request.body).expect("utf-8"),
            "grant_type=refresh_token&refresh_token=rt%2F1%2B2&scope=read"
        );
    }

    #[test]
    fn refresh_token_grant_uses_the_configured_token() {
        let config = config(json!({
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "s3cret",
            "refresh_token": "rt-9",
        }));
        let request = token_request(&config, &Context::default());
        assert_eq!(
            request.body,
            b"grant_type=refresh_token&refresh_token=rt-9".to_vec()
        );
    }

    #[test]
    fn debug_output_shows_no_credentials() {
        let config = config(json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "topsecretvalue",
            "client_auth": "body",
        }));
        let request = token_request(&config, &Context::default());
        let shown = format!("{request:?} {config:?}");
        assert!(!shown.contains("topsecretvalue"), "{shown}");
        let basic = token_request(
            &Config {
                client: crate::config::ClientCredentials {
                    method: crate::config::ClientAuthMethod::Basic,
                    ..config.client.clone()
                },
                ..config
            },
            &Context::default(),
        );
        assert!(!format!("{basic:?}").contains("Basic"), "{basic:?}");
    }
}
