//! The staging mirror: cloned and fetched with gix from the fixtures.
//!
//! A first fetch clones every head and tag under its own name; a second one
//! after new upstream commits brings them in; one after an upstream deletion
//! prunes the ref; a sha256 upstream is refused (and a sha1 one whose URL
//! merely says "sha256" is not); and the same works over `git://` against a
//! `git daemon` on 127.0.0.1.

use crate::common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use mkit_bridge::git::staging::{self, StagingError, UpstreamRef};

/// The heads and tags of a git repository, as `git for-each-ref` reports them.
fn git_refs(dir: &Path) -> Vec<(String, String)> {
    let out = common::run_ok(Command::new("git").arg("-C").arg(dir).args([
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/heads",
        "refs/tags",
    ]));
    let mut refs: Vec<(String, String)> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, id) = l.split_once(' ').unwrap();
            (n.to_owned(), id.to_owned())
        })
        .collect();
    refs.sort();
    refs
}

fn as_pairs(refs: &[UpstreamRef]) -> Vec<(String, String)> {
    refs.iter()
        .map(|r| (r.name.clone(), r.target.to_hex()))
        .collect()
}

#[test]
fn clone_fetch_and_prune_follow_the_upstream() {
    let work = tempfile::tempdir().unwrap();
    let upstream = work.path().join("upstream.git");
    common::build_fixture("multi-branch", &upstream);
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let stop = AtomicBool::new(false);
    let url = upstream.to_str().unwrap();

    let first = staging::fetch(&state, url, &stop).unwrap();
    assert!(first.cloned);
    assert_eq!(as_pairs(&first.refs), git_refs(&upstream));
    assert_eq!(first.default_branch.as_deref(), Some("refs/heads/main"));
    // The mirror is an ordinary bare repository holding the same refs, in
    // one packed-refs file (no loose ref, as git's own local mirror clone).
    let mirror = staging::mirror_path(&state);
    assert_eq!(git_refs(&mirror), git_refs(&upstream));
    assert!(mirror.join("packed-refs").is_file());
    assert_eq!(common::files_under(&mirror.join("refs")).len(), 0);

    common::build_fixture("multi-branch.append", &upstream);
    let second = staging::fetch(&state, url, &stop).unwrap();
    assert!(!second.cloned);
    assert_eq!(as_pairs(&second.refs), git_refs(&upstream));
    assert_ne!(second.refs, first.refs);

    common::build_fixture("multi-branch.rewrite", &upstream);
    let third = staging::fetch(&state, url, &stop).unwrap();
    assert_eq!(as_pairs(&third.refs), git_refs(&upstream));
    assert!(
        !third
            .refs
            .iter()
            .any(|r| r.name == "refs/heads/release/1.0"),
        "deleted upstream branch must be pruned"
    );
    // git reads the same refs from the mirror: the pruned branch is gone
    // from packed-refs too.
    assert_eq!(git_refs(&mirror), git_refs(&upstream));
    // git agrees the mirror is whole, and no .keep file is left behind.
    common::run_ok(
        Command::new("git")
            .arg("-C")
            .arg(staging::mirror_path(&state))
            .args(["fsck", "--no-progress"]),
    );
    let packs = staging::mirror_path(&state).join("objects/pack");
    let keeps: Vec<_> = std::fs::read_dir(packs)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "keep"))
        .collect();
    assert!(keeps.is_empty(), "{keeps:?}");
}

#[test]
fn sha256_upstream_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let upstream = work.path().join("sha256.git");
    common::build_fixture("sha256", &upstream);
    let err = staging::fetch(
        work.path(),
        upstream.to_str().unwrap(),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(matches!(err, StagingError::Sha256Upstream { .. }), "{err}");
    assert!(!staging::mirror_path(work.path()).join("HEAD").exists());
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `git daemon` serving every repository under `base` on a free loopback
/// port; `None` (the test is skipped) where it cannot start.
fn serve(base: &Path, test: &str) -> Option<(Daemon, u16)> {
    // A free port on loopback, released just before the daemon binds it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = Command::new("git")
        .arg("daemon")
        .arg("--export-all")
        .arg("--reuseaddr")
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(daemon) = daemon else {
        return common::skip(test, "git daemon cannot start");
    };
    let daemon = Daemon(daemon);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "git daemon did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((daemon, port))
}

#[test]
fn git_protocol_through_a_local_daemon() {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("served");
    common::build_fixture("plain", &base.join("plain.git"));
    let Some((_daemon, port)) = serve(&base, "git_protocol_through_a_local_daemon") else {
        return;
    };
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let url = format!("git://127.0.0.1:{port}/plain.git");
    let out = staging::fetch(&state, &url, &AtomicBool::new(false)).unwrap();
    assert_eq!(as_pairs(&out.refs), git_refs(&base.join("plain.git")));
}

/// Over the protocol, a SHA-256 upstream is known by the object format the
/// server advertises (no local config to read), and refused as such.
#[test]
fn sha256_upstream_over_the_protocol_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("served");
    common::build_fixture("sha256", &base.join("h.git"));
    let Some((_daemon, port)) = serve(&base, "sha256_upstream_over_the_protocol_is_refused") else {
        return;
    };
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let url = format!("git://127.0.0.1:{port}/h.git");
    let err = staging::fetch(&state, &url, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, StagingError::Sha256Upstream { .. }), "{err}");
}

/// "sha256" in a URL or path says nothing about the object format: a SHA-1
/// repository there is cloned and fetched as usual, and a failure to reach
/// one is a transfer error (it used to be misreported as a SHA-256 upstream,
/// found by searching the error text).
#[test]
fn sha256_in_a_url_is_not_an_object_format() {
    let work = tempfile::tempdir().unwrap();
    let upstream = work.path().join("sha256").join("sha256-mirror.git");
    common::build_fixture("plain", &upstream);
    for (i, url) in [
        upstream.display().to_string(),
        format!("file://{}", upstream.display()),
    ]
    .iter()
    .enumerate()
    {
        let state = work.path().join(format!("state{i}"));
        std::fs::create_dir(&state).unwrap();
        let out = staging::fetch(&state, url, &AtomicBool::new(false)).unwrap();
        assert_eq!(as_pairs(&out.refs), git_refs(&upstream), "{url}");
        let again = staging::fetch(&state, url, &AtomicBool::new(false)).unwrap();
        assert_eq!(again.refs, out.refs, "{url}");
    }
    let missing = work.path().join("sha256").join("missing-sha256.git");
    for url in [
        format!("file://{}", missing.display()),
        // A closed loopback port: nothing listens there.
        format!(
            "git://127.0.0.1:{}/sha256.git",
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        ),
    ] {
        let state = work.path().join("state-missing");
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir(&state).unwrap();
        let err = staging::fetch(&state, &url, &AtomicBool::new(false)).unwrap_err();
        assert!(
            matches!(
                err,
                StagingError::Transfer {
                    action: "clone",
                    ..
                }
            ),
            "{url}: {err}"
        );
        assert!(err.to_string().starts_with("cannot clone "), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "{err}");
    }
}

#[test]
fn file_url_clones_through_the_protocol() {
    let work = tempfile::tempdir().unwrap();
    let upstream = work.path().join("upstream.git");
    common::build_fixture("annotated-tag", &upstream);
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let url = format!("file://{}", upstream.display());
    let out = staging::fetch(&state, &url, &AtomicBool::new(false)).unwrap();
    assert!(out.cloned);
    assert_eq!(as_pairs(&out.refs), git_refs(&upstream));
    // A local path takes the linking fast path and ends with the same refs.
    let state2 = work.path().join("state2");
    std::fs::create_dir(&state2).unwrap();
    let local =
        staging::fetch(&state2, upstream.to_str().unwrap(), &AtomicBool::new(false)).unwrap();
    assert_eq!(local.refs, out.refs);
    assert_eq!(local.default_branch, out.default_branch);
    // And it fetches again through gix from the recorded origin.
    let again =
        staging::fetch(&state2, upstream.to_str().unwrap(), &AtomicBool::new(false)).unwrap();
    assert!(!again.cloned);
    assert_eq!(again.refs, out.refs);
}
