//! The git side of the bridge.
//!
//! Git object ids, kinds and the `"<kind> <len>\0"` frame ([`sha1`]), tolerant
//! parsers for commit, tag and tree bodies ([`parse`]), and upstream locations
//! with their canonical identity ([`remote`]). Everything here is pure except
//! the one symlink-resolving step of a local path's identity; reading objects
//! out of a repository belongs to the driver that owns the gix handles. The
//! export direction writes tree, commit and tag bodies the way git does with
//! [`encode`].

pub mod encode;
pub mod parse;
pub mod remote;
pub mod sha1;
pub mod staging;

pub use sha1::{ObjectKind, Sha1};
