//! The walk's read-ahead: the reading of the walk, on another thread.
//!
//! The walk ([`super::walk`]) is sequential: its verdicts depend on the
//! order it settles objects in. Most of its time, though, is reading:
//! inflating every new tree, commit and tag, re-hashing it and parsing its
//! edges. That reading does not depend on any verdict:
//! which objects the walk reads, and in which order, follows from the
//! objects alone (depth first from each tip in turn, children in the order
//! [`super::walk::edges`] gives, each object once, mapped objects not
//! entered). So a job on the run's pool walks the same graph the same way,
//! reads what the walk will read, and queues the results (body and edges)
//! in that order, a batch at a time; the walk takes them from the front
//! instead of reading. For a blob the walk needs only its header (type and
//! size), which the job looks up too and queues in the same order. So the
//! walk's own reader maps nothing of the pack while the job runs: two
//! readers mapping the same pack would keep its pages resident twice (on
//! redis that was 180 MB of peak RSS against 92 MB for one reader).
//!
//! Nothing the walk decides depends on the read-ahead: every result is
//! checked to be for the object the walk asks for, and on a mismatch, or
//! when the job has not started in time, has stopped or is not run at all
//! (a pool of one thread), the walk reads for itself, as it always did. The
//! queue is bounded in bytes ([`AHEAD_BYTES`]) and in entries
//! ([`AHEAD_ENTRIES`]): the job waits when it is full. It reads through a
//! [`Recycling`] reader of its own, on the pool thread it runs on, so
//! `--jobs` bounds it like every other job.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::bridge::refusal::Refusal;
use crate::git::sha1::{ObjectKind, Sha1};
use crate::state;

use super::reopen::{REOPEN_AFTER, Recycling};
use super::walk::edges;

/// Bytes of bodies the job may have queued before the walk takes them (the
/// walk may hold as many again, taken and not yet used).
pub(super) const AHEAD_BYTES: usize = 4 << 20;

/// Results the job may have queued before the walk takes them.
pub(super) const AHEAD_ENTRIES: usize = 8192;

/// Results the job hands over at once (sooner when the walk waits).
const BATCH: usize = 64;

/// How long the walk waits for the job to start before reading alone.
const START_WAIT: Duration = Duration::from_millis(200);

/// Reads through one opening of the mirror by the job: every read of the
/// walk goes through it, so the pages it maps are most of the run's
/// file-backed memory during the walk (half the walk's general
/// [`REOPEN_AFTER`]).
const AHEAD_REOPEN_AFTER: usize = REOPEN_AFTER / 2;

/// The read-ahead job's delta-base cache.
const AHEAD_DELTA_CACHE: usize = 8 << 20;

/// An object's children, as [`edges`] gives them.
pub(super) type Edges = Vec<(Sha1, Option<ObjectKind>)>;

/// The bytes one edge holds, counted against [`AHEAD_BYTES`].
const EDGE_BYTES: usize = std::mem::size_of::<(Sha1, Option<ObjectKind>)>();

/// What was read for one object the walk expands (a tree, commit or tag,
/// or whatever an id it expects to be one names), and what [`edges`] gives
/// for it (the job needs them to go on: the walk need not parse them
/// again).
pub(super) type Read = (Result<(ObjectKind, Vec<u8>), Refusal>, Edges);

/// A blob's header as the mirror gives it (`None`: the walk reads the
/// object itself to learn why not).
pub(super) type Header = Option<(ObjectKind, u64)>;

/// One queued result: an object read for expansion, or a blob's header.
pub(super) enum Item {
    Object(Read),
    Header(Header),
}

impl From<Read> for Item {
    fn from(read: Read) -> Item {
        Item::Object(read)
    }
}

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
    items: VecDeque<(Sha1, Item)>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, sha: Sha1, item: impl Into<Item>) {
        let mut item = item.into();
        if let Item::Object(read) = &mut item {
            // A decoded body can come with room to spare (the pack reader
            // sizes its buffer for the delta base): queued, only its length
            // is worth keeping.
            let body = read.0.as_mut().map_or(0, |(_, body)| {
                if body.capacity() > body.len() + body.len() / 8 + 64 {
                    body.shrink_to_fit();
                }
                body.capacity()
            });
            self.bytes += body + read.1.capacity() * EDGE_BYTES;
        }
        self.items.push_back((sha, item));
    }
}

struct Queue {
    ready: Batch,
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
                status: Status::Idle,
                job_waits: false,
            }),
            changed: Condvar::new(),
            walk_waits: AtomicBool::new(false),
        }
    }
}

/// The walk's end of the queue: what it took and has not used yet.
pub(super) struct Taker<'a> {
    ahead: &'a Ahead,
    taken: VecDeque<(Sha1, Item)>,
    /// Reads the job served, and reads the walk had to do itself.
    pub(super) served: usize,
    pub(super) missed: usize,
}

impl Taker<'_> {
    /// The walk's next read, when the job read it. `None`: read it
    /// yourself (the job has not started in time, has stopped, or read
    /// another object, and then it is stopped).
    pub(super) fn take(&mut self, sha: &Sha1) -> Option<Read> {
        let read = match self.next(sha) {
            Some(Item::Object(read)) => Some(read),
            Some(Item::Header(_)) => self.out_of_step(),
            None => None,
        };
        self.count(read)
    }

    /// The header of the blob the walk reaches next, when the job looked it
    /// up; `None` as for [`Taker::take`].
    pub(super) fn take_header(&mut self, sha: &Sha1) -> Option<Header> {
        let header = match self.next(sha) {
            Some(Item::Header(header)) => Some(header),
            Some(Item::Object(_)) => self.out_of_step(),
            None => None,
        };
        self.count(header)
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

    fn next(&mut self, sha: &Sha1) -> Option<Item> {
        if self.taken.is_empty() {
            self.taken = self.ahead.take_all()?;
        }
        let (next, item) = self.taken.pop_front()?;
        if next == *sha {
            return Some(item);
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
    fn take_all(&self) -> Option<VecDeque<(Sha1, Item)>> {
        let mut q = self.lock();
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
        drop(q);
        self.changed.notify_all();
        true
    }

    /// Add a result to `batch`, handing it over when it is full or the walk
    /// waits; false when the job is to stop.
    fn add(&self, batch: &mut Batch, sha: Sha1, item: impl Into<Item>) -> bool {
        batch.push(sha, item);
        if batch.items.len() >= BATCH || self.walk_waits.load(Ordering::Relaxed) {
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
    pub(super) fn run(
        &self,
        mirror: &gix::ThreadSafeRepository,
        map: &state::Sha1ToBlake,
        tips: &[Sha1],
    ) {
        let Some(_done) = self.start() else {
            return;
        };
        let reader = Recycling::new(mirror, AHEAD_DELTA_CACHE, AHEAD_REOPEN_AFTER);
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
                // All the walk asks of a blob.
                if !self.add(&mut batch, sha, Item::Header(reader.header(&sha))) {
                    return;
                }
                continue;
            }
            let read = reader.object(&sha);
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
            Item::Object((Ok((_, body)), _)) => {
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
    fn blob_headers_come_in_the_walks_order_and_a_kind_mismatch_stops_the_job() {
        let ahead = Ahead::default();
        let _job = ahead.start().unwrap();
        let mut batch = Batch::default();
        let header = Some((ObjectKind::Blob, 7));
        assert!(ahead.add(&mut batch, sha(1), body(3)));
        assert!(ahead.add(&mut batch, sha(2), Item::Header(header)));
        assert!(ahead.add(&mut batch, sha(3), Item::Header(None)));
        assert!(ahead.add(&mut batch, sha(4), Item::Header(header)));
        assert_eq!(batch.bytes, 3, "a header counts no body bytes");
        assert!(ahead.put(&mut batch));
        let mut taker = ahead.taker();
        assert!(taker.take(&sha(1)).is_some());
        assert_eq!(taker.take_header(&sha(2)), Some(header));
        // The mirror had no header: the walk is told so, and reads itself.
        assert_eq!(taker.take_header(&sha(3)), Some(None));
        // The walk expects an object where the job queued a header: out of
        // step, the job stops.
        assert!(taker.take(&sha(4)).is_none());
        assert_eq!(ahead.lock().status, Status::Cancelled);
        assert_eq!((taker.served, taker.missed), (3, 1));
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
