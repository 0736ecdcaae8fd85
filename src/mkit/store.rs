//! The loose object store: `.mkit/objects/<2 hex>/<62 hex>`, uncompressed.
//!
//! Reads re-derive every object's id with the type-dependent rule (Merkle
//! root for trees and chunked blobs, flat BLAKE3 otherwise) and refuse a
//! mismatch, a malformed object, a delta, or anything over 1 GiB.
//!
//! Writes never expose a non-durable object. [`Store::write`] makes one
//! object durable on its own (temp, fsync, rename, shard fsync). A
//! [`WriteBatch`] amortises that over many objects, as a translation run
//! needs: objects are staged as temp files (invisible to every reader), then
//! [`WriteBatch::commit`] issues one durability point for all of them, renames
//! them into place, and makes the touched shard directories durable. A large
//! batch does the same in the background for what it has staged so far
//! ([`WriteBatch::checkpoint`], also started by itself every few thousand
//! objects), so the disk works while translation goes on; the rule that
//! nothing is visible before it is durable holds there too. A batch that is
//! dropped uncommitted removes the temp files it still holds; objects
//! published at a checkpoint stay, unreferenced, like any object nothing
//! points at yet. Callers write refs only after `commit` returns.
//!
//! A `WriteBatch` is `Sync`: rayon workers stage into one batch concurrently.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::durable::{self, IoError, io_err};
use crate::mkit::id::{self, Id};
use crate::mkit::object::{MAX_OBJECT_SIZE, Object, ObjectError, ObjectType, blob_header};

/// Everything that can go wrong reading or writing objects.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object with this id is in the store.
    #[error("object {0} is not in the store")]
    NotFound(Id),
    /// The file at an id's path does not decode.
    #[error("object {id} is corrupt: {source}")]
    Corrupt {
        /// The id whose file is corrupt.
        id: Id,
        /// Why it does not decode.
        #[source]
        source: ObjectError,
    },
    /// The file at an id's path holds a different object.
    #[error("object file for {expected} holds an object whose id is {found}")]
    HashMismatch {
        /// The id the path promises.
        expected: Id,
        /// The id of the bytes found there.
        found: Id,
    },
    /// An object over the 1 GiB cap.
    #[error("object {id} is {size} bytes, over the 1 GiB limit")]
    TooLarge {
        /// The object (or, on write, the id it would have).
        id: Id,
        /// Its size.
        size: u64,
    },
    /// Deltas are pack-only and never stored.
    #[error("delta objects are pack-only and cannot be stored")]
    DeltaNotStorable,
    /// The value cannot be encoded.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A loose object store rooted at an `objects/` directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store over an existing `objects/` directory (see [`crate::mkit::repo`]
    /// for opening a whole repository with its format check).
    pub fn at(objects_dir: impl Into<PathBuf>) -> Store {
        Store {
            root: objects_dir.into(),
        }
    }

    /// The `objects/` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object `id` lives.
    pub fn path_for(&self, id: &Id) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// True when the object's file exists (its bytes are not checked).
    pub fn contains(&self, id: &Id) -> bool {
        self.path_for(id).is_file()
    }

    /// The type an object's file declares, from its 6-byte prologue only
    /// (type byte, magic, version): `None` when the file is absent or its
    /// prologue is not an mkit v1 object's. Nothing else is read or
    /// verified; this is the cheap check that a cached id names an object of
    /// the expected kind, not a substitute for [`Store::read`].
    pub fn peek_type(&self, id: &Id) -> Result<Option<ObjectType>, StoreError> {
        use crate::mkit::object::{MAGIC, PROLOGUE_LEN, SCHEMA_VERSION};
        let path = self.path_for(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IoError::new("open object", path, e).into()),
        };
        let mut prologue = [0u8; PROLOGUE_LEN];
        match file.read_exact(&mut prologue) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(IoError::new("read object", path, e).into()),
        }
        if prologue[1..5] != MAGIC || prologue[5] != SCHEMA_VERSION {
            return Ok(None);
        }
        Ok(ObjectType::from_byte(prologue[0]).ok())
    }

    /// Read an object's bytes, verifying size, structure and id.
    pub fn read_bytes(&self, id: &Id) -> Result<Vec<u8>, StoreError> {
        Ok(self.read_verified(id)?.0)
    }

    /// Read and decode an object, verifying size, structure and id.
    pub fn read(&self, id: &Id) -> Result<Object, StoreError> {
        Ok(self.read_verified(id)?.1)
    }

    fn read_verified(&self, id: &Id) -> Result<(Vec<u8>, Object), StoreError> {
        let path = self.path_for(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(*id)),
            Err(e) => return Err(IoError::new("open object", path, e).into()),
        };
        let size = file.metadata().map_err(io_err("stat object", &path))?.len();
        if size > MAX_OBJECT_SIZE as u64 {
            return Err(StoreError::TooLarge { id: *id, size });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes)
            .map_err(io_err("read object", &path))?;
        let obj =
            Object::decode(&bytes).map_err(|source| StoreError::Corrupt { id: *id, source })?;
        let found = stored_id(&obj, &bytes).ok_or(StoreError::DeltaNotStorable)?;
        if found != *id {
            return Err(StoreError::HashMismatch {
                expected: *id,
                found,
            });
        }
        Ok((bytes, obj))
    }

    /// Write one object durably on its own; returns its id. An object that is
    /// already present is not rewritten (its shard directory is still flushed,
    /// since whoever renamed it may not have).
    pub fn write(&self, obj: &Object) -> Result<Id, StoreError> {
        let (id, bytes) = encode_for_store(obj)?;
        let path = self.path_for(&id);
        let shard = durable::parent_or_dot(&path).to_path_buf();
        if path.is_file() {
            durable::sync_dir(&shard)?;
            return Ok(id);
        }
        durable::create_dir_all_durable(&shard)?;
        let (mut file, tmp) = durable::create_temp(&path, OBJECT_MODE)?;
        let done = (|| {
            file.write_all(&bytes)
                .map_err(io_err("write object", &tmp))?;
            file.sync_data().map_err(io_err("fsync object", &tmp))?;
            fs::rename(&tmp, &path).map_err(io_err("rename object into place", &path))
        })();
        if done.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        done?;
        durable::sync_dir(&shard)?;
        Ok(id)
    }

    /// Start a batch of writes that become visible together at `commit`.
    pub fn batch(&self) -> WriteBatch<'_> {
        self.new_batch(false)
    }

    /// A batch that writes nothing: every `add` computes the object's id
    /// and counts it as present or new, exactly as [`Store::batch`] would,
    /// but no file or directory is created and `commit` flushes nothing.
    /// A dry run (`fetch --dry-run`) translates into one.
    pub fn dry_batch(&self) -> WriteBatch<'_> {
        self.new_batch(true)
    }

    fn new_batch(&self, dry: bool) -> WriteBatch<'_> {
        WriteBatch {
            store: self,
            state: Mutex::new(BatchState::default()),
            shards_made: durable::FanOut::default(),
            early: Mutex::new(None),
            dry,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Objects are written read-only: nothing ever rewrites one in place.
const OBJECT_MODE: u32 = 0o444;

/// Encode an object for storage and compute its id, refusing deltas and
/// anything over the size cap.
pub fn encode_for_store(obj: &Object) -> Result<(Id, Vec<u8>), StoreError> {
    if obj.object_type() == ObjectType::Delta {
        return Err(StoreError::DeltaNotStorable);
    }
    let bytes = obj.encode()?;
    let id = stored_id(obj, &bytes).ok_or(StoreError::DeltaNotStorable)?;
    if bytes.len() > MAX_OBJECT_SIZE {
        return Err(StoreError::TooLarge {
            id,
            size: bytes.len() as u64,
        });
    }
    Ok((id, bytes))
}

/// The id the store files an object under, given the object and its
/// encoding: the Merkle root for trees and chunked blobs, the flat BLAKE3 of
/// `bytes` for everything else; `None` for a delta, which is never stored.
/// Reads and writes both name objects by this one rule (and `fsck` re-checks
/// every file with it).
pub fn stored_id(obj: &Object, bytes: &[u8]) -> Option<Id> {
    match obj {
        Object::Tree(t) => Some(t.merkle_id()),
        Object::ChunkedBlob(c) => Some(c.merkle_id()),
        Object::Delta(_) => None,
        _ => Some(id::flat_id(bytes)),
    }
}

/// An object encoded for the store, with its id: what
/// [`WriteBatch::add_prepared`] writes. Only [`prepare`] makes one, so the id
/// always matches the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    id: Id,
    bytes: Vec<u8>,
}

impl Prepared {
    /// The object's id.
    pub fn id(&self) -> Id {
        self.id
    }
}

/// Encode `obj` and compute its id now, to write it later (for example from
/// another thread, off a sequential critical path).
pub fn prepare(obj: &Object) -> Result<Prepared, StoreError> {
    let (id, bytes) = encode_for_store(obj)?;
    Ok(Prepared { id, bytes })
}

#[derive(Default)]
struct BatchState {
    /// Temp files staged in this batch, with the id each becomes.
    staged: Vec<(Id, PathBuf)>,
    /// Ids staged or found present, so each is handled once.
    seen: HashSet<Id>,
    /// Shard directories to flush at commit (new entries or dedup hits).
    shards: BTreeSet<PathBuf>,
    /// Objects found already visible.
    present: u64,
    /// Bytes staged.
    bytes: u64,
    /// Objects staged (including those published at a checkpoint).
    written: u64,
    /// Bytes in `staged`.
    staged_bytes: u64,
}

/// A batch publishes what it has staged in the background (see
/// [`WriteBatch::checkpoint`]) once this many objects or bytes are waiting,
/// so the disk works while translation goes on and a large import never
/// holds more than this in temp files.
const CHECKPOINT_OBJECTS: usize = 2048;
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// What a committed batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Objects newly written.
    pub written: u64,
    /// Objects that were already in the store (not rewritten).
    pub already_present: u64,
    /// Bytes newly written.
    pub bytes: u64,
}

/// A set of object writes made durable, then visible: all of them by
/// [`WriteBatch::commit`], a large batch's earlier ones already at its
/// background checkpoints.
pub struct WriteBatch<'s> {
    store: &'s Store,
    state: Mutex<BatchState>,
    /// Shard directories made or found by this batch.
    shards_made: durable::FanOut,
    /// Publication of a [`WriteBatch::checkpoint`], running or finished.
    early: Mutex<Option<Early>>,
    /// Count, never write ([`Store::dry_batch`]).
    dry: bool,
    /// Threads the batch may use besides the caller's
    /// ([`WriteBatch::with_threads`]).
    threads: usize,
}

/// The publication a checkpoint started.
enum Early {
    /// Running on its own thread.
    Running(std::thread::JoinHandle<Result<(), IoError>>),
    /// Done already (when no thread could be started).
    Done(Result<(), IoError>),
}

impl std::fmt::Debug for WriteBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("store", &self.store.root)
            .finish_non_exhaustive()
    }
}

impl WriteBatch<'_> {
    /// Use at most `threads` threads for the batch's own work (by default
    /// one per core): its renames are spread over that many, and with one
    /// the batch starts no thread at all: a checkpoint publishes on the
    /// thread that staged the object that made it due, and the commit
    /// renames on the calling thread. A run passes its `--jobs` here.
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Stage an object; returns its id. Safe to call from many threads.
    pub fn add(&self, obj: &Object) -> Result<Id, StoreError> {
        let (id, bytes) = encode_for_store(obj)?;
        self.stage(id, &[&bytes])?;
        Ok(id)
    }

    /// Stage an object prepared earlier with [`prepare`]; returns its id.
    pub fn add_prepared(&self, prepared: &Prepared) -> Result<Id, StoreError> {
        self.stage(prepared.id, &[&prepared.bytes])?;
        Ok(prepared.id)
    }

    /// Stage a blob holding `data` without building its encoding in memory.
    pub fn add_blob(&self, data: &[u8]) -> Result<Id, StoreError> {
        if data.len() + 10 > MAX_OBJECT_SIZE {
            return Err(StoreError::TooLarge {
                id: crate::mkit::object::blob_id(data),
                size: data.len() as u64 + 10,
            });
        }
        let id = crate::mkit::object::blob_id(data);
        self.stage(id, &[&blob_header(data.len()), data])?;
        Ok(id)
    }

    /// Stage bytes under an id the caller already computed with the store's
    /// rule. Used by translators that hash while encoding.
    fn stage(&self, id: Id, parts: &[&[u8]]) -> Result<(), StoreError> {
        {
            let mut st = self.lock();
            if !st.seen.insert(id) {
                return Ok(());
            }
        }
        let path = self.store.path_for(&id);
        if self.dry {
            let mut st = self.lock();
            if path.is_file() {
                st.present += 1;
            } else {
                st.written += 1;
                st.bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
            }
            return Ok(());
        }
        let shard = durable::parent_or_dot(&path).to_path_buf();
        // The new shard's entry in `objects/` becomes durable at commit,
        // before any object is renamed into it (see `flush_all`). A shard
        // this batch created cannot hold the object yet, so the existence
        // check is only needed in shards that were already there.
        let fresh_shard = self.shards_made.ensure(id.0[0], &shard)?;
        if !fresh_shard && path.is_file() {
            let mut st = self.lock();
            st.present += 1;
            st.shards.insert(shard);
            return Ok(());
        }
        let (mut file, tmp) = durable::create_temp(&path, OBJECT_MODE)?;
        if let Err(e) =
            durable::fault::check().and_then(|()| durable::write_all_parts(&mut file, parts))
        {
            let _ = fs::remove_file(&tmp);
            return Err(IoError::new("write object", tmp, e).into());
        }
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let mut st = self.lock();
        st.staged.push((id, tmp));
        st.written += 1;
        st.shards.insert(shard);
        st.bytes += len;
        st.staged_bytes += len;
        let due = st.staged.len() >= CHECKPOINT_OBJECTS || st.staged_bytes >= CHECKPOINT_BYTES;
        drop(st);
        if due {
            self.start_checkpoint(false);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState> {
        // A panic in another stager cannot leave the state inconsistent:
        // every update is a single push or insert.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publish everything staged so far, in the background: one durability
    /// point, then the renames, on a thread of its own, while staging goes
    /// on. The rule that no object is visible before it is durable holds as
    /// for [`WriteBatch::commit`]; what changes is that these objects may
    /// become visible before the commit, which no reader can tell from
    /// objects written by someone else (nothing refers to them yet).
    /// [`WriteBatch::commit`] waits for the checkpoint and reports its error.
    pub fn checkpoint(&self) {
        self.start_checkpoint(true);
    }

    /// Start a checkpoint. Unless `wait`, give up at once when the previous
    /// one is still running (staging never blocks on the disk).
    fn start_checkpoint(&self, wait: bool) {
        let mut slot = if wait {
            self.early.lock().unwrap_or_else(|p| p.into_inner())
        } else {
            match self.early.try_lock() {
                Ok(slot) => slot,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        };
        match &*slot {
            Some(Early::Running(h)) if !wait && !h.is_finished() => return,
            // A failed checkpoint stops further ones; commit reports it.
            Some(Early::Done(Err(_))) => return,
            _ => {}
        }
        if let Err(e) = wait_early(&mut slot) {
            *slot = Some(Early::Done(Err(e)));
            return;
        }
        let staged = {
            let mut st = self.lock();
            st.staged_bytes = 0;
            std::sync::Arc::new(std::mem::take(&mut st.staged))
        };
        if staged.is_empty() {
            return;
        }
        if self.threads <= 1 {
            // No thread to spare: publish on the caller's.
            *slot = Some(Early::Done(publish_staged(self.store, &staged, 1)));
            return;
        }
        let store = self.store.clone();
        let work = std::sync::Arc::clone(&staged);
        // The checkpoint thread is one of the batch's threads: its renames
        // use the others.
        let threads = self.threads - 1;
        *slot = Some(
            match std::thread::Builder::new()
                .name("checkpoint".to_owned())
                .spawn(move || publish_staged(&store, &work, threads))
            {
                Ok(handle) => Early::Running(handle),
                Err(_) => Early::Done(publish_staged(self.store, &staged, threads)),
            },
        );
    }

    /// Make every staged object durable, then visible, then its directory
    /// entry durable. Only after this returns may refs point at them.
    pub fn commit(self) -> Result<BatchOutcome, StoreError> {
        self.commit_with(false, |_| Ok::<(), StoreError>(()))
    }

    /// [`WriteBatch::commit`], sharing its durability points with files
    /// staged elsewhere (for example retained raw bytes).
    ///
    /// `publish` runs after the staged objects' data is durable and they are
    /// renamed into place, and before the flush that makes those renames
    /// durable. It receives whether that durability came from one
    /// filesystem-wide flush: when it did, every file staged on the same
    /// filesystem before `commit_with` was called is durable too and
    /// `publish` only has to rename its own files, whose entries the final
    /// flush covers; when not, it must make its files durable itself.
    /// `also_pending` says whether `publish` has anything to do, so a batch
    /// with nothing staged still flushes for it.
    pub fn commit_with<E: From<StoreError>>(
        self,
        also_pending: bool,
        publish: impl FnOnce(bool) -> Result<(), E>,
    ) -> Result<BatchOutcome, E> {
        let early = wait_early(&mut self.early.lock().unwrap_or_else(|p| p.into_inner()));
        let st = std::mem::take(&mut *self.lock());
        let outcome = BatchOutcome {
            written: st.written,
            already_present: st.present,
            bytes: st.bytes,
        };
        let staged = st.staged;
        let root = self.store.root();
        let result = (|| -> Result<(), E> {
            early.map_err(StoreError::from)?;
            let flushed = if !staged.is_empty() || also_pending {
                flush_all(root, &staged).map_err(StoreError::from)?
            } else {
                false
            };
            rename_all(self.store, &staged, self.threads).map_err(StoreError::from)?;
            publish(flushed)?;
            if flushed || !st.shards.is_empty() {
                flush_dirs(root, &st.shards).map_err(StoreError::from)?;
            }
            Ok(())
        })();
        // After an error, remove what was not renamed (renamed temps are
        // already gone, so this only ever deletes leftovers).
        if result.is_err() {
            for (_, tmp) in staged {
                let _ = fs::remove_file(tmp);
            }
        }
        result?;
        Ok(outcome)
    }
}

impl Drop for WriteBatch<'_> {
    fn drop(&mut self) {
        let _ = wait_early(&mut self.early.lock().unwrap_or_else(|p| p.into_inner()));
        let st = self.lock();
        for (_, tmp) in &st.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Wait for a checkpoint's publication, if any, and take its result.
fn wait_early(slot: &mut Option<Early>) -> Result<(), IoError> {
    match slot.take() {
        None => Ok(()),
        Some(Early::Done(result)) => result,
        Some(Early::Running(handle)) => handle.join().unwrap_or_else(|_| {
            Err(IoError::new(
                "publish staged objects",
                PathBuf::new(),
                std::io::Error::other("the checkpoint thread panicked"),
            ))
        }),
    }
}

/// Make `staged` durable, then rename it into place; on failure remove the
/// temps not renamed. The renames' directory entries become durable with the
/// batch's final flush.
fn publish_staged(store: &Store, staged: &[(Id, PathBuf)], threads: usize) -> Result<(), IoError> {
    let result = flush_all(store.root(), staged).and_then(|_| rename_all(store, staged, threads));
    if result.is_err() {
        for (_, tmp) in staged {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

/// Rename staged temp files to their objects' paths, spread over up to
/// `threads` threads (renames into different shard directories do not
/// contend), the calling thread one of them: with one, or with few files,
/// no thread is started.
fn rename_all(store: &Store, staged: &[(Id, PathBuf)], threads: usize) -> Result<(), IoError> {
    let per = staged.len().div_ceil(threads.max(1)).max(1024);
    let rename = |part: &[(Id, PathBuf)]| -> Result<(), IoError> {
        for (id, tmp) in part {
            let path = store.path_for(id);
            fs::rename(tmp, &path)
                .map_err(|e| IoError::new("rename object into place", path, e))?;
        }
        Ok(())
    };
    if staged.len() <= per {
        return rename(staged);
    }
    let rename = &rename;
    std::thread::scope(|scope| {
        let mut parts = staged.chunks(per);
        let first = parts.next().unwrap_or_default();
        let workers: Vec<_> = parts
            .map(|part| scope.spawn(move || rename(part)))
            .collect();
        let mine = rename(first);
        let joined = workers.into_iter().map(|w| w.join());
        std::iter::once(Ok(mine)).chain(joined).try_for_each(|w| {
            w.unwrap_or_else(|_| {
                Err(IoError::new(
                    "rename objects into place",
                    store.root(),
                    std::io::Error::other("a rename thread panicked"),
                ))
            })
        })
    })
}

/// One durability point for all staged files and the shard directories
/// created for them: one filesystem-wide flush ([`durable::sync_filesystem`]),
/// or, where there is none, an fsync per staged file and an fsync of
/// `objects/` itself. Returns whether it was a filesystem-wide flush.
///
/// A filesystem-wide flush also writes back unrelated dirty data on that
/// filesystem, so a concurrent heavy writer slows a commit down; it never
/// weakens it.
fn flush_all(root: &Path, staged: &[(Id, PathBuf)]) -> Result<bool, IoError> {
    let flushed = durable::flush_files(root, staged.iter().map(|(_, tmp)| tmp.as_path()))?;
    if !flushed {
        // The shard directories created for this batch live in `objects/`.
        durable::sync_dir(root)?;
    }
    Ok(flushed)
}

/// Make the renames durable: one filesystem flush, else each shard directory.
fn flush_dirs(root: &Path, shards: &BTreeSet<PathBuf>) -> Result<(), IoError> {
    durable::flush_dirs(root, shards.iter().map(PathBuf::as_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkit::object::{Blob, EntryMode, Tree, TreeEntry};

    fn blob(data: &[u8]) -> Object {
        Object::Blob(Blob {
            data: data.to_vec(),
        })
    }

    #[test]
    fn write_read_and_path_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let id = store.write(&blob(b"hello")).unwrap();
        let hex = id.to_hex();
        assert!(dir.path().join(&hex[..2]).join(&hex[2..]).is_file());
        assert_eq!(store.read(&id).unwrap(), blob(b"hello"));
        // Writing again is a no-op that returns the same id.
        assert_eq!(store.write(&blob(b"hello")).unwrap(), id);
    }

    /// Every path under `dir`, sorted.
    fn listing(dir: &Path) -> Vec<PathBuf> {
        let mut all = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                all.push(p);
            }
        }
        all.sort();
        all
    }

    #[test]
    fn a_dry_batch_counts_like_a_real_one_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("objects"));
        fs::create_dir(store.root()).unwrap();
        let kept = store.write(&blob(b"kept")).unwrap();
        let before = listing(store.root());
        let dry = store.dry_batch();
        assert_eq!(dry.add(&blob(b"kept")).unwrap(), kept);
        let new = dry.add(&blob(b"new")).unwrap();
        assert_eq!(dry.add_blob(b"new").unwrap(), new, "an id is counted once");
        dry.checkpoint();
        let outcome = dry.commit().unwrap();
        assert_eq!((outcome.written, outcome.already_present), (1, 1));
        assert_eq!(listing(store.root()), before);
        // The same adds in a real batch give the same ids and counts.
        let real = store.batch();
        assert_eq!(real.add(&blob(b"kept")).unwrap(), kept);
        assert_eq!(real.add(&blob(b"new")).unwrap(), new);
        let outcome = real.commit().unwrap();
        assert_eq!((outcome.written, outcome.already_present), (1, 1));
        assert!(store.contains(&new));
    }

    #[test]
    fn read_detects_swapped_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let a = store.write(&blob(b"a")).unwrap();
        let b = store.write(&blob(b"b")).unwrap();
        let pa = store.path_for(&a);
        fs::set_permissions(&pa, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        fs::copy(store.path_for(&b), &pa).unwrap();
        assert!(matches!(
            store.read(&a),
            Err(StoreError::HashMismatch { expected, found }) if expected == a && found == b
        ));
        fs::write(&pa, b"garbage").unwrap();
        assert!(matches!(store.read(&a), Err(StoreError::Corrupt { .. })));
        assert!(matches!(
            store.read(&Id([0; 32])),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn peek_type_reads_the_prologue_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let a = store.write(&blob(b"a")).unwrap();
        assert_eq!(store.peek_type(&a).unwrap(), Some(ObjectType::Blob));
        assert_eq!(store.peek_type(&Id([0xff; 32])).unwrap(), None);
        let pa = store.path_for(&a);
        fs::set_permissions(&pa, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        // Too short, or not an mkit prologue: no type.
        fs::write(&pa, b"\x01MKT").unwrap();
        assert_eq!(store.peek_type(&a).unwrap(), None);
        fs::write(&pa, b"\x01MKT2\x01rest").unwrap();
        assert_eq!(store.peek_type(&a).unwrap(), None);
        // The prologue is all it looks at.
        fs::write(&pa, b"\x02MKT1\x01 not a tree body").unwrap();
        assert_eq!(store.peek_type(&a).unwrap(), Some(ObjectType::Tree));
    }

    #[test]
    fn tree_is_stored_under_its_merkle_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let child = store.write(&blob(b"x")).unwrap();
        let tree = Object::Tree(Tree {
            entries: vec![TreeEntry {
                name: b"x".to_vec(),
                mode: EntryMode::Blob,
                id: child,
            }],
        });
        let id = store.write(&tree).unwrap();
        assert_ne!(id, id::flat_id(&tree.encode().unwrap()));
        assert_eq!(store.read(&id).unwrap(), tree);
    }

    #[test]
    fn batch_is_invisible_until_commit_and_dropped_batch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let batch = store.batch();
        let id = batch.add(&blob(b"staged")).unwrap();
        let id2 = batch.add_blob(&[5u8; 1000]).unwrap();
        assert_eq!(batch.add(&blob(b"staged")).unwrap(), id);
        assert!(!store.contains(&id));
        drop(batch);
        assert!(!store.contains(&id));
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let batch = store.batch();
        batch.add(&blob(b"staged")).unwrap();
        batch.add_blob(&[5u8; 1000]).unwrap();
        let out = batch.commit().unwrap();
        assert_eq!(out.written, 2);
        assert_eq!(store.read(&id).unwrap(), blob(b"staged"));
        assert_eq!(store.read(&id2).unwrap(), blob(&[5u8; 1000]));

        let again = store.batch();
        again.add(&blob(b"staged")).unwrap();
        let out = again.commit().unwrap();
        assert_eq!((out.written, out.already_present), (0, 1));
    }

    #[test]
    fn batch_accepts_concurrent_stagers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let batch = store.batch();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let batch = &batch;
                s.spawn(move || {
                    for i in 0..50u8 {
                        // Half the ids collide across threads.
                        batch.add(&blob(&[i, t % 2])).unwrap();
                    }
                });
            }
        });
        let out = batch.commit().unwrap();
        assert_eq!(out.written, 100);
        assert_eq!(walk(dir.path()).len(), 100);
    }

    #[test]
    fn checkpoint_publishes_early_and_commit_counts_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());

        // Published at the checkpoint, so still there when the batch is
        // dropped; what was staged after it is not.
        let batch = store.batch();
        let early = batch.add(&blob(b"early")).unwrap();
        batch.checkpoint();
        let late = batch.add(&blob(b"late")).unwrap();
        drop(batch);
        assert_eq!(store.read(&early).unwrap(), blob(b"early"));
        assert!(!store.contains(&late));
        assert_eq!(walk(dir.path()).len(), 1, "no temp file may be left");

        let batch = store.batch();
        batch.add(&blob(b"one")).unwrap();
        batch.checkpoint();
        batch.add(&blob(b"two")).unwrap();
        batch.checkpoint();
        batch.add(&blob(b"three")).unwrap();
        batch.add(&blob(b"early")).unwrap();
        let out = batch.commit().unwrap();
        assert_eq!((out.written, out.already_present), (3, 1));
        for data in [&b"one"[..], b"two", b"three", b"early"] {
            assert_eq!(
                store
                    .read(&id::flat_id(&blob(data).encode().unwrap()))
                    .unwrap(),
                blob(data)
            );
        }
        assert_eq!(walk(dir.path()).len(), 4);
    }

    #[test]
    fn a_large_batch_checkpoints_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let batch = store.batch();
        let n = CHECKPOINT_OBJECTS as u32 + 100;
        let ids: Vec<Id> = (0..n)
            .map(|i| batch.add_blob(&i.to_le_bytes()).unwrap())
            .collect();
        // The first objects are published in the background, before commit.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !store.contains(&ids[0]) {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint happened"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!store.contains(&ids[n as usize - 1]));
        let out = batch.commit().unwrap();
        assert_eq!(out.written, u64::from(n));
        assert_eq!(walk(dir.path()).len(), n as usize);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(store.read(id).unwrap(), blob(&(i as u32).to_le_bytes()));
        }
    }

    #[test]
    fn a_one_thread_batch_checkpoints_on_the_staging_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let batch = store.batch().with_threads(1);
        let n = CHECKPOINT_OBJECTS as u32;
        let ids: Vec<Id> = (0..n)
            .map(|i| batch.add_blob(&i.to_le_bytes()).unwrap())
            .collect();
        // Published by the time the staging call that made it due returns:
        // on this thread, not on one of its own.
        assert!(ids.iter().all(|id| store.contains(id)));
        assert!(matches!(
            *batch.early.lock().unwrap(),
            Some(Early::Done(Ok(())))
        ));
        let later = batch.add_blob(b"after the checkpoint").unwrap();
        assert!(!store.contains(&later));
        let out = batch.commit().unwrap();
        assert_eq!(out.written, u64::from(n) + 1);
        assert!(store.contains(&later));
    }

    #[test]
    fn an_object_published_by_another_writer_meanwhile_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let batch = store.batch();
        // The batch creates the shard, so it does not look for the object;
        // another writer then publishes the same object first.
        let id = batch.add(&blob(b"racing")).unwrap();
        assert_eq!(store.write(&blob(b"racing")).unwrap(), id);
        let out = batch.commit().unwrap();
        assert_eq!(out.written, 1);
        assert_eq!(store.read(&id).unwrap(), blob(b"racing"));
        assert_eq!(walk(dir.path()).len(), 1);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for shard in fs::read_dir(dir).unwrap() {
            let shard = shard.unwrap().path();
            for f in fs::read_dir(&shard).unwrap() {
                out.push(f.unwrap().path());
            }
        }
        out
    }
}
