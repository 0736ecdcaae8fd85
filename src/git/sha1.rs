//! Git object ids (SHA-1), object kinds and the loose-object frame.
//!
//! Git names an object by the SHA-1 of its *framed* bytes: the header
//! `"<kind> <decimal length>\0"` followed by the body. The same framed bytes
//! are what the importer retains and digests into a commit's
//! `content_digest` (SPEC-GIT-IMPORT §5), so the frame is built in exactly one
//! place, here. This module holds the 20-byte [`Sha1`] value (hex in and out,
//! as the state directory stores it), the four [`ObjectKind`]s, the frame
//! helpers, and [`object_id`], which hashes with SHA-1 collision detection
//! (the sha1dc construction git itself uses, through gix) as SPEC-GIT-IMPORT
//! §5 requires for every SHA-1 computed over upstream bytes. No I/O.

use std::fmt;

use crate::mkit::id::{HexError, decode_lower_hex};

/// Length of a git SHA-1 in bytes.
pub const SHA1_LEN: usize = 20;
/// Length of a git SHA-1 in lowercase hex.
pub const SHA1_HEX_LEN: usize = 40;

/// A 20-byte git object id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Sha1(pub [u8; SHA1_LEN]);

/// An id hashes as its first 8 bytes: the tables keyed by ids (hundreds of
/// thousands of entries in a walk) then hash one word instead of 20 bytes
/// and a length. Under the tables' keyed hasher, crowding a table takes
/// ids sharing 64-bit prefixes, which cannot be made in practice.
impl std::hash::Hash for Sha1 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// Why a string is not a git object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Sha1HexError {
    /// The string is not exactly 40 characters long.
    #[error("a git object id is 40 hex characters, got {0}")]
    Length(usize),
    /// A character outside `0-9a-f` (uppercase is refused, as git writes lowercase).
    #[error("a git object id is lowercase hex; byte {byte:#04x} at offset {offset} is not")]
    Digit {
        /// Offset of the bad character.
        offset: usize,
        /// The bad byte.
        byte: u8,
    },
}

impl From<HexError> for Sha1HexError {
    fn from(e: HexError) -> Self {
        match e {
            HexError::Length(n) => Sha1HexError::Length(n),
            HexError::Digit { offset, byte } => Sha1HexError::Digit { offset, byte },
        }
    }
}

impl Sha1 {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SHA1_LEN] {
        &self.0
    }

    /// Lowercase hex, 40 characters.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// Append the 40 lowercase hex digits to `out`.
    pub fn write_hex(&self, out: &mut Vec<u8>) {
        crate::hex::encode_into(&self.0, out);
    }

    /// Parse 40 lowercase hex characters.
    pub fn from_hex(s: &str) -> Result<Sha1, Sha1HexError> {
        Self::from_hex_bytes(s.as_bytes())
    }

    /// Parse 40 lowercase hex bytes.
    pub fn from_hex_bytes(s: &[u8]) -> Result<Sha1, Sha1HexError> {
        let mut out = [0u8; SHA1_LEN];
        decode_lower_hex(s, &mut out)?;
        Ok(Sha1(out))
    }

    /// Parse 40 hex bytes in either case, as git's own object headers may
    /// spell them (the reference's tolerant parser folds case first).
    pub fn from_hex_any_case(s: &[u8]) -> Result<Sha1, Sha1HexError> {
        if s.len() != SHA1_HEX_LEN {
            return Err(Sha1HexError::Length(s.len()));
        }
        let mut lower = [0u8; SHA1_HEX_LEN];
        for (dst, src) in lower.iter_mut().zip(s) {
            *dst = src.to_ascii_lowercase();
        }
        Self::from_hex_bytes(&lower)
    }
}

impl fmt::Display for Sha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1({})", self.to_hex())
    }
}

impl From<[u8; SHA1_LEN]> for Sha1 {
    fn from(b: [u8; SHA1_LEN]) -> Self {
        Sha1(b)
    }
}

impl std::str::FromStr for Sha1 {
    type Err = Sha1HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sha1::from_hex(s)
    }
}

/// The four kinds of git object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// File content.
    Blob,
    /// A directory listing.
    Tree,
    /// A commit.
    Commit,
    /// An annotated (possibly signed) tag.
    Tag,
}

impl ObjectKind {
    /// The name git writes in the frame and in a tag's `type` header.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Tree => "tree",
            ObjectKind::Commit => "commit",
            ObjectKind::Tag => "tag",
        }
    }

    /// The kind named by `name` exactly (lowercase, as git writes it).
    pub fn from_name(name: &[u8]) -> Option<ObjectKind> {
        Some(match name {
            b"blob" => ObjectKind::Blob,
            b"tree" => ObjectKind::Tree,
            b"commit" => ObjectKind::Commit,
            b"tag" => ObjectKind::Tag,
            _ => return None,
        })
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The frame header `"<kind> <len>\0"` that precedes a body of `len` bytes.
pub fn frame_header(kind: ObjectKind, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.name().len() + 22);
    out.extend_from_slice(kind.name().as_bytes());
    out.push(b' ');
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(0);
    out
}

/// The framed object: [`frame_header`] followed by `body`. These are the
/// bytes git hashes, the bytes the importer retains, and the input of an
/// imported commit's `content_digest`.
pub fn frame(kind: ObjectKind, body: &[u8]) -> Vec<u8> {
    let mut out = frame_header(kind, body.len());
    out.reserve_exact(body.len());
    out.extend_from_slice(body);
    out
}

/// Why bytes are not a framed git object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No NUL byte at all.
    #[error("no NUL ends the header")]
    NoNul,
    /// The header (before the first NUL) has no space.
    #[error("the header has no space")]
    NoSpace,
    /// The word before the space is not `blob`, `tree`, `commit` or `tag`.
    #[error("the header names no git object type")]
    Kind,
    /// The length is not canonical decimal (no sign, no leading zero
    /// except `0` itself) or does not fit.
    #[error("the header length is not a decimal number")]
    Length,
    /// The length is not the body's.
    #[error("the header length differs from the body length")]
    Mismatch,
}

/// Split framed bytes into kind and body: the one parser of the
/// `"<kind> <len>\0"` frame, for every reader of retained or reassembled
/// objects.
pub fn parse_frame(framed: &[u8]) -> Result<(ObjectKind, &[u8]), FrameError> {
    let nul = framed
        .iter()
        .position(|&b| b == 0)
        .ok_or(FrameError::NoNul)?;
    let (header, body) = (&framed[..nul], &framed[nul + 1..]);
    let space = header
        .iter()
        .position(|&b| b == b' ')
        .ok_or(FrameError::NoSpace)?;
    let kind = ObjectKind::from_name(&header[..space]).ok_or(FrameError::Kind)?;
    let digits = &header[space + 1..];
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits == b"0" || digits[0] != b'0');
    let len: usize = canonical
        .then(|| std::str::from_utf8(digits).ok()?.parse().ok())
        .flatten()
        .ok_or(FrameError::Length)?;
    if body.len() != len {
        return Err(FrameError::Mismatch);
    }
    Ok((kind, body))
}

/// [`parse_frame`] without the reason: `None` when the header is not
/// exactly `"<kind> <len>\0"` with a length equal to the body's.
pub fn unframe(framed: &[u8]) -> Option<(ObjectKind, &[u8])> {
    parse_frame(framed).ok()
}

/// The framed input of [`object_id`] held a known SHA-1 collision-attack
/// pattern, so it has no trustworthy id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {kind} of {len} bytes carries a sha-1 collision-attack pattern; refusing it \
     (SPEC-GIT-IMPORT §5 requires collision-detecting sha-1)"
)]
pub struct CollisionDetected {
    /// Kind of the refused object.
    pub kind: ObjectKind,
    /// Length of its body.
    pub len: usize,
}

/// The git id of an object of `kind` with `body`: SHA-1 over the framed
/// bytes, computed with collision detection (git's sha1dc behaviour: a
/// detected attack is an error, never an alternative digest).
pub fn object_id(kind: ObjectKind, body: &[u8]) -> Result<Sha1, CollisionDetected> {
    let refused = CollisionDetected {
        kind,
        len: body.len(),
    };
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(&frame_header(kind, body.len()));
    hasher.update(body);
    let id = hasher.try_finalize().map_err(|_| refused)?;
    let bytes: [u8; SHA1_LEN] = id.as_slice().try_into().map_err(|_| refused)?;
    Ok(Sha1(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_uppercase_and_bad_length() {
        let s = Sha1([0xab; 20]);
        let hex = s.to_hex();
        assert_eq!(hex, "ab".repeat(20));
        assert_eq!(Sha1::from_hex(&hex).unwrap(), s);
        assert_eq!(
            Sha1::from_hex(&"AB".repeat(20)),
            Err(Sha1HexError::Digit {
                offset: 0,
                byte: b'A'
            })
        );
        assert_eq!(Sha1::from_hex("abc"), Err(Sha1HexError::Length(3)));
        let mut buf = Vec::new();
        s.write_hex(&mut buf);
        assert_eq!(buf, hex.as_bytes());
    }

    #[test]
    fn any_case_hex_folds_case_but_keeps_the_length_and_digit_rules() {
        let s = Sha1([0xab; 20]);
        assert_eq!(Sha1::from_hex_any_case("AB".repeat(20).as_bytes()), Ok(s));
        assert_eq!(Sha1::from_hex_any_case("aB".repeat(20).as_bytes()), Ok(s));
        assert_eq!(
            Sha1::from_hex_any_case(b"abc"),
            Err(Sha1HexError::Length(3))
        );
        assert!(Sha1::from_hex_any_case("zz".repeat(20).as_bytes()).is_err());
    }

    #[test]
    fn well_known_ids() {
        // `git hash-object -t tree /dev/null` and `git hash-object /dev/null`.
        assert_eq!(
            object_id(ObjectKind::Tree, b"").unwrap().to_hex(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
        assert_eq!(
            object_id(ObjectKind::Blob, b"").unwrap().to_hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            object_id(ObjectKind::Blob, b"hello\n").unwrap().to_hex(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn parse_frame_names_what_is_wrong() {
        assert_eq!(
            parse_frame(b"blob 3\0a\0b"),
            Ok((ObjectKind::Blob, &b"a\0b"[..]))
        );
        assert_eq!(parse_frame(b"blob 0\0"), Ok((ObjectKind::Blob, &b""[..])));
        for (bad, why) in [
            (&b"blob 3"[..], FrameError::NoNul),
            (b"", FrameError::NoNul),
            (b"blob3\0abc", FrameError::NoSpace),
            (b"note 2\0hi", FrameError::Kind),
            (b"Blob 2\0hi", FrameError::Kind),
            (b"tag \0", FrameError::Length),
            (b"tag 02\0hi", FrameError::Length),
            (b"tag +2\0hi", FrameError::Length),
            (b"tag 2 \0hi", FrameError::Length),
            (b"tag 99999999999999999999999\0hi", FrameError::Length),
            (b"tag 3\0hi", FrameError::Mismatch),
            (b"tag 1\0hi", FrameError::Mismatch),
        ] {
            assert_eq!(
                parse_frame(bad),
                Err(why),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn frame_and_unframe() {
        assert_eq!(frame(ObjectKind::Commit, b"abc"), b"commit 3\0abc");
        assert_eq!(frame(ObjectKind::Tree, b""), b"tree 0\0");
        assert_eq!(unframe(b"tag 2\0hi"), Some((ObjectKind::Tag, &b"hi"[..])));
        for bad in [
            &b"tag 3\0hi"[..],
            b"tag 02\0hi",
            b"tag +2\0hi",
            b"tag 2hi",
            b"note 2\0hi",
            b"tag \0",
            b"",
        ] {
            assert_eq!(unframe(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        for kind in [
            ObjectKind::Blob,
            ObjectKind::Tree,
            ObjectKind::Commit,
            ObjectKind::Tag,
        ] {
            assert_eq!(ObjectKind::from_name(kind.name().as_bytes()), Some(kind));
        }
        assert_eq!(ObjectKind::from_name(b"Commit"), None);
    }
}
