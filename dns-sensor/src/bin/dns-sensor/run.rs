//! `dns-sensor run`: watch an interface live.

use std::process::ExitCode;

use std::sync::Arc;

use clap::Args;
use dns_sensor::capture::{afxdp::ZeroCopy, xdp};
use dns_sensor::config::Command;
use dns_sensor::pipeline::live::{self, Control, LiveSettings, Supervisor};
use dns_sensor::pipeline::{ReadSettings, ReplayReport};

use crate::systemd::Systemd;
use crate::{positive_duration, print_summary, RuleArgs, EXIT_BAD_INPUT};

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    rule: RuleArgs,
    /// The interface to watch.
    #[arg(long, short = 'i', value_name = "IF")]
    interface: String,
    /// mirror: drop everything that is not DNS (a mirror port); inline: pass it to the
    /// host's stack (DNS on this interface then goes to the sensor only).
    #[arg(long, value_enum, default_value = "mirror")]
    mode: CliCaptureMode,
    /// How to attach XDP: native (driver) with a fallback to generic, or only one.
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: CliAttachMode,
    /// Zero-copy AF_XDP: where the driver supports it (auto), required, or never.
    #[arg(long, value_enum, default_value = "auto")]
    zero_copy: CliZeroCopy,
    /// Receive queues to open (default: all of the interface's).
    #[arg(long, value_name = "N")]
    queues: Option<u32>,
    /// Stats line period.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, default_value = "1m")]
    stats_every: std::time::Duration,
    /// Do not pin queue workers to cores.
    #[arg(long)]
    no_pin: bool,
    /// Wait for the interface to appear and come up (a NIC that is late at boot)
    /// instead of exiting 2 when it is missing or down.
    #[arg(long)]
    wait_for_interface: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliCaptureMode {
    Mirror,
    Inline,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliAttachMode {
    Auto,
    Native,
    Generic,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliZeroCopy {
    Auto,
    On,
    Off,
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    if args.interface.trim().is_empty() {
        log::error!(
            "no interface to watch: set DNS_SENSOR_INTERFACE in /etc/default/dns-sensor \
             (the service), or pass --interface"
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let config = match args.rule.config() {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    // Outputs are checked before any wait, so a bad setting is reported at once.
    let outputs = match config.outputs(Command::Run) {
        Ok(outputs) => outputs,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let (stop, hangup) = match (live::stop_on_signals(), live::reload_on_hangup()) {
        (Ok(stop), Ok(hangup)) => (stop, hangup),
        (Err(e), _) | (_, Err(e)) => {
            log::error!("installing signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let supervisor: Arc<dyn Supervisor> = Arc::new(Systemd::from_env());
    // SIGHUP reads the file again with the same flags on top.
    let rule = args.rule.clone();
    let reload: Arc<ReadSettings> = Arc::new(move |workers| {
        let config = rule.config()?;
        let settings = config.settings_for_workers(workers)?;
        let sinks = config.outputs(Command::Run)?.open()?;
        Ok((settings, sinks))
    });
    let control = Control {
        stop,
        hangup: Some(hangup),
        reload: Some(reload),
        supervisor,
    };
    if args.wait_for_interface {
        match live::wait_for_interface(&args.interface, &control) {
            Ok(Some(_)) => {}
            Ok(None) => {
                log::info!("stopped while waiting for {}", args.interface);
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                log::error!("{e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    // One worker per receive queue: the memory cap is shared between their open shards
    // and the window. An interface that cannot be read is reported by `live::run`.
    let workers = args.queues.or_else(|| {
        xdp::check_interface(&args.interface)
            .ok()
            .map(|i| i.rx_queues)
    });
    let workers = workers.map_or(1, |n| n.max(1) as usize);
    let settings = match config.settings_for_workers(workers) {
        Ok(settings) => settings,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let sinks = match outputs.open() {
        Ok(sinks) => sinks,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut live = LiveSettings::new(&args.interface);
    live.xdp.ports = config.ports.clone();
    live.xdp.capture = match args.mode {
        CliCaptureMode::Mirror => xdp::CaptureMode::Mirror,
        CliCaptureMode::Inline => xdp::CaptureMode::Inline,
    };
    live.xdp.attach = match args.xdp_mode {
        CliAttachMode::Auto => xdp::AttachMode::Auto,
        CliAttachMode::Native => xdp::AttachMode::Native,
        CliAttachMode::Generic => xdp::AttachMode::Generic,
    };
    live.afxdp.zero_copy = match args.zero_copy {
        CliZeroCopy::Auto => ZeroCopy::Auto,
        CliZeroCopy::On => ZeroCopy::Require,
        CliZeroCopy::Off => ZeroCopy::Off,
    };
    live.queues = args.queues;
    live.stats_every = args.stats_every;
    live.pin = !args.no_pin;
    match live::run(&settings, &live, sinks, &control) {
        Ok(report) => {
            let k = &report.kernel;
            let dropped: u64 = report
                .queues
                .iter()
                .map(|(_, st)| st.rx_dropped + st.rx_ring_full)
                .sum();
            log::info!(
                "stopped: XDP saw {} frames, redirected {}, {} not DNS, {} redirect failures; \
                 {} ring drops",
                k.seen,
                k.redirected,
                k.not_dns,
                k.redirect_failed,
                dropped
            );
            print_summary(&ReplayReport {
                summary: report.summary,
                elapsed: report.elapsed,
                window: None,
                truncated: Vec::new(),
            });
            ExitCode::SUCCESS
        }
        Err(e) if e.is_start_up() => {
            log::error!("{e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
