//! The configuration document, parsed once into typed values.
//!
//! Forms generated from the schema produce a JSON object; [`Config::parse`]
//! turns it into a [`Config`] or into the list of every problem found, each
//! naming its field and how to fix it. Everything after parsing works on the
//! typed values only.

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};
use url::{Host, Url};

use crate::secret::Secret;

/// A problem with one field of the configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, such as `token_url` or `extra_headers.X-Api-Key`;
    /// empty for the document as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{} ({})", self.message, self.fix)
        } else {
            write!(f, "{}: {} ({})", self.field, self.message, self.fix)
        }
    }
}

/// The grant the connector asks the token endpoint for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Grant {
    /// RFC 6749 section 4.4: the client acts on its own behalf.
    ClientCredentials,
    /// RFC 6749 section 6: a refresh token from the configuration is
    /// exchanged for an access token.
    RefreshToken {
        /// The refresh token to exchange.
        refresh_token: Secret,
    },
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic (RFC 6749 section 2.3.1): `client_secret_basic`.
    Basic,
    /// `client_id` and `client_secret` in the form body: `client_secret_post`.
    Body,
}

/// The client's identity and how it proves it.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The client identifier issued by the authorization server.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// Where the credentials travel.
    pub method: ClientAuthMethod,
}

/// The retry rule's check level for a `401` from a protected resource:
/// how much evidence the connector wants before renewing the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryCheckLevel(u8);

impl RetryCheckLevel {
    /// The level as a number from 1 to 3.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for RetryCheckLevel {
    fn default() -> Self {
        Self(3)
    }
}

/// A configuration document, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The grant to request.
    pub grant: Grant,
    /// The token endpoint.
    pub token_url: Url,
    /// The client credentials.
    pub client: ClientCredentials,
    /// The requested scope, normalized to single spaces.
    pub scope: Option<String>,
    /// The `audience` parameter, which some servers require.
    pub audience: Option<String>,
    /// The `resource` parameter (RFC 8707).
    pub resource: Option<Url>,
    /// Extra form parameters, appended after the connector's own.
    pub extra_body: Vec<(String, String)>,
    /// Extra request headers, in document order.
    pub extra_headers: Vec<(String, String)>,
    /// The retry rule's check level.
    pub token_retry_check_level: RetryCheckLevel,
}

/// Every key the document may hold.
pub const KNOWN_FIELDS: &[&str] = &[
    "grant_type",
    "token_url",
    "client_id",
    "client_secret",
    "client_auth",
    "scope",
    "audience",
    "resource",
    "refresh_token",
    "extra_body",
    "extra_headers",
    "token_retry_check_level",
];

/// The grant types this version implements, as written in `grant_type`.
pub const GRANT_TYPES: &[&str] = &["refresh_token", "client_credentials"];

/// The client authentication methods, as written in `client_auth`.
pub const CLIENT_AUTH_METHODS: &[&str] = &["basic", "body"];

/// Form parameters the connector sets itself; `extra_body` may not replace them.
pub const RESERVED_BODY_PARAMETERS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
    "refresh_token",
    "username",
    "password",
    "assertion",
    "code",
    "code_verifier",
    "redirect_uri",
];

/// Headers the connector or the HTTP layer sets; `extra_headers` may not set them.
pub const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

impl Config {
    /// Parses a configuration document, reporting every problem at once.
    pub fn parse(document: &str) -> Result<Self, Vec<FieldError>> {
        let value: Value = serde_json::from_str(document).map_err(|e| {
            vec![FieldError::new(
                "",
                format!("the configuration is not valid JSON: {e}"),
                "send the JSON object that the configuration form produces",
            )]
        })?;
        let Value::Object(object) = value else {
            return Err(vec![FieldError::new(
                "",
                "the configuration must be a JSON object",
                "send an object such as {\"grant_type\": \"client_credentials\", …}",
            )]);
        };
        Reader::new(&object).config()
    }
}

/// Walks the document, collecting every problem instead of stopping at the first.
struct Reader<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    fn config(mut self) -> Result<Config, Vec<FieldError>> {
        for key in self.object.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                self.errors.push(FieldError::new(
                    key.as_str(),
                    "unknown field",
                    format!(
                        "remove it or correct its spelling; known fields are {}",
                        KNOWN_FIELDS.join(", ")
                    ),
                ));
            }
        }

        let grant_name = self.choice("grant_type", GRANT_TYPES, "refresh_token");
        let token_url = self.token_url();
        let client = self.client();
        let scope = self.scope();
        let audience = self.optional_text("audience", false);
        let resource = self.resource();
        let extra_body = self.extra_body();
        let extra_headers = self.extra_headers();
        let token_retry_check_level = self.retry_check_level();
        let refresh_token = self.optional_text("refresh_token", true);

        let grant = match grant_name {
            Some("client_credentials") => Some(Grant::ClientCredentials),
            Some("refresh_token") => match refresh_token {
                Some(token) => Some(Grant::RefreshToken {
                    refresh_token: Secret::new(token),
                }),
                None => {
                    self.required_for("refresh_token", "refresh_token");
                    None
                }
            },
            _ => None,
        };

        match (grant, token_url, client, self.errors.is_empty()) {
            (Some(grant), Some(token_url), Some(client), true) => Ok(Config {
                grant,
                token_url,
                client,
                scope,
                audience,
                resource,
                extra_body,
                extra_headers,
                token_retry_check_level,
            }),
            _ => Err(self.errors),
        }
    }

    fn error(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.errors.push(FieldError::new(field, message, fix));
    }

    fn required_for(&mut self, field: &str, grant: &str) {
        self.error(
            field,
            format!("required for grant_type `{grant}`"),
            format!("fill in `{field}`"),
        );
    }

    /// A field's value; `null` counts as absent, as form renderers send it
    /// for untouched inputs.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    /// An optional string; an empty string counts as absent. A secret's
    /// value is never quoted in an error.
    fn optional_text(&mut self, field: &str, secret: bool) -> Option<String> {
        match self.get(field)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => {
                let shown = if secret {
                    String::from("a non-string value")
                } else {
                    format!("`{other}`")
                };
                self.error(
                    field,
                    format!("must be a string, not {shown}"),
                    "enter text",
                );
                None
            }
        }
    }

    fn required_text(&mut self, field: &str, secret: bool, why: &str) -> Option<String> {
        let value = self.optional_text(field, secret);
        if value.is_none() && !self.errors.iter().any(|e| e.field == field) {
            self.error(
                field,
                format!("required {why}"),
                format!("fill in `{field}`"),
            );
        }
        value
    }

    fn choice(
        &mut self,
        field: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Option<&'static str> {
        let Some(text) = self.optional_text(field, false) else {
            return if self.errors.iter().any(|e| e.field == field) {
                None
            } else {
                Some(default)
            };
        };
        let found = allowed.iter().copied().find(|name| *name == text);
        if found.is_none() {
            self.error(
                field,
                format!("`{text}` is not supported"),
                format!("use one of: {}", allowed.join(", ")),
            );
        }
        found
    }

    fn token_url(&mut self) -> Option<Url> {
        let text = self.required_text("token_url", false, "to reach the token endpoint")?;
        let url = match Url::parse(&text) {
            Ok(url) => url,
            Err(e) => {
                self.error(
                    "token_url",
                    format!("`{text}` is not an absolute URL: {e}"),
                    "enter the full address, such as https://login.example.com/oauth2/token",
                );
                return None;
            }
        };
        self.check_endpoint("token_url", url)
    }

    /// RFC 6749 section 3.2 and RFC 9700: an endpoint has no fragment and
    /// uses TLS; plain `http` is allowed on the loopback interface only,
    /// where no network sees the credentials.
    fn check_endpoint(&mut self, field: &str, url: Url) -> Option<Url> {
        if url.fragment().is_some() {
            self.error(
                field,
                "must not contain a fragment (`#…`)",
                "remove the part from `#` on",
            );
            return None;
        }
        if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) {
            return Some(url);
        }
        let fix = if url.scheme() == "http" {
            "use https; plain http is allowed only for loopback addresses (localhost, 127.0.0.1, ::1)"
        } else {
            "use an https URL"
        };
        self.error(
            field,
            format!("the scheme `{}` is not allowed", url.scheme()),
            fix,
        );
        None
    }

    fn client(&mut self) -> Option<ClientCredentials> {
        let method = match self.choice("client_auth", CLIENT_AUTH_METHODS, "basic")? {
            "body" => ClientAuthMethod::Body,
            _ => ClientAuthMethod::Basic,
        };
        let client_id = self.required_text("client_id", false, "to authenticate the client");
        let client_secret = self.required_text("client_secret", true, "to authenticate the client");
        Some(ClientCredentials {
            client_id: client_id?,
            client_secret: Secret::new(client_secret?),
            method,
        })
    }

    /// RFC 6749 section 3.3: scope tokens of NQCHAR separated by spaces.
    fn scope(&mut self) -> Option<String> {
        let text = self.optional_text("scope", false)?;
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let bad = tokens
            .iter()
            .flat_map(|token| token.chars())
            .find(|c| !matches!(*c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'));
        if let Some(c) = bad {
            self.error(
                "scope",
                format!("contains the character {c:?}, which a scope may not hold"),
                "separate scope values with spaces and use printable ASCII without `\"` or `\\`",
            );
            return None;
        }
        (!tokens.is_empty()).then(|| tokens.join(" "))
    }

    /// RFC 8707 section 2: an absolute URI without a fragment.
    fn resource(&mut self) -> Option<Url> {
        let text = self.optional_text("resource", false)?;
        match Url::parse(&text) {
            Ok(url) if url.fragment().is_none() => Some(url),
            Ok(_) => {
                self.error(
                    "resource",
                    "must not contain a fragment (`#…`)",
                    "remove the part from `#` on",
                );
                None
            }
            Err(e) => {
                self.error(
                    "resource",
                    format!("`{text}` is not an absolute URI: {e}"),
                    "enter the resource's absolute URI, such as https://api.example.com/",
                );
                None
            }
        }
    }

    /// A JSON object whose values are strings, in document order.
    fn string_map(&mut self, field: &str) -> Vec<(String, String)> {
        let Some(value) = self.get(field) else {
            return Vec::new();
        };
        let Value::Object(map) = value else {
            self.error(
                field,
                "must be a JSON object",
                "enter an object such as {\"name\": \"value\"}",
            );
            return Vec::new();
        };
        let mut pairs = Vec::with_capacity(map.len());
        for (name, value) in map {
            match value {
                Value::String(text) => pairs.push((name.clone(), text.clone())),
                _ => self.error(
                    format!("{field}.{name}"),
                    "must be a string",
                    "quote the value, such as \"42\"",
                ),
            }
        }
        pairs
    }

    fn extra_body(&mut self) -> Vec<(String, String)> {
        let pairs = self.string_map("extra_body");
        for (name, _) in &pairs {
            if name.is_empty() {
                self.error(
                    "extra_body",
                    "holds a parameter without a name",
                    "give every parameter a name",
                );
            } else if RESERVED_BODY_PARAMETERS.contains(&name.as_str()) {
                let fix = if KNOWN_FIELDS.contains(&name.as_str()) {
                    format!("set it through the `{name}` field instead")
                } else {
                    String::from("remove it: the connector sets it for the grants that use it")
                };
                self.error(
                    format!("extra_body.{name}"),
                    "would replace a parameter the connector sets",
                    fix,
                );
            }
        }
        pairs
    }

    fn extra_headers(&mut self) -> Vec<(String, String)> {
        let pairs = self.string_map("extra_headers");
        for (name, value) in &pairs {
            let field = format!("extra_headers.{name}");
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.error(
                    field,
                    "is not a valid header name",
                    "use letters, digits and `-`, such as X-Api-Key",
                );
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                self.error(
                    field,
                    "is set by the connector or the HTTP layer and cannot be replaced",
                    "remove it",
                );
            } else if http::HeaderValue::from_str(value).is_err() {
                self.error(
                    field,
                    "holds a line break or another control character",
                    "put the value on one line of printable characters",
                );
            }
        }
        pairs
    }

    fn retry_check_level(&mut self) -> RetryCheckLevel {
        let field = "token_retry_check_level";
        match self.get(field) {
            None => RetryCheckLevel::default(),
            Some(value) => match value.as_u64() {
                Some(level @ 1..=3) => RetryCheckLevel(level as u8),
                _ => {
                    self.error(
                        field,
                        format!("`{value}` is not 1, 2 or 3"),
                        "choose 1, 2 or 3 (the default)",
                    );
                    RetryCheckLevel::default()
                }
            },
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Config, Vec<FieldError>> {
        Config::parse(&value.to_string())
    }

    fn fields(value: Value) -> Vec<String> {
        match parse(value) {
            Ok(_) => panic!("expected field errors"),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    fn minimal() -> Value {
        json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_secret": "s3cret",
        })
    }

    #[test]
    fn minimal_client_credentials_takes_the_defaults() {
        let config = parse(minimal()).expect("valid");
        assert!(matches!(config.grant, Grant::ClientCredentials));
        assert_eq!(config.client.method, ClientAuthMethod::Basic);
        assert_eq!(config.token_retry_check_level.get(), 3);
        assert_eq!(config.scope, None);
    }

    #[test]
    fn grant_type_defaults_to_refresh_token_which_needs_the_token() {
        let mut doc = minimal();
        doc.as_object_mut().map(|o| o.remove("grant_type"));
        assert_eq!(fields(doc.clone()), ["refresh_token"]);
        doc["refresh_token"] = json!("rt-1");
        let config = parse(doc).expect("valid");
        match config.grant {
            Grant::RefreshToken { refresh_token } => assert_eq!(refresh_token.expose(), "rt-1"),
            other => panic!("unexpected grant {other:?}"),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = fields(json!({
            "grant_type": "client_credentials",
            "token_url": "ftp://as.example.com/token",
            "client_auth": "header",
            "scope": "read \"all\"",
            "extra_headers": {"Content-Type": "text/plain", "X-Ok": "a\r\nb"},
            "extra_body": {"grant_type": "password", "n": 1},
            "token_retry_check_level": 4,
            "colour": "blue",
        }));
        for expected in [
            "colour",
            "token_url",
            "client_auth",
            "scope",
            "extra_headers.Content-Type",
            "extra_headers.X-Ok",
            "extra_body.grant_type",
            "extra_body.n",
            "token_retry_check_level",
        ] {
            assert!(
                errors.iter().any(|f| f == expected),
                "{expected} missing from {errors:?}"
            );
        }
    }

    #[test]
    fn client_id_and_secret_are_required() {
        let mut doc = minimal();
        doc["client_id"] = json!("");
        doc["client_secret"] = Value::Null;
        assert_eq!(fields(doc), ["client_id", "client_secret"]);
    }

    #[test]
    fn plain_http_is_allowed_on_loopback_only() {
        for url in [
            "http://127.0.0.1:8080/token",
            "http://localhost/t",
            "http://[::1]:9/t",
            "http://127.9.9.9/t",
        ] {
            let mut doc = minimal();
            doc["token_url"] = json!(url);
            assert!(parse(doc).is_ok(), "{url} should be accepted");
        }
        for url in [
            "http://as.example.com/token",
            "http://10.0.0.1/token",
            "https://as.example.com/t#frag",
            "token",
        ] {
            let mut doc = minimal();
            doc["token_url"] = json!(url);
            assert_eq!(fields(doc), ["token_url"], "{url} should be refused");
        }
    }

    #[test]
    fn scope_is_normalized_to_single_spaces() {
        let mut doc = minimal();
        doc["scope"] = json!("  read   write:all ");
        assert_eq!(
            parse(doc).expect("valid").scope.as_deref(),
            Some("read write:all")
        );
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_quoted() {
        let mut doc = minimal();
        doc["client_secret"] = json!(123456789);
        let errors = parse(doc).expect_err("invalid");
        let text = errors.iter().map(ToString::to_string).collect::<String>();
        assert!(text.contains("client_secret"));
        assert!(!text.contains("123456789"), "{text}");
    }

    #[test]
    fn documents_that_are_not_objects_are_refused() {
        for doc in ["", "[]", "null", "{"] {
            let errors = Config::parse(doc).expect_err("invalid");
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "");
        }
    }
}
