//! Tolerant parsers for git commit, tag and tree bodies.
//!
//! Import reads whatever an upstream repository holds, so this is an
//! untrusted-input boundary (SPEC-GIT-IMPORT §2): the parsers accept
//! everything git accepts — continuation headers such as `gpgsig` and
//! `mergetag`, unknown headers, `encoding`, historic person lines — and either
//! return it faithfully or fail with a typed [`ParseError`]. They never panic,
//! never allocate in proportion to anything but the input, and never alter a
//! byte: values borrow from the body, and only a folded (multi-line) header
//! value is copied, to drop its fold markers.
//!
//! Input is an object *body* (no `"<kind> <len>\0"` frame). The parsers stop
//! at structure; import policy (which modes are legal, negative timestamps,
//! identity bounds) belongs to [`crate::bridge::import`]. The accepted
//! language is exactly that of the reference mkit-git-bridge 0.5.0, so that an
//! object it refuses as unparsable we refuse too, and vice versa (see
//! `spec/IMPORT.md`).

use std::borrow::Cow;

use crate::git::sha1::{ObjectKind, SHA1_LEN, Sha1};

/// Largest header block (everything before the blank line) a commit or tag
/// may have; real `gpgsig`/`mergetag` blocks are a few KiB.
pub const MAX_HEADER_BLOCK: usize = 10 * 1024 * 1024;
/// Longest tree-entry mode string accepted (git writes 5 or 6 digits).
pub const MAX_MODE_LEN: usize = 7;

/// Why a git body could not be parsed. Offsets and line numbers point into
/// the body so a user can find the damage with `git cat-file -p`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No blank line separates the headers from the message.
    #[error("no blank line separates the headers from the message")]
    NoMessageSeparator,
    /// The header block is at least [`MAX_HEADER_BLOCK`] bytes.
    #[error("the header block is {0} bytes, over the 10 MiB cap")]
    HeaderBlockTooLarge(usize),
    /// The first header line is a continuation (starts with a space).
    #[error("header line {line} continues a header that does not exist")]
    LeadingContinuation {
        /// 1-based line number.
        line: usize,
    },
    /// A header line holds no space between key and value.
    #[error("header line {line} has no space between its key and value")]
    HeaderWithoutValue {
        /// 1-based line number.
        line: usize,
    },
    /// A required header is absent.
    #[error("the required `{0}` header is missing")]
    MissingHeader(&'static str),
    /// A header that must appear once appears again.
    #[error("the `{0}` header appears more than once")]
    DuplicateHeader(&'static str),
    /// An id-valued header does not hold 40 hex digits.
    #[error("the `{0}` header does not hold a 40-hex-digit object id")]
    BadId(&'static str),
    /// A person line from which no timestamp can be read.
    #[error("the `{0}` line has no parsable timestamp")]
    PersonTimestamp(&'static str),
    /// A tree entry without the space that ends its mode.
    #[error("tree entry at byte {offset} has no space after its mode")]
    TreeModeUnterminated {
        /// Offset of the entry in the tree body.
        offset: usize,
    },
    /// A tree entry whose mode is empty, too long, or not all digits.
    #[error("tree entry at byte {offset} has a mode that is not 1 to 7 digits")]
    TreeModeInvalid {
        /// Offset of the entry in the tree body.
        offset: usize,
    },
    /// A tree entry without the NUL that ends its name.
    #[error("tree entry at byte {offset} has no NUL after its name")]
    TreeNameUnterminated {
        /// Offset of the entry in the tree body.
        offset: usize,
    },
    /// A tree entry with an empty name.
    #[error("tree entry at byte {offset} has an empty name")]
    TreeNameEmpty {
        /// Offset of the entry in the tree body.
        offset: usize,
    },
    /// A tree entry cut off inside its 20-byte id.
    #[error("tree entry at byte {offset} ends inside its 20-byte id")]
    TreeIdTruncated {
        /// Offset of the entry in the tree body.
        offset: usize,
    },
}

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/// One header of a commit or tag, borrowed from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The key: the bytes before the first space of the first line.
    pub key: &'a [u8],
    /// The value as written: the rest of the first line and, for a folded
    /// header, every continuation line with its leading `"\n "`.
    pub raw_value: &'a [u8],
}

impl<'a> Header<'a> {
    /// True when the value spans continuation lines.
    pub fn is_folded(&self) -> bool {
        self.raw_value.contains(&b'\n')
    }

    /// The value with fold markers removed: continuation lines joined by
    /// `\n` without their leading space. Borrowed unless folded.
    pub fn value(&self) -> Cow<'a, [u8]> {
        if !self.is_folded() {
            return Cow::Borrowed(self.raw_value);
        }
        let mut out = Vec::with_capacity(self.raw_value.len());
        let mut after_newline = false;
        for &b in self.raw_value {
            // Every newline inside a value is followed by the fold space.
            if !(after_newline && b == b' ') {
                out.push(b);
            }
            after_newline = b == b'\n';
        }
        Cow::Owned(out)
    }
}

/// Split a commit or tag body at its first blank line into headers (folded
/// continuation lines attached to the header they continue) and the message,
/// which is returned verbatim.
pub fn split_headers(body: &[u8]) -> Result<(Vec<Header<'_>>, &[u8]), ParseError> {
    let sep = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(ParseError::NoMessageSeparator)?;
    if sep >= MAX_HEADER_BLOCK {
        return Err(ParseError::HeaderBlockTooLarge(sep));
    }
    let head = &body[..sep];
    let message = &body[sep + 2..];

    // (key start, key end, value start, value end) as offsets into `head`.
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut start = 0;
    let mut line_no = 0;
    loop {
        line_no += 1;
        let end = head[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| start + i);
        let line = &head[start..end];
        if line.first() == Some(&b' ') {
            let last = spans
                .last_mut()
                .ok_or(ParseError::LeadingContinuation { line: line_no })?;
            last.3 = end;
        } else {
            let space = line
                .iter()
                .position(|&b| b == b' ')
                .ok_or(ParseError::HeaderWithoutValue { line: line_no })?;
            spans.push((start, start + space, start + space + 1, end));
        }
        if end == head.len() {
            break;
        }
        start = end + 1;
    }
    let headers = spans
        .into_iter()
        .map(|(ks, ke, vs, ve)| Header {
            key: &head[ks..ke],
            raw_value: &head[vs..ve],
        })
        .collect();
    Ok((headers, message))
}

/// The value of the one header named `key`: missing or repeated is an error.
fn exactly_one<'a>(headers: &[Header<'a>], key: &'static str) -> Result<Cow<'a, [u8]>, ParseError> {
    let mut found = None;
    for h in headers {
        if h.key == key.as_bytes() {
            if found.is_some() {
                return Err(ParseError::DuplicateHeader(key));
            }
            found = Some(h.value());
        }
    }
    found.ok_or(ParseError::MissingHeader(key))
}

fn id_value(value: &[u8], field: &'static str) -> Result<Sha1, ParseError> {
    Sha1::from_hex_any_case(value).map_err(|_| ParseError::BadId(field))
}

// ---------------------------------------------------------------------------
// Person lines
// ---------------------------------------------------------------------------

/// A parsed `author`, `committer` or `tagger` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person<'a> {
    /// The identity slice of SPEC-GIT-IMPORT §3.2, verbatim: through the
    /// last `>` that has a `<` somewhere before it, or, on a line without
    /// one, everything before the trailing `" <secs> <tz>"`. May be empty
    /// (the importer refuses that, the parser does not).
    pub identity: Cow<'a, [u8]>,
    /// Seconds since the epoch as written; git timestamps are signed, and a
    /// negative one is the importer's refusal, not a parse error.
    pub timestamp: i64,
    /// The `[+-]HHMM` zone when one follows the timestamp.
    pub tz: Option<[u8; 5]>,
}

impl Person<'_> {
    /// Detach from the input.
    pub fn into_owned(self) -> Person<'static> {
        Person {
            identity: Cow::Owned(self.identity.into_owned()),
            timestamp: self.timestamp,
            tz: self.tz,
        }
    }
}

/// Parse a person value (the bytes after `author `, `committer ` or
/// `tagger `) by the byte-exact rules of SPEC-GIT-IMPORT §3.2 as 0.5.0
/// applies them:
///
/// - with a `>` preceded somewhere by `<`: the identity runs through the
///   last such `>`; the timestamp is the first space-separated token after
///   it (a bare decimal, optionally `-`), and the zone the next token when
///   it has the `[+-]DDDD` shape;
/// - otherwise (bracket-less): the value must end in `" <secs> [+-]DDDD"`,
///   which is stripped once; the identity is what precedes it.
pub fn parse_person(value: &[u8]) -> Result<Person<'_>, ParseError> {
    let no_time = || ParseError::PersonTimestamp("person");
    let last_gt = value.iter().rposition(|&b| b == b'>');
    if let Some(gt) = last_gt.filter(|&gt| value[..gt].contains(&b'<')) {
        let end = gt + 1;
        let mut tokens = value[end..].split(|&b| b == b' ').filter(|t| !t.is_empty());
        let timestamp = tokens.next().and_then(parse_seconds).ok_or_else(no_time)?;
        let tz = tokens.next().and_then(as_zone);
        return Ok(Person {
            identity: Cow::Borrowed(&value[..end]),
            timestamp,
            tz,
        });
    }
    // Bracket-less: `<identity> <secs> <zone>` read from the right.
    let last_space = value.iter().rposition(|&b| b == b' ').ok_or_else(no_time)?;
    let tz = as_zone(&value[last_space + 1..]).ok_or_else(no_time)?;
    let secs_space = value[..last_space]
        .iter()
        .rposition(|&b| b == b' ')
        .ok_or_else(no_time)?;
    let timestamp = parse_seconds(&value[secs_space + 1..last_space]).ok_or_else(no_time)?;
    Ok(Person {
        identity: Cow::Borrowed(&value[..secs_space]),
        timestamp,
        tz: Some(tz),
    })
}

/// A person from a header value that may have been unfolded into a copy.
fn person_of<'a>(value: Cow<'a, [u8]>, field: &'static str) -> Result<Person<'a>, ParseError> {
    let relabel = |e: ParseError| match e {
        ParseError::PersonTimestamp(_) => ParseError::PersonTimestamp(field),
        other => other,
    };
    match value {
        Cow::Borrowed(b) => parse_person(b).map_err(relabel),
        Cow::Owned(v) => parse_person(&v).map(Person::into_owned).map_err(relabel),
    }
}

/// `[+-]DDDD`, exactly five bytes.
fn as_zone(t: &[u8]) -> Option<[u8; 5]> {
    let zone: [u8; 5] = t.try_into().ok()?;
    (matches!(zone[0], b'+' | b'-') && zone[1..].iter().all(u8::is_ascii_digit)).then_some(zone)
}

/// A decimal i64 with an optional leading `-` (no `+`, no spaces), as the
/// reference reads timestamps; out-of-range values are not timestamps.
fn parse_seconds(t: &[u8]) -> Option<i64> {
    let (negative, digits) = match t.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Accumulate towards the sign so i64::MIN parses like the reference's `str::parse`.
    let mut n: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

// ---------------------------------------------------------------------------
// Commits
// ---------------------------------------------------------------------------

/// A parsed git commit body, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRef<'a> {
    /// The `tree` header (exactly one).
    pub tree: Sha1,
    /// Every `parent` header, in order, wherever it appears.
    pub parents: Vec<Sha1>,
    /// The `author` line (exactly one).
    pub author: Person<'a>,
    /// The `committer` line (exactly one).
    pub committer: Person<'a>,
    /// Every header in order, known and unknown (`gpgsig`, `mergetag`,
    /// `encoding`...), so nothing is lost.
    pub headers: Vec<Header<'a>>,
    /// Everything after the first blank line, verbatim, any encoding.
    pub message: &'a [u8],
}

impl<'a> CommitRef<'a> {
    /// Parse a commit body. Checks run in the reference's order: headers and
    /// separator, `tree`, each `parent`, `author`, `committer`.
    pub fn parse(body: &'a [u8]) -> Result<CommitRef<'a>, ParseError> {
        let (headers, message) = split_headers(body)?;
        let tree = id_value(&exactly_one(&headers, "tree")?, "tree")?;
        let parents = headers
            .iter()
            .filter(|h| h.key == b"parent")
            .map(|h| id_value(&h.value(), "parent"))
            .collect::<Result<Vec<_>, _>>()?;
        let author = person_of(exactly_one(&headers, "author")?, "author")?;
        let committer = person_of(exactly_one(&headers, "committer")?, "committer")?;
        Ok(CommitRef {
            tree,
            parents,
            author,
            committer,
            headers,
            message,
        })
    }

    /// The first header named `key`.
    pub fn header(&self, key: &[u8]) -> Option<&Header<'a>> {
        self.headers.iter().find(|h| h.key == key)
    }

    /// The `encoding` header's value, when present (import drops it; the
    /// message bytes are kept as written).
    pub fn encoding(&self) -> Option<Cow<'a, [u8]>> {
        self.header(b"encoding").map(Header::value)
    }

    /// True when the commit carries a `gpgsig` or `gpgsig-sha256` header.
    /// Informational: the signature survives only in the retained bytes.
    pub fn is_signed(&self) -> bool {
        self.headers
            .iter()
            .any(|h| h.key == b"gpgsig" || h.key == b"gpgsig-sha256")
    }
}

// ---------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------

/// Lines that open a signature block inside a tag message (git appends the
/// signature to the message rather than using a header).
const SIGNATURE_OPENERS: [&[u8]; 4] = [
    b"-----BEGIN PGP SIGNATURE-----",
    b"-----BEGIN PGP MESSAGE-----",
    b"-----BEGIN SSH SIGNATURE-----",
    b"-----BEGIN SIGNED MESSAGE-----",
];

/// A parsed git tag body, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef<'a> {
    /// The `object` header (exactly one): the tagged object.
    pub object: Sha1,
    /// The `type` header's value as written (exactly one); see
    /// [`TagRef::target_kind`].
    pub target_type: Cow<'a, [u8]>,
    /// The `tag` header's value (exactly one): the tag's own name.
    pub name: Cow<'a, [u8]>,
    /// The first `tagger` line; `None` for historic tagger-less tags.
    pub tagger: Option<Person<'a>>,
    /// Every header in order, known and unknown.
    pub headers: Vec<Header<'a>>,
    /// Everything after the first blank line, verbatim; a signed tag's
    /// signature block is part of it.
    pub message: &'a [u8],
}

impl<'a> TagRef<'a> {
    /// Parse a tag body. Checks run in the reference's order: headers and
    /// separator, `object`, `type`, `tag`, then the first `tagger` if any.
    pub fn parse(body: &'a [u8]) -> Result<TagRef<'a>, ParseError> {
        let (headers, message) = split_headers(body)?;
        let object = id_value(&exactly_one(&headers, "object")?, "object")?;
        let target_type = exactly_one(&headers, "type")?;
        let name = exactly_one(&headers, "tag")?;
        let tagger = match headers.iter().find(|h| h.key == b"tagger") {
            Some(h) => Some(person_of(h.value(), "tagger")?),
            None => None,
        };
        Ok(TagRef {
            object,
            target_type,
            name,
            tagger,
            headers,
            message,
        })
    }

    /// The declared target kind, when `type` names one of the four kinds.
    pub fn target_kind(&self) -> Option<ObjectKind> {
        ObjectKind::from_name(&self.target_type)
    }

    /// True when a line of the message opens a PGP, SSH or X.509 signature
    /// block. Informational: the signature survives only in the retained bytes.
    pub fn is_signed(&self) -> bool {
        self.message
            .split(|&b| b == b'\n')
            .any(|line| SIGNATURE_OPENERS.iter().any(|o| line.starts_with(o)))
    }
}

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

/// One entry of a git tree, borrowed from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntryRef<'a> {
    /// The mode digits exactly as written (`100644`, `40000`, `040000`...).
    pub mode: &'a [u8],
    /// The entry name (any bytes but NUL, non-empty).
    pub name: &'a [u8],
    /// The child object.
    pub id: Sha1,
}

/// Iterator over the entries of a tree body, in stored order. After the
/// first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct TreeEntries<'a> {
    body: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Iterate the entries of a tree body (`<mode> <name>\0<20-byte id>`...).
pub fn tree_entries(body: &[u8]) -> TreeEntries<'_> {
    TreeEntries {
        body,
        pos: 0,
        failed: false,
    }
}

/// Parse a whole tree body; fails on the first malformed entry.
pub fn parse_tree(body: &[u8]) -> Result<Vec<TreeEntryRef<'_>>, ParseError> {
    tree_entries(body).collect()
}

impl<'a> TreeEntries<'a> {
    fn entry_at(&self, offset: usize) -> Result<(TreeEntryRef<'a>, usize), ParseError> {
        let rest = &self.body[offset..];
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(ParseError::TreeModeUnterminated { offset })?;
        let mode = &rest[..space];
        if mode.is_empty() || mode.len() > MAX_MODE_LEN || !mode.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::TreeModeInvalid { offset });
        }
        let after_mode = &rest[space + 1..];
        let nul = after_mode
            .iter()
            .position(|&b| b == 0)
            .ok_or(ParseError::TreeNameUnterminated { offset })?;
        let name = &after_mode[..nul];
        if name.is_empty() {
            return Err(ParseError::TreeNameEmpty { offset });
        }
        let id_bytes: [u8; SHA1_LEN] = after_mode
            .get(nul + 1..nul + 1 + SHA1_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(ParseError::TreeIdTruncated { offset })?;
        let next = offset + space + 1 + nul + 1 + SHA1_LEN;
        Ok((
            TreeEntryRef {
                mode,
                name,
                id: Sha1(id_bytes),
            },
            next,
        ))
    }
}

impl<'a> Iterator for TreeEntries<'a> {
    type Item = Result<TreeEntryRef<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.body.len() {
            return None;
        }
        match self.entry_at(self.pos) {
            Ok((entry, next)) => {
                self.pos = next;
                Some(Ok(entry))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for TreeEntries<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    const P: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

    fn person(v: &[u8]) -> (Vec<u8>, i64, Option<[u8; 5]>) {
        let p = parse_person(v).unwrap();
        (p.identity.into_owned(), p.timestamp, p.tz)
    }

    #[test]
    fn person_slices_through_the_last_closing_bracket() {
        assert_eq!(
            person(b"Alice Example <alice@example.com> 1700000000 +0200"),
            (
                b"Alice Example <alice@example.com>".to_vec(),
                1_700_000_000,
                Some(*b"+0200")
            )
        );
        // Malformations stay in the slice byte for byte.
        assert_eq!(person(b"Weird  Name<a@b> 5 +0000").0, b"Weird  Name<a@b>");
        assert_eq!(person(b"A <b> C <d@e> 5 +0000").0, b"A <b> C <d@e>");
        assert_eq!(person(b"A <b> > 5 -0100").0, b"A <b> >");
        assert_eq!(person(b"<> 0 +0000").0, b"<>");
        // The zone is optional after brackets and only taken when well formed.
        assert_eq!(person(b"A <a> 7"), (b"A <a>".to_vec(), 7, None));
        assert_eq!(person(b"A <a> 7 +01"), (b"A <a>".to_vec(), 7, None));
        // Several spaces before the timestamp are skipped; no space is needed.
        assert_eq!(person(b"A <a>   9   +0000").1, 9);
        assert_eq!(person(b"A <a>9 +0000").1, 9);
        // Negative and extreme timestamps parse; policy is the importer's.
        assert_eq!(person(b"Old <o@s> -86400 +0000").1, -86_400);
        assert_eq!(person(b"M <m> -9223372036854775808 +0000").1, i64::MIN);
        assert_eq!(person(b"M <m> 9223372036854775807").1, i64::MAX);
    }

    #[test]
    fn person_without_a_timestamp_token_is_refused() {
        for bad in [
            &b"A <a>"[..],
            b"A <a>   ",
            b"A <a> +5 +0000",
            b"A <a> 12x +0000",
            b"A <a> - +0000",
            b"A <a> 9223372036854775808 +0000",
            b"A <a> \t5 +0000",
        ] {
            assert_eq!(
                parse_person(bad),
                Err(ParseError::PersonTimestamp("person")),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bracketless_person_strips_one_trailing_time_and_zone() {
        assert_eq!(
            person(b"Just A Name 1700000000 +0000"),
            (b"Just A Name".to_vec(), 1_700_000_000, Some(*b"+0000"))
        );
        // `<` without a later `>`, or `>` without an earlier `<`, is bracket-less.
        assert_eq!(person(b"A <open 5 +0000").0, b"A <open");
        assert_eq!(person(b"A> b< 5 +0000").0, b"A> b<");
        // Only one match is stripped, and a doubled space stays in the identity.
        assert_eq!(person(b"A 1 +0000 2 -0100").0, b"A 1 +0000");
        assert_eq!(person(b"A  3 +0000").0, b"A ");
        // The identity may come out empty; refusing that is the importer's job.
        assert_eq!(person(b" 3 +0000").0, b"");
        assert_eq!(person(b"N -3 +0000").1, -3);
        for bad in [
            &b"no timestamp here"[..],
            b"Name 5",
            b"Name 5 +000",
            b"Name 5 0000",
            b"5 +0000",
            b"Name x5 +0000",
            b"",
        ] {
            assert!(
                parse_person(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn lines(ls: &[&str]) -> Vec<u8> {
        ls.join("\n").into_bytes()
    }

    #[test]
    fn commit_with_gpgsig_mergetag_encoding_and_unknown_headers() {
        let body = lines(&[
            &format!("tree {T}"),
            &format!("parent {P}"),
            "author A <a@x> 1700000000 +0000",
            &format!("parent {}", P.to_uppercase()),
            "committer B <b@x> 1700000001 -0500",
            "encoding ISO-8859-1",
            "mergetag object 0000",
            " type commit",
            " ",
            " body",
            "gpgsig -----BEGIN SSH SIGNATURE-----",
            " U1NIU0lH",
            " -----END SSH SIGNATURE-----",
            "x-custom whatever you like",
            "",
            "msg body",
            "",
            "with blank line\n",
        ]);
        let c = CommitRef::parse(&body).unwrap();
        assert_eq!(c.tree.to_hex(), T);
        assert_eq!(c.parents.len(), 2, "parents are gathered wherever they are");
        assert!(c.parents.iter().all(|p| p.to_hex() == P));
        assert_eq!(c.author.identity.as_ref(), b"A <a@x>");
        assert_eq!(c.committer.timestamp, 1_700_000_001);
        assert_eq!(c.committer.tz, Some(*b"-0500"));
        assert_eq!(c.message, b"msg body\n\nwith blank line\n");
        assert!(c.is_signed());
        assert_eq!(c.encoding().as_deref(), Some(&b"ISO-8859-1"[..]));
        let mergetag = c.header(b"mergetag").unwrap();
        assert!(mergetag.is_folded());
        assert_eq!(mergetag.raw_value, b"object 0000\n type commit\n \n body");
        assert_eq!(
            mergetag.value().as_ref(),
            b"object 0000\ntype commit\n\nbody"
        );
        assert_eq!(
            c.header(b"x-custom").unwrap().value().as_ref(),
            b"whatever you like"
        );
        assert_eq!(c.headers.len(), 9);
    }

    #[test]
    fn commit_message_is_everything_after_the_first_blank_line() {
        let mut body =
            format!("tree {T}\nauthor A <a> 1 +0000\ncommitter A <a> 1 +0000\n\n").into_bytes();
        assert_eq!(CommitRef::parse(&body).unwrap().message, b"");
        body.extend_from_slice(b"\n\ncaf\xe9\n\n");
        assert_eq!(CommitRef::parse(&body).unwrap().message, b"\n\ncaf\xe9\n\n");
    }

    #[test]
    fn folded_person_line_is_read_unfolded() {
        let body = lines(&[
            &format!("tree {T}"),
            "author A",
            " <a@x> 5 +0000",
            "committer C <c> 6 +0000",
            "",
            "m",
        ]);
        let c = CommitRef::parse(&body).unwrap();
        assert_eq!(c.author.identity.as_ref(), b"A\n<a@x>");
        assert_eq!(c.author.timestamp, 5);
    }

    #[test]
    fn commit_structure_errors_are_typed() {
        let ok_people = "author A <a@x> 5 +0000\ncommitter A <a@x> 5 +0000";
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (
                format!("tree {T}\n{ok_people}\nno message").into_bytes(),
                ParseError::NoMessageSeparator,
            ),
            (
                format!("{ok_people}\n\nx").into_bytes(),
                ParseError::MissingHeader("tree"),
            ),
            (
                format!("tree {T}\ntree {T}\n{ok_people}\n\nx").into_bytes(),
                ParseError::DuplicateHeader("tree"),
            ),
            (
                format!("tree {}\n{ok_people}\n\nx", &T[..39]).into_bytes(),
                ParseError::BadId("tree"),
            ),
            (
                format!("tree {T}\nparent zz{}\n{ok_people}\n\nx", &P[2..]).into_bytes(),
                ParseError::BadId("parent"),
            ),
            (
                format!("tree {T}\ncommitter A <a@x> 5 +0000\n\nx").into_bytes(),
                ParseError::MissingHeader("author"),
            ),
            (
                format!("tree {T}\nauthor A <a@x>\ncommitter A <a@x> 5 +0000\n\nx").into_bytes(),
                ParseError::PersonTimestamp("author"),
            ),
            (
                format!("tree {T}\nauthor A <a@x> 5 +0000\ncommitter nobody\n\nx").into_bytes(),
                ParseError::PersonTimestamp("committer"),
            ),
            (
                format!(" lead\ntree {T}\n{ok_people}\n\nx").into_bytes(),
                ParseError::LeadingContinuation { line: 1 },
            ),
            (
                format!("tree {T}\nnospace\n{ok_people}\n\nx").into_bytes(),
                ParseError::HeaderWithoutValue { line: 2 },
            ),
            (
                b"\n\nx".to_vec(),
                ParseError::HeaderWithoutValue { line: 1 },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                CommitRef::parse(&body),
                Err(want),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn header_block_cap() {
        let mut body = b"x-pad ".to_vec();
        body.resize(MAX_HEADER_BLOCK, b'a');
        body.extend_from_slice(b"\n\nm");
        assert_eq!(
            split_headers(&body).unwrap_err(),
            ParseError::HeaderBlockTooLarge(MAX_HEADER_BLOCK)
        );
        body.drain(..1);
        assert!(split_headers(&body).is_ok());
    }

    #[test]
    fn tags_with_and_without_tagger_and_signature() {
        let body = format!(
            "object {P}\ntype commit\ntag v1.0.0\ntagger T <t@x> 5 +0000\n\nrelease\n\
             -----BEGIN PGP SIGNATURE-----\nABCD\n-----END PGP SIGNATURE-----\n"
        );
        let t = TagRef::parse(body.as_bytes()).unwrap();
        assert_eq!(t.object.to_hex(), P);
        assert_eq!(t.name.as_ref(), b"v1.0.0");
        assert_eq!(t.target_kind(), Some(ObjectKind::Commit));
        assert_eq!(t.tagger.as_ref().unwrap().identity.as_ref(), b"T <t@x>");
        assert!(t.is_signed());
        assert!(t.message.starts_with(b"release\n-----BEGIN PGP"));

        let body = format!("object {P}\ntype commit\ntag old\n\nancient\n");
        let t = TagRef::parse(body.as_bytes()).unwrap();
        assert!(t.tagger.is_none());
        assert!(!t.is_signed());

        // Unknown type values parse; the importer decides.
        let body = format!("object {P}\ntype note\ntag x\ntagger T <t> 1 +0000\n\n");
        assert_eq!(TagRef::parse(body.as_bytes()).unwrap().target_kind(), None);
        // An empty name parses too (`tag ` with nothing after the space).
        let body = format!("object {P}\ntype blob\ntag \n\n");
        assert_eq!(TagRef::parse(body.as_bytes()).unwrap().name.as_ref(), b"");
        // The first tagger wins; a later one is carried in `headers`.
        let body =
            format!("object {P}\ntype tree\ntag x\ntagger A <a> 1 +0000\ntagger B <b> 2 +0000\n\n");
        let t = TagRef::parse(body.as_bytes()).unwrap();
        assert_eq!(t.tagger.unwrap().timestamp, 1);
    }

    #[test]
    fn tag_structure_errors_are_typed() {
        let cases: Vec<(String, ParseError)> = vec![
            (
                "type commit\ntag x\n\n".into(),
                ParseError::MissingHeader("object"),
            ),
            (
                format!("object {P}\ntag x\n\n"),
                ParseError::MissingHeader("type"),
            ),
            (
                format!("object {P}\ntype commit\n\n"),
                ParseError::MissingHeader("tag"),
            ),
            (
                format!("object {P}\ntype commit\ntag a\ntag b\n\n"),
                ParseError::DuplicateHeader("tag"),
            ),
            (
                format!("object {P}\ntype commit\ntag a\ntagger nobody\n\n"),
                ParseError::PersonTimestamp("tagger"),
            ),
            (
                "object 1234\ntype commit\ntag a\n\n".into(),
                ParseError::BadId("object"),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(TagRef::parse(body.as_bytes()), Err(want), "{body}");
        }
    }

    fn tree_body(entries: &[(&[u8], &[u8], [u8; 20])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name, id) in entries {
            out.extend_from_slice(mode);
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(id);
        }
        out
    }

    #[test]
    fn tree_entries_parse_in_stored_order() {
        let body = tree_body(&[
            (b"100644", b"a.txt", [1; 20]),
            (b"040000", b"old dir", [2; 20]),
            (b"160000", b"sub", [3; 20]),
            (b"9999999", b"\xff\xfe", [4; 20]),
        ]);
        let entries = parse_tree(&body).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].mode, b"040000");
        assert_eq!(entries[1].name, b"old dir");
        assert_eq!(entries[2].id, Sha1([3; 20]));
        assert_eq!(entries[3].name, b"\xff\xfe");
        assert!(parse_tree(b"").unwrap().is_empty());
    }

    #[test]
    fn tree_structure_errors_are_typed_and_stop_iteration() {
        let good = tree_body(&[(b"100644", b"a", [1; 20])]);
        let at = good.len();
        let with = |tail: &[u8]| {
            let mut b = good.clone();
            b.extend_from_slice(tail);
            b
        };
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (
                with(b"100644"),
                ParseError::TreeModeUnterminated { offset: at },
            ),
            (with(b" a\0"), ParseError::TreeModeInvalid { offset: at }),
            (
                with(b"10064x a\0"),
                ParseError::TreeModeInvalid { offset: at },
            ),
            (
                with(b"10000000 a\0"),
                ParseError::TreeModeInvalid { offset: at },
            ),
            (
                with(b"100644 a"),
                ParseError::TreeNameUnterminated { offset: at },
            ),
            (with(b"100644 \0"), ParseError::TreeNameEmpty { offset: at }),
            (
                with(b"100644 b\0short"),
                ParseError::TreeIdTruncated { offset: at },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse_tree(&body), Err(want.clone()));
            let mut it = tree_entries(&body);
            assert!(it.next().unwrap().is_ok());
            assert_eq!(it.next(), Some(Err(want)));
            assert_eq!(it.next(), None);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_any_parser(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = CommitRef::parse(&body);
            let _ = TagRef::parse(&body);
            let _ = parse_tree(&body);
            let _ = parse_person(&body);
            let _ = split_headers(&body);
        }

        #[test]
        fn mutated_commits_never_panic(
            cut in 0usize..200,
            byte in any::<u8>(),
            at in 0usize..200,
        ) {
            let mut body = format!(
                "tree {T}\nparent {P}\nauthor A <a@x> 5 +0100\ncommitter B <b> 6 -0100\n\
                 gpgsig x\n y\n\nmsg\n"
            ).into_bytes();
            if at < body.len() {
                body[at] = byte;
            }
            body.truncate(cut.min(body.len()));
            let _ = CommitRef::parse(&body);
            let _ = TagRef::parse(&body);
            let _ = parse_tree(&body);
        }

        #[test]
        fn well_formed_person_lines_round_trip(
            name in "[A-Za-z .'-]{0,20}",
            email in "[a-z0-9@.+-]{0,20}",
            secs in any::<i64>(),
            zone in "[+-][0-9]{4}",
        ) {
            let line = format!("{name} <{email}> {secs} {zone}");
            let p = parse_person(line.as_bytes()).unwrap();
            let want = format!("{name} <{email}>");
            prop_assert_eq!(p.identity.as_ref(), want.as_bytes());
            prop_assert_eq!(p.timestamp, secs);
            prop_assert_eq!(p.tz.as_ref().map(|z| &z[..]), Some(zone.as_bytes()));
        }

        #[test]
        fn built_commits_parse_back(
            parents in proptest::collection::vec(any::<[u8; 20]>(), 0..5),
            message in proptest::collection::vec(any::<u8>(), 0..64),
            secs in 0i64..4_000_000_000,
        ) {
            let mut body = format!("tree {T}\n").into_bytes();
            for p in &parents {
                body.extend_from_slice(format!("parent {}\n", Sha1(*p)).as_bytes());
            }
            body.extend_from_slice(
                format!("author A <a> {secs} +0000\ncommitter C <c> {secs} +0000\n\n").as_bytes(),
            );
            body.extend_from_slice(&message);
            let c = CommitRef::parse(&body).unwrap();
            let got: Vec<[u8; 20]> = c.parents.iter().map(|p| p.0).collect();
            prop_assert_eq!(got, parents);
            prop_assert_eq!(c.message, &message[..]);
            prop_assert_eq!(c.committer.timestamp, secs);
        }
    }
}
