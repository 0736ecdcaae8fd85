//! Git object ids as the state directory stores them.
//!
//! The [`Sha1`] type now lives on the git side ([`crate::git::sha1`]); the
//! state files keep using it through this re-export, so `state::sha1::Sha1`
//! and `git::Sha1` are one type.

pub use crate::git::sha1::*;
