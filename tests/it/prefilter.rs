//! Refusals decided before anything is written (issue #12): a refused ref's
//! private objects never reach the store, the imported refs are whole, and
//! malformed graphs refuse with the reasons a full translation gave.
//!
//! Upstreams are written object by object with `git hash-object
//! --literally`, so trees and commits can say things git itself would not
//! write (a file entry naming a tree, a commit whose parent is a tree).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A bare repository written object by object.
struct Raw {
    dir: PathBuf,
}

impl Raw {
    fn new(dir: PathBuf) -> Raw {
        std::fs::create_dir_all(&dir).unwrap();
        let raw = Raw { dir };
        raw.git(&["init", "-q", "--bare", "-b", "main"]);
        raw
    }

    fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.dir);
        String::from_utf8(common::run_ok(&mut cmd))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Write an object of `kind` holding `body`, exactly; its sha1 (hex).
    fn put(&self, kind: &str, body: &[u8]) -> String {
        let file = self.dir.join("object.tmp");
        std::fs::write(&file, body).unwrap();
        let path = file.to_str().unwrap();
        self.git(&["hash-object", "-t", kind, "--literally", "-w", path])
    }

    fn blob(&self, data: &str) -> String {
        self.put("blob", data.as_bytes())
    }

    /// A tree of `(mode, name, sha1)` entries, in the order given.
    fn tree(&self, entries: &[(&str, &str, &str)]) -> String {
        let mut body = Vec::new();
        for (mode, name, id) in entries {
            body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            body.extend_from_slice(&hex::decode(id).unwrap());
        }
        self.put("tree", &body)
    }

    fn commit(&self, tree: &str, parents: &[&str], time: i64, msg: &str) -> String {
        let mut body = format!("tree {tree}\n");
        for p in parents {
            body.push_str(&format!("parent {p}\n"));
        }
        body.push_str(&format!(
            "author A <a@example.com> {time} +0000\ncommitter A <a@example.com> {time} +0000\n\n{msg}\n"
        ));
        self.put("commit", body.as_bytes())
    }

    fn tag(&self, target: &str, kind: &str, name: &str) -> String {
        let body = format!(
            "object {target}\ntype {kind}\ntag {name}\ntagger T <t@example.com> 1400000000 +0000\n\n{name}\n"
        );
        self.put("tag", body.as_bytes())
    }

    /// Point `name` at `target`, written as a loose ref file (git refuses
    /// refs to objects it cannot parse).
    fn set(&self, name: &str, target: &str) {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("{target}\n")).unwrap();
    }
}

/// The history both tests start from: `main` (two commits) and two tags
/// that import, and `bad`, two commits whose trees hold a submodule and a
/// directory (`private/`) no other ref has.
struct Base {
    raw: Raw,
    c1: String,
    c2: String,
    c3: String,
    t_src: String,
    b_x: String,
    readme: String,
    /// Objects only `bad` holds.
    private: Vec<String>,
}

fn base(dir: PathBuf) -> Base {
    let raw = Raw::new(dir);
    let readme = raw.blob("readme\n");
    let b_x = raw.blob("x\n");
    let t1 = raw.tree(&[("100644", "README", &readme)]);
    let c1 = raw.commit(&t1, &[], 1_000_000_000, "one");
    let t_src = raw.tree(&[("100644", "x.c", &b_x)]);
    let t2 = raw.tree(&[("100644", "README", &readme), ("40000", "src", &t_src)]);
    let c2 = raw.commit(&t2, &[&c1], 1_000_000_100, "two");
    raw.set("refs/heads/main", &c2);
    raw.set("refs/tags/v1", &c1);
    let v2 = raw.tag(&c2, "commit", "v2");
    raw.set("refs/tags/v2", &v2);

    let secret = raw.blob("secret\n");
    let private = raw.tree(&[("100644", "only.txt", &secret)]);
    let bad_tree = |private: &str| {
        raw.tree(&[
            ("100644", "README", &readme),
            ("40000", "private", private),
            ("40000", "src", &t_src),
            ("160000", "sub", &c1),
        ])
    };
    let t3 = bad_tree(&private);
    let c3 = raw.commit(&t3, &[&c2], 1_000_000_200, "bad");
    let later = raw.blob("later\n");
    let private2 = raw.tree(&[("100644", "only.txt", &later)]);
    let t4 = bad_tree(&private2);
    let c4 = raw.commit(&t4, &[&c3], 1_000_000_300, "worse");
    raw.set("refs/heads/bad", &c4);
    Base {
        private: vec![secret, private, t3, c3.clone(), later, private2, t4, c4],
        raw,
        c1,
        c2,
        c3,
        t_src,
        b_x,
        readme,
    }
}

fn import(upstream: &Path, dst: &Path, key: &Path) -> Value {
    let out = Command::new(common::bridge_bin())
        .args(["import", "--json", "--key"])
        .arg(key)
        .arg(upstream)
        .arg(dst)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// Object files of the store (`<2 hex>/<62 hex>`).
fn objects(repo: &Path) -> BTreeSet<String> {
    common::files_under(&repo.join(".mkit/objects"))
        .into_keys()
        .filter(|k| !k.contains("/."))
        .collect()
}

/// `ref -> "<refusal>: <reason>"` of the skipped refs, `ref -> id` of the
/// imported ones.
fn outcome(doc: &Value) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let skipped = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let what = format!(
                "{}: {}",
                s["refusal"].as_str().unwrap(),
                s["reason"].as_str().unwrap()
            );
            (s["ref"].as_str().unwrap().to_owned(), what)
        })
        .collect();
    let imported = doc["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["ref"].as_str().unwrap().to_owned();
            (name, i["mkit"].as_str().unwrap().to_owned())
        })
        .collect();
    (skipped, imported)
}

#[test]
fn a_refused_refs_private_objects_are_never_written() {
    let work = tempfile::tempdir().unwrap();
    let key = common::import_key(work.path(), 0x42);
    let b = base(work.path().join("up.git"));
    let full = work.path().join("full");
    let doc = import(&b.raw.dir, &full, &key);
    let (skipped, imported) = outcome(&doc);
    assert_eq!(
        skipped.keys().collect::<Vec<_>>(),
        ["refs/heads/bad"],
        "{doc}"
    );
    assert!(skipped["refs/heads/bad"].starts_with("Gitlink: "), "{doc}");
    let names: Vec<&String> = imported.keys().collect();
    assert_eq!(names, ["refs/heads/main", "refs/tags/v1", "refs/tags/v2"]);

    // The same upstream without `bad`: the store must be the same, object
    // for object.
    std::fs::remove_file(b.raw.dir.join("refs/heads/bad")).unwrap();
    let clean = work.path().join("clean");
    let clean_doc = import(&b.raw.dir, &clean, &key);
    assert_eq!(outcome(&clean_doc).1, imported, "same ids without bad");
    b.raw.set("refs/heads/bad", &b.private[7]);
    let stored = objects(&full);
    assert!(!stored.is_empty());
    assert_eq!(
        stored,
        objects(&clean),
        "objects only bad needs were written"
    );
    assert_eq!(doc["written"], clean_doc["written"]);
    assert_eq!(doc["translated"], clean_doc["translated"]);

    // The private blobs' mkit ids are absent by name too.
    for data in [&b"secret\n"[..], b"later\n"] {
        let id = mkit_bridge::mkit::object::blob_id(data).to_hex();
        assert!(
            !stored.contains(&format!("{}/{}", &id[..2], &id[2..])),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    // Neither the map nor the retained raw bytes know them.
    let state = full.join(".mkit/git/upstream");
    let map = std::fs::read_to_string(state.join("map")).unwrap();
    for sha in &b.private {
        assert!(!map.contains(sha.as_str()), "{sha} in the map");
        let raw = state.join("raw").join(&sha[..2]).join(&sha[2..]);
        assert!(!raw.exists(), "{sha} retained");
    }
    assert!(map.contains(&b.c2) && map.contains(&b.t_src) && map.contains(&b.b_x));
    // What was imported is whole: every link from every ref resolves.
    fsck_ok(&full);

    // A fetch with nothing new translates nothing (the refused history is
    // walked again, and refused again).
    let again = fetch(&full, &key);
    assert_eq!(again["translated"], 0, "{again}");
    assert_eq!(outcome(&again).0, skipped);
    // `bad` repaired upstream: the objects it shares with the refused
    // history (`private/` and its blob) are written now.
    let fixed = b.raw.tree(&[
        ("100644", "README", &b.readme),
        ("40000", "private", &b.private[1]),
        ("40000", "src", &b.t_src),
    ]);
    let c5 = b.raw.commit(&fixed, &[&b.c2], 1_000_000_400, "fixed");
    b.raw.set("refs/heads/bad", &c5);
    let after = fetch(&full, &key);
    let (skipped, imported) = outcome(&after);
    assert!(skipped.is_empty(), "{after}");
    assert!(imported.contains_key("refs/heads/bad"), "{after}");
    assert_eq!(
        after["translated"], 4,
        "blob, private/, root tree, commit: {after}"
    );
    let secret = mkit_bridge::mkit::object::blob_id(b"secret\n").to_hex();
    assert!(objects(&full).contains(&format!("{}/{}", &secret[..2], &secret[2..])));
    fsck_ok(&full);
}

fn fetch(repo: &Path, key: &Path) -> Value {
    let out = Command::new(common::bridge_bin())
        .current_dir(repo)
        .args(["fetch", "--json", "--key"])
        .arg(key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// `mkit-bridge fsck` passes: every object re-hashes, every link resolves.
fn fsck_ok(repo: &Path) {
    let fsck = Command::new(common::bridge_bin())
        .current_dir(repo)
        .arg("fsck")
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// Refs over graphs git would not write, each refused (or not) for one
/// reason; returns the upstream.
fn oddities(dir: PathBuf) -> Raw {
    let b = base(dir);
    let raw = &b.raw;
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let missing2 = "89abcdef0123456789abcdef0123456789abcdef";
    let t1 = raw.tree(&[("100644", "README", &b.b_x)]);
    let on_main = |name: &str, tree: &str| {
        let c = raw.commit(tree, &[&b.c2], 1_100_000_000, name);
        raw.set(&format!("refs/heads/{name}"), &c);
    };
    // A tree of height 2, reached first as a directory.
    let deep = raw.tree(&[("40000", "d", &b.t_src)]);
    on_main("a-deep", &deep);
    // A file entry naming that tree: the translation settled trees of
    // height 1 before those of height 2, so it found no such child.
    on_main(
        "b-file-names-taller-tree",
        &raw.tree(&[("100644", "z", &deep)]),
    );
    // A file entry naming a lower tree: found, and of the wrong kind.
    on_main(
        "c-file-names-lower-tree",
        &raw.tree(&[("40000", "a", &b.t_src), ("100644", "b", &b.t_src)]),
    );
    // A directory entry naming a commit: commits come after trees.
    on_main("d-dir-names-commit", &raw.tree(&[("40000", "c", &b.c1)]));
    // A commit whose tree is a blob, one whose parent is a tree (0.5.0
    // checks neither).
    on_main("e-tree-is-blob", &b.b_x);
    let c = raw.commit(&t1, &[&b.t_src], 1_100_000_000, "f");
    raw.set("refs/heads/f-parent-is-tree", &c);
    // A tag of an unparsable tag.
    let garbage = raw.put("tag", b"not a tag\n");
    raw.set("refs/tags/g-of-garbage", &raw.tag(&garbage, "tag", "g"));
    raw.set("refs/tags/g-garbage", &garbage);
    // A tag of a missing object.
    raw.set("refs/tags/h-missing", &raw.tag(missing, "commit", "h"));
    // A pre-1970 commit and its child.
    let neg = raw.commit(&t1, &[&b.c1], -5, "negative");
    let child = raw.commit(&t1, &[&neg], 1_100_000_000, "child");
    raw.set("refs/heads/i-negative-parent", &child);
    // Two entries of one name once re-sorted.
    on_main(
        "j-duplicate",
        &raw.tree(&[("100644", "a", &b.b_x), ("40000", "a", &b.t_src)]),
    );
    // A merge of two refused parents: the first reports.
    let merge = raw.commit(&t1, &[&neg, &b.c3], 1_100_000_000, "merge");
    raw.set("refs/heads/k-merge", &merge);
    // Entry order decides: a missing file before a submodule, and after.
    on_main(
        "l-missing-then-gitlink",
        &raw.tree(&[("100644", "a", missing), ("160000", "b", &b.c1)]),
    );
    on_main(
        "m-gitlink-then-missing",
        &raw.tree(&[("160000", "a", &b.c1), ("100644", "b", missing2)]),
    );
    // A tag declaring the wrong type.
    raw.set("refs/tags/o-wrong-type", &raw.tag(&b.c1, "tree", "o"));
    b.raw
}

/// What the driver that translated every walked object (before the
/// pre-pass) reported for [`oddities`]: each skipped ref's refusal and the
/// object its reason names, and each imported ref's id (key 0x42).
const ODDITIES_SKIPPED: &[(&str, &str)] = &[
    (
        "refs/heads/b-file-names-taller-tree",
        "MissingObject e7b820a5d0641dda061ebc052630a67bb0c1b33e",
    ),
    (
        "refs/heads/bad",
        "Gitlink 6def89091e92b9b58812b5b7fcb374b2a606524f",
    ),
    (
        "refs/heads/c-file-names-lower-tree",
        "TreeEntryKind c75f3ce5b5f6c1548c30957f7bb6bf47b8c457a4",
    ),
    (
        "refs/heads/d-dir-names-commit",
        "MissingObject 45933f573fb1aacc67c7e52d87bb2ebfe2e2c871",
    ),
    (
        "refs/heads/i-negative-parent",
        "NegativeTimestamp bc869252a44a4d58d13f77fad1b1753e5d4c1005",
    ),
    (
        "refs/heads/j-duplicate",
        "DuplicateTreeEntry 0e825f52da0012fbfdefd318d1978238b5697486",
    ),
    (
        "refs/heads/k-merge",
        "NegativeTimestamp bc869252a44a4d58d13f77fad1b1753e5d4c1005",
    ),
    (
        "refs/heads/l-missing-then-gitlink",
        "MissingObject 0123456789abcdef0123456789abcdef01234567",
    ),
    (
        "refs/heads/m-gitlink-then-missing",
        "Gitlink c3925420506e98a105f00c9799434cd3eeb0f217",
    ),
    (
        "refs/tags/g-garbage",
        "Unparsable 1541742463fd787fe7e7e1aa12a569c066270fcb",
    ),
    (
        "refs/tags/g-of-garbage",
        "Unparsable 1541742463fd787fe7e7e1aa12a569c066270fcb",
    ),
    (
        "refs/tags/h-missing",
        "MissingObject 0123456789abcdef0123456789abcdef01234567",
    ),
    (
        "refs/tags/o-wrong-type",
        "TagTarget cd5676409f135a486eae035f79eb777fca86c9ea",
    ),
];
const ODDITIES_IMPORTED: &[(&str, &str)] = &[
    (
        "refs/heads/a-deep",
        "589f1b2affa4acf96f21ab6236da92c0fd2612d7aab448edf81161db8008fb6d",
    ),
    (
        "refs/heads/e-tree-is-blob",
        "9c43a65327f4ee6d0e84ba0def2bf89c5ec9a1402867349eb67485ebf5be2146",
    ),
    (
        "refs/heads/f-parent-is-tree",
        "37397c8ede6f8be92aea053cdbf94c5f9f238eb5d9e310e9ebdefc583a59b48f",
    ),
    (
        "refs/heads/main",
        "d1f8c8a1c4af80ea06b9f97975b5734fb391161a22c3a867da696ba246331bd8",
    ),
    (
        "refs/tags/v1",
        "7df4d602b0ed6ed603ff221a448dd1cee541ab943438ab15a3e413b45591a17f",
    ),
    (
        "refs/tags/v2",
        "b1b356e25b0d55f23a7b64e4b893b53531a5bce724c4c692cb5e279df062f51b",
    ),
];

#[test]
fn malformed_graphs_refuse_as_a_full_translation_did() {
    let work = tempfile::tempdir().unwrap();
    let key = common::import_key(work.path(), 0x42);
    let up = oddities(work.path().join("up.git"));
    let doc = import(&up.dir, &work.path().join("dst"), &key);
    let (skipped, imported) = outcome(&doc);
    let skipped: BTreeMap<String, String> = skipped
        .into_iter()
        .map(|(name, what)| {
            let refusal = what.split(':').next().unwrap().to_owned();
            let object = what
                .split(|c: char| !c.is_ascii_hexdigit())
                .find(|w| w.len() == 40)
                .unwrap_or("-");
            (name, format!("{refusal} {object}"))
        })
        .collect();
    let want = |rows: &[(&str, &str)]| -> BTreeMap<String, String> {
        rows.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(skipped, want(ODDITIES_SKIPPED), "{doc}");
    assert_eq!(imported, want(ODDITIES_IMPORTED), "{doc}");
}

/// An object the walk of a refused ref reached first, reached again from
/// many new objects of an importable ref, is listed once for that ref (the
/// list of such objects is what the walk marks needed afterwards; listing
/// it once per referrer made it grow with history: 21 MB on git.git).
#[test]
fn an_object_reached_again_is_listed_once_per_tip() {
    let work = tempfile::tempdir().unwrap();
    let key = common::import_key(work.path(), 0x44);
    let raw = Raw::new(work.path().join("up.git"));
    let shared = raw.tree(&[("100644", "s.txt", &raw.blob("shared\n"))]);
    let base_tree = raw.tree(&[("100644", "README", &raw.blob("readme\n"))]);
    let c0 = raw.commit(&base_tree, &[], 1_000_000_000, "zero");
    // Walked first (tips go in ref-name order): refused for its submodule,
    // after reaching `shared`.
    let bad = raw.tree(&[("40000", "shared", &shared), ("160000", "sub", &c0)]);
    raw.set(
        "refs/heads/a-bad",
        &raw.commit(&bad, &[], 1_000_000_100, "bad"),
    );
    // Five new commits, each with a root tree of its own holding `shared`.
    let mut tip = c0.clone();
    for i in 0..5 {
        let n = raw.blob(&format!("{i}\n"));
        let root = raw.tree(&[("100644", "n.txt", &n), ("40000", "shared", &shared)]);
        tip = raw.commit(&root, &[&tip], 1_000_000_200 + i, "next");
    }
    raw.set("refs/heads/z-good", &tip);

    let probes = tempfile::tempdir().unwrap();
    let dst = work.path().join("dst");
    let out = Command::new(common::bridge_bin())
        .args(["import", "--json", "--key"])
        .arg(&key)
        .arg(&raw.dir)
        .arg(&dst)
        .env("MKIT_BRIDGE_PROBE_DIR", probes.path())
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (skipped, imported) = outcome(&doc);
    assert_eq!(skipped.keys().collect::<Vec<_>>(), ["refs/heads/a-bad"]);
    assert_eq!(imported.keys().collect::<Vec<_>>(), ["refs/heads/z-good"]);
    let most = std::fs::read_to_string(probes.path().join("walk-reached")).unwrap();
    assert_eq!(most, "1", "`shared` is listed once, not once per root tree");
    // And it was marked needed: the imported ref is whole.
    fsck_ok(&dst);
}
