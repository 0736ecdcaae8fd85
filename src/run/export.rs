//! The export driver: mkit history → a git mirror (SPEC-GIT-BRIDGE §12), and
//! its fork mode (`--passthrough`, §14).
//!
//! One run, under the state lock, as a short list of phases:
//!
//! 1. **check** (`check_state`): refuse the run early, with no side
//!    effect, on a bad destination; a destination that is a recorded import
//!    source (the origin guard, §14.2: allowed only in fork mode through the
//!    very state that imports from it); a state bound to another direction;
//!    and, in fork mode, a state that is not an import (or fork) state or
//!    whose import normalized historic tree modes (`normalized`);
//! 2. **prepare**: the destination (a missing or empty local path is
//!    `git init --bare`ed), the plain export's destination binding, and the
//!    staging repository `.mkit/git/<remote>/repo.git` (plain export: made
//!    when missing, a fresh one discards the map; fork mode: the import's own
//!    mirror, which must exist, with the import's map);
//! 3. **translate** (`translate_refs`): the union of the refs' closures
//!    that the map does not know, in parallel (`walk.rs`): a breadth-first
//!    walk reads the new trees, commits and tags level by level while the
//!    blobs and chunked blobs it finds are read, translated and compressed
//!    in parallel batches; trees, commits and tags follow in waves where
//!    every object's children are in earlier waves, their bodies read back
//!    from the walk's scratch shelf (memory bounded by design, `spill.rs`,
//!    EXPORT.md "Memory"). In fork mode the map is the import's, so every imported
//!    object keeps its original SHA-1 and is not written again (its bytes are
//!    already in the import mirror): only local objects are translated. Each
//!    git object is named by our collision-detecting SHA-1 and, unless
//!    staging already has it, appended to one pack for the run ([`pack`]). A
//!    refused object refuses every ref whose closure holds it; the others go
//!    on;
//! 4. **attest** (`attest.rs`): unless `--no-attest`, one `git-bridge/v1`
//!    envelope per exported head this run translated (in fork mode, not for
//!    a head that passed through), signed by the repository key, saved under
//!    `.mkit/attestations/` and published as a flat tree on the synthetic
//!    chain `refs/mkit/attestations` (its objects go into the same pack). A
//!    head whose recorded state is unchanged is not re-minted;
//! 5. **stage**: the pack is completed and made durable with the index its
//!    writer noted on the way, and the staging refs point at the new tips
//!    (fork mode: under `refs/mkit-export/`, so the import's own refs are
//!    untouched);
//! 6. **plan and push** (`push_refs`): observe the destination when the
//!    mode needs it (`git ls-remote`; fork mode always), plan every ref with
//!    the pure planner ([`crate::bridge::plan`]) and refuse the whole run on
//!    any refused ref (a moved lease, a fork-mode tag that exists, a
//!    fork-mode branch that would not fast-forward), then ONE
//!    `git push --atomic` with a lease per ref; a plain export to a local
//!    bare repository with no receive-side policy takes the direct route
//!    instead ([`crate::git::local`]: the staging packs placed, one
//!    compare-and-swap ref transaction). A push flushes staging to disk
//!    (`syncfs`) while it runs;
//! 7. **record** (`record`): only once the push has landed: the direction
//!    (`export`, or the `import` → `fork` upgrade), the destination (plain:
//!    bound on the first push; fork: the last one, for status only), the
//!    map, and the ref state merged over the prior records.
//!
//! A failure before the push leaves the mirror and the state as they were
//! (objects written to staging are harmless: content-addressed). A plain
//! state directory that had no destination binding when the run started is
//! removed on failure, so a typo does not burn the name; a destination
//! directory this run created is removed too.
//!
//! Output is identical for any number of jobs: ids are content-addressed,
//! refusals are chosen by a fixed rule (an object takes the refusal of its
//! first refused child, in the object's own child order) and every list
//! written is sorted.

mod attest;
pub mod pack;
mod spill;
mod walk;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::bridge::export::{
    ExportRefusal, check_manifest, dependencies, export_blob, export_flattened, export_object,
    export_ref,
};
use crate::bridge::plan::{self, Action, Mode, Observation, PlanRefusal, RefInput};
use crate::durable::IoError;
use crate::git::remote::{self, RemoteError, UrlKind};
use crate::git::sha1::{ObjectKind, Sha1};
use crate::git::source;
use crate::git::staging;
use crate::mkit::id::Id;
use crate::mkit::keys::KeyError;
use crate::mkit::object::{EntryMode, Object, ObjectType};
use crate::mkit::refs::{self, HEADS_PREFIX, Head, RefError, TAGS_PREFIX};
use crate::mkit::repo::Repo;
use crate::mkit::store::{Store, StoreError};
use crate::state::{self, Binding, BlakeToSha1, Direction, RefState, StateError};

use crate::git::local;
use crate::git::push::{Git, Lease, PushError, PushStatus, RefPush};
pub use crate::run::progress::{NoProgress, Progress};
use pack::{PackEntry, PackError, PackWriter};
use spill::{Spill, Staged};

/// The state name `export` uses when none is given (the reference's).
pub const DEFAULT_REMOTE: &str = "mirror";

/// The mirror-side ref that carries the published attestations (§11).
pub const ATTESTATIONS_REF: &str = "refs/mkit/attestations";

/// Where fork mode stages its tips in the import mirror, so the import's own
/// refs (the upstream's state) stay untouched.
pub const FORK_STAGING_PREFIX: &str = "refs/mkit-export/";

/// What to export and where.
pub struct ExportRequest<'a> {
    /// The destination: a local path or a git URL.
    pub dest: &'a str,
    /// The state name (`mirror` by default).
    pub remote: &'a str,
    /// Full ref names to export (`refs/heads/*` or `refs/tags/*`); empty
    /// means every branch and tag.
    pub refs: &'a [String],
    /// Push without leases: every ref is moved whatever the mirror holds
    /// (plain export only).
    pub force: bool,
    /// Fork mode (`--passthrough`): through an import state, imported
    /// objects keep their original SHA-1s and every push fast-forwards.
    pub passthrough: bool,
    /// Mint and publish `git-bridge/v1` attestations (`--no-attest` clears
    /// it, and then no key is read).
    pub attest: bool,
    /// Worker threads; 0 means one per core.
    pub jobs: usize,
    /// Set to stop at the next safe point before the push.
    pub interrupt: &'a AtomicBool,
    /// Progress reports (the library never prints).
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for ExportRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRequest")
            .field("dest", &self.dest)
            .field("remote", &self.remote)
            .field("refs", &self.refs)
            .field("force", &self.force)
            .field("passthrough", &self.passthrough)
            .field("attest", &self.attest)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl ExportRequest<'_> {
    fn mode(&self) -> Mode {
        if self.passthrough {
            Mode::Fork
        } else if self.force {
            Mode::Force
        } else {
            Mode::Mirror
        }
    }
}

/// One ref that was pushed (or found already in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedRef {
    /// Full ref name, the same on both sides.
    pub name: String,
    /// The mkit id it names.
    pub mkit: Id,
    /// Its translation (in fork mode, the original SHA-1 when it passed
    /// through).
    pub git: Sha1,
    /// What the push did to it.
    pub status: PushStatus,
}

/// One ref that was skipped, and why.
#[derive(Debug, Clone)]
pub struct SkippedRef {
    /// Full ref name.
    pub name: String,
    /// The refusal that skipped it.
    pub refusal: ExportRefusal,
}

/// What happened to the attestations chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationsOutcome {
    /// The commit `refs/mkit/attestations` names after the run.
    pub commit: Sha1,
    /// Envelopes minted by this run.
    pub minted: usize,
    /// What the push did to the ref.
    pub status: PushStatus,
}

/// What an export did.
#[derive(Debug, Default)]
pub struct ExportOutcome {
    /// Refs pushed or already in place, in selection order (branches, then
    /// tags, each sorted by name; or the `--ref` order).
    pub exported: Vec<ExportedRef>,
    /// Refs skipped, in selection order.
    pub skipped: Vec<SkippedRef>,
    /// The attestations ref, when attestations were published.
    pub attestations: Option<AttestationsOutcome>,
    /// mkit objects translated in this run.
    pub translated: u64,
    /// Map entries this run did not trust (staging lacks their git object,
    /// or holds it as another kind), whose objects it translated again.
    pub distrusted: u64,
    /// Git objects newly written to the staging repository.
    pub written: u64,
    /// What the push went to (a local destination as an absolute path).
    pub destination: String,
    /// True when this run created the destination repository.
    pub created_destination: bool,
    /// True when `git ls-remote` was run (seeding leases, or fork mode).
    pub observed: bool,
    /// What the direct route put into a local bare destination, when the
    /// run took it instead of `git push` ([`crate::git::local`]).
    pub local: Option<local::Placed>,
    /// True in fork mode.
    pub fork: bool,
    /// Notes for the user (temp files of a killed run removed; our own
    /// earlier push found in place).
    pub notes: Vec<String>,
    /// Wall time of each phase, in order.
    pub timings: Vec<(&'static str, Duration)>,
}

impl ExportOutcome {
    /// How many refs the push created or moved.
    pub fn updated(&self) -> usize {
        self.exported
            .iter()
            .filter(|r| r.status != PushStatus::UpToDate)
            .count()
    }
}

/// Why an export could not run, or did not land (per-ref problems are
/// [`SkippedRef`]s).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A state-directory rule refused the run, or a state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The mkit store could not be read (I/O, or an object file holding
    /// another object).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mkit refs could not be read.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// The destination is empty or option-shaped.
    #[error(transparent)]
    Destination(#[from] RemoteError),
    /// A `--ref` outside `refs/heads/` and `refs/tags/`.
    #[error("--ref {name}: expected a full name under refs/heads/ or refs/tags/")]
    RefArgument {
        /// What was given.
        name: String,
    },
    /// A `--ref` that does not exist.
    #[error("--ref {name}: no such ref in this repository")]
    RefNotFound {
        /// The name.
        name: String,
    },
    /// The repository has no branch and no tag.
    #[error("nothing to export: this repository has no branches or tags")]
    NothingToExport,
    /// The destination is a recorded import source (SPEC-GIT-BRIDGE §14.2).
    #[error(
        "{dest} is the recorded git-import source of state '{state}'; a plain export toward it \
         would replace its history with a disconnected re-translation (SPEC-GIT-BRIDGE §14.2). \
         Export to a separate mirror, or send work upstream in fork mode through that state \
         (`mkit-bridge export --passthrough --remote-name {state}`)"
    )]
    OriginGuard {
        /// The destination as given.
        dest: String,
        /// The state that imports from it.
        state: String,
    },
    /// The state is bound to another direction.
    #[error(
        "state '{remote}' is bound to direction '{direction}'; '{wanted}' is not allowed there \
         (one direction per state directory: choose another --remote-name)"
    )]
    WrongDirection {
        /// The state.
        remote: String,
        /// Its direction.
        direction: &'static str,
        /// What this run needs (`export`, or `fork` for `--passthrough`).
        wanted: &'static str,
    },
    /// `--passthrough` through a state that no import made.
    #[error(
        "--passthrough requires import state for '{remote}': run `mkit-bridge import <url>` \
         (or `mkit git import`) under that --remote-name first (SPEC-GIT-BRIDGE §14.1)"
    )]
    PassthroughNeedsImport {
        /// The state.
        remote: String,
    },
    /// `--passthrough` through a state whose import normalized tree modes.
    #[error(
        "state '{remote}' contains historic-mode-normalized trees; fork mode cannot reproduce \
         their original sha1s (SPEC-GIT-IMPORT §3.3). Re-import under a new --remote-name to \
         get fork-strict refusals"
    )]
    ForkNormalized {
        /// The state.
        remote: String,
    },
    /// `--passthrough` through a state whose import mirror is gone.
    #[error(
        "fork-mode staging mirror {} is missing; re-run the import (`mkit-bridge import` or \
         `mkit git import`) to restore it",
        path.display()
    )]
    ForkStagingMissing {
        /// The staging repository.
        path: PathBuf,
    },
    /// The state is bound to another destination (SPEC-GIT-BRIDGE §12.3).
    #[error("state '{remote}' is bound to {bound}; use a different --remote-name for {dest}")]
    DestinationMismatch {
        /// The state.
        remote: String,
        /// Its recorded destination identity.
        bound: String,
        /// The destination as given.
        dest: String,
    },
    /// A local destination that is neither a repository nor empty.
    #[error(
        "{} exists and is neither a git repository nor empty; export to a bare repository, an \
         empty directory or a new path",
        path.display()
    )]
    DestinationNotEmpty {
        /// The path.
        path: PathBuf,
    },
    /// Fork mode: the destination's tag names another object.
    #[error(
        "{name} already exists on {dest} at a different object ({}); fork-mode export never \
         moves an existing tag. Nothing was pushed: export the other refs with --ref, or \
         delete or rename the tag on one side",
        observed.to_hex()
    )]
    ForkTagExists {
        /// The tag.
        name: String,
        /// The destination.
        dest: String,
        /// What the destination's tag names.
        observed: Sha1,
    },
    /// Fork mode: the destination's branch has work we have not integrated.
    #[error(
        "{name} on {dest} has commits this repo has not integrated (it is at {}); nothing was \
         pushed. Fetch and integrate first: `mkit-bridge fetch --remote-name {remote}` (or \
         `mkit git fetch`), then `mkit merge {remote}/{branch}`, and export again \
         (fork-mode export refuses non-fast-forward pushes)",
        observed.to_hex()
    )]
    NotFastForward {
        /// The branch.
        name: String,
        /// Its short name.
        branch: String,
        /// The destination.
        dest: String,
        /// The state.
        remote: String,
        /// What the destination's branch names.
        observed: Sha1,
    },
    /// Plain export: the mirror does not hold what this state recorded.
    #[error(
        "push to {dest}: {name} stale info: the mirror holds {} where the last export recorded \
         {}; nothing was pushed and the state is unchanged.\nhint: the mirror moved since it was \
         last seen: if that change is expected, remove .mkit/git/{remote}/refs to reseed the \
         leases from the mirror (or use --force), and export again",
        observed.map_or_else(|| "nothing".to_owned(), |o| o.to_hex()),
        recorded.to_hex()
    )]
    LeaseMismatch {
        /// The ref.
        name: String,
        /// The destination.
        dest: String,
        /// The state.
        remote: String,
        /// The recorded value.
        recorded: Sha1,
        /// What the mirror holds (`None`: the ref is gone).
        observed: Option<Sha1>,
    },
    /// The repository key that signs attestations cannot be used.
    #[error(
        "build bridge signer: {source}{}",
        if matches!(source, KeyError::Missing { .. }) {
            "; or export with --no-attest to skip attestations"
        } else { "" }
    )]
    Signer {
        /// Why.
        #[source]
        source: KeyError,
    },
    /// An attestation could not be minted or saved.
    #[error("attestation for {name}: cannot {action}: {source}")]
    Attest {
        /// The ref.
        name: String,
        /// What was being done ("save", "hash the envelope", ...).
        action: &'static str,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A filesystem operation on the destination or staging failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Running git failed (init, ls-remote) or git is missing.
    #[error(transparent)]
    Git(PushError),
    /// The push did not land.
    #[error("push to {dest}: {error}{}", if error.is_lease_failure() {
        format!(
            "; nothing was pushed and the state is unchanged.\nhint: the mirror moved since it \
             was last seen: if that change is expected, remove .mkit/git/{remote}/refs to \
             reseed the leases from the mirror (or use --force), and export again"
        )
    } else { String::new() })]
    Push {
        /// The destination.
        dest: String,
        /// The state.
        remote: String,
        /// What git said.
        error: PushError,
    },
    /// The staging repository could not be opened.
    #[error("cannot open the staging repository {}: {source}", path.display())]
    Staging {
        /// The staging repository.
        path: PathBuf,
        /// What failed.
        #[source]
        source: gix::Error,
    },
    /// The run's pack or its index could not be written into staging.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// The worker pool could not start.
    #[error("cannot start {jobs} worker threads: {source}")]
    Threads {
        /// Requested jobs.
        jobs: usize,
        /// Why.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// The run was interrupted before the push.
    #[error(
        "interrupted: stopped before the push; the mirror and the state are unchanged; run the \
         same command again to finish"
    )]
    Interrupted,
    /// A signal ended the `git push` itself (a Ctrl-C in the terminal
    /// reaches every process of the foreground job).
    #[error(
        "interrupted during the push to {dest}: it may or may not have landed; nothing was \
         recorded; run the same command again to finish (a push that landed is then up to date)"
    )]
    InterruptedPush {
        /// The destination as given.
        dest: String,
    },
}

impl From<PushError> for ExportError {
    fn from(e: PushError) -> Self {
        ExportError::Git(e)
    }
}

/// Wall-time laps of the run's phases.
struct Laps {
    clock: Instant,
    timings: Vec<(&'static str, Duration)>,
}

impl Laps {
    fn start() -> Laps {
        Laps {
            clock: Instant::now(),
            timings: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        self.timings.push((name, self.clock.elapsed()));
        self.clock = Instant::now();
    }
}

/// A ref to push: its name, the mkit id it names and its git value.
type Tip = (String, Id, Sha1);

/// Export `req.refs` (or every branch and tag) of `repo` to `req.dest`
/// under state `req.remote`.
pub fn export(repo: &Repo, req: &ExportRequest<'_>) -> Result<ExportOutcome, ExportError> {
    let _threads = crate::run::hooks::ThreadProbe::start("threads");
    // The run's workers first: the sweep and the map load run on them too,
    // so `--jobs` bounds the whole run.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(req.jobs)
        .thread_name(|i| format!("export-{i}"))
        .build()
        .map_err(|source| ExportError::Threads {
            jobs: req.jobs,
            source,
        })?;
    let mut s = pool.install(|| begin(repo, req))?;
    let Translated {
        done,
        to_push,
        skipped,
        mut sink,
        distrusted,
    } = translate_refs(repo, req, &pool, &mut s)?;
    s.outcome.translated = done.len() as u64;
    s.outcome.distrusted = distrusted;
    s.outcome.skipped = skipped;
    if to_push.is_empty() {
        // Every ref was refused: nothing to push, nothing recorded.
        s.outcome.timings = s.laps.timings;
        return Ok(s.outcome);
    }
    let minted = if req.attest {
        let heads = attestable(&s.state_dir, req.passthrough, &to_push)?;
        attest::publish(&mut attest::Publish {
            git: &s.git,
            staging: &s.staging_path,
            store: repo.store(),
            mkit_dir: repo.mkit_dir(),
            dest: req.dest,
            heads: &heads,
            prior: &s.prior,
            sink: &mut sink,
        })?
    } else {
        None
    };
    s.laps.lap("attest");
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ExportError::Interrupted);
    }
    s.outcome.written = sink.pack.len() as u64;
    stage(
        &s.git,
        &s.staging_path,
        req,
        sink,
        &to_push,
        minted.as_ref(),
    )?;
    s.laps.lap("stage");
    // The last safe point: once the push starts, the run finishes it and
    // records what landed.
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ExportError::Interrupted);
    }
    let mut pushes: Vec<Tip> = to_push.clone();
    if let Some(m) = &minted {
        pushes.push((ATTESTATIONS_REF.to_owned(), Id([0; 32]), m.commit));
    }
    let statuses = push_and_record(req, &mut s, &done, &pushes)?;
    let status = |name: &str| {
        statuses
            .get(name)
            .copied()
            .unwrap_or(PushStatus::FastForward)
    };
    let mut outcome = s.outcome;
    outcome.attestations = minted.map(|m| AttestationsOutcome {
        commit: m.commit,
        minted: m.minted,
        status: status(ATTESTATIONS_REF),
    });
    outcome.exported = to_push
        .into_iter()
        .map(|(name, mkit, git)| ExportedRef {
            status: status(&name),
            name,
            mkit,
            git,
        })
        .collect();
    outcome.timings = s.laps.timings;
    Ok(outcome)
}

/// What an export holds once its state, destination and staging are ready.
/// `cleanup` is declared before `_lock` so that, on failure, what this run
/// made is removed while the state lock is still held.
struct Session {
    cleanup: Cleanup,
    _lock: state::StateLock,
    state_dir: PathBuf,
    selection: Vec<(String, Id)>,
    git: Git,
    laps: Laps,
    recorded_dest: Option<String>,
    destination: Destination,
    dest_identity: String,
    outcome: ExportOutcome,
    staging_path: PathBuf,
    map: BlakeToSha1,
    prior: Vec<RefState>,
    /// How the run's pack frames its entries ([`pack_level`]).
    level: pack::Level,
}

/// Check the destination URL and the state, select the refs, take the state
/// lock, prepare the destination and open staging with its map.
fn begin(repo: &Repo, req: &ExportRequest<'_>) -> Result<Session, ExportError> {
    remote::check_url(req.dest)?;
    let mkit_dir = repo.mkit_dir();
    let state_dir = state::state_dir(mkit_dir, req.remote)?;
    let selection = select_refs(mkit_dir, req.refs)?;
    let lock = state::lock_state_default(mkit_dir, req.remote)?;
    let swept = crate::run::sweep::after_lock(mkit_dir, &state_dir);
    let git = Git::new()?;
    let mut laps = Laps::start();

    let recorded_dest = check_state(mkit_dir, &state_dir, req)?;
    // A plain state bound to nothing yet: a failure removes what this run
    // made. A fork state is an import's, and is never removed.
    let mut cleanup = Cleanup {
        state: (!req.passthrough && recorded_dest.is_none()).then(|| state_dir.clone()),
        dest: None,
    };
    let destination = prepare_destination(&git, req.dest, initial_branch(mkit_dir).as_deref())?;
    cleanup.dest = destination.created.clone();
    // After preparing: a fresh local mirror resolves only once it exists.
    let dest_identity = remote::remote_identity(req.dest);
    if !req.passthrough
        && let Some(bound) = &recorded_dest
        && *bound != dest_identity
    {
        return Err(ExportError::DestinationMismatch {
            remote: req.remote.to_owned(),
            bound: bound.clone(),
            dest: req.dest.to_owned(),
        });
    }
    let mut outcome = ExportOutcome {
        destination: destination.target.clone(),
        created_destination: destination.created.is_some(),
        fork: req.passthrough,
        ..ExportOutcome::default()
    };
    if swept > 0 {
        outcome.notes.push(format!(
            "removed {swept} temp files left by an earlier run that was killed"
        ));
    }
    let (staging_path, map) = open_staging(&git, &state_dir, req.passthrough)?;
    let prior = state::load_ref_state(&state_dir)?;
    let level = pack_level(&git, req, &destination.target);
    laps.lap("prepare");
    Ok(Session {
        cleanup,
        _lock: lock,
        state_dir,
        selection,
        git,
        laps,
        recorded_dest,
        destination,
        dest_identity,
        outcome,
        staging_path,
        map,
        prior,
        level,
    })
}

/// Push `pushes` with their leases, record the state (the map's new pairs
/// `done`, the ref state, the bindings) and disarm the cleanup. Returns the
/// push status of each ref by name.
fn push_and_record(
    req: &ExportRequest<'_>,
    s: &mut Session,
    done: &HashMap<Id, Sha1>,
    pushes: &[Tip],
) -> Result<HashMap<String, PushStatus>, ExportError> {
    let target = PushTarget {
        git: &s.git,
        staging: &s.staging_path,
        destination: &s.destination.target,
        req,
    };
    let statuses = push_refs(&target, pushes, &s.prior, &mut s.outcome)?;
    s.laps.lap(if s.outcome.local.is_some() {
        "local-push"
    } else {
        "push"
    });
    let binding = Recording {
        state_dir: &s.state_dir,
        req,
        unbound: s.recorded_dest.is_none(),
        dest_identity: &s.dest_identity,
    };
    record(&binding, done, pushes, &s.prior)?;
    s.cleanup.disarm();
    s.laps.lap("state");
    Ok(statuses.into_iter().collect())
}

/// The checks that need no side effect: the origin guard, the direction,
/// and (fork mode) that the state is an import's and was not normalized.
/// Returns the recorded `dest` binding.
fn check_state(
    mkit_dir: &Path,
    state_dir: &Path,
    req: &ExportRequest<'_>,
) -> Result<Option<String>, ExportError> {
    let identity = remote::remote_identity(req.dest);
    if let Some(other) = state::state_with_source(mkit_dir, &identity, None)?
        && !(req.passthrough && other == req.remote)
    {
        return Err(ExportError::OriginGuard {
            dest: req.dest.to_owned(),
            state: other,
        });
    }
    let wanted = if req.passthrough {
        Direction::Fork
    } else {
        Direction::Export
    };
    let have = state::read_direction(state_dir)?;
    if req.passthrough && have.is_none() {
        return Err(ExportError::PassthroughNeedsImport {
            remote: req.remote.to_owned(),
        });
    }
    if let Some(have) = have
        && !Direction::may_bind(Some(have), wanted)
    {
        return Err(ExportError::WrongDirection {
            remote: req.remote.to_owned(),
            direction: have.as_str(),
            wanted: wanted.as_str(),
        });
    }
    if req.passthrough && state::read_normalized(state_dir)? {
        return Err(ExportError::ForkNormalized {
            remote: req.remote.to_owned(),
        });
    }
    Ok(state::read_binding(state_dir, Binding::Dest)?)
}

/// The branch a destination this run creates gets as `HEAD`: the mkit
/// repository's current branch, when git can name it.
fn initial_branch(mkit_dir: &Path) -> Option<String> {
    match refs::read_head(mkit_dir) {
        Ok(Some(Head::Symbolic(name))) if matches!(export_ref(&name), Ok(Some(_))) => {
            name.strip_prefix(HEADS_PREFIX).map(str::to_owned)
        }
        _ => None,
    }
}

/// The staging repository and the map that goes with it. Plain export makes
/// staging when missing (a fresh one discards the map, whose ids it would
/// not hold); fork mode needs the import's mirror and uses the import's map.
fn open_staging(
    git: &Git,
    state_dir: &Path,
    fork: bool,
) -> Result<(PathBuf, BlakeToSha1), ExportError> {
    if fork {
        let path = staging::mirror_path(state_dir);
        if !path.join("objects").is_dir() {
            return Err(ExportError::ForkStagingMissing { path });
        }
        remove_pack_leftovers(&path);
        return Ok((path, state::load_map(state_dir)?));
    }
    crate::durable::create_dir_all_durable(state_dir)?;
    let (path, fresh) = ensure_staging(git, state_dir)?;
    let map = if fresh {
        state::discard_map(state_dir)?;
        BlakeToSha1::new()
    } else {
        state::load_map(state_dir)?
    };
    Ok((path, map))
}

/// What the translation phase leaves for the rest of the run.
struct Translated {
    /// Objects translated in this run (the map's new pairs).
    done: HashMap<Id, Sha1>,
    /// The refs that can be pushed, in selection order.
    to_push: Vec<Tip>,
    /// The refs that cannot, in selection order.
    skipped: Vec<SkippedRef>,
    /// The run's pack, still open for the attestation objects.
    sink: Sink,
    /// How many map entries were distrusted.
    distrusted: u64,
}

/// Translate the closures of the selected refs into the run's pack and
/// resolve each ref to its git value, or to the refusal that skips it.
fn translate_refs(
    repo: &Repo,
    req: &ExportRequest<'_>,
    pool: &rayon::ThreadPool,
    s: &mut Session,
) -> Result<Translated, ExportError> {
    let selection = std::mem::take(&mut s.selection);
    let (staging_path, map, level, laps) = (&s.staging_path, &s.map, s.level, &mut s.laps);
    // Refs git cannot name are skipped before any work.
    let mut candidates: Vec<(usize, String, Id)> = Vec::new();
    let mut skipped: Vec<(usize, SkippedRef)> = Vec::new();
    for (index, (name, id)) in selection.into_iter().enumerate() {
        match export_ref(&name) {
            Ok(Some(_)) => candidates.push((index, name, id)),
            Ok(None) => {}
            Err(refusal) => skipped.push((index, SkippedRef { name, refusal })),
        }
    }
    let mut sink = Sink::open(staging_path)?;
    let mut tr = Translator {
        store: repo.store(),
        map,
        progress: req.progress,
        interrupt: req.interrupt,
        done: HashMap::new(),
        refused: HashMap::new(),
        distrusted: HashSet::new(),
        level,
        spill: Spill::new(
            staging_path,
            crate::run::hooks::tunable("MKIT_BRIDGE_EXPORT_HELD_BYTES", spill::HELD_BYTES),
        )?,
    };
    let tips: Vec<Id> = candidates.iter().map(|(_, _, id)| *id).collect();
    let fault = crate::durable::fault::phase("pack");
    let graph = pool.install(|| tr.walk(&tips, &mut sink))?;
    let waiting = graph.len();
    // The content is written: its pack is completed as a job on the pool
    // while the trees, commits and tags are translated into a second one.
    let background = (pool.current_num_threads() > 1).then_some(pool);
    sink.pack.seal(background, req.interrupt)?;
    laps.lap("walk");
    pool.install(|| tr.translate(graph, &mut sink))?;
    drop(fault);
    laps.lap("translate");
    crate::run::hooks::probe("export-memory", || {
        let (held, spilled) = tr.spill.peaks();
        format!(
            "waiting {waiting}\ndecoded {}\nheld {held}\nspilled {spilled}\n",
            DECODED.peak()
        )
    });
    crate::run::hooks::pause_point("translated", req.interrupt);
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ExportError::Interrupted);
    }
    let mut to_push: Vec<Tip> = Vec::new();
    for (index, name, id) in candidates {
        match tr.resolve(&id) {
            Ok(git_id) => to_push.push((name, id, git_id)),
            Err(refusal) => skipped.push((index, SkippedRef { name, refusal })),
        }
    }
    skipped.sort_by_key(|(index, _)| *index);
    Ok(Translated {
        distrusted: tr.distrusted.len() as u64,
        done: tr.done,
        to_push,
        skipped: skipped.into_iter().map(|(_, s)| s).collect(),
        sink,
    })
}

/// How the run's pack frames its entries: stored deflate blocks when the
/// pack will be placed in the destination as it is (a plain export to a
/// local bare repository the direct route takes, [`local::probe`]:
/// compressing is most of the work left there); zlib's fastest level when
/// `git push` carries it (a URL, fork mode, or a local repository whose
/// receive-side policy needs a push), since a push sends entries on as they
/// are stored. `push_refs` probes the destination again before writing;
/// should the answer change in between, only the size of the pack does.
fn pack_level(git: &Git, req: &ExportRequest<'_>, destination: &str) -> pack::Level {
    if !req.passthrough && local::probe(git, req.dest, Path::new(destination)).is_ok() {
        pack::Level::Stored
    } else {
        pack::Level::Fast
    }
}

/// The heads that get a `git-bridge/v1` attestation: every pushed head in
/// plain export; in fork mode only those this bridge translated (a head
/// whose raw git bytes the import retained passed through, and its
/// provenance is the import's git-import/v1 claim, §11).
fn attestable(state_dir: &Path, fork: bool, to_push: &[Tip]) -> Result<Vec<Tip>, ExportError> {
    let mut heads = Vec::with_capacity(to_push.len());
    for tip in to_push {
        if fork && state::has_raw(state_dir, &tip.2)? {
            continue;
        }
        heads.push(tip.clone());
    }
    Ok(heads)
}

/// The staging ref that holds a pushed ref's value.
fn staging_ref(name: &str, fork: bool) -> String {
    if fork && name != ATTESTATIONS_REF {
        format!("{FORK_STAGING_PREFIX}{name}")
    } else {
        name.to_owned()
    }
}

/// Complete the run's pack and its index, then point the staging refs at
/// the new tips (and the attestations chain at its new commit) in one
/// transaction; the pack's objects are reachable then, so the pack's keep
/// file can go.
fn stage(
    git: &Git,
    staging_path: &Path,
    req: &ExportRequest<'_>,
    sink: Sink,
    to_push: &[Tip],
    minted: Option<&attest::Minted>,
) -> Result<(), ExportError> {
    let keeps = sink.pack.finish(req.interrupt).map_err(|e| {
        // Finishing the pack stops with an error when the flag is set.
        if req.interrupt.load(Ordering::Relaxed) {
            ExportError::Interrupted
        } else {
            e.into()
        }
    })?;
    let mut updates: Vec<(String, Sha1)> = to_push
        .iter()
        .map(|(name, _, sha)| (staging_ref(name, req.passthrough), *sha))
        .collect();
    if let Some(m) = minted {
        updates.push((ATTESTATIONS_REF.to_owned(), m.commit));
    }
    update_staging_refs(git, staging_path, &updates)?;
    for keep in keeps {
        let _ = std::fs::remove_file(keep);
    }
    Ok(())
}

/// Where and how the push goes.
struct PushTarget<'a> {
    git: &'a Git,
    staging: &'a Path,
    destination: &'a str,
    req: &'a ExportRequest<'a>,
}

/// Observe the destination when the mode needs it, plan every ref, refuse
/// the run on any refused ref, then push them all in one atomic push with
/// their leases; or, for a local bare destination that qualifies
/// ([`local::probe`]), place the staging packs there and move the refs in
/// one compare-and-swap transaction under the same leases. The pack is
/// flushed to disk while the push runs (the map must not promise objects
/// that are not durable).
fn push_refs(
    t: &PushTarget<'_>,
    pushes: &[Tip],
    prior: &[RefState],
    outcome: &mut ExportOutcome,
) -> Result<Vec<(String, PushStatus)>, ExportError> {
    let recorded: HashMap<&str, Sha1> = prior.iter().map(|s| (s.name.as_str(), s.git)).collect();
    // A plain export to a local bare repository with no receive-side
    // policy skips `git push` (fork mode always pushes: its staging is the
    // import mirror, whose packs the destination mostly has under other
    // names).
    let direct = if t.req.passthrough {
        None
    } else {
        local::probe(t.git, t.req.dest, Path::new(t.destination)).ok()
    };
    let objects_dir = t.staging.join("objects");
    std::thread::scope(|scope| {
        // The direct route links only packs the writer fsynced (and fsyncs
        // what else it places); a push flushes staging while it runs.
        let sync = scope.spawn(|| match direct {
            Some(_) => Ok(()),
            None => sync_objects(&objects_dir),
        });
        let pushed = (|| {
            let refs = plan_pushes(t, pushes, &recorded, direct.as_ref(), outcome)?;
            // From here on an interrupt waits for the push (a signal sent to
            // this process alone does not reach git), and the run records
            // what landed.
            crate::run::hooks::pause_point("pushing", t.req.interrupt);
            let push_error = |error| {
                if t.req.interrupt.load(Ordering::Relaxed) {
                    ExportError::InterruptedPush {
                        dest: t.req.dest.to_owned(),
                    }
                } else {
                    ExportError::Push {
                        dest: t.req.dest.to_owned(),
                        remote: t.req.remote.to_owned(),
                        error,
                    }
                }
            };
            let Some(dest) = &direct else {
                return t
                    .git
                    .push(t.staging, t.destination, &refs)
                    .map_err(push_error);
            };
            // The direct route: leases first (nothing is written for a
            // stale one), then the objects, then one ref transaction.
            let batch = dest
                .check_refs(t.git, t.staging, &refs)
                .map_err(push_error)?;
            let placed = dest.place(t.staging)?;
            crate::run::import::crash_point("placed");
            dest.commit(t.git, &batch).map_err(push_error)?;
            outcome.local = Some(placed);
            Ok(batch.statuses())
        })();
        let synced = sync.join().unwrap_or_else(|_| {
            Err(ExportError::Io(IoError::new(
                "flush",
                &objects_dir,
                std::io::Error::other("the flushing thread panicked"),
            )))
        });
        let statuses = pushed?;
        synced?;
        Ok(statuses)
    })
}

/// Plan the refs of a push: observe the destination when some ref has no
/// usable record (the direct route reads its refs itself, else `git
/// ls-remote`), decide every ref with [`plan::plan`], stop on the first
/// refused one, and give each ref its source and lease.
fn plan_pushes(
    t: &PushTarget<'_>,
    pushes: &[Tip],
    recorded: &HashMap<&str, Sha1>,
    direct: Option<&local::LocalDest>,
    outcome: &mut ExportOutcome,
) -> Result<Vec<RefPush>, ExportError> {
    let mode = t.req.mode();
    let needs_observation = pushes
        .iter()
        .any(|(name, _, _)| plan::needs_observation(mode, recorded.get(name.as_str()).copied()));
    let observed = if needs_observation {
        // The direct route reads the destination's refs itself.
        let seen = match direct {
            Some(dest) => dest.observe(pushes.iter().map(|(n, _, _)| n.as_str())),
            None => t.git.ls_remote(t.staging, t.destination),
        };
        if seen.is_err() && t.req.interrupt.load(Ordering::Relaxed) {
            return Err(ExportError::Interrupted);
        }
        Some(seen?)
    } else {
        None
    };
    outcome.observed = observed.is_some();
    let inputs: Vec<RefInput> = pushes
        .iter()
        .map(|(name, _, new)| {
            let seen = match &observed {
                None => Observation::Unknown,
                Some(o) => o
                    .get(name)
                    .map_or(Observation::Absent, |v| Observation::At(*v)),
            };
            let rec = if mode == Mode::Fork {
                None
            } else {
                recorded.get(name.as_str()).copied()
            };
            RefInput::new(name, rec, seen, *new)
        })
        .collect();
    let planned = plan::plan(mode, &inputs, |old, new| {
        t.git.is_ancestor(t.staging, old, new)
    })?;
    if let Some((d, refusal)) = planned.refused().next() {
        return Err(refused(t.req, &d.name, refusal));
    }
    let refs: Vec<RefPush> = planned
        .decisions
        .iter()
        .map(|d| RefPush {
            name: d.name.clone(),
            src: staging_ref(&d.name, t.req.passthrough),
            new: d.new,
            lease: match d.outcome {
                Ok(Action::Force) => Lease::Force,
                _ => Lease::Expect(d.expected),
            },
        })
        .collect();
    Ok(refs)
}

/// The run-stopping error for a refused ref.
fn refused(req: &ExportRequest<'_>, name: &str, refusal: PlanRefusal) -> ExportError {
    match refusal {
        PlanRefusal::LeaseMismatch { recorded, observed } => ExportError::LeaseMismatch {
            name: name.to_owned(),
            dest: req.dest.to_owned(),
            remote: req.remote.to_owned(),
            recorded,
            observed,
        },
        PlanRefusal::TagExists { observed } => ExportError::ForkTagExists {
            name: name.to_owned(),
            dest: req.dest.to_owned(),
            observed,
        },
        PlanRefusal::NonFastForward { observed } => ExportError::NotFastForward {
            name: name.to_owned(),
            branch: name.strip_prefix(HEADS_PREFIX).unwrap_or(name).to_owned(),
            dest: req.dest.to_owned(),
            remote: req.remote.to_owned(),
            observed,
        },
    }
}

/// Where and what the record phase writes.
struct Recording<'a> {
    state_dir: &'a Path,
    req: &'a ExportRequest<'a>,
    /// True when the state had no `dest` binding at the start.
    unbound: bool,
    dest_identity: &'a str,
}

/// The push landed: bind the direction and the destination, append the map
/// (the run's new pairs, sorted) and rewrite the ref state, merged over the
/// prior records (refs not pushed this time keep theirs).
fn record(
    r: &Recording<'_>,
    done: &HashMap<Id, Sha1>,
    pushes: &[Tip],
    prior: &[RefState],
) -> Result<(), ExportError> {
    let state_dir = r.state_dir;
    if r.req.passthrough {
        state::bind_direction(state_dir, Direction::Fork)?;
        // Not a binding: the last destination, for status.
        state::write_binding(state_dir, Binding::Dest, r.dest_identity)?;
    } else {
        state::bind_direction(state_dir, Direction::Export)?;
        if r.unbound {
            state::pin_binding(state_dir, Binding::Dest, r.dest_identity)?;
        }
    }
    // The run's new pairs in id order, written from the table itself.
    let mut ids: Vec<&Id> = done.keys().collect();
    ids.sort_unstable();
    let fault = crate::durable::fault::phase("map");
    let pairs = ids.iter().filter_map(|id| done.get_key_value(*id));
    state::append_map_from(state_dir, ids.len(), pairs)?;
    drop(fault);
    let pushed: HashSet<&str> = pushes.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut merged: Vec<RefState> = prior
        .iter()
        .filter(|s| !pushed.contains(s.name.as_str()))
        .cloned()
        .collect();
    merged.extend(pushes.iter().map(|(name, mkit, git)| RefState {
        name: name.clone(),
        mkit: *mkit,
        git: *git,
    }));
    merged.sort_by(|a, b| a.name.cmp(&b.name));
    let _fault = crate::durable::fault::phase("ref-state");
    state::store_ref_state(state_dir, &merged)?;
    Ok(())
}

/// The refs to export: the `--ref`s (de-duplicated, in order), else every
/// branch and then every tag, each sorted by name.
fn select_refs(mkit_dir: &Path, explicit: &[String]) -> Result<Vec<(String, Id)>, ExportError> {
    if explicit.is_empty() {
        let mut out = refs::list_refs(mkit_dir, HEADS_PREFIX)?;
        out.extend(refs::list_refs(mkit_dir, TAGS_PREFIX)?);
        if out.is_empty() {
            return Err(ExportError::NothingToExport);
        }
        return Ok(out);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in explicit {
        if !seen.insert(name.as_str()) {
            continue;
        }
        if !(name.starts_with(HEADS_PREFIX) || name.starts_with(TAGS_PREFIX)) {
            return Err(ExportError::RefArgument { name: name.clone() });
        }
        let id = refs::read_ref(mkit_dir, name)?
            .ok_or_else(|| ExportError::RefNotFound { name: name.clone() })?;
        out.push((name.clone(), id));
    }
    Ok(out)
}

/// Removes, on drop, what a run that bound nothing created.
struct Cleanup {
    state: Option<PathBuf>,
    dest: Option<PathBuf>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.state = None;
        self.dest = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(s) = &self.state {
            let _ = std::fs::remove_dir_all(s);
        }
        if let Some(d) = &self.dest {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Where the push goes.
struct Destination {
    /// The push target: a local destination's absolute path, else the URL.
    target: String,
    /// The directory this run created (to remove if the run fails).
    created: Option<PathBuf>,
}

/// A missing or empty local destination is initialized as a bare
/// repository; an existing repository is used as is; URLs pass through.
fn prepare_destination(
    git: &Git,
    dest: &str,
    initial_branch: Option<&str>,
) -> Result<Destination, ExportError> {
    let kind = remote::url_kind(dest);
    let Some(path) = remote::local_path(dest) else {
        return Ok(Destination {
            target: dest.to_owned(),
            created: None,
        });
    };
    let mut created = None;
    let needs_init = match std::fs::read_dir(&path) {
        Ok(mut entries) => {
            if gix::open(&path).is_ok() {
                false
            } else if entries.next().is_none() {
                true
            } else {
                return Err(ExportError::DestinationNotEmpty { path });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::durable::create_dir_all_durable(&path)?;
            created = Some(path.clone());
            true
        }
        Err(e) => return Err(IoError::new("read destination", &path, e).into()),
    };
    if needs_init {
        git.init_bare(&path, true, initial_branch)?;
    }
    let target = if kind == UrlKind::File {
        dest.to_owned()
    } else {
        std::fs::canonicalize(&path)
            .map_err(|e| IoError::new("resolve destination", &path, e))?
            .to_string_lossy()
            .into_owned()
    };
    Ok(Destination { target, created })
}

/// The staging repository, created (aside, then renamed into place) when it
/// has no `objects` directory. Returns its path and whether it is new.
fn ensure_staging(git: &Git, state_dir: &Path) -> Result<(PathBuf, bool), ExportError> {
    let path = staging::mirror_path(state_dir);
    if path.join("objects").is_dir() {
        remove_pack_leftovers(&path);
        return Ok((path, false));
    }
    let partial = state_dir.join(format!("{}.partial", staging::MIRROR_DIR));
    let _ = std::fs::remove_dir_all(&partial);
    git.init_bare(&partial, false, None)?;
    let _ = std::fs::remove_dir_all(&path);
    std::fs::rename(&partial, &path)
        .map_err(|e| IoError::new("move staging into place", &path, e))?;
    crate::durable::sync_dir(state_dir)?;
    Ok((path, true))
}

/// Remove a pack body left by a run that died before indexing it (we hold
/// the state lock, so no other run is writing one).
fn remove_pack_leftovers(staging: &Path) {
    if let Ok(entries) = std::fs::read_dir(staging) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(pack::BODY_PREFIX)
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Point each staging ref at its new value, in one `update-ref` transaction.
fn update_staging_refs(
    git: &Git,
    staging: &Path,
    refs: &[(String, Sha1)],
) -> Result<(), ExportError> {
    let mut script = String::from("start\n");
    for (name, git_id) in refs {
        script.push_str(&format!("update {name} {}\n", git_id.to_hex()));
    }
    script.push_str("prepare\ncommit\n");
    local::update_ref_stdin(git, staging, &[], &script, |stderr| PushError::Failed {
        action: "update-ref",
        message: stderr.trim().to_owned(),
    })
    .map_err(ExportError::Git)
}

/// Flush staging to disk while a push runs (the run's pack is durable
/// already: its writer fsyncs it). Linux: one `syncfs`; elsewhere nothing.
fn sync_objects(objects_dir: &Path) -> Result<(), ExportError> {
    crate::durable::sync_filesystem(objects_dir)?;
    Ok(())
}

/// What reading one new object gave.
enum Visit {
    /// A blob or chunked blob, translated (and compressed) at once.
    Leaf(Staged),
    /// A tree, commit or tag, waiting for its children.
    Inner(Decoded),
    /// The object cannot be exported.
    Refused(ExportRefusal),
}

/// The decoded trees, commits and tags a run holds at once (counted in
/// test-hooks builds, reported as the probe `export-decoded`): a walk level
/// or a translation read-ahead at most, whatever the history's size.
static DECODED: crate::run::hooks::Gauge = crate::run::hooks::Gauge::new();

/// A decoded tree, commit or tag, counted by [`DECODED`] while it lives.
struct Decoded {
    obj: Box<Object>,
    _held: crate::run::hooks::Held,
}

/// A waiting object read back for its wave: its id and body, or why it
/// cannot be read.
type ReadBack = (Id, Result<Decoded, ExportRefusal>);

impl Decoded {
    fn new(obj: Object) -> Decoded {
        Decoded {
            obj: Box::new(obj),
            _held: DECODED.hold(),
        }
    }
}

/// One object's translation: the git object staged for the pack, or why
/// it cannot be exported.
type Translation = Result<Staged, ExportRefusal>;

struct Translator<'a> {
    store: &'a Store,
    map: &'a BlakeToSha1,
    progress: &'a dyn Progress,
    interrupt: &'a AtomicBool,
    /// Translated in this run.
    done: HashMap<Id, Sha1>,
    /// Refused in this run, with the reason to report.
    refused: HashMap<Id, ExportRefusal>,
    /// Map hits not trusted (staging lacks their git object, or holds it as
    /// another kind): walked and translated again like new objects.
    distrusted: HashSet<Id>,
    /// How the run's pack is deflated.
    level: pack::Level,
    /// Where the pack entries of a batch wait for their turn.
    spill: Spill,
}

/// Where translated objects go: the run's pack in staging, skipping what
/// staging already holds.
struct Sink {
    repo: gix::Repository,
    /// The staging repository, where the run's scratch files go too.
    root: PathBuf,
    pack: PackWriter,
    /// Staging held no object when the run opened it (a fresh staging
    /// repository): nothing to look up before appending.
    empty: bool,
}

impl Sink {
    fn open(staging: &Path) -> Result<Sink, ExportError> {
        let mut repo = gix::open(staging).map_err(|source| ExportError::Staging {
            path: staging.to_path_buf(),
            source,
        })?;
        // Most lookups miss (new objects); never rescan the pack directory.
        repo.objects.refresh_never();
        let objects = staging.join("objects");
        Ok(Sink {
            empty: pack::holds_no_objects(&objects),
            pack: PackWriter::new(&objects),
            root: staging.to_path_buf(),
            repo,
        })
    }

    /// Append a batch's new objects in id order (the order, and so the
    /// pack, does not depend on the thread count).
    fn absorb(&mut self, mut entries: Vec<PackEntry>) -> Result<(), ExportError> {
        entries.sort_by_key(|e| e.id);
        for e in &entries {
            if self.empty || !source::contains(&self.repo, &e.id) {
                self.pack.append(e)?;
            }
        }
        Ok(())
    }

    /// [`Sink::absorb`] for entries staged in `spill`: each one settled
    /// there as it is appended (or found in staging already).
    fn absorb_staged(
        &mut self,
        mut entries: Vec<Staged>,
        spill: &Spill,
    ) -> Result<(), ExportError> {
        entries.sort_by_key(Staged::id);
        for e in entries {
            if self.empty || !source::contains(&self.repo, &e.id()) {
                match &e {
                    Staged::Held(entry) => self.pack.append(entry)?,
                    Staged::Spilled(s) => self.pack.append_spilled(s, spill)?,
                };
            }
            spill.settle(&e);
        }
        Ok(())
    }
}

/// Objects per parallel batch: enough to keep every worker busy, few enough
/// that a batch's compressed objects fit comfortably in memory.
const CHUNK: usize = 512;

/// Walk levels and translation waves smaller than this are read and
/// translated on the calling thread.
const INLINE_WAVE: usize = 16;

/// Trees, commits and tags read again per parallel batch, ahead of their
/// waves: at most this many are held decoded at once in the translation.
const READ_AHEAD: usize = 64;

impl Translator<'_> {
    /// The git id the map gives `id`, unless this run distrusted that entry.
    fn mapped(&self, id: &Id) -> Option<Sha1> {
        self.map
            .get(id)
            .filter(|_| !self.distrusted.contains(id))
            .copied()
    }

    /// Read an object from the store. A missing or undecodable object is a
    /// refusal (it skips the refs that need it); an I/O failure or a file
    /// holding another object is fatal.
    fn read(&self, id: &Id) -> Result<Result<Object, ExportRefusal>, ExportError> {
        match self.store.read(id) {
            Ok(obj) => Ok(Ok(obj)),
            Err(StoreError::NotFound(_)) => Ok(Err(ExportRefusal::MissingObject { object: *id })),
            Err(StoreError::Corrupt { source, .. }) => {
                Ok(Err(ExportRefusal::from_decode_error(id, source)))
            }
            Err(StoreError::DeltaNotStorable) => Ok(Err(ExportRefusal::Delta { object: *id })),
            Err(e) => Err(e.into()),
        }
    }

    /// Read one new object; translate and compress it when it is a leaf.
    fn visit(&self, id: &Id) -> Result<Visit, ExportError> {
        let obj = match self.read(id)? {
            Ok(obj) => obj,
            Err(refusal) => return Ok(Visit::Refused(refusal)),
        };
        let exported = match obj {
            Object::Blob(b) => export_blob(id, b.data),
            Object::ChunkedBlob(m) => match self.flatten(id, &m)? {
                Ok(body) => export_flattened(id, &m, body),
                Err(refusal) => Err(refusal),
            },
            obj => {
                // A remix or delta refuses here.
                return Ok(match dependencies(id, &obj) {
                    Ok(_) => Visit::Inner(Decoded::new(obj)),
                    Err(refusal) => Visit::Refused(refusal),
                });
            }
        };
        Ok(match exported {
            Ok(ex) => Visit::Leaf(self.stage(ex)?),
            Err(refusal) => Visit::Refused(refusal),
        })
    }

    /// A manifest's content: checked first, then its chunks read in order
    /// and concatenated, stopping as soon as they exceed the declared size.
    fn flatten(
        &self,
        id: &Id,
        m: &crate::mkit::object::ChunkedBlob,
    ) -> Result<Result<Vec<u8>, ExportRefusal>, ExportError> {
        if let Err(refusal) = check_manifest(id, m) {
            return Ok(Err(refusal));
        }
        let cap = m
            .total_size
            .min(crate::mkit::object::MAX_OBJECT_SIZE as u64);
        let mut body = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
        for chunk in &m.chunks {
            let data = match self.read(chunk)? {
                Ok(Object::Blob(b)) => b.data,
                Ok(other) => {
                    return Ok(Err(ExportRefusal::ChunkNotBlob {
                        object: *chunk,
                        manifest: *id,
                        found: other.object_type(),
                    }));
                }
                Err(refusal) => return Ok(Err(refusal)),
            };
            let actual = body.len() as u64 + data.len() as u64;
            if actual > m.total_size {
                return Ok(Err(ExportRefusal::ChunkedSizeMismatch {
                    object: *id,
                    declared: m.total_size,
                    actual,
                }));
            }
            body.extend_from_slice(&data);
        }
        Ok(Ok(body))
    }

    /// The pack entry of `ex`, deflated at the run's level and staged.
    fn stage(&self, ex: crate::bridge::export::Exported) -> Result<Staged, ExportError> {
        let entry = pack::entry(self.level, ex.id, ex.object.kind, ex.object.body)?;
        Ok(self.spill.stage(entry)?)
    }

    /// Translate the waiting objects wave by wave ([`walk::Graph::waves`]),
    /// each wave in chunks of [`CHUNK`] appended in id order. Their bodies
    /// are read back from the walk's shelf, [`READ_AHEAD`] at a time in
    /// parallel, ahead of the waves (most waves of a long history are a commit or two:
    /// read one by one, they would leave the other workers idle), and
    /// translated as they come, so the run holds a read-ahead of decoded
    /// objects, never a wave or the history.
    fn translate(&mut self, mut graph: walk::Graph, sink: &mut Sink) -> Result<(), ExportError> {
        let waves = graph.waves();
        self.progress.phase("translating", graph.len() as u64);
        let mut ahead = waves.iter().flatten().copied();
        let mut read: std::collections::VecDeque<ReadBack> = std::collections::VecDeque::new();
        for unit in waves.iter().flat_map(|w| w.chunks(CHUNK)) {
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(ExportError::Interrupted);
            }
            let mut entries = Vec::with_capacity(unit.len());
            let mut left = unit.len();
            while left > 0 {
                if read.is_empty() {
                    let places: Vec<u32> = ahead.by_ref().take(READ_AHEAD).collect();
                    read.extend(self.read_again(&graph, &places)?);
                }
                let take = left.min(read.len());
                if take == 0 {
                    break;
                }
                let items: Vec<ReadBack> = read.drain(..take).collect();
                entries.extend(self.translate_items(items)?);
                left -= take;
            }
            sink.absorb_staged(entries, &self.spill)?;
        }
        Ok(())
    }

    /// The bodies of the waiting objects at `places`, from the shelf (or,
    /// for one that is not there, the store), in parallel unless they are
    /// few.
    fn read_again(
        &self,
        graph: &walk::Graph,
        places: &[u32],
    ) -> Result<Vec<ReadBack>, ExportError> {
        let one = |&at: &u32| {
            let id = graph.inner[at as usize];
            let shelved = match &graph.shelf {
                Some(shelf) => shelf.take(at as usize)?,
                None => None,
            };
            let obj = match shelved {
                Some(obj) => Ok(obj),
                None => self.read(&id)?,
            };
            Ok((id, obj.map(Decoded::new)))
        };
        if places.len() < INLINE_WAVE {
            places.iter().map(one).collect()
        } else {
            places.par_iter().map(one).collect()
        }
    }

    /// Translate objects of one wave; returns their staged entries.
    fn translate_items(&mut self, items: Vec<ReadBack>) -> Result<Vec<Staged>, ExportError> {
        let this = &*self;
        let one = |(id, decoded): ReadBack| {
            let r = match decoded {
                Ok(d) => this.translate_one(&id, *d.obj),
                Err(refusal) => Ok(Err(refusal)),
            };
            this.progress.advance(1, 0);
            (id, r)
        };
        // Most waves of a long history are a commit or two: waking the
        // pool for them costs more than translating them.
        let results: Vec<(Id, Result<Translation, ExportError>)> = if items.len() < INLINE_WAVE {
            items.into_iter().map(one).collect()
        } else {
            items.into_par_iter().map(one).collect()
        };
        let mut entries = Vec::new();
        for (id, r) in results {
            match r? {
                Ok(entry) => {
                    self.done.insert(id, entry.id());
                    entries.push(entry);
                }
                Err(refusal) => {
                    self.refused.insert(id, refusal);
                }
            }
        }
        Ok(entries)
    }

    fn translate_one(&self, id: &Id, obj: Object) -> Result<Translation, ExportError> {
        let deps = match dependencies(id, &obj) {
            Ok(deps) => deps,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // A refused child refuses the object with the child's own reason.
        if let Some(refusal) = deps.iter().find_map(|d| self.refused.get(d)) {
            return Ok(Err(refusal.clone()));
        }
        let lookup = |c: &Id| self.done.get(c).copied().or_else(|| self.mapped(c));
        match export_object(id, obj, lookup, |_| None) {
            Ok(ex) => Ok(Ok(self.stage(ex)?)),
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// The git id a ref tip translates to, or why it cannot be exported.
    fn resolve(&self, tip: &Id) -> Result<Sha1, ExportRefusal> {
        if let Some(sha) = self.done.get(tip).copied().or_else(|| self.mapped(tip)) {
            return Ok(sha);
        }
        Err(self
            .refused
            .get(tip)
            .cloned()
            .unwrap_or(ExportRefusal::MissingObject { object: *tip }))
    }
}

/// The children of a tree, commit or tag, each with the kind of git object
/// its referrer says it translates to: a blob for content (a tree entry that
/// is not a directory, a tag's blob or chunked-blob target; these are the
/// walk's leaves), a tree, a commit or a tag; `None` when the referrer does
/// not say (a tag of a remix or delta, refused later).
fn children(obj: &Object) -> Vec<(Id, Option<ObjectKind>)> {
    use ObjectKind as Kind;
    match obj {
        Object::Tree(t) => t
            .entries
            .iter()
            .map(|e| {
                let kind = if e.mode == EntryMode::Tree {
                    Kind::Tree
                } else {
                    Kind::Blob
                };
                (e.id, Some(kind))
            })
            .collect(),
        Object::Commit(c) => std::iter::once((c.tree, Some(Kind::Tree)))
            .chain(c.parents.iter().map(|p| (*p, Some(Kind::Commit))))
            .collect(),
        Object::Tag(t) => {
            let kind = match t.target_type {
                ObjectType::Blob | ObjectType::ChunkedBlob => Some(Kind::Blob),
                ObjectType::Tree => Some(Kind::Tree),
                ObjectType::Commit => Some(Kind::Commit),
                ObjectType::Tag => Some(Kind::Tag),
                ObjectType::Remix | ObjectType::Delta => None,
            };
            vec![(t.target, kind)]
        }
        _ => Vec::new(),
    }
}
