//! SIGINT and SIGTERM: a run stops at its next safe point, says so, exits
//! 130, moves no ref, and the next run converges to what an uninterrupted
//! run gives. The runs are paused at a `test-hooks` pause point
//! (`MKIT_BRIDGE_PAUSE_AT`) and signalled there, so nothing depends on
//! timing.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rustix::process::Signal;

struct Env {
    work: tempfile::TempDir,
    src: PathBuf,
    key: PathBuf,
}

fn env() -> Env {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    common::build_fixture("multi-branch", &src);
    let key = common::import_key(&work.path().join("k"), 0x37);
    Env { work, src, key }
}

impl Env {
    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(common::bridge_bin());
        c.args(args)
            .current_dir(cwd)
            .env_remove("MKIT_BRIDGE_CRASH_AT")
            .env_remove("MKIT_BRIDGE_PAUSE_AT");
        c
    }

    fn ok(&self, cwd: &Path, args: &[&str]) -> Output {
        let out = self.command(cwd, args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        out
    }

    /// Run `args` in `cwd`, wait until it pauses at `point`, send `signal`,
    /// and return what it did.
    fn signalled(&self, cwd: &Path, args: &[&str], point: &str, signal: Signal) -> Output {
        let flag = self.path(&format!("paused-{point}"));
        common::signalled_at(&mut self.command(cwd, args), point, &flag, signal)
    }

    fn import_args(&self) -> Vec<&str> {
        vec![
            "import",
            self.src.to_str().unwrap(),
            "--key",
            self.key.to_str().unwrap(),
        ]
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `dir` (relative path → bytes), the map as sorted lines.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = common::files_under(dir);
    if let Some(map) = files.get_mut(".mkit/git/upstream/map") {
        let mut lines: Vec<&[u8]> = map.split_inclusive(|&b| b == b'\n').collect();
        lines.sort();
        *map = lines.concat();
    }
    files
}

/// The parts of a repository an import decides: refs, objects,
/// attestations and the state directory (without its staging mirror).
fn import_result(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    tree(repo)
        .into_iter()
        .filter(|(k, _)| k.starts_with(".mkit/") && !k.contains("/repo.git/"))
        .filter(|(k, _)| !k.starts_with(".mkit/git-") && k != ".mkit/index")
        .collect()
}

fn no_temp_files(dir: &Path) {
    for name in common::files_under(dir).keys() {
        let base = name.rsplit('/').next().unwrap();
        assert!(
            !(base.starts_with('.') && base.contains(".tmp.")),
            "temp file left: {name}"
        );
    }
}

const STOPPED: &str =
    "interrupted: stopped before updating any ref; run the same command again to finish";

/// An import signalled after its fetch stops with 130 and the message, has
/// moved no ref nor recorded any ref state, and the next run gives exactly
/// the clean import; SIGINT and SIGTERM alike.
#[test]
fn an_interrupted_import_stops_cleanly_and_the_next_run_converges() {
    let e = env();
    let clean = e.path("clean");
    e.ok(e.work.path(), &["init", clean.to_str().unwrap()]);
    e.ok(&clean, &e.import_args());
    let want = import_result(&clean);
    assert!(
        want.keys()
            .any(|k| k.starts_with(".mkit/refs/remotes/upstream/"))
    );

    for (name, signal) in [("int", Signal::INT), ("term", Signal::TERM)] {
        let repo = e.path(name);
        e.ok(e.work.path(), &["init", repo.to_str().unwrap()]);
        let before = common::mkit_refs(&repo).unwrap();
        let out = e.signalled(&repo, &e.import_args(), "fetched", signal);
        assert_eq!(
            out.status.code(),
            Some(130),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(STOPPED), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert_eq!(common::mkit_refs(&repo).unwrap(), before, "no ref moved");
        let state = repo.join(".mkit/git/upstream");
        assert!(!state.join("refs-import").exists());
        assert!(!state.join("map").exists());
        assert!(
            !state.join("importing").exists(),
            "a clean stop leaves no crash marker"
        );
        no_temp_files(&repo);

        let again = e.ok(&repo, &e.import_args());
        assert!(
            !text(&again.stderr).contains("rebuilding"),
            "{}",
            text(&again.stderr)
        );
        assert_eq!(
            import_result(&repo),
            want,
            "{name}: converges to the clean import"
        );
    }
}

/// A fetch signalled mid-run keeps the previous import whole (refs, ref
/// state, map), leaves no crash marker, and the next fetch ends where an
/// uninterrupted fetch does, without rebuilding the map.
#[test]
fn an_interrupted_fetch_keeps_the_previous_import() {
    let e = env();
    let clean = e.path("clean");
    let repo = e.path("repo");
    for r in [&clean, &repo] {
        e.ok(e.work.path(), &["init", r.to_str().unwrap()]);
        e.ok(r, &e.import_args());
    }
    common::build_fixture("multi-branch.append", &e.src);
    let fetch = ["fetch", "--key", e.key.to_str().unwrap()];
    e.ok(&clean, &fetch);
    let want = import_result(&clean);

    let before = import_result(&repo);
    let out = e.signalled(&repo, &fetch, "fetched", Signal::TERM);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(STOPPED), "{}", text(&out.stderr));
    let after = import_result(&repo);
    // Objects a checkpoint published may be new; nothing else is.
    let without_objects = |m: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        m.iter()
            .filter(|(k, _)| !k.starts_with(".mkit/objects/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(without_objects(&after), without_objects(&before));
    assert_ne!(before, want, "the fetch has something to bring");

    let again = e.ok(&repo, &fetch);
    assert!(
        !text(&again.stderr).contains("rebuilding"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(import_result(&repo), want);
}

/// An export signalled before its push exits 130, leaves the destination
/// without refs and the state without leases; one signalled while pushing
/// finishes the push, records it, and says so. Either way the next export
/// gives the destination an uninterrupted export gives.
#[test]
fn an_interrupted_export_pushes_all_or_nothing() {
    let e = env();
    let repo = e.path("repo");
    common::bridge_import(&e.src, &repo, &e.key);
    // The repository key the attestations are signed with.
    let key = common::import_key(&e.path("repo-key"), 0x52);
    std::fs::create_dir_all(repo.join(".mkit/keys")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(repo.join(".mkit/keys"), mode).unwrap();
    }
    std::fs::copy(&key, repo.join(".mkit/keys/default.key")).unwrap();
    let dest_refs = |dest: &Path| -> String {
        text(&common::run_ok(
            Command::new("git")
                .arg("-C")
                .arg(dest)
                .args(["for-each-ref", "--format=%(refname) %(objectname)"])
                .args(["refs/heads", "refs/tags"]),
        ))
    };
    let clean = e.path("clean.git");
    e.ok(
        &repo,
        &[
            "export",
            "--remote-name",
            "clean",
            "--quiet",
            clean.to_str().unwrap(),
        ],
    );
    let want = dest_refs(&clean);
    assert!(want.contains("refs/heads/main"), "{want}");

    // Stopped before the push: nothing at the destination, nothing recorded.
    let dest = e.path("dest.git");
    let export = ["export", "--quiet", dest.to_str().unwrap()];
    let out = e.signalled(&repo, &export, "translated", Signal::INT);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("interrupted: stopped before the push"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dest.exists() || dest_refs(&dest).is_empty(),
        "nothing was pushed"
    );
    assert!(!repo.join(".mkit/git/mirror/refs").exists());
    no_temp_files(&repo);
    e.ok(&repo, &export);
    assert_eq!(dest_refs(&dest), want);

    // Signalled while pushing: the push is finished and recorded.
    let dest2 = e.path("dest2.git");
    let export2 = ["export", "--remote-name", "second", dest2.to_str().unwrap()];
    let out = e.signalled(&repo, &export2, "pushing", Signal::TERM);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the push was finished and recorded"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(dest_refs(&dest2), want);
    let leases = std::fs::read_to_string(repo.join(".mkit/git/second/refs")).unwrap();
    assert!(leases.contains("refs/heads/main "), "{leases}");
}

/// Temp files a killed run left (a dead writer's pid in their names) are
/// removed by the next run on the state, which says how many; a live
/// writer's are left alone.
#[test]
fn the_next_run_sweeps_a_killed_runs_temp_files() {
    let e = env();
    let repo = e.path("repo");
    e.ok(e.work.path(), &["init", repo.to_str().unwrap()]);
    e.ok(&repo, &e.import_args());
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let live = std::process::id();
    let mkit = repo.join(".mkit");
    let state = mkit.join("git/upstream");
    let planted = [
        (mkit.join(format!("objects/ab/.cdef.tmp.{dead}.1")), true),
        (mkit.join(format!("objects/cd/.ef01.tmp.{dead}.2")), true),
        (mkit.join(format!("objects/ab/.cdef.tmp.{live}.3")), false),
        (state.join(format!("raw/12/.3456.tmp.{dead}.4")), true),
        (state.join(format!(".refs-import.tmp.{dead}.5")), true),
        (
            mkit.join(format!("refs/remotes/upstream/.main.tmp.{dead}.6")),
            true,
        ),
        (
            state.join(format!("repo.git/mkit-bridge-pack.tmp.{dead}.7")),
            true,
        ),
    ];
    for (path, _) in &planted {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"partial").unwrap();
    }
    let out = e.ok(&repo, &["fetch", "--key", e.key.to_str().unwrap()]);
    assert!(
        text(&out.stderr)
            .contains("note: removed 6 temp files left by an earlier run that was killed"),
        "{}",
        text(&out.stderr)
    );
    for (path, gone) in &planted {
        assert_eq!(!path.exists(), *gone, "{}", path.display());
    }
    // Nothing to sweep the next time, and nothing said.
    let out = e.ok(&repo, &["fetch", "--key", e.key.to_str().unwrap()]);
    assert!(
        !text(&out.stderr).contains("temp files"),
        "{}",
        text(&out.stderr)
    );
}
