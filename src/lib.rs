//! mkit-bridge: move history between git and mkit.
//!
//! The crate is laid out by job (see `spec/ARCHITECTURE.md`):
//! - [`mkit`]: the mkit side — objects, ids, signing, chunking, the store, refs and keys;
//! - [`git`]: the git side — object ids and framing, tolerant parsers, upstream
//!   identity, and the gix-fetched staging mirror;
//! - [`bridge`]: the translation rules between the two (import today);
//! - [`state`]: the per-remote state directory `.mkit/git/<remote>/`;
//! - [`hex`]: the one hex codec for ids, keys and digests;
//! - [`dag`]: the levels (translation waves) of a DAG;
//! - [`text`]: how raw bytes are shown in messages;
//! - [`attest`]: DSSE/in-toto attestations (git-import/v1, git-bridge/v1), as 0.5.0 writes them;
//! - [`run`]: drivers that own I/O for a whole job.
//!
//! Library code never prints to stdout and never panics on input: every
//! failure is a typed error that names the object, ref or path involved.

pub mod attest;
pub mod bridge;
pub mod dag;
pub mod durable;
pub mod git;
pub mod hex;
pub mod mkit;
pub mod run;
pub mod state;
pub mod text;
