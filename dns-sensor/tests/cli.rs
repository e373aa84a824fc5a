//! End to end on bad input: settings, files and captures that are wrong in the ways
//! users and attackers make them. Exit status 2 with a message that says what and where,
//! or exit 0 with what was skipped counted, never a crash.

mod common;

use common::{capture, dns_sensor, TempDir};

#[test]
fn unknown_config_key_exits_2_naming_file_key_and_line() {
    let dir = TempDir::new("unknown-key");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "threshold = 10\nwindow = \"1h\"\nthreshhold = 5\n").unwrap();
    let run = dns_sensor([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        capture("dmachard-iodine.pcap").as_os_str(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.alerts.is_empty());
    let expected_place = format!("{}:3", config.display());
    assert!(run.stderr.contains(&expected_place), "{}", run.stderr);
    assert!(run.stderr.contains("threshhold"), "{}", run.stderr);
}

#[test]
fn bad_config_value_exits_2_naming_the_line() {
    let dir = TempDir::new("bad-value");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "# comment\nrealert = \"soon\"\n").unwrap();
    let run = dns_sensor([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        capture("dmachard-iodine.pcap").as_os_str(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{}:2", config.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn config_file_settings_apply_and_flags_override_them() {
    let dir = TempDir::new("config-applies");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "threshold = 10\nwhitelist = []\n").unwrap();
    let iodine = capture("dmachard-iodine.pcap");
    let from_file = dns_sensor([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        iodine.as_os_str(),
    ]);
    assert_eq!(
        from_file.domains(),
        vec!["biillpi.com"],
        "{}",
        from_file.stderr
    );

    let overridden = dns_sensor([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--threshold".as_ref(),
        "12".as_ref(),
        iodine.as_os_str(),
    ]);
    assert!(
        overridden.alerts.is_empty(),
        "12 unique names do not exceed 12"
    );

    let whitelisted = dns_sensor([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--whitelist".as_ref(),
        "BIILLPI.com.".as_ref(),
        iodine.as_os_str(),
    ]);
    assert!(whitelisted.alerts.is_empty(), "{:?}", whitelisted.alerts);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(dns_sensor(["replay"]).code, 2);
    assert_eq!(dns_sensor(["replay", "--threshold", "0", "x.pcap"]).code, 2);
    assert_eq!(
        dns_sensor(["replay", "--window", "a while", "x.pcap"]).code,
        2
    );
    assert_eq!(dns_sensor(["frobnicate"]).code, 2);
}

#[test]
fn missing_file_exits_2_naming_it() {
    let run = dns_sensor(["replay", "/nonexistent/capture.pcap"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/capture.pcap"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_file_that_is_not_a_capture_exits_2_naming_file_and_offset() {
    let not_a_capture = capture("README.md");
    let run = dns_sensor(["replay".as_ref(), not_a_capture.as_os_str()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("README.md"), "{}", run.stderr);
    assert!(run.stderr.contains("offset 0"), "{}", run.stderr);
}

#[test]
fn a_cut_short_capture_reports_what_it_read_with_a_warning() {
    let whole = std::fs::read(capture("elastic-iodine-tunnel.pcap")).unwrap();
    let dir = TempDir::new("cut-short");
    let cut = dir.path("cut.pcap");
    // Cut in the middle of a record, well past the half of the tunnel.
    std::fs::write(&cut, &whole[..whole.len() * 3 / 4]).unwrap();
    let run = dns_sensor([
        "replay".as_ref(),
        "--threshold".as_ref(),
        "100".as_ref(),
        cut.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cut short at byte offset"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("cut.pcap"), "{}", run.stderr);
    assert_eq!(run.domains(), vec!["pirate.sea"]);
    let unique = run.alerts[0]["unique_hostnames"].as_u64().unwrap();
    assert!(unique > 100 && unique < 222, "{unique}");
}

/// Other projects' DNS test captures, crafted edge cases included: every one replays
/// with exit 0, on the standard and the non-standard ports they use.
#[test]
fn every_peer_capture_replays_cleanly() {
    let dir = TempDir::new("peers");
    let config = dir.path("ports.toml");
    std::fs::write(&config, "ports = [53, 1053, 5353, 5355]\nthreshold = 1\n").unwrap();
    let mut replayed = 0;
    for entry in std::fs::read_dir(capture("peers")).unwrap() {
        let path = entry.unwrap().path();
        let is_capture = path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng");
        if !is_capture {
            continue;
        }
        let run = dns_sensor([
            "replay".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            path.as_os_str(),
        ]);
        assert_eq!(run.code, 0, "{}: {}", path.display(), run.stderr);
        assert!(
            run.stderr.contains("frames read"),
            "{}: {}",
            path.display(),
            run.stderr
        );
        for alert in &run.alerts {
            for name in alert["sample_names"].as_array().unwrap() {
                let name = name.as_str().unwrap();
                assert!(
                    name.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                    "{}: unescaped byte in {name:?}",
                    path.display()
                );
            }
        }
        replayed += 1;
    }
    assert!(replayed >= 60, "only {replayed} peer captures found");
}

#[test]
fn run_without_an_interface_says_where_to_set_it() {
    let run = dns_sensor(["run", "--interface", ""]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("DNS_SENSOR_INTERFACE in /etc/default/dns-sensor"),
        "{}",
        run.stderr
    );
}
