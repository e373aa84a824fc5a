//! Capture: where frames come from. Owns reading capture files (classic pcap and
//! pcapng), merging several in time order, writing classic pcap, and, with the `live` feature, the XDP program's
//! loader and the AF_XDP sockets it feeds. Hands out frames with their link type and
//! timestamp, nothing more.

#[cfg(feature = "live")]
pub mod afxdp;
pub mod merge;
pub mod pcap;
#[cfg(feature = "live")]
pub mod xdp;

pub use merge::read_merged;
pub use pcap::{CaptureReader, PcapWriter, STDIN_PATH};

use crate::Nanos;

/// How a frame's bytes begin: the capture's link-layer header type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet II, possibly with 802.1Q / 802.1ad tags (DLT_EN10MB, 1).
    Ethernet,
    /// Linux cooked capture v1 (DLT_LINUX_SLL, 113).
    LinuxSll,
    /// Linux cooked capture v2 (DLT_LINUX_SLL2, 276), what `tcpdump -i any` writes.
    LinuxSll2,
    /// Raw IPv4 or IPv6, version taken from the first nibble (DLT_RAW, 101; also 12, 14).
    RawIp,
    /// BSD loopback: a 4-byte address family in host or network order (DLT_NULL 0, DLT_LOOP 108).
    BsdLoopback,
}

impl LinkType {
    /// The link type for a pcap/pcapng `LINKTYPE_*` number, `None` for one this sensor
    /// does not decode. Raw IP is accepted under all its numbers: 101, the
    /// platform-specific DLT values 12 and 14 that some files carry, and the
    /// IPv4-only / IPv6-only 228 and 229.
    pub fn from_linktype(linktype: u32) -> Option<Self> {
        match linktype {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            101 | 12 | 14 | 228 | 229 => Some(LinkType::RawIp),
            0 | 108 => Some(LinkType::BsdLoopback),
            _ => None,
        }
    }

    /// The `LINKTYPE_*` number written to a pcap file header for this link type.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::RawIp => 101,
            LinkType::BsdLoopback => 0,
        }
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// When the frame was captured.
    pub ts: Nanos,
    /// How `data` begins.
    pub link: LinkType,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: &'a [u8],
}

/// What can go wrong reading or writing a capture file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start like a pcap or pcapng file.
    #[error("{path}: not a pcap or pcapng capture (magic {magic:#010x} at byte offset 0)")]
    NotACapture {
        /// The file.
        path: String,
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// The file ends inside a record: everything before `offset` was read.
    #[error("{path}: cut short at byte offset {offset}: {what}")]
    Truncated {
        /// The file.
        path: String,
        /// Where the incomplete record starts.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// A header or block is malformed beyond recovery.
    #[error("{path}: malformed at byte offset {offset}: {what}")]
    Malformed {
        /// The file.
        path: String,
        /// Where the bad header or block starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}
