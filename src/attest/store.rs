//! The attestation store: `.mkit/attestations/<subject hex>/<attestation id hex>.dsse`.
//!
//! A file holds one envelope, byte for byte as minted (no trailing newline);
//! its name is the BLAKE3 of those bytes, so saving the same envelope twice
//! is a no-op and two tools that mint the same envelope write the same file.
//! Files are created with mode 0600, as the reference's temp-file-and-rename
//! writer leaves them, and crash-safely through [`crate::durable`]: a file
//! either exists whole under its final name or not at all.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use super::{AttestError, attestation_id};
use crate::durable::{self, IoError, io_err};
use crate::mkit::Id;
use crate::mkit::id::HEX_LEN;

/// The directory under `.mkit/` that holds every envelope.
pub const ATTESTATIONS_DIR: &str = "attestations";

/// The envelope file extension.
pub const FILE_EXT: &str = ".dsse";

/// The largest envelope either tool writes or reads (1 MiB).
pub const MAX_ENVELOPE_SIZE: usize = 1024 * 1024;

/// Mode of a new envelope file.
pub const ENVELOPE_FILE_MODE: u32 = 0o600;

/// The directory of `subject`'s envelopes under the `.mkit` directory.
pub fn subject_dir(mkit_dir: &Path, subject: &Id) -> PathBuf {
    mkit_dir.join(ATTESTATIONS_DIR).join(subject.to_hex())
}

/// Where the envelope `att_id` about `subject` lives.
pub fn envelope_path(mkit_dir: &Path, subject: &Id, att_id: &Id) -> PathBuf {
    subject_dir(mkit_dir, subject).join(format!("{att_id}{FILE_EXT}"))
}

/// Store `envelope` as an attestation about `subject`, durably; returns its
/// attestation id and path. An envelope already stored is left as it is.
pub fn save(mkit_dir: &Path, subject: &Id, envelope: &[u8]) -> Result<(Id, PathBuf), AttestError> {
    let (att_id, path) = place(mkit_dir, subject, envelope)?;
    if path.is_file() {
        return Ok((att_id, path));
    }
    durable::create_dir_all_durable(durable::parent_or_dot(&path))?;
    durable::write_new(&path, envelope, ENVELOPE_FILE_MODE)?;
    Ok((att_id, path))
}

/// [`save`] for many envelopes, `(subject, envelope)` pairs, sharing the
/// durability points instead of flushing each file and directory: every new
/// envelope is written under a temp name, one flush makes them all durable,
/// each is linked into place (never replacing a file), and one more flush
/// makes the links and any new directory durable (where the filesystem has
/// no filesystem-wide flush, each file and directory is flushed instead).
/// An import of ripgrep attests 288 heads: three fsyncs each before. Returns
/// each envelope's attestation id and path, in order. On an error the temps
/// are removed; envelopes already linked stay (each is whole and durable).
pub fn save_all(
    mkit_dir: &Path,
    envelopes: &[(Id, Vec<u8>)],
) -> Result<Vec<(Id, PathBuf)>, AttestError> {
    let mut saved = Vec::with_capacity(envelopes.len());
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut pending = std::collections::HashSet::new();
    let mut dirs = std::collections::BTreeSet::new();
    let result = (|| -> Result<(), AttestError> {
        for (subject, envelope) in envelopes {
            let (att_id, path) = place(mkit_dir, subject, envelope)?;
            saved.push((att_id, path.clone()));
            if pending.contains(&path) || path.is_file() {
                continue;
            }
            let dir = durable::parent_or_dot(&path).to_path_buf();
            make_dir(&dir, &mut dirs)?;
            let (mut file, tmp) = durable::create_temp(&path, ENVELOPE_FILE_MODE)?;
            pending.insert(path.clone());
            staged.push((tmp.clone(), path));
            dirs.insert(dir);
            durable::fault::check()
                .and_then(|()| std::io::Write::write_all(&mut file, envelope))
                .map_err(io_err("write", &tmp))?;
        }
        if staged.is_empty() {
            return Ok(());
        }
        durable::flush_files(mkit_dir, staged.iter().map(|(tmp, _)| tmp.as_path()))?;
        for (tmp, path) in &staged {
            match fs::hard_link(tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(IoError::new("link into place", path, e).into()),
            }
        }
        durable::flush_dirs(mkit_dir, dirs.iter().map(PathBuf::as_path))?;
        Ok(())
    })();
    for (tmp, _) in &staged {
        let _ = fs::remove_file(tmp);
    }
    result.map(|()| saved)
}

/// The attestation id of `envelope` and where it goes; refused when it is
/// over the size cap.
fn place(mkit_dir: &Path, subject: &Id, envelope: &[u8]) -> Result<(Id, PathBuf), AttestError> {
    let att_id = attestation_id(envelope);
    let path = envelope_path(mkit_dir, subject, &att_id);
    if envelope.len() > MAX_ENVELOPE_SIZE {
        return Err(AttestError::TooLarge {
            path: path.display().to_string(),
            len: envelope.len() as u64,
            max: MAX_ENVELOPE_SIZE,
        });
    }
    Ok((att_id, path))
}

/// Create `dir` and any missing parent, recording in `dirs` each directory
/// that gained an entry (made durable by the caller's last flush).
fn make_dir(dir: &Path, dirs: &mut std::collections::BTreeSet<PathBuf>) -> Result<(), IoError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = durable::parent_or_dot(dir);
    make_dir(parent, dirs)?;
    match fs::create_dir(dir) {
        Ok(()) => {
            dirs.insert(parent.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(IoError::new("create directory", dir, e)),
    }
}

/// Every envelope stored about `subject`, sorted by attestation id; empty
/// when there is none. Files whose name is not `<64 hex>.dsse` are ignored
/// (temp files, strays); an envelope over the size cap is an error.
pub fn list(mkit_dir: &Path, subject: &Id) -> Result<Vec<(Id, Vec<u8>)>, AttestError> {
    let dir = subject_dir(mkit_dir, subject);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoError::new("list attestations in", dir, e).into()),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list attestations in", &dir))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(parse_file_name) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        found.push((id, entry.path()));
    }
    found.sort_by_key(|(id, _)| *id);
    found
        .into_iter()
        .map(|(id, path)| read_capped(&path).map(|bytes| (id, bytes)))
        .collect()
}

/// The attestation id a file name `<64 hex>.dsse` stands for.
pub fn parse_file_name(name: &str) -> Option<Id> {
    let stem = name.strip_suffix(FILE_EXT)?;
    if stem.len() != HEX_LEN {
        return None;
    }
    Id::from_hex(stem).ok()
}

/// Read an envelope file, refusing one over [`MAX_ENVELOPE_SIZE`] without
/// reading it all.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, AttestError> {
    let file = fs::File::open(path).map_err(io_err("open attestation", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_ENVELOPE_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read attestation", path))?;
    if bytes.len() > MAX_ENVELOPE_SIZE {
        let len = fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(AttestError::TooLarge {
            path: path.display().to_string(),
            len,
            max: MAX_ENVELOPE_SIZE,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_is_idempotent_and_list_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let subject = Id([7; 32]);
        let mut ids = Vec::new();
        for i in 0..4u8 {
            let bytes = vec![b'a' + i; 10];
            let (id, path) = save(dir.path(), &subject, &bytes).unwrap();
            assert_eq!(id, attestation_id(&bytes));
            assert_eq!(fs::read(&path).unwrap(), bytes);
            assert_eq!(save(dir.path(), &subject, &bytes).unwrap().0, id);
            ids.push(id);
        }
        ids.sort();
        fs::write(subject_dir(dir.path(), &subject).join("notes.txt"), b"x").unwrap();
        fs::write(subject_dir(dir.path(), &subject).join("ab.dsse"), b"x").unwrap();
        let listed: Vec<Id> = list(dir.path(), &subject)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(listed, ids);
        assert!(list(dir.path(), &Id([8; 32])).unwrap().is_empty());
    }

    #[test]
    fn save_all_writes_what_save_writes_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt as _;
        let (one, all) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (s1, s2) = (Id([1; 32]), Id([2; 32]));
        let items = vec![
            (s1, b"first".to_vec()),
            (s2, b"second".to_vec()),
            // The same envelope twice, and one saved before the batch.
            (s1, b"first".to_vec()),
            (s2, b"earlier".to_vec()),
        ];
        save(all.path(), &s2, b"earlier").unwrap();
        let saved = save_all(all.path(), &items).unwrap();
        for ((subject, envelope), (id, path)) in items.iter().zip(&saved) {
            assert_eq!(
                (id, path),
                (&save(one.path(), subject, envelope).unwrap().0, path)
            );
            assert_eq!(path, &envelope_path(all.path(), subject, id));
            assert_eq!(fs::read(path).unwrap(), *envelope);
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, ENVELOPE_FILE_MODE);
        }
        // Byte for byte the tree one `save` at a time makes: no temp left.
        let tree = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
            let mut out = Vec::new();
            for subject in [s1, s2] {
                for e in fs::read_dir(subject_dir(root, &subject)).unwrap() {
                    let p = e.unwrap().path();
                    out.push((
                        p.strip_prefix(root).unwrap().to_owned(),
                        fs::read(&p).unwrap(),
                    ));
                }
            }
            out.sort();
            out
        };
        assert_eq!(tree(all.path()), tree(one.path()));
        assert_eq!(tree(all.path()).len(), 3);
        // Too large: refused, nothing left behind.
        let big = vec![(Id([3; 32]), vec![b'x'; MAX_ENVELOPE_SIZE + 1])];
        assert!(matches!(
            save_all(all.path(), &big),
            Err(AttestError::TooLarge { .. })
        ));
        assert!(!subject_dir(all.path(), &Id([3; 32])).exists());
    }

    #[test]
    fn oversized_envelopes_are_refused_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let subject = Id([9; 32]);
        let big = vec![b'x'; MAX_ENVELOPE_SIZE + 1];
        assert!(matches!(
            save(dir.path(), &subject, &big),
            Err(AttestError::TooLarge { .. })
        ));
        let id = attestation_id(&big);
        fs::create_dir_all(subject_dir(dir.path(), &subject)).unwrap();
        fs::write(envelope_path(dir.path(), &subject, &id), &big).unwrap();
        assert!(matches!(
            list(dir.path(), &subject),
            Err(AttestError::TooLarge { .. })
        ));
    }
}
