//! `--jobs` bounds every thread of a run (issue #12): the map loader, the
//! sweep, the store's renames and checkpoints and the gix fetch run on the
//! run's own pool or within its count, never on rayon's global pool (one
//! thread per core, for the life of the process).
//!
//! A test-hooks probe (`MKIT_BRIDGE_PROBE_DIR`, `run::hooks::ThreadProbe`)
//! samples `/proc/self/task` through the run and reports the most threads
//! seen at once and their names. The pool's threads are named `import-<i>`
//! (`export-<i>`); `mkit-bridge` is the main thread. A thread started
//! without a name shows its parent's: the one thread the translation starts
//! (with two workers or more) to write commit files while the commit chain
//! goes on shows as a worker, the export's flush of its staging objects
//! while the push runs as the main thread.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common;

/// A git upstream with more objects than a store checkpoint holds (2,048),
/// so checkpoints and parallel renames would happen.
fn upstream(dir: &Path) {
    common::linear_history(dir, 3, |c, stream| {
        for f in 0..1200 {
            let body = format!("file {f} version {c}\n");
            writeln!(stream, "M 100644 inline d{}/f{f}", f % 40).unwrap();
            writeln!(stream, "data {}\n{body}", body.len()).unwrap();
        }
    });
}

/// A work directory holding [`upstream`] as `up.git` and an import key.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let up = work.path().join("up.git");
    upstream(&up);
    let key = common::import_key(work.path(), 7);
    (work, up, key)
}

/// Run the bridge in `dir` with the thread probe on; returns the most
/// threads seen at once, their names, and every name any sample saw.
fn probed(dir: &Path, args: &[&str]) -> (usize, Vec<String>, Vec<String>) {
    probed_in(tempfile::tempdir().unwrap().path(), dir, args)
}

/// [`probed`], the probes written in `probes`.
fn probed_in(probes: &Path, dir: &Path, args: &[&str]) -> (usize, Vec<String>, Vec<String>) {
    let out = Command::new(common::bridge_bin())
        .current_dir(dir)
        .args(args)
        .env("MKIT_BRIDGE_PROBE_DIR", probes)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(probes.join("threads")).unwrap();
    let mut lines = text.lines();
    let most: usize = lines.next().unwrap().parse().unwrap();
    let mut words = || -> Vec<String> {
        lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let names = words();
    (most, names, words())
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (the thread probe); CI runs it"
)]
fn one_job_means_one_worker_in_every_phase() {
    let (work, up, key) = fixture();
    let dst = work.path().join("dst");
    let url = up.to_str().unwrap();
    let key = key.to_str().unwrap();

    // Import: the main thread and one worker; no global pool, no rename,
    // checkpoint or commit-file writer thread.
    let (most, names, ever) = probed(
        work.path(),
        &[
            "import",
            "--jobs",
            "1",
            "--key",
            key,
            url,
            dst.to_str().unwrap(),
        ],
    );
    assert!(most <= 2, "{most} threads: {names:?}");
    assert!(
        names.iter().all(|n| n == "mkit-bridge" || n == "import-0"),
        "{names:?}"
    );
    // The worker may be missing from the fullest sample; any sample counts.
    assert!(ever.iter().any(|n| n == "import-0"), "{ever:?}");
    let objects = fs::read_dir(dst.join(".mkit/objects"))
        .unwrap()
        .flatten()
        .map(|d| fs::read_dir(d.path()).map_or(0, |e| e.count()))
        .sum::<usize>();
    assert!(objects > 3000, "enough objects for checkpoints: {objects}");

    // A fetch after an upstream change: the same bound.
    let mut stream = String::from("commit refs/heads/main\n");
    stream.push_str("committer A <a@example.com> 1600000000 +0000\ndata 2\nc9\n");
    stream.push_str("from refs/heads/main^0\nM 100644 inline new\ndata 4\nnew\n");
    common::fast_import(&up, &stream);
    // gix indexes the received pack on one thread of its own
    // (`gix-pack.traverse_deltas.0`, cut to 15 bytes by the kernel) while
    // the main thread waits for it.
    let (most, names, _) = probed(&dst, &["fetch", "--jobs", "1", "--key", key]);
    assert!(most <= 3, "{most} threads: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n == "mkit-bridge" || n == "import-0" || n == "gix-pack.traver"),
        "{names:?}"
    );
    assert!(
        names.iter().filter(|n| n.starts_with("gix-")).count() <= 1,
        "{names:?}"
    );

    // An export: the main thread, one worker, and either gix indexing the
    // run's pack on one thread or the flush of the staging objects while
    // the push runs.
    let mirror = work.path().join("mirror.git");
    let (most, names, _) = probed(
        &dst,
        &[
            "export",
            "--jobs",
            "1",
            "--no-attest",
            mirror.to_str().unwrap(),
        ],
    );
    assert!(most <= 3, "{most} threads: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n == "mkit-bridge" || n == "export-0" || n == "gix-pack.traver"),
        "{names:?}"
    );
    assert!(
        names.iter().filter(|n| n.starts_with("gix-")).count() <= 1,
        "{names:?}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (the thread probe); CI runs it"
)]
fn the_probe_sees_every_worker() {
    let (work, up, key) = fixture();
    let dst = work.path().join("dst");
    let (most, names, _) = probed(
        work.path(),
        &[
            "import",
            "--jobs",
            "3",
            "--key",
            key.to_str().unwrap(),
            up.to_str().unwrap(),
            dst.to_str().unwrap(),
        ],
    );
    // A thread without a name of its own (the commit-file writer) shows its
    // parent's: count the distinct worker names.
    let workers: std::collections::BTreeSet<&String> =
        names.iter().filter(|n| n.starts_with("import-")).collect();
    assert_eq!(workers.len(), 3, "{names:?}");
    assert!(
        (4..=7).contains(&most),
        "main, 3 workers, and at most a checkpoint (with one renamer) and the writer: {most} {names:?}"
    );
}

/// With two workers the walk's reading runs on the second one
/// (`import/ahead.rs`): every object the walk expands is served by the
/// read-ahead job, no thread is added, and the store is the one a single
/// worker (which reads for itself) makes.
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (the thread probe); CI runs it"
)]
fn two_jobs_read_ahead_of_the_walk_on_the_pool() {
    let (work, up, key) = fixture();
    let mut stores = Vec::new();
    for jobs in ["1", "2"] {
        let probes = tempfile::tempdir().unwrap();
        let dst = work.path().join(format!("dst{jobs}"));
        let (most, names, ever) = probed_in(
            probes.path(),
            work.path(),
            &[
                "import",
                "--jobs",
                jobs,
                "--key",
                key.to_str().unwrap(),
                up.to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
        let read_ahead = fs::read_to_string(probes.path().join("read-ahead")).ok();
        if jobs == "1" {
            assert_eq!(read_ahead, None, "one worker reads for itself");
            assert!(most <= 2, "{most} threads: {names:?}");
        } else {
            let read_ahead = read_ahead.expect("a read-ahead probe");
            let counts: Vec<usize> = read_ahead
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            // 3 commits, and their trees (the root and 40 directories each).
            assert!(counts[0] >= 3 * 41, "{read_ahead}");
            assert_eq!(counts[1], 0, "{read_ahead}");
            let workers: std::collections::BTreeSet<&String> =
                ever.iter().filter(|n| n.starts_with("import-")).collect();
            assert!(workers.len() <= 2, "{ever:?}");
            // No thread of its own: the store's checkpoint (its renamer and
            // the commit-file writer show their parents' names) is the only
            // other name.
            assert!(
                ever.iter().all(|n| {
                    ["mkit-bridge", "import-0", "import-1", "checkpoint"].contains(&n.as_str())
                }),
                "{ever:?}"
            );
            assert!(most <= 6, "{most} threads: {names:?}");
        }
        stores.push((
            common::files_under(&dst.join(".mkit/objects")),
            common::mkit_refs(&dst),
        ));
    }
    assert!(
        stores[0] == stores[1],
        "stores differ between --jobs 1 and 2"
    );
}

/// A git upstream whose branch `bad` has a root tree whose loose file holds
/// another tree's bytes (they hash to another id); `main` is whole.
fn corrupt_upstream(up: &Path) {
    fs::create_dir_all(up).unwrap();
    common::git(up, &["init", "-q", "-b", "main"]);
    fs::write(up.join("a"), "a\n").unwrap();
    common::git(up, &["add", "a"]);
    common::git(up, &["commit", "-q", "-m", "c1"]);
    let tree = |name: &str, body: &str| {
        let file = up.join(format!("{name}.in"));
        fs::write(&file, body).unwrap();
        let blob = common::git(up, &["hash-object", "-w", file.to_str().unwrap()]);
        fs::write(&file, format!("100644 blob {}\t{name}\n", blob.trim())).unwrap();
        let out = Command::new("git")
            .arg("-C")
            .arg(up)
            .arg("mktree")
            .stdin(fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (named, other) = (tree("b", "bee\n"), tree("c", "sea\n"));
    let commit = common::git(up, &["commit-tree", &named, "-p", "HEAD", "-m", "bad"]);
    common::git(up, &["branch", "bad", commit.trim()]);
    let loose = |id: &str| up.join(".git/objects").join(&id[..2]).join(&id[2..]);
    fs::remove_file(loose(&named)).unwrap();
    fs::copy(loose(&other), loose(&named)).unwrap();
}

/// The corrupt tree is read by the read-ahead job with two workers and by
/// the walk itself with one: either way the import refuses the branch that
/// needs it as `CorruptObject`, names the id its bytes hash to, and imports
/// the rest, with the same report.
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (the read-ahead probe); CI runs it"
)]
fn a_corrupt_object_is_refused_alike_whether_the_walk_or_its_job_reads_it() {
    let work = tempfile::tempdir().unwrap();
    let up = work.path().join("up");
    corrupt_upstream(&up);
    let key = common::import_key(work.path(), 7);
    let mut reports = Vec::new();
    for jobs in ["1", "2"] {
        let probes = tempfile::tempdir().unwrap();
        let out = Command::new(common::bridge_bin())
            .current_dir(work.path())
            .env("MKIT_BRIDGE_PROBE_DIR", probes.path())
            .args(["import", up.to_str().unwrap(), &format!("dst{jobs}")])
            .args(["--key", key.to_str().unwrap(), "--jobs", jobs, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read_ahead = fs::read_to_string(probes.path().join("read-ahead")).ok();
        if jobs == "2" {
            // The job read the commits and trees, the corrupt one among them.
            let read_ahead = read_ahead.expect("a read-ahead probe");
            let served: usize = read_ahead
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            assert!(served >= 4, "{read_ahead}");
        } else {
            assert_eq!(read_ahead, None);
        }
        let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc.as_object_mut().unwrap().remove("seconds");
        let skipped = doc["skipped"].as_array().unwrap();
        assert_eq!(skipped.len(), 1, "{doc}");
        assert_eq!(skipped[0]["ref"], "refs/heads/bad", "{doc}");
        assert_eq!(skipped[0]["refusal"], "CorruptObject", "{doc}");
        assert!(
            skipped[0]["reason"]
                .as_str()
                .unwrap()
                .contains("its bytes hash to"),
            "{doc}"
        );
        let imported = common::json_imported_refs(&doc);
        assert_eq!(imported, ["refs/heads/main"], "{doc}");
        reports.push(doc);
    }
    assert_eq!(reports[0], reports[1]);
}
