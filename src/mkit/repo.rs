//! An mkit repository on disk: the `.mkit/` directory and its format marker.
//!
//! A repository is a working directory holding `.mkit/` with `objects/`, the
//! `format` marker (`bmt-v1`: trees and chunked blobs are named by their
//! Merkle roots), `refs/{heads,tags,remotes}/` and `HEAD`. [`Repo::open`]
//! refuses a directory without the marker or with an unknown one rather than
//! misread a store written under another id rule. [`Repo::init`] lays out the
//! same files the reference `mkit init` does, with `HEAD` on `refs/heads/main`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::{self, IoError, io_err};
use crate::mkit::store::Store;

/// Name of the repository directory.
pub const MKIT_DIR: &str = ".mkit";
/// Name of the format marker file inside `.mkit/`.
pub const FORMAT_FILE: &str = "format";
/// The only object-addressing format this implementation reads and writes.
pub const FORMAT_VALUE: &str = "bmt-v1";
/// The branch a fresh repository's `HEAD` names.
pub const DEFAULT_BRANCH: &str = "main";

/// Why a repository cannot be opened or created.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No `.mkit/objects` under the given directory.
    #[error("{} is not an mkit repository (no .mkit/objects); run `mkit init` there first", .0.display())]
    NotARepository(PathBuf),
    /// `.mkit` already exists where a new repository was asked for.
    #[error("{} already holds a .mkit directory", .0.display())]
    AlreadyInitialized(PathBuf),
    /// The format marker is missing or names another format.
    #[error("{}: repository format is {}, this tool reads only bmt-v1", path.display(), found.as_deref().map_or("unmarked (no .mkit/format)".to_owned(), |f| format!("{f:?}")))]
    IncompatibleFormat {
        /// The marker file.
        path: PathBuf,
        /// What it holds, if present.
        found: Option<String>,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// An open mkit repository.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    mkit_dir: PathBuf,
    store: Store,
}

impl Repo {
    /// Create a fresh repository in `root` (which must exist and hold no `.mkit`).
    ///
    /// The layout is built in a hidden temp directory beside `.mkit` and
    /// renamed into place, so a crash leaves either no repository or a whole
    /// one (plus, at worst, a stale `.mkit.init.*` directory).
    pub fn init(root: &Path) -> Result<Repo, RepoError> {
        let mkit_dir = root.join(MKIT_DIR);
        if fs::symlink_metadata(&mkit_dir).is_ok() {
            return Err(RepoError::AlreadyInitialized(root.to_path_buf()));
        }
        let staging = root.join(format!(".mkit.init.{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let built = (|| -> Result<(), RepoError> {
            for sub in ["objects", "refs/heads", "refs/tags", "refs/remotes"] {
                durable::create_dir_all_durable(&staging.join(sub))?;
            }
            durable::write_atomic(
                &staging.join(FORMAT_FILE),
                format!("{FORMAT_VALUE}\n").as_bytes(),
            )?;
            durable::write_atomic(
                &staging.join("HEAD"),
                format!("ref: refs/heads/{DEFAULT_BRANCH}\n").as_bytes(),
            )?;
            fs::rename(&staging, &mkit_dir).map_err(io_err("rename into place", &mkit_dir))?;
            durable::sync_dir(durable::parent_or_dot(&mkit_dir))?;
            Ok(())
        })();
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        Self::open(root)
    }

    /// Open the repository whose working directory is `root`.
    pub fn open(root: &Path) -> Result<Repo, RepoError> {
        let mkit_dir = root.join(MKIT_DIR);
        let objects = mkit_dir.join("objects");
        if !objects.is_dir() {
            return Err(RepoError::NotARepository(root.to_path_buf()));
        }
        let marker = mkit_dir.join(FORMAT_FILE);
        match fs::read(&marker) {
            Ok(bytes) if bytes.len() <= 64 && bytes.trim_ascii() == FORMAT_VALUE.as_bytes() => {}
            Ok(bytes) => {
                return Err(RepoError::IncompatibleFormat {
                    path: marker,
                    found: Some(String::from_utf8_lossy(bytes.trim_ascii()).into_owned()),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::IncompatibleFormat {
                    path: marker,
                    found: None,
                });
            }
            Err(e) => return Err(io_err("read format marker", &marker)(e).into()),
        }
        Ok(Repo {
            root: root.to_path_buf(),
            store: Store::at(objects),
            mkit_dir,
        })
    }

    /// The working directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.mkit/` directory.
    pub fn mkit_dir(&self) -> &Path {
        &self.mkit_dir
    }

    /// The object store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_lays_out_marker_head_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path()).unwrap();
        let m = repo.mkit_dir();
        assert_eq!(fs::read(m.join("format")).unwrap(), b"bmt-v1\n");
        assert_eq!(fs::read(m.join("HEAD")).unwrap(), b"ref: refs/heads/main\n");
        for d in ["objects", "refs/heads", "refs/tags", "refs/remotes"] {
            assert!(m.join(d).is_dir(), "{d}");
        }
        assert!(matches!(
            Repo::init(dir.path()),
            Err(RepoError::AlreadyInitialized(_))
        ));
    }

    #[test]
    fn open_refuses_missing_or_foreign_marker() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Repo::open(dir.path()),
            Err(RepoError::NotARepository(_))
        ));
        Repo::init(dir.path()).unwrap();
        let marker = dir.path().join(".mkit/format");
        fs::write(&marker, "flat-v0\n").unwrap();
        assert!(matches!(
            Repo::open(dir.path()),
            Err(RepoError::IncompatibleFormat { found: Some(f), .. }) if f == "flat-v0"
        ));
        fs::remove_file(&marker).unwrap();
        assert!(matches!(
            Repo::open(dir.path()),
            Err(RepoError::IncompatibleFormat { found: None, .. })
        ));
        fs::write(&marker, "bmt-v1").unwrap();
        assert!(Repo::open(dir.path()).is_ok());
    }
}
