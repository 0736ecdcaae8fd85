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

/// A size a test may set (test-hooks builds only): the value of the
/// environment variable `name` when it is set and a number, else `default`.
/// Without the feature, always `default`.
pub fn tunable(name: &str, default: usize) -> usize {
    #[cfg(feature = "test-hooks")]
    if let Some(v) = std::env::var(name).ok().and_then(|v| v.parse().ok()) {
        return v;
    }
    let _ = name;
    default
}

/// Counts the process's threads while it lives, for a test (test-hooks
/// builds, with `MKIT_BRIDGE_PROBE_DIR` set; otherwise it is nothing): a
/// thread of its own lists `/proc/self/task` every 200 µs, and when the
/// probe is dropped it writes `<dir>/<name>`: the most threads seen at once
/// (itself not counted) on the first line, their names (`comm`) sorted on
/// the second, and every name seen in any sample on the third. A sample can miss a thread that lives less than the
/// interval; it never counts one that does not exist.
#[derive(Debug)]
pub struct ThreadProbe {
    #[cfg(feature = "test-hooks")]
    running: Option<(std::sync::Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl ThreadProbe {
    /// Start sampling, reporting under `name`.
    pub fn start(name: &'static str) -> ThreadProbe {
        #[cfg(feature = "test-hooks")]
        {
            let Some(dir) = std::env::var_os("MKIT_BRIDGE_PROBE_DIR") else {
                return ThreadProbe { running: None };
            };
            let stop = std::sync::Arc::new(AtomicBool::new(false));
            let flag = std::sync::Arc::clone(&stop);
            let sampler = std::thread::Builder::new()
                .name("thread-probe".to_owned())
                .spawn(move || sample_threads(&flag, &std::path::Path::new(&dir).join(name)));
            ThreadProbe {
                running: sampler.ok().map(|h| (stop, h)),
            }
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = name;
            ThreadProbe {}
        }
    }
}

impl Drop for ThreadProbe {
    fn drop(&mut self) {
        #[cfg(feature = "test-hooks")]
        if let Some((stop, handle)) = self.running.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// The sampler of [`ThreadProbe`].
#[cfg(feature = "test-hooks")]
fn sample_threads(stop: &AtomicBool, out: &std::path::Path) {
    let mut most: Vec<String> = Vec::new();
    let mut ever = std::collections::BTreeSet::new();
    loop {
        let done = stop.load(std::sync::atomic::Ordering::Relaxed);
        let names: Vec<String> = std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .map(|n| n.trim_end().to_owned())
            .filter(|n| n != "thread-probe")
            .collect();
        ever.extend(names.iter().cloned());
        if names.len() > most.len() {
            most = names;
        }
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    most.sort();
    let ever: Vec<String> = ever.into_iter().collect();
    let _ = std::fs::write(
        out,
        format!("{}\n{}\n{}\n", most.len(), most.join(" "), ever.join(" ")),
    );
}

/// How many things of one kind a run holds at once, for a test (counted in
/// test-hooks builds only; otherwise it and its [`Held`] are nothing):
/// [`Gauge::hold`] counts one more until its guard is dropped, and
/// [`Gauge::peak`] is the most held at once so far.
#[derive(Debug)]
pub struct Gauge {
    #[cfg(feature = "test-hooks")]
    now: std::sync::atomic::AtomicUsize,
    #[cfg(feature = "test-hooks")]
    peak: std::sync::atomic::AtomicUsize,
}

impl Default for Gauge {
    fn default() -> Self {
        Gauge::new()
    }
}

impl Gauge {
    /// A gauge at zero.
    pub const fn new() -> Gauge {
        Gauge {
            #[cfg(feature = "test-hooks")]
            now: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(feature = "test-hooks")]
            peak: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Count one more, until the guard is dropped.
    #[inline]
    pub fn hold(&'static self) -> Held {
        #[cfg(feature = "test-hooks")]
        {
            use std::sync::atomic::Ordering;
            let now = self.now.fetch_add(1, Ordering::Relaxed) + 1;
            self.peak.fetch_max(now, Ordering::Relaxed);
            Held { gauge: self }
        }
        #[cfg(not(feature = "test-hooks"))]
        Held {}
    }

    /// The most held at once so far (0 without the feature).
    pub fn peak(&self) -> usize {
        #[cfg(feature = "test-hooks")]
        return self.peak.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(feature = "test-hooks"))]
        0
    }
}

/// One thing counted by a [`Gauge`] while this lives.
#[derive(Debug)]
pub struct Held {
    #[cfg(feature = "test-hooks")]
    gauge: &'static Gauge,
}

impl Drop for Held {
    fn drop(&mut self) {
        #[cfg(feature = "test-hooks")]
        self.gauge
            .now
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
