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

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use rayon::prelude::*;

use super::{CHUNK, ExportError, INLINE_WAVE, Inner, Sink, Translator, Visit, children};
use crate::bridge::export::ExportRefusal;
use crate::git::sha1::{ObjectKind, Sha1};
use crate::git::source;
use crate::mkit::id::Id;
use crate::mkit::object::Object;
use crate::run::export::pack::PackEntry;

/// What the chain task found.
#[derive(Default)]
struct Chain {
    /// Every object walked or sent as content, so nothing is visited twice.
    seen: HashSet<Id>,
    /// The trees, commits and tags waiting for translation.
    inner: Inner,
    /// Map hits that failed their check.
    distrusted: HashSet<Id>,
    /// Objects that cannot be exported.
    refused: Vec<(Id, ExportRefusal)>,
    /// Content found among the trees, commits and tags (to append last).
    content: Vec<(Id, PackEntry)>,
}

/// What the content task did.
#[derive(Default)]
struct Content {
    /// Each blob's git id.
    done: Vec<(Id, Sha1)>,
    /// Objects that cannot be exported.
    refused: Vec<(Id, ExportRefusal)>,
    /// Announced as content, read as a tree, commit or tag.
    surprises: Vec<(Id, Box<Object>, Vec<Id>)>,
}

/// How long the content task waits for more blobs before it offers its
/// thread to the pool (where, with one worker, the chain task is waiting).
const POLL: Duration = Duration::from_millis(1);

impl Translator<'_> {
    /// Find every object the map does not know, from `tips`; translate and
    /// append the content to the pack on the way. Returns the trees, commits
    /// and tags with their children, for [`Translator::translate`].
    pub(super) fn walk(&mut self, tips: &[Id], sink: &mut Sink) -> Result<Inner, ExportError> {
        self.progress.phase("reading", 0);
        let mut chain = Chain::default();
        let mut start: Vec<Id> = Vec::new();
        for t in tips {
            if !self.trusted_hit(t, None, &sink.repo, &mut chain.distrusted)
                && chain.seen.insert(*t)
            {
                start.push(*t);
            }
        }
        let mut blobs: Vec<Id> = Vec::new();
        while !start.is_empty() || !blobs.is_empty() {
            let content = self.round(&mut chain, sink, start, blobs)?;
            (start, blobs) = (Vec::new(), Vec::new());
            for (id, sha) in content.done {
                self.done.insert(id, sha);
            }
            for (id, refusal) in content.refused.into_iter().chain(chain.refused.drain(..)) {
                self.refused.insert(id, refusal);
            }
            let found: Vec<PackEntry> = chain
                .content
                .drain(..)
                .map(|(id, entry)| {
                    self.done.insert(id, entry.id);
                    entry
                })
                .collect();
            sink.absorb(found)?;
            // Content that was not: walk its children in another round.
            for (id, obj, deps) in content.surprises {
                self.enqueue_children(&mut chain, &sink.repo, &obj, &mut blobs, &mut start);
                chain.inner.insert(id, (*obj, deps));
            }
        }
        self.distrusted.extend(chain.distrusted);
        Ok(chain.inner)
    }

    /// One round: the chain task from `start` (with `blobs` already known to
    /// be content) on a pool task, the content task on this thread.
    fn round(
        &self,
        chain: &mut Chain,
        sink: &mut Sink,
        start: Vec<Id>,
        blobs: Vec<Id>,
    ) -> Result<Content, ExportError> {
        let (tx, rx) = mpsc::channel::<Vec<Id>>();
        let failed = &AtomicBool::new(false);
        // gix handles are not shared between threads: the chain task gets
        // its own (on the same object database).
        let repo = sink.repo.clone();
        let mut content = Content::default();
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
                        Visit::Inner(obj, deps) => {
                            self.enqueue_children(chain, repo, &obj, &mut blobs, &mut frontier);
                            chain.inner.insert(id, (*obj, deps));
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

    /// Queue the children of `obj` that still need walking (not a trusted
    /// map hit, not seen before): those announced as blobs in `blobs` for the
    /// content task, the rest in `next` for the chain task.
    fn enqueue_children(
        &self,
        chain: &mut Chain,
        repo: &gix::Repository,
        obj: &Object,
        blobs: &mut Vec<Id>,
        next: &mut Vec<Id>,
    ) {
        for (d, kind) in children(obj) {
            if !self.trusted_hit(&d, kind, repo, &mut chain.distrusted) && chain.seen.insert(d) {
                if kind == Some(ObjectKind::Blob) {
                    blobs.push(d);
                } else {
                    next.push(d);
                }
            }
        }
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
                        content.done.push((id, entry.id));
                        entries.push(entry);
                    }
                    Visit::Refused(refusal) => content.refused.push((id, refusal)),
                    Visit::Inner(obj, deps) => content.surprises.push((id, obj, deps)),
                }
            }
            sink.absorb(entries)?;
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
