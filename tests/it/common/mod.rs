//! Test support shared by the integration tests.
//!
//! Tests that need `../shared/conformance` or the reference `mkit` binary call
//! [`shared_dir`] / [`mkit_bin`]: when the dependency is absent they print why
//! and the test returns early, unless `MKIT_BRIDGE_STRICT=1`, where absence is
//! a failure (CI sets it, so cross-implementation tests never skip silently).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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
    use std::os::unix::fs::PermissionsExt;
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = keys.join("import.key");
    std::fs::write(&key, [byte; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
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
