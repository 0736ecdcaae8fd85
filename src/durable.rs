//! Crash-safe file writes: temp file, flush, fsync, rename, directory fsync.
//!
//! Every file the bridge replaces (loose objects, refs, `HEAD`, keys, state
//! stamps, ref state) goes through [`write_atomic`], so a crash leaves either
//! the old file or the new one, never a mix, and at worst a stray temp file
//! whose name starts with `.` and contains `.tmp.`. Temp names follow the
//! reference's `.<name>.tmp.<pid>.<seq>` shape so both tools ignore each
//! other's leftovers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// `open(2)` flags for [`OpenOptionsExt::custom_flags`], taken from rustix's
/// constants (the values are the platform's; rustix only names them).
pub mod oflags {
    /// Refuse to open through a symlink in the last path component (the
    /// open fails with `ELOOP`).
    pub const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    /// Do not block in `open`, so a FIFO planted at the path cannot hang it.
    pub const NONBLOCK: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
}

/// True when `e` is the `ELOOP` an [`oflags::NOFOLLOW`] open gives for a
/// symlink.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

/// An I/O failure with the action and path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct IoError {
    /// What was being done ("write", "rename", "fsync directory", ...).
    pub action: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// Wrap `source` with the action and path.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        IoError {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Build a `map_err` closure naming `action` and `path`.
pub fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> IoError + 'a {
    move |source| IoError::new(action, path, source)
}

/// A fresh, unused temp path beside `final_path`: `.<name>.tmp.<pid>.<seq>`.
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = PID.get_or_init(std::process::id);
    let tmp = format!(".{name}.tmp.{pid}.{seq}");
    final_path.with_file_name(tmp)
}

/// The writer's process id in a temp name of ours, `.<name>.tmp.<pid>.<seq>`
/// (every [`temp_path_for`]); `None` for any other name. The leading `.`
/// is required, so no final name (an object, a ref segment, a stamp) is
/// ever taken for a temp file.
pub fn temp_writer_pid(file_name: &std::ffi::OsStr) -> Option<u32> {
    let name = file_name.as_encoded_bytes().strip_prefix(b".")?;
    tagged_pid(name)
}

/// The `<pid>` of a name ending in `.tmp.<pid>.<seq>` after a non-empty
/// stem, both numbers canonical decimal.
pub fn tagged_pid(name: &[u8]) -> Option<u32> {
    let digits =
        |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit) && (s == b"0" || s[0] != b'0');
    let mut parts = name.rsplitn(3, |&b| b == b'.');
    let (seq, pid, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let stem = rest.strip_suffix(b".tmp")?;
    if stem.is_empty() || !digits(seq) || !digits(pid) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// Whether process `pid` may still be running: true unless the kernel says
/// there is no such process (a pid that cannot be tested counts as alive,
/// so its files are left alone).
pub fn pid_is_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    !matches!(
        rustix::process::test_kill_process(p),
        Err(rustix::io::Errno::SRCH)
    )
}

/// True for a temp file of ours ([`temp_writer_pid`]) whose writer is no
/// longer running.
pub fn is_dead_temp(file_name: &std::ffi::OsStr) -> bool {
    temp_writer_pid(file_name).is_some_and(|pid| !pid_is_alive(pid))
}

/// Remove from `dir` (not below it) every regular file `is_stale` picks
/// (usually [`is_dead_temp`]); returns how many were removed. Best effort:
/// a missing or unreadable directory, or a file that cannot be removed, is
/// skipped (a later sweep retries). Only for temp files, which nothing
/// reads; the caller holds whatever lock makes `is_stale`'s answer hold.
pub fn sweep_dir(dir: &Path, is_stale: impl Fn(&std::ffi::OsStr) -> bool) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        if is_stale(&e.file_name())
            && e.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Create a new temp file beside `final_path` with `mode`, refusing to follow
/// or reuse anything already at the temp name.
pub fn create_temp(final_path: &Path, mode: u32) -> Result<(File, PathBuf), IoError> {
    let tmp = temp_path_for(final_path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(oflags::NOFOLLOW)
        .open(&tmp)
        .map_err(io_err("create temp file", &tmp))?;
    Ok((file, tmp))
}

/// Write every part to `file`, in order, with as few `write` calls as the
/// kernel allows (one `writev` in the common case).
pub fn write_all_parts(file: &mut File, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| io::IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The 256 fan-out directories (`<root>/<2 hex>/`) one writer stages into,
/// each created at most once per writer.
///
/// Remembers whether this writer created a directory: a directory made by
/// this writer held nothing when it was made, so nothing this writer stages
/// into it can already be published there, and the writer may skip the
/// per-file existence check. (Another process publishing the same
/// content-addressed file meanwhile is harmless: the later rename replaces it
/// with identical bytes.)
#[derive(Debug)]
pub struct FanOut {
    slots: [std::sync::atomic::AtomicU8; 256],
}

const FAN_UNKNOWN: u8 = 0;
const FAN_EXISTED: u8 = 1;
const FAN_CREATED: u8 = 2;

impl Default for FanOut {
    fn default() -> Self {
        FanOut {
            slots: std::array::from_fn(|_| std::sync::atomic::AtomicU8::new(FAN_UNKNOWN)),
        }
    }
}

impl FanOut {
    /// Make sure `dir`, the fan-out directory numbered `index`, exists.
    /// Returns true when this writer created it.
    pub fn ensure(&self, index: u8, dir: &Path) -> Result<bool, IoError> {
        let slot = &self.slots[usize::from(index)];
        match slot.load(Ordering::Acquire) {
            FAN_EXISTED => return Ok(false),
            FAN_CREATED => return Ok(true),
            _ => {}
        }
        match fs::create_dir(dir) {
            Ok(()) => {
                slot.store(FAN_CREATED, Ordering::Release);
                return Ok(true);
            }
            // Another stager of this writer may have just created it; its
            // `FAN_CREATED` wins below, and this call's answer stays cautious.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // The root itself is missing: make the whole path, and do not
            // claim the directory as new (a racing stager may share it).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            }
            Err(e) => return Err(IoError::new("create directory", dir, e)),
        }
        let _ = slot.compare_exchange(
            FAN_UNKNOWN,
            FAN_EXISTED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        Ok(false)
    }
}

/// Whether `a` and `b` are on the same filesystem (one filesystem-wide
/// flush covers both). False when either cannot be examined.
pub fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

/// Take the exclusive advisory lock on the open `file` (at `path`), polling
/// `try_lock` with a back-off (1 ms doubling to 20 ms) for up to `timeout`:
/// `true` once held, `false` when another holder kept it the whole time.
/// The one waiting loop behind the state, ref and worktree locks.
pub fn wait_for_lock(
    file: &File,
    path: &Path,
    timeout: std::time::Duration,
) -> Result<bool, IoError> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::Error(e)) => return Err(IoError::new("lock", path, e)),
            Err(fs::TryLockError::WouldBlock) => {}
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Ok(false);
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Flush a directory's entries to disk (makes a rename or create durable).
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Replace `path` with `bytes` atomically and durably, file mode 0644.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_mode(path, bytes, 0o644)
}

/// Replace `path` with `bytes` atomically and durably, with the given file mode.
///
/// Order: write temp, fsync temp, rename over `path`, fsync the parent
/// directory. On any failure the temp file is removed and `path` is untouched.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IoError> {
    let (mut file, tmp) = create_temp(path, mode)?;
    let result = (|| {
        fault::check()
            .and_then(|()| file.write_all(bytes))
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(parent_or_dot(path))
}

/// The parent of `path`, or `.` for a bare file name.
pub fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Create `dir` and any missing parents, fsyncing each newly created level's
/// parent so the new directory entries survive a crash.
pub fn create_dir_all_durable(dir: &Path) -> Result<(), IoError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent_or_dot(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(IoError::new("create directory", dir, e)),
    }
}

/// Create `bytes` at `path` only if nothing is there, crash-safely: a temp
/// file is written and fsynced, then hard-linked to `path` (which fails
/// rather than replace anything), then removed, and the directory fsynced.
/// Returns `Ok(false)` when `path` already existed.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, IoError> {
    let (mut file, tmp) = create_temp(path, mode)?;
    let linked = (|| {
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(file);
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(IoError::new("link into place", path, e)),
        }
    })();
    let removed = fs::remove_file(&tmp);
    let linked = linked?;
    removed.map_err(io_err("remove temp file", &tmp))?;
    if linked {
        sync_dir(parent_or_dot(path))?;
    }
    Ok(linked)
}

/// The first durability point of a batch of files staged under temp names:
/// their data, by one filesystem-wide flush ([`sync_filesystem`]) or, where
/// there is none, an fsync of each temp. Returns whether it was the
/// filesystem-wide flush (which also covers any other file staged on that
/// filesystem before the call).
///
/// With [`flush_dirs`] this is the "temp, flush, rename, flush" discipline
/// the object store, the raw-bytes writer and ref writing share; see
/// [`publish_staged`] for the whole sequence.
pub fn flush_files<'a>(
    root: &Path,
    temps: impl IntoIterator<Item = &'a Path>,
) -> Result<bool, IoError> {
    if sync_filesystem(root)? {
        return Ok(true);
    }
    for tmp in temps {
        File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("fsync", tmp))?;
    }
    Ok(false)
}

/// The second durability point of a batch: the directory entries its
/// renames (or creations) made, by one filesystem-wide flush or, where there
/// is none, an fsync of each directory.
pub fn flush_dirs<'a>(
    root: &Path,
    dirs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), IoError> {
    if sync_filesystem(root)? {
        return Ok(());
    }
    dirs.into_iter().try_for_each(sync_dir)
}

/// Publish files staged as `(temp, final path)` pairs on the filesystem of
/// `root`: make their data durable ([`flush_files`]), rename each into
/// place, then make the renames durable ([`flush_dirs`]). Stops at the
/// first failure; the caller removes the temps that are left.
pub fn publish_staged(root: &Path, staged: &[(PathBuf, PathBuf)]) -> Result<(), IoError> {
    if staged.is_empty() {
        return Ok(());
    }
    flush_files(root, staged.iter().map(|(tmp, _)| tmp.as_path()))?;
    let mut dirs = std::collections::BTreeSet::new();
    for (tmp, path) in staged {
        fs::rename(tmp, path).map_err(io_err("rename into place", path))?;
        dirs.insert(parent_or_dot(path));
    }
    flush_dirs(root, dirs)
}

/// Items below this many are handled on the calling thread by [`spread`].
const SPREAD_AT_LEAST: usize = 256;

/// Run `f` on every item, spread over the current rayon pool when called
/// from one of its threads and there are enough items; otherwise in order
/// on this thread (so it never starts rayon's global pool, and a run with
/// `--jobs 1` stays on one thread). Stops at the first error (others may
/// already have run); the caller cleans up after every item either way.
pub fn spread<T: Sync, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), E> + Sync + Send,
) -> Result<(), E> {
    use rayon::prelude::*;
    if items.len() >= SPREAD_AT_LEAST
        && rayon::current_num_threads() >= 2
        && rayon::current_thread_index().is_some()
    {
        items
            .par_iter()
            .with_min_len(SPREAD_AT_LEAST / 2)
            .try_for_each(f)
    } else {
        items.iter().try_for_each(f)
    }
}

/// Make everything written to the filesystem holding `path` durable: every
/// dirty file's data and every directory entry (Linux `syncfs`, one call
/// whatever the number of files; it reports writeback errors since 5.8).
///
/// Returns `Ok(false)` on platforms without such a call; the caller then
/// flushes its files and directories one by one.
pub fn sync_filesystem(path: &Path) -> Result<bool, IoError> {
    #[cfg(target_os = "linux")]
    {
        let dir = File::open(path).map_err(io_err("open", path))?;
        rustix::fs::syncfs(&dir).map_err(|e| IoError::new("syncfs", path, e.into()))?;
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Ok(false)
    }
}

/// Injected write failures for the fault tests, compiled in only with the
/// `test-hooks` feature (elsewhere [`fault::check`] is always `Ok` and
/// [`fault::phase`] does nothing).
///
/// A driver marks each phase of its write order with [`fault::phase`]; when
/// the environment variable `MKIT_BRIDGE_FAIL_AT` names that phase, every
/// write that calls [`fault::check`] while the phase's guard lives fails as a
/// full disk would (`ENOSPC`), through the writer's own error path, so the
/// error names the writer's action and path. The write points are the object
/// store's staging, the raw-bytes writer, map appends, ref writes, atomic
/// file replacement (ref state, stamps) and the export pack.
pub mod fault {
    /// The environment variable naming the phase whose writes fail.
    pub const ENV: &str = "MKIT_BRIDGE_FAIL_AT";

    #[cfg(feature = "test-hooks")]
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// While alive, the writes of one phase fail when the fault names it.
    #[derive(Debug)]
    #[must_use = "the phase ends when the guard is dropped"]
    pub struct Phase {
        #[cfg(feature = "test-hooks")]
        armed: bool,
    }

    /// Enter phase `name`: arm the fault when `MKIT_BRIDGE_FAIL_AT` names it.
    #[inline]
    pub fn phase(name: &str) -> Phase {
        #[cfg(feature = "test-hooks")]
        {
            let armed = std::env::var(ENV).is_ok_and(|v| v == name);
            if armed {
                ARMED.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Phase { armed }
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = name;
            Phase {}
        }
    }

    #[cfg(feature = "test-hooks")]
    impl Drop for Phase {
        fn drop(&mut self) {
            if self.armed {
                ARMED.store(false, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// The injected failure (`ENOSPC`) while an armed phase lives; `Ok`
    /// otherwise, and always without the `test-hooks` feature.
    #[inline]
    pub fn check() -> std::io::Result<()> {
        #[cfg(feature = "test-hooks")]
        if ARMED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from(rustix::io::Errno::NOSPC));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threads that ran `spread` over `n` items, and its result when
    /// item `fail_at` fails.
    fn spread_threads(n: usize, fail_at: Option<usize>) -> (usize, Result<(), usize>) {
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let items: Vec<usize> = (0..n).collect();
        let result = spread(&items, |&i| {
            seen.lock().unwrap().insert(std::thread::current().id());
            // Slow enough that a second thread gets to steal work.
            std::thread::sleep(std::time::Duration::from_micros(50));
            if Some(i) == fail_at { Err(i) } else { Ok(()) }
        });
        (seen.into_inner().unwrap().len(), result)
    }

    #[test]
    fn spread_uses_the_callers_pool_and_never_another() {
        // Outside any pool: this thread alone, even with many items.
        assert_eq!(spread_threads(1000, None), (1, Ok(())));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(two.install(|| spread_threads(1000, None)), (2, Ok(())));
        // Few items, or a pool of one: on the calling thread.
        assert_eq!(two.install(|| spread_threads(10, None)).0, 1);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one.install(|| spread_threads(1000, None)).0, 1);
        // An error comes back, from the pool as from this thread.
        assert_eq!(two.install(|| spread_threads(1000, Some(700))).1, Err(700));
        assert_eq!(spread_threads(1000, Some(3)).1, Err(3));
    }

    #[test]
    fn publish_staged_renames_every_temp_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut staged = Vec::new();
        for (i, sub) in ["a", "b", "a"].iter().enumerate() {
            let d = dir.path().join(sub);
            fs::create_dir_all(&d).unwrap();
            let path = d.join(format!("f{i}"));
            let (mut f, tmp) = create_temp(&path, 0o644).unwrap();
            f.write_all(format!("body {i}").as_bytes()).unwrap();
            staged.push((tmp, path));
        }
        assert!(flush_files(dir.path(), staged.iter().map(|(t, _)| t.as_path())).is_ok());
        publish_staged(dir.path(), &staged).unwrap();
        for (i, (tmp, path)) in staged.iter().enumerate() {
            assert!(!tmp.exists());
            assert_eq!(fs::read(path).unwrap(), format!("body {i}").as_bytes());
        }
        publish_staged(dir.path(), &[]).unwrap();
        // A temp that vanished: the rename's failure names the final path.
        let gone = vec![(dir.path().join(".x.tmp.1.1"), dir.path().join("x"))];
        let err = publish_staged(dir.path(), &gone).unwrap_err();
        assert_eq!(err.action, "rename into place");
        assert_eq!(err.path, dir.path().join("x"));
    }

    #[test]
    fn nofollow_refuses_a_symlink_with_eloop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = OpenOptions::new()
            .read(true)
            .custom_flags(oflags::NOFOLLOW | oflags::NONBLOCK)
            .open(&link)
            .unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
        let plain = OpenOptions::new()
            .read(true)
            .custom_flags(oflags::NOFOLLOW)
            .open(&target);
        assert!(plain.is_ok());
        assert!(!is_symlink_refusal(&io::Error::from(
            io::ErrorKind::NotFound
        )));
    }

    #[test]
    fn write_all_parts_writes_the_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut f = File::create(&p).unwrap();
        let big = vec![7u8; 300_000];
        write_all_parts(&mut f, &[b"head ", b"", &big, b" tail"]).unwrap();
        drop(f);
        let mut want = b"head ".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b" tail");
        assert_eq!(fs::read(&p).unwrap(), want);
    }

    #[test]
    fn fan_out_knows_which_directories_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("objects");
        let fan = FanOut::default();
        // The root is missing: it is made, and the directory not claimed.
        assert!(!fan.ensure(0x00, &root.join("00")).unwrap());
        assert!(root.join("00").is_dir());
        assert!(fan.ensure(0xab, &root.join("ab")).unwrap());
        assert!(fan.ensure(0xab, &root.join("ab")).unwrap(), "remembered");
        fs::create_dir(root.join("cd")).unwrap();
        assert!(!fan.ensure(0xcd, &root.join("cd")).unwrap());
        // A fresh writer sees every one of them as already there.
        let again = FanOut::default();
        assert!(!again.ensure(0xab, &root.join("ab")).unwrap());
        // A path that cannot be a directory is an error, not a panic.
        fs::write(root.join("ef"), b"").unwrap();
        assert!(
            FanOut::default()
                .ensure(0xef, &root.join("ef").join("x"))
                .is_err()
        );
    }

    #[test]
    fn write_atomic_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"old contents\n").unwrap();
        write_atomic(&p, b"new\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[test]
    fn temp_names_are_hidden_and_unique() {
        let a = temp_path_for(Path::new("/x/refs/main"));
        let b = temp_path_for(Path::new("/x/refs/main"));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".main.tmp."), "{name}");
    }

    #[test]
    fn temp_names_carry_their_writer() {
        let t = temp_path_for(Path::new("/x/objects/ab/cdef"));
        assert_eq!(
            temp_writer_pid(t.file_name().unwrap()),
            Some(std::process::id())
        );
        let pid = |s: &str| temp_writer_pid(std::ffi::OsStr::new(s));
        assert_eq!(pid(".main.tmp.12.0"), Some(12));
        assert_eq!(pid(".a.tmp.b.tmp.7.3"), Some(7));
        for not_ours in [
            "main.tmp.12.0",
            ".main.tmp",
            ".main.tmp.12",
            ".tmp.12.0",
            "..tmp.12.0",
            ".main.tmp.012.0",
            ".main.tmp.12.01",
            ".main.tmp.-1.0",
            ".main.tmp.99999999999.0",
            ".main.tmp.12.0x",
            ".main.tmpx.12.0",
            "",
        ] {
            assert_eq!(pid(not_ours), None, "{not_ours}");
        }
        assert!(pid_is_alive(std::process::id()));
        assert!(pid_is_alive(1), "init runs, or cannot be signalled");
        assert!(pid_is_alive(u32::MAX), "untestable pids count as alive");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(!pid_is_alive(dead));
    }

    #[test]
    fn sweeping_a_directory_removes_only_what_is_picked() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a", "b", ".c"] {
            fs::write(dir.path().join(n), b"").unwrap();
        }
        fs::create_dir(dir.path().join("d")).unwrap();
        let n = sweep_dir(dir.path(), |n| n != "a");
        assert_eq!(n, 2);
        assert!(dir.path().join("a").exists() && dir.path().join("d").is_dir());
        assert_eq!(sweep_dir(&dir.path().join("missing"), |_| true), 0);
    }

    #[test]
    fn failure_names_action_and_path() {
        let err = write_atomic(Path::new("/nonexistent-dir-for-test/f"), b"x").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent-dir-for-test/"), "{msg}");
        assert!(msg.starts_with("cannot create temp file"), "{msg}");
    }

    #[test]
    fn new_file_write_does_not_replace_and_leaves_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        assert!(write_new(&p, b"one", 0o600).unwrap());
        assert!(!write_new(&p, b"two", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
