//! Tokens in use, through the built component and the harness's token
//! manager, against the embedded server: the 401 retry rule at each check
//! level, renewal ahead of expiry with a controlled clock, revocation,
//! the refresh-token fallback, and single-flight under concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use auth_server::{AuthorizationServer, ServerOptions};
use end_to_end::{client_credentials, harness_for, http_server};
use host_harness::component::{Failure, Request, TokenTypeHint};
use host_harness::driver::{TokenManager, TokenSource};
use host_harness::harness::Clock;
use host_harness::stores::{Lease, LeaseSave, MemoryStore, TokenStore};
use host_harness::{TokenError, TokenState};
use serde_json::Value;

fn manager(server: &AuthorizationServer) -> TokenManager {
    TokenManager::new(harness_for(server), Box::new(MemoryStore::default()))
}

/// A clock that reads the real time at the start plus an offset the test
/// moves: the start, the offset, the clock.
fn controlled_clock() -> (u64, Arc<AtomicU64>, Clock) {
    let start = host_harness::harness::unix_now();
    let offset = Arc::new(AtomicU64::new(0));
    let clock: Clock = {
        let offset = offset.clone();
        Arc::new(move || start + offset.load(Ordering::SeqCst))
    };
    (start, offset, clock)
}

fn get(url: String) -> Request {
    Request {
        method: "GET".into(),
        url,
        headers: vec![("Accept".into(), "application/json".into())],
        body: Vec::new(),
    }
}

/// The final status of an API call through the manager.
fn status(manager: &TokenManager, config: &str, request: &Request) -> u16 {
    manager.call(config, request).expect("call").response.status
}

/// Alice's password grant for the Basic-authenticated demo client, with
/// this scope (`offline_access` brings a refresh token).
fn password_grant(server: &AuthorizationServer, scope: Option<&str>) -> String {
    let mut config = client_credentials(server, "demo-basic", "basic");
    config["grant_type"] = "password".into();
    config["username"] = "alice".into();
    config["password"] = "wonderland".into();
    if let Some(scope) = scope {
        config["scope"] = scope.into();
    }
    config.to_string()
}

fn token_requests(server: &AuthorizationServer) -> usize {
    server.received_requests().len()
}

fn with_level(mut config: Value, level: u8) -> String {
    config["token_retry_check_level"] = level.into();
    config.to_string()
}

#[test]
fn each_check_level_retries_what_it_says_and_at_most_once() {
    let server = http_server();
    let manager = manager(&server);
    // (answer, final status, whether levels 1, 2 and 3 retry)
    let table = [
        ("invalid_token", 401, [true, true, true]),
        ("insufficient_scope", 401, [true, true, false]),
        ("no_challenge", 401, [true, false, false]),
        ("basic", 401, [true, false, false]),
        ("forbidden", 403, [false, false, false]),
        ("ok", 200, [false, false, false]),
    ];
    for (answer, status, retries) in table {
        for (level, retries) in (1..=3).zip(retries) {
            let config = with_level(client_credentials(&server, "demo-basic", "basic"), level);
            let path = format!("/resource/challenge/{answer}");
            let before = server.resource_hits(&path);
            let outcome = manager
                .call(&config, &get(format!("{}{path}", server.base_url())))
                .unwrap_or_else(|e| panic!("{answer} at level {level}: {e}"));
            assert_eq!(outcome.response.status, status, "{answer} at level {level}");
            let sent = server.resource_hits(&path) - before;
            assert_eq!(
                sent,
                if retries { 2 } else { 1 },
                "{answer} at level {level}: {:?}",
                outcome.steps
            );
        }
    }
}

#[test]
fn a_revoked_token_leads_to_exactly_one_renewal() {
    let server = http_server();
    let manager = manager(&server);
    let config = client_credentials(&server, "demo-basic", "basic").to_string();
    let resource = get(server.resource_url());
    assert_eq!(status(&manager, &config, &resource), 200);
    assert_eq!(status(&manager, &config, &resource), 200);
    assert_eq!(
        token_requests(&server),
        1,
        "the second call reuses the token"
    );

    server.revoke_access_tokens();
    let outcome = manager.call(&config, &resource).expect("call");
    assert_eq!(outcome.response.status, 200, "{:?}", outcome.steps);
    assert_eq!(
        token_requests(&server),
        2,
        "one renewal: {:?}",
        outcome.steps
    );
    assert_eq!(server.resource_hits("/resource"), 4, "one retry");
    assert_eq!(status(&manager, &config, &resource), 200);
    assert_eq!(token_requests(&server), 2, "the renewed token is reused");
}

#[test]
fn tokens_are_renewed_before_they_expire_by_a_margin_that_fits_their_lifetime() {
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: 40,
        ..ServerOptions::default()
    })
    .expect("server");
    let (start, offset, clock) = controlled_clock();
    let manager = TokenManager::new(
        harness_for(&server).with_clock(clock),
        Box::new(MemoryStore::default()),
    );
    let config = client_credentials(&server, "demo-basic", "basic").to_string();
    let (first, source) = manager.token(&config).expect("token");
    assert_eq!(source, TokenSource::Fetched);
    assert_eq!(first.expires_at, Some(start + 40));
    // A 40 s token is renewed 10 s before it ends, not 60 s (every call).
    offset.store(29, Ordering::SeqCst);
    let (same, source) = manager.token(&config).expect("token");
    assert_eq!(source, TokenSource::Cache);
    assert_eq!(same.access_token, first.access_token);
    offset.store(30, Ordering::SeqCst);
    let (renewed, source) = manager.token(&config).expect("token");
    assert_eq!(source, TokenSource::Fetched);
    assert_ne!(renewed.access_token, first.access_token);
    assert_eq!(token_requests(&server), 2);
    // The API accepts the renewed token at once: it never saw an expired one.
    let outcome = manager
        .call(&config, &get(server.resource_url()))
        .expect("call");
    assert_eq!(outcome.response.status, 200);
    assert_eq!(server.resource_hits("/resource"), 1, "{:?}", outcome.steps);
}

#[test]
fn renewal_uses_the_refresh_token_and_falls_back_to_the_grant_when_it_is_refused() {
    let server = http_server();
    let manager = manager(&server);
    let config = password_grant(&server, Some("read offline_access"));
    let (first, _) = manager.token(&config).expect("token");
    assert!(
        first.refresh_token.is_some(),
        "the password grant issued a refresh token"
    );

    server.revoke_access_tokens();
    let resource = get(server.resource_url());
    let outcome = manager.call(&config, &resource).expect("call");
    assert_eq!(outcome.response.status, 200);
    assert!(
        outcome
            .steps
            .iter()
            .any(|s| s.contains("renewed with the refresh token")),
        "{:?}",
        outcome.steps
    );
    assert_eq!(grants(&server), ["password", "refresh_token"]);

    // With the refresh token revoked too, the configured grant steps in.
    server.revoke_access_tokens();
    server.revoke_refresh_tokens();
    let outcome = manager.call(&config, &resource).expect("call");
    assert_eq!(outcome.response.status, 200, "{:?}", outcome.steps);
    assert!(
        outcome
            .steps
            .iter()
            .any(|s| s.contains("after the server refused the refresh token")),
        "{:?}",
        outcome.steps
    );
    assert_eq!(
        grants(&server),
        ["password", "refresh_token", "refresh_token", "password"]
    );
}

/// The grant type of each token request the server received.
fn grants(server: &AuthorizationServer) -> Vec<String> {
    server
        .received_requests()
        .iter()
        .map(|r| {
            r.parameters
                .iter()
                .find(|(name, _)| name == "grant_type")
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn concurrent_callers_cause_one_token_request_and_share_its_outcome() {
    let server = AuthorizationServer::start(ServerOptions {
        token_delay_ms: 800,
        ..ServerOptions::default()
    })
    .expect("server");
    let config = client_credentials(&server, "demo-basic", "basic").to_string();
    let mut wrong = client_credentials(&server, "demo-basic", "basic");
    wrong["client_secret"] = "not-the-secret".into();
    let wrong = wrong.to_string();

    for (config, succeeds) in [(config, true), (wrong, false)] {
        // A manager of its own: each round counts its own requests.
        let manager = Arc::new(manager(&server));
        let before = token_requests(&server);
        let barrier = Arc::new(Barrier::new(64));
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let (manager, barrier, config) = (manager.clone(), barrier.clone(), config.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    manager
                        .token(&config)
                        .map(|(token, _)| token.access_token.expose().to_owned())
                        .map_err(|error| match &*error {
                            TokenError::Connector(Failure::Rejected(e)) => e.error.clone(),
                            other => other.to_string(),
                        })
                })
            })
            .collect();
        let outcomes: Vec<_> = callers
            .into_iter()
            .map(|caller| caller.join().expect("no panic"))
            .collect();
        assert_eq!(
            token_requests(&server) - before,
            1,
            "one token request for 64 callers"
        );
        let first = &outcomes[0];
        assert!(
            outcomes.iter().all(|o| o == first),
            "every caller sees the same outcome"
        );
        if succeeds {
            assert!(first.is_ok(), "{first:?}");
        } else {
            assert_eq!(first, &Err("invalid_client".to_owned()));
        }
    }
}

#[test]
fn introspection_and_revocation_follow_a_token_through_its_life() {
    let server = http_server();
    let manager = manager(&server);
    let mut config = client_credentials(&server, "demo-post", "body");
    config["introspection_url"] = server.introspection_url().into();
    config["revocation_url"] = server.revocation_url().into();
    config["scope"] = "read".into();
    let config = config.to_string();
    let (token, _) = manager.token(&config).expect("token");
    let harness = manager.harness();

    let answer = harness
        .introspect(
            &config,
            token.access_token.expose(),
            Some(TokenTypeHint::AccessToken),
        )
        .expect("introspection");
    assert!(answer.active);
    assert_eq!(answer.client_id.as_deref(), Some("demo-post"));
    assert_eq!(answer.scope.as_deref(), Some("read"));
    // The server's clock and the harness's may read a second apart.
    let (exp, expires_at) = (answer.exp.expect("exp"), token.expires_at.expect("expiry"));
    assert!(exp.abs_diff(expires_at) <= 1, "{exp} vs {expires_at}");

    assert!(
        manager
            .revoke_kept(&config, TokenTypeHint::AccessToken)
            .expect("revocation")
    );
    let answer = harness
        .introspect(&config, token.access_token.expose(), None)
        .expect("introspection");
    assert!(!answer.active, "revoked");
    assert_eq!(
        answer.client_id, None,
        "an inactive token tells nothing more"
    );
    // Revoking again, or a token the server never issued, is no error.
    harness
        .revoke(&config, token.access_token.expose(), None)
        .expect("an unknown token is no error");
    // The revoked token is spent: the next call renews it first.
    let outcome = manager
        .call(&config, &get(server.resource_url()))
        .expect("call");
    assert_eq!(outcome.response.status, 200);
    assert_eq!(server.resource_hits("/resource"), 1, "{:?}", outcome.steps);

    // Both endpoints authenticated the client as the token endpoint does.
    let lifecycle = server.lifecycle_requests();
    assert_eq!(lifecycle.len(), 4);
    for request in &lifecycle {
        assert_eq!(request.authenticated_client.as_deref(), Some("demo-post"));
    }
}

#[test]
fn a_client_may_not_revoke_another_clients_token_and_a_private_key_jwt_client_may_introspect() {
    let server = http_server();
    let manager = manager(&server);
    let owner = client_credentials(&server, "demo-basic", "basic").to_string();
    let (token, _) = manager.token(&owner).expect("token");

    let mut other = client_credentials(&server, "demo-post", "body");
    other["revocation_url"] = server.revocation_url().into();
    let refused = manager
        .harness()
        .revoke(&other.to_string(), token.access_token.expose(), None)
        .expect_err("another client's token");
    assert!(
        matches!(&refused, TokenError::Connector(Failure::Rejected(e)) if e.error == "unauthorized_client"),
        "{refused}"
    );
    assert!(server.is_active(token.access_token.expose()));

    let signed = serde_json::json!({
        "grant_type": "client_credentials",
        "token_url": server.token_url(),
        "introspection_url": server.introspection_url(),
        "client_id": "demo-jwt",
        "client_auth": "private_key_jwt",
        "client_assertion": {
            "header": {"alg": "RS256"},
            "private_key": auth_server::registry::keys::CLIENT_RSA_PRIVATE,
        },
    });
    let answer = manager
        .harness()
        .introspect(&signed.to_string(), token.access_token.expose(), None)
        .expect("introspection");
    assert!(answer.active);
    assert_eq!(answer.client_id.as_deref(), Some("demo-basic"));
}

/// A store with the faults a test sets: writes that fail while `failing`
/// is set, as a full disk's would (however often they are tried again);
/// leases that lapse before every save while `lapsing` is set, after
/// `meanwhile` (another worker's write) is stored.
#[derive(Default)]
struct FaultyStore {
    failing: std::sync::atomic::AtomicBool,
    lapsing: std::sync::atomic::AtomicBool,
    meanwhile: Mutex<Option<TokenState>>,
    inner: MemoryStore,
}

impl TokenStore for FaultyStore {
    fn load(&self, key: &str) -> anyhow::Result<Option<TokenState>> {
        self.inner.load(key)
    }

    fn save(&self, key: &str, state: &TokenState) -> anyhow::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            anyhow::bail!("no space left on the device");
        }
        self.inner.save(key, state)
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> anyhow::Result<bool> {
        if self.failing.load(Ordering::SeqCst) {
            anyhow::bail!("no space left on the device");
        }
        self.inner.replace_if_unchanged(key, expected, new)
    }

    fn secret(&self) -> anyhow::Result<Vec<u8>> {
        self.inner.secret()
    }

    fn constant(&self, name: &str, candidate: Option<&str>) -> anyhow::Result<Option<String>> {
        self.inner.constant(name, candidate)
    }

    fn lease(&self, key: &str, wait: Duration) -> anyhow::Result<Box<dyn Lease + '_>> {
        Ok(Box::new(FaultyLease {
            store: self,
            key: key.to_owned(),
            _held: self.inner.lease(key, wait)?,
        }))
    }
}

/// The inner store's lease, saving through the faulty store.
struct FaultyLease<'s> {
    store: &'s FaultyStore,
    key: String,
    _held: Box<dyn Lease + 's>,
}

impl Lease for FaultyLease<'_> {
    fn save(&self, state: &TokenState) -> anyhow::Result<LeaseSave> {
        if self.store.lapsing.load(Ordering::SeqCst) {
            if let Some(meanwhile) = self.store.meanwhile.lock().expect("lock").take() {
                self.store.inner.save(&self.key, &meanwhile)?;
            }
            return Ok(LeaseSave::Lapsed("the lease lapsed".into()));
        }
        self.store.save(&self.key, state)?;
        Ok(LeaseSave::Saved)
    }
}

#[test]
fn a_token_the_store_refused_is_kept_and_stored_before_it_is_used() {
    let server = http_server();
    let store = Arc::new(FaultyStore::default());
    store.failing.store(true, Ordering::SeqCst);
    let manager = TokenManager::new(harness_for(&server), Box::new(store.clone()));
    let config = password_grant(&server, None);

    let error = manager.token(&config).expect_err("the store refused");

    store.failing.store(false, Ordering::SeqCst);
    assert!(
        format!("{error}").contains("could not be stored"),
        "{error}"
    );
    let key = manager.cache_key(&config).expect("key");
    assert!(store.inner.load(&key).expect("load").is_none());

    // The next caller gets the same token, stored first; no new request.
    let (token, source) = manager.token(&config).expect("token");
    assert_eq!(source, TokenSource::Cache);
    assert_eq!(token_requests(&server), 1);
    let stored = store.inner.load(&key).expect("load").expect("stored now");
    assert_eq!(stored, token.state);
    assert!(token.refresh_token.is_some());
}

#[test]
fn managers_sharing_a_store_use_each_others_renewals_instead_of_spent_refresh_tokens() {
    let server = http_server();
    let store = Arc::new(MemoryStore::default());
    let worker = || TokenManager::new(harness_for(&server), Box::new(store.clone()));
    let (first, second) = (worker(), worker());
    let config = serde_json::json!({
        "token_url": server.token_url(),
        "client_id": "demo-basic",
        "client_secret": "demo-basic-secret",
        "refresh_token": server.issue_refresh_token("demo-basic", Some("read")),
    })
    .to_string();
    let resource = get(server.resource_url());
    assert_eq!(status(&first, &config, &resource), 200);
    assert_eq!(status(&second, &config, &resource), 200);
    assert_eq!(
        token_requests(&server),
        1,
        "the second worker reads the store"
    );

    // Both hold the same access token; the first renews it, rotating the
    // refresh token. The second must not present the spent one.
    server.revoke_access_tokens();
    assert_eq!(status(&first, &config, &resource), 200);
    let outcome = second.call(&config, &resource).expect("call");
    assert_eq!(outcome.response.status, 200, "{:?}", outcome.steps);
    assert!(
        outcome
            .steps
            .iter()
            .any(|s| s.contains("from the token store")),
        "{:?}",
        outcome.steps
    );
    assert_eq!(token_requests(&server), 2, "one renewal for both workers");
}

#[test]
fn a_refused_save_is_retried_before_the_refresh_token_it_holds_is_presented() {
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: 40,
        ..ServerOptions::default()
    })
    .expect("server");
    let (_, offset, clock) = controlled_clock();
    let store = Arc::new(FaultyStore::default());
    let manager = TokenManager::new(
        harness_for(&server).with_clock(clock),
        Box::new(store.clone()),
    );
    let config = password_grant(&server, Some("read offline_access"));
    let key = manager.cache_key(&config).expect("key");
    manager.token(&config).expect("the first token is stored");
    let first = store.inner.load(&key).expect("load").expect("stored");

    // The renewal rotates the refresh token, and the store refuses it.
    offset.store(35, Ordering::SeqCst);
    store.failing.store(true, Ordering::SeqCst);
    manager.token(&config).expect_err("the store refused");
    store.failing.store(false, Ordering::SeqCst);
    assert_eq!(store.inner.load(&key).expect("load"), Some(first.clone()));

    // Past that token's life too: the unsaved state (whose refresh token is
    // the live one) is stored first, then renewed with its refresh token;
    // the older stored state's spent refresh token is never presented.
    offset.store(70, Ordering::SeqCst);
    let (_, source) = manager.token(&config).expect("token");
    assert_eq!(source, TokenSource::Refreshed);
    assert_eq!(
        grants(&server),
        ["password", "refresh_token", "refresh_token"],
        "no refused refresh token, no fallback to the password"
    );
}

#[test]
fn a_refused_save_never_overwrites_what_another_worker_stored_since() {
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: 40,
        ..ServerOptions::default()
    })
    .expect("server");
    let (_, offset, clock) = controlled_clock();
    let store = Arc::new(FaultyStore::default());
    let worker = || {
        TokenManager::new(
            harness_for(&server).with_clock(clock.clone()),
            Box::new(store.clone()),
        )
    };
    let (first, second) = (worker(), worker());
    let config = password_grant(&server, Some("read offline_access"));
    let key = first.cache_key(&config).expect("key");
    first.token(&config).expect("the first token is stored");

    // The first worker's renewal is refused by the store and kept in memory.
    offset.store(35, Ordering::SeqCst);
    store.failing.store(true, Ordering::SeqCst);
    first.token(&config).expect_err("the store refused");
    store.failing.store(false, Ordering::SeqCst);
    // Meanwhile another worker renews and stores its own.
    let (theirs, _) = second.token(&config).expect("a token");
    assert_eq!(
        store.inner.load(&key).expect("read"),
        Some(theirs.state.clone())
    );

    // The first worker's unsaved state does not overwrite the newer one: it
    // takes the store's.
    let (now_used, source) = first.token(&config).expect("a token");
    assert_eq!(
        store.inner.load(&key).expect("read"),
        Some(theirs.state.clone())
    );
    assert_eq!(now_used.access_token, theirs.access_token, "{source:?}");
}

/// A token endpoint that keeps answering with a new refresh token beside
/// an access token that cannot be used: the caller learns what is wrong
/// with the answers, in the server's words, after two of them; the last
/// refresh token is kept, and presented once more after a pause.
#[test]
fn a_server_that_keeps_sending_unusable_tokens_is_reported_after_two_answers() {
    let body =
        r#"{"access_token":{"not":"a string"},"token_type":"Bearer","refresh_token":"rt-kept"}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (token_url, bodies) = end_to_end::CannedServer::start_repeating(response.into_bytes());
    let config = serde_json::json!({
        "grant_type": "client_credentials",
        "token_url": token_url,
        "client_id": "c",
        "client_secret": "s",
    })
    .to_string();
    let (_, offset, clock) = controlled_clock();
    let manager = TokenManager::new(
        end_to_end::harness_trusting(None).with_clock(clock),
        Box::new(MemoryStore::default()),
    );
    let api = get("http://127.0.0.1:9/api".into());
    let error = manager
        .call(&config, &api)
        .expect_err("no usable token")
        .to_string();
    assert!(
        error.contains("`access_token` is not a string")
            && error.contains("in 2 answers in a row (the refresh token they sent is kept"),
        "{error}"
    );
    assert!(!error.contains("rt-kept"), "{error}");
    let sent = |bodies: &Mutex<Vec<String>>| bodies.lock().expect("bodies").clone();
    assert_eq!(
        sent(&bodies).len(),
        2,
        "asked twice, not until a step limit"
    );
    assert!(sent(&bodies)[1].contains("refresh_token=rt-kept"));
    // Within the pause, no more requests; after it, one more attempt with
    // the kept refresh token.
    manager.call(&config, &api).expect_err("still none");
    assert_eq!(sent(&bodies).len(), 2);
    offset.store(30, Ordering::SeqCst);
    manager.call(&config, &api).expect_err("still none");
    let sent = sent(&bodies);
    assert_eq!(sent.len(), 3);
    assert!(
        sent[2].contains("grant_type=refresh_token&refresh_token=rt-kept"),
        "{sent:?}"
    );
}

/// A login kept while another worker renews the same configuration waits
/// for that renewal's lease, then stores over it: the renewal's save can
/// no longer overwrite the fresh login, made to switch accounts say.
#[test]
fn a_kept_login_waits_for_a_renewal_in_flight_instead_of_racing_it() {
    let server = http_server();
    let store = Arc::new(MemoryStore::default());
    let manager = TokenManager::new(harness_for(&server), Box::new(store.clone()));
    let config = client_credentials(&server, "demo-basic", "basic").to_string();
    let key = manager.cache_key(&config).expect("key");
    let login = TokenState::new("the fresh login".into(), None);
    let renewal = store
        .lease(&key, Duration::from_secs(5))
        .expect("a renewal holds the lease");
    std::thread::scope(|scope| {
        let kept = scope.spawn(|| manager.keep(&config, &login));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!kept.is_finished(), "the login waits for the renewal");
        renewal
            .save(&TokenState::new("the renewal's".into(), None))
            .expect("saved under its lease");
        drop(renewal);
        kept.join().expect("joined").expect("kept");
    });
    assert_eq!(store.load(&key).expect("read"), Some(login));
}

/// A renewal whose lease lapsed stores its rotated refresh token over the
/// state it read, and also over that state marked spent by another worker
/// meanwhile (the same refresh token): only another renewal is newer.
#[test]
fn a_renewal_whose_lease_lapsed_stores_over_the_same_refresh_token_marked_spent() {
    let server = AuthorizationServer::start(ServerOptions {
        token_lifetime_secs: 40,
        ..ServerOptions::default()
    })
    .expect("server");
    let (_, offset, clock) = controlled_clock();
    let store = Arc::new(FaultyStore::default());
    store.lapsing.store(true, Ordering::SeqCst);
    let manager = TokenManager::new(
        harness_for(&server).with_clock(clock),
        Box::new(store.clone()),
    );
    let config = password_grant(&server, Some("read offline_access"));
    let key = manager.cache_key(&config).expect("key");
    // The first token: its save lapses too, over nothing stored.
    let (first, _) = manager.token(&config).expect("the first token");
    assert_eq!(
        store.inner.load(&key).expect("read"),
        Some(first.state.clone())
    );

    // Another worker's API refused this access token: its state, spent.
    let connection = manager.harness().connection(&config).expect("connection");
    let refused = host_harness::component::Response {
        status: 401,
        headers: vec![(
            "www-authenticate".into(),
            "Bearer error=\"invalid_token\"".into(),
        )],
        body: Vec::new(),
    };
    let spent = match connection
        .judge(&refused, &first.state, false)
        .expect("judged")
    {
        host_harness::component::Verdict::RenewAndRetry(spent) => spent,
        other => panic!("{other:?}"),
    };
    assert_ne!(spent, first.state);
    *store.meanwhile.lock().expect("lock") = Some(spent);

    offset.store(35, Ordering::SeqCst);
    let (renewed, source) = manager.token(&config).expect("stored over the spent state");
    assert_eq!(source, TokenSource::Refreshed);
    assert_eq!(store.inner.load(&key).expect("read"), Some(renewed.state));
}
