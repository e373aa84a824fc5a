//! A domain's distinct names: exact while small (in place, then a short array, then a
//! hash set), estimated past the limit.

use std::collections::HashSet;

use super::codec::{CodecError, Decoder, Encoder};
use super::hll::{Hll, HLL_REGISTERS};
use super::shard::heap_block;
use super::top::push_stepped;

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
pub(super) enum UniqueNames {
    /// No name yet (a domain seen only in responses so far).
    Empty,
    /// One hash, held in place, as is [`Two`](Self::Two): most domains have one or
    /// two names in a slot, and an array of their own cost each a block and a cache
    /// miss a query. The array's niche leaves room for both without widening the enum.
    One(u64),
    /// Two hashes, in place.
    Two([u64; 2]),
    /// Up to [`FEW_NAMES`] hashes in an array of their own, unordered: those past the
    /// two held in place (any, when the exact limit is below two).
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
    pub(super) fn new() -> Self {
        UniqueNames::Empty
    }

    /// Adds a hash. Returns `Some(true)` if it was new, `Some(false)` if seen, `None`
    /// once estimated (membership is no longer known).
    // Inlined by force into `DomainCounts::record_query`, its one caller a query: left
    // to itself the compiler kept the three parts' adds calls (19 instructions a frame
    // with their prologues, docs/performance.md).
    #[inline(always)]
    pub(super) fn insert(&mut self, hash: u64, limit: usize) -> Option<bool> {
        // A loop, not a call to itself, once the names have moved up: the recursion kept
        // the function a call, with its prologue and epilogue, despite the attribute.
        loop {
            match self {
                UniqueNames::Empty if limit > 0 => {
                    *self = UniqueNames::One(hash);
                    return Some(true);
                }
                UniqueNames::One(seen) if *seen == hash => return Some(false),
                UniqueNames::One(seen) if limit > 1 => {
                    *self = UniqueNames::Two([*seen, hash]);
                    return Some(true);
                }
                UniqueNames::Two(seen) if seen.contains(&hash) => return Some(false),
                UniqueNames::Empty | UniqueNames::One(_) | UniqueNames::Two(_) => self.spill(),
                UniqueNames::Few(hashes) => {
                    if hashes.contains(&hash) {
                        return Some(false);
                    }
                    if hashes.len() < FEW_NAMES.min(limit) {
                        push_stepped(hashes, hash, 4);
                        return Some(true);
                    }
                    let mut set =
                        HashSet::with_capacity_and_hasher(FEW_NAMES + 1, SetState::default());
                    set.extend(hashes.iter().copied());
                    *self = UniqueNames::Many(Box::new(set));
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
                    return Some(true);
                }
                UniqueNames::Estimated { hll, .. } => {
                    hll.insert(hash);
                    return None;
                }
            }
        }
    }

    /// Moves the hashes held in place to an array of their own, with room for the
    /// next (the array's first step).
    #[cold]
    fn spill(&mut self) {
        let Some(held) = self.in_place() else {
            return;
        };
        // At most two are held in place: the array's first step of four has room.
        let mut hashes = Vec::with_capacity(4);
        hashes.extend_from_slice(held);
        *self = UniqueNames::Few(hashes);
    }

    /// The hashes held in place, if that is how they are held.
    fn in_place(&self) -> Option<&[u64]> {
        match self {
            UniqueNames::Empty => Some(&[]),
            UniqueNames::One(hash) => Some(std::slice::from_ref(hash)),
            UniqueNames::Two(hashes) => Some(hashes),
            _ => None,
        }
    }

    /// The hashes held exactly in an array or in place.
    fn listed(&self) -> Option<&[u64]> {
        match self {
            UniqueNames::Few(hashes) => Some(hashes),
            names => names.in_place(),
        }
    }

    /// The hashes, in no particular order, while the set is exact; `None` once
    /// estimated.
    pub(super) fn hashes(&self) -> Option<Vec<u64>> {
        match self {
            UniqueNames::Many(set) => Some(set.iter().copied().collect()),
            UniqueNames::Estimated { .. } => None,
            names => Some(names.listed().unwrap_or_default().to_vec()),
        }
    }

    /// Whether the next [`insert`](Self::insert) of a new hash may allocate: the
    /// array is full, the set is about to grow, or either must change form.
    #[inline]
    pub(super) fn may_grow(&self, limit: usize) -> bool {
        match self {
            UniqueNames::Empty => limit < 1,
            UniqueNames::One(_) => limit < 2,
            UniqueNames::Two(_) => true,
            UniqueNames::Few(hashes) => {
                hashes.len() == hashes.capacity() || hashes.len() >= FEW_NAMES.min(limit)
            }
            UniqueNames::Many(set) => set.len() >= set.capacity() || set.len() >= limit,
            UniqueNames::Estimated { .. } => false,
        }
    }

    pub(super) fn merge(&mut self, other: &UniqueNames, limit: usize) {
        match other {
            UniqueNames::Empty
            | UniqueNames::One(_)
            | UniqueNames::Two(_)
            | UniqueNames::Few(_) => {
                let theirs = other.listed().unwrap_or_default();
                self.merge_exact(theirs.iter().copied(), limit)
            }
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
                match &*self {
                    UniqueNames::Many(mine) => mine.iter().for_each(|&h| hll.insert(h)),
                    UniqueNames::Estimated { .. } => {}
                    mine => {
                        let listed = mine.listed().unwrap_or_default();
                        listed.iter().for_each(|&h| hll.insert(h))
                    }
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

    pub(super) fn count(&self) -> u64 {
        match self {
            UniqueNames::Empty => 0,
            UniqueNames::One(_) => 1,
            UniqueNames::Two(_) => 2,
            UniqueNames::Few(hashes) => hashes.len() as u64,
            UniqueNames::Many(set) => set.len() as u64,
            UniqueNames::Estimated { hll, floor } => {
                // f64 to u64 `as` saturates; the estimate is finite and non-negative.
                (hll.estimate().round() as u64).max(*floor)
            }
        }
    }

    /// Heap bytes held, as the allocator hands them out.
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            UniqueNames::Empty | UniqueNames::One(_) | UniqueNames::Two(_) => 0,
            UniqueNames::Few(hashes) => heap_block(hashes.capacity() * 8),
            // hashbrown: a bucket of 8 bytes and a control byte per slot, slots a power
            // of two at least 8/7 of the capacity.
            UniqueNames::Many(set) => {
                heap_block(size_of::<HashSet<u64, SetState>>())
                    + heap_block(set.capacity() * 9 * 8 / 7)
            }
            UniqueNames::Estimated { .. } => {
                heap_block(HLL_REGISTERS) + heap_block(size_of::<Hll>())
            }
        }
    }
}

/// Most hashes a set of names is read back with: far past any exact limit in use.
const MAX_DECODED_NAMES: usize = 1 << 20;

impl UniqueNames {
    /// Writes the names: which form, then its hashes or its estimate.
    pub(super) fn encode(&self, e: &mut Encoder) {
        match self {
            UniqueNames::Empty => e.u8(0),
            UniqueNames::One(hash) => {
                e.u8(1);
                e.word(*hash);
            }
            UniqueNames::Two([a, b]) => {
                e.u8(2);
                e.word(*a);
                e.word(*b);
            }
            UniqueNames::Few(hashes) => {
                e.u8(3);
                e.count(hashes.len() as u64);
                hashes.iter().for_each(|&h| e.word(h));
            }
            UniqueNames::Many(set) => {
                e.u8(4);
                e.count(set.len() as u64);
                set.iter().for_each(|&h| e.word(h));
            }
            UniqueNames::Estimated { hll, floor } => {
                e.u8(5);
                hll.encode(e);
                e.count(*floor);
            }
        }
    }

    /// Reads what [`encode`](Self::encode) wrote; the same hash twice is refused.
    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(match d.u8()? {
            0 => UniqueNames::Empty,
            1 => UniqueNames::One(d.word()?),
            2 => {
                let two = [d.word()?, d.word()?];
                if two[0] == two[1] {
                    return Err(CodecError::Invalid("the same name twice"));
                }
                UniqueNames::Two(two)
            }
            3 => {
                let n = d.items(FEW_NAMES, 8, "more names than a short list holds")?;
                let mut hashes = Vec::with_capacity(n);
                for _ in 0..n {
                    let hash = d.word()?;
                    if hashes.contains(&hash) {
                        return Err(CodecError::Invalid("the same name twice"));
                    }
                    hashes.push(hash);
                }
                UniqueNames::Few(hashes)
            }
            4 => {
                let n = d.items(MAX_DECODED_NAMES, 8, "more names than a set holds")?;
                let mut set = HashSet::with_capacity_and_hasher(n, SetState::default());
                for _ in 0..n {
                    if !set.insert(d.word()?) {
                        return Err(CodecError::Invalid("the same name twice"));
                    }
                }
                UniqueNames::Many(Box::new(set))
            }
            5 => UniqueNames::Estimated {
                hll: Box::new(Hll::decode(d)?),
                floor: d.count()?,
            },
            _ => return Err(CodecError::Invalid("an unknown form of names")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::test_shards::*;

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
    fn the_hashes_are_those_inserted_in_every_exact_form_and_none_once_estimated() {
        let limit = 100;
        for n in [
            0u64,
            1,
            2,
            3,
            FEW_NAMES as u64,
            FEW_NAMES as u64 + 1,
            limit as u64,
        ] {
            let mut names = UniqueNames::new();
            let inserted: Vec<u64> = (0..n)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            for &hash in inserted.iter().chain(&inserted) {
                names.insert(hash, limit);
            }
            let mut hashes = names.hashes().expect("exact");
            hashes.sort_unstable();
            let mut expected = inserted.clone();
            expected.sort_unstable();
            assert_eq!(hashes, expected, "{n} names");
        }
        let mut names = UniqueNames::new();
        for hash in 0..=limit as u64 {
            names.insert(hash, limit);
        }
        assert_eq!(names.hashes(), None);
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
    fn names_stay_exact_across_the_small_array_and_the_set() {
        // Below, at and past FEW_NAMES, alone and merged from overlapping halves.
        let settings = SketchSettings::default();
        for n in [
            1,
            2,
            3,
            4,
            FEW_NAMES as u64 - 1,
            FEW_NAMES as u64,
            FEW_NAMES as u64 + 1,
            200,
        ] {
            let whole = shard_with(0, &settings, 0..n);
            assert_eq!(uniques(&whole), n);
            let mut a = shard_with(0, &settings, 0..(n / 2 + 3).min(n));
            a.merge(&shard_with(0, &settings, n / 2..n));
            assert_eq!(uniques(&a), n);
            let counts = whole.get(b"pirate.sea").expect("tracked");
            assert!(!counts.is_estimated());
        }
    }

    #[test]
    fn one_or_two_names_are_held_in_place_and_tiny_limits_still_hold() {
        let mut names = UniqueNames::new();
        for (hash, fresh) in [(7, true), (7, false), (9, true), (7, false), (9, false)] {
            assert_eq!(names.insert(hash, 1000), Some(fresh));
            assert_eq!(names.heap_bytes(), 0, "{names:?}");
        }
        assert_eq!(names.count(), 2);
        assert!(names.may_grow(1000));
        assert_eq!(names.insert(11, 1000), Some(true));
        assert!(matches!(names, UniqueNames::Few(_)), "{names:?}");
        assert_eq!(names.count(), 3);
        // An exact limit below what fits in place switches to the estimate as before,
        // and says so beforehand.
        for limit in [0, 1, 2] {
            let mut names = UniqueNames::new();
            for hash in 0..limit as u64 {
                assert_eq!(names.insert(hash, limit), Some(true));
            }
            assert!(names.may_grow(limit), "limit {limit}");
            names.insert(100, limit);
            assert!(
                matches!(names, UniqueNames::Estimated { .. }),
                "limit {limit}: {names:?}"
            );
            assert_eq!(names.count(), limit as u64 + 1, "limit {limit}");
        }
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
}
