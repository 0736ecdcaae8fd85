//! The translation of the objects the walk found needed ([`Work`]), one
//! function per phase: blobs in parallel, trees in waves of equal height,
//! commits in waves of equal generation, tags in rounds by chain. Every
//! object is staged in one [`WriteBatch`]. Bodies are read again from the
//! mirror where they are translated (commits a block at a time, in
//! parallel, ahead of the chain), so no phase holds more than a wave's or a
//! block's bodies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::bridge::import::{self as rules, Translated};
use crate::bridge::refusal::Refusal;
use crate::durable;
use crate::git::sha1::{ObjectKind, Sha1, frame};
use crate::mkit::Id;
use crate::mkit::content;
use crate::mkit::object::{Object, ObjectType};
use crate::mkit::store::{Prepared, StoreError, WriteBatch, prepare};
use crate::state;

use super::reopen::PhaseMirror;
use super::walk::Work;
use super::{ImportError, Run, read_header, read_object, staged};
use crate::git::staging;

/// Commit waves smaller than this are translated on the calling thread.
const PARALLEL_WAVE: usize = 8;

/// Commits handed to the commit writer (or written by the chain) at a time.
const COMMIT_WRITE_CHUNK: usize = 64;

/// Commits whose bodies are read (in parallel) ahead of the chain at a time.
const COMMIT_READ_BLOCK: usize = 1024;

/// One translated object, or why it cannot be.
type Outcome = (Sha1, Result<Translated, Refusal>);

/// What a worker staged for an object (the store's answer), the type it
/// became and its depth.
type Staged = (Result<Id, StoreError>, ObjectType, usize);

/// Retain the framed bytes of every commit and tag to translate, in
/// parallel (run inside the pool). One that cannot be read is left out: its
/// translation reads it again and refuses it.
pub(super) fn retain_raw(
    mirror: &gix::ThreadSafeRepository,
    work: &Work,
    raw: &state::RawWriter,
) -> Result<(), ImportError> {
    let phase = PhaseMirror::open(mirror, staging::DELTA_BASE_CACHE);
    let mirror = phase.get();
    let list: Vec<(&Sha1, ObjectKind)> = work.raw().collect();
    list.par_iter().try_for_each(|(sha, kind)| {
        match read_object(mirror, sha) {
            Ok((read, body)) if read == *kind => {
                raw.retain(sha, &frame(read, &body)).map(|_| ())?
            }
            _ => {}
        }
        Ok(())
    })
}

/// A phase under way: the mirror it reads through, and its fault-injection
/// guard (`MKIT_BRIDGE_FAIL_AT` names phases as progress does).
struct Phase<'m> {
    mirror: PhaseMirror<'m>,
    _fault: durable::fault::Phase,
}

impl<'a> Run<'a> {
    /// Start phase `name` of `count` objects.
    fn begin(&self, name: &'static str, count: usize) -> Phase<'a> {
        self.progress.phase(name, count as u64);
        Phase {
            mirror: PhaseMirror::open(self.mirror, staging::DELTA_BASE_CACHE),
            _fault: durable::fault::phase(name),
        }
    }

    /// Translate every needed object, bottom-up, staging into `batch`.
    pub(super) fn translate(
        &mut self,
        work: &Work,
        batch: &WriteBatch<'_>,
        interrupt: &AtomicBool,
    ) -> Result<(), ImportError> {
        self.laps.restart();
        self.translate_blobs(&work.blobs, batch, interrupt)?;
        self.laps.lap("blobs");
        self.translate_trees(&work.trees, batch, interrupt)?;
        // Blobs and trees are most of the files: publish them while the
        // commit chain is computed.
        batch.checkpoint();
        self.laps.lap("trees");
        self.translate_commits(&work.commits, batch, interrupt)?;
        self.laps.lap("commit files");
        self.translate_tags(&work.tags, batch)?;
        self.laps.lap("tags");
        Ok(())
    }

    /// Blobs, in parallel. A failed write stops the run (rayon's collect
    /// into a `Result` stops at the first error); a refused object only
    /// refuses the refs that need it.
    fn translate_blobs(
        &mut self,
        blobs: &[Sha1],
        batch: &WriteBatch<'_>,
        interrupt: &AtomicBool,
    ) -> Result<(), ImportError> {
        let phase = self.begin("blobs", blobs.len());
        let (mirror, progress) = (phase.mirror.get(), self.progress);
        self.stage_wave(blobs, |sha, _| {
            if interrupt.load(Ordering::Relaxed) {
                return Err(Refusal::MissingObject { object: *sha });
            }
            // The header first, so an object over the 1 GiB cap is refused
            // before its content is read into memory.
            let header = read_header(mirror, sha);
            if let Some((kind, size)) = header {
                rules::check_object_size(sha, kind, size)?;
            }
            let (kind, data) = read_object(mirror, sha)?;
            let shape = rules::check_blob(sha, header, kind, data.len() as u64)?;
            progress.advance(0, data.len() as u64);
            Ok((content::stage_content(batch, &data), shape.kind, 0))
        })
    }

    /// Trees, in waves of equal height (children always in an earlier wave).
    fn translate_trees(
        &mut self,
        waves: &[Vec<Sha1>],
        batch: &WriteBatch<'_>,
        interrupt: &AtomicBool,
    ) -> Result<(), ImportError> {
        let phase = self.begin("trees", waves.iter().map(Vec::len).sum());
        let (mirror, options) = (phase.mirror.get(), self.options);
        for wave in waves {
            if interrupt.load(Ordering::Relaxed) {
                return Err(ImportError::Interrupted);
            }
            self.stage_wave(wave, |sha, memo| {
                let (_, body) = read_object(mirror, sha)?;
                let t = rules::translate_tree(sha, &body, options, |c| memo.get(c).copied())?;
                let depth = t.depth;
                Ok((batch.add(&Object::Tree(t.tree)), ObjectType::Tree, depth))
            })?;
        }
        Ok(())
    }

    /// Translate and stage `wave` in parallel (`make` gives what was staged,
    /// the type it became and its depth), then record the results.
    fn stage_wave(
        &mut self,
        wave: &[Sha1],
        make: impl Fn(&Sha1, &HashMap<Sha1, Translated>) -> Result<Staged, Refusal> + Sync,
    ) -> Result<(), ImportError> {
        let (memo, progress) = (&self.memo, self.progress);
        let results: Vec<Outcome> = wave
            .par_iter()
            .map(|sha| {
                let r = match make(sha, memo) {
                    Ok((stored, kind, depth)) => {
                        staged(sha, stored)?.map(|id| Translated { id, kind, depth })
                    }
                    Err(refusal) => Err(refusal),
                };
                progress.advance(1, 0);
                Ok((*sha, r))
            })
            .collect::<Result<_, ImportError>>()?;
        self.absorb(results);
        Ok(())
    }

    /// Commits, in waves of equal generation. Their bodies are read a block
    /// of waves at a time, in parallel, the next block while the chain goes
    /// through the current one. With two workers or more their files are
    /// written by a thread of their own while the chain goes on (only ids
    /// travel along the chain); with one, the chain writes them itself, a
    /// chunk at a time, so that `--jobs 1` is one thread of work.
    fn translate_commits(
        &mut self,
        waves: &[Vec<Sha1>],
        batch: &WriteBatch<'_>,
        interrupt: &AtomicBool,
    ) -> Result<(), ImportError> {
        let phase = self.begin("commits", waves.iter().map(Vec::len).sum());
        let mirror = phase.mirror.get();
        let own_writer = rayon::current_num_threads() >= 2;
        std::thread::scope(|scope| -> Result<(), ImportError> {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<Prepared>>();
            let writer = own_writer.then(|| {
                scope.spawn(move || -> Result<(), StoreError> {
                    for chunk in rx {
                        write_commits(batch, &chunk)?;
                    }
                    Ok(())
                })
            });
            let mut to_write = Vec::new();
            let blocks = blocks(waves, COMMIT_READ_BLOCK);
            let mut bodies = blocks.first().map(|b| read_block(mirror, b));
            for (k, block) in blocks.iter().enumerate() {
                let current = bodies.take().unwrap_or_default();
                // The next block is read on the pool while this thread goes
                // on along the chain (with one worker, after it).
                let mut chained = Ok(());
                rayon::in_place_scope(|s| {
                    if let Some(next) = blocks.get(k + 1) {
                        let bodies = &mut bodies;
                        s.spawn(move |_| *bodies = Some(read_block(mirror, next)));
                    }
                    for wave in *block {
                        if interrupt.load(Ordering::Relaxed) {
                            chained = Err(ImportError::Interrupted);
                            return;
                        }
                        self.commit_wave(wave, &current, &mut to_write);
                        if to_write.len() < COMMIT_WRITE_CHUNK {
                            continue;
                        }
                        if own_writer {
                            // A send fails only once the writer has stopped
                            // on an error, which its join below reports.
                            let _ = tx.send(std::mem::take(&mut to_write));
                        } else if let Err(e) = write_commits(batch, &to_write) {
                            chained = Err(e.into());
                            return;
                        } else {
                            to_write.clear();
                        }
                    }
                });
                chained?;
            }
            drop(tx);
            self.laps.lap("commits");
            // The chain is done: the pool writes what is left while the
            // writer drains its queue.
            let rest = to_write
                .par_iter()
                .try_for_each(|p| batch.add_prepared(p).map(|_| ()));
            match writer.map(|w| w.join()) {
                Some(Ok(written)) => written?,
                // A panic is a bug, not an input error: pass it on as is.
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => {}
            }
            rest?;
            Ok(())
        })
    }

    /// One wave of commits: translated, signed and encoded (inline when the
    /// wave is small: linear history is a long run of one-commit waves),
    /// their files queued on `to_write`.
    fn commit_wave(
        &mut self,
        wave: &[Sha1],
        bodies: &HashMap<Sha1, Result<Vec<u8>, Refusal>>,
        to_write: &mut Vec<Prepared>,
    ) {
        let (memo, key, progress) = (&self.memo, self.key, self.progress);
        let one = |sha: &Sha1| {
            let r = match bodies.get(sha) {
                Some(Ok(body)) => rules::translate_commit(sha, body, |p| memo.get(p).copied(), key)
                    .and_then(|c| {
                        prepare(&Object::Commit(c)).map_err(|e| Refusal::CorruptObject {
                            object: *sha,
                            detail: e.to_string(),
                        })
                    }),
                Some(Err(refusal)) => Err(refusal.clone()),
                None => Err(Refusal::MissingObject { object: *sha }),
            };
            progress.advance(1, 0);
            (*sha, r)
        };
        let results: Vec<(Sha1, Result<Prepared, Refusal>)> = if wave.len() < PARALLEL_WAVE {
            wave.iter().map(one).collect()
        } else {
            wave.par_iter().map(one).collect()
        };
        let settled = results
            .into_iter()
            .map(|(sha, r)| {
                let r = r.map(|p| {
                    let t = Translated {
                        id: p.id(),
                        kind: ObjectType::Commit,
                        depth: 0,
                    };
                    to_write.push(p);
                    t
                });
                (sha, r)
            })
            .collect();
        self.absorb(settled);
    }

    /// Tags, in rounds: each round's targets are settled in earlier ones.
    fn translate_tags(
        &mut self,
        rounds: &[Vec<Sha1>],
        batch: &WriteBatch<'_>,
    ) -> Result<(), ImportError> {
        let phase = self.begin("tags", rounds.iter().map(Vec::len).sum());
        let (mirror, key) = (phase.mirror.get(), self.key);
        // Tags of one round never depend on each other.
        for round in rounds {
            self.stage_wave(round, |sha, memo| {
                let (_, body) = read_object(mirror, sha)?;
                let t = rules::translate_tag(sha, &body, |t| memo.get(t).copied(), key)?;
                let chain = t.chain;
                Ok((batch.add(&Object::Tag(t.tag)), ObjectType::Tag, chain))
            })?;
        }
        Ok(())
    }

    /// Record a phase's results: translated objects in the memo, refused
    /// ones with their refusal (a missing child that was itself refused
    /// reports the child's refusal).
    pub(super) fn absorb(&mut self, results: Vec<Outcome>) {
        for (sha, r) in results {
            match r {
                Ok(t) => {
                    self.memo.insert(sha, t);
                    self.new_objects.push(sha);
                }
                Err(e) => self.refuse(sha, e),
            }
        }
    }
}

/// Stage the files of `chunk`, in order.
fn write_commits(batch: &WriteBatch<'_>, chunk: &[Prepared]) -> Result<(), StoreError> {
    chunk
        .iter()
        .try_for_each(|p| batch.add_prepared(p).map(|_| ()))
}

/// The bodies of a block of commit waves, read in parallel (a commit that
/// cannot be read keeps its refusal).
fn read_block(
    mirror: &gix::ThreadSafeRepository,
    block: &[Vec<Sha1>],
) -> HashMap<Sha1, Result<Vec<u8>, Refusal>> {
    block
        .iter()
        .flatten()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|sha| (**sha, read_object(mirror, sha).map(|(_, body)| body)))
        .collect()
}

/// `waves` in consecutive runs of about `size` objects (whole waves).
fn blocks(waves: &[Vec<Sha1>], size: usize) -> Vec<&[Vec<Sha1>]> {
    let mut out = Vec::new();
    let (mut start, mut count) = (0, 0);
    for (i, wave) in waves.iter().enumerate() {
        count += wave.len();
        if count >= size {
            out.push(&waves[start..=i]);
            (start, count) = (i + 1, 0);
        }
    }
    if start < waves.len() {
        out.push(&waves[start..]);
    }
    out
}
