//! How raw bytes are shown in messages.
//!
//! Names, header keys, modes and paths read from a repository are bytes, not
//! text: a message shows them in double quotes with every non-printable or
//! non-ASCII byte escaped (`\n`, `\x00`, `\xff`), so a message is always one
//! printable line whatever the input held.

/// `bytes` in double quotes, escaped as [`u8::escape_ascii`] does.
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_bytes_pass_and_the_rest_is_escaped() {
        assert_eq!(quoted(b"refs/heads/main"), "\"refs/heads/main\"");
        assert_eq!(quoted(b"a\nb\0\xff\"\\"), "\"a\\nb\\x00\\xff\\\"\\\\\"");
        assert_eq!(quoted(b""), "\"\"");
    }
}
