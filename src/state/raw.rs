//! Retained raw git bytes: `raw/<2 hex>/<38 hex>`.
//!
//! The import side keeps the original bytes of every git commit and tag it
//! translated, in framed form — `"<type> <len>\0"` followed by the body, the
//! exact input of git's SHA-1 — in a file named by that SHA-1 (first two hex
//! digits as a directory, the other 38 as the file name). The SHA-1 is only a
//! locator here; nothing in this module computes or checks it.
//!
//! Each file is written once, by temp file, fsync and rename, and skipped
//! when already present, so the final name never holds partial bytes. The
//! fan-out directories are fsynced in a batch by [`RawWriter::sync`] rather
//! than after every file, because an import retains thousands of them.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::{Result, StateError};
use super::sha1::Sha1;
use crate::durable::{create_temp, io_err};

/// Directory of retained bytes inside a state directory.
pub const RAW_DIR: &str = "raw";

/// Where the retained bytes of `id` live in `state`.
pub fn raw_path(state: &Path, id: &Sha1) -> PathBuf {
    let hex = id.to_hex();
    state.join(RAW_DIR).join(&hex[..2]).join(&hex[2..])
}

/// Whether bytes for `id` are retained.
pub fn has_raw(state: &Path, id: &Sha1) -> Result<bool> {
    let path = raw_path(state, id);
    match fs::symlink_metadata(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", &path)(e).into()),
    }
}

/// The retained framed bytes of `id`, `None` when not retained.
pub fn read_raw(state: &Path, id: &Sha1) -> Result<Option<Vec<u8>>> {
    let path = raw_path(state, id);
    match fs::read(&path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &path)(e).into()),
    }
}

/// Check that `framed` is `"<type> <len>\0" + body` with a known git type
/// and a decimal length equal to the body's.
pub fn check_frame(id: &Sha1, framed: &[u8]) -> Result<()> {
    crate::git::sha1::parse_frame(framed)
        .map(|_| ())
        .map_err(|reason| StateError::BadRawFrame {
            sha1: id.to_hex(),
            reason,
        })
}

/// Retains raw bytes in a batch: [`RawWriter::retain`] stages each new file
/// as a temp file (invisible under its final name), and [`RawWriter::sync`]
/// makes them all durable at one point, renames them into place, and makes the
/// renames durable — the object store's batch discipline, so a run that
/// retains thousands of commits pays for two filesystem flushes, not one
/// fsync per file. Dropping the writer unsynced removes its temp files.
///
/// `retain` takes `&self`, so many threads can stage into one writer.
#[derive(Debug)]
pub struct RawWriter {
    state: PathBuf,
    pending: std::sync::Mutex<Pending>,
    /// Fan-out directories made or found by this writer.
    dirs_made: crate::durable::FanOut,
}

/// What a [`RawWriter`] still has to make durable.
#[derive(Debug, Default)]
struct Pending {
    /// Temp files waiting for `sync`, with their final paths.
    staged: Vec<(PathBuf, PathBuf)>,
    /// Fan-out directories holding retained or found files.
    dirs: BTreeSet<PathBuf>,
    /// Ids staged (or found) in this batch, so each is handled once.
    seen: std::collections::HashSet<Sha1>,
}

impl Pending {
    /// Rename every staged temp file to its final name (over the current
    /// pool, see [`crate::durable::spread`]); on failure every temp not
    /// renamed is removed and the error returned.
    fn rename_staged(&mut self) -> Result<()> {
        let staged = std::mem::take(&mut self.staged);
        let renamed = crate::durable::spread(&staged, |(tmp, path)| {
            fs::rename(tmp, path).map_err(io_err("rename into place", path))
        });
        if renamed.is_err() {
            // A renamed temp is gone: this only removes the others.
            for (tmp, _) in &staged {
                let _ = fs::remove_file(tmp);
            }
        }
        Ok(renamed?)
    }
}

impl RawWriter {
    /// A writer for the state directory `state`.
    pub fn new(state: &Path) -> RawWriter {
        RawWriter {
            state: state.to_owned(),
            pending: std::sync::Mutex::new(Pending::default()),
            dirs_made: crate::durable::FanOut::default(),
        }
    }

    /// Stage `framed` as the bytes of `id` unless already retained.
    ///
    /// Returns whether a file will be written. Nothing is visible under the
    /// final name, nor durable, before [`RawWriter::sync`] returns.
    pub fn retain(&self, id: &Sha1, framed: &[u8]) -> Result<bool> {
        check_frame(id, framed)?;
        if !self.lock().seen.insert(*id) {
            return Ok(false);
        }
        let path = raw_path(&self.state, id);
        let dir = crate::durable::parent_or_dot(&path).to_owned();
        // A fan-out directory this writer created holds nothing yet, so the
        // existence check is only needed in directories that were there.
        let fresh_dir = self.dirs_made.ensure(id.0[0], &dir)?;
        let exists = !fresh_dir && has_raw(&self.state, id)?;
        if !exists {
            let (mut file, tmp) = create_temp(&path, 0o644)?;
            if let Err(e) = crate::durable::fault::check().and_then(|()| file.write_all(framed)) {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("write", &tmp)(e).into());
            }
            self.lock().staged.push((tmp, path));
        }
        // Even a file found in place may come from a run that crashed before
        // its directory entry was durable, so it is flushed either way.
        self.lock().dirs.insert(dir);
        Ok(!exists)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Every update is a single push or insert: a panicking stager cannot
        // leave the lists inconsistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make every staged file durable, rename it into place, and make the
    /// directory entries durable.
    pub fn sync(&mut self) -> Result<()> {
        let state = self.state.clone();
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        if pending.staged.is_empty() && pending.dirs.is_empty() {
            return Ok(());
        }
        crate::durable::flush_files(&state, pending.staged.iter().map(|(t, _)| t.as_path()))?;
        pending.rename_staged()?;
        crate::durable::flush_dirs(&state, pending.dirs.iter().map(PathBuf::as_path))?;
        pending.dirs.clear();
        Ok(())
    }

    /// Whether anything is staged or awaits a directory flush.
    pub fn is_pending(&self) -> bool {
        let p = self.lock();
        !p.staged.is_empty() || !p.dirs.is_empty()
    }

    /// Publish the staged files inside someone else's durability point
    /// (see `WriteBatch::commit_with`). `flushed` means the whole filesystem
    /// was flushed after every file here was staged, and will be flushed
    /// again once this returns: renaming is then all that is left. Otherwise
    /// this is [`RawWriter::sync`].
    pub fn publish_within(&mut self, flushed: bool) -> Result<()> {
        if !flushed {
            return self.sync();
        }
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        pending.rename_staged()?;
        pending.dirs.clear();
        Ok(())
    }
}

impl Drop for RawWriter {
    fn drop(&mut self) {
        for (tmp, _) in &self.lock().staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Retain one object's bytes durably, directory entry included.
pub fn retain_raw(state: &Path, id: &Sha1, framed: &[u8]) -> Result<bool> {
    let mut w = RawWriter::new(state);
    let wrote = w.retain(id, framed)?;
    w.sync()?;
    Ok(wrote)
}
