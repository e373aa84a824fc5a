//! What a tunnel would try to stay unseen, each as the traffic that tries it, replayed
//! through the real binary. Most hide nothing from the count; the last two are limits
//! of the rule itself, which the README's tuning advice answers.
//!
//! Case mixing (0x20), TCP only with names split across segments, IPv6 only and
//! VLAN/QinQ tags are in `scenarios.rs`; names with bytes above 0x7F in
//! `real_tunnels.rs` (iodine).

mod common;

use common::replay;
use dns_sensor::synth::scenario::{background, v4, Traffic, Tunnel, EPOCH};
use dns_sensor::synth::{query_labels, rtype, udp_frame, Flow, SplitMix64};
use dns_sensor::NANOS_PER_SEC;

const MINUTE: u64 = 60 * NANOS_PER_SEC;
const HOUR: u64 = 60 * MINUTE;

/// `names` queries of type TXT from 10.1.0.66, one a second from `EPOCH`, each for the
/// labels `label(i)` followed by those of `domain`, among ordinary traffic.
fn queries_of(
    names: u64,
    domain: &[&[u8]],
    mut label: impl FnMut(u64) -> Vec<Vec<u8>>,
) -> (Traffic, Vec<usize>) {
    let flow = Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53));
    let mut traffic = background(EPOCH, names * NANOS_PER_SEC, 5, 20, 1);
    let mut sizes = Vec::new();
    for i in 0..names {
        let own = label(i);
        let labels: Vec<&[u8]> = own
            .iter()
            .map(Vec::as_slice)
            .chain(domain.iter().copied())
            .collect();
        let message = query_labels(i as u16, &labels, rtype::TXT);
        sizes.push(message.len());
        traffic.push(EPOCH + i * NANOS_PER_SEC, udp_frame(&flow, &message));
    }
    (traffic, sizes)
}

#[test]
fn edns_padding_changes_the_bytes_not_the_count() {
    // RFC 7830 padding: each query carries an OPT record with a padding option that
    // brings it to a block of 128 bytes, as DNS-over-TLS clients send them.
    let flow = Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53));
    let mut traffic = background(EPOCH, 300 * NANOS_PER_SEC, 5, 20, 1);
    let mut bytes_in = 0;
    for i in 0..240u64 {
        let label = format!("p{i:04}");
        let mut message = query_labels(
            i as u16,
            &[label.as_bytes(), b"padded", b"example"],
            rtype::A,
        );
        message[10..12].copy_from_slice(&1u16.to_be_bytes()); // ARCOUNT
        let pad = 128 - (message.len() + 11 + 4) % 128;
        message.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]); // root, OPT, 4096, TTL
        message.extend_from_slice(&((4 + pad) as u16).to_be_bytes());
        message.extend_from_slice(&12u16.to_be_bytes()); // option: Padding
        message.extend_from_slice(&(pad as u16).to_be_bytes());
        message.resize(message.len() + pad, 0);
        assert_eq!(message.len() % 128, 0);
        bytes_in += message.len() as u64;
        traffic.push(EPOCH + i * NANOS_PER_SEC, udp_frame(&flow, &message));
    }
    let run = replay("edns-padding", traffic, &[]);
    assert_eq!(run.domains(), vec!["padded.example"], "{}", run.stderr);
    assert_eq!(run.alerts[0]["unique_hostnames"], 240);
    assert_eq!(run.alerts[0]["total_bytes_in"], bytes_in);
}

#[test]
fn names_with_dots_backslashes_and_nul_inside_labels_each_count_once() {
    // A label may hold any byte on the wire: `a.b` as one label is not the two labels
    // `a` and `b`, and must be neither merged with them nor split off another domain.
    let odd: [&[u8]; 4] = [b"a.b", b"a\\b", b"a\x00b", b"a b"];
    let (traffic, _) = queries_of(240, &[b"odd", b"example"], |i| {
        let mut label = odd[(i % 4) as usize].to_vec();
        label.extend_from_slice(format!("{i}").as_bytes());
        vec![label]
    });
    let run = replay("odd-labels", traffic, &[]);
    assert_eq!(run.domains(), vec!["odd.example"], "{}", run.stderr);
    assert_eq!(run.alerts[0]["unique_hostnames"], 240);
    // Shown escaped: the label's own dot as `\.`, the backslash doubled.
    let samples = run.alerts[0]["sample_names"].to_string();
    assert!(
        !samples.contains('\0') && samples.contains("\\\\"),
        "{samples}"
    );
}

#[test]
fn names_of_the_longest_wire_length_with_63_byte_labels_count_exactly() {
    // Three 63-byte labels and one of 48 under `long.example`: 255 bytes on the wire,
    // the most a name may take.
    let mut rng = SplitMix64::new(7);
    let (traffic, _) = queries_of(230, &[b"long", b"example"], |_| {
        let label = |n: usize, rng: &mut SplitMix64| -> Vec<u8> {
            (0..n)
                .map(|_| b"abcdefghijklmnopqrstuvwxyz234567"[rng.below(32) as usize])
                .collect()
        };
        vec![
            label(63, &mut rng),
            label(63, &mut rng),
            label(63, &mut rng),
            label(48, &mut rng),
        ]
    });
    let run = replay("longest-names", traffic, &[]);
    assert_eq!(run.domains(), vec!["long.example"], "{}", run.stderr);
    assert_eq!(run.alerts[0]["unique_hostnames"], 230);
    // One byte more on the wire is no name: refused, and the count unchanged.
    let (too_long, _) = queries_of(230, &[b"long", b"example"], |i| {
        vec![
            vec![b'a'; 63],
            vec![b'b'; 63],
            vec![b'c'; 63],
            format!("{i:049}").into_bytes(),
        ]
    });
    let run = replay("too-long-names", too_long, &["--summary", "json"]);
    assert!(run.domains().is_empty(), "{:?}", run.alerts);
    assert!(
        run.stderr.contains("\"malformed_dns\":230"),
        "{}",
        run.stderr
    );
}

#[test]
fn many_tunnels_under_one_registered_domain_add_up() {
    // Five tunnels of 50 names each in zones of their own under one registered domain:
    // no zone reaches the threshold, the domain does.
    let mut traffic = Traffic::new();
    for zone in 0..5u64 {
        let mut tunnel = Tunnel::new("split.example", 50, EPOCH + zone * MINUTE, 30 * MINUTE);
        tunnel.zone = format!("t{zone}.split.example");
        tunnel.first_seq = zone * 1000;
        tunnel.flow = Flow::to_dns(v4(10, 1, 0, 60 + zone as u8), 41_000, v4(192, 0, 2, 53));
        traffic.extend(tunnel.build().0);
    }
    let run = replay("zones-under-one-domain", traffic, &["--realert", "0"]);
    assert!(
        run.domains().iter().all(|d| d == "split.example"),
        "{}",
        run.stderr
    );
    let last = run.alerts.last().expect("an alert");
    assert_eq!(last["unique_hostnames"], 250);
    assert_eq!(last["top_clients"].as_array().map(Vec::len), Some(5));
}

#[test]
fn a_tunnel_spread_over_its_own_registered_domains_is_a_limit_of_the_rule() {
    // Four registered domains of the tunnel's own, 150 names each over an hour: none
    // over 200, no alert from the count alone. The evidence catches each (one client,
    // new names, long labels, TXT) from the tunnel threshold; without it, the README's
    // advice: a lower threshold (here 100) over the same window.
    let build = || {
        let mut traffic = Traffic::new();
        for d in 0..4u64 {
            let mut tunnel = Tunnel::new(&format!("spread{d}.example"), 150, EPOCH, HOUR);
            tunnel.first_seq = d * 1000;
            traffic.extend(tunnel.build().0);
        }
        traffic
    };
    let spread = [
        "spread0.example",
        "spread1.example",
        "spread2.example",
        "spread3.example",
    ];
    let count_alone = ["--tunnel-threshold", "0"];
    let quiet = replay("spread-count-alone", build(), &count_alone);
    assert!(quiet.domains().is_empty(), "{:?}", quiet.alerts);
    let caught = replay("spread-defaults", build(), &[]);
    let mut domains = caught.domains();
    domains.sort();
    domains.dedup();
    assert_eq!(domains, spread);
    for alert in &caught.alerts {
        assert_eq!(alert["severity"], "high", "{alert}");
        assert_eq!(
            alert["reasons"].as_array().and_then(|r| r.last()),
            Some(&"under the count threshold".into())
        );
    }
    let run = replay(
        "spread-lower-threshold",
        build(),
        &["--threshold", "100", "--tunnel-threshold", "0"],
    );
    let mut domains = run.domains();
    domains.sort();
    assert_eq!(domains, spread);
}

#[test]
fn a_tunnel_just_under_the_threshold_in_every_window_is_a_limit_of_the_rule() {
    // 1 100 names evenly over 24 hours: 183 in every 4 hours (195 in the end-of-input
    // evaluation's window, up to a slot longer), no alert from the count alone; the
    // evidence catches it, and so does a longer window (12 hours) with the same
    // threshold, which sees 550.
    let build = || {
        Tunnel::new("patient.example", 1100, EPOCH, 24 * HOUR)
            .build()
            .0
    };
    let count_alone = ["--tunnel-threshold", "0"];
    let quiet = replay("patient-count-alone", build(), &count_alone);
    assert!(quiet.domains().is_empty(), "{:?}", quiet.alerts);
    let caught = replay("patient-defaults", build(), &[]);
    assert!(!caught.alerts.is_empty(), "{}", caught.stderr);
    for alert in &caught.alerts {
        assert_eq!(alert["domain"], "patient.example", "{alert}");
        assert_eq!(alert["severity"], "high", "{alert}");
    }
    let run = replay(
        "patient-long-window",
        build(),
        &["--window", "12h", "--tunnel-threshold", "0"],
    );
    assert!(
        run.domains().iter().all(|d| d == "patient.example"),
        "{:?}",
        run.alerts
    );
    assert!(!run.alerts.is_empty(), "{}", run.stderr);
}
