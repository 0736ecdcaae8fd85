//! Refs and `HEAD` in an mkit repository, as the reference stores them.
//!
//! A ref is a file under `.mkit/refs/` holding 64 lowercase hex digits and a
//! newline (SPEC-REFS §1, §6); `HEAD` holds `ref: refs/heads/<branch>\n` or
//! a bare id line. This module validates names against the SPEC-REFS §3
//! grammar, encodes and decodes both files, lists refs, and updates a ref
//! with a compare-and-swap condition. Every update runs under the same
//! per-ref kernel lock file the reference `mkit` 0.5.0 takes
//! (`<.mkit>/refs-<blake3 of the ref name>.lock`), so the bridge and a
//! concurrent `mkit` never both win a race, and every file replacement goes
//! through [`crate::durable`]. Notes and sources: `spec/REFS-KEYS-CHUNKING.md`.
//!
//! Names here are always full ref names (`refs/heads/main`, `refs/tags/v1`)
//! and the `mkit_dir` argument is the path of the `.mkit` directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::durable::{self, IoError, io_err};
use crate::mkit::id::{HEX_LEN, Id};

/// Prefix every ref name handled here starts with.
pub const REFS_PREFIX: &str = "refs/";
/// Prefix of branch refs.
pub const HEADS_PREFIX: &str = "refs/heads/";
/// Prefix of tag refs.
pub const TAGS_PREFIX: &str = "refs/tags/";
/// Prefix of remote-tracking refs (`refs/remotes/<remote>/<branch>`).
pub const REMOTES_PREFIX: &str = "refs/remotes/";
/// The `HEAD` file, relative to the `.mkit` directory.
pub const HEAD_FILE: &str = "HEAD";
/// Length of a ref file as written: 64 hex digits and `\n`.
pub const REF_VALUE_LEN: usize = HEX_LEN + 1;
/// Longest ref name in bytes (reference `MAX_REF_NAME_BYTES`).
pub const MAX_REF_NAME_BYTES: usize = 512;
/// Longest name of a new branch (the part after `refs/heads/`): a push also
/// writes `refs/mkit/packmap/<branch>`, which must fit 512 bytes.
pub const MAX_BRANCH_NAME_BYTES: usize = MAX_REF_NAME_BYTES - "refs/mkit/packmap/".len();
/// Longest name of a new tag (the part after `refs/tags/`).
pub const MAX_TAG_NAME_BYTES: usize = MAX_REF_NAME_BYTES - TAGS_PREFIX.len();
/// Largest ref file a read accepts; longer files are invalid.
pub const MAX_REF_FILE_BYTES: u64 = 128;
/// Largest `HEAD` file a read accepts.
pub const MAX_HEAD_FILE_BYTES: u64 = 4096;
/// Directories nested deeper than this below the listed one are not read.
pub const MAX_LIST_DEPTH: usize = 32;
/// How long an update waits for another process's hold on the ref lock
/// (the reference waits 5 s too).
pub const REF_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a symbolic `HEAD` starts with.
const HEAD_SYMBOLIC_PREFIX: &str = "ref: refs/heads/";
/// Where the reference keeps per-ref history-publication state.
const HISTORY_BRANCHES_DIR: &str = "history-v1/branches";

/// When a ref update may go ahead (SPEC-REFS §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefCondition {
    /// Always: replace whatever is there.
    Any,
    /// Only if the ref does not exist.
    Missing,
    /// Only if the ref currently holds exactly this id.
    Match(Id),
}

/// What `HEAD` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A branch, by full ref name (`refs/heads/<branch>`).
    Symbolic(String),
    /// A commit id directly (detached `HEAD`).
    Detached(Id),
}

/// A ref operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// The name breaks the ref grammar or a length bound.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A ref file exists but does not hold an id line.
    #[error("ref file {} does not hold 64 lowercase hex digits and a newline; fix or delete it", path.display())]
    InvalidValue {
        /// The ref file.
        path: PathBuf,
    },
    /// `HEAD` is neither `ref: refs/heads/<branch>` nor an id line.
    #[error("{} is neither `ref: refs/heads/<branch>` nor a 64-hex commit id; fix it (for example `mkit checkout main`)", path.display())]
    InvalidHead {
        /// The `HEAD` file.
        path: PathBuf,
    },
    /// The compare-and-swap condition did not hold; nothing was written.
    #[error(
        "ref {name} was not updated: expected {}, found {}; re-read it and retry",
        show(expected),
        show(found)
    )]
    Conflict {
        /// The ref.
        name: String,
        /// The value the update required (`None`: the ref must not exist).
        expected: Option<Id>,
        /// The value found (`None`: the ref does not exist).
        found: Option<Id>,
    },
    /// The reference has an unfinished history publication for this ref.
    #[error("ref {name} has an unfinished history publication at {}; run an mkit command on this branch to recover it, then retry", path.display())]
    PendingHistory {
        /// The ref.
        name: String,
        /// The pending transaction file.
        path: PathBuf,
    },
    /// Another process held the ref's lock for the whole timeout.
    #[error("ref {name} is locked by another process ({}); retry when it finishes", path.display())]
    LockTimeout {
        /// The ref.
        name: String,
        /// The lock file.
        path: PathBuf,
    },
    /// An I/O failure, with the action and path.
    #[error(transparent)]
    Io(#[from] IoError),
}

fn show(id: &Option<Id>) -> String {
    match id {
        Some(id) => id.to_hex(),
        None => "no ref".to_owned(),
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> RefError {
    RefError::InvalidName {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// Check `name` against the SPEC-REFS §3 grammar, without a length bound:
/// `/`-separated non-empty segments of `[A-Za-z0-9._-]`, no segment starting
/// with `.` or ending in `.lock`, and a last segment other than `HEAD`.
pub fn check_ref_grammar(name: &str) -> Result<(), RefError> {
    grammar(name).map_err(|reason| invalid(name, reason))
}

fn grammar(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    let mut last = "";
    for segment in name.split('/') {
        segment_rules(segment)?;
        last = segment;
    }
    if last == "HEAD" {
        return Err("the last segment may not be `HEAD`".into());
    }
    Ok(())
}

fn segment_rules(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("empty segment (leading, trailing or doubled `/`)".into());
    }
    if segment.starts_with('.') {
        return Err(format!("segment {segment:?} starts with `.`"));
    }
    if segment.ends_with(".lock") {
        return Err(format!("segment {segment:?} ends with `.lock`"));
    }
    if let Some(&b) = segment
        .as_bytes()
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    {
        return Err(format!(
            "byte {b:#04x} ({:?}) is not allowed; use letters, digits, `.`, `_`, `-` and `/`",
            b as char
        ));
    }
    Ok(())
}

/// Validate a ref name as the reference's `validate_ref_name` does: the
/// grammar ([`check_ref_grammar`]) and at most [`MAX_REF_NAME_BYTES`] bytes.
pub fn validate_ref_name(name: &str) -> Result<(), RefError> {
    check_ref_grammar(name)?;
    if name.len() > MAX_REF_NAME_BYTES {
        return Err(invalid(
            name,
            format!("{} bytes; at most {MAX_REF_NAME_BYTES}", name.len()),
        ));
    }
    Ok(())
}

/// True when [`validate_ref_name`] accepts `name`.
pub fn is_valid_ref_name(name: &str) -> bool {
    validate_ref_name(name).is_ok()
}

/// A name this module reads: the grammar and the `refs/` prefix. No length
/// bound, so a long ref the reference made earlier stays readable.
fn check_existing(name: &str) -> Result<(), RefError> {
    check_ref_grammar(name)?;
    if !name.starts_with(REFS_PREFIX) {
        return Err(invalid(name, "a full ref name starts with `refs/`"));
    }
    Ok(())
}

/// A name this module writes: [`check_existing`] plus the reference's
/// bounds for a new ref. A branch (after `refs/heads/`) may have at most
/// [`MAX_BRANCH_NAME_BYTES`] and a tag [`MAX_TAG_NAME_BYTES`], unless the
/// ref already exists and fits 512 bytes; a remote-tracking ref's remote
/// and branch parts are bounded separately; any other ref at 512 bytes.
fn check_new(mkit_dir: &Path, name: &str) -> Result<(), RefError> {
    check_existing(name)?;
    let too_long = |what: &str, len: usize, max: usize| {
        invalid(
            name,
            format!("the {what} name is {len} bytes; at most {max} (SPEC-REFS §3)"),
        )
    };
    let (part, max, what) = if let Some(branch) = name.strip_prefix(HEADS_PREFIX) {
        (branch, MAX_BRANCH_NAME_BYTES, "branch")
    } else if let Some(tag) = name.strip_prefix(TAGS_PREFIX) {
        (tag, MAX_TAG_NAME_BYTES, "tag")
    } else if let Some((remote, branch)) = name
        .strip_prefix(REMOTES_PREFIX)
        .and_then(|rest| rest.split_once('/'))
    {
        for (what, part) in [("remote", remote), ("branch", branch)] {
            if part.len() > MAX_REF_NAME_BYTES {
                return Err(too_long(what, part.len(), MAX_REF_NAME_BYTES));
            }
        }
        return Ok(());
    } else {
        (name, MAX_REF_NAME_BYTES, "ref")
    };
    if part.len() <= max || (part.len() <= MAX_REF_NAME_BYTES && ref_path(mkit_dir, name).is_file())
    {
        Ok(())
    } else {
        Err(too_long(what, part.len(), max))
    }
}

/// Path of ref `name` (already validated) under `mkit_dir`.
fn ref_path(mkit_dir: &Path, name: &str) -> PathBuf {
    let mut path = mkit_dir.to_path_buf();
    path.extend(name.split('/'));
    path
}

// ---------------------------------------------------------------------------
// Wire forms
// ---------------------------------------------------------------------------

/// The 65 bytes a ref file holds: lowercase hex of `id` and `\n`.
pub fn encode_ref_value(id: &Id) -> [u8; REF_VALUE_LEN] {
    let mut out = [b'\n'; REF_VALUE_LEN];
    out[..HEX_LEN].copy_from_slice(id.to_hex().as_bytes());
    out
}

/// Decode a ref file's bytes: 64 lowercase hex digits followed by any mix
/// of `\n`, `\r`, space and tab (so a file edited on Windows still reads).
/// Uppercase hex, leading whitespace, or anything else is refused. The
/// caller applies the [`MAX_REF_FILE_BYTES`] cap.
pub fn decode_ref_value(bytes: &[u8]) -> Option<Id> {
    Id::from_hex_bytes(trim_line_end(bytes)).ok()
}

fn trim_line_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The bytes of a `HEAD` file: `ref: refs/heads/<branch>\n` or `<hex>\n`.
/// A symbolic target must be a valid name under `refs/heads/`.
pub fn encode_head(head: &Head) -> Result<Vec<u8>, RefError> {
    match head {
        Head::Symbolic(name) => {
            let branch = symbolic_branch(name)?;
            Ok(format!("{HEAD_SYMBOLIC_PREFIX}{branch}\n").into_bytes())
        }
        Head::Detached(id) => Ok(encode_ref_value(id).to_vec()),
    }
}

/// Decode `HEAD` bytes as the reference does: trailing `\n`, `\r`, space and
/// tab are ignored; `ref: refs/heads/<branch>` needs a grammatical branch
/// name; otherwise exactly 64 lowercase hex digits. The caller applies the
/// [`MAX_HEAD_FILE_BYTES`] cap.
pub fn decode_head(bytes: &[u8]) -> Option<Head> {
    let line = std::str::from_utf8(trim_line_end(bytes)).ok()?;
    if let Some(branch) = line.strip_prefix(HEAD_SYMBOLIC_PREFIX) {
        return grammar(branch)
            .is_ok()
            .then(|| Head::Symbolic(format!("{HEADS_PREFIX}{branch}")));
    }
    Id::from_hex(line).ok().map(Head::Detached)
}

fn symbolic_branch(name: &str) -> Result<&str, RefError> {
    check_existing(name)?;
    name.strip_prefix(HEADS_PREFIX)
        .ok_or_else(|| invalid(name, "HEAD can only point at a branch under `refs/heads/`"))
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Read at most `cap + 1` bytes of the file at `path`. `None` when nothing
/// is there, or a directory is (a ref name that is only a namespace).
fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, IoError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(IoError::new("open", path, e)),
    };
    if file.metadata().map_err(io_err("stat", path))?.is_dir() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(REF_VALUE_LEN);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    Ok(Some(bytes))
}

fn read_value_at(path: &Path) -> Result<Option<Id>, RefError> {
    match read_capped(path, MAX_REF_FILE_BYTES)? {
        None => Ok(None),
        Some(bytes) => decode_capped(&bytes)
            .map(Some)
            .ok_or_else(|| RefError::InvalidValue {
                path: path.to_path_buf(),
            }),
    }
}

fn decode_capped(bytes: &[u8]) -> Option<Id> {
    if bytes.len() as u64 > MAX_REF_FILE_BYTES {
        return None;
    }
    decode_ref_value(bytes)
}

/// The id ref `name` holds, or `None` if it does not exist.
pub fn read_ref(mkit_dir: &Path, name: &str) -> Result<Option<Id>, RefError> {
    check_existing(name)?;
    read_value_at(&ref_path(mkit_dir, name))
}

/// Every ref at or below `prefix`, as `(full name, id)` sorted by name.
///
/// `prefix` is empty (all of `refs/`) or a ref name, optionally ending in
/// `/`, that starts with `refs`; it matches whole segments only, so
/// `refs/heads/feat` lists `refs/heads/feat/x` but not `refs/heads/feature`,
/// nor a ref named exactly `refs/heads/feat`. As in the reference, files
/// whose names break the grammar, whose contents do not decode, or that
/// cannot be read are left out, symlinks are not followed, and directories
/// more than [`MAX_LIST_DEPTH`] levels down are not read.
pub fn list_refs(mkit_dir: &Path, prefix: &str) -> Result<Vec<(String, Id)>, RefError> {
    let base = prefix.trim_end_matches('/');
    let base = if base.is_empty() { "refs" } else { base };
    check_ref_grammar(base)?;
    if base != "refs" && !base.starts_with(REFS_PREFIX) {
        return Err(invalid(prefix, "a ref prefix starts with `refs`"));
    }
    let root = ref_path(mkit_dir, base);
    match fs::symlink_metadata(&root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(Vec::new()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(IoError::new("inspect", &root, e).into()),
    }
    let mut out = Vec::new();
    walk(&root, base, 0, &mut out)?;
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(dir: &Path, name: &str, depth: usize, out: &mut Vec<(String, Id)>) -> Result<(), RefError> {
    if depth > MAX_LIST_DEPTH {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(IoError::new("list", dir, e).into()),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let file_name = entry.file_name();
        let Some(segment) = file_name.to_str() else {
            continue;
        };
        if segment_rules(segment).is_err() {
            continue;
        }
        let child = format!("{name}/{segment}");
        let kind = entry
            .file_type()
            .map_err(io_err("inspect", &entry.path()))?;
        if kind.is_dir() {
            walk(&entry.path(), &child, depth + 1, out)?;
        } else if kind.is_file()
            && grammar(&child).is_ok()
            && let Ok(Some(bytes)) = read_capped(&entry.path(), MAX_REF_FILE_BYTES)
            && let Some(id) = decode_capped(&bytes)
        {
            out.push((child, id));
        }
    }
    Ok(())
}

/// What `HEAD` says, or `None` if there is no `HEAD` file.
pub fn read_head(mkit_dir: &Path) -> Result<Option<Head>, RefError> {
    let path = mkit_dir.join(HEAD_FILE);
    let Some(bytes) = read_capped(&path, MAX_HEAD_FILE_BYTES)? else {
        return Ok(None);
    };
    if bytes.len() as u64 > MAX_HEAD_FILE_BYTES {
        return Err(RefError::InvalidHead { path });
    }
    decode_head(&bytes)
        .map(Some)
        .ok_or(RefError::InvalidHead { path })
}

/// The commit `HEAD` resolves to: the branch's id when symbolic (`None` for
/// a branch with no commits yet, or no `HEAD`), the id itself when detached.
pub fn resolve_head(mkit_dir: &Path) -> Result<Option<Id>, RefError> {
    match read_head(mkit_dir)? {
        None => Ok(None),
        Some(Head::Detached(id)) => Ok(Some(id)),
        Some(Head::Symbolic(name)) => read_ref(mkit_dir, &name),
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Point `HEAD` at a branch or a commit, replacing the file atomically.
/// A branch name obeys the same bounds as a new branch ref.
pub fn write_head(mkit_dir: &Path, head: &Head) -> Result<(), RefError> {
    if let Head::Symbolic(name) = head {
        symbolic_branch(name)?;
        check_new(mkit_dir, name)?;
    }
    durable::write_atomic(&mkit_dir.join(HEAD_FILE), &encode_head(head)?)?;
    Ok(())
}

/// Set ref `name` to `id` if `condition` holds, atomically with respect to
/// every other writer that takes the ref lock (this module and the
/// reference `mkit`).
///
/// Under the lock: the condition is checked against the file (a corrupt
/// file fails a `Match` with [`RefError::InvalidValue`]); a pending
/// reference history publication for the ref refuses the write; when the
/// value changes, the reference's cached history descriptor for the ref is
/// removed, as the reference does; then the file is written durably, and
/// for [`RefCondition::Missing`] without ever replacing an existing file.
pub fn write_ref(
    mkit_dir: &Path,
    name: &str,
    id: &Id,
    condition: RefCondition,
) -> Result<(), RefError> {
    check_new(mkit_dir, name)?;
    let path = ref_path(mkit_dir, name);
    let _lock = lock_ref(mkit_dir, name)?;

    let conflict = |expected: Option<Id>, found: Option<Id>| RefError::Conflict {
        name: name.to_owned(),
        expected,
        found,
    };
    let current = match condition {
        RefCondition::Any => read_value_at(&path).unwrap_or(None),
        RefCondition::Missing => {
            if fs::symlink_metadata(&path).is_ok() {
                return Err(conflict(None, read_value_at(&path)?));
            }
            None
        }
        RefCondition::Match(expected) => {
            let found = read_value_at(&path)?;
            if found != Some(expected) {
                return Err(conflict(Some(expected), found));
            }
            found
        }
    };
    guard_history(mkit_dir, name, current != Some(*id))?;

    if let Some(parent) = path.parent() {
        durable::create_dir_all_durable(parent)?;
    }
    let value = encode_ref_value(id);
    if condition == RefCondition::Missing {
        if !durable::write_new(&path, &value, 0o644)? {
            return Err(conflict(None, read_value_at(&path)?));
        }
    } else {
        durable::write_atomic(&path, &value)?;
    }
    Ok(())
}

/// One compare-and-swap in a batch: set `name` to `new` if it holds
/// `expected` (`None`: if it does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Full ref name.
    pub name: String,
    /// The value the ref must hold (`None`: it must not exist).
    pub expected: Option<Id>,
    /// The value to write.
    pub new: Id,
}

/// What became of one [`RefUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStatus {
    /// The ref held the expected value and now holds the new one.
    Written,
    /// The ref already held the new value (whatever was expected); nothing
    /// was written.
    InPlace,
    /// The ref held neither: nothing was written.
    Conflict {
        /// What it holds (`None`: it does not exist).
        found: Option<Id>,
    },
}

/// Apply many compare-and-swaps with one durability point for all of them:
/// every ref's lock is taken (in name order, so two batch writers cannot
/// deadlock), each ref is checked against its expected value under its
/// lock, the refs that pass are written as temp files, made durable
/// together, renamed into place, and their directory entries made durable,
/// before the locks are released. Returns one status per update, in input
/// order. A name given twice is checked the second time against the value
/// the first would leave. A ref file that does not decode fails the batch
/// ([`RefError::InvalidValue`]) before anything is written. Each ref changes
/// atomically; the batch as a whole is not a transaction (a failure part way
/// through the renames leaves the earlier refs updated).
pub fn update_refs(mkit_dir: &Path, updates: &[RefUpdate]) -> Result<Vec<UpdateStatus>, RefError> {
    let mut names: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for u in updates {
        check_new(mkit_dir, &u.name)?;
        names.insert(u.name.as_str());
    }
    let mut locks = Vec::with_capacity(names.len());
    for name in &names {
        locks.push(lock_ref(mkit_dir, name)?);
    }
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> Result<Vec<UpdateStatus>, RefError> {
        // The value each ref will hold, as the batch goes.
        let mut value: std::collections::HashMap<&str, Option<Id>> =
            std::collections::HashMap::new();
        for name in &names {
            value.insert(name, read_value_at(&ref_path(mkit_dir, name))?);
        }
        let mut statuses = Vec::with_capacity(updates.len());
        let mut writes: std::collections::BTreeMap<&str, Id> = std::collections::BTreeMap::new();
        for u in updates {
            let current = value.get(u.name.as_str()).copied().flatten();
            let status = if current == Some(u.new) {
                UpdateStatus::InPlace
            } else if current != u.expected {
                UpdateStatus::Conflict { found: current }
            } else {
                value.insert(&u.name, Some(u.new));
                writes.insert(&u.name, u.new);
                UpdateStatus::Written
            };
            statuses.push(status);
        }
        for (name, id) in &writes {
            let path = ref_path(mkit_dir, name);
            guard_history(mkit_dir, name, true)?;
            if let Some(parent) = path.parent() {
                durable::create_dir_all_durable(parent)?;
            }
            let (mut file, tmp) = durable::create_temp(&path, 0o644)?;
            // Listed before the write, so a failed write's temp is removed too.
            staged.push((tmp.clone(), path));
            durable::fault::check()
                .and_then(|()| std::io::Write::write_all(&mut file, &encode_ref_value(id)))
                .map_err(io_err("write", &tmp))?;
        }
        durable::publish_staged(mkit_dir, &staged)?;
        Ok(statuses)
    })();
    for (tmp, _) in &staged {
        // Renamed temps are gone; this removes only the ones left behind.
        let _ = fs::remove_file(tmp);
    }
    drop(locks);
    result
}

/// Delete ref `name` if it holds `expected` (or unconditionally with `None`),
/// under the same per-ref lock as [`write_ref`]. Returns whether a ref was
/// removed; a ref that is already absent is not an error.
pub fn delete_ref(mkit_dir: &Path, name: &str, expected: Option<Id>) -> Result<bool, RefError> {
    validate_ref_name(name)?;
    let path = ref_path(mkit_dir, name);
    let _lock = lock_ref(mkit_dir, name)?;
    let found = read_value_at(&path)?;
    if let (Some(want), Some(have)) = (expected, found)
        && want != have
    {
        return Err(RefError::Conflict {
            name: name.to_owned(),
            expected: Some(want),
            found: Some(have),
        });
    }
    if found.is_none() {
        return Ok(false);
    }
    guard_history(mkit_dir, name, true)?;
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(IoError::new("delete ref", path, e).into()),
    }
    durable::sync_dir(durable::parent_or_dot(&path))?;
    Ok(true)
}

/// Refuse to touch a ref with an unfinished reference history publication
/// (`history-v1/branches/<blake3 of name>/transaction`), and when the value
/// changes drop the reference's cached descriptor (`.../current`) so it is
/// rebuilt rather than trusted for a tip it no longer describes.
fn guard_history(mkit_dir: &Path, name: &str, value_changes: bool) -> Result<(), RefError> {
    let dir = mkit_dir
        .join(HISTORY_BRANCHES_DIR)
        .join(blake3::hash(name.as_bytes()).to_hex().as_str());
    let transaction = dir.join("transaction");
    if fs::symlink_metadata(&transaction).is_ok() {
        return Err(RefError::PendingHistory {
            name: name.to_owned(),
            path: transaction,
        });
    }
    if value_changes {
        let current = dir.join("current");
        match fs::remove_file(&current) {
            Ok(()) => durable::sync_dir(&dir)?,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(IoError::new("remove", &current, e).into()),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Locking
// ---------------------------------------------------------------------------

/// An exclusive hold on one ref's lock file; released when dropped.
#[derive(Debug)]
pub struct RefLock {
    _file: File,
    path: PathBuf,
}

impl RefLock {
    /// The lock file held.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file for ref `name`: `<mkit_dir>/refs-<lowercase hex BLAKE3 of
/// the name>.lock`, the name the reference derives from the ref's path
/// relative to `.mkit`. The file is never removed; only the kernel lock on
/// it (`flock`) matters.
pub fn ref_lock_path(mkit_dir: &Path, name: &str) -> PathBuf {
    mkit_dir.join(format!(
        "refs-{}.lock",
        blake3::hash(name.as_bytes()).to_hex()
    ))
}

/// Take ref `name`'s lock, waiting up to [`REF_LOCK_TIMEOUT`].
pub fn lock_ref(mkit_dir: &Path, name: &str) -> Result<RefLock, RefError> {
    lock_ref_with_timeout(mkit_dir, name, REF_LOCK_TIMEOUT)
}

/// Take ref `name`'s lock, waiting up to `timeout` for another holder.
pub fn lock_ref_with_timeout(
    mkit_dir: &Path,
    name: &str,
    timeout: Duration,
) -> Result<RefLock, RefError> {
    check_existing(name)?;
    let path = ref_lock_path(mkit_dir, name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(crate::durable::oflags::NOFOLLOW)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    if crate::durable::wait_for_lock(&file, &path, timeout)? {
        return Ok(RefLock { _file: file, path });
    }
    Err(RefError::LockTimeout {
        name: name.to_owned(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id([n; 32])
    }

    #[test]
    fn grammar_reasons_name_the_rule() {
        let reason = |name: &str| match check_ref_grammar(name) {
            Err(RefError::InvalidName { reason, .. }) => reason,
            other => panic!("{name:?}: {other:?}"),
        };
        assert!(reason("a//b").contains("empty segment"));
        assert!(reason("x.lock").contains(".lock"));
        assert!(reason("main@v1").contains("0x40"));
        assert!(reason("refs/heads/HEAD").contains("HEAD"));
        assert!(reason(".hidden").contains("starts with `.`"));
    }

    #[test]
    fn reads_need_full_names() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_ref(tmp.path(), "main"),
            Err(RefError::InvalidName { .. })
        ));
        assert!(matches!(
            list_refs(tmp.path(), "objects"),
            Err(RefError::InvalidName { .. })
        ));
        assert_eq!(read_ref(tmp.path(), "refs/heads/main").unwrap(), None);
    }

    #[test]
    fn value_decoding_tolerates_only_trailing_whitespace() {
        let hex = id(0xab).to_hex();
        for ok in ["\n", "", "\r\n", " \t\n", "\n\n"] {
            assert_eq!(
                decode_ref_value(format!("{hex}{ok}").as_bytes()),
                Some(id(0xab)),
                "{ok:?}"
            );
        }
        for bad in [
            format!(" {hex}\n"),
            hex.to_uppercase() + "\n",
            format!("{}\n", &hex[1..]),
        ] {
            assert_eq!(decode_ref_value(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn oversized_ref_file_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("refs/heads/main");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut body = id(1).to_hex();
        body.push_str(&" ".repeat(70));
        fs::write(&path, body).unwrap();
        assert!(matches!(
            read_ref(tmp.path(), "refs/heads/main"),
            Err(RefError::InvalidValue { .. })
        ));
        assert!(list_refs(tmp.path(), "").unwrap().is_empty());
    }

    #[test]
    fn branch_length_bounds_follow_the_reference() {
        // Names of exactly `len` bytes, in segments short enough for a file name.
        fn long(len: usize) -> String {
            let mut name = String::new();
            while name.len() < len {
                if !name.is_empty() {
                    name.push('/');
                }
                let n = (len - name.len()).min(100);
                name.push_str(&"b".repeat(n));
            }
            assert_eq!(name.len(), len);
            name
        }
        let tmp = tempfile::tempdir().unwrap();
        let ok = format!("refs/heads/{}", long(MAX_BRANCH_NAME_BYTES));
        let over = format!("refs/heads/{}", long(MAX_BRANCH_NAME_BYTES + 1));
        write_ref(tmp.path(), &ok, &id(1), RefCondition::Any).unwrap();
        assert!(matches!(
            write_ref(tmp.path(), &over, &id(1), RefCondition::Any),
            Err(RefError::InvalidName { .. })
        ));
        let tag = format!("refs/tags/{}", long(MAX_TAG_NAME_BYTES));
        write_ref(tmp.path(), &tag, &id(1), RefCondition::Any).unwrap();
        let tag_over = format!("refs/tags/{}", long(MAX_TAG_NAME_BYTES + 1));
        assert!(write_ref(tmp.path(), &tag_over, &id(1), RefCondition::Any).is_err());
    }

    #[test]
    fn changing_a_ref_drops_the_history_descriptor_and_pending_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let name = "refs/heads/main";
        let dir = tmp
            .path()
            .join(HISTORY_BRANCHES_DIR)
            .join(blake3::hash(name.as_bytes()).to_hex().as_str());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("current"), b"x").unwrap();
        write_ref(tmp.path(), name, &id(1), RefCondition::Any).unwrap();
        assert!(!dir.join("current").exists());
        fs::write(dir.join("transaction"), b"x").unwrap();
        assert!(matches!(
            write_ref(tmp.path(), name, &id(2), RefCondition::Any),
            Err(RefError::PendingHistory { .. })
        ));
        assert_eq!(read_ref(tmp.path(), name).unwrap(), Some(id(1)));
    }

    #[test]
    fn lock_times_out_while_held() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock_ref(tmp.path(), "refs/heads/main").unwrap();
        let err = lock_ref_with_timeout(tmp.path(), "refs/heads/main", Duration::from_millis(30));
        assert!(matches!(err, Err(RefError::LockTimeout { .. })));
        // Other refs do not contend.
        lock_ref_with_timeout(tmp.path(), "refs/heads/other", Duration::ZERO).unwrap();
        drop(held);
        lock_ref_with_timeout(tmp.path(), "refs/heads/main", Duration::ZERO).unwrap();
    }
    #[test]
    fn delete_ref_checks_the_expected_value_and_tolerates_absence() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let a = Id([1; 32]);
        write_ref(m, "refs/remotes/up/x", &a, RefCondition::Missing).unwrap();
        assert!(matches!(
            delete_ref(m, "refs/remotes/up/x", Some(Id([2; 32]))),
            Err(RefError::Conflict { .. })
        ));
        assert_eq!(read_ref(m, "refs/remotes/up/x").unwrap(), Some(a));
        assert!(delete_ref(m, "refs/remotes/up/x", Some(a)).unwrap());
        assert_eq!(read_ref(m, "refs/remotes/up/x").unwrap(), None);
        assert!(!delete_ref(m, "refs/remotes/up/x", None).unwrap());
    }
    #[test]
    fn batch_updates_compare_and_swap_each_ref() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let a = Id([1; 32]);
        let b = Id([2; 32]);
        let c = Id([3; 32]);
        let up = |name: &str, expected: Option<Id>, new: Id| RefUpdate {
            name: name.to_owned(),
            expected,
            new,
        };
        let updates = vec![
            up("refs/remotes/up/x", None, a),
            up("refs/tags/v1", None, a),
            // The second update of a name sees what the first leaves.
            up("refs/remotes/up/x", Some(a), b),
        ];
        assert_eq!(
            update_refs(m, &updates).unwrap(),
            vec![UpdateStatus::Written; 3]
        );
        assert_eq!(read_ref(m, "refs/remotes/up/x").unwrap(), Some(b));
        assert_eq!(read_ref(m, "refs/tags/v1").unwrap(), Some(a));
        // Already there: in place, whatever was expected.
        assert_eq!(
            update_refs(m, &[up("refs/tags/v1", Some(c), a)]).unwrap(),
            vec![UpdateStatus::InPlace]
        );
        // A lease that no longer holds writes nothing, and does not stop
        // the others.
        let statuses = update_refs(
            m,
            &[
                up("refs/remotes/up/x", Some(a), c),
                up("refs/tags/v2", None, c),
                up("refs/tags/v1", None, c),
            ],
        )
        .unwrap();
        assert_eq!(
            statuses,
            vec![
                UpdateStatus::Conflict { found: Some(b) },
                UpdateStatus::Written,
                UpdateStatus::Conflict { found: Some(a) },
            ]
        );
        assert_eq!(read_ref(m, "refs/remotes/up/x").unwrap(), Some(b));
        assert_eq!(read_ref(m, "refs/tags/v2").unwrap(), Some(c));
        assert!(update_refs(m, &[up("refs/tags/a b", None, a)]).is_err());
        // A ref file that does not decode fails the batch, writing nothing.
        fs::write(m.join("refs/tags/bad"), b"junk\n").unwrap();
        assert!(matches!(
            update_refs(
                m,
                &[up("refs/tags/v3", None, a), up("refs/tags/bad", None, a)]
            ),
            Err(RefError::InvalidValue { .. })
        ));
        assert_eq!(read_ref(m, "refs/tags/v3").unwrap(), None);
        // No temp file is left anywhere.
        let mut stack = vec![m.join("refs")];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let n = p.file_name().unwrap().to_string_lossy().into_owned();
                    assert!(!n.contains(".tmp."), "{n}");
                }
            }
        }
    }
}
