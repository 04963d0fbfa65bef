//! The file store: one machine, any number of processes.
//!
//! The store is one file in a directory that only its owner can write.
//! Its path is resolved once (links followed to the real file, whose lock
//! files are named after it), so two spellings of one store never become
//! two stores; what cannot be resolved safely (a dangling link, a file
//! with several hard links, a device, a directory others can write, a
//! network file system whose locks may not hold) is refused, naming it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::{Lease, LeaseSave, TokenStore};
use crate::component::TokenState;
use crate::files::{create_private_dir, remove_stale_temporaries, replace_private};
use crate::harness::unix_now;
use crate::lock;

/// A JSON file of token states by cache key, readable by the owner only.
/// Every change happens under an OS lock on a companion `.lock` file, so
/// processes sharing the file never lose each other's changes, and the
/// file is replaced atomically, so a crash leaves the old one or the new.
pub struct FileStore {
    /// The path as given, for messages.
    path: PathBuf,
    /// The real file, resolved at the first use.
    resolved: OnceLock<PathBuf>,
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
    /// Values kept for good, apart from the states (the key check).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    constants: BTreeMap<String, String>,
    states: HashMap<String, StoredState>,
}

/// What a change may touch: the states and the constants.
#[derive(Default)]
struct Contents {
    states: HashMap<String, StoredState>,
    constants: BTreeMap<String, String>,
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

/// The largest store file read: thousands of states fit many times over,
/// and a store path that leads somewhere endless fails at once.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

impl FileStore {
    /// A store in this file; it need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            resolved: OnceLock::new(),
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

    /// The real file: the given path with its directory created (owner
    /// only) and every link resolved, checked as the module says.
    fn resolved(&self) -> Result<&Path> {
        if let Some(resolved) = self.resolved.get() {
            return Ok(resolved);
        }
        let resolved = resolve(&self.path)?;
        Ok(self.resolved.get_or_init(|| resolved))
    }

    /// The whole file, if there is one.
    fn read_file(&self) -> Result<Option<StoreFile>> {
        let path = self.resolved()?;
        let failed = |e: std::io::Error| {
            anyhow!(
                "failed to read the token store `{}`: {e}",
                self.path.display()
            )
        };
        let file = match open_no_follow(path, false) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        check_regular(&file, &self.path, "token store")?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(anyhow!(
                "the token store `{}` is larger than {} MiB: it is not an oauth-harness token store; pass --store with another file",
                self.path.display(),
                MAX_FILE_BYTES / (1024 * 1024)
            ));
        }
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
    fn change<T>(&self, change: impl FnOnce(&mut Contents) -> (bool, T)) -> Result<T> {
        let _writing = lock(&self.writing);
        let (lock_file, lock_path) = self.lock_file(".lock")?;
        self.wait_for_lock(&lock_file, &lock_path, LOCK_WAIT)?;
        let path = self.resolved()?;
        // Under the lock no one else writes: what a crash left is stale.
        remove_stale_temporaries(path)?;
        let (mut contents, secret) = match self.read_file()? {
            Some(file) => (
                Contents {
                    states: file.states,
                    constants: file.constants,
                },
                file.secret,
            ),
            None => (Contents::default(), None),
        };
        let (write, value) = change(&mut contents);
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
            contents.states.retain(|_, state| {
                state
                    .evict_after
                    .is_none_or(|after| after.saturating_add(EVICTION_GRACE_SECS) > now)
            });
            let file = StoreFile {
                format: FILE_FORMAT.into(),
                version: FILE_VERSION,
                secret: Some(secret),
                constants: contents.constants,
                states: contents.states,
            };
            replace_private(path, &serde_json::to_vec_pretty(&file)?)?;
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
    fn save(&self, state: &TokenState) -> Result<LeaseSave> {
        // An OS lock lapses only with its process: while this runs, it holds.
        self.store.save(&self.key, state)?;
        Ok(LeaseSave::Saved)
    }
}

impl FileStore {
    /// Opens (creating it, owner-only) the lock file beside the store whose
    /// name ends in `suffix`.
    fn lock_file(&self, suffix: &str) -> Result<(File, PathBuf)> {
        let mut lock_path = self.resolved()?.to_owned().into_os_string();
        lock_path.push(suffix);
        let lock_path = PathBuf::from(lock_path);
        let file = open_no_follow(&lock_path, true).with_context(|| {
            format!(
                "failed to open the token store's lock file `{}` (it must be a plain file, not a link)",
                lock_path.display()
            )
        })?;
        check_regular(&file, &lock_path, "token store's lock file")?;
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

    fn constant(&self, name: &str, candidate: Option<&str>) -> Result<Option<String>> {
        let kept = self
            .read_file()?
            .and_then(|mut file| file.constants.remove(name));
        match (kept, candidate) {
            (Some(kept), _) => Ok(Some(kept)),
            (None, None) => Ok(None),
            // Set under the lock, unless another process set it meanwhile.
            (None, Some(candidate)) => self.change(|contents| {
                if let Some(kept) = contents.constants.get(name) {
                    return (false, Some(kept.clone()));
                }
                contents
                    .constants
                    .insert(name.to_owned(), candidate.to_owned());
                (true, Some(candidate.to_owned()))
            }),
        }
    }

    fn load(&self, key: &str) -> Result<Option<TokenState>> {
        Ok(self
            .read_all()?
            .remove(key)
            .map(|stored| TokenState::new(stored.data, stored.evict_after)))
    }

    fn save(&self, key: &str, state: &TokenState) -> Result<()> {
        self.change(|contents| {
            contents.states.insert(
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
        self.change(|contents| {
            let states = &mut contents.states;
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

/// Resolves a store path as the module says: its directory created (owner
/// only), then the directory and any link at the file resolved to what
/// they are, and each checked.
fn resolve(path: &Path) -> Result<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        anyhow!(
            "the token store `{}` names no file: give a file path",
            path.display()
        )
    })?;
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(directory)?;
    let directory = std::fs::canonicalize(directory).with_context(|| {
        format!(
            "failed to resolve the token store's directory `{}`",
            directory.display()
        )
    })?;
    let mut resolved = directory.join(file_name);
    // The link's target is the store (it need not exist yet): a rename
    // replaces it there, and its lock files are named after it.
    for _ in 0..MAX_LINKS {
        let is_link =
            std::fs::symlink_metadata(&resolved).is_ok_and(|meta| meta.file_type().is_symlink());
        if !is_link {
            return checked(resolved, path);
        }
        let target = std::fs::read_link(&resolved)
            .with_context(|| format!("failed to read the link `{}`", resolved.display()))?;
        let target = resolved.parent().unwrap_or(Path::new("/")).join(target);
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            break;
        };
        let parent = std::fs::canonicalize(parent).map_err(|e| {
            anyhow!(
                "the token store `{}` is a link into `{}`, which cannot be reached ({e}): point it at a store file in an existing directory, or pass --store with the real file",
                path.display(),
                parent.display()
            )
        })?;
        resolved = parent.join(name);
    }
    Err(anyhow!(
        "the token store `{}` is a chain of links that does not end in a file: pass --store with the real file",
        path.display()
    ))
}

/// How many links a store path may go through.
const MAX_LINKS: usize = 8;

/// Checks a resolved store file (and its directory) as the module says.
fn checked(resolved: PathBuf, path: &Path) -> Result<PathBuf> {
    let real_directory = resolved.parent().unwrap_or(Path::new("/"));
    check_private_directory(real_directory, path)?;
    if let Ok(meta) = std::fs::symlink_metadata(&resolved) {
        check_regular_metadata(&meta, path, "token store")?;
    }
    Ok(resolved)
}

/// Opens a file without following a link at its last component, created
/// owner-only if `create` is set.
fn open_no_follow(path: &Path, create: bool) -> std::io::Result<File> {
    let mut options = File::options();
    options.read(true);
    if create {
        options.create(true).truncate(false).write(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Refuses an open file that is not a plain file of this user's with one
/// name: a device, a pipe, or a second name of another file.
fn check_regular(file: &File, path: &Path, what: &str) -> Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("failed to inspect the {what} `{}`", path.display()))?;
    check_regular_metadata(&meta, path, what)
}

fn check_regular_metadata(meta: &std::fs::Metadata, path: &Path, what: &str) -> Result<()> {
    if !meta.file_type().is_file() {
        return Err(anyhow!(
            "the {what} `{}` is not a plain file: pass --store with a file path",
            path.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.nlink() > 1 {
            return Err(anyhow!(
                "the {what} `{}` has {} hard links: two names for one store would split it; remove the other names, or pass --store with a file of its own",
                path.display(),
                meta.nlink()
            ));
        }
        if meta.uid() != effective_uid() {
            return Err(anyhow!(
                "the {what} `{}` belongs to another user: pass --store with a file of your own",
                path.display()
            ));
        }
    }
    Ok(())
}

/// The process's effective user.
#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// Refuses a directory that another user owns or can write (they could
/// take the lock, or plant a state), and a network file system, whose
/// locks may not order the processes of different machines.
fn check_private_directory(directory: &Path, store: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(directory).with_context(|| {
            format!(
                "failed to inspect the token store's directory `{}`",
                directory.display()
            )
        })?;
        if meta.uid() != effective_uid() || meta.mode() & 0o022 != 0 {
            return Err(anyhow!(
                "the token store `{}` is in `{}`, which {}: keep the store in a directory of your own that only you can write (chmod go-w), such as the default one",
                store.display(),
                directory.display(),
                if meta.uid() != effective_uid() {
                    "belongs to another user"
                } else {
                    "others can write"
                }
            ));
        }
    }
    if let Some(kind) = network_file_system(directory) {
        return Err(anyhow!(
            "the token store `{}` is on {kind}, whose file locks may not order processes on different machines: keep it on a local disk, or share tokens through Redis (--store redis://…)",
            store.display()
        ));
    }
    Ok(())
}

/// The kind of network file system a directory is on, if it is on one.
#[cfg(target_os = "linux")]
fn network_file_system(directory: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt as _;
    // The magic numbers of linux/magic.h.
    const KINDS: [(u64, &str); 4] = [
        (0x6969, "NFS"),
        (0x517B, "SMB"),
        (0xFF53_4D42, "CIFS"),
        (0xFE53_4D42, "SMB2"),
    ];
    let path = std::ffi::CString::new(directory.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is writable
    // memory of the size statfs fills; it is read only when statfs says it
    // filled it.
    #[allow(unsafe_code)]
    let stats = unsafe {
        if libc::statfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    // The field's width differs between targets; the magic fits 32 bits.
    #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
    let magic = (stats.f_type as u64) & 0xFFFF_FFFF;
    KINDS
        .iter()
        .find(|(known, _)| *known == magic)
        .map(|(_, kind)| *kind)
}

#[cfg(not(target_os = "linux"))]
fn network_file_system(_: &Path) -> Option<&'static str> {
    None
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

    #[cfg(unix)]
    #[test]
    fn two_spellings_of_one_store_are_one_store_and_a_second_hard_link_is_refused() {
        let directory = directory("links");
        let real = directory.join("real/tokens.json");
        std::fs::create_dir_all(directory.join("real")).expect("directory");
        let link = directory.join("link.json");
        std::os::unix::fs::symlink(&real, &link).expect("linked");
        let state = TokenState::new("through the link".into(), None);
        FileStore::new(&link).save("k", &state).expect("saved");
        // The link still leads to the store, whose lock is the real one's.
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("there")
                .file_type()
                .is_symlink()
        );
        assert_eq!(FileStore::new(&real).load("k").expect("read"), Some(state));
        assert!(directory.join("real/tokens.json.lock").exists());
        assert!(!directory.join("link.json.lock").exists());

        std::fs::hard_link(&real, directory.join("second-name.json")).expect("linked");
        let error = FileStore::new(&real)
            .load("k")
            .expect_err("two names")
            .to_string();
        assert!(error.contains("hard links"), "{error}");
        let _ = std::fs::remove_dir_all(directory);
    }

    #[cfg(unix)]
    #[test]
    fn a_store_others_can_write_to_or_that_leads_nowhere_safe_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory = directory("unsafe");
        let shared = directory.join("shared");
        std::fs::create_dir_all(&shared).expect("directory");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = FileStore::new(shared.join("tokens.json"))
            .load("k")
            .expect_err("others can write there")
            .to_string();
        assert!(error.contains("others can write"), "{error}");

        // A device: refused before anything is read from it.
        let private = directory.join("private");
        std::fs::create_dir_all(&private).expect("directory");
        std::os::unix::fs::symlink("/dev/zero", private.join("zero.json")).expect("linked");
        let error = FileStore::new(private.join("zero.json"))
            .load("k")
            .expect_err("a device")
            .to_string();
        assert!(error.contains("not a plain file"), "{error}");

        // A lock file planted as a link: not followed, nothing created.
        let target = private.join("created-through-the-link");
        std::os::unix::fs::symlink(&target, private.join("tokens.json.lock")).expect("linked");
        let error = FileStore::new(private.join("tokens.json"))
            .save("k", &TokenState::new("x".into(), None))
            .expect_err("a linked lock file")
            .to_string();
        assert!(error.contains("lock file"), "{error}");
        assert!(!target.exists());
        let _ = std::fs::remove_dir_all(directory);
    }
}
