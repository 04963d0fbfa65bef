//! Files that hold secrets: written whole or not at all, readable by the
//! owner only.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Replaces `path` with `bytes`: written to a temporary file in the same
/// directory, readable by the owner only, then renamed over the target, so
/// a crash leaves the old file or the new one, never half of one.
pub fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .with_context(|| format!("`{}` is not a file name", path.display()))?;
    let temporary = directory.join(format!(
        ".{}.tmp-{}-{:?}",
        file_name.to_string_lossy(),
        std::process::id(),
        std::thread::current().id()
    ));
    let written = write_new_private(&temporary, bytes).and_then(|()| {
        std::fs::rename(&temporary, path)
            .with_context(|| format!("failed to replace `{}`", path.display()))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
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
