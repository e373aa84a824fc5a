//! The capture reader on the `pcap-parser` crate (rusticata): its streaming
//! `LegacyPcapReader` and `PcapNGReader` over a [`BUFFER_SIZE`] buffer, with the API
//! and the behaviour of [`super::pcap::CaptureReader`], for the side-by-side
//! measurement in `docs/performance.md`.
//!
//! The crate parses the records and blocks and manages the buffer; this module adds
//! what the sensor promises and the crate does not do: errors that name the file and
//! the byte offset of the record, `Truncated` only for a file cut short (the crate
//! also says "incomplete" for a block whose contents run past its own length, and its
//! reader would refill forever), the bounds on lengths, the pcapng block length rules
//! (a multiple of 4, a matching trailer), blocks the sensor does not use skipped
//! whatever their size or contents, the obsolete Packet Block (type 2, which the crate
//! does not know), `if_tsoffset` in big-endian sections (the crate reads it
//! little-endian), timestamps in nanoseconds without the crate's 32-bit seconds, and
//! the underlying `io::Error` (the crate keeps only "read error").

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, LegacyPcapReader, OptionCode, PcapBlockOwned, PcapError, PcapNGReader};

use super::pcap::{
    Interface, TsScale, BUFFER_SIZE, MAGIC_MICROS, MAGIC_NANOS, MAX_BUFFERED_BLOCK, MAX_CAPLEN,
    MAX_INTERFACES, PCAPNG_BYTE_ORDER, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SHB, PCAPNG_SPB,
};
#[cfg(test)]
use super::pcap::{PcapWriter, WRITER_SNAPLEN};
use super::{CaptureError, Frame, LinkType};
use crate::{Nanos, NANOS_PER_SEC};

/// The source as the crate reads it: the bytes this module read to judge the file
/// header first, then the stream. `Interrupted` is retried; any other error is kept
/// for [`CaptureError::Io`], since the crate reports only that a read failed.
struct Source {
    head: io::Cursor<Vec<u8>>,
    src: Box<dyn Read + Send>,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl Read for Source {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(dst)?;
        if n > 0 {
            return Ok(n);
        }
        loop {
            match self.src.read(dst) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = e.kind();
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e);
                    }
                    return Err(kind.into());
                }
                ok => return ok,
            }
        }
    }
}

enum Inner {
    Pcap(LegacyPcapReader<Source>),
    Pcapng(PcapNGReader<Source>),
}

impl Inner {
    fn it(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Inner::Pcap(r) => r,
            Inner::Pcapng(r) => r,
        }
    }
}

/// A frame parsed but not yet handed out: its bytes are `data()[start..start + len]`
/// of the crate's buffer until the block is consumed.
#[derive(Clone, Copy, Debug)]
struct Pending {
    ts: Nanos,
    link: LinkType,
    start: usize,
    len: usize,
}

/// What the crate made of the next block.
enum Step {
    Frame(Pending),
    Skipped,
    /// The crate needs more bytes than the buffer holds.
    Incomplete,
    /// The crate's error, with what it said.
    Error(String),
    BufferTooSmall,
    ReadError,
    Eof,
}

/// Reads frames from one classic pcap or pcapng file through `pcap-parser`; the API of
/// [`super::pcap::CaptureReader`].
pub struct CaptureReader {
    name: String,
    inner: Inner,
    error: Arc<Mutex<Option<io::Error>>>,
    /// Bytes of the current block, handed out, to consume before the next.
    to_consume: usize,
    pcap: Option<(bool, Option<LinkType>)>,
    big_endian: bool,
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
            .finish_non_exhaustive()
    }
}

/// Reads until `out` holds `len` bytes or the stream ends.
fn read_up_to(src: &mut Source, out: &mut Vec<u8>, len: usize) -> io::Result<()> {
    let have = out.len();
    src.take((len - have) as u64).read_to_end(out)?;
    Ok(())
}

fn u32_of(b: &[u8], big_endian: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

impl CaptureReader {
    /// Opens `path` and reads its file header, as [`super::pcap::CaptureReader::open`].
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(&name, file)
    }

    /// Reads from any byte stream, as [`super::pcap::CaptureReader::from_reader`].
    pub fn from_reader(
        name: &str,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let error = Arc::new(Mutex::new(None));
        let mut src = Source {
            head: io::Cursor::new(Vec::new()),
            src: Box::new(reader),
            error: Arc::clone(&error),
        };
        let io_err = |source| CaptureError::Io {
            path: name.to_string(),
            source,
        };
        let truncated = |what| CaptureError::Truncated {
            path: name.to_string(),
            offset: 0,
            what,
        };
        let malformed = |what: String| CaptureError::Malformed {
            path: name.to_string(),
            offset: 0,
            what,
        };
        // The crate's readers parse the file header from their first read alone, so
        // the header is read here, whole, and given back to them first.
        let mut head = Vec::new();
        read_up_to(&mut src, &mut head, 4).map_err(io_err)?;
        if head.len() < 4 {
            return Err(truncated("file header (fewer than 4 bytes)"));
        }
        let be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let me = |inner, pcap, big_endian| CaptureReader {
            name: name.to_string(),
            inner,
            error: Arc::clone(&error),
            to_consume: 0,
            pcap,
            big_endian,
            interfaces: Vec::new(),
            pending: None,
            skipped: 0,
            last_ts: 0,
            finished: false,
        };
        if be == PCAPNG_SHB {
            read_up_to(&mut src, &mut head, 12).map_err(io_err)?;
            if head.len() < 12 {
                return Err(truncated("pcapng section header"));
            }
            let bom = [head[8], head[9], head[10], head[11]];
            let big_endian = match (u32::from_be_bytes(bom), u32::from_le_bytes(bom)) {
                (PCAPNG_BYTE_ORDER, _) => true,
                (_, PCAPNG_BYTE_ORDER) => false,
                _ => return Err(malformed("bad section header byte-order magic".into())),
            };
            let total = u32_of(&head[4..8], big_endian) as usize;
            if total % 4 != 0 || total < 28 {
                return Err(malformed(format!(
                    "section header length {total} is not a multiple of 4 of at least 28"
                )));
            }
            if total > MAX_BUFFERED_BLOCK {
                return Err(malformed(format!(
                    "section header length {total} exceeds {MAX_BUFFERED_BLOCK}"
                )));
            }
            read_up_to(&mut src, &mut head, total).map_err(io_err)?;
            if head.len() < total {
                return Err(truncated("pcapng section header"));
            }
            src.head = io::Cursor::new(head);
            let r = PcapNGReader::new(BUFFER_SIZE, src)
                .map_err(|e| malformed(format!("section header: {e}")))?;
            return Ok(me(Inner::Pcapng(r), None, big_endian));
        }
        let le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let (big_endian, nanos) = match (be, le) {
            (MAGIC_MICROS, _) => (true, false),
            (MAGIC_NANOS, _) => (true, true),
            (_, MAGIC_MICROS) => (false, false),
            (_, MAGIC_NANOS) => (false, true),
            _ => {
                return Err(CaptureError::NotACapture {
                    path: name.to_string(),
                    magic: be,
                })
            }
        };
        read_up_to(&mut src, &mut head, 24).map_err(io_err)?;
        if head.len() < 24 {
            return Err(truncated("pcap file header"));
        }
        src.head = io::Cursor::new(head);
        let mut r = LegacyPcapReader::new(BUFFER_SIZE, src)
            .map_err(|e| malformed(format!("pcap file header: {e}")))?;
        // The first block the reader returns is the file header.
        let (len, link) = match r.next() {
            Ok((len, PcapBlockOwned::LegacyHeader(h))) => {
                // Only the low 16 bits name the link type; the upper ones carry FCS
                // information.
                (len, LinkType::from_linktype(h.network.0 as u32 & 0xffff))
            }
            _ => return Err(malformed("pcap file header".into())),
        };
        r.consume_noshift(len);
        Ok(me(Inner::Pcap(r), Some((nanos, link)), big_endian))
    }

    /// As [`super::pcap::CaptureReader::peek_ts`].
    pub fn peek_ts(&mut self) -> Result<Option<Nanos>, CaptureError> {
        if self.pending.is_none() {
            self.pending = self.fill_next()?;
        }
        Ok(self.pending.map(|p| p.ts))
    }

    /// As [`super::pcap::CaptureReader::next_frame`].
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.pending.is_none() {
            self.pending = self.fill_next()?;
        }
        let p = match self.pending.take() {
            Some(p) => p,
            None => return Ok(None),
        };
        Ok(Some(Frame {
            ts: p.ts,
            link: p.link,
            data: &self.inner.it().data()[p.start..p.start + p.len],
        }))
    }

    /// As [`super::pcap::CaptureReader::offset`].
    pub fn offset(&self) -> u64 {
        let consumed = match &self.inner {
            Inner::Pcap(r) => r.consumed(),
            Inner::Pcapng(r) => r.consumed(),
        };
        (consumed + self.to_consume) as u64
    }

    /// As [`super::pcap::CaptureReader::skipped_frames`].
    pub fn skipped_frames(&self) -> u64 {
        self.skipped
    }

    /// As [`super::pcap::CaptureReader::link_type`].
    pub fn link_type(&self) -> Option<LinkType> {
        match self.pcap {
            Some((_, link)) => link,
            None => self.interfaces.first().and_then(|i| i.link),
        }
    }

    fn fill_next(&mut self) -> Result<Option<Pending>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let res = self.next_packet();
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

    fn next_packet(&mut self) -> Result<Option<Pending>, CaptureError> {
        loop {
            let done = std::mem::take(&mut self.to_consume);
            self.inner.it().consume_noshift(done);
            let start = self.offset();
            let step = match self.pcap {
                Some((nanos, link)) => self.pcap_step(nanos, link),
                None => self.pcapng_step(start)?,
            };
            match step {
                Step::Frame(p) => return Ok(Some(p)),
                Step::Skipped => {}
                Step::Eof => return Ok(None),
                Step::ReadError => return Err(self.io_error()),
                Step::Incomplete | Step::BufferTooSmall | Step::Error(_) => {
                    self.not_parsed(step, start)?;
                }
            }
        }
    }

    /// One classic record through the crate.
    fn pcap_step(&mut self, nanos: bool, link: Option<LinkType>) -> Step {
        let Inner::Pcap(r) = &mut self.inner else {
            return Step::Eof;
        };
        let data_at = r.data().as_ptr() as usize;
        match r.next() {
            Ok((len, PcapBlockOwned::Legacy(b))) => {
                let caplen = b.data.len();
                if caplen > MAX_CAPLEN {
                    return Step::Error(format!("captured length {caplen} exceeds {MAX_CAPLEN}"));
                }
                let start = b.data.as_ptr() as usize - data_at;
                let frac = u64::from(b.ts_usec);
                let frac_ns = if nanos {
                    frac
                } else {
                    frac.saturating_mul(1000)
                };
                let ts = u64::from(b.ts_sec)
                    .saturating_mul(NANOS_PER_SEC)
                    .saturating_add(frac_ns);
                self.to_consume = len;
                match link {
                    Some(link) => Step::Frame(Pending {
                        ts,
                        link,
                        start,
                        len: caplen,
                    }),
                    None => {
                        self.skipped += 1;
                        Step::Skipped
                    }
                }
            }
            Ok(_) => Step::Error("unexpected block in a classic pcap".into()),
            Err(e) => step_of(e),
        }
    }

    /// One pcapng block through the crate.
    fn pcapng_step(&mut self, start: u64) -> Result<Step, CaptureError> {
        let big_endian = self.big_endian;
        let Inner::Pcapng(r) = &mut self.inner else {
            return Ok(Step::Eof);
        };
        let data_at = r.data().as_ptr() as usize;
        let (len, block) = match r.next() {
            Ok((len, PcapBlockOwned::NG(block))) => (len, block),
            Ok(_) => return Ok(Step::Error("classic pcap block in a pcapng file".into())),
            Err(e) => return Ok(step_of(e)),
        };
        // The crate checks neither that lengths are multiples of 4 nor, for every
        // block, that the trailing copy matches.
        let (len1, len2) = block_lengths(&block);
        if len % 4 != 0 || len2.is_some_and(|l| l != len1) {
            return Err(malformed(
                &self.name,
                start,
                format!("block length {len} is not a multiple of 4 or differs from its trailer"),
            ));
        }
        let buffered = matches!(
            block,
            Block::SectionHeader(_)
                | Block::InterfaceDescription(_)
                | Block::EnhancedPacket(_)
                | Block::SimplePacket(_)
        ) || matches!(&block, Block::Unknown(u) if is_pb(u.block_type, big_endian));
        if buffered && len1 as usize > MAX_BUFFERED_BLOCK {
            return Err(malformed(
                &self.name,
                start,
                format!("block length {len1} exceeds {MAX_BUFFERED_BLOCK}"),
            ));
        }
        // (interface, timestamp ticks, data) of a packet block.
        let packet: Option<(usize, Option<u64>, &[u8])> = match block {
            Block::SectionHeader(shb) => {
                self.big_endian = shb.big_endian();
                self.interfaces.clear();
                None
            }
            Block::InterfaceDescription(idb) => {
                let mut iface = Interface {
                    link: LinkType::from_linktype(idb.linktype.0 as u32),
                    scale: TsScale::Mul(1000),
                    offset_ns: 0,
                };
                for opt in &idb.options {
                    match (opt.code, opt.as_bytes()) {
                        (OptionCode::EndOfOpt, _) => break,
                        (OptionCode::IfTsresol, Ok(&[v])) => iface.scale = TsScale::from_tsresol(v),
                        (OptionCode::IfTsoffset, Ok(v)) if v.len() == 8 => {
                            // The crate reads it little-endian whatever the section.
                            let raw = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
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
                    return Err(malformed(
                        &self.name,
                        start,
                        format!("more than {MAX_INTERFACES} interfaces in one section"),
                    ));
                }
                self.interfaces.push(iface);
                None
            }
            Block::EnhancedPacket(epb) => {
                let caplen = epb.caplen as usize;
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                Some((epb.if_id as usize, Some(ticks), &epb.data[..caplen]))
            }
            Block::SimplePacket(spb) => {
                let n = (spb.origlen as usize).min(spb.data.len());
                Some((0, None, &spb.data[..n]))
            }
            Block::Unknown(u) if is_pb(u.block_type, big_endian) => {
                // The obsolete Packet Block, which the crate does not know:
                // interface (u16), drops (u16), timestamp (2 x u32), captured and
                // original lengths, data.
                let b = u.data;
                if b.len() < 20 {
                    return Err(malformed(
                        &self.name,
                        start,
                        "packet block shorter than 20 bytes".into(),
                    ));
                }
                let iface = if big_endian {
                    u16::from_be_bytes([b[0], b[1]])
                } else {
                    u16::from_le_bytes([b[0], b[1]])
                };
                let hi = u64::from(u32_of(&b[4..8], big_endian));
                let lo = u64::from(u32_of(&b[8..12], big_endian));
                let caplen = u32_of(&b[12..16], big_endian) as usize;
                if caplen > b.len() - 20 {
                    return Err(malformed(
                        &self.name,
                        start,
                        format!("captured length {caplen} exceeds the block"),
                    ));
                }
                Some((
                    usize::from(iface),
                    Some((hi << 32) | lo),
                    &b[20..20 + caplen],
                ))
            }
            _ => None,
        };
        self.to_consume = len;
        let Some((iface_id, ticks, data)) = packet else {
            return Ok(Step::Skipped);
        };
        if data.len() > MAX_CAPLEN {
            return Err(malformed(
                &self.name,
                start,
                format!("captured length {} exceeds {MAX_CAPLEN}", data.len()),
            ));
        }
        let Some(iface) = self.interfaces.get(iface_id).copied() else {
            return Err(malformed(
                &self.name,
                start,
                format!("packet on undescribed interface {iface_id}"),
            ));
        };
        let Some(link) = iface.link else {
            self.skipped += 1;
            return Ok(Step::Skipped);
        };
        let ts = match ticks {
            Some(t) => iface.timestamp(t),
            None => self.last_ts,
        };
        Ok(Step::Frame(Pending {
            ts,
            link,
            start: data.as_ptr() as usize - data_at,
            len: data.len(),
        }))
    }

    /// The crate could not parse the record at `start` from what the buffer holds:
    /// read more, skip it, or say what is wrong with it.
    fn not_parsed(&mut self, step: Step, start: u64) -> Result<(), CaptureError> {
        let big_endian = self.big_endian;
        let pcap = self.pcap.is_some();
        let data = self.inner.it().data();
        let avail = data.len();
        // The record's length and whether the sensor uses it, from its header.
        let header = if pcap {
            (avail >= 16).then(|| {
                let caplen = u32_of(&data[8..12], big_endian) as usize;
                (16 + caplen as u64, true, caplen <= MAX_CAPLEN)
            })
        } else if avail >= 4 && u32_of(&data[0..4], false) == PCAPNG_SHB {
            if avail < 12 {
                // Its byte order, hence its length, is not known yet.
                None
            } else {
                let be = match u32::from_le_bytes([data[8], data[9], data[10], data[11]]) {
                    0x1a2b_3c4d => false,
                    0x4d3c_2b1a => true,
                    _ => {
                        return Err(malformed(
                            &self.name,
                            start,
                            "bad section header byte-order magic".into(),
                        ))
                    }
                };
                let total = u32_of(&data[4..8], be) as usize;
                Some((
                    total as u64,
                    true,
                    total % 4 == 0 && (28..=MAX_BUFFERED_BLOCK).contains(&total),
                ))
            }
        } else if avail >= 8 {
            let btype = u32_of(&data[0..4], big_endian);
            let total = u32_of(&data[4..8], big_endian) as usize;
            if total % 4 != 0 || total < 12 {
                return Err(malformed(
                    &self.name,
                    start,
                    format!("block length {total} is not a multiple of 4 of at least 12"),
                ));
            }
            let used = matches!(btype, PCAPNG_IDB | PCAPNG_PB | PCAPNG_SPB | PCAPNG_EPB);
            Some((total as u64, used, !used || total <= MAX_BUFFERED_BLOCK))
        } else {
            None
        };
        match header {
            Some((_, true, false)) => Err(malformed(
                &self.name,
                start,
                "record length out of bounds".into(),
            )),
            Some((total, used, true)) if total <= avail as u64 || !used => {
                if used {
                    // Whole in the buffer and still not parsed: its contents are bad.
                    let what = match step {
                        Step::Error(what) => what,
                        _ => "contents run past the record's length".into(),
                    };
                    return Err(malformed(&self.name, start, what));
                }
                // A block the sensor does not use: skipped whatever it holds.
                self.skip(total, start)
            }
            _ => {
                // Cut short so far: read more, or the file ends inside the record.
                if matches!(step, Step::Error(_)) && avail > 0 {
                    let what = match step {
                        Step::Error(what) => what,
                        _ => String::new(),
                    };
                    return Err(malformed(&self.name, start, what));
                }
                if self.refill()? || avail == 0 {
                    // More to parse, or a clean end (nothing left of a record): the
                    // crate says which on the next try.
                    Ok(())
                } else {
                    Err(CaptureError::Truncated {
                        path: self.name.clone(),
                        offset: start,
                        what: match (pcap, header.is_some()) {
                            (true, false) => "pcap record header",
                            (true, true) => "pcap record body",
                            (false, false) => "pcapng block header",
                            (false, true) => "pcapng block body",
                        },
                    })
                }
            }
        }
    }

    /// Reads more into the crate's buffer; `false` when the file has ended.
    fn refill(&mut self) -> Result<bool, CaptureError> {
        let before = self.inner.it().data().len();
        if self.inner.it().refill().is_err() {
            return Err(self.io_error());
        }
        Ok(self.inner.it().data().len() > before)
    }

    /// Consumes `len` bytes of a block the sensor does not use.
    fn skip(&mut self, len: u64, start: u64) -> Result<(), CaptureError> {
        let mut left = len;
        loop {
            let avail = self.inner.it().data().len() as u64;
            let n = avail.min(left);
            self.inner.it().consume_noshift(n as usize);
            left -= n;
            if left == 0 {
                return Ok(());
            }
            if !self.refill()? {
                return Err(CaptureError::Truncated {
                    path: self.name.clone(),
                    offset: start,
                    what: "pcapng block body",
                });
            }
        }
    }

    fn io_error(&self) -> CaptureError {
        let source = self
            .error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| io::Error::other("read error"));
        CaptureError::Io {
            path: self.name.clone(),
            source,
        }
    }
}

fn is_pb(block_type: u32, big_endian: bool) -> bool {
    // The crate reads an unknown block's type little-endian whatever the section.
    block_type
        == if big_endian {
            PCAPNG_PB.swap_bytes()
        } else {
            PCAPNG_PB
        }
}

/// The leading length of a block and the trailing one where the crate did not compare
/// them itself.
fn block_lengths(block: &Block<'_>) -> (u32, Option<u32>) {
    match block {
        Block::SectionHeader(b) => (b.block_len1, Some(b.block_len2)),
        Block::InterfaceDescription(b) => (b.block_len1, None),
        Block::EnhancedPacket(b) => (b.block_len1, None),
        Block::SimplePacket(b) => (b.block_len1, Some(b.block_len2)),
        Block::Unknown(b) => (b.block_len1, Some(b.block_len2)),
        _ => (0, None),
    }
}

fn step_of(e: PcapError<&[u8]>) -> Step {
    match e {
        PcapError::Eof => Step::Eof,
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => Step::Incomplete,
        PcapError::BufferTooSmall => Step::BufferTooSmall,
        PcapError::ReadError => Step::ReadError,
        PcapError::HeaderNotRecognized => Step::Error("block not recognised".into()),
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            Step::Error(format!("block does not parse ({kind:?})"))
        }
    }
}

fn malformed(name: &str, offset: u64, what: String) -> CaptureError {
    CaptureError::Malformed {
        path: name.to_string(),
        offset,
        what,
    }
}

// The very tests of the hand-written reader, run against this one.
#[cfg(test)]
#[allow(clippy::duplicate_mod)]
#[path = "pcap_tests.rs"]
mod tests;
