//! A domain's clients by query count: a short list while few, indexed once full.

use std::net::{IpAddr, Ipv6Addr};

use super::codec::{CodecError, Decoder, Encoder};
use super::shard::heap_block;
use super::top::{bump, push_stepped, sort_heaviest_first};

/// A client address as the clients' counts key it: the IPv6 address, IPv4 as its
/// IPv4-mapped one (RFC 4291 2.5.5.2), in two 64-bit halves: an entry and its count
/// take 24 bytes, where an `IpAddr` and its count took 32, and two keys compare as two
/// integers. The one pair of addresses this conflates, an IPv6 source
/// `::ffff:a.b.c.d` and `a.b.c.d`, is not routed on any network: a sender that forges
/// the first could as well forge the second.
///
/// Equality compares the low half first: it is where IPv4 clients differ, so a scan
/// past a client that is not the one sought costs one comparison.
#[derive(Clone, Copy, Debug, Eq)]
pub(super) struct ClientKey {
    low: u64,
    high: u64,
}

impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.low == other.low && self.high == other.high
    }
}

impl Ord for ClientKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.high, self.low).cmp(&(other.high, other.low))
    }
}

impl PartialOrd for ClientKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ClientKey {
    /// The `::ffff:0:0/96` prefix of IPv4-mapped addresses, in the low half.
    const V4_MAPPED: u64 = 0xffff << 32;

    #[inline]
    pub(super) fn new(client: IpAddr) -> Self {
        match client {
            IpAddr::V4(v4) => Self::from_v4(u32::from(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                Self {
                    low: bits as u64,
                    high: (bits >> 64) as u64,
                }
            }
        }
    }

    /// An IPv4 client's key.
    #[inline]
    fn from_v4(address: u32) -> Self {
        Self {
            low: Self::V4_MAPPED | u64::from(address),
            high: 0,
        }
    }

    /// The IPv4 address, if the key is one's.
    #[inline]
    fn v4(self) -> Option<u32> {
        (self.high == 0 && self.low >> 32 == 0xffff).then_some(self.low as u32)
    }

    pub(super) fn address(self) -> IpAddr {
        Ipv6Addr::from(u128::from(self.high) << 64 | u128::from(self.low)).to_canonical()
    }

    /// Where the key's search starts in an index of `mask + 1` slots. Not keyed: who
    /// chooses many colliding source addresses lengthens probes up to the scan of the
    /// whole list that the index replaced, no further.
    #[inline]
    fn home(self, mask: usize) -> usize {
        let mixed = (self.low ^ self.high.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 32) as usize & mask
    }
}

/// Most clients an index can address (its slots hold positions as `u16`); a larger
/// bound keeps the scanned list.
const MAX_INDEXED: usize = u16::MAX as usize - 1;

/// A domain's clients by query count, bounded: a space-saving summary, exact while at
/// most `bound` clients were seen; past it a new client takes the place of the least
/// counted one and inherits its count (an over-estimate), so a client that keeps
/// coming back climbs and stays while rare ones churn through the last places.
///
/// Most domains of a slot have a client or two: a short list, scanned. A popular one
/// fills its list, and then nearly every query is from a client not in it: a scan of
/// the whole list and a second one for the least counted, 64 entries each by default,
/// a fifth of the count update's instructions on the resolver mix. Once full, the list
/// is kept heaviest first with an index beside it: a look-up is a probe or two, the
/// least counted is the last entry, and an increment moves an entry by one swap.
#[derive(Clone, Debug)]
pub(super) enum TopClients {
    /// One IPv4 client, held in place: the many domains of a slot that one client
    /// asks for then cost no block and no cache miss a query. It fits beside the
    /// list's niche, so the enum stays 24 bytes (an IPv6 key would not).
    OneV4 { address: u32, queries: u64 },
    /// Until the list is full: unordered but for one bubble step per increment.
    Few(Vec<(ClientKey, u64)>),
    /// Full, and indexed.
    Full(Box<IndexedClients>),
}

impl TopClients {
    pub(super) fn new() -> Self {
        TopClients::Few(Vec::new())
    }

    /// Adds one query from `key`, within `bound` clients.
    // Inlined by force into `DomainCounts::record_query`, its one caller a query: left
    // to itself the compiler kept the three parts' adds calls (19 instructions a frame
    // with their prologues, docs/performance.md).
    #[inline(always)]
    pub(super) fn add(&mut self, key: ClientKey, bound: usize) {
        // A loop, not a call to itself, once the list has moved up: the recursion kept
        // the function a call, with its prologue and epilogue, despite the attribute.
        loop {
            match self {
                TopClients::OneV4 { address, queries } if key.v4() == Some(*address) => {
                    *queries += 1;
                    return;
                }
                TopClients::OneV4 { address, queries } => {
                    // Room for the second, as the list's first step gives it.
                    let mut entries = Vec::with_capacity(2.min(bound));
                    entries.push((ClientKey::from_v4(*address), *queries));
                    *self = TopClients::Few(entries);
                }
                TopClients::Few(entries) if entries.capacity() == 0 && bound > 0 => {
                    match key.v4() {
                        Some(address) => {
                            *self = TopClients::OneV4 {
                                address,
                                queries: 1,
                            }
                        }
                        None => push_stepped(entries, (key, 1), 2.min(bound)),
                    }
                    return;
                }
                TopClients::Few(entries) => {
                    if bump(entries, &key, 1) {
                        return;
                    }
                    if entries.len() < bound {
                        // Most domains of a slot see one or two clients: grow from two,
                        // doubling.
                        let step = entries.len().max(2).min(bound - entries.len());
                        push_stepped(entries, (key, 1), step);
                        return;
                    }
                    if bound > MAX_INDEXED || bound == 0 {
                        if let Some(least) = entries.iter_mut().min_by_key(|e| e.1) {
                            *least = (key, least.1 + 1);
                        }
                        return;
                    }
                    let full = IndexedClients::new(std::mem::take(entries));
                    *self = TopClients::Full(Box::new(full));
                }
                TopClients::Full(full) => {
                    full.add(key);
                    return;
                }
            }
        }
    }

    /// Whether the next [`add`](Self::add) may allocate: the short list is full (it
    /// grows, or becomes indexed). An indexed list never grows.
    #[inline]
    pub(super) fn may_grow(&self) -> bool {
        match self {
            TopClients::OneV4 { .. } => true,
            TopClients::Few(entries) => entries.len() == entries.capacity(),
            TopClients::Full(_) => false,
        }
    }

    /// The clients and their counts, in no particular order.
    fn entries(&self) -> impl Iterator<Item = (ClientKey, u64)> + '_ {
        let (listed, in_place): (&[(ClientKey, u64)], _) = match *self {
            TopClients::OneV4 { address, queries } => {
                (&[], Some((ClientKey::from_v4(address), queries)))
            }
            TopClients::Few(ref entries) => (entries, None),
            TopClients::Full(ref full) => (&full.entries, None),
        };
        listed.iter().copied().chain(in_place)
    }

    /// Sums counts client by client; past `bound` the lightest are dropped.
    pub(super) fn merge(&mut self, other: &TopClients, bound: usize) {
        let mut entries = match std::mem::replace(self, TopClients::new()) {
            TopClients::OneV4 { address, queries } => vec![(ClientKey::from_v4(address), queries)],
            TopClients::Few(entries) => entries,
            TopClients::Full(full) => full.entries,
        };
        for (key, n) in other.entries() {
            match entries.iter_mut().find(|e| e.0 == key) {
                Some(entry) => entry.1 += n,
                None => entries.push((key, n)),
            }
        }
        sort_heaviest_first(&mut entries);
        entries.truncate(bound);
        entries.shrink_to_fit();
        let lone_v4 = match entries[..] {
            [(key, queries)] if bound > 0 => key.v4().map(|address| (address, queries)),
            _ => None,
        };
        *self = if let Some((address, queries)) = lone_v4 {
            TopClients::OneV4 { address, queries }
        } else if entries.len() >= bound && bound > 0 && bound <= MAX_INDEXED {
            TopClients::Full(Box::new(IndexedClients::new(entries)))
        } else {
            TopClients::Few(entries)
        };
    }

    /// Heaviest first, ties by address.
    /// Clients held.
    pub(super) fn len(&self) -> usize {
        self.entries().count()
    }

    pub(super) fn sorted(&self) -> Vec<(ClientKey, u64)> {
        let mut sorted: Vec<_> = self.entries().collect();
        sort_heaviest_first(&mut sorted);
        sorted
    }

    /// Heap bytes held, as the allocator hands them out.
    pub(super) fn heap_bytes(&self) -> usize {
        let entry = size_of::<(ClientKey, u64)>();
        match self {
            TopClients::OneV4 { .. } => 0,
            TopClients::Few(entries) => heap_block(entries.capacity() * entry),
            TopClients::Full(full) => {
                heap_block(size_of::<IndexedClients>())
                    + heap_block(full.entries.capacity() * entry)
                    + heap_block(full.index.len() * size_of::<u16>())
                    + heap_block(full.slots.len() * size_of::<u32>())
            }
        }
    }
}

/// A full list of clients, heaviest first (no count is above the one before it), and
/// an index of it: open addressing with linear probing, each slot the position of an
/// entry plus one (0: empty), at least twice as many slots as entries.
///
/// Each entry's slot is kept beside it, so that moving an entry (an increment's swap,
/// the eviction of the last) rewrites its slot without probing for it: on the resolver
/// mix that saved 9 instructions a frame (docs/performance.md, "The hot path's fourth
/// pass"), for four bytes an entry.
#[derive(Clone, Debug)]
pub(super) struct IndexedClients {
    entries: Vec<(ClientKey, u64)>,
    index: Box<[u16]>,
    /// `slots[position]` is the index slot that holds `position`.
    slots: Box<[u32]>,
}

/// Where a key's search in the index ended.
enum Probe {
    /// The key's entry, at this position.
    Found { position: usize },
    /// At this empty slot: the key is not held.
    Missing { slot: usize },
}

impl IndexedClients {
    fn new(mut entries: Vec<(ClientKey, u64)>) -> Self {
        sort_heaviest_first(&mut entries);
        Self::in_order(entries)
    }

    /// A full list of `entries` as they are ordered, heaviest first: the order of
    /// ties is kept, and with it which client an eviction replaces.
    fn in_order(entries: Vec<(ClientKey, u64)>) -> Self {
        let slots = (entries.len() * 2).next_power_of_two().max(4);
        let mut full = Self {
            slots: vec![0; entries.len()].into_boxed_slice(),
            entries,
            index: vec![0; slots].into_boxed_slice(),
        };
        for position in 0..full.entries.len() {
            if let Probe::Missing { slot } = full.probe(full.entries[position].0) {
                full.place(position, slot);
            }
        }
        full
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    #[inline]
    fn probe(&self, key: ClientKey) -> Probe {
        let mask = self.mask();
        let mut slot = key.home(mask);
        loop {
            match usize::from(self.index[slot]) {
                0 => return Probe::Missing { slot },
                held if self.entries[held - 1].0 == key => {
                    return Probe::Found { position: held - 1 }
                }
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Adds one query from `key`.
    #[inline]
    fn add(&mut self, key: ClientKey) {
        let position = match self.probe(key) {
            Probe::Found { position } => position,
            Probe::Missing { .. } => {
                // The last entry is a least counted one: the newcomer takes its place.
                let last = self.entries.len() - 1;
                self.vacate(self.slots[last] as usize);
                self.entries[last].0 = key;
                if let Probe::Missing { slot } = self.probe(key) {
                    self.place(last, slot);
                }
                last
            }
        };
        self.entries[position].1 += 1;
        // Keep heaviest first: the entry now counts one more than the run of equal
        // counts it ended; it changes places with the first of that run.
        let count = self.entries[position].1;
        let first = self.entries[..position].partition_point(|e| e.1 >= count);
        if first < position {
            self.swap(first, position);
        }
    }

    /// Swaps two entries and their index slots.
    fn swap(&mut self, a: usize, b: usize) {
        self.entries.swap(a, b);
        self.slots.swap(a, b);
        self.index[self.slots[a] as usize] = a as u16 + 1;
        self.index[self.slots[b] as usize] = b as u16 + 1;
    }

    /// Puts the entry at `position` in index slot `slot`.
    #[inline]
    fn place(&mut self, position: usize, slot: usize) {
        self.index[slot] = position as u16 + 1;
        // Slots number at most twice `MAX_INDEXED`, rounded up to a power of two.
        self.slots[position] = slot as u32;
    }

    /// Empties `slot`, moving back the entries after it that probing would no longer
    /// reach (backward-shift deletion: no tombstones to clean up later).
    fn vacate(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut next = (hole + 1) & mask;
        loop {
            let held = usize::from(self.index[next]);
            if held == 0 {
                break;
            }
            let home = self.entries[held - 1].0.home(mask);
            // The entry may fill the hole if the hole lies on its probe path: between
            // its home slot and where it sits, going round.
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.place(held - 1, hole);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.index[hole] = 0;
    }
}

impl ClientKey {
    fn encode(self, e: &mut Encoder) {
        e.word(self.low);
        e.word(self.high);
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            low: d.word()?,
            high: d.word()?,
        })
    }
}

impl TopClients {
    /// Writes the clients: which form, then each client and its count (a full list's
    /// index is not written: it is rebuilt).
    pub(super) fn encode(&self, e: &mut Encoder) {
        let entries = |e: &mut Encoder, entries: &[(ClientKey, u64)]| {
            e.count(entries.len() as u64);
            for &(key, n) in entries {
                key.encode(e);
                e.count(n);
            }
        };
        match self {
            TopClients::OneV4 { address, queries } => {
                e.u8(0);
                e.count(u64::from(*address));
                e.count(*queries);
            }
            TopClients::Few(few) => {
                e.u8(1);
                entries(e, few);
            }
            TopClients::Full(full) => {
                e.u8(2);
                entries(e, &full.entries);
            }
        }
    }

    /// Reads what [`encode`](Self::encode) wrote: a client never twice, a full list of
    /// one client at least and at most what an index addresses.
    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        let entries = |d: &mut Decoder<'_>| -> Result<Vec<(ClientKey, u64)>, CodecError> {
            let n = d.items(MAX_INDEXED, 17, "more clients than a list holds")?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push((ClientKey::decode(d)?, d.count()?));
            }
            let mut keys: Vec<ClientKey> = entries.iter().map(|&(k, _)| k).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(CodecError::Invalid("the same client twice"));
            }
            Ok(entries)
        };
        Ok(match d.u8()? {
            0 => TopClients::OneV4 {
                address: d.count_at_most(u64::from(u32::MAX), "an IPv4 address past 32 bits")?
                    as u32,
                queries: d.count()?,
            },
            1 => TopClients::Few(entries(d)?),
            2 => {
                let full = entries(d)?;
                if full.is_empty() {
                    return Err(CodecError::Invalid("a full list of no client"));
                }
                if full.windows(2).any(|w| w[0].1 < w[1].1) {
                    return Err(CodecError::Invalid("a full list not heaviest first"));
                }
                TopClients::Full(Box::new(IndexedClients::in_order(full)))
            }
            _ => return Err(CodecError::Invalid("an unknown form of clients")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::SplitMix64;

    fn key(i: u32) -> ClientKey {
        ClientKey::new(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
    }

    /// The space-saving summary done the plain way: a list scanned for the key and for
    /// the least counted (the first of them), as the sketch did before the index.
    fn scanned(queries: &[u32], bound: usize) -> Vec<(ClientKey, u64)> {
        let mut entries: Vec<(ClientKey, u64)> = Vec::new();
        for &q in queries {
            let k = key(q);
            if let Some(e) = entries.iter_mut().find(|e| e.0 == k) {
                e.1 += 1;
            } else if entries.len() < bound {
                entries.push((k, 1));
            } else if let Some(least) = entries.iter_mut().min_by_key(|e| e.1) {
                *least = (k, least.1 + 1);
            }
        }
        sort_heaviest_first(&mut entries);
        entries
    }

    fn check_invariants(clients: &TopClients) {
        let TopClients::Full(full) = clients else {
            return;
        };
        assert!(full.entries.windows(2).all(|w| w[0].1 >= w[1].1));
        for (position, entry) in full.entries.iter().enumerate() {
            match full.probe(entry.0) {
                Probe::Found { position: p } => assert_eq!(p, position),
                Probe::Missing { .. } => panic!("entry {position} not indexed"),
            }
        }
        let indexed = full.index.iter().filter(|&&s| s != 0).count();
        assert_eq!(indexed, full.entries.len());
        for (position, &slot) in full.slots.iter().enumerate() {
            assert_eq!(usize::from(full.index[slot as usize]), position + 1);
        }
    }

    #[test]
    fn client_keys_give_back_the_address_and_sort_by_it() {
        let addresses: Vec<IpAddr> = [
            "10.0.0.1",
            "10.0.0.2",
            "192.0.2.255",
            "::1",
            "fd00::7",
            "2001:db8::1",
            "255.255.255.255",
            "0.0.0.0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|a| a.parse().expect("address"))
        .collect();
        for &address in &addresses {
            assert_eq!(ClientKey::new(address).address(), address);
        }
        // Within a family the order is the address's.
        let mut v4: Vec<IpAddr> = addresses.iter().copied().filter(IpAddr::is_ipv4).collect();
        let mut keys: Vec<ClientKey> = v4.iter().map(|&a| ClientKey::new(a)).collect();
        v4.sort();
        keys.sort();
        let sorted: Vec<IpAddr> = keys.iter().map(|k| k.address()).collect();
        assert_eq!(sorted, v4);
        // Distinct addresses stay distinct, whichever half differs.
        for (i, &a) in addresses.iter().enumerate() {
            for &b in &addresses[i + 1..] {
                assert_ne!(ClientKey::new(a), ClientKey::new(b), "{a} {b}");
            }
        }
    }

    #[test]
    fn one_ipv4_client_is_held_in_place_and_a_second_takes_one_block_of_two() {
        let entry = size_of::<(ClientKey, u64)>();
        let mut clients = TopClients::new();
        for _ in 0..3 {
            clients.add(key(1), 64);
        }
        assert!(
            matches!(clients, TopClients::OneV4 { queries: 3, .. }),
            "{clients:?}"
        );
        assert_eq!(clients.heap_bytes(), 0);
        assert!(clients.may_grow());
        clients.add(key(2), 64);
        assert_eq!(clients.heap_bytes(), heap_block(2 * entry));
        assert_eq!(clients.sorted(), vec![(key(1), 3), (key(2), 1)]);
        // An IPv6 client is never in place; a merge that leaves one IPv4 client puts it
        // back.
        let v6 = ClientKey::new(IpAddr::from(Ipv6Addr::LOCALHOST));
        let mut other = TopClients::new();
        other.add(v6, 64);
        assert!(matches!(other, TopClients::Few(_)), "{other:?}");
        let mut lone = TopClients::new();
        lone.merge(&TopClients::Few(vec![(key(7), 5)]), 64);
        assert!(
            matches!(lone, TopClients::OneV4 { queries: 5, .. }),
            "{lone:?}"
        );
        lone.merge(&other, 64);
        assert_eq!(lone.sorted(), vec![(key(7), 5), (v6, 1)]);
    }

    #[test]
    fn exact_under_the_bound_like_the_scanned_list() {
        let mut rng = SplitMix64::new(7);
        let queries: Vec<u32> = (0..5_000).map(|_| rng.below(64) as u32).collect();
        let mut clients = TopClients::new();
        for &q in &queries {
            clients.add(key(q), 64);
        }
        assert_eq!(clients.sorted(), scanned(&queries, 64));
    }

    #[test]
    fn past_the_bound_it_keeps_what_space_saving_promises() {
        // Zipf-like traffic from 2 000 clients, a list of 64: heavy clients kept with
        // counts within the summary's bound, the same total, the index consistent.
        for seed in 0..20 {
            let mut rng = SplitMix64::new(seed);
            let queries: Vec<u32> = (0..20_000)
                .map(|_| {
                    let r = rng.below(1 << 20) as f64 / f64::from(1 << 20);
                    (2000.0 * r * r * r) as u32
                })
                .collect();
            let mut clients = TopClients::new();
            for &q in &queries {
                clients.add(key(q), 64);
                if q % 97 == 0 {
                    check_invariants(&clients);
                }
            }
            check_invariants(&clients);
            assert!(matches!(clients, TopClients::Full(_)));
            let sorted = clients.sorted();
            assert_eq!(sorted.len(), 64);
            // Every query is counted once: the summary's counts add up to them all.
            let total: u64 = sorted.iter().map(|e| e.1).sum();
            assert_eq!(total, queries.len() as u64);
            // A client's count is never below its true count, and above it by at most
            // the least count held (space-saving's guarantee).
            let least = sorted.last().map_or(0, |e| e.1);
            for &(k, n) in &sorted {
                let truth = queries.iter().filter(|&&q| key(q) == k).count() as u64;
                assert!(n >= truth && n - truth <= least, "{k:?}: {n} for {truth}");
            }
            // Any client with more queries than the least count is held, as the
            // scanned list holds it.
            for (&(k, _), _) in scanned(&queries, 64).iter().zip(0..10) {
                let truth = queries.iter().filter(|&&q| key(q) == k).count() as u64;
                if truth > least {
                    assert!(sorted.iter().any(|e| e.0 == k), "seed {seed}: {k:?} lost");
                }
            }
        }
    }

    #[test]
    fn merged_lists_hold_the_sums_of_both() {
        // Lists of many sizes under the bound: the merge is exact, whatever list each
        // side was (in place, short or indexed).
        let bound = 64;
        let mut rng = SplitMix64::new(9);
        for (mine, theirs) in [(1, 1), (1, 40), (5, 8), (8, 9), (9, 8), (30, 30), (64, 0)] {
            let mut expected = std::collections::BTreeMap::new();
            let mut lists = [TopClients::new(), TopClients::new()];
            for (list, clients) in lists.iter_mut().zip([mine, theirs]) {
                // Overlapping ranges of clients, so that some keys are on both sides.
                for _ in 0..clients * 3 {
                    let client = 20 + (rng.next_u64() % clients as u64) as u32;
                    list.add(key(client), bound);
                    *expected.entry(key(client)).or_insert(0u64) += 1;
                }
            }
            let [mut a, b] = lists;
            a.merge(&b, bound);
            check_invariants(&a);
            let mut got = a.sorted();
            got.sort_unstable();
            let want: Vec<_> = expected.into_iter().collect();
            assert_eq!(got, want, "{mine} and {theirs} clients");
        }
    }

    #[test]
    fn merged_lists_sum_and_keep_the_index() {
        let mut a = TopClients::new();
        let mut b = TopClients::new();
        for i in 0..200u32 {
            a.add(key(i % 70), 8);
            b.add(key(i % 3), 8);
        }
        a.merge(&b, 8);
        check_invariants(&a);
        let sorted = a.sorted();
        assert_eq!(sorted.len(), 8);
        assert!(sorted.windows(2).all(|w| w[0].1 >= w[1].1));
        // Adding after a merge keeps the list ordered and indexed.
        for i in 0..500u32 {
            a.add(key(i % 13), 8);
        }
        check_invariants(&a);
        // A bound of one: a single entry, always the latest client.
        let mut one = TopClients::new();
        for i in 0..10u32 {
            one.add(key(i), 1);
        }
        check_invariants(&one);
        assert_eq!(one.sorted(), vec![(key(9), 10)]);
    }
}
