//! Upper bounds on domains' unique names over the window's slots, kept from one
//! evaluation to the next, which spare the evaluation the merge of every domain's
//! slots.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

use crate::sketch::{DomainCounts, Shard};
use crate::Nanos;

/// An upper bound on a domain's unique names over several slots: the sum of its
/// per-slot counts (a union is never larger), and how many of those counts were
/// estimates (while any is, the union must be merged to be known). Sums, so that a
/// slot leaving the window takes back exactly what it added.
///
/// One word, as the table holds one per domain of the window (a million and more on
/// the memory bar): the sum in the low 48 bits, the estimated slots in the high 16.
/// Either field, once full, stays full and is no longer taken back from: the bound
/// stays a bound, and the domain a candidate, until the sensor restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NameBound(u64);

impl NameBound {
    const NAMES_BITS: u32 = 48;
    const NAMES_FULL: u64 = (1 << Self::NAMES_BITS) - 1;
    const ESTIMATED_FULL: u64 = u16::MAX as u64;

    fn names(self) -> u64 {
        self.0 & Self::NAMES_FULL
    }

    fn estimated_slots(self) -> u64 {
        self.0 >> Self::NAMES_BITS
    }

    fn with(names: u64, estimated_slots: u64) -> Self {
        Self(names | estimated_slots << Self::NAMES_BITS)
    }

    fn add(&mut self, counts: &DomainCounts) {
        let names = match self.names() {
            Self::NAMES_FULL => Self::NAMES_FULL,
            names => names
                .saturating_add(counts.unique_names())
                .min(Self::NAMES_FULL),
        };
        let estimated = match self.estimated_slots() {
            Self::ESTIMATED_FULL => Self::ESTIMATED_FULL,
            n => n + u64::from(counts.is_estimated()),
        };
        *self = Self::with(names, estimated);
    }

    fn remove(&mut self, counts: &DomainCounts) {
        let names = match self.names() {
            Self::NAMES_FULL => Self::NAMES_FULL,
            names => names.saturating_sub(counts.unique_names()),
        };
        let estimated = match self.estimated_slots() {
            Self::ESTIMATED_FULL => Self::ESTIMATED_FULL,
            n => n.saturating_sub(u64::from(counts.is_estimated())),
        };
        *self = Self::with(names, estimated);
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the union can exceed `threshold`: the sum does, or an estimate is in it.
    fn may_exceed(self, threshold: u64) -> bool {
        self.names() > threshold || self.estimated_slots() > 0
    }
}

/// The bounds of every domain over the slots counted in them, and the domains whose
/// bound may exceed the threshold: the only ones an evaluation merges.
///
/// An evaluation used to sum every domain of every slot of the window into a fresh
/// table, hashing each domain-slot twice, every interval: with a 4 h window of 15 min
/// slots each domain-slot was summed 16 times. Kept across evaluations, each slot is
/// added once when an evaluation first covers it and taken back once when it leaves:
/// the coordinator's share of the resolver mix (one hour, so four slots at most) fell
/// from 52 to 12 instructions a frame, and the memory bar's 4 h replay took a quarter
/// less CPU (docs/performance.md).
///
/// The bounds are kept by a keyed hash of the domain (16 bytes an entry where the
/// domain itself would take its block): two domains sharing a hash share a bound,
/// which costs a merge, never an alert. Every domain added while its bound may exceed
/// the threshold is a candidate, so a domain over the threshold by its own names is
/// always one.
#[derive(Debug)]
pub(super) struct WindowBounds {
    hasher: foldhash::fast::RandomState,
    by_domain: HashMap<u64, NameBound, foldhash::fast::RandomState>,
    /// Starts of the slots whose counts are in the bounds.
    counted: BTreeSet<Nanos>,
    candidates: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
    threshold: u64,
}

impl WindowBounds {
    /// No slot counted, candidates for `threshold`.
    pub(super) fn new(threshold: u64) -> Self {
        Self {
            hasher: Default::default(),
            by_domain: HashMap::default(),
            counted: BTreeSet::new(),
            candidates: HashSet::default(),
            threshold,
        }
    }

    /// Whether the slot starting at `start` is counted.
    #[cfg(test)]
    pub(super) fn is_counted(&self, start: Nanos) -> bool {
        self.counted.contains(&start)
    }

    /// Counts the slot starting at `start`, unless it is already.
    pub(super) fn count(&mut self, start: Nanos, shard: &Shard) {
        if !self.counted.insert(start) {
            return;
        }
        for (domain, counts) in shard.domains() {
            let bound = self
                .by_domain
                .entry(self.hasher.hash_one(domain))
                .or_default();
            bound.add(counts);
            if bound.may_exceed(self.threshold) && !self.candidates.contains(domain) {
                self.candidates.insert(domain.into());
            }
        }
    }

    /// Takes back what the slot starting at `start` added, if it is counted: it is
    /// leaving the window, or about to change (a shard merged into it).
    pub(super) fn uncount(&mut self, start: Nanos, shard: &Shard) {
        if !self.counted.remove(&start) {
            return;
        }
        for (domain, counts) in shard.domains() {
            let hash = self.hasher.hash_one(domain);
            if let Some(bound) = self.by_domain.get_mut(&hash) {
                bound.remove(counts);
                if bound.is_empty() {
                    self.by_domain.remove(&hash);
                }
            }
        }
    }

    /// The domains whose bound may exceed the threshold, after dropping those whose
    /// bound no longer does.
    pub(super) fn candidates(&mut self) -> impl Iterator<Item = &[u8]> {
        let (hasher, by_domain, threshold) = (&self.hasher, &self.by_domain, self.threshold);
        self.candidates.retain(|domain| {
            by_domain
                .get(&hasher.hash_one(&**domain))
                .is_some_and(|bound| bound.may_exceed(threshold))
        });
        self.candidates.iter().map(|domain| &**domain)
    }

    /// Domains with a bound (two sharing a hash count once).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_domain.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::SketchSettings;
    use std::net::{IpAddr, Ipv4Addr};

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30));

    fn shard(start: Nanos, domains: &[(&str, u64)], settings: &SketchSettings) -> Shard {
        let mut shard = Shard::new(start, settings);
        for &(domain, names) in domains {
            for i in 0..names {
                let name = format!("n{i}-{start}.{domain}");
                shard.record_query(domain.as_bytes(), name.as_bytes(), CLIENT, 1, 60);
            }
        }
        shard
    }

    fn candidates(bounds: &mut WindowBounds) -> Vec<String> {
        let mut names: Vec<String> = bounds
            .candidates()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn slots_add_their_names_once_and_take_them_back_when_they_leave() {
        let settings = SketchSettings::default();
        let a = shard(0, &[("slow.example", 60), ("quiet.example", 2)], &settings);
        let b = shard(1, &[("slow.example", 60), ("fast.example", 150)], &settings);
        let mut bounds = WindowBounds::new(100);
        bounds.count(0, &a);
        assert!(candidates(&mut bounds).is_empty());
        bounds.count(1, &b);
        // Counting a slot twice changes nothing.
        bounds.count(1, &b);
        assert_eq!(candidates(&mut bounds), ["fast.example", "slow.example"]);
        assert_eq!(bounds.len(), 3);
        bounds.uncount(0, &a);
        assert_eq!(candidates(&mut bounds), ["fast.example"]);
        assert_eq!(bounds.len(), 2);
        // A slot not counted takes nothing back.
        bounds.uncount(0, &a);
        bounds.uncount(1, &b);
        assert!(candidates(&mut bounds).is_empty());
        assert_eq!(bounds.len(), 0);
        assert!(!bounds.is_counted(1));
    }

    #[test]
    fn a_full_field_stays_full() {
        let settings = SketchSettings {
            exact_limit: 10,
            ..SketchSettings::default()
        };
        let estimated = shard(0, &[("pirate.sea", 11)], &settings);
        let counts = estimated.get(b"pirate.sea").expect("held");
        let names = counts.unique_names();
        let mut bound = NameBound::with(NameBound::NAMES_FULL - 3, NameBound::ESTIMATED_FULL - 1);
        bound.add(counts);
        assert_eq!(bound.names(), NameBound::NAMES_FULL);
        assert_eq!(bound.estimated_slots(), NameBound::ESTIMATED_FULL);
        bound.remove(counts);
        bound.remove(counts);
        assert_eq!(
            bound,
            NameBound::with(NameBound::NAMES_FULL, NameBound::ESTIMATED_FULL)
        );
        let mut bound = NameBound::default();
        bound.add(counts);
        bound.add(counts);
        assert_eq!(bound, NameBound::with(2 * names, 2));
        bound.remove(counts);
        assert_eq!(bound, NameBound::with(names, 1));
        bound.remove(counts);
        assert!(bound.is_empty());
    }

    #[test]
    fn an_estimated_slot_makes_a_candidate_until_it_leaves() {
        let small = SketchSettings {
            exact_limit: 10,
            ..SketchSettings::default()
        };
        let estimated = shard(0, &[("pirate.sea", 11)], &small);
        assert!(estimated
            .get(b"pirate.sea")
            .is_some_and(|c| c.is_estimated()));
        let mut bounds = WindowBounds::new(1_000);
        bounds.count(0, &estimated);
        assert_eq!(candidates(&mut bounds), ["pirate.sea"]);
        let exact = shard(1, &[("pirate.sea", 5)], &small);
        bounds.count(1, &exact);
        bounds.uncount(0, &estimated);
        assert!(candidates(&mut bounds).is_empty());
    }
}
