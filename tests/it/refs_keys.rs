//! Refs, `HEAD` and key files: behaviour, and agreement with the reference
//! (`mkit_core::refs`, `mkit_core::sign`, `mkit_core::repo_lock`) in both
//! directions on the same directories.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::keys::{self, KeyError};
use mkit_bridge::mkit::refs::{self, Head, RefCondition, RefError};
use mkit_core::layout::RepoLayout;
use mkit_core::refs as core_refs;

/// A fresh worktree root with an empty `.mkit`; returns (tempdir, layout, mkit dir).
fn repo() -> (tempfile::TempDir, RepoLayout, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = RepoLayout::single(tmp.path());
    let mkit_dir = layout.common_dir().to_path_buf();
    fs::create_dir_all(&mkit_dir).unwrap();
    (tmp, layout, mkit_dir)
}

fn id(seed: &str) -> Id {
    Id(*blake3::hash(seed.as_bytes()).as_bytes())
}

// ---------------------------------------------------------------------------
// Ref names
// ---------------------------------------------------------------------------

const VALID: &[&str] = &[
    "main",
    "feat/v1.0-beta",
    "release/2024_09",
    "refs/heads/a.b",
    "refs/remotes/origin/topic",
    "UPPER/lower-09",
    "a.lockx",
    "HEADS",
];

const INVALID: &[&str] = &[
    "feat/..",
    "/main",
    "main@v1",
    "feat\\branch",
    ".hidden",
    "",
    "a//b",
    "a/",
    "x.lock",
    "refs/heads/x.lock/y",
    "refs/heads/HEAD",
    "HEAD",
    "v1.0+build",
    "with space",
    "nul\0byte",
    "caf\u{e9}",
    "feat/./topic",
    "a:b",
    "a~1",
];

#[test]
fn grammar_table_matches_spec_and_reference() {
    for name in VALID {
        assert!(refs::is_valid_ref_name(name), "{name:?} should be valid");
        assert!(
            core_refs::validate_ref_name(name),
            "reference disagrees on {name:?}"
        );
    }
    for name in INVALID {
        assert!(
            matches!(
                refs::validate_ref_name(name),
                Err(RefError::InvalidName { .. })
            ),
            "{name:?} should be invalid"
        );
        assert!(
            !core_refs::validate_ref_name(name),
            "reference disagrees on {name:?}"
        );
    }
}

#[test]
fn name_length_bound_matches_reference() {
    for len in [511, 512, 513] {
        // Segments of 100 bytes joined by '/', padded to exactly `len` bytes.
        let mut name = String::new();
        while name.len() < len {
            if !name.is_empty() {
                name.push('/');
            }
            let n = (len - name.len()).min(100);
            name.push_str(&"n".repeat(n));
        }
        assert_eq!(name.len(), len);
        assert_eq!(
            refs::is_valid_ref_name(&name),
            core_refs::validate_ref_name(&name),
            "len {len}"
        );
        assert_eq!(
            refs::is_valid_ref_name(&name),
            len <= refs::MAX_REF_NAME_BYTES
        );
    }
}

// ---------------------------------------------------------------------------
// Wire forms
// ---------------------------------------------------------------------------

#[test]
fn ref_value_wire_matches_reference() {
    // SPEC-REFS §7 vector 1: BLAKE3("test-ref") as a 65-byte line.
    let value = id("test-ref");
    let wire = refs::encode_ref_value(&value);
    assert_eq!(wire.len(), 65);
    assert_eq!(wire, core_refs::encode_ref_wire(&value.0));
    assert_eq!(&wire[..64], value.to_hex().as_bytes());
    assert_eq!(wire[64], b'\n');
    assert_eq!(refs::decode_ref_value(&wire), Some(value));

    let hex = value.to_hex();
    let cases: Vec<Vec<u8>> = vec![
        format!("{hex}\n").into(),
        hex.clone().into(),
        format!("{hex}\r\n").into(),
        format!("{hex} \t \n\n").into(),
        format!(" {hex}\n").into(),
        format!("{}\n", hex.to_uppercase()).into(),
        format!("{}\n", &hex[..63]).into(),
        format!("{hex}0\n").into(),
        format!("{hex}\nx").into(),
        format!("{hex}\x0b").into(),
        b"".to_vec(),
        [hex.as_bytes(), b"\xff"].concat(),
    ];
    for case in cases {
        assert_eq!(
            refs::decode_ref_value(&case).map(|i| i.0),
            core_refs::decode_ref_wire(&case),
            "{:?}",
            String::from_utf8_lossy(&case)
        );
    }
}

#[test]
fn uppercase_ref_file_is_refused_by_both() {
    let (_tmp, layout, dir) = repo();
    let path = dir.join("refs/heads/main");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, format!("{}\n", id("x").to_hex().to_uppercase())).unwrap();
    assert!(matches!(
        refs::read_ref(&dir, "refs/heads/main"),
        Err(RefError::InvalidValue { .. })
    ));
    assert!(matches!(
        core_refs::read_ref(&layout, "main"),
        Err(core_refs::RefError::InvalidRef(_))
    ));
}

// ---------------------------------------------------------------------------
// Compare-and-swap
// ---------------------------------------------------------------------------

#[test]
fn cas_missing_any_and_match() {
    let (_tmp, _layout, dir) = repo();
    let name = "refs/heads/feature/x";
    let (a, b, c) = (id("a"), id("b"), id("c"));

    refs::write_ref(&dir, name, &a, RefCondition::Missing).unwrap();
    assert_eq!(
        fs::read(dir.join(name)).unwrap(),
        refs::encode_ref_value(&a)
    );
    match refs::write_ref(&dir, name, &b, RefCondition::Missing) {
        Err(RefError::Conflict {
            expected: None,
            found: Some(found),
            ..
        }) => assert_eq!(found, a),
        other => panic!("second Missing: {other:?}"),
    }
    match refs::write_ref(&dir, name, &b, RefCondition::Match(c)) {
        Err(RefError::Conflict {
            expected: Some(e),
            found: Some(f),
            ..
        }) => {
            assert_eq!((e, f), (c, a));
        }
        other => panic!("wrong Match: {other:?}"),
    }
    assert_eq!(refs::read_ref(&dir, name).unwrap(), Some(a));

    refs::write_ref(&dir, name, &b, RefCondition::Match(a)).unwrap();
    assert_eq!(refs::read_ref(&dir, name).unwrap(), Some(b));
    refs::write_ref(&dir, name, &c, RefCondition::Any).unwrap();
    assert_eq!(refs::read_ref(&dir, name).unwrap(), Some(c));

    // Match on an absent ref conflicts and creates nothing.
    let absent = "refs/heads/absent";
    assert!(matches!(
        refs::write_ref(&dir, absent, &a, RefCondition::Match(a)),
        Err(RefError::Conflict { found: None, .. })
    ));
    assert_eq!(refs::read_ref(&dir, absent).unwrap(), None);

    // Nothing but the refs and the lock files: no temp files left behind.
    let leftovers: Vec<_> = fs::read_dir(dir.join("refs/heads/feature"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("x")]);
}

#[test]
fn cas_error_message_names_ref_and_values() {
    let (_tmp, _layout, dir) = repo();
    refs::write_ref(&dir, "refs/heads/main", &id("a"), RefCondition::Any).unwrap();
    let msg = refs::write_ref(&dir, "refs/heads/main", &id("b"), RefCondition::Missing)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("refs/heads/main") && msg.contains(&id("a").to_hex()),
        "{msg}"
    );
}

/// `racers` writers race `Match(base)` from the same start, `rounds` times;
/// each round exactly one must win and the ref must hold the winner's value.
fn race<F>(rounds: usize, racers: usize, write: F)
where
    F: Fn(usize, &Path, Id, Id) -> bool + Send + Sync + 'static,
{
    let (_tmp, _layout, dir) = repo();
    let write = Arc::new(write);
    for round in 0..rounds {
        let base = id(&format!("base {round}"));
        refs::write_ref(&dir, "refs/heads/main", &base, RefCondition::Any).unwrap();
        let barrier = Arc::new(Barrier::new(racers));
        let handles: Vec<_> = (0..racers)
            .map(|r| {
                let (dir, barrier, write) = (dir.clone(), barrier.clone(), write.clone());
                thread::spawn(move || {
                    let new = id(&format!("round {round} racer {r}"));
                    barrier.wait();
                    write(r, &dir, base, new).then_some(new)
                })
            })
            .collect();
        let winners: Vec<Id> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        assert_eq!(
            refs::read_ref(&dir, "refs/heads/main").unwrap(),
            Some(winners[0])
        );
    }
}

fn ours(dir: &Path, base: Id, new: Id) -> bool {
    match refs::write_ref(dir, "refs/heads/main", &new, RefCondition::Match(base)) {
        Ok(()) => true,
        Err(RefError::Conflict { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

fn theirs(dir: &Path, base: Id, new: Id) -> bool {
    let layout = RepoLayout::single(dir.parent().unwrap());
    match core_refs::update_ref(
        &layout,
        "main",
        core_refs::RefWriteCondition::Match(base.0),
        &new.0,
    ) {
        Ok(()) => true,
        Err(core_refs::RefError::Conflict(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn match_race_between_threads_has_one_winner() {
    race(40, 4, |_, dir, base, new| ours(dir, base, new));
}

#[test]
fn match_race_against_reference_has_one_winner() {
    race(40, 4, |r, dir, base, new| {
        if r % 2 == 0 {
            ours(dir, base, new)
        } else {
            theirs(dir, base, new)
        }
    });
}

/// Child side of [`match_race_between_processes_has_one_winner`]: does
/// nothing unless the parent set the environment.
#[test]
fn cas_child_process() {
    let Ok(dir) = std::env::var("REFS_KEYS_CAS_DIR") else {
        return;
    };
    let base = Id::from_hex(&std::env::var("REFS_KEYS_CAS_BASE").unwrap()).unwrap();
    let new = Id::from_hex(&std::env::var("REFS_KEYS_CAS_NEW").unwrap()).unwrap();
    let go = PathBuf::from(std::env::var("REFS_KEYS_CAS_GO").unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !go.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    let won = ours(Path::new(&dir), base, new);
    fs::write(
        Path::new(&dir).join(format!("result-{}", new.to_hex())),
        if won { "won" } else { "lost" },
    )
    .unwrap();
}

#[test]
fn match_race_between_processes_has_one_winner() {
    let exe = std::env::current_exe().unwrap();
    let (_tmp, _layout, dir) = repo();
    for round in 0..4 {
        let base = id(&format!("p base {round}"));
        refs::write_ref(&dir, "refs/heads/main", &base, RefCondition::Any).unwrap();
        let go = dir.join(format!("go-{round}"));
        let news: Vec<Id> = (0..3).map(|r| id(&format!("p {round} {r}"))).collect();
        let children: Vec<_> = news
            .iter()
            .map(|new| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "refs_keys::cas_child_process",
                        "--test-threads=1",
                    ])
                    .env("REFS_KEYS_CAS_DIR", &dir)
                    .env("REFS_KEYS_CAS_BASE", base.to_hex())
                    .env("REFS_KEYS_CAS_NEW", new.to_hex())
                    .env("REFS_KEYS_CAS_GO", &go)
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        thread::sleep(Duration::from_millis(100));
        fs::write(&go, b"").unwrap();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let winners: Vec<Id> = news
            .iter()
            .copied()
            .filter(|new| {
                fs::read_to_string(dir.join(format!("result-{}", new.to_hex()))).unwrap() == "won"
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(
            refs::read_ref(&dir, "refs/heads/main").unwrap(),
            Some(winners[0])
        );
    }
}

#[test]
fn lock_file_is_the_one_the_reference_takes() {
    let (_tmp, layout, dir) = repo();
    let name = "refs/heads/main";
    let lock_name = format!("refs-{}.lock", blake3::hash(name.as_bytes()).to_hex());
    assert_eq!(refs::ref_lock_path(&dir, name), dir.join(&lock_name));

    // The reference holds it: we time out.
    let held = mkit_core::repo_lock::acquire(&dir, &lock_name, Duration::from_secs(1)).unwrap();
    assert!(matches!(
        refs::lock_ref_with_timeout(&dir, name, Duration::from_millis(50)),
        Err(RefError::LockTimeout { .. })
    ));
    drop(held);

    // We hold it: the reference's update waits until we let go.
    let ours = refs::lock_ref(&dir, name).unwrap();
    let start = Instant::now();
    let writer = thread::spawn(move || {
        core_refs::update_ref(
            &layout,
            "main",
            core_refs::RefWriteCondition::Any,
            &id("r").0,
        )
        .unwrap();
        start.elapsed()
    });
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        refs::read_ref(&dir, name).unwrap(),
        None,
        "reference wrote while we held the lock"
    );
    drop(ours);
    assert!(writer.join().unwrap() >= Duration::from_millis(300));
    assert_eq!(refs::read_ref(&dir, name).unwrap(), Some(id("r")));
}

// ---------------------------------------------------------------------------
// Cross-reads with the reference
// ---------------------------------------------------------------------------

#[test]
fn refs_written_by_either_side_read_on_the_other() {
    let (_tmp, layout, dir) = repo();
    refs::write_ref(&dir, "refs/heads/main", &id("m"), RefCondition::Missing).unwrap();
    refs::write_ref(
        &dir,
        "refs/heads/feat/v1.0-beta",
        &id("f"),
        RefCondition::Any,
    )
    .unwrap();
    refs::write_ref(&dir, "refs/tags/v1", &id("t"), RefCondition::Any).unwrap();
    assert_eq!(
        core_refs::read_ref(&layout, "main").unwrap(),
        Some(id("m").0)
    );
    assert_eq!(
        core_refs::read_ref(&layout, "feat/v1.0-beta").unwrap(),
        Some(id("f").0)
    );
    assert_eq!(core_refs::read_tag(&layout, "v1").unwrap(), Some(id("t").0));
    // The reference's CAS accepts what we wrote as the current value.
    core_refs::update_ref(
        &layout,
        "main",
        core_refs::RefWriteCondition::Match(id("m").0),
        &id("m2").0,
    )
    .unwrap();
    assert_eq!(
        refs::read_ref(&dir, "refs/heads/main").unwrap(),
        Some(id("m2"))
    );

    core_refs::write_ref(&layout, "release/2024_09", &id("r").0).unwrap();
    core_refs::write_tag(&layout, "v2", &id("t2").0).unwrap();
    core_refs::write_remote_ref(&layout, "default", "main", &id("rm").0).unwrap();
    assert_eq!(
        refs::read_ref(&dir, "refs/heads/release/2024_09").unwrap(),
        Some(id("r"))
    );
    assert_eq!(
        refs::read_ref(&dir, "refs/tags/v2").unwrap(),
        Some(id("t2"))
    );
    assert_eq!(
        refs::read_ref(&dir, "refs/remotes/default/main").unwrap(),
        Some(id("rm"))
    );
    refs::write_ref(
        &dir,
        "refs/heads/release/2024_09",
        &id("r2"),
        RefCondition::Match(id("r")),
    )
    .unwrap();
    assert_eq!(
        core_refs::read_ref(&layout, "release/2024_09").unwrap(),
        Some(id("r2").0)
    );

    // Our byte form is exactly what the reference writes.
    assert_eq!(
        fs::read(dir.join("refs/heads/main")).unwrap(),
        refs::encode_ref_value(&id("m2"))
    );
}

#[test]
fn head_both_forms_round_trip_with_reference() {
    let (_tmp, layout, dir) = repo();
    assert_eq!(refs::read_head(&dir).unwrap(), None);

    let branch = Head::Symbolic("refs/heads/feat/x".to_owned());
    refs::write_head(&dir, &branch).unwrap();
    assert_eq!(
        fs::read(dir.join("HEAD")).unwrap(),
        b"ref: refs/heads/feat/x\n"
    );
    assert_eq!(refs::read_head(&dir).unwrap(), Some(branch));
    assert_eq!(
        core_refs::read_head(&layout).unwrap(),
        core_refs::Head::Branch("feat/x".to_owned())
    );
    assert_eq!(refs::resolve_head(&dir).unwrap(), None);
    refs::write_ref(&dir, "refs/heads/feat/x", &id("tip"), RefCondition::Any).unwrap();
    assert_eq!(refs::resolve_head(&dir).unwrap(), Some(id("tip")));

    let detached = Head::Detached(id("d"));
    refs::write_head(&dir, &detached).unwrap();
    assert_eq!(
        fs::read(dir.join("HEAD")).unwrap(),
        refs::encode_ref_value(&id("d"))
    );
    assert_eq!(
        core_refs::read_head(&layout).unwrap(),
        core_refs::Head::Detached(id("d").0)
    );

    core_refs::write_head_branch(&layout, "main").unwrap();
    assert_eq!(
        refs::read_head(&dir).unwrap(),
        Some(Head::Symbolic("refs/heads/main".into()))
    );
    core_refs::write_head_detached(&layout, &id("e").0).unwrap();
    assert_eq!(
        refs::read_head(&dir).unwrap(),
        Some(Head::Detached(id("e")))
    );

    // Tolerated and refused HEAD contents agree with the reference.
    for (bytes, ok) in [
        (b"ref: refs/heads/main\r\n".to_vec(), true),
        (b"ref: refs/heads/main \t".to_vec(), true),
        (b"ref: refs/tags/v1\n".to_vec(), false),
        (b"ref: refs/heads/a..b/.x\n".to_vec(), false),
        (b"ref:refs/heads/main\n".to_vec(), false),
        (
            format!("{}\n", id("u").to_hex().to_uppercase()).into_bytes(),
            false,
        ),
        (vec![b' '; 5000], false),
    ] {
        fs::write(dir.join("HEAD"), &bytes).unwrap();
        let our = refs::read_head(&dir);
        assert_eq!(
            our.is_ok(),
            ok,
            "{:?}: {our:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(core_refs::read_head(&layout).is_ok(), ok);
        if !ok {
            assert!(matches!(our, Err(RefError::InvalidHead { .. })));
        }
    }

    // HEAD only points at branches.
    for bad in ["refs/tags/v1", "main", "refs/heads/x.lock"] {
        assert!(matches!(
            refs::write_head(&dir, &Head::Symbolic(bad.into())),
            Err(RefError::InvalidName { .. })
        ));
    }
}

#[test]
fn list_is_sorted_filtered_and_agrees_with_reference() {
    let (_tmp, layout, dir) = repo();
    for name in ["b", "a/c", "a-b", "A", "feat/x", "featx", "feature"] {
        refs::write_ref(
            &dir,
            &format!("refs/heads/{name}"),
            &id(name),
            RefCondition::Any,
        )
        .unwrap();
    }
    refs::write_ref(&dir, "refs/tags/v1", &id("v1"), RefCondition::Any).unwrap();
    let heads = dir.join("refs/heads");
    fs::write(heads.join(".hidden"), refs::encode_ref_value(&id("h"))).unwrap();
    fs::write(heads.join("bad@name"), refs::encode_ref_value(&id("h"))).unwrap();
    fs::write(heads.join("x.lock"), refs::encode_ref_value(&id("h"))).unwrap();
    fs::write(heads.join("corrupt"), b"not a ref\n").unwrap();
    fs::write(heads.join("upper"), id("u").to_hex().to_uppercase()).unwrap();
    symlink(heads.join("b"), heads.join("link")).unwrap();

    let listed = refs::list_refs(&dir, "refs/heads").unwrap();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "refs/heads/A",
            "refs/heads/a-b",
            "refs/heads/a/c",
            "refs/heads/b",
            "refs/heads/feat/x",
            "refs/heads/feature",
            "refs/heads/featx",
        ]
    );
    assert!(
        listed
            .iter()
            .all(|(n, i)| *i == id(&n["refs/heads/".len()..]))
    );
    assert_eq!(refs::list_refs(&dir, "refs/heads/").unwrap(), listed);

    // The reference lists the same valid refs (it keeps corrupt ones with no hash).
    let theirs: Vec<(String, Id)> = core_refs::list_refs(&layout)
        .unwrap()
        .into_iter()
        .filter_map(|r| Some((format!("refs/heads/{}", r.name), Id(r.hash?))))
        .collect();
    assert_eq!(theirs, listed);

    // Whole-segment prefixes; everything under refs/ when empty.
    let feat: Vec<String> = refs::list_refs(&dir, "refs/heads/feat")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(feat, ["refs/heads/feat/x"]);
    assert!(refs::list_refs(&dir, "refs/heads/b").unwrap().is_empty());
    assert!(refs::list_refs(&dir, "refs/nothing").unwrap().is_empty());
    let all = refs::list_refs(&dir, "").unwrap();
    assert_eq!(all.len(), listed.len() + 1);
    assert_eq!(all.last().unwrap().0, "refs/tags/v1");
    assert!(matches!(
        refs::list_refs(&dir, "refs/../x"),
        Err(RefError::InvalidName { .. })
    ));
}

#[test]
fn list_stops_below_the_depth_cap() {
    let (_tmp, _layout, dir) = repo();
    let shallow = format!("refs/heads/{}", ["d"; 10].join("/"));
    let deep = format!("refs/heads/{}", ["e"; 40].join("/") + "/leaf");
    refs::write_ref(&dir, &shallow, &id("s"), RefCondition::Any).unwrap();
    refs::write_ref(&dir, &deep, &id("d"), RefCondition::Any).unwrap();
    let names: Vec<String> = refs::list_refs(&dir, "refs/heads")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, [shallow]);
    // Still readable by name.
    assert_eq!(refs::read_ref(&dir, &deep).unwrap(), Some(id("d")));
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

fn key_path(tmp: &tempfile::TempDir) -> PathBuf {
    keys::default_key_path(&tmp.path().join(".mkit"))
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn key_round_trips_with_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    assert!(path.ends_with(".mkit/keys/default.key"));
    let seed = keys::generate_seed().unwrap();
    keys::save_seed(&path, &seed).unwrap();
    assert_eq!(keys::load_seed(&path).unwrap(), seed);
    assert_eq!(*mkit_core::sign::load_raw_32(&path).unwrap(), seed);
    assert_eq!(fs::read(&path).unwrap(), seed);

    // Replacing works and the reference's own save loads here.
    let other = [0x5a; 32];
    mkit_core::sign::save_raw_32(&path, &other).unwrap();
    assert_eq!(keys::load_seed(&path).unwrap(), other);
    keys::save_seed(&path, &seed).unwrap();
    assert_eq!(*mkit_core::sign::load_raw_32(&path).unwrap(), seed);
}

#[test]
fn create_seed_new_never_clobbers() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    assert!(keys::create_seed_new(&path).unwrap());
    let first = keys::load_seed(&path).unwrap();
    assert!(!keys::create_seed_new(&path).unwrap());
    assert!(!keys::save_seed_new(&path, &[9; 32]).unwrap());
    assert_eq!(keys::load_seed(&path).unwrap(), first);
    assert_eq!(*mkit_core::sign::load_raw_32(&path).unwrap(), first);
    // The reference's no-clobber save agrees.
    assert!(!mkit_core::sign::save_raw_32_create_new(&path, &[9; 32]).unwrap());

    // A dangling symlink at the path is not replaced either.
    let dangling = path.with_file_name("dangling.key");
    symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    assert!(!keys::save_seed_new(&dangling, &[1; 32]).unwrap());
    assert!(
        fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!tmp.path().join("nowhere").exists());

    let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 2, "only default.key and the symlink");
}

#[test]
fn loose_file_mode_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    keys::save_seed(&path, &[1; 32]).unwrap();
    chmod(&path, 0o644);
    let err = keys::load_seed(&path).unwrap_err();
    assert!(
        matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("chmod 600 {}", path.display())),
        "{err}"
    );
    assert!(mkit_core::sign::load_raw_32(&path).is_err());
    chmod(&path, 0o640);
    assert!(matches!(
        keys::load_seed(&path),
        Err(KeyError::InsecurePermissions { .. })
    ));
    chmod(&path, 0o400);
    assert_eq!(keys::load_seed(&path).unwrap(), [1; 32]);
}

#[test]
fn loose_dir_mode_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    keys::save_seed(&path, &[1; 32]).unwrap();
    let dir = path.parent().unwrap();
    chmod(dir, 0o755);
    let err = keys::load_seed(&path).unwrap_err();
    assert!(
        matches!(err, KeyError::InsecureDir { mode: 0o755, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("chmod 700 {}", dir.display())),
        "{err}"
    );
    assert!(mkit_core::sign::load_raw_32(&path).is_err());
}

#[test]
fn symlinked_key_or_ancestor_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    keys::save_seed(&path, &[1; 32]).unwrap();

    let link = path.with_file_name("link.key");
    symlink(&path, &link).unwrap();
    assert!(matches!(
        keys::load_seed(&link),
        Err(KeyError::Symlink { .. })
    ));
    assert!(mkit_core::sign::load_raw_32(&link).is_err());

    // A symlinked directory one, two or three levels up is refused by both;
    // four levels up is outside the checked range for both.
    let real = tmp.path().join(".mkit/keys");
    let cases = [
        ("default.key", true),
        ("keys/default.key", true),
        ("x/keys/default.key", true),
        ("x/y/keys/default.key", false),
    ];
    for (i, (below, refused)) in cases.into_iter().enumerate() {
        let target = if i == 0 {
            real.clone()
        } else {
            tmp.path().join(format!("real{i}"))
        };
        let linked = tmp.path().join(format!("linked{i}"));
        symlink(&target, &linked).unwrap();
        let key = linked.join(below);
        if i > 0 {
            keys::save_seed(&target.join(below), &[2; 32]).unwrap();
        }
        let ours = keys::load_seed(&key);
        let theirs = mkit_core::sign::load_raw_32(&key);
        if refused {
            match ours {
                Err(KeyError::Symlink { link, .. }) => assert_eq!(link, linked, "{below}"),
                other => panic!("{below}: {other:?}"),
            }
            assert!(theirs.is_err(), "{below}");
            // Saving through a symlinked directory is refused too.
            assert!(matches!(
                keys::save_seed(&key, &[3; 32]),
                Err(KeyError::Symlink { .. })
            ));
        } else {
            assert!(ours.is_ok() && theirs.is_ok(), "{below}: {ours:?}");
        }
    }
}

#[test]
fn wrong_sizes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    keys::save_seed(&path, &[1; 32]).unwrap();
    for len in [0usize, 31, 33, 64] {
        fs::write(&path, vec![7u8; len]).unwrap();
        match keys::load_seed(&path) {
            Err(KeyError::WrongSize { len: got, .. }) => assert_eq!(got, len as u64),
            other => panic!("{len} bytes: {other:?}"),
        }
        assert!(mkit_core::sign::load_raw_32(&path).is_err());
    }
}

#[test]
fn missing_directory_and_foreign_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(&tmp);
    assert!(matches!(
        keys::load_seed(&path),
        Err(KeyError::Missing { .. })
    ));

    fs::create_dir_all(&path).unwrap();
    chmod(&path, 0o700);
    chmod(path.parent().unwrap(), 0o700);
    assert!(matches!(
        keys::load_seed(&path),
        Err(KeyError::NotAFile { .. })
    ));
    fs::remove_dir(&path).unwrap();

    keys::save_seed(&path, &[1; 32]).unwrap();
    // Only root can give a file away; elsewhere this part is vacuous.
    if std::os::unix::fs::chown(&path, Some(4242), None).is_ok() {
        match keys::load_seed(&path) {
            Err(KeyError::ForeignOwner { owner: 4242, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(mkit_core::sign::load_raw_32(&path).is_err());
    } else {
        eprintln!("foreign-owner check skipped: chown needs root");
    }
}
