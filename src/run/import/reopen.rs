//! Mirrors opened for one phase of an import.
//!
//! gix maps the pack files a handle reads, and the pages it touched stay in
//! the process's resident set until the store is dropped: a walk over a
//! whole history would end up holding most of the pack. Each phase (and the
//! walk every few thousand objects) therefore reads through a mirror of its
//! own; dropping it, with the worker threads' handles on it, releases what
//! it mapped.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::bridge::refusal::Refusal;
use crate::git::sha1::{ObjectKind, Sha1};
use crate::git::{source, staging};

use super::{read_header, read_object, release_thread_handles};

/// A mirror opened for one phase, or the run's own when it cannot be opened
/// again.
pub(super) struct PhaseMirror<'m> {
    fresh: Option<gix::ThreadSafeRepository>,
    shared: &'m gix::ThreadSafeRepository,
    /// Only this thread read through it: dropping it releases this
    /// thread's handle, not every pool thread's.
    one_thread: bool,
}

impl<'m> PhaseMirror<'m> {
    /// Open `shared`'s repository again, each handle's delta-base cache
    /// bounded by `cache` bytes.
    pub(super) fn open(shared: &'m gix::ThreadSafeRepository, cache: usize) -> PhaseMirror<'m> {
        PhaseMirror {
            fresh: open_again(shared, cache),
            shared,
            one_thread: false,
        }
    }

    /// [`PhaseMirror::open`] for a reader on one thread.
    fn open_for_thread(shared: &'m gix::ThreadSafeRepository, cache: usize) -> PhaseMirror<'m> {
        let mut phase = PhaseMirror::open(shared, cache);
        phase.one_thread = true;
        phase
    }

    /// The mirror to read through.
    pub(super) fn get(&self) -> &gix::ThreadSafeRepository {
        self.fresh.as_ref().unwrap_or(self.shared)
    }
}

impl Drop for PhaseMirror<'_> {
    fn drop(&mut self) {
        if self.fresh.take().is_some() {
            if self.one_thread {
                source::release_this_thread_handle();
            } else {
                release_thread_handles();
            }
        }
    }
}

/// Objects read through one opening of the mirror by a [`Recycling`]
/// reader.
pub(super) const REOPEN_AFTER: usize = 16_384;

/// A reader for one thread that opens the mirror again every `every`
/// objects, for long sequential reads (the walk and its read-ahead, the
/// refusal report's tracing, the divergence probe). Dropping an opening
/// releases only this thread's handle on it: no other thread reads through
/// it, and the walk's read-ahead job keeps the pool's other thread busy.
pub(super) struct Recycling<'m> {
    shared: &'m gix::ThreadSafeRepository,
    cache: usize,
    every: usize,
    phase: RefCell<Option<PhaseMirror<'m>>>,
    reads: Cell<usize>,
}

impl<'m> Recycling<'m> {
    /// A reader over `shared`, with a delta-base cache of `cache` bytes.
    pub(super) fn new(shared: &'m gix::ThreadSafeRepository, cache: usize, every: usize) -> Self {
        Recycling {
            shared,
            cache,
            every: every.max(1),
            phase: RefCell::new(None),
            reads: Cell::new(0),
        }
    }

    /// Run `f` with the mirror to read the next object through.
    fn with<T>(&self, f: impl FnOnce(&gix::ThreadSafeRepository) -> T) -> T {
        let n = self.reads.get() + 1;
        self.reads.set(n);
        let mut slot = self.phase.borrow_mut();
        if slot.is_none() || n.is_multiple_of(self.every) {
            // The old one first: its pages go before the new one maps any.
            *slot = None;
            *slot = Some(PhaseMirror::open_for_thread(self.shared, self.cache));
        }
        f(slot.as_ref().map_or(self.shared, PhaseMirror::get))
    }

    /// [`read_object`] through the current opening.
    pub(super) fn object(&self, sha: &Sha1) -> Result<(ObjectKind, Vec<u8>), Refusal> {
        self.with(|m| read_object(m, sha))
    }

    /// [`source::read_within`] through the current opening.
    pub(super) fn object_within(
        &self,
        sha: &Sha1,
        max: u64,
    ) -> Result<(ObjectKind, Vec<u8>), source::ReadError> {
        self.with(|m| source::read_within(m, sha, max))
    }

    /// [`read_header`] through the current opening.
    pub(super) fn header(&self, sha: &Sha1) -> Option<(ObjectKind, u64)> {
        self.with(|m| read_header(m, sha))
    }
}

/// One opening of the mirror that two threads read through at once: the
/// walk's read-ahead job reads trees, commits and tags through it and the
/// walk reads blob headers, so the pages of the pack and its index are
/// mapped once, not once per thread. Opened again every `every` reads of
/// either thread; a thread still holding the old opening lets it go at its
/// next read (its thread's handle is keyed by the opening's store), or
/// sooner with [`SharedReader::let_go_if_stale`].
pub(super) struct SharedOpening<'m> {
    base: &'m gix::ThreadSafeRepository,
    cache: usize,
    every: usize,
    reads: AtomicUsize,
    /// Bumped at every new opening.
    generation: AtomicUsize,
    /// `None`: the mirror could not be opened again; read through `base`.
    current: Mutex<Option<Arc<gix::ThreadSafeRepository>>>,
}

impl<'m> SharedOpening<'m> {
    /// Open `base`'s repository again, each thread's delta-base cache bounded
    /// by `cache` bytes.
    pub(super) fn new(base: &'m gix::ThreadSafeRepository, cache: usize, every: usize) -> Self {
        SharedOpening {
            base,
            cache,
            every: every.max(1),
            reads: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            current: Mutex::new(open_again(base, cache).map(Arc::new)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<gix::ThreadSafeRepository>>> {
        // Every change is one assignment: a panic cannot leave it torn.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reader for the calling thread.
    pub(super) fn reader(&self) -> SharedReader<'_, 'm> {
        SharedReader {
            opening: self,
            mine: RefCell::new(None),
        }
    }
}

/// Open the repository of `base` again (`None` when it cannot be).
fn open_again(base: &gix::ThreadSafeRepository, cache: usize) -> Option<gix::ThreadSafeRepository> {
    base.objects
        .path()
        .parent()
        .and_then(|dir| staging::open_for_reading(dir, cache).ok())
}

/// One thread's reader over a [`SharedOpening`].
pub(super) struct SharedReader<'s, 'm> {
    opening: &'s SharedOpening<'m>,
    /// The opening this thread reads through, and its generation.
    mine: RefCell<Option<(usize, Option<Arc<gix::ThreadSafeRepository>>)>>,
}

impl SharedReader<'_, '_> {
    /// Run `f` with the opening to read the next object through.
    fn with<T>(&self, f: impl FnOnce(&gix::ThreadSafeRepository) -> T) -> T {
        let opening = self.opening;
        let n = opening.reads.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(opening.every) {
            // This thread lets the old opening go first; the other one does
            // at its next read, and then its pages go. A new opening maps
            // nothing until it is read through.
            *self.mine.borrow_mut() = None;
            source::release_this_thread_handle();
            let fresh = open_again(opening.base, opening.cache).map(Arc::new);
            let mut current = opening.lock();
            *current = fresh;
            opening.generation.fetch_add(1, Ordering::AcqRel);
        }
        let generation = opening.generation.load(Ordering::Acquire);
        let mut mine = self.mine.borrow_mut();
        if mine.as_ref().is_none_or(|(g, _)| *g != generation) {
            *mine = Some((generation, opening.lock().clone()));
        }
        let current = mine.as_ref().and_then(|(_, o)| o.as_deref());
        f(current.unwrap_or(opening.base))
    }

    /// Let go of an opening another thread has replaced, without waiting
    /// for this thread's next read: a thread that reads seldom (the walk
    /// between two blobs) would otherwise keep the old opening's pages
    /// mapped beside the new one's.
    pub(super) fn let_go_if_stale(&self) {
        let generation = self.opening.generation.load(Ordering::Acquire);
        let mut mine = self.mine.borrow_mut();
        if mine.as_ref().is_some_and(|(g, _)| *g != generation) {
            *mine = None;
            source::release_this_thread_handle();
        }
    }

    /// An object through the shared opening, its id not checked: the job
    /// that reads through it leaves [`source::check_id`] to the walk, which
    /// has time to spare.
    pub(super) fn object_unchecked(&self, sha: &Sha1) -> Result<(ObjectKind, Vec<u8>), Refusal> {
        self.with(|m| source::read_unchecked(m, sha).map_err(Refusal::from))
    }

    /// [`read_header`] through the shared opening.
    pub(super) fn header(&self, sha: &Sha1) -> Option<(ObjectKind, u64)> {
        self.with(|m| read_header(m, sha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_share_an_opening_and_let_the_old_one_go() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r.git");
        let (blob, first, second) = source::fixture(&dir);
        let repo = gix::open(&dir).unwrap().into_sync();
        let opening = SharedOpening::new(&repo, 1 << 20, 4);
        let old = opening.lock().clone().expect("opened again");
        let (old_opening, old_store) = (Arc::downgrade(&old), Arc::downgrade(&old.objects));
        drop(old);
        let walk = opening.reader();
        // Read 1, by this thread.
        assert_eq!(walk.header(&blob), Some((ObjectKind::Blob, 6)));
        std::thread::scope(|s| {
            s.spawn(|| {
                let job = opening.reader();
                // Reads 2 and 3 through the first opening, read 4 through
                // a new one, which this thread opens.
                assert_eq!(job.object_unchecked(&first).unwrap().0, ObjectKind::Commit);
                assert_eq!(job.object_unchecked(&blob).unwrap().1, b"hello\n");
                assert_eq!(job.object_unchecked(&second).unwrap().0, ObjectKind::Commit);
                assert_eq!(opening.generation.load(Ordering::Acquire), 1);
                drop(job);
                source::release_this_thread_handle();
            })
            .join()
            .unwrap();
        });
        // This thread still reads through the first opening: it stays.
        assert!(old_opening.upgrade().is_some());
        assert!(old_store.upgrade().is_some());
        // Without reading, this thread lets the first opening go: with its
        // store and what it mapped, it is gone.
        walk.let_go_if_stale();
        assert!(old_opening.upgrade().is_none());
        assert!(old_store.upgrade().is_none(), "the old store is still held");
        // Read 5 goes through the new opening.
        assert_eq!(
            walk.object_unchecked(&second).unwrap().0,
            ObjectKind::Commit
        );
        let current = opening.lock().clone().unwrap();
        assert!(!Arc::ptr_eq(&current.objects, &repo.objects));
        drop(walk);
        source::release_this_thread_handle();
    }
}
