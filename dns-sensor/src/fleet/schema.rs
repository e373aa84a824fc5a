//! The fleet's tables in ClickHouse, and the one name that enters SQL text: the
//! database's, checked to be a plain identifier.
//!
//! One table, `domain_slots`: a row per sensor, slot and registered domain
//! ([`SlotRow`](super::SlotRow)). A `ReplacingMergeTree` keyed by (slot, domain,
//! sensor) keeps one row of each key however often it was inserted (a retry, a
//! restart that ships a slot again), and queries read it with `FINAL`, which merges
//! rows of the same key not merged yet: so each slot counts once. Partitioned by month
//! of the slot, so a retention policy drops whole months
//! (`ALTER TABLE ... DROP PARTITION 202612`).
//!
//! Written for ClickHouse 18.16 (Debian 12's) and run on a current one (26.x) by the
//! tests: no query parameters (18.16 has none), no DateTime64.

use std::fmt;

use serde::Deserialize;

use super::clickhouse::{ClickHouse, ClickHouseError};

/// A database name: ASCII letters, digits and `_`, not starting with a digit, at most
/// 64 bytes. It is the only name the sensor writes into SQL text; every value travels
/// as data (an insert's body) or as a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database(String);

/// A database name that is not a plain identifier.
#[derive(Debug, thiserror::Error)]
#[error("database name {0:?} is not a plain identifier (ASCII letters, digits and _, not starting with a digit, at most 64 bytes)")]
pub struct BadDatabaseName(String);

impl Database {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<Self, BadDatabaseName> {
        let plain = !name.is_empty()
            && name.len() <= 64
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if plain {
            Ok(Self(name.to_string()))
        } else {
            Err(BadDatabaseName(name.escape_debug().to_string()))
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The table's name within the database.
pub const TABLE: &str = "domain_slots";

/// The statements that create the schema, each safe to run again.
pub fn create_statements(database: &Database) -> Vec<String> {
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {database}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{TABLE} (
    sensor String,
    slot_start UInt64,
    slot_end UInt64,
    domain String,
    requests UInt64,
    responses UInt64,
    bytes_in UInt64,
    bytes_out UInt64,
    names Array(UInt64),
    names_estimated UInt8,
    names_estimate UInt64,
    client_addresses Array(String),
    client_queries Array(UInt64),
    qtypes Array(UInt16),
    qtype_queries Array(UInt64),
    samples Array(String),
    clients UInt64,
    shape_names UInt32,
    shape_bytes UInt32,
    shape_labels UInt32,
    shape_longest_labels UInt32,
    nxdomain UInt32,
    failures UInt32,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(slot_start, 1000000000)))
ORDER BY (slot_start, domain, sensor)"
        ),
    ]
}

/// Makes the schema ([`create_statements`]), and adds to a table made by an earlier
/// version the columns it lacks, its old rows then reading 0 there. The columns are
/// looked up first: ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`.
pub fn ensure_schema(client: &ClickHouse, database: &Database) -> Result<(), ClickHouseError> {
    for statement in create_statements(database) {
        client.execute(&statement)?;
    }
    #[derive(Deserialize)]
    struct Column {
        name: String,
    }
    // The database's name is a plain identifier (Database::new), safe in a literal.
    let present: Vec<Column> = client.select(&format!(
        "SELECT name FROM system.columns WHERE database = '{database}' AND table = '{TABLE}'"
    ))?;
    let missing: Vec<String> = EVIDENCE_COLUMNS
        .iter()
        .filter(|(name, _)| !present.iter().any(|column| column.name == *name))
        .map(|(name, kind)| format!("ADD COLUMN {name} {kind}"))
        .collect();
    if !missing.is_empty() {
        log::info!(
            "fleet: {database}.{TABLE} gains the evidence's {} columns",
            missing.len()
        );
        client.execute(&format!(
            "ALTER TABLE {database}.{TABLE} {}",
            missing.join(", ")
        ))?;
    }
    Ok(())
}

/// The columns the evidence added (issue 13), in order.
const EVIDENCE_COLUMNS: [(&str, &str); 7] = [
    ("clients", "UInt64"),
    ("shape_names", "UInt32"),
    ("shape_bytes", "UInt32"),
    ("shape_labels", "UInt32"),
    ("shape_longest_labels", "UInt32"),
    ("nxdomain", "UInt32"),
    ("failures", "UInt32"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_database_names() {
        for good in ["dns_sensor", "Fleet2", "_x"] {
            assert_eq!(Database::new(good).unwrap().to_string(), good);
        }
        for bad in [
            "",
            "2fleet",
            "a.b",
            "a b",
            "x;DROP TABLE t",
            "a`b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(Database::new(bad).is_err(), "{bad:?}");
        }
    }
}
