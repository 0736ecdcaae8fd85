//! Temp files of killed runs, removed at the start of the next one.
//!
//! Every file the bridge writes goes through a temp file first; a run killed
//! with `kill -9` (or by a power cut) leaves its temp files behind, and
//! nothing reads them. A driver calls [`after_lock`] right after it takes
//! the state lock: it removes the temp files of writers that are no longer
//! running from the places a bridge run writes to. Our temp names carry the
//! writer's process id (`.<name>.tmp.<pid>.<seq>`, see
//! [`crate::durable::temp_path_for`]), so a temp file of a live process —
//! another run into the same store under another state name, or this very
//! process — is left alone. The staging repository belongs to the state
//! alone, so under its lock the pack temp files and ref lock files there
//! (gix's and git's, which carry no pid) are stale whoever wrote them.

use std::ffi::OsStr;
use std::path::Path;

use rayon::prelude::*;

use crate::durable::{is_dead_temp, sweep_dir, tagged_pid};
use crate::git::staging;
use crate::run::export::pack::BODY_PREFIX;

/// Remove the temp files killed runs left in the repository at `mkit_dir`
/// and in the state directory `state_dir`; returns how many were removed.
/// Call it with the state lock held. Best effort: anything that cannot be
/// read or removed is left for a later run.
pub fn after_lock(mkit_dir: &Path, state_dir: &Path) -> u64 {
    let mut removed = 0;
    // Files replaced whole: HEAD, the index, keys, stamps, ref state.
    for dir in [mkit_dir, &mkit_dir.join("keys"), state_dir] {
        removed += sweep_dir(dir, is_dead_temp);
    }
    // Refs and attestation envelopes live in trees of directories.
    for dir in [
        mkit_dir.join("refs"),
        mkit_dir.join(crate::attest::store::ATTESTATIONS_DIR),
    ] {
        removed += sweep_tree(&dir, &is_dead_temp);
    }
    // The two fan-outs a run fills with thousands of files.
    for dir in [
        mkit_dir.join("objects"),
        state_dir.join(crate::state::raw::RAW_DIR),
    ] {
        removed += sweep_fan_out(&dir);
    }
    let mirror = staging::mirror_path(state_dir);
    removed += sweep_dir(&mirror, is_dead_pack_body);
    removed += sweep_dir(&mirror.join("objects").join("pack"), is_pack_temp);
    // A ref transaction's lock files (`packed-refs.lock`, `HEAD.lock`,
    // `refs/heads/main.lock`): gix and git refuse to update a ref whose lock
    // file exists, so one left by a killed fetch would fail every later
    // fetch. Only runs holding this state's lock touch the staging refs.
    removed += sweep_dir(&mirror, is_lock_file);
    removed += sweep_tree(&mirror.join("refs"), &is_lock_file);
    removed
}

/// `dir` and every directory below it.
fn sweep_tree(dir: &Path, is_stale: &impl Fn(&OsStr) -> bool) -> u64 {
    let mut removed = sweep_dir(dir, is_stale);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                removed += sweep_tree(&e.path(), is_stale);
            }
        }
    }
    removed
}

/// A git lock file (`<name>.lock`; no ref name may end so).
fn is_lock_file(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.len() > 5 && name.ends_with(b".lock")
}

/// `dir` and its subdirectories (one level), in parallel.
fn sweep_fan_out(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let subdirs: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    sweep_dir(dir, is_dead_temp)
        + subdirs
            .par_iter()
            .map(|d| sweep_dir(d, is_dead_temp))
            .sum::<u64>()
}

/// An export's pack body (`mkit-bridge-pack.tmp.<pid>.<seq>`) whose writer
/// is gone.
fn is_dead_pack_body(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(BODY_PREFIX.as_bytes())
        && tagged_pid(name).is_some_and(|pid| !crate::durable::pid_is_alive(pid))
}

/// A pack or index being written into the staging repository: gix's
/// `.tmp<6 characters>` and git's `tmp_pack_*`, `tmp_idx_*`, `tmp_rev_*`.
/// Only this state's runs write there, and the caller holds its lock.
fn is_pack_temp(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    let gix = name.len() == 10
        && name.starts_with(b".tmp")
        && name[4..].iter().all(u8::is_ascii_alphanumeric);
    let git = [&b"tmp_pack_"[..], b"tmp_idx_", b"tmp_rev_"]
        .iter()
        .any(|p| name.starts_with(p));
    gix || git
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A pid that is certainly not running: a child that has exited and
    /// been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn removes_dead_writers_temps_everywhere_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let mkit = tmp.path().join(".mkit");
        let state = mkit.join("git").join("upstream");
        let dead = dead_pid();
        let live = std::process::id();
        let files = [
            (mkit.join(format!(".HEAD.tmp.{dead}.0")), true),
            (mkit.join("HEAD"), false),
            (mkit.join(format!("objects/ab/.cdef.tmp.{dead}.7")), true),
            (mkit.join(format!("objects/ab/.cdef.tmp.{live}.8")), false),
            (mkit.join("objects/ab/cdef"), false),
            (mkit.join(format!("objects/00/.11.tmp.{dead}.12")), true),
            (
                mkit.join(format!("refs/remotes/upstream/.main.tmp.{dead}.1")),
                true,
            ),
            (mkit.join("refs/remotes/upstream/main"), false),
            (
                mkit.join(format!("attestations/aa/.bb.dsse.tmp.{dead}.2")),
                true,
            ),
            (state.join(format!(".refs-import.tmp.{dead}.3")), true),
            (state.join(".refs-import.tmp"), false),
            (state.join(format!("raw/12/.3456.tmp.{dead}.4")), true),
            (state.join(format!("repo.git/{BODY_PREFIX}{dead}.5")), true),
            (state.join(format!("repo.git/{BODY_PREFIX}{live}.6")), false),
            (state.join("repo.git/objects/pack/.tmpAb12Cd"), true),
            (state.join("repo.git/objects/pack/tmp_pack_x1y2z3"), true),
            (state.join("repo.git/objects/pack/pack-1.pack"), false),
            (state.join("repo.git/packed-refs.lock"), true),
            (state.join("repo.git/packed-refs"), false),
            (state.join("repo.git/refs/tags/v1.lock"), true),
            (state.join("repo.git/refs/heads/ag/topic.lock"), true),
            (state.join("repo.git/refs/heads/ag/topic"), false),
            (mkit.join("refs/heads/main.lock"), false),
        ];
        for (path, _) in &files {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        }
        // A directory with a temp-like name is not a temp file.
        fs::create_dir_all(mkit.join(format!("objects/.d.tmp.{dead}.9"))).unwrap();
        let want = files.iter().filter(|(_, gone)| *gone).count() as u64;
        assert_eq!(after_lock(&mkit, &state), want);
        for (path, gone) in &files {
            assert_eq!(!path.exists(), *gone, "{}", path.display());
        }
        assert!(mkit.join(format!("objects/.d.tmp.{dead}.9")).is_dir());
        assert_eq!(after_lock(&mkit, &state), 0, "a second sweep finds nothing");
    }

    #[test]
    fn a_missing_layout_is_nothing_to_sweep() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(after_lock(&tmp.path().join("a"), &tmp.path().join("b")), 0);
    }
}
