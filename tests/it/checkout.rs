//! Checkout after `import <url> <dir>`: the index codec against the golden
//! vectors and mkit-core, the checkout's refusals on hostile trees (built in
//! memory, where no decoder stands in the way, and end to end where the
//! import lets them through), and the checked-out files against `git archive`.

use crate::common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{
    bridge, checkout_fixture, have_git, import_key, mkit_bin, read_golden, run_ok, stderr,
};
use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::index::{self, EntryStatus, Index, IndexEntry, IndexError, StatCache};
use mkit_bridge::mkit::object::{Blob, EntryMode, Object, Tree, TreeEntry};
use mkit_bridge::run::checkout::{self, CheckoutError, FileKind};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn no_temp_files(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(".tmp."),
                "temp file left: {}",
                e.path().display()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// the index codec
// ---------------------------------------------------------------------------

/// The golden vectors are version 2 (SPEC-INDEX); mkit 0.5.0 writes and
/// reads only version 3, which appends a BLAKE3 checksum. Same entries, same
/// entry bytes: patching the version and sealing must give what we encode.
#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn golden_vectors_are_the_version_3_layout_minus_the_checksum() {
    // In a worktree under /work/wt/<name>, the shared folder is two levels up.
    let up2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/mkit-golden");
    let dir = if up2.is_dir() {
        up2
    } else {
        let Some(dir) =
            common::golden_dir("golden_vectors_are_the_version_3_layout_minus_the_checksum")
        else {
            return;
        };
        dir
    };
    let manifest = common::manifest(&dir, "refs-index");
    for name in ["index_empty", "index_3entries"] {
        let v2 = read_golden(&dir, &format!("refs-index/{name}.bin"));
        let pinned = manifest.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(blake3::hash(&v2).to_hex().as_str(), pinned.1[0], "{name}");
        // Version 2 is refused, as mkit 0.5.0 refuses it.
        assert!(matches!(
            index::decode(&v2),
            Err(IndexError::UnsupportedVersion(2))
        ));
        let mut v3 = v2.clone();
        v3[4] = 3;
        let sum = blake3::hash(&v3);
        v3.extend_from_slice(sum.as_bytes());
        let idx = index::decode(&v3).unwrap();
        assert_eq!(idx.encode().unwrap(), v3, "{name} re-encodes byte for byte");
        if name == "index_3entries" {
            let paths: Vec<_> = idx
                .entries
                .iter()
                .map(|e| (e.path.as_str(), e.status))
                .collect();
            assert_eq!(
                paths,
                [
                    ("README.md", EntryStatus::Blob),
                    ("src", EntryStatus::Tree),
                    ("scripts/build", EntryStatus::Executable)
                ]
            );
        }
    }
}

fn sample_index() -> Index {
    let e = |path: &str, status, n: u8, st: [u64; 4]| IndexEntry {
        path: path.to_owned(),
        status,
        id: if status == EntryStatus::Removed {
            Id::ZERO
        } else {
            Id([n; 32])
        },
        stat: StatCache {
            mtime_ns: st[0],
            size: st[1],
            ino: st[2],
            ctime_ns: st[3],
        },
    };
    Index {
        entries: vec![
            e(
                "README",
                EntryStatus::Blob,
                1,
                [1_700_000_000_123_456_789, 17, 42, 1_700_000_000_500_000_000],
            ),
            e("bin/run.sh", EntryStatus::Executable, 2, [0; 4]),
            e("link", EntryStatus::Symlink, 3, [0; 4]),
            e("gone.txt", EntryStatus::Removed, 0, [0; 4]),
            e(
                "dir/ü.txt",
                EntryStatus::Blob,
                4,
                [u64::MAX, u64::MAX, 1, 1],
            ),
        ],
    }
}

/// Differential: mkit-core 0.5.0 reads what we write and we read what it
/// writes, entry for entry.
#[test]
fn mkit_core_reads_our_index_and_we_read_its() {
    use mkit_core::index as core;
    let ours = sample_index();
    let bytes = ours.encode().unwrap();
    let theirs = core::deserialize(&bytes).expect("mkit-core decodes our index");
    assert_eq!(theirs.entries.len(), ours.entries.len());
    for (a, b) in ours.entries.iter().zip(&theirs.entries) {
        assert_eq!(a.path, b.path);
        assert_eq!(a.status as u8, b.status as u8);
        assert_eq!(a.id.0, b.object_hash);
        assert_eq!(
            [a.stat.mtime_ns, a.stat.size, a.stat.ino, a.stat.ctime_ns],
            [b.mtime_ns, b.size, b.ino, b.ctime_ns]
        );
    }
    assert_eq!(theirs.serialize(), bytes, "and writes the same bytes back");
    assert_eq!(index::decode(&theirs.serialize()).unwrap(), ours);
}

// ---------------------------------------------------------------------------
// hostile trees, in memory
// ---------------------------------------------------------------------------

/// An in-memory object map whose trees nobody validated.
#[derive(Default)]
struct Objects {
    map: HashMap<Id, Object>,
    next: u8,
}

impl Objects {
    fn put(&mut self, obj: Object) -> Id {
        self.next += 1;
        let id = Id([self.next; 32]);
        self.map.insert(id, obj);
        id
    }
    fn blob(&mut self, data: &[u8]) -> Id {
        self.put(Object::Blob(Blob {
            data: data.to_vec(),
        }))
    }
    fn tree(&mut self, entries: Vec<(&[u8], EntryMode, Id)>) -> Id {
        self.put(common::tree_of(&entries))
    }
}

fn hostile_cases() -> Vec<(&'static str, Objects, Id)> {
    let mut cases = Vec::new();
    let names: [&[u8]; 16] = [
        b"..",
        b".",
        b"",
        b"a/b",
        b"/etc",
        b"a\\b",
        b"a\0b",
        b".mkit",
        b".MKIT",
        b".Git",
        b".mkit.",
        ".mk\u{200c}it".as_bytes(),
        "\u{feff}.git".as_bytes(),
        ".m\u{212a}it".as_bytes(),
        b"MKIT~1",
        b"\xff\xfe",
    ];
    for name in names {
        for mode in [EntryMode::Blob, EntryMode::Tree] {
            let mut o = Objects::default();
            let inner = o.blob(b"pwned\n");
            let child = if mode == EntryMode::Tree {
                o.tree(vec![(b"HEAD", EntryMode::Blob, inner)])
            } else {
                inner
            };
            let root = o.tree(vec![(name, mode, child)]);
            cases.push(("name", o, root));
            // The same name one level down.
            let mut o = Objects::default();
            let inner = o.blob(b"pwned\n");
            let bad = o.tree(vec![(name, EntryMode::Blob, inner)]);
            let root = o.tree(vec![(b"sub", EntryMode::Tree, bad)]);
            cases.push(("nested name", o, root));
        }
    }
    for target in [
        &b"/etc/passwd"[..],
        b"../outside",
        b"a/../../x",
        b"",
        b".mkit/keys/git-import.key",
        b"sub/.GIT/config",
        b"x\0y",
        b"\xff",
    ] {
        let mut o = Objects::default();
        let t = o.blob(target);
        let root = o.tree(vec![(b"evil", EntryMode::Symlink, t)]);
        cases.push(("symlink", o, root));
    }
    // A symlink and a directory of the same name: the directory's files would
    // be written through the link.
    let mut o = Objects::default();
    let t = o.blob(b"elsewhere");
    let f = o.blob(b"x");
    let d = o.tree(vec![(b"f", EntryMode::Blob, f)]);
    let root = o.tree(vec![
        (b"a", EntryMode::Symlink, t),
        (b"a", EntryMode::Tree, d),
    ]);
    cases.push(("duplicate name", o, root));
    // A tree that contains itself: the depth bound ends the walk.
    let mut o = Objects::default();
    let id = Id([200; 32]);
    o.map.insert(
        id,
        Object::Tree(Tree {
            entries: vec![TreeEntry {
                name: b"d".to_vec(),
                mode: EntryMode::Tree,
                id,
            }],
        }),
    );
    cases.push(("cycle", o, id));
    cases
}

#[test]
fn hostile_trees_are_refused_before_anything_is_written() {
    for (what, objects, root) in hostile_cases() {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(wt.join(".mkit")).unwrap();
        let err = checkout::plan(&objects.map, &root).expect_err(what);
        assert!(
            matches!(
                err,
                CheckoutError::HostileName { .. }
                    | CheckoutError::HostileSymlink { .. }
                    | CheckoutError::TooDeep { .. }
            ),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("nothing was written")
                || matches!(err, CheckoutError::TooDeep { .. })
        );
        assert_eq!(std::fs::read_dir(&wt).unwrap().count(), 1, "{what}");
    }
}

#[test]
fn a_symlink_in_the_worktree_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let wt = dir.path().join("wt");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(wt.join(".mkit")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let mut o = Objects::default();
    let f = o.blob(b"payload\n");
    let sub = o.tree(vec![(b"file", EntryMode::Blob, f)]);
    let root = o.tree(vec![(b"sub", EntryMode::Tree, sub)]);
    let plan = checkout::plan(&o.map, &root).unwrap();

    // An untracked symlink where the tree has a directory: refused.
    std::os::unix::fs::symlink(&outside, wt.join("sub")).unwrap();
    let err = checkout::apply(&o.map, &wt, &wt.join(".mkit"), &plan, None).unwrap_err();
    assert!(
        matches!(&err, CheckoutError::Untracked { path } if path == "sub"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!wt.join(".mkit/index").exists());

    // A tracked symlink the new tree turns into a directory: replaced, and
    // the file lands inside the worktree.
    let previous = Index {
        entries: vec![IndexEntry {
            path: "sub".into(),
            status: EntryStatus::Symlink,
            id: Id([9; 32]),
            stat: StatCache::default(),
        }],
    };
    let done = checkout::apply(&o.map, &wt, &wt.join(".mkit"), &plan, Some(&previous)).unwrap();
    assert_eq!(done.written, 1);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(std::fs::symlink_metadata(wt.join("sub")).unwrap().is_dir());
    assert_eq!(std::fs::read(wt.join("sub/file")).unwrap(), b"payload\n");
    no_temp_files(&wt);
}

#[test]
fn apply_writes_modes_links_and_an_index_in_tree_order() {
    let dir = tempfile::tempdir().unwrap();
    let wt = dir.path();
    std::fs::create_dir_all(wt.join(".mkit")).unwrap();
    let mut o = Objects::default();
    let a = o.blob(b"a\n");
    let x = o.blob(b"#!/bin/sh\n");
    let l = o.blob(b"d/x");
    let d = o.tree(vec![(b"x", EntryMode::Executable, x)]);
    let root = o.tree(vec![
        (b"a.txt", EntryMode::Blob, a),
        (b"d", EntryMode::Tree, d),
        (b"l", EntryMode::Symlink, l),
    ]);
    let plan = checkout::plan(&o.map, &root).unwrap();
    let kinds: Vec<_> = plan
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a.txt", FileKind::Regular),
            ("d/x", FileKind::Executable),
            ("l", FileKind::Symlink)
        ]
    );
    checkout::apply(&o.map, wt, &wt.join(".mkit"), &plan, None).unwrap();
    let mode = |p: &str| std::fs::metadata(wt.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("d/x"), 0o755);
    assert_eq!(mode("a.txt") & 0o111, 0);
    assert_eq!(std::fs::read_link(wt.join("l")).unwrap(), Path::new("d/x"));
    let idx = index::read(&wt.join(".mkit")).unwrap().unwrap();
    let got: Vec<_> = idx
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.status, e.id))
        .collect();
    assert_eq!(
        got,
        [
            ("a.txt", EntryStatus::Blob, a),
            ("d/x", EntryStatus::Executable, x),
            ("l", EntryStatus::Symlink, l)
        ]
    );
    no_temp_files(wt);
}

// ---------------------------------------------------------------------------
// end to end
// ---------------------------------------------------------------------------

/// Import `upstream` into `<tmp>/wt` with our binary; returns the output.
fn import_into(tmp: &Path, upstream: &Path, extra: &[&str]) -> Output {
    let key = import_key(tmp, 7);
    let mut args = vec!["import", "--quiet", "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(upstream.to_str().unwrap());
    args.push("wt");
    bridge(tmp, &args)
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn import_checks_out_the_default_branch_like_git_archive() {
    if !have_git("import_checks_out_the_default_branch_like_git_archive") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up.git");
    checkout_fixture("worktree", &up);
    let out = import_into(tmp.path(), &up, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checked out 'main'"),
        "{}",
        stderr(&out)
    );
    let wt = tmp.path().join("wt");
    let expected = tmp.path().join("expected");
    common::git_archive(&up, "main", &expected);
    assert_eq!(
        common::worktree_snapshot(&wt),
        common::worktree_snapshot(&expected)
    );
    no_temp_files(&wt);
    assert_eq!(
        std::fs::read_to_string(wt.join(".mkit/HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join(".mkit/refs/heads/main")).unwrap(),
        std::fs::read_to_string(wt.join(".mkit/refs/remotes/upstream/main")).unwrap()
    );
    // The index lists every file in tree order, with mkit-core's reading too.
    let bytes = std::fs::read(wt.join(".mkit/index")).unwrap();
    let idx = index::decode(&bytes).unwrap();
    let paths: Vec<_> = idx.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "README",
            "a/b/c.txt",
            "bin/run.sh",
            "data/big.bin",
            "data/empty",
            "link",
            "src/lib.rs",
            "src/main.rs",
            "srcdir"
        ]
    );
    assert!(mkit_core::index::deserialize(&bytes).is_ok());
    let big = idx.get("data/big.bin").unwrap();
    assert_eq!(big.stat.size, 1_572_864);
    assert_eq!(
        big.id,
        mkit_bridge::mkit::content::content_id(&std::fs::read(wt.join("data/big.bin")).unwrap())
    );

    // The reference sees a clean tree and can log and commit on it.
    let Some(mkit) = mkit_bin("import_checks_out_the_default_branch_like_git_archive") else {
        return;
    };
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let ref_mkit = |args: &[&str]| {
        Command::new(&mkit)
            .args(args)
            .current_dir(&wt)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .output()
            .unwrap()
    };
    let st = ref_mkit(&["status", "--porcelain"]);
    assert!(st.status.success(), "{}", stderr(&st));
    assert_eq!(
        String::from_utf8_lossy(&st.stdout),
        "",
        "mkit status --porcelain is empty"
    );
    let st = ref_mkit(&["status"]);
    assert!(
        stderr(&st).contains("nothing to commit, working tree clean"),
        "{}",
        stderr(&st)
    );
    let log = ref_mkit(&["log", "-n", "1"]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("worktree: first"));
    assert!(ref_mkit(&["keygen"]).status.success());
    std::fs::write(wt.join("README"), "changed\n").unwrap();
    assert!(ref_mkit(&["add", "README"]).status.success());
    let c = ref_mkit(&["commit", "-m", "local"]);
    assert!(c.status.success(), "{}", stderr(&c));
    let st = ref_mkit(&["status", "--porcelain"]);
    assert_eq!(String::from_utf8_lossy(&st.stdout), "");
}

#[test]
fn hostile_upstreams_are_refused_end_to_end() {
    if !have_git("hostile_upstreams_are_refused_end_to_end") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up.git");
    checkout_fixture("hostile", &up);
    let branches = String::from_utf8(run_ok(Command::new("git").arg("--git-dir").arg(&up).args(
        [
            "for-each-ref",
            "--format=%(refname:strip=2)",
            "refs/heads/hostile",
        ],
    )))
    .unwrap();
    let mut cases: Vec<Option<&str>> = vec![None];
    cases.extend(branches.lines().map(Some));
    assert!(cases.len() > 10);
    for branch in cases {
        let run = tempfile::tempdir().unwrap();
        let extra: Vec<&str> = branch.map_or(vec![], |b| vec!["--branch", b]);
        let out = import_into(run.path(), &up, &extra);
        assert_eq!(out.status.code(), Some(1), "{branch:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("refusing to check out"),
            "{branch:?}: {}",
            stderr(&out)
        );
        let wt = run.path().join("wt");
        let names: Vec<_> = std::fs::read_dir(&wt)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".mkit"], "{branch:?}: nothing but .mkit");
        assert!(!run.path().join("outside").exists());
        assert!(!wt.join(".mkit/index").exists());
        // The import itself stands: the tracking refs are there.
        assert!(wt.join(".mkit/refs/remotes/upstream/good").exists());
    }
    // A good branch of the same upstream checks out.
    let run = tempfile::tempdir().unwrap();
    let out = import_into(run.path(), &up, &["--branch", "good"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(run.path().join("wt/README")).unwrap(),
        b"good\n"
    );
}

#[test]
fn a_refused_default_branch_is_named_and_branch_picks_another() {
    if !have_git("a_refused_default_branch_is_named_and_branch_picks_another") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up.git");
    common::build_fixture("default-refused", &up);
    let out = import_into(tmp.path(), &up, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("default branch 'main' was not imported") && err.contains("--branch NAME"),
        "{err}"
    );
    assert!(err.contains("imported branches: good"), "{err}");
    let wt = tmp.path().join("wt");
    assert_eq!(
        std::fs::read_dir(&wt).unwrap().count(),
        1,
        "nothing checked out"
    );
    assert!(!wt.join(".mkit/refs/heads/main").exists());

    let other = tempfile::tempdir().unwrap();
    let out = import_into(other.path(), &up, &["--branch", "good", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let wt = other.path().join("wt");
    assert_eq!(
        std::fs::read_to_string(wt.join(".mkit/HEAD")).unwrap(),
        "ref: refs/heads/good\n"
    );
    assert!(wt.join("README").is_file());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checked_out"], "good");

    let third = tempfile::tempdir().unwrap();
    let out = import_into(third.path(), &up, &["--branch", "main"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("branch 'main' was not imported (it was refused"),
        "{}",
        stderr(&out)
    );
}

/// ripgrep's history (`/work/data/ripgrep.git`): the checked-out files equal
/// `git archive` of the default branch and the reference calls the tree clean.
/// Slow in a debug build, so run on demand: `cargo test --test checkout -- --ignored`.
#[test]
#[ignore = "imports ripgrep's whole history; run with --ignored"]
fn ripgrep_checks_out_like_git_archive() {
    let rg = Path::new("/work/data/ripgrep.git");
    if !rg.is_dir() {
        common::skip::<()>(
            "ripgrep_checks_out_like_git_archive",
            "no /work/data/ripgrep.git",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = import_into(tmp.path(), rg, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let head = String::from_utf8(run_ok(Command::new("git").arg("--git-dir").arg(rg).args([
        "symbolic-ref",
        "--short",
        "HEAD",
    ])))
    .unwrap();
    let expected = tmp.path().join("expected");
    common::git_archive(rg, head.trim(), &expected);
    let wt = tmp.path().join("wt");
    assert_eq!(
        common::worktree_snapshot(&wt),
        common::worktree_snapshot(&expected)
    );
    if let Some(mkit) = mkit_bin("ripgrep_checks_out_like_git_archive") {
        let st = Command::new(mkit)
            .args(["status", "--porcelain"])
            .current_dir(&wt)
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        assert!(st.status.success());
        assert_eq!(String::from_utf8_lossy(&st.stdout), "");
    }
}
