//! Stamps: the small one-value files that bind a state directory.
//!
//! Each stamp holds `value\n` and is read back trimmed. They record what the
//! state directory is for — its [`Direction`], the remote it is bound to
//! ([`Binding::Source`] / [`Binding::Dest`]), the pinned importer key
//! (`signer`), the import-spec version (`import-spec`), whether imported
//! trees were normalized (`normalized`) — plus the crash marker `importing`.
//!
//! Bindings are what keep one state directory tied to one upstream, one key
//! and one direction, so a stamp whose content is not a legal value is a hard
//! error: silently treating it as absent would let the next run rebind the
//! directory. Writes go through temp file, fsync, rename and directory fsync,
//! so a crash leaves the old stamp or the new one, never a torn one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{Result, StateError};
use crate::durable::{create_dir_all_durable, io_err, sync_dir, write_atomic};

/// Stamp recording the direction.
pub const DIRECTION_FILE: &str = "direction";
/// Stamp recording the pinned importer public key.
pub const SIGNER_FILE: &str = "signer";
/// Stamp recording the import-spec version.
pub const IMPORT_SPEC_FILE: &str = "import-spec";
/// Sticky stamp recording that historic tree modes were normalized.
pub const NORMALIZED_FILE: &str = "normalized";
/// Crash marker present while an import session is open.
pub const IMPORTING_FILE: &str = "importing";

/// The import-spec version this build implements (SPEC-GIT-IMPORT §1.2).
pub const IMPORT_SPEC_VERSION: u32 = 1;

/// Longest stamp content quoted back in an error message.
const QUOTE_MAX: usize = 80;

/// What a state directory is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// git → mkit.
    Import,
    /// mkit → git mirror.
    Export,
    /// Import plus passthrough export over the same source.
    Fork,
}

impl Direction {
    /// Every direction, in a fixed order.
    pub const ALL: [Direction; 3] = [Direction::Import, Direction::Export, Direction::Fork];

    /// The on-disk spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
            Direction::Fork => "fork",
        }
    }

    /// Parse the on-disk spelling.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "import" => Some(Direction::Import),
            "export" => Some(Direction::Export),
            "fork" => Some(Direction::Fork),
            _ => None,
        }
    }

    /// Whether a state directory stamped `have` may be used as `want`
    /// (`None` = unstamped). Unstamped accepts anything, a direction accepts
    /// itself, and `import` → `fork` is the one upgrade.
    pub fn may_bind(have: Option<Direction>, want: Direction) -> bool {
        match have {
            None => true,
            Some(h) if h == want => true,
            Some(Direction::Import) => want == Direction::Fork,
            Some(_) => false,
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The remote a state directory is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    /// `source`: the canonical identity of the upstream an import reads from.
    Source,
    /// `dest`: the canonical identity of the mirror an export pushes to
    /// (informational only in a fork directory).
    Dest,
}

impl Binding {
    /// The stamp's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Binding::Source => "source",
            Binding::Dest => "dest",
        }
    }
}

/// Path of a stamp in `state`.
fn stamp_path(state: &Path, name: &str) -> PathBuf {
    state.join(name)
}

/// Read a stamp: `None` when absent, else its content trimmed. Content that
/// is not UTF-8 is corrupt.
fn read_stamp(state: &Path, name: &str, expected: &'static str) -> Result<Option<String>> {
    let path = stamp_path(state, name);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e).into()),
    };
    match String::from_utf8(data) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) => Err(corrupt(
            path,
            &String::from_utf8_lossy(e.as_bytes()),
            expected,
        )),
    }
}

/// Durably replace a stamp with `value\n`.
fn write_stamp(state: &Path, name: &str, value: &str) -> Result<()> {
    create_dir_all_durable(state)?;
    write_atomic(&stamp_path(state, name), format!("{value}\n").as_bytes())?;
    Ok(())
}

fn corrupt(path: PathBuf, found: &str, expected: &'static str) -> StateError {
    let found = found.trim();
    let found = match found.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", &found[..cut]),
        None => found.to_owned(),
    };
    StateError::CorruptStamp {
        path,
        found,
        expected,
    }
}

// --- direction -------------------------------------------------------------

/// Read the recorded direction, `None` when unstamped.
pub fn read_direction(state: &Path) -> Result<Option<Direction>> {
    const EXPECTED: &str = "'import', 'export' or 'fork'";
    match read_stamp(state, DIRECTION_FILE, EXPECTED)? {
        None => Ok(None),
        Some(v) => Direction::parse(&v)
            .map(Some)
            .ok_or_else(|| corrupt(stamp_path(state, DIRECTION_FILE), &v, EXPECTED)),
    }
}

/// Stamp `want`, or check it against the recorded direction.
///
/// Unstamped: `want` is recorded. Same direction: nothing to do. `import`
/// asked to become `fork`: upgraded. Anything else is refused with
/// [`StateError::DirectionConflict`] and the stamp is left alone.
pub fn bind_direction(state: &Path, want: Direction) -> Result<()> {
    let have = read_direction(state)?;
    if !Direction::may_bind(have, want) {
        return Err(StateError::DirectionConflict {
            state: state.to_owned(),
            have: have.map_or("none", Direction::as_str),
            want: want.as_str(),
        });
    }
    if have != Some(want) {
        write_stamp(state, DIRECTION_FILE, want.as_str())?;
    }
    Ok(())
}

// --- source / dest -----------------------------------------------------------

const BINDING_EXPECTED: &str = "a non-empty remote identity";

/// Read a `source` or `dest` binding, `None` when unrecorded.
pub fn read_binding(state: &Path, which: Binding) -> Result<Option<String>> {
    match read_stamp(state, which.file_name(), BINDING_EXPECTED)? {
        Some(v) if v.is_empty() || v.contains(['\n', '\r']) => Err(corrupt(
            stamp_path(state, which.file_name()),
            &v,
            BINDING_EXPECTED,
        )),
        other => Ok(other),
    }
}

/// Durably record a `source` or `dest` binding, replacing any previous one.
///
/// Callers store the canonical remote identity (SPEC-GIT-IMPORT §8), not the
/// URL as typed. The value must be one non-empty line without surrounding
/// whitespace, so that it reads back exactly.
pub fn write_binding(state: &Path, which: Binding, value: &str) -> Result<()> {
    if value.is_empty() || value.trim() != value || value.contains(['\n', '\r', '\0']) {
        return Err(StateError::InvalidBinding {
            which: which.file_name(),
            value: value.to_owned(),
        });
    }
    write_stamp(state, which.file_name(), value)
}

/// Record `value` if the binding is unrecorded; succeed if it already holds
/// `value`; refuse with [`StateError::BindingMismatch`] otherwise.
pub fn pin_binding(state: &Path, which: Binding, value: &str) -> Result<()> {
    match read_binding(state, which)? {
        None => write_binding(state, which, value),
        Some(have) if have == value => Ok(()),
        Some(have) => Err(StateError::BindingMismatch {
            state: state.to_owned(),
            which: which.file_name(),
            recorded: have,
            offered: value.to_owned(),
        }),
    }
}

// --- signer ------------------------------------------------------------------

/// Read the pinned importer public key, `None` when unpinned.
pub fn read_signer(state: &Path) -> Result<Option<[u8; 32]>> {
    const EXPECTED: &str = "64 lowercase hex digits";
    let Some(v) = read_stamp(state, SIGNER_FILE, EXPECTED)? else {
        return Ok(None);
    };
    let mut key = [0u8; 32];
    crate::mkit::id::decode_lower_hex(v.as_bytes(), &mut key)
        .map_err(|_| corrupt(stamp_path(state, SIGNER_FILE), &v, EXPECTED))?;
    Ok(Some(key))
}

/// Pin the importer key, or refuse a key other than the pinned one with
/// [`StateError::SignerMismatch`].
pub fn bind_signer(state: &Path, key: &[u8; 32]) -> Result<()> {
    let hex = crate::hex::encode(key);
    match read_signer(state)? {
        None => write_stamp(state, SIGNER_FILE, &hex),
        Some(have) if have == *key => Ok(()),
        Some(have) => Err(StateError::SignerMismatch {
            state: state.to_owned(),
            pinned: crate::hex::encode(&have)[..16].to_owned(),
            offered: hex[..16].to_owned(),
        }),
    }
}

// --- import-spec ---------------------------------------------------------------

/// Read the recorded import-spec version, `None` when unrecorded.
pub fn read_import_spec(state: &Path) -> Result<Option<u32>> {
    const EXPECTED: &str = "a decimal version number";
    let Some(v) = read_stamp(state, IMPORT_SPEC_FILE, EXPECTED)? else {
        return Ok(None);
    };
    // Canonical decimal only: what `u32::to_string` writes.
    match v.parse::<u32>() {
        Ok(n) if n.to_string() == v => Ok(Some(n)),
        _ => Err(corrupt(stamp_path(state, IMPORT_SPEC_FILE), &v, EXPECTED)),
    }
}

/// Record [`IMPORT_SPEC_VERSION`], or check the recorded version is the one
/// this build implements ([`StateError::UnsupportedImportSpec`] otherwise).
pub fn bind_import_spec(state: &Path) -> Result<()> {
    match read_import_spec(state)? {
        None => write_stamp(state, IMPORT_SPEC_FILE, &IMPORT_SPEC_VERSION.to_string()),
        Some(IMPORT_SPEC_VERSION) => Ok(()),
        Some(recorded) => Err(StateError::UnsupportedImportSpec {
            state: state.to_owned(),
            recorded,
            implemented: IMPORT_SPEC_VERSION,
        }),
    }
}

// --- normalized ----------------------------------------------------------------

/// Record, for good, that imported history holds historic-mode-normalized
/// trees (such a directory can never be upgraded to `fork`).
pub fn mark_normalized(state: &Path) -> Result<()> {
    write_stamp(state, NORMALIZED_FILE, "1")
}

/// Whether [`mark_normalized`] was ever recorded.
pub fn read_normalized(state: &Path) -> Result<bool> {
    const EXPECTED: &str = "'1'";
    match read_stamp(state, NORMALIZED_FILE, EXPECTED)? {
        None => Ok(false),
        Some(v) if v == "1" => Ok(true),
        Some(v) => Err(corrupt(stamp_path(state, NORMALIZED_FILE), &v, EXPECTED)),
    }
}

// --- importing (crash marker) --------------------------------------------------

/// Durably create the `importing` crash marker (an empty file): from here
/// until [`clear_importing`], a crash leaves it behind and the next import
/// must distrust the map.
pub fn set_importing(state: &Path) -> Result<()> {
    create_dir_all_durable(state)?;
    write_atomic(&stamp_path(state, IMPORTING_FILE), b"")?;
    Ok(())
}

/// Durably remove the `importing` crash marker (absent is fine).
pub fn clear_importing(state: &Path) -> Result<()> {
    let path = stamp_path(state, IMPORTING_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(state).map_err(Into::into),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &path)(e).into()),
    }
}

/// Whether the `importing` crash marker is present. Its presence is the
/// whole signal; content is ignored.
pub fn importing_is_set(state: &Path) -> Result<bool> {
    let path = stamp_path(state, IMPORTING_FILE);
    match fs::symlink_metadata(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", &path)(e).into()),
    }
}
