//! `[live]`: how `run` captures. The flags of `dns-sensor run` set the same things and
//! win over the file; a key left out keeps the default.
//!
//! ```toml
//! [live]
//! mode = "mirror"          # or "inline"
//! xdp_mode = "auto"        # or "native", "generic"
//! zero_copy = "auto"       # or "on", "off"
//! queues = 4               # left out: every receive queue
//! rx_ring = 8192
//! fill_ring = 16384
//! umem_frames = 32768
//! frame_size = 2048
//! stats_every = "1m"
//! pin = true
//! wait_for_interface = false
//! ```
//!
//! These take a restart: a reload (SIGHUP) keeps the capture it has.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::values::positive_duration;

/// What happens to frames that are not DNS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LiveMode {
    /// A mirror port: drop everything that is not DNS.
    #[default]
    Mirror,
    /// An interface that also carries the host's traffic: pass what is not DNS to the
    /// host's stack (DNS on it then goes to the sensor only).
    Inline,
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, generic where the driver has none.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

/// Whether the AF_XDP sockets use zero-copy.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ZeroCopyMode {
    /// Where the driver supports it.
    #[default]
    Auto,
    /// Required: fail where the driver does not support it.
    On,
    /// Never.
    Off,
}

/// The `[live]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Mirror port or inline.
    pub mode: LiveMode,
    /// How the XDP program is attached.
    pub xdp_mode: XdpMode,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopyMode,
    /// Receive queues to open, from queue 0 (none: every queue of the interface).
    #[serde(deserialize_with = "queue_count")]
    pub queues: Option<u32>,
    /// Entries of each queue's RX ring (a power of two).
    #[serde(deserialize_with = "ring_size")]
    pub rx_ring: u32,
    /// Entries of each queue's fill ring (a power of two).
    #[serde(deserialize_with = "ring_size")]
    pub fill_ring: u32,
    /// Frames of each queue's UMEM, the packet memory (a power of two, at least the
    /// fill ring).
    #[serde(deserialize_with = "ring_size")]
    pub umem_frames: u32,
    /// Bytes of each UMEM frame: 2048 or 4096.
    #[serde(deserialize_with = "frame_size")]
    pub frame_size: u32,
    /// How often the stats line is logged.
    #[serde(deserialize_with = "positive_duration")]
    pub stats_every: Duration,
    /// Pin queue `n`'s worker to core `n % cores`.
    pub pin: bool,
    /// Wait for a missing or down interface rather than exit 2.
    pub wait_for_interface: bool,
}

impl Default for LiveConfig {
    /// Every queue in mirror mode, native XDP where the driver has it, zero-copy where
    /// it supports it, the ring sizes measured in docs/live-capture.md, a stats line a
    /// minute, pinned workers, no wait.
    fn default() -> Self {
        Self {
            mode: LiveMode::Mirror,
            xdp_mode: XdpMode::Auto,
            zero_copy: ZeroCopyMode::Auto,
            queues: None,
            rx_ring: 8192,
            fill_ring: 16384,
            umem_frames: 32768,
            frame_size: 2048,
            stats_every: Duration::from_secs(60),
            pin: true,
            wait_for_interface: false,
        }
    }
}

fn queue_count<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(de)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(Some(n)),
    }
}

/// Largest ring: 2^20 entries of 2 KiB frames is 2 GiB of locked memory a queue.
const MAX_RING: u32 = 1 << 20;

fn ring_size<'de, D: Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    match u32::deserialize(de)? {
        n if !n.is_power_of_two() => Err(serde::de::Error::custom(format!(
            "{n} is not a power of two (e.g. 4096, 8192)"
        ))),
        n if !(64..=MAX_RING).contains(&n) => Err(serde::de::Error::custom(format!(
            "must be between 64 and {MAX_RING}"
        ))),
        n => Ok(n),
    }
}

fn frame_size<'de, D: Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    match u32::deserialize(de)? {
        n @ (2048 | 4096) => Ok(n),
        _ => Err(serde::de::Error::custom("must be 2048 or 4096")),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    use super::*;

    #[test]
    fn every_key_is_read() {
        let text = "[live]\nmode = \"inline\"\nxdp_mode = \"generic\"\nzero_copy = \"off\"\n\
                    queues = 2\nrx_ring = 4096\nfill_ring = 4096\numem_frames = 8192\n\
                    frame_size = 4096\nstats_every = \"10s\"\npin = false\n\
                    wait_for_interface = true\n";
        let live = Config::parse(text, "t").expect("valid").live;
        let expected = LiveConfig {
            mode: LiveMode::Inline,
            xdp_mode: XdpMode::Generic,
            zero_copy: ZeroCopyMode::Off,
            queues: Some(2),
            rx_ring: 4096,
            fill_ring: 4096,
            umem_frames: 8192,
            frame_size: 4096,
            stats_every: Duration::from_secs(10),
            pin: false,
            wait_for_interface: true,
        };
        assert_eq!(live, expected);
        assert_eq!(
            Config::parse("", "t").expect("valid").live,
            LiveConfig::default()
        );
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, line, said) in [
            ("[live]\nrx_ring = 5000\n", 2, "not a power of two"),
            ("[live]\n\nfill_ring = 32\n", 3, "between 64"),
            ("[live]\nframe_size = 1500\n", 2, "2048 or 4096"),
            ("[live]\nqueues = 0\n", 2, "at least 1"),
            ("[live]\nmode = \"tap\"\n", 2, "mirror"),
            ("[live]\nstats_every = \"0s\"\n", 2, "longer than zero"),
            ("[live]\nring = 4096\n", 2, "ring"),
        ] {
            match Config::parse(text, "t.toml") {
                Err(ConfigError::Invalid {
                    line: got, message, ..
                }) => {
                    assert_eq!(got, line, "{text}: {message}");
                    assert!(message.contains(said), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[cfg(feature = "live")]
    #[test]
    fn the_defaults_are_the_sockets_measured_sizes() {
        let live = LiveConfig::default();
        let sockets = crate::capture::afxdp::AfXdpSettings::default();
        assert_eq!(live.rx_ring, sockets.rx_ring);
        assert_eq!(live.fill_ring, sockets.fill_ring);
        assert_eq!(live.umem_frames, sockets.frames);
        assert_eq!(live.frame_size, sockets.frame_size);
    }
}
