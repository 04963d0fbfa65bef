//! The JSON Schema (draft 2020-12) of the configuration document.
//!
//! Besides standard keywords, fields carry presentation hints for engines
//! that lay out forms: `x-group` (the form section), `x-order` (position
//! within the whole form) and `x-show-when` (the values of another field
//! for which this one applies, mirroring the `if`/`then` rules).

use serde_json::{Value, json};

use crate::config::key;

/// A `required` rule that applies when `field` has one of `values`; a
/// field's default counts when it is absent.
fn when(field: &str, values: &[&str], default: Option<&str>, required: &[&str]) -> Value {
    let matches = json!({"properties": {field: {"enum": values}}, "required": [field]});
    let condition = if default.is_some_and(|d| values.contains(&d)) {
        json!({"anyOf": [{"not": {"required": [field]}}, matches]})
    } else {
        matches
    };
    // A required field must not be empty either: an empty input is how a
    // form leaves it unfilled.
    let non_empty: serde_json::Map<String, Value> = required
        .iter()
        .map(|name| ((*name).to_owned(), json!({"minLength": 1})))
        .collect();
    json!({"if": condition, "then": {"required": required, "properties": non_empty}})
}

/// A field absent, or empty as a form leaves it.
fn unfilled(field: &str) -> Value {
    json!({"anyOf": [{"not": {"required": [field]}}, {"properties": {field: {"const": ""}}, "required": [field]}]})
}

/// When a document without `client_auth` authenticates its client by
/// nothing: it names no credentials of its own, and its grant needs none
/// (JWT bearer, RFC 7523 section 3.1) or its body carries them.
fn public_by_default() -> Value {
    json!({"allOf": [
        unfilled(key::CLIENT_ID),
        unfilled(key::CLIENT_SECRET),
        {"not": {"required": [key::CLIENT_ASSERTION]}},
        {"anyOf": [
            {"properties": {key::GRANT_TYPE: {"const": "jwt_bearer"}}, "required": [key::GRANT_TYPE]},
            {"properties": {key::EXTRA_BODY: {"type": "object", "required": [key::CLIENT_ID]}}, "required": [key::EXTRA_BODY]}
        ]}
    ]})
}

/// A rule that forbids `fields` unless `field` has one of `values`.
fn only_when(field: &str, values: &[&str], default: Option<&str>, fields: &[&str]) -> Value {
    let matches = json!({"properties": {field: {"enum": values}}, "required": [field]});
    let condition = if default.is_some_and(|d| values.contains(&d)) {
        json!({"anyOf": [{"not": {"required": [field]}}, matches]})
    } else {
        matches
    };
    let absent: serde_json::Map<String, Value> = fields
        .iter()
        .map(|name| ((*name).to_owned(), json!(false)))
        .collect();
    json!({"if": condition, "else": {"properties": absent}})
}

/// An absolute URL with no fragment: `https`, or `http` on loopback only.
/// Empty matches too: whether a field is required is a rule of its own.
/// Schemes and host names match in any casing, as URLs treat them.
const ENDPOINT_PATTERN: &str = r"^$|^([Hh][Tt][Tt][Pp][Ss]://[^#\s]+|[Hh][Tt][Tt][Pp]://([Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|\[::1\])(:[0-9]+)?([/?][^#\s]*)?)$";
/// An absolute URI without a fragment (RFC 8707's resource).
const ABSOLUTE_URI_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9+.-]*:[^#\s]+$";
/// A redirect URI: absolute, no fragment, plain `http` only on loopback.
/// No user information (`…@`) before the host, and a loopback address
/// written in full, as it reads.
const REDIRECT_PATTERN: &str = r"^$|^(?![A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*@)(?![Hh][Tt][Tt][Pp]://(?!(127(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|\[::1\])([:/?]|$)))[A-Za-z][A-Za-z0-9+.-]*:[^#\s]+$";

/// A header name (RFC 9110 token) that is none of the reserved ones, in
/// any casing.
fn header_name_pattern() -> String {
    let reserved: Vec<String> = crate::config::RESERVED_HEADERS
        .iter()
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else {
                        regex_escape(c)
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?!({})$)[!#$%&'*+.^_`|~0-9A-Za-z-]+$", reserved.join("|"))
}

fn regex_escape(c: char) -> String {
    if c.is_ascii_alphanumeric() || c == '_' {
        c.to_string()
    } else {
        format!("\\{c}")
    }
}

fn assertion_schema(title: &str, description: &str, client: bool) -> Value {
    let hmac = ["HS256", "HS384", "HS512"];
    let computed =
        ["iss", "sub", "aud", "exp", "iat", "jti"].map(|claim| json!({"required": [claim]}));
    let mut schema = json!({
        "title": title,
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "properties": {
            key::HEADER: {
                "title": "JWT header",
                "description": "The JOSE header, signed as given. `alg` chooses the algorithm: RS256/384/512, PS256/384/512, ES256/384, EdDSA, or HS256/384/512 with a shared secret. Add `kid` or `x5t` if the server needs them.",
                "type": "object",
                "required": ["alg"],
                "properties": {"alg": {"enum": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"]}},
                "default": {"alg": "RS256", "typ": "JWT"}
            },
            key::ISSUER: {"title": "Issuer (iss)", "description": "Who issues the assertion. Default: the client ID.", "type": "string"},
            key::SUBJECT: {"title": "Subject (sub)", "description": "Whom the token is for. Default: the client ID; required for the JWT bearer grant.", "type": "string"},
            key::AUDIENCE: {"title": "Audience (aud)", "description": "Who the assertion is for. Default: the token URL.", "type": "string"},
            key::LIFETIME_SECS: {"title": "Lifetime (seconds)", "description": "Seconds from issue to expiry of the assertion.", "type": "integer", "minimum": 1, "maximum": 86400, "default": 300},
            key::CLAIMS: {"title": "Extra claims", "description": "Further payload claims, such as a scope. iss, sub, aud, exp, iat and jti are set by the connector.", "type": "object", "default": {}},
            key::PRIVATE_KEY: {"title": "Private key (PEM)", "description": "PKCS#8, PKCS#1, SEC1 or encrypted PKCS#8, from -----BEGIN to the END----- line.", "type": "string", "writeOnly": true, "format": "password", "contentMediaType": "application/x-pem-file", "x-multiline": true},
            key::PRIVATE_KEY_PASSWORD: {"title": "Private key password", "description": "For an encrypted private key.", "type": "string", "writeOnly": true, "format": "password"},
            key::SHARED_SECRET: {"title": "Shared secret", "description": "For HS256, HS384 or HS512 instead of a private key: at least 32, 48 or 64 characters.", "type": "string", "writeOnly": true, "format": "password"}
        },
        "allOf": [
            // An HMAC algorithm signs with the shared secret, the others with
            // the private key; the header defaults to RS256.
            {
                "if": {"properties": {key::HEADER: {"properties": {"alg": {"enum": hmac}}, "required": ["alg"]}}, "required": [key::HEADER]},
                "then": {"required": [key::SHARED_SECRET], "properties": {key::PRIVATE_KEY: {"maxLength": 0}}},
                "else": {"required": [key::PRIVATE_KEY], "properties": {key::PRIVATE_KEY: {"minLength": 1}, key::SHARED_SECRET: {"maxLength": 0}}}
            },
            {"if": {"properties": {key::HEADER: {"properties": {"alg": {"const": "HS256"}}}}}, "then": {"properties": {key::SHARED_SECRET: {"minLength": 32}}}},
            {"if": {"properties": {key::HEADER: {"properties": {"alg": {"const": "HS384"}}}}}, "then": {"properties": {key::SHARED_SECRET: {"minLength": 48}}}},
            {"if": {"properties": {key::HEADER: {"properties": {"alg": {"const": "HS512"}}}}}, "then": {"properties": {key::SHARED_SECRET: {"minLength": 64}}}}
        ]
    });
    // The form's order within the assertion is the list's: what is signed,
    // then the key.
    for (position, name) in (1..).zip(crate::config::ASSERTION_FIELDS) {
        schema["properties"][name]["x-order"] = json!(position);
    }
    schema["properties"][key::PRIVATE_KEY]["pattern"] =
        json!("^$|-----BEGIN [A-Z ]*PRIVATE KEY-----");
    schema["properties"][key::CLAIMS]["not"] = json!({"anyOf": computed});
    if client {
        // RFC 7523 section 3: a client assertion's iss and sub are the client id.
        schema["properties"][key::ISSUER] = json!(false);
        schema["properties"][key::SUBJECT] = json!(false);
    }
    schema
}

/// The schema as a JSON value.
pub fn schema() -> Value {
    let browser = json!({key::GRANT_TYPE: ["authorization_code", "implicit"]});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:oauth2:connector:config:0.1.0",
        "title": "OAuth 2.0 connection",
        "description": "How the connector obtains access tokens from an OAuth 2.0 authorization server.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            key::GRANT_TYPE: {
                "title": "Grant type",
                "description": "How the connector obtains tokens.",
                "default": "refresh_token",
                "oneOf": [
                    {"const": "refresh_token", "title": "Refresh token (exchange a stored refresh token)"},
                    {"const": "client_credentials", "title": "Client credentials (the application acts for itself)"},
                    {"const": "password", "title": "Password (deprecated by RFC 9700: the application handles the user's password)"},
                    {"const": "jwt_bearer", "title": "JWT bearer (a signed assertion, RFC 7523)"},
                    {"const": "authorization_code", "title": "Authorization code (a user logs in through the browser, with PKCE)"},
                    {"const": "implicit", "title": "Implicit (deprecated: the token comes back in the browser redirect)"}
                ],
                "x-group": "Connection", "x-order": 1
            },
            key::TOKEN_URL: {
                "title": "Token URL",
                "description": "The authorization server's token endpoint. Must use https, except on the loopback interface (localhost, 127.0.0.1, ::1). Not used by the implicit grant.",
                "type": "string", "format": "uri", "pattern": ENDPOINT_PATTERN,
                "examples": ["https://login.example.com/oauth2/token"],
                "x-group": "Connection", "x-order": 2
            },
            key::REFRESH_TOKEN: {
                "title": "Refresh token",
                "description": "For the refresh token grant: the refresh token to exchange. When the server rotates it, the host stores the new one.",
                "type": "string", "writeOnly": true, "format": "password",
                "x-group": "Connection", "x-order": 3,
                "x-show-when": {key::GRANT_TYPE: ["refresh_token"]}
            },
            key::SCOPE: {
                "title": "Scope",
                "description": "Optional. The scopes to request, separated by spaces.",
                "type": "string", "pattern": "^[\\s!#-\\[\\]-~]*$",
                "x-group": "Connection", "x-order": 4
            },
            key::USERNAME: {
                "title": "User name",
                "description": "For the password grant: the user whose password is sent.",
                "type": "string",
                "x-group": "Connection", "x-order": 5,
                "x-show-when": {key::GRANT_TYPE: ["password"]}
            },
            key::PASSWORD: {
                "title": "Password",
                "description": "For the password grant: the user's password.",
                "type": "string", "writeOnly": true, "format": "password",
                "x-group": "Connection", "x-order": 6,
                "x-show-when": {key::GRANT_TYPE: ["password"]}
            },
            key::CLIENT_ID: {
                "title": "Client ID",
                "description": "The identifier the authorization server issued to this application. Optional only with client authentication `none`.",
                "type": "string", "minLength": 1,
                "x-group": "Client authentication", "x-order": 10
            },
            key::CLIENT_AUTH: {
                "title": "Client authentication",
                "description": "How the application proves its identity to the token endpoint.",
                "default": "basic",
                "oneOf": [
                    {"const": "basic", "title": "Client secret in the HTTP Basic Authorization header (client_secret_basic)"},
                    {"const": "body", "title": "Client secret in the request body (client_secret_post)"},
                    {"const": "none", "title": "None: a public client, or the assertion authenticates"},
                    {"const": "private_key_jwt", "title": "A JWT signed with the application's private key (private_key_jwt)"}
                ],
                "x-group": "Client authentication", "x-order": 11
            },
            key::CLIENT_SECRET: {
                "title": "Client secret",
                "description": "The secret the authorization server issued with the client ID, for client authentication `basic` or `body`.",
                "type": "string", "minLength": 1, "writeOnly": true, "format": "password",
                "x-group": "Client authentication", "x-order": 12,
                "x-show-when": {key::CLIENT_AUTH: ["basic", "body"]}
            },
            key::CLIENT_ASSERTION: assertion_schema(
                "Client assertion",
                "For client authentication `private_key_jwt`: how the client's JWT is signed. Its issuer and subject are the client ID.",
                true
            ).as_object().map(|o| {
                let mut o = o.clone();
                o.insert("x-group".into(), json!("Client authentication"));
                o.insert("x-order".into(), json!(13));
                o.insert("x-show-when".into(), json!({key::CLIENT_AUTH: ["private_key_jwt"]}));
                Value::Object(o)
            }).unwrap_or_default(),
            key::JWT: assertion_schema(
                "JWT bearer assertion",
                "For the JWT bearer grant: the assertion exchanged for a token.",
                false
            ).as_object().map(|o| {
                let mut o = o.clone();
                o.insert("x-group".into(), json!("JWT"));
                o.insert("x-order".into(), json!(20));
                o.insert("x-show-when".into(), json!({key::GRANT_TYPE: ["jwt_bearer"]}));
                Value::Object(o)
            }).unwrap_or_default(),
            key::AUTHORIZATION_URL: {
                "title": "Authorization URL",
                "description": "For browser logins: the authorization endpoint the user is sent to.",
                "type": "string", "format": "uri", "pattern": ENDPOINT_PATTERN,
                "x-group": "User login", "x-order": 40, "x-show-when": browser
            },
            key::REDIRECT_URI: {
                "title": "Redirect URI",
                "description": "For browser logins: where the browser returns, exactly as registered with the server (http only on loopback, such as http://127.0.0.1:53682/callback).",
                "type": "string", "format": "uri", "pattern": REDIRECT_PATTERN,
                "x-group": "User login", "x-order": 41, "x-show-when": browser
            },
            key::PROMPT: {
                "title": "Prompt",
                "description": "Optional. Whether the server must show its login or consent page: consent, login, select_account, or none; several separated by spaces (none alone).",
                "type": "string", "pattern": "^\\s*(none|((consent|login|select_account)(\\s+(consent|login|select_account))*))?\\s*$",
                "x-group": "User login", "x-order": 42, "x-show-when": browser
            },
            key::REQUEST_REFRESH_TOKEN: {
                "title": "Request a refresh token",
                "description": "Ask for a refresh token by adding the refresh-token scope to the login.",
                "type": "boolean", "default": false,
                "x-group": "User login", "x-order": 43, "x-show-when": browser
            },
            key::REFRESH_TOKEN_SCOPE: {
                "title": "Refresh-token scope",
                "description": "The scope that asks for a refresh token.",
                "type": "string", "default": "offline_access",
                "x-group": "User login", "x-order": 44, "x-show-when": browser
            },
            key::LOGIN_HINT: {
                "title": "Login hint",
                "description": "Optional. Who is expected to log in, such as an e-mail address.",
                "type": "string",
                "x-group": "User login", "x-order": 45, "x-show-when": browser
            },
            key::ISSUER_ID: {
                "title": "Issuer",
                "description": "Optional. The authorization server's issuer identifier (its metadata's `issuer`). When set, a login's redirect must name it in `iss` (RFC 9207), so a redirect from another server is refused. Set it when the server sends `iss` (`authorization_response_iss_parameter_supported`).",
                "type": "string", "format": "uri", "pattern": ENDPOINT_PATTERN,
                "x-group": "User login", "x-order": 48, "x-show-when": browser
            },
            key::PKCE: {
                "title": "PKCE",
                "description": "Proof Key for Code Exchange (RFC 7636). Keep S256 unless the server cannot.",
                "default": "S256",
                "oneOf": [
                    {"const": "S256", "title": "S256 (recommended)"},
                    {"const": "plain", "title": "plain"},
                    {"const": "none", "title": "Off"}
                ],
                "x-group": "User login", "x-order": 46, "x-show-when": {key::GRANT_TYPE: ["authorization_code"]}
            },
            key::EXTRA_AUTHORIZATION_PARAMS: {
                "title": "Extra authorization parameters",
                "description": "Optional. Further parameters of the login URL, such as ui_locales.",
                "type": "object", "additionalProperties": {"type": "string"}, "default": {},
                "propertyNames": {"not": {"enum": crate::config::RESERVED_AUTHORIZATION_PARAMETERS}},
                "x-group": "User login", "x-order": 47, "x-show-when": browser
            },
            key::AUDIENCE: {
                "title": "Audience",
                "description": "Optional. The API the token is for, for servers that require an `audience` parameter.",
                "type": "string",
                "x-group": "Advanced", "x-order": 60
            },
            key::RESOURCE: {
                "title": "Resource",
                "description": "Optional. The absolute URI of the resource the token is for (RFC 8707).",
                "type": "string", "format": "uri", "pattern": "^$|".to_owned() + ABSOLUTE_URI_PATTERN,
                "x-group": "Advanced", "x-order": 61
            },
            key::EXTRA_BODY: {
                "title": "Extra body parameters",
                "description": "Optional. Further form parameters sent with every token request. They may not replace parameters the connector sets.",
                // The values are often credentials (an API key, a second
                // secret): hidden wherever the document is shown.
                "type": "object", "additionalProperties": {"type": "string", "writeOnly": true}, "default": {},
                "propertyNames": {"minLength": 1, "not": {"enum": crate::config::RESERVED_BODY_PARAMETERS
                    .iter()
                    .filter(|name| !crate::config::CLIENT_BODY_PARAMETERS.contains(name))
                    .collect::<Vec<_>>()}},
                "x-group": "Advanced", "x-order": 62
            },
            key::EXTRA_HEADERS: {
                "title": "Extra request headers",
                "description": "Optional. Further HTTP headers sent with every token request. Authorization, Content-Type, Content-Length, Host, Transfer-Encoding and Connection cannot be set here; Accept replaces the default.",
                "type": "object", "default": {},
                "additionalProperties": {"type": "string", "writeOnly": true, "pattern": "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F]*$"},
                "propertyNames": {"pattern": header_name_pattern()},
                "x-group": "Advanced", "x-order": 63
            },
            key::INTROSPECTION_URL: {
                "title": "Introspection URL",
                "description": "Optional. The server's token introspection endpoint (RFC 7662), to ask whether a token is still active. Must use https, except on the loopback interface.",
                "type": "string", "format": "uri", "pattern": ENDPOINT_PATTERN,
                "x-group": "Advanced", "x-order": 65
            },
            key::REVOCATION_URL: {
                "title": "Revocation URL",
                "description": "Optional. The server's token revocation endpoint (RFC 7009), to revoke a token that is no longer needed. Must use https, except on the loopback interface.",
                "type": "string", "format": "uri", "pattern": ENDPOINT_PATTERN,
                "x-group": "Advanced", "x-order": 66
            },
            key::BEARER_ANY_TOKEN_TYPE: {
                "title": "Send any token as a Bearer token",
                "description": "Send the access token in `Authorization: Bearer` even when the server names another token type (some servers say `JWT` or nothing useful). Leave off unless the API accepts it: a proof-of-possession token (DPoP, MAC) does not work this way.",
                "type": "boolean", "default": false,
                "x-group": "Advanced", "x-order": 67
            },
            key::DEFAULT_EXPIRES_IN: {
                "title": "Default token lifetime (seconds)",
                "description": "How long a token lasts when the server's answer does not say (no `expires_in`). Tokens are renewed a quarter of their lifetime before they end, at most 60 s before.",
                "type": "integer", "default": 300, "minimum": 1, "maximum": 86400,
                "x-group": "Advanced", "x-order": 68
            },
            key::TOKEN_RETRY_CHECK_LEVEL: {
                "title": "Token retry check level",
                "description": "How much evidence a 401 from an API must carry before the token is renewed and the call retried.",
                "type": "integer", "default": 3,
                "oneOf": [
                    {"const": 1, "title": "1: any 401"},
                    {"const": 2, "title": "2: a 401 with a Bearer challenge"},
                    {"const": 3, "title": "3: a 401 whose Bearer challenge says invalid_token"}
                ],
                "x-group": "Advanced", "x-order": 64
            }
        },
        "allOf": [
            when(key::GRANT_TYPE, &["refresh_token"], Some("refresh_token"), &[key::REFRESH_TOKEN]),
            when(key::GRANT_TYPE, &["password"], Some("refresh_token"), &[key::USERNAME, key::PASSWORD]),
            when(key::GRANT_TYPE, &["jwt_bearer"], Some("refresh_token"), &[key::JWT]),
            when(key::GRANT_TYPE, &["authorization_code", "implicit"], Some("refresh_token"), &[key::AUTHORIZATION_URL, key::REDIRECT_URI, key::CLIENT_ID]),
            when(key::GRANT_TYPE, &["refresh_token", "client_credentials", "password", "jwt_bearer", "authorization_code"], Some("refresh_token"), &[key::TOKEN_URL]),
            {"if": {"anyOf": [
                        {"properties": {key::CLIENT_AUTH: {"enum": ["basic", "body"]}}, "required": [key::CLIENT_AUTH]},
                        {"not": {"anyOf": [{"required": [key::CLIENT_AUTH]}, public_by_default()]}}
                    ]},
             "then": {"required": [key::CLIENT_ID, key::CLIENT_SECRET],
                      "properties": {key::CLIENT_ID: {"minLength": 1}, key::CLIENT_SECRET: {"minLength": 1}}}},
            // The body may carry the client's credentials only when the
            // connector sends none of its own.
            {"if": {"allOf": [
                        unfilled(key::CLIENT_ID),
                        {"anyOf": [
                            {"properties": {key::CLIENT_AUTH: {"const": "none"}}, "required": [key::CLIENT_AUTH]},
                            {"allOf": [{"not": {"required": [key::CLIENT_AUTH]}}, public_by_default()]}
                        ]}
                    ]},
             "else": {"properties": {key::EXTRA_BODY: {"propertyNames": {"not": {"enum": crate::config::CLIENT_BODY_PARAMETERS}}}}}},
            when(key::CLIENT_AUTH, &["private_key_jwt"], Some("basic"), &[key::CLIENT_ID, key::CLIENT_ASSERTION]),
            only_when(key::GRANT_TYPE, &["password"], Some("refresh_token"), &[key::USERNAME, key::PASSWORD]),
            only_when(key::GRANT_TYPE, &["jwt_bearer"], Some("refresh_token"), &[key::JWT]),
            only_when(key::GRANT_TYPE, &["authorization_code", "implicit"], Some("refresh_token"), &[key::ISSUER_ID]),
            only_when(key::CLIENT_AUTH, &["basic", "body"], Some("basic"), &[key::CLIENT_SECRET]),
            only_when(key::CLIENT_AUTH, &["private_key_jwt"], Some("basic"), &[key::CLIENT_ASSERTION]),
            // A public client's code exchange is protected by S256 alone.
            {"if": {"properties": {key::GRANT_TYPE: {"const": "authorization_code"}, key::CLIENT_AUTH: {"const": "none"}},
                    "required": [key::GRANT_TYPE, key::CLIENT_AUTH]},
             "then": {"properties": {key::PKCE: {"const": "S256"}}}},
            {"if": {"properties": {key::GRANT_TYPE: {"const": "jwt_bearer"}}, "required": [key::GRANT_TYPE]},
             "then": {"properties": {key::JWT: {"required": [key::SUBJECT], "properties": {key::SUBJECT: {"minLength": 1}}}}}},
            // Without a client id, the JWT bearer assertion names its own issuer.
            {"if": {"properties": {key::GRANT_TYPE: {"const": "jwt_bearer"}, key::CLIENT_ID: {"maxLength": 0}}, "required": [key::GRANT_TYPE]},
             "then": {"properties": {key::JWT: {"required": [key::ISSUER], "properties": {key::ISSUER: {"minLength": 1}}}}}}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        ASSERTION_FIELDS, CLIENT_AUTH_METHODS, GRANT_TYPES, KNOWN_FIELDS, PKCE_METHODS,
    };

    fn consts(field: &str) -> Vec<String> {
        schema()["properties"][field]["oneOf"]
            .as_array()
            .expect("oneOf")
            .iter()
            .map(|choice| choice["const"].as_str().expect("const").to_owned())
            .collect()
    }

    fn sorted_keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort_unstable();
        keys
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn every_field_the_parser_knows_is_described() {
        let schema = schema();
        assert_eq!(sorted_keys(&schema["properties"]), sorted(KNOWN_FIELDS));
        for nested in ["jwt", "client_assertion"] {
            assert_eq!(
                sorted_keys(&schema["properties"][nested]["properties"]),
                sorted(ASSERTION_FIELDS)
            );
        }
        for (name, property) in schema["properties"].as_object().expect("properties") {
            assert!(property["title"].is_string(), "{name} has no title");
            assert!(
                property["description"].is_string(),
                "{name} has no description"
            );
            assert!(property["x-group"].is_string(), "{name} has no group");
            assert!(property["x-order"].is_u64(), "{name} has no order");
        }
        for nested in ["jwt", "client_assertion"] {
            for (name, property) in schema["properties"][nested]["properties"]
                .as_object()
                .expect("properties")
            {
                if property.is_object() {
                    assert!(
                        property["title"].is_string(),
                        "{nested}.{name} has no title"
                    );
                    assert!(property["x-order"].is_u64(), "{nested}.{name} has no order");
                }
            }
        }
    }

    #[test]
    fn choices_match_the_parser() {
        assert_eq!(consts("grant_type"), GRANT_TYPES);
        assert_eq!(consts("client_auth"), CLIENT_AUTH_METHODS);
        assert_eq!(consts("pkce"), PKCE_METHODS);
        let schema = schema();
        let algorithms: Vec<&str> =
            schema["properties"]["jwt"]["properties"]["header"]["properties"]["alg"]["enum"]
                .as_array()
                .expect("enum")
                .iter()
                .filter_map(Value::as_str)
                .collect();
        assert_eq!(algorithms, crate::jwt::ALGORITHMS);
    }

    #[test]
    fn secrets_are_write_only() {
        let schema = schema();
        for field in ["client_secret", "refresh_token", "password"] {
            assert_eq!(schema["properties"][field]["writeOnly"], true, "{field}");
        }
        for field in ["private_key", "private_key_password", "shared_secret"] {
            assert_eq!(
                schema["properties"]["jwt"]["properties"][field]["writeOnly"], true,
                "{field}"
            );
        }
        // Extra headers and parameters often carry API keys.
        for field in ["extra_headers", "extra_body"] {
            assert_eq!(
                schema["properties"][field]["additionalProperties"]["writeOnly"], true,
                "{field}"
            );
        }
    }
}
