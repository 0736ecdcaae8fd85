//! The per-state lock `.mkit/git-<remote>.lock`.
//!
//! One bridge operation runs against a state directory at a time. The lock is
//! the same one the reference takes: an exclusive advisory lock (`flock`,
//! through std's `File::lock` family) on the file `git-<remote>.lock` directly
//! in the `.mkit` directory, so our runs and the reference's exclude each
//! other. The file is never removed: the kernel drops the lock when the
//! holder's descriptor closes, even if the holder is killed, so a leftover
//! file means nothing. Acquisition polls through
//! [`crate::durable::wait_for_lock`] and gives up with [`StateError::Busy`] after a timeout.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{Result, StateError};
use super::validate_remote_name;
use crate::durable::{self, io_err};

/// How long [`lock_state_default`] waits; the reference waits the same.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The lock file guarding state `remote` under the `.mkit` directory.
pub fn lock_path(mkit_dir: &Path, remote: &str) -> Result<PathBuf> {
    validate_remote_name(remote)?;
    Ok(mkit_dir.join(format!("git-{remote}.lock")))
}

/// A held per-state lock; dropping it releases the lock (the file stays).
#[derive(Debug)]
#[must_use = "the lock is released when this guard is dropped"]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway; unlocking first
        // just makes the release independent of any duplicated descriptor.
        let _ = self.file.unlock();
    }
}

/// Take the lock for state `remote`, waiting up to `timeout` for another
/// holder to let go; [`StateError::Busy`] when it does not.
pub fn lock_state(mkit_dir: &Path, remote: &str, timeout: Duration) -> Result<StateLock> {
    let path = lock_path(mkit_dir, remote)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    let start = Instant::now();
    if durable::wait_for_lock(&file, &path, timeout)? {
        return Ok(StateLock { file, path });
    }
    Err(StateError::Busy {
        remote: remote.to_owned(),
        path,
        waited: start.elapsed(),
    })
}

/// Take the lock for state `remote` only if it is free right now:
/// `Ok(None)` when another holder has it (nothing waits). For callers that
/// report a held lock instead of waiting for it, such as `mirror`.
pub fn try_lock_state(mkit_dir: &Path, remote: &str) -> Result<Option<StateLock>> {
    match lock_state(mkit_dir, remote, Duration::ZERO) {
        Ok(lock) => Ok(Some(lock)),
        Err(StateError::Busy { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`lock_state`] with [`DEFAULT_LOCK_TIMEOUT`].
pub fn lock_state_default(mkit_dir: &Path, remote: &str) -> Result<StateLock> {
    lock_state(mkit_dir, remote, DEFAULT_LOCK_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_lock_state_reports_a_held_lock_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let held = try_lock_state(dir.path(), "origin").unwrap().expect("free");
        // flock excludes another open file description, even in this process.
        assert!(try_lock_state(dir.path(), "origin").unwrap().is_none());
        assert!(try_lock_state(dir.path(), "other").unwrap().is_some());
        drop(held);
        assert!(try_lock_state(dir.path(), "origin").unwrap().is_some());
        assert!(matches!(
            try_lock_state(dir.path(), "../x"),
            Err(StateError::InvalidRemoteName { .. })
        ));
    }
}
