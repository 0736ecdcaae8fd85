//! Progress reporting for long runs.
//!
//! Drivers report through this trait and never print; the CLI renders it
//! (a progress bar on a terminal, nothing otherwise).

/// Progress callbacks for a long run.
pub trait Progress: Sync {
    /// A phase starts with `total` units of work (objects).
    fn phase(&self, name: &'static str, total: u64);
    /// `n` units of work done, `bytes` bytes of content read.
    fn advance(&self, n: u64, bytes: u64);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
}
