//! FastCDC conformance: the shared golden vectors, and agreement with the
//! reference chunker (`mkit_core::chunker`) on random and repetitive input.

use crate::common;

use mkit_bridge::mkit::chunk::{self, MAX_SIZE};
use proptest::prelude::*;

/// The splitmix64 byte stream the golden vectors were generated from:
/// each output word little-endian, the last word truncated.
fn splitmix_stream(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The `.bin` encoding of a boundary list: one JSON line, `[a, b, c]\n`.
fn encode_bin(offsets: &[usize]) -> Vec<u8> {
    let items: Vec<String> = offsets.iter().map(usize::to_string).collect();
    format!("[{}]\n", items.join(", ")).into_bytes()
}

fn check_vector(test: &str, name: &str, seed: u64, len: usize) {
    let Some(dir) = common::golden_dir(test) else {
        return;
    };
    let manifest = common::manifest(&dir, "fastcdc");
    let pinned = manifest
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, fields)| fields[0].clone())
        .unwrap_or_else(|| panic!("{name} missing from fastcdc/MANIFEST.txt"));

    let ours = chunk::boundaries(&splitmix_stream(seed, len));
    let bin = encode_bin(&ours);
    assert_eq!(
        bin,
        common::read_golden(&dir, &format!("fastcdc/{name}.bin")),
        "{name}: boundaries differ from the golden .bin"
    );
    assert_eq!(
        blake3::hash(&bin).to_hex().as_str(),
        pinned,
        "{name}: MANIFEST hash"
    );

    let sidecar: serde_json::Value =
        serde_json::from_slice(&common::read_golden(&dir, &format!("fastcdc/{name}.json")))
            .unwrap();
    assert_eq!(sidecar["size"].as_u64(), Some(bin.len() as u64));
    assert_eq!(sidecar["blake3"].as_str(), Some(pinned.as_str()));
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn golden_boundaries_1mib() {
    check_vector(
        "golden_boundaries_1mib",
        "fastcdc_boundaries_1mib",
        0xA5A5_F00D_DEAD_BEEF,
        1024 * 1024,
    );
}

#[test]
#[cfg_attr(
    not(has_shared),
    ignore = "needs ../shared/conformance beside the repository; CI runs it"
)]
fn golden_boundaries_256k() {
    check_vector(
        "golden_boundaries_256k",
        "fastcdc_boundaries_256k",
        0xCAFE_BABE_1234_5678,
        256 * 1024,
    );
}

#[test]
fn gear_table_digest_matches_reference() {
    assert_eq!(
        chunk::gear_table_digest(),
        mkit_core::chunker::gear_table_digest()
    );
    assert_eq!(chunk::SEED, mkit_core::chunker::SEED);
    assert_eq!(
        (chunk::MIN_SIZE, chunk::AVG_SIZE, chunk::MAX_SIZE),
        (
            mkit_core::chunker::MIN_SIZE,
            mkit_core::chunker::AVG_SIZE,
            mkit_core::chunker::MAX_SIZE
        )
    );
    assert_eq!(
        (chunk::MASK_S, chunk::MASK_L),
        (mkit_core::chunker::MASK_S, mkit_core::chunker::MASK_L)
    );
    assert_eq!(
        chunk::CHUNK_THRESHOLD as u64,
        mkit_core::worktree::CHUNK_THRESHOLD
    );
}

#[test]
fn all_zero_input_is_forced_to_max_size_like_the_reference() {
    let zeros = vec![0u8; 4 * MAX_SIZE + 100];
    let ours = chunk::boundaries(&zeros);
    assert_eq!(ours, mkit_core::chunker::chunk_boundaries(&zeros));
    assert_eq!(
        ours,
        vec![
            MAX_SIZE,
            2 * MAX_SIZE,
            3 * MAX_SIZE,
            4 * MAX_SIZE,
            zeros.len()
        ]
    );
}

#[test]
fn lengths_sum_to_input_and_match_boundaries() {
    let data = splitmix_stream(0xDEAD_BEEF, 5 * 1024 * 1024 + 3);
    let lengths: Vec<usize> = chunk::chunk_lengths(&data).collect();
    assert_eq!(lengths.iter().sum::<usize>(), data.len());
    let mut end = 0;
    let ends: Vec<usize> = lengths
        .iter()
        .map(|n| {
            end += n;
            end
        })
        .collect();
    assert_eq!(ends, chunk::boundaries(&data));
    assert_eq!(ends, mkit_core::chunker::chunk_boundaries(&data));
}

/// Input shapes for the differential check: noise, a short pattern repeated,
/// and noise with long constant runs (which push chunks toward the forced cut).
fn input() -> impl Strategy<Value = Vec<u8>> {
    let len = 0usize..3 * 1024 * 1024;
    prop_oneof![
        (any::<u64>(), len.clone()).prop_map(|(seed, len)| splitmix_stream(seed, len)),
        (proptest::collection::vec(any::<u8>(), 1..64), len.clone())
            .prop_map(|(pattern, len)| pattern.iter().copied().cycle().take(len).collect()),
        (any::<u64>(), len, 1usize..400_000, any::<u8>()).prop_map(|(seed, len, run, fill)| {
            let mut data = splitmix_stream(seed, len);
            let mut i = 0;
            while i < data.len() {
                let end = (i + run).min(data.len());
                data[i..end].fill(fill);
                i = end + run;
            }
            data
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn boundaries_agree_with_reference(data in input()) {
        prop_assert_eq!(chunk::boundaries(&data), mkit_core::chunker::chunk_boundaries(&data));
    }

    #[test]
    fn cut_agrees_with_reference_on_short_and_odd_lengths(
        seed in any::<u64>(),
        len in 0usize..(MAX_SIZE + 64),
    ) {
        let data = splitmix_stream(seed, len);
        prop_assert_eq!(chunk::cut(&data), mkit_core::chunker::FastCdc::v1().cut(&data));
    }
}
