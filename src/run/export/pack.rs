//! One pack per export run in the staging repository, with its index
//! written by us as the pack is written.
//!
//! Writing each translated object as a loose file costs an inode, a
//! temporary file and a rename per object, which dominates an export of a
//! real history. Instead the run appends every new object, zlib-compressed
//! and without deltas, to one pack file; for each object it notes the id it
//! computed (our collision-detecting SHA-1, the object's name), the offset
//! of its entry and the CRC-32 of the entry's bytes. [`PackWriter::finish`]
//! fills in the header's object count, hashes the file once for the
//! trailer, and writes the version 2 index ([`write_index`]) from those
//! notes: fan-out table, sorted ids, CRC-32s, offsets (and 64-bit offsets
//! past 2 GiB), pack checksum, index checksum. Nothing inflates or re-hashes
//! the objects: the index is the one `git index-pack` would write for the
//! same pack, byte for byte (the tests compare them), and every id in it is
//! the id the translation computed over the very body it compressed.
//!
//! Compression runs on the rayon workers ([`compress`], one reusable zlib
//! state per thread); appending is the caller's, in an order it keeps
//! independent of the thread count, so the pack (and its name) is too.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::git::sha1::{ObjectKind, Sha1};

/// An object ready to append.
#[derive(Debug)]
pub struct PackEntry {
    /// Its id (our collision-detecting SHA-1).
    pub id: Sha1,
    /// Its kind.
    pub kind: ObjectKind,
    /// The body's length, uncompressed.
    pub size: usize,
    /// The body zlib-compressed, or with `stored` the body itself, which
    /// the writer frames as a zlib stream of stored blocks.
    pub data: Vec<u8>,
    /// For a stored entry, the Adler-32 of the body (the stream's trailer).
    pub stored: Option<u32>,
}

/// Why the pack could not be written or did not check out.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// zlib refused the input (a guard).
    #[error("cannot compress git object {0}")]
    Compress(Sha1),
    /// The run was interrupted while the pack was being finished.
    #[error("interrupted while finishing the pack")]
    Interrupted,
    /// More objects than a pack holds.
    #[error("more than 4294967295 objects in one export")]
    TooMany,
}

/// The name prefix of a pack being written, beside `objects/` (renamed
/// into `objects/pack/` once complete).
pub const BODY_PREFIX: &str = "mkit-bridge-pack.tmp.";

/// How a pack's objects are deflated. Either way each entry is a zlib
/// stream git inflates like any other; only the size and the work differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// zlib level 1, the speed git uses for loose objects: about a third of
    /// the objects' size for source code, at a few nanoseconds per byte.
    Fast,
    /// zlib level 0, stored blocks: the objects' own size plus 11 bytes
    /// and 5 more per 64 KiB, and no compression work at all.
    Stored,
}

thread_local! {
    static DEFLATE: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
}

/// The pack entry for `body` (an object of `kind` named `id`) at `level`:
/// compressed on this thread ([`compress`]), or the body itself with its
/// Adler-32, to be framed as stored blocks by the writer (no copy).
pub fn entry(
    level: Level,
    id: Sha1,
    kind: ObjectKind,
    body: Vec<u8>,
) -> Result<PackEntry, PackError> {
    match level {
        Level::Fast => compress(id, kind, &body),
        Level::Stored => Ok(PackEntry {
            id,
            kind,
            size: body.len(),
            stored: Some(zlib_rs::adler32::adler32(1, &body)),
            data: body,
        }),
    }
}

/// Compress `body` (an object of `kind` named `id`) for a pack entry, with
/// this thread's reusable zlib state (flate2 on zlib-rs) at the speed level
/// git uses for loose objects: one zlib stream, finished in one go, the
/// output grown until the stream ends.
pub fn compress(id: Sha1, kind: ObjectKind, body: &[u8]) -> Result<PackEntry, PackError> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z = slot.get_or_insert_with(|| Compress::new(Compression::fast(), true));
        z.reset();
        let mut out: Vec<u8> = Vec::with_capacity(body.len() / 2 + 64);
        let mut rest = body;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(4096));
            }
            let (in0, out0) = (z.total_in(), out.len());
            let status = z
                .compress_vec(rest, &mut out, FlushCompress::Finish)
                .map_err(|_| PackError::Compress(id))?;
            let consumed = usize::try_from(z.total_in() - in0).unwrap_or(usize::MAX);
            rest = rest.get(consumed..).ok_or(PackError::Compress(id))?;
            match status {
                Status::StreamEnd => break,
                // No progress with room to spare: a guard against looping.
                _ if consumed == 0 && out.len() == out0 => return Err(PackError::Compress(id)),
                _ => {}
            }
        }
        Ok(PackEntry {
            id,
            kind,
            size: body.len(),
            data: out,
            stored: None,
        })
    })
}

/// The pack entry header: type and size in git's varint form.
fn entry_header(kind: ObjectKind, size: usize) -> Vec<u8> {
    let t: u8 = match kind {
        ObjectKind::Commit => 1,
        ObjectKind::Tree => 2,
        ObjectKind::Blob => 3,
        ObjectKind::Tag => 4,
    };
    let mut size = size as u64;
    let mut out = Vec::with_capacity(10);
    let mut byte = (t << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size != 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
    out
}

/// Whether the object directory `objects_dir` certainly holds no object:
/// nothing in it but `info/` without `alternates` and an empty `pack/`, as
/// `git init` leaves it. Anything else, or anything unreadable, counts as
/// holding objects.
pub fn holds_no_objects(objects_dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(objects_dir) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        let name = entry.file_name();
        let empty = match name.to_str() {
            Some("pack") => std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none()),
            Some("info") => !entry.path().join("alternates").exists(),
            _ => false,
        };
        if !empty {
            return false;
        }
    }
    true
}

/// The largest stored deflate block.
const STORED_BLOCK: usize = 65_535;

/// Hand the bytes of `e`'s pack entry to `out`, in order: the entry header,
/// then the zlib stream (for a stored entry: the zlib header of a level 0
/// stream, the body in stored blocks of at most 64 KiB - 1, each after its
/// final flag and length, and the Adler-32).
pub(super) fn entry_pieces(
    e: &PackEntry,
    mut out: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    out(&entry_header(e.kind, e.size))?;
    let Some(adler) = e.stored else {
        return out(&e.data);
    };
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (level 0, check bits).
    out(&[0x78, 0x01])?;
    let mut blocks = e.data.chunks(STORED_BLOCK).peekable();
    if blocks.peek().is_none() {
        out(&[0x01, 0x00, 0x00, 0xff, 0xff])?;
    }
    while let Some(block) = blocks.next() {
        let last = u8::from(blocks.peek().is_none());
        let len = block.len() as u16;
        let [l0, l1] = len.to_le_bytes();
        let [n0, n1] = (!len).to_le_bytes();
        out(&[last, l0, l1, n0, n1])?;
        out(block)?;
    }
    out(&adler.to_be_bytes())
}

/// How many bytes [`entry_pieces`] hands over for `e`.
pub(super) fn framed_len(e: &PackEntry) -> u64 {
    let header = entry_header(e.kind, e.size).len() as u64;
    let data = e.data.len() as u64;
    match e.stored {
        None => header + data,
        // zlib header, a 5-byte head per block (one at least), Adler-32.
        Some(_) => header + 2 + 5 * data.div_ceil(STORED_BLOCK as u64).max(1) + data + 4,
    }
}

/// One object's line in the pack index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Its id.
    pub id: Sha1,
    /// The CRC-32 of its entry in the pack (entry header and compressed
    /// data).
    pub crc32: u32,
    /// Where its entry starts in the pack file.
    pub offset: u64,
}

/// The pack header for `count` objects (version 2).
fn pack_header(count: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[..4].copy_from_slice(b"PACK");
    h[4..8].copy_from_slice(&2u32.to_be_bytes());
    h[8..].copy_from_slice(&count.to_be_bytes());
    h
}

/// Offsets above this one go into the index's 64-bit table, as git writes
/// them.
const MAX_OFFSET_32: u64 = 0x7fff_ffff;

/// Write the version 2 pack index of a pack holding `entries` whose trailer
/// is `pack_checksum`, in the layout `git index-pack` writes: magic and
/// version, the 256-entry fan-out table, the ids in ascending order, their
/// CRC-32s, their offsets (an offset above 2^31 - 1 is stored as the high
/// bit plus its position in the 64-bit table that follows), the pack
/// checksum and the SHA-1 of everything before. Sorts `entries` by id;
/// refuses an id listed twice. Returns the index's own checksum.
pub fn write_index(
    entries: &mut [IndexEntry],
    pack_checksum: &[u8; 20],
    out: &mut dyn Write,
) -> io::Result<[u8; 20]> {
    entries.sort_unstable_by_key(|e| e.id);
    if let Some(w) = entries.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("object {} listed twice", w[0].id.to_hex()),
        ));
    }
    let count = u32::try_from(entries.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many objects"))?;
    let mut w = HashingWriter {
        out: BufWriter::with_capacity(1 << 16, out),
        hasher: checksum_hasher(),
    };
    w.write_all(b"\xfftOc")?;
    w.write_all(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for e in entries.iter() {
        fanout[usize::from(e.id.0[0])] += 1;
    }
    let mut running = 0u32;
    for n in fanout {
        running += n;
        w.write_all(&running.to_be_bytes())?;
    }
    debug_assert_eq!(running, count);
    for e in entries.iter() {
        w.write_all(&e.id.0)?;
    }
    for e in entries.iter() {
        w.write_all(&e.crc32.to_be_bytes())?;
    }
    let mut large: Vec<u64> = Vec::new();
    for e in entries.iter() {
        let word = if e.offset > MAX_OFFSET_32 {
            large.push(e.offset);
            0x8000_0000 | u32::try_from(large.len() - 1).map_err(io::Error::other)?
        } else {
            e.offset as u32
        };
        w.write_all(&word.to_be_bytes())?;
    }
    for offset in large {
        w.write_all(&offset.to_be_bytes())?;
    }
    w.write_all(pack_checksum)?;
    let mut sum = [0u8; 20];
    sum.copy_from_slice(w.hasher.finish().as_ref());
    w.out.write_all(&sum)?;
    w.out.flush()?;
    Ok(sum)
}

/// The SHA-1 for the pack's and the index's trailing checksums: plain
/// SHA-1 (aws-lc's, already linked for TLS), two and a half times faster
/// than the collision-detecting one here. A checksum over bytes we wrote
/// ourselves names nothing and needs no detection; object ids keep it.
fn checksum_hasher() -> aws_lc_rs::digest::Context {
    aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY)
}

/// A writer that hashes what goes through it.
struct HashingWriter<W: Write> {
    out: W,
    hasher: aws_lc_rs::digest::Context,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The packs of one run, each written to a temporary file beside
/// `objects/`, with what its index needs. Usually one; [`PackWriter::seal`]
/// completes the pack so far (on another thread, while the run goes on) and
/// starts the next.
#[derive(Debug)]
pub struct PackWriter {
    root: PathBuf,
    pack_dir: PathBuf,
    body_path: PathBuf,
    body: Option<BufWriter<File>>,
    /// Where the next entry starts.
    offset: u64,
    entries: Vec<IndexEntry>,
    /// Every id appended to any of the run's packs.
    written: HashSet<Sha1>,
    /// Packs sealed on the run's pool, being completed: each answers once
    /// (a job that panicked or never ran drops its sender).
    sealed: Vec<std::sync::mpsc::Receiver<Result<Option<PathBuf>, PackError>>>,
    /// The keep files of packs sealed on this thread.
    keeps: Vec<PathBuf>,
    /// A reusable buffer for short entries copied from a spill.
    copy_buf: Vec<u8>,
}

/// A [`PackError::Io`] maker for `action` on `path`.
fn io_at(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PackError {
    let path = path.to_path_buf();
    move |source| PackError::Io {
        action,
        path,
        source,
    }
}

/// A temporary pack file name beside `objects/` (in `root`), unique in the
/// process and tagged with its id for the sweep.
fn body_path(root: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    root.join(format!("{BODY_PREFIX}{}.{seq}", std::process::id()))
}

/// A scratch file name beside `objects/` (in `root`) for
/// [`super::spill::Spill`], swept like a pack body should a run die before
/// unlinking it.
pub(super) fn scratch_path(root: &Path) -> PathBuf {
    let mut p = body_path(root).into_os_string();
    p.push(".spill");
    PathBuf::from(p)
}

/// The pack body's write buffer: most bytes bypass it (spilled entries
/// are copied file to file), so it need not be large.
const BODY_BUFFER: usize = 64 << 10;

/// The size from which [`PackWriter::seal`] completes the pack so far: the
/// pass that hashes it for its trailer takes long enough (about 10 ms) to be
/// worth taking off the run's path.
pub const SEAL_AT: u64 = 16 << 20;

/// A sealed pack never stops for an interrupt: it is one pass over a file
/// (the run stops at its next check).
static NEVER: AtomicBool = AtomicBool::new(false);

impl PackWriter {
    /// A writer for the repository whose `objects` directory is `objects_dir`.
    pub fn new(objects_dir: &Path) -> PackWriter {
        let root = objects_dir.parent().unwrap_or(objects_dir).to_path_buf();
        PackWriter {
            pack_dir: objects_dir.join("pack"),
            body_path: body_path(&root),
            root,
            body: None,
            offset: 0,
            entries: Vec::new(),
            written: HashSet::new(),
            sealed: Vec::new(),
            keeps: Vec::new(),
            copy_buf: Vec::new(),
        }
    }

    /// Objects appended so far, to all the run's packs.
    pub fn len(&self) -> usize {
        self.written.len()
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// Append one entry, unless an entry with its id was appended already
    /// (two mkit objects may translate to one git object). Returns whether
    /// it was appended.
    pub fn append(&mut self, e: &PackEntry) -> Result<bool, PackError> {
        if self.written.contains(&e.id) {
            return Ok(false);
        }
        let body = self.body()?;
        let mut crc = crc32fast::Hasher::new();
        let mut len = 0u64;
        crate::durable::fault::check()
            .and_then(|()| {
                entry_pieces(e, |piece| {
                    crc.update(piece);
                    len += piece.len() as u64;
                    body.write_all(piece)
                })
            })
            .map_err(io_at("write", &self.body_path))?;
        self.noted(e.id, crc.finalize(), len);
        Ok(true)
    }

    /// Append an entry that waits in `spill` (see [`PackWriter::append`]).
    pub fn append_spilled(
        &mut self,
        s: &super::spill::Spilled,
        spill: &super::spill::Spill,
    ) -> Result<bool, PackError> {
        if self.written.contains(&s.id) {
            return Ok(false);
        }
        let mut buf = std::mem::take(&mut self.copy_buf);
        let body = self.body()?;
        let copied =
            crate::durable::fault::check().and_then(|()| spill.copy_into(s, body, &mut buf));
        self.copy_buf = buf;
        copied.map_err(io_at("write", &self.body_path))?;
        self.noted(s.id, s.crc32, s.len);
        Ok(true)
    }

    /// The pack being written, created with its header when none is.
    fn body(&mut self) -> Result<&mut BufWriter<File>, PackError> {
        if self.body.is_none() {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.body_path)
                .map_err(io_at("create", &self.body_path))?;
            let mut w = BufWriter::with_capacity(BODY_BUFFER, f);
            // The object count is filled in when the pack is completed.
            w.write_all(&pack_header(0))
                .map_err(io_at("write", &self.body_path))?;
            self.body = Some(w);
            self.offset = 12;
        }
        self.body.as_mut().ok_or(PackError::TooMany)
    }

    /// Note the entry of `id`, `len` bytes with CRC-32 `crc32`, appended at
    /// the current offset.
    fn noted(&mut self, id: Sha1, crc32: u32, len: u64) {
        self.entries.push(IndexEntry {
            id,
            crc32,
            offset: self.offset,
        });
        self.written.insert(id);
        self.offset += len;
    }

    /// The pack written so far, handed over for completion; the next
    /// append starts a new one.
    fn take_pending(&mut self) -> Result<Option<Pending>, PackError> {
        let Some(body) = self.body.take() else {
            return Ok(None);
        };
        let path = std::mem::replace(&mut self.body_path, body_path(&self.root));
        let file = match body.into_inner() {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(io_at("write", &path)(e.into_error()));
            }
        };
        Ok(Some(Pending {
            pack_dir: self.pack_dir.clone(),
            path,
            file: Some(file),
            len: std::mem::replace(&mut self.offset, 0),
            entries: std::mem::take(&mut self.entries),
        }))
    }

    /// When the pack written so far holds at least [`SEAL_AT`] bytes,
    /// complete it (as [`PackWriter::finish`] does) and start a new one for
    /// what is appended next: as a job on `pool` when one is given (the
    /// caller goes on working meanwhile, within the pool's threads, so
    /// `--jobs` still bounds the run; only [`PackWriter::finish`] reports
    /// the outcome), else at once. A smaller pack just goes on: its trailer
    /// is a short pass at the end.
    pub fn seal(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
        interrupt: &AtomicBool,
    ) -> Result<(), PackError> {
        if self.offset < SEAL_AT {
            return Ok(());
        }
        let Some(mut pending) = self.take_pending()? else {
            return Ok(());
        };
        if let Some(pool) = pool {
            let (tx, rx) = std::sync::mpsc::channel();
            pool.spawn(move || {
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pending.complete(&NEVER)
                }));
                if let Ok(done) = done {
                    let _ = tx.send(done);
                }
            });
            self.sealed.push(rx);
        } else if let Some(keep) = pending.complete(interrupt)? {
            self.keeps.push(keep);
        }
        Ok(())
    }

    /// Complete the current pack, wait for the sealed ones, and return the
    /// `.keep` files that protect the new packs until refs point into them
    /// (remove them then). Each pack is completed with its object count
    /// and trailer and put with its index into `objects/pack` as
    /// `pack-<checksum>.{keep,pack,idx}`, the index last, each fsynced
    /// before it is renamed into place and the directory after. A pack
    /// already there under the same name (the same bytes) is left as is,
    /// with no keep file.
    pub fn finish(mut self, interrupt: &AtomicBool) -> Result<Vec<PathBuf>, PackError> {
        let current = match self.take_pending()? {
            Some(mut pending) => pending.complete(interrupt),
            None => Ok(None),
        };
        let mut keeps = std::mem::take(&mut self.keeps);
        let mut failed = None;
        for handle in self.sealed.drain(..) {
            match handle.recv() {
                Ok(Ok(keep)) => keeps.extend(keep),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => {
                    failed = failed.or(Some(io_at("complete", &self.pack_dir)(io::Error::other(
                        "the job completing a pack failed to answer (it panicked)",
                    ))))
                }
            }
        }
        keeps.extend(current?);
        match failed {
            Some(e) => Err(e),
            None => Ok(keeps),
        }
    }
}

/// A pack whose last entry is written, waiting for its count, trailer and
/// index.
#[derive(Debug)]
struct Pending {
    pack_dir: PathBuf,
    /// Its temporary file.
    path: PathBuf,
    file: Option<File>,
    /// Its length without the trailer.
    len: u64,
    entries: Vec<IndexEntry>,
}

impl Pending {
    /// Fill in the count, hash the file for the trailer, write the index,
    /// and put both into `objects/pack` (see [`PackWriter::finish`]).
    /// Returns the keep file of a pack that was new.
    fn complete(&mut self, interrupt: &AtomicBool) -> Result<Option<PathBuf>, PackError> {
        let count = u32::try_from(self.entries.len()).map_err(|_| PackError::TooMany)?;
        let path = self.path.clone();
        let file = self.file.take().ok_or(PackError::TooMany)?;
        file.write_all_at(&pack_header(count), 0)
            .map_err(io_at("write", &path))?;
        // Durable before its name appears (the index is fsynced too, then
        // the directory): nothing else flushes the pack. The body goes to
        // disk while it is hashed for the trailer (both only read its pages).
        let (checksum, flushed) = std::thread::scope(|scope| {
            let flush = scope.spawn(|| file.sync_data());
            let checksum = pack_checksum(&file, self.len, &path, interrupt);
            let flushed = flush
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the flushing thread panicked")));
            (checksum, flushed)
        });
        let checksum = checksum?;
        flushed.map_err(io_at("fsync", &path))?;
        file.write_all_at(&checksum, self.len)
            .and_then(|()| file.sync_data())
            .map_err(io_at("write", &path))?;
        drop(file);
        let name = format!("pack-{}", Sha1(checksum).to_hex());
        std::fs::create_dir_all(&self.pack_dir).map_err(io_at("create", &self.pack_dir))?;
        let data_path = self.pack_dir.join(format!("{name}.pack"));
        let index_path = self.pack_dir.join(format!("{name}.idx"));
        let keep = if data_path.is_file() {
            None
        } else {
            let keep = self.pack_dir.join(format!("{name}.keep"));
            std::fs::write(&keep, b"").map_err(io_at("create", &keep))?;
            std::fs::rename(&path, &data_path).map_err(io_at("move into place", &data_path))?;
            Some(keep)
        };
        if !index_path.is_file() {
            let tmp = self
                .pack_dir
                .join(format!("tmp_idx_mkit-bridge_{}_{name}", std::process::id()));
            let written = File::create(&tmp)
                .and_then(|mut f| {
                    write_index(&mut self.entries, &checksum, &mut f)?;
                    f.sync_all()
                })
                .map_err(io_at("write", &tmp))
                .and_then(|_| {
                    std::fs::rename(&tmp, &index_path)
                        .map_err(io_at("move into place", &index_path))
                });
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        crate::durable::sync_dir(&self.pack_dir).map_err(|e| PackError::Io {
            action: "fsync",
            path: e.path,
            source: e.source,
        })?;
        Ok(keep)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Gone once renamed into place; else not needed any more.
        self.file = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The SHA-1 of the first `len` bytes of `file` (the pack's trailer).
fn pack_checksum(
    file: &File,
    len: u64,
    path: &Path,
    interrupt: &AtomicBool,
) -> Result<[u8; 20], PackError> {
    let mut hasher = checksum_hasher();
    // Small enough not to weigh on the run's memory (a sealed pack is
    // hashed while the translation goes on), large enough that the reads
    // cost nothing next to the hashing.
    let mut buf = vec![0u8; 128 << 10];
    let mut at = 0u64;
    while at < len {
        if interrupt.load(Ordering::Relaxed) {
            return Err(PackError::Interrupted);
        }
        let want = usize::try_from((len - at).min(buf.len() as u64)).unwrap_or(buf.len());
        file.read_exact_at(&mut buf[..want], at)
            .map_err(io_at("read", path))?;
        hasher.update(&buf[..want]);
        at += want as u64;
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(hasher.finish().as_ref());
    Ok(out)
}

impl Drop for PackWriter {
    /// A writer dropped before [`PackWriter::finish`] (a failed run) waits
    /// for its sealed packs and removes their keep files: complete packs
    /// nothing refers to, harmless, and prunable by git.
    fn drop(&mut self) {
        self.body = None;
        let _ = std::fs::remove_file(&self.body_path);
        for handle in self.sealed.drain(..) {
            if let Ok(Ok(Some(keep))) = handle.recv() {
                self.keeps.push(keep);
            }
        }
        for keep in self.keeps.drain(..) {
            let _ = std::fs::remove_file(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_headers_follow_git() {
        assert_eq!(entry_header(ObjectKind::Blob, 5), vec![0x35]);
        assert_eq!(entry_header(ObjectKind::Commit, 16), vec![0x90, 0x01]);
        assert_eq!(entry_header(ObjectKind::Tag, 0), vec![0x40]);
        assert_eq!(
            entry_header(ObjectKind::Tree, 1 << 20),
            vec![0xa0, 0x80, 0x80, 0x04]
        );
    }

    #[test]
    fn compressed_bodies_inflate_back() {
        for body in [
            Vec::new(),
            b"hello\n".to_vec(),
            (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect(),
        ] {
            let e = compress(Sha1([1; 20]), ObjectKind::Blob, &body).unwrap();
            let mut z = gix::zlib::Inflate::default();
            let mut out = vec![0u8; body.len() + 16];
            let (_, _, produced) = z.once(&e.data, &mut out).unwrap();
            assert_eq!(&out[..produced], &body[..]);
            // Twice in a row on one thread: the state is reset.
            let again = compress(Sha1([1; 20]), ObjectKind::Blob, &body).unwrap();
            assert_eq!(again.data, e.data);
            // Stored: the writer frames the body itself; zlib inflates it.
            let stored =
                entry(Level::Stored, Sha1([1; 20]), ObjectKind::Blob, body.clone()).unwrap();
            assert_eq!(stored.data, body);
            let mut framed = Vec::new();
            entry_pieces(&stored, |p| {
                framed.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            let header = entry_header(ObjectKind::Blob, body.len());
            assert_eq!(&framed[..header.len()], &header[..]);
            let stream = &framed[header.len()..];
            assert_eq!(
                stream.len(),
                body.len() + 6 + 5 * body.len().div_ceil(65_535).max(1)
            );
            let mut z = gix::zlib::Inflate::default();
            let (status, consumed, produced) = z.once(stream, &mut out).unwrap();
            assert_eq!(status, gix::zlib::Status::StreamEnd);
            assert_eq!(consumed, stream.len());
            assert_eq!(&out[..produced], &body[..]);
        }
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::git::sha1::object_id;
    use std::process::Command;

    fn entry(kind: ObjectKind, body: &[u8]) -> PackEntry {
        compress(object_id(kind, body).unwrap(), kind, body).unwrap()
    }

    /// Objects of every kind and of sizes that take one to four bytes of
    /// entry header, in no particular id order.
    fn sample() -> Vec<PackEntry> {
        let mut out = Vec::new();
        for (i, len) in [0usize, 1, 15, 16, 2047, 2048, 70_000, 300_000]
            .into_iter()
            .enumerate()
        {
            let body: Vec<u8> = (0..len)
                .map(|j| (j as u32).wrapping_mul(2_654_435_761).rotate_left(i as u32) as u8)
                .collect();
            out.push(entry(ObjectKind::Blob, &body));
        }
        let blob = out[1].id;
        let mut tree = b"100644 a\0".to_vec();
        tree.extend_from_slice(&blob.0);
        let tree_entry = entry(ObjectKind::Tree, &tree);
        let commit = format!(
            "tree {}\nauthor A <a@example.com> 1 +0000\ncommitter A <a@example.com> 1 +0000\n\nm\n",
            tree_entry.id.to_hex()
        );
        let commit_entry = entry(ObjectKind::Commit, commit.as_bytes());
        let tag = format!(
            "object {}\ntype commit\ntag v1\ntagger A <a@example.com> 1 +0000\n\nt\n",
            commit_entry.id.to_hex()
        );
        out.push(entry(ObjectKind::Tag, tag.as_bytes()));
        out.push(commit_entry);
        out.push(tree_entry);
        out
    }

    fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Write `entries` through a writer into a fresh `objects` directory;
    /// returns the directory, the `pack-<hash>` base path and the keep file.
    fn write_pack(entries: &[PackEntry]) -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        fs_create(&objects);
        let mut w = PackWriter::new(&objects);
        for e in entries {
            w.append(e).unwrap();
        }
        let keep = w.finish(&AtomicBool::new(false)).unwrap();
        let packs: Vec<PathBuf> = std::fs::read_dir(objects.join("pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pack"))
            .collect();
        assert_eq!(packs.len(), 1, "{packs:?}");
        (dir, packs[0].with_extension(""), keep)
    }

    fn fs_create(p: &Path) {
        std::fs::create_dir_all(p).unwrap();
    }

    #[test]
    fn the_index_is_the_one_git_index_pack_writes() {
        let entries = sample();
        let (dir, base, keep) = write_pack(&entries);
        let pack = base.with_extension("pack");
        let ours = std::fs::read(base.with_extension("idx")).unwrap();
        let theirs_path = dir.path().join("git.idx");
        let printed = git(
            dir.path(),
            &[
                "index-pack",
                "-o",
                theirs_path.to_str().unwrap(),
                pack.to_str().unwrap(),
            ],
        );
        let theirs = std::fs::read(&theirs_path).unwrap();
        assert_eq!(ours.len(), theirs.len());
        assert!(ours == theirs, "our .idx differs from git index-pack's");
        // git names the pack by its trailer, as we did.
        let name = base.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            format!("pack-{}", String::from_utf8_lossy(&printed).trim()),
            name
        );
        assert_eq!(keep, vec![base.with_extension("keep")]);
        assert!(base.with_extension("keep").is_file());
        // And git's own check lists exactly our ids.
        let listed = git(
            dir.path(),
            &[
                "verify-pack",
                "-v",
                base.with_extension("idx").to_str().unwrap(),
            ],
        );
        let mut ids: Vec<String> = String::from_utf8_lossy(&listed)
            .lines()
            .filter(|l| l.len() > 41 && l.as_bytes()[40] == b' ')
            .map(|l| l[..40].to_owned())
            .collect();
        ids.sort();
        let mut want: Vec<String> = entries.iter().map(|e| e.id.to_hex()).collect();
        want.sort();
        assert_eq!(ids, want);
        // Nothing is left beside `objects/`.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(BODY_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_object_appended_twice_is_written_once() {
        let entries = sample();
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        fs_create(&objects);
        let mut w = PackWriter::new(&objects);
        assert!(w.append(&entries[0]).unwrap());
        assert!(w.append(&entries[1]).unwrap());
        assert!(!w.append(&entries[0]).unwrap());
        assert_eq!(w.len(), 2);
        w.finish(&AtomicBool::new(false)).unwrap();
        let pack_dir = objects.join("pack");
        let idx = std::fs::read_dir(&pack_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .unwrap();
        let listed = git(dir.path(), &["verify-pack", "-v", idx.to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&listed).contains("non delta: 2 objects"),
            "{}",
            String::from_utf8_lossy(&listed)
        );
    }

    #[test]
    fn the_same_pack_again_is_left_as_it_is() {
        let entries = sample();
        let (dir, base, _) = write_pack(&entries);
        let objects = dir.path().join("objects");
        std::fs::remove_file(base.with_extension("keep")).unwrap();
        let before = std::fs::metadata(base.with_extension("pack")).unwrap();
        let mut w = PackWriter::new(&objects);
        for e in &entries {
            w.append(e).unwrap();
        }
        // Named by its content: the existing pack is kept, no keep file.
        assert!(w.finish(&AtomicBool::new(false)).unwrap().is_empty());
        let after = std::fs::metadata(base.with_extension("pack")).unwrap();
        assert_eq!(
            before.modified().unwrap(),
            after.modified().unwrap(),
            "the pack was rewritten"
        );
        assert!(!base.with_extension("keep").exists());
        // An empty writer writes nothing at all.
        let w = PackWriter::new(&objects);
        assert!(w.finish(&AtomicBool::new(false)).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(objects.join("pack")).unwrap().count(), 2);
    }

    #[test]
    fn an_interrupted_finish_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        fs_create(&objects);
        let mut w = PackWriter::new(&objects);
        for e in &sample() {
            w.append(e).unwrap();
        }
        assert!(matches!(
            w.finish(&AtomicBool::new(true)),
            Err(PackError::Interrupted)
        ));
        assert!(!objects.join("pack").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// The `pack-<hash>` bases in `objects/pack`, sorted.
    fn bases(objects: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(objects.join("pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pack"))
            .map(|p| p.with_extension(""))
            .collect();
        out.sort();
        out
    }

    /// A stored blob of `len` pseudo-random bytes.
    fn big_blob(len: usize, seed: u32) -> PackEntry {
        let body: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed).rotate_left(7) as u8)
            .collect();
        let id = object_id(ObjectKind::Blob, &body).unwrap();
        super::entry(Level::Stored, id, ObjectKind::Blob, body).unwrap()
    }

    #[test]
    fn a_sealed_pack_and_the_next_are_each_the_packs_git_would_index() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for background in [Some(&pool), None] {
            let dir = tempfile::tempdir().unwrap();
            let odb = dir.path().join("objects");
            fs_create(&odb);
            let small = sample();
            let mut w = PackWriter::new(&odb);
            w.append(&big_blob(SEAL_AT as usize, 1)).unwrap();
            w.append(&small[0]).unwrap();
            w.seal(background, &AtomicBool::new(false)).unwrap();
            // Appended to the first pack already: not written again.
            assert!(!w.append(&small[0]).unwrap());
            for e in &small[1..] {
                w.append(e).unwrap();
            }
            assert_eq!(w.len(), 1 + small.len());
            let keeps = w.finish(&AtomicBool::new(false)).unwrap();
            let packs = bases(&odb);
            assert_eq!(packs.len(), 2, "{packs:?}");
            let mut want: Vec<PathBuf> = packs.iter().map(|b| b.with_extension("keep")).collect();
            let mut keeps = keeps;
            keeps.sort();
            want.sort();
            assert_eq!(keeps, want);
            let mut listed = Vec::new();
            for base in &packs {
                let theirs = dir.path().join("git.idx");
                git(
                    dir.path(),
                    &[
                        "index-pack",
                        "-o",
                        theirs.to_str().unwrap(),
                        base.with_extension("pack").to_str().unwrap(),
                    ],
                );
                assert!(
                    std::fs::read(&theirs).unwrap()
                        == std::fs::read(base.with_extension("idx")).unwrap()
                );
                let (_, ids, ..) = parse(&std::fs::read(base.with_extension("idx")).unwrap());
                listed.extend(ids);
            }
            listed.sort();
            assert_eq!(
                listed.len(),
                1 + small.len(),
                "each object in one pack only"
            );
            listed.dedup();
            assert_eq!(listed.len(), 1 + small.len());
        }
    }

    #[test]
    fn a_small_pack_is_not_sealed_and_a_dropped_writer_leaves_no_keep() {
        let dir = tempfile::tempdir().unwrap();
        let odb = dir.path().join("objects");
        fs_create(&odb);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut w = PackWriter::new(&odb);
        for e in &sample() {
            w.append(e).unwrap();
        }
        w.seal(Some(&pool), &AtomicBool::new(false)).unwrap();
        assert!(
            !odb.join("pack").exists(),
            "below the threshold: still one pack being written"
        );
        let keeps = w.finish(&AtomicBool::new(false)).unwrap();
        assert_eq!(keeps.len(), 1);
        std::fs::remove_file(&keeps[0]).unwrap();
        // A run that fails after sealing: the sealed pack is complete, its
        // keep file gone, nothing left beside `objects/`.
        let mut w = PackWriter::new(&odb);
        w.append(&big_blob(SEAL_AT as usize, 2)).unwrap();
        w.seal(Some(&pool), &AtomicBool::new(false)).unwrap();
        w.append(&big_blob(100, 3)).unwrap();
        drop(w);
        assert_eq!(bases(&odb).len(), 2);
        let left: Vec<String> = std::fs::read_dir(odb.join("pack"))
            .unwrap()
            .chain(std::fs::read_dir(dir.path()).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".keep") || n.starts_with(BODY_PREFIX) || n.starts_with("tmp_"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// A parsed version 2 index: (fan-out, ids, CRCs, offset words, 64-bit
    /// offsets, pack checksum).
    type ParsedIndex = (
        Vec<u32>,
        Vec<[u8; 20]>,
        Vec<u32>,
        Vec<u32>,
        Vec<u64>,
        [u8; 20],
    );

    /// Parse a version 2 index ([`ParsedIndex`]), checking its own checksum.
    fn parse(idx: &[u8]) -> ParsedIndex {
        let be32 = |at: usize| u32::from_be_bytes(idx[at..at + 4].try_into().unwrap());
        assert_eq!(&idx[..8], b"\xfftOc\0\0\0\x02");
        let fanout: Vec<u32> = (0..256).map(|i| be32(8 + 4 * i)).collect();
        let n = fanout[255] as usize;
        let ids_at = 8 + 1024;
        let ids = (0..n)
            .map(|i| {
                idx[ids_at + 20 * i..ids_at + 20 * i + 20]
                    .try_into()
                    .unwrap()
            })
            .collect();
        let crc_at = ids_at + 20 * n;
        let crcs = (0..n).map(|i| be32(crc_at + 4 * i)).collect();
        let off_at = crc_at + 4 * n;
        let words: Vec<u32> = (0..n).map(|i| be32(off_at + 4 * i)).collect();
        let large_at = off_at + 4 * n;
        let nlarge = words.iter().filter(|w| *w & 0x8000_0000 != 0).count();
        let large = (0..nlarge)
            .map(|i| {
                u64::from_be_bytes(
                    idx[large_at + 8 * i..large_at + 8 * i + 8]
                        .try_into()
                        .unwrap(),
                )
            })
            .collect();
        let tail = large_at + 8 * nlarge;
        assert_eq!(idx.len(), tail + 40);
        let sum = object_sha1(&idx[..tail + 20]);
        assert_eq!(&idx[tail + 20..], &sum[..], "index checksum");
        (
            fanout,
            ids,
            crcs,
            words,
            large,
            idx[tail..tail + 20].try_into().unwrap(),
        )
    }

    fn object_sha1(bytes: &[u8]) -> [u8; 20] {
        let mut h = gix::hash::hasher(gix::hash::Kind::Sha1);
        h.update(bytes);
        let mut out = [0u8; 20];
        out.copy_from_slice(h.try_finalize().unwrap().as_slice());
        out
    }

    #[test]
    fn offsets_past_2_gib_go_to_the_64_bit_table() {
        let id = |b: u8, c: u8| {
            let mut s = [b; 20];
            s[19] = c;
            Sha1(s)
        };
        let mut entries = vec![
            IndexEntry {
                id: id(0xee, 1),
                crc32: 5,
                offset: 0x1_0000_0000,
            },
            IndexEntry {
                id: id(0x00, 0),
                crc32: 1,
                offset: 12,
            },
            IndexEntry {
                id: id(0x7f, 9),
                crc32: 3,
                offset: 0x7fff_ffff,
            },
            IndexEntry {
                id: id(0x7f, 2),
                crc32: 2,
                offset: 0x8000_0000,
            },
            IndexEntry {
                id: id(0xff, 0),
                crc32: 6,
                offset: 40,
            },
        ];
        let mut out = Vec::new();
        let sum = write_index(&mut entries, &[0xab; 20], &mut out).unwrap();
        let (fanout, ids, crcs, words, large, pack_sum) = parse(&out);
        assert_eq!(&out[out.len() - 20..], &sum[..]);
        assert_eq!(pack_sum, [0xab; 20]);
        assert_eq!(fanout[0], 1);
        assert_eq!(fanout[0x7e], 1);
        assert_eq!(fanout[0x7f], 3);
        assert_eq!(fanout[0xee], 4);
        assert_eq!(fanout[0xfe], 4);
        assert_eq!(fanout[0xff], 5);
        assert_eq!(
            ids,
            vec![
                id(0, 0).0,
                id(0x7f, 2).0,
                id(0x7f, 9).0,
                id(0xee, 1).0,
                id(0xff, 0).0
            ]
        );
        assert_eq!(crcs, vec![1, 2, 3, 5, 6]);
        // 2^31 - 1 still fits; 2^31 and above are table positions, in id order.
        assert_eq!(words, vec![12, 0x8000_0000, 0x7fff_ffff, 0x8000_0001, 40]);
        assert_eq!(large, vec![0x8000_0000, 0x1_0000_0000]);
        // gix reads the same offsets back.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pack-x.idx");
        std::fs::write(&path, &out).unwrap();
        let file = gix::odb::pack::index::File::at(&path, gix::hash::Kind::Sha1).unwrap();
        for e in &entries {
            let at = file.lookup(gix::ObjectId::from(e.id.0)).unwrap();
            assert_eq!(file.pack_offset_at_index(at), e.offset);
            assert_eq!(file.crc32_at_index(at), Some(e.crc32));
        }
    }

    #[test]
    fn compression_matches_gix_zlib_byte_for_byte() {
        // The bytes gix's own deflate (the same zlib-rs, level 1) gives for
        // one finished stream: what earlier runs wrote into their packs.
        use gix::zlib::stream::deflate::{Compress, FlushCompress};
        let text: Vec<u8> = (0..40_000u32)
            .flat_map(|i| format!("line {} of {}\n", i % 97, i % 13).into_bytes())
            .collect();
        let noise: Vec<u8> = (0..200_000u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
            .collect();
        for body in [&b""[..], b"x", b"hello\n", &text, &noise] {
            let mut z = Compress::new(gix::zlib::Compression::BEST_SPEED);
            let mut want = vec![0u8; body.len() + body.len() / 100 + 128];
            let status = z.compress(body, &mut want, FlushCompress::Finish).unwrap();
            assert!(matches!(status, gix::zlib::Status::StreamEnd));
            want.truncate(usize::try_from(z.total_out()).unwrap());
            let got = compress(Sha1([2; 20]), ObjectKind::Blob, body).unwrap();
            assert_eq!(got.data, want, "body of {} bytes", body.len());
            assert_eq!(got.size, body.len());
        }
    }

    #[test]
    fn only_an_untouched_object_directory_holds_no_objects() {
        let dir = tempfile::tempdir().unwrap();
        let odb = dir.path().join("objects");
        assert!(!holds_no_objects(&odb), "missing");
        fs_create(&odb.join("pack"));
        fs_create(&odb.join("info"));
        assert!(holds_no_objects(&odb));
        std::fs::write(odb.join("info/alternates"), "/elsewhere\n").unwrap();
        assert!(!holds_no_objects(&odb), "alternates");
        std::fs::remove_file(odb.join("info/alternates")).unwrap();
        fs_create(&odb.join("ab"));
        assert!(!holds_no_objects(&odb), "a loose fan-out directory");
        std::fs::remove_dir(odb.join("ab")).unwrap();
        let mut w = PackWriter::new(&odb);
        w.append(&sample()[0]).unwrap();
        w.finish(&AtomicBool::new(false)).unwrap();
        assert!(!holds_no_objects(&odb), "a pack");
        // What `git init --bare` makes counts as empty too.
        let bare = dir.path().join("bare.git");
        git(
            dir.path(),
            &["init", "--bare", "--quiet", bare.to_str().unwrap()],
        );
        assert!(holds_no_objects(&bare.join("objects")));
    }

    #[test]
    fn an_id_listed_twice_is_refused() {
        let e = IndexEntry {
            id: Sha1([3; 20]),
            crc32: 0,
            offset: 12,
        };
        let mut entries = vec![e, IndexEntry { offset: 99, ..e }];
        let err = write_index(&mut entries, &[0; 20], &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
