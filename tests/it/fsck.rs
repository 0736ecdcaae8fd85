//! `mkit-bridge fsck`: clean repositories pass (every fixture's import, an
//! export's state, a reference import), and each kind of damage is named by
//! id with the refs that reach it, exit 65, in text and in JSON.

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::object::{
    Blob, ChunkedBlob, Commit, EntryMode, Identity, Object, ObjectType, Tag, blob_id,
};
use mkit_bridge::mkit::refs::{self, RefCondition};
use mkit_bridge::mkit::sign::{KeyPair, sign_tag};
use mkit_bridge::mkit::store::Store;

/// Every fixture `fixtures/git/build.sh --list` builds.
fn fixture_names() -> Vec<String> {
    let out = common::run_ok(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/git/build.sh"))
            .arg("--list"),
    );
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// A fixture upstream and where it is imported (`dst`).
struct Env(common::FixtureImport);

impl std::ops::Deref for Env {
    type Target = common::FixtureImport;

    fn deref(&self) -> &common::FixtureImport {
        &self.0
    }
}

impl Env {
    fn new(fixture: &str) -> Env {
        Env(common::FixtureImport::new(fixture))
    }

    /// Our import into `dst`; returns whether it succeeded.
    fn import(&self) -> Output {
        Command::new(common::bridge_bin())
            .arg("import")
            .arg(&self.src)
            .arg(&self.dst)
            .args(["--quiet", "--key"])
            .arg(&self.key)
            .output()
            .unwrap()
    }

    fn imported(fixture: &str) -> Env {
        let e = Env::new(fixture);
        let out = e.import();
        assert!(out.status.success(), "{}", common::stderr(&out));
        e
    }

    fn store(&self) -> Store {
        Store::at(self.dst.join(".mkit/objects"))
    }

    fn mkit_dir(&self) -> PathBuf {
        self.dst.join(".mkit")
    }

    fn tip(&self, name: &str) -> Id {
        refs::read_ref(&self.mkit_dir(), name).unwrap().unwrap()
    }
}

/// A commit by `T <t@example.com>` at 1_700_001_000, signed by `key`.
fn signed_commit(key: &KeyPair, tree: Id, parents: Vec<Id>, message: &[u8]) -> Commit {
    common::signed_commit(
        key,
        tree,
        parents,
        b"T <t@example.com>",
        message,
        1_700_001_000,
    )
}

/// `fsck [--json]` in `dir`: exit code and stdout.
fn fsck(dir: &Path, json: bool) -> (i32, String) {
    let mut cmd = Command::new(common::bridge_bin());
    cmd.arg("fsck").current_dir(dir).stdin(Stdio::null());
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn fsck_json(dir: &Path) -> (i32, serde_json::Value) {
    let (code, out) = fsck(dir, true);
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
    )
}

/// The report of a clean repository: exit 0, no problems, counts that add up.
fn assert_clean(dir: &Path, what: &str) -> serde_json::Value {
    let (code, v) = fsck_json(dir);
    assert_eq!(code, 0, "{what}: {v:#}");
    assert_eq!(v["ok"], true, "{what}");
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{what}: {v:#}");
    let n = |k: &str| v[k].as_u64().unwrap();
    assert_eq!(n("reachable") + n("unreachable"), n("objects"), "{what}");
    let kinds: u64 = v["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(kinds, n("objects"), "{what}");
    let (code, text) = fsck(dir, false);
    assert_eq!(code, 0, "{what}: {text}");
    assert!(
        text.lines().last().unwrap().starts_with("fsck: ok: "),
        "{what}: {text}"
    );
    v
}

/// Make an object file writable again (the store writes them read-only).
fn writable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

fn flip_byte(path: &Path, at_end: usize) {
    writable(path);
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() - 1 - at_end;
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// The problem of `kind` about `id`, if the report has one.
fn problem<'a>(v: &'a serde_json::Value, kind: &str, id: &str) -> Option<&'a serde_json::Value> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind && p["id"] == id)
}

/// The ref names (under `refs/`) a problem lists as reaching it.
fn reached_refs(p: &serde_json::Value) -> BTreeSet<String> {
    p["reached_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .filter(|r| r.starts_with("refs/"))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn clean_imports_of_every_fixture_pass() {
    let names = fixture_names();
    assert!(names.len() >= 28, "{names:?}");
    let mut checked = 0;
    for name in &names {
        let e = Env::new(name);
        let out = e.import();
        if !e.dst.join(".mkit").is_dir() {
            // sha256 is refused before anything is created.
            assert!(!out.status.success(), "{name}");
            continue;
        }
        let v = assert_clean(&e.dst, name);
        if out.status.success() {
            assert!(v["objects"].as_u64().unwrap() > 0, "{name}");
            assert!(v["raw_files"].as_u64().unwrap() > 0, "{name}");
            assert_eq!(v["states"], serde_json::json!(["upstream"]), "{name}");
            assert_eq!(v["unsigned"].as_array().unwrap().len(), 0, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= names.len() - 1, "{checked} of {}", names.len());
}

/// A force-pushed upstream leaves the rewound history behind: still clean,
/// counted as unreachable.
#[test]
fn a_rewritten_upstream_leaves_unreachable_objects_not_problems() {
    let e = Env::imported("multi-branch");
    let before = assert_clean(&e.dst, "multi-branch");
    assert_eq!(before["unreachable"], 0);
    for step in ["multi-branch.append", "multi-branch.rewrite"] {
        common::build_fixture(step, &e.src);
        common::run_ok(
            Command::new(common::bridge_bin())
                .args(["fetch", "--quiet", "--key"])
                .arg(&e.key)
                .current_dir(&e.dst),
        );
    }
    let after = assert_clean(&e.dst, "multi-branch after rewrite");
    assert!(after["unreachable"].as_u64().unwrap() > 0, "{after:#}");
}

#[test]
fn an_exports_state_passes_and_its_leases_are_roots() {
    let e = Env::imported("multi-branch");
    let mirror = e.work.path().join("mirror.git");
    common::run_ok(
        Command::new(common::bridge_bin())
            .arg("export")
            .arg(&mirror)
            .args(["--no-attest", "--quiet"])
            .current_dir(&e.dst),
    );
    let v = assert_clean(&e.dst, "after export");
    assert_eq!(v["states"], serde_json::json!(["mirror", "upstream"]));
    let roots: Vec<&str> = v["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        roots.contains(&"git/mirror/refs:refs/heads/main"),
        "{roots:?}"
    );
    assert!(v["map_entries"].as_u64().unwrap() > 0);
}

/// Four kinds of damage in one repository, each on its own object and
/// reached by its own refs.
#[test]
fn damage_is_named_by_id_with_the_refs_that_reach_it() {
    let e = Env::imported("multi-branch");
    let store = e.store();
    let up = "refs/remotes/upstream";

    // 1. A flipped byte in a blob only feature/x's tip holds.
    let flipped = blob_id(b"x-1\n");
    flip_byte(&store.path_for(&flipped), 0);

    // 2. A missing blob, held by develop's first commit: reached from
    //    develop, from feature/x (which builds on it) and from tag nightly.
    let missing = blob_id(b"develop-1\n");
    fs::remove_file(store.path_for(&missing)).unwrap();

    // 3. A tree whose entry declared as a tree names a blob, stored through
    //    the store (so its own file hashes right), under a signed commit.
    let key = KeyPair::from_seed(&[7; 32]);
    let main_tip = e.tip("refs/heads/main");
    let bad_tree = store
        .write(&common::tree_of(&[(
            b"sub",
            EntryMode::Tree,
            blob_id(b"main-3\n"),
        )]))
        .unwrap();
    let c = signed_commit(&key, bad_tree, vec![main_tip], b"wrong kind\n");
    let wrong_kind_commit = store.write(&Object::Commit(c)).unwrap();
    refs::write_ref(
        &e.mkit_dir(),
        "refs/heads/wrong-kind",
        &wrong_kind_commit,
        RefCondition::Missing,
    )
    .unwrap();

    // 4. The release branch's tip with one signature byte altered, stored
    //    under its new (correct) id: the file hashes right, the signature fails.
    let release = e.tip(&format!("{up}/release/1.0"));
    let Object::Commit(mut forged) = store.read(&release).unwrap() else {
        panic!("release tip is not a commit");
    };
    forged.signature[10] ^= 0x40;
    let forged = store.write(&Object::Commit(forged)).unwrap();
    assert_ne!(forged, release, "the id covers the signature");
    refs::write_ref(
        &e.mkit_dir(),
        "refs/heads/forged",
        &forged,
        RefCondition::Missing,
    )
    .unwrap();

    let (code, v) = fsck_json(&e.dst);
    assert_eq!(code, 65, "{v:#}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 4, "{v:#}");

    let p = problem(&v, "hash_mismatch", &flipped.to_hex()).expect("flipped blob");
    assert_eq!(p["subject"], "object");
    assert_eq!(reached_refs(p), set(&[&format!("{up}/feature/x")]));
    assert!(
        p["reached_from"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "git/upstream/refs-import:refs/heads/feature/x"
            )),
        "{p:#}"
    );

    let p = problem(&v, "missing", &missing.to_hex()).expect("missing blob");
    assert_eq!(
        reached_refs(p),
        set(&[
            &format!("{up}/develop"),
            &format!("{up}/feature/x"),
            "refs/tags/nightly"
        ])
    );
    assert!(
        p["detail"].as_str().unwrap().contains("named by tree"),
        "{p:#}"
    );

    let p = problem(&v, "wrong_kind", &bad_tree.to_hex()).expect("wrong-kind tree");
    assert_eq!(reached_refs(p), set(&["refs/heads/wrong-kind"]));
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("\"sub\""), "{detail}");
    assert!(detail.contains(&blob_id(b"main-3\n").to_hex()), "{detail}");

    let p = problem(&v, "bad_signature", &forged.to_hex()).expect("forged commit");
    assert_eq!(reached_refs(p), set(&["refs/heads/forged"]));

    // The text form: one line per problem naming the id and its refs, then
    // the summary; the same exit code.
    let (code, text) = fsck(&e.dst, false);
    assert_eq!(code, 65, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // Four problems, the map warning (it still lists the missing blob: a
    // cache, so a warning only), the summary.
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[4].starts_with("warning: state upstream: 1 map entry")
            && lines[4].contains(&missing.to_hex()),
        "{text}"
    );
    for (kind, id, reached) in [
        ("hash_mismatch", flipped, format!("{up}/feature/x")),
        ("missing", missing, format!("{up}/develop")),
        ("wrong_kind", bad_tree, "refs/heads/wrong-kind".to_owned()),
        ("bad_signature", forged, "refs/heads/forged".to_owned()),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{kind} {}: ", id.to_hex())))
            .unwrap_or_else(|| panic!("no {kind} line: {text}"));
        assert!(line.contains(&reached), "{line}");
    }
    assert!(lines[5].starts_with("fsck: 4 problem(s): "), "{text}");
    let w = &v["warnings"][0];
    assert_eq!(w["kind"], "map_absent", "{v:#}");

    // The outcome does not depend on the number of threads.
    let one = Command::new(common::bridge_bin())
        .args(["fsck", "--json", "--jobs", "1"])
        .current_dir(&e.dst)
        .output()
        .unwrap();
    assert_eq!(one.status.code(), Some(65));
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one["problems"], v["problems"]);
    assert_eq!(one["warnings"], v["warnings"]);
}

/// A chunked blob whose chunks do not add up, and a tag that declares its
/// target a tree when it is a commit: both stored correctly, both damage.
#[test]
fn a_short_chunked_blob_and_a_mistyped_tag_are_damage() {
    let e = Env::imported("plain");
    let store = e.store();
    let key = KeyPair::from_seed(&[9; 32]);
    let main = e.tip("refs/heads/main");
    let chunk = store
        .write(&Object::Blob(Blob {
            data: vec![b'x'; 100],
        }))
        .unwrap();
    let chunked = store
        .write(&Object::ChunkedBlob(ChunkedBlob {
            total_size: 150,
            chunk_size: 0,
            chunks: vec![chunk, chunk],
        }))
        .unwrap();
    let tree = store
        .write(&common::tree_of(&[(b"big", EntryMode::Blob, chunked)]))
        .unwrap();
    let c = signed_commit(&key, tree, vec![main], b"chunky\n");
    let commit = store.write(&Object::Commit(c)).unwrap();
    let mkit = e.mkit_dir();
    refs::write_ref(&mkit, "refs/heads/chunky", &commit, RefCondition::Missing).unwrap();
    let mut t = Tag {
        target: main,
        target_type: ObjectType::Tree,
        name: b"liar".to_vec(),
        tagger: Identity::opaque(b"T <t@example.com>".to_vec()),
        message: Vec::new(),
        timestamp: 1_700_001_000,
        signer: [0; 32],
        signature: [0; 64],
    };
    sign_tag(&mut t, &key).unwrap();
    let tag = store.write(&Object::Tag(t)).unwrap();
    refs::write_ref(&mkit, "refs/tags/liar", &tag, RefCondition::Missing).unwrap();

    let (code, v) = fsck_json(&e.dst);
    assert_eq!(code, 65, "{v:#}");
    assert_eq!(v["problems"].as_array().unwrap().len(), 2, "{v:#}");
    let p = problem(&v, "chunk_size", &chunked.to_hex()).expect("chunk size");
    assert_eq!(reached_refs(p), set(&["refs/heads/chunky"]));
    assert!(p["detail"].as_str().unwrap().contains("150"), "{p:#}");
    assert!(p["detail"].as_str().unwrap().contains("200"), "{p:#}");
    let p = problem(&v, "wrong_kind", &tag.to_hex()).expect("mistyped tag");
    assert_eq!(reached_refs(p), set(&["refs/tags/liar"]));
    assert!(
        p["detail"].as_str().unwrap().contains("its target"),
        "{p:#}"
    );
}

#[test]
fn a_damaged_raw_file_is_reported_with_its_twins_refs() {
    let e = Env::imported("multi-branch");
    let state = e.mkit_dir().join("git/upstream");
    let tips = fs::read_to_string(state.join("refs-import")).unwrap();
    let sha1 = tips
        .lines()
        .find(|l| l.starts_with("refs/heads/feature/x "))
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .to_owned();
    let raw = state.join("raw").join(&sha1[..2]).join(&sha1[2..]);
    // The last byte is in the commit message: the frame stays valid.
    flip_byte(&raw, 1);

    let (code, v) = fsck_json(&e.dst);
    assert_eq!(code, 65, "{v:#}");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v:#}");
    let p = &problems[0];
    assert_eq!(p["kind"], "bad_raw");
    assert_eq!(p["subject"], "raw");
    assert_eq!(p["state"], "upstream");
    assert_eq!(p["id"], sha1.as_str());
    assert_eq!(reached_refs(p), set(&["refs/remotes/upstream/feature/x"]));

    // A broken frame is reported too, by what is wrong with it.
    writable(&raw);
    fs::write(&raw, b"commit 999\0short").unwrap();
    let (code, text) = fsck(&e.dst, false);
    assert_eq!(code, 65, "{text}");
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with(&format!("bad_raw git/upstream/raw/{sha1}: ")),
        "{line}"
    );
    assert!(line.contains("length"), "{line}");
}

#[test]
fn a_bad_ref_file_is_damage_and_no_repository_is_66() {
    let e = Env::imported("plain");
    fs::write(e.mkit_dir().join("refs/heads/broken"), "not an id\n").unwrap();
    let (code, v) = fsck_json(&e.dst);
    assert_eq!(code, 65, "{v:#}");
    let p = problem(&v, "bad_ref", "refs/heads/broken").expect("bad ref");
    assert_eq!(p["subject"], "ref");
    fs::remove_file(e.mkit_dir().join("refs/heads/broken")).unwrap();

    // Run outside a repository: 66, as the other commands.
    let (code, _) = fsck(e.work.path(), false);
    assert_eq!(code, 66);
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn a_reference_import_and_commit_pass() {
    let Some(bin) = common::mkit_bin("a_reference_import_and_commit_pass") else {
        return;
    };
    for fixture in [
        "multi-branch",
        "big-blob",
        "tag-of-tree-and-blob",
        "annotated-tag",
    ] {
        let e = Env::new(fixture);
        let home = e.work.path().join("home");
        fs::create_dir_all(&home).unwrap();
        let mkit = |cwd: &Path, args: &[&str]| {
            common::run_ok(
                Command::new(&bin)
                    .args(args)
                    .current_dir(cwd)
                    .env("HOME", &home)
                    .env("XDG_CONFIG_HOME", home.join(".config"))
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .stdin(Stdio::null()),
            )
        };
        mkit(
            e.work.path(),
            &[
                "git",
                "import",
                e.src.to_str().unwrap(),
                e.dst.to_str().unwrap(),
                "--key",
                e.key.to_str().unwrap(),
            ],
        );
        let v = assert_clean(&e.dst, fixture);
        assert!(v["raw_files"].as_u64().unwrap() > 0, "{fixture}");
        if fixture == "big-blob" {
            assert!(v["kinds"]["chunked_blob"].as_u64().unwrap() > 0, "{v:#}");
        }
        if fixture == "multi-branch" {
            // A commit the reference makes on top passes too.
            mkit(&e.dst, &["keygen"]);
            fs::write(e.dst.join("local.txt"), "local\n").unwrap();
            mkit(&e.dst, &["add", "local.txt"]);
            mkit(&e.dst, &["commit", "-m", "local work"]);
            let after = assert_clean(&e.dst, "after a reference commit");
            assert!(
                after["kinds"]["commit"].as_u64() > v["kinds"]["commit"].as_u64(),
                "{after:#}"
            );
        }
    }
}
