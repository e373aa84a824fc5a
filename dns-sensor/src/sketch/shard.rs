//! One worker's counts for one slot: the domain table, its byte accounting and the
//! shedding that keeps it under its bounds.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use hashbrown::HashTable;
use smallvec::SmallVec;
use xxhash_rust::xxh3::xxh3_64;

use super::codec::{CodecError, Decoder, Encoder};
use super::counts::DomainCounts;
use super::history::NameHistory;
use super::query::Query;
use super::SketchSettings;
use crate::bytes::same_bytes;
use crate::Nanos;

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

/// Longest registered domain kept in the table's slot itself rather than in a block of
/// its own. Most are shorter (`example.com` is 11 bytes, `example.co.uk` 13): a lookup
/// then compares the key without a pointer chase, and the domain costs no block.
const INLINE_DOMAIN: usize = 16;

/// A registered domain as the table keys it.
type DomainKey = SmallVec<[u8; INLINE_DOMAIN]>;

/// A domain's hash in the shard's table: its bytes through the keyed hasher, every
/// look-up, insert and rehash alike. Written out rather than `BuildHasher::hash_one`,
/// which the compiler left a call (28 instructions a frame on the resolver mix) and
/// which also hashes the length.
#[inline(always)]
fn domain_hash(hasher: &DomainState, domain: &[u8]) -> u64 {
    let mut state = hasher.build_hasher();
    state.write(domain);
    state.finish()
}

/// Heap bytes of a domain's key: none while it fits in place.
fn key_heap_bytes(domain: &[u8]) -> usize {
    if domain.len() > INLINE_DOMAIN {
        heap_block(domain.len())
    } else {
        0
    }
}

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
    /// Counts boxed: the table's slots stay small (33 bytes, not 153), so a table sized
    /// for a flood of domains costs little, and probing touches fewer cache lines. A
    /// `HashTable` rather than a `HashMap`: a record hashes its domain once, for the
    /// look-up and, if it is new, the insert.
    pub(super) domains: HashTable<(DomainKey, Box<DomainCounts>)>,
    /// The domain table's hasher.
    hasher: DomainState,
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

/// A table bucket no domain is in: the hint left when a domain was refused. Any
/// value is a safe hint (see `Shard::find_hinted`); this one is never a bucket.
const NO_BUCKET: u32 = u32::MAX;

/// Bytes of one slot of the domain table: key, boxed counts, control byte.
const TABLE_SLOT_BYTES: usize = size_of::<(DomainKey, Box<DomainCounts>)>() + 1;

/// Bytes of one domain's boxed counts as allocated.
pub(super) const COUNTS_BYTES: usize = (size_of::<DomainCounts>() + 8 + 15) & !15;

impl Shard {
    /// An empty shard for the slot starting at `start`.
    pub fn new(start: Nanos, settings: &SketchSettings) -> Self {
        Self {
            start,
            settings: settings.clone(),
            domains: HashTable::new(),
            hasher: DomainState::default(),
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
    /// This empty shard with its table sized for `domains` (at most what its room
    /// allows), so that filling it takes no rehash: about 20 instructions a frame on
    /// the resolver mix, where each slot grew its table by doubling from nothing.
    pub fn sized_for(mut self, domains: usize) -> Self {
        debug_assert!(self.domains.is_empty());
        let domains = domains.min(self.domain_room());
        if domains > 0 && Self::table_bytes_for(domains) <= self.settings.max_bytes / 2 {
            self.domains = HashTable::with_capacity(domains);
            self.table_capacity = self.domains.capacity();
        }
        self
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
        let mut hint = NO_BUCKET;
        self.record_query_hashed(domain, &mut hint, Query::new(name, client, qtype, size));
    }

    /// [`record_query`](Self::record_query) of `query` (its name already hashed), given
    /// a hint of where `domain` sits in the table: read, and rewritten to where it was
    /// found. Any value is safe: the key in the hinted bucket is compared, and a wrong
    /// hint costs only the look-up it was to save.
    // Inlined by force into the worker (see `VerdictCache::classify_hinted`).
    #[inline(always)]
    pub fn record_query_hashed(&mut self, domain: &[u8], hint: &mut u32, query: Query<'_>) {
        debug_assert_eq!(query.hash, xxh3_64(query.name));
        self.records = self.records.wrapping_add(1);
        let now = self.records as u32;
        let key_hash = match self.find_hinted(domain, hint) {
            Ok(at) => {
                if let Some((_, counts)) = self.domains.get_bucket_mut(at) {
                    let grown = counts.record_query(&query, domain.len(), &self.settings);
                    counts.last_seen = now;
                    self.held_bytes = self.held_bytes.saturating_add_signed(grown);
                    if self.bytes() > self.settings.max_bytes && !self.blocked {
                        self.shed_to_fit(0);
                    }
                }
                return;
            }
            Err(key_hash) => key_hash,
        };
        // Once the shard has had to shed, the room shedding made is kept for domains
        // that come back, not handed to the next strangers of a flood.
        if self.evicted > 0
            || !self.has_room_for(
                domain,
                DomainCounts::first_query_heap_bytes(query.name, query.client),
            )
        {
            // The door: a domain the history does not know pushes nothing out on its
            // first query in the slot, only if it comes back. A flood of one-off
            // domains costs a look-up and a bit each, not an admission and an eviction.
            if let Some(history) = self.history.as_mut() {
                if !history.is_known(domain) && !history.knock(domain) {
                    self.shed = self.shed.saturating_add(1);
                    return;
                }
            }
        }
        // Boxed before it is filled: filled on the stack, its 152 bytes were copied
        // into the box (4 instructions a frame on the resolver mix).
        let mut counts = Box::new(DomainCounts::new());
        counts.record_query(&query, domain.len(), &self.settings);
        counts.last_seen = now;
        *hint = self.admit(key_hash, DomainKey::from_slice(domain), counts);
    }
    /// Records one response of `size` bytes and RCODE `rcode` under `domain`.
    pub fn record_response(&mut self, domain: &[u8], size: u32, rcode: u8) {
        let mut hint = NO_BUCKET;
        self.record_response_hinted(domain, &mut hint, size, rcode);
    }
    /// [`record_response`](Self::record_response) with a hint of where `domain` sits
    /// (see [`record_query_hashed`](Self::record_query_hashed)).
    // Inlined by force (see `record_query_hashed`).
    #[inline(always)]
    pub fn record_response_hinted(&mut self, domain: &[u8], hint: &mut u32, size: u32, rcode: u8) {
        self.records = self.records.wrapping_add(1);
        let now = self.records as u32;
        let key_hash = match self.find_hinted(domain, hint) {
            Ok(at) => {
                if let Some((_, counts)) = self.domains.get_bucket_mut(at) {
                    counts.record_response(size, rcode);
                    counts.last_seen = now;
                }
                return;
            }
            Err(key_hash) => key_hash,
        };
        if !self.has_room_for(domain, 0) {
            // A response adds no name: it never pushes a domain out (in an answered
            // flood, every refused query would otherwise come back as its response).
            self.shed = self.shed.saturating_add(1);
            return;
        }
        let mut counts = Box::new(DomainCounts::new());
        counts.record_response(size, rcode);
        counts.last_seen = now;
        *hint = self.admit(key_hash, DomainKey::from_slice(domain), counts);
    }
    /// The bucket holding `domain`, looked for first at bucket `hint`, then by its
    /// hash; `hint` is rewritten to the bucket found. A hint is only a place to look
    /// first: the key there is compared, so a stale one (the table grew, shed, or is an
    /// earlier slot's) costs the look-up it would have saved and nothing else. Without
    /// the domain, its hash, to admit it with.
    ///
    /// Measured on the resolver mix: the probe then runs for 31 % of messages instead
    /// of all (the verdict cache's misses, and a name's first message in a slot), 17
    /// instructions a frame fewer in all (cachegrind, 1 012.6 to 995.9;
    /// docs/performance.md, "The hot path's fifth pass").
    #[inline(always)]
    fn find_hinted(&self, domain: &[u8], hint: &mut u32) -> Result<usize, u64> {
        let hinted = usize::try_from(*hint).unwrap_or(usize::MAX);
        if let Some((held, _)) = self.domains.get_bucket(hinted) {
            if same_bytes(held, domain) {
                return Ok(hinted);
            }
        }
        let key_hash = domain_hash(&self.hasher, domain);
        match self
            .domains
            .find_bucket_index(key_hash, |(d, _)| same_bytes(d, domain))
        {
            Some(at) => {
                *hint = u32::try_from(at).unwrap_or(NO_BUCKET);
                Ok(at)
            }
            None => Err(key_hash),
        }
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
        key_heap_bytes(domain) + COUNTS_BYTES + counts_heap + self.growth_bytes()
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
            let hash = domain_hash(&self.hasher, domain);
            if let Some((_, mine)) = self.domains.find_mut(hash, |(d, _)| d == domain) {
                let before = mine.heap_bytes();
                mine.merge(theirs, &self.settings);
                self.held_bytes = (self.held_bytes + mine.heap_bytes()).saturating_sub(before);
            } else {
                self.admit(hash, domain.clone(), theirs.clone());
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
            let hash = domain_hash(&self.hasher, &domain);
            if let Some((_, mine)) = self.domains.find_mut(hash, |(d, _)| *d == domain) {
                let before = mine.heap_bytes();
                mine.merge(&theirs, &self.settings);
                self.held_bytes = (self.held_bytes + mine.heap_bytes()).saturating_sub(before);
            } else {
                self.admit(hash, domain, theirs);
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
    /// Inserts a domain not yet held (its hash under the table's hasher is `hash`),
    /// shedding others first if it does not fit.
    /// Returns the bucket it went into, or [`NO_BUCKET`] when it was refused.
    fn admit(&mut self, hash: u64, domain: DomainKey, mut counts: Box<DomainCounts>) -> u32 {
        if let Some(history) = &self.history {
            let prior = history.names(&domain).max(u64::from(counts.prior_names));
            counts.prior_names = u16::try_from(prior).unwrap_or(u16::MAX);
        }
        let counts_heap = counts.heap_bytes();
        let cost = self.admission_cost(&domain, counts_heap);
        if !self.fits(cost) && (self.blocked || !self.shed_to_fit(cost)) {
            let records = counts.requests.saturating_add(counts.responses);
            self.shed = self.shed.saturating_add(records);
            return NO_BUCKET;
        }
        self.held_bytes += key_heap_bytes(&domain) + COUNTS_BYTES + counts_heap;
        let hasher = &self.hasher;
        let at = self
            .domains
            .insert_unique(hash, (domain, counts), |(d, _)| domain_hash(hasher, d))
            .bucket_index();
        self.table_capacity = self.table_capacity.max(self.domains.capacity());
        u32::try_from(at).unwrap_or(NO_BUCKET)
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
                        key_heap_bytes(d) + COUNTS_BYTES + c.heap_bytes(),
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
            self.domains.retain(|(d, c)| {
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
                freed += key_heap_bytes(d) + COUNTS_BYTES + c.heap_bytes();
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
        Self::table_bytes_for(self.table_capacity)
    }
    /// Bytes of a table of `capacity`.
    fn table_bytes_for(capacity: usize) -> usize {
        capacity * TABLE_SLOT_BYTES * 8 / 7
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
        size_of::<Self>() + self.table_bytes() + self.held_bytes
    }
    /// Domains and their counts.
    pub fn domains(&self) -> impl Iterator<Item = (&[u8], &DomainCounts)> {
        self.domains
            .iter()
            .map(|(domain, counts)| (&**domain, &**counts))
    }
    /// The counts of one domain, if tracked.
    pub fn get(&self, domain: &[u8]) -> Option<&DomainCounts> {
        let hash = domain_hash(&self.hasher, domain);
        self.domains
            .find(hash, |(d, _)| same_bytes(d, domain))
            .map(|(_, counts)| &**counts)
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
    pub fn shed_records(&self) -> u64 {
        self.shed
    }
    /// Domains shed to make room, here and in the shards merged into this one.
    pub fn evicted_domains(&self) -> u64 {
        self.evicted
    }
}

/// Most domains a shard is read back with: far past any shard's room.
const MAX_DECODED_DOMAINS: usize = 1 << 24;

/// Longest registered domain read back: a DNS name is at most 255 bytes.
const MAX_DOMAIN_BYTES: usize = 255;

impl Shard {
    /// Writes the closed shard: its start, what it lost, its clock, and each domain
    /// with its counts.
    pub fn encode(&self, e: &mut Encoder) {
        e.word(self.start);
        e.count(self.shed);
        e.count(self.evicted);
        e.count(self.records);
        e.count(self.domains.len() as u64);
        for (domain, counts) in &self.domains {
            e.bytes(domain);
            counts.encode(e);
        }
    }

    /// Reads what [`encode`](Self::encode) wrote into a shard counted with
    /// `settings` (held to its room as any shard is); a domain twice is refused.
    pub fn decode(d: &mut Decoder<'_>, settings: &SketchSettings) -> Result<Self, CodecError> {
        let start = d.word()?;
        let (shed, evicted, records) = (d.count()?, d.count()?, d.count()?);
        let n = d.items(MAX_DECODED_DOMAINS, 2, "more domains than a shard holds")?;
        let mut shard = Shard::new(start, settings).sized_for(n);
        for _ in 0..n {
            let domain = d.bytes(MAX_DOMAIN_BYTES, "a domain longer than a DNS name")?;
            let counts = DomainCounts::decode(d)?;
            let hash = domain_hash(&shard.hasher, domain);
            if shard.domains.find(hash, |(d, _)| **d == *domain).is_some() {
                return Err(CodecError::Invalid("the same domain twice in a slot"));
            }
            shard.admit(hash, DomainKey::from_slice(domain), Box::new(counts));
        }
        shard.shed = shard.shed.saturating_add(shed);
        shard.evicted = shard.evicted.saturating_add(evicted);
        shard.records = shard.records.max(records);
        Ok(shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::test_shards::*;

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
        assert_eq!(shard.shed_records(), 1);
        // A response for a new domain adds no name: it pushes nothing out, and is
        // counted as shed itself.
        shard.record_response(b"e.org", 100, 0);
        assert!(shard.get(b"e.org").is_none());
        assert_eq!(shard.len(), 3);
        assert_eq!(shard.evicted_domains(), 1);
        assert_eq!(shard.shed_records(), 2);
        // A query for one sheds the oldest small one (c).
        shard.record_query(b"e.org", b"www", CLIENT, 1, 50);
        assert!(shard.get(b"c.org").is_none() && shard.get(b"e.org").is_some());
        assert_eq!(shard.evicted_domains(), 2);
        assert_eq!(shard.shed_records(), 3);

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
        assert_eq!(shard.shed_records(), shard.evicted_domains() + 1);
    }

    /// What a test can read of a domain's counts.
    fn summary(counts: &DomainCounts) -> String {
        let mut samples: Vec<&[u8]> = counts.sample_names().collect();
        samples.sort();
        format!(
            "{} {} {} {} {} {:?} {:?} {:?}",
            counts.requests(),
            counts.responses(),
            counts.unique_names(),
            counts.bytes_in(),
            counts.bytes_out(),
            counts.top_clients(8),
            counts.qtypes(),
            samples
        )
    }

    fn summaries(shard: &Shard) -> Vec<(Vec<u8>, String)> {
        let mut all: Vec<_> = shard
            .domains()
            .map(|(d, c)| (d.to_vec(), summary(c)))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn hints_only_save_look_ups_never_change_the_counts() {
        // Few domains' room, so that shedding and regrowth leave hints pointing at
        // empty buckets and at other domains.
        let settings = SketchSettings {
            max_domains: 40,
            ..SketchSettings::default()
        };
        let records: Vec<(Vec<u8>, Vec<u8>, bool)> = (0..6_000u64)
            .map(|i| {
                let d = (i * 7919) % 97 % (1 + i % 60);
                let domain = format!("d{d}.example").into_bytes();
                let name = format!("n{}.d{d}.example", i % 13).into_bytes();
                (domain, name, i % 3 == 0)
            })
            .collect();
        let client = |i: usize| IpAddr::V4(Ipv4Addr::new(10, 0, (i % 5) as u8, 1));
        let mut plain = Shard::new(0, &settings);
        // Kept per name as the worker's verdict cache keeps them; and a second set
        // where every hint is wrong: another name's, or out of range.
        let mut kept = std::collections::HashMap::<Vec<u8>, u32>::new();
        let mut hinted = Shard::new(0, &settings);
        let mut misled = Shard::new(0, &settings);
        let mut last = NO_BUCKET;
        for (i, (domain, name, response)) in records.iter().enumerate() {
            let hint = kept.entry(name.clone()).or_insert(NO_BUCKET);
            let mut wrong = if i % 2 == 0 { last } else { 1 << 20 };
            if *response {
                plain.record_response(domain, 90, 0);
                hinted.record_response_hinted(domain, hint, 90, 0);
                misled.record_response_hinted(domain, &mut wrong, 90, 0);
            } else {
                let qtype = 1 + (i % 4) as u16;
                let query = Query::new(name, client(i), qtype, 60);
                plain.record_query(domain, name, client(i), qtype, 60);
                hinted.record_query_hashed(domain, hint, query);
                misled.record_query_hashed(domain, &mut wrong, query);
            }
            last = *hint;
        }
        assert!(plain.evicted_domains() > 0, "the test must shed");
        let expected = summaries(&plain);
        assert_eq!(summaries(&hinted), expected);
        assert_eq!(summaries(&misled), expected);
        for shard in [&hinted, &misled] {
            assert_eq!(shard.evicted_domains(), plain.evicted_domains());
            assert_eq!(shard.shed_records(), plain.shed_records());
            assert_eq!(shard.bytes(), plain.bytes());
        }
        // After a record, its hint is the bucket its domain is in.
        let (domain, name) = (&b"d1.example"[..], &b"n1.d1.example"[..]);
        let mut hint = NO_BUCKET;
        hinted.record_query_hashed(domain, &mut hint, Query::new(name, CLIENT, 1, 60));
        let held = hinted
            .domains
            .get_bucket(hint as usize)
            .map(|(d, _)| d.as_slice());
        assert_eq!(held, Some(domain));
    }

    #[test]
    fn a_table_sized_ahead_fills_without_growing_and_counts_its_bytes_at_once() {
        let settings = SketchSettings::default();
        let sized = Shard::new(0, &settings).sized_for(5_000);
        let capacity = sized.domains.capacity();
        assert!(capacity >= 5_000, "{capacity}");
        assert!(sized.bytes() >= Shard::table_bytes_for(5_000));
        let mut shard = sized;
        for d in 0..5_000 {
            shard.record_query(format!("d{d}.example").as_bytes(), b"a", CLIENT, 1, 60);
        }
        assert_eq!(shard.domains.capacity(), capacity);
        // Never past the shard's room: a small budget takes what fits, or nothing.
        let small = SketchSettings {
            max_bytes: 64 << 10,
            ..SketchSettings::default()
        };
        let shard = Shard::new(0, &small).sized_for(1_000_000);
        assert!(shard.bytes() <= small.max_bytes / 2, "{}", shard.bytes());
        let few = SketchSettings {
            max_domains: 10,
            ..SketchSettings::default()
        };
        assert!(Shard::new(0, &few).sized_for(1_000).domains.capacity() < 100);
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
            shard.record_response(domain.as_bytes(), 56, 0);
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
        assert_eq!(shard.shed_records(), 2 * evicted);
        // The estimate is not far from what is really allocated: the bound is real. A
        // flood domain holds its counts, its slot and one sample name (its name's hash
        // and its one IPv4 client are in place): 260 bytes.
        assert!(
            shard.bytes() > shard.len() * 240,
            "{} bytes, {} domains",
            shard.bytes(),
            shard.len()
        );
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
        assert_eq!(shard.shed_records(), 1000);
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

    /// A shard holding every form the counts take: one name, two, a short list, a
    /// set, an estimate; one IPv4 client, a few, a full list with an IPv6 one; query
    /// types and samples; and a response-only domain.
    fn every_form() -> Shard {
        let settings = SketchSettings::default();
        let mut shard = Shard::new(1_800_000_000 * crate::NANOS_PER_SEC, &settings);
        for (domain, names, clients) in [
            ("one.example", 1u64, 1u32),
            ("two.example", 2, 1),
            ("few.example", 20, 3),
            ("many.example", 300, 70),
            ("estimated.example", 3000, 2),
        ] {
            for i in 0..names {
                let name = format!("n{i}.{domain}");
                let client = match i as u32 % clients {
                    0 if clients > 2 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
                    c => IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + c)),
                };
                let qtype = [1, 28, 16][i as usize % 3];
                shard.record_query(domain.as_bytes(), name.as_bytes(), client, qtype, 60);
                shard.record_response(domain.as_bytes(), 120, 0);
            }
        }
        shard.record_response(b"answers-only.example", 90, 0);
        shard
    }

    fn same_counts(a: &Shard, b: &Shard) {
        assert_eq!(a.start(), b.start());
        assert_eq!(a.len(), b.len());
        assert_eq!(
            (a.shed_records(), a.evicted_domains()),
            (b.shed_records(), b.evicted_domains())
        );
        for (domain, mine) in a.domains() {
            let theirs = b.get(domain).expect("the same domains");
            let name = String::from_utf8_lossy(domain);
            assert_eq!(mine.unique_names(), theirs.unique_names(), "{name}");
            assert_eq!(mine.is_estimated(), theirs.is_estimated(), "{name}");
            assert_eq!(mine.requests(), theirs.requests(), "{name}");
            assert_eq!(mine.bytes_in(), theirs.bytes_in(), "{name}");
            assert_eq!(mine.bytes_out(), theirs.bytes_out(), "{name}");
            assert_eq!(mine.top_clients(100), theirs.top_clients(100), "{name}");
            assert_eq!(mine.qtypes(), theirs.qtypes(), "{name}");
            let samples =
                |c: &DomainCounts| c.sample_names().map(<[u8]>::to_vec).collect::<Vec<_>>();
            assert_eq!(samples(mine), samples(theirs), "{name}");
            // Read back at their lengths, not at the capacities they had grown to.
            assert!(theirs.heap_bytes() <= mine.heap_bytes(), "{name}");
        }
    }

    #[test]
    fn a_shard_reads_back_as_it_was_written() {
        let shard = every_form();
        let mut e = Encoder::new();
        shard.encode(&mut e);
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        let read = Shard::decode(&mut d, shard.settings()).expect("reads back");
        assert!(d.is_empty());
        same_counts(&shard, &read);
        // Counting goes on in the read shard as in the written one.
        let (mut a, mut b) = (shard.clone(), read);
        for s in [&mut a, &mut b] {
            s.record_query(b"many.example", b"new.many.example", CLIENT, 1, 60);
            s.record_query(b"fresh.example", b"a.fresh.example", CLIENT, 1, 60);
        }
        same_counts(&a, &b);
    }

    #[test]
    fn damaged_shard_bytes_are_refused_or_read_never_a_panic() {
        // A small shard, so that every cut and every flipped bit can be tried.
        let mut shard = Shard::new(0, &SketchSettings::default());
        for i in 0..40 {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i % 3));
            shard.record_query(b"pirate.sea", &name(u64::from(i)), client, 10, 75);
        }
        shard.record_query(b"one.example", b"a.one.example", CLIENT, 1, 60);
        let mut e = Encoder::new();
        shard.encode(&mut e);
        let bytes = e.into_bytes();
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(&bytes[..cut]);
            assert!(
                Shard::decode(&mut d, shard.settings()).is_err(),
                "cut at {cut}"
            );
        }
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                let _ = Shard::decode(&mut Decoder::new(&flipped), shard.settings());
            }
        }
    }
}
