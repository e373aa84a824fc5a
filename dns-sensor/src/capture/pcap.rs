//! Classic pcap and pcapng files: a streaming reader and a classic pcap writer.
//!
//! The reader keeps one buffer of [`BUFFER_SIZE`] bytes, refilled by `read` when the
//! next record does not fit in what is left of it, and hands frames out as slices into
//! it: after `open` it allocates nothing and copies nothing (the only copy is the few
//! bytes of an incomplete record moved to the front before a refill). Record headers
//! are parsed in place from the buffer. Every length read from the file is bounded
//! before it is trusted, and a file that ends mid-record is reported as
//! [`CaptureError::Truncated`] at the start of that record, after every complete frame
//! before it was handed out.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{CaptureError, Frame, LinkType};
use crate::{Nanos, NANOS_PER_SEC};

/// Largest captured length accepted for one frame (the snaplen tcpdump uses).
///
/// Anything above it is taken as a corrupt length field rather than a real frame, so a
/// flipped bit cannot make the reader allocate gigabytes.
pub const MAX_CAPLEN: usize = 256 * 1024;

/// Largest pcapng block read into memory: a maximal packet plus room for its options.
/// Blocks the reader does not use are skipped without buffering and only need to fit
/// in a `u32`.
pub(super) const MAX_BUFFERED_BLOCK: usize = MAX_CAPLEN + 64 * 1024;

/// The reader's buffer: room for the largest record it accepts, with the rest for
/// fewer, larger reads.
pub const BUFFER_SIZE: usize = 512 * 1024;

/// Most interfaces one pcapng section may describe: real files have a handful, and the
/// bound keeps a hostile file from growing the interface table without end.
pub(super) const MAX_INTERFACES: usize = 4096;

pub(super) const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub(super) const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
pub(super) const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
pub(super) const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
pub(super) const PCAPNG_IDB: u32 = 1;
pub(super) const PCAPNG_PB: u32 = 2;
pub(super) const PCAPNG_SPB: u32 = 3;
pub(super) const PCAPNG_EPB: u32 = 6;

/// The snaplen written by [`PcapWriter`]; longer frames are cut to it.
pub const WRITER_SNAPLEN: u32 = 262_144;

/// How one pcapng interface stamps time (`if_tsresol`); classic pcap needs no table.
#[derive(Clone, Copy, Debug)]
pub(super) enum TsScale {
    /// Units of 10^-v s with v <= 9: multiply by 10^(9-v) to get nanoseconds.
    Mul(u64),
    /// Units of 10^-v s with v > 9: divide by 10^(v-9).
    Div(u128),
    /// Units of 2^-v s.
    Pow2(u32),
}

impl TsScale {
    /// From a pcapng `if_tsresol` byte: high bit set means a power of two.
    pub(super) fn from_tsresol(v: u8) -> Self {
        if v & 0x80 != 0 {
            TsScale::Pow2(u32::from(v & 0x7f))
        } else if v <= 9 {
            TsScale::Mul(10u64.pow(9 - u32::from(v)))
        } else {
            // 10^38 is the largest power of ten a u128 holds; finer resolutions are
            // nonsense, and clamping keeps the arithmetic total.
            TsScale::Div(10u128.pow(u32::from(v.min(38)) - 9))
        }
    }

    /// Converts a tick count to nanoseconds, saturating at `u64::MAX`.
    #[inline]
    pub(super) fn to_nanos(self, ticks: u64) -> Nanos {
        match self {
            TsScale::Mul(m) => ticks.saturating_mul(m),
            TsScale::Div(d) => saturate(u128::from(ticks) / d),
            TsScale::Pow2(shift) => {
                // ticks * 1e9 < 2^94: no overflow in u128; shifts >= 128 mean "zero".
                let ns = u128::from(ticks) * u128::from(NANOS_PER_SEC);
                saturate(ns.checked_shr(shift).unwrap_or(0))
            }
        }
    }
}

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// One pcapng Interface Description Block, as far as this reader cares.
#[derive(Clone, Copy, Debug)]
pub(super) struct Interface {
    /// `None` when the link type is not one the sensor decodes.
    pub(super) link: Option<LinkType>,
    pub(super) scale: TsScale,
    /// `if_tsoffset` in nanoseconds (seconds to add to every timestamp, saturated).
    pub(super) offset_ns: i64,
}

impl Interface {
    #[inline]
    pub(super) fn timestamp(&self, ticks: u64) -> Nanos {
        let ns = self.scale.to_nanos(ticks);
        if self.offset_ns >= 0 {
            ns.saturating_add(self.offset_ns as u64)
        } else {
            ns.saturating_sub(self.offset_ns.unsigned_abs())
        }
    }
}

/// What kind of file is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Classic pcap; `nanos` for the nanosecond magic.
    Pcap { nanos: bool },
    /// pcapng: the byte order and interfaces are those of the current section.
    Pcapng,
}

/// A frame read into the buffer but not yet handed out.
#[derive(Clone, Copy, Debug)]
struct Pending {
    ts: Nanos,
    link: LinkType,
    start: usize,
    len: usize,
}

/// Reads frames from one classic pcap (either byte order, micro- or nanosecond) or
/// pcapng file, through one buffer: no allocation or copy per frame.
///
/// Link types: Ethernet (1), Linux SLL (113), SLL2 (276), raw IP (101, 12, 14 and the
/// IPv4/IPv6-only 228, 229) and BSD loopback (0, 108). Frames of any other link type
/// are skipped and counted in [`skipped_frames`](Self::skipped_frames). pcapng Simple
/// Packet Blocks carry no timestamp: they get the timestamp of the file's previous
/// frame (0 before any).
///
/// Errors are final: after one is returned, the reader yields `Ok(None)`.
pub struct CaptureReader {
    name: String,
    src: Box<dyn Read + Send>,
    /// `buf[pos..end]` is read from the file and not consumed yet.
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    /// The source has reported its end.
    eof: bool,
    kind: Kind,
    /// Byte order of the file (classic) or of the current section (pcapng).
    big_endian: bool,
    /// Classic pcap: the file's link type.
    link: Option<LinkType>,
    /// pcapng: the interfaces of the current section, indexed by interface id.
    interfaces: Vec<Interface>,
    pending: Option<Pending>,
    skipped: u64,
    last_ts: Nanos,
    finished: bool,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("offset", &self.offset())
            .field("kind", &self.kind)
            .field("big_endian", &self.big_endian)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

/// Reads a `u16` of the given byte order.
fn u16_at(b: [u8; 2], big_endian: bool) -> u16 {
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

/// Reads a `u32` of the given byte order.
fn u32_at(b: [u8; 4], big_endian: bool) -> u32 {
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Bytes `at..at + N` of `b`, which the caller has checked to be long enough.
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl CaptureReader {
    /// Opens `path` and reads its file header.
    ///
    /// A file of fewer than 4 bytes (an empty file included) is `Truncated` at offset 0:
    /// nothing says it is not a capture cut short. Four or more bytes that are neither
    /// pcap magic nor a pcapng Section Header Block are `NotACapture`.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(&name, file)
    }

    /// Reads from any byte stream; `name` stands for the file in errors. The file header
    /// is read and judged as in [`open`](Self::open).
    pub fn from_reader(
        name: &str,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let mut me = CaptureReader {
            name: name.to_string(),
            src: Box::new(reader),
            buf: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            kind: Kind::Pcapng,
            big_endian: false,
            link: None,
            interfaces: Vec::new(),
            pending: None,
            skipped: 0,
            last_ts: 0,
            finished: false,
        };
        me.read_file_header()?;
        Ok(me)
    }

    /// The timestamp of the next frame, reading it into the buffer if needed, without
    /// consuming it. `Ok(None)` at a clean end of file.
    ///
    /// Several readers can be merged in time order by always taking the frame of the
    /// reader whose `peek_ts` is smallest.
    pub fn peek_ts(&mut self) -> Result<Option<Nanos>, CaptureError> {
        if self.pending.is_none() {
            self.advance()?;
        }
        Ok(self.pending.map(|p| p.ts))
    }

    /// The next frame. `Ok(None)` at a clean end of file; `Err(Truncated)` when the file
    /// ends inside a record (every complete frame before it was returned).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.pending.is_none() {
            self.advance()?;
        }
        Ok(self.pending.take().map(|p| Frame {
            ts: p.ts,
            link: p.link,
            data: &self.buf[p.start..p.start + p.len],
        }))
    }

    /// Bytes of the file consumed so far (a frame seen by [`peek_ts`](Self::peek_ts)
    /// counts as consumed: it has been read from the file).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Frames skipped because their link type is not one this sensor decodes.
    pub fn skipped_frames(&self) -> u64 {
        self.skipped
    }

    /// The link type of the file (classic pcap) or of its first interface (pcapng),
    /// `None` when it is not one this sensor decodes or no interface was described yet.
    pub fn link_type(&self) -> Option<LinkType> {
        match self.kind {
            Kind::Pcap { .. } => self.link,
            Kind::Pcapng => self.interfaces.first().and_then(|i| i.link),
        }
    }

    /// Makes the next frame of a decodable link type pending, skipping others; leaves
    /// nothing pending at the end of the file.
    ///
    /// The common case, a packet record wholly in the buffer, takes a fast path that
    /// parses it in place with the byte order fixed at compile time; anything else (a
    /// record to read first, a section or interface block, a frame to skip, every
    /// error) goes the general way, which starts again from the same record.
    #[inline]
    fn advance(&mut self) -> Result<(), CaptureError> {
        if !self.finished {
            let fast = match self.kind {
                Kind::Pcap { nanos: false } if self.big_endian => self.pcap_fast::<true, false>(),
                Kind::Pcap { nanos: false } => self.pcap_fast::<false, false>(),
                Kind::Pcap { nanos: true } if self.big_endian => self.pcap_fast::<true, true>(),
                Kind::Pcap { nanos: true } => self.pcap_fast::<false, true>(),
                Kind::Pcapng if self.big_endian => self.epb_fast::<true>(),
                Kind::Pcapng => self.epb_fast::<false>(),
            };
            if let Some(p) = fast {
                self.last_ts = p.ts;
                self.pending = Some(p);
                return Ok(());
            }
        }
        self.pending = self.fill_next()?;
        Ok(())
    }

    /// A classic record whose header and data are both in the buffer, of a decodable
    /// link type and a length within bounds; `None` for anything else.
    #[inline]
    fn pcap_fast<const BE: bool, const NANOS: bool>(&mut self) -> Option<Pending> {
        let link = self.link?;
        let rest = &self.buf[self.pos..self.end];
        let hdr = rest.first_chunk::<16>()?;
        let caplen = u32_at(field(hdr, 8), BE) as usize;
        if caplen > MAX_CAPLEN || rest.len() - 16 < caplen {
            return None;
        }
        let secs = u64::from(u32_at(field(hdr, 0), BE));
        let frac = u64::from(u32_at(field(hdr, 4), BE));
        let frac_ns = if NANOS {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        let start = self.pos + 16;
        self.pos = start + caplen;
        Some(Pending {
            ts: secs.saturating_mul(NANOS_PER_SEC).saturating_add(frac_ns),
            link,
            start,
            len: caplen,
        })
    }

    /// A pcapng Enhanced Packet Block wholly in the buffer, well formed, on a described
    /// interface of a decodable link type; `None` for anything else.
    #[inline]
    fn epb_fast<const BE: bool>(&mut self) -> Option<Pending> {
        let rest = &self.buf[self.pos..self.end];
        let hdr = rest.first_chunk::<28>()?;
        let total = u32_at(field(hdr, 4), BE) as usize;
        if u32_at(field(hdr, 0), BE) != PCAPNG_EPB
            || total % 4 != 0
            || !(32..=MAX_BUFFERED_BLOCK).contains(&total)
            || rest.len() < total
            || u32_at(field(rest, total - 4), BE) as usize != total
        {
            return None;
        }
        let caplen = u32_at(field(hdr, 20), BE) as usize;
        // Body: total - 12 bytes, of which 20 of packet header before the data.
        if caplen > MAX_CAPLEN || caplen > total - 32 {
            return None;
        }
        let iface = self.interfaces.get(u32_at(field(hdr, 8), BE) as usize)?;
        let link = iface.link?;
        let hi = u64::from(u32_at(field(hdr, 12), BE));
        let lo = u64::from(u32_at(field(hdr, 16), BE));
        let ts = iface.timestamp((hi << 32) | lo);
        let start = self.pos + 28;
        self.pos += total;
        Some(Pending {
            ts,
            link,
            start,
            len: caplen,
        })
    }

    /// Reads the next frame of a decodable link type, skipping others.
    #[inline(never)]
    fn fill_next(&mut self) -> Result<Option<Pending>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let res = match self.kind {
            Kind::Pcap { nanos } => self.next_pcap_record(nanos),
            Kind::Pcapng => self.next_pcapng_packet(),
        };
        match res {
            Ok(Some(p)) => {
                self.last_ts = p.ts;
                Ok(Some(p))
            }
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    /// Makes at least `need` (at most [`BUFFER_SIZE`]) unconsumed bytes available;
    /// `false` when the file ends first.
    #[inline]
    fn ensure(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        self.refill(need)
    }

    #[cold]
    #[inline(never)]
    fn refill(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.pos + need > self.buf.len() || self.pos == self.end {
            // Move the incomplete record to the front.
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end - self.pos < need && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Io {
                        path: self.name.clone(),
                        source,
                    })
                }
            }
        }
        Ok(self.end - self.pos >= need)
    }

    /// Consumes `len` bytes, reading and dropping what the buffer does not hold; the
    /// record they belong to starts at `start`.
    fn skip(&mut self, len: u64, start: u64) -> Result<(), CaptureError> {
        let mut left = len;
        loop {
            let avail = (self.end - self.pos) as u64;
            if avail >= left {
                self.pos += left as usize;
                return Ok(());
            }
            left -= avail;
            self.pos = self.end;
            if !self.refill(1)? {
                return Err(self.truncated(start, "pcapng block body"));
            }
        }
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        if !self.ensure(4)? {
            return Err(self.truncated(0, "file header (fewer than 4 bytes)"));
        }
        let magic = field::<4>(&self.buf, self.pos);
        let (be, le) = (u32::from_be_bytes(magic), u32::from_le_bytes(magic));
        if be == PCAPNG_SHB {
            self.kind = Kind::Pcapng;
            // The first block must be a section header; it is read like any later one.
            return self.read_shb(0);
        }
        let (big_endian, nanos) = match (be, le) {
            (MAGIC_MICROS, _) => (true, false),
            (MAGIC_NANOS, _) => (true, true),
            (_, MAGIC_MICROS) => (false, false),
            (_, MAGIC_NANOS) => (false, true),
            _ => {
                return Err(CaptureError::NotACapture {
                    path: self.name.clone(),
                    magic: be,
                })
            }
        };
        if !self.ensure(24)? {
            return Err(self.truncated(0, "pcap file header"));
        }
        // Only the low 16 bits name the link type; the upper ones carry FCS information.
        let linktype = u32_at(field(&self.buf, self.pos + 20), big_endian) & 0xffff;
        self.pos += 24;
        self.kind = Kind::Pcap { nanos };
        self.big_endian = big_endian;
        self.link = LinkType::from_linktype(linktype);
        Ok(())
    }

    fn next_pcap_record(&mut self, nanos: bool) -> Result<Option<Pending>, CaptureError> {
        let big_endian = self.big_endian;
        loop {
            let start = self.offset();
            if !self.ensure(16)? {
                if self.pos == self.end {
                    return Ok(None);
                }
                return Err(self.truncated(start, "pcap record header"));
            }
            let hdr: [u8; 16] = field(&self.buf, self.pos);
            let secs = u64::from(u32_at(field(&hdr, 0), big_endian));
            let frac = u64::from(u32_at(field(&hdr, 4), big_endian));
            let caplen = u32_at(field(&hdr, 8), big_endian) as usize;
            if caplen > MAX_CAPLEN {
                return Err(self.malformed(
                    start,
                    format!("captured length {caplen} exceeds {MAX_CAPLEN}"),
                ));
            }
            if !self.ensure(16 + caplen)? {
                return Err(self.truncated(start, "pcap record body"));
            }
            let data = self.pos + 16;
            self.pos = data + caplen;
            let Some(link) = self.link else {
                self.skipped += 1;
                continue;
            };
            let frac_ns = if nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            };
            let ts = secs.saturating_mul(NANOS_PER_SEC).saturating_add(frac_ns);
            return Ok(Some(Pending {
                ts,
                link,
                start: data,
                len: caplen,
            }));
        }
    }

    fn next_pcapng_packet(&mut self) -> Result<Option<Pending>, CaptureError> {
        loop {
            let start = self.offset();
            if !self.ensure(8)? {
                if self.pos == self.end {
                    return Ok(None);
                }
                return Err(self.truncated(start, "pcapng block header"));
            }
            let big_endian = self.big_endian;
            let btype = u32_at(field(&self.buf, self.pos), big_endian);
            if btype == PCAPNG_SHB {
                self.read_shb(start)?;
                continue;
            }
            let total = u32_at(field(&self.buf, self.pos + 4), big_endian) as usize;
            if total % 4 != 0 || total < 12 {
                return Err(self.malformed(
                    start,
                    format!("block length {total} is not a multiple of 4 of at least 12"),
                ));
            }
            match btype {
                PCAPNG_IDB | PCAPNG_EPB | PCAPNG_SPB | PCAPNG_PB => {
                    if total > MAX_BUFFERED_BLOCK {
                        return Err(self.malformed(
                            start,
                            format!("block length {total} exceeds {MAX_BUFFERED_BLOCK}"),
                        ));
                    }
                    if !self.ensure(total)? {
                        return Err(self.truncated(start, "pcapng block body"));
                    }
                    let block = self.pos;
                    let trailer = u32_at(field(&self.buf, block + total - 4), big_endian);
                    if trailer as usize != total {
                        return Err(self.malformed(
                            start,
                            format!("trailing block length {trailer} differs from leading {total}"),
                        ));
                    }
                    self.pos += total;
                    // The body: after type and length, before the trailing length.
                    let body = block + 8..block + total - 4;
                    if btype == PCAPNG_IDB {
                        self.parse_idb(body, start)?;
                        continue;
                    }
                    if let Some(p) = self.parse_packet_block(btype, body, start)? {
                        return Ok(Some(p));
                    }
                }
                _ => self.skip(total as u64, start)?,
            }
        }
    }

    /// Reads a Section Header Block starting at `start` (the current position): its
    /// byte-order magic decides how the length and every later field is read. A new
    /// section forgets the previous section's interfaces.
    fn read_shb(&mut self, start: u64) -> Result<(), CaptureError> {
        if !self.ensure(12)? {
            return Err(self.truncated(start, "pcapng section header"));
        }
        let bom = field::<4>(&self.buf, self.pos + 8);
        let big_endian = match (u32::from_be_bytes(bom), u32::from_le_bytes(bom)) {
            (PCAPNG_BYTE_ORDER, _) => true,
            (_, PCAPNG_BYTE_ORDER) => false,
            _ => return Err(self.malformed(start, "bad section header byte-order magic".into())),
        };
        let total = u32_at(field(&self.buf, self.pos + 4), big_endian) as usize;
        // Type, length, byte-order magic, version (4), section length (8), trailer.
        if total % 4 != 0 || total < 28 {
            return Err(self.malformed(
                start,
                format!("section header length {total} is not a multiple of 4 of at least 28"),
            ));
        }
        self.big_endian = big_endian;
        self.interfaces.clear();
        // Version, section length and options tell the sensor nothing it needs.
        self.skip(total as u64, start)
    }

    fn parse_idb(&mut self, body: std::ops::Range<usize>, start: u64) -> Result<(), CaptureError> {
        let big_endian = self.big_endian;
        if body.len() < 8 {
            return Err(self.malformed(
                start,
                "interface description block shorter than 8 bytes".into(),
            ));
        }
        let body = &self.buf[body];
        let linktype = u32::from(u16_at(field(body, 0), big_endian));
        let mut iface = Interface {
            link: LinkType::from_linktype(linktype),
            scale: TsScale::Mul(1000),
            offset_ns: 0,
        };
        for (code, value) in Options::new(&body[8..], big_endian) {
            match (code, value.len()) {
                (9, 1) => iface.scale = TsScale::from_tsresol(value[0]),
                (14, 8) => {
                    let raw = field::<8>(value, 0);
                    let secs = if big_endian {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                    iface.offset_ns = secs.saturating_mul(NANOS_PER_SEC as i64);
                }
                _ => {}
            }
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(self.malformed(
                start,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        self.interfaces.push(iface);
        Ok(())
    }

    fn parse_packet_block(
        &mut self,
        btype: u32,
        body: std::ops::Range<usize>,
        start: u64,
    ) -> Result<Option<Pending>, CaptureError> {
        let big_endian = self.big_endian;
        let body_len = body.len();
        let b = &self.buf[body.clone()];
        // (interface id, timestamp ticks, captured length, data start within the body)
        let (iface_id, ticks, caplen, data_start) = match btype {
            PCAPNG_EPB | PCAPNG_PB => {
                if body_len < 20 {
                    return Err(self.malformed(start, "packet block shorter than 20 bytes".into()));
                }
                let iface_id = if btype == PCAPNG_EPB {
                    u32_at(field(b, 0), big_endian) as usize
                } else {
                    usize::from(u16_at(field(b, 0), big_endian))
                };
                let hi = u64::from(u32_at(field(b, 4), big_endian));
                let lo = u64::from(u32_at(field(b, 8), big_endian));
                let caplen = u32_at(field(b, 12), big_endian) as usize;
                (iface_id, Some((hi << 32) | lo), caplen, 20)
            }
            _ => {
                // Simple Packet Block: original length, then data up to the block's end.
                if body_len < 4 {
                    return Err(self.malformed(start, "simple packet block too short".into()));
                }
                let orig = u32_at(field(b, 0), big_endian) as usize;
                (0, None, orig.min(body_len - 4), 4)
            }
        };
        if caplen > MAX_CAPLEN || caplen > body_len - data_start {
            return Err(self.malformed(
                start,
                format!("captured length {caplen} exceeds the block or {MAX_CAPLEN}"),
            ));
        }
        let Some(iface) = self.interfaces.get(iface_id).copied() else {
            return Err(
                self.malformed(start, format!("packet on undescribed interface {iface_id}"))
            );
        };
        let Some(link) = iface.link else {
            self.skipped += 1;
            return Ok(None);
        };
        let ts = match ticks {
            Some(t) => iface.timestamp(t),
            None => self.last_ts,
        };
        Ok(Some(Pending {
            ts,
            link,
            start: body.start + data_start,
            len: caplen,
        }))
    }

    fn truncated(&self, offset: u64, what: &'static str) -> CaptureError {
        CaptureError::Truncated {
            path: self.name.clone(),
            offset,
            what,
        }
    }

    fn malformed(&self, offset: u64, what: String) -> CaptureError {
        CaptureError::Malformed {
            path: self.name.clone(),
            offset,
            what,
        }
    }
}

/// Iterates over pcapng options: (code, value) until `opt_endofopt` or the end.
struct Options<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl<'a> Options<'a> {
    fn new(data: &'a [u8], big_endian: bool) -> Self {
        Options { data, big_endian }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.len() < 4 {
            return None;
        }
        let code = u16_at(field(self.data, 0), self.big_endian);
        let len = usize::from(u16_at(field(self.data, 2), self.big_endian));
        if code == 0 || 4 + len > self.data.len() {
            // End of options, or a value running past the block: stop rather than guess.
            self.data = &[];
            return None;
        }
        let value = &self.data[4..4 + len];
        let padded = (4 + len + 3) & !3;
        self.data = self.data.get(padded..).unwrap_or(&[]);
        Some((code, value))
    }
}

/// Writes a classic pcap file (little-endian, nanosecond timestamps) of one link type.
///
/// The snaplen is [`WRITER_SNAPLEN`]; a longer frame is cut to it, with its original
/// length recorded, as a capture tool would.
pub struct PcapWriter<W: io::Write> {
    out: W,
}

impl<W: io::Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, link: LinkType) -> io::Result<Self> {
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        hdr[16..20].copy_from_slice(&WRITER_SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&link.linktype().to_le_bytes());
        out.write_all(&hdr)?;
        Ok(Self { out })
    }

    /// Appends one frame captured at `ts`.
    ///
    /// Timestamps past 2106 (beyond a 32-bit seconds field) are written as the last
    /// representable second.
    pub fn write(&mut self, ts: Nanos, data: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(ts / NANOS_PER_SEC).unwrap_or(u32::MAX);
        let frac = (ts % NANOS_PER_SEC) as u32;
        let caplen = data.len().min(WRITER_SNAPLEN as usize);
        let orig = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&secs.to_le_bytes());
        hdr[4..8].copy_from_slice(&frac.to_le_bytes());
        hdr[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        hdr[12..16].copy_from_slice(&orig.to_le_bytes());
        self.out.write_all(&hdr)?;
        self.out.write_all(&data[..caplen])
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[path = "pcap_tests.rs"]
mod tests;
