//! Export to a local bare destination without `git push` (the direct route,
//! `src/git/local.rs`): which destinations take it, that the mirror it
//! makes has the same refs as a `git push` export and passes `git fsck
//! --strict`, that re-exports place only the new pack, that leases and
//! atomicity hold as with the push, and that hooks, non-bare repositories
//! and `file://` URLs keep going through `git push`.

use crate::common;
use crate::common::{copy_dir, git_refs, pseudo_random, stderr};

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mkit_bridge::mkit::refs::{self, RefCondition};

const SEED: [u8; 32] = [0x42; 32];

struct Work {
    dir: tempfile::TempDir,
    key: PathBuf,
    /// A directory holding a `git` that logs every invocation to `git.log`
    /// beside it, then runs the real git.
    shim: PathBuf,
}

fn work() -> Work {
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(&dir.path().join("keys/k"), SEED);
    let real = String::from_utf8(common::run_ok(
        Command::new("sh").args(["-c", "command -v git"]),
    ))
    .unwrap();
    let shim = dir.path().join("shim");
    fs::create_dir(&shim).unwrap();
    let log = shim.join("git.log");
    fs::write(
        shim.join("git"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.trim()
        ),
    )
    .unwrap();
    fs::set_permissions(shim.join("git"), fs::Permissions::from_mode(0o755)).unwrap();
    Work { dir, key, shim }
}

impl Work {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn init(&self, rel: &str) -> PathBuf {
        common::init_repo(&self.path(rel))
    }

    /// Commit `files` as the whole tree of `branch` in `repo`, at `ts`.
    fn snapshot(&self, repo: &Path, branch: &str, files: &[(&str, &[u8])], ts: u64) {
        let src = self.path(&format!("src-{branch}-{ts}"));
        let files: Vec<(&str, &[u8], bool)> = files.iter().map(|(n, d)| (*n, *d, false)).collect();
        common::snapshot_files(&src, repo, branch, &files, ts, &self.key);
    }

    /// Two branches, a chunked file, three commits on `main`, and the same
    /// repository copied to `<rel>-twin` (for side-by-side runs).
    fn history(&self, rel: &str) -> PathBuf {
        let repo = self.init(rel);
        let big = pseudo_random(1_500_000, 7);
        for (i, ts) in [1_700_000_000u64, 1_700_000_100, 1_700_000_200]
            .iter()
            .enumerate()
        {
            let text = format!("version {i}\n");
            self.snapshot(
                &repo,
                "main",
                &[
                    ("README", text.as_bytes()),
                    ("data/big.bin", &big),
                    ("src/a/b/c.txt", b"c\n"),
                ],
                *ts,
            );
        }
        self.snapshot(&repo, "topic", &[("t.txt", b"topic\n")], 1_700_000_300);
        repo
    }

    /// `(repo, twin, local, remote, url)`: a [`Work::history`] at `repo`,
    /// its copy at `twin`, and two destinations for them: a local bare path
    /// (`local`, the direct route) and the `file://` URL `url` of `remote`
    /// (git push).
    fn twins(&self) -> (PathBuf, PathBuf, PathBuf, PathBuf, String) {
        let repo = self.history("repo");
        let twin = self.path("twin");
        copy_dir(&repo, &twin);
        let remote = self.path("mirror-pushed");
        let url = format!("file://{}", remote.display());
        (repo, twin, self.path("mirror"), remote, url)
    }

    /// A copy of `repo` at `rel` without its bridge states.
    fn stateless_copy(&self, repo: &Path, rel: &str) -> PathBuf {
        let copy = self.path(rel);
        copy_dir(repo, &copy);
        fs::remove_dir_all(copy.join(".mkit/git")).unwrap();
        copy
    }

    /// `git init --quiet <flags> <rel>`; returns the new repository.
    fn git_init(&self, rel: &str, flags: &[&str]) -> PathBuf {
        let dir = self.path(rel);
        let mut args = vec!["init", "--quiet"];
        args.extend_from_slice(flags);
        args.push(dir.to_str().unwrap());
        git(self.dir.path(), &args);
        dir
    }

    /// More work on `branch`.
    fn advance(&self, repo: &Path, branch: &str, ts: u64) {
        let text = format!("{branch} at {ts}\n");
        self.snapshot(repo, branch, &[("README", text.as_bytes())], ts);
    }

    /// `mkit-bridge <args>` in `dir`, with the logging git first on PATH.
    fn bridge(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.shim.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(common::bridge_bin());
        c.args(args).current_dir(dir).env("PATH", path);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `export --json --no-attest <args>`, which must succeed.
    fn export(&self, repo: &Path, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["export", "--json", "--no-attest"];
        all.extend_from_slice(args);
        let out = self.bridge(repo, &all, &[]);
        assert!(out.status.success(), "export failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The git commands run so far, one line each; the log is then emptied.
    fn git_log(&self) -> String {
        let log = self.shim.join("git.log");
        let text = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        text
    }
}

/// `git -C <dir> <args>` with the dates fixed (commits made here are
/// the same on every run).
fn git(dir: &Path, args: &[&str]) -> String {
    common::git_dated(dir, args, "1700000000 +0000")
}

/// A commit on `dir` that none of ours is: the tree of `rev`, no parent.
fn foreign_commit(dir: &Path, rev: &str, msg: &str) -> String {
    let tree = git(dir, &["rev-parse", &format!("{rev}^{{tree}}")]);
    git(dir, &["commit-tree", tree.trim(), "-m", msg])
        .trim()
        .to_owned()
}

/// `git fsck --strict` passes and every object reachable from every ref is
/// present.
fn check_mirror(dir: &Path) {
    git(dir, &["fsck", "--strict", "--no-dangling", "--no-progress"]);
    let listed = git(dir, &["rev-list", "--objects", "--all", "--missing=print"]);
    assert!(
        !listed.lines().any(|l| l.starts_with('?')),
        "objects missing from {}",
        dir.display()
    );
}

/// The deflate block type (0 stored, 1 fixed, 2 dynamic Huffman) of the
/// first block of every entry in the packs of a repository, from the
/// offsets `git verify-pack -v` lists.
fn first_block_types(git_dir: &Path) -> Vec<u8> {
    let mut types = Vec::new();
    for name in packs(git_dir) {
        let pack = git_dir.join(format!("objects/pack/{name}.pack"));
        let bytes = fs::read(&pack).unwrap();
        let listing = git(git_dir, &["verify-pack", "-v", pack.to_str().unwrap()]);
        for line in listing.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 || f[0].len() != 40 {
                continue;
            }
            // The entry header: type and size, 7 bits per byte after the first.
            let mut at: usize = f[4].parse().unwrap();
            while bytes[at] & 0x80 != 0 {
                at += 1;
            }
            at += 1;
            assert_eq!(bytes[at] & 0x0f, 8, "a zlib stream at {at} in {name}");
            types.push((bytes[at + 2] >> 1) & 3);
        }
    }
    types
}

/// The `pack-<hash>` names in a repository's `objects/pack`.
fn packs(git_dir: &Path) -> BTreeSet<String> {
    fs::read_dir(git_dir.join("objects/pack"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .strip_suffix(".idx")
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn staging(repo: &Path) -> PathBuf {
    repo.join(".mkit/git/mirror/repo.git")
}

/// Whether the log shows a `git push` (the subcommand, after any `-C <dir>`).
fn pushed(log: &str) -> bool {
    log.lines().any(|l| {
        let mut words = l.split(' ');
        let mut first = words.next();
        if first == Some("-C") {
            words.next();
            first = words.next();
        }
        first == Some("push")
    })
}

fn phases(report: &serde_json::Value) -> Vec<String> {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_local_bare_destination_skips_git_push_and_matches_a_push_export() {
    let w = work();
    let (repo, twin, local, remote, url) = w.twins();

    let report = w.export(&repo, &[local.to_str().unwrap()]);
    let log = w.git_log();
    assert_eq!(report["transport"], "local", "{report}");
    assert!(phases(&report).contains(&"local-push".to_owned()));
    assert!(!pushed(&log), "git push ran:\n{log}");
    assert!(log.contains("update-ref"), "{log}");
    assert_eq!(report["updated"], 2);

    let report = w.export(&twin, &[&url]);
    let log = w.git_log();
    assert_eq!(report["transport"], "push", "{report}");
    assert!(pushed(&log), "git push did not run:\n{log}");

    assert_eq!(git_refs(&local), git_refs(&remote));
    assert_eq!(git_refs(&local).lines().count(), 2);
    check_mirror(&local);
    check_mirror(&remote);
    // The same set of objects, reachable from the same refs.
    let objects = |d: &Path| {
        let mut v: Vec<String> = git(d, &["rev-list", "--objects", "--all"])
            .lines()
            .map(|l| l[..40].to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(objects(&local), objects(&remote));
    // The staging pack is in the destination, hard-linked (one filesystem).
    let staged = packs(&staging(&repo));
    assert_eq!(packs(&local), staged);
    let name = staged.iter().next().unwrap();
    let a = fs::metadata(staging(&repo).join(format!("objects/pack/{name}.pack"))).unwrap();
    let b = fs::metadata(local.join(format!("objects/pack/{name}.pack"))).unwrap();
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
    // Placed as it is, so written with stored blocks (no compression work);
    // the pack a push carries is compressed.
    let placed = first_block_types(&local);
    assert!(
        !placed.is_empty() && placed.iter().all(|t| *t == 0),
        "{placed:?}"
    );
    let pushed = first_block_types(&staging(&twin));
    assert!(pushed.iter().any(|t| *t != 0), "{pushed:?}");
}

#[test]
fn a_re_export_places_only_the_new_pack() {
    let w = work();
    let (repo, twin, local, remote, url) = w.twins();
    w.export(&repo, &[local.to_str().unwrap()]);
    w.export(&twin, &[&url]);
    let first = packs(&local);
    assert_eq!(first.len(), 1);

    for r in [&repo, &twin] {
        w.advance(r, "main", 1_700_001_000);
        w.snapshot(r, "fresh", &[("f", b"f\n")], 1_700_001_100);
    }
    let report = w.export(&repo, &[local.to_str().unwrap()]);
    assert_eq!(report["transport"], "local");
    let statuses: Vec<_> = common::json_pairs(&report["exported"], "ref", "status");
    let pushed: serde_json::Value = w.export(&twin, &[&url]);
    let pushed_statuses: Vec<_> = common::json_pairs(&pushed["exported"], "ref", "status");
    // Created, fast-forward and up to date, as git push reports them.
    assert_eq!(statuses, pushed_statuses);
    assert_eq!(
        statuses,
        vec![
            ("refs/heads/fresh".to_owned(), "created".to_owned()),
            ("refs/heads/main".to_owned(), "fast-forward".to_owned()),
            ("refs/heads/topic".to_owned(), "up-to-date".to_owned()),
        ]
    );
    let second = packs(&local);
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(first.is_subset(&second));
    assert_eq!(second, packs(&staging(&repo)));
    assert_eq!(git_refs(&local), git_refs(&remote));
    check_mirror(&local);

    // Nothing new: nothing placed, every ref up to date.
    let report = w.export(&repo, &[local.to_str().unwrap()]);
    assert_eq!(report["transport"], "local");
    assert_eq!(report["updated"], 0);
    assert_eq!(packs(&local), second);

    // --force rewinds main: forced, as git push says it.
    let mkit_dir = repo.join(".mkit");
    let topic = refs::read_ref(&mkit_dir, "refs/heads/topic")
        .unwrap()
        .unwrap();
    refs::write_ref(&mkit_dir, "refs/heads/main", &topic, RefCondition::Any).unwrap();
    let report = w.export(
        &repo,
        &[
            "--force",
            "--ref",
            "refs/heads/main",
            local.to_str().unwrap(),
        ],
    );
    assert_eq!(report["exported"][0]["status"], "forced", "{report}");
    assert_eq!(
        git(&local, &["rev-parse", "refs/heads/main"]),
        git(&local, &["rev-parse", "refs/heads/topic"])
    );
    check_mirror(&local);
}

/// Run the same stale-lease scenario against a local path and a `file://`
/// URL; both must refuse with the same exit code and words, and move
/// nothing.
#[test]
fn a_stale_lease_is_refused_as_the_push_refuses_it() {
    let w = work();
    let (repo, twin, local, remote, url) = w.twins();
    let runs = [
        (&repo, local.to_str().unwrap().to_owned(), &local),
        (&twin, url, &remote),
    ];
    let mut seen = Vec::new();
    for (r, dest, mirror) in runs {
        w.export(r, &[&dest]);
        // Someone else moves main on the mirror (the same commit on both).
        let foreign = foreign_commit(mirror, "refs/heads/main", "foreign");
        git(mirror, &["update-ref", "refs/heads/main", &foreign]);
        // New work on both recorded branches: one lease holds, one does not.
        w.advance(r, "main", 1_700_001_000);
        w.advance(r, "topic", 1_700_001_100);
        let before = git_refs(mirror);
        let st = r.join(".mkit/git/mirror");
        let state_before = (
            fs::read(st.join("refs")).unwrap(),
            fs::read(st.join("map")).unwrap(),
        );
        let out = w.bridge(r, &["export", "--no-attest", &dest], &[]);
        assert_eq!(git_refs(mirror), before, "something moved");
        assert_eq!(
            (
                fs::read(st.join("refs")).unwrap(),
                fs::read(st.join("map")).unwrap()
            ),
            state_before
        );
        seen.push((out.status.code(), stderr(&out).replace(&dest, "<dest>")));
    }
    assert_eq!(seen[0].0, Some(75), "{}", seen[0].1);
    assert!(
        seen[0]
            .1
            .contains("refs/heads/main [rejected] (stale info); nothing was pushed"),
        "{}",
        seen[0].1
    );
    assert_eq!(seen[0], seen[1]);
    // No object of the refused run reached the local destination.
    assert_eq!(packs(&local).len(), 1);
}

#[test]
fn a_compare_lost_in_the_transaction_moves_no_ref() {
    let w = work();
    let repo = w.history("repo");
    let local = w.path("mirror");
    w.export(&repo, &[local.to_str().unwrap()]);
    let before_main = git(&local, &["rev-parse", "refs/heads/main"]);
    let foreign = foreign_commit(&local, "refs/heads/topic", "racer");
    w.advance(&repo, "main", 1_700_001_000);
    w.advance(&repo, "topic", 1_700_001_100);
    // A concurrent writer moves topic after the leases were checked and
    // the objects placed, just before the transaction.
    let racer = format!(
        "git -C '{}' update-ref refs/heads/topic {}",
        local.display(),
        foreign
    );
    let out = w.bridge(
        &repo,
        &["export", "--no-attest", local.to_str().unwrap()],
        &[("MKIT_BRIDGE_BEFORE_REF_TRANSACTION", &racer)],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("refs/heads/topic [remote rejected] (cannot lock ref 'refs/heads/topic'"),
        "{err}"
    );
    assert!(err.contains("nothing was pushed"), "{err}");
    // main would have moved; the transaction is all or nothing.
    assert_eq!(git(&local, &["rev-parse", "refs/heads/main"]), before_main);
    assert_eq!(
        git(&local, &["rev-parse", "refs/heads/topic"]).trim(),
        foreign
    );
    check_mirror(&local);
}

#[test]
fn a_receive_hook_or_policy_keeps_git_push() {
    let w = work();
    let repo = w.history("repo");
    let hooked = w.git_init("hooked.git", &["--bare"]);
    let marker = w.path("hook-ran");
    let hook = hooked.join("hooks/pre-receive");
    fs::write(
        &hook,
        format!("#!/bin/sh\ncat > /dev/null\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let report = w.export(&repo, &[hooked.to_str().unwrap()]);
    assert_eq!(report["transport"], "push");
    assert!(pushed(&w.git_log()));
    assert!(marker.exists(), "the pre-receive hook did not run");
    check_mirror(&hooked);
    // The push carries the staging pack's entries as they are: compressed,
    // though the destination is a local path.
    let sent = first_block_types(&staging(&repo));
    assert!(sent.iter().any(|t| *t != 0), "{sent:?}");

    // The same hook, not executable: git would not run it.
    let twin = w.stateless_copy(&repo, "twin");
    let inert = w.git_init("inert.git", &["--bare"]);
    fs::copy(&hook, inert.join("hooks/pre-receive")).unwrap();
    fs::set_permissions(
        inert.join("hooks/pre-receive"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let report = w.export(&twin, &[inert.to_str().unwrap()]);
    assert_eq!(report["transport"], "local");
    assert_eq!(git_refs(&inert), git_refs(&hooked));

    // A receive.* policy: git push applies it, so git push runs.
    let third = w.stateless_copy(&repo, "third");
    let strict = w.git_init("strict.git", &["--bare"]);
    git(&strict, &["config", "receive.fsckObjects", "true"]);
    let report = w.export(&third, &[strict.to_str().unwrap()]);
    assert_eq!(report["transport"], "push");
    assert_eq!(git_refs(&strict), git_refs(&hooked));
}

#[test]
fn a_non_bare_destination_keeps_git_push_and_its_rules() {
    let w = work();
    let repo = w.history("repo");
    let twin = w.path("twin");
    copy_dir(&repo, &twin);
    // A work tree on another branch: the push lands, through git push.
    let tree = w.git_init("worktree", &["-b", "trunk"]);
    let report = w.export(&repo, &[tree.to_str().unwrap()]);
    assert_eq!(report["transport"], "push");
    assert!(pushed(&w.git_log()));
    assert_eq!(git_refs(&tree).lines().count(), 2);

    // A work tree with main checked out: receive.denyCurrentBranch refuses.
    let checked = w.git_init("checked", &["-b", "main"]);
    let out = w.bridge(
        &twin,
        &["export", "--no-attest", checked.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("refs/heads/main"), "{}", stderr(&out));
    assert_eq!(git_refs(&checked), "");
}

#[test]
fn another_filesystem_gets_copies_and_loose_staging_objects_are_placed() {
    let w = work();
    let repo = w.history("repo");
    let shm = Path::new("/dev/shm");
    let same_fs = fs::metadata(shm)
        .map(|m| m.dev() == fs::metadata(w.dir.path()).unwrap().dev())
        .unwrap_or(true);
    let other = if same_fs {
        None
    } else {
        Some(tempfile::tempdir_in(shm).unwrap())
    };
    let local = match &other {
        Some(d) => d.path().join("mirror"),
        None => w.path("mirror"),
    };
    let report = w.export(&repo, &[local.to_str().unwrap()]);
    assert_eq!(report["transport"], "local");
    check_mirror(&local);
    if !same_fs {
        let name = packs(&local).into_iter().next().unwrap();
        let m = fs::metadata(local.join(format!("objects/pack/{name}.pack"))).unwrap();
        assert_eq!(m.nlink(), 1, "a copy, not a link");
        let tmp: Vec<_> = fs::read_dir(local.join("objects/pack"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_"))
            .collect();
        assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    }
    let expected = git_refs(&local);

    // Staging as the reference leaves it (loose objects, no pack): explode
    // the pack, drop the destination and the recorded leases, export again.
    let st = staging(&repo);
    let name = packs(&st).into_iter().next().unwrap();
    let pack = st.join(format!("objects/pack/{name}.pack"));
    let moved = w.path("staging.pack");
    fs::rename(&pack, &moved).unwrap();
    fs::remove_file(st.join(format!("objects/pack/{name}.idx"))).unwrap();
    common::run_ok(
        Command::new("git")
            .arg("-C")
            .arg(&st)
            .args(["unpack-objects", "-q"])
            .stdin(fs::File::open(&moved).unwrap()),
    );
    assert!(packs(&st).is_empty());
    fs::remove_dir_all(&local).unwrap();
    fs::remove_file(repo.join(".mkit/git/mirror/refs")).unwrap();
    let report = w.export(&repo, &[local.to_str().unwrap()]);
    assert_eq!(report["transport"], "local");
    assert_eq!(git_refs(&local), expected);
    assert!(packs(&local).is_empty());
    check_mirror(&local);
}

#[test]
fn a_crash_after_placing_moves_no_ref_and_the_rerun_finishes() {
    let w = work();
    let repo = w.history("repo");
    let local = w.path("mirror");
    w.export(&repo, &[local.to_str().unwrap()]);
    let before = git_refs(&local);
    w.advance(&repo, "main", 1_700_001_000);
    let out = w.bridge(
        &repo,
        &["export", "--no-attest", local.to_str().unwrap()],
        &[("MKIT_BRIDGE_CRASH_AT", "placed")],
    );
    assert!(!out.status.success());
    assert_eq!(git_refs(&local), before);
    assert_eq!(packs(&local).len(), 2, "the new pack was placed");
    check_mirror(&local);
    let report = w.export(&repo, &[local.to_str().unwrap()]);
    assert_eq!(report["transport"], "local");
    assert_eq!(report["updated"], 1);
    assert_eq!(packs(&local), packs(&staging(&repo)));
    check_mirror(&local);
}
