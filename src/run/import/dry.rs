//! `fetch --dry-run` (and `import <url> --dry-run`): what an import would do,
//! with nothing written on the mkit side.
//!
//! The upstream is fetched into the staging mirror as usual (that is the
//! only write), then the run is planned exactly as [`super::import`] would
//! run it: the same binding checks, the same map verdict, the same walk and
//! the same translation, but into a [`Store::dry_batch`], which computes
//! every id and counts what is new without creating a file. No raw bytes are
//! retained, no map line appended, no ref, ref state, stamp, binding,
//! attestation or crash marker written, and the record of reported refusals
//! is left as it is. The state lock is held for the checks, the fetch and
//! the reading of the map and ref state, then released: the translation only
//! reads objects (the mirror's and the store's), which are never rewritten.
//!
//! [`Store::dry_batch`]: crate::mkit::store::Store::dry_batch

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::bridge::cause::Cause;
use crate::bridge::import::{self as rules, ImportOptions, RefMapping};
use crate::bridge::refusal::Refusal;
use crate::git::Sha1;
use crate::git::staging::{self, UpstreamRef};
use crate::mkit::refs;
use crate::mkit::repo::Repo;
use crate::state::{self, Direction, RefState, StateError};

use super::{
    ImportError, ImportRequest, Laps, MapVerdict, Run, SkippedRef, TagDecision, check_bindings,
    divergence_probe, is_ancestor, map_verdict, open_mirror, report, tag_decision,
};

/// How a ref would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not imported before (or refused last time).
    New,
    /// Moved forward (a branch whose old tip is an ancestor of the new one),
    /// or a tag the upstream moved.
    Updated,
    /// A branch the upstream force-pushed: the old tip is not an ancestor.
    Forced,
    /// Where the previous import left it.
    Unchanged,
    /// A tag moved locally since the previous import: left alone, with a
    /// warning (as the real run does).
    KeptMovedLocally,
}

impl Change {
    /// The word the plan shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Updated => "updated",
            Change::Forced => "forced",
            Change::Unchanged => "unchanged",
            Change::KeptMovedLocally => "kept",
        }
    }
}

/// One importable ref in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRef {
    /// The upstream ref.
    pub upstream: String,
    /// The mkit ref it lands on.
    pub mkit_ref: String,
    /// The upstream tip the previous import recorded.
    pub old: Option<Sha1>,
    /// The upstream tip now.
    pub new: Sha1,
    /// What would happen to it.
    pub change: Change,
}

/// A tracking ref the run would remove (its branch was deleted upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedRef {
    /// The deleted upstream branch.
    pub upstream: String,
    /// Its tracking ref.
    pub mkit_ref: String,
    /// The upstream tip last imported.
    pub old: Sha1,
}

/// What an import would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Importable refs, in upstream order, with what would happen to each.
    pub refs: Vec<PlannedRef>,
    /// Refs that would be skipped, in upstream order.
    pub skipped: Vec<SkippedRef>,
    /// The skipped refs grouped by root cause.
    pub causes: Vec<Cause>,
    /// Tracking refs that would be removed.
    pub pruned: Vec<PrunedRef>,
    /// Git objects that would be translated.
    pub translated: u64,
    /// mkit objects that would be newly written.
    pub written: u64,
    /// Notes (a map rebuild the real run would do, and why).
    pub notes: Vec<String>,
    /// Warnings the real run would give besides the refs above (historic
    /// modes normalized).
    pub warnings: Vec<String>,
    /// The upstream's default branch.
    pub default_branch: Option<String>,
    /// True when this dry run created the staging mirror.
    pub cloned: bool,
}

/// Plan an import of `req.url` into `repo` under state `req.remote`,
/// writing nothing but the staging mirror. Refuses exactly what the real
/// run refuses before translating (bindings, the divergence probe).
pub fn plan(repo: &Repo, req: &ImportRequest<'_>) -> Result<Plan, ImportError> {
    let mkit_dir = repo.mkit_dir();
    let state_dir = state::state_dir(mkit_dir, req.remote)?;
    let identity = crate::git::remote::remote_identity(req.url);
    let lock = state::lock_state_default(mkit_dir, req.remote)?;
    let direction = check_bindings(mkit_dir, &state_dir, req, &identity)?;
    crate::durable::create_dir_all_durable(&state_dir).map_err(StateError::from)?;
    let interrupted_before = state::importing_is_set(&state_dir)?;
    // Interrupted during the fetch: the same error as the real run's.
    let fetched = match staging::fetch(&state_dir, req.url, req.interrupt) {
        Err(staging::StagingError::Interrupted { .. }) => return Err(ImportError::Interrupted),
        other => other?,
    };
    let previous: HashMap<String, RefState> = state::load_import_ref_state(&state_dir)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let (map, intact) = state::load_map_inverse_checked(&state_dir)?;
    // Everything read under the lock; the rest reads immutable objects.
    drop(lock);

    let mut plan = Plan {
        default_branch: fetched.default_branch.clone(),
        cloned: fetched.cloned,
        ..Plan::default()
    };
    let map = match map_verdict(interrupted_before, intact, &map, previous.values()) {
        MapVerdict::Trusted => map,
        verdict => {
            plan.notes.push(format!(
                "{} (the real run will; this plan translates as it would)",
                verdict.note()
            ));
            state::Sha1ToBlake::new()
        }
    };
    let jobs = if req.jobs == 0 {
        2 * std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        req.jobs
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| ImportError::Threads {
            jobs: req.jobs,
            message: e.to_string(),
        })?;
    let mirror = open_mirror(&state_dir)?;
    if map.is_empty() {
        divergence_probe(repo, &mirror, &fetched.refs, &req.key.public())?;
    }

    let empty = state::Sha1ToBlake::new();
    let mut run = Run {
        mirror: &mirror,
        store: repo.store(),
        map: &map,
        key: req.key,
        options: ImportOptions {
            fork_mode: direction == Some(Direction::Fork),
        },
        progress: req.progress,
        memo: HashMap::new(),
        refusals: HashMap::new(),
        normalized: false,
        new_objects: Vec::new(),
        laps: Laps::default(),
    };
    let mut mapped: Vec<(UpstreamRef, Result<RefMapping, Refusal>)> = Vec::new();
    for r in &fetched.refs {
        match rules::map_ref(req.remote, r.name.as_bytes()) {
            Ok(Some(m)) => mapped.push((r.clone(), Ok(m))),
            Ok(None) => {}
            Err(refusal) => mapped.push((r.clone(), Err(refusal))),
        }
    }
    let tips: Vec<Sha1> = mapped
        .iter()
        .filter(|(_, m)| m.is_ok())
        .map(|(r, _)| r.target)
        .collect();
    // A map that disagrees with the store is read past, as the real run
    // would rebuild it: the plan is made from a walk without it.
    let graph = loop {
        match pool.install(|| run.walk(&tips))? {
            Ok(graph) => break graph,
            Err(disagreement) => {
                plan.notes.push(disagreement.note());
                run.map = &empty;
                run.refusals.clear();
            }
        }
    };
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ImportError::Interrupted);
    }
    let batch = repo.store().dry_batch();
    pool.install(|| run.translate(&graph, &batch, req.interrupt))?;
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ImportError::Interrupted);
    }
    plan.written = batch.commit()?.written;
    plan.translated = run
        .new_objects
        .iter()
        .filter(|s| run.memo.contains_key(s))
        .count() as u64;

    for (upstream, mapping) in mapped {
        let mapping = match mapping {
            Ok(m) => m,
            Err(refusal) => {
                plan.skipped.push(SkippedRef {
                    upstream: upstream.name,
                    refusal,
                });
                continue;
            }
        };
        let id = match run.resolve_tip(&upstream.target) {
            Ok(id) => id,
            Err(refusal) => {
                plan.skipped.push(SkippedRef {
                    upstream: upstream.name,
                    refusal,
                });
                continue;
            }
        };
        let before = previous.get(&upstream.name);
        let moved_locally = match &mapping {
            RefMapping::Tag { mkit_ref, .. } => {
                tag_decision(refs::read_ref(mkit_dir, mkit_ref)?, id, before)
                    == TagDecision::MovedLocally
            }
            RefMapping::Branch { .. } => false,
        };
        let change = match before {
            _ if moved_locally => Change::KeptMovedLocally,
            None => Change::New,
            Some(old) if old.git == upstream.target && old.mkit == id => Change::Unchanged,
            Some(old)
                if old.git != upstream.target
                    && matches!(mapping, RefMapping::Branch { .. })
                    && !is_ancestor(&mirror, &old.git, &upstream.target) =>
            {
                Change::Forced
            }
            Some(_) => Change::Updated,
        };
        plan.refs.push(PlannedRef {
            upstream: upstream.name,
            mkit_ref: mapping.mkit_ref().to_owned(),
            old: before.map(|b| b.git),
            new: upstream.target,
            change,
        });
    }
    // Branches deleted upstream: their tracking refs go, if still where the
    // previous import left them (the real run removes them by compare and
    // swap on that value).
    let mut gone: Vec<(&String, &RefState)> = previous
        .iter()
        .filter(|(name, _)| !fetched.refs.iter().any(|r| &r.name == *name))
        .collect();
    gone.sort_by(|a, b| a.0.cmp(b.0));
    for (name, old) in gone {
        if let Ok(Some(RefMapping::Branch { mkit_ref, .. })) =
            rules::map_ref(req.remote, name.as_bytes())
            && refs::read_ref(mkit_dir, &mkit_ref)? == Some(old.mkit)
        {
            plan.pruned.push(PrunedRef {
                upstream: name.clone(),
                mkit_ref,
                old: old.git,
            });
        }
    }
    if run.normalized {
        plan.warnings.push(
            "historic tree modes would be normalized (declared-lossy; originals retained in the \
             staging mirror)"
                .to_owned(),
        );
    }
    plan.causes = report::causes(&mirror, &run.refusals, &fetched.refs, &plan.skipped);
    Ok(plan)
}
