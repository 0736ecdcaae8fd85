//! Mirrors opened for one phase of an import.
//!
//! gix maps the pack files a handle reads, and the pages it touched stay in
//! the process's resident set until the store is dropped: a walk over a
//! whole history would end up holding most of the pack. Each phase (and the
//! walk every few thousand objects) therefore reads through a mirror of its
//! own; dropping it, with the worker threads' handles on it, releases what
//! it mapped.

use std::cell::{Cell, RefCell};

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
        let fresh = shared
            .objects
            .path()
            .parent()
            .and_then(|dir| staging::open_for_reading(dir, cache).ok());
        PhaseMirror {
            fresh,
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
