//! Fork mode (`export --passthrough`, SPEC-GIT-BRIDGE §14) and git-bridge/v1
//! attestations (§11) end to end from the CLI: an import, a local commit on
//! top, a passthrough export to a bare clone of the upstream; the refusals
//! (non-fast-forward, an existing tag, a moved lease); `--no-attest` reading
//! no key; a re-export minting nothing; and, when the reference `mkit` is
//! installed, the same mirror refs, SHA-1s and envelope files as
//! `mkit git export --passthrough` from the same state.

use crate::common;

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
        let keys = self.repo.join(".mkit/keys");
        fs::create_dir_all(&keys).unwrap();
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(self.key_path(), REPO_SEED).unwrap();
        fs::set_permissions(self.key_path(), fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Commit `main`'s current upstream files plus `name` on `main`.
    fn local_commit(&self, name: &str, data: &[u8], ts: u64) {
        let dir = self.path(&format!("tree-{ts}"));
        fs::create_dir_all(&dir).unwrap();
        let tar = common::run_ok(
            Command::new("git")
                .arg("-C")
                .arg(&self.src)
                .args(["archive", "refs/heads/main"]),
        );
        let mut untar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(untar.stdin.as_mut().unwrap(), &tar).unwrap();
        assert!(untar.wait().unwrap().success());
        fs::write(dir.join(name), data).unwrap();
        common::run_ok(
            Command::new(common::bridge_bin())
                .arg("snapshot")
                .arg(&dir)
                .arg("--repo")
                .arg(&self.repo)
                .args(["--branch", "main", "-m", "local work\n", "--timestamp"])
                .arg(ts.to_string())
                .arg("--key")
                .arg(self.key_path()),
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
        bridge_in(&self.repo, args)
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

fn bridge_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::bridge_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = common::run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Someone")
            .env("GIT_AUTHOR_EMAIL", "someone@example.com")
            .env("GIT_COMMITTER_NAME", "Someone")
            .env("GIT_COMMITTER_EMAIL", "someone@example.com")
            .env("GIT_AUTHOR_DATE", "1800000500 +0000")
            .env("GIT_COMMITTER_DATE", "1800000500 +0000"),
    );
    String::from_utf8(out).unwrap().trim().to_owned()
}

/// `ref sha1` of every ref, one per line.
fn refs_of(dir: &Path) -> String {
    git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir`: relative path -> bytes.
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

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn a_fork_shares_the_upstream_ids_and_attests_only_the_local_head() {
    let f = Fork::new();
    let dest = f.fork_dest("forkgit");
    let up_before = refs_of(&f.src);
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
    let dest_refs = refs_of(&dest);
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
    assert_eq!(refs_of(&f.src), up_before);
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
    let before = refs_of(&dest);
    let state_before = common::files_under(&f.state());

    let out = f.passthrough(&dest, &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("refs/heads/main") && err.contains("has commits this repo has not integrated"),
        "{err}"
    );
    assert!(err.contains("fetch") && err.contains("merge"), "{err}");
    assert_eq!(refs_of(&dest), before, "the fork was touched");
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
    let before = refs_of(&dest);

    let out = f.passthrough(&dest, &[]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&tag) && err.contains("never moves an existing tag"),
        "{err}"
    );
    assert_eq!(refs_of(&dest), before, "something was pushed");
}

#[test]
fn a_fork_re_export_mints_nothing_and_pushes_nothing_new() {
    let f = Fork::new();
    let dest = f.fork_dest("forkgit");
    let first = f.passthrough_json(&dest, &[]);
    assert_eq!(first["attestations"]["minted"], 1, "{first}");
    let refs_before = refs_of(&dest);
    let stored_before = common::files_under(&f.repo.join(".mkit/attestations"));

    let again = f.passthrough_json(&dest, &[]);
    assert_eq!(again["attestations"]["minted"], 0, "{again}");
    assert_eq!(again["attestations"]["git"], first["attestations"]["git"]);
    assert_eq!(again["updated"], 0, "{again}");
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(refs_of(&dest), refs_before);
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
    let before = refs_of(&dest);
    let out = f.passthrough(&dest, &[]);
    assert!(!out.status.success(), "an unusable key must stop attesting");
    assert!(stderr(&out).contains("bridge signer"), "{}", stderr(&out));
    assert_eq!(refs_of(&dest), before);

    let report = f.passthrough_json(&dest, &["--no-attest"]);
    assert_eq!(report["attestations"], serde_json::Value::Null, "{report}");
    assert!(!refs_of(&dest).contains("refs/mkit/attestations"));
    assert!(bridge_envelopes(&f.repo).is_empty());

    // Plain export too.
    let mirror = f.path("mirror");
    let out = bridge_in(
        &f.repo,
        &["export", "--no-attest", mirror.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!refs_of(&mirror).contains("refs/mkit/attestations"));
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
    let out = bridge_in(&f.repo, &["export", "--json", mirror.to_str().unwrap()]);
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
    let before = refs_of(&mirror);

    f.local_commit("late.txt", b"late\n", 1_800_000_200);
    let out = bridge_in(&f.repo, &["export", mirror.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refs/mkit/attestations"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(refs_of(&mirror), before, "something was applied");
}

#[test]
fn plain_export_toward_the_import_source_names_fork_mode() {
    let f = Fork::new();
    let out = bridge_in(&f.repo, &["export", f.src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("recorded git-import source"), "{err}");
    assert!(
        err.contains("--passthrough --remote-name upstream"),
        "{err}"
    );
    // Fork mode through another state toward it is refused too, and leaves
    // no destination record behind.
    let out = bridge_in(
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
    let out = bridge_in(
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
    let theirs = f.path("theirs");
    common::run_ok(Command::new("cp").arg("-a").arg(&f.repo).arg(&theirs));

    // Both push to the same path (the predicate's `mirror` is the
    // destination as given), one after the other.
    let dest = f.fork_dest("forkgit");
    let out = f.passthrough(&dest, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours_dest = f.path("forkgit-ours");
    fs::rename(&dest, &ours_dest).unwrap();
    let dest = f.fork_dest("forkgit");
    common::run_ok(
        Command::new(&mkit)
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
    assert_eq!(refs_of(&ours_dest), refs_of(&dest));
    assert_eq!(
        common::files_under(&f.repo.join(".mkit/attestations")),
        common::files_under(&theirs.join(".mkit/attestations"))
    );
    let (a, b) = (f.state(), theirs.join(".mkit/git/upstream"));
    assert_eq!(sorted_lines(&a.join("map")), sorted_lines(&b.join("map")));
    for name in ["refs", "direction", "dest", "refs-import"] {
        assert_eq!(
            fs::read(a.join(name)).unwrap(),
            fs::read(b.join(name)).unwrap(),
            "{name} differs"
        );
    }
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
    common::run_ok(Command::new("cp").arg("-a").arg(&f.repo).arg(&theirs));
    let mirror = f.path("mirror");
    let (ours_parked, theirs_parked) = (f.path("mirror-ours"), f.path("mirror-theirs"));
    let round = |name: &str, minted: u64| {
        if ours_parked.exists() {
            fs::rename(&ours_parked, &mirror).unwrap();
        }
        let out = bridge_in(&f.repo, &["export", "--json", mirror.to_str().unwrap()]);
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
        assert_eq!(refs_of(&ours_parked), refs_of(&theirs_parked), "{name}");
        assert!(refs_of(&ours_parked).contains("refs/mkit/attestations"));
        assert_eq!(
            common::files_under(&f.repo.join(".mkit/attestations")),
            common::files_under(&theirs.join(".mkit/attestations")),
            "{name}"
        );
        let (a, b) = (
            f.repo.join(".mkit/git/mirror"),
            theirs.join(".mkit/git/mirror"),
        );
        assert_eq!(
            fs::read(a.join("refs")).unwrap(),
            fs::read(b.join("refs")).unwrap()
        );
        assert_eq!(sorted_lines(&a.join("map")), sorted_lines(&b.join("map")));
    };
    // main and the three tags.
    round("first", 4);
    // The same new commit on both sides: ours made it, theirs gets a copy
    // of the whole repository (the states were just checked equal).
    f.local_commit("more.txt", b"more\n", 1_800_000_100);
    fs::remove_dir_all(theirs.join(".mkit")).unwrap();
    common::run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(f.repo.join(".mkit"))
            .arg(theirs.join(".mkit")),
    );
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
    let tree = f.path("tree");
    fs::create_dir_all(&tree).unwrap();
    let tar = common::run_ok(
        Command::new("git")
            .arg("-C")
            .arg(&upstream)
            .args(["archive", &format!("refs/heads/{branch}")]),
    );
    let mut untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&tree)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(untar.stdin.as_mut().unwrap(), &tar).unwrap();
    assert!(untar.wait().unwrap().success());
    fs::write(tree.join("LOCAL.md"), "local work\n").unwrap();
    common::run_ok(
        Command::new(common::bridge_bin())
            .arg("snapshot")
            .arg(&tree)
            .arg("--repo")
            .arg(&f.repo)
            .args([
                "--branch",
                &branch,
                "-m",
                "local work\n",
                "--timestamp",
                "1800000000",
            ])
            .arg("--key")
            .arg(f.key_path()),
    );
    let theirs = f.path("theirs");
    common::run_ok(Command::new("cp").arg("-a").arg(&f.repo).arg(&theirs));
    let dest = f.fork_dest("forkgit");
    let out = f.passthrough(&dest, &["--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours_dest = f.path("forkgit-ours");
    fs::rename(&dest, &ours_dest).unwrap();
    let dest = f.fork_dest("forkgit");
    let reference = common::run_ok(
        Command::new(&mkit)
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
    assert_eq!(out.stdout, reference, "stdout differs");
    assert_eq!(refs_of(&ours_dest), refs_of(&dest));
    assert_eq!(
        common::files_under(&f.repo.join(".mkit/attestations")),
        common::files_under(&theirs.join(".mkit/attestations"))
    );
    let (a, b) = (f.state(), theirs.join(".mkit/git/upstream"));
    assert_eq!(sorted_lines(&a.join("map")), sorted_lines(&b.join("map")));
    assert_eq!(
        fs::read(a.join("refs")).unwrap(),
        fs::read(b.join("refs")).unwrap()
    );
}
