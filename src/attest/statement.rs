//! The in-toto v1 statement: the signed payload of every envelope.
//!
//! Written in JCS key order: `_type`, `predicate` (the caller's canonical
//! bytes, verbatim), `predicateType`, `subject` (each with `digest`
//! `{blake3, sha256}` and an optional `name`). Both digests are of the same
//! bytes: the subject object as stored. Serialised by serde_json (see
//! [`super::to_jcs`] for why its compact output is JCS here).

use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use super::AttestError;
use crate::mkit::Id;

/// The `_type` of every in-toto v1 statement.
pub const IN_TOTO_STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// One subject to encode: its optional name and its two digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectDigests<'a> {
    /// The subject's name (a full ref name for the bridge's attestations).
    pub name: Option<&'a str>,
    /// BLAKE3 digest: the mkit object id.
    pub blake3: Id,
    /// SHA-256 of the same bytes, lowercase hex.
    pub sha256_hex: String,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(bytes))
}

/// Encode a canonical in-toto v1 statement.
///
/// `predicate_jcs` must be one JSON object, already canonical; it is
/// embedded verbatim (as the reference does), after a parse that refuses
/// anything that is not an object.
pub fn encode_statement(
    subjects: &[SubjectDigests<'_>],
    predicate_type: &str,
    predicate_jcs: &str,
) -> Result<String, AttestError> {
    if !(predicate_jcs.starts_with('{') && predicate_jcs.ends_with('}')) {
        return Err(AttestError::PredicateNotObject(
            "it must start with '{' and end with '}'".to_owned(),
        ));
    }
    match serde_json::from_str::<serde_json::Value>(predicate_jcs) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => return Err(AttestError::PredicateNotObject("not an object".to_owned())),
        Err(e) => return Err(AttestError::PredicateNotObject(e.to_string())),
    }
    // Embedded verbatim: a raw value is written as given.
    let predicate = serde_json::from_str::<&RawValue>(predicate_jcs)
        .map_err(|e| AttestError::PredicateNotObject(e.to_string()))?;
    let statement = Statement {
        type_: IN_TOTO_STATEMENT_TYPE,
        predicate,
        predicate_type,
        subject: subjects
            .iter()
            .map(|s| SubjectJson {
                digest: DigestJson {
                    blake3: s.blake3.to_hex(),
                    sha256: &s.sha256_hex,
                },
                name: s.name,
            })
            .collect(),
    };
    super::to_jcs(&statement)
}

/// The statement as written; fields in JCS (sorted) order.
#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    type_: &'a str,
    predicate: &'a RawValue,
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    subject: Vec<SubjectJson<'a>>,
}

#[derive(Serialize)]
struct SubjectJson<'a> {
    digest: DigestJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct DigestJson<'a> {
    blake3: String,
    sha256: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn subject_without_name_has_digest_only() {
        let s = encode_statement(
            &[SubjectDigests {
                name: None,
                blake3: Id([1; 32]),
                sha256_hex: "ab".to_owned(),
            }],
            "x",
            "{}",
        )
        .unwrap();
        assert_eq!(
            s,
            format!(
                "{{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicate\":{{}},\"predicateType\":\"x\",\"subject\":[{{\"digest\":{{\"blake3\":\"{}\",\"sha256\":\"ab\"}}}}]}}",
                Id([1; 32])
            )
        );
    }

    #[test]
    fn refuses_predicates_that_are_not_objects() {
        for bad in ["", "{", "[1]", "{x}", "{\"a\":1,}", "{}{}", "\"{}\""] {
            assert!(
                matches!(
                    encode_statement(&[], "x", bad),
                    Err(AttestError::PredicateNotObject(_))
                ),
                "{bad:?}"
            );
        }
    }
}
