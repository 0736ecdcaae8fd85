//! Checking an envelope: its shape, its signature by one known key, and the
//! in-toto statement it signs.
//!
//! Signatures are checked with strict Ed25519 (canonical points and
//! scalar), as the reference verifier does, so every honest verifier
//! reaches the same verdict on the same bytes.

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

use super::envelope::decode_envelope;
use super::statement::IN_TOTO_STATEMENT_TYPE;
use super::{AttestError, PAYLOAD_TYPE_IN_TOTO, keyid};
use crate::mkit::Id;

/// One subject of a verified statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name, when the statement gives one (a full ref name for the
    /// bridge's attestations).
    pub name: Option<String>,
    /// The mkit object the claim is about.
    pub blake3: Id,
    /// SHA-256 of the same object bytes, lowercase hex. Optional, as in the
    /// reference's reader (statements from before the paired digest have
    /// none); every envelope mkit 0.5.0 or this crate mints carries it.
    pub sha256: Option<String>,
}

/// What a verified attestation claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The subjects, in statement order (at least one).
    pub subjects: Vec<Subject>,
    /// The predicate type URL.
    pub predicate_type: String,
    /// The predicate, parsed.
    pub predicate: Value,
}

/// Decode `bytes`, check that a signature by `public` covers it, and parse
/// the statement it signs.
///
/// Refuses: a malformed envelope, a payload type other than in-toto, an
/// envelope with no signature or none by `public`'s keyid, a signature by
/// that keyid that does not verify strictly, and a malformed statement.
pub fn verify_envelope(bytes: &[u8], public: &[u8; 32]) -> Result<Claim, AttestError> {
    let env = decode_envelope(bytes)?;
    if env.payload_type != PAYLOAD_TYPE_IN_TOTO {
        return Err(AttestError::PayloadType(env.payload_type));
    }
    if env.signatures.is_empty() {
        return Err(AttestError::NoSignature);
    }
    let wanted = keyid(public);
    let mut ours = env
        .signatures
        .iter()
        .filter(|s| s.keyid == wanted)
        .peekable();
    if ours.peek().is_none() {
        let found: Vec<&str> = env.signatures.iter().map(|s| s.keyid.as_str()).collect();
        return Err(AttestError::NotSignedBy {
            keyid: wanted,
            found: found.join(", "),
        });
    }
    let pae = env.pae();
    let verified = VerifyingKey::from_bytes(public).is_ok_and(|vk| {
        ours.any(|s| {
            <[u8; 64]>::try_from(s.sig.as_slice())
                .is_ok_and(|sig| vk.verify_strict(&pae, &Signature::from_bytes(&sig)).is_ok())
        })
    });
    if !verified {
        return Err(AttestError::BadSignature { keyid: wanted });
    }
    parse_statement(&env.payload)
}

/// Parse an in-toto v1 statement: `_type` must be the v1 URL, `subject` a
/// non-empty list whose entries each carry a 64-hex `blake3` digest, maybe
/// a 64-hex `sha256` digest and maybe a string `name`, `predicateType` a
/// string and `predicate` an object.
pub fn parse_statement(payload: &[u8]) -> Result<Claim, AttestError> {
    let bad = |why: &str| AttestError::MalformedStatement(why.to_owned());
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| AttestError::MalformedStatement(e.to_string()))?;
    let obj = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if obj.get("_type").and_then(Value::as_str) != Some(IN_TOTO_STATEMENT_TYPE) {
        return Err(bad("_type is not https://in-toto.io/Statement/v1"));
    }
    let predicate_type = obj
        .get("predicateType")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("predicateType is missing or not a string"))?
        .to_owned();
    let predicate = obj
        .get("predicate")
        .filter(|p| p.is_object())
        .ok_or_else(|| bad("predicate is missing or not an object"))?
        .clone();
    let list = obj
        .get("subject")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("subject is missing, empty or not a list"))?;
    let mut subjects = Vec::with_capacity(list.len());
    for entry in list {
        let digest = entry
            .get("digest")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("a subject has no digest object"))?;
        let blake3 = digest
            .get("blake3")
            .and_then(Value::as_str)
            .and_then(|h| Id::from_hex(h).ok())
            .ok_or_else(|| bad("a subject's blake3 digest is not 64 lowercase hex"))?;
        let sha256 = match digest.get("sha256") {
            None => None,
            Some(Value::String(h))
                if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                Some(h.clone())
            }
            Some(_) => return Err(bad("a subject's sha256 digest is not 64 lowercase hex")),
        };
        let name = match entry.get("name") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("a subject's name is not a string")),
        };
        subjects.push(Subject {
            name,
            blake3,
            sha256,
        });
    }
    Ok(Claim {
        subjects,
        predicate_type,
        predicate,
    })
}
