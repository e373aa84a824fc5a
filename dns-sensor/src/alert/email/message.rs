//! One evaluation's alerts as one mail: the headers (From, To, Subject, Date,
//! Message-ID, Auto-Submitted) and a plain-text body listing every alerting domain with
//! its severity and score, the reasons for them, its figures, clients, sample names,
//! query types and the evidence's figures.
//!
//! Every name in the mail went through [`escape_name`], so the body and the subject are
//! printable ASCII whatever the names hold (the reasons are fixed phrases of the code,
//! the figures numbers); lettre still encodes and folds the headers, and picks the
//! body's transfer encoding (7bit, or quoted-printable when a line is long: tunnel
//! names often are).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::Message;

use super::{EmailError, EmailSettings};
use crate::alert::text::{
    alert_id, duration, escape_name, evidence_figures, qtype_name, rfc3339, severity_tag,
};
use crate::detect::Alert;

/// Builds the mails of one output: its sender, recipients and subject, checked once.
#[derive(Debug)]
pub(crate) struct Composer {
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
    /// This machine's name, as the Message-ID's right-hand side and in the body.
    host: String,
}

/// Messages composed by this process, so two in the same nanosecond differ.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Parses one configured address (`name@domain` or `Name <name@domain>`).
pub(crate) fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, EmailError> {
    value.parse().map_err(|reason| EmailError::Address {
        field,
        value: value.to_owned(),
        reason,
    })
}

impl Composer {
    /// Checks the addresses; `host` names this machine (a mail domain: see
    /// [`mail_host`]).
    pub(crate) fn new(settings: &EmailSettings, host: &str) -> Result<Self, EmailError> {
        if settings.to.is_empty() {
            return Err(EmailError::NoRecipient);
        }
        if settings.subject.contains(['\r', '\n']) {
            return Err(EmailError::Subject);
        }
        Ok(Self {
            from: mailbox("from", &settings.from)?,
            to: settings
                .to
                .iter()
                .map(|to| mailbox("to", to))
                .collect::<Result<_, _>>()?,
            subject: settings.subject.clone(),
            host: host.to_owned(),
        })
    }

    /// The recipients, for log lines.
    pub(crate) fn recipients(&self) -> usize {
        self.to.len()
    }

    /// The mail for one evaluation's alerts (never empty), dated `now`.
    pub(crate) fn compose(&self, alerts: &[Alert], now: SystemTime) -> Result<Message, EmailError> {
        let mut builder = Message::builder().from(self.from.clone());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .subject(subject(&self.subject, alerts))
            .date(now)
            .message_id(Some(self.message_id(now)))
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            // RFC 3834: no vacation notice or other automatic reply to the sensor.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .body(body(alerts, &self.host))
            .map_err(EmailError::Compose)
    }

    fn message_id(&self, now: SystemTime) -> String {
        let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        format!(
            "<dns-sensor.{nanos:x}.{:x}.{n}@{}>",
            std::process::id(),
            self.host
        )
    }
}

/// `host` (an escaped host name) if it can stand as a mail domain (letters, digits,
/// `-` and `.`), else `localhost`: it goes into EHLO and the Message-ID.
pub(crate) fn mail_host(host: &str) -> String {
    let usable = !host.is_empty()
        && !host.starts_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if usable {
        host.to_owned()
    } else {
        "localhost".to_owned()
    }
}

/// The configured subject, then the severity and score of the highest-scoring alert
/// (the first of those that score the same) and its domain, then "and N more" when the
/// evaluation has several: `Suspected DNS Tunnel Alert: [high 84] pirate.sea and 2 more`.
pub(crate) fn subject(configured: &str, alerts: &[Alert]) -> String {
    // `max_by_key` keeps the last of equals: the reversed list gives the first.
    let Some(worst) = alerts.iter().rev().max_by_key(|a| a.assessment.score) else {
        return configured.to_owned();
    };
    let mut subject = format!(
        "{configured}: {} {}",
        severity_tag(worst),
        escape_name(&worst.domain)
    );
    if alerts.len() > 1 {
        let _ = write!(subject, " and {} more", alerts.len() - 1);
    }
    subject
}

/// The plain-text body: a line saying what happened, then one block per alert. Lines
/// end in `\n` (lettre writes CRLF); every character is printable ASCII.
pub(crate) fn body(alerts: &[Alert], host: &str) -> String {
    let mut out = String::new();
    let at = alerts.first().map_or(0, |a| a.at);
    let _ = writeln!(
        out,
        "dns-sensor on {host}: {} domain{} over the threshold\n\
         of unique hostnames in the evaluation at {}.",
        alerts.len(),
        if alerts.len() == 1 { "" } else { "s" },
        rfc3339(at),
    );
    for (i, alert) in alerts.iter().enumerate() {
        out.push('\n');
        write_alert(&mut out, i + 1, alert);
    }
    out.push_str(
        "\n-- \nNames are shown as the sensor saw them, except that every byte\n\
         outside printable ASCII is written \\DDD (its value in decimal).\n",
    );
    out
}

fn write_alert(out: &mut String, n: usize, alert: &Alert) {
    let about = if alert.estimated { "about " } else { "" };
    let total = alert.total_bytes_in.saturating_add(alert.total_bytes_out);
    let _ = writeln!(out, "{n}. {}", escape_name(&alert.domain));
    let _ = writeln!(
        out,
        "   severity:         {} (score {} of 100)",
        alert.assessment.severity.as_str(),
        alert.assessment.score
    );
    list(
        out,
        "reasons:",
        alert.assessment.reasons.iter().map(|r| r.to_string()),
    );
    let _ = writeln!(
        out,
        "   unique hostnames: {about}{} (threshold {})",
        alert.unique_hostnames, alert.threshold
    );
    let _ = writeln!(out, "   requests:         {}", alert.total_requests);
    let _ = writeln!(out, "   bytes in:         {}", alert.total_bytes_in);
    let _ = writeln!(out, "   bytes out:        {}", alert.total_bytes_out);
    let _ = writeln!(out, "   bytes total:      {total}");
    let _ = writeln!(out, "   window start:     {}", rfc3339(alert.window_start));
    let _ = writeln!(
        out,
        "   window end:       {} ({})",
        rfc3339(alert.window_end),
        duration(alert.window_end.saturating_sub(alert.window_start)),
    );
    list(
        out,
        "top clients:",
        alert
            .top_clients
            .iter()
            .map(|(ip, requests)| format!("{ip} ({requests} requests)")),
    );
    list(
        out,
        "sample names:",
        alert.sample_names.iter().map(|name| escape_name(name)),
    );
    let qtypes: Vec<String> = alert
        .qtypes
        .iter()
        .map(|(qtype, count)| format!("{} {count}", qtype_name(*qtype)))
        .collect();
    let qtypes = if qtypes.is_empty() {
        "-".to_owned()
    } else {
        qtypes.join(", ")
    };
    let _ = writeln!(out, "   query types:      {qtypes}");
    list(
        out,
        "evidence:",
        evidence_figures(&alert.evidence)
            .into_iter()
            .map(|figure| format!("{:<17} {}", figure.name, figure.value)),
    );
    let _ = writeln!(out, "   alert id:         {}", alert_id(alert));
}

/// `label` and the first item on one line, each further item on a line of its own
/// under it; `-` when there is none.
fn list(out: &mut String, label: &str, items: impl Iterator<Item = String>) {
    let mut any = false;
    for item in items {
        let lead = if any { "" } else { label };
        let _ = writeln!(out, "   {lead:<17} {item}");
        any = true;
    }
    if !any {
        let _ = writeln!(out, "   {label:<17} -");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alert::email::tests::settings;
    use crate::alert::test_alerts::sample_alert;
    use crate::detect::{Assessment, Evidence};

    fn two_alerts() -> Vec<Alert> {
        let first = sample_alert();
        let mut second = sample_alert();
        second.domain = Box::from(&b"tunnel.example"[..]);
        second.unique_hostnames = 5000;
        second.estimated = true;
        second.top_clients.clear();
        second.sample_names.clear();
        second.qtypes.clear();
        second.evidence = Evidence {
            names_per_query: 0.4,
            clients: 30,
            top_client_share: 0.2,
            longest_label: 8.0,
            nxdomain_share: 0.9,
            ..Evidence::default()
        };
        second.assessment = Assessment::of(&second.evidence);
        vec![first, second]
    }

    fn text(message: &Message) -> String {
        String::from_utf8(message.formatted()).expect("ASCII")
    }

    #[test]
    fn subject_names_the_highest_scoring_domain_and_counts_the_others() {
        let alerts = two_alerts();
        assert_eq!(
            subject("Alert", &alerts[..1]),
            "Alert: [high 84] pirate.sea"
        );
        assert_eq!(
            subject("Alert", &alerts),
            "Alert: [high 84] pirate.sea and 1 more"
        );
        // The first of two that score the same.
        let mut same = two_alerts();
        same[1].assessment = same[0].assessment.clone();
        assert_eq!(
            subject("Alert", &same),
            "Alert: [high 84] pirate.sea and 1 more"
        );
        // A low alert with more names comes first in the body, not in the subject.
        let mut low_first = two_alerts();
        low_first[0].evidence.clients = 64;
        low_first[0].assessment = Assessment::of(&low_first[0].evidence);
        low_first[1].evidence = sample_alert().evidence;
        low_first[1].assessment = Assessment::of(&low_first[1].evidence);
        assert_eq!(
            subject("Alert", &low_first),
            "Alert: [high 84] tunnel.example and 1 more"
        );
        let mut hostile = sample_alert();
        hostile.domain = Box::from(&b"a\r\nBcc: x@y.z"[..]);
        assert_eq!(
            subject("Alert", &[hostile]),
            "Alert: [high 84] a\\013\\010Bcc:\\032x@y.z"
        );
    }

    #[test]
    fn the_body_lists_every_domain_with_its_figures() {
        let body = body(&two_alerts(), "sensor-1");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(
            lines[..2],
            [
                "dns-sensor on sensor-1: 2 domains over the threshold",
                "of unique hostnames in the evaluation at 2027-01-15T08:00:00.000Z."
            ],
            "{body}"
        );
        for expected in [
            "1. pirate.sea",
            "   severity:         high (score 84 of 100)",
            "   reasons:          names do not repeat",
            "                     few clients",
            "                     data query types",
            "   unique hostnames: 222 (threshold 200)",
            "   requests:         222",
            "   bytes in:         16812",
            "   bytes out:        35212",
            "   bytes total:      52024",
            "   window start:     2027-01-15T04:00:00.000Z",
            "   window end:       2027-01-15T08:00:00.000Z (4h)",
            "   top clients:      10.0.2.30 (220 requests)",
            "                     2001:db8::1 (2 requests)",
            "   sample names:     0ebb\\001.pirate.sea",
            "   query types:      NULL 221, TYPE65534 1",
            "   evidence:         names_per_query   1",
            "                     clients           2",
            "                     top_client_share  0.991",
            "                     name_length       35.829",
            "                     labels            1.441",
            "                     longest_label     17.968",
            "                     digit_share       0.064",
            "                     other_share       0.15",
            "                     data_qtype_share  0.995",
            "                     nxdomain_share    0",
            "                     failure_share     0",
            "                     query_bytes       75.73",
            "                     response_bytes    166.094",
            "2. tunnel.example",
            "   severity:         low (score 0 of 100)",
            "   reasons:          names repeat",
            "                     many clients",
            "                     short labels",
            "                     mostly NXDOMAIN",
            "   unique hostnames: about 5000 (threshold 200)",
            "   top clients:      -",
            "   sample names:     -",
            "   query types:      -",
            "                     nxdomain_share    0.9",
        ] {
            assert!(lines.contains(&expected), "missing {expected:?} in\n{body}");
        }
        let ids: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with("   alert id:"))
            .collect();
        assert_eq!(ids.len(), 2, "{body}");
        assert!(ids[0].ends_with(&alert_id(&sample_alert())), "{body}");
        assert!(
            body.bytes()
                .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
            "{body}"
        );
        // Short enough to go as 7bit when the names are.
        assert!(lines.iter().all(|l| l.len() < 76), "{body}");
    }

    #[test]
    fn one_message_with_every_recipient_and_the_headers() {
        let composer = Composer::new(&settings(), "sensor-1").expect("valid");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let message = composer.compose(&two_alerts(), now).expect("composes");
        let envelope = message.envelope();
        assert_eq!(
            envelope.from().map(ToString::to_string).as_deref(),
            Some("dns-sensor@sensor.example")
        );
        let to: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(to, ["soc@example.org", "noc@example.org"]);
        let raw = text(&message);
        let (head, _) = raw.split_once("\r\n\r\n").expect("a header section");
        let header = |name: &str| -> Vec<&str> {
            head.split("\r\n")
                .filter_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
                .collect()
        };
        assert_eq!(
            header("From"),
            ["\"DNS sensor\" <dns-sensor@sensor.example>"]
        );
        assert_eq!(header("To"), ["soc@example.org, noc@example.org"]);
        assert_eq!(
            header("Subject"),
            ["Suspected DNS Tunnel Alert: [high 84] pirate.sea and 1 more"]
        );
        assert_eq!(header("Date"), ["Fri, 15 Jan 2027 08:00:00 +0000"]);
        assert_eq!(header("Auto-Submitted"), ["auto-generated"]);
        assert_eq!(header("MIME-Version"), ["1.0"]);
        assert_eq!(header("Content-Type"), ["text/plain; charset=utf-8"]);
        let id = header("Message-ID");
        assert_eq!(id.len(), 1, "{head}");
        assert!(
            id[0].starts_with("<dns-sensor.") && id[0].ends_with("@sensor-1>"),
            "{head}"
        );
        // Another message of the same second has another id.
        let again = text(&composer.compose(&two_alerts(), now).expect("composes"));
        assert!(!again.contains(id[0]), "{again}");
    }

    #[test]
    fn addresses_and_subject_are_checked() {
        let mut bad = settings();
        bad.to.push("not an address".into());
        let err = Composer::new(&bad, "h").expect_err("refused");
        assert!(
            err.to_string().contains("`to`") && err.to_string().contains("not an address"),
            "{err}"
        );
        let mut bad = settings();
        bad.from = "a@b.c\r\nBcc: x@y.z".into();
        assert!(matches!(
            Composer::new(&bad, "h"),
            Err(EmailError::Address { field: "from", .. })
        ));
        let mut bad = settings();
        bad.subject = "a\nBcc: x@y.z".into();
        assert!(matches!(Composer::new(&bad, "h"), Err(EmailError::Subject)));
        let mut bad = settings();
        bad.to.clear();
        assert!(matches!(
            Composer::new(&bad, "h"),
            Err(EmailError::NoRecipient)
        ));
    }

    #[test]
    fn mail_host_keeps_only_a_usable_domain() {
        assert_eq!(mail_host("sensor-1.example.org"), "sensor-1.example.org");
        assert_eq!(mail_host("a\\032b"), "localhost");
        assert_eq!(mail_host(""), "localhost");
        assert_eq!(mail_host("-x"), "localhost");
        assert_eq!(mail_host("x>y"), "localhost");
    }
}
