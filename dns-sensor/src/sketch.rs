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

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use xxhash_rust::xxh3::xxh3_64;

use crate::Nanos;

/// Precision (log2 of the register count) of the unique-name estimate past the exact
/// limit: 2^15 one-byte registers (32 KiB per estimated domain per slot), standard error
/// 1.04/sqrt(2^15) = 0.57 %, so the 2 % bound is 3.5 standard errors. p=14 (0.81 %)
/// would put 2 % at only 2.5 standard errors: about one estimate in 70 would miss it.
/// Sensors whose sketches merge must use the same precision.
pub const HLL_PRECISION: u8 = 15;

/// Register count of the estimate.
const HLL_REGISTERS: usize = 1 << HLL_PRECISION;

/// Hash bits left after the register index: register values run 0..=HLL_Q + 1.
const HLL_Q: usize = 64 - HLL_PRECISION as usize;

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

/// A HyperLogLog over pre-hashed 64-bit values: one byte per register.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hll {
    registers: Box<[u8]>,
}

impl Hll {
    fn new() -> Self {
        Self {
            registers: vec![0; HLL_REGISTERS].into_boxed_slice(),
        }
    }

    #[inline]
    fn insert(&mut self, hash: u64) {
        let index = (hash >> HLL_Q) as usize;
        // The low HLL_Q bits, moved to the top: their leading zeros (capped at HLL_Q
        // because only HLL_Q bits are real) plus one is the register value.
        let rest = hash << HLL_PRECISION;
        let rank = (rest.leading_zeros() as usize).min(HLL_Q) as u8 + 1;
        if let Some(register) = self.registers.get_mut(index) {
            if rank > *register {
                *register = rank;
            }
        }
    }

    fn merge(&mut self, other: &Hll) {
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Ertl's improved raw estimator (Algorithm 6 of the paper).
    fn estimate(&self) -> f64 {
        let mut histogram = [0u32; HLL_Q + 2];
        for &register in self.registers.iter() {
            if let Some(slot) = histogram.get_mut(register as usize) {
                *slot += 1;
            }
        }
        let m = HLL_REGISTERS as f64;
        if histogram[0] as usize == HLL_REGISTERS {
            return 0.0;
        }
        let mut z = m * tau(1.0 - f64::from(histogram[HLL_Q + 1]) / m);
        for k in (1..=HLL_Q).rev() {
            z = 0.5 * (z + f64::from(histogram[k]));
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        // alpha_infinity = 1 / (2 ln 2)
        let alpha = 1.0 / (2.0 * std::f64::consts::LN_2);
        alpha * m * m / z
    }
}

/// sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), for x in [0, 1).
fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    // Converges doubly exponentially; the cap only guards against a non-terminating
    // loop should rounding ever oscillate.
    for _ in 0..128 {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            break;
        }
    }
    z
}

/// tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3, for x in [0, 1].
fn tau(mut x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    for _ in 0..128 {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == previous {
            break;
        }
    }
    z / 3.0
}

/// Hasher state for the exact sets: keyed per process, because the stored values are
/// unkeyed XXH3 hashes of attacker-chosen names and could be crafted to share buckets.
type SetState = foldhash::fast::RandomState;

/// Distinct hashes a domain keeps in a plain array, scanned linearly, before moving
/// them to a hash set. Most registered domains have a few names per slot; an array of
/// exactly their size costs a third of a hash table's spare buckets and control bytes,
/// and a scan of 32 integers costs about what hashing one does.
const FEW_NAMES: usize = 32;

/// Distinct names of one domain: exact while small, estimated past the limit.
#[derive(Clone, Debug)]
enum UniqueNames {
    /// Up to [`FEW_NAMES`] hashes, unordered.
    Few(Vec<u64>),
    /// More, up to the exact limit. Boxed so that the few domains with many names do
    /// not widen every domain's counts by the set's header.
    #[allow(clippy::box_collection)]
    Many(Box<HashSet<u64, SetState>>),
    /// A HyperLogLog, and a lower bound known for sure (the exact count when the set
    /// overflowed), so an estimate never reports less than what was once counted.
    Estimated { hll: Box<Hll>, floor: u64 },
}

impl UniqueNames {
    fn new() -> Self {
        UniqueNames::Few(Vec::new())
    }

    /// Adds a hash. Returns `Some(true)` if it was new, `Some(false)` if seen, `None`
    /// once estimated (membership is no longer known).
    #[inline]
    fn insert(&mut self, hash: u64, limit: usize) -> Option<bool> {
        match self {
            UniqueNames::Few(hashes) => {
                if hashes.contains(&hash) {
                    return Some(false);
                }
                if hashes.len() < FEW_NAMES.min(limit) {
                    push_stepped(hashes, hash, 4);
                    return Some(true);
                }
                let mut set = HashSet::with_capacity_and_hasher(FEW_NAMES + 1, SetState::default());
                set.extend(hashes.iter().copied());
                *self = UniqueNames::Many(Box::new(set));
                self.insert(hash, limit)
            }
            UniqueNames::Many(set) => {
                if set.len() < limit {
                    return Some(set.insert(hash));
                }
                if set.contains(&hash) {
                    return Some(false);
                }
                let mut hll = Hll::new();
                for &seen in set.iter() {
                    hll.insert(seen);
                }
                hll.insert(hash);
                let floor = set.len() as u64 + 1;
                *self = UniqueNames::Estimated {
                    hll: Box::new(hll),
                    floor,
                };
                Some(true)
            }
            UniqueNames::Estimated { hll, .. } => {
                hll.insert(hash);
                None
            }
        }
    }

    fn merge(&mut self, other: &UniqueNames, limit: usize) {
        match other {
            UniqueNames::Few(theirs) => self.merge_exact(theirs.iter().copied(), limit),
            UniqueNames::Many(theirs) => self.merge_exact(theirs.iter().copied(), limit),
            UniqueNames::Estimated {
                hll: their_hll,
                floor: their_floor,
            } => {
                if let UniqueNames::Estimated { hll, floor } = self {
                    hll.merge(their_hll);
                    *floor = (*floor).max(*their_floor);
                    return;
                }
                let mut hll = their_hll.clone();
                match self {
                    UniqueNames::Few(mine) => mine.iter().for_each(|&h| hll.insert(h)),
                    UniqueNames::Many(mine) => mine.iter().for_each(|&h| hll.insert(h)),
                    UniqueNames::Estimated { .. } => {}
                }
                let floor = (*their_floor).max(self.count());
                *self = UniqueNames::Estimated { hll, floor };
            }
        }
    }

    /// Adds another domain's exact hashes.
    fn merge_exact(&mut self, theirs: impl ExactSizeIterator<Item = u64>, limit: usize) {
        let len = theirs.len() as u64;
        for hash in theirs {
            self.insert(hash, limit);
        }
        if let UniqueNames::Estimated { floor, .. } = self {
            *floor = (*floor).max(len);
        }
    }

    fn count(&self) -> u64 {
        match self {
            UniqueNames::Few(hashes) => hashes.len() as u64,
            UniqueNames::Many(set) => set.len() as u64,
            UniqueNames::Estimated { hll, floor } => {
                // f64 to u64 `as` saturates; the estimate is finite and non-negative.
                (hll.estimate().round() as u64).max(*floor)
            }
        }
    }

    /// Heap bytes held, as the allocator hands them out.
    fn heap_bytes(&self) -> usize {
        match self {
            UniqueNames::Few(hashes) => heap_block(hashes.capacity() * 8),
            // hashbrown: a bucket of 8 bytes and a control byte per slot, slots a power
            // of two at least 8/7 of the capacity.
            UniqueNames::Many(set) => {
                heap_block(std::mem::size_of::<HashSet<u64, SetState>>())
                    + heap_block(set.capacity() * 9 * 8 / 7)
            }
            UniqueNames::Estimated { .. } => {
                heap_block(HLL_REGISTERS) + heap_block(std::mem::size_of::<Hll>())
            }
        }
    }
}

/// Pushes `item`, growing the vector by `step` elements at a time rather than doubling:
/// these vectors are many and small, and a doubled block is half empty on average.
#[inline]
fn push_stepped<T>(vec: &mut Vec<T>, item: T, step: usize) {
    if vec.len() == vec.capacity() {
        vec.reserve_exact(step.max(1));
    }
    vec.push(item);
}

/// Bounded counts by key, heaviest kept: a space-saving summary. While fewer keys than
/// the bound were seen the counts are exact; past it a new key takes the place of the
/// least counted one and inherits its count (an over-estimate), so a key that keeps
/// coming back climbs and stays while rare keys churn through the last places. The
/// bound is the caller's (it is the same for every domain of a shard).
#[derive(Clone, Debug)]
struct TopCounts<K> {
    entries: Vec<(K, u64)>,
}

impl<K: Copy + Eq + Ord> TopCounts<K> {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds `n` to `key`, growing by `step` entries at a time up to `bound`.
    #[inline]
    fn add(&mut self, key: K, n: u64, bound: usize, step: usize) {
        if let Some(i) = self.entries.iter().position(|e| e.0 == key) {
            self.entries[i].1 += n;
            // One bubble step keeps heavy keys near the front, where the scan above
            // finds them first.
            if i > 0 && self.entries[i - 1].1 < self.entries[i].1 {
                self.entries.swap(i - 1, i);
            }
            return;
        }
        if self.entries.len() < bound {
            let step = step.min(bound - self.entries.len());
            push_stepped(&mut self.entries, (key, n), step);
            return;
        }
        if let Some(least) = self.entries.iter_mut().min_by_key(|e| e.1) {
            *least = (key, least.1 + n);
        }
    }

    /// Sums counts key by key; past the bound the lightest keys are dropped.
    fn merge(&mut self, other: &TopCounts<K>, bound: usize) {
        for &(key, n) in &other.entries {
            match self.entries.iter_mut().find(|e| e.0 == key) {
                Some(entry) => entry.1 += n,
                None => self.entries.push((key, n)),
            }
        }
        self.sort();
        self.entries.truncate(bound);
        self.entries.shrink_to_fit();
    }

    /// Heaviest first, ties by key so output is deterministic.
    fn sort(&mut self) {
        self.entries
            .sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    }

    fn sorted(&self) -> Vec<(K, u64)> {
        let mut sorted = self.clone();
        sorted.sort();
        sorted.entries
    }

    fn heap_bytes(&self) -> usize {
        heap_block(self.entries.capacity() * std::mem::size_of::<(K, u64)>())
    }
}

/// A few distinct names, in one block: a count byte, then each name as a little-endian
/// `u16` length and the bytes. One block instead of one per name and a vector of
/// pointers halves what five samples cost, and samples are kept for every domain of
/// every slot.
#[derive(Clone, Debug, Default)]
struct Samples {
    buf: Box<[u8]>,
}

impl Samples {
    fn iter(&self) -> SampleNames<'_> {
        SampleNames {
            rest: self.buf.get(1..).unwrap_or_default(),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.buf.first().map_or(0, |&n| usize::from(n))
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.iter().any(|s| s == name)
    }

    /// Appends `name` (cut to 65 535 bytes, far past any DNS name) unless 255 are held.
    fn push(&mut self, name: &[u8]) {
        let Ok(count) = u8::try_from(self.len() + 1) else {
            return;
        };
        let name = &name[..name.len().min(usize::from(u16::MAX))];
        let mut buf = Vec::with_capacity(self.buf.len().max(1) + 2 + name.len());
        buf.push(count);
        buf.extend_from_slice(self.buf.get(1..).unwrap_or_default());
        buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buf.extend_from_slice(name);
        self.buf = buf.into_boxed_slice();
    }

    fn heap_bytes(&self) -> usize {
        heap_block(self.buf.len())
    }
}

/// The names kept as samples of a domain, first kept first.
#[derive(Clone, Debug)]
pub struct SampleNames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SampleNames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (name, rest) = rest.split_at(len);
        self.rest = rest;
        Some(name)
    }
}

/// Counts for one registered domain over one slot (or, merged, over a window).
///
/// A window holds one of these per domain per slot (a million and more), so it is kept
/// small: the limits live in the shard's [`SketchSettings`] and are passed in, and every
/// part grows by small steps. About 700 bytes for a domain with 20 names in a slot,
/// key and table slot included.
#[derive(Clone, Debug)]
pub struct DomainCounts {
    requests: u64,
    responses: u64,
    bytes_in: u64,
    bytes_out: u64,
    names: UniqueNames,
    clients: TopCounts<IpAddr>,
    qtypes: TopCounts<u16>,
    samples: Samples,
    /// The shard's record counter when this domain was last recorded (its low 32
    /// bits): the tie-break between equally small domains when shedding (the least
    /// recent goes first).
    last_seen: u32,
    /// Names the worker's history gave this domain when it entered the shard: what it
    /// had in earlier slots, and in this one before being shed.
    prior_names: u16,
}

impl DomainCounts {
    /// Empty counts.
    pub fn new() -> Self {
        Self {
            requests: 0,
            responses: 0,
            bytes_in: 0,
            bytes_out: 0,
            names: UniqueNames::new(),
            clients: TopCounts::new(),
            qtypes: TopCounts::new(),
            samples: Samples::default(),
            last_seen: 0,
            prior_names: 0,
        }
    }

    /// Estimated heap bytes held (not counting the struct itself): the names' array,
    /// set or estimate, the clients, samples and query types. Capacities, not lengths,
    /// because that is what is allocated, and each block as the allocator hands it out
    /// ([`heap_block`]): with many small blocks per domain the rounding and headers are
    /// a large part of the total.
    pub fn heap_bytes(&self) -> usize {
        self.names.heap_bytes()
            + self.clients.heap_bytes()
            + self.qtypes.heap_bytes()
            + self.samples.heap_bytes()
    }

    /// Names for shedding: those in the shard (the sure floor once estimated) plus
    /// those it had before.
    fn weight(&self) -> u64 {
        let names = match &self.names {
            UniqueNames::Estimated { floor, .. } => *floor,
            names => names.count(),
        };
        names + u64::from(self.prior_names)
    }

    /// The heap bytes of new counts after one query for `name` (what
    /// [`heap_bytes`](Self::heap_bytes) then says), computed without building them.
    fn first_query_heap_bytes(name: &[u8]) -> usize {
        let name_len = name.len().min(usize::from(u16::MAX));
        heap_block(4 * 8)
            + heap_block(2 * std::mem::size_of::<(IpAddr, u64)>())
            + heap_block(std::mem::size_of::<(u16, u64)>())
            + heap_block(1 + 2 + name_len)
    }

    /// Whether shedding must leave this domain alone: it has many names already.
    fn is_protected(&self, protect_names: u64) -> bool {
        self.is_estimated() || self.weight() >= protect_names
    }

    /// Shedding order, least active first: fewest names (with those of earlier slots),
    /// then fewest records, then least recently seen.
    fn shed_rank(&self) -> (u64, u64, u32) {
        (
            self.weight(),
            self.requests.saturating_add(self.responses),
            self.last_seen,
        )
    }

    /// Queries (QR=0).
    pub fn requests(&self) -> u64 {
        self.requests
    }
    /// Responses (QR=1).
    pub fn responses(&self) -> u64 {
        self.responses
    }
    /// Distinct names among the queries: exact up to the limit, estimated beyond.
    pub fn unique_names(&self) -> u64 {
        self.names.count()
    }
    /// Whether [`unique_names`](Self::unique_names) is an estimate (the exact set
    /// overflowed its limit, here or in a shard merged in).
    pub fn is_estimated(&self) -> bool {
        matches!(self.names, UniqueNames::Estimated { .. })
    }
    /// Sum of query message sizes.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }
    /// Sum of response message sizes.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
    /// Clients by query count, most active first (ties by address). Exact while at most
    /// `max_clients` clients were seen; past it the counts of late-comers are upper
    /// bounds (space-saving), and a client that sent many queries is still listed.
    pub fn top_clients(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut clients = self.clients.sorted();
        clients.truncate(n);
        clients
    }
    /// A few of the names seen, canonical bytes: the first distinct ones.
    pub fn sample_names(&self) -> SampleNames<'_> {
        self.samples.iter()
    }
    /// Query counts by QTYPE, most frequent first (ties by type). At most
    /// [`MAX_QTYPES`] types; past it counts are space-saving like the clients'.
    pub fn qtypes(&self) -> Vec<(u16, u64)> {
        self.qtypes.sorted()
    }
    /// Adds `other`'s counts into `self`, within `settings`' limits.
    pub fn merge(&mut self, other: &DomainCounts, settings: &SketchSettings) {
        self.requests = self.requests.saturating_add(other.requests);
        self.responses = self.responses.saturating_add(other.responses);
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        self.names.merge(&other.names, settings.exact_limit);
        self.clients.merge(&other.clients, settings.max_clients);
        self.qtypes.merge(&other.qtypes, MAX_QTYPES);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.prior_names = self.prior_names.max(other.prior_names);
        for sample in other.samples.iter() {
            if self.samples.len() >= settings.max_samples {
                break;
            }
            if !self.samples.contains(sample) {
                self.samples.push(sample);
            }
        }
    }

    #[inline]
    fn record_query(
        &mut self,
        name: &[u8],
        hash: u64,
        client: IpAddr,
        qtype: u16,
        size: u32,
        settings: &SketchSettings,
    ) {
        self.requests = self.requests.saturating_add(1);
        self.bytes_in = self.bytes_in.saturating_add(u64::from(size));
        let fresh = self.names.insert(hash, settings.exact_limit);
        if self.samples.len() < settings.max_samples {
            // The exact set says whether the name is new; once estimated, compare.
            if fresh.unwrap_or_else(|| !self.samples.contains(name)) {
                self.samples.push(name);
            }
        }
        // Most domains of a slot see one or two clients: grow from two, doubling.
        let step = self.clients.entries.len().max(2);
        self.clients.add(client, 1, settings.max_clients, step);
        // Most domains see one or two types: grow one entry at a time.
        self.qtypes.add(qtype, 1, MAX_QTYPES, 1);
    }

    #[inline]
    fn record_response(&mut self, size: u32) {
        self.responses = self.responses.saturating_add(1);
        self.bytes_out = self.bytes_out.saturating_add(u64::from(size));
    }
}

impl Default for DomainCounts {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes a heap block of `bytes` really takes: nothing for an empty one, else the
/// request plus an 8-byte header rounded up to 16, at least 32. That is glibc's malloc;
/// the sensor binary runs on mimalloc, whose size classes (no header, at most 12.5 %
/// rounding) come out about the same on the window's mix of blocks: the estimate of a
/// full 4 h window and the process's resident size agree within a few percent.
pub fn heap_block(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        (bytes.saturating_add(8 + 15) & !15).max(32)
    }
}

/// Hasher state for the domain table: keyed per process (domain names are
/// attacker-chosen) and fast on short byte strings.
type DomainState = foldhash::fast::RandomState;

/// Per-domain counts for one slot `[start, start + len)`.
///
/// Bounded twice: at most [`SketchSettings::max_domains`] domains and about
/// [`SketchSettings::max_bytes`] estimated bytes. When a new domain does not fit, or a
/// domain's growth passes the byte bound, the shard sheds its least active small
/// domains (fewest names, then fewest records, then least recently seen) until it is
/// back under three quarters of both bounds, so shedding runs once per many new
/// domains. Domains with [`SketchSettings::protect_names`] names or more are never
/// shed; if only they are left, the new domain is refused instead. A flood of new
/// registered domains (a DGA, a random-domain attack) therefore churns through the
/// small entries while a tunnel, whose every query adds a name, climbs out of reach.
/// Everything shed is counted.
#[derive(Clone, Debug)]
pub struct Shard {
    start: Nanos,
    settings: SketchSettings,
    /// Counts boxed: the table's slots stay small (25 bytes, not 230), so a table sized
    /// for a flood of domains costs little, and probing touches fewer cache lines.
    domains: HashMap<Box<[u8]>, Box<DomainCounts>, DomainState>,
    /// Records (queries and responses) lost to shedding or refusal.
    shed: u64,
    /// Domains shed to make room.
    evicted: u64,
    /// Estimated bytes of the keys and the counts' heap (the table itself is added
    /// from its capacity in [`bytes`](Self::bytes)).
    held_bytes: usize,
    /// Records seen: the clock of `DomainCounts::last_seen`.
    records: u64,
    /// Every domain left is protected and the shard is full: nothing can be shed
    /// until the shard is gone, so new domains are refused without another scan.
    blocked: bool,
    /// The worker's memory of earlier slots, while this is its open shard: read when a
    /// domain enters, fed with what is shed.
    history: Option<NameHistory>,
    /// The shedding candidates' list, kept between sheds while the shard is open: a
    /// block of megabytes allocated and freed at every shed made glibc consolidate its
    /// free lists each time.
    shed_scratch: Vec<((u64, u64, u32), usize)>,
    /// Largest capacity the domain table has had. The table never shrinks, and
    /// removals leave tombstones that lower `capacity()` without freeing anything, so
    /// this, not `capacity()`, is what the table holds allocated.
    table_capacity: usize,
}

/// Bytes of one slot of the domain table: key, boxed counts, control byte.
const TABLE_SLOT_BYTES: usize = std::mem::size_of::<(Box<[u8]>, Box<DomainCounts>)>() + 1;

/// Bytes of one domain's boxed counts as allocated.
const COUNTS_BYTES: usize = (std::mem::size_of::<DomainCounts>() + 8 + 15) & !15;

impl Shard {
    /// An empty shard for the slot starting at `start`.
    pub fn new(start: Nanos, settings: &SketchSettings) -> Self {
        Self {
            start,
            settings: settings.clone(),
            domains: HashMap::default(),
            shed: 0,
            evicted: 0,
            held_bytes: 0,
            records: 0,
            blocked: false,
            history: None,
            shed_scratch: Vec::new(),
            table_capacity: 0,
        }
    }
    /// This shard, consulting and feeding `history` (the worker's) while it is open.
    pub fn with_history(mut self, history: NameHistory) -> Self {
        self.history = Some(history);
        self
    }
    /// Ends the shard's open life when its slot closes: frees what only recording
    /// needs and hands back the history, to carry to the next slot.
    pub fn close(&mut self) -> Option<NameHistory> {
        self.shed_scratch = Vec::new();
        self.history.take()
    }
    /// The slot's start.
    pub fn start(&self) -> Nanos {
        self.start
    }
    /// The limits this shard was made with.
    pub fn settings(&self) -> &SketchSettings {
        &self.settings
    }
    /// Records one query for `name` under `domain`. Allocates only for a new domain, a
    /// new sample name, and (amortised) while a domain's exact set of names grows.
    pub fn record_query(
        &mut self,
        domain: &[u8],
        name: &[u8],
        client: IpAddr,
        qtype: u16,
        size: u32,
    ) {
        let hash = xxh3_64(name);
        self.records = self.records.wrapping_add(1);
        let now = self.records as u32;
        if let Some(counts) = self.domains.get_mut(domain) {
            let before = counts.heap_bytes();
            counts.record_query(name, hash, client, qtype, size, &self.settings);
            counts.last_seen = now;
            let after = counts.heap_bytes();
            self.held_bytes = (self.held_bytes + after).saturating_sub(before);
            if self.bytes() > self.settings.max_bytes && !self.blocked {
                self.shed_to_fit(0);
            }
            return;
        }
        // Once the shard has had to shed, the room shedding made is kept for domains
        // that come back, not handed to the next strangers of a flood.
        if self.evicted > 0
            || !self.has_room_for(domain, DomainCounts::first_query_heap_bytes(name))
        {
            // The door: a domain the history does not know (fewer than two names: one
            // is what a shed one-off leaves) pushes nothing out on its first query in
            // the slot, only if it comes back. A flood of one-off domains costs a
            // look-up and a bit each, not an admission and an eviction.
            if let Some(history) = self.history.as_mut() {
                if history.names(domain) < 2 && !history.knock(domain) {
                    self.shed = self.shed.saturating_add(1);
                    return;
                }
            }
        }
        let mut counts = DomainCounts::new();
        counts.record_query(name, hash, client, qtype, size, &self.settings);
        counts.last_seen = now;
        self.admit(domain.into(), Box::new(counts));
    }
    /// Records one response of `size` bytes under `domain`.
    pub fn record_response(&mut self, domain: &[u8], size: u32) {
        self.records = self.records.wrapping_add(1);
        let now = self.records as u32;
        if let Some(counts) = self.domains.get_mut(domain) {
            counts.record_response(size);
            counts.last_seen = now;
            return;
        }
        if !self.has_room_for(domain, 0) {
            // A response adds no name: it never pushes a domain out (in an answered
            // flood, every refused query would otherwise come back as its response).
            self.shed = self.shed.saturating_add(1);
            return;
        }
        let mut counts = DomainCounts::new();
        counts.record_response(size);
        counts.last_seen = now;
        self.admit(domain.into(), Box::new(counts));
    }
    /// Whether a new domain whose first record costs `counts_heap` heap bytes fits
    /// without shedding (the same test as [`admit`](Self::admit)'s).
    #[inline]
    fn has_room_for(&self, domain: &[u8], counts_heap: usize) -> bool {
        self.fits(self.admission_cost(domain, counts_heap))
    }
    /// What admitting `domain` with counts holding `counts_heap` heap bytes adds,
    /// table growth included.
    fn admission_cost(&self, domain: &[u8], counts_heap: usize) -> usize {
        heap_block(domain.len()) + COUNTS_BYTES + counts_heap + self.growth_bytes()
    }
    /// Whether one more domain costing `cost` bytes stays within both bounds.
    fn fits(&self, cost: usize) -> bool {
        self.domains.len() < self.domain_room() && self.bytes() + cost <= self.settings.max_bytes
    }
    /// What the table would grow by on the next insert.
    fn growth_bytes(&self) -> usize {
        // A full table doubles on insert.
        if self.domains.len() >= self.domains.capacity()
            && self.domains.len() + 1 > self.table_capacity / 2
        {
            Self::doubled_table_bytes(self.table_capacity).saturating_sub(self.table_bytes())
        } else {
            0
        }
    }
    /// Adds another shard of the same slot into this one (the caller matches slots).
    /// Past this shard's bounds the least active small domains are shed.
    pub fn merge(&mut self, other: &Shard) {
        self.absorb_counters(other);
        for (domain, theirs) in &other.domains {
            if let Some(mine) = self.domains.get_mut(&**domain) {
                let before = mine.heap_bytes();
                mine.merge(theirs, &self.settings);
                self.held_bytes = (self.held_bytes + mine.heap_bytes()).saturating_sub(before);
            } else {
                self.admit(domain.clone(), theirs.clone());
            }
        }
        if self.bytes() > self.settings.max_bytes && !self.blocked {
            self.shed_to_fit(0);
        }
    }
    /// Like [`merge`](Self::merge), but takes `other` by value, moving its domains
    /// instead of copying them.
    pub fn merge_owned(&mut self, other: Shard) {
        self.absorb_counters(&other);
        for (domain, theirs) in other.domains {
            if let Some(mine) = self.domains.get_mut(&*domain) {
                let before = mine.heap_bytes();
                mine.merge(&theirs, &self.settings);
                self.held_bytes = (self.held_bytes + mine.heap_bytes()).saturating_sub(before);
            } else {
                self.admit(domain, theirs);
            }
        }
        if self.bytes() > self.settings.max_bytes && !self.blocked {
            self.shed_to_fit(0);
        }
    }
    fn absorb_counters(&mut self, other: &Shard) {
        self.shed = self.shed.saturating_add(other.shed);
        self.evicted = self.evicted.saturating_add(other.evicted);
        // Recency from the other shard's clock is not comparable to this one's; start
        // this clock past both so that what is recorded next is the most recent.
        self.records = self.records.max(other.records);
    }
    /// Inserts a domain not yet held, shedding others first if it does not fit.
    fn admit(&mut self, domain: Box<[u8]>, mut counts: Box<DomainCounts>) {
        if let Some(history) = &self.history {
            let prior = history.names(&domain).max(u64::from(counts.prior_names));
            counts.prior_names = u16::try_from(prior).unwrap_or(u16::MAX);
        }
        let counts_heap = counts.heap_bytes();
        let cost = self.admission_cost(&domain, counts_heap);
        if !self.fits(cost) && (self.blocked || !self.shed_to_fit(cost)) {
            let records = counts.requests.saturating_add(counts.responses);
            self.shed = self.shed.saturating_add(records);
            return;
        }
        self.held_bytes += heap_block(domain.len()) + COUNTS_BYTES + counts_heap;
        self.domains.insert(domain, counts);
        self.table_capacity = self.table_capacity.max(self.domains.capacity());
    }
    /// Sheds the least active unprotected domains until the shard is under three
    /// quarters of its bounds (with `extra` bytes and one domain to spare). Returns
    /// whether there is room for that domain afterwards.
    fn shed_to_fit(&mut self, extra: usize) -> bool {
        let room = self.domain_room();
        let max_bytes = self.settings.max_bytes;
        let target_domains = (room - room / 4).min(room.saturating_sub(1));
        let target_bytes = (max_bytes - max_bytes / 4).saturating_sub(extra);
        let table = self.table_bytes();
        let protect = self.settings.protect_names;
        // Candidates, least active first, with what shedding each would free.
        let mut candidates = std::mem::take(&mut self.shed_scratch);
        candidates.clear();
        candidates.extend(
            self.domains
                .iter()
                .filter(|(_, c)| !c.is_protected(protect))
                .map(|(d, c)| {
                    (
                        c.shed_rank(),
                        heap_block(d.len()) + COUNTS_BYTES + c.heap_bytes(),
                    )
                }),
        );
        candidates.sort_unstable();
        let mut domains = self.domains.len();
        let mut bytes = self.held_bytes + table;
        let mut cut: Option<(u64, u64, u32)> = None;
        let mut shed = 0usize;
        for (rank, freed) in &candidates {
            if domains <= target_domains && bytes <= target_bytes {
                break;
            }
            domains -= 1;
            bytes = bytes.saturating_sub(*freed);
            cut = Some(*rank);
            shed += 1;
        }
        if let Some(cut) = cut {
            // Ranks from merged shards' clocks can tie: of those at the cut, only as many
            // as planned go.
            let mut ties = candidates[..shed].iter().filter(|c| c.0 == cut).count();
            let mut evicted = 0u64;
            let mut shed_records = 0u64;
            let mut freed = 0usize;
            let history = &mut self.history;
            self.domains.retain(|d, c| {
                if c.is_protected(protect) {
                    return true;
                }
                let rank = c.shed_rank();
                if rank > cut || (rank == cut && ties == 0) {
                    return true;
                }
                if rank == cut {
                    ties -= 1;
                }
                evicted += 1;
                if let Some(history) = history.as_mut() {
                    // Remembered, even with a single name, so that a domain shed again
                    // and again (a slow tunnel under pressure) adds up to a known one.
                    history.add(d, c.names.count());
                }
                shed_records = shed_records.saturating_add(c.requests.saturating_add(c.responses));
                freed += heap_block(d.len()) + COUNTS_BYTES + c.heap_bytes();
                false
            });
            self.evicted = self.evicted.saturating_add(evicted);
            self.shed = self.shed.saturating_add(shed_records);
            self.held_bytes = self.held_bytes.saturating_sub(freed);
        }
        let fits = self.domains.len() < room && self.bytes() + extra <= max_bytes;
        // Every candidate was shed if it still does not fit: only protected domains
        // are left, and they stay until the slot leaves the window.
        self.blocked = !fits && cut == candidates.last().map(|c| c.0);
        self.shed_scratch = candidates;
        fits
    }
    /// Bytes of the domain table's slots (allocated whether used or not; the table
    /// never shrinks).
    fn table_bytes(&self) -> usize {
        self.table_capacity * TABLE_SLOT_BYTES * 8 / 7
    }
    /// Domains the shard may hold now: `max_domains`, unless growing the table
    /// (doubling) would take it past half the byte budget, so that the rest is left to
    /// the domains' own counts. Then at most half the table's capacity, the most
    /// hashbrown rehashes in place (clearing tombstones) rather than growing.
    fn domain_room(&self) -> usize {
        if Self::doubled_table_bytes(self.table_capacity) > self.settings.max_bytes / 2 {
            self.settings
                .max_domains
                .min((self.table_capacity / 2).max(1))
        } else {
            self.settings.max_domains
        }
    }
    /// Bytes of the table once a full table of `capacity` has grown.
    fn doubled_table_bytes(capacity: usize) -> usize {
        (capacity.max(3) + 1) * 2 * TABLE_SLOT_BYTES * 8 / 7
    }
    /// Estimated bytes held: the domain table, keys, and every domain's names, clients,
    /// samples and query types. What [`SketchSettings::max_bytes`] bounds.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.table_bytes() + self.held_bytes
    }
    /// Domains and their counts.
    pub fn domains(&self) -> impl Iterator<Item = (&[u8], &DomainCounts)> {
        self.domains
            .iter()
            .map(|(domain, counts)| (&**domain, &**counts))
    }
    /// The counts of one domain, if tracked.
    pub fn get(&self, domain: &[u8]) -> Option<&DomainCounts> {
        self.domains.get(domain).map(|counts| &**counts)
    }
    /// Domains tracked.
    pub fn len(&self) -> usize {
        self.domains.len()
    }
    /// Whether no domain was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Records (queries and responses) lost because their domain was shed or refused
    /// for lack of room, this shard's and those of the shards merged into it. Counted
    /// in records: a distinct count of lost domains would itself need unbounded memory.
    pub fn shed_domains(&self) -> u64 {
        self.shed
    }
    /// Domains shed to make room, here and in the shards merged into this one.
    pub fn evicted_domains(&self) -> u64 {
        self.evicted
    }
}

/// Rows of the [`NameHistory`]'s count-min sketch.
const HISTORY_ROWS: usize = 4;

/// About how many names each registered domain had in a worker's recent slots: what
/// lets shedding tell a slow tunnel (a few names in every slot) from the one-slot
/// domains of a flood, when each slot on its own shows them alike.
///
/// A count-min sketch of 16-bit counters, four rows, over a per-process
/// keyed hash of the domain (names are attacker-chosen), with conservative update (a
/// count raises each row only as far as the smallest row plus the count), so the
/// estimate is never below the truth and, away from saturation, close to it. A worker
/// adds every domain of a closed slot with two names or more, and every domain its open
/// shard sheds; every
/// [`SketchSettings::history_halving`] slots all counters halve, as TinyLFU ages its
/// counts, so the history spans about a window and domains long gone fade out.
///
/// In front of it, as in TinyLFU, a door: one bit per hash bucket, cleared at every
/// slot, set by a domain knocking at a full shard ([`knock`](Self::knock)). A full
/// shard lets a domain the history gives fewer than two names in only on its second
/// knock, so a flood of one-off domains costs a bit each and leaves the counters
/// nearly clean (a one-off that got in and was shed leaves one name, not enough to
/// pass for known).
#[derive(Clone, Debug)]
pub struct NameHistory {
    counters: Box<[u16]>,
    /// log2 of a row's width.
    width_bits: u32,
    /// The door's bits: 8 per counter (a third of the history's bytes).
    door: Box<[u64]>,
    hasher: foldhash::fast::RandomState,
    slots_since_halving: u32,
    halving: u32,
}

impl NameHistory {
    /// A history of at most `bytes` (a power-of-two width, at least 64 counters a row),
    /// halving every `halving` slots (at least 1).
    pub fn new(bytes: usize, halving: u32) -> Self {
        // 2 bytes a counter and one byte of door bits.
        let per_row = (bytes / (HISTORY_ROWS * 3)).max(64);
        let width_bits = usize::BITS - 1 - per_row.leading_zeros();
        let counters = HISTORY_ROWS << width_bits;
        Self {
            counters: vec![0; counters].into_boxed_slice(),
            width_bits,
            door: vec![0; counters / 8].into_boxed_slice(),
            hasher: foldhash::fast::RandomState::default(),
            slots_since_halving: 0,
            halving: halving.max(1),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        heap_block(self.counters.len() * 2)
            + heap_block(self.door.len() * 8)
            + std::mem::size_of::<Self>()
    }

    fn hash(&self, domain: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(domain)
    }

    /// The counter of a domain hashed to `hash` in each row.
    fn cells(&self, hash: u64) -> [usize; HISTORY_ROWS] {
        // Rows indexed by h1 + i * h2 (Kirsch and Mitzenmacher): one hash, independent
        // enough rows.
        let step = hash.rotate_left(32) | 1;
        std::array::from_fn(|row| {
            let h = hash.wrapping_add((row as u64).wrapping_mul(step));
            (row << self.width_bits) | (h >> (64 - self.width_bits)) as usize
        })
    }

    /// Names remembered for `domain`: at least as many as were added, fewer halvings.
    pub fn names(&self, domain: &[u8]) -> u64 {
        self.cells(self.hash(domain))
            .iter()
            .map(|&i| u64::from(self.counters[i]))
            .min()
            .unwrap_or(0)
    }

    /// Remembers `names` more names of `domain`.
    pub fn add(&mut self, domain: &[u8], names: u64) {
        let cells = self.cells(self.hash(domain));
        let least = cells
            .iter()
            .map(|&i| u64::from(self.counters[i]))
            .min()
            .unwrap_or(0);
        let raised = u16::try_from(least.saturating_add(names)).unwrap_or(u16::MAX);
        for i in cells {
            self.counters[i] = self.counters[i].max(raised);
        }
    }

    /// Adds what a closed slot showed of `domain`, if it had more than one name: a
    /// single name says little, and a flood of one-name domains would fill the
    /// counters until every stranger read as known.
    fn remember(&mut self, domain: &[u8], names: u64) {
        if names >= 2 {
            self.add(domain, names);
        }
    }

    /// `domain` knocks at the door: whether it (or a domain sharing its bit) knocked
    /// before in this slot. It has, afterwards.
    pub fn knock(&mut self, domain: &[u8]) -> bool {
        // The low bits: the rows use the high ones.
        let bit = self.hash(domain) as usize & (self.door.len() * 64 - 1);
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let knocked = self.door[word] & mask != 0;
        self.door[word] |= mask;
        knocked
    }

    /// Remembers a closed slot: every domain's names in it. `elapsed` slots have passed
    /// since the previous one closed (more than one after a silence); everything halves
    /// first as many times as halvings fell in that time.
    pub fn absorb(&mut self, shard: &Shard, elapsed: u64) {
        let since = u64::from(self.slots_since_halving).saturating_add(elapsed);
        let halvings = since / u64::from(self.halving);
        self.slots_since_halving = (since % u64::from(self.halving)) as u32;
        if halvings > 0 {
            let shift = halvings.min(16) as u32;
            for counter in self.counters.iter_mut() {
                *counter = counter.checked_shr(shift).unwrap_or(0);
            }
        }
        for (domain, counts) in shard.domains() {
            self.remember(domain, counts.unique_names());
        }
        self.door.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30));

    fn name(i: u64) -> Vec<u8> {
        format!("n{i}.pirate.sea").into_bytes()
    }

    fn shard_with(
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

    fn uniques(shard: &Shard) -> u64 {
        shard
            .get(b"pirate.sea")
            .map_or(0, DomainCounts::unique_names)
    }

    fn relative_error(estimate: u64, truth: u64) -> f64 {
        (estimate as f64 - truth as f64).abs() / truth as f64
    }

    #[test]
    fn counts_requests_bytes_and_responses() {
        let mut shard = Shard::new(0, &SketchSettings::default());
        shard.record_query(b"pirate.sea", b"a.pirate.sea", CLIENT, 16, 70);
        shard.record_query(b"pirate.sea", b"a.pirate.sea", CLIENT, 16, 70);
        shard.record_query(b"pirate.sea", b"b.pirate.sea", CLIENT, 1, 60);
        shard.record_response(b"pirate.sea", 150);
        shard.record_response(b"other.org", 99);
        let counts = shard.get(b"pirate.sea").expect("tracked");
        assert_eq!(counts.requests(), 3);
        assert_eq!(counts.unique_names(), 2);
        assert_eq!(counts.bytes_in(), 200);
        assert_eq!(counts.bytes_out(), 150);
        assert_eq!(counts.responses(), 1);
        assert_eq!(counts.qtypes(), vec![(16, 2), (1, 1)]);
        assert_eq!(counts.top_clients(10), vec![(CLIENT, 3)]);
        let samples: Vec<&[u8]> = counts.sample_names().collect();
        assert_eq!(samples, vec![&b"a.pirate.sea"[..], b"b.pirate.sea"]);
        assert_eq!(shard.len(), 2);
        assert_eq!(shard.get(b"other.org").map(DomainCounts::requests), Some(0));
    }

    #[test]
    fn exact_at_and_just_past_one_thousand() {
        let settings = SketchSettings::default();
        assert!(settings.exact_limit >= 1000);
        let thousand = shard_with(0, &settings, 0..1000);
        assert_eq!(uniques(&thousand), 1000);
        assert!(!thousand
            .get(b"pirate.sea")
            .is_some_and(DomainCounts::is_estimated));
        let more = shard_with(0, &settings, 0..1001);
        assert_eq!(uniques(&more), 1001);
        // Repeats do not count.
        let repeated = shard_with(0, &settings, (0..1000).chain(0..1000));
        assert_eq!(uniques(&repeated), 1000);
        // Exactly at the limit still exact; one more switches to the estimate.
        let limit = settings.exact_limit as u64;
        let at_limit = shard_with(0, &settings, 0..limit);
        assert_eq!(uniques(&at_limit), limit);
        assert!(!at_limit
            .get(b"pirate.sea")
            .is_some_and(DomainCounts::is_estimated));
        let past = shard_with(0, &settings, 0..limit + 1);
        assert!(past
            .get(b"pirate.sea")
            .is_some_and(DomainCounts::is_estimated));
        // The estimate never goes below what was counted exactly.
        assert!(uniques(&past) > limit);
        assert!(relative_error(uniques(&past), limit + 1) < 0.02);
    }

    #[test]
    fn union_of_exact_sets_stays_exact() {
        let settings = SketchSettings::default();
        // Ten slots of 300 names each, overlapping: 0..300, 70..370, ... 630..930.
        let mut merged = Shard::new(0, &settings);
        for s in 0..10 {
            merged.merge(&shard_with(0, &settings, s * 70..s * 70 + 300));
        }
        assert_eq!(uniques(&merged), 930);
        assert!(!merged
            .get(b"pirate.sea")
            .is_some_and(DomainCounts::is_estimated));
        assert_eq!(
            merged.get(b"pirate.sea").map(DomainCounts::requests),
            Some(3000)
        );
    }

    #[test]
    fn estimate_within_two_percent() {
        let settings = SketchSettings::default();
        for n in [10_000u64, 100_000, 1_000_000] {
            let shard = shard_with(0, &settings, 0..n);
            let estimate = uniques(&shard);
            assert!(
                relative_error(estimate, n) < 0.02,
                "{n} names estimated as {estimate}"
            );
        }
    }

    #[test]
    fn estimate_within_two_percent_when_merged_from_overlapping_slots() {
        let settings = SketchSettings::default();
        for n in [10_000u64, 100_000, 1_000_000] {
            // 16 slots, each a window of 2n/16 names sliding by n/16: every name is
            // in two slots, the last slot wraps to the start. Some slots stay exact
            // (n = 10 000: 1 250 per slot is past the limit; smaller pieces below).
            let step = n / 16;
            let mut merged = Shard::new(0, &settings);
            for s in 0..16 {
                let names = (s * step..s * step + 2 * step).map(|i| i % n);
                merged.merge_owned(shard_with(0, &settings, names));
            }
            let estimate = uniques(&merged);
            assert!(
                relative_error(estimate, n) < 0.02,
                "{n} names merged from 16 slots estimated as {estimate}"
            );
        }
        // Many small exact shards whose union overflows the limit.
        let mut merged = Shard::new(0, &settings);
        for s in 0..100u64 {
            merged.merge(&shard_with(0, &settings, s * 90..s * 90 + 180));
        }
        let estimate = uniques(&merged);
        assert!(relative_error(estimate, 9_090) < 0.02, "{estimate}");
        // Estimated into exact, and exact into estimated, give the same union.
        let big = shard_with(0, &settings, 0..20_000);
        let small = shard_with(0, &settings, 19_500..20_500);
        let mut a = big.clone();
        a.merge(&small);
        let mut b = small.clone();
        b.merge(&big);
        assert_eq!(uniques(&a), uniques(&b));
        assert!(relative_error(uniques(&a), 20_500) < 0.02);
    }

    #[test]
    fn hashes_are_stable_across_processes() {
        // Sketches from other sensors must merge: the name hash must not be seeded.
        assert_eq!(xxh3_64(b"pirate.sea"), xxh3_64(b"pirate.sea"));
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        let mut hll = Hll::new();
        hll.insert(0);
        hll.insert(u64::MAX);
        assert_eq!(hll.registers[0], HLL_Q as u8 + 1);
        assert_eq!(hll.registers[HLL_REGISTERS - 1], 1);
        assert_eq!(Hll::new().estimate(), 0.0);
    }

    #[test]
    fn top_clients_keep_heavy_hitters() {
        let settings = SketchSettings {
            max_clients: 8,
            ..SketchSettings::default()
        };
        let heavy = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let mut shard = Shard::new(0, &settings);
        for i in 0..2000u32 {
            // A new client every query, and the heavy one every fourth query.
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            shard.record_query(b"pirate.sea", b"x.pirate.sea", client, 1, 50);
            if i % 4 == 0 {
                shard.record_query(b"pirate.sea", b"x.pirate.sea", heavy, 1, 50);
            }
        }
        let counts = shard.get(b"pirate.sea").expect("tracked");
        let top = counts.top_clients(3);
        assert_eq!(top[0], (heavy, 500));
        assert_eq!(counts.top_clients(100).len(), 8);

        // Exact while under the bound; merge sums.
        let mut a = Shard::new(0, &settings);
        let mut b = Shard::new(0, &settings);
        let c1 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let c2 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        for _ in 0..3 {
            a.record_query(b"d.org", b"a.d.org", c1, 1, 50);
        }
        b.record_query(b"d.org", b"a.d.org", c1, 1, 50);
        b.record_query(b"d.org", b"a.d.org", c2, 1, 50);
        a.merge(&b);
        let merged = a.get(b"d.org").expect("tracked");
        assert_eq!(merged.top_clients(5), vec![(c1, 4), (c2, 1)]);
    }

    #[test]
    fn samples_are_first_distinct_names() {
        let settings = SketchSettings::default();
        let mut shard = Shard::new(0, &settings);
        for i in [1, 1, 2, 3, 2, 4, 5, 6, 7] {
            shard.record_query(b"pirate.sea", &name(i), CLIENT, 10, 75);
        }
        let counts = shard.get(b"pirate.sea").expect("tracked");
        let expected: Vec<Vec<u8>> = [1, 2, 3, 4, 5].iter().map(|&i| name(i)).collect();
        let samples: Vec<Vec<u8>> = counts.sample_names().map(<[u8]>::to_vec).collect();
        assert_eq!(samples, expected);

        let mut a = shard_with(0, &settings, [1, 2].into_iter());
        a.merge(&shard_with(0, &settings, [2, 3, 4, 5, 6].into_iter()));
        let merged = a.get(b"pirate.sea").expect("tracked");
        let samples: Vec<Vec<u8>> = merged.sample_names().map(<[u8]>::to_vec).collect();
        assert_eq!(samples, expected);
    }

    #[test]
    fn samples_stay_distinct_once_estimated_and_keep_long_names_whole() {
        // Exact limit 2: the third name is already past it, so whether a name is new
        // comes from comparing with the samples held.
        let settings = SketchSettings {
            exact_limit: 2,
            max_samples: 4,
            ..SketchSettings::default()
        };
        let long = [b'a'; 400];
        let mut shard = Shard::new(0, &settings);
        for n in [
            &name(1)[..],
            &name(2),
            &name(3),
            &name(3),
            &long,
            &name(4),
            &name(5),
        ] {
            shard.record_query(b"pirate.sea", n, CLIENT, 10, 75);
        }
        let counts = shard.get(b"pirate.sea").expect("tracked");
        assert!(counts.is_estimated());
        let samples: Vec<&[u8]> = counts.sample_names().collect();
        assert_eq!(samples, vec![&name(1)[..], &name(2), &name(3), &long[..]]);
    }

    #[test]
    fn names_stay_exact_across_the_small_array_and_the_set() {
        // Below, at and past FEW_NAMES, alone and merged from overlapping halves.
        let settings = SketchSettings::default();
        for n in [
            FEW_NAMES as u64 - 1,
            FEW_NAMES as u64,
            FEW_NAMES as u64 + 1,
            200,
        ] {
            let whole = shard_with(0, &settings, 0..n);
            assert_eq!(uniques(&whole), n);
            let mut a = shard_with(0, &settings, 0..n / 2 + 3);
            a.merge(&shard_with(0, &settings, n / 2..n));
            assert_eq!(uniques(&a), n);
            let counts = whole.get(b"pirate.sea").expect("tracked");
            assert!(!counts.is_estimated());
        }
    }

    #[test]
    fn history_never_forgets_too_little_and_rarely_too_much() {
        // 10 000 domains into 4 x 8 192 counters (about the default's load: a million
        // domains in a window, half a million counters a row): many share a counter
        // in some row.
        let mut history = NameHistory::new(96 << 10, 8);
        assert_eq!(history.counters.len(), 4 * 8192);
        let truth = |d: u64| d % 37 + 1;
        for d in 0..10_000u64 {
            history.add(format!("d{d}.example").as_bytes(), truth(d));
        }
        let (mut over, mut exact) = (0u64, 0u64);
        for d in 0..10_000u64 {
            let remembered = history.names(format!("d{d}.example").as_bytes());
            assert!(remembered >= truth(d), "d{d}: {remembered} < {}", truth(d));
            over += remembered - truth(d);
            exact += u64::from(remembered == truth(d));
        }
        // Conservative update keeps most exact and the mean overestimate to a few names.
        assert!(exact > 5_000, "{exact} exact");
        assert!(over / 10_000 < 3, "mean overestimate {}", over / 10_000);
        assert_eq!(NameHistory::new(64 << 10, 8).names(b"never.example"), 0);
        // Saturates rather than wraps.
        history.add(b"huge.example", 1 << 40);
        assert_eq!(history.names(b"huge.example"), u64::from(u16::MAX));
    }

    #[test]
    fn history_halves_every_so_many_slots_of_time() {
        let mut shard = Shard::new(0, &SketchSettings::default());
        for i in 0..40 {
            shard.record_query(b"pirate.sea", &name(i), CLIENT, 16, 80);
        }
        let mut history = NameHistory::new(1 << 12, 2);
        history.absorb(&shard, 1);
        assert_eq!(history.names(b"pirate.sea"), 40);
        history.absorb(&shard, 1);
        // The second slot's turn to halve came first: 40 / 2 + 40.
        assert_eq!(history.names(b"pirate.sea"), 60);
        // Five slots of silence: two more halvings, then the slot.
        history.absorb(&Shard::new(0, &SketchSettings::default()), 5);
        assert_eq!(history.names(b"pirate.sea"), 15);
        history.absorb(&Shard::new(0, &SketchSettings::default()), 100);
        assert_eq!(history.names(b"pirate.sea"), 0);
    }

    #[test]
    fn the_doorkeeper_turns_away_strangers_and_lets_them_in_on_their_return() {
        let settings = SketchSettings {
            max_domains: 4,
            ..SketchSettings::default()
        };
        let mut shard = Shard::new(0, &settings).with_history(NameHistory::new(1 << 12, 8));
        for i in 0..3 {
            shard.record_query(b"early.example", &name(i), CLIENT, 16, 80);
        }
        for d in 0..3 {
            for i in 0..2 {
                shard.record_query(format!("x{d}.example").as_bytes(), &name(i), CLIENT, 1, 60);
            }
        }
        assert_eq!(shard.len(), 4);
        // Full: a domain never seen is turned away, pushing nothing out.
        shard.record_query(b"x3.example", &name(0), CLIENT, 1, 60);
        assert!(shard.get(b"x3.example").is_none());
        assert_eq!(
            (shard.len(), shard.evicted_domains(), shard.shed_domains()),
            (4, 0, 1)
        );
        // Back again: it knocked before, so it gets in, and the least active, oldest
        // domain (x0) goes, remembered in turn.
        shard.record_query(b"x3.example", &name(1), CLIENT, 1, 60);
        let back = shard.get(b"x3.example").expect("admitted");
        assert_eq!((back.prior_names, back.weight()), (0, 1));
        assert!(shard.get(b"x0.example").is_none());
        assert!(shard.get(b"early.example").is_some());
        assert_eq!(shard.evicted_domains(), 1);
        let mut history = shard.close().expect("history");
        assert!(history.names(b"x0.example") >= 2);
        assert!(shard.close().is_none());
        // In the next slot, a domain shed in this one comes in at once; the door is
        // closed again to the others.
        history.absorb(&shard, 1);
        let mut next = Shard::new(0, &settings).with_history(history);
        for d in 0..4 {
            next.record_query(format!("y{d}.example").as_bytes(), &name(0), CLIENT, 1, 60);
        }
        next.record_query(b"x0.example", &name(0), CLIENT, 1, 60);
        assert!(next.get(b"x0.example").is_some());
        next.record_query(b"x3.example", &name(0), CLIENT, 1, 60);
        next.record_query(b"y9.example", &name(0), CLIENT, 1, 60);
        assert!(next.get(b"y9.example").is_none());
        // Without a history every newcomer gets in and the least active goes.
        let mut plain = Shard::new(0, &settings);
        for d in 0..5 {
            plain.record_query(format!("x{d}.example").as_bytes(), &name(0), CLIENT, 1, 60);
        }
        assert!(plain.get(b"x4.example").is_some());
        assert_eq!(plain.evicted_domains(), 1);
    }

    #[test]
    fn a_first_query_costs_what_the_door_expects() {
        for name in [&b"a.pirate.sea"[..], &[b'x'; 300]] {
            let mut counts = DomainCounts::new();
            counts.record_query(
                name,
                xxh3_64(name),
                CLIENT,
                1,
                60,
                &SketchSettings::default(),
            );
            assert_eq!(
                counts.heap_bytes(),
                DomainCounts::first_query_heap_bytes(name)
            );
        }
    }

    #[test]
    fn twenty_names_take_a_fraction_of_a_kilobyte() {
        // The window holds one of these per domain per slot: the memory bar rests on it.
        let mut shard = Shard::new(0, &SketchSettings::default());
        for i in 0..20u8 {
            let name = format!("h{i}x5f3a9c.d123456.example");
            let client = IpAddr::V4(Ipv4Addr::new(10, 2, 0, i % 2));
            shard.record_query(b"d123456.example", name.as_bytes(), client, 1, 60);
        }
        let counts = shard.get(b"d123456.example").expect("tracked");
        let held = COUNTS_BYTES + counts.heap_bytes();
        assert!(held <= 600, "{held} bytes for 20 names");
    }

    #[test]
    fn qtypes_are_bounded() {
        let mut shard = Shard::new(0, &SketchSettings::default());
        for qtype in 0..1000u16 {
            shard.record_query(b"pirate.sea", b"a.pirate.sea", CLIENT, qtype, 50);
        }
        for _ in 0..50 {
            shard.record_query(b"pirate.sea", b"a.pirate.sea", CLIENT, 16, 50);
        }
        let qtypes = shard.get(b"pirate.sea").expect("tracked").qtypes();
        assert_eq!(qtypes.len(), MAX_QTYPES);
        assert_eq!(qtypes[0].0, 16);
        assert!(qtypes[0].1 >= 50);
    }

    #[test]
    fn least_active_domains_are_shed_past_the_bound() {
        let settings = SketchSettings {
            max_domains: 3,
            ..SketchSettings::default()
        };
        let mut shard = Shard::new(42, &settings);
        // a is the most active; b the oldest of the small ones.
        for d in [&b"a.org"[..], b"a.org", b"b.org", b"c.org", b"d.org"] {
            shard.record_query(d, b"www", CLIENT, 1, 50);
        }
        assert_eq!(shard.start(), 42);
        assert_eq!(shard.len(), 3);
        assert!(
            shard.get(b"b.org").is_none(),
            "the least active, oldest, went"
        );
        assert_eq!(shard.get(b"a.org").map(DomainCounts::requests), Some(2));
        assert!(shard.get(b"c.org").is_some() && shard.get(b"d.org").is_some());
        assert_eq!(shard.evicted_domains(), 1);
        assert_eq!(shard.shed_domains(), 1);
        // A response for a new domain adds no name: it pushes nothing out, and is
        // counted as shed itself.
        shard.record_response(b"e.org", 100);
        assert!(shard.get(b"e.org").is_none());
        assert_eq!(shard.len(), 3);
        assert_eq!(shard.evicted_domains(), 1);
        assert_eq!(shard.shed_domains(), 2);
        // A query for one sheds the oldest small one (c).
        shard.record_query(b"e.org", b"www", CLIENT, 1, 50);
        assert!(shard.get(b"c.org").is_none() && shard.get(b"e.org").is_some());
        assert_eq!(shard.evicted_domains(), 2);
        assert_eq!(shard.shed_domains(), 3);

        // A merge past the bound sheds as well, and carries the other's counters.
        let mut other = Shard::new(42, &settings);
        other.record_query(b"a.org", b"www", CLIENT, 1, 50);
        other.record_query(b"a.org", b"www", CLIENT, 1, 50);
        other.record_query(b"f.org", b"www", CLIENT, 1, 50);
        other.record_query(b"g.org", b"www", CLIENT, 1, 50);
        other.record_query(b"h.org", b"www", CLIENT, 1, 50);
        assert_eq!(other.evicted_domains(), 1);
        shard.merge(&other);
        assert_eq!(shard.len(), 3);
        assert_eq!(shard.get(b"a.org").map(DomainCounts::requests), Some(4));
        assert!(shard.evicted_domains() >= 4);
        // Each evicted domain had one record, and one response was turned away.
        assert_eq!(shard.shed_domains(), shard.evicted_domains() + 1);
    }

    #[test]
    fn flood_of_new_domains_stays_under_the_byte_bound_and_keeps_the_tunnel() {
        let settings = SketchSettings {
            max_bytes: 1 << 20,
            ..SketchSettings::default()
        };
        let mut shard = Shard::new(0, &settings);
        let mut peak = 0;
        // The tunnel queries once per 100 new flood domains: well within the few
        // thousand small domains that 1 MiB holds, so its first name is never the
        // oldest small entry, and from its second it outranks every flood domain.
        let tunnel_names = 400u64;
        let flood = tunnel_names * 100;
        for i in 0..flood {
            let domain = format!("dga{i:x}.example");
            shard.record_query(
                domain.as_bytes(),
                format!("www.{domain}").as_bytes(),
                CLIENT,
                1,
                40,
            );
            shard.record_response(domain.as_bytes(), 56);
            if i % 100 == 0 {
                shard.record_query(b"pirate.sea", &name(i / 100), CLIENT, 10, 90);
            }
            peak = peak.max(shard.bytes());
        }

        assert!(peak <= settings.max_bytes, "peak {peak} bytes");
        let tunnel = shard.get(b"pirate.sea").expect("the tunnel is kept");
        assert_eq!(tunnel.requests(), tunnel_names);
        assert_eq!(tunnel.unique_names(), tunnel_names);
        assert_eq!(tunnel.bytes_in(), tunnel_names * 90);
        // Most of the flood went, and every record of it is counted.
        assert!(shard.len() < 10_000, "{} domains", shard.len());
        let evicted = shard.evicted_domains();
        assert!(evicted > flood - 10_000);
        let held_flood = shard.len() as u64 - 1;
        assert_eq!(evicted + held_flood, flood);
        assert_eq!(shard.shed_domains(), 2 * evicted);
        // The estimate is not far from what is really allocated: the bound is real.
        assert!(shard.bytes() > shard.len() * 300, "{} bytes", shard.bytes());
    }

    #[test]
    fn protected_domains_are_never_shed() {
        let settings = SketchSettings {
            max_domains: 4,
            protect_names: 10,
            ..SketchSettings::default()
        };
        let mut shard = Shard::new(0, &settings);
        // Four domains with 10 names each, all older than anything that follows.
        for d in 0..4u64 {
            let domain = format!("busy{d}.org");
            for i in 0..10 {
                shard.record_query(domain.as_bytes(), &name(i), CLIENT, 1, 50);
            }
        }
        for i in 0..1000u64 {
            let domain = format!("new{i}.org");
            shard.record_query(domain.as_bytes(), b"www", CLIENT, 1, 50);
        }
        assert_eq!(shard.len(), 4);
        for d in 0..4u64 {
            let counts = shard.get(format!("busy{d}.org").as_bytes()).expect("kept");
            assert_eq!(counts.unique_names(), 10);
        }
        // Every new domain was refused (nothing could be shed) and counted.
        assert_eq!(shard.evicted_domains(), 0);
        assert_eq!(shard.shed_domains(), 1000);
        // A protected domain still counts its own traffic.
        shard.record_query(b"busy0.org", &name(99), CLIENT, 1, 50);
        assert_eq!(
            shard.get(b"busy0.org").map(DomainCounts::unique_names),
            Some(11)
        );
    }

    #[test]
    fn merged_shards_stay_under_the_byte_bound() {
        let settings = SketchSettings {
            max_bytes: 256 * 1024,
            ..SketchSettings::default()
        };
        let mut merged = Shard::new(0, &settings);
        for part in 0..8u64 {
            let mut shard = Shard::new(0, &settings);
            for i in 0..5_000u64 {
                let domain = format!("p{part}d{i}.example");
                shard.record_query(domain.as_bytes(), b"www", CLIENT, 1, 40);
            }
            shard.record_query(b"pirate.sea", &name(part), CLIENT, 10, 75);
            assert!(shard.bytes() <= settings.max_bytes);
            merged.merge_owned(shard);
            assert!(merged.bytes() <= settings.max_bytes, "{}", merged.bytes());
        }
        assert_eq!(
            merged.get(b"pirate.sea").map(DomainCounts::unique_names),
            Some(8)
        );
        let held = merged.len() as u64 - 1;
        assert_eq!(merged.evicted_domains() + held, 8 * 5_000);
    }
}
