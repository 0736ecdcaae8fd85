//! Object encoding: values to the exact bytes of SPEC-OBJECTS.
//!
//! The encoder knows an object's size before it writes, so callers can
//! reserve once and hash or store the result without reallocation. It refuses
//! to encode a value a conforming reader would refuse (a bad entry name, an
//! unsorted tree, an invalid identity, a tag targeting a delta...), so every
//! byte string it produces decodes back to the same value.

use crate::mkit::object::{
    Commit, Delta, Identity, MAGIC, Object, ObjectError, ObjectType, PROLOGUE_LEN, Remix,
    SCHEMA_VERSION, Tag,
};

impl Object {
    /// The exact number of bytes [`Object::encode`] will produce.
    pub fn encoded_len(&self) -> usize {
        let body = match self {
            Object::Blob(b) => 4 + b.data.len(),
            Object::Tree(t) => {
                4 + t
                    .entries
                    .iter()
                    .map(|e| 4 + e.name.len() + 1 + 32)
                    .sum::<usize>()
            }
            Object::Commit(c) => {
                32 + 4
                    + 32 * c.parents.len()
                    + identity_len(&c.author)
                    + 4
                    + c.message.len()
                    + 8
                    + 32
                    + 32
                    + 32
                    + 64
            }
            Object::Remix(r) => {
                32 + 4
                    + 32 * r.parents.len()
                    + 4
                    + 64 * r.sources.len()
                    + identity_len(&r.author)
                    + 4
                    + r.message.len()
                    + 8
                    + 32
                    + 64
            }
            Object::ChunkedBlob(c) => 8 + 4 + 4 + 32 * c.chunks.len(),
            Object::Delta(d) => 32 + 4 + 4 + d.instructions.len(),
            Object::Tag(t) => {
                32 + 1
                    + 4
                    + t.name.len()
                    + identity_len(&t.tagger)
                    + 4
                    + t.message.len()
                    + 8
                    + 32
                    + 64
            }
        };
        PROLOGUE_LEN + body
    }

    /// Encode to a fresh buffer of exactly [`Object::encoded_len`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ObjectError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Append the encoding to `out`. On error `out` may hold a partial object.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ObjectError> {
        write_prologue(out, self.object_type());
        match self {
            Object::Blob(b) => put_bytes(out, "blob.data", &b.data)?,
            Object::Tree(t) => {
                t.validate()?;
                put_u32(out, t.entries.len() as u32);
                for e in &t.entries {
                    put_bytes(out, "tree.entry.name", &e.name)?;
                    out.push(e.mode as u8);
                    out.extend_from_slice(&e.id.0);
                }
            }
            Object::Commit(c) => {
                c.validate()?;
                put_commit_signed_part(out, c)?;
                out.extend_from_slice(&c.message_hash.0);
                out.extend_from_slice(&c.content_digest.0);
                out.extend_from_slice(&c.signature);
            }
            Object::Remix(r) => {
                r.validate()?;
                put_remix_signed_part(out, r)?;
                out.extend_from_slice(&r.signature);
            }
            Object::ChunkedBlob(c) => {
                c.validate()?;
                out.extend_from_slice(&c.total_size.to_le_bytes());
                put_u32(out, c.chunk_size);
                put_u32(out, c.chunks.len() as u32);
                for id in &c.chunks {
                    out.extend_from_slice(&id.0);
                }
            }
            Object::Delta(Delta {
                base,
                result_size,
                instructions,
            }) => {
                out.extend_from_slice(&base.0);
                put_u32(out, *result_size);
                put_bytes(out, "delta.instructions", instructions)?;
            }
            Object::Tag(t) => {
                t.validate()?;
                put_tag_signed_part(out, t)?;
                out.extend_from_slice(&t.signature);
            }
        }
        Ok(())
    }
}

fn identity_len(id: &Identity) -> usize {
    1 + 2 + id.payload.len()
}

/// Write the 6-byte prologue for `t`.
pub(crate) fn write_prologue(out: &mut Vec<u8>, t: ObjectType) {
    out.push(t as u8);
    out.extend_from_slice(&MAGIC);
    out.push(SCHEMA_VERSION);
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: &'static str, data: &[u8]) -> Result<(), ObjectError> {
    let len = u32::try_from(data.len()).map_err(|_| ObjectError::FieldTooLarge {
        field,
        len: data.len(),
    })?;
    put_u32(out, len);
    out.extend_from_slice(data);
    Ok(())
}

/// Write an identity (`kind | le16 len | payload`) after validating it.
pub(crate) fn put_identity(out: &mut Vec<u8>, id: &Identity) -> Result<(), ObjectError> {
    id.validate()?;
    out.push(id.kind as u8);
    // validate() bounds the payload at 4096 bytes.
    out.extend_from_slice(&(id.payload.len() as u16).to_le_bytes());
    out.extend_from_slice(&id.payload);
    Ok(())
}

/// The commit fields up to and including `signer`: exactly the body of the
/// commit signing bytes after the prologue (SPEC-SIGNING §3).
pub(crate) fn put_commit_signed_part(out: &mut Vec<u8>, c: &Commit) -> Result<(), ObjectError> {
    out.extend_from_slice(&c.tree.0);
    put_u32(out, c.parents.len() as u32);
    for p in &c.parents {
        out.extend_from_slice(&p.0);
    }
    put_identity(out, &c.author)?;
    put_bytes(out, "commit.message", &c.message)?;
    out.extend_from_slice(&c.timestamp.to_le_bytes());
    out.extend_from_slice(&c.signer);
    Ok(())
}

/// The remix fields up to and including `signer` (SPEC-SIGNING §4).
pub(crate) fn put_remix_signed_part(out: &mut Vec<u8>, r: &Remix) -> Result<(), ObjectError> {
    out.extend_from_slice(&r.tree.0);
    put_u32(out, r.parents.len() as u32);
    for p in &r.parents {
        out.extend_from_slice(&p.0);
    }
    put_u32(out, r.sources.len() as u32);
    for s in &r.sources {
        out.extend_from_slice(&s.upstream_id.0);
        out.extend_from_slice(&s.commit.0);
    }
    put_identity(out, &r.author)?;
    put_bytes(out, "remix.message", &r.message)?;
    out.extend_from_slice(&r.timestamp.to_le_bytes());
    out.extend_from_slice(&r.signer);
    Ok(())
}

/// The tag fields up to and including `signer` (SPEC-SIGNING §4a).
pub(crate) fn put_tag_signed_part(out: &mut Vec<u8>, t: &Tag) -> Result<(), ObjectError> {
    out.extend_from_slice(&t.target.0);
    out.push(t.target_type as u8);
    put_bytes(out, "tag.name", &t.name)?;
    put_identity(out, &t.tagger)?;
    put_bytes(out, "tag.message", &t.message)?;
    out.extend_from_slice(&t.timestamp.to_le_bytes());
    out.extend_from_slice(&t.signer);
    Ok(())
}
