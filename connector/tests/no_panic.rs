//! Whatever arrives — a configuration, a server's response, a header, a
//! redirect, a key — the connector answers with a value or an error, never
//! a panic (which in the component would be a trap).

use connector::{Config, Context, Response, Secret};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A configuration document made of the real keys with arbitrary values:
/// the shapes a form or a hand-edited file produces.
fn config_like() -> impl Strategy<Value = Value> {
    let keys = [
        "grant_type",
        "token_url",
        "client_id",
        "client_secret",
        "client_auth",
        "client_assertion",
        "scope",
        "audience",
        "resource",
        "refresh_token",
        "username",
        "password",
        "jwt",
        "authorization_url",
        "redirect_uri",
        "prompt",
        "pkce",
        "extra_body",
        "extra_headers",
        "token_retry_check_level",
        "introspection_url",
        "revocation_url",
    ];
    let value = prop_oneof![
        any_json(),
        prop::sample::select(vec![
            json!("client_credentials"),
            json!("password"),
            json!("jwt_bearer"),
            json!("authorization_code"),
            json!("implicit"),
            json!("private_key_jwt"),
            json!("https://as.example/token"),
            json!("http://127.0.0.1:1/x"),
            json!({"header": {"alg": "RS256"}, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
            json!({"header": {"alg": "HS256"}, "shared_secret": "short"}),
        ]),
    ];
    prop::collection::btree_map(prop::sample::select(keys.to_vec()), value, 0..10)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn a_config() -> Config {
    Config::parse(
        r#"{"grant_type":"authorization_code","token_url":"https://as.example/token","client_id":"c","client_auth":"none",
            "authorization_url":"https://as.example/authorize","redirect_uri":"http://127.0.0.1:5000/cb"}"#,
    )
    .expect("valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn configurations_never_panic(text in ".{0,200}", value in config_like()) {
        let _ = connector::validate(&text);
        let document = value.to_string();
        let _ = connector::validate(&document);
        if let Ok(config) = Config::parse(&document) {
            let cx = Context { now: 1_700_000_000, nonce: vec![7; 32] };
            let _ = connector::token_request(&config, &cx);
            let _ = connector::token_cache_key(&config, b"secret");
        }
        let _ = connector::merge_layers(&document, Some(&text), Some(&document));
    }

    #[test]
    fn token_responses_never_panic(
        status in 100u16..600,
        content_type in prop::sample::select(vec!["application/json", "text/plain", "application/x-www-form-urlencoded", "text/html", ""]),
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..300), any_json().prop_map(|v| v.to_string().into_bytes())],
        now in any::<u64>(),
    ) {
        let response = Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        };
        let config = a_config();
        let _ = connector::read_token_response(&config, &response, now, Some(&Secret::new("rt")));
        let _ = connector::read_introspection_response(&response);
        let _ = connector::read_revocation_response(&response);
    }

    #[test]
    fn www_authenticate_never_panics(headers in prop::collection::vec("[ -~]{0,80}", 0..4), level in 1u8..=3) {
        let _ = connector::parse_challenges(headers.iter().map(String::as_str));
        let response = Response {
            status: 401,
            headers: headers.iter().map(|h| ("WWW-Authenticate".to_owned(), h.clone())).collect(),
            body: Vec::new(),
        };
        let config = Config::parse(&format!(
            r#"{{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","token_retry_check_level":{level}}}"#
        )).expect("valid");
        // Whatever the header, the answer to a retry is never another retry.
        prop_assert_eq!(connector::judge(config.token_retry_check_level, &response, true), connector::Verdict::Accept);
        let _ = connector::judge(config.token_retry_check_level, &response, false);
    }

    #[test]
    fn redirects_never_panic(url in prop_oneof![".{0,120}", "http://127\\.0\\.0\\.1:5000/cb\\?[ -~]{0,80}", "http://127\\.0\\.0\\.1:5000/cb#[ -~]{0,80}"], state in ".{0,20}") {
        let config = a_config();
        let cx = Context { now: 0, nonce: vec![1; 32] };
        let _ = connector::read_redirect(&config, &url, &state);
        let _ = connector::finish_login(&config, &url, &state, Some("verifier"), &cx);
        let _ = connector::read_implicit_redirect(&config, &url, &state, 0);
    }

    #[test]
    fn keys_never_panic(pem in prop_oneof![
        ".{0,200}",
        "-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----\n[A-Za-z0-9+/=\n]{0,200}\n-----END (RSA |EC |ENCRYPTED )?PRIVATE KEY-----",
    ], alg in prop::sample::select(vec!["RS256", "PS384", "ES256", "ES384", "EdDSA", "HS256"]), password in ".{0,10}") {
        let document = json!({
            "grant_type": "jwt_bearer", "token_url": "https://as.example/token", "client_auth": "none",
            "jwt": {"header": {"alg": alg}, "issuer": "i", "subject": "s", "private_key": pem, "private_key_password": password},
        });
        let _ = connector::validate(&document.to_string());
    }
}
