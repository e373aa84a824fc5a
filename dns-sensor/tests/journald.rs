//! The journal, for real: `dns-sensor replay` beside a private `systemd-journald`
//! (tests/common/journal.rs), read back with `journalctl -o json`. Needs root (a mount
//! namespace): `cargo xtask ci` runs these as root with `--ignored`.

mod common;

use std::ffi::OsStr;

use common::hostile;
use common::journal::run_with_journal;
use common::{capture, TempDir};

const MESSAGE_ID: &str = "c02f30fa7d4846fa8846c606a7ea6dc5";

fn sensor() -> &'static OsStr {
    OsStr::new(env!("CARGO_BIN_EXE_dns-sensor"))
}

#[test]
#[ignore = "root: cargo xtask ci runs it"]
fn each_alert_is_one_structured_entry_with_the_reference_figures() {
    let dir = TempDir::new("journald-alert");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "[output.journald]\nenabled = true\n").unwrap();
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let run = run_with_journal(
        &[
            sensor(),
            OsStr::new("replay"),
            OsStr::new("--config"),
            config.as_os_str(),
            iodine.as_os_str(),
        ],
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.with("MESSAGE_ID", MESSAGE_ID);
    assert_eq!(alerts.len(), 1, "{:#?}", run.entries);
    let entry = alerts[0];
    for (field, value) in [
        ("PRIORITY", "4"),
        ("SYSLOG_IDENTIFIER", "dns-sensor"),
        ("DNS_DOMAIN", "pirate.sea"),
        ("UNIQUE_HOSTNAMES", "222"),
        ("TOTAL_REQUESTS", "222"),
        ("TOTAL_BYTES_IN", "16812"),
        ("TOTAL_BYTES_OUT", "35212"),
        ("TOTAL_BYTES", "52024"),
        ("TOP_CLIENTS", "10.0.2.30=222"),
        ("THRESHOLD", "200"),
        ("ESTIMATED", "false"),
        ("WINDOW_START", "2010-08-20T22:00:00.000Z"),
        ("QTYPES", "NULL=222"),
        // iodine looks like a tunnel: high, a warning.
        ("SEVERITY", "high"),
        ("EVIDENCE_CLIENTS", "1"),
        ("EVIDENCE_NAMES_PER_QUERY", "1"),
        ("EVIDENCE_DATA_QTYPE_SHARE", "1"),
    ] {
        assert_eq!(entry[field], value, "{field}: {entry:#}");
    }
    assert!(entry["WINDOW_END"]
        .as_str()
        .is_some_and(|t| t.starts_with("2010-08-21T02:11:04")));
    let score = entry["SCORE"].as_str().expect("a SCORE");
    assert!(
        score.parse::<u8>().is_ok_and(|s| (50..=100).contains(&s)),
        "{score}"
    );
    let reasons = entry["REASONS"].as_str().expect("REASONS");
    assert!(
        reasons.starts_with("names do not repeat,one client"),
        "{reasons}"
    );
    let message = entry["MESSAGE"].as_str().expect("a MESSAGE");
    assert!(
        message.starts_with(&format!(
            "[high {score}] suspected DNS tunnel: pirate.sea had 222 unique hostnames \
             (threshold 200)"
        )),
        "{message}"
    );
    assert!(message.contains("from 10.0.2.30 (222)"), "{message}");
    assert_eq!(entry["ALERT_ID"].as_str().map(str::len), Some(36));
    // The same alert on stdout too: replay keeps it on unless told otherwise.
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
}

#[test]
#[ignore = "root: cargo xtask ci runs it"]
fn operational_lines_keep_their_priority_under_a_service_manager() {
    let dir = TempDir::new("journald-priority");
    // A capture cut inside a record (a warning) and a file output that cannot take the
    // alert (an error).
    let whole = std::fs::read(capture("elastic-iodine-tunnel.pcap")).unwrap();
    let cut = dir.path("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 7]).unwrap();
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "[output.file]\npath = \"/dev/full\"\n").unwrap();
    let run = run_with_journal(
        &[
            sensor(),
            OsStr::new("replay"),
            OsStr::new("--config"),
            config.as_os_str(),
            cut.as_os_str(),
        ],
        true,
    );
    // The output failed: replay says so in its exit status.
    assert_eq!(run.code, 1, "{}", run.stderr);
    let ours: Vec<_> = run.with("SYSLOG_IDENTIFIER", "dns-sensor");
    let priority_of = |needle: &str| {
        ours.iter()
            .find(|e| e["MESSAGE"].as_str().is_some_and(|m| m.contains(needle)))
            .map(|e| e["PRIORITY"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no entry with {needle:?}: {ours:#?}"))
    };
    assert_eq!(priority_of("/dev/full"), "3");
    assert_eq!(priority_of("cut short"), "4");
    // Nothing of it went to stderr as text: the journal has it, once.
    assert!(!run.stderr.contains("/dev/full"), "{}", run.stderr);
}

#[test]
#[ignore = "root: cargo xtask ci runs it"]
fn hostile_names_forge_no_field_and_no_line_in_the_journal() {
    let dir = TempDir::new("journald-hostile");
    let pcap = dir.path("hostile.pcap");
    hostile::write(&pcap);
    let config = dir.path("sensor.toml");
    std::fs::write(
        &config,
        "threshold = 2\n[output.stdout]\nenabled = false\n[output.journald]\nenabled = true\n",
    )
    .unwrap();
    let run = run_with_journal(
        &[
            sensor(),
            OsStr::new("replay"),
            OsStr::new("--config"),
            config.as_os_str(),
            pcap.as_os_str(),
        ],
        true,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.with("MESSAGE_ID", MESSAGE_ID);
    assert_eq!(alerts.len(), 1, "{:#?}", run.entries);
    let entry = alerts[0];
    assert_eq!(entry["DNS_DOMAIN"], hostile::ESCAPED_DOMAIN);
    // New names from one client, TXT: high, a warning.
    assert_eq!(entry["SEVERITY"], "high", "{entry:#}");
    assert_eq!(entry["PRIORITY"], "4");
    for (key, value) in entry.as_object().expect("an object") {
        assert!(!key.contains("FORGED"), "{key}");
        // journalctl prints a value that is not valid UTF-8 or holds control
        // characters as an array of bytes: every one of ours is a plain string.
        let text = value
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not text: {value}"));
        if !key.starts_with('_') {
            assert!(hostile::printable(text.as_bytes()), "{key}={text:?}");
        }
    }
    let samples = entry["SAMPLE_NAMES"].as_str().unwrap();
    assert_eq!(samples.split(' ').count(), 5, "{samples}");
    // No entry of ours but the alert and the summary-free run's own lines, and none of
    // them holds a name's raw bytes.
    for e in run.with("SYSLOG_IDENTIFIER", "dns-sensor") {
        let message = e["MESSAGE"].as_str().unwrap_or_default();
        assert!(hostile::printable(message.as_bytes()), "{message:?}");
        assert!(!message.contains("fake log line\n"), "{message:?}");
    }
}

#[test]
#[ignore = "root: cargo xtask ci runs it"]
fn a_low_alert_is_a_notice_and_a_high_one_a_warning() {
    use dns_sensor::synth::scenario::{background, Tunnel};
    const START: u64 = 1_700_000_000 * dns_sensor::NANOS_PER_SEC;
    const MINUTE: u64 = 60 * dns_sensor::NANOS_PER_SEC;
    // Under a threshold of 5, the busy services of 40 clients alert low, the tunnel high.
    let mut traffic = background(START, MINUTE, 50, 40, 7);
    traffic.extend(Tunnel::new("tunnel.example", 50, START, MINUTE).build().0);
    let dir = TempDir::new("journald-severity");
    let pcap = dir.path("busy.pcap");
    traffic.write_pcap(&pcap).unwrap();
    let config = dir.path("sensor.toml");
    std::fs::write(
        &config,
        "threshold = 5\n[output.stdout]\nenabled = false\n[output.journald]\nenabled = true\n",
    )
    .unwrap();
    let run = run_with_journal(
        &[
            sensor(),
            OsStr::new("replay"),
            OsStr::new("--config"),
            config.as_os_str(),
            pcap.as_os_str(),
        ],
        true,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.with("MESSAGE_ID", MESSAGE_ID);
    assert!(alerts.len() >= 3, "{:#?}", run.entries);
    for entry in &alerts {
        let (severity, priority) = if entry["DNS_DOMAIN"] == "tunnel.example" {
            ("high", "4")
        } else {
            ("low", "5")
        };
        assert_eq!(entry["SEVERITY"], severity, "{entry:#}");
        assert_eq!(entry["PRIORITY"], priority, "{entry:#}");
        let message = entry["MESSAGE"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("[{severity} ")), "{message}");
    }
    assert_eq!(alerts.iter().filter(|e| e["SEVERITY"] == "high").count(), 1);
}
