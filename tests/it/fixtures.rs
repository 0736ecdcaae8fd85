//! The git fixture repositories of `fixtures/git/build.sh` and the reference
//! importer's pinned outcomes on them (`fixtures/expected/<name>.txt`).
//!
//! Per fixture, one test:
//! (a) builds it twice into separate temp dirs and requires identical ref and
//!     object listings (the builds are byte-deterministic);
//! (b) asserts the properties that make the fixture what it claims to be
//!     (the raw header, mode spelling, parent count, size… is really there);
//! (c) when the reference `mkit` is available, re-runs `mkit git import` on it
//!     through `fixtures/expected/outcome.sh` and requires the pinned outcome,
//!     so the pins stay honest. Pins are only ever rewritten by
//!     `fixtures/expected/regen.sh`, never by a test run.
//!
//! The fixtures need `git` and `perl` (a dependency of git); without git the
//! tests skip like the other reference-dependent tests (panic under
//! `MKIT_BRIDGE_STRICT=1`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every fixture `build.sh --list` prints, in its order.
const FIXTURES: &[&str] = &[
    "plain",
    "zones",
    "gpgsig",
    "latin1",
    "historic-mode",
    "octopus",
    "annotated-tag",
    "signed-tag",
    "big-blob",
    "gitlink",
    "aux-name",
    "bad-names",
    "negative-time",
    "bad-ref-name",
    "sha256",
    "all-refused",
    "default-refused",
    "odd-person",
    "tagger-less",
    "tag-chain",
    "tag-of-tree-and-blob",
    "empty-message",
    "no-final-newline",
    "blob-boundaries",
    "foo-order",
    "unknown-header",
    "mergetag",
    "multi-branch",
];

/// The follow-up steps `build.sh --steps` prints, in order.
const STEPS: &[&str] = &["multi-branch.append", "multi-branch.rewrite"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn build_script() -> PathBuf {
    root().join("fixtures/git/build.sh")
}

/// A command with the caller's git configuration kept out.
fn isolated(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

fn have_git(test: &str) -> Option<()> {
    match Command::new("git").arg("--version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => common::skip(test, "git is not on PATH"),
    }
}

/// A built fixture repository (bare) with helpers to read it.
struct Repo {
    dir: PathBuf,
    home: PathBuf,
}

impl Repo {
    fn git_bytes(&self, args: &[&str]) -> Vec<u8> {
        common::run_ok(
            isolated("git", &self.home)
                .arg("-C")
                .arg(&self.dir)
                .args(args),
        )
    }

    fn git(&self, args: &[&str]) -> String {
        String::from_utf8(self.git_bytes(args)).expect("git output is UTF-8")
    }

    /// `git <args>` succeeds?
    fn git_ok(&self, args: &[&str]) -> bool {
        isolated("git", &self.home)
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    }

    fn id(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", "--end-of-options", rev])
            .trim()
            .to_owned()
    }

    fn kind(&self, rev: &str) -> String {
        self.git(&["cat-file", "-t", rev]).trim().to_owned()
    }

    /// The object's raw body (no `<type> <len>\0` frame).
    fn raw(&self, rev: &str) -> Vec<u8> {
        let kind = self.kind(rev);
        self.git_bytes(&["cat-file", &kind, rev])
    }

    fn raw_text(&self, rev: &str) -> String {
        String::from_utf8(self.raw(rev)).unwrap_or_else(|_| panic!("{rev} is not UTF-8"))
    }

    fn size(&self, rev: &str) -> u64 {
        self.git(&["cat-file", "-s", rev]).trim().parse().unwrap()
    }

    fn parents(&self, rev: &str) -> Vec<String> {
        self.git(&["rev-list", "--parents", "-n", "1", rev])
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect()
    }

    /// `(refname, objecttype)` for every ref, sorted.
    fn refs(&self) -> Vec<(String, String)> {
        self.git(&["for-each-ref", "--format=%(refname) %(objecttype)"])
            .lines()
            .map(|l| {
                let (n, t) = l.rsplit_once(' ').unwrap();
                (n.to_owned(), t.to_owned())
            })
            .collect()
    }

    fn ref_names(&self) -> Vec<String> {
        self.refs().into_iter().map(|(n, _)| n).collect()
    }

    /// Entry names of a tree, in stored order (raw tree parse, so historic
    /// mode spellings and duplicate names survive).
    fn tree_entries(&self, rev: &str) -> Vec<(String, Vec<u8>)> {
        let raw = self.git_bytes(&["cat-file", "tree", rev]);
        let hash_len = if self.git(&["rev-parse", "--show-object-format"]).trim() == "sha256" {
            32
        } else {
            20
        };
        let mut out = Vec::new();
        let mut rest = &raw[..];
        while !rest.is_empty() {
            let sp = rest.iter().position(|&b| b == b' ').unwrap();
            let nul = rest.iter().position(|&b| b == 0).unwrap();
            let mode = String::from_utf8(rest[..sp].to_vec()).unwrap();
            out.push((mode, rest[sp + 1..nul].to_vec()));
            rest = &rest[nul + 1 + hash_len..];
        }
        out
    }

    /// The identity listing two builds must agree on.
    fn listing(&self) -> String {
        let mut s = self.git(&["symbolic-ref", "HEAD"]);
        s += &self.git(&[
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
        ]);
        s += &self.git(&["rev-list", "--all", "--objects"]);
        s
    }
}

/// Build `name` (a fixture) into `dir`, or apply a step to the repo in `dir`.
fn build(name: &str, dir: &Path, home: &Path) -> Repo {
    common::run_ok(
        isolated("bash", home)
            .arg(build_script())
            .arg(name)
            .arg(dir),
    );
    Repo {
        dir: dir.to_owned(),
        home: home.to_owned(),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The reference outcome of `outcome.sh <name> <work>` (which uses
/// `<work>/src` when it is already built), or None when the reference binary
/// is absent.
fn reference_outcome(test: &str, name: &str, work: &Path) -> Option<String> {
    let bin = common::mkit_bin(test)?;
    let out = common::run_ok(
        isolated("bash", work)
            .arg(root().join("fixtures/expected/outcome.sh"))
            .arg(name)
            .arg(work)
            .env("MKIT_BIN", bin),
    );
    Some(String::from_utf8(out).unwrap())
}

/// Require the pinned outcome, reporting the first differing lines.
fn assert_pinned(name: &str, actual: &str) {
    let path = root().join(format!("fixtures/expected/{name}.txt"));
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if pinned == actual {
        return;
    }
    let (p, a): (Vec<_>, Vec<_>) = (pinned.lines().collect(), actual.lines().collect());
    let mut report = String::new();
    for i in 0..p.len().max(a.len()) {
        let (pl, al) = (p.get(i), a.get(i));
        if pl != al {
            report += &format!("line {}:\n  pinned: {pl:?}\n  actual: {al:?}\n", i + 1);
        }
    }
    panic!(
        "the reference outcome on fixture '{name}' differs from {} \
         (if the reference changed on purpose, run fixtures/expected/regen.sh and review):\n{report}",
        path.display()
    );
}

/// (a) + (b) + (c) for one fixture.
fn check_fixture(test: &str, name: &str, props: fn(&Repo)) {
    if have_git(test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // The first build goes where outcome.sh looks for a prebuilt source.
    let work = tmp.path().join("work");
    let a = build(name, &work.join("src"), &home);
    let b = build(name, &tmp.path().join("b"), &home);
    assert_eq!(
        a.listing(),
        b.listing(),
        "fixture '{name}' is not deterministic"
    );
    assert_eq!(a.git(&["symbolic-ref", "HEAD"]).trim(), "refs/heads/main");
    assert_eq!(a.git(&["rev-parse", "--is-bare-repository"]).trim(), "true");
    props(&a);
    if let Some(actual) = reference_outcome(test, name, &work) {
        assert_pinned(name, &actual);
    }
}

macro_rules! fixture_tests {
    ($($test:ident: $name:literal => $props:expr;)*) => {
        $(
            #[test]
            fn $test() {
                check_fixture(stringify!($test), $name, $props);
            }
        )*

        /// Every fixture has a test above.
        const TESTED: &[&str] = &[$($name),*];
    };
}

/// main holds just the base commit, or has it as an ancestor.
fn has_good_main(r: &Repo) {
    assert_eq!(r.kind("refs/heads/main"), "commit");
    assert!(r.git(&["log", "--format=%s", "main"]).contains(": base\n"));
}

fn author_line(r: &Repo, rev: &str) -> String {
    r.raw_text(rev)
        .lines()
        .find_map(|l| l.strip_prefix("author ").map(str::to_owned))
        .unwrap()
}

fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(raw.len(), |p| p + 1);
    &raw[..end]
}

fixture_tests! {
    plain: "plain" => |r| {
        assert_eq!(r.git(&["rev-list", "--count", "main"]).trim(), "2");
        for rev in ["main", "main~1"] {
            let raw = r.raw_text(rev);
            let who = |k: &str| raw.lines().find_map(|l| l.strip_prefix(k)).unwrap().to_owned();
            assert_eq!(who("author "), who("committer "), "{rev}: author == committer");
            assert!(who("author ").ends_with(" +0000"), "{rev}: UTC");
        }
    };
    zones: "zones" => |r| {
        for (rev, a, c) in [("main", "1700010000 +1245", "1700013600 -0330"),
                            ("main~1", "1700001000 +0530", "1700004600 -0800")] {
            let raw = r.raw_text(rev);
            assert!(raw.contains(&format!("\nauthor Ada Author <ada@example.com> {a}\n")), "{raw}");
            assert!(raw.contains(&format!("\ncommitter Cy Committer <cy@example.com> {c}\n")), "{raw}");
        }
    };
    gpgsig: "gpgsig" => |r| {
        let pgp = r.raw("main~1");
        let head = header_block(&pgp);
        assert!(contains(head, b"\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n "), "{}", String::from_utf8_lossy(&pgp));
        assert!(contains(head, b"\n -----END PGP SIGNATURE-----\n"));
        assert!(head.split(|&b| b == b'\n').filter(|l| l.starts_with(b" ")).count() >= 5);
        let ssh = r.raw("main");
        assert!(contains(header_block(&ssh), b"\ngpgsig -----BEGIN SSH SIGNATURE-----\n "));
    };
    latin1: "latin1" => |r| {
        let raw = r.raw("main");
        assert!(contains(header_block(&raw), b"\nencoding ISO-8859-1\n"));
        assert!(contains(&raw, b"\n\ncaf\xe9 cr\xe8me"));
        assert!(std::str::from_utf8(&raw).is_err(), "the message is latin-1, not UTF-8");
    };
    historic_mode: "historic-mode" => |r| {
        let mode_of = |rev: &str, name: &str| {
            r.tree_entries(rev).into_iter().find(|(_, n)| n == name.as_bytes()).unwrap().0
        };
        assert_eq!(mode_of("main^{tree}", "notes.txt"), "100664");
        assert_eq!(mode_of("mode-100640^{tree}", "notes.txt"), "100640");
        assert_eq!(mode_of("mode-100600^{tree}", "notes.txt"), "100600");
        assert_eq!(mode_of("mode-100700^{tree}", "notes.txt"), "100700");
        assert_eq!(mode_of("mode-040000^{tree}", "sub"), "040000");
        assert_eq!(r.kind("mode-040000:sub"), "tree");
    };
    octopus: "octopus" => |r| {
        let parents = r.parents("main");
        assert!(parents.len() >= 3, "octopus has {} parents", parents.len());
        let mut unique = parents.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), parents.len());
    };
    annotated_tag: "annotated-tag" => |r| {
        for (t, msg) in [("v1.0", "release 1.0\n\nNotes: the first release.\n"), ("v0.9", "first preview\n")] {
            assert_eq!(r.kind(&format!("refs/tags/{t}")), "tag");
            let raw = r.raw_text(&format!("refs/tags/{t}"));
            assert!(raw.contains(&format!("\ntype commit\ntag {t}\ntagger Ty Tagger <ty@example.com> ")), "{raw}");
            assert!(raw.ends_with(&format!("\n\n{msg}")), "{raw}");
        }
        assert_eq!(r.id("v1.0^{commit}"), r.id("main"));
    };
    signed_tag: "signed-tag" => |r| {
        let raw = r.raw_text("refs/tags/v1.0");
        assert!(raw.contains("\n\nrelease 1.0 (signed)\n-----BEGIN PGP SIGNATURE-----\n"), "{raw}");
        assert!(raw.ends_with("\n-----END PGP SIGNATURE-----\n"));
        assert!(r.raw_text("refs/tags/v1.0-ssh").contains("\n-----BEGIN SSH SIGNATURE-----\n"));
    };
    big_blob: "big-blob" => |r| {
        assert_eq!(r.size("main~1:data.bin"), 2_500_000);
        assert_eq!(r.size("main:data.bin"), 2_500_064);
        assert!(r.size("main:data.bin") > 1 << 20);
    };
    gitlink: "gitlink" => |r| {
        has_good_main(r);
        let listing = r.git(&["cat-file", "-p", "submodule:vendor"]);
        assert!(listing.starts_with("160000 commit 0123456789abcdef0123456789abcdef01234567\tlib"), "{listing}");
        assert!(!r.git(&["ls-tree", "-r", "main"]).contains("160000"));
    };
    aux_name: "aux-name" => |r| {
        has_good_main(r);
        assert_eq!(r.git(&["ls-tree", "--name-only", "aux:src"]), "aux.c\nmain.c\n");
    };
    bad_names: "bad-names" => |r| {
        has_good_main(r);
        let long = "n".repeat(256);
        for (branch, name) in [("dot-git", ".GIT"), ("dot-mkit", ".mkit"), ("trailing-dot", "file."),
                               ("trailing-space", "file "), ("backslash", "a\\b"), ("device-con", "CON"),
                               ("device-lpt1", "lpt1.txt"), ("too-long", long.as_str()), ("max-length", &long[1..])] {
            let names: Vec<_> = r.tree_entries(&format!("name/{branch}^{{tree}}"))
                .into_iter().map(|(_, n)| n).collect();
            assert!(names.contains(&name.as_bytes().to_vec()), "{branch}");
        }
    };
    negative_time: "negative-time" => |r| {
        has_good_main(r);
        assert!(r.raw_text("negative").contains("\ncommitter Cy Committer <cy@example.com> -100 +0000\n"));
        assert!(r.raw_text("negative-author").contains("\nauthor Ada Author <ada@example.com> -100 +0000\n"));
        assert!(r.raw_text("refs/tags/neg-tag").contains("\ntagger Ty Tagger <ty@example.com> -100 +0000\n"));
    };
    bad_ref_name: "bad-ref-name" => |r| {
        has_good_main(r);
        let names = r.ref_names();
        for n in ["refs/tags/v1.0+build", "refs/tags/v2.0+build", "refs/heads/wip+build",
                  "refs/heads/user@host", "refs/heads/feature/HEAD", "refs/heads/caf\u{e9}",
                  "refs/tags/nested/tag", "refs/tags/v1.0", "refs/tags/inner-bad"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
            assert!(r.git_ok(&["check-ref-format", n]), "git itself accepts {n}");
        }
        assert!(r.raw_text("refs/tags/inner-bad").contains("\ntag v3.0+build\n"));
    };
    sha256: "sha256" => |r| {
        assert_eq!(r.git(&["rev-parse", "--show-object-format"]).trim(), "sha256");
        assert_eq!(r.git(&["config", "extensions.objectformat"]).trim(), "sha256");
        assert_eq!(r.id("main").len(), 64);
        assert_eq!(r.git(&["rev-list", "--count", "main"]).trim(), "2");
        assert_eq!(r.kind("refs/tags/v1.0"), "tag");
    };
    all_refused: "all-refused" => |r| {
        assert_eq!(r.ref_names(), ["refs/heads/main", "refs/tags/v1.0+build"]);
        assert!(r.raw_text("main").contains("\ncommitter Cy Committer <cy@example.com> -100 +0000\n"));
    };
    default_refused: "default-refused" => |r| {
        assert!(r.git(&["ls-tree", "main"]).contains("160000 commit "));
        assert_eq!(r.ref_names(), ["refs/heads/good", "refs/heads/main", "refs/tags/v1.0"]);
    };
    odd_person: "odd-person" => |r| {
        has_good_main(r);
        for (branch, author) in [
            ("no-space", "Ada Author<ada@example.com> 1700000100 +0000"),
            ("double-space", "Ada  Author  <ada@example.com>  1700000100 +0000"),
            ("stray-inside", "Ada <x> Author <ada<at>example.com> 1700000100 +0000"),
            ("stray-after", "Ada Author <ada@example.com> > 1700000100 +0000"),
            ("no-brackets", "Ada Author ada@example.com 1700000100 +0000"),
            ("open-bracket", "Ada Author <ada@example.com 1700000100 +0000"),
            ("close-bracket", "Ada Author ada@example.com> 1700000100 +0000"),
            ("empty-name", "<ada@example.com> 1700000100 +0000"),
            ("empty-email", "Ada Author <> 1700000100 +0000"),
            ("no-timestamp", "Ada Author <ada@example.com>"),
            ("empty-payload", " 1700000100 +0000"),
            ("committer-no-space", "Ada Author <ada@example.com> 1700000100 +0000"),
        ] {
            assert_eq!(author_line(r, &format!("odd/{branch}")), author, "{branch}");
        }
        assert!(r.raw_text("odd/committer-no-space").contains("\ncommitter Cy Committer<cy@example.com> 1700000100 +0000\n"));
        assert!(r.raw_text("refs/tags/odd-tagger").contains("\ntagger Ty Tagger<ty@example.com> 1700000200 +0000\n"));
    };
    tagger_less: "tagger-less" => |r| {
        let raw = r.raw_text("refs/tags/v0.99");
        assert_eq!(r.kind("refs/tags/v0.99"), "tag");
        assert!(!raw.lines().any(|l| l.starts_with("tagger")), "{raw}");
        assert!(raw.ends_with("\ntag v0.99\n\nno tagger here\n"));
        assert!(r.raw_text("refs/tags/v1.0").contains("\ntagger "));
    };
    tag_chain: "tag-chain" => |r| {
        // Tag objects between the ref and the first non-tag object.
        let depth = |name: &str| {
            let mut id = r.id(name);
            let mut n = 0;
            while r.kind(&id) == "tag" {
                n += 1;
                let raw = r.raw_text(&id);
                id = raw.lines().next().unwrap().strip_prefix("object ").unwrap().to_owned();
            }
            (n, r.kind(&id))
        };
        assert_eq!(depth("refs/tags/outer"), (2, "commit".into()));
        assert_eq!(depth("refs/tags/inner"), (1, "commit".into()));
        assert_eq!(depth("refs/tags/deep16"), (16, "commit".into()));
        assert_eq!(depth("refs/tags/deep17"), (17, "commit".into()));
        assert!(r.raw_text("refs/tags/outer").contains("\ntype tag\n"));
    };
    tag_of_tree_and_blob: "tag-of-tree-and-blob" => |r| {
        assert!(r.raw_text("refs/tags/tree-tag").contains("\ntype tree\n"));
        assert_eq!(r.kind("refs/tags/tree-tag^{}"), "tree");
        assert!(r.raw_text("refs/tags/blob-tag").contains("\ntype blob\n"));
        assert_eq!(r.kind("refs/tags/blob-tag^{}"), "blob");
        assert_eq!(r.kind("refs/tags/lw-tree"), "tree");
        assert_eq!(r.kind("refs/tags/lw-blob"), "blob");
    };
    empty_message: "empty-message" => |r| {
        let raw = r.raw_text("main");
        assert!(raw.ends_with(" +0000\n\n"), "{raw:?}");
        let nosep = r.raw_text("no-separator");
        assert!(!nosep.contains("\n\n") && nosep.ends_with(" +0000\n"), "{nosep:?}");
        assert!(r.raw_text("refs/tags/empty").ends_with(" +0000\n\n"));
    };
    no_final_newline: "no-final-newline" => |r| {
        assert!(r.raw_text("main").ends_with("\n\nbody without a final newline"));
        assert!(r.raw_text("refs/tags/v1.0").ends_with("\n\ntag message without a final newline"));
    };
    blob_boundaries: "blob-boundaries" => |r| {
        assert_eq!(r.size("main:under.bin"), 1_048_575);
        assert_eq!(r.size("main:exact.bin"), 1_048_576);
        assert_eq!(r.size("main:over.bin"), 1_048_577);
        assert_eq!(r.size("main:empty"), 0);
    };
    foo_order: "foo-order" => |r| {
        let names = |rev: &str| -> Vec<String> {
            r.tree_entries(rev).into_iter().map(|(_, n)| String::from_utf8(n).unwrap()).collect()
        };
        let top = names("main^{tree}");
        assert_eq!(top, ["README", "foo-bar", "foo.txt", "foo", "foo0"]);
        let mut bytewise = top.clone();
        bytewise.sort();
        assert_ne!(top, bytewise, "git order differs from byte order");
        assert_eq!(names("main:foo"), ["a-b", "a.b", "a", "a0"]);
        let clash = r.tree_entries("file-and-dir^{tree}");
        assert_eq!(clash.iter().filter(|(_, n)| n == b"foo").count(), 2);
        assert!(clash.contains(&("100644".into(), b"foo".to_vec())));
        assert!(clash.contains(&("40000".into(), b"foo".to_vec())));
    };
    unknown_header: "unknown-header" => |r| {
        let one = r.raw("main~1");
        assert!(contains(header_block(&one), b"\nx-fixture-note hello from the future\n"));
        let multi = r.raw("main");
        assert!(contains(header_block(&multi), b"\nx-multi first line\n second line\n \n after an empty continuation\n"));
    };
    mergetag: "mergetag" => |r| {
        let parents = r.parents("main");
        assert_eq!(parents.len(), 2);
        let raw = r.raw("main");
        let head = header_block(&raw);
        let want = format!("\nmergetag object {}\n type commit\n tag side-v1\n tagger ", parents[1]);
        assert!(contains(head, want.as_bytes()), "{}", String::from_utf8_lossy(&raw));
        assert!(contains(head, b"\n -----BEGIN PGP SIGNATURE-----\n \n "));
        assert_eq!(r.id("refs/tags/side-v1^{commit}"), parents[1]);
    };
    multi_branch: "multi-branch" => |r| {
        let refs = r.refs();
        let want: Vec<(String, String)> = [
            ("refs/heads/develop", "commit"), ("refs/heads/feature/x", "commit"),
            ("refs/heads/feature/y/z", "commit"), ("refs/heads/main", "commit"),
            ("refs/heads/release/1.0", "commit"), ("refs/tags/nightly", "commit"),
            ("refs/tags/v0.1", "commit"), ("refs/tags/v1.0", "tag"),
        ].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(refs, want);
        assert_eq!(r.git(&["rev-list", "--count", "main"]).trim(), "3");
    };
}

/// The steps apply deterministically on top of multi-branch and do what they
/// say; the reference's fetch after each is pinned.
#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn multi_branch_steps() {
    let test = "multi_branch_steps";
    if have_git(test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let a = build("multi-branch", &tmp.path().join("a"), &home);
    let b = build("multi-branch", &tmp.path().join("b"), &home);
    let old_main = a.id("main");
    let old_x = a.id("feature/x");
    let old_develop = a.id("develop");

    build("multi-branch.append", &a.dir, &home);
    build("multi-branch.append", &b.dir, &home);
    assert_eq!(a.listing(), b.listing(), "append is not deterministic");
    assert!(a.git_ok(&["merge-base", "--is-ancestor", &old_main, "main"]));
    assert!(a.git_ok(&["merge-base", "--is-ancestor", &old_x, "feature/x"]));
    assert_ne!(a.id("main"), old_main);
    assert_eq!(a.git(&["rev-list", "--count", "main"]).trim(), "5");
    assert_eq!(a.kind("refs/tags/v1.1"), "tag");
    assert_eq!(a.id("refs/heads/feature/new~1"), a.id("main~1"));
    let appended_main = a.id("main");

    build("multi-branch.rewrite", &a.dir, &home);
    build("multi-branch.rewrite", &b.dir, &home);
    assert_eq!(a.listing(), b.listing(), "rewrite is not deterministic");
    assert!(!a.git_ok(&["merge-base", "--is-ancestor", &old_develop, "develop"]));
    assert_eq!(
        a.id("develop~1"),
        a.git(&["rev-parse", &format!("{old_develop}~1")]).trim()
    );
    assert!(!a.ref_names().iter().any(|n| n == "refs/heads/release/1.0"));
    assert_eq!(a.id("refs/tags/nightly"), appended_main);
    assert_eq!(a.id("main"), appended_main);

    // A step refuses to apply twice (rewrite needs release/1.0, gone now).
    let again = isolated("bash", &home)
        .arg(build_script())
        .arg("multi-branch.rewrite")
        .arg(&a.dir)
        .output()
        .unwrap();
    assert!(!again.status.success());

    for step in STEPS {
        let work = tmp.path().join(format!("work-{step}"));
        if let Some(actual) = reference_outcome(test, step, &work) {
            assert_pinned(step, &actual);
        }
    }
}

/// build.sh, this file, the pins and the MANIFEST agree on the fixture list.
#[test]
fn fixture_lists_agree() {
    let test = "fixture_lists_agree";
    if have_git(test).is_none() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let list = |flag: &str| -> Vec<String> {
        let out = common::run_ok(isolated("bash", home.path()).arg(build_script()).arg(flag));
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(list("--list"), FIXTURES);
    assert_eq!(list("--steps"), STEPS);
    assert_eq!(TESTED, FIXTURES, "one test per fixture, in build.sh order");

    let expected = root().join("fixtures/expected");
    let manifest = std::fs::read_to_string(expected.join("MANIFEST.txt")).unwrap();
    let listed: Vec<&str> = manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let want: Vec<String> = FIXTURES
        .iter()
        .chain(STEPS)
        .map(|n| format!("{n}.txt"))
        .collect();
    assert_eq!(listed, want);
    let mut pins: Vec<String> = std::fs::read_dir(&expected)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txt") && n != "MANIFEST.txt")
        .collect();
    pins.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        pins, want_sorted,
        "a pin per fixture and step, and no strays"
    );
}
