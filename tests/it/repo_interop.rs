//! Repositories we write open in the reference `mkit` CLI.
//!
//! The library writes a small repository (blobs, a chunked blob, nested trees
//! with exec and symlink modes, two signed commits, an annotated and a signed
//! tag, branch refs, HEAD); `mkit log`, `mkit cat-file -p` on every object and
//! `mkit verify` on the commits and signed tag must all succeed. A second test
//! commits the same directory with our `snapshot` command and with
//! `mkit add` and `mkit commit`, and compares the tree ids. Without `mkit` these print why
//! they skipped (and fail under `MKIT_BRIDGE_STRICT=1`).

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::content;
use mkit_bridge::mkit::object::{
    Commit, EntryMode, Identity, Object, ObjectType, Tag, Tree, TreeEntry,
};
use mkit_bridge::mkit::refs::{self, Head, RefCondition};
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::{self, KeyPair};

fn mkit(bin: &Path, repo: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&common::run_ok(
        Command::new(bin).args(args).current_dir(repo),
    ))
    .into_owned()
}

fn entry(name: &str, mode: EntryMode, id: Id) -> TreeEntry {
    TreeEntry {
        name: name.as_bytes().to_vec(),
        mode,
        id,
    }
}

fn tree(mut entries: Vec<TreeEntry>) -> Object {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Object::Tree(Tree { entries })
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn library_written_repository_opens_in_mkit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path()).unwrap();
    let key = KeyPair::from_seed(&[0x42; 32]);
    let mut all: Vec<Id> = Vec::new();

    let batch = repo.store().batch();
    let readme = content::stage_content(&batch, b"# demo\n").unwrap();
    let script = content::stage_content(&batch, b"#!/bin/sh\necho demo\n").unwrap();
    let link = batch.add_blob(b"README.md").unwrap();
    let big: Vec<u8> = (0..400_000u32).flat_map(u32::to_le_bytes).collect();
    let big_id = content::stage_content(&batch, &big).unwrap();
    let manifest = content::manifest_for(&big);
    assert!(manifest.chunks.len() > 1);
    all.extend([readme, script, link, big_id]);
    all.extend(manifest.chunks.iter().copied());

    let inner = tree(vec![
        entry("big.bin", EntryMode::Blob, big_id),
        entry("foo", EntryMode::Blob, readme),
        entry("foo.txt", EntryMode::Blob, script),
    ]);
    let inner_id = batch.add(&inner).unwrap();
    let bin = tree(vec![entry("run.sh", EntryMode::Executable, script)]);
    let bin_id = batch.add(&bin).unwrap();
    let root1 = tree(vec![
        entry("README.md", EntryMode::Blob, readme),
        entry("bin", EntryMode::Tree, bin_id),
        entry("link", EntryMode::Symlink, link),
    ]);
    let root1_id = batch.add(&root1).unwrap();
    let root2 = tree(vec![
        entry("README.md", EntryMode::Blob, readme),
        entry("bin", EntryMode::Tree, bin_id),
        entry("data", EntryMode::Tree, inner_id),
        entry("link", EntryMode::Symlink, link),
    ]);
    let root2_id = batch.add(&root2).unwrap();
    all.extend([inner_id, bin_id, root1_id, root2_id]);

    let mut c1 = Commit {
        tree: root1_id,
        parents: vec![],
        author: Identity::opaque(b"A U Thor <author@example.com>".to_vec()),
        message: b"first commit\n".to_vec(),
        timestamp: 1_700_000_000,
        signer: [0; 32],
        message_hash: Id::ZERO,
        content_digest: Id::ZERO,
        signature: [0; 64],
    };
    sign::sign_commit(&mut c1, &key).unwrap();
    let c1_id = batch.add(&Object::Commit(c1.clone())).unwrap();
    let mut c2 = Commit {
        tree: root2_id,
        parents: vec![c1_id],
        author: Identity::ed25519(key.public()),
        message: b"second commit adds data/\n".to_vec(),
        timestamp: 1_700_000_100,
        ..c1
    };
    sign::sign_commit(&mut c2, &key).unwrap();
    let c2_id = batch.add(&Object::Commit(c2)).unwrap();

    let annotated = Tag {
        target: c1_id,
        target_type: ObjectType::Commit,
        name: b"v0.1".to_vec(),
        tagger: Identity::opaque(b"Tagger <t@example.com>".to_vec()),
        message: b"annotated, unsigned\n".to_vec(),
        timestamp: 1_700_000_050,
        signer: key.public(),
        signature: [0; 64],
    };
    let annotated_id = batch.add(&Object::Tag(annotated)).unwrap();
    let mut signed = Tag {
        target: c2_id,
        name: b"v0.2".to_vec(),
        message: b"signed release\n".to_vec(),
        timestamp: 1_700_000_200,
        tagger: Identity::ed25519(key.public()),
        target_type: ObjectType::Commit,
        signer: [0; 32],
        signature: [0; 64],
    };
    sign::sign_tag(&mut signed, &key).unwrap();
    let signed_id = batch.add(&Object::Tag(signed)).unwrap();
    all.extend([c1_id, c2_id, annotated_id, signed_id]);
    batch.commit().unwrap();

    let m = repo.mkit_dir();
    refs::write_ref(m, "refs/heads/main", &c2_id, RefCondition::Missing).unwrap();
    refs::write_ref(m, "refs/heads/old", &c1_id, RefCondition::Missing).unwrap();
    refs::write_ref(m, "refs/tags/v0.1", &annotated_id, RefCondition::Missing).unwrap();
    refs::write_ref(m, "refs/tags/v0.2", &signed_id, RefCondition::Missing).unwrap();
    refs::write_head(m, &Head::Symbolic("refs/heads/main".into())).unwrap();

    // Our own reads verify every object.
    for id in &all {
        repo.store().read(id).unwrap();
    }

    let Some(bin) = common::mkit_bin("library_written_repository_opens_in_mkit") else {
        return;
    };
    let root = dir.path();
    let log = mkit(&bin, root, &["log"]);
    let first = log.find("first commit").expect("first commit in log");
    let second = log.find("second commit").expect("second commit in log");
    assert!(second < first, "log is newest first:\n{log}");
    assert!(log.contains(&c2_id.to_hex()), "{log}");
    for id in &all {
        mkit(&bin, root, &["cat-file", "-p", &id.to_hex()]);
    }
    // mkit presents a chunked blob as file content: type blob, full size.
    let kind = mkit(&bin, root, &["cat-file", "-t", &big_id.to_hex()]);
    assert_eq!(kind.trim(), "blob");
    let size = mkit(&bin, root, &["cat-file", "-s", &big_id.to_hex()]);
    assert_eq!(size.trim(), big.len().to_string());
    let listing = mkit(&bin, root, &["ls-tree", "-r", "HEAD"]);
    assert!(listing.contains("100755 blob"), "{listing}");
    assert!(listing.contains("120000 blob"), "{listing}");
    assert!(listing.contains("data/foo.txt"), "{listing}");
    // The chunked file reads back whole.
    let big_out = common::run_ok(
        Command::new(&bin)
            .args(["cat", &big_id.to_hex()])
            .current_dir(root),
    );
    assert!(
        big_out == big,
        "mkit cat of the chunked blob returned {} bytes",
        big_out.len()
    );
    for rev in ["HEAD", "old", &c1_id.to_hex(), "v0.2"] {
        let out = mkit(&bin, root, &["verify", rev]);
        assert!(out.contains("valid"), "verify {rev}: {out}");
    }
    // The unsigned annotated tag must not verify.
    let out = Command::new(&bin)
        .args(["verify", &annotated_id.to_hex()])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unsigned tag verified");
    let refs_out = mkit(&bin, root, &["show-ref"]);
    for r in [
        "refs/heads/main",
        "refs/heads/old",
        "refs/tags/v0.1",
        "refs/tags/v0.2",
    ] {
        assert!(refs_out.contains(r), "{refs_out}");
    }
}

fn write_example(dir: &Path) {
    fs::create_dir_all(dir.join("src/deep/er")).unwrap();
    fs::write(dir.join("README.md"), "example\n").unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(dir.join("src/deep/er/foo"), "a\n").unwrap();
    fs::write(dir.join("src/deep/er/foo.txt"), "b\n").unwrap();
    let big: Vec<u8> = (0..300_001u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    fs::write(dir.join("src/big.bin"), big).unwrap();
    fs::write(dir.join("exact.bin"), vec![9u8; 1024 * 1024]).unwrap();
    let script = dir.join("run.sh");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/main.rs", dir.join("main-link")).unwrap();
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn snapshot_tree_id_equals_mkit_commit_tree_id() {
    let Some(bin) = common::mkit_bin("snapshot_tree_id_equals_mkit_commit_tree_id") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let theirs = work.path().join("theirs");
    write_example(&theirs);
    let ours_src = work.path().join("ours-src");
    write_example(&ours_src);
    let ours = work.path().join("ours");
    fs::create_dir(&ours).unwrap();

    mkit(&bin, &theirs, &["init"]);
    mkit(&bin, &theirs, &["keygen"]);
    mkit(&bin, &theirs, &["add", "."]);
    mkit(&bin, &theirs, &["commit", "-m", "x"]);
    let their_tree = mkit(&bin, &theirs, &["cat-file", "-p", "HEAD"]);

    common::run_ok(Command::new(common::bridge_bin()).arg("init").arg(&ours));
    let commit = common::run_ok(
        Command::new(common::bridge_bin())
            .args(["snapshot", "-m", "x", "--repo"])
            .arg(&ours)
            .arg(&ours_src),
    );
    let commit = String::from_utf8(commit).unwrap();
    let our_tree = mkit(&bin, &ours, &["cat-file", "-p", commit.trim()]);
    let first = |s: &str| s.lines().next().unwrap_or_default().to_owned();
    assert!(first(&their_tree).starts_with("tree "), "{their_tree}");
    assert_eq!(first(&our_tree), first(&their_tree));
    let out = mkit(&bin, &ours, &["verify", "HEAD"]);
    assert!(out.contains("valid"), "{out}");
}
