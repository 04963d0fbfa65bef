//! What a configuration document may hold: its keys, the values of its
//! choices, what it may not override, and its defaults. The reader, the
//! schema and the layers all read these lists.

/// The document's keys, each written here once: the reader, the schema and
/// the layers name fields through these.
pub mod key {
    /// `grant_type`.
    pub const GRANT_TYPE: &str = "grant_type";
    /// `token_url`.
    pub const TOKEN_URL: &str = "token_url";
    /// `client_id`.
    pub const CLIENT_ID: &str = "client_id";
    /// `client_secret`.
    pub const CLIENT_SECRET: &str = "client_secret";
    /// `client_auth`.
    pub const CLIENT_AUTH: &str = "client_auth";
    /// `client_assertion`.
    pub const CLIENT_ASSERTION: &str = "client_assertion";
    /// `scope`.
    pub const SCOPE: &str = "scope";
    /// `audience`.
    pub const AUDIENCE: &str = "audience";
    /// `resource`.
    pub const RESOURCE: &str = "resource";
    /// `refresh_token`.
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// `username`.
    pub const USERNAME: &str = "username";
    /// `password`.
    pub const PASSWORD: &str = "password";
    /// `jwt`.
    pub const JWT: &str = "jwt";
    /// `authorization_url`.
    pub const AUTHORIZATION_URL: &str = "authorization_url";
    /// `redirect_uri`.
    pub const REDIRECT_URI: &str = "redirect_uri";
    /// `prompt`.
    pub const PROMPT: &str = "prompt";
    /// `request_refresh_token`.
    pub const REQUEST_REFRESH_TOKEN: &str = "request_refresh_token";
    /// `refresh_token_scope`.
    pub const REFRESH_TOKEN_SCOPE: &str = "refresh_token_scope";
    /// `login_hint`.
    pub const LOGIN_HINT: &str = "login_hint";
    /// `extra_authorization_params`.
    pub const EXTRA_AUTHORIZATION_PARAMS: &str = "extra_authorization_params";
    /// `pkce`.
    pub const PKCE: &str = "pkce";
    /// `extra_body`.
    pub const EXTRA_BODY: &str = "extra_body";
    /// `extra_headers`.
    pub const EXTRA_HEADERS: &str = "extra_headers";
    /// `token_retry_check_level`.
    pub const TOKEN_RETRY_CHECK_LEVEL: &str = "token_retry_check_level";
    /// `introspection_url`.
    pub const INTROSPECTION_URL: &str = "introspection_url";
    /// `revocation_url`.
    pub const REVOCATION_URL: &str = "revocation_url";
    /// `bearer_any_token_type`.
    pub const BEARER_ANY_TOKEN_TYPE: &str = "bearer_any_token_type";
    /// `default_expires_in`.
    pub const DEFAULT_EXPIRES_IN: &str = "default_expires_in";
    /// `issuer`, the authorization server's issuer identifier (RFC 9207);
    /// not the assertion's `issuer`, which lives inside `jwt`.
    pub const ISSUER_ID: &str = "issuer";
    /// `header`.
    pub const HEADER: &str = "header";
    /// `issuer`.
    pub const ISSUER: &str = "issuer";
    /// `subject`.
    pub const SUBJECT: &str = "subject";
    /// `lifetime_secs`.
    pub const LIFETIME_SECS: &str = "lifetime_secs";
    /// `claims`.
    pub const CLAIMS: &str = "claims";
    /// `private_key`.
    pub const PRIVATE_KEY: &str = "private_key";
    /// `private_key_password`.
    pub const PRIVATE_KEY_PASSWORD: &str = "private_key_password";
    /// `shared_secret`.
    pub const SHARED_SECRET: &str = "shared_secret";
}

/// The lifetime taken for a token whose response states none, unless the
/// configuration sets `default_expires_in`.
pub const DEFAULT_EXPIRES_IN: u64 = 300;

/// The longest `default_expires_in` accepted: a day.
pub(crate) const MAX_DEFAULT_EXPIRES_IN: u64 = 86_400;

/// Every key the document may hold.
pub const KNOWN_FIELDS: &[&str] = &[
    key::GRANT_TYPE,
    key::TOKEN_URL,
    key::CLIENT_ID,
    key::CLIENT_SECRET,
    key::CLIENT_AUTH,
    key::CLIENT_ASSERTION,
    key::SCOPE,
    key::AUDIENCE,
    key::RESOURCE,
    key::REFRESH_TOKEN,
    key::USERNAME,
    key::PASSWORD,
    key::JWT,
    key::AUTHORIZATION_URL,
    key::REDIRECT_URI,
    key::PROMPT,
    key::REQUEST_REFRESH_TOKEN,
    key::REFRESH_TOKEN_SCOPE,
    key::LOGIN_HINT,
    key::EXTRA_AUTHORIZATION_PARAMS,
    key::PKCE,
    key::EXTRA_BODY,
    key::EXTRA_HEADERS,
    key::TOKEN_RETRY_CHECK_LEVEL,
    key::INTROSPECTION_URL,
    key::REVOCATION_URL,
    key::BEARER_ANY_TOKEN_TYPE,
    key::DEFAULT_EXPIRES_IN,
    key::ISSUER_ID,
];

/// The keys of the `jwt` and `client_assertion` objects.
pub const ASSERTION_FIELDS: &[&str] = &[
    key::HEADER,
    key::ISSUER,
    key::SUBJECT,
    key::AUDIENCE,
    key::LIFETIME_SECS,
    key::CLAIMS,
    key::PRIVATE_KEY,
    key::PRIVATE_KEY_PASSWORD,
    key::SHARED_SECRET,
];

/// The grant types, as written in `grant_type`.
pub const GRANT_TYPES: &[&str] = &[
    "refresh_token",
    "client_credentials",
    "password",
    "jwt_bearer",
    "authorization_code",
    "implicit",
];

/// The client authentication methods, as written in `client_auth`.
pub const CLIENT_AUTH_METHODS: &[&str] = &["basic", "body", "none", "private_key_jwt"];

/// The `prompt` values (OpenID Connect Core section 3.1.2.1).
pub const PROMPT_VALUES: &[&str] = &["consent", "login", "select_account", "none"];

/// The `pkce` methods.
pub const PKCE_METHODS: &[&str] = &["S256", "plain", "none"];

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

/// The client's own credentials, which `extra_body` may carry only for a
/// client whose credentials the connector does not send itself (SailPoint's
/// "additional payload": `client_auth` `none` and no `client_id`).
pub const CLIENT_BODY_PARAMETERS: &[&str] = &["client_id", "client_secret"];

/// Authorization request parameters the connector sets itself.
pub const RESERVED_AUTHORIZATION_PARAMETERS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
];

/// Claims the connector computes; `claims` may not replace them.
pub(crate) const COMPUTED_CLAIMS: &[(&str, &str)] = &[
    ("iss", "issuer"),
    ("sub", "subject"),
    ("aud", "audience"),
    ("exp", "lifetime_secs"),
    ("iat", ""),
    ("jti", ""),
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
