//! Layered configuration: a connection's document, an environment's
//! overrides and the values an application supplies at run time, combined
//! into the one document the other functions take.
//!
//! The rules:
//! - the environment override replaces the connection's values field by
//!   field; objects (`jwt`, `extra_headers`, …) merge member by member, and
//!   `null` removes a field;
//! - application-supplied client credentials are used only when the
//!   connection (with its override) has none: the connection's win when both
//!   are set, and `client_id` and `client_secret` must come from the same
//!   source — a pair split between them is an error;
//! - every other application-supplied value only fills what the
//!   configuration leaves open: a field it lacks, or a member an object
//!   field lacks (an extra parameter);
//! - the application supplies only what the seed products let applications
//!   supply ([`APPLICATION_FIELDS`]): credentials, the user, the scope and
//!   request parameters. What decides where a secret goes — endpoints,
//!   client authentication, PKCE, headers, keys — belongs to the connection
//!   or the environment, so an application cannot send the connection's
//!   secret to a host of its choosing or turn PKCE off.

use serde_json::{Map, Value};

use crate::config::{FieldError, key};

/// The client credential fields, which travel as a pair.
const CREDENTIALS: [&str; 2] = [key::CLIENT_ID, key::CLIENT_SECRET];

/// What the application's layer may supply.
pub const APPLICATION_FIELDS: &[&str] = &[
    key::CLIENT_ID,
    key::CLIENT_SECRET,
    key::USERNAME,
    key::PASSWORD,
    key::SCOPE,
    key::AUDIENCE,
    key::RESOURCE,
    key::LOGIN_HINT,
    key::EXTRA_BODY,
    key::EXTRA_AUTHORIZATION_PARAMS,
];

/// Combines the layers into one configuration document.
pub fn merge_layers(
    connection: &str,
    environment: Option<&str>,
    runtime: Option<&str>,
) -> Result<String, Vec<FieldError>> {
    crate::config::check_size(connection, "the connection's configuration")?;
    for layer in [environment, runtime].into_iter().flatten() {
        crate::config::check_size(layer, "a configuration layer")?;
    }
    let mut errors = Vec::new();
    let mut document = object(connection, "the connection's configuration", &mut errors);
    let environment = environment.map(|text| object(text, "the environment override", &mut errors));
    let runtime = runtime.map(|text| object(text, "the application-supplied values", &mut errors));
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(environment) = environment {
        override_members(&mut document, environment);
    }
    if let Some(mut runtime) = runtime {
        let refused: Vec<FieldError> = runtime
            .keys()
            .filter(|name| !APPLICATION_FIELDS.contains(&name.as_str()))
            .map(|name| {
                FieldError::new(
                    name,
                    "may not come from the application: it decides where the connection's secrets go, or how they are protected",
                    format!(
                        "set `{name}` in the connection or the environment override; the application may supply {}",
                        APPLICATION_FIELDS.join(", ")
                    ),
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(refused);
        }
        take_credentials(&mut document, &mut runtime)?;
        fill_members(&mut document, runtime);
    }
    Ok(Value::Object(document).to_string())
}

fn object(text: &str, what: &str, errors: &mut Vec<FieldError>) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(members)) => members,
        Ok(_) => {
            errors.push(FieldError::new(
                "",
                format!("{what} is not a JSON object"),
                "send an object of fields",
            ));
            Map::new()
        }
        Err(e) => {
            errors.push(FieldError::new(
                "",
                format!("{what} is not valid JSON: {e}"),
                "send an object of fields",
            ));
            Map::new()
        }
    }
}

/// The environment's values win; objects merge; `null` removes.
fn override_members(base: &mut Map<String, Value>, overrides: Map<String, Value>) {
    for (name, value) in overrides {
        match (base.get_mut(&name), value) {
            (_, Value::Null) => {
                base.remove(&name);
            }
            (Some(Value::Object(inner)), Value::Object(value)) => override_members(inner, value),
            (_, value) => {
                base.insert(name, value);
            }
        }
    }
}

/// The application's values fill only what is open.
fn fill_members(base: &mut Map<String, Value>, supplied: Map<String, Value>) {
    for (name, value) in supplied {
        match (base.get_mut(&name), value) {
            (_, Value::Null) => {}
            (Some(Value::Object(inner)), Value::Object(value)) => fill_members(inner, value),
            (Some(existing), value) if is_open(existing) => *existing = value,
            (Some(_), _) => {}
            (None, value) => {
                base.insert(name, value);
            }
        }
    }
}

/// A form leaves an untouched field empty or null.
fn is_open(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        _ => false,
    }
}

/// Moves the application's client credentials in when the configuration
/// has none, and refuses a pair split between the two sources.
fn take_credentials(
    document: &mut Map<String, Value>,
    runtime: &mut Map<String, Value>,
) -> Result<(), Vec<FieldError>> {
    let set =
        |members: &Map<String, Value>, name: &str| members.get(name).is_some_and(|v| !is_open(v));
    let configured = CREDENTIALS.map(|name| set(document, name));
    let supplied = CREDENTIALS.map(|name| set(runtime, name));
    let from_runtime: Vec<Value> = CREDENTIALS
        .iter()
        .filter_map(|name| runtime.remove(*name))
        .collect();
    match (configured, supplied) {
        // The connection's credentials win over the application's.
        ([true, true], _) | (_, [false, false]) => Ok(()),
        ([false, false], _) => {
            for (name, value) in CREDENTIALS.iter().zip(from_runtime) {
                document.insert((*name).to_owned(), value);
            }
            Ok(())
        }
        ([id_configured, _], _) => {
            let (configured, missing) = if id_configured {
                (key::CLIENT_ID, key::CLIENT_SECRET)
            } else {
                (key::CLIENT_SECRET, key::CLIENT_ID)
            };
            Err(vec![FieldError::new(
                missing,
                format!(
                    "the application supplies `{missing}` but the connection configures `{configured}`: \
                     a client id and its secret must come from the same place"
                ),
                format!(
                    "configure both in the connection, or leave both to the application; remove `{configured}` from one of them"
                ),
            )])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(connection: Value, environment: Option<Value>, runtime: Option<Value>) -> Value {
        let text = merge_layers(
            &connection.to_string(),
            environment.map(|v| v.to_string()).as_deref(),
            runtime.map(|v| v.to_string()).as_deref(),
        )
        .expect("layers combine");
        serde_json::from_str(&text).expect("JSON")
    }

    #[test]
    fn the_environment_overrides_field_by_field() {
        let connection = json!({
            "token_url": "https://dev.example.com/token",
            "scope": "read",
            "jwt": {"header": {"alg": "RS256"}, "subject": "svc", "private_key": "dev-key"},
            "audience": "dev",
        });
        let environment = json!({
            "token_url": "https://prod.example.com/token",
            "jwt": {"private_key": "prod-key"},
            "audience": null,
        });
        assert_eq!(
            merged(connection, Some(environment), None),
            json!({
                "token_url": "https://prod.example.com/token",
                "scope": "read",
                "jwt": {"header": {"alg": "RS256"}, "subject": "svc", "private_key": "prod-key"},
            })
        );
    }

    #[test]
    fn application_values_fill_only_what_is_open() {
        let connection = json!({
            "scope": "read",
            "audience": "",
            "extra_body": {"tenant": "configured"},
            "extra_headers": {},
        });
        let runtime = json!({
            "scope": "write",
            "audience": "api",
            "extra_body": {"tenant": "supplied", "region": "eu"},
            "login_hint": "alice",
        });
        assert_eq!(
            merged(connection, None, Some(runtime)),
            json!({
                "scope": "read",
                "audience": "api",
                "extra_body": {"tenant": "configured", "region": "eu"},
                "extra_headers": {},
                "login_hint": "alice",
            })
        );
    }

    #[test]
    fn the_application_cannot_say_where_a_secret_goes() {
        let connection = json!({"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret"});
        for (field, value) in [
            ("token_url", json!("https://attacker.example/token")),
            ("introspection_url", json!("https://attacker.example/i")),
            ("revocation_url", json!("https://attacker.example/r")),
            ("client_auth", json!("body")),
            ("pkce", json!("none")),
            ("bearer_any_token_type", json!(true)),
            ("extra_headers", json!({"X-Api-Key": "k"})),
            ("redirect_uri", json!("https://attacker.example/cb")),
        ] {
            let runtime = json!({ field: value });
            let errors = merge_layers(&connection.to_string(), None, Some(&runtime.to_string()))
                .expect_err("refused");
            assert_eq!(errors[0].field, field);
            assert!(
                errors[0].fix.contains("environment override"),
                "{}",
                errors[0].fix
            );
        }
    }

    #[test]
    fn client_credentials_come_from_one_source() {
        let supplied = json!({"client_id": "app-id", "client_secret": "app-secret"});
        // None configured: the application's pair is used.
        let used = merged(json!({"client_id": ""}), None, Some(supplied.clone()));
        assert_eq!(
            (used["client_id"].as_str(), used["client_secret"].as_str()),
            (Some("app-id"), Some("app-secret"))
        );
        // Both configured: the connection's pair wins.
        let kept = merged(
            json!({"client_id": "cfg", "client_secret": "cfg-secret"}),
            None,
            Some(supplied.clone()),
        );
        assert_eq!(
            (kept["client_id"].as_str(), kept["client_secret"].as_str()),
            (Some("cfg"), Some("cfg-secret"))
        );
        // Split: an error naming the field, quoting no secret.
        for (connection, runtime, field) in [
            (
                json!({"client_id": "cfg"}),
                json!({"client_secret": "app-secret"}),
                "client_secret",
            ),
            (
                json!({"client_secret": "cfg-secret"}),
                json!({"client_id": "app-id"}),
                "client_id",
            ),
            (
                json!({"client_id": "cfg"}),
                supplied.clone(),
                "client_secret",
            ),
        ] {
            let errors = merge_layers(&connection.to_string(), None, Some(&runtime.to_string()))
                .expect_err("split");
            assert_eq!(errors[0].field, field);
            let text = format!("{errors:?}");
            assert!(
                !text.contains("app-secret") && !text.contains("cfg-secret"),
                "{text}"
            );
        }
        // An environment may move the connection's credentials, too.
        let moved = merged(
            json!({"client_id": "dev", "client_secret": "dev-secret"}),
            Some(json!({"client_id": "prod", "client_secret": "prod-secret"})),
            None,
        );
        assert_eq!(moved["client_id"], "prod");
    }

    #[test]
    fn each_layer_must_be_an_object() {
        let errors = merge_layers("{}", Some("[]"), Some("{")).expect_err("invalid");
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("environment override"));
        assert!(errors[1].message.contains("application-supplied"));
    }
}
