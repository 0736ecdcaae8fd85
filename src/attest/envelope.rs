//! The DSSE envelope: `{"payload":…,"payloadType":…,"signatures":[{"keyid":…,"sig":…}]}`.
//!
//! The payload and the signatures are standard base64 with padding. A
//! signature covers the pre-authentication encoding [`pae`] of the payload
//! type and the raw payload, never the JSON around them.
//!
//! [`decode_envelope`] accepts exactly the byte shape [`encode_envelope`]
//! writes (the reference decoder's rule): keys in that order, no white
//! space, no escapes in any string, canonical base64, nothing after the
//! closing brace. Anything else is refused, never guessed at.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;

use super::AttestError;

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The payload's media type.
    pub payload_type: String,
    /// The payload bytes (decoded from base64).
    pub payload: Vec<u8>,
    /// The signatures, in envelope order.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Who signed (for the repo-key signer, [`super::keyid`]).
    pub keyid: String,
    /// The raw signature bytes (decoded from base64).
    pub sig: Vec<u8>,
}

impl Envelope {
    /// The bytes the signatures cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

/// DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in
/// decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + payload_type.len() + payload.len());
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Encode `env` canonically. Refuses an envelope without signatures or
/// with an empty payload type, as the reference does.
pub fn encode_envelope(env: &Envelope) -> Result<String, AttestError> {
    if env.signatures.is_empty() {
        return Err(AttestError::NoSignature);
    }
    if env.payload_type.is_empty() {
        return Err(AttestError::MalformedEnvelope("empty payload type"));
    }
    super::to_jcs(&EnvelopeJson {
        payload: B64.encode(&env.payload),
        payload_type: &env.payload_type,
        signatures: env
            .signatures
            .iter()
            .map(|s| SignatureJson {
                keyid: &s.keyid,
                sig: B64.encode(&s.sig),
            })
            .collect(),
    })
}

/// The envelope as written; fields in JCS (sorted) order.
#[derive(Serialize)]
struct EnvelopeJson<'a> {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: &'a str,
    signatures: Vec<SignatureJson<'a>>,
}

#[derive(Serialize)]
struct SignatureJson<'a> {
    keyid: &'a str,
    sig: String,
}

/// Decode an envelope in the exact canonical shape; never panics.
///
/// An envelope with an empty signature list decodes (as in the reference);
/// [`super::verify_envelope`] refuses it.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, AttestError> {
    let mut r = Reader { rest: bytes };
    r.literal(b"{\"payload\":", "expected {\"payload\": at the start")?;
    let payload = r.string("payload")?;
    r.literal(
        b",\"payloadType\":",
        "expected \"payloadType\" after the payload",
    )?;
    let payload_type = r.string("payloadType")?;
    r.literal(
        b",\"signatures\":[",
        "expected \"signatures\" after the payload type",
    )?;
    let mut signatures = Vec::new();
    if r.rest.first() != Some(&b']') {
        loop {
            r.literal(b"{\"keyid\":", "expected {\"keyid\": to open a signature")?;
            let keyid = r.string("keyid")?;
            r.literal(b",\"sig\":", "expected \"sig\" after a keyid")?;
            let sig = r.string("sig")?;
            r.literal(b"}", "expected } to close a signature")?;
            let sig = B64.decode(sig).map_err(|_| {
                AttestError::MalformedEnvelope("a signature is not canonical base64")
            })?;
            signatures.push(EnvelopeSignature {
                keyid: keyid.to_owned(),
                sig,
            });
            if r.rest.first() == Some(&b',') {
                r.rest = &r.rest[1..];
            } else {
                break;
            }
        }
    }
    r.literal(b"]}", "expected ]} to close the envelope")?;
    if !r.rest.is_empty() {
        return Err(AttestError::MalformedEnvelope(
            "bytes after the closing brace",
        ));
    }
    let payload = B64
        .decode(payload)
        .map_err(|_| AttestError::MalformedEnvelope("the payload is not canonical base64"))?;
    Ok(Envelope {
        payload_type: payload_type.to_owned(),
        payload,
        signatures,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn literal(&mut self, lit: &[u8], what: &'static str) -> Result<(), AttestError> {
        match self.rest.strip_prefix(lit) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(AttestError::MalformedEnvelope(what)),
        }
    }

    /// A quoted string without escapes, as UTF-8.
    fn string(&mut self, field: &'static str) -> Result<&'a str, AttestError> {
        let Some(body) = self.rest.strip_prefix(b"\"") else {
            return Err(AttestError::MalformedEnvelope(match field {
                "payload" => "the payload is not a string",
                "payloadType" => "the payload type is not a string",
                "keyid" => "a keyid is not a string",
                _ => "a signature is not a string",
            }));
        };
        let Some(end) = body.iter().position(|&b| b == b'"' || b == b'\\') else {
            return Err(AttestError::MalformedEnvelope("unterminated string"));
        };
        if body[end] == b'\\' {
            return Err(AttestError::MalformedEnvelope(
                "escaped characters are not canonical here",
            ));
        }
        let s = std::str::from_utf8(&body[..end])
            .map_err(|_| AttestError::MalformedEnvelope("a string is not UTF-8"))?;
        self.rest = &body[end + 1..];
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            payload_type: "application/vnd.in-toto+json".to_owned(),
            payload: b"{}".to_vec(),
            signatures: vec![EnvelopeSignature {
                keyid: "blake3:aa".to_owned(),
                sig: vec![1, 2, 3],
            }],
        }
    }

    #[test]
    fn pae_matches_the_dsse_example() {
        assert_eq!(pae("hello", b"body"), b"DSSEv1 5 hello 4 body");
        assert_eq!(pae("t", b""), b"DSSEv1 1 t 0 ");
    }

    #[test]
    fn encodes_the_canonical_shape() {
        assert_eq!(
            encode_envelope(&sample()).unwrap(),
            "{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"keyid\":\"blake3:aa\",\"sig\":\"AQID\"}]}"
        );
    }

    #[test]
    fn two_signatures_round_trip() {
        let mut env = sample();
        env.signatures.push(EnvelopeSignature {
            keyid: "sigstore:x".to_owned(),
            sig: vec![0xff; 64],
        });
        let bytes = encode_envelope(&env).unwrap();
        assert_eq!(decode_envelope(bytes.as_bytes()).unwrap(), env);
    }

    #[test]
    fn refuses_non_canonical_shapes() {
        let good = encode_envelope(&sample()).unwrap();
        let bad = [
            good.replace(':', ": "),
            good.replace("e30=", "e30"),
            good.replace("AQID", "AQJ="),
            format!("{good}\n"),
            good.replace("blake3:aa", "blake3:\\u0061a"),
            good.replacen("{\"payload\"", "{\"payloadType\"", 1),
            String::new(),
        ];
        for b in bad {
            assert!(
                matches!(
                    decode_envelope(b.as_bytes()),
                    Err(AttestError::MalformedEnvelope(_))
                ),
                "{b}"
            );
        }
    }

    #[test]
    fn encoder_refuses_what_the_reference_refuses() {
        let mut env = sample();
        env.signatures.clear();
        assert!(matches!(
            encode_envelope(&env),
            Err(AttestError::NoSignature)
        ));
        let mut env = sample();
        env.payload_type.clear();
        assert!(encode_envelope(&env).is_err());
    }
}
