//! The journald output: one structured journal entry per alert, over the journal's
//! native protocol.
//!
//! Every entry has `PRIORITY=4` (warning), `SYSLOG_IDENTIFIER=dns-sensor`, the one
//! [`MESSAGE_ID`] of every alert (`journalctl MESSAGE_ID=c02f30fa7d4846fa8846c606a7ea6dc5`
//! lists them all), a readable `MESSAGE` ([`summary_line`]) and these fields:
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
//!
//! Every value is printable ASCII (names are escaped before they get here), so no field
//! can hold a line break or a terminal sequence, and no name can forge a field.

use log::{Level, Record};
use systemd_journal_logger::JournalLog;

use super::reference::AlertJson;
use super::text::{alert_id, escape_name, rfc3339, summary_line};
use super::{AlertError, Sink};
use crate::detect::Alert;

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

/// The fields of `alert`'s entry, beyond `MESSAGE` and `PRIORITY`.
pub fn fields(alert: &Alert) -> Vec<(&'static str, String)> {
    let json = AlertJson::from(alert);
    let pairs = |items: Vec<(String, u64)>| {
        items
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    vec![
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
    ]
}

impl Sink for JournaldSink {
    fn name(&self) -> String {
        "journald".into()
    }

    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        for alert in alerts {
            let fields = fields(alert);
            let kvs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let message = summary_line(alert);
            // Warning: PRIORITY=4, as the alert entries are specified.
            self.journal
                .journal_send(
                    &Record::builder()
                        .level(Level::Warn)
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
        for (key, value) in &fields {
            assert!(
                value.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{key}={value:?}"
            );
        }
    }
}
