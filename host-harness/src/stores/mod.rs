//! Where token states outlive a call: in memory, in a file shared by
//! every process of the user's on the machine, or in Redis shared by a
//! fleet. [`open`] turns what a user writes (`--store`) into one of them.
//!
//! A store keeps, per cache key, the state the component handed out, as
//! it is; it reads nothing in it but the time after which it may be
//! forgotten. It serialises renewals: a worker renews a key only while it
//! holds that key's [`Lease`], so however many threads and processes share
//! the store, one refresh token is presented once.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::component::TokenState;
use crate::lock;

mod encrypted;
mod file;
mod redis;
mod spec;

pub use encrypted::{AtRest, KEY_VARIABLE, StoreKey};
pub use file::FileStore;
pub use redis::RedisStore;
pub use spec::{StoreOptions, StoreSpec, open};

/// Where token states outlive the process. Implementations must make a
/// saved state durable before `save` returns: the caller hands the access
/// token out only afterwards, so a rotated refresh token is never lost.
pub trait TokenStore: Send + Sync {
    /// The state kept under a cache key, if any.
    fn load(&self, key: &str) -> Result<Option<TokenState>>;
    /// Keeps a state under a cache key, replacing what was there.
    fn save(&self, key: &str, state: &TokenState) -> Result<()>;
    /// Replaces the state under a cache key with `new` (or removes it)
    /// only if the store still holds `expected` (`None`: nothing); says
    /// whether it did. A worker that marks a token spent, or whose lease
    /// lapsed while it renewed, must not overwrite another worker's renewal.
    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool>;
    /// The store's own random secret, which keys the cache keys (an
    /// HMAC): every worker sharing the store reads the same, and whoever
    /// reads only the keys learns nothing about the credentials.
    fn secret(&self) -> Result<Vec<u8>>;
    /// A value the store keeps for good under `name`, apart from the
    /// states and never expiring: with a `candidate`, it is set if none is
    /// there yet, in one atomic step, so that of two workers starting at
    /// once only one sets it; then, or without a candidate, what is there.
    fn constant(&self, name: &str, candidate: Option<&str>) -> Result<Option<String>>;
    /// Waits at most `wait` for the renewal lease on a cache key: one
    /// holder at a time, released when the returned guard is dropped or
    /// when its holder dies. Fails naming the store when the wait runs out.
    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>>;
}

/// A held renewal lease; dropping it releases it.
pub trait Lease: Send {
    /// Says that the holder is about to renew `from` (the state as the
    /// store holds it, if any) by presenting the refresh token `presented`
    /// identifies (an opaque digest; `None` when no refresh token is
    /// presented), in a request that takes at most `bound`. Fails when the
    /// lease is no longer held with a margin: the holder must then not
    /// present.
    ///
    /// A lease that can lapse while its holder lives (Redis: a paused
    /// process, a lost heartbeat) keeps this beside the lease, and a later
    /// holder that would present the same refresh token first waits out
    /// the earlier holder's bound, unless the stored state changes
    /// meanwhile ([`Gate::Changed`]).
    fn presenting(
        &self,
        from: Option<&TokenState>,
        presented: Option<&[u8]>,
        bound: Duration,
    ) -> Result<Gate> {
        let _ = (from, presented, bound);
        Ok(Gate::Present)
    }

    /// Keeps the state renewed under this lease, durably, before the token
    /// is used. Saves nothing when the lease lapsed meanwhile
    /// ([`LeaseSave::Lapsed`]): a holder that stalled past it must not
    /// overwrite a newer renewal blindly, but may compare-and-set over the
    /// state it read under the lease.
    fn save(&self, state: &TokenState) -> Result<LeaseSave>;
}

/// What became of a save under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseSave {
    /// The state is stored.
    Saved,
    /// Nothing was saved: the lease had lapsed, for the reason given (in
    /// words, naming the store).
    Lapsed(String),
}

/// What a holder about to present a refresh token does.
#[derive(Debug)]
pub enum Gate {
    /// Present it.
    Present,
    /// Another holder renewed it meanwhile: use the state stored now.
    Changed(Option<TokenState>),
}

/// A store shared by several managers (one per worker, say).
impl<T: TokenStore + ?Sized> TokenStore for std::sync::Arc<T> {
    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        (**self).load(key)
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        (**self).save(key, state)
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool> {
        (**self).replace_if_unchanged(key, expected, new)
    }

    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>> {
        (**self).lease(key, wait)
    }

    fn secret(&self) -> Result<Vec<u8>> {
        (**self).secret()
    }

    fn constant(&self, name: &str, candidate: Option<&str>) -> Result<Option<String>> {
        (**self).constant(name, candidate)
    }
}

/// 32 fresh random bytes: a new store's secret.
pub(crate) fn new_secret() -> Result<Vec<u8>> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow!("the system random generator failed: {e}"))?;
    Ok(secret)
}

/// A store that forgets everything when the process ends (`--no-store`).
#[derive(Default)]
pub struct MemoryStore {
    states: Mutex<HashMap<String, TokenState>>,
    /// The keys whose lease is held, and a signal when one is released.
    leased: Mutex<std::collections::HashSet<String>>,
    released: Condvar,
    secret: std::sync::OnceLock<Vec<u8>>,
    constants: Mutex<HashMap<String, String>>,
}

/// A lease on a key of a [`MemoryStore`].
struct MemoryLease<'s> {
    store: &'s MemoryStore,
    key: String,
}

impl Lease for MemoryLease<'_> {
    fn save(&self, state: &TokenState) -> Result<LeaseSave> {
        // Held until dropped: it cannot lapse.
        self.store.save(&self.key, state)?;
        Ok(LeaseSave::Saved)
    }
}

impl Drop for MemoryLease<'_> {
    fn drop(&mut self) {
        lock(&self.store.leased).remove(&self.key);
        self.store.released.notify_all();
    }
}

impl TokenStore for MemoryStore {
    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        Ok(lock(&self.states).get(key).cloned())
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        lock(&self.states).insert(key.to_owned(), state.clone());
        Ok(())
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool> {
        let mut states = lock(&self.states);
        if states.get(key) != expected {
            return Ok(false);
        }
        match new {
            Some(new) => states.insert(key.to_owned(), new.clone()),
            None => states.remove(key),
        };
        Ok(true)
    }

    fn secret(&self) -> Result<Vec<u8>> {
        if let Some(secret) = self.secret.get() {
            return Ok(secret.clone());
        }
        let fresh = new_secret()?;
        Ok(self.secret.get_or_init(|| fresh).clone())
    }

    fn constant(&self, name: &str, candidate: Option<&str>) -> Result<Option<String>> {
        let mut constants = lock(&self.constants);
        if let Some(candidate) = candidate {
            constants
                .entry(name.to_owned())
                .or_insert_with(|| candidate.to_owned());
        }
        Ok(constants.get(name).cloned())
    }

    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>> {
        let deadline = Instant::now() + wait;
        let mut leased = lock(&self.leased);
        while leased.contains(key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(anyhow!(
                    "the in-memory token store's renewal lease stayed taken for {} s",
                    wait.as_secs()
                ));
            }
            leased = self
                .released
                .wait_timeout(leased, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        leased.insert(key.to_owned());
        Ok(Box::new(MemoryLease {
            store: self,
            key: key.to_owned(),
        }))
    }
}
