//! Property tests of the export mapping over generated mkit histories.
//!
//! Each case builds a small history — shared and nested trees with
//! file/executable/symlink entries and the `foo` / `foo.txt` / `foo/`
//! ordering trap, sometimes a chunked blob over 1 MiB, commits with merges,
//! signed and unsigned, with every identity kind, and tags of commits, trees,
//! blobs and tags — then checks:
//!
//! - every exported object reconstructs (§9) to the identical mkit bytes;
//! - every head deep-verifies (§10), with signed objects `Valid` and unsigned
//!   ones `Unsigned`;
//! - written into a fresh git repository (through gix, whose own ids must
//!   equal ours), the objects pass `git fsck --strict`;
//! - a mutated commit, tag or tree body is refused, or reconstructs to a
//!   different mkit object: never misread as the original.
//!
//! Case counts are small: the test must take seconds.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use gix::objs::Write as _;
use mkit_bridge::bridge::export::{Exported, export_closure};
use mkit_bridge::bridge::reconstruct::reconstruct;
use mkit_bridge::bridge::verify::deep_verify;
use mkit_bridge::git::{ObjectKind, Sha1};
use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::content::manifest_for;
use mkit_bridge::mkit::object::{
    Blob, Commit, EntryMode, Identity, IdentityKind, Object, ObjectType, Tag, Tree, TreeEntry,
};
use mkit_bridge::mkit::sign::{self, KeyPair, SignatureStatus};
use proptest::prelude::*;

/// Entry names: the ordering trap (`foo`, `foo.txt`, `foo-`, `foo0` around a
/// directory `foo`), spaces, non-ASCII; all legal in mkit and in git.
const NAMES: &[&[u8]] = &[
    b"foo",
    b"foo.txt",
    b"foo-",
    b"foo0",
    b"a",
    b"B",
    b"read me",
    "naïve".as_bytes(),
    b"x.y.z",
    b"_",
];
const TAG_NAMES: &[&[u8]] = &[b"v1", b"v1.0.0", b"rel_2", b"x-y"];
const OPAQUE: &[&[u8]] = &[
    b"Alice",
    b"A <a@b>",
    b"\xff\xfe",
    b"tab\there",
    "ünï cødé".as_bytes(),
];
const DID: &[&[u8]] = &[b"z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", b"z<6"];

#[derive(Debug, Clone)]
struct TreePlan {
    /// (name index, kind 0 file / 1 executable / 2 symlink / 3 directory, target)
    entries: Vec<(usize, u8, usize)>,
}

#[derive(Debug, Clone)]
struct CommitPlan {
    tree: usize,
    parents: Vec<usize>,
    /// 0 ed25519, 1 opaque, 2 did:key
    author: (u8, usize),
    signed: bool,
    message: Vec<u8>,
    timestamp: u64,
    annotated: bool,
}

#[derive(Debug, Clone)]
struct TagPlan {
    /// 0 commit, 1 tree, 2 file, 3 earlier tag
    target: (u8, usize),
    name: usize,
    tagger: (u8, usize),
    signed: bool,
    message: Vec<u8>,
    timestamp: u64,
}

#[derive(Debug, Clone)]
struct Plan {
    files: Vec<Vec<u8>>,
    big: Option<u64>,
    trees: Vec<TreePlan>,
    commits: Vec<CommitPlan>,
    tags: Vec<TagPlan>,
    /// Seeds for the mutation check.
    mutations: Vec<(usize, usize, u8)>,
}

/// Bytes without NUL (`git fsck --strict` flags NUL in a commit message).
fn text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 0..24)
}

fn timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..(1 << 40),
        1 => Just(0u64),
        1 => Just(i64::MAX as u64),
    ]
}

fn identity() -> impl Strategy<Value = (u8, usize)> {
    (0u8..3, 0usize..8)
}

fn plan() -> impl Strategy<Value = Plan> {
    let files = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..5);
    let big = prop::option::weighted(0.3, any::<u64>());
    let trees = prop::collection::vec(
        prop::collection::vec((0..NAMES.len(), 0u8..4, 0usize..16), 0..6)
            .prop_map(|entries| TreePlan { entries }),
        1..5,
    );
    let commits = prop::collection::vec(
        (
            0usize..16,
            prop::collection::vec(0usize..16, 0..3),
            identity(),
            any::<bool>(),
            text(),
            timestamp(),
            any::<bool>(),
        )
            .prop_map(
                |(tree, parents, author, signed, message, timestamp, annotated)| CommitPlan {
                    tree,
                    parents,
                    author,
                    signed,
                    message,
                    timestamp,
                    annotated,
                },
            ),
        1..5,
    );
    let tags = prop::collection::vec(
        (
            (0u8..4, 0usize..16),
            0..TAG_NAMES.len(),
            identity(),
            any::<bool>(),
            text(),
            timestamp(),
        )
            .prop_map(
                |(target, name, tagger, signed, message, timestamp)| TagPlan {
                    target,
                    name,
                    tagger,
                    signed,
                    message,
                    timestamp,
                },
            ),
        0..3,
    );
    let mutations = prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 4);
    (files, big, trees, commits, tags, mutations).prop_map(
        |(files, big, trees, commits, tags, mutations)| Plan {
            files,
            big,
            trees,
            commits,
            tags,
            mutations,
        },
    )
}

/// Content over the chunking threshold from a seed (xorshift bytes, so the
/// chunker finds several content-defined boundaries).
fn big_content(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let len = 1024 * 1024 + 1 + (seed % 200_000) as usize;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A built history: every object, the heads to export, and what each head's
/// signatures must report.
struct History {
    objects: HashMap<Id, Object>,
    heads: Vec<(String, Id)>,
}

fn put(objects: &mut HashMap<Id, Object>, obj: Object) -> Id {
    let id = obj.id().unwrap();
    objects.insert(id, obj);
    id
}

fn identity_of((kind, i): (u8, usize), key: &KeyPair) -> Identity {
    match kind {
        0 => Identity::ed25519(key.public()),
        1 => Identity::opaque(OPAQUE[i % OPAQUE.len()].to_vec()),
        _ => Identity {
            kind: IdentityKind::DidKey,
            payload: DID[i % DID.len()].to_vec(),
        },
    }
}

fn build(plan: &Plan) -> History {
    let key = KeyPair::from_seed(&[0x11; 32]);
    let mut objects = HashMap::new();
    // Files: (id, type, small enough for a symlink target).
    let mut files: Vec<(Id, ObjectType, bool)> = plan
        .files
        .iter()
        .map(|data| {
            let id = put(&mut objects, Object::Blob(Blob { data: data.clone() }));
            (id, ObjectType::Blob, true)
        })
        .collect();
    if let Some(seed) = plan.big {
        let data = big_content(seed);
        for piece in mkit_bridge::mkit::chunk::chunks(&data) {
            put(
                &mut objects,
                Object::Blob(Blob {
                    data: piece.to_vec(),
                }),
            );
        }
        let id = put(&mut objects, Object::ChunkedBlob(manifest_for(&data)));
        files.push((id, ObjectType::ChunkedBlob, false));
    }
    let mut trees: Vec<Id> = Vec::new();
    for t in &plan.trees {
        let mut entries: Vec<TreeEntry> = Vec::new();
        for &(name, kind, target) in &t.entries {
            let name = NAMES[name].to_vec();
            if entries.iter().any(|e| e.name == name) {
                continue;
            }
            let (mode, id) = match kind {
                3 if !trees.is_empty() => (EntryMode::Tree, trees[target % trees.len()]),
                2 => {
                    let small: Vec<&(Id, ObjectType, bool)> =
                        files.iter().filter(|f| f.2).collect();
                    (EntryMode::Symlink, small[target % small.len()].0)
                }
                1 => (EntryMode::Executable, files[target % files.len()].0),
                _ => (EntryMode::Blob, files[target % files.len()].0),
            };
            entries.push(TreeEntry { name, mode, id });
        }
        let mut tree = Tree { entries };
        tree.sort();
        trees.push(put(&mut objects, Object::Tree(tree)));
    }
    let mut commits: Vec<Id> = Vec::new();
    let mut heads = Vec::new();
    for (i, c) in plan.commits.iter().enumerate() {
        let parents = if commits.is_empty() {
            Vec::new()
        } else {
            c.parents
                .iter()
                .map(|p| commits[p % commits.len()])
                .collect()
        };
        let mut commit = Commit {
            tree: trees[c.tree % trees.len()],
            parents,
            author: identity_of(c.author, &key),
            message: c.message.clone(),
            timestamp: c.timestamp,
            signer: [0; 32],
            message_hash: if c.annotated {
                Id([0xaa; 32])
            } else {
                Id::ZERO
            },
            content_digest: if c.annotated {
                Id([0xbb; 32])
            } else {
                Id::ZERO
            },
            signature: [0; 64],
        };
        if c.signed {
            sign::sign_commit(&mut commit, &key).unwrap();
        }
        let id = put(&mut objects, Object::Commit(commit));
        commits.push(id);
        heads.push((format!("refs/heads/c{i}"), id));
    }
    let mut tags: Vec<Id> = Vec::new();
    for (i, t) in plan.tags.iter().enumerate() {
        let (target, target_type) = match t.target.0 {
            1 => (trees[t.target.1 % trees.len()], ObjectType::Tree),
            2 => {
                let f = files[t.target.1 % files.len()];
                (f.0, f.1)
            }
            3 if !tags.is_empty() => (tags[t.target.1 % tags.len()], ObjectType::Tag),
            _ => (commits[t.target.1 % commits.len()], ObjectType::Commit),
        };
        let mut tag = Tag {
            target,
            target_type,
            name: TAG_NAMES[t.name].to_vec(),
            tagger: identity_of(t.tagger, &key),
            message: t.message.clone(),
            timestamp: t.timestamp,
            signer: [0; 32],
            signature: [0; 64],
        };
        if t.signed {
            sign::sign_tag(&mut tag, &key).unwrap();
        }
        let id = put(&mut objects, Object::Tag(tag));
        tags.push(id);
        heads.push((format!("refs/tags/t{i}"), id));
    }
    History { objects, heads }
}

fn git(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    c
}

fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Write every object into a fresh bare repository, point a ref at each
/// head, and run `git fsck --strict`.
fn fsck(exported: &HashMap<Sha1, (ObjectKind, Vec<u8>)>, heads: &[(String, Sha1)]) {
    let dir = tempfile::tempdir().unwrap();
    let repo = gix::init_bare(dir.path()).unwrap();
    for (id, (kind, body)) in exported {
        let kind = gix::objs::Kind::from_bytes(kind.name().as_bytes()).unwrap();
        let written = repo.write_buf(kind, body).unwrap();
        assert_eq!(written.as_slice(), id.as_bytes(), "gix computes another id");
    }
    for (name, id) in heads {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{id}\n")).unwrap();
    }
    let out = git(dir.path())
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stderr.contains("error") && !stderr.contains("warning"),
        "git fsck --strict failed:\n{stdout}\n{stderr}"
    );
}

fn check(plan: &Plan, with_git: bool) {
    let history = build(plan);
    let mut known: HashMap<Id, Sha1> = HashMap::new();
    let mut exported: HashMap<Id, Exported> = HashMap::new();
    let mut git_heads = Vec::new();
    for (name, head) in &history.heads {
        let out = export_closure(&history.objects, head, &mut known, |id, e| {
            exported.insert(*id, e.clone());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        git_heads.push((name.clone(), out.root));
    }
    let inverse: HashMap<Sha1, Id> = known.iter().map(|(m, g)| (*g, *m)).collect();
    assert_eq!(inverse.len(), known.len(), "two mkit objects, one git id");
    let mirror: HashMap<Sha1, (ObjectKind, Vec<u8>)> = exported
        .values()
        .map(|e| (e.id, (e.object.kind, e.object.body.clone())))
        .collect();

    // Every object reconstructs to its exact bytes.
    let lookup = |g: &Sha1| inverse.get(g).copied();
    for (id, e) in &exported {
        let rec = reconstruct(e.object.kind, &e.object.body, lookup)
            .unwrap_or_else(|err| panic!("{id}: {err}"));
        assert_eq!(rec.id, *id);
        assert_eq!(rec.bytes, history.objects[id].encode().unwrap());
    }

    // Every head deep-verifies; signatures report what was made.
    for ((name, head), (_, git_head)) in history.heads.iter().zip(&git_heads) {
        let report = deep_verify(&mirror, git_head).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.root, *head, "{name}");
        for s in &report.signatures {
            let want = match &history.objects[&s.mkit] {
                Object::Commit(c) if c.signature == [0; 64] => SignatureStatus::Unsigned,
                Object::Tag(t) if t.signature == [0; 64] => SignatureStatus::Unsigned,
                _ => SignatureStatus::Valid,
            };
            assert_eq!(s.status, want, "{name}: {}", s.mkit);
        }
    }

    // Mutated bodies are refused or read as something else.
    let mut ids: Vec<&Id> = exported.keys().collect();
    ids.sort();
    for &(pick, at, byte) in &plan.mutations {
        let id = ids[pick % ids.len()];
        let e = &exported[id];
        if e.object.kind == ObjectKind::Blob || e.object.body.is_empty() {
            continue;
        }
        let mut body = e.object.body.clone();
        let at = at % body.len();
        match byte % 3 {
            0 => body[at] ^= byte | 1,
            1 => {
                body.remove(at);
            }
            _ => body.insert(at, byte),
        }
        if let Ok(rec) = reconstruct(e.object.kind, &body, lookup) {
            assert_ne!(
                rec.bytes,
                history.objects[id].encode().unwrap(),
                "{id} misread"
            );
        }
    }

    if with_git {
        fsck(&mirror, &git_heads);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn exported_histories_round_trip_verify_and_pass_fsck(plan in plan()) {
        let with_git = git_available();
        if !with_git {
            let _ = common::skip::<()>("exported_histories_round_trip_verify_and_pass_fsck",
                "git is not on PATH; git fsck is not run");
        }
        check(&plan, with_git);
    }
}

/// The fixed worst case for ordering: a directory `foo` beside `foo.txt`,
/// `foo-` and `foo0`, nested, exported and checked by git; and a tag at the
/// largest timestamp the mapping accepts.
#[test]
fn foo_directory_ordering_passes_fsck() {
    if !git_available() {
        common::skip::<()>("foo_directory_ordering_passes_fsck", "git is not on PATH");
        return;
    }
    let plan = Plan {
        files: vec![b"x".to_vec(), b"#!/bin/sh\n".to_vec()],
        big: None,
        trees: vec![
            TreePlan {
                entries: vec![(0, 0, 0), (1, 1, 1)],
            },
            TreePlan {
                entries: vec![(0, 3, 0), (1, 0, 0), (2, 2, 0), (3, 1, 1)],
            },
        ],
        commits: vec![CommitPlan {
            tree: 1,
            parents: vec![],
            author: (1, 1),
            signed: true,
            message: b"m\n".to_vec(),
            timestamp: 1_700_000_000,
            annotated: false,
        }],
        // The largest timestamp 0.5.0 exports; git fsck accepts it.
        tags: vec![TagPlan {
            target: (0, 0),
            name: 1,
            tagger: (2, 0),
            signed: false,
            message: Vec::new(),
            timestamp: i64::MAX as u64,
        }],
        mutations: vec![],
    };
    check(&plan, true);
}
