//! The verification-only inverse of the export mapping (SPEC-GIT-BRIDGE §9).
//!
//! Given a git object the bridge emitted, rebuild the exact mkit object bytes
//! it came from, so a verifier can check the lossless claim (§1.1) and verify
//! the carried signature again (§10). This is not an import path: it accepts
//! only what [`crate::bridge::export`] can write and fails closed on anything
//! else, with a typed [`ReconstructError`].
//!
//! Two guards, both always applied:
//!
//! 1. A strict parse. Commit and tag headers must appear exactly in the
//!    pinned order, each once (the repeated `parent` / `mkit-parent` lines
//!    aside); an unknown, missing, duplicated or misplaced header, a
//!    continuation line, a reserved `mkit-*` name (§8), another
//!    `mkit-schema`, upper-case hex, padded or non-canonical base64, a
//!    person line the bridge did not synthesize, or a tree mode outside the
//!    four (`160000`, `040000`...) is an error naming what was expected.
//! 2. Re-export. The rebuilt object is translated forward again with the
//!    same child git ids and must give back the input byte for byte; this
//!    catches everything the parse lets through (git order, display names,
//!    the committer line). The rebuilt bytes must also decode under
//!    SPEC-OBJECTS and encode back to themselves.
//!
//! Commits, tags and trees name their children by SHA-1; a caller-supplied
//! lookup maps each to the mkit id of its own reconstruction, and for commits
//! and tags that id must equal the carried `mkit-tree`, `mkit-parent` or
//! `mkit-target` value (the §9 validity clause). No I/O.

use crate::bridge::export::{
    self, BRIDGE_EMAIL, BRIDGE_TIMEZONE, ExportRefusal, MKIT_AUTHOR, MKIT_CONTENT_DIGEST,
    MKIT_MESSAGE_HASH, MKIT_PARENT, MKIT_SCHEMA, MKIT_SIGNATURE, MKIT_SIGNER, MKIT_TAGGER,
    MKIT_TARGET, MKIT_TARGET_TYPE, MKIT_TREE, RESERVED_HEADERS, SCHEMA_VALUE,
};
use crate::git::encode::{GitMode, TreeEntry};
use crate::git::sha1::{ObjectKind, SHA1_LEN, Sha1};
use crate::mkit::chunk::{self, CHUNK_THRESHOLD};
use crate::mkit::content::manifest_for;
use crate::mkit::id::{Id, decode_lower_hex};
use crate::mkit::object::{
    Blob, Commit, EntryMode, Identity, IdentityKind, Object, ObjectError, ObjectType, Tag, Tree,
    TreeEntry as MkitEntry, blob_header, blob_id,
};
use crate::text::quoted;

/// Why a git object is not a bridge-emitted one (or not this bridge's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconstructError {
    /// No blank line ends the header block.
    #[error(
        "no blank line ends the header block; not a bridge-emitted object (SPEC-GIT-BRIDGE §9)"
    )]
    NoMessageSeparator,
    /// A header line that starts with a space (a continuation).
    #[error(
        "header line {line} is a continuation line, which the bridge never writes (SPEC-GIT-BRIDGE §6.1, §9)"
    )]
    ContinuationLine {
        /// 1-based line number.
        line: usize,
    },
    /// A header line without a space between key and value.
    #[error("header line {line} has no value; not a bridge-emitted object (SPEC-GIT-BRIDGE §9)")]
    HeaderWithoutValue {
        /// 1-based line number.
        line: usize,
    },
    /// A header name §8 reserves for a future mapping.
    #[error(
        "header {} is reserved for a future bridge mapping (SPEC-GIT-BRIDGE §8); this verifier \
         implements v1 only",
        quoted(key)
    )]
    ReservedHeader {
        /// The reserved key.
        key: Vec<u8>,
    },
    /// An `mkit-schema` other than `1`.
    #[error(
        "mkit-schema is {}, but bridge mapping v1 covers schema 1 only (SPEC-GIT-BRIDGE §1.2, §9)",
        quoted(found)
    )]
    Schema {
        /// The value found.
        found: Vec<u8>,
    },
    /// A header other than the one the pinned order has at this place: a
    /// missing, misplaced, duplicated or unknown header.
    #[error(
        "expected header `{expected}` at line {line}, found {}; not a bridge-emitted object \
         (SPEC-GIT-BRIDGE §6.1, §7, §9)",
        found.as_deref().map_or_else(|| "the end of the headers".to_owned(), |k| format!("`{}`", k.escape_ascii()))
    )]
    UnexpectedHeader {
        /// The header the layout has here.
        expected: &'static str,
        /// The key found, or `None` at the end of the header block.
        found: Option<Vec<u8>>,
        /// 1-based line number.
        line: usize,
    },
    /// Headers left over after the last one the layout allows.
    #[error(
        "unexpected header `{}` at line {line} after the last bridge header (SPEC-GIT-BRIDGE §6.1, §7, §9)",
        key.escape_ascii()
    )]
    ExtraHeader {
        /// The key found.
        key: Vec<u8>,
        /// 1-based line number.
        line: usize,
    },
    /// A header value that is not in the form the bridge writes.
    #[error(
        "header `{header}` has the value {}, not {what} (SPEC-GIT-BRIDGE §6, §7, §9)",
        quoted(value)
    )]
    BadValue {
        /// The header.
        header: &'static str,
        /// What the value should be.
        what: &'static str,
        /// The value found.
        value: Vec<u8>,
    },
    /// A tree body that does not parse.
    #[error("tree body is malformed at byte {offset}: {detail} (SPEC-GIT-BRIDGE §5, §9)")]
    MalformedTree {
        /// Offset of the damaged entry.
        offset: usize,
        /// What is wrong.
        detail: &'static str,
    },
    /// A tree mode with no mkit equivalent.
    #[error(
        "tree entry {} has mode {}, which has no mkit equivalent (SPEC-GIT-BRIDGE §5, §9)",
        quoted(name),
        mode.escape_ascii()
    )]
    TreeMode {
        /// The entry name.
        name: Vec<u8>,
        /// The mode digits as written.
        mode: Vec<u8>,
    },
    /// A child the lookup does not know.
    #[error(
        "child {object} has no reconstructed mkit twin; reconstruct children first (SPEC-GIT-BRIDGE §9)"
    )]
    UnknownChild {
        /// The child's git id.
        object: Sha1,
    },
    /// A commit whose `parent` and `mkit-parent` counts differ.
    #[error(
        "the commit has {git} parent lines but {mkit} mkit-parent headers (SPEC-GIT-BRIDGE §6.1, §9)"
    )]
    ParentCount {
        /// `parent` lines.
        git: usize,
        /// `mkit-parent` headers.
        mkit: usize,
    },
    /// A carried BLAKE3 link that disagrees with the reconstructed child.
    #[error(
        "{header} carries {carried} but git object {object} reconstructs to {found} \
         (SPEC-GIT-BRIDGE §9); the mirror does not hold the signed original"
    )]
    Link {
        /// The header carrying the link.
        header: &'static str,
        /// The git child.
        object: Sha1,
        /// The carried mkit id.
        carried: Id,
        /// The id the child reconstructs to.
        found: Id,
    },
    /// Re-exporting the rebuilt object does not give the input back.
    #[error(
        "the {kind} is not byte-identical to what the bridge writes for the mkit object it \
         carries (SPEC-GIT-BRIDGE §9); not a bridge-emitted object"
    )]
    NotCanonical {
        /// The git kind.
        kind: ObjectKind,
    },
    /// The rebuilt object is not legal under SPEC-OBJECTS.
    #[error("the rebuilt mkit object is not valid: {0} (SPEC-GIT-BRIDGE §9, SPEC-OBJECTS)")]
    Object(#[from] ObjectError),
    /// The export mapping refuses the rebuilt object, so the bridge cannot
    /// have written it.
    #[error("the bridge would refuse the rebuilt object, so it did not write this one: {0}")]
    Refused(#[from] ExportRefusal),
}

/// A reconstructed mkit object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconstructed {
    /// Its id (a Merkle id for trees and chunked blobs), as a store names it.
    pub id: Id,
    /// Its exact SPEC-OBJECTS bytes.
    pub bytes: Vec<u8>,
    /// The decoded value.
    pub object: Object,
}

/// Encode, check that the bytes decode back to the same value (§9 validity),
/// and name the object.
fn finish(object: Object) -> Result<Reconstructed, ReconstructError> {
    let bytes = object.encode()?;
    let decoded = Object::decode(&bytes)?;
    if decoded != object {
        // Our encoder applies the decoder's rules, so this is a guard.
        return Err(ReconstructError::NotCanonical {
            kind: export::git_kind(object.object_type()).unwrap_or(ObjectKind::Blob),
        });
    }
    let id = object.id()?;
    Ok(Reconstructed { id, bytes, object })
}

// ---------------------------------------------------------------------------
// Blobs
// ---------------------------------------------------------------------------

/// A git blob (§9): at most 1 MiB is a plain blob; more is re-chunked with
/// the pinned FastCDC into a `chunk_size = 0` manifest, the writer's own
/// rule (§4). The chunk blobs are [`chunk_blobs`].
pub fn reconstruct_blob(body: &[u8]) -> Result<Reconstructed, ReconstructError> {
    if body.len() > CHUNK_THRESHOLD {
        finish(Object::ChunkedBlob(manifest_for(body)))
    } else {
        finish(Object::Blob(Blob {
            data: body.to_vec(),
        }))
    }
}

/// The chunk blobs (id and SPEC-OBJECTS bytes) a flattened blob over 1 MiB
/// re-chunks into, in manifest order; empty for a blob of at most 1 MiB.
pub fn chunk_blobs(body: &[u8]) -> Vec<(Id, Vec<u8>)> {
    if body.len() <= CHUNK_THRESHOLD {
        return Vec::new();
    }
    chunk::chunks(body)
        .map(|piece| {
            let mut bytes = Vec::with_capacity(10 + piece.len());
            bytes.extend_from_slice(&blob_header(piece.len()));
            bytes.extend_from_slice(piece);
            (blob_id(piece), bytes)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

fn mkit_mode(mode: GitMode) -> EntryMode {
    match mode {
        GitMode::File => EntryMode::Blob,
        GitMode::Executable => EntryMode::Executable,
        GitMode::Symlink => EntryMode::Symlink,
        GitMode::Tree => EntryMode::Tree,
    }
}

/// Parse a git tree body strictly: every mode one of the four the bridge
/// writes, every entry complete. Entries are returned in body order.
pub fn parse_tree_strict(body: &[u8]) -> Result<Vec<TreeEntry<'_>>, ReconstructError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let start = pos;
        let malformed = |detail| ReconstructError::MalformedTree {
            offset: start,
            detail,
        };
        let rest = &body[pos..];
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| malformed("no space after the mode"))?;
        let mode_digits = &rest[..sp];
        let after_mode = &rest[sp + 1..];
        let nul = after_mode
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| malformed("no NUL after the name"))?;
        let name = &after_mode[..nul];
        let id_bytes = after_mode
            .get(nul + 1..nul + 1 + SHA1_LEN)
            .ok_or_else(|| malformed("the entry's id is cut short"))?;
        let mode = GitMode::from_octal(mode_digits).ok_or_else(|| ReconstructError::TreeMode {
            name: name.to_vec(),
            mode: mode_digits.to_vec(),
        })?;
        let mut id = [0u8; SHA1_LEN];
        id.copy_from_slice(id_bytes);
        out.push(TreeEntry {
            mode,
            name,
            id: Sha1(id),
        });
        pos += sp + 1 + nul + 1 + SHA1_LEN;
    }
    Ok(out)
}

/// A git tree (§9): modes mapped back, entries re-sorted into mkit byte
/// order, each child's SHA-1 replaced by the mkit id `lookup` gives for it.
pub fn reconstruct_tree(
    body: &[u8],
    lookup: impl Fn(&Sha1) -> Option<Id>,
) -> Result<Reconstructed, ReconstructError> {
    let parsed = parse_tree_strict(body)?;
    let mut pairs = parsed
        .iter()
        .map(|e| {
            let child = lookup(&e.id).ok_or(ReconstructError::UnknownChild { object: e.id })?;
            Ok((
                MkitEntry {
                    name: e.name.to_vec(),
                    mode: mkit_mode(e.mode),
                    id: child,
                },
                e.id,
            ))
        })
        .collect::<Result<Vec<_>, ReconstructError>>()?;
    pairs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let (entries, children): (Vec<MkitEntry>, Vec<Sha1>) = pairs.into_iter().unzip();
    let tree = Tree { entries };
    tree.validate()?;
    let again = export::export_tree_with(&Id::ZERO, &tree, &children)?;
    if again.object.body != body {
        return Err(ReconstructError::NotCanonical {
            kind: ObjectKind::Tree,
        });
    }
    finish(Object::Tree(tree))
}

// ---------------------------------------------------------------------------
// Header blocks
// ---------------------------------------------------------------------------

/// A cursor over a commit or tag header block.
struct Headers<'a> {
    /// `(line number, key, value)` in order.
    lines: Vec<(usize, &'a [u8], &'a [u8])>,
    next: usize,
    message: &'a [u8],
}

impl<'a> Headers<'a> {
    fn parse(body: &'a [u8]) -> Result<Headers<'a>, ReconstructError> {
        let mut lines = Vec::new();
        let mut rest = body;
        let mut line_no = 0;
        loop {
            line_no += 1;
            let nl = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(ReconstructError::NoMessageSeparator)?;
            let line = &rest[..nl];
            rest = &rest[nl + 1..];
            if line.is_empty() {
                break;
            }
            if line[0] == b' ' {
                return Err(ReconstructError::ContinuationLine { line: line_no });
            }
            let sp = line
                .iter()
                .position(|&b| b == b' ')
                .ok_or(ReconstructError::HeaderWithoutValue { line: line_no })?;
            lines.push((line_no, &line[..sp], &line[sp + 1..]));
        }
        // Report a future format before any ordering complaint.
        for &(_, key, value) in &lines {
            if RESERVED_HEADERS.iter().any(|r| r.as_bytes() == key) {
                return Err(ReconstructError::ReservedHeader { key: key.to_vec() });
            }
            if key == MKIT_SCHEMA.as_bytes() && value != SCHEMA_VALUE.as_bytes() {
                return Err(ReconstructError::Schema {
                    found: value.to_vec(),
                });
            }
        }
        Ok(Headers {
            lines,
            next: 0,
            message: rest,
        })
    }

    fn line_no(&self) -> usize {
        self.lines
            .get(self.next)
            .map_or_else(|| self.lines.last().map_or(1, |l| l.0 + 1), |l| l.0)
    }

    fn peek_is(&self, key: &str) -> bool {
        self.lines
            .get(self.next)
            .is_some_and(|&(_, k, _)| k == key.as_bytes())
    }

    /// The value of the next header, which must be `key`.
    fn expect(&mut self, key: &'static str) -> Result<&'a [u8], ReconstructError> {
        match self.lines.get(self.next) {
            Some(&(_, k, v)) if k == key.as_bytes() => {
                self.next += 1;
                Ok(v)
            }
            other => Err(ReconstructError::UnexpectedHeader {
                expected: key,
                found: other.map(|&(_, k, _)| k.to_vec()),
                line: self.line_no(),
            }),
        }
    }

    /// The value of the next header if it is `key`.
    fn optional(&mut self, key: &'static str) -> Option<&'a [u8]> {
        if self.peek_is(key) {
            let v = self.lines[self.next].2;
            self.next += 1;
            Some(v)
        } else {
            None
        }
    }

    /// Every header left must be consumed; returns the message.
    fn end(self) -> Result<&'a [u8], ReconstructError> {
        match self.lines.get(self.next) {
            None => Ok(self.message),
            Some(&(line, key, _)) => Err(ReconstructError::ExtraHeader {
                key: key.to_vec(),
                line,
            }),
        }
    }
}

fn bad(header: &'static str, what: &'static str, value: &[u8]) -> ReconstructError {
    ReconstructError::BadValue {
        header,
        what,
        value: value.to_vec(),
    }
}

fn sha1_value(header: &'static str, v: &[u8]) -> Result<Sha1, ReconstructError> {
    Sha1::from_hex_bytes(v).map_err(|_| bad(header, "40 lowercase hex digits", v))
}

fn id_value(header: &'static str, v: &[u8]) -> Result<Id, ReconstructError> {
    Id::from_hex_bytes(v).map_err(|_| bad(header, "64 lowercase hex digits", v))
}

fn key_value(header: &'static str, v: &[u8]) -> Result<[u8; 32], ReconstructError> {
    let mut out = [0u8; 32];
    decode_lower_hex(v, &mut out).map_err(|_| bad(header, "64 lowercase hex digits", v))?;
    Ok(out)
}

fn signature_value(header: &'static str, v: &[u8]) -> Result<[u8; 64], ReconstructError> {
    let mut out = [0u8; 64];
    decode_lower_hex(v, &mut out).map_err(|_| bad(header, "128 lowercase hex digits", v))?;
    Ok(out)
}

/// Strict unpadded standard base64: no padding, no whitespace, no length
/// that no input gives, no set bits below the last byte (the `base64`
/// crate's `STANDARD_NO_PAD` engine, which refuses all four).
pub fn decode_base64_unpadded(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .ok()
}

fn identity_value(header: &'static str, v: &[u8]) -> Result<Identity, ReconstructError> {
    let what = "a two-hex-digit identity kind, ':', and unpadded base64";
    if v.len() < 3 || v[2] != b':' {
        return Err(bad(header, what, v));
    }
    let mut kind = [0u8; 1];
    decode_lower_hex(&v[..2], &mut kind).map_err(|_| bad(header, what, v))?;
    let kind = IdentityKind::from_byte(kind[0]).map_err(|_| bad(header, what, v))?;
    let payload = decode_base64_unpadded(&v[3..]).ok_or_else(|| bad(header, what, v))?;
    let identity = Identity { kind, payload };
    identity.validate()?;
    Ok(identity)
}

/// The timestamp of a synthesized person line
/// `<name> <bridge@mkit.invalid> <decimal> +0000` (the name is checked by
/// re-export).
fn person_timestamp(header: &'static str, v: &[u8]) -> Result<u64, ReconstructError> {
    let what = "a bridge-synthesized person line";
    let err = || bad(header, what, v);
    let rest = v
        .strip_suffix(BRIDGE_TIMEZONE)
        .and_then(|r| r.strip_suffix(b" "))
        .ok_or_else(err)?;
    let sp = rest.iter().rposition(|&b| b == b' ').ok_or_else(err)?;
    let digits = &rest[sp + 1..];
    let before = &rest[..sp];
    let mut email = b" <".to_vec();
    email.extend_from_slice(BRIDGE_EMAIL);
    email.push(b'>');
    if !before.ends_with(&email)
        || digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(err());
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(err)
}

// ---------------------------------------------------------------------------
// Commits
// ---------------------------------------------------------------------------

/// A commit rebuilt from its headers alone, with the git ids it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedCommit {
    /// The mkit commit the headers carry.
    pub commit: Commit,
    /// The git `tree` line.
    pub tree: Sha1,
    /// The git `parent` lines, in order.
    pub parents: Vec<Sha1>,
}

/// Rebuild the mkit commit a bridge-emitted commit body carries (§9),
/// without looking at any other object: the strict parse, then re-export
/// with the body's own `tree` and `parent` ids must give the body back.
pub fn carried_commit(body: &[u8]) -> Result<CarriedCommit, ReconstructError> {
    let mut h = Headers::parse(body)?;
    let tree = sha1_value("tree", h.expect("tree")?)?;
    let mut parents = Vec::new();
    while let Some(v) = h.optional("parent") {
        parents.push(sha1_value("parent", v)?);
    }
    let author = h.expect("author")?;
    let timestamp = person_timestamp("author", author)?;
    h.expect("committer")?;
    h.expect(MKIT_SCHEMA)?;
    let identity = identity_value(MKIT_AUTHOR, h.expect(MKIT_AUTHOR)?)?;
    let signer = key_value(MKIT_SIGNER, h.expect(MKIT_SIGNER)?)?;
    let signature = signature_value(MKIT_SIGNATURE, h.expect(MKIT_SIGNATURE)?)?;
    let mkit_tree = id_value(MKIT_TREE, h.expect(MKIT_TREE)?)?;
    let mut mkit_parents = Vec::new();
    while let Some(v) = h.optional(MKIT_PARENT) {
        mkit_parents.push(id_value(MKIT_PARENT, v)?);
    }
    let message_hash = match h.optional(MKIT_MESSAGE_HASH) {
        Some(v) => id_value(MKIT_MESSAGE_HASH, v)?,
        None => Id::ZERO,
    };
    let content_digest = match h.optional(MKIT_CONTENT_DIGEST) {
        Some(v) => id_value(MKIT_CONTENT_DIGEST, v)?,
        None => Id::ZERO,
    };
    let message = h.end()?;
    if parents.len() != mkit_parents.len() {
        return Err(ReconstructError::ParentCount {
            git: parents.len(),
            mkit: mkit_parents.len(),
        });
    }
    let commit = Commit {
        tree: mkit_tree,
        parents: mkit_parents,
        author: identity,
        message: message.to_vec(),
        timestamp,
        signer,
        message_hash,
        content_digest,
        signature,
    };
    let again = export::export_commit_with(&Id::ZERO, &commit, &tree, &parents)?;
    if again.object.body != body {
        return Err(ReconstructError::NotCanonical {
            kind: ObjectKind::Commit,
        });
    }
    Ok(CarriedCommit {
        commit,
        tree,
        parents,
    })
}

fn check_link(
    header: &'static str,
    object: &Sha1,
    carried: &Id,
    lookup: &impl Fn(&Sha1) -> Option<Id>,
) -> Result<(), ReconstructError> {
    let found = lookup(object).ok_or(ReconstructError::UnknownChild { object: *object })?;
    if found != *carried {
        return Err(ReconstructError::Link {
            header,
            object: *object,
            carried: *carried,
            found,
        });
    }
    Ok(())
}

impl CarriedCommit {
    /// The mkit commit's bytes and id, once `lookup` (git id → mkit id of
    /// its reconstruction) confirms the tree and every parent match the
    /// carried `mkit-tree` and `mkit-parent` values.
    pub fn resolve(
        self,
        lookup: impl Fn(&Sha1) -> Option<Id>,
    ) -> Result<Reconstructed, ReconstructError> {
        check_link(MKIT_TREE, &self.tree, &self.commit.tree, &lookup)?;
        for (git, mkit) in self.parents.iter().zip(&self.commit.parents) {
            check_link(MKIT_PARENT, git, mkit, &lookup)?;
        }
        self.into_unlinked()
    }

    /// The mkit commit's bytes and id without checking the links (what a
    /// shallow check can know).
    pub fn into_unlinked(self) -> Result<Reconstructed, ReconstructError> {
        finish(Object::Commit(self.commit))
    }
}

/// A git commit (§9): [`carried_commit`], then the links through `lookup`
/// ([`CarriedCommit::resolve`]).
pub fn reconstruct_commit(
    body: &[u8],
    lookup: impl Fn(&Sha1) -> Option<Id>,
) -> Result<Reconstructed, ReconstructError> {
    carried_commit(body)?.resolve(lookup)
}

// ---------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------

/// A tag rebuilt from its headers alone, with the git object it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedTag {
    /// The mkit tag the headers carry.
    pub tag: Tag,
    /// The git `object` line.
    pub target: Sha1,
    /// The git `type` line.
    pub target_kind: ObjectKind,
}

/// Rebuild the mkit tag a bridge-emitted tag body carries (§9), without
/// looking at any other object.
pub fn carried_tag(body: &[u8]) -> Result<CarriedTag, ReconstructError> {
    let mut h = Headers::parse(body)?;
    let target = sha1_value("object", h.expect("object")?)?;
    let kind_name = h.expect("type")?;
    let target_kind = ObjectKind::from_name(kind_name)
        .ok_or_else(|| bad("type", "blob, tree, commit or tag", kind_name))?;
    let name = h.expect("tag")?;
    let timestamp = person_timestamp("tagger", h.expect("tagger")?)?;
    h.expect(MKIT_SCHEMA)?;
    let tagger = identity_value(MKIT_TAGGER, h.expect(MKIT_TAGGER)?)?;
    let signer = key_value(MKIT_SIGNER, h.expect(MKIT_SIGNER)?)?;
    let signature = signature_value(MKIT_SIGNATURE, h.expect(MKIT_SIGNATURE)?)?;
    let mkit_target = id_value(MKIT_TARGET, h.expect(MKIT_TARGET)?)?;
    let type_digits = h.expect(MKIT_TARGET_TYPE)?;
    let what = "two lowercase hex digits naming blob, tree, commit, chunked blob or tag";
    let mut byte = [0u8; 1];
    decode_lower_hex(type_digits, &mut byte)
        .map_err(|_| bad(MKIT_TARGET_TYPE, what, type_digits))?;
    // Only the types the v1 mapping can write: a remix or delta target is
    // refused at export, and anything else is a future format.
    let target_type = match ObjectType::from_byte(byte[0]) {
        Ok(t) if export::git_kind(t).is_some() => t,
        _ => return Err(bad(MKIT_TARGET_TYPE, what, type_digits)),
    };
    let message = h.end()?;
    let tag = Tag {
        target: mkit_target,
        target_type,
        name: name.to_vec(),
        tagger,
        message: message.to_vec(),
        timestamp,
        signer,
        signature,
    };
    let again = export::export_tag_with(&Id::ZERO, &tag, &target)?;
    if again.object.body != body {
        return Err(ReconstructError::NotCanonical {
            kind: ObjectKind::Tag,
        });
    }
    Ok(CarriedTag {
        tag,
        target,
        target_kind,
    })
}

impl CarriedTag {
    /// The mkit tag's bytes and id, once `lookup` confirms the target
    /// matches the carried `mkit-target`.
    pub fn resolve(
        self,
        lookup: impl Fn(&Sha1) -> Option<Id>,
    ) -> Result<Reconstructed, ReconstructError> {
        check_link(MKIT_TARGET, &self.target, &self.tag.target, &lookup)?;
        self.into_unlinked()
    }

    /// The mkit tag's bytes and id without checking the link.
    pub fn into_unlinked(self) -> Result<Reconstructed, ReconstructError> {
        finish(Object::Tag(self.tag))
    }
}

/// A git tag (§9): [`carried_tag`], then the link through `lookup`.
pub fn reconstruct_tag(
    body: &[u8],
    lookup: impl Fn(&Sha1) -> Option<Id>,
) -> Result<Reconstructed, ReconstructError> {
    carried_tag(body)?.resolve(lookup)
}

/// Reconstruct any bridge-emitted git object of `kind` with `body`; `lookup`
/// maps each child's git id to the mkit id of its reconstruction (children
/// first is the caller's job).
pub fn reconstruct(
    kind: ObjectKind,
    body: &[u8],
    lookup: impl Fn(&Sha1) -> Option<Id>,
) -> Result<Reconstructed, ReconstructError> {
    match kind {
        ObjectKind::Blob => reconstruct_blob(body),
        ObjectKind::Tree => reconstruct_tree(body, lookup),
        ObjectKind::Commit => reconstruct_commit(body, lookup),
        ObjectKind::Tag => reconstruct_tag(body, lookup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::export::{
        base64_unpadded, export_commit_with, export_tag_with, export_tree_with,
    };
    use crate::git::encode::EMPTY_TREE;
    use crate::mkit::sign::{KeyPair, sign_commit};

    fn commit() -> Commit {
        let mut c = Commit {
            tree: Tree { entries: vec![] }.merkle_id(),
            parents: vec![Id([7; 32])],
            author: Identity::opaque(b"A <a@b>".to_vec()),
            message: b"hello\n\nbody\n".to_vec(),
            timestamp: 1_700_000_000,
            signer: [0; 32],
            message_hash: Id([0xaa; 32]),
            content_digest: Id::ZERO,
            signature: [0; 64],
        };
        sign_commit(&mut c, &KeyPair::from_seed(&[0x11; 32])).unwrap();
        c
    }

    const PARENT: Sha1 = Sha1([0x22; 20]);

    fn body() -> Vec<u8> {
        export_commit_with(&Id::ZERO, &commit(), &EMPTY_TREE, &[PARENT])
            .unwrap()
            .object
            .body
    }

    fn lookup(id: &Sha1) -> Option<Id> {
        if *id == EMPTY_TREE {
            Some(Tree { entries: vec![] }.merkle_id())
        } else if *id == PARENT {
            Some(Id([7; 32]))
        } else {
            None
        }
    }

    #[test]
    fn commit_round_trips() {
        let rec = reconstruct_commit(&body(), lookup).unwrap();
        let c = commit();
        assert_eq!(rec.object, Object::Commit(c.clone()));
        assert_eq!(rec.bytes, Object::Commit(c).encode().unwrap());
    }

    fn edit(from: &str, to: &str) -> Vec<u8> {
        let s = String::from_utf8(body()).unwrap();
        assert!(s.contains(from), "{from}");
        s.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn commit_shape_changes_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (edit("mkit-schema 1\n", "mkit-schema 2\n"), "Schema"),
            (edit("mkit-schema 1\n", ""), "UnexpectedHeader"),
            (
                edit("mkit-schema 1\n", "mkit-schema 1\nmkit-schema 1\n"),
                "UnexpectedHeader",
            ),
            (
                edit("mkit-schema 1\n", "mkit-schema 1\nmkit-extra x\n"),
                "UnexpectedHeader",
            ),
            (
                edit("mkit-schema 1\n", "mkit-schema 1\nmkit-object-type 03\n"),
                "ReservedHeader",
            ),
            (
                edit("\n\nhello", "\nmkit-remix-source x\n\nhello"),
                "ReservedHeader",
            ),
            (edit("\n\nhello", "\nx-unknown v\n\nhello"), "ExtraHeader"),
            (
                edit("\n\nhello", "\n gpg continuation\n\nhello"),
                "ContinuationLine",
            ),
            (edit("mkit-author 03:", "mkit-author 3:"), "BadValue"),
            (edit(" +0000\ncommitter", " +0100\ncommitter"), "BadValue"),
            (
                edit(
                    "1700000000 +0000\ncommitter",
                    "01700000000 +0000\ncommitter",
                ),
                "BadValue",
            ),
            (
                edit("committer mkit:opaque:", "committer mkit:opaquE:"),
                "NotCanonical",
            ),
            (edit("author mkit:opaque:", "author X"), "NotCanonical"),
        ];
        for (bytes, want) in cases {
            let err = reconstruct_commit(&bytes, lookup).unwrap_err();
            let got = format!("{err:?}");
            assert!(got.starts_with(want), "want {want}, got {got}");
        }
        // Upper-case hex anywhere.
        let s = String::from_utf8(body()).unwrap();
        let line = s.lines().find(|l| l.starts_with("mkit-tree ")).unwrap();
        let upper = s.replace(line, &format!("mkit-tree {}", line[10..].to_uppercase()));
        assert!(matches!(
            reconstruct_commit(upper.as_bytes(), lookup),
            Err(ReconstructError::BadValue {
                header: "mkit-tree",
                ..
            })
        ));
        // No separator at all.
        assert_eq!(
            carried_commit(b"tree x"),
            Err(ReconstructError::NoMessageSeparator)
        );
    }

    #[test]
    fn commit_links_must_match() {
        let wrong = |id: &Sha1| {
            if *id == PARENT {
                Some(Id([8; 32]))
            } else {
                lookup(id)
            }
        };
        assert!(matches!(
            reconstruct_commit(&body(), wrong),
            Err(ReconstructError::Link {
                header: "mkit-parent",
                ..
            })
        ));
        assert_eq!(
            reconstruct_commit(&body(), |_| None),
            Err(ReconstructError::UnknownChild { object: EMPTY_TREE })
        );
        // A parent line dropped: the counts disagree.
        let s = String::from_utf8(body()).unwrap();
        let dropped = s.replacen(&format!("parent {PARENT}\n"), "", 1);
        assert_eq!(
            carried_commit(dropped.as_bytes()),
            Err(ReconstructError::ParentCount { git: 0, mkit: 1 })
        );
    }

    #[test]
    fn tree_round_trips_and_refuses_foreign_shapes() {
        let child = Id([5; 32]);
        let tree = Tree {
            entries: vec![
                MkitEntry {
                    name: b"foo".to_vec(),
                    mode: EntryMode::Tree,
                    id: child,
                },
                MkitEntry {
                    name: b"foo.txt".to_vec(),
                    mode: EntryMode::Blob,
                    id: child,
                },
            ],
        };
        let git = export_tree_with(&Id::ZERO, &tree, &[PARENT, PARENT])
            .unwrap()
            .object
            .body;
        let look = |id: &Sha1| (*id == PARENT).then_some(child);
        let rec = reconstruct_tree(&git, look).unwrap();
        assert_eq!(rec.object, Object::Tree(tree.clone()));
        assert_eq!(rec.id, tree.merkle_id());

        let entry = |mode: &[u8], name: &[u8]| {
            let mut v = mode.to_vec();
            v.push(b' ');
            v.extend_from_slice(name);
            v.push(0);
            v.extend_from_slice(PARENT.as_bytes());
            v
        };
        // mkit order instead of git order.
        let mut wrong_order = entry(b"40000", b"foo");
        wrong_order.extend(entry(b"100644", b"foo.txt"));
        assert_eq!(
            reconstruct_tree(&wrong_order, look),
            Err(ReconstructError::NotCanonical {
                kind: ObjectKind::Tree
            })
        );
        for mode in [&b"160000"[..], b"040000", b"100664"] {
            assert!(matches!(
                reconstruct_tree(&entry(mode, b"x"), look),
                Err(ReconstructError::TreeMode { .. })
            ));
        }
        assert!(matches!(
            reconstruct_tree(&entry(b"100644", b".git"), look),
            Err(ReconstructError::Object(_))
        ));
        let mut dup = entry(b"100644", b"x");
        dup.extend(entry(b"100644", b"x"));
        assert!(matches!(
            reconstruct_tree(&dup, look),
            Err(ReconstructError::Object(_))
        ));
        let cut = entry(b"100644", b"x");
        assert!(matches!(
            reconstruct_tree(&cut[..cut.len() - 1], look),
            Err(ReconstructError::MalformedTree { .. })
        ));
        assert_eq!(
            reconstruct_tree(&entry(b"100644", b"x"), |_| None),
            Err(ReconstructError::UnknownChild { object: PARENT })
        );
    }

    #[test]
    fn tags_round_trip_and_check_their_target_type() {
        let tag = Tag {
            target: Id([7; 32]),
            target_type: ObjectType::ChunkedBlob,
            name: b"big".to_vec(),
            tagger: Identity::opaque(b"T".to_vec()),
            message: Vec::new(),
            timestamp: 0,
            signer: [0; 32],
            signature: [0; 64],
        };
        let body = export_tag_with(&Id::ZERO, &tag, &PARENT)
            .unwrap()
            .object
            .body;
        let rec = reconstruct_tag(&body, lookup).unwrap();
        assert_eq!(rec.object, Object::Tag(tag));
        let carried = carried_tag(&body).unwrap();
        assert_eq!(carried.target_kind, ObjectKind::Blob);
        let s = String::from_utf8(body).unwrap();
        for (from, to) in [
            ("mkit-target-type 05", "mkit-target-type 04"),
            ("mkit-target-type 05", "mkit-target-type 06"),
            ("mkit-target-type 05", "mkit-target-type 08"),
        ] {
            assert!(matches!(
                carried_tag(s.replace(from, to).as_bytes()),
                Err(ReconstructError::BadValue {
                    header: "mkit-target-type",
                    ..
                })
            ));
        }
        assert!(matches!(
            carried_tag(s.replace("type blob", "type tree").as_bytes()),
            Err(ReconstructError::NotCanonical {
                kind: ObjectKind::Tag
            })
        ));
        assert!(matches!(
            carried_tag(s.replace("tag big", "tag b.").as_bytes()),
            Err(ReconstructError::Refused(ExportRefusal::TagName { .. }))
        ));
    }

    #[test]
    fn blobs_rechunk_above_the_threshold() {
        let small = reconstruct_blob(b"abc").unwrap();
        assert_eq!(small.id, blob_id(b"abc"));
        assert!(chunk_blobs(b"abc").is_empty());
        let big: Vec<u8> = (0..300_000u32).flat_map(u32::to_le_bytes).collect();
        let rec = reconstruct_blob(&big).unwrap();
        assert_eq!(rec.id, crate::mkit::content::content_id(&big));
        let Object::ChunkedBlob(m) = &rec.object else {
            panic!("chunked");
        };
        let pieces = chunk_blobs(&big);
        assert_eq!(pieces.iter().map(|p| p.0).collect::<Vec<_>>(), m.chunks);
        for (id, bytes) in &pieces {
            assert_eq!(Object::decode(bytes).unwrap().id().unwrap(), *id);
        }
    }

    #[test]
    fn base64_decoding_is_strict() {
        for len in 0..10u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(91)).collect();
            assert_eq!(
                decode_base64_unpadded(&base64_unpadded(&data)).unwrap(),
                data
            );
        }
        for bad in [&b"Zg=="[..], b"Z", b"Zh", b"Zm9 v", b"Zm9v\n", b"Zm8="] {
            assert_eq!(decode_base64_unpadded(bad), None, "{bad:?}");
        }
        // RFC 4648 §10 vectors without padding, and the URL-safe alphabet
        // refused (`-_` are not standard base64).
        for (text, want) in [
            (&b""[..], &b""[..]),
            (b"Zg", b"f"),
            (b"Zm8", b"fo"),
            (b"Zm9v", b"foo"),
            (b"Zm9vYg", b"foob"),
            (b"Zm9vYmE", b"fooba"),
            (b"Zm9vYmFy", b"foobar"),
            (b"+/8", &[0xfb, 0xff]),
        ] {
            assert_eq!(decode_base64_unpadded(text).as_deref(), Some(want));
        }
        for bad in [&b"-_8"[..], b"Zm9v_", b"Zm9vY", b"Zm9\0"] {
            assert_eq!(decode_base64_unpadded(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn base64_round_trips_any_payload(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let text = base64_unpadded(&data);
            proptest::prop_assert!(!text.contains(&b'='));
            proptest::prop_assert_eq!(decode_base64_unpadded(&text), Some(data));
        }
    }
}
