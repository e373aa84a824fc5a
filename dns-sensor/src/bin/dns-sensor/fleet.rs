//! `dns-sensor fleet`: the fleet's schema, and the rule over every sensor's slots.

use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use clap::{Args, Subcommand};
use dns_sensor::alert::{escape_name, rfc3339, Sink};
use dns_sensor::config::{Command, Config};
use dns_sensor::detect::Alert;
use dns_sensor::domain::Classifier;
use dns_sensor::fleet::{ClickHouse, FleetAlert, FleetRule};
use dns_sensor::Nanos;

use crate::{RuleArgs, EXIT_BAD_INPUT};

#[derive(Args)]
pub(crate) struct FleetArgs {
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Subcommand)]
enum FleetCommand {
    /// Creates the fleet's database and table in ClickHouse (a sensor does it on its
    /// first insert too). Safe to run again.
    Init(FleetInitArgs),
    /// Evaluates the rule once over every sensor's slots in ClickHouse and delivers the
    /// alerts to the outputs `replay` uses (stdout: JSON lines), each with the sensors
    /// that saw the domain on stderr.
    Check(FleetCheckArgs),
    /// Evaluates the rule over every sensor's slots at every interval boundary (`[fleet]
    /// delay` after it), as a service, and delivers the alerts to `run`'s outputs with
    /// re-alert suppression, until SIGINT or SIGTERM (deploy/dns-sensor-fleet.service).
    #[cfg(feature = "live")]
    Run(crate::fleet_run::FleetRunArgs),
}

#[derive(Args)]
struct FleetInitArgs {
    #[command(flatten)]
    rule: RuleArgs,
}

#[derive(Args)]
struct FleetCheckArgs {
    #[command(flatten)]
    rule: RuleArgs,
    /// When the evaluation is (RFC 3339, `2026-12-01T10:00:00Z`; fractions of a second
    /// allowed); its window is the one before. Default: now.
    #[arg(long, value_name = "TIME", value_parser = rfc3339_nanos)]
    at: Option<Nanos>,
}

fn rfc3339_nanos(text: &str) -> Result<Nanos, String> {
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| e.to_string())?;
    let since = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "before 1970".to_string())?;
    Nanos::try_from(since.as_nanos()).map_err(|_| "too far in the future".to_string())
}

pub(crate) fn fleet(args: &FleetArgs) -> ExitCode {
    let result = match &args.command {
        FleetCommand::Init(init) => fleet_rule(&init.rule).and_then(|(_, rule)| {
            rule.create_schema()?;
            eprintln!("dns-sensor: fleet: ready: {}", rule.describe());
            Ok(())
        }),
        FleetCommand::Check(check) => check_fleet(check),
        #[cfg(feature = "live")]
        FleetCommand::Run(run) => crate::fleet_run::fleet_run(run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            if e.downcast_ref::<dns_sensor::fleet::ClickHouseError>()
                .is_some()
            {
                ExitCode::FAILURE
            } else {
                ExitCode::from(EXIT_BAD_INPUT)
            }
        }
    }
}

/// The settings with the flags on top, and the rule over the fleet they give.
pub(crate) fn fleet_rule(rule: &RuleArgs) -> anyhow::Result<(Config, FleetRule)> {
    let config = rule.config()?;
    let fleet = config
        .fleet
        .as_ref()
        .context("the settings have no [fleet] table: set fleet.clickhouse")?
        .settings(config.top_clients)?;
    let settings = config.settings()?;
    let classifier = Classifier::new(&settings.domain)?;
    let client = ClickHouse::new(&fleet.url, fleet.user.clone(), fleet.password.clone());
    let rule = FleetRule::new(
        client,
        fleet.database,
        settings.rule,
        classifier,
        config.sample_names,
    );
    Ok((config, rule))
}

/// Says on the log which sensors saw each alert's domain.
pub(crate) fn log_sensors(alerts: &[FleetAlert]) {
    for fleet_alert in alerts {
        let sensors: Vec<String> = fleet_alert
            .sensors
            .iter()
            .map(|s| escape_name(s.as_bytes()))
            .collect();
        log::info!(
            "fleet: {} seen by {}",
            escape_name(&fleet_alert.alert.domain),
            sensors.join(", ")
        );
    }
}

/// Hands `alerts` to every sink (none when empty), flushing them too at the `end`;
/// returns how many failed, each logged.
pub(crate) fn deliver(sinks: &mut [Box<dyn Sink>], alerts: &[Alert], end: bool) -> usize {
    let mut failed = 0;
    for sink in sinks {
        if !alerts.is_empty() {
            if let Err(e) = sink.deliver(alerts) {
                log::error!("alert output {}: {e}", sink.name());
                failed += 1;
            }
        }
        if end {
            if let Err(e) = sink.flush() {
                log::error!("alert output {}: {e}", sink.name());
                failed += 1;
            }
        }
    }
    failed
}

fn check_fleet(args: &FleetCheckArgs) -> anyhow::Result<()> {
    let (config, mut rule) = fleet_rule(&args.rule)?;
    let mut sinks = config.outputs(Command::Replay)?.open()?;
    let at = args.at.unwrap_or_else(dns_sensor::clock::wall_clock);
    let alerts = rule.evaluate(at)?;
    log_sensors(&alerts);
    let alerts: Vec<_> = alerts.into_iter().map(|a| a.alert).collect();
    let failed = deliver(&mut sinks, &alerts, true);
    log::info!(
        "fleet: {} alerts over the window before {}",
        alerts.len(),
        rfc3339(at)
    );
    anyhow::ensure!(failed == 0, "{failed} outputs failed");
    Ok(())
}
