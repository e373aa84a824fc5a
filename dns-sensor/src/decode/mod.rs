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

use crate::capture::Frame;
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
            reassembly_timeout: 30 * crate::NANOS_PER_SEC,
        }
    }
}

/// What the decoder saw and what it skipped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames handed to [`Decoder::decode`].
    pub frames: u64,
    /// DNS messages handed out.
    pub dns_messages: u64,
    /// Frames that are neither IPv4 nor IPv6 (ARP, LLDP, ...).
    pub not_ip: u64,
    /// IP frames that are not UDP/TCP on a DNS port.
    pub not_dns: u64,
    /// Frames whose link, IP, UDP or TCP headers are cut short or inconsistent.
    pub malformed_frames: u64,
    /// IPv4 fragments received.
    pub ip_fragments: u64,
    /// Datagrams completed from fragments.
    pub ip_reassembled: u64,
    /// Fragments or partial datagrams dropped (table full, timeout, overlap, too large).
    pub ip_fragments_dropped: u64,
    /// TCP segments on a DNS port carrying payload.
    pub tcp_segments: u64,
    /// TCP bytes dropped (gap, buffer or flow table full, timeout).
    pub tcp_bytes_dropped: u64,
}

/// Turns frames into DNS messages. One per worker; not shared between threads.
pub struct Decoder {}

impl Decoder {
    /// A decoder with empty reassembly tables.
    pub fn new(settings: DecodeSettings) -> Self {
        let _ = settings;
        todo!()
    }

    /// Decodes one frame and calls `emit` once for each complete DNS message it carries
    /// or completes (zero, one, or several for TCP).
    pub fn decode<F: FnMut(DnsPacket<'_>)>(&mut self, frame: &Frame<'_>, emit: F) {
        let _ = (frame, emit);
        todo!()
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        todo!()
    }
}
