//! The JSON Schema (draft 2020-12) of the configuration document.
//!
//! Besides standard keywords, fields carry presentation hints for engines
//! that lay out forms: `x-group` (the form section), `x-order` (position
//! within the whole form) and `x-show-when` (the `grant_type` values for
//! which the field applies, mirroring the `if`/`then` rules).

use serde_json::{Value, json};

/// The schema as a JSON value.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:oauth2:connector:config:0.1.0",
        "title": "OAuth 2.0 connection",
        "description": "How the connector obtains access tokens from an OAuth 2.0 authorization server.",
        "type": "object",
        "additionalProperties": false,
        "required": ["token_url", "client_id", "client_secret"],
        "properties": {
            "grant_type": {
                "title": "Grant type",
                "description": "How the connector obtains tokens.",
                "default": "refresh_token",
                "oneOf": [
                    {"const": "refresh_token", "title": "Refresh token (exchange a stored refresh token)"},
                    {"const": "client_credentials", "title": "Client credentials (the application acts for itself)"}
                ],
                "x-group": "Connection", "x-order": 1
            },
            "token_url": {
                "title": "Token URL",
                "description": "The authorization server's token endpoint. Must use https, except on the loopback interface (localhost, 127.0.0.1, ::1).",
                "type": "string", "format": "uri", "minLength": 1,
                "examples": ["https://login.example.com/oauth2/token"],
                "x-group": "Connection", "x-order": 2
            },
            "client_id": {
                "title": "Client ID",
                "description": "The identifier the authorization server issued to this application.",
                "type": "string", "minLength": 1,
                "x-group": "Client authentication", "x-order": 10
            },
            "client_secret": {
                "title": "Client secret",
                "description": "The secret the authorization server issued with the client ID.",
                "type": "string", "minLength": 1, "writeOnly": true, "format": "password",
                "x-group": "Client authentication", "x-order": 11
            },
            "client_auth": {
                "title": "Client authentication",
                "description": "Where the client ID and secret are sent. Most servers accept the Authorization header; some require the form body.",
                "default": "basic",
                "oneOf": [
                    {"const": "basic", "title": "HTTP Basic Authorization header (client_secret_basic)"},
                    {"const": "body", "title": "In the request body (client_secret_post)"}
                ],
                "x-group": "Client authentication", "x-order": 12
            },
            "refresh_token": {
                "title": "Refresh token",
                "description": "For the refresh token grant: the refresh token to exchange. When the server rotates it, the host stores the new one.",
                "type": "string", "writeOnly": true, "format": "password",
                "x-group": "Connection", "x-order": 3,
                "x-show-when": {"grant_type": ["refresh_token"]}
            },
            "scope": {
                "title": "Scope",
                "description": "Optional. The scopes to request, separated by spaces.",
                "type": "string", "pattern": "^[\\s!#-\\[\\]-~]*$",
                "x-group": "Connection", "x-order": 4
            },
            "audience": {
                "title": "Audience",
                "description": "Optional. The API the token is for, for servers that require an `audience` parameter.",
                "type": "string",
                "x-group": "Advanced", "x-order": 30
            },
            "resource": {
                "title": "Resource",
                "description": "Optional. The absolute URI of the resource the token is for (RFC 8707).",
                "type": "string", "format": "uri",
                "x-group": "Advanced", "x-order": 31
            },
            "extra_body": {
                "title": "Extra body parameters",
                "description": "Optional. Further form parameters sent with every token request. They may not replace parameters the connector sets.",
                "type": "object", "additionalProperties": {"type": "string"}, "default": {},
                "x-group": "Advanced", "x-order": 32
            },
            "extra_headers": {
                "title": "Extra request headers",
                "description": "Optional. Further HTTP headers sent with every token request. Authorization, Content-Type, Content-Length, Host, Transfer-Encoding and Connection cannot be set here; Accept replaces the default.",
                "type": "object", "additionalProperties": {"type": "string"}, "default": {},
                "x-group": "Advanced", "x-order": 33
            },
            "token_retry_check_level": {
                "title": "Token retry check level",
                "description": "How much evidence a 401 from an API must carry before the token is renewed and the call retried.",
                "type": "integer", "default": 3,
                "oneOf": [
                    {"const": 1, "title": "1: any 401"},
                    {"const": 2, "title": "2: a 401 with a Bearer challenge"},
                    {"const": 3, "title": "3: a 401 whose Bearer challenge says invalid_token"}
                ],
                "x-group": "Advanced", "x-order": 34
            }
        },
        "allOf": [
            {
                "if": {
                    "anyOf": [
                        {"not": {"required": ["grant_type"]}},
                        {"properties": {"grant_type": {"const": "refresh_token"}}, "required": ["grant_type"]}
                    ]
                },
                "then": {"required": ["refresh_token"]}
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CLIENT_AUTH_METHODS, GRANT_TYPES, KNOWN_FIELDS};

    fn consts(field: &str) -> Vec<String> {
        schema()["properties"][field]["oneOf"]
            .as_array()
            .expect("oneOf")
            .iter()
            .map(|choice| choice["const"].as_str().expect("const").to_owned())
            .collect()
    }

    #[test]
    fn every_field_the_parser_knows_is_described() {
        let schema = schema();
        let properties = schema["properties"].as_object().expect("properties");
        let mut described: Vec<&str> = properties.keys().map(String::as_str).collect();
        described.sort_unstable();
        let mut known = KNOWN_FIELDS.to_vec();
        known.sort_unstable();
        assert_eq!(described, known);
        for (name, property) in properties {
            assert!(property["title"].is_string(), "{name} has no title");
            assert!(
                property["description"].is_string(),
                "{name} has no description"
            );
        }
    }

    #[test]
    fn choices_match_the_parser() {
        assert_eq!(consts("grant_type"), GRANT_TYPES);
        assert_eq!(consts("client_auth"), CLIENT_AUTH_METHODS);
    }

    #[test]
    fn secrets_are_write_only() {
        let schema = schema();
        for field in ["client_secret", "refresh_token"] {
            assert_eq!(schema["properties"][field]["writeOnly"], true, "{field}");
        }
    }
}
