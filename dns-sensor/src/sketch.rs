//! Sketch: per-domain counts for one time slot (one shard per worker per slot), and how
//! shards merge. Unique names are counted exactly up to a bound and estimated beyond it.

use std::net::IpAddr;

use crate::Nanos;

/// Limits on one shard.
#[derive(Clone, Debug)]
pub struct SketchSettings {
    /// Unique names per domain counted exactly before switching to an estimate.
    pub exact_limit: usize,
    /// Client addresses tracked per domain.
    pub max_clients: usize,
    /// Sample names kept per domain.
    pub max_samples: usize,
    /// Domains tracked per shard; past it new domains are shed and counted.
    pub max_domains: usize,
}

/// Counts for one registered domain over one slot (or, merged, over a window).
pub struct DomainCounts {}

impl DomainCounts {
    /// Queries (QR=0).
    pub fn requests(&self) -> u64 {
        todo!()
    }
    /// Distinct names among the queries: exact up to the limit, estimated beyond.
    pub fn unique_names(&self) -> u64 {
        todo!()
    }
    /// Sum of query message sizes.
    pub fn bytes_in(&self) -> u64 {
        todo!()
    }
    /// Sum of response message sizes.
    pub fn bytes_out(&self) -> u64 {
        todo!()
    }
    /// Clients by query count, most active first.
    pub fn top_clients(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let _ = n;
        todo!()
    }
    /// A few of the names seen, canonical bytes.
    pub fn sample_names(&self) -> &[Box<[u8]>] {
        todo!()
    }
    /// Query counts by QTYPE, most frequent first.
    pub fn qtypes(&self) -> Vec<(u16, u64)> {
        todo!()
    }
    /// Adds `other`'s counts into `self`.
    pub fn merge(&mut self, other: &DomainCounts) {
        let _ = other;
        todo!()
    }
}

/// Per-domain counts for one slot `[start, start + len)`.
pub struct Shard {}

impl Shard {
    /// An empty shard for the slot starting at `start`.
    pub fn new(start: Nanos, settings: &SketchSettings) -> Self {
        let _ = (start, settings);
        todo!()
    }
    /// The slot's start.
    pub fn start(&self) -> Nanos {
        todo!()
    }
    /// Records one query for `name` under `domain`. Allocates only for a new domain.
    pub fn record_query(
        &mut self,
        domain: &[u8],
        name: &[u8],
        client: IpAddr,
        qtype: u16,
        size: u32,
    ) {
        let _ = (domain, name, client, qtype, size);
        todo!()
    }
    /// Records one response of `size` bytes under `domain`.
    pub fn record_response(&mut self, domain: &[u8], size: u32) {
        let _ = (domain, size);
        todo!()
    }
    /// Adds another shard of the same slot into this one.
    pub fn merge(&mut self, other: &Shard) {
        let _ = other;
        todo!()
    }
    /// Domains and their counts.
    pub fn domains(&self) -> impl Iterator<Item = (&[u8], &DomainCounts)> {
        std::iter::empty()
    }
    /// Domains tracked.
    pub fn len(&self) -> usize {
        todo!()
    }
    /// Whether no domain was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Domains not tracked because the shard was full.
    pub fn shed_domains(&self) -> u64 {
        todo!()
    }
}

impl Default for SketchSettings {
    fn default() -> Self {
        todo!()
    }
}
