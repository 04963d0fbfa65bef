//! The `oauth-harness` command line, run as a user would run it.

use std::path::PathBuf;
use std::process::{Command, Output};

use host_harness::server::TEST_CLIENTS;
use host_harness::{AuthorizationServer, ServerOptions};
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
