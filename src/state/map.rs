//! The blake3 ↔ sha1 map: `map` in the state directory.
//!
//! The map records which git object each translated mkit object became (or,
//! on import, came from). It is an append-only text file of whole lines
//! `<64 hex blake3> <40 hex sha1>\n`, blake3 first whichever way the bridge
//! ran. It is a cache: translation is deterministic, so a damaged map means
//! "rebuild", never a hard error. Loading therefore skips lines that do not
//! parse (a torn tail left by a crash still loads), while [`map_is_intact`]
//! reports whether every line parsed, so a caller that must not trust a
//! partial map knows to rebuild it.
//!
//! Appends go out as whole lines with `O_APPEND` — one `write(2)` per batch
//! (batches above [`APPEND_WRITE_MAX`] bytes are split at line boundaries) —
//! and are on disk (`fdatasync`) before the call returns. Because `O_APPEND` writes to a
//! regular file are atomic with respect to each other, two processes
//! appending at once can interleave only between lines, never inside one. If
//! the file ends in a torn line, the next append starts with a newline so the
//! damage stays confined to that one line; to tell a torn tail from another
//! appender's write still in flight, our appenders hold a short exclusive
//! lock on the map file itself from that check to their last write.
//!
//! Loading is on the hot path: large maps are read in fixed-size chunks by
//! positional reads in parallel (rayon), each chunk handling the lines that
//! begin inside it, and the parsed pairs are indexed by a [`MapIndex`] in
//! file order, so when a key repeats the last line wins, as in the
//! reference. (The crate forbids `unsafe`, so the file is read rather than
//! memory-mapped.)

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::Result;
use super::index::{BlakeToSha1, MapIndex, Sha1ToBlake};
use super::sha1::{SHA1_LEN, Sha1};
use crate::durable::{create_dir_all_durable, io_err, sync_dir};
use crate::mkit::id::{ID_LEN, Id};

/// File name of the map inside a state directory.
pub const MAP_FILE: &str = "map";

/// Length of one well-formed map line without its newline.
pub const MAP_LINE_LEN: usize = 64 + 1 + 40;

/// Largest single `write(2)` an append issues; bigger batches are split at
/// line boundaries. It is also the most an append holds in memory (its
/// lines are formatted into one buffer of at most this size), so it stays
/// small: an export of 14,000 objects would otherwise format 1.5 MB at once.
pub const APPEND_WRITE_MAX: usize = 256 << 10;

/// Files at most this long are read in one piece and parsed on one thread.
const SMALL_FILE: u64 = 2 << 20;

/// Bytes per chunk when a large map is parsed in parallel.
const CHUNK: usize = 4 << 20;

/// How far past its end a chunk reads to finish the last line that begins in
/// it. Longer than any parsable line (105 bytes plus `\r\n`).
const LOOKAHEAD: usize = 128;

/// Path of the map file in `state`.
pub fn map_path(state: &Path) -> PathBuf {
    state.join(MAP_FILE)
}

/// Load the map as blake3 → sha1. A missing file is an empty map; lines that
/// do not parse are skipped; when a blake3 repeats, the later line wins.
pub fn load_map(state: &Path) -> Result<BlakeToSha1> {
    match scan_file(&map_path(state), true, CHUNK, |b, s| (b, s))? {
        None => Ok(MapIndex::new()),
        Some(scan) => Ok(MapIndex::build(scan.chunks, scan.shift)),
    }
}

/// Load the map as sha1 → blake3, built straight from the lines.
///
/// Translation is many-to-one (two historic spellings of a git tree become
/// one mkit tree), so inverting [`load_map`] would lose sha1s; this keeps
/// every sha1 that appears on a parsable line.
pub fn load_map_inverse(state: &Path) -> Result<Sha1ToBlake> {
    Ok(load_map_inverse_checked(state)?.0)
}

/// [`load_map_inverse`] and [`map_is_intact`] from a single read of the file.
pub fn load_map_inverse_checked(state: &Path) -> Result<(Sha1ToBlake, bool)> {
    match scan_file(&map_path(state), true, CHUNK, |b, s| (s, b))? {
        None => Ok((MapIndex::new(), true)),
        Some(scan) => {
            let intact = scan.intact;
            Ok((MapIndex::build(scan.chunks, scan.shift), intact))
        }
    }
}

/// True when every line of the map parses.
///
/// Any blank or malformed line, anywhere (a torn tail included), makes the
/// map untrustworthy as a record of what was translated, so this returns
/// false and the caller should rebuild. A missing file is intact (there is
/// nothing to distrust).
pub fn map_is_intact(state: &Path) -> Result<bool> {
    Ok(scan_file(&map_path(state), false, CHUNK, |_, _| ())?.is_none_or(|s| s.intact))
}

/// Durably delete the map (absent is fine): what a caller does before
/// rebuilding it from scratch, after a crash or when [`map_is_intact`] says
/// it cannot be trusted.
pub fn discard_map(state: &Path) -> Result<()> {
    let path = map_path(state);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(sync_dir(state)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &path)(e).into()),
    }
}

/// Append pairs given in export orientation, (blake3, sha1).
///
/// The lines reach the disk (fsync) before this returns. An empty slice does
/// nothing, not even create the file.
pub fn append_map(state: &Path, pairs: &[(Id, Sha1)]) -> Result<()> {
    append_lines(state, pairs.len(), pairs.iter().map(|(b, s)| (b, s)))
}

/// [`append_map`] for `count` pairs that are not in one slice, in order
/// (no copy of a large table is needed to write it).
pub fn append_map_from<'a>(
    state: &Path,
    count: usize,
    pairs: impl Iterator<Item = (&'a Id, &'a Sha1)>,
) -> Result<()> {
    append_lines(state, count, pairs)
}

/// Append pairs given in import orientation, (sha1, blake3); the file stays
/// blake3-first.
pub fn append_map_import(state: &Path, pairs: &[(Sha1, Id)]) -> Result<()> {
    append_lines(state, pairs.len(), pairs.iter().map(|(s, b)| (b, s)))
}

fn append_lines<'a>(
    state: &Path,
    count: usize,
    pairs: impl Iterator<Item = (&'a Id, &'a Sha1)>,
) -> Result<()> {
    if count == 0 {
        return Ok(());
    }
    create_dir_all_durable(state)?;
    let path = map_path(state);
    let (mut file, created) = open_for_append(&path)?;
    let line = MAP_LINE_LEN + 1;
    let mut buf = Vec::with_capacity(count.saturating_mul(line).min(APPEND_WRITE_MAX) + 1);
    // Hold the map's own lock from the tail check to the last write: another
    // of our appenders' write in flight would otherwise look like a torn
    // tail. (The reference takes no such lock; it appends under the
    // per-state lock, which excludes us anyway.)
    file.lock().map_err(io_err("lock", &path))?;
    let written = (|| -> Result<()> {
        crate::durable::fault::check().map_err(io_err("append to", &path))?;
        if !ends_at_line_boundary(&file, &path)? {
            // A torn line from an earlier crash: close it off so our first
            // line is not glued onto it.
            buf.push(b'\n');
        }
        for (b, s) in pairs {
            if buf.len() + line > APPEND_WRITE_MAX {
                file.write_all(&buf).map_err(io_err("append to", &path))?;
                buf.clear();
            }
            crate::hex::encode_into(b.as_bytes(), &mut buf);
            buf.push(b' ');
            s.write_hex(&mut buf);
            buf.push(b'\n');
        }
        file.write_all(&buf).map_err(io_err("append to", &path))?;
        Ok(())
    })();
    let _ = file.unlock();
    written?;
    file.sync_data().map_err(io_err("fsync", &path))?;
    if created {
        sync_dir(state)?;
    }
    Ok(())
}

/// Open `path` for appending, creating it (mode 0644) when absent; the flag
/// says whether it had to be created.
fn open_for_append(path: &Path) -> Result<(File, bool)> {
    match OpenOptions::new().append(true).open(path) {
        Ok(f) => Ok((f, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o644)
                .open(path)
                .map_err(io_err("create", path))?;
            Ok((f, true))
        }
        Err(e) => Err(io_err("open for append", path)(e).into()),
    }
}

/// True when the file is empty or its last byte is a newline.
fn ends_at_line_boundary(file: &File, path: &Path) -> Result<bool> {
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    if len == 0 {
        return Ok(true);
    }
    // The file is open for appending only, so read the byte through a fresh
    // read-only handle.
    let reader = File::open(path).map_err(io_err("open", path))?;
    let mut last = [0u8; 1];
    reader
        .read_exact_at(&mut last, len - 1)
        .map_err(io_err("read", path))?;
    Ok(last[0] == b'\n')
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parse one line (newline already removed; a `\r` before a newline too).
#[inline]
fn parse_line(line: &[u8]) -> Option<(Id, Sha1)> {
    if line.len() != MAP_LINE_LEN || line[64] != b' ' {
        return None;
    }
    // The blake3 column accepts either case, as the reference does on read;
    // the sha1 column is lowercase only, as in the reference.
    let mut b = [0u8; ID_LEN];
    let mut s = [0u8; SHA1_LEN];
    let sha1 = &line[65..];
    (crate::hex::decode_any_case(&line[..64], &mut b)
        && !sha1.iter().any(u8::is_ascii_uppercase)
        && crate::hex::decode_any_case(sha1, &mut s))
    .then_some((Id(b), Sha1(s)))
}

/// Pairs and health of one chunk of the file.
struct ChunkScan<T> {
    pairs: Vec<T>,
    bad: bool,
}

impl<T> Default for ChunkScan<T> {
    fn default() -> Self {
        ChunkScan {
            pairs: Vec::new(),
            bad: false,
        }
    }
}

/// The parsed file: pairs per chunk in file order, the bit width that
/// addresses a pair within a chunk, and whether every line parsed.
struct FileScan<T> {
    chunks: Vec<Vec<T>>,
    shift: u32,
    intact: bool,
}

/// Parse the lines that begin in `buf[from..until]`.
///
/// `buf` may run past `until` (look-ahead to finish the last line);
/// `buf_ends_file` says whether the end of `buf` is the end of the file. A
/// line whose newline lies beyond `buf` is longer than any parsable line, so
/// it is counted as bad and ends the scan (the next line begins past
/// `until` and belongs to another chunk).
fn scan_window<T>(
    buf: &[u8],
    from: usize,
    until: usize,
    buf_ends_file: bool,
    collect: bool,
    make: fn(Id, Sha1) -> T,
) -> ChunkScan<T> {
    let mut out = ChunkScan::default();
    if collect {
        out.pairs.reserve((until - from) / (MAP_LINE_LEN + 1) + 1);
    }
    let mut p = from;
    while p < until {
        // Fast path: a well-formed line and its newline.
        if let Some(nl) = buf.get(p + MAP_LINE_LEN)
            && *nl == b'\n'
            && let Some((b, s)) = parse_line(&buf[p..p + MAP_LINE_LEN])
        {
            if collect {
                out.pairs.push(make(b, s));
            }
            p += MAP_LINE_LEN + 1;
            continue;
        }
        // Slow path: find the end of whatever this line is.
        let parsed = match buf[p..].iter().position(|&c| c == b'\n') {
            Some(off) => {
                let mut line = &buf[p..p + off];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                p += off + 1;
                parse_line(line)
            }
            None if buf_ends_file => {
                // Unterminated final line: parsed as is (a complete line that
                // only lacks its newline still counts, as in the reference).
                let line = &buf[p..];
                p = buf.len();
                parse_line(line)
            }
            None => {
                out.bad = true;
                break;
            }
        };
        match parsed {
            Some((b, s)) if collect => out.pairs.push(make(b, s)),
            Some(_) => {}
            None => out.bad = true,
        }
    }
    out
}

/// Read and parse the map at `path`; `None` when it does not exist.
fn scan_file<T: Send>(
    path: &Path,
    collect: bool,
    chunk: usize,
    make: fn(Id, Sha1) -> T,
) -> Result<Option<FileScan<T>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e).into()),
    };
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let len = usize::try_from(len).map_err(|_| {
        io_err("read", path)(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "map larger than the address space",
        ))
    })?;
    let small = u64::try_from(len).is_ok_and(|l| l <= SMALL_FILE);
    let chunk = if small { len.max(1) } else { chunk.max(1) };
    // Pairs are later addressed as `chunk << shift | offset` in 32 bits; a
    // chunk holds at most one parsable line per 105 bytes.
    let shift = (chunk / MAP_LINE_LEN + 2)
        .next_power_of_two()
        .trailing_zeros();
    let n = len.div_ceil(chunk);
    if shift >= 32 || (n as u64) > (u64::from(u32::MAX) >> shift) {
        return Err(io_err("index", path)(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "map too large to index",
        ))
        .into());
    }
    let scans: Vec<ChunkScan<T>> = if n <= 1 {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, 0)
            .map_err(io_err("read", path))?;
        vec![scan_window(&buf, 0, len, true, collect, make)]
    } else {
        (0..n)
            .into_par_iter()
            .map_init(Vec::new, |buf: &mut Vec<u8>, i| {
                scan_chunk(&file, path, len, i * chunk, chunk, collect, buf, make)
            })
            .collect::<Result<Vec<_>>>()?
    };
    let intact = !scans.iter().any(|s| s.bad);
    Ok(Some(FileScan {
        chunks: scans.into_iter().map(|s| s.pairs).collect(),
        shift,
        intact,
    }))
}

/// Parse the lines that begin in `[start, start + chunk)` of a file of `len`
/// bytes, reading through `buf`.
#[allow(clippy::too_many_arguments)]
fn scan_chunk<T>(
    file: &File,
    path: &Path,
    len: usize,
    start: usize,
    chunk: usize,
    collect: bool,
    buf: &mut Vec<u8>,
    make: fn(Id, Sha1) -> T,
) -> Result<ChunkScan<T>> {
    let end = (start + chunk).min(len);
    // Read one byte before the chunk to learn whether a line begins at
    // `start`, and a look-ahead past its end to finish the last line.
    let read_from = start.saturating_sub(1);
    let read_to = (end + LOOKAHEAD).min(len);
    buf.clear();
    buf.resize(read_to - read_from, 0);
    file.read_exact_at(buf, read_from as u64)
        .map_err(io_err("read", path))?;
    let until = end - read_from;
    let from = if start == 0 {
        0
    } else {
        // The first line beginning in this chunk starts after the first
        // newline at or after `start - 1`.
        match buf[..until].iter().position(|&c| c == b'\n') {
            Some(nl) => nl + 1,
            None => return Ok(ChunkScan::default()),
        }
    };
    Ok(scan_window(buf, from, until, read_to == len, collect, make))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(b: u8, s: u8) -> Vec<u8> {
        let mut v = Vec::new();
        crate::hex::encode_into(&[b; 32], &mut v);
        v.push(b' ');
        crate::hex::encode_into(&[s; 20], &mut v);
        v.push(b'\n');
        v
    }

    /// The reference reading rule, written the slow and obvious way.
    fn oracle(data: &[u8]) -> (Vec<(Id, Sha1)>, bool) {
        let text = String::from_utf8_lossy(data);
        let mut pairs = Vec::new();
        let mut intact = std::str::from_utf8(data).is_ok();
        let hex_any = |s: &str| s.bytes().all(|c| c.is_ascii_hexdigit());
        let hex_lower = |s: &str| s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        for l in text.lines() {
            let ok = l
                .split_once(' ')
                .is_some_and(|(b, s)| b.len() == 64 && hex_any(b) && s.len() == 40 && hex_lower(s));
            if ok {
                pairs.push(parse_line(l.as_bytes()).unwrap());
            } else {
                intact = false;
            }
        }
        (pairs, intact)
    }

    fn scan_bytes(data: &[u8], chunk: usize) -> (Vec<(Id, Sha1)>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("map");
        std::fs::write(&p, data).unwrap();
        // Force the chunked path whatever the size by calling the pieces.
        let file = File::open(&p).unwrap();
        let len = data.len();
        let mut scans = Vec::new();
        if len == 0 {
            return (Vec::new(), true);
        }
        let mut buf = Vec::new();
        for i in 0..len.div_ceil(chunk) {
            scans.push(
                scan_chunk(&file, &p, len, i * chunk, chunk, true, &mut buf, |b, s| {
                    (b, s)
                })
                .unwrap(),
            );
        }
        let intact = !scans.iter().any(|s| s.bad);
        (scans.into_iter().flat_map(|s| s.pairs).collect(), intact)
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_result() {
        let mut data = Vec::new();
        for i in 0..40u8 {
            data.extend(line(i, i.wrapping_mul(7)));
        }
        let want = oracle(&data);
        assert!(want.1);
        for chunk in [1, 2, 3, 7, 105, 106, 107, 211, 212, 1000, 5000] {
            assert_eq!(scan_bytes(&data, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn uppercase_blake3_and_crlf_parse_like_the_reference() {
        let mut l = line(0xab, 0xcd);
        l[..64].make_ascii_uppercase();
        l.pop();
        l.extend_from_slice(b"\r\n");
        let (pairs, intact) = oracle(&l);
        assert_eq!(pairs.len(), 1);
        assert!(intact);
        assert_eq!(scan_bytes(&l, 1000), (pairs.clone(), true));
        assert_eq!(scan_bytes(&l, 3), (pairs, true));
        // Uppercase in the sha1 column is refused, as in the reference.
        let mut l = line(1, 0xcd);
        l[65..105].make_ascii_uppercase();
        assert_eq!(scan_bytes(&l, 1000), (Vec::new(), false));
    }

    fn arb_piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            6 => (any::<u8>(), any::<u8>()).prop_map(|(b, s)| line(b, s)),
            1 => Just(b"\n".to_vec()),
            1 => Just(b"\r\n".to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..150),
            1 => (any::<u8>(), any::<u8>(), 0usize..106)
                .prop_map(|(b, s, cut)| line(b, s)[..cut].to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn chunked_scan_matches_the_reference_rule(
            pieces in proptest::collection::vec(arb_piece(), 0..30),
            chunk in 1usize..400,
        ) {
            let data: Vec<u8> = pieces.concat();
            prop_assert_eq!(scan_bytes(&data, chunk), oracle(&data));
        }
    }
}
