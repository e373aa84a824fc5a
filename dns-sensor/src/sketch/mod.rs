//! Sketch: per-domain counts for one time slot (one shard per worker per slot), how
//! shards merge, and how a full shard chooses what to shed (helped by each worker's
//! [`NameHistory`] of earlier slots). Unique names are counted exactly up to a bound and
//! estimated beyond it.
//!
//! Unique names are tracked as 64-bit XXH3 hashes of the canonical query name. XXH3 is
//! unseeded and fixed by its specification, so two sensors (or two runs) hash a name the
//! same way and their sets and sketches merge. Up to [`SketchSettings::exact_limit`]
//! distinct hashes per domain are kept in an exact set (a collision among 1 000 random
//! 64-bit values has probability about 3e-14); past the limit the set is folded into a
//! HyperLogLog of precision [`HLL_PRECISION`] over the same hashes.
//!
//! The HyperLogLog is this module's own rather than the `hyperloglogplus` crate's:
//! that crate hashes values itself through a `BuildHasher` (pre-hashed values need a
//! pass-through hasher), its `count` takes `&mut self`, its merge of a sparse sketch goes
//! through a temporary `HashSet`, and its 6-bit packed registers are slow to merge.
//! Measured on the development box (release build, 1 M xxh3-hashed names, 2 cores under
//! a load of 6 to 8, so the spread is wide): the crate at p=14 inserts in 14-33 ns,
//! counts in 17 µs and merges two dense sketches in 60-400 µs (p=16: 23-55 ns, 65 µs,
//! 0.5-1.2 ms); the sketch here at p=15 inserts in about 4 ns, estimates in 32 µs and
//! merges in 6 µs (a byte-wise maximum). Its error over 200 trials per size from 1 025
//! to 100 000 names (30 at 1 M): mean within ±0.03 %, root mean square 0.38-0.53 %,
//! worst 1.6 % (p=14: RMS 0.56-0.76 %, worst 2.2 %, one trial in 1 030 past 2 %).
//! The estimator is Ertl's improved raw estimator ("New cardinality estimation
//! algorithms for HyperLogLog sketches", 2017): it is unbiased from small to very large
//! cardinalities without HyperLogLog++'s empirical bias tables.
//!
//! Everything held is plain data (integers, byte strings, vectors, hash sets), so the
//! state can be made serialisable without reshaping it.
//!
//! One structure a file, each with its tests: `hll` (the estimate), `names` (a domain's
//! distinct names), `top` (bounded heavy hitters: query types), `clients` (the same for
//! clients, indexed once a domain has many), `samples`, `query` (a query as the counts
//! take it), `evidence` (sums of the names' shape and the error answers),
//! `counts` ([`DomainCounts`]: everything counted for a domain in a slot), `shard`
//! ([`Shard`]: a slot's domain table, its byte accounting and shedding) and `history`
//! ([`NameHistory`]: earlier slots, and the door of a full shard).

mod clients;
pub mod codec;
mod counts;
mod evidence;
mod history;
mod hll;
mod names;
mod query;
mod samples;
mod shard;
mod top;

pub use counts::DomainCounts;
pub use evidence::{EvidenceSums, SHAPE_NAMES};
pub use history::NameHistory;
pub use hll::HLL_PRECISION;
pub use query::Query;
pub use samples::SampleNames;
pub use shard::{heap_block, Shard};

/// Distinct query types tracked per domain; past it the least counted type is replaced.
/// Bounded because the QTYPE is attacker-controlled (65 536 values).
pub const MAX_QTYPES: usize = 16;

/// Limits on one shard.
#[derive(Clone, Debug)]
pub struct SketchSettings {
    /// Unique names per domain counted exactly before switching to an estimate.
    pub exact_limit: usize,
    /// Client addresses tracked per domain.
    pub max_clients: usize,
    /// Sample names kept per domain.
    pub max_samples: usize,
    /// Domains tracked per shard; past it the least active small domains are shed
    /// (see [`Shard`]).
    pub max_domains: usize,
    /// Estimated bytes one shard may hold (its table, names, clients, samples); past it
    /// the least active small domains are shed. The pipeline derives it from the
    /// window's memory cap (`pipeline::shard_budget`).
    pub max_bytes: usize,
    /// Domains with at least this many unique names in the shard (or an estimated
    /// count) are never shed: they are near or over the threshold. Names the domain had
    /// in earlier slots, as the worker's [`NameHistory`] remembers them, count too.
    pub protect_names: u64,
    /// Bytes of each worker's [`NameHistory`] (0: none, shedding sees only the slot).
    pub history_bytes: usize,
    /// Slots between two halvings of the history: about half a window, so that what it
    /// remembers fades over about a window.
    pub history_halving: u32,
}

impl Default for SketchSettings {
    /// `exact_limit` 1 024 (the rule promises exact counts up to at least 1 000, and the
    /// default threshold of 200 sits far inside), 64 clients, 5 samples, 100 000 domains
    /// per shard (an enterprise resolver sees a few tens of thousands of registered
    /// domains in 15 minutes), 1/20 of 1 GiB per shard (the default window holds 17
    /// slots, plus the workers' open shards), domains with 100 names (half the
    /// default threshold) protected, and no history (the pipeline sizes one from the
    /// memory cap).
    fn default() -> Self {
        Self {
            exact_limit: 1024,
            max_clients: 64,
            max_samples: 5,
            max_domains: 100_000,
            max_bytes: (1 << 30) / 20,
            protect_names: 100,
            history_bytes: 0,
            history_halving: 8,
        }
    }
}

#[cfg(test)]
mod test_shards;
