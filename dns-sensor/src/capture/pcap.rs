//! Classic pcap and pcapng files: a streaming reader and a classic pcap writer.

use std::path::Path;

use super::{CaptureError, Frame, LinkType};
use crate::Nanos;

/// Reads frames from one classic pcap (either byte order, micro- or nanosecond) or
/// pcapng file, reusing one buffer: no allocation per frame.
pub struct CaptureReader {}

impl CaptureReader {
    /// Opens `path` and reads its file header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let _ = path;
        todo!()
    }

    /// Reads from any byte stream; `name` stands for the file in errors.
    pub fn from_reader(name: &str, reader: impl std::io::Read + Send + 'static) -> Result<Self, CaptureError> {
        let _ = (name, reader);
        todo!()
    }

    /// The timestamp of the next frame, reading it into the buffer if needed, without
    /// consuming it. `Ok(None)` at a clean end of file.
    pub fn peek_ts(&mut self) -> Result<Option<Nanos>, CaptureError> {
        todo!()
    }

    /// The next frame. `Ok(None)` at a clean end of file; `Err(Truncated)` when the file
    /// ends inside a record (every complete frame before it was returned).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        todo!()
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        todo!()
    }

    /// Frames skipped because their link type is not one this sensor decodes.
    pub fn skipped_frames(&self) -> u64 {
        todo!()
    }
}

/// Writes a classic pcap file (little-endian, nanosecond timestamps) of one link type.
pub struct PcapWriter<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(out: W, link: LinkType) -> std::io::Result<Self> {
        let _ = link;
        Ok(Self { out })
    }

    /// Appends one frame captured at `ts`.
    pub fn write(&mut self, ts: Nanos, data: &[u8]) -> std::io::Result<()> {
        let _ = (ts, data, &mut self.out);
        todo!()
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> std::io::Result<W> {
        todo!()
    }
}
