//! `[fleet]`: where the sensor ships its closed slots, off unless `clickhouse` is set.
//!
//! ```toml
//! [fleet]
//! clickhouse = "http://127.0.0.1:8123"   # ClickHouse's HTTP interface
//! database = "dns_sensor"
//! sensor = "dc1-mirror0"                  # defaults to the host name
//! # user = "dns_sensor"
//! # password_file = "/etc/dns-sensor/clickhouse-password"
//! # min_names = 1                      # fewer names in a slot: their count only
//! # delay = "1m"                         # `fleet run`: wait for the slots this long
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::values::{any_duration, positive_u64};
use crate::alert::text::host_name;
use crate::files::{read_text_limited, shown};
use crate::fleet::{Database, FleetSettings, SHIPPED_CLIENTS};

/// A password file is one line; anything longer is not one.
const MAX_PASSWORD_BYTES: u64 = 64 << 10;

/// The `[fleet]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// ClickHouse's HTTP interface: `http://host:8123` or `https://host:8443`.
    #[serde(deserialize_with = "http_url")]
    pub clickhouse: String,
    /// The database of the fleet's tables, created on first use.
    #[serde(default = "default_database", deserialize_with = "database_name")]
    pub database: String,
    /// This sensor's name in the rows it ships (default: the host name).
    pub sensor: Option<String>,
    /// The ClickHouse user (default: ClickHouse's `default`).
    pub user: Option<String>,
    /// A file holding the user's password (its first line).
    pub password_file: Option<PathBuf>,
    /// A domain with fewer names than this in a slot ships their count rather than
    /// their hashes (less volume; the fleet then sums such counts, an upper bound).
    #[serde(default = "default_min_names", deserialize_with = "positive_u64")]
    pub min_names: u64,
    /// How long `fleet run` waits after each interval boundary before it evaluates, so
    /// that every sensor has shipped the slot that just closed.
    #[serde(default = "default_delay", deserialize_with = "any_duration")]
    pub delay: Duration,
}

/// Every name as a hash: the fleet's union is exact.
fn default_min_names() -> u64 {
    1
}

/// Sensors ship a slot within seconds of its end (the workers close it at their next
/// frame or tick, the shipper sends it at once); a minute leaves room for a slow insert.
fn default_delay() -> Duration {
    Duration::from_secs(60)
}

fn default_database() -> String {
    "dns_sensor".to_string()
}

fn http_url<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let url = String::deserialize(de)?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && url.bytes().all(|b| b.is_ascii_graphic()) => Ok(url),
        _ => Err(serde::de::Error::custom(
            "clickhouse: expected http://host:port or https://host:port",
        )),
    }
}

fn database_name<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let name = String::deserialize(de)?;
    Database::new(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

/// `[fleet]` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetConfigError {
    /// The password file could not be read.
    #[error("fleet: password_file {path}: {source}")]
    Password {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database name is not a plain identifier (a file's is checked when read).
    #[error("fleet: {0}")]
    Database(#[from] crate::fleet::schema::BadDatabaseName),
}

impl FleetConfig {
    /// The settings the shipper and `fleet check` run with, reading the password file:
    /// `top_clients` (the alerts' own) and at least [`SHIPPED_CLIENTS`] clients a row.
    pub fn settings(&self, top_clients: usize) -> Result<FleetSettings, FleetConfigError> {
        let password = match &self.password_file {
            Some(path) => Some(read_password(path)?),
            None => None,
        };
        let sensor = match &self.sensor {
            Some(sensor) => sensor.clone(),
            // The name every output gives the sensor (ECS observer.hostname, mail).
            None => host_name(),
        };
        Ok(FleetSettings {
            url: self.clickhouse.clone(),
            database: Database::new(&self.database)?,
            sensor,
            user: self.user.clone(),
            password,
            top_clients: top_clients.max(SHIPPED_CLIENTS),
            min_names: self.min_names,
        })
    }
}

fn read_password(path: &Path) -> Result<String, FleetConfigError> {
    let text = read_text_limited(path, MAX_PASSWORD_BYTES).map_err(|source| {
        FleetConfigError::Password {
            path: shown(path),
            source,
        }
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    #[test]
    fn off_unless_set_and_every_key_read() {
        assert_eq!(Config::default().fleet, None);
        let text = "[fleet]\nclickhouse = \"http://127.0.0.1:8123\"\nsensor = \"dc1\"\n";
        let config = Config::parse(text, "t").expect("valid");
        let fleet = config.fleet.expect("set");
        assert_eq!(fleet.database, "dns_sensor");
        assert_eq!(fleet.delay, std::time::Duration::from_secs(60));
        assert_eq!(fleet.min_names, 1);
        let settings = fleet.settings(5).expect("settings");
        assert_eq!(settings.sensor, "dc1");
        assert_eq!(settings.url, "http://127.0.0.1:8123");
        assert_eq!(settings.database.to_string(), "dns_sensor");
        let unnamed = Config::parse("[fleet]\nclickhouse = \"https://ch:8443\"\n", "t").unwrap();
        let sensor = unnamed.fleet.unwrap().settings(5).unwrap().sensor;
        assert!(!sensor.is_empty());
    }

    #[test]
    fn a_bad_value_names_its_line() {
        for bad in [
            "clickhouse = \"127.0.0.1:8123\"",
            "clickhouse = \"http://\"",
            "clickhouse = \"http://a b\"",
            "clickhouse = \"http://ch:8123\"\ndatabase = \"x; DROP TABLE y\"",
            "clickhouse = \"http://ch:8123\"\ntable = \"t\"",
            "clickhouse = \"http://ch:8123\"\ndelay = \"soon\"",
            "clickhouse = \"http://ch:8123\"\nmin_names = 0",
        ] {
            let line = bad.lines().count() + 1;
            match Config::parse(&format!("[fleet]\n{bad}\n"), "t.toml") {
                Err(ConfigError::Invalid { line: l, .. }) if l == line => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
