//! The seven mkit object types and the rules every value must obey.
//!
//! These are owned values; [`crate::mkit::encode`] turns them into the exact
//! bytes of SPEC-OBJECTS and [`crate::mkit::decode`] turns bytes back into
//! them, refusing anything a conforming reader must refuse. The validation
//! rules (tree-entry names, identities, tag names, count limits) live here so
//! that the encoder and the decoder apply the very same predicates.

use crate::mkit::id::{self, Id};

/// The 4-byte magic that follows the type byte in every object.
pub const MAGIC: [u8; 4] = *b"MKT1";
/// The only schema version mkit v1 knows.
pub const SCHEMA_VERSION: u8 = 0x01;
/// Length of the `type | magic | version` prologue.
pub const PROLOGUE_LEN: usize = 6;
/// Most entries a tree may hold.
pub const MAX_TREE_ENTRIES: u32 = 1_000_000;
/// Most parents a commit or remix may name.
pub const MAX_PARENTS: u32 = 1_000;
/// Most sources a remix may name.
pub const MAX_REMIX_SOURCES: u32 = 10_000;
/// Most chunks a chunked blob may list.
pub const MAX_CHUNKS: u32 = 1_000_000;
/// Longest identity payload.
pub const MAX_IDENTITY_LEN: usize = 4096;
/// Longest tag name.
pub const MAX_TAG_NAME_LEN: usize = 4096;
/// Longest tree-entry name.
pub const MAX_ENTRY_NAME_LEN: usize = 255;
/// Largest object the store accepts (1 GiB).
pub const MAX_OBJECT_SIZE: usize = 1024 * 1024 * 1024;

/// The type byte at offset 0 of every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ObjectType {
    /// Raw file content.
    Blob = 0x01,
    /// A directory listing.
    Tree = 0x02,
    /// A signed commit.
    Commit = 0x03,
    /// A signed commit that also names upstream sources.
    Remix = 0x04,
    /// A manifest of chunk blobs.
    ChunkedBlob = 0x05,
    /// A pack-only delta; never stored.
    Delta = 0x06,
    /// An annotated or signed tag.
    Tag = 0x07,
}

impl ObjectType {
    /// Decode a type byte.
    pub fn from_byte(b: u8) -> Result<Self, ObjectError> {
        Ok(match b {
            0x01 => Self::Blob,
            0x02 => Self::Tree,
            0x03 => Self::Commit,
            0x04 => Self::Remix,
            0x05 => Self::ChunkedBlob,
            0x06 => Self::Delta,
            0x07 => Self::Tag,
            other => return Err(ObjectError::InvalidObjectType(other)),
        })
    }

    /// The lower-case name mkit prints for this type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blob => "blob",
            Self::Tree => "tree",
            Self::Commit => "commit",
            Self::Remix => "remix",
            Self::ChunkedBlob => "chunked_blob",
            Self::Delta => "delta",
            Self::Tag => "tag",
        }
    }

    /// True for the types named by a Merkle root rather than a flat hash.
    pub fn is_merkle(self) -> bool {
        matches!(self, Self::Tree | Self::ChunkedBlob)
    }
}

/// The mode byte of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryMode {
    /// A regular file.
    Blob = 0x01,
    /// A subdirectory.
    Tree = 0x02,
    /// A symbolic link whose blob holds the target path.
    Symlink = 0x03,
    /// A regular file with the executable bit.
    Executable = 0x04,
}

impl EntryMode {
    /// Decode a mode byte (the whitelist is exactly 0x01..=0x04).
    pub fn from_byte(b: u8) -> Result<Self, ObjectError> {
        Ok(match b {
            0x01 => Self::Blob,
            0x02 => Self::Tree,
            0x03 => Self::Symlink,
            0x04 => Self::Executable,
            other => return Err(ObjectError::InvalidEntryMode(other)),
        })
    }
}

/// The kind byte of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IdentityKind {
    /// A raw 32-byte Ed25519 public key.
    Ed25519 = 0x01,
    /// A `did:key` multibase string without its `did:key:` prefix.
    DidKey = 0x02,
    /// Producer-defined bytes (the git bridge stores `Name <email>` here).
    Opaque = 0x03,
}

impl IdentityKind {
    /// Decode a kind byte.
    pub fn from_byte(b: u8) -> Result<Self, ObjectError> {
        Ok(match b {
            0x01 => Self::Ed25519,
            0x02 => Self::DidKey,
            0x03 => Self::Opaque,
            other => return Err(ObjectError::UnknownIdentityKind(other)),
        })
    }
}

/// An attribution claim: a kind and its payload, compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What the payload is.
    pub kind: IdentityKind,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl Identity {
    /// An Ed25519 identity for a public key.
    pub fn ed25519(public_key: [u8; 32]) -> Self {
        Identity {
            kind: IdentityKind::Ed25519,
            payload: public_key.to_vec(),
        }
    }

    /// An opaque identity.
    pub fn opaque(payload: impl Into<Vec<u8>>) -> Self {
        Identity {
            kind: IdentityKind::Opaque,
            payload: payload.into(),
        }
    }

    /// Check the payload against its kind (SPEC-OBJECTS §9, plus the 0.5.0
    /// rule that a `did:key` payload is printable ASCII).
    pub fn validate(&self) -> Result<(), ObjectError> {
        let len = self.payload.len();
        if len == 0 {
            return Err(ObjectError::InvalidIdentity(IdentityRule::Empty));
        }
        if len > MAX_IDENTITY_LEN {
            return Err(ObjectError::IdentityTooLarge(len));
        }
        match self.kind {
            IdentityKind::Ed25519 if len != 32 => Err(ObjectError::InvalidIdentity(
                IdentityRule::Ed25519Length(len),
            )),
            IdentityKind::DidKey if !self.payload.iter().all(u8::is_ascii_graphic) => Err(
                ObjectError::InvalidIdentity(IdentityRule::DidKeyNotPrintable),
            ),
            _ => Ok(()),
        }
    }
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreeEntry {
    /// The entry name (one path component).
    pub name: Vec<u8>,
    /// What the entry is.
    pub mode: EntryMode,
    /// The id of the child object.
    pub id: Id,
}

/// A blob: bytes without interpretation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Blob {
    /// The content.
    pub data: Vec<u8>,
}

/// A tree: entries in strictly ascending byte order of name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Tree {
    /// The entries, canonical order, no duplicate names.
    pub entries: Vec<TreeEntry>,
}

/// A commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Commit {
    /// The root tree.
    pub tree: Id,
    /// Parent commits, in order.
    pub parents: Vec<Id>,
    /// Who wrote it (an attribution claim, independent of `signer`).
    pub author: Identity,
    /// The message bytes (UTF-8 by convention, not enforced).
    pub message: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// The Ed25519 public key that signed it.
    pub signer: [u8; 32],
    /// Annotation slot outside the signing bytes; zero when unused.
    pub message_hash: Id,
    /// Annotation slot outside the signing bytes; zero when unused.
    pub content_digest: Id,
    /// Ed25519 signature over the commit signing hash; all zero when unsigned.
    pub signature: [u8; 64],
}

/// One upstream source of a remix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemixSource {
    /// Caller-chosen 32 bytes naming the upstream.
    pub upstream_id: Id,
    /// The upstream commit.
    pub commit: Id,
}

/// A remix: a commit that also records the upstream commits it draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Remix {
    /// The root tree.
    pub tree: Id,
    /// Parent commits, in order.
    pub parents: Vec<Id>,
    /// Sources, strictly ascending by `(upstream_id, commit)`.
    pub sources: Vec<RemixSource>,
    /// Who wrote it.
    pub author: Identity,
    /// The message bytes.
    pub message: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// The signing public key.
    pub signer: [u8; 32],
    /// Ed25519 signature over the remix signing hash.
    pub signature: [u8; 64],
}

/// A chunked blob: the manifest of a large file split into chunk blobs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkedBlob {
    /// Sum of the chunk lengths.
    pub total_size: u64,
    /// 0 for content-defined (FastCDC) chunking, else the fixed chunk size.
    pub chunk_size: u32,
    /// Chunk blob ids in order.
    pub chunks: Vec<Id>,
}

/// A delta: pack-only, decoded for completeness, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delta {
    /// The base object.
    pub base: Id,
    /// Size of the reconstructed object.
    pub result_size: u32,
    /// The delta instruction stream.
    pub instructions: Vec<u8>,
}

/// An annotated or signed tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The tagged object.
    pub target: Id,
    /// The tagged object's type (never delta).
    pub target_type: ObjectType,
    /// The short tag name (not `refs/tags/...`).
    pub name: Vec<u8>,
    /// Who tagged it.
    pub tagger: Identity,
    /// The message bytes, possibly empty.
    pub message: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// The signing public key.
    pub signer: [u8; 32],
    /// Ed25519 signature over the tag signing hash; all zero when annotated-only.
    pub signature: [u8; 64],
}

/// Any mkit object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Object {
    /// See [`Blob`].
    Blob(Blob),
    /// See [`Tree`].
    Tree(Tree),
    /// See [`Commit`].
    Commit(Commit),
    /// See [`Remix`].
    Remix(Remix),
    /// See [`ChunkedBlob`].
    ChunkedBlob(ChunkedBlob),
    /// See [`Delta`].
    Delta(Delta),
    /// See [`Tag`].
    Tag(Tag),
}

impl Object {
    /// The type byte of this object.
    pub fn object_type(&self) -> ObjectType {
        match self {
            Object::Blob(_) => ObjectType::Blob,
            Object::Tree(_) => ObjectType::Tree,
            Object::Commit(_) => ObjectType::Commit,
            Object::Remix(_) => ObjectType::Remix,
            Object::ChunkedBlob(_) => ObjectType::ChunkedBlob,
            Object::Delta(_) => ObjectType::Delta,
            Object::Tag(_) => ObjectType::Tag,
        }
    }

    /// The object's id: a Merkle root for trees and chunked blobs, the flat
    /// BLAKE3 of the encoding for everything else.
    pub fn id(&self) -> Result<Id, ObjectError> {
        match self {
            Object::Tree(t) => {
                t.validate()?;
                Ok(t.merkle_id())
            }
            Object::ChunkedBlob(c) => {
                c.validate()?;
                Ok(c.merkle_id())
            }
            Object::Blob(b) => Ok(blob_id(&b.data)),
            other => Ok(id::flat_id(&other.encode()?)),
        }
    }
}

impl Tree {
    /// The Merkle id of the entries as they stand (call [`Tree::validate`] first
    /// when the entries did not come from the decoder).
    pub fn merkle_id(&self) -> Id {
        id::tree_id(
            self.entries
                .iter()
                .map(|e| (e.name.as_slice(), e.mode as u8, &e.id)),
        )
    }

    /// Check every entry name, the canonical order and the entry count.
    pub fn validate(&self) -> Result<(), ObjectError> {
        if self.entries.len() > MAX_TREE_ENTRIES as usize {
            return Err(ObjectError::TooManyEntries(self.entries.len()));
        }
        let mut prev: Option<&[u8]> = None;
        for e in &self.entries {
            validate_entry_name(&e.name)?;
            if let Some(p) = prev
                && p >= e.name.as_slice()
            {
                return Err(ObjectError::InvalidEntryOrder {
                    previous: p.to_vec(),
                    next: e.name.clone(),
                });
            }
            prev = Some(&e.name);
        }
        Ok(())
    }

    /// Sort entries into canonical byte order (the caller still validates).
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

impl ChunkedBlob {
    /// The Merkle id (metadata leaf then chunk leaves).
    pub fn merkle_id(&self) -> Id {
        id::chunked_blob_id(self.total_size, self.chunk_size, &self.chunks)
    }

    /// Check the chunk count.
    pub fn validate(&self) -> Result<(), ObjectError> {
        if self.chunks.len() > MAX_CHUNKS as usize {
            return Err(ObjectError::TooManyChunks(self.chunks.len()));
        }
        Ok(())
    }
}

impl Remix {
    /// Check the source order and counts.
    pub fn validate(&self) -> Result<(), ObjectError> {
        if self.parents.len() > MAX_PARENTS as usize {
            return Err(ObjectError::TooManyParents(self.parents.len()));
        }
        if self.sources.len() > MAX_REMIX_SOURCES as usize {
            return Err(ObjectError::TooManySources(self.sources.len()));
        }
        if self.sources.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ObjectError::InvalidSourceOrder);
        }
        self.author.validate()
    }
}

impl Tag {
    /// Check the name floor, the target type and the tagger.
    pub fn validate(&self) -> Result<(), ObjectError> {
        validate_tag_name(&self.name)?;
        if self.target_type == ObjectType::Delta {
            return Err(ObjectError::TagTargetTypeInvalid(self.target_type as u8));
        }
        self.tagger.validate()
    }
}

impl Commit {
    /// Check counts and the author identity.
    pub fn validate(&self) -> Result<(), ObjectError> {
        if self.parents.len() > MAX_PARENTS as usize {
            return Err(ObjectError::TooManyParents(self.parents.len()));
        }
        self.author.validate()
    }
}

/// The flat id of a blob holding `data`, hashed without building the encoding.
pub fn blob_id(data: &[u8]) -> Id {
    let mut h = blake3::Hasher::new();
    h.update(&blob_header(data.len()));
    h.update(data);
    Id(*h.finalize().as_bytes())
}

/// The 10 bytes that precede a blob's data: prologue and little-endian length.
///
/// Lengths past `u32::MAX` cannot be encoded; callers keep blobs under
/// [`MAX_OBJECT_SIZE`], which is far below that.
pub fn blob_header(len: usize) -> [u8; PROLOGUE_LEN + 4] {
    let mut out = [0u8; PROLOGUE_LEN + 4];
    out[0] = ObjectType::Blob as u8;
    out[1..5].copy_from_slice(&MAGIC);
    out[5] = SCHEMA_VERSION;
    out[6..10].copy_from_slice(&(len as u32).to_le_bytes());
    out
}

/// Which tree-entry name rule a name breaks (SPEC-OBJECTS §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Empty name.
    Empty,
    /// Longer than 255 bytes.
    TooLong,
    /// Holds NUL, `/` or `\`.
    ForbiddenByte,
    /// Exactly `.` or `..`.
    DotOrDotDot,
    /// Ends in `.` or space.
    TrailingDotOrSpace,
    /// `.git` or `.mkit` in any ASCII case.
    Reserved,
    /// A Windows device stem (CON, PRN, AUX, NUL, COM1-9, LPT1-9).
    WindowsDevice,
}

impl std::fmt::Display for NameRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameRule::Empty => "it is empty",
            NameRule::TooLong => "it is longer than 255 bytes",
            NameRule::ForbiddenByte => "it holds NUL, '/' or '\\'",
            NameRule::DotOrDotDot => "it is '.' or '..'",
            NameRule::TrailingDotOrSpace => "it ends in '.' or a space",
            NameRule::Reserved => "it is '.git' or '.mkit' (any case)",
            NameRule::WindowsDevice => "its stem is a Windows device name",
        })
    }
}

/// Check one tree-entry name against every rule of SPEC-OBJECTS §4.1.
pub fn validate_entry_name(name: &[u8]) -> Result<(), ObjectError> {
    entry_name_rule(name).map_or(Ok(()), |rule| {
        Err(ObjectError::InvalidEntryName {
            name: name.to_vec(),
            rule,
        })
    })
}

/// The first rule `name` breaks, if any.
pub fn entry_name_rule(name: &[u8]) -> Option<NameRule> {
    if name.is_empty() {
        return Some(NameRule::Empty);
    }
    if name.len() > MAX_ENTRY_NAME_LEN {
        return Some(NameRule::TooLong);
    }
    if name == b"." || name == b".." {
        return Some(NameRule::DotOrDotDot);
    }
    if name.iter().any(|&b| matches!(b, 0 | b'/' | b'\\')) {
        return Some(NameRule::ForbiddenByte);
    }
    if matches!(name.last(), Some(b'.' | b' ')) {
        return Some(NameRule::TrailingDotOrSpace);
    }
    if name.eq_ignore_ascii_case(b".git") || name.eq_ignore_ascii_case(b".mkit") {
        return Some(NameRule::Reserved);
    }
    let stem = name.split(|&b| b == b'.').next().unwrap_or(name);
    if is_windows_device(stem) {
        return Some(NameRule::WindowsDevice);
    }
    None
}

fn is_windows_device(stem: &[u8]) -> bool {
    match stem {
        [_, _, _] => [b"CON", b"PRN", b"AUX", b"NUL"]
            .iter()
            .any(|d| stem.eq_ignore_ascii_case(*d)),
        [a, b, c, digit] if (b'1'..=b'9').contains(digit) => {
            let head = [*a, *b, *c];
            head.eq_ignore_ascii_case(b"COM") || head.eq_ignore_ascii_case(b"LPT")
        }
        _ => false,
    }
}

/// Check a tag name against the object-layer floor: 1..=4096 bytes, no NUL,
/// `/` or `\` (the full ref grammar is enforced when the ref is written).
pub fn validate_tag_name(name: &[u8]) -> Result<(), ObjectError> {
    if name.is_empty() || name.len() > MAX_TAG_NAME_LEN {
        return Err(ObjectError::TagNameInvalid {
            name: name.to_vec(),
        });
    }
    if name.iter().any(|&b| matches!(b, 0 | b'/' | b'\\')) {
        return Err(ObjectError::TagNameInvalid {
            name: name.to_vec(),
        });
    }
    Ok(())
}

/// Why an identity is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRule {
    /// Zero-length payload.
    Empty,
    /// An Ed25519 identity whose payload is not 32 bytes.
    Ed25519Length(usize),
    /// A `did:key` payload with a byte outside printable ASCII.
    DidKeyNotPrintable,
}

impl std::fmt::Display for IdentityRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityRule::Empty => f.write_str("the payload is empty"),
            IdentityRule::Ed25519Length(n) => {
                write!(f, "an ed25519 payload is 32 bytes, this one is {n}")
            }
            IdentityRule::DidKeyNotPrintable => {
                f.write_str("a did:key payload must be printable ascii")
            }
        }
    }
}

/// Every way an object can be malformed, on encode or decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// Fewer bytes than the 6-byte prologue.
    #[error("object is {0} bytes, shorter than the 6-byte prologue")]
    TooShort(usize),
    /// Type byte outside 0x01..=0x07.
    #[error("object type byte {0:#04x} is not one of 0x01..=0x07")]
    InvalidObjectType(u8),
    /// Bytes 1..5 are not `MKT1`.
    #[error("object magic is not \"MKT1\"")]
    InvalidMagic,
    /// Schema byte other than 0x01.
    #[error("object schema version {0:#04x} is not supported (only 0x01)")]
    UnsupportedObjectVersion(u8),
    /// The input ended inside a field.
    #[error("object ends inside field `{field}`")]
    UnexpectedEof {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes left after the declared layout.
    #[error("{0} trailing bytes after a complete object")]
    TrailingData(usize),
    /// A tree with more than 1,000,000 entries.
    #[error("tree has {0} entries, more than 1000000")]
    TooManyEntries(usize),
    /// A tree-entry name that breaks a naming rule.
    #[error(
        "tree entry name {:?} is invalid: {rule}",
        String::from_utf8_lossy(name)
    )]
    InvalidEntryName {
        /// The offending name.
        name: Vec<u8>,
        /// The rule it breaks.
        rule: NameRule,
    },
    /// A mode byte outside the whitelist.
    #[error("tree entry mode byte {0:#04x} is not one of 0x01..=0x04")]
    InvalidEntryMode(u8),
    /// Entries out of byte order, or a duplicate name.
    #[error(
        "tree entries are not in strict byte order: {:?} then {:?}",
        String::from_utf8_lossy(previous),
        String::from_utf8_lossy(next)
    )]
    InvalidEntryOrder {
        /// The earlier name.
        previous: Vec<u8>,
        /// The name that should have sorted after it.
        next: Vec<u8>,
    },
    /// More than 1,000 parents.
    #[error("{0} parents, more than 1000")]
    TooManyParents(usize),
    /// More than 10,000 remix sources.
    #[error("{0} remix sources, more than 10000")]
    TooManySources(usize),
    /// Remix sources not strictly ascending.
    #[error("remix sources are not strictly sorted by (upstream_id, commit)")]
    InvalidSourceOrder,
    /// More than 1,000,000 chunks.
    #[error("{0} chunks, more than 1000000")]
    TooManyChunks(usize),
    /// Identity kind byte outside 0x01..=0x03.
    #[error("identity kind byte {0:#04x} is not one of 0x01..=0x03")]
    UnknownIdentityKind(u8),
    /// An identity payload that breaks its kind's rule.
    #[error("invalid identity: {0}")]
    InvalidIdentity(IdentityRule),
    /// An identity payload over 4096 bytes.
    #[error("identity payload is {0} bytes, more than 4096")]
    IdentityTooLarge(usize),
    /// A tag name outside the floor.
    #[error(
        "tag name {:?} is invalid: 1 to 4096 bytes without NUL, '/' or '\\'",
        String::from_utf8_lossy(name)
    )]
    TagNameInvalid {
        /// The offending name.
        name: Vec<u8>,
    },
    /// A tag whose target type is delta (or unknown).
    #[error("tag target type {0:#04x} is not a storable object type")]
    TagTargetTypeInvalid(u8),
    /// A length that does not fit its u32 field.
    #[error("field `{field}` is {len} bytes, too large to encode")]
    FieldTooLarge {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_name_rules_each_refuse_with_their_reason() {
        let cases: &[(&[u8], Option<NameRule>)] = &[
            (b"README.md", None),
            (b"a.b.c", None),
            (b"COM0", None),
            (b"LPT0.txt", None),
            (b"con.d", Some(NameRule::WindowsDevice)),
            (b"", Some(NameRule::Empty)),
            (b".", Some(NameRule::DotOrDotDot)),
            (b"..", Some(NameRule::DotOrDotDot)),
            (b"a/b", Some(NameRule::ForbiddenByte)),
            (b"a\\b", Some(NameRule::ForbiddenByte)),
            (b"a\0b", Some(NameRule::ForbiddenByte)),
            (b"name.", Some(NameRule::TrailingDotOrSpace)),
            (b"name ", Some(NameRule::TrailingDotOrSpace)),
            (b".GiT", Some(NameRule::Reserved)),
            (b".MKIT", Some(NameRule::Reserved)),
            (b".gitignore", None),
            (b"aux.c", Some(NameRule::WindowsDevice)),
            (b"Nul", Some(NameRule::WindowsDevice)),
            (b"com9.tar.gz", Some(NameRule::WindowsDevice)),
            (b"lpt1", Some(NameRule::WindowsDevice)),
            (b"console", None),
            (b"\xff\xfe", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                entry_name_rule(name),
                *want,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
        assert_eq!(entry_name_rule(&[b'a'; 255]), None);
        assert_eq!(entry_name_rule(&[b'a'; 256]), Some(NameRule::TooLong));
    }

    #[test]
    fn identity_rules() {
        assert!(Identity::ed25519([1; 32]).validate().is_ok());
        let short = Identity {
            kind: IdentityKind::Ed25519,
            payload: vec![1; 31],
        };
        assert_eq!(
            short.validate(),
            Err(ObjectError::InvalidIdentity(IdentityRule::Ed25519Length(
                31
            )))
        );
        assert_eq!(
            Identity::opaque(Vec::new()).validate(),
            Err(ObjectError::InvalidIdentity(IdentityRule::Empty))
        );
        assert_eq!(
            Identity::opaque(vec![0; 4097]).validate(),
            Err(ObjectError::IdentityTooLarge(4097))
        );
        assert!(Identity::opaque(vec![0; 4096]).validate().is_ok());
        let did = |p: &[u8]| Identity {
            kind: IdentityKind::DidKey,
            payload: p.to_vec(),
        };
        assert!(did(b"z6Mk").validate().is_ok());
        assert_eq!(
            did(b"z6 Mk").validate(),
            Err(ObjectError::InvalidIdentity(
                IdentityRule::DidKeyNotPrintable
            ))
        );
    }

    #[test]
    fn tree_order_is_strict_bytewise() {
        let e = |n: &[u8]| TreeEntry {
            name: n.to_vec(),
            mode: EntryMode::Blob,
            id: Id::ZERO,
        };
        // Byte order puts "foo" before "foo.txt" before "foo/..."-style names.
        let ok = Tree {
            entries: vec![e(b"foo"), e(b"foo.txt"), e(b"foo0")],
        };
        assert!(ok.validate().is_ok());
        let dup = Tree {
            entries: vec![e(b"a"), e(b"a")],
        };
        assert!(matches!(
            dup.validate(),
            Err(ObjectError::InvalidEntryOrder { .. })
        ));
        let mut unsorted = Tree {
            entries: vec![e(b"b"), e(b"a")],
        };
        assert!(unsorted.validate().is_err());
        unsorted.sort();
        assert!(unsorted.validate().is_ok());
    }

    #[test]
    fn tag_name_floor() {
        assert!(validate_tag_name(b"v1.0").is_ok());
        for bad in [&b""[..], b"a/b", b"a\\b", b"a\0"] {
            assert!(validate_tag_name(bad).is_err());
        }
        assert!(validate_tag_name(&[b'v'; 4096]).is_ok());
        assert!(validate_tag_name(&[b'v'; 4097]).is_err());
    }

    #[test]
    fn blob_id_streams_the_same_bytes_as_the_encoding() {
        let data = vec![7u8; 300_000];
        let mut enc = blob_header(data.len()).to_vec();
        enc.extend_from_slice(&data);
        assert_eq!(blob_id(&data), id::flat_id(&enc));
    }
}
