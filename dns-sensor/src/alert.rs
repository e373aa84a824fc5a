//! Alert: turns [`Alert`]s into output. Owns the JSON line format, the escaping of
//! attacker-controlled names, and the sink interface every output implements.
//!
//! The JSON line carries the reference alert's fields first, in the reference's order,
//! then the additions:
//!
//! ```text
//! {"@timestamp":"2026-11-26T22:15:00.000Z","domain":"pirate.sea","total_requests":222,
//!  "unique_hostnames":222,"total_bytes_in":16812,"total_bytes_out":35212,
//!  "total_bytes":52024,"window_start":"2026-11-26T18:15:00.000Z",
//!  "window_end":"2026-11-26T22:15:00.000Z","top_clients":[{"ip":"10.0.2.30",
//!  "requests":222}],"sample_names":["0ebb82.pirate.sea"],"qtypes":{"NULL":222}}
//! ```
//!
//! (one line in the output). Times are RFC 3339 UTC with milliseconds, as Packetbeat and
//! Elasticsearch write `@timestamp`; `@timestamp` is the evaluation time (`at`).

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use hickory_proto::rr::RecordType;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::detect::Alert;
use crate::Nanos;

/// Somewhere alerts go: stdout JSON lines now; journald and email later.
pub trait Sink {
    /// Delivers one alert.
    fn emit(&mut self, alert: &Alert) -> Result<(), AlertError>;
    /// Flushes anything buffered.
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(())
    }
}

/// An alert that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Writing failed.
    #[error("writing alert: {0}")]
    Io(#[from] std::io::Error),
}

/// Renders a canonical name for people: printable ASCII as is (the canonical form
/// already escapes `.` and `\` inside labels), every other byte as `\DDD` (decimal, as
/// RFC 1035 and Packetbeat do).
///
/// The result holds only bytes 0x21..=0x7E: no space, no control character, nothing
/// outside ASCII, so it is safe in terminals, logs, journal fields and mail headers.
pub fn escape_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &byte in name {
        if (0x21..=0x7e).contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('\\');
            out.push(char::from(b'0' + byte / 100));
            out.push(char::from(b'0' + byte / 10 % 10));
            out.push(char::from(b'0' + byte % 10));
        }
    }
    out
}

/// The mnemonic of a QTYPE (`A`, `TXT`, `NULL`...), or `TYPEnnn` (RFC 3597) for a type
/// without one. hickory names unknown types "Unknown", and maps two codes to names
/// IANA does not assign (0 to `ZERO`, 65305 to its provisional `ANAME`): those get the
/// generic form too.
pub fn qtype_name(qtype: u16) -> String {
    match RecordType::from(qtype) {
        RecordType::Unknown(_) | RecordType::ZERO | RecordType::ANAME => format!("TYPE{qtype}"),
        known => known.to_string(),
    }
}

/// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-26T22:15:00.000Z`.
pub fn rfc3339(t: Nanos) -> String {
    let time = UNIX_EPOCH + Duration::from_nanos(t);
    humantime::format_rfc3339_millis(time).to_string()
}

/// One client in [`AlertJson::top_clients`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientJson {
    /// The address as text (`10.0.2.30`, `2001:db8::1`).
    pub ip: String,
    /// Queries it sent for the domain in the window.
    pub requests: u64,
}

/// Query counts by type name, serialised as a JSON object in this order (most frequent
/// first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QtypeCounts(pub Vec<(String, u64)>);

impl Serialize for QtypeCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, count) in &self.0 {
            map.serialize_entry(name, count)?;
        }
        map.end()
    }
}

/// The JSON form of an [`Alert`]: fields serialise in declaration order, which is the
/// line format (the reference alert's fields, then the window, clients, samples and
/// query types).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertJson {
    /// Evaluation time, RFC 3339.
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// The registered domain, escaped with [`escape_name`].
    pub domain: String,
    /// Queries in the window.
    pub total_requests: u64,
    /// Distinct query names in the window.
    pub unique_hostnames: u64,
    /// Sum of query message sizes.
    pub total_bytes_in: u64,
    /// Sum of response message sizes.
    pub total_bytes_out: u64,
    /// `total_bytes_in + total_bytes_out`.
    pub total_bytes: u64,
    /// Start of the window, RFC 3339.
    pub window_start: String,
    /// End of the window, RFC 3339.
    pub window_end: String,
    /// Most active clients.
    pub top_clients: Vec<ClientJson>,
    /// A few names, escaped with [`escape_name`].
    pub sample_names: Vec<String>,
    /// Query counts by type name.
    pub qtypes: QtypeCounts,
}

impl From<&Alert> for AlertJson {
    fn from(alert: &Alert) -> Self {
        Self {
            timestamp: rfc3339(alert.at),
            domain: escape_name(&alert.domain),
            total_requests: alert.total_requests,
            unique_hostnames: alert.unique_hostnames,
            total_bytes_in: alert.total_bytes_in,
            total_bytes_out: alert.total_bytes_out,
            total_bytes: alert.total_bytes_in.saturating_add(alert.total_bytes_out),
            window_start: rfc3339(alert.window_start),
            window_end: rfc3339(alert.window_end),
            top_clients: alert
                .top_clients
                .iter()
                .map(|(ip, requests)| ClientJson {
                    ip: ip.to_string(),
                    requests: *requests,
                })
                .collect(),
            sample_names: alert.sample_names.iter().map(|n| escape_name(n)).collect(),
            qtypes: QtypeCounts(
                alert
                    .qtypes
                    .iter()
                    .map(|&(qtype, count)| (qtype_name(qtype), count))
                    .collect(),
            ),
        }
    }
}

/// The alert as one JSON object (the fields of the reference alert and more).
///
/// A `Value`'s objects keep keys sorted (serde_json without `preserve_order`): for the
/// line format in its field order, serialise [`AlertJson`] directly, as [`JsonLines`]
/// does.
pub fn to_json(alert: &Alert) -> serde_json::Value {
    // Serialising plain strings and integers with string keys cannot fail.
    serde_json::to_value(AlertJson::from(alert)).unwrap_or(serde_json::Value::Null)
}

/// Writes each alert as one JSON line.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        Self { out }
    }
    /// The writer, back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for JsonLines<W> {
    /// Writes the line and flushes, so a consumer on a pipe sees each alert at once.
    fn emit(&mut self, alert: &Alert) -> Result<(), AlertError> {
        serde_json::to_writer(&mut self.out, &AlertJson::from(alert))
            .map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(self.out.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NANOS_PER_SEC;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Inverse of [`escape_name`] for canonical names (where `\` is always followed by
    /// `\` or `.`, so `\DDD` is unambiguous).
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
                    out.push(u8::try_from(value).expect("escape fits a byte"));
                    i += 4;
                }
                (b'\\', None) => {
                    out.extend_from_slice(&bytes[i..i + 2]);
                    i += 2;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        out
    }

    /// How the canonical form writes a raw label byte.
    fn canonical(byte: u8) -> Vec<u8> {
        match byte {
            b'.' | b'\\' => vec![b'\\', byte],
            _ => vec![byte],
        }
    }

    #[test]
    fn escapes_every_byte_to_printable_and_back() {
        let mut all = Vec::new();
        for byte in 0..=255u8 {
            let name = [canonical(byte), b".sea".to_vec()].concat();
            let escaped = escape_name(&name);
            assert!(
                escaped.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{byte}: {escaped}"
            );
            assert_eq!(unescape(&escaped), name, "{byte}: {escaped}");
            all.extend(canonical(byte));
        }
        let escaped = escape_name(&all);
        assert!(!escaped.chars().any(char::is_control));
        assert_eq!(unescape(&escaped), all);
    }

    #[test]
    fn escapes_known_bytes() {
        assert_eq!(escape_name(b"www.example.com"), "www.example.com");
        assert_eq!(escape_name(b"a\xc8b.sea"), "a\\200b.sea");
        assert_eq!(escape_name(b"a b"), "a\\032b");
        assert_eq!(escape_name(b"\x00\n\x7f\xff"), "\\000\\010\\127\\255");
        assert_eq!(escape_name(b"a\\.b.sea"), "a\\.b.sea");
        assert_eq!(escape_name(b""), "");
    }

    #[test]
    fn qtype_names() {
        assert_eq!(qtype_name(1), "A");
        assert_eq!(qtype_name(10), "NULL");
        assert_eq!(qtype_name(16), "TXT");
        assert_eq!(qtype_name(28), "AAAA");
        assert_eq!(qtype_name(5), "CNAME");
        assert_eq!(qtype_name(15), "MX");
        assert_eq!(qtype_name(255), "ANY");
        assert_eq!(qtype_name(0), "TYPE0");
        assert_eq!(qtype_name(65305), "TYPE65305");
        assert_eq!(qtype_name(65534), "TYPE65534");
        assert_eq!(qtype_name(99), "TYPE99");
    }

    fn sample_alert() -> Alert {
        let at = 1_800_000_000 * NANOS_PER_SEC;
        Alert {
            at,
            domain: Box::from(&b"pirate.sea"[..]),
            total_requests: 222,
            unique_hostnames: 222,
            total_bytes_in: 16812,
            total_bytes_out: 35212,
            window_start: at - 4 * 3600 * NANOS_PER_SEC,
            window_end: at,
            top_clients: vec![
                (IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30)), 220),
                (
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                    2,
                ),
            ],
            sample_names: vec![Box::from(&b"0ebb\x01.pirate.sea"[..])],
            qtypes: vec![(10, 221), (65534, 1)],
        }
    }

    #[test]
    fn json_keys_and_values() {
        let json = to_json(&sample_alert());
        let expected = serde_json::json!({
            "@timestamp": "2027-01-15T08:00:00.000Z",
            "domain": "pirate.sea",
            "total_requests": 222,
            "unique_hostnames": 222,
            "total_bytes_in": 16812,
            "total_bytes_out": 35212,
            "total_bytes": 52024,
            "window_start": "2027-01-15T04:00:00.000Z",
            "window_end": "2027-01-15T08:00:00.000Z",
            "top_clients": [
                {"ip": "10.0.2.30", "requests": 220},
                {"ip": "2001:db8::1", "requests": 2}
            ],
            "sample_names": ["0ebb\\001.pirate.sea"],
            "qtypes": {"NULL": 221, "TYPE65534": 1}
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn json_line_keeps_field_order_and_flushes() {
        let mut sink = JsonLines::new(Vec::new());
        sink.emit(&sample_alert()).expect("written");
        sink.emit(&sample_alert()).expect("written");
        let text = String::from_utf8(sink.into_inner()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let line = lines[0];
        let keys = [
            "\"@timestamp\"",
            "\"domain\"",
            "\"total_requests\"",
            "\"unique_hostnames\"",
            "\"total_bytes_in\"",
            "\"total_bytes_out\"",
            "\"total_bytes\"",
            "\"window_start\"",
            "\"window_end\"",
            "\"top_clients\"",
            "\"sample_names\"",
            "\"qtypes\"",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| line.find(k).expect(k)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(line.starts_with(
            "{\"@timestamp\":\"2027-01-15T08:00:00.000Z\",\"domain\":\"pirate.sea\","
        ));
        assert!(line.ends_with("\"qtypes\":{\"NULL\":221,\"TYPE65534\":1}}"));
        let parsed: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(parsed, to_json(&sample_alert()));
    }

    #[test]
    fn write_errors_are_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "closed",
                ))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = JsonLines::new(Broken);
        assert!(matches!(sink.emit(&sample_alert()), Err(AlertError::Io(_))));
    }
}
