//! A closed slot as the rows the fleet's table takes: one per registered domain.

use serde::{Deserialize, Serialize};

use super::FleetSettings;
use crate::alert::escape_name;
use crate::sketch::Shard;
use crate::Nanos;

/// One registered domain over one slot of one sensor, as shipped (JSONEachRow, the
/// columns of [`schema::TABLE`](super::schema::TABLE)).
///
/// Names never travel as text but the few samples, escaped as every output escapes
/// them ([`escape_name`]): the count is carried by `names`, their hashes. The domain is
/// escaped the same way, so the table holds printable ASCII only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRow {
    /// The sensor that saw it.
    pub sensor: String,
    /// Start of the slot, nanoseconds since the Unix epoch (capture time).
    pub slot_start: Nanos,
    /// End of the slot.
    pub slot_end: Nanos,
    /// Registered domain, escaped.
    pub domain: String,
    /// Queries.
    pub requests: u64,
    /// Responses.
    pub responses: u64,
    /// Sum of query message sizes.
    pub bytes_in: u64,
    /// Sum of response message sizes.
    pub bytes_out: u64,
    /// The distinct names' hashes, sorted; empty when `names_estimated`.
    pub names: Vec<u64>,
    /// 1 when the names travel as a count, not as hashes: the slot held more distinct
    /// names than it counts exactly (`names_estimate` is then the sensor's estimate),
    /// or fewer than `min_names` (the exact count). `names` is then empty.
    pub names_estimated: u8,
    /// The count of distinct names when `names_estimated`, else 0.
    pub names_estimate: u64,
    /// The most active clients, most first, beside their query counts.
    pub client_addresses: Vec<String>,
    /// Queries of each client in `client_addresses`.
    pub client_queries: Vec<u64>,
    /// Query types, most frequent first, beside their counts.
    pub qtypes: Vec<u16>,
    /// Queries of each type in `qtypes`.
    pub qtype_queries: Vec<u64>,
    /// A few names seen, escaped.
    pub samples: Vec<String>,
    /// Distinct clients (exact up to the sensor's `max_clients`, that bound past it).
    /// This and the evidence sums below are 0 in the rows of a sensor that had none.
    #[serde(default)]
    pub clients: u64,
    /// Distinct names measured for the evidence ([`EvidenceSums::names`](crate::sketch::EvidenceSums::names)).
    #[serde(default)]
    pub shape_names: u32,
    /// Bytes of their variable parts.
    #[serde(default)]
    pub shape_bytes: u32,
    /// Labels of their variable parts.
    #[serde(default)]
    pub shape_labels: u32,
    /// Sum of each variable part's longest label.
    #[serde(default)]
    pub shape_longest_labels: u32,
    /// NXDOMAIN responses.
    #[serde(default)]
    pub nxdomain: u32,
    /// Responses with another error RCODE.
    #[serde(default)]
    pub failures: u32,
    /// When the row was made (wall clock, nanoseconds): of rows shipped twice for the
    /// same sensor, slot and domain, the table keeps the newest.
    pub version: u64,
}

/// The rows of `shard`, a closed slot of `slot_length`, as `sensor` ships them: every
/// domain of the slot, those seen only in responses too (a response in the slot after
/// its query's: its bytes count in the window, as on the sensor), and no whitelisted
/// one (they never reach a shard). At most `settings.top_clients` clients a row; a
/// domain with fewer than `settings.min_names` names has its count, not their hashes.
pub fn slot_rows(
    shard: &Shard,
    slot_length: Nanos,
    settings: &FleetSettings,
    version: u64,
) -> Vec<SlotRow> {
    let slot_start = shard.start();
    let mut rows: Vec<SlotRow> = shard
        .domains()
        .map(|(domain, counts)| {
            let unique = counts.unique_names();
            let (names, names_estimated, names_estimate) = match counts.name_hashes() {
                Some(_) if unique > 0 && unique < settings.min_names => (Vec::new(), 1, unique),
                Some(mut hashes) => {
                    hashes.sort_unstable();
                    (hashes, 0, 0)
                }
                None => (Vec::new(), 1, unique),
            };
            let (client_addresses, client_queries) = counts
                .top_clients(settings.top_clients)
                .into_iter()
                .map(|(address, queries)| (address.to_string(), queries))
                .unzip();
            let (qtypes, qtype_queries) = counts.qtypes().into_iter().unzip();
            SlotRow {
                sensor: settings.sensor.clone(),
                slot_start,
                slot_end: slot_start.saturating_add(slot_length),
                domain: escape_name(domain),
                requests: counts.requests(),
                responses: counts.responses(),
                bytes_in: counts.bytes_in(),
                bytes_out: counts.bytes_out(),
                names,
                names_estimated,
                names_estimate,
                client_addresses,
                client_queries,
                qtypes,
                qtype_queries,
                samples: counts.sample_names().map(escape_name).collect(),
                clients: counts.client_count() as u64,
                shape_names: counts.evidence().names,
                shape_bytes: counts.evidence().bytes,
                shape_labels: counts.evidence().labels,
                shape_longest_labels: counts.evidence().longest_labels,
                nxdomain: counts.evidence().nxdomain,
                failures: counts.evidence().failures,
                version,
            }
        })
        .collect();
    // The table's order: inserts then arrive sorted, and tests compare rows as lists.
    rows.sort_unstable_by(|a, b| a.domain.cmp(&b.domain));
    rows
}

/// `rows` as a JSONEachRow body: one JSON object a line.
pub(super) fn json_lines(rows: &[SlotRow]) -> String {
    let mut body = String::new();
    for row in rows {
        // A row of strings and integers always serialises.
        body.push_str(&serde_json::to_string(row).unwrap_or_default());
        body.push('\n');
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Database;
    use crate::sketch::SketchSettings;
    use std::net::IpAddr;

    fn settings_for(sensor: &str, top_clients: usize) -> FleetSettings {
        FleetSettings {
            url: "http://127.0.0.1:8123".into(),
            database: Database::new("dns_sensor").expect("a name"),
            sensor: sensor.into(),
            user: None,
            password: None,
            top_clients,
            min_names: 1,
        }
    }

    #[test]
    fn a_row_a_domain_with_its_hashes_clients_and_escaped_names() {
        let settings = SketchSettings::default();
        let mut shard = Shard::new(3_600_000_000_000, &settings);
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        for (domain, name, from) in [
            (&b"pirate.sea"[..], &b"a.pirate.sea"[..], client),
            (b"pirate.sea", b"b.pirate.sea", client),
            (b"pirate.sea", b"a.pirate.sea", other),
            (b"evil.sea", b"x\n\x1b.evil.sea", client),
        ] {
            shard.record_query(domain, name, from, 16, 40);
        }
        shard.record_response(b"pirate.sea", 90, 0);
        shard.record_response(b"answer.sea", 90, 0);
        let rows = slot_rows(&shard, 60_000_000_000, &settings_for("dc1", 5), 7);
        assert_eq!(rows.len(), 3, "{rows:?}");
        // A response whose query fell in the slot before: its bytes, no names.
        let answer = &rows[0];
        assert_eq!(answer.domain, "answer.sea");
        assert_eq!(
            (answer.requests, answer.responses, answer.bytes_out),
            (0, 1, 90)
        );
        assert!(answer.names.is_empty() && answer.client_addresses.is_empty());
        let evil = &rows[1];
        assert_eq!(evil.domain, "evil.sea");
        assert_eq!(evil.samples, vec!["x\\010\\027.evil.sea".to_string()]);
        let pirate = &rows[2];
        assert_eq!(pirate.domain, "pirate.sea");
        assert_eq!((pirate.requests, pirate.responses), (3, 1));
        assert_eq!((pirate.bytes_in, pirate.bytes_out), (120, 90));
        assert_eq!(pirate.names.len(), 2);
        assert!(pirate.names.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(pirate.names_estimated, 0);
        assert_eq!(pirate.client_addresses, vec!["192.0.2.7", "2001:db8::1"]);
        assert_eq!(pirate.client_queries, vec![2, 1]);
        assert_eq!(
            (pirate.qtypes.clone(), pirate.qtype_queries.clone()),
            (vec![16], vec![3])
        );
        assert_eq!(pirate.slot_end - pirate.slot_start, 60_000_000_000);
        assert_eq!(pirate.sensor, "dc1");
        let body = json_lines(&rows);
        assert_eq!(body.lines().count(), 3);
        assert!(body.is_ascii() && !body.contains('\u{1b}'), "{body}");
    }

    #[test]
    fn past_the_exact_limit_a_row_carries_the_estimate_and_no_hashes() {
        let settings = SketchSettings {
            exact_limit: 10,
            ..SketchSettings::default()
        };
        let mut shard = Shard::new(0, &settings);
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..50 {
            let name = format!("n{i}.pirate.sea");
            shard.record_query(b"pirate.sea", name.as_bytes(), client, 1, 40);
        }
        let rows = slot_rows(&shard, 1, &settings_for("dc1", 5), 7);
        assert_eq!(rows[0].names_estimated, 1);
        assert!(rows[0].names.is_empty());
        assert!(
            (40..=60).contains(&rows[0].names_estimate),
            "{}",
            rows[0].names_estimate
        );
    }

    #[test]
    fn below_min_names_a_row_carries_the_count_and_no_hashes() {
        let mut shard = Shard::new(0, &SketchSettings::default());
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        for (domain, name) in [
            (&b"small.sea"[..], &b"www.small.sea"[..]),
            (b"small.sea", b"mail.small.sea"),
            (b"big.sea", b"a.big.sea"),
            (b"big.sea", b"b.big.sea"),
            (b"big.sea", b"c.big.sea"),
        ] {
            shard.record_query(domain, name, client, 1, 40);
        }
        shard.record_response(b"answer.sea", 90, 0);
        let settings = FleetSettings {
            min_names: 3,
            ..settings_for("dc1", 5)
        };
        let rows = slot_rows(&shard, 1, &settings, 7);
        let figures: Vec<(&str, usize, u8, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r.domain.as_str(),
                    r.names.len(),
                    r.names_estimated,
                    r.names_estimate,
                )
            })
            .collect();
        // A row without names (a response only) is not a count.
        assert_eq!(
            figures,
            [
                ("answer.sea", 0, 0, 0),
                ("big.sea", 3, 0, 0),
                ("small.sea", 0, 1, 2)
            ]
        );
    }
}
