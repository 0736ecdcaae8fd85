//! Differential property tests against the reference `mkit-core` 0.5.
//!
//! For generated objects of every storable type (and deltas for the codec):
//! our bytes equal its bytes, our ids equal its ids, each decodes what the
//! other encodes, signatures cross-verify both ways and are bit-identical
//! (Ed25519 is deterministic), and for mutated bytes (flips, truncations,
//! insertions) both implementations accept or refuse together.

use std::collections::{BTreeMap, BTreeSet};

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::object::{
    Blob, ChunkedBlob, Commit, Delta, EntryMode, Identity, IdentityKind, Object, ObjectType, Remix,
    RemixSource, Tag, Tree, TreeEntry, entry_name_rule,
};
use mkit_bridge::mkit::sign::{self, KeyPair, SignatureStatus};
use mkit_core as mc;
use proptest::prelude::*;

// ---- conversion into the reference's types -------------------------------

fn theirs_identity(i: &Identity) -> mc::Identity {
    mc::Identity {
        kind: match i.kind {
            IdentityKind::Ed25519 => mc::IdentityKind::Ed25519,
            IdentityKind::DidKey => mc::IdentityKind::DidKey,
            IdentityKind::Opaque => mc::IdentityKind::Opaque,
        },
        bytes: i.payload.clone(),
    }
}

fn theirs_type(t: ObjectType) -> mc::ObjectType {
    match t {
        ObjectType::Blob => mc::ObjectType::Blob,
        ObjectType::Tree => mc::ObjectType::Tree,
        ObjectType::Commit => mc::ObjectType::Commit,
        ObjectType::Remix => mc::ObjectType::Remix,
        ObjectType::ChunkedBlob => mc::ObjectType::ChunkedBlob,
        ObjectType::Delta => mc::ObjectType::Delta,
        ObjectType::Tag => mc::ObjectType::Tag,
    }
}

fn theirs_commit(c: &Commit) -> mc::Commit {
    mc::Commit {
        tree_hash: c.tree.0,
        parents: c.parents.iter().map(|p| p.0).collect(),
        author: theirs_identity(&c.author),
        signer: c.signer,
        message: c.message.clone(),
        timestamp: c.timestamp,
        message_hash: c.message_hash.0,
        content_digest: c.content_digest.0,
        signature: c.signature,
    }
}

fn theirs_remix(r: &Remix) -> mc::Remix {
    mc::Remix {
        tree_hash: r.tree.0,
        parents: r.parents.iter().map(|p| p.0).collect(),
        sources: r
            .sources
            .iter()
            .map(|s| mc::RemixSource {
                upstream_id: s.upstream_id.0,
                commit_hash: s.commit.0,
            })
            .collect(),
        author: theirs_identity(&r.author),
        signer: r.signer,
        message: r.message.clone(),
        timestamp: r.timestamp,
        signature: r.signature,
    }
}

fn theirs_tag(t: &Tag) -> mc::Tag {
    mc::Tag {
        target: t.target.0,
        target_type: theirs_type(t.target_type),
        name: t.name.clone(),
        tagger: theirs_identity(&t.tagger),
        signer: t.signer,
        message: t.message.clone(),
        timestamp: t.timestamp,
        signature: t.signature,
    }
}

fn theirs(obj: &Object) -> mc::Object {
    match obj {
        Object::Blob(b) => mc::Object::Blob(mc::Blob {
            data: b.data.clone(),
        }),
        Object::Tree(t) => mc::Object::Tree(mc::Tree {
            entries: t
                .entries
                .iter()
                .map(|e| mc::TreeEntry {
                    name: e.name.clone(),
                    mode: match e.mode {
                        EntryMode::Blob => mc::EntryMode::Blob,
                        EntryMode::Tree => mc::EntryMode::Tree,
                        EntryMode::Symlink => mc::EntryMode::Symlink,
                        EntryMode::Executable => mc::EntryMode::Executable,
                    },
                    object_hash: e.id.0,
                })
                .collect(),
        }),
        Object::Commit(c) => mc::Object::Commit(theirs_commit(c)),
        Object::Remix(r) => mc::Object::Remix(theirs_remix(r)),
        Object::ChunkedBlob(c) => mc::Object::ChunkedBlob(mc::ChunkedBlob {
            total_size: c.total_size,
            chunk_size: c.chunk_size,
            chunks: c.chunks.iter().map(|c| c.0).collect(),
        }),
        Object::Delta(d) => mc::Object::Delta(mc::Delta {
            base_hash: d.base.0,
            result_size: d.result_size,
            instructions: d.instructions.clone(),
        }),
        Object::Tag(t) => mc::Object::Tag(theirs_tag(t)),
    }
}

/// The reference's id for encoded bytes: the store's type-dependent rule.
fn their_id(bytes: &[u8]) -> Id {
    let obj = mc::deserialize(bytes).expect("reference decodes");
    Id(match &obj {
        mc::Object::Tree(t) => mc::merkle::compute_tree_id(t),
        mc::Object::ChunkedBlob(c) => mc::merkle::compute_chunked_id(c),
        _ => mc::hash::hash(bytes),
    })
}

// ---- strategies ------------------------------------------------------------

fn id() -> impl Strategy<Value = Id> {
    any::<[u8; 32]>().prop_map(Id)
}

fn sig64() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        s
    })
}

fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(Identity::ed25519),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Identity::opaque),
        "[!-~]{1,40}".prop_map(|s| Identity {
            kind: IdentityKind::DidKey,
            payload: s.into_bytes(),
        }),
    ]
}

fn entry_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,12}".prop_map(String::into_bytes),
        Just(b"foo".to_vec()),
        Just(b"foo.txt".to_vec()),
        Just(b"foo-bar".to_vec()),
        prop::collection::vec(1u8..=255, 1..16),
    ]
    .prop_filter("valid entry name", |n| entry_name_rule(n).is_none())
}

fn mode() -> impl Strategy<Value = EntryMode> {
    prop_oneof![
        Just(EntryMode::Blob),
        Just(EntryMode::Tree),
        Just(EntryMode::Symlink),
        Just(EntryMode::Executable),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    prop::collection::btree_map(entry_name(), (mode(), id()), 0..8).prop_map(|m: BTreeMap<_, _>| {
        Tree {
            entries: m
                .into_iter()
                .map(|(name, (mode, id))| TreeEntry { name, mode, id })
                .collect(),
        }
    })
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..120)
}

fn commit() -> impl Strategy<Value = Commit> {
    (
        id(),
        prop::collection::vec(id(), 0..4),
        identity(),
        message(),
        any::<u64>(),
        any::<[u8; 32]>(),
        (id(), id()),
        sig64(),
    )
        .prop_map(
            |(tree, parents, author, message, timestamp, signer, (mh, cd), signature)| Commit {
                tree,
                parents,
                author,
                message,
                timestamp,
                signer,
                message_hash: mh,
                content_digest: cd,
                signature,
            },
        )
}

fn remix() -> impl Strategy<Value = Remix> {
    (
        id(),
        prop::collection::vec(id(), 0..3),
        prop::collection::btree_set((id(), id()), 0..4),
        identity(),
        message(),
        any::<u64>(),
        any::<[u8; 32]>(),
        sig64(),
    )
        .prop_map(
            |(tree, parents, sources, author, message, timestamp, signer, signature): (
                _,
                _,
                BTreeSet<(Id, Id)>,
                _,
                _,
                _,
                _,
                _,
            )| Remix {
                tree,
                parents,
                sources: sources
                    .into_iter()
                    .map(|(upstream_id, commit)| RemixSource {
                        upstream_id,
                        commit,
                    })
                    .collect(),
                author,
                message,
                timestamp,
                signer,
                signature,
            },
        )
}

fn tag() -> impl Strategy<Value = Tag> {
    let target_type = prop_oneof![
        Just(ObjectType::Blob),
        Just(ObjectType::Tree),
        Just(ObjectType::Commit),
        Just(ObjectType::Remix),
        Just(ObjectType::ChunkedBlob),
        Just(ObjectType::Tag),
    ];
    (
        id(),
        target_type,
        prop::collection::vec(any::<u8>(), 1..24).prop_filter("tag floor", |n| {
            !n.iter().any(|b| matches!(b, 0 | b'/' | b'\\'))
        }),
        identity(),
        message(),
        any::<u64>(),
        any::<[u8; 32]>(),
        sig64(),
    )
        .prop_map(
            |(target, target_type, name, tagger, message, timestamp, signer, signature)| Tag {
                target,
                target_type,
                name,
                tagger,
                message,
                timestamp,
                signer,
                signature,
            },
        )
}

fn object() -> impl Strategy<Value = Object> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|data| Object::Blob(Blob { data })),
        tree().prop_map(Object::Tree),
        commit().prop_map(Object::Commit),
        remix().prop_map(Object::Remix),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec(id(), 0..6)
        )
            .prop_map(|(total_size, chunk_size, chunks)| Object::ChunkedBlob(
                ChunkedBlob {
                    total_size,
                    chunk_size,
                    chunks
                }
            )),
        (
            id(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(base, result_size, instructions)| Object::Delta(Delta {
                base,
                result_size,
                instructions
            })),
        tag().prop_map(Object::Tag),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match *m {
        Mutation::Flip(i, x) => {
            let i = i % out.len();
            out[i] ^= x;
        }
        Mutation::Truncate(i) => out.truncate(i % out.len()),
        Mutation::Insert(i, b) => out.insert(i % (out.len() + 1), b),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bytes_ids_and_decoding_agree(obj in object()) {
        let ours = obj.encode().unwrap();
        let reference = mc::serialize(&theirs(&obj)).unwrap();
        prop_assert_eq!(&ours, &reference);
        prop_assert_eq!(mc::deserialize(&ours).unwrap(), theirs(&obj));
        prop_assert_eq!(&Object::decode(&reference).unwrap(), &obj);
        if obj.object_type() != ObjectType::Delta {
            prop_assert_eq!(obj.id().unwrap(), their_id(&ours));
        }
    }

    #[test]
    fn mutated_bytes_are_accepted_or_refused_by_both(obj in object(), m in mutation()) {
        let bytes = apply(&obj.encode().unwrap(), &m);
        let ours = Object::decode(&bytes);
        let reference = mc::deserialize(&bytes);
        prop_assert_eq!(ours.is_ok(), reference.is_ok(), "ours {:?}, theirs {:?}", ours, reference);
        if let (Ok(o), Ok(t)) = (ours, reference) {
            prop_assert_eq!(theirs(&o), t);
            prop_assert_eq!(o.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn signatures_cross_verify(seed in any::<[u8; 32]>(), mut c in commit(), mut r in remix(), mut t in tag()) {
        let ours = KeyPair::from_seed(&seed);
        let kp = mc::KeyPair::from_seed(seed);
        prop_assert_eq!(ours.public(), kp.public.0);

        sign::sign_commit(&mut c, &ours).unwrap();
        prop_assert!(mc::verify_commit(&theirs_commit(&c)).is_ok());
        prop_assert_eq!(mc::sign_commit(&theirs_commit(&c), &kp).unwrap().0, c.signature);
        prop_assert_eq!(sign::commit_signing_bytes(&c).unwrap(), mc::commit_signing_bytes(&theirs_commit(&c)).unwrap());

        sign::sign_remix(&mut r, &ours).unwrap();
        prop_assert!(mc::verify_remix(&theirs_remix(&r)).is_ok());
        prop_assert_eq!(mc::sign_remix(&theirs_remix(&r), &kp).unwrap().0, r.signature);

        sign::sign_tag(&mut t, &ours).unwrap();
        prop_assert!(mc::verify_tag(&theirs_tag(&t)).is_ok());
        prop_assert_eq!(mc::sign_tag(&theirs_tag(&t), &kp).unwrap().0, t.signature);

        // A signature the reference makes verifies under ours, and a
        // tampered field fails both.
        let mut their_signed = theirs_commit(&c);
        their_signed.signature = mc::sign_commit(&their_signed, &kp).unwrap().0;
        let back = Object::decode(&mc::serialize(&mc::Object::Commit(their_signed)).unwrap()).unwrap();
        prop_assert_eq!(sign::verify_object(&back).unwrap(), Some(SignatureStatus::Valid));
        let mut tampered = c.clone();
        tampered.message.push(b'!');
        prop_assert_eq!(sign::verify_object(&Object::Commit(tampered.clone())).unwrap(), Some(SignatureStatus::Invalid));
        prop_assert!(mc::verify_commit(&theirs_commit(&tampered)).is_err());
    }
}

/// Objects written by our store are read by the reference store and back.
#[test]
fn stores_read_each_other() {
    use mkit_bridge::mkit::repo::Repo;
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path()).unwrap();
    let blob = Object::Blob(Blob {
        data: b"shared".to_vec(),
    });
    let tree = Object::Tree(Tree {
        entries: vec![TreeEntry {
            name: b"f".to_vec(),
            mode: EntryMode::Executable,
            id: blob.id().unwrap(),
        }],
    });
    let batch = repo.store().batch();
    let blob_id = batch.add(&blob).unwrap();
    let tree_id = batch.add(&tree).unwrap();
    batch.commit().unwrap();

    let layout = mc::layout::discover(dir.path()).unwrap();
    let their_store = mc::ObjectStore::open(&layout).unwrap();
    assert_eq!(their_store.read_object(&tree_id.0).unwrap(), theirs(&tree));
    assert_eq!(their_store.read_object(&blob_id.0).unwrap(), theirs(&blob));

    let other = Object::Blob(Blob {
        data: b"from the reference".to_vec(),
    });
    let written = their_store.write(&other.encode().unwrap()).unwrap();
    assert_eq!(Id(written), other.id().unwrap());
    assert_eq!(repo.store().read(&Id(written)).unwrap(), other);
}
