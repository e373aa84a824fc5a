//! End to end on generated captures whose answers are known: each test builds traffic
//! with `dns_sensor::synth`, writes it to a pcap file, replays it through the real
//! binary and compares the alerts with the figures recorded while building.

mod common;

use common::{dns_sensor, replay, Run, TempDir};
use dns_sensor::synth::scenario::{
    background, case_randomising_resolver, hostile_mix, ipv6_flow, many_domains_under, tagged_flow,
    Carrier, Figures, Traffic, Tunnel, EPOCH, HOUR, MINUTE,
};
use dns_sensor::synth::{rtype, Vlan};
use serde_json::Value;

/// The count alone, without the alerts under the threshold that the evidence raises:
/// these tests hold the reference rule's figures and timing, and a tunnel of 50 names
/// or more would alert from its evidence before the count sees it.
const COUNT: &str = "--tunnel-threshold=0";

/// Writes `traffic` and replays it with `flags`.
fn assert_figures(alert: &Value, figures: &Figures) {
    assert_eq!(alert["total_requests"], figures.requests, "{alert}");
    assert_eq!(alert["unique_hostnames"], figures.unique, "{alert}");
    assert_eq!(alert["total_bytes_in"], figures.bytes_in, "{alert}");
    assert_eq!(alert["total_bytes_out"], figures.bytes_out, "{alert}");
    assert_eq!(
        alert["total_bytes"],
        figures.bytes_in + figures.bytes_out,
        "{alert}"
    );
}

/// As [`assert_figures`], for a domain past the exact limit: unique names within 2 %.
fn assert_figures_estimated(alert: &Value, figures: &Figures) {
    let unique = alert["unique_hostnames"].as_u64().unwrap() as f64;
    let error = (unique - figures.unique as f64).abs() / figures.unique as f64;
    assert!(
        error < 0.02,
        "{unique} for {} names: {alert}",
        figures.unique
    );
    let mut rest = alert.clone();
    rest["unique_hostnames"] = figures.unique.into();
    assert_figures(&rest, figures);
}

fn with_background(tunnel: Traffic, start: u64, duration: u64) -> Traffic {
    let mut traffic = background(start, duration, 5, 20, 1);
    traffic.extend(tunnel);
    traffic
}

#[test]
fn slow_tunnel_over_three_and_a_half_hours_alerts() {
    let tunnel = Tunnel::new(
        "slow-exfil.example",
        300,
        EPOCH + 5 * MINUTE,
        3 * HOUR + 30 * MINUTE,
    );
    let (traffic, figures) = tunnel.build();
    let run = replay(
        "slow-tunnel",
        with_background(traffic, EPOCH, 4 * HOUR),
        &[COUNT],
    );
    assert!(
        run.domains().iter().all(|d| d == "slow-exfil.example"),
        "{:?}",
        run.domains()
    );
    let alerts = run.for_domain("slow-exfil.example");
    // Names arrive one every 42 s: the count passes 200 between 2 h 25 and 2 h 26 after
    // the start, so the first evaluation to see it is the one at 2 h 30.
    assert!(
        alerts[0]["@timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-05T02:30:00"),
        "{}",
        alerts[0]
    );
    let first = alerts[0]["unique_hostnames"].as_u64().unwrap();
    assert!((201..=215).contains(&first), "{first}");
    // Reported again only once the 1 h realert has passed: at 03:30, not at 02:45..03:15.
    let times: Vec<&str> = alerts
        .iter()
        .map(|a| &a["@timestamp"].as_str().unwrap()[11..19])
        .collect();
    assert_eq!(times, vec!["02:30:00", "03:30:00"], "{}", run.stderr);

    // Without realert the end-of-input evaluation reports the whole tunnel.
    let (traffic, _) = tunnel.build();
    let run = replay(
        "slow-tunnel-realert-0",
        with_background(traffic, EPOCH, 4 * HOUR),
        &["--realert", "0", COUNT],
    );
    let alerts = run.for_domain("slow-exfil.example");
    assert_eq!(
        alerts.len(),
        7,
        "02:30 to 04:00 and the end: {}",
        run.stderr
    );
    assert_figures(alerts.last().unwrap(), &figures);
}

#[test]
fn realert_zero_reports_at_every_evaluation() {
    let (traffic, _) = Tunnel::new("chatty.example", 250, EPOCH, 10 * MINUTE).build();
    let run = replay(
        "realert-zero",
        traffic,
        &["--realert", "0", "--window", "1h", COUNT],
    );
    // Evaluations at 00:15, 00:30, 00:45, 01:00 see the tunnel; 01:15 no longer does;
    // the end-of-input evaluation at 00:10 came first and sees it too.
    let alerts = run.for_domain("chatty.example");
    let times: Vec<&str> = alerts
        .iter()
        .map(|a| a["@timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{times:?}");
    let (traffic, _) = Tunnel::new("chatty.example", 250, EPOCH, 65 * MINUTE).build();
    let run = replay(
        "realert-zero-long",
        traffic,
        &["--realert", "0", "--window", "1h", COUNT],
    );
    let alerts = run.for_domain("chatty.example");
    let times: Vec<&str> = alerts
        .iter()
        .map(|a| &a["@timestamp"].as_str().unwrap()[11..19])
        .collect();
    assert_eq!(times, vec!["01:00:00", "01:05:00"], "{}", run.stderr);
}

#[test]
fn names_spread_evenly_over_six_hours_never_exceed_200_in_four() {
    let (traffic, _) = Tunnel::new("spread.example", 260, EPOCH, 6 * HOUR).build();
    let run = replay(
        "even-260",
        with_background(traffic, EPOCH, 6 * HOUR),
        &[COUNT],
    );
    assert!(run.alerts.is_empty(), "{:?}", run.alerts);
    // Every boundary from 00:15 to 06:00, and the end of the input.
    assert!(run.stderr.contains(" 25 evaluations"), "{}", run.stderr);
    // The same traffic inside one window alerts.
    let (traffic, figures) = Tunnel::new("spread.example", 260, EPOCH, 6 * HOUR).build();
    let run = replay(
        "even-260-8h",
        traffic,
        &["--window", "8h", "--realert", "0"],
    );
    assert_figures(run.for_domain("spread.example").last().unwrap(), &figures);
}

#[test]
fn exactly_200_names_are_quiet_and_201_alert() {
    let mut at_threshold = Tunnel::new("edge.example", 200, EPOCH, 10 * MINUTE);
    at_threshold.repeats = 3;
    let (traffic, figures) = at_threshold.build();
    assert_eq!((figures.requests, figures.unique), (600, 200));
    assert!(replay("edge-200", traffic, &[COUNT]).alerts.is_empty());

    let mut over = at_threshold.clone();
    over.names = 201;
    let (traffic, figures) = over.build();
    let run = replay("edge-201", traffic, &[COUNT]);
    assert_eq!(run.domains(), vec!["edge.example"]);
    assert_figures(&run.alerts[0], &figures);
    assert_eq!(run.alerts[0]["unique_hostnames"], 201);
    assert_eq!(run.alerts[0]["total_requests"], 603);
}

#[test]
fn a_case_randomising_resolver_does_not_inflate_counts() {
    let (traffic, figures) = case_randomising_resolver("mixed-case.example", 150, 4, EPOCH);
    let run = replay("0x20", traffic, &[COUNT]);
    assert!(
        run.alerts.is_empty(),
        "600 spellings of 150 names alerted: {:?}",
        run.alerts
    );
    let (traffic, _) = case_randomising_resolver("mixed-case.example", 150, 4, EPOCH);
    let run = replay("0x20-low", traffic, &["--threshold", "100"]);
    assert_eq!(run.domains(), vec!["mixed-case.example"]);
    assert_eq!(run.alerts[0]["unique_hostnames"], 150);
    assert_eq!(run.alerts[0]["total_requests"], figures.requests);
    assert_eq!(run.alerts[0]["top_clients"][0]["ip"], "10.1.0.53");
}

#[test]
fn hundreds_of_domains_under_a_public_suffix_do_not_alert_the_suffix() {
    let traffic = many_domains_under("co.uk", 400, 3, EPOCH);
    let run = replay("co-uk", traffic, &["--threshold", "2"]);
    assert!(
        !run.domains().iter().any(|d| d == "co.uk"),
        "{:?}",
        run.domains()
    );
    assert_eq!(run.alerts.len(), 400);
    assert!(run.alerts.iter().all(|a| a["unique_hostnames"] == 3));
    let run = replay(
        "co-uk-default",
        many_domains_under("co.uk", 400, 3, EPOCH),
        &[],
    );
    assert!(run.alerts.is_empty(), "{:?}", run.domains());
}

#[test]
fn a_whitelisted_domain_is_silent_even_under_a_private_suffix() {
    // s3.amazonaws.com is in the list's private section: without the whitelist each
    // bucket is a registered domain of its own, and this one alerts.
    let (traffic, figures) =
        Tunnel::new("tunnel-bucket.s3.amazonaws.com", 3000, EPOCH, 10 * MINUTE).build();
    let run = replay("whitelisted", traffic, &[]);
    assert!(run.alerts.is_empty(), "{:?}", run.domains());

    let dir = TempDir::new("no-whitelist");
    let config = dir.path("c.toml");
    std::fs::write(&config, "whitelist = []\n").unwrap();
    let (traffic, _) =
        Tunnel::new("tunnel-bucket.s3.amazonaws.com", 3000, EPOCH, 10 * MINUTE).build();
    let run = replay(
        "not-whitelisted",
        traffic,
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(run.domains(), vec!["tunnel-bucket.s3.amazonaws.com"]);
    assert_figures_estimated(&run.alerts[0], &figures);
}

#[test]
fn tunnels_over_ipv6_vlan_qinq_tcp_and_fragments_are_counted_exactly() {
    let mut tunnels = Vec::new();
    let mut v6 = Tunnel::new("over-ipv6.example", 230, EPOCH, 10 * MINUTE);
    v6.flow = ipv6_flow();
    v6.qtype = rtype::NULL;
    v6.binary_names = true;
    tunnels.push(v6);
    let mut dot1q = Tunnel::new("over-vlan.example", 240, EPOCH, 10 * MINUTE);
    dot1q.flow = tagged_flow(Vlan::Dot1Q(11));
    tunnels.push(dot1q);
    let mut qinq = Tunnel::new("over-qinq.example", 250, EPOCH, 10 * MINUTE);
    qinq.flow = tagged_flow(Vlan::QinQ {
        outer: 100,
        inner: 11,
    });
    tunnels.push(qinq);
    let mut tcp = Tunnel::new("over-tcp.example", 260, EPOCH, 10 * MINUTE);
    tcp.carrier = Carrier::Tcp;
    tcp.response_len = 700;
    tunnels.push(tcp);
    let mut fragments = Tunnel::new("over-fragments.example", 270, EPOCH, 10 * MINUTE);
    fragments.carrier = Carrier::FragmentedUdp;
    fragments.response_len = 1200;
    tunnels.push(fragments);

    let mut traffic = background(EPOCH, 10 * MINUTE, 5, 20, 2);
    let mut expected = Vec::new();
    for t in &tunnels {
        let (frames, figures) = t.build();
        traffic.extend(frames);
        expected.push((t.domain.clone(), figures));
    }
    let run = replay("carriers", traffic, &[]);
    let mut domains = run.domains();
    domains.sort();
    let mut wanted: Vec<String> = expected.iter().map(|(d, _)| d.clone()).collect();
    wanted.sort();
    assert_eq!(domains, wanted, "{}", run.stderr);
    for (domain, figures) in &expected {
        assert_figures(run.for_domain(domain)[0], figures);
    }
    let v6 = run.for_domain("over-ipv6.example")[0];
    assert_eq!(v6["top_clients"][0]["ip"], "2001:db8::66");
    assert_eq!(v6["qtypes"]["NULL"], 230);
}

#[test]
fn hostile_packets_are_counted_and_do_not_disturb_the_counts() {
    let (tunnel, figures) = Tunnel::new("under-fire.example", 220, EPOCH, 10 * MINUTE).build();
    let mut traffic = with_background(tunnel, EPOCH, 10 * MINUTE);
    traffic.extend(hostile_mix(300, EPOCH));
    let run = replay("hostile", traffic, &["--summary", "json"]);
    assert_eq!(run.domains(), vec!["under-fire.example"], "{}", run.stderr);
    assert_figures(&run.alerts[0], &figures);
    // 300 rounds of 6 hostile payloads; the garbage ones may happen to parse.
    let summary: Value = run
        .stderr
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a JSON summary");
    let workers = &summary["workers"];
    let malformed = workers["malformed_dns"].as_u64().expect("a count")
        + workers["decode"]["malformed_frames"]
            .as_u64()
            .expect("a count");
    assert!(
        (1500..=1800).contains(&malformed),
        "{malformed}: {}",
        run.stderr
    );
}

#[test]
fn counts_are_exact_to_1000_names_and_estimated_within_2_percent_beyond() {
    let (traffic, figures) = Tunnel::new("exact.example", 1000, EPOCH, 10 * MINUTE).build();
    let run = replay("exact-1000", traffic, &[]);
    assert_figures(&run.alerts[0], &figures);

    let big = 60_000;
    let (traffic, figures) = Tunnel::new("estimated.example", big, EPOCH, 3 * HOUR).build();
    let run = replay("estimate-60k", traffic, &["--realert", "0"]);
    // Unique names within 2 %, everything else exact.
    assert_figures_estimated(
        run.for_domain("estimated.example").last().unwrap(),
        &figures,
    );
}

#[test]
fn rotated_captures_replayed_one_at_a_time_with_state_alert_as_one_replay() {
    use dns_sensor::capture::LinkType;
    use dns_sensor::synth::pcap_bytes;

    // A slow tunnel over three hours in ordinary traffic: it crosses the threshold in
    // the second hour and is reported again after each realert.
    let tunnel = Tunnel::new("rotated.example", 450, EPOCH, 3 * HOUR)
        .build()
        .0;
    let frames = with_background(tunnel, EPOCH, 3 * HOUR).into_sorted();
    let dir = TempDir::new("rotated");
    let whole = dir.path("whole.pcap");
    std::fs::write(
        &whole,
        pcap_bytes(LinkType::Ethernet, frames.iter().cloned()),
    )
    .unwrap();
    // Cut where no slot begins: 0:47:13 and 2:11:07.
    let cuts = [
        EPOCH + 47 * MINUTE + 13_000_000_000,
        EPOCH + 2 * HOUR + 11 * MINUTE + 7_000_000_000,
    ];
    let mut parts = Vec::new();
    let mut rest = frames.as_slice();
    for (i, &cut) in cuts.iter().chain(&[u64::MAX]).enumerate() {
        let n = rest.partition_point(|(ts, _)| *ts < cut);
        let (part, after) = rest.split_at(n);
        let path = dir.path(&format!("part-{i}.pcap"));
        std::fs::write(&path, pcap_bytes(LinkType::Ethernet, part.iter().cloned())).unwrap();
        parts.push(path);
        rest = after;
    }
    let at_boundary = |a: &Value| {
        let at = a["@timestamp"].as_str().unwrap_or_default();
        at.ends_with(":00:00.000Z")
            || at.ends_with(":15:00.000Z")
            || at.ends_with(":30:00.000Z")
            || at.ends_with(":45:00.000Z")
    };
    let one = replay_files(&[whole.as_path()], &[]);
    let expected: Vec<&Value> = one.alerts.iter().filter(|a| at_boundary(a)).collect();
    assert!(expected.len() >= 2, "{:?}", one.alerts);
    let state = dir.path("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut got = Vec::new();
    for part in &parts {
        let run = replay_files(&[part.as_path()], &["--state".as_ref(), state.as_os_str()]);
        assert!(
            run.stderr.contains("state: the window is kept in"),
            "{}",
            run.stderr
        );
        got.extend(run.alerts);
    }
    // Alert for alert, figure for figure: the names, the clients, the samples, the
    // window's bounds.
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
}

/// Replays `files` through the binary with `flags`, expecting success.
fn replay_files(files: &[&std::path::Path], flags: &[&std::ffi::OsStr]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec!["replay".into()];
    args.extend(flags.iter().map(|f| f.to_os_string()));
    args.extend(files.iter().map(|f| f.as_os_str().to_os_string()));
    let run = dns_sensor(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}
