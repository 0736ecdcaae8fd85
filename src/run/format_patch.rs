//! `format-patch`: local mkit commits as `git am`-able mbox patches.
//!
//! The no-export way to send work upstream: the commits reachable from `B`
//! and not from `A` (`A..B`; a single revision means `<rev>..HEAD`) become
//! one patch each, parents before children, timestamps breaking ties. Merge
//! commits are left out (a patch series is linear) and counted so the caller
//! can warn. A commit touching binary content is refused: `git am` cannot
//! apply a "Binary files differ" notice.
//!
//! The job runs in three phases, each its own function: [`plan`] resolves the
//! range and orders the commits, [`render`] diffs each commit against its
//! first parent and builds the mail ([`crate::bridge::patch`],
//! [`crate::bridge::mbox`]), and [`write_patches`] saves the files. The whole
//! series is rendered before anything is written, so a refused commit leaves
//! no partial series behind.

pub mod revision;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::bridge::mbox;
use crate::bridge::patch::{self, ChangeKind, FileChange, Side};
use crate::durable::{self, IoError};
use crate::mkit::Id;
use crate::mkit::object::{Commit, EntryMode, Object, TreeEntry};
use crate::mkit::repo::Repo;
use crate::mkit::store::{Store, StoreError};

pub use revision::RevisionError;

/// Deepest directory nesting the tree diff descends (a guard against a
/// corrupt store making the walk recurse without end).
const MAX_TREE_DEPTH: usize = 1024;

/// Why no patch series could be made. Messages follow the reference's.
#[derive(Debug, thiserror::Error)]
pub enum FormatPatchError {
    /// An end of the range names nothing.
    #[error("{spec}: {source}")]
    Revision {
        /// The revision as given.
        spec: String,
        /// Why it does not resolve.
        source: RevisionError,
    },
    /// An end of the range names something other than a commit (or a tag
    /// of one), which would make the series the whole history.
    #[error("{0}: not a commit")]
    EndpointNotACommit(String),
    /// A parent link inside the range leads to a non-commit object.
    #[error("not a commit: {0}")]
    NotACommit(Id),
    /// A commit inside the range cannot be read.
    #[error("read {id}: {source}")]
    Read {
        /// The commit.
        id: Id,
        /// The store's error.
        source: StoreError,
    },
    /// The parent links loop (only a corrupt store can hold such a graph).
    #[error("commit graph cycle (corrupt store?)")]
    Cycle,
    /// A commit changes binary content, which a text patch cannot carry.
    #[error(
        "{path}: binary change in commit {} — format-patch emits text patches only; use \
         `mkit git export` for binary content",
        &.commit.to_hex()[..12]
    )]
    Binary {
        /// The changed path.
        path: String,
        /// The commit that changes it.
        commit: Id,
    },
    /// A tree or file content of a commit cannot be read.
    #[error("diff: cannot read {object} for commit {commit}: {source}")]
    Diff {
        /// The commit being rendered.
        commit: Id,
        /// The object that failed.
        object: Id,
        /// The store's error (boxed: with two ids beside it the variant
        /// would make every `Result` of this module large).
        source: Box<StoreError>,
    },
    /// An object where a tree or file content should be is something else.
    #[error("diff: object {object} in commit {commit} is {found}, expected {expected}")]
    WrongType {
        /// The commit being rendered.
        commit: Id,
        /// The object.
        object: Id,
        /// What it is.
        found: &'static str,
        /// What the tree said it should be.
        expected: &'static str,
    },
    /// A chunked blob whose chunks do not add up to its declared size.
    #[error(
        "diff: chunked blob {object} in commit {commit} declares {declared} bytes, its chunks hold {actual}"
    )]
    ChunkedSize {
        /// The commit being rendered.
        commit: Id,
        /// The manifest.
        object: Id,
        /// Its `total_size`.
        declared: u64,
        /// The bytes its chunks hold.
        actual: u64,
    },
    /// Trees nested deeper than any real checkout.
    #[error("diff: trees of commit {commit} nest deeper than {MAX_TREE_DEPTH} levels at {path}")]
    TooDeep {
        /// The commit being rendered.
        commit: Id,
        /// Where the walk stopped.
        path: String,
    },
    /// The output directory or a patch file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The commits a range selects, ready to render.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The excluded end as given (`A` of `A..B`).
    pub exclude: String,
    /// The included end as given (`B`, `HEAD` when omitted).
    pub include: String,
    /// The non-merge commits, parents before children.
    pub series: Vec<(Id, Commit)>,
    /// How many merge commits were left out.
    pub skipped_merges: usize,
}

/// One rendered patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The commit it carries.
    pub commit: Id,
    /// `NNNN-<slug>.patch`.
    pub file_name: String,
    /// The whole mbox message.
    pub mail: Vec<u8>,
}

/// Split `A..B` (an empty `B` is `HEAD`); a lone revision is `<rev>..HEAD`.
pub fn split_range(range: &str) -> (String, String) {
    match range.split_once("..") {
        Some((a, "")) => (a.to_owned(), "HEAD".to_owned()),
        Some((a, b)) => (a.to_owned(), b.to_owned()),
        None => (range.to_owned(), "HEAD".to_owned()),
    }
}

/// Resolve `range` and order the commits it selects.
pub fn plan(repo: &Repo, range: &str) -> Result<Plan, FormatPatchError> {
    let store = repo.store();
    let (exclude, include) = split_range(range);
    let resolve = |spec: &str| {
        revision::resolve(repo, spec)
            .map(|id| peel(store, id))
            .map_err(|source| FormatPatchError::Revision {
                spec: spec.to_owned(),
                source,
            })
    };
    let excluded_tip = resolve(&exclude)?;
    let included_tip = resolve(&include)?;
    for (spec, id) in [(&exclude, excluded_tip), (&include, included_tip)] {
        if !matches!(store.read(&id), Ok(Object::Commit(_))) {
            return Err(FormatPatchError::EndpointNotACommit(spec.clone()));
        }
    }

    let excluded = ancestors(store, excluded_tip);
    let commits = range_commits(store, included_tip, &excluded)?;
    let ordered = topological(&commits)?;
    let mut skipped_merges = 0;
    let mut series = Vec::with_capacity(ordered.len());
    let mut commits = commits;
    for id in ordered {
        let Some(commit) = commits.remove(&id) else {
            continue;
        };
        if commit.parents.len() > 1 {
            skipped_merges += 1;
        } else {
            series.push((id, commit));
        }
    }
    Ok(Plan {
        exclude,
        include,
        series,
        skipped_merges,
    })
}

/// Follow tags to what they tag.
fn peel(store: &Store, mut id: Id) -> Id {
    while let Ok(Object::Tag(tag)) = store.read(&id) {
        id = tag.target;
    }
    id
}

/// `tip` and every commit reachable from it. Unreadable objects end their
/// branch of the walk quietly, as in the reference: they only make the
/// exclusion smaller.
fn ancestors(store: &Store, tip: Id) -> HashSet<Id> {
    let mut seen = HashSet::new();
    let mut stack = vec![tip];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Ok(Object::Commit(c)) = store.read(&id) {
            stack.extend(c.parents);
        }
    }
    seen
}

/// The commits reachable from `tip` and not in `excluded`.
fn range_commits(
    store: &Store,
    tip: Id,
    excluded: &HashSet<Id>,
) -> Result<HashMap<Id, Commit>, FormatPatchError> {
    let mut commits = HashMap::new();
    let mut stack = vec![tip];
    while let Some(id) = stack.pop() {
        if excluded.contains(&id) || commits.contains_key(&id) {
            continue;
        }
        match store.read(&id) {
            Ok(Object::Commit(c)) => {
                stack.extend(c.parents.iter().copied());
                commits.insert(id, c);
            }
            Ok(_) => return Err(FormatPatchError::NotACommit(id)),
            Err(source) => return Err(FormatPatchError::Read { id, source }),
        }
    }
    Ok(commits)
}

/// Parents before children. Candidates are taken in (timestamp, id) order,
/// pass after pass, each pass placing every commit whose parents inside the
/// set are already placed (so a child later in the same pass can follow its
/// parent at once) — the reference's order exactly.
fn topological(commits: &HashMap<Id, Commit>) -> Result<Vec<Id>, FormatPatchError> {
    let mut pending: Vec<Id> = commits.keys().copied().collect();
    pending.sort_by_key(|id| (commits[id].timestamp, *id));
    let mut placed = HashSet::with_capacity(pending.len());
    let mut order = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = order.len();
        pending.retain(|id| {
            let ready = commits[id]
                .parents
                .iter()
                .all(|p| placed.contains(p) || !commits.contains_key(p));
            if ready {
                placed.insert(*id);
                order.push(*id);
            }
            !ready
        });
        if order.len() == before {
            return Err(FormatPatchError::Cycle);
        }
    }
    Ok(order)
}

/// Render every commit of the plan as a patch, numbered in series order.
pub fn render(repo: &Repo, plan: &Plan) -> Result<Vec<Patch>, FormatPatchError> {
    let total = plan.series.len();
    let mut patches = Vec::with_capacity(total);
    for (index, (id, commit)) in plan.series.iter().enumerate() {
        let diff = commit_diff(repo.store(), id, commit)?;
        patches.push(Patch {
            commit: *id,
            file_name: mbox::file_name(index + 1, &mbox::subject(&commit.message)),
            mail: mbox::render(id, commit, index + 1, total, &diff),
        });
    }
    Ok(patches)
}

/// Save each patch as `<dir>/<file_name>`, creating `dir` if needed.
pub fn write_patches(dir: &Path, patches: &[Patch]) -> Result<(), FormatPatchError> {
    durable::create_dir_all_durable(dir)?;
    for p in patches {
        durable::write_atomic(&dir.join(&p.file_name), &p.mail)?;
    }
    Ok(())
}

/// The `diff --git` sections of `commit` against its first parent (the
/// empty tree for a root commit, or when the first parent is not a readable
/// commit, as in the reference).
fn commit_diff(store: &Store, id: &Id, commit: &Commit) -> Result<Vec<u8>, FormatPatchError> {
    let parent_tree = commit.parents.first().and_then(|p| match store.read(p) {
        Ok(Object::Commit(pc)) => Some(pc.tree),
        _ => None,
    });
    let reader = Reader { store, commit: *id };
    let mut pairs = Vec::new();
    reader.diff_trees(parent_tree, Some(commit.tree), "", 0, &mut pairs)?;
    pairs.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::new();
    for pair in pairs {
        let Some((change, old, new)) = reader.classify(pair)? else {
            continue;
        };
        let section =
            patch::file_patch(&change, &old, &new).map_err(|b| FormatPatchError::Binary {
                path: b.path,
                commit: *id,
            })?;
        out.extend_from_slice(&section);
    }
    Ok(out)
}

/// A path whose entry differs between the two trees (either side may be
/// absent, never both; neither is a tree).
#[derive(Debug)]
struct Pair {
    path: String,
    old: Option<Side>,
    new: Option<Side>,
}

/// Reads trees and file content for one commit's diff, naming the commit in
/// every error.
struct Reader<'a> {
    store: &'a Store,
    commit: Id,
}

impl Reader<'_> {
    fn read(&self, object: &Id) -> Result<Object, FormatPatchError> {
        self.store
            .read(object)
            .map_err(|source| FormatPatchError::Diff {
                commit: self.commit,
                object: *object,
                source: Box::new(source),
            })
    }

    fn wrong_type(&self, object: &Id, found: &Object, expected: &'static str) -> FormatPatchError {
        FormatPatchError::WrongType {
            commit: self.commit,
            object: *object,
            found: found.object_type().name(),
            expected,
        }
    }

    fn entries(&self, tree: Option<Id>) -> Result<Vec<TreeEntry>, FormatPatchError> {
        let Some(id) = tree else {
            return Ok(Vec::new());
        };
        match self.read(&id)? {
            Object::Tree(t) => Ok(t.entries),
            other => Err(self.wrong_type(&id, &other, "a tree")),
        }
    }

    /// File content: a blob's bytes, or a chunked blob's chunks in order.
    fn content(&self, id: &Id) -> Result<Vec<u8>, FormatPatchError> {
        match self.read(id)? {
            Object::Blob(b) => Ok(b.data),
            Object::ChunkedBlob(m) => {
                let mut data = Vec::new();
                for chunk in &m.chunks {
                    match self.read(chunk)? {
                        Object::Blob(b) => data.extend_from_slice(&b.data),
                        other => return Err(self.wrong_type(chunk, &other, "a blob chunk")),
                    }
                }
                if data.len() as u64 != m.total_size {
                    return Err(FormatPatchError::ChunkedSize {
                        commit: self.commit,
                        object: *id,
                        declared: m.total_size,
                        actual: data.len() as u64,
                    });
                }
                Ok(data)
            }
            other => Err(self.wrong_type(id, &other, "file content")),
        }
    }

    /// Walk both trees in step by entry name, descending only into subtrees
    /// whose ids differ; a tree on one side and a file on the other is the
    /// tree's files removed (or added) plus the file.
    fn diff_trees(
        &self,
        old: Option<Id>,
        new: Option<Id>,
        prefix: &str,
        depth: usize,
        out: &mut Vec<Pair>,
    ) -> Result<(), FormatPatchError> {
        if old == new {
            return Ok(());
        }
        if depth > MAX_TREE_DEPTH {
            return Err(FormatPatchError::TooDeep {
                commit: self.commit,
                path: prefix.to_owned(),
            });
        }
        let old = self.entries(old)?;
        let new = self.entries(new)?;
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let order = match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) => o.name.cmp(&n.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    self.one_sided(&old[i], prefix, depth, true, out)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    self.one_sided(&new[j], prefix, depth, false, out)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (o, n) = (&old[i], &new[j]);
                    let path = join(prefix, &o.name);
                    match (o.mode == EntryMode::Tree, n.mode == EntryMode::Tree) {
                        (true, true) => {
                            self.diff_trees(Some(o.id), Some(n.id), &path, depth + 1, out)?;
                        }
                        (false, false) => {
                            if o.id != n.id || o.mode != n.mode {
                                out.push(Pair {
                                    path,
                                    old: Some(side(o)),
                                    new: Some(side(n)),
                                });
                            }
                        }
                        _ => {
                            self.one_sided(o, prefix, depth, true, out)?;
                            self.one_sided(n, prefix, depth, false, out)?;
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    /// An entry present on one side only: itself, or every file under it.
    fn one_sided(
        &self,
        entry: &TreeEntry,
        prefix: &str,
        depth: usize,
        removed: bool,
        out: &mut Vec<Pair>,
    ) -> Result<(), FormatPatchError> {
        let path = join(prefix, &entry.name);
        if entry.mode == EntryMode::Tree {
            let (old, new) = if removed {
                (Some(entry.id), None)
            } else {
                (None, Some(entry.id))
            };
            return self.diff_trees(old, new, &path, depth + 1, out);
        }
        let s = Some(side(entry));
        out.push(if removed {
            Pair {
                path,
                old: s,
                new: None,
            }
        } else {
            Pair {
                path,
                old: None,
                new: s,
            }
        });
        Ok(())
    }

    /// Decide what a differing path is, reading its content. Two ids with
    /// the same content (differently chunked) are no change, or a mode
    /// change when the modes differ — compared by content, as the reference
    /// does.
    #[allow(clippy::type_complexity)]
    fn classify(
        &self,
        pair: Pair,
    ) -> Result<Option<(FileChange, Vec<u8>, Vec<u8>)>, FormatPatchError> {
        let Pair { path, old, new } = pair;
        let change = |kind| FileChange {
            path: path.clone(),
            kind,
            old,
            new,
        };
        match (old, new) {
            (None, Some(n)) => Ok(Some((
                change(ChangeKind::Added),
                Vec::new(),
                self.content(&n.id)?,
            ))),
            (Some(o), None) => Ok(Some((
                change(ChangeKind::Deleted),
                self.content(&o.id)?,
                Vec::new(),
            ))),
            (Some(o), Some(n)) if o.id == n.id => Ok(Some((
                change(ChangeKind::ModeChanged),
                Vec::new(),
                Vec::new(),
            ))),
            (Some(o), Some(n)) => {
                let (a, b) = (self.content(&o.id)?, self.content(&n.id)?);
                if a != b {
                    Ok(Some((change(ChangeKind::Modified), a, b)))
                } else if o.mode != n.mode {
                    Ok(Some((
                        change(ChangeKind::ModeChanged),
                        Vec::new(),
                        Vec::new(),
                    )))
                } else {
                    Ok(None)
                }
            }
            (None, None) => Ok(None),
        }
    }
}

fn side(entry: &TreeEntry) -> Side {
    Side {
        mode: entry.mode,
        id: entry.id,
    }
}

/// `prefix/name`, the name decoded as lossy UTF-8.
fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkit::object::{Blob, Identity, Tree};
    use crate::mkit::refs::{self, RefCondition};

    #[test]
    fn ranges_split_like_the_reference() {
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            split_range("upstream/main..HEAD"),
            s("upstream/main", "HEAD")
        );
        assert_eq!(split_range("v1..main"), s("v1", "main"));
        assert_eq!(split_range("v1.."), s("v1", "HEAD"));
        assert_eq!(split_range("v1"), s("v1", "HEAD"));
        assert_eq!(split_range("a...b"), s("a", ".b"));
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        repo: Repo,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repo::init(dir.path()).unwrap();
            Fixture { _dir: dir, repo }
        }

        fn blob(&self, data: &[u8]) -> Id {
            self.repo
                .store()
                .write(&Object::Blob(Blob {
                    data: data.to_vec(),
                }))
                .unwrap()
        }

        fn tree(&self, entries: &[(&str, EntryMode, Id)]) -> Id {
            let mut t = Tree {
                entries: entries
                    .iter()
                    .map(|(n, mode, id)| TreeEntry {
                        name: n.as_bytes().to_vec(),
                        mode: *mode,
                        id: *id,
                    })
                    .collect(),
            };
            t.sort();
            self.repo.store().write(&Object::Tree(t)).unwrap()
        }

        fn commit(&self, tree: Id, parents: Vec<Id>, message: &str, ts: u64) -> Id {
            self.repo
                .store()
                .write(&Object::Commit(Commit {
                    tree,
                    parents,
                    author: Identity::opaque(b"A U Thor <a@example.com>".to_vec()),
                    message: message.as_bytes().to_vec(),
                    timestamp: ts,
                    signer: [0; 32],
                    message_hash: Id::ZERO,
                    content_digest: Id::ZERO,
                    signature: [0; 64],
                }))
                .unwrap()
        }

        fn branch(&self, name: &str, id: Id) {
            refs::write_ref(
                self.repo.mkit_dir(),
                &format!("refs/heads/{name}"),
                &id,
                RefCondition::Any,
            )
            .unwrap();
        }
    }

    #[test]
    fn series_order_skips_merges_and_renders_diffs() {
        let f = Fixture::new();
        let readme = f.blob(b"hello\n");
        let base_tree = f.tree(&[("README", EntryMode::Blob, readme)]);
        let base = f.commit(base_tree, vec![], "base", 100);
        f.branch("upstream", base);

        let a_tree = f.tree(&[
            ("README", EntryMode::Blob, readme),
            ("a.txt", EntryMode::Blob, f.blob(b"a\n")),
        ]);
        let a = f.commit(a_tree, vec![base], "Add a", 300);
        // Older timestamp, on another line of work: ordered first.
        let sub = f.tree(&[("x", EntryMode::Executable, f.blob(b"x\n"))]);
        let b_tree = f.tree(&[
            ("README", EntryMode::Blob, readme),
            ("dir", EntryMode::Tree, sub),
        ]);
        let b = f.commit(b_tree, vec![base], "Add dir/x", 200);
        let merged = f.tree(&[
            ("README", EntryMode::Blob, f.blob(b"hello\nworld\n")),
            ("a.txt", EntryMode::Blob, readme),
            ("dir", EntryMode::Tree, sub),
        ]);
        let m = f.commit(merged, vec![a, b], "Merge", 400);
        f.branch("main", m);

        let plan = plan(&f.repo, "upstream..main").unwrap();
        assert_eq!(plan.skipped_merges, 1);
        let ids: Vec<Id> = plan.series.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![b, a]);

        let patches = render(&f.repo, &plan).unwrap();
        assert_eq!(patches[0].file_name, "0001-Add-dir-x.patch");
        let first = String::from_utf8(patches[0].mail.clone()).unwrap();
        assert!(first.starts_with(&format!("From {b} Mon Sep 17 00:00:00 2001\n")));
        assert!(first.contains("Subject: [PATCH 1/2] Add dir/x\n"));
        assert!(
            first
                .contains("---\ndiff --git a/dir/x b/dir/x\nnew file mode 100755\nindex 0000000.."),
            "{first}"
        );
        assert!(first.ends_with("+++ b/dir/x\n@@ -0,0 +1 @@\n+x\n-- \nmkit git format-patch\n\n"));

        let empty = plan_err(&f, "main..upstream");
        assert!(empty.is_none(), "nothing in the range is not an error");
    }

    fn plan_err(f: &Fixture, range: &str) -> Option<FormatPatchError> {
        match plan(&f.repo, range) {
            Ok(p) => {
                assert!(p.series.is_empty());
                None
            }
            Err(e) => Some(e),
        }
    }

    #[test]
    fn binary_content_is_refused_with_path_and_commit() {
        let f = Fixture::new();
        let base = f.commit(f.tree(&[]), vec![], "base", 1);
        f.branch("upstream", base);
        let tree = f.tree(&[("blob.bin", EntryMode::Blob, f.blob(&[0, 159, 146]))]);
        let c = f.commit(tree, vec![base], "Add binary blob", 2);
        f.branch("main", c);
        let plan = plan(&f.repo, "upstream").unwrap();
        let err = render(&f.repo, &plan).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "blob.bin: binary change in commit {} — format-patch emits text patches only; \
                 use `mkit git export` for binary content",
                &c.to_hex()[..12]
            )
        );
    }

    #[test]
    fn dir_replaced_by_file_and_mode_only_changes() {
        let f = Fixture::new();
        let x = f.blob(b"x\n");
        let old = f.tree(&[
            (
                "d",
                EntryMode::Tree,
                f.tree(&[("inner", EntryMode::Blob, x)]),
            ),
            ("run", EntryMode::Blob, x),
        ]);
        let new = f.tree(&[("d", EntryMode::Blob, x), ("run", EntryMode::Executable, x)]);
        let base = f.commit(old, vec![], "base", 1);
        let c = f.commit(new, vec![base], "swap", 2);
        let Object::Commit(commit) = f.repo.store().read(&c).unwrap() else {
            panic!()
        };
        let diff = String::from_utf8(commit_diff(f.repo.store(), &c, &commit).unwrap()).unwrap();
        let headers: Vec<&str> = diff
            .lines()
            .filter(|l| l.starts_with("diff --git"))
            .collect();
        assert_eq!(
            headers,
            [
                "diff --git a/d b/d",
                "diff --git a/d/inner b/d/inner",
                "diff --git a/run b/run"
            ]
        );
        assert!(diff.ends_with("diff --git a/run b/run\nold mode 100644\nnew mode 100755\n"));
    }

    #[test]
    fn endpoints_must_be_commits() {
        let f = Fixture::new();
        let blob = f.blob(b"x");
        let base = f.commit(f.tree(&[]), vec![], "base", 1);
        f.branch("main", base);
        let err = plan(&f.repo, &format!("{blob}..main")).unwrap_err();
        assert_eq!(err.to_string(), format!("{blob}: not a commit"));
        let err = plan(&f.repo, "nope..main").unwrap_err();
        assert_eq!(err.to_string(), "nope: unknown revision 'nope'");
    }
}
