//! `mirror <config>`: a fleet of upstreams, from the CLI. A normal upstream,
//! one with refusals, a sha256 one and one that does not exist: the table
//! and the JSON say what became of each, the good ones hold exactly what a
//! direct import under the same key gives, the exit code reflects the
//! failures, a second run is unchanged; a held lock is reported as busy;
//! two overlapping runs leave every repository as one run does.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A work directory with upstreams, one key and a config naming them.
struct Fleet {
    work: tempfile::TempDir,
    key: PathBuf,
    config: PathBuf,
}

/// The upstreams and their fixtures (`None`: a path that does not exist).
const FLEET: &[(&str, Option<&str>)] = &[
    ("good", Some("multi-branch")),
    ("refused", Some("aux-name")),
    ("sha", Some("sha256")),
    ("missing", None),
];

fn fleet(members: &[(&str, Option<&str>)], extra: &str) -> Fleet {
    let work = tempfile::tempdir().unwrap();
    let mut config = format!("key = \"keys/import.key\"\n{extra}\n");
    for (name, fixture) in members {
        if let Some(f) = fixture {
            common::build_fixture(f, &work.path().join("upstreams").join(name));
        }
        // Relative paths: resolved against the config's directory.
        config.push_str(&format!(
            "[[upstream]]\nname = \"{name}\"\nurl = \"upstreams/{name}\"\ntarget = \"repos/{name}\"\n\n"
        ));
    }
    let key = common::import_key(work.path(), 0x42);
    let path = work.path().join("fleet.toml");
    std::fs::write(&path, config).unwrap();
    Fleet {
        work,
        key,
        config: path,
    }
}

impl Fleet {
    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    fn target(&self, name: &str) -> PathBuf {
        self.path(&format!("repos/{name}"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::bridge_bin());
        // Run from elsewhere: nothing may depend on the working directory.
        cmd.arg("mirror")
            .arg(&self.config)
            .args(args)
            .current_dir("/")
            .env_remove("MKIT_BRIDGE_MIRROR_PANIC");
        cmd
    }

    fn mirror(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn mirror_json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.mirror(&all);
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), doc)
    }

    /// A direct `import <upstream> --remote-name origin` into a new
    /// repository under the same key: (its JSON outcome, the repository).
    fn direct(&self, name: &str) -> (Value, PathBuf) {
        let dir = self.path(&format!("direct/{name}"));
        common::run_ok(Command::new(common::bridge_bin()).arg("init").arg(&dir));
        let out = common::run_ok(
            Command::new(common::bridge_bin())
                .arg("import")
                .arg(self.path(&format!("upstreams/{name}")))
                .args(["--remote-name", "origin", "--json", "--quiet", "--key"])
                .arg(&self.key)
                .current_dir(&dir),
        );
        (serde_json::from_slice(&out).unwrap(), dir)
    }
}

fn upstream<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc}"))
}

/// The repository as a comparison sees it: every ref and `HEAD`, and the
/// names of every object (content-addressed, so names are content).
fn repo_view(dir: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let refs = common::mkit_refs(dir).unwrap_or_default();
    let objects = common::files_under(&dir.join(".mkit/objects"))
        .into_keys()
        .collect();
    (refs, objects)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The table's rows by name: the cells after the name.
fn table_rows(stdout: &[u8]) -> BTreeMap<String, Vec<String>> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "STATUS", "REFS", "CHANGED", "SKIPPED", "TIME", "DETAIL"
        ]
    );
    lines
        .filter(|l| !l.contains(" upstreams: "))
        .map(|l| {
            let mut cells = l.split_whitespace().map(str::to_owned);
            (cells.next().unwrap(), cells.collect())
        })
        .collect()
}

#[test]
fn a_fleet_reports_each_upstream_and_a_second_run_is_unchanged() {
    let f = fleet(FLEET, "");
    let (code, doc) = f.mirror_json(&[]);
    assert_eq!(code, 1, "a failed upstream makes the run fail: {doc}");
    assert_eq!(doc["ok"], false);
    assert_eq!(
        doc["totals"],
        serde_json::json!({"updated": 2, "unchanged": 0, "failed": 2, "busy": 0})
    );
    let names: Vec<&str> = doc["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good", "refused", "sha", "missing"], "config order");

    // The good ones: what a direct import under the same key gives.
    for name in ["good", "refused"] {
        let u = upstream(&doc, name);
        let (direct, dir) = f.direct(name);
        let imported = direct["imported"].as_array().unwrap();
        assert!(!imported.is_empty());
        assert_eq!(u["status"], "updated", "{u}");
        assert_eq!(u["created"], true);
        assert_eq!(u["error"], Value::Null);
        assert_eq!(u["refs"], imported.len());
        assert_eq!(u["changed"], imported.len(), "a first import: all new");
        assert_eq!(u["remote"], "origin");
        assert_eq!(u["key_file"], f.key.display().to_string());
        assert_eq!(u["key_generated"], false);
        let skipped: Vec<(&Value, &Value)> = direct["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (&s["ref"], &s["reason"]))
            .collect();
        let ours: Vec<(&Value, &Value)> = u["skipped_refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (&s["ref"], &s["reason"]))
            .collect();
        assert_eq!(ours, skipped, "{name}");
        assert_eq!(u["skipped"], skipped.len());
        assert_eq!(repo_view(&f.target(name)), repo_view(&dir), "{name}");
        // A repository without a worktree: tracking refs and tags only.
        let refs = common::mkit_refs(&f.target(name)).unwrap();
        assert!(refs.contains_key("refs/remotes/origin/main"), "{refs:?}");
        assert!(
            !refs.keys().any(|r| r.starts_with("refs/heads/")),
            "{refs:?}"
        );
        let entries: Vec<_> = std::fs::read_dir(f.target(name))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, [".mkit"]);
    }
    let refused = upstream(&doc, "refused");
    assert_eq!(refused["skipped"], 1);
    assert_eq!(refused["skipped_refs"][0]["ref"], "refs/heads/aux");
    assert_eq!(refused["skipped_refs"][0]["refusal"], "TreeEntryName");

    let sha = upstream(&doc, "sha");
    assert_eq!(sha["status"], "failed");
    assert!(
        sha["error"]
            .as_str()
            .unwrap()
            .contains("SHA-256 repository"),
        "{sha}"
    );
    assert_eq!(sha["refs"], Value::Null);
    let missing = upstream(&doc, "missing");
    assert_eq!(missing["status"], "failed");
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .ends_with("upstreams/missing: no such repository"),
        "{missing}"
    );
    assert!(
        !f.target("missing").exists(),
        "nothing is created for an upstream that is not there"
    );

    // Second run, as text: everything that worked is unchanged, and
    // nothing moved.
    let before: Vec<_> = ["good", "refused"].map(|n| repo_view(&f.target(n))).into();
    let out = f.mirror(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = table_rows(&out.stdout);
    assert_eq!(rows.len(), 4, "{rows:?}");
    let good_refs = upstream(&doc, "good")["refs"].to_string();
    assert_eq!(rows["good"][..4], ["unchanged", &good_refs, "0", "0"]);
    assert_eq!(rows["refused"][..4], ["unchanged", "1", "0", "1"]);
    assert_eq!(rows["sha"][..4], ["failed", "-", "-", "-"]);
    assert_eq!(rows["missing"][..4], ["failed", "-", "-", "-"]);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("4 upstreams: 0 updated, 2 unchanged, 2 failed, 0 busy"),
        "{text}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("error: 2 of 4 upstreams failed: sha, missing"),
        "{err}"
    );
    // One line per upstream as it finished, then the details.
    assert_eq!(err.matches("mirror: ").count(), 4, "{err}");
    // The cause was reported by the first run: counted, not repeated...
    assert!(
        err.contains("note: refused: refs skipped (1 by 1 cause reported before;"),
        "{err}"
    );
    assert!(!err.contains("skipping refs/heads/aux"), "{err}");
    // ... unless asked.
    let err = stderr(&f.mirror(&["--verbose"]));
    assert!(
        err.contains("warning: refused: skipping refs/heads/aux:"),
        "{err}"
    );
    assert!(err.contains("  cause: "), "{err}");
    let after: Vec<_> = ["good", "refused"].map(|n| repo_view(&f.target(n))).into();
    assert_eq!(after, before);

    // Only the good ones: success.
    let (code, doc) = f.mirror_json(&["--only", "good,refused"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["ok"], true);
    assert_eq!(
        doc["totals"],
        serde_json::json!({"updated": 0, "unchanged": 2, "failed": 0, "busy": 0})
    );
    let out = f.mirror(&["--only", "nosuch"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("no upstream named \"nosuch\""));

    // The upstream moves (fast-forwards, a new branch and tag, then a
    // rewind, a deleted branch and a moved tag): a fetch into the mirror,
    // equal to a direct fetch.
    let direct = f.path("direct/good");
    for step in ["multi-branch.append", "multi-branch.rewrite"] {
        common::build_fixture(step, &f.path("upstreams/good"));
    }
    let (code, doc) = f.mirror_json(&["--only", "good", "--parallel", "1"]);
    assert_eq!(code, 0, "{doc}");
    let good = upstream(&doc, "good");
    assert_eq!(good["status"], "updated");
    assert_eq!(good["created"], false);
    assert_eq!(good["removed"], 1, "release/1.0 was deleted: {good}");
    assert!(good["changed"].as_u64().unwrap() >= 4, "{good}");
    assert!(
        good["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("force-pushed")),
        "{good}"
    );
    common::run_ok(
        Command::new(common::bridge_bin())
            .args(["fetch", "--remote-name", "origin", "--quiet", "--key"])
            .arg(&f.key)
            .current_dir(&direct),
    );
    assert_eq!(repo_view(&f.target("good")), repo_view(&direct));
}

#[test]
fn a_held_state_lock_is_reported_busy_without_waiting() {
    let f = fleet(&FLEET[..2], "");
    let (code, _) = f.mirror_json(&[]);
    assert_eq!(code, 0);
    let before = repo_view(&f.target("good"));
    // Another run's lock on good's state.
    let held = mkit_bridge::state::try_lock_state(&f.target("good").join(".mkit"), "origin")
        .unwrap()
        .expect("the lock is free");
    let (code, doc) = f.mirror_json(&[]);
    assert_eq!(code, 75, "busy only: retry later: {doc}");
    let good = upstream(&doc, "good");
    assert_eq!(good["status"], "busy");
    assert!(
        good["error"].as_str().unwrap().contains("git-origin.lock"),
        "{good}"
    );
    // Reported at once: the import's own 5 s lock wait never began.
    assert!(good["seconds"].as_f64().unwrap() < 5.0, "{good}");
    assert_eq!(upstream(&doc, "refused")["status"], "unchanged");
    assert_eq!(
        doc["totals"],
        serde_json::json!({"updated": 0, "unchanged": 1, "failed": 0, "busy": 1})
    );
    drop(held);
    assert_eq!(repo_view(&f.target("good")), before);
    let (code, doc) = f.mirror_json(&[]);
    assert_eq!(code, 0, "{doc}");
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (cargo test --features test-hooks); CI runs it"
)]
fn a_panic_in_one_upstream_fails_only_that_one() {
    let f = fleet(&FLEET[..2], "log_dir = \"logs\"");
    let out = f
        .command(&["--json", "--parallel", "1"])
        .env("MKIT_BRIDGE_MIRROR_PANIC", "good")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let good = upstream(&doc, "good");
    assert_eq!(good["status"], "failed");
    assert!(
        good["error"]
            .as_str()
            .unwrap()
            .contains("internal error (a bug, please report it): test hook"),
        "{good}"
    );
    assert_eq!(upstream(&doc, "refused")["status"], "updated");
    // The log directory holds each upstream's last outcome and the run's.
    let log: Value =
        serde_json::from_slice(&std::fs::read(f.path("logs/upstreams/refused.json")).unwrap())
            .unwrap();
    assert_eq!(log["status"], "updated");
    let log: Value =
        serde_json::from_slice(&std::fs::read(f.path("logs/upstreams/good.json")).unwrap())
            .unwrap();
    assert_eq!(log["status"], "failed");
    let last: Value =
        serde_json::from_slice(&std::fs::read(f.path("logs/last-run.json")).unwrap()).unwrap();
    assert_eq!(last["totals"], doc["totals"]);
}

#[test]
fn overlapping_runs_leave_every_repository_as_one_run_does() {
    let members: &[(&str, Option<&str>)] = &[
        ("good", Some("multi-branch")),
        ("refused", Some("aux-name")),
        ("plain", Some("plain")),
        ("tags", Some("tag-chain")),
    ];
    for round in 0..2 {
        let f = fleet(members, "");
        let spawn = || {
            f.command(&["--json", "--quiet"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let docs: Vec<Value> = outs
            .iter()
            .map(|o| {
                let code = o.status.code();
                assert!(
                    matches!(code, Some(0 | 75)),
                    "round {round}: exit {code:?}: {}\n{}",
                    String::from_utf8_lossy(&o.stdout),
                    stderr(o)
                );
                serde_json::from_slice(&o.stdout).unwrap()
            })
            .collect();
        for (name, _) in members {
            let statuses: Vec<&str> = docs
                .iter()
                .map(|d| upstream(d, name)["status"].as_str().unwrap())
                .collect();
            assert!(
                statuses
                    .iter()
                    .all(|s| matches!(*s, "updated" | "unchanged" | "busy")),
                "round {round} {name}: {statuses:?}"
            );
            assert!(
                statuses.contains(&"updated"),
                "round {round} {name}: one of the runs imported it: {statuses:?}"
            );
            assert_eq!(
                repo_view(&f.target(name)),
                repo_view(&f.direct(name).1),
                "round {round} {name}"
            );
            // Whole and consistent: the audit passes.
            let out = Command::new(common::bridge_bin())
                .args(["verify", "--remote-name", "origin"])
                .current_dir(f.target(name))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "round {round} {name}: {}",
                stderr(&out)
            );
        }
        // And the next run finds nothing to do.
        let (code, doc) = f.mirror_json(&[]);
        assert_eq!(code, 0, "{doc}");
        assert_eq!(doc["totals"]["unchanged"], members.len());
    }
}

#[test]
fn config_errors_stop_before_anything_runs() {
    let f = fleet(&FLEET[..1], "paralel = 3");
    let out = f.mirror(&[]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("paralel"), "{}", stderr(&out));
    assert!(!f.target("good").exists());

    std::fs::write(
        &f.config,
        "[[upstream]]\nname = \"a\"\nurl = \"u\"\ntarget = \"r\"\n\
         [[upstream]]\nname = \"b\"\nurl = \"v\"\ntarget = \"./r\"\n",
    )
    .unwrap();
    let out = f.mirror(&[]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("both mirror into"),
        "{}",
        stderr(&out)
    );

    let out = Command::new(common::bridge_bin())
        .args(["mirror", "/nonexistent/fleet.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    let out = f.mirror(&["--parallel", "0"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

/// Everything of a target a dry run must leave alone: its refs and objects,
/// and every file of its state but the staging mirror (which a dry run
/// fetches into, as `fetch --dry-run` does).
fn untouched_view(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = common::files_under(&dir.join(".mkit"));
    all.retain(|path, _| !path.contains("/repo.git/"));
    all
}

#[test]
fn a_dry_run_plans_what_the_next_run_does_and_writes_nothing() {
    let f = fleet(
        &[
            ("good", Some("multi-branch")),
            ("refused", Some("aux-name")),
            ("fresh", Some("multi-branch")),
        ],
        "log_dir = \"logs\"",
    );
    // One cause blocking five refs: the report groups them.
    for b in ["aux2", "aux3", "aux4", "aux5"] {
        common::run_ok(
            Command::new("git")
                .arg("-C")
                .arg(f.path("upstreams/refused"))
                .args(["branch", b, "aux"]),
        );
    }
    let (code, _) = f.mirror_json(&["--only", "good,refused"]);
    assert_eq!(code, 0);
    for step in ["multi-branch.append", "multi-branch.rewrite"] {
        common::build_fixture(step, &f.path("upstreams/good"));
    }
    let logs = common::files_under(&f.path("logs"));
    let before: Vec<_> = ["good", "refused"]
        .map(|n| untouched_view(&f.target(n)))
        .into();

    let (code, plan) = f.mirror_json(&["--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan["dry_run"], true);
    let after: Vec<_> = ["good", "refused"]
        .map(|n| untouched_view(&f.target(n)))
        .into();
    assert_eq!(after, before, "a dry run writes nothing on the mkit side");
    assert!(!f.target("fresh").exists(), "a dry run creates no target");
    assert_eq!(common::files_under(&f.path("logs")), logs, "no log is kept");
    let fresh = upstream(&plan, "fresh");
    assert_eq!(fresh["created"], true, "{fresh}");
    assert_eq!(fresh["status"], "updated");
    let refused = upstream(&plan, "refused");
    assert_eq!(refused["skipped"], 5, "{refused}");
    assert_eq!(refused["causes"].as_array().unwrap().len(), 1, "{refused}");
    assert_eq!(refused["causes"][0]["refs"], 5);
    assert_eq!(refused["causes"][0]["refusal"], "TreeEntryName");

    // The text form: one grouped warning for the five refs.
    let out = f.mirror(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: refused: 5 refs would be skipped, all for one cause: "),
        "{err}"
    );
    assert!(!err.contains("skipping refs/heads/aux"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().last().unwrap().starts_with(
            "3 upstreams (dry run: nothing was written but the staging mirrors): 2 would be \
             updated, 1 unchanged"
        ),
        "{text}"
    );

    // The real run does what the plan said.
    let (code, real) = f.mirror_json(&[]);
    assert_eq!(code, 0, "{real}");
    assert_eq!(real["dry_run"], false);
    for name in ["good", "refused", "fresh"] {
        let (p, r) = (upstream(&plan, name), upstream(&real, name));
        for k in [
            "status",
            "created",
            "refs",
            "changed",
            "removed",
            "skipped",
            "translated",
            "written",
        ] {
            assert_eq!(p[k], r[k], "{name}.{k}: plan {p}\nreal {r}");
        }
        assert_eq!(p["skipped_refs"], r["skipped_refs"], "{name}");
        let blocked = |u: &Value| {
            u["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["blocked"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(blocked(p), blocked(r), "{name}");
    }
    assert!(f.target("fresh").join(".mkit").is_dir());
}

#[test]
fn an_interrupted_run_stops_exits_130_and_the_next_run_finishes() {
    let f = fleet(&FLEET[..2], "parallel = 1");
    let flag = f.path("paused");
    let out = common::signalled_at(
        f.command(&[]).env_remove("MKIT_BRIDGE_CRASH_AT"),
        "fetched",
        &flag,
        rustix::process::Signal::INT,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted: "), "{err}");
    assert!(err.contains("1 were not started"), "{err}");
    let rows = table_rows(&out.stdout);
    assert_eq!(rows["good"][0], "failed", "{rows:?}");
    assert_eq!(rows["refused"][0], "failed", "{rows:?}");
    assert!(
        rows["refused"].join(" ").contains("not started"),
        "{rows:?}"
    );

    let (code, doc) = f.mirror_json(&[]);
    assert_eq!(code, 0, "{doc}");
    for name in ["good", "refused"] {
        let (_, dir) = f.direct(name);
        assert_eq!(repo_view(&f.target(name)), repo_view(&dir), "{name}");
    }
}
