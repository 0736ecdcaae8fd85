//! The import driver: git upstream → importer-signed mkit history.
//!
//! One run, under the state lock, in the durability order of the design:
//!
//! 1. check the state's bindings (direction, source, import-spec, signer) and
//!    set the crash marker `importing`;
//! 2. bring the staging mirror up to date with gix and record the bindings
//!    after the first successful fetch;
//! 3. walk every upstream ref's closure, stopping at objects the map already
//!    knows, and decide every refusal on the way (`import/walk.rs`, the pre-pass):
//!    which tips are importable, and which new objects they need;
//! 4. translate the needed objects only (`import/translate.rs`): blobs in parallel,
//!    then trees in waves of equal height, commits in waves of equal
//!    generation, tags by chain length; each worker reads the mirror through
//!    its own gix handle, and every object is staged in one
//!    [`WriteBatch`](crate::mkit::store::WriteBatch);
//! 5. commit the batch (objects durable and visible), retain the framed raw
//!    commit and tag bytes, append the map, write the refs, the ref state and
//!    the `normalized` stamp, and clear the crash marker.
//!
//! A refused, missing or corrupt object refuses only the refs whose closure
//! holds it; the others are imported. A failed write is no refusal: it stops
//! the run ([`ImportError`]), and the crash marker makes the next run
//! rebuild. A map hit is used only once the store is seen to hold it
//! (`Run::check_hit`); a map the store contradicts is rebuilt. Output is
//! identical for any number of jobs: ids are content-addressed and every
//! list written is sorted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::bridge::import::{self as rules, ImportOptions, Translated};
use crate::bridge::plan::import::ImportPlan;
use crate::bridge::refusal::{Refusal, Refusals};
use crate::durable;
use crate::git::parse::{CommitRef, TagRef};
use crate::git::sha1::{ObjectKind, Sha1};
use crate::git::source::{self, header as read_header, is_ancestor};
use crate::git::staging::{self, StagingError, UpstreamRef};
use crate::mkit::Id;
use crate::mkit::object::{Object, ObjectType};
use crate::mkit::refs::RefError;
use crate::mkit::repo::Repo;
use crate::mkit::sign::KeyPair;
use crate::mkit::store::StoreError;
use crate::state::{self, Binding, Direction, RefState, StateError};

mod ahead;
mod cache;
mod dry;
mod reopen;
mod report;
mod setup;
mod translate;
mod update;
mod walk;

use walk::Work;

use setup::Pass;

pub use dry::{Change, Plan, PlannedRef, PrunedRef, dry_run_key, plan};

/// What to import and how.
pub struct ImportRequest<'a> {
    /// The upstream, as the user gave it.
    pub url: &'a str,
    /// The state name (`upstream` by default).
    pub remote: &'a str,
    /// The importer key.
    pub key: &'a KeyPair,
    /// Worker threads; 0 means two per core.
    pub jobs: usize,
    /// Also set `refs/heads/<default branch>` and `HEAD` (a fresh clone).
    pub set_default_branch: bool,
    /// Set to stop at the next safe point.
    pub interrupt: &'a AtomicBool,
    /// Progress reports (the library never prints).
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for ImportRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRequest")
            .field("url", &self.url)
            .field("remote", &self.remote)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

pub use crate::run::progress::{NoProgress, Progress};

/// One upstream ref that was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRef {
    /// The upstream ref (`refs/heads/main`).
    pub upstream: String,
    /// The mkit ref written (`refs/remotes/upstream/main`).
    pub mkit_ref: String,
    /// The upstream tip.
    pub git: Sha1,
    /// Its translation.
    pub mkit: Id,
    /// False when the ref is where the previous import left it (same
    /// upstream tip, same translation): a no-change fetch reports nothing.
    pub changed: bool,
}

/// One upstream ref that was skipped, and why.
#[derive(Debug, Clone)]
pub struct SkippedRef {
    /// The upstream ref.
    pub upstream: String,
    /// The refusal that skipped it.
    pub refusal: Refusal,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportOutcome {
    /// Refs imported, in upstream order.
    pub imported: Vec<ImportedRef>,
    /// Refs skipped, in upstream order.
    pub skipped: Vec<SkippedRef>,
    /// The skipped refs grouped by root cause (the refusal report), each
    /// marked when an earlier run already reported it unchanged.
    pub causes: Vec<crate::bridge::cause::Cause>,
    /// Warnings for the user (force-pushes, deletions, moved tags,
    /// normalized modes).
    pub warnings: Vec<String>,
    /// Notes for the user (a map rebuild and why).
    pub notes: Vec<String>,
    /// Git objects translated in this run.
    pub translated: u64,
    /// mkit objects newly written to the store.
    pub written: u64,
    /// git-import/v1 attestations minted (one per new or moved head).
    pub attestations: u64,
    /// The branch `HEAD` now names, when the default branch was set.
    pub checked_out: Option<String>,
    /// The upstream's default branch (`refs/heads/main`), imported or not.
    pub default_branch: Option<String>,
    /// True when this run created the staging mirror.
    pub cloned: bool,
    /// Wall time of each phase, in order.
    pub timings: Vec<(&'static str, std::time::Duration)>,
}

/// Why an import could not run at all (per-ref problems are [`SkippedRef`]s).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A state-directory rule refused the run (binding, direction, lock...).
    #[error(transparent)]
    State(#[from] StateError),
    /// The mirror could not be fetched.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// Objects could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A ref could not be written.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// The importer key differs from the one pinned for this state.
    #[error(
        "this import is pinned to importer key {pinned}; the available key is {offered}. \
         Designated-importer model: pull this history over mkit transport from the importer, \
         or install the pinned key and pass it with --key (state '{remote}', SPEC-GIT-IMPORT §4)"
    )]
    SignerMismatch {
        /// The state.
        remote: String,
        /// The pinned key (hex).
        pinned: String,
        /// The key offered (hex).
        offered: String,
    },
    /// No `--key` was given, the state pins a key, and the default import key
    /// file does not exist: a new key would only be refused, so none is made.
    #[error(
        "this import is pinned to importer key {pinned}, but no --key was given and the default \
         import key {} does not exist; pass the pinned key with --key <file> (or install it at \
         that path). No key is created for a state that already pins one \
         (state '{remote}', SPEC-GIT-IMPORT §4)",
        default_path.display()
    )]
    PinnedKeyMissing {
        /// The state.
        remote: String,
        /// The pinned key (hex).
        pinned: String,
        /// Where the default key was looked for.
        default_path: std::path::PathBuf,
    },
    /// The store already holds this upstream's commits signed by another key
    /// (SPEC-GIT-IMPORT §6.1, check 2).
    #[error(
        "this upstream is already imported here under key {key}; pull from the designated \
         importer over mkit transport, or install that key (SPEC-GIT-IMPORT §4/§6.1)"
    )]
    Diverged {
        /// The other signer (hex).
        key: String,
        /// The upstream commit whose content is already in the store.
        commit: Sha1,
    },
    /// Another state already imports this upstream.
    #[error(
        "{url} is already imported as state '{other}'; use `--remote-name {other}` instead of \
         creating a duplicate import (canonical identity {identity}, SPEC-GIT-IMPORT §6.1)"
    )]
    AlreadyImported {
        /// The upstream as given.
        url: String,
        /// The canonical identity.
        identity: String,
        /// The state that has it.
        other: String,
    },
    /// The state is bound to another upstream.
    #[error(
        "state '{remote}' is bound to {bound}; use a different --remote-name for {url} \
         (canonical identity {identity})"
    )]
    SourceMismatch {
        /// The state.
        remote: String,
        /// Its recorded source.
        bound: String,
        /// The upstream as given.
        url: String,
        /// The canonical identity of the upstream asked for.
        identity: String,
    },
    /// The state is an export state.
    #[error(
        "state dir '{remote}' is bound to direction '{direction}' (one direction per state dir); import uses its own state: choose another --remote-name"
    )]
    WrongDirection {
        /// The state.
        remote: String,
        /// Its direction.
        direction: &'static str,
    },
    /// The state was written under an import-spec version we do not implement.
    #[error(
        "state '{remote}' recorded import-spec {version}, this build implements 1; incremental imports across mapping versions are refused: re-import under a new --remote-name"
    )]
    ImportSpec {
        /// The state.
        remote: String,
        /// The recorded version.
        version: u32,
    },
    /// The mirror could not be read.
    #[error("cannot read the staging mirror {}: {source}", path.display())]
    Mirror {
        /// The mirror.
        path: std::path::PathBuf,
        /// What failed.
        #[source]
        source: gix::Error,
    },
    /// The worker pool could not start.
    #[error("cannot start {jobs} worker threads: {source}")]
    Threads {
        /// Requested jobs.
        jobs: usize,
        /// Why.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// The run was interrupted before anything became visible.
    #[error("interrupted: stopped before updating any ref; run the same command again to finish")]
    Interrupted,
    /// An attestation could not be minted or stored.
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
}

/// Import `req.url` into `repo` under state `req.remote`.
pub fn import(repo: &Repo, req: &ImportRequest<'_>) -> Result<ImportOutcome, ImportError> {
    let mut p = setup::prepare(repo, req, Pass::Real)?;
    let mut laps = std::mem::take(&mut p.laps);
    let mut notes = Vec::new();
    if p.swept > 0 {
        notes.push(format!(
            "removed {} temp files left by an earlier run that was killed",
            p.swept
        ));
    }
    let mut rebuild = p.verdict != MapVerdict::Trusted;
    if rebuild {
        notes.push(p.verdict.note().to_owned());
    }
    bind(&p, req)?;

    // What the map is replaced by when the walk finds it disagreeing with
    // the store.
    let empty = state::Sha1ToBlake::new();
    let mut run = p.run(repo, req);
    let mapped = setup::map_upstream(req.remote, &p.fetched.refs);
    let (work, dropped) = setup::walk(&p, &mut run, &mapped, &empty, &mut notes)?;
    rebuild |= dropped;
    laps.lap("walk");
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(interrupted(&p.state_dir, p.interrupted_before));
    }
    let (translated, written) = write_objects(repo, req, &p, &mut run, &work, &mut laps, rebuild)?;
    let mut outcome = ImportOutcome {
        translated,
        written,
        cloned: p.fetched.cloned,
        default_branch: p.fetched.default_branch.clone(),
        notes,
        ..ImportOutcome::default()
    };
    crash_point("map");
    let checkout = req
        .set_default_branch
        .then_some(p.fetched.default_branch.as_deref())
        .flatten();
    let mut plan = update::plan(repo.mkit_dir(), req.remote, &p, &run, mapped, checkout)?;
    outcome.checked_out = update::apply(repo.mkit_dir(), &mut plan)?;
    finish(repo, req, &p, &run, &plan, &mut outcome)?;
    laps.lap("map+refs");
    outcome.timings = laps.done;
    Ok(outcome)
}

/// Record the bindings once the upstream was fetched and the divergence
/// probe passed (so a refused first import leaves the state name free),
/// then set the crash marker: from here until the ref state is recorded,
/// torn objects can exist.
fn bind(p: &setup::Prepared, req: &ImportRequest<'_>) -> Result<(), ImportError> {
    if p.direction.is_none() {
        state::bind_direction(&p.state_dir, Direction::Import)?;
    }
    state::pin_binding(&p.state_dir, Binding::Source, &p.identity)?;
    state::bind_import_spec(&p.state_dir)?;
    state::bind_signer(&p.state_dir, &req.key.public())?;
    state::set_importing(&p.state_dir)?;
    Ok(())
}

/// Retain the raw bytes of the new commits and tags, translate the new
/// objects, make both durable, and append the new pairs to the map (after
/// discarding it on a rebuild). Returns how many objects were translated
/// and how many were newly written to the store.
fn write_objects(
    repo: &Repo,
    req: &ImportRequest<'_>,
    p: &setup::Prepared,
    run: &mut Run<'_>,
    work: &Work,
    laps: &mut Laps,
    rebuild: bool,
) -> Result<(u64, u64), ImportError> {
    let batch = repo
        .store()
        .batch()
        .with_threads(p.pool.current_num_threads());
    let mut raw = state::RawWriter::new(&p.state_dir);
    // The original bytes of every commit and tag to translate are retained (framed),
    // in parallel and off the translation's sequential path.
    let fault = durable::fault::phase("raw");
    p.pool
        .install(|| translate::retain_raw(&p.mirror, work, &raw))?;
    drop(fault);
    laps.lap("raw");
    p.pool
        .install(|| run.translate(work, &batch, req.interrupt))
        .map_err(|e| match e {
            ImportError::Interrupted => interrupted(&p.state_dir, p.interrupted_before),
            e => e,
        })?;
    laps.take(&mut run.laps);
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(interrupted(&p.state_dir, p.interrupted_before));
    }

    // Durability order: objects, raw bytes, map, refs, ref state, stamps.
    // One pair of filesystem flushes covers the objects and the raw bytes:
    // both are staged before the first, renamed before the second.
    // On the pool, which the raw files' renames are spread over.
    let shared = durable::same_filesystem(repo.store().root(), &p.state_dir);
    let committed = p.pool.install(|| {
        batch.commit_with(raw.is_pending(), |flushed| {
            raw.publish_within(flushed && shared)
                .map_err(ImportError::from)
        })
    })?;
    laps.lap("durable");
    crash_point("objects");
    let mut pairs: Vec<(Sha1, Id)> = run
        .new_objects
        .iter()
        .filter_map(|s| run.memo.get(s).map(|t| (*s, t.id)))
        .collect();
    pairs.sort();
    let fault = durable::fault::phase("map");
    if rebuild {
        state::discard_map(&p.state_dir)?;
    }
    state::append_map_import(&p.state_dir, &pairs)?;
    drop(fault);
    Ok((pairs.len() as u64, committed.written))
}

/// Fill the outcome from the applied ref plan, mint the attestations,
/// record the ref state, the refusal report and the `normalized` stamp, and
/// clear the crash marker.
fn finish(
    repo: &Repo,
    req: &ImportRequest<'_>,
    p: &setup::Prepared,
    run: &Run<'_>,
    plan: &ImportPlan,
    outcome: &mut ImportOutcome,
) -> Result<(), ImportError> {
    let mut ref_state = Vec::new();
    for (r, planned) in plan.imported() {
        ref_state.push(RefState {
            name: r.upstream.clone(),
            mkit: planned.id,
            git: r.target,
        });
        outcome.imported.push(ImportedRef {
            upstream: r.upstream.clone(),
            mkit_ref: planned.mkit_ref().to_owned(),
            git: r.target,
            mkit: planned.id,
            changed: r.changed(),
        });
    }
    outcome.skipped = update::skipped(plan);
    outcome.warnings.extend(plan.warnings());
    // Attestations before the ref state: a head whose recorded state did not
    // change is not attested again, so a crash after the state was stored
    // but before the envelopes were would leave those heads unattested.
    outcome.attestations = p.pool.install(|| {
        mint_import_attestations(repo, req.key, &p.identity, &outcome.imported, &p.previous)
    })?;
    let fault = durable::fault::phase("ref-state");
    state::store_import_ref_state(&p.state_dir, &ref_state)?;
    drop(fault);
    report::settle(repo, req, p, run, outcome);
    if run.normalized {
        state::mark_normalized(&p.state_dir)?;
        outcome.warnings.push(
            "historic tree modes were normalized (declared-lossy; originals retained in the staging mirror)"
                .to_owned(),
        );
    }
    state::clear_importing(&p.state_dir)?;
    crash_point("imported");
    Ok(())
}

/// The staging mirror of `state_dir`, opened for reading objects from the
/// run's workers.
fn open_mirror(state_dir: &Path) -> Result<gix::ThreadSafeRepository, ImportError> {
    let path = staging::mirror_path(state_dir);
    staging::open_for_reading(&path, staging::DELTA_BASE_CACHE)
        .map_err(|source| ImportError::Mirror { path, source })
}

/// Drop the per-thread mirror handles of the current pool's threads (and of
/// this thread), so that a mirror dropped after a phase releases its pages.
fn release_thread_handles() {
    source::release_thread_handles();
}

/// The error for a run stopped by its interrupt flag before the objects'
/// commit. Nothing it wrote is referenced yet (objects a checkpoint published
/// are durable and vouched for by nothing; staged temp files go with the
/// batch), so when the crash marker was clear before this run it is cleared
/// again, and the next run trusts the map instead of rebuilding it.
fn interrupted(state_dir: &Path, marker_was_set: bool) -> ImportError {
    if !marker_was_set {
        let _ = state::clear_importing(state_dir);
    }
    ImportError::Interrupted
}

/// Refuse, before anything is touched, a run the state's bindings forbid: a
/// state bound to another direction than import or fork, a `source` with
/// another canonical identity, another state already importing the same
/// identity, an `import-spec` we do not implement, a pinned `signer` other
/// than the request's key. Returns the recorded direction.
fn check_bindings(
    mkit_dir: &Path,
    state_dir: &Path,
    req: &ImportRequest<'_>,
    identity: &str,
) -> Result<Option<Direction>, ImportError> {
    let direction = state::read_direction(state_dir)?;
    match direction {
        None | Some(Direction::Import) | Some(Direction::Fork) => {}
        Some(other) => {
            return Err(ImportError::WrongDirection {
                remote: req.remote.to_owned(),
                direction: other.as_str(),
            });
        }
    }
    if let Some(bound) = state::read_binding(state_dir, Binding::Source)?
        && bound != identity
    {
        return Err(ImportError::SourceMismatch {
            remote: req.remote.to_owned(),
            bound,
            url: req.url.to_owned(),
            identity: identity.to_owned(),
        });
    }
    if let Some(other) = state::state_with_source(mkit_dir, identity, Some(req.remote))? {
        return Err(ImportError::AlreadyImported {
            url: req.url.to_owned(),
            identity: identity.to_owned(),
            other,
        });
    }
    if let Some(version) = state::read_import_spec(state_dir)?
        && version != state::IMPORT_SPEC_VERSION
    {
        return Err(ImportError::ImportSpec {
            remote: req.remote.to_owned(),
            version,
        });
    }
    let public = req.key.public();
    if let Some(pinned) = state::read_signer(state_dir)?
        && pinned != public
    {
        return Err(ImportError::SignerMismatch {
            remote: req.remote.to_owned(),
            pinned: Id(pinned).to_hex(),
            offered: Id(public).to_hex(),
        });
    }
    Ok(direction)
}

/// Mint and store one git-import/v1 attestation (SPEC-GIT-IMPORT §5) per
/// imported head whose recorded mkit id is new or moved, signed by the import
/// key, in parallel; returns how many were minted. The subject is the mkit
/// head under its full mkit ref name, the predicate the upstream SHA-1, that
/// ref name and the canonical remote identity, exactly as 0.5.0 mints them.
fn mint_import_attestations(
    repo: &Repo,
    key: &KeyPair,
    identity: &str,
    imported: &[ImportedRef],
    previous: &HashMap<String, RefState>,
) -> Result<u64, ImportError> {
    use crate::attest;
    let changed: Vec<&ImportedRef> = imported
        .iter()
        .filter(|r| previous.get(&r.upstream).is_none_or(|p| p.mkit != r.mkit))
        .collect();
    let envelopes = changed
        .par_iter()
        .map(|r| {
            let bytes = repo.store().read_bytes(&r.mkit)?;
            let predicate = attest::git_import_predicate(&r.git, &r.mkit_ref, identity);
            let envelope = attest::mint_with_key(
                key,
                &r.mkit_ref,
                &r.mkit,
                &bytes,
                attest::PREDICATE_GIT_IMPORT,
                &predicate,
            )?;
            Ok::<_, ImportError>((r.mkit, envelope))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One pair of durability points for all of them.
    let fault = durable::fault::phase("attestations");
    attest::store::save_all(repo.mkit_dir(), &envelopes)?;
    drop(fault);
    Ok(changed.len() as u64)
}

/// Wall-clock laps of a run's phases, in order.
struct Laps {
    clock: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Default for Laps {
    fn default() -> Self {
        Laps {
            clock: std::time::Instant::now(),
            done: Vec::new(),
        }
    }
}

impl Laps {
    /// Close the current lap under `name` and start the next.
    fn lap(&mut self, name: &'static str) {
        self.done.push((name, self.clock.elapsed()));
        self.clock = std::time::Instant::now();
    }

    /// Start the current lap now.
    fn restart(&mut self) {
        self.clock = std::time::Instant::now();
    }

    /// Append another run of laps and restart.
    fn take(&mut self, other: &mut Laps) {
        self.done.append(&mut other.done);
        self.restart();
    }
}

struct Run<'a> {
    mirror: &'a gix::ThreadSafeRepository,
    /// The object store, where every map hit the walk uses must be.
    store: &'a crate::mkit::store::Store,
    map: &'a state::Sha1ToBlake,
    key: &'a KeyPair,
    options: ImportOptions,
    progress: &'a dyn Progress,
    /// Everything known about translated (or mapped and referenced) objects.
    memo: HashMap<Sha1, Translated>,
    /// Objects that cannot be translated, with the refusal to report.
    refusals: Refusals,
    /// Some tree had a historic mode spelling normalized.
    normalized: bool,
    /// Objects translated in this run, in no particular order.
    new_objects: Vec<Sha1>,
    /// Wall time of each translation phase.
    laps: Laps,
}

/// Read one object through this thread's own handle on the mirror, its id
/// checked; what cannot be read intact is a refusal.
fn read_object(
    mirror: &gix::ThreadSafeRepository,
    sha: &Sha1,
) -> Result<(ObjectKind, Vec<u8>), Refusal> {
    source::read(mirror, sha).map_err(Refusal::from)
}

/// A map hit that the store contradicts: the mapped id is not there, or it
/// is an object of another type than the git object's translation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Disagreement {
    /// The git object.
    sha: Sha1,
    /// The id the map gives it.
    id: Id,
    /// The type its translation must have, when the mirror says.
    expected: Option<ObjectType>,
    /// The type the store holds under `id` (`None`: no object there).
    found: Option<ObjectType>,
}

impl Disagreement {
    /// The note shown to the user.
    fn note(&self) -> String {
        let what = match (self.found, self.expected) {
            (None, _) => "which is not in the object store".to_owned(),
            (Some(found), Some(expected)) => format!(
                "which the object store holds as a {}, not a {}",
                found.name(),
                expected.name()
            ),
            (Some(found), None) => format!("which the object store holds as a {}", found.name()),
        };
        format!(
            "{} (git {} maps to {}, {what})",
            MapVerdict::Disagrees.note(),
            self.sha.to_hex(),
            self.id.to_hex()
        )
    }
}

impl Run<'_> {
    /// Check a map hit the walk is about to use: the store must hold the
    /// mapped id, as the type the git object translates to. Only the
    /// prologue of the mapped object is read, and only for hits at the
    /// boundary of new history (the walk stops at them), never for the whole
    /// map. A store that cannot be read is fatal.
    fn check_hit(
        &self,
        sha: &Sha1,
        id: &Id,
        header: Option<(ObjectKind, u64)>,
    ) -> Result<Option<Disagreement>, ImportError> {
        let found = self.store.peek_type(id)?;
        let expected = header.map(|(kind, size)| match kind {
            ObjectKind::Blob => rules::content_type(size),
            ObjectKind::Tree => ObjectType::Tree,
            ObjectKind::Commit => ObjectType::Commit,
            ObjectKind::Tag => ObjectType::Tag,
        });
        let agrees = match (found, expected) {
            (None, _) => false,
            (Some(found), Some(expected)) => found == expected,
            (Some(_), None) => true,
        };
        Ok((!agrees).then_some(Disagreement {
            sha: *sha,
            id: *id,
            expected,
            found,
        }))
    }

    /// Record `err` as `sha`'s refusal: a missing child that was itself
    /// refused shares the child's own refusal.
    fn refuse(&mut self, sha: Sha1, err: Refusal) {
        if let Refusal::MissingObject { object } = &err
            && self.refusals.share(sha, object)
        {
            return;
        }
        self.refusals.insert(sha, err);
    }

    /// The mkit id a ref tip translated to, or why it cannot be imported.
    fn resolve_tip(&self, tip: &Sha1) -> Result<Id, Refusal> {
        if let Some(t) = self.memo.get(tip) {
            return Ok(t.id);
        }
        if let Some(id) = self.map.get(tip) {
            return Ok(*id);
        }
        Err(self
            .refusals
            .get(tip)
            .cloned()
            .unwrap_or(Refusal::MissingObject { object: *tip }))
    }
}

/// Sort out a store result for the object `sha` translated to: an I/O
/// failure (a full disk, a permission, a failing device) is fatal to the run,
/// since it says nothing about the upstream; anything else the store refuses
/// (a value it cannot encode, an object over the size cap) refuses the
/// object, and with it the refs that need it.
fn staged<T>(sha: &Sha1, r: Result<T, StoreError>) -> Result<Result<T, Refusal>, ImportError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ StoreError::Io(_)) => Err(ImportError::Store(e)),
        Err(e) => Ok(Err(Refusal::CorruptObject {
            object: *sha,
            detail: e.to_string(),
        })),
    }
}

/// True when `dir` may receive a fresh import: absent, or an empty directory.
pub fn is_fresh_target(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut d) => d.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Stop the process on the spot, as `kill -9` would, when
/// `MKIT_BRIDGE_CRASH_AT` names `point`. Compiled to nothing unless the
/// `test-hooks` feature is on: the crash tests use it to interrupt an import
/// at a chosen step of its durability order.
#[inline]
pub fn crash_point(point: &str) {
    #[cfg(feature = "test-hooks")]
    if std::env::var("MKIT_BRIDGE_CRASH_AT").is_ok_and(|v| v == point) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::exit(137);
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = point;
}

/// Whether the map may be trusted, or why it must be rebuilt from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapVerdict {
    /// The map is whole: only objects it does not know are translated.
    Trusted,
    /// The crash marker was found: the map may vouch for torn objects.
    Interrupted,
    /// The map is damaged, lost its tail, or is gone while refs are
    /// recorded.
    Damaged,
    /// A map hit the walk was about to use names an object the store does
    /// not hold, or holds as another type (found during the walk, not by
    /// [`map_verdict`]).
    Disagrees,
}

impl MapVerdict {
    /// The note shown to the user (the reference's wording).
    pub fn note(self) -> &'static str {
        match self {
            MapVerdict::Trusted => "map cache is intact",
            MapVerdict::Interrupted => "previous import was interrupted; rebuilding the map cache",
            MapVerdict::Damaged => {
                "map cache missing or corrupt; rebuilding from the staging mirror"
            }
            MapVerdict::Disagrees => {
                "map cache disagrees with the object store; rebuilding from the staging mirror"
            }
        }
    }
}

/// Decide whether the loaded map can be trusted (0.5.0's rule): not after a
/// crash; not when a line is damaged; not when a recorded upstream tip is
/// missing from it (tips are appended before the ref state is recorded, so a
/// missing one means the tail was lost at a line boundary); not when it is
/// empty while refs are recorded.
pub fn map_verdict<'a>(
    interrupted: bool,
    intact: bool,
    map: &state::Sha1ToBlake,
    recorded: impl IntoIterator<Item = &'a RefState>,
) -> MapVerdict {
    if interrupted {
        return MapVerdict::Interrupted;
    }
    let mut any = false;
    let mut tips_mapped = true;
    for r in recorded {
        any = true;
        tips_mapped &= map.contains_key(&r.git);
    }
    if !intact || !tips_mapped || (any && map.is_empty()) {
        MapVerdict::Damaged
    } else {
        MapVerdict::Trusted
    }
}

/// How many commits, along first parents from each upstream tip, the
/// divergence probe looks at (0.5.0's bound).
pub const PROBE_DEPTH: usize = 32;

/// The in-store divergence probe (SPEC-GIT-IMPORT §6.1 check 2, as 0.5.0
/// runs it): digest the framed bytes of up to [`PROBE_DEPTH`] commits along
/// first parents from each upstream tip (tags peeled), then refuse when a
/// commit in the store carries one of those `content_digest`s under a signer
/// other than `ours` — the same upstream was already imported here under
/// another key. Run on first contact only (an empty map): afterwards the
/// pinned key and source already guarantee it. Tips share most of their
/// first-parent chains (a tag per release on the main line), so a commit
/// already looked at with at least as many steps left ends a tip's chain:
/// what follows it was digested then (the same set, each commit read once).
/// The store is looked at first: when it holds no commit under another
/// signer, nothing can match and the upstream is not read (the same answer;
/// on a first import into a new repository the probe then costs nothing).
fn divergence_probe(
    repo: &Repo,
    mirror: &gix::ThreadSafeRepository,
    tips: &[UpstreamRef],
    ours: &[u8; 32],
) -> Result<(), ImportError> {
    // The store's commits signed by another key, in the store's order. With
    // none (a first import into a new repository, say), nothing can have
    // diverged and the upstream is not read at all.
    let mut foreign: Vec<(Id, [u8; 32])> = Vec::new();
    for id in store_object_ids(repo.store().root())? {
        if let Ok(Object::Commit(c)) = repo.store().read(&id)
            && c.signer != *ours
        {
            foreign.push((c.content_digest, c.signer));
        }
    }
    if foreign.is_empty() {
        crate::run::hooks::probe("divergence-probe", || "nothing to compare".to_owned());
        return Ok(());
    }
    let mut digests: HashMap<Id, Sha1> = HashMap::new();
    // Per commit looked at: the most steps that were left after it.
    let mut left: HashMap<Sha1, usize> = HashMap::new();
    // Through openings of its own: the pack and index pages the probe maps
    // (tens of MB on git.git) go when it ends, not at the end of the run.
    let reader = reopen::Recycling::new(mirror, staging::DELTA_BASE_CACHE, reopen::REOPEN_AFTER);
    for tip in tips {
        let mut cur = tip.target;
        let mut peeled = 0;
        let mut walked = 0;
        while walked < PROBE_DEPTH {
            let steps = PROBE_DEPTH - walked;
            if left.get(&cur).is_some_and(|l| *l >= steps) {
                break;
            }
            let Ok((kind, body)) = reader.object_within(&cur, rules::MAX_OBJECT_BYTES) else {
                break;
            };
            match kind {
                ObjectKind::Tag if peeled <= rules::MAX_TAG_CHAIN => {
                    peeled += 1;
                    match TagRef::parse(&body) {
                        Ok(t) => cur = t.object,
                        Err(_) => break,
                    }
                }
                ObjectKind::Commit => {
                    left.insert(cur, steps);
                    walked += 1;
                    digests.insert(rules::framed_digest(ObjectKind::Commit, &body), cur);
                    match CommitRef::parse(&body)
                        .ok()
                        .and_then(|c| c.parents.first().copied())
                    {
                        Some(p) => cur = p,
                        None => break,
                    }
                }
                _ => break,
            }
        }
    }
    drop(reader);
    crate::run::hooks::probe("divergence-probe", || format!("read {}", left.len()));
    for (digest, signer) in &foreign {
        if let Some(commit) = digests.get(digest) {
            let hex = Id(*signer).to_hex();
            return Err(ImportError::Diverged {
                key: format!("{}… ({hex})", &hex[..16]),
                commit: *commit,
            });
        }
    }
    Ok(())
}

/// Every object id in a loose store (`<2 hex>/<62 hex>` files), sorted.
fn store_object_ids(objects: &Path) -> Result<Vec<Id>, ImportError> {
    let list = |dir: &Path| -> Result<Vec<std::fs::DirEntry>, ImportError> {
        match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StateError::from(durable::IoError::new("list", dir, e)).into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StateError::from(durable::IoError::new("list", dir, e)).into()),
        }
    };
    let mut ids = Vec::new();
    for shard in list(objects)? {
        let prefix = shard.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !shard.path().is_dir() {
            continue;
        }
        for f in list(&shard.path())? {
            let rest = f.file_name().to_string_lossy().into_owned();
            if let Ok(id) = Id::from_hex(&format!("{prefix}{rest}")) {
                ids.push(id);
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// Where the importer key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// The file the user named with `--key`.
    Given(std::path::PathBuf),
    /// The default import key file, which exists.
    Default(std::path::PathBuf),
    /// The default import key file does not exist and the state pins no
    /// key: generate one there (first use).
    Generate(std::path::PathBuf),
}

/// Decide which key signs an import or fetch into state `remote`.
///
/// `--key` wins. Without it the reference knows only the default path
/// `.mkit/keys/git-import.key`, and so do we: an existing file there is
/// used (a state pinned to another key then refuses with
/// [`ImportError::SignerMismatch`]). When the file is absent, a key is
/// generated only for a state that pins none; a state that already pins a
/// key refuses with [`ImportError::PinnedKeyMissing`], naming the pinned key,
/// instead of writing a stray key the state would refuse anyway.
pub fn choose_import_key(
    mkit_dir: &Path,
    remote: &str,
    given: Option<&Path>,
) -> Result<KeyChoice, ImportError> {
    if let Some(path) = given {
        return Ok(KeyChoice::Given(path.to_path_buf()));
    }
    let default = crate::mkit::keys::default_import_key_path(mkit_dir);
    if std::fs::symlink_metadata(&default).is_ok() {
        // Present in any form: loading it reports what is wrong with it; a
        // damaged key file is never replaced.
        return Ok(KeyChoice::Default(default));
    }
    let state_dir = state::state_dir(mkit_dir, remote)?;
    match state::read_signer(&state_dir)? {
        Some(pinned) => Err(ImportError::PinnedKeyMissing {
            remote: remote.to_owned(),
            pinned: Id(pinned).to_hex(),
            default_path: default,
        }),
        None => Ok(KeyChoice::Generate(default)),
    }
}

/// The marker a fresh-clone import (`import <url> <dir>`) leaves in
/// `<dir>/.mkit/` from just after the repository is created until the whole
/// command is done (refs, local branch, `HEAD`, checkout). Its presence
/// means the command was interrupted; running the same command again
/// finishes it.
pub const PENDING_FILE: &str = "git-import-pending";

/// A fresh-clone import that has not finished, as its marker records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingImport {
    /// The state name (`--remote-name`).
    pub remote: String,
    /// The upstream, as the user gave it.
    pub url: String,
}

/// What `import <url> <dir>` finds at `<dir>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Absent or empty (crash debris aside): start a fresh clone.
    Fresh,
    /// This command's own interrupted run (same upstream, same state name),
    /// or a repository created by it before it could record anything:
    /// resume it.
    Resume,
    /// Anything else: refuse. Holds the marker of another interrupted
    /// import, when that is what occupies it.
    Occupied(Option<PendingImport>),
}

/// The pending marker of the repository whose `.mkit` is `mkit_dir`, if any.
pub fn read_pending(mkit_dir: &Path) -> Option<PendingImport> {
    let text = std::fs::read_to_string(mkit_dir.join(PENDING_FILE)).ok()?;
    let (remote, url) = text.split_once('\n')?;
    Some(PendingImport {
        remote: remote.to_owned(),
        url: url.strip_suffix('\n').unwrap_or(url).to_owned(),
    })
}

/// Durably record that a fresh-clone import of `url` under `remote` is
/// under way in the repository whose `.mkit` is `mkit_dir`.
pub fn write_pending(mkit_dir: &Path, remote: &str, url: &str) -> Result<(), ImportError> {
    durable::write_atomic(
        &mkit_dir.join(PENDING_FILE),
        format!("{remote}\n{url}\n").as_bytes(),
    )
    .map_err(|e| StateError::from(e).into())
}

/// Durably remove the pending marker: the fresh-clone import is complete.
pub fn clear_pending(mkit_dir: &Path) -> Result<(), ImportError> {
    let path = mkit_dir.join(PENDING_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => durable::sync_dir(mkit_dir).map_err(|e| StateError::from(e).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StateError::from(durable::IoError::new("remove", &path, e)).into()),
    }
}

/// True for entries an interrupted run may leave at the top of its target
/// that hold nothing: a repository being built (`.mkit.init.<pid>`).
fn is_debris(name: &str) -> bool {
    name.starts_with(".mkit.init.")
}

/// Remove the debris (`is_debris`) an interrupted run left in `dir`.
pub fn remove_debris(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if is_debris(&e.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// True when `mkit_dir` holds a repository nothing was recorded in yet: no
/// bridge state, no object, no ref.
fn is_pristine(mkit_dir: &Path) -> bool {
    fn holds_files(dir: &Path) -> bool {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        rd.flatten()
            .any(|e| !e.path().is_dir() || holds_files(&e.path()))
    }
    !mkit_dir.join(crate::state::GIT_STATE_DIR).exists()
        && !holds_files(&mkit_dir.join("objects"))
        && !holds_files(&mkit_dir.join("refs"))
}

/// Classify the target of `import <url> <dir>` for state `remote`: a fresh
/// target, this command's own interrupted run (resumed by running it
/// again), or something it must not touch.
pub fn classify_target(dir: &Path, url: &str, remote: &str) -> Target {
    let entries: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !is_debris(n))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Target::Fresh,
        Err(_) => return Target::Occupied(None),
    };
    if entries.is_empty() {
        return Target::Fresh;
    }
    let mkit_dir = dir.join(crate::mkit::repo::MKIT_DIR);
    if !entries.iter().any(|n| n == crate::mkit::repo::MKIT_DIR) {
        return Target::Occupied(None);
    }
    match read_pending(&mkit_dir) {
        Some(p) => {
            let identity = crate::git::remote::remote_identity;
            if p.remote == remote && identity(&p.url) == identity(url) {
                Target::Resume
            } else {
                Target::Occupied(Some(p))
            }
        }
        None if entries.len() == 1 && is_pristine(&mkit_dir) => Target::Resume,
        None => Target::Occupied(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, git: u8, mkit: u8) -> RefState {
        RefState {
            name: name.to_owned(),
            mkit: Id([mkit; 32]),
            git: Sha1([git; 20]),
        }
    }

    #[test]
    fn map_verdict_follows_the_reference_rule() {
        let mut map = state::Sha1ToBlake::new();
        let recorded = [rs("refs/heads/main", 1, 2)];
        // Empty map, nothing recorded: a first import, nothing to rebuild.
        assert_eq!(map_verdict(false, true, &map, []), MapVerdict::Trusted);
        // Empty map with recorded refs: lost.
        assert_eq!(
            map_verdict(false, true, &map, &recorded),
            MapVerdict::Damaged
        );
        map.insert(Sha1([9; 20]), Id([9; 32]));
        // A recorded tip missing: the tail was lost at a line boundary.
        assert_eq!(
            map_verdict(false, true, &map, &recorded),
            MapVerdict::Damaged
        );
        map.insert(Sha1([1; 20]), Id([2; 32]));
        assert_eq!(
            map_verdict(false, true, &map, &recorded),
            MapVerdict::Trusted
        );
        assert_eq!(
            map_verdict(false, false, &map, &recorded),
            MapVerdict::Damaged
        );
        // The crash marker wins over everything.
        assert_eq!(
            map_verdict(true, true, &map, &recorded),
            MapVerdict::Interrupted
        );
        assert!(
            MapVerdict::Interrupted
                .note()
                .contains("rebuilding the map cache")
        );
        assert!(MapVerdict::Damaged.note().contains("rebuilding"));
        let d = Disagreement {
            sha: Sha1([1; 20]),
            id: Id([0xff; 32]),
            expected: Some(ObjectType::Tree),
            found: None,
        };
        let note = d.note();
        assert!(note.starts_with(MapVerdict::Disagrees.note()), "{note}");
        assert!(note.contains(&Sha1([1; 20]).to_hex()) && note.contains(&"f".repeat(64)));
        assert!(note.contains("not in the object store"), "{note}");
        let d = Disagreement {
            found: Some(ObjectType::Blob),
            ..d
        };
        assert!(d.note().contains("holds as a blob, not a tree"));
    }

    #[test]
    fn store_io_errors_are_fatal_and_other_store_refusals_refuse_the_object() {
        let sha = Sha1([4; 20]);
        let io = StoreError::Io(durable::IoError::new(
            "write object",
            "/x",
            std::io::Error::from(rustix::io::Errno::NOSPC),
        ));
        let fatal = staged::<Id>(&sha, Err(io)).unwrap_err();
        assert!(matches!(fatal, ImportError::Store(StoreError::Io(_))));
        assert!(
            fatal.to_string().contains("cannot write object /x"),
            "{fatal}"
        );
        let too_large = StoreError::TooLarge {
            id: Id([5; 32]),
            size: 1 << 31,
        };
        assert!(matches!(
            staged::<Id>(&sha, Err(too_large)),
            Ok(Err(Refusal::CorruptObject { object, .. })) if object == sha
        ));
        assert!(matches!(staged(&sha, Ok(Id([6; 32]))), Ok(Ok(_))));
    }

    #[test]
    fn targets_are_classified() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        let url = "/some/upstream";
        assert_eq!(classify_target(&dir, url, "upstream"), Target::Fresh);
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(dir.join(".mkit.init.123")).unwrap();
        assert_eq!(classify_target(&dir, url, "upstream"), Target::Fresh);
        remove_debris(&dir);
        assert!(!dir.join(".mkit.init.123").exists());
        let repo = Repo::init(&dir).unwrap();
        // Created, nothing recorded yet: resumable.
        assert_eq!(classify_target(&dir, url, "upstream"), Target::Resume);
        write_pending(repo.mkit_dir(), "upstream", url).unwrap();
        std::fs::write(dir.join("half-checked-out.txt"), b"x").unwrap();
        assert_eq!(classify_target(&dir, url, "upstream"), Target::Resume);
        assert_eq!(
            classify_target(&dir, "/another/upstream", "upstream"),
            Target::Occupied(Some(PendingImport {
                remote: "upstream".to_owned(),
                url: url.to_owned()
            }))
        );
        assert!(matches!(
            classify_target(&dir, url, "other"),
            Target::Occupied(Some(_))
        ));
        clear_pending(repo.mkit_dir()).unwrap();
        assert_eq!(read_pending(repo.mkit_dir()), None);
        assert_eq!(
            classify_target(&dir, url, "upstream"),
            Target::Occupied(None)
        );
        // A directory with other content and no repository.
        let plain = tmp.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join("f"), b"x").unwrap();
        assert_eq!(
            classify_target(&plain, url, "upstream"),
            Target::Occupied(None)
        );
    }
}
