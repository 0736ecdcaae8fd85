//! Typed refusals: the git history import deliberately does not translate.
//!
//! A refusal is not a failure of the run. It marks one upstream object (or
//! ref name) that the v1 mapping of SPEC-GIT-IMPORT cannot carry into mkit
//! without altering it; every ref whose closure holds that object is skipped
//! with the refusal as its reason, and the other refs import normally. Only
//! [`Refusal::Sha256Upstream`] stops the whole import ([`Refusal::scope`]).
//!
//! Every message is lower case, cites the spec section that requires the
//! refusal, and says what the user can do. [`Refusal::name`] gives the
//! variant as a stable token; where mkit-git-bridge 0.5.0 has the same
//! refusal the token is its variant name, so the `REFUSALS.txt` golden
//! vectors compare directly.

use std::collections::HashMap;
use std::sync::Arc;

use crate::git::parse::ParseError;
use crate::git::{ObjectKind, Sha1};
use crate::mkit::object::{EntryMode, NameRule, ObjectError, ObjectType};
use crate::text::quoted;

mod record;

pub use record::Record;

/// Whether a refusal skips one ref or stops the whole import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Skip every ref whose closure holds the refused object; import the rest.
    Ref,
    /// Nothing can be imported from this upstream.
    Import,
}

/// Which single-segment rule a tag object's name breaks (SPEC-GIT-BRIDGE
/// §7.1, applied to imports by SPEC-GIT-IMPORT §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagNameRule {
    /// Empty name.
    Empty,
    /// Longer than 4096 bytes.
    TooLong,
    /// A byte outside `[A-Za-z0-9._-]` (which also excludes `/` and non-UTF-8).
    Charset,
    /// Exactly `.` or `..`.
    DotOrDotDot,
    /// Exactly `HEAD`.
    Head,
    /// Ends in `.lock`.
    LockSuffix,
    /// Starts with `.`.
    LeadingDot,
    /// Ends with `.`.
    TrailingDot,
    /// Contains `..`.
    DoubleDot,
}

impl std::fmt::Display for TagNameRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TagNameRule::Empty => "it is empty",
            TagNameRule::TooLong => "it is longer than 4096 bytes",
            TagNameRule::Charset => "it holds a byte other than letters, digits, '.', '_' and '-'",
            TagNameRule::DotOrDotDot => "it is '.' or '..'",
            TagNameRule::Head => "'HEAD' is reserved",
            TagNameRule::LockSuffix => "it ends in '.lock'",
            TagNameRule::LeadingDot => "it starts with '.'",
            TagNameRule::TrailingDot => "it ends with '.'",
            TagNameRule::DoubleDot => "it contains '..'",
        })
    }
}

/// A translation the import refuses, naming the upstream object involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The upstream uses SHA-256 object ids.
    #[error(
        "the upstream is a sha-256 repository; git-import v1 reads sha-1 repositories only \
         (SPEC-GIT-IMPORT §1.3, §2). nothing was imported"
    )]
    Sha256Upstream,

    /// An upstream ref whose name is outside the mkit ref grammar.
    #[error(
        "upstream ref {} cannot be imported: {reason} (SPEC-GIT-IMPORT §3.5, SPEC-REFS §3); \
         rename it upstream to letters, digits, '.', '_', '-' and '/' segments",
        quoted(name)
    )]
    RefName {
        /// The upstream ref name as listed.
        name: Vec<u8>,
        /// Which grammar rule it breaks.
        reason: String,
    },

    /// An object the closure needs is not in the staging mirror.
    #[error(
        "git object {object} is missing from the staging mirror (SPEC-GIT-IMPORT §2); \
         fetch again, or exclude this ref"
    )]
    MissingObject {
        /// The missing object.
        object: Sha1,
    },

    /// An object git cannot read back intact (bad zlib, wrong id, sha-1
    /// collision pattern...).
    #[error(
        "git object {object} is corrupt ({detail}) (SPEC-GIT-IMPORT §2); run `git fsck` in \
         the staging mirror, or delete the mirror to fetch it again"
    )]
    CorruptObject {
        /// The object.
        object: Sha1,
        /// What is wrong with it.
        detail: String,
    },

    /// An object over the 1 GiB per-object cap.
    #[error(
        "git {kind} {object} is {size} bytes, over the 1 GiB cap (SPEC-GIT-IMPORT §3.1); \
         remove it from history upstream (e.g. git filter-repo), or exclude this ref"
    )]
    BlobTooLarge {
        /// The object.
        object: Sha1,
        /// Its kind (0.5.0 applies the cap to every kind, under this name).
        kind: ObjectKind,
        /// Its size in bytes.
        size: u64,
    },

    /// A commit, tag or tree body that does not parse.
    #[error(
        "git {kind} {object} is structurally unparsable: {error} (SPEC-GIT-IMPORT §2, §3.2); \
         it is refused rather than guessed at; repair it upstream, or exclude this ref"
    )]
    Unparsable {
        /// The object.
        object: Sha1,
        /// Its kind.
        kind: ObjectKind,
        /// What the parser found.
        error: ParseError,
    },

    /// A submodule entry (mode 160000).
    #[error(
        "git tree {object} has a submodule (gitlink) at {}; submodules are out of scope \
         (SPEC-GIT-IMPORT §3.3): vendor the submodule, or exclude this ref",
        quoted(name)
    )]
    Gitlink {
        /// The tree.
        object: Sha1,
        /// The entry name.
        name: Vec<u8>,
    },

    /// An entry name mkit cannot store.
    #[error(
        "git tree {object} has entry {} which mkit cannot store: {rule} (SPEC-OBJECTS §4.1, \
         SPEC-GIT-IMPORT §3.3); rename it upstream, or exclude this ref",
        quoted(name)
    )]
    TreeEntryName {
        /// The tree.
        object: Sha1,
        /// The entry name.
        name: Vec<u8>,
        /// The rule it breaks.
        rule: NameRule,
    },

    /// A mode outside the pinned table.
    #[error(
        "git tree {object} gives entry {} mode {}, which the import mapping does not cover \
         (SPEC-GIT-IMPORT §3.3); fix the mode upstream (git fsck reports it), or exclude this ref",
        quoted(name),
        mode.escape_ascii()
    )]
    UnknownTreeMode {
        /// The tree.
        object: Sha1,
        /// The entry name.
        name: Vec<u8>,
        /// The mode digits as written.
        mode: Vec<u8>,
    },

    /// A historic mode spelling in a fork-direction state.
    #[error(
        "git tree {object} gives entry {} the historic mode {}, which would be normalized; a \
         fork-mode state cannot normalize, because the tree could not reproduce its sha-1 \
         (SPEC-GIT-IMPORT §3.3); import under a plain import state, or exclude this ref",
        quoted(name),
        mode.escape_ascii()
    )]
    NormalizedModeInFork {
        /// The tree.
        object: Sha1,
        /// The entry name.
        name: Vec<u8>,
        /// The mode digits as written.
        mode: Vec<u8>,
    },

    /// An entry whose mode promises one kind and whose object is another.
    #[error(
        "git tree {object} entry {} has a {} mode but names a {} (SPEC-GIT-IMPORT §3.3); \
         repair the tree upstream (git fsck reports it), or exclude this ref",
        quoted(name),
        mode_name(*mode),
        found.name()
    )]
    TreeEntryKind {
        /// The tree.
        object: Sha1,
        /// The entry name.
        name: Vec<u8>,
        /// The mkit mode the git mode maps to.
        mode: EntryMode,
        /// What the entry's object translated to.
        found: ObjectType,
    },

    /// Two entries whose names are equal in mkit order (a file and a
    /// directory of one name).
    #[error(
        "git tree {object} has two entries named {} (a file and a directory?), which one mkit \
         tree cannot hold (SPEC-GIT-IMPORT §3.3); rename one upstream, or exclude this ref",
        quoted(name)
    )]
    DuplicateTreeEntry {
        /// The tree.
        object: Sha1,
        /// The repeated name.
        name: Vec<u8>,
    },

    /// A tree with more entries than an mkit reader accepts.
    #[error(
        "git tree {object} has {count} entries, more than the 1000000 an mkit tree may hold \
         (SPEC-OBJECTS §4, SPEC-GIT-IMPORT §3.3); split the directory upstream, or exclude this ref"
    )]
    TooManyTreeEntries {
        /// The tree.
        object: Sha1,
        /// Its entry count.
        count: usize,
    },

    /// Trees nested deeper than 128 levels.
    #[error(
        "git tree {object} nests {depth} levels of directories, more than 128 \
         (SPEC-GIT-IMPORT §3.3); flatten the nesting upstream, or exclude this ref"
    )]
    TreeTooDeep {
        /// The tree.
        object: Sha1,
        /// Its height (1 for a tree without subtrees).
        depth: usize,
    },

    /// A pre-1970 committer or tagger timestamp.
    #[error(
        "git {kind} {object} has the pre-1970 timestamp {timestamp}; mkit timestamps are \
         unsigned (SPEC-GIT-IMPORT §3.2, §3.4); rewrite that history upstream, or exclude this ref"
    )]
    NegativeTimestamp {
        /// The commit or tag.
        object: Sha1,
        /// Which of the two.
        kind: ObjectKind,
        /// The timestamp as written.
        timestamp: i64,
    },

    /// More parents than an mkit commit may name.
    #[error(
        "git commit {object} has {count} parents, more than 1000 (SPEC-GIT-IMPORT §3.2); \
         exclude this ref"
    )]
    TooManyParents {
        /// The commit.
        object: Sha1,
        /// Its parent count.
        count: usize,
    },

    /// An author or tagger identity slice that is empty or over 4096 bytes.
    #[error(
        "git {kind} {object} has an author or tagger identity of {len} bytes; an mkit identity \
         holds 1 to 4096 (SPEC-GIT-IMPORT §3.2); fix the person line upstream, or exclude this ref"
    )]
    AuthorPayload {
        /// The commit or tag.
        object: Sha1,
        /// Which of the two.
        kind: ObjectKind,
        /// The identity slice's length.
        len: usize,
    },

    /// A tag object whose name is not a single mkit ref segment.
    #[error(
        "git tag {object} is named {}: {rule} (SPEC-GIT-BRIDGE §7.1, SPEC-GIT-IMPORT §3.4); \
         re-tag upstream with a name of letters, digits, '.', '_' and '-', or exclude this ref",
        quoted(name)
    )]
    TagName {
        /// The tag object.
        object: Sha1,
        /// Its name.
        name: Vec<u8>,
        /// The rule the name breaks.
        rule: TagNameRule,
    },

    /// A tag whose `type` is unknown or disagrees with what its target is.
    #[error(
        "git tag {object} declares a target of type {} but the target is a {} \
         (SPEC-GIT-IMPORT §3.4); re-create the tag upstream, or exclude this ref",
        quoted(declared),
        found.name()
    )]
    TagTarget {
        /// The tag object.
        object: Sha1,
        /// The `type` header as written.
        declared: Vec<u8>,
        /// What the target translated to.
        found: ObjectType,
    },

    /// A chain of tags pointing at tags, longer than 16.
    #[error(
        "git tag {object} heads a chain of {length} tags, more than 16 (SPEC-GIT-IMPORT §3.4); \
         point the tag at its final target upstream, or exclude this ref"
    )]
    TagChain {
        /// The outermost tag.
        object: Sha1,
        /// The chain's length (1 for a tag of a non-tag).
        length: usize,
    },

    /// A translated value that mkit cannot encode.
    #[error(
        "git {kind} {object} translates to an object mkit cannot encode: {error} \
         (SPEC-OBJECTS, SPEC-GIT-IMPORT §3); exclude this ref"
    )]
    Unrepresentable {
        /// The object.
        object: Sha1,
        /// Its kind.
        kind: ObjectKind,
        /// What the encoder refused.
        error: ObjectError,
    },
}

impl From<crate::git::source::ReadError> for Refusal {
    /// An object the mirror cannot give back intact refuses the refs that
    /// need it.
    fn from(e: crate::git::source::ReadError) -> Refusal {
        use crate::git::source::ReadError;
        match e {
            ReadError::Missing { object } => Refusal::MissingObject { object },
            ReadError::Corrupt { object, detail } => Refusal::CorruptObject { object, detail },
            ReadError::TooLarge {
                object, kind, size, ..
            } => Refusal::BlobTooLarge { object, kind, size },
        }
    }
}

impl Refusal {
    /// The variant as a stable token (0.5.0's variant name where it has one).
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::Sha256Upstream => "Sha256Upstream",
            Refusal::RefName { .. } => "RefName",
            Refusal::MissingObject { .. } => "MissingObject",
            Refusal::CorruptObject { .. } => "CorruptObject",
            Refusal::BlobTooLarge { .. } => "BlobTooLarge",
            Refusal::Unparsable { .. } => "Unparsable",
            Refusal::Gitlink { .. } => "Gitlink",
            Refusal::TreeEntryName { .. } => "TreeEntryName",
            Refusal::UnknownTreeMode { .. } => "UnknownTreeMode",
            Refusal::NormalizedModeInFork { .. } => "NormalizedModeInFork",
            Refusal::TreeEntryKind { .. } => "TreeEntryKind",
            Refusal::DuplicateTreeEntry { .. } => "DuplicateTreeEntry",
            Refusal::TooManyTreeEntries { .. } => "TooManyTreeEntries",
            Refusal::TreeTooDeep { .. } => "TreeTooDeep",
            Refusal::NegativeTimestamp { .. } => "NegativeTimestamp",
            Refusal::TooManyParents { .. } => "TooManyParents",
            Refusal::AuthorPayload { .. } => "AuthorPayload",
            Refusal::TagName { .. } => "TagName",
            Refusal::TagTarget { .. } => "TagTarget",
            Refusal::TagChain { .. } => "TagChain",
            Refusal::Unrepresentable { .. } => "Unrepresentable",
        }
    }

    /// The spec sections that require this refusal, as its message cites
    /// them (the refusal report shows them next to the rule).
    pub fn spec(&self) -> &'static str {
        match self {
            Refusal::Sha256Upstream => "SPEC-GIT-IMPORT §1.3, §2",
            Refusal::RefName { .. } => "SPEC-GIT-IMPORT §3.5, SPEC-REFS §3",
            Refusal::MissingObject { .. } | Refusal::CorruptObject { .. } => "SPEC-GIT-IMPORT §2",
            Refusal::BlobTooLarge { .. } => "SPEC-GIT-IMPORT §3.1",
            Refusal::Unparsable { .. } => "SPEC-GIT-IMPORT §2, §3.2",
            Refusal::TreeEntryName { .. } => "SPEC-OBJECTS §4.1, SPEC-GIT-IMPORT §3.3",
            Refusal::TooManyTreeEntries { .. } => "SPEC-OBJECTS §4, SPEC-GIT-IMPORT §3.3",
            Refusal::Gitlink { .. }
            | Refusal::UnknownTreeMode { .. }
            | Refusal::NormalizedModeInFork { .. }
            | Refusal::TreeEntryKind { .. }
            | Refusal::DuplicateTreeEntry { .. }
            | Refusal::TreeTooDeep { .. } => "SPEC-GIT-IMPORT §3.3",
            Refusal::NegativeTimestamp { .. } => "SPEC-GIT-IMPORT §3.2, §3.4",
            Refusal::TooManyParents { .. } | Refusal::AuthorPayload { .. } => {
                "SPEC-GIT-IMPORT §3.2"
            }
            Refusal::TagName { .. } => "SPEC-GIT-BRIDGE §7.1, SPEC-GIT-IMPORT §3.4",
            Refusal::TagTarget { .. } | Refusal::TagChain { .. } => "SPEC-GIT-IMPORT §3.4",
            Refusal::Unrepresentable { .. } => "SPEC-OBJECTS, SPEC-GIT-IMPORT §3",
        }
    }

    /// What is refused, in a few words and without object ids (the refusal
    /// report names the path and the commit next to it).
    pub fn summary(&self) -> String {
        match self {
            Refusal::Sha256Upstream => "a sha-256 upstream".to_owned(),
            Refusal::RefName { reason, .. } => {
                format!("a ref name outside the mkit ref grammar ({reason})")
            }
            Refusal::MissingObject { .. } => "an object missing from the staging mirror".to_owned(),
            Refusal::CorruptObject { detail, .. } => format!("a corrupt object ({detail})"),
            Refusal::BlobTooLarge { kind, size, .. } => {
                format!("a {kind} of {size} bytes, over the 1 GiB cap")
            }
            Refusal::Unparsable { kind, error, .. } => format!("an unparsable {kind} ({error})"),
            Refusal::Gitlink { .. } => "a submodule (gitlink, mode 160000)".to_owned(),
            Refusal::TreeEntryName { rule, .. } => format!("a name mkit cannot store ({rule})"),
            Refusal::UnknownTreeMode { mode, .. } => format!(
                "mode {}, which the import mapping does not cover",
                mode.escape_ascii()
            ),
            Refusal::NormalizedModeInFork { mode, .. } => format!(
                "the historic mode {}, which a fork-mode state cannot normalize",
                mode.escape_ascii()
            ),
            Refusal::TreeEntryKind { mode, found, .. } => {
                format!("a {} entry that names a {}", mode_name(*mode), found.name())
            }
            Refusal::DuplicateTreeEntry { .. } => {
                "two entries of this name (a file and a directory)".to_owned()
            }
            Refusal::TooManyTreeEntries { count, .. } => {
                format!("a directory of {count} entries, over 1000000")
            }
            Refusal::TreeTooDeep { depth, .. } => {
                format!("{depth} levels of nested directories, over 128")
            }
            Refusal::NegativeTimestamp {
                kind, timestamp, ..
            } => format!("a {kind} with the pre-1970 timestamp {timestamp}"),
            Refusal::TooManyParents { count, .. } => {
                format!("a commit with {count} parents, over 1000")
            }
            Refusal::AuthorPayload { kind, len, .. } => format!(
                "a {kind} whose author or tagger identity is {len} bytes (1 to 4096 allowed)"
            ),
            Refusal::TagName { name, rule, .. } => {
                format!("a tag object named {}: {rule}", quoted(name))
            }
            Refusal::TagTarget {
                declared, found, ..
            } => format!(
                "a tag that declares a {} target but names a {}",
                quoted(declared),
                found.name()
            ),
            Refusal::TagChain { length, .. } => {
                format!("a chain of {length} tags, over 16")
            }
            Refusal::Unrepresentable { kind, error, .. } => {
                format!("a {kind} mkit cannot encode ({error})")
            }
        }
    }

    /// The entry name a tree refusal is about, when it names one.
    pub fn entry_name(&self) -> Option<&[u8]> {
        match self {
            Refusal::Gitlink { name, .. }
            | Refusal::TreeEntryName { name, .. }
            | Refusal::UnknownTreeMode { name, .. }
            | Refusal::NormalizedModeInFork { name, .. }
            | Refusal::TreeEntryKind { name, .. }
            | Refusal::DuplicateTreeEntry { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether this skips refs or stops the import.
    pub fn scope(&self) -> Scope {
        match self {
            Refusal::Sha256Upstream => Scope::Import,
            _ => Scope::Ref,
        }
    }

    /// The upstream object refused, when the refusal is about one.
    pub fn object(&self) -> Option<Sha1> {
        match self {
            Refusal::Sha256Upstream | Refusal::RefName { .. } => None,
            Refusal::MissingObject { object }
            | Refusal::CorruptObject { object, .. }
            | Refusal::BlobTooLarge { object, .. }
            | Refusal::Unparsable { object, .. }
            | Refusal::Gitlink { object, .. }
            | Refusal::TreeEntryName { object, .. }
            | Refusal::UnknownTreeMode { object, .. }
            | Refusal::NormalizedModeInFork { object, .. }
            | Refusal::TreeEntryKind { object, .. }
            | Refusal::DuplicateTreeEntry { object, .. }
            | Refusal::TooManyTreeEntries { object, .. }
            | Refusal::TreeTooDeep { object, .. }
            | Refusal::NegativeTimestamp { object, .. }
            | Refusal::TooManyParents { object, .. }
            | Refusal::AuthorPayload { object, .. }
            | Refusal::TagName { object, .. }
            | Refusal::TagTarget { object, .. }
            | Refusal::TagChain { object, .. }
            | Refusal::Unrepresentable { object, .. } => Some(*object),
        }
    }
}

fn mode_name(mode: EntryMode) -> &'static str {
    match mode {
        EntryMode::Blob => "file",
        EntryMode::Tree => "directory",
        EntryMode::Symlink => "symlink",
        EntryMode::Executable => "executable",
    }
}

/// The refusal recorded for each refused object of a run.
///
/// A refusal spreads upward: the tree that holds a refused entry, every tree
/// above it and every commit that reaches it are refused with that same
/// refusal (git.git's history holds about 100,000 such objects for two
/// causes). The table keeps each distinct refusal once and lets objects
/// share it, so an entry costs an id and a pointer, not a copy of the
/// refusal and its text.
#[derive(Debug, Clone, Default)]
pub struct Refusals {
    by_object: HashMap<Sha1, Arc<Refusal>>,
}

impl Refusals {
    /// An empty table.
    pub fn new() -> Refusals {
        Refusals::default()
    }

    /// The refusal recorded for `object`.
    pub fn get(&self, object: &Sha1) -> Option<&Refusal> {
        self.by_object.get(object).map(|r| &**r)
    }

    /// Whether `object` is refused.
    pub fn contains_key(&self, object: &Sha1) -> bool {
        self.by_object.contains_key(object)
    }

    /// Record `refusal` for `object`, replacing any earlier one.
    pub fn insert(&mut self, object: Sha1, refusal: Refusal) {
        self.by_object.insert(object, Arc::new(refusal));
    }

    /// Record `refusal` for `object` unless one is recorded already.
    pub fn insert_if_absent(&mut self, object: Sha1, refusal: &Refusal) {
        self.by_object
            .entry(object)
            .or_insert_with(|| Arc::new(refusal.clone()));
    }

    /// Record for `object` the refusal recorded for `from`, shared; false
    /// (and nothing recorded) when `from` has none.
    pub fn share(&mut self, object: Sha1, from: &Sha1) -> bool {
        match self.by_object.get(from) {
            Some(r) => {
                let r = Arc::clone(r);
                self.by_object.insert(object, r);
                true
            }
            None => false,
        }
    }

    /// Add every entry of `other` whose object has none here.
    pub fn absorb(&mut self, other: Refusals) {
        for (object, refusal) in other.by_object {
            self.by_object.entry(object).or_insert(refusal);
        }
    }

    /// Forget every refusal.
    pub fn clear(&mut self) {
        self.by_object.clear();
    }

    /// How many objects are refused.
    pub fn len(&self) -> usize {
        self.by_object.len()
    }

    /// Whether no object is refused.
    pub fn is_empty(&self) -> bool {
        self.by_object.is_empty()
    }
}

impl std::ops::Index<&Sha1> for Refusals {
    type Output = Refusal;

    /// The refusal recorded for `object`; panics when there is none (callers
    /// index only objects they found refused).
    fn index(&self, object: &Sha1) -> &Refusal {
        self.get(object)
            .unwrap_or_else(|| panic!("no refusal is recorded for {object}"))
    }
}

impl FromIterator<(Sha1, Refusal)> for Refusals {
    fn from_iter<I: IntoIterator<Item = (Sha1, Refusal)>>(iter: I) -> Refusals {
        Refusals {
            by_object: iter.into_iter().map(|(o, r)| (o, Arc::new(r))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_share_one_copy_and_keep_the_first() {
        let (a, b, c, d) = (Sha1([1; 20]), Sha1([2; 20]), Sha1([3; 20]), Sha1([4; 20]));
        let gitlink = Refusal::Gitlink {
            object: a,
            name: b"sub".to_vec(),
        };
        let mut t = Refusals::new();
        assert!(t.is_empty());
        t.insert(a, gitlink.clone());
        // `b` takes `a`'s refusal, the same allocation, not a copy.
        assert!(t.share(b, &a));
        assert_eq!(t.get(&b), Some(&gitlink));
        assert!(std::ptr::eq(t.get(&a).unwrap(), t.get(&b).unwrap()));
        // Nothing to share from: nothing recorded.
        assert!(!t.share(c, &d));
        assert!(!t.contains_key(&c));
        // The first refusal stays.
        let missing = Refusal::MissingObject { object: d };
        t.insert_if_absent(a, &missing);
        assert_eq!(t[&a], gitlink);
        t.insert_if_absent(c, &missing);
        assert_eq!(t.get(&c), Some(&missing));
        // Absorbing another table adds only what is new.
        let other: Refusals = [(a, missing.clone()), (d, missing.clone())]
            .into_iter()
            .collect();
        t.absorb(other);
        assert_eq!((t.len(), &t[&a], &t[&d]), (4, &gitlink, &missing));
        t.clear();
        assert!(t.is_empty() && t.get(&a).is_none());
    }

    /// One refusal of every kind, each about `o` (the list this module's
    /// message test and the record round trip in `record.rs` share).
    pub(super) fn one_of_each(o: Sha1) -> Vec<Refusal> {
        vec![
            Refusal::Sha256Upstream,
            Refusal::RefName {
                name: b"refs/heads/a b".to_vec(),
                reason: "byte 0x20".into(),
            },
            Refusal::MissingObject { object: o },
            Refusal::CorruptObject {
                object: o,
                detail: "bad zlib".into(),
            },
            Refusal::BlobTooLarge {
                object: o,
                kind: ObjectKind::Blob,
                size: 1 << 31,
            },
            Refusal::Unparsable {
                object: o,
                kind: ObjectKind::Commit,
                error: ParseError::MissingHeader("tree"),
            },
            Refusal::Gitlink {
                object: o,
                name: b"sub\xff".to_vec(),
            },
            Refusal::TreeEntryName {
                object: o,
                name: b"aux.c".to_vec(),
                rule: NameRule::WindowsDevice,
            },
            Refusal::UnknownTreeMode {
                object: o,
                name: b"x".to_vec(),
                mode: b"100777".to_vec(),
            },
            Refusal::NormalizedModeInFork {
                object: o,
                name: b"x".to_vec(),
                mode: b"100664".to_vec(),
            },
            Refusal::TreeEntryKind {
                object: o,
                name: b"x".to_vec(),
                mode: EntryMode::Blob,
                found: ObjectType::Tree,
            },
            Refusal::DuplicateTreeEntry {
                object: o,
                name: b"x".to_vec(),
            },
            Refusal::TooManyTreeEntries {
                object: o,
                count: 1_000_001,
            },
            Refusal::TreeTooDeep {
                object: o,
                depth: 129,
            },
            Refusal::NegativeTimestamp {
                object: o,
                kind: ObjectKind::Commit,
                timestamp: -5,
            },
            Refusal::TooManyParents {
                object: o,
                count: 1001,
            },
            Refusal::AuthorPayload {
                object: o,
                kind: ObjectKind::Tag,
                len: 0,
            },
            Refusal::TagName {
                object: o,
                name: b"v1.0+build".to_vec(),
                rule: TagNameRule::Charset,
            },
            Refusal::TagTarget {
                object: o,
                declared: b"commit".to_vec(),
                found: ObjectType::Blob,
            },
            Refusal::TagChain {
                object: o,
                length: 17,
            },
            Refusal::Unrepresentable {
                object: o,
                kind: ObjectKind::Tag,
                error: ObjectError::TooManyParents(1),
            },
        ]
    }

    #[test]
    fn messages_are_lower_case_cite_a_spec_and_name_a_remedy() {
        let o = Sha1([0xab; 20]);
        let all = one_of_each(o);
        for r in &all {
            let msg = r.to_string();
            let first = msg.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{msg}");
            assert!(msg.contains("SPEC-"), "{msg}");
            assert!(
                msg.contains("exclude this ref")
                    || msg.contains("rename it upstream")
                    || msg.contains("fetch it again")
                    || matches!(r, Refusal::Sha256Upstream),
                "{msg}"
            );
            assert_eq!(r.scope() == Scope::Import, r.name() == "Sha256Upstream");
            assert!(
                msg.contains(&format!("({}", r.spec())),
                "{msg} cites {}",
                r.spec()
            );
            let summary = r.summary();
            assert!(!summary.contains(&o.to_hex()), "{summary} names no object");
            assert!(!summary.chars().next().unwrap().is_uppercase(), "{summary}");
            assert_eq!(
                r.object().is_some(),
                !matches!(r, Refusal::Sha256Upstream | Refusal::RefName { .. })
            );
        }
        assert!(
            all[6]
                .to_string()
                .contains("vendor the submodule, or exclude this ref")
        );
        assert!(all[7].to_string().contains("\"aux.c\""));
        assert_eq!(
            quoted(b"a\nb\xff"),
            "\"a\\nb\\xff\"",
            "names are shown escaped"
        );
    }
}
