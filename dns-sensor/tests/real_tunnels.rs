//! End to end on real tunnel captures: `dns-sensor replay` on the files in
//! `../shared/captures/`, checked against the figures their README states.

mod common;

use common::{capture, dns_sensor};

#[test]
fn iodine_tunnel_gives_exactly_one_alert_with_the_reference_figures() {
    let run = dns_sensor([
        "replay".as_ref(),
        capture("elastic-iodine-tunnel.pcap").as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.domains(), vec!["pirate.sea"], "{}", run.stderr);
    let alert = &run.alerts[0];
    assert_eq!(alert["total_requests"], 222);
    assert_eq!(alert["unique_hostnames"], 222);
    assert_eq!(alert["total_bytes_in"], 16_812);
    assert_eq!(alert["total_bytes_out"], 35_212);
    assert_eq!(alert["total_bytes"], 16_812 + 35_212);
    assert_eq!(alert["top_clients"][0]["ip"], "10.0.2.30");
    assert_eq!(alert["top_clients"][0]["requests"], 222);
    assert_eq!(alert["qtypes"]["NULL"], 222);
    // The window ends at the last frame (24.5 s after the first) and reaches back 4 h, to
    // the start of the slot holding that instant.
    assert!(
        alert["@timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2010-08-21T02:11:04"),
        "{alert}"
    );
    assert!(
        alert["window_end"]
            .as_str()
            .unwrap()
            .starts_with("2010-08-21T02:11:04"),
        "{alert}"
    );
    assert!(
        alert["window_start"]
            .as_str()
            .unwrap()
            .starts_with("2010-08-20T22:00:00"),
        "{alert}"
    );
}

#[test]
fn iodine_names_with_high_bytes_are_escaped_not_printed_raw() {
    let path = capture("elastic-iodine-tunnel.pcap");
    let run = dns_sensor([
        "replay".as_ref(),
        "--threshold".as_ref(),
        "1".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in run.alerts[0]["sample_names"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        assert!(name.ends_with(".pirate.sea"), "{name}");
        assert!(
            name.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "unescaped byte in {name:?}"
        );
    }
}

#[test]
fn sods_tunnel_alerts_its_domain() {
    let run = dns_sensor(["replay".as_ref(), capture("dmachard-sods.pcap").as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.domains(), vec!["hsc.fr"], "{}", run.stderr);
    assert_eq!(run.alerts[0]["unique_hostnames"], 493);
    assert_eq!(run.alerts[0]["total_requests"], 493);
}

/// The small tunnels stay under the default threshold and alert their own domain (and
/// nothing else) at threshold 10; figures from the captures' README.
#[test]
fn small_tunnels_are_quiet_by_default_and_alert_at_threshold_10() {
    let cases = [
        ("dmachard-dns2tcp.pcap", "hsc.fr", 22),
        ("dmachard-dnscat2.pcap", "biillpi.com", 12),
        ("dmachard-dnsextrator.pcap", "hsc.fr", 14),
        ("dmachard-iodine.pcap", "biillpi.com", 12),
    ];
    for (file, domain, unique) in cases {
        let path = capture(file);
        let quiet = dns_sensor(["replay".as_ref(), path.as_os_str()]);
        assert_eq!(quiet.code, 0, "{file}: {}", quiet.stderr);
        assert!(
            quiet.alerts.is_empty(),
            "{file} alerted at the default threshold: {:?}",
            quiet.alerts
        );

        let loud = dns_sensor([
            "replay".as_ref(),
            "--threshold".as_ref(),
            "10".as_ref(),
            path.as_os_str(),
        ]);
        assert_eq!(loud.code, 0, "{file}: {}", loud.stderr);
        assert_eq!(loud.domains(), vec![domain], "{file}");
        assert_eq!(loud.alerts[0]["unique_hostnames"], unique, "{file}");
        assert_eq!(loud.alerts[0]["total_requests"], unique, "{file}");
    }
}

#[test]
fn several_files_replay_together_in_time_order() {
    let run = dns_sensor([
        "replay".as_ref(),
        "--threshold".as_ref(),
        "10".as_ref(),
        capture("dmachard-dnscat2.pcap").as_os_str(),
        capture("elastic-iodine-tunnel.pcap").as_os_str(),
        capture("dmachard-iodine.pcap").as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut domains = run.domains();
    domains.sort();
    assert_eq!(domains, vec!["biillpi.com", "pirate.sea"], "{}", run.stderr);
    // dnscat2 and iodine from dmachard share biillpi.com and were captured the same day.
    assert_eq!(run.for_domain("biillpi.com")[0]["unique_hostnames"], 24);
}

#[test]
fn summary_reports_what_was_read() {
    let run = dns_sensor([
        "replay".as_ref(),
        capture("elastic-iodine-tunnel.pcap").as_os_str(),
    ]);
    assert!(run.stderr.contains("438 frames read"), "{}", run.stderr);
    assert!(run.stderr.contains("434 DNS messages"), "{}", run.stderr);
    assert!(run.stderr.contains("1 alerts"), "{}", run.stderr);
}
