//! Reading a document into a [`Config`]: every field checked, every
//! problem collected with its field and its fix.

use std::net::IpAddr;

use serde_json::{Map, Value};
use url::{Host, Url};

use super::fields::*;
use super::*;
use crate::jwt::{self, KeyProblem, SigningKey};
use crate::secret::Secret;

/// Walks the document, collecting every problem instead of stopping at the first.
pub(super) struct Reader<'a> {
    object: &'a Map<String, Value>,
    /// The path of this object in the document, such as `jwt.`.
    prefix: &'static str,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(object: &'a Map<String, Value>, prefix: &'static str) -> Self {
        Self {
            object,
            prefix,
            errors: Vec::new(),
        }
    }

    pub(super) fn config(mut self) -> Result<Config, Vec<FieldError>> {
        self.unknown_fields(KNOWN_FIELDS);

        let grant_name = self.choice(key::GRANT_TYPE, GRANT_TYPES, "refresh_token");
        let token_url = if grant_name == Some("implicit") {
            self.optional_endpoint(key::TOKEN_URL)
        } else {
            self.required_endpoint(key::TOKEN_URL, "to reach the token endpoint")
        };
        // RFC 7523 section 3.1: the JWT bearer grant needs no client
        // authentication; and a document whose body parameters carry the
        // client's credentials (SailPoint's "additional payload") names
        // none of its own. Either way, with no credentials of its own, the
        // client authenticates by nothing unless it says otherwise.
        let filled = |reader: &Self, field: &str| {
            reader
                .get(field)
                .is_some_and(|value| value.as_str() != Some("") && !value.is_null())
        };
        let credentials_in_body = self
            .get(key::EXTRA_BODY)
            .and_then(Value::as_object)
            .is_some_and(|body| body.contains_key(key::CLIENT_ID));
        let public_by_default = !filled(&self, key::CLIENT_ID)
            && !filled(&self, key::CLIENT_SECRET)
            && self.get(key::CLIENT_ASSERTION).is_none()
            && (grant_name == Some("jwt_bearer") || credentials_in_body);
        let client = self.client(if public_by_default { "none" } else { "basic" });
        let scope = self.scope();
        let audience = self.optional_text(key::AUDIENCE, false);
        let resource = self.resource();
        let extra_body = self.extra_body(client.as_ref().is_some_and(|client| {
            matches!(client.auth, ClientAuth::None) && client.client_id.is_none()
        }));
        let extra_headers = self.extra_headers();
        let token_retry_check_level = self.retry_check_level();
        let introspection_url = self.optional_endpoint(key::INTROSPECTION_URL);
        let revocation_url = self.optional_endpoint(key::REVOCATION_URL);
        let bearer_any_token_type = self.optional_bool(key::BEARER_ANY_TOKEN_TYPE);
        let default_expires_in = self.default_expires_in();

        let grant = match grant_name {
            Some("client_credentials") => Some(Grant::ClientCredentials),
            Some("refresh_token") => self
                .required_text(key::REFRESH_TOKEN, true, "for grant_type `refresh_token`")
                .map(|token| Grant::RefreshToken {
                    refresh_token: Secret::new(token),
                }),
            Some("password") => {
                let username =
                    self.required_text(key::USERNAME, false, "for grant_type `password`");
                let password = self.required_text(key::PASSWORD, true, "for grant_type `password`");
                username
                    .zip(password)
                    .map(|(username, password)| Grant::Password {
                        username,
                        password: Secret::new(password),
                    })
            }
            Some("jwt_bearer") => self
                .assertion(key::JWT, "for grant_type `jwt_bearer`", true)
                .map(|a| Grant::JwtBearer(Box::new(a))),
            Some("authorization_code") => self
                .user_login()
                .map(|l| Grant::AuthorizationCode(Box::new(l))),
            Some("implicit") => self.user_login().map(|l| Grant::Implicit(Box::new(l))),
            _ => None,
        };
        if grant_name != Some("jwt_bearer") {
            self.not_applicable(key::JWT, grant_name);
        }
        // The server's issuer identifier checks a login's redirect; for
        // other grants it would be a misplaced `jwt.issuer`, silently unused.
        if !matches!(grant_name, Some("authorization_code" | "implicit")) {
            self.not_applicable(key::ISSUER_ID, grant_name);
        }
        if let Some(client) = &client
            && client.client_id.is_none()
        {
            match &grant {
                Some(Grant::AuthorizationCode(_) | Grant::Implicit(_)) => self.error(
                    key::CLIENT_ID,
                    "required for a browser login (RFC 6749 section 4.1.1)",
                    "fill in `client_id`",
                ),
                Some(Grant::JwtBearer(assertion))
                    if assertion.issuer.is_none() || assertion.subject.is_none() =>
                {
                    self.error(
                        "jwt.issuer",
                        "required when there is no client_id to default to",
                        "fill in `jwt.issuer` (and `jwt.subject`), or `client_id`",
                    )
                }
                _ => {}
            }
        }
        // RFC 9700 section 2.1.1: a public client's code is protected by
        // nothing but PKCE, and only S256 keeps the verifier off the wire.
        if let (Some(Grant::AuthorizationCode(login)), Some(client)) = (&grant, &client)
            && matches!(client.auth, ClientAuth::None)
            && login.pkce != Pkce::S256
        {
            self.error(
                key::PKCE,
                "a public client (client_auth `none`) must use PKCE with S256 (RFC 9700 section 2.1.1): nothing else protects its authorization code",
                "choose S256, or authenticate the client with a secret or a key",
            );
        }
        if grant_name != Some("password") {
            self.not_applicable(key::USERNAME, grant_name);
            self.not_applicable(key::PASSWORD, grant_name);
        }

        match (grant, client, self.errors.is_empty()) {
            (Some(grant), Some(client), true) => Ok(Config {
                grant,
                token_url,
                client,
                scope,
                audience,
                resource,
                extra_body: NamedValues(extra_body),
                extra_headers: NamedValues(extra_headers),
                token_retry_check_level,
                introspection_url,
                revocation_url,
                bearer_any_token_type,
                default_expires_in,
            }),
            _ => Err(self.errors),
        }
    }

    fn path(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn error(&mut self, field: &str, message: impl Into<String>, fix: impl Into<String>) {
        let path = self.path(field);
        self.errors.push(FieldError::new(path, message, fix));
    }

    fn has_error(&self, field: &str) -> bool {
        let path = self.path(field);
        self.errors.iter().any(|e| e.field == path)
    }

    fn unknown_fields(&mut self, known: &[&str]) {
        for (key, value) in self.object {
            if value.is_null() {
                // Explicit, so that a JSON Schema validator and this parser
                // agree: a field is either absent or has a value.
                self.error(key, "is null", "remove the field, or give it a value");
                continue;
            }
            if !known.contains(&key.as_str()) {
                let fix = match closest(key, known) {
                    Some(suggestion) => format!("did you mean `{}{suggestion}`?", self.prefix),
                    None => format!("remove it; known fields are {}", known.join(", ")),
                };
                self.error(key, "unknown field", fix);
            }
        }
    }

    /// A field that only some grants read: set for another grant, it is
    /// probably a mistake, so say so rather than ignore it silently.
    fn not_applicable(&mut self, field: &str, grant: Option<&str>) {
        if let (Some(grant), Some(_)) = (grant, self.get(field)) {
            self.error(
                field,
                format!("is not used by grant_type `{grant}`"),
                "remove it, or choose the grant type that uses it",
            );
        }
    }

    /// A field's value; `null` (already reported) counts as absent.
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
        if value.is_none() && !self.has_error(field) {
            self.error(
                field,
                format!("required {why}"),
                format!("fill in `{}`", self.path(field)),
            );
        }
        value
    }

    fn optional_bool(&mut self, field: &str) -> bool {
        match self.get(field) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.error(
                    field,
                    format!("must be true or false, not `{other}`"),
                    "tick or untick it",
                );
                false
            }
        }
    }

    fn choice(
        &mut self,
        field: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Option<&'static str> {
        if self.get(field).and_then(Value::as_str) == Some("") {
            self.error(
                field,
                "is empty",
                format!("choose one of: {}", allowed.join(", ")),
            );
            return None;
        }
        let Some(text) = self.optional_text(field, false) else {
            return (!self.has_error(field)).then_some(default);
        };
        let found = allowed.iter().copied().find(|name| *name == text);
        if found.is_none() {
            let fix = match closest(&text, allowed) {
                Some(suggestion) => format!(
                    "did you mean `{suggestion}`? The choices are {}",
                    allowed.join(", ")
                ),
                None => format!("use one of: {}", allowed.join(", ")),
            };
            self.error(field, format!("`{text}` is not supported"), fix);
        }
        found
    }

    fn required_endpoint(&mut self, field: &str, why: &str) -> Option<Url> {
        let text = self.required_text(field, false, why)?;
        self.endpoint(field, &text)
    }

    fn optional_endpoint(&mut self, field: &str) -> Option<Url> {
        let text = self.optional_text(field, false)?;
        self.endpoint(field, &text)
    }

    /// RFC 6749 section 3.1 and 3.2, RFC 9700: an endpoint is absolute, has
    /// no fragment and uses TLS; plain `http` is allowed on the loopback
    /// interface only, where no network sees the credentials.
    fn endpoint(&mut self, field: &str, text: &str) -> Option<Url> {
        let url = match Url::parse(text) {
            Ok(url) => url,
            Err(e) => {
                self.error(
                    field,
                    format!("`{text}` is not an absolute URL: {e}"),
                    "enter the full address, such as https://login.example.com/oauth2/token",
                );
                return None;
            }
        };
        if url.fragment().is_some() {
            self.error(
                field,
                "must not contain a fragment (`#…`)",
                "remove the part from `#` on",
            );
            return None;
        }
        if url.scheme() == "http" && is_loopback(&url) && !written_as_read(text, &url) {
            self.error(field, LOOPBACK_NOT_AS_WRITTEN, LOOPBACK_FIX);
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

    fn client(&mut self, default_method: &'static str) -> Option<Client> {
        let method = self.choice(key::CLIENT_AUTH, CLIENT_AUTH_METHODS, default_method)?;
        let client_id = if method == "none" {
            self.optional_text(key::CLIENT_ID, false)
        } else {
            self.required_text(key::CLIENT_ID, false, "to authenticate the client")
        };
        let needs_secret = matches!(method, "basic" | "body");
        let secret = if needs_secret {
            self.required_text(
                key::CLIENT_SECRET,
                true,
                &format!("for client_auth `{method}`"),
            )
            .map(Secret::new)
        } else {
            if self.get(key::CLIENT_SECRET).is_some() {
                self.error(
                    key::CLIENT_SECRET,
                    format!("is not used with client_auth `{method}`"),
                    "remove it, or choose client_auth basic or body",
                );
            }
            None
        };
        let assertion = if method == "private_key_jwt" {
            Some(self.assertion(
                key::CLIENT_ASSERTION,
                "for client_auth `private_key_jwt`",
                false,
            )?)
        } else {
            if self.get(key::CLIENT_ASSERTION).is_some() {
                self.error(
                    key::CLIENT_ASSERTION,
                    format!("is not used with client_auth `{method}`"),
                    "remove it, or choose client_auth private_key_jwt",
                );
            }
            None
        };
        let auth = match method {
            "basic" => ClientAuth::Basic(secret?),
            "body" => ClientAuth::Body(secret?),
            "none" => ClientAuth::None,
            _ => ClientAuth::PrivateKeyJwt(Box::new(assertion?)),
        };
        if client_id.is_none() && method != "none" {
            return None;
        }
        Some(Client { client_id, auth })
    }

    /// The `jwt` or `client_assertion` object.
    fn assertion(
        &mut self,
        field: &'static str,
        why: &str,
        needs_subject: bool,
    ) -> Option<Assertion> {
        let Some(value) = self.get(field) else {
            self.error(
                field,
                format!("required {why}"),
                "fill in at least the header's `alg` and the private key",
            );
            return None;
        };
        let Value::Object(object) = value else {
            self.error(
                field,
                "must be a JSON object",
                "enter an object with `header`, `private_key`, …",
            );
            return None;
        };
        let prefix = if field == key::JWT {
            "jwt."
        } else {
            "client_assertion."
        };
        let mut inner = Reader::new(object, prefix);
        if field == key::CLIENT_ASSERTION {
            // RFC 7523 section 3: a client assertion's iss and sub are the client id.
            for fixed in [key::ISSUER, key::SUBJECT] {
                if inner.get(fixed).is_some() {
                    inner.error(
                        fixed,
                        "is always the client id in a client assertion (RFC 7523 section 3)",
                        "remove it",
                    );
                }
            }
        }
        let assertion = inner.assertion_fields(needs_subject);
        self.errors.append(&mut inner.errors);
        assertion
    }

    fn assertion_fields(&mut self, needs_subject: bool) -> Option<Assertion> {
        self.unknown_fields(ASSERTION_FIELDS);
        let header = match self.get(key::HEADER) {
            None => Some(
                serde_json::from_value(serde_json::json!({"alg": "RS256", "typ": "JWT"}))
                    .unwrap_or_default(),
            ),
            Some(Value::Object(header)) => Some(header.clone()),
            Some(_) => {
                self.error(
                    key::HEADER,
                    "must be a JSON object",
                    "enter an object such as {\"alg\": \"RS256\", \"kid\": \"k1\"}",
                );
                None
            }
        };
        let algorithm =
            header
                .as_ref()
                .and_then(|header| match header.get("alg").and_then(Value::as_str) {
                    Some(name) => {
                        let found = jwt::algorithm(name);
                        if found.is_none() {
                            self.error(
                                "header.alg",
                                format!("`{name}` is not supported"),
                                format!("use one of: {}", jwt::ALGORITHMS.join(", ")),
                            );
                        }
                        found
                    }
                    None => {
                        self.error(
                            "header.alg",
                            "required",
                            "name the signing algorithm, such as \"RS256\"",
                        );
                        None
                    }
                });
        let issuer = self.optional_text(key::ISSUER, false);
        let subject = if needs_subject {
            self.required_text(
                key::SUBJECT,
                false,
                "(the user or service the token is for)",
            )
        } else {
            self.optional_text(key::SUBJECT, false)
        };
        let audience = self.optional_text(key::AUDIENCE, false);
        let lifetime_secs = match self.get(key::LIFETIME_SECS) {
            None => Some(300),
            Some(value) => match whole_number(value) {
                Some(secs @ 1..=86_400) => Some(secs),
                _ => {
                    self.error(
                        key::LIFETIME_SECS,
                        format!("`{value}` is not a number of seconds from 1 to 86400"),
                        "enter a lifetime such as 300",
                    );
                    None
                }
            },
        };
        let claims = match self.get(key::CLAIMS) {
            None => Map::new(),
            Some(Value::Object(claims)) => claims.clone(),
            Some(_) => {
                self.error(
                    key::CLAIMS,
                    "must be a JSON object",
                    "enter an object such as {\"scope\": \"read\"}",
                );
                Map::new()
            }
        };
        for (claim, field) in COMPUTED_CLAIMS {
            if claims.contains_key(*claim) {
                let fix = if field.is_empty() {
                    String::from("remove it: the connector computes it")
                } else {
                    format!("set it through `{}`", self.path(field))
                };
                self.error(
                    &format!("claims.{claim}"),
                    "would replace a claim the connector sets",
                    fix,
                );
            }
        }
        let private_key = self.optional_text(key::PRIVATE_KEY, true).map(Secret::new);
        let password = self
            .optional_text(key::PRIVATE_KEY_PASSWORD, true)
            .map(Secret::new);
        let shared_secret = self
            .optional_text(key::SHARED_SECRET, true)
            .map(Secret::new);
        let key_secrets: Vec<Secret> = password.iter().chain(&shared_secret).cloned().collect();
        let key = match (algorithm, private_key, shared_secret) {
            (None, _, _) => None,
            (Some(algorithm), Some(pem), None) => self.key(
                SigningKey::from_pem(algorithm, &pem, password.as_ref()),
                key::PRIVATE_KEY,
            ),
            (Some(algorithm), None, Some(secret)) => self.key(
                SigningKey::from_shared_secret(algorithm, &secret),
                key::SHARED_SECRET,
            ),
            (Some(_), None, None) => {
                self.error(
                    key::PRIVATE_KEY,
                    "required to sign the assertion",
                    "paste the PEM private key (or, for HS256, fill in `shared_secret`)",
                );
                None
            }
            (Some(_), Some(_), Some(_)) => {
                self.error(
                    key::SHARED_SECRET,
                    "cannot be used together with `private_key`",
                    "keep only the one the algorithm needs",
                );
                None
            }
        };
        Some(Assertion {
            header: header?,
            issuer,
            subject: if needs_subject {
                Some(subject?)
            } else {
                subject
            },
            audience,
            lifetime_secs: lifetime_secs?,
            claims,
            key: key?,
            key_secrets,
        })
    }

    fn key(&mut self, loaded: Result<SigningKey, KeyProblem>, field: &str) -> Option<SigningKey> {
        loaded
            .map_err(|problem| self.error(field, problem.message, problem.fix))
            .ok()
    }

    fn user_login(&mut self) -> Option<UserLogin> {
        let authorization_url =
            self.required_endpoint(key::AUTHORIZATION_URL, "for a browser login");
        let redirect_uri = self.redirect_uri();
        let prompt = self.prompt();
        let request_refresh_token = self.optional_bool(key::REQUEST_REFRESH_TOKEN);
        let refresh_token_scope = self
            .optional_text(key::REFRESH_TOKEN_SCOPE, false)
            .unwrap_or_else(|| String::from("offline_access"));
        let login_hint = self.optional_text(key::LOGIN_HINT, false);
        let issuer = self.optional_endpoint(key::ISSUER_ID).map(|_| {
            self.optional_text(key::ISSUER_ID, false)
                .unwrap_or_default()
        });
        let extra_params = self.string_map(key::EXTRA_AUTHORIZATION_PARAMS);
        for (name, _) in &extra_params {
            if RESERVED_AUTHORIZATION_PARAMETERS.contains(&name.as_str()) {
                self.error(
                    &format!("extra_authorization_params.{name}"),
                    "would replace a parameter the connector sets",
                    "remove it, or use the field that sets it",
                );
            }
        }
        let pkce = match self.choice(key::PKCE, PKCE_METHODS, "S256")? {
            "plain" => Pkce::Plain,
            "none" => Pkce::Disabled,
            _ => Pkce::S256,
        };
        Some(UserLogin {
            authorization_url: authorization_url?,
            redirect_uri: redirect_uri?,
            prompt,
            request_refresh_token,
            refresh_token_scope,
            login_hint,
            issuer,
            extra_params: NamedValues(extra_params),
            pkce,
        })
    }

    /// RFC 6749 section 3.1.2 and RFC 8252: an absolute URI without a
    /// fragment; `http` only on loopback, or a private-use scheme of a
    /// native app (such as `com.example.app:/callback`).
    fn redirect_uri(&mut self) -> Option<Url> {
        let text = self.required_text(key::REDIRECT_URI, false, "for a browser login")?;
        let url = match Url::parse(&text) {
            Ok(url) => url,
            Err(e) => {
                self.error(
                    key::REDIRECT_URI,
                    format!("`{text}` is not an absolute URI: {e}"),
                    "enter the address the browser returns to, such as http://127.0.0.1:53682/callback",
                );
                return None;
            }
        };
        if url.fragment().is_some() {
            self.error(
                key::REDIRECT_URI,
                "must not contain a fragment (`#…`)",
                "remove the part from `#` on",
            );
            return None;
        }
        if url.scheme() == "http" && !is_loopback(&url) {
            self.error(
                key::REDIRECT_URI,
                "plain http is allowed only for loopback addresses",
                "use https, or http://127.0.0.1:PORT/… for a local login",
            );
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.error(
                key::REDIRECT_URI,
                "must not carry a user name or password (`…@` before the host)",
                "remove the part up to and including `@`",
            );
            return None;
        }
        if url.scheme() == "http" && !written_as_read(&text, &url) {
            self.error(key::REDIRECT_URI, LOOPBACK_NOT_AS_WRITTEN, LOOPBACK_FIX);
            return None;
        }
        if url.scheme() == "http" && matches!(url.host(), Some(Host::Domain(_))) {
            // The same address with the literal host, for the user to copy
            // (and to register at the server in place of the old one).
            let mut literal = url.clone();
            let fix = match literal.set_host(Some("127.0.0.1")) {
                Ok(()) => format!(
                    "use the literal loopback address: {literal} (or [::1] in place of 127.0.0.1), and register it at the server"
                ),
                Err(_) => String::from(
                    "use the literal loopback address: http://127.0.0.1:PORT/… (or http://[::1]:PORT/…)",
                ),
            };
            self.error(
                key::REDIRECT_URI,
                "names `localhost`, which may resolve to another address or reach another program listening there (RFC 8252 section 8.3)",
                fix,
            );
            return None;
        }
        Some(url)
    }

    fn prompt(&mut self) -> Option<String> {
        let text = self.optional_text(key::PROMPT, false)?;
        let values: Vec<&str> = text.split_whitespace().collect();
        if let Some(bad) = values.iter().find(|v| !PROMPT_VALUES.contains(v)) {
            self.error(
                key::PROMPT,
                format!("`{bad}` is not a prompt value"),
                format!("use one or more of: {}", PROMPT_VALUES.join(", ")),
            );
            return None;
        }
        if values.contains(&"none") && values.len() > 1 {
            self.error(
                key::PROMPT,
                "`none` cannot be combined with other values",
                "use `none` alone",
            );
            return None;
        }
        (!values.is_empty()).then(|| values.join(" "))
    }

    /// RFC 6749 section 3.3: scope tokens of NQCHAR separated by spaces.
    fn scope(&mut self) -> Option<String> {
        let text = self.optional_text(key::SCOPE, false)?;
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let bad = tokens
            .iter()
            .flat_map(|token| token.chars())
            .find(|c| !matches!(*c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'));
        if let Some(c) = bad {
            self.error(
                key::SCOPE,
                format!("contains the character {c:?}, which a scope may not hold"),
                "separate scope values with spaces and use printable ASCII without `\"` or `\\`",
            );
            return None;
        }
        (!tokens.is_empty()).then(|| tokens.join(" "))
    }

    /// RFC 8707 section 2: an absolute URI without a fragment.
    fn resource(&mut self) -> Option<Url> {
        let text = self.optional_text(key::RESOURCE, false)?;
        match Url::parse(&text) {
            Ok(url) if url.fragment().is_none() => Some(url),
            Ok(_) => {
                self.error(
                    key::RESOURCE,
                    "must not contain a fragment (`#…`)",
                    "remove the part from `#` on",
                );
                None
            }
            Err(e) => {
                self.error(
                    key::RESOURCE,
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
                    &format!("{field}.{name}"),
                    "must be a string",
                    "quote the value, such as \"42\"",
                ),
            }
        }
        pairs
    }

    /// The extra body parameters; `carries_client` when the connector
    /// sends no client credentials, so the body may.
    fn extra_body(&mut self, carries_client: bool) -> Vec<(String, String)> {
        let pairs = self.string_map(key::EXTRA_BODY);
        for (name, _) in &pairs {
            if name.is_empty() {
                self.error(
                    key::EXTRA_BODY,
                    "holds a parameter without a name",
                    "give every parameter a name",
                );
            } else if carries_client && CLIENT_BODY_PARAMETERS.contains(&name.as_str()) {
                // The client's credentials as the seed's payload carries
                // them: the connector sends none of its own to collide.
            } else if RESERVED_BODY_PARAMETERS.contains(&name.as_str()) {
                let fix = if KNOWN_FIELDS.contains(&name.as_str()) {
                    format!("set it through the `{name}` field instead")
                } else {
                    String::from("remove it: the connector sets it for the grants that use it")
                };
                self.error(
                    &format!("extra_body.{name}"),
                    "would replace a parameter the connector sets",
                    fix,
                );
            }
        }
        pairs
    }

    fn extra_headers(&mut self) -> Vec<(String, String)> {
        let pairs = self.string_map(key::EXTRA_HEADERS);
        for (name, value) in &pairs {
            let field = format!("extra_headers.{name}");
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.error(
                    &field,
                    "is not a valid header name",
                    "use letters, digits and `-`, such as X-Api-Key",
                );
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                self.error(
                    &field,
                    "is set by the connector or the HTTP layer and cannot be replaced",
                    "remove it",
                );
            } else if http::HeaderValue::from_str(value).is_err() {
                self.error(
                    &field,
                    "holds a line break or another control character",
                    "put the value on one line of printable characters",
                );
            }
        }
        pairs
    }

    fn default_expires_in(&mut self) -> u64 {
        let field = key::DEFAULT_EXPIRES_IN;
        match self.get(field) {
            None => DEFAULT_EXPIRES_IN,
            Some(value) => match whole_number(value) {
                Some(secs @ 1..=MAX_DEFAULT_EXPIRES_IN) => secs,
                _ => {
                    self.error(
                        field,
                        format!("`{value}` is not a number of seconds from 1 to {MAX_DEFAULT_EXPIRES_IN}"),
                        format!("give the lifetime your server's tokens have, or leave it out for {DEFAULT_EXPIRES_IN} s"),
                    );
                    DEFAULT_EXPIRES_IN
                }
            },
        }
    }

    fn retry_check_level(&mut self) -> RetryCheckLevel {
        let field = key::TOKEN_RETRY_CHECK_LEVEL;
        match self.get(field) {
            None => RetryCheckLevel::default(),
            Some(value) => match whole_number(value) {
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

/// A non-negative whole number; JSON Schema counts `2.0` as the integer 2,
/// and so does this.
fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= u32::MAX as f64)
            .map(|n| n as u64)
    })
}

/// The known name nearest to a misspelt one, if it is near enough to be
/// the likely intent (a typo, not another word).
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lowered = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&lowered, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// A loopback address written in a short or odd form (`127.1`, `0x7f.1`,
/// `[0::1]`) is read as its full one, so the request would name another
/// address than the one written, and a form's check would disagree.
const LOOPBACK_NOT_AS_WRITTEN: &str = "writes its loopback address in a form that reads as another (such as `127.1` or `[0::1]`), or carries `…@` before it";
const LOOPBACK_FIX: &str = "write the address in full, as 127.0.0.1 (or [::1], or localhost for an endpoint), with no `…@` before it";

/// Whether a URL's host reads exactly as the text writes it (ignoring
/// case), with no user information before it.
fn written_as_read(text: &str, url: &Url) -> bool {
    let Some((_, rest)) = text.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let written = match authority.find(']') {
        Some(end) if authority.starts_with('[') => &authority[..=end],
        _ => authority.split(':').next().unwrap_or_default(),
    };
    url.host_str()
        .is_some_and(|read| read.eq_ignore_ascii_case(written))
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_oversized_document_is_refused_before_it_is_read() {
        let huge = format!(
            r#"{{"grant_type":"client_credentials","token_url":"https://as/t","client_id":"c","client_secret":"s","scope":"{}"}}"#,
            "a".repeat(MAX_CONFIG_BYTES)
        );
        let errors = Config::parse(&huge).expect_err("too large");
        assert!(errors[0].message.contains("KiB"), "{:?}", errors[0]);
        assert!(crate::merge_layers("{}", Some(&huge), None).is_err());
    }

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
        assert!(matches!(config.client.auth, ClientAuth::Basic(_)));
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
        doc.as_object_mut().map(|o| o.remove("client_secret"));
        assert_eq!(fields(doc.clone()), ["client_id", "client_secret"]);
        // A null is reported as such, not taken for an absent field.
        doc["client_secret"] = Value::Null;
        let errors = parse(doc).expect_err("invalid");
        assert_eq!(errors[0].field, "client_secret");
        assert_eq!(errors[0].message, "is null");
    }

    #[test]
    fn plain_http_is_allowed_on_loopback_only() {
        for url in [
            "http://127.0.0.1:8080/token",
            "http://localhost/t",
            "http://[::1]:9/t",
            "http://127.9.9.9/t",
            "HTTP://LOCALHOST:8080/t",
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
            // Read as 127.0.0.1 or ::1, so not the address written.
            "http://127.1:8080/t",
            "http://0x7f.1/t",
            "http://[0::1]/t",
            "http://127.0.0.1:1@127.0.0.1/t",
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

    const RSA_KEY: &str = include_str!("../../testdata/rsa-pkcs8.pem");
    const ENCRYPTED_KEY: &str = include_str!("../../testdata/rsa-pkcs8-encrypted.pem");

    #[test]
    fn each_grant_names_the_fields_it_needs() {
        let base = json!({"token_url": "https://as.example.com/token", "client_id": "app", "client_secret": "s"});
        let with = |extra: Value| {
            let mut doc = base.clone();
            for (k, v) in extra.as_object().expect("object") {
                doc[k] = v.clone();
            }
            fields(doc)
        };
        assert_eq!(
            with(json!({"grant_type": "password"})),
            ["username", "password"]
        );
        assert_eq!(with(json!({"grant_type": "jwt_bearer"})), ["jwt"]);
        assert_eq!(
            with(json!({"grant_type": "authorization_code"})),
            ["authorization_url", "redirect_uri"]
        );
        assert_eq!(
            with(json!({"grant_type": "client_credentials", "client_auth": "private_key_jwt"})),
            ["client_secret", "client_assertion"]
        );
        assert_eq!(
            with(json!({"grant_type": "client_credentials", "username": "u"})),
            ["username"],
            "a field of another grant is pointed out"
        );
    }

    #[test]
    fn assertion_problems_are_named_inside_the_object() {
        let doc = json!({
            "grant_type": "jwt_bearer",
            "token_url": "https://as.example.com/token",
            "client_auth": "none",
            "jwt": {
                "header": {"alg": "ES256"},
                "subject": "alice",
                "lifetime_secs": 0,
                "claims": {"exp": 1, "iss": "x"},
                "private_key": RSA_KEY,
                "colour": "red",
            },
        });
        let errors = parse(doc).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "jwt.colour",
                "jwt.lifetime_secs",
                "jwt.claims.iss",
                "jwt.claims.exp",
                "jwt.private_key"
            ]
        );
        let key_error = &errors[4];
        assert!(
            key_error.message.contains("RSA key, but ES256"),
            "{key_error:?}"
        );
        assert!(errors[2].fix.contains("jwt.issuer"), "{:?}", errors[2]);
    }

    #[test]
    fn an_encrypted_key_needs_its_password() {
        let doc = |password: Option<&str>| {
            let mut doc = json!({
                "grant_type": "jwt_bearer",
                "token_url": "https://as.example.com/token",
                "client_auth": "none",
                "jwt": {"header": {"alg": "RS256"}, "issuer": "i", "subject": "s", "private_key": ENCRYPTED_KEY},
            });
            if let Some(password) = password {
                doc["jwt"]["private_key_password"] = json!(password);
            }
            doc
        };
        assert!(parse(doc(Some("correct horse"))).is_ok());
        let errors = parse(doc(Some("battery staple"))).expect_err("wrong password");
        assert_eq!(errors[0].field, "jwt.private_key");
        assert_eq!(
            errors[0].message,
            "the password does not open the private key"
        );
        assert!(
            !format!("{errors:?}").contains("battery"),
            "the password is never quoted"
        );
        assert_eq!(fields(doc(None)), ["jwt.private_key"]);
    }

    #[test]
    fn browser_logins_check_their_urls_and_prompt() {
        let doc = json!({
            "grant_type": "authorization_code",
            "token_url": "https://as.example.com/token",
            "authorization_url": "http://as.example.com/authorize",
            "redirect_uri": "http://192.0.2.1/callback",
            "client_id": "app",
            "client_auth": "none",
            "prompt": "none login",
            "pkce": "S512",
            "extra_authorization_params": {"state": "x", "ui_locales": "de"},
        });
        assert_eq!(
            fields(doc),
            [
                "authorization_url",
                "redirect_uri",
                "prompt",
                "extra_authorization_params.state",
                "pkce"
            ]
        );
    }

    #[test]
    fn identities_that_cannot_default_are_required() {
        let login = json!({
            "grant_type": "authorization_code",
            "token_url": "https://as.example.com/token",
            "authorization_url": "https://as.example.com/authorize",
            "redirect_uri": "http://127.0.0.1/cb",
            "client_auth": "none",
        });
        assert_eq!(fields(login), ["client_id"]);
        let bearer = json!({
            "grant_type": "jwt_bearer",
            "token_url": "https://as.example.com/token",
            "client_auth": "none",
            "jwt": {"header": {"alg": "RS256"}, "subject": "s", "private_key": RSA_KEY},
        });
        assert_eq!(fields(bearer), ["jwt.issuer"]);
        let client_assertion = json!({
            "grant_type": "client_credentials",
            "token_url": "https://as.example.com/token",
            "client_id": "app",
            "client_auth": "private_key_jwt",
            "client_assertion": {"header": {"alg": "RS256"}, "issuer": "other", "private_key": RSA_KEY},
        });
        assert_eq!(fields(client_assertion), ["client_assertion.issuer"]);
    }

    #[test]
    fn debug_output_names_extra_values_without_showing_them() {
        let mut doc = minimal();
        doc["extra_headers"] = json!({"X-Api-Key": "key-value-secret"});
        doc["extra_body"] = json!({"tenant_secret": "body-value-secret"});
        let shown = format!("{:?}", parse(doc).expect("valid"));
        assert!(
            shown.contains("X-Api-Key") && shown.contains("tenant_secret"),
            "{shown}"
        );
        assert!(!shown.contains("value-secret"), "{shown}");
    }

    #[test]
    fn implicit_needs_no_token_url() {
        let config = parse(json!({
            "grant_type": "implicit",
            "authorization_url": "https://as.example.com/authorize",
            "redirect_uri": "https://app.example.com/cb",
            "client_id": "app",
            "client_auth": "none",
        }))
        .expect("valid");
        assert!(config.token_url.is_none());
        assert!(config.token_endpoint().is_err());
    }

    #[test]
    fn misspelt_fields_and_choices_get_a_suggestion() {
        let mut doc = minimal();
        doc["client_secert"] = json!("x");
        doc["Token-Url"] = json!("y");
        doc["client_auth"] = json!("basci");
        doc["jwt"] = json!({"headr": {}});
        doc["grant_type"] = json!("jwt_bearer");
        doc["colour"] = json!("blue");
        let errors = parse(doc).expect_err("invalid");
        let fix = |field: &str| {
            errors
                .iter()
                .find(|e| e.field == field)
                .map(|e| e.fix.clone())
                .unwrap_or_else(|| panic!("no error for {field}: {errors:?}"))
        };
        assert_eq!(fix("client_secert"), "did you mean `client_secret`?");
        assert_eq!(fix("Token-Url"), "did you mean `token_url`?");
        assert!(fix("client_auth").starts_with("did you mean `basic`?"));
        assert_eq!(fix("jwt.headr"), "did you mean `jwt.header`?");
        assert!(
            fix("colour").starts_with("remove it; known fields are"),
            "{}",
            fix("colour")
        );
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
