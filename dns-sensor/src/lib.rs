//! dns-sensor: detects DNS tunnels by counting unique hostnames per registered domain
//! over a sliding window of traffic.
//!
//! The modules follow the data flow, each owning one step and knowing nothing of the
//! steps after it:
//!
//! ```text
//! capture → decode → domain → sketch → detect → alert
//!                                   ↘ fleet (closed slots to ClickHouse; the rule there)
//! ```
//!
//! `config` reads the settings file and `pipeline` wires the steps into workers and a
//! coordinator. `synth` (feature `synth`, for tests, xtask's demos and the benchmarks)
//! builds traffic with known answers; it is not part of the data flow and does not
//! ship.

#![warn(missing_docs)]

pub mod alert;
mod bytes;
pub mod capture;
pub mod clock;
pub mod config;
pub mod decode;
pub mod detect;
pub mod domain;
pub mod files;
pub mod fleet;
pub mod pipeline;
pub mod sketch;
#[cfg(any(test, feature = "synth"))]
pub mod synth;

/// Nanoseconds since the Unix epoch: the one time unit used between modules.
///
/// In replay it comes from the capture's timestamps, live from the arrival clock.
pub type Nanos = u64;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: Nanos = 1_000_000_000;
