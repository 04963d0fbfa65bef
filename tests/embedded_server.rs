//! The built component, loaded by the harness, obtaining tokens from the
//! embedded authorization server over real HTTP and HTTPS.

use end_to_end::{client_credentials, harness_for, http_server, https_server};
use host_harness::TokenError;
use host_harness::component::Failure;
use host_harness::harness::unix_now;
use serde_json::{Value, json};

fn rejected(
    result: Result<host_harness::ObtainedToken, TokenError>,
) -> host_harness::component::OauthError {
    match result {
        Err(TokenError::Connector(Failure::Rejected(e))) => e,
        other => panic!("expected the server's error, got {other:?}"),
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn client_credentials_with_basic_authentication_over_http() {
    let server = http_server();
    let mut config = client_credentials(&server, "demo-basic", "basic");
    config["scope"] = json!("read write");
    let before = unix_now();
    let token = harness_for(&server)
        .obtain_token(&config.to_string())
        .expect("a token");

    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.scope.as_deref(), Some("read write"));
    let expires_at = token.expires_at.expect("the server sends expires_in");
    assert!(
        (before + 3600..=unix_now() + 3600).contains(&expires_at),
        "{expires_at}"
    );
    assert!(
        token.refresh_token.is_none(),
        "no refresh token for client credentials"
    );
    assert!(server.is_active(token.access_token.expose()));

    let received = server.received_requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.authenticated_client.as_deref(), Some("demo-basic"));
    assert_eq!(
        header(&request.headers, "authorization"),
        Some("Basic [redacted]")
    );
    assert_eq!(
        header(&request.headers, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(&request.headers, "accept"), Some("application/json"));
    assert_eq!(
        request.parameters,
        [
            ("grant_type", "client_credentials"),
            ("scope", "read write")
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
}

#[test]
fn client_credentials_with_body_authentication_sends_no_authorization_header() {
    let server = http_server();
    let config = client_credentials(&server, "demo-post", "body");
    let token = harness_for(&server)
        .obtain_token(&config.to_string())
        .expect("a token");
    assert!(server.is_active(token.access_token.expose()));

    let request = &server.received_requests()[0];
    assert_eq!(header(&request.headers, "authorization"), None);
    let names: Vec<&str> = request.parameters.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["grant_type", "client_id", "client_secret"]);
    assert_eq!(request.authenticated_client.as_deref(), Some("demo-post"));
}

#[test]
fn special_characters_in_credentials_survive_basic_encoding_over_https() {
    let server = https_server();
    let config = client_credentials(&server, "tricky:client %+/é", "basic");
    let token = harness_for(&server)
        .obtain_token(&config.to_string())
        .expect("a token");
    assert!(server.is_active(token.access_token.expose()));
}

#[test]
fn a_wrong_secret_gets_the_servers_invalid_client() {
    for (client_id, auth) in [("demo-basic", "basic"), ("demo-post", "body")] {
        let server = http_server();
        let mut config = client_credentials(&server, client_id, auth);
        config["client_secret"] = json!("wrong-secret-value");
        let error = rejected(harness_for(&server).obtain_token(&config.to_string()));
        assert_eq!(error.error, "invalid_client");
        assert_eq!(error.status, Some(401));
        assert!(error.error_description.is_some());
    }
}

#[test]
fn the_method_the_client_is_not_registered_for_is_refused() {
    let server = http_server();
    let config = client_credentials(&server, "demo-post", "basic");
    assert_eq!(
        rejected(harness_for(&server).obtain_token(&config.to_string())).error,
        "invalid_client"
    );
}

#[test]
fn a_scope_beyond_the_clients_gets_invalid_scope() {
    let server = http_server();
    let mut config = client_credentials(&server, "demo-basic", "basic");
    config["scope"] = json!("read admin");
    let error = rejected(harness_for(&server).obtain_token(&config.to_string()));
    assert_eq!(
        (error.error.as_str(), error.status),
        ("invalid_scope", Some(400))
    );
}

#[test]
fn audience_resource_extra_body_and_extra_headers_reach_the_server() {
    let server = https_server();
    let mut config = client_credentials(&server, "demo-basic", "basic");
    config["audience"] = json!("https://api.example.com");
    config["resource"] = json!("https://api.example.com/v1");
    config["extra_body"] = json!({"tenant": "acme corp"});
    config["extra_headers"] = json!({"X-Request-Source": "end-to-end test"});
    harness_for(&server)
        .obtain_token(&config.to_string())
        .expect("a token");

    let request = &server.received_requests()[0];
    assert_eq!(
        header(&request.headers, "x-request-source"),
        Some("end-to-end test")
    );
    let parameter = |name: &str| {
        request
            .parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(parameter("audience"), Some("https://api.example.com"));
    assert_eq!(parameter("resource"), Some("https://api.example.com/v1"));
    assert_eq!(parameter("tenant"), Some("acme corp"));
}

#[test]
fn refresh_tokens_rotate_and_the_spent_one_is_refused() {
    let server = http_server();
    let first = server.issue_refresh_token("demo-basic", Some("read write"));
    let mut config = client_credentials(&server, "demo-basic", "basic");
    config["grant_type"] = json!("refresh_token");
    config["refresh_token"] = json!(first);
    let harness = harness_for(&server);

    let token = harness.obtain_token(&config.to_string()).expect("a token");
    let second = token
        .refresh_token
        .expect("the server rotates the refresh token");
    assert_ne!(second.expose(), first);
    assert!(server.is_active(token.access_token.expose()));

    // The rotated token the component keeps in the state works.
    let mut rotated = config.clone();
    rotated["refresh_token"] = json!(second.expose());
    let again = harness
        .obtain_token(&rotated.to_string())
        .expect("the rotated token works");
    assert!(again.refresh_token.is_some());

    // The spent one is refused, and as a reuse it revokes the whole
    // authorization (RFC 9700 section 4.14.2): the rotated ones too.
    let error = rejected(harness.obtain_token(&config.to_string()));
    assert_eq!(error.error, "invalid_grant");
    assert_eq!(server.refresh_token_reuses(), 1);
    let mut latest = config.clone();
    latest["refresh_token"] = json!(again.refresh_token.expect("rotated").expose());
    assert_eq!(
        rejected(harness.obtain_token(&latest.to_string())).error,
        "invalid_grant"
    );
    assert!(!server.is_active(again.access_token.expose()));
}

#[test]
fn https_needs_the_servers_ca_to_be_trusted() {
    let server = https_server();
    let config = client_credentials(&server, "demo-basic", "basic");
    let untrusting = host_harness::Harness::new(
        end_to_end::connector(),
        &host_harness::HttpSettings::default(),
    );
    match untrusting.obtain_token(&config.to_string()) {
        Err(TokenError::Host(error)) => {
            let message = format!("{error:#}");
            assert!(message.to_lowercase().contains("certificate"), "{message}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert!(server.received_requests().is_empty());
}

#[test]
fn an_invalid_configuration_fails_before_any_request() {
    let server = http_server();
    let config = json!({
        "grant_type": "client_credentials",
        "token_url": "http://auth.example.com/token",
        "client_id": "demo-basic",
    });
    match harness_for(&server).obtain_token(&config.to_string()) {
        Err(TokenError::Connector(Failure::InvalidConfig(errors))) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["token_url", "client_secret"]);
            assert!(errors.iter().all(|e| !e.fix.is_empty()));
        }
        other => panic!("expected configuration errors, got {other:?}"),
    }
}

#[test]
fn an_unknown_endpoint_is_reported_with_the_servers_status() {
    let server = http_server();
    let mut config = client_credentials(&server, "demo-basic", "basic");
    config["token_url"] = json!(format!("{}/no-such-endpoint", server.base_url()));
    match harness_for(&server).obtain_token(&config.to_string()) {
        Err(TokenError::Connector(failure @ Failure::Rejected(_))) => {
            let Failure::Rejected(e) = &failure else {
                unreachable!("matched above");
            };
            assert_eq!((e.error.as_str(), e.status), ("not_found", Some(404)));
            assert_eq!(
                host_harness::component::describe(&failure),
                "the authorization server refused the request (HTTP 404): not_found"
            );
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
}

#[test]
fn debug_output_of_a_token_hides_the_secrets() {
    let server = http_server();
    let refresh = server.issue_refresh_token("demo-basic", None);
    let mut config = client_credentials(&server, "demo-basic", "basic");
    config["grant_type"] = json!("refresh_token");
    config["refresh_token"] = json!(refresh);
    let token = harness_for(&server)
        .obtain_token(&config.to_string())
        .expect("a token");
    let shown = format!("{token:?}");
    assert!(!shown.contains(token.access_token.expose()), "{shown}");
    let rotated = token.refresh_token.as_ref().expect("rotated");
    assert!(!shown.contains(rotated.expose()), "{shown}");
}

#[test]
fn the_schema_from_the_component_describes_every_field() {
    let schema: Value =
        serde_json::from_str(&end_to_end::connector().schema().expect("schema")).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    for field in [
        "grant_type",
        "token_url",
        "client_id",
        "client_secret",
        "client_auth",
        "scope",
    ] {
        assert!(schema["properties"][field]["title"].is_string(), "{field}");
    }
}

#[test]
fn the_server_challenges_a_failed_basic_authentication() {
    use host_harness::component::Request;
    let server = http_server();
    let client = host_harness::HttpClient::new(&host_harness::HttpSettings::default());
    let response = client
        .send(&Request {
            method: "POST".into(),
            url: server.token_url(),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                (
                    "Authorization".into(),
                    "Basic ZGVtby1iYXNpYzp3cm9uZw==".into(),
                ),
            ],
            body: b"grant_type=client_credentials".to_vec(),
        })
        .expect("a response");
    assert_eq!(response.status, 401);
    let challenge = header(&response.headers, "www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let body: Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(body["error"], "invalid_client");
}

fn canned_config(canned: &end_to_end::CannedServer) -> String {
    json!({
        "grant_type": "client_credentials",
        "token_url": canned.url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
    })
    .to_string()
}

#[test]
fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let server = http_server();
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        server.token_url()
    );
    let canned = end_to_end::CannedServer::start(redirect.into_bytes());
    let result = harness_for(&server).obtain_token(&canned_config(&canned));
    match result {
        Err(TokenError::Connector(Failure::UnreadableResponse(u))) => assert_eq!(u.status, 307),
        other => panic!("expected the redirect as an unreadable response, got {other:?}"),
    }
    assert!(
        server.received_requests().is_empty(),
        "the credentials went nowhere else"
    );
    assert!(canned.request_head().starts_with("POST /token HTTP/1.1"));
}

#[test]
fn an_html_error_page_is_reported_with_status_and_snippet() {
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let response = format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let canned = end_to_end::CannedServer::start(response.into_bytes());
    let server = http_server();
    match harness_for(&server).obtain_token(&canned_config(&canned)) {
        Err(TokenError::Connector(Failure::UnreadableResponse(u))) => {
            assert_eq!(u.status, 502);
            assert!(u.problem.contains("text/html"), "{}", u.problem);
            assert_eq!(u.snippet, page);
        }
        other => panic!("expected an unreadable response, got {other:?}"),
    }
}

#[test]
fn an_oversized_response_is_refused() {
    let body = "x".repeat(2 << 20);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let canned = end_to_end::CannedServer::start(response.into_bytes());
    let server = http_server();
    match harness_for(&server).obtain_token(&canned_config(&canned)) {
        Err(TokenError::Host(error)) => {
            assert!(error.to_string().contains("larger than"), "{error:#}")
        }
        other => panic!("expected the size limit, got {other:?}"),
    }
}

#[test]
fn oversized_or_countless_response_headers_are_refused() {
    let long = format!("X-Padding: {}\r\n", "p".repeat(80 << 10));
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    for headers in [long, many] {
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{headers}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let canned = end_to_end::CannedServer::start(response.into_bytes());
        let server = http_server();
        match harness_for(&server).obtain_token(&canned_config(&canned)) {
            Err(TokenError::Host(error)) => {
                let message = format!("{error:#}");
                assert!(message.contains("failed"), "{message}");
                assert!(
                    message.contains(canned.url()),
                    "names the server: {message}"
                );
            }
            other => panic!("expected the header limit, got {other:?}"),
        }
    }
}

mod every_grant {
    use super::*;
    use auth_server::AuthorizationServer;
    use auth_server::registry::{ASSERTION_ISSUER, REDIRECT_URI, keys};
    use end_to_end::{connector, http_settings};
    use host_harness::component::{Context, Request};
    use host_harness::{HttpClient, browser};

    /// A key the server has never seen.
    const UNREGISTERED_KEY: &str = include_str!("../connector/testdata/rsa-pkcs8.pem");

    fn resource(server: &AuthorizationServer, token: &host_harness::ObtainedToken) -> Value {
        let http = HttpClient::new(&http_settings(server.ca_pem()));
        let response = http
            .send(&Request {
                method: "GET".into(),
                url: server.resource_url(),
                headers: vec![(
                    "Authorization".into(),
                    format!("Bearer {}", token.access_token.expose()),
                )],
                body: Vec::new(),
            })
            .expect("the resource answers");
        assert_eq!(response.status, 200);
        serde_json::from_slice(&response.body).expect("JSON")
    }

    fn jwt_bearer(server: &AuthorizationServer, alg: &str, key: &str) -> Value {
        let mut config = client_credentials(server, "demo-basic", "basic");
        config["grant_type"] = json!("jwt_bearer");
        config["jwt"] = json!({"header": {"alg": alg}, "issuer": ASSERTION_ISSUER, "subject": "bob", "private_key": key});
        config
    }

    #[test]
    fn password_grant_logs_the_user_in_and_refuses_a_wrong_password() {
        let server = http_server();
        let mut config = client_credentials(&server, "demo-post", "body");
        config["grant_type"] = json!("password");
        config["username"] = json!("alice");
        config["password"] = json!("wonderland");
        let token = harness_for(&server)
            .obtain_token(&config.to_string())
            .expect("a token");
        assert_eq!(resource(&server, &token)["user"], "alice");
        assert!(token.refresh_token.is_some());

        config["password"] = json!("wrong");
        assert_eq!(
            rejected(harness_for(&server).obtain_token(&config.to_string())).error,
            "invalid_grant"
        );
    }

    #[test]
    fn jwt_bearer_assertions_of_every_key_type_are_verified_by_the_server() {
        let server = https_server();
        for (alg, key) in [
            ("RS256", keys::RSA_PRIVATE),
            ("RS384", keys::RSA_PRIVATE),
            ("PS512", keys::RSA_PRIVATE),
            ("ES256", keys::EC_PRIVATE),
            ("EdDSA", keys::ED25519_PRIVATE),
        ] {
            let token = harness_for(&server)
                .obtain_token(&jwt_bearer(&server, alg, key).to_string())
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(resource(&server, &token)["user"], "bob", "{alg}");
        }
    }

    #[test]
    fn the_server_refuses_foreign_keys_wrong_audiences_expired_and_replayed_assertions() {
        let server = http_server();
        let harness = harness_for(&server);
        let refused = |config: &Value| rejected(harness.obtain_token(&config.to_string())).error;

        assert_eq!(
            refused(&jwt_bearer(&server, "RS256", UNREGISTERED_KEY)),
            "invalid_grant"
        );
        let mut other_audience = jwt_bearer(&server, "RS256", keys::RSA_PRIVATE);
        other_audience["jwt"]["audience"] = json!("https://elsewhere.example/token");
        assert_eq!(refused(&other_audience), "invalid_grant");

        // The same request twice: the second assertion repeats the `jti`.
        let config = jwt_bearer(&server, "ES256", keys::EC_PRIVATE).to_string();
        let cx = Context {
            now: host_harness::harness::unix_now(),
            nonce: vec![42; 32],
        };
        let request = connector()
            .open(&config)
            .expect("no trap")
            .expect("opens")
            .token_request(&cx)
            .expect("no trap")
            .expect("a request")
            .request;
        let http = HttpClient::new(&http_settings(None));
        assert_eq!(http.send(&request).expect("a response").status, 200);
        let replay = http.send(&request).expect("a response");
        assert_eq!(replay.status, 400);
        assert!(String::from_utf8_lossy(&replay.body).contains("used before"));

        // An assertion signed an hour ago with a one-minute lifetime.
        let mut expired = jwt_bearer(&server, "RS256", keys::RSA_PRIVATE);
        expired["jwt"]["lifetime_secs"] = json!(60);
        let cx = Context {
            now: host_harness::harness::unix_now() - 3600,
            nonce: vec![7; 32],
        };
        let request = connector()
            .open(&expired.to_string())
            .expect("no trap")
            .expect("opens")
            .token_request(&cx)
            .expect("no trap")
            .expect("a request")
            .request;
        let response = http.send(&request).expect("a response");
        assert_eq!(response.status, 400);
        assert!(String::from_utf8_lossy(&response.body).contains("invalid_grant"));
    }

    #[test]
    fn private_key_jwt_clients_authenticate_with_registered_keys_only() {
        let server = http_server();
        let mut config = json!({
            "grant_type": "client_credentials",
            "token_url": server.token_url(),
            "client_id": "demo-jwt",
            "client_auth": "private_key_jwt",
            "client_assertion": {"header": {"alg": "RS256", "kid": "client-rsa-1"},
                                 "private_key": keys::CLIENT_RSA_PRIVATE},
        });
        let token = harness_for(&server)
            .obtain_token(&config.to_string())
            .expect("a token");
        assert_eq!(resource(&server, &token)["client_id"], "demo-jwt");
        let received = &server.received_requests()[0];
        assert_eq!(header(&received.headers, "authorization"), None);
        assert!(
            received
                .parameters
                .contains(&("client_assertion".into(), "[redacted]".into()))
        );

        config["client_assertion"]["private_key"] = json!(UNREGISTERED_KEY);
        config["client_assertion"]["header"]["alg"] = json!("RS256");
        let error = rejected(harness_for(&server).obtain_token(&config.to_string()));
        assert_eq!(
            (error.error.as_str(), error.status),
            ("invalid_client", Some(401))
        );

        // Keys are bound to their role: the issuer's key cannot authenticate
        // the client, whatever `kid` the header names...
        for kid in [json!(null), json!("client-rsa-1"), json!("rsa-1")] {
            let mut swapped = config.clone();
            swapped["client_assertion"] = json!({"header": {"alg": "RS256", "kid": kid},
                                                 "private_key": keys::RSA_PRIVATE});
            let error = rejected(harness_for(&server).obtain_token(&swapped.to_string()));
            assert_eq!(error.error, "invalid_client", "kid {kid}");
        }
        // ...and the client's key cannot sign the issuer's grants.
        let grant = json!({
            "grant_type": "jwt_bearer", "token_url": server.token_url(), "client_auth": "none",
            "client_id": "demo-public",
            "jwt": {"header": {"alg": "RS256"}, "issuer": ASSERTION_ISSUER, "subject": "alice",
                    "private_key": keys::CLIENT_RSA_PRIVATE},
        });
        let error = rejected(harness_for(&server).obtain_token(&grant.to_string()));
        assert_eq!(error.error, "invalid_grant");
        let mut right = grant.clone();
        right["jwt"]["private_key"] = json!(keys::RSA_PRIVATE);
        harness_for(&server)
            .obtain_token(&right.to_string())
            .expect("the issuer's own key signs its grants");
    }

    fn login_config(server: &AuthorizationServer, client_id: &str, client_auth: &str) -> Value {
        let mut config = client_credentials(server, client_id, client_auth);
        if client_auth == "none" {
            config.as_object_mut().map(|c| c.remove("client_secret"));
        }
        config["grant_type"] = json!("authorization_code");
        config["authorization_url"] = json!(server.authorization_url());
        config["redirect_uri"] = json!(REDIRECT_URI.replace("127.0.0.1", "127.0.0.1:40000"));
        config
    }

    /// SailPoint's forms: the JWT and password grants take no client id or
    /// secret, and an "additional payload" of body parameters carries them.
    #[test]
    fn sailpoints_forms_filled_in_as_documented_obtain_tokens() {
        let server = http_server();
        let harness = harness_for(&server);
        let payload = json!({"client_id": "demo-post", "client_secret": "demo-post-secret"});
        let documents = [
            json!({
                "grant_type": "jwt_bearer", "token_url": server.token_url(),
                "jwt": {"header": {"alg": "RS256", "typ": "JWT"}, "issuer": ASSERTION_ISSUER,
                        "subject": "alice", "audience": server.token_url(),
                        "private_key": keys::RSA_ENCRYPTED, "private_key_password": keys::RSA_ENCRYPTED_PASSWORD},
                "extra_body": payload,
            }),
            json!({
                "grant_type": "password", "token_url": server.token_url(),
                "username": "alice", "password": "wonderland",
                "extra_body": payload,
            }),
        ];
        for document in documents {
            let config = document.to_string();
            let problems = end_to_end::connector().validate(&config).expect("runs");
            assert!(problems.is_empty(), "{document}: {problems:?}");
            harness
                .obtain_token(&config)
                .unwrap_or_else(|e| panic!("{document}: {e}"));
            let request = server.received_requests().pop().expect("a token request");
            assert_eq!(request.authenticated_client.as_deref(), Some("demo-post"));
            assert!(
                request
                    .headers
                    .iter()
                    .all(|(name, _)| !name.eq_ignore_ascii_case("authorization")),
                "the payload carries the client, no Basic header"
            );
        }
        // The payload may not carry what the connector sends itself.
        let mut both = client_credentials(&server, "demo-basic", "basic");
        both["extra_body"] = payload;
        let problems = end_to_end::connector()
            .validate(&both.to_string())
            .expect("runs");
        assert!(
            problems.iter().any(|p| p.field == "extra_body.client_id"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_login_names_its_issuer_and_a_redirect_from_another_is_refused() {
        let server = http_server();
        let other = http_server();
        let harness = harness_for(&server);
        let http = HttpClient::new(&http_settings(None));
        let mut config = login_config(&server, "demo-public", "none");
        config["issuer"] = json!(server.base_url());
        let config = config.to_string();
        let login = harness.authorization(&config, None, None).expect("a URL");
        let redirect = browser::follow_authorization(&http, &login.url).expect("a redirect");
        assert!(
            redirect.contains("iss="),
            "the server names itself (RFC 9207): {redirect}"
        );
        harness
            .finish_login(&config, &redirect, &login)
            .expect("the configured issuer answered");

        // The same login answered by another server (a mix-up): refused
        // before its code reaches any token endpoint.
        let login = harness.authorization(&config, None, None).expect("a URL");
        let exchanged = server.received_requests().len();
        let elsewhere = login.url.replace(server.base_url(), other.base_url());
        let redirect = browser::follow_authorization(&http, &elsewhere).expect("a redirect");
        match harness.finish_login(&config, &redirect, &login) {
            Err(TokenError::Connector(Failure::BadRedirect(message))) => {
                assert!(message.contains("RFC 9207"), "{message}");
            }
            other => panic!("a redirect from another issuer must be refused: {other:?}"),
        }
        assert_eq!(
            server.received_requests().len(),
            exchanged,
            "the foreign code reached no token endpoint"
        );
    }

    #[test]
    fn authorization_code_with_pkce_over_https() {
        let server = https_server();
        let mut config = login_config(&server, "demo-public", "none");
        config["scope"] = json!("read");
        config["request_refresh_token"] = json!(true);
        config["login_hint"] = json!("bob");
        let config = config.to_string();
        let harness = harness_for(&server);
        let login = harness.authorization(&config, None, None).expect("a URL");
        let http = HttpClient::new(&http_settings(server.ca_pem()));
        let redirect = browser::follow_authorization(&http, &login.url).expect("a redirect");
        let token = harness
            .finish_login(&config, &redirect, &login)
            .expect("a token");
        assert_eq!(token.scope.as_deref(), Some("read offline_access"));
        assert!(
            token.refresh_token.is_some(),
            "offline_access brings a refresh token"
        );
        assert_eq!(resource(&server, &token)["user"], "bob");

        // The code is spent.
        let again = harness.finish_login(&config, &redirect, &login);
        assert_eq!(rejected(again).error, "invalid_grant");
    }

    #[test]
    fn a_wrong_verifier_a_forged_state_and_a_missing_challenge_all_fail() {
        let server = http_server();
        let harness = harness_for(&server);
        let http = HttpClient::new(&http_settings(None));
        let config = login_config(&server, "demo-basic", "basic").to_string();

        let login = harness.authorization(&config, None, None).expect("a URL");
        let redirect = browser::follow_authorization(&http, &login.url).expect("a redirect");
        let wrong_verifier = "w".repeat(43);
        let mut wrong = login.clone();
        wrong.code_verifier = Some(wrong_verifier);
        let error = rejected(harness.finish_login(&config, &redirect, &wrong));
        assert_eq!(
            error.error, "invalid_grant",
            "the server checks the verifier"
        );

        let login = harness.authorization(&config, None, None).expect("a URL");
        let redirect = browser::follow_authorization(&http, &login.url).expect("a redirect");
        let mut forged = login.clone();
        forged.state = "another-login".into();
        match harness.finish_login(&config, &redirect, &forged) {
            Err(TokenError::Connector(Failure::BadRedirect(message))) => {
                assert!(message.contains("state"))
            }
            other => panic!("a forged state must be refused: {other:?}"),
        }

        // A public client without S256 does not even start (RFC 9700
        // section 2.1.1)...
        let mut without_pkce: Value =
            serde_json::from_str(&login_config(&server, "demo-public", "none").to_string())
                .expect("JSON");
        without_pkce["pkce"] = json!("none");
        match harness.authorization(&without_pkce.to_string(), None, None) {
            Err(TokenError::Connector(Failure::InvalidConfig(errors))) => {
                assert_eq!(errors[0].field, "pkce");
            }
            other => panic!("a public client without PKCE must be refused: {other:?}"),
        }
        // ...and the server refuses its authorization request without a
        // challenge, in an error redirect that carries the login's state.
        let config = login_config(&server, "demo-public", "none").to_string();
        let login = harness.authorization(&config, None, None).expect("a URL");
        let mut stripped = url::Url::parse(&login.url).expect("a URL");
        let kept: Vec<(String, String)> = stripped
            .query_pairs()
            .filter(|(name, _)| !name.starts_with("code_challenge"))
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        stripped.query_pairs_mut().clear().extend_pairs(kept);
        let redirect = browser::follow_authorization(&http, stripped.as_str()).expect("a redirect");
        match harness.finish_login(&config, &redirect, &login) {
            Err(TokenError::Connector(Failure::Rejected(e))) => {
                assert_eq!((e.error.as_str(), e.status), ("invalid_request", None));
            }
            other => panic!("the server must refuse a public client without PKCE: {other:?}"),
        }
    }

    #[test]
    fn implicit_grant_token_comes_from_the_redirect() {
        let server = http_server();
        let mut config = login_config(&server, "demo-public", "none");
        config["grant_type"] = json!("implicit");
        config.as_object_mut().map(|c| c.remove("token_url"));
        let config = config.to_string();
        let harness = harness_for(&server);
        let login = harness.authorization(&config, None, None).expect("a URL");
        let http = HttpClient::new(&http_settings(None));
        let redirect = browser::follow_authorization(&http, &login.url).expect("a redirect");
        assert!(redirect.contains('#'), "{redirect}");
        let token = harness
            .finish_login(&config, &redirect, &login)
            .expect("a token");
        assert!(server.is_active(token.access_token.expose()));
    }

    /// The configuration of a registered client with its own method.
    fn client_config(server: &AuthorizationServer, grant: &str, client_id: &str) -> Value {
        let registered = end_to_end::client(client_id);
        let mut config = json!({
            "grant_type": grant,
            "token_url": server.token_url(),
            "client_id": client_id,
            "client_auth": registered.auth.client_auth(),
        });
        if !registered.client_secret.is_empty() {
            config["client_secret"] = json!(registered.client_secret);
        }
        if registered.auth.client_auth() == "private_key_jwt" {
            config["client_assertion"] =
                json!({"header": {"alg": "PS256"}, "private_key": keys::CLIENT_RSA_PRIVATE});
        }
        config
    }

    /// Every grant with every client authentication the README's support
    /// matrix names, over HTTP and HTTPS, each token checked with the server.
    #[test]
    fn the_support_matrix_holds_over_http_and_https() {
        const CLIENTS: [&str; 4] = ["demo-basic", "demo-post", "demo-public", "demo-jwt"];
        for server in [http_server(), https_server()] {
            let harness = harness_for(&server);
            let http = HttpClient::new(&http_settings(server.ca_pem()));
            let check = |token: &host_harness::ObtainedToken, what: &str| {
                assert!(
                    server.is_active(token.access_token.expose()),
                    "{what}: the server does not know the token"
                );
            };
            for client_id in CLIENTS {
                let public = client_id == "demo-public";

                let config = client_config(&server, "client_credentials", client_id);
                match harness.obtain_token(&config.to_string()) {
                    Ok(token) if !public => check(&token, client_id),
                    Err(TokenError::Connector(Failure::Rejected(e))) if public => {
                        assert_eq!(
                            e.error, "unauthorized_client",
                            "RFC 6749 section 4.4 is for confidential clients"
                        );
                    }
                    other => panic!("client_credentials for {client_id}: {other:?}"),
                }

                let spent = server.issue_refresh_token(client_id, Some("read"));
                let mut config = client_config(&server, "refresh_token", client_id);
                config["refresh_token"] = json!(spent);
                let token = harness
                    .obtain_token(&config.to_string())
                    .expect("a refreshed token");
                check(&token, "refresh_token");
                assert_eq!(
                    rejected(harness.obtain_token(&config.to_string())).error,
                    "invalid_grant",
                    "{client_id}: the server spent the presented refresh token"
                );

                if !public {
                    let mut config = client_config(&server, "password", client_id);
                    config["username"] = json!("alice");
                    config["password"] = json!("wonderland");
                    check(
                        &harness.obtain_token(&config.to_string()).expect("a token"),
                        "password",
                    );
                }

                let mut config = client_config(&server, "jwt_bearer", client_id);
                config["jwt"] = json!({"header": {"alg": "ES256"}, "issuer": ASSERTION_ISSUER, "subject": "alice",
                                       "private_key": keys::EC_PRIVATE});
                check(
                    &harness.obtain_token(&config.to_string()).expect("a token"),
                    "jwt_bearer",
                );

                // A public client may use S256 only (RFC 9700 section 2.1.1).
                let pkce_methods: &[&str] = if public {
                    &["S256"]
                } else {
                    &["S256", "plain", "none"]
                };
                for pkce in pkce_methods {
                    let mut config = client_config(&server, "authorization_code", client_id);
                    config["authorization_url"] = json!(server.authorization_url());
                    config["redirect_uri"] =
                        json!(REDIRECT_URI.replace("127.0.0.1", "127.0.0.1:40001"));
                    config["pkce"] = json!(pkce);
                    let config = config.to_string();
                    let login = harness.authorization(&config, None, None).expect("a URL");
                    let redirect =
                        browser::follow_authorization(&http, &login.url).expect("a redirect");
                    let token = harness
                        .finish_login(&config, &redirect, &login)
                        .unwrap_or_else(|e| panic!("{client_id} with PKCE {pkce}: {e}"));
                    check(&token, "authorization_code");
                }
            }
        }
    }
}

#[test]
fn the_server_answers_only_under_its_own_names_and_forgets_what_expired() {
    use std::io::{Read as _, Write as _};
    let server = auth_server::AuthorizationServer::start(auth_server::ServerOptions {
        token_lifetime_secs: 1,
        ..auth_server::ServerOptions::default()
    })
    .expect("server");
    let authority = server.base_url().trim_start_matches("http://").to_owned();
    let ask = |host: &str| {
        let mut stream = std::net::TcpStream::connect(&authority).expect("connects");
        write!(
            stream,
            "GET /resource HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("sent");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    };
    // DNS rebinding: another name that resolves here is refused.
    assert!(
        ask("evil.example:80").contains("421"),
        "{}",
        ask("evil.example:80")
    );
    assert!(
        ask(&authority).contains("401"),
        "its own name reaches the resource"
    );

    let harness = harness_for(&server);
    let config = client_credentials(&server, "demo-basic", "basic").to_string();
    for _ in 0..3 {
        harness.obtain_token(&config).expect("a token");
    }
    assert_eq!(server.held_entries(), 3);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let _ = ask(&authority);
    assert_eq!(server.held_entries(), 0, "expired tokens are forgotten");
}
