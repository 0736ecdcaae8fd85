//! Integrity under faults (issue #11): the map is a cache that is checked
//! against the store before a hit is used (import and export), and a failed
//! write is fatal (exit 74, the action and path named), never a per-ref
//! refusal, and the next run converges to what a clean run makes.

use crate::common;
use crate::common::{copy_dir, git_refs, pseudo_random, stderr, write_file};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mkit_bridge::mkit::id::Id;
use mkit_bridge::mkit::object::Object;
use mkit_bridge::mkit::repo::Repo;

/// sysexits `EX_IOERR`.
const IOERR: i32 = 74;
/// An attestation that cannot be written exits as any file the run cannot
/// create (sysexits `EX_CANTCREAT`).
const CANTCREAT: i32 = 73;

struct Env {
    work: tempfile::TempDir,
    up: PathBuf,
    key: PathBuf,
}

fn env() -> Env {
    let work = tempfile::tempdir().unwrap();
    let up = work.path().join("up");
    let key = common::import_key(&work.path().join("key"), 0x61);
    Env { work, up, key }
}

impl Env {
    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    fn k(&self) -> &str {
        self.key.to_str().unwrap()
    }

    /// The upstream's first state: a chunked file and a nested directory that
    /// later commits keep as they are (so their trees are map hits), two
    /// commits and an annotated tag.
    fn upstream_v1(&self) {
        git(self.work.path(), &["init", "-q", "-b", "main", "up"]);
        write_file(&self.up.join("a.txt"), b"one\n");
        write_file(&self.up.join("dir/b.txt"), b"bee\n");
        write_file(&self.up.join("dir/sub/c.txt"), b"sea\n");
        write_file(&self.up.join("dir/big.bin"), &pseudo_random(1_300_000, 3));
        commit(&self.up, "c1", 1_700_000_000);
        git(&self.up, &["tag", "-a", "v1", "-m", "first"]);
        write_file(&self.up.join("a.txt"), b"two\n");
        commit(&self.up, "c2", 1_700_000_100);
    }

    /// New history on top: a new blob, a new tree, a new commit (reusing
    /// the tree of `dir`) and a new annotated tag.
    fn upstream_v2(&self) {
        write_file(&self.up.join("a.txt"), b"three\n");
        write_file(&self.up.join("fresh/new.txt"), b"new\n");
        commit(&self.up, "c3", 1_700_000_200);
        git(&self.up, &["tag", "-a", "v2", "-m", "second"]);
    }

    /// `import <up> <dst>`, which must succeed.
    fn import(&self, dst: &str) -> PathBuf {
        let out = bridge(
            self.work.path(),
            &["import", self.up.to_str().unwrap(), dst, "--key", self.k()],
            None,
        );
        assert!(out.status.success(), "import: {}", stderr(&out));
        self.path(dst)
    }

    /// `fetch` in `repo`, with `MKIT_BRIDGE_FAIL_AT=<fail>` when given.
    fn fetch(&self, repo: &Path, fail: Option<&str>) -> Output {
        bridge(repo, &["fetch", "--key", self.k()], fail)
    }
}

/// `git -C <dir> <args>` with the dates fixed.
fn git(dir: &Path, args: &[&str]) -> String {
    common::git_dated(dir, args, "1700000000 +0000")
}

/// Commit everything in the worktree `dir` at `ts`.
fn commit(dir: &Path, msg: &str, ts: u64) {
    git(dir, &["add", "-A"]);
    common::git_dated(dir, &["commit", "-q", "-m", msg], &format!("{ts} +0000"));
}

/// Run our binary in `cwd`, with the fault hook set to `fail` (or cleared).
fn bridge(cwd: &Path, args: &[&str], fail: Option<&str>) -> Output {
    let mut c = Command::new(common::bridge_bin());
    c.args(args)
        .current_dir(cwd)
        .env_remove("MKIT_BRIDGE_CRASH_AT")
        .env_remove("MKIT_BRIDGE_FAIL_AT");
    if let Some(phase) = fail {
        c.env("MKIT_BRIDGE_FAIL_AT", phase);
    }
    c.output().unwrap()
}

/// The refs an import owns: tracking refs and tags.
fn imported_refs(repo: &Path) -> BTreeMap<String, String> {
    common::mkit_refs(repo)
        .unwrap()
        .into_iter()
        .filter(|(name, _)| name.starts_with("refs/remotes/") || name.starts_with("refs/tags/"))
        .collect()
}

/// Every ref of `repo` (HEAD included).
fn all_refs(repo: &Path) -> BTreeMap<String, String> {
    common::mkit_refs(repo).unwrap()
}

fn state_file(repo: &Path, remote: &str, name: &str) -> Vec<u8> {
    fs::read(repo.join(".mkit/git").join(remote).join(name)).unwrap_or_default()
}

/// The map's pairs with the later line winning, as every reader loads it.
fn map_pairs(repo: &Path, remote: &str) -> BTreeMap<String, String> {
    let text = String::from_utf8(state_file(repo, remote, "map")).unwrap();
    text.lines()
        .map(|l| {
            let (b, s) = l.split_once(' ').unwrap();
            (b.to_owned(), s.to_owned())
        })
        .collect()
}

/// Replace the blake3 column of the map line whose sha1 is `sha1`.
fn poison_import_map(repo: &Path, sha1: &str, blake3: &str) {
    let path = repo.join(".mkit/git/upstream/map");
    let text = fs::read_to_string(&path).unwrap();
    let mut hit = 0;
    let out: String = text
        .lines()
        .map(|l| {
            if l.ends_with(sha1) {
                hit += 1;
                format!("{blake3} {sha1}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(hit, 1, "one map line for {sha1}");
    fs::write(&path, out).unwrap();
}

/// The blake3 the import map gives `sha1`.
fn mapped(repo: &Path, sha1: &str) -> String {
    let text = fs::read_to_string(repo.join(".mkit/git/upstream/map")).unwrap();
    text.lines()
        .find(|l| l.ends_with(sha1))
        .map(|l| l[..64].to_owned())
        .unwrap()
}

/// Read every object the refs of `repo` reach, each checked by the store
/// (present, decodable, under its own id); returns how many there are.
fn closure_is_whole(repo: &Path) -> usize {
    let r = Repo::open(repo).unwrap();
    let mut stack: Vec<Id> = imported_refs(repo)
        .values()
        .map(|v| Id::from_hex(v).unwrap())
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let obj = r
            .store()
            .read(&id)
            .unwrap_or_else(|e| panic!("{}: {e}", id.to_hex()));
        match obj {
            Object::Commit(c) => {
                stack.push(c.tree);
                stack.extend(c.parents);
            }
            Object::Tree(t) => stack.extend(t.entries.iter().map(|e| e.id)),
            Object::Tag(t) => stack.push(t.target),
            Object::ChunkedBlob(m) => stack.extend(m.chunks),
            _ => {}
        }
    }
    seen.len()
}

/// Temp files left under `.mkit` (the staging mirror aside).
fn leftovers(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo.join(".mkit")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "repo.git" {
                    stack.push(p);
                }
            } else if name.contains(".tmp.") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The import state files of `repo` are those of the clean import.
fn assert_state_is_clean(repo: &Path, clean: &Path, what: &str) {
    assert_eq!(
        state_file(repo, "upstream", "map"),
        state_file(clean, "upstream", "map"),
        "{what}: the map"
    );
    assert_eq!(
        state_file(repo, "upstream", "refs-import"),
        state_file(clean, "upstream", "refs-import"),
        "{what}"
    );
}

/// The scenario: one map line for a tree is replaced by a
/// well-formed wrong id, an upstream commit reuses that tree, and `fetch`
/// must not sign a commit whose tree is not in the store. The walk checks
/// the hit, finds the store disagreeing, rebuilds, and ends with exactly the
/// ids of a clean import; `verify` and `verify --deep` pass.
#[test]
fn a_poisoned_import_map_is_rebuilt_to_the_ids_of_a_clean_import() {
    let e = env();
    e.upstream_v1();
    let dir_tree = git(&e.up, &["rev-parse", "HEAD:dir"]).trim().to_owned();
    let blob = git(&e.up, &["rev-parse", "HEAD:a.txt"]).trim().to_owned();
    let first = e.import("first");
    let blob_id = mapped(&first, &blob);
    e.upstream_v2();
    let clean = e.import("clean");
    let want = imported_refs(&clean);
    assert!(want.contains_key("refs/tags/v2"), "{want:?}");
    let clean_objects = common::files_under(&clean.join(".mkit/objects"));

    // A well-formed id of nothing, and the id of an object of another type.
    for (case, poison) in [("missing", "f".repeat(64)), ("wrong type", blob_id)] {
        let repo = e.path(&format!("poisoned-{}", case.replace(' ', "-")));
        copy_dir(&first, &repo);
        poison_import_map(&repo, &dir_tree, &poison);
        let out = bridge(&repo, &["fetch", "--key", e.k(), "--json"], None);
        assert!(out.status.success(), "{case}: {}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let notes = doc["notes"].to_string();
        assert!(
            notes.contains("map cache disagrees with the object store")
                && notes.contains(&dir_tree)
                && notes.contains(&poison),
            "{case}: {notes}"
        );
        if case == "wrong type" {
            assert!(notes.contains("holds as a blob, not a tree"), "{notes}");
        }
        assert_eq!(
            imported_refs(&repo),
            want,
            "{case}: the ids of a clean import"
        );
        // The rebuilt map is the clean import's, line for line.
        assert_state_is_clean(&repo, &clean, case);
        assert!(closure_is_whole(&repo) > 10, "{case}");
        let objects = common::files_under(&repo.join(".mkit/objects"));
        for name in clean_objects.keys() {
            assert!(objects.contains_key(name), "{case}: {name} missing");
        }
        for args in [&["verify"][..], &["verify", "--deep"][..]] {
            let out = bridge(&repo, args, None);
            assert!(out.status.success(), "{case} {args:?}: {}", stderr(&out));
        }
        // And the next fetch trusts the rebuilt map: nothing to translate.
        let out = bridge(&repo, &["fetch", "--key", e.k(), "--json"], None);
        assert!(out.status.success(), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["translated"], 0, "{case}: {doc}");
        assert_eq!(doc["notes"], serde_json::json!([]), "{case}: {doc}");
    }
}

/// The phases of an import's write order, each with the action and the path
/// (relative to the repository) its injected failure must name.
const IMPORT_PHASES: [(&str, &str, &str); 9] = [
    ("raw", "cannot write", ".mkit/git/upstream/raw/"),
    ("blobs", "cannot write object", ".mkit/objects/"),
    ("trees", "cannot write object", ".mkit/objects/"),
    ("commits", "cannot write object", ".mkit/objects/"),
    ("tags", "cannot write object", ".mkit/objects/"),
    ("map", "cannot append to", ".mkit/git/upstream/map"),
    ("refs", "cannot write", ".mkit/refs/"),
    ("attestations", "cannot write", ".mkit/attestations/"),
    (
        "ref-state",
        "cannot write",
        ".mkit/git/upstream/.refs-import.tmp.",
    ),
];

/// A full disk at each phase of a fetch: exit 74 with the action and path,
/// no ref moved (before the refs phase ends), no temp file left, the crash
/// marker kept; the next fetch converges to exactly a clean import.
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (cargo test --features test-hooks); CI runs it"
)]
fn a_failed_write_at_any_import_phase_is_fatal_and_the_next_fetch_converges() {
    let e = env();
    e.upstream_v1();
    let before = e.import("before");
    let refs_before = all_refs(&before);
    e.upstream_v2();
    let clean = e.import("clean");
    let want = imported_refs(&clean);
    for (phase, action, path) in IMPORT_PHASES {
        let repo = e.path(&format!("fault-{phase}"));
        copy_dir(&before, &repo);
        let out = e.fetch(&repo, Some(phase));
        let err = stderr(&out);
        let code = if phase == "attestations" {
            CANTCREAT
        } else {
            IOERR
        };
        assert_eq!(out.status.code(), Some(code), "{phase}: {err}");
        // Paths as the run saw them: relative to the repository it ran in.
        let named = format!("{action} ./{path}");
        assert!(err.contains(&named), "{phase}: wanted {named:?} in {err}");
        assert!(err.contains("No space left on device"), "{phase}: {err}");
        assert!(!err.contains("CorruptObject"), "{phase}: {err}");
        if phase == "attestations" || phase == "ref-state" {
            // Refs are written before the attestations and the ref state
            // (the durability order): they already hold the new, complete
            // history.
            assert_eq!(imported_refs(&repo), want, "{phase}");
        } else {
            assert_eq!(all_refs(&repo), refs_before, "{phase}: no ref moved");
        }
        assert!(
            repo.join(".mkit/git/upstream/importing").is_file(),
            "{phase}: the crash marker stays for the next run"
        );
        assert_eq!(leftovers(&repo), Vec::<String>::new(), "{phase}");

        let out = e.fetch(&repo, None);
        assert!(out.status.success(), "{phase}: {}", stderr(&out));
        assert_eq!(imported_refs(&repo), want, "{phase}: converged");
        assert_state_is_clean(&repo, &clean, phase);
        assert!(!repo.join(".mkit/git/upstream/importing").exists());
        assert!(closure_is_whole(&repo) > 10, "{phase}");
        assert_eq!(leftovers(&repo), Vec::<String>::new(), "{phase}");
    }
}

/// With one worker the commit chain writes its own files (no writer
/// thread): a full disk there is as fatal, and as clean, as with the writer.
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (cargo test --features test-hooks); CI runs it"
)]
fn a_failed_commit_write_with_one_worker_is_fatal_and_the_next_fetch_converges() {
    let e = env();
    e.upstream_v1();
    let before = e.import("before");
    let refs_before = all_refs(&before);
    // Twice the commits the chain writes at a time (64): with a linear
    // history nothing is left to write after the chain, so the failure can
    // only come from the chain's own writes.
    let mut stream = String::new();
    for i in 0..128 {
        stream.push_str("commit refs/heads/main\n");
        stream.push_str(&format!(
            "committer A <a@example.com> {} +0000\ndata 4\nc{i:03}\n",
            1_700_000_300 + i
        ));
        if i == 0 {
            stream.push_str("from refs/heads/main^0\n");
        }
        stream.push_str(&format!("M 100644 inline n{i:03}\ndata 4\n{i:04}\n"));
    }
    common::fast_import(&e.up, &stream);
    let clean = e.import("clean");
    let want = imported_refs(&clean);
    let repo = e.path("fault-commits-one-worker");
    copy_dir(&before, &repo);
    let out = bridge(
        &repo,
        &["fetch", "--key", e.k(), "--jobs", "1"],
        Some("commits"),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(IOERR), "{err}");
    assert!(
        err.contains("cannot write object ./.mkit/objects/"),
        "{err}"
    );
    assert_eq!(all_refs(&repo), refs_before, "no ref moved");
    assert_eq!(leftovers(&repo), Vec::<String>::new());
    let out = bridge(&repo, &["fetch", "--key", e.k(), "--jobs", "1"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(imported_refs(&repo), want, "converged");
    assert_state_is_clean(&repo, &clean, "commits, one worker");
}

/// A scratch mkit repository built with `snapshot`, exported with
/// `export --no-attest`.
struct ExportEnv {
    work: tempfile::TempDir,
    key: PathBuf,
}

fn export_env() -> ExportEnv {
    let work = tempfile::tempdir().unwrap();
    let key = common::key_file(&work.path().join("keys/k"), [0x42; 32]);
    ExportEnv { work, key }
}

impl ExportEnv {
    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// A fresh repository with one commit on `main`: a file, a nested
    /// directory and a chunked file.
    fn repo_v1(&self, rel: &str) -> PathBuf {
        let repo = common::init_repo(&self.path(rel));
        self.snapshot(&repo, "one\n", 1_700_000_000);
        repo
    }

    /// A second commit on `main` that changes only `a.txt` (so `dir` and
    /// its content are map hits).
    fn repo_v2(&self, repo: &Path) {
        self.snapshot(repo, "two\n", 1_700_000_100);
    }

    fn snapshot(&self, repo: &Path, a: &str, ts: u64) {
        let src = self.path(&format!("src-{ts}"));
        write_file(&src.join("a.txt"), a.as_bytes());
        write_file(&src.join("dir/b.txt"), b"bee\n");
        write_file(&src.join("dir/sub/c.txt"), b"sea\n");
        write_file(&src.join("dir/big.bin"), &pseudo_random(1_300_000, 9));
        common::snapshot(&src, repo, "main", &format!("at {ts}\n"), ts, &self.key);
        fs::remove_dir_all(&src).unwrap();
    }

    /// `export <dest> --no-attest --remote-name <remote>` in `repo`.
    fn export(&self, repo: &Path, dest: &Path, remote: &str, fail: Option<&str>) -> Output {
        bridge(
            repo,
            &[
                "export",
                dest.to_str().unwrap(),
                "--no-attest",
                "--remote-name",
                remote,
            ],
            fail,
        )
    }
}

/// A map line naming a git object the staging mirror lacks (or one of
/// another kind) is not trusted: the object is translated again, and the
/// export lands exactly what a clean export lands.
#[test]
fn a_poisoned_export_map_is_translated_again() {
    let e = export_env();
    // The clean result: both commits exported in one run.
    let clean = e.repo_v1("clean");
    e.repo_v2(&clean);
    let clean_dest = e.path("clean.git");
    let out = e.export(&clean, &clean_dest, "mirror", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = git_refs(&clean_dest);
    let dir_sha = git(&clean_dest, &["rev-parse", "refs/heads/main:dir"])
        .trim()
        .to_owned();
    let blob_sha = git(&clean_dest, &["rev-parse", "refs/heads/main~1:a.txt"])
        .trim()
        .to_owned();

    for (case, poison) in [("missing", "f".repeat(40)), ("wrong kind", blob_sha)] {
        let slug = case.replace(' ', "-");
        let repo = e.repo_v1(&format!("repo-{slug}"));
        let dest = e.path(&format!("dest-{slug}.git"));
        let out = e.export(&repo, &dest, "mirror", None);
        assert!(out.status.success(), "{case}: {}", stderr(&out));
        e.repo_v2(&repo);
        let map = repo.join(".mkit/git/mirror/map");
        let text = fs::read_to_string(&map).unwrap();
        let line = text
            .lines()
            .find(|l| l.ends_with(&dir_sha))
            .expect("a map line for dir")
            .to_owned();
        let blake3 = line[..64].to_owned();
        fs::write(&map, text.replace(&line, &format!("{blake3} {poison}"))).unwrap();

        let out = e.export(&repo, &dest, "mirror", None);
        assert!(out.status.success(), "{case}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("1 map entries named git objects the staging repository lacks"),
            "{case}: {}",
            stderr(&out)
        );
        assert_eq!(git_refs(&dest), want, "{case}: the clean export's ids");
        git(&dest, &["fsck", "--strict", "--no-dangling"]);
        // The later, correct line wins from now on.
        assert_eq!(
            map_pairs(&repo, "mirror").get(&blake3),
            Some(&dir_sha),
            "{case}"
        );
    }
}

/// A full disk while an export writes its pack, its map or its ref state:
/// exit 74 naming the action and path; the next export converges to what a
/// clean export lands (refs, map pairs, ref state).
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (cargo test --features test-hooks); CI runs it"
)]
fn a_failed_write_at_any_export_phase_is_fatal_and_the_next_export_converges() {
    let e = export_env();
    let clean = e.repo_v1("clean");
    let clean_dest = e.path("clean.git");
    let out = e.export(&clean, &clean_dest, "mirror", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v1 = git_refs(&clean_dest);
    e.repo_v2(&clean);
    let out = e.export(&clean, &clean_dest, "mirror", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = git_refs(&clean_dest);
    assert_ne!(want, v1);
    let want_map = map_pairs(&clean, "mirror");
    let want_state = state_file(&clean, "mirror", "refs");
    for (phase, action, path, pushed) in [
        ("pack", "cannot write", ".mkit/git/mirror/repo.git/", false),
        ("map", "cannot append to", ".mkit/git/mirror/map", true),
        (
            "ref-state",
            "cannot write",
            ".mkit/git/mirror/.refs.tmp.",
            true,
        ),
    ] {
        // The first commit exported cleanly, the second with the fault.
        let work = e.repo_v1(&format!("fault-{phase}"));
        let dest = e.path(&format!("dest-{phase}.git"));
        let out = e.export(&work, &dest, "mirror", None);
        assert!(out.status.success(), "{phase}: {}", stderr(&out));
        e.repo_v2(&work);
        let out = e.export(&work, &dest, "mirror", Some(phase));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(IOERR), "{phase}: {err}");
        let named = format!("{action} ./{path}");
        assert!(err.contains(&named), "{phase}: wanted {named:?} in {err}");
        assert!(err.contains("No space left on device"), "{phase}: {err}");
        // The push lands only after the pack is written, and the record
        // follows the push.
        let landed = if pushed { &want } else { &v1 };
        assert_eq!(&git_refs(&dest), landed, "{phase}");
        assert_eq!(leftovers(&work), Vec::<String>::new(), "{phase}");

        let out = e.export(&work, &dest, "mirror", None);
        assert!(out.status.success(), "{phase}: {}", stderr(&out));
        assert_eq!(git_refs(&dest), want, "{phase}: converged");
        assert_eq!(map_pairs(&work, "mirror"), want_map, "{phase}: the map");
        assert_eq!(
            state_file(&work, "mirror", "refs"),
            want_state,
            "{phase}: the ref state"
        );
        git(&dest, &["fsck", "--strict", "--no-dangling"]);
    }
}
