//! `cargo xtask gen`, `demo` and `bench-replay`: captures made by the project's own
//! generator, the demo that replays one, and the replay throughput benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use dns_sensor::synth::rtype;
use dns_sensor::synth::scenario::{background, mix, Tunnel, EPOCH, MINUTE};

use crate::ci::{run_cmd, workspace_root};

/// The captures `gen` knows, with what each holds.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("demo", "30 min of ordinary traffic from 50 clients with an iodine-like NULL tunnel (400 names) hidden in it"),
    ("mix", "the benchmark mix: ordinary traffic with a TXT and a NULL tunnel and a random-subdomain flood (--frames N)"),
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
        other => bail!("no scenario {other:?}; known: {}", names()),
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    traffic
        .write_pcap(out)
        .with_context(|| format!("writing {}", out.display()))
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
fn build_sensor() -> anyhow::Result<PathBuf> {
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

/// Replays a generated mix of `frames` frames `runs` times through the release build and
/// reports the median frames/s the sensor measured.
pub fn bench_replay(frames: u64, runs: usize) -> anyhow::Result<()> {
    let sensor = build_sensor()?;
    let capture = out_dir().join(format!("mix-{frames}.pcap"));
    if !capture.exists() {
        let started = Instant::now();
        let written = generate("mix", &capture, frames)?;
        eprintln!(
            "wrote {} ({written} frames) in {:.1} s",
            capture.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let mut rates = Vec::new();
    for run in 1..=runs {
        let output = Command::new(&sensor)
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
    println!(
        "replay of {} ({frames} frames), {runs} runs: median {:.0} frames/s (min {:.0}, max {:.0})",
        capture.display(),
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    Ok(())
}
