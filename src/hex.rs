//! Hex in and out: every id, key, signature and digest the bridge writes or
//! reads as text.
//!
//! One codec for all of them, on `faster-hex` (the SIMD hex crate gix itself
//! uses, so it costs no extra build). Output is always lowercase. Input comes
//! in two strictnesses: [`decode_lower`] refuses uppercase (ids on disk, in
//! refs and in git headers are lowercase, and the reference refuses the
//! rest), [`decode_any_case`] folds it (the one column the reference reads
//! either way: the BLAKE3 side of the sha1 map). `faster-hex` checks and
//! decodes case-insensitively, so the lowercase rule is one extra pass over
//! the input; the offset of the first bad byte is only computed on the error
//! path. Measured against the hand-written loops it replaced in
//! `spec/PERFORMANCE.md` ("Hex codec").

use crate::mkit::id::HexError;

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    faster_hex::hex_string(bytes)
}

/// Append the lowercase hex of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    // Only a too-short destination is refused, and it is exactly long enough.
    let written = faster_hex::hex_encode(bytes, &mut out[start..]);
    debug_assert!(written.is_ok());
}

/// Decode exactly `2 * out.len()` lowercase hex bytes into `out`.
///
/// [`HexError::Length`] for any other length; [`HexError::Digit`] names the
/// first byte outside `0-9a-f` (uppercase included).
pub fn decode_lower(s: &[u8], out: &mut [u8]) -> Result<(), HexError> {
    if s.len() != 2 * out.len() {
        return Err(HexError::Length(s.len()));
    }
    if !s.iter().any(u8::is_ascii_uppercase) && faster_hex::hex_decode(s, out).is_ok() {
        return Ok(());
    }
    Err(first_non_lower(s))
}

/// Bytes from lowercase hex of any even length; `None` for an odd length
/// or a byte outside `0-9a-f`.
pub fn decode_lower_vec(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; s.len() / 2];
    decode_lower(s, &mut out).ok()?;
    Some(out)
}

/// Decode exactly `2 * out.len()` hex bytes of either case into `out`;
/// `false` (with `out` unspecified) for any other length or a non-digit.
pub fn decode_any_case(s: &[u8], out: &mut [u8]) -> bool {
    s.len() == 2 * out.len() && faster_hex::hex_decode(s, out).is_ok()
}

/// True when every byte of `s` is a lowercase hex digit.
pub fn is_lower(s: &[u8]) -> bool {
    s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The error for `s`, which holds a byte outside `0-9a-f` (cold path).
#[cold]
fn first_non_lower(s: &[u8]) -> HexError {
    match s
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Some(offset) => HexError::Digit {
            offset,
            byte: s[offset],
        },
        // Not reached: faster-hex accepts exactly the digits of both cases.
        None => HexError::Length(s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_encode_lowercase() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(
            encode(b"\x01\x23\x45\x67\x89\xab\xcd\xef"),
            "0123456789abcdef"
        );
        let mut out = b"x:".to_vec();
        encode_into(&[0xde, 0xad, 0xbe, 0xef], &mut out);
        assert_eq!(out, b"x:deadbeef");
    }

    #[test]
    fn round_trips_every_length_and_byte() {
        // Lengths on both sides of the SIMD block sizes, every byte value.
        for len in [0usize, 1, 15, 16, 17, 20, 31, 32, 33, 64, 100] {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&data);
            assert_eq!(text.len(), 2 * len);
            let mut back = vec![0u8; len];
            decode_lower(text.as_bytes(), &mut back).unwrap();
            assert_eq!(back, data);
            let mut any = vec![0u8; len];
            assert!(decode_any_case(text.to_uppercase().as_bytes(), &mut any));
            assert_eq!(any, data);
        }
        let all: Vec<u8> = (0..=255u8).collect();
        let mut back = [0u8; 256];
        decode_lower(encode(&all).as_bytes(), &mut back).unwrap();
        assert_eq!(back.to_vec(), all);
    }

    #[test]
    fn the_first_bad_byte_is_named_and_uppercase_is_refused() {
        let mut out = [0u8; 20];
        let good = "0123456789abcdef0123456789abcdef01234567";
        assert!(decode_lower(good.as_bytes(), &mut out).is_ok());
        assert_eq!(
            decode_lower(&good.as_bytes()[..39], &mut out),
            Err(HexError::Length(39))
        );
        for (offset, byte) in [(0usize, b'A'), (7, b'g'), (39, b'F'), (20, b' ')] {
            let mut bad = good.as_bytes().to_vec();
            bad[offset] = byte;
            assert_eq!(
                decode_lower(&bad, &mut out),
                Err(HexError::Digit { offset, byte }),
                "{offset} {byte}"
            );
        }
        // Two bad bytes: the earlier one is reported, whatever their kinds.
        let mut bad = good.as_bytes().to_vec();
        bad[5] = b'z';
        bad[30] = b'A';
        assert_eq!(
            decode_lower(&bad, &mut out),
            Err(HexError::Digit {
                offset: 5,
                byte: b'z'
            })
        );
        assert!(!decode_any_case(b"0g", &mut [0u8; 1]));
        assert!(!decode_any_case(b"0", &mut [0u8; 1]));
        assert!(is_lower(b"09af") && !is_lower(b"09aF") && !is_lower(b"0x"));
    }
}
