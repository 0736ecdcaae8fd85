//! The export driver: mkit history → a git mirror (SPEC-GIT-BRIDGE §12).
//!
//! One run, under the state lock, in this order:
//!
//! 1. select the refs (every branch and tag, or `--ref`s) and refuse the
//!    run early, with no side effect, on a bad destination, a destination
//!    that is a recorded import source in any state (the origin guard,
//!    §14.2), a state bound to another direction or another destination;
//! 2. prepare the destination (a missing or empty local path is
//!    `git init --bare`ed) and the bare staging repository
//!    `.mkit/git/<remote>/repo.git` (a fresh one discards the map, whose
//!    ids it would not hold);
//! 3. translate the union of the refs' closures that the map does not know,
//!    in parallel: a breadth-first walk reads the new trees, commits and
//!    tags level by level, then reads, translates and compresses every new
//!    blob and chunked blob in one parallel pass; trees, commits and tags
//!    follow in waves where every object's children are in earlier waves.
//!    Each git object is named by our collision-detecting SHA-1 and, unless
//!    staging already has it, appended to one pack for the run, which gix
//!    indexes (hashing every object itself) and which must hold exactly our
//!    ids ([`pack`]). A refused object refuses every ref whose closure holds
//!    it, with its own reason; the other refs go on;
//! 4. point the staging refs at the new tips and run ONE
//!    `git push --atomic` with a lease per ref: the recorded ref state, else
//!    the value `git ls-remote` observes (absent: must not exist); `--force`
//!    drops the leases. Refs are only added or moved, never deleted. The
//!    pack is flushed to disk (`syncfs`) while the push runs;
//! 5. only once the push has landed (and the pack is durable): bind the
//!    direction and (first time) the destination, append the map, and
//!    rewrite the ref state merged over the prior records.
//!
//! A failure before the push leaves the mirror and the state as they were
//! (objects written to staging are harmless: content-addressed and
//! unreferenced). A state directory that had no destination binding when
//! the run started is removed on failure, so a typo does not burn the
//! name; a destination directory this run created is removed too.
//!
//! Output is identical for any number of jobs: ids are content-addressed,
//! refusals are chosen by a fixed rule (an object takes the refusal of its
//! first refused child, in the object's own child order) and every list
//! written is sorted. Attestations (§11) are not minted yet: the run behaves
//! as the reference's `mkit git export --no-attest` and never pushes
//! `refs/mkit/attestations`.

pub mod pack;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::bridge::export::{
    ExportRefusal, check_manifest, dependencies, export_blob, export_flattened, export_object,
    export_ref,
};
use crate::durable::IoError;
use crate::git::remote::{self, RemoteError, UrlKind};
use crate::git::sha1::Sha1;
use crate::git::staging;
use crate::mkit::id::Id;
use crate::mkit::object::{EntryMode, Object, ObjectType};
use crate::mkit::refs::{self, HEADS_PREFIX, Head, RefError, TAGS_PREFIX};
use crate::mkit::repo::Repo;
use crate::mkit::store::{Store, StoreError};
use crate::state::{self, Binding, BlakeToSha1, Direction, RefState, StateError};

use crate::git::push::{Git, Lease, PushError, PushStatus, RefPush};
pub use crate::run::progress::{NoProgress, Progress};
use pack::{PackEntry, PackError, PackWriter};

/// The state name `export` uses when none is given (the reference's).
pub const DEFAULT_REMOTE: &str = "mirror";

/// What to export and where.
pub struct ExportRequest<'a> {
    /// The destination: a local path or a git URL.
    pub dest: &'a str,
    /// The state name (`mirror` by default).
    pub remote: &'a str,
    /// Full ref names to export (`refs/heads/*` or `refs/tags/*`); empty
    /// means every branch and tag.
    pub refs: &'a [String],
    /// Push without leases: every ref is moved whatever the mirror holds.
    pub force: bool,
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
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

/// One ref that was pushed (or found already in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedRef {
    /// Full ref name, the same on both sides.
    pub name: String,
    /// The mkit id it names.
    pub mkit: Id,
    /// Its translation.
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

/// What an export did.
#[derive(Debug, Default)]
pub struct ExportOutcome {
    /// Refs pushed or already in place, in selection order (branches, then
    /// tags, each sorted by name; or the `--ref` order).
    pub exported: Vec<ExportedRef>,
    /// Refs skipped, in selection order.
    pub skipped: Vec<SkippedRef>,
    /// mkit objects translated in this run.
    pub translated: u64,
    /// Git objects newly written to the staging repository.
    pub written: u64,
    /// What the push went to (a local destination as an absolute path).
    pub destination: String,
    /// True when this run created the destination repository.
    pub created_destination: bool,
    /// True when `git ls-remote` was run to seed leases.
    pub observed: bool,
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
         Export to a separate mirror, or use fork mode through that state \
         (`mkit git export --passthrough --remote-name {state}`)"
    )]
    OriginGuard {
        /// The destination as given.
        dest: String,
        /// The state that imports from it.
        state: String,
    },
    /// The state is bound to another direction.
    #[error(
        "state '{remote}' is bound to direction '{direction}'; 'export' is not allowed there \
         (one direction per state directory: choose another --remote-name)"
    )]
    WrongDirection {
        /// The state.
        remote: String,
        /// Its direction.
        direction: &'static str,
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
    /// A filesystem operation on the destination or staging failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Running git failed (init, ls-remote) or git is missing.
    #[error(transparent)]
    Git(PushError),
    /// The push did not land.
    #[error("push to {dest}: {error}{}", if error.is_lease_failure() {
        format!(
            "; nothing was pushed and the state is unchanged. The mirror moved since it was \
             last seen: if that change is expected, remove .mkit/git/{remote}/refs to reseed \
             the leases from the mirror (or use --force), and export again"
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
    #[error("cannot open the staging repository {}: {message}", path.display())]
    Staging {
        /// The staging repository.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The run's pack could not be written into staging, or gix's index of
    /// it disagrees with our ids.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// The worker pool could not start.
    #[error("cannot start {jobs} worker threads: {message}")]
    Threads {
        /// Requested jobs.
        jobs: usize,
        /// Why.
        message: String,
    },
    /// The run was interrupted before the push.
    #[error("interrupted before the push; the mirror and the state are unchanged")]
    Interrupted,
}

impl From<PushError> for ExportError {
    fn from(e: PushError) -> Self {
        ExportError::Git(e)
    }
}

/// Export `req.refs` (or every branch and tag) of `repo` to `req.dest`
/// under state `req.remote`.
pub fn export(repo: &Repo, req: &ExportRequest<'_>) -> Result<ExportOutcome, ExportError> {
    remote::check_url(req.dest)?;
    let mkit_dir = repo.mkit_dir();
    let state_dir = state::state_dir(mkit_dir, req.remote)?;
    let selection = select_refs(mkit_dir, req.refs)?;
    let _lock = state::lock_state_default(mkit_dir, req.remote)?;
    let git = Git::new()?;

    let mut clock = Instant::now();
    let mut timings: Vec<(&'static str, Duration)> = Vec::new();
    let mut lap = |name: &'static str| {
        timings.push((name, clock.elapsed()));
        clock = Instant::now();
    };

    // Origin guard first: a refusal has no side effect.
    let guard_identity = remote::remote_identity(req.dest);
    if let Some(other) = state::state_with_source(mkit_dir, &guard_identity, None)? {
        return Err(ExportError::OriginGuard {
            dest: req.dest.to_owned(),
            state: other,
        });
    }
    match state::read_direction(&state_dir)? {
        None | Some(Direction::Export) => {}
        Some(other) => {
            return Err(ExportError::WrongDirection {
                remote: req.remote.to_owned(),
                direction: other.as_str(),
            });
        }
    }
    let recorded_dest = state::read_binding(&state_dir, Binding::Dest)?;

    // Nothing bound yet: a failure removes what this run made.
    let mut cleanup = Cleanup {
        state: recorded_dest.is_none().then(|| state_dir.clone()),
        dest: None,
    };
    let initial_branch = match refs::read_head(mkit_dir) {
        Ok(Some(Head::Symbolic(name))) if matches!(export_ref(&name), Ok(Some(_))) => {
            name.strip_prefix(HEADS_PREFIX).map(str::to_owned)
        }
        _ => None,
    };
    let destination = prepare_destination(&git, req.dest, initial_branch.as_deref())?;
    cleanup.dest = destination.created.clone();
    // After preparing: a fresh local mirror resolves only once it exists.
    let bound_identity = remote::remote_identity(req.dest);
    if let Some(bound) = &recorded_dest
        && *bound != bound_identity
    {
        return Err(ExportError::DestinationMismatch {
            remote: req.remote.to_owned(),
            bound: bound.clone(),
            dest: req.dest.to_owned(),
        });
    }

    // The plan: refs git cannot name are skipped before any work.
    let mut outcome = ExportOutcome {
        destination: destination.target.clone(),
        created_destination: destination.created.is_some(),
        ..ExportOutcome::default()
    };
    let mut candidates: Vec<(usize, String, Id)> = Vec::new();
    let mut skipped: Vec<(usize, SkippedRef)> = Vec::new();
    for (index, (name, id)) in selection.into_iter().enumerate() {
        match export_ref(&name) {
            Ok(Some(_)) => candidates.push((index, name, id)),
            Ok(None) => {}
            Err(refusal) => skipped.push((index, SkippedRef { name, refusal })),
        }
    }

    crate::durable::create_dir_all_durable(&state_dir)?;
    let (staging_path, fresh_staging) = ensure_staging(&git, &state_dir)?;
    let map = if fresh_staging {
        state::discard_map(&state_dir)?;
        BlakeToSha1::new()
    } else {
        state::load_map(&state_dir)?
    };
    let prior = state::load_ref_state(&state_dir)?;
    lap("prepare");

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(req.jobs)
        .build()
        .map_err(|e| ExportError::Threads {
            jobs: req.jobs,
            message: e.to_string(),
        })?;
    let objects_dir = staging_path.join("objects");
    let mut sink = Sink::open(&staging_path)?;
    let mut tr = Translator {
        store: repo.store(),
        map: &map,
        progress: req.progress,
        interrupt: req.interrupt,
        done: HashMap::new(),
        refused: HashMap::new(),
    };
    let tips: Vec<Id> = candidates.iter().map(|(_, _, id)| *id).collect();
    let inner = pool.install(|| tr.walk(&tips, &mut sink))?;
    lap("walk");
    pool.install(|| tr.translate(inner, &mut sink))?;
    lap("translate");
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ExportError::Interrupted);
    }
    outcome.written = sink.pack.len() as u64;
    let keep = sink.pack.finish(req.interrupt)?;
    lap("pack");

    let mut to_push: Vec<(String, Id, Sha1)> = Vec::new();
    for (index, name, id) in candidates {
        match tr.resolve(&id) {
            Ok(git_id) => to_push.push((name, id, git_id)),
            Err(refusal) => skipped.push((index, SkippedRef { name, refusal })),
        }
    }
    outcome.translated = tr.done.len() as u64;
    skipped.sort_by_key(|(index, _)| *index);
    outcome.skipped = skipped.into_iter().map(|(_, s)| s).collect();
    if to_push.is_empty() {
        // Every ref was refused: nothing to push, nothing recorded.
        outcome.timings = timings;
        return Ok(outcome);
    }

    // Staging refs name the new tips (the push's sources); the pack is
    // reachable now, so gix's keep file can go.
    update_staging_refs(&git, &staging_path, &to_push)?;
    if let Some(keep) = keep {
        let _ = std::fs::remove_file(keep);
    }
    lap("stage");

    let recorded: HashMap<&str, &RefState> = prior.iter().map(|s| (s.name.as_str(), s)).collect();
    let needs_observation = !req.force
        && to_push
            .iter()
            .any(|(name, _, _)| !recorded.contains_key(name.as_str()));
    // The objects must be durable before the map promises them to later
    // runs, not before the push: flush them while the push runs.
    let (pushed, synced) = std::thread::scope(|scope| {
        let sync = scope.spawn(|| sync_objects(&objects_dir));
        let pushed = (|| {
            let observed = if needs_observation {
                git.ls_remote(&staging_path, &destination.target)?
            } else {
                HashMap::new()
            };
            let pushes: Vec<RefPush> = to_push
                .iter()
                .map(|(name, _, new)| RefPush {
                    name: name.clone(),
                    new: *new,
                    lease: if req.force {
                        Lease::Force
                    } else {
                        Lease::Expect(
                            recorded
                                .get(name.as_str())
                                .map(|s| s.git)
                                .or_else(|| observed.get(name).copied()),
                        )
                    },
                })
                .collect();
            git.push(&staging_path, &destination.target, &pushes)
                .map_err(|error| ExportError::Push {
                    dest: req.dest.to_owned(),
                    remote: req.remote.to_owned(),
                    error,
                })
        })();
        let synced = sync.join().unwrap_or_else(|_| {
            Err(ExportError::Io(IoError::new(
                "flush",
                &objects_dir,
                std::io::Error::other("the flushing thread panicked"),
            )))
        });
        (pushed, synced)
    });
    outcome.observed = needs_observation;
    let statuses = pushed?;
    synced?;
    lap("push");

    // The push landed: record.
    if state::read_direction(&state_dir)?.is_none() {
        state::bind_direction(&state_dir, Direction::Export)?;
    }
    if recorded_dest.is_none() {
        state::pin_binding(&state_dir, Binding::Dest, &bound_identity)?;
    }
    cleanup.disarm();
    let mut pairs: Vec<(Id, Sha1)> = tr.done.iter().map(|(k, v)| (*k, *v)).collect();
    pairs.sort();
    state::append_map(&state_dir, &pairs)?;
    let pushed: HashSet<&str> = to_push.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut merged: Vec<RefState> = prior
        .iter()
        .filter(|s| !pushed.contains(s.name.as_str()))
        .cloned()
        .collect();
    merged.extend(to_push.iter().map(|(name, mkit, git)| RefState {
        name: name.clone(),
        mkit: *mkit,
        git: *git,
    }));
    merged.sort_by(|a, b| a.name.cmp(&b.name));
    state::store_ref_state(&state_dir, &merged)?;
    lap("state");

    let status_of: HashMap<String, PushStatus> = statuses.into_iter().collect();
    outcome.exported = to_push
        .into_iter()
        .map(|(name, mkit, git)| ExportedRef {
            status: status_of
                .get(&name)
                .copied()
                .unwrap_or(PushStatus::FastForward),
            name,
            mkit,
            git,
        })
        .collect();
    outcome.timings = timings;
    Ok(outcome)
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
        // A pack body left by a run that died before indexing it (we hold
        // the state lock, so no other run is writing one).
        if let Ok(entries) = std::fs::read_dir(&path) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(pack::BODY_PREFIX)
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
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

/// Point each staging ref at its new tip, in one `update-ref` transaction.
fn update_staging_refs(
    git: &Git,
    staging: &Path,
    refs: &[(String, Id, Sha1)],
) -> Result<(), ExportError> {
    use std::io::Write;
    let mut c = git.command(Some(staging));
    c.args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| ExportError::Git(PushError::Spawn(e)))?;
    let mut script = String::from("start\n");
    for (name, _, git_id) in refs {
        script.push_str(&format!("update {name} {}\n", git_id.to_hex()));
    }
    script.push_str("prepare\ncommit\n");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| ExportError::Git(PushError::Spawn(e)))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ExportError::Git(PushError::Spawn(e)))?;
    if !out.status.success() {
        return Err(ExportError::Git(PushError::Failed {
            action: "update-ref",
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }));
    }
    Ok(())
}

/// Make the pack just written durable before anything records its objects.
/// Linux: one `syncfs`; elsewhere the pack stays as durable as gix leaves it.
fn sync_objects(objects_dir: &Path) -> Result<(), ExportError> {
    #[cfg(target_os = "linux")]
    {
        let dir = std::fs::File::open(objects_dir)
            .map_err(|e| IoError::new("open staging objects", objects_dir, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| IoError::new("syncfs", objects_dir, e.into()))?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = objects_dir;
    Ok(())
}

/// What reading one new object gave.
enum Visit {
    /// A blob or chunked blob, translated (and compressed) at once.
    Leaf(PackEntry),
    /// A tree, commit or tag, waiting for its children.
    Inner(Box<Object>, Vec<Id>),
    /// The object cannot be exported.
    Refused(ExportRefusal),
}

/// The objects waiting for translation: each object and its children.
type Inner = HashMap<Id, (Object, Vec<Id>)>;

/// One object's translation: the compressed git object, or why it cannot
/// be exported.
type Translation = Result<PackEntry, ExportRefusal>;

struct Translator<'a> {
    store: &'a Store,
    map: &'a BlakeToSha1,
    progress: &'a dyn Progress,
    interrupt: &'a AtomicBool,
    /// Translated in this run.
    done: HashMap<Id, Sha1>,
    /// Refused in this run, with the reason to report.
    refused: HashMap<Id, ExportRefusal>,
}

/// Where translated objects go: the run's pack in staging, skipping what
/// staging already holds.
struct Sink {
    repo: gix::Repository,
    pack: PackWriter,
}

impl Sink {
    fn open(staging: &Path) -> Result<Sink, ExportError> {
        let mut repo = gix::open(staging).map_err(|e| ExportError::Staging {
            path: staging.to_path_buf(),
            message: e.to_string(),
        })?;
        // Most lookups miss (new objects); never rescan the pack directory.
        repo.objects.refresh_never();
        Ok(Sink {
            pack: PackWriter::new(&staging.join("objects")),
            repo,
        })
    }

    /// Append a batch's new objects in id order (the order, and so the
    /// pack, does not depend on the thread count).
    fn absorb(&mut self, mut entries: Vec<PackEntry>) -> Result<(), ExportError> {
        entries.sort_by_key(|e| e.id);
        for e in &entries {
            if !self.repo.has_object(gix::ObjectId::from(e.id.0)) {
                self.pack.append(e)?;
            }
        }
        Ok(())
    }
}

/// Objects per parallel batch: enough to keep every worker busy, few enough
/// that a batch's compressed objects fit comfortably in memory.
const CHUNK: usize = 512;

impl Translator<'_> {
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
                return Ok(match dependencies(id, &obj) {
                    Ok(deps) => Visit::Inner(Box::new(obj), deps),
                    Err(refusal) => Visit::Refused(refusal),
                });
            }
        };
        Ok(match exported {
            Ok(ex) => Visit::Leaf(pack::compress(ex.id, ex.object.kind, &ex.object.body)?),
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

    /// Find every object the map does not know, from `tips`. Trees,
    /// commits and tags are read breadth-first, one parallel read per level;
    /// the leaves their referrers announce (a tree entry that is not a
    /// directory, a tag of a blob) are not read on the way but collected and
    /// then read, translated and written in one parallel pass, so the
    /// content never waits for the commit chain. A leaf that turns out not
    /// to be one is walked like the rest. The non-leaves are returned with
    /// their children.
    fn walk(&mut self, tips: &[Id], sink: &mut Sink) -> Result<Inner, ExportError> {
        self.progress.phase("reading", 0);
        let mut seen: HashSet<Id> = HashSet::new();
        let mut frontier: Vec<Id> = tips
            .iter()
            .filter(|t| !self.map.contains_key(t) && seen.insert(**t))
            .copied()
            .collect();
        let mut inner: Inner = HashMap::new();
        let mut leaves: Vec<Id> = Vec::new();
        while !frontier.is_empty() || !leaves.is_empty() {
            // The frontier first, level by level; then the leaves at once.
            let mut batch = if frontier.is_empty() {
                std::mem::take(&mut leaves)
            } else {
                std::mem::take(&mut frontier)
            };
            batch.sort();
            for chunk in batch.chunks(CHUNK) {
                if self.interrupt.load(Ordering::Relaxed) {
                    return Err(ExportError::Interrupted);
                }
                let this = &*self;
                let results: Vec<(Id, Result<Visit, ExportError>)> = chunk
                    .par_iter()
                    .map(|id| {
                        let r = this.visit(id);
                        this.progress.advance(1, 0);
                        (*id, r)
                    })
                    .collect();
                let mut entries = Vec::new();
                for (id, r) in results {
                    match r? {
                        Visit::Leaf(entry) => {
                            self.done.insert(id, entry.id);
                            entries.push(entry);
                        }
                        Visit::Refused(refusal) => {
                            self.refused.insert(id, refusal);
                        }
                        Visit::Inner(obj, deps) => {
                            for (d, leaf) in children(&obj) {
                                if !self.map.contains_key(&d) && seen.insert(d) {
                                    if leaf {
                                        leaves.push(d);
                                    } else {
                                        frontier.push(d);
                                    }
                                }
                            }
                            inner.insert(id, (*obj, deps));
                        }
                    }
                }
                sink.absorb(entries)?;
            }
        }
        Ok(inner)
    }

    /// Translate the waiting objects in waves: an object's wave is one more
    /// than its latest waiting child's, so every child is settled first.
    fn translate(&mut self, mut inner: Inner, sink: &mut Sink) -> Result<(), ExportError> {
        let waves = waves(&inner);
        self.progress.phase("translating", inner.len() as u64);
        for wave in waves {
            for chunk in wave.chunks(CHUNK) {
                if self.interrupt.load(Ordering::Relaxed) {
                    return Err(ExportError::Interrupted);
                }
                let items: Vec<(Id, Object, Vec<Id>)> = chunk
                    .iter()
                    .filter_map(|id| inner.remove(id).map(|(o, d)| (*id, o, d)))
                    .collect();
                let this = &*self;
                let results: Vec<(Id, Result<Translation, ExportError>)> = items
                    .into_par_iter()
                    .map(|(id, obj, deps)| {
                        let r = this.translate_one(&id, obj, &deps);
                        this.progress.advance(1, 0);
                        (id, r)
                    })
                    .collect();
                let mut entries = Vec::new();
                for (id, r) in results {
                    match r? {
                        Ok(entry) => {
                            self.done.insert(id, entry.id);
                            entries.push(entry);
                        }
                        Err(refusal) => {
                            self.refused.insert(id, refusal);
                        }
                    }
                }
                sink.absorb(entries)?;
            }
        }
        Ok(())
    }

    fn translate_one(&self, id: &Id, obj: Object, deps: &[Id]) -> Result<Translation, ExportError> {
        // A refused child refuses the object with the child's own reason.
        if let Some(refusal) = deps.iter().find_map(|d| self.refused.get(d)) {
            return Ok(Err(refusal.clone()));
        }
        let lookup = |c: &Id| self.done.get(c).or_else(|| self.map.get(c)).copied();
        match export_object(id, obj, lookup, |_| None) {
            Ok(ex) => Ok(Ok(pack::compress(ex.id, ex.object.kind, &ex.object.body)?)),
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// The git id a ref tip translates to, or why it cannot be exported.
    fn resolve(&self, tip: &Id) -> Result<Sha1, ExportRefusal> {
        if let Some(sha) = self.done.get(tip).or_else(|| self.map.get(tip)) {
            return Ok(*sha);
        }
        Err(self
            .refused
            .get(tip)
            .cloned()
            .unwrap_or(ExportRefusal::MissingObject { object: *tip }))
    }
}

/// The children of a tree, commit or tag, each with whether its referrer
/// says it is content (a blob or chunked blob): a tree entry that is not a
/// directory, or a tag's blob target.
fn children(obj: &Object) -> Vec<(Id, bool)> {
    match obj {
        Object::Tree(t) => t
            .entries
            .iter()
            .map(|e| (e.id, e.mode != EntryMode::Tree))
            .collect(),
        Object::Commit(c) => std::iter::once((c.tree, false))
            .chain(c.parents.iter().map(|p| (*p, false)))
            .collect(),
        Object::Tag(t) => vec![(
            t.target,
            matches!(t.target_type, ObjectType::Blob | ObjectType::ChunkedBlob),
        )],
        _ => Vec::new(),
    }
}

/// Group the waiting objects into waves (sorted within each, for a stable
/// order): wave 0 holds those with no waiting child.
fn waves(inner: &Inner) -> Vec<Vec<Id>> {
    let mut level: HashMap<Id, usize> = HashMap::with_capacity(inner.len());
    let mut keys: Vec<Id> = inner.keys().copied().collect();
    keys.sort();
    for root in &keys {
        // Iterative post-order: histories are far deeper than the stack.
        let mut stack = vec![(*root, false)];
        while let Some((id, expanded)) = stack.pop() {
            if level.contains_key(&id) {
                continue;
            }
            let deps: &[Id] = inner.get(&id).map_or(&[], |(_, d)| d.as_slice());
            if expanded {
                let l = deps
                    .iter()
                    .filter_map(|d| level.get(d).map(|l| l + 1))
                    .max()
                    .unwrap_or(0);
                level.insert(id, l);
            } else {
                stack.push((id, true));
                for d in deps {
                    if inner.contains_key(d) && !level.contains_key(d) {
                        stack.push((*d, false));
                    }
                }
            }
        }
    }
    let mut out: Vec<Vec<Id>> = Vec::new();
    for id in keys {
        let l = level[&id];
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    #[test]
    fn waves_put_children_first() {
        let blob = || Object::Blob(crate::mkit::object::Blob { data: vec![] });
        let mut inner: Inner = HashMap::new();
        // 3 -> 2 -> 1, 3 -> 1, 4 alone; 9 is outside (mapped or a leaf).
        inner.insert(id(1), (blob(), vec![id(9)]));
        inner.insert(id(2), (blob(), vec![id(1)]));
        inner.insert(id(3), (blob(), vec![id(2), id(1)]));
        inner.insert(id(4), (blob(), vec![]));
        assert_eq!(
            waves(&inner),
            vec![vec![id(1), id(4)], vec![id(2)], vec![id(3)]]
        );
    }
}
