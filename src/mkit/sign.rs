//! Commit, remix and tag signatures (SPEC-SIGNING).
//!
//! A signature covers a 32-byte signing hash, not the object bytes:
//! `BLAKE3(le16(len(domain)) || domain || signing_bytes)`, where the signing
//! bytes are the object's prologue and every field up to and including
//! `signer` (the signature itself, and a commit's two annotation slots, are
//! left out). Signing is plain Ed25519 over that hash; verification is the
//! strict predicate (canonical points and scalar, no small-order points). An
//! all-zero signature means "unsigned" and is reported as such, never as
//! "invalid".

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::mkit::encode::{
    put_commit_signed_part, put_remix_signed_part, put_tag_signed_part, write_prologue,
};
use crate::mkit::id::domain_digest;
use crate::mkit::object::{Commit, Object, ObjectError, ObjectType, Remix, Tag};

/// Signing domain of commits.
pub const COMMIT_DOMAIN: &[u8] = b"mkit.commit\x00";
/// Signing domain of remixes.
pub const REMIX_DOMAIN: &[u8] = b"mkit.remix\x00";
/// Signing domain of tags.
pub const TAG_DOMAIN: &[u8] = b"mkit.tag\x00";

/// An Ed25519 key pair made from a raw 32-byte seed.
///
/// Signing goes through aws-lc, whose Ed25519 signs a 32-byte hash in well
/// under half the time of the pure-Rust signer; an import signs every commit
/// one after the other, so that time is on its critical path. Ed25519
/// signatures are deterministic (RFC 8032), so both give the same bytes; a
/// test holds them to it. The pure-Rust key derives the public key, and is
/// the signer should aws-lc ever refuse a seed.
pub struct KeyPair {
    key: SigningKey,
    fast: Option<aws_lc_rs::signature::Ed25519KeyPair>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        f.debug_struct("KeyPair")
            .field("public", &crate::mkit::Id(self.public()))
            .finish()
    }
}

impl KeyPair {
    /// The key pair for a seed (the raw contents of an mkit key file).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        KeyPair {
            key: SigningKey::from_bytes(seed),
            fast: aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed).ok(),
        }
    }

    /// The public key bytes (what goes into an object's `signer` field).
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Sign a 32-byte signing hash.
    pub fn sign_hash(&self, hash: &[u8; 32]) -> [u8; 64] {
        self.sign_message(hash)
    }

    /// Sign `message` as it is, with no domain or hashing step (DSSE
    /// attestations sign their pre-authentication encoding directly; see
    /// [`crate::attest`]).
    pub fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        if let Some(fast) = &self.fast
            && let Ok(signature) = <[u8; 64]>::try_from(fast.sign(message).as_ref())
        {
            return signature;
        }
        self.key.sign(message).to_bytes()
    }
}

/// The canonical signing bytes of a commit.
pub fn commit_signing_bytes(c: &Commit) -> Result<Vec<u8>, ObjectError> {
    c.validate()?;
    let mut out = Vec::with_capacity(256 + c.message.len());
    write_prologue(&mut out, ObjectType::Commit);
    put_commit_signed_part(&mut out, c)?;
    Ok(out)
}

/// The canonical signing bytes of a remix.
pub fn remix_signing_bytes(r: &Remix) -> Result<Vec<u8>, ObjectError> {
    r.validate()?;
    let mut out = Vec::with_capacity(256 + r.message.len());
    write_prologue(&mut out, ObjectType::Remix);
    put_remix_signed_part(&mut out, r)?;
    Ok(out)
}

/// The canonical signing bytes of a tag.
pub fn tag_signing_bytes(t: &Tag) -> Result<Vec<u8>, ObjectError> {
    t.validate()?;
    let mut out = Vec::with_capacity(256 + t.message.len());
    write_prologue(&mut out, ObjectType::Tag);
    put_tag_signed_part(&mut out, t)?;
    Ok(out)
}

/// `BLAKE3(le16(len(domain)) || domain || signing_bytes)`.
pub fn signing_hash(domain: &[u8], signing_bytes: &[u8]) -> [u8; 32] {
    domain_digest(domain, &[signing_bytes])
}

/// The signing hash of a commit.
pub fn commit_signing_hash(c: &Commit) -> Result<[u8; 32], ObjectError> {
    Ok(signing_hash(COMMIT_DOMAIN, &commit_signing_bytes(c)?))
}

/// The signing hash of a remix.
pub fn remix_signing_hash(r: &Remix) -> Result<[u8; 32], ObjectError> {
    Ok(signing_hash(REMIX_DOMAIN, &remix_signing_bytes(r)?))
}

/// The signing hash of a tag.
pub fn tag_signing_hash(t: &Tag) -> Result<[u8; 32], ObjectError> {
    Ok(signing_hash(TAG_DOMAIN, &tag_signing_bytes(t)?))
}

/// Set `signer` to the key's public key and fill in the signature.
pub fn sign_commit(c: &mut Commit, key: &KeyPair) -> Result<(), ObjectError> {
    c.signer = key.public();
    c.signature = key.sign_hash(&commit_signing_hash(c)?);
    Ok(())
}

/// Set `signer` to the key's public key and fill in the signature.
pub fn sign_remix(r: &mut Remix, key: &KeyPair) -> Result<(), ObjectError> {
    r.signer = key.public();
    r.signature = key.sign_hash(&remix_signing_hash(r)?);
    Ok(())
}

/// Set `signer` to the key's public key and fill in the signature.
pub fn sign_tag(t: &mut Tag, key: &KeyPair) -> Result<(), ObjectError> {
    t.signer = key.public();
    t.signature = key.sign_hash(&tag_signing_hash(t)?);
    Ok(())
}

/// The outcome of checking an object's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The signature verifies strictly under the object's `signer`.
    Valid,
    /// The signature is all zero: the object was never signed.
    Unsigned,
    /// The signature does not verify (wrong key, tampered bytes, bad point).
    Invalid,
}

/// Strictly verify `signature` over `hash` under `public`; all-zero is "unsigned".
pub fn verify_hash(public: &[u8; 32], hash: &[u8; 32], signature: &[u8; 64]) -> SignatureStatus {
    if signature.iter().all(|&b| b == 0) {
        return SignatureStatus::Unsigned;
    }
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return SignatureStatus::Invalid;
    };
    let sig = Signature::from_bytes(signature);
    match key.verify_strict(hash, &sig) {
        Ok(()) => SignatureStatus::Valid,
        Err(_) => SignatureStatus::Invalid,
    }
}

/// Verify a commit, remix or tag; other types carry no signature (`None`).
pub fn verify_object(obj: &Object) -> Result<Option<SignatureStatus>, ObjectError> {
    Ok(Some(match obj {
        Object::Commit(c) => verify_hash(&c.signer, &commit_signing_hash(c)?, &c.signature),
        Object::Remix(r) => verify_hash(&r.signer, &remix_signing_hash(r)?, &r.signature),
        Object::Tag(t) => verify_hash(&t.signer, &tag_signing_hash(t)?, &t.signature),
        _ => return Ok(None),
    }))
}

/// Verifies many objects with the same outcome as [`verify_object`],
/// decoding each signer's public key (a point decompression) only once: a
/// repository has a handful of signers and thousands of signed objects.
#[derive(Default)]
pub struct Verifier {
    keys: std::collections::HashMap<[u8; 32], Option<VerifyingKey>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("signers", &self.keys.len())
            .finish()
    }
}

impl Verifier {
    /// [`verify_hash`], with the key decoded once per signer.
    pub fn verify_hash(
        &mut self,
        public: &[u8; 32],
        hash: &[u8; 32],
        signature: &[u8; 64],
    ) -> SignatureStatus {
        if signature.iter().all(|&b| b == 0) {
            return SignatureStatus::Unsigned;
        }
        let key = self
            .keys
            .entry(*public)
            .or_insert_with(|| VerifyingKey::from_bytes(public).ok());
        let Some(key) = key else {
            return SignatureStatus::Invalid;
        };
        match key.verify_strict(hash, &Signature::from_bytes(signature)) {
            Ok(()) => SignatureStatus::Valid,
            Err(_) => SignatureStatus::Invalid,
        }
    }

    /// [`verify_object`], with the key decoded once per signer.
    pub fn verify_object(&mut self, obj: &Object) -> Result<Option<SignatureStatus>, ObjectError> {
        Ok(Some(match obj {
            Object::Commit(c) => {
                self.verify_hash(&c.signer, &commit_signing_hash(c)?, &c.signature)
            }
            Object::Remix(r) => self.verify_hash(&r.signer, &remix_signing_hash(r)?, &r.signature),
            Object::Tag(t) => self.verify_hash(&t.signer, &tag_signing_hash(t)?, &t.signature),
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkit::Id;
    use crate::mkit::object::Identity;

    fn commit() -> Commit {
        Commit {
            tree: Id([1; 32]),
            parents: vec![],
            author: Identity::opaque(b"A <a@b>".to_vec()),
            message: b"hi".to_vec(),
            timestamp: 5,
            signer: [0; 32],
            message_hash: Id::ZERO,
            content_digest: Id::ZERO,
            signature: [0; 64],
        }
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = KeyPair::from_seed(&[0x42; 32]);
        let mut c = commit();
        assert_eq!(
            verify_object(&Object::Commit(c.clone())).unwrap(),
            Some(SignatureStatus::Unsigned)
        );
        sign_commit(&mut c, &key).unwrap();
        assert_eq!(c.signer, key.public());
        assert_eq!(
            verify_object(&Object::Commit(c.clone())).unwrap(),
            Some(SignatureStatus::Valid)
        );
        // The annotation slots are outside the signing bytes.
        let mut annotated = c.clone();
        annotated.content_digest = Id([9; 32]);
        assert_eq!(
            verify_object(&Object::Commit(annotated)).unwrap(),
            Some(SignatureStatus::Valid)
        );
        let mut tampered = c.clone();
        tampered.timestamp += 1;
        assert_eq!(
            verify_object(&Object::Commit(tampered)).unwrap(),
            Some(SignatureStatus::Invalid)
        );
    }

    proptest::proptest! {
        /// Both signers give the same bytes, for hashes and for messages of
        /// any length (attestations sign theirs directly).
        #[test]
        fn the_fast_signer_signs_as_the_pure_rust_one(
            seed in proptest::array::uniform32(proptest::num::u8::ANY),
            message in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let key = KeyPair::from_seed(&seed);
            proptest::prop_assert!(key.fast.is_some());
            let plain = SigningKey::from_bytes(&seed);
            let hash = signing_hash(COMMIT_DOMAIN, &message);
            proptest::prop_assert_eq!(key.sign_hash(&hash), plain.sign(&hash).to_bytes());
            proptest::prop_assert_eq!(key.sign_message(&message), plain.sign(&message).to_bytes());
            let fast = key
                .fast
                .as_ref()
                .map(|f| aws_lc_rs::signature::KeyPair::public_key(f).as_ref().to_vec());
            proptest::prop_assert_eq!(fast, Some(key.public().to_vec()));
        }
    }

    #[test]
    fn the_caching_verifier_agrees_with_verify_object() {
        let key = KeyPair::from_seed(&[0x42; 32]);
        let mut signed = commit();
        sign_commit(&mut signed, &key).unwrap();
        let mut tampered = signed.clone();
        tampered.timestamp += 1;
        let mut bad_key = signed.clone();
        bad_key.signer = [0xff; 32];
        let mut v = Verifier::default();
        // Twice each, so the second pass runs on cached keys.
        for _ in 0..2 {
            for c in [&signed, &tampered, &bad_key, &commit()] {
                let obj = Object::Commit(c.clone());
                assert_eq!(v.verify_object(&obj).unwrap(), verify_object(&obj).unwrap());
            }
        }
        assert_eq!(
            v.verify_object(&Object::Commit(tampered)).unwrap(),
            Some(SignatureStatus::Invalid)
        );
    }

    #[test]
    fn domains_do_not_cross() {
        let key = KeyPair::from_seed(&[1; 32]);
        let h = [7u8; 32];
        let commit_hash = signing_hash(COMMIT_DOMAIN, &h);
        let sig = key.sign_hash(&commit_hash);
        assert_eq!(
            verify_hash(&key.public(), &commit_hash, &sig),
            SignatureStatus::Valid
        );
        assert_eq!(
            verify_hash(&key.public(), &signing_hash(TAG_DOMAIN, &h), &sig),
            SignatureStatus::Invalid
        );
    }

    #[test]
    fn small_order_key_is_invalid_not_a_panic() {
        // The identity point (y = 1) is small-order: strict verification refuses it.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            verify_hash(&identity_point, &[0; 32], &[1; 64]),
            SignatureStatus::Invalid
        );
    }
}
