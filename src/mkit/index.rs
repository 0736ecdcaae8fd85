//! The staging index `.mkit/index`, in the format mkit 0.5.0 reads and writes.
//!
//! The index lists the paths of the next commit, each with its object id, a
//! status byte and a stat cache that lets `mkit status` prove a file unchanged
//! without re-reading it. We write it after a checkout so that the reference's
//! `mkit status`, `mkit commit` and `mkit merge` work on the tree we wrote.
//!
//! Layout (mkit-core 0.5.0, version 3; SPEC-INDEX still describes version 2,
//! see `spec/CHECKOUT.md`):
//!
//! ```text
//! "MKIX" | version 0x03 | u32 LE count | entries | BLAKE3 of everything before
//! entry := status u8 | id [32] | mtime_ns u64 | size u64 | ino u64 | ctime_ns u64
//!          | path_len u16 | path (UTF-8)
//! ```
//!
//! All integers are little-endian. The decoder is strict and never panics:
//! a bad magic, another version, a wrong checksum, a count that cannot fit,
//! an unknown status, a path breaking the SPEC-INDEX §2 grammar, a duplicate
//! path, a removed entry with an id, or trailing bytes are each refused. The
//! encoder refuses whatever the decoder would refuse.

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::durable::{self, IoError, io_err};
use crate::mkit::id::{ID_LEN, Id};

/// The first four bytes of every index file.
pub const MAGIC: [u8; 4] = *b"MKIX";
/// The one version mkit 0.5.0 accepts (checksummed).
pub const VERSION: u8 = 0x03;
/// Files larger than this are refused (SPEC-INDEX §5).
pub const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;
/// The longest path an entry may hold.
pub const MAX_PATH_LEN: usize = 4096;
/// The index file's name under `.mkit/`.
pub const INDEX_FILE: &str = "index";
/// Header bytes: magic, version, count.
const HEADER_LEN: usize = 9;
/// The trailing checksum.
const CHECKSUM_LEN: usize = 32;
/// Status, id, four stat fields and the path length: an entry with an empty path.
const MIN_ENTRY_LEN: usize = 1 + ID_LEN + 32 + 2;
/// Entries written within this span of the index file's own mtime cannot be
/// trusted by their stat (the racy-clean rule, SPEC-INDEX §4).
const RACY_WINDOW_NS: u64 = 1_000_000_000;

/// What an entry stages (SPEC-INDEX §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryStatus {
    /// A path scheduled for deletion; its id is all zeros.
    Removed = 0x00,
    /// A regular file.
    Blob = 0x01,
    /// Reserved by the format; never written by mkit.
    Tree = 0x02,
    /// A symbolic link; the id is the blob of its target.
    Symlink = 0x03,
    /// A regular file with the executable bit.
    Executable = 0x04,
}

impl EntryStatus {
    /// Decode a status byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x00 => Self::Removed,
            0x01 => Self::Blob,
            0x02 => Self::Tree,
            0x03 => Self::Symlink,
            0x04 => Self::Executable,
            _ => return None,
        })
    }
}

/// The stat observation recorded with an entry; all zeros means "no cache".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StatCache {
    /// Modification time in nanoseconds since the epoch (0: no cache).
    pub mtime_ns: u64,
    /// File size in bytes.
    pub size: u64,
    /// Inode number (0: do not check).
    pub ino: u64,
    /// Status-change time in nanoseconds (0: do not check).
    pub ctime_ns: u64,
}

impl StatCache {
    /// The observation mkit records for `meta` (saturating nanoseconds).
    pub fn of(meta: &Metadata) -> StatCache {
        use std::os::unix::fs::MetadataExt;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let ctime_ns = u64::try_from(meta.ctime())
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .and_then(|ns| ns.checked_add(u64::try_from(meta.ctime_nsec()).unwrap_or(0)))
            .unwrap_or(0);
        StatCache {
            mtime_ns,
            size: meta.len(),
            ino: meta.ino(),
            ctime_ns,
        }
    }

    /// True when `meta` proves the file unchanged since this observation
    /// (SPEC-INDEX §4 conditions 1-4; the caller checks the mode class).
    pub fn matches(&self, meta: &Metadata) -> bool {
        if self.mtime_ns == 0 {
            return false;
        }
        let live = StatCache::of(meta);
        live.mtime_ns == self.mtime_ns
            && live.size == self.size
            && (self.ino == 0 || live.ino == 0 || live.ino == self.ino)
            && (self.ctime_ns == 0 || live.ctime_ns == 0 || live.ctime_ns == self.ctime_ns)
    }
}

/// One staged path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Repository-relative path with `/` separators.
    pub path: String,
    /// What it stages.
    pub status: EntryStatus,
    /// The staged object (blob, chunked blob, or the symlink target's blob).
    pub id: Id,
    /// The stat cache.
    pub stat: StatCache,
}

/// A whole index, entries in file order (mkit writes them in tree order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    /// The entries.
    pub entries: Vec<IndexEntry>,
}

/// Why an index cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The file does not start with `MKIX`.
    #[error("index file has the wrong magic (expected MKIX); delete .mkit/index and re-stage")]
    BadMagic,
    /// A version other than 3.
    #[error("unsupported index version {0:#04x} (mkit 0.5.0 writes version 3)")]
    UnsupportedVersion(u8),
    /// An unknown status byte.
    #[error("index entry has unknown status byte {0:#04x}")]
    BadStatus(u8),
    /// The bytes are malformed; the reason names what.
    #[error("index file is corrupt: {0}")]
    Corrupt(&'static str),
    /// Over [`MAX_INDEX_BYTES`].
    #[error("index file is larger than {MAX_INDEX_BYTES} bytes")]
    TooLarge,
    /// A path breaking the SPEC-INDEX §2 grammar.
    #[error("invalid index path {0:?}")]
    InvalidPath(String),
    /// A path listed twice.
    #[error("duplicate index path {0:?}")]
    DuplicatePath(String),
    /// A removed entry with a non-zero id.
    #[error("removed index entry {0:?} has a non-zero id")]
    RemovedHasId(String),
    /// A path that is not UTF-8.
    #[error("index path is not valid UTF-8")]
    PathEncoding,
    /// Reading or writing the file failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The SPEC-INDEX §2 path grammar: non-empty, relative, at most 4096 bytes,
/// no empty, `.` or `..` segment, no NUL or backslash, not `.mkit` or `.git`
/// nor under them (exact case, as mkit checks).
pub fn valid_index_path(path: &str) -> bool {
    if path.is_empty() || path.len() > MAX_PATH_LEN || path.starts_with('/') {
        return false;
    }
    if path == ".mkit" || path == ".git" || path.starts_with(".mkit/") || path.starts_with(".git/")
    {
        return false;
    }
    path.split('/').all(|seg| {
        !seg.is_empty() && seg != "." && seg != ".." && !seg.bytes().any(|b| b == 0 || b == b'\\')
    })
}

impl Index {
    /// The encoded size, known before writing.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .entries
                .iter()
                .map(|e| MIN_ENTRY_LEN + e.path.len())
                .sum::<usize>()
            + CHECKSUM_LEN
    }

    /// Encode, refusing anything [`decode`] would refuse.
    pub fn encode(&self) -> Result<Vec<u8>, IndexError> {
        let count = u32::try_from(self.entries.len()).map_err(|_| IndexError::TooLarge)?;
        if self.encoded_len() as u64 > MAX_INDEX_BYTES {
            return Err(IndexError::TooLarge);
        }
        let mut seen = HashSet::with_capacity(self.entries.len());
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&count.to_le_bytes());
        for e in &self.entries {
            check_entry(e)?;
            if !seen.insert(e.path.as_str()) {
                return Err(IndexError::DuplicatePath(e.path.clone()));
            }
            out.push(e.status as u8);
            out.extend_from_slice(e.id.as_bytes());
            for v in [e.stat.mtime_ns, e.stat.size, e.stat.ino, e.stat.ctime_ns] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            // check_entry bounded the length by MAX_PATH_LEN < u16::MAX.
            out.extend_from_slice(&(e.path.len() as u16).to_le_bytes());
            out.extend_from_slice(e.path.as_bytes());
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        Ok(out)
    }

    /// The entry for `path`, if any.
    pub fn get(&self, path: &str) -> Option<&IndexEntry> {
        self.entries.iter().find(|e| e.path == path)
    }
}

fn check_entry(e: &IndexEntry) -> Result<(), IndexError> {
    if !valid_index_path(&e.path) {
        return Err(IndexError::InvalidPath(e.path.clone()));
    }
    if e.status == EntryStatus::Removed && !e.id.is_zero() {
        return Err(IndexError::RemovedHasId(e.path.clone()));
    }
    Ok(())
}

/// A little-endian cursor over the entry bytes; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(IndexError::Corrupt(
                "an entry runs past the end of the file",
            ))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// Decode an index file's bytes (strict; never panics).
pub fn decode(bytes: &[u8]) -> Result<Index, IndexError> {
    if bytes.len() as u64 > MAX_INDEX_BYTES {
        return Err(IndexError::TooLarge);
    }
    if bytes.len() < HEADER_LEN {
        return Err(IndexError::Corrupt("shorter than the 9-byte header"));
    }
    if bytes[..4] != MAGIC {
        return Err(IndexError::BadMagic);
    }
    if bytes[4] != VERSION {
        return Err(IndexError::UnsupportedVersion(bytes[4]));
    }
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(IndexError::Corrupt("no room for the checksum"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if blake3::hash(body).as_bytes()[..] != sum[..] {
        return Err(IndexError::Corrupt("checksum mismatch"));
    }
    let count = u32::from_le_bytes([body[5], body[6], body[7], body[8]]) as u64;
    if count.saturating_mul(MIN_ENTRY_LEN as u64) > (body.len() - HEADER_LEN) as u64 {
        return Err(IndexError::Corrupt(
            "the entry count cannot fit in the file",
        ));
    }
    let mut cur = Cursor {
        bytes: body,
        at: HEADER_LEN,
    };
    let mut entries = Vec::with_capacity(count as usize);
    let mut seen = HashSet::with_capacity(count as usize);
    for _ in 0..count {
        let status_byte = cur.take(1)?[0];
        let status =
            EntryStatus::from_byte(status_byte).ok_or(IndexError::BadStatus(status_byte))?;
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(cur.take(ID_LEN)?);
        let stat = StatCache {
            mtime_ns: cur.u64()?,
            size: cur.u64()?,
            ino: cur.u64()?,
            ctime_ns: cur.u64()?,
        };
        let len_bytes = cur.take(2)?;
        let len = u16::from_le_bytes([len_bytes[0], len_bytes[1]]) as usize;
        if len > MAX_PATH_LEN {
            return Err(IndexError::Corrupt("a path is longer than 4096 bytes"));
        }
        let path = std::str::from_utf8(cur.take(len)?)
            .map_err(|_| IndexError::PathEncoding)?
            .to_owned();
        let entry = IndexEntry {
            path,
            status,
            id: Id(id),
            stat,
        };
        check_entry(&entry)?;
        if !seen.insert(entry.path.clone()) {
            return Err(IndexError::DuplicatePath(entry.path));
        }
        entries.push(entry);
    }
    if cur.at != body.len() {
        return Err(IndexError::Corrupt("trailing bytes after the last entry"));
    }
    Ok(Index { entries })
}

/// Where the index of the repository whose `.mkit` is `mkit_dir` lives.
pub fn index_path(mkit_dir: &Path) -> PathBuf {
    mkit_dir.join(INDEX_FILE)
}

/// Read `.mkit/index`: `None` when there is none. Entries whose cached mtime
/// is not safely older than the file itself lose their stat cache (the
/// racy-clean rule), so callers re-hash them.
pub fn read(mkit_dir: &Path) -> Result<Option<Index>, IndexError> {
    let path = index_path(mkit_dir);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoError::new("open", &path, e).into()),
    };
    let meta = file.metadata().map_err(io_err("stat", &path))?;
    if meta.len() > MAX_INDEX_BYTES {
        return Err(IndexError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", &path))?;
    let mut index = decode(&bytes)?;
    let file_mtime = StatCache::of(&meta).mtime_ns;
    let precise = !file_mtime.is_multiple_of(1_000_000_000);
    for e in &mut index.entries {
        if e.stat.mtime_ns == 0 {
            continue;
        }
        let window = if precise && !e.stat.mtime_ns.is_multiple_of(1_000_000_000) {
            RACY_WINDOW_NS / 100
        } else {
            RACY_WINDOW_NS
        };
        if e.stat.mtime_ns >= file_mtime.saturating_sub(window) {
            e.stat = StatCache::default();
        }
    }
    Ok(Some(index))
}

/// Replace `.mkit/index` atomically and durably.
pub fn write(mkit_dir: &Path, index: &Index) -> Result<(), IndexError> {
    let bytes = index.encode()?;
    durable::write_atomic(&index_path(mkit_dir), &bytes)?;
    Ok(())
}

/// Remove `.mkit/index` if present (used to roll back a failed checkout).
pub fn remove(mkit_dir: &Path) -> Result<(), IndexError> {
    let path = index_path(mkit_dir);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IoError::new("remove", &path, e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(path: &str, status: EntryStatus, n: u8) -> IndexEntry {
        IndexEntry {
            path: path.to_owned(),
            status,
            id: if status == EntryStatus::Removed {
                Id::ZERO
            } else {
                Id([n; 32])
            },
            stat: StatCache {
                mtime_ns: 0x0102_0304_0506_0708,
                size: 11,
                ino: 7,
                ctime_ns: 9,
            },
        }
    }

    #[test]
    fn empty_index_is_header_and_checksum() {
        let bytes = Index::default().encode().unwrap();
        assert_eq!(bytes.len(), 41);
        assert_eq!(&bytes[..9], b"MKIX\x03\0\0\0\0");
        assert_eq!(&bytes[9..], blake3::hash(&bytes[..9]).as_bytes());
        assert_eq!(decode(&bytes).unwrap(), Index::default());
    }

    #[test]
    fn single_entry_layout_is_pinned() {
        let idx = Index {
            entries: vec![entry("hello.txt", EntryStatus::Blob, 0xab)],
        };
        let bytes = idx.encode().unwrap();
        // 9 header + 1 status + 32 id + 32 stat + 2 len + 9 path + 32 checksum.
        assert_eq!(bytes.len(), 117);
        assert_eq!(bytes[9], 0x01);
        assert_eq!(&bytes[42..50], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&bytes[74..76], &9u16.to_le_bytes());
        assert_eq!(&bytes[76..85], b"hello.txt");
        assert_eq!(decode(&bytes).unwrap(), idx);
    }

    #[test]
    fn every_malformation_is_refused_with_its_reason() {
        let good = Index {
            entries: vec![
                entry("a", EntryStatus::Blob, 1),
                entry("b/c", EntryStatus::Removed, 0),
            ],
        }
        .encode()
        .unwrap();
        let reseal = |mut b: Vec<u8>| {
            b.truncate(b.len() - 32);
            let s = blake3::hash(&b);
            b.extend_from_slice(s.as_bytes());
            b
        };
        let mut m = good.clone();
        m[0] = b'Z';
        assert!(matches!(decode(&m), Err(IndexError::BadMagic)));
        for v in [0x01, 0x02, 0x04] {
            let mut m = good.clone();
            m[4] = v;
            assert!(matches!(decode(&m), Err(IndexError::UnsupportedVersion(x)) if x == v));
        }
        let mut m = good.clone();
        m[20] ^= 1;
        assert!(matches!(
            decode(&m),
            Err(IndexError::Corrupt("checksum mismatch"))
        ));
        let mut m = good.clone();
        m[9] = 9;
        assert!(matches!(decode(&reseal(m)), Err(IndexError::BadStatus(9))));
        let mut m = good.clone();
        m[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&reseal(m)), Err(IndexError::Corrupt(_))));
        let mut m = good[..good.len() - 32].to_vec();
        m.push(0);
        assert!(matches!(
            decode(&reseal([m, vec![0; 32]].concat())),
            Err(IndexError::Corrupt(_))
        ));
        assert!(matches!(decode(b"MKIX\x03"), Err(IndexError::Corrupt(_))));
        assert!(matches!(decode(&[]), Err(IndexError::Corrupt(_))));
    }

    #[test]
    fn the_encoder_refuses_what_the_decoder_refuses() {
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/./b",
            "../x",
            ".mkit",
            ".mkit/HEAD",
            ".git/x",
            "a\\b",
            "a\0b",
        ] {
            let idx = Index {
                entries: vec![entry(bad, EntryStatus::Blob, 1)],
            };
            assert!(
                matches!(idx.encode(), Err(IndexError::InvalidPath(_))),
                "{bad:?}"
            );
        }
        let dup = Index {
            entries: vec![
                entry("a", EntryStatus::Blob, 1),
                entry("a", EntryStatus::Symlink, 2),
            ],
        };
        assert!(matches!(dup.encode(), Err(IndexError::DuplicatePath(_))));
        let mut removed = entry("a", EntryStatus::Removed, 0);
        removed.id = Id([1; 32]);
        let idx = Index {
            entries: vec![removed],
        };
        assert!(matches!(idx.encode(), Err(IndexError::RemovedHasId(_))));
        let long = Index {
            entries: vec![entry(&"a".repeat(MAX_PATH_LEN + 1), EntryStatus::Blob, 1)],
        };
        assert!(matches!(long.encode(), Err(IndexError::InvalidPath(_))));
    }

    fn arb_entry() -> impl Strategy<Value = IndexEntry> {
        (
            "[a-z]{1,6}(/[a-zA-Z0-9 ._-]{1,6}){0,3}",
            0u8..5,
            any::<[u8; 32]>(),
            any::<[u64; 4]>(),
        )
            .prop_filter_map("valid path", |(path, s, id, st)| {
                let status = EntryStatus::from_byte(s)?;
                let e = IndexEntry {
                    path,
                    status,
                    id: if status == EntryStatus::Removed {
                        Id::ZERO
                    } else {
                        Id(id)
                    },
                    stat: StatCache {
                        mtime_ns: st[0],
                        size: st[1],
                        ino: st[2],
                        ctime_ns: st[3],
                    },
                };
                valid_index_path(&e.path).then_some(e)
            })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(entries in proptest::collection::vec(arb_entry(), 0..8)) {
            let mut seen = HashSet::new();
            let entries: Vec<_> = entries.into_iter().filter(|e| seen.insert(e.path.clone())).collect();
            let idx = Index { entries };
            let bytes = idx.encode().unwrap();
            prop_assert_eq!(bytes.len(), idx.encoded_len());
            prop_assert_eq!(decode(&bytes).unwrap(), idx);
        }

        #[test]
        fn mutated_bytes_never_panic_and_never_misread(
            entries in proptest::collection::vec(arb_entry(), 1..4),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut seen = HashSet::new();
            let entries: Vec<_> = entries.into_iter().filter(|e| seen.insert(e.path.clone())).collect();
            let idx = Index { entries };
            let mut bytes = idx.encode().unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            // The checksum covers every byte: any single flip is refused.
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
            let mut sealed = b"MKIX\x03".to_vec();
            sealed.extend_from_slice(&bytes);
            let s = blake3::hash(&sealed);
            sealed.extend_from_slice(s.as_bytes());
            let _ = decode(&sealed);
        }
    }
}
