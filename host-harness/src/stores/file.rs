//! The file store: one machine, any number of processes.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::{Lease, TokenStore};
use crate::component::TokenState;
use crate::files::{create_private_dir, remove_stale_temporaries, replace_private};
use crate::harness::unix_now;
use crate::lock;

/// A JSON file of token states by cache key, readable by the owner only.
/// Every change happens under an OS lock on a companion `.lock` file, so
/// processes sharing the file never lose each other's changes, and the
/// file is replaced atomically, so a crash leaves the old one or the new.
pub struct FileStore {
    path: PathBuf,
    /// Threads of this process take turns; the OS lock orders processes.
    writing: Mutex<()>,
}

/// What the file says it is, so a foreign or older file is recognised.
const FILE_FORMAT: &str = "oauth-harness token store";
/// The version of the file's layout: 2 holds the component's states.
const FILE_VERSION: u32 = 2;

/// The file's contents.
#[derive(Serialize, Deserialize)]
struct StoreFile {
    format: String,
    version: u32,
    /// The store's secret, which keys the cache keys (base64).
    #[serde(default)]
    secret: Option<String>,
    states: HashMap<String, StoredState>,
}

/// A state as the file holds it.
#[derive(Serialize, Deserialize)]
struct StoredState {
    data: String,
    evict_after: Option<u64>,
}

/// How long a change waits for another process to release the store's lock:
/// a change takes milliseconds, so only a hung process holds it this long.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How long past its `evict_after` a state stays in the file, so that
/// clocks that differ a little between processes do not matter.
const EVICTION_GRACE_SECS: u64 = 24 * 3600;

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

    fn read_all(&self) -> Result<HashMap<String, StoredState>> {
        Ok(self
            .read_file()?
            .map(|file| file.states)
            .unwrap_or_default())
    }

    /// The whole file, if there is one.
    fn read_file(&self) -> Result<Option<StoreFile>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow!(
                    "failed to read the token store `{}`: {e}",
                    self.path.display()
                ));
            }
        };
        let damaged = || {
            anyhow!(
                "the token store `{}` is not an oauth-harness token store of version {FILE_VERSION} (damaged, foreign, or written by an older oauth-harness): move it aside or delete it, or pass --store with another file",
                self.path.display()
            )
        };
        let file: StoreFile = serde_json::from_slice(&bytes).map_err(|_| damaged())?;
        if file.format != FILE_FORMAT || file.version != FILE_VERSION {
            return Err(damaged());
        }
        Ok(Some(file))
    }

    /// The secret a file holds.
    fn secret_in(&self, file: &StoreFile) -> Result<Option<Vec<u8>>> {
        use base64::Engine as _;
        file.secret
            .as_deref()
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| {
                        anyhow!(
                            "the token store `{}` holds a damaged secret: move it aside or delete it",
                            self.path.display()
                        )
                    })
            })
            .transpose()
    }

    /// Runs a change of the whole file under the locks, and writes the
    /// result if the change asks for it.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut HashMap<String, StoredState>) -> (bool, T),
    ) -> Result<T> {
        let _writing = lock(&self.writing);
        let (lock_file, lock_path) = self.lock_file(".lock")?;
        self.wait_for_lock(&lock_file, &lock_path, LOCK_WAIT)?;
        // Under the lock no one else writes: what a crash left is stale.
        remove_stale_temporaries(&self.path)?;
        let (mut states, secret) = match self.read_file()? {
            Some(file) => (file.states, file.secret),
            None => (HashMap::new(), None),
        };
        let (write, value) = change(&mut states);
        if write {
            // The first write gives the store its secret, kept from then on.
            let secret = match secret {
                Some(secret) => secret,
                None => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(super::new_secret()?)
                }
            };
            let now = unix_now();
            states.retain(|_, state| {
                state
                    .evict_after
                    .is_none_or(|after| after.saturating_add(EVICTION_GRACE_SECS) > now)
            });
            let file = StoreFile {
                format: FILE_FORMAT.into(),
                version: FILE_VERSION,
                secret: Some(secret),
                states,
            };
            replace_private(&self.path, &serde_json::to_vec_pretty(&file)?)?;
        }
        // The OS lock goes with the file handle.
        drop(lock_file);
        Ok(value)
    }
}

/// A lease on a key of a [`FileStore`]: an OS lock on the key's lease
/// file, which the kernel releases if the process dies.
struct FileLease<'s> {
    store: &'s FileStore,
    key: String,
    /// Holds the lock until dropped.
    _locked: File,
}

impl Lease for FileLease<'_> {
    fn save(&self, state: &TokenState) -> Result<()> {
        // An OS lock lapses only with its process: while this runs, it holds.
        self.store.save(&self.key, state)
    }
}

impl FileStore {
    /// Opens (creating it, owner-only) the lock file beside the store whose
    /// name ends in `suffix`.
    fn lock_file(&self, suffix: &str) -> Result<(File, PathBuf)> {
        let directory = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(directory)?;
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(suffix);
        let lock_path = PathBuf::from(lock_path);
        let mut options = File::options();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&lock_path).with_context(|| {
            format!(
                "failed to open the token store's lock file `{}`",
                lock_path.display()
            )
        })?;
        Ok((file, lock_path))
    }

    /// Takes the OS lock on one of the store's lock files, waiting at most
    /// `wait` for another process to release it.
    fn wait_for_lock(&self, lock_file: &File, lock_path: &Path, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            match lock_file.try_lock() {
                Ok(()) => return Ok(()),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(anyhow!(
                        "the token store `{}` stayed locked for {} s by another process (its lock file is `{}`): stop a hung oauth-harness, or pass --store with another file",
                        self.path.display(),
                        wait.as_secs(),
                        lock_path.display()
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(anyhow!(
                        "failed to lock the token store `{}` through `{}`: {e}",
                        self.path.display(),
                        lock_path.display()
                    ));
                }
            }
        }
    }
}

impl TokenStore for FileStore {
    fn secret(&self) -> Result<Vec<u8>> {
        if let Some(secret) = self
            .read_file()?
            .as_ref()
            .map(|file| self.secret_in(file))
            .transpose()?
            .flatten()
        {
            return Ok(secret);
        }
        // None yet: a write under the lock creates it (or keeps the one
        // another process created meanwhile).
        self.change(|_| (true, ()))?;
        self.read_file()?
            .as_ref()
            .map(|file| self.secret_in(file))
            .transpose()?
            .flatten()
            .ok_or_else(|| anyhow!("the token store `{}` kept no secret", self.path.display()))
    }

    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        Ok(self
            .read_all()?
            .remove(key)
            .map(|stored| TokenState::new(stored.data, stored.evict_after)))
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        self.change(|states| {
            states.insert(
                key.to_owned(),
                StoredState {
                    data: state.data().to_owned(),
                    evict_after: state.evict_after,
                },
            );
            (true, ())
        })
    }

    fn lease(&self, key: &str, wait: Duration) -> Result<Box<dyn Lease + '_>> {
        use sha2::{Digest as _, Sha256};
        // One lease file per key, named by a digest: keys are long, and the
        // file name says nothing about the configuration.
        let digest = Sha256::digest(key.as_bytes());
        let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let (file, path) = self.lock_file(&format!(".lease-{name}"))?;
        self.wait_for_lock(&file, &path, wait)?;
        Ok(Box::new(FileLease {
            store: self,
            key: key.to_owned(),
            _locked: file,
        }))
    }

    fn replace_if_unchanged(
        &self,
        key: &str,
        expected: Option<&TokenState>,
        new: Option<&TokenState>,
    ) -> Result<bool> {
        self.change(|states| {
            if states.get(key).map(|stored| stored.data.as_str()) != expected.map(TokenState::data)
            {
                return (false, false);
            }
            match new {
                Some(new) => states.insert(
                    key.to_owned(),
                    StoredState {
                        data: new.data().to_owned(),
                        evict_after: new.evict_after,
                    },
                ),
                None => states.remove(key),
            };
            (true, true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("oauth-harness-{name}-{}", std::process::id()))
    }

    #[test]
    fn the_file_store_keeps_states_privately_across_instances() {
        let directory = directory("store");
        let path = directory.join("nested/tokens.json");
        let saved = TokenState::new("{\"secret\":\"rt-2\"}".into(), None);
        FileStore::new(&path).save("k", &saved).expect("saved");
        let loaded = FileStore::new(&path)
            .load("k")
            .expect("read")
            .expect("present");
        assert_eq!(loaded, saved);
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

    #[test]
    fn a_replacement_happens_only_over_what_was_read() {
        let directory = directory("replace");
        let store = FileStore::new(directory.join("tokens.json"));
        let first = TokenState::new("first".into(), None);
        let second = TokenState::new("second".into(), None);
        let spent = TokenState::new("first, spent".into(), None);
        store.save("k", &first).expect("saved");
        store.save("k", &second).expect("another worker renewed");
        assert!(
            !store
                .replace_if_unchanged("k", Some(&first), Some(&spent))
                .expect("read")
        );
        assert_eq!(store.load("k").expect("read"), Some(second.clone()));
        assert!(
            store
                .replace_if_unchanged("k", Some(&second), None)
                .expect("read")
        );
        assert_eq!(store.load("k").expect("read"), None);
        let _ = std::fs::remove_dir_all(directory);
    }

    #[test]
    fn what_a_crash_left_behind_neither_blocks_nor_stays() {
        let directory = directory("stale");
        std::fs::create_dir_all(&directory).expect("directory");
        let path = directory.join("tokens.json");
        let stale = directory.join(".tokens.json.tmp-00000000000000ff");
        std::fs::write(&stale, "half a write").expect("written");
        let store = FileStore::new(&path);
        store
            .save("k", &TokenState::new("state".into(), None))
            .expect("saved");
        assert!(!stale.exists(), "the stale temporary is removed");
        assert!(store.load("k").expect("read").is_some());
        let _ = std::fs::remove_dir_all(directory);
    }

    #[test]
    fn a_foreign_file_is_refused_and_left_alone() {
        let directory = directory("foreign");
        std::fs::create_dir_all(&directory).expect("directory");
        let path = directory.join("tokens.json");
        let old = r#"{"v1.abc":{"access_token":"at","token_type":"Bearer","obtained_at":1}}"#;
        std::fs::write(&path, old).expect("written");
        let store = FileStore::new(&path);
        let error = store.load("k").expect_err("foreign").to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("delete it"), "{error}");
        assert!(store.save("k", &TokenState::new("x".into(), None)).is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), old);
        let _ = std::fs::remove_dir_all(directory);
    }
}
