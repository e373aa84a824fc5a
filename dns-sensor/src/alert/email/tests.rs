//! The email output against a real SMTP server (aiosmtpd on loopback): plain,
//! STARTTLS and SMTPS with certificates made here, AUTH, a server down then up, a
//! server that hangs, giving up, and hostile names.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use super::*;
use crate::alert::test_alerts::sample_alert;
use crate::detect::Severity;

#[allow(dead_code)] // shared with the end-to-end tests, which use other parts
#[path = "../../../tests/common/smtp.rs"]
mod smtp_server;

use smtp_server::{free_port, Security, ServerOptions, SmtpServer};

/// Settings for a server on 127.0.0.1 that tests adjust; short waits throughout. The
/// log lines of the sinks started with them are kept (see [`logged`]).
pub(super) fn settings() -> EmailSettings {
    capture_logs();
    EmailSettings {
        server: "127.0.0.1".into(),
        port: 25,
        tls: TlsMode::None,
        from: "DNS sensor <dns-sensor@sensor.example>".into(),
        to: vec!["soc@example.org".into(), "noc@example.org".into()],
        subject: "Suspected DNS Tunnel Alert".into(),
        credentials: None,
        ca_file: None,
        timeout: Duration::from_secs(5),
        give_up_after: Duration::from_secs(10),
        min_severity: Severity::High,
        delivery: Delivery {
            queue: 4,
            first_retry: Duration::from_millis(100),
            max_retry: Duration::from_millis(200),
            flush_wait: Duration::from_secs(10),
        },
    }
}

fn to_server(server: &SmtpServer, tls: TlsMode) -> EmailSettings {
    EmailSettings {
        port: server.port,
        tls,
        ..settings()
    }
}

// --- log lines ------------------------------------------------------------------------

static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("dns_sensor")
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string();
            LINES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((record.level(), line));
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("the only logger of the library's tests");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The log lines (any test's) that name `port`'s server.
fn logged(port: u16) -> Vec<(log::Level, String)> {
    let label = format!("email via 127.0.0.1:{port}:");
    LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, line)| line.starts_with(&label))
        .cloned()
        .collect()
}

fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

// --- certificates ---------------------------------------------------------------------

/// A folder of files for one test, removed when dropped.
struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dns-sensor-email-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("written");
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA and a server certificate it signed for 127.0.0.1 and localhost, as PEM files:
/// (CA certificate, server certificate, server key).
fn certificates(files: &Files, prefix: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("dns-sensor test CA {prefix}"));
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &issuer).expect("server certificate");
    (
        files.write(&format!("{prefix}-ca.pem"), &ca_cert.pem()),
        files.write(&format!("{prefix}-cert.pem"), &cert.pem()),
        files.write(&format!("{prefix}-key.pem"), &key.serialize_pem()),
    )
}

// --- alerts ---------------------------------------------------------------------------

fn two_alerts() -> Vec<Alert> {
    let first = sample_alert();
    let mut second = sample_alert();
    second.domain = Box::from(&b"tunnel.example"[..]);
    second.total_requests = 9000;
    second.unique_hostnames = 5000;
    second.estimated = true;
    second.total_bytes_in = 700_000;
    second.total_bytes_out = 1_200_000;
    vec![first, second]
}

fn lines_of(body: &str) -> Vec<&str> {
    body.lines().collect()
}

// --- the tests ------------------------------------------------------------------------

#[test]
fn plain_smtp_delivers_one_message_with_every_alert() {
    let server = SmtpServer::start(&ServerOptions::default());
    let mut sink = EmailSink::start(&to_server(&server, TlsMode::None)).expect("starts");
    assert_eq!(sink.name(), format!("email via 127.0.0.1:{}", server.port));
    let started = Instant::now();
    sink.deliver(&two_alerts()).expect("queued");
    assert!(started.elapsed() < Duration::from_millis(500));
    sink.flush().expect("sent before flush returns");
    let received = server.received();
    assert_eq!(received.len(), 1, "{}", server.log());
    let mail = &received[0];
    assert_eq!(mail.mail_from, "dns-sensor@sensor.example");
    assert_eq!(mail.rcpt_tos, ["soc@example.org", "noc@example.org"]);
    assert!(!mail.tls);
    assert_eq!(
        mail.header("From"),
        ["\"DNS sensor\" <dns-sensor@sensor.example>"]
    );
    assert_eq!(mail.header("To"), ["soc@example.org, noc@example.org"]);
    assert_eq!(
        mail.header("Subject"),
        ["Suspected DNS Tunnel Alert: [high 84] pirate.sea and 1 more"]
    );
    assert_eq!(mail.header("Date").len(), 1);
    assert_eq!(mail.header("Message-ID").len(), 1);
    let body = mail.body();
    let lines = lines_of(&body);
    for expected in [
        "1. pirate.sea",
        "   severity:         high (score 84 of 100)",
        "   reasons:          names do not repeat",
        "   unique hostnames: 222 (threshold 200)",
        "   requests:         222",
        "   bytes in:         16812",
        "   bytes out:        35212",
        "   bytes total:      52024",
        "   top clients:      10.0.2.30 (220 requests)",
        "2. tunnel.example",
        "   unique hostnames: about 5000 (threshold 200)",
        "   requests:         9000",
        "   bytes total:      1900000",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{body}");
    }
    assert_eq!(
        sink.stats(),
        EmailStats {
            sent: 1,
            ..EmailStats::default()
        }
    );
    let logs = logged(server.port);
    assert!(
        logs.iter().any(|(level, line)| *level == log::Level::Info
            && line.ends_with("sent 2 alerts (pirate.sea, ...) to 2 recipients")),
        "{logs:?}"
    );
}

#[test]
fn starttls_with_a_certificate_trusted_through_ca_file() {
    let files = Files::new("starttls");
    let (ca, cert, key) = certificates(&files, "trusted");
    let server = SmtpServer::start(&ServerOptions {
        security: Security::Starttls { cert, key },
        ..ServerOptions::default()
    });
    let mut sink = EmailSink::start(&EmailSettings {
        ca_file: Some(ca),
        ..to_server(&server, TlsMode::Starttls)
    })
    .expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    sink.flush().expect("sent");
    let received = server.received();
    assert_eq!(received.len(), 1, "{}", server.log());
    assert!(received[0].tls, "the message came over TLS");
    assert_eq!(
        received[0].header("Subject"),
        ["Suspected DNS Tunnel Alert: [high 84] pirate.sea"]
    );
}

#[test]
fn starttls_with_an_untrusted_certificate_sends_nothing() {
    let files = Files::new("untrusted");
    let (trusted_ca, _, _) = certificates(&files, "trusted");
    let (_, cert, key) = certificates(&files, "other");
    let server = SmtpServer::start(&ServerOptions {
        security: Security::Starttls { cert, key },
        ..ServerOptions::default()
    });
    let mut sink = EmailSink::start(&EmailSettings {
        ca_file: Some(trusted_ca),
        give_up_after: Duration::ZERO,
        ..to_server(&server, TlsMode::Starttls)
    })
    .expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    let err = sink.flush().expect_err("given up");
    assert_eq!(err.to_string(), "1 message not sent: 1 given up");
    assert!(server.received().is_empty());
    let stats = sink.stats();
    assert_eq!((stats.failed_attempts, stats.given_up), (1, 1), "{stats:?}");
    let logs = logged(server.port);
    assert!(
        logs.iter().any(|(level, line)| *level == log::Level::Error
            && line.contains("given up")
            && line.to_lowercase().contains("certificate")),
        "{logs:?}"
    );
}

#[test]
fn starttls_never_falls_back_to_plain_text() {
    // A server that offers no STARTTLS.
    let server = SmtpServer::start(&ServerOptions::default());
    let mut sink = EmailSink::start(&EmailSettings {
        give_up_after: Duration::ZERO,
        ..to_server(&server, TlsMode::Starttls)
    })
    .expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    sink.flush().expect_err("given up");
    assert!(server.received().is_empty(), "sent in clear");
    assert_eq!(sink.stats().given_up, 1);
    let logs = logged(server.port);
    assert!(
        logs.iter()
            .any(|(_, line)| line.contains("given up") && line.contains("STARTTLS")),
        "{logs:?}"
    );
}

#[test]
fn smtps_delivers_over_tls_from_the_first_byte() {
    let files = Files::new("smtps");
    let (ca, cert, key) = certificates(&files, "smtps");
    let server = SmtpServer::start(&ServerOptions {
        security: Security::Smtps { cert, key },
        ..ServerOptions::default()
    });
    let mut sink = EmailSink::start(&EmailSettings {
        ca_file: Some(ca),
        ..to_server(&server, TlsMode::Tls)
    })
    .expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    sink.flush().expect("sent");
    let received = server.received();
    assert_eq!(received.len(), 1, "{}", server.log());
    assert!(received[0].tls);
}

#[test]
fn auth_with_a_credentials_file() {
    use std::os::unix::fs::PermissionsExt;
    let files = Files::new("auth");
    let (ca, cert, key) = certificates(&files, "auth");
    let server = SmtpServer::start(&ServerOptions {
        security: Security::Starttls { cert, key },
        auth: Some(("sensor".into(), "s3cr=t pass".into())),
        ..ServerOptions::default()
    });
    let credentials = |name: &str, password: &str| {
        let path = files.write(
            name,
            &format!("username = \"sensor\"\npassword = \"{password}\"\n"),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Credentials::load(&path).expect("loads")
    };
    let mut sink = EmailSink::start(&EmailSettings {
        ca_file: Some(ca.clone()),
        credentials: Some(credentials("good", "s3cr=t pass")),
        ..to_server(&server, TlsMode::Starttls)
    })
    .expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    sink.flush().expect("sent");
    let received = server.received();
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].login.as_deref(), Some("sensor"));

    // A wrong password: refused, logged, the password in no log line.
    let mut wrong = EmailSink::start(&EmailSettings {
        ca_file: Some(ca),
        credentials: Some(credentials("wrong", "hunter2-wrong")),
        give_up_after: Duration::ZERO,
        ..to_server(&server, TlsMode::Starttls)
    })
    .expect("starts");
    wrong.deliver(&[sample_alert()]).expect("queued");
    wrong.flush().expect_err("given up");
    assert_eq!(server.received().len(), 1);
    assert_eq!(wrong.stats().given_up, 1);
    let logs = logged(server.port);
    assert!(
        logs.iter()
            .any(|(_, line)| line.contains("given up") && line.contains("535")),
        "{logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|(_, line)| line.contains("hunter2") || line.contains("s3cr=t")),
        "{logs:?}"
    );
}

#[test]
fn a_server_down_then_up_gets_the_message_after_retries() {
    let port = free_port();
    let mut sink = EmailSink::start(&EmailSettings { port, ..settings() }).expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    assert!(
        wait_until(Duration::from_secs(5), || sink.stats().failed_attempts >= 2),
        "{:?}",
        sink.stats()
    );
    let server = SmtpServer::start(&ServerOptions {
        port,
        ..ServerOptions::default()
    });
    let received = server.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1, "{}", server.log());
    sink.flush().expect("nothing left");
    let stats = sink.stats();
    assert_eq!(stats.sent, 1);
    assert!(stats.failed_attempts >= 2, "{stats:?}");
    let logs = logged(port);
    let failures: Vec<&String> = logs
        .iter()
        .filter(|(level, _)| *level == log::Level::Warn)
        .map(|(_, line)| line)
        .collect();
    assert_eq!(failures.len() as u64, stats.failed_attempts, "{logs:?}");
    assert!(
        failures[0].contains("attempt 1 failed") && failures[0].contains("retrying in 100ms"),
        "{failures:?}"
    );
    assert!(
        failures[1].contains("attempt 2 failed") && failures[1].contains("retrying in 200ms"),
        "{failures:?}"
    );
    assert!(
        logs.iter().any(|(level, line)| *level == log::Level::Info
            && line.contains(&format!("after {} attempts", stats.failed_attempts + 1))),
        "{logs:?}"
    );
}

/// A server that accepts connections and never says a word.
struct Silent {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            accepted,
            stop,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let silent = Silent::start();
    let mut sink = EmailSink::start(&EmailSettings {
        port: silent.port,
        timeout: Duration::from_secs(3),
        delivery: Delivery {
            queue: 1,
            flush_wait: Duration::from_millis(300),
            ..settings().delivery
        },
        ..settings()
    })
    .expect("starts");
    sink.deliver(&[sample_alert()]).expect("queued");
    // The sender is now stuck in its first attempt, waiting for a greeting.
    assert!(wait_until(Duration::from_secs(5), || silent
        .accepted
        .load(Ordering::Relaxed)
        >= 1));
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = sink.deliver(&two_alerts());
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "deliver waited {:?}",
            started.elapsed()
        );
        outcomes.push(outcome);
    }
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    for outcome in &outcomes[1..] {
        let err = outcome.as_ref().expect_err("dropped");
        assert!(
            matches!(
                err,
                AlertError::Email(EmailError::QueueFull { capacity: 1 })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("queue is full"), "{err}");
    }
    let stats = sink.stats();
    assert_eq!((stats.dropped, stats.pending, stats.sent), (2, 2, 0));
    // The end of the run waits a bounded time and says what is left.
    let started = Instant::now();
    let err = sink.flush().expect_err("two left");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            AlertError::Email(EmailError::Unsent {
                given_up: 0,
                left: 2,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "2 messages not sent: 2 still queued after waiting 300ms at the end of the run"
    );
}

#[test]
fn a_message_is_given_up_after_give_up_after() {
    let port = free_port();
    let mut sink = EmailSink::start(&EmailSettings {
        port,
        give_up_after: Duration::from_millis(700),
        ..settings()
    })
    .expect("starts");
    let started = Instant::now();
    sink.deliver(&two_alerts()).expect("queued");
    assert!(
        wait_until(Duration::from_secs(5), || sink.stats().given_up == 1),
        "{:?}",
        sink.stats()
    );
    let given_up_after = started.elapsed();
    assert!(
        given_up_after >= Duration::from_millis(700),
        "{given_up_after:?}"
    );
    let stats = sink.stats();
    // 0, 100, 300, 500, 700 ms: the last attempt falls on the deadline.
    assert!(stats.failed_attempts >= 4, "{stats:?}");
    assert_eq!((stats.sent, stats.pending), (0, 0));
    let err = sink.flush().expect_err("given up");
    assert!(
        matches!(
            err,
            AlertError::Email(EmailError::Unsent {
                given_up: 1,
                left: 0,
                ..
            })
        ),
        "{err}"
    );
    let logs = logged(port);
    let errors: Vec<&String> = logs
        .iter()
        .filter(|(level, _)| *level == log::Level::Error)
        .map(|(_, line)| line)
        .collect();
    assert_eq!(errors.len(), 1, "{logs:?}");
    assert!(
        errors[0].contains("given up a message of 2 alerts (pirate.sea, ...)")
            && errors[0].contains(&format!("after {} failed attempts", stats.failed_attempts)),
        "{errors:?}"
    );
    let warnings = logs.iter().filter(|(l, _)| *l == log::Level::Warn).count();
    assert_eq!(warnings as u64, stats.failed_attempts - 1, "{logs:?}");
}

/// Bytes that never come from a name: every line of the mail must be printable ASCII
/// and end in CRLF.
fn assert_printable_lines(raw: &[u8]) {
    let text = std::str::from_utf8(raw).expect("ASCII");
    assert!(text.ends_with("\r\n"), "{text}");
    for line in text[..text.len() - 2].split("\r\n") {
        assert!(
            line.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "unprintable byte in {line:?}"
        );
    }
}

#[test]
fn hostile_names_forge_no_header_line_or_recipient() {
    let server = SmtpServer::start(&ServerOptions::default());
    let mut hostile = sample_alert();
    hostile.domain = Box::from(&b"evil\r\nBcc: x@y.z\r\n\x00\x1b[2J\"'\xff\xc3.sea"[..]);
    hostile.sample_names = vec![
        // An SMTP end of data, then a second message.
        Box::from(&b"a\r\n.\r\nMAIL FROM:<x@y.z>\r\nRCPT TO:<x@y.z>\r\n.evil.sea"[..]),
        Box::from(&b"\x1b]0;pwned\x07\"quoted\".'single'.evil.sea"[..]),
        Box::from(&b"\n\rSubject: forged\n\xfe\xff\x00.evil.sea"[..]),
    ];
    let mut second = sample_alert();
    second.domain = Box::from(&b"x\nTo: x@y.z"[..]);
    let mut sink = EmailSink::start(&to_server(&server, TlsMode::None)).expect("starts");
    sink.deliver(&[hostile, second]).expect("queued");
    sink.flush().expect("sent");

    let received = server.received();
    assert_eq!(received.len(), 1, "one message, none smuggled");
    let mail = &received[0];
    assert_eq!(mail.rcpt_tos, ["soc@example.org", "noc@example.org"]);
    assert_printable_lines(&mail.raw);
    assert!(mail.header("Bcc").is_empty(), "{}", mail.head());
    assert_eq!(mail.header("To"), ["soc@example.org, noc@example.org"]);
    assert_eq!(
        mail.header("Subject"),
        ["Suspected DNS Tunnel Alert: [high 84] evil\\013\\010Bcc:\\032x@y.z\\013\\010\\000\\027[2J\"'\\255\\195.sea and 1 more"]
    );
    // Only the headers the sensor writes.
    for line in mail.head().split("\r\n") {
        if line.starts_with(' ') {
            continue;
        }
        let name = line.split(':').next().unwrap_or_default();
        assert!(
            [
                "From",
                "To",
                "Subject",
                "Date",
                "Message-ID",
                "Content-Type",
                "Content-Transfer-Encoding",
                "MIME-Version",
                "Auto-Submitted",
            ]
            .contains(&name),
            "unexpected header line {line:?} in\n{}",
            mail.head()
        );
    }
    let body = mail.body();
    assert!(
        body.bytes()
            .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
        "{body:?}"
    );
    let lines = lines_of(&body);
    assert!(
        lines.contains(&"1. evil\\013\\010Bcc:\\032x@y.z\\013\\010\\000\\027[2J\"'\\255\\195.sea"),
        "{body}"
    );
    assert!(
        lines.contains(&"   sample names:     a\\013\\010.\\013\\010MAIL\\032FROM:<x@y.z>\\013\\010RCPT\\032TO:<x@y.z>\\013\\010.evil.sea"),
        "{body}"
    );
    assert!(
        lines.contains(&"                     \\027]0;pwned\\007\"quoted\".'single'.evil.sea"),
        "{body}"
    );
    assert!(
        lines.contains(
            &"                     \\010\\013Subject:\\032forged\\010\\254\\255\\000.evil.sea"
        ),
        "{body}"
    );
    assert!(lines.contains(&"2. x\\010To:\\032x@y.z"), "{body}");
    // The log lines name the domain escaped too.
    let logs = logged(server.port);
    assert!(
        logs.iter()
            .all(|(_, line)| line.bytes().all(|b| (0x20..0x7f).contains(&b))),
        "{logs:?}"
    );
}

#[test]
fn a_sink_that_cannot_start_says_why() {
    let err = EmailSink::start(&EmailSettings {
        to: vec!["soc@example.org".into(), "two words".into()],
        ..settings()
    })
    .err()
    .expect("refused");
    assert!(err.to_string().contains("\"two words\""), "{err}");
    let err = EmailSink::start(&EmailSettings {
        tls: TlsMode::Starttls,
        ca_file: Some(Path::new("/nonexistent/ca.pem").to_owned()),
        ..settings()
    })
    .err()
    .expect("refused");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
