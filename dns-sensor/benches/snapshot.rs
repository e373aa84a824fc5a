//! The window's snapshot on a real window: replays a capture as `dns-sensor replay`
//! does (the default settings: 4 h window, 1 GiB cap), then writes the window as a
//! snapshot to a directory, reads it back and restores it, and prints each step's time
//! and the snapshot's size.
//!
//! ```text
//! cargo xtask gen window --frames 20000000     # the memory bar's window: 1 M domains
//! cargo bench -p dns-sensor --bench snapshot -- $PWD/target/captures/window.pcap [DIR]
//! ```
//!
//! Paths are taken from the package's directory, where cargo runs benches. One run,
//! one figure a step: wall-clock times on a shared machine move, so
//! `docs/performance.md` gives them with the date and the command, not as a bound.

use std::path::PathBuf;
use std::time::Instant;

use dns_sensor::config::Config;
use dns_sensor::detect::snapshot::{read_snapshot, write_snapshot};
use dns_sensor::detect::Detector;
use dns_sensor::pipeline::replay;

/// The sensor binary's allocator, so that allocation costs are what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let Some(capture) = args.next().map(PathBuf::from) else {
        eprintln!("usage: cargo bench -p dns-sensor --bench snapshot -- CAPTURE [DIR]");
        std::process::exit(2);
    };
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join("dns-sensor-snapshot-bench"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("the snapshot's directory");
    let settings = Config::default().settings().expect("the defaults");
    let started = Instant::now();
    let mut report =
        replay(std::slice::from_ref(&capture), &settings, Vec::new()).expect("replayed");
    let replayed = started.elapsed();
    let window = report.window.take().expect("the window");
    println!(
        "replay of {}: {} frames in {replayed:.2?}; window: {} slots, {} domain-slots, \
         {:.1} MiB of tables",
        capture.display(),
        report.summary.workers.decode.frames,
        window.slots(),
        window.tracked(),
        window.bytes() as f64 / f64::from(1u32 << 20)
    );
    let t = Instant::now();
    let bytes = window.to_snapshot(0, None);
    let encoded = t.elapsed();
    let t = Instant::now();
    let path = write_snapshot(&dir, &bytes).expect("written");
    let written = t.elapsed();
    let t = Instant::now();
    let read = read_snapshot(&dir).expect("readable").expect("there");
    let loaded = t.elapsed();
    let t = Instant::now();
    let restored =
        Detector::from_snapshot(&read, settings.rule.clone(), &settings.sketch).expect("restored");
    let decoded = t.elapsed();
    assert_eq!(restored.detector.tracked(), window.tracked());
    println!(
        "snapshot {}: {:.1} MiB ({:.0} bytes a domain-slot); encoded in {encoded:.2?}, \
         written and synced in {written:.2?}, read in {loaded:.2?}, restored in {decoded:.2?}",
        path.display(),
        bytes.len() as f64 / f64::from(1u32 << 20),
        bytes.len() as f64 / window.tracked().max(1) as f64
    );
    std::mem::forget(window);
    std::mem::forget(restored);
    let _ = std::fs::remove_file(path);
}
