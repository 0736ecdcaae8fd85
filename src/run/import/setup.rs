//! The steps an import and its dry run share, before anything is written
//! on the mkit side: start the worker pool (first: every parallel step of
//! the run uses it, so `--jobs` bounds the whole run), check the state's
//! bindings, fetch the upstream into the staging mirror, read the recorded
//! ref state and map, judge the map, open the mirror and run the divergence
//! probe ([`prepare`]); then map the upstream refs and walk their closures
//! until the walk agrees with the store ([`walk`]).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::bridge::import::{self as rules, ImportOptions, RefMapping};
use crate::bridge::refusal::{Refusal, Refusals};
use crate::git::Sha1;
use crate::git::staging::{self, FetchOutcome, StagingError, UpstreamRef};
use crate::mkit::repo::Repo;
use crate::state::{self, Direction, RefState, StateError, StateLock};

use super::{
    ImportError, ImportRequest, Laps, MapVerdict, Run, check_bindings, crash_point,
    divergence_probe, map_verdict,
};

/// Which run is preparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// The import itself: sweeps debris after taking the lock, stops at the
    /// `fetched` crash and pause points, keeps the lock.
    Real,
    /// `--dry-run`: releases the lock once the recorded state is read.
    Dry,
}

/// What a run holds once the upstream is fetched and the recorded state
/// read.
pub(super) struct Prepared {
    /// `.mkit/git/<remote>`.
    pub state_dir: PathBuf,
    /// The upstream's canonical identity.
    pub identity: String,
    /// The state lock (released already by a dry run).
    pub _lock: Option<StateLock>,
    /// Temp files of killed runs removed after taking the lock.
    pub swept: u64,
    /// The direction recorded before this run.
    pub direction: Option<Direction>,
    /// The crash marker was set when this run started.
    pub interrupted_before: bool,
    /// The fetch.
    pub fetched: FetchOutcome,
    /// The previous import's ref state, by upstream name.
    pub previous: HashMap<String, RefState>,
    /// The map to walk with: empty unless `verdict` trusts it.
    pub map: state::Sha1ToBlake,
    /// What was thought of the recorded map.
    pub verdict: MapVerdict,
    /// The run's workers.
    pub pool: rayon::ThreadPool,
    /// The staging mirror.
    pub mirror: gix::ThreadSafeRepository,
    /// Phase timings so far.
    pub laps: Laps,
    /// What the walk made of the refusal cache (set once, by [`walk`]).
    pub cache: std::sync::OnceLock<super::cache::Reuse>,
    /// The test-hooks thread count of the run (nothing otherwise).
    pub _threads: crate::run::hooks::ThreadProbe,
}

/// Check, fetch and read, as described in the module documentation.
pub(super) fn prepare(
    repo: &Repo,
    req: &ImportRequest<'_>,
    pass: Pass,
) -> Result<Prepared, ImportError> {
    let threads = crate::run::hooks::ThreadProbe::start("threads");
    let mkit_dir = repo.mkit_dir();
    let state_dir = state::state_dir(mkit_dir, req.remote)?;
    // The run's workers first: every parallel step of the run (the sweep,
    // the map load, the walk, the translation) runs on them and on nothing
    // else, so `--jobs` bounds the whole run.
    let pool = worker_pool(req.jobs)?;
    let lock = state::lock_state_default(mkit_dir, req.remote)?;
    let swept = match pass {
        Pass::Real => pool.install(|| crate::run::sweep::after_lock(mkit_dir, &state_dir)),
        Pass::Dry => 0,
    };
    let identity = crate::git::remote::remote_identity(req.url);
    // Bindings: refuse before touching anything.
    let direction = check_bindings(mkit_dir, &state_dir, req, &identity)?;
    crate::durable::create_dir_all_durable(&state_dir).map_err(StateError::from)?;
    // A marker left by an earlier run means its map may vouch for torn objects.
    let interrupted_before = state::importing_is_set(&state_dir)?;

    let mut laps = Laps::default();
    let jobs = Some(pool.current_num_threads());
    let fetched = match staging::fetch_with_threads(&state_dir, req.url, req.interrupt, jobs) {
        Err(StagingError::Interrupted { .. }) => return Err(ImportError::Interrupted),
        other => other?,
    };
    if pass == Pass::Real {
        crash_point("fetched");
        crate::run::hooks::pause_point("fetched", req.interrupt);
        laps.lap("fetch");
    }
    let previous: HashMap<String, RefState> = state::load_import_ref_state(&state_dir)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let (map, intact) = pool.install(|| state::load_map_inverse_checked(&state_dir))?;
    // A dry run reads nothing more under the lock: the rest reads only
    // objects, which are never rewritten.
    let lock = match pass {
        Pass::Real => Some(lock),
        Pass::Dry => None,
    };
    let verdict = map_verdict(interrupted_before, intact, &map, previous.values());
    let map = match verdict {
        MapVerdict::Trusted => map,
        _ => state::Sha1ToBlake::new(),
    };
    let mirror = super::open_mirror(&state_dir)?;
    // First contact (or a rebuild): is this upstream's content already in
    // the store under another key? Read-only, so it runs before the marker.
    if map.is_empty() {
        divergence_probe(repo, &mirror, &fetched.refs, &req.key.public())?;
    }
    Ok(Prepared {
        state_dir,
        identity,
        _lock: lock,
        swept,
        direction,
        interrupted_before,
        fetched,
        previous,
        map,
        verdict,
        pool,
        mirror,
        laps,
        cache: std::sync::OnceLock::new(),
        _threads: threads,
    })
}

/// The run's worker pool. By default two workers per core, so a worker
/// waiting on the filesystem leaves its core to another (10-20% faster than
/// one per core on ripgrep when the store flushed per object; no worse
/// since the store's background checkpoints). Its threads are named
/// `import-<i>`.
fn worker_pool(requested: usize) -> Result<rayon::ThreadPool, ImportError> {
    let jobs = if requested == 0 {
        2 * std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        requested
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("import-{i}"))
        .build()
        .map_err(|source| ImportError::Threads {
            jobs: requested,
            source,
        })
}

impl Prepared {
    /// A translation run over the prepared mirror and map.
    pub(super) fn run<'a>(&'a self, repo: &'a Repo, req: &'a ImportRequest<'_>) -> Run<'a> {
        Run {
            mirror: &self.mirror,
            store: repo.store(),
            map: &self.map,
            key: req.key,
            options: ImportOptions {
                fork_mode: self.direction == Some(Direction::Fork),
            },
            progress: req.progress,
            memo: HashMap::new(),
            refusals: Refusals::new(),
            normalized: false,
            new_objects: Vec::new(),
            laps: Laps::default(),
        }
    }
}

/// An upstream ref with where it lands, or why its name is refused.
pub(super) type Mapped = (UpstreamRef, Result<RefMapping, Refusal>);

/// Map the upstream refs for state `remote`, in upstream order; refs
/// outside heads and tags are left out, bad names refused up front.
pub(super) fn map_upstream(remote: &str, refs: &[UpstreamRef]) -> Vec<Mapped> {
    refs.iter()
        .filter_map(|r| match rules::map_ref(remote, r.name.as_bytes()) {
            Ok(Some(m)) => Some((r.clone(), Ok(m))),
            Ok(None) => None,
            Err(refusal) => Some((r.clone(), Err(refusal))),
        })
        .collect()
}

/// Walk the closures of the mapped refs. Refused tips the refusal cache
/// answers ([`super::cache::plan`]) are not walked: their refusals are given
/// to `run` as the walk would have found them. A map hit naming an object
/// the store lacks (or holds as another type) means the map cannot be
/// trusted as a whole: a walk that skipped cached tips first walks again
/// without skipping (so the note names what a walk of every tip meets
/// first); then the walk starts again with `empty` as the map, and the
/// disagreement's note is added to `notes`. The walk with no map cannot
/// disagree. Returns the graph and whether the map was dropped.
pub(super) fn walk<'a>(
    p: &Prepared,
    run: &mut Run<'a>,
    mapped: &[Mapped],
    empty: &'a state::Sha1ToBlake,
    notes: &mut Vec<String>,
) -> Result<(super::Work, bool), ImportError> {
    let mut reuse = super::cache::plan(p, mapped);
    let mut dropped = false;
    loop {
        let tips: Vec<Sha1> = mapped
            .iter()
            .filter(|(r, m)| m.is_ok() && !reuse.answered.contains_key(&r.target))
            .map(|(r, _)| r.target)
            .collect();
        match p.pool.install(|| run.walk(&tips))? {
            Ok(graph) => {
                for (tip, refusal) in &reuse.answered {
                    run.refusals.insert_if_absent(*tip, refusal);
                }
                crate::run::hooks::probe("refusal-cache", || {
                    format!("answered {}", reuse.answered.len())
                });
                // Only this function sets it, once per run.
                let _ = p.cache.set(reuse);
                return Ok((graph, dropped));
            }
            Err(_) if !reuse.answered.is_empty() => {
                reuse.answered.clear();
                run.refusals.clear();
            }
            Err(disagreement) => {
                notes.push(disagreement.note());
                dropped = true;
                run.map = empty;
                run.refusals.clear();
            }
        }
    }
}
