//! `format-patch` end to end: a git upstream imported with our `import`,
//! local commits made with our `snapshot`, the series applied by real
//! `git am` onto a clone of the upstream, and the bytes compared with the
//! reference `mkit git format-patch` on the same repository.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::object::{Commit, Object};
use mkit_bridge::mkit::refs::{self, RefCondition};
use mkit_bridge::mkit::repo::Repo;

/// A git command isolated from the user's and system configuration.
fn git(dir: &Path, home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).env("HOME", home);
    common::up_stream_env(&mut cmd);
    cmd
}

fn git_ok(dir: &Path, home: &Path, args: &[&str]) -> String {
    String::from_utf8(common::run_ok(git(dir, home).args(args))).unwrap()
}

fn have_git(test: &str) -> bool {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok || common::skip::<()>(test, "git is not on PATH").is_some()
}

/// An upstream git repository, its import, and a work tree to snapshot from.
struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    upstream: PathBuf,
    fork: PathBuf,
    /// A git clone of the upstream whose files become each local commit.
    work: PathBuf,
    key: PathBuf,
    next_ts: std::cell::Cell<u64>,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let home = root.join("home");
        fs::create_dir_all(&home).unwrap();
        let upstream = root.join("upstream");
        fs::create_dir_all(upstream.join("src")).unwrap();
        git_ok(
            &upstream,
            &home,
            &["init", "--quiet", "--initial-branch=main", "."],
        );
        let numbered: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        fs::write(upstream.join("README.md"), "# Project\n\nHello.\n").unwrap();
        fs::write(upstream.join("src/lib.txt"), &numbered).unwrap();
        fs::write(upstream.join("src/old.txt"), "to be removed\n").unwrap();
        fs::write(upstream.join("tool.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::write(upstream.join("no-eol.txt"), "last line without newline").unwrap();
        git_ok(&upstream, &home, &["add", "-A"]);
        git_ok(
            &upstream,
            &home,
            &["commit", "--quiet", "-m", "Initial import"],
        );

        let key = common::import_key(&root, 0x42);
        let fork = root.join("fork");
        common::bridge_import(&upstream, &fork, &key);
        let work = root.join("work");
        git_ok(
            &root,
            &home,
            &["clone", "--quiet", upstream.to_str().unwrap(), "work"],
        );
        Env {
            _tmp: tmp,
            root,
            home,
            upstream,
            fork,
            work,
            key,
            next_ts: std::cell::Cell::new(1_700_000_100),
        }
    }

    /// Commit the work tree to the fork's `main` with our `snapshot`.
    fn snapshot(&self, message: &str) -> Id {
        let ts = self.next_ts.get();
        self.next_ts.set(ts + 100);
        let out = common::run_ok(
            Command::new(common::bridge_bin())
                .arg("snapshot")
                .arg(&self.work)
                .arg("--repo")
                .arg(&self.fork)
                .args(["--branch", "main", "-m", message])
                .args(["--author", "Fork Dev <dev@example.com>"])
                .args(["--timestamp", &ts.to_string()])
                .arg("--key")
                .arg(&self.key),
        );
        Id::from_hex(String::from_utf8(out).unwrap().trim()).unwrap()
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.work.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn format_patch(&self, args: &[&str]) -> Output {
        Command::new(common::bridge_bin())
            .arg("format-patch")
            .args(args)
            .current_dir(&self.fork)
            .output()
            .unwrap()
    }

    fn format_patch_ok(&self, args: &[&str]) -> Output {
        let out = self.format_patch(args);
        assert!(
            out.status.success(),
            "format-patch {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A fresh git clone of the upstream, for `git am`.
    fn clone_upstream(&self, name: &str) -> PathBuf {
        git_ok(
            &self.root,
            &self.home,
            &["clone", "--quiet", self.upstream.to_str().unwrap(), name],
        );
        self.root.join(name)
    }

    /// The git tree id the work tree's files make, as git would commit them.
    fn work_tree_id(&self) -> String {
        git_ok(&self.work, &self.home, &["add", "-A"]);
        git_ok(&self.work, &self.home, &["write-tree"])
            .trim()
            .to_owned()
    }
}

/// Several kinds of change over two commits: a new file in a new
/// directory, a modification in two hunks, a deletion, a mode change, a
/// missing final newline fixed, and a body with a paragraph.
fn two_local_commits(env: &Env) -> (Id, Id) {
    env.write("feature/feature.txt", b"one\n");
    let mut lib = fs::read_to_string(env.work.join("src/lib.txt")).unwrap();
    lib = lib
        .replace("line 3\n", "line three\n")
        .replace("line 27\n", "line 27\nline 27b\n");
    env.write("src/lib.txt", lib.as_bytes());
    let a = env.snapshot("Add feature file");
    env.write("feature/feature.txt", b"one\ntwo\n");
    fs::remove_file(env.work.join("src/old.txt")).unwrap();
    fs::set_permissions(env.work.join("tool.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    env.write("no-eol.txt", b"last line without newline\n");
    let b = env.snapshot("Extend feature file\n\nWith a body line.\n");
    (a, b)
}

#[test]
fn patches_apply_with_git_am_and_give_the_same_tree() {
    if !have_git("patches_apply_with_git_am_and_give_the_same_tree") {
        return;
    }
    let env = Env::new();
    two_local_commits(&env);
    let expected_tree = env.work_tree_id();

    let patches = env.root.join("patches");
    let out = env.format_patch_ok(&["upstream/main..HEAD", "-o", patches.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "0001-Add-feature-file.patch\n0002-Extend-feature-file.patch\n"
    );
    let p1 = patches.join("0001-Add-feature-file.patch");
    let p2 = patches.join("0002-Extend-feature-file.patch");
    let first = fs::read_to_string(&p1).unwrap();
    assert!(
        first.contains("\nFrom: Fork Dev <dev@example.com>\n"),
        "{first}"
    );
    assert!(
        first.contains("\nDate: Tue, 14 Nov 2023 22:15:00 +0000\n"),
        "{first}"
    );
    assert!(
        first.contains("\nSubject: [PATCH 1/2] Add feature file\n"),
        "{first}"
    );
    assert!(first.contains("@@ -1,6 +1,6 @@\n line 1\n line 2\n-line 3\n+line three\n"));

    let contrib = env.clone_upstream("contrib");
    git_ok(
        &contrib,
        &env.home,
        &["am", "--quiet", p1.to_str().unwrap(), p2.to_str().unwrap()],
    );
    let applied = git_ok(&contrib, &env.home, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(
        applied.trim(),
        expected_tree,
        "git am rebuilt a different tree"
    );
    let log = git_ok(
        &contrib,
        &env.home,
        &["log", "--format=%an <%ae>|%s|%b", "-n", "2"],
    );
    assert_eq!(
        log,
        "Fork Dev <dev@example.com>|Extend feature file|With a body line.\n\n\
         Fork Dev <dev@example.com>|Add feature file|\n"
    );

    // The same series as one mbox on stdout applies the same way.
    let out = env.format_patch_ok(&["upstream/main", "--stdout"]);
    let mbox = env.root.join("series.mbox");
    fs::write(&mbox, &out.stdout).unwrap();
    let mut joined = fs::read(&p1).unwrap();
    joined.extend(fs::read(&p2).unwrap());
    assert_eq!(out.stdout, joined, "--stdout is the files concatenated");
    let contrib2 = env.clone_upstream("contrib2");
    git_ok(
        &contrib2,
        &env.home,
        &["am", "--quiet", mbox.to_str().unwrap()],
    );
    let applied = git_ok(&contrib2, &env.home, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(applied.trim(), expected_tree);
}

#[test]
fn merges_are_skipped_with_a_warning() {
    if !have_git("merges_are_skipped_with_a_warning") {
        return;
    }
    let env = Env::new();
    let (a, b) = two_local_commits(&env);
    // A merge of the two on top, written through the library: our
    // `snapshot` makes single-parent commits only.
    let repo = Repo::open(&env.fork).unwrap();
    let Object::Commit(tip) = repo.store().read(&b).unwrap() else {
        panic!("b is a commit");
    };
    let merge = repo
        .store()
        .write(&Object::Commit(Commit {
            parents: vec![b, a],
            message: b"Merge side\n".to_vec(),
            timestamp: tip.timestamp + 1,
            ..tip
        }))
        .unwrap();
    refs::write_ref(
        repo.mkit_dir(),
        "refs/heads/main",
        &merge,
        RefCondition::Match(b),
    )
    .unwrap();

    let out = env.format_patch_ok(&["upstream/main..HEAD", "--stdout"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "warning: 1 merge commit(s) skipped (patches are linear)\n"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Subject: [PATCH 1/2] Add feature file\n"));
    assert!(stdout.contains("Subject: [PATCH 2/2] Extend feature file\n"));
    assert!(!stdout.contains("Merge side"));

    // A range holding only the merge: warned, then nothing to do.
    let out = env.format_patch_ok(&[&format!("{b}..HEAD"), "--stdout"]);
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "warning: 1 merge commit(s) skipped (patches are linear)\nno commits in range {b}..HEAD\n"
        )
    );
}

#[test]
fn binary_changes_are_refused_before_anything_is_written() {
    if !have_git("binary_changes_are_refused_before_anything_is_written") {
        return;
    }
    let env = Env::new();
    env.write("notes.txt", b"text first\n");
    let first = env.snapshot("Add notes");
    env.write("blob.bin", &[0, 159, 146, 150, 0, 1, 2]);
    let second = env.snapshot("Add binary blob");

    let out = env.format_patch(&["upstream/main..HEAD", "--stdout"]);
    assert_eq!(out.status.code(), Some(65), "the reference's EX_DATAERR");
    assert!(out.stdout.is_empty(), "no partial series on stdout");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "error: blob.bin: binary change in commit {} — format-patch emits text patches \
             only; use `mkit git export` for binary content\n",
            &second.to_hex()[..12]
        )
    );
    let dir = env.root.join("out");
    let out = env.format_patch(&["upstream/main..HEAD", "-o", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    assert!(!dir.exists(), "no partial series on disk");

    // The text commit alone still goes.
    let out = env.format_patch_ok(&[&format!("upstream/main..{first}"), "--stdout"]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("+text first\n")
    );
}

#[test]
fn mbox_splitting_body_lines_are_escaped_and_git_am_applies() {
    if !have_git("mbox_splitting_body_lines_are_escaped_and_git_am_applies") {
        return;
    }
    let env = Env::new();
    env.write("f.txt", b"x\n");
    env.snapshot(
        "Tricky body\n\nFrom 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001\n\
         From the start this stays verbatim.",
    );
    let out = env.format_patch_ok(&["upstream/main..HEAD", "--stdout"]);
    let mbox = String::from_utf8(out.stdout).unwrap();
    assert!(
        mbox.contains("\n>From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17"),
        "{mbox}"
    );
    assert!(
        mbox.contains("\nFrom the start this stays verbatim.\n"),
        "{mbox}"
    );

    let am = env.clone_upstream("amtest");
    let path = env.root.join("tricky.mbox");
    fs::write(&path, &mbox).unwrap();
    git_ok(&am, &env.home, &["am", "--quiet", path.to_str().unwrap()]);
    let body = git_ok(&am, &env.home, &["log", "-1", "--format=%B"]);
    assert!(body.starts_with("Tricky body\n"), "{body}");
    assert!(
        body.contains("From the start this stays verbatim."),
        "{body}"
    );
    assert_eq!(
        git_ok(&am, &env.home, &["rev-list", "--count", "HEAD"]).trim(),
        "2",
        "one message, not split in two"
    );
}

#[test]
fn bad_ranges_fail_with_the_reference_messages() {
    if !have_git("bad_ranges_fail_with_the_reference_messages") {
        return;
    }
    let env = Env::new();
    let out = env.format_patch(&["nope..HEAD", "--stdout"]);
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: nope: unknown revision 'nope'\n"
    );
    let out = env.format_patch_ok(&["upstream/main", "--stdout"]);
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "no commits in range upstream/main..HEAD\n"
    );
}

/// Run the reference and ours on the same repository and arguments.
fn both(env: &Env, bin: &Path, args: &[&str]) -> (Output, Output) {
    let theirs = Command::new(bin)
        .args(["git", "format-patch"])
        .args(args)
        .current_dir(&env.fork)
        .output()
        .unwrap();
    (env.format_patch(args), theirs)
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn same_bytes_as_the_reference() {
    let test = "same_bytes_as_the_reference";
    if !have_git(test) {
        return;
    }
    let Some(bin) = common::mkit_bin(test) else {
        return;
    };
    let env = Env::new();
    let (a, _) = two_local_commits(&env);
    // More shapes: a large text file (chunked over 1 MiB), a path git quotes,
    // a symlink, and a file turned into a directory.
    let big: String = (0..40_000)
        .map(|i| format!("row {i:06} of the large file\n"))
        .collect();
    env.write("big.txt", big.as_bytes());
    env.write("caf\u{e9} menu.txt", "cr\u{e8}me\n".as_bytes());
    std::os::unix::fs::symlink("README.md", env.work.join("link")).unwrap();
    env.snapshot("Large, quoted and linked\n\nFrom x Thu Jan 1 00:00:00 1970\n");
    env.write(
        "big.txt",
        big.replace("row 020000 ", "ROW 020000 ").as_bytes(),
    );
    fs::remove_file(env.work.join("no-eol.txt")).unwrap();
    env.write("no-eol.txt/inside.txt", b"now a directory\n");
    env.snapshot("Edit the middle of the large file");

    let a_short = a.to_hex()[..8].to_owned();
    for args in [
        vec!["upstream/main..HEAD", "--stdout"],
        vec!["upstream/main", "--stdout"],
        vec!["HEAD~2..HEAD", "--stdout"],
        vec!["HEAD~1", "--stdout"],
        vec![a_short.as_str(), "--stdout"],
        vec!["HEAD..upstream/main", "--stdout"],
        vec!["nope..HEAD", "--stdout"],
        vec!["HEAD~9..HEAD", "--stdout"],
    ] {
        let (ours, theirs) = both(&env, &bin, &args);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert!(
            ours.stdout == theirs.stdout,
            "{args:?}: stdout differs\nours:\n{}\ntheirs:\n{}",
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout)
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&theirs.stderr),
            "{args:?}"
        );
    }

    // Patch files: same names, same bytes.
    let ours_dir = env.root.join("ours");
    let theirs_dir = env.root.join("theirs");
    let (ours, theirs) = both(
        &env,
        &bin,
        &["upstream/main..HEAD", "-o", ours_dir.to_str().unwrap()],
    );
    assert!(ours.status.success() && theirs.status.success());
    assert_eq!(ours.stdout, theirs.stdout);
    let _ = both(
        &env,
        &bin,
        &["upstream/main..HEAD", "-o", theirs_dir.to_str().unwrap()],
    );
    for line in String::from_utf8(ours.stdout).unwrap().lines() {
        assert_eq!(
            fs::read(ours_dir.join(line)).unwrap(),
            fs::read(theirs_dir.join(line)).unwrap(),
            "{line}"
        );
    }

    // And the whole series applies with git am to the work tree's tree.
    let expected = env.work_tree_id();
    let am = env.clone_upstream("am-all");
    let mut args = vec!["am".to_owned(), "--quiet".to_owned()];
    let mut names: Vec<String> = fs::read_dir(&ours_dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    args.extend(names);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    git_ok(&am, &env.home, &args);
    let applied = git_ok(&am, &env.home, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(applied.trim(), expected);
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn binary_refusal_matches_the_reference() {
    let test = "binary_refusal_matches_the_reference";
    if !have_git(test) {
        return;
    }
    let Some(bin) = common::mkit_bin(test) else {
        return;
    };
    let env = Env::new();
    env.write("blob.bin", &[0, 159, 146, 150, 0, 1, 2]);
    env.snapshot("Add binary blob");
    let (ours, theirs) = both(&env, &bin, &["upstream/main..HEAD", "--stdout"]);
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_eq!(ours.stderr, theirs.stderr);
    assert_eq!(ours.stdout, theirs.stdout);
}
