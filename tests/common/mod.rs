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
