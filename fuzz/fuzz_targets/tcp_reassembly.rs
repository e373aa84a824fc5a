//! DNS over TCP: sequences of segments of four flows through the decoder's stream
//! reassembly, with small tables.
//!
//! Input: two bytes of settings, `max_tcp_flows` = 1 + (first & 3) and
//! `max_tcp_buffer` = 14 + 8 × second; then segments, each five bytes and a payload:
//! - flags: bits 0-1 the flow (0: 10.0.0.1:40000 → 10.0.0.2:53, 1: its reply,
//!   2: 2001:db8::1:40001 → 2001:db8::2:53, 3: its reply), bit 2 SYN, bit 3 FIN,
//!   bit 4 RST, bits 5-7 a shift `s` for the next byte;
//! - how far the sequence number lies from the flow's next byte: an `i8` times
//!   8^`s` (0: in order; below 0: a retransmission; above: a gap);
//! - a time step in tenths of a second (the timeout is 30 s);
//! - the payload's length (a byte), then the payload.
//!
//! Checks, after every segment: the table tracks at most `max_tcp_flows` flows and
//! no flow buffers more than `max_tcp_buffer` bytes, nor all of them more than
//! `max_tcp_bytes`, and its count of buffered bytes is right; every message belongs to the segment's flow, and the bytes of all the
//! messages of a flow (with their prefixes) are no more than its payloads carried.
//! A flow whose segments all came in order since its SYN (no gap, retransmission,
//! reset, timeout or refusal) gives exactly the messages of its byte stream: each
//! length-prefixed message but the empty ones and those that span two segments
//! without fitting `max_tcp_buffer`.

#![no_main]

use std::net::IpAddr;

use dns_sensor::capture::{Frame, LinkType};
use dns_sensor::decode::{DecodeSettings, Decoder, Transport};
use dns_sensor::synth::{tcp_flags, tcp_frame, Flow};
use dns_sensor_fuzz::{Input, T0, TENTH};
use libfuzzer_sys::fuzz_target;

const TIMEOUT: u64 = 30 * dns_sensor::NANOS_PER_SEC;

/// The four flows: two connections, both directions of each.
fn flows() -> [Flow; 4] {
    let v4 = |d| IpAddr::from([10, 0, 0, d]);
    let v6 = |d| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, d]);
    let a = Flow::to_dns(v4(1), 40000, v4(2));
    let b = Flow::to_dns(v6(1), 40001, v6(2));
    [a, a.reply(), b, b.reply()]
}

/// One flow as the target follows it.
#[derive(Default)]
struct Track {
    /// Sequence number of the flow's next byte.
    next_seq: u32,
    /// Capture time of its last segment.
    last_seen: u64,
    /// Payload bytes sent, and message bytes (with prefixes) handed out, in all.
    sent: usize,
    received: usize,
    /// Since the SYN, while every segment came in order: the stream, where each
    /// segment started in it, and the messages handed out.
    clean: Option<Clean>,
}

#[derive(Default)]
struct Clean {
    stream: Vec<u8>,
    cuts: Vec<usize>,
    messages: Vec<Vec<u8>>,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let first = input.u8();
    let max_tcp_buffer = 14 + 8 * usize::from(input.u8());
    let settings = DecodeSettings {
        ports: vec![53],
        max_fragment_datagrams: 4,
        max_fragment_bytes: 4096,
        max_tcp_flows: 1 + usize::from(first & 3),
        max_tcp_buffer,
        // Room for every tracked flow's largest message and not a byte more, so a clean
        // flow's messages stay exact while any room miscounted across flows shows (it
        // found one: a message freed in a segment did not make room for the next the
        // segment starts). decode_frame has a tighter bound.
        max_tcp_bytes: max_tcp_buffer * (1 + usize::from(first & 3)),
        reassembly_timeout: TIMEOUT,
    };
    let flows = flows();
    let mut decoder = Decoder::new(settings.clone());
    let mut tracks: [Track; 4] = Default::default();
    let mut ts = T0;
    while !input.is_empty() {
        let op = input.u8();
        let delta = i32::from(input.u8() as i8) << (3 * (op >> 5));
        ts += u64::from(input.u8()) * TENTH;
        let len = usize::from(input.u8());
        let payload = input.bytes(len);
        let f = usize::from(op & 3);
        let (syn, fin, rst) = (op & 4 != 0, op & 8 != 0, op & 16 != 0);
        let seq = tracks[f].next_seq.wrapping_add(delta as u32);

        // What ends a clean run: compare it first, as far as it went.
        for (i, t) in tracks.iter_mut().enumerate() {
            let idle = ts - t.last_seen >= TIMEOUT;
            let reset = rst && i / 2 == f / 2;
            let this = i == f && (syn || delta != 0);
            if idle || reset || this {
                finish(t, settings.max_tcp_buffer);
            }
        }
        if syn && !rst {
            tracks[f].clean = Some(Clean::default());
        }
        let mut flags = tcp_flags::ACK;
        for (set, bit) in [
            (syn, tcp_flags::SYN),
            (fin, tcp_flags::FIN),
            (rst, tcp_flags::RST),
        ] {
            if set {
                flags |= bit;
            }
        }
        let bytes = tcp_frame(&flows[f], seq, 1, flags, payload);
        let frame = Frame {
            ts,
            link: LinkType::Ethernet,
            data: &bytes,
        };
        let refused = decoder.stats().tcp_flows_refused;
        let mut messages = Vec::new();
        decoder.decode(&frame, |p| {
            assert_eq!(p.transport, Transport::Tcp);
            let from = (p.src, p.dst, p.src_port, p.dst_port);
            let flow = &flows[f];
            assert_eq!(from, (flow.src, flow.dst, flow.sport, flow.dport));
            messages.push(p.message.to_vec());
        });

        let t = &mut tracks[f];
        t.next_seq = seq
            .wrapping_add(u32::from(syn))
            .wrapping_add(payload.len() as u32);
        t.last_seen = ts;
        t.sent += payload.len();
        t.received += messages.iter().map(|m| m.len() + 2).sum::<usize>();
        assert!(
            t.received <= t.sent,
            "{} message bytes from {}",
            t.received,
            t.sent
        );
        if decoder.stats().tcp_flows_refused != refused {
            t.clean = None;
        }
        if let Some(clean) = &mut t.clean {
            clean.cuts.push(clean.stream.len());
            clean.stream.extend_from_slice(payload);
            clean.messages.extend(messages);
        }
        if fin || rst {
            finish(t, settings.max_tcp_buffer);
        }

        let sizes = decoder.table_sizes();
        assert!(sizes.tcp_flows <= settings.max_tcp_flows, "{sizes:?}");
        assert!(
            sizes.tcp_largest_partial <= settings.max_tcp_buffer,
            "{sizes:?}"
        );
        assert_eq!(sizes.tcp_buffered, sizes.tcp_buffered_recount, "{sizes:?}");
        assert!(sizes.tcp_buffered <= settings.max_tcp_bytes, "{sizes:?}");
    }
    for t in &mut tracks {
        finish(t, settings.max_tcp_buffer);
    }
});

/// Ends a flow's clean run, if it has one: its messages must be those of its stream.
fn finish(track: &mut Track, max_buffer: usize) {
    if let Some(clean) = track.clean.take() {
        let expected = stream_messages(&clean.stream, &clean.cuts, max_buffer);
        assert_eq!(clean.messages, expected, "cuts {:?}", clean.cuts);
    }
}

/// The messages a stream cut into segments at `cuts` holds: every complete
/// length-prefixed message but the empty ones and those (prefix included) that span a
/// cut and are longer than `max_buffer`.
fn stream_messages(stream: &[u8], cuts: &[usize], max_buffer: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(prefix) = stream.get(at..at + 2) {
        let end = at + 2 + usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        let Some(message) = stream.get(at + 2..end) else {
            break;
        };
        let spans = cuts.iter().any(|&c| at < c && c < end);
        if !message.is_empty() && (!spans || end - at <= max_buffer) {
            out.push(message.to_vec());
        }
        at = end;
    }
    out
}
