//! Fork mode (`export --passthrough`, SPEC-GIT-BRIDGE §14) and git-bridge/v1
//! attestations (§11) end to end from the CLI: an import, a local commit on
//! top, a passthrough export to a bare clone of the upstream; the refusals
//! (non-fast-forward, an existing tag, a moved lease); `--no-attest` reading
//! no key; a re-export minting nothing; and, when the reference `mkit` is
//! installed, the same mirror refs, SHA-1s and envelope files as
//! `mkit git export --passthrough` from the same state.

use crate::common;
use crate::common::{copy_dir, git_refs, sorted_lines, stderr};

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The seed of the repository key that signs commits and attestations.
const REPO_SEED: [u8; 32] = [0x37; 32];

struct Fork {
    work: tempfile::TempDir,
    /// The upstream (a bare fixture repository).
    src: PathBuf,
    /// The mkit repository imported from it, with a local commit on `main`.
    repo: PathBuf,
}

impl Fork {
    /// Import the `multi-branch` fixture, install a repository key and
    /// commit `local.txt` on top of `main`.
    fn new() -> Fork {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        common::build_fixture("multi-branch", &src);
        let import_key = common::import_key(work.path(), 0x42);
        let repo = work.path().join("repo");
        common::bridge_import(&src, &repo, &import_key);
        let f = Fork { work, src, repo };
        f.install_repo_key();
        f.local_commit("local.txt", b"local work\n", 1_800_000_000);
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    fn key_path(&self) -> PathBuf {
        self.repo.join(".mkit/keys/default.key")
    }

    fn install_repo_key(&self) {
        common::key_file(&self.key_path(), REPO_SEED);
    }

    /// Commit `main`'s current upstream files plus `name` on `main`.
    fn local_commit(&self, name: &str, data: &[u8], ts: u64) {
        self.commit_on("main", &self.path(&format!("tree-{ts}")), name, data, ts);
    }

    /// Commit `branch`'s current upstream files (extracted into `dir`) plus
    /// `name` on `branch`.
    fn commit_on(&self, branch: &str, dir: &Path, name: &str, data: &[u8], ts: u64) {
        common::git_archive(&self.src, &format!("refs/heads/{branch}"), dir);
        fs::write(dir.join(name), data).unwrap();
        common::snapshot(
            dir,
            &self.repo,
            branch,
            "local work\n",
            ts,
            &self.key_path(),
        );
    }

    /// A bare clone of the upstream at `rel`: a GitHub fork stand-in.
    fn fork_dest(&self, rel: &str) -> PathBuf {
        let dest = self.path(rel);
        git(
            self.work.path(),
            &[
                "clone",
                "--bare",
                "--quiet",
                self.src.to_str().unwrap(),
                rel,
            ],
        );
        dest
    }

    fn bridge(&self, args: &[&str]) -> Output {
        common::bridge(&self.repo, args)
    }

    fn passthrough(&self, dest: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["export", "--passthrough", "--remote-name", "upstream"];
        args.extend_from_slice(extra);
        args.push(dest.to_str().unwrap());
        self.bridge(&args)
    }

    fn passthrough_json(&self, dest: &Path, extra: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(extra);
        let out = self.passthrough(dest, &all);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn state(&self) -> PathBuf {
        self.repo.join(".mkit/git/upstream")
    }
}

/// `git -C <dir> <args>` with no global config and the dates fixed; its
/// stdout, trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = common::run_ok(
        common::git_cmd(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_DATE", "1800000500 +0000")
            .env("GIT_COMMITTER_DATE", "1800000500 +0000"),
    );
    String::from_utf8(out).unwrap().trim().to_owned()
}

/// Standard base64 (padded), decoded with coreutils' `base64 -d`.
fn base64_decode(text: &str) -> String {
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The git-bridge/v1 envelopes in a repository's attestation store (the
/// import's git-import/v1 ones are left out).
fn bridge_envelopes(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_under(&repo.join(".mkit/attestations"))
        .into_iter()
        .filter(|(_, bytes)| {
            let env: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            base64_decode(env["payload"].as_str().unwrap()).contains("/git-bridge/v1")
        })
        .collect()
}

/// The attestation stores of `ours` and `theirs` hold the same files, and
/// their states `remote` the same map (as a set of lines) and `files`.
fn assert_same_records(ours: &Path, theirs: &Path, remote: &str, files: &[&str], what: &str) {
    assert_eq!(
        common::files_under(&ours.join(".mkit/attestations")),
        common::files_under(&theirs.join(".mkit/attestations")),
        "{what}: attestations"
    );
    let state = |repo: &Path| repo.join(".mkit/git").join(remote);
    let (a, b) = (state(ours), state(theirs));
    assert_eq!(
        sorted_lines(&a.join("map")),
        sorted_lines(&b.join("map")),
        "{what}: map"
    );
    for name in files {
        assert_eq!(
            fs::read(a.join(name)).unwrap(),
            fs::read(b.join(name)).unwrap(),
            "{what}: {name} differs"
        );
    }
}

/// Our passthrough export (with `extra`) from `f.repo` and the reference's
/// from a copy of it (`theirs`), each to a fresh bare clone of the upstream
/// at the same path (the predicate's `mirror` is the destination as
/// given), one after the other; the destinations' refs and SHA-1s (the
/// attestations chain included), the envelope files and the state files
/// must be the same. Returns our run and the reference's stdout.
fn fork_side_by_side(f: &Fork, mkit: &Path, extra: &[&str]) -> (Output, Vec<u8>) {
    let theirs = f.path("theirs");
    copy_dir(&f.repo, &theirs);
    let dest = f.fork_dest("forkgit");
    let out = f.passthrough(&dest, extra);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours_dest = f.path("forkgit-ours");
    fs::rename(&dest, &ours_dest).unwrap();
    let dest = f.fork_dest("forkgit");
    let reference = common::run_ok(
        Command::new(mkit)
            .args([
                "git",
                "export",
                "--passthrough",
                "--remote-name",
                "upstream",
            ])
            .arg(&dest)
            .current_dir(&theirs),
    );
    assert_eq!(git_refs(&ours_dest), git_refs(&dest));
    assert_same_records(
        &f.repo,
        &theirs,
        "upstream",
        &["refs", "direction", "dest", "refs-import"],
        "fork",
    );
    (out, reference)
}

#[test]
fn a_fork_shares_the_upstream_ids_and_attests_only_the_local_head() {
    let f = Fork::new();
    let dest = f.fork_dest("forkgit");
    let up_before = git_refs(&f.src);
    let report = f.passthrough_json(&dest, &[]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["mode"], "fork", "{report}");

    // main sits directly on the upstream's main: a PR diff is the local work.
    let up_main = git(&f.src, &["rev-parse", "refs/heads/main"]);
    assert_eq!(git(&dest, &["rev-parse", "refs/heads/main^"]), up_main);
    assert_eq!(
        git(&dest, &["merge-base", "refs/heads/main", &up_main]),
        up_main
    );
    // Unchanged content keeps its upstream blob ids in the local tree.
    let local_tree = git(&dest, &["ls-tree", "refs/heads/main"]);
    for line in git(&f.src, &["ls-tree", "refs/heads/main"]).lines() {
        assert!(
            local_tree.contains(line),
            "{line} not reused:\n{local_tree}"
        );
    }
    // Every other ref passed through unchanged: the destination holds the
    // upstream's refs, main moved, and the attestations chain.
    let dest_refs = git_refs(&dest);
    for line in up_before.lines() {
        if !line.starts_with("refs/heads/main ") {
            assert!(dest_refs.contains(line), "{line} moved:\n{dest_refs}");
        }
    }
    git(&dest, &["fsck", "--strict", "--no-dangling"]);
    // Only the translated head is attested; the passthrough heads carry the
    // import's provenance instead.
    let names = git(&dest, &["ls-tree", "--name-only", "refs/mkit/attestations"]);
    assert_eq!(names.lines().count(), 1, "{names}");
    assert_eq!(report["attestations"]["minted"], 1, "{report}");
    let envelope = git(
        &dest,
        &[
            "cat-file",
            "blob",
            &format!("refs/mkit/attestations:{}", names.trim()),
        ],
    );
    let main_sha = git(&dest, &["rev-parse", "refs/heads/main"]);
    let env: serde_json::Value = serde_json::from_str(&envelope).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    // The local store holds the same envelope (beside the import's
    // git-import/v1 ones).
    let stored = bridge_envelopes(&f.repo);
    assert_eq!(stored.len(), 1, "{:?}", stored.keys());
    assert_eq!(stored.values().next().unwrap(), envelope.as_bytes());
    let payload = base64_decode(env["payload"].as_str().unwrap());
    assert!(
        payload.contains(&format!("\"gitCommit\":\"{main_sha}\"")),
        "{payload}"
    );
    assert!(
        payload.contains("\"refName\":\"refs/heads/main\""),
        "{payload}"
    );

    // The import's own refs in staging are untouched; the export staged
    // under refs/mkit-export/.
    let staging = f.state().join("repo.git");
    assert_eq!(git(&staging, &["rev-parse", "refs/heads/main"]), up_main);
    assert_eq!(
        git(&staging, &["rev-parse", "refs/mkit-export/refs/heads/main"]),
        main_sha
    );
    // Direction upgraded to fork, the destination recorded for status.
    assert_eq!(
        fs::read_to_string(f.state().join("direction")).unwrap(),
        "fork\n"
    );
    assert!(f.state().join("dest").exists());
    // The upstream itself never moved.
    assert_eq!(git_refs(&f.src), up_before);
}

#[test]
fn a_fork_refuses_a_branch_that_does_not_fast_forward() {
    let f = Fork::new();
    let dest = f.fork_dest("forkgit");
    // Someone else's work lands on the fork's main.
    let tree = git(&dest, &["rev-parse", "refs/heads/main^{tree}"]);
    let parent = git(&dest, &["rev-parse", "refs/heads/main"]);
    let foreign = git(
        &dest,
        &[
            "commit-tree",
            &tree,
            "-p",
            &parent,
            "-m",
            "remote-side work",
        ],
    );
    git(&dest, &["update-ref", "refs/heads/main", &foreign]);
    let before = git_refs(&dest);
    let state_before = common::files_under(&f.state());

    let out = f.passthrough(&dest, &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("refs/heads/main") && err.contains("has commits this repo has not integrated"),
        "{err}"
    );
    assert!(err.contains("fetch") && err.contains("merge"), "{err}");
    assert_eq!(git_refs(&dest), before, "the fork was touched");
    // Neither the direction nor the leases nor the map moved.
    let after = common::files_under(&f.state());
    for name in ["direction", "refs", "map", "dest"] {
        assert_eq!(after.get(name), state_before.get(name), "{name} changed");
    }
}

#[test]
fn a_fork_never_moves_an_existing_tag() {
    let f = Fork::new();
    let dest = f.fork_dest("forkgit");
    let tags = git(
        &f.src,
        &["for-each-ref", "--format=%(refname)", "refs/tags/"],
    );
    let tag = tags
        .lines()
        .next()
        .expect("the fixture has a tag")
        .to_owned();
    // Point the destination's tag at another object.
    let elsewhere = git(&dest, &["rev-parse", "refs/heads/main^{tree}"]);
    git(&dest, &["update-ref", &tag, &elsewhere]);
    let before = git_refs(&dest);

    let out = f.passthrough(&dest, &[]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&tag) && err.contains("never moves an existing tag"),
        "{err}"
    );
    assert_eq!(git_refs(&dest), before, "something was pushed");
}

#[test]
fn a_fork_re_export_mints_nothing_and_pushes_nothing_new() {
    let f = Fork::new();
    let dest = f.fork_dest("forkgit");
    let first = f.passthrough_json(&dest, &[]);
    assert_eq!(first["attestations"]["minted"], 1, "{first}");
    let refs_before = git_refs(&dest);
    let stored_before = common::files_under(&f.repo.join(".mkit/attestations"));

    let again = f.passthrough_json(&dest, &[]);
    assert_eq!(again["attestations"]["minted"], 0, "{again}");
    assert_eq!(again["attestations"]["git"], first["attestations"]["git"]);
    assert_eq!(again["updated"], 0, "{again}");
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(git_refs(&dest), refs_before);
    assert_eq!(
        common::files_under(&f.repo.join(".mkit/attestations")),
        stored_before
    );

    // New local work: one more envelope, the chain grows by one commit.
    f.local_commit("more.txt", b"more\n", 1_800_000_100);
    let third = f.passthrough_json(&dest, &[]);
    assert_eq!(third["attestations"]["minted"], 1, "{third}");
    let chain = git(&dest, &["rev-list", "refs/mkit/attestations"]);
    assert_eq!(chain.lines().count(), 2, "{chain}");
    let names = git(&dest, &["ls-tree", "--name-only", "refs/mkit/attestations"]);
    assert_eq!(names.lines().count(), 2, "{names}");
}

#[test]
fn no_attest_reads_no_key() {
    let f = Fork::new();
    // An unusable key: wrong size and no permissions at all (root could
    // still read a mode-000 file, not a 5-byte one).
    fs::write(f.key_path(), b"junk!").unwrap();
    fs::set_permissions(f.key_path(), fs::Permissions::from_mode(0o000)).unwrap();

    let dest = f.fork_dest("forkgit");
    let before = git_refs(&dest);
    let out = f.passthrough(&dest, &[]);
    assert!(!out.status.success(), "an unusable key must stop attesting");
    assert!(stderr(&out).contains("bridge signer"), "{}", stderr(&out));
    assert_eq!(git_refs(&dest), before);

    let report = f.passthrough_json(&dest, &["--no-attest"]);
    assert_eq!(report["attestations"], serde_json::Value::Null, "{report}");
    assert!(!git_refs(&dest).contains("refs/mkit/attestations"));
    assert!(bridge_envelopes(&f.repo).is_empty());

    // Plain export too.
    let mirror = f.path("mirror");
    let out = common::bridge(
        &f.repo,
        &["export", "--no-attest", mirror.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!git_refs(&mirror).contains("refs/mkit/attestations"));
    assert!(
        !fs::read_to_string(f.repo.join(".mkit/git/mirror/refs"))
            .unwrap()
            .contains("refs/mkit/attestations")
    );
}

#[test]
fn a_moved_attestations_ref_fails_the_push() {
    let f = Fork::new();
    let mirror = f.path("mirror");
    let out = common::bridge(&f.repo, &["export", "--json", mirror.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mode"], "export");
    let heads = report["exported"].as_array().unwrap().len();
    assert_eq!(report["attestations"]["minted"], heads, "{report}");
    let names = git(
        &mirror,
        &["ls-tree", "--name-only", "refs/mkit/attestations"],
    );
    assert_eq!(names.lines().count(), heads);
    let recorded = fs::read_to_string(f.repo.join(".mkit/git/mirror/refs")).unwrap();
    assert!(
        recorded.contains(&format!(
            "refs/mkit/attestations {} {}",
            "0".repeat(64),
            report["attestations"]["git"].as_str().unwrap()
        )),
        "{recorded}"
    );

    // Someone rewrites the chain on the mirror.
    let tree = git(&mirror, &["rev-parse", "refs/mkit/attestations^{tree}"]);
    let foreign = git(&mirror, &["commit-tree", &tree, "-m", "not ours"]);
    git(&mirror, &["update-ref", "refs/mkit/attestations", &foreign]);
    let before = git_refs(&mirror);

    f.local_commit("late.txt", b"late\n", 1_800_000_200);
    let out = common::bridge(&f.repo, &["export", mirror.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refs/mkit/attestations"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(git_refs(&mirror), before, "something was applied");
}

#[test]
fn plain_export_toward_the_import_source_names_fork_mode() {
    let f = Fork::new();
    let out = common::bridge(&f.repo, &["export", f.src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("recorded git-import source"), "{err}");
    assert!(
        err.contains("--passthrough --remote-name upstream"),
        "{err}"
    );
    // Fork mode through another state toward it is refused too, and leaves
    // no destination record behind.
    let out = common::bridge(
        &f.repo,
        &[
            "export",
            "--passthrough",
            "--remote-name",
            "mirror",
            f.src.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("recorded git-import source"));
    // Fork mode needs an import state.
    let out = common::bridge(
        &f.repo,
        &[
            "export",
            "--passthrough",
            "--remote-name",
            "nope",
            f.path("d").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("requires import state"));
    assert!(!f.state().join("dest").exists());
}

#[test]
fn fork_mode_refuses_a_normalized_import() {
    let f = Fork::new();
    fs::write(f.state().join("normalized"), "1\n").unwrap();
    let dest = f.fork_dest("forkgit");
    let out = f.passthrough(&dest, &[]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("historic-mode-normalized"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(f.state().join("direction")).unwrap(),
        "import\n"
    );
}

/// The reference from the same state: same refs and SHA-1s on the
/// destination (attestations chain included), same envelope files, same
/// state files.
#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn the_reference_forks_identically() {
    let Some(mkit) = common::mkit_bin("the_reference_forks_identically") else {
        return;
    };
    let f = Fork::new();
    fork_side_by_side(&f, &mkit, &[]);
    // Both tools' fork audit pass on the fork we made.
    let theirs_audit = Command::new(&mkit)
        .args(["git", "verify", "--fork-audit", "--remote-name", "upstream"])
        .current_dir(&f.repo)
        .output()
        .unwrap();
    assert!(theirs_audit.status.success(), "{}", stderr(&theirs_audit));
    let ours_audit = f.bridge(&["verify", "--fork-audit", "--remote-name", "upstream"]);
    assert!(ours_audit.status.success(), "{}", stderr(&ours_audit));
    assert!(
        stderr(&ours_audit).contains("1 bridge-translated (0 unsigned)"),
        "{}",
        stderr(&ours_audit)
    );
}

/// Plain export with attestations, side by side with `mkit git export`
/// (not `--no-attest`): two rounds, then a no-change round that mints
/// nothing. Both push to the same path in turn (the predicate's `mirror`).
#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn the_reference_exports_with_identical_attestations() {
    let Some(mkit) = common::mkit_bin("the_reference_exports_with_identical_attestations") else {
        return;
    };
    let f = Fork::new();
    let theirs = f.path("theirs");
    copy_dir(&f.repo, &theirs);
    let mirror = f.path("mirror");
    let (ours_parked, theirs_parked) = (f.path("mirror-ours"), f.path("mirror-theirs"));
    let round = |name: &str, minted: u64| {
        if ours_parked.exists() {
            fs::rename(&ours_parked, &mirror).unwrap();
        }
        let out = common::bridge(&f.repo, &["export", "--json", mirror.to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["attestations"]["minted"], minted, "{name}: {report}");
        fs::rename(&mirror, &ours_parked).unwrap();
        if theirs_parked.exists() {
            fs::rename(&theirs_parked, &mirror).unwrap();
        }
        common::run_ok(
            Command::new(&mkit)
                .args(["git", "export"])
                .arg(&mirror)
                .current_dir(&theirs),
        );
        fs::rename(&mirror, &theirs_parked).unwrap();
        assert_eq!(git_refs(&ours_parked), git_refs(&theirs_parked), "{name}");
        assert!(git_refs(&ours_parked).contains("refs/mkit/attestations"));
        assert_same_records(&f.repo, &theirs, "mirror", &["refs"], name);
    };
    // main and the three tags.
    round("first", 4);
    // The same new commit on both sides: ours made it, theirs gets a copy
    // of the whole repository (the states were just checked equal).
    f.local_commit("more.txt", b"more\n", 1_800_000_100);
    fs::remove_dir_all(theirs.join(".mkit")).unwrap();
    copy_dir(&f.repo.join(".mkit"), &theirs.join(".mkit"));
    round("second", 1);
    // Nothing new: nothing minted, nothing moved.
    round("third", 0);
}

/// The same comparison on a real history: set `MKIT_BRIDGE_FORK_UPSTREAM`
/// to a bare repository (ripgrep's: `/work/data/ripgrep.git`) and run with
/// `--ignored`. Imports it, commits one file on the default branch, and
/// checks that our passthrough export and the reference's give the same
/// refs, SHA-1s, envelopes and state.
#[test]
#[ignore = "needs MKIT_BRIDGE_FORK_UPSTREAM and the reference mkit; slow"]
fn a_real_history_forks_identically() {
    let Some(mkit) = common::mkit_bin("a_real_history_forks_identically") else {
        return;
    };
    let Some(upstream) = std::env::var_os("MKIT_BRIDGE_FORK_UPSTREAM").map(PathBuf::from) else {
        common::skip::<()>(
            "a_real_history_forks_identically",
            "MKIT_BRIDGE_FORK_UPSTREAM is not set",
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let key = common::import_key(work.path(), 0x42);
    let repo = work.path().join("repo");
    common::bridge_import(&upstream, &repo, &key);
    let head = fs::read_to_string(repo.join(".mkit/HEAD")).unwrap();
    let branch = head
        .trim()
        .strip_prefix("ref: refs/heads/")
        .unwrap()
        .to_owned();
    let f = Fork {
        src: upstream.clone(),
        repo,
        work,
    };
    f.install_repo_key();
    f.commit_on(
        &branch,
        &f.path("tree"),
        "LOCAL.md",
        b"local work\n",
        1_800_000_000,
    );
    let (out, reference) = fork_side_by_side(&f, &mkit, &["--quiet"]);
    assert_eq!(out.stdout, reference, "stdout differs");
}
