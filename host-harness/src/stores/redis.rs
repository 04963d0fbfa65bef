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

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use redis::{Client, Connection, Script};
use serde::{Deserialize, Serialize};

use super::{Gate, Lease, LeaseSave, TokenStore};
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

/// How often a living holder extends its lease, on a fixed schedule: a
/// beat that takes long (a connection and a command, each up to
/// [`IO_TIMEOUT`]) does not push the next one later.
const LEASE_HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// How long a lease lives unless its holder extends it: three beats, each
/// of which may fail after its IO timeout, so one lost packet or a slow
/// reconnect never ends a living holder's lease. It is also the longest a
/// worker that died mid-renewal (killed, its machine gone) holds the others
/// up, unless it was presenting a refresh token.
const LEASE_TTL: Duration =
    Duration::from_secs(3 * (LEASE_HEARTBEAT_EVERY.as_secs() + IO_TIMEOUT.as_secs()));

/// What a holder needs left on its lease to present a refresh token: one
/// more beat, with its IO, to learn whether it still holds it.
const PRESENTING_MARGIN: Duration =
    Duration::from_secs(LEASE_HEARTBEAT_EVERY.as_secs() + IO_TIMEOUT.as_secs());

/// How long taking a lease tries again while the store fails, before the
/// failure is the answer: a reconnect, not an outage.
const STORE_DOWN: Duration = Duration::from_secs(3 * IO_TIMEOUT.as_secs());

/// How often a holder waiting out an earlier holder's renewal reads the
/// stored state again.
const WAIT_POLL: Duration = Duration::from_millis(200);

/// Takes the lease for `ARGV[1]` for `ARGV[2]` ms if it is free, or
/// already this holder's (a take whose answer was lost); 1 if taken.
const TAKE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

/// Extends the lease by `ARGV[2]` ms only if it is still this holder's,
/// and its renewal in flight to at least as long: a living holder that is
/// still saving is still waited for.
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local renewing = redis.call('GET', KEYS[2])
  if renewing and string.sub(renewing, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '\n'
     and redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
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

/// Releases the lease, and the renewal in flight it recorded, only if they
/// are still this holder's (the renewal's value starts with its holder).
const RELEASE: &str = r"
local renewing = redis.call('GET', KEYS[2])
if renewing and string.sub(renewing, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '\n' then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Records the renewal in flight (`ARGV[2]`, for `ARGV[3]` ms) only if the
/// lease is still this holder's.
const RECORD_RENEWAL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
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

/// A held lease in Redis: its random value proves the holder.
struct RedisLease<'s> {
    store: &'s RedisStore,
    key: String,
    token: String,
    taken: Instant,
    /// What the heartbeat knows of the lease, shared with it.
    health: Arc<Mutex<LeaseHealth>>,
    /// Dropped with the lease, which stops the heartbeat.
    _heartbeat: mpsc::Sender<()>,
}

/// What a lease's holder and its heartbeat know of the lease.
struct LeaseHealth {
    /// Until when the lease is surely held: when the last take or
    /// extension was sent, plus the time to live it set.
    held_until: Instant,
    /// When the heartbeat stops extending it: the holder's time bound.
    ends: Instant,
    /// Set when an extension found the lease gone (lapsed, or another
    /// worker's): the heartbeat has stopped.
    lost: bool,
    /// The heartbeat's last failure to reach Redis, if its last beat failed.
    failing: Option<String>,
}

/// A renewal in flight as Redis keeps it beside the lease (after its
/// holder's lease value and a newline). It lives, by Redis's clock, for as
/// long as its holder may still be renewing, and as long as its heartbeat
/// keeps the lease: no two machines' clocks are compared.
#[derive(Serialize, Deserialize)]
struct InFlight {
    /// What identifies the refresh token being presented (hex of the
    /// caller's digest; never the token).
    presented: String,
}

impl RedisLease<'_> {
    /// Why the lease is no longer held, in words, for messages.
    fn why_lapsed(&self) -> String {
        let health = lock(&self.health);
        let after = self.taken.elapsed().as_secs();
        let shown = &self.store.shown;
        if health.lost {
            format!(
                "the renewal lease in the Redis token store `{shown}` was lost {after} s after it was taken (found lapsed or taken by another worker)"
            )
        } else if let Some(failure) = &health.failing {
            format!(
                "the renewal lease in the Redis token store `{shown}` lapsed {after} s after it was taken: its heartbeat could not reach Redis ({failure})"
            )
        } else {
            format!(
                "the renewal lease in the Redis token store `{shown}` lapsed {after} s after it was taken: this process was paused, or too slow to extend it, for longer than the lease's {} s",
                LEASE_TTL.as_secs()
            )
        }
    }

    /// Fails unless the lease is surely held for at least `margin` more.
    fn confirm_held(&self, margin: Duration) -> Result<()> {
        let health = lock(&self.health);
        if !health.lost && health.held_until >= Instant::now() + margin {
            return Ok(());
        }
        drop(health);
        Err(anyhow!(
            "{}: the refresh token was not presented; try again",
            self.why_lapsed()
        ))
    }

    /// Whether `renewing` is an earlier holder's renewal presenting the
    /// refresh token `presented` identifies, which may still be under way.
    fn earlier_renewal(&self, renewing: Option<&str>, presented: &str) -> bool {
        renewing
            .and_then(|renewing| renewing.split_once('\n'))
            .and_then(|(holder, record)| {
                let record: InFlight = serde_json::from_str(record).ok()?;
                Some(holder != self.token && record.presented == presented)
            })
            .unwrap_or(false)
    }
}

impl Lease for RedisLease<'_> {
    fn presenting(
        &self,
        from: Option<&TokenState>,
        presented: Option<&[u8]>,
        bound: Duration,
    ) -> Result<Gate> {
        let Some(presented) = presented else {
            // No refresh token is presented: nothing to wait for or record.
            self.confirm_held(PRESENTING_MARGIN)?;
            return Ok(Gate::Present);
        };
        let from_text = from
            .map(RedisStore::encode)
            .transpose()?
            .map(|(text, _)| text);
        let digest: String = presented.iter().map(|b| format!("{b:02x}")).collect();
        let state_key = RedisStore::state_key(&self.key);
        let renewing_key = RedisStore::renewing_key(&self.key);
        // An earlier holder whose lease lapsed (paused, cut off) may still
        // be presenting this same refresh token: wait out its bound, unless
        // the stored state changes first (the caller then looks again).
        loop {
            let (renewing, current): (Option<String>, Option<String>) =
                self.store
                    .with("read the renewal in flight", |connection| {
                        redis::pipe()
                            .cmd("GET")
                            .arg(&renewing_key)
                            .cmd("GET")
                            .arg(&state_key)
                            .query(connection)
                    })?;
            if current != from_text {
                let current = current.map(|text| self.store.decode(&text)).transpose()?;
                return Ok(Gate::Changed(current));
            }
            if !self.earlier_renewal(renewing.as_deref(), &digest) {
                break;
            }
            self.confirm_held(IO_TIMEOUT)?;
            std::thread::sleep(WAIT_POLL);
        }
        self.confirm_held(PRESENTING_MARGIN)?;
        // This holder's own renewal in flight, for whoever takes the lease
        // if it lapses: for as long as its request may take, and the save.
        let hold = bound + IO_TIMEOUT * 3;
        let record = serde_json::to_string(&InFlight { presented: digest })?;
        let recorded: i64 = self
            .store
            .with("record the renewal in flight", |connection| {
                Script::new(RECORD_RENEWAL)
                    .key(RedisStore::lease_key(&self.key))
                    .key(&renewing_key)
                    .arg(&self.token)
                    .arg(format!("{}\n{record}", self.token))
                    .arg(millis(hold))
                    .invoke(connection)
            })?;
        if recorded != 1 {
            lock(&self.health).lost = true;
            return Err(anyhow!(
                "{}: the refresh token was not presented; try again",
                self.why_lapsed()
            ));
        }
        Ok(Gate::Present)
    }

    fn save(&self, state: &TokenState) -> Result<LeaseSave> {
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
            Ok(LeaseSave::Saved)
        } else {
            lock(&self.health).lost = true;
            Ok(LeaseSave::Lapsed(self.why_lapsed()))
        }
    }
}

impl Drop for RedisLease<'_> {
    fn drop(&mut self) {
        // Not released (Redis down): it lapses by itself.
        let _ = self.store.with("release the renewal lease", |connection| {
            Script::new(RELEASE)
                .key(RedisStore::lease_key(&self.key))
                .key(RedisStore::renewing_key(&self.key))
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

    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>> {
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
        // Until the holder says what it presents, its lease is extended up
        // to `wait` (and the Redis calls around it): no holder waits longer
        // for an earlier one than a waiter waits for it.
        let hold = wait + IO_TIMEOUT * 3;
        let first_ms = millis(hold.min(LEASE_TTL));
        // Another holder's lease lapses at the latest after as long, and a
        // little more: wait that long for it to be released or to lapse.
        let deadline = Instant::now() + hold + Duration::from_secs(1);
        let mut failing_since: Option<Instant> = None;
        loop {
            let sent = Instant::now();
            let taken = self.with("take the renewal lease", |connection| {
                Script::new(TAKE)
                    .key(Self::lease_key(key))
                    .arg(&token)
                    .arg(first_ms)
                    .invoke::<i64>(connection)
            });
            // A passing failure (a reconnect) is tried again for a few
            // seconds; a store that stays down is the error. (A take whose
            // answer was lost is found to be this holder's at the next try.)
            let taken = match taken {
                Ok(taken) => {
                    failing_since = None;
                    taken == 1
                }
                Err(error)
                    if Instant::now() >= deadline
                        || failing_since.is_some_and(|since| since.elapsed() >= STORE_DOWN) =>
                {
                    return Err(error);
                }
                Err(_) => {
                    failing_since.get_or_insert(sent);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if taken {
                let health = Arc::new(Mutex::new(LeaseHealth {
                    held_until: sent + Duration::from_millis(first_ms),
                    ends: sent + hold,
                    lost: false,
                    failing: None,
                }));
                let heartbeat = self.keep_alive(key, &token, health.clone());
                return Ok(Box::new(RedisLease {
                    store: self,
                    key: key.to_owned(),
                    token,
                    taken: sent,
                    health,
                    _heartbeat: heartbeat,
                }));
            }
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "the renewal lease in the Redis token store `{}` stayed taken for {} s: another worker's renewal is stuck",
                    self.shown,
                    (hold + Duration::from_secs(1)).as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

impl RedisStore {
    /// Extends the lease `token` holds on `key` on a fixed schedule, every
    /// [`LEASE_HEARTBEAT_EVERY`] from now, by [`LEASE_TTL`] at a time, until
    /// the health's `ends` or until the returned sender is dropped. It runs
    /// on a thread of its own, with a connection of its own (opened at the
    /// first beat, so a quick renewal opens none), because the renewal
    /// blocks this one. A beat that fails leaves the next one on schedule;
    /// a lease found lost stops it, and the holder learns it from `health`.
    fn keep_alive(
        &self,
        key: &str,
        token: &str,
        health: Arc<Mutex<LeaseHealth>>,
    ) -> mpsc::Sender<()> {
        let (sender, stopped) = mpsc::channel::<()>();
        let client = self.client.clone();
        let lease_key = Self::lease_key(key);
        let renewing_key = Self::renewing_key(key);
        let token = token.to_owned();
        let spawned = std::thread::Builder::new()
            .name("redis-lease-heartbeat".into())
            .spawn(move || {
                let start = Instant::now();
                let mut connection: Option<Connection> = None;
                let mut beat: u32 = 1;
                loop {
                    let due = start + LEASE_HEARTBEAT_EVERY * beat;
                    match stopped.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    // The next beat is the next one due from the start,
                    // however long this one takes.
                    let beats_so_far =
                        start.elapsed().as_millis() / LEASE_HEARTBEAT_EVERY.as_millis();
                    beat = u32::try_from(beats_so_far).unwrap_or(u32::MAX - 1) + 1;
                    let left = lock(&health).ends.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    if connection.is_none() {
                        match connect(&client) {
                            Ok(opened) => connection = Some(opened),
                            Err(e) => {
                                lock(&health).failing = Some(e.to_string());
                                continue;
                            }
                        }
                    }
                    let Some(open) = connection.as_mut() else {
                        continue;
                    };
                    let ttl = left.min(LEASE_TTL);
                    let sent = Instant::now();
                    let extended: redis::RedisResult<i64> = Script::new(EXTEND)
                        .key(&lease_key)
                        .key(&renewing_key)
                        .arg(&token)
                        .arg(millis(ttl))
                        .invoke(open);
                    let mut health = lock(&health);
                    match extended {
                        Ok(0) => {
                            health.lost = true;
                            return;
                        }
                        Ok(_) => {
                            health.held_until = health.held_until.max(sent + ttl);
                            health.failing = None;
                        }
                        Err(e) => {
                            health.failing = Some(e.to_string());
                            connection = None;
                        }
                    }
                }
            });
        // Without the thread the lease still works: it lapses after its
        // first time to live, and the holder, finding it so, neither
        // presents nor saves under it.
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

/// This machine's name, for lease values (`unknown` where it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
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
