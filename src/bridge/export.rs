//! The mkit → git translation rules of SPEC-GIT-BRIDGE §3–§8, as pure functions.
//!
//! Each function takes one mkit object plus the git ids of the objects it
//! points at and returns the git object ([`Exported`]: body and SHA-1) or a
//! typed [`ExportRefusal`]. The output is a pure function of the source
//! object and its children's git ids: no clock, locale, configuration or key
//! material is consulted (§1.4), so two exporters of one history write the
//! same git bytes. Every value that mkit has and git has not rides in an
//! `mkit-*` header, so [`crate::bridge::reconstruct`] can rebuild the exact
//! mkit bytes and the original signature verifies again.
//!
//! - blobs (§3): verbatim; a plain blob over 1 MiB is refused ([`export_blob`]);
//! - chunked blobs (§4): flattened into one git blob, refused unless the
//!   manifest is exactly what the pinned chunker makes ([`export_chunked`]);
//! - trees (§5): re-sorted into git order ([`export_tree`]);
//! - commits (§6) and tags (§7): synthesized person lines and the carrier
//!   headers in their pinned order ([`export_commit`], [`export_tag`]);
//! - remixes (§8): refused; deltas never occur;
//! - refs (§12.1): [`export_ref`].
//!
//! [`export_closure`] walks one ref's closure children first over any
//! [`MkitSource`]; a parallel driver can call the per-object functions
//! instead. The rules and their checks follow mkit-git-bridge 0.5.0, which
//! wins where it differs from the spec text (`spec/EXPORT.md`).

use std::collections::HashMap;

use crate::bridge::import::check_tag_name;
use crate::bridge::refusal::TagNameRule;
use crate::git::encode::{EncodeError, GitMode, GitObject, HeaderBody, TreeEntry, encode_tree};
use crate::git::sha1::{CollisionDetected, ObjectKind, Sha1};
use crate::mkit::chunk::CHUNK_THRESHOLD;
use crate::mkit::content::manifest_for;
use crate::mkit::id::Id;
use crate::mkit::object::{
    ChunkedBlob, Commit, EntryMode, Identity, IdentityKind, MAX_OBJECT_SIZE, Object, ObjectError,
    ObjectType, Tag, Tree,
};
use crate::mkit::refs::{self, HEADS_PREFIX, RefError, TAGS_PREFIX};
use crate::text::quoted;

/// The email of every synthesized person line (an RFC 2606 reserved name).
pub const BRIDGE_EMAIL: &[u8] = b"bridge@mkit.invalid";
/// The timezone of every synthesized person line.
pub const BRIDGE_TIMEZONE: &[u8] = b"+0000";
/// The value of the `mkit-schema` header: the mkit schema version mapped (§1.2).
pub const SCHEMA_VALUE: &str = "1";

/// `mkit-schema`: the schema version (commits and tags).
pub const MKIT_SCHEMA: &str = "mkit-schema";
/// `mkit-author`: a commit's author identity (§6.3 encoding).
pub const MKIT_AUTHOR: &str = "mkit-author";
/// `mkit-tagger`: a tag's tagger identity (§6.3 encoding).
pub const MKIT_TAGGER: &str = "mkit-tagger";
/// `mkit-signer`: the 32-byte signer key in lowercase hex.
pub const MKIT_SIGNER: &str = "mkit-signer";
/// `mkit-signature`: the 64-byte signature in lowercase hex (all zero when unsigned).
pub const MKIT_SIGNATURE: &str = "mkit-signature";
/// `mkit-tree`: a commit's mkit tree id.
pub const MKIT_TREE: &str = "mkit-tree";
/// `mkit-parent`: one per mkit parent, in order.
pub const MKIT_PARENT: &str = "mkit-parent";
/// `mkit-message-hash`: written only when the slot is not zero.
pub const MKIT_MESSAGE_HASH: &str = "mkit-message-hash";
/// `mkit-content-digest`: written only when the slot is not zero.
pub const MKIT_CONTENT_DIGEST: &str = "mkit-content-digest";
/// `mkit-target`: a tag's mkit target id.
pub const MKIT_TARGET: &str = "mkit-target";
/// `mkit-target-type`: a tag's mkit target type byte, two lowercase hex digits.
pub const MKIT_TARGET_TYPE: &str = "mkit-target-type";
/// Header names §8 reserves for a future remix mapping; never written.
pub const RESERVED_HEADERS: [&str; 2] = ["mkit-remix-source", "mkit-object-type"];

/// A translated object: the git object and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The git object (kind and body).
    pub object: GitObject,
    /// Its SHA-1, computed with collision detection.
    pub id: Sha1,
}

/// Which rule of §12.1 a ref name breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefNameRule {
    /// Outside the mkit ref grammar itself (SPEC-REFS §3); the reason given.
    Grammar(String),
    /// A segment starts with `.`.
    LeadingDot,
    /// A segment ends with `.` (mkit allows it, git does not).
    TrailingDot,
    /// A segment contains `..` (mkit allows it, git does not).
    DoubleDot,
}

impl std::fmt::Display for RefNameRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefNameRule::Grammar(reason) => f.write_str(reason),
            RefNameRule::LeadingDot => f.write_str("a segment starts with '.'"),
            RefNameRule::TrailingDot => f.write_str("a segment ends with '.', which git refuses"),
            RefNameRule::DoubleDot => f.write_str("a segment contains '..', which git refuses"),
        }
    }
}

/// An object or ref the v1 mapping will not translate. Each skips the refs
/// whose closure holds the object (§8 granularity); the others export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportRefusal {
    /// A plain blob over the 1 MiB chunking threshold.
    #[error(
        "blob {object} is {size} bytes, over the 1 MiB chunking threshold; a conformant mkit \
         writer stores such content chunked, so it would not round-trip (SPEC-GIT-BRIDGE §3); \
         re-add the file with a conformant mkit, or exclude this ref"
    )]
    PlainBlobTooLarge {
        /// The blob.
        object: Id,
        /// Its length.
        size: u64,
    },

    /// A manifest with fixed-size chunks.
    #[error(
        "chunked blob {object} uses fixed-size chunks of {chunk_size} bytes; only \
         content-defined manifests round-trip (SPEC-GIT-BRIDGE §4); re-add the file with a \
         conformant mkit, or exclude this ref"
    )]
    FixedSizeChunking {
        /// The manifest.
        object: Id,
        /// Its `chunk_size`.
        chunk_size: u32,
    },

    /// A manifest whose content a conformant writer stores as a plain blob.
    #[error(
        "chunked blob {object} holds {total_size} bytes, at or below the 1 MiB threshold where \
         a conformant writer stores a plain blob (SPEC-GIT-BRIDGE §4); re-add the file with a \
         conformant mkit, or exclude this ref"
    )]
    ChunkedAtOrBelowThreshold {
        /// The manifest.
        object: Id,
        /// Its `total_size`.
        total_size: u64,
    },

    /// A manifest whose chunks do not add up to its declared size.
    #[error(
        "chunked blob {object} declares {declared} bytes but its chunks hold {actual} \
         (SPEC-OBJECTS §7, SPEC-GIT-BRIDGE §4); the store is damaged: check it, or exclude \
         this ref"
    )]
    ChunkedSizeMismatch {
        /// The manifest.
        object: Id,
        /// Its `total_size`.
        declared: u64,
        /// What its chunks hold (as far as they were read).
        actual: u64,
    },

    /// A manifest other than the pinned chunker's over its own content.
    #[error(
        "chunked blob {object} does not list the chunks the pinned FastCDC makes of its \
         content, so re-chunking would not give it back (SPEC-GIT-BRIDGE §4); re-add the file \
         with a conformant mkit, or exclude this ref"
    )]
    ChunkBoundaries {
        /// The manifest.
        object: Id,
    },

    /// A manifest entry that is not a blob.
    #[error(
        "chunk {object} of chunked blob {manifest} is a {found}, not a blob (SPEC-OBJECTS §7); \
         the store is damaged: check it, or exclude this ref",
        found = found.name()
    )]
    ChunkNotBlob {
        /// The chunk.
        object: Id,
        /// The manifest listing it.
        manifest: Id,
        /// What it is.
        found: ObjectType,
    },

    /// A remix, or a tag of one.
    #[error(
        "remix {object} cannot be exported: bridge v1 does not translate remixes \
         (SPEC-GIT-BRIDGE §8); exclude this ref"
    )]
    Remix {
        /// The remix.
        object: Id,
    },

    /// A delta, which is pack-only and never stored.
    #[error(
        "delta {object} is pack-only and is never exported (SPEC-GIT-BRIDGE §1.1); the store \
         is damaged: check it, or exclude this ref"
    )]
    Delta {
        /// The delta.
        object: Id,
    },

    /// A commit or tag timestamp beyond `i64::MAX`.
    #[error(
        "{kind} {object} has timestamp {timestamp}, beyond the signed 64-bit range git tools \
         read (SPEC-GIT-BRIDGE §6.2); exclude this ref",
        kind = kind.name()
    )]
    TimestampOverflow {
        /// The commit or tag.
        object: Id,
        /// Which of the two.
        kind: ObjectType,
        /// The timestamp.
        timestamp: u64,
    },

    /// A tag object whose name is not a single git-legal ref segment.
    #[error(
        "tag {object} is named {}: {rule}, so a git tag header cannot carry it \
         (SPEC-GIT-BRIDGE §7.1); re-tag with a name of letters, digits, '.', '_' and '-', or \
         exclude this ref",
        quoted(name)
    )]
    TagName {
        /// The tag object.
        object: Id,
        /// Its name.
        name: Vec<u8>,
        /// The rule the name breaks.
        rule: TagNameRule,
    },

    /// A ref name git cannot hold.
    #[error(
        "ref {name:?} cannot be exported: {rule} (SPEC-GIT-BRIDGE §12.1); rename the branch \
         or tag"
    )]
    RefName {
        /// The full mkit ref name.
        name: String,
        /// The rule it breaks.
        rule: RefNameRule,
    },

    /// An object of another schema version.
    #[error(
        "object {object} has schema version {version:#04x}; bridge v1 maps schema 1 only \
         (SPEC-GIT-BRIDGE §1.2); exclude this ref"
    )]
    SchemaVersion {
        /// The object.
        object: Id,
        /// Its schema byte.
        version: u8,
    },

    /// An object the translation needs is not available: absent from the
    /// source, or a child not translated first (§1.1 order).
    #[error(
        "object {object} is needed to export this ref but is not available \
         (SPEC-GIT-BRIDGE §1.1); restore it, or exclude this ref"
    )]
    MissingObject {
        /// The missing object.
        object: Id,
    },

    /// A caller supplied a different number of child git ids than the object
    /// has children (a driver bug).
    #[error(
        "object {object} has {expected} children but {found} git ids were supplied for them \
         (SPEC-GIT-BRIDGE §1.1)"
    )]
    LinkCount {
        /// The object.
        object: Id,
        /// Its child count.
        expected: usize,
        /// The git ids supplied.
        found: usize,
    },

    /// An object that breaks SPEC-OBJECTS.
    #[error(
        "object {object} is not a valid mkit object: {error} (SPEC-OBJECTS); the store is \
         damaged: check it, or exclude this ref"
    )]
    Invalid {
        /// The object.
        object: Id,
        /// What is wrong with it.
        error: ObjectError,
    },

    /// The git body cannot be written (a guard; the mapping never produces one).
    #[error(
        "object {object} translates to a git body git cannot hold: {error} (SPEC-GIT-BRIDGE §2)"
    )]
    Unencodable {
        /// The object.
        object: Id,
        /// What the git encoder refused.
        error: EncodeError,
    },

    /// The git bytes carry a SHA-1 collision-attack pattern.
    #[error(
        "object {object} translates to git bytes that carry a sha-1 collision-attack pattern; \
         git refuses such objects (SPEC-GIT-BRIDGE §2, §12.2); exclude this ref"
    )]
    Collision {
        /// The object.
        object: Id,
        /// The detection report.
        error: CollisionDetected,
    },
}

impl ExportRefusal {
    /// The refusal as a stable token: mkit-git-bridge 0.5.0's `Refusal`
    /// variant name where it has the refusal (it reports an oversize plain
    /// blob, a below-threshold manifest and foreign boundaries all as
    /// `NonCanonicalChunking`), ours otherwise.
    pub fn name(&self) -> &'static str {
        match self {
            ExportRefusal::PlainBlobTooLarge { .. }
            | ExportRefusal::ChunkedAtOrBelowThreshold { .. }
            | ExportRefusal::ChunkBoundaries { .. } => "NonCanonicalChunking",
            ExportRefusal::FixedSizeChunking { .. } => "FixedSizeChunking",
            ExportRefusal::ChunkedSizeMismatch { .. } => "ChunkedSizeMismatch",
            ExportRefusal::ChunkNotBlob { .. } => "ChunkNotBlob",
            ExportRefusal::Remix { .. } => "Remix",
            ExportRefusal::Delta { .. } => "Delta",
            ExportRefusal::TimestampOverflow { .. } => "TimestampOverflow",
            ExportRefusal::TagName { .. } => "TagName",
            ExportRefusal::RefName { .. } => "RefName",
            ExportRefusal::SchemaVersion { .. } => "SchemaVersion",
            ExportRefusal::MissingObject { .. } => "MissingObject",
            ExportRefusal::LinkCount { .. } => "LinkCount",
            ExportRefusal::Invalid { .. } => "Invalid",
            ExportRefusal::Unencodable { .. } => "Unencodable",
            ExportRefusal::Collision { .. } => "Collision",
        }
    }

    /// The mkit object refused, when the refusal is about one.
    pub fn object(&self) -> Option<Id> {
        match self {
            ExportRefusal::RefName { .. } => None,
            ExportRefusal::PlainBlobTooLarge { object, .. }
            | ExportRefusal::FixedSizeChunking { object, .. }
            | ExportRefusal::ChunkedAtOrBelowThreshold { object, .. }
            | ExportRefusal::ChunkedSizeMismatch { object, .. }
            | ExportRefusal::ChunkBoundaries { object }
            | ExportRefusal::ChunkNotBlob { object, .. }
            | ExportRefusal::Remix { object }
            | ExportRefusal::Delta { object }
            | ExportRefusal::TimestampOverflow { object, .. }
            | ExportRefusal::TagName { object, .. }
            | ExportRefusal::SchemaVersion { object, .. }
            | ExportRefusal::MissingObject { object }
            | ExportRefusal::LinkCount { object, .. }
            | ExportRefusal::Invalid { object, .. }
            | ExportRefusal::Unencodable { object, .. }
            | ExportRefusal::Collision { object, .. } => Some(*object),
        }
    }

    /// The refusal for an object `object` whose bytes failed to decode with
    /// `error`: another schema version is [`ExportRefusal::SchemaVersion`]
    /// (§1.2), anything else [`ExportRefusal::Invalid`]. A driver maps its
    /// store's decode failures through this.
    pub fn from_decode_error(object: &Id, error: ObjectError) -> ExportRefusal {
        match error {
            ObjectError::UnsupportedObjectVersion(version) => ExportRefusal::SchemaVersion {
                object: *object,
                version,
            },
            error => ExportRefusal::Invalid {
                object: *object,
                error,
            },
        }
    }
}

fn invalid(object: &Id) -> impl FnOnce(ObjectError) -> ExportRefusal + '_ {
    move |error| ExportRefusal::Invalid {
        object: *object,
        error,
    }
}

fn unencodable(object: &Id) -> impl FnOnce(EncodeError) -> ExportRefusal + '_ {
    move |error| ExportRefusal::Unencodable {
        object: *object,
        error,
    }
}

/// Hash the translated object, refusing a collision-attack pattern.
fn finish(object: &Id, git: GitObject) -> Result<Exported, ExportRefusal> {
    let id = git.id().map_err(|error| ExportRefusal::Collision {
        object: *object,
        error,
    })?;
    Ok(Exported { object: git, id })
}

// ---------------------------------------------------------------------------
// Value encodings (§5, §6.2, §6.3, §7.1)
// ---------------------------------------------------------------------------

/// The git mode of an mkit tree-entry mode (§5).
pub fn git_mode(mode: EntryMode) -> GitMode {
    match mode {
        EntryMode::Blob => GitMode::File,
        EntryMode::Tree => GitMode::Tree,
        EntryMode::Symlink => GitMode::Symlink,
        EntryMode::Executable => GitMode::Executable,
    }
}

/// The git kind an mkit object of type `t` translates to (§1.1, §7.1): a
/// chunked blob becomes a blob; a remix or a delta has none.
pub fn git_kind(t: ObjectType) -> Option<ObjectKind> {
    match t {
        ObjectType::Blob | ObjectType::ChunkedBlob => Some(ObjectKind::Blob),
        ObjectType::Tree => Some(ObjectKind::Tree),
        ObjectType::Commit => Some(ObjectKind::Commit),
        ObjectType::Tag => Some(ObjectKind::Tag),
        ObjectType::Remix | ObjectType::Delta => None,
    }
}

/// Unpadded base64 in the standard alphabet (RFC 4648 §4), as §6.2 and §6.3
/// pin it (the `base64` crate's `STANDARD_NO_PAD` engine).
pub fn base64_unpadded(data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(data)
        .into_bytes()
}

/// Lowercase hex of `bytes`.
pub(crate) fn lower_hex(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    crate::hex::encode_into(bytes, &mut out);
    out
}

/// The `mkit-author` / `mkit-tagger` value (§6.3): the kind byte as two
/// lowercase hex digits, `:`, and the payload in unpadded base64.
pub fn identity_value(identity: &Identity) -> Vec<u8> {
    let mut out = lower_hex(&[identity.kind as u8]);
    out.push(b':');
    out.extend_from_slice(&base64_unpadded(&identity.payload));
    out
}

/// May this byte stand in the name slot of a git person line? Not `<`, `>`,
/// a control byte or DEL.
fn name_byte_ok(b: u8) -> bool {
    !(b == b'<' || b == b'>' || b < 0x20 || b == 0x7f)
}

fn printable_name(payload: &[u8]) -> bool {
    payload.iter().all(|&b| name_byte_ok(b)) && std::str::from_utf8(payload).is_ok()
}

/// The display name of an identity in a synthesized person line (§6.2):
/// `mkit:ed25519:<hex>` for a key; `did:key:<payload>` for a `did:key` whose
/// payload may stand there; an opaque payload verbatim when it is UTF-8
/// without `<`, `>`, control bytes or DEL; otherwise `mkit:opaque:` and the
/// payload in unpadded base64 (a `did:key` falls through to this too).
pub fn display_name(identity: &Identity) -> Vec<u8> {
    let p = &identity.payload;
    let mut out = Vec::with_capacity(16 + 2 * p.len());
    match identity.kind {
        IdentityKind::Ed25519 => {
            out.extend_from_slice(b"mkit:ed25519:");
            out.extend_from_slice(&lower_hex(p));
        }
        IdentityKind::DidKey if printable_name(p) => {
            out.extend_from_slice(b"did:key:");
            out.extend_from_slice(p);
        }
        IdentityKind::Opaque if printable_name(p) => out.extend_from_slice(p),
        IdentityKind::DidKey | IdentityKind::Opaque => {
            out.extend_from_slice(b"mkit:opaque:");
            out.extend_from_slice(&base64_unpadded(p));
        }
    }
    out
}

/// The synthesized person line value (§6.2):
/// `<display name> <bridge@mkit.invalid> <timestamp> +0000`. The caller has
/// refused timestamps over `i64::MAX`.
pub fn person_line(identity: &Identity, timestamp: u64) -> Vec<u8> {
    let mut out = display_name(identity);
    out.extend_from_slice(b" <");
    out.extend_from_slice(BRIDGE_EMAIL);
    out.extend_from_slice(b"> ");
    out.extend_from_slice(timestamp.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(BRIDGE_TIMEZONE);
    out
}

fn check_timestamp(object: &Id, kind: ObjectType, timestamp: u64) -> Result<(), ExportRefusal> {
    if timestamp > i64::MAX as u64 {
        return Err(ExportRefusal::TimestampOverflow {
            object: *object,
            kind,
            timestamp,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Blobs (§3, §4)
// ---------------------------------------------------------------------------

/// A plain blob (§3): the git blob holds `data` verbatim. Refuses data over
/// the 1 MiB threshold, which a conformant writer would have chunked.
pub fn export_blob(object: &Id, data: Vec<u8>) -> Result<Exported, ExportRefusal> {
    if data.len() > CHUNK_THRESHOLD {
        return Err(ExportRefusal::PlainBlobTooLarge {
            object: *object,
            size: data.len() as u64,
        });
    }
    finish(object, GitObject::blob(data))
}

/// The manifest checks that need no chunk (§4 items 1 and 2), in 0.5.0's
/// order: `chunk_size` must be 0, and `total_size` over 1 MiB.
pub fn check_manifest(object: &Id, manifest: &ChunkedBlob) -> Result<(), ExportRefusal> {
    manifest.validate().map_err(invalid(object))?;
    if manifest.chunk_size != 0 {
        return Err(ExportRefusal::FixedSizeChunking {
            object: *object,
            chunk_size: manifest.chunk_size,
        });
    }
    if manifest.total_size <= CHUNK_THRESHOLD as u64 {
        return Err(ExportRefusal::ChunkedAtOrBelowThreshold {
            object: *object,
            total_size: manifest.total_size,
        });
    }
    Ok(())
}

/// A chunked blob whose chunks the caller has concatenated into `body`
/// (§4): [`check_manifest`], then `body` must be `total_size` bytes and the
/// pinned chunker over `body` must give back exactly this manifest (its
/// boundaries and therefore its chunk ids). The git blob is `body`.
pub fn export_flattened(
    object: &Id,
    manifest: &ChunkedBlob,
    body: Vec<u8>,
) -> Result<Exported, ExportRefusal> {
    check_manifest(object, manifest)?;
    if body.len() as u64 != manifest.total_size {
        return Err(ExportRefusal::ChunkedSizeMismatch {
            object: *object,
            declared: manifest.total_size,
            actual: body.len() as u64,
        });
    }
    if manifest_for(&body) != *manifest {
        return Err(ExportRefusal::ChunkBoundaries { object: *object });
    }
    finish(object, GitObject::blob(body))
}

/// A chunked blob (§4), reading each chunk's data with `read_chunk` in
/// manifest order (`None`: the chunk is not available). The manifest is
/// checked before any chunk is read, and reading stops as soon as the chunks
/// hold more than `total_size`. See [`export_flattened`].
pub fn export_chunked(
    object: &Id,
    manifest: &ChunkedBlob,
    mut read_chunk: impl FnMut(&Id) -> Option<Vec<u8>>,
) -> Result<Exported, ExportRefusal> {
    check_manifest(object, manifest)?;
    let mut body = Vec::new();
    for chunk in &manifest.chunks {
        let data = read_chunk(chunk).ok_or(ExportRefusal::MissingObject { object: *chunk })?;
        append_chunk(object, manifest, &mut body, &data)?;
    }
    export_flattened(object, manifest, body)
}

fn append_chunk(
    object: &Id,
    manifest: &ChunkedBlob,
    body: &mut Vec<u8>,
    data: &[u8],
) -> Result<(), ExportRefusal> {
    let actual = body.len() as u64 + data.len() as u64;
    if actual > manifest.total_size {
        return Err(ExportRefusal::ChunkedSizeMismatch {
            object: *object,
            declared: manifest.total_size,
            actual,
        });
    }
    if body.is_empty() {
        // The declared size is not trusted for the allocation: reserve at
        // most 1 GiB up front and let a larger (real) content grow.
        let hint = manifest.total_size.min(MAX_OBJECT_SIZE as u64);
        body.reserve_exact(usize::try_from(hint).unwrap_or(0));
    }
    body.extend_from_slice(data);
    Ok(())
}

// ---------------------------------------------------------------------------
// Trees (§5)
// ---------------------------------------------------------------------------

/// A tree (§5), looking each child's git id up with `lookup`.
pub fn export_tree(
    object: &Id,
    tree: &Tree,
    lookup: impl Fn(&Id) -> Option<Sha1>,
) -> Result<Exported, ExportRefusal> {
    let children = tree
        .entries
        .iter()
        .map(|e| lookup(&e.id).ok_or(ExportRefusal::MissingObject { object: e.id }))
        .collect::<Result<Vec<_>, _>>()?;
    export_tree_with(object, tree, &children)
}

/// A tree (§5) whose children's git ids are `children`, one per entry in the
/// tree's (mkit) order. Entries are re-sorted into git order; names are
/// copied verbatim and modes map by [`git_mode`].
pub fn export_tree_with(
    object: &Id,
    tree: &Tree,
    children: &[Sha1],
) -> Result<Exported, ExportRefusal> {
    tree.validate().map_err(invalid(object))?;
    if children.len() != tree.entries.len() {
        return Err(ExportRefusal::LinkCount {
            object: *object,
            expected: tree.entries.len(),
            found: children.len(),
        });
    }
    let entries = tree
        .entries
        .iter()
        .zip(children)
        .map(|(e, id)| TreeEntry {
            mode: git_mode(e.mode),
            name: &e.name,
            id: *id,
        })
        .collect();
    let git = encode_tree(entries).map_err(unencodable(object))?;
    finish(object, git)
}

// ---------------------------------------------------------------------------
// Commits (§6)
// ---------------------------------------------------------------------------

/// A commit (§6), looking its tree's and parents' git ids up with `lookup`.
pub fn export_commit(
    object: &Id,
    commit: &Commit,
    lookup: impl Fn(&Id) -> Option<Sha1>,
) -> Result<Exported, ExportRefusal> {
    check_timestamp(object, ObjectType::Commit, commit.timestamp)?;
    let resolve = |id: &Id| lookup(id).ok_or(ExportRefusal::MissingObject { object: *id });
    let tree = resolve(&commit.tree)?;
    let parents = commit
        .parents
        .iter()
        .map(resolve)
        .collect::<Result<Vec<_>, _>>()?;
    export_commit_with(object, commit, &tree, &parents)
}

/// A commit (§6.1) whose tree is git `tree` and whose parents are git
/// `parents`, one per mkit parent in order.
///
/// Layout: `tree`, `parent`…, `author`, `committer` (the same synthesized
/// line, §6.2), then `mkit-schema 1`, `mkit-author`, `mkit-signer`,
/// `mkit-signature`, `mkit-tree`, `mkit-parent`…, `mkit-message-hash` and
/// `mkit-content-digest` (each only when not zero), a blank line and the
/// message verbatim. Refuses a timestamp over `i64::MAX`.
pub fn export_commit_with(
    object: &Id,
    commit: &Commit,
    tree: &Sha1,
    parents: &[Sha1],
) -> Result<Exported, ExportRefusal> {
    check_timestamp(object, ObjectType::Commit, commit.timestamp)?;
    commit.validate().map_err(invalid(object))?;
    if parents.len() != commit.parents.len() {
        return Err(ExportRefusal::LinkCount {
            object: *object,
            expected: commit.parents.len(),
            found: parents.len(),
        });
    }
    let person = person_line(&commit.author, commit.timestamp);
    let build = || -> Result<GitObject, EncodeError> {
        let mut b = HeaderBody::commit(tree, parents, &person, &person)?;
        b.header(MKIT_SCHEMA.as_bytes(), SCHEMA_VALUE.as_bytes())?
            .header(MKIT_AUTHOR.as_bytes(), &identity_value(&commit.author))?
            .header(MKIT_SIGNER.as_bytes(), &lower_hex(&commit.signer))?
            .header(MKIT_SIGNATURE.as_bytes(), &lower_hex(&commit.signature))?
            .header(MKIT_TREE.as_bytes(), &lower_hex(commit.tree.as_bytes()))?;
        for p in &commit.parents {
            b.header(MKIT_PARENT.as_bytes(), &lower_hex(p.as_bytes()))?;
        }
        if !commit.message_hash.is_zero() {
            b.header(
                MKIT_MESSAGE_HASH.as_bytes(),
                &lower_hex(commit.message_hash.as_bytes()),
            )?;
        }
        if !commit.content_digest.is_zero() {
            b.header(
                MKIT_CONTENT_DIGEST.as_bytes(),
                &lower_hex(commit.content_digest.as_bytes()),
            )?;
        }
        Ok(b.finish(&commit.message))
    };
    let git = build().map_err(unencodable(object))?;
    finish(object, git)
}

// ---------------------------------------------------------------------------
// Tags (§7)
// ---------------------------------------------------------------------------

/// The checks of §7 that need no target id, in 0.5.0's order: timestamp,
/// name (§7.1), target type (a remix target refuses with §8, naming the
/// remix).
fn check_tag(object: &Id, tag: &Tag) -> Result<ObjectKind, ExportRefusal> {
    check_timestamp(object, ObjectType::Tag, tag.timestamp)?;
    check_tag_name(&tag.name).map_err(|rule| ExportRefusal::TagName {
        object: *object,
        name: tag.name.clone(),
        rule,
    })?;
    match tag.target_type {
        ObjectType::Remix => Err(ExportRefusal::Remix { object: tag.target }),
        ObjectType::Delta => Err(ExportRefusal::Delta { object: tag.target }),
        t => git_kind(t).ok_or(ExportRefusal::Delta { object: tag.target }),
    }
}

/// An annotated or signed tag object (§7), looking its target's git id up
/// with `lookup`. A lightweight mkit tag is a ref, not an object: its git ref
/// simply names the translated target.
pub fn export_tag(
    object: &Id,
    tag: &Tag,
    lookup: impl Fn(&Id) -> Option<Sha1>,
) -> Result<Exported, ExportRefusal> {
    check_tag(object, tag)?;
    let target = lookup(&tag.target).ok_or(ExportRefusal::MissingObject { object: tag.target })?;
    export_tag_with(object, tag, &target)
}

/// A tag object (§7) whose target is git `target`.
///
/// Layout: `object`, `type` (the target's git kind: a chunked blob is a
/// `blob`), `tag` (the name verbatim), `tagger` (synthesized, §6.2), then
/// `mkit-schema 1`, `mkit-tagger`, `mkit-signer`, `mkit-signature`,
/// `mkit-target`, `mkit-target-type` (two hex digits), a blank line and the
/// message verbatim.
pub fn export_tag_with(object: &Id, tag: &Tag, target: &Sha1) -> Result<Exported, ExportRefusal> {
    let kind = check_tag(object, tag)?;
    tag.validate().map_err(invalid(object))?;
    let person = person_line(&tag.tagger, tag.timestamp);
    let build = || -> Result<GitObject, EncodeError> {
        let mut b = HeaderBody::tag(target, kind, &tag.name, Some(&person))?;
        b.header(MKIT_SCHEMA.as_bytes(), SCHEMA_VALUE.as_bytes())?
            .header(MKIT_TAGGER.as_bytes(), &identity_value(&tag.tagger))?
            .header(MKIT_SIGNER.as_bytes(), &lower_hex(&tag.signer))?
            .header(MKIT_SIGNATURE.as_bytes(), &lower_hex(&tag.signature))?
            .header(MKIT_TARGET.as_bytes(), &lower_hex(tag.target.as_bytes()))?
            .header(
                MKIT_TARGET_TYPE.as_bytes(),
                &lower_hex(&[tag.target_type as u8]),
            )?;
        Ok(b.finish(&tag.message))
    };
    let git = build().map_err(unencodable(object))?;
    finish(object, git)
}

// ---------------------------------------------------------------------------
// Any object, and closures
// ---------------------------------------------------------------------------

/// The objects that must be translated before `obj` (§1.1 edges): a tree's
/// children, a commit's tree and parents, a tag's target. A manifest's chunks
/// are read, not translated, so they are not dependencies. A remix or delta
/// refuses here, before anything below it is read.
pub fn dependencies(object: &Id, obj: &Object) -> Result<Vec<Id>, ExportRefusal> {
    Ok(match obj {
        Object::Blob(_) | Object::ChunkedBlob(_) => Vec::new(),
        Object::Tree(t) => t.entries.iter().map(|e| e.id).collect(),
        Object::Commit(c) => std::iter::once(c.tree)
            .chain(c.parents.iter().copied())
            .collect(),
        Object::Tag(t) => vec![t.target],
        Object::Remix(_) => return Err(ExportRefusal::Remix { object: *object }),
        Object::Delta(_) => return Err(ExportRefusal::Delta { object: *object }),
    })
}

/// Translate any object: `lookup` gives the git ids of already-translated
/// children, `read_chunk` the data of a manifest's chunks.
pub fn export_object(
    object: &Id,
    obj: Object,
    lookup: impl Fn(&Id) -> Option<Sha1>,
    read_chunk: impl FnMut(&Id) -> Option<Vec<u8>>,
) -> Result<Exported, ExportRefusal> {
    match obj {
        Object::Blob(b) => export_blob(object, b.data),
        Object::ChunkedBlob(m) => export_chunked(object, &m, read_chunk),
        Object::Tree(t) => export_tree(object, &t, lookup),
        Object::Commit(c) => export_commit(object, &c, lookup),
        Object::Tag(t) => export_tag(object, &t, lookup),
        Object::Remix(_) => Err(ExportRefusal::Remix { object: *object }),
        Object::Delta(_) => Err(ExportRefusal::Delta { object: *object }),
    }
}

/// Why a closure walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClosureError<E> {
    /// The mapping refuses an object of the closure: skip the ref.
    #[error(transparent)]
    Refused(#[from] ExportRefusal),
    /// The source or the sink failed.
    #[error("{0}")]
    Source(E),
}

/// Where a closure walk reads mkit objects from (the driver's store, or a
/// map in tests).
pub trait MkitSource {
    /// The source's own failure (I/O and the like).
    type Error;

    /// The object `id`, decoded. An absent object is
    /// `Refused(MissingObject)`; an undecodable one the refusal
    /// [`ExportRefusal::from_decode_error`] gives.
    fn read(&self, id: &Id) -> Result<Object, ClosureError<Self::Error>>;
}

impl<S: std::hash::BuildHasher> MkitSource for HashMap<Id, Object, S> {
    type Error = std::convert::Infallible;

    fn read(&self, id: &Id) -> Result<Object, ClosureError<Self::Error>> {
        self.get(id)
            .cloned()
            .ok_or(ClosureError::Refused(ExportRefusal::MissingObject {
                object: *id,
            }))
    }
}

/// What a closure walk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosureOutcome {
    /// The git id of the root.
    pub root: Sha1,
    /// How many objects were translated (those already in `known` are not).
    pub emitted: usize,
}

/// Translate the closure of `root`, children before parents, handing each
/// newly translated object to `sink` (which writes it; a failure stops the
/// walk). `known` maps already-translated mkit ids to git ids: such objects
/// and everything below them are skipped, and every new translation is
/// added. On a refusal the objects already emitted stay valid (translation
/// is deterministic), so `known` keeps them.
pub fn export_closure<S: MkitSource + ?Sized>(
    source: &S,
    root: &Id,
    known: &mut HashMap<Id, Sha1>,
    mut sink: impl FnMut(&Id, &Exported) -> Result<(), S::Error>,
) -> Result<ClosureOutcome, ClosureError<S::Error>> {
    let mut emitted = 0usize;
    // (id, children pushed?) — an explicit stack, so deep histories cannot
    // overflow the call stack.
    let mut stack: Vec<(Id, bool)> = vec![(*root, false)];
    let mut pending: HashMap<Id, Object> = HashMap::new();
    while let Some((id, expanded)) = stack.pop() {
        if known.contains_key(&id) {
            continue;
        }
        if !expanded {
            if pending.contains_key(&id) {
                continue;
            }
            let obj = source.read(&id)?;
            let deps = dependencies(&id, &obj)?;
            stack.push((id, true));
            for d in deps.into_iter().rev() {
                if !known.contains_key(&d) && !pending.contains_key(&d) {
                    stack.push((d, false));
                }
            }
            pending.insert(id, obj);
            continue;
        }
        let Some(obj) = pending.remove(&id) else {
            continue;
        };
        let exported = match obj {
            Object::ChunkedBlob(m) => {
                check_manifest(&id, &m)?;
                let mut body = Vec::new();
                for chunk in &m.chunks {
                    match source.read(chunk)? {
                        Object::Blob(b) => append_chunk(&id, &m, &mut body, &b.data)?,
                        other => {
                            return Err(ExportRefusal::ChunkNotBlob {
                                object: *chunk,
                                manifest: id,
                                found: other.object_type(),
                            }
                            .into());
                        }
                    }
                }
                export_flattened(&id, &m, body)?
            }
            obj => export_object(&id, obj, |c| known.get(c).copied(), |_| None)?,
        };
        sink(&id, &exported).map_err(ClosureError::Source)?;
        known.insert(id, exported.id);
        emitted += 1;
    }
    let root = known
        .get(root)
        .copied()
        .ok_or(ExportRefusal::MissingObject { object: *root })?;
    Ok(ClosureOutcome { root, emitted })
}

// ---------------------------------------------------------------------------
// Refs (§12.1)
// ---------------------------------------------------------------------------

/// What an exported ref is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/heads/<branch>`.
    Branch,
    /// `refs/tags/<tag>` (an annotated tag object or, lightweight, the target).
    Tag,
}

/// The git-side rules of §12.1 on top of the mkit grammar, per `/`-separated
/// segment: no leading `.`, no trailing `.`, no `..` anywhere.
pub fn check_git_ref_name(name: &str) -> Result<(), RefNameRule> {
    for segment in name.split('/') {
        if segment.starts_with('.') {
            return Err(RefNameRule::LeadingDot);
        }
        if segment.ends_with('.') {
            return Err(RefNameRule::TrailingDot);
        }
        if segment.contains("..") {
            return Err(RefNameRule::DoubleDot);
        }
    }
    Ok(())
}

/// Decide whether the mkit ref `name` (a full name) is exported, and as
/// what. Only `refs/heads/*` and `refs/tags/*` are: anything else (`HEAD`,
/// remote-tracking refs, internal state) is `Ok(None)`. An exported ref keeps
/// its name verbatim on the git side; a name outside the mkit grammar or one
/// git cannot hold (§12.1) is refused. No escaping is attempted.
pub fn export_ref(name: &str) -> Result<Option<RefKind>, ExportRefusal> {
    let kind = if name.starts_with(HEADS_PREFIX) {
        RefKind::Branch
    } else if name.starts_with(TAGS_PREFIX) {
        RefKind::Tag
    } else {
        return Ok(None);
    };
    let refuse = |rule| ExportRefusal::RefName {
        name: name.to_owned(),
        rule,
    };
    refs::check_ref_grammar(name).map_err(|e| {
        refuse(RefNameRule::Grammar(match e {
            RefError::InvalidName { reason, .. } => reason,
            other => other.to_string(),
        }))
    })?;
    check_git_ref_name(name).map_err(refuse)?;
    Ok(Some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::encode::EMPTY_TREE;
    use crate::mkit::object::{Blob, TreeEntry as MkitEntry};

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    fn commit() -> Commit {
        Commit {
            tree: id(1),
            parents: vec![id(2)],
            author: Identity::opaque(b"Alice".to_vec()),
            message: b"m\n".to_vec(),
            timestamp: 1_700_000_000,
            signer: [3; 32],
            message_hash: Id::ZERO,
            content_digest: Id::ZERO,
            signature: [4; 64],
        }
    }

    fn tag() -> Tag {
        Tag {
            target: id(5),
            target_type: ObjectType::Commit,
            name: b"v1".to_vec(),
            tagger: Identity::opaque(b"T".to_vec()),
            message: b"t".to_vec(),
            timestamp: 7,
            signer: [0; 32],
            signature: [0; 64],
        }
    }

    #[test]
    fn base64_matches_rfc4648_without_padding() {
        for (input, want) in [
            (&b""[..], &b""[..]),
            (b"f", b"Zg"),
            (b"fo", b"Zm8"),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg"),
            (b"fooba", b"Zm9vYmE"),
            (b"foobar", b"Zm9vYmFy"),
            (&[0xfb, 0xff], b"+/8"),
        ] {
            assert_eq!(base64_unpadded(input), want);
        }
    }

    #[test]
    fn display_names_follow_the_identity_rules() {
        let ed = Identity::ed25519([0xaa; 32]);
        assert_eq!(
            display_name(&ed),
            format!("mkit:ed25519:{}", "aa".repeat(32)).into_bytes()
        );
        assert_eq!(
            display_name(&Identity::opaque(b"Alice Example".to_vec())),
            b"Alice Example"
        );
        assert_eq!(
            display_name(&Identity::opaque("naïve".as_bytes().to_vec())),
            "naïve".as_bytes()
        );
        for fallback in [
            &b"A <a@b>"[..],
            b"tab\there",
            b"del\x7f",
            b"\xff\xfe",
            b"x>",
        ] {
            let name = display_name(&Identity::opaque(fallback.to_vec()));
            let mut want = b"mkit:opaque:".to_vec();
            want.extend_from_slice(&base64_unpadded(fallback));
            assert_eq!(name, want, "{fallback:?}");
        }
        let did = Identity {
            kind: IdentityKind::DidKey,
            payload: b"z6MkExample".to_vec(),
        };
        assert_eq!(display_name(&did), b"did:key:z6MkExample");
        let odd_did = Identity {
            kind: IdentityKind::DidKey,
            payload: b"z<6".to_vec(),
        };
        assert_eq!(display_name(&odd_did), b"mkit:opaque:ejw2");
        assert_eq!(identity_value(&odd_did), b"02:ejw2");
        assert_eq!(
            person_line(&Identity::opaque(b"X".to_vec()), 0),
            b"X <bridge@mkit.invalid> 0 +0000"
        );
    }

    #[test]
    fn commit_layout_is_pinned() {
        let mut c = commit();
        c.message_hash = id(0xaa);
        let out = export_commit_with(&id(9), &c, &EMPTY_TREE, &[Sha1([0x11; 20])]).unwrap();
        let want = format!(
            "tree {EMPTY_TREE}\nparent {p}\nauthor Alice <bridge@mkit.invalid> 1700000000 +0000\n\
             committer Alice <bridge@mkit.invalid> 1700000000 +0000\nmkit-schema 1\n\
             mkit-author 03:QWxpY2U\nmkit-signer {s}\nmkit-signature {g}\nmkit-tree {t}\n\
             mkit-parent {q}\nmkit-message-hash {h}\n\nm\n",
            p = "11".repeat(20),
            s = "03".repeat(32),
            g = "04".repeat(64),
            t = "01".repeat(32),
            q = "02".repeat(32),
            h = "aa".repeat(32),
        );
        assert_eq!(String::from_utf8(out.object.body.clone()).unwrap(), want);
        assert_eq!(out.id, out.object.id().unwrap());
    }

    #[test]
    fn commit_refusals() {
        let mut c = commit();
        c.timestamp = i64::MAX as u64;
        assert!(export_commit_with(&id(9), &c, &EMPTY_TREE, &[EMPTY_TREE]).is_ok());
        c.timestamp += 1;
        let err = export_commit_with(&id(9), &c, &EMPTY_TREE, &[EMPTY_TREE]).unwrap_err();
        assert_eq!(err.name(), "TimestampOverflow");
        assert!(err.to_string().contains("§6.2"), "{err}");
        let c = commit();
        assert!(matches!(
            export_commit_with(&id(9), &c, &EMPTY_TREE, &[]),
            Err(ExportRefusal::LinkCount {
                expected: 1,
                found: 0,
                ..
            })
        ));
        assert_eq!(
            export_commit(&id(9), &c, |i| (*i == id(1)).then_some(EMPTY_TREE)),
            Err(ExportRefusal::MissingObject { object: id(2) })
        );
    }

    #[test]
    fn tag_refusals_and_layout() {
        let out = export_tag_with(&id(8), &tag(), &EMPTY_TREE).unwrap();
        let body = String::from_utf8(out.object.body).unwrap();
        assert!(body.starts_with(&format!(
            "object {EMPTY_TREE}\ntype commit\ntag v1\ntagger T <bridge@mkit.invalid> 7 +0000\n\
             mkit-schema 1\nmkit-tagger 03:VA\nmkit-signer {z}\nmkit-signature {zz}\n\
             mkit-target {t}\nmkit-target-type 03\n\nt",
            z = "00".repeat(32),
            zz = "00".repeat(64),
            t = "05".repeat(32)
        )));
        for (name, rule) in [
            (&b"a."[..], TagNameRule::TrailingDot),
            (b"a..b", TagNameRule::DoubleDot),
            (b".a", TagNameRule::LeadingDot),
            (b"a b", TagNameRule::Charset),
            (b"a/b", TagNameRule::Charset),
            (b"HEAD", TagNameRule::Head),
            (b"x.lock", TagNameRule::LockSuffix),
        ] {
            let mut t = tag();
            t.name = name.to_vec();
            assert_eq!(
                export_tag_with(&id(8), &t, &EMPTY_TREE),
                Err(ExportRefusal::TagName {
                    object: id(8),
                    name: name.to_vec(),
                    rule
                })
            );
        }
        let mut t = tag();
        t.target_type = ObjectType::Remix;
        assert_eq!(
            export_tag(&id(8), &t, |_| None),
            Err(ExportRefusal::Remix { object: id(5) })
        );
        let mut t = tag();
        t.target_type = ObjectType::ChunkedBlob;
        let out = export_tag_with(&id(8), &t, &EMPTY_TREE).unwrap();
        let body = String::from_utf8(out.object.body).unwrap();
        assert!(body.contains("\ntype blob\n") && body.contains("\nmkit-target-type 05\n"));
    }

    #[test]
    fn blob_threshold_is_inclusive() {
        assert!(export_blob(&id(1), vec![0; CHUNK_THRESHOLD]).is_ok());
        assert_eq!(
            export_blob(&id(1), vec![0; CHUNK_THRESHOLD + 1]),
            Err(ExportRefusal::PlainBlobTooLarge {
                object: id(1),
                size: CHUNK_THRESHOLD as u64 + 1
            })
        );
        let out = export_blob(&id(1), b"hello\n".to_vec()).unwrap();
        assert_eq!(out.id.to_hex(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    fn big() -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..CHUNK_THRESHOLD + 300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn chunked_manifests_must_be_canonical() {
        let data = big();
        let m = manifest_for(&data);
        assert!(m.chunks.len() > 2);
        let out = export_flattened(&id(1), &m, data.clone()).unwrap();
        assert_eq!(out.object.body, data);

        let mut fixed = m.clone();
        fixed.chunk_size = 65_536;
        assert_eq!(
            check_manifest(&id(1), &fixed).unwrap_err().name(),
            "FixedSizeChunking"
        );
        let mut small = m.clone();
        small.total_size = CHUNK_THRESHOLD as u64;
        assert!(matches!(
            check_manifest(&id(1), &small),
            Err(ExportRefusal::ChunkedAtOrBelowThreshold { .. })
        ));
        // Same bytes, other boundaries: merge the first two chunks.
        let pieces: Vec<&[u8]> = crate::mkit::chunk::chunks(&data).collect();
        let mut merged = pieces[0].to_vec();
        merged.extend_from_slice(pieces[1]);
        let mut other = m.clone();
        other
            .chunks
            .splice(0..2, [crate::mkit::object::blob_id(&merged)]);
        assert_eq!(
            export_flattened(&id(1), &other, data.clone()),
            Err(ExportRefusal::ChunkBoundaries { object: id(1) })
        );
        assert!(matches!(
            export_flattened(&id(1), &m, data[1..].to_vec()),
            Err(ExportRefusal::ChunkedSizeMismatch { .. })
        ));
        // Through the chunk reader.
        let by_id: HashMap<Id, Vec<u8>> = pieces
            .iter()
            .map(|p| (crate::mkit::object::blob_id(p), p.to_vec()))
            .collect();
        let via = export_chunked(&id(1), &m, |c| by_id.get(c).cloned()).unwrap();
        assert_eq!(via, out);
        // A lying total size is not an allocation size.
        let mut huge = m.clone();
        huge.total_size = 1 << 60;
        assert!(matches!(
            export_chunked(&id(1), &huge, |c| by_id.get(c).cloned()),
            Err(ExportRefusal::ChunkedSizeMismatch { declared, .. }) if declared == 1 << 60
        ));
        assert_eq!(
            export_chunked(&id(1), &m, |_| None),
            Err(ExportRefusal::MissingObject {
                object: m.chunks[0]
            })
        );
    }

    #[test]
    fn tree_is_resorted_into_git_order() {
        let tree = Tree {
            entries: vec![
                MkitEntry {
                    name: b"foo".to_vec(),
                    mode: EntryMode::Tree,
                    id: id(1),
                },
                MkitEntry {
                    name: b"foo.txt".to_vec(),
                    mode: EntryMode::Blob,
                    id: id(2),
                },
                MkitEntry {
                    name: b"run".to_vec(),
                    mode: EntryMode::Executable,
                    id: id(2),
                },
                MkitEntry {
                    name: b"z".to_vec(),
                    mode: EntryMode::Symlink,
                    id: id(3),
                },
            ],
        };
        let git = |i: &Id| Some(Sha1([i.0[0]; 20]));
        let out = export_tree(&id(9), &tree, git).unwrap();
        let mut want = Vec::new();
        for (mode, name, fill) in [
            (&b"100644"[..], &b"foo.txt"[..], 2u8),
            (b"40000", b"foo", 1),
            (b"100755", b"run", 2),
            (b"120000", b"z", 3),
        ] {
            want.extend_from_slice(mode);
            want.push(b' ');
            want.extend_from_slice(name);
            want.push(0);
            want.extend_from_slice(&[fill; 20]);
        }
        assert_eq!(out.object.body, want);
        assert_eq!(
            export_tree(&id(9), &tree, |_| None),
            Err(ExportRefusal::MissingObject { object: id(1) })
        );
    }

    #[test]
    fn closure_walk_translates_children_first_and_refuses_remixes() {
        let mut src: HashMap<Id, Object> = HashMap::new();
        let blob = Object::Blob(Blob {
            data: b"x".to_vec(),
        });
        let blob_id = blob.id().unwrap();
        src.insert(blob_id, blob);
        let tree = Object::Tree(Tree {
            entries: vec![MkitEntry {
                name: b"f".to_vec(),
                mode: EntryMode::Blob,
                id: blob_id,
            }],
        });
        let tree_id = tree.id().unwrap();
        src.insert(tree_id, tree);
        let mut c = commit();
        c.tree = tree_id;
        c.parents.clear();
        let c = Object::Commit(c);
        let c_id = c.id().unwrap();
        src.insert(c_id, c);
        let mut known = HashMap::new();
        let mut order = Vec::new();
        let out = export_closure(&src, &c_id, &mut known, |i, _| {
            order.push(*i);
            Ok(())
        })
        .unwrap();
        assert_eq!(order, vec![blob_id, tree_id, c_id]);
        assert_eq!(out.emitted, 3);
        assert_eq!(known[&c_id], out.root);
        // Again: nothing new.
        let again = export_closure(&src, &c_id, &mut known, |_, _| Ok(())).unwrap();
        assert_eq!(
            again,
            ClosureOutcome {
                root: out.root,
                emitted: 0
            }
        );

        let remix = Object::Remix(crate::mkit::object::Remix {
            tree: tree_id,
            parents: vec![],
            sources: vec![],
            author: Identity::opaque(b"r".to_vec()),
            message: vec![],
            timestamp: 1,
            signer: [0; 32],
            signature: [0; 64],
        });
        let remix_id = remix.id().unwrap();
        src.insert(remix_id, remix);
        let mut t = tag();
        t.target = remix_id;
        t.target_type = ObjectType::Remix;
        let t = Object::Tag(t);
        let t_id = t.id().unwrap();
        src.insert(t_id, t);
        match export_closure(&src, &t_id, &mut known, |_, _| Ok(())) {
            Err(ClosureError::Refused(ExportRefusal::Remix { object })) => {
                assert_eq!(object, remix_id)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ref_names() {
        assert_eq!(export_ref("refs/heads/main"), Ok(Some(RefKind::Branch)));
        assert_eq!(export_ref("refs/tags/v1.0.0"), Ok(Some(RefKind::Tag)));
        assert_eq!(
            export_ref("refs/heads/a/b-c_d.e"),
            Ok(Some(RefKind::Branch))
        );
        for skipped in ["HEAD", "refs/remotes/origin/main", "refs/mkit/x"] {
            assert_eq!(export_ref(skipped), Ok(None));
        }
        for (bad, rule) in [
            ("refs/heads/trailing.", RefNameRule::TrailingDot),
            ("refs/heads/a..b", RefNameRule::DoubleDot),
            ("refs/tags/x./y", RefNameRule::TrailingDot),
        ] {
            assert_eq!(
                export_ref(bad),
                Err(ExportRefusal::RefName {
                    name: bad.to_owned(),
                    rule
                })
            );
        }
        assert!(matches!(
            export_ref("refs/heads/.hidden"),
            Err(ExportRefusal::RefName {
                rule: RefNameRule::Grammar(_),
                ..
            })
        ));
        assert_eq!(
            check_git_ref_name("refs/heads/.x"),
            Err(RefNameRule::LeadingDot)
        );
    }

    #[test]
    fn schema_versions_map_to_their_refusal() {
        assert_eq!(
            ExportRefusal::from_decode_error(&id(1), ObjectError::UnsupportedObjectVersion(2)),
            ExportRefusal::SchemaVersion {
                object: id(1),
                version: 2
            }
        );
        assert_eq!(
            ExportRefusal::from_decode_error(&id(1), ObjectError::InvalidMagic).name(),
            "Invalid"
        );
    }
}
