//! The alert in the Elastic Common Schema (ECS 8.11), for Elastic and the SIEMs that
//! read it: `event.kind: "alert"` with the rule, the severity as `event.severity` and
//! the score as `event.risk_score`, the domain under
//! `dns.question.registered_domain`, the top client as `source.ip`, the sensor as
//! `observer`, the window as `event.start`/`event.end`, and the figures ECS has no
//! field for under `dns_sensor.*` (ECS leaves a product's own fields to a namespace of
//! its own), with the severity's name, its reasons and its evidence:
//!
//! ```text
//! {"@timestamp":"2027-01-15T08:00:00.000Z","ecs":{"version":"8.11.0"},
//!  "message":"[high 84] suspected DNS tunnel: pirate.sea had 222 unique hostnames ...",
//!  "event":{"kind":"alert","category":["network","intrusion_detection"],"type":["info"],
//!   "module":"dns_sensor","dataset":"dns_sensor.alert","id":"3c0f...","severity":73,
//!   "risk_score":84.0,"risk_score_norm":84.0,"start":"...","end":"..."},
//!  "rule":{"id":"dns-sensor-unique-hostnames","name":"DNS tunnel: unique hostnames per registered domain",
//!   "description":"more than 200 unique hostnames under one registered domain within 4h",
//!   "ruleset":"dns-sensor"},
//!  "dns":{"question":{"registered_domain":"pirate.sea"}},"source":{"ip":"10.0.2.30"},
//!  "related":{"ip":["10.0.2.30"],"hosts":["pirate.sea"]},
//!  "observer":{"hostname":"sensor1","type":"sensor","product":"dns-sensor","vendor":"dns-sensor","version":"0.1.0"},
//!  "dns_sensor":{"total_requests":222,"unique_hostnames":222,"estimated":false,"threshold":200,
//!   "total_bytes_in":16812,"total_bytes_out":35212,"total_bytes":52024,"top_clients":[...],
//!   "sample_names":[...],"qtypes":{"NULL":222},"severity":"high","score":84,
//!   "reasons":["names do not repeat","few clients","data query types"],
//!   "evidence":{"names_per_query":1.0,"clients":2,...}}}
//! ```
//!
//! `event.severity` is a number, the source's own severity in ECS: [`ECS_SEVERITY_HIGH`]
//! and [`ECS_SEVERITY_LOW`] (see there why these two).

use serde::Serialize;

use super::reference::{AlertJson, ClientJson, QtypeCounts};
use super::text::{alert_id, duration, escape_name, rfc3339, summary_line};
use crate::detect::{Alert, Evidence, Severity};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// `rule.id` of every alert: the one rule the sensor runs.
pub const RULE_ID: &str = "dns-sensor-unique-hostnames";

/// `rule.name` of every alert.
pub const RULE_NAME: &str = "DNS tunnel: unique hostnames per registered domain";

/// `event.severity` of a [`Severity::High`] alert. ECS leaves the scale to the
/// source; Elastic Security, the consumer ECS is written for, maps its own alert
/// severities to risk scores low 21, medium 47, high 73, critical 99 (the defaults of
/// its detection rules' `severity` and `risk_score`). A high alert takes high's 73, so
/// rules and dashboards that sort or filter on those numbers rank it with Elastic's
/// own high alerts.
pub const ECS_SEVERITY_HIGH: u8 = 73;

/// `event.severity` of a [`Severity::Low`] alert: Elastic Security's low, 21 (see
/// [`ECS_SEVERITY_HIGH`]).
pub const ECS_SEVERITY_LOW: u8 = 21;

/// The `event.severity` of `severity`.
pub fn ecs_severity(severity: Severity) -> u8 {
    match severity {
        Severity::High => ECS_SEVERITY_HIGH,
        Severity::Low => ECS_SEVERITY_LOW,
    }
}

/// One alert as an ECS document; fields serialise in declaration order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcsAlert {
    /// Evaluation time.
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// `ecs.version`.
    pub ecs: EcsVersion,
    /// What happened, in one line.
    pub message: String,
    /// `event.*`.
    pub event: EcsEvent,
    /// `rule.*`.
    pub rule: EcsRule,
    /// `dns.*`.
    pub dns: EcsDns,
    /// `source.*`: the most active client; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<EcsSource>,
    /// `related.*`: every address and host the alert names, for pivoting.
    pub related: EcsRelated,
    /// `observer.*`: this sensor.
    pub observer: EcsObserver,
    /// The figures ECS has no field for, the severity's reasons and its evidence.
    pub dns_sensor: EcsDetails,
}

/// `ecs.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsVersion {
    /// [`ECS_VERSION`].
    pub version: &'static str,
}

/// `event.*`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcsEvent {
    /// Always `alert`.
    pub kind: &'static str,
    /// `network` and `intrusion_detection`.
    pub category: [&'static str; 2],
    /// `info`.
    #[serde(rename = "type")]
    pub kind_of_event: [&'static str; 1],
    /// `dns_sensor`.
    pub module: &'static str,
    /// `dns_sensor.alert`.
    pub dataset: &'static str,
    /// The alert's id ([`alert_id`]): the same in every output.
    pub id: String,
    /// The alert's severity as a number ([`ecs_severity`]: 73 high, 21 low).
    pub severity: u8,
    /// The alert's score, 0 to 100.
    pub risk_score: f64,
    /// The same score: it is on ECS's normalised 0 to 100 scale already.
    pub risk_score_norm: f64,
    /// Start of the window the figures cover.
    pub start: String,
    /// End of the window.
    pub end: String,
}

/// `rule.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsRule {
    /// [`RULE_ID`].
    pub id: &'static str,
    /// [`RULE_NAME`].
    pub name: &'static str,
    /// The rule with its threshold and window.
    pub description: String,
    /// `dns-sensor`.
    pub ruleset: &'static str,
}

/// `dns.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsDns {
    /// `dns.question.*`.
    pub question: EcsQuestion,
}

/// `dns.question.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsQuestion {
    /// The registered domain, escaped.
    pub registered_domain: String,
}

/// `source.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsSource {
    /// The client that sent the most queries for the domain.
    pub ip: String,
}

/// `related.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsRelated {
    /// Every top client.
    pub ip: Vec<String>,
    /// The registered domain.
    pub hosts: Vec<String>,
}

/// `observer.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsObserver {
    /// The sensor's host name.
    pub hostname: String,
    /// `sensor`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `dns-sensor`.
    pub product: &'static str,
    /// `dns-sensor`.
    pub vendor: &'static str,
    /// This build's version.
    pub version: &'static str,
}

/// `dns_sensor.*`: the reference alert's figures and the sensor's additions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcsDetails {
    /// Queries in the window.
    pub total_requests: u64,
    /// Distinct query names in the window.
    pub unique_hostnames: u64,
    /// Whether `unique_hostnames` is an estimate.
    pub estimated: bool,
    /// The threshold it exceeded.
    pub threshold: u64,
    /// Sum of query message sizes.
    pub total_bytes_in: u64,
    /// Sum of response message sizes.
    pub total_bytes_out: u64,
    /// Both.
    pub total_bytes: u64,
    /// Most active clients.
    pub top_clients: Vec<ClientJson>,
    /// A few names, escaped.
    pub sample_names: Vec<String>,
    /// Query counts by type name.
    pub qtypes: QtypeCounts,
    /// `high` or `low`, as the other outputs write it (`event.severity` is its number).
    pub severity: &'static str,
    /// 0 to 100 (`event.risk_score` too).
    pub score: u8,
    /// The traits behind the score, tunnel-like ones first.
    pub reasons: Vec<&'static str>,
    /// The figures the score comes from.
    pub evidence: Evidence,
}

impl EcsAlert {
    /// The document for `alert`, seen by the sensor on `hostname`.
    pub fn new(alert: &Alert, hostname: &str) -> Self {
        let reference = AlertJson::from(alert);
        let domain = escape_name(&alert.domain);
        let clients: Vec<String> = reference.top_clients.iter().map(|c| c.ip.clone()).collect();
        Self {
            timestamp: reference.timestamp,
            ecs: EcsVersion {
                version: ECS_VERSION,
            },
            message: summary_line(alert),
            event: EcsEvent {
                kind: "alert",
                category: ["network", "intrusion_detection"],
                kind_of_event: ["info"],
                module: "dns_sensor",
                dataset: "dns_sensor.alert",
                id: alert_id(alert),
                severity: ecs_severity(alert.assessment.severity),
                risk_score: f64::from(alert.assessment.score),
                risk_score_norm: f64::from(alert.assessment.score),
                start: rfc3339(alert.window_start),
                end: rfc3339(alert.window_end),
            },
            rule: EcsRule {
                id: RULE_ID,
                name: RULE_NAME,
                description: format!(
                    "more than {} unique hostnames under one registered domain within {}",
                    alert.threshold,
                    duration(alert.window_end.saturating_sub(alert.window_start))
                ),
                ruleset: "dns-sensor",
            },
            dns: EcsDns {
                question: EcsQuestion {
                    registered_domain: domain.clone(),
                },
            },
            source: clients.first().map(|ip| EcsSource { ip: ip.clone() }),
            related: EcsRelated {
                ip: clients,
                hosts: vec![domain],
            },
            observer: EcsObserver {
                hostname: hostname.to_owned(),
                kind: "sensor",
                product: "dns-sensor",
                vendor: "dns-sensor",
                version: env!("CARGO_PKG_VERSION"),
            },
            dns_sensor: EcsDetails {
                total_requests: reference.total_requests,
                unique_hostnames: reference.unique_hostnames,
                estimated: alert.estimated,
                threshold: alert.threshold,
                total_bytes_in: reference.total_bytes_in,
                total_bytes_out: reference.total_bytes_out,
                total_bytes: reference.total_bytes,
                top_clients: reference.top_clients,
                sample_names: reference.sample_names,
                qtypes: reference.qtypes,
                severity: reference.severity,
                score: reference.score,
                reasons: reference.reasons,
                evidence: reference.evidence,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::test_alerts::sample_alert;

    #[test]
    fn ecs_fields_a_siem_reads() {
        let alert = sample_alert();
        let doc = serde_json::to_value(EcsAlert::new(&alert, "sensor1")).expect("serialises");
        assert_eq!(doc["@timestamp"], "2027-01-15T08:00:00.000Z");
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        assert_eq!(doc["event"]["kind"], "alert");
        assert_eq!(
            doc["event"]["category"],
            serde_json::json!(["network", "intrusion_detection"])
        );
        assert_eq!(doc["event"]["type"], serde_json::json!(["info"]));
        assert_eq!(doc["event"]["id"], alert_id(&alert));
        assert_eq!(doc["event"]["start"], "2027-01-15T04:00:00.000Z");
        assert_eq!(doc["event"]["end"], "2027-01-15T08:00:00.000Z");
        assert_eq!(doc["rule"]["name"], RULE_NAME);
        assert_eq!(
            doc["rule"]["description"],
            "more than 200 unique hostnames under one registered domain within 4h"
        );
        assert_eq!(doc["dns"]["question"]["registered_domain"], "pirate.sea");
        assert_eq!(doc["source"]["ip"], "10.0.2.30");
        assert_eq!(
            doc["related"]["ip"],
            serde_json::json!(["10.0.2.30", "2001:db8::1"])
        );
        assert_eq!(doc["observer"]["hostname"], "sensor1");
        assert_eq!(doc["observer"]["type"], "sensor");
        let details = &doc["dns_sensor"];
        assert_eq!(details["unique_hostnames"], 222);
        assert_eq!(details["total_requests"], 222);
        assert_eq!(details["total_bytes"], 52_024);
        assert_eq!(details["threshold"], 200);
        assert_eq!(details["estimated"], false);
        assert_eq!(details["sample_names"][0], "0ebb\\001.pirate.sea");
        assert_eq!(details["qtypes"]["NULL"], 221);
        assert!(doc["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("[high 84] suspected DNS tunnel: pirate.sea had 222")));
    }

    #[test]
    fn the_severity_as_ecs_numbers_and_in_the_sensors_namespace() {
        let alert = sample_alert();
        let doc = serde_json::to_value(EcsAlert::new(&alert, "sensor1")).expect("serialises");
        assert_eq!(doc["event"]["severity"], 73);
        assert_eq!(doc["event"]["risk_score"], 84.0);
        assert!(doc["event"]["risk_score"].is_f64());
        assert_eq!(doc["event"]["risk_score_norm"], 84.0);
        let details = &doc["dns_sensor"];
        assert_eq!(details["severity"], "high");
        assert_eq!(details["score"], 84);
        assert_eq!(
            details["reasons"],
            serde_json::json!(["names do not repeat", "few clients", "data query types"])
        );
        assert_eq!(details["evidence"]["names_per_query"], 1.0);
        assert_eq!(details["evidence"]["clients"], 2);
        assert_eq!(details["evidence"]["top_client_share"], 0.991);
        assert_eq!(details["evidence"]["longest_label"], 17.968);
        assert_eq!(details["evidence"]["data_qtype_share"], 0.995);
        assert_eq!(
            details["evidence"],
            serde_json::to_value(&alert.evidence).expect("serialises")
        );

        let mut low = sample_alert();
        low.evidence.clients = 64;
        low.assessment = crate::detect::Assessment::of(&low.evidence);
        let doc = serde_json::to_value(EcsAlert::new(&low, "sensor1")).expect("serialises");
        assert_eq!(doc["event"]["severity"], 21);
        assert_eq!(doc["event"]["risk_score"], 24.0);
        assert_eq!(doc["dns_sensor"]["severity"], "low");
        assert!(doc["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("[low 24] ")));
    }

    #[test]
    fn event_fields_keep_their_order() {
        let mut line = Vec::new();
        crate::alert::LineFormat::new(crate::alert::Format::Ecs, "s")
            .write_line(&sample_alert(), &mut line);
        let line = String::from_utf8(line).expect("ASCII");
        assert!(
            line.contains(
                ",\"severity\":73,\"risk_score\":84.0,\"risk_score_norm\":84.0,\"start\":"
            ),
            "{line}"
        );
    }

    #[test]
    fn an_alert_without_clients_has_no_source() {
        let mut alert = sample_alert();
        alert.top_clients.clear();
        let doc = serde_json::to_value(EcsAlert::new(&alert, "s")).expect("serialises");
        assert!(doc.get("source").is_none());
        assert_eq!(doc["related"]["ip"], serde_json::json!([]));
    }
}
