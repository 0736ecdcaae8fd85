//! The provenance of imported heads (SPEC-GIT-IMPORT §5): each imported
//! ref tip needs a verified `git-import/v1` attestation binding that head,
//! its ref and the recorded source, signed by the pinned importer key.

use super::audit::Audit;
use super::{ImportContext, VerifiedRef};
use crate::mkit::repo::Repo;

/// The failure 0.5.0 reports for an imported head no claim vouches for.
pub(super) const NO_CLAIM: &str =
    "no verified git-import/v1 attestation matches this head, ref and source";

/// Check the attestation of `r`'s tip when it is an imported head.
pub(super) fn check_head(
    audit: &mut Audit<'_>,
    _repo: &Repo,
    _remote: &str,
    _import: &ImportContext,
    r: &VerifiedRef,
) {
    if !audit.is_imported(&r.git) || audit.twin_of(&r.git).is_none() {
        return;
    }
    // Provisional until the attestation module lands: no claim can be
    // verified, so none vouches.
    audit.fail(&r.git, NO_CLAIM);
}
