//! Export to a local bare repository without `git push`.
//!
//! `git push` to a repository on this machine still runs the whole
//! transport: `pack-objects` searches deltas for everything it sends and the
//! receiving `index-pack` inflates and hashes every object again. For a
//! destination that is a plain local path to a bare repository whose owner
//! left no receive-side policy in the way, the same result is reached
//! directly:
//!
//! 1. [`probe`] decides whether the destination qualifies (else the caller
//!    pushes as before, and [`Fallback`] says why);
//! 2. [`LocalDest::check_refs`] reads the destination's current values and
//!    applies the same lease rules `git push --atomic --force-with-lease`
//!    applies on the client side, with the same words (`[rejected] (stale
//!    info)`), before anything is written;
//! 3. [`LocalDest::place`] puts into the destination's object directory
//!    every pack of the staging repository it lacks (packs are named by
//!    their content), and every loose staging object it lacks: hard-linked
//!    when both are on one filesystem, else copied and fsynced; a pack's
//!    `.idx` appears last, so git never sees a pack without its data;
//! 4. [`LocalDest::commit`] checks that every new tip is now present and
//!    moves every ref in ONE `git update-ref --stdin` transaction, each
//!    compared against the value read in step 2 (as `receive-pack` compares
//!    against the value it advertised): either every ref moves or none does.
//!
//! Every git process runs in [`Git::command`]'s clean environment.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::durable::{self, IoError, io_err};
use crate::git::push::{Git, Lease, PushError, PushStatus, RefPush};
use crate::git::remote::{self, UrlKind};
use crate::git::sha1::Sha1;

/// The hooks a push to the destination would run (`receive-pack`'s, the
/// ref transaction's, and the checkout one of a non-bare repository): any of
/// them present and executable sends the export through `git push`.
pub const RECEIVE_HOOKS: [&str; 7] = [
    "pre-receive",
    "update",
    "post-receive",
    "post-update",
    "proc-receive",
    "reference-transaction",
    "push-to-checkout",
];

/// Configuration for a `git update-ref --stdin` given full ids only: git
/// would otherwise look each 40-hex id up as a ref name too, to warn about
/// ambiguity (a dozen file lookups per id).
pub const UNAMBIGUOUS: [&str; 2] = ["-c", "core.warnAmbiguousRefs=false"];

/// The git push reason for a ref whose lease does not hold, as `git push
/// --porcelain` words it.
pub const STALE: &str = "[rejected] (stale info)";

/// Why a destination goes through `git push` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// A URL (`file://` included: it is the way to ask for `git push`).
    Url,
    /// git could not describe the repository; `git push` will say why.
    Unreadable(String),
    /// Not a bare repository (a checked-out branch has
    /// `receive.denyCurrentBranch` rules only `receive-pack` applies).
    NotBare,
    /// Another object format than SHA-1.
    ObjectFormat(String),
    /// An executable hook a push would run.
    Hook(String),
    /// A configuration key that changes what a push may do or how
    /// `receive-pack` writes.
    Config(String),
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::Url => write!(f, "a URL, not a local path"),
            Fallback::Unreadable(why) => write!(f, "git cannot read it ({why})"),
            Fallback::NotBare => write!(f, "not a bare repository"),
            Fallback::ObjectFormat(format) => write!(f, "object format {format}"),
            Fallback::Hook(name) => write!(f, "an executable {name} hook"),
            Fallback::Config(key) => write!(f, "{key} is set"),
        }
    }
}

/// A destination that takes the direct route: its git directory.
#[derive(Debug, Clone)]
pub struct LocalDest {
    git_dir: PathBuf,
}

/// Whether `dest` (as given), whose absolute path is `target`, can be
/// written directly: a plain path (not a URL) to a bare SHA-1 repository
/// with no executable receive hook and no `core.hooksPath`,
/// `core.sharedRepository`, `receive.*`, `transfer.*` or unknown
/// `extensions.*` setting in its own configuration (the clean environment
/// reads no other).
pub fn probe(git: &Git, dest: &str, target: &Path) -> Result<LocalDest, Fallback> {
    if remote::url_kind(dest) != UrlKind::Local {
        return Err(Fallback::Url);
    }
    let mut c = git.command(Some(target));
    c.args([
        "rev-parse",
        "--is-bare-repository",
        "--absolute-git-dir",
        "--show-object-format",
    ])
    .stderr(Stdio::piped());
    let stdout = probe_output(&mut c)?;
    let text = String::from_utf8_lossy(&stdout);
    let mut lines = text.lines();
    let (Some(bare), Some(git_dir), Some(format)) = (lines.next(), lines.next(), lines.next())
    else {
        return Err(Fallback::Unreadable(format!(
            "unexpected rev-parse output {text:?}"
        )));
    };
    let git_dir = PathBuf::from(git_dir);
    let same_dir = match (fs::canonicalize(&git_dir), fs::canonicalize(target)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if bare != "true" || !same_dir {
        return Err(Fallback::NotBare);
    }
    if format != "sha1" {
        return Err(Fallback::ObjectFormat(format.to_owned()));
    }
    let mut c = git.command(Some(&git_dir));
    c.args(["config", "--list", "-z"]).stderr(Stdio::piped());
    // `config --list` exits 0 with nothing for an empty configuration.
    let stdout = probe_output(&mut c)?;
    for entry in stdout.split(|b| *b == 0) {
        let key = entry.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let key = String::from_utf8_lossy(key).to_ascii_lowercase();
        if let Some(key) = blocking_key(&key) {
            return Err(Fallback::Config(key));
        }
    }
    for name in RECEIVE_HOOKS {
        let path = git_dir.join("hooks").join(name);
        if fs::metadata(&path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
            return Err(Fallback::Hook(name.to_owned()));
        }
    }
    Ok(LocalDest { git_dir })
}

/// Run one of the probe's git commands: its standard output, or git's
/// error text as the reason the destination is unreadable.
fn probe_output(c: &mut std::process::Command) -> Result<Vec<u8>, Fallback> {
    let out = c
        .output()
        .map_err(|e| Fallback::Unreadable(e.to_string()))?;
    if !out.status.success() {
        return Err(Fallback::Unreadable(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(out.stdout)
}

/// The configuration key (lowercased) that keeps the direct route away, if
/// `key` is one.
fn blocking_key(key: &str) -> Option<String> {
    let blocks = key == "core.hookspath"
        || key == "core.sharedrepository"
        || key.starts_with("receive.")
        || key.starts_with("transfer.")
        || (key.starts_with("extensions.") && key != "extensions.objectformat");
    blocks.then(|| key.to_owned())
}

/// The ref transaction, checked against the destination's current values.
#[derive(Debug)]
pub struct RefBatch {
    /// Each ref with the value it was read at and what happens to it, in
    /// the order given.
    refs: Vec<(RefPush, Option<Sha1>, PushStatus)>,
}

impl RefBatch {
    /// Each ref's status, in the order given.
    pub fn statuses(&self) -> Vec<(String, PushStatus)> {
        self.refs
            .iter()
            .map(|(r, _, s)| (r.name.clone(), *s))
            .collect()
    }

    /// The `update-ref --stdin` transaction: every ref compared with the
    /// value it was read at (the zero id: must not exist).
    fn script(&self) -> String {
        let mut script = String::from("start\n");
        for (r, old, status) in &self.refs {
            if *status == PushStatus::UpToDate {
                script.push_str(&format!("verify {} {}\n", r.name, r.new.to_hex()));
            } else {
                let old = old.map_or_else(|| "0".repeat(40), |o| o.to_hex());
                script.push_str(&format!("update {} {} {old}\n", r.name, r.new.to_hex()));
            }
        }
        script.push_str("prepare\ncommit\n");
        script
    }
}

/// What [`LocalDest::place`] put into the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    /// The staging packs placed (their `pack-<hash>` names), sorted.
    pub packs: Vec<String>,
    /// Staging packs the destination already had by name.
    pub present: usize,
    /// Loose staging objects the destination lacked, placed loose.
    pub loose: u64,
    /// True when files were copied (another filesystem) rather than linked.
    pub copied: bool,
}

impl LocalDest {
    /// The destination's git directory.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// Read each ref's current value and apply the push's rules to it: a
    /// ref already at its new value is up to date (whatever its lease, as
    /// in git); otherwise a lease `Expect(v)` must find exactly `v` (absent
    /// for `None`), else the ref is refused as stale, and every refused ref
    /// is reported together with git push's words. A ref that moves is
    /// created, fast-forwarded (the old value is an ancestor of the new in
    /// `staging`, tags peeled) or forced.
    pub fn check_refs(
        &self,
        git: &Git,
        staging: &Path,
        refs: &[RefPush],
    ) -> Result<RefBatch, PushError> {
        let current = self.current(refs)?;
        let stale: Vec<(String, String)> = refs
            .iter()
            .filter(|r| {
                let cur = current.get(r.name.as_str()).copied().flatten();
                cur != Some(r.new) && matches!(r.lease, Lease::Expect(e) if e != cur)
            })
            .map(|r| (r.name.clone(), STALE.to_owned()))
            .collect();
        if !stale.is_empty() {
            return Err(PushError::Rejected { refs: stale });
        }
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let cur = current.get(r.name.as_str()).copied().flatten();
            let status = match cur {
                Some(old) if old == r.new => PushStatus::UpToDate,
                None => PushStatus::Created,
                Some(old) if descends(git, staging, &old, &r.new)? => PushStatus::FastForward,
                Some(_) => PushStatus::Forced,
            };
            out.push((r.clone(), cur, status));
        }
        Ok(RefBatch { refs: out })
    }

    /// The value each ref in `refs` names in the destination (a symbolic
    /// ref followed to its object, tags not peeled), `None` when absent.
    fn current<'r>(
        &self,
        refs: &'r [RefPush],
    ) -> Result<HashMap<&'r str, Option<Sha1>>, PushError> {
        self.values(refs.iter().map(|r| r.name.as_str()))
    }

    /// What `git ls-remote --refs` lists for `names` in the destination:
    /// each present ref with its value (a symbolic ref followed to its
    /// object, tags not peeled), read directly, without a transport.
    pub fn observe<'r>(
        &self,
        names: impl Iterator<Item = &'r str>,
    ) -> Result<HashMap<String, Sha1>, PushError> {
        Ok(self
            .values(names)?
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?)))
            .collect())
    }

    /// The value of each of `names` in the destination, `None` when absent.
    fn values<'r>(
        &self,
        names: impl Iterator<Item = &'r str>,
    ) -> Result<HashMap<&'r str, Option<Sha1>>, PushError> {
        let failed = |message: String| PushError::Failed {
            action: "read destination refs",
            message,
        };
        let repo = gix::open(&self.git_dir).map_err(|e| failed(e.to_string()))?;
        let mut out = HashMap::new();
        for name in names {
            let value = match repo
                .try_find_reference(name)
                .map_err(|e| failed(format!("{name}: {e}")))?
            {
                None => None,
                Some(mut found) => {
                    let id = found
                        .follow_to_object()
                        .map_err(|e| failed(format!("{name}: {e}")))?;
                    let mut bytes = [0u8; 20];
                    bytes.copy_from_slice(id.as_bytes());
                    Some(Sha1(bytes))
                }
            };
            out.insert(name, value);
        }
        Ok(out)
    }

    /// Put every staging object the destination lacks into it: each
    /// staging pack (`.pack`, `.rev` when present, then `.idx`) whose name
    /// the destination's `objects/pack` does not hold, and each loose
    /// staging object the destination has in no form. Files are hard-linked
    /// when both repositories share a filesystem, once their data is durable
    /// (each pack file is fsynced, a no-op for the packs the export's writer
    /// fsynced already; loose objects take one `syncfs` of the filesystem),
    /// else copied to a `tmp_` name, fsynced and renamed into place. The
    /// touched directories are fsynced at the end.
    pub fn place(&self, staging: &Path) -> Result<Placed, IoError> {
        let src_objects = staging.join("objects");
        let src_pack = src_objects.join("pack");
        let dst_objects = self.git_dir.join("objects");
        let dst_pack = dst_objects.join("pack");
        let mut placed = Placed::default();
        let mut packs = Vec::new();
        for base in staging_packs(&src_pack)? {
            if dst_pack.join(format!("{base}.idx")).exists() {
                placed.present += 1;
            } else {
                packs.push(base);
            }
        }
        let loose = self.missing_loose(&src_objects)?;
        let link = durable::same_filesystem(&src_objects, &dst_objects);
        if link {
            sync_pack_files(&src_pack, &packs)?;
        }
        // No filesystem-wide flush here: copy the loose objects, fsyncing each.
        let loose_link = link && !loose.is_empty() && durable::sync_filesystem(&src_objects)?;
        let mut touched: Vec<PathBuf> = Vec::new();
        for base in packs {
            durable::create_dir_all_durable(&dst_pack)?;
            for ext in PACK_FILES {
                let src = src_pack.join(format!("{base}.{ext}"));
                if ext == "rev" && !src.exists() {
                    continue;
                }
                let dst = dst_pack.join(format!("{base}.{ext}"));
                placed.copied |= !place_file(&src, &dst, link, "tmp_mkit-bridge_")?;
            }
            placed.packs.push(base);
            if !touched.contains(&dst_pack) {
                touched.push(dst_pack.clone());
            }
        }
        for (fan, rest) in loose {
            let dir = dst_objects.join(&fan);
            durable::create_dir_all_durable(&dir)?;
            let src = src_objects.join(&fan).join(&rest);
            placed.copied |=
                !place_file(&src, &dir.join(&rest), loose_link, "tmp_obj_mkit-bridge_")?;
            placed.loose += 1;
            if !touched.contains(&dir) {
                touched.push(dir);
            }
        }
        for dir in &touched {
            durable::sync_dir(dir)?;
        }
        placed.packs.sort();
        Ok(placed)
    }

    /// The loose staging objects (fan-out directory, rest of the name) the
    /// destination has in no form, sorted.
    fn missing_loose(&self, src_objects: &Path) -> Result<Vec<(String, String)>, IoError> {
        let loose = loose_objects(src_objects)?;
        if loose.is_empty() {
            return Ok(loose);
        }
        let dest = gix::open(&self.git_dir).map_err(|e| {
            IoError::new("open destination", &self.git_dir, std::io::Error::other(e))
        })?;
        Ok(loose
            .into_iter()
            .filter(|(fan, rest)| {
                gix::ObjectId::from_hex(format!("{fan}{rest}").as_bytes())
                    .is_ok_and(|id| !dest.has_object(id))
            })
            .collect())
    }

    /// Check that every new value is now in the destination, then move
    /// every ref in one `git update-ref --stdin` transaction (`start`, an
    /// `update <ref> <new> <old>` per moving ref, a `verify` per ref that is
    /// up to date, `prepare`, `commit`): a ref no longer at the value
    /// [`LocalDest::check_refs`] read fails the whole transaction, as a
    /// compare-and-swap lost to a concurrent writer. Afterwards git's
    /// automatic maintenance runs as `receive-pack` would run it (its
    /// failure is ignored, as there).
    pub fn commit(&self, git: &Git, batch: &RefBatch) -> Result<(), PushError> {
        let repo = gix::open(&self.git_dir).map_err(|e| PushError::Failed {
            action: "update-ref",
            message: e.to_string(),
        })?;
        for (r, _, _) in &batch.refs {
            if !repo.has_object(gix::ObjectId::from(r.new.0)) {
                return Err(PushError::Failed {
                    action: "update-ref",
                    message: format!(
                        "{} is not in {} after placing the staging objects",
                        r.new.to_hex(),
                        self.git_dir.display()
                    ),
                });
            }
        }
        before_transaction();
        update_ref_stdin(
            git,
            &self.git_dir,
            &["-m", "push"],
            &batch.script(),
            transaction_error,
        )?;
        let mut gc = git.command(Some(&self.git_dir));
        gc.args(["maintenance", "run", "--auto", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = gc.status();
        Ok(())
    }
}

/// Run `git update-ref [extra] --stdin` in `dir` (full ids only: see
/// [`UNAMBIGUOUS`]) with `script` on its standard input; when git fails,
/// `failed` turns its error text into the error. The one runner of an
/// `update-ref` transaction (the destination's refs here, the staging
/// repository's in the export driver).
pub fn update_ref_stdin(
    git: &Git,
    dir: &Path,
    extra: &[&str],
    script: &str,
    failed: impl FnOnce(&str) -> PushError,
) -> Result<(), PushError> {
    let mut c = git.command(Some(dir));
    c.args(UNAMBIGUOUS)
        .arg("update-ref")
        .args(extra)
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(PushError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(PushError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(PushError::Spawn)?;
    if !out.status.success() {
        return Err(failed(&String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// A failed transaction: a ref not at its expected value (`cannot lock ref
/// '<ref>': ...`) is a rejection of that ref, which reads as a lost lease;
/// anything else is a plain failure.
fn transaction_error(stderr: &str) -> PushError {
    let detail = stderr
        .lines()
        .find_map(|l| l.find("cannot lock ref '").map(|at| l[at..].trim()));
    let name = detail.and_then(|d| {
        let rest = d.split_once("cannot lock ref '")?.1;
        Some(rest.split_once('\'')?.0.to_owned())
    });
    match (name, detail) {
        (Some(name), Some(detail)) => PushError::Rejected {
            refs: vec![(name, format!("[remote rejected] ({detail})"))],
        },
        _ => PushError::Failed {
            action: "update-ref",
            message: stderr.trim().to_owned(),
        },
    }
}

/// Whether `old` is an ancestor of `new` (or `new` itself) in `repo`, both
/// peeled to commits, as git push decides fast-forward against forced: any
/// other answer (not commits, `old` unknown) is no.
fn descends(git: &Git, repo: &Path, old: &Sha1, new: &Sha1) -> Result<bool, PushError> {
    let mut c = git.command(Some(repo));
    c.args(["merge-base", "--is-ancestor", &old.to_hex(), &new.to_hex()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = c.status().map_err(PushError::Spawn)?;
    Ok(status.code() == Some(0))
}

/// The `pack-<hash>` names of the complete packs in `pack_dir` (an `.idx`
/// with its `.pack`), sorted.
fn staging_packs(pack_dir: &Path) -> Result<Vec<String>, IoError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(pack_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(IoError::new("read", pack_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("read", pack_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base) = name.strip_suffix(".idx")
            && base.starts_with("pack-")
            && pack_dir.join(format!("{base}.pack")).is_file()
        {
            out.push(base.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Every loose object file under `objects` as (fan-out directory, rest of
/// the name), sorted.
fn loose_objects(objects: &Path) -> Result<Vec<(String, String)>, IoError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(objects).map_err(io_err("read", objects))?;
    for entry in entries {
        let entry = entry.map_err(io_err("read", objects))?;
        let fan = entry.file_name().to_string_lossy().into_owned();
        if fan.len() != 2 || !fan.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let dir = entry.path();
        for file in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
            let file = file.map_err(io_err("read", &dir))?;
            let rest = file.file_name().to_string_lossy().into_owned();
            if rest.len() == 38 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push((fan.clone(), rest));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The files of a pack, in the order they are placed (the index last).
const PACK_FILES: [&str; 3] = ["pack", "rev", "idx"];

/// Flush the files of each pack in `packs` (`pack-<hash>` names in
/// `pack_dir`) to disk, so a hard link to them is a link to durable data.
fn sync_pack_files(pack_dir: &Path, packs: &[String]) -> Result<(), IoError> {
    for base in packs {
        for ext in PACK_FILES {
            let path = pack_dir.join(format!("{base}.{ext}"));
            match fs::File::open(&path) {
                Ok(f) => f.sync_all().map_err(io_err("fsync", &path))?,
                Err(e) if ext == "rev" && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(IoError::new("open", &path, e)),
            }
        }
    }
    Ok(())
}

/// Put `src` at `dst`: a hard link when `link` (an existing `dst` is the
/// same content-named file and is kept), falling back to a copy written to
/// a temporary name starting with `tmp_prefix` (which `git prune` removes
/// when stale), fsynced and renamed into place. Returns true when linked.
fn place_file(src: &Path, dst: &Path, link: bool, tmp_prefix: &str) -> Result<bool, IoError> {
    if link {
        match fs::hard_link(src, dst) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(true),
            // EXDEV, EPERM (a filesystem or policy without hard links): copy.
            Err(_) => {}
        }
    }
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dst.with_file_name(format!("{tmp_prefix}{}_{name}", std::process::id()));
    let copied = (|| {
        fs::copy(src, &tmp).map_err(io_err("copy", &tmp))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, dst).map_err(io_err("rename into place", dst))
    })();
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    copied.map(|()| false)
}

/// Test hook (`test-hooks` only): run the shell command in
/// `MKIT_BRIDGE_BEFORE_REF_TRANSACTION` just before the ref transaction,
/// so a test can move a destination ref as a concurrent writer would.
fn before_transaction() {
    #[cfg(feature = "test-hooks")]
    if let Ok(cmd) = std::env::var("MKIT_BRIDGE_BEFORE_REF_TRANSACTION") {
        let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_keys() {
        for key in [
            "core.hookspath",
            "core.sharedrepository",
            "receive.denynonfastforwards",
            "receive.fsckobjects",
            "transfer.fsckobjects",
            "extensions.refstorage",
        ] {
            assert_eq!(blocking_key(key).as_deref(), Some(key));
        }
        for key in [
            "core.bare",
            "core.repositoryformatversion",
            "extensions.objectformat",
            "remote.origin.url",
            "gc.auto",
        ] {
            assert_eq!(blocking_key(key), None, "{key}");
        }
    }

    #[test]
    fn a_lost_compare_names_the_ref() {
        let e = transaction_error(
            "fatal: prepare: cannot lock ref 'refs/heads/main': is at \
             1111111111111111111111111111111111111111 but expected \
             2222222222222222222222222222222222222222\n",
        );
        match &e {
            PushError::Rejected { refs } => {
                assert_eq!(refs.len(), 1);
                assert_eq!(refs[0].0, "refs/heads/main");
                assert!(
                    refs[0]
                        .1
                        .starts_with("[remote rejected] (cannot lock ref 'refs/heads/main': is at"),
                    "{}",
                    refs[0].1
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_lease_failure());
        assert!(matches!(
            transaction_error("fatal: something else\n"),
            PushError::Failed { .. }
        ));
    }

    #[test]
    fn the_script_compares_every_ref() {
        let a = Sha1([0xaa; 20]);
        let b = Sha1([0xbb; 20]);
        let push = |name: &str, new| RefPush {
            name: name.to_owned(),
            src: name.to_owned(),
            new,
            lease: Lease::Force,
        };
        let batch = RefBatch {
            refs: vec![
                (push("refs/heads/new", a), None, PushStatus::Created),
                (push("refs/heads/moved", b), Some(a), PushStatus::Forced),
                (push("refs/tags/same", a), Some(a), PushStatus::UpToDate),
            ],
        };
        let zero = "0".repeat(40);
        assert_eq!(
            batch.script(),
            format!(
                "start\nupdate refs/heads/new {} {zero}\nupdate refs/heads/moved {} {}\n\
                 verify refs/tags/same {}\nprepare\ncommit\n",
                a.to_hex(),
                b.to_hex(),
                a.to_hex(),
                a.to_hex()
            )
        );
    }
}
