//! `verify` as 0.5.0 does it, end to end: imported heads need a verified
//! git-import/v1 claim, imported (and, with `--fork-audit`, bridge) trees and
//! blobs are re-derived from their git bytes and compared with their twins,
//! and every tamper the reference detects is detected by ours with the same
//! `FAIL` lines and exit code. States made by the reference `mkit` (an import,
//! and a fork: import, commit, `mkit git export --passthrough`) are checked by
//! both tools side by side; our own import is checked by both tools when our
//! importer mints attestations.

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mkit_bridge::attest::{Envelope, EnvelopeSignature, decode_envelope, encode_envelope, keyid};
use mkit_bridge::mkit::sign::KeyPair;

/// A scratch area with a git upstream: two commits and an annotated tag,
/// at pinned dates (the reference suite's fixture, plus a third commit).
struct Fixture {
    root: tempfile::TempDir,
    home: tempfile::TempDir,
}

fn git_in(dir: &Path, args: &[&str]) -> Output {
    common::up_stream_env(Command::new("git").arg("-C").arg(dir).args(args))
        .output()
        .expect("spawn git")
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_in(dir, args);
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `FAIL` lines of a verify run, as a set.
fn fails(out: &Output) -> BTreeSet<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("FAIL "))
        .map(str::to_owned)
        .collect()
}

/// The last line of a run's stderr (the summary or the error).
fn last_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or("").to_owned()
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            root: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        let up = f.upstream();
        fs::create_dir_all(&up).unwrap();
        git_ok(&up, &["init", "--quiet", "--initial-branch=main", "."]);
        for (file, text, msg) in [
            ("a.txt", "hello\n", "upstream first"),
            ("b.txt", "world\n", "upstream second"),
        ] {
            fs::write(up.join(file), text).unwrap();
            git_ok(&up, &["add", file]);
            git_ok(&up, &["commit", "--quiet", "-m", msg]);
        }
        git_ok(&up, &["tag", "-a", "v1", "-m", "release"]);
        fs::write(up.join("third.txt"), "third\n").unwrap();
        git_ok(&up, &["add", "third.txt"]);
        git_ok(&up, &["commit", "--quiet", "-m", "upstream third"]);
        f
    }

    fn upstream(&self) -> PathBuf {
        self.root.path().join("upstream")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// The reference `mkit`, with its own HOME.
    fn mkit(&self, bin: &Path, cwd: &Path, args: &[&str]) -> Output {
        Command::new(bin)
            .args(args)
            .current_dir(cwd)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("EDITOR", "true")
            .stdin(Stdio::null())
            .output()
            .expect("spawn mkit")
    }

    fn mkit_ok(&self, bin: &Path, cwd: &Path, args: &[&str]) -> Output {
        let out = self.mkit(bin, cwd, args);
        assert!(out.status.success(), "mkit {args:?}: {}", stderr(&out));
        out
    }

    /// Our binary, with the same HOME.
    fn ours(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(common::bridge_bin())
            .args(args)
            .current_dir(cwd)
            .env("HOME", self.home.path())
            .stdin(Stdio::null())
            .output()
            .expect("spawn mkit-bridge")
    }

    /// `mkit git import <upstream> <rel>` by the reference.
    fn reference_import(&self, bin: &Path, rel: &str) -> PathBuf {
        let up = self.upstream();
        self.mkit_ok(
            bin,
            self.root.path(),
            &["git", "import", up.to_str().unwrap(), rel],
        );
        self.path(rel)
    }

    /// A reference fork: import, one local commit adding `local.txt`, and a
    /// passthrough export to a bare clone of the upstream.
    fn reference_fork(&self, bin: &Path, rel: &str) -> PathBuf {
        let fork = self.reference_import(bin, rel);
        self.mkit_ok(bin, &fork, &["keygen"]);
        fs::write(fork.join("local.txt"), "l\n").unwrap();
        self.mkit_ok(bin, &fork, &["add", "local.txt"]);
        self.mkit_ok(bin, &fork, &["commit", "-m", "local work"]);
        let bare = self.path(&format!("{rel}-git"));
        git_ok(
            self.root.path(),
            &[
                "clone",
                "--bare",
                "--quiet",
                self.upstream().to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        self.mkit_ok(
            bin,
            &fork,
            &[
                "git",
                "export",
                "--passthrough",
                "--remote-name",
                "upstream",
                bare.to_str().unwrap(),
            ],
        );
        fork
    }

    /// Our own import of the upstream into `rel`, with a fixed key.
    fn our_import(&self, rel: &str) -> PathBuf {
        let key = common::import_key(&self.path(&format!("{rel}-keys")), 0x5a);
        let repo = self.path(rel);
        common::bridge_import(&self.upstream(), &repo, &key);
        repo
    }

    /// The upstream's commits, oldest first.
    fn upstream_commits(&self) -> Vec<String> {
        git_ok(&self.upstream(), &["rev-list", "--reverse", "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The map of state `upstream` in `repo`, as rows of (blake3, sha1).
fn map_rows(repo: &Path) -> Vec<(String, String)> {
    fs::read_to_string(repo.join(".mkit/git/upstream/map"))
        .unwrap()
        .lines()
        .map(|l| {
            let (b, s) = l.split_once(' ').unwrap();
            (b.to_owned(), s.to_owned())
        })
        .collect()
}

fn write_map(repo: &Path, rows: &[(String, String)]) {
    let text: String = rows.iter().map(|(b, s)| format!("{b} {s}\n")).collect();
    fs::write(repo.join(".mkit/git/upstream/map"), text).unwrap();
}

/// Point the map's `a` and `b` sha1s at each other's twins.
fn swap_twins(repo: &Path, a: &str, b: &str) {
    let mut rows = map_rows(repo);
    let ia = rows.iter().position(|r| r.1 == a).unwrap();
    let ib = rows.iter().position(|r| r.1 == b).unwrap();
    let twin = rows[ia].0.clone();
    rows[ia].0 = rows[ib].0.clone();
    rows[ib].0 = twin;
    write_map(repo, &rows);
}

/// Point the map's `sha1` at `twin`.
fn remap(repo: &Path, sha1: &str, twin: &str) {
    let mut rows = map_rows(repo);
    for r in rows.iter_mut().filter(|r| r.1 == sha1) {
        r.0 = twin.to_owned();
    }
    write_map(repo, &rows);
}

/// The mkit id a ref file of `repo` holds.
fn mkit_ref(repo: &Path, name: &str) -> String {
    fs::read_to_string(repo.join(".mkit").join(name))
        .unwrap()
        .trim()
        .to_owned()
}

/// The sha1 of `path` in `rev` of the upstream.
fn upstream_object(f: &Fixture, spec: &str) -> String {
    git_ok(&f.upstream(), &["rev-parse", spec])
        .trim()
        .to_owned()
}

/// Replace the attestations of mkit object `subject` in `repo` with copies
/// of those of `other`.
fn transplant_attestations(repo: &Path, subject: &str, other: &str) {
    let dir = repo.join(".mkit/attestations");
    let target = dir.join(subject);
    let donor: Vec<PathBuf> = fs::read_dir(dir.join(other))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!donor.is_empty(), "{other} has no attestation to copy");
    fs::remove_dir_all(&target).unwrap();
    fs::create_dir(&target).unwrap();
    for p in donor {
        fs::copy(&p, target.join(p.file_name().unwrap())).unwrap();
    }
}

/// Replace every signature on the attestations of `subject` in `repo` by
/// one of `key` over the same payload: the same claim, another signer.
fn resign_attestations(repo: &Path, subject: &str, key: &KeyPair) {
    let dir = repo.join(".mkit/attestations").join(subject);
    for e in fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let env = decode_envelope(&fs::read(&path).unwrap()).unwrap();
        let sig = key.sign_message(&env.pae());
        let forged = Envelope {
            payload_type: env.payload_type.clone(),
            payload: env.payload.clone(),
            signatures: vec![EnvelopeSignature {
                keyid: keyid(&key.public()),
                sig: sig.to_vec(),
            }],
        };
        fs::write(&path, encode_envelope(&forged).unwrap()).unwrap();
    }
}

/// Both tools on `repo` with `args`: same exit code and the same `FAIL`
/// lines (ours may add lines only for checks 0.5.0 lacks, marked "ours").
fn same_verdict(f: &Fixture, bin: &Path, repo: &Path, args: &[&str]) -> (Output, Output) {
    let mut theirs_args = vec!["git"];
    theirs_args.extend_from_slice(args);
    let theirs = f.mkit(bin, repo, &theirs_args);
    let ours = f.ours(repo, args);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{args:?}\nours:\n{}\ntheirs:\n{}",
        stderr(&ours),
        stderr(&theirs)
    );
    let our_fails: BTreeSet<String> = fails(&ours)
        .into_iter()
        .filter(|l| !l.contains("(ours:"))
        .collect();
    assert_eq!(
        our_fails,
        fails(&theirs),
        "{args:?}\nours:\n{}\ntheirs:\n{}",
        stderr(&ours),
        stderr(&theirs)
    );
    assert_eq!(last_line(&ours), last_line(&theirs), "{args:?}");
    (ours, theirs)
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn our_verify_passes_on_a_reference_import_and_fork() {
    let Some(bin) = common::mkit_bin("our_verify_passes_on_a_reference_import_and_fork") else {
        return;
    };
    let f = Fixture::new();
    let fork = f.reference_import(&bin, "fork");
    for args in [&["verify"][..], &["verify", "--fork-audit"]] {
        let (ours, _) = same_verdict(&f, &bin, &fork, args);
        assert!(ours.status.success(), "{args:?}: {}", stderr(&ours));
        assert!(
            last_line(&ours).contains("0 bridge-translated (0 unsigned), 4 imported-vouched"),
            "{}",
            stderr(&ours)
        );
    }
    let forked = f.reference_fork(&bin, "forked");
    let (ours, _) = same_verdict(&f, &bin, &forked, &["verify", "--fork-audit"]);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let summary = last_line(&ours);
    assert!(
        summary.starts_with("ok: 1 bridge-translated (0 unsigned), 4 imported-vouched, ")
            && summary.ends_with(" content-derived"),
        "{summary}"
    );
    // Our --deep on a fork is the fork audit (§14.3: a fork is not wholly
    // §9-reconstructible), and passes too.
    let deep = f.ours(&forked, &["verify", "--deep"]);
    assert!(deep.status.success(), "{}", stderr(&deep));
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn tampered_reference_imports_fail_alike() {
    let Some(bin) = common::mkit_bin("tampered_reference_imports_fail_alike") else {
        return;
    };
    let f = Fixture::new();
    let commits = f.upstream_commits();
    let args = ["verify", "--fork-audit", "--ref", "refs/heads/main"];

    // Swapped intermediate mappings: two valid signed twins, exchanged.
    let repo = f.reference_import(&bin, "swapped");
    swap_twins(&repo, &commits[0], &commits[1]);
    let (ours, _) = same_verdict(&f, &bin, &repo, &args);
    assert_eq!(ours.status.code(), Some(65));
    assert!(
        stderr(&ours).contains("signed twin is NOT the translation of the retained Git bytes"),
        "{}",
        stderr(&ours)
    );

    // A valid attestation about another subject (the tag) on the head.
    let repo = f.reference_import(&bin, "unrelated");
    let head = mkit_ref(&repo, "refs/remotes/upstream/main");
    let tag = mkit_ref(&repo, "refs/tags/v1");
    transplant_attestations(&repo, &head, &tag);
    let (ours, _) = same_verdict(&f, &bin, &repo, &args);
    assert!(
        fails(&ours).contains(&format!(
            "FAIL {} no verified git-import/v1 attestation matches this head, ref and source",
            commits[2]
        )),
        "{}",
        stderr(&ours)
    );

    // The very claim the head carries, signed by another key instead.
    let repo = f.reference_import(&bin, "wrongkey");
    let head = mkit_ref(&repo, "refs/remotes/upstream/main");
    resign_attestations(&repo, &head, &KeyPair::from_seed(&[0x77; 32]));
    let (ours, _) = same_verdict(&f, &bin, &repo, &args);
    assert_eq!(
        fails(&ours),
        BTreeSet::from([format!(
            "FAIL {} no verified git-import/v1 attestation matches this head, ref and source",
            commits[2]
        )])
    );

    // A blob mapped to another blob's twin.
    let repo = f.reference_import(&bin, "blob");
    let a = upstream_object(&f, "main:a.txt");
    let b = upstream_object(&f, "main:b.txt");
    swap_twins(&repo, &a, &b);
    let (ours, _) = same_verdict(&f, &bin, &repo, &["verify"]);
    assert!(
        fails(&ours).contains(&format!(
            "FAIL {a} content twin is NOT the translation of the Git bytes"
        )),
        "{}",
        stderr(&ours)
    );

    // Retained raw bytes replaced.
    let repo = f.reference_import(&bin, "raw");
    let raw = repo
        .join(".mkit/git/upstream/raw")
        .join(&commits[1][..2])
        .join(&commits[1][2..]);
    fs::write(&raw, b"blob 5\0junk\n").unwrap();
    let (ours, _) = same_verdict(&f, &bin, &repo, &["verify"]);
    assert!(
        stderr(&ours).contains(&format!(
            "FAIL {} retained raw bytes hash to a DIFFERENT sha1 or differ from staging",
            commits[1]
        )),
        "{}",
        stderr(&ours)
    );
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn a_fork_whose_bridge_tree_does_not_rederive_fails_only_the_fork_audit() {
    let Some(bin) = common::mkit_bin("a_fork_whose_bridge_tree_does_not_rederive") else {
        return;
    };
    let f = Fixture::new();
    let fork = f.reference_fork(&bin, "fork");
    // local.txt exists only under the bridge commit; point its sha1 at the
    // twin of another blob, so the bridge tree no longer re-derives.
    let local = git_ok(
        &fork,
        &[
            "--git-dir",
            ".mkit/git/upstream/repo.git",
            "rev-parse",
            "refs/mkit-export/refs/heads/main:local.txt",
        ],
    )
    .trim()
    .to_owned();
    let a = upstream_object(&f, "main:a.txt");
    let a_twin = map_rows(&fork)
        .into_iter()
        .find(|r| r.1 == a)
        .map(|r| r.0)
        .unwrap();
    remap(&fork, &local, &a_twin);
    let (plain, _) = same_verdict(&f, &bin, &fork, &["verify"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let (audit, _) = same_verdict(&f, &bin, &fork, &["verify", "--fork-audit"]);
    assert_eq!(audit.status.code(), Some(65));
    assert!(
        fails(&audit).contains(&format!(
            "FAIL {local} content twin is NOT the translation of the Git bytes"
        )),
        "{}",
        stderr(&audit)
    );
}

#[test]
fn tampers_on_our_own_import_are_caught() {
    let f = Fixture::new();
    let commits = f.upstream_commits();
    let code_and_err = |repo: &Path, args: &[&str]| {
        let out = f.ours(repo, args);
        (out.status.code(), stderr(&out))
    };

    let repo = f.our_import("swapped");
    swap_twins(&repo, &commits[0], &commits[1]);
    let (code, err) = code_and_err(&repo, &["verify", "--fork-audit"]);
    assert_eq!(code, Some(65), "{err}");
    for c in &commits[..2] {
        assert!(
            err.contains(&format!(
                "FAIL {c} signed twin is NOT the translation of the retained Git bytes"
            )),
            "{err}"
        );
    }

    let repo = f.our_import("blob");
    let a = upstream_object(&f, "main:a.txt");
    let b = upstream_object(&f, "main:b.txt");
    swap_twins(&repo, &a, &b);
    let (code, err) = code_and_err(&repo, &["verify"]);
    assert_eq!(code, Some(65), "{err}");
    for blob in [&a, &b] {
        assert!(
            err.contains(&format!(
                "FAIL {blob} content twin is NOT the translation of the Git bytes"
            )),
            "{err}"
        );
    }

    // A stored blob twin whose bytes changed on disk.
    let repo = f.our_import("stored");
    let a_twin = map_rows(&repo)
        .into_iter()
        .find(|r| r.1 == a)
        .map(|r| r.0)
        .unwrap();
    let path = repo
        .join(".mkit/objects")
        .join(&a_twin[..2])
        .join(&a_twin[2..]);
    let mut bytes = fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let mut perms = fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&path, perms).unwrap();
    fs::write(&path, bytes).unwrap();
    let (code, err) = code_and_err(&repo, &["verify"]);
    assert_eq!(code, Some(65), "{err}");
    assert!(err.contains(&format!("FAIL {a} ")), "{err}");

    let repo = f.our_import("raw");
    let raw = repo
        .join(".mkit/git/upstream/raw")
        .join(&commits[2][..2])
        .join(&commits[2][2..]);
    fs::write(&raw, b"blob 5\0junk\n").unwrap();
    let (code, err) = code_and_err(&repo, &["verify"]);
    assert_eq!(code, Some(65), "{err}");
    assert!(
        err.contains(&format!(
            "FAIL {} retained raw bytes hash to a DIFFERENT sha1 or differ from staging",
            commits[2]
        )),
        "{err}"
    );

    // A wrong pinned key: every imported twin is signed by another key.
    let repo = f.our_import("pinned");
    fs::write(
        repo.join(".mkit/git/upstream/signer"),
        format!("{}\n", "11".repeat(32)),
    )
    .unwrap();
    let (code, err) = code_and_err(&repo, &["verify"]);
    assert_eq!(code, Some(65), "{err}");
    assert!(
        err.contains(&format!(
            "FAIL {} twin signer is NOT the pinned importer key",
            commits[2]
        )),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn our_import_verifies_with_both_tools() {
    let f = Fixture::new();
    let repo = f.our_import("ours");
    if !repo.join(".mkit/attestations").is_dir() {
        common::skip::<()>(
            "our_import_verifies_with_both_tools",
            "this build's importer mints no git-import/v1 attestation yet",
        );
        return;
    }
    for args in [&["verify"][..], &["verify", "--fork-audit"]] {
        let ours = f.ours(&repo, args);
        assert!(ours.status.success(), "{args:?}: {}", stderr(&ours));
        assert!(
            last_line(&ours).contains("0 bridge-translated (0 unsigned), 4 imported-vouched"),
            "{}",
            stderr(&ours)
        );
    }
    let Some(bin) = common::mkit_bin("our_import_verifies_with_both_tools") else {
        return;
    };
    for args in [&["verify"][..], &["verify", "--fork-audit"]] {
        let (ours, _) = same_verdict(&f, &bin, &repo, args);
        assert!(ours.status.success(), "{args:?}: {}", stderr(&ours));
    }
}

#[test]
fn state_resolution_errors_match_the_reference() {
    let f = Fixture::new();
    let repo = f.our_import("repo");
    let out = f.ours(&repo, &["verify", "--remote-name", "nope"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        stderr(&out).contains("no bridge state for 'nope'"),
        "{}",
        stderr(&out)
    );
    let out = f.ours(&repo, &["verify", "--ref", "refs/heads/nope"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("refs/heads/nope: not recorded in state 'upstream'"),
        "{}",
        stderr(&out)
    );
    fs::create_dir_all(repo.join(".mkit/git/second")).unwrap();
    let out = f.ours(&repo, &["verify"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out)
            .contains("multiple bridge states (second, upstream); pick one with --remote-name"),
        "{}",
        stderr(&out)
    );
    // A state imported under another import-spec version is not audited.
    fs::write(repo.join(".mkit/git/upstream/import-spec"), "2\n").unwrap();
    let out = f.ours(&repo, &["verify", "--remote-name", "upstream"]);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains("unsupported import-spec version for audit"),
        "{}",
        stderr(&out)
    );
}
