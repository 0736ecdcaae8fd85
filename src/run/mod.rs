//! Drivers: the code that owns files, threads and progress for a whole job.
//!
//! Translation rules elsewhere are pure; a driver reads inputs, calls them,
//! stages objects in a write batch, commits it, and only then moves refs.

pub mod checkout;
pub mod export;
pub mod format_patch;
pub mod fsck;
pub mod hooks;
pub mod import;
pub mod mirror;
pub mod progress;
pub mod pull;
pub mod snapshot;
pub mod status;
pub mod sweep;
pub mod verify;
