//! `validate` and a standard JSON Schema validator, given the connector's
//! own schema, must reach the same verdict on every document: the form an
//! engine renders from the schema accepts exactly what the connector does.
//!
//! The corpus: a valid document per grant and client authentication, and
//! every variant of each with one field removed, emptied, retyped or given
//! a value outside its choices, plus hand-written edge cases. Checks only
//! code can make (a key that opens, a URL that parses) hold in every
//! document, so that the verdicts turn on what the schema can express.

use serde_json::{Value, json};

const RSA_KEY: &str = include_str!("../testdata/rsa-pkcs8.pem");
const EC_KEY: &str = include_str!("../testdata/ec-p256-sec1.pem");

fn valid_documents() -> Vec<Value> {
    let token_url = "https://as.example.com/token";
    let browser = |grant: &str, auth: &str| {
        let mut doc = json!({
            "grant_type": grant, "token_url": token_url, "client_id": "app", "client_auth": auth,
            "authorization_url": "https://as.example.com/authorize", "redirect_uri": "http://127.0.0.1:53682/cb",
            "prompt": "consent", "pkce": "S256", "request_refresh_token": true, "login_hint": "alice",
            "issuer": "https://as.example.com",
            "extra_authorization_params": {"ui_locales": "de"},
        });
        if auth == "basic" {
            doc["client_secret"] = json!("s");
        }
        doc
    };
    vec![
        json!({"token_url": token_url, "client_id": "app", "client_secret": "s", "refresh_token": "rt"}),
        json!({"grant_type": "client_credentials", "token_url": token_url, "client_id": "app", "client_secret": "s",
               "client_auth": "body", "scope": "read write", "audience": "api", "resource": "https://api.example.com/",
               "extra_body": {"tenant": "t"}, "extra_headers": {"X-Source": "engine"}, "token_retry_check_level": 2}),
        json!({"grant_type": "client_credentials", "token_url": token_url, "client_id": "app",
               "client_auth": "private_key_jwt",
               "client_assertion": {"header": {"alg": "RS256", "kid": "k"}, "private_key": RSA_KEY, "lifetime_secs": 60}}),
        json!({"grant_type": "client_credentials", "token_url": "http://127.0.0.1:8080/token", "client_id": "app",
               "client_auth": "private_key_jwt",
               "client_assertion": {"header": {"alg": "ES256"}, "private_key": EC_KEY}}),
        json!({"grant_type": "password", "token_url": token_url, "client_id": "app", "client_secret": "s",
               "username": "alice", "password": "pw"}),
        json!({"grant_type": "jwt_bearer", "token_url": token_url, "client_auth": "none",
               "jwt": {"header": {"alg": "RS256", "typ": "JWT"}, "issuer": "svc", "subject": "alice",
                       "audience": "aud", "claims": {"scope": "read"}, "private_key": RSA_KEY}}),
        json!({"grant_type": "jwt_bearer", "token_url": token_url, "client_id": "app", "client_secret": "s",
               "jwt": {"header": {"alg": "HS256"}, "subject": "alice", "shared_secret": "x".repeat(32)}}),
        // SailPoint's forms: no client of their own, the payload carries it.
        json!({"grant_type": "jwt_bearer", "token_url": token_url,
               "jwt": {"header": {"alg": "RS256"}, "issuer": "svc", "subject": "alice", "private_key": RSA_KEY},
               "extra_body": {"client_id": "app", "client_secret": "s"}}),
        json!({"grant_type": "password", "token_url": token_url, "username": "alice", "password": "pw",
               "extra_body": {"client_id": "app", "client_secret": "s"}}),
        browser("authorization_code", "none"),
        browser("authorization_code", "basic"),
        {
            let mut doc = browser("implicit", "none");
            doc.as_object_mut().map(|d| d.remove("pkce"));
            doc
        },
    ]
}

/// Values that break a field's type or choices; each is tried in place
/// of every field.
fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(""),
        json!(7),
        json!(2.0),
        json!(true),
        json!([]),
        json!({}),
        json!("not-a-choice"),
    ]
}

/// Every variant of a document with one member (at any depth) removed or
/// replaced, and one unknown member added. Whether a key fits `alg` is
/// for code alone to say, so a key's header is never removed (which would
/// fall back to RS256).
fn variants(document: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let Value::Object(members) = document else {
        return out;
    };
    for (name, value) in members {
        let keyed = members
            .get("private_key")
            .and_then(Value::as_str)
            .is_some_and(|k| k.contains("EC PRIVATE"));
        if !(name == "header" && keyed) {
            let mut removed = members.clone();
            removed.remove(name);
            out.push(Value::Object(removed));
        }
        for replacement in replacements() {
            let mut replaced = members.clone();
            replaced.insert(name.clone(), replacement);
            out.push(Value::Object(replaced));
        }
        for inner in variants(value) {
            let mut nested = members.clone();
            nested.insert(name.clone(), inner);
            out.push(Value::Object(nested));
        }
    }
    let mut unknown = members.clone();
    unknown.insert("colour".into(), json!("blue"));
    out.push(Value::Object(unknown));
    out
}

fn hand_written() -> Vec<Value> {
    vec![
        json!([]),
        json!("text"),
        json!(null),
        json!({}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "extra_body": {"grant_type": "x"}}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "extra_body": {"": "x"}}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "scope": "read \"all\""}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_auth": "none",
               "client_secret": "s"}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "username": "u"}),
        json!({"grant_type": "jwt_bearer", "token_url": "https://a/t", "client_auth": "none",
               "jwt": {"header": {"alg": "RS256"}, "subject": "s", "private_key": RSA_KEY}}),
        json!({"grant_type": "jwt_bearer", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "jwt": {"header": {"alg": "RS256"}, "subject": "s", "private_key": RSA_KEY, "claims": {"exp": 1}}}),
        json!({"grant_type": "authorization_code", "token_url": "https://a/t", "client_auth": "none",
               "authorization_url": "https://a/a", "redirect_uri": "https://app/cb", "prompt": "none login"}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "introspection_url": "https://a/introspect", "revocation_url": "http://127.0.0.1:9/revoke"}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "revocation_url": "http://a.example/revoke"}),
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "introspection_url": "https://a/introspect#x"}),
        // The body carries the client only when the connector sends none.
        json!({"grant_type": "client_credentials", "token_url": "https://a/t", "client_id": "a", "client_secret": "s",
               "extra_body": {"client_id": "b"}}),
        json!({"grant_type": "password", "token_url": "https://a/t", "client_auth": "none", "client_id": "a",
               "username": "u", "password": "p", "extra_body": {"client_secret": "s"}}),
        json!({"grant_type": "password", "token_url": "https://a/t", "client_auth": "none",
               "username": "u", "password": "p", "extra_body": {"client_secret": "s"}}),
        json!({"grant_type": "password", "token_url": "https://a/t", "username": "u", "password": "p",
               "extra_body": {"client_secret": "s"}}),
        json!({"grant_type": "jwt_bearer", "token_url": "https://a/t", "client_secret": "",
               "jwt": {"header": {"alg": "RS256"}, "issuer": "i", "subject": "s", "private_key": RSA_KEY}}),
        // Schemes and host names are case-insensitive (RFC 3986 section 3.1, 3.2.2).
        json!({"grant_type": "client_credentials", "token_url": "HTTPS://a/t", "client_id": "a", "client_secret": "s"}),
        json!({"grant_type": "client_credentials", "token_url": "http://LOCALHOST:8080/t", "client_id": "a", "client_secret": "s"}),
        json!({"grant_type": "client_credentials", "token_url": "HTTP://example.com/t", "client_id": "a", "client_secret": "s"}),
        json!({"grant_type": "authorization_code", "token_url": "https://a/t", "client_auth": "none", "client_id": "a",
               "authorization_url": "https://a/a", "redirect_uri": "HTTP://LocalHost:1/cb"}),
        json!({"grant_type": "authorization_code", "token_url": "https://a/t", "client_auth": "none", "client_id": "a",
               "authorization_url": "https://a/a", "redirect_uri": "Http://app.example/cb"}),
        // Loopback addresses written in a form that reads as another, and
        // user information before the host.
    ]
    .into_iter()
    .chain(
        [
            "http://127.1:8080/cb",
            "http://127.000.0.1/cb",
            "http://127.0.0.01/cb",
            "http://[0::1]:8080/cb",
            "http://127.0.0.1:80@evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "https://user:pass@app.example/cb",
            "http://[::1]:8080/cb",
            "http://127.0.0.2/cb",
        ]
        .into_iter()
        .flat_map(|address| {
            [
                json!({"grant_type": "authorization_code", "token_url": "https://a/t", "client_auth": "none",
                       "client_id": "a", "authorization_url": "https://a/a", "redirect_uri": address}),
                json!({"grant_type": "client_credentials", "token_url": address, "client_id": "a", "client_secret": "s"}),
            ]
        }),
    )
    .collect()
}

#[test]
fn validate_and_a_standard_validator_agree() {
    let schema = connector::schema();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    // The seeds are valid: agreement on them means both accept them, so the
    // two cannot agree merely by rejecting everything.
    for document in valid_documents() {
        let problems = connector::validate(&document.to_string());
        assert!(problems.is_empty(), "{document}: {problems:?}");
        assert!(
            validator.is_valid(&document),
            "the schema rejects {document}"
        );
    }
    let mut corpus = hand_written();
    for document in valid_documents() {
        corpus.extend(variants(&document));
        corpus.push(document);
    }
    let mut disagreements = Vec::new();
    for document in &corpus {
        let ours = connector::validate(&document.to_string());
        let theirs: Vec<String> = validator
            .iter_errors(document)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if ours.is_empty() != theirs.is_empty() {
            disagreements.push(format!(
                "{document}\n  validate: {:?}\n  schema: {theirs:?}",
                ours.iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} documents disagree:\n{}",
        disagreements.len(),
        corpus.len(),
        disagreements
            .iter()
            .take(200)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        corpus.len() > 500,
        "the corpus has {} documents",
        corpus.len()
    );
}
