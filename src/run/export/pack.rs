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
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use gix::zlib::Compression;
use gix::zlib::stream::deflate::{Compress, FlushCompress};

use crate::git::sha1::{ObjectKind, Sha1};

/// A compressed object ready to append.
#[derive(Debug)]
pub struct PackEntry {
    /// Its id (our collision-detecting SHA-1).
    pub id: Sha1,
    /// Its kind.
    pub kind: ObjectKind,
    /// The body's length, uncompressed.
    pub size: usize,
    /// The body, zlib-compressed.
    pub data: Vec<u8>,
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

thread_local! {
    static DEFLATE: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
}

/// Compress `body` (an object of `kind` named `id`) for a pack entry, with
/// this thread's reusable zlib state at the speed level git uses for loose
/// objects.
pub fn compress(id: Sha1, kind: ObjectKind, body: &[u8]) -> Result<PackEntry, PackError> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z = slot.get_or_insert_with(|| Compress::new(Compression::BEST_SPEED));
        z.reset();
        let mut out: Vec<u8> = Vec::with_capacity(body.len() / 2 + 64);
        let (in0, out0) = (z.total_in(), z.total_out());
        loop {
            let consumed =
                usize::try_from(z.total_in() - in0).map_err(|_| PackError::Compress(id))?;
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(4096));
            }
            let len = out.len();
            out.resize(out.capacity(), 0);
            let before = z.total_out();
            let status = z
                .compress(&body[consumed..], &mut out[len..], FlushCompress::Finish)
                .map_err(|_| PackError::Compress(id))?;
            let produced =
                usize::try_from(z.total_out() - before).map_err(|_| PackError::Compress(id))?;
            out.truncate(len + produced);
            match status {
                gix::zlib::Status::StreamEnd => break,
                _ if produced == 0
                    && z.total_in() - in0 == body.len() as u64
                    && out.capacity() > len + 1024 =>
                {
                    // No progress with room to spare: a guard against looping.
                    return Err(PackError::Compress(id));
                }
                _ => {}
            }
        }
        debug_assert_eq!(z.total_out() - out0, out.len() as u64);
        Ok(PackEntry {
            id,
            kind,
            size: body.len(),
            data: out,
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
        hasher: gix::hash::hasher(gix::hash::Kind::Sha1),
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
    let id = w.hasher.try_finalize().map_err(io::Error::other)?;
    sum.copy_from_slice(id.as_slice());
    w.out.write_all(&sum)?;
    w.out.flush()?;
    Ok(sum)
}

/// A writer that hashes what goes through it.
struct HashingWriter<W: Write> {
    out: W,
    hasher: gix::hash::Hasher,
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

/// The pack of one run, written to a temporary file beside `objects/`,
/// with what its index needs.
#[derive(Debug)]
pub struct PackWriter {
    pack_dir: PathBuf,
    body_path: PathBuf,
    body: Option<BufWriter<File>>,
    /// Where the next entry starts.
    offset: u64,
    entries: Vec<IndexEntry>,
    written: HashSet<Sha1>,
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

impl PackWriter {
    /// A writer for the repository whose `objects` directory is `objects_dir`.
    pub fn new(objects_dir: &Path) -> PackWriter {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let root = objects_dir.parent().unwrap_or(objects_dir);
        PackWriter {
            pack_dir: objects_dir.join("pack"),
            body_path: root.join(format!("{BODY_PREFIX}{}.{seq}", std::process::id())),
            body: None,
            offset: 0,
            entries: Vec::new(),
            written: HashSet::new(),
        }
    }

    /// Objects appended so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Append one entry, unless an entry with its id was appended already
    /// (two mkit objects may translate to one git object). Returns whether
    /// it was appended.
    pub fn append(&mut self, e: &PackEntry) -> Result<bool, PackError> {
        if self.written.contains(&e.id) {
            return Ok(false);
        }
        if self.body.is_none() {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.body_path)
                .map_err(io_at("create", &self.body_path))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            // The object count is filled in by `finish`.
            w.write_all(&pack_header(0))
                .map_err(io_at("write", &self.body_path))?;
            self.body = Some(w);
            self.offset = 12;
        }
        let body = self.body.as_mut().ok_or(PackError::TooMany)?;
        let header = entry_header(e.kind, e.size);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(&e.data);
        crate::durable::fault::check()
            .and_then(|()| body.write_all(&header))
            .and_then(|()| body.write_all(&e.data))
            .map_err(io_at("write", &self.body_path))?;
        self.entries.push(IndexEntry {
            id: e.id,
            crc32: crc.finalize(),
            offset: self.offset,
        });
        self.written.insert(e.id);
        self.offset += (header.len() + e.data.len()) as u64;
        Ok(true)
    }

    /// Complete the pack (object count, trailer) and put it with its index
    /// into `objects/pack` as `pack-<checksum>.{keep,pack,idx}`, the index
    /// last, each fsynced before it is renamed into place and the directory
    /// after. Returns the `.keep` file that protects a new pack until refs
    /// point into it (remove it then), if a new pack was placed. A pack
    /// already there under the same name (the same bytes) is left as is.
    pub fn finish(mut self, interrupt: &AtomicBool) -> Result<Option<PathBuf>, PackError> {
        let Some(body) = self.body.take() else {
            return Ok(None);
        };
        let count = u32::try_from(self.entries.len()).map_err(|_| PackError::TooMany)?;
        let path = self.body_path.clone();
        let mut file = body
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_at("write", &path))?;
        file.write_all_at(&pack_header(count), 0)
            .map_err(io_at("write", &path))?;
        let checksum = pack_checksum(&mut file, &path, interrupt)?;
        file.seek(SeekFrom::End(0))
            .and_then(|_| file.write_all(&checksum))
            .map_err(io_at("write", &path))?;
        // Durable before its name appears (the index is fsynced too, then
        // the directory): nothing else flushes the pack.
        file.sync_data().map_err(io_at("fsync", &path))?;
        drop(file);
        let name = format!("pack-{}", Sha1(checksum).to_hex());
        std::fs::create_dir_all(&self.pack_dir).map_err(io_at("create", &self.pack_dir))?;
        let data_path = self.pack_dir.join(format!("{name}.pack"));
        let index_path = self.pack_dir.join(format!("{name}.idx"));
        let keep = if data_path.is_file() {
            let _ = std::fs::remove_file(&path);
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
        File::open(&self.pack_dir)
            .and_then(|d| d.sync_all())
            .map_err(io_at("fsync", &self.pack_dir))?;
        Ok(keep)
    }
}

/// The SHA-1 of the whole of `file` (the pack's trailer), read from the
/// start.
fn pack_checksum(
    file: &mut File,
    path: &Path,
    interrupt: &AtomicBool,
) -> Result<[u8; 20], PackError> {
    file.seek(SeekFrom::Start(0)).map_err(io_at("read", path))?;
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return Err(PackError::Interrupted);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_at("read", path)(e)),
        };
        hasher.update(&buf[..n]);
    }
    let id = hasher
        .try_finalize()
        .map_err(|e| io_at("hash", path)(io::Error::other(e.to_string())))?;
    let mut out = [0u8; 20];
    out.copy_from_slice(id.as_slice());
    Ok(out)
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        self.body = None;
        let _ = std::fs::remove_file(&self.body_path);
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
    fn write_pack(entries: &[PackEntry]) -> (tempfile::TempDir, PathBuf, Option<PathBuf>) {
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
        assert_eq!(keep, Some(base.with_extension("keep")));
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
        assert_eq!(w.finish(&AtomicBool::new(false)).unwrap(), None);
        let after = std::fs::metadata(base.with_extension("pack")).unwrap();
        assert_eq!(
            before.modified().unwrap(),
            after.modified().unwrap(),
            "the pack was rewritten"
        );
        assert!(!base.with_extension("keep").exists());
        // An empty writer writes nothing at all.
        let w = PackWriter::new(&objects);
        assert_eq!(w.finish(&AtomicBool::new(false)).unwrap(), None);
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

    /// Parse a version 2 index: (fan-out, ids, CRCs, offset words, 64-bit
    /// offsets, pack checksum), checking its own checksum.
    fn parse(
        idx: &[u8],
    ) -> (
        Vec<u32>,
        Vec<[u8; 20]>,
        Vec<u32>,
        Vec<u32>,
        Vec<u64>,
        [u8; 20],
    ) {
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
