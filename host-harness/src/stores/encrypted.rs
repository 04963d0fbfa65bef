//! Tokens at rest encrypted with a key the operator supplies, around any
//! store: XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`), the cache
//! key as associated data, so a state moved under another key does not
//! open.
//!
//! Once a key is given, the store holds sealed states only: an unsealed
//! one is refused, since whoever can write the store without the key could
//! otherwise plant an access token that the workers would send. States
//! stored before the key was configured are taken over, and sealed, only
//! in the explicit migration step ([`AtRest::seal_unsealed`]). The states
//! rest under names keyed by the store key too (an HMAC of the cache key),
//! so a reader of the store without the key cannot test guesses of a
//! password or secret against the cache keys.
//!
//! The nonce is derived from the state itself (HMAC-SHA256 under a key of
//! its own, a synthetic IV): the same state always encrypts to the same
//! text, which lets the stores compare what they hold without the key
//! (Redis compares on the server). That reveals only whether two stored
//! states are equal, and states are never equal but for the same token.

use std::time::Duration;

use anyhow::{Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Gate, Lease, LeaseSave, TokenStore};
use crate::component::TokenState;

/// What an encrypted state's text starts with.
const MARK: &str = "enc1:";

/// The environment variable that may hold the key, base64 of 32 bytes.
pub const KEY_VARIABLE: &str = "OAUTH_HARNESS_STORE_KEY";

/// A key for tokens at rest. Debug output hides it.
#[derive(Clone)]
pub struct StoreKey([u8; 32]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

impl StoreKey {
    /// A key from its text: 32 bytes in base64 (standard or URL-safe, with
    /// or without padding), or 64 hexadecimal digits. `source` names where
    /// it came from in errors; the key itself never appears in one.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let text = text.trim();
        // 64 hexadecimal digits would also read as 48 bytes of base64.
        let bytes = hex(text)
            .filter(|bytes| bytes.len() == 32)
            .or_else(|| {
                [STANDARD, URL_SAFE]
                    .iter()
                    .find_map(|engine| engine.decode(text).ok())
            })
            .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
            .or_else(|| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(text)
                    .ok()
            });
        let bytes = bytes.ok_or_else(|| {
            anyhow!("the token store key in {source} is neither base64 nor hexadecimal: make one with `openssl rand -base64 32`")
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            anyhow!(
                "the token store key in {source} is {} bytes long, not 32: make one with `openssl rand -base64 32`",
                bytes.len()
            )
        })?;
        Ok(Self(key))
    }

    /// The key from a file (its text, as [`StoreKey::parse`] reads it),
    /// which must be readable by its owner only.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = crate::files::read_private(path, "token store key file")?;
        Self::parse(&text, &format!("`{}`", path.display()))
    }

    /// The key from [`KEY_VARIABLE`], if it is set.
    pub fn from_environment() -> Result<Option<Self>> {
        match std::env::var(KEY_VARIABLE) {
            Ok(text) => Self::parse(&text, KEY_VARIABLE).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(anyhow!(
                "{KEY_VARIABLE} is not text: give the key in base64"
            )),
        }
    }

    /// A subkey for one purpose, so the cipher and the nonce derivation
    /// never share a key.
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }
}

/// What a sealed state is bound to: its cache key and its eviction time,
/// each length-prefixed, so neither can be changed or moved unnoticed.
fn associated_data(key: &str, evict_after: Option<u64>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(key.len() + 17);
    aad.extend_from_slice(&(key.len() as u64).to_be_bytes());
    aad.extend_from_slice(key.as_bytes());
    match evict_after {
        Some(after) => {
            aad.push(1);
            aad.extend_from_slice(&after.to_be_bytes());
        }
        None => aad.push(0),
    }
    aad
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A store's states as they rest: encrypted before they reach `inner`
/// when a key is given; without one, stored as they are, and encrypted
/// ones refused with a message that asks for the key.
pub struct AtRest<S> {
    inner: S,
    keys: Option<Keys>,
    /// Whether unsealed states stored before the key are taken over.
    seal_unsealed: bool,
    /// The inner store, for messages.
    name: String,
}

/// The subkeys of a store key, one per purpose.
struct Keys {
    cipher: XChaCha20Poly1305,
    nonce: [u8; 32],
    names: [u8; 32],
}

/// What the name of a state sealed under a keyed name starts with.
const NAME_MARK: &str = "sealed.";

impl<S: TokenStore> AtRest<S> {
    /// `inner`'s states encrypted with `key`, if given; `name` names the
    /// store in errors.
    pub fn new(inner: S, key: Option<&StoreKey>, name: &str) -> Self {
        Self {
            inner,
            keys: key.map(|key| Keys {
                cipher: XChaCha20Poly1305::new(&key.derive(b"oauth-harness store cipher").into()),
                nonce: key.derive(b"oauth-harness store nonce"),
                names: key.derive(b"oauth-harness store names"),
            }),
            seal_unsealed: false,
            name: name.to_owned(),
        }
    }

    /// The migration step after a key is first configured: an unsealed
    /// state stored before, under its cache key, is taken over (sealed and
    /// moved under its keyed name) instead of refused. Whoever could write
    /// the store meanwhile could have planted it: use this once, in a
    /// controlled run, then go back to refusing.
    pub fn seal_unsealed(&mut self, take_over: bool) {
        self.seal_unsealed = take_over;
    }

    /// The name a state rests under: with a key, an HMAC of its cache key
    /// under a subkey of the store key.
    fn resting_name(&self, key: &str) -> String {
        let Some(keys) = &self.keys else {
            return key.to_owned();
        };
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.names).expect("any key length");
        mac.update(key.as_bytes());
        format!(
            "{NAME_MARK}{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// Whether states are encrypted.
    pub fn encrypted(&self) -> bool {
        self.keys.is_some()
    }

    fn seal(&self, key: &str, state: &TokenState) -> Result<TokenState> {
        let Some(keys) = &self.keys else {
            return Ok(state.clone());
        };
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.nonce).expect("any key length");
        let aad = associated_data(key, state.evict_after);
        mac.update(&(aad.len() as u64).to_be_bytes());
        mac.update(&aad);
        mac.update(state.data().as_bytes());
        let digest = mac.finalize().into_bytes();
        let nonce = XNonce::from_slice(&digest[..24]);
        let sealed = keys
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: state.data().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| {
                anyhow!(
                    "failed to encrypt a token for the token store {}",
                    self.name
                )
            })?;
        let mut text = nonce.to_vec();
        text.extend_from_slice(&sealed);
        Ok(TokenState::new(
            format!("{MARK}{}", URL_SAFE_NO_PAD.encode(text)),
            state.evict_after,
        ))
    }

    /// A stored state as it was sealed; unsealed states are refused where
    /// a key is given (see the module), and sealed ones where none is.
    fn open(&self, key: &str, stored: TokenState) -> Result<TokenState> {
        let Some(text) = stored.data().strip_prefix(MARK) else {
            if self.keys.is_some() {
                return Err(anyhow!(
                    "the token store {} holds an unsealed token where it keeps sealed ones: whoever wrote it did not have the key, so it is not used; remove it (see `oauth-harness` README, tokens at rest)",
                    self.name
                ));
            }
            return Ok(stored);
        };
        let Some(keys) = &self.keys else {
            return Err(anyhow!(
                "the token store {} holds encrypted tokens: give their key ({KEY_VARIABLE} or --store-key-file)",
                self.name
            ));
        };
        let wrong_key = || {
            anyhow!(
                "the token store {} holds tokens encrypted with another key: give the key they were encrypted with ({KEY_VARIABLE} or --store-key-file), or remove them to start afresh",
                self.name
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| wrong_key())?;
        if bytes.len() < 24 {
            return Err(wrong_key());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = keys
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &associated_data(key, stored.evict_after),
                },
            )
            .map_err(|_| wrong_key())?;
        let data = String::from_utf8(plain).map_err(|_| wrong_key())?;
        Ok(TokenState::new(data, stored.evict_after))
    }
}

/// The inner store's lease, encrypting what is saved under it.
struct EncryptedLease<'s, S> {
    store: &'s AtRest<S>,
    key: String,
    inner: Box<dyn Lease + 's>,
}

impl<S: TokenStore> Lease for EncryptedLease<'_, S> {
    fn presenting(
        &self,
        from: Option<&TokenState>,
        presented: Option<&[u8]>,
        bound: Duration,
    ) -> Result<Gate> {
        let from = from
            .map(|state| self.store.seal(&self.key, state))
            .transpose()?;
        Ok(
            match self.inner.presenting(from.as_ref(), presented, bound)? {
                Gate::Changed(Some(stored)) => {
                    Gate::Changed(Some(self.store.open(&self.key, stored)?))
                }
                other => other,
            },
        )
    }

    fn save(&self, state: &TokenState) -> Result<LeaseSave> {
        self.inner.save(&self.store.seal(&self.key, state)?)
    }
}

/// The name of the store's constant that tells whether the key given is
/// the one its tokens were sealed with; earlier versions kept it as a
/// state under this name.
const KEY_CHECK: &str = "oauth-harness:key-check";

impl<S: TokenStore> AtRest<S> {
    /// Refuses a wrong key (or none, where tokens rest encrypted) before
    /// anything is read or written: the key check the store holds opens only
    /// with the key that sealed it. The first keyed worker sets it, once
    /// and for good (of two starting at once with different keys, only one
    /// does; the other is refused).
    fn check_key(&self) -> Result<()> {
        // Kept as a state, with a time to live, by earlier versions.
        let legacy = self
            .inner
            .load(KEY_CHECK)?
            .map(|state| state.data().to_owned());
        let candidate = match (&self.keys, &legacy) {
            (Some(_), Some(legacy)) => Some(legacy.clone()),
            (Some(_), None) => Some(
                self.seal(KEY_CHECK, &TokenState::new("key check".into(), None))?
                    .data()
                    .to_owned(),
            ),
            (None, _) => None,
        };
        let check = self
            .inner
            .constant(KEY_CHECK, candidate.as_deref())?
            .or(legacy);
        match check {
            Some(check) => self.open(KEY_CHECK, TokenState::new(check, None)).map(drop),
            None => Ok(()),
        }
    }

    /// A state stored before the key was configured, or by a version that
    /// kept sealed states under their cache keys: sealed, it is moved under
    /// its keyed name; unsealed, only in the migration step.
    fn take_over(&self, key: &str, resting: &str) -> Result<Option<TokenState>> {
        let Some(earlier) = self.inner.load(key)? else {
            return Ok(None);
        };
        let (plain, sealed) = if earlier.data().starts_with(MARK) {
            (self.open(key, earlier.clone())?, earlier.clone())
        } else if self.seal_unsealed {
            (earlier.clone(), self.seal(key, &earlier)?)
        } else {
            return Err(anyhow!(
                "the token store {} holds an unsealed token stored before its key was configured: it is not used unless you take it over once with --store-seal-unsealed (see the README, tokens at rest), or remove it",
                self.name
            ));
        };
        if !self
            .inner
            .replace_if_unchanged(resting, None, Some(&sealed))?
        {
            // Another worker took it over, or renewed, meanwhile.
            return self
                .inner
                .load(resting)?
                .map(|stored| self.open(key, stored))
                .transpose();
        }
        // The copy under the cache key goes: it names the configuration.
        self.inner.replace_if_unchanged(key, Some(&earlier), None)?;
        Ok(Some(plain))
    }
}

impl<S: TokenStore> TokenStore for AtRest<S> {
    fn secret(&self) -> Result<Vec<u8>> {
        // Asked for once, before the first key is formed: the place to
        // refuse a wrong key.
        self.check_key()?;
        self.inner.secret()
    }

    fn constant(&self, name: &str, candidate: Option<&str>) -> Result<Option<String>> {
        self.inner.constant(name, candidate)
    }

    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        let resting = self.resting_name(key);
        match self.inner.load(&resting)? {
            Some(stored) => self.open(key, stored).map(Some),
            None if resting != key => self.take_over(key, &resting),
            None => Ok(None),
        }
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        self.inner
            .save(&self.resting_name(key), &self.seal(key, state)?)
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool> {
        let expected = expected.map(|state| self.seal(key, state)).transpose()?;
        let new = new.map(|state| self.seal(key, state)).transpose()?;
        self.inner
            .replace_if_unchanged(&self.resting_name(key), expected.as_ref(), new.as_ref())
    }

    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>> {
        Ok(Box::new(EncryptedLease {
            store: self,
            key: key.to_owned(),
            inner: self.inner.lease(&self.resting_name(key), wait)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::MemoryStore;

    fn key(byte: u8) -> StoreKey {
        StoreKey([byte; 32])
    }

    #[test]
    fn states_rest_encrypted_and_open_only_with_their_key_under_their_cache_key() {
        let inner = std::sync::Arc::new(MemoryStore::default());
        let store = AtRest::new(inner.clone(), Some(&key(1)), "`test`");
        let state = TokenState::new(r#"{"refresh_token":"rt-secret"}"#.into(), None);
        store.save("k", &state).expect("saved");
        let resting = store.resting_name("k");
        assert!(
            inner.load("k").expect("read").is_none(),
            "not under the cache key"
        );
        let at_rest = inner.load(&resting).expect("read").expect("stored");
        assert!(at_rest.data().starts_with(MARK));
        assert!(!at_rest.data().contains("rt-secret"));
        assert_eq!(store.load("k").expect("opened"), Some(state.clone()));
        // Compare-and-set works on what rests: the same state seals the same.
        let spent = TokenState::new("spent".into(), None);
        assert!(
            store
                .replace_if_unchanged("k", Some(&state), Some(&spent))
                .expect("replaced")
        );

        // Another key finds nothing under its own names; moved there, the
        // sealed state does not open.
        let other = AtRest::new(inner.clone(), Some(&key(2)), "`test`");
        assert!(other.load("k").expect("nothing of its own").is_none());
        inner
            .save(&other.resting_name("k"), &at_rest)
            .expect("moved");
        let error = other.load("k").expect_err("another key").to_string();
        assert!(error.contains("encrypted with another key"), "{error}");
        // Moved under another cache key, it does not open either.
        inner
            .save(&store.resting_name("moved"), &at_rest)
            .expect("moved");
        assert!(store.load("moved").is_err());
        // Without a key, encrypted states are refused, naming the key.
        let keyless = AtRest::new(inner.clone(), None, "`test`");
        inner.save("k", &at_rest).expect("copied");
        let error = keyless.load("k").expect_err("no key").to_string();
        assert!(error.contains(KEY_VARIABLE), "{error}");
    }

    #[test]
    fn with_a_key_an_unsealed_state_is_refused_wherever_it_rests_but_in_the_migration_step() {
        let inner = std::sync::Arc::new(MemoryStore::default());
        let store = AtRest::new(inner.clone(), Some(&key(4)), "`test`");
        // Planted, by a writer without the key, where the sealed one rests.
        let planted = TokenState::new(r#"{"access_token":"AT-PLANTED"}"#.into(), None);
        inner
            .save(&store.resting_name("k"), &planted)
            .expect("planted");
        let error = store.load("k").expect_err("refused").to_string();
        assert!(
            error.contains("unsealed") && error.contains("`test`"),
            "{error}"
        );
        assert!(!error.contains("AT-PLANTED"), "{error}");
        // Even in the migration step: only the pre-key place is taken over.
        let mut migrating = AtRest::new(inner.clone(), Some(&key(4)), "`test`");
        migrating.seal_unsealed(true);
        assert!(migrating.load("k").is_err());
    }

    #[test]
    fn a_key_given_later_takes_over_the_tokens_stored_before_only_in_the_migration_step() {
        let inner = std::sync::Arc::new(MemoryStore::default());
        let plain = AtRest::new(inner.clone(), None, "`test`");
        let state = TokenState::new(r#"{"refresh_token":"rt-plain"}"#.into(), None);
        plain.save("k", &state).expect("saved");
        let keyless_secret = plain.secret().expect("a secret");

        let sealed = AtRest::new(inner.clone(), Some(&key(3)), "`test`");
        assert_eq!(
            sealed.secret().expect("the same"),
            keyless_secret,
            "the same cache keys"
        );
        let error = sealed
            .load("k")
            .expect_err("not without the step")
            .to_string();
        assert!(error.contains("--store-seal-unsealed"), "{error}");

        let mut migrating = AtRest::new(inner.clone(), Some(&key(3)), "`test`");
        migrating.seal_unsealed(true);
        assert_eq!(migrating.load("k").expect("read"), Some(state.clone()));
        assert!(inner.load("k").expect("read").is_none(), "moved away");
        let at_rest = inner
            .load(&sealed.resting_name("k"))
            .expect("read")
            .expect("stored");
        assert!(at_rest.data().starts_with(MARK) && !at_rest.data().contains("rt-plain"));
        // From now on, the ordinary store reads it.
        assert_eq!(sealed.load("k").expect("read"), Some(state));
    }

    #[test]
    fn the_key_check_is_set_once_for_good_and_refuses_any_other_key_or_none() {
        let inner = std::sync::Arc::new(MemoryStore::default());
        let first = AtRest::new(inner.clone(), Some(&key(5)), "`test`");
        let second = AtRest::new(inner.clone(), Some(&key(6)), "`test`");
        first.secret().expect("sets the check");
        let error = second.secret().expect_err("another key").to_string();
        assert!(error.contains("another key"), "{error}");
        let keyless = AtRest::new(inner.clone(), None, "`test`");
        let error = keyless.secret().expect_err("no key").to_string();
        assert!(error.contains(KEY_VARIABLE), "{error}");
        // A constant of the store's, not a state that expires.
        assert!(inner.load(KEY_CHECK).expect("read").is_none());
        assert!(inner.constant(KEY_CHECK, None).expect("read").is_some());
        first.secret().expect("the same key still opens it");
    }

    #[test]
    fn the_names_states_rest_under_depend_on_the_store_key_not_only_on_what_the_store_holds() {
        let inner = std::sync::Arc::new(MemoryStore::default());
        let (one, two) = (
            AtRest::new(inner.clone(), Some(&key(7)), "`test`"),
            AtRest::new(inner.clone(), Some(&key(8)), "`test`"),
        );
        assert_ne!(one.resting_name("cache-key"), "cache-key");
        assert_ne!(one.resting_name("cache-key"), two.resting_name("cache-key"));
        assert_ne!(one.resting_name("cache-key"), one.resting_name("cache-kez"));
        assert_eq!(
            AtRest::new(inner, None, "`test`").resting_name("cache-key"),
            "cache-key"
        );
    }

    #[test]
    fn keys_are_read_in_base64_or_hex_and_never_shown() {
        let base64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        assert_eq!(StoreKey::parse(base64, "x").expect("base64").0, [1; 32]);
        assert_eq!(
            StoreKey::parse(&"01".repeat(32), "x").expect("hex").0,
            [1; 32]
        );
        let short = StoreKey::parse("AQID", "the variable")
            .expect_err("3 bytes")
            .to_string();
        assert!(
            short.contains("3 bytes") && short.contains("the variable"),
            "{short}"
        );
        assert!(!format!("{:?}", key(7)).contains('7'));
    }
}
