//! Decode: from a captured frame to DNS messages. Owns the link, network and transport
//! layers (Ethernet/VLAN/SLL/raw IP, IPv4 with fragment reassembly, IPv6 with extension
//! headers, UDP, TCP with stream reassembly) and the DNS header and question.
//!
//! Every table here is bounded; what does not fit or does not parse is counted in
//! [`DecodeStats`] and skipped.

pub mod dns;
mod ipfrag;
mod tcp;

use std::net::IpAddr;

use crate::capture::{Frame, LinkType};
use crate::Nanos;

pub use dns::{parse_question, DnsError, Name, Question};

/// Transport a DNS message arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP (after IPv4 fragment reassembly, if any).
    Udp,
    /// TCP (after stream reassembly; the 2-byte length prefix is removed).
    Tcp,
}

/// What the decoder hands each complete DNS message to: any `FnMut(DnsPacket)`, or a
/// type of its own whose method is inlined by force where the decoder calls it (the
/// worker's counting: as a closure it stayed a call, and the message went through
/// memory to it).
pub trait MessageSink {
    /// Takes one message.
    fn message(&mut self, packet: DnsPacket<'_>);
}

impl<F: FnMut(DnsPacket<'_>)> MessageSink for F {
    #[inline]
    fn message(&mut self, packet: DnsPacket<'_>) {
        self(packet)
    }
}

/// One DNS message found in the traffic, borrowed from the frame or a reassembly buffer.
#[derive(Clone, Copy, Debug)]
pub struct DnsPacket<'a> {
    /// Capture time of the frame that completed the message.
    pub ts: Nanos,
    /// Source address of the message.
    pub src: IpAddr,
    /// Destination address of the message.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// UDP or TCP.
    pub transport: Transport,
    /// The DNS message itself (for TCP, without its length prefix).
    pub message: &'a [u8],
}

/// Limits on the decoder's reassembly tables.
#[derive(Clone, Debug)]
pub struct DecodeSettings {
    /// UDP/TCP ports that carry DNS (either direction).
    pub ports: Vec<u16>,
    /// IPv4 datagrams being reassembled at once.
    pub max_fragment_datagrams: usize,
    /// TCP flows with buffered partial messages at once.
    pub max_tcp_flows: usize,
    /// Bytes buffered per TCP flow direction (a DNS message is at most 65 537 with prefix).
    pub max_tcp_buffer: usize,
    /// Bytes the fragments of incomplete datagrams may take in all.
    pub max_fragment_bytes: usize,
    /// Bytes the partial TCP messages of every flow may take in all.
    pub max_tcp_bytes: usize,
    /// How long an incomplete datagram or idle flow is kept.
    pub reassembly_timeout: Nanos,
}

impl Default for DecodeSettings {
    fn default() -> Self {
        Self {
            ports: vec![53],
            max_fragment_datagrams: 4096,
            max_tcp_flows: 16384,
            max_tcp_buffer: 65_537,
            // A fragmented DNS response (DNSSEC, large TXT) is 1.5 to 4 KiB: thousands
            // fit, where a flood could hold 4 096 datagrams of 64 KiB each.
            max_fragment_bytes: 8 << 20,
            // Most messages over TCP arrive whole in a segment and are never buffered;
            // this holds 256 partial messages of the largest size, or thousands of real ones.
            max_tcp_bytes: 16 << 20,
            reassembly_timeout: 30 * crate::NANOS_PER_SEC,
        }
    }
}

impl DecodeSettings {
    /// The most a decoder's reassembly tables take, in bytes: their byte bounds and the
    /// entries of as many datagrams and flows as they may hold. A worker's share of
    /// `memory_cap` (at 26.3 MiB with the defaults).
    pub fn max_bytes(&self) -> usize {
        self.max_fragment_bytes
            .saturating_add(self.max_tcp_bytes)
            .saturating_add(
                self.max_fragment_datagrams
                    .saturating_mul(ipfrag::DATAGRAM_BYTES),
            )
            .saturating_add(self.max_tcp_flows.saturating_mul(tcp::FLOW_BYTES))
    }
}

/// What the decoder saw and what it skipped, by reason. Serialised with these field
/// names in the replay's JSON summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// Frames handed to [`Decoder::decode`].
    pub frames: u64,
    /// DNS messages handed out.
    pub dns_messages: u64,
    /// Frames that are neither IPv4 nor IPv6 (ARP, LLDP, ...).
    pub not_ip: u64,
    /// IP frames that are not UDP/TCP on a DNS port.
    pub not_dns: u64,
    /// Frames whose link, IP, UDP or TCP headers are cut short or inconsistent, and UDP
    /// datagrams on a DNS port with an empty payload.
    pub malformed_frames: u64,
    /// IP fragments received (IPv4, and IPv6 fragment headers that fragment).
    pub ip_fragments: u64,
    /// Datagrams completed from fragments.
    pub ip_reassembled: u64,
    /// Fragments or partial datagrams dropped (table full, timeout, overlap, too large).
    pub ip_fragments_dropped: u64,
    /// Fragments ignored because every byte they carry had already arrived.
    pub ip_fragments_duplicate: u64,
    /// UDP DNS messages cut short by the capture's snap length, handed out anyway (the
    /// question is at the start of the message).
    pub udp_truncated: u64,
    /// TCP segments on a DNS port carrying payload.
    pub tcp_segments: u64,
    /// TCP segments ignored because all their data had been seen (retransmissions).
    pub tcp_retransmits: u64,
    /// Times a TCP flow jumped ahead (lost or reordered segment) and had to resync.
    pub tcp_gaps: u64,
    /// TCP segments of flows left untracked because the flow table was full (the whole
    /// messages in them are still handed out).
    pub tcp_flows_refused: u64,
    /// TCP bytes dropped (gap, buffer or flow table full, timeout).
    pub tcp_bytes_dropped: u64,
}

impl DecodeStats {
    /// Adds another decoder's counters into these (one decoder per worker).
    pub fn add(&mut self, other: &DecodeStats) {
        self.frames += other.frames;
        self.dns_messages += other.dns_messages;
        self.not_ip += other.not_ip;
        self.not_dns += other.not_dns;
        self.malformed_frames += other.malformed_frames;
        self.ip_fragments += other.ip_fragments;
        self.ip_reassembled += other.ip_reassembled;
        self.ip_fragments_dropped += other.ip_fragments_dropped;
        self.ip_fragments_duplicate += other.ip_fragments_duplicate;
        self.udp_truncated += other.udp_truncated;
        self.tcp_segments += other.tcp_segments;
        self.tcp_retransmits += other.tcp_retransmits;
        self.tcp_gaps += other.tcp_gaps;
        self.tcp_flows_refused += other.tcp_flows_refused;
        self.tcp_bytes_dropped += other.tcp_bytes_dropped;
    }
}

/// What [`Decoder::table_sizes`] reports (for tests and the fuzz targets).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableSizes {
    /// IP datagrams being reassembled (at most `max_fragment_datagrams`).
    pub fragment_datagrams: usize,
    /// Bytes of the largest datagram being reassembled (at most 65 535).
    pub fragment_largest: usize,
    /// Entries of the fragment table's age queue, stale ones included.
    pub fragment_queue: usize,
    /// Bytes the datagrams' pieces take as the table keeps count of them (at most
    /// `max_fragment_bytes` once a fragment is handled).
    pub fragment_bytes: usize,
    /// The same, summed again over every datagram: equal to `fragment_bytes`.
    pub fragment_bytes_recount: usize,
    /// TCP flows tracked (at most `max_tcp_flows`).
    pub tcp_flows: usize,
    /// Bytes of the longest partial message a flow holds, length prefix included (at
    /// most `max_tcp_buffer`).
    pub tcp_largest_partial: usize,
    /// Bytes of partial-message buffers (capacity) as the table keeps count of them
    /// (at most `max_tcp_bytes`).
    pub tcp_buffered: usize,
    /// The same, summed again over every flow: equal to `tcp_buffered`.
    pub tcp_buffered_recount: usize,
}

/// Ethertype of an 802.1Q VLAN tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// Ethertype of an 802.1ad (QinQ) service tag.
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// The pre-standard QinQ ethertype some switches still use.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// Most VLAN tags skipped in one frame; real networks stack two, rarely three.
const MAX_VLAN_TAGS: usize = 8;
/// Most IPv6 extension headers skipped before giving up on a packet.
const MAX_IPV6_EXTS: usize = 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// IPv6 extension headers (RFC 8200): hop-by-hop options, routing, destination
/// options, fragment, authentication (RFC 4302).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;

/// The network layer found under the link header.
enum Network<'a> {
    /// IP packet of the given version (4 or 6), from its first header byte.
    Ip(u8, &'a [u8]),
    /// Something else (ARP, LLDP, ...).
    NotIp,
    /// The link header is cut short or names an impossible IP version.
    Malformed,
}

/// Ports that carry DNS, as a bitmap: one test per packet whatever the list's length.
struct PortSet {
    bits: Box<[u64]>,
}

impl PortSet {
    fn new(ports: &[u16]) -> Self {
        let mut bits = vec![0u64; 65_536 / 64].into_boxed_slice();
        for &p in ports {
            bits[usize::from(p) / 64] |= 1 << (p % 64);
        }
        Self { bits }
    }

    fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }
}

/// Where a fragment header says its data goes (IPv4 or IPv6).
struct FragInfo {
    id: u32,
    offset: usize,
    more: bool,
}

/// Turns frames into DNS messages. One per worker; not shared between threads.
///
/// Headers are parsed by hand rather than with `etherparse`: the sensor needs what its
/// slicers do not give (Linux SLL2, BSD loopback, any number of VLAN tags, the fragment
/// fields and the offset of the fragmentable part for reassembly) and the hot path is a
/// handful of bounds-checked reads with no allocation. Measured on the iodine capture
/// (release build, best of 7, `timing_against_etherparse`): 27 ns per frame for the whole
/// decode, against 73 ns for `etherparse::LaxSlicedPacket::from_ethernet` and a port
/// check alone. `etherparse` builds the test frames.
///
/// Checksums are not verified: on a mirror port many are left to offloading hardware and
/// arrive unfilled, and a damaged DNS message fails its own parse anyway.
pub struct Decoder {
    ports: PortSet,
    stats: DecodeStats,
    frags: ipfrag::FragTable,
    tcp: tcp::TcpTable,
}

impl Decoder {
    /// A decoder with empty reassembly tables.
    pub fn new(settings: DecodeSettings) -> Self {
        Self {
            ports: PortSet::new(&settings.ports),
            stats: DecodeStats::default(),
            frags: ipfrag::FragTable::new(
                settings.max_fragment_datagrams,
                settings.max_fragment_bytes,
                settings.reassembly_timeout,
            ),
            tcp: tcp::TcpTable::new(
                settings.max_tcp_flows,
                settings.max_tcp_buffer,
                settings.max_tcp_bytes,
                settings.reassembly_timeout,
            ),
        }
    }

    /// Decodes one frame and calls `emit` once for each complete DNS message it carries
    /// or completes (zero, one, or several for TCP).
    pub fn decode<F: FnMut(DnsPacket<'_>)>(&mut self, frame: &Frame<'_>, emit: F) {
        self.decode_to(frame, emit);
    }

    /// [`decode`](Self::decode), handing each message to `emit`'s
    /// [`message`](MessageSink::message).
    pub fn decode_to<F: MessageSink>(&mut self, frame: &Frame<'_>, mut emit: F) {
        self.stats.frames += 1;
        let ts = frame.ts;
        self.frags.expire(ts, &mut self.stats);
        self.tcp.expire(ts, &mut self.stats);
        match network(frame.link, frame.data) {
            Network::Ip(4, ip) => self.ipv4(ts, ip, &mut emit),
            Network::Ip(_, ip) => self.ipv6(ts, ip, &mut emit),
            Network::NotIp => self.stats.not_ip += 1,
            Network::Malformed => self.stats.malformed_frames += 1,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// What the reassembly tables hold now, to check against the [`DecodeSettings`]
    /// they were made with: for tests and the fuzz targets (`fuzz/`), not a stable
    /// interface. Walks every flow: not for the hot path.
    #[doc(hidden)]
    pub fn table_sizes(&self) -> TableSizes {
        let mut sizes = TableSizes::default();
        self.frags.sizes(&mut sizes);
        self.tcp.sizes(&mut sizes);
        sizes
    }

    // Inlined by force (see `udp`).
    #[inline(always)]
    fn ipv4<F: MessageSink>(&mut self, ts: Nanos, ip: &[u8], emit: &mut F) {
        let Some(hdr) = ip.get(..20) else {
            self.stats.malformed_frames += 1;
            return;
        };
        let ihl = usize::from(hdr[0] & 0x0f) * 4;
        // Zero is what a capture on a host with segmentation offload records for the large
        // segments it hands to the NIC: the captured length is all there is to go by.
        let total = match be16(hdr, 2) {
            0 => ip.len(),
            n => usize::from(n),
        };
        if hdr[0] >> 4 != 4 || ihl < 20 || total < ihl || ip.len() < ihl {
            self.stats.malformed_frames += 1;
            return;
        }
        // Less captured than the header claims: snap length. More: link padding, ignored.
        let (end, truncated) = if total <= ip.len() {
            (total, false)
        } else {
            (ip.len(), true)
        };
        let src = IpAddr::from([hdr[12], hdr[13], hdr[14], hdr[15]]);
        let dst = IpAddr::from([hdr[16], hdr[17], hdr[18], hdr[19]]);
        let proto = hdr[9];
        let payload = &ip[ihl..end];
        let flags_offset = be16(hdr, 6);
        let more = flags_offset & 0x2000 != 0;
        let offset = usize::from(flags_offset & 0x1fff) * 8;
        if more || offset != 0 {
            let frag = FragInfo {
                id: u32::from(be16(hdr, 4)),
                offset,
                more,
            };
            self.fragment(ts, src, dst, proto, frag, payload, truncated, emit);
            return;
        }
        self.transport(ts, src, dst, proto, payload, truncated, emit);
    }

    fn ipv6<F: MessageSink>(&mut self, ts: Nanos, ip: &[u8], emit: &mut F) {
        let Some(hdr) = ip.get(..40) else {
            self.stats.malformed_frames += 1;
            return;
        };
        if hdr[0] >> 4 != 6 {
            self.stats.malformed_frames += 1;
            return;
        }
        // Zero: a jumbogram or an offloaded segment (see `ipv4`); trust the capture.
        let total = match be16(hdr, 4) {
            0 => ip.len(),
            n => 40 + usize::from(n),
        };
        let (end, truncated) = if total <= ip.len() {
            (total, false)
        } else {
            (ip.len(), true)
        };
        let mut a = [0u8; 16];
        a.copy_from_slice(&hdr[8..24]);
        let src = IpAddr::from(a);
        a.copy_from_slice(&hdr[24..40]);
        let dst = IpAddr::from(a);
        let Some((proto, start, frag)) = ipv6_exts(hdr[6], &ip[40..end]) else {
            self.stats.malformed_frames += 1;
            return;
        };
        let payload = &ip[40 + start..end];
        match frag {
            Some(frag) => self.fragment(ts, src, dst, proto, frag, payload, truncated, emit),
            None => self.transport(ts, src, dst, proto, payload, truncated, emit),
        }
    }

    /// Holds one fragment; once its datagram is complete, decodes the datagram.
    #[allow(clippy::too_many_arguments)]
    fn fragment<F: MessageSink>(
        &mut self,
        ts: Nanos,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        frag: FragInfo,
        data: &[u8],
        truncated: bool,
        emit: &mut F,
    ) {
        self.stats.ip_fragments += 1;
        if truncated {
            // Part of the fragment was not captured: the datagram can never be whole.
            self.stats.ip_fragments_dropped += 1;
            return;
        }
        let key = ipfrag::FragKey {
            src,
            dst,
            id: frag.id,
            proto,
        };
        // Only UDP and TCP can carry DNS here: other datagrams are not worth the memory
        // (IPv6 may still hide UDP behind extension headers in the fragmentable part).
        let maybe_dns = matches!(proto, PROTO_UDP | PROTO_TCP)
            || (src.is_ipv6() && matches!(proto, 0 | 43 | 51 | 60));
        if !maybe_dns {
            self.stats.not_dns += 1;
            return;
        }
        // Fragments are multiples of 8 bytes, so the first always holds both ports: when
        // they are not DNS ports, remember to discard the rest of the datagram unbuffered.
        if frag.offset == 0 && matches!(proto, PROTO_UDP | PROTO_TCP) {
            if let Some(ports) = data.get(..4) {
                if !self.ports.contains(be16(ports, 0)) && !self.ports.contains(be16(ports, 2)) {
                    self.frags.ignore(key, ts, &mut self.stats);
                    self.stats.not_dns += 1;
                    return;
                }
            }
        }
        let piece = ipfrag::Fragment {
            offset: frag.offset,
            more: frag.more,
            data,
        };
        let Some(datagram) = self.frags.insert(key, ts, piece, &mut self.stats) else {
            return;
        };
        self.stats.ip_reassembled += 1;
        let mut proto = proto;
        let mut payload = &datagram[..];
        if src.is_ipv6() {
            // Extension headers may follow the fragment header in the fragmentable part.
            match ipv6_exts(proto, payload) {
                Some((p, start, None)) => {
                    proto = p;
                    payload = &payload[start..];
                }
                _ => {
                    self.stats.malformed_frames += 1;
                    self.frags.recycle(datagram);
                    return;
                }
            }
        }
        self.transport(ts, src, dst, proto, payload, false, emit);
        self.frags.recycle(datagram);
    }

    /// Decodes the UDP or TCP header of a (complete or reassembled) IP payload.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn transport<F: MessageSink>(
        &mut self,
        ts: Nanos,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        payload: &[u8],
        truncated: bool,
        emit: &mut F,
    ) {
        match proto {
            PROTO_UDP => self.udp(ts, src, dst, payload, truncated, emit),
            PROTO_TCP => self.tcp(ts, src, dst, payload, emit),
            _ => self.stats.not_dns += 1,
        }
    }

    // Inlined by force, with `ipv4`: one frame's decode is one function (see
    // `VerdictCache::classify_hinted`).
    #[inline(always)]
    fn udp<F: MessageSink>(
        &mut self,
        ts: Nanos,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        truncated: bool,
        emit: &mut F,
    ) {
        let Some(hdr) = payload.get(..8) else {
            self.stats.malformed_frames += 1;
            return;
        };
        let (src_port, dst_port) = (be16(hdr, 0), be16(hdr, 2));
        if !self.ports.contains(src_port) && !self.ports.contains(dst_port) {
            self.stats.not_dns += 1;
            return;
        }
        let udp_len = usize::from(be16(hdr, 4));
        let end = if udp_len <= payload.len() {
            udp_len
        } else if truncated {
            self.stats.udp_truncated += 1;
            payload.len()
        } else {
            // Longer than the IP packet that carries it.
            self.stats.malformed_frames += 1;
            return;
        };
        if end <= 8 {
            self.stats.malformed_frames += 1;
            return;
        }
        self.stats.dns_messages += 1;
        emit.message(DnsPacket {
            ts,
            src,
            dst,
            src_port,
            dst_port,
            transport: Transport::Udp,
            message: &payload[8..end],
        });
    }

    fn tcp<F: MessageSink>(
        &mut self,
        ts: Nanos,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        emit: &mut F,
    ) {
        let Some(hdr) = payload.get(..20) else {
            self.stats.malformed_frames += 1;
            return;
        };
        let (src_port, dst_port) = (be16(hdr, 0), be16(hdr, 2));
        if !self.ports.contains(src_port) && !self.ports.contains(dst_port) {
            self.stats.not_dns += 1;
            return;
        }
        let data_offset = usize::from(hdr[12] >> 4) * 4;
        if data_offset < 20 || data_offset > payload.len() {
            self.stats.malformed_frames += 1;
            return;
        }
        let flags = hdr[13];
        let seg = tcp::Segment {
            seq: u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]),
            syn: flags & 0x02 != 0,
            fin: flags & 0x01 != 0,
            rst: flags & 0x04 != 0,
            payload: &payload[data_offset..],
        };
        let key = tcp::FlowKey {
            src,
            dst,
            sport: src_port,
            dport: dst_port,
        };
        let mut count = 0u64;
        self.tcp.segment(key, ts, seg, &mut self.stats, |message| {
            count += 1;
            emit.message(DnsPacket {
                ts,
                src,
                dst,
                src_port,
                dst_port,
                transport: Transport::Tcp,
                message,
            });
        });
        self.stats.dns_messages += count;
    }
}

/// Big-endian u16 at `at`; the caller has checked the bounds.
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Strips the link-layer header.
#[inline]
fn network(link: LinkType, data: &[u8]) -> Network<'_> {
    match link {
        LinkType::Ethernet => match data.get(12..14) {
            Some(t) => ethertype(u16::from_be_bytes([t[0], t[1]]), &data[14..]),
            None => Network::Malformed,
        },
        // SLL v1: packet type, ARPHRD, address length, 8 address bytes, then protocol.
        LinkType::LinuxSll => match data.get(14..16) {
            Some(t) => ethertype(u16::from_be_bytes([t[0], t[1]]), &data[16..]),
            None => Network::Malformed,
        },
        // SLL2: protocol first, then reserved, interface index, ARPHRD, type, address.
        LinkType::LinuxSll2 => match data.get(..2) {
            Some(t) if data.len() >= 20 => ethertype(u16::from_be_bytes([t[0], t[1]]), &data[20..]),
            _ => Network::Malformed,
        },
        LinkType::RawIp => match data.first() {
            Some(b) if b >> 4 == 4 || b >> 4 == 6 => Network::Ip(b >> 4, data),
            Some(_) => Network::NotIp,
            None => Network::Malformed,
        },
        LinkType::BsdLoopback => {
            let Some(af) = data.get(..4) else {
                return Network::Malformed;
            };
            // The family is in the capturing host's byte order (DLT_NULL) or network
            // order (DLT_LOOP); a small value reads the same either way round.
            let af = [af[0], af[1], af[2], af[3]];
            let family = u32::from_le_bytes(af).min(u32::from_be_bytes(af));
            let version = match family {
                2 => 4,
                24 | 28 | 30 => 6,
                _ => return Network::NotIp,
            };
            ip_of_version(version, &data[4..])
        }
    }
}

/// A hash of a frame's IP source and destination addresses, the same for both
/// directions, or 0 for a frame that carries no IP packet.
///
/// Splitting frames between workers by it keeps together what one decoder must see
/// together: every segment of a TCP stream and every fragment of an IP datagram (which
/// carry no ports after the first), as a NIC's receive-side scaling does with a
/// two-tuple hash. Counting itself needs no such split: shards of the same slot merge
/// exactly, whichever worker counted a query.
pub fn flow_hash(frame: &Frame<'_>) -> u64 {
    let (a, b) = match network(frame.link, frame.data) {
        Network::Ip(4, ip) => (ip.get(12..16), ip.get(16..20)),
        Network::Ip(_, ip) => (ip.get(8..24), ip.get(24..40)),
        Network::NotIp | Network::Malformed => return 0,
    };
    let (Some(a), Some(b)) = (a, b) else {
        return 0;
    };
    // Order the pair so that a query and its response hash alike.
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut key = [0u8; 32];
    key[..low.len()].copy_from_slice(low);
    key[16..16 + high.len()].copy_from_slice(high);
    xxhash_rust::xxh3::xxh3_64(&key)
}

/// Skips VLAN tags after an ethertype and maps the final one.
// Inlined by force (see `Decoder::udp`): left to itself the compiler kept it a call.
#[inline(always)]
fn ethertype(mut ethertype: u16, mut rest: &[u8]) -> Network<'_> {
    let mut tags = 0;
    // A `match`, not a search of a slice: one compare for the untagged frames that
    // most are, where `contains` was a call when the compiler chose not to inline it.
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        tags += 1;
        let Some(tag) = rest.get(..4) else {
            return Network::Malformed;
        };
        if tags > MAX_VLAN_TAGS {
            return Network::NotIp;
        }
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        rest = &rest[4..];
    }
    match ethertype {
        ETHERTYPE_IPV4 => ip_of_version(4, rest),
        ETHERTYPE_IPV6 => ip_of_version(6, rest),
        _ => Network::NotIp,
    }
}

/// An IP packet the link layer says is of `version`, checked against its first nibble.
#[inline]
fn ip_of_version(version: u8, ip: &[u8]) -> Network<'_> {
    match ip.first() {
        Some(b) if b >> 4 == version => Network::Ip(version, ip),
        _ => Network::Malformed,
    }
}

/// Skips the IPv6 extension headers at the start of `data`, the first of type `next`.
/// Returns the upper-layer protocol, where its header starts in `data`, and the fragment
/// header's fields if one fragments the packet (then parsing stops there: what follows is
/// the fragmentable part). `None` if the headers are cut short or too many.
fn ipv6_exts(mut next: u8, data: &[u8]) -> Option<(u8, usize, Option<FragInfo>)> {
    let mut pos = 0;
    for _ in 0..MAX_IPV6_EXTS {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units, minus one.
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let h = data.get(pos..pos + 2)?;
                let len = (usize::from(h[1]) + 1) * 8;
                data.get(pos..pos + len)?;
                next = h[0];
                pos += len;
            }
            // Authentication header: length in 4-octet units, minus two.
            IPV6_AUTH => {
                let h = data.get(pos..pos + 2)?;
                let len = (usize::from(h[1]) + 2) * 4;
                data.get(pos..pos + len)?;
                next = h[0];
                pos += len;
            }
            // Fragment header: 8 bytes.
            IPV6_FRAGMENT => {
                let h = data.get(pos..pos + 8)?;
                next = h[0];
                pos += 8;
                let offset_flags = be16(h, 2);
                let frag = FragInfo {
                    id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    offset: usize::from(offset_flags & 0xfff8),
                    more: offset_flags & 1 != 0,
                };
                // An atomic fragment (offset 0, no more) is a whole packet.
                if frag.offset != 0 || frag.more {
                    return Some((next, pos, Some(frag)));
                }
            }
            _ => return Some((next, pos, None)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, VlanId};
    use std::cell::Cell;
    use std::net::Ipv6Addr;

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const V4_A: [u8; 4] = [192, 0, 2, 1];
    const V4_B: [u8; 4] = [192, 0, 2, 53];
    const V6_A: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_B: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];

    /// A fake DNS query of `len` bytes (at least a header) whose id is `id`.
    fn query(id: u16, len: usize) -> Vec<u8> {
        let mut m = vec![0u8; len.max(12)];
        m[..2].copy_from_slice(&id.to_be_bytes());
        m[5] = 1;
        for (i, b) in m.iter_mut().enumerate().skip(12) {
            *b = i as u8;
        }
        m
    }

    /// Every message a decoder hands out for `frames`, owned, with its metadata.
    #[derive(Debug, PartialEq)]
    struct Out {
        ts: Nanos,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        transport: Transport,
        message: Vec<u8>,
    }

    fn run(dec: &mut Decoder, frames: &[Frame<'_>]) -> Vec<Out> {
        let mut out = Vec::new();
        for f in frames {
            dec.decode(f, |p| {
                out.push(Out {
                    ts: p.ts,
                    src: p.src,
                    dst: p.dst,
                    sport: p.src_port,
                    dport: p.dst_port,
                    transport: p.transport,
                    message: p.message.to_vec(),
                })
            });
        }
        out
    }

    fn decode_all(link: LinkType, frames: &[Vec<u8>]) -> (Vec<Out>, DecodeStats) {
        let mut dec = Decoder::new(DecodeSettings::default());
        let frames: Vec<Frame<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, d)| Frame {
                ts: 1_000 + i as Nanos,
                link,
                data: d,
            })
            .collect();
        let out = run(&mut dec, &frames);
        (out, dec.stats().clone())
    }

    fn eth_v4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .udp(sport, dport)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    fn ip_v4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(V4_A, V4_B, 64)
            .udp(sport, dport)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    fn ip_v6_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(V6_A, V6_B, 64)
            .udp(sport, dport)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    fn ethernet(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut v = [MAC_B, MAC_A].concat();
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(ip);
        v
    }

    fn eth_v4_tcp(seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .tcp(40_000, 53, seq, 1024);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'R' => b.rst(),
                _ => b.psh(),
            };
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("build");
        v
    }

    #[test]
    fn udp_over_ethernet_ipv4() {
        let q = query(0x1234, 40);
        let (out, st) = decode_all(LinkType::Ethernet, &[eth_v4_udp(5555, 53, &q)]);
        assert_eq!(
            out,
            vec![Out {
                ts: 1_000,
                src: IpAddr::from(V4_A),
                dst: IpAddr::from(V4_B),
                sport: 5555,
                dport: 53,
                transport: Transport::Udp,
                message: q,
            }]
        );
        assert_eq!(st.dns_messages, 1);
        assert_eq!(st.frames, 1);
    }

    #[test]
    fn vlan_tags_any_number() {
        let q = query(1, 20);
        let mut single = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(VlanId::try_new(11).expect("vlan"))
            .ipv4(V4_A, V4_B, 64)
            .udp(5555, 53)
            .write(&mut single, &q)
            .expect("build");
        let mut double = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(
                VlanId::try_new(100).expect("vlan"),
                VlanId::try_new(200).expect("vlan"),
            )
            .ipv6(V6_A, V6_B, 64)
            .udp(5555, 53)
            .write(&mut double, &q)
            .expect("build");
        // Four stacked tags, 802.1ad outside 802.1Q.
        let mut quad = ethernet(0x88a8, &[]);
        quad.truncate(12);
        for tpid in [0x88a8u16, 0x9100, 0x8100, 0x8100] {
            quad.extend_from_slice(&tpid.to_be_bytes());
            quad.extend_from_slice(&[0, 7]);
        }
        quad.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        quad.extend_from_slice(&ip_v4_udp(5555, 53, &q));
        let (out, st) = decode_all(LinkType::Ethernet, &[single, double, quad]);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.message == q));
        assert_eq!(out[1].src, IpAddr::from(V6_A));
        assert_eq!(st.malformed_frames, 0);
        // Too many tags are refused, not looped over.
        let mut deep = ethernet(0x8100, &[]);
        deep.truncate(12);
        for _ in 0..MAX_VLAN_TAGS + 1 {
            deep.extend_from_slice(&[0x81, 0x00, 0, 7]);
        }
        deep.extend_from_slice(&ip_v4_udp(5555, 53, &q));
        let (out, st) = decode_all(LinkType::Ethernet, &[deep]);
        assert!(out.is_empty());
        assert_eq!(st.not_ip, 1);
    }

    #[test]
    fn other_link_types() {
        let q = query(7, 30);
        let v4 = ip_v4_udp(1000, 53, &q);
        let v6 = ip_v6_udp(53, 1000, &q);
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        sll.extend_from_slice(&v4);
        let mut sll2 = ETHERTYPE_IPV6.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        sll2.extend_from_slice(&v6);
        let mut lo_le = 2u32.to_le_bytes().to_vec();
        lo_le.extend_from_slice(&v4);
        let mut lo_be = 30u32.to_be_bytes().to_vec();
        lo_be.extend_from_slice(&v6);
        let mut lo_24 = 24u32.to_le_bytes().to_vec();
        lo_24.extend_from_slice(&v6);
        for (link, frame) in [
            (LinkType::LinuxSll, &sll),
            (LinkType::LinuxSll2, &sll2),
            (LinkType::RawIp, &v4),
            (LinkType::RawIp, &v6),
            (LinkType::BsdLoopback, &lo_le),
            (LinkType::BsdLoopback, &lo_be),
            (LinkType::BsdLoopback, &lo_24),
        ] {
            let (out, st) = decode_all(link, std::slice::from_ref(frame));
            assert_eq!(out.len(), 1, "{link:?}");
            assert_eq!(out[0].message, q, "{link:?}");
            assert_eq!(st.malformed_frames, 0, "{link:?}");
        }
        // Loopback family 7 (unknown) and an SLL carrying ARP are not IP.
        let mut lo_other = 7u32.to_le_bytes().to_vec();
        lo_other.extend_from_slice(&v4);
        let (_, st) = decode_all(LinkType::BsdLoopback, &[lo_other]);
        assert_eq!(st.not_ip, 1);
        sll[14..16].copy_from_slice(&0x0806u16.to_be_bytes());
        let (_, st) = decode_all(LinkType::LinuxSll, &[sll]);
        assert_eq!(st.not_ip, 1);
        // Ethertype says IPv6, the packet is IPv4.
        let (_, st) = decode_all(LinkType::Ethernet, &[ethernet(ETHERTYPE_IPV6, &v4)]);
        assert_eq!(st.malformed_frames, 1);
    }

    #[test]
    fn counts_what_is_not_dns() {
        let q = query(1, 20);
        let arp = ethernet(0x0806, &[0; 28]);
        let other_port = eth_v4_udp(123, 123, &q);
        let empty = eth_v4_udp(5555, 53, &[]);
        let mut icmp = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, &[0; 8])
            .expect("build");
        let (out, st) = decode_all(LinkType::Ethernet, &[arp, other_port, empty, icmp]);
        assert!(out.is_empty());
        assert_eq!(st.not_ip, 1);
        assert_eq!(st.not_dns, 2);
        assert_eq!(st.malformed_frames, 1);
        assert_eq!(st.frames, 4);
    }

    #[test]
    fn other_ports_from_settings() {
        let q = query(1, 20);
        let mut dec = Decoder::new(DecodeSettings {
            ports: vec![5353, 1053],
            ..DecodeSettings::default()
        });
        let frames = [eth_v4_udp(5353, 5353, &q), eth_v4_udp(40000, 53, &q)];
        let frames: Vec<Frame<'_>> = frames
            .iter()
            .map(|d| Frame {
                ts: 0,
                link: LinkType::Ethernet,
                data: d,
            })
            .collect();
        assert_eq!(run(&mut dec, &frames).len(), 1);
        assert_eq!(dec.stats().not_dns, 1);
    }

    #[test]
    fn ipv4_options_and_padding_and_snaplen() {
        let q = query(3, 30);
        let mut ip = ip_v4_udp(5555, 53, &q);
        // Give the header 8 bytes of options (NOPs): IHL 7.
        ip[0] = 0x47;
        let total = be16(&ip, 2) + 8;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.splice(20..20, [1u8; 8]);
        let mut padded = ethernet(ETHERTYPE_IPV4, &ip);
        padded.extend_from_slice(&[0xee; 20]);
        let (out, st) = decode_all(LinkType::Ethernet, &[padded.clone()]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, q);
        assert_eq!(st.udp_truncated, 0);
        // Cut by the snap length inside the DNS message: handed out short, and counted.
        let cut = &padded[..14 + 28 + 8 + 20];
        let (out, st) = decode_all(LinkType::Ethernet, &[cut.to_vec()]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, q[..20].to_vec());
        assert_eq!(st.udp_truncated, 1);
        // A zero total length (segmentation offload) falls back to the captured length.
        let mut offloaded = padded[..padded.len() - 20].to_vec();
        offloaded[14 + 2..14 + 4].copy_from_slice(&[0, 0]);
        let (out, st) = decode_all(LinkType::Ethernet, &[offloaded]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, q);
        assert_eq!(st.malformed_frames, 0);
        // Cut inside the IP header: malformed.
        let (out, st) = decode_all(LinkType::Ethernet, &[padded[..14 + 24].to_vec()]);
        assert!(out.is_empty());
        assert_eq!(st.malformed_frames, 1);
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let q = query(9, 25);
        let mut ip = ip_v6_udp(5555, 53, &q);
        // Hop-by-hop (8 bytes) then destination options (16 bytes) before UDP.
        ip[6] = 0;
        let mut exts = vec![60, 0, 1, 4, 0, 0, 0, 0];
        exts.extend_from_slice(&[17, 1, 1, 12]);
        exts.extend_from_slice(&[0; 12]);
        let plen = be16(&ip, 4) + exts.len() as u16;
        ip[4..6].copy_from_slice(&plen.to_be_bytes());
        ip.splice(40..40, exts);
        let (out, st) = decode_all(LinkType::RawIp, &[ip.clone()]);
        assert_eq!(out.len(), 1, "{st:?}");
        assert_eq!(out[0].message, q);
        // Cut inside the destination options header: malformed.
        let (out, st) = decode_all(LinkType::RawIp, &[ip[..40 + 12].to_vec()]);
        assert!(out.is_empty());
        assert_eq!(st.malformed_frames, 1);
    }

    /// Splits the IP payload of the IPv4 packet `ip` (20-byte header) into fragments of
    /// `size` bytes (a multiple of 8), each a full IPv4 packet.
    fn fragment_v4(ip: &[u8], id: u16, size: usize) -> Vec<Vec<u8>> {
        let payload = &ip[20..];
        payload
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let mut h = ip[..20].to_vec();
                h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&id.to_be_bytes());
                let more = (i + 1) * size < payload.len();
                let fo = ((i * size / 8) as u16) | if more { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&fo.to_be_bytes());
                h.extend_from_slice(chunk);
                h
            })
            .collect()
    }

    #[test]
    fn ipv4_fragments_out_of_order_and_duplicated() {
        let q = query(0x4444, 300);
        let ip = ip_v4_udp(5555, 53, &q);
        let mut frags = fragment_v4(&ip, 77, 64);
        assert_eq!(frags.len(), 5);
        frags.reverse();
        let dup = frags[1].clone();
        frags.insert(2, dup);
        let (out, st) = decode_all(LinkType::RawIp, &frags);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, q);
        // The message is stamped with the frame that completed it.
        assert_eq!(out[0].ts, 1_000 + 5);
        assert_eq!(st.ip_fragments, 6);
        assert_eq!(st.ip_fragments_duplicate, 1);
        assert_eq!(st.ip_reassembled, 1);
        assert_eq!(st.ip_fragments_dropped, 0);
        // The first fragment shows the ports: the rest of a fragmented NTP datagram is
        // discarded, unbuffered.
        let ntp = fragment_v4(&ip_v4_udp(123, 123, &q), 78, 64);
        let (out, st) = decode_all(LinkType::RawIp, &ntp);
        assert!(out.is_empty());
        assert_eq!((st.ip_reassembled, st.not_dns), (0, 5));
        // Tail first: held until the head arrives, and checked again once whole.
        let mut ntp = fragment_v4(&ip_v4_udp(123, 123, &q), 79, 64);
        ntp.rotate_left(1);
        let (out, st) = decode_all(LinkType::RawIp, &ntp);
        assert!(out.is_empty());
        assert_eq!((st.ip_reassembled, st.not_dns), (0, 1));
        // Fragments of protocols that cannot carry DNS here are not held at all.
        let mut icmp = Vec::new();
        PacketBuilder::ipv4(V4_A, V4_B, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, &[0; 100])
            .expect("build");
        let (_, st) = decode_all(LinkType::RawIp, &fragment_v4(&icmp, 80, 64));
        assert_eq!(
            (st.ip_fragments, st.not_dns, st.ip_fragments_dropped),
            (2, 2, 0)
        );
    }

    #[test]
    fn ipv4_fragments_expire() {
        let q = query(1, 100);
        let frags = fragment_v4(&ip_v4_udp(5555, 53, &q), 9, 64);
        let mut dec = Decoder::new(DecodeSettings::default());
        let late = 1 + 31 * crate::NANOS_PER_SEC;
        let frames = [
            Frame {
                ts: 1,
                link: LinkType::RawIp,
                data: &frags[0],
            },
            Frame {
                ts: late,
                link: LinkType::RawIp,
                data: &frags[1],
            },
        ];
        assert!(run(&mut dec, &frames).is_empty());
        assert_eq!(dec.stats().ip_fragments_dropped, 1);
    }

    #[test]
    fn ipv6_fragments_are_reassembled() {
        let q = query(0x6666, 200);
        let ip = ip_v6_udp(5555, 53, &q);
        let payload = &ip[40..];
        let mut frames = Vec::new();
        for (i, chunk) in payload.chunks(96).enumerate() {
            let mut h = ip[..40].to_vec();
            h[6] = 44;
            h[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
            let more = (i + 1) * 96 < payload.len();
            let fo = ((i * 96) as u16) | u16::from(more);
            h.extend_from_slice(&[17, 0]);
            h.extend_from_slice(&fo.to_be_bytes());
            h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            h.extend_from_slice(chunk);
            frames.push(ethernet(ETHERTYPE_IPV6, &h));
        }
        frames.swap(0, 2);
        let (out, st) = decode_all(LinkType::Ethernet, &frames);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, q);
        assert_eq!(out[0].dst, IpAddr::from(V6_B));
        assert_eq!((st.ip_fragments, st.ip_reassembled), (3, 1));
    }

    #[test]
    fn tcp_messages_through_the_decoder() {
        let (a, b, c) = (query(1, 30), query(2, 12), query(3, 50));
        let mut stream = Vec::new();
        for m in [&a, &b, &c] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        let frames = [
            eth_v4_tcp(99, "S", &[]),
            // a and b whole, c split in three, then a retransmission and a FIN.
            eth_v4_tcp(100, "P", &stream[..60]),
            eth_v4_tcp(160, "P", &stream[60..70]),
            eth_v4_tcp(100, "P", &stream[..60]),
            eth_v4_tcp(170, "PF", &stream[70..]),
        ];
        let (out, st) = decode_all(LinkType::Ethernet, &frames);
        let messages: Vec<&[u8]> = out.iter().map(|o| &o.message[..]).collect();
        assert_eq!(messages, vec![&a[..], &b[..], &c[..]]);
        assert!(out
            .iter()
            .all(|o| o.transport == Transport::Tcp && o.dport == 53));
        assert_eq!(out[2].ts, 1_004);
        assert_eq!(st.tcp_segments, 4);
        assert_eq!(st.tcp_retransmits, 1);
        assert_eq!(st.dns_messages, 3);
        assert_eq!(st.tcp_bytes_dropped, 0);
    }

    #[test]
    fn tcp_gap_resyncs() {
        let (a, b) = (query(1, 40), query(2, 40));
        let frame = |m: &[u8]| [&(m.len() as u16).to_be_bytes()[..], m].concat();
        let (fa, fb) = (frame(&a), frame(&b));
        let frames = [
            eth_v4_tcp(1, "P", &fa[..10]),
            // The rest of `a` was lost.
            eth_v4_tcp(1 + fa.len() as u32, "P", &fb),
        ];
        let (out, st) = decode_all(LinkType::Ethernet, &frames);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, b);
        assert_eq!(st.tcp_gaps, 1);
        assert_eq!(st.tcp_bytes_dropped, 10);
    }

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts this thread's allocations, to check the hot path makes none.
    struct CountingAlloc;

    // SAFETY: forwards to the system allocator unchanged.
    unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;

    #[test]
    fn hot_path_does_not_allocate() {
        let q = query(5, 60);
        let udp = eth_v4_udp(5555, 53, &q);
        let mut tcp_stream = Vec::new();
        for _ in 0..3 {
            tcp_stream.extend_from_slice(&60u16.to_be_bytes());
            tcp_stream.extend_from_slice(&q);
        }
        let tcp = eth_v4_tcp(1, "P", &tcp_stream);
        let tcp2 = eth_v4_tcp(1 + tcp_stream.len() as u32, "P", &tcp_stream);
        let mut dec = Decoder::new(DecodeSettings::default());
        let mut seen = 0usize;
        // The first TCP segment creates its flow; count from the second one on.
        dec.decode(
            &Frame {
                ts: 0,
                link: LinkType::Ethernet,
                data: &tcp,
            },
            |p| seen += p.message.len(),
        );
        let before = ALLOCATIONS.with(Cell::get);
        for i in 0..1000 {
            let frame = Frame {
                ts: i,
                link: LinkType::Ethernet,
                data: &udp,
            };
            dec.decode(&frame, |p| seen += p.message.len());
        }
        dec.decode(
            &Frame {
                ts: 1000,
                link: LinkType::Ethernet,
                data: &tcp2,
            },
            |p| seen += p.message.len(),
        );
        assert_eq!(ALLOCATIONS.with(Cell::get), before);
        assert_eq!(seen, 1006 * 60);
    }

    const LINKS: [LinkType; 5] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::BsdLoopback,
    ];

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = crate::synth::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
        let mut dec = Decoder::new(DecodeSettings {
            max_fragment_datagrams: 16,
            max_tcp_flows: 16,
            ..DecodeSettings::default()
        });
        let mut buf = [0u8; 200];
        for i in 0..50_000u64 {
            let len = rng.below(buf.len() as u64 + 1) as usize;
            for b in &mut buf[..len] {
                *b = rng.next_u64() as u8;
            }
            // Bias towards frames that get past the link layer.
            if len > 20 && i % 2 == 0 {
                buf[12..14].copy_from_slice(&[0x08, 0x00]);
                buf[14] = 0x45;
            }
            let frame = Frame {
                ts: i * 1_000_000,
                link: LINKS[rng.below(LINKS.len() as u64) as usize],
                data: &buf[..len],
            };
            dec.decode(&frame, |p| assert!(!p.message.is_empty()));
        }
        assert_eq!(dec.stats().frames, 50_000);
    }

    // --- Real captures -------------------------------------------------------------

    /// Frames of a classic pcap file: (link type, ts, bytes). A deliberately tiny reader,
    /// independent of the capture module.
    fn read_pcap(name: &str) -> (LinkType, Vec<(Nanos, Vec<u8>)>) {
        let path = format!(
            "{}/../../shared/captures/{}",
            env!("CARGO_MANIFEST_DIR"),
            name
        );
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let (big, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => panic!("{path}: not a classic pcap"),
        };
        let u32_at = |at: usize| {
            let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let link = match u32_at(20) & 0xffff {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            12 | 14 | 101 | 228 | 229 => LinkType::RawIp,
            0 | 108 => LinkType::BsdLoopback,
            other => panic!("{path}: link type {other}"),
        };
        let mut frames = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let secs = Nanos::from(u32_at(at));
            let frac = Nanos::from(u32_at(at + 4));
            let caplen = u32_at(at + 8) as usize;
            let ts = secs * crate::NANOS_PER_SEC + if nanos { frac } else { frac * 1_000 };
            let body = &data[at + 16..(at + 16 + caplen).min(data.len())];
            frames.push((ts, body.to_vec()));
            at += 16 + caplen;
        }
        (link, frames)
    }

    /// (queries, responses, stats) found in a capture, ports 53 only.
    fn count_capture(name: &str) -> (usize, usize, DecodeStats) {
        count_capture_ports(name, &[53])
    }

    fn count_capture_ports(name: &str, ports: &[u16]) -> (usize, usize, DecodeStats) {
        let (link, frames) = read_pcap(name);
        let mut dec = Decoder::new(DecodeSettings {
            ports: ports.to_vec(),
            ..DecodeSettings::default()
        });
        let (mut q, mut r) = (0, 0);
        for (ts, data) in &frames {
            dec.decode(
                &Frame {
                    ts: *ts,
                    link,
                    data,
                },
                |p| {
                    // QR bit: byte 2, bit 7.
                    match p.message.get(2) {
                        Some(b) if b & 0x80 != 0 => r += 1,
                        Some(_) => q += 1,
                        None => {}
                    }
                },
            );
        }
        (q, r, dec.stats().clone())
    }

    #[test]
    fn iodine_tunnel_capture() {
        let (q, r, st) = count_capture("elastic-iodine-tunnel.pcap");
        assert_eq!((q, r), (222, 212));
        assert_eq!(st.frames, 438);
        assert_eq!(st.not_ip, 4);
        assert_eq!(st.malformed_frames, 0);
    }

    #[test]
    fn peer_captures_match_tshark_counts() {
        // (file, queries, responses) as the manifest states them (tshark, reassembly on).
        let expected = [
            (
                "peers/suricata-verify-dns-tcp-multirequest-buffer.pcap",
                20,
                20,
            ),
            ("peers/dnscap-dnso1tcp.pcap", 41, 41),
            ("peers/dnscap-dnsotcp-many1pkt.pcap", 3, 1),
            ("peers/dnscap-frags.pcap", 41, 41),
            ("peers/dnscap-vlan11.pcap", 41, 41),
            ("peers/dnscap-dns6.pcap", 1, 1),
            ("peers/dnscap-ipv6-with-ethernet-padding.pcap", 1, 0),
            ("peers/zeek-dns-edns-ecs.pcap", 20, 65),
        ];
        for (file, eq, er) in expected {
            let (q, r, st) = count_capture(file);
            assert_eq!((q, r), (eq, er), "{file}: {st:?}");
            assert_eq!(st.malformed_frames, 0, "{file}: {st:?}");
        }
    }

    #[test]
    fn whole_peer_corpus_matches_the_manifest() {
        // Every row of the manifest's summary table: `| n | `file` | ... | Q/R | ...`.
        let manifest = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/captures/peers/MANIFEST.md"
        ))
        .expect("manifest");
        let mut checked = 0;
        for row in manifest.lines().filter(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (Some(file), Some(qr)) = (cells.get(2), cells.get(6)) else {
                continue;
            };
            let Some((eq, er)) = qr.split_once('/') else {
                continue;
            };
            let (Ok(eq), Ok(er)) = (eq.parse::<usize>(), er.parse::<usize>()) else {
                continue;
            };
            let file = file.trim_matches('`');
            // mDNS (5353) and the two captures the manifest says need a port override.
            let (q, r, st) = count_capture_ports(&format!("peers/{file}"), &[53, 5353, 1053]);
            assert_eq!((q, r), (eq, er), "{file}: {st:?}");
            assert_eq!(st.malformed_frames, 0, "{file}: {st:?}");
            checked += 1;
        }
        assert_eq!(checked, 67);
    }

    #[test]
    fn tunnel_captures_query_counts() {
        for (file, queries) in [
            ("dmachard-sods.pcap", 493),
            ("dmachard-dns2tcp.pcap", 22),
            ("dmachard-dnscat2.pcap", 12),
            ("dmachard-dnsextrator.pcap", 14),
            ("dmachard-iodine.pcap", 12),
        ] {
            let (q, _, st) = count_capture(file);
            assert_eq!(q, queries, "{file}: {st:?}");
        }
    }

    /// Measures the hand parser against `etherparse`'s lax slicer on the UDP hot path.
    #[test]
    #[ignore = "timing: cargo test --release -p dns-sensor --lib timing -- --ignored --nocapture"]
    fn timing_against_etherparse() {
        use std::time::{Duration, Instant};
        let (link, frames) = read_pcap("elastic-iodine-tunnel.pcap");
        let rounds = 2_000;
        let mut dec = Decoder::new(DecodeSettings::default());
        // Interleaved trials, best of each: the machine is shared and timings are noisy.
        let (mut ours_best, mut theirs_best) = (Duration::MAX, Duration::MAX);
        for _ in 0..7 {
            let start = Instant::now();
            let mut ours = 0usize;
            for _ in 0..rounds {
                for (ts, data) in &frames {
                    let frame = Frame {
                        ts: *ts,
                        link,
                        data,
                    };
                    dec.decode(&frame, |p| ours += p.message.len());
                }
            }
            ours_best = ours_best.min(start.elapsed());
            let start = Instant::now();
            let mut theirs = 0usize;
            for _ in 0..rounds {
                for (_, data) in &frames {
                    let Ok(p) = etherparse::LaxSlicedPacket::from_ethernet(data) else {
                        continue;
                    };
                    if let Some(etherparse::TransportSlice::Udp(u)) = &p.transport {
                        if u.source_port() == 53 || u.destination_port() == 53 {
                            theirs += u.payload().len();
                        }
                    }
                }
            }
            theirs_best = theirs_best.min(start.elapsed());
            assert_eq!(ours, theirs);
        }
        let per = |d: Duration| d.as_nanos() as f64 / (rounds * frames.len()) as f64;
        println!(
            "decode: {:.1} ns/frame, etherparse LaxSlicedPacket: {:.1} ns/frame",
            per(ours_best),
            per(theirs_best)
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let (link, frames) = read_pcap("peers/dnscap-ipv6-with-ethernet-padding.pcap");
        let mut dec = Decoder::new(DecodeSettings::default());
        let mut sizes = Vec::new();
        for (ts, data) in &frames {
            dec.decode(
                &Frame {
                    ts: *ts,
                    link,
                    data,
                },
                |p| sizes.push((p.src, p.src_port, p.dst_port, p.message.len())),
            );
        }
        // IP length 65 = 40 (IPv6) + 8 (UDP) + 17 (header and root/NS question).
        assert_eq!(
            sizes,
            vec![(IpAddr::V6(Ipv6Addr::LOCALHOST), 37083, 53, 17)]
        );
    }

    #[test]
    fn truncated_real_frames_never_panic() {
        let mut rng = crate::synth::SplitMix64::new(12345);
        for file in [
            "elastic-iodine-tunnel.pcap",
            "peers/dnscap-frags.pcap",
            "peers/dnscap-dnso1tcp.pcap",
            "peers/zeek-dns-edns-ecs.pcap",
            "peers/dnscap-vlan11.pcap",
            "peers/dnscap-sll2.pcap",
            "peers/suricata-verify-dns-incomplete_input.pcap",
        ] {
            let (link, frames) = read_pcap(file);
            let mut dec = Decoder::new(DecodeSettings::default());
            for round in 0..20u64 {
                for (i, (ts, data)) in frames.iter().enumerate() {
                    let mut bytes = data.clone();
                    let cut = rng.below(bytes.len() as u64 + 1) as usize;
                    bytes.truncate(cut);
                    // Flip a byte now and then, in the headers most often.
                    if !bytes.is_empty() && rng.below(3) == 0 {
                        let at = rng.below(bytes.len().min(80) as u64) as usize;
                        bytes[at] ^= 1 << rng.below(8);
                    }
                    let frame = Frame {
                        ts: ts + round * 1_000 + i as Nanos,
                        link,
                        data: &bytes,
                    };
                    dec.decode(&frame, |p| assert!(!p.message.is_empty()));
                }
            }
        }
    }

    #[test]
    fn flow_hash_keeps_both_directions_and_fragments_together() {
        use crate::synth::scenario::{ipv6_flow, v4};
        use crate::synth::{ipv4_udp_fragments, query, udp_frame, Flow};
        let hash = |data: &[u8]| {
            flow_hash(&Frame {
                ts: 0,
                link: LinkType::Ethernet,
                data,
            })
        };
        let flow = Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53));
        let message = query(1, b"a.pirate.sea", 16);
        let there = hash(&udp_frame(&flow, &message));
        assert_ne!(there, 0);
        assert_eq!(hash(&udp_frame(&flow.reply(), &message)), there);
        // Another source port of the same client: same pair, same hash.
        let other_port = Flow::to_dns(v4(10, 1, 0, 66), 52_000, v4(192, 0, 2, 53));
        assert_eq!(hash(&udp_frame(&other_port, &message)), there);
        // Fragments after the first carry no UDP header; all hash like the flow.
        let fragments = ipv4_udp_fragments(&flow.reply(), &[7u8; 900], 9, 200);
        assert!(fragments.len() >= 4);
        for f in &fragments {
            assert_eq!(hash(f), there);
        }
        let other_client = Flow::to_dns(v4(10, 1, 0, 67), 41_000, v4(192, 0, 2, 53));
        assert_ne!(hash(&udp_frame(&other_client, &message)), there);
        let v6 = ipv6_flow();
        let v6_hash = hash(&udp_frame(&v6, &message));
        assert_ne!(v6_hash, 0);
        assert_ne!(v6_hash, there);
        assert_eq!(hash(&udp_frame(&v6.reply(), &message)), v6_hash);
        // No IP packet: 0, without panicking on short input.
        assert_eq!(hash(&[0u8; 10]), 0);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(hash(&arp), 0);
        let mut cut = udp_frame(&flow, &message);
        cut.truncate(14 + 15);
        assert_eq!(hash(&cut), 0);
    }
}
