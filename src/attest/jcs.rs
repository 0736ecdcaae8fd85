//! The one piece of RFC 8785 (JCS) the attestations need beyond fixed
//! keys: writing a JSON string.
//!
//! JCS strings use the short escapes `\" \\ \b \f \n \r \t`, `\u00xx` with
//! lowercase hex for the other control characters, and every other
//! character verbatim (no `\/`, no escaping of non-ASCII). Keys are fixed
//! ASCII literals in sorted order, written by the callers, and the only
//! numbers are the literal `1`s of the predicates, so no general encoder is
//! needed.

use std::fmt::Write as _;

/// Append `s` to `out` as a JCS string, quotes included.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::write_string;

    fn enc(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn escapes_like_rfc_8785() {
        assert_eq!(enc("a/b"), "\"a/b\"");
        assert_eq!(enc("q\"b\\"), "\"q\\\"b\\\\\"");
        assert_eq!(enc("\u{8}\u{c}\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
        assert_eq!(enc("\u{0}\u{1f}\u{e}"), "\"\\u0000\\u001f\\u000e\"");
        assert_eq!(enc("\u{7f}é€"), "\"\u{7f}é€\"");
    }

    #[test]
    fn output_parses_back_to_the_input() {
        let samples = ["", "refs/tags/v1", "tab\there", "\u{1}\u{1f}\"\\", "ünï"];
        for s in samples {
            let back: String = serde_json::from_str(&enc(s)).unwrap();
            assert_eq!(back, s);
        }
    }
}
