//! Reproduce the reference's golden object vectors byte for byte.
//!
//! `objects/` and `tags/` pin serialized bytes (their MANIFEST lines are the
//! BLAKE3 of each `.bin` file) and the tag signing values; `git-bridge/` pins
//! real store ids of mkit objects. Each object here is built from its inputs
//! with our own encoder, compared to the file, decoded back, and its id
//! checked. Skips (or fails under `MKIT_BRIDGE_STRICT=1`) without `../shared`.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::object::{
    Blob, ChunkedBlob, Commit, EntryMode, Identity, IdentityKind, Object, ObjectType, Remix,
    RemixSource, Tag, Tree, TreeEntry,
};
use mkit_bridge::mkit::sign::{self, KeyPair, SignatureStatus};

const PUBKEY_A: [u8; 32] = [0xAA; 32];
const PUBKEY_B: [u8; 32] = [0xBB; 32];
const SIGNER: [u8; 32] = [0x11; 32];
const SIGNATURE: [u8; 64] = [0x22; 64];
const TS: u64 = 1_700_000_000;

fn manifest_map(dir: &Path, folder: &str) -> HashMap<String, Vec<String>> {
    common::manifest(dir, folder).into_iter().collect()
}

/// Assert `bytes` equal the vector file and its MANIFEST digest.
fn assert_vector(dir: &Path, folder: &str, name: &str, bytes: &[u8]) {
    let file = common::read_golden(dir, &format!("{folder}/{name}.bin"));
    assert_eq!(
        hex::encode(bytes),
        hex::encode(&file),
        "{folder}/{name}: our bytes differ from the vector"
    );
    let manifest = manifest_map(dir, folder);
    assert_eq!(
        blake3::hash(bytes).to_hex().as_str(),
        manifest[name][0],
        "{folder}/{name}: MANIFEST digest"
    );
}

fn assert_object_vector(dir: &Path, folder: &str, name: &str, obj: &Object) {
    let bytes = obj.encode().unwrap();
    assert_eq!(bytes.len(), obj.encoded_len());
    assert_vector(dir, folder, name, &bytes);
    assert_eq!(&Object::decode(&bytes).unwrap(), obj, "{name}: decode");
}

fn commit(parents: Vec<Id>, msg: &[u8], offset: u64) -> Object {
    Object::Commit(Commit {
        tree: Id([0x77; 32]),
        parents,
        author: Identity::ed25519(PUBKEY_A),
        message: msg.to_vec(),
        timestamp: TS + offset,
        signer: SIGNER,
        message_hash: Id::ZERO,
        content_digest: Id::ZERO,
        signature: SIGNATURE,
    })
}

fn remix(sources: Vec<RemixSource>, author: [u8; 32], msg: &[u8], offset: u64) -> Object {
    Object::Remix(Remix {
        tree: Id([0x77; 32]),
        parents: vec![],
        sources,
        author: Identity::ed25519(author),
        message: msg.to_vec(),
        timestamp: TS + offset,
        signer: SIGNER,
        signature: SIGNATURE,
    })
}

fn src(u: u8, c: u8) -> RemixSource {
    RemixSource {
        upstream_id: Id([u; 32]),
        commit: Id([c; 32]),
    }
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn object_vectors_reproduce() {
    let Some(dir) = common::golden_dir("object_vectors_reproduce") else {
        return;
    };
    let d = dir.as_path();
    let ident = |id: &Identity| {
        let mut out = vec![id.kind as u8];
        out.extend_from_slice(&(id.payload.len() as u16).to_le_bytes());
        out.extend_from_slice(&id.payload);
        out
    };
    let ed = Identity::ed25519(PUBKEY_A);
    assert_eq!(ident(&ed).len(), 35, "SPEC-OBJECTS §13.4");
    assert_vector(d, "objects", "identity_ed25519", &ident(&ed));
    let opaque = Identity {
        kind: IdentityKind::Opaque,
        payload: vec![0x2A, 0, 0, 0, 0, 0, 0, 0],
    };
    assert_vector(d, "objects", "identity_opaque", &ident(&opaque));

    let blob = Object::Blob(Blob {
        data: b"hello mkit\n".to_vec(),
    });
    assert_object_vector(d, "objects", "blob", &blob);
    let empty_blob = Object::Blob(Blob { data: vec![] });
    assert_object_vector(d, "objects", "empty_blob", &empty_blob);
    assert_eq!(empty_blob.encoded_len(), 10);

    let entry = |name: &[u8], mode, id| TreeEntry {
        name: name.to_vec(),
        mode,
        id,
    };
    let tree = Object::Tree(Tree {
        entries: vec![
            entry(b"README.md", EntryMode::Blob, Id([0x55; 32])),
            entry(b"scripts", EntryMode::Executable, Id([0x66; 32])),
            entry(b"src", EntryMode::Tree, Id([0x33; 32])),
        ],
    });
    assert_object_vector(d, "objects", "tree", &tree);
    let empty_tree = Object::Tree(Tree::default());
    assert_object_vector(d, "objects", "empty_tree", &empty_tree);
    assert_eq!(
        empty_tree.id().unwrap().to_hex(),
        "1ab8d0788b29fe5992011e64d6c922ec93f4248b3755b92b15b07e664cb15652"
    );
    let single = Object::Tree(Tree {
        entries: vec![entry(
            b"README.md",
            EntryMode::Blob,
            empty_blob.id().unwrap(),
        )],
    });
    assert_object_vector(d, "objects", "tree_single_file", &single);
    // A tree's id is its Merkle root, not the hash of its bytes.
    assert_ne!(
        single.id().unwrap(),
        mkit_bridge::mkit::id::flat_id(&single.encode().unwrap())
    );

    let c0 = commit(vec![], b"genesis", 0);
    assert_object_vector(d, "objects", "commit_0parent", &c0);
    assert_object_vector(
        d,
        "objects",
        "commit_1parent",
        &commit(vec![Id([0xA0; 32])], b"second", 1),
    );
    assert_object_vector(
        d,
        "objects",
        "commit_2parent",
        &commit(vec![Id([0xA0; 32]), Id([0xB0; 32])], b"merge", 2),
    );
    let Object::Commit(c0c) = &c0 else {
        unreachable!()
    };
    assert_vector(
        d,
        "objects",
        "commit_0parent_signing_bytes",
        &sign::commit_signing_bytes(c0c).unwrap(),
    );

    let r2 = remix(
        vec![src(0x10, 0x30), src(0x20, 0x40)],
        PUBKEY_B,
        b"remix two",
        10,
    );
    assert_object_vector(d, "objects", "remix_2sources", &r2);
    let Object::Remix(r2r) = &r2 else {
        unreachable!()
    };
    assert_vector(
        d,
        "objects",
        "remix_2sources_signing_bytes",
        &sign::remix_signing_bytes(r2r).unwrap(),
    );
    let same_upstream = remix(
        vec![src(0x10, 0x30), src(0x10, 0x31)],
        [0xBB; 32],
        b"remix same upstream",
        11,
    );
    assert_object_vector(
        d,
        "objects",
        "remix_identical_upstream_distinct_commit",
        &same_upstream,
    );
    // Swapping the secondary key breaks the sort and is refused.
    let swapped = remix(
        vec![src(0x10, 0x31), src(0x10, 0x30)],
        [0xBB; 32],
        b"remix same upstream",
        11,
    );
    assert!(swapped.encode().is_err());

    let chunked = Object::ChunkedBlob(ChunkedBlob {
        total_size: 4 * 65536,
        chunk_size: 65536,
        chunks: (1..=4u8).map(|b| Id([b; 32])).collect(),
    });
    assert_object_vector(d, "objects", "chunked_blob", &chunked);
    let cdc = Object::ChunkedBlob(ChunkedBlob {
        total_size: 1_000_000,
        chunk_size: 0,
        chunks: vec![Id([0xA1; 32]), Id([0xA2; 32]), Id([0xA3; 32])],
    });
    assert_object_vector(d, "objects", "chunked_blob_cs0_3chunks", &cdc);
    assert_eq!(cdc.encoded_len(), 118, "SPEC-OBJECTS §13.7");

    // Every vector in the MANIFEST was covered above.
    assert_eq!(manifest_map(d, "objects").len(), 16);
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn tag_vectors_reproduce() {
    let Some(dir) = common::golden_dir("tag_vectors_reproduce") else {
        return;
    };
    let d = dir.as_path();
    let m = manifest_map(d, "tags");
    let annotated = Tag {
        target: Id([0xC0; 32]),
        target_type: ObjectType::Commit,
        name: b"v1.0.0".to_vec(),
        tagger: Identity::ed25519([0xAA; 32]),
        message: b"mkit 1.0.0 release".to_vec(),
        timestamp: TS,
        signer: [0xAA; 32],
        signature: [0; 64],
    };
    assert_object_vector(d, "tags", "tag_annotated", &Object::Tag(annotated.clone()));
    assert_vector(
        d,
        "tags",
        "tag_annotated_signing_bytes",
        &sign::tag_signing_bytes(&annotated).unwrap(),
    );
    assert_eq!(
        hex::encode(sign::tag_signing_hash(&annotated).unwrap()),
        m["tag_annotated_signing_hash"][0]
    );
    assert_eq!(
        sign::verify_object(&Object::Tag(annotated.clone())).unwrap(),
        Some(SignatureStatus::Unsigned)
    );

    let key = KeyPair::from_seed(&[0x07; 32]);
    let mut signed = Tag {
        tagger: Identity::ed25519(key.public()),
        ..annotated
    };
    sign::sign_tag(&mut signed, &key).unwrap();
    assert_eq!(hex::encode(signed.signature), m["tag_signed_signature"][0]);
    assert_object_vector(d, "tags", "tag_signed", &Object::Tag(signed.clone()));
    assert_eq!(
        sign::verify_object(&Object::Tag(signed)).unwrap(),
        Some(SignatureStatus::Valid)
    );
}

/// The mkit side of the export vectors: real store ids, and signatures that
/// our signer reproduces exactly with the vectors' key.
#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn git_bridge_mkit_ids_reproduce() {
    let Some(dir) = common::golden_dir("git_bridge_mkit_ids_reproduce") else {
        return;
    };
    let key = KeyPair::from_seed(&[0x11; 32]);
    let manifest = common::manifest(&dir, "git-bridge");
    assert_eq!(manifest.len(), 9);
    for (name, fields) in manifest {
        let bytes = common::read_golden(&dir, &format!("git-bridge/{name}.mkit.bin"));
        let obj = Object::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(obj.encode().unwrap(), bytes, "{name}: re-encode");
        assert_eq!(obj.id().unwrap().to_hex(), fields[0], "{name}: id");
        let status = sign::verify_object(&obj).unwrap();
        match obj {
            Object::Commit(mut c) => {
                assert_eq!(status, Some(SignatureStatus::Valid), "{name}");
                let original = c.signature;
                sign::sign_commit(&mut c, &key).unwrap();
                assert_eq!(c.signature, original, "{name}: our signature differs");
            }
            Object::Tag(mut t) if name == "tag_signed" => {
                assert_eq!(status, Some(SignatureStatus::Valid), "{name}");
                let original = t.signature;
                sign::sign_tag(&mut t, &key).unwrap();
                assert_eq!(t.signature, original, "{name}: our signature differs");
            }
            Object::Tag(_) => assert_eq!(status, Some(SignatureStatus::Unsigned), "{name}"),
            _ => assert_eq!(status, None, "{name}"),
        }
    }
}

/// The export vectors' chunked blob: the little-endian u32 sequence
/// 0..300000 chunked with the pinned FastCDC gives the pinned manifest.
#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn git_bridge_chunked_blob_content_reproduces() {
    let Some(dir) = common::golden_dir("git_bridge_chunked_blob_content_reproduces") else {
        return;
    };
    let data: Vec<u8> = (0..300_000u32).flat_map(u32::to_le_bytes).collect();
    assert_eq!(data.len(), 1_200_000);
    let manifest = mkit_bridge::mkit::content::manifest_for(&data);
    let bytes = Object::ChunkedBlob(manifest.clone()).encode().unwrap();
    assert_eq!(
        bytes,
        common::read_golden(&dir, "git-bridge/chunked_blob.mkit.bin")
    );
    assert_eq!(
        mkit_bridge::mkit::content::content_id(&data).to_hex(),
        "64bf5dbbbe80bc2334809ab8de057b1affc91aaea3a5d0c46d76f027eb5b3861"
    );
}
