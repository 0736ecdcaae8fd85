//! The SPEC-GIT-IMPORT §9 golden vectors of the reference mkit 0.5.0,
//! reproduced with our translation functions.
//!
//! The vectors' git objects are rebuilt here from the same recipe the
//! reference's own golden test uses (hand-made bodies, the `[0x42; 32]`
//! importer key), checked against the published `.git.bin` bodies and sha1s,
//! then imported by a small in-memory driver: depth first, children before
//! parents, the first refusal wins, as 0.5.0's importer walks.
//!
//! The published vectors were made with a sink that names every object,
//! trees and chunk manifests included, by the flat BLAKE3 of its bytes
//! (`../shared/conformance/README.md`). The driver here can name trees and
//! manifests that way ([`Naming::Flat`]), and then every pinned id and byte
//! must come out identical; with real Merkle ids ([`Naming::Merkle`]) the
//! tree ids, and the commit and tag ids built on them, are those a real
//! store holds.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mkit_bridge::bridge::import::{
    ImportOptions, Translated, check_object_size, framed_digest, translate_commit, translate_tag,
    translate_tree,
};
use mkit_bridge::bridge::{Refusal, TagNameRule};
use mkit_bridge::git::sha1::{frame, object_id};
use mkit_bridge::git::{ObjectKind, Sha1};
use mkit_bridge::mkit::content;
use mkit_bridge::mkit::id::{Id, flat_id};
use mkit_bridge::mkit::object::{Commit, Identity, NameRule, Object, ObjectType, blob_id};
use mkit_bridge::mkit::sign::{KeyPair, SignatureStatus, sign_commit, sign_tag, verify_object};

const KEY_SEED: [u8; 32] = [0x42; 32];

// ---------------------------------------------------------------------------
// An in-memory upstream and a minimal driver
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Upstream {
    objects: HashMap<Sha1, (ObjectKind, Vec<u8>)>,
}

impl Upstream {
    fn put(&mut self, kind: ObjectKind, body: Vec<u8>) -> Sha1 {
        let id = object_id(kind, &body).expect("no collision pattern in test data");
        self.objects.insert(id, (kind, body));
        id
    }

    fn body(&self, id: &Sha1) -> &[u8] {
        &self.objects[id].1
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Naming {
    /// Trees and manifests named by the flat BLAKE3 of their bytes, as the
    /// published vectors were made.
    Flat,
    /// Trees and manifests named by their Merkle ids, as a real store does.
    Merkle,
}

/// The translated objects of one run: sha1 → memo value, and id → bytes.
struct Import<'a> {
    upstream: &'a Upstream,
    naming: Naming,
    memo: HashMap<Sha1, Translated>,
    bytes: HashMap<Id, Vec<u8>>,
    normalized: bool,
}

impl<'a> Import<'a> {
    fn new(upstream: &'a Upstream, naming: Naming) -> Self {
        Import {
            upstream,
            naming,
            memo: HashMap::new(),
            bytes: HashMap::new(),
            normalized: false,
        }
    }

    fn store(&mut self, obj: &Object) -> Id {
        let bytes = obj.encode().expect("translated objects encode");
        let id = match self.naming {
            Naming::Flat => flat_id(&bytes),
            Naming::Merkle => obj.id().expect("translated objects have ids"),
        };
        self.bytes.insert(id, bytes);
        id
    }

    /// Translate `sha1` and everything it reaches, children first.
    fn object(&mut self, sha1: &Sha1) -> Result<Translated, Refusal> {
        if let Some(t) = self.memo.get(sha1) {
            return Ok(*t);
        }
        let upstream = self.upstream;
        let (kind, body) = upstream
            .objects
            .get(sha1)
            .ok_or(Refusal::MissingObject { object: *sha1 })?;
        check_object_size(sha1, *kind, body.len() as u64)?;
        // Children are translated when the rule asks for them, so refusals
        // come out in the same order as 0.5.0's depth-first walk.
        let key = KeyPair::from_seed(&KEY_SEED);
        let mut child_refusal = None;
        let translated = {
            let mut lookup = |child: &Sha1| match self.object(child) {
                Ok(t) => Some(t),
                Err(r) => {
                    child_refusal.get_or_insert(r);
                    None
                }
            };
            match kind {
                ObjectKind::Blob => Ok(self.blob(body)),
                ObjectKind::Tree => {
                    translate_tree(sha1, body, ImportOptions::default(), &mut lookup).map(|t| {
                        self.normalized |= t.normalized;
                        let id = self.store(&Object::Tree(t.tree.clone()));
                        Translated {
                            id,
                            ..t.translated()
                        }
                    })
                }
                ObjectKind::Commit => {
                    translate_commit(sha1, body, &mut lookup, &key).map(|c| Translated {
                        id: self.store(&Object::Commit(c)),
                        kind: ObjectType::Commit,
                        depth: 0,
                    })
                }
                ObjectKind::Tag => {
                    translate_tag(sha1, body, &mut lookup, &key).map(|t| Translated {
                        id: self.store(&Object::Tag(t.tag)),
                        kind: ObjectType::Tag,
                        depth: t.chain,
                    })
                }
            }
        };
        if let Some(r) = child_refusal {
            return Err(r);
        }
        let translated = translated?;
        self.memo.insert(*sha1, translated);
        Ok(translated)
    }

    fn blob(&mut self, data: &[u8]) -> Translated {
        let t = Translated::content(data);
        if t.kind == ObjectType::ChunkedBlob {
            let manifest = Object::ChunkedBlob(content::manifest_for(data));
            let id = self.store(&manifest);
            assert_eq!(self.naming == Naming::Merkle, id == t.id);
            return Translated { id, ..t };
        }
        t
    }

    fn decoded(&self, id: &Id) -> Object {
        Object::decode(&self.bytes[id]).expect("our own bytes decode")
    }
}

// ---------------------------------------------------------------------------
// The vectors' recipe
// ---------------------------------------------------------------------------

/// The §9 success vectors: (name, tip) in MANIFEST order.
fn build_vectors(up: &mut Upstream) -> Vec<(&'static str, Sha1)> {
    let blob = up.put(ObjectKind::Blob, b"vector content\n".to_vec());
    let tree = up.put(ObjectKind::Tree, tree_body(&[("100644", "file.txt", blob)]));
    let commit = |up: &mut Upstream, headers: String, message: &[u8]| {
        let mut body = headers.into_bytes();
        body.extend_from_slice(message);
        up.put(ObjectKind::Commit, body)
    };

    let c1 = commit(
        up,
        format!(
            "tree {tree}\nauthor Plain <p@x> 1600000000 +0000\n\
             committer Plain <p@x> 1600000000 +0000\n\n"
        ),
        b"plain\n",
    );
    let c2 = commit(
        up,
        format!(
            "tree {tree}\nparent {c1}\nauthor Auth Or <a@x> 1600000100 +0530\n\
             committer Com Itter <c@y> 1600000200 -0800\n\n"
        ),
        b"zones\n",
    );
    let c3 = commit(
        up,
        format!(
            "tree {tree}\nauthor A <a@x> 1600000300 +0000\ncommitter A <a@x> 1600000300 +0000\n\
             gpgsig -----BEGIN PGP SIGNATURE-----\n iQEzBAABCAAdFiEE\n =AbCd\n \
             -----END PGP SIGNATURE-----\n\n"
        ),
        b"signed upstream\n",
    );
    let c4 = commit(
        up,
        format!(
            "tree {tree}\nauthor L <l@x> 1600000400 +0100\ncommitter L <l@x> 1600000400 +0100\n\
             encoding ISO-8859-1\n\n"
        ),
        b"caf\xe9\n",
    );
    let htree = up.put(
        ObjectKind::Tree,
        tree_body(&[("100664", "group.txt", blob)]),
    );
    let c5 = commit(
        up,
        format!(
            "tree {htree}\nauthor H <h@x> 1600000500 +0000\ncommitter H <h@x> 1600000500 +0000\n\n"
        ),
        b"historic mode\n",
    );
    let c6 = commit(
        up,
        format!(
            "tree {tree}\nparent {c1}\nparent {c2}\nparent {c3}\n\
             author O <o@x> 1600000600 +0000\ncommitter O <o@x> 1600000600 +0000\n\n"
        ),
        b"octopus\n",
    );
    let t7 = up.put(
        ObjectKind::Tag,
        format!(
            "object {c6}\ntype commit\ntag v1.0.0\ntagger Tagger <t@x> 1600000700 +0200\n\n\
             annotated\n"
        )
        .into_bytes(),
    );
    let t8 = up.put(
        ObjectKind::Tag,
        format!(
            "object {c6}\ntype commit\ntag v1.0.1\ntagger Tagger <t@x> 1600000800 +0000\n\n\
             signed tag\n-----BEGIN PGP SIGNATURE-----\nABCD\n-----END PGP SIGNATURE-----\n"
        )
        .into_bytes(),
    );
    let b9 = up.put(ObjectKind::Blob, big_blob_content());
    vec![
        ("commit_plain", c1),
        ("commit_zones", c2),
        ("commit_gpgsig", c3),
        ("commit_latin1", c4),
        ("commit_historic_mode", c5),
        ("commit_octopus", c6),
        ("tag_annotated", t7),
        ("tag_signed", t8),
        ("big_blob", b9),
    ]
}

/// Vector 9's content: the little-endian u32 sequence 0..300000 (1,200,000 bytes).
fn big_blob_content() -> Vec<u8> {
    (0u32..300_000).flat_map(u32::to_le_bytes).collect()
}

/// The §9 refusal vectors: (name, tip, the refusal we expect).
fn build_refusals(up: &mut Upstream) -> Vec<(&'static str, Sha1)> {
    let blob = up.put(ObjectKind::Blob, b"x\n".to_vec());
    let commit_of = |up: &mut Upstream, tree: Sha1, when: &str, message: &str| {
        up.put(
            ObjectKind::Commit,
            format!(
                "tree {tree}\nauthor A <a@x> {when} +0000\ncommitter A <a@x> {when} +0000\n\n\
                 {message}\n"
            )
            .into_bytes(),
        )
    };
    // A gitlink's id is never followed; any 20 bytes do.
    let t = up.put(ObjectKind::Tree, tree_body(&[("160000", "sub", blob)]));
    let gitlink = commit_of(up, t, "5", "sub");
    let t = up.put(ObjectKind::Tree, tree_body(&[("100644", "aux.c", blob)]));
    let aux = commit_of(up, t, "5", "aux");
    let t = up.put(ObjectKind::Tree, tree_body(&[("100644", "f", blob)]));
    let old = commit_of(up, t, "-5", "old");
    let good = commit_of(up, t, "5", "ok");
    let tag = up.put(
        ObjectKind::Tag,
        format!("object {good}\ntype commit\ntag v1.0+build\ntagger T <t@x> 5 +0000\n\nm\n")
            .into_bytes(),
    );
    vec![
        ("refuse_gitlink", gitlink),
        ("refuse_tree_name", aux),
        ("refuse_negative_timestamp", old),
        ("refuse_tag_name", tag),
    ]
}

fn tree_body(entries: &[(&str, &str, Sha1)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, name, id) in entries {
        out.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        out.extend_from_slice(&id.0);
    }
    out
}

// ---------------------------------------------------------------------------
// Reading the published vectors
// ---------------------------------------------------------------------------

fn vectors_dir(test: &str) -> Option<PathBuf> {
    let dir = common::golden_dir(test)?.join("git-import");
    if dir.is_dir() {
        Some(dir)
    } else {
        common::skip(test, &format!("{} is absent", dir.display()))
    }
}

/// `<name> <git-sha1> <third field>` lines of a manifest-style file.
fn pinned(dir: &Path, file: &str) -> Vec<(String, Sha1, String)> {
    let text = String::from_utf8(common::read_golden(dir, file)).expect("manifest is utf-8");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "malformed line {l:?} in {file}");
            (
                f[0].to_owned(),
                Sha1::from_hex(f[1]).unwrap(),
                f[2].to_owned(),
            )
        })
        .collect()
}

/// Re-signing the vector's commit or tag `obj` with `key` gives its
/// signature back (Ed25519 is deterministic), and the signature verifies.
fn assert_resigns(obj: Object, key: &KeyPair, name: &str) {
    let (resigned, pinned) = match &obj {
        Object::Commit(c) => {
            let mut r = Commit {
                signature: [0; 64],
                ..c.clone()
            };
            sign_commit(&mut r, key).unwrap();
            (r.signature, c.signature)
        }
        Object::Tag(t) => {
            let mut r = t.clone();
            r.signature = [0; 64];
            sign_tag(&mut r, key).unwrap();
            (r.signature, t.signature)
        }
        other => panic!("{name}: not a commit or a tag: {other:?}"),
    };
    assert_eq!(resigned, pinned, "{name}: signature");
    assert_eq!(
        verify_object(&obj).unwrap(),
        Some(SignatureStatus::Valid),
        "{name}"
    );
}

fn id(hex: &str) -> Id {
    Id::from_hex(hex).unwrap()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn every_vector_reproduces_byte_for_byte_under_flat_naming() {
    let Some(dir) = vectors_dir("every_vector_reproduces_byte_for_byte_under_flat_naming") else {
        return;
    };
    let mut up = Upstream::default();
    let vectors = build_vectors(&mut up);
    let manifest = pinned(&dir, "MANIFEST.txt");
    assert_eq!(manifest.len(), 9, "SPEC-GIT-IMPORT §9 pins nine vectors");
    let mut run = Import::new(&up, Naming::Flat);
    for ((name, tip), (pinned_name, pinned_sha1, pinned_id)) in vectors.iter().zip(&manifest) {
        assert_eq!(name, pinned_name, "vector order");
        assert_eq!(
            tip, pinned_sha1,
            "{name}: our recipe builds a different git object"
        );
        let got = run
            .object(tip)
            .unwrap_or_else(|r| panic!("{name}: refused: {r}"));
        assert_eq!(got.id.to_hex(), *pinned_id, "{name}: mkit id");

        let json: serde_json::Value =
            serde_json::from_slice(&common::read_golden(&dir, &format!("{name}.json"))).unwrap();
        assert_eq!(json["git_sha1"], tip.to_hex(), "{name}.json");
        assert_eq!(json["mkit_id"], got.id.to_hex(), "{name}.json");

        if *name == "big_blob" {
            continue; // content regenerated, not published
        }
        let git_bin = common::read_golden(&dir, &format!("{name}.git.bin"));
        assert_eq!(git_bin, up.body(tip), "{name}: git body");
        let mkit_bin = common::read_golden(&dir, &format!("{name}.mkit.bin"));
        assert_eq!(run.bytes[&got.id], mkit_bin, "{name}: mkit bytes");
    }
    // Determinism: a second run from nothing gives the same objects.
    let mut again = Import::new(&up, Naming::Flat);
    for (_, tip) in &vectors {
        again.object(tip).unwrap();
    }
    assert_eq!(again.bytes, run.bytes);
    assert!(run.normalized, "vector 5's 100664 entry is normalized");
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn commits_match_their_vectors_given_the_vectors_tree_ids() {
    let Some(dir) = vectors_dir("commits_match_their_vectors_given_the_vectors_tree_ids") else {
        return;
    };
    let mut up = Upstream::default();
    let vectors = build_vectors(&mut up);
    let key = KeyPair::from_seed(&KEY_SEED);
    let manifest: HashMap<Sha1, Id> = pinned(&dir, "MANIFEST.txt")
        .into_iter()
        .map(|(_, s, i)| (s, id(&i)))
        .collect();
    for (name, tip) in vectors.iter().filter(|(n, _)| n.starts_with("commit_")) {
        let mkit_bin = common::read_golden(&dir, &format!("{name}.mkit.bin"));
        let Object::Commit(pinned) = Object::decode(&mkit_bin).unwrap() else {
            panic!("{name} is a commit vector");
        };
        let body = up.body(tip).to_vec();
        let parsed = mkit_bridge::git::parse::CommitRef::parse(&body).unwrap();
        // Feed the vector's own tree id, and its parents' pinned ids.
        let lookup = |s: &Sha1| {
            if *s == parsed.tree {
                Some(Translated {
                    id: pinned.tree,
                    kind: ObjectType::Tree,
                    depth: 1,
                })
            } else {
                manifest.get(s).map(|&id| Translated {
                    id,
                    kind: ObjectType::Commit,
                    depth: 0,
                })
            }
        };
        let ours = translate_commit(tip, &body, lookup, &key).unwrap();
        assert_eq!(ours, pinned, "{name}");
        assert_eq!(
            Object::Commit(ours.clone()).encode().unwrap(),
            mkit_bin,
            "{name}"
        );
        assert_eq!(ours.signer, key.public(), "{name}: signed by the importer");
        assert_eq!(
            ours.content_digest,
            flat_id(&frame(ObjectKind::Commit, &body)),
            "{name}: content_digest is BLAKE3 of the framed git bytes"
        );
        assert_eq!(
            ours.content_digest,
            framed_digest(ObjectKind::Commit, &body)
        );
        assert_eq!(ours.message_hash, Id::ZERO);
        assert_eq!(
            ours.author,
            Identity::opaque(parsed.author.identity.as_ref()),
            "{name}: author slice"
        );
        assert_resigns(Object::Commit(pinned), &key, name);
    }
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn vector_fields_pin_the_translation_rules() {
    let Some(dir) = vectors_dir("vector_fields_pin_the_translation_rules") else {
        return;
    };
    let decode = |name: &str| {
        Object::decode(&common::read_golden(&dir, &format!("{name}.mkit.bin"))).unwrap()
    };
    let commit = |name: &str| match decode(name) {
        Object::Commit(c) => c,
        other => panic!("{name}: {other:?}"),
    };
    let tag = |name: &str| match decode(name) {
        Object::Tag(t) => t,
        other => panic!("{name}: {other:?}"),
    };
    let key = KeyPair::from_seed(&KEY_SEED);

    let c = commit("commit_plain");
    assert_eq!(c.author, Identity::opaque(&b"Plain <p@x>"[..]));
    assert_eq!(
        (c.timestamp, c.message.as_slice()),
        (1_600_000_000, &b"plain\n"[..])
    );
    assert!(c.parents.is_empty());
    let c = commit("commit_zones");
    assert_eq!(c.timestamp, 1_600_000_200, "committer epoch, not author");
    assert_eq!(c.author, Identity::opaque(&b"Auth Or <a@x>"[..]));
    assert_eq!(c.parents, [id(&pinned(&dir, "MANIFEST.txt")[0].2)]);
    let c = commit("commit_gpgsig");
    assert_eq!(
        c.message, b"signed upstream\n",
        "the signature is not in the message"
    );
    let c = commit("commit_latin1");
    assert_eq!(c.message, b"caf\xe9\n");
    assert!(
        std::str::from_utf8(&c.message).is_err(),
        "latin-1 survives verbatim"
    );
    let c = commit("commit_octopus");
    let manifest = pinned(&dir, "MANIFEST.txt");
    assert_eq!(
        c.parents,
        [id(&manifest[0].2), id(&manifest[1].2), id(&manifest[2].2)],
        "parent order preserved"
    );

    for (name, tag_name, when, message) in [
        (
            "tag_annotated",
            "v1.0.0",
            1_600_000_700,
            &b"annotated\n"[..],
        ),
        (
            "tag_signed",
            "v1.0.1",
            1_600_000_800,
            b"signed tag\n-----BEGIN PGP SIGNATURE-----\nABCD\n-----END PGP SIGNATURE-----\n",
        ),
    ] {
        let t = tag(name);
        assert_eq!(t.name, tag_name.as_bytes(), "{name}");
        assert_eq!(t.timestamp, when, "{name}");
        assert_eq!(
            t.message, message,
            "{name}: a git signature rides in the message"
        );
        assert_eq!(t.tagger, Identity::opaque(&b"Tagger <t@x>"[..]), "{name}");
        assert_eq!(
            t.target,
            id(&manifest[5].2),
            "{name}: targets the octopus commit"
        );
        assert_eq!(t.target_type, ObjectType::Commit, "{name}");
        assert_eq!(t.signer, key.public(), "{name}");
        assert_resigns(Object::Tag(t), &key, name);
    }
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn real_store_ids_differ_only_where_the_readme_says() {
    let Some(dir) = vectors_dir("real_store_ids_differ_only_where_the_readme_says") else {
        return;
    };
    let mut up = Upstream::default();
    let vectors = build_vectors(&mut up);
    let tip = |name: &str| vectors.iter().find(|(n, _)| *n == name).unwrap().1;
    let mut flat = Import::new(&up, Naming::Flat);
    let mut real = Import::new(&up, Naming::Merkle);
    for (_, t) in &vectors {
        flat.object(t).unwrap();
        real.object(t).unwrap();
    }
    // commit_plain's tree: bae12d99... in the vectors, 16952ec3... in a store.
    let plain_flat = flat.memo[&tip("commit_plain")];
    let plain_real = real.memo[&tip("commit_plain")];
    let Object::Commit(cf) = flat.decoded(&plain_flat.id) else {
        panic!()
    };
    let Object::Commit(cr) = real.decoded(&plain_real.id) else {
        panic!()
    };
    assert!(cf.tree.to_hex().starts_with("bae12d99"), "{}", cf.tree);
    assert!(cr.tree.to_hex().starts_with("16952ec3"), "{}", cr.tree);
    // Everything but the tree (and so the signature) is the same.
    assert_eq!(
        Commit {
            tree: cf.tree,
            signature: cf.signature,
            ..cr.clone()
        },
        cf
    );
    assert_eq!(
        verify_object(&Object::Commit(cr)).unwrap(),
        Some(SignatureStatus::Valid)
    );
    // big_blob: 97d934... flat, 64bf5d... Merkle.
    let manifest = pinned(&dir, "MANIFEST.txt");
    let big = tip("big_blob");
    assert_eq!(flat.memo[&big].id.to_hex(), manifest[8].2);
    assert!(real.memo[&big].id.to_hex().starts_with("64bf5d"));
    // Blobs are flat in both namings.
    let small = Translated::content(b"vector content\n");
    assert_eq!(small.id, blob_id(b"vector content\n"));
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn big_blob_is_the_writer_side_fastcdc_manifest() {
    let Some(dir) = vectors_dir("big_blob_is_the_writer_side_fastcdc_manifest") else {
        return;
    };
    let data = big_blob_content();
    assert_eq!(data.len(), 1_200_000);
    let sha1 = object_id(ObjectKind::Blob, &data).unwrap();
    let (_, pinned_sha1, pinned_id) = pinned(&dir, "MANIFEST.txt")
        .into_iter()
        .find(|(n, _, _)| n == "big_blob")
        .unwrap();
    assert_eq!(sha1, pinned_sha1);
    let manifest = content::manifest_for(&data);
    assert_eq!(manifest.total_size, 1_200_000);
    assert_eq!(manifest.chunk_size, 0, "content-defined");
    let encoded = Object::ChunkedBlob(manifest.clone()).encode().unwrap();
    assert_eq!(
        flat_id(&encoded).to_hex(),
        pinned_id,
        "the vectors' flat id"
    );
    assert!(
        manifest.merkle_id().to_hex().starts_with("64bf5d"),
        "the store's id"
    );
    let t = Translated::content(&data);
    assert_eq!(
        (t.kind, t.id),
        (ObjectType::ChunkedBlob, manifest.merkle_id())
    );
    assert!(check_object_size(&sha1, ObjectKind::Blob, data.len() as u64).is_ok());
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn refusal_vectors_refuse_with_their_typed_variant() {
    let Some(dir) = vectors_dir("refusal_vectors_refuse_with_their_typed_variant") else {
        return;
    };
    let mut up = Upstream::default();
    let vectors = build_refusals(&mut up);
    let pinned = pinned(&dir, "REFUSALS.txt");
    assert_eq!(pinned.len(), vectors.len());
    for ((name, tip), (pinned_name, pinned_sha1, variant)) in vectors.iter().zip(&pinned) {
        assert_eq!(name, pinned_name);
        assert_eq!(
            tip, pinned_sha1,
            "{name}: our recipe builds a different git object"
        );
        // Each vector in a fresh run, as the reference test does.
        let refusal = Import::new(&up, Naming::Merkle)
            .object(tip)
            .expect_err("hostile vector must refuse");
        assert_eq!(refusal.name(), variant, "{name}: {refusal}");
        let flat = Import::new(&up, Naming::Flat).object(tip).unwrap_err();
        assert_eq!(flat, refusal, "{name}: naming does not change refusals");
    }
    let refusal = |i: usize| {
        Import::new(&up, Naming::Merkle)
            .object(&vectors[i].1)
            .unwrap_err()
    };
    assert!(matches!(refusal(0), Refusal::Gitlink { ref name, .. } if name == b"sub"));
    assert!(
        refusal(0)
            .to_string()
            .contains("vendor the submodule, or exclude this ref")
    );
    assert!(matches!(
        refusal(1),
        Refusal::TreeEntryName { ref name, rule: NameRule::WindowsDevice, .. } if name == b"aux.c"
    ));
    assert!(matches!(
        refusal(2),
        Refusal::NegativeTimestamp {
            timestamp: -5,
            kind: ObjectKind::Commit,
            ..
        }
    ));
    assert!(matches!(
        refusal(3),
        Refusal::TagName { rule: TagNameRule::Charset, ref name, .. } if name == b"v1.0+build"
    ));
}

#[test]
fn tagger_less_tag_import_is_pinned() {
    // Pinned by the reference's own golden test (no vector file): the id
    // assumes flat-named trees, as all its vectors do.
    let mut up = Upstream::default();
    let blob = up.put(ObjectKind::Blob, b"vector content\n".to_vec());
    let tree = up.put(ObjectKind::Tree, tree_body(&[("100644", "file.txt", blob)]));
    let commit = up.put(
        ObjectKind::Commit,
        format!(
            "tree {tree}\nauthor A <a@x> 1600000000 +0000\ncommitter A <a@x> 1600000000 +0000\n\n\
             tagged commit\n"
        )
        .into_bytes(),
    );
    let tag = up.put(
        ObjectKind::Tag,
        format!("object {commit}\ntype commit\ntag v0.0.1\n\nhistoric tagger-less tag\n")
            .into_bytes(),
    );
    let mut run = Import::new(&up, Naming::Flat);
    let got = run.object(&tag).unwrap();
    assert_eq!(
        got.id.to_hex(),
        "d27c7e45a7d0241437f17927c96fc9235ccbffe84763d62185e9dd81397e6811"
    );
    let Object::Tag(t) = run.decoded(&got.id) else {
        panic!("a tag")
    };
    assert_eq!(t.tagger, Identity::opaque(&b"(no tagger)"[..]));
    assert_eq!(t.timestamp, 0);
    assert_eq!(
        verify_object(&Object::Tag(t)).unwrap(),
        Some(SignatureStatus::Valid)
    );
}
