//! The fleet end to end: sensors replaying captures ship their slots to a real
//! ClickHouse server (Debian's 18.16, started on loopback for the test), and
//! `dns-sensor fleet check` evaluates the rule over all of them.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::clickhouse::ClickHouse;
use common::{capture, dns_sensor, TempDir};
use dns_sensor::capture::{CaptureReader, LinkType};
use dns_sensor::decode::{DecodeSettings, Decoder};
use dns_sensor::Nanos;
use serde_json::Value;

fn clickhouse() -> ClickHouse {
    ClickHouse::start()
        .expect("clickhouse-server is not installed: `cargo xtask setup` installs it")
}

/// A settings file shipping to `server` as `sensor`.
fn fleet_config(dir: &TempDir, server: &ClickHouse, sensor: &str) -> PathBuf {
    let path = dir.path(&format!("{sensor}.toml"));
    let text = format!(
        "[fleet]\nclickhouse = \"{}\"\ndatabase = \"dns_sensor\"\nsensor = \"{sensor}\"\n",
        server.url()
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// The frames of `path`, each with its time, and the link type.
fn frames_of(path: &Path) -> (LinkType, Vec<(Nanos, Vec<u8>)>) {
    let mut reader = CaptureReader::open(path).expect("capture");
    let mut frames = Vec::new();
    let mut link = None;
    reader
        .for_each_frame(|frame| {
            link = Some(frame.link);
            frames.push((frame.ts, frame.data.to_vec()));
        })
        .expect("read");
    (link.expect("frames"), frames)
}

/// `path` split in two as two links would carry it: the queries alternate between
/// them, and each response goes with its query (same client, port and DNS ID).
fn split_by_alternating_queries(path: &Path, into: [&Path; 2]) -> usize {
    let (link, frames) = frames_of(path);
    let mut decoder = Decoder::new(DecodeSettings::default());
    let mut link_of: HashMap<(IpAddr, u16, u16), usize> = HashMap::new();
    let mut parts: [Vec<(Nanos, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    let mut queries = 0;
    for (ts, data) in frames {
        let mut side = 0;
        let frame = dns_sensor::capture::Frame {
            ts,
            link,
            data: &data,
        };
        decoder.decode(&frame, |packet| {
            let id = u16::from_be_bytes([packet.message[0], packet.message[1]]);
            let is_response = packet.message[2] & 0x80 != 0;
            side = if is_response {
                let key = (packet.dst, packet.dst_port, id);
                link_of.get(&key).copied().unwrap_or(0)
            } else {
                queries += 1;
                link_of.insert((packet.src, packet.src_port, id), queries % 2);
                queries % 2
            };
        });
        parts[side].push((ts, data));
    }
    for (part, path) in parts.iter().zip(into) {
        dns_sensor::synth::write_pcap(path, link, part.iter().map(|(t, f)| (*t, f)))
            .expect("write");
    }
    queries
}

/// RFC 3339 with nanoseconds, as `fleet check --at` takes it.
fn rfc3339(t: Nanos) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(t)).to_string()
}

/// `dns-sensor replay --config CONFIG EXTRA... CAPTURE`, which must succeed.
fn replay_shipping(config: &Path, extra: &[&str], capture: &Path) -> common::Run {
    let mut args: Vec<OsString> = vec!["replay".into(), "--config".into(), config.into()];
    args.extend(extra.iter().map(OsString::from));
    args.push(capture.into());
    let run = dns_sensor(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// `dns-sensor fleet check --config CONFIG EXTRA... --at AT`, which must succeed.
fn fleet_check(config: &Path, extra: &[&str], at: Nanos) -> common::Run {
    let mut args: Vec<OsString> = vec![
        "fleet".into(),
        "check".into(),
        "--config".into(),
        config.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args.extend(["--at".into(), rfc3339(at).into()]);
    let run = dns_sensor(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// The alert of one sensor watching both links of the iodine tunnel, in the figures
/// every fleet test checks: 222 queries, 222 names, 16 812 bytes in and 35 212 out.
fn assert_whole_iodine_tunnel(alert: &Value) {
    assert_eq!(alert["unique_hostnames"], 222, "{alert}");
    assert_eq!(alert["total_requests"], 222, "{alert}");
    assert_eq!(alert["total_bytes_in"], 16_812, "{alert}");
    assert_eq!(alert["total_bytes_out"], 35_212, "{alert}");
}

/// A nanosecond after the last of `frames`: when an evaluation covers them all.
fn after_last_frame(frames: &[(Nanos, Vec<u8>)]) -> Nanos {
    frames.iter().map(|(t, _)| *t).max().expect("frames") + 1
}

/// The alert of `domain` among `alerts`.
fn alert_for<'a>(alerts: &'a [Value], domain: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| a["domain"] == domain)
}

#[test]
fn a_tunnel_split_across_two_sensors_alerts_in_the_fleet_with_the_figures_of_one() {
    let server = clickhouse();
    let dir = TempDir::new("fleet-split");
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let (a, b) = (dir.path("link-a.pcap"), dir.path("link-b.pcap"));
    let queries = split_by_alternating_queries(&iodine, [&a, &b]);
    assert_eq!(queries, 222);

    // One sensor on both links: the figures the fleet must give.
    let whole = dns_sensor(["replay".as_ref(), iodine.as_os_str()]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let expected = alert_for(&whole.alerts, "pirate.sea")
        .expect("the whole tunnel alerts")
        .clone();
    assert_eq!(expected["unique_hostnames"], 222);

    // Each link's sensor sees half of it, under the threshold, and ships its slots.
    for (sensor, part) in [("link-a", &a), ("link-b", &b)] {
        let config = fleet_config(&dir, &server, sensor);
        let run = replay_shipping(&config, &[], part);
        assert!(
            run.alerts.is_empty(),
            "{sensor} alone alerts: {:?}",
            run.alerts
        );
        assert!(
            run.stderr.contains("fleet: 1 slots shipped"),
            "{}",
            run.stderr
        );
    }

    // The fleet, evaluated when the single sensor's last evaluation was.
    let (_, frames) = frames_of(&iodine);
    let at = after_last_frame(&frames);
    let config = fleet_config(&dir, &server, "analyst");
    let check = fleet_check(&config, &[], at);
    assert_eq!(check.domains(), vec!["pirate.sea"], "{}", check.stderr);
    let fleet = &check.alerts[0];
    for field in [
        "@timestamp",
        "total_requests",
        "unique_hostnames",
        "total_bytes_in",
        "total_bytes_out",
        "total_bytes",
        "window_start",
        "window_end",
        "top_clients",
        "qtypes",
        "severity",
        "reasons",
    ] {
        assert_eq!(
            fleet[field], expected[field],
            "{field}: fleet {fleet} one sensor {expected}"
        );
    }
    // The evidence too, but for the samples' part: each sensor kept its own first
    // names, so the character mix may differ in the last digit.
    for figure in [
        "names_per_query",
        "clients",
        "name_length",
        "labels",
        "longest_label",
    ] {
        assert_eq!(
            fleet["evidence"][figure], expected["evidence"][figure],
            "{figure}: fleet {fleet} one sensor {expected}"
        );
    }
    assert_whole_iodine_tunnel(fleet);
    assert!(
        check.stderr.contains("pirate.sea seen by link-a, link-b"),
        "{}",
        check.stderr
    );

    // Replaying a link again ships its slot again: the table keeps one row per
    // sensor, slot and domain, so the figures do not change.
    let config_a = fleet_config(&dir, &server, "link-a");
    replay_shipping(&config_a, &[], &a);
    let recheck = fleet_check(&config, &[], at);
    assert_eq!(recheck.alerts, check.alerts, "{}", recheck.stderr);
    // A threshold over the fleet's count: no alert.
    let quiet = fleet_check(&config, &["--threshold", "222"], at);
    assert!(quiet.alerts.is_empty(), "{:?}", quiet.alerts);
}

#[test]
fn a_table_of_the_version_before_the_evidence_gains_its_columns_and_its_alerts_their_severity() {
    let server = clickhouse();
    let dir = TempDir::new("fleet-migrate");
    // The table as the version before issue 13 made it.
    server.query("CREATE DATABASE dns_sensor");
    server.query(
        "CREATE TABLE dns_sensor.domain_slots (sensor String, slot_start UInt64, \
         slot_end UInt64, domain String, requests UInt64, responses UInt64, \
         bytes_in UInt64, bytes_out UInt64, names Array(UInt64), names_estimated UInt8, \
         names_estimate UInt64, client_addresses Array(String), \
         client_queries Array(UInt64), qtypes Array(UInt16), qtype_queries Array(UInt64), \
         samples Array(String), version UInt64) ENGINE = ReplacingMergeTree(version) \
         PARTITION BY toYYYYMM(toDateTime(intDiv(slot_start, 1000000000))) \
         ORDER BY (slot_start, domain, sensor)",
    );
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let config = fleet_config(&dir, &server, "link");
    let run = replay_shipping(&config, &[], &iodine);
    assert!(
        run.stderr.contains("fleet: 1 slots shipped"),
        "{}",
        run.stderr
    );
    let columns = server.query(
        "SELECT name FROM system.columns WHERE database = 'dns_sensor' \
         AND table = 'domain_slots' AND name IN ('clients', 'shape_names', 'nxdomain')",
    );
    assert_eq!(columns.lines().count(), 3, "{columns}");
    let (_, frames) = frames_of(&iodine);
    let check = fleet_check(&config, &[], after_last_frame(&frames));
    let alert = alert_for(&check.alerts, "pirate.sea").expect("the tunnel alerts");
    let sensor_alone = alert_for(&run.alerts, "pirate.sea").expect("and on the sensor");
    assert_eq!(alert["severity"], "high", "{alert}");
    assert_eq!(alert["score"], sensor_alone["score"], "{alert}");
    assert_eq!(alert["evidence"]["clients"], 1);
}

/// A tunnel-like domain whose label is made to break SQL, JSON and terminals: `names`
/// names under it, the queries from `client`, a second apart from `start`.
fn hostile_capture(path: &Path, names: u16, client: &str) {
    use dns_sensor::synth::{query_labels, udp_frame, Flow};
    let hostile: &[u8] = b"x');DROP TABLE dns_sensor.domain_slots;--\"\\\x00\n\x1b[2J\xff";
    let flow = Flow::to_dns(
        client.parse().unwrap(),
        40000,
        "192.0.2.53".parse().unwrap(),
    );
    let start: Nanos = 1_800_000_000 * 1_000_000_000;
    let frames = (0..names).map(|i| {
        let label = format!("n{i}");
        let message = query_labels(i, &[label.as_bytes(), hostile, b"sea"], 16);
        (
            start + u64::from(i) * 1_000_000_000,
            udp_frame(&flow, &message),
        )
    });
    dns_sensor::synth::write_pcap(path, LinkType::Ethernet, frames).expect("write");
}

#[test]
fn hostile_domain_names_reach_clickhouse_as_data_and_come_back_as_the_sensor_writes_them() {
    let server = clickhouse();
    let dir = TempDir::new("fleet-hostile");
    let capture = dir.path("hostile.pcap");
    hostile_capture(&capture, 30, "198.51.100.9");
    // What one sensor reports, and ships.
    let config = fleet_config(&dir, &server, "dc1");
    let sensor = replay_shipping(&config, &["--threshold", "20"], &capture);
    assert_eq!(sensor.alerts.len(), 1, "{}", sensor.stderr);
    let expected = &sensor.alerts[0];
    let domain = expected["domain"].as_str().unwrap();
    assert!(
        domain.is_ascii() && !domain.contains(' ') && domain.contains("drop\\032table"),
        "{domain}"
    );
    // The table is intact and holds the domain as the sensor wrote it.
    let stored = server.query(
        "SELECT domain, length(names) AS names FROM dns_sensor.domain_slots FORMAT JSONEachRow",
    );
    assert_eq!(stored.lines().count(), 1, "{stored}");
    let stored: Value = serde_json::from_str(stored.trim_end()).expect("a row");
    assert_eq!(stored["domain"], domain);
    assert_eq!(stored["names"], 30);
    // The fleet's alert names it the same way, with the same figures.
    let (_, frames) = frames_of(&capture);
    let at = after_last_frame(&frames);
    let check = fleet_check(&config, &["--threshold", "20"], at);
    assert_eq!(check.alerts.len(), 1, "{}", check.stderr);
    let fleet = &check.alerts[0];
    for field in [
        "domain",
        "unique_hostnames",
        "total_requests",
        "total_bytes_in",
        "top_clients",
        "sample_names",
        "window_start",
    ] {
        assert_eq!(fleet[field], expected[field], "{field}");
    }
    assert!(
        check.stderr.is_ascii() && !check.stderr.contains('\u{1b}'),
        "{}",
        check.stderr
    );
}

#[test]
fn slots_wait_while_clickhouse_is_down_and_are_sent_once_it_is_back() {
    let mut server = clickhouse();
    let dir = TempDir::new("fleet-down");
    let capture = dir.path("hostile.pcap");
    hostile_capture(&capture, 30, "198.51.100.9");
    let config = fleet_config(&dir, &server, "dc1");
    server.stop();
    // The replay ends once its slot is sent: it waits for the server to come back.
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_dns-sensor"))
        .args([
            "replay".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            capture.as_os_str(),
        ])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dns-sensor runs");
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    let output = replay.wait_with_output().expect("replay ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("slots wait and are tried again"),
        "{stderr}"
    );
    assert!(stderr.contains("takes slots again"), "{stderr}");
    assert!(stderr.contains("fleet: 1 slots shipped"), "{stderr}");
    assert!(!stderr.contains(" 0 failed tries"), "{stderr}");
    let stored =
        server.query("SELECT count(), sum(length(names)) FROM dns_sensor.domain_slots FORMAT TSV");
    assert_eq!(stored, "1\t30\n");
}

#[test]
fn a_password_user_ships_and_checks_and_a_wrong_password_is_an_error_that_says_so() {
    let server = clickhouse();
    let dir = TempDir::new("fleet-auth");
    let capture = dir.path("hostile.pcap");
    hostile_capture(&capture, 30, "198.51.100.9");
    let with_password = |name: &str, password: &str| {
        let file = dir.path(&format!("{name}.password"));
        std::fs::write(&file, format!("{password}\n")).expect("password file");
        let config = dir.path(&format!("{name}.toml"));
        let text = format!(
            "[fleet]\nclickhouse = \"{}\"\nsensor = \"dc1\"\nuser = \"fleet\"\npassword_file = \"{}\"\n",
            server.url(),
            file.display()
        );
        std::fs::write(&config, text).expect("config");
        config
    };
    let right = with_password("right", common::clickhouse::FLEET_PASSWORD);
    let init = dns_sensor([
        "fleet".as_ref(),
        "init".as_ref(),
        "--config".as_ref(),
        right.as_os_str(),
    ]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(
        init.stderr
            .contains("ready: dns_sensor.domain_slots at http://127.0.0.1:"),
        "{}",
        init.stderr
    );
    let run = replay_shipping(&right, &["--threshold", "20"], &capture);
    assert!(
        run.stderr.contains("fleet: 1 slots shipped"),
        "{}",
        run.stderr
    );
    let (_, frames) = frames_of(&capture);
    let at = after_last_frame(&frames);
    let check = fleet_check(&right, &["--threshold", "20"], at);
    assert_eq!(check.alerts.len(), 1, "{}", check.stderr);

    let wrong = with_password("wrong", "not it");
    let mut args: Vec<OsString> = vec![
        "fleet".into(),
        "check".into(),
        "--config".into(),
        wrong.into(),
    ];
    args.extend(["--at".into(), rfc3339(at).into()]);
    let refused = dns_sensor(args);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.alerts.is_empty());
    assert!(
        refused.stderr.contains(&server.url()) && refused.stderr.contains("HTTP "),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("not it"), "{}", refused.stderr);
}

/// Where `cargo xtask setup` installs chdb (ClickHouse's current engine in-process,
/// from PyPI): a virtual environment of Debian's python3.
const CHDB_PYTHON: &str = "/opt/dns-sensor-chdb/bin/python";

/// Creates the schema in a fresh chdb session, inserts the rows, runs the query and
/// prints its rows as JSONEachRow, 64-bit integers as numbers.
const CHDB_SCRIPT: &str = r#"
import json, sys, tempfile
from chdb import session
job = json.load(open(sys.argv[1]))
with tempfile.TemporaryDirectory() as path:
    s = session.Session(path)
    for statement in job["statements"]:
        s.query(statement)
    s.query("INSERT INTO %s FORMAT JSONEachRow\n%s" % (job["table"], job["rows"]))
    for query in job["queries"]:
        result = s.query(query + " SETTINGS output_format_json_quote_64bit_integers = 0", "JSONEachRow")
        print(json.dumps([json.loads(line) for line in result.bytes().decode().splitlines() if line]))
"#;

/// A fleet query's rows made comparable across engines: sorted by domain, the
/// figures as they are, the sensors sorted, and the arrays gathered per row
/// flattened and sorted (`groupArray` keeps no order an engine must agree on).
fn comparable(rows: &[Value]) -> Vec<Value> {
    let mut rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut row = row.as_object().expect("a row").clone();
            for value in row.values_mut() {
                if let Value::Array(items) = value {
                    let mut flat: Vec<String> = items
                        .iter()
                        .flat_map(|item| match item {
                            Value::Array(inner) => inner.iter().map(Value::to_string).collect(),
                            other => vec![other.to_string()],
                        })
                        .collect();
                    flat.sort();
                    *value = Value::from(flat);
                }
            }
            Value::Object(row)
        })
        .collect();
    rows.sort_by_key(|row| row["domain"].to_string());
    rows
}

#[test]
fn the_schema_and_the_fleet_query_give_the_same_answers_on_a_current_clickhouse() {
    assert!(
        Path::new(CHDB_PYTHON).exists(),
        "{CHDB_PYTHON} is missing: `cargo xtask setup` installs chdb"
    );
    let server = clickhouse();
    let dir = TempDir::new("fleet-chdb");
    // Rows of three sensors: the iodine tunnel split in two, and the hostile names.
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let (a, b) = (dir.path("link-a.pcap"), dir.path("link-b.pcap"));
    split_by_alternating_queries(&iodine, [&a, &b]);
    let hostile = dir.path("hostile.pcap");
    hostile_capture(&hostile, 30, "198.51.100.9");
    for (sensor, part) in [("link-a", &a), ("link-b", &b), ("dc1", &hostile)] {
        replay_shipping(&fleet_config(&dir, &server, sensor), &[], part);
    }
    let rows = server.query("SELECT * FROM dns_sensor.domain_slots FORMAT JSONEachRow");
    assert!(rows.lines().count() >= 3, "{rows}");

    let database = dns_sensor::fleet::Database::new("dns_sensor").unwrap();
    let rule = dns_sensor::detect::RuleSettings {
        threshold: 20,
        ..Default::default()
    };
    let end_of = |path: &Path| after_last_frame(&frames_of(path).1);
    let queries: Vec<String> = [end_of(&iodine), end_of(&hostile)]
        .iter()
        .map(|&at| dns_sensor::fleet::fleet_query(&database, &rule, at))
        .collect();
    let job = serde_json::json!({
        "statements": dns_sensor::fleet::schema::create_statements(&database),
        "table": format!("dns_sensor.{}", dns_sensor::fleet::schema::TABLE),
        "rows": rows,
        "queries": queries,
    });
    let job_file = dir.path("job.json");
    std::fs::write(&job_file, job.to_string()).unwrap();
    let script = dir.path("chdb_job.py");
    std::fs::write(&script, CHDB_SCRIPT).unwrap();
    let output = std::process::Command::new(CHDB_PYTHON)
        .arg(&script)
        .arg(&job_file)
        .output()
        .expect("chdb's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let current: Vec<Vec<Value>> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("chdb's rows"))
        .collect();
    assert_eq!(current.len(), 2, "{stdout}");
    for (query, current) in queries.iter().zip(&current) {
        let old: Vec<Value> = server
            .query(&format!("{query} FORMAT JSONEachRow"))
            .lines()
            .map(|line| serde_json::from_str(line).expect("18.16's rows"))
            .collect();
        assert_eq!(old.len(), 1, "{old:?}");
        assert_eq!(comparable(current), comparable(&old), "{query}");
    }
    let tunnel = &comparable(&current[0])[0];
    assert_eq!(tunnel["exact_names"], 222);
    assert_eq!(
        tunnel["sensors"],
        serde_json::json!(["\"link-a\"", "\"link-b\""])
    );
    assert_eq!(comparable(&current[1])[0]["exact_names"], 30);
}

/// `path`'s frames moved in time so that the last is `before` ago on the wall clock,
/// written to `into`.
fn moved_to_recent(path: &Path, into: &Path, before: Duration) {
    let (link, frames) = frames_of(path);
    let last = frames.iter().map(|(t, _)| *t).max().expect("frames");
    let now = dns_sensor::clock::wall_clock();
    let shift = now - before.as_nanos() as Nanos - last;
    let moved = frames.iter().map(|(t, f)| (t + shift, f));
    dns_sensor::synth::write_pcap(into, link, moved).expect("write");
}

/// A `fleet run` service in the background, its log in a file.
struct FleetService {
    child: std::process::Child,
    log: PathBuf,
}

impl FleetService {
    fn start(config: &Path, extra: &[&str], log: PathBuf) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_dns-sensor"))
            .args(["fleet", "run", "--config"])
            .arg(config)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("dns-sensor runs");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the service has evaluated `n` times (at most 30 s).
    fn wait_for_evaluations(&mut self, n: usize) {
        let started = std::time::Instant::now();
        while self.log().matches("fleet: evaluated at").count() < n {
            assert!(
                self.child.try_wait().expect("status").is_none(),
                "fleet run ended: {}",
                self.log()
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then its log once it has exited 0.
    fn stop(mut self) -> String {
        // SAFETY: a signal to our own child, which has not been waited for.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("exits");
        let log = self.log();
        assert!(status.success(), "{status}: {log}");
        log
    }
}

impl Drop for FleetService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON lines of an alert file.
fn alert_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn fleet_run_alerts_on_the_split_tunnel_each_realert_and_keeps_its_reports_across_a_restart() {
    let server = clickhouse();
    let dir = TempDir::new("fleet-run");
    let recent = dir.path("recent.pcap");
    moved_to_recent(
        &capture("elastic-iodine-tunnel.pcap"),
        &recent,
        Duration::from_secs(1),
    );
    let (a, b) = (dir.path("link-a.pcap"), dir.path("link-b.pcap"));
    split_by_alternating_queries(&recent, [&a, &b]);
    // One-second intervals, so that the service evaluates a few times in the test; the
    // 24 s of the tunnel fit in the five-minute window.
    let rule = "window = \"5m\"\ninterval = \"1s\"\n";
    for (sensor, part) in [("link-a", &a), ("link-b", &b)] {
        let config = dir.path(&format!("{sensor}.toml"));
        // The count alone on each link: half the tunnel (111 names) is under the
        // threshold, though its evidence would raise an alert of its own.
        let text = format!(
            "{rule}tunnel_threshold = 0\n[fleet]\nclickhouse = \"{}\"\nsensor = \"{sensor}\"\n",
            server.url()
        );
        std::fs::write(&config, text).expect("config");
        let run = replay_shipping(&config, &[], part);
        assert!(run.alerts.is_empty(), "{sensor} alone: {:?}", run.alerts);
    }

    let state = dir.path("state");
    std::fs::create_dir(&state).expect("state directory");
    let alerts = dir.path("alerts.json");
    let config = dir.path("fleet.toml");
    let text = format!(
        "{rule}state_directory = \"{}\"\n[fleet]\nclickhouse = \"{}\"\ndelay = \"0s\"\n\
         [output.file]\npath = \"{}\"\n",
        state.display(),
        server.url(),
        alerts.display()
    );
    std::fs::write(&config, text).expect("config");

    // Evaluated every second, reported once: the default realert is an hour.
    let mut service = FleetService::start(&config, &[], dir.path("first.log"));
    service.wait_for_evaluations(3);
    let log = service.stop();
    let reported = alert_lines(&alerts);
    assert_eq!(reported.len(), 1, "{reported:?} {log}");
    let alert = &reported[0];
    assert_eq!(alert["domain"], "pirate.sea");
    assert_whole_iodine_tunnel(alert);
    assert!(log.contains("pirate.sea seen by link-a, link-b"), "{log}");
    let kept = std::fs::read_to_string(state.join("fleet-reports")).expect("reports kept");
    assert!(kept.ends_with(" pirate.sea\n"), "{kept}");

    // Restarted, it remembers the report and stays quiet.
    let mut service = FleetService::start(&config, &[], dir.path("second.log"));
    service.wait_for_evaluations(2);
    let log = service.stop();
    assert!(
        log.contains("1 domains reported lately, kept from the last run"),
        "{log}"
    );
    assert_eq!(alert_lines(&alerts).len(), 1, "{log}");

    // With realert 0, as the reference rule, and no memory of the report, every
    // evaluation reports it.
    std::fs::remove_file(state.join("fleet-reports")).expect("removed");
    let mut service = FleetService::start(&config, &["--realert", "0"], dir.path("third.log"));
    service.wait_for_evaluations(3);
    let log = service.stop();
    let evaluations = log.matches("fleet: evaluated at").count();
    assert_eq!(alert_lines(&alerts).len(), 1 + evaluations, "{log}");
}

#[test]
fn slots_a_run_could_not_ship_wait_in_the_spool_and_the_next_run_sends_them() {
    let mut server = clickhouse();
    let dir = TempDir::new("fleet-spool");
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let (a, b) = (dir.path("link-a.pcap"), dir.path("link-b.pcap"));
    split_by_alternating_queries(&iodine, [&a, &b]);
    let (link, _) = frames_of(&iodine);
    let empty = dir.path("empty.pcap");
    dns_sensor::synth::write_pcap(&empty, link, std::iter::empty::<(Nanos, &Vec<u8>)>())
        .expect("write");
    let state = dir.path("state-a");
    std::fs::create_dir(&state).expect("state directory");
    let state_flag = ["--state", state.to_str().expect("a UTF-8 path")];
    let config_a = fleet_config(&dir, &server, "link-a");

    // ClickHouse is down for link-a's whole run: its slot goes to the spool, and the
    // run ends in seconds rather than waiting a minute.
    server.stop();
    let started = std::time::Instant::now();
    let down = replay_shipping(&config_a, &state_flag, &a);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        down.stderr
            .contains("0 slots dropped, 1 slots spooled for the next run"),
        "{}",
        down.stderr
    );
    let spooled: Vec<_> = std::fs::read_dir(state.join("fleet-spool"))
        .expect("the spool")
        .collect();
    assert_eq!(spooled.len(), 1, "{spooled:?}");

    // Back up: the next run of that sensor, with nothing new to read, sends it first.
    server.restart();
    let next = replay_shipping(&config_a, &state_flag, &empty);
    assert!(
        next.stderr
            .contains("1 slots an earlier run could not ship are sent first"),
        "{}",
        next.stderr
    );
    // The spooled slot, and the same slot again from the restored window at the end of
    // the run (harmless: the table keeps one row of each).
    assert!(
        next.stderr.contains("fleet: 2 slots shipped"),
        "{}",
        next.stderr
    );
    let left = std::fs::read_dir(state.join("fleet-spool")).expect("the spool");
    assert_eq!(left.count(), 0);

    // With link-b's half shipped as usual, the fleet has the whole tunnel, as if
    // nothing had been down.
    replay_shipping(&fleet_config(&dir, &server, "link-b"), &[], &b);
    let (_, frames) = frames_of(&iodine);
    let at = after_last_frame(&frames);
    let check = fleet_check(&fleet_config(&dir, &server, "analyst"), &[], at);
    assert_eq!(check.domains(), vec!["pirate.sea"], "{}", check.stderr);
    let alert = &check.alerts[0];
    assert_whole_iodine_tunnel(alert);
}

/// The rows of `database`'s table as the fleet reads them (`FINAL`), without the
/// columns that name the shipping sensor and run.
fn stored_slots(server: &ClickHouse, database: &str) -> String {
    server.query(&format!(
        "SELECT slot_start, slot_end, domain, requests, responses, bytes_in, bytes_out, \
         names, names_estimated, names_estimate, client_addresses, client_queries, qtypes, \
         qtype_queries, samples FROM {database}.domain_slots FINAL \
         ORDER BY slot_start, domain FORMAT TSV"
    ))
}

/// Polls `done` every 50 ms for up to 30 s; false if it never held.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn clickhouse_killed_in_the_middle_of_a_replay_leaves_the_fleet_figures_of_a_run_never_interrupted()
{
    use std::io::Write;

    let mut server = clickhouse();
    let dir = TempDir::new("fleet-kill");
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let (link, frames) = frames_of(&iodine);
    let first = frames.iter().map(|(t, _)| *t).min().expect("frames");
    let at = after_last_frame(&frames);
    // One-second slots: the tunnel's 24 s ship as 16 slots while the replay runs.
    let config_for = |sensor: &str, database: &str| {
        let path = dir.path(&format!("{sensor}.toml"));
        let text = format!(
            "window = \"5m\"\ninterval = \"1s\"\n[fleet]\nclickhouse = \"{}\"\n\
             database = \"{database}\"\nsensor = \"{sensor}\"\n",
            server.url()
        );
        std::fs::write(&path, text).expect("config");
        path
    };

    // The run never interrupted, into a database of its own.
    let reference = config_for("reference", "uninterrupted");
    replay_shipping(&reference, &[], &iodine);

    // The same capture through standard input, fed in three parts: ClickHouse is
    // killed once the first part's slots are stored, and started again once the second
    // part's slots wait in the spool.
    let state = dir.path("state");
    std::fs::create_dir(&state).expect("state directory");
    let config = config_for("link", "dns_sensor");
    let init = dns_sensor([
        "fleet".as_ref(),
        "init".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let mut replay = std::process::Command::new(env!("CARGO_BIN_EXE_dns-sensor"))
        .args(["replay".as_ref(), "--config".as_ref(), config.as_os_str()])
        .args(["--state".as_ref(), state.as_os_str(), "-".as_ref()])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dns-sensor runs");
    let part = |from: Nanos, to: Nanos| {
        frames
            .iter()
            .filter(move |(t, _)| (from..to).contains(t))
            .map(|(t, f)| (*t, f))
    };
    let second = Duration::from_secs(1).as_nanos() as Nanos;
    let (cut1, cut2) = (first + 8 * second, first + 16 * second);
    let mut input = replay.stdin.take().expect("stdin");
    input
        .write_all(&dns_sensor::synth::pcap_bytes(link, part(0, cut1)))
        .expect("first part");
    input.flush().expect("flush");
    let stored_slot_count = |server: &ClickHouse| {
        server.query("SELECT uniqExact(slot_start) FROM dns_sensor.domain_slots FORMAT TSV")
    };
    assert!(
        eventually(|| stored_slot_count(&server)
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 3),
        "the first part's slots are not stored: {}",
        stored_slot_count(&server)
    );
    server.kill();

    // The record bytes only: the capture's header went with the first part.
    const PCAP_HEADER: usize = 24;
    input
        .write_all(&dns_sensor::synth::pcap_bytes(link, part(cut1, cut2))[PCAP_HEADER..])
        .expect("second part");
    input.flush().expect("flush");
    let spooled = || {
        std::fs::read_dir(state.join("fleet-spool"))
            .map(|files| files.count())
            .unwrap_or(0)
    };
    assert!(
        eventually(|| spooled() >= 3),
        "the second part's slots do not wait in the spool: {}",
        spooled()
    );
    server.restart();
    input
        .write_all(&dns_sensor::synth::pcap_bytes(link, part(cut2, Nanos::MAX))[PCAP_HEADER..])
        .expect("last part");
    drop(input);
    let output = replay.wait_with_output().expect("replay ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("slots wait and are tried again"),
        "{stderr}"
    );
    assert!(stderr.contains("takes slots again"), "{stderr}");
    assert!(!stderr.contains(" 0 failed tries"), "{stderr}");
    assert!(
        stderr.contains(" 0 slots dropped, 0 slots spooled"),
        "{stderr}"
    );
    assert_eq!(spooled(), 0, "{stderr}");

    // Every slot stored once, as the uninterrupted run stored it, and the fleet gives
    // the same alert from either.
    let (interrupted, uninterrupted) = (
        stored_slots(&server, "dns_sensor"),
        stored_slots(&server, "uninterrupted"),
    );
    // The 16 seconds of the capture that hold queries or responses.
    assert_eq!(interrupted.lines().count(), 16, "{interrupted}");
    assert_eq!(interrupted, uninterrupted);
    let check = fleet_check(&config, &[], at);
    let expected = fleet_check(&reference, &[], at);
    assert_eq!(check.domains(), vec!["pirate.sea"], "{}", check.stderr);
    assert_eq!(check.alerts, expected.alerts);
    let alert = &check.alerts[0];
    assert_whole_iodine_tunnel(alert);
}

/// `domains` registered domains `dN.example` with `names` names each, queried by
/// `client` one a millisecond from `start`.
fn many_domains_capture(path: &Path, domains: u16, names: u16, client: &str, start: Nanos) {
    use dns_sensor::synth::{query, udp_frame, Flow};
    let flow = Flow::to_dns(
        client.parse().unwrap(),
        40000,
        "192.0.2.53".parse().unwrap(),
    );
    let frames = (0..domains * names).map(|k| {
        let name = format!("h{}.d{}.example", k / domains, k % domains);
        let message = query(k, name.as_bytes(), 1);
        (start + u64::from(k) * 1_000_000, udp_frame(&flow, &message))
    });
    dns_sensor::synth::write_pcap(path, LinkType::Ethernet, frames).expect("write");
}

#[test]
fn behind_a_distributed_table_over_two_shards_the_fleet_gives_what_one_server_gives() {
    use dns_sensor::fleet::schema::{create_statements, Database};
    use std::collections::BTreeSet;

    let server = clickhouse();
    let dir = TempDir::new("fleet-cluster");
    let iodine = capture("elastic-iodine-tunnel.pcap");
    let (a, b) = (dir.path("link-a.pcap"), dir.path("link-b.pcap"));
    split_by_alternating_queries(&iodine, [&a, &b]);
    let (_, frames) = frames_of(&iodine);
    let first = frames.iter().map(|(t, _)| *t).min().expect("frames");
    let at = after_last_frame(&frames);
    let others = dir.path("others.pcap");
    many_domains_capture(&others, 40, 5, "10.9.0.7", first);

    // The cluster's tables as docs/fleet.md lays them out: on each shard the sensor's
    // own table; over them the Distributed table the sensors write to and the fleet
    // query reads, sharded by domain.
    for shard in ["shard_1", "shard_2"] {
        for statement in create_statements(&Database::new(shard).expect("a plain name")) {
            server.query(&statement);
        }
    }
    server.query("CREATE DATABASE dns_sensor");
    server.query(&format!(
        "CREATE TABLE dns_sensor.domain_slots AS shard_1.domain_slots \
         ENGINE = Distributed({}, '', domain_slots, cityHash64(domain))",
        common::clickhouse::TWO_SHARDS
    ));

    // The same three links shipped to the cluster and to one server's table.
    let ship = |database: &str, sensor: &str, capture: &Path| {
        let config = dir.path(&format!("{database}-{sensor}.toml"));
        let text = format!(
            "[fleet]\nclickhouse = \"{}\"\ndatabase = \"{database}\"\nsensor = \"{sensor}\"\n",
            server.url()
        );
        std::fs::write(&config, text).expect("config");
        replay_shipping(&config, &[], capture);
        config
    };
    for database in ["dns_sensor", "one_server"] {
        ship(database, "link-a", &a);
        ship(database, "link-b", &b);
        ship(database, "link-c", &others);
    }
    // A link shipped again: its rows meet the first ones on the same shard, and FINAL
    // counts them once.
    let cluster = ship("dns_sensor", "link-a", &a);

    // Every domain's rows are on one shard, and both shards hold some.
    let domains_of = |shard: &str| -> BTreeSet<String> {
        let answer = server.query(&format!(
            "SELECT DISTINCT domain FROM {shard}.domain_slots FORMAT TSV"
        ));
        answer.lines().map(String::from).collect()
    };
    let (one, two) = (domains_of("shard_1"), domains_of("shard_2"));
    assert!(!one.is_empty() && !two.is_empty(), "{one:?} {two:?}");
    assert!(one.is_disjoint(&two), "{one:?} {two:?}");
    assert_eq!(one.len() + two.len(), 41);
    assert_eq!(
        stored_slots(&server, "dns_sensor"),
        stored_slots(&server, "one_server")
    );

    // The fleet query over the cluster gives what it gives over one server: a
    // threshold of 4 makes each of the 40 small domains alert beside the tunnel.
    let sorted = |mut alerts: Vec<Value>| {
        alerts.sort_by_key(|a| a["domain"].to_string());
        alerts
    };
    let check = fleet_check(&cluster, &["--threshold", "4"], at);
    let expected = fleet_check(
        &dir.path("one_server-link-a.toml"),
        &["--threshold", "4"],
        at,
    );
    assert_eq!(check.alerts.len(), 41, "{}", check.stderr);
    let pirate = alert_for(&check.alerts, "pirate.sea").expect("the tunnel alerts");
    assert_whole_iodine_tunnel(pirate);
    assert_eq!(sorted(check.alerts), sorted(expected.alerts));
}
