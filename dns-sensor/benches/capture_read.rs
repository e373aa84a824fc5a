//! The capture reader alone: a generated mix read end to end, as classic pcap and as
//! pcapng, every frame's bytes touched (a sum of lengths and timestamps), nothing else.
//!
//! ```text
//! cargo bench -p dns-sensor --bench capture_read            # criterion, from memory
//! cargo bench -p dns-sensor --bench capture_read -- --read-once FILE...
//! ```
//!
//! The second form reads each file once through [`CaptureReader::open`] and prints its
//! frame count, for instruction counts under callgrind: run it on two sizes of the same
//! capture and divide the difference of the totals by the difference of the frames, so
//! that start-up (the process, the generator, criterion) cancels out.
//! `docs/performance.md` ("Reading captures") has the commands and the figures, and the
//! commit where this bench also ran the reader built on pcap-parser, side by side.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use dns_sensor::capture::CaptureReader;
use dns_sensor::capture::LinkType;
use dns_sensor::synth::pcap_bytes;
use dns_sensor::synth::scenario::{mix, EPOCH};
use dns_sensor::Nanos;

/// The sensor binary's allocator, so that allocation costs are what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Frames of the in-memory mix: about 22 MB as classic pcap, well past the caches.
const FRAMES: u64 = 200_000;

/// Reads every frame; returns (frames, sum of lengths, first bytes and timestamps) so
/// that nothing can be optimised away.
fn read_all(mut reader: CaptureReader) -> (u64, u64) {
    let mut frames = 0u64;
    let mut sum = 0u64;
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => {
                frames += 1;
                sum = sum
                    .wrapping_add(f.data.len() as u64)
                    .wrapping_add(u64::from(f.data[0]))
                    .wrapping_add(f.ts);
            }
            Ok(None) => return (frames, sum),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The same frames as a pcapng file: a section header, one Ethernet interface with
/// nanosecond timestamps (`if_tsresol` 9), then one Enhanced Packet Block per frame
/// without options, as `editcap -F pcapng` writes them.
fn pcapng_bytes(frames: &[(Nanos, Vec<u8>)]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, btype: u32, body: &[u8]) {
        let total = (12 + body.len().next_multiple_of(4)) as u32;
        out.extend(btype.to_le_bytes());
        out.extend(total.to_le_bytes());
        out.extend(body);
        out.resize(out.len() + body.len().next_multiple_of(4) - body.len(), 0);
        out.extend(total.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend(1u16.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(262_144u32.to_le_bytes());
    idb.extend([9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol = 9
    idb.extend([0; 4]); // opt_endofopt
    block(&mut out, 1, &idb);
    let mut epb = Vec::new();
    for (ts, data) in frames {
        epb.clear();
        epb.extend(0u32.to_le_bytes());
        epb.extend(((ts >> 32) as u32).to_le_bytes());
        epb.extend((*ts as u32).to_le_bytes());
        epb.extend((data.len() as u32).to_le_bytes());
        epb.extend((data.len() as u32).to_le_bytes());
        epb.extend(data);
        block(&mut out, 6, &epb);
    }
    out
}

fn read_once(paths: &[String]) {
    for path in paths {
        let reader = CaptureReader::open(Path::new(path)).expect("capture");
        let (frames, sum) = read_all(reader);
        println!("{path}: {frames} frames (check {sum:#x})");
    }
}

fn bench(c: &mut Criterion) {
    let frames = mix(FRAMES, EPOCH).into_sorted();
    let pcap: &'static [u8] =
        pcap_bytes(LinkType::Ethernet, frames.iter().map(|(t, d)| (*t, d))).leak();
    let pcapng: &'static [u8] = pcapng_bytes(&frames).leak();
    let mut group = c.benchmark_group("capture_read");
    group.throughput(Throughput::Elements(frames.len() as u64));
    for (format, bytes) in [("pcap", pcap), ("pcapng", pcapng)] {
        group.bench_function(format, |b| {
            b.iter(|| {
                let reader = CaptureReader::from_reader("mem", bytes).expect("capture");
                black_box(read_all(reader))
            })
        });
    }
    group.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--read-once") {
        let paths: Vec<String> = args[at + 1..]
            .iter()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .collect();
        read_once(&paths);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
