//! The whole pipeline over generated and real traffic: what every runner shares.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::alert::{AlertError, Sink};
use crate::capture::LinkType;
use crate::capture::{CaptureReader, Frame};
use crate::config::Config;
use crate::detect::Alert;
use crate::synth::scenario::{
    background, ipv6_flow, v4, Carrier, Traffic, Tunnel, EPOCH, HOUR, MINUTE,
};
use crate::synth::Flow;
use crate::Nanos;

/// A sink that keeps the alerts.
struct Collect(Arc<Mutex<Vec<Alert>>>);

impl Sink for Collect {
    fn name(&self) -> String {
        "collect".into()
    }
    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        if let Ok(mut kept) = self.0.lock() {
            kept.extend_from_slice(alerts);
        }
        Ok(())
    }
}

fn settings() -> Settings {
    Config::default().settings().expect("default settings")
}

/// Runs `frames` through `workers` workers; returns the alerts and the summary.
fn run(frames: &[(Nanos, Vec<u8>)], workers: usize) -> (Vec<Alert>, RunSummary) {
    let views = frames.iter().map(|(ts, data)| Frame {
        ts: *ts,
        link: LinkType::Ethernet,
        data,
    });
    let parts = partition_by_flow(views, workers);
    assert_eq!(parts.len(), workers);
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let report = run_frames(&parts, &settings(), vec![Box::new(Collect(alerts.clone()))])
        .expect("pipeline runs");
    let alerts = alerts.lock().expect("not poisoned").clone();
    (alerts, report.summary)
}

/// Two hours of ordinary traffic from 100 clients with tunnels from four clients in
/// it: plain UDP, TCP (messages split across segments), UDP with fragmented
/// responses, and IPv6; two of them go on across several 15-minute slots.
fn scenario() -> Vec<(Nanos, Vec<u8>)> {
    let mut traffic = background(EPOCH, 2 * HOUR, 5, 100, 3);
    let mut udp = Tunnel::new("udp-tunnel.example", 500, EPOCH + 5 * MINUTE, HOUR);
    udp.first_seq = 1 << 40;
    let mut tcp = Tunnel::new("tcp-tunnel.example", 300, EPOCH + 20 * MINUTE, 40 * MINUTE);
    tcp.carrier = Carrier::Tcp;
    tcp.flow = Flow::to_dns(v4(10, 1, 0, 70), 40_001, v4(192, 0, 2, 54));
    tcp.first_seq = 2 << 40;
    let mut fragmented = Tunnel::new("frag-tunnel.example", 250, EPOCH + HOUR, 10 * MINUTE);
    fragmented.carrier = Carrier::FragmentedUdp;
    fragmented.response_len = 700;
    fragmented.flow = Flow::to_dns(v4(10, 1, 0, 71), 40_002, v4(192, 0, 2, 55));
    fragmented.first_seq = 3 << 40;
    let mut v6 = Tunnel::new("v6-tunnel.example", 220, EPOCH + 30 * MINUTE, HOUR);
    v6.flow = ipv6_flow();
    v6.binary_names = true;
    v6.first_seq = 4 << 40;
    for t in [udp, tcp, fragmented, v6] {
        traffic.extend(t.build().0);
    }
    traffic.into_sorted()
}

#[test]
fn more_workers_give_the_same_alerts() {
    let frames = scenario();
    let (one, one_summary) = run(&frames, 1);
    let alerted: Vec<&[u8]> = one.iter().map(|a| &*a.domain).collect();
    for domain in [
        &b"udp-tunnel.example"[..],
        b"tcp-tunnel.example",
        b"frag-tunnel.example",
        b"v6-tunnel.example",
    ] {
        assert!(alerted.contains(&domain), "{alerted:?}");
    }
    for workers in [2, 3] {
        let parts = partition_by_flow(
            frames.iter().map(|(ts, data)| Frame {
                ts: *ts,
                link: LinkType::Ethernet,
                data,
            }),
            workers,
        );
        assert!(
            parts.iter().all(|p| !p.is_empty()),
            "every worker gets frames"
        );
        let (many, summary) = run(&frames, workers);
        // Every figure, clients, qtypes and even the sample names agree: each
        // tunnel's names come from one client, so from one worker.
        assert_eq!(many, one, "{workers} workers");
        assert_eq!(summary.workers, one_summary.workers, "{workers} workers");
        assert_eq!(summary.evaluations, one_summary.evaluations);
        assert_eq!(summary.alerts, one_summary.alerts);
        assert_eq!(summary.span, one_summary.span);
    }
}

const IODINE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/captures/elastic-iodine-tunnel.pcap"
);

#[test]
fn tunnel_inside_a_flood_of_new_domains_is_detected_under_a_small_cap() {
    use crate::synth::{mix64, query, rtype, udp_frame};
    let mut reader = CaptureReader::open(std::path::Path::new(IODINE)).expect("capture");
    let mut frames: Vec<(Nanos, LinkType, Vec<u8>)> = Vec::new();
    while let Some(f) = reader.next_frame().expect("readable") {
        frames.push((f.ts, f.link, f.data.to_vec()));
    }
    let (first, last) = (frames[0].0, frames[frames.len() - 1].0);
    // 20 000 queries from 50 bots over the tunnel's 24.5 s, every one for a new
    // registered domain, never answered: 90 flood domains per tunnel query.
    let flood = 20_000u64;
    for i in 0..flood {
        let ts = first + (last - first) * i / flood;
        let bot = v4(10, 66, 0, (i % 50) as u8 + 1);
        let flow = Flow::to_dns(bot, 30_000 + (i % 1000) as u16, v4(192, 0, 2, 1));
        let name = format!("www.x{:x}.example", mix64(i));
        let frame = udp_frame(&flow, &query(i as u16, name.as_bytes(), rtype::A));
        frames.push((ts, LinkType::Ethernet, frame));
    }
    frames.sort_by_key(|f| f.0);
    let views: Vec<Frame<'_>> = frames
        .iter()
        .map(|(ts, link, data)| Frame {
            ts: *ts,
            link: *link,
            data,
        })
        .collect();
    // 32 MiB for the window, beside the worker's own tables: about 1.6 MB per shard,
    // some 4 000 small domains.
    let cap = (32u64 << 20) + worker_tables();
    let settings = Config {
        memory_cap: cap,
        ..Config::default()
    }
    .settings()
    .expect("settings");
    assert!(settings.sketch.max_bytes < 2 << 20);
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let report =
        run_frames(&[views], &settings, vec![Box::new(Collect(alerts.clone()))]).expect("runs");
    let alerts = alerts.lock().expect("not poisoned").clone();
    let summary = report.summary;

    // The flood went through the cap, was shed, and every record of it is counted.
    // The capture spans one slot: the window held at most that slot's share.
    assert!(
        summary.peak_bytes <= settings.sketch.max_bytes,
        "{} bytes",
        summary.peak_bytes
    );
    // Lost records: the flood's queries that were turned away at the door or whose
    // domain was evicted later (one record each).
    assert!(summary.shed_records > flood - 5_000, "{summary:?}");
    assert!(summary.evicted_domains > 0, "{summary:?}");
    assert!(summary.shed_records >= summary.evicted_domains);
    assert!(summary.peak_domains < 5_000, "{summary:?}");
    // The real tunnel, with the figures it has alone (tests/real_tunnels.rs).
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(&*alert.domain, b"pirate.sea");
    assert_eq!(alert.total_requests, 222);
    assert_eq!(alert.unique_hostnames, 222);
    assert_eq!(alert.total_bytes_in, 16_812);
    assert_eq!(alert.total_bytes_out, 35_212);
    assert_eq!(alert.top_clients, vec![(v4(10, 0, 2, 30), 222)]);
}

/// Slots of the slow tunnel's run.
const SLOTS: u64 = 8;
/// The slow tunnel's names per slot.
const TUNNEL_PER_SLOT: u64 = 15;

/// When the slow tunnel sends its names: evenly over each slot.
fn tunnel_times() -> impl Iterator<Item = Nanos> {
    (0..SLOTS * TUNNEL_PER_SLOT).map(|seq| {
        let (s, t) = (seq / TUNNEL_PER_SLOT, seq % TUNNEL_PER_SLOT);
        EPOCH + s * 15 * MINUTE + 15 * MINUTE * t / TUNNEL_PER_SLOT + 7
    })
}

/// Eight 15-minute slots, each with 1 000 look-alike domains of 12 names queried in
/// a round-robin (the pattern that defeats least-recently-seen shedding), and a
/// slow tunnel of 15 names a slot: 120 names in 2 h, over a threshold of 100, but
/// in any one slot no bigger than its neighbours. Returns the tunnel's alerts and
/// the summary.
fn slow_tunnel_in_a_round_robin(history: bool) -> (Vec<Alert>, RunSummary) {
    use crate::synth::{mix64, query, rtype, tunnel_name, udp_frame};
    const DOMAINS: u64 = 1_000;
    const NAMES: u64 = 12;
    let slot = 15 * MINUTE;
    let per_slot = DOMAINS * NAMES;
    let tunnel = Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53));
    let mut frames: Vec<(Nanos, Vec<u8>)> = Vec::new();
    for s in 0..SLOTS {
        let start = EPOCH + s * slot;
        for k in 0..per_slot {
            let d = s * DOMAINS + k % DOMAINS;
            let name = format!("h{}x{:x}.d{d}.example", k / DOMAINS, mix64(k));
            let bot = v4(10, 66, 0, (k % 50) as u8 + 1);
            let flow = Flow::to_dns(bot, 30_000 + (k % 1000) as u16, v4(192, 0, 2, 1));
            let ts = start + slot * k / per_slot;
            frames.push((
                ts,
                udp_frame(&flow, &query(k as u16, name.as_bytes(), rtype::A)),
            ));
        }
    }
    for (seq, ts) in tunnel_times().enumerate() {
        let name = tunnel_name(seq as u64, "slow-tunnel.example");
        let frame = udp_frame(&tunnel, &query(seq as u16, name.as_bytes(), rtype::TXT));
        frames.push((ts, frame));
    }
    frames.sort_by_key(|f| f.0);
    let views = Traffic::frames_of(&frames);
    let mut settings = Config {
        threshold: 100,
        // The count alone: the history's part is what is measured.
        tunnel_threshold: 0,
        window: Duration::from_secs(2 * 3600),
        // The window's share, beside the worker's own tables.
        memory_cap: (7 << 18) + worker_tables(),
        ..Config::default()
    }
    .settings()
    .expect("settings");
    // Room for under half of a slot's domains.
    assert!(
        settings.sketch.max_bytes < 300_000,
        "{}",
        settings.sketch.max_bytes
    );
    if !history {
        settings.sketch.history_bytes = 0;
    }
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let report =
        run_frames(&[views], &settings, vec![Box::new(Collect(alerts.clone()))]).expect("runs");
    let alerts = alerts.lock().expect("not poisoned").clone();
    (alerts, report.summary)
}

#[test]
fn slow_tunnel_among_look_alike_domains_survives_shedding_through_the_history() {
    let (alerts, summary) = slow_tunnel_in_a_round_robin(true);
    // Most of the look-alikes were shed, over and over.
    assert!(summary.shed_records > 40_000, "{summary:?}");
    assert!(!alerts.is_empty(), "{summary:?}");
    for alert in &alerts {
        assert_eq!(&*alert.domain, b"slow-tunnel.example", "{alerts:?}");
        // Of the names it sent before the evaluation, the tunnel loses at most
        // about a slot's worth (until the history knows it, it looks like the
        // others), and every name counted is its own.
        let sent = tunnel_times().filter(|&t| t < alert.at).count() as u64;
        let counted = alert.unique_hostnames;
        assert!(counted > 100 && counted <= sent, "{counted} of {sent}");
        assert!(counted + 15 >= sent, "{counted} of {sent}");
        assert_eq!(alert.total_requests, counted);
        assert_eq!(alert.top_clients, vec![(v4(10, 1, 0, 66), counted)]);
    }

    // The same traffic without the history: each slot alone cannot tell the tunnel
    // from the look-alikes, and it is shed with them.
    let (alerts, _) = slow_tunnel_in_a_round_robin(false);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn no_frames_and_empty_parts_finish() {
    let (alerts, summary) = run(&[], 2);
    assert!(alerts.is_empty());
    assert_eq!(summary.workers.decode.frames, 0);
    let report = run_frames(&[], &settings(), Vec::new()).expect("runs");
    assert_eq!(report.summary.evaluations, 0);
}

/// The bytes of `memory_cap` one worker's own tables (reassembly, verdict cache) take
/// before the window gets its share.
fn worker_tables() -> u64 {
    (DecodeSettings::default().max_bytes() + crate::domain::VERDICT_CACHE_BYTES) as u64
}
