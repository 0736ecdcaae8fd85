//! Reading git objects through gix: the one place that does.
//!
//! Every driver that reads a git object (import's walk and translation, its
//! divergence probe and refusal report, verify's audit, export's check of
//! the staging repository) comes here, so the mapping of gix's object kinds
//! to ours, the id check and the size guard exist once.
//!
//! Two ways in:
//!
//! - through a shared [`gix::ThreadSafeRepository`] ([`read`], [`header`],
//!   [`read_within`], [`is_ancestor`]): each thread keeps its own handle on
//!   the repository, opened on first use and reused for every later read, so
//!   rayon workers read in parallel without sharing a handle. The cached
//!   handle is keyed by the repository's object store, so a thread that
//!   later reads another repository (the next upstream of a mirror run)
//!   never reads through the previous one's handle;
//! - through a handle the caller owns ([`find`], [`find_header`],
//!   [`contains`]), for single-threaded readers.
//!
//! [`read`] re-derives the id of what it read with the collision-detecting
//! hash ([`object_id`]): a corrupt pack entry or a planted collision is a
//! [`ReadError::Corrupt`], never bytes under the wrong name.

use std::cell::RefCell;
use std::sync::Arc;

use crate::git::sha1::{ObjectKind, Sha1, object_id};

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The repository does not have it.
    #[error("object {} is missing", object.to_hex())]
    Missing {
        /// The object.
        object: Sha1,
    },
    /// It could not be decoded, or its bytes hash to another id.
    #[error("object {} is corrupt: {detail}", object.to_hex())]
    Corrupt {
        /// The object.
        object: Sha1,
        /// What is wrong with it.
        detail: String,
    },
    /// Its header declares more bytes than the caller accepts; the content
    /// was not read.
    #[error("{kind} {} is {size} bytes, over the {max}-byte limit", object.to_hex())]
    TooLarge {
        /// The object.
        object: Sha1,
        /// Its kind.
        kind: ObjectKind,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
}

/// Our kind for a gix object kind.
pub fn kind_of(kind: gix::object::Kind) -> ObjectKind {
    match kind {
        gix::object::Kind::Blob => ObjectKind::Blob,
        gix::object::Kind::Tree => ObjectKind::Tree,
        gix::object::Kind::Commit => ObjectKind::Commit,
        gix::object::Kind::Tag => ObjectKind::Tag,
    }
}

fn oid(sha: &Sha1) -> gix::ObjectId {
    gix::ObjectId::from(sha.0)
}

/// This thread's handle, with the object store it was opened on.
type Cached = Option<(Arc<gix::odb::Store>, gix::Repository)>;

thread_local! {
    static HANDLE: RefCell<Cached> = const { RefCell::new(None) };
}

/// Drop this thread's handle, and those of every thread of the current
/// rayon pool when called from one: the pages a handle mapped stay resident
/// until its object store is dropped, and a handle holds its store.
pub fn release_thread_handles() {
    let forget = || HANDLE.with(|cell| cell.borrow_mut().take());
    if rayon::current_thread_index().is_some() {
        rayon::broadcast(|_| drop(forget()));
    }
    drop(forget());
}

/// Drop this thread's handle only: for a reader used by one thread (a
/// recycling reader on a pool thread must not wait for the pool's other
/// threads, which may be busy reading ahead for it).
pub fn release_this_thread_handle() {
    drop(HANDLE.with(|cell| cell.borrow_mut().take()));
}

/// Run `f` with this thread's handle on `repo`, opening it when the thread
/// has none or has one on another repository.
fn with_handle<T>(repo: &gix::ThreadSafeRepository, f: impl FnOnce(&gix::Repository) -> T) -> T {
    HANDLE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = match &*slot {
            Some((store, _)) => !Arc::ptr_eq(store, &repo.objects),
            None => true,
        };
        if fresh {
            *slot = Some((Arc::clone(&repo.objects), repo.to_thread_local()));
        }
        match &*slot {
            Some((_, handle)) => f(handle),
            None => f(&repo.to_thread_local()),
        }
    })
}

/// Read object `sha` and check that its bytes hash to `sha`.
pub fn read(
    repo: &gix::ThreadSafeRepository,
    sha: &Sha1,
) -> Result<(ObjectKind, Vec<u8>), ReadError> {
    let (kind, data) = read_unchecked(repo, sha)?;
    check_id(sha, kind, &data)?;
    Ok((kind, data))
}

/// That `data`, framed as a `kind` object, hashes to `sha` (with SHA-1
/// collision detection): the check [`read`] makes, for a reader that
/// leaves it to another thread ([`read_unchecked`]).
pub fn check_id(sha: &Sha1, kind: ObjectKind, data: &[u8]) -> Result<(), ReadError> {
    match object_id(kind, data) {
        Ok(id) if id == *sha => Ok(()),
        Ok(id) => Err(ReadError::Corrupt {
            object: *sha,
            detail: format!("its bytes hash to {}", id.to_hex()),
        }),
        Err(e) => Err(ReadError::Corrupt {
            object: *sha,
            detail: e.to_string(),
        }),
    }
}

/// [`read`] without the id check: the caller makes it ([`check_id`])
/// before it trusts the bytes.
pub fn read_unchecked(
    repo: &gix::ThreadSafeRepository,
    sha: &Sha1,
) -> Result<(ObjectKind, Vec<u8>), ReadError> {
    with_handle(repo, |handle| match handle.try_find_object(oid(sha)) {
        Ok(Some(obj)) => Ok((kind_of(obj.kind), obj.detach().data)),
        Ok(None) => Err(ReadError::Missing { object: *sha }),
        Err(e) => Err(ReadError::Corrupt {
            object: *sha,
            detail: e.to_string(),
        }),
    })
}

/// The kind and size of object `sha`, without reading its content; `None`
/// when it is missing or its header cannot be read.
pub fn header(repo: &gix::ThreadSafeRepository, sha: &Sha1) -> Option<(ObjectKind, u64)> {
    with_handle(repo, |handle| find_header(handle, sha))
}

/// [`read`], refusing before reading the content an object whose header
/// declares more than `max` bytes.
pub fn read_within(
    repo: &gix::ThreadSafeRepository,
    sha: &Sha1,
    max: u64,
) -> Result<(ObjectKind, Vec<u8>), ReadError> {
    if let Some((kind, size)) = header(repo, sha)
        && size > max
    {
        return Err(ReadError::TooLarge {
            object: *sha,
            kind,
            size,
            max,
        });
    }
    read(repo, sha)
}

/// True when `old` is `new` or reachable from it; false when either is
/// unknown or the history cannot be walked.
pub fn is_ancestor(repo: &gix::ThreadSafeRepository, old: &Sha1, new: &Sha1) -> bool {
    with_handle(repo, |handle| {
        let Ok(walk) = handle.rev_walk([oid(new)]).all() else {
            return false;
        };
        let target = oid(old);
        walk.filter_map(Result::ok).any(|info| info.id == target)
    })
}

/// Object `sha` through the caller's handle, as stored (the id is not
/// re-derived); `None` when it is missing or unreadable.
pub fn find(repo: &gix::Repository, sha: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
    let obj = repo.try_find_object(oid(sha)).ok()??;
    Some((kind_of(obj.kind), obj.detach().data))
}

/// The kind and size of object `sha` through the caller's handle.
pub fn find_header(repo: &gix::Repository, sha: &Sha1) -> Option<(ObjectKind, u64)> {
    let h = repo.try_find_header(oid(sha)).ok()??;
    Some((kind_of(h.kind()), h.size()))
}

/// True when the repository has object `sha`.
pub fn contains(repo: &gix::Repository, sha: &Sha1) -> bool {
    repo.has_object(oid(sha))
}

#[cfg(test)]
/// A bare repository with one blob, one tree and a two-commit history,
/// written with git; returns the ids.
pub(crate) fn fixture(dir: &std::path::Path) -> (Sha1, Sha1, Sha1) {
    use std::process::Command;
    let git = |args: &[&str], input: Option<&[u8]>| -> String {
        let mut c = Command::new("git");
        c.arg("--git-dir").arg(dir).args(args);
        c.env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@x")
            .env("GIT_AUTHOR_DATE", "1000000000 +0000")
            .env("GIT_COMMITTER_NAME", "a")
            .env("GIT_COMMITTER_EMAIL", "a@x")
            .env("GIT_COMMITTER_DATE", "1000000000 +0000");
        let out = match input {
            Some(bytes) => {
                use std::io::Write;
                let mut child = c
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(bytes).unwrap();
                child.wait_with_output().unwrap()
            }
            None => c.output().unwrap(),
        };
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let out = Command::new("git")
        .args(["init", "--bare", "-q"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let blob = git(&["hash-object", "-w", "--stdin"], Some(b"hello\n"));
    let tree = git(
        &["mktree"],
        Some(format!("100644 blob {blob}\tf\n").as_bytes()),
    );
    let first = git(&["commit-tree", &tree, "-m", "one"], None);
    let second = git(&["commit-tree", &tree, "-p", &first, "-m", "two"], None);
    let sha = |s: &str| Sha1::from_hex(s).unwrap();
    (sha(&blob), sha(&first), sha(&second))
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::fixture;

    #[test]
    fn reads_map_kinds_and_guard_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r.git");
        let (blob, first, second) = fixture(&dir);
        let repo = gix::open(&dir).unwrap().into_sync();
        assert_eq!(
            read(&repo, &blob).unwrap(),
            (ObjectKind::Blob, b"hello\n".to_vec())
        );
        assert_eq!(header(&repo, &blob), Some((ObjectKind::Blob, 6)));
        assert_eq!(read(&repo, &second).unwrap().0, ObjectKind::Commit);
        assert_eq!(
            read_within(&repo, &blob, 5),
            Err(ReadError::TooLarge {
                object: blob,
                kind: ObjectKind::Blob,
                size: 6,
                max: 5
            })
        );
        assert!(read_within(&repo, &blob, 6).is_ok());
        let absent = Sha1([7; 20]);
        assert_eq!(
            read(&repo, &absent),
            Err(ReadError::Missing { object: absent })
        );
        assert_eq!(header(&repo, &absent), None);
        assert!(is_ancestor(&repo, &first, &second));
        assert!(is_ancestor(&repo, &second, &second));
        assert!(!is_ancestor(&repo, &second, &first));
        assert!(!is_ancestor(&repo, &absent, &second));
        let local = repo.to_thread_local();
        assert_eq!(
            find(&local, &blob),
            Some((ObjectKind::Blob, b"hello\n".to_vec()))
        );
        assert_eq!(
            find_header(&local, &first).map(|h| h.0),
            Some(ObjectKind::Commit)
        );
        assert!(contains(&local, &blob) && !contains(&local, &absent));
    }

    #[test]
    fn a_thread_reading_another_repository_gets_a_handle_on_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a.git"), tmp.path().join("b.git"));
        let (blob, ..) = fixture(&a);
        let repo_a = gix::open(&a).unwrap().into_sync();
        assert!(read(&repo_a, &blob).is_ok());
        // `b` is empty: the blob must not be found through `a`'s handle.
        let out = std::process::Command::new("git")
            .args(["init", "--bare", "-q"])
            .arg(&b)
            .output()
            .unwrap();
        assert!(out.status.success());
        let repo_b = gix::open(&b).unwrap().into_sync();
        assert_eq!(
            read(&repo_b, &blob),
            Err(ReadError::Missing { object: blob })
        );
        assert!(read(&repo_a, &blob).is_ok());
    }
}
