//! Each worker's memory of earlier slots (a count-min sketch) and the door in front of
//! a full shard.

use super::shard::{heap_block, Shard};

/// Names from which the history counts a domain as known, and from which a closed
/// slot's domain is worth remembering: one name is what a shed one-off leaves behind,
/// and a flood of one-name domains remembered would soon make every stranger look
/// known.
pub(super) const KNOWN_NAMES: u64 = 2;

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
/// [`SketchSettings::history_halving`](super::SketchSettings::history_halving) slots all counters halve, as TinyLFU ages its
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
        heap_block(self.counters.len() * 2) + heap_block(self.door.len() * 8) + size_of::<Self>()
    }

    pub(super) fn hash(&self, domain: &[u8]) -> u64 {
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

    /// Adds what a closed slot showed of `domain`, if it had `KNOWN_NAMES` names or
    /// more.
    fn remember(&mut self, domain: &[u8], names: u64) {
        if names >= KNOWN_NAMES {
            self.add(domain, names);
        }
    }

    /// Whether the history credits `domain` with two names or more: one name is what a
    /// shed one-off leaves behind.
    pub fn is_known(&self, domain: &[u8]) -> bool {
        self.names(domain) >= KNOWN_NAMES
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
    use crate::sketch::test_shards::*;
    use crate::sketch::Query;

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
            (shard.len(), shard.evicted_domains(), shard.shed_records()),
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
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x30));
        for name in [&b"a.pirate.sea"[..], &[b'x'; 300]] {
            for client in [CLIENT, v6] {
                let mut counts = DomainCounts::new();
                let query = Query::new(name, client, 1, 60);
                counts.record_query(&query, "pirate.sea".len(), &SketchSettings::default());
                assert_eq!(
                    counts.heap_bytes(),
                    DomainCounts::first_query_heap_bytes(name, client),
                    "{client}"
                );
            }
        }
    }
}
