//! The per-remote state directory `.mkit/git/<remote>/`.
//!
//! Every bridge run against a git remote keeps its memory here, in files the
//! reference mkit 0.5.0 reads and writes too, byte for byte (see
//! `spec/STATE.md`):
//!
//! - [`map`]: the append-only blake3 ↔ sha1 map `map`, loaded into an
//!   [`index::MapIndex`];
//! - [`refstate`]: the per-ref files `refs` (export leases) and `refs-import`
//!   (last-seen upstream tips);
//! - [`stamps`]: the one-value binding files `direction`, `source`, `dest`,
//!   `signer`, `import-spec`, `normalized` and the crash marker `importing`;
//! - [`raw`]: retained framed git bytes under `raw/<2 hex>/<38 hex>`;
//! - [`reported`]: our record of the refusal causes already reported
//!   (`refusals-reported`; the reference does not use it);
//! - [`refusals`]: our cache of the last run's refusals (`refusals-cache`;
//!   the reference does not use it);
//! - [`lock`]: the per-state lock `.mkit/git-<remote>.lock`.
//!
//! The staging git repository `repo.git` also lives in the state directory
//! but belongs to the git side, not to this layer. Functions here take the
//! state directory's path (from [`state_dir`]) and never print.

pub mod error;
pub mod index;
pub mod lock;
pub mod map;
pub mod raw;
pub mod refstate;
pub mod refusals;
pub mod reported;
pub mod sha1;
pub mod stamps;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use error::{Result, StateError};
pub use index::{BlakeToSha1, MapIndex, MapKey, Sha1ToBlake};
pub use lock::{
    DEFAULT_LOCK_TIMEOUT, StateLock, lock_path, lock_state, lock_state_default, try_lock_state,
};
pub use map::{
    append_map, append_map_from, append_map_import, discard_map, load_map, load_map_inverse,
    load_map_inverse_checked, map_is_intact,
};
pub use raw::{RawWriter, has_raw, raw_path, read_raw, retain_raw};
pub use refstate::{
    RefState, load_import_ref_state, load_ref_state, store_import_ref_state, store_ref_state,
};
pub use refusals::{CacheFile, REFUSAL_CACHE_FILE, load_refusal_cache, store_refusal_cache};
pub use reported::{REPORTED_FILE, load_reported, store_reported};
pub use sha1::Sha1;
pub use stamps::{
    Binding, Direction, IMPORT_SPEC_VERSION, bind_direction, bind_import_spec, bind_signer,
    clear_importing, importing_is_set, mark_normalized, pin_binding, read_binding, read_direction,
    read_import_spec, read_normalized, read_signer, set_importing, write_binding,
};

use crate::durable::io_err;

/// Name of the directory under `.mkit` that holds every state directory.
pub const GIT_STATE_DIR: &str = "git";

/// Check that `remote` can name a state directory: one or more of
/// `[A-Za-z0-9_-]`. Anything else (dots, slashes, empty) is refused, so a
/// state name can never escape `.mkit/git/` or collide with a temp entry.
pub fn validate_remote_name(remote: &str) -> Result<()> {
    let ok = !remote.is_empty()
        && remote
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidRemoteName {
            name: remote.to_owned(),
        })
    }
}

/// The state directory of `remote`: `<mkit_dir>/git/<remote>/`, where
/// `mkit_dir` is the repository's `.mkit` directory. Nothing is created.
pub fn state_dir(mkit_dir: &Path, remote: &str) -> Result<PathBuf> {
    validate_remote_name(remote)?;
    Ok(mkit_dir.join(GIT_STATE_DIR).join(remote))
}

/// Names of the existing state directories, sorted; entries starting with
/// `.` (crash debris) and non-directories are left out.
pub fn list_states(mkit_dir: &Path) -> Result<Vec<String>> {
    let root = mkit_dir.join(GIT_STATE_DIR);
    let entries = match fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", &root)(e).into()),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", &root))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The name of a state directory other than `except` whose `source` binding
/// equals `identity` (the structural re-import check of SPEC-GIT-IMPORT
/// §6.1). Like the reference, unreadable `source` files are passed over.
pub fn state_with_source(
    mkit_dir: &Path,
    identity: &str,
    except: Option<&str>,
) -> Result<Option<String>> {
    let root = mkit_dir.join(GIT_STATE_DIR);
    let entries = match fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("list", &root)(e).into()),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", &root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if Some(name.as_str()) == except {
            continue;
        }
        if let Ok(src) = fs::read_to_string(entry.path().join(Binding::Source.file_name()))
            && src.trim() == identity
        {
            found.push(name);
        }
    }
    // Directory order is arbitrary; report the same name every time.
    found.sort();
    Ok(found.into_iter().next())
}
