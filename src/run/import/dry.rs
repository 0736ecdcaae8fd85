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

use std::sync::atomic::Ordering;

use crate::bridge::cause::Cause;
use crate::bridge::plan::import::{Change as RefChange, ImportPlan, Local, PruneAction};
use crate::git::Sha1;
use crate::mkit::repo::Repo;
use crate::state;

use super::setup::{self, Pass};
use super::{ImportError, ImportRequest, MapVerdict, SkippedRef, report, update};

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

/// The key a dry run plans with when the real run would generate one: a
/// fixed throwaway key, never stored, that signs nothing that is kept.
pub fn dry_run_key() -> crate::mkit::sign::KeyPair {
    crate::mkit::sign::KeyPair::from_seed(
        blake3::hash(b"mkit-bridge dry-run throwaway import key").as_bytes(),
    )
}

/// Plan an import of `req.url` into `repo` under state `req.remote`,
/// writing nothing but the staging mirror. Refuses exactly what the real
/// run refuses before translating (bindings, the divergence probe).
pub fn plan(repo: &Repo, req: &ImportRequest<'_>) -> Result<Plan, ImportError> {
    let p = setup::prepare(repo, req, Pass::Dry)?;
    let mut plan = Plan {
        default_branch: p.fetched.default_branch.clone(),
        cloned: p.fetched.cloned,
        ..Plan::default()
    };
    if p.verdict != MapVerdict::Trusted {
        plan.notes.push(format!(
            "{} (the real run will; this plan translates as it would)",
            p.verdict.note()
        ));
    }
    // A map that disagrees with the store is read past, as the real run
    // would rebuild it: the plan is made from a walk without it.
    let empty = state::Sha1ToBlake::new();
    let mut run = p.run(repo, req);
    let mapped = setup::map_upstream(req.remote, &p.fetched.refs);
    let (graph, _) = setup::walk(&p, &mut run, &mapped, &empty, &mut plan.notes)?;
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ImportError::Interrupted);
    }
    let batch = repo.store().dry_batch();
    p.pool
        .install(|| run.translate(&graph, &batch, req.interrupt))?;
    if req.interrupt.load(Ordering::Relaxed) {
        return Err(ImportError::Interrupted);
    }
    plan.written = batch.commit()?.written;
    plan.translated = run
        .new_objects
        .iter()
        .filter(|s| run.memo.contains_key(s))
        .count() as u64;

    let refs = update::plan(repo.mkit_dir(), req.remote, &p, &run, mapped, None)?;
    describe(&refs, &mut plan);
    if run.normalized {
        plan.warnings.push(
            "historic tree modes would be normalized (declared-lossy; originals retained in the \
             staging mirror)"
                .to_owned(),
        );
    }
    plan.causes = report::causes(repo, req, &p, &run, &plan.skipped, &mut plan.warnings);
    Ok(plan)
}

/// The dry run's view of the ref plan: what would happen to each imported
/// ref, which would be skipped, and which tracking refs would go (those
/// still where the previous import left them: the real run removes them by
/// compare and swap on that value).
fn describe(refs: &ImportPlan, plan: &mut Plan) {
    for (r, planned) in refs.imported() {
        let change = match (planned.local, planned.change) {
            (Local::KeptMovedTag { .. }, _) => Change::KeptMovedLocally,
            (_, RefChange::New) => Change::New,
            (_, RefChange::Unchanged) => Change::Unchanged,
            (_, RefChange::Forced) => Change::Forced,
            (_, RefChange::FastForward | RefChange::TagMoved | RefChange::Retranslated) => {
                Change::Updated
            }
        };
        plan.refs.push(PlannedRef {
            upstream: r.upstream.clone(),
            mkit_ref: planned.mkit_ref().to_owned(),
            old: r.recorded.map(|b| b.git),
            new: r.target,
            change,
        });
    }
    plan.skipped = update::skipped(refs);
    plan.pruned = refs
        .pruned
        .iter()
        .filter(|x| x.action == PruneAction::Delete)
        .map(|x| PrunedRef {
            upstream: x.upstream.clone(),
            mkit_ref: x.mkit_ref.clone(),
            old: x.recorded.git,
        })
        .collect();
}
