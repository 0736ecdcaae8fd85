//! The git command line, for what gix cannot do: `init --bare`, `ls-remote`
//! and an atomic `push` with per-ref leases.
//!
//! Every git process runs in a clean environment so that nothing of the
//! user's or the system's git configuration changes what a push does: no
//! system config (`GIT_CONFIG_NOSYSTEM=1`), no global config
//! (`GIT_CONFIG_GLOBAL=/dev/null`, and `HOME` / `XDG_CONFIG_HOME` pointed at an
//! empty private directory for gits older than 2.32), no inherited `GIT_*`
//! variable except the ssh ones a transport needs (`GIT_SSH`,
//! `GIT_SSH_COMMAND`, `GIT_SSH_VARIANT`), no terminal prompt, and the C locale
//! so messages parse. Hooks of the repositories themselves still run: the
//! staging repository is created without templates, so it has none, and a
//! destination's server-side hooks are its owner's policy.
//!
//! [`Git::push`] uses `--porcelain` and reports each ref's fate ([`PushStatus`]);
//! a rejected push (a lease that no longer holds, or a server-side
//! compare-and-swap lost to a concurrent pusher) is [`PushError::Rejected`]
//! with the refs and git's reasons. `--atomic` means either every ref lands
//! or none does.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::git::sha1::Sha1;

/// Environment variables kept from the caller: what an ssh transport needs.
const KEPT_GIT_VARS: [&str; 3] = ["GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT"];

/// Why a git command failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `git` is not installed (or not on `PATH`).
    #[error("`git` was not found on PATH; mkit-bridge export runs it to push (install git)")]
    GitMissing,
    /// A git process could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// The private empty home directory could not be made.
    #[error("cannot create the empty home directory {} for git: {source}", path.display())]
    Home {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A git command exited with an error.
    #[error("git {action} failed: {message}")]
    Failed {
        /// What was run (`init`, `ls-remote`, `push`).
        action: &'static str,
        /// git's stderr, trimmed.
        message: String,
    },
    /// The destination refused some ref updates, so (atomic) none landed.
    #[error("{}", rejected_message(refs))]
    Rejected {
        /// Each refused ref and git's reason (`stale info`, `fetch first`,
        /// `failed to update ref`, ...).
        refs: Vec<(String, String)>,
    },
}

fn rejected_message(refs: &[(String, String)]) -> String {
    let list: Vec<String> = refs.iter().map(|(r, why)| format!("{r} {why}")).collect();
    format!("the destination rejected the push: {}", list.join(", "))
}

/// git's reasons for refusing a ref because it was not at the value the
/// pusher expected: a lease that no longer holds, or a compare-and-swap lost
/// on the server to a concurrent pusher.
const LEASE_REASONS: [&str; 6] = [
    "stale info",
    "fetch first",
    "failed to update ref",
    "atomic transaction failed",
    "cannot lock ref",
    "reference already exists",
];

impl PushError {
    /// True when the push was rejected because a ref was not at its
    /// expected value (a lease or a compare-and-swap lost), rather than by
    /// the destination's policy (a hook, a checked-out branch, ...).
    pub fn is_lease_failure(&self) -> bool {
        match self {
            PushError::Rejected { refs } => refs
                .iter()
                .any(|(_, why)| LEASE_REASONS.iter().any(|r| why.contains(r))),
            _ => false,
        }
    }
}

/// The expectation a pushed ref is leased against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// `--force-with-lease=<ref>:<hex>`; `None` means the ref must not exist.
    Expect(Option<Sha1>),
    /// No condition (`+<ref>:<ref>`).
    Force,
}

/// One ref to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPush {
    /// Full ref name on the destination (`refs/heads/main`).
    pub name: String,
    /// The staging ref that holds the value (the same name, or
    /// `refs/mkit-export/<name>` in fork mode).
    pub src: String,
    /// The value it gets (already the value of `src` in the staging repository).
    pub new: Sha1,
    /// The condition on its current value.
    pub lease: Lease,
}

/// What happened to one pushed ref, from `git push --porcelain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStatus {
    /// Created (`*`).
    Created,
    /// Moved forward (` `).
    FastForward,
    /// Moved to a non-descendant (`+`).
    Forced,
    /// Already at the value (`=`): nothing was sent for it.
    UpToDate,
}

impl PushStatus {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Created => "created",
            PushStatus::FastForward => "fast-forward",
            PushStatus::Forced => "forced",
            PushStatus::UpToDate => "up-to-date",
        }
    }
}

/// A git runner with a clean environment. Holds a private empty directory
/// (removed on drop) that stands in for `HOME`.
#[derive(Debug)]
pub struct Git {
    home: PathBuf,
}

static HOME_SEQ: AtomicU64 = AtomicU64::new(0);

/// The private `HOME` of a runner: `<temp dir>/mkit-bridge-git-home.<pid>.<seq>`.
const HOME_PREFIX: &str = "mkit-bridge-git-home.";

/// Remove the homes of runners whose process is gone (killed before it
/// could drop its runner). Best effort; a live process keeps its home.
fn sweep_dead_homes(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(HOME_PREFIX)) else {
            continue;
        };
        let dead = rest
            .split_once('.')
            .filter(|(_, seq)| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .is_some_and(|pid| !crate::durable::pid_is_alive(pid));
        if dead && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Git {
    /// Check that git runs and prepare the clean environment.
    pub fn new() -> Result<Git, PushError> {
        sweep_dead_homes(&std::env::temp_dir());
        let home = std::env::temp_dir().join(format!(
            "{HOME_PREFIX}{}.{}",
            std::process::id(),
            HOME_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&home);
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&home)
                .map_err(|source| PushError::Home {
                    path: home.clone(),
                    source,
                })?;
        }
        let git = Git { home };
        git.run("--version", None, ["--version"])?;
        Ok(git)
    }

    /// A `git` command with the clean environment, run in `dir` when given.
    pub fn command(&self, dir: Option<&Path>) -> Command {
        let mut c = Command::new("git");
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str()
                && k.starts_with("GIT_")
                && !KEPT_GIT_VARS.contains(&k)
            {
                c.env_remove(&key);
            }
        }
        c.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .stdin(Stdio::null());
        if let Some(d) = dir {
            c.arg("-C").arg(d);
        }
        c
    }

    fn output(&self, mut c: Command) -> Result<Output, PushError> {
        c.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PushError::GitMissing
            } else {
                PushError::Spawn(e)
            }
        })
    }

    fn run<I, S>(
        &self,
        action: &'static str,
        dir: Option<&Path>,
        args: I,
    ) -> Result<String, PushError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.command(dir);
        c.args(args);
        let out = self.output(c)?;
        if !out.status.success() {
            return Err(PushError::Failed {
                action,
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `git init --bare` at `path` (which must exist and be empty, or not
    /// exist). `templates: false` copies no template files (no sample
    /// hooks); `initial_branch` names the branch `HEAD` points at.
    pub fn init_bare(
        &self,
        path: &Path,
        templates: bool,
        initial_branch: Option<&str>,
    ) -> Result<(), PushError> {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("init"),
            OsStr::new("--bare"),
            OsStr::new("--quiet"),
        ];
        if !templates {
            args.push(OsStr::new("--template="));
        }
        let branch_arg;
        if let Some(b) = initial_branch {
            branch_arg = format!("--initial-branch={b}");
            args.push(OsStr::new(&branch_arg));
        }
        args.push(OsStr::new("--"));
        args.push(path.as_os_str());
        self.run("init", None, args).map(|_| ())
    }

    /// True when `path` is inside a git repository (`rev-parse --git-dir`).
    pub fn is_repository(&self, path: &Path) -> bool {
        let mut c = self.command(Some(path));
        c.args(["rev-parse", "--git-dir"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.status().is_ok_and(|s| s.success())
    }

    /// The destination's refs (`git ls-remote --refs`: heads, tags and any
    /// other namespace such as `refs/mkit/attestations`; no peeled entries,
    /// no `HEAD`), run from `staging` (so a relative URL resolves as the
    /// push's does).
    pub fn ls_remote(
        &self,
        staging: &Path,
        dest: &str,
    ) -> Result<HashMap<String, Sha1>, PushError> {
        let out = self.run(
            "ls-remote",
            Some(staging),
            [
                OsStr::new("ls-remote"),
                OsStr::new("--quiet"),
                OsStr::new("--refs"),
                OsStr::new("--"),
                OsStr::new(dest),
            ],
        )?;
        let mut refs = HashMap::new();
        for line in out.lines() {
            let Some((hex, name)) = line.split_once('\t') else {
                continue;
            };
            if !name.starts_with("refs/") {
                continue;
            }
            if let Ok(id) = Sha1::from_hex_any_case(hex.trim().as_bytes()) {
                refs.insert(name.to_owned(), id);
            }
        }
        Ok(refs)
    }

    /// One atomic push from `staging` to `dest` of every ref in `refs` (each
    /// already a ref of the same name in `staging`), each under its lease.
    /// Returns each ref's status, in the order given.
    pub fn push(
        &self,
        staging: &Path,
        dest: &str,
        refs: &[RefPush],
    ) -> Result<Vec<(String, PushStatus)>, PushError> {
        let mut c = self.command(Some(staging));
        c.args(["push", "--porcelain", "--atomic", "--no-verify"]);
        for r in refs {
            if let Lease::Expect(expect) = r.lease {
                let hex = expect.map(|s| s.to_hex()).unwrap_or_default();
                c.arg(format!("--force-with-lease={}:{hex}", r.name));
            }
        }
        c.arg("--").arg(dest);
        for r in refs {
            match r.lease {
                Lease::Force => c.arg(format!("+{}:{}", r.src, r.name)),
                Lease::Expect(_) => c.arg(format!("{}:{}", r.src, r.name)),
            };
        }
        let out = self.output(c)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines = parse_porcelain(&stdout);
        if out.status.success() {
            let mut statuses = Vec::with_capacity(refs.len());
            for r in refs {
                let status = lines
                    .iter()
                    .find(|l| l.dst == r.name)
                    .and_then(|l| match l.flag {
                        '*' => Some(PushStatus::Created),
                        ' ' => Some(PushStatus::FastForward),
                        '+' => Some(PushStatus::Forced),
                        '=' => Some(PushStatus::UpToDate),
                        _ => None,
                    })
                    // A successful push that does not list a ref still
                    // moved it to the value asked for.
                    .unwrap_or(PushStatus::FastForward);
                statuses.push((r.name.clone(), status));
            }
            return Ok(statuses);
        }
        let rejected: Vec<&PorcelainLine> = lines.iter().filter(|l| l.flag == '!').collect();
        if rejected.is_empty() {
            return Err(PushError::Failed {
                action: "push",
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        // Under --atomic, the innocent refs are reported as "atomic push
        // failed"; name the culprits when git tells them apart.
        let culprits: Vec<&&PorcelainLine> = rejected
            .iter()
            .filter(|l| !l.summary.contains("atomic push fail"))
            .collect();
        let chosen: Vec<(String, String)> = if culprits.is_empty() {
            rejected
                .iter()
                .map(|l| (l.dst.clone(), l.summary.clone()))
                .collect()
        } else {
            culprits
                .iter()
                .map(|l| (l.dst.clone(), l.summary.clone()))
                .collect()
        };
        Err(PushError::Rejected { refs: chosen })
    }
}

impl Git {
    /// The commit `spec` names in `repo` (`rev-parse --verify --quiet
    /// <spec>^{commit}`), `None` when it names none.
    pub fn rev_parse_commit(&self, repo: &Path, spec: &str) -> Result<Option<Sha1>, PushError> {
        let mut c = self.command(Some(repo));
        c.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{spec}^{{commit}}"));
        let out = self.output(c)?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(Sha1::from_hex_any_case(text.trim().as_bytes()).ok())
    }

    /// The tree of `commit` in `repo`.
    pub fn commit_tree(&self, repo: &Path, commit: &Sha1) -> Result<Option<Sha1>, PushError> {
        let mut c = self.command(Some(repo));
        c.args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("{}^{{tree}}", commit.to_hex()));
        let out = self.output(c)?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(Sha1::from_hex_any_case(text.trim().as_bytes()).ok())
    }

    /// The entries of `commit`'s root tree in `repo`: `(name, id)` of each
    /// (`git ls-tree -z`), in tree order.
    pub fn ls_tree(&self, repo: &Path, commit: &Sha1) -> Result<Vec<(String, Sha1)>, PushError> {
        let out = self.run(
            "ls-tree",
            Some(repo),
            [
                "ls-tree".to_owned(),
                "-z".to_owned(),
                format!("{}^{{tree}}", commit.to_hex()),
            ],
        )?;
        let mut entries = Vec::new();
        for record in out.split('\0').filter(|r| !r.is_empty()) {
            // "<mode> <kind> <id>\t<name>"
            let Some((meta, name)) = record.split_once('\t') else {
                continue;
            };
            let Some(hex) = meta.split(' ').nth(2) else {
                continue;
            };
            if let Ok(id) = Sha1::from_hex_any_case(hex.as_bytes()) {
                entries.push((name.to_owned(), id));
            }
        }
        Ok(entries)
    }

    /// Whether `old` is `new` or one of its ancestors in `repo`; false when
    /// `repo` does not have `old` at all (`cat-file -e`, then `merge-base
    /// --is-ancestor`).
    pub fn is_ancestor(&self, repo: &Path, old: &Sha1, new: &Sha1) -> Result<bool, PushError> {
        let mut probe = self.command(Some(repo));
        probe
            .args(["cat-file", "-e", &format!("{}^{{commit}}", old.to_hex())])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !self.status(probe)? {
            return Ok(false);
        }
        let mut c = self.command(Some(repo));
        c.args(["merge-base", "--is-ancestor", &old.to_hex(), &new.to_hex()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = self.output(c)?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(PushError::Failed {
                action: "merge-base",
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    fn status(&self, mut c: Command) -> Result<bool, PushError> {
        c.status().map(|s| s.success()).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PushError::GitMissing
            } else {
                PushError::Spawn(e)
            }
        })
    }
}

impl Drop for Git {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// One `<flag>\t<from>:<to>\t<summary>` line of `git push --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PorcelainLine {
    flag: char,
    dst: String,
    summary: String,
}

fn parse_porcelain(text: &str) -> Vec<PorcelainLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(flag), Some(spec), summary) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mut chars = flag.chars();
        let (Some(flag), None) = (chars.next(), chars.next()) else {
            continue;
        };
        let dst = spec.rsplit_once(':').map_or(spec, |(_, d)| d);
        out.push(PorcelainLine {
            flag,
            dst: dst.to_owned(),
            summary: summary.unwrap_or("").trim().to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_of_dead_runners_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::process::id();
        let dirs = [
            (format!("{HOME_PREFIX}{dead}.0"), true),
            (format!("{HOME_PREFIX}{live}.3"), false),
            (format!("{HOME_PREFIX}{dead}"), false),
            (format!("{HOME_PREFIX}x.0"), false),
            (format!("other.{dead}.0"), false),
        ];
        for (d, _) in &dirs {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        std::fs::write(tmp.path().join(format!("{HOME_PREFIX}{dead}.0/f")), b"").unwrap();
        sweep_dead_homes(tmp.path());
        for (d, gone) in &dirs {
            assert_eq!(!tmp.path().join(d).exists(), *gone, "{d}");
        }
    }

    #[test]
    fn porcelain_lines_parse() {
        let text = "To /tmp/m\n*\trefs/heads/a:refs/heads/a\t[new branch]\n\
                    =\trefs/tags/v:refs/tags/v\t[up to date]\n\
                    !\trefs/heads/b:refs/heads/b\t[rejected] (stale info)\nDone\n";
        let lines = parse_porcelain(text);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].flag, '*');
        assert_eq!(lines[1].dst, "refs/tags/v");
        assert_eq!(lines[2].summary, "[rejected] (stale info)");
    }
}
