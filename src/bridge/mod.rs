//! The translation rules between git and mkit.
//!
//! Pure functions from one side's bytes to the other side's values, with
//! every case the mapping will not carry expressed as a typed refusal. The
//! import direction lives in [`import`] (SPEC-GIT-IMPORT §3) and its refusals
//! in [`refusal`]; drivers in `run/` own the repositories, the store, the
//! threads and the progress, and call these functions object by object.

pub mod import;
pub mod refusal;

pub use refusal::{Refusal, Scope, TagNameRule};
