//! Config: the settings file (TOML) and its defaults, validated with errors that name
//! the file, the key and the line. Produces the [`Settings`] the pipeline runs with.
//!
//! Every key is optional; a missing key keeps the default, and the defaults reproduce
//! the reference rule (Packetbeat + Watcher): more than 200 unique hostnames per
//! registered domain over 4 hours, evaluated every 15 minutes.

use crate::files::shown;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::decode::DecodeSettings;
use crate::detect::RuleSettings;
use crate::domain::{read_whitelist_file, DomainError, DomainSettings};
use crate::pipeline::{Settings, ShardBudget};
use crate::sketch::SketchSettings;

mod checks;
mod fleet;
mod live;
mod metrics;
mod output;
mod values;

pub use checks::{SettingProblem, LOW_SLOT_BYTES, MAX_WINDOW, MIN_SLOT, MIN_SLOT_BYTES};
pub use fleet::{FleetConfig, FleetConfigError};
pub use live::{LiveConfig, LiveMode, XdpMode, ZeroCopyMode};
pub use metrics::MetricsConfig;
pub use output::{
    Command, EmailConfig, FileConfig, JournaldConfig, OutputConfig, OutputError, StdoutConfig,
    DEFAULT_SUBJECT,
};

use values::{
    any_duration, byte_size, nanos, port_list, positive_duration, positive_u64, positive_usize,
    sample_count,
};
pub use values::{parse_byte_size, parse_duration, MAX_SAMPLE_NAMES};

/// The whitelist used when the file sets none: the reference watch's list plus
/// `ip6.arpa`, the IPv6 twin of its `in-addr.arpa`.
pub const DEFAULT_WHITELIST: &[&str] = &[
    "akadns.net",
    "amazonaws.com",
    "apple.com",
    "apple-dns.net",
    "cloudfront.net",
    "icloud.com",
    "in-addr.arpa",
    "google.com",
    "yahoo.com",
    "ip6.arpa",
];

/// A settings file or value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong kind.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line of the offending key or value (0 when unknown).
        line: usize,
        /// What is wrong, as the TOML reader put it.
        message: String,
    },
    /// A whitelist entry or file is bad.
    #[error(transparent)]
    Whitelist(#[from] DomainError),
    /// An output's setting cannot be used (its credentials file, a missing path).
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// The settings file as written. Field names are the file's keys.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Alert when a domain's unique hostnames in the window exceed this.
    #[serde(deserialize_with = "positive_u64")]
    pub threshold: u64,
    /// A domain under `threshold` alerts too when its unique hostnames exceed this and
    /// its evidence says tunnel (severity high); 0 turns this off.
    pub tunnel_threshold: u64,
    /// How much traffic each evaluation looks back over (e.g. `"4h"`).
    #[serde(deserialize_with = "positive_duration")]
    pub window: Duration,
    /// How often the rule is evaluated (at every multiple since the Unix epoch).
    #[serde(deserialize_with = "positive_duration")]
    pub interval: Duration,
    /// A domain already alerted is reported again only after this long (`"0s"`: every
    /// evaluation, as the reference does).
    #[serde(deserialize_with = "any_duration")]
    pub realert: Duration,
    /// Alerts per evaluation at most, largest first.
    #[serde(deserialize_with = "positive_usize")]
    pub max_domains: usize,
    /// Client addresses listed in each alert.
    pub top_clients: usize,
    /// Sample names listed in each alert (at most [`MAX_SAMPLE_NAMES`]).
    #[serde(deserialize_with = "sample_count")]
    pub sample_names: usize,
    /// Whether the Public Suffix List's private section (e.g. `blogspot.com`) counts.
    pub include_private_suffixes: bool,
    /// UDP and TCP ports that carry DNS.
    #[serde(deserialize_with = "port_list")]
    pub ports: Vec<u16>,
    /// Whitelisted domains; replaces the default list when present.
    pub whitelist: Vec<String>,
    /// Files of further whitelisted domains, one per line, `#` comments.
    pub whitelist_files: Vec<PathBuf>,
    /// Bytes the window's per-domain tables may take in all (estimated from their
    /// sizes); past it the least active small domains are shed. Written with a binary
    /// unit: `"1GiB"`, `"512MiB"`.
    #[serde(deserialize_with = "byte_size")]
    pub memory_cap: u64,
    /// Where alerts go: `[output.stdout]`, `[output.journald]`, `[output.email]`,
    /// `[output.file]`.
    pub output: OutputConfig,
    /// Where `run` keeps the window across restarts (a directory it may write: the
    /// package's unit gives it `/var/lib/dns-sensor`); none: it is not kept.
    pub state_directory: Option<PathBuf>,
    /// How `run` captures: `[live]`.
    pub live: LiveConfig,
    /// The live run's Prometheus endpoint: `[metrics]`.
    pub metrics: MetricsConfig,
    /// Where closed slots are shipped for the fleet's rule: `[fleet]`; none, the
    /// default, ships nothing.
    pub fleet: Option<FleetConfig>,
}

/// The default [`Config::memory_cap`]: 1 GiB.
pub const DEFAULT_MEMORY_CAP: u64 = 1 << 30;

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: 200,
            tunnel_threshold: 50,
            window: Duration::from_secs(4 * 3600),
            interval: Duration::from_secs(15 * 60),
            realert: Duration::from_secs(3600),
            max_domains: 1000,
            top_clients: 5,
            sample_names: 5,
            include_private_suffixes: true,
            ports: vec![53],
            whitelist: DEFAULT_WHITELIST.iter().map(|d| d.to_string()).collect(),
            whitelist_files: Vec::new(),
            memory_cap: DEFAULT_MEMORY_CAP,
            output: OutputConfig::default(),
            state_directory: None,
            live: LiveConfig::default(),
            metrics: MetricsConfig::default(),
            fleet: None,
        }
    }
}

impl Config {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::files::read_text_limited(path, crate::files::MAX_SETTINGS_BYTES)
            .map_err(|source| ConfigError::Io {
                path: shown(path),
                source,
            })?;
        Self::parse(&text, &shown(path))
    }

    /// Parses settings from `text`; `origin` names it in errors. Settings that cannot
    /// work together ([`check`](Self::check)) are refused, naming the key's line.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let invalid = |line, message| ConfigError::Invalid {
            path: origin.to_string(),
            line,
            message,
        };
        let config: Config = toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e.span().map_or(0, |span| line_of(text, span.start));
            invalid(line, e.message().to_string())
        })?;
        config
            .check()
            .map_err(|problem| invalid(key_line(text, problem.key), problem.to_string()))?;
        Ok(config)
    }

    /// How each worker decodes.
    fn decode(&self) -> DecodeSettings {
        DecodeSettings {
            ports: self.ports.clone(),
            ..DecodeSettings::default()
        }
    }

    /// How `memory_cap` is shared for `workers` workers: each worker's own tables
    /// (reassembly, verdict cache) first, then the window's slots.
    fn budget(&self, rule: &RuleSettings, workers: usize) -> ShardBudget {
        let memory_cap = usize::try_from(self.memory_cap).unwrap_or(usize::MAX);
        let worker_tables = self.decode().max_bytes() + crate::domain::VERDICT_CACHE_BYTES;
        ShardBudget::new(memory_cap, rule, workers, worker_tables)
    }

    /// The rule's settings, in nanoseconds.
    fn rule(&self) -> RuleSettings {
        RuleSettings {
            threshold: self.threshold,
            window: nanos(self.window),
            interval: nanos(self.interval),
            max_domains: self.max_domains,
            realert: nanos(self.realert),
            top_clients: self.top_clients,
            tunnel_threshold: self.tunnel_threshold,
        }
    }

    /// The outputs `command` writes alerts to, reading the files they name.
    pub fn outputs(&self, command: Command) -> Result<crate::alert::OutputSettings, ConfigError> {
        Ok(self.output.settings(command)?)
    }

    /// The settings every step runs with, for one worker, reading the whitelist files.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.settings_for_workers(1)
    }

    /// The settings for `workers` workers: the memory cap is shared between the
    /// window's slots and every worker's open shards
    /// ([`ShardBudget`]).
    pub fn settings_for_workers(&self, workers: usize) -> Result<Settings, ConfigError> {
        let mut whitelist = self.whitelist.clone();
        for file in &self.whitelist_files {
            whitelist.extend(read_whitelist_file(file)?);
        }
        let rule = self.rule();
        let budget = self.budget(&rule, workers);
        Ok(Settings {
            decode: self.decode(),
            domain: DomainSettings {
                include_private: self.include_private_suffixes,
                whitelist,
            },
            sketch: SketchSettings {
                max_samples: self.sample_names,
                max_bytes: budget.shard_bytes,
                history_bytes: budget.history_bytes,
                history_halving: budget.history_halving,
                // Half the threshold in one slot is near it: never shed such a domain.
                protect_names: (self.threshold / 2).max(1),
                ..SketchSettings::default()
            },
            rule,
        })
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of the top-level `key` in `text`, which has parsed; 0 when the file does
/// not set it (the value came from the defaults).
fn key_line(text: &str, key: &str) -> usize {
    toml::de::DeTable::parse(text)
        .ok()
        .and_then(|table| {
            table
                .get_ref()
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(k, _)| line_of(text, k.span().start))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one worker holds of its own: reassembly tables and verdict cache, 28 MiB.
    fn worker_tables() -> usize {
        let tables = DecodeSettings::default().max_bytes() + crate::domain::VERDICT_CACHE_BYTES;
        assert!((27 << 20..29 << 20).contains(&tables), "{tables}");
        tables
    }

    fn invalid(text: &str) -> (usize, String) {
        match Config::parse(text, "test.toml") {
            Err(ConfigError::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an invalid-config error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_the_reference_defaults() {
        let config = Config::parse("", "empty").unwrap();
        assert_eq!(config, Config::default());
        let settings = config.settings().unwrap();
        assert_eq!(settings.rule.threshold, 200);
        assert_eq!(settings.rule.window, 4 * 3600 * crate::NANOS_PER_SEC);
        assert_eq!(settings.rule.interval, 15 * 60 * crate::NANOS_PER_SEC);
        assert_eq!(settings.rule.realert, 3600 * crate::NANOS_PER_SEC);
        assert_eq!(settings.rule.max_domains, 1000);
        assert_eq!(settings.decode.ports, vec![53]);
        assert!(settings.domain.include_private);
        assert!(settings
            .domain
            .whitelist
            .iter()
            .any(|d| d == "amazonaws.com"));
        assert!(settings.domain.whitelist.iter().any(|d| d == "ip6.arpa"));
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
threshold = 50
window = "1h"
interval = "5m"
realert = "0"
max_domains = 10
top_clients = 3
sample_names = 2
include_private_suffixes = false
ports = [53, 5353]
whitelist = ["example.com"]
memory_cap = "256MiB"
"#;
        let config = Config::parse(text, "t").unwrap();
        assert_eq!(config.threshold, 50);
        assert_eq!(config.window, Duration::from_secs(3600));
        assert_eq!(config.interval, Duration::from_secs(300));
        assert_eq!(config.realert, Duration::ZERO);
        assert_eq!(config.max_domains, 10);
        assert_eq!(config.top_clients, 3);
        assert_eq!(config.sample_names, 2);
        assert!(!config.include_private_suffixes);
        assert_eq!(config.ports, vec![53, 5353]);
        assert_eq!(config.whitelist, vec!["example.com".to_string()]);
        assert_eq!(config.memory_cap, 256 << 20);
        let settings = config.settings().unwrap();
        // Each worker's own tables come off the cap first; then a 1h window with a 5m
        // interval: 13 slots held, one being merged, two per worker, and each worker's
        // history an eighth of a share.
        let tables = worker_tables();
        assert_eq!(
            settings.sketch.max_bytes,
            ((256 << 20) - tables) * 8 / (16 * 8 + 1)
        );
        assert_eq!(settings.sketch.history_bytes, settings.sketch.max_bytes / 8);
        assert_eq!(settings.sketch.history_halving, 6);
        assert_eq!(settings.sketch.protect_names, 25);
        assert_eq!(
            config.settings_for_workers(4).unwrap().sketch.max_bytes,
            ((256 << 20) - 4 * tables) * 8 / (22 * 8 + 4)
        );
    }

    #[test]
    fn memory_cap_reads_binary_units_and_refuses_nonsense() {
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size(" 512 MiB "), Ok(512 << 20));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("2TiB"), Ok(2 << 40));
        assert!(parse_byte_size("1GB").unwrap_err().contains("GiB"));
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("99999999999TiB").is_err());
        let (line, message) = invalid("threshold = 10\nmemory_cap = \"1 gigabyte\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("unit"), "{message}");
        let (_, message) = invalid("memory_cap = \"512KiB\"\n");
        assert!(message.contains("at least 1MiB"), "{message}");
        let (line, _) = invalid("memory_cap = 1024\n");
        assert_eq!(line, 1);
        // The default: 1 GiB over the 4 h window's 17 slots, one merging, one worker
        // and its history.
        let settings = Config::default().settings().unwrap();
        assert_eq!(
            settings.sketch.max_bytes,
            ((1 << 30) - worker_tables()) * 8 / (20 * 8 + 1)
        );
        assert_eq!(settings.sketch.history_halving, 8);
        assert_eq!(settings.sketch.protect_names, 100);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let (line, message) = invalid("threshold = 10\n\nthreshhold = 20\n");
        assert_eq!(line, 3);
        assert!(message.contains("threshhold"), "{message}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let (line, message) = invalid("threshold = 10\nwindow = \"4 fortnights\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("invalid duration"), "{message}");

        let (line, message) = invalid("\nthreshold = 0\n");
        assert_eq!(line, 2);
        assert!(message.contains("at least 1"), "{message}");

        let (line, _) = invalid("ports = [53, 70000]\n");
        assert_eq!(line, 1);

        let (line, message) = invalid("interval = \"0s\"\n");
        assert_eq!(line, 1);
        assert!(message.contains("longer than zero"), "{message}");

        let (line, _) = invalid("threshold = \"many\"\n");
        assert_eq!(line, 1);

        let (line, message) = invalid("threshold = 10\nsample_names = 101\n");
        assert_eq!(line, 2);
        assert!(message.contains("at most 100"), "{message}");
    }

    #[test]
    fn settings_that_blind_the_sensor_are_refused_on_their_line() {
        let (line, message) = invalid("threshold = 10\n\nwindow = \"100000000000y\"\n");
        assert_eq!(line, 3);
        assert!(message.starts_with("window: "), "{message}");
        let (line, message) = invalid("window = \"4h\"\n# every nanosecond\ninterval = \"1ns\"\n");
        assert_eq!(line, 3);
        assert!(message.starts_with("interval: "), "{message}");
        // Set by the defaults: no line to name.
        let (line, message) = invalid("interval = \"1s\"\n");
        assert_eq!(line, 0);
        assert!(message.starts_with("memory_cap: "), "{message}");
        let (line, _) = invalid("interval = \"1s\"\nmemory_cap = \"1GiB\"\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn broken_toml_is_reported_with_a_line() {
        let (line, _) = invalid("threshold = 10\nwindow = \"4h\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn the_shipped_example_is_valid_and_matches_the_defaults() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/dns-sensor.toml"
        ));
        let shipped = Config::load(path).unwrap();
        // The deliberate differences: the installed appliance keeps its window in its
        // state directory and writes to its journal.
        let mut expected = Config {
            state_directory: Some(PathBuf::from("/var/lib/dns-sensor")),
            ..Config::default()
        };
        expected.output.journald.enabled = true;
        expected.output.file.format = crate::alert::Format::Ecs;
        assert_eq!(shipped, expected);
    }

    #[test]
    fn missing_whitelist_file_is_an_error_naming_it() {
        let config = Config {
            whitelist_files: vec![PathBuf::from("/nonexistent/dns-sensor-whitelist")],
            ..Config::default()
        };
        let err = config.settings().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/dns-sensor-whitelist"), "{err}");
    }
}
