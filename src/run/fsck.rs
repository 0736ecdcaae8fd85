//! `fsck`: check a whole repository and name what is damaged.
//!
//! Every object file under `.mkit/objects` is read once, decoded, and its id
//! recomputed with the store's own rule ([`store::stored_id`]: the Merkle
//! root for trees and chunked blobs, the flat BLAKE3 of the bytes otherwise);
//! commit, remix and tag signatures are verified on the way. What the scan
//! keeps is compact: per object its kind, a blob's length, and its outgoing
//! links as indices into the sorted id table (with the kind each link
//! declares). No decoded object is held.
//!
//! Then every root (each file under `.mkit/refs/`, a detached `HEAD`, and the
//! mkit ids each bridge state records in `refs-import` and `refs`) is walked
//! once, depth first. At each reachable object every link is checked: the
//! target is present, and is of the kind the link declares (a tree entry of
//! mode tree names a tree, a file entry a blob or chunked blob, a commit's
//! tree a tree, its parents commits, a chunk a blob, a tag's target the type
//! it declares); a chunked blob's chunks add up to its total size. The walk's
//! postorder also says which objects lead to damage, so the refs that reach a
//! damaged object are computed afterwards over that small subgraph only (one
//! bit per root per object on it).
//!
//! Each state directory's retained raw git objects (`raw/`) are re-hashed
//! with collision-detecting SHA-1 against their names; the state's map is
//! checked for lines naming objects the store lacks (a warning: the map is a
//! cache).
//!
//! Objects no root reaches are counted, not reported (refused refs and
//! interrupted runs leave those); their links are not checked. Damage in the
//! file itself (bytes, decoding, signature) is reported for every object,
//! reachable or not.
//!
//! Nothing here prints; the CLI renders the [`FsckReport`]. The outcome does
//! not depend on the number of threads.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::durable::{IoError, io_err};
use crate::git::sha1::{self as git_sha1, Sha1};
use crate::mkit::decode::decode_prologue;
use crate::mkit::id::{self, HEX_LEN, Id};
use crate::mkit::object::{EntryMode, MAX_OBJECT_SIZE, Object, ObjectType, PROLOGUE_LEN};
use crate::mkit::refs::{self, Head, RefError};
use crate::mkit::repo::Repo;
use crate::mkit::sign::{self, SignatureStatus};
use crate::mkit::store::{self, Store};
use crate::run::progress::Progress;
use crate::state::{self, StateError};

/// What to run with.
pub struct FsckRequest<'a> {
    /// Worker threads; 0 means two per core, as import.
    pub jobs: usize,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
}

/// Why fsck could not run to the end (damage is not an error: it is in the
/// report; see [`FsckReport::verdict`] for the outcome as an error).
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// A directory fsck must list, or a file it must read, failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// `HEAD` or the refs could not be read.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// A state directory could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The worker pool could not be built.
    #[error("cannot start {jobs} worker threads: {source}")]
    Threads {
        /// Requested jobs.
        jobs: usize,
        /// Why not.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// More objects than the compact tables index.
    #[error("the store holds {0} objects; fsck indexes at most 2^31 - 1")]
    TooManyObjects(usize),
    /// The check ran and found damage (exit 65).
    #[error("{problems} problem(s) found ({objects} objects checked); see the lines above")]
    Damaged {
        /// Problems found.
        problems: usize,
        /// Objects checked.
        objects: u64,
    },
    /// The check ran, found no damage, but could not read some files (exit 74).
    #[error("{files} file(s) could not be read; the check is incomplete")]
    Unreadable {
        /// Files that could not be read.
        files: usize,
    },
}

/// What one problem is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// An mkit object, by id (present or missing).
    Object(Id),
    /// A ref file (full name) or `HEAD`.
    Ref(String),
    /// A retained raw git object in a state directory.
    Raw {
        /// The state name.
        state: String,
        /// The SHA-1 the file is named by.
        sha1: Sha1,
    },
}

/// The kinds of problem fsck reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// The file could not be read (an I/O error, not a verdict on the bytes).
    Unreadable,
    /// Over the 1 GiB object cap.
    TooLarge,
    /// The bytes do not decode as an object.
    Corrupt,
    /// The bytes decode but their id is not the file's name.
    HashMismatch,
    /// A delta (pack-only) stored as a loose object.
    Delta,
    /// A commit, remix or tag whose signature does not verify under its signer.
    BadSignature,
    /// Referenced but not in the store.
    Missing,
    /// A link to an object of another kind than it declares.
    WrongKind,
    /// A chunked blob whose chunks do not add up to its total size.
    ChunkSize,
    /// A ref file or `HEAD` that does not decode, or a branch that names a non-commit.
    BadRef,
    /// A retained raw file whose frame is bad or whose SHA-1 is not its name.
    BadRaw,
}

impl ProblemKind {
    /// The stable name used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::TooLarge => "too_large",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::HashMismatch => "hash_mismatch",
            ProblemKind::Delta => "delta",
            ProblemKind::BadSignature => "bad_signature",
            ProblemKind::Missing => "missing",
            ProblemKind::WrongKind => "wrong_kind",
            ProblemKind::ChunkSize => "chunk_size",
            ProblemKind::BadRef => "bad_ref",
            ProblemKind::BadRaw => "bad_raw",
        }
    }

    /// True for damage (exit 65); false for a file that could not be read.
    pub fn is_damage(self) -> bool {
        self != ProblemKind::Unreadable
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What it is about.
    pub subject: Subject,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What is wrong, in words.
    pub detail: String,
    /// The roots that reach the subject: ref names and `HEAD` first, then
    /// `git/<state>/refs-import:<ref>` and `git/<state>/refs:<ref>`, each
    /// group sorted; empty when nothing reaches it.
    pub reached_from: Vec<String>,
}

/// The kinds of warning (not damage; the exit code stays 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WarningKind {
    /// Temp files left by interrupted writes (harmless, never read).
    TempFiles,
    /// A file or directory whose name no object or raw file has.
    Stray,
    /// No `HEAD` file.
    NoHead,
    /// Map lines naming objects the store does not hold.
    MapAbsent,
    /// Map lines that do not parse (a torn tail: the next run rebuilds).
    MapTorn,
}

impl WarningKind {
    /// The stable name used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::TempFiles => "temp_files",
            WarningKind::Stray => "stray",
            WarningKind::NoHead => "no_head",
            WarningKind::MapAbsent => "map_absent",
            WarningKind::MapTorn => "map_torn",
        }
    }
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What kind.
    pub kind: WarningKind,
    /// In words.
    pub detail: String,
}

/// Objects checked, by kind (files that did not decode are in none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// Blobs (chunks included).
    pub blob: u64,
    /// Trees.
    pub tree: u64,
    /// Commits.
    pub commit: u64,
    /// Remixes.
    pub remix: u64,
    /// Chunked blob manifests.
    pub chunked_blob: u64,
    /// Tags.
    pub tag: u64,
}

/// One root of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Its name (see [`Problem::reached_from`]).
    pub name: String,
    /// The object it names.
    pub id: Id,
}

/// Everything fsck found.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Object files checked.
    pub objects: u64,
    /// Bytes read from them.
    pub bytes: u64,
    /// Objects by kind.
    pub kinds: KindCounts,
    /// Every root walked, in walk order.
    pub roots: Vec<Root>,
    /// Present objects some root reaches.
    pub reachable: u64,
    /// Present objects no root reaches.
    pub unreachable: u64,
    /// Commits, remixes and tags whose signature is all zero (unsigned, not
    /// damaged), sorted.
    pub unsigned: Vec<Id>,
    /// State directories checked.
    pub states: Vec<String>,
    /// Retained raw files checked.
    pub raw_files: u64,
    /// Map entries checked against the store.
    pub map_entries: u64,
    /// Problems, sorted by subject then kind.
    pub problems: Vec<Problem>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Wall time of each phase, in run order.
    pub phases: Vec<(&'static str, Duration)>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl FsckReport {
    /// Problems that are damage (everything but unreadable files).
    pub fn damage(&self) -> usize {
        self.problems.iter().filter(|p| p.kind.is_damage()).count()
    }

    /// The outcome as a result: [`FsckError::Damaged`] when anything is
    /// damaged, else [`FsckError::Unreadable`] when some file could not be
    /// read, else `Ok`.
    pub fn verdict(&self) -> Result<(), FsckError> {
        let damage = self.damage();
        if damage > 0 {
            return Err(FsckError::Damaged {
                problems: damage,
                objects: self.objects,
            });
        }
        let unreadable = self.problems.len() - damage;
        if unreadable > 0 {
            return Err(FsckError::Unreadable { files: unreadable });
        }
        Ok(())
    }
}

/// Check the repository `repo`.
pub fn fsck(repo: &Repo, req: &FsckRequest<'_>) -> Result<FsckReport, FsckError> {
    let started = Instant::now();
    let jobs = if req.jobs == 0 {
        2 * std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        req.jobs
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|source| FsckError::Threads { jobs, source })?;
    pool.install(|| run(repo, req, started))
}

fn run(repo: &Repo, req: &FsckRequest<'_>, started: Instant) -> Result<FsckReport, FsckError> {
    let mut report = FsckReport::default();
    let mut problems: Vec<Problem> = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |report: &mut FsckReport, name: &'static str| {
        report.phases.push((name, clock.elapsed()));
        clock = Instant::now();
    };

    // Roots and state files first: refs only move after their objects are
    // durable and visible, so every object a root read now reaches is
    // already in the listing that follows, even while another run writes.
    let mkit_dir = repo.mkit_dir();
    let (roots, root_wants, states) = collect_roots(mkit_dir, &mut problems, &mut report)?;
    lap(&mut report, "roots");

    let store = repo.store();
    let ids = Ids::new(list_objects(store.root(), &mut report.warnings)?);
    if ids.len() >= MISSING as usize {
        return Err(FsckError::TooManyObjects(ids.len()));
    }
    lap(&mut report, "list");

    req.progress.phase("objects", ids.len() as u64);
    let scanned: Vec<Scanned> = ids
        .par_chunks(SCAN_CHUNK)
        .map_init(
            || (Vec::new(), sign::Verifier::default()),
            |(buf, verifier), part| {
                let s = scan_part(store, &ids, part, buf, verifier);
                req.progress.advance(part.len() as u64, s.bytes);
                s
            },
        )
        .collect();
    lap(&mut report, "objects");

    let mut graph = Graph::build(&ids, scanned, &mut report, &mut problems);
    report.objects = ids.len() as u64;
    let interest_raw = check_states(&states, &ids, &mut report, &mut problems)?;
    drop(states);
    lap(&mut report, "states");

    let (walk, root_nodes) = walk_roots(
        store,
        &ids,
        &mut graph,
        (&roots, &root_wants),
        &interest_raw,
        &mut problems,
    );
    report.reachable = walk.reachable;
    report.unreachable = ids.len() as u64 - walk.reachable;
    lap(&mut report, "walk");

    // Which roots reach each damaged object (and each raw file's twin).
    let reach = graph.roots_reaching(&walk, &root_nodes);
    for p in problems.iter_mut() {
        if let Subject::Object(id) = &p.subject {
            let node = graph.lookup(&ids, id);
            if let Some(node) = node {
                p.reached_from = reach.names(node, &roots);
            }
        }
    }
    for (i, node) in &interest_raw {
        problems[*i].reached_from = reach.names(*node, &roots);
    }
    drop(graph);
    lap(&mut report, "reach");

    problems.sort_by(|a, b| (&a.subject, a.kind).cmp(&(&b.subject, b.kind)));
    problems.dedup_by(|a, b| a.subject == b.subject && a.kind == b.kind && a.detail == b.detail);
    report.problems = problems;
    report.unsigned.sort_unstable();
    report.roots = roots;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The roots, the kind each wants, and the states' maps.
type Collected = (Vec<Root>, Vec<u8>, Vec<StateMaps>);

/// The roots (refs, `HEAD`, and every non-zero mkit id a state's ref state
/// records), with the kind each wants, and every state's map.
fn collect_roots(
    mkit_dir: &Path,
    problems: &mut Vec<Problem>,
    report: &mut FsckReport,
) -> Result<Collected, FsckError> {
    let (mut roots, mut root_wants) = read_roots(mkit_dir, problems, &mut report.warnings)?;
    let mut states = Vec::new();
    for name in state::list_states(mkit_dir)? {
        let Ok(dir) = state::state_dir(mkit_dir, &name) else {
            let path = mkit_dir.join(state::GIT_STATE_DIR).join(&name);
            report
                .warnings
                .push(stray(&path, "not a valid state name (not checked)"));
            continue;
        };
        let (inverse, intact) = state::load_map_inverse_checked(&dir)?;
        states.push(StateMaps {
            name,
            dir,
            inverse,
            intact,
        });
    }
    for s in &states {
        for (file, list) in [
            ("refs-import", state::load_import_ref_state(&s.dir)?),
            ("refs", state::load_ref_state(&s.dir)?),
        ] {
            for r in list {
                if !r.mkit.is_zero() {
                    roots.push(Root {
                        name: format!("git/{}/{file}:{}", s.name, r.name),
                        id: r.mkit,
                    });
                    root_wants.push(WANT_ANY);
                }
            }
        }
    }
    Ok((roots, root_wants, states))
}

/// Check each state's raw files and map lines. Returns, for each raw-file
/// problem whose object the map knows, the problem's index and the node of
/// its mkit twin (whose reaching roots it is reported with).
fn check_states(
    states: &[StateMaps],
    ids: &Ids,
    report: &mut FsckReport,
    problems: &mut Vec<Problem>,
) -> Result<Vec<(usize, u32)>, FsckError> {
    let mut interest_raw: Vec<(usize, u32)> = Vec::new();
    for s in states {
        let raw = check_raw(&s.name, &s.dir, &mut report.warnings)?;
        report.raw_files += raw.files;
        for p in raw.problems {
            if let Subject::Raw { sha1, .. } = &p.subject
                && let Some(b) = s.inverse.get(sha1)
                && let Some(node) = ids.find(b)
            {
                interest_raw.push((problems.len(), node as u32));
            }
            problems.push(p);
        }
        check_map(s, ids, report);
    }
    report.states = states.iter().map(|s| s.name.clone()).collect();
    Ok(interest_raw)
}

/// Walk the graph from the roots (each with the kind it wants): bad links
/// become problems, and so does a root naming an object of a kind it may
/// not name. Returns the walk and the roots' nodes.
fn walk_roots(
    store: &Store,
    ids: &Ids,
    graph: &mut Graph,
    (roots, root_wants): (&[Root], &[u8]),
    interest_raw: &[(usize, u32)],
    problems: &mut Vec<Problem>,
) -> (Walk, Vec<u32>) {
    let root_nodes: Vec<u32> = roots.iter().map(|r| graph.node_of(ids, &r.id)).collect();
    let walk = graph.walk(ids, &root_nodes, interest_raw, problems);
    for b in &walk.bad_links {
        problems.push(bad_link_problem(store, ids, graph, b));
    }
    for (r, (node, want)) in root_nodes.iter().zip(root_wants).enumerate() {
        let kind = graph.kind(*node);
        if kind != 0 && !satisfies(*want, kind) {
            problems.push(Problem {
                subject: Subject::Ref(roots[r].name.clone()),
                kind: ProblemKind::BadRef,
                detail: format!(
                    "names {} {}, not a commit",
                    kind_name(kind),
                    roots[r].id.to_hex()
                ),
                reached_from: vec![roots[r].name.clone()],
            });
        }
    }
    (walk, root_nodes)
}

// ---------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------

/// Every ref file under `.mkit/refs/` and a detached `HEAD`, with the kind
/// each must name (branches and remote-tracking refs: a commit).
fn read_roots(
    mkit_dir: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) -> Result<(Vec<Root>, Vec<u8>), FsckError> {
    let mut found = Vec::new();
    walk_refs(
        &mkit_dir.join("refs"),
        "refs",
        0,
        &mut found,
        problems,
        warnings,
    )?;
    found.sort_by(|a: &Root, b| a.name.cmp(&b.name));
    match refs::read_head(mkit_dir) {
        Ok(Some(Head::Detached(id))) => found.insert(
            0,
            Root {
                name: "HEAD".to_owned(),
                id,
            },
        ),
        Ok(Some(Head::Symbolic(_))) => {}
        Ok(None) => warnings.push(Warning {
            kind: WarningKind::NoHead,
            detail: format!("{} is absent", mkit_dir.join(refs::HEAD_FILE).display()),
        }),
        Err(RefError::InvalidHead { path }) => problems.push(Problem {
            subject: Subject::Ref("HEAD".to_owned()),
            kind: ProblemKind::BadRef,
            detail: format!(
                "{} is neither `ref: refs/heads/<branch>` nor a 64-hex id",
                path.display()
            ),
            reached_from: Vec::new(),
        }),
        Err(e) => return Err(e.into()),
    }
    let wants = found
        .iter()
        .map(|r| {
            let commit = r.name == "HEAD"
                || r.name.starts_with(refs::HEADS_PREFIX)
                || r.name.starts_with(refs::REMOTES_PREFIX);
            if commit { WANT_COMMIT } else { WANT_ANY }
        })
        .collect();
    Ok((found, wants))
}

fn walk_refs(
    dir: &Path,
    name: &str,
    depth: usize,
    out: &mut Vec<Root>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) -> Result<(), FsckError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound && depth == 0 => return Ok(()),
        Err(e) => return Err(IoError::new("list", dir, e).into()),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(segment) = file_name.to_str() else {
            warnings.push(stray(&path, "not a ref name"));
            continue;
        };
        if segment.starts_with('.') {
            // Temp files of interrupted ref writes.
            continue;
        }
        let child = format!("{name}/{segment}");
        let kind = entry.file_type().map_err(io_err("inspect", &path))?;
        if kind.is_dir() {
            if depth >= refs::MAX_LIST_DEPTH {
                warnings.push(stray(&path, "nested too deep to be read as refs"));
            } else {
                walk_refs(&path, &child, depth + 1, out, problems, warnings)?;
            }
            continue;
        }
        if !kind.is_file() || refs::check_ref_grammar(&child).is_err() {
            warnings.push(stray(&path, "not a ref file (left out of the roots)"));
            continue;
        }
        let mut bytes = Vec::with_capacity(refs::REF_VALUE_LEN);
        let read = File::open(&path)
            .and_then(|f| f.take(refs::MAX_REF_FILE_BYTES + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            problems.push(Problem {
                subject: Subject::Ref(child),
                kind: ProblemKind::Unreadable,
                detail: format!("cannot read {}: {e}", path.display()),
                reached_from: Vec::new(),
            });
            continue;
        }
        let value = (bytes.len() as u64 <= refs::MAX_REF_FILE_BYTES)
            .then(|| refs::decode_ref_value(&bytes))
            .flatten();
        match value {
            Some(id) => out.push(Root { name: child, id }),
            None => problems.push(Problem {
                subject: Subject::Ref(child.clone()),
                kind: ProblemKind::BadRef,
                detail: format!(
                    "{} does not hold 64 lowercase hex digits and a newline",
                    path.display()
                ),
                reached_from: vec![child],
            }),
        }
    }
    Ok(())
}

fn stray(path: &Path, why: &str) -> Warning {
    Warning {
        kind: WarningKind::Stray,
        detail: format!("{}: {why}", path.display()),
    }
}

// ---------------------------------------------------------------------------
// Listing and scanning objects
// ---------------------------------------------------------------------------

/// Every object file's id, sorted. Temp files are counted into one warning,
/// anything else that is not `<2 hex>/<62 hex>` is a stray warning.
fn list_objects(root: &Path, warnings: &mut Vec<Warning>) -> Result<Vec<Id>, FsckError> {
    let mut shards = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err("list", root))? {
        let entry = entry.map_err(io_err("list", root))?;
        let path = entry.path();
        let name = entry.file_name();
        let is_dir = entry
            .file_type()
            .map_err(io_err("inspect", &path))?
            .is_dir();
        match name.to_str() {
            Some(n) if is_dir && n.len() == 2 && crate::hex::is_lower(n.as_bytes()) => {
                shards.push((n.to_owned(), path));
            }
            Some(n) if is_temp(n) => {}
            _ => warnings.push(stray(&path, "not an object shard directory")),
        }
    }
    let listed: Vec<Result<Listed, IoError>> = shards
        .par_iter()
        .map(|(prefix, dir)| list_shard(prefix, dir))
        .collect();
    let mut ids = Vec::new();
    let mut temps = 0usize;
    for l in listed {
        let l = l?;
        ids.extend(l.ids);
        temps += l.temps;
        warnings.extend(l.strays.iter().map(|p| stray(p, "not an object file")));
    }
    if temps > 0 {
        warnings.push(Warning {
            kind: WarningKind::TempFiles,
            detail: format!(
                "{temps} temp file(s) under {} left by interrupted writes (never read; safe to delete when no mkit command runs)",
                root.display()
            ),
        });
    }
    ids.sort_unstable();
    Ok(ids)
}

struct Listed {
    ids: Vec<Id>,
    temps: usize,
    strays: Vec<PathBuf>,
}

fn list_shard(prefix: &str, dir: &Path) -> Result<Listed, IoError> {
    let mut out = Listed {
        ids: Vec::new(),
        temps: 0,
        strays: Vec::new(),
    };
    let mut hex = [0u8; HEX_LEN];
    hex[..2].copy_from_slice(prefix.as_bytes());
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if name.first() == Some(&b'.') && is_temp(&String::from_utf8_lossy(name)) {
            out.temps += 1;
            continue;
        }
        let regular = entry
            .file_type()
            .map_err(io_err("inspect", &entry.path()))?
            .is_file();
        if regular && name.len() == HEX_LEN - 2 {
            hex[2..].copy_from_slice(name);
            if let Ok(id) = Id::from_hex_bytes(&hex) {
                out.ids.push(id);
                continue;
            }
        }
        out.strays.push(entry.path());
    }
    Ok(out)
}

/// The `.<name>.tmp.<pid>.<seq>` temp names both tools use.
fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp.")
}

/// The sorted table of present ids, with the first 8 bytes of each as a
/// number: lookups search those (one word compare each, cache-dense) and
/// compare whole ids only where the prefix matches.
struct Ids {
    list: Vec<Id>,
    keys: Vec<u64>,
}

impl Ids {
    fn new(list: Vec<Id>) -> Ids {
        let keys = list.iter().map(key).collect();
        Ids { list, keys }
    }

    /// The index of `id`, if present.
    fn find(&self, id: &Id) -> Option<usize> {
        let k = key(id);
        let mut i = self.keys.partition_point(|x| *x < k);
        while self.keys.get(i) == Some(&k) {
            if self.list[i] == *id {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

impl std::ops::Deref for Ids {
    type Target = [Id];

    fn deref(&self) -> &[Id] {
        &self.list
    }
}

fn key(id: &Id) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(b)
}

/// Objects per scan job.
const SCAN_CHUNK: usize = 256;
/// A link target with this bit set is an index into its part's missing list.
const MISSING: u32 = 1 << 31;

/// Link constraints: 0 any kind, 1..=7 exactly that type byte, and two sets.
const WANT_ANY: u8 = 0;
const WANT_FILE: u8 = 0x10;
const WANT_COMMIT: u8 = 0x11;
const WANT_TREE: u8 = ObjectType::Tree as u8;
const WANT_BLOB: u8 = ObjectType::Blob as u8;

fn satisfies(want: u8, kind: u8) -> bool {
    match want {
        WANT_ANY => true,
        WANT_FILE => kind == ObjectType::Blob as u8 || kind == ObjectType::ChunkedBlob as u8,
        WANT_COMMIT => kind == ObjectType::Commit as u8 || kind == ObjectType::Remix as u8,
        exact => kind == exact,
    }
}

fn want_name(want: u8) -> &'static str {
    match want {
        WANT_ANY => "any object",
        WANT_FILE => "a blob or chunked blob",
        WANT_COMMIT => "a commit",
        t => match ObjectType::from_byte(t) {
            Ok(ObjectType::Blob) => "a blob",
            Ok(ObjectType::Tree) => "a tree",
            Ok(ObjectType::Commit) => "a commit",
            Ok(ObjectType::Remix) => "a remix",
            Ok(ObjectType::ChunkedBlob) => "a chunked blob",
            Ok(ObjectType::Tag) => "a tag",
            _ => "an unknown type",
        },
    }
}

fn kind_name(kind: u8) -> &'static str {
    ObjectType::from_byte(kind).map_or("object", ObjectType::name)
}

/// What one scan job found: per object its kind (0: unusable), a blob's
/// length, and its links; problems and unsigned objects by local index.
#[derive(Default)]
struct Scanned {
    kinds: Vec<u8>,
    sizes: Vec<u32>,
    /// Edge offsets, one more than objects.
    offs: Vec<u32>,
    targets: Vec<u32>,
    wants: Vec<u8>,
    /// Link targets not in the store, by `MISSING | index`.
    missing: Vec<Id>,
    totals: Vec<(u32, u64)>,
    found: Vec<(u32, ProblemKind, String)>,
    unsigned: Vec<u32>,
    bytes: u64,
}

fn scan_part(
    store: &Store,
    all: &Ids,
    part: &[Id],
    buf: &mut Vec<u8>,
    verifier: &mut sign::Verifier,
) -> Scanned {
    let mut s = Scanned {
        kinds: Vec::with_capacity(part.len()),
        sizes: Vec::with_capacity(part.len()),
        offs: Vec::with_capacity(part.len() + 1),
        ..Scanned::default()
    };
    s.offs.push(0);
    let mut local_missing: HashMap<Id, u32> = HashMap::new();
    for (i, id) in part.iter().enumerate() {
        let mut size = 0u32;
        let at = Scan {
            store,
            all,
            id,
            local: i as u32,
        };
        let kind = match scan_object(&at, buf, verifier, &mut s, &mut local_missing) {
            Ok((kind, blob_len)) => {
                size = blob_len;
                kind
            }
            Err((kind, detail)) => {
                s.found.push((i as u32, kind, detail));
                0
            }
        };
        s.kinds.push(kind);
        s.sizes.push(size);
        s.offs.push(s.targets.len() as u32);
    }
    s
}

type ScanResult = Result<(u8, u32), (ProblemKind, String)>;

/// One object to scan: where, which, and its index in its job.
struct Scan<'a> {
    store: &'a Store,
    all: &'a Ids,
    id: &'a Id,
    local: u32,
}

/// Read, decode and re-hash one object file; record its links and signature.
fn scan_object(
    at: &Scan<'_>,
    buf: &mut Vec<u8>,
    verifier: &mut sign::Verifier,
    s: &mut Scanned,
    local_missing: &mut HashMap<Id, u32>,
) -> ScanResult {
    read_object_file(at, buf)?;
    s.bytes += buf.len() as u64;
    let id = at.id;
    let corrupt = |e: crate::mkit::object::ObjectError| {
        (ProblemKind::Corrupt, format!("does not decode: {e}"))
    };
    let t = decode_prologue(buf).map_err(corrupt)?;
    // A blob is the prologue, a length and that many bytes: check the layout
    // and hash in place rather than copy the data out through the decoder.
    if t == ObjectType::Blob && blob_layout_ok(buf) {
        let found = id::flat_id(buf);
        if found != *id {
            return Err(mismatch("blob", &found));
        }
        return Ok((t as u8, (buf.len() - BLOB_HEADER) as u32));
    }
    let obj = Object::decode(buf).map_err(corrupt)?;
    let Some(found) = store::stored_id(&obj, buf) else {
        return Err((
            ProblemKind::Delta,
            "a delta is stored as a loose object (deltas are pack-only)".to_owned(),
        ));
    };
    if found != *id {
        return Err(mismatch(obj.object_type().name(), &found));
    }
    record_links(&obj, at, s, local_missing);
    check_signature(&obj, at.local, verifier, s);
    let blob_len = match &obj {
        Object::Blob(b) => b.data.len() as u32,
        _ => 0,
    };
    Ok((t as u8, blob_len))
}

/// Read the object file of `at` into `buf`, refusing one over the object
/// size limit before reading it.
fn read_object_file(at: &Scan<'_>, buf: &mut Vec<u8>) -> Result<(), (ProblemKind, String)> {
    let path = at.store.path_for(at.id);
    let unreadable = |what: &str, e: io::Error| {
        (
            ProblemKind::Unreadable,
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
    let mut file = File::open(&path).map_err(|e| unreadable("open", e))?;
    let len = file.metadata().map_err(|e| unreadable("stat", e))?.len();
    if len > MAX_OBJECT_SIZE as u64 {
        return Err((
            ProblemKind::TooLarge,
            format!("the file is {len} bytes, over the 1 GiB object limit"),
        ));
    }
    buf.clear();
    buf.reserve(len as usize);
    file.read_to_end(buf).map_err(|e| unreadable("read", e))?;
    Ok(())
}

/// Record the links of `obj` (each with the kind its target must have) as
/// node indices, or as `MISSING | n` for a target the store lacks; and a
/// chunked blob's declared total.
fn record_links(
    obj: &Object,
    at: &Scan<'_>,
    s: &mut Scanned,
    local_missing: &mut HashMap<Id, u32>,
) {
    let mut link = |target: &Id, want: u8| {
        let t = match at.all.find(target) {
            Some(i) => i as u32,
            None => {
                let next = s.missing.len() as u32;
                let m = *local_missing.entry(*target).or_insert(next);
                if m == next {
                    s.missing.push(*target);
                }
                MISSING | m
            }
        };
        s.targets.push(t);
        s.wants.push(want);
    };
    match obj {
        Object::Blob(_) | Object::Delta(_) => {}
        Object::Tree(t) => {
            for e in &t.entries {
                let want = if e.mode == EntryMode::Tree {
                    WANT_TREE
                } else {
                    WANT_FILE
                };
                link(&e.id, want);
            }
        }
        Object::Commit(c) => {
            link(&c.tree, WANT_TREE);
            for p in &c.parents {
                link(p, WANT_COMMIT);
            }
        }
        // Remix sources name commits of other repositories: not followed.
        Object::Remix(r) => {
            link(&r.tree, WANT_TREE);
            for p in &r.parents {
                link(p, WANT_COMMIT);
            }
        }
        Object::ChunkedBlob(c) => {
            for chunk in &c.chunks {
                link(chunk, WANT_BLOB);
            }
            s.totals.push((at.local, c.total_size));
        }
        Object::Tag(t) => link(&t.target, t.target_type as u8),
    }
}

/// Verify the signature of `obj` (object `local` of its job): a bad one is
/// a problem, an all-zero one is listed as unsigned.
fn check_signature(obj: &Object, local: u32, verifier: &mut sign::Verifier, s: &mut Scanned) {
    match verifier.verify_object(obj) {
        Ok(Some(SignatureStatus::Invalid)) => {
            let signer = match obj {
                Object::Commit(c) => c.signer,
                Object::Remix(r) => r.signer,
                Object::Tag(t) => t.signer,
                _ => [0; 32],
            };
            s.found.push((
                local,
                ProblemKind::BadSignature,
                format!(
                    "{} signature does not verify under its signer {}",
                    obj.object_type().name(),
                    Id(signer).to_hex()
                ),
            ));
        }
        Ok(Some(SignatureStatus::Unsigned)) => s.unsigned.push(local),
        Ok(_) => {}
        Err(e) => s.found.push((local, ProblemKind::Corrupt, e.to_string())),
    }
}

fn mismatch(kind: &str, found: &Id) -> (ProblemKind, String) {
    (
        ProblemKind::HashMismatch,
        format!("the file holds a {kind} whose id is {}", found.to_hex()),
    )
}

/// Prologue and the 4-byte length.
const BLOB_HEADER: usize = PROLOGUE_LEN + 4;

/// True when `bytes`, whose prologue says blob, hold exactly the declared
/// length after the header (what the decoder requires of a blob).
fn blob_layout_ok(bytes: &[u8]) -> bool {
    bytes.len() >= BLOB_HEADER
        && u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize
            == bytes.len() - BLOB_HEADER
}

// ---------------------------------------------------------------------------
// The graph and the walk
// ---------------------------------------------------------------------------

/// One scan job's links, kept where they were made (no global copy).
struct Part {
    offs: Vec<u32>,
    targets: Vec<u32>,
    wants: Vec<u8>,
}

/// The compact object graph: nodes `0..n` are the present objects in id
/// order, `n..` the missing ones.
struct Graph {
    n: usize,
    kinds: Vec<u8>,
    sizes: Vec<u32>,
    parts: Vec<Part>,
    missing: Vec<Id>,
    missing_index: HashMap<Id, u32>,
    totals: HashMap<u32, u64>,
}

impl Graph {
    fn build(
        ids: &Ids,
        scanned: Vec<Scanned>,
        report: &mut FsckReport,
        problems: &mut Vec<Problem>,
    ) -> Graph {
        let n = ids.len();
        let mut g = Graph {
            n,
            kinds: Vec::with_capacity(n),
            sizes: Vec::with_capacity(n),
            parts: Vec::with_capacity(scanned.len()),
            missing: Vec::new(),
            missing_index: HashMap::new(),
            totals: HashMap::new(),
        };
        for (p, mut s) in scanned.into_iter().enumerate() {
            let base = p * SCAN_CHUNK;
            for t in &mut s.targets {
                if *t & MISSING != 0 {
                    *t = g.missing_node(&s.missing[(*t & !MISSING) as usize]);
                }
            }
            for (local, kind, detail) in s.found {
                problems.push(Problem {
                    subject: Subject::Object(ids[base + local as usize]),
                    kind,
                    detail,
                    reached_from: Vec::new(),
                });
            }
            report
                .unsigned
                .extend(s.unsigned.iter().map(|l| ids[base + *l as usize]));
            for (local, total) in s.totals {
                g.totals.insert((base + local as usize) as u32, total);
            }
            report.bytes += s.bytes;
            for k in &s.kinds {
                let c = &mut report.kinds;
                match ObjectType::from_byte(*k) {
                    Ok(ObjectType::Blob) => c.blob += 1,
                    Ok(ObjectType::Tree) => c.tree += 1,
                    Ok(ObjectType::Commit) => c.commit += 1,
                    Ok(ObjectType::Remix) => c.remix += 1,
                    Ok(ObjectType::ChunkedBlob) => c.chunked_blob += 1,
                    Ok(ObjectType::Tag) => c.tag += 1,
                    _ => {}
                }
            }
            g.kinds.extend_from_slice(&s.kinds);
            g.sizes.extend_from_slice(&s.sizes);
            g.parts.push(Part {
                offs: s.offs,
                targets: s.targets,
                wants: s.wants,
            });
        }
        g
    }

    fn missing_node(&mut self, id: &Id) -> u32 {
        if let Some(m) = self.missing_index.get(id) {
            return *m;
        }
        let node = (self.n + self.missing.len()) as u32;
        self.missing.push(*id);
        self.missing_index.insert(*id, node);
        node
    }

    /// The node of `id`, adding it as missing when the store lacks it.
    fn node_of(&mut self, ids: &Ids, id: &Id) -> u32 {
        match ids.find(id) {
            Some(i) => i as u32,
            None => self.missing_node(id),
        }
    }

    fn lookup(&self, ids: &Ids, id: &Id) -> Option<u32> {
        match ids.find(id) {
            Some(i) => Some(i as u32),
            None => self.missing_index.get(id).copied(),
        }
    }

    fn len(&self) -> usize {
        self.n + self.missing.len()
    }

    /// The kind of a node (0: unusable or missing).
    fn kind(&self, node: u32) -> u8 {
        self.kinds.get(node as usize).copied().unwrap_or(0)
    }

    fn edges(&self, node: u32) -> (&[u32], &[u8]) {
        let node = node as usize;
        if node >= self.n {
            return (&[], &[]);
        }
        let part = &self.parts[node / SCAN_CHUNK];
        let i = node % SCAN_CHUNK;
        let (a, b) = (part.offs[i] as usize, part.offs[i + 1] as usize);
        (&part.targets[a..b], &part.wants[a..b])
    }

    /// Depth-first from every root: reachability, every link of every
    /// reachable object checked, and which nodes lead to an object of
    /// interest (damaged, or the twin of a damaged raw file).
    fn walk(
        &self,
        ids: &Ids,
        roots: &[u32],
        raw_interest: &[(usize, u32)],
        problems: &mut Vec<Problem>,
    ) -> Walk {
        let mut w = Walk {
            flags: self.interest_flags(ids, raw_interest, problems),
            postorder: Vec::new(),
            reachable: 0,
            bad_links: Vec::new(),
        };
        // For each missing node: the first reachable object naming it, and how many do.
        let mut named_by: HashMap<u32, (u32, usize)> = HashMap::new();
        let mut stack: Vec<(u32, u32)> = Vec::new();
        for &root in roots {
            if w.flags[root as usize] & VISITED != 0 {
                continue;
            }
            w.flags[root as usize] |= VISITED;
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let (node, pos) = *top;
                let (targets, _) = self.edges(node);
                if (pos as usize) < targets.len() {
                    top.1 += 1;
                    let child = targets[pos as usize];
                    if w.flags[child as usize] & VISITED == 0 {
                        w.flags[child as usize] |= VISITED;
                        stack.push((child, 0));
                    }
                    continue;
                }
                stack.pop();
                self.leave(ids, node, &mut w, &mut named_by, problems);
            }
        }
        self.report_missing(ids, &w.flags, &named_by, problems);
        w
    }

    /// The walk's starting flags: every damaged object, every damaged raw
    /// file's twin and every missing node is of interest.
    fn interest_flags(
        &self,
        ids: &Ids,
        raw_interest: &[(usize, u32)],
        problems: &[Problem],
    ) -> Vec<u8> {
        let mut flags = vec![0u8; self.len()];
        for p in problems {
            if let Subject::Object(id) = &p.subject
                && let Some(node) = self.lookup(ids, id)
            {
                flags[node as usize] |= INTEREST;
            }
        }
        for (_, node) in raw_interest {
            flags[*node as usize] |= INTEREST;
        }
        for f in &mut flags[self.n..] {
            *f |= INTEREST;
        }
        flags
    }

    /// Settle `node` once all its children are: count it, check each of its
    /// links against the kind it wants (and a chunked blob's total against
    /// its chunks), note who names a missing node, and mark it as leading
    /// to an object of interest when it or a child does.
    fn leave(
        &self,
        ids: &Ids,
        node: u32,
        w: &mut Walk,
        named_by: &mut HashMap<u32, (u32, usize)>,
        problems: &mut Vec<Problem>,
    ) {
        if (node as usize) < self.n {
            w.reachable += 1;
        }
        w.postorder.push(node);
        let flags = &mut w.flags;
        let mut reach = flags[node as usize] & INTEREST != 0;
        let (targets, wants) = self.edges(node);
        let mut chunk_sum = Some(0u64);
        for (pos, (&t, &want)) in targets.iter().zip(wants).enumerate() {
            if flags[t as usize] & REACHES != 0 {
                reach = true;
            }
            if t as usize >= self.n {
                let e = named_by.entry(t).or_insert((node, 0));
                e.1 += 1;
                chunk_sum = None;
                continue;
            }
            let kind = self.kinds[t as usize];
            if kind == 0 {
                chunk_sum = None;
                continue;
            }
            if kind == ObjectType::Blob as u8 {
                chunk_sum = chunk_sum.map(|s| s + u64::from(self.sizes[t as usize]));
            }
            if !satisfies(want, kind) {
                chunk_sum = None;
                reach = true;
                flags[node as usize] |= INTEREST;
                w.bad_links.push(BadLink {
                    node,
                    pos,
                    target: ids[t as usize],
                    want,
                    kind,
                });
            }
        }
        if let (Some(total), Some(sum)) = (self.totals.get(&node), chunk_sum)
            && *total != sum
        {
            reach = true;
            flags[node as usize] |= INTEREST;
            problems.push(Problem {
                subject: Subject::Object(ids[node as usize]),
                kind: ProblemKind::ChunkSize,
                detail: format!(
                    "declares {total} bytes but its {} chunks hold {sum}",
                    targets.len()
                ),
                reached_from: Vec::new(),
            });
        }
        if reach {
            flags[node as usize] |= REACHES;
        }
    }

    /// A problem for every missing object a root reaches, naming the first
    /// object that names it. Missing objects no root reaches were named
    /// only by unreachable objects, whose links are not checked: they are
    /// not reported.
    fn report_missing(
        &self,
        ids: &Ids,
        flags: &[u8],
        named_by: &HashMap<u32, (u32, usize)>,
        problems: &mut Vec<Problem>,
    ) {
        for (m, id) in self.missing.iter().enumerate() {
            let node = (self.n + m) as u32;
            if flags[node as usize] & VISITED == 0 {
                continue;
            }
            let detail = match named_by.get(&node) {
                Some((parent, count)) => {
                    let pk = kind_name(self.kinds[*parent as usize]);
                    let more = if *count > 1 {
                        format!(" and {} more", count - 1)
                    } else {
                        String::new()
                    };
                    format!(
                        "not in the store; named by {pk} {}{more}",
                        ids[*parent as usize].to_hex()
                    )
                }
                None => "not in the store; named by a ref".to_owned(),
            };
            problems.push(Problem {
                subject: Subject::Object(*id),
                kind: ProblemKind::Missing,
                detail,
                reached_from: Vec::new(),
            });
        }
    }

    /// For every node that leads to an object of interest, the set of roots
    /// that reach it: one bit per root, propagated parents-first over that
    /// subgraph only.
    fn roots_reaching(&self, walk: &Walk, roots: &[u32]) -> Reach {
        let words = roots.len().div_ceil(64).max(1);
        let mut row_of: HashMap<u32, usize> = HashMap::new();
        // Reverse postorder is a topological order (parents first).
        let order: Vec<u32> = walk
            .postorder
            .iter()
            .rev()
            .copied()
            .filter(|n| walk.flags[*n as usize] & REACHES != 0)
            .collect();
        for (i, n) in order.iter().enumerate() {
            row_of.insert(*n, i);
        }
        let mut bits = vec![0u64; order.len() * words];
        for (r, node) in roots.iter().enumerate() {
            if let Some(row) = row_of.get(node) {
                bits[row * words + r / 64] |= 1 << (r % 64);
            }
        }
        let mut row = vec![0u64; words];
        for (i, node) in order.iter().enumerate() {
            row.copy_from_slice(&bits[i * words..(i + 1) * words]);
            for t in self.edges(*node).0 {
                if let Some(c) = row_of.get(t) {
                    for (w, b) in row.iter().enumerate() {
                        bits[c * words + w] |= b;
                    }
                }
            }
        }
        Reach {
            words,
            row_of,
            bits,
        }
    }
}

const VISITED: u8 = 1;
const INTEREST: u8 = 2;
const REACHES: u8 = 4;

struct Walk {
    flags: Vec<u8>,
    postorder: Vec<u32>,
    reachable: u64,
    bad_links: Vec<BadLink>,
}

/// A link of a reachable object to an object of another kind than declared.
struct BadLink {
    node: u32,
    pos: usize,
    target: Id,
    want: u8,
    kind: u8,
}

struct Reach {
    words: usize,
    row_of: HashMap<u32, usize>,
    bits: Vec<u64>,
}

impl Reach {
    fn names(&self, node: u32, roots: &[Root]) -> Vec<String> {
        let Some(row) = self.row_of.get(&node) else {
            return Vec::new();
        };
        let bits = &self.bits[row * self.words..(row + 1) * self.words];
        let mut out: Vec<String> = (0..roots.len())
            .filter(|r| bits[r / 64] & (1 << (r % 64)) != 0)
            .map(|r| roots[r].name.clone())
            .collect();
        // Refs and `HEAD` first, then the states' records, each by name.
        out.sort_by(|a, b| (a.starts_with("git/"), a).cmp(&(b.starts_with("git/"), b)));
        out.dedup();
        out
    }
}

/// A wrong-kind problem in words. The object holding the link is read
/// again for the words (an entry's name): only damaged objects are.
fn bad_link_problem(store: &Store, ids: &Ids, graph: &Graph, b: &BadLink) -> Problem {
    let id = ids[b.node as usize];
    let label = match store.read(&id) {
        Ok(Object::Tree(t)) => t.entries.get(b.pos).map(|e| {
            let mode = match e.mode {
                EntryMode::Tree => "tree",
                EntryMode::Blob => "file",
                EntryMode::Executable => "executable",
                EntryMode::Symlink => "symlink",
            };
            format!("entry {:?} (mode {mode})", String::from_utf8_lossy(&e.name))
        }),
        Ok(Object::Commit(_) | Object::Remix(_)) => Some(if b.pos == 0 {
            "its tree".to_owned()
        } else {
            format!("parent #{}", b.pos)
        }),
        Ok(Object::Tag(_)) => Some("its target".to_owned()),
        Ok(Object::ChunkedBlob(_)) => Some(format!("chunk #{}", b.pos)),
        _ => None,
    }
    .unwrap_or_else(|| format!("link #{}", b.pos));
    Problem {
        subject: Subject::Object(id),
        kind: ProblemKind::WrongKind,
        detail: format!(
            "{} {label}: {} should be {} but is a {}",
            kind_name(graph.kind(b.node)),
            b.target.to_hex(),
            want_name(b.want),
            kind_name(b.kind)
        ),
        reached_from: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// State directories
// ---------------------------------------------------------------------------

struct StateMaps {
    name: String,
    dir: PathBuf,
    inverse: state::Sha1ToBlake,
    intact: bool,
}

/// Map lines whose mkit id the store lacks (warnings: the map is a cache).
fn check_map(s: &StateMaps, ids: &Ids, report: &mut FsckReport) {
    let mut absent: Vec<Id> = s
        .inverse
        .iter()
        .filter(|(_, b)| ids.find(b).is_none())
        .map(|(_, b)| *b)
        .collect();
    report.map_entries += s.inverse.len() as u64;
    absent.sort_unstable();
    absent.dedup();
    if !absent.is_empty() {
        let shown: Vec<String> = absent.iter().take(5).map(Id::to_hex).collect();
        report.warnings.push(Warning {
            kind: WarningKind::MapAbsent,
            detail: format!(
                "state {}: {} map entr{} name objects the store lacks (the map is a cache; e.g. {})",
                s.name,
                absent.len(),
                if absent.len() == 1 { "y" } else { "ies" },
                shown.join(", ")
            ),
        });
    }
    if !s.intact {
        report.warnings.push(Warning {
            kind: WarningKind::MapTorn,
            detail: format!(
                "state {}: {} has lines that do not parse (a torn append; the next run rebuilds what it needs)",
                s.name,
                s.dir.join(state::map::MAP_FILE).display()
            ),
        });
    }
}

struct RawChecked {
    files: u64,
    problems: Vec<Problem>,
}

/// Re-hash every retained raw file of one state against its name.
fn check_raw(name: &str, dir: &Path, warnings: &mut Vec<Warning>) -> Result<RawChecked, FsckError> {
    let root = dir.join(state::raw::RAW_DIR);
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(RawChecked {
                files: 0,
                problems: Vec::new(),
            });
        }
        Err(e) => return Err(IoError::new("list", &root, e).into()),
    };
    let mut files: Vec<(Sha1, PathBuf)> = Vec::new();
    for shard in entries {
        let shard = shard.map_err(io_err("list", &root))?;
        let path = shard.path();
        let prefix = shard.file_name();
        let Some(prefix) = prefix.to_str().filter(|p| {
            p.len() == 2
                && crate::hex::is_lower(p.as_bytes())
                && shard.file_type().is_ok_and(|t| t.is_dir())
        }) else {
            if !shard.file_name().to_string_lossy().starts_with('.') {
                warnings.push(stray(&path, "not a raw shard directory"));
            }
            continue;
        };
        for f in fs::read_dir(&path).map_err(io_err("list", &path))? {
            let f = f.map_err(io_err("list", &path))?;
            let fname = f.file_name();
            let fname = fname.to_string_lossy();
            if fname.starts_with('.') {
                continue;
            }
            match Sha1::from_hex(&format!("{prefix}{fname}")) {
                Ok(sha1) if f.file_type().is_ok_and(|t| t.is_file()) => {
                    files.push((sha1, f.path()));
                }
                _ => warnings.push(stray(&f.path(), "not a raw file")),
            }
        }
    }
    files.sort_unstable();
    let problems: Vec<Problem> = files
        .par_iter()
        .filter_map(|(sha1, path)| {
            check_raw_file(sha1, path)
                .err()
                .map(|(kind, detail)| Problem {
                    subject: Subject::Raw {
                        state: name.to_owned(),
                        sha1: *sha1,
                    },
                    kind,
                    detail,
                    reached_from: Vec::new(),
                })
        })
        .collect();
    Ok(RawChecked {
        files: files.len() as u64,
        problems,
    })
}

fn check_raw_file(sha1: &Sha1, path: &Path) -> Result<(), (ProblemKind, String)> {
    let bytes = fs::read(path).map_err(|e| {
        (
            ProblemKind::Unreadable,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let (kind, body) = git_sha1::parse_frame(&bytes).map_err(|reason| {
        let e = state::StateError::BadRawFrame {
            sha1: sha1.to_hex(),
            reason,
        };
        (ProblemKind::BadRaw, e.to_string())
    })?;
    let found =
        git_sha1::object_id(kind, body).map_err(|e| (ProblemKind::BadRaw, e.to_string()))?;
    if found != *sha1 {
        return Err((
            ProblemKind::BadRaw,
            format!(
                "{} holds a {} whose sha1 is {}",
                path.display(),
                kind.name(),
                found.to_hex()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_fast_path_accepts_exactly_what_the_decoder_accepts() {
        let mut good = crate::mkit::object::blob_header(3).to_vec();
        good.extend_from_slice(b"abc");
        let mut cases = vec![good.clone(), good[..9].to_vec(), good[..12].to_vec()];
        let mut long = good.clone();
        long.push(0);
        cases.push(long);
        let mut lying = good.clone();
        lying[6] = 200;
        cases.push(lying);
        cases.push(crate::mkit::object::blob_header(0).to_vec());
        for c in &cases {
            let prologue_blob = decode_prologue(c).is_ok_and(|t| t == ObjectType::Blob);
            assert_eq!(
                prologue_blob && blob_layout_ok(c),
                Object::decode(c).is_ok(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn id_lookup_finds_every_id_among_shared_prefixes() {
        // Groups of ten ids share their first 8 bytes.
        let mut list: Vec<Id> = (0..50u8)
            .map(|i| {
                let mut b = [0u8; 32];
                b[0] = i / 10;
                b[31] = i;
                Id(b)
            })
            .collect();
        list.sort();
        let ids = Ids::new(list.clone());
        for (i, id) in list.iter().enumerate() {
            assert_eq!(ids.find(id), Some(i));
        }
        let mut absent = list[12];
        absent.0[30] = 9;
        assert_eq!(ids.find(&absent), None);
        assert_eq!(ids.find(&Id([0xff; 32])), None);
        assert_eq!(Ids::new(Vec::new()).find(&Id::ZERO), None);
    }

    #[test]
    fn wants_match_their_kinds() {
        let (blob, tree, commit, remix, chunked, tag) = (1u8, 2, 3, 4, 5, 7);
        assert!(satisfies(WANT_FILE, blob) && satisfies(WANT_FILE, chunked));
        assert!(!satisfies(WANT_FILE, tree));
        assert!(satisfies(WANT_COMMIT, commit) && satisfies(WANT_COMMIT, remix));
        assert!(!satisfies(WANT_COMMIT, tag));
        assert!(satisfies(WANT_TREE, tree) && !satisfies(WANT_TREE, blob));
        assert!(satisfies(WANT_BLOB, blob) && !satisfies(WANT_BLOB, chunked));
        assert!(satisfies(tag, tag) && !satisfies(commit, remix));
        assert!((1..=7).all(|k| satisfies(WANT_ANY, k)));
    }
}
