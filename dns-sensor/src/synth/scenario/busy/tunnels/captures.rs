//! The real tunnel captures of `../shared/captures/`, spliced into the network as they
//! were recorded: their own addresses (10.0.2.30 and 192.168.1.x asking their own
//! servers, not the network's resolvers), their own query ids and sizes, only their
//! clocks moved into the window.
//!
//! The captures and their registered domains are those of the directory's README
//! table: iodine from Elastic's Packetbeat example (`pirate.sea`), and sods, dns2tcp,
//! DNSExfiltrator, dnscat2 and iodine from dmachard's datasets-malicious-dns
//! (`hsc.fr` and `biillpi.com`). Three tools share `hsc.fr` and two `biillpi.com`: a
//! domain keeps the first tool's word, in the table's order.

use std::io;
use std::path::Path;

use super::{Network, Truth};
use crate::capture::{CaptureReader, LinkType};
use crate::Nanos;

/// The captures: file, registered domain, tool, in the README's order.
const CAPTURES: [(&str, &str, &str); 6] = [
    ("elastic-iodine-tunnel.pcap", "pirate.sea", "iodine"),
    ("dmachard-sods.pcap", "hsc.fr", "sods"),
    ("dmachard-dns2tcp.pcap", "hsc.fr", "dns2tcp"),
    ("dmachard-dnscat2.pcap", "biillpi.com", "dnscat2"),
    ("dmachard-dnsextrator.pcap", "hsc.fr", "dnsexfiltrator"),
    ("dmachard-iodine.pcap", "biillpi.com", "iodine"),
];

/// Pushes every frame of the six captures of `dir`, each capture moved to start at a
/// time drawn in the window (all of it inside when the window is long enough), and
/// labels their domains. A capture missing, unreadable, or not Ethernet is an error.
pub fn spliced(net: &mut Network, dir: &Path) -> io::Result<()> {
    for (file, domain, tool) in CAPTURES {
        let frames = read(&dir.join(file))?;
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            continue;
        };
        let span = last.0.saturating_sub(first.0);
        let room = net.duration().saturating_sub(span);
        let start = net.start() + net.rng().below(room.max(1));
        for (ts, frame) in frames.iter().cloned() {
            net.push_frame(start + ts.saturating_sub(first.0), frame);
        }
        net.label(domain, tool, Truth::Tunnel);
    }
    Ok(())
}

/// The frames of the capture at `path` in file order, owned.
fn read(path: &Path) -> io::Result<Vec<(Nanos, Vec<u8>)>> {
    let mut reader = CaptureReader::open(path).map_err(io::Error::other)?;
    let mut frames = Vec::new();
    let mut link = None;
    reader
        .for_each_frame(|frame| {
            link.get_or_insert(frame.link);
            frames.push((frame.ts, frame.data.to_vec()));
        })
        .map_err(io::Error::other)?;
    // The network's frames are all Ethernet; a capture of another link type would
    // be misread.
    if link.is_some_and(|l| l != LinkType::Ethernet) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not an Ethernet capture", path.display()),
        ));
    }
    // Merged captures need not be in order; the shift takes the earliest as the start.
    frames.sort_by_key(|f| f.0);
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures");

    #[test]
    fn every_frame_comes_through_shifted_into_the_window() {
        let mut net = Network::new(51, EPOCH, 6 * HOUR, 100);
        spliced(&mut net, Path::new(DIR)).expect("the captures are there");
        assert_eq!(net.queries(), 0, "frames pushed as they are, not asked");
        let done = net.finish();
        for (domain, tool) in [
            ("pirate.sea", "iodine"),
            ("hsc.fr", "sods"),
            ("biillpi.com", "dnscat2"),
        ] {
            let label = done.label(domain).expect("labelled");
            assert_eq!((label.service, label.truth), (tool, Truth::Tunnel));
        }
        assert_eq!(done.labels.len(), 3);
        let expected: usize = CAPTURES
            .iter()
            .map(|(f, _, _)| read(&Path::new(DIR).join(f)).unwrap().len())
            .sum();
        assert_eq!(done.traffic.len(), expected);
        let frames = done.traffic.into_sorted();
        assert!(frames
            .iter()
            .all(|(ts, _)| (EPOCH..EPOCH + 6 * HOUR).contains(ts)));
        // The README's query counts, unique names lower-cased.
        let all = exchanges(&frames);
        for (domain, queries) in [
            ("pirate.sea", 222),
            ("hsc.fr", 493 + 22 + 14),
            ("biillpi.com", 24),
        ] {
            let seen = under(&all, domain);
            assert_eq!(seen.len(), queries, "{domain}");
            let names: HashSet<_> = seen.iter().map(|e| &e.name).collect();
            assert_eq!(names.len(), queries, "{domain}");
        }
        let iodine = under(&all, "pirate.sea");
        assert!(iodine.iter().all(|e| e.qtype == crate::synth::rtype::NULL));
        assert_eq!(iodine.iter().filter(|e| e.rcode.is_some()).count(), 212);
        assert!(
            iodine.iter().all(|e| e.client.to_string() == "10.0.2.30"),
            "addresses unchanged"
        );
    }

    #[test]
    fn the_seed_moves_the_captures_and_a_missing_directory_is_an_error() {
        let starts = |seed| {
            let mut net = Network::new(seed, EPOCH, 6 * HOUR, 100);
            spliced(&mut net, Path::new(DIR)).unwrap();
            net.finish().traffic.into_sorted()[0].0
        };
        assert_ne!(starts(1), starts(2));
        let mut net = Network::new(1, EPOCH, HOUR, 100);
        assert!(spliced(&mut net, Path::new("/nonexistent/captures")).is_err());
    }
}
