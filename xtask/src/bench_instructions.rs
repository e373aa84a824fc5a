//! `cargo xtask bench-instructions`: instructions per frame, counted by valgrind's
//! callgrind, for the sensor and for dnstop on resolver-shaped captures (or the first
//! mix, `--scenario mix`) of several sizes. Unlike wall-clock time on a shared 2-core machine, the count barely moves
//! between runs (0.15 % at 200 000 frames, from the per-process random hash keys), so
//! it can be compared across commits.
//!
//! Each program runs once per size on the whole capture; the figure per frame is the
//! slope between two sizes, `(Ir(N2) - Ir(N1)) / (N2 - N1)`, which leaves out what does
//! not grow with the capture (process start, the Public Suffix List's parse). For the
//! sensor, the profiles of the smallest and largest sizes are split into the pipeline's
//! steps and listed by function, the same slope taken for each.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::callgrind::Profile;
use crate::captures::{build_sensor, Scenario};
use crate::ci::workspace_root;
use crate::compare::{capture, require_dnstop, Tool};

/// Options of `cargo xtask bench-instructions`.
#[derive(clap::Args)]
pub struct Args {
    /// Capture sizes in frames (at least two; the figure per frame is the slope
    /// between them).
    #[arg(long, value_delimiter = ',', default_value = "200000,400000,2000000")]
    sizes: Vec<u64>,
    /// What to count.
    #[arg(long, value_delimiter = ',', default_value = "sensor,dnstop2,dnstop3")]
    what: Vec<Tool>,
    /// Which traffic.
    #[arg(long, value_enum, default_value = "resolver")]
    scenario: Scenario,
    /// Functions listed for the sensor, by own and by inclusive instructions.
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Write the captures again even when they exist.
    #[arg(long)]
    regenerate: bool,
    /// Count this sensor binary instead of building the workspace's (another
    /// commit's build, say, to set beside this one's).
    #[arg(long, value_name = "PATH")]
    sensor: Option<PathBuf>,
    /// Name of the profiles written (default: the workspace's commit, or with
    /// --sensor the directory holding the binary's target/, e.g. `wt-base`).
    #[arg(long)]
    label: Option<String>,
}

/// One program's counts: (frames, total instructions, the profile) per size.
struct Counted {
    tool: Tool,
    runs: Vec<(u64, Profile)>,
}

/// Runs `argv` under callgrind, writing its profile to `out`; returns the program's
/// standard error. Standard output (alerts, dnstop's tables) is thrown away.
fn callgrind(argv: &[String], out: &Path) -> anyhow::Result<String> {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=callgrind",
        "--cache-sim=no",
        "--branch-sim=no",
        "--collect-atstart=yes",
        "-q",
    ])
    .arg(format!("--callgrind-out-file={}", out.display()))
    .args(argv)
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    eprintln!("+ valgrind --tool=callgrind ... {}", argv.join(" "));
    let output = cmd
        .output()
        .context("running valgrind (cargo xtask setup installs it)")?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("`{}` under callgrind failed: {stderr}", argv.join(" "));
    }
    Ok(stderr)
}

/// A pipeline step of the sensor: the functions it is made of, by module or by name.
struct Step {
    label: &'static str,
    /// Module paths (prefixes of function names).
    modules: &'static [&'static str],
    /// Function names by their last path segments (a function moved to another module
    /// is still found).
    roots: &'static [&'static str],
    /// Source files (path fragments) whose code, inlined into the worker's own
    /// functions, is the step's.
    sources: &'static [&'static str],
}

impl Step {
    /// Whether function `name` is part of the step.
    fn has(&self, name: &str) -> bool {
        let own = name.trim_start_matches('<');
        self.modules.iter().any(|m| own.starts_with(m)) || is_root(self.roots, name)
    }

    /// Whether code from source file `file` is the step's.
    fn has_source(&self, file: &str) -> bool {
        self.sources.iter().any(|s| file.contains(s))
    }
}

/// The worker's loop over the frames: everything the worker does per frame is below it.
const WORKER_LOOP: Step = Step {
    label: "the worker's loop",
    modules: &[],
    roots: &["read_merged"],
    sources: &[],
};
const READER: Step = Step {
    label: "pcap reader (file reads, record headers)",
    modules: &["dns_sensor::capture::pcap::"],
    roots: &[],
    sources: &["dns-sensor/src/capture/pcap.rs"],
};
const QUESTION: Step = Step {
    label: "DNS question (header, first question, canonical name)",
    modules: &["dns_sensor::decode::dns::"],
    roots: &["parse_question"],
    sources: &["dns-sensor/src/decode/dns.rs"],
};
const DOMAIN: Step = Step {
    label: "registered domain (verdict cache, PSL walk, whitelist)",
    modules: &["dns_sensor::domain::"],
    roots: &[],
    sources: &["dns-sensor/src/domain/"],
};
const COUNT: Step = Step {
    label: "count update (shard: names, clients, query types; slot hand-over)",
    modules: &["dns_sensor::sketch::"],
    roots: &["Worker::advance_to"],
    sources: &["dns-sensor/src/sketch/"],
};
/// Callers whose calls into the steps are the worker's per-frame work (the
/// coordinator's calls into the sketch, its merges, are not).
const WORKER_CALLERS: &[&str] = &[
    "dns_sensor::capture::merge::",
    "dns_sensor::pipeline::worker::",
    "dns_sensor::decode::",
];

/// Whether function `name` is one of the crate's functions whose path ends with one of
/// `roots` (closures and generic instances of them included).
fn is_root(roots: &[&str], name: &str) -> bool {
    let own = name.trim_start_matches('<');
    if !own.starts_with("dns_sensor::") {
        return false;
    }
    roots.iter().any(|r| {
        name.match_indices(&format!("::{r}")).any(|(at, _)| {
            let rest = &name[at + 2 + r.len()..];
            rest.is_empty() || rest.starts_with("::") || rest.starts_with('<')
        })
    })
}

/// The step a function belongs to by its module (for the lists of functions; shared
/// helpers such as the allocator, hashing and libc have none).
fn step_of(name: &str) -> &'static str {
    const BY_MODULE: &[(&str, &str)] = &[
        ("dns_sensor::capture::merge", "worker loop"),
        ("dns_sensor::capture", "pcap reader"),
        ("dns_sensor::decode::dns", "DNS question"),
        ("dns_sensor::decode", "frame decode"),
        ("dns_sensor::domain", "registered domain"),
        ("publicsuffix", "registered domain"),
        ("dns_sensor::sketch", "count update"),
        ("xxhash_rust", "count update"),
        ("dns_sensor::pipeline::worker", "worker"),
        ("dns_sensor::pipeline::coordinator", "coordinator"),
        ("dns_sensor::detect", "coordinator"),
        ("dns_sensor::alert", "coordinator"),
    ];
    BY_MODULE
        .iter()
        .find(|(module, _)| name.contains(module))
        .map_or("-", |(_, step)| step)
}

/// What step `step` costs in the worker: the calls the worker's own code makes into
/// the step's functions, and the step's code inlined into the worker's own functions
/// (by the source file callgrind gives for it) with the calls that code makes to
/// functions of no step (hashing, `memcmp`). The worker's own functions are those
/// `from_worker` accepts that belong to no step. A lower bound where a step's code
/// uses inlined standard-library code: callgrind names only the innermost file, so
/// that part counts as the worker's own.
fn step_cost(profile: &Profile, step: &Step, from_worker: &dyn Fn(&str) -> bool) -> u64 {
    let steps = [&READER, &QUESTION, &DOMAIN, &COUNT];
    let in_any_step = |f: &str| steps.iter().any(|s| s.has(f));
    let worker_own = |f: &str| from_worker(f) && !in_any_step(f);
    let calls: u64 = profile
        .calls_by_source
        .iter()
        .filter(|((caller, file, callee), _)| {
            worker_own(caller)
                && (step.has(callee) || (!in_any_step(callee) && step.has_source(file)))
        })
        .map(|(_, cost)| cost)
        .sum();
    let own: u64 = profile
        .own_by_source
        .iter()
        .filter(|((function, file), _)| worker_own(function) && step.has_source(file))
        .map(|(_, cost)| cost)
        .sum();
    calls + own
}

/// What the reader costs: its functions' own code and the calls they make to code of
/// no step (reads, copies), but not the worker it calls back for every frame (the
/// reader's loop drives the worker's).
fn reader_cost(profile: &Profile, from_worker: &dyn Fn(&str) -> bool) -> u64 {
    let others = [&QUESTION, &DOMAIN, &COUNT];
    let foreign_source = |file: &str| {
        others.iter().any(|s| s.has_source(file))
            || file.contains("dns-sensor/src/pipeline/")
            || file.contains("dns-sensor/src/decode/")
    };
    let foreign = |f: &str| from_worker(f) || others.iter().any(|s| s.has(f));
    let own: u64 = profile
        .own_by_source
        .iter()
        .filter(|((function, file), _)| READER.has(function) && !foreign_source(file))
        .map(|(_, cost)| cost)
        .sum();
    let calls: u64 = profile
        .edges
        .iter()
        .filter(|((caller, callee), _)| {
            READER.has(caller) && !READER.has(callee) && !foreign(callee)
        })
        .map(|(_, edge)| edge.cost)
        .sum();
    own + calls
}

/// Per frame of the growth from `small` to `large` (frames, value).
fn slope(small: (u64, u64), large: (u64, u64)) -> f64 {
    (large.1 as f64 - small.1 as f64) / (large.0 as f64 - small.0 as f64)
}

/// A line of text from a command, or `?`.
fn command_text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// What the figures were measured on and with.
fn describe_machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let root = workspace_root();
    let root = root.to_string_lossy();
    let commit = command_text("git", &["-C", &root, "rev-parse", "--short", "HEAD"]);
    let dirty = !command_text(
        "git",
        &["-C", &root, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_empty();
    format!(
        "commit {commit}{}, {cpu}, {} cores, kernel {}, {}, dnstop {}",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_text("uname", &["-r"]),
        command_text("valgrind", &["--version"]),
        command_text("dpkg-query", &["-W", "-f=${Version}", "dnstop"]),
    )
}

/// Runs the benchmark.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 2 || args.what.is_empty() {
        bail!("need at least two sizes (--sizes 200000,400000) and one program (--what)");
    }
    require_dnstop(&args.what)?;
    let sensor = match &args.sensor {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => bail!("no sensor binary at {}", path.display()),
        None if args.what.contains(&Tool::Sensor) => build_sensor()?,
        None => PathBuf::new(),
    };
    let out_dir = workspace_root().join("target/callgrind");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let captures = sizes
        .iter()
        .map(|&n| capture(args.scenario, n, args.regenerate))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Profiles are kept per commit, for callgrind_annotate and for comparing commits.
    let root = workspace_root();
    let commit = match (&args.label, &args.sensor) {
        (Some(label), _) => label.clone(),
        // target/release/dns-sensor: the directory above target/.
        (None, Some(path)) => path
            .ancestors()
            .nth(3)
            .and_then(|d| d.file_name())
            .map_or("other".into(), |d| d.to_string_lossy().into_owned()),
        (None, None) => command_text(
            "git",
            &[
                "-C",
                &root.to_string_lossy(),
                "rev-parse",
                "--short",
                "HEAD",
            ],
        ),
    };
    let mut counted = Vec::new();
    for &tool in &args.what {
        let mut runs = Vec::new();
        for (capture, frames) in &captures {
            let out = out_dir.join(format!(
                "{}-{}-{frames}-{commit}.out",
                tool.slug(),
                args.scenario.name()
            ));
            let stderr = callgrind(&tool.command_line(&sensor, capture), &out)?;
            if tool == Tool::Sensor {
                let read = stderr
                    .split(" frames read")
                    .next()
                    .and_then(|s| s.rsplit(' ').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if read != Some(*frames) {
                    bail!("the sensor read {read:?} frames of {frames}: {stderr}");
                }
            }
            runs.push((*frames, Profile::read(&out)?));
        }
        counted.push(Counted { tool, runs });
    }

    println!(
        "instructions (callgrind Ir, whole process) on the {} scenario:",
        args.scenario.name()
    );
    println!("  {}", describe_machine());
    if let Some(path) = &args.sensor {
        println!("  the sensor counted: {} ({commit})", path.display());
    }
    let mut header = format!("  {:<18}", "program");
    for (_, frames) in &captures {
        header += &format!(" {:>15}", format!("{frames} frames"));
    }
    println!("{header}");
    for c in &counted {
        let mut line = format!("  {:<18}", c.tool.label());
        for (_, p) in &c.runs {
            line += &format!(" {:>15}", p.total);
        }
        println!("{line}");
    }

    println!(
        "instructions per frame beyond start-up, (Ir(N2) - Ir(N1)) / (N2 - N1), and start-up (Ir(N1) - N1 x that):"
    );
    let (first, last) = (0, captures.len() - 1);
    let mut header = format!("  {:<18}", "program");
    for k in 1..captures.len() {
        header += &format!(
            " {:>17}",
            format!("{}k-{}k", captures[k - 1].1 / 1000, captures[k].1 / 1000)
        );
    }
    if captures.len() > 2 {
        header += &format!(
            " {:>17}",
            format!("{}k-{}k", captures[first].1 / 1000, captures[last].1 / 1000)
        );
    }
    header += &format!(" {:>14}", "start-up");
    println!("{header}");
    let mut headline = Vec::new();
    for c in &counted {
        let point = |k: usize| (c.runs[k].0, c.runs[k].1.total);
        let mut line = format!("  {:<18}", c.tool.label());
        for k in 1..c.runs.len() {
            line += &format!(" {:>17.1}", slope(point(k - 1), point(k)));
        }
        let overall = slope(point(first), point(last));
        if c.runs.len() > 2 {
            line += &format!(" {overall:>17.1}");
        }
        let startup = point(first).1 as f64 - overall * point(first).0 as f64;
        line += &format!(" {:>12.1} M", startup / 1e6);
        println!("{line}");
        headline.push((c.tool, overall));
    }
    if let Some(&(_, sensor_rate)) = headline.iter().find(|(t, _)| *t == Tool::Sensor) {
        for (tool, rate) in headline.iter().filter(|(t, _)| *t != Tool::Sensor) {
            println!(
                "  sensor / {}: {:.2}x the instructions per frame ({}k-{}k)",
                tool.label(),
                sensor_rate / rate,
                captures[first].1 / 1000,
                captures[last].1 / 1000
            );
        }
    }
    if let Some(c) = counted.iter().find(|c| c.tool == Tool::Sensor) {
        sensor_breakdown(&c.runs[first], &c.runs[last], args.top);
        println!(
            "profiles: {}/sensor-{}-*-{commit}.out (callgrind_annotate reads them)",
            out_dir.display(),
            args.scenario.name()
        );
    }
    Ok(())
}

/// The sensor's instructions per frame split into the pipeline's steps, and its top
/// functions, as slopes between the `small` and `large` runs.
fn sensor_breakdown(small: &(u64, Profile), large: &(u64, Profile), top: usize) {
    let frames = large.0 - small.0;
    let per_frame = |a: u64, b: u64| (b as f64 - a as f64) / frames as f64;
    let steps = [&WORKER_LOOP, &READER, &QUESTION, &DOMAIN, &COUNT];
    for step in steps {
        let inlined = step.sources.is_empty()
            || large
                .1
                .own_by_source
                .keys()
                .any(|(_, file)| step.has_source(file));
        if !large.1.functions.keys().any(|f| step.has(f)) && !inlined {
            eprintln!(
                "note: no function or code of \"{}\" in the profile (renamed?): its cost shows in its caller's step",
                step.label
            );
        }
    }
    let incl = |p: &Profile, name: &str| p.function(name).map_or(0, |f| f.inclusive());
    let from_worker = |c: &str| {
        WORKER_CALLERS
            .iter()
            .any(|m| c.trim_start_matches('<').starts_with(m))
    };
    let parts = |p: &Profile| {
        let worker = p.entry_cost(|f| WORKER_LOOP.has(f));
        let reader = reader_cost(p, &from_worker);
        let [question, domain, count] =
            [&QUESTION, &DOMAIN, &COUNT].map(|s| step_cost(p, s, &from_worker));
        [
            reader,
            worker.saturating_sub(reader + question + domain + count),
            question,
            domain,
            count,
            p.total.saturating_sub(worker),
            p.total,
        ]
    };
    let labels = [
        READER.label,
        "frame decode (link, IP, UDP/TCP), the worker's own code (loop, slots)",
        QUESTION.label,
        DOMAIN.label,
        COUNT.label,
        "coordinator (merges, evaluations, alerts), exit and teardown",
        "total",
    ];
    let (a, b) = (parts(&small.1), parts(&large.1));
    println!(
        "sensor, by step: instructions per frame ({}k-{}k frames), share",
        small.0 / 1000,
        large.0 / 1000
    );
    let total = per_frame(a[6], b[6]);
    for (k, label) in labels.iter().enumerate() {
        let v = per_frame(a[k], b[k]);
        println!("  {label:<70} {v:>8.1} {:>6.1} %", 100.0 * v / total);
    }

    let mut names: Vec<&String> = large.1.functions.keys().collect();
    names.sort();
    let rows = |cost: &dyn Fn(&Profile, &str) -> u64| {
        let mut rows: Vec<(f64, &String)> = names
            .iter()
            .map(|n| (per_frame(cost(&small.1, n), cost(&large.1, n)), *n))
            .collect();
        rows.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(y.1)));
        rows.truncate(top);
        rows
    };
    let file_of = |n: &str| {
        large
            .1
            .function(n)
            .map_or("?".to_string(), |f| f.file.clone())
    };
    let self_cost = |p: &Profile, n: &str| p.function(n).map_or(0, |f| f.self_cost);
    // The caller that accounts for most of a function's calls, per frame.
    let main_caller = |callee: &str| -> Option<(f64, &str)> {
        large
            .1
            .edges
            .iter()
            .filter(|((_, e), _)| e == callee)
            .map(|((c, e), edge)| {
                let before = small.1.edges.get(&(c.clone(), e.clone()));
                (
                    per_frame(before.map_or(0, |b| b.cost), edge.cost),
                    c.as_str(),
                )
            })
            .max_by(|x, y| x.0.total_cmp(&y.0))
    };
    println!("sensor, top {top} functions by own instructions per frame (step by module; helpers with their main caller):");
    for (v, name) in rows(&self_cost) {
        let step = step_of(name);
        let via = match main_caller(name) {
            Some((calls, caller)) if step == "-" => {
                format!(", {calls:.0}/frame from {}", shorten(caller))
            }
            _ => String::new(),
        };
        println!(
            "  {v:>8.1} {:>5.1} %  {step:<18} {}  ({}{via})",
            100.0 * v / total,
            shorten(name),
            file_of(name)
        );
    }
    // The sensor's own functions below the worker's loop and the coordinator: above
    // them are only the threads' and the runtime's frames.
    let below_entry = |p: &Profile, n: &str| {
        let own = n.starts_with("dns_sensor::") || n.starts_with("<dns_sensor::");
        if own
            && !matches!(
                n,
                "dns_sensor::main" | "dns_sensor::pipeline::replay::replay"
            )
        {
            incl(p, n)
        } else {
            0
        }
    };
    println!("sensor, top {top} of its own functions by inclusive instructions per frame:");
    for (v, name) in rows(&below_entry) {
        println!(
            "  {v:>8.1} {:>5.1} %  {:<18} {}",
            100.0 * v / total,
            step_of(name),
            shorten(name)
        );
    }
    // Calls made for some frames only show the slow paths taken, and how often:
    // verdict-cache misses (the PSL walk), allocations, vectors that grow.
    let mut calls: Vec<(f64, f64, &String, &String)> = large
        .1
        .edges
        .iter()
        .filter(|((caller, _), _)| caller.contains("dns_sensor::"))
        .map(|((caller, callee), edge)| {
            let before = small.1.edges.get(&(caller.clone(), callee.clone()));
            (
                per_frame(before.map_or(0, |b| b.calls), edge.calls),
                per_frame(before.map_or(0, |b| b.cost), edge.cost),
                caller,
                callee,
            )
        })
        .filter(|(n, _, _, _)| (0.001..0.99).contains(n))
        .collect();
    calls.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.2.cmp(y.2)));
    println!("sensor, top {top} calls made for some frames only, by instructions per frame (calls/frame, instructions/frame):");
    for (n, cost, caller, callee) in calls.into_iter().take(top) {
        println!(
            "  {n:>6.3} {cost:>8.1}  {} -> {}",
            shorten(caller),
            shorten(callee)
        );
    }
}

/// `name` cut to 110 characters.
fn shorten(name: &str) -> String {
    if name.chars().count() <= 110 {
        name.to_string()
    } else {
        name.chars().take(107).collect::<String>() + "..."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_match_closures_and_generic_instances_but_not_longer_names() {
        let roots = &["Shard::record_query"];
        assert!(is_root(
            roots,
            "dns_sensor::sketch::shard::Shard::record_query"
        ));
        assert!(is_root(
            roots,
            "dns_sensor::sketch::shard::Shard::record_query::{{closure}}"
        ));
        assert!(!is_root(
            roots,
            "dns_sensor::sketch::shard::Shard::record_query_slow"
        ));
        // Moved to another module, still found; another crate's function of the same
        // name is not.
        assert!(is_root(
            &["VerdictCache::classify"],
            "dns_sensor::domain::cache::VerdictCache::classify"
        ));
        assert!(!is_root(
            &["VerdictCache::classify"],
            "other::VerdictCache::classify"
        ));
        // Steps by module: a function renamed or moved inside its module stays in it.
        assert!(DOMAIN.has("dns_sensor::domain::Classifier::classify_labeled"));
        assert!(COUNT.has("<dns_sensor::sketch::shard::Shard as Clone>::clone"));
        assert!(COUNT.has("dns_sensor::pipeline::worker::Worker::advance_to"));
        assert!(!QUESTION.has("dns_sensor::decode::Decoder::transport"));
        assert_eq!(
            step_of("dns_sensor::decode::dns::parse_question"),
            "DNS question"
        );
        assert_eq!(
            step_of("dns_sensor::decode::Decoder::transport"),
            "frame decode"
        );
        assert_eq!(step_of("mi_free"), "-");
    }

    #[test]
    fn steps_inlined_into_the_worker_are_found_by_their_source() {
        // The worker's closure holds the question's code (30) and the shard's (20, with
        // a call to a hash of no step, 7), and calls the domain's function (50) and a
        // sketch function (40) that calls a helper (5).
        let text = "events: Ir
fl=(1) /w/dns-sensor/src/pipeline/worker.rs
fn=(1) dns_sensor::pipeline::worker::Worker::process::{{closure}}
1 100
fi=(2) /w/dns-sensor/src/decode/dns.rs
2 30
fi=(3) /w/dns-sensor/src/sketch/shard.rs
3 20
cfl=(4) /r/foldhash/src/lib.rs
cfn=(4) foldhash::hash_bytes_long
calls=1 0
3 7
fe=(1)
cfl=(5) /w/dns-sensor/src/domain/mod.rs
cfn=(5) dns_sensor::domain::Classifier::classify_labeled
calls=1 0
4 50
cfl=(6) /w/dns-sensor/src/sketch/counts.rs
cfn=(6) dns_sensor::sketch::counts::DomainCounts::record_query
calls=1 0
5 45
fl=(4)
fn=(4)
1 7
fl=(5)
fn=(5)
1 50
fl=(6)
fn=(6)
1 40
cfn=(4)
calls=1 0
2 5
totals: 304
";
        let p = Profile::parse(text).unwrap();
        let worker = |c: &str| c.starts_with("dns_sensor::pipeline::worker::");
        assert_eq!(step_cost(&p, &QUESTION, &worker), 30);
        assert_eq!(step_cost(&p, &COUNT, &worker), 20 + 7 + 45);
        assert_eq!(step_cost(&p, &DOMAIN, &worker), 50);
        assert_eq!(step_cost(&p, &READER, &worker), 0);
    }

    #[test]
    fn the_reader_driving_the_worker_costs_its_own_code_and_reads_only() {
        // The reader's loop (10 of its own, 4 of inlined worker code) reads the file
        // (6) and calls the worker for each frame (100).
        let text = "events: Ir
fl=(1) /w/dns-sensor/src/capture/pcap.rs
fn=(1) dns_sensor::capture::pcap::CaptureReader::for_each_frame
1 10
fi=(2) /w/dns-sensor/src/pipeline/worker.rs
2 4
fe=(1)
cfl=(3) /r/std/src/io.rs
cfn=(3) std::io::Read::read
calls=1 0
3 6
cfl=(2)
cfn=(4) dns_sensor::pipeline::worker::Worker::process
calls=1 0
4 100
fl=(3)
fn=(3)
1 6
fl=(2)
fn=(4)
1 100
totals: 120
";
        let p = Profile::parse(text).unwrap();
        let worker = |c: &str| c.starts_with("dns_sensor::pipeline::worker::");
        assert_eq!(reader_cost(&p, &worker), 10 + 6);
    }

    #[test]
    fn the_slope_leaves_out_what_does_not_grow() {
        // 1 000 instructions of start-up, then 2 500 per frame.
        let at = |n: u64| (n, 1_000 + 2_500 * n);
        assert_eq!(slope(at(200), at(400)), 2_500.0);
        assert_eq!(slope(at(200), at(2_000)), 2_500.0);
    }
}
