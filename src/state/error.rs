//! The one error type of the state-directory layer.
//!
//! Every failure the state layer can report is a [`StateError`]. Messages are
//! lower case, name the file or directory involved and, where the user can do
//! something about it, say what. Corruption of a binding stamp is never
//! papered over: the layer refuses to guess and says which file to restore or
//! remove.

use std::path::PathBuf;
use std::time::Duration;

use crate::durable::IoError;

/// Anything that can go wrong reading or writing a per-remote state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),

    /// The remote name cannot name a state directory.
    #[error(
        "remote name {name:?} is not a valid bridge state name; use only letters, digits, '_' and '-'"
    )]
    InvalidRemoteName {
        /// The refused name.
        name: String,
    },

    /// A stamp file holds something that is not a legal value for it.
    #[error(
        "state stamp {} is corrupt: it holds {found:?}, expected {expected}; refusing to guess — restore the file or remove the state directory {}",
        path.display(),
        path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    CorruptStamp {
        /// The stamp file.
        path: PathBuf,
        /// Its (trimmed, possibly shortened) content.
        found: String,
        /// What a legal value looks like.
        expected: &'static str,
    },

    /// The state directory is stamped with a direction that refuses the wanted one.
    #[error(
        "state directory {} is bound to direction '{have}'; '{want}' is not allowed there (one direction per state directory — use a different remote name)",
        state.display()
    )]
    DirectionConflict {
        /// The state directory.
        state: PathBuf,
        /// The recorded direction.
        have: &'static str,
        /// The direction that was asked for.
        want: &'static str,
    },

    /// The state directory is pinned to a different importer key.
    #[error(
        "state directory {} is pinned to importer key {pinned}…, but the available key is {offered}…; pull this history over mkit transport from the designated importer, or install the pinned key",
        state.display()
    )]
    SignerMismatch {
        /// The state directory.
        state: PathBuf,
        /// First 16 hex digits of the pinned key.
        pinned: String,
        /// First 16 hex digits of the offered key.
        offered: String,
    },

    /// The state records an import-spec version this build does not implement.
    #[error(
        "state directory {} records import-spec version {recorded}, but this build implements version {implemented}; incremental imports across mapping versions are refused — re-import under a new remote name",
        state.display()
    )]
    UnsupportedImportSpec {
        /// The state directory.
        state: PathBuf,
        /// The recorded version.
        recorded: u32,
        /// The version this build implements.
        implemented: u32,
    },

    /// A `source` or `dest` binding names a different remote.
    #[error(
        "state directory {} is bound to {which} {recorded}; use a different remote name for {offered}",
        state.display()
    )]
    BindingMismatch {
        /// The state directory.
        state: PathBuf,
        /// Which binding (`source` or `dest`).
        which: &'static str,
        /// The recorded value.
        recorded: String,
        /// The value that was offered.
        offered: String,
    },

    /// A binding value cannot be stored as a one-line stamp.
    #[error(
        "cannot record {which} binding {value:?}: a binding is one non-empty line without surrounding whitespace"
    )]
    InvalidBinding {
        /// Which binding (`source` or `dest`).
        which: &'static str,
        /// The refused value.
        value: String,
    },

    /// A ref name cannot be stored in a ref-state file.
    #[error(
        "cannot record ref {name:?} in {}: ref names in state files must be non-empty and free of spaces and control characters",
        path.display()
    )]
    InvalidRefName {
        /// The ref-state file.
        path: PathBuf,
        /// The refused name.
        name: String,
    },

    /// Bytes offered for retention are not a framed git object.
    #[error(
        "refusing to retain raw bytes for {sha1}: {reason} (expected \"<type> <len>\\0\" followed by exactly <len> body bytes)"
    )]
    BadRawFrame {
        /// The git object id the bytes were offered under.
        sha1: String,
        /// What is wrong with them.
        #[source]
        reason: crate::git::sha1::FrameError,
    },

    /// Another process holds the per-state lock.
    #[error(
        "bridge state '{remote}' is busy: another mkit git operation holds {} (waited {waited:?}); wait for it to finish and retry",
        path.display()
    )]
    Busy {
        /// The remote (state) name.
        remote: String,
        /// The lock file.
        path: PathBuf,
        /// How long we waited before giving up.
        waited: Duration,
    },
}

/// Shorthand for results of the state layer.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
