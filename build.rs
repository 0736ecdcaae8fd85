//! Detects, at build time, whether the optional test inputs are on this
//! machine: the reference `mkit` 0.5.0 binary (cfg `has_mkit`) and the shared
//! conformance vectors in `../shared/conformance` (cfg `has_shared`). Tests
//! that need them are marked `ignore` with the reason when they are absent,
//! so a plain `cargo test` shows them as ignored instead of passing silently.
//! With `MKIT_BRIDGE_STRICT=1` both cfgs are set whatever is found, so the
//! tests run and fail loudly when an input is missing (CI runs this way).

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
}
