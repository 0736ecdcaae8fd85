//! The provenance of imported heads (SPEC-GIT-IMPORT §5): each imported
//! ref tip needs a verified `git-import/v1` attestation binding that head,
//! its ref and the recorded source, signed by the pinned importer key.
//!
//! A claim counts only when everything it says matches: being a valid
//! envelope stored in the head's attestation directory is not enough (an
//! attestation about another head copied there must not vouch), and the
//! signature must be the pinned importer key's (the private key is not
//! needed, so a state verifies on any machine).

use serde_json::Value;

use super::audit::Audit;
use super::{ImportContext, VerifiedRef};
use crate::attest::{self, Claim};
use crate::git::sha1::Sha1;
use crate::mkit::id::Id;
use crate::mkit::repo::Repo;
use crate::state::IMPORT_SPEC_VERSION;

/// The failure 0.5.0 reports for an imported head no claim vouches for.
pub(super) const NO_CLAIM: &str =
    "no verified git-import/v1 attestation matches this head, ref and source";

/// Check the attestation of `r`'s tip when it is an imported head with a
/// mapped twin (a head without one has already failed the walk).
pub(super) fn check_head(
    audit: &mut Audit<'_>,
    repo: &Repo,
    remote: &str,
    import: &ImportContext,
    r: &VerifiedRef,
) {
    if !audit.is_imported(&r.git) {
        return;
    }
    let Some(twin) = audit.twin_of(&r.git) else {
        return;
    };
    if !vouched(repo, remote, import, r, &twin) {
        audit.fail(&r.git, NO_CLAIM);
    }
}

/// True when some envelope stored for `twin` verifies under the pinned key
/// and claims exactly this head, ref and source.
fn vouched(repo: &Repo, remote: &str, import: &ImportContext, r: &VerifiedRef, twin: &Id) -> bool {
    let Ok(envelopes) = attest::store::list(repo.mkit_dir(), twin) else {
        return false;
    };
    if envelopes.is_empty() {
        return false;
    }
    let Ok(bytes) = repo.store().read_bytes(twin) else {
        return false;
    };
    let expected = Expected {
        mkit_ref: mkit_ref_name(remote, &r.name),
        twin: *twin,
        sha256: attest::sha256_hex(&bytes),
        git: r.git,
        source: &import.source,
    };
    envelopes.iter().any(|(_, envelope)| {
        attest::verify_envelope(envelope, &import.signer).is_ok_and(|c| expected.matches(&c))
    })
}

/// The mkit ref an upstream ref was imported as (SPEC-GIT-IMPORT §3.5):
/// branches become remote-tracking refs of the state, other refs (tags)
/// keep their name.
pub(super) fn mkit_ref_name(remote: &str, upstream_ref: &str) -> String {
    match upstream_ref.strip_prefix("refs/heads/") {
        Some(branch) => format!("refs/remotes/{remote}/{branch}"),
        None => upstream_ref.to_owned(),
    }
}

/// What a git-import/v1 claim about one head must say.
struct Expected<'a> {
    mkit_ref: String,
    twin: Id,
    /// SHA-256 of the twin's stored bytes, lowercase hex.
    sha256: String,
    git: Sha1,
    source: &'a str,
}

impl Expected<'_> {
    /// Exactly one subject, named for the ref, with the twin's digests (the
    /// SHA-256 may be absent, as in 0.5.0's reader); the git-import/v1
    /// predicate type; a predicate naming the same ref, the head's sha1, the
    /// recorded source and versions 1.
    fn matches(&self, claim: &Claim) -> bool {
        let [subject] = claim.subjects.as_slice() else {
            return false;
        };
        let p = &claim.predicate;
        let text = |key: &str| p.get(key).and_then(Value::as_str);
        let number = |key: &str| p.get(key).and_then(Value::as_u64);
        claim.predicate_type == attest::PREDICATE_GIT_IMPORT
            && subject.name.as_deref() == Some(self.mkit_ref.as_str())
            && subject.blake3 == self.twin
            && subject.sha256.as_ref().is_none_or(|h| *h == self.sha256)
            && text("refName") == Some(self.mkit_ref.as_str())
            && text("gitCommit") == Some(self.git.to_hex().as_str())
            && text("remoteUrl") == Some(self.source)
            && number("schemaVersion") == Some(1)
            && number("specVersion") == Some(u64::from(IMPORT_SPEC_VERSION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::Subject;

    fn expected(source: &str) -> Expected<'_> {
        Expected {
            mkit_ref: "refs/remotes/upstream/main".to_owned(),
            twin: Id([7; 32]),
            sha256: "ab".repeat(32),
            git: Sha1([9; 20]),
            source,
        }
    }

    fn claim() -> Claim {
        Claim {
            subjects: vec![Subject {
                name: Some("refs/remotes/upstream/main".to_owned()),
                blake3: Id([7; 32]),
                sha256: Some("ab".repeat(32)),
            }],
            predicate_type: attest::PREDICATE_GIT_IMPORT.to_owned(),
            predicate: serde_json::json!({
                "gitCommit": "09".repeat(20),
                "refName": "refs/remotes/upstream/main",
                "remoteUrl": "/up",
                "schemaVersion": 1,
                "specVersion": 1,
            }),
        }
    }

    #[test]
    fn branches_map_to_remote_tracking_refs_and_tags_keep_their_name() {
        assert_eq!(mkit_ref_name("up", "refs/heads/a/b"), "refs/remotes/up/a/b");
        assert_eq!(mkit_ref_name("up", "refs/tags/v1"), "refs/tags/v1");
    }

    #[test]
    fn only_an_exact_claim_vouches() {
        let e = expected("/up");
        assert!(e.matches(&claim()));
        // No SHA-256 is accepted, as 0.5.0's reader does.
        let mut c = claim();
        c.subjects[0].sha256 = None;
        assert!(e.matches(&c));

        type Mutation = fn(&mut Claim);
        let mutations: [(&str, Mutation); 10] = [
            ("another subject", |c| c.subjects[0].blake3 = Id([8; 32])),
            ("another sha256", |c| {
                c.subjects[0].sha256 = Some("cd".repeat(32))
            }),
            ("another subject name", |c| {
                c.subjects[0].name = Some("refs/tags/v1".to_owned())
            }),
            ("no subject name", |c| c.subjects[0].name = None),
            ("two subjects", |c| c.subjects.push(c.subjects[0].clone())),
            ("another predicate type", |c| {
                c.predicate_type = attest::PREDICATE_GIT_BRIDGE.to_owned()
            }),
            ("another head", |c| {
                c.predicate["gitCommit"] = Value::from("0a".repeat(20))
            }),
            ("another ref", |c| {
                c.predicate["refName"] = Value::from("refs/remotes/upstream/dev")
            }),
            ("another schema", |c| {
                c.predicate["schemaVersion"] = Value::from(2)
            }),
            ("a version as a string", |c| {
                c.predicate["specVersion"] = Value::from("1")
            }),
        ];
        for (what, mutate) in mutations {
            let mut c = claim();
            mutate(&mut c);
            assert!(!e.matches(&c), "{what} must not vouch");
        }
        // Another source.
        assert!(!expected("/elsewhere").matches(&claim()));
    }
}
