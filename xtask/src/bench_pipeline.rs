//! `cargo xtask bench-pipeline`: the whole pipeline over frames held in memory, with N
//! workers and the coordinator, and the per-frame cost of each step of the hot path, on
//! the resolver-shaped traffic (`--scenario resolver`, the default) or the first mix
//! (`--scenario mix`).
//!
//! The capture file is left out on purpose: live, frames come from the NIC's rings, not
//! from a file, so this measures what the sensor itself costs per frame. Frames are
//! split between workers by the flow hash of their IP addresses before the clock starts,
//! as the NIC's receive-side scaling splits them between queues.

use std::time::Instant;

use anyhow::{bail, Context};
use dns_sensor::capture::{Frame, LinkType};
use dns_sensor::config::Config;
use dns_sensor::decode::{parse_question, Decoder, Name};
use dns_sensor::domain::VerdictCache;
use dns_sensor::domain::{Classifier, Verdict};
use dns_sensor::pipeline::{partition_by_flow, run_frames, Settings};
use dns_sensor::sketch::Shard;
use dns_sensor::synth::scenario::{mix, resolver_mix, EPOCH};
use dns_sensor::Nanos;

use crate::captures::{Scenario, RESOLVER_SEED};
use crate::ci::run_cmd;

const PROCESS: libc::clockid_t = libc::CLOCK_PROCESS_CPUTIME_ID;
const THREAD: libc::clockid_t = libc::CLOCK_THREAD_CPUTIME_ID;

/// CPU time of this process (every thread, ended ones included) or of this thread, in
/// seconds: how the pipeline's time divides between the workers and the coordinator.
fn cpu_time(clock: libc::clockid_t) -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to; both clocks exist on Linux.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Median, minimum and maximum of `samples` (not empty).
fn spread(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

/// Times `f` `runs` times; returns nanoseconds per frame for each run.
fn per_frame(runs: usize, frames: usize, mut f: impl FnMut() -> u64) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed().as_nanos() as f64 / frames as f64
        })
        .collect()
}

/// The hot path cut after each step, on one thread: each stage does everything the
/// previous one did plus one step, so the differences are the steps' own costs.
fn stages(
    frames: &[Frame<'_>],
    settings: &Settings,
    runs: usize,
) -> anyhow::Result<Vec<(&'static str, Vec<f64>)>> {
    let classifier = Classifier::new(&settings.domain).context("classifier")?;
    let n = frames.len();
    let mut out = Vec::new();
    out.push((
        "frame decode (link, IP, UDP/TCP, reassembly)",
        per_frame(runs, n, || {
            let mut decoder = Decoder::new(settings.decode.clone());
            let mut bytes = 0u64;
            for f in frames {
                decoder.decode(f, |p| bytes += p.message.len() as u64);
            }
            bytes
        }),
    ));
    out.push((
        "+ DNS question, lower-cased name",
        per_frame(runs, n, || {
            let mut decoder = Decoder::new(settings.decode.clone());
            let mut name = Name::new();
            let mut len = 0u64;
            for f in frames {
                decoder.decode(f, |p| {
                    if parse_question(p.message, &mut name).is_ok() {
                        len += name.as_bytes().len() as u64;
                    }
                });
            }
            len
        }),
    ));
    out.push((
        "+ registered domain and whitelist (no cache)",
        per_frame(runs, n, || {
            let mut decoder = Decoder::new(settings.decode.clone());
            let mut name = Name::new();
            let mut len = 0u64;
            for f in frames {
                decoder.decode(f, |p| {
                    if parse_question(p.message, &mut name).is_ok() {
                        if let Verdict::Registered(d) = classifier.classify(name.as_bytes()) {
                            len += d.len() as u64;
                        }
                    }
                });
            }
            len
        }),
    ));
    out.push((
        "+ registered domain through the worker's verdict cache",
        per_frame(runs, n, || {
            let mut decoder = Decoder::new(settings.decode.clone());
            let mut name = Name::new();
            let mut cache = VerdictCache::new();
            let mut len = 0u64;
            for f in frames {
                decoder.decode(f, |p| {
                    if parse_question(p.message, &mut name).is_ok() {
                        if let Verdict::Registered(d) = cache.classify(&classifier, name.as_bytes())
                        {
                            len += d.len() as u64;
                        }
                    }
                });
            }
            len
        }),
    ));
    out.push((
        "+ count update (xxh3, exact set, clients, qtypes)",
        per_frame(runs, n, || {
            let mut decoder = Decoder::new(settings.decode.clone());
            let mut name = Name::new();
            let mut cache = VerdictCache::new();
            let mut shard = Shard::new(0, &settings.sketch);
            for f in frames {
                decoder.decode(f, |p| {
                    let Ok(q) = parse_question(p.message, &mut name) else {
                        return;
                    };
                    if let Verdict::Registered(d) = cache.classify(&classifier, name.as_bytes()) {
                        let size = p.message.len() as u32;
                        if q.is_response {
                            shard.record_response(d, size, q.rcode);
                        } else {
                            shard.record_query(d, name.as_bytes(), p.src, q.qtype, size);
                        }
                    }
                });
            }
            shard.len() as u64
        }),
    ));
    Ok(out)
}

/// The frames, in time order, back to back in one buffer (and where each lies), as a
/// capture file or a receive ring holds them. The generator makes each frame a heap
/// block of its own, in the order it makes them (by domain and flow): read in time
/// order, those blocks lie all over the 260 MB of a 2 M-frame mix, a cache miss or more
/// a frame that no capture path has (measured at e359d54: the frame decode took 34.5 ns
/// a frame from the scattered blocks and 12.4 ns packed; one worker counted 3.43 M
/// frames/s and 3.93 M; docs/performance.md).
fn packed(sorted: Vec<(Nanos, Vec<u8>)>) -> (Vec<u8>, Vec<(Nanos, std::ops::Range<usize>)>) {
    let mut arena = Vec::with_capacity(sorted.iter().map(|(_, data)| data.len()).sum());
    let mut placed = Vec::with_capacity(sorted.len());
    for (ts, data) in sorted {
        let start = arena.len();
        arena.extend_from_slice(&data);
        placed.push((ts, start..arena.len()));
    }
    (arena, placed)
}

/// Generates `frames` frames of `scenario` in memory and benchmarks them.
pub fn run(frames: u64, runs: usize, workers: &[usize], scenario: Scenario) -> anyhow::Result<()> {
    if runs == 0 || workers.is_empty() {
        bail!("need at least one run and one worker count");
    }
    if cfg!(debug_assertions) {
        // `cargo xtask` builds xtask without optimisation; the pipeline runs inside this
        // process, so measure it from an optimised build of xtask itself.
        let workers: Vec<String> = workers.iter().map(usize::to_string).collect();
        return run_cmd(
            "cargo",
            &[
                "run",
                "--release",
                "--quiet",
                "-p",
                "xtask",
                "--",
                "bench-pipeline",
                "--frames",
                &frames.to_string(),
                "--runs",
                &runs.to_string(),
                "--workers",
                &workers.join(","),
                "--scenario",
                scenario.name(),
            ],
        );
    }
    let started = Instant::now();
    let traffic = match scenario {
        Scenario::Resolver => resolver_mix(frames, EPOCH, RESOLVER_SEED),
        Scenario::Mix => mix(frames, EPOCH),
    };
    let (arena, placed) = packed(traffic.into_sorted());
    let views: Vec<Frame<'_>> = placed
        .iter()
        .map(|(ts, range)| Frame {
            ts: *ts,
            link: LinkType::Ethernet,
            data: &arena[range.clone()],
        })
        .collect();
    let n = views.len();
    eprintln!(
        "generated the {} scenario in memory: {n} frames in {:.1} s",
        scenario.name(),
        started.elapsed().as_secs_f64()
    );
    let settings = Config::default().settings().context("default settings")?;

    println!("per-frame cost of each step, one thread, {runs} runs (median, min-max):");
    let mut medians: Vec<f64> = Vec::new();
    for (i, (label, samples)) in stages(&views, &settings, runs)?.into_iter().enumerate() {
        let (median, min, max) = spread(samples);
        // The cached lookup replaces the uncached one: both build on the question stage.
        let previous = match i {
            0 => 0.0,
            3 => medians[1],
            _ => medians[i - 1],
        };
        println!(
            "  {label:<56} {median:>6.1} ns/frame cumulative ({min:.1}-{max:.1}), step {:.1} ns",
            median - previous
        );
        medians.push(median);
    }

    let mut first_alerts: Option<u64> = None;
    let mut one_worker: Option<f64> = None;
    println!("whole pipeline (workers + coordinator), frames from memory, {runs} runs:");
    for &w in workers {
        let parts = partition_by_flow(views.iter().copied(), w);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        let mut rates = Vec::with_capacity(runs);
        let (mut coordinator_cpu, mut workers_cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (process_before, main_before) = (cpu_time(PROCESS), cpu_time(THREAD));
            let report = run_frames(&parts, &settings, Vec::new()).context("pipeline")?;
            // The coordinator runs on this thread; the workers' threads are joined, so
            // the process's clock holds theirs.
            let main = cpu_time(THREAD) - main_before;
            coordinator_cpu.push(main * 1e9 / n as f64);
            workers_cpu.push((cpu_time(PROCESS) - process_before - main) * 1e9 / n as f64);
            let alerts = report.summary.alerts;
            match first_alerts {
                None => first_alerts = Some(alerts),
                Some(a) if a != alerts => {
                    bail!("{w} workers raised {alerts} alerts, the first run {a}")
                }
                Some(_) => {}
            }
            rates.push(n as f64 / report.elapsed.as_secs_f64());
        }
        let (median, min, max) = spread(rates);
        let scaling = match one_worker {
            Some(base) => format!(", {:.2}x one worker", median / base),
            None => String::new(),
        };
        if w == 1 {
            one_worker = Some(median);
        }
        println!(
            "  {w} worker(s): median {median:.0} frames/s ({min:.0}-{max:.0}), {:.1} ns/frame{scaling}; frames per worker {sizes:?}",
            1e9 / median
        );
        println!(
            "    CPU time a frame (median): workers {:.1} ns, coordinator {:.1} ns",
            spread(workers_cpu).0,
            spread(coordinator_cpu).0
        );
    }
    println!(
        "alerts per run: {} (the same for every worker count)",
        first_alerts.unwrap_or(0)
    );
    Ok(())
}
