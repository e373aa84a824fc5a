//! IPv4 fragment reassembly, bounded in datagrams and bytes.
//!
//! IPv6 fragments use the same table: only the key's id width differs (32 bits instead of
//! 16), and the rules below hold for both.
//!
//! Datagrams are keyed by (source, destination, id, protocol). Each keeps the pieces
//! received so far; a fragment that lies wholly inside them is a duplicate and ignored, one
//! that overlaps them only in part makes the whole datagram suspect (overlap is an evasion
//! trick) and it is dropped. The table holds at most `max` datagrams and `max_bytes` of
//! their pieces: past either, the oldest datagrams are evicted, so a fragment flood costs
//! the attacker the table, not us the new datagrams, nor more memory. A datagram holds the
//! bytes that arrived, not what their offsets reach: 8 bytes at offset 65 464 take 8
//! bytes until the datagram completes (4 096 such fragments once took 289 MB, a 64 KiB
//! buffer each). Datagrams expire `timeout` after their first fragment, in capture time.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::DecodeStats;
use crate::Nanos;

/// Largest reassembled payload accepted: an IPv4 datagram cannot be larger than 65 535
/// bytes in all, and an IPv6 payload (without jumbograms) neither.
pub(crate) const MAX_DATAGRAM: usize = 65_535;

/// Most pieces one datagram may hold apart: a 65 535-byte datagram over a 576-byte path
/// is 119 fragments, over the 68-byte minimum of RFC 791 1 366, and pieces that arrive
/// in order join into one. Past it the datagram is dropped: a flood of 8-byte fragments
/// for one datagram (8 191 of them) would otherwise cost each new piece a longer insert.
const MAX_PIECES: usize = 1024;

/// Completed buffers kept for reuse, so a steady trickle of fragments stops allocating.
const POOL_SIZE: usize = 4;

/// Bytes a datagram takes beyond its pieces: its entry in the table (key and state, with
/// the hash table's control byte) and two in the order queue (which may hold twice as
/// many entries as datagrams before it is compacted). For the share of `memory_cap` the
/// table is given.
pub(crate) const DATAGRAM_BYTES: usize =
    size_of::<(FragKey, Partial)>() + 1 + 2 * size_of::<(FragKey, u64)>();

/// Identifies the datagram a fragment belongs to (RFC 791, RFC 8200).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Protocol of the reassembled payload.
    pub proto: u8,
}

/// One fragment: where its data goes in the datagram's payload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    /// Byte offset of `data` in the reassembled payload.
    pub offset: usize,
    /// More fragments follow (MF flag).
    pub more: bool,
    /// The fragment's payload.
    pub data: &'a [u8],
}

/// Where a received piece lies: `[start, end)` of the payload, from `at` in the
/// datagram's held bytes. Offsets fit 32 bits: a payload is at most 65 535 bytes.
#[derive(Clone, Copy, Debug)]
struct Piece {
    start: u32,
    end: u32,
    at: u32,
}

/// A datagram being reassembled.
struct Partial {
    /// Matches the entry in `FragTable::order` that stands for this datagram.
    generation: u64,
    /// Capture time of the first fragment seen.
    first_ts: Nanos,
    /// The bytes received, in the order they arrived.
    held: Vec<u8>,
    /// The received pieces, sorted by start and never overlapping.
    pieces: Vec<Piece>,
    /// Payload bytes received: the pieces' lengths summed.
    received: usize,
    /// Payload length, known once the last fragment (MF clear) has arrived.
    total: Option<usize>,
    /// The datagram is known not to be DNS: its fragments are discarded on arrival.
    ignored: bool,
}

impl Partial {
    /// True once every byte from 0 to the known total has arrived: the pieces never
    /// overlap and never pass the total, so their lengths add up to it only then.
    fn is_complete(&self) -> bool {
        self.total == Some(self.received)
    }

    /// Heap bytes held, as allocated.
    fn bytes(&self) -> usize {
        self.held.capacity() + self.pieces.capacity() * size_of::<Piece>()
    }

    /// Bytes of `[start, end)` already received. The pieces that overlap it are the
    /// last ones starting before `end`, found by a binary search.
    fn covered(&self, start: usize, end: usize) -> usize {
        let before_end = self.pieces.partition_point(|p| (p.start as usize) < end);
        self.pieces[..before_end]
            .iter()
            .rev()
            .take_while(|p| p.end as usize > start)
            .map(|p| (p.end as usize).min(end) - (p.start as usize).max(start))
            .sum()
    }

    /// Keeps `data` as the payload's `[start, start + data.len())`, which overlaps
    /// nothing received. Joins the piece before when it ends there and its bytes are the
    /// last held (fragments in order make one piece). Memory grows by what arrived.
    fn store(&mut self, start: usize, data: &[u8]) {
        let at = self.pieces.partition_point(|p| (p.start as usize) < start);
        let end = (start + data.len()) as u32;
        let held_end = self.held.len() as u32;
        self.held.reserve_exact(data.len());
        self.held.extend_from_slice(data);
        self.received += data.len();
        if let Some(before) = at.checked_sub(1).map(|i| &mut self.pieces[i]) {
            if before.end as usize == start && before.at + (before.end - before.start) == held_end {
                before.end = end;
                return;
            }
        }
        if self.pieces.len() == self.pieces.capacity() {
            self.pieces.reserve_exact(self.pieces.len().clamp(2, 16));
        }
        self.pieces.insert(
            at,
            Piece {
                start: start as u32,
                end,
                at: held_end,
            },
        );
    }

    /// The payload, laid out in `buf` (cleared first).
    fn assemble(&self, mut buf: Vec<u8>) -> Vec<u8> {
        buf.clear();
        buf.resize(self.received, 0);
        for p in &self.pieces {
            let (start, end, at) = (p.start as usize, p.end as usize, p.at as usize);
            buf[start..end].copy_from_slice(&self.held[at..at + end - start]);
        }
        buf
    }
}

/// What happened to a fragment.
enum Verdict {
    /// Stored; the datagram is still incomplete.
    Held,
    /// Its bytes were all received already.
    Duplicate,
    /// The datagram is now complete.
    Complete,
    /// The datagram is inconsistent and must go.
    DropDatagram,
}

/// The reassembly table.
pub(crate) struct FragTable {
    map: HashMap<FragKey, Partial>,
    /// Datagrams in the order they were started, for expiry and eviction from the front.
    /// An entry whose generation no longer matches the map's is stale and skipped.
    order: VecDeque<(FragKey, u64)>,
    next_generation: u64,
    max: usize,
    /// Most the datagrams' pieces may take ([`Partial::bytes`] summed).
    max_bytes: usize,
    /// What they take now.
    bytes: usize,
    timeout: Nanos,
    pool: Vec<Vec<u8>>,
}

impl FragTable {
    /// An empty table holding at most `max` datagrams and `max_bytes` of their pieces,
    /// for `timeout` each.
    pub(crate) fn new(max: usize, max_bytes: usize, timeout: Nanos) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            max,
            max_bytes,
            bytes: 0,
            timeout,
            pool: Vec::new(),
        }
    }

    /// Datagrams currently held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes the datagrams' pieces take.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds what the table holds to `sizes` ([`super::Decoder::table_sizes`]).
    pub(crate) fn sizes(&self, sizes: &mut super::TableSizes) {
        sizes.fragment_datagrams = self.map.len();
        sizes.fragment_largest = self.map.values().map(|p| p.received).max().unwrap_or(0);
        sizes.fragment_queue = self.order.len();
        sizes.fragment_bytes = self.bytes;
        sizes.fragment_bytes_recount = self.map.values().map(Partial::bytes).sum();
    }

    /// Drops the datagrams started `timeout` or more before `now`. Called on every
    /// frame: the common case, nothing held, costs a test.
    #[inline]
    pub(crate) fn expire(&mut self, now: Nanos, stats: &mut DecodeStats) {
        if !self.order.is_empty() {
            self.expire_held(now, stats);
        }
    }

    #[inline(never)]
    fn expire_held(&mut self, now: Nanos, stats: &mut DecodeStats) {
        while let Some(&(key, generation)) = self.order.front() {
            match self.map.get(&key) {
                Some(p) if p.generation == generation => {
                    if now.saturating_sub(p.first_ts) < self.timeout {
                        break;
                    }
                    self.remove(&key, stats);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Adds one fragment. Returns the reassembled payload when this fragment completes its
    /// datagram; hand the buffer back with [`FragTable::recycle`] once done with it.
    pub(crate) fn insert(
        &mut self,
        key: FragKey,
        ts: Nanos,
        frag: Fragment<'_>,
        stats: &mut DecodeStats,
    ) -> Option<Vec<u8>> {
        let end = frag.offset.saturating_add(frag.data.len());
        // Every fragment but the last carries a multiple of 8 bytes (offsets count in
        // 8-byte units); anything else, or a datagram past the maximum, is forged or broken.
        if end > MAX_DATAGRAM || (frag.more && (frag.data.is_empty() || frag.data.len() % 8 != 0)) {
            stats.ip_fragments_dropped += 1;
            return None;
        }
        self.expire(ts, stats);
        if !self.map.contains_key(&key) && !self.start(key, ts, stats) {
            stats.ip_fragments_dropped += 1;
            return None;
        }
        let Entry::Occupied(mut entry) = self.map.entry(key) else {
            return None;
        };
        if entry.get().ignored {
            stats.not_dns += 1;
            return None;
        }
        let before = entry.get().bytes();
        let verdict = Self::apply(entry.get_mut(), frag, end);
        self.bytes = self.bytes - before + entry.get().bytes();
        match verdict {
            Verdict::Held => {
                // Room is made after the fact: the table passes its bound by at most the
                // fragment just stored, until the oldest datagrams are gone.
                while self.bytes > self.max_bytes && !self.map.is_empty() {
                    self.evict_oldest(stats);
                }
                None
            }
            Verdict::Duplicate => {
                stats.ip_fragments_duplicate += 1;
                None
            }
            Verdict::DropDatagram => {
                let p = entry.remove();
                self.bytes -= p.bytes();
                stats.ip_fragments_dropped += 1;
                None
            }
            Verdict::Complete => {
                let p = entry.remove();
                self.bytes -= p.bytes();
                Some(p.assemble(self.pool.pop().unwrap_or_default()))
            }
        }
    }

    /// Marks the datagram under `key` as not DNS: what it holds is freed and its further
    /// fragments are discarded until it expires.
    pub(crate) fn ignore(&mut self, key: FragKey, ts: Nanos, stats: &mut DecodeStats) {
        self.expire(ts, stats);
        if !self.map.contains_key(&key) && !self.start(key, ts, stats) {
            return;
        }
        if let Some(p) = self.map.get_mut(&key) {
            self.bytes -= p.bytes();
            p.ignored = true;
            p.pieces = Vec::new();
            p.held = Vec::new();
        }
    }

    /// Returns a buffer from [`FragTable::insert`] for reuse.
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_SIZE {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Starts a new datagram under `key`, evicting the oldest if the table is full.
    /// False if the table holds nothing at all (`max` is 0).
    fn start(&mut self, key: FragKey, ts: Nanos, stats: &mut DecodeStats) -> bool {
        if self.max == 0 {
            return false;
        }
        while self.map.len() >= self.max {
            self.evict_oldest(stats);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.map.insert(
            key,
            Partial {
                generation,
                first_ts: ts,
                held: Vec::new(),
                pieces: Vec::new(),
                received: 0,
                total: None,
                ignored: false,
            },
        );
        self.order.push_back((key, generation));
        // Completed datagrams leave stale entries behind; keep the queue proportional to
        // the table so it stays bounded too.
        if self.order.len() > 2 * self.max + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, g)| map.get(k).is_some_and(|p| p.generation == *g));
        }
        true
    }

    /// Drops the oldest datagram still held.
    fn evict_oldest(&mut self, stats: &mut DecodeStats) {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .map
                .get(&key)
                .is_some_and(|p| p.generation == generation)
            {
                self.remove(&key, stats);
                return;
            }
        }
        // The queue always covers every live datagram; this only guards the loop above.
        if let Some(&key) = self.map.keys().next() {
            self.remove(&key, stats);
        }
    }

    /// Drops a datagram before completion, counting it unless it was being ignored.
    fn remove(&mut self, key: &FragKey, stats: &mut DecodeStats) {
        if let Some(p) = self.map.remove(key) {
            if !p.ignored {
                stats.ip_fragments_dropped += 1;
            }
            self.bytes -= p.bytes();
        }
    }

    /// Checks `frag` against what `p` holds and stores it.
    fn apply(p: &mut Partial, frag: Fragment<'_>, end: usize) -> Verdict {
        let start = frag.offset;
        if !frag.more {
            if p.total.is_some_and(|t| t != end) {
                return Verdict::DropDatagram;
            }
            // The pieces are sorted and apart: the last one ends furthest.
            if p.pieces.last().is_some_and(|last| last.end as usize > end) {
                return Verdict::DropDatagram;
            }
            p.total = Some(end);
        } else if p.total.is_some_and(|t| end > t) {
            return Verdict::DropDatagram;
        }
        if start < end {
            match p.covered(start, end) {
                0 if p.pieces.len() >= MAX_PIECES => return Verdict::DropDatagram,
                0 => p.store(start, frag.data),
                n if n == end - start => return Verdict::Duplicate,
                _ => return Verdict::DropDatagram,
            }
        }
        if p.is_complete() {
            Verdict::Complete
        } else {
            Verdict::Held
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 17,
        }
    }

    fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment { offset, more, data }
    }

    #[test]
    fn reassembles_out_of_order_with_duplicates() {
        let payload: Vec<u8> = (0..40u8).collect();
        let mut t = FragTable::new(8, 1 << 20, 1_000);
        let mut st = DecodeStats::default();
        assert!(t
            .insert(key(1), 0, frag(32, false, &payload[32..]), &mut st)
            .is_none());
        assert!(t
            .insert(key(1), 1, frag(16, true, &payload[16..32]), &mut st)
            .is_none());
        assert!(t
            .insert(key(1), 2, frag(16, true, &payload[16..32]), &mut st)
            .is_none());
        assert_eq!(st.ip_fragments_duplicate, 1);
        let done = t.insert(key(1), 3, frag(0, true, &payload[..16]), &mut st);
        assert_eq!(done.as_deref(), Some(&payload[..]));
        assert_eq!(t.len(), 0);
        assert_eq!(st.ip_fragments_dropped, 0);
    }

    #[test]
    fn partial_overlap_drops_the_datagram() {
        let payload = [7u8; 32];
        let mut t = FragTable::new(8, 1 << 20, 1_000);
        let mut st = DecodeStats::default();
        assert!(t
            .insert(key(1), 0, frag(0, true, &payload[..16]), &mut st)
            .is_none());
        assert!(t
            .insert(key(1), 0, frag(8, true, &payload[..16]), &mut st)
            .is_none());
        assert_eq!(st.ip_fragments_dropped, 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn inconsistent_lengths_are_rejected() {
        let mut t = FragTable::new(8, 1 << 20, 1_000);
        let mut st = DecodeStats::default();
        // Not a multiple of 8 with MF set.
        assert!(t
            .insert(key(1), 0, frag(0, true, &[1; 10]), &mut st)
            .is_none());
        // Past 65 535 bytes.
        assert!(t
            .insert(key(2), 0, frag(65_528, false, &[1; 16]), &mut st)
            .is_none());
        assert_eq!(st.ip_fragments_dropped, 2);
        // Two different last fragments.
        assert!(t
            .insert(key(3), 0, frag(8, false, &[1; 8]), &mut st)
            .is_none());
        assert!(t
            .insert(key(3), 0, frag(16, false, &[1; 8]), &mut st)
            .is_none());
        assert_eq!(st.ip_fragments_dropped, 3);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn expires_and_evicts_oldest() {
        let mut t = FragTable::new(2, 1 << 20, 100);
        let mut st = DecodeStats::default();
        t.insert(key(1), 0, frag(0, true, &[0; 8]), &mut st);
        t.insert(key(2), 10, frag(0, true, &[0; 8]), &mut st);
        // Full: key 1 (the oldest) makes room for key 3.
        t.insert(key(3), 20, frag(0, true, &[0; 8]), &mut st);
        assert_eq!(st.ip_fragments_dropped, 1);
        assert_eq!(t.len(), 2);
        assert!(t
            .insert(key(1), 21, frag(8, false, &[0; 8]), &mut st)
            .is_none());
        // Key 1 restarted with only its tail; evicted key 2 in turn.
        assert_eq!(st.ip_fragments_dropped, 2);
        t.expire(200, &mut st);
        assert_eq!(t.len(), 0);
        assert_eq!(st.ip_fragments_dropped, 4);
        // Completing the expired datagram is impossible: its head is gone.
        assert!(t
            .insert(key(3), 201, frag(8, false, &[0; 8]), &mut st)
            .is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ignored_datagrams_hold_nothing() {
        let mut t = FragTable::new(8, 1 << 20, 1_000);
        let mut st = DecodeStats::default();
        // The tail arrives first and is buffered, then the head says "not DNS".
        assert!(t
            .insert(key(1), 0, frag(8, true, &[1; 8]), &mut st)
            .is_none());
        t.ignore(key(1), 1, &mut st);
        assert!(t.map[&key(1)].held.is_empty());
        assert_eq!(t.bytes(), 0);
        assert!(t
            .insert(key(1), 2, frag(16, false, &[1; 8]), &mut st)
            .is_none());
        assert_eq!(st.not_dns, 1);
        // Expiring an ignored datagram is not a loss.
        t.expire(5_000, &mut st);
        assert_eq!(t.len(), 0);
        assert_eq!(st.ip_fragments_dropped, 0);
    }

    #[test]
    fn random_orders_and_duplicates_reassemble_exactly() {
        let mut state = 0x0123_4567_89ab_cdefu64;
        let mut rand = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for round in 0..300u32 {
            let len = 1 + rand(3000);
            let payload: Vec<u8> = (0..len).map(|_| rand(256) as u8).collect();
            let size = 8 * (1 + rand(64));
            let mut frags: Vec<(usize, bool)> = (0..len.div_ceil(size))
                .map(|i| (i * size, (i + 1) * size < len))
                .collect();
            if frags.len() < 2 {
                // A single piece is not a fragment: the decoder never brings it here.
                continue;
            }
            // Shuffle, and repeat a few.
            for i in (1..frags.len()).rev() {
                frags.swap(i, rand(i + 1));
            }
            for _ in 0..rand(3) {
                let f = frags[rand(frags.len())];
                frags.insert(rand(frags.len()), f);
            }
            let mut t = FragTable::new(8, 1 << 20, 1_000);
            let mut st = DecodeStats::default();
            let mut done = Vec::new();
            for &(offset, more) in &frags {
                let data = &payload[offset..(offset + size).min(len)];
                if let Some(d) = t.insert(key(round), 0, frag(offset, more, data), &mut st) {
                    done.push(d);
                }
            }
            // Repeats after completion start the datagram over: when they happen to cover
            // it whole, it was sent twice and comes out twice, identical.
            assert!(!done.is_empty(), "round {round}");
            assert!(done.iter().all(|d| *d == payload), "round {round}");
            assert_eq!(st.ip_fragments_dropped, 0, "round {round}");
        }
    }

    #[test]
    fn order_queue_stays_bounded() {
        let mut t = FragTable::new(4, 1 << 20, 1_000_000);
        let mut st = DecodeStats::default();
        for id in 0..10_000u32 {
            t.insert(key(id), 0, frag(0, true, &[1; 8]), &mut st);
            let done = t.insert(key(id), 0, frag(8, false, &[2; 3]), &mut st);
            assert_eq!(
                done.as_deref(),
                Some(&[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2][..])
            );
            t.recycle(done.unwrap_or_default());
        }
        assert!(t.order.len() <= 2 * 4 + 64);
        assert_eq!(st.ip_fragments_dropped, 0);
    }
}
