//! The token loop, as the component's `connection` documents it: ask what
//! to do next, do it, store what comes back before using it, ask again.
//!
//! This module performs IO only: it keeps the states the component hands
//! out (in memory and in a [`TokenStore`]), lets one caller per cache key
//! renew while the others wait for its outcome, and sends requests. Which
//! token to use, when and how to renew it, and what an API's refusal means
//! are the component's answers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::anyhow;

use crate::component::{
    Connection, ObtainedToken, Renewal, Request, Response, Step, TokenFetch, TokenState,
    TokenTypeHint, Verdict,
};
use crate::harness::{Harness, TokenError};
use crate::lock;
use crate::stores::{Gate, Lease, LeaseSave, TokenStore};

/// How many times one call asks `next` before giving up: enough for a
/// renewal, a store that changed meanwhile and a retry.
const MAX_STEPS: usize = 6;

/// How many times a renewed state is offered to a failing store before it
/// is reported unsaved, and the pause between tries.
const SAVE_TRIES: u32 = 3;
const SAVE_RETRY_PAUSE: Duration = Duration::from_millis(300);

/// Where a token handed out came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// This process's cache.
    Cache,
    /// The token store, from an earlier run or another process.
    Store,
    /// A new token with the configured grant.
    Fetched,
    /// A new token with the refresh token.
    Refreshed,
    /// The configured grant after the server refused the refresh token.
    FetchedAfterRefreshFailed,
    /// Another caller's request, which this one waited for.
    Shared,
}

impl TokenSource {
    fn of(renewal: Renewal) -> Self {
        match renewal {
            Renewal::Refresh => TokenSource::Refreshed,
            Renewal::ConfiguredGrantAfterRefusedRefresh => TokenSource::FetchedAfterRefreshFailed,
            Renewal::ConfiguredGrant | Renewal::CodeExchange => TokenSource::Fetched,
        }
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenSource::Cache => "from the cache",
            TokenSource::Store => "from the token store",
            TokenSource::Fetched => "fetched with the configured grant",
            TokenSource::Refreshed => "renewed with the refresh token",
            TokenSource::FetchedAfterRefreshFailed => {
                "fetched with the configured grant after the server refused the refresh token"
            }
            TokenSource::Shared => "shared from another caller's request",
        })
    }
}

/// A failure to obtain a token, shared by every caller that waited for
/// the same request.
pub type SharedTokenError = Arc<TokenError>;

type Outcome = Result<TokenSource, SharedTokenError>;

/// One renewal under way, and its outcome once there.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

#[derive(Default)]
struct Cache {
    states: HashMap<String, TokenState>,
    flights: HashMap<String, Arc<Flight>>,
    /// Keys whose state the store refused, with the stored state its
    /// renewal started from: kept here so that nothing is lost, used only
    /// once a save succeeds, and saved only over that state.
    unsaved: HashMap<String, Option<TokenState>>,
}

/// Publishes a leader's outcome to the waiters, and an error if the leader
/// never got that far (it panicked), so that no one waits forever.
struct FlightGuard<'m> {
    manager: &'m TokenManager,
    key: &'m str,
    flight: Arc<Flight>,
    published: bool,
}

impl FlightGuard<'_> {
    fn publish(mut self, outcome: Outcome) -> Outcome {
        self.finish(outcome.clone());
        outcome
    }

    fn finish(&mut self, outcome: Outcome) {
        self.published = true;
        lock(&self.manager.cache).flights.remove(self.key);
        *lock(&self.flight.outcome) = Some(outcome);
        self.flight.done.notify_all();
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.finish(Err(Arc::new(TokenError::Host(anyhow!(
                "the token request was abandoned: try again"
            )))));
        }
    }
}

/// An API response and what happened on the way to it.
#[derive(Debug)]
pub struct CallOutcome {
    /// The final response.
    pub response: Response,
    /// Each step, in words and without secrets, for `--verbose`.
    pub steps: Vec<String>,
}

/// Tokens for any number of configurations and callers: the component's
/// token loop with a cache, a store and one renewal at a time per key.
pub struct TokenManager {
    harness: Harness,
    store: Box<dyn TokenStore>,
    cache: Mutex<Cache>,
    /// The longest one token request takes.
    request_bound: Duration,
    /// How long a renewal waits for another worker's lease: that worker may
    /// first wait out an earlier holder's renewal, then renew.
    lease_wait: Duration,
    /// The store's secret, which keys the cache keys; read once.
    store_secret: std::sync::OnceLock<Vec<u8>>,
}

fn host(error: anyhow::Error) -> SharedTokenError {
    Arc::new(TokenError::Host(error))
}

impl TokenManager {
    /// A manager sending requests through `harness` and keeping states in
    /// `store`.
    pub fn new(harness: Harness, store: Box<dyn TokenStore>) -> Self {
        let renewal_bound = harness.renewal_time_bound();
        Self {
            request_bound: harness.request_time_bound(),
            harness,
            store,
            cache: Mutex::new(Cache::default()),
            lease_wait: renewal_bound * 2,
            store_secret: std::sync::OnceLock::new(),
        }
    }

    /// The harness the manager sends requests through.
    pub fn harness(&self) -> &Harness {
        &self.harness
    }

    /// The cache key of a configuration, from the component, keyed by the
    /// store's secret.
    pub fn cache_key(&self, config: &str) -> Result<String, SharedTokenError> {
        self.key(&*self.connection(config)?)
    }

    /// The key under which a connection's state is kept in this store.
    fn key(&self, connection: &Connection) -> Result<String, SharedTokenError> {
        let secret = match self.store_secret.get() {
            Some(secret) => secret,
            None => {
                let secret = self.store.secret().map_err(host)?;
                self.store_secret.get_or_init(|| secret)
            }
        };
        connection.cache_key(secret).map_err(host)
    }

    fn connection(&self, config: &str) -> Result<Arc<Connection>, SharedTokenError> {
        self.harness.connection(config).map_err(Arc::new)
    }

    /// Calls an API with a token: the component authorizes the request,
    /// the manager sends it, and when the component's verdict on the
    /// response is to renew the token, stores the spent state, renews and
    /// retries once.
    pub fn call(&self, config: &str, request: &Request) -> Result<CallOutcome, SharedTokenError> {
        let connection = self.connection(config)?;
        let key = &self.key(&connection)?;
        let mut steps = Vec::new();
        let mut retried = false;
        loop {
            let (authorized, used, source) = self.authorized(&connection, key, request)?;
            steps.push(format!("token {source}"));
            let response = self.harness.send(&authorized).map_err(host)?;
            steps.push(format!(
                "{} {} answered HTTP {}",
                request.method,
                crate::http_client::shown_url(&request.url),
                response.status
            ));
            match connection.judge(&response, &used, retried).map_err(host)? {
                Verdict::RenewAndRetry(spent) if !retried => {
                    steps.push("the API refused the token: renewing it and retrying once".into());
                    self.replace(key, &used, Some(&spent))?;
                    retried = true;
                }
                _ => return Ok(CallOutcome { response, steps }),
            }
        }
    }

    /// The API request with a token in it, and where the token came from:
    /// what [`TokenManager::call`] does before it sends.
    pub fn authorize(
        &self,
        config: &str,
        request: &Request,
    ) -> Result<(Request, TokenSource), SharedTokenError> {
        let connection = self.connection(config)?;
        let key = self.key(&connection)?;
        let (authorized, _, source) = self.authorized(&connection, &key, request)?;
        Ok((authorized, source))
    }

    /// The token a call would use now, and where it came from: what
    /// [`TokenManager::call`] does before it sends, for a request to no
    /// API in particular.
    pub fn token(&self, config: &str) -> Result<(ObtainedToken, TokenSource), SharedTokenError> {
        let connection = self.connection(config)?;
        let nowhere = Request {
            method: "GET".into(),
            url: "https://localhost/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let key = self.key(&connection)?;
        let (_, used, source) = self.authorized(&connection, &key, &nowhere)?;
        let token = self
            .harness
            .describe(&connection, &used)
            .map_err(Arc::new)?;
        Ok((token, source))
    }

    /// Asks the component what to do until it hands back the request with
    /// a token in it: the authorized request, the state it used, and where
    /// that state came from.
    fn authorized(
        &self,
        connection: &Connection,
        key: &str,
        request: &Request,
    ) -> Result<(Request, TokenState, TokenSource), SharedTokenError> {
        let mut source = TokenSource::Cache;
        for _ in 0..MAX_STEPS {
            let held = self.held(key, &mut source)?;
            let cx = self.harness.context().map_err(host)?;
            let step = connection
                .next(request, held.as_ref(), &cx)
                .map_err(host)?
                .map_err(|failure| Arc::new(TokenError::Connector(failure)))?;
            match step {
                Step::Send(authorized) => {
                    let used = held.ok_or_else(|| {
                        host(anyhow!(
                            "the component authorized a request without a token state"
                        ))
                    })?;
                    self.store_unsaved(connection, key)?;
                    // Storing found a newer state (another worker's): use that.
                    if lock(&self.cache).states.get(key) != Some(&used) {
                        source = TokenSource::Store;
                        continue;
                    }
                    return Ok((authorized, used, source));
                }
                Step::Fetch(fetch) => {
                    source = self.renew(connection, key, held.as_ref(), fetch)?;
                }
                Step::LogIn(reason) => {
                    return Err(host(anyhow!(
                        "{reason}: log in first (`oauth-harness login` or `exchange` keeps the token for this configuration)"
                    )));
                }
            }
        }
        Err(host(anyhow!(
            "no usable token after {MAX_STEPS} steps: the authorization server's tokens are refused or expire at once"
        )))
    }

    /// The state held for a key: this process's, else the store's.
    fn held(
        &self,
        key: &str,
        source: &mut TokenSource,
    ) -> Result<Option<TokenState>, SharedTokenError> {
        if let Some(state) = lock(&self.cache).states.get(key) {
            return Ok(Some(state.clone()));
        }
        let stored = self.store.load(key).map_err(host)?;
        if let Some(stored) = &stored {
            lock(&self.cache)
                .states
                .entry(key.to_owned())
                .or_insert_with(|| stored.clone());
            *source = TokenSource::Store;
        }
        Ok(stored)
    }

    /// The state the store refused earlier — this process's newest, always
    /// the cache's — is stored before any state for the key is used or
    /// renewed: its refresh token may be the only live one.
    fn store_unsaved(&self, connection: &Connection, key: &str) -> Result<(), SharedTokenError> {
        let pending = {
            let cache = lock(&self.cache);
            cache
                .unsaved
                .get(key)
                .and_then(|base| Some((base.clone(), cache.states.get(key)?.clone())))
        };
        let Some((base, state)) = pending else {
            return Ok(());
        };
        // Under the lease, and only over the state its renewal started
        // from (or one with the same refresh token): a worker that renewed
        // since holds the newer token.
        let lease = self.store.lease(key, self.lease_wait).map_err(host)?;
        let replaced = self
            .save_over(connection, key, base.as_ref(), &state)
            .map_err(|e| {
                host(e.context(
                    "the token is still not stored, so it is not used: a rotated refresh token would be lost",
                ))
            })?
            .is_some();
        let latest = if replaced {
            None
        } else {
            self.store.load(key).map_err(host)?
        };
        drop(lease);
        let mut cache = lock(&self.cache);
        if cache.states.get(key) == Some(&state) {
            cache.unsaved.remove(key);
            if !replaced {
                // The store moved on past this state: its own is newer.
                match latest {
                    Some(latest) => cache.states.insert(key.to_owned(), latest),
                    None => cache.states.remove(key),
                };
            }
        }
        Ok(())
    }

    /// What identifies the refresh token a state would present, without
    /// holding it: an HMAC of it under the store's secret. Two states that
    /// differ only in what the component noted about their access token
    /// (spent, say) have the same. `None` when the state has no refresh
    /// token.
    fn refresh_token_id(&self, connection: &Connection, state: &TokenState) -> Option<Vec<u8>> {
        use hmac::{Hmac, Mac as _};
        let refresh_token = self
            .harness
            .describe(connection, state)
            .ok()?
            .refresh_token?;
        let secret = self.store_secret.get()?;
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac =
            <Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret).expect("any key length");
        mac.update(refresh_token.expose().as_bytes());
        Some(mac.finalize().into_bytes().to_vec())
    }

    /// Renews the token for a key: one caller sends the fetch, the others
    /// wait for its outcome. Returns where the new state came from.
    fn renew(
        &self,
        connection: &Connection,
        key: &str,
        held: Option<&TokenState>,
        fetch: TokenFetch,
    ) -> Result<TokenSource, SharedTokenError> {
        let leader = {
            let mut cache = lock(&self.cache);
            match cache.flights.get(key) {
                Some(flight) => Err(flight.clone()),
                None => {
                    let flight = Arc::new(Flight::default());
                    cache.flights.insert(key.to_owned(), flight.clone());
                    Ok(flight)
                }
            }
        };
        match leader {
            Err(flight) => {
                let mut outcome = lock(&flight.outcome);
                while outcome.is_none() {
                    outcome = flight
                        .done
                        .wait(outcome)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                match outcome.as_ref() {
                    Some(Ok(_)) => Ok(TokenSource::Shared),
                    Some(Err(error)) => Err(error.clone()),
                    None => unreachable!("the loop above waits for an outcome"),
                }
            }
            Ok(flight) => {
                let guard = FlightGuard {
                    manager: self,
                    key,
                    flight,
                    published: false,
                };
                guard.publish(self.lead(connection, key, held, fetch))
            }
        }
    }

    /// The renewal itself: unless the store meanwhile holds another state
    /// (another process renewed), send the fetch and store the new state
    /// before anyone may use it.
    fn lead(
        &self,
        connection: &Connection,
        key: &str,
        held: Option<&TokenState>,
        fetch: TokenFetch,
    ) -> Outcome {
        self.store_unsaved(connection, key)?;
        // Another caller of this process may have replaced the state since
        // this one read it: then ask the component again about that one.
        if lock(&self.cache).states.get(key) != held {
            return Ok(TokenSource::Cache);
        }
        // One renewal at a time across every worker sharing the store; a
        // worker that waited finds the holder's renewal in the store.
        let lease = self.store.lease(key, self.lease_wait).map_err(host)?;
        // Another worker may have renewed: use its state rather than
        // present a refresh token it may have spent.
        let latest = self.store.load(key).map_err(host)?;
        if let Some(stored) = &latest
            && Some(stored) != held
        {
            lock(&self.cache)
                .states
                .insert(key.to_owned(), stored.clone());
            return Ok(TokenSource::Store);
        }
        // A holder whose lease lapsed (paused, cut off) may still be
        // presenting this state's refresh token: the store says whether to
        // wait for it, and what it stored meanwhile.
        let presented = held.and_then(|held| self.refresh_token_id(connection, held));
        if let Gate::Changed(current) = lease
            .presenting(latest.as_ref(), presented.as_deref(), self.request_bound)
            .map_err(host)?
        {
            let mut cache = lock(&self.cache);
            match current {
                Some(current) => cache.states.insert(key.to_owned(), current),
                None => cache.states.remove(key),
            };
            return Ok(TokenSource::Store);
        }
        let (state, renewal) = self
            .harness
            .fetch(connection, fetch, held)
            .map_err(Arc::new)?;
        // Stored under the lease and outside the cache's lock: other keys
        // need not wait for the disk, callers of this key wait for this
        // flight, other processes for the lease.
        let saved = self.save_under(connection, &*lease, key, latest.as_ref(), &state);
        drop(lease);
        let mut cache = lock(&self.cache);
        cache.states.insert(key.to_owned(), state);
        if let Err(error) = saved {
            // Kept in memory, marked, so the refresh token survives for as
            // long as this process does and the save is tried again first.
            cache.unsaved.insert(key.to_owned(), latest);
            return Err(host(error.context(
                "the new token could not be stored, so it is not used yet: a rotated refresh token would be lost",
            )));
        }
        cache.unsaved.remove(key);
        Ok(TokenSource::of(renewal))
    }

    /// Saves a state under the lease; if the lease lapsed meanwhile, saves
    /// it only over `read`, the state read under the lease (or a state
    /// with the same refresh token): unless another worker renewed since,
    /// nothing newer is there to overwrite. A store that fails (a dropped
    /// packet, a restart) is tried again a few times first: the state may
    /// hold the only live refresh token.
    fn save_under(
        &self,
        connection: &Connection,
        lease: &dyn Lease,
        key: &str,
        read: Option<&TokenState>,
        state: &TokenState,
    ) -> anyhow::Result<()> {
        let mut tries = 0;
        loop {
            tries += 1;
            let attempt = match lease.save(state) {
                Ok(LeaseSave::Saved) => return Ok(()),
                Ok(LeaseSave::Lapsed(why)) => {
                    self.save_over(connection, key, read, state).map(|saved| {
                        saved.ok_or_else(|| {
                            anyhow!("{why}, and another worker stored a token since")
                        })
                    })
                }
                // The save may have reached the store although its answer
                // did not: then the state read is there no more.
                Err(error) => match self.save_over(connection, key, read, state) {
                    Ok(Some(())) => return Ok(()),
                    _ => Err(error),
                },
            };
            match attempt {
                Ok(outcome) => return outcome,
                Err(error) if tries >= SAVE_TRIES => return Err(error),
                Err(_) => std::thread::sleep(SAVE_RETRY_PAUSE),
            }
        }
    }

    /// Compare-and-set of `state` over `read`, or over what the store holds
    /// now if that still has `read`'s refresh token (another worker only
    /// noted that its access token was refused): `Some` if the store holds
    /// `state` now, `None` if it holds another renewal.
    fn save_over(
        &self,
        connection: &Connection,
        key: &str,
        read: Option<&TokenState>,
        state: &TokenState,
    ) -> anyhow::Result<Option<()>> {
        if self.store.replace_if_unchanged(key, read, Some(state))? {
            return Ok(Some(()));
        }
        let Some(current) = self.store.load(key)? else {
            return Ok(None);
        };
        if &current == state {
            return Ok(Some(()));
        }
        let same_refresh_token = read.is_some_and(|read| {
            let read_id = self.refresh_token_id(connection, read);
            read_id.is_some() && read_id == self.refresh_token_id(connection, &current)
        });
        if same_refresh_token
            && self
                .store
                .replace_if_unchanged(key, Some(&current), Some(state))?
        {
            return Ok(Some(()));
        }
        Ok(None)
    }

    /// Replaces a used state (spent, revoked) in the cache and the store,
    /// unless another caller or process replaced it meanwhile.
    fn replace(
        &self,
        key: &str,
        used: &TokenState,
        new: Option<&TokenState>,
    ) -> Result<(), SharedTokenError> {
        {
            let mut cache = lock(&self.cache);
            if cache.states.get(key) == Some(used) {
                match new {
                    Some(new) => cache.states.insert(key.to_owned(), new.clone()),
                    None => {
                        cache.unsaved.remove(key);
                        cache.states.remove(key)
                    }
                };
            }
        }
        self.store
            .replace_if_unchanged(key, Some(used), new)
            .map_err(host)?;
        Ok(())
    }

    /// Keeps a state obtained outside the loop (a browser login) under its
    /// configuration's key, in the store before anything else: under the
    /// lease, so that a renewal in flight elsewhere neither overwrites it
    /// nor is overwritten halfway.
    pub fn keep(&self, config: &str, state: &TokenState) -> Result<(), SharedTokenError> {
        let connection = self.connection(config)?;
        let key = self.key(&connection)?;
        let lease = self.store.lease(&key, self.lease_wait).map_err(host)?;
        // Read first: a store that cannot be read as it is (tokens under
        // another key) is left alone, not overwritten.
        let read = self.store.load(&key).map_err(host)?;
        self.save_under(&connection, &*lease, &key, read.as_ref(), state)
            .map_err(host)?;
        drop(lease);
        let mut cache = lock(&self.cache);
        cache.states.insert(key.clone(), state.clone());
        cache.unsaved.remove(&key);
        Ok(())
    }

    /// The token this manager holds for a configuration that no store has
    /// accepted yet: after a failure that says a token could not be
    /// stored, what a person must keep by hand so that its rotated refresh
    /// token is not lost with the process.
    pub fn unstored(&self, config: &str) -> Option<ObtainedToken> {
        let connection = self.connection(config).ok()?;
        let key = self.key(&connection).ok()?;
        let state = {
            let cache = lock(&self.cache);
            cache
                .unsaved
                .contains_key(&key)
                .then(|| cache.states.get(&key).cloned())??
        };
        self.harness.describe(&connection, &state).ok()
    }

    /// The token kept for a configuration, from the cache or the store,
    /// whatever its age.
    pub fn kept(&self, config: &str) -> Result<Option<ObtainedToken>, SharedTokenError> {
        let connection = self.connection(config)?;
        let mut source = TokenSource::Cache;
        let Some(state) = self.held(&self.key(&connection)?, &mut source)? else {
            return Ok(None);
        };
        self.harness
            .describe(&connection, &state)
            .map(Some)
            .map_err(Arc::new)
    }

    /// Revokes the kept access or refresh token at the configured
    /// revocation endpoint, then keeps what the component says is left.
    /// Returns whether there was such a token.
    pub fn revoke_kept(
        &self,
        config: &str,
        which: TokenTypeHint,
    ) -> Result<bool, SharedTokenError> {
        let connection = self.connection(config)?;
        let Some(token) = self.kept(config)? else {
            return Ok(false);
        };
        let Some(secret) = token.secret(which) else {
            return Ok(false);
        };
        self.harness
            .revoke(config, secret.expose(), Some(which))
            .map_err(Arc::new)?;
        let left = connection
            .revoked(&token.state, which)
            .map_err(host)?
            .map_err(|failure| Arc::new(TokenError::Connector(failure)))?;
        self.replace(&self.key(&connection)?, &token.state, left.as_ref())?;
        Ok(true)
    }
}
