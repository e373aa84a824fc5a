//! Bounded heavy-hitter counts (space-saving) for query types, the scan and the order
//! the clients' counts use, and the small vectors' growth step.

use smallvec::SmallVec;

use super::codec::{CodecError, Decoder, Encoder};
use super::shard::heap_block;

/// Pushes `item`, growing the vector by `step` elements at a time rather than doubling:
/// these vectors are many and small, and a doubled block is half empty on average.
#[inline]
pub(super) fn push_stepped<T>(vec: &mut Vec<T>, item: T, step: usize) {
    if vec.len() == vec.capacity() {
        vec.reserve_exact(step.max(1));
    }
    vec.push(item);
}

/// Adds `n` to `key`'s count if `entries` holds it; whether it did. One bubble step
/// keeps heavy keys near the front, where the scan finds them first.
#[inline]
pub(super) fn bump<K: Eq>(entries: &mut [(K, u64)], key: &K, n: u64) -> bool {
    let Some(i) = entries.iter().position(|e| e.0 == *key) else {
        return false;
    };
    entries[i].1 += n;
    if i > 0 && entries[i - 1].1 < entries[i].1 {
        entries.swap(i - 1, i);
    }
    true
}

/// Heaviest first, ties by key so output is deterministic.
pub(super) fn sort_heaviest_first<K: Ord>(entries: &mut [(K, u64)]) {
    entries.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
}

/// Bounded counts by 16-bit key (the query types), heaviest kept: a space-saving
/// summary. While fewer keys than the bound were seen the counts are exact; past it a
/// new key takes the place of the least counted one and inherits its count (an
/// over-estimate), so a key that keeps coming back climbs and stays while rare keys
/// churn through the last places. The bound is the caller's (it is the same for every
/// domain of a shard).
///
/// Each entry is one word, the key above a 48-bit count ([`packed`]), and the first
/// `INLINE` entries are held in place, without a heap block. Two words fit where one
/// `(u16, u64)` pair and its padding took 16 bytes, so a domain asked for A and AAAA
/// (most of a resolver's) keeps both without a block of its own: on the resolver mix
/// that spared 0.064 heap blocks a frame, grown and freed (docs/performance.md, sixth
/// pass). (Clients have their own structure, `clients::TopClients`, indexed once full.)
#[derive(Clone, Debug)]
pub(super) struct TopCounts<const INLINE: usize> {
    entries: SmallVec<[u64; INLINE]>,
}

/// Bits of an entry's count: 2.8e14, past any slot's queries at line rate; counts
/// saturate there.
const COUNT_BITS: u32 = 48;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;

/// An entry: `key` above `count`, saturated at [`COUNT_MAX`].
#[inline]
fn packed(key: u16, count: u64) -> u64 {
    u64::from(key) << COUNT_BITS | count.min(COUNT_MAX)
}

#[inline]
fn key_of(entry: u64) -> u16 {
    (entry >> COUNT_BITS) as u16
}

#[inline]
fn count_of(entry: u64) -> u64 {
    entry & COUNT_MAX
}

impl<const INLINE: usize> TopCounts<INLINE> {
    pub(super) fn new() -> Self {
        Self {
            entries: SmallVec::new(),
        }
    }

    /// Adds `n` to `key`, growing by `step` entries at a time up to `bound`.
    // Inlined by force into `DomainCounts::record_query`, its one caller a query: left
    // to itself the compiler kept the three parts' adds calls (19 instructions a frame
    // with their prologues, docs/performance.md).
    #[inline(always)]
    pub(super) fn add(&mut self, key: u16, n: u64, bound: usize, step: usize) {
        if let Some(i) = self.entries.iter().position(|&e| key_of(e) == key) {
            // One bubble step keeps heavy keys near the front, where the scan finds
            // them first.
            self.entries[i] = packed(key, count_of(self.entries[i]).saturating_add(n));
            if i > 0 && count_of(self.entries[i - 1]) < count_of(self.entries[i]) {
                self.entries.swap(i - 1, i);
            }
            return;
        }
        if self.entries.len() < bound {
            let step = step.min(bound - self.entries.len());
            if self.entries.len() == self.entries.capacity() {
                self.entries.reserve_exact(step.max(1));
            }
            self.entries.push(packed(key, n));
            return;
        }
        if let Some(least) = self.entries.iter_mut().min_by_key(|e| count_of(**e)) {
            *least = packed(key, count_of(*least).saturating_add(n));
        }
    }

    /// Whether the next [`add`](Self::add) may allocate: every place is taken.
    #[inline]
    pub(super) fn may_grow(&self) -> bool {
        self.entries.len() == self.entries.capacity()
    }

    /// Sums counts key by key; past the bound the lightest keys are dropped.
    pub(super) fn merge(&mut self, other: &TopCounts<INLINE>, bound: usize) {
        for &theirs in &other.entries {
            let key = key_of(theirs);
            match self.entries.iter_mut().find(|e| key_of(**e) == key) {
                Some(entry) => {
                    *entry = packed(key, count_of(*entry).saturating_add(count_of(theirs)))
                }
                None => self.entries.push(theirs),
            }
        }
        // In place, in `sort_heaviest_first`'s order: a merge runs for every domain of
        // every slot the rule sums, and unpacking into a vector cost a block each.
        self.entries
            .sort_unstable_by_key(|&e| (std::cmp::Reverse(count_of(e)), key_of(e)));
        self.entries.truncate(bound);
        self.entries.shrink_to_fit();
    }

    /// The counts by key, heaviest first (ties by key).
    pub(super) fn sorted(&self) -> Vec<(u16, u64)> {
        let mut sorted: Vec<(u16, u64)> = self
            .entries
            .iter()
            .map(|&e| (key_of(e), count_of(e)))
            .collect();
        sort_heaviest_first(&mut sorted);
        sorted
    }

    pub(super) fn heap_bytes(&self) -> usize {
        if self.entries.spilled() {
            heap_block(self.entries.capacity() * size_of::<u64>())
        } else {
            0
        }
    }

    /// Writes the counts, by key.
    pub(super) fn encode(&self, e: &mut Encoder) {
        e.count(self.entries.len() as u64);
        for &entry in &self.entries {
            e.count(u64::from(key_of(entry)));
            e.count(count_of(entry));
        }
    }

    /// Reads what [`encode`](Self::encode) wrote: at most `bound` keys, none twice;
    /// counts past 48 bits saturate.
    pub(super) fn decode(d: &mut Decoder<'_>, bound: usize) -> Result<Self, CodecError> {
        let n = d.items(bound, 2, "more counts than are kept")?;
        let mut entries = SmallVec::with_capacity(n);
        for _ in 0..n {
            let key = d.count_at_most(u64::from(u16::MAX), "a key past 16 bits")? as u16;
            if entries.iter().any(|&e| key_of(e) == key) {
                return Err(CodecError::Invalid("the same key counted twice"));
            }
            entries.push(packed(key, d.count()?));
        }
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::test_shards::*;

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
    fn packed_counts_keep_every_key_and_saturate() {
        let mut top = TopCounts::<2>::new();
        top.add(u16::MAX, 3, 4, 1);
        top.add(0, 1, 4, 1);
        // Two keys in place: no heap block.
        assert_eq!(top.heap_bytes(), 0);
        top.add(0, 4, 4, 1);
        assert_eq!(top.sorted(), vec![(0, 5), (u16::MAX, 3)]);
        top.add(28, COUNT_MAX, 4, 1);
        top.add(28, 7, 4, 1);
        assert!(top.heap_bytes() > 0);
        assert_eq!(top.sorted(), vec![(28, COUNT_MAX), (0, 5), (u16::MAX, 3)]);

        // Past the bound the least counted key gives its place and count.
        let mut full = TopCounts::<2>::new();
        full.add(1, 10, 2, 1);
        full.add(2, 2, 2, 1);
        full.add(3, 1, 2, 1);
        assert_eq!(full.sorted(), vec![(1, 10), (3, 3)]);

        // Merging sums by key, saturating, and keeps the heaviest.
        let mut other = TopCounts::<2>::new();
        other.add(28, 1, 4, 1);
        other.add(5, 1, 4, 1);
        top.merge(&other, 3);
        assert_eq!(top.sorted(), vec![(28, COUNT_MAX), (0, 5), (u16::MAX, 3)]);

        let mut e = Encoder::new();
        top.encode(&mut e);
        let bytes = e.into_bytes();
        let back = TopCounts::<2>::decode(&mut Decoder::new(&bytes), 4).expect("decodes");
        assert_eq!(back.sorted(), top.sorted());
    }
}
