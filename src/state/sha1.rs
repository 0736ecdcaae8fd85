//! Git object ids (SHA-1) as the state directory stores them.
//!
//! The state files name git objects by 40 lowercase hex digits. This module
//! holds the 20-byte [`Sha1`] value type with its hex parse and format and
//! nothing else: it computes no digests. It is self-contained so it can later
//! move to the git side of the crate unchanged.

use std::fmt;

use crate::mkit::id::{HexError, decode_lower_hex};

/// Length of a git SHA-1 in bytes.
pub const SHA1_LEN: usize = 20;
/// Length of a git SHA-1 in lowercase hex.
pub const SHA1_HEX_LEN: usize = 40;

/// A 20-byte git object id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha1(pub [u8; SHA1_LEN]);

/// Why a string is not a git object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Sha1HexError {
    /// The string is not exactly 40 characters long.
    #[error("a git object id is 40 hex characters, got {0}")]
    Length(usize),
    /// A character outside `0-9a-f` (uppercase is refused, as git writes lowercase).
    #[error("a git object id is lowercase hex; byte {byte:#04x} at offset {offset} is not")]
    Digit {
        /// Offset of the bad character.
        offset: usize,
        /// The bad byte.
        byte: u8,
    },
}

impl From<HexError> for Sha1HexError {
    fn from(e: HexError) -> Self {
        match e {
            HexError::Length(n) => Sha1HexError::Length(n),
            HexError::Digit { offset, byte } => Sha1HexError::Digit { offset, byte },
        }
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl Sha1 {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SHA1_LEN] {
        &self.0
    }

    /// Lowercase hex, 40 characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(SHA1_HEX_LEN);
        for b in self.0 {
            out.push(HEX_DIGITS[(b >> 4) as usize] as char);
            out.push(HEX_DIGITS[(b & 0x0f) as usize] as char);
        }
        out
    }

    /// Append the 40 lowercase hex digits to `out`.
    pub fn write_hex(&self, out: &mut Vec<u8>) {
        for b in self.0 {
            out.push(HEX_DIGITS[(b >> 4) as usize]);
            out.push(HEX_DIGITS[(b & 0x0f) as usize]);
        }
    }

    /// Parse 40 lowercase hex characters.
    pub fn from_hex(s: &str) -> Result<Sha1, Sha1HexError> {
        Self::from_hex_bytes(s.as_bytes())
    }

    /// Parse 40 lowercase hex bytes.
    pub fn from_hex_bytes(s: &[u8]) -> Result<Sha1, Sha1HexError> {
        let mut out = [0u8; SHA1_LEN];
        decode_lower_hex(s, &mut out)?;
        Ok(Sha1(out))
    }
}

impl fmt::Display for Sha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1({})", self.to_hex())
    }
}

impl From<[u8; SHA1_LEN]> for Sha1 {
    fn from(b: [u8; SHA1_LEN]) -> Self {
        Sha1(b)
    }
}

impl std::str::FromStr for Sha1 {
    type Err = Sha1HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sha1::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_uppercase_and_bad_length() {
        let s = Sha1([0xab; 20]);
        let hex = s.to_hex();
        assert_eq!(hex, "ab".repeat(20));
        assert_eq!(Sha1::from_hex(&hex).unwrap(), s);
        assert_eq!(
            Sha1::from_hex(&"AB".repeat(20)),
            Err(Sha1HexError::Digit {
                offset: 0,
                byte: b'A'
            })
        );
        assert_eq!(Sha1::from_hex("abc"), Err(Sha1HexError::Length(3)));
        let mut buf = Vec::new();
        s.write_hex(&mut buf);
        assert_eq!(buf, hex.as_bytes());
    }
}
