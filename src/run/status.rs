//! `status`: what each bridge state under `.mkit/git/` says — direction,
//! source and destination, the pinned importer key, the tracking refs an
//! import recorded, the export leases, and the health of the staging mirror.
//!
//! Like the reference's `mkit git status`, a stamp that cannot be read is
//! reported as absent (`direction=unknown`) rather than failing the whole
//! listing; unlike it, we also say why, in [`StateStatus::problems`].

use std::path::Path;

use crate::git::staging;
use crate::mkit::Id;
use crate::state::{self, Binding, RefState, StateError};

/// The ref the export records for its attestation chain; not a lease to show.
pub const ATTESTATIONS_REF: &str = "refs/mkit/attestations";

/// One state directory, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStatus {
    /// The state name (`upstream`, `mirror`, ...).
    pub name: String,
    /// `import`, `export` or `fork`; `None` when unstamped or unreadable.
    pub direction: Option<String>,
    /// The canonical upstream identity an import reads from.
    pub source: Option<String>,
    /// The canonical identity of the mirror an export pushes to.
    pub dest: Option<String>,
    /// The pinned importer public key.
    pub importer_key: Option<[u8; 32]>,
    /// Upstream refs as last imported.
    pub tracking: Vec<RefState>,
    /// Export leases: what each exported ref was last pushed as.
    pub exported: Vec<RefState>,
    /// True when the staging mirror `repo.git` has its object directory.
    pub staging_ok: bool,
    /// True when historic tree modes were normalized on import.
    pub normalized: bool,
    /// True when an import was interrupted (the crash marker is set).
    pub interrupted: bool,
    /// Stamps that could not be read, with why.
    pub problems: Vec<String>,
}

/// Read every state directory under `mkit_dir/git/`, sorted by name.
pub fn status(mkit_dir: &Path) -> Result<Vec<StateStatus>, StateError> {
    let mut out = Vec::new();
    for name in state::list_states(mkit_dir)? {
        let dir = state::state_dir(mkit_dir, &name)
            .unwrap_or_else(|_| mkit_dir.join(state::GIT_STATE_DIR).join(&name));
        out.push(read_one(&dir, name));
    }
    Ok(out)
}

fn read_one(dir: &Path, name: String) -> StateStatus {
    let mut problems = Vec::new();
    let direction = keep(&mut problems, state::read_direction(dir))
        .flatten()
        .map(|d| d.as_str().to_owned());
    let source = keep(&mut problems, state::read_binding(dir, Binding::Source)).flatten();
    let dest = keep(&mut problems, state::read_binding(dir, Binding::Dest)).flatten();
    let importer_key = keep(&mut problems, state::read_signer(dir)).flatten();
    let tracking = keep(&mut problems, state::load_import_ref_state(dir)).unwrap_or_default();
    let exported = keep(&mut problems, state::load_ref_state(dir))
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.name != ATTESTATIONS_REF)
        .collect();
    let normalized = keep(&mut problems, state::read_normalized(dir)).unwrap_or(false);
    let interrupted = keep(&mut problems, state::importing_is_set(dir)).unwrap_or(false);
    StateStatus {
        name,
        direction,
        source,
        dest,
        importer_key,
        tracking,
        exported,
        staging_ok: staging::mirror_path(dir).join("objects").is_dir(),
        normalized,
        interrupted,
        problems,
    }
}

/// The value, or `None` with the error noted in `problems`.
fn keep<T>(problems: &mut Vec<String>, r: Result<T, StateError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    }
}

/// The short hex form the reference prints for a pinned key (16 digits).
pub fn short_key(key: &[u8; 32]) -> String {
    Id(*key).to_hex()[..16].to_owned()
}
