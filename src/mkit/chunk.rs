//! Content-defined chunking (FastCDC v1), as mkit pins it.
//!
//! Content larger than [`CHUNK_THRESHOLD`] is stored as a chunked blob: the
//! bytes are cut at content-defined boundaries, each piece becomes its own
//! blob, and a manifest lists them. For our chunked-blob ids to equal the
//! reference's, every boundary must land on the same byte, so this module
//! reproduces SPEC-FASTCDC v1 exactly: a 256-entry gear table drawn from
//! splitmix64 seeded with `"MKITFCDC"`, sizes 16 KiB / 64 KiB / 256 KiB, a
//! 17-bit mask before the average size and a 15-bit mask after it, and a
//! forced cut at the maximum. Notes and sources: `spec/REFS-KEYS-CHUNKING.md`.
//!
//! Everything here is pure and allocation-free except [`boundaries`].
//! [`cut`] is the hot path: one table lookup, a shift, an add and a mask
//! test per byte, with no bounds checks in the inner loop.

/// The splitmix64 starting state: ASCII `"MKITFCDC"` read as a big-endian `u64`.
pub const SEED: u64 = u64::from_be_bytes(*b"MKITFCDC");
/// Smallest chunk `cut` produces, except for the final piece of an input (16 KiB).
pub const MIN_SIZE: usize = 16 * 1024;
/// Target average chunk size (64 KiB); the mask switches from strict to loose here.
pub const AVG_SIZE: usize = 64 * 1024;
/// Largest chunk `cut` ever produces (256 KiB); reaching it forces a cut.
pub const MAX_SIZE: usize = 256 * 1024;
/// Mask tested while the scan position is below [`AVG_SIZE`] (17 bits: fewer cuts).
pub const MASK_S: u64 = 0x0001_FFFF;
/// Mask tested from [`AVG_SIZE`] up to [`MAX_SIZE`] (15 bits: more cuts).
pub const MASK_L: u64 = 0x0000_7FFF;
/// Content longer than this many bytes (1 MiB) is chunked; content of at
/// most this size is stored as a single blob.
pub const CHUNK_THRESHOLD: usize = 1024 * 1024;
/// BLAKE3 of the gear table's 256 entries as little-endian bytes, as pinned
/// by the reference (`7b238963…`). A wrong seed or derivation changes it.
pub const GEAR_TABLE_DIGEST: [u8; 32] = [
    0x7b, 0x23, 0x89, 0x63, 0xa8, 0xbb, 0x10, 0xc4, 0xde, 0xa1, 0xbf, 0x67, 0x8a, 0xa0, 0x7d, 0x8c,
    0x3c, 0xe9, 0x42, 0x84, 0x20, 0x9c, 0x44, 0x0c, 0xa9, 0x71, 0xff, 0x3a, 0x97, 0xee, 0x5a, 0xd4,
];

// The parameters must satisfy the spec's constraints (SPEC-FASTCDC §4, §5).
const _: () = {
    assert!(MIN_SIZE < AVG_SIZE && AVG_SIZE < MAX_SIZE);
    assert!(AVG_SIZE.is_power_of_two());
    let mask = (1u64 << AVG_SIZE.trailing_zeros()) - 1;
    assert!(MASK_S == mask | (mask << 1));
    assert!(MASK_L == mask >> 1);
};

/// Splitmix64's additive constant.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One splitmix64 step: advance `state` and return the mixed output.
const fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const fn build_gear_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut state = SEED;
    let mut i = 0;
    while i < table.len() {
        table[i] = splitmix64(&mut state);
        i += 1;
    }
    table
}

/// The table, computed at compile time.
static GEAR: [u64; 256] = build_gear_table();

/// The 256-entry gear table (SPEC-FASTCDC §3): entry `i` is the `i`-th
/// splitmix64 output from [`SEED`].
pub fn gear_table() -> &'static [u64; 256] {
    &GEAR
}

/// BLAKE3 over the gear table's entries, each as 8 little-endian bytes
/// (2048 bytes in all); equals [`GEAR_TABLE_DIGEST`] (SPEC-FASTCDC §8 vector 1).
pub fn gear_table_digest() -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for entry in &GEAR {
        hasher.update(&entry.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// True when content of `len` bytes must be stored as a chunked blob
/// (strictly more than [`CHUNK_THRESHOLD`]).
pub fn needs_chunking(len: u64) -> bool {
    len > CHUNK_THRESHOLD as u64
}

/// Length of the first chunk of `data`.
///
/// Inputs of at most [`MIN_SIZE`] bytes are one chunk. Otherwise the gear
/// hash starts at zero at offset [`MIN_SIZE`] (earlier bytes are never
/// hashed) and takes one byte per step; the first offset `i` whose updated
/// hash has all [`MASK_S`] bits clear (for `i < AVG_SIZE`) or all [`MASK_L`]
/// bits clear (for `AVG_SIZE <= i < MAX_SIZE`) ends the chunk, and the chunk
/// is `data[..i]`: the byte that completed the match starts the next chunk.
/// Without a match the chunk is `min(len, MAX_SIZE)` bytes.
#[inline]
pub fn cut(data: &[u8]) -> usize {
    let len = data.len();
    if len <= MIN_SIZE {
        return len;
    }
    let strict_end = len.min(AVG_SIZE);
    let mut hash = 0u64;
    if let Some(at) = scan(&data[MIN_SIZE..strict_end], &mut hash, MASK_S) {
        return MIN_SIZE + at;
    }
    let loose_end = len.min(MAX_SIZE);
    // Empty when the input ends before AVG_SIZE.
    if let Some(loose) = data.get(AVG_SIZE..loose_end)
        && let Some(at) = scan(loose, &mut hash, MASK_L)
    {
        return AVG_SIZE + at;
    }
    loose_end
}

/// Roll the gear hash over `bytes`, returning the index of the first byte
/// after which `hash & mask == 0`. On `None`, `hash` holds the state after
/// the last byte so the caller can continue with another mask.
///
/// The loop takes four bytes per step. The hash after the fourth byte is
/// `(h << 4) + t` where `t` depends only on the four table entries, so the
/// serial dependency is one shift and one add per four bytes; the three
/// intermediate hashes are computed from `h` in parallel for the mask test.
#[inline(always)]
fn scan(bytes: &[u8], hash: &mut u64, mask: u64) -> Option<usize> {
    let mut h = *hash;
    let mut quads = bytes.chunks_exact(4);
    let mut base = 0usize;
    for q in &mut quads {
        let (a, b, c, d) = (
            GEAR[q[0] as usize],
            GEAR[q[1] as usize],
            GEAR[q[2] as usize],
            GEAR[q[3] as usize],
        );
        let t2 = (a << 1).wrapping_add(b);
        let t3 = (t2 << 1).wrapping_add(c);
        let t4 = (t3 << 1).wrapping_add(d);
        let h1 = (h << 1).wrapping_add(a);
        let h2 = (h << 2).wrapping_add(t2);
        let h3 = (h << 3).wrapping_add(t3);
        let h4 = (h << 4).wrapping_add(t4);
        if (h1 & mask == 0) | (h2 & mask == 0) | (h3 & mask == 0) | (h4 & mask == 0) {
            // Rare: find which of the four matched first.
            let offset = [h1, h2, h3, h4]
                .iter()
                .position(|v| v & mask == 0)
                .unwrap_or(3);
            return Some(base + offset);
        }
        h = h4;
        base += 4;
    }
    for (i, &byte) in quads.remainder().iter().enumerate() {
        h = (h << 1).wrapping_add(GEAR[byte as usize]);
        if h & mask == 0 {
            return Some(base + i);
        }
    }
    *hash = h;
    None
}

/// Iterator over the lengths of the chunks of a byte slice, in order.
///
/// Yields nothing for an empty input; the lengths always sum to the input length.
#[derive(Debug, Clone)]
pub struct ChunkLengths<'a> {
    rest: &'a [u8],
}

impl Iterator for ChunkLengths<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.rest.is_empty() {
            return None;
        }
        let n = cut(self.rest);
        self.rest = self.rest.get(n..).unwrap_or_default();
        Some(n)
    }
}

impl std::iter::FusedIterator for ChunkLengths<'_> {}

/// Iterator over the chunks of a byte slice, as sub-slices, in order.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (chunk, rest) = self.rest.split_at(cut(self.rest));
        self.rest = rest;
        Some(chunk)
    }
}

impl std::iter::FusedIterator for Chunks<'_> {}

/// The lengths of the chunks of `data`, in order.
pub fn chunk_lengths(data: &[u8]) -> ChunkLengths<'_> {
    ChunkLengths { rest: data }
}

/// The chunks of `data`, in order, as sub-slices.
pub fn chunks(data: &[u8]) -> Chunks<'_> {
    Chunks { rest: data }
}

/// The end offset of every chunk of `data`: the first is the first chunk's
/// length, the last is `data.len()`; empty for empty input. This is the list
/// the reference's `chunk_boundaries` returns and the golden vectors pin.
pub fn boundaries(data: &[u8]) -> Vec<usize> {
    let mut end = 0;
    chunk_lengths(data)
        .map(|n| {
            end += n;
            end
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same splitmix64 stream the goldens use, as little-endian bytes.
    fn stream(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Byte-at-a-time transcription of the spec's cut pseudo-code, to check
    /// the unrolled scanner against.
    fn cut_plain(data: &[u8]) -> usize {
        if data.len() <= MIN_SIZE {
            return data.len();
        }
        let mut h = 0u64;
        for (i, &b) in data.iter().enumerate().take(MAX_SIZE).skip(MIN_SIZE) {
            h = (h << 1).wrapping_add(GEAR[b as usize]);
            let mask = if i < AVG_SIZE { MASK_S } else { MASK_L };
            if h & mask == 0 {
                return i;
            }
        }
        data.len().min(MAX_SIZE)
    }

    #[test]
    fn seed_is_the_ascii_literal() {
        assert_eq!(SEED, 0x4D4B_4954_4643_4443);
    }

    #[test]
    fn gear_table_digest_is_pinned_and_entries_unique() {
        assert_eq!(gear_table_digest(), GEAR_TABLE_DIGEST);
        let mut sorted = gear_table().to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert!(!sorted.contains(&0));
    }

    #[test]
    fn short_inputs_are_one_chunk() {
        assert_eq!(cut(b""), 0);
        assert_eq!(cut(b"tiny"), 4);
        let data = stream(1, MIN_SIZE);
        assert_eq!(cut(&data), MIN_SIZE);
        assert!(boundaries(b"").is_empty());
        assert_eq!(boundaries(b"abc"), vec![3]);
    }

    #[test]
    fn all_zero_input_is_cut_at_max_size() {
        let zeros = vec![0u8; 3 * MAX_SIZE + 5];
        assert_eq!(cut(&zeros), MAX_SIZE);
        assert_eq!(
            chunk_lengths(&zeros).collect::<Vec<_>>(),
            vec![MAX_SIZE, MAX_SIZE, MAX_SIZE, 5]
        );
    }

    #[test]
    fn unrolled_scan_matches_byte_at_a_time_at_every_offset() {
        // Slide the start across 8 offsets so each match lands in every lane
        // of the four-byte step and in the remainder loop.
        let data = stream(0x5EED, 2 * MAX_SIZE);
        for shift in 0..8 {
            let mut rest = &data[shift..];
            while !rest.is_empty() {
                let n = cut(rest);
                assert_eq!(n, cut_plain(rest), "shift {shift}");
                rest = &rest[n..];
            }
        }
        // Lengths that end inside the strict and loose regions, at odd sizes.
        for len in [
            MIN_SIZE + 1,
            MIN_SIZE + 3,
            AVG_SIZE - 1,
            AVG_SIZE,
            AVG_SIZE + 2,
            MAX_SIZE + 1,
        ] {
            let zeros = vec![0u8; len];
            assert_eq!(cut(&zeros), cut_plain(&zeros), "len {len}");
            assert_eq!(cut(&data[..len]), cut_plain(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn chunks_partition_the_input_within_size_limits() {
        let data = stream(0xCAFE, 3 * 1024 * 1024 + 17);
        let lengths: Vec<usize> = chunk_lengths(&data).collect();
        assert_eq!(lengths.iter().sum::<usize>(), data.len());
        let (last, body) = lengths.split_last().unwrap();
        assert!(body.iter().all(|&n| (MIN_SIZE..=MAX_SIZE).contains(&n)));
        assert!(*last <= MAX_SIZE);
        let joined: Vec<u8> = chunks(&data).flatten().copied().collect();
        assert_eq!(joined, data);
        assert_eq!(*boundaries(&data).last().unwrap(), data.len());
    }

    #[test]
    fn threshold_is_inclusive_for_single_blobs() {
        assert!(!needs_chunking(CHUNK_THRESHOLD as u64));
        assert!(needs_chunking(CHUNK_THRESHOLD as u64 + 1));
        assert!(!needs_chunking(0));
    }
}
