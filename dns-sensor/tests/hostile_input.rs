//! Inputs written to make the sensor loop, stall or grow: each finding of the outside
//! review (issue 11) as the capture or setting that showed it, run through the real
//! binary.

mod common;

use std::time::Duration;

use common::{dns_sensor_within, json_summary, TempDir};
use dns_sensor::capture::LinkType;
use dns_sensor::synth::scenario::{v4, Tunnel, EPOCH};
use dns_sensor::synth::{
    ipv4_fragment, pcapng_bytes, query, rtype, tcp_flags, tcp_frame, udp_frame, write_pcap, Flow,
};
use dns_sensor::NANOS_PER_SEC;

/// Far more than any of these runs takes (tens of milliseconds): only a loop reaches it.
const LIMIT: Duration = Duration::from_secs(60);

const MINUTE: u64 = 60 * NANOS_PER_SEC;
const YEAR: u64 = 365 * 24 * 60 * MINUTE;

fn one_query(seq: u16) -> Vec<u8> {
    let flow = Flow::to_dns(v4(10, 0, 0, 7), 40_000, v4(192, 0, 2, 53));
    udp_frame(
        &flow,
        &query(seq, format!("h{seq}.example.com").as_bytes(), rtype::A),
    )
}

/// Replays `capture` (written to a file named `name`) with the JSON summary.
fn replay_bytes(name: &str, capture: &[u8], flags: &[&str]) -> (common::Run, serde_json::Value) {
    let dir = TempDir::new(name);
    let file = dir.path(name);
    std::fs::write(&file, capture).expect("capture written");
    let mut args: Vec<std::ffi::OsString> =
        vec!["replay".into(), "--summary".into(), "json".into()];
    args.extend(flags.iter().map(|f| f.into()));
    args.push(file.into_os_string());
    let run = dns_sensor_within(LIMIT, args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = json_summary(&run.stderr);
    (run, summary)
}

#[test]
fn a_timestamp_at_the_top_of_the_range_ends_the_replay() {
    // At the default microsecond resolution, `ts_high = 0x00418938` is past
    // `u64::MAX` nanoseconds once scaled: it saturates. The review's 164-byte file kept
    // a release build busy for ever, and made a debug build panic on an overflow.
    let top = 0x0041_8938_u64 << 32;
    let just_under = (u64::MAX / 1000) - 1_000_000; // a second before the end
    for (case, stamps) in [
        ("saturated", vec![top]),
        ("a second before the end", vec![just_under]),
        ("both", vec![just_under, top, top]),
    ] {
        let frames = stamps
            .iter()
            .enumerate()
            .map(|(i, &ts)| (ts, one_query(i as u16)));
        let (_, summary) =
            replay_bytes("top.pcapng", &pcapng_bytes(LinkType::Ethernet, frames), &[]);
        assert_eq!(
            summary["workers"]["queries"],
            stamps.len(),
            "{case}: {summary}"
        );
        // One evaluation at most per boundary with traffic in its window, and the final one.
        let evaluations = summary["evaluations"].as_u64().expect("evaluations");
        assert!(evaluations <= 3, "{case}: {evaluations} evaluations");
    }
}

#[test]
fn a_clock_that_jumps_by_decades_costs_no_empty_evaluations_and_loses_no_tunnel() {
    // A tunnel, then a frame forty years later, then the same tunnel's domain again at
    // once, then one frame back in time: each tunnel alerts as if the other were not
    // there, and the gap is not evaluated interval by interval (1.4 million of them).
    let (early, early_figures) = Tunnel::new("early.example", 230, EPOCH, 10 * MINUTE).build();
    let later = EPOCH + 40 * YEAR;
    let (late, late_figures) = Tunnel::new("late.example", 240, later, 10 * MINUTE).build();
    let mut frames: Vec<(u64, Vec<u8>)> = early.into_sorted();
    frames.push((later - MINUTE, one_query(1)));
    frames.extend(late.into_sorted());
    frames.push((EPOCH + 5 * MINUTE, one_query(2)));
    let micros = frames.into_iter().map(|(ts, f)| (ts / 1000, f));
    let (run, summary) = replay_bytes(
        "jump.pcapng",
        &pcapng_bytes(LinkType::Ethernet, micros),
        &[],
    );
    assert_eq!(
        run.domains(),
        vec!["early.example", "late.example"],
        "{}",
        run.stderr
    );
    assert_eq!(run.alerts[0]["unique_hostnames"], early_figures.unique);
    assert_eq!(run.alerts[1]["unique_hostnames"], late_figures.unique);
    let evaluations = summary["evaluations"].as_u64().expect("evaluations");
    // The default window holds 16 boundaries: at most that many after each burst.
    assert!(evaluations <= 2 * 17 + 1, "{evaluations} evaluations");
}

#[test]
fn settings_that_would_blind_the_sensor_are_refused_on_their_line() {
    // Each ran with exit 0, shed every record and alerted on nothing.
    let tunnel = common::capture("elastic-iodine-tunnel.pcap");
    let dir = TempDir::new("blinding-settings");
    for (text, line, key) in [
        ("threshold = 100\nwindow = \"100000000000y\"\n", 2, "window"),
        ("window = \"18446744073709551615s\"\n", 1, "window"),
        ("window = \"4h\"\n\ninterval = \"1ns\"\n", 3, "interval"),
    ] {
        let config = dir.path("sensor.toml");
        std::fs::write(&config, text).unwrap();
        for command in ["replay", "check-config"] {
            let mut args = vec![command.into(), config.clone().into_os_string()];
            if command == "replay" {
                args = vec![
                    command.into(),
                    "--config".into(),
                    config.clone().into_os_string(),
                    tunnel.clone().into_os_string(),
                ];
            }
            let run = dns_sensor_within(LIMIT, args);
            assert_eq!(run.code, 2, "{text}: {}", run.stderr);
            let at = format!("{}:{line}: {key}: ", config.display());
            assert!(run.stderr.contains(&at), "{text}: {}", run.stderr);
        }
    }
    // The same from the command line, and a warning for settings that only weaken it.
    let run = dns_sensor_within(
        LIMIT,
        [
            "replay".as_ref(),
            "--interval".as_ref(),
            "1ns".as_ref(),
            tunnel.as_os_str(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("interval: with window 4h"),
        "{}",
        run.stderr
    );
    let run = dns_sensor_within(
        LIMIT,
        [
            "replay".as_ref(),
            "--interval".as_ref(),
            "30s".as_ref(),
            tunnel.as_os_str(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("WARN") && run.stderr.contains("records will be shed"),
        "{}",
        run.stderr
    );
    assert_eq!(run.domains(), vec!["pirate.sea"], "{}", run.stderr);
}

#[test]
fn operator_named_files_are_read_under_a_limit() {
    // Both read without end (4.2 GB in 3 s) before the limit.
    let tunnel = common::capture("elastic-iodine-tunnel.pcap");
    let run = dns_sensor_within(
        LIMIT,
        [
            "replay".as_ref(),
            "--config".as_ref(),
            "/dev/zero".as_ref(),
            tunnel.as_os_str(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("/dev/zero: larger than 1 MiB"),
        "{}",
        run.stderr
    );
    let dir = TempDir::new("endless-whitelist");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "whitelist_files = [\"/dev/zero\"]\n").unwrap();
    let run = dns_sensor_within(LIMIT, ["check-config".as_ref(), config.as_os_str()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("/dev/zero: larger than 64 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn errors_give_their_cause_once() {
    let dir = TempDir::new("causes-once");
    let not_text = dir.path("latin1.toml");
    std::fs::write(&not_text, b"# caf\xe9\n").unwrap();
    let gone = dir.path("gone.toml");
    let tunnel = common::capture("elastic-iodine-tunnel.pcap");
    for (config, cause) in [
        (&not_text, "not UTF-8"),
        (&gone, "No such file or directory"),
    ] {
        let run = dns_sensor_within(
            LIMIT,
            [
                "replay".as_ref(),
                "--config".as_ref(),
                config.as_os_str(),
                tunnel.as_os_str(),
            ],
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.matches(cause).count(), 1, "{}", run.stderr);
    }
}

#[test]
fn a_capture_named_to_attack_the_terminal_is_named_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("hostile-file-name");
    let name = std::ffi::OsStr::from_bytes(b"cut\r\n[ERROR] forged line\x1b[2J\xff.pcap");
    let cut = dir.path("x").with_file_name(name);
    let whole = std::fs::read(common::capture("elastic-iodine-tunnel.pcap")).unwrap();
    std::fs::write(&cut, &whole[..3000]).unwrap();
    let missing = cut.with_extension("gone");
    for (file, code, what) in [(&cut, 0, "cut short"), (&missing, 2, "No such file")] {
        let run = dns_sensor_within(LIMIT, ["replay".as_ref(), file.as_os_str()]);
        assert_eq!(run.code, code, "{}", run.stderr);
        assert!(
            common::hostile::printable(run.stderr.as_bytes()),
            "{:?}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("cut\\x0d\\x0a[ERROR] forged line\\x1b[2J\\xff."),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(what), "{}", run.stderr);
    }
}

/// A moment of the real iodine capture's tunnel (2010-08-21T00:00:00Z), for floods
/// replayed beside it.
const IN_THE_TUNNEL: u64 = 1_282_348_800 * NANOS_PER_SEC;

/// Replays the real iodine capture alone and beside `flood` (frames written to a file),
/// and returns the growth in peak resident memory the flood caused, in MiB, after
/// checking the tunnel alerts with its exact figures in both runs. Returns the flood
/// run's JSON summary too.
fn flood_beside_the_tunnel(name: &str, flood: Vec<(u64, Vec<u8>)>) -> (f64, serde_json::Value) {
    let dir = TempDir::new(name);
    let file = dir.path("flood.pcap");
    write_pcap(&file, LinkType::Ethernet, flood).expect("flood written");
    let tunnel = common::capture("elastic-iodine-tunnel.pcap");
    let replay = |files: &[&std::path::Path]| {
        let mut args: Vec<std::ffi::OsString> =
            vec!["replay".into(), "--summary".into(), "json".into()];
        args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
        let (run, rss) = common::dns_sensor_peak_rss(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.domains(), vec!["pirate.sea"], "{}", run.stderr);
        let alert = &run.alerts[0];
        assert_eq!(
            [
                &alert["total_requests"],
                &alert["unique_hostnames"],
                &alert["total_bytes_in"],
                &alert["total_bytes_out"]
            ],
            [222, 222, 16_812, 35_212],
            "{alert}"
        );
        (rss, json_summary(&run.stderr))
    };
    let (alone, _) = replay(&[&tunnel]);
    let (flooded, summary) = replay(&[&tunnel, &file]);
    (flooded.saturating_sub(alone) as f64 / 1024.0, summary)
}

#[test]
fn a_fragment_flood_holds_what_arrived_within_its_bound() {
    // 8 bytes at offset 65 464 with MF set: each once took a 64 KiB buffer, 4 096 of
    // them (the table's count) 289 MB whatever memory_cap said. 32 768 of them now.
    let mut flood = Vec::new();
    for i in 0..32_768u32 {
        let client = v4(10, 200, (i >> 16) as u8, (i >> 8) as u8);
        let flow = Flow::to_dns(client, 40_000, v4(192, 0, 2, 53));
        let at = IN_THE_TUNNEL + u64::from(i) * 1_000;
        flood.push((at, ipv4_fragment(&flow, i as u16, 65_464, true, &[0x55; 8])));
    }
    let (growth, summary) = flood_beside_the_tunnel("fragment-flood", flood);
    let dropped = summary["workers"]["decode"]["ip_fragments_dropped"]
        .as_u64()
        .unwrap();
    assert!(dropped >= 32_768 - 4_096, "{summary}");
    // The table's bound is 8 MiB of pieces and 4 096 datagrams' entries.
    assert!(
        growth < 24.0,
        "the flood grew the sensor by {growth:.1} MiB"
    );
}

#[test]
fn a_flood_of_tcp_flows_holds_what_arrived_within_its_bound() {
    // Each flow's one segment announces a 65 535-byte message and brings 100 bytes: the
    // buffer once reserved the whole message, 64 MiB across flows beside memory_cap (119
    // MB resident). 65 536 flows, four times what the table tracks.
    let mut segment = vec![0xff, 0xff];
    segment.extend_from_slice(&query(7, b"x.example.com", rtype::A)[..12]);
    segment.resize(100, 0x41);
    let mut flood = Vec::new();
    for i in 0..65_536u32 {
        let client = v4(10, 201, (i >> 8) as u8, i as u8);
        let flow = Flow::to_dns(client, 50_000, v4(192, 0, 2, 53));
        let at = IN_THE_TUNNEL + u64::from(i) * 1_000;
        let flags = tcp_flags::ACK | tcp_flags::PSH;
        flood.push((at, tcp_frame(&flow, 1_000, 1, flags, &segment)));
    }
    let (growth, summary) = flood_beside_the_tunnel("tcp-flood", flood);
    let refused = summary["workers"]["decode"]["tcp_flows_refused"]
        .as_u64()
        .unwrap();
    assert!(refused >= 65_536 - 16_384, "{summary}");
    // The table's bound is 16 MiB of partial messages and 16 384 flows' entries.
    assert!(
        growth < 32.0,
        "the flood grew the sensor by {growth:.1} MiB"
    );
}

#[test]
fn one_domain_under_a_flood_of_names_clients_and_query_types_stays_bounded() {
    // Every query a new name, from a new client, of a random query type: what a
    // domain's own tables (names, clients, query types, samples) can be made to hold.
    // Four times the queries must not take more memory.
    let run_with = |queries: u32| {
        let mut rng = dns_sensor::synth::SplitMix64::new(u64::from(queries));
        // Written as they are made: a test process grown by them would be counted in
        // the child's peak, which includes the moment between fork and exec.
        let frames = (0..queries).map(|i| {
            let client = std::net::IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            let flow = Flow::to_dns(client, 40_000, v4(192, 0, 2, 53));
            let name = format!("{:016x}.flooded.example", rng.next_u64());
            let qtype = rng.below(65_536) as u16;
            (
                EPOCH + u64::from(i) * 10_000,
                udp_frame(&flow, &query(i as u16, name.as_bytes(), qtype)),
            )
        });
        let dir = TempDir::new("one-domain-flood");
        let file = dir.path("flood.pcap");
        write_pcap(&file, LinkType::Ethernet, frames).expect("written");
        let (run, rss) = common::dns_sensor_peak_rss(["replay".as_ref(), file.as_os_str()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.domains(), vec!["flooded.example"], "{}", run.stderr);
        let unique = run.alerts[0]["unique_hostnames"].as_f64().unwrap();
        assert!(
            (unique / f64::from(queries) - 1.0).abs() < 0.02,
            "{unique} of {queries}"
        );
        assert!(run.alerts[0]["top_clients"].as_array().unwrap().len() <= 5);
        rss
    };
    let small = run_with(100_000);
    let large = run_with(400_000);
    let growth = large.saturating_sub(small) as f64 / 1024.0;
    assert!(
        growth < 8.0,
        "300 000 more queries took {growth:.1} MiB more"
    );
}
