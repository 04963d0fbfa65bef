//! The Redis store: a fleet of machines sharing tokens (`--store
//! redis://host:port/db`, `rediss://` with TLS, `redis+unix:///socket`;
//! credentials in the URL). Works unchanged against Valkey (`valkey://`,
//! `valkeys://`).
//!
//! Each cache key has three Redis keys under a namespace: the state, with a
//! time to live past its usefulness; the renewal lease, taken with `SET NX
//! PX` and a random value; and the renewal in flight, which says which
//! stored state the holder is renewing and until when. Releasing the lease,
//! saving under it and compare-and-set run as server-side scripts, so each
//! is one atomic step on the server: a worker whose lease lapsed can
//! neither release another's nor overwrite the renewal made under it.
//!
//! A holder keeps its lease alive with a heartbeat on a fixed schedule, so
//! the lease of a worker that died mid-renewal lapses within seconds, not
//! after the renewal's time bound. A lease can still lapse under a living
//! holder (a paused process or machine, a network cut longer than the
//! lease): the holder learns it and does not present or save blindly, and
//! a worker that takes over a lapsed lease and would present the same
//! refresh token first waits out the earlier holder's time bound, unless
//! the stored state changes meanwhile.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, anyhow};
use redis::{Client, Connection, Script};
use serde::{Deserialize, Serialize};

use super::{Lease, TokenStore};
use crate::component::TokenState;
use crate::harness::unix_now;
use crate::lock;

mod lease;

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
    /// A store at a Redis or Valkey URL (`redis://`, `rediss://`,
    /// `valkey://`, `valkeys://`, `redis+unix://`, …). Nothing is connected
    /// yet: a malformed URL fails here, an unreachable server at first use.
    /// Over TLS the system's roots are trusted.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_trusting(url, None)
    }

    /// The same, trusting exactly the CA certificates in `ca_pem` for
    /// `rediss://` (a private CA) instead of the system's roots.
    pub fn open_trusting(url: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        let shown = shown_url(url);
        if url.starts_with("rediss://") || url.starts_with("valkeys://") {
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
                    "the Redis token store `{}` is unreachable ({}): check that Redis runs there and the URL's credentials, or use a file store",
                    self.shown,
                    worded(&e)
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
                "the Redis token store `{}` failed to {what}: {}",
                self.shown,
                worded(&e)
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

    fn renewing_key(key: &str) -> String {
        format!("{NAMESPACE}:{{{key}}}:renewing")
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

    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>> {
        lease::take(self, key, wait)
    }

    fn constant(&self, name: &str, candidate: Option<&str>) -> Result<Option<String>> {
        // No time to live: a constant outlives every state.
        let key = format!("{NAMESPACE}:constant:{name}");
        self.with("read a constant of the store", |connection| {
            if let Some(candidate) = candidate {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(candidate)
                    .arg("NX")
                    .query::<Option<String>>(connection)?;
            }
            redis::cmd("GET").arg(&key).query(connection)
        })
    }
}

/// A connection whose every command ends within [`IO_TIMEOUT`].
fn connect(client: &Client) -> redis::RedisResult<Connection> {
    let connection = client.get_connection_with_timeout(IO_TIMEOUT)?;
    connection.set_read_timeout(Some(IO_TIMEOUT))?;
    connection.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(connection)
}

/// A Redis client error in words: a timeout says how long was waited
/// (the operating system's "resource temporarily unavailable" does not).
fn worded(error: &redis::RedisError) -> String {
    if error.is_timeout() {
        format!("no answer within {} s", IO_TIMEOUT.as_secs())
    } else {
        error.to_string()
    }
}

/// A duration in whole milliseconds, at least one, as Redis takes them.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A Redis URL with its password replaced, for messages and output.
pub(super) fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            } else if !parsed.username().is_empty() {
                // A lone name may be a password written in its place.
                let _ = parsed.set_username("***");
            }
            // A unix socket's password travels in the query.
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(name, value)| {
                        let hidden = matches!(name.as_ref(), "pass" | "password");
                        let value = if hidden {
                            "***".into()
                        } else {
                            value.into_owned()
                        };
                        (name.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
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
        assert_eq!(
            shown_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            shown_url("redis://s3cret@cache.example/0"),
            "redis://***@cache.example/0"
        );
        let error = RedisStore::open("redis://app:s3cret@cache.example:notaport/0")
            .err()
            .expect("malformed")
            .to_string();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(error.contains("redis://"), "{error}");
    }
}
