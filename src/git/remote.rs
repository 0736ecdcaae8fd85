//! Upstream locations: what kind of URL a user gave, and its canonical identity.
//!
//! Every binding and guard that asks "is this the same upstream?" compares
//! canonical identities (SPEC-GIT-IMPORT §8): a state directory records its
//! source's identity once and refuses another, an import refuses an upstream
//! another state already imports, and plain export refuses a destination an
//! import came from. The reference mkit 0.5.0 writes these identities into
//! the `source` file and into attestations, so ours must be the same string
//! for the same input, quirks included (`spec/IMPORT.md` lists them). The
//! rules, in the order they are tried:
//!
//! 1. `file://` (exact case) drops the prefix and an optional `localhost`,
//!    then continues as a local path (rule 4);
//! 2. anything with `://` is a URL: scheme and host lowercased, userinfo
//!    dropped, the scheme's default port dropped (`ssh` 22, `https` 443,
//!    `http` 80, `git` 9418), one trailing `/` then one trailing `.git`
//!    stripped from the path;
//! 3. a `:` before the first `/` (and not a DOS drive) is scp style,
//!    `[user@]host:path`, rewritten to `ssh://host/path` with the same path
//!    stripping; bracketed IPv6 hosts keep their brackets;
//! 4. anything else is a local path: stripped like a URL path, then
//!    resolved through symlinks to an absolute path, or, when it does not
//!    exist, made absolute against the working directory with `.` and `..`
//!    removed lexically.
//!
//! Only rule 4 touches the filesystem, in one small private function.

use std::path::{Component, Path, PathBuf};

/// How an upstream location is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlKind {
    /// A plain filesystem path.
    Local,
    /// A `file://` URL.
    File,
    /// An `ssh://` (or `git+ssh://`, `ssh+git://`) URL.
    Ssh,
    /// An scp-style `[user@]host:path`.
    Scp,
    /// A `git://` URL (the unauthenticated git daemon).
    Git,
    /// An `http://` URL.
    Http,
    /// An `https://` URL.
    Https,
    /// A URL with any other scheme (lowercased), which we cannot fetch.
    Other(String),
}

/// Why a location is refused before anything is run with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// Empty or blank: git would act on whatever directory it runs in.
    #[error("empty git URL or path; give the repository to use")]
    Empty,
    /// Starts with `-`, so a git command line would read it as an option.
    #[error(
        "{0:?} is not a valid git URL or path (it starts with '-'); write a path as ./{0} if you mean one"
    )]
    OptionLike(String),
}

/// Refuse a location that must never reach a git command line: blank, or
/// starting with `-` (an option such as `--upload-pack=...`). 0.5.0 applies
/// the same two checks before doing anything else.
pub fn check_url(url: &str) -> Result<(), RemoteError> {
    if url.trim().is_empty() {
        return Err(RemoteError::Empty);
    }
    if url.starts_with('-') {
        return Err(RemoteError::OptionLike(url.to_owned()));
    }
    Ok(())
}

/// Classify `url` by the same rules, in the same order, as [`remote_identity`].
pub fn url_kind(url: &str) -> UrlKind {
    if url.starts_with("file://") {
        return UrlKind::File;
    }
    if let Some((scheme, _)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "file" => UrlKind::File,
            "ssh" | "git+ssh" | "ssh+git" => UrlKind::Ssh,
            "git" => UrlKind::Git,
            "http" => UrlKind::Http,
            "https" => UrlKind::Https,
            _ => UrlKind::Other(scheme),
        };
    }
    if is_scp_like(url) {
        UrlKind::Scp
    } else {
        UrlKind::Local
    }
}

/// The filesystem path a [`UrlKind::Local`] or [`UrlKind::File`] location
/// names, as written (not resolved); `None` for network locations.
pub fn local_path(url: &str) -> Option<PathBuf> {
    match url_kind(url) {
        UrlKind::Local => Some(PathBuf::from(url)),
        UrlKind::File => {
            let rest = url.get("file://".len()..)?;
            Some(PathBuf::from(
                rest.strip_prefix("localhost").unwrap_or(rest),
            ))
        }
        _ => None,
    }
}

/// The canonical identity of `url` (SPEC-GIT-IMPORT §8, as 0.5.0 computes
/// it). Relative local paths resolve against the process's working directory.
pub fn remote_identity(url: &str) -> String {
    identity(url, None)
}

/// [`remote_identity`] with relative local paths resolved against `cwd`
/// instead of the process's working directory (the same result when `cwd`
/// is that directory).
pub fn remote_identity_in(url: &str, cwd: &Path) -> String {
    identity(url, Some(cwd))
}

fn identity(url: &str, cwd: Option<&Path>) -> String {
    if let Some(rest) = url.strip_prefix("file://") {
        return local_identity(rest.strip_prefix("localhost").unwrap_or(rest), cwd);
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        return url_identity(scheme, rest);
    }
    if is_scp_like(url) {
        return scp_identity(url);
    }
    local_identity(url, cwd)
}

/// `scheme://[userinfo@]host[:port][/path]`.
fn url_identity(scheme: &str, rest: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    let (host, port) = split_host_port(host_port);
    let default_port = match scheme.as_str() {
        "ssh" => Some("22"),
        "https" => Some("443"),
        "http" => Some("80"),
        "git" => Some("9418"),
        _ => None,
    };
    let port = match port {
        Some(p) if Some(p) != default_port => format!(":{p}"),
        _ => String::new(),
    };
    format!(
        "{scheme}://{}{port}{}",
        host.to_ascii_lowercase(),
        strip_path(path)
    )
}

/// `host[:port]`, with a bracketed IPv6 literal kept whole. Outside
/// brackets only an all-digit, non-empty suffix counts as a port; after a
/// bracketed host whatever follows `:` does (and anything else is dropped),
/// as in 0.5.0.
fn split_host_port(hp: &str) -> (&str, Option<&str>) {
    if hp.starts_with('[') {
        return match hp.find(']') {
            Some(close) => (&hp[..=close], hp[close + 1..].strip_prefix(':')),
            None => (hp, None),
        };
    }
    match hp.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (hp, None),
    }
}

/// scp style: a `:` in the part before the first `/`, unless it is a DOS drive.
fn is_scp_like(url: &str) -> bool {
    let first_segment = url.split('/').next().unwrap_or(url);
    first_segment.contains(':') && !is_dos_drive(url)
}

/// `[user@]host:path` → `ssh://host/path`. The user part is whatever
/// precedes the last `@` anywhere in the string, as in 0.5.0.
fn scp_identity(url: &str) -> String {
    let after_user = url.rsplit_once('@').map_or(url, |(_, after)| after);
    let bracket_close = after_user
        .starts_with('[')
        .then(|| after_user.find(']'))
        .flatten();
    let (host, path) = match bracket_close {
        Some(close) => (
            &after_user[..=close],
            after_user[close + 1..].strip_prefix(':').unwrap_or(""),
        ),
        None => after_user.split_once(':').unwrap_or((after_user, "")),
    };
    format!(
        "ssh://{}/{}",
        host.to_ascii_lowercase(),
        strip_path(path).trim_start_matches('/')
    )
}

/// `C:`, `C:/...` or `C:\...`, optionally behind the `\\?\` long-path prefix.
fn is_dos_drive(url: &str) -> bool {
    let s = url.strip_prefix(r"\\?\").unwrap_or(url).as_bytes();
    s.len() >= 2
        && s[0].is_ascii_alphabetic()
        && s[1] == b':'
        && matches!(s.get(2), None | Some(b'/' | b'\\'))
}

/// Drop one trailing `/`, then one trailing `.git`.
fn strip_path(path: &str) -> &str {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.strip_suffix(".git").unwrap_or(path)
}

fn local_identity(path: &str, cwd: Option<&Path>) -> String {
    resolve_on_disk(Path::new(strip_path(path)), cwd)
        .to_string_lossy()
        .into_owned()
}

/// The one filesystem-dependent step: `path` through symlinks to an absolute
/// path; when that fails (nothing there yet), `path` made absolute against
/// `cwd` (default: the process's working directory) and normalized lexically.
fn resolve_on_disk(path: &Path, cwd: Option<&Path>) -> PathBuf {
    let anchored = match cwd {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    };
    if let Ok(real) = anchored.canonicalize() {
        return real;
    }
    if path.is_absolute() || cwd.is_some() {
        return lexical_normalize(&anchored);
    }
    match std::env::current_dir() {
        Ok(dir) => lexical_normalize(&dir.join(path)),
        Err(_) => lexical_normalize(path),
    }
}

/// Remove `.` components and fold `..` into its parent without touching the
/// disk; a `..` with nothing left to remove is kept.
fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if out.pop() => {}
            Component::ParentDir => out.push(".."),
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_spellings_that_name_one_upstream() {
        let cwd = Path::new("/nonexistent-cwd");
        let classes: &[(&str, &[&str])] = &[
            (
                "ssh://github.com/org/repo",
                &[
                    "git@github.com:org/repo.git",
                    "github.com:org/repo",
                    "github.com:/org/repo/",
                    "ssh://GIT@GITHUB.COM:22/org/repo/",
                    "ssh://github.com/org/repo.git",
                    "SSH://github.com:22/org/repo.git/",
                ],
            ),
            (
                "https://github.com/Org/Repo",
                &[
                    "HTTPS://GitHub.com:443/Org/Repo.git",
                    "https://user:token@github.com/Org/Repo/",
                ],
            ),
            (
                "http://host/r",
                &["http://HOST:80/r", "http://h@host/r.git"],
            ),
            ("git://host/r", &["git://host:9418/r.git", "GIT://Host/r/"]),
            (
                "ssh://[::1]/path/repo",
                &["[::1]:path/repo", "u@[::1]:path/repo.git"],
            ),
            (
                "ssh://[::a]/r",
                &["ssh://[::A]:22/r", "ssh://u@[::a]/r.git"],
            ),
        ];
        for (canonical, spellings) in classes {
            assert_eq!(remote_identity_in(canonical, cwd), *canonical);
            for s in *spellings {
                assert_eq!(remote_identity_in(s, cwd), *canonical, "{s}");
            }
        }
        // Different upstreams stay different.
        for (a, b) in [
            (
                "ssh://github.com/org/repo",
                "ssh://github.com:2222/org/repo",
            ),
            ("https://h/Org/Repo", "https://h/org/repo"),
            ("https://h/r", "http://h/r"),
        ] {
            assert_ne!(remote_identity_in(a, cwd), remote_identity_in(b, cwd));
        }
    }

    #[test]
    fn quirks_kept_from_the_reference() {
        let cwd = Path::new("/w");
        let cases = [
            // Only one trailing `/` and one `.git` are stripped, `/` first.
            ("https://h/r.git.git", "https://h/r.git"),
            ("https://h/r//", "https://h/r/"),
            ("https://h/r.git/", "https://h/r"),
            ("https://h/r/.git", "https://h/r/"),
            // A non-numeric suffix is part of the host; an empty port too.
            ("ssh://h:x/r", "ssh://h:x/r"),
            ("ssh://h:/r", "ssh://h:/r"),
            ("ssh://[::1]:/r", "ssh://[::1]:/r"),
            ("ssh://[::1]junk/r", "ssh://[::1]/r"),
            // Unknown schemes keep every port.
            ("ftp://h:21/r", "ftp://h:21/r"),
            ("git+ssh://h:22/r", "git+ssh://h:22/r"),
            // No path at all.
            ("https://h", "https://h"),
            // scp: the last `@` anywhere splits off the user.
            ("h:path@x", "ssh://x/"),
            ("U@H:P/Q.git", "ssh://h/P/Q"),
            // `FILE://` is not `file://`: it is treated as a URL.
            ("FILE:///tmp/x", "file:///tmp/x"),
            // Relative local paths anchor at the working directory.
            ("a/../b/./c.git", "/w/b/c"),
            ("../../../up", "/up"),
            ("", "/w"),
            ("/../x", "/../x"),
            ("/a/../../x", "/../x"),
            // `file://` plus a host other than localhost reads as a relative path.
            ("file://server/share", "/w/server/share"),
        ];
        for (input, want) in cases {
            assert_eq!(remote_identity_in(input, cwd), want, "{input:?}");
        }
        // DOS drives are local paths, not scp hosts.
        assert!(!remote_identity_in("C:/repos/x", cwd).starts_with("ssh://"));
        assert!(!remote_identity_in(r"\\?\C:\Users\x", cwd).starts_with("ssh://"));
        assert!(is_dos_drive("c:") && is_dos_drive(r"C:\x") && !is_dos_drive("cc:/x"));
    }

    #[test]
    fn local_paths_and_file_urls_collapse_through_symlinks() {
        let td = tempfile::tempdir().unwrap();
        let root = td.path().canonicalize().unwrap();
        let real = root.join("real");
        std::fs::create_dir(&real).unwrap();
        let link = root.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let want = real.to_string_lossy().into_owned();
        let spellings = [
            real.display().to_string(),
            format!("{}/", real.display()),
            format!("{}.git", real.display()),
            link.display().to_string(),
            format!("{}/../real", link.display()),
            format!("file://{}", real.display()),
            format!("file://localhost{}", link.display()),
            "real".to_owned(),
            "./link/".to_owned(),
        ];
        for s in &spellings {
            assert_eq!(remote_identity_in(s, &root), want, "{s}");
        }
        // A path that does not exist yet resolves lexically.
        assert_eq!(
            remote_identity_in("missing/../other.git", &root),
            root.join("other").to_string_lossy()
        );
        // Without an explicit base the process's working directory is used.
        let here = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(remote_identity("."), here.to_string_lossy());
    }

    #[test]
    fn kinds_and_local_paths() {
        let cases = [
            ("/srv/repo", UrlKind::Local),
            ("repo.git", UrlKind::Local),
            ("C:/repo", UrlKind::Local),
            ("./a:b", UrlKind::Local),
            ("file:///srv/repo", UrlKind::File),
            ("FILE:///srv/repo", UrlKind::File),
            ("ssh://h/r", UrlKind::Ssh),
            ("git+ssh://h/r", UrlKind::Ssh),
            ("git@h:r", UrlKind::Scp),
            ("[::1]:r", UrlKind::Scp),
            ("git://h/r", UrlKind::Git),
            ("http://h/r", UrlKind::Http),
            ("HTTPS://h/r", UrlKind::Https),
            ("s3://b/k", UrlKind::Other("s3".into())),
        ];
        for (url, want) in cases {
            assert_eq!(url_kind(url), want, "{url}");
        }
        assert_eq!(local_path("/srv/r"), Some(PathBuf::from("/srv/r")));
        assert_eq!(
            local_path("file://localhost/srv/r"),
            Some(PathBuf::from("/srv/r"))
        );
        assert_eq!(local_path("file:///srv/r"), Some(PathBuf::from("/srv/r")));
        assert_eq!(local_path("git@h:r"), None);
    }

    #[test]
    fn option_like_and_blank_locations_are_refused() {
        assert_eq!(check_url(""), Err(RemoteError::Empty));
        assert_eq!(check_url("  \t"), Err(RemoteError::Empty));
        assert!(matches!(
            check_url("--upload-pack=touch /tmp/x"),
            Err(RemoteError::OptionLike(_))
        ));
        assert_eq!(check_url("git@h:r"), Ok(()));
        assert_eq!(check_url("./-weird"), Ok(()));
    }
}
