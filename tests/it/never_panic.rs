//! Never-panic properties for every parser that reads untrusted bytes.
//!
//! Each parser gets arbitrary bytes and mutations of a valid input
//! (truncation, byte flips, insertions, deletions, and splices of its own
//! bytes elsewhere in it); it may accept or refuse, and must never panic.
//! Where a mutation keeps the input valid, the parser must agree with
//! itself (a decoded value re-encodes to the same bytes). Parsers covered
//! elsewhere too: git objects (`src/git/parse.rs`), the index (mutations in
//! `src/mkit/index.rs`), mkit objects (`differential.rs`, against the
//! reference), attestation envelopes (`attest.rs`).

use std::path::Path;

use mkit_bridge::bridge::export::{export_commit_with, export_tag_with, export_tree_with};
use mkit_bridge::bridge::reconstruct::{
    self, carried_commit, carried_tag, chunk_blobs, decode_base64_unpadded, parse_tree_strict,
};
use mkit_bridge::git::parse::{CommitRef, TagRef, parse_person, parse_tree, split_headers};
use mkit_bridge::git::sha1::{ObjectKind, Sha1, frame, unframe};
use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::index::{self, EntryStatus, Index, IndexEntry, StatCache};
use mkit_bridge::mkit::object::{
    Blob, Commit, EntryMode, Identity, Object, ObjectType, Tag, Tree, TreeEntry,
};
use mkit_bridge::mkit::refs::{decode_head, decode_ref_value};
use mkit_bridge::mkit::sign::{KeyPair, sign_commit, sign_tag};
use mkit_bridge::state::{self, Binding};
use proptest::prelude::*;

// ---- mutations -------------------------------------------------------------

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
    /// Copy a slice of the input (start, length) over another place.
    Splice(prop::sample::Index, prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                // Bytes that matter to the text formats.
                prop::sample::select(vec![
                    b"\n".to_vec(),
                    b" ".to_vec(),
                    b"\0".to_vec(),
                    b"\n\n".to_vec(),
                    b"\r\n".to_vec(),
                    b"0".to_vec(),
                    b"9999999999999999999999".to_vec(),
                    b"-".to_vec(),
                    b"<".to_vec(),
                    b">".to_vec(),
                    b"=".to_vec(),
                    vec![0xff],
                ]),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            1usize..64
        )
            .prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn apply(input: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut b = input.to_vec();
    for m in edits {
        // Positions range over len + 1 places (the end included).
        let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
        match m {
            Mutation::Truncate(i) => {
                let n = at(i, b.len());
                b.truncate(n);
            }
            Mutation::Flip(i, x) if !b.is_empty() => {
                let n = i.index(b.len());
                b[n] ^= x;
            }
            Mutation::Flip(..) => {}
            Mutation::Insert(i, bytes) => {
                let n = at(i, b.len());
                b.splice(n..n, bytes.iter().copied());
            }
            Mutation::Delete(i, len) => {
                let n = at(i, b.len());
                let end = (n + len).min(b.len());
                b.drain(n..end);
            }
            Mutation::Splice(from, to, len) if !b.is_empty() => {
                let s = from.index(b.len());
                let piece = b[s..(s + len).min(b.len())].to_vec();
                let d = at(to, b.len());
                let end = (d + piece.len()).min(b.len());
                b.splice(d..end, piece);
            }
            Mutation::Splice(..) => {}
        }
    }
    b
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600)
}

// ---- valid inputs ----------------------------------------------------------

const T: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const P: &str = "0123456789abcdef0123456789abcdef01234567";

fn git_commit() -> Vec<u8> {
    format!(
        "tree {T}\nparent {P}\nparent {P}\nauthor A U Thor <a@x.org> 1700000000 +0100\n\
         committer C <c@x.org> 1700000001 -0130\nencoding ISO-8859-1\nmergetag object {P}\n \
         type commit\n tag v1\n\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc=\n \
         -----END PGP SIGNATURE-----\n\nsubject line\n\nbody\n"
    )
    .into_bytes()
}

fn git_tag() -> Vec<u8> {
    format!(
        "object {P}\ntype commit\ntag v1.2.3\ntagger T <t@x> 1700000000 +0000\n\nrelease\n\
         -----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n"
    )
    .into_bytes()
}

fn git_tree() -> Vec<u8> {
    let mut b = Vec::new();
    for (mode, name, fill) in [
        (&b"100644"[..], &b"README"[..], 1u8),
        (b"100755", b"run.sh", 2),
        (b"120000", b"link", 3),
        (b"40000", b"src", 4),
        (b"160000", b"sub", 5),
    ] {
        b.extend_from_slice(mode);
        b.push(b' ');
        b.extend_from_slice(name);
        b.push(0);
        b.extend_from_slice(&[fill; 20]);
    }
    b
}

fn key() -> KeyPair {
    KeyPair::from_seed(&[0x42; 32])
}

fn mkit_tree() -> Tree {
    Tree {
        entries: vec![
            TreeEntry {
                name: b"a.txt".to_vec(),
                mode: EntryMode::Blob,
                id: Id([1; 32]),
            },
            TreeEntry {
                name: b"bin".to_vec(),
                mode: EntryMode::Executable,
                id: Id([2; 32]),
            },
            TreeEntry {
                name: b"dir".to_vec(),
                mode: EntryMode::Tree,
                id: Id([3; 32]),
            },
            TreeEntry {
                name: b"ln".to_vec(),
                mode: EntryMode::Symlink,
                id: Id([4; 32]),
            },
        ],
    }
}

fn mkit_commit() -> Commit {
    let mut c = Commit {
        tree: mkit_tree().merkle_id(),
        parents: vec![Id([7; 32]), Id([8; 32])],
        author: Identity::opaque(b"A U Thor <a@x.org>".to_vec()),
        message: b"subject\n\nbody line\n".to_vec(),
        timestamp: 1_700_000_000,
        signer: [0; 32],
        message_hash: Id([0; 32]),
        content_digest: Id::ZERO,
        signature: [0; 64],
    };
    sign_commit(&mut c, &key()).unwrap();
    c
}

fn mkit_tag() -> Tag {
    let mut t = Tag {
        target: Id([7; 32]),
        target_type: ObjectType::Commit,
        name: b"v1.0".to_vec(),
        tagger: Identity::ed25519(key().public()),
        message: b"release\n".to_vec(),
        timestamp: 1_700_000_000,
        signer: [0; 32],
        signature: [0; 64],
    };
    sign_tag(&mut t, &key()).unwrap();
    t
}

const TREE_SHA: Sha1 = Sha1([0x11; 20]);
const PARENTS: [Sha1; 2] = [Sha1([0x22; 20]), Sha1([0x33; 20])];

/// A bridge-exported commit, tag and tree: the inputs reconstruction reads.
fn carried() -> Vec<(ObjectKind, Vec<u8>)> {
    let commit = export_commit_with(&Id([0xc0; 32]), &mkit_commit(), &TREE_SHA, &PARENTS)
        .unwrap()
        .object
        .body;
    let tag = export_tag_with(&Id([0xc1; 32]), &mkit_tag(), &PARENTS[0])
        .unwrap()
        .object
        .body;
    let children: Vec<Sha1> = (1..=4u8).map(|i| Sha1([i; 20])).collect();
    let tree = export_tree_with(&mkit_tree().merkle_id(), &mkit_tree(), &children)
        .unwrap()
        .object
        .body;
    vec![
        (ObjectKind::Commit, commit),
        (ObjectKind::Tag, tag),
        (ObjectKind::Tree, tree),
        (ObjectKind::Blob, b"blob bytes\n".to_vec()),
    ]
}

/// Every git id the carried objects name resolves, to the mkit id they
/// carry (any other id to some id, so that mutated links get checked).
fn lookup(sha: &Sha1) -> Option<Id> {
    Some(match *sha {
        TREE_SHA => mkit_tree().merkle_id(),
        s if s == PARENTS[0] => Id([7; 32]),
        s if s == PARENTS[1] => Id([8; 32]),
        s => Id([s.0[0]; 32]),
    })
}

fn mkit_objects() -> Vec<Vec<u8>> {
    vec![
        Object::Blob(Blob {
            data: b"hello\n".to_vec(),
        }),
        Object::Tree(mkit_tree()),
        Object::Commit(mkit_commit()),
        Object::Tag(mkit_tag()),
    ]
    .into_iter()
    .map(|o| o.encode().unwrap())
    .collect()
}

fn valid_index() -> Vec<u8> {
    let entry = |path: &str, status, fill| IndexEntry {
        path: path.to_owned(),
        status,
        id: if status == EntryStatus::Removed {
            Id::ZERO
        } else {
            Id([fill; 32])
        },
        stat: StatCache {
            mtime_ns: 1_700_000_000_000_000_000,
            size: 12,
            ino: 99,
            ctime_ns: 5,
        },
    };
    Index {
        entries: vec![
            entry("README", EntryStatus::from_byte(0).unwrap(), 1),
            entry("src/main.rs", EntryStatus::from_byte(1).unwrap(), 2),
            entry("gone", EntryStatus::Removed, 0),
        ],
    }
    .encode()
    .unwrap()
}

// ---- the parsers -----------------------------------------------------------

fn git_parsers(body: &[u8]) {
    let _ = CommitRef::parse(body);
    let _ = TagRef::parse(body);
    let _ = parse_tree(body);
    let _ = parse_person(body);
    let _ = split_headers(body);
    let _ = unframe(body);
}

fn reconstruction(body: &[u8]) {
    for kind in [
        ObjectKind::Commit,
        ObjectKind::Tag,
        ObjectKind::Tree,
        ObjectKind::Blob,
    ] {
        if let Ok(r) = reconstruct::reconstruct(kind, body, lookup) {
            // Whatever is accepted is a well-formed mkit object.
            assert_eq!(Object::decode(&r.bytes).unwrap(), r.object);
        }
    }
    let _ = carried_commit(body);
    let _ = carried_tag(body);
    let _ = parse_tree_strict(body);
    let _ = chunk_blobs(body);
    let _ = decode_base64_unpadded(body);
}

fn mkit_decoders(bytes: &[u8]) {
    if let Ok(obj) = Object::decode(bytes) {
        // Strict decoding: what decodes re-encodes to the same bytes.
        assert_eq!(obj.encode().unwrap(), bytes);
    }
    let _ = mkit_bridge::mkit::decode::decode_prologue(bytes);
    if let Ok(idx) = index::decode(bytes) {
        assert_eq!(idx.encode().unwrap(), bytes);
    }
    let _ = decode_ref_value(bytes);
    let _ = decode_head(bytes);
}

fn raw_frame(bytes: &[u8]) {
    let id = Sha1([0xab; 20]);
    let checked = state::raw::check_frame(&id, bytes).is_ok();
    // The frame check and the framing agree on what a frame is.
    if checked {
        let (kind, body) = unframe(bytes).expect("a checked frame unframes");
        assert_eq!(frame(kind, body), bytes);
    }
}

/// Write `bytes` as every state file and read each back through its loader.
fn state_files(dir: &Path, bytes: &[u8]) {
    for name in [
        "map",
        "refs",
        "refs-import",
        "direction",
        "source",
        "dest",
        "signer",
        "import-spec",
        "normalized",
        "importing",
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let _ = state::load_map(dir);
    let _ = state::load_map_inverse(dir);
    let _ = state::load_map_inverse_checked(dir);
    let _ = state::map_is_intact(dir);
    let _ = state::load_ref_state(dir);
    let _ = state::load_import_ref_state(dir);
    let _ = state::read_direction(dir);
    let _ = state::read_binding(dir, Binding::Source);
    let _ = state::read_binding(dir, Binding::Dest);
    let _ = state::read_signer(dir);
    let _ = state::read_import_spec(dir);
    let _ = state::read_normalized(dir);
    let _ = state::importing_is_set(dir);
}

fn valid_state() -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..3u8 {
        b.extend_from_slice(
            format!("{} {}\n", Id([i; 32]).to_hex(), Sha1([i; 20]).to_hex()).as_bytes(),
        );
    }
    b.extend_from_slice(
        format!(
            "refs/heads/main {} {}\nrefs/tags/v1 {} {}\nimport\n1\n{}\n",
            Id([5; 32]).to_hex(),
            Sha1([6; 20]).to_hex(),
            Id([7; 32]).to_hex(),
            Sha1([8; 20]).to_hex(),
            Id([9; 32]).to_hex(),
        )
        .as_bytes(),
    );
    b
}

/// `cases` per property, or `PROPTEST_CASES` when set (for a long hunt).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn git_object_parsers(raw in bytes(), which in 0usize..3, edits in mutations()) {
        git_parsers(&raw);
        let valid = [git_commit(), git_tag(), git_tree()];
        git_parsers(&apply(&valid[which], &edits));
    }

    #[test]
    fn reconstruction_headers_and_strict_trees(raw in bytes(), which in 0usize..4, edits in mutations()) {
        reconstruction(&raw);
        let valid = carried();
        reconstruction(&apply(&valid[which].1, &edits));
    }

    #[test]
    fn mkit_objects_index_and_refs(raw in bytes(), which in 0usize..5, edits in mutations()) {
        mkit_decoders(&raw);
        let mut valid = mkit_objects();
        valid.push(valid_index());
        mkit_decoders(&apply(&valid[which], &edits));
    }

    #[test]
    fn raw_frames(raw in bytes(), which in 0usize..3, edits in mutations()) {
        raw_frame(&raw);
        let valid = [
            frame(ObjectKind::Commit, &git_commit()),
            frame(ObjectKind::Tag, &git_tag()),
            frame(ObjectKind::Tree, &git_tree()),
        ];
        raw_frame(&apply(&valid[which], &edits));
    }
}

proptest! {
    // Each case writes ten files; fewer cases.
    #![proptest_config(config(128))]

    #[test]
    fn state_files_of_any_content(raw in bytes(), edits in mutations()) {
        let dir = tempfile::tempdir().unwrap();
        state_files(dir.path(), &raw);
        state_files(dir.path(), &apply(&valid_state(), &edits));
    }
}

#[test]
fn the_valid_inputs_are_valid() {
    // Mutations start from inputs each parser accepts.
    CommitRef::parse(&git_commit()).unwrap();
    TagRef::parse(&git_tag()).unwrap();
    assert_eq!(parse_tree(&git_tree()).unwrap().len(), 5);
    for (kind, body) in carried() {
        reconstruct::reconstruct(kind, &body, lookup).unwrap();
    }
    for bytes in mkit_objects() {
        Object::decode(&bytes).unwrap();
    }
    assert_eq!(index::decode(&valid_index()).unwrap().entries.len(), 3);
    state::raw::check_frame(&Sha1([0; 20]), &frame(ObjectKind::Tag, &git_tag())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("map"), valid_state()).unwrap();
    assert_eq!(state::load_map(dir.path()).unwrap().len(), 3);
}
