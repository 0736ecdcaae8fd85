//! Test-only pause points and probes (`test-hooks` feature).
//!
//! [`pause_point`] lets a test stop a run at a chosen safe point and signal
//! it there, so the interrupt tests do not depend on timing: with
//! `MKIT_BRIDGE_PAUSE_AT=<point>` the run creates the file named by
//! `MKIT_BRIDGE_PAUSED` (when set) on reaching `point`, then waits until the
//! interrupt flag is set (at most a minute) and goes on to its next check.
//! Without the feature it compiles to nothing.

use std::sync::atomic::AtomicBool;

/// Wait at `point` for the interrupt, when the test asked for it.
#[inline]
pub fn pause_point(point: &str, interrupt: &AtomicBool) {
    #[cfg(feature = "test-hooks")]
    if std::env::var("MKIT_BRIDGE_PAUSE_AT").is_ok_and(|v| v == point) {
        use std::sync::atomic::Ordering;
        if let Some(flag) = std::env::var_os("MKIT_BRIDGE_PAUSED") {
            let _ = std::fs::write(flag, point);
        }
        let start = std::time::Instant::now();
        while !interrupt.load(Ordering::Relaxed)
            && start.elapsed() < std::time::Duration::from_secs(60)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = (point, interrupt);
}

/// Tell a test what a run decided at `name` (test-hooks builds only): with
/// `MKIT_BRIDGE_PROBE_DIR` set, `value()` is written to `<dir>/<name>`.
/// Without the feature it compiles to nothing and `value` is never called.
#[inline]
pub fn probe(name: &str, value: impl FnOnce() -> String) {
    #[cfg(feature = "test-hooks")]
    if let Some(dir) = std::env::var_os("MKIT_BRIDGE_PROBE_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), value());
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = (name, value);
}
