//! Object-level commands: `init`, `hash-object`, `cat-object`, `verify-object`.

use std::io::Write;
use std::path::{Path, PathBuf};

use mkit_bridge::durable::{self, IoError};
use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::content;
use mkit_bridge::mkit::object::{EntryMode, Identity, IdentityKind, Object};
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::{self, SignatureStatus};

use super::CliError;

pub fn init(out: &mut impl Write, dir: Option<PathBuf>) -> Result<(), CliError> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    durable::create_dir_all_durable(&dir)?;
    let repo = Repo::init(&dir)?;
    writeln!(
        out,
        "initialized empty mkit repository in {}",
        repo.mkit_dir().display()
    )?;
    Ok(())
}

fn parse_id(s: &str) -> Result<Id, CliError> {
    Id::from_hex(s).map_err(|source| CliError::BadId {
        id: s.to_owned(),
        source,
    })
}

pub fn hash_object(
    out: &mut impl Write,
    repo: &Path,
    files: &[PathBuf],
    write: bool,
) -> Result<(), CliError> {
    let repo = if write { Some(Repo::open(repo)?) } else { None };
    let batch = repo.as_ref().map(|r| r.store().batch());
    let mut ids = Vec::with_capacity(files.len());
    for f in files {
        let data = std::fs::read(f).map_err(|e| IoError::new("read", f, e))?;
        ids.push(match &batch {
            Some(b) => content::stage_content(b, &data)?,
            None => content::content_id(&data),
        });
    }
    if let Some(b) = batch {
        b.commit()?;
    }
    for id in ids {
        writeln!(out, "{id}")?;
    }
    Ok(())
}

pub fn cat_object(
    out: &mut impl Write,
    repo: &Path,
    id: &str,
    kind: bool,
    size: bool,
) -> Result<(), CliError> {
    let repo = Repo::open(repo)?;
    let id = parse_id(id)?;
    let obj = repo.store().read(&id)?;
    if kind {
        writeln!(out, "{}", obj.object_type().name())?;
        return Ok(());
    }
    if size {
        writeln!(out, "{}", obj.encoded_len())?;
        return Ok(());
    }
    match &obj {
        Object::Blob(b) => out.write_all(&b.data)?,
        Object::Tree(t) => {
            for e in &t.entries {
                let (mode, kind) = match e.mode {
                    EntryMode::Blob => ("blob", "file"),
                    EntryMode::Executable => ("exec", "file"),
                    EntryMode::Symlink => ("link", "file"),
                    EntryMode::Tree => ("tree", "dir"),
                };
                out.write_all(format!("{mode} {kind} {}\t", e.id).as_bytes())?;
                out.write_all(&e.name)?;
                out.write_all(b"\n")?;
            }
        }
        Object::Commit(c) => {
            writeln!(out, "tree {}", c.tree)?;
            for p in &c.parents {
                writeln!(out, "parent {p}")?;
            }
            writeln!(out, "author {}", show_identity(&c.author))?;
            writeln!(out, "timestamp {}", c.timestamp)?;
            writeln!(out, "signer {}", Id(c.signer))?;
            if !c.content_digest.is_zero() {
                writeln!(out, "content-digest {}", c.content_digest)?;
            }
            writeln!(out)?;
            out.write_all(&c.message)?;
        }
        Object::Remix(r) => {
            writeln!(out, "tree {}", r.tree)?;
            for p in &r.parents {
                writeln!(out, "parent {p}")?;
            }
            for s in &r.sources {
                writeln!(out, "source {} {}", s.upstream_id, s.commit)?;
            }
            writeln!(out, "author {}", show_identity(&r.author))?;
            writeln!(out, "timestamp {}", r.timestamp)?;
            writeln!(out, "signer {}", Id(r.signer))?;
            writeln!(out)?;
            out.write_all(&r.message)?;
        }
        Object::ChunkedBlob(c) => {
            writeln!(out, "total-size {}", c.total_size)?;
            writeln!(out, "chunk-size {}", c.chunk_size)?;
            for ch in &c.chunks {
                writeln!(out, "chunk {ch}")?;
            }
        }
        Object::Tag(t) => {
            writeln!(out, "object {}", t.target)?;
            writeln!(out, "type {}", t.target_type.name())?;
            out.write_all(b"tag ")?;
            out.write_all(&t.name)?;
            writeln!(out)?;
            writeln!(out, "tagger {}", show_identity(&t.tagger))?;
            writeln!(out, "timestamp {}", t.timestamp)?;
            writeln!(out, "signer {}", Id(t.signer))?;
            writeln!(out)?;
            out.write_all(&t.message)?;
        }
        // The store refuses deltas on read, so none reaches here.
        Object::Delta(_) => writeln!(out, "delta")?,
    }
    Ok(())
}

fn show_identity(id: &Identity) -> String {
    match id.kind {
        IdentityKind::Ed25519 => format!("ed25519:{}", mkit_bridge::hex::encode(&id.payload)),
        IdentityKind::DidKey => format!("did:key:{}", String::from_utf8_lossy(&id.payload)),
        IdentityKind::Opaque => String::from_utf8_lossy(&id.payload).into_owned(),
    }
}

pub fn verify_object(out: &mut impl Write, repo: &Path, ids: &[String]) -> Result<(), CliError> {
    let repo = Repo::open(repo)?;
    let mut bad = 0usize;
    for s in ids {
        let id = parse_id(s)?;
        let verdict = match repo.store().read(&id) {
            Err(e) => {
                bad += 1;
                format!("bad ({e})")
            }
            Ok(obj) => match sign::verify_object(&obj)? {
                None => format!("ok {} (unsigned type)", obj.object_type().name()),
                Some(SignatureStatus::Valid) => format!("ok {} signed", obj.object_type().name()),
                Some(SignatureStatus::Unsigned) => {
                    bad += 1;
                    format!("unsigned {}", obj.object_type().name())
                }
                Some(SignatureStatus::Invalid) => {
                    bad += 1;
                    format!("invalid signature on {}", obj.object_type().name())
                }
            },
        };
        writeln!(out, "{id} {verdict}")?;
    }
    if bad > 0 {
        return Err(CliError::Failed(format!(
            "{bad} of {} objects did not verify",
            ids.len()
        )));
    }
    Ok(())
}
