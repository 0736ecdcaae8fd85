//! The translation rules between git and mkit.
//!
//! Pure functions from one side's bytes to the other side's values, with
//! every case the mapping will not carry expressed as a typed refusal. The
//! import direction lives in [`import`] (SPEC-GIT-IMPORT §3) and its refusals
//! in [`refusal`], grouped by root cause for the refusal report in [`cause`];
//! drivers in `run/` own the repositories, the store, the
//! threads and the progress, and call these functions object by object. The
//! export direction (SPEC-GIT-BRIDGE) is [`export`], its fail-closed inverse
//! [`reconstruct`], and shallow and deep checking of exported history [`verify`].
//! [`plan`] decides, as data, what a push does to each ref.

pub mod cause;
pub mod export;
pub mod import;
pub mod mbox;
pub mod patch;
pub mod plan;
pub mod reconstruct;
pub mod refusal;
pub mod verify;

pub use refusal::{Refusal, Scope, TagNameRule};
