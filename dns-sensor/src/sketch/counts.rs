//! Everything counted for one registered domain over one slot.

use std::net::IpAddr;

use super::clients::{ClientKey, TopClients};
use super::codec::{CodecError, Decoder, Encoder};
use super::evidence::EvidenceSums;
use super::names::UniqueNames;
use super::query::Query;
use super::samples::{SampleNames, Samples};
use super::shard::heap_block;
use super::top::TopCounts;
use super::{SketchSettings, MAX_QTYPES};

/// Counts for one registered domain over one slot (or, merged, over a window).
///
/// A window holds one of these per domain per slot (a million and more), so it is kept
/// small: the limits live in the shard's [`SketchSettings`] and are passed in, and every
/// part grows by small steps. About 570 bytes for a domain with 20 names and two
/// clients in a slot: 528 for the counts and their blocks, the rest its slot in the
/// table, which holds a key of up to 16 bytes in place.
#[derive(Clone, Debug)]
pub struct DomainCounts {
    pub(super) requests: u64,
    pub(super) responses: u64,
    pub(super) bytes_in: u64,
    bytes_out: u64,
    pub(super) names: UniqueNames,
    clients: TopClients,
    qtypes: TopCounts<2>,
    samples: Samples,
    evidence: EvidenceSums,
    /// The shard's record counter when this domain was last recorded (its low 32
    /// bits): the tie-break between equally small domains when shedding (the least
    /// recent goes first).
    pub(super) last_seen: u32,
    /// Names the worker's history gave this domain when it entered the shard: what it
    /// had in earlier slots, and in this one before being shed.
    pub(super) prior_names: u16,
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
            clients: TopClients::new(),
            qtypes: TopCounts::new(),
            samples: Samples::default(),
            evidence: EvidenceSums::default(),
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
    pub(super) fn weight(&self) -> u64 {
        let names = match &self.names {
            UniqueNames::Estimated { floor, .. } => *floor,
            names => names.count(),
        };
        names + u64::from(self.prior_names)
    }

    /// The heap bytes of new counts after one query for `name` from `client` (what
    /// [`heap_bytes`](Self::heap_bytes) then says), computed without building them.
    pub(super) fn first_query_heap_bytes(name: &[u8], client: IpAddr) -> usize {
        let name_len = name.len().min(usize::from(u16::MAX));
        // The name's hash, the query type and an IPv4 client are held in place.
        let clients = match client {
            IpAddr::V4(_) => 0,
            IpAddr::V6(_) => heap_block(2 * size_of::<(ClientKey, u64)>()),
        };
        clients + heap_block(1 + 2 + name_len)
    }

    /// Whether shedding must leave this domain alone: it has many names already.
    pub(super) fn is_protected(&self, protect_names: u64) -> bool {
        self.is_estimated() || self.weight() >= protect_names
    }

    /// Shedding order, least active first: fewest names (with those of earlier slots),
    /// then fewest records, then least recently seen.
    pub(super) fn shed_rank(&self) -> (u64, u64, u32) {
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
    /// The distinct names' 64-bit hashes (unkeyed XXH3 of the canonical name, the same
    /// on every sensor), in no particular order; `None` once
    /// [estimated](Self::is_estimated).
    pub fn name_hashes(&self) -> Option<Vec<u64>> {
        self.names.hashes()
    }
    /// Sum of query message sizes.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }
    /// Sum of response message sizes.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
    /// Clients by query count, most active first (ties by address, an IPv4 one as its
    /// IPv4-mapped IPv6 address). Exact while at most
    /// `max_clients` clients were seen; past it the counts of late-comers are upper
    /// bounds (space-saving), and a client that sent many queries is still listed.
    pub fn top_clients(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut clients = self.clients.sorted();
        clients.truncate(n);
        clients
            .into_iter()
            .map(|(client, requests)| (client.address(), requests))
            .collect()
    }
    /// A few of the names seen, canonical bytes: the first distinct ones.
    pub fn sample_names(&self) -> SampleNames<'_> {
        self.samples.iter()
    }
    /// Distinct clients: exact up to the shard's `max_clients`, that bound past it.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }
    /// The shape of the distinct names and the error answers.
    pub fn evidence(&self) -> &EvidenceSums {
        &self.evidence
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
        self.evidence.merge(&other.evidence);
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

    /// Counts `query`, whose name's registered domain is its last `domain_len` bytes;
    /// returns what it changed the heap bytes by
    /// ([`heap_bytes`](Self::heap_bytes) after less before). Each part is measured only
    /// when it may allocate: most queries repeat a name, a client and a type already
    /// held, and measuring every part before and after cost 50 instructions a frame.
    #[inline(always)]
    pub(super) fn record_query(
        &mut self,
        query: &Query<'_>,
        domain_len: usize,
        settings: &SketchSettings,
    ) -> isize {
        // The fields are passed on one by one, in registers: the struct's address
        // passed instead made the call (not inlined) read them from memory, 11
        // instructions a frame more on the resolver mix.
        self.record_query_fields(
            query.name,
            domain_len,
            query.label_starts,
            query.hash,
            query.client,
            query.qtype,
            query.size,
            settings,
        )
    }

    #[inline]
    #[allow(clippy::too_many_arguments)] // See `record_query`.
    fn record_query_fields(
        &mut self,
        name: &[u8],
        domain_len: usize,
        label_starts: Option<&[u8]>,
        hash: u64,
        client: IpAddr,
        qtype: u16,
        size: u32,
        settings: &SketchSettings,
    ) -> isize {
        self.requests = self.requests.saturating_add(1);
        self.bytes_in = self.bytes_in.saturating_add(u64::from(size));
        let mut grown = 0;
        let names_before = self
            .names
            .may_grow(settings.exact_limit)
            .then(|| self.names.heap_bytes());
        let fresh = self.names.insert(hash, settings.exact_limit);
        if let Some(before) = names_before {
            grown += change(before, self.names.heap_bytes());
        }
        // A name seen before adds no sample: the samples' block (a cache miss away) is
        // only read for a new name, or once estimated, when the set cannot say.
        if fresh != Some(false) {
            let variable = name.len().saturating_sub(domain_len + 1);
            self.evidence.record_name(name, variable, label_starts);
        }
        let new_sample = match fresh {
            Some(false) => false,
            Some(true) => self.samples.len() < settings.max_samples,
            None => self.samples.len() < settings.max_samples && !self.samples.contains(name),
        };
        if new_sample {
            let before = self.samples.heap_bytes();
            self.samples.push(name);
            grown += change(before, self.samples.heap_bytes());
        }
        let clients_before = self.clients.may_grow().then(|| self.clients.heap_bytes());
        self.clients
            .add(ClientKey::new(client), settings.max_clients);
        if let Some(before) = clients_before {
            grown += change(before, self.clients.heap_bytes());
        }
        // Most domains see one or two types: grow one entry at a time.
        let qtypes_before = self.qtypes.may_grow().then(|| self.qtypes.heap_bytes());
        self.qtypes.add(qtype, 1, MAX_QTYPES, 1);
        if let Some(before) = qtypes_before {
            grown += change(before, self.qtypes.heap_bytes());
        }
        grown
    }

    #[inline]
    pub(super) fn record_response(&mut self, size: u32, rcode: u8) {
        self.responses = self.responses.saturating_add(1);
        self.bytes_out = self.bytes_out.saturating_add(u64::from(size));
        self.evidence.record_rcode(rcode);
    }
}

/// What a part's heap bytes changed by.
fn change(before: usize, after: usize) -> isize {
    after as isize - before as isize
}

impl Default for DomainCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl DomainCounts {
    /// Writes the counts, each part after the other.
    pub(super) fn encode(&self, e: &mut Encoder) {
        e.count(self.requests);
        e.count(self.responses);
        e.count(self.bytes_in);
        e.count(self.bytes_out);
        self.names.encode(e);
        self.clients.encode(e);
        self.qtypes.encode(e);
        self.samples.encode(e);
        if e.format() >= 2 {
            self.evidence.encode(e);
        }
        e.count(u64::from(self.last_seen));
        e.count(u64::from(self.prior_names));
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            requests: d.count()?,
            responses: d.count()?,
            bytes_in: d.count()?,
            bytes_out: d.count()?,
            names: UniqueNames::decode(d)?,
            clients: TopClients::decode(d)?,
            qtypes: TopCounts::decode(d, MAX_QTYPES)?,
            samples: Samples::decode(d)?,
            // Snapshots of format 1 had none: the restored slots start without.
            evidence: if d.format() >= 2 {
                EvidenceSums::decode(d)?
            } else {
                EvidenceSums::default()
            },
            last_seen: d.count_at_most(u64::from(u32::MAX), "a record clock past 32 bits")? as u32,
            prior_names: d.count_at_most(u64::from(u16::MAX), "prior names past 16 bits")? as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::test_shards::*;

    #[test]
    fn counts_requests_bytes_and_responses() {
        let mut shard = Shard::new(0, &SketchSettings::default());
        shard.record_query(b"pirate.sea", b"a.pirate.sea", CLIENT, 16, 70);
        shard.record_query(b"pirate.sea", b"a.pirate.sea", CLIENT, 16, 70);
        shard.record_query(b"pirate.sea", b"b.pirate.sea", CLIENT, 1, 60);
        shard.record_response(b"pirate.sea", 150, 3);
        shard.record_response(b"other.org", 99, 0);
        let counts = shard.get(b"pirate.sea").expect("tracked");
        assert_eq!(counts.requests(), 3);
        assert_eq!(counts.unique_names(), 2);
        assert_eq!(counts.bytes_in(), 200);
        assert_eq!(counts.bytes_out(), 150);
        assert_eq!(counts.responses(), 1);
        assert_eq!(counts.qtypes(), vec![(16, 2), (1, 1)]);
        // The evidence: two distinct names of one one-byte label, one NXDOMAIN.
        let evidence = counts.evidence();
        assert_eq!(
            (
                evidence.names,
                evidence.bytes,
                evidence.labels,
                evidence.nxdomain
            ),
            (2, 2, 2, 1)
        );
        assert_eq!(counts.client_count(), 1);
        assert_eq!(counts.top_clients(10), vec![(CLIENT, 3)]);
        let samples: Vec<&[u8]> = counts.sample_names().collect();
        assert_eq!(samples, vec![&b"a.pirate.sea"[..], b"b.pirate.sea"]);
        assert_eq!(shard.len(), 2);
        assert_eq!(shard.get(b"other.org").map(DomainCounts::requests), Some(0));
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
    fn a_query_reports_what_it_changed_the_heap_by() {
        // Through every form: few names and clients, the set, the indexed clients, the
        // estimate; new and repeated names, clients and types.
        let small = SketchSettings {
            exact_limit: 10,
            max_clients: 3,
            ..SketchSettings::default()
        };
        for settings in [SketchSettings::default(), small] {
            let mut counts = DomainCounts::new();
            for i in 0..3_000u32 {
                let name = format!("n{}.pirate.sea", i % 1_500 + i / 2_000 * 7_000);
                let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i % 200));
                let qtype = [1, 28, 16, 1, 65][(i % 5) as usize];
                let before = counts.heap_bytes();
                let query = Query::new(name.as_bytes(), client, qtype, 60);
                let change = counts.record_query(&query, "pirate.sea".len(), &settings);
                let after = counts.heap_bytes();
                assert_eq!(change, after as isize - before as isize, "query {i}");
            }
            assert!(counts.is_estimated());
        }
    }

    #[test]
    fn counts_stay_in_the_160_byte_size_class() {
        // mimalloc's classes go 128, 160, 192: the evidence's 32 bytes took the counts
        // from the first to the second, and a field more would cost 32 bytes a
        // domain-slot again, 30 MiB on the memory bar's window.
        assert!(
            size_of::<DomainCounts>() <= 160,
            "{}",
            size_of::<DomainCounts>()
        );
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
}
