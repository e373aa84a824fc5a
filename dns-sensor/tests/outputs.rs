//! End to end through the outputs: `dns-sensor replay --config F` on the real iodine
//! capture, with the outputs the settings file names.

mod common;

use common::smtp::{free_port, ServerOptions, SmtpServer};
use common::{capture, dns_sensor, TempDir};
use serde_json::Value;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `dns-sensor replay --config CONFIG` of the reference iodine capture.
fn replay_iodine(config: &std::path::Path) -> common::Run {
    dns_sensor([
        "replay".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        capture("elastic-iodine-tunnel.pcap").as_os_str(),
    ])
}

/// The figures of pirate.sea in the reference capture, wherever an output puts them.
fn assert_reference_figures(figures: &Value) {
    assert_eq!(figures["total_requests"], 222, "{figures}");
    assert_eq!(figures["unique_hostnames"], 222, "{figures}");
    assert_eq!(figures["total_bytes_in"], 16_812, "{figures}");
    assert_eq!(figures["total_bytes_out"], 35_212, "{figures}");
    assert_eq!(figures["total_bytes"], 52_024, "{figures}");
}

#[test]
fn file_and_stdout_outputs_in_ecs_carry_the_reference_figures() {
    let dir = TempDir::new("outputs-ecs");
    let alerts = dir.path("alerts.json");
    let config = dir.path("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "[output.stdout]\nformat = \"ecs\"\n[output.file]\npath = \"{}\"\nformat = \"reference\"\n",
            alerts.display()
        ),
    )
    .unwrap();
    let run = replay_iodine(&config);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // stdout: ECS.
    assert_eq!(run.alerts.len(), 1, "{:?}", run.alerts);
    let ecs = &run.alerts[0];
    assert_eq!(ecs["event"]["kind"], "alert");
    assert_eq!(ecs["dns"]["question"]["registered_domain"], "pirate.sea");
    assert_eq!(ecs["source"]["ip"], "10.0.2.30");
    assert_eq!(ecs["dns_sensor"]["threshold"], 200);
    assert_eq!(ecs["dns_sensor"]["estimated"], false);
    assert!(ecs["event"]["start"]
        .as_str()
        .is_some_and(|s| s.starts_with("2010-08-20T22:00:00")));
    assert_reference_figures(&ecs["dns_sensor"]);
    // iodine: one client, a new name each query, NULL queries.
    assert_eq!(ecs["event"]["severity"], 73, "{ecs}");
    assert_eq!(ecs["dns_sensor"]["severity"], "high", "{ecs}");
    let score = ecs["dns_sensor"]["score"].as_u64().expect("a score");
    assert!((50..=100).contains(&score), "{ecs}");
    assert_eq!(ecs["event"]["risk_score"].as_f64(), Some(score as f64));
    assert!(ecs["message"].as_str().is_some_and(
        |m| m.starts_with(&format!("[high {score}] suspected DNS tunnel: pirate.sea"))
    ));
    for reason in ["names do not repeat", "one client", "data query types"] {
        assert!(
            ecs["dns_sensor"]["reasons"]
                .as_array()
                .is_some_and(|r| r.contains(&Value::from(reason))),
            "{reason}: {ecs}"
        );
    }
    assert_eq!(ecs["dns_sensor"]["evidence"]["clients"], 1);
    assert_eq!(ecs["dns_sensor"]["evidence"]["data_qtype_share"], 1.0);

    // The file: the reference line, the same alert.
    let written = lines(&alerts);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["domain"], "pirate.sea");
    assert_eq!(written[0]["@timestamp"], ecs["@timestamp"]);
    assert_reference_figures(&written[0]);
    assert_eq!(written[0]["severity"], "high");
    assert_eq!(written[0]["score"], score);
    assert_eq!(written[0]["reasons"], ecs["dns_sensor"]["reasons"]);
    assert_eq!(written[0]["evidence"], ecs["dns_sensor"]["evidence"]);

    // A second replay appends.
    let again = replay_iodine(&config);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(lines(&alerts).len(), 2);
}

#[test]
fn an_output_that_cannot_open_exits_2_naming_it() {
    let dir = TempDir::new("outputs-bad-file");
    let config = dir.path("sensor.toml");
    std::fs::write(
        &config,
        "[output.file]\npath = \"/nonexistent/dns-sensor/alerts.json\"\n",
    )
    .unwrap();
    let run = replay_iodine(&config);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/dns-sensor/alerts.json"),
        "{}",
        run.stderr
    );
    assert!(run.alerts.is_empty());
}

#[test]
fn stdout_can_be_turned_off() {
    let dir = TempDir::new("outputs-quiet");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, "[output.stdout]\nenabled = false\n").unwrap();
    let run = replay_iodine(&config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.alerts.is_empty());
    assert!(run.stderr.contains("1 alerts"), "{}", run.stderr);
}

#[test]
fn hostile_names_forge_nothing_on_stdout_or_in_the_file() {
    use common::hostile;
    let dir = TempDir::new("outputs-hostile");
    let pcap = dir.path("hostile.pcap");
    hostile::write(&pcap);
    for format in ["reference", "ecs"] {
        let alerts = dir.path(&format!("alerts-{format}.json"));
        let config = dir.path(&format!("{format}.toml"));
        std::fs::write(
            &config,
            format!(
                "threshold = 2\n[output.stdout]\nformat = \"{format}\"\n[output.file]\npath = \"{}\"\nformat = \"{format}\"\n",
                alerts.display()
            ),
        )
        .unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_dns-sensor"))
            .arg("replay")
            .arg("--config")
            .arg(&config)
            .arg(&pcap)
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let file = std::fs::read(&alerts).expect("file written");
        for (what, bytes) in [
            ("stdout", &output.stdout),
            ("file", &file),
            ("stderr", &output.stderr),
        ] {
            assert!(
                hostile::printable(bytes),
                "{format} {what}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        // One JSON line per alert, nothing else: no name broke a line.
        for bytes in [&output.stdout, &file] {
            let text = String::from_utf8(bytes.clone()).expect("ASCII");
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
                .collect();
            assert_eq!(lines.len(), 1, "{format}: {text}");
            let alert = &lines[0];
            let (domain, samples) = match format {
                "reference" => (&alert["domain"], &alert["sample_names"]),
                _ => (
                    &alert["dns"]["question"]["registered_domain"],
                    &alert["dns_sensor"]["sample_names"],
                ),
            };
            assert_eq!(domain, hostile::ESCAPED_DOMAIN, "{format}");
            assert_eq!(samples.as_array().map(Vec::len), Some(5), "{format}");
            for name in samples.as_array().unwrap() {
                let name = name.as_str().unwrap();
                assert!(name.ends_with(hostile::ESCAPED_DOMAIN), "{name}");
                assert!(!name.contains(' '), "{name}");
            }
        }
    }
}

/// `[output.email]` for a plain-SMTP server on 127.0.0.1.
fn email_config(port: u16, extra: &str) -> String {
    format!(
        "[output.email]\nenabled = true\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         from = \"dns-sensor@sensor.example\"\nto = [\"soc@example.org\", \"noc@example.org\"]\n\
         subject = \"Tunnel\"\n{extra}"
    )
}

#[test]
fn replay_mails_the_captures_alert_before_it_exits() {
    let server = SmtpServer::start(&ServerOptions::default());
    let dir = TempDir::new("outputs-email");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, email_config(server.port, "")).unwrap();
    let run = replay_iodine(&config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.alerts.len(), 1, "stdout stays on for replay");
    // Looked at once, right after the exit: replay waited for the message.
    let received = server.received();
    assert_eq!(received.len(), 1, "{}\n{}", run.stderr, server.log());
    let mail = &received[0];
    assert_eq!(mail.mail_from, "dns-sensor@sensor.example");
    assert_eq!(mail.rcpt_tos, ["soc@example.org", "noc@example.org"]);
    let subject = mail.header("Subject");
    assert_eq!(subject.len(), 1);
    assert!(
        subject[0].starts_with("Tunnel: [high ") && subject[0].ends_with("] pirate.sea"),
        "{subject:?}"
    );
    let body = mail.body();
    let lines: Vec<&str> = body.lines().collect();
    for expected in [
        "1. pirate.sea",
        "   reasons:          names do not repeat",
        "                     one client",
        "   evidence:         names_per_query   1",
        "                     clients           1",
        "   unique hostnames: 222 (threshold 200)",
        "   requests:         222",
        "   bytes in:         16812",
        "   bytes out:        35212",
        "   bytes total:      52024",
        "   window start:     2010-08-20T22:00:00.000Z",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{body}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("   top clients:      10.0.2.30 (")),
        "{body}"
    );
    assert!(!body.contains("2. "), "one alert only:\n{body}");
    let sent = format!(
        "email via 127.0.0.1:{}: sent 1 alert (pirate.sea) to 2 recipients",
        server.port
    );
    assert!(run.stderr.contains(&sent), "{}", run.stderr);
}

#[test]
fn min_severity_keeps_low_alerts_out_of_the_mail_and_the_file() {
    use dns_sensor::synth::scenario::{background, Tunnel};
    const START: u64 = 1_700_000_000 * dns_sensor::NANOS_PER_SEC;
    const MINUTE: u64 = 60 * dns_sensor::NANOS_PER_SEC;
    // Under a threshold of 5, the busy services of 40 clients alert, low (their names
    // repeat, 40 clients ask them, short labels), beside a tunnel, high.
    let mut traffic = background(START, MINUTE, 50, 40, 7);
    traffic.extend(Tunnel::new("tunnel.example", 50, START, MINUTE).build().0);
    let server = SmtpServer::start(&ServerOptions::default());
    let dir = TempDir::new("outputs-min-severity");
    let pcap = dir.path("busy.pcap");
    traffic.write_pcap(&pcap).expect("written");
    let replay = |config: &std::path::Path| {
        let run = dns_sensor([
            "replay".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            pcap.as_os_str(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run
    };
    let severities = |alerts: &[Value], field: &str| -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = alerts
            .iter()
            .map(|a| (a["domain"].to_string(), a[field].to_string()))
            .collect();
        found.sort();
        found
    };
    let file = dir.path("alerts.json");
    let file_table = format!("[output.file]\npath = \"{}\"\n", file.display());

    // The defaults: the file takes every alert, the mail the high one only.
    let defaults = dir.path("defaults.toml");
    std::fs::write(
        &defaults,
        format!(
            "threshold = 5\n{file_table}{}",
            email_config(server.port, "")
        ),
    )
    .unwrap();
    let run = replay(&defaults);
    let all = severities(&run.alerts, "severity");
    let high: Vec<_> = all.iter().filter(|(_, s)| s == "\"high\"").collect();
    assert_eq!(
        high,
        [&("\"tunnel.example\"".to_owned(), "\"high\"".to_owned())],
        "{all:?}"
    );
    assert!(all.len() >= 3, "stdout takes every alert: {all:?}");
    assert_eq!(severities(&lines(&file), "severity"), all);
    let received = server.received();
    assert_eq!(received.len(), 1, "{}\n{}", run.stderr, server.log());
    let subject = received[0].header("Subject");
    assert!(
        subject[0].starts_with("Tunnel: [high ") && subject[0].ends_with("] tunnel.example"),
        "{subject:?}"
    );
    let body = received[0].body();
    assert!(body.contains("1. tunnel.example"), "{body}");
    assert!(!body.contains("2. "), "the high alert only:\n{body}");

    // Swapped: the file the high one only, the mail every alert.
    std::fs::remove_file(&file).unwrap();
    let swapped = dir.path("swapped.toml");
    std::fs::write(
        &swapped,
        format!(
            "threshold = 5\n{file_table}min_severity = \"high\"\n{}",
            email_config(server.port, "min_severity = \"low\"\n")
        ),
    )
    .unwrap();
    replay(&swapped);
    let written = lines(&file);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["domain"], "tunnel.example");
    let received = server.received();
    assert_eq!(received.len(), 2, "{}", server.log());
    let body = received[1].body();
    assert!(body.contains(&format!("{}. ", all.len())), "{body}");
    assert!(body.contains("   severity:         low (score "), "{body}");
}

#[test]
fn replay_with_the_mail_server_down_logs_the_message_given_up_and_fails() {
    let port = free_port();
    let dir = TempDir::new("outputs-email-down");
    let config = dir.path("sensor.toml");
    std::fs::write(&config, email_config(port, "give_up_after = \"0\"\n")).unwrap();
    let run = replay_iodine(&config);
    // The alert still went to stdout; the lost mail makes the exit status 1.
    assert_eq!(run.alerts.len(), 1);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let label = format!("email via 127.0.0.1:{port}: given up a message of 1 alert (pirate.sea)");
    assert!(run.stderr.contains(&label), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 message not sent: 1 given up"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_email_output_that_cannot_start_exits_2_naming_it() {
    let dir = TempDir::new("outputs-email-bad-ca");
    let config = dir.path("sensor.toml");
    let email = email_config(25, "ca_file = \"/nonexistent/dns-sensor/ca.pem\"\n")
        .replace("tls = \"none\"", "tls = \"starttls\"");
    std::fs::write(&config, email).unwrap();
    let run = replay_iodine(&config);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("output.email: ca_file /nonexistent/dns-sensor/ca.pem"),
        "{}",
        run.stderr
    );
    assert!(run.alerts.is_empty());
}
