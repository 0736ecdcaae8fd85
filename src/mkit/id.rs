//! Object ids in the mkit id space.
//!
//! mkit names every object by 32 bytes of BLAKE3. Blobs, commits, remixes and
//! tags use the flat digest of their serialized bytes; trees and chunked blobs
//! use a domain-wrapped Binary Merkle Tree root over their children, so that a
//! matching id proves the whole child set (SPEC-MERKLE-OBJECTS). This module
//! owns the [`Id`] type, hex in and out, and both id functions. It does no I/O.

use std::fmt;

/// Length of an mkit id in bytes.
pub const ID_LEN: usize = 32;
/// Length of an mkit id in lowercase hex.
pub const HEX_LEN: usize = 64;

/// Domain wrapped around a tree's Merkle root.
pub const TREE_DOMAIN: &[u8] = b"mkit.tree\x00";
/// Domain wrapped around a chunked blob's Merkle root.
pub const CHUNKED_DOMAIN: &[u8] = b"mkit.chunked\x00";
/// Domain of one tree-entry leaf.
pub const TREE_ENTRY_LEAF_DOMAIN: &[u8] = b"mkit-tree-entry-v1";
/// Domain of the metadata leaf that opens a chunked blob's leaf list.
pub const CHUNKED_META_LEAF_DOMAIN: &[u8] = b"mkit-cblob-meta-v1";

/// A 32-byte BLAKE3 object id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

/// An id hashes as its first 8 bytes, as [`crate::git::sha1::Sha1`] does.
impl std::hash::Hash for Id {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// Why a string is not an mkit id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string is not exactly 64 characters long.
    #[error("an mkit id is 64 hex characters, got {0}")]
    Length(usize),
    /// A character outside `0-9a-f` (uppercase is refused: ids are lowercase on disk).
    #[error("an mkit id is lowercase hex; byte {byte:#04x} at offset {offset} is not")]
    Digit {
        /// Offset of the bad character.
        offset: usize,
        /// The bad byte.
        byte: u8,
    },
}

impl Id {
    /// The all-zero id, used where the format asks for "no value".
    pub const ZERO: Id = Id([0; ID_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// True for the all-zero id.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; ID_LEN]
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// Parse 64 lowercase hex characters.
    pub fn from_hex(s: &str) -> Result<Id, HexError> {
        Self::from_hex_bytes(s.as_bytes())
    }

    /// Parse 64 lowercase hex bytes.
    pub fn from_hex_bytes(s: &[u8]) -> Result<Id, HexError> {
        let mut out = [0u8; ID_LEN];
        decode_lower_hex(s, &mut out)?;
        Ok(Id(out))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_hex())
    }
}

impl From<[u8; ID_LEN]> for Id {
    fn from(b: [u8; ID_LEN]) -> Self {
        Id(b)
    }
}

/// Decode lowercase hex into `out`; the input must be exactly `2 * out.len()` bytes.
///
/// Shared by every id space (mkit ids here, git SHA-1s on the git side); see
/// [`crate::hex::decode_lower`].
pub fn decode_lower_hex(s: &[u8], out: &mut [u8]) -> Result<(), HexError> {
    crate::hex::decode_lower(s, out)
}

/// `BLAKE3(le16(len(domain)) || domain || data...)`: the length-prefixed
/// domain digest used by signing and by the Merkle leaves and wraps.
pub fn domain_digest(domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    // Domains are compile-time constants far below 64 KiB.
    h.update(&(domain.len() as u16).to_le_bytes());
    h.update(domain);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// Flat id: BLAKE3 of the serialized object bytes (blob, commit, remix, tag).
pub fn flat_id(bytes: &[u8]) -> Id {
    Id(*blake3::hash(bytes).as_bytes())
}

/// Root of the stateless Binary Merkle Tree over `leaves` (SPEC-MERKLE-OBJECTS §1.1).
///
/// Leaves are position-hashed with a big-endian index, folded pairwise with the
/// last node duplicated on odd levels, and the result is bound to the leaf count.
pub fn bmt_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = Vec::with_capacity(leaves.len().max(1));
    if leaves.is_empty() {
        level.push(*blake3::hash(b"").as_bytes());
    }
    for (i, leaf) in leaves.iter().enumerate() {
        level.push(position_hash(i, leaf));
    }
    fold_in_place(&mut level);
    finalize_root(leaves.len(), &level[0])
}

/// Hash leaf `i` at its position: `BLAKE3(be32(i) || leaf)`.
fn position_hash(i: usize, leaf: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 36];
    // Leaf counts are bounded far below u32::MAX (1,000,000 tree entries).
    buf[..4].copy_from_slice(&(i as u32).to_be_bytes());
    buf[4..].copy_from_slice(leaf);
    *blake3::hash(&buf).as_bytes()
}

/// Fold a level into its root, pairwise, duplicating the last odd node.
fn fold_in_place(level: &mut Vec<[u8; 32]>) {
    let mut buf = [0u8; 64];
    while level.len() > 1 {
        let n = level.len();
        for i in 0..n.div_ceil(2) {
            let left = level[2 * i];
            let right = if 2 * i + 1 < n {
                level[2 * i + 1]
            } else {
                left
            };
            buf[..32].copy_from_slice(&left);
            buf[32..].copy_from_slice(&right);
            level[i] = *blake3::hash(&buf).as_bytes();
        }
        level.truncate(n.div_ceil(2));
    }
}

/// Bind the leaf count: `BLAKE3(be32(N) || top)`.
fn finalize_root(count: usize, top: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 36];
    buf[..4].copy_from_slice(&(count as u32).to_be_bytes());
    buf[4..].copy_from_slice(top);
    *blake3::hash(&buf).as_bytes()
}

/// Leaf digest of one tree entry.
pub fn tree_entry_leaf(name: &[u8], mode: u8, child: &Id) -> [u8; 32] {
    domain_digest(
        TREE_ENTRY_LEAF_DOMAIN,
        &[&(name.len() as u32).to_le_bytes(), name, &[mode], &child.0],
    )
}

/// Id of a tree given its entries as `(name, mode byte, child id)` in canonical order.
pub fn tree_id<'a>(entries: impl IntoIterator<Item = (&'a [u8], u8, &'a Id)>) -> Id {
    let mut level: Vec<[u8; 32]> = entries
        .into_iter()
        .enumerate()
        .map(|(i, (name, mode, child))| position_hash(i, &tree_entry_leaf(name, mode, child)))
        .collect();
    let count = level.len();
    if level.is_empty() {
        level.push(*blake3::hash(b"").as_bytes());
    }
    fold_in_place(&mut level);
    Id(domain_digest(
        TREE_DOMAIN,
        &[&finalize_root(count, &level[0])],
    ))
}

/// Id of a chunked blob from its size fields and chunk ids.
pub fn chunked_blob_id(total_size: u64, chunk_size: u32, chunks: &[Id]) -> Id {
    let mut leaves = Vec::with_capacity(chunks.len() + 1);
    leaves.push(domain_digest(
        CHUNKED_META_LEAF_DOMAIN,
        &[&total_size.to_le_bytes(), &chunk_size.to_le_bytes()],
    ));
    leaves.extend(chunks.iter().map(|c| c.0));
    Id(domain_digest(CHUNKED_DOMAIN, &[&bmt_root(&leaves)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_id_is_the_pinned_constant() {
        assert_eq!(
            tree_id(std::iter::empty()).to_hex(),
            "1ab8d0788b29fe5992011e64d6c922ec93f4248b3755b92b15b07e664cb15652"
        );
    }

    #[test]
    fn hex_round_trip_and_refusals() {
        let id = flat_id(b"x");
        assert_eq!(Id::from_hex(&id.to_hex()), Ok(id));
        assert_eq!(Id::from_hex("ab"), Err(HexError::Length(2)));
        let upper = Id([0xab; 32]).to_hex().to_uppercase();
        assert_eq!(
            Id::from_hex(&upper),
            Err(HexError::Digit {
                offset: 0,
                byte: b'A'
            })
        );
        let mut bad = id.to_hex().into_bytes();
        bad[5] = b'g';
        assert_eq!(
            Id::from_hex_bytes(&bad),
            Err(HexError::Digit {
                offset: 5,
                byte: b'g'
            })
        );
    }

    #[test]
    fn odd_levels_duplicate_the_last_node_and_bind_the_count() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        // Three leaves and four leaves whose last duplicates the third must differ.
        assert_ne!(bmt_root(&[a, b, c]), bmt_root(&[a, b, c, c]));
        assert_ne!(bmt_root(&[a, b]), bmt_root(&[b, a]));
    }
}
