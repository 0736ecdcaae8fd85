//! Hot paths of the object layer, measured side by side in one run.
//!
//! - `encode+id`: building a blob's and a tree's bytes and id (no I/O);
//! - `store`: staging objects into a write batch and committing it;
//! - `throughput`: FastCDC cutting vs plain BLAKE3 hashing over the same
//!   8 MiB of pseudo-random bytes (criterion prints both in MB/s, so the
//!   ratio is read off one run).

// criterion's group macro generates an undocumented function.
#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use mkit_bridge::mkit::Id;
use mkit_bridge::mkit::chunk;
use mkit_bridge::mkit::content;
use mkit_bridge::mkit::object::{EntryMode, Object, Tree, TreeEntry, blob_id};
use mkit_bridge::mkit::store::Store;

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
    g.bench_function("tree 64 entries", |b| {
        b.iter(|| {
            let bytes = black_box(&tree).encode().unwrap();
            (bytes.len(), tree.id().unwrap())
        })
    });
    g.finish();
}

fn store_writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    let blobs: Vec<Vec<u8>> = (0..1000).map(|i| pseudo_random(2048, i)).collect();
    g.throughput(Throughput::Elements(blobs.len() as u64));
    g.bench_function("batch of 1000 blobs of 2 KiB", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let store = Store::at(dir.path());
                let batch = store.batch();
                for blob in &blobs {
                    batch.add_blob(blob).unwrap();
                }
                batch.commit().unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    let trees: Vec<Object> = (0..200)
        .map(|i| {
            let mut t = tree_of(16);
            t.entries[0].id = Id([i as u8; 32]);
            Object::Tree(t)
        })
        .collect();
    g.throughput(Throughput::Elements(trees.len() as u64));
    g.bench_function("batch of 200 trees of 16 entries", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let store = Store::at(dir.path());
                let batch = store.batch();
                for t in &trees {
                    batch.add(t).unwrap();
                }
                batch.commit().unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput");
    let data = pseudo_random(8 * 1024 * 1024, 7);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&data))));
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
