//! The configuration document, parsed once into typed values.
//!
//! Forms generated from the schema produce a JSON object; [`Config::parse`]
//! turns it into a [`Config`] or into the list of every problem found, each
//! naming its field and how to fix it. Everything after parsing works on the
//! typed values only.
//!
//! Here are the typed values; [`fields`] names what the document may hold
//! (the schema and the layers read the same lists), and `reader` turns a
//! document into a [`Config`].

use std::fmt;

use serde_json::{Map, Value};
use url::Url;

use crate::jwt::SigningKey;
use crate::secret::{KnownSecrets, Secret};

pub mod fields;
mod reader;

pub(crate) use reader::is_loopback;

pub use fields::*;

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
    pub(crate) fn new(
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
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

/// Name–value pairs from the document (extra headers, extra parameters).
/// A value may be a credential, such as an API key header, so Debug shows
/// the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NamedValues(pub Vec<(String, String)>);

impl fmt::Debug for NamedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
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
    /// RFC 6749 section 4.3, deprecated by RFC 9700: the user's name and
    /// password are exchanged for a token.
    Password {
        /// The resource owner's user name.
        username: String,
        /// The resource owner's password.
        password: Secret,
    },
    /// RFC 7523 section 2.1: a signed JWT is exchanged for a token.
    JwtBearer(Box<Assertion>),
    /// RFC 6749 section 4.1 with PKCE (RFC 7636): a user logs in through the
    /// browser and the code that comes back is exchanged for a token.
    AuthorizationCode(Box<UserLogin>),
    /// RFC 6749 section 4.2, deprecated: the token comes back in the
    /// redirect's fragment, with no token request at all.
    Implicit(Box<UserLogin>),
}

impl Grant {
    /// The name used in `grant_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::Password { .. } => "password",
            Grant::JwtBearer(_) => "jwt_bearer",
            Grant::AuthorizationCode(_) => "authorization_code",
            Grant::Implicit(_) => "implicit",
        }
    }
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (RFC 6749 section 2.3.1): `client_secret_basic`.
    Basic(Secret),
    /// `client_id` and `client_secret` in the form body: `client_secret_post`.
    Body(Secret),
    /// A public client: `client_id` in the body, no secret.
    None,
    /// RFC 7523 section 2.2: a JWT signed with the client's key.
    PrivateKeyJwt(Box<Assertion>),
}

/// The client's identity and how it proves it.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client identifier; absent only for `client_auth` `none` with a
    /// grant that identifies the caller otherwise (a JWT bearer assertion
    /// with its own issuer, or a grant whose server needs no client id).
    pub client_id: Option<String>,
    /// How the client authenticates.
    pub auth: ClientAuth,
}

/// A JWT the connector signs: the grant assertion or the client assertion.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The JOSE header exactly as configured, `alg` included.
    pub header: Map<String, Value>,
    /// `iss`; when absent, the client id (always, for a client assertion).
    pub issuer: Option<String>,
    /// `sub`; when absent, the client id (always, for a client assertion).
    pub subject: Option<String>,
    /// `aud`; when absent, the token URL.
    pub audience: Option<String>,
    /// Seconds from `iat` to `exp`.
    pub lifetime_secs: u64,
    /// Further payload claims.
    pub claims: Map<String, Value>,
    /// The key that signs.
    pub key: SigningKey,
    /// The key's password or the shared secret, as configured: kept so
    /// that an error never quotes them, whatever a server echoes.
    pub key_secrets: Vec<Secret>,
}

/// The PKCE method (RFC 7636).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkce {
    /// `S256`: the challenge is the verifier's SHA-256.
    S256,
    /// `plain`: the challenge is the verifier, for servers without SHA-256.
    Plain,
    /// No PKCE, for servers that reject its parameters.
    Disabled,
}

/// The settings of a browser login (authorization code or implicit).
#[derive(Debug, Clone)]
pub struct UserLogin {
    /// The authorization endpoint.
    pub authorization_url: Url,
    /// Where the browser returns to.
    pub redirect_uri: Url,
    /// The OpenID Connect `prompt` values, space-separated.
    pub prompt: Option<String>,
    /// Whether to ask for a refresh token by adding `refresh_token_scope`.
    pub request_refresh_token: bool,
    /// The scope that asks for a refresh token.
    pub refresh_token_scope: String,
    /// A hint of who is logging in.
    pub login_hint: Option<String>,
    /// The authorization server's issuer identifier: a login's redirect
    /// must carry it as `iss` (RFC 9207), against mix-up attacks.
    pub issuer: Option<String>,
    /// Further authorization request parameters.
    pub extra_params: NamedValues,
    /// The PKCE method.
    pub pkce: Pkce,
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
    /// The token endpoint; absent only for the implicit grant.
    pub token_url: Option<Url>,
    /// The client and its authentication.
    pub client: Client,
    /// The requested scope, normalized to single spaces.
    pub scope: Option<String>,
    /// The `audience` parameter, which some servers require.
    pub audience: Option<String>,
    /// The `resource` parameter (RFC 8707).
    pub resource: Option<Url>,
    /// Extra form parameters, appended after the connector's own.
    pub extra_body: NamedValues,
    /// Extra request headers, in document order.
    pub extra_headers: NamedValues,
    /// The retry rule's check level.
    pub token_retry_check_level: RetryCheckLevel,
    /// The token introspection endpoint (RFC 7662), if the server has one.
    pub introspection_url: Option<Url>,
    /// The token revocation endpoint (RFC 7009), if the server has one.
    pub revocation_url: Option<Url>,
    /// Send the access token as a Bearer token whatever `token_type` the
    /// server named, for servers that name bearer tokens otherwise.
    pub bearer_any_token_type: bool,
    /// The lifetime, in seconds, taken for a token whose response states
    /// none (`default_expires_in`).
    pub default_expires_in: u64,
}

/// The largest configuration document read: far above any real one (a
/// 16384-bit RSA key in PEM is 13 KiB), low enough to bound the work.
pub const MAX_CONFIG_BYTES: usize = 256 << 10;

/// Refuses a document larger than [`MAX_CONFIG_BYTES`].
pub(crate) fn check_size(document: &str, what: &str) -> Result<(), Vec<FieldError>> {
    if document.len() <= MAX_CONFIG_BYTES {
        return Ok(());
    }
    Err(vec![FieldError::new(
        "",
        format!(
            "{}is {} KiB, more than the {} KiB a configuration may have",
            if what.is_empty() {
                String::from("the configuration ")
            } else {
                format!("{what} ")
            },
            document.len() >> 10,
            MAX_CONFIG_BYTES >> 10
        ),
        "remove what does not belong in it",
    )])
}

impl Config {
    /// Parses a configuration document, reporting every problem at once.
    pub fn parse(document: &str) -> Result<Self, Vec<FieldError>> {
        check_size(document, "")?;
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
        reader::Reader::new(&object, "").config()
    }

    /// The token endpoint, for the grants that have one.
    pub fn token_endpoint(&self) -> Result<&Url, FieldError> {
        self.token_url.as_ref().ok_or_else(|| {
            FieldError::new(
                key::TOKEN_URL,
                format!(
                    "required for grant_type `{}` to reach the token endpoint",
                    self.grant.name()
                ),
                "fill in `token_url`",
            )
        })
    }

    /// The browser login settings, for the grants that have one.
    pub fn user_login(&self) -> Option<&UserLogin> {
        match &self.grant {
            Grant::AuthorizationCode(login) | Grant::Implicit(login) => Some(login),
            _ => None,
        }
    }

    /// Every secret value the configuration holds — the client secret (and
    /// its Basic credentials), the password, the configured refresh token,
    /// the keys' passwords and shared secrets, and the values of extra
    /// headers and body parameters whose names say they carry a credential
    /// (an API key) — for redacting server text that quotes them back.
    pub(crate) fn known_secrets(&self) -> KnownSecrets {
        let mut known = KnownSecrets::default();
        match &self.client.auth {
            ClientAuth::Basic(secret) => {
                known.add(secret.expose());
                let basic = crate::client_auth::basic_authorization(
                    self.client.client_id.as_deref().unwrap_or_default(),
                    secret.expose(),
                );
                known.add(basic.trim_start_matches("Basic "));
            }
            ClientAuth::Body(secret) => known.add(secret.expose()),
            ClientAuth::PrivateKeyJwt(assertion) => {
                assertion
                    .key_secrets
                    .iter()
                    .for_each(|s| known.add(s.expose()));
            }
            ClientAuth::None => {}
        }
        match &self.grant {
            Grant::RefreshToken { refresh_token } => known.add(refresh_token.expose()),
            Grant::Password { password, .. } => known.add(password.expose()),
            Grant::JwtBearer(assertion) => {
                assertion
                    .key_secrets
                    .iter()
                    .for_each(|s| known.add(s.expose()));
            }
            Grant::ClientCredentials | Grant::AuthorizationCode(_) | Grant::Implicit(_) => {}
        }
        for (name, value) in self.extra_headers.0.iter().chain(&self.extra_body.0) {
            if carries_credential(name) {
                known.add(value);
            }
        }
        known
    }

    /// Every signing key of the configuration, with its field, so that
    /// `validate` can prove each one signs.
    pub fn signing_keys(&self) -> Vec<(&'static str, &SigningKey)> {
        let mut keys = Vec::new();
        if let Grant::JwtBearer(assertion) = &self.grant {
            keys.push((key::JWT, &assertion.key));
        }
        if let ClientAuth::PrivateKeyJwt(assertion) = &self.client.auth {
            keys.push((key::CLIENT_ASSERTION, &assertion.key));
        }
        keys
    }
}

/// Whether an extra header or body parameter of this name carries a
/// credential (`X-Api-Key`, `X-Auth-Token`, `tenant_secret`), so that its
/// value is hidden like the client secret. Other values (`Accept-Language:
/// en`) are ordinary words that an error may show.
fn carries_credential(name: &str) -> bool {
    const CREDENTIAL_NAME_PARTS: &[&str] = &[
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "credential",
        "signature",
        "cookie",
        "session",
        "assertion",
    ];
    let name = name.to_ascii_lowercase();
    CREDENTIAL_NAME_PARTS.iter().any(|part| name.contains(part))
}
