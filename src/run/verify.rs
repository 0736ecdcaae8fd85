//! The verify driver: audit a bridge state's git side against the mkit
//! store (SPEC-GIT-BRIDGE §10, §14.3; SPEC-GIT-IMPORT §4, §5), as
//! `mkit git verify` 0.5.0 does.
//!
//! The job is a short list of phases, each its own function:
//!
//! 1. [`resolve_state`]: the state named, or the only one there is;
//! 2. [`audit_targets`]: the recorded refs (`refs` "exported", then
//!    `refs-import` "imported"), or the `--ref`s among them;
//! 3. `source::Mirrors::open`: the staging repository
//!    `.mkit/git/<remote>/repo.git`, then a local destination (so a state
//!    whose staging repository is gone can still be audited);
//! 4. [`import_context`]: for a state with a pinned importer key, its
//!    import-spec version (must be ours) and its recorded source;
//! 5. the walk (`audit::Audit`) from each tip, then the provenance check of
//!    each imported head (`provenance`).
//!
//! What the walk checks, per object reached through parents and tag targets:
//!
//! - a **bridge-translated** commit or tag (no retained raw bytes) must
//!   shallow-verify, reconstruct to its mapped twin, carry git edges that
//!   the map takes to its signed mkit edges, and have its twin in the store;
//! - an **imported** commit or tag (raw bytes retained) must match its
//!   retained bytes, and its twin must be signed by the pinned importer key
//!   and be exactly the translation of those bytes;
//! - the **content** (trees and blobs) of every imported commit, and with
//!   `--fork-audit` (or `--deep`) of every bridge commit too, is re-derived
//!   from the git bytes by the import rules and must give the mapped twin,
//!   whose stored bytes must be the git bytes (§14.3 step 3);
//! - each **imported head** needs a verified `git-import/v1` attestation
//!   binding that head, its ref and the recorded source, signed by the
//!   pinned key (SPEC-GIT-IMPORT §5).
//!
//! `--deep` (ours) adds, in a state without an importer, the §9
//! reconstruction of each bridge tip's whole closure
//! ([`crate::bridge::verify::Verifier`]), which needs neither map nor store.
//! Every tip must also rebuild to the mkit id its state records (ours).
//!
//! An all-zero signature is reported as unsigned, never as tampered, and is
//! not a pass (§10). Problems are collected, not fatal, so one run lists
//! them all; only a state that cannot be audited at all is an error.

mod audit;
mod provenance;
mod source;

use std::path::{Path, PathBuf};

use crate::git::sha1::Sha1;
use crate::git::staging;
use crate::mkit::id::Id;
use crate::mkit::repo::Repo;
use crate::state::{self, IMPORT_SPEC_VERSION, StateError};

/// The export-lease ref the reference keeps for attestations; not a history ref.
const ATTESTATIONS_REF: &str = "refs/mkit/attestations";

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest<'a> {
    /// The state name; `None` picks the only state there is.
    pub remote: Option<&'a str>,
    /// Fork audit (§14.3): also re-derive the content of bridge commits.
    pub fork_audit: bool,
    /// Everything `fork_audit` does, plus the §9 reconstruction of each
    /// bridge tip's whole closure in a state without an importer.
    pub deep: bool,
    /// Full ref names to verify (each must be recorded); empty means all.
    pub refs: &'a [String],
}

/// Where a verified ref's tip was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// In `refs`: this state exported it.
    Exported,
    /// In `refs-import`: this state imported it.
    Imported,
}

impl Origin {
    /// `exported` or `imported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Exported => "exported",
            Origin::Imported => "imported",
        }
    }
}

/// One ref that was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRef {
    /// Full ref name.
    pub name: String,
    /// Which record it came from.
    pub origin: Origin,
    /// The recorded git tip.
    pub git: Sha1,
    /// The recorded mkit id.
    pub mkit: Id,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The git object it is about.
    pub object: Sha1,
    /// What is wrong, in 0.5.0's words where 0.5.0 has the check.
    pub reason: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyOutcome {
    /// The state verified.
    pub remote: String,
    /// Where objects were read from, in order.
    pub sources: Vec<PathBuf>,
    /// The refs verified, exported first, each list in record order.
    pub refs: Vec<VerifiedRef>,
    /// Bridge-translated commits and tags whose signature was checked.
    pub bridge: usize,
    /// Of those, the unsigned ones (all-zero signature), in walk order.
    pub unsigned: Vec<Sha1>,
    /// Imported commits and tags checked against the importer key.
    pub imported: usize,
    /// Trees and blobs re-derived from their git bytes and found to match.
    pub derived: usize,
    /// Objects reconstructed by deep verification.
    pub reconstructed: usize,
    /// Every problem, in the order found.
    pub failures: Vec<Failure>,
}

impl VerifyOutcome {
    /// True when nothing failed and nothing was unsigned.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.unsigned.is_empty()
    }
}

/// Why a verification could not run. Messages are 0.5.0's.
#[derive(Debug, thiserror::Error)]
pub enum VerifyRunError {
    /// A state file could not be read, or the state name is not valid.
    #[error(transparent)]
    State(#[from] StateError),
    /// No state directory exists.
    #[error("no git bridge state (run `mkit git import` or `mkit git export` first)")]
    NoState,
    /// The named state does not exist.
    #[error("no bridge state for '{0}'")]
    NoSuchState(String),
    /// Several states exist and none was named.
    #[error("multiple bridge states ({}); pick one with --remote-name", .0.join(", "))]
    Ambiguous(Vec<String>),
    /// The state records no ref.
    #[error("state '{0}' records no refs")]
    NoRefs(String),
    /// A `--ref` the state does not record.
    #[error("{name}: not recorded in state '{remote}'")]
    UnknownRef {
        /// The ref.
        name: String,
        /// The state.
        remote: String,
    },
    /// Neither the staging repository nor a local destination can be read.
    #[error(
        "state '{remote}' has no staging repo to verify against ({} is missing and no local destination is recorded)",
        path.display()
    )]
    NoSource {
        /// The state.
        remote: String,
        /// The missing staging repository.
        path: PathBuf,
    },
    /// The state has a pinned importer but its import-spec stamp cannot be read.
    #[error("read import-spec: {0}")]
    ImportSpecUnreadable(String),
    /// The state was imported under another import-spec version.
    #[error(
        "unsupported import-spec version for audit (state records {recorded}, this build implements {IMPORT_SPEC_VERSION})"
    )]
    ImportSpecVersion {
        /// The recorded version.
        recorded: String,
    },
    /// The state has a pinned importer but no readable recorded source.
    #[error("read import source: {0}")]
    SourceUnreadable(String),
}

/// Verify the refs of a bridge state in `repo`.
pub fn verify(repo: &Repo, req: &VerifyRequest<'_>) -> Result<VerifyOutcome, VerifyRunError> {
    let (remote, state_dir) = resolve_state(repo.mkit_dir(), req.remote)?;
    let refs = audit_targets(&state_dir, &remote, req.refs)?;
    let mirrors = source::Mirrors::open(&state_dir)?;
    if mirrors.is_empty() {
        return Err(VerifyRunError::NoSource {
            remote,
            path: staging::mirror_path(&state_dir),
        });
    }
    let import = import_context(&state_dir)?;
    let mut audit = audit::Audit::new(
        repo.store(),
        &state_dir,
        &mirrors,
        state::load_map_inverse(&state_dir)?,
        import.as_ref().map(|i| i.signer),
        req.fork_audit || req.deep,
    );
    for r in &refs {
        audit.target(r);
        if let Some(import) = &import {
            provenance::check_head(&mut audit, repo, &remote, import, r);
        }
        if req.deep && import.is_none() {
            audit.reconstruct(r);
        }
    }
    let mut outcome = audit.finish();
    outcome.remote = remote;
    outcome.sources = mirrors.paths().to_vec();
    outcome.refs = refs;
    Ok(outcome)
}

/// Phase 1: the state named, or the only one (entries starting with `.` are
/// crash debris and never count).
pub fn resolve_state(
    mkit_dir: &Path,
    remote: Option<&str>,
) -> Result<(String, PathBuf), VerifyRunError> {
    if let Some(name) = remote {
        let dir = state::state_dir(mkit_dir, name)?;
        if !dir.is_dir() {
            return Err(VerifyRunError::NoSuchState(name.to_owned()));
        }
        return Ok((name.to_owned(), dir));
    }
    let names = state::list_states(mkit_dir)?;
    match names.as_slice() {
        [] => Err(VerifyRunError::NoState),
        [one] => Ok((one.clone(), state::state_dir(mkit_dir, one)?)),
        _ => Err(VerifyRunError::Ambiguous(names)),
    }
}

/// Phase 2: the refs to audit. Exported records first, then imported ones
/// not already listed with the same tip (in a fork the same name may have
/// two tips); the attestations ref is not history. With `wanted`, only
/// those, each of which must be recorded.
pub fn audit_targets(
    state_dir: &Path,
    remote: &str,
    wanted: &[String],
) -> Result<Vec<VerifiedRef>, VerifyRunError> {
    let mut refs: Vec<VerifiedRef> = state::load_ref_state(state_dir)?
        .into_iter()
        .filter(|s| s.name != ATTESTATIONS_REF)
        .map(|s| VerifiedRef {
            name: s.name,
            origin: Origin::Exported,
            git: s.git,
            mkit: s.mkit,
        })
        .collect();
    for s in state::load_import_ref_state(state_dir)? {
        if !refs.iter().any(|r| r.name == s.name && r.git == s.git) {
            refs.push(VerifiedRef {
                name: s.name,
                origin: Origin::Imported,
                git: s.git,
                mkit: s.mkit,
            });
        }
    }
    if !wanted.is_empty() {
        refs.retain(|r| wanted.contains(&r.name));
        if let Some(name) = wanted.iter().find(|w| !refs.iter().any(|r| &r.name == *w)) {
            return Err(VerifyRunError::UnknownRef {
                name: name.clone(),
                remote: remote.to_owned(),
            });
        }
    }
    if refs.is_empty() {
        return Err(VerifyRunError::NoRefs(remote.to_owned()));
    }
    Ok(refs)
}

/// What an imported state's audit binds heads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportContext {
    /// The pinned importer public key.
    pub signer: [u8; 32],
    /// The recorded canonical source identity (SPEC-GIT-IMPORT §8).
    pub source: String,
}

/// Phase 4: `None` for a state without a pinned importer key; otherwise its
/// import-spec version must be ours and its source must be readable.
pub fn import_context(state_dir: &Path) -> Result<Option<ImportContext>, VerifyRunError> {
    let Some(signer) = state::read_signer(state_dir)? else {
        return Ok(None);
    };
    let spec = std::fs::read_to_string(state_dir.join(state::stamps::IMPORT_SPEC_FILE))
        .map_err(|e| VerifyRunError::ImportSpecUnreadable(e.to_string()))?;
    if spec.trim() != IMPORT_SPEC_VERSION.to_string() {
        return Err(VerifyRunError::ImportSpecVersion {
            recorded: spec.trim().to_owned(),
        });
    }
    let source = std::fs::read_to_string(state_dir.join(state::Binding::Source.file_name()))
        .map_err(|e| VerifyRunError::SourceUnreadable(e.to_string()))?
        .trim()
        .to_owned();
    Ok(Some(ImportContext { signer, source }))
}
