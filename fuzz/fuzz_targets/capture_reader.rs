//! Whole capture files, classic pcap or pcapng, read from memory by
//! `capture::CaptureReader`.
//!
//! Input: the file.
//!
//! Each file is read three ways: straight through (`for_each_frame`, the fast
//! readers), frame by frame (`next_frame`), and with `peek_ts` before every frame, as
//! the merge of several files reads them. Checks:
//! - the three give the same frames and end the same way (clean, or the same error);
//! - no frame is longer than the file or `MAX_CAPLEN`, and every frame's bytes are
//!   bytes of the file; there are at most as many frames as 16-byte records fit in
//!   it (so reading terminates);
//! - `peek_ts` gives the time of the frame that follows; after an error the reader
//!   yields nothing more; the offset reached is within the file.

#![no_main]

use std::io::Cursor;

use dns_sensor::capture::pcap::MAX_CAPLEN;
use dns_sensor::capture::{CaptureReader, Frame, LinkType};
use dns_sensor::Nanos;
use libfuzzer_sys::fuzz_target;

/// A frame, copied out of the reader's buffer.
type Owned = (Nanos, LinkType, Vec<u8>);

/// The frames read, and how the file ended (`None`: cleanly; else the error's text).
type Read = (Vec<Owned>, Option<String>);

fuzz_target!(|data: &[u8]| {
    let straight = read(data, |reader, frames| {
        reader.for_each_frame(|f| frames.push(owned(f, data)))
    });
    let by_frame = read(data, |reader, frames| loop {
        match reader.next_frame()? {
            Some(f) => frames.push(owned(&f, data)),
            None => return Ok(()),
        }
    });
    let peeking = read(data, |reader, frames| loop {
        let ts = reader.peek_ts()?;
        let next = reader.next_frame()?.map(|f| owned(&f, data));
        assert_eq!(
            ts,
            next.as_ref().map(|f| f.0),
            "peek_ts and the frame disagree"
        );
        match next {
            Some(f) => frames.push(f),
            None => return Ok(()),
        }
    });
    assert_eq!(straight, by_frame, "for_each_frame and next_frame disagree");
    assert_eq!(peeking, by_frame, "peeking changed what was read");
    assert!(
        by_frame.0.len() <= data.len() / 16,
        "{} frames",
        by_frame.0.len()
    );
});

/// Opens `data` and reads it with `each`, which pushes every frame it gets; checks
/// what holds whatever the way of reading.
fn read(
    data: &[u8],
    each: impl FnOnce(
        &mut CaptureReader,
        &mut Vec<Owned>,
    ) -> Result<(), dns_sensor::capture::CaptureError>,
) -> Read {
    let mut reader = match CaptureReader::from_reader("fuzz", Cursor::new(data.to_vec())) {
        Ok(reader) => reader,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut frames = Vec::new();
    let end = each(&mut reader, &mut frames).err().map(|e| e.to_string());
    // Errors are final, and a clean end stays one.
    assert!(
        matches!(reader.next_frame(), Ok(None)),
        "a frame after the end"
    );
    assert!(
        reader.offset() <= data.len() as u64,
        "offset {} past the file",
        reader.offset()
    );
    (frames, end)
}

/// Copies a frame out, checking it against the file.
fn owned(frame: &Frame<'_>, file: &[u8]) -> Owned {
    assert!(
        frame.data.len() <= file.len(),
        "a frame longer than the file"
    );
    assert!(frame.data.len() <= MAX_CAPLEN);
    assert!(
        memchr::memmem::find(file, frame.data).is_some(),
        "a frame whose bytes are not in the file"
    );
    (frame.ts, frame.link, frame.data.to_vec())
}
