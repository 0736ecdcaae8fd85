//! `pull` (fetch, then fast-forward the current branch and its worktree) and
//! `status` (what every bridge state records), end to end on fixture
//! upstreams built by `fixtures/checkout/build.sh`.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bridge_bin, checkout_fixture, have_git, import_key, mkit_bin, run_ok, stderr};
use mkit_bridge::mkit::index;

/// An upstream fixture imported into `<tmp>/wt` by our binary.
struct Env {
    tmp: tempfile::TempDir,
    key: PathBuf,
}

impl Env {
    fn new(fx: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let key = import_key(tmp.path(), 7);
        checkout_fixture(fx, &tmp.path().join("up.git"));
        let env = Env { tmp, key };
        let out = env.run(env.tmp.path(), &["import", "--quiet", "up.git", "wt"]);
        assert!(out.status.success(), "{}", stderr(&out));
        env
    }
    fn up(&self) -> PathBuf {
        self.tmp.path().join("up.git")
    }
    fn wt(&self) -> PathBuf {
        self.tmp.path().join("wt")
    }
    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(bridge_bin());
        cmd.args(args).current_dir(cwd);
        if matches!(args.first(), Some(&"import" | &"pull" | &"fetch")) {
            cmd.arg("--key").arg(&self.key);
        }
        cmd.output().unwrap()
    }
    fn pull(&self, extra: &[&str]) -> Output {
        let mut args = vec!["pull"];
        args.extend_from_slice(extra);
        self.run(&self.wt(), &args)
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.wt().join(".mkit").join(rel))
            .unwrap()
            .trim()
            .to_owned()
    }
}

/// `git archive main` of the upstream, extracted into `into`, as a snapshot.
fn archive(git_dir: &Path, into: &Path) -> BTreeMap<String, String> {
    common::git_archive(git_dir, "main", into);
    common::worktree_snapshot(into)
}

fn reference_clean(env: &Env, test: &str) {
    let Some(mkit) = mkit_bin(test) else {
        return;
    };
    let st = Command::new(mkit)
        .args(["status", "--porcelain"])
        .current_dir(env.wt())
        .env("HOME", env.tmp.path())
        .env("XDG_CONFIG_HOME", env.tmp.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", stderr(&st));
    assert_eq!(
        String::from_utf8_lossy(&st.stdout),
        "",
        "reference status: clean"
    );
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn pull_fast_forwards_files_modes_links_and_the_index() {
    if !have_git("pull_fast_forwards_files_modes_links_and_the_index") {
        return;
    }
    let env = Env::new("worktree");
    reference_clean(&env, "pull_fast_forwards_files_modes_links_and_the_index");
    // An untracked file that the update does not touch is kept.
    std::fs::write(env.wt().join("notes.txt"), "mine\n").unwrap();
    checkout_fixture("worktree.advance", &env.up());
    let out = env.pull(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fast-forwarded 'main'"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(env.wt().join("notes.txt")).unwrap();
    let expected = archive(&env.up(), &env.tmp.path().join("expected"));
    assert_eq!(common::worktree_snapshot(&env.wt()), expected);
    assert!(!env.wt().join("a").exists(), "emptied directory removed");
    assert_eq!(
        env.read("refs/heads/main"),
        env.read("refs/remotes/upstream/main")
    );
    let idx = index::read(&env.wt().join(".mkit")).unwrap().unwrap();
    let paths: Vec<_> = idx.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "README",
            "bin/run.sh",
            "data/big.bin",
            "data/empty",
            "link",
            "new/deeper/file.txt",
            "src/lib.rs",
            "src/main.rs",
            "srcdir/inside.txt"
        ]
    );
    reference_clean(&env, "pull_fast_forwards_files_modes_links_and_the_index");

    // Nothing new: up to date, nothing changes.
    let before = common::worktree_snapshot(&env.wt());
    let out = env.pull(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.get("fastForwarded").is_none(), "{json}");
    assert_eq!(common::worktree_snapshot(&env.wt()), before);
}

#[test]
fn pull_json_names_the_fast_forwarded_branch() {
    if !have_git("pull_json_names_the_fast_forwarded_branch") {
        return;
    }
    let env = Env::new("worktree");
    checkout_fixture("worktree.advance", &env.up());
    let out = env.pull(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["fastForwarded"], "main", "{json}");
}

#[test]
fn pull_refuses_divergence_with_the_merge_hint() {
    if !have_git("pull_refuses_divergence_with_the_merge_hint") {
        return;
    }
    let env = Env::new("worktree");
    let before = common::worktree_snapshot(&env.wt());
    let local = env.read("refs/heads/main");
    checkout_fixture("worktree.rewrite", &env.up());
    let out = env.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "pull would not fast-forward branch 'main'; integrate with `mkit merge upstream/main` (or `mkit rebase upstream/main`)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.read("refs/heads/main"), local);
    assert_ne!(
        env.read("refs/remotes/upstream/main"),
        local,
        "the fetch happened"
    );
    assert_eq!(common::worktree_snapshot(&env.wt()), before);
}

/// What a dirty-worktree case is called, how it dirties, and the refusal.
type DirtyCase = (&'static str, fn(&Path), &'static str);

#[test]
fn pull_refuses_a_dirty_worktree_and_changes_nothing() {
    if !have_git("pull_refuses_a_dirty_worktree_and_changes_nothing") {
        return;
    }
    let cases: [DirtyCase; 4] = [
        (
            "edit",
            |wt| std::fs::write(wt.join("README"), "local edit\n").unwrap(),
            "restore would overwrite local changes; commit, stash, or reset 'README' first",
        ),
        (
            "delete",
            |wt| std::fs::remove_file(wt.join("src/lib.rs")).unwrap(),
            "restore would overwrite local changes; commit, stash, or reset 'src/lib.rs' first",
        ),
        (
            "chmod",
            |wt| {
                std::fs::set_permissions(wt.join("README"), std::fs::Permissions::from_mode(0o755))
                    .unwrap()
            },
            "restore would overwrite local changes; commit, stash, or reset 'README' first",
        ),
        (
            "untracked in the way",
            |wt| {
                std::fs::create_dir_all(wt.join("new/deeper")).unwrap();
                std::fs::write(wt.join("new/deeper/file.txt"), "mine\n").unwrap();
            },
            "restore would overwrite untracked path 'new/deeper/file.txt'; move or remove it first",
        ),
    ];
    for (what, dirty, message) in cases {
        let env = Env::new("worktree");
        dirty(&env.wt());
        let before = common::worktree_snapshot(&env.wt());
        let local = env.read("refs/heads/main");
        checkout_fixture("worktree.advance", &env.up());
        let out = env.pull(&[]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{what}: {}", stderr(&out));
        assert_eq!(env.read("refs/heads/main"), local, "{what}");
        assert_eq!(common::worktree_snapshot(&env.wt()), before, "{what}");
    }
}

#[test]
fn pull_on_a_detached_head_only_fetches() {
    if !have_git("pull_on_a_detached_head_only_fetches") {
        return;
    }
    let env = Env::new("worktree");
    let tip = env.read("refs/heads/main");
    std::fs::write(env.wt().join(".mkit/HEAD"), format!("{tip}\n")).unwrap();
    let before = common::worktree_snapshot(&env.wt());
    checkout_fixture("worktree.advance", &env.up());
    let out = env.pull(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("fast-forwarded"));
    assert_eq!(common::worktree_snapshot(&env.wt()), before);
    assert_ne!(env.read("refs/remotes/upstream/main"), tip);
    assert_eq!(env.read("refs/heads/main"), tip);
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn status_lists_the_import_state_with_every_reference_line() {
    if !have_git("status_lists_the_import_state_with_every_reference_line") {
        return;
    }
    let env = Env::new("worktree");
    let out = env.run(&env.wt(), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let sha = String::from_utf8(run_ok(
        Command::new("git")
            .arg("--git-dir")
            .arg(env.up())
            .args(["rev-parse", "main"]),
    ))
    .unwrap();
    let key = env.read("git/upstream/signer");
    assert!(text.starts_with("upstream  direction=import\n"), "{text}");
    assert!(
        text.contains(&format!("  importer key: {}… (pinned)\n", &key[..16])),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  tracking refs/heads/main @ {} (import)\n",
            &sha[..12]
        )),
        "{text}"
    );
    assert!(text.contains("  staging: ok\n"), "{text}");
    assert!(text.contains("  source: "), "{text}");

    let out = env.run(&env.wt(), &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = &json["states"][0];
    assert_eq!(st["name"], "upstream");
    assert_eq!(st["direction"], "import");
    assert_eq!(st["importerKey"], key.as_str());
    assert_eq!(st["tracking"][0]["ref"], "refs/heads/main");
    assert_eq!(st["tracking"][0]["git"], sha.trim());
    assert_eq!(st["staging"], "ok");

    // Staging health: a missing mirror is reported.
    std::fs::rename(
        env.wt().join(".mkit/git/upstream/repo.git"),
        env.tmp.path().join("moved.git"),
    )
    .unwrap();
    let out = env.run(&env.wt(), &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("  staging: missing\n"));
    std::fs::rename(
        env.tmp.path().join("moved.git"),
        env.wt().join(".mkit/git/upstream/repo.git"),
    )
    .unwrap();

    // Every line the reference prints, we print.
    let Some(mkit) = mkit_bin("status_lists_the_import_state_with_every_reference_line") else {
        return;
    };
    let theirs = Command::new(mkit)
        .args(["git", "status"])
        .current_dir(env.wt())
        .env("HOME", env.tmp.path())
        .output()
        .unwrap();
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    for line in String::from_utf8(theirs.stdout).unwrap().lines() {
        assert!(
            text.lines().any(|l| l == line),
            "missing reference line {line:?} in\n{text}"
        );
    }
}

#[test]
fn status_without_state_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    run_ok(Command::new(bridge_bin()).arg("init").arg(tmp.path()));
    let out = Command::new(bridge_bin())
        .arg("status")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no git bridge state (run `mkit git import` or `mkit git export` first)\n"
    );
    let out = Command::new(bridge_bin())
        .args(["status", "--json"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"states\":[]}\n");
}
