//! The git → mkit translation rules of SPEC-GIT-IMPORT §3, as pure functions.
//!
//! Each function takes one git object's body plus what the caller already
//! knows about the objects it points at, and returns the mkit value or a
//! typed [`Refusal`]. Nothing here reads a repository, writes a store or
//! spawns a thread: the import driver walks the upstream bottom-up (blobs and
//! trees, then commits parents first, then tags), looks each child up in its
//! sha1 → [`Translated`] memo, and calls these functions. Determinism follows:
//! the output depends only on the bytes, the child ids and the importer key.
//!
//! The rules and the order of their checks are those of mkit-git-bridge
//! 0.5.0, so both produce the same objects and refuse the same refs; where
//! 0.5.0 differs from the spec text it wins, and `spec/IMPORT.md` says where.
//!
//! - blobs (§3.1): verbatim, chunked above 1 MiB by [`crate::mkit::content`];
//!   over 1 GiB refused ([`check_object_size`], [`check_blob`]);
//! - trees (§3.3): [`check_tree`], then [`translate_tree`];
//! - commits (§3.2): [`parse_commit`], [`check_commit_fields`],
//!   [`check_commit_children`], then [`translate_commit`], importer-signed;
//! - tags (§3.4): [`check_tag`], then [`translate_tag`], importer-signed;
//! - refs (§3.5): [`map_ref`].
//!
//! Every rule lives in a `check_*` function, generic over what the caller
//! knows of a child ([`Child`]): the driver's refusal pre-pass calls them on
//! [`Shape`]s (type and depth, no id) before anything is translated, and the
//! `translate_*` functions call the same ones on [`Translated`] values, so
//! both decide alike by construction.

use crate::bridge::refusal::{Refusal, TagNameRule};
use crate::git::parse::{CommitRef, ParseError, TagRef, TreeEntryRef, parse_tree};
use crate::git::sha1::frame_header;
use crate::git::{ObjectKind, Sha1};
use crate::mkit::chunk;
use crate::mkit::content;
use crate::mkit::id::Id;
use crate::mkit::object::{
    Commit, EntryMode, Identity, MAX_IDENTITY_LEN, MAX_PARENTS, MAX_TAG_NAME_LEN, MAX_TREE_ENTRIES,
    ObjectError, ObjectType, Tag, Tree, TreeEntry, entry_name_rule,
};
use crate::mkit::refs::{self, RefError};
use crate::mkit::sign::{self, KeyPair};

/// Deepest tree nesting imported: a tree's height (1 for a tree with no
/// subtrees) may not exceed this (mkit's `MAX_TREE_DEPTH`).
pub const MAX_TREE_DEPTH: usize = 128;
/// Longest tag → tag chain imported (1 for a tag of a non-tag).
pub const MAX_TAG_CHAIN: usize = 16;
/// Largest git object imported, in bytes (1 GiB, the per-file cap).
pub const MAX_OBJECT_BYTES: u64 = 1024 * 1024 * 1024;
/// The pinned tagger of a tag that has no `tagger` line (§3.4).
pub const NO_TAGGER: &[u8] = b"(no tagger)";

/// Per-run switches that change translation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The state's recorded direction is `fork`: a historic mode that would
    /// be normalized refuses the ref instead (§3.3).
    pub fork_mode: bool,
}

/// What the caller knows about an already-translated git object: the
/// driver's memo value, keyed by the object's sha1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Translated {
    /// The mkit id (a Merkle id for trees and chunked blobs).
    pub id: Id,
    /// The mkit type it became (a git blob over 1 MiB becomes
    /// [`ObjectType::ChunkedBlob`]).
    pub kind: ObjectType,
    /// For a tree its height (1 without subtrees), for a tag its chain
    /// length (1 for a tag of a non-tag), otherwise 0.
    pub depth: usize,
}

impl Translated {
    /// The memo value of a git blob holding `data`: its mkit content id
    /// (blob or chunked manifest) and type. Computes the id without storing.
    pub fn content(data: &[u8]) -> Translated {
        Translated {
            id: content::content_id(data),
            kind: content_type(data.len() as u64),
            depth: 0,
        }
    }
}

/// What the rules need to know about a child they refer to: the mkit type
/// it becomes and its depth, without its id. The refusal pre-pass works on
/// shapes alone (nothing is translated yet); translation on [`Translated`]
/// values. Both go through the same `check_*` functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// The mkit type.
    pub kind: ObjectType,
    /// For a tree its height, for a tag its chain length, otherwise 0.
    pub depth: usize,
}

/// A child value the checks can read a [`Shape`] from.
pub trait Child: Copy {
    /// The child's type and depth.
    fn shape(&self) -> Shape;
}

impl Child for Shape {
    fn shape(&self) -> Shape {
        *self
    }
}

impl Child for Translated {
    fn shape(&self) -> Shape {
        Shape {
            kind: self.kind,
            depth: self.depth,
        }
    }
}

/// The mkit type of a git blob of `len` bytes: a blob up to the 1 MiB
/// threshold, a chunked blob above it (§3.1).
pub fn content_type(len: u64) -> ObjectType {
    if chunk::needs_chunking(len) {
        ObjectType::ChunkedBlob
    } else {
        ObjectType::Blob
    }
}

/// Refuse a git object over [`MAX_OBJECT_BYTES`] before reading it (§3.1).
/// 0.5.0 applies the cap to every kind of object, as this does.
pub fn check_object_size(object: &Sha1, kind: ObjectKind, size: u64) -> Result<(), Refusal> {
    if size > MAX_OBJECT_BYTES {
        return Err(Refusal::BlobTooLarge {
            object: *object,
            kind,
            size,
        });
    }
    Ok(())
}

/// The blob rules, in translation order: the size cap on the size the
/// header gives (when the header could be read), then the object must be a
/// blob (anything else is reported as missing, as 0.5.0 does). `kind` and
/// `len` are what the object turned out to be. Returns the blob's shape.
pub fn check_blob(
    object: &Sha1,
    header: Option<(ObjectKind, u64)>,
    kind: ObjectKind,
    len: u64,
) -> Result<Shape, Refusal> {
    if let Some((kind, size)) = header {
        check_object_size(object, kind, size)?;
    }
    if kind != ObjectKind::Blob {
        return Err(Refusal::MissingObject { object: *object });
    }
    Ok(Shape {
        kind: content_type(len),
        depth: 0,
    })
}

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

/// How a git tree-entry mode maps (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeMapping {
    /// One of git's four canonical modes.
    Canonical(EntryMode),
    /// A historic spelling, mapped to its canonical equivalent (declared
    /// lossy; refused in a fork-mode state).
    Normalized(EntryMode),
    /// `160000`, a submodule: always refused.
    Gitlink,
    /// Anything else: refused.
    Unknown,
}

/// Map a mode string by the pinned table: `100644` file, `40000` directory,
/// `120000` symlink, `100755` executable; the historic `100664`, `100640`,
/// `100600` (file) and `040000` (directory) normalize; nothing else maps.
pub fn map_mode(mode: &[u8]) -> ModeMapping {
    match mode {
        b"100644" => ModeMapping::Canonical(EntryMode::Blob),
        b"40000" => ModeMapping::Canonical(EntryMode::Tree),
        b"120000" => ModeMapping::Canonical(EntryMode::Symlink),
        b"100755" => ModeMapping::Canonical(EntryMode::Executable),
        b"100664" | b"100640" | b"100600" => ModeMapping::Normalized(EntryMode::Blob),
        b"040000" => ModeMapping::Normalized(EntryMode::Tree),
        b"160000" => ModeMapping::Gitlink,
        _ => ModeMapping::Unknown,
    }
}

/// A translated tree and what the caller must remember about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslatedTree {
    /// The mkit tree: entries in byte order, names validated.
    pub tree: Tree,
    /// True when a historic mode was normalized (the driver warns once per
    /// ref and stamps the state `normalized`).
    pub normalized: bool,
    /// The tree's height: 1 plus the tallest subtree's.
    pub depth: usize,
}

impl TranslatedTree {
    /// The tree's Merkle id, the id a store gives it.
    pub fn id(&self) -> Id {
        self.tree.merkle_id()
    }

    /// The memo value for this tree.
    pub fn translated(&self) -> Translated {
        Translated {
            id: self.id(),
            kind: ObjectType::Tree,
            depth: self.depth,
        }
    }
}

/// A git tree that passed every rule of §3.3: its entries in mkit's byte
/// order, each with the caller's value for its child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTree<'a, C> {
    /// Name, mapped mode and child value, sorted by name.
    pub entries: Vec<(&'a [u8], EntryMode, C)>,
    /// True when a historic mode was normalized.
    pub normalized: bool,
    /// The tree's height: 1 plus the tallest subtree's.
    pub depth: usize,
}

/// Check a git tree body against every rule of §3.3. `lookup` gives each
/// child's value; `None` means the child is not available (missing
/// upstream, or refused: the driver reports a child's own refusal rather
/// than this one's "missing").
///
/// Checks, in 0.5.0's order: the body parses; at most 1,000,000 entries;
/// then entry by entry in git's order: the mode maps (gitlink, unknown mode
/// and, in fork mode, a historic spelling refuse), the name is storable
/// (SPEC-OBJECTS §4.1), the child is known, and its type fits the mode (a
/// file, executable or symlink mode needs a blob or chunked blob, a directory
/// mode a tree); then the nesting bound of 128, and finally no two entries
/// share a name once re-sorted to mkit's byte order.
///
/// The refusal pre-pass calls this with [`Shape`]s, translation (through
/// [`translate_tree`]) with [`Translated`] values: one copy of the rules.
pub fn check_tree<'a, C: Child>(
    object: &Sha1,
    body: &'a [u8],
    options: ImportOptions,
    mut lookup: impl FnMut(&Sha1) -> Option<C>,
) -> Result<CheckedTree<'a, C>, Refusal> {
    let parsed = parse_tree(body).map_err(unparsable(object, ObjectKind::Tree))?;
    if parsed.len() > MAX_TREE_ENTRIES as usize {
        return Err(Refusal::TooManyTreeEntries {
            object: *object,
            count: parsed.len(),
        });
    }
    let mut normalized = false;
    let mut tallest_child = 0;
    let mut entries = Vec::with_capacity(parsed.len());
    for TreeEntryRef { mode, name, id } in parsed {
        let mode = match map_mode(mode) {
            ModeMapping::Canonical(m) => m,
            ModeMapping::Normalized(_) if options.fork_mode => {
                return Err(Refusal::NormalizedModeInFork {
                    object: *object,
                    name: name.to_vec(),
                    mode: mode.to_vec(),
                });
            }
            ModeMapping::Normalized(m) => {
                normalized = true;
                m
            }
            ModeMapping::Gitlink => {
                return Err(Refusal::Gitlink {
                    object: *object,
                    name: name.to_vec(),
                });
            }
            ModeMapping::Unknown => {
                return Err(Refusal::UnknownTreeMode {
                    object: *object,
                    name: name.to_vec(),
                    mode: mode.to_vec(),
                });
            }
        };
        if let Some(rule) = entry_name_rule(name) {
            return Err(Refusal::TreeEntryName {
                object: *object,
                name: name.to_vec(),
                rule,
            });
        }
        let child = lookup(&id).ok_or(Refusal::MissingObject { object: id })?;
        let shape = child.shape();
        let fits = match mode {
            EntryMode::Tree => shape.kind == ObjectType::Tree,
            EntryMode::Blob | EntryMode::Executable | EntryMode::Symlink => {
                matches!(shape.kind, ObjectType::Blob | ObjectType::ChunkedBlob)
            }
        };
        if !fits {
            return Err(Refusal::TreeEntryKind {
                object: *object,
                name: name.to_vec(),
                mode,
                found: shape.kind,
            });
        }
        if mode == EntryMode::Tree {
            tallest_child = tallest_child.max(shape.depth);
        }
        entries.push((name, mode, child));
    }
    let depth = tallest_child.saturating_add(1);
    if depth > MAX_TREE_DEPTH {
        return Err(Refusal::TreeTooDeep {
            object: *object,
            depth,
        });
    }
    // git sorts a directory as if its name ended in '/'; mkit sorts bytes.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Refusal::DuplicateTreeEntry {
            object: *object,
            name: pair[0].0.to_vec(),
        });
    }
    Ok(CheckedTree {
        entries,
        normalized,
        depth,
    })
}

/// Translate a git tree body (§3.3): [`check_tree`], then the mkit tree
/// with each child's id.
pub fn translate_tree(
    object: &Sha1,
    body: &[u8],
    options: ImportOptions,
    lookup: impl FnMut(&Sha1) -> Option<Translated>,
) -> Result<TranslatedTree, Refusal> {
    let checked = check_tree(object, body, options, lookup)?;
    let entries = checked
        .entries
        .into_iter()
        .map(|(name, mode, child)| TreeEntry {
            name: name.to_vec(),
            mode,
            id: child.id,
        })
        .collect();
    Ok(TranslatedTree {
        tree: Tree { entries },
        normalized: checked.normalized,
        depth: checked.depth,
    })
}

// ---------------------------------------------------------------------------
// Commits
// ---------------------------------------------------------------------------

/// BLAKE3 of the framed git object (`"<kind> <len>\0"` + body): an imported
/// commit's `content_digest` (§3.2, §5), computed without copying the body.
pub fn framed_digest(kind: ObjectKind, body: &[u8]) -> Id {
    let mut h = blake3::Hasher::new();
    h.update(&frame_header(kind, body.len()));
    h.update(body);
    Id(*h.finalize().as_bytes())
}

/// Parse a commit body (§3.2), including both person lines' timestamps.
pub fn parse_commit<'a>(object: &Sha1, body: &'a [u8]) -> Result<CommitRef<'a>, Refusal> {
    CommitRef::parse(body).map_err(unparsable(object, ObjectKind::Commit))
}

/// The fields of a parsed commit that pass §3.2's own checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitFields<'p> {
    /// The committer timestamp, not negative.
    pub timestamp: u64,
    /// The author identity, 1 to 4096 bytes.
    pub author: &'p [u8],
}

/// The checks of §3.2 that need nothing but the commit itself, in 0.5.0's
/// order after parsing: the committer timestamp is not negative; at most
/// 1000 parents; the author identity is 1 to 4096 bytes.
pub fn check_commit_fields<'p>(
    object: &Sha1,
    parsed: &'p CommitRef<'_>,
) -> Result<CommitFields<'p>, Refusal> {
    let timestamp =
        u64::try_from(parsed.committer.timestamp).map_err(|_| Refusal::NegativeTimestamp {
            object: *object,
            kind: ObjectKind::Commit,
            timestamp: parsed.committer.timestamp,
        })?;
    if parsed.parents.len() > MAX_PARENTS as usize {
        return Err(Refusal::TooManyParents {
            object: *object,
            count: parsed.parents.len(),
        });
    }
    let author = check_identity(object, ObjectKind::Commit, &parsed.author.identity)?;
    Ok(CommitFields { timestamp, author })
}

/// The commit's children, in 0.5.0's order: the tree, then each parent,
/// must be known. 0.5.0 does not check that the tree is a tree or the
/// parents commits; neither does this.
pub fn check_commit_children<C: Child>(
    tree: &Sha1,
    parents: &[Sha1],
    mut lookup: impl FnMut(&Sha1) -> Option<C>,
) -> Result<(C, Vec<C>), Refusal> {
    let mut known = |sha1: &Sha1| lookup(sha1).ok_or(Refusal::MissingObject { object: *sha1 });
    let tree = known(tree)?;
    let parents = parents.iter().map(known).collect::<Result<Vec<_>, _>>()?;
    Ok((tree, parents))
}

/// The mkit commit for a git commit body, unsigned (zero signature) under
/// `signer` (§3.2). `lookup` gives the translated root tree and parents.
///
/// The checks are [`parse_commit`], [`check_commit_fields`] and
/// [`check_commit_children`], in that order (the refusal pre-pass runs the
/// same three).
pub fn unsigned_commit(
    object: &Sha1,
    body: &[u8],
    signer: [u8; 32],
    lookup: impl FnMut(&Sha1) -> Option<Translated>,
) -> Result<Commit, Refusal> {
    let parsed = parse_commit(object, body)?;
    let fields = check_commit_fields(object, &parsed)?;
    let (tree, parents) = check_commit_children(&parsed.tree, &parsed.parents, lookup)?;
    Ok(Commit {
        tree: tree.id,
        parents: parents.iter().map(|p| p.id).collect(),
        author: Identity::opaque(fields.author),
        message: parsed.message.to_vec(),
        timestamp: fields.timestamp,
        signer,
        message_hash: Id::ZERO,
        content_digest: framed_digest(ObjectKind::Commit, body),
        signature: [0; 64],
    })
}

/// [`unsigned_commit`], signed by the importer under the commit domain
/// (§3.2: no separate import domain).
pub fn translate_commit(
    object: &Sha1,
    body: &[u8],
    lookup: impl FnMut(&Sha1) -> Option<Translated>,
    key: &KeyPair,
) -> Result<Commit, Refusal> {
    let mut commit = unsigned_commit(object, body, key.public(), lookup)?;
    sign::sign_commit(&mut commit, key).map_err(unrepresentable(object, ObjectKind::Commit))?;
    Ok(commit)
}

// ---------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------

/// Check a tag object's name against the single-segment grammar of
/// SPEC-GIT-BRIDGE §7.1: 1 to 4096 bytes of `[A-Za-z0-9._-]`, not `.`, `..`
/// or `HEAD`, no `.lock` suffix, no leading or trailing `.`, no `..`.
pub fn check_tag_name(name: &[u8]) -> Result<(), TagNameRule> {
    if name.is_empty() {
        return Err(TagNameRule::Empty);
    }
    if name.len() > MAX_TAG_NAME_LEN {
        return Err(TagNameRule::TooLong);
    }
    if !name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(TagNameRule::Charset);
    }
    if name == b"." || name == b".." {
        return Err(TagNameRule::DotOrDotDot);
    }
    if name == b"HEAD" {
        return Err(TagNameRule::Head);
    }
    if name.ends_with(b".lock") {
        return Err(TagNameRule::LockSuffix);
    }
    if name.starts_with(b".") {
        return Err(TagNameRule::LeadingDot);
    }
    if name.ends_with(b".") {
        return Err(TagNameRule::TrailingDot);
    }
    if name.windows(2).any(|w| w == b"..") {
        return Err(TagNameRule::DoubleDot);
    }
    Ok(())
}

/// A translated tag and its chain length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslatedTag {
    /// The mkit tag.
    pub tag: Tag,
    /// Tags in the chain it heads (1 when its target is not a tag); the
    /// memo's `depth` for this tag.
    pub chain: usize,
}

/// A git tag that passed every rule of §3.4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTag<'a, C> {
    /// The parsed tag.
    pub parsed: TagRef<'a>,
    /// The caller's value for the target.
    pub target: C,
    /// The mkit target type (a declared blob may be a chunked blob).
    pub target_type: ObjectType,
    /// Tags in the chain it heads (1 when its target is not a tag).
    pub chain: usize,
    /// The tagger timestamp (0 for a tag without a tagger).
    pub timestamp: u64,
}

impl<C> CheckedTag<'_, C> {
    /// The tagger identity; the pinned `(no tagger)` for a tag without one.
    pub fn tagger(&self) -> &[u8] {
        match &self.parsed.tagger {
            Some(p) => &p.identity,
            None => NO_TAGGER,
        }
    }
}

/// Check a git tag body against every rule of §3.4. `lookup` gives the
/// target's value.
///
/// Checks, in 0.5.0's order: the body parses (including the tagger's
/// timestamp); the name passes [`check_tag_name`]; the target is known and
/// the chain it extends stays within 16; the declared `type` is one of the
/// four kinds and agrees with what the target became (a declared blob may
/// be a chunked blob, which is then the mkit target type); the tagger
/// timestamp is not negative and the tagger identity is 1 to 4096 bytes. A
/// tag without a tagger gets the pinned `(no tagger)` identity at time 0.
pub fn check_tag<'a, C: Child>(
    object: &Sha1,
    body: &'a [u8],
    mut lookup: impl FnMut(&Sha1) -> Option<C>,
) -> Result<CheckedTag<'a, C>, Refusal> {
    let parsed = TagRef::parse(body).map_err(unparsable(object, ObjectKind::Tag))?;
    check_tag_name(&parsed.name).map_err(|rule| Refusal::TagName {
        object: *object,
        name: parsed.name.to_vec(),
        rule,
    })?;
    let target = lookup(&parsed.object).ok_or(Refusal::MissingObject {
        object: parsed.object,
    })?;
    let found = target.shape();
    let chain = match found.kind {
        ObjectType::Tag => found.depth.saturating_add(1),
        _ => 1,
    };
    if chain > MAX_TAG_CHAIN {
        return Err(Refusal::TagChain {
            object: *object,
            length: chain,
        });
    }
    let declared = match parsed.target_kind() {
        Some(ObjectKind::Blob) => Some(ObjectType::Blob),
        Some(ObjectKind::Tree) => Some(ObjectType::Tree),
        Some(ObjectKind::Commit) => Some(ObjectType::Commit),
        Some(ObjectKind::Tag) => Some(ObjectType::Tag),
        None => None,
    };
    let target_type = match (declared, found.kind) {
        (Some(ObjectType::Blob), ObjectType::ChunkedBlob) => ObjectType::ChunkedBlob,
        (Some(d), actual) if d == actual => d,
        _ => {
            return Err(Refusal::TagTarget {
                object: *object,
                declared: parsed.target_type.to_vec(),
                found: found.kind,
            });
        }
    };
    let timestamp = match &parsed.tagger {
        Some(p) => {
            let timestamp = u64::try_from(p.timestamp).map_err(|_| Refusal::NegativeTimestamp {
                object: *object,
                kind: ObjectKind::Tag,
                timestamp: p.timestamp,
            })?;
            check_identity(object, ObjectKind::Tag, &p.identity)?;
            timestamp
        }
        None => 0,
    };
    Ok(CheckedTag {
        timestamp,
        parsed,
        target,
        target_type,
        chain,
    })
}

/// The mkit tag for a git tag body, unsigned (zero signature) under
/// `signer` (§3.4): [`check_tag`], then the tag. `lookup` gives the
/// translated target.
pub fn unsigned_tag(
    object: &Sha1,
    body: &[u8],
    signer: [u8; 32],
    lookup: impl FnMut(&Sha1) -> Option<Translated>,
) -> Result<TranslatedTag, Refusal> {
    let checked = check_tag(object, body, lookup)?;
    let tagger = Identity::opaque(checked.tagger());
    Ok(TranslatedTag {
        tag: Tag {
            target: checked.target.id,
            target_type: checked.target_type,
            tagger,
            name: checked.parsed.name.into_owned(),
            message: checked.parsed.message.to_vec(),
            timestamp: checked.timestamp,
            signer,
            signature: [0; 64],
        },
        chain: checked.chain,
    })
}

/// [`unsigned_tag`], signed by the importer under the tag domain (§3.4).
pub fn translate_tag(
    object: &Sha1,
    body: &[u8],
    lookup: impl FnMut(&Sha1) -> Option<Translated>,
    key: &KeyPair,
) -> Result<TranslatedTag, Refusal> {
    let mut out = unsigned_tag(object, body, key.public(), lookup)?;
    sign::sign_tag(&mut out.tag, key).map_err(unrepresentable(object, ObjectKind::Tag))?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Refs
// ---------------------------------------------------------------------------

/// Where an upstream ref lands in the mkit repository (§3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefMapping {
    /// `refs/heads/<branch>` becomes the tracking ref
    /// `refs/remotes/<remote>/<branch>`.
    Branch {
        /// The branch name, possibly with `/` segments.
        branch: String,
        /// The full mkit ref.
        mkit_ref: String,
    },
    /// `refs/tags/<tag>` becomes `refs/tags/<tag>` (the tag object or, for
    /// a lightweight tag, the commit).
    Tag {
        /// The tag ref's name, possibly with `/` segments.
        tag: String,
        /// The full mkit ref.
        mkit_ref: String,
    },
}

impl RefMapping {
    /// The full mkit ref name.
    pub fn mkit_ref(&self) -> &str {
        match self {
            RefMapping::Branch { mkit_ref, .. } | RefMapping::Tag { mkit_ref, .. } => mkit_ref,
        }
    }
}

/// Map an upstream ref name for the state named `remote` (already a valid
/// state name). Only `refs/heads/*` and `refs/tags/*` are imported: other
/// names give `Ok(None)` (0.5.0 never lists them, so they are neither
/// imported nor reported). The part after the prefix must be a valid mkit
/// ref name (SPEC-REFS §3: segments of `[A-Za-z0-9._-]`, none starting with
/// `.` or ending in `.lock`, the last not `HEAD`, at most 512 bytes) and,
/// for a tag, fit the 502 bytes a new tag name may have.
pub fn map_ref(remote: &str, upstream: &[u8]) -> Result<Option<RefMapping>, Refusal> {
    let refuse = |reason: String| Refusal::RefName {
        name: upstream.to_vec(),
        reason,
    };
    let (short, is_branch) = if let Some(b) = upstream.strip_prefix(refs::HEADS_PREFIX.as_bytes()) {
        (b, true)
    } else if let Some(t) = upstream.strip_prefix(refs::TAGS_PREFIX.as_bytes()) {
        (t, false)
    } else {
        return Ok(None);
    };
    let short = std::str::from_utf8(short).map_err(|_| refuse("it is not utf-8".into()))?;
    refs::validate_ref_name(short).map_err(|e| {
        refuse(match e {
            RefError::InvalidName { reason, .. } => reason,
            other => other.to_string(),
        })
    })?;
    if is_branch {
        return Ok(Some(RefMapping::Branch {
            branch: short.to_owned(),
            mkit_ref: format!("{}{remote}/{short}", refs::REMOTES_PREFIX),
        }));
    }
    if short.len() > refs::MAX_TAG_NAME_BYTES {
        return Err(refuse(format!(
            "the tag name is {} bytes; a new mkit tag name has at most {}",
            short.len(),
            refs::MAX_TAG_NAME_BYTES
        )));
    }
    Ok(Some(RefMapping::Tag {
        tag: short.to_owned(),
        mkit_ref: format!("{}{short}", refs::TAGS_PREFIX),
    }))
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// An author or tagger slice, bounded 1..=4096 bytes.
fn check_identity<'s>(
    object: &Sha1,
    kind: ObjectKind,
    slice: &'s [u8],
) -> Result<&'s [u8], Refusal> {
    if slice.is_empty() || slice.len() > MAX_IDENTITY_LEN {
        return Err(Refusal::AuthorPayload {
            object: *object,
            kind,
            len: slice.len(),
        });
    }
    Ok(slice)
}

fn unparsable(object: &Sha1, kind: ObjectKind) -> impl FnOnce(ParseError) -> Refusal + '_ {
    move |error| Refusal::Unparsable {
        object: *object,
        kind,
        error,
    }
}

fn unrepresentable(object: &Sha1, kind: ObjectKind) -> impl FnOnce(ObjectError) -> Refusal + '_ {
    move |error| Refusal::Unrepresentable {
        object: *object,
        kind,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::sha1::frame;
    use crate::mkit::object::{NameRule, Object};
    use crate::mkit::sign::{SignatureStatus, verify_object};
    use std::collections::HashMap;

    const OBJ: Sha1 = Sha1([0xee; 20]);

    fn sha(n: u8) -> Sha1 {
        Sha1([n; 20])
    }

    fn blob(n: u8) -> Translated {
        Translated {
            id: Id([n; 32]),
            kind: ObjectType::Blob,
            depth: 0,
        }
    }

    fn tree_of(depth: usize) -> Translated {
        Translated {
            id: Id([depth as u8; 32]),
            kind: ObjectType::Tree,
            depth,
        }
    }

    fn tree_body(entries: &[(&str, &[u8], Sha1)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name, id) in entries {
            out.extend_from_slice(mode.as_bytes());
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(&id.0);
        }
        out
    }

    fn memo(pairs: &[(Sha1, Translated)]) -> impl FnMut(&Sha1) -> Option<Translated> + use<> {
        let map: HashMap<Sha1, Translated> = pairs.iter().copied().collect();
        move |s| map.get(s).copied()
    }

    fn tree(body: &[u8], pairs: &[(Sha1, Translated)]) -> Result<TranslatedTree, Refusal> {
        translate_tree(&OBJ, body, ImportOptions::default(), memo(pairs))
    }

    #[test]
    fn mode_table_is_exhaustive_and_pinned() {
        use EntryMode::*;
        let cases: &[(&[u8], ModeMapping)] = &[
            (b"100644", ModeMapping::Canonical(Blob)),
            (b"40000", ModeMapping::Canonical(Tree)),
            (b"120000", ModeMapping::Canonical(Symlink)),
            (b"100755", ModeMapping::Canonical(Executable)),
            (b"100664", ModeMapping::Normalized(Blob)),
            (b"100640", ModeMapping::Normalized(Blob)),
            (b"100600", ModeMapping::Normalized(Blob)),
            (b"040000", ModeMapping::Normalized(Tree)),
            (b"160000", ModeMapping::Gitlink),
            (b"100700", ModeMapping::Unknown),
            (b"0100644", ModeMapping::Unknown),
            (b"120755", ModeMapping::Unknown),
            (b"4000", ModeMapping::Unknown),
            (b"", ModeMapping::Unknown),
        ];
        for (mode, want) in cases {
            assert_eq!(map_mode(mode), *want, "{}", mode.escape_ascii());
        }
    }

    #[test]
    fn trees_resort_map_modes_and_report_height() {
        let body = tree_body(&[
            ("100644", b"foo.txt", sha(1)),
            ("40000", b"foo", sha(2)),
            ("100755", b"run", sha(3)),
            ("120000", b"link", sha(4)),
            ("100644", b"big", sha(5)),
        ]);
        let chunked = Translated {
            id: Id([5; 32]),
            kind: ObjectType::ChunkedBlob,
            depth: 0,
        };
        let got = tree(
            &body,
            &[
                (sha(1), blob(1)),
                (sha(2), tree_of(3)),
                (sha(3), blob(3)),
                (sha(4), blob(4)),
                (sha(5), chunked),
            ],
        )
        .unwrap();
        let names: Vec<&[u8]> = got.tree.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"big"[..], b"foo", b"foo.txt", b"link", b"run"]);
        let modes: Vec<EntryMode> = got.tree.entries.iter().map(|e| e.mode).collect();
        use EntryMode::*;
        assert_eq!(modes, [Blob, Tree, Blob, Symlink, Executable]);
        assert_eq!(
            got.tree.entries[0].id,
            Id([5; 32]),
            "chunked child keeps its manifest id"
        );
        assert!(!got.normalized);
        assert_eq!(got.depth, 4);
        assert!(got.tree.validate().is_ok());
        assert_eq!(got.translated().id, got.tree.merkle_id());

        let empty = tree(b"", &[]).unwrap();
        assert_eq!((empty.tree.entries.len(), empty.depth), (0, 1));
    }

    #[test]
    fn historic_modes_normalize_or_refuse_in_fork_mode() {
        for (mode, child) in [
            ("100664", blob(1)),
            ("100640", blob(1)),
            ("100600", blob(1)),
            ("040000", tree_of(1)),
        ] {
            let body = tree_body(&[(mode, b"x", sha(1))]);
            let got = tree(&body, &[(sha(1), child)]).unwrap();
            assert!(got.normalized, "{mode}");
            let fork = translate_tree(
                &OBJ,
                &body,
                ImportOptions { fork_mode: true },
                memo(&[(sha(1), child)]),
            );
            assert_eq!(
                fork,
                Err(Refusal::NormalizedModeInFork {
                    object: OBJ,
                    name: b"x".to_vec(),
                    mode: mode.as_bytes().to_vec()
                })
            );
        }
    }

    #[test]
    fn tree_refusals_are_typed() {
        let known = [(sha(1), blob(1)), (sha(2), tree_of(1))];
        let cases: Vec<(Vec<u8>, Refusal)> = vec![
            (
                tree_body(&[("160000", b"sub", sha(9))]),
                Refusal::Gitlink {
                    object: OBJ,
                    name: b"sub".to_vec(),
                },
            ),
            (
                tree_body(&[("100666", b"x", sha(1))]),
                Refusal::UnknownTreeMode {
                    object: OBJ,
                    name: b"x".to_vec(),
                    mode: b"100666".to_vec(),
                },
            ),
            (
                tree_body(&[("100644", b"aux.c", sha(1))]),
                Refusal::TreeEntryName {
                    object: OBJ,
                    name: b"aux.c".to_vec(),
                    rule: NameRule::WindowsDevice,
                },
            ),
            (
                tree_body(&[("40000", b".GIT", sha(2))]),
                Refusal::TreeEntryName {
                    object: OBJ,
                    name: b".GIT".to_vec(),
                    rule: NameRule::Reserved,
                },
            ),
            (
                tree_body(&[("100644", b"a\\b", sha(1))]),
                Refusal::TreeEntryName {
                    object: OBJ,
                    name: b"a\\b".to_vec(),
                    rule: NameRule::ForbiddenByte,
                },
            ),
            (
                tree_body(&[("100644", b"x", sha(7))]),
                Refusal::MissingObject { object: sha(7) },
            ),
            (
                tree_body(&[("100644", b"x", sha(2))]),
                Refusal::TreeEntryKind {
                    object: OBJ,
                    name: b"x".to_vec(),
                    mode: EntryMode::Blob,
                    found: ObjectType::Tree,
                },
            ),
            (
                tree_body(&[("40000", b"d", sha(1))]),
                Refusal::TreeEntryKind {
                    object: OBJ,
                    name: b"d".to_vec(),
                    mode: EntryMode::Tree,
                    found: ObjectType::Blob,
                },
            ),
            (
                // git sorts the file `a` before the directory `a` ("a" < "a/").
                tree_body(&[("100644", b"a", sha(1)), ("40000", b"a", sha(2))]),
                Refusal::DuplicateTreeEntry {
                    object: OBJ,
                    name: b"a".to_vec(),
                },
            ),
            (
                b"100644 x\0short".to_vec(),
                Refusal::Unparsable {
                    object: OBJ,
                    kind: ObjectKind::Tree,
                    error: ParseError::TreeIdTruncated { offset: 0 },
                },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(tree(&body, &known), Err(want));
        }
    }

    #[test]
    fn tree_checks_run_in_the_reference_order() {
        let known = [(sha(1), blob(1))];
        // Entries are checked in stored order: the first bad one decides.
        let body = tree_body(&[("100644", b"aux", sha(1)), ("160000", b"sub", sha(9))]);
        assert_eq!(tree(&body, &known).unwrap_err().name(), "TreeEntryName");
        // Within an entry the mode is checked before the name.
        let body = tree_body(&[("160000", b"aux", sha(9))]);
        assert_eq!(tree(&body, &known).unwrap_err().name(), "Gitlink");
        // A malformed entry anywhere makes the whole tree unparsable first.
        let mut body = tree_body(&[("160000", b"sub", sha(9))]);
        body.extend_from_slice(b"100644 tail");
        assert_eq!(tree(&body, &known).unwrap_err().name(), "Unparsable");
        // Duplicates are found only after every entry passed.
        let body = tree_body(&[
            ("100644", b"a", sha(1)),
            ("40000", b"a", sha(2)),
            ("160000", b"z", sha(9)),
        ]);
        assert_eq!(
            tree(&body, &[(sha(1), blob(1)), (sha(2), tree_of(1))])
                .unwrap_err()
                .name(),
            "Gitlink"
        );
    }

    /// The pre-pass runs the checks on shapes: for any body and children,
    /// they refuse exactly as translation does, and pass with the same
    /// depth and chain.
    #[test]
    fn checks_on_shapes_decide_as_translation_does() {
        let known = [(sha(1), blob(1)), (sha(2), tree_of(3)), (sha(3), blob(3))];
        let shapes: HashMap<Sha1, Shape> = known.iter().map(|(s, t)| (*s, t.shape())).collect();
        let trees = [
            tree_body(&[("100644", b"a", sha(1)), ("40000", b"d", sha(2))]),
            tree_body(&[("160000", b"sub", sha(9))]),
            tree_body(&[("100644", b"x", sha(7)), ("160000", b"sub", sha(9))]),
            tree_body(&[("100644", b"x", sha(2))]),
            tree_body(&[("100644", b"a", sha(1)), ("40000", b"a", sha(2))]),
            tree_body(&[("100664", b"n", sha(3))]),
            b"100644 x\0short".to_vec(),
        ];
        for body in &trees {
            let translated = tree(body, &known);
            let checked = check_tree(&OBJ, body, ImportOptions::default(), |c| {
                shapes.get(c).copied()
            });
            match (translated, checked) {
                (Ok(t), Ok(c)) => {
                    assert_eq!((t.depth, t.normalized), (c.depth, c.normalized));
                    let names: Vec<&[u8]> = c.entries.iter().map(|e| e.0).collect();
                    let want: Vec<&[u8]> = t.tree.entries.iter().map(|e| &e.name[..]).collect();
                    assert_eq!(names, want);
                }
                (Err(t), Err(c)) => assert_eq!(t, c),
                (t, c) => panic!("translation {t:?}, check {c:?}"),
            }
        }
        let key = KeyPair::from_seed(&[0x42; 32]);
        let t = Sha1::from_hex(T).unwrap();
        let commit_shapes = |s: &Sha1| (*s == t || *s == sha(1)).then_some(blob(1).shape());
        for body in [
            format!(
                "tree {T}\nparent {}\nauthor A <a> 1 +0000\ncommitter A <a> 2 +0000\n\nm",
                sha(1)
            ),
            format!(
                "tree {T}\nparent {}\nauthor A <a> 1 +0000\ncommitter A <a> 2 +0000\n\nm",
                sha(4)
            ),
            format!("tree {T}\nauthor A <a> 1 +0000\ncommitter A <a> -2 +0000\n\nm"),
            format!("tree {T}\nauthor  1 +0000\ncommitter A <a> 2 +0000\n\nm"),
            "tree x\n\nm".to_owned(),
        ] {
            let translated = translate_commit(&OBJ, body.as_bytes(), commit_memo(), &key);
            let checked = parse_commit(&OBJ, body.as_bytes()).and_then(|c| {
                check_commit_fields(&OBJ, &c)?;
                check_commit_children(&c.tree, &c.parents, commit_shapes).map(|_| ())
            });
            assert_eq!(translated.err(), checked.err(), "{body}");
        }
        let tag_shapes = |s: &Sha1| tag_memo()(s).map(|t| t.shape());
        for body in [
            format!("object {}\ntype commit\ntag v1\n\n", sha(1)),
            format!("object {}\ntype tag\ntag c\n\n", sha(3)),
            format!("object {}\ntype tag\ntag c\n\n", sha(4)),
            format!("object {}\ntype tree\ntag t\n\n", sha(1)),
            format!("object {}\ntype commit\ntag t\n\n", sha(7)),
            format!("object {}\ntype commit\ntag a/b\n\n", sha(1)),
        ] {
            let translated = translate_tag(&OBJ, body.as_bytes(), tag_memo(), &key);
            let checked = check_tag(&OBJ, body.as_bytes(), tag_shapes);
            match (translated, checked) {
                (Ok(t), Ok(c)) => assert_eq!(t.chain, c.chain),
                (Err(t), Err(c)) => assert_eq!(t, c),
                (t, c) => panic!("translation {t:?}, check {:?}", c.map(|c| c.chain)),
            }
        }
    }

    #[test]
    fn blob_checks() {
        let big = MAX_OBJECT_BYTES + 1;
        assert_eq!(
            check_blob(&OBJ, Some((ObjectKind::Blob, big)), ObjectKind::Blob, big),
            Err(Refusal::BlobTooLarge {
                object: OBJ,
                kind: ObjectKind::Blob,
                size: big
            })
        );
        // The cap is checked on the header, before the kind.
        assert_eq!(
            check_blob(&OBJ, Some((ObjectKind::Tree, big)), ObjectKind::Tree, big)
                .unwrap_err()
                .name(),
            "BlobTooLarge"
        );
        assert_eq!(
            check_blob(&OBJ, Some((ObjectKind::Tree, 3)), ObjectKind::Tree, 3),
            Err(Refusal::MissingObject { object: OBJ })
        );
        let over = chunk::CHUNK_THRESHOLD as u64 + 1;
        assert_eq!(
            check_blob(&OBJ, None, ObjectKind::Blob, over).unwrap().kind,
            ObjectType::ChunkedBlob
        );
        assert_eq!(
            check_blob(&OBJ, Some((ObjectKind::Blob, 2)), ObjectKind::Blob, 2).unwrap(),
            Shape {
                kind: ObjectType::Blob,
                depth: 0
            }
        );
    }

    #[test]
    fn nesting_bound_is_128_levels() {
        let body = tree_body(&[("40000", b"d", sha(2))]);
        let ok = tree(&body, &[(sha(2), tree_of(127))]).unwrap();
        assert_eq!(ok.depth, 128);
        assert_eq!(
            tree(&body, &[(sha(2), tree_of(128))]),
            Err(Refusal::TreeTooDeep {
                object: OBJ,
                depth: 129
            })
        );
    }

    #[test]
    fn object_size_cap() {
        assert!(check_object_size(&OBJ, ObjectKind::Blob, MAX_OBJECT_BYTES).is_ok());
        assert_eq!(
            check_object_size(&OBJ, ObjectKind::Tree, MAX_OBJECT_BYTES + 1),
            Err(Refusal::BlobTooLarge {
                object: OBJ,
                kind: ObjectKind::Tree,
                size: MAX_OBJECT_BYTES + 1
            })
        );
        assert_eq!(
            content_type(chunk::CHUNK_THRESHOLD as u64),
            ObjectType::Blob
        );
        assert_eq!(
            content_type(chunk::CHUNK_THRESHOLD as u64 + 1),
            ObjectType::ChunkedBlob
        );
        let small = Translated::content(b"hi");
        assert_eq!(small.id, crate::mkit::object::blob_id(b"hi"));
        assert_eq!(small.kind, ObjectType::Blob);
    }

    const T: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

    fn commit_memo() -> impl FnMut(&Sha1) -> Option<Translated> + use<> {
        let t = Sha1::from_hex(T).unwrap();
        memo(&[(t, tree_of(1)), (sha(1), blob(9))])
    }

    #[test]
    fn commit_translation_follows_the_field_table() {
        let key = KeyPair::from_seed(&[0x42; 32]);
        let mut body = format!(
            "tree {T}\nparent {}\nauthor  Weird<a@x>  100 +0530\ncommitter C <c@y> 200 -0800\n\
             encoding ISO-8859-1\ngpgsig x\n y\n\ncaf",
            sha(1)
        )
        .into_bytes();
        body.extend_from_slice(b"\xe9\n");
        let c = translate_commit(&OBJ, &body, commit_memo(), &key).unwrap();
        assert_eq!(c.tree, Id([1; 32]));
        assert_eq!(c.parents, [Id([9; 32])]);
        assert_eq!(c.author, Identity::opaque(&b" Weird<a@x>"[..]));
        assert_eq!(c.timestamp, 200, "the committer's time, not the author's");
        assert_eq!(c.message, b"caf\xe9\n");
        assert_eq!(c.message_hash, Id::ZERO);
        assert_eq!(
            c.content_digest,
            crate::mkit::id::flat_id(&frame(ObjectKind::Commit, &body))
        );
        assert_eq!(c.signer, key.public());
        assert_eq!(
            verify_object(&Object::Commit(c.clone())).unwrap(),
            Some(SignatureStatus::Valid)
        );
        // Deterministic.
        assert_eq!(
            translate_commit(&OBJ, &body, commit_memo(), &key).unwrap(),
            c
        );
        let unsigned = unsigned_commit(&OBJ, &body, key.public(), commit_memo()).unwrap();
        assert_eq!(unsigned.signature, [0; 64]);
        assert_eq!(
            Commit {
                signature: c.signature,
                ..unsigned
            },
            c
        );
    }

    #[test]
    fn commit_refusals_are_typed_and_ordered() {
        let key = KeyPair::from_seed(&[0x42; 32]);
        let run = |body: String| translate_commit(&OBJ, body.as_bytes(), commit_memo(), &key);
        assert_eq!(
            run(format!(
                "tree {T}\nauthor A <a> 5 +0000\ncommitter A <a> -5 +0000\n\nm"
            )),
            Err(Refusal::NegativeTimestamp {
                object: OBJ,
                kind: ObjectKind::Commit,
                timestamp: -5
            })
        );
        // A negative author time alone is fine: only the committer's is used.
        assert!(
            run(format!(
                "tree {T}\nauthor A <a> -5 +0000\ncommitter A <a> 5 +0000\n\nm"
            ))
            .is_ok()
        );
        assert_eq!(
            run(format!(
                "tree {T}\nauthor  5 +0000\ncommitter A <a> 5 +0000\n\nm"
            )),
            Err(Refusal::AuthorPayload {
                object: OBJ,
                kind: ObjectKind::Commit,
                len: 0
            })
        );
        let long = "n".repeat(4092); // "<long> <a>" is 4096 bytes
        assert!(
            run(format!(
                "tree {T}\nauthor {long} <a> 5 +0000\ncommitter A <a> 5 +0000\n\nm"
            ))
            .is_ok()
        );
        let longer = "n".repeat(4093);
        assert_eq!(
            run(format!(
                "tree {T}\nauthor {longer} <a> 5 +0000\ncommitter A <a> 5 +0000\n\nm"
            ))
            .unwrap_err()
            .name(),
            "AuthorPayload"
        );
        assert_eq!(
            run(format!(
                "tree {T}\nauthor A <a>\ncommitter A <a> 5 +0000\n\nm"
            )),
            Err(Refusal::Unparsable {
                object: OBJ,
                kind: ObjectKind::Commit,
                error: ParseError::PersonTimestamp("author")
            })
        );
        let many: String = (0..1001).map(|_| format!("parent {}\n", sha(1))).collect();
        assert_eq!(
            run(format!(
                "tree {T}\n{many}author A <a> 5 +0000\ncommitter A <a> 5 +0000\n\nm"
            )),
            Err(Refusal::TooManyParents {
                object: OBJ,
                count: 1001
            })
        );
        let thousand: String = (0..1000).map(|_| format!("parent {}\n", sha(1))).collect();
        assert!(
            run(format!(
                "tree {T}\n{thousand}author A <a> 5 +0000\ncommitter A <a> 5 +0000\n\nm"
            ))
            .is_ok()
        );
        // Negative time is checked before the parent count and the author.
        assert_eq!(
            run(format!(
                "tree {T}\n{many}author  5 +0000\ncommitter A <a> -1 +0000\n\nm"
            ))
            .unwrap_err()
            .name(),
            "NegativeTimestamp"
        );
        // Then the tree, then each parent, must be known.
        assert_eq!(
            run(format!(
                "tree {}\nparent {}\nauthor A <a> 5 +0000\ncommitter A <a> 5 +0000\n\nm",
                sha(3),
                sha(4)
            )),
            Err(Refusal::MissingObject { object: sha(3) })
        );
        assert_eq!(
            run(format!(
                "tree {T}\nparent {}\nauthor A <a> 5 +0000\ncommitter A <a> 5 +0000\n\nm",
                sha(4)
            )),
            Err(Refusal::MissingObject { object: sha(4) })
        );
    }

    fn tag_memo() -> impl FnMut(&Sha1) -> Option<Translated> + use<> {
        memo(&[
            (
                sha(1),
                Translated {
                    id: Id([1; 32]),
                    kind: ObjectType::Commit,
                    depth: 0,
                },
            ),
            (
                sha(2),
                Translated {
                    id: Id([2; 32]),
                    kind: ObjectType::ChunkedBlob,
                    depth: 0,
                },
            ),
            (
                sha(3),
                Translated {
                    id: Id([3; 32]),
                    kind: ObjectType::Tag,
                    depth: 15,
                },
            ),
            (
                sha(4),
                Translated {
                    id: Id([4; 32]),
                    kind: ObjectType::Tag,
                    depth: 16,
                },
            ),
        ])
    }

    #[test]
    fn tag_translation_and_refusals() {
        let key = KeyPair::from_seed(&[0x42; 32]);
        let run = |body: String| translate_tag(&OBJ, body.as_bytes(), tag_memo(), &key);
        let t = run(format!(
            "object {}\ntype commit\ntag v1.0\ntagger T <t> 7 +0200\n\nmsg\n",
            sha(1)
        ))
        .unwrap();
        assert_eq!(t.chain, 1);
        assert_eq!(t.tag.target, Id([1; 32]));
        assert_eq!(t.tag.target_type, ObjectType::Commit);
        assert_eq!(t.tag.name, b"v1.0");
        assert_eq!(t.tag.tagger, Identity::opaque(&b"T <t>"[..]));
        assert_eq!(t.tag.timestamp, 7);
        assert_eq!(t.tag.message, b"msg\n");
        assert_eq!(
            verify_object(&Object::Tag(t.tag.clone())).unwrap(),
            Some(SignatureStatus::Valid)
        );

        // Tagger-less: the pinned sentinel at time 0.
        let t = run(format!("object {}\ntype commit\ntag old\n\n", sha(1))).unwrap();
        assert_eq!(t.tag.tagger, Identity::opaque(NO_TAGGER));
        assert_eq!(t.tag.timestamp, 0);

        // A declared blob over 1 MiB is a chunked blob in mkit.
        let t = run(format!("object {}\ntype blob\ntag big\n\n", sha(2))).unwrap();
        assert_eq!(t.tag.target_type, ObjectType::ChunkedBlob);

        // Chains: 16 tags are fine, 17 are not.
        let t = run(format!("object {}\ntype tag\ntag c16\n\n", sha(3))).unwrap();
        assert_eq!(t.chain, 16);
        assert_eq!(
            run(format!("object {}\ntype tag\ntag c17\n\n", sha(4))),
            Err(Refusal::TagChain {
                object: OBJ,
                length: 17
            })
        );

        assert_eq!(
            run(format!(
                "object {}\ntype commit\ntag v1.0+build\n\n",
                sha(1)
            )),
            Err(Refusal::TagName {
                object: OBJ,
                name: b"v1.0+build".to_vec(),
                rule: TagNameRule::Charset
            })
        );
        assert_eq!(
            run(format!("object {}\ntype tree\ntag t\n\n", sha(1))),
            Err(Refusal::TagTarget {
                object: OBJ,
                declared: b"tree".to_vec(),
                found: ObjectType::Commit
            })
        );
        assert_eq!(
            run(format!("object {}\ntype note\ntag t\n\n", sha(1)))
                .unwrap_err()
                .name(),
            "TagTarget"
        );
        assert_eq!(
            run(format!(
                "object {}\ntype commit\ntag t\ntagger T <t> -1 +0000\n\n",
                sha(1)
            )),
            Err(Refusal::NegativeTimestamp {
                object: OBJ,
                kind: ObjectKind::Tag,
                timestamp: -1
            })
        );
        assert_eq!(
            run(format!(
                "object {}\ntype commit\ntag t\ntagger  1 +0000\n\n",
                sha(1)
            ))
            .unwrap_err()
            .name(),
            "AuthorPayload"
        );
        assert_eq!(
            run(format!("object {}\ntype commit\ntag t\n\n", sha(7))),
            Err(Refusal::MissingObject { object: sha(7) })
        );
        // The name is checked before the target is looked up.
        assert_eq!(
            run(format!("object {}\ntype commit\ntag a/b\n\n", sha(7)))
                .unwrap_err()
                .name(),
            "TagName"
        );
        assert_eq!(
            run("object x\ntype commit\ntag t\n\n".into())
                .unwrap_err()
                .name(),
            "Unparsable"
        );
    }

    #[test]
    fn tag_name_grammar() {
        for ok in [
            "v1.0.0",
            "a",
            "release_2-rc.1",
            "x.lockx",
            "HEADS",
            &"v".repeat(4096),
        ] {
            assert_eq!(check_tag_name(ok.as_bytes()), Ok(()), "{ok}");
        }
        use TagNameRule::*;
        let bad: &[(&[u8], TagNameRule)] = &[
            (b"", Empty),
            (b"v1.0+build", Charset),
            (b"with space", Charset),
            (b"no/slash", Charset),
            ("na\u{ef}ve".as_bytes(), Charset),
            (b"\xff", Charset),
            (b".", DotOrDotDot),
            (b"..", DotOrDotDot),
            (b"HEAD", Head),
            (b"v1.lock", LockSuffix),
            (b".hidden", LeadingDot),
            (b"trailing.", TrailingDot),
            (b"a..b", DoubleDot),
        ];
        for (name, rule) in bad {
            assert_eq!(check_tag_name(name), Err(*rule), "{}", name.escape_ascii());
        }
        assert_eq!(check_tag_name("v".repeat(4097).as_bytes()), Err(TooLong));
    }

    #[test]
    fn ref_mapping() {
        let branch = |b: &str| {
            Some(RefMapping::Branch {
                branch: b.into(),
                mkit_ref: format!("refs/remotes/origin/{b}"),
            })
        };
        let tag = |t: &str| {
            Some(RefMapping::Tag {
                tag: t.into(),
                mkit_ref: format!("refs/tags/{t}"),
            })
        };
        assert_eq!(map_ref("origin", b"refs/heads/main"), Ok(branch("main")));
        assert_eq!(
            map_ref("origin", b"refs/heads/feature/x.y"),
            Ok(branch("feature/x.y"))
        );
        assert_eq!(map_ref("origin", b"refs/tags/v1.0"), Ok(tag("v1.0")));
        assert_eq!(map_ref("origin", b"refs/tags/rel/v1"), Ok(tag("rel/v1")));
        // Namespaces 0.5.0 never lists are not imported and not reported.
        for other in [
            &b"HEAD"[..],
            b"refs/pull/1/head",
            b"refs/notes/commits",
            b"refs/remotes/origin/main",
            b"refs/replace/abc",
            b"refs/headsx/main",
        ] {
            assert_eq!(map_ref("origin", other), Ok(None));
        }
        for bad in [
            &b"refs/heads/"[..],
            b"refs/heads/a b",
            b"refs/heads/a@{1}",
            b"refs/heads/x+y",
            b"refs/heads/.hidden",
            b"refs/heads/topic.lock",
            b"refs/heads/x/HEAD",
            b"refs/heads/caf\xc3\xa9",
            b"refs/heads/\xff",
            b"refs/tags/v1.0+build",
            b"refs/tags/a//b",
        ] {
            let r = map_ref("origin", bad).unwrap_err();
            assert_eq!(r.name(), "RefName", "{}", bad.escape_ascii());
        }
        // A tag name may be 502 bytes, a branch 512.
        let t502 = format!("refs/tags/{}", "t".repeat(502));
        assert!(map_ref("o", t502.as_bytes()).unwrap().is_some());
        let t503 = format!("refs/tags/{}", "t".repeat(503));
        assert_eq!(map_ref("o", t503.as_bytes()).unwrap_err().name(), "RefName");
        let b512 = format!("refs/heads/{}", "b".repeat(512));
        assert!(map_ref("o", b512.as_bytes()).unwrap().is_some());
        let b513 = format!("refs/heads/{}", "b".repeat(513));
        assert_eq!(map_ref("o", b513.as_bytes()).unwrap_err().name(), "RefName");
        assert_eq!(
            map_ref("origin", b"refs/heads/main")
                .unwrap()
                .unwrap()
                .mkit_ref(),
            "refs/remotes/origin/main"
        );
    }
}
