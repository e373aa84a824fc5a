//! DNS over TCP: per-flow stream reassembly of length-prefixed messages, bounded in
//! flows and bytes.
//!
//! Each direction of a connection is a flow of its own, keyed by (src, dst, sport, dport):
//! queries and responses never share a buffer. A flow remembers the next sequence number
//! it expects and, only while a message is split across segments, the partial message.
//! Segments that carry whole messages are handed out straight from the frame.
//!
//! Policies, chosen for a passive sensor that must stay in sync cheaply:
//! - data already seen (retransmissions) is ignored, partly new data is trimmed;
//! - a gap (lost or reordered segment) drops the partial message and resynchronises on
//!   the next segment that looks like the start of a message: most DNS clients and
//!   servers write each message in a segment of its own;
//! - a flow seen without its SYN starts at its first data segment, under the same test;
//! - a message longer than the per-flow buffer is skipped, staying in sync behind it;
//! - FIN frees the direction, RST the connection; idle flows expire after `timeout`;
//! - when the table is full, new flows are not tracked but their segments' whole messages
//!   are still handed out.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

use super::DecodeStats;
use crate::Nanos;

/// Shortest plausible DNS message: its header.
const MIN_MESSAGE: usize = 12;

/// Furthest behind the expected sequence number a segment is still taken for a
/// retransmission; DNS streams never have this much data in flight.
const MAX_REWIND: u32 = 1 << 20;

/// Bytes a flow takes beyond its partial message: its entry in the table (key and
/// state, with the hash table's control byte). For the share of `memory_cap` the
/// table is given.
pub(crate) const FLOW_BYTES: usize = size_of::<(FlowKey, Flow)>() + 1;

/// One direction of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    /// Sender's address.
    pub src: IpAddr,
    /// Receiver's address.
    pub dst: IpAddr,
    /// Sender's port.
    pub sport: u16,
    /// Receiver's port.
    pub dport: u16,
}

impl FlowKey {
    /// The other direction of the same connection.
    fn reverse(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// The parts of a TCP segment the reassembler needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment<'a> {
    /// Sequence number of the first payload byte (of the SYN, if `syn`).
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Captured payload.
    pub payload: &'a [u8],
}

/// Stream state of one flow.
struct Flow {
    /// Sequence number of the next byte expected.
    next_seq: u32,
    /// Capture time of the last segment.
    last_seen: Nanos,
    /// False until a segment that starts a message has been seen (no SYN, or after a gap).
    synced: bool,
    /// Bytes still to skip of a message too large to buffer.
    skip: usize,
    /// The start of a message whose end has not arrived yet (length prefix included):
    /// what has arrived of it, not what its prefix announces, so a few bytes that claim
    /// a 65 535-byte message hold a few bytes. Freed once the message is out.
    buf: Vec<u8>,
}

impl Flow {
    fn new(next_seq: u32, ts: Nanos, synced: bool) -> Self {
        Self {
            next_seq,
            last_seen: ts,
            synced,
            skip: 0,
            buf: Vec::new(),
        }
    }

    /// Forgets the partial message, counting its bytes as dropped.
    fn drop_partial(&mut self, stats: &mut DecodeStats) {
        stats.tcp_bytes_dropped += self.buf.len() as u64;
        self.buf = Vec::new();
        self.skip = 0;
    }

    /// Starts the flow over at `next_seq`.
    fn restart(&mut self, next_seq: u32, ts: Nanos, synced: bool, stats: &mut DecodeStats) {
        self.drop_partial(stats);
        self.next_seq = next_seq;
        self.last_seen = ts;
        self.synced = synced;
    }
}

/// The flow table.
pub(crate) struct TcpTable {
    flows: HashMap<FlowKey, Flow>,
    max_flows: usize,
    max_buffer: usize,
    timeout: Nanos,
    /// Time between sweeps: a quarter of the timeout.
    sweep_every: Nanos,
    /// Capture time of the last sweep: the next comes `sweep_every` later.
    last_sweep: Nanos,
    /// Sum of the capacities of all flows' buffers.
    buffered: usize,
    /// Most `buffered` may reach: without it, a flood of flows each holding part of a
    /// large message could pin `max_flows` times `max_buffer` (a gibibyte).
    max_total: usize,
}

impl TcpTable {
    /// An empty table: at most `max_flows` flows, `max_buffer` bytes buffered per flow
    /// and `max_total` across flows, idle flows kept for `timeout`.
    pub(crate) fn new(
        max_flows: usize,
        max_buffer: usize,
        max_total: usize,
        timeout: Nanos,
    ) -> Self {
        Self {
            flows: HashMap::new(),
            max_flows,
            max_buffer,
            timeout,
            sweep_every: (timeout / 4).max(1),
            last_sweep: 0,
            buffered: 0,
            max_total,
        }
    }

    /// Flows currently tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// Adds what the table holds to `sizes` ([`super::Decoder::table_sizes`]).
    pub(crate) fn sizes(&self, sizes: &mut super::TableSizes) {
        sizes.tcp_flows = self.flows.len();
        sizes.tcp_largest_partial = self.flows.values().map(|f| f.buf.len()).max().unwrap_or(0);
        sizes.tcp_buffered = self.buffered;
        sizes.tcp_buffered_recount = self.flows.values().map(|f| f.buf.capacity()).sum();
    }

    /// Drops flows idle for `timeout` or more; does the work at most a few times per
    /// timeout so that calling it on every frame costs nothing.
    #[inline]
    pub(crate) fn expire(&mut self, now: Nanos, stats: &mut DecodeStats) {
        // Within `sweep_every` after the last sweep, and not before it: a clock that
        // jumped back (merged captures) wraps the difference and sweeps at once, rather
        // than postponing sweeps for long. One subtraction and one comparison a frame.
        if now.wrapping_sub(self.last_sweep) < self.sweep_every {
            return;
        }
        self.sweep(now, stats);
    }

    #[inline(never)]
    fn sweep(&mut self, now: Nanos, stats: &mut DecodeStats) {
        self.last_sweep = now;
        let timeout = self.timeout;
        let buffered = &mut self.buffered;
        self.flows.retain(|_, f| {
            let keep = now.saturating_sub(f.last_seen) < timeout;
            if !keep {
                stats.tcp_bytes_dropped += f.buf.len() as u64;
                *buffered -= f.buf.capacity();
            }
            keep
        });
    }

    /// Feeds one segment of flow `key`; calls `emit` with each DNS message it completes
    /// (without its length prefix).
    pub(crate) fn segment<F: FnMut(&[u8])>(
        &mut self,
        key: FlowKey,
        ts: Nanos,
        seg: Segment<'_>,
        stats: &mut DecodeStats,
        mut emit: F,
    ) {
        if seg.rst {
            // The connection is gone in both directions; data on a RST is not delivered.
            for k in [key, key.reverse()] {
                self.remove(&k, stats);
            }
            return;
        }
        let mut seq = seg.seq;
        if seg.syn {
            // A new connection: whatever was kept under this key belongs to an old one.
            seq = seq.wrapping_add(1);
            if let Some(f) = self.flows.get_mut(&key) {
                self.buffered -= f.buf.capacity();
                f.restart(seq, ts, true, stats);
            } else if self.flows.len() < self.max_flows {
                self.flows.insert(key, Flow::new(seq, ts, true));
            } else if seg.payload.is_empty() {
                // With a payload, the data path below counts the refusal.
                stats.tcp_flows_refused += 1;
            }
        }
        if !seg.payload.is_empty() {
            stats.tcp_segments += 1;
            self.data(key, ts, seq, seg.payload, stats, &mut emit);
        } else if let Some(f) = self.flows.get_mut(&key) {
            f.last_seen = ts;
        }
        if seg.fin {
            self.remove(&key, stats);
        }
    }

    /// Handles the payload of a segment whose first byte has sequence number `seq`.
    fn data<F: FnMut(&[u8])>(
        &mut self,
        key: FlowKey,
        ts: Nanos,
        seq: u32,
        payload: &[u8],
        stats: &mut DecodeStats,
        emit: &mut F,
    ) {
        let timeout = self.timeout;
        let end_seq = seq.wrapping_add(payload.len() as u32);
        let tracked = self.flows.len();
        // Before a restart or a gap frees the partial message.
        let before = self.flows.get(&key).map_or(0, |f| f.buf.capacity());
        let flow = match self.flows.entry(key) {
            Entry::Occupied(e) => {
                let f = e.into_mut();
                if ts.saturating_sub(f.last_seen) >= timeout {
                    // Idle past the timeout but not yet swept: start over as if new.
                    f.restart(seq, ts, false, stats);
                }
                f
            }
            Entry::Vacant(e) if tracked < self.max_flows => e.insert(Flow::new(seq, ts, false)),
            Entry::Vacant(_) => {
                stats.tcp_flows_refused += 1;
                // Untracked: still hand out what this segment holds whole.
                let rest = whole_messages(payload, stats, emit);
                stats.tcp_bytes_dropped += rest.len() as u64;
                return;
            }
        };
        flow.last_seen = ts;
        // Distance from the byte expected next, in sequence space (wraps at 2^32).
        let ahead = seq.wrapping_sub(flow.next_seq) as i32;
        let data = if ahead == 0 {
            payload
        } else if ahead < 0 && ahead.unsigned_abs() <= MAX_REWIND {
            let seen = ahead.unsigned_abs() as usize;
            if seen >= payload.len() {
                stats.tcp_retransmits += 1;
                // An idle flow restarted above gave its partial message back.
                self.buffered = self.buffered - before + flow.buf.capacity();
                return;
            }
            &payload[seen..]
        } else {
            // Ahead, or so far behind that it cannot be a retransmission (a new connection
            // on the same ports whose SYN was missed): resync.
            stats.tcp_gaps += 1;
            flow.drop_partial(stats);
            flow.synced = false;
            payload
        };
        flow.next_seq = end_seq;
        let limits = Limits {
            max_buffer: self.max_buffer,
            room: self.max_total.saturating_sub(self.buffered - before),
        };
        consume(flow, data, limits, stats, emit);
        self.buffered = (self.buffered + flow.buf.capacity()).saturating_sub(before);
    }

    /// Forgets flow `key`, counting its partial message as dropped.
    fn remove(&mut self, key: &FlowKey, stats: &mut DecodeStats) {
        if let Some(mut f) = self.flows.remove(key) {
            self.buffered -= f.buf.capacity();
            f.drop_partial(stats);
        }
    }
}

/// How much one flow may buffer.
#[derive(Clone, Copy)]
struct Limits {
    /// Per flow.
    max_buffer: usize,
    /// Bytes this flow may hold in all: the table's bound less what the other flows
    /// hold. Counted against what the flow holds at the time of each check, not at
    /// the start of the segment, so that a message it completes and frees makes room
    /// for the next one the same segment starts.
    room: usize,
}

impl Limits {
    /// Whether `flow` may buffer `more` bytes of a message of `need` (prefix included).
    fn allows(&self, flow: &Flow, need: usize, more: usize) -> bool {
        need <= self.max_buffer && (flow.buf.len() + more).max(flow.buf.capacity()) <= self.room
    }
}

/// Appends in-order stream bytes to `flow`, handing out each message they complete.
fn consume<F: FnMut(&[u8])>(
    flow: &mut Flow,
    data: &[u8],
    limits: Limits,
    stats: &mut DecodeStats,
    emit: &mut F,
) {
    let mut rest = data;
    if flow.skip > 0 {
        let n = flow.skip.min(rest.len());
        flow.skip -= n;
        stats.tcp_bytes_dropped += n as u64;
        rest = &rest[n..];
        if rest.is_empty() {
            return;
        }
    }
    if !flow.synced {
        if !looks_like_message_start(rest) {
            stats.tcp_bytes_dropped += rest.len() as u64;
            return;
        }
        flow.synced = true;
    }
    if !flow.buf.is_empty() {
        // Finish the pending message first: length prefix, then body.
        if flow.buf.len() < 2 {
            let take = (2 - flow.buf.len()).min(rest.len());
            flow.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if flow.buf.len() < 2 {
                return;
            }
        }
        let need = 2 + usize::from(u16::from_be_bytes([flow.buf[0], flow.buf[1]]));
        let take = (need - flow.buf.len()).min(rest.len());
        if !limits.allows(flow, need, take) {
            // Too large for a flow, or no room left across flows: skip the rest of it.
            stats.tcp_bytes_dropped += flow.buf.len() as u64;
            flow.skip = need - flow.buf.len();
            flow.buf = Vec::new();
            return consume(flow, rest, limits, stats, emit);
        }
        // Exactly what arrived, as the budget check assumed.
        flow.buf.reserve_exact(take);
        flow.buf.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        if flow.buf.len() < need {
            return;
        }
        if need > 2 {
            emit(&flow.buf[2..need]);
        } else {
            stats.tcp_bytes_dropped += 2;
        }
        flow.buf = Vec::new();
    }
    let rest = whole_messages(rest, stats, emit);
    if rest.is_empty() {
        return;
    }
    let need = if rest.len() >= 2 {
        2 + usize::from(u16::from_be_bytes([rest[0], rest[1]]))
    } else {
        2
    };
    if !limits.allows(flow, need, rest.len()) {
        stats.tcp_bytes_dropped += rest.len() as u64;
        flow.skip = need - rest.len();
    } else {
        flow.buf.reserve_exact(rest.len());
        flow.buf.extend_from_slice(rest);
    }
}

/// Hands out every complete length-prefixed message at the start of `data`, straight
/// from it; returns the incomplete tail.
fn whole_messages<'a, F: FnMut(&[u8])>(
    mut data: &'a [u8],
    stats: &mut DecodeStats,
    emit: &mut F,
) -> &'a [u8] {
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let Some(message) = data.get(2..2 + len) else {
            break;
        };
        if len == 0 {
            // A zero length prefix carries nothing; skip it and stay in sync.
            stats.tcp_bytes_dropped += 2;
        } else {
            emit(message);
        }
        data = &data[2 + len..];
    }
    data
}

/// Whether `data` can start with a length-prefixed DNS message, to pick where to resume
/// after a gap: the prefix must leave room for a header, and a header present must claim
/// a sane question count (queries and responses carry one).
fn looks_like_message_start(data: &[u8]) -> bool {
    if data.len() < 2 {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
    if len < MIN_MESSAGE {
        return false;
    }
    match data.get(6..8) {
        Some(qd) => u16::from_be_bytes([qd[0], qd[1]]) <= 1,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FlowKey {
        FlowKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            sport: 40000,
            dport: 53,
        }
    }

    /// A fake DNS message of `len` bytes (QDCOUNT 1), tagged with `tag` in its id.
    fn message(tag: u8, len: usize) -> Vec<u8> {
        let mut m = vec![tag; len.max(12)];
        m[4] = 0;
        m[5] = 1;
        m
    }

    fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            seq,
            syn: false,
            fin: false,
            rst: false,
            payload,
        }
    }

    struct Harness {
        table: TcpTable,
        stats: DecodeStats,
        out: Vec<Vec<u8>>,
    }

    impl Harness {
        fn new(max_flows: usize, max_buffer: usize) -> Self {
            Self {
                table: TcpTable::new(max_flows, max_buffer, 64 << 20, 1_000),
                stats: DecodeStats::default(),
                out: Vec::new(),
            }
        }

        fn feed(&mut self, k: FlowKey, ts: Nanos, s: Segment<'_>) {
            let out = &mut self.out;
            self.table
                .segment(k, ts, s, &mut self.stats, |m| out.push(m.to_vec()));
            let held: usize = self.table.flows.values().map(|f| f.buf.capacity()).sum();
            assert_eq!(self.table.buffered, held);
        }
    }

    #[test]
    fn several_messages_in_one_segment() {
        let msgs = vec![message(1, 30), message(2, 12), message(3, 100)];
        let mut h = Harness::new(8, 65_537);
        h.feed(key(), 0, seg(1000, &framed(&msgs)));
        assert_eq!(h.out, msgs);
        // Nothing left pending: the fast path buffered nothing.
        assert!(h.table.flows[&key()].buf.is_empty());
    }

    #[test]
    fn message_split_across_segments_even_inside_the_prefix() {
        let msgs = vec![message(1, 40), message(2, 50)];
        let bytes = framed(&msgs);
        for cut in 1..bytes.len() {
            let mut h = Harness::new(8, 65_537);
            // After a SYN the stream start is known, however little the first segment holds.
            let syn = Segment {
                syn: true,
                ..seg(499, &[])
            };
            h.feed(key(), 0, syn);
            h.feed(key(), 0, seg(500, &bytes[..cut]));
            h.feed(key(), 1, seg(500 + cut as u32, &bytes[cut..]));
            assert_eq!(h.out, msgs, "cut at {cut}");
        }
    }

    #[test]
    fn retransmissions_are_ignored_and_overlaps_trimmed() {
        let msgs = vec![message(1, 20), message(2, 20)];
        let bytes = framed(&msgs);
        let mut h = Harness::new(8, 65_537);
        h.feed(key(), 0, seg(7, &bytes[..30]));
        h.feed(key(), 1, seg(7, &bytes[..30]));
        assert_eq!(h.stats.tcp_retransmits, 1);
        // Overlaps the first 10 bytes already seen.
        h.feed(key(), 2, seg(7 + 20, &bytes[20..]));
        assert_eq!(h.out, msgs);
        // The whole stream again: nothing new.
        h.feed(key(), 3, seg(7, &bytes));
        assert_eq!(h.out.len(), 2);
    }

    #[test]
    fn gap_drops_partial_and_resyncs_on_a_message_start() {
        let a = framed(&[message(1, 40)]);
        let b = framed(&[message(2, 40)]);
        let c = framed(&[message(3, 40)]);
        let mut h = Harness::new(8, 65_537);
        h.feed(key(), 0, seg(0, &a[..20]));
        // Rest of `a` lost; `b` starts further on, and a stray middle part of `c` first.
        h.feed(key(), 1, seg(100, &c[20..]));
        assert_eq!(h.stats.tcp_gaps, 1);
        assert_eq!(h.stats.tcp_bytes_dropped, 20 + (c.len() - 20) as u64);
        h.feed(key(), 2, seg(500, &b));
        assert_eq!(h.stats.tcp_gaps, 2);
        assert_eq!(h.out, vec![message(2, 40)]);
    }

    #[test]
    fn syn_sets_the_start_and_fin_rst_free_flows() {
        let msgs = vec![message(9, 33)];
        let bytes = framed(&msgs);
        let mut h = Harness::new(8, 65_537);
        let syn = Segment {
            syn: true,
            ..seg(99, &[])
        };
        h.feed(key(), 0, syn);
        assert_eq!(h.table.len(), 1);
        h.feed(key(), 1, seg(100, &bytes[..5]));
        let fin = Segment {
            fin: true,
            ..seg(105, &bytes[5..])
        };
        h.feed(key(), 2, fin);
        assert_eq!(h.out, msgs);
        assert_eq!(h.table.len(), 0);
        // RST frees both directions, dropping the partial message.
        h.feed(key(), 3, seg(0, &bytes[..5]));
        h.feed(key().reverse(), 3, seg(0, &bytes[..5]));
        assert_eq!(h.table.len(), 2);
        let rst = Segment {
            rst: true,
            ..seg(5, &[])
        };
        h.feed(key().reverse(), 4, rst);
        assert_eq!(h.table.len(), 0);
        assert_eq!(h.stats.tcp_bytes_dropped, 10);
    }

    #[test]
    fn bounds_flows_buffers_and_idle_time() {
        let mut h = Harness::new(1, 64);
        let other = key().reverse();
        let big = framed(&[message(1, 100), message(2, 20)]);
        // A message larger than the buffer is skipped and the next one still read.
        h.feed(key(), 0, seg(0, &big[..50]));
        h.feed(key(), 1, seg(50, &big[50..]));
        assert_eq!(h.out, vec![message(2, 20)]);
        assert_eq!(h.stats.tcp_bytes_dropped, 102);
        // Table full: the other flow is untracked but its whole messages still come out.
        let two = framed(&[message(3, 12), message(4, 12)]);
        h.feed(other, 2, seg(0, &two[..20]));
        assert_eq!(h.stats.tcp_flows_refused, 1);
        assert_eq!(h.out, vec![message(2, 20), message(3, 12)]);
        assert_eq!(h.stats.tcp_bytes_dropped, 102 + 6);
        // A segment far behind is a new stream, not a retransmission: resync on it.
        h.feed(
            key(),
            3,
            seg(50u32.wrapping_sub(1 << 24), &framed(&[message(5, 12)])),
        );
        assert_eq!(h.out.last(), Some(&message(5, 12)));
        assert_eq!(h.stats.tcp_gaps, 1);
        // Idle past the timeout: swept.
        h.table.expire(5_000, &mut h.stats);
        assert_eq!(h.table.len(), 0);
    }

    #[test]
    fn random_segmentation_with_retransmissions_gives_every_message_once() {
        // Small LCG: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % n
        };
        for round in 0..200 {
            let msgs: Vec<Vec<u8>> = (0..1 + rand(20))
                .map(|i| message(i as u8, 12 + rand(600)))
                .collect();
            let stream = framed(&msgs);
            let isn = rand(u32::MAX as usize) as u32;
            let mut h = Harness::new(8, 65_537);
            let syn = Segment {
                syn: true,
                ..seg(isn, &[])
            };
            h.feed(key(), 0, syn);
            let mut at = 0;
            while at < stream.len() {
                let len = (1 + rand(300)).min(stream.len() - at);
                let seq = isn.wrapping_add(1).wrapping_add(at as u32);
                h.feed(key(), 1, seg(seq, &stream[at..at + len]));
                at += len;
                if rand(4) == 0 {
                    // Retransmit something already sent, possibly with new bytes after it.
                    let from = rand(at);
                    let to = stream.len().min(from + 1 + rand(400));
                    let seq = isn.wrapping_add(1).wrapping_add(from as u32);
                    h.feed(key(), 1, seg(seq, &stream[from..to]));
                    at = at.max(to);
                }
            }
            assert_eq!(h.out, msgs, "round {round}");
            assert_eq!(h.stats.tcp_bytes_dropped, 0, "round {round}");
            assert_eq!(h.stats.tcp_gaps, 0, "round {round}");
        }
    }

    #[test]
    fn random_segments_keep_the_table_consistent() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut h = Harness::new(2, 300);
        h.table.max_total = 700;
        let mut payload = [0u8; 400];
        for i in 0..50_000u64 {
            let mut k = key();
            k.sport = rand(3) as u16;
            if rand(2) == 0 {
                k = k.reverse();
            }
            let len = rand(payload.len());
            for b in &mut payload[..len] {
                // Mostly small bytes, so that length prefixes are often plausible.
                *b = if rand(4) == 0 {
                    rand(256) as u8
                } else {
                    rand(3) as u8
                };
            }
            let s = Segment {
                seq: 1000u32.wrapping_add(rand(2000) as u32),
                syn: rand(20) == 0,
                fin: rand(20) == 0,
                rst: rand(50) == 0,
                payload: &payload[..len],
            };
            h.feed(k, i * 10_000, s);
            h.out.clear();
        }
        assert!(h.table.len() <= 2);
    }

    #[test]
    fn total_buffered_bytes_are_bounded_by_what_arrived() {
        let mut h = Harness::new(100, 65_537);
        h.table.max_total = 1000;
        let msg = framed(&[message(1, 400)]);
        let mut k = key();
        // Each holds the 100 bytes that came, not the 402 its prefix announces: ten fit
        // in 1 000 bytes, the next two do not.
        for port in 0..12u16 {
            k.sport = port;
            h.feed(k, 0, seg(0, &msg[..100]));
            assert!(h.table.buffered <= 1000);
        }
        assert_eq!(h.table.buffered, 1000);
        assert_eq!(h.stats.tcp_bytes_dropped, 200);
        // Full: the rest of a held message cannot come in either.
        k.sport = 0;
        h.feed(k, 1, seg(100, &msg[100..]));
        assert!(h.out.is_empty());
        assert_eq!(h.stats.tcp_bytes_dropped, 200 + msg.len() as u64);
        // Finished flows give their bytes back, and a message then completes.
        for port in 0..12u16 {
            k.sport = port;
            h.feed(
                k,
                2,
                Segment {
                    fin: true,
                    ..seg(msg.len() as u32, &[])
                },
            );
        }
        assert_eq!(h.table.buffered, 0);
        k.sport = 99;
        h.feed(k, 3, seg(0, &msg[..100]));
        h.feed(k, 4, seg(100, &msg[100..]));
        assert_eq!(h.out, vec![message(1, 400)]);
        assert_eq!(h.table.buffered, 0);
    }

    #[test]
    fn a_message_freed_in_a_segment_makes_room_for_the_next_it_starts() {
        // The shape of a fuzz finding: one flow, whose buffer and the table's bound are
        // both one message's size. The first segment holds most of the first message;
        // the second completes it and starts the second, whose room is what the first
        // gave back.
        let msgs = vec![message(1, 44), message(2, 44)];
        let bytes = framed(&msgs);
        let mut h = Harness::new(1, 46);
        h.table.max_total = 46;
        h.feed(key(), 0, seg(0, &bytes[..40]));
        h.feed(key(), 1, seg(40, &bytes[40..76]));
        assert_eq!(h.table.buffered, 30);
        h.feed(key(), 2, seg(76, &bytes[76..]));
        assert_eq!(h.out, msgs);
        assert_eq!(h.stats.tcp_bytes_dropped, 0);
        assert_eq!(h.table.buffered, 0);
    }

    #[test]
    fn flow_without_syn_waits_for_a_message_start() {
        let msgs = vec![message(5, 30)];
        let bytes = framed(&msgs);
        let mut h = Harness::new(8, 65_537);
        // Mid-message bytes first: a length prefix of 0x0505 with QDCOUNT 0x0505.
        h.feed(key(), 0, seg(0, &[5; 20]));
        assert!(h.out.is_empty());
        h.feed(key(), 1, seg(20, &bytes));
        assert_eq!(h.out, msgs);
    }
}
