//! Several capture files read as one: a k-way merge by timestamp.

use super::{CaptureError, CaptureReader, Frame};
use crate::Nanos;

/// Calls `each` for every frame of `readers` in timestamp order (a k-way merge; ties go
/// to the earlier file). A file cut short ends early and is reported in the result; any
/// other read error stops the replay.
pub fn read_merged(
    readers: &mut [CaptureReader],
    mut each: impl FnMut(&Frame<'_>),
) -> Result<Vec<CaptureError>, CaptureError> {
    let mut truncated = Vec::new();
    let mut live: Vec<usize> = (0..readers.len()).collect();
    loop {
        let mut next: Option<(Nanos, usize)> = None;
        let mut i = 0;
        while i < live.len() {
            let r = live[i];
            match readers[r].peek_ts() {
                Ok(Some(ts)) => {
                    if next.is_none_or(|(best, _)| ts < best) {
                        next = Some((ts, r));
                    }
                    i += 1;
                }
                Ok(None) => {
                    live.remove(i);
                }
                Err(e @ CaptureError::Truncated { .. }) => {
                    truncated.push(e);
                    live.remove(i);
                }
                Err(e) => return Err(e),
            }
        }
        let Some((_, r)) = next else {
            return Ok(truncated);
        };
        // With a single file the merge is pointless; read it straight through until it
        // ends so that the common case pays one peek in all.
        if live.len() == 1 {
            return match readers[r].for_each_frame(&mut each) {
                Ok(()) => Ok(truncated),
                Err(e @ CaptureError::Truncated { .. }) => {
                    truncated.push(e);
                    Ok(truncated)
                }
                Err(e) => Err(e),
            };
        }
        match readers[r].next_frame() {
            Ok(Some(frame)) => each(&frame),
            Ok(None) => {}
            Err(e @ CaptureError::Truncated { .. }) => truncated.push(e),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::synth::pcap_bytes;

    /// A capture of frames whose bytes are the file's name.
    fn reader(name: &str, stamps: &[Nanos], cut: usize) -> CaptureReader {
        let frames = stamps.iter().map(|&ts| (ts, name.as_bytes().to_vec()));
        let mut bytes = pcap_bytes(LinkType::RawIp, frames);
        bytes.truncate(bytes.len() - cut);
        CaptureReader::from_reader(name, std::io::Cursor::new(bytes)).expect("a capture")
    }

    #[test]
    fn frames_come_in_time_order_ties_to_the_earlier_file() {
        let mut readers = [
            reader("a", &[1, 4, 4, 9], 0),
            reader("b", &[2, 4, 5], 0),
            reader("c", &[3], 0),
        ];
        let mut seen = Vec::new();
        let cut = read_merged(&mut readers, |f| {
            seen.push((f.ts, String::from_utf8_lossy(f.data).into_owned()));
        })
        .expect("read");
        assert!(cut.is_empty());
        let seen: Vec<(Nanos, &str)> = seen.iter().map(|(ts, n)| (*ts, n.as_str())).collect();
        assert_eq!(
            seen,
            [
                (1, "a"),
                (2, "b"),
                (3, "c"),
                (4, "a"),
                (4, "a"),
                (4, "b"),
                (5, "b"),
                (9, "a")
            ]
        );
    }

    #[test]
    fn a_file_cut_short_ends_early_and_the_others_go_on() {
        let mut readers = [reader("a", &[1, 3, 5], 3), reader("b", &[2, 4, 6], 0)];
        let mut order = Vec::new();
        let cut = read_merged(&mut readers, |f| order.push(f.ts)).expect("read");
        assert_eq!(order, [1, 2, 3, 4, 6]);
        assert_eq!(cut.len(), 1);
        assert!(cut[0].to_string().contains('a'), "{}", cut[0]);
    }
}
