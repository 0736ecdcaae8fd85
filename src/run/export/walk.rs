//! The walk of the translation phase: find every object the map does not
//! know, and read, translate and compress the content on the way.
//!
//! Two tasks share the worker pool. The *chain* task reads trees, commits
//! and tags breadth-first from the tips, one level at a time (a level of a
//! long history is a commit or two, so this is mostly a chain of small
//! reads); the blobs their referrers announce are not read there but sent,
//! in the order they are found, to the *content* task, which reads,
//! translates and compresses them in parallel batches of [`CHUNK`] and
//! appends each batch to the run's pack. The content no longer waits for
//! the end of the commit chain: on two workers one follows the chain while
//! the other compresses blobs, then both compress.
//!
//! The pack does not depend on timing or on the number of workers: a batch
//! is the next [`CHUNK`] blobs in the order the chain task found them (an
//! order fixed by the sorted levels), and each batch is appended in id
//! order. What the chain task itself finds to be content (a referrer that
//! said otherwise) is appended after the batches. A blob that turns out to
//! be a tree, commit or tag is walked in a further round, like the first.
//!
//! The trees, commits and tags found are not kept decoded: the walk notes
//! their ids and, by number, their children ([`Graph`]), and puts their
//! bodies on a scratch shelf ([`super::spill::Shelf`]) that the translation
//! reads back when their wave comes. Batches' pack entries past a small
//! budget wait in a scratch file ([`super::spill::Spill`]). So what a walk
//! holds does not grow with the history but by a few bytes an object.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use rayon::prelude::*;

use super::pack::PackError;
use super::spill::{Shelf, Staged};
use super::{CHUNK, Decoded, ExportError, INLINE_WAVE, Sink, Translator, Visit, children};
use crate::bridge::export::ExportRefusal;
use crate::git::sha1::{ObjectKind, Sha1};
use crate::git::source;
use crate::mkit::id::Id;
use crate::mkit::object::Object;

/// The trees, commits and tags the walk found, waiting for translation:
/// only their ids and the edges between them, compactly; their bodies are
/// read again when their wave comes ([`Translator::translate`]), so what
/// the run holds between walk and translation is a few bytes per object,
/// not the decoded history.
#[derive(Debug, Default)]
pub(super) struct Graph {
    /// A number for every object named so far: a tip, or a child of a
    /// walked tree, commit or tag (map hits included: a hit distrusted
    /// later is walked too, and its referrers must wait for it).
    numbers: HashMap<Id, u32>,
    /// By number: walked or sent as content (so nothing is visited twice).
    seen: Vec<bool>,
    /// By number: the object's place among the waiting objects, or
    /// [`NOT_INNER`].
    inner_at: Vec<u32>,
    /// The waiting objects' ids by place, filled in once the walk is over
    /// ([`Graph::walked`]; `numbers` holds them until then).
    pub(super) inner: Vec<Id>,
    /// By place in `inner`: where its children start in `edges` (one more
    /// entry at the end).
    starts: Vec<u32>,
    /// The children of each waiting object, by number, in its own order.
    edges: Vec<u32>,
    /// Their bodies, by place, until their wave comes.
    pub(super) shelf: Option<Shelf>,
}

/// Not waiting for translation (content, a map hit, refused).
const NOT_INNER: u32 = u32::MAX;

impl Graph {
    /// The number of `id`, given now if it has none.
    fn number(&mut self, id: &Id) -> u32 {
        match self.numbers.entry(*id) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let n = self.seen.len() as u32;
                e.insert(n);
                self.seen.push(false);
                self.inner_at.push(NOT_INNER);
                n
            }
        }
    }

    /// Mark `id` seen; false when it was already.
    fn see(&mut self, id: &Id) -> bool {
        let n = self.number(id);
        self.see_number(n)
    }

    /// Mark the object numbered `n` seen; false when it was already.
    fn see_number(&mut self, n: u32) -> bool {
        !std::mem::replace(&mut self.seen[n as usize], true)
    }

    /// Record `id` as waiting for translation, with `kids` (its children,
    /// in its own order) and its decoded body `obj` (shelved). Returns
    /// where the children's numbers start in `edges` (`None` when `id` was
    /// waiting already).
    fn wait(
        &mut self,
        id: &Id,
        kids: &[(Id, Option<ObjectKind>)],
        obj: &Object,
    ) -> Result<Option<usize>, PackError> {
        let n = self.number(id) as usize;
        if self.inner_at[n] != NOT_INNER {
            return Ok(None);
        }
        if let Some(shelf) = &mut self.shelf {
            shelf.put(obj)?;
        }
        self.inner_at[n] = self.len() as u32;
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let first = self.edges.len();
        for (kid, _) in kids {
            let k = self.number(kid);
            self.edges.push(k);
        }
        self.starts.push(self.edges.len() as u32);
        Ok(Some(first))
    }

    /// How many objects wait.
    pub(super) fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The waiting objects (by place in `inner`) cut into waves: an
    /// object's wave is one more than its latest waiting child's, so every
    /// child is settled first; each wave sorted by id. The edges are not
    /// needed afterwards, and are dropped.
    pub(super) fn waves(&mut self) -> Vec<Vec<u32>> {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by_key(|&p| self.inner[p as usize]);
        let waves = crate::dag::levels(&order, |&p| {
            let (a, b) = (self.starts[p as usize], self.starts[p as usize + 1]);
            self.edges[a as usize..b as usize]
                .iter()
                .map(|&k| self.inner_at[k as usize])
                .filter(|&at| at != NOT_INNER)
        });
        self.edges = Vec::new();
        self.inner_at = Vec::new();
        waves
    }

    /// The walk is over: list the waiting objects' ids by place, make the
    /// shelf readable, and drop what only the walk needs.
    fn walked(&mut self) -> Result<(), PackError> {
        if let Some(shelf) = &mut self.shelf {
            shelf.close()?;
        }
        let mut inner = vec![Id([0; 32]); self.len()];
        for (id, n) in std::mem::take(&mut self.numbers) {
            if let Some(slot) = inner.get_mut(self.inner_at[n as usize] as usize) {
                *slot = id;
            }
        }
        self.inner = inner;
        self.seen = Vec::new();
        self.edges.shrink_to_fit();
        Ok(())
    }
}

/// What the chain task found.
#[derive(Default)]
struct Chain {
    /// The objects named and those waiting for translation.
    graph: Graph,
    /// Map hits that failed their check.
    distrusted: HashSet<Id>,
    /// Objects that cannot be exported.
    refused: Vec<(Id, ExportRefusal)>,
    /// Content found among the trees, commits and tags (to append last).
    content: Vec<(Id, Staged)>,
}

/// What the content task did.
#[derive(Default)]
struct Content {
    /// The run's translated objects (the translator's own table, lent to
    /// the content task for the round), with each blob's git id added.
    done: HashMap<Id, Sha1>,
    /// Objects that cannot be exported.
    refused: Vec<(Id, ExportRefusal)>,
    /// Announced as content, read as a tree, commit or tag.
    surprises: Vec<(Id, Decoded)>,
}

/// How long the content task waits for more blobs before it offers its
/// thread to the pool (where, with one worker, the chain task is waiting).
const POLL: Duration = Duration::from_millis(1);

impl Translator<'_> {
    /// Find every object the map does not know, from `tips`; translate and
    /// append the content to the pack on the way. Returns the trees, commits
    /// and tags waiting, for [`Translator::translate`].
    pub(super) fn walk(&mut self, tips: &[Id], sink: &mut Sink) -> Result<Graph, ExportError> {
        self.progress.phase("reading", 0);
        let mut chain = Chain::default();
        chain.graph.shelf = Some(Shelf::new(&sink.root)?);
        let mut start: Vec<Id> = Vec::new();
        for t in tips {
            if !self.trusted_hit(t, None, &sink.repo, &mut chain.distrusted) && chain.graph.see(t) {
                start.push(*t);
            }
        }
        let mut blobs: Vec<Id> = Vec::new();
        while !start.is_empty() || !blobs.is_empty() {
            let done = std::mem::take(&mut self.done);
            let content = self.round(&mut chain, sink, start, blobs, done)?;
            (start, blobs) = (Vec::new(), Vec::new());
            self.done = content.done;
            for (id, refusal) in content.refused.into_iter().chain(chain.refused.drain(..)) {
                self.refused.insert(id, refusal);
            }
            let found: Vec<Staged> = chain
                .content
                .drain(..)
                .map(|(id, entry)| {
                    self.done.insert(id, entry.id());
                    entry
                })
                .collect();
            sink.absorb_staged(found, &self.spill)?;
            // Content that was not: walk its children in another round.
            for (id, decoded) in content.surprises {
                self.enqueue_children(
                    &mut chain, &sink.repo, &id, &decoded, &mut blobs, &mut start,
                )?;
            }
        }
        self.distrusted.extend(chain.distrusted);
        chain.graph.walked()?;
        Ok(chain.graph)
    }

    /// One round: the chain task from `start` (with `blobs` already known to
    /// be content) on a pool task, the content task on this thread, adding
    /// the blobs it translates to `done`.
    fn round(
        &self,
        chain: &mut Chain,
        sink: &mut Sink,
        start: Vec<Id>,
        blobs: Vec<Id>,
        done: HashMap<Id, Sha1>,
    ) -> Result<Content, ExportError> {
        let (tx, rx) = mpsc::channel::<Vec<Id>>();
        let failed = &AtomicBool::new(false);
        // gix handles are not shared between threads: the chain task gets
        // its own (on the same object database).
        let repo = sink.repo.clone();
        let mut content = Content {
            done,
            ..Content::default()
        };
        let mut walked: Result<(), ExportError> = Ok(());
        let mut consumed: Result<(), ExportError> = Ok(());
        let walked_out = &mut walked;
        rayon::scope(|s| {
            s.spawn(move |_| {
                let r = if !blobs.is_empty() && tx.send(blobs).is_err() {
                    Ok(())
                } else {
                    self.walk_chain(chain, &repo, start, &tx, failed)
                };
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                // Dropping the sender tells the content task the walk ended.
                drop(tx);
                *walked_out = r;
            });
            consumed = self.consume(rx, sink, &mut content, failed);
            if consumed.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        });
        walked?;
        consumed?;
        Ok(content)
    }

    /// The chain task: trees, commits and tags level by level from `start`;
    /// blobs are sent to the content task as they are found.
    fn walk_chain(
        &self,
        chain: &mut Chain,
        repo: &gix::Repository,
        start: Vec<Id>,
        tx: &Sender<Vec<Id>>,
        failed: &AtomicBool,
    ) -> Result<(), ExportError> {
        let mut frontier = start;
        while !frontier.is_empty() {
            let mut level = std::mem::take(&mut frontier);
            level.sort();
            for chunk in level.chunks(CHUNK) {
                if self.interrupt.load(Ordering::Relaxed) {
                    return Err(ExportError::Interrupted);
                }
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let mut blobs = Vec::new();
                for (id, r) in self.visit_all(chunk) {
                    match r? {
                        Visit::Leaf(entry) => chain.content.push((id, entry)),
                        Visit::Refused(refusal) => chain.refused.push((id, refusal)),
                        Visit::Inner(decoded) => {
                            self.enqueue_children(
                                chain,
                                repo,
                                &id,
                                &decoded,
                                &mut blobs,
                                &mut frontier,
                            )?;
                        }
                    }
                }
                // A closed channel: the content task stopped on an error.
                if !blobs.is_empty() && tx.send(blobs).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Record `id` (whose decoded body is `decoded`) as waiting for
    /// translation, and queue its children that still need walking (not a
    /// trusted map hit, not seen before): those announced as blobs in
    /// `blobs` for the content task, the rest in `next` for the chain task.
    fn enqueue_children(
        &self,
        chain: &mut Chain,
        repo: &gix::Repository,
        id: &Id,
        decoded: &Decoded,
        blobs: &mut Vec<Id>,
        next: &mut Vec<Id>,
    ) -> Result<(), PackError> {
        let kids = children(&decoded.obj);
        let first = chain.graph.wait(id, &kids, &decoded.obj)?;
        for (i, (d, kind)) in kids.into_iter().enumerate() {
            // The child's number, noted by `wait` (one lookup per child).
            let n = match first {
                Some(f) => chain.graph.edges[f + i],
                None => chain.graph.number(&d),
            };
            if !self.trusted_hit(&d, kind, repo, &mut chain.distrusted) && chain.graph.see_number(n)
            {
                if kind == Some(ObjectKind::Blob) {
                    blobs.push(d);
                } else {
                    next.push(d);
                }
            }
        }
        Ok(())
    }

    /// The content task: read, translate and compress the blobs in batches
    /// of [`CHUNK`] in the order they arrive, appending each batch to the
    /// pack, until the chain task is done and every blob is handled.
    fn consume(
        &self,
        rx: Receiver<Vec<Id>>,
        sink: &mut Sink,
        content: &mut Content,
        failed: &AtomicBool,
    ) -> Result<(), ExportError> {
        let mut queue: Vec<Id> = Vec::new();
        let mut open = true;
        loop {
            while open && queue.len() < CHUNK {
                match rx.recv_timeout(POLL) {
                    Ok(ids) => queue.extend(ids),
                    Err(RecvTimeoutError::Timeout) => {
                        // With one worker the chain task waits in this
                        // thread's queue: run it (or any other pool work).
                        rayon::yield_now();
                    }
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
            if queue.is_empty() {
                return Ok(());
            }
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(ExportError::Interrupted);
            }
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let batch: Vec<Id> = queue.drain(..queue.len().min(CHUNK)).collect();
            let mut entries = Vec::new();
            for (id, r) in self.visit_all(&batch) {
                match r? {
                    Visit::Leaf(entry) => {
                        content.done.insert(id, entry.id());
                        entries.push(entry);
                    }
                    Visit::Refused(refusal) => content.refused.push((id, refusal)),
                    Visit::Inner(decoded) => content.surprises.push((id, decoded)),
                }
            }
            sink.absorb_staged(entries, &self.spill)?;
        }
    }

    /// Visit each of `ids` (in parallel unless they are few), in order.
    fn visit_all(&self, ids: &[Id]) -> Vec<(Id, Result<Visit, ExportError>)> {
        let one = |id: &Id| {
            let r = self.visit(id);
            self.progress.advance(1, 0);
            (*id, r)
        };
        if ids.len() < INLINE_WAVE {
            ids.iter().map(one).collect()
        } else {
            ids.par_iter().map(one).collect()
        }
    }

    /// Whether the walk may stop at `id` because the map knows it: the map
    /// names a git object, staging (`repo`) holds it, and (when the referrer
    /// says what `id` is) it is of that kind. Only the object's header is
    /// looked up, and only for map hits at the boundary of the new history.
    /// A hit that fails the check is added to `distrusted`: the object is
    /// translated again, and its new pair appended to the map (where the
    /// later line wins).
    fn trusted_hit(
        &self,
        id: &Id,
        expected: Option<ObjectKind>,
        repo: &gix::Repository,
        distrusted: &mut HashSet<Id>,
    ) -> bool {
        if distrusted.contains(id) {
            return false;
        }
        let Some(sha) = self.mapped(id) else {
            return false;
        };
        let kind = source::find_header(repo, &sha).map(|(kind, _)| kind);
        let trusted = match (kind, expected) {
            (None, _) => false,
            (Some(kind), Some(expected)) => kind == expected,
            (Some(_), None) => true,
        };
        if !trusted {
            distrusted.insert(*id);
        }
        trusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    #[test]
    fn waves_put_children_first() {
        let kids = |ids: &[u8]| -> Vec<(Id, Option<ObjectKind>)> {
            ids.iter()
                .map(|&b| (id(b), Some(ObjectKind::Tree)))
                .collect()
        };
        let mut g = Graph::default();
        // Found top-down: 3 -> 2 -> 1, 3 -> 1, 4 alone; 9 is outside (mapped
        // or a leaf), named but never waiting.
        let body = Object::Blob(crate::mkit::object::Blob { data: vec![] });
        g.wait(&id(3), &kids(&[2, 1]), &body).unwrap();
        g.wait(&id(4), &[], &body).unwrap();
        g.wait(&id(2), &kids(&[1]), &body).unwrap();
        g.wait(&id(1), &kids(&[9]), &body).unwrap();
        // Waiting twice changes nothing.
        g.wait(&id(2), &kids(&[4]), &body).unwrap();
        assert_eq!(g.len(), 4);
        g.walked().unwrap();
        assert_eq!(g.inner, vec![id(3), id(4), id(2), id(1)]);
        let waves: Vec<Vec<Id>> = g
            .waves()
            .iter()
            .map(|w| w.iter().map(|&at| g.inner[at as usize]).collect())
            .collect();
        assert_eq!(waves, vec![vec![id(1), id(4)], vec![id(2)], vec![id(3)]]);
    }
}
