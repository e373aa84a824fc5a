//! IPv4 and IPv6 fragments of a few datagrams through the decoder's fragment
//! reassembly, with a small table.
//!
//! Input: one byte of settings, `max_fragment_datagrams` = 1 + (byte & 7) and
//! `max_fragment_bytes` = 64 × (1 + (byte >> 3)), 64 to 2 048 bytes; then
//! fragments, each six bytes and a payload:
//! - flags: bit 0 the family (0: IPv4, 1: IPv6), bits 1-2 the source address (one
//!   of four), bit 3 MF (more fragments), bits 4-5 the protocol (UDP, TCP, ICMP, or
//!   UDP behind a destination-options header for IPv6 and UDP again for IPv4);
//! - the identification (a byte);
//! - the fragment offset in 8-byte units (little-endian `u16`, 13 bits used);
//! - a time step in tenths of a second (the timeout is 30 s);
//! - the payload's length (a byte), then the payload: the first fragment of a datagram
//!   starts with its UDP (or TCP) header.
//!
//! Checks, after every fragment: the table holds at most `max_fragment_datagrams`
//! datagrams, none over 65 535 bytes, their pieces at most `max_fragment_bytes` (and
//! counted right), and its age queue stays within its bound; every
//! message comes from the fragment's own addresses, from this frame, from a datagram
//! this fragment completed or (TCP) from its flow's buffer; and every byte of a message reassembled from UDP
//! fragments is a byte some fragment of that datagram carried at that offset.

#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dns_sensor::capture::{Frame, LinkType};
use dns_sensor::decode::{DecodeSettings, Decoder, Transport};
use dns_sensor::synth::layers;
use dns_sensor_fuzz::{within, Input, T0, TENTH};
use libfuzzer_sys::fuzz_target;

const PROTO_UDP: u8 = 17;

/// The fragments sent of each UDP datagram (family, source, id): offset and bytes.
type Sent<'a> = HashMap<(bool, u8, u8), Vec<(usize, &'a [u8])>>;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let byte = input.u8();
    let settings = DecodeSettings {
        ports: vec![53],
        max_fragment_datagrams: 1 + usize::from(byte & 7),
        max_fragment_bytes: 64 * (1 + usize::from(byte >> 3)),
        max_tcp_flows: 4,
        max_tcp_buffer: 1024,
        max_tcp_bytes: 4096,
        reassembly_timeout: 30 * dns_sensor::NANOS_PER_SEC,
    };
    let mut decoder = Decoder::new(settings.clone());
    let mut sent = Sent::new();
    let mut ts = T0;
    while !input.is_empty() {
        let op = input.u8();
        let id = input.u8();
        let offset = usize::from(input.u16() & 0x1fff) * 8;
        ts += u64::from(input.u8()) * TENTH;
        let len = usize::from(input.u8());
        let payload = input.bytes(len);
        let (v6, host, more) = (op & 1 != 0, (op >> 1) & 3, op & 8 != 0);
        let proto = [PROTO_UDP, 6, 1, PROTO_UDP][usize::from((op >> 4) & 3)];
        let behind_options = v6 && (op >> 4) & 3 == 3;
        let (src, dst, bytes) = if v6 {
            ipv6_fragment(host, id, offset, more, proto, behind_options, payload)
        } else {
            ipv4_fragment(host, id, offset, more, proto, payload)
        };
        // The key's protocol is what the fragment header names.
        let key_proto = if behind_options { 60 } else { proto };
        if key_proto == PROTO_UDP {
            sent.entry((v6, host, id))
                .or_default()
                .push((offset, payload));
        }
        let frame = Frame {
            ts,
            link: LinkType::Ethernet,
            data: &bytes,
        };
        let reassembled = decoder.stats().ip_reassembled;
        let mut messages = Vec::new();
        decoder.decode(&frame, |p| {
            assert_eq!((p.src, p.dst), (src, dst), "a message of another datagram");
            messages.push((p.transport, within(p.message, &bytes), p.message.to_vec()));
        });
        let completed = decoder.stats().ip_reassembled - reassembled;
        assert!(completed <= 1);
        for (transport, in_frame, message) in &messages {
            // A TCP message may also come from the flow's buffer (a segment before).
            let buffered =
                *transport == Transport::Tcp && message.len() + 2 <= settings.max_tcp_buffer;
            assert!(
                *in_frame || completed == 1 || buffered,
                "a message from nowhere"
            );
            if !in_frame && key_proto == PROTO_UDP {
                // Reassembled UDP: the message starts after the 8-byte UDP header.
                let fragments = &sent[&(v6, host, id)];
                for (i, &b) in message.iter().enumerate() {
                    let at = 8 + i;
                    let was = fragments
                        .iter()
                        .any(|&(off, data)| at >= off && data.get(at - off) == Some(&b));
                    assert!(
                        was,
                        "byte {i} of a reassembled message ({b:#04x}) was never sent there"
                    );
                }
            }
        }

        let sizes = decoder.table_sizes();
        let max = settings.max_fragment_datagrams;
        assert!(sizes.fragment_datagrams <= max, "{sizes:?}");
        assert!(sizes.fragment_largest <= 65_535, "{sizes:?}");
        // What the pieces take is counted right, and never passes its bound.
        assert_eq!(
            sizes.fragment_bytes, sizes.fragment_bytes_recount,
            "{sizes:?}"
        );
        assert!(
            sizes.fragment_bytes <= settings.max_fragment_bytes,
            "{sizes:?}"
        );
        assert!(sizes.fragment_queue <= 2 * max + 64, "{sizes:?}");
    }
});

/// One of four IPv4 sources, to one destination.
fn v4(host: u8) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(10, 1, 0, host + 1),
        Ipv4Addr::new(10, 2, 0, 1),
    )
}

/// One of four IPv6 sources, to one destination.
fn v6(host: u8) -> (Ipv6Addr, Ipv6Addr) {
    let a = |n| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n);
    (a(u16::from(host) + 1), a(0x100))
}

/// An Ethernet frame with one IPv4 fragment.
fn ipv4_fragment(
    host: u8,
    id: u8,
    offset: usize,
    more: bool,
    proto: u8,
    payload: &[u8],
) -> (IpAddr, IpAddr, Vec<u8>) {
    let (src, dst) = v4(host);
    let flags_offset = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut packet = layers::ipv4(src, dst, proto, flags_offset, 0, payload);
    // The identification (the builder writes 0x1234; nothing checks the checksum).
    packet[4..6].copy_from_slice(&u16::from(id).to_be_bytes());
    let frame = layers::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], &[], 0x0800, &packet);
    (src.into(), dst.into(), frame)
}

/// An Ethernet frame with one IPv6 fragment (a fragment header, maybe a
/// destination-options header behind it in the fragmentable part).
fn ipv6_fragment(
    host: u8,
    id: u8,
    offset: usize,
    more: bool,
    proto: u8,
    behind_options: bool,
    payload: &[u8],
) -> (IpAddr, IpAddr, Vec<u8>) {
    let (src, dst) = v6(host);
    let next = if behind_options { 60 } else { proto };
    let mut ext = vec![next, 0];
    ext.extend_from_slice(&((offset as u16 & 0xfff8) | u16::from(more)).to_be_bytes());
    ext.extend_from_slice(&u32::from(id).to_be_bytes());
    let mut body = Vec::new();
    if behind_options && offset == 0 {
        // Destination options: next header UDP, 8 bytes of padding options.
        body.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]);
    }
    body.extend_from_slice(payload);
    let packet = layers::ipv6(src, dst, 44, &ext, &body);
    let frame = layers::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], &[], 0x86dd, &packet);
    (src.into(), dst.into(), frame)
}
