//! The ref phase of an import: gather what the planner needs
//! ([`crate::bridge::plan::import`]), and apply its plan with a
//! compare-and-swap on every write and delete.

use std::collections::BTreeMap;
use std::path::Path;

use crate::bridge::plan::import::{
    self as refplan, ImportPlan, Oracle, PruneAction, Recorded, Upstream,
};
use crate::git::Sha1;
use crate::mkit::Id;
use crate::mkit::refs::{self, Head, RefError};

use super::setup::{Mapped, Prepared};
use super::{ImportError, Run, SkippedRef, is_ancestor};

/// The repository as the planner sees it: local refs from the ref store,
/// ancestry from the staging mirror.
struct Repository<'a> {
    mkit_dir: &'a Path,
    mirror: &'a gix::ThreadSafeRepository,
}

impl Oracle for Repository<'_> {
    type Error = RefError;

    fn local(&mut self, name: &str) -> Result<Option<Id>, RefError> {
        refs::read_ref(self.mkit_dir, name)
    }

    fn descends(&mut self, old: &Sha1, new: &Sha1) -> Result<bool, RefError> {
        Ok(is_ancestor(self.mirror, old, new))
    }
}

/// Plan every ref of the run: `mapped` as [`super::setup::map_upstream`]
/// gave them, each resolved to its translation (or refusal) by `run`.
/// `checkout` is the upstream default branch when the run sets the local
/// one.
pub(super) fn plan(
    mkit_dir: &Path,
    remote: &str,
    p: &Prepared,
    run: &Run<'_>,
    mapped: Vec<Mapped>,
    checkout: Option<&str>,
) -> Result<ImportPlan, ImportError> {
    let upstream: Vec<Upstream> = mapped
        .into_iter()
        .map(|(r, mapping)| Upstream {
            resolved: mapping.and_then(|m| run.resolve_tip(&r.target).map(|id| (m, id))),
            name: r.name,
            target: r.target,
        })
        .collect();
    let recorded: BTreeMap<String, Recorded> = p
        .previous
        .values()
        .map(|s| {
            let r = Recorded {
                git: s.git,
                mkit: s.mkit,
            };
            (s.name.clone(), r)
        })
        .collect();
    let mut oracle = Repository {
        mkit_dir,
        mirror: &p.mirror,
    };
    Ok(refplan::plan(
        remote,
        upstream,
        &recorded,
        checkout,
        &mut oracle,
    )?)
}

/// Apply `plan`: the tracking refs and tags in one batch of
/// compare-and-swaps, then the removals of deleted branches' tracking refs,
/// each on the recorded value, then the checkout branch and `HEAD`. A
/// failed compare-and-swap is recorded in the plan (it becomes a warning);
/// any other failure stops the run. Returns the checked-out branch.
pub(super) fn apply(mkit_dir: &Path, plan: &mut ImportPlan) -> Result<Option<String>, ImportError> {
    let fault = crate::durable::fault::phase("refs");
    let statuses = refs::update_refs(mkit_dir, &plan.writes())?;
    plan.settle_writes(&statuses);
    drop(fault);
    super::crash_point("refs");
    for prune in &mut plan.pruned {
        if prune.action != PruneAction::Delete {
            continue;
        }
        match refs::delete_ref(mkit_dir, &prune.mkit_ref, Some(prune.recorded.mkit)) {
            Ok(removed) => prune.settle(Ok(removed)),
            Err(RefError::Conflict { found, .. }) => prune.settle(Err(found)),
            Err(e) => return Err(e.into()),
        }
    }
    let Some(checkout) = &mut plan.checkout else {
        return Ok(None);
    };
    let statuses = refs::update_refs(mkit_dir, &[checkout.update()])?;
    if let Some(status) = statuses.first() {
        checkout.settle(*status);
    }
    if !checkout.done() {
        return Ok(None);
    }
    refs::write_head(mkit_dir, &Head::Symbolic(checkout.local.clone()))?;
    Ok(Some(checkout.branch.clone()))
}

/// The refs `plan` skips, with their refusals, in upstream order.
pub(super) fn skipped(plan: &ImportPlan) -> Vec<SkippedRef> {
    plan.skipped()
        .map(|(r, refusal)| SkippedRef {
            upstream: r.upstream.clone(),
            refusal: refusal.clone(),
        })
        .collect()
}
