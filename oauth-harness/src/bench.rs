//! `oauth-harness bench`: what the connector costs, natively and through
//! the component, beside the network round trip it prepares. Numbers are
//! printed, never asserted: they depend on the machine.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use serde::Serialize;
use serde_json::json;

use auth_server::registry::keys;
use auth_server::{AuthorizationServer, ServerOptions};
use host_harness::component::{Context, Limits, Request, Response};
use host_harness::driver::TokenManager;
use host_harness::stores::{FileStore, MemoryStore, RedisStore, TokenStore};
use host_harness::{ConnectorHost, Harness, HttpClient, HttpSettings};

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

/// The configurations measured: a name and the document.
fn configurations(token_url: &str) -> [(&'static str, serde_json::Value); 4] {
    [
        (
            "client_credentials, basic",
            json!({"grant_type": "client_credentials", "token_url": token_url, "client_id": "app", "client_secret": "s3cret", "scope": "read write"}),
        ),
        (
            "refresh_token, body",
            json!({"token_url": token_url, "client_id": "app", "client_secret": "s3cret", "client_auth": "body", "refresh_token": "rt-1"}),
        ),
        (
            "jwt_bearer, RS256 (2048-bit)",
            json!({"grant_type": "jwt_bearer", "token_url": token_url, "client_auth": "none",
                   "jwt": {"header": {"alg": "RS256"}, "issuer": "svc", "subject": "svc", "private_key": keys::RSA_PRIVATE}}),
        ),
        (
            "jwt_bearer, ES256",
            json!({"grant_type": "jwt_bearer", "token_url": token_url, "client_auth": "none",
                   "jwt": {"header": {"alg": "ES256"}, "issuer": "svc", "subject": "svc", "private_key": keys::EC_PRIVATE}}),
        ),
    ]
}

fn native_context() -> connector::Context {
    connector::Context {
        now: 1_700_000_000,
        nonce: vec![7; 32],
    }
}

/// A configuration opened as a connection opens it: parsed, and each key
/// tried with a signature.
fn opened(document: &str) -> Result<connector::Config> {
    connector::open(document).map_err(|e| anyhow!("invalid benchmark configuration: {e:?}"))
}

/// A token request built and its response read into the state to keep,
/// natively, as a connection does.
fn native_build_and_read(config: &connector::Config, response: &connector::Response) -> Result<()> {
    use connector::token_state;
    let fetch =
        token_state::token_request(config, &native_context()).map_err(|e| anyhow!("{e}"))?;
    std::hint::black_box(&fetch);
    std::hint::black_box(
        token_state::took(config, fetch.renewal, response, None, &native_context())
            .map_err(|refusal| anyhow!("{}", refusal.failure))?,
    );
    Ok(())
}

/// The same through a connection.
fn build_and_read(
    connection: &host_harness::component::Connection,
    response: &Response,
) -> Result<()> {
    let fetch = connection.token_request(&context())?.map_err(described)?;
    std::hint::black_box(&fetch.request);
    std::hint::black_box(
        connection
            .took(fetch.renewal, response, None, &context())?
            .map_err(|refusal| described(refusal.failure))?,
    );
    Ok(())
}

fn described(failure: host_harness::component::Failure) -> anyhow::Error {
    anyhow!("{}", host_harness::component::describe(&failure))
}

/// Every scenario, measured in this run.
pub fn run(connector: ConnectorHost) -> Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let response = token_response();
    let native_response = connector::Response {
        status: response.status,
        headers: response.headers.clone(),
        body: response.body.clone(),
    };
    let configs = configurations("https://as.example.com/oauth2/token");

    // The fast path: the configuration opened once, natively as a kept
    // `Config`, in the component as a kept connection.
    for (name, config) in &configs {
        let document = config.to_string();
        let native_config = opened(&document)?;
        let native = ns_per_op(|| native_build_and_read(&native_config, &native_response))?;
        let connection = connector.open(&document)?.map_err(described)?;
        let wasm = ns_per_op(|| build_and_read(&connection, &response))?;
        scenarios.push(pair(
            &format!("connection: build + read, {name}"),
            native,
            wasm,
            "kept connection / kept native Config",
        ));
    }

    // The same work for a host that keeps nothing: a connection opened
    // (an instance, the document and its key parsed) for every fetch.
    for (name, config) in &configs {
        let document = config.to_string();
        let native = ns_per_op(|| native_build_and_read(&opened(&document)?, &native_response))?;
        let wasm = ns_per_op(|| {
            let connection = connector.open(&document)?.map_err(described)?;
            build_and_read(&connection, &response)
        })?;
        scenarios.push(pair(
            &format!("a connection per fetch: open + build + read, {name}"),
            native,
            wasm,
            "open per fetch / open natively per fetch",
        ));
    }

    // A signature against OpenSSL's, where `openssl` is installed.
    let rs256 = opened(&configs[2].1.to_string())?;
    let signature = ns_per_op(|| {
        std::hint::black_box(
            connector::token_request(&rs256, &native_context()).map_err(|e| anyhow!("{e}"))?,
        );
        Ok(())
    })?;
    let openssl = openssl_rsa2048_sign_ns();
    scenarios.push(Scenario {
        name: "RS256 assertion (2048-bit), key kept: native / OpenSSL sign".into(),
        native_ns_per_op: Some(signature),
        wasm_ns_per_op: None,
        ratio: openssl.map(|peer| signature / peer),
        note: openssl.map_or_else(
            || "`openssl` not found: no peer figure".into(),
            |peer| {
                format!(
                    "whole request with the signature / `openssl speed rsa2048` sign: {:.2} ms",
                    peer / 1e6
                )
            },
        ),
    });

    let empty = Response {
        status: 401,
        headers: Vec::new(),
        body: Vec::new(),
    };
    let fresh = ns_per_op(|| connector.instantiate_once())?;
    // The floor of any call: a call that does almost nothing, with the
    // copying of arguments and results; on a fresh instance, and on a
    // connection's kept one.
    let trivial = ns_per_op(|| connector.challenges(&empty).map(drop))?;
    scenarios.push(Scenario {
        name: "a trivial function call (challenges of nothing)".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(trivial),
        ratio: Some(fresh / trivial),
        note: "instantiation / whole call".into(),
    });
    let client = configs[0].1.to_string();
    let connection = connector.open(&client)?.map_err(described)?;
    let state = connection
        .took(
            host_harness::component::Renewal::ConfiguredGrant,
            &response,
            None,
            &context(),
        )?
        .map_err(|refusal| described(refusal.failure))?;
    let kept_trivial = ns_per_op(|| connection.judge(&empty, &state, true).map(drop))?;
    scenarios.push(Scenario {
        name: "a trivial call on a connection (judge a retried 401)".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(kept_trivial),
        ratio: Some(kept_trivial / trivial),
        note: "kept instance / fresh instance".into(),
    });
    let pooled_host = ConnectorHost::from_bytes(
        host_harness::component::EMBEDDED_COMPONENT,
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
    let open_client = ns_per_op(|| {
        connector.open(&client)?.map_err(described)?;
        Ok(())
    })?;
    scenarios.push(Scenario {
        name: "open a connection: client_credentials".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: Some(open_client),
        ratio: None,
        note: "instantiate, parse and check, once per configuration".into(),
    });

    // A real server on loopback for the last scenarios.
    let server = AuthorizationServer::start(ServerOptions::default())?;
    let config = json!({"grant_type": "client_credentials", "token_url": server.token_url(),
                        "client_id": "demo-basic", "client_secret": "demo-basic-secret", "scope": "read"})
    .to_string();
    let settings = HttpSettings::default();
    let manager = TokenManager::new(
        Harness::new(connector.clone(), &settings),
        Box::new(MemoryStore::default()),
    );
    let api = Request {
        method: "GET".into(),
        url: server.resource_url(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let native_config = opened(&config)?;
    let native_api = connector::Request {
        method: api.method.clone(),
        url: api.url.clone(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let (kept, _) = manager.token(&config).map_err(|e| anyhow!("{e}"))?;
    let native_hit = ns_per_op(|| {
        std::hint::black_box(
            connector::authorize(
                &native_config,
                native_api.clone(),
                &kept.token_type,
                kept.access_token.expose(),
            )
            .map_err(|e| anyhow!("{e}"))?,
        );
        Ok(())
    })?;
    let cache_hit = ns_per_op(|| {
        let authorized = manager
            .authorize(&config, &api)
            .map_err(|e| anyhow!("{e}"))?;
        std::hint::black_box(authorized);
        Ok(())
    })?;
    scenarios.push(Scenario {
        name: "cache hit: state lookup + `next` (Authorization)".into(),
        native_ns_per_op: Some(native_hit),
        wasm_ns_per_op: Some(cache_hit),
        ratio: Some(cache_hit / native_hit),
        note: "token manager + connection.next / native authorize alone".into(),
    });

    let harness = Harness::new(connector.clone(), &settings);
    let through_harness = ns_per_op(|| {
        harness
            .obtain_token(&config)
            .map(drop)
            .map_err(|e| anyhow!("{e}"))
    })?;
    let request = harness
        .connection(&config)?
        .token_request(&context())?
        .map_err(described)?
        .request;
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
        note: "harness with a kept connection / plain POST of the same bytes".into(),
    });
    // The same fetch with the connector as a native library around the
    // POST: what the connector's work costs once the HTTP stack has had the
    // caches, natively.
    let native_config = opened(&config)?;
    let native_fetch = ns_per_op(|| {
        let fetch = connector::token_state::token_request(&native_config, &native_context())
            .map_err(|e| anyhow!("{e}"))?;
        let built = fetch.request;
        let response = http.send(&Request {
            method: built.method,
            url: built.url,
            headers: built.headers,
            body: built.body,
        })?;
        let response = connector::Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        };
        std::hint::black_box(
            connector::token_state::took(
                &native_config,
                fetch.renewal,
                &response,
                None,
                &native_context(),
            )
            .map_err(|refusal| anyhow!("{}", refusal.failure))?,
        );
        Ok(())
    })?;
    scenarios.push(Scenario {
        name: "token fetch on loopback, native connector around the POST".into(),
        native_ns_per_op: Some(native_fetch),
        wasm_ns_per_op: Some(through_harness),
        ratio: Some(through_harness / native_fetch),
        note: format!(
            "harness with a kept connection / native build + POST + read; native / plain POST {:.2}",
            native_fetch / plain_post
        ),
    });
    scenarios.push(Scenario {
        name: "instantiation share of a loopback token fetch".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: None,
        ratio: Some(pooled / through_harness),
        note:
            "one pooled instantiation / one token fetch; a connection pays it once, not per fetch"
                .into(),
    });

    let before = peak_rss_kib();
    for _ in 0..1000 {
        connector.instantiate_once()?;
    }
    let after = peak_rss_kib();
    let mut pooled_peak = None;
    let mut with_connections = None;
    if let (Some(_), Some(_)) = (before, after) {
        for _ in 0..1000 {
            pooled_host.instantiate_once()?;
        }
        pooled_peak = peak_rss_kib();
        // Many configurations kept open at once, each used once: what they
        // add to the resident memory.
        let resident_before = resident_kib();
        let mut kept = Vec::new();
        for index in 0..64 {
            let document =
                json!({"grant_type": "client_credentials", "token_url": server.token_url(),
                                  "client_id": format!("app-{index}"), "client_secret": "s3cret"})
                .to_string();
            let connection = connector.open(&document)?.map_err(described)?;
            build_and_read(&connection, &response)?;
            kept.push(connection);
        }
        with_connections = resident_kib()
            .zip(resident_before)
            .map(|(after, before)| after.saturating_sub(before));
    }
    let mib = |kib: Option<u64>| kib.map_or("unknown".into(), |kib| format!("{} MiB", kib >> 10));
    scenarios.push(Scenario {
        name: "memory and size".into(),
        native_ns_per_op: None,
        wasm_ns_per_op: None,
        ratio: None,
        note: format!(
            "component {} KiB (release, stripped); host peak RSS {} after 1,000 instantiations, {} after 1,000 more pooled; 64 open connections add {} resident",
            host_harness::component::EMBEDDED_COMPONENT.len() >> 10,
            mib(after),
            mib(pooled_peak),
            with_connections.map_or("unknown".into(), |kib| format!(
                "{} MiB ({} KiB each)",
                kib >> 10,
                kib / 64
            )),
        ),
    });
    scenarios.extend(start_up(&config)?);
    scenarios.extend(shared_stores(&connector)?);
    Ok(scenarios)
}

/// Opens a store, as a new worker does.
type OpenStore = Box<dyn Fn() -> Result<Box<dyn TokenStore>>>;

/// A `redis-server` of the bench's own on a free loopback port, or none
/// when it is not installed.
struct BenchRedis(std::process::Child, u16);

impl BenchRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let redis = Self(child, port);
        let store = RedisStore::open(&redis.url()).ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.load("ping").is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.1)
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stores shared by workers: token requests per token lifetime for 1, 8
/// and 32 worker processes running `oauth-harness call` in loops, per
/// store; and what a worker's first use of a shared token costs (reading
/// it from the store, then `next`), per store, beside a plain Redis `GET`.
fn shared_stores(connector: &ConnectorHost) -> Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let redis = BenchRedis::start();
    let directory =
        std::env::temp_dir().join(format!("oauth-harness-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let file_store = directory.join("tokens.json").display().to_string();
    let mut stores = vec![("file", file_store.clone())];
    if let Some(redis) = &redis {
        stores.push(("Redis", redis.url()));
    }

    // In-process: a fresh manager per use, as a new worker is.
    const LIFETIME_SECS: u64 = 2;
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: 3600,
        ..ServerOptions::default()
    })?;
    let config = json!({"grant_type": "password", "token_url": server.token_url(),
                        "client_id": "demo-basic", "client_secret": "demo-basic-secret",
                        "username": "alice", "password": "wonderland", "scope": "read offline_access"})
    .to_string();
    let api = Request {
        method: "GET".into(),
        url: server.resource_url(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let harness = || Harness::new(connector.clone(), &HttpSettings::default());
    let mut first_use = Vec::new();
    let memory = std::sync::Arc::new(MemoryStore::default());
    let stores_for_reading: Vec<(&str, OpenStore)> = {
        let mut list: Vec<(&str, OpenStore)> = vec![
            (
                "memory",
                Box::new(move || Ok(Box::new(memory.clone()) as Box<dyn TokenStore>)),
            ),
            ("file", {
                let path = directory.join("first-use.json");
                Box::new(move || Ok(Box::new(FileStore::new(&path)) as Box<dyn TokenStore>))
            }),
        ];
        if let Some(redis) = &redis {
            let url = redis.url();
            list.push((
                "Redis",
                Box::new(move || Ok(Box::new(RedisStore::open(&url)?) as Box<dyn TokenStore>)),
            ));
        }
        list
    };
    for (name, open) in &stores_for_reading {
        // One token, stored; then each use is a new worker's first.
        TokenManager::new(harness(), open()?)
            .authorize(&config, &api)
            .map_err(|e| anyhow!("{e}"))?;
        let shared = harness();
        shared.connection(&config)?;
        let ns = ns_per_op(|| {
            let manager = TokenManager::new(
                Harness::new(connector.clone(), &HttpSettings::default()),
                open()?,
            );
            std::hint::black_box(
                manager
                    .authorize(&config, &api)
                    .map_err(|e| anyhow!("{e}"))?,
            );
            Ok(())
        })?;
        first_use.push((*name, ns));
    }
    let connection_cost = ns_per_op(|| {
        Harness::new(connector.clone(), &HttpSettings::default())
            .connection(&config)
            .map(drop)
            .map_err(|e| anyhow!("{e}"))
    })?;
    for (name, ns) in &first_use {
        scenarios.push(Scenario {
            name: format!("a worker's first use of a shared token: {name} store"),
            native_ns_per_op: None,
            wasm_ns_per_op: Some(*ns),
            ratio: None,
            note: format!(
                "new manager, store read, `next`; {:.1} µs of it opening the connection",
                connection_cost / 1e3
            ),
        });
    }
    if let Some(redis) = &redis {
        let store = RedisStore::open(&redis.url())?;
        let get = ns_per_op(|| store.load("absent").map(drop))?;
        scenarios.push(Scenario {
            name: "a plain Redis GET on loopback".into(),
            native_ns_per_op: Some(get),
            wasm_ns_per_op: None,
            ratio: None,
            note: "the floor of the Redis store's read".into(),
        });
    } else {
        scenarios.push(Scenario {
            name: "Redis store".into(),
            native_ns_per_op: None,
            wasm_ns_per_op: None,
            ratio: None,
            note: "`redis-server` not found: no Redis figures".into(),
        });
    }

    // Across processes: only from the `oauth-harness` binary itself.
    let Ok(executable) = std::env::current_exe() else {
        return Ok(scenarios);
    };
    if executable.file_stem().and_then(|stem| stem.to_str()) != Some("oauth-harness") {
        return Ok(scenarios);
    }
    const RUN_SECS: u64 = 6;
    for (name, store) in &stores {
        for workers in [1usize, 8, 32] {
            let server = AuthorizationServer::start(ServerOptions {
                token_lifetime_secs: LIFETIME_SECS,
                ..ServerOptions::default()
            })?;
            let config_file = directory.join(format!("config-{name}-{workers}.json"));
            let document = json!({"grant_type": "password", "token_url": server.token_url(),
                                  "client_id": "demo-basic", "client_secret": "demo-basic-secret",
                                  "username": "alice", "password": "wonderland", "scope": "read offline_access"});
            std::fs::write(&config_file, document.to_string())?;
            if *name == "file" {
                let _ = std::fs::remove_file(&file_store);
            }
            let resource = server.resource_url();
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|| {
                        while start.elapsed() < Duration::from_secs(RUN_SECS) {
                            let ran = std::process::Command::new(&executable)
                                .arg("call")
                                .arg("--config")
                                .arg(&config_file)
                                .args(["--store", store, &resource])
                                .stdout(std::process::Stdio::null())
                                .stderr(std::process::Stdio::null())
                                .status();
                            if ran.is_ok_and(|status| status.success()) {
                                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            let lifetimes = RUN_SECS as f64 / LIFETIME_SECS as f64;
            let requests = server.received_requests().len() as f64;
            scenarios.push(Scenario {
                name: format!("token requests per token lifetime, {workers} worker processes, {name} store"),
                native_ns_per_op: None,
                wasm_ns_per_op: None,
                ratio: Some(requests / lifetimes),
                note: format!(
                    "{requests} requests in {RUN_SECS} s of {LIFETIME_SECS} s tokens; {} successful calls; {} refresh tokens presented twice",
                    calls.into_inner(),
                    server.refresh_token_reuses()
                ),
            });
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
    Ok(scenarios)
}

/// What a command of the CLI takes from start to exit, with the compiled
/// component loaded from the compile cache: the median of several runs of
/// `oauth-harness schema` and `validate`, and what compiling it anew costs.
/// Only when the bench runs from the `oauth-harness` binary itself.
fn start_up(config: &str) -> Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let compile = ns_per_op(|| {
        host_harness::component::compile_uncached(host_harness::component::EMBEDDED_COMPONENT)
            .map(drop)
    })?;
    let load = ns_per_op(|| ConnectorHost::embedded().map(drop))?;
    scenarios.push(Scenario {
        name: "load the embedded component: cached / compiled".into(),
        native_ns_per_op: Some(compile),
        wasm_ns_per_op: Some(load),
        ratio: Some(load / compile),
        note: "from the compile cache / Cranelift at start-up (the native column)".into(),
    });
    let Ok(executable) = std::env::current_exe() else {
        return Ok(scenarios);
    };
    if executable.file_stem().and_then(|stem| stem.to_str()) != Some("oauth-harness") {
        return Ok(scenarios);
    }
    let document =
        std::env::temp_dir().join(format!("oauth-harness-bench-{}.json", std::process::id()));
    std::fs::write(&document, config)?;
    let document_arg = document.display().to_string();
    for args in [vec!["schema"], vec!["validate", document_arg.as_str()]] {
        let mut times = Vec::new();
        for _ in 0..11 {
            let start = Instant::now();
            let status = std::process::Command::new(&executable)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .status()?;
            times.push(start.elapsed().as_nanos() as f64);
            anyhow::ensure!(status.success(), "`oauth-harness {}` failed", args[0]);
        }
        times.sort_by(f64::total_cmp);
        scenarios.push(Scenario {
            name: format!("`oauth-harness {}`, whole process", args[0]),
            native_ns_per_op: None,
            wasm_ns_per_op: Some(times[times.len() / 2]),
            ratio: None,
            note: "median of 11 runs, component from the compile cache".into(),
        });
    }
    let _ = std::fs::remove_file(document);
    Ok(scenarios)
}

/// Nanoseconds per 2048-bit RSA signature by OpenSSL on this machine, from
/// `openssl speed`'s machine-readable output (`+F2:…:sign/s:verify/s`);
/// `None` when `openssl` is not installed or says something else.
fn openssl_rsa2048_sign_ns() -> Option<f64> {
    let output = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "1", "-mr", "rsa2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|line| line.starts_with("+F2:"))?;
    let signs_per_second: f64 = line.split(':').nth(3)?.parse().ok()?;
    (signs_per_second > 0.0).then(|| 1e9 / signs_per_second)
}

/// The process's peak resident memory, from Linux's `/proc`.
fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// The process's resident memory now, from Linux's `/proc`.
fn resident_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

/// A figure in KiB from `/proc/self/status`.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
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
