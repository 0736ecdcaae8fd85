//! Detects, at build time, whether the optional test inputs are on this
//! machine: the reference `mkit` 0.5.0 binary (cfg `has_mkit`) and the shared
//! conformance vectors in `../shared/conformance` (cfg `has_shared`). Tests
//! that need them are marked `ignore` with the reason when they are absent,
//! so a plain `cargo test` shows them as ignored instead of passing silently.
//! With `MKIT_BRIDGE_STRICT=1` both cfgs are set whatever is found, so the
//! tests run and fail loudly when an input is missing (CI runs this way).
//!
//! It also packs the binary's relative relocations where the C library
//! supports it ([`relr`]).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(has_mkit)");
    println!("cargo:rustc-check-cfg=cfg(has_shared)");
    println!("cargo:rerun-if-env-changed=MKIT_BRIDGE_STRICT");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=build.rs");
    let strict = std::env::var("MKIT_BRIDGE_STRICT").is_ok_and(|v| v == "1");
    let shared = Path::new("../shared/conformance");
    println!("cargo:rerun-if-changed=../shared/conformance");
    if strict || shared.is_dir() {
        println!("cargo:rustc-cfg=has_shared");
    }
    let mkit = Command::new("mkit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"mkit 0.5.0"));
    // Installing or removing `mkit` changes cargo's bin directory.
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo").into_os_string()))
    {
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(&home).join("bin").display()
        );
    }
    if strict || mkit {
        println!("cargo:rustc-cfg=has_mkit");
    }
    relr();
}

/// Link the binaries with packed relative relocations (`-z
/// pack-relative-relocs`, DT_RELR) when building natively for Linux against
/// a glibc whose loader reads them (it defines the version
/// `GLIBC_ABI_DT_RELR`, 2.36 and later; the linker then makes the binary
/// require it, so an older loader refuses it by name instead of crashing).
/// The position-independent binary otherwise carries some 31,000 relative
/// relocations, 760 KB that the loader reads at every start and that stay
/// mapped: about a tenth of a small run's peak memory (spec/PERFORMANCE.md).
/// As DT_RELR they take 8 KB. Anywhere else nothing changes.
fn relr() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("TARGET") != var("HOST")
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return;
    }
    let Ok(out) = Command::new("cc")
        .arg("-print-file-name=libc.so.6")
        .output()
    else {
        return;
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // The compiler prints the bare name back when it finds no such file.
    if !out.status.success() || !Path::new(&path).is_absolute() {
        return;
    }
    println!("cargo:rerun-if-changed={path}");
    let Ok(libc) = std::fs::read(&path) else {
        return;
    };
    let version = b"GLIBC_ABI_DT_RELR";
    if libc.windows(version.len()).any(|w| w == version) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
