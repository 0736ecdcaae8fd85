//! Root causes of refused refs, for the refusal report.
//!
//! A refusal is recorded on the object whose own translation failed (a tree
//! with a submodule entry, a commit with a pre-1970 date...) and every tree,
//! commit and tag above it reports that same refusal ([`Refusal`] values are
//! cloned upwards unchanged). One upstream file can therefore refuse hundreds
//! of refs, each with a message naming a different tree. This module groups
//! the skipped refs by what actually blocks them: it follows each ref's
//! refusal back down to where it arises and names
//!
//! - the **path** of the offending entry from the root tree
//!   (`deps/jemalloc/include/jemalloc/internal/prn.h`);
//! - the **introducing commit**: the earliest commit along the refused
//!   ancestry whose own tree holds the cause, that is, the first commit
//!   whose translation failed for its tree rather than inheriting the
//!   refusal from a parent. A commit whose tree holds the same rule for an
//!   entry of the same name at another path than a refused parent's (the
//!   entry was moved or copied, as redis moved `deps/jemalloc` to
//!   `deps/jemalloc.orig` with `prn.h` in it) continues the parent's cause,
//!   and the other path is listed as [`Cause::moved`];
//! - the **refs** it blocks.
//!
//! Nothing here changes which refs are refused or what they report: the
//! tracing only reads the refusals a run recorded and the upstream objects.
//! It is pure: objects come from a caller-supplied [`ObjectSource`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::bridge::refusal::{Refusal, Refusals};
use crate::git::parse::{CommitRef, TagRef, parse_tree};
use crate::git::{ObjectKind, Sha1};
use crate::mkit::Id;

mod json;

/// Reads upstream objects (kind and body) for the tracer.
pub trait ObjectSource {
    /// The object's kind and body, or `None` when it cannot be read.
    fn object(&self, sha: &Sha1) -> Option<(ObjectKind, Vec<u8>)>;
}

impl<F: Fn(&Sha1) -> Option<(ObjectKind, Vec<u8>)>> ObjectSource for F {
    fn object(&self, sha: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
        self(sha)
    }
}

/// What makes two skipped refs share a cause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CauseKey {
    /// One rule broken at one path of the upstream trees (whichever tree
    /// objects hold it over time): a submodule, a reserved name, a bad mode,
    /// an oversized file, a too-deep directory...
    Path {
        /// The refusal's name ([`Refusal::name`]).
        refusal: &'static str,
        /// The path from the root tree (empty for the root tree itself).
        path: Vec<u8>,
    },
    /// One object refused by itself: a commit or tag (a pre-1970 date, a
    /// bad tag name...), or a missing or corrupt object.
    Object {
        /// The refusal's name.
        refusal: &'static str,
        /// The object.
        object: Sha1,
    },
    /// A ref whose own name is refused.
    Ref {
        /// The upstream ref name.
        name: String,
    },
}

/// A commit that introduced a cause, and how many blocked refs reach the
/// cause through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introduction {
    /// The upstream commit.
    pub commit: Sha1,
    /// Blocked refs whose history reaches the cause through this commit.
    pub refs: usize,
    /// Its committer time (seconds since the epoch), when it parses.
    pub time: Option<i64>,
    /// The first line of its message (lossy UTF-8, at most 72 characters).
    pub subject: String,
}

impl Introduction {
    /// The committer date, `YYYY-MM-DD` in UTC, when the time parsed and is
    /// not before 1970.
    pub fn date(&self) -> Option<String> {
        let secs = u64::try_from(self.time?).ok()?;
        let (y, m, d) = crate::bridge::mbox::civil_date(secs / 86_400);
        Some(format!("{y:04}-{m:02}-{d:02}"))
    }
}

/// Another path a cause's entry was moved or copied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The path from the root tree.
    pub path: Vec<u8>,
    /// The commits that put it there (sorted).
    pub commits: Vec<Sha1>,
}

/// One root cause and the refs it blocks.
#[derive(Debug, Clone)]
pub struct Cause {
    /// What the refs share.
    pub key: CauseKey,
    /// The refusal reported for the first blocked ref (the others report the
    /// same rule, possibly naming another tree object).
    pub refusal: Refusal,
    /// The path of the offending entry from the root tree, when the cause
    /// lies in a tree (empty: the root tree itself).
    pub path: Option<Vec<u8>>,
    /// The commits that introduced it: most blocked refs first. Empty for a
    /// ref-name refusal, a refused tag, or a ref that points at a tree.
    pub introduced: Vec<Introduction>,
    /// Other paths the offending entry was moved or copied to in the
    /// blocked refs' history (the translation may report it there).
    pub moved: Vec<Moved>,
    /// The blocked upstream refs, in upstream order.
    pub blocked: Vec<String>,
    /// Set by the driver: an earlier run reported this cause with the same
    /// blocked refs and introducing commits (see [`Cause::fingerprint`]).
    pub reported: bool,
}

impl Cause {
    /// A stable id for the cause (BLAKE3 of its key), for the record of
    /// causes already reported.
    pub fn id(&self) -> Id {
        let mut h = blake3::Hasher::new();
        h.update(b"mkit-bridge refusal cause v1\0");
        match &self.key {
            CauseKey::Path { refusal, path } => {
                h.update(b"path\0");
                h.update(refusal.as_bytes());
                h.update(b"\0");
                h.update(path);
            }
            CauseKey::Object { refusal, object } => {
                h.update(b"object\0");
                h.update(refusal.as_bytes());
                h.update(b"\0");
                h.update(&object.0);
            }
            CauseKey::Ref { name } => {
                h.update(b"ref\0");
                h.update(name.as_bytes());
            }
        }
        Id(*h.finalize().as_bytes())
    }

    /// BLAKE3 of what a report of this cause says that can change between
    /// runs: the blocked refs (sorted) and the introducing commits.
    pub fn fingerprint(&self) -> Id {
        let mut h = blake3::Hasher::new();
        h.update(b"mkit-bridge refusal cause blocked v1\0");
        let mut names: Vec<&str> = self.blocked.iter().map(String::as_str).collect();
        names.sort_unstable();
        for n in names {
            h.update(n.as_bytes());
            h.update(b"\0");
        }
        let mut commits: Vec<Sha1> = self.introduced.iter().map(|i| i.commit).collect();
        commits.sort_unstable();
        for c in commits {
            h.update(&c.0);
        }
        Id(*h.finalize().as_bytes())
    }

    /// What to do about it, accurately for the kind of cause. (The spec
    /// sections are shown next to the rule, [`Refusal::spec`].)
    pub fn remedy(&self) -> String {
        let r = &self.refusal;
        let short = |s: &Sha1| s.to_hex()[..12].to_owned();
        let rewrite = "Other refs import normally; these need the upstream history rewritten \
                       (e.g. git filter-repo)";
        match (r, &self.key) {
            (Refusal::RefName { .. }, _) => "rename the ref upstream ('/'-separated segments of \
                 letters, digits, '.', '_' and '-'); its commits import through any other ref \
                 that reaches them"
                .to_owned(),
            (Refusal::MissingObject { object } | Refusal::CorruptObject { object, .. }, _) => {
                format!(
                    "the staging mirror lacks a sound copy of git object {}: fetch again; if \
                     that does not help, run `git fsck` in .mkit/git/<remote>/repo.git (or \
                     delete it to clone anew) and check that the upstream has the object",
                    short(object)
                )
            }
            (Refusal::NormalizedModeInFork { .. }, _) => "a fork-mode state cannot normalize \
                 historic modes (the tree could not keep its sha-1); import into a plain import \
                 state (another --remote-name), which normalizes them with a warning"
                .to_owned(),
            (
                Refusal::TagName { object, .. }
                | Refusal::TagTarget { object, .. }
                | Refusal::TagChain { object, .. },
                _,
            ) => tag_remedy(&short(object)),
            (
                Refusal::NegativeTimestamp { object, kind, .. }
                | Refusal::AuthorPayload { object, kind, .. }
                | Refusal::Unparsable { object, kind, .. },
                CauseKey::Object { .. },
            ) if *kind == ObjectKind::Tag => tag_remedy(&short(object)),
            (_, CauseKey::Object { object, .. }) => match self.introduced.first() {
                Some(i) if i.commit == *object => format!(
                    "commit {} itself cannot be imported under import-spec v1, so neither can \
                     any ref whose history reaches it; no later upstream commit changes that. \
                     {rewrite}",
                    short(object)
                ),
                Some(i) => format!(
                    "every ref whose history reaches commit {} is refused under import-spec v1, \
                     which refuses rather than rewrites; a later upstream commit does not help, \
                     as that commit stays in their history. {rewrite}",
                    short(&i.commit)
                ),
                None => format!(
                    "git object {} cannot be imported under import-spec v1; refs that reach it \
                     need the upstream history rewritten",
                    short(object)
                ),
            },
            (_, CauseKey::Path { .. }) => match self.introduced.first() {
                Some(_) => format!(
                    "every ref whose history reaches commit {} is refused under import-spec v1, \
                     which refuses rather than rewrites; renaming or deleting the entry in a \
                     later upstream commit does not help, as that commit stays in their \
                     history. {rewrite}",
                    self.introduced
                        .iter()
                        .take(3)
                        .map(|i| short(&i.commit))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                None => "the ref names a tree (not a commit) that holds the entry; point it \
                         elsewhere upstream"
                    .to_owned(),
            },
            (_, CauseKey::Ref { .. }) => "rename the ref upstream".to_owned(),
        }
    }
}

/// The remedy for a refused tag object.
fn tag_remedy(tag: &str) -> String {
    format!(
        "only refs naming tag object {tag} are refused: re-create the tag upstream (a new tag \
         object that passes the rule, or a lightweight tag); the commits it points to import \
         through other refs"
    )
}

/// One skipped ref, as the tracer needs it.
#[derive(Debug, Clone, Copy)]
pub struct Skipped<'a> {
    /// The upstream ref name.
    pub name: &'a str,
    /// Its upstream tip, when the ref was listed.
    pub tip: Option<Sha1>,
    /// The refusal it was skipped with.
    pub refusal: &'a Refusal,
}

/// Group `skipped` refs by root cause. `refusals` holds every object the run
/// refused, with the refusal it reported; `objects` reads upstream objects.
/// Causes come out with the most blocked refs first (then by their first
/// ref's position); every skipped ref is in exactly one cause.
pub fn trace(
    skipped: &[Skipped<'_>],
    refusals: &Refusals,
    objects: &impl ObjectSource,
) -> Vec<Cause> {
    let mut tracer = Tracer {
        refusals,
        objects,
        keys: Vec::new(),
        key_index: HashMap::new(),
        trees: HashMap::new(),
        commits: HashMap::new(),
        links: HashMap::new(),
        moved: HashMap::new(),
    };
    let mut causes: Vec<Cause> = Vec::new();
    let mut by_key: HashMap<usize, usize> = HashMap::new();
    let mut introduced: Vec<HashMap<Sha1, usize>> = Vec::new();
    for s in skipped {
        let traced = match (s.refusal, s.tip) {
            (Refusal::RefName { .. }, _) | (_, None) => tracer.unlinked(s.refusal, s.name),
            (_, Some(tip)) => tracer.tip(tip, s.refusal),
        };
        let slot = *by_key.entry(traced.key).or_insert_with(|| {
            causes.push(Cause {
                key: tracer.keys[traced.key].clone(),
                refusal: s.refusal.clone(),
                path: traced.path.clone(),
                introduced: Vec::new(),
                moved: Vec::new(),
                blocked: Vec::new(),
                reported: false,
            });
            introduced.push(HashMap::new());
            causes.len() - 1
        });
        causes[slot].blocked.push(s.name.to_owned());
        if let Some(c) = traced.introduced {
            *introduced[slot].entry(c).or_default() += 1;
        }
    }
    for (key, slot) in &by_key {
        if let Some(m) = tracer.moved.get(key) {
            causes[*slot].moved = m
                .iter()
                .map(|(path, commits)| Moved {
                    path: path.clone(),
                    commits: commits.iter().copied().collect(),
                })
                .collect();
        }
    }
    for (cause, counts) in causes.iter_mut().zip(introduced) {
        let mut list: Vec<Introduction> = counts
            .into_iter()
            .map(|(commit, refs)| {
                let (time, subject) = describe_commit(objects, &commit);
                Introduction {
                    commit,
                    refs,
                    time,
                    subject,
                }
            })
            .collect();
        list.sort_by(|a, b| b.refs.cmp(&a.refs).then(a.commit.cmp(&b.commit)));
        cause.introduced = list;
    }
    // Stable: causes with as many refs keep the order of their first ref.
    causes.sort_by_key(|c| std::cmp::Reverse(c.blocked.len()));
    causes
}

/// The committer time and subject line of a commit, for display.
fn describe_commit(objects: &impl ObjectSource, commit: &Sha1) -> (Option<i64>, String) {
    let Some((ObjectKind::Commit, body)) = objects.object(commit) else {
        return (None, String::new());
    };
    let Ok(c) = CommitRef::parse(&body) else {
        return (None, String::new());
    };
    let line = c.message.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut subject: String = String::from_utf8_lossy(line).trim().to_owned();
    if subject.chars().count() > 72 {
        subject = subject.chars().take(71).collect::<String>() + "…";
    }
    (Some(c.committer.timestamp), subject)
}

/// Where a refusal below a tree arises.
#[derive(Debug, Clone)]
struct Below {
    /// Path from this tree to the offending entry (or directory).
    path: Vec<u8>,
}

/// One ref's (or commit's) cause, as traced.
#[derive(Debug, Clone)]
struct Traced {
    /// Index into `Tracer::keys`: the cause this continues (for a moved
    /// entry, the key where it first appeared).
    key: usize,
    /// Index into `Tracer::keys`: the key of the refusal at this commit's
    /// own path.
    at: usize,
    /// The cause's path from the root tree, when known.
    path: Option<Vec<u8>>,
    /// The commit that introduced it, when a commit did.
    introduced: Option<Sha1>,
}

/// How a refused commit's refusal relates to its tree and parents.
#[derive(Debug, Clone)]
enum Link {
    /// The commit itself is refused.
    Own,
    /// Its tree is refused (checked before the parents): the cause lies
    /// below it; `parents` are its refused parents.
    Tree {
        key: usize,
        path: Vec<u8>,
        parents: Vec<Sha1>,
    },
    /// Inherited from this parent.
    Parent(Sha1),
    /// Not traceable (the commit cannot be read again).
    Unknown,
}

struct Tracer<'a, S> {
    refusals: &'a Refusals,
    objects: &'a S,
    keys: Vec<CauseKey>,
    key_index: HashMap<CauseKey, usize>,
    /// Refused trees already descended.
    trees: HashMap<Sha1, Below>,
    /// Refused commits already traced.
    commits: HashMap<Sha1, Traced>,
    /// Links of refused commits already read.
    links: HashMap<Sha1, Link>,
    /// Per cause key: the other paths its entry was moved or copied to, with
    /// the commits that did it.
    moved: HashMap<usize, BTreeMap<Vec<u8>, BTreeSet<Sha1>>>,
}

/// Refusals that are about one place in the trees, whichever tree object
/// holds it: refs blocked by the same rule at the same path share a cause.
fn path_keyed(r: &Refusal) -> bool {
    match r {
        Refusal::Gitlink { .. }
        | Refusal::TreeEntryName { .. }
        | Refusal::UnknownTreeMode { .. }
        | Refusal::NormalizedModeInFork { .. }
        | Refusal::TreeEntryKind { .. }
        | Refusal::DuplicateTreeEntry { .. }
        | Refusal::TooManyTreeEntries { .. }
        | Refusal::TreeTooDeep { .. }
        | Refusal::BlobTooLarge { .. } => true,
        Refusal::Unparsable { kind, .. } => *kind == ObjectKind::Tree,
        _ => false,
    }
}

fn is_tree_mode(mode: &[u8]) -> bool {
    use crate::bridge::import::{ModeMapping, map_mode};
    use crate::mkit::object::EntryMode;
    matches!(
        map_mode(mode),
        ModeMapping::Canonical(EntryMode::Tree) | ModeMapping::Normalized(EntryMode::Tree)
    )
}

/// How many tags a tip may peel through (the import refuses chains over 16).
const MAX_PEEL: usize = 64;

impl<S: ObjectSource> Tracer<'_, S> {
    /// True when the refusal at key `b` continues the one at key `a` after
    /// a move: the same rule, at another path ending in the same name.
    fn moved_from(&self, a: usize, b: usize) -> bool {
        let last =
            |p: &[u8]| -> Vec<u8> { p.rsplit(|&c| c == b'/').next().unwrap_or_default().to_vec() };
        match (&self.keys[a], &self.keys[b]) {
            (
                CauseKey::Path {
                    refusal: ra,
                    path: pa,
                },
                CauseKey::Path {
                    refusal: rb,
                    path: pb,
                },
            ) => ra == rb && pa != pb && !pa.is_empty() && last(pa) == last(pb),
            _ => false,
        }
    }

    fn intern(&mut self, key: CauseKey) -> usize {
        if let Some(i) = self.key_index.get(&key) {
            return *i;
        }
        self.keys.push(key.clone());
        self.key_index.insert(key, self.keys.len() - 1);
        self.keys.len() - 1
    }

    /// The key of a refusal with no path to follow.
    fn object_key(&mut self, r: &Refusal, fallback: Option<Sha1>) -> usize {
        let key = match r.object().or(fallback) {
            Some(object) => CauseKey::Object {
                refusal: r.name(),
                object,
            },
            None => CauseKey::Path {
                refusal: r.name(),
                path: Vec::new(),
            },
        };
        self.intern(key)
    }

    /// The key of a refusal found at `path`.
    fn key_at(&mut self, r: &Refusal, path: &[u8]) -> usize {
        if path_keyed(r) {
            self.intern(CauseKey::Path {
                refusal: r.name(),
                path: path.to_vec(),
            })
        } else {
            self.object_key(r, None)
        }
    }

    /// A ref refused without an object to follow (its name, or no tip).
    fn unlinked(&mut self, r: &Refusal, name: &str) -> Traced {
        let key = match r {
            Refusal::RefName { .. } => self.intern(CauseKey::Ref {
                name: name.to_owned(),
            }),
            _ => self.object_key(r, None),
        };
        Traced {
            key,
            at: key,
            path: None,
            introduced: None,
        }
    }

    /// Trace a ref's tip, through tags, down to its cause.
    fn tip(&mut self, tip: Sha1, r: &Refusal) -> Traced {
        let mut cur = tip;
        for _ in 0..MAX_PEEL {
            if self.refusals.get(&cur) != Some(r) {
                break;
            }
            let Some((kind, body)) = self.objects.object(&cur) else {
                break;
            };
            match kind {
                ObjectKind::Commit => return self.commit(cur),
                ObjectKind::Tree => {
                    let path = self.below_tree(cur).path;
                    let key = self.key_at(r, &path);
                    return Traced {
                        key,
                        at: key,
                        path: Some(path),
                        introduced: None,
                    };
                }
                ObjectKind::Tag if r.object() != Some(cur) => match TagRef::parse(&body) {
                    Ok(t) => cur = t.object,
                    Err(_) => break,
                },
                ObjectKind::Tag | ObjectKind::Blob => break,
            }
        }
        let key = self.object_key(r, Some(cur));
        Traced {
            key,
            at: key,
            path: None,
            introduced: None,
        }
    }

    /// Follow a refused tree's refusal down to the entry where it arises.
    fn below_tree(&mut self, root: Sha1) -> Below {
        let Some(r) = self.refusals.get(&root) else {
            return Below { path: Vec::new() };
        };
        let mut segments: Vec<Vec<u8>> = Vec::new();
        // Trees visited, with the number of segments above each.
        let mut visited: Vec<(Sha1, usize)> = Vec::new();
        let mut cur = root;
        let mut seen = HashSet::new();
        let tail: Vec<u8> = loop {
            if let Some(b) = self.trees.get(&cur) {
                break b.path.clone();
            }
            if !seen.insert(cur) {
                break Vec::new();
            }
            visited.push((cur, segments.len()));
            if r.object() == Some(cur) {
                if let Some(name) = r.entry_name() {
                    segments.push(name.to_vec());
                }
                break Vec::new();
            }
            let Some((ObjectKind::Tree, body)) = self.objects.object(&cur) else {
                break Vec::new();
            };
            let Ok(entries) = parse_tree(&body) else {
                break Vec::new();
            };
            // The first entry, in git's order (the order the translation
            // checks them), whose object reports this same refusal.
            let Some(e) = entries.iter().find(|e| self.refusals.get(&e.id) == Some(r)) else {
                break Vec::new();
            };
            segments.push(e.name.to_vec());
            if !is_tree_mode(e.mode) {
                break Vec::new();
            }
            cur = e.id;
        };
        let join = |parts: &[Vec<u8>]| -> Vec<u8> {
            let mut out = Vec::new();
            for p in parts.iter().map(Vec::as_slice).chain([tail.as_slice()]) {
                if p.is_empty() {
                    continue;
                }
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
            out
        };
        for (tree, depth) in &visited {
            let below = Below {
                path: join(&segments[*depth..]),
            };
            self.trees.insert(*tree, below);
        }
        Below {
            path: join(&segments),
        }
    }

    /// How a refused commit's refusal relates to its tree and parents.
    fn link(&mut self, commit: Sha1) -> Link {
        if let Some(l) = self.links.get(&commit) {
            return l.clone();
        }
        let link = self.read_link(commit);
        self.links.insert(commit, link.clone());
        link
    }

    fn read_link(&mut self, commit: Sha1) -> Link {
        let Some(r) = self.refusals.get(&commit) else {
            return Link::Unknown;
        };
        if r.object() == Some(commit) {
            return Link::Own;
        }
        let Some((ObjectKind::Commit, body)) = self.objects.object(&commit) else {
            return Link::Unknown;
        };
        let Ok(c) = CommitRef::parse(&body) else {
            return Link::Unknown;
        };
        // The translation looks at the tree before the parents.
        if self.refusals.get(&c.tree) == Some(r) {
            let path = self.below_tree(c.tree).path;
            let key = self.key_at(r, &path);
            let parents = c
                .parents
                .iter()
                .filter(|p| self.refusals.contains_key(p))
                .copied()
                .collect();
            return Link::Tree { key, path, parents };
        }
        match c.parents.iter().find(|p| self.refusals.get(p) == Some(r)) {
            Some(p) => Link::Parent(*p),
            None => Link::Unknown,
        }
    }

    /// Trace a refused commit (iteratively: refused histories run deep).
    fn commit(&mut self, start: Sha1) -> Traced {
        let mut stack = vec![start];
        let mut open: HashSet<Sha1> = HashSet::new();
        while let Some(&c) = stack.last() {
            if self.commits.contains_key(&c) {
                stack.pop();
                continue;
            }
            open.insert(c);
            let traced = match self.link(c) {
                Link::Own => {
                    let r = self.refusals[&c].clone();
                    let key = self.object_key(&r, Some(c));
                    Traced {
                        key,
                        at: key,
                        path: None,
                        introduced: Some(c),
                    }
                }
                Link::Unknown => {
                    let key = match self.refusals.get(&c).cloned() {
                        Some(r) => self.object_key(&r, Some(c)),
                        None => self.intern(CauseKey::Object {
                            refusal: "MissingObject",
                            object: c,
                        }),
                    };
                    Traced {
                        key,
                        at: key,
                        path: None,
                        introduced: None,
                    }
                }
                Link::Parent(p) => match self.commits.get(&p) {
                    Some(t) => t.clone(),
                    None if !open.contains(&p) => {
                        stack.push(p);
                        continue;
                    }
                    // A parent still open would be a cycle: impossible in
                    // a content-addressed history; stop rather than loop.
                    None => {
                        let key = self.object_key(&self.refusals[&c].clone(), Some(c));
                        Traced {
                            key,
                            at: key,
                            path: None,
                            introduced: None,
                        }
                    }
                },
                Link::Tree { key, path, parents } => {
                    let pending: Vec<Sha1> = parents
                        .iter()
                        .filter(|p| !self.commits.contains_key(p) && !open.contains(p))
                        .copied()
                        .collect();
                    if !pending.is_empty() {
                        stack.extend(pending);
                        continue;
                    }
                    let traced: Vec<Traced> = parents
                        .iter()
                        .filter_map(|p| self.commits.get(p))
                        .filter(|t| t.introduced.is_some())
                        .cloned()
                        .collect();
                    if let Some(t) = traced.iter().find(|t| t.at == key) {
                        // A parent refused at the same path: it continues
                        // that parent's cause, introduced earlier.
                        Traced {
                            at: key,
                            ..t.clone()
                        }
                    } else if let Some(t) = traced.iter().find(|t| self.moved_from(t.at, key)) {
                        // A parent refused by the same rule for an entry of
                        // the same name elsewhere: the entry was moved or
                        // copied here; still the parent's cause.
                        self.moved
                            .entry(t.key)
                            .or_default()
                            .entry(path)
                            .or_default()
                            .insert(c);
                        Traced {
                            at: key,
                            ..t.clone()
                        }
                    } else {
                        // No parent had it: this commit introduced it.
                        Traced {
                            key,
                            at: key,
                            path: Some(path),
                            introduced: Some(c),
                        }
                    }
                }
            };
            self.commits.insert(c, traced);
            stack.pop();
        }
        self.commits[&start].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny object database keyed by the real git ids of its objects.
    #[derive(Default)]
    struct Db(HashMap<Sha1, (ObjectKind, Vec<u8>)>);

    impl Db {
        fn put(&mut self, kind: ObjectKind, body: Vec<u8>) -> Sha1 {
            let id = crate::git::sha1::object_id(kind, &body).unwrap();
            self.0.insert(id, (kind, body));
            id
        }
        fn tree(&mut self, entries: &[(&str, &str, Sha1)]) -> Sha1 {
            let mut body = Vec::new();
            for (mode, name, id) in entries {
                body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
                body.extend_from_slice(&id.0);
            }
            self.put(ObjectKind::Tree, body)
        }
        fn commit(&mut self, tree: Sha1, parents: &[Sha1], time: i64, msg: &str) -> Sha1 {
            let mut body = format!("tree {}\n", tree.to_hex());
            for p in parents {
                body += &format!("parent {}\n", p.to_hex());
            }
            body +=
                &format!("author A <a@x> {time} +0000\ncommitter A <a@x> {time} +0000\n\n{msg}\n");
            self.put(ObjectKind::Commit, body.into_bytes())
        }
    }

    impl ObjectSource for Db {
        fn object(&self, sha: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
            self.0.get(sha).cloned()
        }
    }

    #[test]
    fn a_deep_reserved_name_groups_every_ref_under_its_path_and_first_commit() {
        let mut db = Db::default();
        let blob = db.put(ObjectKind::Blob, b"x".to_vec());
        let ok_root = db.tree(&[("100644", "README", blob)]);
        let base = db.commit(ok_root, &[], 100, "base");
        // `a/b/prn.h` arrives in c1 and stays in c2 and c3 (whose trees
        // differ, so every level is another tree object each time).
        let mut refusals = Refusals::new();
        let mut chain = vec![base];
        let mut firsts = Vec::new();
        for i in 0..3 {
            let extra = db.put(ObjectKind::Blob, format!("v{i}").into_bytes());
            let b = db.tree(&[("100644", "prn.h", blob), ("100644", "z", extra)]);
            let a = db.tree(&[("40000", "b", b)]);
            let root = db.tree(&[("100644", "README", blob), ("40000", "a", a)]);
            let r = Refusal::TreeEntryName {
                object: b,
                name: b"prn.h".to_vec(),
                rule: crate::mkit::object::NameRule::WindowsDevice,
            };
            for t in [b, a, root] {
                refusals.insert(t, r.clone());
            }
            let c = db.commit(root, &[*chain.last().unwrap()], 200 + i, &format!("c{i}"));
            refusals.insert(c, r.clone());
            chain.push(c);
            firsts.push((c, r));
        }
        let (c1, _) = firsts[0];
        let skipped: Vec<(String, Sha1, Refusal)> = (1..4)
            .map(|i| {
                let c = chain[i];
                (format!("refs/heads/b{i}"), c, refusals[&c].clone())
            })
            .collect();
        let list: Vec<Skipped<'_>> = skipped
            .iter()
            .map(|(n, t, r)| Skipped {
                name: n,
                tip: Some(*t),
                refusal: r,
            })
            .collect();
        let causes = trace(&list, &refusals, &db);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let cause = &causes[0];
        assert_eq!(cause.path.as_deref(), Some(&b"a/b/prn.h"[..]));
        assert_eq!(cause.blocked.len(), 3);
        assert_eq!(cause.introduced.len(), 1);
        assert_eq!(cause.introduced[0].commit, c1);
        assert_eq!(cause.introduced[0].refs, 3);
        assert_eq!(cause.introduced[0].subject, "c0");
        assert_eq!(cause.introduced[0].time, Some(200));
        assert_eq!(cause.introduced[0].date().as_deref(), Some("1970-01-01"));
        assert!(cause.remedy().contains(&c1.to_hex()[..12]));
        assert!(cause.remedy().contains("does not help"));
        // The record key ignores which refs are blocked; the fingerprint
        // does not.
        let mut fewer = cause.clone();
        fewer.blocked.pop();
        assert_eq!(fewer.id(), cause.id());
        assert_ne!(fewer.fingerprint(), cause.fingerprint());
    }

    #[test]
    fn a_commit_refused_by_itself_and_a_ref_name_are_their_own_causes() {
        let mut db = Db::default();
        let blob = db.put(ObjectKind::Blob, b"x".to_vec());
        let root = db.tree(&[("100644", "f", blob)]);
        let bad = db.commit(root, &[], -5, "old");
        let child = db.commit(root, &[bad], 10, "child");
        let r = Refusal::NegativeTimestamp {
            object: bad,
            kind: ObjectKind::Commit,
            timestamp: -5,
        };
        let refusals: Refusals = [(bad, r.clone()), (child, r.clone())].into_iter().collect();
        let name = Refusal::RefName {
            name: b"refs/heads/a+b".to_vec(),
            reason: "byte '+'".into(),
        };
        let list = [
            Skipped {
                name: "refs/heads/old",
                tip: Some(bad),
                refusal: &r,
            },
            Skipped {
                name: "refs/heads/a+b",
                tip: Some(child),
                refusal: &name,
            },
            Skipped {
                name: "refs/heads/child",
                tip: Some(child),
                refusal: &r,
            },
        ];
        let causes = trace(&list, &refusals, &db);
        assert_eq!(causes.len(), 2);
        assert_eq!(causes[0].blocked, ["refs/heads/old", "refs/heads/child"]);
        assert_eq!(
            causes[0].key,
            CauseKey::Object {
                refusal: "NegativeTimestamp",
                object: bad
            }
        );
        assert_eq!(causes[0].introduced[0].commit, bad);
        assert_eq!(causes[0].introduced[0].refs, 2);
        assert_eq!(causes[0].path, None);
        assert_eq!(causes[1].blocked, ["refs/heads/a+b"]);
        assert!(causes[1].introduced.is_empty());
        assert!(causes[1].remedy().contains("rename the ref upstream"));
    }

    #[test]
    fn a_moved_entry_continues_the_cause_of_its_first_path() {
        let mut db = Db::default();
        let blob = db.put(ObjectKind::Blob, b"x".to_vec());
        let mut refusals = Refusals::new();
        let rule = crate::mkit::object::NameRule::WindowsDevice;
        // c1 adds old/prn.h; c2 moves the directory to new/; c3 removes it;
        // the tip c4 only inherits.
        let dir = db.tree(&[("100644", "prn.h", blob)]);
        let r1 = Refusal::TreeEntryName {
            object: dir,
            name: b"prn.h".to_vec(),
            rule,
        };
        let root1 = db.tree(&[("40000", "old", dir)]);
        let clean = db.tree(&[("100644", "f", blob)]);
        let c0 = db.commit(clean, &[], 1, "clean");
        let c1 = db.commit(root1, &[c0], 2, "add");
        let other = db.put(ObjectKind::Blob, b"y".to_vec());
        let dir2 = db.tree(&[("100644", "prn.h", blob), ("100644", "y", other)]);
        let r2 = Refusal::TreeEntryName {
            object: dir2,
            name: b"prn.h".to_vec(),
            rule,
        };
        let root2 = db.tree(&[("40000", "new", dir2)]);
        let c2 = db.commit(root2, &[c1], 3, "move");
        let c3 = db.commit(clean, &[c2], 4, "remove");
        let c4 = db.commit(clean, &[c3], 5, "later");
        for (o, r) in [
            (dir, &r1),
            (root1, &r1),
            (c1, &r1),
            (dir2, &r2),
            (root2, &r2),
            (c2, &r2),
            (c3, &r2),
            (c4, &r2),
        ] {
            refusals.insert(o, r.clone());
        }
        let list = [
            Skipped {
                name: "refs/heads/tip",
                tip: Some(c4),
                refusal: &r2,
            },
            Skipped {
                name: "refs/tags/old",
                tip: Some(c1),
                refusal: &r1,
            },
        ];
        let causes = trace(&list, &refusals, &db);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let c = &causes[0];
        assert_eq!(c.path.as_deref(), Some(&b"old/prn.h"[..]));
        assert_eq!(c.introduced.len(), 1);
        assert_eq!((c.introduced[0].commit, c.introduced[0].refs), (c1, 2));
        assert_eq!(
            c.moved,
            [Moved {
                path: b"new/prn.h".to_vec(),
                commits: vec![c2]
            }]
        );
    }

    #[test]
    fn independent_introductions_of_one_path_are_one_cause_with_two_commits() {
        let mut db = Db::default();
        let sub = Sha1([7; 20]);
        let mut refusals = Refusals::new();
        let mut tips = Vec::new();
        for i in 0..2 {
            let other = db.put(ObjectKind::Blob, format!("{i}").into_bytes());
            let root = db.tree(&[("160000", "lib", sub), ("100644", "n", other)]);
            let r = Refusal::Gitlink {
                object: root,
                name: b"lib".to_vec(),
            };
            refusals.insert(root, r.clone());
            let c = db.commit(root, &[], 1 + i, "add lib");
            refusals.insert(c, r.clone());
            let top = db.commit(root, &[c], 5, "more");
            refusals.insert(top, r.clone());
            tips.push((c, top, r));
        }
        let names = ["refs/heads/x", "refs/tags/x1", "refs/heads/y"];
        let list = [
            Skipped {
                name: names[0],
                tip: Some(tips[0].1),
                refusal: &tips[0].2,
            },
            Skipped {
                name: names[1],
                tip: Some(tips[0].0),
                refusal: &tips[0].2,
            },
            Skipped {
                name: names[2],
                tip: Some(tips[1].1),
                refusal: &tips[1].2,
            },
        ];
        let causes = trace(&list, &refusals, &db);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        assert_eq!(causes[0].path.as_deref(), Some(&b"lib"[..]));
        let intro: Vec<(Sha1, usize)> = causes[0]
            .introduced
            .iter()
            .map(|i| (i.commit, i.refs))
            .collect();
        assert_eq!(intro, [(tips[0].0, 2), (tips[1].0, 1)]);
    }
}
