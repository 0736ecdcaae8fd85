//! SIGINT and SIGTERM for the long-running commands (import, fetch, pull,
//! export).
//!
//! The first signal sets [`INTERRUPT`], the flag the drivers check at their
//! safe points (between phases, between translation waves, inside gix's
//! fetch and pack indexing); the run stops at the next one, leaves a state
//! the next run finishes, and the command exits with [`super::exit::INTERRUPTED`].
//! A second signal ends the process at once with the same code (what a
//! kill would leave, the next run cleans up).

use std::sync::Once;
use std::sync::atomic::AtomicBool;

/// Set by the first SIGINT or SIGTERM.
static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// Install the handlers (once) and return the flag they set. Without
/// handlers (registration failed) the signals keep their default action,
/// which ends the process: the flag then simply never becomes true.
pub fn interrupt_flag() -> &'static AtomicBool {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The shutdown hook must come first: it exits only when the flag
            // is already set, i.e. on the second signal.
            let _ = signal_hook::flag::register_conditional_shutdown(
                signal,
                i32::from(super::exit::INTERRUPTED),
                &INTERRUPT,
            );
            let _ = signal_hook::flag::register(signal, &INTERRUPT);
        }
    });
    &INTERRUPT
}

/// Whether a signal arrived.
pub fn interrupted() -> bool {
    INTERRUPT.load(std::sync::atomic::Ordering::Relaxed)
}
