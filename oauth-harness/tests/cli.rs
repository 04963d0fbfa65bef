//! The `oauth-harness` command line, run as a user would run it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use auth_server::TEST_CLIENTS;
use auth_server::{AuthorizationServer, ServerOptions};
use serde_json::{Value, json};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args(args)
        .output()
        .expect("oauth-harness runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file in a directory of the test's own, removed with it.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("random");
        let dir =
            std::env::temp_dir().join(format!("oauth-harness-cli-{}", u64::from_le_bytes(random)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write");
        Self { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config_file(server: &AuthorizationServer, client_secret: &str) -> TempFile {
    let client = &TEST_CLIENTS[0];
    let config = json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "client_id": client.client_id,
        "client_secret": client_secret,
        "scope": "read",
    });
    TempFile::new("config.json", &config.to_string())
}

#[test]
fn every_command_has_help() {
    for command in [
        &["--help"][..],
        &["schema", "--help"],
        &["validate", "--help"],
        &["token", "--help"],
        &["serve", "--help"],
        &["demo", "--help"],
        &["call", "--help"],
        &["form", "--help"],
        &["authorize-url", "--help"],
        &["exchange", "--help"],
        &["login", "--help"],
    ] {
        let output = harness(command);
        assert!(output.status.success(), "{command:?}");
        assert!(text(&output.stdout).contains("Usage:"), "{command:?}");
    }
    assert!(text(&harness(&["token", "--help"]).stdout).contains("--ca-file"));
}

#[test]
fn schema_prints_a_json_schema() {
    let output = harness(&["schema"]);
    assert!(output.status.success());
    let schema: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["properties"]["client_auth"]["default"], "basic");
}

#[test]
fn validate_names_each_bad_field_and_fails() {
    let bad = TempFile::new(
        "bad.json",
        &json!({"grant_type": "client_credentials", "token_url": "http://as.example.com/t", "client_id": "a"}).to_string(),
    );
    let output = harness(&["validate", bad.path()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("token_url: the scheme `http` is not allowed"),
        "{stdout}"
    );
    assert!(stdout.contains("client_secret: required"), "{stdout}");

    let good = TempFile::new(
        "good.json",
        &json!({"grant_type": "client_credentials", "token_url": "https://as.example.com/t", "client_id": "a", "client_secret": "b"}).to_string(),
    );
    let output = harness(&["validate", good.path()]);
    assert!(output.status.success(), "{}", text(&output.stdout));
}

#[test]
fn token_json_redacts_secrets_unless_asked() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = config_file(&server, TEST_CLIENTS[0].client_secret);

    let output = harness(&["token", "--config", config.path(), "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let token: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "read");
    assert_eq!(token["access_token"], "[redacted]");
    assert_eq!(token["refresh_token"], Value::Null);
    assert!(
        token["expires_at"]
            .as_u64()
            .is_some_and(|at| at > 1_700_000_000)
    );

    let output = harness(&[
        "token",
        "--config",
        config.path(),
        "--json",
        "--show-secrets",
    ]);
    let token: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let access_token = token["access_token"].as_str().expect("a string");
    assert!(
        server.is_active(access_token),
        "the printed token is the one the server issued"
    );
}

#[test]
fn token_summary_over_https_with_the_servers_ca() {
    let server = AuthorizationServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .expect("server");
    let config = config_file(&server, TEST_CLIENTS[0].client_secret);
    let ca = TempFile::new("ca.pem", server.ca_pem().expect("a CA"));

    let output = harness(&["token", "--config", config.path(), "--ca-file", ca.path()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["token_type", "Bearer"]), "{stdout}");
    assert!(
        lines.contains(&vec!["access_token", "[redacted]"]),
        "{stdout}"
    );

    let output = harness(&["token", "--config", config.path()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the private CA is not trusted by default"
    );
    assert!(
        text(&output.stderr).contains("certificate"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn token_with_a_wrong_secret_prints_the_servers_error_and_no_secret() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = config_file(&server, "canary-secret-0xC0FFEE");
    let output = harness(&["token", "--config", config.path()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    let everything = format!("{}{stderr}", text(&output.stdout));
    assert!(!everything.contains("canary-secret"), "{everything}");
}

#[test]
fn demo_runs_every_scenario_successfully() {
    let output = harness(&["demo"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("https"), "{stdout}");
    assert!(stdout.contains("refresh token rotated"), "{stdout}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn serve_prints_its_url_and_test_clients() {
    use std::io::{BufRead as _, BufReader};
    let ca = TempFile::new("unused", "");
    let ca_out = ca.dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args(["serve", "--tls", "--ca-out"])
        .arg(&ca_out)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("piped");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.starts_with("press Ctrl-C"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let printed = lines.join("\n");
    assert!(
        printed.contains("listening on https://127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("demo-basic") && printed.contains("demo-post"),
        "{printed}"
    );
    let pem = std::fs::read_to_string(&ca_out).expect("the CA was written");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

fn login_config(server: &AuthorizationServer, redirect_uri: &str) -> TempFile {
    let config = json!({
        "grant_type": "authorization_code",
        "token_url": server.token_url(),
        "authorization_url": server.authorization_url(),
        "redirect_uri": redirect_uri,
        "client_id": "demo-public",
        "client_auth": "none",
        "scope": "read",
        "request_refresh_token": true,
    });
    TempFile::new("login.json", &config.to_string())
}

fn field(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no `{name}` in {stdout}"))
}

#[test]
fn authorize_url_with_fixed_values_is_reproducible_and_exchange_finishes_the_login() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = login_config(&server, "http://127.0.0.1:45678/callback");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let args = [
        "authorize-url",
        "--config",
        config.path(),
        "--state",
        "fixed-state",
        "--code-verifier",
        verifier,
    ];
    let first = text(&harness(&args).stdout);
    assert_eq!(
        first,
        text(&harness(&args).stdout),
        "fixed values give the same URL"
    );
    let url = field(&first, "url");
    assert!(
        url.contains("code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        "{url}"
    );
    assert_eq!(field(&first, "state"), "fixed-state");

    // The browser's part: the server approves at once and redirects.
    let http = host_harness::HttpClient::new(&host_harness::HttpSettings::default());
    let redirect = host_harness::browser::follow_authorization(&http, &url).expect("a redirect");
    let store = config.dir.join("tokens.json");
    let store = store.to_str().expect("UTF-8");
    let output = harness(&[
        "exchange",
        "--config",
        config.path(),
        "--store",
        store,
        "--redirect-url",
        &redirect,
        "--state",
        "fixed-state",
        "--code-verifier",
        verifier,
        "--json",
        "--show-secrets",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let token: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(server.is_active(token["access_token"].as_str().expect("a token")));
    assert_eq!(token["scope"], "read offline_access");

    // The login's token is kept for the configuration: `call` uses it with
    // no refresh token copied anywhere, and no new token request.
    let call = harness(&[
        "call",
        "--config",
        config.path(),
        "--store",
        store,
        &server.resource_url(),
    ]);
    assert!(call.status.success(), "{}", text(&call.stderr));
    assert_eq!(
        server.received_requests().len(),
        1,
        "only the code exchange"
    );

    let output = harness(&[
        "exchange",
        "--config",
        config.path(),
        "--redirect-url",
        &redirect,
        "--state",
        "another-state",
        "--code-verifier",
        verifier,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("state"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn login_receives_the_redirect_on_a_loopback_port() {
    use std::io::{BufRead as _, BufReader};
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    // No port: the command picks a free one and puts it in the redirect URI.
    let config = login_config(&server, "http://127.0.0.1/callback");
    let mut child = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args([
            "login",
            "--config",
            config.path(),
            "--json",
            "--wait",
            "60",
            "--store",
        ])
        .arg(config.dir.join("tokens.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("login starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("a line") > 0,
            "login printed no URL"
        );
        if line.starts_with("http") {
            break line.trim().to_owned();
        }
    };
    let http = host_harness::HttpClient::new(&host_harness::HttpSettings::default());
    let get = |url: String| {
        let page = http
            .send(&host_harness::component::Request {
                method: "GET".into(),
                url,
                headers: vec![],
                body: vec![],
            })
            .expect("the command answers the browser");
        String::from_utf8_lossy(&page.body).into_owned()
    };
    // Another page sends the browser to the callback first, with an error
    // and no state: it is answered and ignored, and the login goes on.
    let redirect_uri = url::Url::parse(&url)
        .expect("a URL")
        .query_pairs()
        .find(|(name, _)| name == "redirect_uri")
        .map(|(_, value)| value.into_owned())
        .expect("the login names its redirect URI");
    let forged = get(format!("{redirect_uri}?error=access_denied"));
    assert!(forged.contains("does not belong"), "{forged}");
    // A browser follows the redirect to the listening command.
    let redirect = host_harness::browser::follow_authorization(&http, &url).expect("a redirect");
    assert!(get(redirect).contains("Login complete"));

    let output = child.wait_with_output().expect("login ends");
    let mut printed = String::new();
    stdout.read_to_string(&mut printed).expect("the rest");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("ignored a redirect that is not this login's"),
        "{}",
        text(&output.stderr)
    );
    let token: Value = serde_json::from_str(&printed).expect("JSON");
    assert_eq!(token["access_token"], "[redacted]");
    assert_eq!(token["refresh_token"], "[redacted]");

    // The token is kept: `call` works at once, and once the access token
    // is revoked it renews with the login's refresh token.
    let store = config.dir.join("tokens.json");
    let store = store.to_str().expect("UTF-8");
    let call = |server: &AuthorizationServer| {
        harness(&[
            "call",
            "--config",
            config.path(),
            "--store",
            store,
            "--verbose",
            &server.resource_url(),
        ])
    };
    let first = call(&server);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains("from the token store"),
        "{}",
        text(&first.stderr)
    );
    server.revoke_access_tokens();
    let second = call(&server);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains("renewed with the refresh token"),
        "{}",
        text(&second.stderr)
    );
}

#[test]
fn token_save_keeps_the_rotated_refresh_token_for_the_next_run() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let first = server.issue_refresh_token("demo-basic", Some("read"));
    let config = json!({
        "token_url": server.token_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
        "refresh_token": first,
    });
    let file = TempFile::new("refresh.json", &config.to_string());

    let output = harness(&[
        "token",
        "--config",
        file.path(),
        "--save",
        file.path(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let token: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(token["refresh_token_rotated"], true);
    assert_eq!(token["refresh_token"], "[redacted]");

    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(file.path()).expect("saved")).expect("JSON");
    assert_ne!(
        saved["refresh_token"],
        json!(first),
        "the rotated token replaced the spent one"
    );
    assert_eq!(
        saved["client_id"], "demo-basic",
        "the rest of the configuration is kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file.path())
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&file.dir).expect("dir").collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");

    // The next run uses the saved token, and rotates again.
    let output = harness(&["token", "--config", file.path(), "--save", file.path()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The spent token no longer works.
    let spent = TempFile::new("spent.json", &config.to_string());
    let output = harness(&["token", "--config", spent.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("invalid_grant"));
}

#[test]
fn token_save_refuses_a_grant_whose_configuration_reads_no_refresh_token() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = json!({
        "grant_type": "password",
        "token_url": server.token_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
        "username": "alice",
        "password": "wonderland",
    })
    .to_string();
    let file = TempFile::new("password.json", &config);
    let output = harness(&["token", "--config", file.path(), "--save", file.path()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "--save: grant_type `password` does not read a refresh token from the configuration"
        ),
        "{stderr}"
    );
    // Nothing is lost (the grant obtains another), so nothing is shown.
    assert!(!stderr.contains("could not be saved"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(file.path()).expect("kept"),
        config,
        "the file is left as it was"
    );
}

#[test]
fn configuration_layers_combine_before_use() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    // The connection points at another environment and leaves the client to the application.
    let connection = TempFile::new(
        "connection.json",
        &json!({"grant_type": "client_credentials", "token_url": "https://dev.example.com/token", "scope": "read"})
            .to_string(),
    );
    let environment = TempFile::new(
        "prod.json",
        &json!({"token_url": server.token_url()}).to_string(),
    );
    let client = &TEST_CLIENTS[0];
    let runtime = TempFile::new(
        "runtime.json",
        &json!({"client_id": client.client_id, "client_secret": client.client_secret, "scope": "write"}).to_string(),
    );
    let output = harness(&[
        "token",
        "--config",
        connection.path(),
        "--override",
        environment.path(),
        "--runtime",
        runtime.path(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let token: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        token["scope"], "read",
        "the configured scope wins over the application's"
    );

    // A client id from the connection with a secret from the application is refused.
    let split_connection = TempFile::new(
        "split.json",
        &json!({"grant_type": "client_credentials", "token_url": server.token_url(), "client_id": client.client_id})
            .to_string(),
    );
    let secret_only = TempFile::new(
        "secret.json",
        &json!({"client_secret": "canary-runtime-secret"}).to_string(),
    );
    let output = harness(&[
        "validate",
        split_connection.path(),
        "--runtime",
        secret_only.path(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("client_secret: the application supplies"),
        "{stdout}"
    );
    assert!(!stdout.contains("canary-runtime-secret"), "{stdout}");
}

#[test]
fn call_reuses_the_stored_token_and_a_rotated_refresh_token_survives_a_restart() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let first = server.issue_refresh_token("demo-basic", Some("read"));
    let config = json!({
        "token_url": server.token_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
        "refresh_token": first,
    });
    let file = TempFile::new("refresh.json", &config.to_string());
    let store = file.dir.join("state/tokens.json");
    let store = store.to_str().expect("UTF-8 path");
    let resource = server.resource_url();
    let call = || {
        harness(&[
            "call",
            "--config",
            file.path(),
            "--store",
            store,
            "--verbose",
            &resource,
        ])
    };

    // The first run spends the configured refresh token: the server rotates it.
    let output = call();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body: Value = serde_json::from_slice(&output.stdout).expect("the resource's JSON");
    assert_eq!(body["client_id"], "demo-basic");
    assert!(text(&output.stderr).contains("fetched with the configured grant"));
    assert_eq!(server.received_requests().len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(store)
            .expect("store")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored = std::fs::read_to_string(store).expect("store");
    assert!(
        !stored.contains(&first),
        "the spent refresh token is not kept"
    );

    // A second process reuses the stored access token.
    let output = call();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("from the token store"));
    assert_eq!(server.received_requests().len(), 1);

    // Revoked on the server, the access token is renewed with the rotated
    // refresh token from the store, not the spent one in the configuration.
    server.revoke_access_tokens();
    let output = call();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(
        stderr.contains("renewed with the refresh token"),
        "{stderr}"
    );
    assert_eq!(server.received_requests().len(), 2);
    for secret in ["demo-basic-secret", first.as_str()] {
        assert!(!stderr.contains(secret) && !text(&output.stdout).contains(secret));
    }
}

#[test]
fn call_exits_non_zero_with_the_status_when_the_api_refuses() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = config_file(&server, TEST_CLIENTS[0].client_secret);
    let url = format!("{}/resource/challenge/forbidden", server.base_url());
    let output = harness(&["call", "--config", config.path(), "--no-store", &url]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("HTTP 403"),
        "{}",
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains("forbidden"));
}

#[test]
fn introspect_and_revoke_the_kept_token() {
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "introspection_url": server.introspection_url(),
        "revocation_url": server.revocation_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
        "scope": "read",
    });
    let file = TempFile::new("config.json", &config.to_string());
    let store = file.dir.join("tokens.json");
    let store = store.to_str().expect("UTF-8 path");
    let kept = |command: &str| harness(&[command, "--config", file.path(), "--store", store]);

    let output = kept("introspect");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no token is kept"));

    let resource = server.resource_url();
    let output = harness(&["call", "--config", file.path(), "--store", store, &resource]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let output = kept("introspect");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], "demo-basic");
    assert_eq!(answer["scope"], "read");

    let output = kept("revoke");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("revoked the access token"));

    // The server no longer knows it; the next call gets a new token first.
    let output = harness(&[
        "call",
        "--config",
        file.path(),
        "--store",
        store,
        "--verbose",
        &resource,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("fetched with the configured grant"));
    assert_eq!(server.resource_hits("/resource"), 2, "no 401 on the way");
}

/// What every token the canary server issues starts with.
const TOKEN_CANARY: &str = "CANARYTOKEN";

#[test]
fn no_command_prints_a_secret() {
    let server = AuthorizationServer::start(ServerOptions {
        token_prefix: TOKEN_CANARY,
        ..ServerOptions::default()
    })
    .expect("server");
    let refresh_token = server.issue_refresh_token("demo-basic", Some("read"));
    assert!(refresh_token.starts_with(TOKEN_CANARY));
    let encrypted_key = include_str!("../../auth-server/fixtures/rsa-encrypted.pem");
    let canaries = [
        "CANARY-client-secret",
        "CANARY-user-password",
        "CANARY-key-password",
        TOKEN_CANARY,
        // The key's body, whatever line of it.
        encrypted_key.lines().nth(1).expect("a PEM body line"),
    ];
    let base = json!({
        "token_url": server.token_url(),
        "introspection_url": server.introspection_url(),
        "revocation_url": server.revocation_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
    });
    let with = |changes: Value| {
        let mut config = base.clone();
        for (name, value) in changes.as_object().expect("object") {
            config[name] = value.clone();
        }
        TempFile::new("config.json", &config.to_string())
    };
    let wrong_secret =
        with(json!({"grant_type": "client_credentials", "client_secret": "CANARY-client-secret"}));
    let wrong_password = with(
        json!({"grant_type": "password", "username": "alice", "password": "CANARY-user-password"}),
    );
    let refresh = with(json!({"refresh_token": refresh_token}));
    let working =
        with(json!({"grant_type": "password", "username": "alice", "password": "wonderland"}));
    let wrong_key_password = with(json!({
        "grant_type": "jwt_bearer", "client_auth": "none", "client_secret": null,
        "jwt": {"header": {"alg": "RS256"}, "issuer": "demo-issuer", "subject": "alice",
                "private_key": encrypted_key, "private_key_password": "CANARY-key-password"},
    }));
    let misspelt = with(
        json!({"client_secret": "CANARY-client-secret", "passwrod": "CANARY-user-password", "grant_type": "client_credentials"}),
    );
    let store = working.dir.join("tokens.json");
    let store = store.to_str().expect("UTF-8");
    let resource = server.resource_url();

    // Each run with whether it must succeed: the canaries go through real
    // flows, successful and failing.
    let runs: Vec<(Vec<&str>, bool)> = vec![
        (vec!["validate", wrong_key_password.path()], false),
        (vec!["validate", misspelt.path()], false),
        (vec!["token", "--config", wrong_secret.path()], false),
        (
            vec!["token", "--config", wrong_password.path(), "--json"],
            false,
        ),
        (vec!["token", "--config", wrong_key_password.path()], false),
        (vec!["token", "--config", refresh.path()], true),
        // The refresh token is spent now: the server's refusal is printed.
        (vec!["token", "--config", refresh.path(), "--json"], false),
        (vec!["token", "--config", working.path()], true),
        (vec!["token", "--config", working.path(), "--json"], true),
        (
            vec![
                "call",
                "--config",
                working.path(),
                "--store",
                store,
                "--verbose",
                &resource,
            ],
            true,
        ),
        (
            vec![
                "call",
                "--config",
                wrong_secret.path(),
                "--no-store",
                "--verbose",
                &resource,
            ],
            false,
        ),
        (
            vec!["introspect", "--config", working.path(), "--store", store],
            true,
        ),
        (
            vec![
                "introspect",
                "--config",
                working.path(),
                "--store",
                store,
                "--refresh",
            ],
            true,
        ),
        (
            vec![
                "revoke",
                "--config",
                working.path(),
                "--store",
                store,
                "--refresh",
            ],
            true,
        ),
        (
            vec!["revoke", "--config", working.path(), "--store", store],
            true,
        ),
        (
            vec!["authorize-url", "--config", wrong_secret.path()],
            false,
        ),
    ];
    // A secret printed encoded is printed too: as a Basic header carries it
    // (base64 of `id:secret`, either alphabet) and as a form body does.
    let encoded_canaries: Vec<String> = canaries
        .iter()
        .flat_map(|canary| {
            use base64::Engine as _;
            use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
            let basic = format!("demo-basic:{canary}");
            [
                (*canary).to_owned(),
                STANDARD.encode(canary),
                URL_SAFE_NO_PAD.encode(canary),
                STANDARD.encode(&basic),
                // The part of the Basic value that is the secret's alone.
                STANDARD.encode(&basic)[16..].to_owned(),
                form_urlencoded::byte_serialize(canary.as_bytes()).collect(),
            ]
        })
        .collect();
    let mut stored_while_kept = None;
    for (args, succeeds) in &runs {
        let output = harness(args);
        if args[0] == "call" && *succeeds {
            stored_while_kept = std::fs::read_to_string(store).ok();
        }
        assert_eq!(
            output.status.success(),
            *succeeds,
            "`oauth-harness {}`: {}",
            args.join(" "),
            text(&output.stderr)
        );
        for stream in [&output.stdout, &output.stderr] {
            let shown = text(stream);
            for canary in &encoded_canaries {
                assert!(
                    !shown.contains(canary.as_str()),
                    "`oauth-harness {}` printed a secret (`{canary}`):\n{shown}",
                    args[0]
                );
            }
        }
    }
    // The canaries are real: the store kept the tokens until both were
    // revoked, and then forgot them.
    let stored = stored_while_kept.expect("the store");
    assert!(
        stored.contains(TOKEN_CANARY),
        "the store does keep the tokens"
    );
    let forgotten = std::fs::read_to_string(store).expect("the store");
    assert!(!forgotten.contains(TOKEN_CANARY), "{forgotten}");
}

#[test]
fn stored_tokens_are_encrypted_with_the_operators_key_and_a_wrong_key_changes_nothing() {
    let server = AuthorizationServer::start(ServerOptions {
        token_prefix: "PLAINTOKEN",
        ..ServerOptions::default()
    })
    .expect("server");
    let config = config_file(&server, "demo-basic-secret");
    let store = config.dir.join("tokens.json");
    let key_file = config.dir.join("store.key");
    std::fs::write(&key_file, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").expect("key");
    let call = |key: Option<&str>, key_file: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oauth-harness"));
        command
            .args(["call", "--config", config.path(), "--store"])
            .arg(&store)
            .arg(server.resource_url())
            .env_remove("OAUTH_HARNESS_STORE_KEY");
        if let Some(key) = key {
            command.env("OAUTH_HARNESS_STORE_KEY", key);
        }
        if let Some(key_file) = key_file {
            command.arg("--store-key-file").arg(key_file);
        }
        command.output().expect("oauth-harness runs")
    };
    // A key file others can read is no secret: refused, naming the fix.
    let open_to_all = call(None, Some(&key_file));
    assert!(!open_to_all.status.success());
    assert!(
        text(&open_to_all.stderr).contains("chmod 600"),
        "{}",
        text(&open_to_all.stderr)
    );
    assert!(!store.exists(), "nothing stored with a readable key");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let first = call(None, Some(&key_file));
    assert!(first.status.success(), "{}", text(&first.stderr));
    let at_rest = std::fs::read_to_string(&store).expect("the store");
    assert!(!at_rest.contains("PLAINTOKEN"), "{at_rest}");
    // The same key from the environment opens them: no new token request.
    let again = call(Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="), None);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(server.received_requests().len(), 1);

    let wrong = call(Some(&"02".repeat(32)), None);
    assert!(!wrong.status.success());
    let message = text(&wrong.stderr);
    assert!(
        message.contains("encrypted with another key") && message.contains("tokens.json"),
        "{message}"
    );
    assert!(
        !message.contains(&"02".repeat(32)),
        "the key is never shown"
    );
    let keyless = call(None, None);
    assert!(
        text(&keyless.stderr).contains("OAUTH_HARNESS_STORE_KEY"),
        "{}",
        text(&keyless.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&store).expect("the store"),
        at_rest,
        "nothing overwritten"
    );
    assert_eq!(
        server.received_requests().len(),
        1,
        "no token request on a wrong key"
    );
}

#[test]
fn exchange_reads_the_redirect_and_the_verifier_from_standard_input() {
    use std::io::Write as _;
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    let config = login_config(&server, "http://127.0.0.1:45679/callback");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let printed = text(
        &harness(&[
            "authorize-url",
            "--config",
            config.path(),
            "--state",
            "fixed-state",
            "--code-verifier",
            verifier,
        ])
        .stdout,
    );
    let http = host_harness::HttpClient::new(&host_harness::HttpSettings::default());
    let redirect = host_harness::browser::follow_authorization(&http, &field(&printed, "url"))
        .expect("a redirect");
    let store = config.dir.join("tokens.json");
    // Neither the code nor the verifier is on the command line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args([
            "exchange",
            "--config",
            config.path(),
            "--state",
            "fixed-state",
        ])
        .args([
            "--redirect-url-file",
            "-",
            "--code-verifier-file",
            "-",
            "--store",
        ])
        .arg(&store)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("exchange starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("{redirect}\n{verifier}\n").as_bytes())
        .expect("written");
    let output = child.wait_with_output().expect("exchange ends");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        server.received_requests().len(),
        1,
        "the code was exchanged"
    );
}

#[test]
fn loopback_never_goes_through_a_proxy_and_other_hosts_do() {
    use std::io::{BufRead as _, BufReader};
    use std::net::TcpListener;
    let server = AuthorizationServer::start(ServerOptions::default()).expect("server");
    // A "proxy" that records the first line of each connection.
    let proxy = TcpListener::bind("127.0.0.1:0").expect("a port");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("bound"));
    proxy.set_nonblocking(true).expect("nonblocking");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recorder = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match proxy.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                        let mut line = String::new();
                        let _ = BufReader::new(stream).read_line(&mut line);
                        seen.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        })
    };
    let with_proxy = |config: &TempFile| {
        Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
            .args([
                "token",
                "--connect-timeout",
                "2",
                "--read-timeout",
                "2",
                "--config",
                config.path(),
            ])
            .env("HTTP_PROXY", &proxy_url)
            .env("HTTPS_PROXY", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .expect("oauth-harness runs")
    };
    // The loopback server, with a Basic secret over plain http: direct.
    let local = config_file(&server, "demo-basic-secret");
    let output = with_proxy(&local);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // Another host: through the proxy, as the environment says.
    let remote = TempFile::new(
        "remote.json",
        &json!({"grant_type": "client_credentials", "token_url": "https://as.example.com/token",
                "client_id": "app", "client_secret": "s"})
        .to_string(),
    );
    let output = with_proxy(&remote);
    assert!(!output.status.success());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = recorder.join();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("CONNECT as.example.com:443"),
        "{seen:?}"
    );
}

#[test]
fn serve_refuses_to_write_its_ca_through_a_symbolic_link() {
    let directory = TempFile::new("target.txt", "precious");
    let link = directory.dir.join("ca.pem");
    std::os::unix::fs::symlink(directory.path(), &link).expect("linked");
    // A server that wrongly accepted the link would serve forever: give it a
    // deadline so a regression fails instead of hanging the suite.
    let mut server = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args(["serve", "--tls", "--ca-out"])
        .arg(&link)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oauth-harness runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() > deadline {
            server.kill().expect("killed");
            panic!("serve kept running with --ca-out pointing at a symbolic link");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("readable");
    assert!(!status.success());
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("still there")
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert_eq!(
        std::fs::read_to_string(directory.path()).expect("kept"),
        "precious"
    );
}

/// A loopback token endpoint that answers every request with what `answer`
/// makes of its form parameters: a status, a content type and a body. The
/// number of requests it answered is counted.
fn scripted_token_endpoint(
    answer: impl Fn(&[(String, String)]) -> (u16, &'static str, String) + Send + 'static,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/token", listener.local_addr().expect("bound"));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            let (status, content_type, page) = answer(&form);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                reader.into_inner(),
                "HTTP/1.1 {status} Answer\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    (url, answered)
}

#[test]
fn a_token_endpoint_echoing_the_request_gets_no_secret_onto_the_terminal() {
    // An error page that quotes what it was sent, in prose.
    let (token_url, answered) = scripted_token_endpoint(|form| {
        let sent = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let page = format!(
            "<html><p>invalid credentials for {} ({})</p><p>client secret '{}' is wrong</p><pre>client_secret = {}</pre><pre>{}</pre></html>",
            sent("username"),
            sent("password"),
            sent("client_secret"),
            sent("client_secret"),
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        (500, "text/html; charset=utf-8", page)
    });
    let config = TempFile::new(
        "echoed.json",
        &json!({
            "grant_type": "password",
            "token_url": token_url,
            "client_id": "app",
            "client_secret": "hunter2x",
            "client_auth": "body",
            "username": "alice",
            "password": "Tr0ub4dor",
        })
        .to_string(),
    );
    let output = harness(&["token", "--config", config.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(stderr.contains("HTTP 500"), "{stderr}");
    assert!(
        stderr.contains("invalid credentials for alice ([redacted])"),
        "the page is shown, the password is not: {stderr}"
    );
    assert!(
        stderr.contains("client secret '[redacted]' is wrong"),
        "{stderr}"
    );
    assert!(stderr.contains("client_secret = [redacted]"), "{stderr}");
    for secret in ["hunter2x", "Tr0ub4dor"] {
        assert!(!stderr.contains(secret), "{secret} in {stderr}");
        assert!(!stdout.contains(secret), "{secret} in {stdout}");
    }
}

/// The form parameters of each request a test endpoint received.
type ReceivedForms = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

/// A token endpoint whose every answer rotates the refresh token but brings
/// an access token that is no string; the form parameters of each request
/// are recorded.
fn endpoint_with_unusable_access_tokens() -> (String, ReceivedForms) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = received.clone();
    let (token_url, _) = scripted_token_endpoint(move |form| {
        recorder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(form.to_vec());
        (
            200,
            "application/json",
            r#"{"access_token":5,"refresh_token":"RT-NEW-1","token_type":"Bearer"}"#.into(),
        )
    });
    (token_url, received)
}

#[test]
fn token_reports_an_answer_without_a_usable_access_token_and_saves_its_refresh_token() {
    let (token_url, received) = endpoint_with_unusable_access_tokens();
    let file = TempFile::new(
        "unusable.json",
        &json!({
            "token_url": token_url,
            "client_id": "app",
            "client_secret": "s3cret-value",
            "refresh_token": "RT-OLD",
        })
        .to_string(),
    );
    let output = harness(&[
        "token",
        "--config",
        file.path(),
        "--save",
        file.path(),
        "--json",
        "--show-secrets",
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("`access_token` is not a string"),
        "the server's fault is named: {stderr}"
    );
    assert!(stdout.is_empty(), "no token is reported obtained: {stdout}");
    // The refresh token the server sent is saved: the one presented may be
    // spent.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(file.path()).expect("saved")).expect("JSON");
    assert_eq!(saved["refresh_token"], "RT-NEW-1", "{stderr}");
    assert!(!stderr.contains("RT-NEW-1"), "{stderr}");
    // As a call does: the first answer's refresh token renews once, then
    // the fault is reported.
    let presented: Vec<String> = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter_map(|form| {
            form.iter()
                .find(|(name, _)| name == "refresh_token")
                .map(|(_, value)| value.clone())
        })
        .collect();
    assert_eq!(presented, ["RT-OLD", "RT-NEW-1"]);
}

#[test]
fn a_login_whose_answer_has_no_usable_access_token_fails_and_keeps_its_refresh_token() {
    let (token_url, received) = endpoint_with_unusable_access_tokens();
    let config = TempFile::new(
        "login.json",
        &json!({
            "grant_type": "authorization_code",
            "token_url": token_url,
            "authorization_url": "https://as.example.com/authorize",
            "redirect_uri": "http://127.0.0.1:45679/callback",
            "client_id": "app",
            "client_auth": "none",
        })
        .to_string(),
    );
    let store = config.dir.join("tokens.json");
    let store = store.to_str().expect("UTF-8");
    let output = harness(&[
        "exchange",
        "--config",
        config.path(),
        "--store",
        store,
        "--redirect-url",
        "http://127.0.0.1:45679/callback?code=c-1&state=fixed-state",
        "--state",
        "fixed-state",
        "--code-verifier",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "--json",
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("`access_token` is not a string"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len(),
        2,
        "the code exchange, and one renewal with the refresh token it sent"
    );
    // The store keeps it: a call within the pause reports the fault at once,
    // without asking the server again.
    let call = harness(&[
        "call",
        "--config",
        config.path(),
        "--store",
        store,
        "https://127.0.0.1:9/api",
    ]);
    assert_eq!(call.status.code(), Some(1));
    assert!(
        text(&call.stderr).contains("the refresh token they sent is kept"),
        "{}",
        text(&call.stderr)
    );
    assert_eq!(
        received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len(),
        2
    );
}
