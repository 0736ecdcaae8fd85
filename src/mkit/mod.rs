//! The mkit side of the bridge.
//!
//! Byte-exact objects ([`object`], [`encode`], [`decode`]), their ids ([`id`]),
//! signatures ([`sign`]), content-defined chunking ([`chunk`]), and the on-disk
//! repository: loose objects ([`store`]), refs and `HEAD` ([`refs`]), signing
//! keys ([`keys`]) and the repository marker ([`repo`]).

pub mod chunk;
pub mod content;
pub mod decode;
pub mod encode;
pub mod id;
pub mod index;
pub mod keys;
pub mod object;
pub mod refs;
pub mod repo;
pub mod sign;
pub mod store;

pub use id::Id;
