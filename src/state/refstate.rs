//! Per-ref state: `refs` (export leases) and `refs-import` (last-seen
//! upstream tips).
//!
//! Both files hold one line per ref, `<full ref name> <64 hex mkit id> <40 hex
//! git sha1>\n`. `refs` is what the export side last pushed to its mirror and
//! serves as the `--force-with-lease` expectation; `refs-import` is what the
//! import side last saw upstream. They are separate files because a `fork`
//! state directory tracks the same ref names in both directions against
//! different remotes.
//!
//! Unlike the append-only map, these files are always rewritten whole by
//! temp file, fsync, rename and directory fsync, so a reader sees either the
//! complete old file or the complete new one. Reading follows the reference:
//! a missing file is empty and a line that does not parse is skipped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{Result, StateError};
use super::sha1::Sha1;
use crate::durable::{create_dir_all_durable, io_err, write_atomic};
use crate::mkit::id::Id;

/// File name of the export leases.
pub const REFS_FILE: &str = "refs";
/// File name of the last-seen upstream tips.
pub const IMPORT_REFS_FILE: &str = "refs-import";

/// The recorded state of one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// Full ref name, e.g. `refs/heads/main`.
    pub name: String,
    /// The mkit id on the mkit side (all zeros where there is none, as for
    /// the attestations ref).
    pub mkit: Id,
    /// The git object id on the git side.
    pub git: Sha1,
}

/// Path of the export-lease file in `state`.
pub fn refs_path(state: &Path) -> PathBuf {
    state.join(REFS_FILE)
}

/// Path of the import-tip file in `state`.
pub fn import_refs_path(state: &Path) -> PathBuf {
    state.join(IMPORT_REFS_FILE)
}

/// Load the export leases (`refs`). A missing file is empty.
pub fn load_ref_state(state: &Path) -> Result<Vec<RefState>> {
    load(&refs_path(state))
}

/// Load the last-seen upstream tips (`refs-import`). A missing file is empty.
pub fn load_import_ref_state(state: &Path) -> Result<Vec<RefState>> {
    load(&import_refs_path(state))
}

/// Replace the export leases (`refs`) with `states`, in the given order.
pub fn store_ref_state(state: &Path, states: &[RefState]) -> Result<()> {
    store(state, &refs_path(state), states)
}

/// Replace the last-seen upstream tips (`refs-import`) with `states`, in the
/// given order.
pub fn store_import_ref_state(state: &Path, states: &[RefState]) -> Result<()> {
    store(state, &import_refs_path(state), states)
}

fn load(path: &Path) -> Result<Vec<RefState>> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", path)(e).into()),
    };
    let text = String::from_utf8_lossy(&data);
    Ok(text.lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<RefState> {
    let mut parts = line.splitn(3, ' ');
    let (name, mkit, git) = (parts.next()?, parts.next()?, parts.next()?);
    if name.is_empty() || mkit.len() != 64 {
        return None;
    }
    // The reference accepts either case in the mkit column; ids are stored
    // lowercase, so fold before the strict decoder.
    let mkit = Id::from_hex(&mkit.to_ascii_lowercase()).ok()?;
    let git = Sha1::from_hex(git).ok()?;
    Some(RefState {
        name: name.to_owned(),
        mkit,
        git,
    })
}

fn store(state: &Path, path: &Path, states: &[RefState]) -> Result<()> {
    let mut out = Vec::with_capacity(states.len() * 128);
    for s in states {
        if s.name.is_empty() || s.name.bytes().any(|b| b == b' ' || b.is_ascii_control()) {
            return Err(StateError::InvalidRefName {
                path: path.to_owned(),
                name: s.name.clone(),
            });
        }
        out.extend_from_slice(s.name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(s.mkit.to_hex().as_bytes());
        out.push(b' ');
        s.git.write_hex(&mut out);
        out.push(b'\n');
    }
    create_dir_all_durable(state)?;
    write_atomic(path, &out)?;
    Ok(())
}
