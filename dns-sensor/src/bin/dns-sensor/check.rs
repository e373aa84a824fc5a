//! `dns-sensor check-config`: validate a settings file as `run` would read it, without
//! capturing, sending or creating anything.

use dns_sensor::files::shown;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use dns_sensor::alert::OutputSettings;
use dns_sensor::config::{Command, Config, LiveConfig};
use dns_sensor::detect::Severity;
use dns_sensor::domain::Classifier;

use crate::EXIT_BAD_INPUT;

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The settings file (TOML) to check, e.g. /etc/dns-sensor/dns-sensor.toml.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Reads `FILE` through the steps `run` takes before it captures (every key, the
/// whitelist and its files, the outputs with their credentials file and certificates)
/// and says what it would do; exits 2 with the first error, in `run`'s words.
pub(crate) fn check_config(args: &CheckArgs) -> ExitCode {
    match check(&args.file) {
        Ok(description) => {
            println!("{}: valid", shown(&args.file));
            for line in description {
                println!("  {line}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            log::error!("{message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// What the file sets, a line each, or the first thing wrong with it, in the words
/// `run` logs it with.
fn check(file: &Path) -> Result<Vec<String>, String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let outputs = config.outputs(Command::Run).map_err(|e| e.to_string())?;
    let settings = config.settings().map_err(|e| e.to_string())?;
    Classifier::new(&settings.domain).map_err(|e| e.to_string())?;
    outputs.check().map_err(|e| e.to_string())?;
    if let Some(dir) = &config.state_directory {
        dns_sensor::pipeline::state::check_directory(dir)
            .map_err(|e| format!("state_directory {}: {e}", shown(dir)))?;
    }
    let from_files = settings.domain.whitelist.len() - config.whitelist.len();
    // The file parsed, so the rule's settings work together: only warnings are left.
    let warnings = config.check().unwrap_or_default();
    let mut lines: Vec<String> = warnings.iter().map(|w| format!("warning: {w}")).collect();
    lines.extend([
        format!(
            "rule: more than {} unique names under one registered domain within {}, \
             evaluated every {}, a domain reported again after {}, at most {} alerts \
             an evaluation; under it, more than {} names that look like a tunnel",
            config.threshold,
            humantime::format_duration(config.window),
            humantime::format_duration(config.interval),
            humantime::format_duration(config.realert),
            config.max_domains,
            config.tunnel_threshold,
        ),
        format!(
            "whitelist: {} entries ({} in the file, {from_files} from {} whitelist files)",
            settings.domain.whitelist.len(),
            config.whitelist.len(),
            config.whitelist_files.len(),
        ),
        format!(
            "ports: {}; memory cap: {} bytes",
            config
                .ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            config.memory_cap,
        ),
        format!("outputs of `run`: {}", describe(&outputs)),
        describe_live(&config.live),
        match &config.state_directory {
            Some(dir) => format!("state: `run` keeps the window in {}", shown(dir)),
            None => "state: the window is not kept across restarts".to_owned(),
        },
        match config.metrics.listen {
            Some(address) => format!("metrics: served at http://{address}/metrics by `run`"),
            None => "metrics: off".to_owned(),
        },
    ]);
    Ok(lines)
}

/// `capture: mirror mode, XDP auto, zero-copy auto, every queue, ...`.
fn describe_live(live: &LiveConfig) -> String {
    let name = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    format!(
        "capture: {} mode, XDP {}, zero-copy {}, {}, rings of {} (rx) and {} (fill) \
         entries, {} UMEM frames of {} bytes a queue, a stats line every {}{}{}",
        name(&live.mode),
        name(&live.xdp_mode),
        name(&live.zero_copy),
        live.queues
            .map_or("every queue".to_owned(), |n| format!("{n} queues")),
        live.rx_ring,
        live.fill_ring,
        live.umem_frames,
        live.frame_size,
        humantime::format_duration(live.stats_every),
        if live.pin { ", pinned workers" } else { "" },
        if live.wait_for_interface {
            ", waits for the interface"
        } else {
            ""
        },
    )
}

/// `journald, email to 2 recipients via smtp.example.net:587 (starttls, high alerts
/// only)`.
fn describe(outputs: &OutputSettings) -> String {
    let high_only = |min: Severity| min == Severity::High;
    let mut parts = Vec::new();
    if outputs.stdout.is_some() {
        parts.push("stdout".to_string());
    }
    if outputs.journald {
        parts.push("journald".to_string());
    }
    if let Some(file) = &outputs.file {
        parts.push(format!(
            "file {}{}",
            shown(&file.path),
            if high_only(file.min_severity) {
                " (high alerts only)"
            } else {
                ""
            }
        ));
    }
    if let Some(email) = &outputs.email {
        parts.push(format!(
            "email to {} recipient{} via {}:{} ({}{}{})",
            email.to.len(),
            if email.to.len() == 1 { "" } else { "s" },
            email.server,
            email.port,
            format!("{:?}", email.tls).to_lowercase(),
            if email.credentials.is_some() {
                ", with credentials"
            } else {
                ""
            },
            if high_only(email.min_severity) {
                ", high alerts only"
            } else {
                ""
            },
        ));
    }
    parts.join(", ")
}
