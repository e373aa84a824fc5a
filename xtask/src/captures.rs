//! `cargo xtask gen`, `demo` and `bench-replay`: captures made by the project's own
//! generator, the demo that replays one, and the replay throughput benchmark (alone,
//! or pinned side by side with dnstop).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use dns_sensor::synth::rtype;
use dns_sensor::synth::scenario::{background, mix, ResolverMix, Tunnel, EPOCH, MINUTE};

use crate::ci::{run_cmd, workspace_root};

/// The captures `gen` knows, with what each holds.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("demo", "30 min of ordinary traffic from 50 clients with an iodine-like NULL tunnel (400 names) hidden in it"),
    ("resolver", "traffic shaped like a busy resolver's (the benchmarks' default): 50 000 registered domains under a mix of public suffixes, 1-5 names each, Zipf 0.9 popularity, 5 000 clients, every query answered, 2 % tunnel names (--frames N, over one hour)"),
    ("mix", "the old benchmark mix: ordinary traffic with a TXT and a NULL tunnel and a random-subdomain flood (--frames N)"),
    ("window", "a full 4 h window: --frames N queries (default 1 M; 20 M for the memory bar) for N/20 registered domains, 20 names each, each domain active in one 15-minute slot, and a 300-name tunnel across the window"),
    ("busy", "6 h of a 2 000-endpoint network behind two resolvers, labelled: ordinary browsing, busy benign services (blocklists, reputation look-ups, CDN and video edges, ad frames, cloud storage, Active Directory, PTR sweeps, ACME), generated tunnels loud and quiet, and the real tunnel captures of ../shared/captures; the labels go to OUT with the extension .labels.tsv"),
    ("flood", "a 4 h flood where every query is a new registered domain (--frames N, default 1 M), as a DGA or a random-domain attack makes it, and the window's 300-name tunnel inside it"),
];

/// Writes scenario `name` to `out`.
pub fn generate(name: &str, out: &Path, frames: u64) -> anyhow::Result<usize> {
    let traffic = match name {
        "demo" => {
            let mut traffic = background(EPOCH, 30 * MINUTE, 20, 50, 42);
            let mut tunnel = Tunnel::new("exfil-demo.net", 400, EPOCH + 7 * MINUTE, 12 * MINUTE);
            tunnel.zone = "t.exfil-demo.net".into();
            tunnel.qtype = rtype::NULL;
            tunnel.binary_names = true;
            tunnel.response_len = 220;
            traffic.extend(tunnel.build().0);
            traffic
        }
        "mix" => mix(frames, EPOCH),
        "resolver" => return write_resolver(out, frames),
        "window" => return write_window(out, frames, 20),
        "flood" => return write_window(out, frames, 1),
        "busy" => return write_busy(out),
        other => bail!("no scenario {other:?}; known: {}", names()),
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    traffic
        .write_pcap(out)
        .with_context(|| format!("writing {}", out.display()))
}

/// Writes the `busy` scenario to `out` and its labels beside it.
fn write_busy(out: &Path) -> anyhow::Result<usize> {
    use dns_sensor::synth::scenario::busy::BusyNetwork;

    let captures = workspace_root().join("../shared/captures");
    let network = BusyNetwork::build(BUSY_SEED, EPOCH, 6, 2_000, Some(&captures))
        .with_context(|| format!("reading the tunnel captures in {}", captures.display()))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let labels = out.with_extension("labels.tsv");
    std::fs::write(&labels, network.labels_tsv())
        .with_context(|| format!("writing {}", labels.display()))?;
    network
        .traffic
        .write_pcap(out)
        .with_context(|| format!("writing {}", out.display()))
}

/// Seed of the `busy` scenario, the one `tests/ground_truth.rs` scores.
const BUSY_SEED: u64 = 13;

/// Seed of the `resolver` scenario: the benchmarks' captures are always the same bytes.
pub const RESOLVER_SEED: u64 = 1;

/// Writes the `resolver` scenario straight to `out`, streaming (it is built in time
/// order, so no size needs it in memory).
fn write_resolver(out: &Path, frames: u64) -> anyhow::Result<usize> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    ResolverMix::new(frames, EPOCH, RESOLVER_SEED)
        .write_pcap(out)
        .with_context(|| format!("writing {}", out.display()))
}

/// Writes the `window` and `flood` scenarios straight to `out` in time order (they are
/// too large to hold and sort in memory): `queries` queries, `names_per_domain`
/// distinct names per registered domain, domain `d` queried only in slot `d % 16` of
/// the 4 h window, from 1 000 clients, no responses; plus a tunnel of 300 names spread
/// over the whole window (one alert, and its realert).
fn write_window(out: &Path, queries: u64, names_per_domain: u64) -> anyhow::Result<usize> {
    use dns_sensor::capture::{LinkType, PcapWriter};
    use dns_sensor::synth::scenario::{v4, HOUR};
    use dns_sensor::synth::{query, tunnel_name, udp_frame, Flow};

    const SLOTS: u64 = 16;
    const TUNNEL_NAMES: u64 = 300;
    let names_per_domain = names_per_domain.max(1);
    let domains = (queries / names_per_domain).max(SLOTS);
    let slot = 4 * HOUR / SLOTS;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut pcap = PcapWriter::new(std::io::BufWriter::new(file), LinkType::Ethernet)?;
    let server = v4(192, 0, 2, 1);
    let tunnel_flow = Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53));
    let per_tunnel = 4 * HOUR / TUNNEL_NAMES;
    let mut tunnel_sent = 0u64;
    let mut written = 0usize;
    for s in 0..SLOTS {
        // Domains of this slot: d = s, s + 16, s + 32, ...
        let in_slot = (domains - s).div_ceil(SLOTS);
        let total = in_slot * names_per_domain;
        let step = slot / total.max(1);
        for k in 0..total {
            let ts = EPOCH + s * slot + k * step;
            while tunnel_sent < TUNNEL_NAMES && EPOCH + tunnel_sent * per_tunnel <= ts {
                let name = tunnel_name(tunnel_sent, "exfil-window.example");
                let frame = udp_frame(
                    &tunnel_flow,
                    &query(tunnel_sent as u16, name.as_bytes(), rtype::TXT),
                );
                pcap.write(EPOCH + tunnel_sent * per_tunnel, &frame)?;
                tunnel_sent += 1;
                written += 1;
            }
            // Interleaved so that each domain's names spread over its slot.
            let d = s + (k % in_slot) * SLOTS;
            let n = k / in_slot;
            let name = format!("h{n}x{:x}.d{d}.example", dns_sensor::synth::mix64(k));
            let client = (k % 1000) as u32;
            let flow = Flow::to_dns(
                v4(10, 2, (client / 250) as u8, (client % 250) as u8 + 1),
                20_000 + (k % 40_000) as u16,
                server,
            );
            pcap.write(
                ts,
                &udp_frame(&flow, &query(k as u16, name.as_bytes(), rtype::A)),
            )?;
            written += 1;
        }
    }
    pcap.finish()?;
    Ok(written)
}

fn names() -> String {
    SCENARIOS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where generated captures go by default.
pub fn out_dir() -> PathBuf {
    workspace_root().join("target/captures")
}

/// Builds the sensor in release mode and returns its path.
pub fn build_sensor() -> anyhow::Result<PathBuf> {
    // The binary embeds the XDP program: its toolchain must be there (idempotent).
    crate::setup::run()?;
    run_cmd(
        "cargo",
        &["build", "--release", "--quiet", "-p", "dns-sensor"],
    )?;
    Ok(workspace_root().join("target/release/dns-sensor"))
}

/// Generates the demo capture and replays it: the alert goes to stdout.
pub fn demo() -> anyhow::Result<()> {
    let sensor = build_sensor()?;
    let capture = out_dir().join("demo.pcap");
    let frames = generate("demo", &capture, 0)?;
    eprintln!(
        "wrote {} ({frames} frames): 30 min of traffic with a tunnel in it",
        capture.display()
    );
    let status = Command::new(&sensor)
        .arg("replay")
        .arg(&capture)
        .status()
        .context("running dns-sensor")?;
    if !status.success() {
        bail!("dns-sensor replay failed ({status})");
    }
    Ok(())
}

/// The generated traffic a benchmark runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Shaped like a busy resolver's traffic (`gen resolver`): the default since
    /// 2026-12-01.
    Resolver,
    /// The first benchmark mix (`gen mix`): 30 popular domains, two tunnels and a flood;
    /// the figures in docs/performance.md before 2026-12-01 are on it.
    Mix,
}

impl Scenario {
    /// The scenario's name for `gen`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Resolver => "resolver",
            Scenario::Mix => "mix",
        }
    }
}

/// Options of `cargo xtask bench-replay`.
#[derive(clap::Args)]
pub struct BenchReplay {
    /// Frames in the generated capture.
    #[arg(long, default_value_t = 2_000_000)]
    frames: u64,
    /// Runs (rounds with --against-dnstop); the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Which traffic.
    #[arg(long, value_enum, default_value = "resolver")]
    scenario: Scenario,
    /// Also run `dnstop -l 2 -X` and `dnstop -l 3 -X` on the same capture, interleaved,
    /// every process pinned to one core, and report whole-process wall-time medians and
    /// ratios.
    #[arg(long)]
    against_dnstop: bool,
    /// Pin every process (all its threads) to this core with `taskset -c` (default with
    /// --against-dnstop: 1; otherwise not pinned).
    #[arg(long)]
    core: Option<usize>,
}

/// Replays a generated capture `runs` times through the release build and reports the
/// median frames/s the sensor measured, or with `--against-dnstop` the pinned
/// side-by-side run against dnstop.
pub fn bench_replay(args: &BenchReplay) -> anyhow::Result<()> {
    let (frames, runs) = (args.frames, args.runs.max(1));
    let sensor = build_sensor()?;
    let (capture, count) = crate::compare::capture(args.scenario, frames, false)?;
    if args.against_dnstop {
        return crate::compare::side_by_side(
            &sensor,
            &capture,
            count,
            runs,
            args.core.unwrap_or(1),
        );
    }
    let mut rates = Vec::new();
    for run in 1..=runs {
        let mut cmd = match args.core {
            Some(core) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(core.to_string()).arg(&sensor);
                cmd
            }
            None => Command::new(&sensor),
        };
        let output = cmd
            .arg("replay")
            .arg(&capture)
            .output()
            .context("running dns-sensor")?;
        if !output.status.success() {
            bail!(
                "dns-sensor replay failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let rate: f64 = stderr
            .rsplit(", ")
            .next()
            .and_then(|s| s.trim().strip_suffix(" frames/s"))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no frames/s in the summary: {stderr}"))?;
        eprintln!("run {run}: {rate:.0} frames/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let pinned = args
        .core
        .map_or(String::new(), |c| format!(", pinned to core {c}"));
    println!(
        "replay of {} ({frames} frames), {runs} runs{pinned}: median {:.0} frames/s (min {:.0}, max {:.0})",
        capture.display(),
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    Ok(())
}
