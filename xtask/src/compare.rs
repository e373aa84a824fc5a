//! What the sensor is compared with, and on what: the generated captures the
//! benchmarks share (made once, kept under `target/captures/`), the commands of the
//! sensor and of dnstop on them, and the pinned side-by-side wall-clock run of
//! `cargo xtask bench-replay --against-dnstop`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::captures::{generate, out_dir, Scenario};

/// A program the benchmarks run on a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// `dns-sensor replay FILE` (the release build).
    Sensor,
    /// `dnstop -l 2 -X FILE`: per-TLD and second-level counts.
    Dnstop2,
    /// `dnstop -l 3 -X FILE`: also third-level names.
    Dnstop3,
}

impl Tool {
    /// How the tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Sensor => "dns-sensor replay",
            Tool::Dnstop2 => "dnstop -l 2 -X",
            Tool::Dnstop3 => "dnstop -l 3 -X",
        }
    }

    /// Short name for file names.
    pub fn slug(self) -> &'static str {
        match self {
            Tool::Sensor => "sensor",
            Tool::Dnstop2 => "dnstop2",
            Tool::Dnstop3 => "dnstop3",
        }
    }

    /// The program and its arguments to read `capture` (the sensor at `sensor`).
    /// dnstop reads the whole file and exits when its standard output is not a
    /// terminal (its non-interactive mode), printing its tables there; `-X` leaves out
    /// its per-source tables, as in the figures.
    pub fn command_line(self, sensor: &Path, capture: &Path) -> Vec<String> {
        let file = capture.display().to_string();
        match self {
            Tool::Sensor => vec![sensor.display().to_string(), "replay".into(), file],
            Tool::Dnstop2 => ["dnstop", "-l", "2", "-X", &file]
                .map(String::from)
                .to_vec(),
            Tool::Dnstop3 => ["dnstop", "-l", "3", "-X", &file]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// Fails with what to do when dnstop is not installed.
pub fn require_dnstop(tools: &[Tool]) -> anyhow::Result<()> {
    if tools.iter().any(|t| *t != Tool::Sensor)
        && Command::new("dnstop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    {
        bail!("dnstop is not installed: run `cargo xtask setup` (it installs the Debian package)");
    }
    Ok(())
}

/// The capture of `scenario` with `frames` frames under `target/captures/`
/// (`resolver-N.pcap`, `mix-N.pcap`), written first if it is not there (or
/// `regenerate`); returns its path and frame count.
pub fn capture(
    scenario: Scenario,
    frames: u64,
    regenerate: bool,
) -> anyhow::Result<(PathBuf, u64)> {
    let path = out_dir().join(format!("{}-{frames}.pcap", scenario.name()));
    if regenerate || !path.exists() {
        let started = Instant::now();
        let written = generate(scenario.name(), &path, frames)?;
        eprintln!(
            "wrote {} ({written} frames) in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let count = count_frames(&path)?;
    Ok((path, count))
}

/// Frames in the capture at `path`.
fn count_frames(path: &Path) -> anyhow::Result<u64> {
    let mut reader = dns_sensor::capture::CaptureReader::open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0u64;
    while reader
        .next_frame()
        .with_context(|| format!("reading {}", path.display()))?
        .is_some()
    {
        n += 1;
    }
    Ok(n)
}

/// CPU time (user + system, seconds) of every waited-for child so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes only into the struct it is given, which is a plain C
    // struct for which all-zero bytes are a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// One run: whole-process wall time and CPU time, in seconds.
struct Run {
    wall: f64,
    cpu: f64,
}

/// Runs `argv` pinned to `core` (`taskset -c`: every thread it starts inherits the
/// mask), its standard output thrown away; fails on a non-zero exit.
fn run_pinned(core: usize, argv: &[String]) -> anyhow::Result<Run> {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let output = Command::new("taskset")
        .arg("-c")
        .arg(core.to_string())
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running taskset -c {core} {}", argv.join(" ")))?;
    let wall = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "`taskset -c {core} {}` failed ({}): {}",
            argv.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Run {
        wall,
        cpu: children_cpu() - cpu_before,
    })
}

/// The median of `values` (not empty).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The side-by-side wall-clock benchmark: the sensor and dnstop (`-l 2 -X`, `-l 3 -X`)
/// on the same capture of `frames` frames, every process pinned to `core`, `runs` rounds
/// in which each tool runs once (in an order that rotates from round to round, so a
/// burst of load from elsewhere does not always fall on the same tool); medians and
/// ratios of whole-process wall time (process start to exit, start-up included).
pub fn side_by_side(
    sensor: &Path,
    capture: &Path,
    frames: u64,
    runs: usize,
    core: usize,
) -> anyhow::Result<()> {
    let tools = [Tool::Sensor, Tool::Dnstop2, Tool::Dnstop3];
    require_dnstop(&tools)?;
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    // One warm-up round, not counted: the file into the page cache.
    for tool in tools {
        run_pinned(core, &tool.command_line(sensor, capture))?;
    }
    for round in 0..runs {
        let mut line = format!("round {}:", round + 1);
        for k in 0..tools.len() {
            let i = (round + k) % tools.len();
            let run = run_pinned(core, &tools[i].command_line(sensor, capture))?;
            line += &format!(" {} {:.3} s;", tools[i].slug(), run.wall);
            walls[i].push(run.wall);
            cpus[i].push(run.cpu);
        }
        eprintln!("{line}");
    }
    let medians: Vec<f64> = walls.iter_mut().map(|w| median(w)).collect();
    println!(
        "side by side on {} ({frames} frames), pinned to core {core} (taskset -c {core}), {runs} rounds, whole process:",
        capture.display()
    );
    println!(
        "  {:<18} {:>10} {:>19} {:>10} {:>12}  ratio",
        "tool", "median", "min-max (wall, s)", "CPU (s)", "frames/s"
    );
    for (i, tool) in tools.iter().enumerate() {
        let (min, max) = (walls[i][0], walls[i][walls[i].len() - 1]);
        let ratio = if i == 0 {
            String::new()
        } else {
            let r = medians[i] / medians[0];
            if r >= 1.0 {
                format!("sensor {r:.2}x faster")
            } else {
                format!("{} {:.2}x faster", tool.label(), 1.0 / r)
            }
        };
        println!(
            "  {:<18} {:>8.3} s {:>8.3}-{:<8.3}  {:>10.3} {:>12.0}  {ratio}",
            tool.label(),
            medians[i],
            min,
            max,
            median(&mut cpus[i]),
            frames as f64 / medians[i],
        );
    }
    Ok(())
}
