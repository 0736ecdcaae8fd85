//! Strict object decoding: bytes to values, refusing anything malformed.
//!
//! The decoder checks the prologue, reads exactly the declared layout, applies
//! the same validation predicates as the encoder (names, order, modes,
//! identities, counts, tag floor), bounds every allocation by the bytes that
//! remain, and refuses trailing bytes. It never panics on any input.

use crate::mkit::id::Id;
use crate::mkit::object::{
    Blob, ChunkedBlob, Commit, Delta, EntryMode, Identity, IdentityKind, MAGIC, MAX_CHUNKS,
    MAX_IDENTITY_LEN, MAX_PARENTS, MAX_REMIX_SOURCES, MAX_TREE_ENTRIES, Object, ObjectError,
    ObjectType, PROLOGUE_LEN, Remix, RemixSource, SCHEMA_VERSION, Tag, Tree, TreeEntry,
    validate_entry_name, validate_tag_name,
};

impl Object {
    /// Decode one object, refusing anything a conforming reader must refuse.
    pub fn decode(bytes: &[u8]) -> Result<Object, ObjectError> {
        let t = decode_prologue(bytes)?;
        let mut r = Reader {
            data: &bytes[PROLOGUE_LEN..],
            pos: 0,
        };
        let obj = match t {
            ObjectType::Blob => Object::Blob(Blob {
                data: r.bytes("blob.data")?.to_vec(),
            }),
            ObjectType::Tree => Object::Tree(read_tree(&mut r)?),
            ObjectType::Commit => Object::Commit(read_commit(&mut r)?),
            ObjectType::Remix => Object::Remix(read_remix(&mut r)?),
            ObjectType::ChunkedBlob => Object::ChunkedBlob(read_chunked(&mut r)?),
            ObjectType::Delta => Object::Delta(Delta {
                base: r.id("delta.base")?,
                result_size: r.u32("delta.result_size")?,
                instructions: r.bytes("delta.instructions")?.to_vec(),
            }),
            ObjectType::Tag => Object::Tag(read_tag(&mut r)?),
        };
        let extra = r.data.len() - r.pos;
        if extra != 0 {
            return Err(ObjectError::TrailingData(extra));
        }
        Ok(obj)
    }
}

/// Check the 6-byte prologue and return the object type.
pub fn decode_prologue(bytes: &[u8]) -> Result<ObjectType, ObjectError> {
    if bytes.len() < PROLOGUE_LEN {
        return Err(ObjectError::TooShort(bytes.len()));
    }
    let t = ObjectType::from_byte(bytes[0])?;
    if bytes[1..5] != MAGIC {
        return Err(ObjectError::InvalidMagic);
    }
    if bytes[5] != SCHEMA_VERSION {
        return Err(ObjectError::UnsupportedObjectVersion(bytes[5]));
    }
    Ok(t)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ObjectError> {
        if n > self.remaining() {
            return Err(ObjectError::UnexpectedEof { field });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ObjectError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ObjectError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ObjectError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ObjectError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, ObjectError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn id(&mut self, field: &'static str) -> Result<Id, ObjectError> {
        Ok(Id(self.array(field)?))
    }

    /// A u32-length-prefixed byte string.
    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], ObjectError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    /// A count of fixed-size records, refused when the rest cannot hold them
    /// (so a lying header never drives a large allocation).
    fn count(
        &mut self,
        field: &'static str,
        max: u32,
        record_len: usize,
        too_many: fn(usize) -> ObjectError,
    ) -> Result<usize, ObjectError> {
        let n = self.u32(field)?;
        if n > max {
            return Err(too_many(n as usize));
        }
        let n = n as usize;
        if n.saturating_mul(record_len) > self.remaining() {
            return Err(ObjectError::UnexpectedEof { field });
        }
        Ok(n)
    }

    fn ids(&mut self, n: usize, field: &'static str) -> Result<Vec<Id>, ObjectError> {
        (0..n).map(|_| self.id(field)).collect()
    }

    fn identity(&mut self, field: &'static str) -> Result<Identity, ObjectError> {
        let kind = IdentityKind::from_byte(self.u8(field)?)?;
        let len = self.u16(field)? as usize;
        if len > MAX_IDENTITY_LEN {
            return Err(ObjectError::IdentityTooLarge(len));
        }
        let id = Identity {
            kind,
            payload: self.take(len, field)?.to_vec(),
        };
        id.validate()?;
        Ok(id)
    }
}

fn read_tree(r: &mut Reader<'_>) -> Result<Tree, ObjectError> {
    // Smallest entry: 4-byte length, 1-byte name, mode, 32-byte id.
    let n = r.count(
        "tree.entry_count",
        MAX_TREE_ENTRIES,
        4 + 1 + 1 + 32,
        ObjectError::TooManyEntries,
    )?;
    let mut entries: Vec<TreeEntry> = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.bytes("tree.entry.name")?;
        validate_entry_name(name)?;
        if let Some(prev) = entries.last()
            && prev.name.as_slice() >= name
        {
            return Err(ObjectError::InvalidEntryOrder {
                previous: prev.name.clone(),
                next: name.to_vec(),
            });
        }
        let mode = EntryMode::from_byte(r.u8("tree.entry.mode")?)?;
        let id = r.id("tree.entry.id")?;
        entries.push(TreeEntry {
            name: name.to_vec(),
            mode,
            id,
        });
    }
    Ok(Tree { entries })
}

fn read_commit(r: &mut Reader<'_>) -> Result<Commit, ObjectError> {
    let tree = r.id("commit.tree")?;
    let n = r.count(
        "commit.parent_count",
        MAX_PARENTS,
        32,
        ObjectError::TooManyParents,
    )?;
    let parents = r.ids(n, "commit.parents")?;
    let author = r.identity("commit.author")?;
    let message = r.bytes("commit.message")?.to_vec();
    Ok(Commit {
        tree,
        parents,
        author,
        message,
        timestamp: r.u64("commit.timestamp")?,
        signer: r.array("commit.signer")?,
        message_hash: r.id("commit.message_hash")?,
        content_digest: r.id("commit.content_digest")?,
        signature: r.array("commit.signature")?,
    })
}

fn read_remix(r: &mut Reader<'_>) -> Result<Remix, ObjectError> {
    let tree = r.id("remix.tree")?;
    let n = r.count(
        "remix.parent_count",
        MAX_PARENTS,
        32,
        ObjectError::TooManyParents,
    )?;
    let parents = r.ids(n, "remix.parents")?;
    let n = r.count(
        "remix.source_count",
        MAX_REMIX_SOURCES,
        64,
        ObjectError::TooManySources,
    )?;
    let mut sources = Vec::with_capacity(n);
    for _ in 0..n {
        sources.push(RemixSource {
            upstream_id: r.id("remix.source.upstream_id")?,
            commit: r.id("remix.source.commit")?,
        });
    }
    let author = r.identity("remix.author")?;
    let message = r.bytes("remix.message")?.to_vec();
    let remix = Remix {
        tree,
        parents,
        sources,
        author,
        message,
        timestamp: r.u64("remix.timestamp")?,
        signer: r.array("remix.signer")?,
        signature: r.array("remix.signature")?,
    };
    if remix.sources.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ObjectError::InvalidSourceOrder);
    }
    Ok(remix)
}

fn read_chunked(r: &mut Reader<'_>) -> Result<ChunkedBlob, ObjectError> {
    let total_size = r.u64("chunked_blob.total_size")?;
    let chunk_size = r.u32("chunked_blob.chunk_size")?;
    let n = r.count(
        "chunked_blob.chunk_count",
        MAX_CHUNKS,
        32,
        ObjectError::TooManyChunks,
    )?;
    Ok(ChunkedBlob {
        total_size,
        chunk_size,
        chunks: r.ids(n, "chunked_blob.chunks")?,
    })
}

fn read_tag(r: &mut Reader<'_>) -> Result<Tag, ObjectError> {
    let target = r.id("tag.target")?;
    let type_byte = r.u8("tag.target_type")?;
    let target_type = ObjectType::from_byte(type_byte)?;
    if target_type == ObjectType::Delta {
        return Err(ObjectError::TagTargetTypeInvalid(type_byte));
    }
    let name_len = r.u32("tag.name")? as usize;
    if name_len == 0 || name_len > crate::mkit::object::MAX_TAG_NAME_LEN {
        return Err(ObjectError::TagNameInvalid {
            name: r.data[r.pos..r.pos + name_len.min(r.remaining()).min(64)].to_vec(),
        });
    }
    let name = r.take(name_len, "tag.name")?.to_vec();
    validate_tag_name(&name)?;
    let tagger = r.identity("tag.tagger")?;
    let message = r.bytes("tag.message")?.to_vec();
    Ok(Tag {
        target,
        target_type,
        name,
        tagger,
        message,
        timestamp: r.u64("tag.timestamp")?,
        signer: r.array("tag.signer")?,
        signature: r.array("tag.signature")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkit::object::{IdentityRule, NameRule};

    fn commit() -> Object {
        Object::Commit(Commit {
            tree: Id([1; 32]),
            parents: vec![Id([2; 32]), Id([3; 32])],
            author: Identity::opaque(b"A U Thor <a@example.com>".to_vec()),
            message: b"msg\n".to_vec(),
            timestamp: 1_700_000_000,
            signer: [4; 32],
            message_hash: Id::ZERO,
            content_digest: Id([5; 32]),
            signature: [6; 64],
        })
    }

    #[test]
    fn round_trip_and_exact_length() {
        let c = commit();
        let bytes = c.encode().unwrap();
        assert_eq!(bytes.len(), c.encoded_len());
        assert_eq!(Object::decode(&bytes).unwrap(), c);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = commit().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                Object::decode(&bytes[..cut]).is_err(),
                "prefix {cut} accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Object::decode(&longer), Err(ObjectError::TrailingData(1)));
    }

    #[test]
    fn prologue_checks() {
        let mut b = commit().encode().unwrap();
        b[0] = 0x08;
        assert_eq!(Object::decode(&b), Err(ObjectError::InvalidObjectType(8)));
        b[0] = 0x03;
        b[2] = b'X';
        assert_eq!(Object::decode(&b), Err(ObjectError::InvalidMagic));
        b[2] = b'K';
        b[5] = 2;
        assert_eq!(
            Object::decode(&b),
            Err(ObjectError::UnsupportedObjectVersion(2))
        );
        assert_eq!(Object::decode(&[1, 2]), Err(ObjectError::TooShort(2)));
    }

    #[test]
    fn tree_decode_refuses_bad_name_mode_and_order() {
        let tree = |names: &[&[u8]], mode: u8| {
            let mut b = vec![2, b'M', b'K', b'T', b'1', 1];
            b.extend_from_slice(&(names.len() as u32).to_le_bytes());
            for n in names {
                b.extend_from_slice(&(n.len() as u32).to_le_bytes());
                b.extend_from_slice(n);
                b.push(mode);
                b.extend_from_slice(&[9; 32]);
            }
            b
        };
        assert!(Object::decode(&tree(&[b"a", b"b"], 1)).is_ok());
        assert!(matches!(
            Object::decode(&tree(&[b"b", b"a"], 1)),
            Err(ObjectError::InvalidEntryOrder { .. })
        ));
        assert!(matches!(
            Object::decode(&tree(&[b"a", b"a"], 1)),
            Err(ObjectError::InvalidEntryOrder { .. })
        ));
        assert_eq!(
            Object::decode(&tree(&[b"a"], 5)),
            Err(ObjectError::InvalidEntryMode(5))
        );
        assert!(matches!(
            Object::decode(&tree(&[b".git"], 1)),
            Err(ObjectError::InvalidEntryName {
                rule: NameRule::Reserved,
                ..
            })
        ));
        // A count far beyond the bytes present is refused before allocating.
        let mut lying = tree(&[], 1);
        lying[6..10].copy_from_slice(&999_999u32.to_le_bytes());
        assert!(matches!(
            Object::decode(&lying),
            Err(ObjectError::UnexpectedEof { .. })
        ));
        lying[6..10].copy_from_slice(&1_000_001u32.to_le_bytes());
        assert_eq!(
            Object::decode(&lying),
            Err(ObjectError::TooManyEntries(1_000_001))
        );
    }

    #[test]
    fn identity_refusals_on_decode() {
        let mut b = commit().encode().unwrap();
        // The author identity starts after prologue, tree and two parents.
        let at = 6 + 32 + 4 + 64;
        b[at] = 0x09;
        assert_eq!(Object::decode(&b), Err(ObjectError::UnknownIdentityKind(9)));
        b[at] = 0x01; // ed25519 with a 24-byte payload
        assert_eq!(
            Object::decode(&b),
            Err(ObjectError::InvalidIdentity(IdentityRule::Ed25519Length(
                24
            )))
        );
    }

    #[test]
    fn encoder_refuses_what_decoder_refuses() {
        let mut t = Tree::default();
        t.entries.push(TreeEntry {
            name: b"aux.c".to_vec(),
            mode: EntryMode::Blob,
            id: Id::ZERO,
        });
        assert!(Object::Tree(t).encode().is_err());
        let tag = Tag {
            target: Id::ZERO,
            target_type: ObjectType::Delta,
            name: b"v1".to_vec(),
            tagger: Identity::opaque(b"x".to_vec()),
            message: vec![],
            timestamp: 0,
            signer: [0; 32],
            signature: [0; 64],
        };
        assert_eq!(
            Object::Tag(tag).encode(),
            Err(ObjectError::TagTargetTypeInvalid(6))
        );
    }
}
