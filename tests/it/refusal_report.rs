//! The refusal report (issue #14): skipped refs grouped by root cause, with
//! the offending path, the commit that introduced it and the refs it blocks;
//! causes already reported are not repeated; `fetch --dry-run` plans exactly
//! what the real fetch then does and writes nothing but the staging mirror.
//!
//! Upstreams are built with git plumbing (`hash-object`, `mktree`,
//! `commit-tree`), so each commit's tree is exactly what the test says.

use crate::common;
use crate::common::bridge;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub(crate) const PRN: &str = "deps/jemalloc/include/jemalloc/internal/prn.h";

/// A git repository driven through plumbing.
pub(crate) struct Up {
    pub(crate) dir: PathBuf,
    home: PathBuf,
}

impl Up {
    pub(crate) fn new(work: &Path) -> Up {
        let up = Up {
            dir: work.join("src"),
            home: work.to_path_buf(),
        };
        fs::create_dir_all(&up.dir).unwrap();
        up.git(&["init", "-q", "-b", "main"], None);
        up
    }

    /// `git -C <dir>` with this upstream's identity and home, and the
    /// author and committer dates when given.
    fn command(&self, date: Option<&str>) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.home)
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "A")
            .env("GIT_COMMITTER_EMAIL", "a@example.com");
        if let Some(date) = date {
            cmd.env("GIT_AUTHOR_DATE", date)
                .env("GIT_COMMITTER_DATE", date);
        }
        cmd
    }

    pub(crate) fn git(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        use std::io::Write;
        let mut cmd = self.command(None);
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `git <args>` at `date`, which must succeed; stdout, trimmed.
    fn git_at(&self, date: &str, args: &[&str]) -> String {
        let out = common::run_ok(self.command(Some(date)).args(args));
        String::from_utf8(out).unwrap().trim().to_owned()
    }

    pub(crate) fn blob(&self, data: &str) -> String {
        self.git(&["hash-object", "-w", "--stdin"], Some(data.as_bytes()))
    }

    /// A tree holding `files` (path → blob, or `("160000", commit)` for a
    /// gitlink), nested directories made as needed.
    pub(crate) fn tree(&self, files: &BTreeMap<String, (&'static str, String)>) -> String {
        let mut here: Vec<String> = Vec::new();
        let mut dirs: BTreeMap<String, BTreeMap<String, (&'static str, String)>> = BTreeMap::new();
        for (path, (mode, id)) in files {
            match path.split_once('/') {
                Some((dir, rest)) => {
                    dirs.entry(dir.to_owned())
                        .or_default()
                        .insert(rest.to_owned(), (*mode, id.clone()));
                }
                None => {
                    let kind = if *mode == "160000" { "commit" } else { "blob" };
                    here.push(format!("{mode} {kind} {id}\t{path}\n"));
                }
            }
        }
        for (dir, inner) in &dirs {
            here.push(format!("040000 tree {}\t{dir}\n", self.tree(inner)));
        }
        self.git(&["mktree", "--missing"], Some(here.concat().as_bytes()))
    }

    pub(crate) fn commit(&self, tree: &str, parents: &[&str], time: u64, msg: &str) -> String {
        let mut args = vec!["commit-tree", tree];
        for p in parents {
            args.push("-p");
            args.push(p);
        }
        args.push("-m");
        args.push(msg);
        self.git_at(&format!("{time} +0000"), &args)
    }

    /// A commit of `files` (see [`Up::tree`]).
    fn commit_files(
        &self,
        files: &BTreeMap<String, (&'static str, String)>,
        parents: &[&str],
        time: u64,
        msg: &str,
    ) -> String {
        self.commit(&self.tree(files), parents, time, msg)
    }

    pub(crate) fn set(&self, name: &str, target: &str) {
        self.git(&["update-ref", name, target], None);
    }

    pub(crate) fn delete(&self, name: &str) {
        self.git(&["update-ref", "-d", name], None);
    }

    /// An annotated tag object named `name` on `target`, at `refs/tags/<name>`.
    pub(crate) fn annotated(&self, name: &str, target: &str) {
        let msg = format!("release {name}");
        self.git_at("1400000000 +0000", &["tag", "-a", name, target, "-m", &msg]);
    }

    /// Point one ref at each of `commits`, the `i`th named `name(i)`;
    /// returns the names.
    fn set_each(&self, commits: &[String], name: impl Fn(usize) -> String) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (i, c) in commits.iter().enumerate() {
            let n = name(i);
            self.set(&n, c);
            names.insert(n);
        }
        names
    }
}

/// A line of history: each commit's files are the previous ones plus
/// `change`; returns the commit ids.
pub(crate) fn history(
    up: &Up,
    files: &mut BTreeMap<String, (&'static str, String)>,
    parent: Option<&str>,
    steps: &[(&str, &str)],
    time: u64,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, (path, content)) in steps.iter().enumerate() {
        files.insert((*path).to_owned(), ("100644", up.blob(content)));
        let tree = up.tree(files);
        let parents: Vec<&str> = out
            .last()
            .map(String::as_str)
            .or(parent)
            .into_iter()
            .collect();
        let commit = up.commit(&tree, &parents, time + i as u64, &format!("edit {path}"));
        out.push(commit);
    }
    out
}

pub(crate) fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

pub(crate) fn json(out: &Output) -> Value {
    let (stdout, stderr) = ok(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

/// The `ref` field of each element of the array `v`.
fn refs_of(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["ref"].as_str().unwrap().to_owned())
        .collect()
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// The redis-like upstream: `prn.h` deep under `deps/` arrives in one commit
/// and stays; `main` stops before it; `blocked` refs (branches, lightweight
/// and annotated tags) all descend from it.
pub(crate) struct Redis {
    pub(crate) up: Up,
    intro: String,
    /// The commit that moved deps/jemalloc to deps/jemalloc.orig.
    moved: String,
    pub(crate) tip: String,
    pub(crate) blocked: BTreeSet<String>,
}

pub(crate) fn redis_like(work: &Path) -> Redis {
    let up = Up::new(work);
    let mut files = BTreeMap::new();
    let early = history(
        &up,
        &mut files,
        None,
        &[("README", "redis\n"), ("src/server.c", "int main;\n")],
        1_300_000_000,
    );
    up.set("refs/heads/main", early.last().unwrap());
    up.set("refs/tags/1.0", &early[0]);
    // The jemalloc import: prn.h among other headers, in one commit.
    let intro = history(
        &up,
        &mut files,
        early.last().map(String::as_str),
        &[("deps/jemalloc/include/jemalloc/internal/arena.h", "arena\n")],
        1_308_000_000,
    );
    files.insert(PRN.to_owned(), ("100644", up.blob("prn\n")));
    let intro = up.commit_files(&files, &[&intro[0]], 1_308_560_000, "jemalloc source added");
    // Later work touches the headers next to prn.h and the root, so every
    // tree on the way to prn.h is another object in each commit.
    let later = history(
        &up,
        &mut files,
        Some(&intro),
        &[
            (
                "deps/jemalloc/include/jemalloc/internal/arena.h",
                "arena 2\n",
            ),
            ("src/server.c", "int main(void);\n"),
            ("deps/jemalloc/include/jemalloc/internal/tsd.h", "tsd\n"),
            ("README", "redis 2\n"),
            ("src/server.c", "int main(void) { return 0; }\n"),
        ],
        1_310_000_000,
    );
    let mut blocked = up.set_each(&later, |i| format!("refs/heads/{}.{i}", 2 + i / 3));
    up.set("refs/tags/2.4.0", &later[1]);
    blocked.insert("refs/tags/2.4.0".to_owned());
    up.annotated("2.6.0", &later[3]);
    blocked.insert("refs/tags/2.6.0".to_owned());
    // As redis did in 2012: the old jemalloc moves to deps/jemalloc.orig
    // (prn.h with it) beside a new one without prn.h, and is deleted in the
    // next commit. Refs after that inherit the refusal of the move commit,
    // whose tree reports deps/jemalloc.orig/... (it sorts before
    // deps/jemalloc/ in git's order): still the same file's cause.
    let old: Vec<String> = files
        .keys()
        .filter(|k| k.starts_with("deps/jemalloc/"))
        .cloned()
        .collect();
    for k in old {
        let v = files.remove(&k).unwrap();
        files.insert(k.replacen("deps/jemalloc/", "deps/jemalloc.orig/", 1), v);
    }
    files.insert(
        "deps/jemalloc/include/jemalloc/internal/arena.h".to_owned(),
        ("100644", up.blob("arena 3\n")),
    );
    let moved = up.commit_files(
        &files,
        &[later.last().unwrap()],
        1_337_158_185,
        "Jemalloc updated to 3.0.0.",
    );
    files.retain(|k, _| !k.starts_with("deps/jemalloc.orig/"));
    let deleted = up.commit_files(
        &files,
        &[&moved],
        1_337_158_200,
        "Deleted jemalloc.orig from /deps.",
    );
    let after = history(
        &up,
        &mut files,
        Some(&deleted),
        &[
            ("src/server.c", "int main(void) { return 1; }\n"),
            ("README", "redis 3\n"),
        ],
        1_340_000_000,
    );
    up.set("refs/tags/3.0.0", &after[0]);
    blocked.insert("refs/tags/3.0.0".to_owned());
    up.set("refs/heads/unstable", after.last().unwrap());
    blocked.insert("refs/heads/unstable".to_owned());
    Redis {
        tip: after.last().unwrap().clone(),
        up,
        intro,
        moved,
        blocked,
    }
}

pub(crate) fn import(work: &Path, up: &Up, extra: &[&str]) -> (PathBuf, Output) {
    let key = common::import_key(work, 0x42);
    let dst = work.join("dst");
    let mut args = vec!["import", up.dir.to_str().unwrap(), dst.to_str().unwrap()];
    args.extend_from_slice(&["--key", key.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let out = bridge(work, &args);
    (dst, out)
}

pub(crate) fn fetch(dst: &Path, extra: &[&str]) -> Output {
    let key = dst.parent().unwrap().join("keys/import.key");
    let mut args = vec!["fetch", "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    bridge(dst, &args)
}

#[test]
fn a_redis_like_history_gives_one_grouped_cause_once() {
    let work = tempfile::tempdir().unwrap();
    let r = redis_like(work.path());
    let n = r.blocked.len();
    assert!(n > 3, "the fixture must exercise the grouped form");

    // First import: one grouped warning instead of one per ref.
    let (dst, out) = import(work.path(), &r.up, &[]);
    let (_, stderr) = ok(&out);
    let head = format!("warning: {n} refs skipped, all for one cause: {PRN}: ");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with(&head)).count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("[TreeEntryName; SPEC-OBJECTS §4.1, SPEC-GIT-IMPORT §3.3]"));
    assert!(
        stderr.contains(&format!(
            "  introduced by commit {} (2011-06-20 \"jemalloc source added\")",
            r.intro
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "  also at deps/jemalloc.orig/include/jemalloc/internal/prn.h, moved or copied \
             there by commit {}",
            r.moved
        )),
        "{stderr}"
    );
    assert!(stderr.contains("  remedy: "), "{stderr}");
    assert!(stderr.contains("does not help"), "{stderr}");
    assert!(
        !stderr.contains("warning: skipping"),
        "no per-ref lines for a grouped cause: {stderr}"
    );
    assert!(
        stderr.lines().count() < 15,
        "a handful of lines, not one per ref: {stderr}"
    );

    // --json: the existing fields per skipped ref, and the cause.
    let v = json(&fetch(&dst, &["--json"]));
    let skipped: BTreeSet<String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["refusal"], "TreeEntryName");
            assert!(s["reason"].as_str().unwrap().contains("\"prn.h\""));
            s["ref"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(skipped, r.blocked);
    let causes = v["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{v:#}");
    let c = &causes[0];
    assert_eq!(c["path"], PRN);
    assert_eq!(c["refusal"], "TreeEntryName");
    assert_eq!(c["refs"], n);
    assert_eq!(names(&c["blocked"]), r.blocked);
    assert_eq!(c["introduced"].as_array().unwrap().len(), 1);
    assert_eq!(c["introduced"][0]["commit"], r.intro.as_str());
    assert_eq!(c["introduced"][0]["refs"], n);
    assert_eq!(c["introduced"][0]["subject"], "jemalloc source added");
    assert_eq!(
        c["also_at"],
        serde_json::json!([{
            "path": "deps/jemalloc.orig/include/jemalloc/internal/prn.h",
            "commits": [r.moved.as_str()],
        }])
    );
    // The refs after the move report the moved path's tree, as the
    // translation met it; the cause is still the one file.
    let unstable = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ref"] == "refs/heads/unstable")
        .unwrap();
    let (tree, _) = ok(&Command::new("git")
        .arg("-C")
        .arg(&r.up.dir)
        .args([
            "rev-parse",
            &format!("{}:deps/jemalloc.orig/include/jemalloc/internal", r.moved),
        ])
        .output()
        .unwrap());
    assert!(
        unstable["reason"].as_str().unwrap().contains(tree.trim()),
        "{unstable}"
    );
    assert_eq!(c["reported_before"], true, "reported by the import");
    assert!(c["remedy"].as_str().unwrap().contains(&r.intro[..12]));

    // A second fetch does not repeat it; --verbose does, with every ref.
    let (_, stderr) = ok(&fetch(&dst, &[]));
    assert!(!stderr.contains(PRN), "{stderr}");
    assert!(
        stderr.contains(&format!("{n} skipped ({n} by 1 cause reported before")),
        "{stderr}"
    );
    let (_, stderr) = ok(&fetch(&dst, &["--verbose"]));
    assert!(stderr.contains(PRN), "{stderr}");
    for b in &r.blocked {
        assert!(
            stderr.contains(&format!("warning: skipping {b}: git tree ")),
            "{b}: {stderr}"
        );
    }
    assert!(stderr.contains(&format!("  cause of these {n} refs: {PRN}: ")));

    // A new ref blocked by the same file changes the blocked set: reported
    // again, once, then quiet.
    r.up.set("refs/heads/7.0", &r.tip);
    let (_, stderr) = ok(&fetch(&dst, &[]));
    assert!(
        stderr.contains(&format!(
            "warning: {} refs skipped, all for one cause: {PRN}",
            n + 1
        )),
        "{stderr}"
    );
    let (_, stderr) = ok(&fetch(&dst, &[]));
    assert!(!stderr.contains(PRN), "{stderr}");
    // The record is ours, one line per cause.
    let record = fs::read_to_string(dst.join(".mkit/git/upstream/refusals-reported")).unwrap();
    assert_eq!(record.lines().count(), 1, "{record}");
    // `main` and the early tag still import.
    assert!(dst.join(".mkit/refs/remotes/upstream/main").is_file());
    assert!(dst.join(".mkit/refs/tags/1.0").is_file());
}

#[test]
fn a_git_like_history_gives_one_cause_for_a_name_and_one_for_a_submodule() {
    let work = tempfile::tempdir().unwrap();
    let up = Up::new(work.path());
    let mut files = BTreeMap::new();
    let base = history(
        &up,
        &mut files,
        None,
        &[("Makefile", "all:\n"), ("t/t0000-basic.sh", "echo\n")],
        1_700_000_000,
    );
    up.set("refs/heads/maint", base.last().unwrap());
    // One commit adds `t/nul`; refs after it, before the submodule, report it.
    files.insert("t/nul".to_owned(), ("100644", up.blob("")));
    let nul = up.commit_files(&files, &[base.last().unwrap()], 1_700_001_000, "add nul");
    let mid = history(
        &up,
        &mut files,
        Some(&nul),
        &[
            ("t/t0001-init.sh", "a\n"),
            ("Makefile", "all: git\n"),
            ("t/t0002.sh", "b\n"),
            ("README", "git\n"),
        ],
        1_700_002_000,
    );
    let nul_refs = up.set_each(&mid, |i| format!("refs/tags/v1.{i}"));
    // One commit adds the submodule; it sorts before `t/` in the root tree,
    // so every ref after it reports the submodule (checked first).
    let sub = "1234567890123456789012345678901234567890".to_owned();
    files.insert("sha1collisiondetection".to_owned(), ("160000", sub));
    let gitlink = up.commit_files(
        &files,
        &[mid.last().unwrap()],
        1_700_003_000,
        "add sha1dc submodule",
    );
    let after = history(
        &up,
        &mut files,
        Some(&gitlink),
        &[
            ("Makefile", "all: sha1dc\n"),
            ("t/t0003.sh", "c\n"),
            ("README", "git 2\n"),
            ("Makefile", "all: 2\n"),
            ("t/t0004.sh", "d\n"),
        ],
        1_700_004_000,
    );
    let mut sub_refs = up.set_each(&after, |i| format!("refs/tags/v2.{i}"));
    up.set("refs/heads/main", after.last().unwrap());
    up.set("refs/heads/next", &after[2]);
    sub_refs.insert("refs/heads/main".to_owned());
    sub_refs.insert("refs/heads/next".to_owned());
    up.git(&["symbolic-ref", "HEAD", "refs/heads/maint"], None);

    let (dst, out) = import(work.path(), &up, &["--json"]);
    let v = json(&out);
    let causes = v["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 2, "{v:#}");
    // Most refs first.
    assert_eq!(causes[0]["refusal"], "Gitlink");
    assert_eq!(causes[0]["path"], "sha1collisiondetection");
    assert_eq!(causes[0]["introduced"][0]["commit"], gitlink.as_str());
    assert_eq!(causes[0]["refs"], sub_refs.len());
    assert_eq!(names(&causes[0]["blocked"]), sub_refs);
    assert!(causes[0]["summary"].as_str().unwrap().contains("submodule"));
    assert_eq!(causes[1]["refusal"], "TreeEntryName");
    assert_eq!(causes[1]["path"], "t/nul");
    assert_eq!(causes[1]["introduced"][0]["commit"], nul.as_str());
    assert_eq!(causes[1]["introduced"][0]["refs"], nul_refs.len());
    assert_eq!(names(&causes[1]["blocked"]), nul_refs);
    for c in causes {
        assert_eq!(c["reported_before"], false);
        assert_eq!(c["introduced"].as_array().unwrap().len(), 1);
    }
    assert_eq!(
        v["skipped"].as_array().unwrap().len(),
        sub_refs.len() + nul_refs.len()
    );

    // Text: one warning per cause, naming path and commit; quiet the next time.
    let (_, stderr) = ok(&fetch(&dst, &["--verbose"]));
    let grouped_or_cause: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("  cause of these "))
        .collect();
    assert_eq!(grouped_or_cause.len(), 2, "{stderr}");
    assert!(stderr.contains(&format!("  introduced by commit {gitlink} ")));
    assert!(stderr.contains(&format!("  introduced by commit {nul} ")));
    let (_, stderr) = ok(&fetch(&dst, &[]));
    assert!(!stderr.contains("sha1collisiondetection"), "{stderr}");
    assert!(!stderr.contains("t/nul"), "{stderr}");
    assert!(stderr.contains("by 2 causes reported before"), "{stderr}");
}

/// Every file and directory under `.mkit`, except the staging mirror, with
/// its bytes (directories as empty).
fn snapshot(dst: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let root = dst.join(".mkit");
    let mirror = root.join("git/upstream/repo.git");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(&mirror) {
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_dry_run_plans_exactly_what_the_fetch_then_does_and_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let r = redis_like(work.path());
    let up = &r.up;
    let mut files = BTreeMap::new();
    let side = history(
        up,
        &mut files,
        None,
        &[("a", "1\n"), ("b", "2\n")],
        1_600_000_000,
    );
    up.set("refs/heads/topic", &side[1]);
    up.set("refs/heads/gone", &side[0]);
    up.set("refs/heads/ff", &side[0]);
    let (dst, out) = import(work.path(), up, &["--quiet"]);
    ok(&out);

    // Upstream moves: a new branch, a fast-forward, a force-push, a deleted
    // branch, a new refused ref, a new annotated tag.
    let more = history(
        up,
        &mut files,
        Some(&side[1]),
        &[("c", "3\n")],
        1_600_001_000,
    );
    up.set("refs/heads/new", &more[0]);
    up.set("refs/heads/ff", &side[1]);
    let mut other = BTreeMap::new();
    let rewritten = history(up, &mut other, None, &[("x", "rewritten\n")], 1_600_002_000);
    up.set("refs/heads/topic", &rewritten[0]);
    up.delete("refs/heads/gone");
    up.set("refs/heads/8.0", &r.tip);
    up.annotated("9.0.0", &more[0]);

    let before = snapshot(&dst);
    let plan = json(&fetch(&dst, &["--dry-run", "--json"]));
    assert_eq!(
        snapshot(&dst),
        before,
        "a dry run writes nothing outside the mirror"
    );
    let (text, _) = ok(&fetch(&dst, &["--dry-run"]));
    assert_eq!(
        snapshot(&dst),
        before,
        "a dry run writes nothing outside the mirror"
    );
    assert_eq!(plan["dry_run"], true);

    let by_change = |change: &str| -> BTreeSet<String> {
        plan["refs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["change"] == change)
            .map(|r| r["ref"].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        by_change("new"),
        set(&["refs/heads/new", "refs/tags/9.0.0"])
    );
    assert_eq!(by_change("updated"), set(&["refs/heads/ff"]));
    assert_eq!(by_change("forced"), set(&["refs/heads/topic"]));
    assert_eq!(refs_of(&plan["pruned"]), set(&["refs/heads/gone"]));
    let mut refused = r.blocked.clone();
    refused.insert("refs/heads/8.0".to_owned());
    assert_eq!(refs_of(&plan["skipped"]), refused);
    assert_eq!(plan["causes"].as_array().unwrap().len(), 1);
    assert_eq!(plan["causes"][0]["path"], PRN);
    assert_eq!(plan["causes"][0]["refs"], refused.len());
    assert!(plan["translated"].as_u64().unwrap() > 0);
    // The text plan says the same.
    for line in [
        "new       refs/heads/new ",
        "updated   refs/heads/ff ",
        "forced    refs/heads/topic ",
        "pruned    refs/heads/gone ",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert!(
        text.contains(&format!("refs would be skipped, all for one cause: {PRN}")),
        "{text}"
    );
    assert!(
        text.contains("dry run: 4 refs would change (2 new, 1 updated, 1 forced), 1 pruned"),
        "{text}"
    );

    // The real fetch does exactly that.
    let real = json(&fetch(&dst, &["--json"]));
    let changed: BTreeSet<String> = real["imported"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["changed"] == true)
        .map(|r| r["ref"].as_str().unwrap().to_owned())
        .collect();
    let mut planned = by_change("new");
    planned.extend(by_change("updated"));
    planned.extend(by_change("forced"));
    assert_eq!(changed, planned);
    let warnings: Vec<&str> = real["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("upstream force-pushed refs/heads/topic;"))
    );
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.starts_with("upstream force-pushed"))
            .count(),
        1
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("upstream deleted refs/heads/gone;"))
    );
    assert_eq!(refs_of(&real["skipped"]), refused);
    assert_eq!(real["translated"], plan["translated"]);
    assert_eq!(real["written"], plan["written"]);
    assert!(!dst.join(".mkit/refs/remotes/upstream/gone").exists());

    // Nothing new upstream: the plan changes nothing, and still writes nothing.
    let before = snapshot(&dst);
    let plan = json(&fetch(&dst, &["--dry-run", "--json"]));
    assert_eq!(snapshot(&dst), before);
    assert!(
        plan["refs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["change"] == "unchanged")
    );
    assert_eq!(plan["pruned"].as_array().unwrap().len(), 0);
    assert_eq!(plan["written"], 0);
}

#[test]
fn few_refs_per_cause_keep_the_per_ref_lines() {
    // A cause blocking up to three refs keeps the reference's per-ref lines
    // (its tests match `skipping <ref>`), followed by the cause.
    let work = tempfile::tempdir().unwrap();
    let up = Up::new(work.path());
    let mut files = BTreeMap::new();
    let base = history(&up, &mut files, None, &[("a", "1\n")], 1_600_000_000);
    up.set("refs/heads/main", &base[0]);
    files.insert("lib".to_owned(), ("160000", "ab".repeat(20)));
    let sub = up.commit_files(&files, &[&base[0]], 1_600_000_100, "add submodule");
    up.set("refs/heads/with-submodule", &sub);
    up.set("refs/tags/sub-1", &sub);
    let (_, out) = import(work.path(), &up, &[]);
    let (_, stderr) = ok(&out);
    for r in ["refs/heads/with-submodule", "refs/tags/sub-1"] {
        assert!(
            stderr.contains(&format!("warning: skipping {r}: git tree ")),
            "{stderr}"
        );
    }
    assert!(stderr.contains("submodule"), "{stderr}");
    assert!(
        stderr.contains("  cause of these 2 refs: lib: a submodule (gitlink, mode 160000) [Gitlink; SPEC-GIT-IMPORT §3.3]"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "  introduced by commit {sub} (2020-09-13 \"add submodule\")"
        )),
        "{stderr}"
    );
}
