//! Attestations: DSSE envelopes around in-toto v1 statements, byte for byte
//! as the reference `mkit` 0.5.0 writes them (SPEC-ATTESTATIONS).
//!
//! An attestation is a signed claim about one mkit object (its *subject*,
//! usually a ref head). The bridge mints two kinds:
//!
//! - **git-import/v1** ([`PREDICATE_GIT_IMPORT`], [`git_import_predicate`]):
//!   one per imported ref head whose recorded state changed, signed with the
//!   import key (SPEC-GIT-IMPORT §5);
//! - **git-bridge/v1** ([`PREDICATE_GIT_BRIDGE`], [`git_bridge_predicate`]):
//!   one per exported head, signed with the exporter's key (SPEC-GIT-BRIDGE §11).
//!
//! Every byte is deterministic: the statement and the envelope are canonical
//! JSON (RFC 8785 / JCS, in the subset the reference emits), and Ed25519
//! signatures are deterministic, so the same subject, predicate and key give
//! the same file, and the file name (its BLAKE3, the *attestation id*) is the
//! same in both tools.
//!
//! The public surface:
//!
//! - [`mint`] / [`mint_with_key`]: statement, signature, envelope bytes;
//! - [`attestation_id`], [`keyid`]: the content address and the signer id;
//! - [`decode_envelope`] (strict, refuses anything the reference would not
//!   write) and [`verify_envelope`] (decode, strict signature check by one
//!   public key, statement parse into a [`Claim`]);
//! - [`store::save`] / [`store::list`]: the `.mkit/attestations/` directory.
//!
//! [`Subject::sha256`] is optional (the reference's reader accepts a subject
//! without it); everything minted carries it.
//!
//! The module is pure except for [`store`], which does its I/O through
//! [`crate::durable`].

mod envelope;
mod statement;
pub mod store;
mod verify;

pub use envelope::{Envelope, EnvelopeSignature, decode_envelope, encode_envelope, pae};
pub use statement::{IN_TOTO_STATEMENT_TYPE, SubjectDigests, encode_statement, sha256_hex};
pub use verify::{Claim, Subject, parse_statement, verify_envelope};

use crate::git::sha1::Sha1;
use crate::mkit::Id;
use crate::mkit::sign::KeyPair;

/// `payloadType` of every envelope mkit writes.
pub const PAYLOAD_TYPE_IN_TOTO: &str = "application/vnd.in-toto+json";

/// Predicate type of the attestations `mkit git import` and `fetch` mint.
pub const PREDICATE_GIT_IMPORT: &str =
    "https://github.com/officialunofficial/mkit/spec/predicate/git-import/v1";

/// Predicate type of the attestations `mkit git export` publishes.
pub const PREDICATE_GIT_BRIDGE: &str =
    "https://github.com/officialunofficial/mkit/spec/predicate/git-bridge/v1";

/// Prefix of a repo-key signer's keyid (SPEC-ATTESTATIONS §6.3).
pub const KEYID_PREFIX: &str = "blake3:";

/// Why an attestation could not be minted, read, stored or verified.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The predicate handed to the minter is not one JSON object.
    #[error("attestation predicate is not a canonical JSON object: {0}")]
    PredicateNotObject(String),
    /// The bytes are not an envelope in the exact canonical shape mkit writes.
    #[error("malformed attestation envelope: {0}")]
    MalformedEnvelope(&'static str),
    /// The envelope does not carry an in-toto statement.
    #[error("attestation payload type is {0:?}, not {PAYLOAD_TYPE_IN_TOTO}")]
    PayloadType(String),
    /// The envelope carries no signature at all.
    #[error("attestation envelope has no signature")]
    NoSignature,
    /// No signature in the envelope names the expected key.
    #[error("attestation is not signed by key {keyid} (signed by: {found})")]
    NotSignedBy {
        /// The keyid that was expected.
        keyid: String,
        /// The keyids present, comma-separated.
        found: String,
    },
    /// The signature by the expected key does not verify.
    #[error("attestation signature by {keyid} does not verify (the envelope was altered)")]
    BadSignature {
        /// The keyid whose signature failed.
        keyid: String,
    },
    /// The signed payload is not a well-formed in-toto v1 statement.
    #[error("malformed in-toto statement in attestation: {0}")]
    MalformedStatement(String),
    /// An envelope exceeds the size cap both tools enforce.
    #[error("attestation envelope {path} is {len} bytes, over the {max}-byte cap")]
    TooLarge {
        /// The file (or `<memory>` for bytes not yet saved).
        path: String,
        /// Its size.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] crate::durable::IoError),
}

/// The keyid of the repo-key signer with public key `public`:
/// `blake3:` followed by the hex BLAKE3 of the key (71 characters).
pub fn keyid(public: &[u8; 32]) -> String {
    format!("{KEYID_PREFIX}{}", Id(*blake3::hash(public).as_bytes()))
}

/// The attestation id of an envelope: the BLAKE3 of its exact bytes, which
/// is also its file name under `.mkit/attestations/<subject>/`.
pub fn attestation_id(envelope_bytes: &[u8]) -> Id {
    Id(*blake3::hash(envelope_bytes).as_bytes())
}

/// The canonical git-import/v1 predicate (SPEC-GIT-IMPORT §5): the upstream
/// head's SHA-1, the full mkit ref name and the canonical remote identity.
pub fn git_import_predicate(git_commit: &Sha1, ref_name: &str, remote_url: &str) -> String {
    predicate(
        git_commit,
        [("refName", ref_name), ("remoteUrl", remote_url)],
    )
}

/// The canonical git-bridge/v1 predicate (SPEC-GIT-BRIDGE §11): the exported
/// head's SHA-1, the mirror it went to and the git ref name.
pub fn git_bridge_predicate(git_commit: &Sha1, mirror: &str, ref_name: &str) -> String {
    predicate(git_commit, [("mirror", mirror), ("refName", ref_name)])
}

/// A predicate in JCS form: `gitCommit`, the two `fields` (whose keys sort
/// between `gitCommit` and `schemaVersion`, in order), then both versions.
fn predicate(git_commit: &Sha1, fields: [(&str, &str); 2]) -> String {
    debug_assert!("gitCommit" < fields[0].0 && fields[0].0 < fields[1].0);
    debug_assert!(fields[1].0 < "schemaVersion");
    let mut map = serde_json::Map::new();
    map.insert("gitCommit".to_owned(), git_commit.to_hex().into());
    for (key, value) in fields {
        map.insert(key.to_owned(), value.into());
    }
    map.insert("schemaVersion".to_owned(), 1.into());
    map.insert("specVersion".to_owned(), 1.into());
    // serde_json's map is sorted by key (no `preserve_order`): JCS order for
    // these ASCII keys. A map of strings and integers always serialises; an
    // empty string would be refused by `encode_statement` anyway.
    to_jcs(&map).unwrap_or_default()
}

/// Serialise `value` as canonical JSON (RFC 8785, JCS) in the subset the
/// attestations use: serde_json's compact output is JCS when every object's
/// keys are written in sorted order (the structs here declare their fields
/// that way), the only numbers are small integers, and strings follow
/// serde_json's escaping, which is JCS's: `\" \\ \b \f \n \r \t`, `\u00xx`
/// (lowercase hex) for the other control characters, everything else
/// verbatim (no `\/`, no escaped non-ASCII).
fn to_jcs(value: &impl serde::Serialize) -> Result<String, AttestError> {
    serde_json::to_string(value).map_err(|e| AttestError::MalformedStatement(e.to_string()))
}

/// Mint one signed envelope for `subject` with the key made from `seed`;
/// returns the exact bytes to store (see [`mint_with_key`]).
pub fn mint(
    seed: &[u8; 32],
    subject_name: &str,
    subject: &Id,
    subject_bytes: &[u8],
    predicate_type: &str,
    predicate_jcs: &str,
) -> Result<Vec<u8>, AttestError> {
    mint_with_key(
        &KeyPair::from_seed(seed),
        subject_name,
        subject,
        subject_bytes,
        predicate_type,
        predicate_jcs,
    )
}

/// Mint one signed envelope for `subject`, signed by `key`.
///
/// `subject_bytes` must be the stored bytes of the subject object (its
/// SHA-256 is the statement's second digest); `predicate_jcs` must already
/// be canonical JSON (an object), and is embedded verbatim. The statement
/// has one subject named `subject_name`; the envelope one signature, over
/// the DSSE pre-authentication encoding, with the repo-key [`keyid`].
pub fn mint_with_key(
    key: &KeyPair,
    subject_name: &str,
    subject: &Id,
    subject_bytes: &[u8],
    predicate_type: &str,
    predicate_jcs: &str,
) -> Result<Vec<u8>, AttestError> {
    let subjects = [SubjectDigests {
        name: Some(subject_name),
        blake3: *subject,
        sha256_hex: sha256_hex(subject_bytes),
    }];
    let payload = encode_statement(&subjects, predicate_type, predicate_jcs)?;
    let sig = key.sign_message(&pae(PAYLOAD_TYPE_IN_TOTO, payload.as_bytes()));
    let env = Envelope {
        payload_type: PAYLOAD_TYPE_IN_TOTO.to_owned(),
        payload: payload.into_bytes(),
        signatures: vec![EnvelopeSignature {
            keyid: keyid(&key.public()),
            sig: sig.to_vec(),
        }],
    };
    encode_envelope(&env).map(String::into_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        to_jcs(&s).unwrap()
    }

    /// serde_json's string escaping is RFC 8785's, which is what lets it
    /// write the canonical statement and envelope.
    #[test]
    fn strings_escape_like_rfc_8785() {
        assert_eq!(enc("a/b"), "\"a/b\"");
        assert_eq!(enc("q\"b\\"), "\"q\\\"b\\\\\"");
        assert_eq!(enc("\u{8}\u{c}\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
        assert_eq!(enc("\u{0}\u{1f}\u{e}"), "\"\\u0000\\u001f\\u000e\"");
        assert_eq!(enc("\u{7f}é€😀"), "\"\u{7f}é€😀\"");
        for s in ["", "refs/tags/v1", "tab\there", "\u{1}\u{1f}\"\\", "ünï"] {
            let back: String = serde_json::from_str(&enc(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn predicates_are_canonical_with_sorted_keys() {
        let sha = Sha1([0xab; 20]);
        assert_eq!(
            git_bridge_predicate(&sha, "file:///m\"x", "refs/heads/main"),
            format!(
                "{{\"gitCommit\":\"{}\",\"mirror\":\"file:///m\\\"x\",\"refName\":\"refs/heads/main\",\
                 \"schemaVersion\":1,\"specVersion\":1}}",
                "ab".repeat(20)
            )
        );
        assert_eq!(
            git_import_predicate(&sha, "refs/remotes/up/main", "/srv/u.git"),
            format!(
                "{{\"gitCommit\":\"{}\",\"refName\":\"refs/remotes/up/main\",\
                 \"remoteUrl\":\"/srv/u.git\",\"schemaVersion\":1,\"specVersion\":1}}",
                "ab".repeat(20)
            )
        );
    }
}
