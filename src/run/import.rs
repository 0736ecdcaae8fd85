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

use crate::bridge::import::{self as rules, ImportOptions, RefMapping, Translated};
use crate::bridge::refusal::Refusal;
use crate::durable;
use crate::git::parse::{CommitRef, TagRef};
use crate::git::sha1::{ObjectKind, Sha1, object_id};
use crate::git::staging::{self, StagingError, UpstreamRef};
use crate::mkit::Id;
use crate::mkit::object::{Object, ObjectType};
use crate::mkit::refs::{self, Head, RefCondition, RefError};
use crate::mkit::repo::Repo;
use crate::mkit::sign::KeyPair;
use crate::mkit::store::StoreError;
use crate::state::{self, Binding, Direction, RefState, StateError};

mod dry;
mod reopen;
mod report;
mod translate;
mod walk;

pub use dry::{Change, Plan, PlannedRef, PrunedRef, plan};

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
    #[error("cannot read the staging mirror {path}: {message}")]
    Mirror {
        /// The mirror.
        path: String,
        /// What failed.
        message: String,
    },
    /// The worker pool could not start.
    #[error("cannot start {jobs} worker threads: {message}")]
    Threads {
        /// Requested jobs.
        jobs: usize,
        /// Why.
        message: String,
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
    let mkit_dir = repo.mkit_dir();
    let state_dir = state::state_dir(mkit_dir, req.remote)?;
    let _lock = state::lock_state_default(mkit_dir, req.remote)?;
    let swept = crate::run::sweep::after_lock(mkit_dir, &state_dir);
    let identity = crate::git::remote::remote_identity(req.url);

    // Bindings: refuse before touching anything.
    let direction = check_bindings(mkit_dir, &state_dir, req, &identity)?;
    let fork_mode = direction == Some(Direction::Fork);
    let public = req.key.public();

    crate::durable::create_dir_all_durable(&state_dir).map_err(StateError::from)?;
    // A marker left by an earlier run means its map may vouch for torn objects.
    let interrupted_before = state::importing_is_set(&state_dir)?;

    let mut laps = Laps::default();
    let fetched = match staging::fetch(&state_dir, req.url, req.interrupt) {
        Err(StagingError::Interrupted { .. }) => return Err(ImportError::Interrupted),
        other => other?,
    };
    crash_point("fetched");
    crate::run::hooks::pause_point("fetched", req.interrupt);
    laps.lap("fetch");

    let previous: HashMap<String, RefState> = state::load_import_ref_state(&state_dir)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let (map, intact) = state::load_map_inverse_checked(&state_dir)?;
    let mut notes = Vec::new();
    if swept > 0 {
        notes.push(format!(
            "removed {swept} temp files left by an earlier run that was killed"
        ));
    }
    let mut rebuild = match map_verdict(interrupted_before, intact, &map, previous.values()) {
        MapVerdict::Trusted => false,
        verdict => {
            notes.push(verdict.note().to_owned());
            true
        }
    };
    let map = if rebuild {
        state::Sha1ToBlake::new()
    } else {
        map
    };

    // By default two workers per core, so a worker waiting on the filesystem
    // leaves its core to another (10-20% faster than one per core on ripgrep
    // when the store flushed per object; no worse since the store's
    // background checkpoints).
    let jobs = if req.jobs == 0 {
        2 * std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        req.jobs
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| ImportError::Threads {
            jobs: req.jobs,
            message: e.to_string(),
        })?;
    let mirror = open_mirror(&state_dir)?;

    // First contact (or a rebuild): is this upstream's content already in
    // the store under another key? Read-only, so it runs before the marker.
    if map.is_empty() {
        divergence_probe(repo, &mirror, &fetched.refs, &public)?;
    }
    // Recorded only now, once the upstream was fetched and the probe
    // passed, so a refused first import leaves the state name free.
    if direction.is_none() {
        state::bind_direction(&state_dir, Direction::Import)?;
    }
    state::pin_binding(&state_dir, Binding::Source, &identity)?;
    state::bind_import_spec(&state_dir)?;
    state::bind_signer(&state_dir, &public)?;
    // From here until the ref state is recorded, torn objects can exist.
    state::set_importing(&state_dir)?;

    // What the map is replaced by when the walk finds it disagreeing with
    // the store.
    let empty = state::Sha1ToBlake::new();
    let mut run = Run {
        mirror: &mirror,
        store: repo.store(),
        map: &map,
        key: req.key,
        options: ImportOptions { fork_mode },
        progress: req.progress,
        memo: HashMap::new(),
        refusals: HashMap::new(),
        normalized: false,
        new_objects: Vec::new(),
        laps: Laps::default(),
    };
    let batch = repo.store().batch();
    let mut raw = state::RawWriter::new(&state_dir);

    // Map upstream refs; refuse bad names up front.
    let mut plan: Vec<(UpstreamRef, Result<RefMapping, Refusal>)> = Vec::new();
    for r in &fetched.refs {
        match rules::map_ref(req.remote, r.name.as_bytes()) {
            Ok(Some(m)) => plan.push((r.clone(), Ok(m))),
            Ok(None) => {}
            Err(refusal) => plan.push((r.clone(), Err(refusal))),
        }
    }
    let tips: Vec<Sha1> = plan
        .iter()
        .filter(|(_, m)| m.is_ok())
        .map(|(r, _)| r.target)
        .collect();
    // A map hit naming an object the store lacks (or holds as another type)
    // means the map cannot be trusted as a whole: the run becomes a rebuild,
    // as for a damaged map. The second walk, with no map, cannot disagree.
    let work = loop {
        match pool.install(|| run.walk(&tips))? {
            Ok(work) => break work,
            Err(disagreement) => {
                notes.push(disagreement.note());
                rebuild = true;
                run.map = &empty;
                run.refusals.clear();
            }
        }
    };
    laps.lap("walk");
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(interrupted(&state_dir, interrupted_before));
    }
    // The original bytes of every commit and tag to translate are retained
    // (framed), in parallel and off the translation's sequential path.
    let fault = durable::fault::phase("raw");
    pool.install(|| translate::retain_raw(&mirror, &work, &raw))?;
    drop(fault);
    laps.lap("raw");
    pool.install(|| run.translate(&work, &batch, req.interrupt))
        .map_err(|e| match e {
            ImportError::Interrupted => interrupted(&state_dir, interrupted_before),
            e => e,
        })?;
    laps.take(&mut run.laps);
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(interrupted(&state_dir, interrupted_before));
    }

    // Durability order: objects, raw bytes, map, refs, ref state, stamps.
    // One pair of filesystem flushes covers the objects and the raw bytes:
    // both are staged before the first, renamed before the second.
    let shared = durable::same_filesystem(repo.store().root(), &state_dir);
    let outcome_batch = batch.commit_with(raw.is_pending(), |flushed| {
        raw.publish_within(flushed && shared)
            .map_err(ImportError::from)
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
        state::discard_map(&state_dir)?;
    }
    state::append_map_import(&state_dir, &pairs)?;
    drop(fault);

    let mut outcome = ImportOutcome {
        translated: pairs.len() as u64,
        written: outcome_batch.written,
        cloned: fetched.cloned,
        default_branch: fetched.default_branch.clone(),
        notes,
        ..ImportOutcome::default()
    };
    crash_point("map");
    let mut ref_state = Vec::new();
    let mut ref_updates = Vec::new();
    for (upstream, mapping) in plan {
        let mapping = match mapping {
            Ok(m) => m,
            Err(refusal) => {
                outcome.skipped.push(SkippedRef {
                    upstream: upstream.name,
                    refusal,
                });
                continue;
            }
        };
        let id = match run.resolve_tip(&upstream.target) {
            Ok(id) => id,
            Err(refusal) => {
                outcome.skipped.push(SkippedRef {
                    upstream: upstream.name,
                    refusal,
                });
                continue;
            }
        };
        if let Some(old) = previous.get(&upstream.name)
            && old.git != upstream.target
            && matches!(mapping, RefMapping::Branch { .. })
            && !is_ancestor(&mirror, &old.git, &upstream.target)
        {
            outcome.warnings.push(format!(
                "upstream force-pushed {}; tracking ref rewound from {} to {} (rebase local branches that built on the old history)",
                upstream.name,
                old.git.to_hex(),
                upstream.target.to_hex()
            ));
        }
        let before = previous.get(&upstream.name);
        match &mapping {
            RefMapping::Tag { tag, mkit_ref } => {
                match tag_decision(refs::read_ref(mkit_dir, mkit_ref)?, id, before) {
                    TagDecision::Write => ref_updates.push((mkit_ref.clone(), id)),
                    TagDecision::Keep => {}
                    TagDecision::MovedLocally => outcome.warnings.push(format!(
                        "not updating tag '{tag}': it was moved locally (delete it with \
                         `mkit tag -d {tag}` to track the upstream tag)"
                    )),
                }
            }
            RefMapping::Branch { mkit_ref, .. } => ref_updates.push((mkit_ref.clone(), id)),
        }
        ref_state.push(RefState {
            name: upstream.name.clone(),
            mkit: id,
            git: upstream.target,
        });
        outcome.imported.push(ImportedRef {
            changed: before.is_none_or(|old| old.git != upstream.target || old.mkit != id),
            upstream: upstream.name,
            mkit_ref: mapping.mkit_ref().to_owned(),
            git: upstream.target,
            mkit: id,
        });
    }
    let fault = durable::fault::phase("refs");
    refs::write_refs(mkit_dir, &ref_updates)?;
    drop(fault);
    crash_point("refs");
    // Branches deleted upstream lose their tracking refs.
    for (name, old) in &previous {
        if fetched.refs.iter().any(|r| &r.name == name) {
            continue;
        }
        if let Ok(Some(RefMapping::Branch { mkit_ref, .. })) =
            rules::map_ref(req.remote, name.as_bytes())
            && refs::delete_ref(mkit_dir, &mkit_ref, Some(old.mkit))?
        {
            outcome.warnings.push(format!(
                "upstream deleted {name}; tracking ref {mkit_ref} removed"
            ));
        }
    }
    if req.set_default_branch
        && let Some(default) = &fetched.default_branch
        && let Some(done) = outcome.imported.iter().find(|r| &r.upstream == default)
        && let Some(branch) = default.strip_prefix(refs::HEADS_PREFIX)
    {
        let local = format!("{}{branch}", refs::HEADS_PREFIX);
        refs::write_ref(mkit_dir, &local, &done.mkit, RefCondition::Any)?;
        refs::write_head(mkit_dir, &Head::Symbolic(local))?;
        outcome.checked_out = Some(branch.to_owned());
    }
    // Attestations before the ref state: a head whose recorded state did not
    // change is not attested again, so a crash after the state was stored
    // but before the envelopes were would leave those heads unattested.
    outcome.attestations = pool.install(|| {
        mint_import_attestations(repo, req.key, &identity, &outcome.imported, &previous)
    })?;
    let fault = durable::fault::phase("ref-state");
    state::store_import_ref_state(&state_dir, &ref_state)?;
    drop(fault);
    report::settle(
        &state_dir,
        &mirror,
        &run.refusals,
        &fetched.refs,
        &mut outcome,
    );
    if run.normalized {
        state::mark_normalized(&state_dir)?;
        outcome.warnings.push(
            "historic tree modes were normalized (declared-lossy; originals retained in the staging mirror)"
                .to_owned(),
        );
    }
    state::clear_importing(&state_dir)?;
    crash_point("imported");
    laps.lap("map+refs");
    outcome.timings = laps.done;
    Ok(outcome)
}

/// The staging mirror of `state_dir`, opened for reading objects from the
/// run's workers.
fn open_mirror(state_dir: &Path) -> Result<gix::ThreadSafeRepository, ImportError> {
    let path = staging::mirror_path(state_dir);
    staging::open_for_reading(&path, staging::DELTA_BASE_CACHE).map_err(|e| ImportError::Mirror {
        path: path.display().to_string(),
        message: e.to_string(),
    })
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
    changed.par_iter().try_for_each(|r| {
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
        attest::store::save(repo.mkit_dir(), &r.mkit, &envelope)?;
        Ok::<(), ImportError>(())
    })?;
    Ok(changed.len() as u64)
}

/// True when `old` is reachable from `new` in the mirror.
fn is_ancestor(mirror: &gix::ThreadSafeRepository, old: &Sha1, new: &Sha1) -> bool {
    let repo = mirror.to_thread_local();
    let Ok(walk) = repo.rev_walk([gix::ObjectId::from(new.0)]).all() else {
        return false;
    };
    let target = gix::ObjectId::from(old.0);
    walk.filter_map(Result::ok).any(|info| info.id == target)
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
    refusals: HashMap<Sha1, Refusal>,
    /// Some tree had a historic mode spelling normalized.
    normalized: bool,
    /// Objects translated in this run, in no particular order.
    new_objects: Vec<Sha1>,
    /// Wall time of each translation phase.
    laps: Laps,
}

thread_local! {
    static REPO: std::cell::RefCell<Option<gix::Repository>> = const { std::cell::RefCell::new(None) };
}

/// Drop the thread handles of every thread of the current pool (and of this
/// thread), so that a mirror dropped after a phase releases its mappings.
fn release_thread_handles() {
    let forget = || REPO.with(|cell| cell.borrow_mut().take());
    if rayon::current_thread_index().is_some() {
        rayon::broadcast(|_| drop(forget()));
    }
    drop(forget());
}

/// This thread's handle on `mirror`: made on first use, and made anew when
/// the thread's handle is on another mirror (one since reopened, so that
/// the pages it mapped are released, or another upstream's).
fn thread_handle<'c>(
    slot: &'c mut Option<gix::Repository>,
    mirror: &gix::ThreadSafeRepository,
) -> &'c gix::Repository {
    if slot
        .as_ref()
        .is_some_and(|r| !std::ptr::eq(r.objects.store_ref(), &*mirror.objects))
    {
        *slot = None;
    }
    slot.get_or_insert_with(|| mirror.to_thread_local())
}

/// Read one object through this thread's own handle on the mirror.
fn read_object(
    mirror: &gix::ThreadSafeRepository,
    sha: &Sha1,
) -> Result<(ObjectKind, Vec<u8>), Refusal> {
    REPO.with(|cell| {
        let mut slot = cell.borrow_mut();
        let repo = thread_handle(&mut slot, mirror);
        match repo.try_find_object(gix::ObjectId::from(sha.0)) {
            Ok(Some(obj)) => {
                let kind = match obj.kind {
                    gix::object::Kind::Blob => ObjectKind::Blob,
                    gix::object::Kind::Tree => ObjectKind::Tree,
                    gix::object::Kind::Commit => ObjectKind::Commit,
                    gix::object::Kind::Tag => ObjectKind::Tag,
                };
                let data = obj.detach().data;
                // Re-derive the id (collision-detecting): a corrupt pack entry
                // or a planted collision refuses the refs that need it.
                match object_id(kind, &data) {
                    Ok(id) if id == *sha => Ok((kind, data)),
                    Ok(id) => Err(Refusal::CorruptObject {
                        object: *sha,
                        detail: format!("its bytes hash to {}", id.to_hex()),
                    }),
                    Err(e) => Err(Refusal::CorruptObject {
                        object: *sha,
                        detail: e.to_string(),
                    }),
                }
            }
            Ok(None) => Err(Refusal::MissingObject { object: *sha }),
            Err(e) => Err(Refusal::CorruptObject {
                object: *sha,
                detail: e.to_string(),
            }),
        }
    })
}

/// The kind and size of an object, without reading its content.
fn read_header(mirror: &gix::ThreadSafeRepository, sha: &Sha1) -> Option<(ObjectKind, u64)> {
    REPO.with(|cell| {
        let mut slot = cell.borrow_mut();
        let repo = thread_handle(&mut slot, mirror);
        let h = repo.try_find_header(gix::ObjectId::from(sha.0)).ok()??;
        let kind = match h.kind() {
            gix::object::Kind::Blob => ObjectKind::Blob,
            gix::object::Kind::Tree => ObjectKind::Tree,
            gix::object::Kind::Commit => ObjectKind::Commit,
            gix::object::Kind::Tag => ObjectKind::Tag,
        };
        Some((kind, h.size()))
    })
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

    /// The refusal to report for `err`: a missing child that was itself
    /// refused reports the child's own refusal.
    fn resolve(&self, err: Refusal) -> Refusal {
        if let Refusal::MissingObject { object } = &err
            && let Some(inner) = self.refusals.get(object)
        {
            return inner.clone();
        }
        err
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

/// What to do with a local tag the upstream has (the moved-tag guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagDecision {
    /// Absent, or still where the previous import put it: write it.
    Write,
    /// Already at the new value.
    Keep,
    /// Moved locally since the previous import: leave it, and warn.
    MovedLocally,
}

/// Decide, as 0.5.0 does, whether an imported tag may be written: only when
/// the local tag is absent, already right, or still where the previous
/// import left it. A tag moved by hand is never overwritten.
pub fn tag_decision(current: Option<Id>, new: Id, previous: Option<&RefState>) -> TagDecision {
    match current {
        None => TagDecision::Write,
        Some(cur) if cur == new => TagDecision::Keep,
        Some(cur) if previous.is_some_and(|p| p.mkit == cur) => TagDecision::Write,
        Some(_) => TagDecision::MovedLocally,
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
/// pinned key and source already guarantee it.
fn divergence_probe(
    repo: &Repo,
    mirror: &gix::ThreadSafeRepository,
    tips: &[UpstreamRef],
    ours: &[u8; 32],
) -> Result<(), ImportError> {
    // Read through openings of its own, whose mapped pages go with them.
    let reader = reopen::Recycling::new(mirror, staging::DELTA_BASE_CACHE, reopen::REOPEN_AFTER);
    let mut digests: HashMap<Id, Sha1> = HashMap::new();
    for tip in tips {
        let mut cur = tip.target;
        let mut peeled = 0;
        let mut walked = 0;
        while walked < PROBE_DEPTH {
            let Ok((kind, body)) = reader.object(&cur) else {
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
    if digests.is_empty() {
        return Ok(());
    }
    for id in store_object_ids(repo.store().root())? {
        if let Ok(Object::Commit(c)) = repo.store().read(&id)
            && c.signer != *ours
            && let Some(commit) = digests.get(&c.content_digest)
        {
            let hex = Id(c.signer).to_hex();
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
            std::io::Error::from_raw_os_error(libc::ENOSPC),
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
    fn tag_decision_never_clobbers_a_moved_tag() {
        let new = Id([3; 32]);
        let prev = rs("refs/tags/v1", 1, 2);
        assert_eq!(tag_decision(None, new, None), TagDecision::Write);
        assert_eq!(tag_decision(None, new, Some(&prev)), TagDecision::Write);
        assert_eq!(tag_decision(Some(new), new, Some(&prev)), TagDecision::Keep);
        // Still where the previous import put it: follows the upstream.
        assert_eq!(
            tag_decision(Some(Id([2; 32])), new, Some(&prev)),
            TagDecision::Write
        );
        // Moved by hand, or a local tag the import never wrote: kept.
        assert_eq!(
            tag_decision(Some(Id([7; 32])), new, Some(&prev)),
            TagDecision::MovedLocally
        );
        assert_eq!(
            tag_decision(Some(Id([7; 32])), new, None),
            TagDecision::MovedLocally
        );
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
