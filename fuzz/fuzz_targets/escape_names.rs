//! The escaping of attacker-controlled names (`alert::escape_name`) and every output
//! built on it: the reference and ECS JSON lines (stdout and the file output), the
//! journal's fields, the summary line, and the mail.
//!
//! Input: up to six names, each a length byte then that many bytes, the first the
//! alert's domain, the others its sample names; then the figures (whatever bytes are
//! left, read as numbers). A name that is a valid wire name (length-prefixed labels)
//! is taken in the canonical form `decode::parse_question` gives it, as names reach
//! alerts; any other is taken as raw bytes.
//!
//! Checks:
//! - `escape_name` gives only printable ASCII without space (0x21..=0x7E), for any
//!   bytes; for a name in canonical form (every `\` starts `\\` or `\.`, as in every
//!   name the decoder gives) it is undone exactly by reading `\DDD` back;
//! - the JSON lines are one line each of printable ASCII, read back as JSON with the
//!   escaped names in their fields;
//! - every journal field is printable ASCII, the domain and the sample names in it
//!   read back (the names are space-separated: an escaped name has no space);
//! - the summary line is printable ASCII and names the escaped domain;
//! - the mail is ASCII lines ending in CRLF, has exactly the headers it should (no
//!   name forges one), its subject names the escaped domain, and its body, decoded, is
//!   printable ASCII listing the escaped domain and sample names.

#![no_main]

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use dns_sensor::alert::email::{formatted_mail, Delivery, EmailSettings, TlsMode};
use dns_sensor::alert::{escape_name, journald, summary_line, Format, LineFormat};
use dns_sensor::config::DEFAULT_SUBJECT;
use dns_sensor::decode::{parse_question, Name};
use dns_sensor::detect::{Alert, Assessment, Evidence, Severity};
use dns_sensor_fuzz::{printable, printable_no_space, Input, T0};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut names = Vec::new();
    for _ in 0..6 {
        if input.is_empty() {
            break;
        }
        let len = usize::from(input.u8());
        let raw = input.bytes(len);
        let escaped = escape_name(raw);
        assert!(printable_no_space(escaped.as_bytes()), "{escaped}");
        let name = match canonical(raw) {
            Some(name) => {
                assert!(
                    canonical_form(&name),
                    "the decoder gave {}",
                    name.escape_ascii()
                );
                name
            }
            None => raw.to_vec(),
        };
        if canonical_form(&name) {
            let escaped = escape_name(&name);
            assert_eq!(unescape(&escaped), name, "{escaped}");
        }
        names.push(name);
    }
    let Some((domain, samples)) = names.split_first() else {
        return;
    };
    let alert = alert(domain, samples, &mut input);
    let escaped_domain = escape_name(domain);
    let escaped_samples: Vec<String> = samples.iter().map(|n| escape_name(n)).collect();

    for format in [Format::Reference, Format::Ecs] {
        let mut line = Vec::new();
        LineFormat::new(format, "sensor1").write_line(&alert, &mut line);
        let (last, body) = line.split_last().expect("a line");
        assert_eq!(*last, b'\n');
        assert!(printable(body), "{}", body.escape_ascii());
        let json: Value = serde_json::from_slice(body).expect("the line is JSON");
        let (domain_field, samples_field) = match format {
            Format::Reference => (&json["domain"], &json["sample_names"]),
            Format::Ecs => (
                &json["dns"]["question"]["registered_domain"],
                &json["dns_sensor"]["sample_names"],
            ),
        };
        assert_eq!(domain_field.as_str(), Some(escaped_domain.as_str()));
        assert_eq!(*samples_field, serde_json::json!(escaped_samples));
    }

    for (field, value) in journald::fields(&alert) {
        assert!(
            printable(value.as_bytes()),
            "{field}={}",
            value.escape_debug()
        );
        match field.as_ref() {
            "DNS_DOMAIN" => assert_eq!(value, escaped_domain),
            "SAMPLE_NAMES" if !samples.is_empty() && samples.iter().all(|n| canonical_form(n)) => {
                let read: Vec<Vec<u8>> = value.split(' ').map(unescape).collect();
                assert_eq!(read.as_slice(), samples);
            }
            _ => {}
        }
    }

    let summary = summary_line(&alert);
    assert!(printable(summary.as_bytes()), "{}", summary.escape_debug());
    assert!(
        summary.contains(&format!(" {escaped_domain} had ")),
        "{summary}"
    );
    assert!(
        summary.starts_with(&format!(
            "[{} {}] ",
            alert.assessment.severity.as_str(),
            alert.assessment.score
        )),
        "{summary}"
    );

    check_mail(&alert, &escaped_domain, &escaped_samples);
});

/// The canonical form of `raw` when it is a valid wire name, as the decoder gives it.
fn canonical(raw: &[u8]) -> Option<Vec<u8>> {
    let mut message = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(raw);
    message.extend_from_slice(&[0, 1, 0, 1]);
    let mut name = Name::new();
    parse_question(&message, &mut name).ok()?;
    // Only a name that ends where `raw` does: nothing of `raw` taken as the qtype.
    let mut wire_len = 1;
    for label in split_labels(name.as_bytes()) {
        wire_len += 1 + label;
    }
    let root_only = name.as_bytes().is_empty() && raw == [0];
    (root_only || (!name.as_bytes().is_empty() && wire_len == raw.len()))
        .then(|| name.as_bytes().to_vec())
}

/// The raw lengths of a canonical name's labels (`\.` and `\\` are one byte each).
fn split_labels(name: &[u8]) -> Vec<usize> {
    let mut labels = vec![0];
    let mut bytes = name.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next();
                *labels.last_mut().expect("one label") += 1;
            }
            b'.' => labels.push(0),
            _ => *labels.last_mut().expect("one label") += 1,
        }
    }
    labels
}

/// Whether every `\` of `name` starts a `\\` or `\.`: what makes `\DDD` unambiguous.
fn canonical_form(name: &[u8]) -> bool {
    let mut bytes = name.iter();
    while let Some(&b) = bytes.next() {
        if b == b'\\' && !matches!(bytes.next(), Some(b'\\' | b'.')) {
            return false;
        }
    }
    true
}

/// Reads `\DDD` back to its byte; `\\` and `\.` are kept as they are (canonical form).
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        match (bytes[i], digits) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
                out.push(u8::try_from(value).expect("an escape is a byte"));
                i += 4;
            }
            (b'\\', None) => {
                out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// An alert for `domain` with these sample names, its figures from the input.
fn alert(domain: &[u8], samples: &[Vec<u8>], input: &mut Input<'_>) -> Alert {
    let mut number = || u64::from(input.u16()) << 16 | u64::from(input.u16());
    let at = T0 + number() * dns_sensor::NANOS_PER_SEC;
    let clients = (number() % 4) as usize;
    // Figures in thousandths, as the evidence is rounded; the assessment they give.
    let mut figure = || (number() % 1_000_000) as f64 / 1000.0;
    let evidence = Evidence {
        names_per_query: figure(),
        clients: (figure() * 1000.0) as u64 % 100,
        top_client_share: figure(),
        name_length: figure(),
        labels: figure(),
        longest_label: figure(),
        digit_share: figure(),
        other_share: figure(),
        data_qtype_share: figure(),
        nxdomain_share: figure(),
        failure_share: figure(),
        query_bytes: figure(),
        response_bytes: figure(),
    };
    let assessment = Assessment::of(&evidence);
    Alert {
        at,
        domain: domain.into(),
        total_requests: number(),
        unique_hostnames: number(),
        estimated: number() % 2 == 1,
        threshold: number(),
        total_bytes_in: number(),
        total_bytes_out: number(),
        window_start: at.saturating_sub(number() * dns_sensor::NANOS_PER_SEC),
        window_end: at,
        top_clients: (0..clients)
            .map(|i| (IpAddr::from([10, 0, 0, i as u8]), number()))
            .collect(),
        sample_names: samples.iter().map(|s| s.as_slice().into()).collect(),
        qtypes: (0..number() % 4)
            .map(|_| (number() as u16, number()))
            .collect(),
        evidence,
        assessment,
    }
}

/// The mail of one alert, as sent: its headers and lines, its subject and body.
fn check_mail(alert: &Alert, domain: &str, samples: &[String]) {
    let settings = EmailSettings {
        server: "localhost".into(),
        port: 25,
        tls: TlsMode::None,
        from: "dns-sensor@example.org".into(),
        to: vec!["soc@example.org".into()],
        subject: DEFAULT_SUBJECT.into(),
        credentials: None,
        ca_file: None,
        timeout: Duration::from_secs(10),
        give_up_after: Duration::from_secs(60),
        min_severity: Severity::Low,
        delivery: Delivery::default(),
    };
    let now = UNIX_EPOCH + Duration::from_nanos(alert.at);
    let mail = formatted_mail(&settings, "sensor1", std::slice::from_ref(alert), now)
        .expect("the mail is composed");
    let text = std::str::from_utf8(&mail).expect("the mail is ASCII");
    assert!(text.is_ascii());
    let (head, body) = text.split_once("\r\n\r\n").expect("headers, then a body");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        assert!(printable(line.replace('\t', " ").as_bytes()), "{line:?}");
        match line.strip_prefix([' ', '\t']) {
            Some(folded) => {
                let (_, value) = headers.last_mut().expect("a header before a folded line");
                value.push(' ');
                value.push_str(folded.trim_start());
            }
            None => {
                let (name, value) = line.split_once(':').expect("a header line");
                headers.push((name.to_owned(), value.trim_start().to_owned()));
            }
        }
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "Auto-Submitted",
            "Content-Transfer-Encoding"
        ],
        "{head}"
    );
    let subject = &headers[2].1;
    let tag = format!(
        "[{} {}]",
        alert.assessment.severity.as_str(),
        alert.assessment.score
    );
    assert_eq!(
        *subject,
        format!("{DEFAULT_SUBJECT}: {tag} {domain}"),
        "{head}"
    );
    let encoding = headers[8].1.as_str();
    let body = match encoding {
        "7bit" => body.replace("\r\n", "\n"),
        "quoted-printable" => quoted_printable(body),
        other => panic!("a body in {other}"),
    };
    for line in body.lines() {
        assert!(printable(line.as_bytes()), "{line:?}");
    }
    assert!(body.contains(&format!("\n1. {domain}\n")), "{body}");
    for sample in samples {
        assert!(
            body.contains(&format!(" {sample}\n")),
            "{sample} not in {body}"
        );
    }
}

/// Decodes a quoted-printable body (RFC 2045): soft line breaks, `=XX`, CRLF to LF.
fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("\r\n", "\n");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("the body decodes to ASCII")
}
