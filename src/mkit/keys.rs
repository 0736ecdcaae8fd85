//! Signing-key files: raw 32-byte Ed25519 seeds on disk.
//!
//! mkit keeps a signing key as the bare 32-byte seed (no PEM, no wrapping),
//! conventionally at `.mkit/keys/default.key`, file mode 0600 in a 0700
//! directory (SPEC-SIGNING §7). This module loads such a file under the same
//! checks the reference applies before it will sign with it (no symlinks,
//! private mode, owned by us, private directory, exactly 32 bytes), and
//! writes one crash-safely so the reference accepts it. Signing itself lives
//! in [`crate::mkit::sign`], which takes the seed this module returns.
//!
//! Only Unix is supported: the checks are the point of the format.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::durable::{self, IoError, io_err};

/// Length of a key file: one Ed25519 seed.
pub const SEED_LEN: usize = 32;
/// Directory under `.mkit` that holds key files.
pub const KEYS_DIR: &str = "keys";
/// File name of the repository's default signing key.
pub const DEFAULT_KEY_FILE: &str = "default.key";
/// File name of the bridge's default import key (SPEC-GIT-IMPORT §4), the
/// same path the reference uses.
pub const IMPORT_KEY_FILE: &str = "git-import.key";
/// Mode a key file is written with.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Mode a key directory is given.
pub const KEY_DIR_MODE: u32 = 0o700;

/// How many directories above a key file are checked for symlinks.
const SYMLINK_ANCESTORS: usize = 3;

/// Why a key could not be loaded, saved or generated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key path, or one of the three directories above it, is a symlink.
    #[error(
        "refusing signing key {}: {} is a symlink; keep keys at a real path (replace the link with the file or directory itself)",
        key.display(), link.display()
    )]
    Symlink {
        /// The key file asked for.
        key: PathBuf,
        /// The component found to be a symlink.
        link: PathBuf,
    },
    /// No file at the key path.
    #[error("no signing key at {}; create one (mkit keygen) or point the bridge at an existing key", path.display())]
    Missing {
        /// The key path.
        path: PathBuf,
    },
    /// The key path names something other than a regular file.
    #[error("signing key {} is not a regular file; replace it with the 32-byte seed file", path.display())]
    NotAFile {
        /// The key path.
        path: PathBuf,
    },
    /// Group or others have some access to the key file.
    #[error("signing key {} has mode {mode:03o}, open to group or others; run: chmod 600 {}", path.display(), path.display())]
    InsecurePermissions {
        /// The key path.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The key file belongs to another user.
    #[error("signing key {} is owned by uid {owner}, not by this user (uid {euid}); use your own key or run: chown {euid} {}", path.display(), path.display())]
    ForeignOwner {
        /// The key path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
    /// Group or others have some access to the key's directory.
    #[error("directory {} holding signing key {} has mode {mode:03o}, open to group or others; run: chmod 700 {}", dir.display(), key.display(), dir.display())]
    InsecureDir {
        /// The key file.
        key: PathBuf,
        /// Its parent directory.
        dir: PathBuf,
        /// The directory's permission bits.
        mode: u32,
    },
    /// The key file is not exactly 32 bytes.
    #[error("signing key {} is {len} bytes, but a key file is exactly 32 (a raw Ed25519 seed); it is damaged or not an mkit key", path.display())]
    WrongSize {
        /// The key path.
        path: PathBuf,
        /// The file's length.
        len: u64,
    },
    /// The operating system's random source failed.
    #[error("cannot generate a signing key: the system random source failed: {0}")]
    Random(#[source] getrandom::Error),
    /// Any other I/O failure, with the action and path.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// `<mkit_dir>/keys/default.key`: where the reference looks for the signing
/// key unless its config names another path.
pub fn default_key_path(mkit_dir: &Path) -> PathBuf {
    mkit_dir.join(KEYS_DIR).join(DEFAULT_KEY_FILE)
}

/// `<mkit_dir>/keys/git-import.key`: the import key used when no `--key` is
/// given (the only place the reference looks).
pub fn default_import_key_path(mkit_dir: &Path) -> PathBuf {
    mkit_dir.join(KEYS_DIR).join(IMPORT_KEY_FILE)
}

/// 32 fresh bytes from the operating system's random source.
pub fn generate_seed() -> Result<[u8; SEED_LEN], KeyError> {
    let mut seed = [0u8; SEED_LEN];
    getrandom::fill(&mut seed).map_err(KeyError::Random)?;
    Ok(seed)
}

/// Load a key file under the reference's checks, in its order: no symlink
/// at the path or in the three directories above it; open without
/// following links; then, on the open descriptor, a regular file, no
/// group/other permission bits, owned by our effective uid; the parent
/// directory (when the path names one) with no group/other bits; and
/// exactly 32 bytes.
pub fn load_seed(path: &Path) -> Result<[u8; SEED_LEN], KeyError> {
    refuse_symlinks(path, path)?;
    let mut file = OpenOptions::new()
        .read(true)
        // O_NONBLOCK keeps a FIFO planted at the path from hanging the open.
        .custom_flags(crate::durable::oflags::NOFOLLOW | crate::durable::oflags::NONBLOCK)
        .open(path)
        .map_err(|e| {
            if crate::durable::is_symlink_refusal(&e) {
                KeyError::Symlink {
                    key: path.to_path_buf(),
                    link: path.to_path_buf(),
                }
            } else if e.kind() == io::ErrorKind::NotFound {
                KeyError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                IoError::new("open signing key", path, e).into()
            }
        })?;
    let meta = file.metadata().map_err(io_err("stat signing key", path))?;
    if !meta.file_type().is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(KeyError::ForeignOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // As in the reference, an unreadable parent is left to the open above.
        if let Ok(dir_meta) = fs::metadata(dir) {
            let dir_mode = dir_meta.mode() & 0o777;
            if dir_mode & 0o077 != 0 {
                return Err(KeyError::InsecureDir {
                    key: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                    mode: dir_mode,
                });
            }
        }
    }
    // Read one byte more than a seed so a long file is caught without
    // trusting the size from fstat.
    let mut buf = [0u8; SEED_LEN + 1];
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.fill(0);
                return Err(IoError::new("read signing key", path, e).into());
            }
        }
    }
    if got != SEED_LEN {
        buf.fill(0);
        return Err(KeyError::WrongSize {
            path: path.to_path_buf(),
            len: meta.len().max(got as u64),
        });
    }
    let mut seed = [0u8; SEED_LEN];
    seed.copy_from_slice(&buf[..SEED_LEN]);
    buf.fill(0);
    Ok(seed)
}

/// Write `seed` to `path`, replacing any key there, crash-safely: refuse
/// symlinked directories above it, make the parent directory (mode 0700,
/// tightened to 0700 if it exists), then write a fresh 0600 temp file
/// (`O_CREAT|O_EXCL|O_NOFOLLOW`), fsync it, rename it over `path` and fsync
/// the directory.
pub fn save_seed(path: &Path, seed: &[u8; SEED_LEN]) -> Result<(), KeyError> {
    prepare_key_dir(path)?;
    durable::write_atomic_mode(path, seed, KEY_FILE_MODE)?;
    Ok(())
}

/// Like [`save_seed`], but never replaces anything: returns `Ok(false)` and
/// leaves the path alone when something (a file, a directory, even a
/// dangling symlink) already exists there.
pub fn save_seed_new(path: &Path, seed: &[u8; SEED_LEN]) -> Result<bool, KeyError> {
    prepare_key_dir(path)?;
    Ok(durable::write_new(path, seed, KEY_FILE_MODE)?)
}

/// Generate a seed and write it to `path` unless something already exists
/// there. Returns whether a new key was written; load it with [`load_seed`].
pub fn create_seed_new(path: &Path) -> Result<bool, KeyError> {
    let mut seed = generate_seed()?;
    let written = save_seed_new(path, &seed);
    seed.fill(0);
    written
}

/// Refuse the key path if it, or any of the three directories above
/// `start`'s parent chain, is a symlink. `key` is named in the error.
fn refuse_symlinks(key: &Path, start: &Path) -> Result<(), KeyError> {
    let mut dir = start.parent();
    for _ in 0..SYMLINK_ANCESTORS {
        let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) else {
            break;
        };
        check_not_symlink(key, d)?;
        dir = d.parent();
    }
    check_not_symlink(key, start)
}

fn check_not_symlink(key: &Path, p: &Path) -> Result<(), KeyError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Err(KeyError::Symlink {
            key: key.to_path_buf(),
            link: p.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IoError::new("inspect", p, e).into()),
    }
}

/// Make the key's parent directory exist with mode 0700 (created that way,
/// or tightened if it already existed), after refusing symlinks in it and
/// the three directories above it. A bare file name (no directory part) is
/// written into the current directory, which is left as it is.
fn prepare_key_dir(path: &Path) -> Result<(), KeyError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    refuse_symlinks(path, dir)?;
    if !dir.is_dir() {
        if let Some(above) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
            durable::create_dir_all_durable(above)?;
        }
        match DirBuilder::new().mode(KEY_DIR_MODE).create(dir) {
            Ok(()) => durable::sync_dir(durable::parent_or_dot(dir))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(IoError::new("create key directory", dir, e).into()),
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(KEY_DIR_MODE))
        .map_err(io_err("chmod 700", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("repo/.mkit/keys/default.key");
        (tmp, path)
    }

    #[test]
    fn save_creates_private_dir_and_file() {
        let (_tmp, path) = key_dir();
        save_seed(&path, &[7; 32]).unwrap();
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let file_mode = fs::symlink_metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        assert_eq!(load_seed(&path).unwrap(), [7; 32]);
    }

    #[test]
    fn save_tightens_an_existing_loose_dir() {
        let (_tmp, path) = key_dir();
        let dir = path.parent().unwrap();
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        save_seed(&path, &[1; 32]).unwrap();
        assert_eq!(fs::metadata(dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn generated_seeds_differ() {
        assert_ne!(generate_seed().unwrap(), generate_seed().unwrap());
    }
}
