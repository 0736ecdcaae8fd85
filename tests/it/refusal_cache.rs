//! The refusal cache (`refusals-cache`, issue #12): a fetch answers refused
//! tips that did not move from the last run's record instead of walking
//! their history again, and reuses the traced causes. Everything it prints
//! must be what a run without the cache prints, and a damaged cache is
//! rebuilt, never trusted.
//!
//! Each check runs the same fetch on two copies of one repository: `hot`
//! keeps its cache, `cold` has it deleted before every run. A test-hooks
//! probe (`MKIT_BRIDGE_PROBE_DIR`) says how many tips the run answered from
//! the cache and where the causes came from, so the test knows the cached
//! path was taken.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;
use crate::refusal_report::{PRN, Up, fetch, history, import, json, ok, redis_like};

const CACHE: &str = ".mkit/git/upstream/refusals-cache";

/// What a probed run said: (tips answered from the cache, where the causes
/// came from).
#[derive(Debug)]
struct Probed {
    out: Output,
    answered: usize,
    causes: Option<String>,
}

fn probed_fetch(dst: &Path, extra: &[&str]) -> Probed {
    let probes = tempfile::tempdir().unwrap();
    let key = dst.parent().unwrap().join("keys/import.key");
    let mut args = vec!["fetch", "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = Command::new(common::bridge_bin())
        .current_dir(dst)
        .args(&args)
        .env("MKIT_BRIDGE_PROBE_DIR", probes.path())
        .output()
        .unwrap();
    let answered = fs::read_to_string(probes.path().join("refusal-cache")).unwrap_or_else(|_| {
        panic!(
            "no refusal-cache probe: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let answered = answered
        .strip_prefix("answered ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad probe {answered:?}"));
    let causes = fs::read_to_string(probes.path().join("refusal-causes")).ok();
    Probed {
        out,
        answered,
        causes,
    }
}

/// stdout with the wall-clock field removed (JSON), or as is (text).
fn stdout_of(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut m)) => {
            m.remove("seconds");
            serde_json::to_string_pretty(&Value::Object(m)).unwrap()
        }
        _ => text,
    }
}

/// How many distinct tips the upstream refs `names` have.
fn tips<'a>(up: &Up, names: impl IntoIterator<Item = &'a String>) -> usize {
    names
        .into_iter()
        .map(|n| up.git(&["rev-parse", n], None))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn copy_dir(from: &Path, to: &Path) {
    common::run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// The two copies of one import.
struct Twins {
    hot: PathBuf,
    cold: PathBuf,
}

impl Twins {
    fn new(dst: &Path) -> Twins {
        let cold = dst.parent().unwrap().join("cold");
        copy_dir(dst, &cold);
        Twins {
            hot: dst.to_path_buf(),
            cold,
        }
    }

    /// The same fetch on both; asserts identical output and exit code and
    /// returns the hot run's probe.
    fn fetch(&self, extra: &[&str]) -> Probed {
        match fs::remove_file(self.cold.join(CACHE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{e}"),
        }
        let cold = probed_fetch(&self.cold, extra);
        assert_eq!(cold.answered, 0, "the cold copy has no cache");
        let hot = probed_fetch(&self.hot, extra);
        assert_eq!(hot.out.status.code(), cold.out.status.code(), "{extra:?}");
        assert_eq!(stdout_of(&hot.out), stdout_of(&cold.out), "{extra:?}");
        assert_eq!(
            String::from_utf8_lossy(&hot.out.stderr),
            String::from_utf8_lossy(&cold.out.stderr),
            "{extra:?}"
        );
        hot
    }

    fn assert_same_refs_and_cache(&self) {
        let refs = |d: &Path| common::files_under(&d.join(".mkit/refs"));
        assert_eq!(refs(&self.hot), refs(&self.cold));
        assert_eq!(
            fs::read(self.hot.join(CACHE)).unwrap(),
            fs::read(self.cold.join(CACHE)).unwrap(),
            "both runs record the same cache"
        );
    }
}

#[test]
fn a_cached_fetch_reports_exactly_what_a_full_walk_reports() {
    let work = tempfile::tempdir().unwrap();
    let r = redis_like(work.path());
    let (dst, out) = import(work.path(), &r.up, &[]);
    ok(&out);
    assert!(dst.join(CACHE).is_file(), "the import records its refusals");
    let twins = Twins::new(&dst);
    let blocked = tips(&r.up, &r.blocked);
    assert!(blocked > 3, "several refused tips");

    // Nothing changed upstream: every refused tip is answered, the causes
    // are the cached ones, in every output form.
    for extra in [
        &["--json"][..],
        &[],
        &["--verbose"],
        &["--dry-run", "--json"],
        &["--dry-run", "--verbose"],
    ] {
        let hot = twins.fetch(extra);
        assert_eq!(hot.answered, blocked, "{extra:?}");
        assert_eq!(hot.causes.as_deref(), Some("cached"), "{extra:?}");
    }
    let v = json(&twins.fetch(&["--json"]).out);
    assert_eq!(v["skipped"].as_array().unwrap().len(), r.blocked.len());
    assert_eq!(v["causes"][0]["path"], PRN);
    twins.assert_same_refs_and_cache();

    // An importable branch moves: it is walked, the refused tips are still
    // answered, and the skipped refs (so the causes) are unchanged.
    let main = r.up.git(&["rev-parse", "refs/heads/main"], None);
    let mut files = BTreeMap::new();
    files.insert("README".to_owned(), ("100644", r.up.blob("redis\n")));
    files.insert("NEWS".to_owned(), ("100644", r.up.blob("news\n")));
    let next =
        r.up.commit(&r.up.tree(&files), &[&main], 1_400_000_000, "news");
    r.up.set("refs/heads/main", &next);
    let hot = twins.fetch(&["--json"]);
    assert_eq!(hot.answered, blocked);
    assert_eq!(hot.causes.as_deref(), Some("cached"));
    let v = json(&hot.out);
    assert!(
        v["imported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["ref"] == "refs/heads/main" && i["changed"] == true),
        "{v:#}"
    );
    twins.assert_same_refs_and_cache();

    // That branch now takes prn.h in: it becomes refused, so the cached
    // causes no longer fit and the answered tips' history is walked for the
    // trace after all.
    files.insert(PRN.to_owned(), ("100644", r.up.blob("prn\n")));
    let bad =
        r.up.commit(&r.up.tree(&files), &[&next], 1_400_000_100, "vendor prn.h");
    r.up.set("refs/heads/main", &bad);
    let hot = twins.fetch(&["--json"]);
    assert_eq!(hot.answered, blocked);
    assert_eq!(hot.causes.as_deref(), Some("traced after a walk"));
    let v = json(&hot.out);
    assert_eq!(v["skipped"].as_array().unwrap().len(), r.blocked.len() + 1);
    let introduced = v["causes"][0]["introduced"].as_array().unwrap();
    assert!(
        introduced.iter().any(|i| i["commit"] == bad.as_str()),
        "{v:#}"
    );
    twins.assert_same_refs_and_cache();
    // ... and the next fetch is answered from the cache again.
    let hot = twins.fetch(&["--verbose"]);
    assert_eq!(hot.answered, blocked + 1);
    assert_eq!(hot.causes.as_deref(), Some("cached"));

    // A refused ref deleted and a new one: the run walks everything.
    let gone = r.blocked.iter().next().unwrap().clone();
    r.up.delete(&gone);
    r.up.set("refs/heads/8.0", &r.tip);
    let hot = twins.fetch(&["--json"]);
    assert_eq!(hot.answered, 0);
    assert_eq!(hot.causes.as_deref(), Some("traced"));
    twins.assert_same_refs_and_cache();
    let mut now = r.blocked.clone();
    now.remove(&gone);
    now.extend(["refs/heads/8.0".to_owned(), "refs/heads/main".to_owned()]);
    let hot = twins.fetch(&[]);
    assert_eq!(hot.answered, tips(&r.up, &now));
    assert_eq!(hot.causes.as_deref(), Some("cached"));
}

#[test]
fn a_damaged_refusal_cache_is_rebuilt_not_trusted() {
    let work = tempfile::tempdir().unwrap();
    let r = redis_like(work.path());
    let (dst, out) = import(work.path(), &r.up, &[]);
    ok(&out);
    let path = dst.join(CACHE);
    let good = fs::read(&path).unwrap();
    let state = dst.join(".mkit/git/upstream");
    let cold = {
        fs::remove_file(&path).unwrap();
        let p = probed_fetch(&dst, &["--json"]);
        assert_eq!(p.answered, 0);
        assert_eq!(
            fs::read(&path).unwrap(),
            good,
            "a run writes the same cache"
        );
        stdout_of(&p.out)
    };
    let body_start = good.iter().position(|&b| b == b'\n').unwrap() + 1;
    let body: Value = serde_json::from_slice(&good[body_start..]).unwrap();

    let mut flipped = good.clone();
    let i = good.len() - 10;
    flipped[i] ^= 0x20;
    let mut foreign = body.clone();
    foreign["bridge"] = Value::from("mkit-bridge 0.0.0 rules 0");
    let mut other_options = body.clone();
    other_options["fork"] = Value::from(true);
    // Each damage as the bytes of the file, or as a body written whole
    // (header and digest right) by the state layer.
    let json_of = |v: &Value| serde_json::to_vec(v).unwrap();
    enum Damage {
        File(Vec<u8>),
        Body(Vec<u8>),
    }
    let damaged = vec![
        ("a flipped byte", Damage::File(flipped)),
        ("a torn file", Damage::File(good[..good.len() / 2].to_vec())),
        ("an empty file", Damage::File(Vec::new())),
        (
            "a whole file that is not JSON",
            Damage::Body(b"not json\n".to_vec()),
        ),
        (
            "a whole file from another build",
            Damage::Body(json_of(&foreign)),
        ),
        (
            "a whole file for other options",
            Damage::Body(json_of(&other_options)),
        ),
    ];
    for (what, damage) in &damaged {
        match damage {
            Damage::File(bytes) => fs::write(&path, bytes).unwrap(),
            Damage::Body(body) => mkit_bridge::state::store_refusal_cache(&state, body).unwrap(),
        }
        let p = probed_fetch(&dst, &["--json"]);
        assert_eq!(p.answered, 0, "{what}: not trusted");
        assert_eq!(stdout_of(&p.out), cold, "{what}: the output of a full walk");
        assert_eq!(fs::read(&path).unwrap(), good, "{what}: rebuilt whole");
        // Rebuilt, it is used again.
        let p = probed_fetch(&dst, &["--json"]);
        assert_eq!(p.answered, tips(&r.up, &r.blocked), "{what}");
        assert_eq!(stdout_of(&p.out), cold, "{what}");
    }
}

#[test]
fn a_clean_upstream_gets_no_cache_file() {
    let work = tempfile::tempdir().unwrap();
    let up = Up::new(work.path());
    let mut files = BTreeMap::new();
    let c = history(
        &up,
        &mut files,
        None,
        &[("a", "1\n"), ("b", "2\n")],
        1_500_000_000,
    );
    up.set("refs/heads/main", c.last().unwrap());
    let (dst, out) = import(work.path(), &up, &[]);
    ok(&out);
    ok(&fetch(&dst, &[]));
    assert!(!dst.join(CACHE).exists());
}
