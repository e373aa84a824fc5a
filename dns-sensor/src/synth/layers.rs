//! Frames built a layer at a time, every field the caller's: for tests of what the
//! decoder and the XDP program make of frames at the edges (IPv4 options, any
//! fragment field, IPv6 extension headers, any VLAN tag or ethertype, headers cut
//! short). [`udp_frame`](super::udp_frame) and the other flow builders make
//! well-formed traffic; these make whatever a test needs, and leave the UDP and TCP
//! checksums zero (UDP: none; neither the sensor nor the XDP program checks them).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{checksum, push_u16s};

/// An Ethernet frame from `src` to `dst` with VLAN `tags` (TPID, VLAN id) and then
/// `ethertype`, padded to the 60-byte minimum as a NIC pads it.
pub fn ethernet(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    for &(tpid, vid) in tags {
        push_u16s(&mut frame, &[tpid, vid]);
    }
    push_u16s(&mut frame, &[ethertype]);
    frame.extend_from_slice(payload);
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

/// An IPv4 packet of protocol `proto` with `options` bytes of NOP options (a multiple
/// of 4, at most 40), `flags_offset` as the 16-bit flags and fragment offset field
/// (`0x2000` is MF, the low 13 bits the offset in 8-byte units), identification
/// 0x1234 and TTL 64; the header checksum is computed.
///
/// # Panics
/// On options that are not a multiple of 4 or more than 40 bytes.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    flags_offset: u16,
    options: usize,
    payload: &[u8],
) -> Vec<u8> {
    assert!(
        options % 4 == 0 && options <= 40,
        "IPv4 options of {options} bytes"
    );
    let header_len = 20 + options;
    let total = u16::try_from(header_len + payload.len()).expect("IPv4 packet over 65535 bytes");
    let mut packet = Vec::with_capacity(header_len + payload.len());
    packet.extend_from_slice(&[0x40 | (header_len / 4) as u8, 0]);
    push_u16s(&mut packet, &[total, 0x1234, flags_offset]);
    packet.extend_from_slice(&[64, proto, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    // NOP options.
    packet.resize(header_len, 1);
    let sum = checksum(&[&packet], 0);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// An IPv6 packet whose first next-header value is `next`, followed by `ext` (the
/// extension headers, already built) and `payload`, hop limit 64.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(ext.len() + payload.len()).expect("IPv6 payload over 65535 bytes");
    let mut packet = Vec::with_capacity(40 + ext.len() + payload.len());
    packet.extend_from_slice(&[0x60, 0, 0, 0]);
    push_u16s(&mut packet, &[len]);
    packet.extend_from_slice(&[next, 64]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(ext);
    packet.extend_from_slice(payload);
    packet
}

/// A UDP datagram from `sport` to `dport`, without a checksum.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("UDP over 65535 bytes");
    let mut datagram = Vec::with_capacity(8 + payload.len());
    push_u16s(&mut datagram, &[sport, dport, len, 0]);
    datagram.extend_from_slice(payload);
    datagram
}

/// A TCP segment from `sport` to `dport`: sequence and acknowledgement 1, a 20-byte
/// header, PSH and ACK, the checksum left zero.
pub fn tcp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut segment = Vec::with_capacity(20 + payload.len());
    push_u16s(&mut segment, &[sport, dport, 0, 1, 0, 1]);
    segment.extend_from_slice(&[5 << 4, super::tcp_flags::PSH | super::tcp_flags::ACK]);
    push_u16s(&mut segment, &[0xffff, 0, 0]);
    segment.extend_from_slice(payload);
    segment
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Frame, LinkType};
    use crate::decode::{DecodeSettings, Decoder, Transport};

    const A: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);

    /// What the decoder makes of `frame`: each message's transport, ports and length.
    fn decoded(frame: &[u8]) -> Vec<(Transport, u16, u16, usize)> {
        let mut decoder = Decoder::new(DecodeSettings::default());
        let mut out = Vec::new();
        let frame = Frame {
            ts: 0,
            link: LinkType::Ethernet,
            data: frame,
        };
        decoder.decode(&frame, |p| {
            out.push((p.transport, p.src_port, p.dst_port, p.message.len()))
        });
        out
    }

    #[test]
    fn layers_stack_into_frames_the_decoder_reads() {
        let message = super::super::query(7, b"www.example.com", 1);
        let mac = [2, 0, 0, 0, 0, 1];
        let plain = ethernet(
            mac,
            mac,
            &[],
            0x0800,
            &ipv4(A, B, 17, 0, 0, &udp(4000, 53, &message)),
        );
        assert_eq!(
            decoded(&plain),
            vec![(Transport::Udp, 4000, 53, message.len())]
        );
        // Options, tags and TCP: the same message found.
        let tagged = ethernet(
            mac,
            mac,
            &[(0x88a8, 100), (0x8100, 10)],
            0x0800,
            &ipv4(A, B, 17, 0, 40, &udp(4000, 53, &message)),
        );
        assert_eq!(
            decoded(&tagged),
            vec![(Transport::Udp, 4000, 53, message.len())]
        );
        let mut stream = (message.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(&message);
        let over_tcp = ethernet(
            mac,
            mac,
            &[],
            0x0800,
            &ipv4(A, B, 6, 0, 0, &tcp(4000, 53, &stream)),
        );
        assert_eq!(
            decoded(&over_tcp),
            vec![(Transport::Tcp, 4000, 53, message.len())]
        );
        let v6 = ethernet(
            mac,
            mac,
            &[],
            0x86dd,
            &ipv6(
                Ipv6Addr::LOCALHOST,
                Ipv6Addr::LOCALHOST,
                17,
                &[],
                &udp(4000, 53, &message),
            ),
        );
        assert_eq!(
            decoded(&v6),
            vec![(Transport::Udp, 4000, 53, message.len())]
        );
        // The IPv4 header checksum holds: the header sums to all ones.
        let header = &plain[14..34];
        assert_eq!(checksum(&[header], 0), 0);
        // Short frames are padded to the Ethernet minimum.
        assert_eq!(ethernet(mac, mac, &[], 0x0806, &[0; 28]).len(), 60);
    }
}
