//! Our import gives the reference's results on every fixture.
//!
//! `fixtures/expected/<name>.txt` pins what `mkit git import` (0.5.0) did on
//! each fixture under the importer key `[0x42;32]`: every command's exit
//! code, the final refs and their ids, `refs-import`, and the skipped refs.
//! Here we replay the same commands with `mkit-bridge import` / `fetch` and
//! require the same outcome: identical `ref -> id` maps and identical skipped
//! refs. The pins are in the repository, so this runs without the `mkit`
//! binary (`tests/fixtures.rs` keeps the pins honest against it).

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One command of a pinned transcript.
#[derive(Debug)]
enum Step {
    Import { exit: i32 },
    Build { step: String },
    Fetch { exit: i32 },
}

/// A parsed pin file.
#[derive(Debug, Default)]
struct Pin {
    steps: Vec<Step>,
    /// `None` when the pin says the repository is absent.
    refs: Option<BTreeMap<String, String>>,
    refs_import: Option<Vec<String>>,
    skipped: Vec<String>,
}

fn parse_pin(text: &str) -> Pin {
    let mut pin = Pin::default();
    let mut section = "";
    let mut refs = BTreeMap::new();
    let mut refs_import = Vec::new();
    let mut refs_absent = false;
    let mut import_absent = false;
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            section = "";
            if cmd.starts_with("mkit git import") {
                pin.steps.push(Step::Import { exit: -1 });
            } else if cmd.starts_with("mkit git fetch") {
                pin.steps.push(Step::Fetch { exit: -1 });
            } else if let Some(rest) = cmd.strip_prefix("fixtures/git/build.sh ") {
                let step = rest.split_whitespace().next().unwrap().to_owned();
                pin.steps.push(Step::Build { step });
            }
            continue;
        }
        if let Some(code) = line.strip_prefix("exit: ") {
            let code: i32 = code.trim().parse().unwrap();
            match pin.steps.last_mut() {
                Some(Step::Import { exit } | Step::Fetch { exit }) => *exit = code,
                _ => panic!("exit line without a command"),
            }
            continue;
        }
        match line {
            "refs:" | "refs-import:" | "skipped:" | "stdout:" | "stderr:" => {
                section = line;
                continue;
            }
            _ => {}
        }
        let Some(body) = line.strip_prefix("  ") else {
            continue;
        };
        match section {
            "refs:" if body.starts_with("(no repository") => refs_absent = true,
            "refs:" => {
                let (name, value) = body.split_once(' ').unwrap();
                refs.insert(name.to_owned(), value.to_owned());
            }
            "refs-import:" if body == "(absent)" => import_absent = true,
            "refs-import:" => refs_import.push(body.to_owned()),
            "skipped:" => pin
                .skipped
                .push(body.split_once(": ").unwrap().0.to_owned()),
            _ => {}
        }
    }
    pin.refs = (!refs_absent).then_some(refs);
    pin.refs_import = (!import_absent).then_some(refs_import);
    pin
}

/// Replay one pin with our binary; returns a description of every mismatch.
fn replay(name: &str, jobs: &str) -> Vec<String> {
    let pin = parse_pin(
        &fs::read_to_string(root().join(format!("fixtures/expected/{name}.txt"))).unwrap(),
    );
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let dst = work.path().join("dst");
    let key = common::import_key(work.path(), 0x42);
    common::build_fixture(name.split('.').next().unwrap(), &src);

    let mut problems = Vec::new();
    let mut last_stderr = String::new();
    for step in &pin.steps {
        let (mut cmd, want) = match step {
            Step::Build { step } => {
                common::build_fixture(step, &src);
                continue;
            }
            Step::Import { exit } => {
                let mut c = Command::new(common::bridge_bin());
                c.arg("import").arg(&src).arg(&dst);
                (c, *exit)
            }
            Step::Fetch { exit } => {
                let mut c = Command::new(common::bridge_bin());
                c.arg("fetch").current_dir(&dst);
                (c, *exit)
            }
        };
        cmd.args(["--remote-name", "up", "--jobs", jobs, "--key"])
            .arg(&key);
        let out = cmd.output().unwrap();
        last_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let got = out.status.code().unwrap_or(-1);
        if got != want {
            problems.push(format!(
                "{step:?}: exit {got}, reference {want}\n{last_stderr}"
            ));
        }
    }
    let refs = common::mkit_refs(&dst);
    if refs != pin.refs {
        problems.push(format!(
            "refs differ:\n ours {refs:#?}\n reference {:#?}",
            pin.refs
        ));
    }
    let state = dst.join(".mkit/git/up/refs-import");
    let refs_import = fs::read_to_string(&state)
        .ok()
        .map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>());
    if refs_import != pin.refs_import {
        problems.push(format!(
            "refs-import differs:\n ours {refs_import:#?}\n reference {:#?}",
            pin.refs_import
        ));
    }
    let mut skipped: Vec<String> = last_stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: skipping "))
        .map(|l| l.split_once(": ").unwrap().0.to_owned())
        .collect();
    skipped.sort();
    let mut want = pin.skipped.clone();
    want.sort();
    if skipped != want {
        problems.push(format!(
            "skipped refs differ: ours {skipped:?}, reference {want:?}\n{last_stderr}"
        ));
    }
    problems
}

fn pin_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("fixtures/expected"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            let stem = n.strip_suffix(".txt")?;
            (stem != "MANIFEST").then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_imports_like_the_reference() {
    let names = pin_names();
    assert!(names.len() >= 30, "{names:?}");
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| s.spawn(move || (n.clone(), replay(n, "2"))))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                let (n, problems) = h.join().unwrap();
                problems.into_iter().map(move |p| format!("[{n}] {p}"))
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn one_job_and_four_jobs_give_identical_stores() {
    // Objects are content-addressed, so equal ref maps over the same object
    // set mean identical stores; compare the object listings too.
    let listing = |jobs: &str| {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        common::build_fixture("multi-branch", &src);
        let dst = work.path().join("dst");
        common::run_ok(
            Command::new(common::bridge_bin())
                .arg("import")
                .arg(&src)
                .arg(&dst)
                .args(["--quiet", "--jobs", jobs, "--key"])
                .arg(common::import_key(work.path(), 7)),
        );
        let objects = common::files_under(&dst.join(".mkit/objects"));
        (objects, common::mkit_refs(&dst))
    };
    let one = listing("1");
    let four = listing("4");
    assert!(one.0.len() > 20);
    assert!(one == four, "stores differ between --jobs 1 and --jobs 4");
}
