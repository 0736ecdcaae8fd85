//! File content as mkit objects.
//!
//! Content of at most 1 MiB is one blob. Larger content is cut with the
//! pinned FastCDC ([`crate::mkit::chunk`]) into chunk blobs, listed in a
//! chunked-blob manifest with `chunk_size = 0` (content-defined). This is the
//! one place that decides a file's representation, so an id computed here
//! equals the id the reference mkit gives the same bytes.

use crate::mkit::chunk;
use crate::mkit::id::Id;
use crate::mkit::object::{ChunkedBlob, Object, blob_id};
use crate::mkit::store::{StoreError, WriteBatch};

/// The manifest for `data`, which must be over the chunking threshold to be
/// what mkit stores (smaller content is a plain blob).
pub fn manifest_for(data: &[u8]) -> ChunkedBlob {
    ChunkedBlob {
        total_size: data.len() as u64,
        chunk_size: 0,
        chunks: chunk::chunks(data).map(blob_id).collect(),
    }
}

/// The id mkit gives a file holding `data` (blob or chunked blob), without storing.
pub fn content_id(data: &[u8]) -> Id {
    if chunk::needs_chunking(data.len() as u64) {
        manifest_for(data).merkle_id()
    } else {
        blob_id(data)
    }
}

/// Stage `data` as a file's content into `batch`; returns the id to put in a
/// tree entry (the blob's, or the manifest's for chunked content).
pub fn stage_content(batch: &WriteBatch<'_>, data: &[u8]) -> Result<Id, StoreError> {
    if !chunk::needs_chunking(data.len() as u64) {
        return batch.add_blob(data);
    }
    let mut chunks = Vec::new();
    for piece in chunk::chunks(data) {
        chunks.push(batch.add_blob(piece)?);
    }
    batch.add(&Object::ChunkedBlob(ChunkedBlob {
        total_size: data.len() as u64,
        chunk_size: 0,
        chunks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkit::store::Store;

    #[test]
    fn threshold_is_inclusive_and_ids_match_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let at = vec![3u8; chunk::CHUNK_THRESHOLD];
        let over: Vec<u8> = (0..chunk::CHUNK_THRESHOLD as u32 + 1)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let batch = store.batch();
        let a = stage_content(&batch, &at).unwrap();
        let b = stage_content(&batch, &over).unwrap();
        batch.commit().unwrap();
        assert_eq!(a, blob_id(&at));
        assert_eq!(a, content_id(&at));
        assert_eq!(b, content_id(&over));
        let Object::ChunkedBlob(m) = store.read(&b).unwrap() else {
            panic!("over the threshold must be chunked");
        };
        assert_eq!(m.total_size, over.len() as u64);
        assert_eq!(m.chunk_size, 0);
        let mut joined = Vec::new();
        for c in &m.chunks {
            let Object::Blob(blob) = store.read(c).unwrap() else {
                panic!("chunk is a blob");
            };
            joined.extend_from_slice(&blob.data);
        }
        assert_eq!(joined, over);
    }
}
