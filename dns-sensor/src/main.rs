//! The `dns-sensor` command: replay capture files or watch an interface, and print
//! alerts as JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dns_sensor::alert::JsonLines;
use dns_sensor::config::{parse_duration, Config};
use dns_sensor::pipeline::{self, ReplayReport};

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
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
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

/// Settings that the command line can override on top of the settings file.
#[derive(Args)]
struct RuleArgs {
    /// Settings file (TOML); see deploy/dns-sensor.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Alert when a domain's unique hostnames exceed this.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    threshold: Option<u64>,
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

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    rule: RuleArgs,
    /// Capture files, merged in time order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

impl RuleArgs {
    /// The settings file (or the defaults) with the flags applied on top.
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(n) = self.threshold {
            config.threshold = n;
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
        Ok(config)
    }
}

/// Exit status for usage, settings and input errors, as clap uses for usage errors.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => replay(&args),
        Command::Run(args) => run(&args),
    }
}

fn run(args: &RunArgs) -> ExitCode {
    use dns_sensor::capture::{afxdp::ZeroCopy, xdp};
    use dns_sensor::live::{self, LiveSettings};
    let config = match args.rule.config() {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    // One worker per receive queue: the memory cap is shared between their open shards
    // and the window. An interface that cannot be read is reported by `live::run`.
    let workers = args.queues.or_else(|| {
        xdp::check_interface(&args.interface)
            .ok()
            .map(|i| i.rx_queues)
    });
    let settings = match config.settings_for_workers(workers.map_or(1, |n| n.max(1) as usize)) {
        Ok(s) => s,
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
    let stop = match live::stop_on_signals() {
        Ok(flag) => flag,
        Err(e) => {
            log::error!("installing signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = JsonLines::new(std::io::stdout());
    match live::run(&settings, &live, vec![Box::new(stdout)], stop) {
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

fn replay(args: &ReplayArgs) -> ExitCode {
    let settings = match args.rule.config().and_then(|c| Ok(c.settings()?)) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let stdout = JsonLines::new(std::io::stdout());
    let report = match pipeline::replay(&args.files, &settings, vec![Box::new(stdout)]) {
        Ok(report) => report,
        Err(e @ (pipeline::PipelineError::Capture(_) | pipeline::PipelineError::Domain(_))) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for cut in &report.truncated {
        log::warn!("{cut}; the frames before it were counted");
    }
    print_summary(&report);
    ExitCode::SUCCESS
}

fn print_summary(report: &ReplayReport) {
    let s = &report.summary;
    let w = &s.workers;
    let secs = report.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        w.decode.frames as f64 / secs
    } else {
        0.0
    };
    eprintln!(
        "dns-sensor: {} frames read, {} DNS messages ({} queries, {} responses), {} malformed \
         ({} frames, {} DNS), {} without a question, {} not IP, {} not DNS, {} whitelisted, {} without a registered \
         domain, {} IPv4 fragments ({} reassembled, {} dropped), {} TCP bytes dropped, \
         peak {} domains in the window ({:.1} MiB of tables), {} domains shed for room ({} records), \
         {} evaluations, {} alerts, {:.3} s, {:.0} frames/s",
        w.decode.frames,
        w.decode.dns_messages,
        w.queries,
        w.responses,
        w.malformed(),
        w.decode.malformed_frames,
        w.malformed_dns,
        w.no_question,
        w.decode.not_ip,
        w.decode.not_dns,
        w.whitelisted,
        w.no_domain,
        w.decode.ip_fragments,
        w.decode.ip_reassembled,
        w.decode.ip_fragments_dropped,
        w.decode.tcp_bytes_dropped,
        s.peak_domains,
        s.peak_bytes as f64 / f64::from(1u32 << 20),
        s.evicted_domains,
        s.shed_domains,
        s.evaluations,
        s.alerts,
        secs,
        rate,
    );
}
