//! Frames of every link type through the whole decoder (`decode::Decoder`).
//!
//! Input: the first byte picks the link type (its value modulo 5, in the order of
//! [`LINKS`]); then frames, each a little-endian `u16` length, a time step in tenths of
//! a second (one byte) and that many bytes (the last frame takes what is left).
//!
//! Checks, after every frame:
//! - the frame counter went up by one, and `dns_messages` by the messages handed out;
//! - a frame is counted under at most one of not IP, not DNS and malformed;
//! - every message is non-empty, stamped with its frame's time, between addresses of
//!   one family, on a configured port; a UDP message is a sub-slice of the frame, or
//!   of a datagram this frame completed (then at most 65 527 bytes); a TCP message
//!   is a sub-slice of the frame right after its length prefix, or was reassembled
//!   within `max_tcp_buffer`, or comes from a datagram this frame completed;
//! - the reassembly tables hold no more than `DecodeSettings` allows, and the TCP
//!   table's count of buffered bytes is right.

#![no_main]

use dns_sensor::capture::{Frame, LinkType};
use dns_sensor::decode::{flow_hash, DecodeSettings, DecodeStats, Decoder, Transport};
use dns_sensor_fuzz::{offset_in, Input, T0, TENTH};
use libfuzzer_sys::fuzz_target;

/// The link types, in the order the first input byte picks them.
const LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::BsdLoopback,
];

/// Small tables, so that a short input fills them.
fn settings() -> DecodeSettings {
    DecodeSettings {
        ports: vec![53, 5353],
        max_fragment_datagrams: 8,
        max_tcp_flows: 8,
        max_tcp_buffer: 2048,
        // Small enough that a few frames reach them.
        max_fragment_bytes: 8192,
        max_tcp_bytes: 8192,
        reassembly_timeout: 30 * dns_sensor::NANOS_PER_SEC,
    }
}

/// What the decoder said of one message, checked once the frame is done.
struct Seen {
    transport: Transport,
    len: usize,
    /// Where the message starts in the frame, when it is a sub-slice of it.
    at: Option<usize>,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let link = LINKS[usize::from(input.u8()) % LINKS.len()];
    let settings = settings();
    let mut decoder = Decoder::new(settings.clone());
    let mut ts = T0;
    let mut fed = 0u64;
    while !input.is_empty() {
        let len = usize::from(input.u16());
        ts += u64::from(input.u8()) * TENTH;
        let bytes = input.bytes(len);
        let frame = Frame {
            ts,
            link,
            data: bytes,
        };
        let _ = flow_hash(&frame);
        let before = decoder.stats().clone();
        let mut seen = Vec::new();
        decoder.decode(&frame, |p| {
            assert!(!p.message.is_empty(), "an empty message");
            assert_eq!(p.ts, ts, "a message stamped with another frame's time");
            assert_eq!(
                p.src.is_ipv4(),
                p.dst.is_ipv4(),
                "addresses of two families"
            );
            assert!(
                settings.ports.contains(&p.src_port) || settings.ports.contains(&p.dst_port),
                "a message on ports {} and {}",
                p.src_port,
                p.dst_port
            );
            seen.push(Seen {
                transport: p.transport,
                len: p.message.len(),
                at: offset_in(p.message, bytes),
            });
        });
        fed += 1;
        check_frame(&before, decoder.stats(), &seen, bytes, &settings);
        let sizes = decoder.table_sizes();
        assert!(
            sizes.fragment_datagrams <= settings.max_fragment_datagrams,
            "{sizes:?}"
        );
        assert!(sizes.fragment_largest <= 65_535, "{sizes:?}");
        assert!(sizes.tcp_flows <= settings.max_tcp_flows, "{sizes:?}");
        assert!(
            sizes.tcp_largest_partial <= settings.max_tcp_buffer,
            "{sizes:?}"
        );
        assert_eq!(sizes.tcp_buffered, sizes.tcp_buffered_recount, "{sizes:?}");
        assert!(sizes.tcp_buffered <= settings.max_tcp_bytes, "{sizes:?}");
        assert_eq!(
            sizes.fragment_bytes, sizes.fragment_bytes_recount,
            "{sizes:?}"
        );
        assert!(
            sizes.fragment_bytes <= settings.max_fragment_bytes,
            "{sizes:?}"
        );
    }
    assert_eq!(decoder.stats().frames, fed);
});

/// The checks of one frame's counters and messages.
fn check_frame(
    before: &DecodeStats,
    after: &DecodeStats,
    seen: &[Seen],
    frame: &[u8],
    settings: &DecodeSettings,
) {
    assert_eq!(after.frames, before.frames + 1);
    assert_eq!(after.dns_messages - before.dns_messages, seen.len() as u64);
    let verdicts = (after.not_ip - before.not_ip)
        + (after.not_dns - before.not_dns)
        + (after.malformed_frames - before.malformed_frames);
    assert!(
        verdicts <= 1,
        "one frame counted {verdicts} times: {after:?}"
    );
    let reassembled = after.ip_reassembled - before.ip_reassembled;
    assert!(
        reassembled <= 1,
        "one frame completed {reassembled} datagrams"
    );
    assert!(reassembled <= after.ip_fragments - before.ip_fragments);
    let udp = seen
        .iter()
        .filter(|s| s.transport == Transport::Udp)
        .count();
    assert!(udp <= 1, "{udp} UDP messages in one frame");
    for s in seen {
        match (s.transport, s.at) {
            (Transport::Udp, Some(_)) => {}
            (Transport::Udp, None) => {
                assert_eq!(reassembled, 1, "a UDP message from nowhere");
                assert!(s.len <= 65_535 - 8);
            }
            (Transport::Tcp, Some(at)) => {
                let prefix = at.checked_sub(2).map(|p| &frame[p..at]);
                assert_eq!(
                    prefix,
                    Some(&(s.len as u16).to_be_bytes()[..]),
                    "a TCP message not after its length prefix"
                );
            }
            (Transport::Tcp, None) => assert!(
                s.len + 2 <= settings.max_tcp_buffer || reassembled == 1,
                "a reassembled TCP message of {} bytes",
                s.len
            ),
        }
    }
}
