//! The demo: every grant and client authentication method, through the
//! component, against the embedded server over HTTP and HTTPS.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{Value, json};

use auth_server::registry::{ASSERTION_ISSUER, REDIRECT_URI, USERS, client, keys};
use auth_server::{AuthorizationServer, ServerOptions};
use host_harness::browser;
use host_harness::component::{ConnectorHost, Failure, ObtainedToken};
use host_harness::harness::{Harness, TokenError, unix_now};
use host_harness::http_client::{HttpClient, HttpSettings, ca_certificates};

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct DemoRow {
    /// `http` or `https`.
    pub transport: &'static str,
    /// The grant type.
    pub grant: &'static str,
    /// The client authentication method.
    pub client_auth: String,
    /// The client id used, and what is special about the scenario.
    pub client: String,
    /// What was expected.
    pub expected: &'static str,
    /// What happened.
    pub outcome: String,
    /// Whether the outcome is the expected one.
    pub as_expected: bool,
}

/// How a scenario obtains its token.
#[derive(Clone, Copy)]
enum Flow {
    /// `token-request`, send, `read-token-response`.
    Token,
    /// Authorization URL, the browser's redirect, then the code exchange
    /// or (implicit grant) the token in the redirect's fragment.
    Browser,
}

struct Scenario {
    grant: &'static str,
    client_id: &'static str,
    note: &'static str,
    flow: Flow,
    wrong_secret: bool,
    /// Configuration members beyond grant, URLs and client credentials.
    extra: fn() -> Value,
}

fn nothing() -> Value {
    json!({})
}

fn signed_with(alg: &str, key: &str) -> Value {
    json!({"header": {"alg": alg, "typ": "JWT"}, "private_key": key})
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        grant: "client_credentials",
        client_id: "demo-basic",
        note: "",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || json!({"scope": "read write"}),
    },
    Scenario {
        grant: "client_credentials",
        client_id: "demo-post",
        note: "",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || json!({"scope": "read"}),
    },
    Scenario {
        grant: "client_credentials",
        client_id: "tricky:client %+/é",
        note: "",
        flow: Flow::Token,
        wrong_secret: false,
        extra: nothing,
    },
    Scenario {
        grant: "client_credentials",
        client_id: "demo-jwt",
        note: "RS256",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || json!({"client_assertion": signed_with("RS256", keys::CLIENT_RSA_PRIVATE)}),
    },
    Scenario {
        grant: "refresh_token",
        client_id: "demo-basic",
        note: "",
        flow: Flow::Token,
        wrong_secret: false,
        extra: nothing,
    },
    Scenario {
        grant: "refresh_token",
        client_id: "demo-post",
        note: "",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || json!({"scope": "read"}),
    },
    Scenario {
        grant: "password",
        client_id: "demo-basic",
        note: "",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || json!({"username": USERS[0].username, "password": USERS[0].password}),
    },
    Scenario {
        grant: "password",
        client_id: "demo-jwt",
        note: "PS256",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || {
            json!({"username": USERS[1].username, "password": USERS[1].password,
                   "client_assertion": signed_with("PS256", keys::CLIENT_RSA_PRIVATE)})
        },
    },
    Scenario {
        grant: "jwt_bearer",
        client_id: "demo-basic",
        note: "PS256",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || {
            json!({"jwt": {"header": {"alg": "PS256"}, "issuer": ASSERTION_ISSUER, "subject": USERS[0].username,
                           "private_key": keys::RSA_PRIVATE}})
        },
    },
    Scenario {
        grant: "jwt_bearer",
        client_id: "demo-public",
        note: "EdDSA",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || {
            json!({"jwt": {"header": {"alg": "EdDSA"}, "issuer": ASSERTION_ISSUER, "subject": USERS[1].username,
                           "private_key": keys::ED25519_PRIVATE}})
        },
    },
    Scenario {
        grant: "jwt_bearer",
        client_id: "demo-jwt",
        note: "encrypted key",
        flow: Flow::Token,
        wrong_secret: false,
        extra: || {
            json!({"jwt": {"header": {"alg": "RS512"}, "issuer": ASSERTION_ISSUER, "subject": USERS[0].username,
                           "private_key": keys::RSA_ENCRYPTED, "private_key_password": keys::RSA_ENCRYPTED_PASSWORD},
                   "client_assertion": signed_with("RS256", keys::CLIENT_RSA_PRIVATE)})
        },
    },
    Scenario {
        grant: "authorization_code",
        client_id: "demo-public",
        note: "PKCE S256",
        flow: Flow::Browser,
        wrong_secret: false,
        extra: || json!({"scope": "read", "request_refresh_token": true}),
    },
    Scenario {
        grant: "authorization_code",
        client_id: "demo-basic",
        note: "PKCE S256",
        flow: Flow::Browser,
        wrong_secret: false,
        extra: || json!({"scope": "read write", "login_hint": USERS[1].username, "prompt": "consent"}),
    },
    Scenario {
        grant: "implicit",
        client_id: "demo-public",
        note: "",
        flow: Flow::Browser,
        wrong_secret: false,
        extra: || json!({"scope": "read"}),
    },
    Scenario {
        grant: "client_credentials",
        client_id: "demo-basic",
        note: "wrong secret",
        flow: Flow::Token,
        wrong_secret: true,
        extra: nothing,
    },
    Scenario {
        grant: "client_credentials",
        client_id: "demo-post",
        note: "wrong secret",
        flow: Flow::Token,
        wrong_secret: true,
        extra: nothing,
    },
];

/// Runs every scenario over HTTP and HTTPS and returns the rows.
pub fn run(connector: ConnectorHost) -> Result<Vec<DemoRow>> {
    let mut rows = Vec::new();
    let plain = AuthorizationServer::start(ServerOptions::default())?;
    let settings = HttpSettings::default();
    let harness = Harness::new(connector.clone(), &settings);
    run_against(
        &plain,
        &harness,
        &HttpClient::new(&settings),
        "http",
        &mut rows,
    );

    let tls = AuthorizationServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })?;
    let settings = HttpSettings {
        trusted_cas: Some(ca_certificates(
            tls.ca_pem().unwrap_or_default().as_bytes(),
        )?),
        ..HttpSettings::default()
    };
    let harness = Harness::new(connector, &settings);
    run_against(
        &tls,
        &harness,
        &HttpClient::new(&settings),
        "https",
        &mut rows,
    );
    Ok(rows)
}

/// The configuration of one scenario against one server.
fn configuration(server: &AuthorizationServer, scenario: &Scenario) -> Value {
    let registered = client(scenario.client_id);
    let client_auth = registered.map_or("basic", |c| c.auth.client_auth());
    let mut config = json!({
        "grant_type": scenario.grant,
        "token_url": server.token_url(),
        "client_id": scenario.client_id,
        "client_auth": client_auth,
    });
    if let Some(registered) = registered.filter(|c| !c.client_secret.is_empty()) {
        let secret = if scenario.wrong_secret {
            "not-the-secret"
        } else {
            registered.client_secret
        };
        config["client_secret"] = json!(secret);
    }
    if matches!(scenario.flow, Flow::Browser) {
        config["authorization_url"] = json!(server.authorization_url());
        // Any loopback port matches the registration (RFC 8252 section 7.3).
        config["redirect_uri"] = json!(REDIRECT_URI.replace("127.0.0.1", "127.0.0.1:53682"));
    }
    if scenario.grant == "implicit" {
        config.as_object_mut().map(|c| c.remove("token_url"));
    }
    if let (Value::Object(config), Value::Object(extra)) = (&mut config, (scenario.extra)()) {
        config.extend(extra);
    }
    config
}

fn obtain(
    server: &AuthorizationServer,
    harness: &Harness,
    http: &HttpClient,
    scenario: &Scenario,
    config: &mut Value,
) -> Result<ObtainedToken, TokenError> {
    match scenario.flow {
        Flow::Token => {
            if scenario.grant == "refresh_token" {
                config["refresh_token"] =
                    json!(server.issue_refresh_token(scenario.client_id, Some("read write")));
            }
            harness.obtain_token(&config.to_string())
        }
        Flow::Browser => {
            let config = config.to_string();
            let login = harness.authorization(&config, None, None)?;
            let redirect = browser::follow_authorization(http, &login.url)?;
            harness.finish_login(&config, &redirect, &login)
        }
    }
}

fn run_against(
    server: &AuthorizationServer,
    harness: &Harness,
    http: &HttpClient,
    transport: &'static str,
    rows: &mut Vec<DemoRow>,
) {
    for scenario in SCENARIOS {
        let mut config = configuration(server, scenario);
        let result = obtain(server, harness, http, scenario, &mut config);
        let presented = config["refresh_token"].as_str().map(str::to_owned);
        let (expected, outcome, as_expected) = match (&result, scenario.wrong_secret) {
            (Ok(token), false) => {
                let mut outcome = format!(
                    "{} token, scope {}, expires in {} s",
                    token.token_type,
                    token.scope.as_deref().unwrap_or("(default)"),
                    token
                        .expires_at
                        .map_or(0, |at| at.saturating_sub(unix_now())),
                );
                let accepted = server.is_active(token.access_token.expose());
                outcome.push_str(if accepted {
                    ", accepted by the server"
                } else {
                    ", NOT accepted"
                });
                let mut rotation_ok = true;
                if presented.is_some() {
                    rotation_ok = token.refresh_token_rotated
                        && token.refresh_token.as_ref().map(|t| t.expose()) != presented.as_deref();
                    outcome.push_str(if rotation_ok {
                        ", refresh token rotated"
                    } else {
                        ", refresh token NOT rotated"
                    });
                } else if token.refresh_token.is_some() {
                    outcome.push_str(", refresh token issued");
                }
                ("a token", outcome, accepted && rotation_ok)
            }
            (Err(TokenError::Connector(Failure::Rejected(e))), true) => (
                "invalid_client",
                format!(
                    "refused: {} (HTTP {})",
                    e.error,
                    e.status.unwrap_or_default()
                ),
                e.error == "invalid_client" && e.status == Some(401),
            ),
            (Err(error), wrong_secret) => (
                if wrong_secret {
                    "invalid_client"
                } else {
                    "a token"
                },
                format!("failed: {error}"),
                false,
            ),
            (Ok(_), true) => (
                "invalid_client",
                "a token despite the wrong secret".into(),
                false,
            ),
        };
        rows.push(DemoRow {
            transport,
            grant: scenario.grant,
            client_auth: config["client_auth"].as_str().unwrap_or("basic").to_owned(),
            client: if scenario.note.is_empty() {
                scenario.client_id.to_owned()
            } else {
                format!("{} ({})", scenario.client_id, scenario.note)
            },
            expected,
            outcome,
            as_expected,
        });
    }
}

/// The rows as a text table.
pub fn table(rows: &[DemoRow]) -> String {
    let headings = [
        "transport",
        "grant",
        "client auth",
        "client",
        "expected",
        "outcome",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.transport.to_owned(),
                r.grant.to_owned(),
                r.client_auth.clone(),
                r.client.clone(),
                r.expected.to_owned(),
                format!(
                    "{} {}",
                    if r.as_expected { "ok  " } else { "FAIL" },
                    r.outcome
                ),
            ]
        })
        .collect();
    let mut widths = headings.map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |values: &[String]| {
        let padded: Vec<String> = values
            .iter()
            .zip(widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&headings.map(String::from));
    line(&widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(row);
    }
    out
}
