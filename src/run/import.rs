//! The import driver: git upstream → importer-signed mkit history.
//!
//! One run, under the state lock, in the durability order of the design:
//!
//! 1. check the state's bindings (direction, source, import-spec, signer) and
//!    set the crash marker `importing`;
//! 2. bring the staging mirror up to date with gix and record the bindings
//!    after the first successful fetch;
//! 3. walk every upstream ref's closure, stopping at objects the map already
//!    knows, so a run with no upstream change reads nothing but the refs;
//! 4. translate the new objects: blobs in parallel, then trees in waves of
//!    equal height, commits in waves of equal generation, tags by chain
//!    length; each worker reads the mirror through its own gix handle, and
//!    every object is staged in one [`WriteBatch`];
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

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::bridge::import::{self as rules, ImportOptions, Translated, check_object_size};
use crate::bridge::plan::import::ImportPlan;
use crate::bridge::refusal::Refusal;
use crate::durable;
use crate::git::parse::{CommitRef, TagRef, parse_tree};
use crate::git::sha1::{ObjectKind, Sha1, frame};
use crate::git::source::{self, header as read_header, is_ancestor};
use crate::git::staging::{StagingError, UpstreamRef};
use crate::mkit::Id;
use crate::mkit::content;
use crate::mkit::object::{Object, ObjectType};
use crate::mkit::refs::RefError;
use crate::mkit::repo::Repo;
use crate::mkit::sign::KeyPair;
use crate::mkit::store::{Prepared, StoreError, WriteBatch, prepare};
use crate::state::{self, Binding, Direction, RefState, StateError};

mod cache;
mod dry;
mod report;
mod setup;
mod update;

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
    let (graph, dropped) = setup::walk(&p, &mut run, &mapped, &empty, &mut notes)?;
    rebuild |= dropped;
    laps.lap("walk");
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(interrupted(&p.state_dir, p.interrupted_before));
    }
    let (translated, written) = write_objects(repo, req, &p, &mut run, &graph, &mut laps, rebuild)?;
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
    graph: &Graph,
    laps: &mut Laps,
    rebuild: bool,
) -> Result<(u64, u64), ImportError> {
    let batch = repo
        .store()
        .batch()
        .with_threads(p.pool.current_num_threads());
    let mut raw = state::RawWriter::new(&p.state_dir);
    // The original bytes of every new commit and tag are retained (framed),
    // in parallel and off the translation's sequential path.
    let fault = durable::fault::phase("raw");
    p.pool.install(|| {
        graph
            .commits
            .par_iter()
            .map(|(s, b)| (s, ObjectKind::Commit, b))
            .chain(graph.tags.par_iter().map(|(s, b)| (s, ObjectKind::Tag, b)))
            .try_for_each(|(sha, kind, body)| raw.retain(sha, &frame(kind, body)).map(|_| ()))
    })?;
    drop(fault);
    laps.lap("raw");
    p.pool
        .install(|| run.translate(graph, &batch, req.interrupt))
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
    let shared = durable::same_filesystem(repo.store().root(), &p.state_dir);
    let committed = batch.commit_with(raw.is_pending(), |flushed| {
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

/// A translated tree and whether a historic mode was normalized in it.
type TreeResult = Result<(Translated, bool), Refusal>;

/// The new objects of a run, found by walking from the tips.
#[derive(Default)]
struct Graph {
    blobs: Vec<Sha1>,
    /// New trees with their new subtree children.
    trees: Vec<(Sha1, Vec<Sha1>)>,
    /// New commits with their raw body.
    commits: Vec<(Sha1, Vec<u8>)>,
    /// New tags with their raw body.
    tags: Vec<(Sha1, Vec<u8>)>,
    /// Parents of each new commit that parsed, as the walk read them.
    parents: HashMap<Sha1, Vec<Sha1>>,
    /// Target of each new tag that parsed.
    tag_targets: HashMap<Sha1, Sha1>,
    /// Already-mapped objects referenced by new ones (or tips), with their
    /// kind and size in the mirror when it has them.
    mapped: Vec<(Sha1, Option<(ObjectKind, u64)>)>,
    /// Bodies of new trees read by the walk, up to [`TREE_BODY_BUDGET`].
    tree_bodies: HashMap<Sha1, Vec<u8>>,
    /// Bytes held in `tree_bodies`.
    tree_body_bytes: usize,
}

/// Memory the walk may spend keeping tree bodies for the translation; trees
/// beyond it are read again from the mirror.
const TREE_BODY_BUDGET: usize = 256 << 20;

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

    /// Walk from the tips through every object the map does not know; the
    /// first map hit the store contradicts stops the walk and is returned.
    fn walk(&mut self, tips: &[Sha1]) -> Result<Result<Graph, Disagreement>, ImportError> {
        let mut graph = Graph::default();
        let mut seen: HashSet<Sha1> = HashSet::new();
        let mut stack: Vec<(Sha1, Option<ObjectKind>)> =
            tips.iter().rev().map(|t| (*t, None)).collect();
        while let Some((sha, hint)) = stack.pop() {
            if !seen.insert(sha) {
                continue;
            }
            if let Some(id) = self.map.get(&sha).copied() {
                let header = read_header(self.mirror, &sha);
                if let Some(disagreement) = self.check_hit(&sha, &id, header)? {
                    return Ok(Err(disagreement));
                }
                graph.mapped.push((sha, header));
                continue;
            }
            if hint == Some(ObjectKind::Blob) {
                graph.blobs.push(sha);
                continue;
            }
            let (kind, body) = match read_object(self.mirror, &sha) {
                Ok(x) => x,
                Err(refusal) => {
                    self.refusals.insert(sha, refusal);
                    continue;
                }
            };
            match kind {
                ObjectKind::Blob => graph.blobs.push(sha),
                ObjectKind::Tree => {
                    let mut subtrees = Vec::new();
                    if let Ok(entries) = parse_tree(&body) {
                        for e in entries.iter().rev() {
                            match rules::map_mode(e.mode) {
                                rules::ModeMapping::Canonical(m)
                                | rules::ModeMapping::Normalized(m)
                                    if m == crate::mkit::object::EntryMode::Tree =>
                                {
                                    subtrees.push(e.id);
                                    stack.push((e.id, Some(ObjectKind::Tree)));
                                }
                                rules::ModeMapping::Canonical(_)
                                | rules::ModeMapping::Normalized(_) => {
                                    stack.push((e.id, Some(ObjectKind::Blob)));
                                }
                                _ => {}
                            }
                        }
                    }
                    graph.trees.push((sha, subtrees));
                    // Kept for the translation, within a budget, so most
                    // trees are inflated and hashed once.
                    if graph.tree_body_bytes + body.len() <= TREE_BODY_BUDGET {
                        graph.tree_body_bytes += body.len();
                        graph.tree_bodies.insert(sha, body);
                    }
                }
                ObjectKind::Commit => {
                    if let Ok(c) = CommitRef::parse(&body) {
                        stack.push((c.tree, Some(ObjectKind::Tree)));
                        for p in c.parents.iter().rev() {
                            stack.push((*p, Some(ObjectKind::Commit)));
                        }
                        graph.parents.insert(sha, c.parents);
                    }
                    graph.commits.push((sha, body));
                }
                ObjectKind::Tag => {
                    if let Ok(t) = TagRef::parse(&body) {
                        stack.push((t.object, None));
                        graph.tag_targets.insert(sha, t.object);
                    }
                    graph.tags.push((sha, body));
                }
            }
        }
        Ok(Ok(graph))
    }

    /// The memo entry for an already-mapped object referenced by a new one:
    /// its id from the map, its type (from the mirror's `header`, as the walk
    /// read it) and depth from the mirror.
    fn describe_mapped(
        &self,
        sha: &Sha1,
        header: Option<(ObjectKind, u64)>,
        heights: &mut HashMap<Sha1, usize>,
    ) -> Option<Translated> {
        let id = *self.map.get(sha)?;
        let (kind, size) = header?;
        let (kind, depth) = match kind {
            ObjectKind::Blob => (rules::content_type(size), 0),
            ObjectKind::Tree => (ObjectType::Tree, self.mapped_height(sha, heights)),
            ObjectKind::Commit => (ObjectType::Commit, 0),
            ObjectKind::Tag => (ObjectType::Tag, self.mapped_chain(sha)),
        };
        Some(Translated { id, kind, depth })
    }

    /// Height of a mapped tree, read from the mirror (memoized).
    fn mapped_height(&self, sha: &Sha1, heights: &mut HashMap<Sha1, usize>) -> usize {
        if let Some(h) = heights.get(sha) {
            return *h;
        }
        let mut tallest = 0;
        if let Ok((ObjectKind::Tree, body)) = read_object(self.mirror, sha)
            && let Ok(entries) = parse_tree(&body)
        {
            let subtrees: Vec<Sha1> = entries
                .iter()
                .filter(|e| {
                    matches!(
                        rules::map_mode(e.mode),
                        rules::ModeMapping::Canonical(crate::mkit::object::EntryMode::Tree)
                            | rules::ModeMapping::Normalized(crate::mkit::object::EntryMode::Tree)
                    )
                })
                .map(|e| e.id)
                .collect();
            for s in subtrees {
                tallest = tallest.max(self.mapped_height(&s, heights));
            }
        }
        heights.insert(*sha, tallest + 1);
        tallest + 1
    }

    /// Chain length of a mapped tag, read from the mirror.
    fn mapped_chain(&self, sha: &Sha1) -> usize {
        let mut chain = 0;
        let mut cur = *sha;
        while chain <= rules::MAX_TAG_CHAIN {
            let Ok((ObjectKind::Tag, body)) = read_object(self.mirror, &cur) else {
                break;
            };
            chain += 1;
            match TagRef::parse(&body) {
                Ok(t) => cur = t.object,
                Err(_) => break,
            }
        }
        chain
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

    /// Translate every new object, bottom-up, staging into `batch`.
    fn translate(
        &mut self,
        graph: &Graph,
        batch: &WriteBatch<'_>,
        interrupt: &AtomicBool,
    ) -> Result<(), ImportError> {
        let mut heights = HashMap::new();
        for (sha, header) in &graph.mapped {
            if let Some(t) = self.describe_mapped(sha, *header, &mut heights) {
                self.memo.insert(*sha, t);
            }
        }

        // Blobs, in parallel. A failed write stops the run (rayon's collect
        // into a `Result` stops at the first error); a refused object only
        // refuses the refs that need it.
        self.laps.restart();
        self.progress.phase("blobs", graph.blobs.len() as u64);
        let mirror = self.mirror;
        let progress = self.progress;
        let fault = durable::fault::phase("blobs");
        let results: Vec<(Sha1, Result<Translated, Refusal>)> = graph
            .blobs
            .par_iter()
            .map(|sha| {
                if interrupt.load(Ordering::Relaxed) {
                    return Ok((*sha, Err(Refusal::MissingObject { object: *sha })));
                }
                let read = (|| {
                    // The header first, so an object over the 1 GiB cap is
                    // refused before its content is read into memory.
                    if let Some((kind, size)) = read_header(mirror, sha) {
                        check_object_size(sha, kind, size)?;
                    }
                    let (kind, data) = read_object(mirror, sha)?;
                    if kind != ObjectKind::Blob {
                        return Err(Refusal::MissingObject { object: *sha });
                    }
                    Ok(data)
                })();
                let r = match read {
                    Ok(data) => {
                        progress.advance(0, data.len() as u64);
                        staged(sha, content::stage_content(batch, &data))?.map(|id| Translated {
                            id,
                            kind: rules::content_type(data.len() as u64),
                            depth: 0,
                        })
                    }
                    Err(refusal) => Err(refusal),
                };
                progress.advance(1, 0);
                Ok((*sha, r))
            })
            .collect::<Result<_, ImportError>>()?;
        drop(fault);
        self.absorb(results);

        // Trees, in waves of equal height (children always in an earlier wave).
        let tree_children: HashMap<Sha1, &Vec<Sha1>> =
            graph.trees.iter().map(|(s, c)| (*s, c)).collect();
        let mut level: HashMap<Sha1, usize> = HashMap::new();
        for (sha, _) in &graph.trees {
            tree_level(sha, &tree_children, &mut level);
        }
        let mut by_level: Vec<Vec<Sha1>> = Vec::new();
        for (sha, _) in &graph.trees {
            let l = level[sha];
            if by_level.len() <= l {
                by_level.resize(l + 1, Vec::new());
            }
            by_level[l].push(*sha);
        }
        self.laps.lap("blobs");
        self.progress.phase("trees", graph.trees.len() as u64);
        let fault = durable::fault::phase("trees");
        for wave in &mut by_level {
            wave.sort();
            if interrupt.load(Ordering::Relaxed) {
                return Err(ImportError::Interrupted);
            }
            let memo = &self.memo;
            let options = self.options;
            let results: Vec<(Sha1, TreeResult)> = wave
                .par_iter()
                .map(|sha| {
                    let translated = (|| {
                        let read;
                        let body = match graph.tree_bodies.get(sha) {
                            Some(body) => body,
                            None => {
                                read = read_object(mirror, sha)?.1;
                                &read
                            }
                        };
                        rules::translate_tree(sha, body, options, |c| memo.get(c).copied())
                    })();
                    let r = match translated {
                        Ok(t) => {
                            let (depth, normalized) = (t.depth, t.normalized);
                            staged(sha, batch.add(&Object::Tree(t.tree)))?.map(|id| {
                                (
                                    Translated {
                                        id,
                                        kind: ObjectType::Tree,
                                        depth,
                                    },
                                    normalized,
                                )
                            })
                        }
                        Err(refusal) => Err(refusal),
                    };
                    progress.advance(1, 0);
                    Ok((*sha, r))
                })
                .collect::<Result<_, ImportError>>()?;
            let mut plain = Vec::with_capacity(results.len());
            for (sha, r) in results {
                plain.push((
                    sha,
                    r.map(|(t, normalized)| {
                        self.normalized |= normalized;
                        t
                    }),
                ));
            }
            self.absorb(plain);
        }

        // Commits, in waves of equal generation.
        let bodies: HashMap<Sha1, &Vec<u8>> = graph.commits.iter().map(|(s, b)| (*s, b)).collect();
        let mut generation: HashMap<Sha1, usize> = HashMap::new();
        let mut order: Vec<Sha1> = graph.commits.iter().map(|(s, _)| *s).collect();
        order.sort();
        for sha in &order {
            commit_generation(sha, &graph.parents, &bodies, &mut generation);
        }
        let mut waves: Vec<Vec<Sha1>> = Vec::new();
        for sha in &order {
            let g = generation[sha];
            if waves.len() <= g {
                waves.resize(g + 1, Vec::new());
            }
            waves[g].push(*sha);
        }
        drop(fault);
        let key = self.key;
        // Blobs and trees are most of the files: publish them while the
        // commit chain is computed.
        batch.checkpoint();
        self.laps.lap("trees");
        self.progress.phase("commits", graph.commits.len() as u64);
        let fault = durable::fault::phase("commits");
        // Commit files are written by a thread of their own while the chain
        // goes on: only ids travel along the chain.
        std::thread::scope(|scope| -> Result<(), ImportError> {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<Prepared>>();
            let writer = scope.spawn(move || -> Result<(), StoreError> {
                for chunk in rx {
                    for p in &chunk {
                        batch.add_prepared(p)?;
                    }
                }
                Ok(())
            });
            let mut to_write = Vec::new();
            for wave in &waves {
                if interrupt.load(Ordering::Relaxed) {
                    return Err(ImportError::Interrupted);
                }
                let memo = &self.memo;
                let one = |sha: &Sha1| {
                    let body = bodies[sha];
                    let r = (|| {
                        let c = rules::translate_commit(sha, body, |p| memo.get(p).copied(), key)?;
                        prepare(&Object::Commit(c)).map_err(|e| Refusal::CorruptObject {
                            object: *sha,
                            detail: e.to_string(),
                        })
                    })();
                    progress.advance(1, 0);
                    (*sha, r)
                };
                // Linear stretches of history make waves of one or two
                // commits: those are translated inline, where handing them to
                // the pool would cost more than the work.
                let results: Vec<(Sha1, Result<Prepared, Refusal>)> = if wave.len() < PARALLEL_WAVE
                {
                    wave.iter().map(one).collect()
                } else {
                    wave.par_iter().map(one).collect()
                };
                let mut settled = Vec::with_capacity(results.len());
                for (sha, r) in results {
                    settled.push((
                        sha,
                        r.map(|p| {
                            let t = Translated {
                                id: p.id(),
                                kind: ObjectType::Commit,
                                depth: 0,
                            };
                            to_write.push(p);
                            t
                        }),
                    ));
                }
                self.absorb(settled);
                if to_write.len() >= COMMIT_WRITE_CHUNK {
                    // A send fails only once the writer has stopped on an
                    // error, which its join below reports.
                    let _ = tx.send(std::mem::take(&mut to_write));
                }
            }
            drop(tx);
            self.laps.lap("commits");
            // The chain is done: the pool writes what is left while the
            // writer drains its queue.
            let rest = to_write
                .par_iter()
                .try_for_each(|p| batch.add_prepared(p).map(|_| ()));
            match writer.join() {
                Ok(written) => written?,
                // A panic is a bug, not an input error: pass it on as is.
                Err(panic) => std::panic::resume_unwind(panic),
            }
            rest?;
            Ok(())
        })?;

        drop(fault);
        // Tags: each round translates the tags whose target is settled.
        self.laps.lap("commit files");
        self.progress.phase("tags", graph.tags.len() as u64);
        let _fault = durable::fault::phase("tags");
        let mut pending: Vec<&(Sha1, Vec<u8>)> = graph.tags.iter().collect();
        pending.sort_by_key(|(s, _)| *s);
        while !pending.is_empty() {
            let (ready, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(sha, _)| {
                graph.tag_targets.get(sha).is_none_or(|target| {
                    !graph.tag_targets.contains_key(target)
                        || self.memo.contains_key(target)
                        || self.refusals.contains_key(target)
                })
            });
            if ready.is_empty() {
                // A cycle cannot occur in a content-addressed graph; refuse
                // what is left rather than loop.
                for (sha, _) in later {
                    self.refusals
                        .insert(*sha, Refusal::MissingObject { object: *sha });
                }
                break;
            }
            // Tags of one round never depend on each other.
            let memo = &self.memo;
            let results: Vec<(Sha1, Result<Translated, Refusal>)> = ready
                .par_iter()
                .map(|(sha, body)| {
                    let r = match rules::translate_tag(sha, body, |t| memo.get(t).copied(), key) {
                        Ok(t) => {
                            let chain = t.chain;
                            staged(sha, batch.add(&Object::Tag(t.tag)))?.map(|id| Translated {
                                id,
                                kind: ObjectType::Tag,
                                depth: chain,
                            })
                        }
                        Err(refusal) => Err(refusal),
                    };
                    progress.advance(1, 0);
                    Ok((*sha, r))
                })
                .collect::<Result<_, ImportError>>()?;
            self.absorb(results);
            pending = later;
        }
        self.laps.lap("tags");
        Ok(())
    }

    fn absorb(&mut self, results: Vec<(Sha1, Result<Translated, Refusal>)>) {
        for (sha, r) in results {
            match r {
                Ok(t) => {
                    self.memo.insert(sha, t);
                    self.new_objects.push(sha);
                }
                Err(e) => {
                    let e = self.resolve(e);
                    self.refusals.insert(sha, e);
                }
            }
        }
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

/// Wave index of a new tree: one more than its tallest new subtree.
fn tree_level(
    sha: &Sha1,
    children: &HashMap<Sha1, &Vec<Sha1>>,
    level: &mut HashMap<Sha1, usize>,
) -> usize {
    if let Some(l) = level.get(sha) {
        return *l;
    }
    // Iterative post-order: trees can nest deeply.
    let mut stack = vec![(*sha, false)];
    while let Some((s, expanded)) = stack.pop() {
        if level.contains_key(&s) {
            continue;
        }
        let kids: &[Sha1] = children.get(&s).map_or(&[], |v| v.as_slice());
        if expanded {
            let l = kids
                .iter()
                .filter(|k| children.contains_key(*k))
                .map(|k| level.get(k).map_or(0, |l| l + 1))
                .max()
                .unwrap_or(0);
            level.insert(s, l);
        } else {
            stack.push((s, true));
            for k in kids {
                if children.contains_key(k) && !level.contains_key(k) {
                    stack.push((*k, false));
                }
            }
        }
    }
    level[sha]
}

/// Commit waves smaller than this are translated on the calling thread.
const PARALLEL_WAVE: usize = 8;

/// Commits handed to the commit writer at a time.
const COMMIT_WRITE_CHUNK: usize = 64;

/// Wave index of a new commit: one more than its latest new parent.
fn commit_generation(
    sha: &Sha1,
    parents: &HashMap<Sha1, Vec<Sha1>>,
    new: &HashMap<Sha1, &Vec<u8>>,
    generation: &mut HashMap<Sha1, usize>,
) -> usize {
    if let Some(g) = generation.get(sha) {
        return *g;
    }
    // Only new commits take part (an unparsable one too, so its children come
    // in a later wave and report its refusal); mapped parents are settled.
    let parents_of = |s: &Sha1| -> Vec<Sha1> {
        parents.get(s).map_or_else(Vec::new, |ps| {
            ps.iter()
                .filter(|p| new.contains_key(*p))
                .copied()
                .collect()
        })
    };
    // Iterative: histories are far deeper than the stack allows.
    let mut stack = vec![(*sha, false)];
    while let Some((s, expanded)) = stack.pop() {
        if generation.contains_key(&s) {
            continue;
        }
        let parents = parents_of(&s);
        if expanded {
            let g = parents
                .iter()
                .map(|p| generation.get(p).map_or(0, |g| g + 1))
                .max()
                .unwrap_or(0);
            generation.insert(s, g);
        } else {
            stack.push((s, true));
            for p in parents {
                if !generation.contains_key(&p) {
                    stack.push((p, false));
                }
            }
        }
    }
    generation[sha]
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
/// pinned key and source already guarantee it.
fn divergence_probe(
    repo: &Repo,
    mirror: &gix::ThreadSafeRepository,
    tips: &[UpstreamRef],
    ours: &[u8; 32],
) -> Result<(), ImportError> {
    let mut digests: HashMap<Id, Sha1> = HashMap::new();
    for tip in tips {
        let mut cur = tip.target;
        let mut peeled = 0;
        let mut walked = 0;
        while walked < PROBE_DEPTH {
            let Ok((kind, body)) = source::read_within(mirror, &cur, rules::MAX_OBJECT_BYTES)
            else {
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
