//! The rule over the whole fleet: one SQL query sums each domain's counts and takes the
//! exact union of its name hashes across every sensor and slot of the window; the
//! whitelist, the order, re-alert suppression and `max_domains` are then applied as a
//! sensor applies them.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::clickhouse::{ClickHouse, ClickHouseError};
use super::schema::{Database, TABLE};
use crate::alert::unescape_name;
use crate::detect::{judge, slot_length, Alert, Evidence, Reports, RuleSettings, WindowCounts};
use crate::domain::{Classifier, Verdict};
use crate::sketch::EvidenceSums;
use crate::Nanos;

/// A fleet alert: what a sensor watching every link would have reported, and which
/// sensors saw the domain.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetAlert {
    /// The alert, its figures over every sensor.
    pub alert: Alert,
    /// The sensors whose slots hold the domain, sorted.
    pub sensors: Vec<String>,
}

/// One domain of the window, as the query returns it.
#[derive(Deserialize)]
struct DomainRow {
    domain: String,
    total_requests: u64,
    total_bytes_in: u64,
    total_bytes_out: u64,
    exact_names: u64,
    estimated: u8,
    estimate: u64,
    sensors: Vec<String>,
    client_addresses: Vec<Vec<String>>,
    client_queries: Vec<Vec<u64>>,
    qtypes: Vec<Vec<u16>>,
    qtype_queries: Vec<Vec<u64>>,
    samples: Vec<Vec<String>>,
    total_responses: u64,
    most_clients: u64,
    shape_names: u64,
    shape_bytes: u64,
    shape_labels: u64,
    shape_longest_labels: u64,
    nxdomain: u64,
    failures: u64,
    /// The latest slot of the window in which the domain was queried.
    last_slot: Nanos,
}

impl DomainRow {
    /// The window's evidence sums, the rows' `shape_*`, `nxdomain` and `failures`
    /// columns added up (saturated at the sums' 32 bits).
    fn evidence_sums(&self) -> EvidenceSums {
        let sum = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        EvidenceSums {
            names: sum(self.shape_names),
            bytes: sum(self.shape_bytes),
            labels: sum(self.shape_labels),
            longest_labels: sum(self.shape_longest_labels),
            nxdomain: sum(self.nxdomain),
            failures: sum(self.failures),
        }
    }
}

/// The rule over every sensor's slots in a fleet database, evaluated at the times it is
/// given, with re-alert suppression as a sensor applies it.
pub struct FleetRule {
    client: ClickHouse,
    database: Database,
    rule: RuleSettings,
    classifier: Classifier,
    sample_names: usize,
    reports: Reports,
}

impl FleetRule {
    /// The rule `rule` over `database` through `client`: its window, threshold,
    /// `max_domains`, top clients and realert are the sensor's; domains `classifier`
    /// whitelists are left out; `sample_names` at most an alert. Nothing reported yet.
    pub fn new(
        client: ClickHouse,
        database: Database,
        rule: RuleSettings,
        classifier: Classifier,
        sample_names: usize,
    ) -> Self {
        Self {
            client,
            database,
            rule,
            classifier,
            sample_names,
            reports: Reports::new(),
        }
    }

    /// Evaluates the rule at `at`: every domain over the threshold in the window
    /// (the slots starting in `[at - window, at)`, the start rounded down to a slot),
    /// largest first; of them, those not reported less than `realert` ago nor since
    /// then without a query, at most `max_domains`. Those are remembered as reported.
    pub fn evaluate(&mut self, at: Nanos) -> Result<Vec<FleetAlert>, ClickHouseError> {
        let window_start = window_start(&self.rule, at);
        let query = fleet_query(&self.database, &self.rule, at);
        let rows: Vec<DomainRow> = self.client.select(&query)?;
        let mut seen: HashMap<Box<[u8]>, (Vec<String>, Nanos)> = HashMap::new();
        let mut alerts: Vec<Alert> = Vec::new();
        for row in rows {
            let Some(domain) = unescape_name(&row.domain) else {
                continue;
            };
            if matches!(self.classifier.classify(&domain), Verdict::Whitelisted) {
                continue;
            }
            let Some((alert, sensors, last_slot)) =
                alert_of(row, domain, &self.rule, self.sample_names, at, window_start)
            else {
                continue;
            };
            seen.insert(alert.domain.clone(), (sensors, last_slot));
            alerts.push(alert);
        }
        alerts.sort_unstable_by(|a, b| {
            b.unique_hostnames
                .cmp(&a.unique_hostnames)
                .then_with(|| a.domain.cmp(&b.domain))
        });
        let reported = self
            .reports
            .select(alerts, at, &self.rule, |domain, since| {
                seen.get(domain).is_some_and(|(_, last)| *last >= since)
            });
        Ok(reported
            .into_iter()
            .map(|alert| {
                let sensors = seen.remove(&alert.domain).map(|s| s.0).unwrap_or_default();
                FleetAlert { alert, sensors }
            })
            .collect())
    }

    /// Where the rule reads: `DATABASE.TABLE at URL`.
    pub fn describe(&self) -> String {
        format!("{}.{TABLE} at {}", self.database, self.client.url())
    }

    /// The rule evaluated.
    pub fn settings(&self) -> &RuleSettings {
        &self.rule
    }

    /// Creates the fleet's database and table where they are missing, and the columns
    /// a table of an earlier version lacks.
    pub fn create_schema(&self) -> Result<(), ClickHouseError> {
        super::schema::ensure_schema(&self.client, &self.database)
    }

    /// What was reported and when, to keep across a restart.
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// Goes on from `reports` (kept by an earlier run).
    pub fn restore(&mut self, reports: Reports) {
        self.reports = reports;
    }
}

/// Start of the window an evaluation at `at` covers: the sensor's, `at - window`
/// rounded down to a slot.
fn window_start(rule: &RuleSettings, at: Nanos) -> Nanos {
    let slot = slot_length(rule.window, rule.interval).max(1);
    let reach = at.saturating_sub(rule.window);
    reach - reach % slot
}

/// The fleet query of an evaluation at `at`: every domain of the window over the
/// threshold, one row each, its figures summed over sensors and slots and its names
/// the exact union of their hashes. Only numbers and the checked database name are
/// written into it.
///
/// The union is computed only for the domains whose rows hold more hashes and counts
/// than the threshold, without `FINAL`: a domain's union is never larger than that sum
/// (a row shipped twice only makes it larger), so no domain over the threshold is left
/// out, and most domains are never merged. On the 4 h window of 1 M domains from two
/// sensors (docs/fleet.md, "Volume, measured") the query took 11.0-11.6 s on 18.16
/// without it and 3.6-4.2 s with it, the two run in turn, three times each. `GLOBAL
/// IN`, so that on a `Distributed` table the domains are chosen over every shard once,
/// not on each shard over the whole table.
pub fn fleet_query(database: &Database, rule: &RuleSettings, at: Nanos) -> String {
    let window_start = window_start(rule, at);
    let threshold = rule.lowest_threshold();
    let in_window = format!("slot_start >= {window_start} AND slot_start < {at}");
    format!(
        "SELECT domain,
    sum(requests) AS total_requests,
    sum(bytes_in) AS total_bytes_in,
    sum(bytes_out) AS total_bytes_out,
    uniqExactArray(names) AS exact_names,
    max(names_estimated) AS estimated,
    sum(names_estimate) AS estimate,
    groupUniqArray(sensor) AS sensors,
    groupArray(client_addresses) AS client_addresses,
    groupArray(client_queries) AS client_queries,
    groupArray(qtypes) AS qtypes,
    groupArray(qtype_queries) AS qtype_queries,
    groupArray(samples) AS samples,
    sum(responses) AS total_responses,
    max(clients) AS most_clients,
    sum(shape_names) AS shape_names,
    sum(shape_bytes) AS shape_bytes,
    sum(shape_labels) AS shape_labels,
    sum(shape_longest_labels) AS shape_longest_labels,
    sum(nxdomain) AS nxdomain,
    sum(failures) AS failures,
    maxIf(slot_start, requests > 0) AS last_slot
FROM {database}.{TABLE} FINAL
WHERE {in_window} AND domain GLOBAL IN (
    SELECT domain FROM {database}.{TABLE}
    WHERE {in_window}
    GROUP BY domain
    HAVING sum(length(names)) + sum(names_estimate) > {threshold})
GROUP BY domain
HAVING uniqExactArray(names) + sum(names_estimate) > {threshold}"
    )
}

/// The alert of one domain's row, if it alerts (see [`judge`]), with the sensors that
/// saw it and its latest slot: clients and query types summed over the rows they came
/// in, most first (ties by address, by type), the evidence over all the rows.
fn alert_of(
    row: DomainRow,
    domain: Vec<u8>,
    rule: &RuleSettings,
    sample_names: usize,
    at: Nanos,
    window_start: Nanos,
) -> Option<(Alert, Vec<String>, Nanos)> {
    let mut clients: HashMap<IpAddr, u64> = HashMap::new();
    for (addresses, queries) in row.client_addresses.iter().zip(&row.client_queries) {
        for (address, &n) in addresses.iter().zip(queries) {
            if let Ok(address) = address.parse::<IpAddr>() {
                *clients.entry(address).or_default() += n;
            }
        }
    }
    // The rows list their busiest clients only: the union of the lists and the most
    // any one slot had are both lower bounds of the window's clients.
    let clients_seen = (clients.len() as u64).max(row.most_clients);
    let mut top_clients: Vec<(IpAddr, u64)> = clients.into_iter().collect();
    top_clients.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top_client_queries = top_clients.first().map_or(0, |&(_, n)| n);
    top_clients.truncate(rule.top_clients);
    let mut types: HashMap<u16, u64> = HashMap::new();
    for (qtypes, queries) in row.qtypes.iter().zip(&row.qtype_queries) {
        for (&qtype, &n) in qtypes.iter().zip(queries) {
            *types.entry(qtype).or_default() += n;
        }
    }
    let mut qtypes: Vec<(u16, u64)> = types.into_iter().collect();
    qtypes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut samples: Vec<Box<[u8]>> = Vec::new();
    for name in row.samples.iter().flatten() {
        if samples.len() >= sample_names {
            break;
        }
        if let Some(name) = unescape_name(name).map(Vec::into_boxed_slice) {
            if !samples.contains(&name) {
                samples.push(name);
            }
        }
    }
    let unique = row.exact_names.saturating_add(row.estimate);
    let evidence = Evidence::of_window(
        &domain,
        &WindowCounts {
            requests: row.total_requests,
            responses: row.total_responses,
            unique_names: unique,
            bytes_in: row.total_bytes_in,
            bytes_out: row.total_bytes_out,
            clients: clients_seen,
            top_client_queries,
            qtypes: &qtypes,
            sums: row.evidence_sums(),
            samples: samples.iter().map(|name| &name[..]).collect(),
        },
    );
    let (threshold, assessment) = judge(unique, &evidence, rule)?;
    let mut sensors = row.sensors;
    sensors.sort_unstable();
    Some((
        Alert {
            at,
            domain: domain.into_boxed_slice(),
            total_requests: row.total_requests,
            unique_hostnames: unique,
            estimated: row.estimated != 0,
            threshold,
            total_bytes_in: row.total_bytes_in,
            total_bytes_out: row.total_bytes_out,
            window_start,
            window_end: at,
            top_clients,
            sample_names: samples,
            qtypes,
            evidence,
            assessment,
        },
        sensors,
        row.last_slot,
    ))
}
