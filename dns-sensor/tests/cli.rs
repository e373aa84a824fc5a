//! End to end on bad input: settings, files and captures that are wrong in the ways
//! users and attackers make them. Exit status 2 with a message that says what and where,
//! or exit 0 with what was skipped counted, never a crash.

mod common;

use common::{capture, dns_sensor, dns_sensor_text, dns_sensor_text_with_stdin, TempDir};

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

/// The error line a command logged, without the logger's time and level.
fn error_line(stderr: &str) -> &str {
    let line = stderr
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error logged: {stderr}"));
    line.split_once("] ").map_or(line, |(_, message)| message)
}

#[test]
fn check_config_describes_a_valid_file_and_creates_nothing() {
    let dir = TempDir::new("check-valid");
    let whitelist = dir.path("whitelist.txt");
    std::fs::write(&whitelist, "# ours\ncorp.example\nbackup.example.net\n").unwrap();
    let alerts = dir.path("alerts.json");
    let config = dir.path("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "threshold = 50\nwindow = \"2h\"\nwhitelist = [\"a.example\"]\n\
             whitelist_files = [{whitelist:?}]\n[output.file]\npath = {alerts:?}\n"
        ),
    )
    .unwrap();
    let run = dns_sensor_text(["check-config".as_ref(), config.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("{}: valid\n", config.display())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("more than 50 unique names"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("within 2h,"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("whitelist: 3 entries (1 in the file, 2 from 1 whitelist files)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("file {}", alerts.display())),
        "{}",
        run.stdout
    );
    assert!(!alerts.exists(), "checking must not create the alert file");
}

#[test]
fn check_config_reports_a_bad_key_as_replay_does() {
    let dir = TempDir::new("check-bad-key");
    let config = dir.path("sensor.toml");
    std::fs::write(
        &config,
        "threshold = 10\n\n[output.file]\nformats = \"ecs\"\n",
    )
    .unwrap();
    let check = dns_sensor_text(["check-config".as_ref(), config.as_os_str()]);
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert!(check.stdout.is_empty(), "{}", check.stdout);
    let message = error_line(&check.stderr);
    assert!(
        message.starts_with(&format!("{}:4:", config.display())) && message.contains("formats"),
        "{message}"
    );
    let replay = dns_sensor_text([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        capture("dmachard-iodine.pcap").as_os_str(),
    ]);
    assert_eq!(replay.code, 2);
    assert_eq!(error_line(&replay.stderr), message);
    // A file that is not there: named once, its reason once.
    let gone = dir.path("gone.toml");
    let check = dns_sensor_text(["check-config".as_ref(), gone.as_os_str()]);
    let replay = dns_sensor_text([
        "replay".as_ref(),
        "--config".as_ref(),
        gone.as_os_str(),
        capture("dmachard-iodine.pcap").as_os_str(),
    ]);
    assert_eq!((check.code, replay.code), (2, 2));
    let message = error_line(&check.stderr);
    assert_eq!(message.matches("No such file").count(), 1, "{message}");
    assert!(
        message.starts_with(&gone.display().to_string()),
        "{message}"
    );
    assert_eq!(error_line(&replay.stderr), message);
}

#[test]
fn check_config_refuses_what_run_would_refuse_and_says_where() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("check-refuses");
    let credentials = dir.path("smtp-credentials");
    std::fs::write(&credentials, "username = \"u\"\npassword = \"p\"\n").unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.path("no-such-dir");
    let email = |extra: &str| {
        format!(
            "[output.email]\nenabled = true\nserver = \"127.0.0.1\"\n\
             from = \"sensor@example.org\"\nto = [\"soc@example.org\"]\n{extra}"
        )
    };
    let cases = [
        (
            "a whitelist file that is not there",
            format!("whitelist_files = [{:?}]\n", missing.join("wl.txt")),
            missing.join("wl.txt").display().to_string(),
        ),
        (
            "a whitelist entry that is no domain",
            "whitelist = [\"bad..example\"]\n".to_string(),
            "bad..example".to_string(),
        ),
        (
            "a credentials file others can read",
            email(&format!("credentials_file = {credentials:?}\n")),
            credentials.display().to_string(),
        ),
        (
            "a recipient that is no address",
            email("").replace("soc@example.org", "soc at example"),
            "soc at example".to_string(),
        ),
        (
            "a certificate file that is not there",
            email(&format!("ca_file = {:?}\n", missing.join("ca.pem"))),
            missing.join("ca.pem").display().to_string(),
        ),
        (
            "an alert file in a directory that is not there",
            format!("[output.file]\npath = {:?}\n", missing.join("alerts.json")),
            format!("{}: No such file", missing.join("alerts.json").display()),
        ),
    ];
    for (what, text, named) in cases {
        let config = dir.path("sensor.toml");
        std::fs::write(&config, &text).unwrap();
        let run = dns_sensor_text(["check-config".as_ref(), config.as_os_str()]);
        assert_eq!(run.code, 2, "{what}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);
        let message = error_line(&run.stderr);
        assert!(message.contains(&named), "{what}: {message}");
    }
    assert!(!missing.exists());
}

#[test]
fn replay_reads_a_capture_from_standard_input() {
    let tunnel = capture("elastic-iodine-tunnel.pcap");
    let other = capture("dmachard-dnscat2.pcap");
    let open = |path: &std::path::Path| std::fs::File::open(path).expect("capture");
    let from_file = dns_sensor(["replay".as_ref(), tunnel.as_os_str(), other.as_os_str()]);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    assert!(!from_file.alerts.is_empty());
    let alerts = |stdout: &str| -> Vec<serde_json::Value> {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    // The same alerts, the tunnel's capture on standard input, merged with a file.
    let run = dns_sensor_text_with_stdin(
        ["replay".as_ref(), "-".as_ref(), other.as_os_str()],
        open(&tunnel),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(alerts(&run.stdout), from_file.alerts);
    // Standard input can be read once; an empty one is a capture cut short.
    let run = dns_sensor_text_with_stdin(["replay", "-", "-"], open(&tunnel));
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("standard input (-) can be read only once"),
        "{}",
        run.stderr
    );
    let empty = std::fs::File::open("/dev/null").expect("/dev/null");
    let run = dns_sensor_text_with_stdin(["replay", "-"], empty);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("standard input: cut short at byte offset 0"),
        "{}",
        run.stderr
    );
}

#[test]
fn replay_summary_as_json_for_scripts() {
    let tunnel = capture("elastic-iodine-tunnel.pcap");
    let text = dns_sensor_text(["replay".as_ref(), tunnel.as_os_str()]);
    let json = dns_sensor_text([
        "replay".as_ref(),
        "--summary".as_ref(),
        "json".as_ref(),
        tunnel.as_os_str(),
    ]);
    assert_eq!((text.code, json.code), (0, 0), "{}", json.stderr);
    // The alerts are the same; the summary's last line is one JSON object.
    assert_eq!(json.stdout, text.stdout);
    let last = json.stderr.lines().last().expect("a summary");
    let summary: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"));
    let decode = &summary["workers"]["decode"];
    assert_eq!(decode["frames"], 438);
    assert_eq!(decode["dns_messages"], 434);
    assert_eq!(decode["not_ip"], 4);
    assert_eq!(summary["workers"]["queries"], 222);
    assert_eq!(summary["workers"]["responses"], 212);
    assert_eq!(summary["alerts"], 1);
    assert_eq!(summary["evaluations"], 1);
    assert_eq!(summary["shed_records"], 0);
    assert_eq!(summary["cut_short"], serde_json::json!([]));
    assert!(summary["frames_per_second"]
        .as_f64()
        .is_some_and(|r| r > 0.0));
    // The text summary says the same.
    assert!(text
        .stderr
        .contains("438 frames read, 434 DNS messages (222 queries, 212 responses)"));
    // A capture cut short is named in the JSON too.
    let dir = TempDir::new("summary-cut");
    let bytes = std::fs::read(&tunnel).expect("capture");
    let cut = dir.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let run = dns_sensor_text([
        "replay".as_ref(),
        "--summary".as_ref(),
        "json".as_ref(),
        cut.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value =
        serde_json::from_str(run.stderr.lines().last().expect("a summary")).expect("JSON");
    let said = summary["cut_short"][0].as_str().unwrap_or_default();
    assert!(said.contains(&cut.display().to_string()), "{summary}");
}

#[test]
fn the_text_summary_is_a_few_lines_without_the_counts_that_are_zero() {
    let tunnel = capture("elastic-iodine-tunnel.pcap");
    let run = dns_sensor_text(["replay".as_ref(), tunnel.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("dns-sensor: "))
        .collect();
    assert_eq!(
        summary[..4],
        [
            "dns-sensor: 438 frames read, 434 DNS messages (222 queries, 212 responses)",
            "  not counted: 4 not IP",
            "  window: at most 1 domains (0.0 MiB of tables)",
            "  rule: 1 evaluations, 1 alerts",
        ],
        "{}",
        run.stderr
    );
    assert!(summary[4].starts_with("  time: "), "{}", run.stderr);
    assert_eq!(summary.len(), 5, "{}", run.stderr);
    // Not on a terminal: no progress display, nothing but lines.
    assert!(!run.stderr.contains(['\r', '\x1b']), "{:?}", run.stderr);
}

#[test]
fn a_replay_shows_its_progress_when_stderr_is_a_terminal() {
    // script(1) runs the replay on a pseudo-terminal and copies what it shows.
    let tunnel = capture("elastic-iodine-tunnel.pcap");
    let command = format!(
        "'{}' replay '{}' >/dev/null",
        env!("CARGO_BIN_EXE_dns-sensor"),
        tunnel.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1), from util-linux's bsdutils");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    // The bar (bytes of the file's size, the rate, the time left), cleared before the
    // summary.
    let size = std::fs::metadata(&tunnel).expect("capture").len();
    let total = format!("/{:.2} KiB", size as f64 / 1024.0);
    assert!(shown.contains(&total), "{total} in {shown:?}");
    assert!(
        shown.contains("frames/s, ") && shown.contains(" left"),
        "{shown:?}"
    );
    assert!(shown.contains("\x1b[2K"), "{shown:?}");
    assert!(shown.contains("dns-sensor: 438 frames read"), "{shown:?}");
}
