//! The `dns-sensor` command: replay capture files or watch an interface, and print
//! alerts as JSON lines.

mod check;
mod fleet;
#[cfg(feature = "live")]
mod fleet_run;
mod logging;
mod progress;
mod replay;
#[cfg(feature = "live")]
mod run;
#[cfg(feature = "live")]
mod systemd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dns_sensor::config::{parse_duration, Config};
use dns_sensor::pipeline::ReplayReport;

use check::CheckArgs;
use fleet::FleetArgs;
use replay::ReplayArgs;
#[cfg(feature = "live")]
use run::RunArgs;

/// mimalloc rather than the system's: the window's tables are millions of small blocks
/// allocated and freed as domains come and go, and glibc's malloc spent a third of the
/// time under a flood of new domains in its free lists (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Detects DNS tunnels: alerts when a registered domain collects more unique hostnames
/// than a threshold within a sliding window.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reads capture files (pcap or pcapng) in time order and prints alerts on stdout,
    /// one JSON object per line, and a summary on stderr.
    Replay(ReplayArgs),
    /// Watches an interface (a mirror port) live through XDP and AF_XDP, prints alerts
    /// on stdout as JSON lines and a stats line every minute on stderr, until SIGINT or
    /// SIGTERM. Needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK.
    #[cfg(feature = "live")]
    Run(RunArgs),
    /// Checks a settings file as `run` reads it (every key, the whitelist files, the
    /// outputs, the credentials file's permissions, the certificates) without capturing,
    /// sending or creating anything: prints what it sets and exits 0, or exits 2 with
    /// the first error, as `run` would report it.
    CheckConfig(CheckArgs),
    /// A fleet of sensors in ClickHouse (the `[fleet]` settings): `fleet init` creates
    /// the schema, `fleet check` evaluates the rule once over every sensor's slots,
    /// `fleet run` at every interval, as a service.
    Fleet(FleetArgs),
}

/// Settings that the command line can override on top of the settings file.
#[derive(Args, Clone)]
pub(crate) struct RuleArgs {
    /// Settings file (TOML); see deploy/dns-sensor.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Alert when a domain's unique hostnames exceed this.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    threshold: Option<u64>,
    /// Under the threshold, alert when a domain's unique hostnames exceed this and its
    /// evidence says tunnel (0: never).
    #[arg(long, value_name = "N")]
    tunnel_threshold: Option<u64>,
    /// How far back each evaluation looks (e.g. 4h).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    window: Option<std::time::Duration>,
    /// How often the rule is evaluated (e.g. 15m).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    interval: Option<std::time::Duration>,
    /// Report a domain again only after this long (0: at every evaluation).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    realert: Option<std::time::Duration>,
    /// Alerts per evaluation at most, largest first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_domains: Option<u64>,
    /// Whitelist a domain and every name under it (repeatable; adds to the file's list).
    #[arg(long, value_name = "DOMAIN")]
    whitelist: Vec<String>,
}

pub(crate) fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

impl RuleArgs {
    /// The settings file (or the defaults) with the flags applied on top.
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(n) = self.threshold {
            config.threshold = n;
        }
        if let Some(n) = self.tunnel_threshold {
            config.tunnel_threshold = n;
        }
        if let Some(d) = self.window {
            config.window = d;
        }
        if let Some(d) = self.interval {
            config.interval = d;
        }
        if let Some(d) = self.realert {
            config.realert = d;
        }
        if let Some(n) = self.max_domains {
            config.max_domains = usize::try_from(n).context("--max-domains is too large")?;
        }
        config.whitelist.extend(self.whitelist.iter().cloned());
        // The file passed these checks alone; the flags may have changed the answer.
        match config.check() {
            Ok(warnings) => {
                for warning in warnings {
                    log::warn!("{warning}");
                }
            }
            Err(problem) => anyhow::bail!("{problem} (with the command line's flags)"),
        }
        Ok(config)
    }
}

/// Exit status for usage, settings and input errors, as clap uses for usage errors.
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => replay::replay(&args),
        #[cfg(feature = "live")]
        Command::Run(args) => run::run(&args),
        Command::CheckConfig(args) => check::check_config(&args),
        Command::Fleet(args) => fleet::fleet(&args),
    }
}

pub(crate) fn print_summary(report: &ReplayReport) {
    eprintln!("dns-sensor: {report}");
}
