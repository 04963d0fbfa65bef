//! The demo: every implemented grant and client authentication method,
//! through the component, against the embedded server over HTTP and HTTPS.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use crate::component::{ConnectorHost, Failure};
use crate::harness::{Harness, TokenError, unix_now};
use crate::http_client::{HttpSettings, ca_certificates};
use crate::server::{AuthorizationServer, ServerOptions, TEST_CLIENTS};

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct DemoRow {
    /// `http` or `https`.
    pub transport: &'static str,
    /// The grant type.
    pub grant: &'static str,
    /// The client authentication method.
    pub client_auth: &'static str,
    /// The client id used.
    pub client_id: String,
    /// What was expected.
    pub expected: &'static str,
    /// What happened.
    pub outcome: String,
    /// Whether the outcome is the expected one.
    pub as_expected: bool,
}

struct Scenario {
    grant: &'static str,
    client_auth: &'static str,
    client_index: usize,
    wrong_secret: bool,
    scope: Option<&'static str>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        grant: "client_credentials",
        client_auth: "basic",
        client_index: 0,
        wrong_secret: false,
        scope: Some("read write"),
    },
    Scenario {
        grant: "client_credentials",
        client_auth: "body",
        client_index: 1,
        wrong_secret: false,
        scope: Some("read"),
    },
    Scenario {
        grant: "client_credentials",
        client_auth: "basic",
        client_index: 2,
        wrong_secret: false,
        scope: None,
    },
    Scenario {
        grant: "refresh_token",
        client_auth: "basic",
        client_index: 0,
        wrong_secret: false,
        scope: None,
    },
    Scenario {
        grant: "refresh_token",
        client_auth: "body",
        client_index: 1,
        wrong_secret: false,
        scope: Some("read"),
    },
    Scenario {
        grant: "client_credentials",
        client_auth: "basic",
        client_index: 0,
        wrong_secret: true,
        scope: None,
    },
    Scenario {
        grant: "client_credentials",
        client_auth: "body",
        client_index: 1,
        wrong_secret: true,
        scope: None,
    },
];

/// Runs every scenario over HTTP and HTTPS and returns the rows.
pub fn run(connector: ConnectorHost) -> Result<Vec<DemoRow>> {
    let mut rows = Vec::new();
    let plain = AuthorizationServer::start(ServerOptions::default())?;
    let harness = Harness::new(connector, &HttpSettings::default());
    run_against(&plain, &harness, "http", &mut rows);

    let tls = AuthorizationServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })?;
    let ca = ca_certificates(tls.ca_pem().unwrap_or_default().as_bytes())?;
    let settings = HttpSettings {
        trusted_cas: Some(ca),
        ..HttpSettings::default()
    };
    let harness = Harness::new(harness.into_connector(), &settings);
    run_against(&tls, &harness, "https", &mut rows);
    Ok(rows)
}

fn run_against(
    server: &AuthorizationServer,
    harness: &Harness,
    transport: &'static str,
    rows: &mut Vec<DemoRow>,
) {
    for scenario in SCENARIOS {
        let client = &TEST_CLIENTS[scenario.client_index];
        let secret = if scenario.wrong_secret {
            "not-the-secret"
        } else {
            client.client_secret
        };
        let mut config = json!({
            "grant_type": scenario.grant,
            "token_url": server.token_url(),
            "client_id": client.client_id,
            "client_secret": secret,
            "client_auth": scenario.client_auth,
        });
        if let Some(scope) = scenario.scope {
            config["scope"] = json!(scope);
        }
        let mut issued_refresh_token = None;
        if scenario.grant == "refresh_token" {
            let token = server.issue_refresh_token(client.client_id, Some("read write"));
            config["refresh_token"] = json!(token);
            issued_refresh_token = Some(token);
        }

        let result = harness.obtain_token(&config.to_string());
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
                let rotated = match (&issued_refresh_token, &token.refresh_token) {
                    (Some(old), Some(new)) => {
                        outcome.push_str(", refresh token rotated");
                        old != new.expose()
                    }
                    (Some(_), None) => false,
                    _ => true,
                };
                ("a token", outcome, accepted && rotated)
            }
            (Err(TokenError::Connector(Failure::Rejected(e))), true) => (
                "invalid_client",
                format!("refused: {} (HTTP {})", e.error, e.status.unwrap_or_default()),
                e.error == "invalid_client" && e.status == Some(401),
            ),
            (Err(error), _) => (
                if scenario.wrong_secret {
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
            client_auth: scenario.client_auth,
            client_id: if scenario.wrong_secret {
                format!("{} (wrong secret)", client.client_id)
            } else {
                client.client_id.to_owned()
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
                r.client_auth.to_owned(),
                r.client_id.clone(),
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
