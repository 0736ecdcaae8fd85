//! Git-style unified diffs of file content, for `format-patch`.
//!
//! The reference renders a commit's changes with its own line diff: the
//! greedy Myers search over lines (a common leading run set aside first),
//! each run of changed lines then slid as far down as identical neighbours
//! allow, hunks padded with three lines of context and merged when their
//! context touches. git's xdiff picks the same hunks in ordinary cases; where
//! several minimal alignments exist the two can differ, and it is the
//! reference's choice that a byte-compatible `format-patch` must repeat, so
//! this module reproduces that algorithm rather than calling a diff crate
//! (whose middle-snake search breaks ties differently). Its unit tests check
//! it hunk for hunk against the reference's own implementation.
//!
//! [`file_patch`] wraps the hunks in the `diff --git` header block the
//! reference prints for one changed path. Everything here is pure: the
//! caller reads the content and decides what changed.

use crate::mkit::id::Id;
use crate::mkit::object::EntryMode;

/// Lines of unchanged context around each hunk (git's `-U3`).
pub const CONTEXT_LINES: usize = 3;

/// How many leading bytes decide whether content is binary (git's
/// `buffer_is_binary`: a NUL in the first 8000 bytes).
pub const BINARY_SNIFF_LEN: usize = 8000;

/// The `index` line's stand-in for an absent side.
const ZERO_ABBREV: &str = "0000000";

/// Hex digits of an object id shown on an `index` line.
const ABBREV_LEN: usize = 7;

/// True when `bytes` count as binary by git's heuristic: a NUL byte within
/// the first [`BINARY_SNIFF_LEN`] bytes.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(BINARY_SNIFF_LEN).any(|&b| b == 0)
}

/// The hunks (`@@` headers and their lines, no `---`/`+++` header) turning
/// `old` into `new`, with `context` lines of context. `None` when either
/// side is binary; empty when the contents are identical.
pub fn unified_hunks(old: &[u8], new: &[u8], context: usize) -> Option<Vec<u8>> {
    if is_binary(old) || is_binary(new) {
        return None;
    }
    let old = split_lines(old);
    let new = split_lines(new);
    let (mut deleted, mut inserted) = changed_lines(&old, &new);
    slide_down(&old, &mut deleted);
    slide_down(&new, &mut inserted);
    let script = edit_script(&deleted, &inserted);
    let mut out = Vec::new();
    for window in hunk_windows(&script, context) {
        render_hunk(&mut out, &script[window.0..window.1], &old, &new);
    }
    Some(out)
}

/// One line of content: its bytes without the `\n`, and whether a `\n`
/// ended it (only the last line of a file can lack one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line<'a> {
    text: &'a [u8],
    terminated: bool,
}

fn split_lines(bytes: &[u8]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                lines.push(Line {
                    text: &rest[..end],
                    terminated: true,
                });
                rest = &rest[end + 1..];
            }
            None => {
                lines.push(Line {
                    text: rest,
                    terminated: false,
                });
                rest = &[];
            }
        }
    }
    lines
}

/// Which old lines are deleted and which new lines inserted by a shortest
/// edit script. A common leading run is matched up front: the greedy search
/// would walk exactly that run at its first step anyway, so setting it aside
/// only shrinks the search.
fn changed_lines(old: &[Line<'_>], new: &[Line<'_>]) -> (Vec<bool>, Vec<bool>) {
    let shared = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (tail_deleted, tail_inserted) = myers(&old[shared..], &new[shared..]);
    let mut deleted = vec![false; shared];
    deleted.extend(tail_deleted);
    let mut inserted = vec![false; shared];
    inserted.extend(tail_inserted);
    (deleted, inserted)
}

/// The greedy forward Myers search, then a walk back along the recorded
/// frontiers. At each diagonal the path arrives from the neighbour that
/// reaches further, preferring an insertion (a step down) on a tie only when
/// forced to the lower edge, exactly as the reference does; that choice
/// fixes which of several minimal scripts comes out.
///
/// Frontiers are kept per distance only for the diagonals that distance can
/// reach, so the trace grows with the square of the edit distance rather
/// than with distance times file length.
fn myers(old: &[Line<'_>], new: &[Line<'_>]) -> (Vec<bool>, Vec<bool>) {
    let (n, m) = (old.len(), new.len());
    let mut deleted = vec![false; n];
    let mut inserted = vec![false; m];
    if n == 0 || m == 0 {
        deleted.fill(true);
        inserted.fill(true);
        return (deleted, inserted);
    }
    let (n, m) = (to_signed(n), to_signed(m));
    let max = n + m;
    // frontier[center + k]: the furthest x reached on diagonal k = x - y.
    let center = max + 1;
    let mut frontier = vec![0isize; to_index(2 * max + 3)];
    let at = |f: &[isize], k: isize| f[to_index(center + k)];
    // trace[d]: the frontier before round d, diagonals -d-1 ..= d+1.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut distance = max;
    'search: for d in 0..=max {
        trace.push(frontier[to_index(center - d - 1)..=to_index(center + d + 1)].to_vec());
        for k in (-d..=d).step_by(2) {
            let down = k == -d || (k != d && at(&frontier, k - 1) < at(&frontier, k + 1));
            let mut x = if down {
                at(&frontier, k + 1)
            } else {
                at(&frontier, k - 1) + 1
            };
            let mut y = x - k;
            while x < n && y < m && old[to_index(x)] == new[to_index(y)] {
                x += 1;
                y += 1;
            }
            frontier[to_index(center + k)] = x;
            if x >= n && y >= m {
                distance = d;
                break 'search;
            }
        }
    }

    let (mut x, mut y) = (n, m);
    for d in (0..=distance).rev() {
        let snapshot = &trace[to_index(d)];
        let before = |k: isize| snapshot[to_index(k + d + 1)];
        let k = x - y;
        let down = k == -d || (k != d && before(k - 1) < before(k + 1));
        let from_k = if down { k + 1 } else { k - 1 };
        let from_x = before(from_k);
        let from_y = from_x - from_k;
        while x > from_x && y > from_y {
            x -= 1;
            y -= 1;
        }
        if d > 0 {
            if down {
                y -= 1;
                inserted[to_index(y)] = true;
            } else {
                x -= 1;
                deleted[to_index(x)] = true;
            }
        }
    }
    (deleted, inserted)
}

/// Line counts and indices fit `isize`: a slice never holds more than
/// `isize::MAX` elements.
fn to_signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// Search coordinates are never negative where they index.
fn to_index(i: isize) -> usize {
    usize::try_from(i).unwrap_or(0)
}

/// Move each run of changed lines down while the line leaving its top equals
/// the line joining at its bottom (xdiff's canonical placement). Scanning
/// resumes after the moved run, as the reference does.
fn slide_down(lines: &[Line<'_>], changed: &mut [bool]) {
    let mut i = 0;
    while i < lines.len() {
        if !changed[i] {
            i += 1;
            continue;
        }
        let mut top = i;
        let mut end = i;
        while end < lines.len() && changed[end] {
            end += 1;
        }
        while end < lines.len() && lines[top] == lines[end] {
            changed[top] = false;
            changed[end] = true;
            top += 1;
            end += 1;
        }
        i = end;
    }
}

/// One step of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Old line `.0` equals new line `.1`.
    Keep(usize, usize),
    /// Old line removed.
    Delete(usize),
    /// New line added.
    Insert(usize),
}

/// The script from the per-side flags: unchanged lines pair up in order, and
/// within each changed region every deletion comes before every insertion.
fn edit_script(deleted: &[bool], inserted: &[bool]) -> Vec<Step> {
    let (n, m) = (deleted.len(), inserted.len());
    let mut steps = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && !deleted[i] && !inserted[j] {
            steps.push(Step::Keep(i, j));
            i += 1;
            j += 1;
            continue;
        }
        while i < n && deleted[i] {
            steps.push(Step::Delete(i));
            i += 1;
        }
        while j < m && inserted[j] {
            steps.push(Step::Insert(j));
            j += 1;
        }
    }
    steps
}

/// `[start, end)` step ranges of the hunks: each change with `context` steps
/// either side, overlapping or touching windows merged.
fn hunk_windows(script: &[Step], context: usize) -> Vec<(usize, usize)> {
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for (pos, step) in script.iter().enumerate() {
        if matches!(step, Step::Keep(..)) {
            continue;
        }
        let start = pos.saturating_sub(context);
        let end = (pos + context + 1).min(script.len());
        match windows.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => windows.push((start, end)),
        }
    }
    windows
}

fn render_hunk(out: &mut Vec<u8>, steps: &[Step], old: &[Line<'_>], new: &[Line<'_>]) {
    let mut old_first = None;
    let mut new_first = None;
    let (mut old_len, mut new_len) = (0usize, 0usize);
    for step in steps {
        match *step {
            Step::Keep(i, j) => {
                old_first.get_or_insert(i);
                new_first.get_or_insert(j);
                old_len += 1;
                new_len += 1;
            }
            Step::Delete(i) => {
                old_first.get_or_insert(i);
                old_len += 1;
            }
            Step::Insert(j) => {
                new_first.get_or_insert(j);
                new_len += 1;
            }
        }
    }
    // 1-based; a side with no lines in the hunk starts at 0.
    let old_start = old_first.map_or(0, |i| i + 1);
    let new_start = new_first.map_or(0, |j| j + 1);
    out.extend_from_slice(
        format!(
            "@@ -{} +{} @@\n",
            range(old_start, old_len),
            range(new_start, new_len)
        )
        .as_bytes(),
    );
    for step in steps {
        let (mark, line) = match *step {
            Step::Keep(i, _) => (b' ', old[i]),
            Step::Delete(i) => (b'-', old[i]),
            Step::Insert(j) => (b'+', new[j]),
        };
        out.push(mark);
        out.extend_from_slice(line.text);
        out.push(b'\n');
        if !line.terminated {
            out.extend_from_slice(b"\\ No newline at end of file\n");
        }
    }
}

/// One side of an `@@` header: `start,len`, or just `start` when `len` is 1.
fn range(start: usize, len: usize) -> String {
    if len == 1 {
        start.to_string()
    } else {
        format!("{start},{len}")
    }
}

/// What happened to one path between a commit's parent tree and its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The path is new.
    Added,
    /// The path is gone.
    Deleted,
    /// The content changed (the mode may have too).
    Modified,
    /// Only the mode changed; the content is identical.
    ModeChanged,
}

/// One side of a change: the entry's mode and content id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    /// The tree entry mode.
    pub mode: EntryMode,
    /// The blob or chunked-blob id.
    pub id: Id,
}

/// One changed file, as the tree diff found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The `/`-joined path (names decoded as lossy UTF-8, as the reference does).
    pub path: String,
    /// What changed.
    pub kind: ChangeKind,
    /// The old side (`None` for an addition).
    pub old: Option<Side>,
    /// The new side (`None` for a deletion).
    pub new: Option<Side>,
}

/// A change `format-patch` cannot express: `git am` cannot apply a
/// "Binary files differ" notice, and no binary literal is emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryChange {
    /// The changed path.
    pub path: String,
}

/// The `diff --git` section for one change, given both sides' content
/// (empty for an absent side; ignored for a mode-only change). Refused when
/// either side is binary.
pub fn file_patch(change: &FileChange, old: &[u8], new: &[u8]) -> Result<Vec<u8>, BinaryChange> {
    let a = side_label('a', &change.path);
    let b = side_label('b', &change.path);
    let mut out = format!("diff --git {a} {b}\n");
    let old_mode = change.old.map(|s| s.mode);
    let new_mode = change.new.map(|s| s.mode);
    let old_id = change.old.map(|s| s.id);
    let new_id = change.new.map(|s| s.id);
    match change.kind {
        ChangeKind::ModeChanged => {
            out.push_str(&format!(
                "old mode {}\nnew mode {}\n",
                octal(old_mode),
                octal(new_mode)
            ));
            return Ok(out.into_bytes());
        }
        ChangeKind::Added => out.push_str(&format!(
            "new file mode {}\nindex {ZERO_ABBREV}..{}\n",
            octal(new_mode),
            abbrev(new_id)
        )),
        ChangeKind::Deleted => out.push_str(&format!(
            "deleted file mode {}\nindex {}..{ZERO_ABBREV}\n",
            octal(old_mode),
            abbrev(old_id)
        )),
        ChangeKind::Modified if old_mode != new_mode => out.push_str(&format!(
            "old mode {}\nnew mode {}\nindex {}..{}\n",
            octal(old_mode),
            octal(new_mode),
            abbrev(old_id),
            abbrev(new_id)
        )),
        ChangeKind::Modified => out.push_str(&format!(
            "index {}..{} {}\n",
            abbrev(old_id),
            abbrev(new_id),
            octal(new_mode)
        )),
    }
    let Some(hunks) = unified_hunks(old, new, CONTEXT_LINES) else {
        return Err(BinaryChange {
            path: change.path.clone(),
        });
    };
    let mut out = out.into_bytes();
    if !hunks.is_empty() {
        let (minus, plus) = match change.kind {
            ChangeKind::Added => ("/dev/null".to_owned(), b),
            ChangeKind::Deleted => (a, "/dev/null".to_owned()),
            _ => (a, b),
        };
        out.extend_from_slice(format!("--- {minus}\n+++ {plus}\n").as_bytes());
        out.extend_from_slice(&hunks);
    }
    Ok(out)
}

/// git's mode spelling for a tree entry.
fn octal(mode: Option<EntryMode>) -> &'static str {
    match mode {
        Some(EntryMode::Executable) => "100755",
        Some(EntryMode::Symlink) => "120000",
        Some(EntryMode::Tree) => "040000",
        Some(EntryMode::Blob) | None => "100644",
    }
}

/// The abbreviated id on an `index` line: the first hex digits of the mkit
/// (BLAKE3) id, not a git blob id; `git apply` does not check it.
fn abbrev(id: Option<Id>) -> String {
    match id {
        Some(id) => id.to_hex()[..ABBREV_LEN].to_owned(),
        None => ZERO_ABBREV.to_owned(),
    }
}

/// `a/<path>` or `b/<path>`, C-quoted as a whole when git would quote it.
fn side_label(side: char, path: &str) -> String {
    let label = format!("{side}/{path}");
    c_quote(&label).unwrap_or(label)
}

/// git's `core.quotePath` quoting: `None` when `s` has no byte below 0x20,
/// no `"` or `\` and nothing from 0x7f up; otherwise the quoted form, with
/// C escapes for the usual controls and octal for every other such byte.
pub fn c_quote(s: &str) -> Option<String> {
    let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f;
    if !s.bytes().any(special) {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            other => out.push_str(&format!("\\{other:03o}")),
        }
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hunks(old: &str, new: &str) -> String {
        String::from_utf8(unified_hunks(old.as_bytes(), new.as_bytes(), 3).unwrap()).unwrap()
    }

    #[test]
    fn appended_line_is_one_hunk_with_context() {
        assert_eq!(hunks("one\n", "one\ntwo\n"), "@@ -1 +1,2 @@\n one\n+two\n");
    }

    #[test]
    fn new_and_emptied_files_start_at_zero() {
        assert_eq!(hunks("", "a\nb\n"), "@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(hunks("a\n", ""), "@@ -1 +0,0 @@\n-a\n");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        assert_eq!(
            hunks("a\nb", "a\nb\n"),
            "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }

    #[test]
    fn distant_changes_are_separate_hunks_and_near_ones_merge() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let far = old.replace("2\n", "two\n").replace("18\n", "eighteen\n");
        let out = hunks(&old, &far);
        assert_eq!(out.matches("@@ -").count(), 2, "{out}");
        let near = old.replace("2\n", "two\n").replace("8\n", "eight\n");
        assert_eq!(hunks(&old, &near).matches("@@ -").count(), 1);
    }

    #[test]
    fn an_inserted_duplicate_lands_at_the_bottom_of_its_run() {
        // Inserting one more "x" into a run of x's: the slide puts the
        // insertion after the run, where git puts it.
        assert_eq!(
            hunks("a\nx\nx\nb\n", "a\nx\nx\nx\nb\n"),
            "@@ -1,4 +1,5 @@\n a\n x\n x\n+x\n b\n"
        );
    }

    #[test]
    fn identical_content_has_no_hunks_and_nul_is_binary() {
        assert_eq!(unified_hunks(b"same\n", b"same\n", 3), Some(Vec::new()));
        assert_eq!(unified_hunks(b"a\0", b"b", 3), None);
        assert_eq!(unified_hunks(b"b", b"\0", 3), None);
        let mut late = vec![b'a'; BINARY_SNIFF_LEN];
        late.push(0);
        assert!(!is_binary(&late), "a NUL past the sniff window is text");
    }

    fn side(mode: EntryMode, byte: u8) -> Option<Side> {
        Some(Side {
            mode,
            id: Id([byte; 32]),
        })
    }

    #[test]
    fn headers_follow_the_reference_per_kind() {
        let added = FileChange {
            path: "dir/new.txt".into(),
            kind: ChangeKind::Added,
            old: None,
            new: side(EntryMode::Executable, 0xab),
        };
        assert_eq!(
            String::from_utf8(file_patch(&added, b"", b"x\n").unwrap()).unwrap(),
            "diff --git a/dir/new.txt b/dir/new.txt\nnew file mode 100755\n\
             index 0000000..abababa\n--- /dev/null\n+++ b/dir/new.txt\n@@ -0,0 +1 @@\n+x\n"
        );
        let deleted = FileChange {
            path: "gone".into(),
            kind: ChangeKind::Deleted,
            old: side(EntryMode::Blob, 0x01),
            new: None,
        };
        assert_eq!(
            String::from_utf8(file_patch(&deleted, b"", b"").unwrap()).unwrap(),
            "diff --git a/gone b/gone\ndeleted file mode 100644\nindex 0101010..0000000\n",
            "an empty file deleted has no hunks"
        );
        let mode_only = FileChange {
            path: "run.sh".into(),
            kind: ChangeKind::ModeChanged,
            old: side(EntryMode::Blob, 1),
            new: side(EntryMode::Executable, 1),
        };
        assert_eq!(
            String::from_utf8(file_patch(&mode_only, b"\0", b"\0").unwrap()).unwrap(),
            "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n",
            "a mode change reads no content, so binary content is not refused"
        );
        let both = FileChange {
            path: "l".into(),
            kind: ChangeKind::Modified,
            old: side(EntryMode::Blob, 2),
            new: side(EntryMode::Symlink, 3),
        };
        assert_eq!(
            String::from_utf8(file_patch(&both, b"a\n", b"b").unwrap()).unwrap(),
            "diff --git a/l b/l\nold mode 100644\nnew mode 120000\nindex 0202020..0303030\n\
             --- a/l\n+++ b/l\n@@ -1 +1 @@\n-a\n+b\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn binary_sides_are_refused_with_the_path() {
        let change = FileChange {
            path: "blob.bin".into(),
            kind: ChangeKind::Added,
            old: None,
            new: side(EntryMode::Blob, 9),
        };
        assert_eq!(
            file_patch(&change, b"", &[0, 159, 146]),
            Err(BinaryChange {
                path: "blob.bin".into()
            })
        );
    }

    #[test]
    fn quoting_matches_git() {
        assert_eq!(c_quote("a/plain name.txt"), None);
        assert_eq!(c_quote("a/tab\there").as_deref(), Some("\"a/tab\\there\""));
        assert_eq!(c_quote("a/q\"b\\").as_deref(), Some("\"a/q\\\"b\\\\\""));
        assert_eq!(c_quote("a/é").as_deref(), Some("\"a/\\303\\251\""));
        assert_eq!(c_quote("a/\x7f").as_deref(), Some("\"a/\\177\""));
    }

    fn reference(old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
        mkit_core::ops::unified_hunks(old, new)
    }

    fn text(lines: Vec<u8>, trailing_newline: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.push(b'a' + l);
        }
        if trailing_newline && !lines.is_empty() {
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn matches_the_reference_on_tie_prone_inputs() {
        let cases: [(&str, &str); 6] = [
            ("a\n", "b\na\na\n"),
            ("a\nb\na\nb\n", "b\na\nb\na\n"),
            ("x\ny\nx\ny\nx\n", "y\nx\ny\n"),
            ("a\nb\nc\na\nb\nc\n", "c\nb\na\nc\nb\na\n"),
            ("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\nX\n4\n5\n6\n7\nY\n9\n"),
            ("", ""),
        ];
        for (old, new) in cases {
            assert_eq!(
                unified_hunks(old.as_bytes(), new.as_bytes(), 3),
                reference(old.as_bytes(), new.as_bytes()),
                "{old:?} -> {new:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Small alphabets make repeated lines, and so ties, common: every
        /// script must come out byte for byte as the reference's.
        #[test]
        fn same_hunks_as_the_reference(
            old in proptest::collection::vec(0u8..3, 0..14),
            new in proptest::collection::vec(0u8..3, 0..14),
            old_nl in any::<bool>(),
            new_nl in any::<bool>(),
        ) {
            let old = text(old, old_nl);
            let new = text(new, new_nl);
            prop_assert_eq!(unified_hunks(&old, &new, 3), reference(&old, &new));
        }

        #[test]
        fn same_hunks_as_the_reference_on_longer_files(
            old in proptest::collection::vec(0u8..6, 0..60),
            edits in proptest::collection::vec((0usize..60, 0u8..6, any::<bool>()), 0..8),
        ) {
            let mut new = old.clone();
            for (at, letter, insert) in edits {
                let at = at.min(new.len());
                if insert || at == new.len() {
                    new.insert(at, letter);
                } else {
                    new[at] = letter;
                }
            }
            let old = text(old, true);
            let new = text(new, true);
            prop_assert_eq!(unified_hunks(&old, &new, 3), reference(&old, &new));
        }
    }
}
