//! Synthetic DNS traffic for tests, demos and benchmarks; not part of the data flow.
//!
//! Building blocks with known answers: hand-encoded DNS queries and responses (sizes
//! under the caller's control), wrapped in real frames (Ethernet, optional 802.1Q or
//! QinQ tags, IPv4 or IPv6, UDP or TCP, IPv4 fragments), deterministic pseudo-random
//! tunnel-like names, hostile messages, and a helper writing frames to a pcap file.
//!
//! Every frame is well formed: the IPv4 header checksum, and the UDP and TCP checksums
//! over IPv4 and IPv6, are all computed. The builders panic on caller mistakes (a label
//! over 63 bytes, a flow mixing IPv4 and IPv6): they take no input data, only test code.

pub mod layers;
pub mod scenario;

use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::capture::{LinkType, PcapWriter};
use crate::Nanos;

// ---------------------------------------------------------------------------
// Pseudo-random numbers
// ---------------------------------------------------------------------------

/// The SplitMix64 finaliser: a bijection on `u64`, so distinct inputs give distinct
/// outputs (which is what makes [`tunnel_name`] unique per sequence number).
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A tiny deterministic generator (SplitMix64): the same seed gives the same traffic on
/// every run and every machine.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// A number in `0..n` (0 when `n` is 0); the slight modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Fills `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Longest label [`tunnel_name`] emits: tunnels pack labels close to the 63 limit.
const TUNNEL_LABEL_MAX: usize = 57;

/// A tunnel-like query name under `domain`: 23 to 100 base32 characters of "data" in
/// labels of at most 57, then `domain`. Deterministic in `seq`, and distinct for
/// distinct `seq` (the first 13 characters encode a bijection of it), lower-case.
pub fn tunnel_name(seq: u64, domain: &str) -> String {
    let mut data = Vec::with_capacity(100);
    let unique = mix64(seq);
    for i in 0..13 {
        data.push(BASE32[((unique >> (i * 5)) & 31) as usize]);
    }
    let mut rng = SplitMix64::new(unique ^ 0x5eed);
    let extra = 10 + rng.below(78) as usize;
    for _ in 0..extra {
        data.push(BASE32[rng.below(32) as usize]);
    }
    let mut name = String::with_capacity(data.len() + 3 + domain.len());
    for (i, label) in data.chunks(TUNNEL_LABEL_MAX).enumerate() {
        if i > 0 {
            name.push('.');
        }
        // BASE32 is ASCII, so every byte is a char.
        name.extend(label.iter().map(|&b| b as char));
    }
    name.push('.');
    name.push_str(domain);
    name
}

/// An iodine-like name under `domain`: one label mixing ASCII letters and digits with
/// raw bytes 0xBC..=0xFD (as iodine's Base128 encoding does), always at least one byte
/// above 0x7F. Distinct for distinct `seq`, even after ASCII lower-casing.
pub fn iodine_name(seq: u64, domain: &str) -> Vec<u8> {
    let mut name = Vec::with_capacity(64 + domain.len());
    let unique = mix64(seq);
    for i in 0..13 {
        name.push(BASE32[((unique >> (i * 5)) & 31) as usize]);
    }
    let mut rng = SplitMix64::new(unique ^ 0x10d1);
    name.push(0xbc + (seq % 66) as u8);
    const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for _ in 0..20 + rng.below(30) {
        let r = rng.below(128) as usize;
        name.push(match ASCII.get(r) {
            Some(&c) => c,
            None => 0xbc + (r - ASCII.len()) as u8,
        });
    }
    name.push(b'.');
    name.extend_from_slice(domain.as_bytes());
    name
}

/// `name` with ASCII letters flipped to upper or lower case at random, as a resolver
/// using 0x20 randomisation sends it. Other bytes are left alone.
pub fn randomize_case(name: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    name.iter()
        .map(|&b| {
            if b.is_ascii_alphabetic() && rng.below(2) == 1 {
                b ^ 0x20
            } else {
                b
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// DNS messages
// ---------------------------------------------------------------------------

/// Record type numbers used by the builders.
pub mod rtype {
    /// IPv4 address (4 bytes of rdata).
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Domain name pointer (reverse look-ups).
    pub const PTR: u16 = 12;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// NULL: opaque rdata of any size (iodine's favourite).
    pub const NULL: u16 = 10;
    /// Mail exchanger.
    pub const MX: u16 = 15;
    /// Text: rdata of character-strings.
    pub const TXT: u16 = 16;
    /// IPv6 address (16 bytes of rdata).
    pub const AAAA: u16 = 28;
    /// Service location (RFC 2782).
    pub const SRV: u16 = 33;
    /// Any type.
    pub const ANY: u16 = 255;
}

/// Size of the fixed DNS header.
pub const DNS_HEADER_LEN: usize = 12;

/// Appends `name` in wire format: split at `.`, a trailing dot optional, `""` or `"."`
/// is the root. Bytes other than `.` go into labels unchanged (0x80 and above included).
///
/// # Panics
/// On a label longer than 63 bytes or an empty label inside the name.
pub fn encode_name(out: &mut Vec<u8>, name: &[u8]) {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if !name.is_empty() {
        for label in name.split(|&b| b == b'.') {
            push_label(out, label);
        }
    }
    out.push(0);
}

/// Appends a name given as labels, which may themselves contain `.` bytes.
///
/// # Panics
/// On a label longer than 63 bytes or an empty label.
pub fn encode_labels(out: &mut Vec<u8>, labels: &[&[u8]]) {
    for label in labels {
        push_label(out, label);
    }
    out.push(0);
}

fn push_label(out: &mut Vec<u8>, label: &[u8]) {
    assert!(
        !label.is_empty() && label.len() <= 63,
        "label of {} bytes: use the hostile builders for invalid names",
        label.len()
    );
    out.push(label.len() as u8);
    out.extend_from_slice(label);
}

/// Appends a DNS header: `flags` is the second 16-bit word (QR, opcode, AA, TC, RD, RA,
/// Z, RCODE), then the four section counts.
fn push_header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// Flags of a standard query with recursion desired.
const FLAGS_QUERY: u16 = 0x0100;
/// Flags of a response to it with recursion available: QR, RD, RA (RCODE added).
const FLAGS_RESPONSE: u16 = 0x8180;

/// A standard query (RD set, class IN) for `name` of type `qtype`.
pub fn query(id: u16, name: &[u8], qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(DNS_HEADER_LEN + name.len() + 6);
    push_header(&mut m, id, FLAGS_QUERY, [1, 0, 0, 0]);
    encode_name(&mut m, name);
    push_u16s(&mut m, &[qtype, 1]);
    m
}

/// A standard query whose name is given as labels (labels may contain `.`).
pub fn query_labels(id: u16, labels: &[&[u8]], qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    push_header(&mut m, id, FLAGS_QUERY, [1, 0, 0, 0]);
    encode_labels(&mut m, labels);
    push_u16s(&mut m, &[qtype, 1]);
    m
}

/// A NOERROR response repeating the question and carrying one answer RR: owner name a
/// compression pointer to the question, type `answer_type`, class IN, TTL 60, and
/// `rdata_len` bytes of rdata. The message is `DNS_HEADER_LEN + encoded name + 4 + 12 +
/// rdata_len` bytes long (see [`response_sized`]).
///
/// The rdata is opaque bytes, except for TXT where it is a run of character-strings
/// filling exactly `rdata_len` bytes. For a message a strict parser accepts, use A with
/// 4 bytes, AAAA with 16, or TXT, NULL or another opaque type with any size (TXT needs
/// at least 1).
pub fn response(id: u16, name: &[u8], qtype: u16, answer_type: u16, rdata_len: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(DNS_HEADER_LEN + name.len() + 18 + usize::from(rdata_len));
    push_header(&mut m, id, FLAGS_RESPONSE, [1, 1, 0, 0]);
    encode_name(&mut m, name);
    push_u16s(&mut m, &[qtype, 1]);
    // Owner: pointer to the question name, which always starts right after the header.
    push_u16s(&mut m, &[0xc000 | DNS_HEADER_LEN as u16, answer_type, 1]);
    m.extend_from_slice(&60u32.to_be_bytes());
    m.extend_from_slice(&rdata_len.to_be_bytes());
    push_rdata(&mut m, answer_type, usize::from(rdata_len));
    m
}

/// A [`response`] of type `qtype` answered with opaque (NULL/TXT-style) data, padded so
/// the whole DNS message is `msg_len` bytes; when `msg_len` is below the size with no
/// rdata, that smallest size. Use `qtype` NULL or TXT so any size stays well formed.
pub fn response_sized(id: u16, name: &[u8], qtype: u16, msg_len: usize) -> Vec<u8> {
    let fixed = response(id, name, qtype, qtype, 0).len();
    let rdata = msg_len.saturating_sub(fixed).min(usize::from(u16::MAX)) as u16;
    response(id, name, qtype, qtype, rdata)
}

/// A response with `rcode` repeating the question and carrying `records` as its
/// answers, each owned by the question's name (a compression pointer to it), class IN,
/// TTL 300, with the given type and rdata as it goes on the wire.
pub fn answer(id: u16, name: &[u8], qtype: u16, rcode: u8, records: &[(u16, &[u8])]) -> Vec<u8> {
    let count = u16::try_from(records.len()).expect("at most 65 535 answers");
    let mut m = Vec::new();
    push_header(
        &mut m,
        id,
        FLAGS_RESPONSE | u16::from(rcode & 0x0f),
        [1, count, 0, 0],
    );
    encode_name(&mut m, name);
    push_u16s(&mut m, &[qtype, 1]);
    for (rtype, rdata) in records {
        push_u16s(&mut m, &[0xc000 | DNS_HEADER_LEN as u16, *rtype, 1]);
        m.extend_from_slice(&300u32.to_be_bytes());
        let len = u16::try_from(rdata.len()).expect("rdata of at most 65 535 bytes");
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(rdata);
    }
    m
}

/// TXT rdata holding `text` as character-strings of at most 255 bytes.
pub fn txt_rdata(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 255 + 1);
    for chunk in text.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    if text.is_empty() {
        out.push(0);
    }
    out
}

/// A name in wire format, for rdata that holds one (CNAME, PTR, SRV's target).
pub fn name_rdata(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    encode_name(&mut out, name.as_bytes());
    out
}

/// A response with RCODE 3 (NXDOMAIN) and no answers.
pub fn nxdomain(id: u16, name: &[u8], qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    push_header(&mut m, id, FLAGS_RESPONSE | 3, [1, 0, 0, 0]);
    encode_name(&mut m, name);
    push_u16s(&mut m, &[qtype, 1]);
    m
}

fn push_u16s(out: &mut Vec<u8>, vals: &[u16]) {
    for v in vals {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn push_rdata(out: &mut Vec<u8>, rtype: u16, len: usize) {
    if rtype == rtype::TXT {
        let mut left = len;
        while left > 0 {
            let chunk = (left - 1).min(255);
            out.push(chunk as u8);
            out.extend((0..chunk).map(|i| b'a' + (i % 26) as u8));
            left -= chunk + 1;
        }
    } else {
        out.extend((0..len).map(|i| i as u8));
    }
}

/// Length-prefixes each message as DNS over TCP does (RFC 1035 4.2.2) and concatenates
/// them: the byte stream of one TCP direction.
pub fn tcp_stream(msgs: &[&[u8]]) -> Vec<u8> {
    let mut s = Vec::with_capacity(msgs.iter().map(|m| m.len() + 2).sum());
    for m in msgs {
        let len = u16::try_from(m.len()).expect("DNS message over 65535 bytes");
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(m);
    }
    s
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// 802.1Q tagging of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vlan {
    /// Untagged.
    #[default]
    None,
    /// One 802.1Q tag (TPID 0x8100) with this VLAN id.
    Dot1Q(u16),
    /// QinQ: an 802.1ad service tag (TPID 0x88a8) then an 802.1Q customer tag.
    QinQ {
        /// The service (outer) VLAN id.
        outer: u16,
        /// The customer (inner) VLAN id.
        inner: u16,
    },
}

/// One direction of a conversation: addresses, ports and tagging of the frames built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Source address; same family as `dst`.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Tagging.
    pub vlan: Vlan,
}

impl Flow {
    /// A client-to-server flow towards port 53, untagged.
    pub fn to_dns(client: IpAddr, sport: u16, server: IpAddr) -> Self {
        Flow {
            src: client,
            dst: server,
            sport,
            dport: 53,
            vlan: Vlan::None,
        }
    }

    /// The same flow with this tagging.
    pub fn with_vlan(self, vlan: Vlan) -> Self {
        Flow { vlan, ..self }
    }

    /// The opposite direction (server to client), same tagging.
    pub fn reply(&self) -> Self {
        Flow {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            vlan: self.vlan,
        }
    }
}

/// IP protocol numbers.
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// TCP flag bits for [`tcp_frame`].
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A locally administered MAC derived from an address, so frames of different hosts
/// differ and stay deterministic.
fn mac_of(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn push_ethernet(out: &mut Vec<u8>, flow: &Flow) {
    out.extend_from_slice(&mac_of(flow.dst));
    out.extend_from_slice(&mac_of(flow.src));
    match flow.vlan {
        Vlan::None => {}
        Vlan::Dot1Q(id) => push_u16s(out, &[0x8100, id & 0x0fff]),
        Vlan::QinQ { outer, inner } => {
            push_u16s(out, &[0x88a8, outer & 0x0fff, 0x8100, inner & 0x0fff])
        }
    }
    let ethertype = if flow.src.is_ipv4() { 0x0800 } else { 0x86dd };
    push_u16s(out, &[ethertype]);
}

/// IPv4 fragment fields: identification, offset in bytes (a multiple of 8), more
/// fragments. `None` for an unfragmented packet (sent with DF).
type Frag = Option<(u16, usize, bool)>;

/// Appends the IP header for `l4_len` bytes of protocol `proto`.
fn push_ip(out: &mut Vec<u8>, flow: &Flow, proto: u8, l4_len: usize, frag: Frag) {
    match (flow.src, flow.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let start = out.len();
            let total = u16::try_from(20 + l4_len).expect("IPv4 packet over 65535 bytes");
            let (id, flags_off) = match frag {
                None => (0, 0x4000),
                Some((id, off, more)) => (id, (off / 8) as u16 | if more { 0x2000 } else { 0 }),
            };
            out.extend_from_slice(&[0x45, 0]);
            push_u16s(out, &[total, id, flags_off]);
            out.extend_from_slice(&[64, proto, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let sum = checksum(&[&out[start..start + 20]], 0);
            out[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(l4_len).expect("IPv6 payload over 65535 bytes");
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            push_u16s(out, &[plen]);
            out.extend_from_slice(&[proto, 64]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => panic!("flow mixes IPv4 and IPv6: {flow:?}"),
    }
}

/// The Internet checksum (RFC 1071) over `parts` laid end to end, starting from `sum`.
fn checksum(parts: &[&[u8]], mut sum: u32) -> u16 {
    // Parts are summed as one byte string; only the last may have odd length.
    for p in parts {
        let mut chunks = p.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    !(sum as u16)
}

/// The pseudo-header sum of the UDP/TCP checksum.
fn pseudo_sum(flow: &Flow, proto: u8, l4_len: usize) -> u32 {
    let mut sum = 0u32;
    let mut add = |b: &[u8]| {
        for c in b.chunks_exact(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
    };
    match (flow.src, flow.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        _ => panic!("flow mixes IPv4 and IPv6: {flow:?}"),
    }
    sum + u32::from(proto) + (l4_len as u32 >> 16) + (l4_len as u32 & 0xffff)
}

/// The UDP datagram (header and payload) with its checksum.
fn udp_datagram(flow: &Flow, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut d = Vec::with_capacity(len);
    push_u16s(
        &mut d,
        &[
            flow.sport,
            flow.dport,
            u16::try_from(len).expect("UDP over 65535"),
            0,
        ],
    );
    d.extend_from_slice(payload);
    let mut sum = checksum(&[&d], pseudo_sum(flow, PROTO_UDP, len));
    if sum == 0 {
        // 0 means "no checksum" in UDP: a computed 0 is sent as all ones.
        sum = 0xffff;
    }
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// An Ethernet frame carrying `payload` in one UDP datagram of `flow`.
pub fn udp_frame(flow: &Flow, payload: &[u8]) -> Vec<u8> {
    let dgram = udp_datagram(flow, payload);
    let mut f = Vec::with_capacity(22 + 8 + 40 + dgram.len());
    push_ethernet(&mut f, flow);
    push_ip(&mut f, flow, PROTO_UDP, dgram.len(), None);
    f.extend_from_slice(&dgram);
    f
}

/// An Ethernet frame carrying one TCP segment of `flow` (20-byte header, no options).
pub fn tcp_frame(flow: &Flow, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut seg = Vec::with_capacity(len);
    push_u16s(&mut seg, &[flow.sport, flow.dport]);
    seg.extend_from_slice(&seq.to_be_bytes());
    seg.extend_from_slice(&ack.to_be_bytes());
    seg.extend_from_slice(&[5 << 4, flags]);
    push_u16s(&mut seg, &[65535, 0, 0]);
    seg.extend_from_slice(payload);
    let sum = checksum(&[&seg], pseudo_sum(flow, PROTO_TCP, len));
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(22 + 40 + len);
    push_ethernet(&mut f, flow);
    push_ip(&mut f, flow, PROTO_TCP, len, None);
    f.extend_from_slice(&seg);
    f
}

/// A UDP datagram of an IPv4 `flow` split into IPv4 fragments with identification
/// `ip_id`, each carrying at most `max_fragment` bytes of IP payload (rounded down to a
/// multiple of 8, at least 8). The first fragment holds the UDP header; the UDP
/// checksum covers the whole datagram. A datagram that fits yields one frame, still
/// without DF.
///
/// # Panics
/// On an IPv6 flow (IPv6 fragments use an extension header; not built here).
pub fn ipv4_udp_fragments(
    flow: &Flow,
    payload: &[u8],
    ip_id: u16,
    max_fragment: usize,
) -> Vec<Vec<u8>> {
    assert!(flow.src.is_ipv4(), "IPv4 fragments need an IPv4 flow");
    let dgram = udp_datagram(flow, payload);
    let step = (max_fragment / 8 * 8).max(8);
    let mut frames = Vec::with_capacity(dgram.len().div_ceil(step));
    for (i, part) in dgram.chunks(step).enumerate() {
        let off = i * step;
        let more = off + part.len() < dgram.len();
        let mut f = Vec::with_capacity(22 + 20 + part.len());
        push_ethernet(&mut f, flow);
        push_ip(
            &mut f,
            flow,
            PROTO_UDP,
            part.len(),
            Some((ip_id, off, more)),
        );
        f.extend_from_slice(part);
        frames.push(f);
    }
    frames
}

/// One IPv4 fragment of `flow` as a sender may forge it: `data` as the IP payload at
/// byte `offset` (a multiple of 8) of datagram `ip_id`, with MF set if `more`, the
/// protocol UDP and no UDP header unless `data` holds one.
pub fn ipv4_fragment(flow: &Flow, ip_id: u16, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(22 + 20 + data.len());
    push_ethernet(&mut f, flow);
    push_ip(
        &mut f,
        flow,
        PROTO_UDP,
        data.len(),
        Some((ip_id, offset, more)),
    );
    f.extend_from_slice(data);
    f
}

/// A query from `flow` and its answer back, both over UDP: the query for `name` of type
/// `qtype` and a [`response_sized`] of `response_len` bytes (use NULL or TXT for any
/// size). Returns (query frame, response frame).
pub fn udp_exchange(
    flow: &Flow,
    id: u16,
    name: &[u8],
    qtype: u16,
    response_len: usize,
) -> (Vec<u8>, Vec<u8>) {
    let q = udp_frame(flow, &query(id, name, qtype));
    let r = udp_frame(
        &flow.reply(),
        &response_sized(id, name, qtype, response_len),
    );
    (q, r)
}

/// The address family number written in BSD loopback headers for IPv6: Darwin's 30
/// (other BSDs use 24 or 28, Linux 10; a decoder should take all of them).
pub const BSD_AF_INET6: u32 = 30;

/// An Ethernet frame built here, re-encapsulated for `link`: the IP packet is kept and
/// the Ethernet header and tags are replaced by a raw-IP (nothing), BSD loopback (4-byte
/// address family, little-endian: 2 or [`BSD_AF_INET6`]), Linux SLL (16 bytes) or
/// Linux SLL2 (20 bytes) header. VLAN tags are dropped, as those captures do.
///
/// # Panics
/// On a frame that is not Ethernet carrying IPv4 or IPv6 (every frame built here is).
pub fn relink(frame: &[u8], link: LinkType) -> Vec<u8> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([frame[at], frame[at + 1]]);
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        at += 4;
        ethertype = u16::from_be_bytes([frame[at], frame[at + 1]]);
    }
    assert!(
        ethertype == 0x0800 || ethertype == 0x86dd,
        "not IP: ethertype {ethertype:#06x}"
    );
    let ip = &frame[at + 2..];
    let src_mac = &frame[6..12];
    let mut out = Vec::with_capacity(20 + ip.len());
    match link {
        LinkType::Ethernet => return frame.to_vec(),
        LinkType::RawIp => {}
        LinkType::BsdLoopback => {
            let af: u32 = if ethertype == 0x0800 { 2 } else { BSD_AF_INET6 };
            out.extend_from_slice(&af.to_le_bytes());
        }
        LinkType::LinuxSll => {
            // Packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8, protocol.
            push_u16s(&mut out, &[0, 1, 6]);
            out.extend_from_slice(src_mac);
            out.extend_from_slice(&[0, 0]);
            push_u16s(&mut out, &[ethertype]);
        }
        LinkType::LinuxSll2 => {
            // Protocol, reserved, interface index, ARPHRD_ETHER, packet type, address.
            push_u16s(&mut out, &[ethertype, 0]);
            out.extend_from_slice(&1u32.to_be_bytes());
            push_u16s(&mut out, &[1]);
            out.extend_from_slice(&[0, 6]);
            out.extend_from_slice(src_mac);
            out.extend_from_slice(&[0, 0]);
        }
    }
    out.extend_from_slice(ip);
    out
}

/// One direction of a TCP connection (no handshake needed: mirrors often start
/// mid-connection), tracking the sequence number. The acknowledgement number stays at
/// the value given: the sensor does not read it.
#[derive(Clone, Debug)]
pub struct TcpFlow {
    /// Addresses, ports and tagging.
    pub flow: Flow,
    seq: u32,
    ack: u32,
}

impl TcpFlow {
    /// A direction whose next byte has sequence number `isn`.
    pub fn new(flow: Flow, isn: u32, ack: u32) -> Self {
        TcpFlow {
            flow,
            seq: isn,
            ack,
        }
    }

    /// The sequence number of the next byte sent.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    /// A PSH|ACK segment carrying `payload`, advancing the sequence number.
    pub fn segment(&mut self, payload: &[u8]) -> Vec<u8> {
        let f = tcp_frame(
            &self.flow,
            self.seq,
            self.ack,
            tcp_flags::PSH | tcp_flags::ACK,
            payload,
        );
        self.seq = self.seq.wrapping_add(payload.len() as u32);
        f
    }

    /// `stream` cut at the byte offsets `cuts` (ascending, within the stream) into
    /// consecutive segments: with [`tcp_stream`] this splits a message across segments
    /// (a cut inside it) or packs several into one (no cut between them).
    pub fn segments(&mut self, stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut from = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            out.push(self.segment(&stream[from..c]));
            from = c;
        }
        out
    }

    /// Skips `n` bytes of sequence space, as if a segment was lost before the mirror.
    pub fn skip(&mut self, n: u32) {
        self.seq = self.seq.wrapping_add(n);
    }
}

// ---------------------------------------------------------------------------
// Capture files
// ---------------------------------------------------------------------------

/// Writes `(timestamp, frame)` pairs to a classic pcap at `path`; returns the number
/// of frames written.
pub fn write_pcap<F: AsRef<[u8]>>(
    path: &Path,
    link: LinkType,
    frames: impl IntoIterator<Item = (Nanos, F)>,
) -> io::Result<usize> {
    let file = io::BufWriter::new(std::fs::File::create(path)?);
    let mut w = PcapWriter::new(file, link)?;
    let mut n = 0;
    for (ts, f) in frames {
        w.write(ts, f.as_ref())?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// The bytes of a classic pcap holding `(timestamp, frame)` pairs, for readers fed
/// from memory.
pub fn pcap_bytes<F: AsRef<[u8]>>(
    link: LinkType,
    frames: impl IntoIterator<Item = (Nanos, F)>,
) -> Vec<u8> {
    // Writing to a Vec cannot fail.
    let mut w = PcapWriter::new(Vec::new(), link).expect("write to Vec");
    for (ts, f) in frames {
        w.write(ts, f.as_ref()).expect("write to Vec");
    }
    w.finish().expect("write to Vec")
}

/// The bytes of a pcapng file: one section, one interface of `link` with the default
/// microsecond resolution, and an enhanced packet block per `(timestamp, frame)`, the
/// timestamp in microseconds as the block's 64 bits hold it. Raw units, not
/// [`Nanos`]: scaled to nanoseconds, the upper thousandth of the range saturates,
/// which is what the readers of hostile captures must survive.
pub fn pcapng_bytes<F: AsRef<[u8]>>(
    link: LinkType,
    frames: impl IntoIterator<Item = (u64, F)>,
) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let padded = body.len().next_multiple_of(4);
        let total = (12 + padded) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&total.to_le_bytes());
    }
    let mut out = Vec::new();
    // Section header: byte-order magic, version 1.0, section length unknown.
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4d_u32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    // Interface description: link type, reserved, no snap length.
    let mut idb = Vec::new();
    idb.extend_from_slice(&(link.linktype() as u16).to_le_bytes());
    idb.extend_from_slice(&[0; 6]);
    block(&mut out, 1, &idb);
    for (ts, frame) in frames {
        let frame = frame.as_ref();
        let mut epb = Vec::with_capacity(20 + frame.len());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        block(&mut out, 6, &epb);
    }
    out
}

// ---------------------------------------------------------------------------
// Hostile messages
// ---------------------------------------------------------------------------

/// DNS payloads a decoder must survive: each is counted as malformed and skipped,
/// never followed forever, never read past its end. Wrap them with
/// [`udp_frame`].
pub mod hostile {
    use super::{push_header, push_u16s, SplitMix64, FLAGS_QUERY};

    /// A question name `abc` then a pointer back to its own start: following pointers
    /// never ends.
    pub fn compression_loop(id: u16) -> Vec<u8> {
        let mut m = Vec::new();
        push_header(&mut m, id, FLAGS_QUERY, [1, 0, 0, 0]);
        m.extend_from_slice(&[3, b'a', b'b', b'c', 0xc0, 12]);
        push_u16s(&mut m, &[1, 1]);
        m
    }

    /// A question name that is a pointer to offset 0x3fff, far past the message's end.
    pub fn pointer_past_end(id: u16) -> Vec<u8> {
        let mut m = Vec::new();
        push_header(&mut m, id, FLAGS_QUERY, [1, 0, 0, 0]);
        m.extend_from_slice(&[0xff, 0xff]);
        push_u16s(&mut m, &[1, 1]);
        m
    }

    /// A question whose first label claims 63 bytes where 5 remain.
    pub fn label_past_end(id: u16) -> Vec<u8> {
        let mut m = Vec::new();
        push_header(&mut m, id, FLAGS_QUERY, [1, 0, 0, 0]);
        m.extend_from_slice(&[63, b'a', b'b', b'c', b'd', b'e']);
        m
    }

    /// A zero-length UDP payload.
    pub fn empty() -> Vec<u8> {
        Vec::new()
    }

    /// A header claiming 60 000 questions followed by one real question: a decoder
    /// must not reserve room for the claimed count.
    pub fn many_questions(id: u16) -> Vec<u8> {
        let mut m = Vec::new();
        push_header(&mut m, id, FLAGS_QUERY, [60_000, 0, 0, 0]);
        super::encode_name(&mut m, b"example.com");
        push_u16s(&mut m, &[1, 1]);
        m
    }

    /// The first 7 bytes of a query: shorter than the 12-byte header.
    pub fn truncated_header(id: u16) -> Vec<u8> {
        let mut m = super::query(id, b"example.com", 1);
        m.truncate(7);
        m
    }

    /// `len` pseudo-random bytes.
    pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
        let mut m = vec![0; len];
        SplitMix64::new(seed).fill(&mut m);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;
    use etherparse::{LinkExtHeader, NetHeaders, PacketHeaders, TransportHeader};
    use hickory_proto::op::{Message, MessageType};
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4() -> Flow {
        Flow::to_dns(
            IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30)),
            40_000,
            IpAddr::V4(Ipv4Addr::new(10, 0, 2, 20)),
        )
    }

    fn v6() -> Flow {
        Flow::to_dns(
            IpAddr::V6("2001:db8::30".parse::<Ipv6Addr>().unwrap()),
            40_001,
            IpAddr::V6("2001:db8::53".parse::<Ipv6Addr>().unwrap()),
        )
    }

    /// What etherparse sees in a frame, with every checksum verified.
    struct Parsed {
        vlans: Vec<u16>,
        src: IpAddr,
        dst: IpAddr,
        ports: (u16, u16),
        tcp_seq: Option<u32>,
        payload: Vec<u8>,
    }

    fn parse(frame: &[u8]) -> Parsed {
        let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse accepts the frame");
        let vlans = h
            .link_exts
            .iter()
            .map(|e| match e {
                LinkExtHeader::Vlan(v) => v.vlan_id.value(),
                other => panic!("{other:?}"),
            })
            .collect();
        let payload = h.payload.slice().to_vec();
        let (src, dst) = match h.net.as_ref().expect("IP header") {
            NetHeaders::Ipv4(ip, _) => {
                assert_eq!(
                    ip.header_checksum,
                    ip.calc_header_checksum(),
                    "IPv4 checksum"
                );
                (IpAddr::from(ip.source), IpAddr::from(ip.destination))
            }
            NetHeaders::Ipv6(ip, _) => (IpAddr::from(ip.source), IpAddr::from(ip.destination)),
            other => panic!("{other:?}"),
        };
        let (ports, tcp_seq) = match (h.transport.as_ref().expect("transport"), &h.net) {
            (TransportHeader::Udp(u), Some(NetHeaders::Ipv4(ip, _))) => {
                assert_eq!(u.checksum, u.calc_checksum_ipv4(ip, &payload).unwrap());
                ((u.source_port, u.destination_port), None)
            }
            (TransportHeader::Udp(u), Some(NetHeaders::Ipv6(ip, _))) => {
                assert_eq!(u.checksum, u.calc_checksum_ipv6(ip, &payload).unwrap());
                ((u.source_port, u.destination_port), None)
            }
            (TransportHeader::Tcp(t), Some(NetHeaders::Ipv4(ip, _))) => {
                assert_eq!(t.checksum, t.calc_checksum_ipv4(ip, &payload).unwrap());
                ((t.source_port, t.destination_port), Some(t.sequence_number))
            }
            (TransportHeader::Tcp(t), Some(NetHeaders::Ipv6(ip, _))) => {
                assert_eq!(t.checksum, t.calc_checksum_ipv6(ip, &payload).unwrap());
                ((t.source_port, t.destination_port), Some(t.sequence_number))
            }
            other => panic!("{other:?}"),
        };
        Parsed {
            vlans,
            src,
            dst,
            ports,
            tcp_seq,
            payload,
        }
    }

    /// The question name's labels as hickory decodes them.
    fn qname_labels(m: &Message) -> Vec<Vec<u8>> {
        m.queries[0].name().iter().map(|l| l.to_vec()).collect()
    }

    fn labels_of(name: &[u8]) -> Vec<Vec<u8>> {
        name.split(|&b| b == b'.').map(|l| l.to_vec()).collect()
    }

    #[test]
    fn query_and_response_are_what_hickory_decodes() {
        let name = b"WwW.Example.co.uk";
        let q = query(0x1234, name, rtype::A);
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert_eq!(qname_labels(&m), labels_of(name), "case preserved");
        assert_eq!(u16::from(m.queries[0].query_type()), rtype::A);
        assert!(m.answers.is_empty());

        for (t, len) in [
            (rtype::A, 4),
            (rtype::AAAA, 16),
            (rtype::TXT, 300),
            (rtype::NULL, 1000),
        ] {
            let r = response(7, name, t, t, len);
            assert_eq!(r.len(), q.len() + 12 + usize::from(len));
            let m = Message::from_vec(&r).unwrap_or_else(|e| panic!("type {t}: {e}"));
            assert_eq!(m.metadata.message_type, MessageType::Response);
            assert_eq!(m.answers.len(), 1);
            assert_eq!(u16::from(m.answers[0].record_type()), t);
            assert_eq!(m.answers[0].name, m.queries[0].name);
        }

        let nx = Message::from_vec(&nxdomain(9, name, rtype::A)).unwrap();
        assert_eq!(u16::from(nx.metadata.response_code), 3);
        assert!(nx.answers.is_empty());
    }

    #[test]
    fn response_sized_hits_the_requested_size() {
        for size in [100, 512, 1232, 4000] {
            let r = response_sized(1, b"abc.pirate.sea", rtype::NULL, size);
            assert_eq!(r.len(), size);
            assert!(Message::from_vec(&r).is_ok());
            let r = response_sized(1, b"abc.pirate.sea", rtype::TXT, size);
            assert_eq!(r.len(), size);
            assert!(Message::from_vec(&r).is_ok(), "TXT {size}");
        }
        // Below the minimum: the minimum.
        assert_eq!(
            response_sized(1, b"a.b", rtype::NULL, 0).len(),
            12 + 5 + 4 + 12
        );
    }

    #[test]
    fn tunnel_names_are_deterministic_unique_and_valid() {
        let mut seen = HashSet::new();
        for seq in 0..5_000u64 {
            let n = tunnel_name(seq, "pirate.sea");
            assert_eq!(n, tunnel_name(seq, "pirate.sea"));
            assert!(n.ends_with(".pirate.sea"));
            assert!(n.len() <= 253);
            assert!(n.split('.').all(|l| !l.is_empty() && l.len() <= 63));
            assert!(n.bytes().all(|b| b == b'.' || BASE32.contains(&b)));
            assert!(seen.insert(n.clone()), "duplicate at {seq}");
            if seq < 50 {
                let m = Message::from_vec(&query(seq as u16, n.as_bytes(), rtype::TXT)).unwrap();
                assert_eq!(qname_labels(&m), labels_of(n.as_bytes()));
            }
        }
        let lens: HashSet<usize> = (0..200).map(|s| tunnel_name(s, "x.io").len()).collect();
        assert!(lens.len() > 20, "lengths vary");
    }

    #[test]
    fn iodine_names_carry_high_bytes_and_survive_lower_casing() {
        let mut seen = HashSet::new();
        for seq in 0..2_000u64 {
            let n = iodine_name(seq, "pirate.sea");
            assert!(n.iter().any(|&b| b > 0x7f));
            assert!(n.ends_with(b".pirate.sea"));
            assert!(seen.insert(n.to_ascii_lowercase()), "duplicate at {seq}");
            if seq < 50 {
                let m = Message::from_vec(&query(1, &n, rtype::NULL)).unwrap();
                assert_eq!(qname_labels(&m), labels_of(&n));
            }
        }
    }

    #[test]
    fn randomized_case_differs_only_in_case() {
        let n = tunnel_name(3, "Example.COM");
        let r = randomize_case(n.as_bytes(), 42);
        assert_ne!(r, n.as_bytes());
        assert!(r.eq_ignore_ascii_case(n.as_bytes()));
        assert_eq!(r, randomize_case(n.as_bytes(), 42));
        // High bytes are untouched.
        assert_eq!(randomize_case(&[0xc1, 0xe1], 1), vec![0xc1, 0xe1]);
    }

    #[test]
    fn labels_with_dots_round_trip() {
        let q = query_labels(5, &[b"a.b", b"c,d", b"example", b"org"], rtype::A);
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(qname_labels(&m)[0], b"a.b".to_vec());
        assert_eq!(m.queries[0].name().num_labels(), 4);
    }

    #[test]
    fn udp_frames_over_every_encapsulation_parse_with_valid_checksums() {
        let msg = query(1, b"www.example.com", rtype::A);
        let vlans = [
            (Vlan::None, vec![]),
            (Vlan::Dot1Q(11), vec![11]),
            (
                Vlan::QinQ {
                    outer: 100,
                    inner: 200,
                },
                vec![100, 200],
            ),
        ];
        for base in [v4(), v6()] {
            for (vlan, ids) in &vlans {
                let flow = base.with_vlan(*vlan);
                let f = udp_frame(&flow, &msg);
                let p = parse(&f);
                assert_eq!(&p.vlans, ids);
                assert_eq!((p.src, p.dst), (flow.src, flow.dst));
                assert_eq!(p.ports, (flow.sport, 53));
                assert_eq!(p.payload, msg);
                assert!(Message::from_vec(&p.payload).is_ok());
                let back = parse(&udp_frame(&flow.reply(), &msg));
                assert_eq!(back.ports, (53, flow.sport));
                assert_eq!(back.src, flow.dst);
            }
        }
        // QinQ really uses the 802.1ad TPID outside and 802.1Q inside.
        let f = udp_frame(&v4().with_vlan(Vlan::QinQ { outer: 1, inner: 2 }), &msg);
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        // An empty payload is still a valid UDP datagram.
        assert!(parse(&udp_frame(&v4(), &hostile::empty()))
            .payload
            .is_empty());
    }

    #[test]
    fn tcp_messages_split_and_packed_reassemble_in_sequence() {
        let q1 = query(1, tunnel_name(1, "t.example").as_bytes(), rtype::TXT);
        let q2 = query(2, tunnel_name(2, "t.example").as_bytes(), rtype::TXT);
        let q3 = query(3, tunnel_name(3, "t.example").as_bytes(), rtype::TXT);
        let stream = tcp_stream(&[&q1, &q2, &q3]);
        for base in [v4(), v6().with_vlan(Vlan::Dot1Q(7))] {
            let mut tx = TcpFlow::new(base, 1_000, 5_000);
            // q1 split after its length prefix and mid-name; q2 and q3 share a segment.
            let cuts = [1, 2 + 20];
            let frames = tx.segments(&stream[..2 + q1.len()], &cuts);
            let packed = tx.segment(&stream[2 + q1.len()..]);
            assert_eq!(frames.len(), 3);
            let mut seq = 1_000u32;
            let mut got = Vec::new();
            for f in frames.iter().chain(std::iter::once(&packed)) {
                let p = parse(f);
                assert_eq!(p.tcp_seq, Some(seq));
                assert_eq!(p.ports, (base.sport, 53));
                seq += p.payload.len() as u32;
                got.extend(p.payload);
            }
            assert_eq!(tx.next_seq(), seq);
            assert_eq!(got, stream);
            // Walk the length prefixes: three messages, each one hickory accepts.
            let mut rest = &got[..];
            let mut ids = Vec::new();
            while !rest.is_empty() {
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                ids.push(Message::from_vec(&rest[2..2 + len]).unwrap().metadata.id);
                rest = &rest[2 + len..];
            }
            assert_eq!(ids, vec![1, 2, 3]);
        }
        let mut tx = TcpFlow::new(v4(), u32::MAX - 1, 0);
        tx.segment(b"abcd");
        assert_eq!(tx.next_seq(), 2, "sequence numbers wrap");
        tx.skip(10);
        assert_eq!(parse(&tx.segment(b"x")).tcp_seq, Some(12));
    }

    #[test]
    fn ipv4_fragments_reassemble_to_a_checksummed_datagram() {
        let name = tunnel_name(9, "pirate.sea");
        let msg = response_sized(9, name.as_bytes(), rtype::NULL, 3000);
        let flow = v4().reply().with_vlan(Vlan::Dot1Q(3));
        let frags = ipv4_udp_fragments(&flow, &msg, 0xbeef, 1000);
        assert_eq!(frags.len(), 4, "3008 bytes in 1000-byte fragments");
        let mut whole = vec![0u8; 8 + msg.len()];
        let mut covered = 0;
        let mut first_ip = None;
        for (i, f) in frags.iter().enumerate() {
            let h = PacketHeaders::from_ethernet_slice(f).unwrap();
            let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
                panic!("not IPv4")
            };
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            assert_eq!(ip.identification, 0xbeef);
            assert_eq!(ip.more_fragments, i + 1 < frags.len());
            let off = usize::from(ip.fragment_offset.value()) * 8;
            assert_eq!(off, i * 1000);
            // etherparse does not read transport headers of fragments.
            let data = h.payload.slice();
            whole[off..off + data.len()].copy_from_slice(data);
            covered += data.len();
            if i == 0 {
                first_ip = Some(ip);
            }
        }
        assert_eq!(covered, whole.len());
        let (udp, payload) = etherparse::UdpHeader::from_slice(&whole).unwrap();
        assert_eq!(usize::from(udp.length), whole.len());
        assert_eq!((udp.source_port, udp.destination_port), (53, 40_000));
        assert_eq!(
            udp.checksum,
            udp.calc_checksum_ipv4(&first_ip.unwrap(), payload).unwrap()
        );
        assert_eq!(payload, &msg[..]);
        assert!(Message::from_vec(payload).is_ok());
        // A small datagram is one unfragmented-looking frame.
        assert_eq!(ipv4_udp_fragments(&v4(), b"tiny", 1, 1000).len(), 1);
    }

    #[test]
    fn hostile_messages_are_rejected_by_a_strict_parser() {
        let cases = [
            ("compression loop", hostile::compression_loop(1)),
            ("pointer past end", hostile::pointer_past_end(2)),
            ("label past end", hostile::label_past_end(3)),
            ("60000 questions", hostile::many_questions(4)),
            ("truncated header", hostile::truncated_header(5)),
            ("empty", hostile::empty()),
            ("garbage", hostile::garbage(6, 40)),
        ];
        for (what, m) in cases {
            assert!(Message::from_vec(&m).is_err(), "{what} was accepted");
            // Each still rides in a well-formed frame.
            assert_eq!(parse(&udp_frame(&v4(), &m)).payload, m, "{what}");
        }
        assert_eq!(hostile::truncated_header(1).len(), 7);
        assert_eq!(&hostile::many_questions(1)[4..6], &60_000u16.to_be_bytes());
    }

    #[test]
    fn frames_written_to_pcap_read_back() {
        let frames: Vec<(Nanos, Vec<u8>)> = (0..10u64)
            .map(|i| {
                let q = query(
                    i as u16,
                    tunnel_name(i, "pirate.sea").as_bytes(),
                    rtype::NULL,
                );
                (
                    1_700_000_000_000_000_000 + i * 1_500_000_000,
                    udp_frame(&v4(), &q),
                )
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("dns-sensor-synth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        assert_eq!(
            write_pcap(&path, LinkType::Ethernet, frames.clone()).unwrap(),
            10
        );
        let mut r = CaptureReader::open(&path).unwrap();
        let mut n = 0;
        while let Some(f) = r.next_frame().unwrap() {
            assert_eq!((f.ts, f.data), (frames[n].0, &frames[n].1[..]));
            assert_eq!(f.link, LinkType::Ethernet);
            n += 1;
        }
        assert_eq!(n, 10);
        std::fs::remove_dir_all(&dir).unwrap();
        let mem = pcap_bytes(LinkType::Ethernet, frames.iter().map(|(t, f)| (*t, f)));
        let mut r = CaptureReader::from_reader("mem", io::Cursor::new(mem)).unwrap();
        assert_eq!(r.peek_ts().unwrap(), Some(frames[0].0));
    }

    #[test]
    fn relinked_frames_keep_the_ip_packet_behind_the_right_header() {
        let msg = query(1, b"a.example.com", rtype::A);
        for flow in [v4().with_vlan(Vlan::QinQ { outer: 1, inner: 2 }), v6()] {
            let eth = udp_frame(&flow, &msg);
            let ip_len = 20 + if flow.src.is_ipv4() { 0 } else { 20 } + 8 + msg.len();
            let ip = &eth[eth.len() - ip_len..];
            assert_eq!(relink(&eth, LinkType::Ethernet), eth);

            let raw = relink(&eth, LinkType::RawIp);
            assert_eq!(raw, ip);
            let h = PacketHeaders::from_ip_slice(&raw).unwrap();
            assert_eq!(h.payload.slice(), &msg[..]);

            let lo = relink(&eth, LinkType::BsdLoopback);
            let af = u32::from_le_bytes(lo[0..4].try_into().unwrap());
            assert_eq!(af, if flow.src.is_ipv4() { 2 } else { BSD_AF_INET6 });
            assert_eq!(&lo[4..], ip);

            let sll = relink(&eth, LinkType::LinuxSll);
            let p = etherparse::SlicedPacket::from_linux_sll(&sll).unwrap();
            assert!(matches!(
                p.transport,
                Some(etherparse::TransportSlice::Udp(_))
            ));
            assert_eq!(&sll[16..], ip);

            let sll2 = relink(&eth, LinkType::LinuxSll2);
            let proto = u16::from_be_bytes([sll2[0], sll2[1]]);
            assert_eq!(proto, if flow.src.is_ipv4() { 0x0800 } else { 0x86dd });
            assert_eq!(usize::from(sll2[11]), 6, "address length");
            assert_eq!(&sll2[20..], ip);
        }
    }

    #[test]
    fn udp_exchange_pairs_a_query_with_its_sized_answer() {
        let (q, r) = udp_exchange(&v6(), 77, b"x.pirate.sea", rtype::TXT, 700);
        let (q, r) = (parse(&q), parse(&r));
        assert_eq!((q.src, r.dst), (v6().src, v6().src));
        assert_eq!(r.payload.len(), 700);
        let (mq, mr) = (
            Message::from_vec(&q.payload).unwrap(),
            Message::from_vec(&r.payload).unwrap(),
        );
        assert_eq!((mq.metadata.id, mr.metadata.id), (77, 77));
        assert_eq!(mr.queries[0].name(), mq.queries[0].name());
    }

    #[test]
    fn splitmix_is_deterministic_and_spread() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_eq!(xs.iter().collect::<HashSet<_>>().len(), 100);
        let mut c = SplitMix64::new(1);
        let hist = (0..10_000).fold([0u32; 4], |mut h, _| {
            h[c.below(4) as usize] += 1;
            h
        });
        assert!(
            hist.iter().all(|&n| (2_200..2_800).contains(&n)),
            "{hist:?}"
        );
        assert_eq!(c.below(0), 0);
    }
}
