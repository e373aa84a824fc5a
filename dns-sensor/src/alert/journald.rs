//! The journald output: one structured journal entry per alert, over the journal's
//! native protocol.
//!
//! Every entry has `PRIORITY=4` (warning) for a high alert and `PRIORITY=5` (notice)
//! for a low one ([`priority`]: `journalctl -p warning` shows the high ones only),
//! `SYSLOG_IDENTIFIER=dns-sensor`, the one [`MESSAGE_ID`] of every alert
//! (`journalctl MESSAGE_ID=c02f30fa7d4846fa8846c606a7ea6dc5` lists them all), a
//! readable `MESSAGE` ([`summary_line`], which starts `[high 84]`) and these fields:
//!
//! | field | value |
//! |---|---|
//! | `DNS_DOMAIN` | the registered domain, escaped (`\DDD` outside printable ASCII) |
//! | `UNIQUE_HOSTNAMES`, `TOTAL_REQUESTS` | the counts |
//! | `TOTAL_BYTES_IN`, `TOTAL_BYTES_OUT`, `TOTAL_BYTES` | query, response and both sizes |
//! | `TOP_CLIENTS` | `ip=requests` pairs, space-separated, most active first |
//! | `WINDOW_START`, `WINDOW_END` | RFC 3339 UTC |
//! | `THRESHOLD` | the threshold exceeded |
//! | `ESTIMATED` | `true` when `UNIQUE_HOSTNAMES` is an estimate, else `false` |
//! | `ALERT_ID` | the alert's id, the same in every output |
//! | `SAMPLE_NAMES` | a few names, escaped, space-separated |
//! | `QTYPES` | `TYPE=count` pairs, space-separated |
//! | `SEVERITY` | `high` or `low` |
//! | `SCORE` | 0 to 100 |
//! | `REASONS` | the traits behind the score, comma-separated (`names do not repeat,one client`) |
//! | `EVIDENCE_NAMES_PER_QUERY`, `EVIDENCE_CLIENTS`, `EVIDENCE_TOP_CLIENT_SHARE`, `EVIDENCE_NAME_LENGTH`, `EVIDENCE_LABELS`, `EVIDENCE_LONGEST_LABEL`, `EVIDENCE_DIGIT_SHARE`, `EVIDENCE_OTHER_SHARE`, `EVIDENCE_DATA_QTYPE_SHARE`, `EVIDENCE_NXDOMAIN_SHARE`, `EVIDENCE_FAILURE_SHARE`, `EVIDENCE_QUERY_BYTES`, `EVIDENCE_RESPONSE_BYTES` | the evidence's figures (the JSON `evidence` object's, upper case), three decimals at most |
//!
//! Every value is printable ASCII (names are escaped before they get here; reasons are
//! fixed phrases, figures numbers), so no field can hold a line break or a terminal
//! sequence, and no name can forge a field.

use std::borrow::Cow;

use log::{Level, Record};
use systemd_journal_logger::JournalLog;

use super::reference::AlertJson;
use super::text::{alert_id, escape_name, evidence_figures, rfc3339, summary_line};
use super::{AlertError, Sink};
use crate::detect::{Alert, Severity};

/// The `MESSAGE_ID` of every alert entry (a UUID chosen for this sensor; it never
/// changes, so saved `journalctl` queries and SIEM rules keep working).
pub const MESSAGE_ID: &str = "c02f30fa7d4846fa8846c606a7ea6dc5";

/// Where the journal listens (the native protocol's socket).
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Writes each alert as one journal entry.
pub struct JournaldSink {
    journal: JournalLog,
}

impl JournaldSink {
    /// Connects to the journal; fails when it is not there (no journald on this host, or
    /// not in this mount namespace).
    pub fn open() -> Result<Self, AlertError> {
        let journal = JournalLog::new()
            .map_err(AlertError::Journal)?
            .with_syslog_identifier("dns-sensor".to_owned());
        Ok(Self { journal })
    }
}

/// The level an alert of `severity` is sent at: [`Level::Warn`] (`PRIORITY=4`,
/// warning) for high, [`Level::Info`] (`PRIORITY=5`, notice: the journal's level for
/// "normal but significant") for low.
pub fn priority(severity: Severity) -> Level {
    match severity {
        Severity::High => Level::Warn,
        Severity::Low => Level::Info,
    }
}

/// The fields of `alert`'s entry, beyond `MESSAGE` and `PRIORITY`.
pub fn fields(alert: &Alert) -> Vec<(Cow<'static, str>, String)> {
    let json = AlertJson::from(alert);
    let pairs = |items: Vec<(String, u64)>| {
        items
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let fields = [
        ("MESSAGE_ID", MESSAGE_ID.to_owned()),
        ("DNS_DOMAIN", escape_name(&alert.domain)),
        ("UNIQUE_HOSTNAMES", alert.unique_hostnames.to_string()),
        ("TOTAL_REQUESTS", alert.total_requests.to_string()),
        ("TOTAL_BYTES_IN", alert.total_bytes_in.to_string()),
        ("TOTAL_BYTES_OUT", alert.total_bytes_out.to_string()),
        ("TOTAL_BYTES", json.total_bytes.to_string()),
        (
            "TOP_CLIENTS",
            pairs(
                json.top_clients
                    .into_iter()
                    .map(|c| (c.ip, c.requests))
                    .collect(),
            ),
        ),
        ("WINDOW_START", rfc3339(alert.window_start)),
        ("WINDOW_END", rfc3339(alert.window_end)),
        ("THRESHOLD", alert.threshold.to_string()),
        ("ESTIMATED", alert.estimated.to_string()),
        ("ALERT_ID", alert_id(alert)),
        ("SAMPLE_NAMES", json.sample_names.join(" ")),
        ("QTYPES", pairs(json.qtypes.0)),
        ("SEVERITY", json.severity.to_owned()),
        ("SCORE", json.score.to_string()),
        ("REASONS", json.reasons.join(",")),
    ];
    let evidence = evidence_figures(&alert.evidence)
        .into_iter()
        .map(|figure| (Cow::Owned(figure.journal_field()), figure.value));
    fields
        .into_iter()
        .map(|(key, value)| (Cow::Borrowed(key), value))
        .chain(evidence)
        .collect()
}

impl Sink for JournaldSink {
    fn name(&self) -> String {
        "journald".into()
    }

    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        for alert in alerts {
            let fields = fields(alert);
            let kvs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_str()))
                .collect();
            let message = summary_line(alert);
            self.journal
                .journal_send(
                    &Record::builder()
                        .level(priority(alert.assessment.severity))
                        .target("dns_sensor::alert")
                        .args(format_args!("{message}"))
                        .key_values(&kvs)
                        .build(),
                )
                .map_err(AlertError::Journal)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::test_alerts::sample_alert;

    #[test]
    fn fields_carry_the_figures_in_printable_ascii() {
        let mut alert = sample_alert();
        alert.domain = Box::from(&b"a\nPRIORITY=0\n\x1b]0;x\x07.sea"[..]);
        let fields = fields(&alert);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        assert_eq!(get("MESSAGE_ID"), MESSAGE_ID);
        assert_eq!(get("DNS_DOMAIN"), "a\\010PRIORITY=0\\010\\027]0;x\\007.sea");
        assert_eq!(get("UNIQUE_HOSTNAMES"), "222");
        assert_eq!(get("TOTAL_REQUESTS"), "222");
        assert_eq!(get("TOTAL_BYTES_IN"), "16812");
        assert_eq!(get("TOTAL_BYTES_OUT"), "35212");
        assert_eq!(get("TOTAL_BYTES"), "52024");
        assert_eq!(get("TOP_CLIENTS"), "10.0.2.30=220 2001:db8::1=2");
        assert_eq!(get("WINDOW_START"), "2027-01-15T04:00:00.000Z");
        assert_eq!(get("WINDOW_END"), "2027-01-15T08:00:00.000Z");
        assert_eq!(get("THRESHOLD"), "200");
        assert_eq!(get("ESTIMATED"), "false");
        assert_eq!(get("ALERT_ID"), alert_id(&alert));
        assert_eq!(get("SAMPLE_NAMES"), "0ebb\\001.pirate.sea");
        assert_eq!(get("QTYPES"), "NULL=221 TYPE65534=1");
        assert_eq!(get("SEVERITY"), "high");
        assert_eq!(get("SCORE"), "84");
        assert_eq!(
            get("REASONS"),
            "names do not repeat,few clients,data query types"
        );
        for (field, value) in [
            ("EVIDENCE_NAMES_PER_QUERY", "1"),
            ("EVIDENCE_CLIENTS", "2"),
            ("EVIDENCE_TOP_CLIENT_SHARE", "0.991"),
            ("EVIDENCE_NAME_LENGTH", "35.829"),
            ("EVIDENCE_LABELS", "1.441"),
            ("EVIDENCE_LONGEST_LABEL", "17.968"),
            ("EVIDENCE_DIGIT_SHARE", "0.064"),
            ("EVIDENCE_OTHER_SHARE", "0.15"),
            ("EVIDENCE_DATA_QTYPE_SHARE", "0.995"),
            ("EVIDENCE_NXDOMAIN_SHARE", "0"),
            ("EVIDENCE_FAILURE_SHARE", "0"),
            ("EVIDENCE_QUERY_BYTES", "75.73"),
            ("EVIDENCE_RESPONSE_BYTES", "166.094"),
        ] {
            assert_eq!(get(field), value, "{field}");
        }
        assert_eq!(
            fields
                .iter()
                .filter(|(k, _)| k.starts_with("EVIDENCE_"))
                .count(),
            13
        );
        // Each field once: no evidence figure shadows another field.
        let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), fields.len());
        for (key, value) in &fields {
            assert!(
                value.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{key}={value:?}"
            );
        }
    }

    #[test]
    fn a_high_alert_is_a_warning_and_a_low_one_a_notice() {
        assert_eq!(priority(Severity::High), Level::Warn);
        assert_eq!(priority(Severity::Low), Level::Info);
        let mut low = sample_alert();
        low.evidence.clients = 64;
        low.assessment = crate::detect::Assessment::of(&low.evidence);
        let fields = fields(&low);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("SEVERITY"), Some("low"));
        assert_eq!(get("SCORE"), Some("24"));
        assert_eq!(
            get("REASONS"),
            Some("names do not repeat,data query types,many clients")
        );
        assert_eq!(get("EVIDENCE_CLIENTS"), Some("64"));
    }
}
