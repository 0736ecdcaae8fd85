//! Test support shared by the integration tests.
//!
//! Tests that need `../shared/conformance` or the reference `mkit` binary call
//! [`shared_dir`] / [`mkit_bin`]: when the dependency is absent they print why
//! and the test returns early, unless `MKIT_BRIDGE_STRICT=1`, where absence is
//! a failure (CI sets it, so cross-implementation tests never skip silently).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// True when `MKIT_BRIDGE_STRICT=1`.
pub fn strict() -> bool {
    std::env::var("MKIT_BRIDGE_STRICT").is_ok_and(|v| v == "1")
}

/// Report a missing dependency: panic under strict mode, else print and return `None`.
pub fn skip<T>(test: &str, why: &str) -> Option<T> {
    if strict() {
        panic!("{test}: {why} (MKIT_BRIDGE_STRICT=1 forbids skipping)");
    }
    eprintln!("skipped {test}: {why}");
    None
}

/// The golden vectors folder `../shared/conformance/mkit-golden`, if present.
pub fn golden_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/mkit-golden");
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(test, &format!("{} is absent", dir.display()))
    }
}

/// The reference `mkit` binary (`$MKIT_BIN`, else `mkit` on PATH), if it runs.
pub fn mkit_bin(test: &str) -> Option<PathBuf> {
    let bin = std::env::var_os("MKIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("mkit"));
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => Some(bin),
        _ => skip(
            test,
            "the reference `mkit` binary is not on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge)",
        ),
    }
}

/// Our own binary, as built by cargo for integration tests.
pub fn bridge_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mkit-bridge"))
}

/// Run a command, panicking with its output when it fails; returns stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `mkit-bridge import <upstream> <repo> --quiet --key <key>`, which must
/// succeed; returns stdout.
pub fn bridge_import(upstream: &Path, repo: &Path, key: &Path) -> Vec<u8> {
    run_ok(
        Command::new(bridge_bin())
            .arg("import")
            .arg(upstream)
            .arg(repo)
            .args(["--quiet", "--key"])
            .arg(key),
    )
}

/// Feed `stream` to `git fast-import` in `dir`, which must succeed.
pub fn fast_import(dir: &Path, stream: &str) {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A bare repository at `dir` (branch `main`) with a linear history of
/// `commits` commits made by `git fast-import`: commit `c` is dated
/// 1,500,000,000 + `c` seconds, says `c<c>`, and changes what `files(c,
/// stream)` writes (fast-import `M` lines with inline data).
pub fn linear_history(dir: &Path, commits: usize, mut files: impl FnMut(usize, &mut String)) {
    use std::fmt::Write as _;
    run_ok(
        Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(dir),
    );
    let mut stream = String::new();
    for c in 0..commits {
        let message = format!("c{c}");
        // Later commits of one stream continue the branch by themselves.
        writeln!(
            stream,
            "commit refs/heads/main\ncommitter A <a@example.com> {} +0000\ndata {}\n{message}",
            1_500_000_000 + c,
            message.len()
        )
        .unwrap();
        files(c, &mut stream);
    }
    fast_import(dir, &stream);
}

/// Read a golden vector file.
pub fn read_golden(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("cannot read golden {rel}: {e}"))
}

/// Parse a MANIFEST.txt into (name, rest-of-line fields).
pub fn manifest(dir: &Path, folder: &str) -> Vec<(String, Vec<String>)> {
    let text = String::from_utf8(read_golden(dir, &format!("{folder}/MANIFEST.txt"))).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace().map(str::to_owned);
            let name = it.next().unwrap();
            (name, it.collect())
        })
        .collect()
}

/// Build fixture (or apply step) `name` from `fixtures/git/build.sh` into `dir`.
pub fn build_fixture(name: &str, dir: &Path) {
    run_ok(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/git/build.sh"))
            .arg(name)
            .arg(dir),
    );
}

/// Write a raw 32-byte key seed of `byte`s at `<dir>/keys/import.key`
/// (directory 0700, file 0600) and return its path.
pub fn import_key(dir: &Path, byte: u8) -> PathBuf {
    key_file(&dir.join("keys/import.key"), [byte; 32])
}

/// Write the raw key `seed` at `path`, its directory made 0700 and the file
/// 0600 (the modes the key loader demands); returns `path`.
pub fn key_file(path: &Path, seed: [u8; 32]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(path, seed).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// A fixture upstream and a place to import it: `<work>/src` built by
/// `fixtures/git/build.sh <fixture>`, an import key of `0x42`s, and
/// `<work>/dst`, not created yet.
pub struct FixtureImport {
    pub work: tempfile::TempDir,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub key: PathBuf,
}

impl FixtureImport {
    pub fn new(fixture: &str) -> FixtureImport {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        build_fixture(fixture, &src);
        let key = import_key(work.path(), 0x42);
        FixtureImport {
            dst: work.path().join("dst"),
            src,
            key,
            work,
        }
    }
}

/// A commit of `tree` on `parents` by `author` at `ts`, signed by `key`.
pub fn signed_commit(
    key: &mkit_bridge::mkit::sign::KeyPair,
    tree: mkit_bridge::mkit::Id,
    parents: Vec<mkit_bridge::mkit::Id>,
    author: &[u8],
    message: &[u8],
    ts: u64,
) -> mkit_bridge::mkit::object::Commit {
    use mkit_bridge::mkit::Id;
    use mkit_bridge::mkit::object::{Commit, Identity};
    let mut c = Commit {
        tree,
        parents,
        author: Identity::opaque(author.to_vec()),
        message: message.to_vec(),
        timestamp: ts,
        signer: [0; 32],
        message_hash: Id::ZERO,
        content_digest: Id::ZERO,
        signature: [0; 64],
    };
    mkit_bridge::mkit::sign::sign_commit(&mut c, key).unwrap();
    c
}

/// A tree of `entries` (name, mode, id), in the order given.
pub fn tree_of(
    entries: &[(
        &[u8],
        mkit_bridge::mkit::object::EntryMode,
        mkit_bridge::mkit::Id,
    )],
) -> mkit_bridge::mkit::object::Object {
    use mkit_bridge::mkit::object::{Object, Tree, TreeEntry};
    Object::Tree(Tree {
        entries: entries
            .iter()
            .map(|&(name, mode, id)| TreeEntry {
                name: name.to_vec(),
                mode,
                id,
            })
            .collect(),
    })
}

/// Build step `step` of `fixtures/checkout/build.sh` into `dir`.
pub fn checkout_fixture(step: &str, dir: &Path) {
    run_ok(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/checkout/build.sh"))
            .arg(step)
            .arg(dir),
    );
}

/// Whether `git` runs (a skip, or a failure under strict mode, when not).
pub fn have_git(test: &str) -> bool {
    match Command::new("git").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => skip::<()>(test, "git is not on PATH").is_some(),
    }
}

/// `mkit-bridge <args>` in `dir`, whatever it does.
pub fn bridge(dir: &Path, args: &[&str]) -> Output {
    Command::new(bridge_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run mkit-bridge {args:?}: {e}"))
}

/// `mkit-bridge <args>` in `dir`, which must succeed; returns stdout.
pub fn bridge_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    run_ok(Command::new(bridge_bin()).args(args).current_dir(dir))
}

/// A fresh mkit repository at `repo` (`mkit-bridge init`).
pub fn init_repo(repo: &Path) -> PathBuf {
    run_ok(Command::new(bridge_bin()).arg("init").arg(repo));
    repo.to_path_buf()
}

/// Commit the directory `src` as the whole tree of `branch` in `repo`
/// (`mkit-bridge snapshot`), with message `msg`, at `ts`, signed by `key`.
pub fn snapshot(src: &Path, repo: &Path, branch: &str, msg: &str, ts: u64, key: &Path) {
    run_ok(
        Command::new(bridge_bin())
            .arg("snapshot")
            .arg(src)
            .arg("--repo")
            .arg(repo)
            .args(["--branch", branch, "-m", msg, "--timestamp"])
            .arg(ts.to_string())
            .arg("--key")
            .arg(key),
    );
}

/// Write `files` (path, content, executable) into the scratch directory
/// `src`, commit them as the whole tree of `branch` in `repo` at `ts` with
/// the message `<branch> at <ts>`, signed by `key`, and remove `src`.
pub fn snapshot_files(
    src: &Path,
    repo: &Path,
    branch: &str,
    files: &[(&str, &[u8], bool)],
    ts: u64,
    key: &Path,
) {
    use std::os::unix::fs::PermissionsExt;
    for (name, data, exec) in files {
        let p = src.join(name);
        write_file(&p, data);
        if *exec {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    snapshot(src, repo, branch, &format!("{branch} at {ts}\n"), ts, key);
    std::fs::remove_dir_all(src).unwrap();
}

/// Write `data` at `path`, making its directories.
pub fn write_file(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// `git -C <dir>` with no system config and a fixed author and committer
/// (`Someone <someone@example.com>`); dates are the caller's.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Someone")
        .env("GIT_AUTHOR_EMAIL", "someone@example.com")
        .env("GIT_COMMITTER_NAME", "Someone")
        .env("GIT_COMMITTER_EMAIL", "someone@example.com");
    cmd
}

/// Give a git command no system config, the upstream fixtures' author and
/// committer (`Up Stream <up@example.com>`) and their pinned date
/// (1700000000 +0000), so the commits it makes have fixed ids.
pub fn up_stream_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Up Stream")
        .env("GIT_AUTHOR_EMAIL", "up@example.com")
        .env("GIT_COMMITTER_NAME", "Up Stream")
        .env("GIT_COMMITTER_EMAIL", "up@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
}

/// `git -C <dir> <args>` ([`git_cmd`]), which must succeed; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(run_ok(git_cmd(dir).args(args))).unwrap()
}

/// [`git`] with the author and committer dates set to `date`
/// (`"<seconds> +0000"`).
pub fn git_dated(dir: &Path, args: &[&str], date: &str) -> String {
    String::from_utf8(run_ok(
        git_cmd(dir)
            .args(args)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date),
    ))
    .unwrap()
}

/// `<refname> <sha1>` of every ref of a git repository, one line each.
pub fn git_refs(dir: &Path) -> String {
    git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
}

/// `(x[a], x[b])`, both strings, for each element `x` of the JSON array
/// `v`, collected (into a `Vec`, a map...).
pub fn json_pairs<C: FromIterator<(String, String)>>(v: &serde_json::Value, a: &str, b: &str) -> C {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            (
                x[a].as_str().unwrap().to_owned(),
                x[b].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A run's stderr, lossily as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `len` bytes of xorshift noise from `seed`: incompressible content (a
/// chunked file) that is the same on every run.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `cp -a <from> <to>`.
pub fn copy_dir(from: &Path, to: &Path) {
    run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// The lines of the file at `path` (none when it is absent), sorted.
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `HEAD` and every ref file of the mkit repository at `repo`, values
/// trimmed; `None` when there is no `.mkit`.
pub fn mkit_refs(repo: &Path) -> Option<std::collections::BTreeMap<String, String>> {
    let mkit = repo.join(".mkit");
    if !mkit.is_dir() {
        return None;
    }
    let mut out = std::collections::BTreeMap::new();
    let head = std::fs::read_to_string(mkit.join("HEAD")).unwrap();
    out.insert("HEAD".to_owned(), head.trim().to_owned());
    let mut stack = vec![mkit.join("refs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(&mkit).unwrap().to_str().unwrap().to_owned();
                out.insert(name, std::fs::read_to_string(&p).unwrap().trim().to_owned());
            }
        }
    }
    Some(out)
}

/// Every file under `dir` (path relative to `dir` -> bytes); an absent
/// directory is empty. For before/after and tool-against-tool comparisons.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap_or_default(),
                );
            }
        }
    }
    out
}

/// Every path under `root` (not following symlinks, `.mkit` left out), with
/// what it is: file content and exec bit, symlink target, or a directory.
pub fn worktree_snapshot(root: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let name = rel.join(e.file_name());
            if name == Path::new(".mkit") {
                continue;
            }
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let key = name.to_string_lossy().into_owned();
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(e.path()).unwrap();
                out.insert(key, format!("link -> {}", t.display()));
            } else if meta.is_dir() {
                out.insert(key.clone(), "dir".to_owned());
                stack.push(name);
            } else {
                let data = std::fs::read(e.path()).unwrap();
                let exec = meta.permissions().mode() & 0o111 != 0;
                out.insert(
                    key,
                    format!("file exec={exec} {}", blake3::hash(&data).to_hex()),
                );
            }
        }
    }
    out
}

/// `git archive <rev>` of a bare repository, extracted into `into`.
pub fn git_archive(git_dir: &Path, rev: &str, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let tar = run_ok(Command::new("git").arg("--git-dir").arg(git_dir).args([
        "archive",
        "--format=tar",
        rev,
    ]));
    let mut child = Command::new("tar")
        .args(["-x", "-C"])
        .arg(into)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait().unwrap().success());
}

/// Spawn `cmd` with the `test-hooks` pause point `point` armed (`flag` is
/// the file the run creates on reaching it), wait until it pauses there,
/// send `signal`, and return what the run did.
pub fn signalled_at(
    cmd: &mut Command,
    point: &str,
    flag: &Path,
    signal: rustix::process::Signal,
) -> std::process::Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let _ = std::fs::remove_file(flag);
    let mut child = cmd
        .env("MKIT_BRIDGE_PAUSE_AT", point)
        .env("MKIT_BRIDGE_PAUSED", flag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !flag.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} ended ({status}) before pausing at {point}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{cmd:?} never paused at {point}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    child.wait_with_output().unwrap()
}

/// The `ref` of each entry of `imported` in an `import --json` or
/// `fetch --json` document, in order.
pub fn json_imported_refs(doc: &serde_json::Value) -> Vec<&str> {
    doc["imported"]
        .as_array()
        .expect("an imported list")
        .iter()
        .map(|r| r["ref"].as_str().expect("a ref name"))
        .collect()
}
