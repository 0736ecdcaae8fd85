//! Commit a directory tree as one signed mkit commit on a branch.
//!
//! Every regular file becomes a blob (or a chunked blob over 1 MiB), with the
//! executable bit kept as mode 4; symlinks become mode-3 blobs of their target
//! path; directories become trees, empty ones omitted as git and the mkit
//! index omit them; `.git` and `.mkit` directories are skipped. All objects go
//! through one write batch, so nothing is visible before it is durable, and the
//! branch moves last with a compare-and-swap on the tip it was built on: a
//! concurrent update of the same branch makes this run fail, not overwrite it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::durable::{IoError, io_err};
use crate::mkit::Id;
use crate::mkit::content;
use crate::mkit::object::{
    Commit, EntryMode, Identity, Object, ObjectError, Tree, TreeEntry, validate_entry_name,
};
use crate::mkit::refs::{self, RefCondition, RefError};
use crate::mkit::repo::Repo;
use crate::mkit::sign::{self, KeyPair};
use crate::mkit::store::{StoreError, WriteBatch};

/// Deepest directory nesting accepted (the reference's tree depth bound).
pub const MAX_DEPTH: usize = 128;

/// What to commit and how.
#[derive(Debug)]
pub struct SnapshotOptions<'a> {
    /// The directory whose contents become the commit's tree.
    pub source: &'a Path,
    /// The branch to advance (short name, `main` for `refs/heads/main`).
    pub branch: &'a str,
    /// The commit message.
    pub message: Vec<u8>,
    /// An opaque author (for example `Name <email>`); default: the key's Ed25519 identity.
    pub author: Option<Vec<u8>>,
    /// Seconds since the epoch; default: now.
    pub timestamp: Option<u64>,
    /// The signing key.
    pub key: &'a KeyPair,
}

/// What a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOutcome {
    /// The new commit.
    pub commit: Id,
    /// Its root tree.
    pub tree: Id,
    /// The branch tip it was built on, if the branch existed.
    pub parent: Option<Id>,
    /// Objects newly written to the store.
    pub written: u64,
}

/// Why a snapshot failed. Nothing is visible in the repository after any of
/// these except durable, unreferenced objects.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file name that mkit trees cannot hold.
    #[error("cannot commit {}: {source}", path.display())]
    BadName {
        /// The offending path.
        path: PathBuf,
        /// The naming rule it breaks.
        source: ObjectError,
    },
    /// A file that is neither regular, directory nor symlink.
    #[error("cannot commit {}: only regular files, directories and symlinks can be stored", .0.display())]
    UnsupportedFileType(PathBuf),
    /// Directories nested deeper than [`MAX_DEPTH`].
    #[error("{} is nested more than 128 directories deep", .0.display())]
    TooDeep(PathBuf),
    /// The branch name is not a valid ref.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// Writing objects failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building an object failed.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Reading the source failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Commit `opts.source` on `opts.branch` in `repo`.
pub fn snapshot(repo: &Repo, opts: &SnapshotOptions<'_>) -> Result<SnapshotOutcome, SnapshotError> {
    let ref_name = format!("{}{}", refs::HEADS_PREFIX, opts.branch);
    refs::validate_ref_name(&ref_name)?;
    let parent = refs::read_ref(repo.mkit_dir(), &ref_name)?;
    let batch = repo.store().batch();
    let tree = match stage_dir(&batch, opts.source, 0)? {
        Some(id) => id,
        // An empty source commits the empty tree, which must be stored too.
        None => batch.add(&Object::Tree(Tree::default()))?,
    };
    let author = match &opts.author {
        Some(a) => Identity::opaque(a.clone()),
        None => Identity::ed25519(opts.key.public()),
    };
    let timestamp = opts.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let mut commit = Commit {
        tree,
        parents: parent.into_iter().collect(),
        author,
        message: opts.message.clone(),
        timestamp,
        signer: [0; 32],
        message_hash: Id::ZERO,
        content_digest: Id::ZERO,
        signature: [0; 64],
    };
    sign::sign_commit(&mut commit, opts.key)?;
    let commit_id = batch.add(&Object::Commit(commit))?;
    let outcome = batch.commit()?;
    let condition = parent.map_or(RefCondition::Missing, RefCondition::Match);
    refs::write_ref(repo.mkit_dir(), &ref_name, &commit_id, condition)?;
    Ok(SnapshotOutcome {
        commit: commit_id,
        tree,
        parent,
        written: outcome.written,
    })
}

/// Stage a directory's contents; `None` when it holds nothing storable.
fn stage_dir(
    batch: &WriteBatch<'_>,
    dir: &Path,
    depth: usize,
) -> Result<Option<Id>, SnapshotError> {
    if depth >= MAX_DEPTH {
        return Err(SnapshotError::TooDeep(dir.to_path_buf()));
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let path = entry.path();
        let name = entry.file_name().into_encoded_bytes();
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        if meta.is_dir() && (name == b".git" || name == b".mkit") {
            continue;
        }
        validate_entry_name(&name).map_err(|source| SnapshotError::BadName {
            path: path.clone(),
            source,
        })?;
        let (mode, id) = if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("read link", &path))?;
            let target = target.into_os_string().into_encoded_bytes();
            (EntryMode::Symlink, batch.add_blob(&target)?)
        } else if meta.is_dir() {
            match stage_dir(batch, &path, depth + 1)? {
                Some(id) => (EntryMode::Tree, id),
                None => continue,
            }
        } else if meta.is_file() {
            let data = fs::read(&path).map_err(io_err("read", &path))?;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                EntryMode::Executable
            } else {
                EntryMode::Blob
            };
            (mode, content::stage_content(batch, &data)?)
        } else {
            return Err(SnapshotError::UnsupportedFileType(path));
        };
        entries.push(TreeEntry { name, mode, id });
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mut tree = Tree { entries };
    tree.sort();
    Ok(Some(batch.add(&Object::Tree(tree))?))
}
