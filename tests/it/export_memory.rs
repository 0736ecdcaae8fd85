//! Export memory is bounded by design, not by the history's size (issue
//! #12): the walk keeps only ids and edges of the trees, commits and tags it
//! will translate (their bodies wait on a scratch shelf until their wave),
//! and a batch's pack entries past a small budget wait in a scratch file
//! instead of memory.
//!
//! A test-hooks probe (`MKIT_BRIDGE_PROBE_DIR`, file `export-memory`)
//! reports how many objects waited for translation, the most decoded trees,
//! commits and tags held at once, the most entry bytes held in memory at
//! once and the most that waited in the scratch file. The budget is set per
//! run with `MKIT_BRIDGE_EXPORT_HELD_BYTES` (test-hooks builds only), so the
//! same history is exported with nearly everything spilled and with nothing
//! spilled, and the mirrors compared byte for byte.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common;

/// Commits in the history: each adds one file under one of eight
/// directories, so each brings a commit, a root tree and a subtree to
/// translate.
const COMMITS: usize = 400;

/// The most decoded objects an export may hold at once: one walk batch
/// (`CHUNK` in `src/run/export.rs`), whatever the history's size.
const DECODED_BOUND: u64 = 512;

/// A linear history of [`COMMITS`] commits in a bare repository at `dir`.
fn upstream(dir: &Path) {
    common::linear_history(dir, COMMITS, |c, stream| {
        let body = hex::encode(common::pseudo_random(1500 + c, c as u64));
        writeln!(stream, "M 100644 inline d{}/f{c}", c % 8).unwrap();
        writeln!(stream, "data {}\n{body}", body.len()).unwrap();
    });
}

/// Export `repo` to `dest` with an entry budget of `held` bytes; returns
/// the probe's figures by name.
fn export(repo: &Path, dest: &str, held: u64) -> BTreeMap<String, u64> {
    let probes = tempfile::tempdir().unwrap();
    common::run_ok(
        Command::new(common::bridge_bin())
            .current_dir(repo)
            .args(["export", dest, "--no-attest", "--quiet"])
            .env("MKIT_BRIDGE_PROBE_DIR", probes.path())
            .env("MKIT_BRIDGE_EXPORT_HELD_BYTES", held.to_string()),
    );
    let text = fs::read_to_string(probes.path().join("export-memory")).unwrap();
    text.lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// `dest` has the refs of `other` and passes `git fsck --strict`.
fn same_mirror(dest: &Path, other: &Path) {
    assert_eq!(common::git_refs(dest), common::git_refs(other));
    common::git(dest, &["fsck", "--strict", "--no-progress"]);
}

#[test]
fn export_holds_a_bounded_part_of_the_history_and_the_pack_does_not_depend_on_it() {
    if !common::have_git("export_holds_a_bounded_part_of_the_history") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let up = work.path().join("up.git");
    upstream(&up);
    let key = common::import_key(work.path(), 9);
    let repo = work.path().join("repo");
    common::bridge_import(&up, &repo, &key);
    for copy in ["repo-all-held", "repo-pushed"] {
        common::copy_dir(&repo, &work.path().join(copy));
    }

    // Nearly every entry spilled: a 4 KiB budget.
    let spilled_dest = work.path().join("spilled.git");
    let spilled = export(&repo, spilled_dest.to_str().unwrap(), 4096);
    let waiting = spilled["waiting"];
    assert!(waiting >= 3 * COMMITS as u64, "{spilled:?}");
    assert!(
        spilled["decoded"] <= DECODED_BOUND && spilled["decoded"] * 2 < waiting,
        "decoded objects held at once grow with the history: {spilled:?}"
    );
    assert!(spilled["held"] <= 4096, "{spilled:?}");
    assert!(spilled["spilled"] > 0, "{spilled:?}");

    // Nothing spilled: the same pack, byte for byte, and the same refs.
    let held_dest = work.path().join("held.git");
    let held = export(
        &work.path().join("repo-all-held"),
        held_dest.to_str().unwrap(),
        1 << 40,
    );
    assert_eq!(held["spilled"], 0, "{held:?}");
    assert_eq!(held["waiting"], waiting);
    let packs = |dest: &Path| common::files_under(&dest.join("objects/pack"));
    let ours = packs(&spilled_dest);
    assert!(
        ours.keys().any(|k| k.ends_with(".pack")),
        "{:?}",
        ours.keys()
    );
    assert!(ours == packs(&held_dest), "the packs differ");
    same_mirror(&spilled_dest, &held_dest);
    let count = common::git(&spilled_dest, &["rev-list", "--count", "main"]);
    assert_eq!(count.trim(), COMMITS.to_string());

    // Through `git push` (a file:// URL), compressed entries spilled alike.
    let pushed_dest = work.path().join("pushed.git");
    common::run_ok(
        Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&pushed_dest),
    );
    let url = format!("file://{}", pushed_dest.display());
    let pushed = export(&work.path().join("repo-pushed"), &url, 4096);
    assert!(pushed["spilled"] > 0, "{pushed:?}");
    same_mirror(&pushed_dest, &spilled_dest);
}
