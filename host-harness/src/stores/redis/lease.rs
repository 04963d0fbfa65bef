//! The Redis store's renewal lease: taken with a script, kept alive by a
//! heartbeat on a fixed schedule, and beside it the renewal in flight that
//! a worker taking over a lapsed lease waits for (see the parent module).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use redis::{Connection, Script};
use serde::{Deserialize, Serialize};

use super::{IO_TIMEOUT, RedisStore, connect, millis};
use crate::component::TokenState;
use crate::lock;
use crate::stores::{Gate, Lease, LeaseSave};

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

/// Takes the renewal lease on `key` for `store`, waiting for another
/// holder's to be released or to lapse: at most about `wait`, and a few
/// seconds while the store fails (as [`crate::stores::TokenStore::lease`]
/// says).
pub(super) fn take<'s>(
    store: &'s RedisStore,
    key: &str,
    wait: Duration,
) -> Result<Box<dyn Lease + 's>> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| anyhow!("the system random generator failed: {e}"))?;
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
        let taken = store.with("take the renewal lease", |connection| {
            Script::new(TAKE)
                .key(RedisStore::lease_key(key))
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
            let heartbeat = keep_alive(store, key, &token, health.clone());
            return Ok(Box::new(RedisLease {
                store,
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
                store.shown,
                (hold + Duration::from_secs(1)).as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Extends the lease `token` holds on `key` on a fixed schedule, every
/// [`LEASE_HEARTBEAT_EVERY`] from now, by [`LEASE_TTL`] at a time, until
/// the health's `ends` or until the returned sender is dropped. It runs
/// on a thread of its own, with a connection of its own (opened at the
/// first beat, so a quick renewal opens none), because the renewal
/// blocks this one. A beat that fails leaves the next one on schedule;
/// a lease found lost stops it, and the holder learns it from `health`.
fn keep_alive(
    store: &RedisStore,
    key: &str,
    token: &str,
    health: Arc<Mutex<LeaseHealth>>,
) -> mpsc::Sender<()> {
    let (sender, stopped) = mpsc::channel::<()>();
    let client = store.client.clone();
    let lease_key = RedisStore::lease_key(key);
    let renewing_key = RedisStore::renewing_key(key);
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
                let beats_so_far = start.elapsed().as_millis() / LEASE_HEARTBEAT_EVERY.as_millis();
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

/// This machine's name, for lease values (`unknown` where it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
