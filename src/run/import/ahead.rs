//! The walk's read-ahead: the reading of the walk, on another thread.
//!
//! The walk ([`super::walk`]) is sequential: its verdicts depend on the
//! order it settles objects in. Most of its time, though, is reading:
//! inflating every new tree, commit and tag, re-hashing it and parsing its
//! edges. That reading does not depend on any verdict (the re-hashing,
//! the id check, stays with the walk, which has time to spare):
//! which objects the walk reads, and in which order, follows from the
//! objects alone (depth first from each tip in turn, children in the order
//! [`super::walk::edges`] gives, each object once, mapped objects not
//! entered). So a job on the run's pool walks the same graph the same way,
//! reads what the walk will read, and queues the results (body and edges)
//! in that order, a batch at a time; the walk takes them from the front
//! instead of reading.
//!
//! Blobs are not the job's: for a blob the walk needs only its header
//! (type and size), and the walk, which waits for the job when the job does
//! all the reading, looks blob headers up itself (about a third of the
//! reads; the job only skips them). Both read through one opening of the
//! mirror ([`SharedOpening`]): two openings would map the same pack twice
//! and keep its pages resident twice (on redis that was 180 MB of peak RSS
//! against 92 MB for one reader).
//!
//! Nothing the walk decides depends on the read-ahead: every result is
//! checked to be for the object the walk asks for, and on a mismatch, or
//! when the job has not started in time, has stopped or is not run at all
//! (a pool of one thread), the walk reads for itself, as it always did. The
//! queue is bounded in bytes ([`AHEAD_BYTES`]) and in entries
//! ([`AHEAD_ENTRIES`]): the job waits when it is full. The job runs on the
//! pool thread it was given, so `--jobs` bounds it like every other job;
//! it wakes the walk only when the walk waits, and then hands results over
//! a few at a time ([`WAITED_BATCH`]): a wake is a system call, and one per
//! object cost the job a tenth of its time.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::bridge::refusal::Refusal;
use crate::git::sha1::{ObjectKind, Sha1};
use crate::state;

use super::reopen::{REOPEN_AFTER, SharedOpening};
use super::walk::edges;

/// Bytes of bodies the job may have queued before the walk takes them (the
/// walk may hold as many again, taken and not yet used).
pub(super) const AHEAD_BYTES: usize = 4 << 20;

/// Results the job may have queued before the walk takes them.
pub(super) const AHEAD_ENTRIES: usize = 8192;

/// Results the job hands over at once.
const BATCH: usize = 64;

/// Results the job hands over at once while the walk waits for it: each
/// hand-over then wakes the walk, which costs the job a system call, and
/// the walk, waiting, gains nothing from taking them one by one.
const WAITED_BATCH: usize = 8;

/// How long the walk waits for the job to start before reading alone.
const START_WAIT: Duration = Duration::from_millis(200);

/// Reads through one shared opening of the mirror, the job's and the
/// walk's together: every read of the walk goes through it, so the pages it
/// maps are most of the run's file-backed memory during the walk (half the
/// walk's general [`REOPEN_AFTER`]).
const AHEAD_REOPEN_AFTER: usize = REOPEN_AFTER / 2;

/// The read-ahead job's delta-base cache.
const AHEAD_DELTA_CACHE: usize = 8 << 20;

/// The opening the job and the walk read through (see [`SharedOpening`]).
pub(super) fn opening(mirror: &gix::ThreadSafeRepository) -> SharedOpening<'_> {
    SharedOpening::new(mirror, AHEAD_DELTA_CACHE, AHEAD_REOPEN_AFTER)
}

/// An object's children, as [`edges`] gives them.
pub(super) type Edges = Vec<(Sha1, Option<ObjectKind>)>;

/// The bytes one edge holds, counted against [`AHEAD_BYTES`].
const EDGE_BYTES: usize = std::mem::size_of::<(Sha1, Option<ObjectKind>)>();

/// What was read for one object the walk expands (a tree, commit or tag,
/// or whatever an id it expects to be one names), and what [`edges`] gives
/// for it (the job needs them to go on: the walk need not parse them
/// again).
pub(super) type Read = (Result<(ObjectKind, Vec<u8>), Refusal>, Edges);

/// Where the job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not started yet.
    Idle,
    /// Reading.
    Running,
    /// Read everything the walk will ask for, or stopped on its own.
    Done,
    /// Stopped by the walk: nothing more is read or queued.
    Cancelled,
}

/// Results in the order the walk asks for them, and their body bytes.
#[derive(Default)]
struct Batch {
    items: VecDeque<(Sha1, Read)>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, sha: Sha1, mut read: Read) {
        // A decoded body can come with room to spare (the pack reader sizes
        // its buffer for the delta base): queued, only its length is worth
        // keeping.
        let body = read.0.as_mut().map_or(0, |(_, body)| {
            if body.capacity() > body.len() + body.len() / 8 + 64 {
                body.shrink_to_fit();
            }
            body.capacity()
        });
        self.bytes += body + read.1.capacity() * EDGE_BYTES;
        self.items.push_back((sha, read));
    }
}

struct Queue {
    ready: Batch,
    /// What the walk is done with, for the job to free (see
    /// [`Taker::spend`]).
    spent: Spent,
    status: Status,
    /// The job waits for room.
    job_waits: bool,
}

/// The queue between the read-ahead job and the walk.
pub(super) struct Ahead {
    queue: Mutex<Queue>,
    changed: Condvar,
    /// The walk waits for results: the job hands over what it has.
    walk_waits: AtomicBool,
}

impl Default for Ahead {
    fn default() -> Self {
        Ahead {
            queue: Mutex::new(Queue {
                ready: Batch::default(),
                spent: Spent::default(),
                status: Status::Idle,
                job_waits: false,
            }),
            changed: Condvar::new(),
            walk_waits: AtomicBool::new(false),
        }
    }
}

/// Buffers the job allocated and the walk is done with.
#[derive(Default)]
struct Spent {
    bodies: Vec<Vec<u8>>,
    edges: Vec<Edges>,
}

/// The walk's end of the queue: what it took and has not used yet.
pub(super) struct Taker<'a> {
    ahead: &'a Ahead,
    taken: VecDeque<(Sha1, Read)>,
    /// What the walk is done with, handed back at its next take; `None`
    /// once the job has stopped (the walk frees its buffers itself).
    spent: Option<Spent>,
    /// Reads the job served, and reads the walk had to do itself.
    pub(super) served: usize,
    pub(super) missed: usize,
}

impl Taker<'_> {
    /// The walk's next read, when the job read it. `None`: read it
    /// yourself (the job has not started in time, has stopped, or read
    /// another object, and then it is stopped).
    pub(super) fn take(&mut self, sha: &Sha1) -> Option<Read> {
        let read = self.next(sha);
        self.count(read)
    }

    /// A body the job read, which the walk is done with: the job frees it.
    /// Freeing on the thread that allocated it keeps the two threads off
    /// each other's allocator locks (a body freed by the walk took the
    /// job's arena lock, and the job waited for it, over 100,000 times in
    /// a walk of gitoxide).
    pub(super) fn spend(&mut self, body: Vec<u8>) {
        if let Some(spent) = &mut self.spent {
            spent.bodies.push(body);
        }
    }

    /// [`Taker::spend`] for a list of edges.
    pub(super) fn spend_edges(&mut self, edges: Edges) {
        if let Some(spent) = &mut self.spent {
            spent.edges.push(edges);
        }
    }

    /// Count `got` as served by the job, or missed.
    fn count<T>(&mut self, got: Option<T>) -> Option<T> {
        match got {
            Some(_) => self.served += 1,
            None => self.missed += 1,
        }
        got
    }

    /// The job and the walk disagree: a bug, not an input. Stop reading
    /// ahead.
    fn out_of_step<T>(&mut self) -> Option<T> {
        self.taken.clear();
        self.ahead.cancel();
        None
    }

    /// Stop the job: the walk reads nothing more.
    pub(super) fn stop_job(&self) {
        self.ahead.cancel();
    }

    fn next(&mut self, sha: &Sha1) -> Option<Read> {
        if self.taken.is_empty() {
            let spent = self.spent.as_mut().map(std::mem::take);
            match self.ahead.take_all(spent) {
                Some(taken) => self.taken = taken,
                None => {
                    self.spent = None;
                    return None;
                }
            }
        }
        let (next, read) = self.taken.pop_front()?;
        if next == *sha {
            return Some(read);
        }
        self.out_of_step()
    }
}

impl Ahead {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a queue that is still
        // consistent (every change is one swap or append).
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The walk's end of the queue.
    pub(super) fn taker(&self) -> Taker<'_> {
        Taker {
            ahead: self,
            taken: VecDeque::new(),
            spent: Some(Spent::default()),
            served: 0,
            missed: 0,
        }
    }

    fn wait<'g>(&self, q: MutexGuard<'g, Queue>) -> MutexGuard<'g, Queue> {
        self.changed
            .wait(q)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Everything the job has queued, waiting for it when there is nothing
    /// yet; `None` once it has stopped (or has not started in time).
    fn take_all(&self, spent: Option<Spent>) -> Option<VecDeque<(Sha1, Read)>> {
        let mut q = self.lock();
        if let Some(mut spent) = spent
            && q.status == Status::Running
        {
            q.spent.bodies.append(&mut spent.bodies);
            q.spent.edges.append(&mut spent.edges);
        }
        let deadline = Instant::now() + START_WAIT;
        loop {
            if !q.ready.items.is_empty() {
                let ready = std::mem::take(&mut q.ready);
                if q.job_waits {
                    self.changed.notify_all();
                }
                return Some(ready.items);
            }
            match q.status {
                Status::Running => {
                    self.walk_waits.store(true, Ordering::SeqCst);
                    q = self.wait(q);
                    self.walk_waits.store(false, Ordering::SeqCst);
                }
                Status::Idle => {
                    let now = Instant::now();
                    if now >= deadline {
                        Self::stop(&mut q);
                        return None;
                    }
                    q = self
                        .changed
                        .wait_timeout(q, deadline - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                Status::Done | Status::Cancelled => return None,
            }
        }
    }

    fn stop(q: &mut Queue) {
        q.status = Status::Cancelled;
        q.ready = Batch::default();
    }

    /// Stop the job (the walk is over, or stopped): it reads nothing more.
    pub(super) fn cancel(&self) {
        Self::stop(&mut self.lock());
        self.changed.notify_all();
    }

    /// Hand `batch` over to the walk; false when the job is to stop. Waits
    /// while the queue is full.
    fn put(&self, batch: &mut Batch) -> bool {
        let mut q = self.lock();
        while q.status == Status::Running
            && !q.ready.items.is_empty()
            && (q.ready.bytes + batch.bytes > AHEAD_BYTES
                || q.ready.items.len() + batch.items.len() > AHEAD_ENTRIES)
        {
            q.job_waits = true;
            q = self.wait(q);
            q.job_waits = false;
        }
        if q.status != Status::Running {
            return false;
        }
        q.ready.bytes += std::mem::take(&mut batch.bytes);
        q.ready.items.append(&mut batch.items);
        // Only a waiting walk needs waking (a wake is a system call).
        let wake = self.walk_waits.load(Ordering::SeqCst);
        let spent = std::mem::take(&mut q.spent);
        drop(q);
        drop(spent);
        if wake {
            self.changed.notify_all();
        }
        true
    }

    /// Add a result to `batch`, handing it over when it is full or the walk
    /// waits; false when the job is to stop.
    fn add(&self, batch: &mut Batch, sha: Sha1, read: Read) -> bool {
        batch.push(sha, read);
        let due = if self.walk_waits.load(Ordering::Relaxed) {
            WAITED_BATCH
        } else {
            BATCH
        };
        if batch.items.len() >= due {
            return self.put(batch);
        }
        true
    }

    /// Start the job, unless the walk gave up waiting for it; the guard
    /// marks it done however it ends.
    fn start(&self) -> Option<Finish<'_>> {
        let mut q = self.lock();
        if q.status != Status::Idle {
            return None;
        }
        q.status = Status::Running;
        drop(q);
        self.changed.notify_all();
        Some(Finish(self))
    }

    /// The job: read what the walk from `tips` will read, in its order,
    /// through `mirror`, stopping at objects `map` knows.
    pub(super) fn run(&self, opening: &SharedOpening<'_>, map: &state::Sha1ToBlake, tips: &[Sha1]) {
        let Some(_done) = self.start() else {
            return;
        };
        let reader = opening.reader();
        // The first 8 bytes of each id seen: the walk's own table holds the
        // whole ids; this one only keeps the job from reading an object
        // twice. Two ids sharing a prefix (about 1 in 10^8 on git.git's
        // 420,000 objects) would make the job skip one the walk then asks
        // for: out of step, the job stops and the walk reads for itself.
        let mut seen: HashSet<u64> = HashSet::new();
        let mut stack: Vec<(Sha1, Option<ObjectKind>)> =
            tips.iter().rev().map(|t| (*t, None)).collect();
        let mut batch = Batch::default();
        while let Some((sha, hint)) = stack.pop() {
            if !seen.insert(prefix(&sha)) || map.get(&sha).is_some() {
                continue;
            }
            if hint == Some(ObjectKind::Blob) {
                // The walk looks its header up itself (through the same
                // opening): it has time to spare, the job has not.
                continue;
            }
            let read = reader.object_unchecked(&sha);
            // What the walk visits next: nothing when the object cannot
            // be read or parsed (`edges` gives nothing then either).
            let children = match &read {
                Ok((kind, body)) => edges(*kind, body),
                Err(_) => Vec::new(),
            };
            stack.extend(children.iter().rev());
            if !self.add(&mut batch, sha, (read, children)) {
                return;
            }
        }
        self.put(&mut batch);
    }
}

/// The first 8 bytes of `sha`, for the job's table of ids seen.
fn prefix(sha: &Sha1) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&sha.0[..8]);
    u64::from_le_bytes(first)
}

/// Marks the job done however it ends, and wakes the walk.
struct Finish<'a>(&'a Ahead);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        if q.status == Status::Running {
            q.status = Status::Done;
        }
        drop(q);
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(n: u8) -> Sha1 {
        Sha1([n; 20])
    }

    fn body(n: usize) -> Read {
        (Ok((ObjectKind::Tree, vec![0; n])), Vec::new())
    }

    #[test]
    fn a_queued_body_costs_its_length_not_its_buffer() {
        // The pack reader hands bodies over in buffers sized for their
        // delta bases: 1 MiB of room for 100 bytes.
        let mut data = Vec::with_capacity(1 << 20);
        data.resize(100, 7u8);
        let mut batch = Batch::default();
        batch.push(sha(1), (Ok((ObjectKind::Tree, data)), Vec::new()));
        assert!(batch.bytes < 1024, "{} bytes counted", batch.bytes);
        match &batch.items[0].1 {
            (Ok((_, body)), _) => {
                assert_eq!(body, &vec![7u8; 100]);
                assert!(body.capacity() < 1024, "{} bytes held", body.capacity());
            }
            _ => panic!("not the object pushed"),
        }
    }

    #[test]
    fn the_walk_takes_what_the_job_read_in_order() {
        let ahead = Ahead::default();
        let job = ahead.start().unwrap();
        let mut batch = Batch::default();
        for n in 1..=3 {
            assert!(ahead.add(&mut batch, sha(n), body(usize::from(n))));
        }
        assert!(ahead.put(&mut batch));
        drop(job);
        let mut taker = ahead.taker();
        for n in 1..=3 {
            let (read, _) = taker.take(&sha(n)).unwrap();
            assert_eq!(read.unwrap().1.len(), usize::from(n));
        }
        // Done, and nothing left: the walk reads for itself.
        assert!(taker.take(&sha(4)).is_none());
        assert_eq!((taker.served, taker.missed), (3, 1));
    }

    #[test]
    fn what_the_walk_is_done_with_goes_back_to_the_job_while_it_runs() {
        let ahead = Ahead::default();
        let job = ahead.start().unwrap();
        let mut batch = Batch::default();
        assert!(ahead.add(&mut batch, sha(1), body(5)));
        assert!(ahead.put(&mut batch));
        let mut taker = ahead.taker();
        let (read, edges) = taker.take(&sha(1)).unwrap();
        taker.spend(read.unwrap().1);
        taker.spend_edges(edges);
        // Handed back at the walk's next take, which waits for the job.
        std::thread::scope(|s| {
            let walk = s.spawn(|| {
                let next = taker.take(&sha(2)).map(|(r, _)| r.unwrap().1.len());
                (next, taker)
            });
            // The job sees the spent body once the walk has taken again,
            // and frees it when it hands its next batch over.
            let deadline = Instant::now() + Duration::from_secs(10);
            while ahead.lock().spent.bodies.is_empty() {
                assert!(Instant::now() < deadline, "nothing was handed back");
                std::thread::yield_now();
            }
            {
                let q = ahead.lock();
                assert_eq!(q.spent.bodies[0].len(), 5);
                assert_eq!(q.spent.edges.len(), 1);
            }
            let mut more = Batch::default();
            more.push(sha(2), body(7));
            assert!(ahead.put(&mut more));
            assert!(ahead.lock().spent.bodies.is_empty());
            let (next, mut taker) = walk.join().unwrap();
            assert_eq!(next, Some(7));
            drop(job);
            // The job is done: the walk keeps (and frees) what it spends.
            assert!(taker.take(&sha(3)).is_none());
            taker.spend(vec![0; 9]);
            assert!(ahead.lock().spent.bodies.is_empty());
            assert!(taker.spent.is_none());
        });
    }

    #[test]
    fn a_read_out_of_step_stops_the_job() {
        let ahead = Ahead::default();
        let _job = ahead.start().unwrap();
        let mut batch = Batch::default();
        assert!(ahead.add(&mut batch, sha(1), body(1)));
        assert!(ahead.add(&mut batch, sha(2), body(1)));
        assert!(ahead.put(&mut batch));
        let mut taker = ahead.taker();
        assert!(taker.take(&sha(2)).is_none());
        // What was queued after it is not used either, and the job stops.
        assert!(taker.take(&sha(2)).is_none());
        let mut more = Batch::default();
        more.push(sha(3), body(1));
        assert!(!ahead.put(&mut more));
        assert_eq!(ahead.lock().status, Status::Cancelled);
    }

    #[test]
    fn a_job_that_does_not_start_in_time_never_starts() {
        let ahead = Ahead::default();
        let mut taker = ahead.taker();
        let started = Instant::now();
        assert!(taker.take(&sha(1)).is_none());
        assert!(started.elapsed() >= START_WAIT);
        assert!(ahead.start().is_none());
    }

    #[test]
    fn a_full_queue_makes_the_job_wait_for_the_walk() {
        let ahead = Ahead::default();
        let big = AHEAD_BYTES / 2 + 1;
        let count = 6u8;
        std::thread::scope(|s| {
            let job = s.spawn(|| {
                let _done = ahead.start().unwrap();
                for n in 0..count {
                    let mut batch = Batch::default();
                    batch.push(sha(n), body(big));
                    assert!(ahead.put(&mut batch));
                    // Never more than the bound queued (one entry over it
                    // when alone).
                    let q = ahead.lock();
                    assert!(q.ready.items.len() == 1 || q.ready.bytes <= AHEAD_BYTES);
                }
            });
            let mut taker = ahead.taker();
            for n in 0..count {
                let (read, _) = taker.take(&sha(n)).unwrap();
                assert_eq!(read.unwrap().1.len(), big);
            }
            job.join().unwrap();
        });
    }
}
