//! What the store tests share: a directory each, a configuration whose
//! grant issues refresh tokens, a real `redis-server`, and a TCP proxy in
//! front of it that drops or stalls what the test chooses.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_server::AuthorizationServer;
use host_harness::stores::{RedisStore, TokenStore};
use serde_json::json;

/// A directory of its own for a test.
pub fn directory(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!(
        "oauth-harness-{name}-{}-{}",
        std::process::id(),
        host_harness::harness::unix_now()
    ));
    std::fs::create_dir_all(&directory).expect("directory");
    directory
}

/// A configuration whose grant issues a refresh token; renewals rotate it.
pub fn config(server: &AuthorizationServer, directory: &Path) -> PathBuf {
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
    config
}

/// A real `redis-server` on a free loopback port, persisting to its own
/// directory so that a restart keeps what it held.
pub struct RedisServer {
    pub port: u16,
    directory: PathBuf,
    /// Over TLS only, with a certificate from this CA (its PEM).
    pub tls: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(directory: &Path) -> Self {
        Self::start_with(directory, false)
    }

    /// Listening for TLS only, with a certificate from a CA of its own.
    pub fn start_tls(directory: &Path) -> Self {
        Self::start_with(directory, true)
    }

    pub fn start_with(directory: &Path, tls: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let tls = tls.then(|| {
            let identity = auth_server::LoopbackIdentity::generate().expect("certificates");
            std::fs::write(directory.join("server.pem"), &identity.chain_pem).expect("written");
            std::fs::write(directory.join("server.key"), &identity.key_pem).expect("written");
            identity.ca_pem
        });
        let mut server = Self {
            port,
            directory: directory.to_owned(),
            tls,
            child: None,
        };
        server.restart();
        server
    }

    /// Its unix socket.
    pub fn socket(&self) -> PathBuf {
        self.directory.join("redis.sock")
    }

    /// A connection of the test's own, to look at what the store holds.
    pub fn inspect(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port))
            .and_then(|client| client.get_connection())
            .expect("Redis answers")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    pub fn store(&self) -> RedisStore {
        RedisStore::open_trusting(&self.url(), self.tls.as_deref().map(str::as_bytes))
            .expect("a URL")
    }

    /// Starts it (again), and waits until it answers.
    pub fn restart(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        command
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "700"]);
        let port = self.port.to_string();
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(_) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(self.directory.join("server.pem"))
                .arg("--tls-key-file")
                .arg(self.directory.join("server.key")),
        };
        let child = command
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.directory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs: install it (Debian: apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let store = self.store();
        while store.load("ping").is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a [`Proxy`] does to the bytes a client sends.
#[derive(Default)]
struct Faults {
    /// Drop this chunk (counted from 1) of this connection (counted from 1).
    drop_chunk: Option<(usize, usize)>,
    /// Drop the next chunk of whichever connection sends one.
    drop_next: bool,
    /// Hold every chunk, both ways, until then.
    stalled_until: Option<Instant>,
}

/// A TCP proxy on loopback in front of a server, forwarding what clients
/// send and what the server answers, chunk by chunk, except what the test
/// tells it to drop or stall: a packet lost in the network, a link that
/// stops for a while.
pub struct Proxy {
    pub port: u16,
    faults: Arc<Mutex<Faults>>,
    connections: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy in front of `target_port` on loopback.
    pub fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("bound").port();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let (f, c, s) = (faults.clone(), connections.clone(), stopped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let number = c.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                let (client_in, server_out) = (
                    client.try_clone().expect("a handle"),
                    server.try_clone().expect("a handle"),
                );
                let faults = f.clone();
                std::thread::spawn(move || pump(client_in, server_out, number, &faults, true));
                let faults = f.clone();
                std::thread::spawn(move || pump(server, client, number, &faults, false));
            }
        });
        Self {
            port,
            faults,
            connections,
            stopped,
        }
    }

    /// The Redis URL through this proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Drops chunk `chunk` of connection `connection` (both from 1) that a
    /// client sends.
    pub fn drop_chunk(&self, connection: usize, chunk: usize) {
        lock(&self.faults).drop_chunk = Some((connection, chunk));
    }

    /// Drops the next chunk any client sends.
    pub fn drop_next(&self) {
        lock(&self.faults).drop_next = true;
    }

    /// Holds all traffic, both ways, for `how_long` from now.
    pub fn stall(&self, how_long: Duration) {
        lock(&self.faults).stalled_until = Some(Instant::now() + how_long);
    }

    /// How many connections clients opened through it.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies one direction of a connection, applying the drops to what a
/// client sends (`number` is the connection's); stalls apply both ways.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    number: usize,
    faults: &Mutex<Faults>,
    from_client: bool,
) -> std::io::Result<()> {
    let mut buffer = [0u8; 16 * 1024];
    let mut chunk = 0;
    loop {
        let read = from.read(&mut buffer)?;
        if read == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        let stalled_until = lock(faults).stalled_until;
        if let Some(until) = stalled_until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        if from_client {
            chunk += 1;
            let mut faults = lock(faults);
            if faults.drop_chunk == Some((number, chunk)) {
                faults.drop_chunk = None;
                continue;
            }
            if faults.drop_next {
                faults.drop_next = false;
                continue;
            }
        }
        to.write_all(&buffer[..read])?;
    }
}

/// The process's error output, for assertion messages.
pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The refresh-token requests the server received so far.
pub fn refreshes(server: &AuthorizationServer) -> usize {
    server
        .received_requests()
        .iter()
        .filter(|request| {
            request
                .parameters
                .iter()
                .any(|(name, value)| name == "grant_type" && value == "refresh_token")
        })
        .count()
}

/// Sends a signal to a process.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// Whether a Redis key matching `pattern` exists.
pub fn redis_has(connection: &mut redis::Connection, pattern: &str) -> bool {
    redis::cmd("KEYS")
        .arg(pattern)
        .query::<Vec<String>>(connection)
        .is_ok_and(|keys| !keys.is_empty())
}

/// Waits until `ready`, failing the test after `within`.
pub fn wait_until(within: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `oauth-harness` under test: this build's, or the one the
/// environment variable `OAUTH_HARNESS` names (to run the suite against
/// another build, an older one say).
pub fn binary() -> PathBuf {
    std::env::var_os("OAUTH_HARNESS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oauth-harness")))
}

/// Starts `oauth-harness call` against `resource` with this store, and
/// these extra arguments before the URL.
pub fn spawn_call(config: &Path, store: &str, resource: &str, extra: &[&str]) -> Child {
    Command::new(binary())
        .args(["call", "--config"])
        .arg(config)
        .args(["--store", store])
        .args(extra)
        .arg(resource)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oauth-harness runs")
}

/// Writes a store key file, readable by its owner only.
pub fn key_file(directory: &Path, name: &str, byte: u8) -> PathBuf {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;
    let path = directory.join(name);
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode([byte; 32]),
    )
    .expect("written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}
