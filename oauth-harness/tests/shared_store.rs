//! Workers in separate processes sharing one token store — a file, or a
//! real Redis server — against a server that rotates refresh tokens and
//! revokes the whole authorization when one is presented twice (RFC 9700
//! section 4.14.2), as strict providers do.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

use auth_server::{AuthorizationServer, ServerOptions};
use common::{RedisServer, config, directory};
use host_harness::TokenState;
use host_harness::stores::{LeaseSave, RedisStore, TokenStore};

/// How long an access token lives: short, so a run sees many renewals.
const LIFETIME_SECS: u64 = 4;
/// How many workers, each running `oauth-harness call` in a loop.
const WORKERS: usize = 6;

/// The rotating, reuse-detecting server, slow enough that workers race.
fn strict_server() -> AuthorizationServer {
    AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: LIFETIME_SECS,
        token_delay_ms: 300,
        ..ServerOptions::default()
    })
    .expect("server")
}

fn call(config: &Path, store: &str, resource: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args([
            "call",
            "--read-timeout",
            "3",
            "--connect-timeout",
            "2",
            "--config",
        ])
        .arg(config)
        .args(["--store", store, resource])
        .output()
        .expect("oauth-harness runs")
}

/// Runs the workers for `run`: how many calls they made, and the error
/// output of each call that failed with how long it took.
fn run_workers(
    config: &Path,
    store: &str,
    resource: &str,
    run: Duration,
) -> (usize, Vec<(Duration, String)>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            let (calls, failures) = (calls.clone(), failures.clone());
            scope.spawn(move || {
                while start.elapsed() < run {
                    let began = Instant::now();
                    let output = call(config, store, resource);
                    calls.fetch_add(1, Ordering::SeqCst);
                    if !output.status.success() {
                        failures
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push((
                                began.elapsed(),
                                String::from_utf8_lossy(&output.stderr).into_owned(),
                            ));
                    }
                }
            });
        }
    });
    let failures = failures
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    (calls.load(Ordering::SeqCst), failures)
}

/// What every shared-store run must show: no failed call, no refresh
/// token presented twice, and about one token request per renewal period
/// (a quarter of the lifetime early: 3 s) for the whole fleet.
fn assert_shared(
    server: &AuthorizationServer,
    requests_before: usize,
    run: Duration,
    calls: usize,
    failures: &[(Duration, String)],
) {
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
    let token_requests = server.received_requests().len() - requests_before;
    let periods = run.as_secs_f64() / (LIFETIME_SECS as f64 * 0.75);
    assert!(
        token_requests as f64 <= periods + 2.0,
        "{token_requests} token requests in {} s for {WORKERS} workers ({calls} calls)",
        run.as_secs()
    );
    assert!(calls > WORKERS * 4, "the workers made only {calls} calls");
}

#[test]
fn workers_sharing_a_file_renew_once_per_lifetime_and_never_present_a_refresh_token_twice() {
    let server = strict_server();
    let directory = directory("shared-file");
    let config = config(&server, &directory);
    let store = directory.join("tokens.json");
    let run = Duration::from_secs(12);
    let (calls, failures) = run_workers(
        &config,
        store.to_str().expect("UTF-8"),
        &server.resource_url(),
        run,
    );
    assert_shared(&server, 0, run, calls, &failures);
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn workers_sharing_redis_renew_once_per_lifetime_and_never_present_a_refresh_token_twice() {
    let server = strict_server();
    let directory = directory("shared-redis");
    let redis = RedisServer::start(&directory);
    let config = config(&server, &directory);
    let run = Duration::from_secs(12);
    let (calls, failures) = run_workers(&config, &redis.url(), &server.resource_url(), run);
    assert_shared(&server, 0, run, calls, &failures);
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn while_redis_is_down_calls_fail_quickly_naming_it_and_resume_after_without_losing_a_rotation() {
    let server = strict_server();
    let directory = directory("redis-restart");
    let mut redis = RedisServer::start(&directory);
    let config = config(&server, &directory);
    let (url, resource) = (redis.url(), server.resource_url());
    assert!(call(&config, &url, &resource).status.success());

    redis.stop();
    let began = Instant::now();
    let down = call(&config, &url, &resource);
    let took = began.elapsed();
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(!down.status.success());
    assert!(
        stderr.contains(&format!("Redis token store `{url}`")),
        "{stderr}"
    );
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(took < Duration::from_secs(10), "a down Redis took {took:?}");

    // Back up, with what it held: the workers go on from the stored state,
    // renewing with its refresh token, never the configured grant again.
    redis.restart();
    let before = server.received_requests().len();
    let run = Duration::from_secs(8);
    let (calls, failures) = run_workers(&config, &url, &resource, run);
    assert_shared(&server, before, run, calls, &failures);
    let grants: Vec<String> = server
        .received_requests()
        .iter()
        .filter_map(|request| {
            request
                .parameters
                .iter()
                .find(|(name, _)| name == "grant_type")
                .map(|(_, value)| value.clone())
        })
        .collect();
    assert_eq!(
        grants.iter().filter(|grant| *grant == "password").count(),
        1,
        "{grants:?}"
    );
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn a_lease_holder_that_stalls_past_its_lease_cannot_overwrite_the_newer_token() {
    let directory = directory("redis-fencing");
    let redis = RedisServer::start(&directory);
    let store = RedisStore::open(&redis.url()).expect("a URL");
    let stalled = store
        .lease("k", Duration::from_millis(300))
        .expect("leased");
    std::thread::sleep(Duration::from_millis(600));
    // The stalled holder's lease lapsed: another worker renews.
    let other = store
        .lease("k", Duration::from_secs(5))
        .expect("the lapsed lease");
    let newer = TokenState::new("newer".into(), None);
    other.save(&newer).expect("saved under its lease");
    drop(other);
    let late = stalled
        .save(&TokenState::new("older".into(), None))
        .expect("Redis answers");
    assert!(
        matches!(&late, LeaseSave::Lapsed(why) if why.contains("lease") && why.contains(&redis.url())),
        "{late:?}"
    );
    assert_eq!(store.load("k").expect("read"), Some(newer.clone()));
    // Its release does not release another holder's lease either.
    let holder = store
        .lease("k", Duration::from_secs(5))
        .expect("free again");
    drop(stalled);
    assert!(
        store.lease("k", Duration::from_millis(100)).is_err(),
        "the current holder's lease survived the stale release"
    );
    drop(holder);
    let _ = std::fs::remove_dir_all(directory);
}

/// A holder that renews for longer than a heartbeat keeps its Redis lease:
/// the heartbeat extends it, and the save under it succeeds.
#[test]
fn a_living_holder_keeps_its_redis_lease_past_a_heartbeat() {
    let directory = directory("redis-heartbeat");
    let redis = RedisServer::start(&directory);
    let store = redis.store();
    let lease = store.lease("k", Duration::from_secs(20)).expect("leased");
    // Past the 12 s a lease lives without its heartbeat.
    std::thread::sleep(Duration::from_secs(14));
    let mut connection = redis::Client::open(redis.url().as_str())
        .and_then(|client| client.get_connection())
        .expect("Redis answers");
    let left_ms: i64 = redis::cmd("PTTL")
        .arg("oauth-harness:v1:{k}:lease")
        .query(&mut connection)
        .expect("PTTL");
    assert!(left_ms > 0, "the lease is still held: {left_ms} ms left");
    let state = TokenState::new("renewed".into(), None);
    assert_eq!(
        lease.save(&state).expect("Redis answers"),
        LeaseSave::Saved,
        "saved under the kept lease"
    );
    drop(lease);
    assert_eq!(store.load("k").expect("read"), Some(state));
    let _ = std::fs::remove_dir_all(directory);
}

/// A worker killed while it holds the Redis store's renewal lease holds the
/// others up for its lease's time to live, or, when it was presenting a
/// refresh token, for as long as that request could take; not for the
/// renewal's whole time bound: Redis frees no lease when its holder dies,
/// as the kernel frees the file store's.
#[test]
fn a_worker_killed_holding_the_redis_lease_holds_the_others_up_for_seconds_only() {
    let server = AuthorizationServer::start(ServerOptions {
        // Long enough to see the lease and kill its holder while its token
        // request waits at the server.
        token_delay_ms: 4000,
        ..ServerOptions::default()
    })
    .expect("server");
    let directory = directory("redis-killed-holder");
    let redis = RedisServer::start(&directory);
    let config = config(&server, &directory);
    let (url, resource) = (redis.url(), server.resource_url());
    let worker = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oauth-harness"));
        // Short timeouts: the dead holder's renewal in flight is waited out
        // for as long as its request could take (2 + 2 × 4 s), plus 6 s.
        command
            .args([
                "call",
                "--connect-timeout",
                "2",
                "--read-timeout",
                "4",
                "--config",
            ])
            .arg(&config)
            .args(["--store", &url, &resource])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };

    let mut holder = worker().spawn().expect("oauth-harness runs");
    // The lease's value names its holder's host and process.
    let mut connection = redis::Client::open(url.as_str())
        .and_then(|client| client.get_connection())
        .expect("Redis answers");
    let deadline = Instant::now() + Duration::from_secs(20);
    let holder_pid = loop {
        assert!(Instant::now() < deadline, "the worker took no lease");
        let leases: Vec<String> = redis::cmd("KEYS")
            .arg("oauth-harness:v1:*:lease")
            .query(&mut connection)
            .expect("KEYS");
        let values: Vec<String> = leases
            .iter()
            .filter_map(|lease| redis::cmd("GET").arg(lease).query(&mut connection).ok())
            .collect();
        let pid = values
            .iter()
            .find_map(|value| value.split(':').nth(1)?.parse::<u32>().ok());
        if let Some(pid) = pid {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(holder_pid, holder.id(), "the lease names its holder");
    holder.kill().expect("SIGKILL");
    let _ = holder.wait();

    let began = Instant::now();
    let next = worker().output().expect("oauth-harness runs");
    let took = began.elapsed();
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    // The dead holder's renewal in flight (16 s, which covers its lease's
    // 12 s), the server's 4 s delay, and the process's start.
    assert!(
        took < Duration::from_secs(30),
        "the next worker waited {took:?} for the dead holder's lease"
    );
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn the_redis_store_replaces_only_over_what_was_read_and_refuses_bad_urls_clearly() {
    let directory = directory("redis-store");
    let redis = RedisServer::start(&directory);
    let store = RedisStore::open(&redis.url()).expect("a URL");
    let first = TokenState::new("first".into(), None);
    let second = TokenState::new(
        "second".into(),
        Some(host_harness::harness::unix_now() + 60),
    );
    assert!(
        store
            .replace_if_unchanged("k", None, Some(&first))
            .expect("set")
    );
    assert!(
        !store
            .replace_if_unchanged("k", None, Some(&second))
            .expect("refused")
    );
    store.save("k", &second).expect("saved");
    assert!(
        !store
            .replace_if_unchanged("k", Some(&first), None)
            .expect("refused")
    );
    assert_eq!(store.load("k").expect("read"), Some(second.clone()));
    assert!(
        store
            .replace_if_unchanged("k", Some(&second), None)
            .expect("removed")
    );
    assert_eq!(store.load("k").expect("read"), None);

    let malformed = RedisStore::open("redis://app:s3cret@localhost:notaport/0")
        .err()
        .expect("malformed")
        .to_string();
    assert!(
        malformed.contains("redis://") && !malformed.contains("s3cret"),
        "{malformed}"
    );
    // Nothing listens on a freshly freed port.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a port")
        .port();
    let unreachable =
        RedisStore::open(&format!("redis://app:s3cret@127.0.0.1:{port}/0")).expect("a URL");
    let began = Instant::now();
    let error = unreachable.load("k").expect_err("unreachable").to_string();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(
        error.contains("unreachable") && !error.contains("s3cret"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(directory);
}

/// The process holding an OS lock on `path`, from `/proc/locks`.
fn lock_holder(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`
        let device_inode = fields.get(5)?;
        let pid = fields.get(4)?.parse().ok()?;
        (device_inode.rsplit(':').next()? == inode.to_string()).then_some(pid)
    })
}

#[test]
fn a_worker_killed_in_the_middle_of_a_renewal_costs_no_other_call() {
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: LIFETIME_SECS,
        // Long enough to kill a worker while its token request is under
        // way, even on a loaded machine.
        token_delay_ms: 3000,
        ..ServerOptions::default()
    })
    .expect("server");
    let directory = directory("killed-worker");
    let config = config(&server, &directory);
    let store = directory.join("tokens.json");
    let store_arg = store.to_str().expect("UTF-8").to_owned();
    let resource = server.resource_url();
    let run = Duration::from_secs(14);
    let killed = std::sync::Mutex::new(Vec::<u32>::new());
    let failures = std::sync::Mutex::new(Vec::new());
    let calls = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while start.elapsed() < run {
                    let child = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
                        .args(["call", "--read-timeout", "5", "--config"])
                        .arg(&config)
                        .args(["--store", &store_arg, &resource])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("oauth-harness runs");
                    let pid = child.id();
                    let output = child.wait_with_output().expect("it ends");
                    calls.fetch_add(1, Ordering::SeqCst);
                    let was_killed = killed
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .contains(&pid);
                    if !output.status.success() && !was_killed {
                        failures
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(String::from_utf8_lossy(&output.stderr).into_owned());
                    }
                }
            });
        }
        // The killer: after the first token, find the worker holding the
        // renewal lease while its request waits at the server, and kill it.
        scope.spawn(|| {
            while start.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(20));
            }
            while start.elapsed() < run - Duration::from_secs(4) {
                let lease = std::fs::read_dir(&directory)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|entry| entry.path())
                    .find(|path| path.to_string_lossy().contains(".lease-"));
                if let Some(pid) = lease.as_deref().and_then(lock_holder) {
                    std::thread::sleep(Duration::from_millis(400));
                    if lease.as_deref().and_then(lock_holder) == Some(pid) {
                        killed
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(pid);
                        let _ = Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    });
    let killed = killed
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let failures = failures
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let summary = format!(
        "killed {killed:?}; {} calls; {} token requests; {} reuses",
        calls.load(Ordering::SeqCst),
        server.received_requests().len(),
        server.refresh_token_reuses()
    );
    assert_eq!(
        killed.len(),
        1,
        "no worker was caught in a renewal: {summary}"
    );
    // The kernel released the dead worker's lease at once; the next worker
    // renewed from the stored state. The server (hyper) saw its client go
    // while it waited and dropped the request unanswered, so the refresh
    // token was not spent; a server that answers anyway would have rotated
    // it into the dead worker's memory, and a reuse-detecting one would then
    // revoke the grant and leave the configured grant to step in.
    assert!(failures.is_empty(), "{summary}: {failures:#?}");
    assert_eq!(server.refresh_token_reuses(), 0, "{summary}");
    let periods = run.as_secs_f64() / (LIFETIME_SECS as f64 * 0.75);
    assert!(
        server.received_requests().len() as f64 <= periods + 2.0,
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn a_rediss_store_speaks_tls_and_trusts_only_the_given_ca() {
    let server = strict_server();
    let directory = directory("redis-tls");
    let redis = RedisServer::start_tls(&directory);
    let state = TokenState::new("over TLS".into(), None);
    let store = redis.store();
    store.save("k", &state).expect("saved over TLS");
    assert_eq!(store.load("k").expect("read"), Some(state));
    // The system's roots do not know this CA: refused, naming the store.
    let untrusting = RedisStore::open(&redis.url()).expect("a URL");
    let error = untrusting.load("k").expect_err("an unknown CA").to_string();
    assert!(error.contains(&redis.url()), "{error}");

    let ca = directory.join("ca.pem");
    std::fs::write(&ca, redis.tls.as_deref().expect("TLS")).expect("written");
    let config = config(&server, &directory);
    let output = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
        .args(["call", "--config"])
        .arg(&config)
        .args(["--store", &redis.url(), "--store-ca-file"])
        .arg(&ca)
        .arg(server.resource_url())
        .output()
        .expect("oauth-harness runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(directory);
}

/// A Redis password on the command line shows in the process list: the
/// store's URL may come from `OAUTH_HARNESS_STORE` or from a file only its
/// owner can read instead. Plain `redis://` to another machine is refused
/// unless the risk is accepted, as bearer tokens are over plain http.
#[test]
fn the_store_url_comes_from_the_environment_or_a_private_file_and_plain_redis_stays_local() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = strict_server();
    let directory = directory("store-url");
    let redis = RedisServer::start(&directory);
    let config = config(&server, &directory);
    let run = |args: &[&str], store_variable: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oauth-harness"));
        command
            .args(["call", "--config"])
            .arg(&config)
            .args(args)
            .arg(server.resource_url())
            .env_remove("OAUTH_HARNESS_STORE");
        if let Some(url) = store_variable {
            command.env("OAUTH_HARNESS_STORE", url);
        }
        command.output().expect("oauth-harness runs")
    };
    let from_variable = run(&[], Some(&redis.url()));
    assert!(
        from_variable.status.success(),
        "{}",
        String::from_utf8_lossy(&from_variable.stderr)
    );
    let url_file = directory.join("store.url");
    std::fs::write(&url_file, format!("{}\n", redis.url())).expect("written");
    let url_file_arg = url_file.to_str().expect("UTF-8");
    let readable = run(&["--store-url-file", url_file_arg], None);
    assert!(!readable.status.success());
    assert!(String::from_utf8_lossy(&readable.stderr).contains("chmod 600"));
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let from_file = run(&["--store-url-file", url_file_arg], None);
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    assert_eq!(
        server.received_requests().len(),
        1,
        "all three found the same store"
    );

    // Refused before any connection: nothing listens at this address.
    let began = Instant::now();
    let remote = run(&["--store", "redis://:pw-in-clear@192.0.2.1:6379/0"], None);
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(!remote.status.success());
    assert!(stderr.contains("--allow-plain-redis"), "{stderr}");
    assert!(!stderr.contains("pw-in-clear"), "{stderr}");
    assert!(began.elapsed() < Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(directory);
}
