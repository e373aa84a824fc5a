//! The reference alert as JSON: the fields of the Packetbeat + Watcher alert first, in
//! its order, then the additions:
//!
//! ```text
//! {"@timestamp":"2010-08-21T02:11:04.538Z","domain":"pirate.sea","total_requests":222,
//!  "unique_hostnames":222,"total_bytes_in":16812,"total_bytes_out":35212,
//!  "total_bytes":52024,"window_start":"2010-08-20T22:00:00.000Z",
//!  "window_end":"2010-08-21T02:11:04.538Z","top_clients":[{"ip":"10.0.2.30",
//!  "requests":222}],"sample_names":["vaaaakardli.pirate.sea"],"qtypes":{"NULL":222},
//!  "severity":"high","score":89,"reasons":["names do not repeat","one client",
//!  "data query types"],"evidence":{"names_per_query":1.0,"clients":1,
//!  "top_client_share":1.0,"name_length":35.829,"labels":1.441,"longest_label":17.968,
//!  "digit_share":0.064,"other_share":0.15,"data_qtype_share":1.0,"nxdomain_share":0.0,
//!  "failure_share":0.0,"query_bytes":75.73,"response_bytes":166.094}}
//! ```
//!
//! (one line in the output; the real iodine capture's alert, one sample name shown).
//! Times are RFC 3339 UTC with milliseconds, as Packetbeat and Elasticsearch write
//! `@timestamp`; `@timestamp` is the evaluation time (`at`). `severity` is `high` or
//! `low`, `score` 0 to 100 and `reasons` fixed phrases (detect/severity.rs);
//! `evidence` holds the figures they come from, to three decimals.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::text::{escape_name, qtype_name, rfc3339};
use crate::detect::{Alert, Evidence};

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
/// line format (the reference alert's fields, then the window, clients, samples, query
/// types, the severity and its evidence).
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    /// `high` or `low` ([`Severity::as_str`](crate::detect::Severity::as_str)).
    pub severity: &'static str,
    /// How much the alert looks like a tunnel, 0 to 100.
    pub score: u8,
    /// The traits behind the score, tunnel-like ones first (fixed phrases).
    pub reasons: Vec<&'static str>,
    /// The figures that tell a tunnel from a busy service.
    pub evidence: Evidence,
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
            severity: alert.assessment.severity.as_str(),
            score: alert.assessment.score,
            reasons: alert.assessment.reasons.clone(),
            evidence: alert.evidence.clone(),
        }
    }
}

/// The alert as one JSON object (the fields of the reference alert and more).
///
/// A `Value`'s objects keep keys sorted (serde_json without `preserve_order`): for the
/// line format in its field order, serialise [`AlertJson`] directly, as [`JsonLines`](super::JsonLines)
/// does.
pub fn to_json(alert: &Alert) -> serde_json::Value {
    // Serialising plain strings and integers with string keys cannot fail.
    serde_json::to_value(AlertJson::from(alert)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::test_alerts::sample_alert;

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
            "qtypes": {"NULL": 221, "TYPE65534": 1},
            "severity": "high",
            "score": 84,
            "reasons": ["names do not repeat", "few clients", "data query types"],
            "evidence": {
                "names_per_query": 1.0,
                "clients": 2,
                "top_client_share": 0.991,
                "name_length": 35.829,
                "labels": 1.441,
                "longest_label": 17.968,
                "digit_share": 0.064,
                "other_share": 0.15,
                "data_qtype_share": 0.995,
                "nxdomain_share": 0.0,
                "failure_share": 0.0,
                "query_bytes": 75.73,
                "response_bytes": 166.094
            }
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn a_low_alert_says_so_with_its_reasons() {
        let mut alert = sample_alert();
        alert.evidence.clients = 40;
        alert.evidence.longest_label = 4.0;
        alert.assessment = crate::detect::Assessment::of(&alert.evidence);
        let json = to_json(&alert);
        assert_eq!(json["severity"], "low");
        // 30 for new names, -40 for the clients, 19.9 for NULL.
        assert_eq!(json["score"], 10);
        assert_eq!(
            json["reasons"],
            serde_json::json!([
                "names do not repeat",
                "data query types",
                "many clients",
                "short labels"
            ])
        );
        assert_eq!(json["evidence"]["clients"], 40);
    }
}
