//! Bounded heavy-hitter counts (space-saving) for query types, the scan and the order
//! they share with the clients' counts, and the small vectors' growth step.

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

/// Bounded counts by key, heaviest kept: a space-saving summary. While fewer keys than
/// the bound were seen the counts are exact; past it a new key takes the place of the
/// least counted one and inherits its count (an over-estimate), so a key that keeps
/// coming back climbs and stays while rare keys churn through the last places. The
/// bound is the caller's (it is the same for every domain of a shard).
///
/// The first `INLINE` entries are held in place, without a heap block: the query types
/// keep one, as most domains of a slot have only one. (Clients have their own
/// structure, `clients::TopClients`, indexed once full.)
#[derive(Clone, Debug)]
pub(super) struct TopCounts<K, const INLINE: usize> {
    pub(super) entries: SmallVec<[(K, u64); INLINE]>,
}

impl<K: Copy + Eq + Ord, const INLINE: usize> TopCounts<K, INLINE> {
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
    pub(super) fn add(&mut self, key: K, n: u64, bound: usize, step: usize) {
        if bump(&mut self.entries, &key, n) {
            return;
        }
        if self.entries.len() < bound {
            let step = step.min(bound - self.entries.len());
            if self.entries.len() == self.entries.capacity() {
                self.entries.reserve_exact(step.max(1));
            }
            self.entries.push((key, n));
            return;
        }
        if let Some(least) = self.entries.iter_mut().min_by_key(|e| e.1) {
            *least = (key, least.1 + n);
        }
    }

    /// Whether the next [`add`](Self::add) may allocate: every place is taken.
    #[inline]
    pub(super) fn may_grow(&self) -> bool {
        self.entries.len() == self.entries.capacity()
    }

    /// Sums counts key by key; past the bound the lightest keys are dropped.
    pub(super) fn merge(&mut self, other: &TopCounts<K, INLINE>, bound: usize) {
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

    fn sort(&mut self) {
        sort_heaviest_first(&mut self.entries);
    }

    pub(super) fn sorted(&self) -> Vec<(K, u64)> {
        let mut sorted = self.clone();
        sorted.sort();
        sorted.entries.into_vec()
    }

    pub(super) fn heap_bytes(&self) -> usize {
        if self.entries.spilled() {
            heap_block(self.entries.capacity() * size_of::<(K, u64)>())
        } else {
            0
        }
    }
}

impl<const INLINE: usize> TopCounts<u16, INLINE> {
    /// Writes the counts, by key.
    pub(super) fn encode(&self, e: &mut Encoder) {
        e.count(self.entries.len() as u64);
        for &(key, n) in &self.entries {
            e.count(u64::from(key));
            e.count(n);
        }
    }

    /// Reads what [`encode`](Self::encode) wrote: at most `bound` keys, none twice.
    pub(super) fn decode(d: &mut Decoder<'_>, bound: usize) -> Result<Self, CodecError> {
        let n = d.items(bound, 2, "more counts than are kept")?;
        let mut entries = SmallVec::with_capacity(n);
        for _ in 0..n {
            let key = d.count_at_most(u64::from(u16::MAX), "a key past 16 bits")? as u16;
            if entries.iter().any(|&(k, _)| k == key) {
                return Err(CodecError::Invalid("the same key counted twice"));
            }
            entries.push((key, d.count()?));
        }
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
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
}
