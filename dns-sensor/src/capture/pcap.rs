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
//!
//! # Why hand-written, not pcap-parser
//!
//! Measured on 2026-12-01 against the same reader built on `pcap-parser` 0.17
//! (rusticata: its streaming `LegacyPcapReader` and `PcapNGReader` over the same
//! buffer size, with what the sensor promises added around them; commit 94ee26d has
//! both side by side, `docs/performance.md` "Reading captures: pcap-parser or our own"
//! has the commands): a generated mix read end to end costs, per frame,
//!
//! | | this reader | on pcap-parser |
//! |---|---|---|
//! | classic pcap, callgrind instructions | 94 | 238 |
//! | pcapng, callgrind instructions | 146 | 537 |
//! | classic pcap, criterion | 11.4 ns | 34.5 ns (3.0x) |
//! | pcapng, criterion | 16.3 ns | 80.9 ns (5.0x) |
//!
//! (the instruction counts include about 30 of the bench's own loop). The bar set
//! before measuring was that the crate is kept unless the hand-written reader saves at
//! least 45 instructions a frame (5 % of the sensor's 900-instruction budget) on either
//! format, with criterion agreeing by 1.2x or more: it saves 144 and 391. The crate
//! also leaves out what the sensor needs from a reader, which a wrapper had to add
//! back with its own reading of record and block headers: errors with the byte offset
//! of the record, `Truncated` told apart from a block whose contents run past its
//! length (on which the crate's reader refills for ever), the length bounds, blocks of
//! any size or contents skipped, the obsolete Packet Block, `if_tsoffset` in
//! big-endian sections (it reads it little-endian), and the `io::Error` of a failed
//! read.

use crate::files::shown;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{CaptureError, Frame, LinkType};
use crate::{Nanos, NANOS_PER_SEC};

/// Runs `$body` with `$fast` bound to the fast record reader for `$reader`'s format
/// and byte order, each one compiled for its case: the one place that maps a file's
/// kind to its reader, for both the frame-by-frame and the straight-through loops.
macro_rules! with_fast_reader {
    ($reader:expr, $fast:ident => $body:expr) => {
        match ($reader.kind, $reader.big_endian) {
            (Kind::Pcap { nanos: false }, true) => {
                let $fast = Self::pcap_fast::<true, false>;
                $body
            }
            (Kind::Pcap { nanos: false }, false) => {
                let $fast = Self::pcap_fast::<false, false>;
                $body
            }
            (Kind::Pcap { nanos: true }, true) => {
                let $fast = Self::pcap_fast::<true, true>;
                $body
            }
            (Kind::Pcap { nanos: true }, false) => {
                let $fast = Self::pcap_fast::<false, true>;
                $body
            }
            (Kind::Pcapng, true) => {
                let $fast = Self::epb_fast::<true>;
                $body
            }
            (Kind::Pcapng, false) => {
                let $fast = Self::epb_fast::<false>;
                $body
            }
        }
    };
}

/// Largest captured length accepted for one frame (the snaplen tcpdump uses).
///
/// Anything above it is taken as a corrupt length field rather than a real frame, so a
/// flipped bit cannot make the reader allocate gigabytes.
pub const MAX_CAPLEN: usize = 256 * 1024;

/// Largest pcapng block read into memory: a maximal packet plus room for its options.
/// Blocks the reader does not use are skipped without buffering and only need to fit
/// in a `u32`.
const MAX_BUFFERED_BLOCK: usize = MAX_CAPLEN + 64 * 1024;

/// The reader's buffer: room for the largest record it accepts, with the rest for
/// fewer, larger reads.
pub const BUFFER_SIZE: usize = 512 * 1024;

/// The path that stands for standard input ([`CaptureReader::open_or_stdin`]).
pub const STDIN_PATH: &str = "-";

/// Most interfaces one pcapng section may describe: real files have a handful, and the
/// bound keeps a hostile file from growing the interface table without end.
const MAX_INTERFACES: usize = 4096;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// The snaplen written by [`PcapWriter`]; longer frames are cut to it.
pub const WRITER_SNAPLEN: u32 = 262_144;

/// How one pcapng interface stamps time (`if_tsresol`); classic pcap needs no table.
#[derive(Clone, Copy, Debug)]
enum TsScale {
    /// Units of 10^-v s with v <= 9: multiply by 10^(9-v) to get nanoseconds.
    Mul(u64),
    /// Units of 10^-v s with v > 9: divide by 10^(v-9).
    Div(u128),
    /// Units of 2^-v s.
    Pow2(u32),
}

impl TsScale {
    /// From a pcapng `if_tsresol` byte: high bit set means a power of two.
    fn from_tsresol(v: u8) -> Self {
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
    fn to_nanos(self, ticks: u64) -> Nanos {
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
struct Interface {
    /// `None` when the link type is not one the sensor decodes.
    link: Option<LinkType>,
    scale: TsScale,
    /// `if_tsoffset` in nanoseconds (seconds to add to every timestamp, saturated).
    offset_ns: i64,
}

impl Interface {
    #[inline]
    fn timestamp(&self, ticks: u64) -> Nanos {
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

/// A classic record's time: seconds and a fraction in micro- or nanoseconds. Cannot
/// overflow: 2^32 seconds and as many microseconds are under 2^63 nanoseconds.
#[inline]
fn classic_ts(secs: u32, frac: u32, nanos: bool) -> Nanos {
    let frac_ns = if nanos {
        u64::from(frac)
    } else {
        u64::from(frac) * 1000
    };
    u64::from(secs) * NANOS_PER_SEC + frac_ns
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

/// A byte stream that adds what is read from it to a shared count.
struct Counted<R> {
    inner: R,
    bytes_read: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    fn new(inner: R, bytes_read: Arc<AtomicU64>) -> Self {
        Self { inner, bytes_read }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl CaptureReader {
    /// Opens `path` and reads its file header.
    ///
    /// A file of fewer than 4 bytes (an empty file included) is `Truncated` at offset 0:
    /// nothing says it is not a capture cut short. Four or more bytes that are neither
    /// pcap magic nor a pcapng Section Header Block are `NotACapture`.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = shown(path);
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(&name, file)
    }

    /// Opens `path` as [`open`](Self::open) does, or standard input when `path` is
    /// [`STDIN_PATH`] (`-`, as in `tcpdump -w - | dns-sensor replay -`); errors then
    /// name it "standard input".
    pub fn open_or_stdin(path: &Path) -> Result<Self, CaptureError> {
        Self::open_counting(path, Arc::default())
    }

    /// Opens `path` as [`open_or_stdin`](Self::open_or_stdin) does, adding every byte
    /// read from it to `bytes_read` (for a progress display: the count moves once a
    /// buffer, not once a frame).
    pub fn open_counting(path: &Path, bytes_read: Arc<AtomicU64>) -> Result<Self, CaptureError> {
        if path == Path::new(STDIN_PATH) {
            return Self::from_reader("standard input", Counted::new(io::stdin(), bytes_read));
        }
        let name = shown(path);
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(&name, Counted::new(file, bytes_read))
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

    /// Calls `each` with every frame left, in file order: what [`next_frame`] gives, in
    /// a loop specialised to the file's format. Reading one file straight through, the
    /// records the fast readers take go from the buffer to `each` without being held
    /// as the pending frame, and without the per-record choice of reader: 60
    /// instructions a frame less on the resolver mix. `Err(Truncated)` as
    /// [`next_frame`] gives it, after every complete frame.
    ///
    /// [`next_frame`]: Self::next_frame
    pub fn for_each_frame(&mut self, mut each: impl FnMut(&Frame<'_>)) -> Result<(), CaptureError> {
        loop {
            // The byte order can change at a pcapng section: chosen again after every
            // record the general reader takes.
            with_fast_reader!(self, fast => self.run_fast(&mut each, fast));
            match self.next_frame()? {
                Some(frame) => each(&frame),
                None => return Ok(()),
            }
        }
    }

    /// Hands `each` the records `fast` takes, until one it does not.
    #[inline(always)]
    fn run_fast(
        &mut self,
        each: &mut impl FnMut(&Frame<'_>),
        fast: impl Fn(&mut Self) -> Option<Pending>,
    ) {
        if self.pending.is_some() || self.finished {
            return;
        }
        while let Some(p) = fast(self) {
            self.last_ts = p.ts;
            each(&Frame {
                ts: p.ts,
                link: p.link,
                data: &self.buf[p.start..p.start + p.len],
            });
        }
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
            let fast = with_fast_reader!(self, fast => fast(self));
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
        let secs = u32_at(field(hdr, 0), BE);
        let frac = u32_at(field(hdr, 4), BE);
        let start = self.pos + 16;
        self.pos = start + caplen;
        Some(Pending {
            ts: classic_ts(secs, frac, NANOS),
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
            let secs = u32_at(field(&hdr, 0), big_endian);
            let frac = u32_at(field(&hdr, 4), big_endian);
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
            return Ok(Some(Pending {
                ts: classic_ts(secs, frac, nanos),
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
mod tests {
    use super::*;
    use std::io::Cursor;

    const ALL_LINKS: [LinkType; 5] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::BsdLoopback,
    ];

    fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
        CaptureReader::from_reader("test", Cursor::new(bytes))
    }

    /// Every frame as (ts, link, bytes), and the error that ended the file, if any.
    type Drained = (Vec<(Nanos, LinkType, Vec<u8>)>, Option<CaptureError>);

    fn drain(r: &mut CaptureReader) -> Drained {
        let mut out = Vec::new();
        loop {
            match r.next_frame() {
                Ok(Some(f)) => out.push((f.ts, f.link, f.data.to_vec())),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    /// [`drain`] through [`CaptureReader::for_each_frame`].
    fn drain_each(r: &mut CaptureReader) -> Drained {
        let mut out = Vec::new();
        let end = r.for_each_frame(|f| out.push((f.ts, f.link, f.data.to_vec())));
        (out, end.err())
    }

    fn sample_frames() -> Vec<(Nanos, Vec<u8>)> {
        vec![
            (1_700_000_000_123_456_789, vec![0x45; 60]),
            (1_700_000_001_000_000_001, (0..=255u8).collect()),
            (1_700_000_002_999_999_999, vec![7; 1]),
        ]
    }

    fn written(link: LinkType, frames: &[(Nanos, Vec<u8>)]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), link).unwrap();
        for (ts, data) in frames {
            w.write(*ts, data).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn writer_output_reads_back_for_every_link_type() {
        let frames = sample_frames();
        for link in ALL_LINKS {
            let bytes = written(link, &frames);
            let total = bytes.len() as u64;
            assert_eq!(
                &bytes[0..4],
                &[0x4d, 0x3c, 0xb2, 0xa1],
                "LE nanosecond magic"
            );
            assert_eq!(
                u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
                262_144
            );
            let mut r = reader(bytes).unwrap();
            assert_eq!(r.link_type(), Some(link));
            let (got, err) = drain(&mut r);
            assert!(err.is_none(), "{err:?}");
            let want: Vec<_> = frames.iter().map(|(t, d)| (*t, link, d.clone())).collect();
            assert_eq!(got, want);
            assert_eq!(r.offset(), total);
            assert_eq!(r.skipped_frames(), 0);
        }
    }

    #[test]
    fn writer_cuts_frames_longer_than_snaplen() {
        let big = vec![1u8; WRITER_SNAPLEN as usize + 10];
        let bytes = written(LinkType::RawIp, &[(5, big)]);
        assert_eq!(
            u32::from_le_bytes(bytes[36..40].try_into().unwrap()),
            WRITER_SNAPLEN + 10,
            "original length kept"
        );
        let (got, err) = drain(&mut reader(bytes).unwrap());
        assert!(err.is_none());
        assert_eq!(got[0].2.len(), WRITER_SNAPLEN as usize);
    }

    /// A classic pcap file built by hand: magic, byte order, link type, records of
    /// (seconds, fraction, data).
    fn classic(magic: u32, be: bool, linktype: u32, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut b = Vec::new();
        b.extend(w32(magic));
        b.extend(w16(2));
        b.extend(w16(4));
        b.extend(w32(0));
        b.extend(w32(0));
        b.extend(w32(65535));
        b.extend(w32(linktype));
        for (s, f, d) in recs {
            b.extend(w32(*s));
            b.extend(w32(*f));
            b.extend(w32(d.len() as u32));
            b.extend(w32(d.len() as u32));
            b.extend_from_slice(d);
        }
        b
    }

    #[test]
    fn hand_built_headers_in_both_byte_orders_and_resolutions() {
        let recs: &[(u32, u32, &[u8])] = &[(1, 500_000, b"abcd"), (u32::MAX, 999_999, b"e")];
        for be in [false, true] {
            let bytes = classic(MAGIC_MICROS, be, 1, recs);
            let (got, err) = drain(&mut reader(bytes).unwrap());
            assert!(err.is_none());
            assert_eq!(
                got[0],
                (1_500_000_000, LinkType::Ethernet, b"abcd".to_vec())
            );
            assert_eq!(got[1].0, u64::from(u32::MAX) * NANOS_PER_SEC + 999_999_000);

            let bytes = classic(MAGIC_NANOS, be, 101, recs);
            let (got, err) = drain(&mut reader(bytes).unwrap());
            assert!(err.is_none());
            assert_eq!(got[0], (1_000_500_000, LinkType::RawIp, b"abcd".to_vec()));
        }
        // The big-endian header really is big-endian on disk.
        assert_eq!(
            &classic(MAGIC_MICROS, true, 1, &[])[0..4],
            &[0xa1, 0xb2, 0xc3, 0xd4]
        );
    }

    #[test]
    fn fcs_bits_of_the_link_type_field_are_ignored() {
        let bytes = classic(MAGIC_MICROS, false, 0x1000_0000 | 1, &[(1, 0, b"x")]);
        let (got, _) = drain(&mut reader(bytes).unwrap());
        assert_eq!(got[0].1, LinkType::Ethernet);
    }

    #[test]
    fn undecodable_link_type_frames_are_skipped_and_counted() {
        let recs: &[(u32, u32, &[u8])] = &[(1, 0, b"a"), (2, 0, b"b"), (3, 0, b"c")];
        let mut r = reader(classic(MAGIC_MICROS, false, 105, recs)).unwrap();
        assert_eq!(r.link_type(), None);
        let (got, err) = drain(&mut r);
        assert!(got.is_empty() && err.is_none());
        assert_eq!(r.skipped_frames(), 3);
    }

    #[test]
    fn truncation_at_every_offset_returns_complete_frames_then_the_record_start() {
        let frames = sample_frames();
        let full = written(LinkType::Ethernet, &frames);
        // Record starts: 24, then each record is 16 bytes of header plus its data.
        let mut starts = vec![24usize];
        for (_, d) in &frames {
            starts.push(starts.last().unwrap() + 16 + d.len());
        }
        for cut in 0..full.len() {
            let res = reader(full[..cut].to_vec());
            if cut < 24 {
                match res {
                    Err(CaptureError::Truncated { offset: 0, .. }) => continue,
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
            let mut r = res.unwrap();
            let (got, err) = drain(&mut r);
            let complete = starts.iter().skip(1).filter(|&&end| end <= cut).count();
            assert_eq!(got.len(), complete, "cut {cut}");
            if starts.contains(&cut) {
                assert!(err.is_none(), "cut {cut} at a record boundary: {err:?}");
            } else {
                match err {
                    Some(CaptureError::Truncated { offset, .. }) => {
                        assert_eq!(offset as usize, starts[complete], "cut {cut}")
                    }
                    other => panic!("cut {cut}: {other:?}"),
                }
                // Errors are final.
                assert!(matches!(r.next_frame(), Ok(None)));
            }
        }
    }

    #[test]
    fn empty_file_is_truncated_at_zero_and_text_is_not_a_capture() {
        assert!(matches!(
            reader(Vec::new()),
            Err(CaptureError::Truncated { offset: 0, .. })
        ));
        match reader(b"GET / HTTP/1.1\r\n\r\n".to_vec()) {
            Err(CaptureError::NotACapture { magic, .. }) => assert_eq!(magic, 0x4745_5420),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_caplen_is_malformed_at_its_record() {
        let mut bytes = classic(MAGIC_MICROS, false, 1, &[(1, 0, b"ok")]);
        let second = bytes.len();
        bytes.extend(1u32.to_le_bytes());
        bytes.extend(0u32.to_le_bytes());
        bytes.extend(0x7fff_ffffu32.to_le_bytes());
        bytes.extend(0x7fff_ffffu32.to_le_bytes());
        let (got, err) = drain(&mut reader(bytes).unwrap());
        assert_eq!(got.len(), 1);
        match err {
            Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, second),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn peek_ts_does_not_consume_and_lets_readers_merge() {
        let a = written(
            LinkType::Ethernet,
            &[(1, vec![1]), (4, vec![4]), (5, vec![5])],
        );
        let b = written(LinkType::RawIp, &[(2, vec![2]), (3, vec![3]), (6, vec![6])]);
        let mut rs = [reader(a).unwrap(), reader(b).unwrap()];
        assert_eq!(rs[0].peek_ts().unwrap(), Some(1));
        assert_eq!(rs[0].peek_ts().unwrap(), Some(1));
        let mut merged = Vec::new();
        loop {
            let mut best: Option<(usize, Nanos)> = None;
            for (i, r) in rs.iter_mut().enumerate() {
                if let Some(ts) = r.peek_ts().unwrap() {
                    if best.is_none_or(|(_, b)| ts < b) {
                        best = Some((i, ts));
                    }
                }
            }
            let Some((i, ts)) = best else { break };
            let f = rs[i].next_frame().unwrap().unwrap();
            assert_eq!(f.ts, ts);
            merged.push(f.data[0]);
        }
        assert_eq!(merged, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn tsresol_conversions_saturate_and_never_panic() {
        assert_eq!(TsScale::from_tsresol(6).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(9).to_nanos(42), 42);
        assert_eq!(TsScale::from_tsresol(0).to_nanos(u64::MAX), u64::MAX);
        assert_eq!(TsScale::from_tsresol(12).to_nanos(5_000), 5);
        assert_eq!(TsScale::from_tsresol(127).to_nanos(u64::MAX), 0);
        // 2^-10 s: 1024 ticks are one second.
        assert_eq!(TsScale::from_tsresol(0x8a).to_nanos(1024), NANOS_PER_SEC);
        assert_eq!(TsScale::from_tsresol(0x80).to_nanos(u64::MAX), u64::MAX);
        assert_eq!(TsScale::from_tsresol(0xff).to_nanos(u64::MAX), 0);
    }

    /// pcapng blocks built by hand, in either byte order.
    struct Ng {
        be: bool,
        out: Vec<u8>,
    }

    impl Ng {
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn u32(&self, v: u32) -> [u8; 4] {
            if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn block(&mut self, btype: u32, body: &[u8]) -> usize {
            let start = self.out.len();
            let mut body = body.to_vec();
            while body.len() % 4 != 0 {
                body.push(0);
            }
            let total = (body.len() + 12) as u32;
            let (t, l) = (self.u32(btype), self.u32(total));
            self.out.extend(t);
            self.out.extend(l);
            self.out.extend(body);
            self.out.extend(l);
            start
        }
        fn shb(&mut self) -> usize {
            let mut body = Vec::new();
            body.extend(self.u32(PCAPNG_BYTE_ORDER));
            body.extend(self.u16(1));
            body.extend(self.u16(0));
            body.extend((-1i64).to_le_bytes());
            self.block(PCAPNG_SHB, &body)
        }
        fn idb(&mut self, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> usize {
            let mut body = Vec::new();
            body.extend(self.u16(linktype));
            body.extend(self.u16(0));
            body.extend(self.u32(0));
            // An option the reader does not use comes first: if_name "eth0".
            body.extend(self.u16(2));
            body.extend(self.u16(4));
            body.extend(b"eth0");
            if let Some(r) = tsresol {
                body.extend(self.u16(9));
                body.extend(self.u16(1));
                body.extend([r, 0, 0, 0]);
            }
            if let Some(o) = tsoffset {
                body.extend(self.u16(14));
                body.extend(self.u16(8));
                body.extend(if self.be {
                    o.to_be_bytes()
                } else {
                    o.to_le_bytes()
                });
            }
            body.extend([0; 4]);
            self.block(PCAPNG_IDB, &body)
        }
        fn epb(&mut self, iface: u32, ticks: u64, data: &[u8]) -> usize {
            let mut body = Vec::new();
            body.extend(self.u32(iface));
            body.extend(self.u32((ticks >> 32) as u32));
            body.extend(self.u32(ticks as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(data);
            while body.len() % 4 != 0 {
                body.push(0);
            }
            // An epb_flags option, to be ignored.
            body.extend(self.u16(2));
            body.extend(self.u16(4));
            body.extend(self.u32(1));
            self.block(PCAPNG_EPB, &body)
        }
        fn pb(&mut self, iface: u16, ticks: u64, data: &[u8]) -> usize {
            let mut body = Vec::new();
            body.extend(self.u16(iface));
            body.extend(self.u16(0));
            body.extend(self.u32((ticks >> 32) as u32));
            body.extend(self.u32(ticks as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(data);
            self.block(PCAPNG_PB, &body)
        }
        fn spb(&mut self, data: &[u8]) -> usize {
            let mut body = Vec::new();
            body.extend(self.u32(data.len() as u32));
            body.extend(data);
            self.block(PCAPNG_SPB, &body)
        }
    }

    fn pcapng_two_sections() -> Vec<u8> {
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(1, None, None); // 0: Ethernet, microseconds by default
        ng.idb(101, Some(9), Some(-1)); // 1: raw IP, nanoseconds, one second earlier
        ng.epb(0, 1_000_001, b"eth-frame");
        ng.block(5, &[0xee; 20]); // Interface Statistics: skipped
        ng.epb(1, 3_000_000_007, b"raw!");
        ng.pb(0, 2_000_000, b"old");
        ng.spb(b"simple");
        ng.block(0x0bad_0001, &[0; 3]); // unknown block type: skipped
                                        // Second section, big-endian, with its own interface numbering.
        ng.be = true;
        ng.shb();
        ng.idb(276, Some(0x8a), None); // 0: SLL2, 2^-10 s
        ng.idb(147, None, None); // 1: a user link type: skipped
        ng.idb(0, Some(3), Some(10)); // 2: BSD loopback, milliseconds, +10 s
        ng.epb(0, 2048, b"sll2");
        ng.epb(1, 1, b"user");
        ng.epb(2, 1500, b"lo");
        ng.out
    }

    #[test]
    fn pcapng_sections_interfaces_and_packet_block_kinds() {
        let mut r = reader(pcapng_two_sections()).unwrap();
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{err:?}");
        let want: Vec<(Nanos, LinkType, Vec<u8>)> = vec![
            (1_000_001_000, LinkType::Ethernet, b"eth-frame".to_vec()),
            (2_000_000_007, LinkType::RawIp, b"raw!".to_vec()),
            (2_000_000_000, LinkType::Ethernet, b"old".to_vec()),
            // No timestamp of its own: the previous frame's.
            (2_000_000_000, LinkType::Ethernet, b"simple".to_vec()),
            (2 * NANOS_PER_SEC, LinkType::LinuxSll2, b"sll2".to_vec()),
            (11_500_000_000, LinkType::BsdLoopback, b"lo".to_vec()),
        ];
        assert_eq!(got, want);
        assert_eq!(r.skipped_frames(), 1);
        assert_eq!(r.offset(), pcapng_two_sections().len() as u64);
    }

    #[test]
    fn pcapng_truncated_at_every_offset_reports_the_block_start() {
        let mut ng = Ng {
            be: true,
            out: Vec::new(),
        };
        let shb = ng.shb();
        let idb = ng.idb(1, Some(6), None);
        let b1 = ng.epb(0, 1, b"first");
        let b2 = ng.block(5, &[1; 8]);
        let b3 = ng.epb(0, 2, b"second");
        let full = ng.out;
        let blocks = [shb, idb, b1, b2, b3, full.len()];
        for cut in 0..full.len() {
            let res = reader(full[..cut].to_vec());
            if cut < idb {
                assert!(
                    matches!(res, Err(CaptureError::Truncated { offset: 0, .. })),
                    "cut {cut}: {res:?}"
                );
                continue;
            }
            let (got, err) = drain(&mut res.unwrap());
            // The first frame is complete where the statistics block starts, the second at
            // the end of the file.
            let complete = [b2, full.len()].iter().filter(|&&end| end <= cut).count();
            assert_eq!(got.len(), complete, "cut {cut}");
            if blocks.contains(&cut) {
                assert!(err.is_none(), "cut {cut}: {err:?}");
            } else {
                let start = *blocks.iter().rfind(|&&b| b <= cut).unwrap();
                match err {
                    Some(CaptureError::Truncated { offset, .. }) => {
                        assert_eq!(offset as usize, start, "cut {cut}")
                    }
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn pcapng_malformed_blocks_are_reported_with_their_offset() {
        // Length not a multiple of 4.
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        let at = ng.idb(1, None, None);
        ng.out[at + 4] += 1;
        match drain(&mut reader(ng.out).unwrap()).1 {
            Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, at),
            other => panic!("{other:?}"),
        }
        // A packet on an interface never described.
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(1, None, None);
        ng.epb(0, 1, b"ok");
        let at = ng.epb(3, 1, b"bad");
        let (got, err) = drain(&mut reader(ng.out).unwrap());
        assert_eq!(got.len(), 1);
        match err {
            Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, at),
            other => panic!("{other:?}"),
        }
        // Captured length running past its block.
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(1, None, None);
        let at = ng.epb(0, 1, b"abcd");
        ng.out[at + 20] = 200;
        assert!(matches!(
            drain(&mut reader(ng.out).unwrap()).1,
            Some(CaptureError::Malformed { .. })
        ));
        // A section header with a bad byte-order magic.
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        ng.out[8] = 0;
        assert!(matches!(
            reader(ng.out),
            Err(CaptureError::Malformed { offset: 0, .. })
        ));
    }

    // ---- the shared real captures ----

    const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures");

    /// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// "2012-10-05 13:52:01.138640" (capinfos, UTC) as nanoseconds.
    fn capinfos_time(s: &str) -> Nanos {
        let n: Vec<i64> = s
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse().unwrap())
            .collect();
        let secs = days_from_civil(n[0], n[1], n[2]) * 86_400 + n[3] * 3600 + n[4] * 60 + n[5];
        secs as u64 * NANOS_PER_SEC + n[6] as u64 * 1000
    }

    struct CapInfo {
        packets: usize,
        link: LinkType,
        first: Nanos,
        last: Nanos,
    }

    fn capinfos() -> Vec<(String, CapInfo)> {
        let text = std::fs::read_to_string(format!("{CAPTURES}/peers/capinfos.txt")).unwrap();
        let mut out = Vec::new();
        for entry in text.split("===== ").skip(1) {
            let name = entry.lines().next().unwrap().trim().to_string();
            let field = |key: &str| {
                entry
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .unwrap_or_else(|| panic!("{name}: no {key}"))
                    .trim()
                    .to_string()
            };
            let link = match field("File encapsulation:").as_str() {
                "Ethernet" => LinkType::Ethernet,
                "Raw IP" | "Raw IPv4" => LinkType::RawIp,
                "NULL/Loopback" => LinkType::BsdLoopback,
                "Linux cooked-mode capture v2" => LinkType::LinuxSll2,
                "Linux cooked-mode capture v1" => LinkType::LinuxSll,
                other => panic!("{name}: encapsulation {other}"),
            };
            out.push((
                name.clone(),
                CapInfo {
                    packets: field("Number of packets:").parse().unwrap(),
                    link,
                    first: capinfos_time(&field("First packet time:")),
                    last: capinfos_time(&field("Last packet time:")),
                },
            ));
        }
        out
    }

    #[test]
    fn every_peer_capture_matches_capinfos() {
        let infos = capinfos();
        let mut files: Vec<String> = std::fs::read_dir(format!("{CAPTURES}/peers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".pcap"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 67);
        assert_eq!(infos.len(), files.len(), "capinfos covers every file");
        let mut seen_links = std::collections::HashSet::new();
        for name in &files {
            let info = &infos.iter().find(|(n, _)| n == name).unwrap().1;
            let path = format!("{CAPTURES}/peers/{name}");
            let mut r = CaptureReader::open(Path::new(&path)).unwrap();
            assert_eq!(r.link_type(), Some(info.link), "{name}");
            let (got, err) = drain(&mut r);
            assert!(err.is_none(), "{name}: {err:?}");
            assert_eq!(got.len(), info.packets, "{name}");
            assert_eq!(r.skipped_frames(), 0, "{name}");
            assert!(got.iter().all(|f| f.1 == info.link), "{name}");
            assert_eq!(got.first().unwrap().0, info.first, "{name}: first time");
            assert_eq!(got.last().unwrap().0, info.last, "{name}: last time");
            assert_eq!(
                r.offset(),
                std::fs::metadata(&path).unwrap().len(),
                "{name}"
            );
            seen_links.insert(format!("{:?}", info.link));
        }
        // The corpus exercises every odd link type the manifest names.
        for l in ["Ethernet", "RawIp", "BsdLoopback", "LinuxSll2"] {
            assert!(seen_links.contains(l), "{l}");
        }
    }

    #[test]
    fn peer_odd_formats_yield_their_link_types() {
        let cases = [
            ("packetq-sample-bigendian.pcap", LinkType::Ethernet, 2),
            ("dnscap-sll2.pcap", LinkType::LinuxSll2, 2),
            ("dnscap-frags.pcap", LinkType::RawIp, 495),
            (
                "suricata-verify-dns-udp-eve-log-srv_input.pcap",
                LinkType::RawIp,
                2,
            ),
            (
                "suricata-verify-dns-incomplete_input.pcap",
                LinkType::BsdLoopback,
                18,
            ),
        ];
        for (name, link, n) in cases {
            let path = format!("{CAPTURES}/peers/{name}");
            let mut r = CaptureReader::open(Path::new(&path)).unwrap();
            let (got, err) = drain(&mut r);
            assert!(err.is_none(), "{name}");
            assert_eq!(got.len(), n, "{name}");
            assert!(got.iter().all(|f| f.1 == link), "{name}");
        }
        // The big-endian one really is.
        let bytes = std::fs::read(format!("{CAPTURES}/peers/packetq-sample-bigendian.pcap"));
        assert_eq!(&bytes.unwrap()[0..4], &[0xa1, 0xb2, 0xc3, 0xd4]);
    }

    #[test]
    fn every_tunnel_capture_reads_whole() {
        for name in [
            "elastic-iodine-tunnel.pcap",
            "dmachard-sods.pcap",
            "dmachard-dns2tcp.pcap",
            "dmachard-dnscat2.pcap",
            "dmachard-dnsextrator.pcap",
            "dmachard-iodine.pcap",
        ] {
            let path = format!("{CAPTURES}/{name}");
            let mut r = CaptureReader::open(Path::new(&path)).unwrap();
            let (got, err) = drain(&mut r);
            assert!(err.is_none(), "{name}: {err:?}");
            assert!(got.iter().all(|f| f.1 == LinkType::Ethernet), "{name}");
            assert_eq!(
                r.offset(),
                std::fs::metadata(&path).unwrap().len(),
                "{name}"
            );
            assert!(
                got.windows(2).all(|w| w[0].0 <= w[1].0),
                "{name}: time order"
            );
            if name == "elastic-iodine-tunnel.pcap" {
                // README: 438 frames over 24.5 s.
                assert_eq!(got.len(), 438);
                let span = got.last().unwrap().0 - got[0].0;
                assert!((24 * NANOS_PER_SEC..25 * NANOS_PER_SEC).contains(&span));
            } else {
                assert!(!got.is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn each_frame_gives_what_next_frame_gives() {
        // Both byte orders and resolutions, pcapng sections that change byte order,
        // files cut at every offset, the peers' and the tunnels' captures, and a frame
        // already peeked at.
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        let classic = written(LinkType::Ethernet, &sample_frames());
        let ng = pcapng_two_sections();
        for (kind, full) in [("classic", &classic), ("pcapng", &ng)] {
            for cut in 0..=full.len() {
                inputs.push((format!("{kind} cut at {cut}"), full[..cut].to_vec()));
            }
        }
        for dir in [CAPTURES.to_string(), format!("{CAPTURES}/peers")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains(".pcap") {
                    inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
                }
            }
        }
        assert!(inputs.len() > 70 + classic.len() + ng.len());
        let describe = |d: &Drained| (d.0.clone(), d.1.as_ref().map(|e| e.to_string()));
        for (name, bytes) in &inputs {
            let (Ok(mut one_by_one), Ok(mut each)) = (reader(bytes.clone()), reader(bytes.clone()))
            else {
                continue;
            };
            let want = drain(&mut one_by_one);
            let got = drain_each(&mut each);
            assert_eq!(describe(&got), describe(&want), "{name}");
            assert_eq!(each.offset(), one_by_one.offset(), "{name}");
            assert_eq!(each.skipped_frames(), one_by_one.skipped_frames(), "{name}");
            let mut peeked = reader(bytes.clone()).unwrap();
            if peeked.peek_ts().is_ok_and(|ts| ts.is_some()) {
                assert_eq!(
                    describe(&drain_each(&mut peeked)),
                    describe(&want),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn reader_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<CaptureReader>();
        let bytes = written(LinkType::Ethernet, &sample_frames());
        let r = reader(bytes).unwrap();
        let n = std::thread::spawn(move || {
            let mut r = r;
            drain(&mut r).0.len()
        });
        assert_eq!(n.join().unwrap(), 3);
    }

    #[test]
    fn pcapng_interface_table_is_bounded() {
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        for _ in 0..MAX_INTERFACES {
            ng.idb(1, None, None);
        }
        ng.epb(MAX_INTERFACES as u32 - 1, 1, b"last");
        let at = ng.idb(1, None, None);
        let (got, err) = drain(&mut reader(ng.out).unwrap());
        assert_eq!(got.len(), 1);
        match err {
            Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, at),
            other => panic!("{other:?}"),
        }
    }

    /// A stream that hands out at most a few bytes per `read`, sometimes none with
    /// `Interrupted`, as a pipe or a slow disk may.
    struct Dribble {
        bytes: Vec<u8>,
        at: usize,
        calls: usize,
    }

    impl Read for Dribble {
        fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 5 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = (self.calls % 7 + 1)
                .min(dst.len())
                .min(self.bytes.len() - self.at);
            dst[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn short_and_interrupted_reads_give_the_same_frames() {
        let classic_bytes = written(LinkType::Ethernet, &sample_frames());
        for bytes in [classic_bytes, pcapng_two_sections()] {
            let (want, err) = drain(&mut reader(bytes.clone()).unwrap());
            assert!(err.is_none());
            let dribble = Dribble {
                bytes: bytes.clone(),
                at: 0,
                calls: 0,
            };
            let mut r = CaptureReader::from_reader("dribble", dribble).unwrap();
            let (got, err) = drain(&mut r);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, want);
            assert_eq!(r.offset(), bytes.len() as u64);
        }
    }

    #[test]
    fn a_read_error_is_an_io_error_naming_the_file() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
                let bytes = written(LinkType::Ethernet, &sample_frames());
                if self.0 >= bytes.len() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = (bytes.len() - self.0).min(dst.len()).min(30);
                dst[..n].copy_from_slice(&bytes[self.0..self.0 + n]);
                self.0 += n;
                Ok(n)
            }
        }
        let mut r = CaptureReader::from_reader("failing.pcap", Failing(0)).unwrap();
        let (got, err) = drain(&mut r);
        assert_eq!(got.len(), 3, "every frame before the error");
        match err {
            Some(e @ CaptureError::Io { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("failing.pcap") && text.contains("disk on fire"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blocks_larger_than_the_buffer_are_skipped_unbuffered() {
        let mut ng = Ng {
            be: false,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(1, None, None);
        ng.epb(0, 1, b"before");
        // A name resolution block of 3 MiB: larger than anything the reader buffers.
        ng.block(4, &vec![0x55; 3 << 20]);
        ng.epb(0, 2, b"after");
        let total = ng.out.len() as u64;
        let mut r = reader(ng.out).unwrap();
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{err:?}");
        let data: Vec<&[u8]> = got.iter().map(|f| f.2.as_slice()).collect();
        assert_eq!(data, [&b"before"[..], &b"after"[..]]);
        assert_eq!(r.offset(), total);
    }

    #[test]
    fn missing_file_is_an_io_error() {
        assert!(matches!(
            CaptureReader::open(Path::new("/nonexistent/x.pcap")),
            Err(CaptureError::Io { .. })
        ));
    }
}
