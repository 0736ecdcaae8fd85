//! The git side of the bridge.
//!
//! Git object ids, kinds and the `"<kind> <len>\0"` frame ([`sha1`]), tolerant
//! parsers for commit, tag and tree bodies ([`parse`]), and upstream locations
//! with their canonical identity ([`remote`]) are pure, except the one
//! symlink-resolving step of a local path's identity. The export direction
//! writes tree, commit and tag bodies the way git does with [`encode`]. The
//! modules that do I/O are the staging mirror, fetched with gix
//! ([`staging`]), the one reader of git objects through gix ([`source`]),
//! and the `git push` / `ls-remote` command line that export drives, with
//! its leases ([`push`]), and its direct route to a local bare destination
//! ([`local`]).

pub mod encode;
pub mod local;
pub mod parse;
pub mod push;
pub mod remote;
pub mod sha1;
pub mod source;
pub mod staging;

pub use sha1::{ObjectKind, Sha1};
