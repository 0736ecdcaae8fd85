//! [`MapIndex`]: the in-memory lookup table a loaded map becomes.
//!
//! A million-line map must load in a fraction of a second, and a general
//! hash map spends most of that time faulting in and scattering 52-byte
//! entries over a table twice the size of the data. This index keeps the
//! parsed pairs where the parser left them (one vector per file chunk, file
//! order) and builds beside them a compact open-addressing table of 8-byte
//! slots — a 32-bit hash tag and a 32-bit reference to the pair.
//!
//! The table is partitioned by the top bits of the hash into small
//! sub-tables of a few kilobytes each, so it is built with cache-local
//! writes: the pairs' hashes are computed in parallel, each worker takes a
//! range of partitions, scatters its pairs' slots into per-partition runs in
//! file order, then fills each small sub-table in turn. Because every
//! partition sees its pairs in file order, a key that repeats ends up with
//! the later line, as in the reference.
//!
//! The hash is keyed with per-process random seeds, so keys an attacker can
//! grind (git SHA-1s come from upstream) cannot be steered into one bucket.
//! Pairs inserted after loading go to a small overlay [`HashMap`] that
//! shadows the loaded pairs.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use rayon::prelude::*;

use super::sha1::Sha1;
use crate::mkit::id::Id;

/// A key of a [`MapIndex`]: a fixed-size digest.
pub trait MapKey: Copy + Eq + Hash + Send + Sync {
    /// The digest bytes.
    fn key_bytes(&self) -> &[u8];
}

impl MapKey for Id {
    fn key_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl MapKey for Sha1 {
    fn key_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The map as blake3 → sha1 (export orientation).
pub type BlakeToSha1 = MapIndex<Id, Sha1>;
/// The map as sha1 → blake3 (import orientation).
pub type Sha1ToBlake = MapIndex<Sha1, Id>;

/// Average pairs per partition the table aims for (sub-tables of 4–8 KiB).
const PAIRS_PER_PARTITION: usize = 256;
/// At most `1 << MAX_PARTITION_BITS` partitions.
const MAX_PARTITION_BITS: u32 = 16;
/// Below this many pairs the table is built on one thread.
const PARALLEL_MIN: usize = 1 << 15;

/// A lookup table from a digest to a value, loaded from the map file, that
/// also takes later inserts. Lookups, inserts and lengths behave like a
/// [`HashMap`] filled with the file's pairs in file order.
#[derive(Debug, Clone)]
pub struct MapIndex<K: MapKey, V: Copy> {
    /// The loaded pairs, one vector per file chunk, in file order.
    chunks: Vec<Vec<(K, V)>>,
    /// A pair reference is `chunk << shift | offset`.
    shift: u32,
    table: Table,
    seeds: [u64; 2],
    /// Distinct keys among the loaded pairs.
    base_len: usize,
    /// Pairs inserted after loading; they shadow the loaded ones.
    overlay: HashMap<K, V>,
    /// Overlay keys that are not also loaded keys.
    overlay_only: usize,
}

/// The partitioned slot table. A slot is `tag << 32 | (reference + 1)`, 0
/// when empty; the tag is bits 16..48 of the hash and its low bits pick the
/// home slot, the top `bits` of the hash pick the partition.
#[derive(Debug, Clone, Default)]
struct Table {
    bits: u32,
    parts: Vec<Part>,
    /// Slot storage, one vector per build worker.
    slots: Vec<Vec<u64>>,
}

/// Where one partition's sub-table lives: `slots[group][start..start + size]`,
/// `size` a power of two, or 0 for an empty partition.
#[derive(Debug, Clone, Copy, Default)]
struct Part {
    group: usize,
    start: usize,
    size: usize,
}

#[inline]
fn tag_of(h: u64) -> u64 {
    (h >> 16) & 0xffff_ffff
}

impl Table {
    fn part_of(&self, h: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (h >> (64 - self.bits)) as usize
        }
    }
}

impl<K: MapKey, V: Copy> Default for MapIndex<K, V> {
    fn default() -> Self {
        MapIndex::new()
    }
}

impl<K: MapKey, V: Copy> MapIndex<K, V> {
    /// An empty index.
    pub fn new() -> Self {
        MapIndex {
            chunks: Vec::new(),
            shift: 0,
            table: Table::default(),
            seeds: random_seeds(),
            base_len: 0,
            overlay: HashMap::new(),
            overlay_only: 0,
        }
    }

    /// Index `chunks` of pairs in file order; each chunk must hold fewer
    /// than `1 << shift` pairs and `chunks.len() << shift` must fit in a
    /// `u32` (the caller picks `shift` from its chunk size).
    pub(crate) fn build(chunks: Vec<Vec<(K, V)>>, shift: u32) -> Self
    where
        V: Send + Sync,
    {
        let total: usize = chunks.iter().map(Vec::len).sum();
        let mut index = MapIndex {
            chunks,
            shift,
            table: Table::default(),
            seeds: random_seeds(),
            base_len: 0,
            overlay: HashMap::new(),
            overlay_only: 0,
        };
        if total == 0 {
            return index;
        }
        let bits = (total / PAIRS_PER_PARTITION)
            .next_power_of_two()
            .trailing_zeros()
            .min(MAX_PARTITION_BITS);
        let groups = if total < PARALLEL_MIN {
            1
        } else {
            rayon::current_num_threads()
                .next_power_of_two()
                .min(1 << bits)
        };
        let parts_per_group = (1usize << bits) / groups;
        let this = &index;
        let probe = Table {
            bits,
            ..Table::default()
        };
        // Hash every pair once, in parallel, in file order.
        let hashes: Vec<Vec<u64>> = this
            .chunks
            .par_iter()
            .map(|chunk| chunk.iter().map(|(k, _)| this.hash(k)).collect())
            .collect();
        let built: Vec<(Vec<u64>, Vec<Part>, usize)> = (0..groups)
            .into_par_iter()
            .map(|g| {
                let lo = g * parts_per_group;
                this.build_group(&hashes, &probe, g, lo..lo + parts_per_group)
            })
            .collect();
        let mut table = Table {
            bits,
            parts: Vec::with_capacity(1 << bits),
            slots: Vec::with_capacity(groups),
        };
        let mut distinct = 0;
        for (slots, parts, n) in built {
            table.slots.push(slots);
            table.parts.extend(parts);
            distinct += n;
        }
        drop(hashes);
        index.table = table;
        index.base_len = distinct;
        index
    }

    /// Build the sub-tables of partitions `range` into one slot vector.
    fn build_group(
        &self,
        hashes: &[Vec<u64>],
        probe: &Table,
        group: usize,
        range: std::ops::Range<usize>,
    ) -> (Vec<u64>, Vec<Part>, usize) {
        let lo = range.start;
        let width = range.len();
        // Count this group's pairs per partition.
        let mut counts = vec![0usize; width];
        for &h in hashes.iter().flatten() {
            let p = probe.part_of(h);
            if range.contains(&p) {
                counts[p - lo] += 1;
            }
        }
        // Scatter their slots into per-partition runs, keeping file order.
        let mut run_start = Vec::with_capacity(width + 1);
        let mut acc = 0;
        for c in &counts {
            run_start.push(acc);
            acc += c;
        }
        run_start.push(acc);
        let mut fill = run_start.clone();
        let mut runs = vec![0u64; acc];
        for (c, hs) in hashes.iter().enumerate() {
            for (o, &h) in hs.iter().enumerate() {
                let p = probe.part_of(h);
                if range.contains(&p) {
                    let r = ((c as u32) << self.shift) | o as u32;
                    runs[fill[p - lo]] = (tag_of(h) << 32) | u64::from(r + 1);
                    fill[p - lo] += 1;
                }
            }
        }
        // Fill each partition's sub-table (load at most 7/8).
        let sizes: Vec<usize> = counts
            .iter()
            .map(|&n| {
                if n == 0 {
                    0
                } else {
                    (n + n / 7 + 1).next_power_of_two()
                }
            })
            .collect();
        let mut slots = vec![0u64; sizes.iter().sum()];
        let mut parts = Vec::with_capacity(width);
        let mut start = 0;
        let mut distinct = 0;
        for (q, &size) in sizes.iter().enumerate() {
            parts.push(Part { group, start, size });
            let sub = &mut slots[start..start + size];
            for &s in &runs[run_start[q]..run_start[q + 1]] {
                distinct += self.place(sub, s);
            }
            start += size;
        }
        (slots, parts, distinct)
    }

    /// Put slot `s` into sub-table `sub`, replacing the slot of an equal key;
    /// returns 1 when the key is new.
    fn place(&self, sub: &mut [u64], s: u64) -> usize {
        let mask = sub.len() - 1;
        let tag = s >> 32;
        let mut pos = tag as usize & mask;
        loop {
            let cur = sub[pos];
            if cur == 0 {
                sub[pos] = s;
                return 1;
            }
            if cur >> 32 == tag && self.key_at(slot_ref(cur)) == self.key_at(slot_ref(s)) {
                sub[pos] = s;
                return 0;
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.base_len + self.overlay_only
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        if let Some(v) = self.overlay.get(key) {
            return Some(v);
        }
        self.base_ref(key).map(|r| &self.pair_at(r).1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Set the value for `key`, returning the previous one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let base = self.base_ref(&key).map(|r| self.pair_at(r).1);
        match self.overlay.insert(key, value) {
            Some(prev) => Some(prev),
            None => {
                if base.is_none() {
                    self.overlay_only += 1;
                }
                base
            }
        }
    }

    /// Remove every key.
    pub fn clear(&mut self) {
        *self = MapIndex::new();
    }

    /// Every (key, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let loaded = self.chunks.iter().enumerate().flat_map(move |(c, chunk)| {
            chunk.iter().enumerate().filter_map(move |(o, (k, v))| {
                let r = ((c as u32) << self.shift) | o as u32;
                // Live when it is the reference the table keeps (the last
                // line for its key) and no insert shadows it.
                (self.base_ref(k) == Some(r) && !self.overlay.contains_key(k)).then_some((k, v))
            })
        });
        loaded.chain(self.overlay.iter())
    }

    /// A plain [`HashMap`] with the same contents.
    pub fn to_hash_map(&self) -> HashMap<K, V> {
        self.iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn hash(&self, key: &K) -> u64 {
        digest_hash(key.key_bytes(), &self.seeds)
    }

    fn pair_at(&self, r: u32) -> &(K, V) {
        let chunk = (r >> self.shift) as usize;
        let offset = (r & ((1u32 << self.shift) - 1)) as usize;
        &self.chunks[chunk][offset]
    }

    fn key_at(&self, r: u32) -> &K {
        &self.pair_at(r).0
    }

    fn base_ref(&self, key: &K) -> Option<u32> {
        if self.base_len == 0 {
            return None;
        }
        let h = self.hash(key);
        let part = self.table.parts[self.table.part_of(h)];
        if part.size == 0 {
            return None;
        }
        let sub = &self.table.slots[part.group][part.start..part.start + part.size];
        let mask = part.size - 1;
        let tag = tag_of(h);
        let mut pos = tag as usize & mask;
        loop {
            let cur = sub[pos];
            if cur == 0 {
                return None;
            }
            if cur >> 32 == tag && self.key_at(slot_ref(cur)) == key {
                return Some(slot_ref(cur));
            }
            pos = (pos + 1) & mask;
        }
    }
}

#[inline]
fn slot_ref(s: u64) -> u32 {
    (s as u32).wrapping_sub(1)
}

impl<K: MapKey, V: Copy> Extend<(K, V)> for MapIndex<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

fn random_seeds() -> [u64; 2] {
    let state = RandomState::new();
    [state.hash_one(0x5eed_u64), state.hash_one(0xfeed_u64)]
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// Keyed hash of a digest: a folded multiply per 16 bytes, chained.
#[inline]
fn digest_hash(bytes: &[u8], seeds: &[u64; 2]) -> u64 {
    let mut h = seeds[0];
    let mut blocks = bytes.chunks_exact(16);
    for b in &mut blocks {
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        x.copy_from_slice(&b[..8]);
        y.copy_from_slice(&b[8..]);
        h = fold(
            u64::from_le_bytes(x) ^ seeds[0],
            u64::from_le_bytes(y) ^ seeds[1] ^ h,
        );
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut x = [0u8; 16];
        x[..rest.len()].copy_from_slice(rest);
        let (a, b) = x.split_at(8);
        let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
        let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
        h = fold(a ^ seeds[0], b ^ seeds[1] ^ h);
    }
    fold(h ^ seeds[1], 0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(pairs: &[(Sha1, Id)], per_chunk: usize) -> Sha1ToBlake {
        let chunks: Vec<Vec<(Sha1, Id)>> =
            pairs.chunks(per_chunk.max(1)).map(<[_]>::to_vec).collect();
        let shift = (per_chunk.max(1) as u32)
            .next_power_of_two()
            .trailing_zeros()
            + 1;
        MapIndex::build(chunks, shift)
    }

    proptest! {
        #[test]
        fn behaves_like_a_hash_map_filled_in_order(
            raw in proptest::collection::vec((0u8..40, any::<u8>()), 0..300),
            per_chunk in 1usize..50,
            inserts in proptest::collection::vec((0u8..60, any::<u8>()), 0..40),
        ) {
            let pairs: Vec<(Sha1, Id)> = raw.iter().map(|&(k, v)| (Sha1([k; 20]), Id([v; 32]))).collect();
            let mut idx = build(&pairs, per_chunk);
            let mut want: HashMap<Sha1, Id> = HashMap::new();
            want.extend(pairs.iter().copied());
            prop_assert_eq!(idx.len(), want.len());
            prop_assert_eq!(idx.to_hash_map(), want.clone());
            for (k, v) in inserts {
                let (k, v) = (Sha1([k; 20]), Id([v; 32]));
                prop_assert_eq!(idx.insert(k, v), want.insert(k, v));
                prop_assert_eq!(idx.len(), want.len());
            }
            for k in 0u8..=60 {
                let k = Sha1([k; 20]);
                prop_assert_eq!(idx.get(&k), want.get(&k));
                prop_assert_eq!(idx.contains_key(&k), want.contains_key(&k));
            }
            prop_assert_eq!(idx.iter().count(), want.len());
            prop_assert_eq!(idx.to_hash_map(), want);
        }
    }

    #[test]
    fn large_build_uses_partitions_and_groups() {
        let pairs: Vec<(Sha1, Id)> = (0..200_000u32)
            .map(|i| {
                let mut s = [0u8; 20];
                s[..4].copy_from_slice(&i.to_le_bytes());
                (Sha1(s), Id([1; 32]))
            })
            .collect();
        let idx = build(&pairs, 40_000);
        assert_eq!(idx.len(), pairs.len());
        assert!(pairs.iter().all(|(k, _)| idx.contains_key(k)));
        assert!(!idx.contains_key(&Sha1([0xff; 20])));
        let mut idx = idx;
        idx.clear();
        assert!(idx.is_empty());
    }
}
