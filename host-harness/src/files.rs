//! Files that hold secrets: written whole or not at all, readable by the
//! owner only.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// What the temporary files of [`replace_private`] are named after `.NAME`.
const TEMPORARY_MARK: &str = ".tmp-";

/// Replaces `path` with `bytes`: written to a temporary file with a random
/// name in the same directory, readable by the owner only, flushed, renamed
/// over the target, and the directory flushed too, so a crash leaves the old
/// file or the new one, never half of one, and the new one survives a power
/// loss once this returns.
pub fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let directory = directory_of(path);
    let file_name = path
        .file_name()
        .with_context(|| format!("`{}` is not a file name", path.display()))?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("the system random generator failed: {e}"))?;
    let temporary = directory.join(format!(
        ".{}{TEMPORARY_MARK}{:016x}",
        file_name.to_string_lossy(),
        u64::from_le_bytes(random)
    ));
    let written = write_new_private(&temporary, bytes).and_then(|()| {
        std::fs::rename(&temporary, path)
            .with_context(|| format!("failed to replace `{}`", path.display()))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    sync_directory(directory)
}

/// Removes the temporary files an interrupted [`replace_private`] of `path`
/// left behind. Only safe while no one else can be writing `path`: under
/// the lock that orders its writers.
pub fn remove_stale_temporaries(path: &Path) -> Result<()> {
    let Some(file_name) = path.file_name() else {
        return Ok(());
    };
    let prefix = format!(".{}{TEMPORARY_MARK}", file_name.to_string_lossy());
    let entries = match std::fs::read_dir(directory_of(path)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Flushes a directory's entries, so that a rename in it is durable.
fn sync_directory(directory: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(directory)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("failed to flush the directory `{}`", directory.display()))?;
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

/// Creates a directory (and its parents) readable by the owner only.
pub fn create_private_dir(directory: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(directory)
        .with_context(|| format!("failed to create `{}`", directory.display()))
}

/// Reads a small file that holds a secret (a key, a URL with a password),
/// refusing one that others can read or write, or that is not a plain
/// file: a secret others can read is no longer one. `what` names it in
/// errors; its contents never appear in one.
pub fn read_private(path: &Path, what: &str) -> Result<String> {
    use std::io::Read as _;
    /// Secrets are short: anything longer is not the file meant.
    const MAX_BYTES: u64 = 64 * 1024;
    let file = std::fs::File::open(path)
        .with_context(|| format!("failed to read the {what} `{}`", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("failed to inspect the {what} `{}`", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("the {what} `{}` is not a plain file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "the {what} `{}` can be read or written by others (mode {mode:03o}): make it yours alone with `chmod 600`",
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("the {what} `{}` is not text", path.display()))?;
    if text.len() as u64 > MAX_BYTES {
        anyhow::bail!(
            "the {what} `{}` is larger than {} KiB: it is not the file meant",
            path.display(),
            MAX_BYTES / 1024
        );
    }
    Ok(text)
}
