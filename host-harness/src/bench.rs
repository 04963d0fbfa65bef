//! `oauth-harness bench`: what the connector costs, natively and through
//! the component, beside the network round trip it prepares. Numbers are
//! printed, never asserted: they depend on the machine.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use serde::Serialize;
use serde_json::json;

use crate::component::{Context, Limits, Request, Response};
use crate::server::registry::keys;
use crate::server::{AuthorizationServer, ServerOptions};
use crate::tokens::{MemoryStore, RenewalPolicy, TokenManager};
use crate::{ConnectorHost, Harness, HttpClient, HttpSettings};

/// One measured scenario.
#[derive(Debug, Serialize)]
pub struct Scenario {
    /// What was measured.
    pub name: String,
    /// Nanoseconds per operation with the connector as a native library.
    pub native_ns_per_op: Option<f64>,
    /// Nanoseconds per operation through the wasm component.
    pub wasm_ns_per_op: Option<f64>,
    /// `wasm_ns_per_op / native_ns_per_op`, or the scenario's own ratio.
    pub ratio: Option<f64>,
    /// What the ratio compares, or other figures.
    pub note: String,
}

/// How long each measurement runs.
const MEASURE_FOR: Duration = Duration::from_millis(700);

/// Runs `op` repeatedly for about [`MEASURE_FOR`] after a warm-up and
/// returns nanoseconds per call.
fn ns_per_op(mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..3 {
        op()?;
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < MEASURE_FOR || calls < 5 {
        op()?;
        calls += 1;
    }
    Ok(start.elapsed().as_nanos() as f64 / calls as f64)
}

fn pair(name: &str, native: f64, wasm: f64, note: &str) -> Scenario {
    Scenario {
        name: name.to_owned(),
        native_ns_per_op: Some(native),
        wasm_ns_per_op: Some(wasm),
        ratio: Some(wasm / native),
        note: note.to_owned(),
    }
}

/// A canned successful token response.
fn token_response() -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.payload.signature","token_type":"Bearer","expires_in":3600,"scope":"read write"}"#.to_vec(),
    }
}

fn context() -> Context {
    Context {
        now: 1_700_000_000,
        nonce: vec![7; 32],
    }
}

/// Every scenario, measured in this run.
pub fn run(connector: ConnectorHost) -> Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let token_url = "https://as.example.com/oauth2/token";
    let configs = [
        (
            "build + read: client_credentials, basic",
            json!({"grant_type": "client_credentials", "token_url": token_url, "client_id": "app", "client_secret": "s3cret", "scope": "read write"}),
        ),
        (
            "build + read: refresh_token, body",
            json!({"token_url": token_url, "client_id": "app", "client_secret": "s3cret", "client_auth": "body", "refresh_token": "rt-1"}),
        ),
        (
            "build + read: jwt_bearer, RS256 (2048-bit)",
            json!({"grant_type": "jwt_bearer", "token_url": token_url, "client_auth": "none",
                   "jwt": {"header": {"alg": "RS256"}, "issuer": "svc", "subject": "svc", "private_key": keys::RSA_PRIVATE}}),
        ),
        (
            "build + read: jwt_bearer, ES256",
            json!({"grant_type": "jwt_bearer", "token_url": token_url, "client_auth": "none",
                   "jwt": {"header": {"alg": "ES256"}, "issuer": "svc", "subject": "svc", "private_key": keys::EC_PRIVATE}}),
        ),
    ];
    let response = token_response();
    let native_response = connector::Response {
        status: response.status,
        headers: response.headers.clone(),
        body: response.body.clone(),
    };
    for (name, config) in &configs {
        let document = config.to_string();
        // The same work on both sides: the configuration is parsed for each
        // of the two calls, as it is when it crosses into the component.
        let native = ns_per_op(|| {
            let cx = connector::Context {
                now: 1_700_000_000,
                nonce: vec![7; 32],
            };
            let config = connector::Config::parse(&document)
                .map_err(|e| anyhow!("invalid benchmark configuration: {e:?}"))?;
            std::hint::black_box(
                connector::token_request(&config, &cx).map_err(|e| anyhow!("{e}"))?,
            );
            let config = connector::Config::parse(&document)
                .map_err(|e| anyhow!("invalid benchmark configuration: {e:?}"))?;
            std::hint::black_box(
                connector::read_token_response(&config, &native_response, 1_700_000_001, None)
                    .map_err(|e| anyhow!("{e}"))?,
            );
            Ok(())
        })?;
        let wasm = ns_per_op(|| {
            let request = connector
                .token_request(&document, &context())?
                .map_err(|f| anyhow!("{}", crate::harness::describe(&f)))?;
            std::hint::black_box(request);
            let token = connector
                .read_token_response(&document, &response, 1_700_000_001, None)?
                .map_err(|f| anyhow!("{}", crate::harness::describe(&f)))?;
            std::hint::black_box(token);
            Ok(())
        })?;
        scenarios.push(pair(name, native, wasm, "wasm / native"));
    }

    let fresh = ns_per_op(|| connector.instantiate_once())?;
    // The floor of any call: a fresh instance, a call that does almost
    // nothing, and the copying of arguments and results.
    let empty = Response {
        status: 401,
        headers: Vec::new(),
        body: Vec::new(),
    };
    let trivial = ns_per_op(|| connector.challenges(&empty).map(drop))?;
    scenarios.push(Scenario {
        name: "a trivial component call (challenges of nothing)".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(trivial),
        ratio: Some(fresh / trivial),
        note: "instantiation / whole call".into(),
    });
    let pooled_host = ConnectorHost::from_bytes(
        crate::component::EMBEDDED_COMPONENT,
        "the embedded connector component",
        Limits {
            pooled_instances: Some(16),
            ..Limits::default()
        },
    )?;
    let pooled = ns_per_op(|| pooled_host.instantiate_once())?;
    scenarios.push(Scenario {
        name: "instantiate from InstancePre".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(fresh),
        ratio: None,
        note: "on-demand allocator".into(),
    });
    scenarios.push(Scenario {
        name: "instantiate from InstancePre, pooling allocator".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(pooled),
        ratio: Some(pooled / fresh),
        note: "pooled / on-demand".into(),
    });

    // A real server on loopback for the last two scenarios.
    let server = AuthorizationServer::start(ServerOptions::default())?;
    let config = json!({"grant_type": "client_credentials", "token_url": server.token_url(),
                        "client_id": "demo-basic", "client_secret": "demo-basic-secret", "scope": "read"})
    .to_string();
    let settings = HttpSettings::default();
    let manager = TokenManager::new(
        Harness::new(connector.clone(), &settings),
        Box::new(MemoryStore::default()),
        RenewalPolicy::default(),
    );
    manager.token(&config).map_err(|e| anyhow!("{e}"))?;
    let api = Request {
        method: "GET".into(),
        url: server.resource_url(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let cache_hit = ns_per_op(|| {
        let (token, _) = manager.token(&config).map_err(|e| anyhow!("{e}"))?;
        let authorized = connector
            .authorize(
                &config,
                &api,
                &token.token_type,
                token.access_token.expose(),
            )?
            .map_err(|f| anyhow!("{}", crate::harness::describe(&f)))?;
        std::hint::black_box(authorized);
        Ok(())
    })?;
    scenarios.push(Scenario {
        name: "cache hit: token lookup + Authorization header".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(cache_hit),
        ratio: None,
        note: "two component calls (cache key, authorize), no network".into(),
    });

    let harness = Harness::new(connector.clone(), &settings);
    let through_harness = ns_per_op(|| {
        harness
            .obtain_token(&config)
            .map(drop)
            .map_err(|e| anyhow!("{e}"))
    })?;
    let request = connector
        .token_request(&config, &context())?
        .map_err(|f| anyhow!("{}", crate::harness::describe(&f)))?;
    let http = HttpClient::new(&settings);
    let plain_post = ns_per_op(|| {
        let response = http.send(&request)?;
        (response.status == 200)
            .then_some(())
            .context("the plain POST was refused")
    })?;
    scenarios.push(Scenario {
        name: "token fetch from the embedded server on loopback".into(),
        native_ns_per_op: Some(plain_post),
        wasm_ns_per_op: Some(through_harness),
        ratio: Some(through_harness / plain_post),
        note: "harness with component / plain POST of the same bytes".into(),
    });
    scenarios.push(Scenario {
        name: "instantiation share of a loopback token fetch".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: None,
        ratio: Some(fresh / through_harness),
        note: "one instantiation / one token fetch".into(),
    });

    let before = peak_rss_kib();
    for _ in 0..1000 {
        connector.instantiate_once()?;
    }
    let after = peak_rss_kib();
    let mut pooled_peak = None;
    if let (Some(_), Some(_)) = (before, after) {
        for _ in 0..1000 {
            pooled_host.instantiate_once()?;
        }
        pooled_peak = peak_rss_kib();
    }
    scenarios.push(Scenario {
        name: "memory and size".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: None,
        ratio: None,
        note: format!(
            "component {} KiB (release, stripped); host peak RSS {} after 1,000 instantiations, {} after 1,000 more pooled",
            crate::component::EMBEDDED_COMPONENT.len() >> 10,
            after.map_or("unknown".into(), |kib| format!("{} MiB", kib >> 10)),
            pooled_peak.map_or("unknown".into(), |kib| format!("{} MiB", kib >> 10)),
        ),
    });
    Ok(scenarios)
}

/// The process's peak resident memory, from Linux's `/proc`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The scenarios as a table.
pub fn table(scenarios: &[Scenario]) -> String {
    let cell = |ns: Option<f64>| match ns {
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.1} µs", ns / 1e3),
        None => "-".into(),
    };
    let mut out = format!(
        "{:<50} {:>12} {:>12} {:>7}  {}\n",
        "scenario", "native", "wasm", "ratio", "note"
    );
    for s in scenarios {
        out.push_str(&format!(
            "{:<50} {:>12} {:>12} {:>7}  {}\n",
            s.name,
            cell(s.native_ns_per_op),
            cell(s.wasm_ns_per_op),
            s.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            s.note
        ));
    }
    out
}
