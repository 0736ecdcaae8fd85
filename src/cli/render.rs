//! Rendering shared by the commands: JSON lines and the progress bar.

use indicatif::{ProgressBar, ProgressStyle};

use mkit_bridge::run::progress::Progress;

/// Write `value` as one line of JSON.
pub fn json_line(
    out: &mut impl std::io::Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)
}

/// Progress on stderr when it is a terminal; silent otherwise: one bar per
/// phase with its ETA, and the content rate in MB/s while content is read. A
/// phase announced with no total (a walk) grows its length as work arrives.
pub struct Bar {
    bar: Option<ProgressBar>,
    bytes: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    open_ended: std::sync::atomic::AtomicBool,
}

impl Bar {
    /// A bar on stderr when `show`, else nothing.
    pub fn new(show: bool) -> Bar {
        Bar {
            bar: show.then(|| {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {pos}/{len} (eta {eta}) {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }),
            bytes: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
            open_ended: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        if let Some(b) = &self.bar {
            b.set_prefix(name);
            b.set_message("");
            b.set_length(total);
            b.set_position(0);
            b.reset_eta();
        }
        self.open_ended
            .store(total == 0, std::sync::atomic::Ordering::Relaxed);
    }

    fn advance(&self, n: u64, bytes: u64) {
        let Some(b) = &self.bar else { return };
        if n > 0 {
            if self.open_ended.load(std::sync::atomic::Ordering::Relaxed) {
                b.inc_length(n);
            }
            b.inc(n);
        }
        if bytes > 0 {
            let total = self
                .bytes
                .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed)
                + bytes;
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!("{:.1} MB/s", total as f64 / secs / 1e6));
        }
    }
}
