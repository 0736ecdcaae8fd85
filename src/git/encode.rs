//! Git object bodies, written the way git itself writes them.
//!
//! The export direction builds every git object it emits here: trees in git's
//! entry order (a directory sorts as its name followed by `/`), commits and
//! tags as a header block, a blank line and the message, and blobs verbatim.
//! A [`GitObject`] is a kind and a body; its id is the collision-detecting
//! SHA-1 of the framed bytes ([`crate::git::sha1::object_id`]).
//!
//! The encoder refuses what git cannot hold rather than writing it: an entry
//! name that is empty or holds NUL or `/`, two entries of one name, a header
//! key with a space, and a header value with a newline or NUL (the bridge
//! never writes continuation lines). No I/O.

use std::cmp::Ordering;

use crate::git::sha1::{CollisionDetected, ObjectKind, SHA1_LEN, Sha1, frame, object_id};
use crate::text::quoted;

/// The empty tree's id, `4b825dc6…`, which every git knows.
pub const EMPTY_TREE: Sha1 = Sha1([
    0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e, 0xb9, 0xa0, 0x60, 0xe5, 0x4b, 0xf8, 0xd6, 0x92, 0x88,
    0xfb, 0xee, 0x49, 0x04,
]);

/// An encoded git object: its kind and its body (the bytes after the
/// `"<kind> <len>\0"` frame header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitObject {
    /// What kind of object the body is.
    pub kind: ObjectKind,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl GitObject {
    /// A blob holding `data` verbatim.
    pub fn blob(data: Vec<u8>) -> GitObject {
        GitObject {
            kind: ObjectKind::Blob,
            body: data,
        }
    }

    /// The git id: collision-detecting SHA-1 over the framed bytes.
    pub fn id(&self) -> Result<Sha1, CollisionDetected> {
        object_id(self.kind, &self.body)
    }

    /// The framed bytes `"<kind> <len>\0" || body`, as a loose object holds
    /// them before compression.
    pub fn framed(&self) -> Vec<u8> {
        frame(self.kind, &self.body)
    }
}

/// Why a body could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A tree entry name git cannot hold (empty, or holding NUL or `/`).
    #[error(
        "tree entry name {} cannot be written to a git tree: it is empty or holds NUL or '/'",
        quoted(name)
    )]
    EntryName {
        /// The offending name.
        name: Vec<u8>,
    },
    /// Two entries of one tree share a name.
    #[error(
        "two tree entries are named {}; a git tree holds each name once",
        quoted(name)
    )]
    DuplicateEntry {
        /// The repeated name.
        name: Vec<u8>,
    },
    /// A header key that is empty or holds a space, newline or NUL.
    #[error("header key {} is empty or holds a space, newline or NUL", quoted(key))]
    HeaderKey {
        /// The offending key.
        key: Vec<u8>,
    },
    /// A header value holding a newline or NUL (no continuation lines are written).
    #[error("the value of header {} holds a newline or NUL", quoted(key))]
    HeaderValue {
        /// The header whose value is refused.
        key: Vec<u8>,
    },
}

/// A git tree-entry mode: the four the bridge writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitMode {
    /// `100644`, a regular file.
    File,
    /// `100755`, an executable file.
    Executable,
    /// `120000`, a symbolic link.
    Symlink,
    /// `40000`, a subdirectory (git writes no leading zero).
    Tree,
}

impl GitMode {
    /// The octal digits as git writes them in a tree.
    pub fn octal(self) -> &'static [u8] {
        match self {
            GitMode::File => b"100644",
            GitMode::Executable => b"100755",
            GitMode::Symlink => b"120000",
            GitMode::Tree => b"40000",
        }
    }

    /// The mode written exactly as `digits`; `None` for anything else
    /// (including git's historic spellings such as `040000` or `100664`,
    /// and `160000`, the submodule mode).
    pub fn from_octal(digits: &[u8]) -> Option<GitMode> {
        Some(match digits {
            b"100644" => GitMode::File,
            b"100755" => GitMode::Executable,
            b"120000" => GitMode::Symlink,
            b"40000" => GitMode::Tree,
            _ => return None,
        })
    }
}

/// One entry of a tree to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry<'a> {
    /// The entry's mode.
    pub mode: GitMode,
    /// The entry's name (one path component).
    pub name: &'a [u8],
    /// The id of the child object.
    pub id: Sha1,
}

/// Git's tree order: byte order of the sort key, where a directory's key is
/// its name followed by `/` and any other entry's key is its name.
pub fn git_order(a: &TreeEntry<'_>, b: &TreeEntry<'_>) -> Ordering {
    let key = |e: &TreeEntry<'_>| (e.mode == GitMode::Tree).then_some(b'/');
    // Compare the names as far as the shorter one goes; if one name is a
    // prefix of the other, the next key byte decides (the `/` of a
    // directory, or the longer name's next byte).
    let common = a.name.len().min(b.name.len());
    match a.name[..common].cmp(&b.name[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    let next_a = a.name.get(common).copied().or_else(|| key(a));
    let next_b = b.name.get(common).copied().or_else(|| key(b));
    match (next_a, next_b) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
        // The next bytes tie: only possible when one key continues past the
        // shorter name with '/' and the other name has '/' there, which the
        // name check refuses; fall back to full keys for a total order.
        _ => sort_key(a).cmp(&sort_key(b)),
    }
}

fn sort_key(e: &TreeEntry<'_>) -> Vec<u8> {
    let mut k = e.name.to_vec();
    if e.mode == GitMode::Tree {
        k.push(b'/');
    }
    k
}

/// A tree body with `entries` in git order (sorted here; the input order does
/// not matter). Refuses a name that is empty or holds NUL or `/`, and a name
/// used twice.
pub fn encode_tree(mut entries: Vec<TreeEntry<'_>>) -> Result<GitObject, EncodeError> {
    for e in &entries {
        if e.name.is_empty() || e.name.iter().any(|&b| b == 0 || b == b'/') {
            return Err(EncodeError::EntryName {
                name: e.name.to_vec(),
            });
        }
    }
    // Names must be unique whatever their modes (git fsck: duplicateEntries).
    let mut names: Vec<&[u8]> = entries.iter().map(|e| e.name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(EncodeError::DuplicateEntry {
            name: w[0].to_vec(),
        });
    }
    entries.sort_by(git_order);
    let len: usize = entries
        .iter()
        .map(|e| e.mode.octal().len() + 1 + e.name.len() + 1 + SHA1_LEN)
        .sum();
    let mut body = Vec::with_capacity(len);
    for e in &entries {
        body.extend_from_slice(e.mode.octal());
        body.push(b' ');
        body.extend_from_slice(e.name);
        body.push(0);
        body.extend_from_slice(e.id.as_bytes());
    }
    Ok(GitObject {
        kind: ObjectKind::Tree,
        body,
    })
}

/// A commit or tag body under construction: the header block is written line
/// by line, then [`HeaderBody::finish`] adds the blank line and the message.
#[derive(Debug, Clone)]
pub struct HeaderBody {
    kind: ObjectKind,
    buf: Vec<u8>,
}

impl HeaderBody {
    /// Start a commit: `tree`, one `parent` per parent in order, `author`
    /// and `committer` (person-line values, written as given).
    pub fn commit(
        tree: &Sha1,
        parents: &[Sha1],
        author: &[u8],
        committer: &[u8],
    ) -> Result<HeaderBody, EncodeError> {
        let mut b = HeaderBody {
            kind: ObjectKind::Commit,
            buf: Vec::with_capacity(512 + 48 * parents.len()),
        };
        b.id_line(b"tree", tree);
        for p in parents {
            b.id_line(b"parent", p);
        }
        b.header(b"author", author)?;
        b.header(b"committer", committer)?;
        Ok(b)
    }

    /// Start a tag: `object`, `type` (the target's kind), `tag` (the name)
    /// and, when given, `tagger`.
    pub fn tag(
        object: &Sha1,
        target: ObjectKind,
        name: &[u8],
        tagger: Option<&[u8]>,
    ) -> Result<HeaderBody, EncodeError> {
        let mut b = HeaderBody {
            kind: ObjectKind::Tag,
            buf: Vec::with_capacity(512 + name.len()),
        };
        b.id_line(b"object", object);
        b.header(b"type", target.name().as_bytes())?;
        b.header(b"tag", name)?;
        if let Some(t) = tagger {
            b.header(b"tagger", t)?;
        }
        Ok(b)
    }

    fn id_line(&mut self, key: &[u8], id: &Sha1) {
        self.buf.extend_from_slice(key);
        self.buf.push(b' ');
        id.write_hex(&mut self.buf);
        self.buf.push(b'\n');
    }

    /// Append the header line `key value`. The key may not be empty or hold
    /// a space, newline or NUL; the value may not hold a newline or NUL.
    pub fn header(&mut self, key: &[u8], value: &[u8]) -> Result<&mut HeaderBody, EncodeError> {
        if key.is_empty() || key.iter().any(|&b| matches!(b, b' ' | b'\n' | 0)) {
            return Err(EncodeError::HeaderKey { key: key.to_vec() });
        }
        if value.iter().any(|&b| b == b'\n' || b == 0) {
            return Err(EncodeError::HeaderValue { key: key.to_vec() });
        }
        self.buf.reserve(key.len() + value.len() + 2);
        self.buf.extend_from_slice(key);
        self.buf.push(b' ');
        self.buf.extend_from_slice(value);
        self.buf.push(b'\n');
        Ok(self)
    }

    /// End the header block with a blank line and append `message` verbatim.
    pub fn finish(mut self, message: &[u8]) -> GitObject {
        self.buf.reserve_exact(1 + message.len());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(message);
        GitObject {
            kind: self.kind,
            body: self.buf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: GitMode, name: &[u8], fill: u8) -> TreeEntry<'_> {
        TreeEntry {
            mode,
            name,
            id: Sha1([fill; 20]),
        }
    }

    #[test]
    fn empty_tree_has_the_well_known_id() {
        let t = encode_tree(Vec::new()).unwrap();
        assert!(t.body.is_empty());
        assert_eq!(t.id().unwrap(), EMPTY_TREE);
        assert_eq!(
            EMPTY_TREE.to_hex(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn directories_sort_as_name_slash() {
        let t = encode_tree(vec![
            entry(GitMode::Tree, b"foo", 1),
            entry(GitMode::File, b"foo0", 2),
            entry(GitMode::File, b"foo.txt", 3),
            entry(GitMode::Executable, b"a", 4),
            entry(GitMode::Symlink, b"foo-", 5),
        ])
        .unwrap();
        let names: Vec<&[u8]> = t
            .body
            .split(|&b| b == 0)
            .filter_map(|s| s.iter().position(|&b| b == b' ').map(|p| &s[p + 1..]))
            .collect();
        assert_eq!(
            names,
            vec![&b"a"[..], b"foo-", b"foo.txt", b"foo", b"foo0"],
            "'-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0' (0x30)"
        );
        assert!(t.body.starts_with(b"100755 a\0"));
    }

    #[test]
    fn git_order_agrees_with_materialized_keys() {
        let names: [&[u8]; 7] = [b"a", b"a.b", b"a/", b"ab", b"a-", b"b", b"a0"];
        let mut all = Vec::new();
        for n in names.iter().filter(|n| !n.contains(&b'/')) {
            all.push(entry(GitMode::File, n, 0));
            all.push(entry(GitMode::Tree, n, 0));
        }
        for x in &all {
            for y in &all {
                assert_eq!(
                    git_order(x, y),
                    sort_key(x).cmp(&sort_key(y)),
                    "{x:?} {y:?}"
                );
            }
        }
    }

    #[test]
    fn tree_refuses_bad_and_duplicate_names() {
        for bad in [&b""[..], b"a/b", b"a\0b"] {
            assert_eq!(
                encode_tree(vec![entry(GitMode::File, bad, 0)]),
                Err(EncodeError::EntryName { name: bad.to_vec() })
            );
        }
        assert_eq!(
            encode_tree(vec![
                entry(GitMode::File, b"x", 0),
                entry(GitMode::Tree, b"x", 1)
            ]),
            Err(EncodeError::DuplicateEntry {
                name: b"x".to_vec()
            })
        );
    }

    #[test]
    fn commit_and_tag_layouts() {
        let mut c = HeaderBody::commit(
            &EMPTY_TREE,
            &[Sha1([0xab; 20])],
            b"A <a@b> 1 +0000",
            b"C <c@d> 2 +0000",
        )
        .unwrap();
        c.header(b"x-extra", b"v").unwrap();
        let c = c.finish(b"msg");
        assert_eq!(c.kind, ObjectKind::Commit);
        let want = format!(
            "tree {}\nparent {}\nauthor A <a@b> 1 +0000\ncommitter C <c@d> 2 +0000\nx-extra v\n\nmsg",
            EMPTY_TREE,
            "ab".repeat(20)
        );
        assert_eq!(c.body, want.as_bytes());

        let t = HeaderBody::tag(
            &EMPTY_TREE,
            ObjectKind::Tree,
            b"v1",
            Some(b"T <t@x> 5 +0000"),
        )
        .unwrap()
        .finish(b"");
        assert_eq!(
            t.body,
            format!("object {EMPTY_TREE}\ntype tree\ntag v1\ntagger T <t@x> 5 +0000\n\n")
                .as_bytes()
        );
        assert_eq!(t.framed()[..7], *b"tag 89\0");
    }

    #[test]
    fn headers_refuse_newlines_nul_and_bad_keys() {
        let mut c = HeaderBody::commit(&EMPTY_TREE, &[], b"a", b"a").unwrap();
        assert!(matches!(
            c.header(b"k", b"a\nb"),
            Err(EncodeError::HeaderValue { .. })
        ));
        assert!(matches!(
            c.header(b"k", b"a\0b"),
            Err(EncodeError::HeaderValue { .. })
        ));
        assert!(matches!(
            c.header(b"k k", b"v"),
            Err(EncodeError::HeaderKey { .. })
        ));
        assert!(matches!(
            c.header(b"", b"v"),
            Err(EncodeError::HeaderKey { .. })
        ));
        assert!(matches!(
            HeaderBody::tag(&EMPTY_TREE, ObjectKind::Commit, b"a\nb", None),
            Err(EncodeError::HeaderValue { .. })
        ));
    }

    #[test]
    fn modes_round_trip_and_refuse_historic_spellings() {
        for m in [
            GitMode::File,
            GitMode::Executable,
            GitMode::Symlink,
            GitMode::Tree,
        ] {
            assert_eq!(GitMode::from_octal(m.octal()), Some(m));
        }
        for bad in [&b"040000"[..], b"100664", b"160000", b"644", b""] {
            assert_eq!(GitMode::from_octal(bad), None);
        }
    }
}
