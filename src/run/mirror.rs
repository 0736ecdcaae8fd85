//! `mirror`: keep a fleet of git upstreams imported into mkit repositories.
//!
//! A TOML config ([`load_config`]) lists the upstreams: each one's URL, the
//! directory of its mkit repository (the *target*), the state name, and
//! optionally its key and worker count. [`run`] works through them, several
//! at once: the first run of an upstream creates its target (an mkit
//! repository with no worktree: tracking refs and tags only) and imports; a
//! later run fetches into it. Each import runs in this process through
//! [`crate::run::import::import`], with its own worker pool, under the state
//! lock the import takes; a lock held by an overlapping run is reported as
//! [`Status::Busy`] and the upstream is left for the next run. One
//! upstream's failure, or a bug that panics while it runs, never stops the
//! others: every outcome lands in one [`MirrorReport`], which the CLI
//! renders. Nothing here prints. `spec/MIRROR.md` has the whole contract.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize, Serializer};

use crate::bridge::cause::Cause;
use crate::durable::{self, IoError};
use crate::git::remote::{self, UrlKind};
use crate::mkit::Id;
use crate::mkit::keys::{self, KeyError};
use crate::mkit::repo::{self, Repo, RepoError};
use crate::mkit::sign::KeyPair;
use crate::run::import::{
    self, Change, ImportError, ImportRequest, KeyChoice, NoProgress, SkippedRef,
};
use crate::state::{self, StateError};

/// The state name an upstream gets when the config names none.
pub const DEFAULT_REMOTE: &str = "origin";
/// How many upstreams run at once when neither the config nor the caller says.
pub const DEFAULT_PARALLEL: usize = 2;
/// The longest upstream name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// The largest config file read (a fleet of thousands fits in far less).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

// ---------------------------------------------------------------------------
// The config
// ---------------------------------------------------------------------------

/// The config file as written (every key is documented in `spec/MIRROR.md`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    parallel: Option<usize>,
    jobs: Option<usize>,
    key: Option<PathBuf>,
    remote: Option<String>,
    log_dir: Option<PathBuf>,
    #[serde(default)]
    upstream: Vec<RawUpstream>,
}

/// One `[[upstream]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: Option<String>,
    url: String,
    target: PathBuf,
    remote: Option<String>,
    key: Option<PathBuf>,
    jobs: Option<usize>,
}

/// A checked config: every path absolute, every upstream named uniquely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The config file.
    pub path: PathBuf,
    /// Its directory, against which relative paths were resolved.
    pub base: PathBuf,
    /// Upstreams run at once (`parallel`).
    pub parallel: usize,
    /// Worker threads per upstream for upstreams without their own `jobs`
    /// (`jobs`); `None` or 0: automatic.
    pub jobs: Option<usize>,
    /// Where the last run's report and each upstream's last outcome are
    /// written as JSON (`log_dir`).
    pub log_dir: Option<PathBuf>,
    /// The upstreams, in config order.
    pub upstreams: Vec<Upstream>,
}

/// One upstream to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its name in reports, logs and `--only` (unique in the config).
    pub name: String,
    /// The upstream; a relative local path is made absolute against the
    /// config's directory.
    pub url: String,
    /// The mkit repository's directory (absolute).
    pub target: PathBuf,
    /// The state name under `.mkit/git/` and of the tracking refs.
    pub remote: String,
    /// The import key file (absolute); `None`: the target's default import
    /// key, as `import` and `fetch` choose it.
    pub key: Option<PathBuf>,
    /// Its own worker-thread count, over every default.
    pub jobs: Option<usize>,
}

/// Why a config cannot be used (nothing has run when one is returned).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read mirror config: {0}")]
    Read(#[source] IoError),
    /// Not TOML, a value of the wrong type, a missing or unknown key.
    #[error("mirror config {}: {message}", path.display())]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's complaint, with line and column.
        message: String,
    },
    /// No `[[upstream]]` table.
    #[error("mirror config {}: no [[upstream]] is listed; add one per repository to mirror", path.display())]
    NoUpstreams {
        /// The config file.
        path: PathBuf,
    },
    /// A number that must be at least 1 is 0.
    #[error("mirror config {}: `{key}` must be at least 1", path.display())]
    Zero {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// A path or URL given as an empty string.
    #[error("mirror config {}: upstream {upstream}: `{key}` is empty", path.display())]
    Empty {
        /// The config file.
        path: PathBuf,
        /// The upstream (its name, or `#<n>` counting from 1).
        upstream: String,
        /// The key.
        key: &'static str,
    },
    /// A name outside the allowed characters.
    #[error(
        "mirror config {}: upstream name {name:?} {why}; a name is 1 to 128 of letters, digits, \
         '.', '_' and '-', not starting with '.' or '-' (set `name` to one)",
        path.display()
    )]
    BadName {
        /// The config file.
        path: PathBuf,
        /// The name, given or taken from the target.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A state name outside the state-name grammar.
    #[error("mirror config {}: upstream {upstream}: remote {remote:?}: {source}", path.display())]
    BadRemote {
        /// The config file.
        path: PathBuf,
        /// The upstream.
        upstream: String,
        /// The state name given.
        remote: String,
        /// Why the state layer refuses it.
        source: Box<StateError>,
    },
    /// A URL no transport can use.
    #[error("mirror config {}: upstream {upstream}: {message}", path.display())]
    BadUrl {
        /// The config file.
        path: PathBuf,
        /// The upstream.
        upstream: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two upstreams with one name.
    #[error("mirror config {}: two upstreams are named {name:?}; names must be unique", path.display())]
    DuplicateName {
        /// The config file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// Two upstreams with one target directory.
    #[error(
        "mirror config {}: upstreams {first} and {second} both mirror into {}; give each its own \
         target",
        path.display(), target.display()
    )]
    DuplicateTarget {
        /// The config file.
        path: PathBuf,
        /// The first upstream.
        first: String,
        /// The second one.
        second: String,
        /// The shared directory.
        target: PathBuf,
    },
    /// `--only` named an upstream the config does not list.
    #[error("mirror config {} lists no upstream named {name:?} (it lists: {listed})", path.display())]
    NotInConfig {
        /// The config file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names it has.
        listed: String,
    },
}

/// Read and check the config at `path` (relative paths in it resolve
/// against its directory).
pub fn load_config(path: &Path) -> Result<MirrorConfig, ConfigError> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| ConfigError::Read(IoError::new("open", path, e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigError::Read(IoError::new("read", path, e)))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!("larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse_config(&text, path)
}

/// Check the config `text`, read from `path`: unknown keys, empty or
/// clashing names and targets, bad state names and unusable URLs are
/// refused; relative paths (and relative local upstream paths) are made
/// absolute against `path`'s directory, lexically (nothing is read).
pub fn parse_config(text: &str, path: &Path) -> Result<MirrorConfig, ConfigError> {
    let p = || path.to_path_buf();
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: p(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = normalize(&std::path::absolute(&dir).unwrap_or(dir));
    let resolve = |rel: &Path| normalize(&base.join(rel));
    if raw.parallel == Some(0) {
        return Err(ConfigError::Zero {
            path: p(),
            key: "parallel",
        });
    }
    if raw.upstream.is_empty() {
        return Err(ConfigError::NoUpstreams { path: p() });
    }
    let empty = |upstream: String, key| ConfigError::Empty {
        path: p(),
        upstream,
        key,
    };
    if raw.key.as_ref().is_some_and(|k| k.as_os_str().is_empty()) {
        return Err(empty("(top level)".to_owned(), "key"));
    }
    if raw
        .log_dir
        .as_ref()
        .is_some_and(|k| k.as_os_str().is_empty())
    {
        return Err(empty("(top level)".to_owned(), "log_dir"));
    }
    let default_remote = raw.remote.unwrap_or_else(|| DEFAULT_REMOTE.to_owned());
    let default_key = raw.key.as_deref().map(resolve);

    let mut upstreams: Vec<Upstream> = Vec::with_capacity(raw.upstream.len());
    let mut by_target: HashMap<PathBuf, String> = HashMap::new();
    for (i, u) in raw.upstream.into_iter().enumerate() {
        let label = u.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        if u.target.as_os_str().is_empty() {
            return Err(empty(label, "target"));
        }
        if u.url.is_empty() {
            return Err(empty(label, "url"));
        }
        if u.key.as_ref().is_some_and(|k| k.as_os_str().is_empty()) {
            return Err(empty(label, "key"));
        }
        let target = resolve(&u.target);
        let name = match u.name {
            Some(n) => n,
            None => target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        check_name(&name).map_err(|why| ConfigError::BadName {
            path: p(),
            name: name.clone(),
            why,
        })?;
        let remote = u.remote.unwrap_or_else(|| default_remote.clone());
        state::validate_remote_name(&remote).map_err(|source| ConfigError::BadRemote {
            path: p(),
            upstream: name.clone(),
            remote: remote.clone(),
            source: Box::new(source),
        })?;
        let url = resolve_url(&u.url, &base).map_err(|message| ConfigError::BadUrl {
            path: p(),
            upstream: name.clone(),
            message,
        })?;
        if upstreams.iter().any(|o| o.name == name) {
            return Err(ConfigError::DuplicateName { path: p(), name });
        }
        // Compared through symlinks where the directory exists already.
        let key = std::fs::canonicalize(&target).unwrap_or_else(|_| target.clone());
        if let Some(first) = by_target.insert(key, name.clone()) {
            return Err(ConfigError::DuplicateTarget {
                path: p(),
                first,
                second: name,
                target,
            });
        }
        upstreams.push(Upstream {
            name,
            url,
            target,
            remote,
            key: u
                .key
                .as_deref()
                .map(resolve)
                .or_else(|| default_key.clone()),
            jobs: u.jobs,
        });
    }
    Ok(MirrorConfig {
        path: p(),
        base: base.clone(),
        parallel: raw.parallel.unwrap_or(DEFAULT_PARALLEL),
        jobs: raw.jobs,
        log_dir: raw.log_dir.as_deref().map(resolve),
        upstreams,
    })
}

impl MirrorConfig {
    /// Keep only the upstreams named in `only` (config order); every name
    /// must be in the config. An empty `only` keeps them all.
    pub fn select(&mut self, only: &[String]) -> Result<(), ConfigError> {
        if only.is_empty() {
            return Ok(());
        }
        if let Some(name) = only
            .iter()
            .find(|n| !self.upstreams.iter().any(|u| &u.name == *n))
        {
            return Err(ConfigError::NotInConfig {
                path: self.path.clone(),
                name: name.clone(),
                listed: self
                    .upstreams
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.upstreams.retain(|u| only.contains(&u.name));
        Ok(())
    }
}

/// Why `name` is not an upstream name, if it is not.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("is too long");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("starts with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("holds a character other than letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Check `url` as `import` does before it creates anything, and make a
/// relative local path absolute against `base`.
fn resolve_url(url: &str, base: &Path) -> Result<String, String> {
    remote::check_url(url).map_err(|e| e.to_string())?;
    match remote::url_kind(url) {
        UrlKind::Other(scheme) => Err(format!(
            "{url}: the {scheme}:// scheme is not supported (use a path, file://, git://, ssh://, \
             user@host:path or http(s)://)"
        )),
        UrlKind::Local if Path::new(url).is_relative() => normalize(&base.join(url))
            .into_os_string()
            .into_string()
            .map_err(|p| {
                format!(
                    "{}: the resolved path is not UTF-8",
                    Path::new(&p).display()
                )
            }),
        _ => Ok(url.to_owned()),
    }
}

/// `path` with `.` and `..` removed lexically (symlinks are not followed).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// What became of one upstream in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Imported, and something changed: a ref is new, moved or removed, or
    /// the target was created.
    Updated,
    /// Fetched, and nothing changed.
    Unchanged,
    /// It could not be mirrored (the error says why).
    Failed,
    /// Another run held its state lock; it was left for the next run.
    Busy,
}

impl Status {
    /// The word used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Updated => "updated",
            Status::Unchanged => "unchanged",
            Status::Failed => "failed",
            Status::Busy => "busy",
        }
    }
}

/// Why one upstream was not mirrored.
#[derive(Debug, thiserror::Error)]
pub enum MirrorFailure {
    /// A local upstream path that does not exist (nothing was created).
    #[error("{}: no such repository", .path.display())]
    MissingUpstream {
        /// The path.
        path: PathBuf,
    },
    /// The target holds something other than an mkit repository.
    #[error(
        "target {} exists and is neither empty nor an mkit repository; point `target` at a new \
         or empty directory, or at an mkit repository",
        .target.display()
    )]
    TargetOccupied {
        /// The target.
        target: PathBuf,
    },
    /// The target repository could not be opened or created.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The state directory refused (a bad name, an unreadable state file).
    #[error(transparent)]
    State(#[from] StateError),
    /// The import key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The import or fetch failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The import ran and every upstream ref was refused (as `fetch`, this
    /// is a failure).
    #[error("every upstream ref was skipped ({count} refusals)")]
    AllSkipped {
        /// How many refs were refused.
        count: usize,
    },
    /// Another run holds the state lock.
    #[error(
        "another run holds {}; left for the next run",
        .lock.display()
    )]
    Busy {
        /// The lock file.
        lock: PathBuf,
    },
    /// The run was interrupted before this upstream started.
    #[error("not started: the run was interrupted")]
    Interrupted,
    /// A bug panicked while this upstream ran; the others went on.
    #[error("internal error (a bug, please report it): {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
}

impl MirrorFailure {
    /// True when another holder of the state lock kept this upstream from
    /// running (reported as [`Status::Busy`], not as a failure).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            MirrorFailure::Busy { .. }
                | MirrorFailure::State(StateError::Busy { .. })
                | MirrorFailure::Import(ImportError::State(StateError::Busy { .. }))
        )
    }
}

/// One refused ref of an upstream.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedDetail {
    /// The upstream ref.
    #[serde(rename = "ref")]
    pub upstream: String,
    /// The refusal's stable token.
    pub refusal: &'static str,
    /// Why, with the spec section and the remedy.
    pub reason: String,
}

/// The outcome of one upstream.
#[derive(Debug, Serialize)]
pub struct UpstreamReport {
    /// The upstream's name.
    pub name: String,
    /// Its URL as used.
    pub url: String,
    /// Its target repository.
    #[serde(serialize_with = "lossy_path")]
    pub target: PathBuf,
    /// The state name.
    pub remote: String,
    /// What became of it.
    pub status: Status,
    /// True when this run created the target repository.
    pub created: bool,
    /// Upstream refs imported (present on the mkit side); `None` when the
    /// import did not run.
    pub refs: Option<usize>,
    /// Refs new, moved or removed in this run.
    pub changed: Option<usize>,
    /// Of `changed`, tracking refs removed because the branch was deleted
    /// upstream.
    pub removed: Option<usize>,
    /// Upstream refs refused.
    pub skipped: Option<usize>,
    /// The refused refs and why.
    pub skipped_refs: Vec<SkippedDetail>,
    /// The refused refs grouped by root cause (the refusal report); a cause
    /// an earlier run reported unchanged has `reported_before`.
    pub causes: Vec<Cause>,
    /// The import's warnings (force-pushes, deletions, moved tags...).
    pub warnings: Vec<String>,
    /// The import's notes (a map rebuild and why).
    pub notes: Vec<String>,
    /// Git objects translated.
    pub translated: u64,
    /// mkit objects written.
    pub written: u64,
    /// The import key file used.
    #[serde(serialize_with = "lossy_opt_path")]
    pub key_file: Option<PathBuf>,
    /// Its public key (hex).
    pub key: Option<String>,
    /// True when this run generated that key (back it up).
    pub key_generated: bool,
    /// Worker threads the import ran with.
    pub jobs: usize,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// When it finished, seconds since the epoch.
    pub finished_at: u64,
    /// Why it failed or was busy.
    #[serde(rename = "error", serialize_with = "display_opt")]
    pub failure: Option<MirrorFailure>,
}

/// How many upstreams ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// [`Status::Updated`].
    pub updated: usize,
    /// [`Status::Unchanged`].
    pub unchanged: usize,
    /// [`Status::Failed`].
    pub failed: usize,
    /// [`Status::Busy`].
    pub busy: usize,
}

/// The outcome of a whole run.
#[derive(Debug, Serialize)]
pub struct MirrorReport {
    /// The config file.
    #[serde(serialize_with = "lossy_path")]
    pub config: PathBuf,
    /// True when every upstream is updated or unchanged.
    pub ok: bool,
    /// Counts per status.
    pub totals: Totals,
    /// Upstreams run at once.
    pub parallel: usize,
    /// True for `--dry-run`: every figure says what a real run would do, and
    /// nothing was written on the mkit side (only staging mirrors fetched).
    pub dry_run: bool,
    /// Every upstream's outcome, in config order.
    pub upstreams: Vec<UpstreamReport>,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// When the run started, seconds since the epoch.
    pub started_at: u64,
    /// Log files that could not be written (the run itself went on).
    pub log_errors: Vec<String>,
}

fn lossy_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

fn lossy_opt_path<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.collect_str(&p.display()),
        None => s.serialize_none(),
    }
}

fn display_opt<S: Serializer>(e: &Option<MirrorFailure>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// How to run a config (the caller's overrides).
#[derive(Debug)]
pub struct MirrorOptions<'a> {
    /// Upstreams at once; `None`: the config's `parallel`.
    pub parallel: Option<usize>,
    /// Worker threads per upstream for upstreams without their own `jobs`;
    /// `None`: the config's `jobs`; 0: automatic (two per core, shared out
    /// among the upstreams running at once).
    pub jobs: Option<usize>,
    /// Set to stop: running imports stop at their next safe point and
    /// upstreams not yet started are reported as not started.
    pub interrupt: &'a AtomicBool,
    /// Plan instead of import (`import::plan`): staging mirrors are fetched,
    /// nothing else is written, and a target that does not exist yet is
    /// planned in a throwaway repository (spec/MIRROR.md).
    pub dry_run: bool,
}

/// Worker threads for one upstream when nothing sets them: the import's
/// default of two per core, shared out among the `parallel` runs.
pub fn auto_jobs(parallel: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores / parallel.max(1)).max(1)
}

/// Mirror every upstream of `config`, `parallel` at a time, and report.
/// `on_done` is called once per upstream as it finishes (from the worker
/// thread that ran it), after its log file is written.
pub fn run(
    config: &MirrorConfig,
    opts: &MirrorOptions<'_>,
    on_done: &(dyn Fn(&UpstreamReport) + Sync),
) -> MirrorReport {
    let started = Instant::now();
    let started_at = now_epoch();
    let n = config.upstreams.len();
    let parallel = opts.parallel.unwrap_or(config.parallel).clamp(1, n.max(1));
    let default_jobs = match opts.jobs.or(config.jobs) {
        Some(j) if j > 0 => j,
        _ => auto_jobs(parallel),
    };
    let log_errors = Mutex::new(Vec::new());
    // A dry run keeps no logs: it writes nothing but staging mirrors.
    let log_dir = config.log_dir.as_deref().filter(|_| !opts.dry_run);
    if let Some(dir) = log_dir
        && let Err(e) = durable::create_dir_all_durable(&dir.join(UPSTREAM_LOGS))
    {
        lock(&log_errors).push(e.to_string());
    }
    let slots: Vec<Mutex<Option<UpstreamReport>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(up) = config.upstreams.get(i) else {
                break;
            };
            let jobs = up.jobs.filter(|&j| j > 0).unwrap_or(default_jobs);
            let report = mirror_one(up, jobs, opts);
            if let Some(dir) = log_dir
                && report.status != Status::Busy
                && let Err(e) = write_json(&upstream_log(dir, &up.name), &report)
            {
                lock(&log_errors).push(e);
            }
            // A rendering bug must not lose the report.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_done(&report)));
            *lock(&slots[i]) = Some(report);
        }
    };
    std::thread::scope(|s| {
        let mut spawned = 0;
        for k in 0..parallel {
            // Imports run on these threads (gix's fetch too): give them the
            // main thread's stack size.
            let spawn = std::thread::Builder::new()
                .name(format!("mirror-{k}"))
                .stack_size(8 << 20)
                .spawn_scoped(s, worker);
            if spawn.is_ok() {
                spawned += 1;
            }
        }
        if spawned == 0 {
            worker();
        }
    });
    let upstreams: Vec<UpstreamReport> = slots
        .into_iter()
        .zip(&config.upstreams)
        .map(|(slot, up)| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| {
                    // Only if a worker died outside the per-upstream guard.
                    let mut r = UpstreamReport::new(up, default_jobs);
                    r.status = Status::Failed;
                    r.failure = Some(MirrorFailure::Panicked {
                        message: "the worker running it stopped".to_owned(),
                    });
                    r
                })
        })
        .collect();
    let mut totals = Totals::default();
    for u in &upstreams {
        match u.status {
            Status::Updated => totals.updated += 1,
            Status::Unchanged => totals.unchanged += 1,
            Status::Failed => totals.failed += 1,
            Status::Busy => totals.busy += 1,
        }
    }
    let mut report = MirrorReport {
        config: config.path.clone(),
        ok: totals.failed == 0 && totals.busy == 0,
        totals,
        parallel,
        dry_run: opts.dry_run,
        upstreams,
        seconds: seconds(started.elapsed()),
        started_at,
        log_errors: log_errors.into_inner().unwrap_or_else(|p| p.into_inner()),
    };
    if let Some(dir) = log_dir
        && let Err(e) = write_json(&dir.join(RUN_LOG), &report)
    {
        report.log_errors.push(e);
    }
    report
}

/// The whole report of the last run, in `log_dir`.
pub const RUN_LOG: &str = "last-run.json";
/// The directory of per-upstream outcomes, in `log_dir`.
pub const UPSTREAM_LOGS: &str = "upstreams";

/// `<log_dir>/upstreams/<name>.json`: the outcome of upstream `name` in the
/// last run that ran it.
pub fn upstream_log(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(UPSTREAM_LOGS).join(format!("{name}.json"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Write `value` as pretty JSON to `path`, atomically and durably.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    durable::write_atomic(path, &bytes).map_err(|e| e.to_string())
}

impl UpstreamReport {
    fn new(up: &Upstream, jobs: usize) -> UpstreamReport {
        UpstreamReport {
            name: up.name.clone(),
            url: up.url.clone(),
            target: up.target.clone(),
            remote: up.remote.clone(),
            status: Status::Failed,
            created: false,
            refs: None,
            changed: None,
            removed: None,
            skipped: None,
            skipped_refs: Vec::new(),
            causes: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            translated: 0,
            written: 0,
            key_file: None,
            key: None,
            key_generated: false,
            jobs,
            seconds: 0.0,
            finished_at: 0,
            failure: None,
        }
    }
}

/// Mirror one upstream; whatever happens, including a panic, ends in its
/// report.
fn mirror_one(up: &Upstream, jobs: usize, opts: &MirrorOptions<'_>) -> UpstreamReport {
    let start = Instant::now();
    let mut report = UpstreamReport::new(up, jobs);
    let attempt = Attempt {
        up,
        jobs,
        interrupt: opts.interrupt,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if opts.dry_run {
            attempt.dry(&mut report)
        } else {
            attempt.real(&mut report)
        }
    }));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(payload) => Some(MirrorFailure::Panicked {
            message: payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned()),
        }),
    };
    if let Some(f) = failure {
        report.status = if f.is_busy() {
            Status::Busy
        } else {
            Status::Failed
        };
        report.failure = Some(f);
    }
    report.seconds = seconds(start.elapsed());
    report.finished_at = now_epoch();
    report
}

/// Panic on the spot when `MKIT_BRIDGE_MIRROR_PANIC` names this upstream
/// (`test-hooks` builds only): the test that shows one upstream's bug does
/// not stop the fleet.
#[inline]
fn panic_point(name: &str) {
    #[cfg(feature = "test-hooks")]
    if std::env::var("MKIT_BRIDGE_MIRROR_PANIC").is_ok_and(|v| v == name) {
        panic!("test hook: MKIT_BRIDGE_MIRROR_PANIC={name}");
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = name;
}

/// What every run of an upstream checks first: the interrupt, the panic
/// hook, and that a local upstream exists (nothing is created for one that
/// does not).
fn preflight(up: &Upstream, interrupt: &AtomicBool) -> Result<(), MirrorFailure> {
    if interrupt.load(Ordering::Relaxed) {
        return Err(MirrorFailure::Interrupted);
    }
    panic_point(&up.name);
    if let Some(path) = remote::local_path(&up.url)
        && std::fs::symlink_metadata(&path).is_err()
    {
        return Err(MirrorFailure::MissingUpstream { path });
    }
    Ok(())
}

/// The upstream refs the last import recorded, read under a lock taken
/// without waiting: a lock held by another run is reported as busy. The
/// import takes the lock again itself (waiting at most the default 5 s
/// should another run slip in between, then reporting it busy as well).
fn recorded_refs(mkit_dir: &Path, remote: &str) -> Result<Vec<String>, MirrorFailure> {
    let state_dir = state::state_dir(mkit_dir, remote)?;
    let Some(_probe) = state::try_lock_state(mkit_dir, remote)? else {
        return Err(MirrorFailure::Busy {
            lock: state::lock_path(mkit_dir, remote)?,
        });
    };
    Ok(state::load_import_ref_state(&state_dir)?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// The import key, recorded in `report`. A key the run would generate is
/// generated (never replacing a file: of two first runs racing, one key
/// wins), unless `dry_run`, which plans with a throwaway key instead.
fn import_key(
    up: &Upstream,
    mkit_dir: &Path,
    dry_run: bool,
    report: &mut UpstreamReport,
) -> Result<KeyPair, MirrorFailure> {
    let (key_path, generated) = match &up.key {
        Some(p) => (p.clone(), false),
        None => match import::choose_import_key(mkit_dir, &up.remote, None)? {
            KeyChoice::Given(p) | KeyChoice::Default(p) => (p, false),
            KeyChoice::Generate(_) if dry_run => return Ok(import::dry_run_key()),
            KeyChoice::Generate(p) => {
                let made = keys::create_seed_new(&p)?;
                (p, made)
            }
        },
    };
    let key = KeyPair::from_seed(&keys::load_seed(&key_path)?);
    report.key = Some(Id(key.public()).to_hex());
    report.key_file = Some(key_path);
    report.key_generated = generated;
    Ok(key)
}

/// What an import (or a plan) did to one upstream, as the report counts it.
struct Summary {
    imported: usize,
    changed: usize,
    removed: usize,
    skipped: Vec<SkippedRef>,
    causes: Vec<Cause>,
    warnings: Vec<String>,
    notes: Vec<String>,
    translated: u64,
    written: u64,
}

/// Fill `report` from a run's (or a plan's) summary and set its status;
/// every ref refused is a failure, as for `fetch`.
fn settle(report: &mut UpstreamReport, s: Summary) -> Result<(), MirrorFailure> {
    report.refs = Some(s.imported);
    report.changed = Some(s.changed);
    report.removed = Some(s.removed);
    report.skipped = Some(s.skipped.len());
    report.skipped_refs = s
        .skipped
        .iter()
        .map(|s| SkippedDetail {
            upstream: s.upstream.clone(),
            refusal: s.refusal.name(),
            reason: s.refusal.to_string(),
        })
        .collect();
    report.causes = s.causes;
    report.warnings = s.warnings;
    report.notes = s.notes;
    report.translated = s.translated;
    report.written = s.written;
    if s.imported == 0 && !s.skipped.is_empty() {
        return Err(MirrorFailure::AllSkipped {
            count: s.skipped.len(),
        });
    }
    report.status = if report.created || s.changed > 0 {
        Status::Updated
    } else {
        Status::Unchanged
    };
    Ok(())
}

/// One upstream's run, as [`mirror_one`] starts it.
struct Attempt<'a> {
    up: &'a Upstream,
    jobs: usize,
    interrupt: &'a AtomicBool,
}

impl Attempt<'_> {
    /// The import request for this upstream. A mirror has no worktree and
    /// no local branch: tracking refs and tags only (spec/MIRROR.md).
    fn request<'k>(&'k self, key: &'k KeyPair) -> ImportRequest<'k> {
        ImportRequest {
            url: &self.up.url,
            remote: &self.up.remote,
            key,
            jobs: self.jobs,
            set_default_branch: false,
            interrupt: self.interrupt,
            progress: &NoProgress,
        }
    }

    /// The body of [`mirror_one`]: fills `report` and sets its status when the
    /// import ran.
    fn real(&self, report: &mut UpstreamReport) -> Result<(), MirrorFailure> {
        let up = self.up;
        preflight(up, self.interrupt)?;
        let (repo, created) = open_or_create(&up.target)?;
        report.created = created;
        let mkit_dir = repo.mkit_dir();
        let previous = recorded_refs(mkit_dir, &up.remote)?;
        let key = import_key(up, mkit_dir, false, report)?;
        let outcome = import::import(&repo, &self.request(&key))?;

        let present = |name: &str| {
            outcome.imported.iter().any(|r| r.upstream == name)
                || outcome.skipped.iter().any(|r| r.upstream == name)
        };
        // Branches recorded before and gone now lost their tracking refs.
        let removed = previous
            .iter()
            .filter(|n| n.starts_with(crate::mkit::refs::HEADS_PREFIX) && !present(n))
            .count();
        let summary = Summary {
            imported: outcome.imported.len(),
            changed: outcome.imported.iter().filter(|r| r.changed).count() + removed,
            removed,
            skipped: outcome.skipped,
            causes: outcome.causes,
            warnings: outcome.warnings,
            notes: outcome.notes,
            translated: outcome.translated,
            written: outcome.written,
        };
        settle(report, summary)
    }

    /// [`Attempt::real`] for `--dry-run`: the same checks, then
    /// [`import::plan`] instead of the import. A target that does not exist yet
    /// (or is empty) is planned in a throwaway repository under the temp
    /// directory, removed afterwards, and reported as `created` (it would be).
    fn dry(&self, report: &mut UpstreamReport) -> Result<(), MirrorFailure> {
        let up = self.up;
        preflight(up, self.interrupt)?;
        let scratch;
        let repo = if target_exists(&up.target)? {
            Repo::open(&up.target)?
        } else {
            scratch = Scratch::new(&up.name)?;
            report.created = true;
            Repo::init(&scratch.0)?
        };
        let mkit_dir = repo.mkit_dir();
        recorded_refs(mkit_dir, &up.remote)?;
        let key = import_key(up, mkit_dir, true, report)?;
        let plan = import::plan(&repo, &self.request(&key))?;
        let moving = |c: Change| matches!(c, Change::New | Change::Updated | Change::Forced);
        let summary = Summary {
            imported: plan.refs.len(),
            changed: plan.refs.iter().filter(|r| moving(r.change)).count() + plan.pruned.len(),
            removed: plan.pruned.len(),
            skipped: plan.skipped,
            causes: plan.causes,
            warnings: plan.warnings,
            notes: plan.notes,
            translated: plan.translated,
            written: plan.written,
        };
        settle(report, summary)
    }
}

/// A throwaway directory for a dry run's repository, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Scratch, MirrorFailure> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mkit-bridge-mirror-dry-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).map_err(|e| IoError::new("create", &dir, e))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True when the target holds an mkit repository; false when it is absent
/// or empty (a real run would create the repository there); an error when
/// it holds anything else.
fn target_exists(target: &Path) -> Result<bool, MirrorFailure> {
    if std::fs::symlink_metadata(target.join(repo::MKIT_DIR)).is_ok() {
        return Ok(true);
    }
    match std::fs::read_dir(target) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(|e| IoError::new("list", target, e))?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                // A repository being built, or just built, by another run.
                if name != repo::MKIT_DIR && !name.starts_with(".mkit.init.") {
                    return Err(MirrorFailure::TargetOccupied {
                        target: target.to_path_buf(),
                    });
                }
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(IoError::new("list", target, e).into()),
    }
}

/// Open the target's repository, or create it when the target is absent or
/// empty. Returns whether this call created it. Safe against another run
/// creating it at the same moment: one creation wins, the other opens it.
fn open_or_create(target: &Path) -> Result<(Repo, bool), MirrorFailure> {
    if target_exists(target)? {
        return Ok((Repo::open(target)?, false));
    }
    durable::create_dir_all_durable(target)?;
    match Repo::init(target) {
        Ok(repo) => Ok((repo, true)),
        Err(e) => match Repo::open(target) {
            Ok(repo) => Ok((repo, false)),
            Err(_) => Err(e.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MirrorConfig, ConfigError> {
        parse_config(text, Path::new("/srv/mirrors/fleet.toml"))
    }

    /// Why `text` is refused (a panic when it is accepted).
    fn refused(text: &str) -> ConfigError {
        match parse(text) {
            Err(e) => e,
            Ok(c) => panic!("{text:?} was accepted: {c:?}"),
        }
    }

    const ONE: &str = "[[upstream]]\nurl = \"https://example.org/a.git\"\ntarget = \"repos/a\"\n";

    #[test]
    fn a_full_config_resolves_paths_against_its_directory() {
        let c = parse(
            r#"
parallel = 3
jobs = 4
key = "keys/import.key"
remote = "gh"
log_dir = "./logs/"

[[upstream]]
name = "alpha"
url = "https://github.com/o/alpha"
target = "repos/alpha"

[[upstream]]
url = "../upstreams/beta.git"
target = "/data/beta"
remote = "up"
key = "/etc/keys/beta.key"
jobs = 1
"#,
        )
        .unwrap();
        assert_eq!(c.base, Path::new("/srv/mirrors"));
        assert_eq!(c.parallel, 3);
        assert_eq!(c.jobs, Some(4));
        assert_eq!(c.log_dir.as_deref(), Some(Path::new("/srv/mirrors/logs")));
        let a = &c.upstreams[0];
        assert_eq!(a.name, "alpha");
        assert_eq!(a.url, "https://github.com/o/alpha");
        assert_eq!(a.target, Path::new("/srv/mirrors/repos/alpha"));
        assert_eq!(a.remote, "gh");
        assert_eq!(
            a.key.as_deref(),
            Some(Path::new("/srv/mirrors/keys/import.key"))
        );
        assert_eq!(a.jobs, None);
        let b = &c.upstreams[1];
        // Named after its target; a relative local upstream made absolute.
        assert_eq!(b.name, "beta");
        assert_eq!(b.url, "/srv/upstreams/beta.git");
        assert_eq!(b.target, Path::new("/data/beta"));
        assert_eq!(b.remote, "up");
        assert_eq!(b.key.as_deref(), Some(Path::new("/etc/keys/beta.key")));
        assert_eq!(b.jobs, Some(1));
    }

    #[test]
    fn defaults_apply_when_keys_are_absent() {
        let c = parse(ONE).unwrap();
        assert_eq!(c.parallel, DEFAULT_PARALLEL);
        assert_eq!(c.jobs, None);
        assert_eq!(c.log_dir, None);
        assert_eq!(c.upstreams[0].remote, DEFAULT_REMOTE);
        assert_eq!(c.upstreams[0].key, None);
        assert_eq!(c.upstreams[0].name, "a");
        // A config given by a bare file name resolves against the working
        // directory.
        let c = parse_config(ONE, Path::new("fleet.toml")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.upstreams[0].target, normalize(&cwd.join("repos/a")));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        for (text, key) in [
            (format!("paralel = 2\n{ONE}"), "paralel"),
            (format!("{ONE}branch = \"main\"\n"), "branch"),
            (format!("[extra]\n{ONE}"), "extra"),
        ] {
            let e = refused(&text);
            let ConfigError::Parse { message, .. } = e else {
                panic!("{key}: {e:?}")
            };
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    #[test]
    fn malformed_configs_are_parse_errors() {
        for text in [
            "parallel = \"two\"\n[[upstream]]\nurl = \"u\"\ntarget = \"t\"\n",
            "[[upstream]]\ntarget = \"t\"\n",
            "[[upstream]]\nurl = \"u\"\n",
            "[[upstream\n",
            "upstream = 3\n",
            "parallel = -1\n[[upstream]]\nurl = \"u\"\ntarget = \"t\"\n",
        ] {
            assert!(
                matches!(parse(text), Err(ConfigError::Parse { .. })),
                "{text:?}: {:?}",
                parse(text)
            );
        }
    }

    #[test]
    fn empty_and_zero_values_are_refused() {
        assert!(matches!(parse(""), Err(ConfigError::NoUpstreams { .. })));
        assert!(matches!(
            parse(&format!("parallel = 0\n{ONE}")),
            Err(ConfigError::Zero {
                key: "parallel",
                ..
            })
        ));
        for (text, want) in [
            ("[[upstream]]\nurl = \"\"\ntarget = \"t\"\n", "url"),
            ("[[upstream]]\nurl = \"u\"\ntarget = \"\"\n", "target"),
            (
                "[[upstream]]\nurl = \"u\"\ntarget = \"t\"\nkey = \"\"\n",
                "key",
            ),
        ] {
            let e = refused(text);
            let ConfigError::Empty { key, upstream, .. } = e else {
                panic!("{want}: {e:?}")
            };
            assert_eq!((key, upstream.as_str()), (want, "#1"));
        }
        assert!(matches!(
            parse(&format!("key = \"\"\n{ONE}")),
            Err(ConfigError::Empty { key: "key", .. })
        ));
        assert!(matches!(
            parse(&format!("log_dir = \"\"\n{ONE}")),
            Err(ConfigError::Empty { key: "log_dir", .. })
        ));
        // jobs = 0 means automatic, as --jobs 0 does.
        assert_eq!(parse(&format!("jobs = 0\n{ONE}")).unwrap().jobs, Some(0));
    }

    #[test]
    fn duplicate_names_and_targets_are_refused() {
        let text = "[[upstream]]\nname = \"x\"\nurl = \"u1\"\ntarget = \"a\"\n\
                    [[upstream]]\nname = \"x\"\nurl = \"u2\"\ntarget = \"b\"\n";
        assert!(matches!(
            parse(text),
            Err(ConfigError::DuplicateName { name, .. }) if name == "x"
        ));
        // The same directory spelled two ways.
        let text = "[[upstream]]\nname = \"x\"\nurl = \"u1\"\ntarget = \"repos/a\"\n\
                    [[upstream]]\nname = \"y\"\nurl = \"u2\"\ntarget = \"./repos/b/../a/\"\n";
        match parse(text) {
            Err(ConfigError::DuplicateTarget {
                first,
                second,
                target,
                ..
            }) => {
                assert_eq!((first.as_str(), second.as_str()), ("x", "y"));
                assert_eq!(target, Path::new("/srv/mirrors/repos/a"));
            }
            other => panic!("{other:?}"),
        }
        // Two targets whose last component is the same need names.
        let text = "[[upstream]]\nurl = \"u1\"\ntarget = \"one/repo\"\n\
                    [[upstream]]\nurl = \"u2\"\ntarget = \"two/repo\"\n";
        assert!(matches!(
            parse(text),
            Err(ConfigError::DuplicateName { name, .. }) if name == "repo"
        ));
    }

    #[test]
    fn bad_names_remotes_and_urls_are_refused() {
        for name in ["", ".hidden", "-x", "a b", "a/b", &"n".repeat(129)] {
            let text = format!("[[upstream]]\nname = {name:?}\nurl = \"u\"\ntarget = \"t\"\n");
            assert!(
                matches!(parse(&text), Err(ConfigError::BadName { .. })),
                "{name:?}"
            );
        }
        // A target whose last component is not a name, and no name given.
        assert!(matches!(
            parse("[[upstream]]\nurl = \"u\"\ntarget = \"/\"\n"),
            Err(ConfigError::BadName { .. })
        ));
        for remote in ["", "a/b", ".x", "a b"] {
            let text = format!("[[upstream]]\nurl = \"u\"\ntarget = \"t\"\nremote = {remote:?}\n");
            assert!(
                matches!(parse(&text), Err(ConfigError::BadRemote { .. })),
                "{remote:?}"
            );
        }
        assert!(matches!(
            parse(&format!("remote = \"no/slash\"\n{ONE}")),
            Err(ConfigError::BadRemote { .. })
        ));
        for url in [" ", "--upload-pack=x", "ftp://example.org/r.git"] {
            let text = format!("[[upstream]]\nname = \"n\"\nurl = {url:?}\ntarget = \"t\"\n");
            let e = refused(&text);
            let ConfigError::BadUrl { upstream, .. } = e else {
                panic!("{url:?}: {e:?}")
            };
            assert_eq!(upstream, "n");
        }
    }

    #[test]
    fn network_and_absolute_urls_are_kept_as_written() {
        for url in [
            "https://github.com/o/r.git",
            "git@github.com:o/r.git",
            "ssh://git@example.org/r",
            "file:///srv/up/r.git",
            "/abs/path/r.git",
        ] {
            let text = format!("[[upstream]]\nname = \"n\"\nurl = {url:?}\ntarget = \"t\"\n");
            assert_eq!(parse(&text).unwrap().upstreams[0].url, url);
        }
    }

    #[test]
    fn select_keeps_named_upstreams_in_config_order() {
        let text = "[[upstream]]\nurl = \"u1\"\ntarget = \"a\"\n\
                    [[upstream]]\nurl = \"u2\"\ntarget = \"b\"\n\
                    [[upstream]]\nurl = \"u3\"\ntarget = \"c\"\n";
        let mut c = parse(text).unwrap();
        c.select(&[]).unwrap();
        assert_eq!(c.upstreams.len(), 3);
        c.select(&["c".to_owned(), "a".to_owned()]).unwrap();
        let names: Vec<_> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        match c.select(&["b".to_owned()]) {
            Err(ConfigError::NotInConfig { name, listed, .. }) => {
                assert_eq!(name, "b");
                assert_eq!(listed, "a, c");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn load_config_reports_a_missing_file_and_non_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        match load_config(&missing) {
            Err(ConfigError::Read(e)) => {
                assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
                assert_eq!(e.path, missing);
            }
            other => panic!("{other:?}"),
        }
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"name = \"\xff\"\n").unwrap();
        assert!(matches!(load_config(&bad), Err(ConfigError::Parse { .. })));
        let good = dir.path().join("good.toml");
        std::fs::write(&good, ONE).unwrap();
        let c = load_config(&good).unwrap();
        assert_eq!(c.upstreams[0].target, dir.path().join("repos/a"));
    }

    #[test]
    fn auto_jobs_shares_two_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(auto_jobs(1), 2 * cores);
        assert_eq!(auto_jobs(0), 2 * cores);
        assert_eq!(auto_jobs(10_000), 1);
    }

    #[test]
    fn a_target_holding_other_files_is_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join("file"), b"x").unwrap();
        assert!(matches!(
            open_or_create(&t),
            Err(MirrorFailure::TargetOccupied { .. })
        ));
        assert!(!t.join(repo::MKIT_DIR).exists());
        // Absent: created; then opened.
        let fresh = dir.path().join("fresh/nested");
        assert!(open_or_create(&fresh).unwrap().1);
        assert!(!open_or_create(&fresh).unwrap().1);
        // Empty but for another run's half-built repository: created.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(empty.join(".mkit.init.999999")).unwrap();
        assert!(open_or_create(&empty).unwrap().1);
    }
}
