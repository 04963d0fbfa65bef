//! The built component against a real authorization server written by
//! others: Authlib, on loopback over HTTP and HTTPS. Every grant and client
//! authentication method Authlib offers runs through the harness.

use auth_server::registry::{ASSERTION_ISSUER, keys};
use end_to_end::authlib::{self, AuthlibServer, CLIENTS, REDIRECT_URI, USER};
use end_to_end::{harness_trusting, http_settings};
use host_harness::component::{Failure, TokenTypeHint};
use host_harness::driver::TokenManager;
use host_harness::stores::MemoryStore;
use host_harness::{HttpClient, ObtainedToken, TokenError, browser};
use serde_json::{Value, json};

fn servers() -> [&'static AuthlibServer; 2] {
    [authlib::http(), authlib::https()]
}

/// A configuration for a registered client with its authentication.
fn config(server: &AuthlibServer, grant: &str, client_id: &str, assertion_alg: &str) -> Value {
    let (_, secret, method) = CLIENTS
        .iter()
        .find(|(id, _, _)| *id == client_id)
        .expect("a registered client");
    let mut config =
        json!({"grant_type": grant, "token_url": server.token_url(), "client_id": client_id});
    match *method {
        "client_secret_basic" => config["client_secret"] = json!(secret),
        "client_secret_post" => {
            config["client_auth"] = json!("body");
            config["client_secret"] = json!(secret);
        }
        "none" => config["client_auth"] = json!("none"),
        _ => {
            config["client_auth"] = json!("private_key_jwt");
            let (key, kid) = if assertion_alg == "ES256" {
                (keys::CLIENT_EC_PRIVATE, "client-ec-1")
            } else {
                (keys::CLIENT_RSA_PRIVATE, "client-rsa-1")
            };
            config["client_assertion"] =
                json!({"header": {"alg": assertion_alg, "kid": kid}, "private_key": key});
        }
    }
    config
}

/// What a failure message may say about a configuration: never its keys
/// or secrets.
fn describe(server: &AuthlibServer, config: &Value) -> String {
    format!(
        "{} {} as {} ({})",
        server.base_url(),
        config["grant_type"],
        config["client_id"],
        config["client_auth"]
    )
}

fn obtain(server: &AuthlibServer, config: &Value) -> ObtainedToken {
    harness_trusting(server.ca_pem())
        .obtain_token(&config.to_string())
        .unwrap_or_else(|e| panic!("{}: {e}", describe(server, config)))
}

/// Asks the server's protected resource who the token is for.
fn resource_user(server: &AuthlibServer, token: &ObtainedToken) -> Value {
    let http = HttpClient::new(&http_settings(server.ca_pem()));
    let response = http
        .send(&host_harness::component::Request {
            method: "GET".into(),
            url: format!("{}/resource", server.base_url()),
            headers: vec![(
                "Authorization".into(),
                format!("Bearer {}", token.access_token.expose()),
            )],
            body: Vec::new(),
        })
        .expect("the resource answers");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).expect("JSON")
}

/// Authlib's client_credentials is for confidential clients only.
const CONFIDENTIAL: &[(&str, &str)] = &[
    ("cc-basic", ""),
    ("cc-post", ""),
    ("tricky:client %+/é", ""),
    ("jwt-app", "RS256"),
    ("jwt-app", "ES256"),
];

#[test]
fn client_credentials_with_every_confidential_client_authentication() {
    for server in servers() {
        for (client_id, alg) in CONFIDENTIAL {
            let mut config = config(server, "client_credentials", client_id, alg);
            config["scope"] = json!("read");
            let token = obtain(server, &config);
            assert_eq!(token.token_type, "Bearer");
            assert_eq!(token.scope.as_deref(), Some("read"));
            assert!(token.expires_at.is_some());
            assert_eq!(resource_user(server, &token)["client_id"], *client_id);
        }
    }
}

#[test]
fn password_grant_with_every_client_authentication() {
    for server in servers() {
        for (client_id, alg) in [
            ("cc-basic", ""),
            ("cc-post", ""),
            ("public-app", ""),
            ("jwt-app", "RS256"),
        ] {
            let mut config = config(server, "password", client_id, alg);
            config["username"] = json!(USER.0);
            config["password"] = json!(USER.1);
            let token = obtain(server, &config);
            assert_eq!(resource_user(server, &token)["user"], USER.0);
            assert!(token.refresh_token.is_some(), "{client_id} may refresh");
        }
    }
}

#[test]
fn refresh_tokens_rotate_and_the_spent_one_is_refused() {
    for server in servers() {
        for (client_id, alg) in [
            ("cc-basic", ""),
            ("cc-post", ""),
            ("public-app", ""),
            ("jwt-app", "ES256"),
        ] {
            let mut password = config(server, "password", client_id, alg);
            password["username"] = json!(USER.0);
            password["password"] = json!(USER.1);
            let first = obtain(server, &password)
                .refresh_token
                .expect("a refresh token");

            let mut refresh = config(server, "refresh_token", client_id, alg);
            refresh["refresh_token"] = json!(first.expose());
            let token = obtain(server, &refresh);
            assert!(
                token.refresh_token_rotated,
                "Authlib rotates (as configured)"
            );
            let second = token.refresh_token.expect("the token to keep");
            assert_ne!(second.expose(), first.expose());

            match harness_trusting(server.ca_pem()).obtain_token(&refresh.to_string()) {
                Err(TokenError::Connector(Failure::Rejected(e))) => {
                    assert_eq!(e.error, "invalid_grant")
                }
                other => panic!("the spent refresh token should be refused: {other:?}"),
            }
        }
    }
}

#[test]
fn jwt_bearer_with_rs256_and_es256_assertions() {
    for server in servers() {
        for (client_id, alg, assertion_alg, key) in [
            ("cc-basic", "", "RS256", keys::RSA_PRIVATE),
            ("public-app", "", "ES256", keys::EC_PRIVATE),
            ("jwt-app", "ES256", "RS256", keys::RSA_ENCRYPTED),
        ] {
            let mut config = config(server, "jwt_bearer", client_id, alg);
            let kid = if assertion_alg == "ES256" {
                "ec-1"
            } else {
                "rsa-1"
            };
            config["jwt"] = json!({
                "header": {"alg": assertion_alg, "typ": "JWT", "kid": kid},
                "issuer": ASSERTION_ISSUER,
                "subject": USER.0,
                "private_key": key,
                "private_key_password": keys::RSA_ENCRYPTED_PASSWORD,
            });
            if key != keys::RSA_ENCRYPTED {
                config["jwt"]
                    .as_object_mut()
                    .map(|jwt| jwt.remove("private_key_password"));
            }
            let token = obtain(server, &config);
            let seen = resource_user(server, &token);
            assert_eq!(
                (seen["client_id"].as_str(), seen["user"].as_str()),
                (Some(client_id), Some(USER.0))
            );
        }
    }
}

fn login(server: &AuthlibServer, config: &Value) -> ObtainedToken {
    let harness = harness_trusting(server.ca_pem());
    let config = config.to_string();
    let authorization = harness
        .authorization(&config, None, None)
        .expect("an authorization URL");
    let http = HttpClient::new(&http_settings(server.ca_pem()));
    let redirect = browser::follow_authorization(&http, &authorization.url).expect("a redirect");
    let result = harness.finish_login(&config, &redirect, &authorization);
    result.unwrap_or_else(|e| {
        panic!(
            "login {}: {e}",
            describe(server, &serde_json::from_str(&config).unwrap_or_default())
        )
    })
}

#[test]
fn authorization_code_with_pkce_and_every_client_authentication() {
    for server in servers() {
        for (client_id, alg, pkce) in [
            ("public-app", "", "S256"),
            ("cc-basic", "", "S256"),
            ("cc-post", "", "plain"),
            ("jwt-app", "RS256", "none"),
        ] {
            let mut config = config(server, "authorization_code", client_id, alg);
            config["authorization_url"] = json!(server.authorization_url());
            config["redirect_uri"] = json!(REDIRECT_URI);
            config["scope"] = json!("read");
            config["pkce"] = json!(pkce);
            config["request_refresh_token"] = json!(true);
            config["login_hint"] = json!("bob");
            let token = login(server, &config);
            assert_eq!(token.scope.as_deref(), Some("read offline_access"));
            assert!(token.refresh_token.is_some());
            assert_eq!(resource_user(server, &token)["user"], "bob");
        }
    }
}

#[test]
fn implicit_grant_reads_the_token_from_the_fragment() {
    for server in servers() {
        let mut config = config(server, "implicit", "public-app", "");
        config["authorization_url"] = json!(server.authorization_url());
        config["redirect_uri"] = json!(REDIRECT_URI);
        config["scope"] = json!("read");
        let token = login(server, &config);
        assert_eq!(resource_user(server, &token)["client_id"], "public-app");
    }
}

#[test]
fn a_wrong_secret_gets_authlibs_invalid_client() {
    let server = authlib::http();
    for client_id in ["cc-basic", "cc-post"] {
        let mut config = config(server, "client_credentials", client_id, "");
        config["client_secret"] = json!("wrong");
        match harness_trusting(None).obtain_token(&config.to_string()) {
            Err(TokenError::Connector(Failure::Rejected(e))) => {
                assert_eq!((e.error.as_str(), e.status), ("invalid_client", Some(401)));
            }
            other => panic!("expected invalid_client, got {other:?}"),
        }
    }
}

/// Authlib answers a wrong user password with `invalid_request` where RFC
/// 6749 section 5.2 says `invalid_grant`; the connector reports the
/// server's code as it is rather than guessing.
#[test]
fn authlib_reports_a_wrong_password_as_invalid_request() {
    let server = authlib::http();
    let mut config = config(server, "password", "cc-basic", "");
    config["username"] = json!(USER.0);
    config["password"] = json!("not-the-password");
    match harness_trusting(None).obtain_token(&config.to_string()) {
        Err(TokenError::Connector(Failure::Rejected(e))) => {
            assert_eq!(e.error, "invalid_request");
            assert_eq!(e.status, Some(400));
        }
        other => panic!("expected the server's error, got {other:?}"),
    }
}

/// Authlib holds the client's keys and the trusted issuer's apart: the
/// issuer's key does not authenticate the client, nor the client's key
/// grant a user's token.
#[test]
fn authlib_binds_each_key_to_its_role() {
    let server = authlib::http();
    let mut as_issuer = config(server, "client_credentials", "jwt-app", "RS256");
    as_issuer["client_assertion"] =
        json!({"header": {"alg": "RS256", "kid": "rsa-1"}, "private_key": keys::RSA_PRIVATE});
    match harness_trusting(None).obtain_token(&as_issuer.to_string()) {
        Err(TokenError::Connector(Failure::Rejected(e))) => assert_eq!(e.error, "invalid_client"),
        other => panic!("the issuer's key authenticated the client: {other:?}"),
    }
    let mut as_client = config(server, "jwt_bearer", "cc-basic", "");
    as_client["jwt"] = json!({
        "header": {"alg": "RS256", "kid": "client-rsa-1"},
        "issuer": ASSERTION_ISSUER,
        "subject": USER.0,
        "private_key": keys::CLIENT_RSA_PRIVATE,
    });
    match harness_trusting(None).obtain_token(&as_client.to_string()) {
        Err(TokenError::Connector(Failure::Rejected(e))) => assert_eq!(e.error, "invalid_grant"),
        other => panic!("the client's key granted a user's token: {other:?}"),
    }
    // Each key in its own role works.
    assert!(
        obtain(
            server,
            &config(server, "client_credentials", "jwt-app", "RS256")
        )
        .expires_at
        .is_some()
    );
}

/// Authlib accepts only RS256, ES256 and HS256 client assertions; a PS256
/// one is refused, and the configuration's `alg` is what to change.
#[test]
fn authlib_refuses_ps256_client_assertions() {
    let server = authlib::http();
    let config = config(server, "client_credentials", "jwt-app", "PS256");
    match harness_trusting(None).obtain_token(&config.to_string()) {
        Err(TokenError::Connector(Failure::Rejected(e))) => assert_eq!(e.error, "invalid_client"),
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

/// A token manager for one Authlib server, keeping tokens in memory.
fn manager(server: &AuthlibServer) -> TokenManager {
    TokenManager::new(
        harness_trusting(server.ca_pem()),
        Box::new(MemoryStore::default()),
    )
}

fn resource_request(server: &AuthlibServer) -> host_harness::component::Request {
    host_harness::component::Request {
        method: "GET".into(),
        url: format!("{}/resource", server.base_url()),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn with_lifecycle_endpoints(server: &AuthlibServer, mut config: Value) -> Value {
    config["introspection_url"] = json!(format!("{}/introspect", server.base_url()));
    config["revocation_url"] = json!(format!("{}/revoke", server.base_url()));
    config
}

#[test]
fn authlib_introspects_and_revokes_and_its_invalid_token_challenge_renews_once() {
    for server in servers() {
        for (client_id, alg) in [("cc-basic", ""), ("cc-post", ""), ("jwt-app", "RS256")] {
            let config = with_lifecycle_endpoints(
                server,
                config(server, "client_credentials", client_id, alg),
            )
            .to_string();
            let manager = manager(server);
            let outcome = manager
                .call(&config, &resource_request(server))
                .expect("call");
            assert_eq!(outcome.response.status, 200, "{:?}", outcome.steps);
            let (token, _) = manager.token(&config).expect("the kept token");
            let token = token.access_token.expose().to_owned();

            let answer = manager
                .harness()
                .introspect(&config, &token, None)
                .expect("introspection");
            assert!(answer.active, "{client_id}");
            assert_eq!(answer.client_id.as_deref(), Some(client_id));

            // Revoked behind the manager's back: Authlib's resource answers
            // 401 with its invalid_token challenge, and the default check
            // level renews the token and retries once.
            manager
                .harness()
                .revoke(&config, &token, None)
                .expect("revocation");
            assert!(
                !manager
                    .harness()
                    .introspect(&config, &token, None)
                    .expect("introspection")
                    .active
            );
            let outcome = manager
                .call(&config, &resource_request(server))
                .expect("call");
            assert_eq!(outcome.response.status, 200, "{:?}", outcome.steps);
            let refusals = outcome
                .steps
                .iter()
                .filter(|s| s.ends_with("HTTP 401"))
                .count();
            assert_eq!(refusals, 1, "{:?}", outcome.steps);
        }
    }
}

#[test]
fn with_authlib_a_revoked_refresh_token_falls_back_to_the_configured_grant() {
    for server in servers() {
        let mut config =
            with_lifecycle_endpoints(server, config(server, "password", "cc-basic", ""));
        config["username"] = json!(USER.0);
        config["password"] = json!(USER.1);
        let config = config.to_string();
        let manager = manager(server);
        let (token, _) = manager.token(&config).expect("token");
        let refresh_token = token.refresh_token.expect("a refresh token");
        manager
            .harness()
            .revoke(
                &config,
                refresh_token.expose(),
                Some(TokenTypeHint::RefreshToken),
            )
            .expect("revocation");
        // Authlib revokes the grant's access token with it (RFC 7009 section 2.1).
        let outcome = manager
            .call(&config, &resource_request(server))
            .expect("call");
        assert_eq!(outcome.response.status, 200, "{:?}", outcome.steps);
        assert!(
            outcome
                .steps
                .iter()
                .any(|s| s.contains("after the server refused the refresh token")),
            "{:?}",
            outcome.steps
        );
    }
}

#[test]
fn authlib_refuses_to_revoke_another_clients_token_with_invalid_grant() {
    let server = authlib::http();
    let owner = config(server, "client_credentials", "cc-basic", "");
    let token = obtain(server, &owner);
    let other =
        with_lifecycle_endpoints(server, config(server, "client_credentials", "cc-post", ""));
    let refused = harness_trusting(None)
        .revoke(&other.to_string(), token.access_token.expose(), None)
        .expect_err("another client's token");
    // The embedded server says unauthorized_client; RFC 7009 names no code.
    assert!(
        matches!(&refused, TokenError::Connector(Failure::Rejected(e)) if e.error == "invalid_grant"),
        "{refused}"
    );
}

/// Every algorithm the connector signs with, checked by a verifier outside
/// the RustCrypto stack that signed: Python's `cryptography`, fed the
/// assertions the built component produced.
#[test]
fn every_signature_the_component_makes_verifies_outside_its_own_stack() {
    const EC_P384_PRIVATE: &str = include_str!("../connector/testdata/ec-p384-pkcs8.pem");
    const EC_P384_PUBLIC: &str = include_str!("../connector/testdata/ec-p384-public.pem");
    const SHARED: &str = "a shared secret of sixty-four characters for HS512, long enough!!";
    let signers: Vec<(&str, Value, &str)> = [
        ("RS256", keys::RSA_PRIVATE, keys::RSA_PUBLIC),
        ("RS384", keys::RSA_PRIVATE, keys::RSA_PUBLIC),
        ("RS512", keys::RSA_PRIVATE, keys::RSA_PUBLIC),
        ("PS256", keys::RSA_PRIVATE, keys::RSA_PUBLIC),
        ("PS384", keys::RSA_PRIVATE, keys::RSA_PUBLIC),
        ("PS512", keys::RSA_PRIVATE, keys::RSA_PUBLIC),
        ("ES256", keys::EC_PRIVATE, keys::EC_PUBLIC),
        ("ES384", EC_P384_PRIVATE, EC_P384_PUBLIC),
        ("EdDSA", keys::ED25519_PRIVATE, keys::ED25519_PUBLIC),
    ]
    .into_iter()
    .map(|(alg, private, public)| (alg, json!({"private_key": private}), public))
    .chain(
        ["HS256", "HS384", "HS512"]
            .into_iter()
            .map(|alg| (alg, json!({"shared_secret": SHARED}), SHARED)),
    )
    .collect();
    let cx = host_harness::component::Context {
        now: host_harness::harness::unix_now(),
        nonce: vec![3; 32],
    };
    let mut entries = Vec::new();
    for (alg, key, verifying) in &signers {
        let mut jwt = json!({"header": {"alg": alg}, "issuer": "svc", "subject": "alice"});
        for (name, value) in key.as_object().expect("an object") {
            jwt[name] = value.clone();
        }
        let config =
            json!({"grant_type": "jwt_bearer", "token_url": "https://as.example.com/token",
                            "client_auth": "none", "jwt": jwt})
            .to_string();
        let request = end_to_end::connector()
            .open(&config)
            .expect("no trap")
            .unwrap_or_else(|failure| panic!("{alg}: {failure:?}"))
            .token_request(&cx)
            .expect("no trap")
            .unwrap_or_else(|failure| panic!("{alg}: {failure:?}"))
            .request;
        let assertion = url::form_urlencoded::parse(&request.body)
            .find(|(name, _)| name == "assertion")
            .map(|(_, value)| value.into_owned())
            .expect("an assertion");
        entries.push(json!({"alg": alg, "jwt": assertion, "key": verifying}));
    }
    // A verifier that cannot fail proves nothing: one signature tampered.
    let mut tampered = entries[0].clone();
    let jwt = tampered["jwt"].as_str().expect("text").to_owned();
    let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    tampered["jwt"] = json!(format!("{signed}.{flipped}{}", &signature[1..]));
    entries.push(tampered);

    let mut child = std::process::Command::new(authlib::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/authlib-server/verify_signatures.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(Value::Array(entries.clone()).to_string().as_bytes())
            .expect("written");
    }
    let output = child.wait_with_output().expect("python ends");
    let verdicts: Value = serde_json::from_slice(&output.stdout).expect("JSON verdicts");
    for (index, (alg, _, _)) in signers.iter().enumerate() {
        assert_eq!(verdicts[index.to_string()], "ok", "{alg}: {verdicts}");
    }
    assert_eq!(
        verdicts[signers.len().to_string()],
        "the signature does not verify",
        "the tampered one: {verdicts}"
    );
}
