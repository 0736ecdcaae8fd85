//! The staging mirror `.mkit/git/<remote>/repo.git`, fetched with gix.
//!
//! The mirror is a bare repository holding the upstream's `refs/heads/*` and
//! `refs/tags/*` under the same names (a mirror, not remote-tracking refs),
//! pruned on every fetch so a branch deleted upstream disappears here too. It
//! is durable state for import: the byte-perfect original of everything we
//! translate. The reference creates it with `git clone --mirror`; gix writes
//! the same layout, so either tool can fetch into a mirror the other made.
//!
//! Pack safety: gix creates a `.keep` file before it writes a received pack
//! and deletes it only after the mirror's refs point into the pack, so a
//! concurrent `git gc` cannot drop the objects in between. When a fetch
//! receives a pack but updates no ref, gix leaves the `.keep` to the caller;
//! [`fetch`] removes it at the end, after the prune, when refs are final.
//!
//! SHA-256 upstreams are refused: mkit's git bridge is SHA-1 only.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use crate::durable::IoError;
use crate::git::sha1::Sha1;

/// Name of the mirror directory inside a state directory.
pub const MIRROR_DIR: &str = "repo.git";

/// The refspecs that make the mirror hold the upstream's heads and tags as is.
pub const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// What a gix, filesystem or durability failure under a [`StagingError`]
/// was: kept whole as the error's source.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the mirror could not be brought up to date.
///
/// Each message carries its cause's whole chain (the CLI prints one line),
/// and the cause stays reachable through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// The upstream uses SHA-256 object ids.
    #[error(
        "{url} is a SHA-256 repository: SHA-256 repositories are out of scope for git-import v1; mkit's git bridge reads SHA-1 repositories only (SPEC-GIT-IMPORT §2)"
    )]
    Sha256Upstream {
        /// The upstream.
        url: String,
    },
    /// The URL cannot be parsed.
    #[error("cannot parse upstream url {url:?}: {}", chain(source.as_ref()))]
    BadUrl {
        /// What was given.
        url: String,
        /// The parser's complaint.
        #[source]
        source: Cause,
    },
    /// Cloning or fetching failed.
    #[error("cannot {action} {url}: {}", chain(source.as_ref()))]
    Transfer {
        /// "clone" or "fetch".
        action: &'static str,
        /// The upstream.
        url: String,
        /// What failed (gix's error, or the local clone's file operation).
        #[source]
        source: Cause,
    },
    /// The mirror exists but cannot be opened or changed.
    #[error(
        "staging mirror {}: cannot {action}: {}; delete it to re-clone (nothing else is lost)",
        path.display(),
        chain(source.as_ref())
    )]
    Mirror {
        /// The mirror path.
        path: PathBuf,
        /// What was being done ("open", "list refs", "prune refs", ...).
        action: &'static str,
        /// What failed.
        #[source]
        source: Cause,
    },
    /// The run was interrupted.
    #[error("interrupted while fetching {url}")]
    Interrupted {
        /// The upstream.
        url: String,
    },
}

/// One upstream ref as the mirror holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UpstreamRef {
    /// Full name, `refs/heads/<b>` or `refs/tags/<t>`.
    pub name: String,
    /// What the ref points at (a tag object for annotated tags).
    pub target: Sha1,
}

/// The mirror after a fetch.
#[derive(Debug)]
pub struct FetchOutcome {
    /// Every head and tag, sorted by name.
    pub refs: Vec<UpstreamRef>,
    /// The upstream's default branch (`HEAD`'s target), when it advertises one.
    pub default_branch: Option<String>,
    /// True when this run created the mirror.
    pub cloned: bool,
}

/// The URL the mirror fetches from (its `remote.origin.url`), if it exists.
pub fn recorded_url(state_dir: &Path) -> Option<String> {
    let repo = gix::open(mirror_path(state_dir)).ok()?;
    let remote = repo.find_remote("origin").ok()?;
    let url = remote.url(Direction::Fetch)?;
    Some(url.to_bstring().to_str_lossy().into_owned())
}

/// Path of the mirror inside `state_dir`.
pub fn mirror_path(state_dir: &Path) -> PathBuf {
    state_dir.join(MIRROR_DIR)
}

/// `e` and every source below it, joined by `: ` (the CLI prints one line).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// The object format SHA-256 as git names it (`extensions.objectFormat`,
/// the protocol's `object-format` capability).
const SHA256: &str = "sha256";

/// The `extensions.objectFormat` a local repository at `url` declares
/// (bare, or its `.git`), read with gix's config parser; `None` for a URL
/// that names no local repository, or one that declares none (SHA-1).
fn local_object_format(url: &str) -> Option<String> {
    let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
    [path.join("config"), path.join(".git/config")]
        .into_iter()
        .filter(|c| c.is_file())
        .filter_map(|c| {
            gix::config::File::from_path_no_includes(c, gix::config::Source::Local).ok()
        })
        .find_map(|config| config.string("extensions.objectFormat"))
        .map(|format| format.to_str_lossy().to_ascii_lowercase())
}

/// The object format gix refused a transfer over: gix reports the format a
/// remote advertises (its `object-format` capability) as the `input` of an
/// unsupported-class error when this build cannot read it. A typed
/// condition, so a URL that merely contains "sha256" is never taken for one.
fn unsupported_object_format(e: &gix::Error) -> Option<String> {
    use gix::error::MetadataValue;
    if !e.is_unsupported() {
        return None;
    }
    e.metadata().find_map(|m| match m.get("input")? {
        MetadataValue::Bytes(b) => Some(String::from_utf8_lossy(b).to_ascii_lowercase()),
        MetadataValue::String(s) => Some(s.to_ascii_lowercase()),
        _ => None,
    })
}

/// The object format the server at `url` advertises (its protocol-v2
/// `object-format` capability), read from a bare handshake: no refs are
/// listed, so nothing has to parse the server's ids first. `None` when the
/// server cannot be asked or names no format (SHA-1). Asked only after a
/// failed transfer: gix lists a protocol-v2 server's refs before it checks
/// the format, so a SHA-256 server fails there, on its first 64-digit id.
fn advertised_object_format(url: &str) -> Option<String> {
    use gix::protocol::transport::client::blocking_io::connect;
    let transport = connect::connect(url, connect::Options::default()).ok()?;
    let handshake = gix::protocol::handshake(
        transport,
        gix::protocol::transport::Service::UploadPack,
        |_| Ok(None),
        Vec::new(),
        &mut gix::progress::Discard,
    )
    .ok()?;
    let format = handshake
        .capabilities
        .capability("object-format")?
        .value()?;
    Some(format.to_str_lossy().to_ascii_lowercase())
}

/// The error for a failed clone or fetch of `url`.
fn transfer_error(
    action: &'static str,
    url: &str,
    e: gix::Error,
    interrupt: &AtomicBool,
) -> StagingError {
    // gix stops a transfer whose interrupt flag is set with an error.
    if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
        return StagingError::Interrupted {
            url: url.to_owned(),
        };
    }
    let sha256 = || {
        unsupported_object_format(&e).as_deref() == Some(SHA256)
            || advertised_object_format(url).as_deref() == Some(SHA256)
    };
    if sha256() {
        return StagingError::Sha256Upstream {
            url: url.to_owned(),
        };
    }
    StagingError::Transfer {
        action,
        url: url.to_owned(),
        source: e.into(),
    }
}

/// Bring the mirror in `state_dir` up to date with `url`: clone it when
/// absent (or an empty directory), else fetch; then prune refs the upstream
/// no longer has. Returns the refs as they now stand.
pub fn fetch(
    state_dir: &Path,
    url: &str,
    interrupt: &AtomicBool,
) -> Result<FetchOutcome, StagingError> {
    fetch_with_threads(state_dir, url, interrupt, None)
}

/// [`fetch`], indexing a received pack on at most `threads` threads (gix's
/// `pack.threads`, set in memory only; `None`: gix's default, one per core).
pub fn fetch_with_threads(
    state_dir: &Path,
    url: &str,
    interrupt: &AtomicBool,
    threads: Option<usize>,
) -> Result<FetchOutcome, StagingError> {
    let pack_threads: Vec<String> = threads
        .map(|n| format!("pack.threads={}", n.max(1)))
        .into_iter()
        .collect();
    if local_object_format(url).as_deref() == Some(SHA256) {
        return Err(StagingError::Sha256Upstream {
            url: url.to_owned(),
        });
    }
    let path = mirror_path(state_dir);
    let transfer = |action: &'static str, e: gix::Error| transfer_error(action, url, e, interrupt);
    let cloned = !path.exists() || is_empty_dir(&path);
    let (repo, outcome) = if cloned {
        // Clone beside the final path and rename it into place when whole, so
        // a crash mid-clone leaves no half-made mirror to trip over later.
        let partial = state_dir.join(format!("{MIRROR_DIR}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        if path.exists() {
            let _ = std::fs::remove_dir(&path);
        }
        if crate::git::remote::url_kind(url) == crate::git::remote::UrlKind::Local
            && let Some(local) = local_clone(url, &partial)?
        {
            let repo = finish_clone(&partial, &path, state_dir)?;
            return Ok(FetchOutcome {
                refs: list_refs(&repo, &path)?,
                default_branch: local,
                cloned: true,
            });
        }
        let prepare = gix::prepare_clone_bare(url, &partial).map_err(|e| transfer("clone", e))?;
        let mut prepare = prepare
            .with_in_memory_config_overrides(pack_threads)
            .configure_remote(|remote| {
                Ok(remote
                    .with_refspecs(MIRROR_REFSPECS, Direction::Fetch)?
                    .with_fetch_tags(gix::remote::fetch::Tags::None))
            });
        let (repo, outcome) = prepare
            .fetch_only(gix::progress::Discard, interrupt)
            .map_err(|e| transfer("clone", e))?;
        drop(repo);
        let repo = finish_clone(&partial, &path, state_dir)?;
        (repo, outcome)
    } else {
        let mirror_err = |action: &'static str| {
            let path = path.clone();
            move |e: gix::Error| StagingError::Mirror {
                path,
                action,
                source: e.into(),
            }
        };
        let mut repo = gix::open(&path).map_err(mirror_err("open"))?;
        if !pack_threads.is_empty() {
            let mut config = repo.config_snapshot_mut();
            config
                .append_config(&pack_threads, gix::config::Source::Api)
                .map_err(mirror_err("limit its pack threads"))?;
            config
                .commit()
                .map_err(mirror_err("limit its pack threads"))?;
        }
        let remote = repo
            .find_remote("origin")
            .map_err(mirror_err("find its remote \"origin\""))?
            .with_url_without_url_rewrite(url)
            .map_err(|e| StagingError::BadUrl {
                url: url.to_owned(),
                source: e.into(),
            })?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let mut remote = remote;
        remote
            .replace_refspecs(MIRROR_REFSPECS, Direction::Fetch)
            .map_err(mirror_err("set its refspecs"))?;
        let outcome = remote
            .connect(Direction::Fetch)
            .map_err(|e| transfer("fetch", e))?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| transfer("fetch", e))?
            .receive(gix::progress::Discard, interrupt)
            .map_err(|e| transfer("fetch", e))?;
        (repo, outcome)
    };
    if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(StagingError::Interrupted {
            url: url.to_owned(),
        });
    }
    let advertised = advertised(&outcome.ref_map);
    let default_branch = outcome.ref_map.remote_refs.iter().find_map(|r| match r {
        gix::protocol::handshake::Ref::Symbolic {
            full_ref_name,
            target,
            ..
        } if full_ref_name.as_bstr() == "HEAD" => Some(target.to_str_lossy().into_owned()),
        _ => None,
    });
    // A fetch into an existing mirror lists only heads and tags, without
    // `HEAD`: ask a local upstream directly, else trust the mirror's own
    // `HEAD` (set from the upstream's when it was cloned).
    let default_branch = default_branch
        .or_else(|| local_head(url))
        .or_else(|| head_name(&repo));
    prune(&repo, &path, &advertised)?;
    if let gix::remote::fetch::Status::Change {
        write_pack_bundle, ..
    } = &outcome.status
        && let Some(keep) = &write_pack_bundle.keep_path
    {
        // Refs are final now; the pack is reachable or unneeded.
        let _ = std::fs::remove_file(keep);
    }
    let refs = list_refs(&repo, &path)?;
    Ok(FetchOutcome {
        refs,
        default_branch,
        cloned,
    })
}

/// The branch `HEAD` names in a local upstream, if `url` is one.
fn local_head(url: &str) -> Option<String> {
    use crate::git::remote::{UrlKind, local_path, url_kind};
    if !matches!(url_kind(url), UrlKind::Local | UrlKind::File) {
        return None;
    }
    head_name(&gix::open(local_path(url)?).ok()?)
}

/// The branch `HEAD` names in `repo`, when it is a branch that exists.
fn head_name(repo: &gix::Repository) -> Option<String> {
    let name = repo.head_name().ok()??;
    repo.try_find_reference(name.as_ref()).ok()??;
    Some(name.as_bstr().to_str_lossy().into_owned())
}

/// Move a finished clone from `partial` to `path`, make the rename durable,
/// and open it.
fn finish_clone(
    partial: &Path,
    path: &Path,
    state_dir: &Path,
) -> Result<gix::Repository, StagingError> {
    let mirror_err = |action: &'static str| {
        move |source: Cause| StagingError::Mirror {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    std::fs::rename(partial, path)
        .map_err(|e| mirror_err("move the finished clone into place")(e.into()))?;
    crate::durable::sync_dir(state_dir)
        .map_err(|e| mirror_err("make the clone durable")(e.into()))?;
    gix::open(path).map_err(|e| mirror_err("open")(e.into()))
}

/// Bytes of delta bases each reading handle on the mirror caches (gix's
/// default is 96 MiB per handle, and an import holds one per worker).
pub const DELTA_BASE_CACHE: usize = 2 << 20;

/// Open the mirror for reading objects from many threads, each handle's
/// delta-base cache bounded by `cache` bytes (64 bases at most).
pub fn open_for_reading(
    path: &Path,
    cache: usize,
) -> Result<gix::ThreadSafeRepository, gix::Error> {
    let options = gix::open::Options::default()
        .config_overrides([format!("gitoxide.core.deltaBaseCacheLimit={cache}")]);
    gix::ThreadSafeRepository::open_opts(path, options)
}

/// Clone a local repository the way git does for a local path: hard-link
/// (or copy, across filesystems) its object files, which git never rewrites,
/// then copy its heads and tags and record it as `origin` with the mirror
/// refspecs, so later fetches go through gix as usual. It needs no pack
/// negotiation, and it still works on an upstream that lacks a few objects
/// (the refs that need them are then refused one by one). Returns `None`
/// (nothing done) for an upstream that borrows objects through alternates;
/// the caller then clones through the protocol. On success the returned
/// value is the upstream's default branch.
fn local_clone(url: &str, dest: &Path) -> Result<Option<Option<String>>, StagingError> {
    let fail = |source: Cause| StagingError::Transfer {
        action: "clone",
        url: url.to_owned(),
        source,
    };
    let upstream = gix::open(url).map_err(|e| fail(e.into()))?;
    let objects = upstream.git_dir().join("objects");
    if objects.join("info/alternates").exists() {
        return Ok(None);
    }
    let default_branch = upstream
        .head_name()
        .ok()
        .flatten()
        .map(|n| n.as_bstr().to_str_lossy().into_owned());
    let mirror = gix::init_bare(dest).map_err(|e| fail(e.into()))?;
    let target = mirror.git_dir().join("objects");
    link_tree(&objects, &target)
        .map_err(|e| fail(IoError::new("copy the objects of", &objects, e).into()))?;
    // The heads and tags go into one `packed-refs` file, as `git clone
    // --mirror` of a local path leaves them: one write for thousands of
    // tags, where a ref transaction takes a lock file and a rename for each.
    // The mirror is new and not yet in place, so nothing else can hold them.
    let mut refs: Vec<(Vec<u8>, gix::ObjectId)> = Vec::new();
    let platform = upstream.references().map_err(|e| fail(e.into()))?;
    for prefix in ["refs/heads/", "refs/tags/"] {
        for r in platform.prefixed(prefix).map_err(|e| fail(e.into()))? {
            let r = r.map_err(|e| fail(e.into()))?;
            let Some(id) = r.try_id() else { continue };
            refs.push((r.name().as_bstr().to_vec(), id.detach()));
        }
    }
    let packed = dest.join("packed-refs");
    crate::durable::write_atomic(&packed, &packed_refs(refs)).map_err(|e| fail(e.into()))?;
    if let Some(head) = &default_branch {
        std::fs::write(dest.join("HEAD"), format!("ref: {head}\n"))
            .map_err(|e| fail(IoError::new("write", dest.join("HEAD"), e).into()))?;
    }
    let absolute =
        std::fs::canonicalize(url).map_err(|e| fail(IoError::new("resolve", url, e).into()))?;
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(dest.join("config"))
        .map_err(|e| fail(IoError::new("open", dest.join("config"), e).into()))?;
    use std::io::Write as _;
    let quoted = absolute
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    write!(
        config,
        "[remote \"origin\"]\n\turl = \"{quoted}\"\n\tfetch = {}\n\tfetch = {}\n\tmirror = true\n",
        MIRROR_REFSPECS[0], MIRROR_REFSPECS[1]
    )
    .and_then(|()| config.sync_all())
    .map_err(|e| fail(IoError::new("write", dest.join("config"), e).into()))?;
    Ok(Some(default_branch))
}

/// The bytes of a `packed-refs` file holding `refs` (full names and the
/// objects they point at), sorted by name as its `sorted` trait promises.
/// No peeled lines: without the `peeled` trait, readers peel tags
/// themselves.
fn packed_refs(mut refs: Vec<(Vec<u8>, gix::ObjectId)>) -> Vec<u8> {
    refs.sort();
    refs.dedup_by(|a, b| a.0 == b.0);
    let mut out = b"# pack-refs with: sorted \n".to_vec();
    for (name, id) in refs {
        out.extend_from_slice(id.to_hex().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&name);
        out.push(b'\n');
    }
    out
}

/// Hard-link every file under `from` into `to` (copying when linking is not
/// possible), creating directories as needed; skips `.keep` and lock files.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let src = entry.path();
        let dst = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&src, &dst)?;
        } else if kind.is_file() {
            let n = name.to_string_lossy();
            if n.ends_with(".keep") || n.ends_with(".lock") || dst.exists() {
                continue;
            }
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst)?;
                std::fs::File::open(&dst)?.sync_all()?;
            }
        }
    }
    Ok(())
}

/// The names of heads and tags the upstream advertised.
fn advertised(map: &gix::remote::fetch::RefMap) -> Vec<String> {
    let mut names: Vec<String> = map
        .remote_refs
        .iter()
        .map(|r| {
            let (name, _, _) = r.unpack();
            name.to_str_lossy().into_owned()
        })
        .filter(|n| n.starts_with("refs/heads/") || n.starts_with("refs/tags/"))
        .collect();
    names.sort();
    names
}

/// Delete mirror heads and tags the upstream no longer advertises.
fn prune(repo: &gix::Repository, path: &Path, advertised: &[String]) -> Result<(), StagingError> {
    let mirror_err = |source: Cause| StagingError::Mirror {
        path: path.to_path_buf(),
        action: "prune refs",
        source,
    };
    let mut edits = Vec::new();
    for r in list_refs(repo, path)? {
        if advertised.binary_search(&r.name).is_err() {
            edits.push(gix::refs::transaction::RefEdit {
                change: gix::refs::transaction::Change::Delete {
                    expected: gix::refs::transaction::PreviousValue::Any,
                    log: gix::refs::transaction::RefLog::AndReference,
                },
                name: gix::refs::FullName::try_from(r.name.as_str())
                    .map_err(|e| mirror_err(e.into()))?,
                deref: false,
            });
        }
    }
    if !edits.is_empty() {
        repo.edit_references(edits)
            .map_err(|e| mirror_err(e.into()))?;
    }
    Ok(())
}

/// The mirror's heads and tags, sorted by name.
pub fn list_refs(repo: &gix::Repository, path: &Path) -> Result<Vec<UpstreamRef>, StagingError> {
    let mirror_err = |source: Cause| StagingError::Mirror {
        path: path.to_path_buf(),
        action: "list refs",
        source,
    };
    let platform = repo.references().map_err(|e| mirror_err(e.into()))?;
    let mut out = Vec::new();
    for prefix in ["refs/heads/", "refs/tags/"] {
        let iter = platform
            .prefixed(prefix)
            .map_err(|e| mirror_err(e.into()))?;
        for r in iter {
            let r = r.map_err(|e| mirror_err(e.into()))?;
            let Some(id) = r.try_id() else { continue };
            let mut bytes = [0u8; 20];
            bytes.copy_from_slice(id.as_bytes());
            out.push(UpstreamRef {
                name: r.name().as_bstr().to_str_lossy().into_owned(),
                target: Sha1(bytes),
            });
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_refs_are_sorted_by_name_bytes_once_each() {
        let id = |n: u8| gix::ObjectId::from_bytes_or_panic(&[n; 20]);
        let refs = vec![
            (b"refs/tags/v1.0".to_vec(), id(1)),
            (b"refs/heads/main".to_vec(), id(2)),
            (b"refs/heads/Main".to_vec(), id(3)),
            (b"refs/heads/main".to_vec(), id(2)),
        ];
        let text = String::from_utf8(packed_refs(refs)).unwrap();
        let want = format!(
            "# pack-refs with: sorted \n{} refs/heads/Main\n{} refs/heads/main\n{} refs/tags/v1.0\n",
            "03".repeat(20),
            "02".repeat(20),
            "01".repeat(20),
        );
        assert_eq!(text, want);
    }

    /// The format comes from gix's typed report (an unsupported-class error
    /// carrying the format as its `input`), never from the message text.
    #[test]
    fn the_object_format_is_read_from_gix_metadata_not_from_text() {
        let sha256 =
            gix::error::Message::new("The object format used by the remote is unsupported")
                .with_input(b"sha256".as_slice())
                .unsupported_error();
        assert_eq!(unsupported_object_format(&sha256).as_deref(), Some(SHA256));
        // The same words without the typed report, or another class: no.
        let text = gix::error::Message::new("cannot reach https://h/sha256/object-format.git")
            .unsupported_error();
        assert_eq!(unsupported_object_format(&text), None);
        let validation = gix::error::Message::new("bad")
            .with_input(b"sha256".as_slice())
            .validation_error();
        assert_eq!(unsupported_object_format(&validation), None);
    }

    #[test]
    fn transfer_errors_keep_their_source_and_chain() {
        let stop = AtomicBool::new(false);
        let e = gix::error::Message::new("connection refused").validation_error();
        let err = transfer_error("fetch", "/nonexistent/sha256.git", e, &stop);
        assert!(
            matches!(
                err,
                StagingError::Transfer {
                    action: "fetch",
                    ..
                }
            ),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
        assert!(
            err.to_string()
                .starts_with("cannot fetch /nonexistent/sha256.git: ")
        );
        assert!(err.to_string().contains("connection refused"), "{err}");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let e = gix::error::Message::new("interrupted").validation_error();
        assert!(matches!(
            transfer_error("fetch", "u", e, &stop),
            StagingError::Interrupted { .. }
        ));
    }
}
