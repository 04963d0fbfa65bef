//! The Redis store: a fleet of machines sharing tokens (`--store
//! redis://host:port/db`, or `rediss://` with TLS; credentials in the URL).
//! Works unchanged against Valkey.
//!
//! Each cache key has two Redis keys under a namespace: the state, with a
//! time to live past its usefulness, and the renewal lease, taken with
//! `SET NX PX` and a random value. Releasing the lease, saving under it and
//! compare-and-set run as server-side scripts, so each is one atomic step
//! on the server: a worker whose lease lapsed can neither release another's
//! nor overwrite the renewal made under it. A holder keeps its lease alive
//! in short steps while it renews, so the lease of a worker that died
//! mid-renewal lapses within seconds, not after the renewal's time bound.

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use redis::{Client, Connection, Script};
use serde::{Deserialize, Serialize};

use super::{Lease, TokenStore};
use crate::component::TokenState;
use crate::harness::unix_now;
use crate::lock;

/// What every key of this store starts with, so a shared Redis holds other
/// data beside it.
const NAMESPACE: &str = "oauth-harness:v1";

/// How long a state with a refresh token lives without being touched: past
/// the useful life of most providers' refresh tokens.
const KEEP_WITH_REFRESH_TOKEN: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long past its `evict_after` a state stays, as in the file store.
const EVICTION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// How long connecting, and each command, may take: a stopped Redis is an
/// error within this, never a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a lease lives unless its holder extends it: the longest a
/// worker that died mid-renewal (killed, or its machine gone) holds the
/// others up.
const LEASE_HEARTBEAT_TTL: Duration = Duration::from_secs(6);

/// How often a living holder extends its lease: often enough that a slow
/// or failed extension (each may take [`IO_TIMEOUT`]) is followed by
/// another before the lease lapses.
const LEASE_HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// Extends the lease by `ARGV[2]` ms only if it is still this holder's.
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Saves the state only if the lease is still this holder's.
const SAVE_UNDER_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

/// Releases the lease only if it is still this holder's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Replaces the state only if it is still the expected one (`ARGV[1]` is
/// `1` when one is expected, `ARGV[2]` that one; `ARGV[3]` is `1` to set
/// `ARGV[4]` for `ARGV[5]` ms, `0` to delete).
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
  redis.call('DEL', KEYS[1])
end
return 1";

/// A state as Redis holds it.
#[derive(Serialize, Deserialize)]
struct StoredState {
    data: String,
    evict_after: Option<u64>,
}

/// Token states in Redis, shared by every worker of every machine that
/// reaches it.
pub struct RedisStore {
    client: Client,
    /// The URL with its password hidden, for messages.
    shown: String,
    /// One connection, opened again after an error (Redis restarted).
    connection: Mutex<Option<Connection>>,
}

impl RedisStore {
    /// A store at a `redis://` or `rediss://` URL. Nothing is connected
    /// yet: a malformed URL fails here, an unreachable server at first use.
    /// Over TLS the system's roots are trusted.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_trusting(url, None)
    }

    /// The same, trusting exactly the CA certificates in `ca_pem` for
    /// `rediss://` (a private CA) instead of the system's roots.
    pub fn open_trusting(url: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        let shown = shown_url(url);
        if url.starts_with("rediss://") {
            // Several TLS backends are linked in; Redis uses the harness's.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = match ca_pem {
            Some(pem) => Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
            None => Client::open(url),
        };
        let client = client.map_err(|e| {
            anyhow!(
                "the Redis store URL `{shown}` is not usable ({}): write it as redis://[user:password@]host:port/db, or rediss://… for TLS",
                e.detail().unwrap_or(e.category())
            )
        })?;
        Ok(Self {
            client,
            shown,
            connection: Mutex::new(None),
        })
    }

    /// The URL with any password hidden.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs `command` on the connection, connecting first if needed; an
    /// error drops the connection, so the next call connects afresh.
    fn with<T>(
        &self,
        what: &str,
        command: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut slot = lock(&self.connection);
        if slot.is_none() {
            let connection = connect(&self.client).map_err(|e| {
                anyhow!(
                    "the Redis token store `{}` is unreachable ({e}): check that Redis runs there and the URL's credentials, or use a file store",
                    self.shown
                )
            })?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            unreachable!("connected above");
        };
        command(connection).map_err(|e| {
            *slot = None;
            anyhow!(
                "the Redis token store `{}` failed to {what}: {e}",
                self.shown
            )
        })
    }

    // The cache key in braces is a hash tag: a cluster keeps a state and
    // its lease in one slot, which the scripts that touch both need.
    fn state_key(key: &str) -> String {
        format!("{NAMESPACE}:{{{key}}}:state")
    }

    fn lease_key(key: &str) -> String {
        format!("{NAMESPACE}:{{{key}}}:lease")
    }

    /// The state as stored, and how long Redis keeps it.
    fn encode(state: &TokenState) -> Result<(String, u64)> {
        let keep = match state.evict_after {
            None => KEEP_WITH_REFRESH_TOKEN,
            Some(after) => Duration::from_secs(after.saturating_sub(unix_now())) + EVICTION_GRACE,
        };
        let text = serde_json::to_string(&StoredState {
            data: state.data().to_owned(),
            evict_after: state.evict_after,
        })?;
        Ok((text, u64::try_from(keep.as_millis()).unwrap_or(u64::MAX)))
    }

    fn decode(&self, text: &str) -> Result<TokenState> {
        let stored: StoredState = serde_json::from_str(text).map_err(|_| {
            anyhow!(
                "the Redis token store `{}` holds something other than an oauth-harness state under the `{NAMESPACE}` namespace: remove those keys",
                self.shown
            )
        })?;
        Ok(TokenState::new(stored.data, stored.evict_after))
    }
}

/// A held lease in Redis: its random value proves the holder.
struct RedisLease<'s> {
    store: &'s RedisStore,
    key: String,
    token: String,
    hold: Duration,
    /// Dropped with the lease, which stops the heartbeat.
    _heartbeat: mpsc::Sender<()>,
}

impl Lease for RedisLease<'_> {
    fn save(&self, state: &TokenState) -> Result<()> {
        let (text, keep_ms) = RedisStore::encode(state)?;
        let saved: i64 = self.store.with("save the renewed token", |connection| {
            Script::new(SAVE_UNDER_LEASE)
                .key(RedisStore::lease_key(&self.key))
                .key(RedisStore::state_key(&self.key))
                .arg(&self.token)
                .arg(&text)
                .arg(keep_ms)
                .invoke(connection)
        })?;
        if saved == 1 {
            Ok(())
        } else {
            Err(anyhow!(
                "the renewal took longer than its {} s lease in the Redis token store `{}`, so another worker may have renewed meanwhile: this worker's token is not stored",
                self.hold.as_secs(),
                self.store.shown
            ))
        }
    }
}

impl Drop for RedisLease<'_> {
    fn drop(&mut self) {
        // Not released (Redis down): it lapses by itself.
        let _ = self.store.with("release the renewal lease", |connection| {
            Script::new(RELEASE)
                .key(RedisStore::lease_key(&self.key))
                .arg(&self.token)
                .invoke::<i64>(connection)
        });
    }
}

impl TokenStore for RedisStore {
    fn secret(&self) -> Result<Vec<u8>> {
        use base64::Engine as _;
        let key = format!("{NAMESPACE}:secret");
        let fresh = base64::engine::general_purpose::STANDARD.encode(super::new_secret()?);
        // The first worker's secret stays: SET NX, then read what is there.
        let stored: Option<String> = self.with("read the store's secret", |connection| {
            redis::cmd("SET")
                .arg(&key)
                .arg(&fresh)
                .arg("NX")
                .query::<Option<String>>(connection)?;
            redis::cmd("GET").arg(&key).query(connection)
        })?;
        stored
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .ok_or_else(|| {
                anyhow!(
                    "the Redis token store `{}` holds a damaged secret under `{key}`: delete that key",
                    self.shown
                )
            })
    }

    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        let text: Option<String> = self.with("read a token", |connection| {
            redis::cmd("GET")
                .arg(Self::state_key(key))
                .query(connection)
        })?;
        text.map(|text| self.decode(&text)).transpose()
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        let (text, keep_ms) = Self::encode(state)?;
        self.with("save a token", |connection| {
            redis::cmd("SET")
                .arg(Self::state_key(key))
                .arg(text)
                .arg("PX")
                .arg(keep_ms)
                .query::<()>(connection)
        })
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool> {
        let expected = expected.map(Self::encode).transpose()?;
        let new = new.map(Self::encode).transpose()?;
        let replaced: i64 = self.with("replace a token", |connection| {
            Script::new(COMPARE_AND_SET)
                .key(Self::state_key(key))
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.as_ref().map_or("", |(text, _)| text.as_str()))
                .arg(if new.is_some() { "1" } else { "0" })
                .arg(new.as_ref().map_or("", |(text, _)| text.as_str()))
                .arg(new.as_ref().map_or(0, |(_, keep_ms)| *keep_ms))
                .invoke(connection)
        })?;
        Ok(replaced == 1)
    }

    fn lease(&self, key: &str, hold: Duration) -> Result<Box<dyn Lease + '_>> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| anyhow!("the system random generator failed: {e}"))?;
        // The holder's host and process, then the random part that proves
        // it: an operator looking at a stuck lease sees whose it is.
        let token = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        // The renewal's own time, and the Redis calls around it. The lease
        // is taken for a heartbeat at a time, and extended up to that.
        let hold = hold + IO_TIMEOUT * 3;
        let first_ms = millis(hold.min(LEASE_HEARTBEAT_TTL));
        // The holder's lease lapses after `hold`: wait that long, and a
        // little more, for it to be released or to lapse.
        let deadline = Instant::now() + hold + Duration::from_secs(1);
        loop {
            let taken = self.with("take the renewal lease", |connection| {
                redis::cmd("SET")
                    .arg(Self::lease_key(key))
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(first_ms)
                    .query::<Option<String>>(connection)
            });
            // A passing failure (a reconnect) is tried again until the
            // deadline; the last one is the error.
            let taken = match taken {
                Ok(taken) => taken,
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if taken.is_some() {
                let heartbeat = self.keep_alive(key, &token, Instant::now() + hold);
                return Ok(Box::new(RedisLease {
                    store: self,
                    key: key.to_owned(),
                    token,
                    hold,
                    _heartbeat: heartbeat,
                }));
            }
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "the renewal lease in the Redis token store `{}` stayed taken for {} s: another worker's renewal is stuck",
                    self.shown,
                    hold.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl RedisStore {
    /// Extends the lease `token` holds on `key`, one heartbeat at a time,
    /// until `ends` or until the returned sender is dropped. It runs on a
    /// thread of its own, with a connection of its own (opened at the first
    /// beat, so a quick renewal opens none), because the renewal blocks
    /// this one. A failed extension is tried again at the next beat; a
    /// lease found lost stops it.
    fn keep_alive(&self, key: &str, token: &str, ends: Instant) -> mpsc::Sender<()> {
        let (sender, stopped) = mpsc::channel::<()>();
        let client = self.client.clone();
        let lease_key = Self::lease_key(key);
        let token = token.to_owned();
        let spawned = std::thread::Builder::new()
            .name("redis-lease-heartbeat".into())
            .spawn(move || {
                let mut connection: Option<Connection> = None;
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(LEASE_HEARTBEAT_EVERY)
                {
                    let left = ends.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    if connection.is_none() {
                        connection = connect(&client).ok();
                    }
                    let Some(open) = connection.as_mut() else {
                        continue;
                    };
                    let extended: redis::RedisResult<i64> = Script::new(EXTEND)
                        .key(&lease_key)
                        .arg(&token)
                        .arg(millis(left.min(LEASE_HEARTBEAT_TTL)))
                        .invoke(open);
                    match extended {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(_) => connection = None,
                    }
                }
            });
        // Without the thread the lease still works: it lapses after its
        // first heartbeat, and saving under it then fails, naming the lease.
        drop(spawned);
        sender
    }
}

/// A connection whose every command ends within [`IO_TIMEOUT`].
fn connect(client: &Client) -> redis::RedisResult<Connection> {
    let connection = client.get_connection_with_timeout(IO_TIMEOUT)?;
    connection.set_read_timeout(Some(IO_TIMEOUT))?;
    connection.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(connection)
}

/// A duration in whole milliseconds, at least one, as Redis takes them.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// This machine's name, for lease values (`unknown` where it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// A Redis URL with its password replaced, for messages and output.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        // Not even a URL: show its scheme only, as it may hold a password.
        Err(_) => url.split_once("://").map_or_else(
            || "(not a URL)".to_owned(),
            |(scheme, _)| format!("{scheme}://…"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            shown_url("redis://app:s3cret@cache.example:6380/2"),
            "redis://app:***@cache.example:6380/2"
        );
        assert_eq!(
            shown_url("redis://cache.example/0"),
            "redis://cache.example/0"
        );
        assert_eq!(shown_url("redis://app:s3cret@[bad"), "redis://…");
        let error = RedisStore::open("redis://app:s3cret@cache.example:notaport/0")
            .err()
            .expect("malformed")
            .to_string();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(error.contains("redis://"), "{error}");
    }
}
