//! Workers in separate processes sharing one token store, against a server
//! that rotates refresh tokens and revokes the whole authorization when one
//! is presented twice (RFC 9700 section 4.14.2), as strict providers do.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_server::{AuthorizationServer, ServerOptions};
use serde_json::json;

/// How long an access token lives: short, so the run sees many renewals.
const LIFETIME_SECS: u64 = 4;
/// How long the workers call.
const RUN: Duration = Duration::from_secs(12);
/// How many workers, each running `oauth-harness call` in a loop.
const WORKERS: usize = 6;

#[test]
fn workers_in_separate_processes_renew_once_per_lifetime_and_never_present_a_refresh_token_twice() {
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: LIFETIME_SECS,
        // A slow token endpoint widens the window in which workers race.
        token_delay_ms: 300,
        ..ServerOptions::default()
    })
    .expect("server");
    let directory =
        std::env::temp_dir().join(format!("oauth-harness-shared-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("directory");
    // The configured grant issues a refresh token; renewals rotate it.
    let config = directory.join("config.json");
    std::fs::write(
        &config,
        json!({
            "grant_type": "password", "token_url": server.token_url(),
            "client_id": "demo-basic", "client_secret": "demo-basic-secret",
            "username": "alice", "password": "wonderland", "scope": "read offline_access",
        })
        .to_string(),
    )
    .expect("written");
    let store = directory.join("tokens.json");
    let resource = server.resource_url();
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            let (calls, failures) = (calls.clone(), failures.clone());
            let (config, store, resource) = (&config, &store, &resource);
            scope.spawn(move || {
                while start.elapsed() < RUN {
                    let output = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
                        .arg("call")
                        .arg("--config")
                        .arg(config)
                        .arg("--store")
                        .arg(store)
                        .arg(resource)
                        .output()
                        .expect("oauth-harness runs");
                    calls.fetch_add(1, Ordering::SeqCst);
                    if !output.status.success() {
                        failures
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(String::from_utf8_lossy(&output.stderr).into_owned());
                    }
                }
            });
        }
    });
    let calls = calls.load(Ordering::SeqCst);
    let failures = failures
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:#?}",
        failures.len()
    );
    assert_eq!(
        server.refresh_token_reuses(),
        0,
        "a refresh token was presented twice"
    );
    // A token is renewed a quarter of its lifetime early (3 s here): one
    // token request per 3 s for the whole fleet, not one per worker.
    let token_requests = server.received_requests().len();
    let per_lifetime = RUN.as_secs_f64() / (LIFETIME_SECS as f64 * 0.75);
    assert!(
        token_requests as f64 <= per_lifetime + 2.0,
        "{token_requests} token requests in {} s for {WORKERS} workers ({calls} calls)",
        RUN.as_secs()
    );
    assert!(calls > WORKERS * 4, "the workers made {calls} calls");
    let _ = std::fs::remove_dir_all(directory);
}
