//! The refusal report's driver side: trace the skipped refs to their root
//! causes ([`crate::bridge::cause`]) with the staging mirror as the object
//! source, and remember which causes were reported (`refusals-reported`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::bridge::cause::{self, Cause, Skipped};
use crate::bridge::refusal::Refusal;
use crate::git::Sha1;
use crate::git::staging::UpstreamRef;
use crate::state;

use super::reopen::{REOPEN_AFTER, Recycling};
use super::{ImportOutcome, SkippedRef};
use crate::git::staging;

/// Group `skipped` by root cause. `refusals` are the run's refused objects,
/// `refs` the upstream refs as fetched (for the tips).
pub(super) fn causes(
    mirror: &gix::ThreadSafeRepository,
    refusals: &HashMap<Sha1, Refusal>,
    refs: &[UpstreamRef],
    skipped: &[SkippedRef],
) -> Vec<Cause> {
    if skipped.is_empty() {
        return Vec::new();
    }
    let tips: HashMap<&str, Sha1> = refs.iter().map(|r| (r.name.as_str(), r.target)).collect();
    let list: Vec<Skipped<'_>> = skipped
        .iter()
        .map(|s| Skipped {
            name: &s.upstream,
            tip: tips.get(s.upstream.as_str()).copied(),
            refusal: &s.refusal,
        })
        .collect();
    // Read through openings of its own, whose mapped pages go with them.
    let reader = Recycling::new(mirror, staging::DELTA_BASE_CACHE, REOPEN_AFTER);
    cause::trace(&list, refusals, &|sha: &Sha1| reader.object(sha).ok())
}

/// Fill `outcome.causes`, mark those an earlier run reported unchanged, and
/// record this run's causes for the next. A record that cannot be read or
/// written only means causes are reported again: it is a warning, not a
/// failure of the import (whose refs and state are already written).
pub(super) fn settle(
    state_dir: &Path,
    mirror: &gix::ThreadSafeRepository,
    refusals: &HashMap<Sha1, Refusal>,
    refs: &[UpstreamRef],
    outcome: &mut ImportOutcome,
) {
    outcome.causes = causes(mirror, refusals, refs, &outcome.skipped);
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
