//! The products this connector replaces, configured as their own
//! documentation tells their users to, against the embedded server: IBM
//! z/OS Connect, Thinkwise and webMethods Integration Server. (SailPoint's
//! forms are in `embedded_server.rs`.) Each test names the documented
//! setting it fills in, so that a change which breaks one product's users
//! says whose.

use auth_server::AuthorizationServer;
use auth_server::registry::REDIRECT_URI;
use end_to_end::{connector, harness_for, http_server, http_settings};
use host_harness::{HttpClient, ObtainedToken, browser};
use serde_json::{Value, json};

/// The token request the server received last.
fn last_request(server: &AuthorizationServer) -> auth_server::ReceivedRequest {
    server.received_requests().pop().expect("a token request")
}

fn parameter<'a>(request: &'a auth_server::ReceivedRequest, name: &str) -> Option<&'a str> {
    request
        .parameters
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn sent_basic(request: &auth_server::ReceivedRequest) -> bool {
    request.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("authorization") && value.starts_with("Basic ")
    })
}

/// The connection's document after the engine's layers.
fn merged(connection: &Value, environment: Option<&Value>, runtime: Option<&Value>) -> String {
    connector()
        .merge_layers(
            &connection.to_string(),
            environment.map(Value::to_string).as_deref(),
            runtime.map(Value::to_string).as_deref(),
        )
        .expect("runs")
        .unwrap_or_else(|errors| panic!("{connection}: {errors:?}"))
}

fn valid(document: &str) {
    let problems = connector().validate(document).expect("runs");
    assert!(problems.is_empty(), "{document}: {problems:?}");
}

/// The redirect URI registered at the embedded server, on a port of the
/// login's (any port matches a loopback registration, RFC 8252 section 7.3).
fn loopback_redirect() -> String {
    let mut uri = url::Url::parse(REDIRECT_URI).expect("the registered redirect URI");
    uri.set_port(Some(40000))
        .expect("a loopback URL takes a port");
    uri.to_string()
}

/// The message a `localhost` redirect URI gets, and the fix it names.
fn localhost_redirect_refusal(document: &Value) -> String {
    let problems = connector().validate(&document.to_string()).expect("runs");
    let problem = problems
        .iter()
        .find(|p| p.field == "redirect_uri")
        .unwrap_or_else(|| panic!("{document}: {problems:?}"));
    format!("{} ({})", problem.message, problem.fix)
}

/// A browser login through the embedded server, as a person completes it.
fn log_in(server: &AuthorizationServer, document: &str) -> ObtainedToken {
    let harness = harness_for(server);
    let login = harness
        .authorization(document, None, None)
        .expect("an authorization URL");
    let redirect =
        browser::follow_authorization(&HttpClient::new(&http_settings(None)), &login.url)
            .expect("the server redirects back");
    harness
        .finish_login(document, &redirect, &login)
        .unwrap_or_else(|e| panic!("{document}: {e}"))
}

/// IBM z/OS Connect's API requester: the authorization server and the
/// client's credentials in `server.xml` (`zosconnect_authorizationServer`
/// with `tokenEndpoint` and `basicAuthRef` to a `zosconnect_authData` whose
/// `user` and `password` are the client ID and secret), the user, password,
/// client, scope, audience, resource and custom parameters from the z/OS
/// application (`BAQ-OAUTH-*`, `BAQR-OAUTH-*`), and `tokenRetryCheckLevel`.
#[test]
fn z_os_connect_as_its_server_xml_and_applications_fill_it_in() {
    let server = http_server();
    let harness = harness_for(&server);

    // IBM's example: client credentials, the client in server.xml, sent
    // with basic authentication. No method is named: Basic is the default.
    let server_xml = json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
    });
    let document = merged(&server_xml, None, None);
    valid(&document);
    harness.obtain_token(&document).expect("a token");
    let request = last_request(&server);
    assert!(sent_basic(&request), "{:?}", request.headers);
    assert_eq!(request.authenticated_client.as_deref(), Some("demo-basic"));
    assert_eq!(parameter(&request, "client_secret"), None);

    // The client secret in the body instead.
    let in_body = json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "client_id": "demo-post",
        "client_secret": "demo-post-secret",
        "client_auth": "body",
    });
    harness
        .obtain_token(&merged(&in_body, None, None))
        .expect("a token");
    let request = last_request(&server);
    assert!(!sent_basic(&request));
    assert_eq!(request.authenticated_client.as_deref(), Some("demo-post"));

    // The password grant, with everything from the application:
    // BAQ-OAUTH-USERNAME, -PASSWORD, -CLIENTID, -CLIENT-SECRET and the
    // scope; the z/OS Connect 3.0 names add an audience, a resource and
    // custom parameters (`custom1=valueA\,valueB,custom2=valueC`).
    let password_xml = json!({"grant_type": "password", "token_url": server.token_url()});
    let application = json!({
        "username": "alice", "password": "wonderland",
        "client_id": "demo-basic", "client_secret": "demo-basic-secret",
        "scope": "read write",
        "audience": "https://api.example.com", "resource": "https://api.example.com/v1",
        "extra_body": {"custom1": "valueA,valueB", "custom2": "valueC"},
    });
    let document = merged(&password_xml, None, Some(&application));
    valid(&document);
    let token = harness.obtain_token(&document).expect("a token");
    assert_eq!(token.scope.as_deref(), Some("read write"));
    let request = last_request(&server);
    assert_eq!(request.authenticated_client.as_deref(), Some("demo-basic"));
    for (name, value) in [
        ("grant_type", "password"),
        ("username", "alice"),
        ("scope", "read write"),
        ("audience", "https://api.example.com"),
        ("resource", "https://api.example.com/v1"),
        ("custom1", "valueA,valueB"),
        ("custom2", "valueC"),
    ] {
        assert_eq!(parameter(&request, name), Some(value), "{name}");
    }

    // Credentials in both places: server.xml's win, as a pair.
    let mut with_client = password_xml.clone();
    with_client["client_id"] = json!("demo-post");
    with_client["client_secret"] = json!("demo-post-secret");
    with_client["client_auth"] = json!("body");
    let document = merged(&with_client, None, Some(&application));
    harness.obtain_token(&document).expect("a token");
    assert_eq!(
        last_request(&server).authenticated_client.as_deref(),
        Some("demo-post"),
        "server.xml's client, not the application's"
    );

    // Both or neither: a client ID from server.xml and a secret from the
    // application is refused, naming the split.
    let mut id_only = password_xml.clone();
    id_only["client_id"] = json!("demo-basic");
    let errors = connector()
        .merge_layers(
            &id_only.to_string(),
            None,
            Some(&json!({"client_secret": "demo-basic-secret"}).to_string()),
        )
        .expect("runs")
        .expect_err("a split pair");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "client_secret");
    assert!(
        errors[0].message.contains(
            "the application supplies `client_secret` but the connection configures `client_id`"
        ),
        "{errors:?}"
    );

    // tokenRetryCheckLevel: 1 (renew on any 401) and 3 (the default: only
    // for `invalid_token`) are both accepted, under the same name; what
    // each level does is `tokens_in_use.rs`'s
    // `each_check_level_retries_what_it_says_and_at_most_once`.
    for level in [1, 3] {
        let mut document = server_xml.clone();
        document["token_retry_check_level"] = json!(level);
        valid(&document.to_string());
    }
}

/// Thinkwise's OAuth server (Integration & AI > OAuth servers): client and
/// client secret, sent in the body by default or "As Basic Auth header";
/// the login connector (client credentials) whose Scope input overrides
/// the server's; the user login connector with "Request refresh token" and
/// "Prompt", returning to the redirect URI.
#[test]
fn thinkwise_as_its_oauth_server_screen_and_connectors_fill_it_in() {
    let server = http_server();
    let harness = harness_for(&server);

    // The OAuth server, credentials in the body as Thinkwise sends them
    // unless told otherwise.
    let oauth_server = json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "client_id": "demo-post",
        "client_secret": "demo-post-secret",
        "client_auth": "body",
        "scope": "read",
    });
    valid(&oauth_server.to_string());
    // The process action's Scope input replaces the server's scope: the
    // process flow belongs to the same model as the server, so it comes
    // in as an override, not as an application's value.
    let action = json!({"scope": "write"});
    let document = merged(&oauth_server, Some(&action), None);
    let token = harness.obtain_token(&document).expect("a token");
    assert_eq!(token.scope.as_deref(), Some("write"));
    let request = last_request(&server);
    assert!(!sent_basic(&request));
    assert_eq!(parameter(&request, "client_id"), Some("demo-post"));
    assert_eq!(request.authenticated_client.as_deref(), Some("demo-post"));

    // "As Basic Auth header".
    let mut basic = oauth_server.clone();
    basic["client_id"] = json!("demo-basic");
    basic["client_secret"] = json!("demo-basic-secret");
    basic["client_auth"] = json!("basic");
    harness
        .obtain_token(&merged(&basic, None, None))
        .expect("a token");
    assert!(sent_basic(&last_request(&server)));

    // The user login connector: authorization code, "Request refresh
    // token" and "Prompt: Consent", the client in the body.
    let mut user_login = oauth_server.clone();
    user_login["grant_type"] = json!("authorization_code");
    user_login["authorization_url"] = json!(server.authorization_url());
    user_login["request_refresh_token"] = json!(true);
    user_login["prompt"] = json!("consent");
    // Thinkwise assumes http://localhost/oauth-callback; RFC 8252 section
    // 8.3 advises against `localhost`, and the refusal names the literal
    // address to register instead.
    user_login["redirect_uri"] = json!("http://localhost/oauth-callback");
    let refusal = localhost_redirect_refusal(&user_login);
    assert!(
        refusal.contains("use the literal loopback address: http://127.0.0.1/oauth-callback"),
        "{refusal}"
    );
    // The embedded server has the client's loopback callback registered.
    user_login["redirect_uri"] = json!(loopback_redirect());
    let document = merged(&user_login, None, None);
    valid(&document);
    let login = harness_for(&server)
        .authorization(&document, None, None)
        .expect("an authorization URL");
    assert!(login.url.contains("prompt=consent"), "{}", login.url);
    assert!(
        login.url.contains("scope=read+offline_access"),
        "a refresh token asked for: {}",
        login.url
    );
    let token = log_in(&server, &document);
    assert!(token.refresh_token.is_some(), "Request refresh token");
    assert_eq!(
        last_request(&server).authenticated_client.as_deref(),
        Some("demo-post")
    );

    // "Prompt" takes each of Thinkwise's choices.
    for prompt in ["consent", "login", "select_account", "none"] {
        let mut document = user_login.clone();
        document["prompt"] = json!(prompt);
        valid(&document.to_string());
    }
}

/// webMethods Integration Server as an OAuth client: the authorization
/// code, obtained in the browser, exchanged with `token_endpoint`,
/// `client_id`, `client_secret`, a space-separated `scope` and the
/// `redirect_uri`, then renewed with `grant_type` `refresh_token`; and the
/// grants Integration Server's own authorization server issues
/// (authorization code, client credentials, password, refresh token) to
/// confidential clients over HTTP Basic authentication.
#[test]
fn webmethods_as_its_token_services_fill_it_in() {
    let server = http_server();
    let harness = harness_for(&server);
    let client = json!({
        "token_url": server.token_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
        "scope": "read write",
    });
    let with = |grant: &str, extra: Value| {
        let mut document = client.clone();
        document["grant_type"] = json!(grant);
        for (name, value) in extra.as_object().expect("an object") {
            document[name] = value.clone();
        }
        document
    };

    // The redirect URI Integration Server documents for a local login
    // names localhost: refused, with the literal address to use.
    let refusal = localhost_redirect_refusal(&with(
        "authorization_code",
        json!({
            "authorization_url": server.authorization_url(),
            "redirect_uri": "http://localhost:5555/WmRoot/security-oauth-get-authcode.dsp",
        }),
    ));
    assert!(
        refusal.contains("http://127.0.0.1:5555/WmRoot/security-oauth-get-authcode.dsp"),
        "{refusal}"
    );
    // Its remote form, over https, is valid as written.
    valid(
        &with(
            "authorization_code",
            json!({
                "authorization_url": server.authorization_url(),
                "redirect_uri": "https://is.example.com:5543/WmRoot/security-oauth-get-authcode.dsp",
            }),
        )
        .to_string(),
    );

    // The authorization code, then the refresh token it came with.
    let code = with(
        "authorization_code",
        json!({
            "authorization_url": server.authorization_url(),
            "redirect_uri": loopback_redirect(),
            "request_refresh_token": true,
        }),
    );
    let token = log_in(&server, &code.to_string());
    assert!(sent_basic(&last_request(&server)));
    let refresh_token = token.refresh_token.expect("a refresh token");
    let renewed = harness
        .obtain_token(
            &with(
                "refresh_token",
                json!({"refresh_token": refresh_token.expose()}),
            )
            .to_string(),
        )
        .expect("renewed");
    let request = last_request(&server);
    assert_eq!(parameter(&request, "grant_type"), Some("refresh_token"));
    assert!(sent_basic(&request));
    assert!(server.is_active(renewed.access_token.expose()));

    // Every grant of Integration Server's own authorization server, with
    // a space-separated scope granted as asked.
    for document in [
        with("client_credentials", json!({})),
        with(
            "password",
            json!({"username": "alice", "password": "wonderland"}),
        ),
    ] {
        valid(&document.to_string());
        let token = harness
            .obtain_token(&document.to_string())
            .unwrap_or_else(|e| panic!("{document}: {e}"));
        assert_eq!(token.scope.as_deref(), Some("read write"), "{document}");
        let request = last_request(&server);
        assert!(sent_basic(&request), "{document}");
        assert_eq!(parameter(&request, "scope"), Some("read write"));
    }
}
