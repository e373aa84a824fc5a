//! Fleet: every sensor's closed slots in ClickHouse, and the rule evaluated there over
//! the whole fleet. Takes the slots the coordinator has closed ([`Shard`]s) and gives
//! back [`Alert`]s; the sensor's own detection neither waits for it nor depends on it.
//!
//! A tunnel whose queries leave by two links shows each link's sensor half its names.
//! Each sensor ships, per closed slot and registered domain, its counts and its distinct
//! names as the 64-bit hashes it counts them with (unkeyed XXH3 of the canonical name,
//! so the same name gives the same hash on every sensor); `fleet check` takes the exact
//! union of those hashes across sensors and slots in SQL, and applies the same threshold,
//! whitelist and `max_domains` as a sensor. The schema is in [`schema`] and
//! docs/fleet.md.
//!
//! [`Shard`]: crate::sketch::Shard
//! [`Alert`]: crate::detect::Alert

mod check;
mod clickhouse;
mod reports_file;
mod rows;
pub mod schema;
mod shipper;
mod spool;

pub use check::{fleet_query, FleetAlert, FleetRule};
pub use clickhouse::{ClickHouse, ClickHouseError};
pub use reports_file::{load_reports, save_reports, ReportsFileError, REPORTS_FILE};
pub use rows::{slot_rows, SlotRow};
pub use schema::Database;
pub use shipper::{ShipperStats, SlotShipper};
pub use spool::SPOOL_DIR;

/// Clients shipped per domain and slot at least: more than an alert lists, so that a
/// client that is among the first on the fleet but not on any one sensor still shows.
pub const SHIPPED_CLIENTS: usize = 20;

/// Where and as whom a sensor ships its slots: the `[fleet]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    /// ClickHouse's HTTP interface, `http://host:8123` or `https://...`.
    pub url: String,
    /// The database holding the fleet's tables.
    pub database: Database,
    /// This sensor's name in the rows it ships.
    pub sensor: String,
    /// ClickHouse user (default: ClickHouse's `default`).
    pub user: Option<String>,
    /// Its password, read from a file.
    pub password: Option<String>,
    /// Client addresses shipped per domain and slot.
    pub top_clients: usize,
    /// A domain with fewer names in a slot ships their count, not their hashes (1:
    /// always the hashes, so the fleet's union is exact).
    pub min_names: u64,
}
