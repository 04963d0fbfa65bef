//! A refresh token in a successful answer always reaches the state the host
//! stores, whatever else the answer holds: an odd lifetime, an unusable
//! access token, a scope list, a form-encoded body. The server may have
//! rotated the one presented, and then this is the only live copy.

use connector::token_state::{Renewal, Step, TokenState, describe, next, took};
use connector::{Config, Context, Request, Response};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Stands for a number JSON cannot hold (`1e400`), written in after
/// encoding.
const BEYOND_A_DOUBLE: &str = "beyond-a-double";

/// What a member of a token response may be, sane or not.
fn member_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[ -~]{0,24}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!(["read", "write"])),
        Just(json!({"v": "x"})),
        Just(json!(1e19)),
        Just(json!(-5)),
        Just(json!("NaN")),
        Just(json!("3600")),
        Just(json!(BEYOND_A_DOUBLE)),
    ]
}

/// A successful answer's members besides its refresh token; never an
/// `error` member (that answer is a refusal, which carries no token).
fn other_members() -> impl Strategy<Value = Map<String, Value>> {
    let names = prop::sample::select(vec![
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "id_token",
        "refresh_token_expires_in",
    ]);
    prop::collection::btree_map(names, member_value(), 0..6)
        .prop_map(|members| members.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// The answer as a server sends it: JSON (as `application/json` or
/// `text/plain`) or form-encoded.
fn answer(status: u16, members: &Map<String, Value>, form: bool) -> Response {
    let (media, body) = if form {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in members {
            match value {
                Value::String(text) if text == BEYOND_A_DOUBLE => body.append_pair(name, "1e400"),
                Value::String(text) => body.append_pair(name, text),
                other => body.append_pair(name, &other.to_string()),
            };
        }
        ("application/x-www-form-urlencoded", body.finish())
    } else {
        let text = Value::Object(members.clone())
            .to_string()
            .replace(&format!("\"{BEYOND_A_DOUBLE}\""), "1e400");
        ("application/json", text)
    };
    Response {
        status,
        headers: vec![("Content-Type".into(), media.into())],
        body: body.into_bytes(),
    }
}

fn configs() -> Vec<Config> {
    [
        r#"{"grant_type":"refresh_token","token_url":"https://as.example/token","client_id":"c","client_secret":"s","refresh_token":"rt-configured"}"#,
        r#"{"grant_type":"password","token_url":"https://as.example/token","client_id":"c","client_secret":"s","username":"u","password":"p"}"#,
        r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s"}"#,
    ]
    .iter()
    .map(|text| Config::parse(text).expect("valid"))
    .collect()
}

/// A held state with a refresh token of its own, as after a first answer.
fn held(config: &Config) -> TokenState {
    let first = json!({"access_token": "at-0", "token_type": "Bearer", "refresh_token": "rt-held", "expires_in": 60});
    let response = answer(200, first.as_object().expect("object"), false);
    took(
        config,
        Renewal::ConfiguredGrant,
        &response,
        None,
        &Context {
            now: 1,
            nonce: vec![1; 32],
        },
    )
    .expect("a state")
}

fn api() -> Request {
    Request {
        method: "GET".into(),
        url: "https://api.example/v1".into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_refresh_token_in_a_successful_answer_is_always_kept(
        status in 200u16..300,
        mut members in other_members(),
        refresh_token in "[!-~]{1,40}",
        form in any::<bool>(),
        config in 0usize..3,
        renewal in prop::sample::select(vec![
            Renewal::ConfiguredGrant,
            Renewal::Refresh,
            Renewal::ConfiguredGrantAfterRefusedRefresh,
            Renewal::CodeExchange,
        ]),
        now in 2u64..4_000_000_000,
    ) {
        let config = &configs()[config];
        members.insert("refresh_token".into(), Value::String(refresh_token.clone()));
        let response = answer(status, &members, form);
        let before = held(config);
        let cx = Context { now, nonce: vec![2; 32] };
        let state = took(config, renewal, &response, Some(&before), &cx);
        prop_assert!(state.is_ok(), "{:?} lost the refresh token: {:?}", String::from_utf8_lossy(&response.body), state.err().map(|r| r.failure));
        let state = state.expect("checked");
        let kept = describe(&state).expect("known").refresh_token.map(|token| token.expose().to_owned());
        prop_assert_eq!(kept.as_deref(), Some(refresh_token.as_str()));
        // The next step either uses the answer's access token or renews
        // with the kept refresh token, never an older one.
        if let Ok(Step::Fetch(fetch)) = next(config, api(), Some(&state), &cx)
            && fetch.renewal == Renewal::Refresh
        {
            let presented: Vec<String> = url::form_urlencoded::parse(&fetch.request.body)
                .filter(|(name, _)| name == "refresh_token")
                .map(|(_, value)| value.into_owned())
                .collect();
            prop_assert_eq!(presented, vec![refresh_token.clone()]);
        }
    }
}
