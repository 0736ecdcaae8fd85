//! Where a batch's pack entries wait for their turn, so that the memory an
//! export holds does not grow with the size of its objects.
//!
//! The run's pack lists each batch of objects in id order, and an object's
//! id is known only once it has been read and translated: a batch is
//! complete before any of it can be appended. Holding a batch of 512 blobs
//! in memory until then costs 512 times the size of a blob (18 MB on
//! ripgrep). Instead, each entry is *staged* by the worker that made it
//! ([`Spill::stage`]): kept in memory while the entries held so far add up to
//! less than [`HELD_BYTES`], else framed (entry header, zlib stream, the
//! CRC-32 the index needs) into an unlinked scratch file beside the pack and
//! dropped. When the batch is appended, a spilled entry is copied from the
//! scratch file into the pack by the kernel ([`Spill::copy_into`]:
//! `copy_file_range`, page cache to page cache); the scratch file's pages are
//! reused from its start once nothing in it waits any more, so it stays the
//! size of one batch. The pack's bytes are the same either way: only where
//! an entry waits changes.
//!
//! The trees, commits and tags wait longer: from the walk that reads them to
//! the wave that translates them, after their children. Their bodies wait
//! on a [`Shelf`]: encoded (the store's own encoding, without its checks
//! and hashing to redo) into a second scratch file as the walk reads them,
//! and read back one by one with a positional read when their wave comes.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::pack::{PackEntry, PackError, entry_pieces, framed_len};
use crate::git::sha1::Sha1;
use crate::mkit::object::Object;

/// The bytes of pack entries a run holds in memory at once while they wait
/// for their turn; past it, entries wait in the scratch file.
pub const HELD_BYTES: usize = 256 << 10;

/// Entries framed at most this long are written to the scratch file in one
/// call (assembled in memory first); longer ones piece by piece.
const ONE_WRITE: u64 = 64 << 10;

/// A pack entry waiting for its turn.
#[derive(Debug)]
pub enum Staged {
    /// In memory (counted against the spill's budget).
    Held(PackEntry),
    /// Framed in the scratch file.
    Spilled(Spilled),
}

impl Staged {
    /// The object's id.
    pub fn id(&self) -> Sha1 {
        match self {
            Staged::Held(e) => e.id,
            Staged::Spilled(s) => s.id,
        }
    }
}

/// An entry framed in the scratch file: its id, where its bytes are, and
/// the CRC-32 of those bytes (for the index).
#[derive(Debug, Clone, Copy)]
pub struct Spilled {
    /// The object's id.
    pub id: Sha1,
    /// Where its framed bytes start in the scratch file.
    pub at: u64,
    /// How many there are.
    pub len: u64,
    /// Their CRC-32.
    pub crc32: u32,
}

/// What the scratch file and the budget hold right now.
#[derive(Debug, Default)]
struct Ledger {
    /// Where the next spilled entry goes.
    next: u64,
    /// Spilled entries not copied out yet.
    waiting: usize,
    /// Bytes of held entries not appended yet.
    held: usize,
}

/// The run's scratch file and in-memory budget, shared by the workers.
#[derive(Debug)]
pub struct Spill {
    file: File,
    /// Its name while it had one (for messages).
    path: PathBuf,
    limit: usize,
    ledger: Mutex<Ledger>,
    /// Most bytes held at once, and most waiting in the file at once
    /// (for the tests).
    peaks: Mutex<(usize, u64)>,
}

/// An unlinked scratch file in `root` (see [`Spill::new`]).
fn scratch(root: &Path) -> Result<(File, PathBuf), PackError> {
    let path = super::pack::scratch_path(root);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| PackError::Io {
            action: "create",
            path: path.clone(),
            source,
        })?;
    let _ = std::fs::remove_file(&path);
    Ok((file, path))
}

impl Spill {
    /// A scratch file in `root` (beside the pack being written, so the copy
    /// stays on one filesystem), unlinked at once: nothing is left behind
    /// whatever happens to the run. Its name starts with the pack body's
    /// prefix, so a run killed between the two steps leaves a file the
    /// next run removes. `limit` bounds the bytes held in memory.
    pub fn new(root: &Path, limit: usize) -> Result<Spill, PackError> {
        let (file, path) = scratch(root)?;
        Ok(Spill {
            file,
            path,
            limit,
            ledger: Mutex::new(Ledger::default()),
            peaks: Mutex::new((0, 0)),
        })
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep `e` in memory if the budget allows, else frame it into the
    /// scratch file and let it go.
    pub fn stage(&self, e: PackEntry) -> Result<Staged, PackError> {
        let len = framed_len(&e);
        let at = {
            let mut l = self.ledger();
            if l.held + e.data.len() <= self.limit {
                l.held += e.data.len();
                self.note(l.held, 0);
                return Ok(Staged::Held(e));
            }
            let at = l.next;
            l.next += len;
            l.waiting += 1;
            self.note(0, l.next);
            at
        };
        let io = |source| PackError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let mut crc = crc32fast::Hasher::new();
        if len <= ONE_WRITE {
            let mut buf = Vec::with_capacity(len as usize);
            entry_pieces(&e, |p| {
                crc.update(p);
                buf.write_all(p)
            })
            .map_err(io)?;
            self.file.write_all_at(&buf, at).map_err(io)?;
        } else {
            let mut pos = at;
            entry_pieces(&e, |p| {
                crc.update(p);
                self.file.write_all_at(p, pos)?;
                pos += p.len() as u64;
                Ok(())
            })
            .map_err(io)?;
        }
        Ok(Staged::Spilled(Spilled {
            id: e.id,
            at,
            len,
            crc32: crc.finalize(),
        }))
    }

    fn note(&self, held: usize, file: u64) {
        let mut p = self.peaks.lock().unwrap_or_else(|p| p.into_inner());
        p.0 = p.0.max(held);
        p.1 = p.1.max(file);
    }

    /// The most bytes held in memory at once, and the most the scratch file
    /// held at once.
    pub fn peaks(&self) -> (usize, u64) {
        *self.peaks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `s` is appended (or dropped as a duplicate): its entry no longer
    /// waits in memory or in the scratch file. Once nothing waits in the
    /// file, the next entry goes to its start again.
    pub fn settle(&self, s: &Staged) {
        let mut l = self.ledger();
        match s {
            Staged::Held(e) => l.held = l.held.saturating_sub(e.data.len()),
            Staged::Spilled(_) => {
                l.waiting = l.waiting.saturating_sub(1);
                if l.waiting == 0 {
                    l.next = 0;
                }
            }
        }
    }

    /// Append the bytes of `s` to `out`: a short entry through `buf` (one
    /// read, then the writer's buffer), a long one file to file by the
    /// kernel once `out` is flushed (`copy_file_range`, else through memory).
    pub fn copy_into(
        &self,
        s: &Spilled,
        out: &mut BufWriter<File>,
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut at = s.at;
        let end = s.at + s.len;
        if s.len > ONE_WRITE {
            out.flush()?;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            while at < end {
                let want = usize::try_from(end - at).unwrap_or(usize::MAX);
                match rustix::fs::copy_file_range(
                    &self.file,
                    Some(&mut at),
                    out.get_ref(),
                    None,
                    want,
                ) {
                    Ok(0) => break,
                    Ok(_) => {}
                    // Not supported here: copy through memory below.
                    Err(_) => break,
                }
            }
        }
        while at < end {
            let n = usize::try_from((end - at).min(ONE_WRITE)).unwrap_or(0);
            buf.resize(n, 0);
            self.file.read_exact_at(buf, at)?;
            out.write_all(buf)?;
            at += n as u64;
        }
        Ok(())
    }
}

/// The encoded bodies of the objects waiting for translation, by place (the
/// order they were shelved in), in an unlinked scratch file.
#[derive(Debug)]
pub struct Shelf {
    out: BufWriter<File>,
    path: PathBuf,
    /// Where each place's body starts, and (last) where the next would:
    /// a body is the bytes up to the next start; an empty one is not on the
    /// shelf (it could not be encoded) and is read from the store again.
    starts: Vec<u64>,
    /// A reusable encoding buffer.
    buf: Vec<u8>,
}

impl Shelf {
    /// An empty shelf in `root` (beside `objects/`).
    pub fn new(root: &Path) -> Result<Shelf, PackError> {
        let (file, path) = scratch(root)?;
        Ok(Shelf {
            out: BufWriter::with_capacity(64 << 10, file),
            path,
            starts: vec![0],
            buf: Vec::new(),
        })
    }

    fn io(&self) -> impl FnOnce(io::Error) -> PackError {
        let path = self.path.clone();
        move |source| PackError::Io {
            action: "write",
            path,
            source,
        }
    }

    /// Shelve `obj`'s body as the next place. One that cannot be encoded
    /// is left off the shelf.
    pub fn put(&mut self, obj: &Object) -> Result<(), PackError> {
        self.buf.clear();
        let mut end = self.starts.last().copied().unwrap_or(0);
        if obj.encode_into(&mut self.buf).is_ok() {
            self.out.write_all(&self.buf).map_err(self.io())?;
            end += self.buf.len() as u64;
        }
        self.starts.push(end);
        if self.buf.capacity() > 64 << 10 {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Everything is shelved: flush, so the bodies can be read back.
    pub fn close(&mut self) -> Result<(), PackError> {
        self.buf = Vec::new();
        self.out.flush().map_err(self.io())
    }

    /// The body at `place` decoded again, or `None` when it is not on the
    /// shelf or does not decode (the caller reads it from the store).
    pub fn take(&self, place: usize) -> Result<Option<Object>, PackError> {
        let (Some(&at), Some(&end)) = (self.starts.get(place), self.starts.get(place + 1)) else {
            return Ok(None);
        };
        let Some(len) = usize::try_from(end - at).ok().filter(|&n| n > 0) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; len];
        self.out
            .get_ref()
            .read_exact_at(&mut bytes, at)
            .map_err(|source| PackError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            })?;
        Ok(Object::decode(&bytes).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::sha1::ObjectKind;
    use crate::run::export::pack::{Level, entry};

    fn blob(len: usize, seed: u8) -> PackEntry {
        let body: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let id = crate::git::sha1::object_id(ObjectKind::Blob, &body).unwrap();
        entry(Level::Stored, id, ObjectKind::Blob, body).unwrap()
    }

    #[test]
    fn entries_past_the_budget_wait_in_the_file_and_copy_back_framed() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path(), 1000).unwrap();
        // Unlinked at once.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let small = spill.stage(blob(600, 3)).unwrap();
        assert!(matches!(small, Staged::Held(_)));
        let big = [
            blob(600, 5),
            blob(200_000, 7),
            blob(ONE_WRITE as usize - 30, 11),
        ];
        let mut staged = Vec::new();
        for e in big {
            let mut framed = Vec::new();
            entry_pieces(&e, |p| {
                framed.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            let s = spill.stage(e).unwrap();
            let Staged::Spilled(s) = s else {
                panic!("over the budget: spilled")
            };
            assert_eq!(s.len, framed.len() as u64);
            assert_eq!(s.crc32, crc32fast::hash(&framed));
            staged.push((s, framed));
        }
        let out_path = dir.path().join("out");
        let mut out = BufWriter::new(File::create(&out_path).unwrap());
        out.write_all(b"head").unwrap();
        let mut want = b"head".to_vec();
        let mut buf = Vec::new();
        for (s, framed) in staged.iter().rev() {
            spill.copy_into(s, &mut out, &mut buf).unwrap();
            want.extend_from_slice(framed);
        }
        drop(out);
        assert!(std::fs::read(&out_path).unwrap() == want);
        // Once nothing waits, the file is reused from its start.
        for (s, _) in &staged {
            spill.settle(&Staged::Spilled(*s));
        }
        spill.settle(&small);
        let again = spill.stage(blob(1001, 13)).unwrap();
        let Staged::Spilled(again) = again else {
            panic!("over the budget: spilled")
        };
        assert_eq!(again.at, 0);
        assert_eq!(spill.peaks().0, 600);
    }

    #[test]
    fn shelved_bodies_come_back_whole() {
        use crate::mkit::id::Id;
        use crate::mkit::object::{Commit, Identity};
        // A tree too, and a body that cannot be encoded (an invalid tree):
        // left off the shelf.
        let dir = tempfile::tempdir().unwrap();
        let mut shelf = Shelf::new(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let commit = |n: u8| {
            Object::Commit(Commit {
                tree: Id([n; 32]),
                parents: vec![Id([n + 1; 32])],
                author: Identity::ed25519([n; 32]),
                message: format!("commit {n}\n").into_bytes(),
                timestamp: u64::from(n),
                signer: [n; 32],
                message_hash: Id([0; 32]),
                content_digest: Id([0; 32]),
                signature: [n; 64],
            })
        };
        let objects: Vec<Object> = (0..50).map(commit).collect();
        for o in &objects {
            shelf.put(o).unwrap();
        }
        // An empty name makes an invalid tree.
        let bad = Object::Tree(crate::mkit::object::Tree {
            entries: vec![crate::mkit::object::TreeEntry {
                name: Vec::new(),
                mode: crate::mkit::object::EntryMode::Blob,
                id: Id([1; 32]),
            }],
        });
        shelf.put(&bad).unwrap();
        shelf.close().unwrap();
        for (i, o) in objects.iter().enumerate().rev() {
            assert_eq!(shelf.take(i).unwrap().as_ref(), Some(o));
        }
        assert_eq!(shelf.take(50).unwrap(), None);
        assert_eq!(shelf.take(51).unwrap(), None);
    }
}
