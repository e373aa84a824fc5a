//! `[metrics]`: the live run's Prometheus endpoint, off unless `listen` is set.
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9153"
//! ```

use std::net::SocketAddr;

use serde::Deserialize;

/// The `[metrics]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `run` serves `/metrics` (an address and a port: `"127.0.0.1:9153"`, or
    /// `"[::1]:9153"`); none, the default, serves nothing. Anything but a loopback
    /// address lets the network read the sensor's figures.
    pub listen: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    #[test]
    fn off_unless_an_address_is_given() {
        assert_eq!(Config::default().metrics.listen, None);
        let config = Config::parse("[metrics]\nlisten = \"127.0.0.1:9153\"\n", "t").expect("valid");
        assert_eq!(
            config.metrics.listen,
            Some("127.0.0.1:9153".parse().expect("addr"))
        );
        for bad in [
            "listen = \"localhost\"",
            "listen = \"127.0.0.1\"",
            "port = 9153",
        ] {
            match Config::parse(&format!("[metrics]\n{bad}\n"), "t.toml") {
                Err(ConfigError::Invalid { line: 2, .. }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
