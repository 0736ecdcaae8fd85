//! mkit-bridge: move history between git and mkit.
//!
//! The crate is laid out by job (see `spec/ARCHITECTURE.md`):
//! - [`mkit`]: the mkit side — objects, ids, signing, chunking, the store, refs and keys;
//! - [`state`]: the per-remote state directory `.mkit/git/<remote>/`.
//!
//! Library code never prints to stdout and never panics on input: every
//! failure is a typed error that names the object, ref or path involved.

pub mod durable;
pub mod mkit;
pub mod run;
pub mod state;
