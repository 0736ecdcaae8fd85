//! Checkout: write an mkit tree into a worktree, safely, and the index that
//! makes the reference's `mkit status` call the tree clean.
//!
//! Checkout is a security boundary: the tree comes from an upstream we do not
//! trust. It runs in two phases, so nothing is written for a tree that would
//! be refused:
//!
//! 1. [`plan`] flattens the tree into a list of files, symlinks and their ids,
//!    refusing any name that could leave the worktree or reach `.mkit/`:
//!    `.`/`..`, separators, NUL, the SPEC-OBJECTS §4.1 names, and every alias
//!    of `.mkit` and `.git` a filesystem may fold onto them (ASCII and Unicode
//!    case, ignorable code points, trailing dots and spaces, NTFS streams and
//!    8.3 short names). Symlink targets must be relative, `..`-free and not
//!    into `.mkit`/`.git`.
//! 2. [`apply`] writes the plan. It never follows a symlink: every directory
//!    on a path is checked with `lstat` before anything is created in it, and
//!    files are created under fresh temp names with `O_NOFOLLOW` and renamed
//!    into place. A path held by something we did not write (an untracked
//!    file, a symlink where a directory should be) refuses the checkout.
//!    The files are flushed (one `syncfs`) before the index, the pointer that
//!    vouches for them, is written; no temp file is left behind on any error.
//!
//! [`check_clean`] is the guard `pull` runs first: staged changes, local
//! edits and untracked files in the way refuse the update, with the
//! reference's messages.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::durable::{self, IoError, io_err};
use crate::mkit::Id;
use crate::mkit::content;
use crate::mkit::index::{self, EntryStatus, Index, IndexEntry, IndexError, StatCache};
use crate::mkit::object::{Object, blob_id, entry_name_rule};
use crate::mkit::refs::{self, Head, RefCondition, RefError};
use crate::mkit::repo::Repo;
use crate::mkit::store::{Store, StoreError};

/// Trees nested deeper than this are refused (the reference's bound).
pub const MAX_TREE_DEPTH: usize = 128;
/// The worktree lock the reference takes for index/worktree changes.
pub const WORKTREE_LOCK: &str = "worktree.lock";
/// How long to wait for another holder of the worktree lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a checkout reads objects: the store, or an in-memory map in tests
/// (which lets a test hand the checkout trees no decoder would accept).
pub trait ObjectSource {
    /// The object with this id.
    fn object(&self, id: &Id) -> Result<Object, CheckoutError>;
}

impl ObjectSource for Store {
    fn object(&self, id: &Id) -> Result<Object, CheckoutError> {
        Ok(self.read(id)?)
    }
}

impl ObjectSource for HashMap<Id, Object> {
    fn object(&self, id: &Id) -> Result<Object, CheckoutError> {
        self.get(id)
            .cloned()
            .ok_or(CheckoutError::Store(StoreError::NotFound(*id)))
    }
}

/// What a planned path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file (mode 0644 under the usual umask).
    Regular,
    /// A regular file with mode 0755.
    Executable,
    /// A symbolic link.
    Symlink,
}

impl FileKind {
    /// The index status for this kind.
    pub fn status(self) -> EntryStatus {
        match self {
            FileKind::Regular => EntryStatus::Blob,
            FileKind::Executable => EntryStatus::Executable,
            FileKind::Symlink => EntryStatus::Symlink,
        }
    }
}

/// One path of a planned checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Repository-relative path, `/`-separated, every segment checked.
    pub path: String,
    /// File, executable or symlink.
    pub kind: FileKind,
    /// The blob or chunked blob (for a symlink: the blob of its target).
    pub id: Id,
    /// The checked target of a symlink.
    pub target: Option<String>,
}

/// A tree flattened and checked, in tree order (the order mkit's index uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The paths to write.
    pub files: Vec<PlannedFile>,
}

/// What a checkout did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckoutOutcome {
    /// Files and symlinks written.
    pub written: usize,
    /// Paths left as they were (unchanged between the old and new tree).
    pub kept: usize,
    /// Tracked paths removed because the new tree drops them.
    pub removed: usize,
}

/// Why a checkout was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// A name in the tree that could escape the worktree or alias `.mkit`.
    #[error(
        "refusing to check out {path:?}: {reason} (a hostile or corrupt tree; nothing was written)"
    )]
    HostileName {
        /// The path, as far as it could be spelled.
        path: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A symlink whose target could lead outside the worktree or into `.mkit`.
    #[error("refusing to check out symlink {path:?} -> {target:?}: {reason} (nothing was written)")]
    HostileSymlink {
        /// The symlink's path.
        path: String,
        /// Its target.
        target: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Trees nested too deeply.
    #[error("tree at {path:?} is nested deeper than {MAX_TREE_DEPTH} levels")]
    TooDeep {
        /// Where the bound was hit.
        path: String,
    },
    /// An object of the wrong type where the tree says otherwise.
    #[error("{path:?}: object {id} is a {found}, expected a {expected}")]
    WrongType {
        /// The path.
        path: String,
        /// The object.
        id: Id,
        /// What it is.
        found: &'static str,
        /// What the tree entry promised.
        expected: &'static str,
    },
    /// A chunked blob whose chunks do not add up to its declared size.
    #[error("{path:?}: chunked blob {id} reassembles to {found} bytes, not {expected}")]
    ChunkSize {
        /// The path.
        path: String,
        /// The chunked blob.
        id: Id,
        /// Its declared size.
        expected: u64,
        /// What its chunks add up to.
        found: u64,
    },
    /// Something we did not write is where the checkout must write.
    #[error("restore would overwrite untracked path '{path}'; move or remove it first")]
    Untracked {
        /// The path in the way.
        path: String,
    },
    /// The index differs from `HEAD` (changes were staged).
    #[error("restore would overwrite staged changes; commit, stash, or reset '{path}' first")]
    Staged {
        /// The first staged path.
        path: String,
    },
    /// A tracked file differs from the index.
    #[error("restore would overwrite local changes; commit, stash, or reset '{path}' first")]
    Modified {
        /// The first modified path.
        path: String,
    },
    /// A ref does not hold a commit.
    #[error("{name} points at {id}, which is not a commit")]
    NotACommit {
        /// The ref.
        name: String,
        /// What it holds.
        id: Id,
    },
    /// The branch to check out does not exist.
    #[error("{name} does not exist; nothing to check out")]
    NoBranch {
        /// The ref.
        name: String,
    },
    /// Another mkit command holds the worktree lock.
    #[error("worktree is busy ({} is held by another mkit command); retry when it finishes", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// Reading objects failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A ref could not be read or written.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// Code points HFS+ ignores when comparing names (git's list), which could
/// make `.mk\u{200c}it` open `.mkit`.
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

/// True when some filesystem could resolve `name` to `.mkit` or `.git`:
/// ASCII or Unicode case, HFS+ ignorable code points, Windows' trailing dots
/// and spaces, NTFS alternate streams (`.git::$INDEX_ALLOCATION`) and 8.3
/// short names (`MKIT~1`, `GIT~1`).
pub fn is_metadata_alias(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|&c| !is_ignorable(c))
        .flat_map(char::to_lowercase)
        .collect();
    let base = folded.split(':').next().unwrap_or("");
    let base = base.trim_end_matches(['.', ' ']);
    if base == ".mkit" || base == ".git" {
        return true;
    }
    let short = |stem: &str| {
        base.strip_prefix(stem)
            .and_then(|rest| rest.strip_prefix('~'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    short("mkit") || short("git")
}

/// Check one tree-entry name; returns it as `&str` when it is safe to create.
fn check_name<'a>(parent: &str, name: &'a [u8]) -> Result<&'a str, CheckoutError> {
    let shown = || join(parent, &String::from_utf8_lossy(name));
    let text = std::str::from_utf8(name).map_err(|_| CheckoutError::HostileName {
        path: shown(),
        reason: "the name is not UTF-8".to_owned(),
    })?;
    if let Some(rule) = entry_name_rule(name) {
        return Err(CheckoutError::HostileName {
            path: shown(),
            reason: format!("SPEC-OBJECTS §4.1: {rule}"),
        });
    }
    if is_metadata_alias(text) {
        return Err(CheckoutError::HostileName {
            path: shown(),
            reason: "the name is an alias of .mkit or .git on some filesystem".to_owned(),
        });
    }
    Ok(text)
}

/// Check a symlink target: non-empty UTF-8, relative, no `..` segment (so it
/// cannot point outside the worktree), and not into `.mkit` or `.git`.
fn check_target(path: &str, data: &[u8]) -> Result<String, CheckoutError> {
    let refuse = |target: &str, reason| CheckoutError::HostileSymlink {
        path: path.to_owned(),
        target: target.to_owned(),
        reason,
    };
    let target = std::str::from_utf8(data)
        .map_err(|_| refuse(&String::from_utf8_lossy(data), "the target is not UTF-8"))?;
    if target.is_empty() {
        return Err(refuse(target, "the target is empty"));
    }
    if target.starts_with('/') {
        return Err(refuse(target, "the target is absolute"));
    }
    if target.contains('\0') {
        return Err(refuse(target, "the target holds NUL"));
    }
    if target.split('/').any(|seg| seg == "..") {
        return Err(refuse(target, "the target climbs out with '..'"));
    }
    if target
        .split('/')
        .any(|seg| !seg.is_empty() && seg != "." && is_metadata_alias(seg))
    {
        return Err(refuse(target, "the target leads into .mkit or .git"));
    }
    Ok(target.to_owned())
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

fn type_name(obj: &Object) -> &'static str {
    obj.object_type().name()
}

// ---------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------

/// Flatten and check the tree `tree`: every name, every symlink target, the
/// index-path grammar; nothing is written.
pub fn plan(src: &dyn ObjectSource, tree: &Id) -> Result<Plan, CheckoutError> {
    let mut files = Vec::new();
    plan_tree(src, tree, "", 0, &mut files)?;
    Ok(Plan { files })
}

fn plan_tree(
    src: &dyn ObjectSource,
    id: &Id,
    prefix: &str,
    depth: usize,
    out: &mut Vec<PlannedFile>,
) -> Result<(), CheckoutError> {
    if depth > MAX_TREE_DEPTH {
        return Err(CheckoutError::TooDeep {
            path: prefix.to_owned(),
        });
    }
    let tree = match src.object(id)? {
        Object::Tree(t) => t,
        other => {
            return Err(CheckoutError::WrongType {
                path: prefix.to_owned(),
                id: *id,
                found: type_name(&other),
                expected: "tree",
            });
        }
    };
    let mut seen = HashSet::with_capacity(tree.entries.len());
    for entry in &tree.entries {
        let name = check_name(prefix, &entry.name)?;
        let path = join(prefix, name);
        if !seen.insert(name) {
            return Err(CheckoutError::HostileName {
                path,
                reason: "the name appears twice in one tree".to_owned(),
            });
        }
        if !index::valid_index_path(&path) {
            return Err(CheckoutError::HostileName {
                path,
                reason: "the path breaks the index grammar (too long?)".to_owned(),
            });
        }
        use crate::mkit::object::EntryMode;
        match entry.mode {
            EntryMode::Tree => plan_tree(src, &entry.id, &path, depth + 1, out)?,
            EntryMode::Blob | EntryMode::Executable => out.push(PlannedFile {
                path,
                kind: if entry.mode == EntryMode::Blob {
                    FileKind::Regular
                } else {
                    FileKind::Executable
                },
                id: entry.id,
                target: None,
            }),
            EntryMode::Symlink => {
                let data = match src.object(&entry.id)? {
                    Object::Blob(b) => b.data,
                    other => {
                        return Err(CheckoutError::WrongType {
                            path,
                            id: entry.id,
                            found: type_name(&other),
                            expected: "blob",
                        });
                    }
                };
                let target = check_target(&path, &data)?;
                out.push(PlannedFile {
                    path,
                    kind: FileKind::Symlink,
                    id: entry.id,
                    target: Some(target),
                });
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Looking at the worktree without following symlinks
// ---------------------------------------------------------------------------

/// What is at a worktree path, judged with `lstat` on every component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Nothing, and every parent is a real directory or missing.
    Nothing,
    /// A parent component is a file or symlink: the path cannot be reached
    /// without following it.
    BlockedAt(usize),
    /// A real directory.
    Dir,
    /// A regular file or a symlink (not followed).
    Leaf,
}

fn lstat(path: &Path) -> Result<Option<fs::Metadata>, IoError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(IoError::new("inspect", path, e)),
    }
}

/// Walk `path`'s components under `root` with `lstat`.
fn probe(root: &Path, path: &str) -> Result<Found, IoError> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut at = root.to_path_buf();
    for (i, seg) in segs.iter().enumerate() {
        at.push(seg);
        let Some(meta) = lstat(&at)? else {
            return Ok(Found::Nothing);
        };
        let last = i + 1 == segs.len();
        if meta.is_dir() {
            if last {
                return Ok(Found::Dir);
            }
        } else if last {
            return Ok(Found::Leaf);
        } else {
            return Ok(Found::BlockedAt(i + 1));
        }
    }
    Ok(Found::Nothing)
}

/// The worktree's `(kind, id)` at a path whose parents are real directories,
/// using the index's stat cache when it proves the file unchanged.
fn worktree_state(
    root: &Path,
    entry: &IndexEntry,
) -> Result<Option<(FileKind, Id, StatCache)>, IoError> {
    if probe(root, &entry.path)? != Found::Leaf {
        return Ok(None);
    }
    let abs = root.join(&entry.path);
    let Some(meta) = lstat(&abs)? else {
        return Ok(None);
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&abs).map_err(io_err("read link", &abs))?;
        use std::os::unix::ffi::OsStrExt;
        let id = blob_id(target.as_os_str().as_bytes());
        return Ok(Some((FileKind::Symlink, id, StatCache::default())));
    }
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(durable::oflags::NOFOLLOW)
        .open(&abs)
        .map_err(io_err("open", &abs))?;
    let meta = file.metadata().map_err(io_err("stat", &abs))?;
    let kind = if meta.permissions().mode() & 0o111 != 0 {
        FileKind::Executable
    } else {
        FileKind::Regular
    };
    let stat = StatCache::of(&meta);
    if kind.status() == entry.status && entry.stat.matches(&meta) {
        return Ok(Some((kind, entry.id, stat)));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut data).map_err(io_err("read", &abs))?;
    Ok(Some((kind, content::content_id(&data), stat)))
}

// ---------------------------------------------------------------------------
// The guard pull runs first
// ---------------------------------------------------------------------------

/// The index as it stands, or (absent) as `HEAD`'s tree would seed it.
pub fn current_index(mkit_dir: &Path, head: &Plan) -> Result<Index, CheckoutError> {
    Ok(match index::read(mkit_dir)? {
        Some(idx) => idx,
        None => index_from_plan(head),
    })
}

fn index_from_plan(plan: &Plan) -> Index {
    Index {
        entries: plan
            .files
            .iter()
            .map(|f| IndexEntry {
                path: f.path.clone(),
                status: f.kind.status(),
                id: f.id,
                stat: StatCache::default(),
            })
            .collect(),
    }
}

/// Refuse to replace `head` by `target` when the index or the worktree holds
/// work that the update would lose: staged changes (index ≠ `head`), local
/// edits or deletions of tracked files, or an untracked path where `target`
/// writes. Untracked files elsewhere are left alone and kept.
pub fn check_clean(
    root: &Path,
    index: &Index,
    head: &Plan,
    target: &Plan,
) -> Result<(), CheckoutError> {
    let head_set: HashMap<&str, (EntryStatus, Id)> = head
        .files
        .iter()
        .map(|f| (f.path.as_str(), (f.kind.status(), f.id)))
        .collect();
    for e in &index.entries {
        if head_set.get(e.path.as_str()) != Some(&(e.status, e.id)) {
            return Err(CheckoutError::Staged {
                path: e.path.clone(),
            });
        }
    }
    if let Some(missing) = head.files.iter().find(|f| index.get(&f.path).is_none()) {
        return Err(CheckoutError::Staged {
            path: missing.path.clone(),
        });
    }
    for e in &index.entries {
        match worktree_state(root, e)? {
            Some((kind, id, _)) if kind.status() == e.status && id == e.id => {}
            _ => {
                return Err(CheckoutError::Modified {
                    path: e.path.clone(),
                });
            }
        }
    }
    let tracked: HashSet<&str> = index.entries.iter().map(|e| e.path.as_str()).collect();
    for f in &target.files {
        if tracked.contains(f.path.as_str()) {
            continue;
        }
        match probe(root, &f.path)? {
            Found::Nothing => {}
            Found::Dir => {
                // A directory where a file goes: in the way unless it holds
                // only tracked paths (which the update removes).
                if has_untracked(root, &f.path, &tracked)? {
                    return Err(CheckoutError::Untracked {
                        path: f.path.clone(),
                    });
                }
            }
            Found::Leaf => {
                return Err(CheckoutError::Untracked {
                    path: f.path.clone(),
                });
            }
            Found::BlockedAt(n) => {
                let blocker = f.path.split('/').take(n).collect::<Vec<_>>().join("/");
                if !tracked.contains(blocker.as_str()) {
                    return Err(CheckoutError::Untracked { path: blocker });
                }
            }
        }
    }
    Ok(())
}

fn has_untracked(root: &Path, rel: &str, tracked: &HashSet<&str>) -> Result<bool, IoError> {
    let dir = root.join(rel);
    let rd = fs::read_dir(&dir).map_err(io_err("list", &dir))?;
    for entry in rd {
        let entry = entry.map_err(io_err("list", &dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        let kind = entry
            .file_type()
            .map_err(io_err("inspect", &entry.path()))?;
        if kind.is_dir() {
            if has_untracked(root, &child, tracked)? {
                return Ok(true);
            }
        } else if !tracked.contains(child.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------------------
// Applying a plan
// ---------------------------------------------------------------------------

/// Write `plan` into the worktree at `root` and the matching index into
/// `mkit_dir`. `previous` is the index of what is checked out now (`None` for
/// an empty worktree): its paths may be replaced or removed, and its unchanged
/// entries are kept as they are. Anything else in the way refuses.
pub fn apply(
    src: &dyn ObjectSource,
    root: &Path,
    mkit_dir: &Path,
    plan: &Plan,
    previous: Option<&Index>,
) -> Result<CheckoutOutcome, CheckoutError> {
    let empty = Index::default();
    let previous = previous.unwrap_or(&empty);
    let old: HashMap<&str, &IndexEntry> = previous
        .entries
        .iter()
        .filter(|e| e.status != EntryStatus::Removed)
        .map(|e| (e.path.as_str(), e))
        .collect();
    let new: HashSet<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
    let mut outcome = CheckoutOutcome::default();

    // Tracked paths the new tree drops, deepest first, then the directories
    // they leave empty.
    let mut dropped: Vec<&str> = old.keys().copied().filter(|p| !new.contains(p)).collect();
    dropped.sort_unstable_by(|a, b| b.cmp(a));
    for path in &dropped {
        if probe(root, path)? == Found::Leaf {
            let abs = root.join(path);
            fs::remove_file(&abs).map_err(io_err("remove", &abs))?;
            outcome.removed += 1;
        }
        prune_empty_parents(root, path);
    }

    let mut entries = Vec::with_capacity(plan.files.len());
    for f in &plan.files {
        if let Some(o) = old.get(f.path.as_str())
            && o.status == f.kind.status()
            && o.id == f.id
            && probe(root, &f.path)? == Found::Leaf
        {
            entries.push((*o).clone());
            outcome.kept += 1;
            continue;
        }
        let parent = make_parents(root, &f.path, &old)?;
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let final_path = parent.join(name);
        match lstat(&final_path)? {
            None => {}
            Some(m) if m.is_dir() => {
                // A tracked directory replaced by a file: its tracked
                // content is gone already; what is left is not ours.
                fs::remove_dir(&final_path).map_err(|_| CheckoutError::Untracked {
                    path: f.path.clone(),
                })?;
            }
            Some(_) if old.contains_key(f.path.as_str()) => {}
            Some(_) => {
                return Err(CheckoutError::Untracked {
                    path: f.path.clone(),
                });
            }
        }
        let stat = match f.kind {
            FileKind::Symlink => {
                let target = f.target.as_deref().unwrap_or_default();
                write_symlink(&final_path, target)?;
                StatCache::default()
            }
            FileKind::Regular | FileKind::Executable => write_file(src, &final_path, f)?,
        };
        entries.push(IndexEntry {
            path: f.path.clone(),
            status: f.kind.status(),
            id: f.id,
            stat,
        });
        outcome.written += 1;
    }

    // Files first, then the index that vouches for them.
    if !durable::sync_filesystem(root)? {
        durable::sync_dir(root)?;
    }
    index::write(mkit_dir, &Index { entries })?;
    Ok(outcome)
}

/// Remove the directories above `path` that the removal left empty (best
/// effort: a directory holding anything else stays).
fn prune_empty_parents(root: &Path, path: &str) {
    let mut segs: Vec<&str> = path.split('/').collect();
    segs.pop();
    while !segs.is_empty() {
        let dir = root.join(segs.join("/"));
        match lstat(&dir) {
            Ok(Some(m)) if m.is_dir() => {
                if fs::remove_dir(&dir).is_err() {
                    return;
                }
            }
            _ => return,
        }
        segs.pop();
    }
}

/// Create the directories above `path`, refusing to pass through anything
/// that is not a real directory (a symlink is never followed). A tracked file
/// or symlink where the new tree has a directory is replaced.
fn make_parents(
    root: &Path,
    path: &str,
    old: &HashMap<&str, &IndexEntry>,
) -> Result<PathBuf, CheckoutError> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut at = root.to_path_buf();
    for (i, seg) in segs.iter().enumerate().take(segs.len().saturating_sub(1)) {
        at.push(seg);
        match lstat(&at)? {
            Some(m) if m.is_dir() => {}
            Some(_) => {
                let rel = segs[..=i].join("/");
                if !old.contains_key(rel.as_str()) {
                    return Err(CheckoutError::Untracked { path: rel });
                }
                fs::remove_file(&at).map_err(io_err("remove", &at))?;
                create_dir(&at)?;
            }
            None => create_dir(&at)?,
        }
    }
    Ok(at)
}

fn create_dir(path: &Path) -> Result<(), IoError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) => Err(IoError::new("create directory", path, e)),
    }
}

/// Write a regular file's content beside `final_path` under a fresh temp
/// name, then rename it into place; returns the stat observation of the
/// written file (taken from the open descriptor after the rename).
fn write_file(
    src: &dyn ObjectSource,
    final_path: &Path,
    f: &PlannedFile,
) -> Result<StatCache, CheckoutError> {
    let (mut file, tmp) = durable::create_temp(final_path, 0o666)?;
    let result = (|| -> Result<StatCache, CheckoutError> {
        write_content(src, &mut file, &tmp, f)?;
        if f.kind == FileKind::Executable {
            file.set_permissions(fs::Permissions::from_mode(0o755))
                .map_err(io_err("set mode", &tmp))?;
        }
        fs::rename(&tmp, final_path).map_err(io_err("rename into place", final_path))?;
        let meta = file.metadata().map_err(io_err("stat", final_path))?;
        Ok(StatCache::of(&meta))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_content(
    src: &dyn ObjectSource,
    file: &mut File,
    tmp: &Path,
    f: &PlannedFile,
) -> Result<(), CheckoutError> {
    match src.object(&f.id)? {
        Object::Blob(b) => file.write_all(&b.data).map_err(io_err("write", tmp))?,
        Object::ChunkedBlob(cb) => {
            let mut total = 0u64;
            for chunk in &cb.chunks {
                match src.object(chunk)? {
                    Object::Blob(b) => {
                        total += b.data.len() as u64;
                        if total > cb.total_size {
                            break;
                        }
                        file.write_all(&b.data).map_err(io_err("write", tmp))?;
                    }
                    other => {
                        return Err(CheckoutError::WrongType {
                            path: f.path.clone(),
                            id: *chunk,
                            found: type_name(&other),
                            expected: "blob",
                        });
                    }
                }
            }
            if total != cb.total_size {
                return Err(CheckoutError::ChunkSize {
                    path: f.path.clone(),
                    id: f.id,
                    expected: cb.total_size,
                    found: total,
                });
            }
        }
        other => {
            return Err(CheckoutError::WrongType {
                path: f.path.clone(),
                id: f.id,
                found: type_name(&other),
                expected: "blob",
            });
        }
    }
    Ok(())
}

fn write_symlink(final_path: &Path, target: &str) -> Result<(), CheckoutError> {
    let tmp = durable::temp_path_for(final_path);
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err("create symlink", &tmp))?;
    if let Err(e) = fs::rename(&tmp, final_path) {
        let _ = fs::remove_file(&tmp);
        return Err(IoError::new("rename into place", final_path, e).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Worktree lock and branch helpers
// ---------------------------------------------------------------------------

/// An exclusive hold on `.mkit/worktree.lock` (the lock the reference's
/// `add`, `commit`, `merge`, `checkout` and `git pull` take); released on drop.
#[derive(Debug)]
pub struct WorktreeLock {
    _file: File,
}

/// Take the worktree lock, waiting up to five seconds.
pub fn lock_worktree(mkit_dir: &Path) -> Result<WorktreeLock, CheckoutError> {
    let path = mkit_dir.join(WORKTREE_LOCK);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(durable::oflags::NOFOLLOW)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    if durable::wait_for_lock(&file, &path, LOCK_TIMEOUT)? {
        return Ok(WorktreeLock { _file: file });
    }
    Err(CheckoutError::Busy { path })
}

/// The root tree of the commit `name` points at (`None`: no such ref).
pub fn commit_tree(repo: &Repo, name: &str, id: &Id) -> Result<Id, CheckoutError> {
    match repo.store().read(id)? {
        Object::Commit(c) => Ok(c.tree),
        _ => Err(CheckoutError::NotACommit {
            name: name.to_owned(),
            id: *id,
        }),
    }
}

/// Check out branch `branch` (which must exist) into the repository's empty
/// worktree: plan, write the files, write the index. `HEAD` is not touched.
pub fn checkout_fresh(repo: &Repo, branch: &str) -> Result<CheckoutOutcome, CheckoutError> {
    let _lock = lock_worktree(repo.mkit_dir())?;
    let plan = branch_plan(repo, branch)?;
    apply(repo.store(), repo.root(), repo.mkit_dir(), &plan, None)
}

/// The checked plan of the tree local branch `branch` points at.
fn branch_plan(repo: &Repo, branch: &str) -> Result<Plan, CheckoutError> {
    let name = format!("{}{branch}", refs::HEADS_PREFIX);
    let id = refs::read_ref(repo.mkit_dir(), &name)?
        .ok_or_else(|| CheckoutError::NoBranch { name: name.clone() })?;
    let tree = commit_tree(repo, &name, &id)?;
    plan(repo.store(), &tree)
}

/// [`checkout_fresh`] for a resumed `import <url> <dir>`: the interrupted run
/// may have written some of the tree's paths already (the directory was empty
/// when that import began, and only an import of the same upstream into it is
/// resumed). Those paths are removed first, then the tree is checked out as
/// into an empty worktree; any other path in the way still refuses. A path is
/// only removed when no directory on the way to it is a symlink.
pub fn checkout_resumed(repo: &Repo, branch: &str) -> Result<CheckoutOutcome, CheckoutError> {
    {
        let _lock = lock_worktree(repo.mkit_dir())?;
        for f in &branch_plan(repo, branch)?.files {
            remove_leftover(repo.root(), &f.path)?;
        }
        let index = repo.mkit_dir().join("index");
        match std::fs::remove_file(&index) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(IoError::new("remove", &index, e).into()),
        }
    }
    checkout_fresh(repo, branch)
}

/// Remove the file or symlink at `root/rel` when it is there and every
/// directory on the way is a real directory (never a symlink).
fn remove_leftover(root: &Path, rel: &str) -> Result<(), CheckoutError> {
    let mut at = root.to_path_buf();
    let segments: Vec<&str> = rel.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        at.push(seg);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return Ok(());
        };
        let last = i + 1 == segments.len();
        if !last && !meta.file_type().is_dir() {
            return Ok(());
        }
        if last && !meta.file_type().is_dir() {
            std::fs::remove_file(&at).map_err(|e| IoError::new("remove", &at, e))?;
        }
    }
    Ok(())
}

/// Create `refs/heads/<branch>` at the tracking ref `refs/remotes/<remote>/<branch>`
/// (it must not exist yet) and point `HEAD` at it; returns the commit.
pub fn start_branch(repo: &Repo, remote: &str, branch: &str) -> Result<Id, CheckoutError> {
    let tracking = format!("{}{remote}/{branch}", refs::REMOTES_PREFIX);
    let id = refs::read_ref(repo.mkit_dir(), &tracking)?
        .ok_or(CheckoutError::NoBranch { name: tracking })?;
    let local = format!("{}{branch}", refs::HEADS_PREFIX);
    refs::write_ref(repo.mkit_dir(), &local, &id, RefCondition::Missing)?;
    refs::write_head(repo.mkit_dir(), &Head::Symbolic(local))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_aliases_are_recognised() {
        for name in [
            ".mkit",
            ".MKIT",
            ".Mkit",
            ".git",
            ".GIT",
            ".mkit.",
            ".mkit ",
            ".mkit. . ",
            ".mk\u{200c}it",
            "\u{feff}.git",
            ".git::$INDEX_ALLOCATION",
            ".mkit:stream",
            "MKIT~1",
            "git~1",
            "GIT~12",
            ".m\u{212a}it",
            ".m\u{212a}IT",
        ] {
            assert!(is_metadata_alias(name), "{name:?} must be an alias");
        }
        for name in [
            ".mkitignore",
            "mkit",
            ".gitignore",
            ".mkit2",
            "git~",
            "git~x",
            "a.mkit",
        ] {
            assert!(!is_metadata_alias(name), "{name:?} is an ordinary name");
        }
    }

    #[test]
    fn symlink_targets_are_checked() {
        for (t, ok) in [
            ("a/b", true),
            ("./x", true),
            ("", false),
            ("/etc/passwd", false),
            ("../x", false),
            ("a/../../x", false),
            (".mkit/keys", false),
            ("sub/.GIT/config", false),
            ("a\0b", false),
        ] {
            assert_eq!(check_target("l", t.as_bytes()).is_ok(), ok, "{t:?}");
        }
    }
}
