//! Shards of test names, for the tests of every structure here.

// What the structures' tests share: the public types, the addresses and hashes they
// build names from, and the byte constants the size tests check against.
pub(super) use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) use xxhash_rust::xxh3::xxh3_64;

pub(super) use super::hll::HLL_Q;
pub(super) use super::shard::COUNTS_BYTES;
pub(super) use super::{DomainCounts, Shard, SketchSettings};
pub(super) use crate::Nanos;

pub(super) const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30));

pub(super) fn name(i: u64) -> Vec<u8> {
    format!("n{i}.pirate.sea").into_bytes()
}

pub(super) fn shard_with(
    start: Nanos,
    settings: &SketchSettings,
    names: impl Iterator<Item = u64>,
) -> Shard {
    let mut shard = Shard::new(start, settings);
    for i in names {
        shard.record_query(b"pirate.sea", &name(i), CLIENT, 10, 75);
    }
    shard
}

pub(super) fn uniques(shard: &Shard) -> u64 {
    shard
        .get(b"pirate.sea")
        .map_or(0, DomainCounts::unique_names)
}

pub(super) fn relative_error(estimate: u64, truth: u64) -> f64 {
    (estimate as f64 - truth as f64).abs() / truth as f64
}
