//! `dns-sensor fleet run`: the rule over every sensor's slots at every interval
//! boundary, as a service (deploy/dns-sensor-fleet.service), until SIGINT or SIGTERM.
//!
//! Each evaluation runs `[fleet] delay` after its boundary, so that the sensors have
//! shipped the slot that just closed, and covers the window before the boundary, as a
//! sensor's does. Its alerts go to `run`'s outputs with the sensor's re-alert rule; what
//! was reported is kept in the state directory, so a restart does not report it again.
//! An evaluation ClickHouse cannot answer is logged and left: the next one covers the
//! same window but one interval, so an alert comes at most an interval late. SIGHUP
//! reads the settings again and reopens the outputs' files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dns_sensor::alert::{rfc3339, Sink};
use dns_sensor::config::Command;
use dns_sensor::fleet::{load_reports, save_reports, FleetRule};
use dns_sensor::pipeline::live::{self, Supervisor};
use dns_sensor::Nanos;

use crate::fleet::{deliver, fleet_rule, log_sensors};
use crate::systemd::Systemd;
use crate::RuleArgs;

#[derive(Args)]
pub(crate) struct FleetRunArgs {
    #[command(flatten)]
    rule: RuleArgs,
}

/// What one set of settings runs with.
struct Running {
    rule: FleetRule,
    sinks: Vec<Box<dyn Sink>>,
    interval: Nanos,
    delay: Duration,
    state_directory: Option<PathBuf>,
}

impl Running {
    fn open(args: &RuleArgs) -> anyhow::Result<Self> {
        let (config, rule) = fleet_rule(args)?;
        let sinks = config.outputs(Command::Run)?.open()?;
        let fleet = config.fleet.as_ref().context("no [fleet] table")?;
        Ok(Self {
            interval: rule.settings().interval.max(1),
            delay: fleet.delay,
            state_directory: config.state_directory.clone(),
            rule,
            sinks,
        })
    }
}

pub(crate) fn fleet_run(args: &FleetRunArgs) -> anyhow::Result<()> {
    let stop = live::stop_on_signals().context("installing signal handlers")?;
    let hangup = live::reload_on_hangup().context("installing signal handlers")?;
    let systemd = Systemd::from_env();
    let mut running = Running::open(&args.rule)?;
    if let Some(dir) = &running.state_directory {
        let reports = load_reports(dir)?;
        if !reports.is_empty() {
            log::info!(
                "fleet: {} domains reported lately, kept from the last run",
                reports.len()
            );
        }
        running.rule.restore(reports);
    }
    if let Err(e) = running.rule.create_schema() {
        // Not fatal: ClickHouse may come up later, and each evaluation says so.
        log::warn!("fleet: creating the schema: {e}");
    }
    let mut next = next_boundary(dns_sensor::clock::wall_clock(), running.interval);
    log::info!(
        "fleet: evaluating every {} at {} after each boundary, first at {}",
        humantime::format_duration(Duration::from_nanos(running.interval)),
        humantime::format_duration(running.delay),
        rfc3339(next)
    );
    systemd.ready(&format!("first evaluation at {}", rfc3339(next)));
    while wait_until(next, &running, stop, hangup) {
        if hangup.swap(false, Ordering::Relaxed) {
            running = reload(&args.rule, running);
            // The boundary stays: a new interval takes effect from the next one.
            continue;
        }
        let at = next;
        match running.rule.evaluate(at) {
            Ok(alerts) => {
                log_sensors(&alerts);
                let alerts: Vec<_> = alerts.into_iter().map(|a| a.alert).collect();
                deliver(&mut running.sinks, &alerts, false);
                if let Some(dir) = &running.state_directory {
                    if let Err(e) = save_reports(dir, running.rule.reports()) {
                        log::error!("fleet: keeping what was reported: {e}");
                    }
                }
                log::info!(
                    "fleet: evaluated at {}: {} alerts",
                    rfc3339(at),
                    alerts.len()
                );
                systemd.status(&format!(
                    "last evaluation at {}: {} alerts",
                    rfc3339(at),
                    alerts.len()
                ));
            }
            Err(e) => {
                log::error!("fleet: evaluation at {}: {e}", rfc3339(at));
                systemd.status(&format!("evaluation at {} failed: {e}", rfc3339(at)));
            }
        }
        // After a suspend or a query slower than an interval, the boundaries passed
        // meanwhile are skipped: the next evaluation's window holds their slots.
        let now = dns_sensor::clock::wall_clock();
        let following = next_boundary(now.saturating_sub(nanos(running.delay)), running.interval);
        let skipped = (following - at) / running.interval - 1;
        if skipped > 0 {
            log::warn!("fleet: {skipped} evaluations skipped, behind the clock");
        }
        next = following;
    }
    systemd.stopping();
    deliver(&mut running.sinks, &[], true);
    log::info!("fleet: stopped");
    Ok(())
}

/// `d` in nanoseconds, as far as they go.
fn nanos(d: Duration) -> Nanos {
    Nanos::try_from(d.as_nanos()).unwrap_or(Nanos::MAX)
}

/// The first interval boundary after `now`.
fn next_boundary(now: Nanos, interval: Nanos) -> Nanos {
    (now / interval).saturating_add(1).saturating_mul(interval)
}

/// Sleeps until `delay` after `boundary`: true when it is time to evaluate or a SIGHUP
/// came, false on SIGINT or SIGTERM.
fn wait_until(boundary: Nanos, running: &Running, stop: &AtomicBool, hangup: &AtomicBool) -> bool {
    let due = boundary.saturating_add(nanos(running.delay));
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if hangup.load(Ordering::Relaxed) {
            return true;
        }
        let now = dns_sensor::clock::wall_clock();
        if now >= due {
            return true;
        }
        // Short sleeps: signals are seen within a fifth of a second, and a wall clock
        // set forward is followed.
        let left = Duration::from_nanos(due - now).min(Duration::from_millis(200));
        std::thread::sleep(left);
    }
}

/// The settings read again; when they do not load, the ones running, their outputs'
/// files reopened.
fn reload(args: &RuleArgs, mut running: Running) -> Running {
    match Running::open(args) {
        Ok(mut new) => {
            deliver(&mut running.sinks, &[], true);
            let reports = running.rule.reports().clone();
            new.rule.restore(reports);
            log::info!("fleet: settings read again");
            new
        }
        Err(e) => {
            log::error!("fleet: settings not reloaded, the running ones kept: {e:#}");
            for sink in &mut running.sinks {
                if let Err(e) = sink.reopen() {
                    log::error!("alert output {}: {e}", sink.name());
                }
            }
            running
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_boundary_is_strictly_after_now() {
        let minute = 60_000_000_000;
        assert_eq!(next_boundary(0, minute), minute);
        assert_eq!(next_boundary(minute - 1, minute), minute);
        assert_eq!(next_boundary(minute, minute), 2 * minute);
    }
}
