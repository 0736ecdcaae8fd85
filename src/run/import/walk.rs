//! The walk and the refusal pre-pass: which new objects an import must
//! translate, decided before anything is translated or written.
//!
//! The walk goes depth first from each tip in turn, stopping at objects the
//! map knows, and settles each object on its way back up (post-order), when
//! everything it refers to is settled: the rules of
//! [`crate::bridge::import`] (`check_blob`, `check_tree`,
//! `check_commit_fields` and `check_commit_children`, `check_tag`) run on
//! [`Shape`]s, the type and depth a translation would have, with no id. A
//! refused child refuses what holds it, with the child's own refusal. The
//! verdicts are those the translation would reach: each object is placed
//! where the translation settles it (blobs; trees by height; commits by
//! generation; tags by chain), and an object sees a child only when the
//! translation would have settled that child before it, so even malformed
//! graphs (a file entry naming a tree, a tree entry naming a commit) refuse
//! with the same reason as when every object was translated.
//!
//! A tip whose verdict passed is importable. Everything first reached from an
//! importable tip is needed; so is whatever an importable tip reaches among
//! the objects first reached from a refused one, found by reading those
//! again (`Walker::mark`). Only needed objects are translated ([`Work`]).
//! Memory: one small [`Node`] per walked object, the bodies of the trees and
//! tags on the current path (commits hold only their edges), and nothing of
//! the table once the work lists are made.
//!
//! With two or more pool threads the bodies of trees, commits and tags come
//! from a read-ahead job ([`super::ahead`]) that reads, on another thread,
//! exactly what the walk is about to read, and the walk looks blob headers
//! up through the job's opening of the mirror; the walk's logic and order
//! are the same either way.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::bridge::import::{self as rules, Child, Shape, Translated};
use crate::bridge::refusal::Refusal;
use crate::git::parse::{CommitRef, TagRef, parse_tree};
use crate::git::sha1::{ObjectKind, Sha1};
use crate::mkit::object::{EntryMode, ObjectType};

use super::ahead::{Ahead, Edges, Taker};
use super::reopen::{PhaseMirror, REOPEN_AFTER, Recycling, SharedOpening, SharedReader};
use super::{Disagreement, ImportError, Run, read_object};
use crate::git::{source, staging};

/// The walk's delta-base cache (one handle: the walk is sequential).
const WALK_DELTA_CACHE: usize = 8 << 20;

/// The new objects to translate, in the translation's order: every list of
/// waves holds objects whose children are all in earlier waves (or phases),
/// each wave sorted.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// Blobs, in walk order.
    pub blobs: Vec<Sha1>,
    /// Trees, by height.
    pub trees: Vec<Vec<Sha1>>,
    /// Commits, by generation.
    pub commits: Vec<Vec<Sha1>>,
    /// Tags, by position in their chain.
    pub tags: Vec<Vec<Sha1>>,
}

impl Work {
    /// Commits and tags, whose raw bytes are retained.
    pub fn raw(&self) -> impl Iterator<Item = (&Sha1, ObjectKind)> {
        let commits = self.commits.iter().flatten();
        let tags = self.tags.iter().flatten();
        commits
            .map(|s| (s, ObjectKind::Commit))
            .chain(tags.map(|s| (s, ObjectKind::Tag)))
    }
}

/// Where the translation settles an object: before it starts (mapped
/// objects, objects the walk could not read), or in one of its phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Ready,
    Blob,
    Tree,
    Commit,
    Tag,
}

/// An object's pre-pass verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Walked, not settled yet.
    Pending,
    /// Passes every rule; what it becomes.
    Passed { kind: ObjectType, depth: u16 },
    /// Refused (its refusal is in `Run::refusals`).
    Refused,
    /// Mapped, but the mirror cannot say what it is.
    Unknown,
}

/// What the walk keeps per object.
#[derive(Debug, Clone, Copy)]
struct Node {
    stage: Stage,
    verdict: Verdict,
    /// [`MAPPED`], [`TAG_PARSED`], [`MARKED`], [`REACHED`].
    flags: u8,
    /// Wave within the stage: tree height, commit generation, tag round.
    wave: u32,
    /// The tip whose walk reached it first (an index into the tips).
    group: u32,
}

/// The map knows it.
const MAPPED: u8 = 1;
/// A tag that parsed (its target decides its round).
const TAG_PARSED: u8 = 2;
/// Reached from an importable tip although first reached from a refused one.
const MARKED: u8 = 4;
/// In `Walker::reached` for the tip being walked.
const REACHED: u8 = 8;

impl Node {
    fn new(stage: Stage, wave: u32, group: u32) -> Node {
        Node {
            stage,
            verdict: Verdict::Pending,
            flags: 0,
            wave,
            group,
        }
    }

    fn shape(&self) -> Option<Shape> {
        match self.verdict {
            Verdict::Passed { kind, depth } => Some(Shape {
                kind,
                depth: usize::from(depth),
            }),
            _ => None,
        }
    }
}

/// A step of the walk.
enum Frame {
    /// Reach an object, with the kind its referrer expects.
    Visit(Sha1, Option<ObjectKind>),
    /// Settle a tree: its body and its subtrees.
    Tree(Sha1, Vec<u8>, Vec<Sha1>),
    /// Settle a commit: its own refusal, if any, its tree and parents.
    Commit(Sha1, Box<PendingCommit>),
    /// Settle a tag: its body.
    Tag(Sha1, Vec<u8>),
    /// Tip number `.0` (`.1`) is walked.
    TipDone(u32, Sha1),
}

struct PendingCommit {
    own: Option<Refusal>,
    tree: Sha1,
    parents: Vec<Sha1>,
}

/// The objects `body` (an object of `kind`) refers to, in the order the walk
/// reaches them, each with the kind it is expected to be: a tree's entries
/// in stored order (gitlinks and unknown modes lead nowhere), a commit's
/// parents then its tree, a tag's target.
pub(super) fn edges(kind: ObjectKind, body: &[u8]) -> Edges {
    match kind {
        ObjectKind::Blob => Vec::new(),
        ObjectKind::Tree => parse_tree(body).map_or_else(
            |_| Vec::new(),
            |entries| {
                entries
                    .iter()
                    .filter_map(|e| match rules::map_mode(e.mode) {
                        rules::ModeMapping::Canonical(EntryMode::Tree)
                        | rules::ModeMapping::Normalized(EntryMode::Tree) => {
                            Some((e.id, Some(ObjectKind::Tree)))
                        }
                        rules::ModeMapping::Canonical(_) | rules::ModeMapping::Normalized(_) => {
                            Some((e.id, Some(ObjectKind::Blob)))
                        }
                        _ => None,
                    })
                    .collect()
            },
        ),
        ObjectKind::Commit => CommitRef::parse(body).map_or_else(
            |_| Vec::new(),
            |c| {
                let parents = c.parents.iter().map(|p| (*p, Some(ObjectKind::Commit)));
                parents.chain([(c.tree, Some(ObjectKind::Tree))]).collect()
            },
        ),
        ObjectKind::Tag => {
            TagRef::parse(body).map_or_else(|_| Vec::new(), |t| vec![(t.object, None)])
        }
    }
}

/// The walk's state.
struct Walker<'r, 'a> {
    run: &'r mut Run<'a>,
    /// What the read-ahead job read for the walk, when one runs.
    ahead: Option<Taker<'r>>,
    /// With the job: the walk reads blob headers through the job's opening
    /// of the mirror.
    headers: Option<SharedReader<'r, 'r>>,
    nodes: HashMap<Sha1, Node>,
    stack: Vec<Frame>,
    /// The tip being walked.
    group: u32,
    /// Per walked tip: importable.
    importable: Vec<bool>,
    /// Objects of refused tips' walks the current tip reaches.
    reached: Vec<Sha1>,
    /// Those reached by importable tips.
    marks: Vec<Sha1>,
    /// The longest `reached` at the end of a tip (a test probe).
    most_reached: usize,
    /// Heights of mapped trees.
    heights: HashMap<Sha1, usize>,
}

impl Run<'_> {
    /// Walk from the tips through every object the map does not know, decide
    /// every refusal (the pre-pass), and list what must be translated; the
    /// first map hit the store contradicts stops the walk and is returned.
    pub(super) fn walk(
        &mut self,
        tips: &[Sha1],
    ) -> Result<Result<Work, Disagreement>, ImportError> {
        // A walk again after a disagreement starts from nothing.
        self.memo.clear();
        self.refusals.clear();
        self.normalized = false;
        // With a second pool thread, a job there reads ahead of the walk
        // (`import/ahead.rs`); the walk itself stays on this thread.
        let read_ahead =
            rayon::current_thread_index().is_some() && rayon::current_num_threads() >= 2;
        let walked = if read_ahead {
            let ahead = Ahead::default();
            let opening = super::ahead::opening(self.mirror);
            let map = self.map;
            rayon::in_place_scope(|scope| {
                scope.spawn(|_| ahead.run(&opening, map, tips));
                // However the walk ends, the job stops before the scope
                // waits for it.
                let _stop = Stop(&ahead);
                self.walk_tips(tips, Some((&ahead, &opening)))
            })
        } else {
            self.walk_tips(tips, None)
        };
        // The walk's readers released only their own threads' handles.
        super::release_thread_handles();
        walked
    }

    /// The walk proper, taking what `ahead` read when it can.
    fn walk_tips(
        &mut self,
        tips: &[Sha1],
        ahead: Option<(&Ahead, &SharedOpening<'_>)>,
    ) -> Result<Result<Work, Disagreement>, ImportError> {
        let mut w = Walker {
            run: self,
            ahead: ahead.map(|(a, _)| a.taker()),
            headers: ahead.map(|(_, opening)| opening.reader()),
            nodes: HashMap::new(),
            stack: Vec::new(),
            group: 0,
            importable: Vec::with_capacity(tips.len()),
            reached: Vec::new(),
            marks: Vec::new(),
            most_reached: 0,
            heights: HashMap::new(),
        };
        for (k, tip) in tips.iter().enumerate().rev() {
            w.stack.push(Frame::TipDone(k as u32, *tip));
            w.stack.push(Frame::Visit(*tip, None));
        }
        // The walk reads through a mirror of its own, opened again every
        // `REOPEN_AFTER` objects: the pack pages a handle maps stay in the
        // process's resident set until the handle's store is dropped.
        let reader = Recycling::new(w.run.mirror, WALK_DELTA_CACHE, REOPEN_AFTER);
        while let Some(frame) = w.stack.pop() {
            match frame {
                Frame::Visit(sha, hint) => {
                    if let Some(disagreement) = w.visit(&reader, sha, hint)? {
                        return Ok(Err(disagreement));
                    }
                }
                Frame::Tree(sha, body, subtrees) => {
                    w.finish_tree(sha, &body, &subtrees);
                    w.spend(body);
                }
                Frame::Commit(sha, pending) => w.finish_commit(sha, *pending),
                Frame::Tag(sha, body) => {
                    w.finish_tag(sha, &body);
                    w.spend(body);
                }
                Frame::TipDone(k, tip) => w.tip_done(k, &tip),
            }
        }
        drop(reader);
        if let Some(taker) = &w.ahead {
            taker.stop_job();
            let (served, missed) = (taker.served, taker.missed);
            crate::run::hooks::probe("read-ahead", || format!("served {served} missed {missed}"));
        }
        let most = w.most_reached;
        crate::run::hooks::probe("walk-reached", || most.to_string());
        let marks = std::mem::take(&mut w.marks);
        w.mark(marks);
        Ok(Ok(w.work()))
    }
}

/// Stops the read-ahead job when dropped.
struct Stop<'a>(&'a Ahead);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Walker<'_, '_> {
    /// Reach `sha`: settle it at once when it has no children (a mapped
    /// object, a blob, an object that cannot be read or parsed), else queue
    /// its settling after its children.
    fn visit(
        &mut self,
        reader: &Recycling<'_>,
        sha: Sha1,
        hint: Option<ObjectKind>,
    ) -> Result<Option<Disagreement>, ImportError> {
        if let Some(headers) = &self.headers {
            headers.let_go_if_stale();
        }
        if let Some(node) = self.nodes.get(&sha).copied() {
            self.seen_again(sha, node);
            return Ok(None);
        }
        if let Some(id) = self.run.map.get(&sha).copied() {
            let header = reader.header(&sha);
            if let Some(disagreement) = self.run.check_hit(&sha, &id, header)? {
                return Ok(Some(disagreement));
            }
            let mut node = Node::new(Stage::Ready, 0, self.group);
            node.flags = MAPPED;
            node.verdict = Verdict::Unknown;
            if let Some(t) = self
                .run
                .describe_mapped(reader, &sha, header, &mut self.heights)
            {
                node.verdict = passed(t.shape());
                self.run.memo.insert(sha, t);
            }
            self.nodes.insert(sha, node);
            return Ok(None);
        }
        if hint == Some(ObjectKind::Blob) {
            let header = match &self.headers {
                Some(shared) => shared.header(&sha),
                None => reader.header(&sha),
            };
            let verdict = match header {
                Some(header) => rules::check_blob(&sha, Some(header), header.0, header.1),
                // No header: what reading it says (missing, corrupt...).
                None => reader.object(&sha).and_then(|(kind, data)| {
                    rules::check_blob(&sha, None, kind, data.len() as u64)
                }),
            };
            self.settle_leaf(sha, Stage::Blob, verdict);
            return Ok(None);
        }
        let (read, known) = match self.ahead.as_mut().and_then(|a| a.take(&sha)) {
            // The job leaves the id check to the walk. A corrupt object is
            // refused here with the edges the job parsed from it unused: the
            // job, which went on below it, is then out of step and stops.
            Some((read, edges)) => (
                read.and_then(|(kind, body)| {
                    source::check_id(&sha, kind, &body).map_err(Refusal::from)?;
                    Ok((kind, body))
                }),
                Some(edges),
            ),
            None => (reader.object(&sha), None),
        };
        let (kind, body) = match read {
            Ok(x) => x,
            Err(refusal) => {
                self.settle_leaf(sha, Stage::Ready, Err(refusal));
                return Ok(None);
            }
        };
        let edges = known.unwrap_or_else(|| edges(kind, &body));
        self.expand(sha, kind, body, edges);
        Ok(None)
    }

    /// Queue the settling of `sha`, read as `kind`, after its children
    /// (`edges`, as [`edges`] gives them; settle it now when it has none).
    fn expand(&mut self, sha: Sha1, kind: ObjectKind, body: Vec<u8>, edges: Edges) {
        match kind {
            ObjectKind::Blob => {
                let len = body.len() as u64;
                let verdict = rules::check_blob(&sha, Some((kind, len)), kind, len);
                return self.settle_leaf(sha, Stage::Blob, verdict);
            }
            ObjectKind::Tree => {
                let subtrees = edges
                    .iter()
                    .filter(|(_, hint)| *hint == Some(ObjectKind::Tree))
                    .map(|(s, _)| *s)
                    .collect();
                self.stack.push(Frame::Tree(sha, body, subtrees));
            }
            ObjectKind::Commit => match rules::parse_commit(&sha, &body) {
                Ok(c) => {
                    let own = rules::check_commit_fields(&sha, &c).err();
                    let (tree, parents) = (c.tree, c.parents.clone());
                    let pending = PendingCommit { own, tree, parents };
                    self.stack.push(Frame::Commit(sha, Box::new(pending)));
                    self.spend(body);
                }
                Err(refusal) => return self.settle_leaf(sha, Stage::Commit, Err(refusal)),
            },
            ObjectKind::Tag if TagRef::parse(&body).is_ok() => {
                self.stack.push(Frame::Tag(sha, body));
            }
            ObjectKind::Tag => {
                // Unparsable: refused by the tag rules' first check.
                let verdict = rules::check_tag(&sha, &body, |_| None::<Shape>).map(|t| Shape {
                    kind: ObjectType::Tag,
                    depth: t.chain,
                });
                return self.settle_leaf(sha, Stage::Tag, verdict);
            }
        }
        // Pending: placed and settled once its children are.
        self.nodes
            .insert(sha, Node::new(Stage::Ready, 0, self.group));
        for edge in edges.iter().rev() {
            self.stack.push(Frame::Visit(edge.0, edge.1));
        }
        if let Some(taker) = &mut self.ahead {
            taker.spend_edges(edges);
        }
    }

    /// A body the walk is done with: back to the job that read it, when
    /// one does (see [`Taker::spend`]).
    fn spend(&mut self, body: Vec<u8>) {
        if let Some(taker) = &mut self.ahead {
            taker.spend(body);
        }
    }

    /// Record an object settled where it was reached (wave 0 of `stage`).
    fn settle_leaf(&mut self, sha: Sha1, stage: Stage, verdict: Result<Shape, Refusal>) {
        self.nodes.insert(sha, Node::new(stage, 0, self.group));
        self.settle(sha, verdict);
    }

    /// An object reached again. When the walk of a refused tip reached it
    /// first and it passed, the current tip may need it after all.
    fn seen_again(&mut self, sha: Sha1, node: Node) {
        if node.group < self.group
            && !self.importable[node.group as usize]
            && node.stage != Stage::Ready
            && node.flags & (MARKED | REACHED) == 0
            && matches!(node.verdict, Verdict::Passed { .. })
        {
            // Once per tip: a shared object is reached again from every
            // new object above it.
            if let Some(n) = self.nodes.get_mut(&sha) {
                n.flags |= REACHED;
            }
            self.reached.push(sha);
        }
    }

    /// The tree `sha` is settled: its height, then the tree rules.
    fn finish_tree(&mut self, sha: Sha1, body: &[u8], subtrees: &[Sha1]) {
        let wave = self.wave_after(subtrees.iter(), Stage::Tree);
        self.place(sha, Stage::Tree, wave);
        let options = self.run.options;
        let checked = rules::check_tree(&sha, body, options, |c| self.known(c, &sha));
        let verdict = checked.map(|t| {
            self.run.normalized |= t.normalized;
            Shape {
                kind: ObjectType::Tree,
                depth: t.depth,
            }
        });
        self.settle(sha, verdict);
    }

    /// The commit `sha` is settled: its generation, then its own refusal,
    /// then its tree and parents.
    fn finish_commit(&mut self, sha: Sha1, pending: PendingCommit) {
        let wave = self.wave_after(pending.parents.iter(), Stage::Commit);
        self.place(sha, Stage::Commit, wave);
        let verdict = match pending.own {
            Some(refusal) => Err(refusal),
            None => rules::check_commit_children(&pending.tree, &pending.parents, |c| {
                self.known(c, &sha)
            })
            .map(|_| Shape {
                kind: ObjectType::Commit,
                depth: 0,
            }),
        };
        self.settle(sha, verdict);
    }

    /// The tag `sha` is settled: its round (one after a target that is a
    /// new tag that parsed), then the tag rules.
    fn finish_tag(&mut self, sha: Sha1, body: &[u8]) {
        let target = TagRef::parse(body).map(|t| t.object).ok();
        let wave = match target.and_then(|t| self.nodes.get(&t)) {
            Some(n) if n.stage == Stage::Tag && n.flags & TAG_PARSED != 0 => n.wave + 1,
            _ => 0,
        };
        self.place(sha, Stage::Tag, wave);
        if let Some(node) = self.nodes.get_mut(&sha) {
            node.flags |= TAG_PARSED;
        }
        let verdict = rules::check_tag(&sha, body, |c| self.known(c, &sha)).map(|t| Shape {
            kind: ObjectType::Tag,
            depth: t.chain,
        });
        self.settle(sha, verdict);
    }

    /// Tip number `k` is walked: it is importable when it passed (or is
    /// mapped), and then what it reached of refused tips' walks is needed.
    fn tip_done(&mut self, k: u32, tip: &Sha1) {
        let node = self.nodes.get(tip);
        let ok = node
            .is_some_and(|n| n.flags & MAPPED != 0 || matches!(n.verdict, Verdict::Passed { .. }));
        self.most_reached = self.most_reached.max(self.reached.len());
        for sha in &self.reached {
            if let Some(n) = self.nodes.get_mut(sha) {
                n.flags &= !REACHED;
            }
        }
        if ok {
            self.marks.append(&mut self.reached);
        } else {
            self.reached.clear();
        }
        self.importable.push(ok);
        self.group = k + 1;
    }

    /// One more than the latest wave among `children` settled in `stage`.
    fn wave_after<'s>(&self, children: impl Iterator<Item = &'s Sha1>, stage: Stage) -> u32 {
        children
            .filter_map(|c| self.nodes.get(c))
            .filter(|n| n.stage == stage)
            .map(|n| n.wave + 1)
            .max()
            .unwrap_or(0)
    }

    fn place(&mut self, sha: Sha1, stage: Stage, wave: u32) {
        if let Some(node) = self.nodes.get_mut(&sha) {
            node.stage = stage;
            node.wave = wave;
        }
    }

    /// `child` as the translation of `parent` would see it: known only once
    /// settled in an earlier phase or wave, and only when it passed.
    fn known(&self, child: &Sha1, parent: &Sha1) -> Option<Shape> {
        let (c, p) = (self.nodes.get(child)?, self.nodes.get(parent)?);
        ((c.stage, c.wave) < (p.stage, p.wave))
            .then(|| c.shape())
            .flatten()
    }

    /// Record `sha`'s verdict. A refusal for a missing child that is itself
    /// refused reports the child's refusal, when the translation would have
    /// recorded that one first (an earlier phase or wave, or earlier in the
    /// same sorted wave).
    fn settle(&mut self, sha: Sha1, verdict: Result<Shape, Refusal>) {
        let Some(node) = self.nodes.get(&sha).copied() else {
            return;
        };
        let verdict = match verdict {
            Ok(shape) => passed(shape),
            Err(refusal) => {
                let shared = match &refusal {
                    Refusal::MissingObject { object } => match self.nodes.get(object) {
                        Some(c)
                            if c.verdict == Verdict::Refused
                                && (c.stage, c.wave, *object) < (node.stage, node.wave, sha) =>
                        {
                            self.run.refusals.share(sha, object)
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if !shared {
                    self.run.refusals.insert(sha, refusal);
                }
                Verdict::Refused
            }
        };
        if let Some(node) = self.nodes.get_mut(&sha) {
            node.verdict = verdict;
        }
    }

    /// Mark what importable tips reach among the objects first reached from
    /// refused ones: `frontier`, and down from it through objects of refused
    /// tips' walks, read again from the mirror level by level.
    fn mark(&mut self, mut frontier: Vec<Sha1>) {
        frontier.retain(|s| self.set_mark(s));
        let phase = PhaseMirror::open(self.run.mirror, staging::DELTA_BASE_CACHE);
        let mirror = phase.get();
        while !frontier.is_empty() {
            let kinds: Vec<(Sha1, ObjectKind)> = frontier
                .iter()
                .filter_map(|s| {
                    let kind = match self.nodes.get(s)?.stage {
                        Stage::Tree => ObjectKind::Tree,
                        Stage::Commit => ObjectKind::Commit,
                        Stage::Tag => ObjectKind::Tag,
                        Stage::Blob | Stage::Ready => return None,
                    };
                    Some((*s, kind))
                })
                .collect();
            let children: Vec<Vec<(Sha1, Option<ObjectKind>)>> = kinds
                .par_iter()
                .map(|(sha, kind)| match read_object(mirror, sha) {
                    Ok((read, body)) if read == *kind => edges(read, &body),
                    _ => Vec::new(),
                })
                .collect();
            frontier = children
                .into_iter()
                .flatten()
                .filter_map(|(c, _)| self.set_mark(&c).then_some(c))
                .collect();
        }
    }

    /// Mark `sha` needed; false when it already is, or needs no marking.
    fn set_mark(&mut self, sha: &Sha1) -> bool {
        let importable = &self.importable;
        match self.nodes.get_mut(sha) {
            Some(n)
                if n.stage != Stage::Ready
                    && n.flags & MARKED == 0
                    && !importable.get(n.group as usize).copied().unwrap_or(false) =>
            {
                n.flags |= MARKED;
                true
            }
            _ => false,
        }
    }

    /// The translation's work: every new object that passed and is needed,
    /// in waves.
    fn work(self) -> Work {
        let mut work = Work::default();
        let mut blobs: Vec<(u32, Sha1)> = Vec::new();
        for (sha, n) in &self.nodes {
            let needed = n.flags & MARKED != 0
                || self
                    .importable
                    .get(n.group as usize)
                    .copied()
                    .unwrap_or(false);
            if !needed || !matches!(n.verdict, Verdict::Passed { .. }) {
                continue;
            }
            let waves = match n.stage {
                Stage::Ready => continue,
                Stage::Blob => {
                    blobs.push((n.group, *sha));
                    continue;
                }
                Stage::Tree => &mut work.trees,
                Stage::Commit => &mut work.commits,
                Stage::Tag => &mut work.tags,
            };
            let wave = n.wave as usize;
            if waves.len() <= wave {
                waves.resize_with(wave + 1, Vec::new);
            }
            waves[wave].push(*sha);
        }
        for waves in [&mut work.trees, &mut work.commits, &mut work.tags] {
            waves.retain(|w| !w.is_empty());
            waves.iter_mut().for_each(|w| w.sort_unstable());
        }
        blobs.sort_unstable();
        work.blobs = blobs.into_iter().map(|(_, s)| s).collect();
        work
    }
}

impl Run<'_> {
    /// The memo entry for an already-mapped object referenced by a new one:
    /// its id from the map, its type (from the mirror's `header`, as the walk
    /// read it) and depth from the mirror.
    pub(super) fn describe_mapped(
        &self,
        reader: &Recycling<'_>,
        sha: &Sha1,
        header: Option<(ObjectKind, u64)>,
        heights: &mut HashMap<Sha1, usize>,
    ) -> Option<Translated> {
        let id = *self.map.get(sha)?;
        let (kind, size) = header?;
        let (kind, depth) = match kind {
            ObjectKind::Blob => (rules::content_type(size), 0),
            ObjectKind::Tree => (ObjectType::Tree, mapped_height(reader, sha, heights)),
            ObjectKind::Commit => (ObjectType::Commit, 0),
            ObjectKind::Tag => (ObjectType::Tag, mapped_chain(reader, sha)),
        };
        Some(Translated { id, kind, depth })
    }
}

/// Height of a mapped tree, read from the mirror (memoized).
fn mapped_height(reader: &Recycling<'_>, sha: &Sha1, heights: &mut HashMap<Sha1, usize>) -> usize {
    if let Some(h) = heights.get(sha) {
        return *h;
    }
    let mut tallest = 0;
    if let Ok((ObjectKind::Tree, body)) = reader.object(sha) {
        let subtrees = edges(ObjectKind::Tree, &body);
        for (s, _) in subtrees
            .iter()
            .filter(|(_, hint)| *hint == Some(ObjectKind::Tree))
        {
            tallest = tallest.max(mapped_height(reader, s, heights));
        }
    }
    heights.insert(*sha, tallest + 1);
    tallest + 1
}

/// Chain length of a mapped tag, read from the mirror.
fn mapped_chain(reader: &Recycling<'_>, sha: &Sha1) -> usize {
    let mut chain = 0;
    let mut cur = *sha;
    while chain <= rules::MAX_TAG_CHAIN {
        let Ok((ObjectKind::Tag, body)) = reader.object(&cur) else {
            break;
        };
        chain += 1;
        match TagRef::parse(&body) {
            Ok(t) => cur = t.object,
            Err(_) => break,
        }
    }
    chain
}

/// The verdict of an object that passed as `shape`.
fn passed(shape: Shape) -> Verdict {
    Verdict::Passed {
        kind: shape.kind,
        depth: u16::try_from(shape.depth).unwrap_or(u16::MAX),
    }
}
