//! Hot paths of the object layer, measured side by side in one run.
//!
//! - `encode+id`: building a blob's and a tree's bytes and id (no I/O);
//! - `store`: staging objects into a write batch and committing it durably;
//! - `throughput`: FastCDC cutting vs plain BLAKE3 over the same 8 MiB of
//!   pseudo-random bytes (criterion prints MB/s, so ratios are read off one run).
//!
//! Where the reference `mkit-core` 0.5 does the same work, it runs in the same
//! group under a `reference mkit-core` name, so the ratio is side by side.

// criterion's group macro generates an undocumented function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

use mkit_bridge::mkit::chunk;
use mkit_bridge::mkit::content;
use mkit_bridge::mkit::object::{EntryMode, Object, Tree, TreeEntry, blob_id};
use mkit_bridge::mkit::store::{Store, encode_for_store};

fn pseudo_random(len: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn tree_of(n: usize) -> Tree {
    Tree {
        entries: (0..n)
            .map(|i| TreeEntry {
                name: format!("file-{i:05}.rs").into_bytes(),
                mode: if i % 7 == 0 {
                    EntryMode::Executable
                } else {
                    EntryMode::Blob
                },
                id: blob_id(&i.to_le_bytes()),
            })
            .collect(),
    }
}

fn encode_and_id(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode+id");
    let small = pseudo_random(4 * 1024, 1);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("blob 4 KiB", |b| b.iter(|| blob_id(black_box(&small))));
    let tree = Object::Tree(tree_of(64));
    g.throughput(Throughput::Elements(64));
    let their_tree = mkit_core::deserialize(&tree.encode().unwrap()).unwrap();
    g.bench_function("reference mkit-core: tree 64 entries", |b| {
        b.iter(|| {
            let bytes = mkit_core::serialize(black_box(&their_tree)).unwrap();
            let mkit_core::Object::Tree(t) = &their_tree else {
                unreachable!()
            };
            (bytes.len(), mkit_core::merkle::compute_tree_id(t))
        })
    });
    g.bench_function("tree 64 entries", |b| {
        // What the store does on every write: validate once, encode, id.
        b.iter(|| {
            let (id, bytes) = encode_for_store(black_box(&tree)).unwrap();
            (bytes.len(), id)
        })
    });
    g.finish();
}

fn store_writes(c: &mut Criterion) {
    // One long-lived store; every iteration writes objects never seen before,
    // so no iteration pays for another's cleanup (deleting a temp store would
    // make the next batch's flush write back those deletions too).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::at(dir.path());
    let ref_dir = tempfile::tempdir().unwrap();
    mkit_bridge::mkit::repo::Repo::init(ref_dir.path()).unwrap();
    let layout = mkit_core::layout::discover(ref_dir.path()).unwrap();
    let reference = mkit_core::ObjectStore::open(&layout).unwrap();
    let mut round = 0u64;
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("batch of 1000 blobs of 2 KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let blobs: Vec<Vec<u8>> = (0..1000)
                    .map(|i| pseudo_random(2048, round * 1_000_000 + i))
                    .collect();
                let start = Instant::now();
                let batch = store.batch();
                for blob in &blobs {
                    batch.add_blob(blob).unwrap();
                }
                batch.commit().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("reference mkit-core: batch of 1000 blobs of 2 KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let blobs: Vec<Vec<u8>> = (0..1000)
                    .map(|i| pseudo_random(2048, round * 1_000_000 + i))
                    .collect();
                let start = Instant::now();
                let batch = reference.batch();
                for blob in &blobs {
                    let header = mkit_bridge::mkit::object::blob_header(blob.len());
                    batch.write_parts(&[&header, blob]).unwrap();
                }
                batch.commit().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.throughput(Throughput::Elements(200));
    g.bench_function("batch of 200 trees of 16 entries", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let trees: Vec<Object> = (0..200u64)
                    .map(|i| {
                        let mut t = tree_of(16);
                        t.entries[0].id = blob_id(&(round * 1_000_000 + i).to_le_bytes());
                        Object::Tree(t)
                    })
                    .collect();
                let start = Instant::now();
                let batch = store.batch();
                for t in &trees {
                    batch.add(t).unwrap();
                }
                batch.commit().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput");
    let data = pseudo_random(8 * 1024 * 1024, 7);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&data))));
    g.bench_function("reference mkit-core fastcdc cut", |b| {
        b.iter(|| mkit_core::chunker::chunk_boundaries(black_box(&data)).len())
    });
    g.bench_function("fastcdc cut", |b| {
        b.iter(|| chunk::chunk_lengths(black_box(&data)).count())
    });
    g.bench_function("chunked content id (cut + hash)", |b| {
        b.iter(|| content::content_id(black_box(&data)))
    });
    g.finish();
}

criterion_group!(benches, encode_and_id, store_writes, throughput);
criterion_main!(benches);
