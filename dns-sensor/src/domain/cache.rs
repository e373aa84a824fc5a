//! A worker's cache of verdicts by exact name, in front of the classifier.

use xxhash_rust::xxh3::xxh3_64;

use super::{Classifier, Verdict};
use crate::bytes::same_bytes;

/// Names up to this long (canonical bytes) are remembered by [`VerdictCache`]; longer
/// ones (tunnel payloads, mostly) are classified every time.
pub const CACHED_NAME_MAX: usize = 56;

/// The hint a [`VerdictCache`] hands out for a name it has not kept a hint for.
pub const NO_HINT: u32 = u32::MAX;

const _: () = assert!(size_of::<CachedVerdict>() == 64);

/// Slots of a [`VerdictCache`]: 64 bytes each, 2 MiB per worker.
/// Measured on the resolver mix (54 752 distinct names in 380 466 messages): 30 % of
/// look-ups miss with 4 096 slots, 27 % with 8 192, 23 % with 16 384, and two or four
/// ways instead of one save one or two points: the misses are the names seen once or
/// twice an hour, not slots fought over. From 4 096 slots (256 KiB, chosen to stay in
/// L2) to 16 384 the sensor executes 30 instructions a frame fewer (1 014.0 to 983.7),
/// to 32 768 another 13 (970.4), and its wall time stays the same (15 rounds pinned
/// side by side on 2 M frames: 0.579 s against 0.580 s, then 0.689 s against 0.683 s):
/// the count update's misses, not the cache's, are what the time waits on
/// (docs/performance.md, "The hot path's seventh pass").
const VERDICT_CACHE_SLOTS: usize = 32768;

/// Bytes a worker's verdict cache takes: fixed, whatever the traffic.
pub const VERDICT_CACHE_BYTES: usize = VERDICT_CACHE_SLOTS * size_of::<CachedVerdict>();

/// One remembered name and its verdict, one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CachedVerdict {
    /// Length of the name; 0 for an empty slot (the empty name is never cached).
    len: u8,
    /// The low eight bits of the mixed hash, whose top bits are the slot's index: most
    /// names that land in a taken slot differ here, and are told apart without reading
    /// the name.
    tag: u8,
    /// 0: registered (under `name[start..]`), 1: whitelisted, 2: no registered domain.
    kind: u8,
    start: u8,
    /// The caller's note beside the verdict (see [`VerdictCache::classify_hinted`]).
    hint: u32,
    name: [u8; CACHED_NAME_MAX],
}

/// A worker's cache of classifier verdicts by exact name: a direct-mapped table of
/// recent names. Ordinary traffic repeats a few popular names over and over, and the
/// Public Suffix List walk costs 100-300 ns a name where a hit costs a multiplication
/// and a comparison. A hit compares the whole name, so the verdict is always the one
/// the classifier gives.
///
/// The slot comes from the name's hash, the one the counts use (XXH3, which anyone can
/// compute), multiplied by a per-process random odd number and cut to its top bits:
/// two names with different hashes share a slot with a chance of at most about two in
/// the number of slots (4 096) whatever they are (multiply-shift hashing), so crafted
/// names can cost misses only as any new name does, never by aiming at a slot.
pub struct VerdictCache {
    slots: Box<[CachedVerdict]>,
    key: u64,
    /// The hint handed out for a name the cache does not keep: reset each time.
    spare_hint: u32,
}

impl Default for VerdictCache {
    fn default() -> Self {
        Self::new()
    }
}

impl VerdictCache {
    /// An empty cache.
    pub fn new() -> Self {
        let empty = CachedVerdict {
            len: 0,
            tag: 0,
            kind: 0,
            start: 0,
            hint: NO_HINT,
            name: [0; CACHED_NAME_MAX],
        };
        use std::hash::BuildHasher;
        Self {
            slots: vec![empty; VERDICT_CACHE_SLOTS].into_boxed_slice(),
            key: foldhash::fast::RandomState::default().hash_one(0u64) | 1,
            spare_hint: NO_HINT,
        }
    }

    /// `classifier`'s verdict on `name`, from the cache when `name` was seen recently.
    pub fn classify<'n>(&mut self, classifier: &Classifier, name: &'n [u8]) -> Verdict<'n> {
        self.classify_hashed(classifier, name, xxh3_64(name), None)
    }

    /// [`classify`](Self::classify) given the name's XXH3-64 hash, which the worker has
    /// already computed for the counts, and the label starts when the caller knows
    /// them ([`Classifier::classify_labeled`]).
    pub fn classify_hashed<'n>(
        &mut self,
        classifier: &Classifier,
        name: &'n [u8],
        name_hash: u64,
        label_starts: Option<&'n [u8]>,
    ) -> Verdict<'n> {
        self.classify_hinted(classifier, name, name_hash, label_starts)
            .0
    }

    /// [`classify_hashed`](Self::classify_hashed), and a number the cache keeps beside
    /// the name's verdict for the caller: [`NO_HINT`] when the name was not in the
    /// cache, else whatever the caller last wrote there. The worker notes where the
    /// name's domain sits in its counts, so that the next message for the name finds
    /// them without a look-up; the cache never reads the number, so any value is safe.
    // Inlined by force, like the other steps the worker calls once a message: left to
    // itself the compiler made each a call with its register saves, and the six
    // together cost about 120 instructions a frame (docs/performance.md).
    #[inline(always)]
    pub fn classify_hinted<'n>(
        &mut self,
        classifier: &Classifier,
        name: &'n [u8],
        name_hash: u64,
        label_starts: Option<&'n [u8]>,
    ) -> (Verdict<'n>, &mut u32) {
        debug_assert_eq!(name_hash, xxh3_64(name));
        if name.is_empty() || name.len() > CACHED_NAME_MAX {
            let verdict = classifier.classify_labeled(name, label_starts);
            self.spare_hint = NO_HINT;
            return (verdict, &mut self.spare_hint);
        }
        let mixed = name_hash.wrapping_mul(self.key);
        let index = (mixed >> (64 - VERDICT_CACHE_SLOTS.trailing_zeros())) as usize;
        let tag = mixed as u8;
        let Some(slot) = self.slots.get_mut(index) else {
            let verdict = classifier.classify_labeled(name, label_starts);
            self.spare_hint = NO_HINT;
            return (verdict, &mut self.spare_hint);
        };
        if slot.tag == tag
            && usize::from(slot.len) == name.len()
            && slot
                .name
                .get(..name.len())
                .is_some_and(|held| same_bytes(held, name))
        {
            let verdict = match slot.kind {
                0 => match name.get(usize::from(slot.start)..) {
                    Some(domain) => Verdict::Registered(domain),
                    None => classifier.classify_labeled(name, label_starts),
                },
                1 => Verdict::Whitelisted,
                _ => Verdict::NoDomain,
            };
            return (verdict, &mut slot.hint);
        }
        let verdict = classifier.classify_labeled(name, label_starts);
        let (kind, start) = match verdict {
            // The domain is a suffix of the name (the classifier's contract).
            Verdict::Registered(domain) => (0, name.len() - domain.len().min(name.len())),
            Verdict::Whitelisted => (1, 0),
            Verdict::NoDomain => (2, 0),
        };
        // `name.len()` is at most CACHED_NAME_MAX, so both fit in a byte.
        slot.len = name.len() as u8;
        slot.tag = tag;
        slot.kind = kind;
        slot.start = start as u8;
        slot.hint = NO_HINT;
        slot.name[..name.len()].copy_from_slice(name);
        (verdict, &mut slot.hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DomainSettings;

    #[test]
    fn verdict_cache_gives_the_classifier_verdicts() {
        let classifier = Classifier::new(&DomainSettings {
            include_private: true,
            whitelist: vec!["quiet.example".into()],
        })
        .expect("classifier");
        let mut cache = VerdictCache::new();
        let long = format!("{}.pirate.sea", "a".repeat(CACHED_NAME_MAX));
        let names: Vec<Vec<u8>> = [
            "www.example.com",
            "a.b.bbc.co.uk",
            "co.uk",
            "x.quiet.example",
            "n1.pirate.sea",
            "blog.blogspot.com",
            "WWW.EXAMPLE.COM",
            &long,
        ]
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .chain((0..10_000).map(|i| format!("h{i}.site{}.org", i % 97).into_bytes()))
        .collect();
        // Three passes: cold, warm, and after the 10 000 names have churned the slots.
        for _ in 0..3 {
            for name in &names {
                assert_eq!(
                    cache.classify(&classifier, name),
                    classifier.classify(name),
                    "{}",
                    String::from_utf8_lossy(name)
                );
            }
        }
        assert_eq!(
            cache.classify(&classifier, b"www.example.com"),
            Verdict::Registered(b"example.com")
        );
        assert_eq!(
            cache.classify(&classifier, b"x.quiet.example"),
            Verdict::Whitelisted
        );
        assert_eq!(cache.classify(&classifier, b"co.uk"), Verdict::NoDomain);
        assert_eq!(cache.classify(&classifier, b""), Verdict::NoDomain);
    }

    #[test]
    fn a_hint_stays_with_its_name_and_goes_with_it() {
        let classifier = Classifier::new(&DomainSettings {
            include_private: true,
            whitelist: Vec::new(),
        })
        .expect("classifier");
        let mut cache = VerdictCache::new();
        let hint_of = |cache: &mut VerdictCache, name: &[u8]| {
            let (_, hint) = cache.classify_hinted(&classifier, name, xxh3_64(name), None);
            let was = *hint;
            *hint = name.len() as u32;
            was
        };
        assert_eq!(hint_of(&mut cache, b"www.example.com"), NO_HINT);
        assert_eq!(hint_of(&mut cache, b"www.example.com"), 15);
        // A name too long to keep never keeps a hint.
        let long = format!("{}.pirate.sea", "a".repeat(CACHED_NAME_MAX)).into_bytes();
        assert_eq!(hint_of(&mut cache, &long), NO_HINT);
        assert_eq!(hint_of(&mut cache, &long), NO_HINT);
        // Names that take the first's slot start without a hint, and the first one
        // finds its own gone when it comes back (24 names a slot leave one untouched
        // with a chance of e^-24).
        for i in 0..24 * VERDICT_CACHE_SLOTS {
            let name = format!("h{i}.site.org").into_bytes();
            assert_eq!(hint_of(&mut cache, &name), NO_HINT, "{i}");
        }
        assert_eq!(hint_of(&mut cache, b"www.example.com"), NO_HINT);
    }
}
