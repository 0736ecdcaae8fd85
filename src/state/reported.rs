//! `refusals-reported`: the refusal causes an import already reported.
//!
//! One line per cause the last import or fetch found, sorted:
//!
//! ```text
//! <64 hex cause id> <64 hex fingerprint>\n
//! ```
//!
//! The cause id names the cause (its rule and path, or its object, or its
//! ref); the fingerprint covers the refs it blocks and the commits that
//! introduced it (`bridge::cause::Cause::{id, fingerprint}`). A cause whose
//! line is present with the same fingerprint was reported before and is not
//! repeated unless asked; a new cause, or one whose blocked refs changed, is.
//! The file is replaced whole (temp, fsync, rename, directory fsync) at the
//! end of each run, so a cause that went away and comes back is reported
//! again.
//!
//! This is our file; the reference neither reads nor writes it. It is a
//! memory for the report only: a missing or damaged file means causes are
//! reported again, never that anything is refused or imported differently.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::{create_dir_all_durable, io_err, write_atomic};
use crate::mkit::Id;

use super::Result;

/// The file's name in the state directory.
pub const REPORTED_FILE: &str = "refusals-reported";

/// Where the record lives.
pub fn reported_path(state: &Path) -> PathBuf {
    state.join(REPORTED_FILE)
}

/// The recorded causes: cause id → fingerprint. A missing file is empty;
/// lines that do not parse are ignored (they only make a cause be reported
/// again).
pub fn load_reported(state: &Path) -> Result<BTreeMap<Id, Id>> {
    let path = reported_path(state);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_err("read", &path)(e).into()),
    };
    let mut out = BTreeMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((id, print)) = line.split_once(' ') else {
            continue;
        };
        if let (Ok(id), Ok(print)) = (Id::from_hex(id), Id::from_hex(print)) {
            out.insert(id, print);
        }
    }
    Ok(out)
}

/// Durably replace the record with `causes` (cause id → fingerprint).
pub fn store_reported(state: &Path, causes: &BTreeMap<Id, Id>) -> Result<()> {
    let mut text = String::with_capacity(causes.len() * 130);
    for (id, print) in causes {
        text.push_str(&id.to_hex());
        text.push(' ');
        text.push_str(&print.to_hex());
        text.push('\n');
    }
    create_dir_all_durable(state)?;
    write_atomic(&reported_path(state), text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_sorted_and_tolerates_damage() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("up");
        assert!(load_reported(&state).unwrap().is_empty());
        let causes: BTreeMap<Id, Id> = [(Id([2; 32]), Id([3; 32])), (Id([1; 32]), Id([4; 32]))]
            .into_iter()
            .collect();
        store_reported(&state, &causes).unwrap();
        let text = fs::read_to_string(reported_path(&state)).unwrap();
        assert_eq!(
            text,
            format!(
                "{} {}\n{} {}\n",
                Id([1; 32]).to_hex(),
                Id([4; 32]).to_hex(),
                Id([2; 32]).to_hex(),
                Id([3; 32]).to_hex()
            )
        );
        assert_eq!(load_reported(&state).unwrap(), causes);
        // A torn or foreign line is skipped; the rest still counts.
        fs::write(
            reported_path(&state),
            format!("{text}garbage\n{}", &Id([9; 32]).to_hex()[..10]),
        )
        .unwrap();
        assert_eq!(load_reported(&state).unwrap(), causes);
    }
}
