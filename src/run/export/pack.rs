//! One pack per export run in the staging repository, indexed by gix.
//!
//! Writing each translated object as a loose file costs an inode, a
//! temporary file and a rename per object, which dominates an export of a
//! real history. Instead the run appends every new object, zlib-compressed
//! and without deltas, to one pack body; [`PackWriter::finish`] streams
//! header, body and trailer through gix's pack indexer
//! (`gix::odb::pack::Bundle::write_to_directory`), which writes
//! `objects/pack/pack-<hash>.{pack,idx}` and hashes every object itself.
//! The id gix computes for each object must be the collision-detecting id
//! we computed and named it by: every one of ours is looked up in the new
//! index, and the object counts must agree. The push then sends from this
//! pack (git computes its own deltas for the mirror).
//!
//! Compression runs on the rayon workers ([`compress`], one reusable zlib
//! state per thread); appending is the caller's, in an order it keeps
//! independent of the thread count, so the pack (and its name) is too.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use flate2::{Compress, Compression, FlushCompress, Status};

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
    /// gix's indexer refused the pack.
    #[error("the staging repository's pack indexer refused our pack: {0}")]
    Index(String),
    /// gix indexed another set of objects than we wrote.
    #[error(
        "the pack indexer found {found} objects where {expected} were written, or not under \
         the ids we computed (first missing: {missing}); nothing was pushed"
    )]
    Mismatch {
        /// Objects written.
        expected: u32,
        /// Objects indexed.
        found: u32,
        /// An id of ours the index lacks (or the zero id).
        missing: Sha1,
    },
    /// More objects than a pack holds.
    #[error("more than 4294967295 objects in one export")]
    TooMany,
}

/// The name prefix of a pack body being written, beside `objects/`.
pub const BODY_PREFIX: &str = "mkit-bridge-pack.tmp.";

thread_local! {
    static DEFLATE: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
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

/// The pack body of one run, appended to a temporary file beside `objects/`.
#[derive(Debug)]
pub struct PackWriter {
    pack_dir: PathBuf,
    body_path: PathBuf,
    body: Option<BufWriter<File>>,
    ids: Vec<Sha1>,
}

impl PackWriter {
    /// A writer for the repository whose `objects` directory is `objects_dir`.
    pub fn new(objects_dir: &Path) -> PackWriter {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = objects_dir.parent().unwrap_or(objects_dir);
        PackWriter {
            pack_dir: objects_dir.join("pack"),
            body_path: root.join(format!("{BODY_PREFIX}{}.{seq}", std::process::id())),
            body: None,
            ids: Vec::new(),
        }
    }

    /// Objects appended so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Append one entry.
    pub fn append(&mut self, e: &PackEntry) -> Result<(), PackError> {
        let io = |action| {
            let path = self.body_path.clone();
            move |source| PackError::Io {
                action,
                path,
                source,
            }
        };
        if self.body.is_none() {
            let f = File::create(&self.body_path).map_err(io("create"))?;
            self.body = Some(BufWriter::with_capacity(1 << 20, f));
        }
        let body = self.body.as_mut().ok_or(PackError::TooMany)?;
        crate::durable::fault::check()
            .and_then(|()| body.write_all(&entry_header(e.kind, e.size)))
            .and_then(|()| body.write_all(&e.data))
            .map_err(io("write"))?;
        self.ids.push(e.id);
        Ok(())
    }

    /// Index the pack into `objects/pack` through gix and check it holds
    /// exactly our objects under our ids, indexing on at most `threads`
    /// threads (`None`: one per core). Returns the `.keep` file gix left
    /// (remove it once refs point into the pack), if any.
    pub fn finish(
        mut self,
        interrupt: &AtomicBool,
        threads: Option<usize>,
    ) -> Result<Option<PathBuf>, PackError> {
        let Some(body) = self.body.take() else {
            return Ok(None);
        };
        let count = u32::try_from(self.ids.len()).map_err(|_| PackError::TooMany)?;
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| PackError::Io {
                action,
                path,
                source,
            }
        };
        body.into_inner()
            .map_err(|e| e.into_error())
            .map_err(io("write", &self.body_path))?;
        let file = File::open(&self.body_path).map_err(io("read", &self.body_path))?;
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(b"PACK");
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        let mut stream = BufReader::with_capacity(
            1 << 20,
            PackStream {
                header: io::Cursor::new(header),
                body: BufReader::with_capacity(1 << 20, file),
                hasher: Some(gix::hash::hasher(gix::hash::Kind::Sha1)),
                trailer: io::Cursor::new(Vec::new()),
            },
        );
        std::fs::create_dir_all(&self.pack_dir).map_err(io("create", &self.pack_dir))?;
        let outcome = gix::odb::pack::Bundle::write_to_directory(
            &mut stream,
            Some(&self.pack_dir),
            &mut gix::progress::Discard,
            interrupt,
            None::<gix::objs::find::Never>,
            gix::hash::Kind::Sha1,
            gix::odb::pack::bundle::write::Options {
                thread_limit: threads,
                ..Default::default()
            },
        )
        .map_err(|e| PackError::Index(e.to_string()))?;
        let _ = std::fs::remove_file(&self.body_path);
        let index_path = outcome
            .index_path
            .clone()
            .ok_or_else(|| PackError::Index("no index was written".to_owned()))?;
        let index = gix::odb::pack::index::File::at(&index_path, gix::hash::Kind::Sha1)
            .map_err(|e| PackError::Index(e.to_string()))?;
        let missing = self
            .ids
            .iter()
            .find(|id| index.lookup(gix::ObjectId::from(id.0)).is_none());
        if outcome.index.num_objects != count || missing.is_some() {
            return Err(PackError::Mismatch {
                expected: count,
                found: outcome.index.num_objects,
                missing: missing.copied().unwrap_or(Sha1([0; 20])),
            });
        }
        Ok(outcome.keep_path)
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        self.body = None;
        let _ = std::fs::remove_file(&self.body_path);
    }
}

/// Header, body, then the SHA-1 trailer of everything before it.
struct PackStream {
    header: io::Cursor<Vec<u8>>,
    body: BufReader<File>,
    hasher: Option<gix::hash::Hasher>,
    trailer: io::Cursor<Vec<u8>>,
}

impl Read for PackStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.header.read(buf)?;
        let n = if n > 0 { n } else { self.body.read(buf)? };
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            return Ok(n);
        }
        if let Some(h) = self.hasher.take() {
            let id = h
                .try_finalize()
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.trailer = io::Cursor::new(id.as_slice().to_vec());
        }
        self.trailer.read(buf)
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
}
