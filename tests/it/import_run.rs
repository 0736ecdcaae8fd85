//! Import runs end to end from the CLI: incremental re-runs, crash recovery,
//! and the reference `mkit` reading what we wrote.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A fixture upstream and where it is imported (`dst`).
struct Env(common::FixtureImport);

impl std::ops::Deref for Env {
    type Target = common::FixtureImport;

    fn deref(&self) -> &common::FixtureImport {
        &self.0
    }
}

fn env(fixture: &str) -> Env {
    Env(common::FixtureImport::new(fixture))
}

impl Env {
    fn import(&self) -> serde_json::Value {
        let out = common::run_ok(
            Command::new(common::bridge_bin())
                .arg("import")
                .arg(&self.src)
                .arg(&self.dst)
                .args(["--json", "--key"])
                .arg(&self.key),
        );
        serde_json::from_slice(&out).unwrap()
    }

    fn fetch(&self) -> serde_json::Value {
        let out = common::run_ok(
            Command::new(common::bridge_bin())
                .args(["fetch", "--json", "--key"])
                .arg(&self.key)
                .current_dir(&self.dst),
        );
        serde_json::from_slice(&out).unwrap()
    }

    fn objects(&self) -> usize {
        let objects = self.dst.join(".mkit/objects");
        assert!(objects.is_dir(), "no object store at {}", objects.display());
        common::files_under(&objects).len()
    }

    fn refs(&self) -> BTreeMap<String, String> {
        common::mkit_refs(&self.dst).unwrap_or_default()
    }

    fn state(&self) -> PathBuf {
        self.dst.join(".mkit/git/upstream")
    }
}

#[test]
fn incremental_runs_write_only_new_objects_and_nothing_without_change() {
    let e = env("multi-branch");
    let first = e.import();
    let before = e.objects();
    assert_eq!(first["written"].as_u64().unwrap() as usize, before);

    // No upstream change: nothing translated, nothing written, same refs.
    let refs = e.refs();
    let again = e.fetch();
    assert_eq!(again["translated"], 0);
    assert_eq!(again["written"], 0);
    assert_eq!(e.objects(), before);
    assert_eq!(e.refs(), refs);

    // New upstream commits: exactly the new objects are written.
    common::build_fixture("multi-branch.append", &e.src);
    let new_git_objects = {
        let out = common::run_ok(Command::new("git").arg("-C").arg(&e.src).args([
            "rev-list",
            "--objects",
            "--all",
        ]));
        String::from_utf8(out).unwrap().lines().count()
    };
    let third = e.fetch();
    let written = third["written"].as_u64().unwrap() as usize;
    assert!(written > 0);
    assert_eq!(e.objects(), before + written);
    // Every translated object is new to the map; the map now covers the
    // whole upstream.
    let map_lines = fs::read_to_string(e.state().join("map"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(map_lines, new_git_objects);
    assert_eq!(
        first["translated"].as_u64().unwrap() + third["translated"].as_u64().unwrap(),
        new_git_objects as u64
    );
}

/// Simulate the states a crash can leave, in the durability order (objects,
/// raw bytes, map, refs, ref state, marker cleared), and check the next run
/// ends where an uninterrupted import does.
#[test]
fn a_crash_at_any_point_is_repaired_by_the_next_run() {
    let reference = env("multi-branch");
    reference.import();
    let want = reference.refs();

    type Damage = fn(&Env);
    let cases: [(&str, Damage); 4] = [
        ("objects written, nothing else", |e| {
            fs::remove_file(e.state().join("map")).unwrap();
            fs::remove_file(e.state().join("refs-import")).unwrap();
            fs::remove_dir_all(e.dst.join(".mkit/refs/remotes")).unwrap();
            fs::write(e.state().join("importing"), b"").unwrap();
        }),
        ("map torn mid-line", |e| {
            let map = e.state().join("map");
            let text = fs::read(&map).unwrap();
            fs::write(&map, &text[..text.len() / 2 + 7]).unwrap();
            fs::write(e.state().join("importing"), b"").unwrap();
        }),
        ("map complete, refs not written", |e| {
            fs::remove_dir_all(e.dst.join(".mkit/refs/remotes")).unwrap();
            fs::remove_file(e.state().join("refs-import")).unwrap();
            fs::write(e.state().join("importing"), b"").unwrap();
        }),
        ("map lost its last objects", |e| {
            let map = e.state().join("map");
            let text = fs::read_to_string(&map).unwrap();
            let keep: Vec<&str> = text.lines().take(3).collect();
            fs::write(&map, keep.join("\n") + "\n").unwrap();
        }),
    ];
    for (what, damage) in cases {
        let e = env("multi-branch");
        e.import();
        damage(&e);
        e.fetch();
        assert_eq!(e.refs(), want, "after: {what}");
        assert!(!e.state().join("importing").exists(), "after: {what}");
        let map = fs::read_to_string(e.state().join("map")).unwrap();
        assert!(
            map.lines().all(|l| l.len() == 105),
            "map not intact after: {what}"
        );
    }
}

/// A real kill at several moments: whatever state it leaves, the next run
/// ends with the same refs as an uninterrupted import.
#[test]
fn killed_imports_resume_to_the_same_ids() {
    let reference = env("big-blob");
    reference.import();
    let want = reference.refs();
    for delay_ms in [0u64, 2, 5, 10, 20, 40] {
        let e = env("big-blob");
        let mut child = Command::new(common::bridge_bin())
            .arg("import")
            .arg(&e.src)
            .arg(&e.dst)
            .args(["--quiet", "--key"])
            .arg(&e.key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if !e.dst.join(".mkit/objects").is_dir() {
            // Killed before the repository existed: start over as a user would.
            let _ = fs::remove_dir_all(&e.dst);
            e.import();
        } else if e.state().join("repo.git").is_dir() {
            e.fetch();
        } else {
            // Killed before the first fetch finished: the import is simply
            // re-run inside the repository it created.
            common::run_ok(
                Command::new(common::bridge_bin())
                    .arg("import")
                    .arg(&e.src)
                    .args(["--quiet", "--key"])
                    .arg(&e.key)
                    .current_dir(&e.dst),
            );
        }
        let got: BTreeMap<String, String> = e
            .refs()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("refs/heads/"))
            .collect();
        let want: BTreeMap<String, String> = want
            .iter()
            .filter(|(k, _)| !k.starts_with("refs/heads/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "killed after {delay_ms} ms");
    }
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn the_reference_reads_our_import() {
    let Some(bin) = common::mkit_bin("the_reference_reads_our_import") else {
        return;
    };
    let e = env("multi-branch");
    e.import();
    let run = |args: &[&str]| {
        String::from_utf8(common::run_ok(
            Command::new(&bin).args(args).current_dir(&e.dst),
        ))
        .unwrap()
    };
    let log = run(&["log"]);
    assert!(log.contains("commit "), "{log}");
    let verify = run(&["verify", "HEAD"]);
    assert!(verify.contains("valid"), "{verify}");
    let status = run(&["git", "status"]);
    assert!(status.contains("upstream"), "{status}");
    // Tags verify under the import key too.
    let tags = run(&["show-ref", "--tags"]);
    assert!(tags.contains("refs/tags/"), "{tags}");
    for line in tags.lines() {
        let id = line.split_whitespace().next().unwrap();
        run(&["cat-file", "-p", id]);
    }
}

/// An upstream that lacks an object (as real snapshots sometimes do): only
/// the refs whose closure needs it are skipped, the rest import.
#[test]
fn a_missing_object_skips_only_the_refs_that_need_it() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let git = |args: &[&str]| {
        common::run_ok(
            Command::new("git")
                .arg("-C")
                .arg(&src)
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", work.path())
                .env("GIT_AUTHOR_NAME", "A")
                .env("GIT_AUTHOR_EMAIL", "a@example.com")
                .env("GIT_COMMITTER_NAME", "A")
                .env("GIT_COMMITTER_EMAIL", "a@example.com")
                .env("GIT_AUTHOR_DATE", "1700000000 +0000")
                .env("GIT_COMMITTER_DATE", "1700000000 +0000"),
        )
    };
    fs::create_dir(&src).unwrap();
    git(&["init", "-q", "-b", "main"]);
    fs::write(src.join("a"), "kept\n").unwrap();
    git(&["add", "a"]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["checkout", "-q", "-b", "side"]);
    fs::write(src.join("b"), "this blob goes missing\n").unwrap();
    git(&["add", "b"]);
    git(&["commit", "-q", "-m", "two"]);
    let blob = String::from_utf8(git(&["rev-parse", "HEAD:b"])).unwrap();
    let blob = blob.trim();
    fs::remove_file(src.join(".git/objects").join(&blob[..2]).join(&blob[2..])).unwrap();

    let key = common::import_key(work.path(), 0x42);
    let dst = work.path().join("dst");
    let out = Command::new(common::bridge_bin())
        .arg("import")
        .arg(&src)
        .arg(&dst)
        .args(["--json", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imported = common::json_imported_refs(&v);
    assert_eq!(imported, ["refs/heads/main"]);
    let skipped = &v["skipped"][0];
    assert_eq!(skipped["ref"], "refs/heads/side");
    assert_eq!(skipped["refusal"], "MissingObject");
    assert!(skipped["reason"].as_str().unwrap().contains(blob));
    assert!(dst.join(".mkit/refs/remotes/upstream/main").is_file());
    assert!(!dst.join(".mkit/refs/remotes/upstream/side").exists());
}

/// The import key is pinned at the first import: another key is refused
/// (exit 78) with the pinned key named, and nothing changes.
#[test]
fn another_key_is_refused_and_nothing_changes() {
    let e = env("plain");
    e.import();
    let refs = e.refs();
    let other = common::import_key(&e.dst.join("elsewhere"), 0x43);
    let out = Command::new(common::bridge_bin())
        .args(["fetch", "--key"])
        .arg(&other)
        .current_dir(&e.dst)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    let pinned = fs::read_to_string(e.state().join("signer")).unwrap();
    assert!(err.contains(pinned.trim()), "{err}");
    assert_eq!(e.refs(), refs);
    assert_eq!(
        fs::read_to_string(e.state().join("signer")).unwrap(),
        pinned
    );
}

/// Bad upstreams and targets are refused before anything is created, each
/// with its sysexits code.
#[test]
fn bad_arguments_are_refused_before_anything_is_created() {
    let work = tempfile::tempdir().unwrap();
    let full = work.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("x"), "x").unwrap();
    let cases: [(&[&str], i32); 4] = [
        (&["import", "/nonexistent/upstream", "out1"], 66),
        (&["import", "ftp://example.invalid/x", "out2"], 64),
        (&["import", "--", "--upload-pack=x", "out3"], 64),
        (&["import", "/nonexistent/upstream", "full"], 66),
    ];
    for (args, code) in cases {
        let out = Command::new(common::bridge_bin())
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("generated a NEW import key"),
            "{args:?}: {err}"
        );
    }
    for d in ["out1", "out2", "out3"] {
        assert!(!work.path().join(d).exists(), "{d} was created");
    }
    let e = env("plain");
    let out = Command::new(common::bridge_bin())
        .arg("import")
        .arg(&e.src)
        .arg(&full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(73));
    assert_eq!(fs::read_dir(&full).unwrap().count(), 1);
}

/// "sha256" in an upstream's path or URL says nothing about its object
/// format (read from the repository, never guessed from the name): a SHA-1
/// repository there imports like any other, to the same refs either way.
#[test]
fn a_sha1_upstream_named_sha256_imports() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("sha256").join("sha256.git");
    common::build_fixture("multi-branch", &src);
    let key = common::import_key(work.path(), 0x42);
    let mut imported = Vec::new();
    for (i, url) in [
        src.display().to_string(),
        format!("file://{}", src.display()),
    ]
    .iter()
    .enumerate()
    {
        let dst = work.path().join(format!("dst{i}"));
        common::run_ok(
            Command::new(common::bridge_bin())
                .arg("import")
                .arg(url)
                .arg(&dst)
                .args(["--quiet", "--key"])
                .arg(&key),
        );
        let refs = common::mkit_refs(&dst).unwrap();
        assert!(
            refs.keys().any(|r| r.starts_with("refs/remotes/")),
            "{url}: {refs:?}"
        );
        imported.push(refs);
    }
    assert_eq!(imported[0], imported[1]);
}
