//! Attestations: the reference's golden vectors reproduced byte for byte,
//! strict decoding and verification (tampering refused, arbitrary bytes
//! never panic), and git-import/v1 minting compared file for file with the
//! reference `mkit git import` on the same upstream and key.
//!
//! Tests that need `../shared/conformance` or the reference `mkit` skip (or
//! fail under `MKIT_BRIDGE_STRICT=1`) without them.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mkit_bridge::attest::{
    self, AttestError, Envelope, EnvelopeSignature, PAYLOAD_TYPE_IN_TOTO, PREDICATE_GIT_BRIDGE,
    PREDICATE_GIT_IMPORT, decode_envelope, encode_envelope, verify_envelope,
};
use mkit_bridge::git::sha1::Sha1;
use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::sign::KeyPair;
use proptest::prelude::*;

/// Inputs of the reference's `attest/` vectors (mkit-attest's golden test).
const GOLDEN_SUBJECT_BYTES: &[u8] = b"pretend-serialised-commit-bytes-for-attest-golden-v1";
const GOLDEN_PREDICATE_TYPE: &str = "https://example.com/predicate/v1";
const GOLDEN_SEED: [u8; 32] = [0xAB; 32];

fn blake3_id(bytes: &[u8]) -> Id {
    Id(*blake3::hash(bytes).as_bytes())
}

fn golden_envelope() -> Vec<u8> {
    let id = blake3_id(GOLDEN_SUBJECT_BYTES);
    attest::mint(
        &GOLDEN_SEED,
        "commit",
        &id,
        GOLDEN_SUBJECT_BYTES,
        GOLDEN_PREDICATE_TYPE,
        "{}",
    )
    .unwrap()
}

fn public(seed: &[u8; 32]) -> [u8; 32] {
    KeyPair::from_seed(seed).public()
}

/// Check `bytes` against `attest/<name>.json`, its meta file and its MANIFEST line.
fn assert_vector(dir: &Path, name: &str, bytes: &[u8]) {
    let file = common::read_golden(dir, &format!("attest/{name}.json"));
    assert_eq!(
        String::from_utf8_lossy(bytes),
        String::from_utf8_lossy(&file),
        "attest/{name}: our bytes differ from the vector"
    );
    assert_eq!(bytes, file.as_slice());
    let manifest: BTreeMap<String, Vec<String>> =
        common::manifest(dir, "attest").into_iter().collect();
    assert_eq!(
        manifest[name][0],
        attest::attestation_id(bytes).to_hex(),
        "attest/{name}: MANIFEST digest"
    );
    let meta: serde_json::Value = serde_json::from_slice(&common::read_golden(
        dir,
        &format!("attest/{name}.meta.json"),
    ))
    .unwrap();
    assert_eq!(meta["size"], bytes.len());
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn golden_statement_reproduces() {
    let Some(dir) = common::golden_dir("golden_statement_reproduces") else {
        return;
    };
    let subject = blake3_id(GOLDEN_SUBJECT_BYTES);
    let statement = attest::encode_statement(
        &[attest::SubjectDigests {
            name: Some("commit"),
            blake3: subject,
            sha256_hex: attest::sha256_hex(GOLDEN_SUBJECT_BYTES),
        }],
        GOLDEN_PREDICATE_TYPE,
        "{}",
    )
    .unwrap();
    assert_vector(&dir, "statement_basic", statement.as_bytes());
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn golden_envelope_reproduces_and_verifies() {
    let Some(dir) = common::golden_dir("golden_envelope_reproduces_and_verifies") else {
        return;
    };
    let minted = golden_envelope();
    assert_vector(&dir, "envelope_basic", &minted);

    // The reference's bytes (not ours) decode, verify and say what they should.
    let theirs = common::read_golden(&dir, "attest/envelope_basic.json");
    let env = decode_envelope(&theirs).unwrap();
    assert_eq!(env.payload_type, PAYLOAD_TYPE_IN_TOTO);
    assert_eq!(env.signatures.len(), 1);
    assert_eq!(
        env.signatures[0].keyid,
        attest::keyid(&public(&GOLDEN_SEED))
    );
    assert_eq!(
        env.payload,
        common::read_golden(&dir, "attest/statement_basic.json")
    );
    let claim = verify_envelope(&theirs, &public(&GOLDEN_SEED)).unwrap();
    assert_eq!(claim.predicate_type, GOLDEN_PREDICATE_TYPE);
    assert_eq!(claim.predicate, serde_json::json!({}));
    assert_eq!(claim.subjects.len(), 1);
    assert_eq!(claim.subjects[0].name.as_deref(), Some("commit"));
    assert_eq!(claim.subjects[0].blake3, blake3_id(GOLDEN_SUBJECT_BYTES));
    assert_eq!(
        claim.subjects[0].sha256.as_deref(),
        Some(attest::sha256_hex(GOLDEN_SUBJECT_BYTES).as_str())
    );
}

#[test]
fn keyid_is_blake3_of_the_public_key() {
    let pk = public(&GOLDEN_SEED);
    let k = attest::keyid(&pk);
    assert_eq!(k.len(), 71);
    assert_eq!(k, format!("blake3:{}", blake3_id(&pk)));
    // The value the reference's golden envelope carries for this seed.
    assert_eq!(
        k,
        "blake3:2bda24077fd147c0355a0aa3e6787cb2fd9f6594ad2eca0ff0642114d6d92b96"
    );
}

#[test]
fn predicates_are_canonical_json() {
    let sha = Sha1([0x5a; 20]);
    let p = attest::git_import_predicate(&sha, "refs/remotes/up/m\"a\\in\t", "/srv/x\u{1}.git");
    assert_eq!(
        p,
        format!(
            "{{\"gitCommit\":\"{}\",\"refName\":\"refs/remotes/up/m\\\"a\\\\in\\t\",\"remoteUrl\":\"/srv/x\\u0001.git\",\"schemaVersion\":1,\"specVersion\":1}}",
            sha.to_hex()
        )
    );
    let v: serde_json::Value = serde_json::from_str(&p).unwrap();
    assert_eq!(v["refName"], "refs/remotes/up/m\"a\\in\t");
    let b = attest::git_bridge_predicate(&sha, "https://h/x.git", "refs/heads/main");
    assert_eq!(
        b,
        format!(
            "{{\"gitCommit\":\"{}\",\"mirror\":\"https://h/x.git\",\"refName\":\"refs/heads/main\",\"schemaVersion\":1,\"specVersion\":1}}",
            sha.to_hex()
        )
    );
    assert!(PREDICATE_GIT_IMPORT.ends_with("/predicate/git-import/v1"));
    assert!(PREDICATE_GIT_BRIDGE.ends_with("/predicate/git-bridge/v1"));
}

#[test]
fn minted_envelope_round_trips_and_verifies() {
    let seed = [0x42; 32];
    let body = b"some object bytes";
    let subject = blake3_id(body);
    let predicate = attest::git_import_predicate(&Sha1([1; 20]), "refs/tags/v1", "/up");
    let mint = || {
        attest::mint(
            &seed,
            "refs/tags/v1",
            &subject,
            body,
            PREDICATE_GIT_IMPORT,
            &predicate,
        )
        .unwrap()
    };
    let bytes = mint();
    let env = decode_envelope(&bytes).unwrap();
    assert_eq!(encode_envelope(&env).unwrap().as_bytes(), bytes.as_slice());
    let claim = verify_envelope(&bytes, &public(&seed)).unwrap();
    assert_eq!(claim.predicate_type, PREDICATE_GIT_IMPORT);
    assert_eq!(claim.predicate["refName"], "refs/tags/v1");
    assert_eq!(claim.predicate["remoteUrl"], "/up");
    assert_eq!(claim.predicate["schemaVersion"], 1);
    assert_eq!(claim.subjects[0].blake3, subject);
    assert_eq!(claim.subjects[0].name.as_deref(), Some("refs/tags/v1"));
    // Minting is deterministic.
    assert_eq!(mint(), bytes);
    // Not an object: refused before anything is signed.
    assert!(matches!(
        attest::mint(&seed, "x", &subject, body, PREDICATE_GIT_IMPORT, "[]"),
        Err(AttestError::PredicateNotObject(_))
    ));
}

#[test]
fn tampering_is_refused() {
    let seed = [0x42; 32];
    let pk = public(&seed);
    let good = golden_like(&seed);
    let env = decode_envelope(&good).unwrap();

    // Another key's public key: its keyid is not on the envelope.
    assert!(matches!(
        verify_envelope(&good, &public(&[0x43; 32])),
        Err(AttestError::NotSignedBy { .. })
    ));

    // A payload altered by one byte, re-encoded canonically.
    let mut e = env.clone();
    let at = e.payload.len() / 2;
    e.payload[at] ^= 0x01;
    let bytes = encode_envelope(&e).unwrap();
    assert!(matches!(
        verify_envelope(bytes.as_bytes(), &pk),
        Err(AttestError::BadSignature { .. })
    ));

    // A flipped signature bit; a truncated signature.
    let mut e = env.clone();
    e.signatures[0].sig[5] ^= 0x80;
    let bytes = encode_envelope(&e).unwrap();
    assert!(matches!(
        verify_envelope(bytes.as_bytes(), &pk),
        Err(AttestError::BadSignature { .. })
    ));
    let mut e = env.clone();
    e.signatures[0].sig.pop();
    let bytes = encode_envelope(&e).unwrap();
    assert!(verify_envelope(bytes.as_bytes(), &pk).is_err());

    // A keyid that no longer names the key.
    let mut e = env.clone();
    e.signatures[0].keyid = format!("blake3:{}", Id([0; 32]));
    let bytes = encode_envelope(&e).unwrap();
    assert!(matches!(
        verify_envelope(bytes.as_bytes(), &pk),
        Err(AttestError::NotSignedBy { .. })
    ));

    // Another payload type (the signature covers it too).
    let mut e = env.clone();
    e.payload_type = "application/json".to_owned();
    let bytes = encode_envelope(&e).unwrap();
    assert!(matches!(
        verify_envelope(bytes.as_bytes(), &pk),
        Err(AttestError::PayloadType(_))
    ));

    // No signature at all.
    let bytes = format!(
        "{{\"payload\":\"e30=\",\"payloadType\":\"{PAYLOAD_TYPE_IN_TOTO}\",\"signatures\":[]}}"
    );
    assert!(decode_envelope(bytes.as_bytes()).is_ok());
    assert!(matches!(
        verify_envelope(bytes.as_bytes(), &pk),
        Err(AttestError::NoSignature)
    ));

    // A validly signed payload that is not an in-toto statement.
    let key = KeyPair::from_seed(&seed);
    let payload = b"{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[]}".to_vec();
    let sig = key.sign_message(&attest::pae(PAYLOAD_TYPE_IN_TOTO, &payload));
    let e = Envelope {
        payload_type: PAYLOAD_TYPE_IN_TOTO.to_owned(),
        payload,
        signatures: vec![EnvelopeSignature {
            keyid: attest::keyid(&pk),
            sig: sig.to_vec(),
        }],
    };
    let bytes = encode_envelope(&e).unwrap();
    assert!(matches!(
        verify_envelope(bytes.as_bytes(), &pk),
        Err(AttestError::MalformedStatement(_))
    ));

    // A second, foreign signature does not spoil a good one.
    let mut e = env;
    e.signatures.insert(
        0,
        EnvelopeSignature {
            keyid: "sigstore:someone".to_owned(),
            sig: vec![9; 64],
        },
    );
    let bytes = encode_envelope(&e).unwrap();
    assert!(verify_envelope(bytes.as_bytes(), &pk).is_ok());
}

fn golden_like(seed: &[u8; 32]) -> Vec<u8> {
    let body = b"commit bytes";
    attest::mint(
        seed,
        "refs/remotes/upstream/main",
        &blake3_id(body),
        body,
        PREDICATE_GIT_IMPORT,
        &attest::git_import_predicate(&Sha1([7; 20]), "refs/remotes/upstream/main", "/x"),
    )
    .unwrap()
}

#[test]
fn store_saves_once_and_lists_what_it_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mkit_dir = dir.path();
    let bytes = golden_like(&[0x42; 32]);
    let subject = blake3_id(b"commit bytes");
    let (id, path) = attest::store::save(mkit_dir, &subject, &bytes).unwrap();
    assert_eq!(id, attest::attestation_id(&bytes));
    assert_eq!(
        path,
        mkit_dir
            .join("attestations")
            .join(subject.to_hex())
            .join(format!("{id}.dsse"))
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
    let (again, _) = attest::store::save(mkit_dir, &subject, &bytes).unwrap();
    assert_eq!(again, id);
    let listed = attest::store::list(mkit_dir, &subject).unwrap();
    assert_eq!(listed, vec![(id, bytes)]);
    // Nothing but the envelope in the subject directory (no temp left).
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_envelope(&bytes);
        let _ = verify_envelope(&bytes, &public(&[0x42; 32]));
        let _ = attest::parse_statement(&bytes);
    }

    #[test]
    fn every_mutation_of_a_signed_envelope_is_refused(
        at in 0usize..2000,
        xor in 1u8..=255,
        cut in proptest::bool::ANY,
    ) {
        let seed = [0x42; 32];
        let good = golden_like(&seed);
        let mut bad = good.clone();
        if cut {
            bad.truncate(at % good.len());
        } else {
            let i = at % good.len();
            bad[i] ^= xor;
        }
        prop_assert!(verify_envelope(&bad, &public(&seed)).is_err());
    }

    #[test]
    fn any_envelope_round_trips(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        sigs in proptest::collection::vec(
            ("[a-z0-9:/._-]{1,40}", proptest::collection::vec(any::<u8>(), 0..80)),
            1..4,
        ),
        payload_type in "[a-z/+.-]{1,40}",
    ) {
        let env = Envelope {
            payload_type,
            payload,
            signatures: sigs
                .into_iter()
                .map(|(keyid, sig)| EnvelopeSignature { keyid, sig })
                .collect(),
        };
        let bytes = encode_envelope(&env).unwrap();
        prop_assert_eq!(decode_envelope(bytes.as_bytes()).unwrap(), env);
    }
}

// ─── git-import/v1 minting, end to end ──────────────────────────────────

/// Every file under `<repo>/.mkit/attestations`, by path relative to that
/// directory, with its bytes.
fn attestation_tree(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_under(&repo.join(".mkit/attestations"))
}

struct Work {
    dir: tempfile::TempDir,
    src: PathBuf,
    key: PathBuf,
}

impl Work {
    fn new(fixture: &str) -> Work {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.git");
        common::build_fixture(fixture, &src);
        let key = common::import_key(dir.path(), 0x42);
        Work { dir, src, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn public(&self) -> [u8; 32] {
        public(&[0x42; 32])
    }

    fn ours_import(&self, dst: &Path) -> serde_json::Value {
        let out = common::run_ok(
            Command::new(common::bridge_bin())
                .arg("import")
                .arg(&self.src)
                .arg(dst)
                .args(["--json", "--key"])
                .arg(&self.key),
        );
        serde_json::from_slice(&out).unwrap()
    }

    fn ours_fetch(&self, dst: &Path) -> serde_json::Value {
        let out = common::run_ok(
            Command::new(common::bridge_bin())
                .args(["fetch", "--json", "--key"])
                .arg(&self.key)
                .current_dir(dst),
        );
        serde_json::from_slice(&out).unwrap()
    }

    fn theirs(&self, mkit: &Path, dst: &Path, args: &[&str]) {
        let mut cmd = Command::new(mkit);
        cmd.arg("git").args(args).arg("--key").arg(&self.key);
        if args[0] == "import" {
            cmd.arg(&self.src).arg(dst).current_dir(self.dir.path());
        } else {
            cmd.current_dir(dst);
        }
        common::run_ok(&mut cmd);
    }

    /// One new commit on `main` of the bare upstream.
    fn commit_on_main(&self) {
        let git = |args: &[&str]| {
            String::from_utf8(common::run_ok(
                Command::new("git")
                    .arg("-C")
                    .arg(&self.src)
                    .args(args)
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_AUTHOR_NAME", "A")
                    .env("GIT_AUTHOR_EMAIL", "a@example.com")
                    .env("GIT_AUTHOR_DATE", "1700009999 +0000")
                    .env("GIT_COMMITTER_NAME", "A")
                    .env("GIT_COMMITTER_EMAIL", "a@example.com")
                    .env("GIT_COMMITTER_DATE", "1700009999 +0000"),
            ))
            .unwrap()
            .trim()
            .to_owned()
        };
        let tree = git(&["rev-parse", "refs/heads/main^{tree}"]);
        let c = git(&[
            "commit-tree",
            &tree,
            "-p",
            "refs/heads/main",
            "-m",
            "one more",
        ]);
        git(&["update-ref", "refs/heads/main", &c]);
    }
}

/// Check every envelope of `repo` against the import outcome `json`: one per
/// imported head, under the head's directory, signed by the import key, with
/// the ref name, upstream SHA-1 and remote identity in its predicate.
fn assert_envelopes_match_refs(repo: &Path, json: &serde_json::Value, public: &[u8; 32]) {
    let tree = attestation_tree(repo);
    for r in json["imported"].as_array().unwrap() {
        let mkit = r["mkit"].as_str().unwrap();
        let mkit_ref = r["mkit_ref"].as_str().unwrap();
        let found: Vec<attest::Claim> = tree
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{mkit}/")))
            .map(|(p, bytes)| {
                assert_eq!(
                    p.rsplit('/').next().unwrap(),
                    format!("{}.dsse", attest::attestation_id(bytes))
                );
                verify_envelope(bytes, public).unwrap()
            })
            .filter(|c| c.subjects[0].name.as_deref() == Some(mkit_ref))
            .collect();
        assert_eq!(found.len(), 1, "{mkit_ref}: {found:?}");
        let c = &found[0];
        assert_eq!(c.predicate_type, PREDICATE_GIT_IMPORT);
        assert_eq!(c.subjects[0].blake3.to_hex(), mkit);
        assert_eq!(c.predicate["gitCommit"], r["git"]);
        assert_eq!(c.predicate["refName"], mkit_ref);
        assert_eq!(c.predicate["schemaVersion"], 1);
        assert_eq!(c.predicate["specVersion"], 1);
        let object =
            fs::read(repo.join(".mkit/objects").join(&mkit[..2]).join(&mkit[2..])).unwrap();
        assert_eq!(c.subjects[0].sha256, Some(attest::sha256_hex(&object)));
    }
}

fn changed_heads(before: &serde_json::Value, after: &serde_json::Value) -> usize {
    let old: BTreeMap<&str, &str> = before["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ref"].as_str().unwrap(), r["mkit"].as_str().unwrap()))
        .collect();
    after["imported"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| old.get(r["ref"].as_str().unwrap()) != Some(&r["mkit"].as_str().unwrap()))
        .count()
}

#[test]
fn refetch_mints_only_for_moved_heads() {
    let w = Work::new("plain");
    let dst = w.path("ours");
    let first = w.ours_import(&dst);
    let heads = first["imported"].as_array().unwrap().len();
    assert!(heads >= 1);
    assert_eq!(first["attestations"], heads, "{first}");
    let tree = attestation_tree(&dst);
    assert_eq!(tree.len(), heads);
    assert_envelopes_match_refs(&dst, &first, &w.public());
    let identity = mkit_bridge::git::remote::remote_identity(w.src.to_str().unwrap());
    for bytes in tree.values() {
        let c = verify_envelope(bytes, &w.public()).unwrap();
        assert_eq!(c.predicate["remoteUrl"], identity.as_str());
    }

    // Nothing moved upstream: nothing minted, nothing written.
    let again = w.ours_fetch(&dst);
    assert_eq!(again["attestations"], 0, "{again}");
    assert_eq!(attestation_tree(&dst), tree);

    // One commit on main: exactly one new envelope, about the new head.
    w.commit_on_main();
    let moved = w.ours_fetch(&dst);
    assert_eq!(moved["attestations"], 1, "{moved}");
    let after = attestation_tree(&dst);
    let new: Vec<&String> = after.keys().filter(|k| !tree.contains_key(*k)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(after.len(), tree.len() + 1);
    let main = moved["imported"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "refs/heads/main")
        .unwrap();
    assert!(new[0].starts_with(main["mkit"].as_str().unwrap()));
    assert_envelopes_match_refs(&dst, &moved, &w.public());
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn import_and_fetch_mint_the_reference_envelopes() {
    let Some(mkit) = common::mkit_bin("import_and_fetch_mint_the_reference_envelopes") else {
        return;
    };
    let w = Work::new("multi-branch");
    let ours = w.path("ours");
    let theirs = w.path("theirs");
    let first = w.ours_import(&ours);
    w.theirs(&mkit, &theirs, &["import"]);
    let tree = attestation_tree(&ours);
    assert_eq!(tree.len(), first["imported"].as_array().unwrap().len());
    assert_eq!(first["attestations"], tree.len());
    assert_trees_equal(&tree, &attestation_tree(&theirs));
    assert_envelopes_match_refs(&ours, &first, &w.public());
    reference_accepts(&mkit, &ours);

    // Each step moves, adds and deletes refs: both tools mint the same new
    // envelopes, and only for the heads that changed.
    let mut before = first;
    for step in ["multi-branch.append", "multi-branch.rewrite"] {
        common::build_fixture(step, &w.src);
        let after = w.ours_fetch(&ours);
        w.theirs(&mkit, &theirs, &["fetch"]);
        assert_eq!(
            after["attestations"],
            changed_heads(&before, &after),
            "{step}: {after}"
        );
        assert_trees_equal(&attestation_tree(&ours), &attestation_tree(&theirs));
        assert_envelopes_match_refs(&ours, &after, &w.public());
        reference_accepts(&mkit, &ours);
        before = after;
    }
}

fn assert_trees_equal(ours: &BTreeMap<String, Vec<u8>>, theirs: &BTreeMap<String, Vec<u8>>) {
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ours), names(theirs), "attestation file names differ");
    for (name, bytes) in ours {
        assert_eq!(
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&theirs[name]),
            "{name}"
        );
    }
}

/// `mkit git verify` on our repository finds nothing to complain about.
fn reference_accepts(mkit: &Path, repo: &Path) {
    let out = Command::new(mkit)
        .args(["git", "verify"])
        .current_dir(repo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mkit git verify refused our import ({}):\n{}{err}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("FAIL "), "{err}");
}
