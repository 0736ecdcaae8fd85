//! `refusals-cache`: the refusals of the last import or fetch, kept so that a
//! fetch need not walk a refused ref's history again while its tip is
//! unchanged (the body's meaning is the import driver's,
//! `run::import::cache`; see `spec/STATE.md`).
//!
//! This layer only keeps the bytes whole: the file is
//!
//! ```text
//! mkit-bridge refusals cache v1 <64 hex BLAKE3 of the body>\n
//! <body>
//! ```
//!
//! replaced whole (temp, fsync, rename, directory fsync). A file whose first
//! line is not that header, or whose body does not hash to it, reads as
//! [`CacheFile::Damaged`]: a cache is rebuilt, never trusted, when it is not
//! exactly what a run wrote.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::{create_dir_all_durable, io_err, write_atomic};

use super::Result;

/// The file's name in the state directory.
pub const REFUSAL_CACHE_FILE: &str = "refusals-cache";

/// The header line's fixed part, before the body's digest.
const HEADER: &str = "mkit-bridge refusals cache v1 ";

/// Where the cache lives.
pub fn refusal_cache_path(state: &Path) -> PathBuf {
    state.join(REFUSAL_CACHE_FILE)
}

/// What the cache file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheFile {
    /// No file.
    Missing,
    /// A file that is not whole: bad header, or a body that does not match
    /// its digest. Says what is wrong.
    Damaged(&'static str),
    /// The body, checked against its digest.
    Body(Vec<u8>),
}

/// Read the cache. Only a failure to read an existing file is an error.
pub fn load_refusal_cache(state: &Path) -> Result<CacheFile> {
    let path = refusal_cache_path(state);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CacheFile::Missing),
        Err(e) => return Err(io_err("read", &path)(e).into()),
    };
    Ok(check(bytes))
}

/// Split and check a file's bytes.
fn check(mut bytes: Vec<u8>) -> CacheFile {
    let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
        return CacheFile::Damaged("no header line");
    };
    let Some(digest) = bytes[..nl].strip_prefix(HEADER.as_bytes()) else {
        return CacheFile::Damaged("not a refusals cache v1 header");
    };
    let mut want = [0u8; 32];
    if crate::hex::decode_lower(digest, &mut want).is_err() {
        return CacheFile::Damaged("bad digest in the header");
    }
    let body = bytes.split_off(nl + 1);
    if *blake3::hash(&body).as_bytes() != want {
        return CacheFile::Damaged("the body does not match its digest");
    }
    CacheFile::Body(body)
}

/// Durably replace the cache with `body`.
pub fn store_refusal_cache(state: &Path, body: &[u8]) -> Result<()> {
    let digest = blake3::hash(body);
    let mut bytes = Vec::with_capacity(HEADER.len() + 65 + body.len());
    bytes.extend_from_slice(HEADER.as_bytes());
    crate::hex::encode_into(digest.as_bytes(), &mut bytes);
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    create_dir_all_durable(state)?;
    write_atomic(&refusal_cache_path(state), &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_any_damage_as_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("up");
        assert_eq!(load_refusal_cache(&state).unwrap(), CacheFile::Missing);
        store_refusal_cache(&state, b"{\"a\":1}\n").unwrap();
        assert_eq!(
            load_refusal_cache(&state).unwrap(),
            CacheFile::Body(b"{\"a\":1}\n".to_vec())
        );
        let good = fs::read(refusal_cache_path(&state)).unwrap();
        assert!(good.starts_with(HEADER.as_bytes()));
        // Any flipped byte, a truncation, or a foreign file is damage.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(matches!(check(bad), CacheFile::Damaged(_)), "byte {i}");
        }
        for cut in 0..good.len() {
            assert!(
                matches!(check(good[..cut].to_vec()), CacheFile::Damaged(_)),
                "cut at {cut}"
            );
        }
        assert!(matches!(check(b"".to_vec()), CacheFile::Damaged(_)));
    }
}
