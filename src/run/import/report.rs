//! The refusal report's driver side: trace the skipped refs to their root
//! causes ([`crate::bridge::cause`]) with the staging mirror as the object
//! source, and remember which causes were reported (`refusals-reported`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::bridge::cause::{self, Cause, Skipped};
use crate::bridge::import::MAX_OBJECT_BYTES;
use crate::bridge::refusal::Refusals;
use crate::git::Sha1;
use crate::git::source;
use crate::mkit::repo::Repo;
use crate::state;

use super::setup::Prepared;
use super::{ImportOutcome, ImportRequest, NoProgress, Run, SkippedRef, cache};

/// The tracer's view of `skipped`, with each ref's upstream tip.
fn listed<'a>(p: &'a Prepared, skipped: &'a [SkippedRef]) -> Vec<Skipped<'a>> {
    let tips: HashMap<&str, Sha1> = p
        .fetched
        .refs
        .iter()
        .map(|r| (r.name.as_str(), r.target))
        .collect();
    skipped
        .iter()
        .map(|s| Skipped {
            name: &s.upstream,
            tip: tips.get(s.upstream.as_str()).copied(),
            refusal: &s.refusal,
        })
        .collect()
}

/// Group `skipped` by root cause: from the refusal cache when it holds the
/// causes of exactly these skipped refs, else traced through the run's
/// refused objects with the staging mirror as the object source. When the
/// run answered tips from the cache (and so did not walk their closures),
/// those closures are walked first, read-only, for their refused objects;
/// when that walk cannot be done, `warnings` says so and the causes are
/// traced from what the run walked.
pub(super) fn causes(
    repo: &Repo,
    req: &ImportRequest<'_>,
    p: &Prepared,
    run: &Run<'_>,
    skipped: &[SkippedRef],
    warnings: &mut Vec<String>,
) -> Vec<Cause> {
    if skipped.is_empty() {
        return Vec::new();
    }
    let list = listed(p, skipped);
    let reuse = p.cache.get();
    if let Some(found) = reuse.and_then(|r| cache::causes(r, &list)) {
        crate::run::hooks::probe("refusal-causes", || "cached".to_owned());
        return found;
    }
    crate::run::hooks::probe("refusal-causes", || "traced".to_owned());
    let mut refusals = Cow::Borrowed(&run.refusals);
    if let Some(reuse) = reuse.filter(|r| !r.answered.is_empty()) {
        let tips: Vec<Sha1> = reuse.answered.keys().copied().collect();
        crate::run::hooks::probe("refusal-causes", || "traced after a walk".to_owned());
        match refused_below(repo, req, p, &tips) {
            Some(more) => refusals.to_mut().absorb(more),
            None => warnings.push(
                "cannot walk the history of the refused refs again; the refusal causes are \
                 traced from what this run walked"
                    .to_owned(),
            ),
        }
    }
    cause::trace(&list, &refusals, &|sha: &Sha1| {
        source::read_within(&p.mirror, sha, MAX_OBJECT_BYTES).ok()
    })
}

/// The refused objects in the closures of `tips`, found by a walk and a
/// translation into a dry batch (nothing is written) in a run of its own;
/// `None` when the walk meets a map hit the store contradicts, is
/// interrupted, or fails.
fn refused_below(
    repo: &Repo,
    req: &ImportRequest<'_>,
    p: &Prepared,
    tips: &[Sha1],
) -> Option<Refusals> {
    let mut sub = p.run(repo, req);
    sub.progress = &NoProgress;
    let work = p.pool.install(|| sub.walk(tips)).ok()?.ok()?;
    let batch = repo.store().dry_batch();
    p.pool
        .install(|| sub.translate(&work, &batch, req.interrupt))
        .ok()?;
    Some(sub.refusals)
}

/// Fill `outcome.causes`, mark those an earlier run reported unchanged, and
/// record this run's causes for the next, in the record of reported causes
/// and in the refusal cache. A record that cannot be read or written only
/// means causes are reported again (or history walked again): it is a
/// warning, not a failure of the import (whose refs and state are already
/// written).
pub(super) fn settle(
    repo: &Repo,
    req: &ImportRequest<'_>,
    p: &Prepared,
    run: &Run<'_>,
    outcome: &mut ImportOutcome,
) {
    outcome.causes = causes(repo, req, p, run, &outcome.skipped, &mut outcome.warnings);
    let state_dir = &p.state_dir;
    if let Some(reuse) = p.cache.get()
        && let Err(e) = cache::store(p, reuse, &listed(p, &outcome.skipped), &outcome.causes)
    {
        outcome.warnings.push(format!(
            "cannot record the refusal cache ({e}); the next fetch walks the refused history again"
        ));
    }
    let known = match state::load_reported(state_dir) {
        Ok(k) => k,
        Err(e) => {
            outcome.warnings.push(format!(
                "cannot read the record of reported refusals ({e}); every cause is reported"
            ));
            BTreeMap::new()
        }
    };
    let mut now = BTreeMap::new();
    for c in &mut outcome.causes {
        let (id, print) = (c.id(), c.fingerprint());
        c.reported = known.get(&id) == Some(&print);
        now.insert(id, print);
    }
    if now != known
        && let Err(e) = state::store_reported(state_dir, &now)
    {
        outcome.warnings.push(format!(
            "cannot record the reported refusals ({e}); they will be reported again"
        ));
    }
}
