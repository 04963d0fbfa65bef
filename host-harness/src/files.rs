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
