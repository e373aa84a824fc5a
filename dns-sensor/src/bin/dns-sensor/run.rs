//! `dns-sensor run`: watch an interface live.

use std::process::ExitCode;

use std::sync::Arc;

use clap::Args;
use dns_sensor::capture::{afxdp::ZeroCopy, xdp};
use dns_sensor::config::{Command, LiveConfig, LiveMode, XdpMode, ZeroCopyMode};
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
    /// host's stack (DNS on this interface then goes to the sensor only). [default:
    /// the settings file's `[live] mode`, or mirror]
    #[arg(long, value_enum)]
    mode: Option<LiveMode>,
    /// How to attach XDP: native (driver) with a fallback to generic, or only one.
    /// [default: `[live] xdp_mode`, or auto]
    #[arg(long, value_enum)]
    xdp_mode: Option<XdpMode>,
    /// Zero-copy AF_XDP: where the driver supports it (auto), required, or never.
    /// [default: `[live] zero_copy`, or auto]
    #[arg(long, value_enum)]
    zero_copy: Option<ZeroCopyMode>,
    /// Receive queues to open. [default: `[live] queues`, or all of the interface's]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    queues: Option<u32>,
    /// Stats line period. [default: `[live] stats_every`, or 1m]
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    stats_every: Option<std::time::Duration>,
    /// Do not pin queue workers to cores (`[live] pin = false`).
    #[arg(long)]
    no_pin: bool,
    /// Wait for the interface to appear and come up (a NIC that is late at boot)
    /// instead of exiting 2 when it is missing or down (`[live] wait_for_interface`).
    #[arg(long)]
    wait_for_interface: bool,
}

impl RunArgs {
    /// The settings file's `[live]` table with the flags on top.
    fn live_config(&self, file: &LiveConfig) -> LiveConfig {
        LiveConfig {
            mode: self.mode.unwrap_or(file.mode),
            xdp_mode: self.xdp_mode.unwrap_or(file.xdp_mode),
            zero_copy: self.zero_copy.unwrap_or(file.zero_copy),
            queues: self.queues.or(file.queues),
            stats_every: self.stats_every.unwrap_or(file.stats_every),
            pin: file.pin && !self.no_pin,
            wait_for_interface: file.wait_for_interface || self.wait_for_interface,
            ..file.clone()
        }
    }
}

/// What `run` captures with, from the `[live]` settings.
fn live_settings(interface: &str, live: &LiveConfig, ports: &[u16]) -> LiveSettings {
    let mut settings = LiveSettings::new(interface);
    settings.xdp.ports = ports.to_vec();
    settings.xdp.capture = match live.mode {
        LiveMode::Mirror => xdp::CaptureMode::Mirror,
        LiveMode::Inline => xdp::CaptureMode::Inline,
    };
    settings.xdp.attach = match live.xdp_mode {
        XdpMode::Auto => xdp::AttachMode::Auto,
        XdpMode::Native => xdp::AttachMode::Native,
        XdpMode::Generic => xdp::AttachMode::Generic,
    };
    settings.afxdp.zero_copy = match live.zero_copy {
        ZeroCopyMode::Auto => ZeroCopy::Auto,
        ZeroCopyMode::On => ZeroCopy::Require,
        ZeroCopyMode::Off => ZeroCopy::Off,
    };
    settings.afxdp.rx_ring = live.rx_ring;
    settings.afxdp.fill_ring = live.fill_ring;
    settings.afxdp.frames = live.umem_frames;
    settings.afxdp.frame_size = live.frame_size;
    settings.queues = live.queues;
    settings.stats_every = live.stats_every;
    settings.pin = live.pin;
    settings
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
    let live_config = args.live_config(&config.live);
    if live_config.wait_for_interface {
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
    let workers = live_config.queues.or_else(|| {
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
    let mut live = live_settings(&args.interface, &live_config, &config.ports);
    live.metrics = config.metrics.listen;
    live.state_directory = config.state_directory.clone();
    live.fleet = match config
        .fleet
        .as_ref()
        .map(|f| f.settings(config.top_clients))
    {
        Some(Ok(fleet)) => Some(fleet),
        Some(Err(e)) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        None => None,
    };
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
                skipped_frames: 0,
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
