//! The per-remote state directory: formats, write discipline, bind rules,
//! crash behaviour, concurrency, the lock, and interoperability with the
//! reference `mkit` 0.5.0 binary.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mkit_bridge::mkit::id::Id;
use mkit_bridge::state::{self, Binding, Direction, RefState, Sha1, StateError};

fn id(n: u8) -> Id {
    Id([n; 32])
}

fn sha(n: u8) -> Sha1 {
    Sha1([n; 20])
}

fn line(b: &Id, s: &Sha1) -> String {
    format!("{} {}\n", b.to_hex(), s.to_hex())
}

/// A fresh `.mkit` directory and the state directory of remote `origin`.
fn fresh() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mkit = tmp.path().join(".mkit");
    fs::create_dir_all(&mkit).unwrap();
    let st = state::state_dir(&mkit, "origin").unwrap();
    (tmp, mkit, st)
}

// --- state_dir ---------------------------------------------------------------

#[test]
fn state_dir_accepts_only_safe_names() {
    let mkit = Path::new("/r/.mkit");
    assert_eq!(
        state::state_dir(mkit, "up-stream_2").unwrap(),
        Path::new("/r/.mkit/git/up-stream_2")
    );
    for bad in [
        "", ".", "..", "a/b", "a.b", ".hidden", "x y", "naïve", "a\\b", "a\0",
    ] {
        assert!(
            matches!(
                state::state_dir(mkit, bad),
                Err(StateError::InvalidRemoteName { .. })
            ),
            "{bad:?} accepted"
        );
        assert!(
            state::lock_path(mkit, bad).is_err(),
            "{bad:?} lock accepted"
        );
    }
    assert_eq!(
        state::lock_path(mkit, "origin").unwrap(),
        Path::new("/r/.mkit/git-origin.lock")
    );
}

#[test]
fn list_states_skips_dot_entries_and_finds_sources() {
    let (_t, mkit, st) = fresh();
    assert!(state::list_states(&mkit).unwrap().is_empty());
    state::write_binding(&st, Binding::Source, "/srv/up").unwrap();
    let other = state::state_dir(&mkit, "b").unwrap();
    fs::create_dir_all(&other).unwrap();
    fs::create_dir_all(mkit.join("git/.rename.tmp.1.0")).unwrap();
    fs::write(mkit.join("git/stray-file"), b"x").unwrap();
    assert_eq!(state::list_states(&mkit).unwrap(), ["b", "origin"]);
    assert_eq!(
        state::state_with_source(&mkit, "/srv/up", None)
            .unwrap()
            .as_deref(),
        Some("origin")
    );
    assert_eq!(
        state::state_with_source(&mkit, "/srv/up", Some("origin")).unwrap(),
        None
    );
}

// --- map ---------------------------------------------------------------------

#[test]
fn missing_map_loads_empty_and_is_intact() {
    let (_t, _m, st) = fresh();
    assert!(state::load_map(&st).unwrap().is_empty());
    assert!(state::load_map_inverse(&st).unwrap().is_empty());
    assert!(state::map_is_intact(&st).unwrap());
    // An empty append creates nothing.
    state::append_map(&st, &[]).unwrap();
    assert!(!st.join("map").exists());
}

#[test]
fn map_lines_are_blake3_first_in_both_orientations() {
    let (_t, _m, st) = fresh();
    state::append_map(&st, &[(id(1), sha(2))]).unwrap();
    state::append_map_import(&st, &[(sha(4), id(3))]).unwrap();
    let text = fs::read_to_string(st.join("map")).unwrap();
    assert_eq!(text, line(&id(1), &sha(2)) + &line(&id(3), &sha(4)));
    let fwd = state::load_map(&st).unwrap();
    assert_eq!(
        fwd.to_hash_map(),
        HashMap::from([(id(1), sha(2)), (id(3), sha(4))])
    );
    let inv = state::load_map_inverse(&st).unwrap();
    assert_eq!(
        inv.to_hash_map(),
        HashMap::from([(sha(2), id(1)), (sha(4), id(3))])
    );
    assert!(state::map_is_intact(&st).unwrap());
}

#[test]
fn torn_tail_loads_good_lines_and_is_not_intact() {
    let (_t, _m, st) = fresh();
    state::append_map(&st, &[(id(1), sha(2)), (id(3), sha(4))]).unwrap();
    // A crash in the middle of the next line.
    let torn = &line(&id(5), &sha(6))[..70];
    fs::OpenOptions::new()
        .append(true)
        .open(st.join("map"))
        .unwrap()
        .write_all(torn.as_bytes())
        .unwrap();
    let fwd = state::load_map(&st).unwrap();
    assert_eq!(
        fwd.to_hash_map(),
        HashMap::from([(id(1), sha(2)), (id(3), sha(4))])
    );
    let (inv, intact) = state::load_map_inverse_checked(&st).unwrap();
    assert_eq!(inv.len(), 2);
    assert!(!intact);
    assert!(!state::map_is_intact(&st).unwrap());

    // The next append closes the torn line off instead of gluing onto it.
    state::append_map(&st, &[(id(7), sha(8))]).unwrap();
    let fwd = state::load_map(&st).unwrap();
    assert_eq!(fwd.get(&id(7)), Some(&sha(8)));
    assert_eq!(fwd.len(), 3);
    assert!(!state::map_is_intact(&st).unwrap());
    let text = fs::read_to_string(st.join("map")).unwrap();
    assert!(text.ends_with(&format!("{torn}\n{}", line(&id(7), &sha(8)))));

    // The caller's remedy: discard and rebuild.
    state::discard_map(&st).unwrap();
    state::discard_map(&st).unwrap();
    assert!(state::map_is_intact(&st).unwrap());
    assert!(state::load_map(&st).unwrap().is_empty());
}

#[test]
fn mid_file_corruption_or_a_blank_line_is_not_intact() {
    let good = [
        line(&id(1), &sha(2)),
        line(&id(3), &sha(4)),
        line(&id(5), &sha(6)),
    ];
    let cases: Vec<(&str, String)> = vec![
        ("blank line", format!("{}\n{}{}", good[0], good[1], good[2])),
        (
            "blank first line",
            format!("\n{}{}{}", good[0], good[1], good[2]),
        ),
        (
            "crlf blank line",
            format!("{}\r\n{}{}", good[0], good[1], good[2]),
        ),
        (
            "garbage line",
            format!("{}GARBAGE\n{}{}", good[0], good[1], good[2]),
        ),
        ("flipped digit", {
            let mut l = good[1].clone();
            l.replace_range(10..11, "g");
            format!("{}{}{}", good[0], l, good[2])
        }),
        ("uppercase sha1", {
            let l = format!("{} {}\n", id(3).to_hex(), sha(0xab).to_hex().to_uppercase());
            format!("{}{}{}", good[0], l, good[2])
        }),
        ("two spaces", {
            let l = good[1].replacen(' ', "  ", 1);
            format!("{}{}{}", good[0], l, good[2])
        }),
        (
            "non-utf8",
            format!("{}{}\u{fffd}\n{}", good[0], good[1], good[2]),
        ),
    ];
    for (what, text) in cases {
        let (_t, _m, st) = fresh();
        fs::create_dir_all(&st).unwrap();
        // The non-utf8 case swaps the replacement character for a lone 0xff.
        let bytes = text.replace('\u{fffd}', "\u{0}").into_bytes();
        let bytes: Vec<u8> = bytes
            .into_iter()
            .map(|b| if b == 0 { 0xff } else { b })
            .collect();
        fs::write(st.join("map"), &bytes).unwrap();
        assert!(!state::map_is_intact(&st).unwrap(), "{what}: intact");
        let fwd = state::load_map(&st).unwrap();
        assert_eq!(fwd.get(&id(1)), Some(&sha(2)), "{what}");
        assert_eq!(fwd.get(&id(5)), Some(&sha(6)), "{what}");
    }
    // Sanity: the same lines without damage are intact.
    let (_t, _m, st) = fresh();
    fs::create_dir_all(&st).unwrap();
    fs::write(st.join("map"), good.concat()).unwrap();
    assert!(state::map_is_intact(&st).unwrap());
}

#[test]
fn many_to_one_inverse_keeps_every_sha1() {
    let (_t, _m, st) = fresh();
    // Two historic spellings of one tree (sha 2 and sha 3) became one mkit
    // tree (id 1).
    state::append_map_import(&st, &[(sha(2), id(1)), (sha(3), id(1)), (sha(5), id(4))]).unwrap();
    let inv = state::load_map_inverse(&st).unwrap();
    assert_eq!(
        inv.to_hash_map(),
        HashMap::from([(sha(2), id(1)), (sha(3), id(1)), (sha(5), id(4))])
    );
    // The forward map holds one sha1 per blake3: the later line wins.
    let fwd = state::load_map(&st).unwrap();
    assert_eq!(
        fwd.to_hash_map(),
        HashMap::from([(id(1), sha(3)), (id(4), sha(5))])
    );
}

#[test]
fn large_map_takes_the_parallel_path_and_matches() {
    let (_t, _m, st) = fresh();
    let pairs: Vec<(Id, Sha1)> = (0..60_000u32)
        .map(|i| {
            let h = blake3::hash(&i.to_le_bytes());
            let mut s = [0u8; 20];
            s.copy_from_slice(&h.as_bytes()[..20]);
            (Id(*h.as_bytes()), Sha1(s))
        })
        .collect();
    state::append_map(&st, &pairs).unwrap();
    // Damage one line in the middle (crosses no particular boundary).
    let mut data = fs::read(st.join("map")).unwrap();
    assert!(data.len() > 4 << 20, "test must exceed the small-file path");
    let victim = 31_337usize;
    data[victim * 106 + 3] = b'z';
    fs::write(st.join("map"), &data).unwrap();
    let fwd = state::load_map(&st).unwrap();
    assert_eq!(fwd.len(), pairs.len() - 1);
    for (i, (b, s)) in pairs.iter().enumerate() {
        assert_eq!(fwd.get(b), (i != victim).then_some(s), "line {i}");
    }
    assert!(!state::map_is_intact(&st).unwrap());
    assert_eq!(state::load_map_inverse(&st).unwrap().len(), pairs.len() - 1);
}

// --- concurrent appends --------------------------------------------------------

const APPEND_CHILDREN: u8 = 4;
const APPEND_BATCHES: u32 = 150;

fn child_pairs(child: u8, batch: u32) -> Vec<(Id, Sha1)> {
    let n = 1 + (batch * 37 + u32::from(child) * 11) % 64;
    (0..n)
        .map(|i| {
            let h = blake3::hash(&[&[child][..], &batch.to_le_bytes(), &i.to_le_bytes()].concat());
            let mut s = [0u8; 20];
            s.copy_from_slice(&h.as_bytes()[..20]);
            (Id(*h.as_bytes()), Sha1(s))
        })
        .collect()
}

/// Not a test on its own: the body of one appending child process, run by
/// `concurrent_appends_never_interleave_inside_a_line` re-invoking this
/// binary. Without its environment variable it does nothing.
#[test]
fn child_append_worker() {
    let (Some(dir), Some(child)) = (
        std::env::var_os("STATE_TEST_APPEND_DIR"),
        std::env::var("STATE_TEST_APPEND_CHILD").ok(),
    ) else {
        return;
    };
    let child: u8 = child.parse().unwrap();
    let dir = PathBuf::from(dir);
    // Start together to maximise overlap.
    while !dir.join("go").exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    for batch in 0..APPEND_BATCHES {
        state::append_map(&dir, &child_pairs(child, batch)).unwrap();
    }
}

fn reexec(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    let test = format!("state::{test}");
    cmd.args([
        test.as_str(),
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]);
    cmd
}

#[test]
fn concurrent_appends_never_interleave_inside_a_line() {
    let (_t, _m, st) = fresh();
    fs::create_dir_all(&st).unwrap();
    let children: Vec<_> = (0..APPEND_CHILDREN)
        .map(|c| {
            reexec("child_append_worker")
                .env("STATE_TEST_APPEND_DIR", &st)
                .env("STATE_TEST_APPEND_CHILD", c.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    fs::write(st.join("go"), b"").unwrap();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut want = BTreeSet::new();
    let mut count = 0usize;
    for c in 0..APPEND_CHILDREN {
        for b in 0..APPEND_BATCHES {
            for (i, s) in child_pairs(c, b) {
                want.insert(line(&i, &s));
                count += 1;
            }
        }
    }
    let text = fs::read_to_string(st.join("map")).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!(lines.len(), count, "line count");
    for l in &lines {
        assert!(want.contains(*l), "line not written by any child: {l:?}");
    }
    let got: BTreeSet<String> = lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(got, want);
    assert!(state::map_is_intact(&st).unwrap());
    assert_eq!(state::load_map(&st).unwrap().len(), count);
}

// --- stamps --------------------------------------------------------------------

#[test]
fn direction_bind_matrix() {
    use Direction::*;
    let haves = [None, Some(Import), Some(Export), Some(Fork)];
    // (have, want) -> direction afterwards, or None when refused.
    let expect = |have: Option<Direction>, want: Direction| -> Option<Direction> {
        match (have, want) {
            (None, w) => Some(w),
            (Some(Import), Import) => Some(Import),
            (Some(Import), Fork) => Some(Fork),
            (Some(Export), Export) => Some(Export),
            (Some(Fork), Fork) => Some(Fork),
            _ => None,
        }
    };
    let mut refused = 0;
    for have in haves {
        for want in Direction::ALL {
            let (_t, _m, st) = fresh();
            if let Some(h) = have {
                state::bind_direction(&st, h).unwrap();
            }
            let result = state::bind_direction(&st, want);
            let after = state::read_direction(&st).unwrap();
            match expect(have, want) {
                Some(d) => {
                    assert!(result.is_ok(), "{have:?} -> {want:?}: {result:?}");
                    assert_eq!(after, Some(d), "{have:?} -> {want:?}");
                    assert_eq!(
                        fs::read_to_string(st.join("direction")).unwrap(),
                        format!("{}\n", d.as_str())
                    );
                }
                None => {
                    refused += 1;
                    assert!(
                        matches!(result, Err(StateError::DirectionConflict { .. })),
                        "{have:?} -> {want:?}: {result:?}"
                    );
                    assert_eq!(after, have, "{have:?} -> {want:?} changed the stamp");
                }
            }
            assert_eq!(
                Direction::may_bind(have, want),
                expect(have, want).is_some()
            );
        }
    }
    assert_eq!(refused, 5);
}

#[test]
fn corrupt_stamps_are_hard_errors_and_never_reset() {
    let cases: &[(&str, &[u8])] = &[
        ("direction", b"sideways\n"),
        ("direction", b"\n"),
        ("direction", b"Import\n"),
        ("direction", b"\xff\xfe\n"),
        ("signer", b"abcd\n"),
        ("signer", &[b'A'; 64]),
        ("import-spec", b"one\n"),
        ("import-spec", b"01\n"),
        ("normalized", b"yes\n"),
        ("source", b"  \n"),
        ("dest", b"\n"),
    ];
    for (file, content) in cases {
        let (_t, _m, st) = fresh();
        fs::create_dir_all(&st).unwrap();
        fs::write(st.join(file), content).unwrap();
        let err = match *file {
            "direction" => {
                assert!(state::read_direction(&st).is_err());
                state::bind_direction(&st, Direction::Import).unwrap_err()
            }
            "signer" => {
                assert!(state::read_signer(&st).is_err());
                state::bind_signer(&st, &[7; 32]).unwrap_err()
            }
            "import-spec" => {
                assert!(state::read_import_spec(&st).is_err());
                state::bind_import_spec(&st).unwrap_err()
            }
            "normalized" => state::read_normalized(&st).unwrap_err(),
            "source" => {
                assert!(state::read_binding(&st, Binding::Source).is_err());
                state::pin_binding(&st, Binding::Source, "/x").unwrap_err()
            }
            "dest" => state::read_binding(&st, Binding::Dest).unwrap_err(),
            _ => unreachable!(),
        };
        assert!(
            matches!(err, StateError::CorruptStamp { .. }),
            "{file} {content:?}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("refusing to guess"), "{msg}");
        assert!(msg.contains(&st.join(file).display().to_string()), "{msg}");
        assert_eq!(
            fs::read(st.join(file)).unwrap(),
            *content,
            "{file} was rewritten"
        );
    }
}

#[test]
fn stamps_are_value_and_newline_and_read_trimmed() {
    let (_t, _m, st) = fresh();
    let key = [0xab; 32];
    state::bind_direction(&st, Direction::Import).unwrap();
    state::bind_signer(&st, &key).unwrap();
    state::bind_import_spec(&st).unwrap();
    state::write_binding(&st, Binding::Source, "ssh://github.com/org/repo").unwrap();
    state::mark_normalized(&st).unwrap();
    let read = |f: &str| fs::read_to_string(st.join(f)).unwrap();
    assert_eq!(read("direction"), "import\n");
    assert_eq!(read("signer"), format!("{}\n", "ab".repeat(32)));
    assert_eq!(read("import-spec"), "1\n");
    assert_eq!(read("source"), "ssh://github.com/org/repo\n");
    assert_eq!(read("normalized"), "1\n");
    // Surrounding whitespace is tolerated on read, as in the reference.
    fs::write(st.join("direction"), b"  fork \r\n").unwrap();
    assert_eq!(state::read_direction(&st).unwrap(), Some(Direction::Fork));
    // No temp files left behind.
    let names: BTreeSet<String> = fs::read_dir(&st)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn signer_pins_and_refuses_another_key() {
    let (_t, _m, st) = fresh();
    assert_eq!(state::read_signer(&st).unwrap(), None);
    state::bind_signer(&st, &[1; 32]).unwrap();
    state::bind_signer(&st, &[1; 32]).unwrap();
    let err = state::bind_signer(&st, &[2; 32]).unwrap_err();
    assert!(matches!(err, StateError::SignerMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("0101010101010101"), "{err}");
    assert_eq!(state::read_signer(&st).unwrap(), Some([1; 32]));
}

#[test]
fn import_spec_binds_and_refuses_a_version_we_do_not_implement() {
    let (_t, _m, st) = fresh();
    assert_eq!(state::read_import_spec(&st).unwrap(), None);
    state::bind_import_spec(&st).unwrap();
    assert_eq!(
        state::read_import_spec(&st).unwrap(),
        Some(state::IMPORT_SPEC_VERSION)
    );
    state::bind_import_spec(&st).unwrap();
    fs::write(st.join("import-spec"), b"2\n").unwrap();
    let err = state::bind_import_spec(&st).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::UnsupportedImportSpec {
                recorded: 2,
                implemented: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fs::read_to_string(st.join("import-spec")).unwrap(), "2\n");
}

#[test]
fn bindings_pin_refuse_and_validate() {
    let (_t, _m, st) = fresh();
    assert_eq!(state::read_binding(&st, Binding::Source).unwrap(), None);
    state::pin_binding(&st, Binding::Source, "/srv/a").unwrap();
    state::pin_binding(&st, Binding::Source, "/srv/a").unwrap();
    let err = state::pin_binding(&st, Binding::Source, "/srv/b").unwrap_err();
    assert!(matches!(err, StateError::BindingMismatch { .. }), "{err:?}");
    // dest is independent, and write_binding replaces (fork records the last
    // push target informationally).
    state::write_binding(&st, Binding::Dest, "/m/1").unwrap();
    state::write_binding(&st, Binding::Dest, "/m/2").unwrap();
    assert_eq!(
        state::read_binding(&st, Binding::Dest).unwrap().as_deref(),
        Some("/m/2")
    );
    for bad in ["", " /lead", "/trail ", "two\nlines", "cr\r"] {
        assert!(
            matches!(
                state::write_binding(&st, Binding::Source, bad),
                Err(StateError::InvalidBinding { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        state::read_binding(&st, Binding::Source)
            .unwrap()
            .as_deref(),
        Some("/srv/a")
    );
}

#[test]
fn normalized_is_sticky_and_importing_marker_toggles() {
    let (_t, _m, st) = fresh();
    assert!(!state::read_normalized(&st).unwrap());
    state::mark_normalized(&st).unwrap();
    state::mark_normalized(&st).unwrap();
    assert!(state::read_normalized(&st).unwrap());

    assert!(!state::importing_is_set(&st).unwrap());
    state::set_importing(&st).unwrap();
    assert!(state::importing_is_set(&st).unwrap());
    assert_eq!(fs::read(st.join("importing")).unwrap(), b"");
    state::clear_importing(&st).unwrap();
    assert!(!state::importing_is_set(&st).unwrap());
    state::clear_importing(&st).unwrap();
    // Any content still means "set": existence is the signal.
    fs::write(st.join("importing"), b"junk").unwrap();
    assert!(state::importing_is_set(&st).unwrap());
}

// --- ref state -----------------------------------------------------------------

fn rs(name: &str, m: u8, g: u8) -> RefState {
    RefState {
        name: name.to_owned(),
        mkit: id(m),
        git: sha(g),
    }
}

#[test]
fn ref_state_round_trips_in_the_reference_format() {
    let (_t, _m, st) = fresh();
    assert!(state::load_ref_state(&st).unwrap().is_empty());
    assert!(state::load_import_ref_state(&st).unwrap().is_empty());
    let exp = vec![
        rs("refs/heads/main", 1, 2),
        rs("refs/mkit/attestations", 0, 3),
    ];
    let imp = vec![rs("refs/tags/v1.0", 4, 5)];
    state::store_ref_state(&st, &exp).unwrap();
    state::store_import_ref_state(&st, &imp).unwrap();
    assert_eq!(
        fs::read_to_string(st.join("refs")).unwrap(),
        format!(
            "refs/heads/main {} {}\nrefs/mkit/attestations {} {}\n",
            id(1).to_hex(),
            sha(2).to_hex(),
            "0".repeat(64),
            sha(3).to_hex()
        )
    );
    assert_eq!(state::load_ref_state(&st).unwrap(), exp);
    assert_eq!(state::load_import_ref_state(&st).unwrap(), imp);
    // An empty list leaves an empty file.
    state::store_ref_state(&st, &[]).unwrap();
    assert_eq!(fs::read(st.join("refs")).unwrap(), b"");
    // Names that would break the line format are refused.
    for bad in ["", "refs/heads/a b", "refs/heads/a\nb"] {
        let err = state::store_import_ref_state(&st, &[rs(bad, 1, 1)]).unwrap_err();
        assert!(matches!(err, StateError::InvalidRefName { .. }), "{bad:?}");
    }
    assert_eq!(state::load_import_ref_state(&st).unwrap(), imp);
}

#[test]
fn ref_state_reader_skips_lines_that_do_not_parse() {
    let (_t, _m, st) = fresh();
    fs::create_dir_all(&st).unwrap();
    let good = format!("refs/heads/main {} {}\n", id(1).to_hex(), sha(2).to_hex());
    let upper = format!(
        "refs/heads/up {} {}\n",
        id(0xab).to_hex().to_uppercase(),
        sha(3).to_hex()
    );
    fs::write(
        st.join("refs-import"),
        format!(
            "{good}garbage\nrefs/heads/x {} zz\n{upper}refs/heads/torn {}",
            id(1).to_hex(),
            &id(2).to_hex()[..9]
        ),
    )
    .unwrap();
    assert_eq!(
        state::load_import_ref_state(&st).unwrap(),
        vec![rs("refs/heads/main", 1, 2), rs("refs/heads/up", 0xab, 3)]
    );
}

#[test]
fn ref_state_survives_a_crash_between_temp_write_and_rename() {
    let (_t, _m, st) = fresh();
    let old = vec![rs("refs/heads/main", 1, 2), rs("refs/heads/dev", 3, 4)];
    let new = vec![rs("refs/heads/main", 5, 6)];
    state::store_ref_state(&st, &old).unwrap();
    let old_bytes = fs::read(st.join("refs")).unwrap();

    // The crash: a temp file with the complete new contents, never renamed —
    // in both our temp naming and the reference's.
    let mut new_bytes = Vec::new();
    for s in &new {
        new_bytes.extend(format!("{} {} {}\n", s.name, s.mkit.to_hex(), s.git.to_hex()).bytes());
    }
    let ours = mkit_bridge::durable::temp_path_for(&st.join("refs"));
    fs::write(&ours, &new_bytes).unwrap();
    fs::write(st.join(".refs.tmp"), &new_bytes).unwrap();
    // And a torn temp file, as if the crash came mid-write.
    fs::write(st.join(".refs.tmp.999.0"), &new_bytes[..20]).unwrap();

    assert_eq!(state::load_ref_state(&st).unwrap(), old);
    assert_eq!(fs::read(st.join("refs")).unwrap(), old_bytes);

    // The retried write lands whole.
    state::store_ref_state(&st, &new).unwrap();
    assert_eq!(state::load_ref_state(&st).unwrap(), new);
    assert_eq!(fs::read(st.join("refs")).unwrap(), new_bytes);
}

// --- raw bytes -----------------------------------------------------------------

#[test]
fn raw_bytes_are_written_once_under_the_fanout_path() {
    let (_t, _m, st) = fresh();
    let id = Sha1::from_hex("97bf12871965f6973b29623dc9391a008653ce0c").unwrap();
    let framed = b"commit 3\0abc".to_vec();
    assert!(!state::has_raw(&st, &id).unwrap());
    assert_eq!(state::read_raw(&st, &id).unwrap(), None);
    let mut w = state::RawWriter::new(&st);
    assert!(w.retain(&id, &framed).unwrap());
    assert!(
        !w.retain(&id, b"commit 3\0xyz").unwrap(),
        "second write must be skipped"
    );
    w.sync().unwrap();
    let path = st.join("raw/97/bf12871965f6973b29623dc9391a008653ce0c");
    assert_eq!(state::raw_path(&st, &id), path);
    assert_eq!(fs::read(&path).unwrap(), framed);
    assert_eq!(state::read_raw(&st, &id).unwrap(), Some(framed));
    assert_eq!(
        fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1,
        "temp left behind"
    );
    for bad in [
        &b"commit 4\0abc"[..],
        b"commit 03\0abc",
        b"blob3\0abc",
        b"frob 3\0abc",
        b"commit 3abc",
    ] {
        assert!(
            matches!(
                state::retain_raw(&st, &sha(9), bad),
                Err(StateError::BadRawFrame { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(state::retain_raw(&st, &sha(9), b"tag 0\0").unwrap());
}

#[test]
fn raw_bytes_publish_inside_a_shared_flush_and_skip_what_is_there() {
    let (_t, _m, st) = fresh();
    let a = Sha1::from_hex("97bf12871965f6973b29623dc9391a008653ce0c").unwrap();
    let b = Sha1::from_hex("1111111111111111111111111111111111111111").unwrap();
    let mut w = state::RawWriter::new(&st);
    assert!(!w.is_pending());
    assert!(w.retain(&a, b"commit 3\0abc").unwrap());
    assert!(w.is_pending());
    assert!(
        !state::has_raw(&st, &a).unwrap(),
        "invisible before publication"
    );
    // The caller flushed the filesystem after staging: renames are left.
    assert!(mkit_bridge::durable::sync_filesystem(&st).unwrap() || cfg!(not(target_os = "linux")));
    w.publish_within(true).unwrap();
    assert!(!w.is_pending());
    assert_eq!(
        state::read_raw(&st, &a).unwrap(),
        Some(b"commit 3\0abc".to_vec())
    );

    // Without a shared flush it is a full sync; a new writer finds `a` in
    // its (existing) fan-out directory and does not write it again.
    let mut w = state::RawWriter::new(&st);
    assert!(!w.retain(&a, b"commit 3\0abc").unwrap());
    assert!(w.retain(&b, b"tag 1\0x").unwrap());
    w.publish_within(false).unwrap();
    assert_eq!(
        state::read_raw(&st, &b).unwrap(),
        Some(b"tag 1\0x".to_vec())
    );
    for dir in ["raw/97", "raw/11"] {
        assert_eq!(
            fs::read_dir(st.join(dir)).unwrap().count(),
            1,
            "temp left in {dir}"
        );
    }
}

// --- lock ----------------------------------------------------------------------

#[test]
fn lock_contention_in_process_is_busy_within_the_timeout() {
    let (_t, mkit, _st) = fresh();
    let held = state::lock_state(&mkit, "origin", Duration::from_secs(1)).unwrap();
    assert_eq!(held.path(), mkit.join("git-origin.lock"));
    // Another remote's lock is independent.
    let other = state::lock_state(&mkit, "other", Duration::from_millis(10)).unwrap();
    let start = Instant::now();
    let err = state::lock_state(&mkit, "origin", Duration::from_millis(300)).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, StateError::Busy { .. }), "{err:?}");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert!(err.to_string().contains("busy"), "{err}");
    drop(held);
    drop(other);
    // Released: the file stays, the lock is free.
    assert!(mkit.join("git-origin.lock").exists());
    let again = state::lock_state(&mkit, "origin", Duration::from_millis(100)).unwrap();
    drop(again);
}

/// Not a test on its own: a child process that holds the lock until its
/// stdin closes, for `lock_contention_across_processes`.
#[test]
fn child_lock_holder() {
    let Some(mkit) = std::env::var_os("STATE_TEST_LOCK_MKIT") else {
        return;
    };
    let lock = state::lock_state(Path::new(&mkit), "origin", Duration::from_secs(5)).unwrap();
    println!("locked");
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(lock);
}

#[test]
fn lock_contention_across_processes() {
    let (_t, mkit, _st) = fresh();
    let mut child = reexec("child_lock_holder")
        .env("STATE_TEST_LOCK_MKIT", &mkit)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut l = String::new();
    while !l.contains("locked") {
        l.clear();
        assert!(
            out.read_line(&mut l).unwrap() > 0,
            "child exited before locking"
        );
    }
    let start = Instant::now();
    let err = state::lock_state(&mkit, "origin", Duration::from_millis(250)).unwrap_err();
    assert!(matches!(err, StateError::Busy { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    // Let the child go; the lock becomes ours within the timeout.
    drop(child.stdin.take());
    let lock = state::lock_state(&mkit, "origin", Duration::from_secs(5)).unwrap();
    assert!(child.wait().unwrap().success());
    drop(lock);
}

// --- interoperability with the reference mkit 0.5.0 ------------------------------

/// The deterministic importer seed the interop tests sign with.
const SEED: [u8; 32] = [7; 32];

fn seed_public_key() -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&SEED)
        .verifying_key()
        .to_bytes()
}

/// A git upstream from `fixtures/small-history.sh`, imported by the reference
/// into a fresh-clone mkit repository under state name `up`.
struct Imported {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    key: PathBuf,
    src: PathBuf,
    dst: PathBuf,
    bin: PathBuf,
}

impl Imported {
    fn mkit_dir(&self) -> PathBuf {
        self.dst.join(".mkit")
    }

    fn state(&self) -> PathBuf {
        state::state_dir(&self.mkit_dir(), "up").unwrap()
    }

    /// `mkit <args>` in the imported repository.
    fn mkit(&self, args: &[&str]) -> std::process::Output {
        isolated(&mut Command::new(&self.bin), &self.home)
            .current_dir(&self.dst)
            .args(args)
            .output()
            .unwrap()
    }

    /// `git -C <src> <args>`, stdout as text.
    fn git(&self, args: &[&str]) -> String {
        let out = common::run_ok(
            isolated(&mut Command::new("git"), &self.home)
                .arg("-C")
                .arg(&self.src)
                .args(args),
        );
        String::from_utf8(out).unwrap()
    }

    fn git_bytes(&self, args: &[&str]) -> Vec<u8> {
        common::run_ok(
            isolated(&mut Command::new("git"), &self.home)
                .arg("-C")
                .arg(&self.src)
                .args(args),
        )
    }
}

/// Keep the caller's configuration out of git and mkit.
fn isolated<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
}

fn import_fixture(test: &str) -> Option<Imported> {
    let bin = common::mkit_bin(test)?;
    if Command::new("git").arg("--version").output().is_err() {
        return common::skip(test, "git is not on PATH");
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let home = root.join("home");
    let keys = root.join("keys");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&keys).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).unwrap();
    let key = keys.join("import.key");
    fs::write(&key, SEED).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let src = root.join("src");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/small-history.sh");
    common::run_ok(Command::new("sh").arg(&script).arg(&src));
    let dst = root.join("dst");
    let out = isolated(&mut Command::new(&bin), &home)
        .current_dir(&root)
        .args(["git", "import"])
        .arg(&src)
        .arg(&dst)
        .args(["--remote-name", "up", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkit git import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Imported {
        _tmp: tmp,
        home,
        key,
        src,
        dst,
        bin,
    })
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn interop_reference_import_state_loads_in_ours() {
    let Some(fx) = import_fixture("interop_reference_import_state_loads_in_ours") else {
        return;
    };
    let st = fx.state();
    assert_eq!(state::list_states(&fx.mkit_dir()).unwrap(), ["up"]);

    // Stamps.
    assert_eq!(state::read_direction(&st).unwrap(), Some(Direction::Import));
    assert_eq!(
        state::read_binding(&st, Binding::Source)
            .unwrap()
            .as_deref(),
        Some(fx.src.to_str().unwrap()),
        "source holds the canonical identity: the resolved absolute path"
    );
    assert_eq!(state::read_binding(&st, Binding::Dest).unwrap(), None);
    assert_eq!(state::read_signer(&st).unwrap(), Some(seed_public_key()));
    state::bind_signer(&st, &seed_public_key()).unwrap();
    assert_eq!(state::read_import_spec(&st).unwrap(), Some(1));
    state::bind_import_spec(&st).unwrap();
    assert!(!state::read_normalized(&st).unwrap());
    assert!(!state::importing_is_set(&st).unwrap());
    assert_eq!(
        state::state_with_source(&fx.mkit_dir(), fx.src.to_str().unwrap(), None)
            .unwrap()
            .as_deref(),
        Some("up")
    );

    // The map covers every object of the upstream, and only those.
    assert!(state::map_is_intact(&st).unwrap());
    let inv = state::load_map_inverse(&st).unwrap();
    let objects: BTreeSet<Sha1> = fx
        .git(&[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ])
        .lines()
        .map(|l| Sha1::from_hex(l).unwrap())
        .collect();
    let mapped: BTreeSet<Sha1> = inv.iter().map(|(s, _)| *s).collect();
    assert_eq!(mapped, objects);
    let fwd = state::load_map(&st).unwrap();
    for (s, b) in inv.iter() {
        assert_eq!(fwd.get(b), Some(s));
    }

    // refs-import: every upstream ref, its git id, and the mkit id the map
    // and the tracking ref agree on.
    let recorded = state::load_import_ref_state(&st).unwrap();
    let upstream: Vec<(String, Sha1)> = fx
        .git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
            "refs/tags",
        ])
        .lines()
        .map(|l| {
            let (n, s) = l.split_once(' ').unwrap();
            (n.to_owned(), Sha1::from_hex(s).unwrap())
        })
        .collect();
    assert_eq!(
        recorded
            .iter()
            .map(|r| (r.name.clone(), r.git))
            .collect::<Vec<_>>(),
        upstream
    );
    for r in &recorded {
        assert_eq!(inv.get(&r.git), Some(&r.mkit), "{}", r.name);
        if let Some(branch) = r.name.strip_prefix("refs/heads/") {
            let tracking =
                fs::read_to_string(fx.mkit_dir().join("refs/remotes/up").join(branch)).unwrap();
            assert_eq!(tracking.trim(), r.mkit.to_hex(), "{}", r.name);
        }
    }

    // Raw bytes: every commit and tag, framed, under its sha1.
    let mut retained = 0;
    for line in fx
        .git(&[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ])
        .lines()
    {
        let (hex, kind) = line.split_once(' ').unwrap();
        let sha1 = Sha1::from_hex(hex).unwrap();
        if kind != "commit" && kind != "tag" {
            assert!(
                !state::has_raw(&st, &sha1).unwrap(),
                "{kind} {hex} retained"
            );
            continue;
        }
        let body = fx.git_bytes(&["cat-file", kind, hex]);
        let mut framed = format!("{kind} {}\0", body.len()).into_bytes();
        framed.extend_from_slice(&body);
        assert_eq!(state::read_raw(&st, &sha1).unwrap(), Some(framed), "{hex}");
        retained += 1;
    }
    assert_eq!(retained, 6);
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn interop_reference_status_shows_our_state() {
    let Some(bin) = common::mkit_bin("interop_reference_status_shows_our_state") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&repo).unwrap();
    common::run_ok(
        isolated(&mut Command::new(&bin), &home)
            .current_dir(&repo)
            .arg("init"),
    );
    let mkit = repo.join(".mkit");

    let exp = state::state_dir(&mkit, "exp").unwrap();
    state::bind_direction(&exp, Direction::Export).unwrap();
    state::pin_binding(&exp, Binding::Dest, "ssh://example.com/mirror").unwrap();
    state::append_map(&exp, &[(id(1), sha(0x11))]).unwrap();
    state::store_ref_state(
        &exp,
        &[
            rs("refs/heads/main", 1, 0x11),
            RefState {
                name: "refs/mkit/attestations".into(),
                mkit: Id::ZERO,
                git: sha(0x22),
            },
        ],
    )
    .unwrap();

    let imp = state::state_dir(&mkit, "imp").unwrap();
    state::bind_direction(&imp, Direction::Import).unwrap();
    state::pin_binding(&imp, Binding::Source, "/srv/upstream").unwrap();
    state::bind_signer(&imp, &seed_public_key()).unwrap();
    state::bind_import_spec(&imp).unwrap();
    state::append_map_import(&imp, &[(sha(0x33), id(3)), (sha(0x44), id(4))]).unwrap();
    state::store_import_ref_state(
        &imp,
        &[rs("refs/heads/main", 3, 0x33), rs("refs/tags/v1", 4, 0x44)],
    )
    .unwrap();

    let frk = state::state_dir(&mkit, "frk").unwrap();
    state::bind_direction(&frk, Direction::Import).unwrap();
    state::bind_direction(&frk, Direction::Fork).unwrap();
    state::pin_binding(&frk, Binding::Source, "https://example.org/up").unwrap();
    state::write_binding(&frk, Binding::Dest, "https://example.org/fork").unwrap();

    let out = common::run_ok(
        isolated(&mut Command::new(&bin), &home)
            .current_dir(&repo)
            .args(["git", "status"]),
    );
    let key16 = &Id(seed_public_key()).to_hex()[..16];
    let want = format!(
        "exp  direction=export\n\
         \x20 dest: ssh://example.com/mirror\n\
         \x20 exported refs/heads/main @ {e} (lease)\n\
         \x20 staging: missing\n\
         frk  direction=fork\n\
         \x20 source: https://example.org/up\n\
         \x20 dest: https://example.org/fork\n\
         \x20 staging: missing\n\
         imp  direction=import\n\
         \x20 source: /srv/upstream\n\
         \x20 importer key: {key16}… (pinned)\n\
         \x20 tracking refs/heads/main @ {m} (import)\n\
         \x20 tracking refs/tags/v1 @ {t} (import)\n\
         \x20 staging: missing\n",
        e = &sha(0x11).to_hex()[..12],
        m = &sha(0x33).to_hex()[..12],
        t = &sha(0x44).to_hex()[..12],
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn interop_reference_continues_from_state_we_rewrote() {
    let Some(fx) = import_fixture("interop_reference_continues_from_state_we_rewrote") else {
        return;
    };
    let st = fx.state();
    let key = fx.key.to_str().unwrap().to_owned();
    let fetch = |fx: &Imported| {
        let out = fx.mkit(&["git", "fetch", "--remote-name", "up", "--key", &key]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "mkit git fetch failed: {stderr}");
        stderr
    };

    // Rewrite the whole state through our code: the map in a different line
    // order, refs-import, and the (already equal) bindings.
    let inv = state::load_map_inverse(&st).unwrap();
    let mut pairs: Vec<(Sha1, Id)> = inv.iter().map(|(s, b)| (*s, *b)).collect();
    pairs.sort();
    fs::remove_file(st.join("map")).unwrap();
    state::append_map_import(&st, &pairs[..5]).unwrap();
    state::append_map_import(&st, &pairs[5..]).unwrap();
    let refs = state::load_import_ref_state(&st).unwrap();
    state::store_import_ref_state(&st, &refs).unwrap();
    state::bind_direction(&st, Direction::Import).unwrap();
    state::bind_signer(&st, &seed_public_key()).unwrap();
    state::bind_import_spec(&st).unwrap();
    let map_before = fs::read(st.join("map")).unwrap();

    // The reference trusts it: no rebuild, nothing re-imported.
    let stderr = fetch(&fx);
    assert!(!stderr.contains("rebuilding"), "{stderr}");
    assert_eq!(fs::read(st.join("map")).unwrap(), map_before);

    // Our crash marker is the reference's: it discards the map and rebuilds,
    // then clears the marker.
    state::set_importing(&st).unwrap();
    let stderr = fetch(&fx);
    assert!(
        stderr.contains("previous import was interrupted"),
        "{stderr}"
    );
    assert!(!state::importing_is_set(&st).unwrap());
    assert_eq!(
        state::load_map_inverse(&st).unwrap().to_hash_map(),
        inv.to_hash_map()
    );

    // A torn tail written as a crash would leave it: the reference rebuilds,
    // exactly as our map_is_intact predicts.
    fs::OpenOptions::new()
        .append(true)
        .open(st.join("map"))
        .unwrap()
        .write_all(&line(&id(9), &sha(9)).as_bytes()[..50])
        .unwrap();
    assert!(!state::map_is_intact(&st).unwrap());
    let stderr = fetch(&fx);
    assert!(stderr.contains("map cache missing or corrupt"), "{stderr}");
    assert!(state::map_is_intact(&st).unwrap());

    // New upstream history: the reference appends to the map we wrote, and
    // the result still loads whole in ours.
    fs::write(fx.src.join("NEW"), b"new\n").unwrap();
    fx.git(&["add", "NEW"]);
    let out = isolated(&mut Command::new("git"), &fx.home)
        .arg("-C")
        .arg(&fx.src)
        .args([
            "-c",
            "user.name=N",
            "-c",
            "user.email=n@example.com",
            "commit",
            "-q",
            "-m",
            "new",
        ])
        .env("GIT_AUTHOR_DATE", "1700000600 +0000")
        .env("GIT_COMMITTER_DATE", "1700000600 +0000")
        .output()
        .unwrap();
    assert!(out.status.success());
    let tip = Sha1::from_hex(fx.git(&["rev-parse", "main"]).trim()).unwrap();
    fetch(&fx);
    assert!(state::map_is_intact(&st).unwrap());
    let inv2 = state::load_map_inverse(&st).unwrap();
    assert!(inv2.contains_key(&tip));
    assert_eq!(inv2.len(), inv.len() + 3, "commit, tree and blob added");
    let main = state::load_import_ref_state(&st)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "refs/heads/main")
        .unwrap();
    assert_eq!(main.git, tip);
    assert_eq!(inv2.get(&tip), Some(&main.mkit));
    assert!(state::has_raw(&st, &tip).unwrap());
}

#[test]
#[cfg_attr(
    not(has_mkit),
    ignore = "needs the reference mkit 0.5.0 on PATH (cargo install mkit-cli --version 0.5.0 --features git-bridge); CI runs it"
)]
fn interop_our_lock_excludes_the_reference() {
    let Some(fx) = import_fixture("interop_our_lock_excludes_the_reference") else {
        return;
    };
    let key = fx.key.to_str().unwrap().to_owned();
    let held = state::lock_state(&fx.mkit_dir(), "up", Duration::from_secs(1)).unwrap();
    let start = Instant::now();
    let out = fx.mkit(&["git", "fetch", "--remote-name", "up", "--key", &key]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "fetch ran while we held the lock");
    assert!(stderr.contains("busy"), "{stderr}");
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    drop(held);
    let out = fx.mkit(&["git", "fetch", "--remote-name", "up", "--key", &key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a reference holder would exclude us the same way: it is the same
    // file and the same flock.
    assert_eq!(
        state::lock_path(&fx.mkit_dir(), "up").unwrap(),
        fx.mkit_dir().join("git-up.lock")
    );
}
