//! Tokens at rest encrypted with a key the operator supplies, around any
//! store: XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`), the cache
//! key as associated data, so a state moved under another key does not
//! open.
//!
//! The nonce is derived from the state itself (HMAC-SHA256 under a key of
//! its own, a synthetic IV): the same state always encrypts to the same
//! text, which lets the stores compare what they hold without the key
//! (Redis compares on the server). That reveals only whether two stored
//! states are equal, and states are never equal but for the same token.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Lease, TokenStore};
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

    /// The key from a file (its text, as [`StoreKey::parse`] reads it).
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "failed to read the token store key file `{}`",
                path.display()
            )
        })?;
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
    keys: Option<(XChaCha20Poly1305, [u8; 32])>,
    /// The inner store, for messages.
    name: String,
}

impl<S: TokenStore> AtRest<S> {
    /// `inner`'s states encrypted with `key`, if given; `name` names the
    /// store in errors.
    pub fn new(inner: S, key: Option<&StoreKey>, name: &str) -> Self {
        Self {
            inner,
            keys: key.map(|key| {
                (
                    XChaCha20Poly1305::new(&key.derive(b"oauth-harness store cipher").into()),
                    key.derive(b"oauth-harness store nonce"),
                )
            }),
            name: name.to_owned(),
        }
    }

    /// Whether states are encrypted.
    pub fn encrypted(&self) -> bool {
        self.keys.is_some()
    }

    fn seal(&self, key: &str, state: &TokenState) -> Result<TokenState> {
        let Some((cipher, nonce_key)) = &self.keys else {
            return Ok(state.clone());
        };
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(nonce_key).expect("any key length");
        let aad = associated_data(key, state.evict_after);
        mac.update(&(aad.len() as u64).to_be_bytes());
        mac.update(&aad);
        mac.update(state.data().as_bytes());
        let digest = mac.finalize().into_bytes();
        let nonce = XNonce::from_slice(&digest[..24]);
        let sealed = cipher
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

    fn open(&self, key: &str, stored: TokenState) -> Result<TokenState> {
        // A state stored before the key was given is read, and encrypted
        // the next time it is saved.
        let Some(text) = stored.data().strip_prefix(MARK) else {
            return Ok(stored);
        };
        let Some((cipher, _)) = &self.keys else {
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
        let plain = cipher
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
    fn save(&self, state: &TokenState) -> Result<()> {
        self.inner.save(&self.store.seal(&self.key, state)?)
    }
}

/// Where a store keeps a sealed value that tells whether the key given is
/// the one its tokens were sealed with.
const KEY_CHECK: &str = "oauth-harness:key-check";

impl<S: TokenStore> AtRest<S> {
    /// Refuses a wrong key (or none, where tokens rest encrypted) before
    /// anything is read or written: the key check the store holds opens only
    /// with the key that sealed it, and is sealed at the first use.
    fn check_key(&self) -> Result<()> {
        match (self.keys.is_some(), self.inner.load(KEY_CHECK)?) {
            (true, Some(stored)) => self.open(KEY_CHECK, stored).map(drop),
            (true, None) => self.inner.save(
                KEY_CHECK,
                &self.seal(KEY_CHECK, &TokenState::new("key check".into(), None))?,
            ),
            (false, Some(stored)) => self.open(KEY_CHECK, stored).map(drop),
            (false, None) => Ok(()),
        }
    }
}

impl<S: TokenStore> TokenStore for AtRest<S> {
    fn secret(&self) -> Result<Vec<u8>> {
        // Asked for once, before the first key is formed: the place to
        // refuse a wrong key. The cache keys stay keyed by the store's own
        // secret, so giving a key later finds the states stored before
        // (and seals them at their next save).
        self.check_key()?;
        self.inner.secret()
    }

    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        self.inner
            .load(key)?
            .map(|stored| self.open(key, stored))
            .transpose()
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        self.inner.save(key, &self.seal(key, state)?)
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool> {
        let sealed = expected.map(|state| self.seal(key, state)).transpose()?;
        let new = new.map(|state| self.seal(key, state)).transpose()?;
        if self
            .inner
            .replace_if_unchanged(key, sealed.as_ref(), new.as_ref())?
        {
            return Ok(true);
        }
        // A state stored before the key was given rests as it is.
        match expected {
            Some(plain) if self.keys.is_some() => {
                self.inner
                    .replace_if_unchanged(key, Some(plain), new.as_ref())
            }
            _ => Ok(false),
        }
    }

    fn lease(&self, key: &str, hold: Duration) -> Result<Box<dyn Lease + '_>> {
        Ok(Box::new(EncryptedLease {
            store: self,
            key: key.to_owned(),
            inner: self.inner.lease(key, hold)?,
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
        let at_rest = inner.load("k").expect("read").expect("stored");
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

        let other = AtRest::new(inner.clone(), Some(&key(2)), "`test`");
        let error = other.load("k").expect_err("another key").to_string();
        assert!(error.contains("encrypted with another key"), "{error}");
        // Moved under another cache key, it does not open either.
        inner.save("moved", &at_rest).expect("moved");
        assert!(store.load("moved").is_err());
        // The stored text is left alone by a failed open.
        assert_eq!(
            inner
                .load("k")
                .expect("read")
                .map(|s| s.data().starts_with(MARK)),
            Some(true)
        );
        // Without a key, encrypted states are refused, naming the key.
        let keyless = AtRest::new(inner.clone(), None, "`test`");
        let error = keyless.load("k").expect_err("no key").to_string();
        assert!(error.contains(KEY_VARIABLE), "{error}");
    }

    #[test]
    fn a_key_given_later_finds_the_tokens_stored_before_and_seals_them() {
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
        assert_eq!(sealed.load("k").expect("read"), Some(state.clone()));
        sealed.save("k", &state).expect("saved");
        let at_rest = inner.load("k").expect("read").expect("stored");
        assert!(at_rest.data().starts_with(MARK) && !at_rest.data().contains("rt-plain"));
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
