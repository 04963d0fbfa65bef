//! Keeping tokens and using them: a cache under the component's token
//! cache key, renewal ahead of expiry, one token request however many
//! callers wait for it, a store that keeps rotated refresh tokens across
//! restarts, and API calls that follow the component's 401 retry rule.
//!
//! The component decides what a token is for (the cache key), how it goes
//! into a request and what an API's refusal means; this module only keeps
//! what the component produced and acts on its verdicts.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::component::{Request, Response, TokenTypeHint, Verdict};
use crate::harness::{Harness, ObtainedToken, Redacted, TokenError};
use crate::lock;

/// A token as the cache and the store keep it; Debug output shows the
/// tokens as `[redacted]`.
#[derive(Clone, Debug)]
pub struct StoredToken {
    /// The access token.
    pub access_token: Redacted,
    /// The token type, such as `Bearer`.
    pub token_type: String,
    /// When the token was obtained, unix seconds.
    pub obtained_at: u64,
    /// When it expires, unix seconds, if the server said.
    pub expires_at: Option<u64>,
    /// The refresh token to renew it with.
    pub refresh_token: Option<Redacted>,
    /// The granted scope, if stated.
    pub scope: Option<String>,
    /// An API refused the access token: renew before using it again.
    pub spent: bool,
}

impl StoredToken {
    fn new(token: ObtainedToken, obtained_at: u64) -> Self {
        Self {
            access_token: token.access_token,
            token_type: token.token_type,
            obtained_at,
            expires_at: token.expires_at,
            refresh_token: token.refresh_token,
            scope: token.scope,
            spent: false,
        }
    }
}

/// Where tokens outlive the process. Implementations must make a saved
/// token durable before `save` returns: the caller hands the access token
/// out only afterwards, so a rotated refresh token is never lost.
pub trait TokenStore: Send + Sync {
    /// The token kept under a cache key, if any.
    fn load(&self, key: &str) -> Result<Option<StoredToken>>;
    /// Keeps a token under a cache key, replacing what was there.
    fn save(&self, key: &str, token: &StoredToken) -> Result<()>;
}

/// A store shared by several managers (one per worker, say).
impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    fn load(&self, key: &str) -> Result<Option<StoredToken>> {
        (**self).load(key)
    }

    fn save(&self, key: &str, token: &StoredToken) -> Result<()> {
        (**self).save(key, token)
    }
}

/// A store that forgets everything when the process ends (`--no-store`).
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, StoredToken>>,
}

impl TokenStore for MemoryStore {
    fn load(&self, key: &str) -> Result<Option<StoredToken>> {
        Ok(lock(&self.tokens).get(key).cloned())
    }

    fn save(&self, key: &str, token: &StoredToken) -> Result<()> {
        lock(&self.tokens).insert(key.to_owned(), token.clone());
        Ok(())
    }
}

/// A JSON file of tokens by cache key, replaced atomically on every save
/// and readable by the owner only. Processes sharing a file each replace
/// it whole: the last one to save wins for keys both changed.
pub struct FileStore {
    path: PathBuf,
    writing: Mutex<()>,
}

/// A token as the store file holds it.
#[derive(Serialize, Deserialize)]
struct FileRecord {
    access_token: String,
    token_type: String,
    obtained_at: u64,
    expires_at: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    spent: bool,
}

impl FileStore {
    /// A store in this file; it need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writing: Mutex::new(()),
        }
    }

    /// The per-user default: `$XDG_STATE_HOME/oauth-harness/tokens.json`,
    /// or `~/.local/state/oauth-harness/tokens.json`.
    pub fn default_path() -> Option<PathBuf> {
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state"))
            })?;
        Some(state.join("oauth-harness").join("tokens.json"))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_all(&self) -> Result<HashMap<String, FileRecord>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the token store `{}` is damaged: delete it to start afresh",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(anyhow!(
                "failed to read the token store `{}`: {e}",
                self.path.display()
            )),
        }
    }
}

impl TokenStore for FileStore {
    fn load(&self, key: &str) -> Result<Option<StoredToken>> {
        Ok(self.read_all()?.remove(key).map(|r| StoredToken {
            access_token: Redacted::new(r.access_token),
            token_type: r.token_type,
            obtained_at: r.obtained_at,
            expires_at: r.expires_at,
            refresh_token: r.refresh_token.map(Redacted::new),
            scope: r.scope,
            spent: r.spent,
        }))
    }

    fn save(&self, key: &str, token: &StoredToken) -> Result<()> {
        let _writing = lock(&self.writing);
        let mut all = self.read_all()?;
        all.insert(
            key.to_owned(),
            FileRecord {
                access_token: token.access_token.expose().to_owned(),
                token_type: token.token_type.clone(),
                obtained_at: token.obtained_at,
                expires_at: token.expires_at,
                refresh_token: token.refresh_token.as_ref().map(|t| t.expose().to_owned()),
                scope: token.scope.clone(),
                spent: token.spent,
            },
        );
        if let Some(directory) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(directory)?;
        }
        crate::files::replace_private(&self.path, &serde_json::to_vec_pretty(&all)?)
    }
}

fn create_private_dir(directory: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(directory)
        .with_context(|| format!("failed to create `{}`", directory.display()))
}

/// When a token is renewed.
#[derive(Debug, Clone, Copy)]
pub struct RenewalPolicy {
    /// The longest margin before expiry at which a token is renewed.
    pub max_margin_secs: u64,
    /// The lifetime assumed for a token whose response had no `expires_in`.
    pub default_lifetime_secs: u64,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            max_margin_secs: 60,
            default_lifetime_secs: 300,
        }
    }
}

impl RenewalPolicy {
    /// When a token stops being used: a quarter of its lifetime before it
    /// expires, but no earlier than `max_margin_secs` before. A 30 s token
    /// is renewed after 23 s, not on every call as a fixed 60 s margin
    /// would; an hour's token 60 s before it ends. A token without an
    /// expiry is taken to last `default_lifetime_secs`.
    pub fn renew_at(&self, token: &StoredToken) -> u64 {
        let expires_at = token
            .expires_at
            .unwrap_or(token.obtained_at.saturating_add(self.default_lifetime_secs));
        let lifetime = expires_at.saturating_sub(token.obtained_at);
        expires_at - (lifetime / 4).min(self.max_margin_secs)
    }
}

/// Where a token handed out came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// This process's cache.
    Cache,
    /// The token store, from an earlier run.
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

type Outcome = Result<(StoredToken, TokenSource), SharedTokenError>;

/// One token request under way, and its outcome once there.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

#[derive(Default)]
struct Cache {
    tokens: HashMap<String, StoredToken>,
    flights: HashMap<String, Arc<Flight>>,
    /// Keys whose token the store refused: kept here so that nothing is
    /// lost, and handed out only once a save succeeds.
    unsaved: HashSet<String>,
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
        {
            let mut cache = lock(&self.manager.cache);
            if let Ok((token, _)) = &outcome {
                cache.tokens.insert(self.key.to_owned(), token.clone());
            }
            cache.flights.remove(self.key);
        }
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

enum Role {
    /// This caller sends the token request.
    Leader(Arc<Flight>, Option<Redacted>),
    /// Another caller's request is under way.
    Waiter(Arc<Flight>),
}

/// An API response and what happened on the way to it.
#[derive(Debug)]
pub struct CallOutcome {
    /// The final response.
    pub response: Response,
    /// Each step, in words and without secrets, for `--verbose`.
    pub steps: Vec<String>,
}

/// Tokens for any number of configurations and callers.
pub struct TokenManager {
    harness: Harness,
    store: Box<dyn TokenStore>,
    policy: RenewalPolicy,
    cache: Mutex<Cache>,
}

impl TokenManager {
    /// A manager obtaining tokens through `harness` and keeping them in `store`.
    pub fn new(harness: Harness, store: Box<dyn TokenStore>, policy: RenewalPolicy) -> Self {
        Self {
            harness,
            store,
            policy,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The harness the manager sends requests through.
    pub fn harness(&self) -> &Harness {
        &self.harness
    }

    /// The cache key of a configuration, from the component.
    pub fn cache_key(&self, config: &str) -> Result<String, SharedTokenError> {
        Ok(self
            .harness
            .connection(config)
            .map_err(Arc::new)?
            .cache_key()
            .to_owned())
    }

    /// A token to use now: the cached one until its renewal time, else a
    /// new one. Concurrent callers for the same key cause one request and
    /// all receive its outcome.
    pub fn token(&self, config: &str) -> Result<(StoredToken, TokenSource), SharedTokenError> {
        let key = self.cache_key(config)?;
        self.token_for(config, &key)
    }

    fn token_for(&self, config: &str, key: &str) -> Outcome {
        let role = {
            let mut cache = lock(&self.cache);
            let mut source = TokenSource::Cache;
            if !cache.tokens.contains_key(key) {
                let stored = self
                    .store
                    .load(key)
                    .map_err(|e| Arc::new(TokenError::Host(e)))?;
                if let Some(stored) = stored {
                    cache.tokens.insert(key.to_owned(), stored);
                    source = TokenSource::Store;
                }
            }
            let now = self.harness.now();
            if let Some(token) = cache.tokens.get(key)
                && !token.spent
                && now < self.policy.renew_at(token)
            {
                let token = token.clone();
                if cache.unsaved.contains(key) {
                    self.store.save(key, &token).map_err(|e| {
                        Arc::new(TokenError::Host(e.context(
                            "the token is still not stored, so it is not used: a rotated refresh token would be lost",
                        )))
                    })?;
                    cache.unsaved.remove(key);
                }
                return Ok((token, source));
            }
            match cache.flights.get(key) {
                Some(flight) => Role::Waiter(flight.clone()),
                None => {
                    let flight = Arc::new(Flight::default());
                    cache.flights.insert(key.to_owned(), flight.clone());
                    let refresh_token = cache
                        .tokens
                        .get(key)
                        .and_then(|token| token.refresh_token.clone());
                    Role::Leader(flight, refresh_token)
                }
            }
        };
        match role {
            Role::Waiter(flight) => {
                let mut outcome = lock(&flight.outcome);
                while outcome.is_none() {
                    outcome = flight
                        .done
                        .wait(outcome)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                match outcome.as_ref() {
                    Some(Ok((token, _))) => Ok((token.clone(), TokenSource::Shared)),
                    Some(Err(error)) => Err(error.clone()),
                    None => unreachable!("the loop above waits for an outcome"),
                }
            }
            Role::Leader(flight, refresh_token) => {
                let guard = FlightGuard {
                    manager: self,
                    key,
                    flight,
                    published: false,
                };
                guard.publish(self.renew(config, key, refresh_token))
            }
        }
    }

    /// Obtains a new token (with the refresh token when there is one) and
    /// stores it before anyone may use it.
    fn renew(&self, config: &str, key: &str, refresh_token: Option<Redacted>) -> Outcome {
        // Another process sharing the store may have renewed (and rotated
        // the refresh token) since this one loaded it: use its work.
        let latest = self
            .store
            .load(key)
            .map_err(|e| Arc::new(TokenError::Host(e)))?;
        let refresh_token = match latest {
            Some(latest) if !latest.spent && self.harness.now() < self.policy.renew_at(&latest) => {
                let known = lock(&self.cache)
                    .tokens
                    .get(key)
                    .map(|token| token.access_token.clone());
                if known.as_ref() != Some(&latest.access_token) {
                    return Ok((latest, TokenSource::Store));
                }
                latest.refresh_token.or(refresh_token)
            }
            Some(latest) => latest.refresh_token.or(refresh_token),
            None => refresh_token,
        };
        let obtained_at = self.harness.now();
        let (result, source) = match refresh_token {
            Some(refresh_token) => match self.harness.refresh_token(config, refresh_token.expose())
            {
                // The component says whether the configured grant may
                // still work after this failure.
                Err(TokenError::Connector(failure))
                    if self
                        .harness
                        .connector()
                        .falls_back_to_grant(&failure)
                        .map_err(|e| Arc::new(TokenError::Host(e)))? =>
                {
                    (
                        self.harness.obtain_token(config),
                        TokenSource::FetchedAfterRefreshFailed,
                    )
                }
                other => (other, TokenSource::Refreshed),
            },
            None => (self.harness.obtain_token(config), TokenSource::Fetched),
        };
        let token = StoredToken::new(result.map_err(Arc::new)?, obtained_at);
        if let Err(error) = self.store.save(key, &token) {
            // Keep it in memory, marked, so the refresh token survives for
            // as long as this process does and the save is tried again.
            let mut cache = lock(&self.cache);
            cache.tokens.insert(key.to_owned(), token);
            cache.unsaved.insert(key.to_owned());
            return Err(Arc::new(TokenError::Host(error.context(
                "the new token could not be stored, so it is not used yet: a rotated refresh token would be lost",
            ))));
        }
        Ok((token, source))
    }

    /// The token kept for a configuration, from the cache or the store,
    /// whatever its age.
    pub fn kept(&self, config: &str) -> Result<Option<StoredToken>, SharedTokenError> {
        self.kept_under(&self.cache_key(config)?)
    }

    fn kept_under(&self, key: &str) -> Result<Option<StoredToken>, SharedTokenError> {
        if let Some(token) = lock(&self.cache).tokens.get(key) {
            return Ok(Some(token.clone()));
        }
        self.store
            .load(key)
            .map_err(|e| Arc::new(TokenError::Host(e)))
    }

    /// Revokes the kept access or refresh token at the configured
    /// revocation endpoint, then forgets it: a revoked access token is
    /// spent, a revoked refresh token dropped. Returns whether there was one.
    pub fn revoke_kept(
        &self,
        config: &str,
        which: TokenTypeHint,
    ) -> Result<bool, SharedTokenError> {
        let key = self.cache_key(config)?;
        let Some(token) = self.kept_under(&key)? else {
            return Ok(false);
        };
        let secret = match which {
            TokenTypeHint::AccessToken => Some(token.access_token.clone()),
            TokenTypeHint::RefreshToken => token.refresh_token.clone(),
        };
        let Some(secret) = secret else {
            return Ok(false);
        };
        self.harness
            .revoke(config, secret.expose(), Some(which))
            .map_err(Arc::new)?;
        let updated = {
            let mut cache = lock(&self.cache);
            let current = cache.tokens.entry(key.clone()).or_insert(token.clone());
            // A renewal may have replaced the token meanwhile: leave the
            // newer one (and its refresh token) alone.
            if current.access_token != token.access_token {
                return Ok(true);
            }
            match which {
                TokenTypeHint::AccessToken => current.spent = true,
                TokenTypeHint::RefreshToken => current.refresh_token = None,
            }
            current.clone()
        };
        self.save_if_current(&key, &updated)?;
        Ok(true)
    }

    /// Marks the token an API refused as spent, unless another caller has
    /// already replaced it, so that exactly one renewal follows.
    fn spend(&self, key: &str, refused: &StoredToken) {
        let mut cache = lock(&self.cache);
        if let Some(token) = cache.tokens.get_mut(key)
            && token.access_token == refused.access_token
        {
            // In memory only: the store may already hold another process's
            // renewal, which this must not overwrite. A restart reuses the
            // refused token at the cost of one more 401.
            token.spent = true;
        }
    }

    /// Saves a changed token unless the store meanwhile holds another one
    /// (another process's renewal), which must not be overwritten.
    fn save_if_current(&self, key: &str, token: &StoredToken) -> Result<(), SharedTokenError> {
        let host_error = |e: anyhow::Error| Arc::new(TokenError::Host(e));
        let stored = self.store.load(key).map_err(host_error)?;
        if stored.is_none_or(|stored| stored.access_token == token.access_token) {
            self.store.save(key, token).map_err(host_error)?;
        }
        Ok(())
    }

    /// Calls an API with a token: authorizes the request through the
    /// component, sends it, and when the component's verdict on the
    /// response is to renew the token, renews it and retries once.
    pub fn call(&self, config: &str, request: &Request) -> Result<CallOutcome, SharedTokenError> {
        let host_error = |e: anyhow::Error| Arc::new(TokenError::Host(e));
        let connection = self.harness.connection(config).map_err(Arc::new)?;
        let key = connection.cache_key();
        let mut steps = Vec::new();
        let mut retried = false;
        loop {
            let (token, source) = self.token_for(config, key)?;
            steps.push(format!("token {source}"));
            let authorized = connection
                .authorize(request, &token.token_type, token.access_token.expose())
                .map_err(host_error)?
                .map_err(|failure| Arc::new(TokenError::Connector(failure)))?;
            let response = self.harness.send(&authorized).map_err(host_error)?;
            steps.push(format!(
                "{} {} answered HTTP {}",
                request.method,
                crate::http_client::shown_url(&request.url),
                response.status
            ));
            let verdict = connection.judge(&response, retried).map_err(host_error)?;
            match verdict {
                Verdict::RenewTokenAndRetry if !retried => {
                    steps.push("the API refused the token: renewing it and retrying once".into());
                    self.spend(key, &token);
                    retried = true;
                }
                _ => return Ok(CallOutcome { response, steps }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(obtained_at: u64, expires_at: Option<u64>) -> StoredToken {
        StoredToken {
            access_token: Redacted::new("at".into()),
            token_type: "Bearer".into(),
            obtained_at,
            expires_at,
            refresh_token: None,
            scope: None,
            spent: false,
        }
    }

    #[test]
    fn the_renewal_margin_adapts_to_the_lifetime() {
        let policy = RenewalPolicy::default();
        assert_eq!(policy.renew_at(&token(1000, Some(1030))), 1023);
        assert_eq!(policy.renew_at(&token(1000, Some(4600))), 4540);
        assert_eq!(policy.renew_at(&token(1000, Some(1000))), 1000);
        assert_eq!(policy.renew_at(&token(1000, Some(900))), 900);
        // Without an expiry, the configured default lifetime.
        assert_eq!(policy.renew_at(&token(1000, None)), 1000 + 300 - 60);
    }

    #[test]
    fn the_file_store_keeps_tokens_privately_across_instances() {
        let directory =
            std::env::temp_dir().join(format!("oauth-harness-store-test-{}", std::process::id()));
        let path = directory.join("nested/tokens.json");
        let mut saved = token(1, Some(2));
        saved.refresh_token = Some(Redacted::new("rt-2".into()));
        FileStore::new(&path).save("k", &saved).expect("saved");
        let loaded = FileStore::new(&path)
            .load("k")
            .expect("read")
            .expect("present");
        assert_eq!(
            loaded.refresh_token.as_ref().map(Redacted::expose),
            Some("rt-2")
        );
        assert!(FileStore::new(&path).load("other").expect("read").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{loaded:?}").contains("rt-2"));
        let _ = std::fs::remove_dir_all(directory);
    }
}
