//! `cargo xtask fuzz [--seconds N] [TARGET]...`: builds the fuzz targets of `fuzz/`
//! (cargo-fuzz, libFuzzer, AddressSanitizer, debug assertions and overflow checks),
//! writes their seeds (`fuzz_seeds`), runs each for N seconds and reports the
//! executions it ran. Fails on any crash, timeout or out-of-memory, naming the input
//! that caused it. docs/fuzzing.md says what each target checks.
//!
//! cargo-fuzz needs nightly's flags (`-Zsanitizer`); this project builds with stable,
//! so they are allowed with `RUSTC_BOOTSTRAP=1`, for the fuzz crate only (its own
//! workspace and target directory: the main build never sees the variable).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::ci::workspace_root;

/// The cargo-fuzz release installed (`cargo install --locked`) when none is.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target in `cargo xtask ci`: eight targets in about four minutes.
pub const CI_SECONDS: u64 = 30;

/// Which sanitizer the targets are built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sanitizer {
    /// AddressSanitizer (cargo-fuzz's default): memory errors in `unsafe` code, leaks,
    /// and libFuzzer's limit on single allocations; 4-8 times slower per input.
    Address,
    /// None: more inputs in the same time, for the checks the targets assert.
    None,
}

/// The flags of `cargo fuzz build` and `run`, the same for both so that `run` does not
/// build again: release (the default) with debug assertions and overflow checks
/// (`-a`: an overflow is a finding, as it is in the tests), and `sanitizer`.
/// Each sanitizer builds in a target directory of its own: switching is not a rebuild.
fn build_flags(sanitizer: Sanitizer) -> Vec<&'static str> {
    let flags = ["--release", "--debug-assertions"];
    match sanitizer {
        Sanitizer::Address => [&flags[..], &["--sanitizer=address"]].concat(),
        Sanitizer::None => [
            &flags[..],
            &["--sanitizer=none", "--target-dir=fuzz/target/no-sanitizer"],
        ]
        .concat(),
    }
}

/// One fuzz target of `fuzz/fuzz_targets/`, and the longest input it is given.
pub struct Target {
    /// Its name (the file's, without `.rs`).
    pub name: &'static str,
    /// libFuzzer's `-max_len`: what the input format needs to say something
    /// interesting, and no more (longer inputs make slower, not better, fuzzing).
    pub max_len: usize,
}

/// Every target, in the order they run.
pub const TARGETS: &[Target] = &[
    // Several frames of up to a jumbo's worth each.
    Target {
        name: "decode_frame",
        max_len: 8192,
    },
    // Compression pointers reach 16 KiB back; names end within 255 bytes of them.
    Target {
        name: "dns_question",
        max_len: 4096,
    },
    // Dozens of segments of up to 255 bytes.
    Target {
        name: "tcp_reassembly",
        max_len: 8192,
    },
    // Dozens of fragments of up to 255 bytes.
    Target {
        name: "ip_fragments",
        max_len: 8192,
    },
    // A file header and a few records or blocks, options included.
    Target {
        name: "capture_reader",
        max_len: 16384,
    },
    // The documented settings file (8 KB) fits.
    Target {
        name: "config_parse",
        max_len: 10240,
    },
    // A window of a few slots and domains.
    Target {
        name: "window_snapshot",
        max_len: 16384,
    },
    // Six names of up to 255 bytes and the figures.
    Target {
        name: "escape_names",
        max_len: 2048,
    },
];

/// A single input running longer than this is a hang (the slowest targets take well
/// under a millisecond an input).
const TIMEOUT_SECS: u64 = 10;
/// libFuzzer's memory limit for the whole process (AddressSanitizer's shadow and
/// quarantine included), and for any one allocation: no input of these sizes needs a
/// single allocation of 256 MiB, so one that asks for it is a length believed.
const RSS_LIMIT_MB: u64 = 2048;
const MALLOC_LIMIT_MB: u64 = 256;

/// `cargo xtask fuzz`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds each target runs.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// The sanitizer to build with.
    #[arg(long, value_enum, default_value = "address")]
    pub sanitizer: Sanitizer,
    /// Targets to run (all when none is named).
    pub targets: Vec<String>,
}

/// What one target's run did.
struct Outcome {
    target: &'static str,
    executions: Option<u64>,
    /// libFuzzer's average executions per second.
    rate: Option<u64>,
    seconds: u64,
    corpus: usize,
    /// `None` when it ran its time out cleanly; else what stopped it.
    failure: Option<String>,
}

/// Runs the named targets (all when none is named) for `args.seconds` each.
pub fn run(args: &Args) -> Result<()> {
    let mut targets = Vec::new();
    for name in &args.targets {
        match TARGETS.iter().find(|t| t.name == name) {
            Some(t) => targets.push(t),
            None => bail!(
                "no fuzz target {name:?}; there are: {}",
                TARGETS
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().collect();
    }
    fuzz(&targets, args.seconds, args.sanitizer)
}

/// Installs cargo-fuzz if missing, builds every target, writes the seeds of `targets`
/// and runs each for `seconds`; fails if any of them found something.
pub fn fuzz(targets: &[&Target], seconds: u64, sanitizer: Sanitizer) -> Result<()> {
    cargo_fuzz()?;
    let dirs = Dirs::new();
    let flags = build_flags(sanitizer);
    let mut build = cargo_fuzz_cmd("build");
    build.args(&flags);
    eprintln!("+ RUSTC_BOOTSTRAP=1 cargo fuzz build {}", flags.join(" "));
    crate::setup::status(build)?;
    let mut outcomes = Vec::new();
    for target in targets {
        let seeds = dirs.write_seeds(target.name)?;
        outcomes.push(run_target(target, seconds, &flags, &dirs, seeds)?);
    }
    println!(
        "fuzz: {:<16} {:>8} {:>12} {:>9} {:>7}  result",
        "target", "seconds", "executions", "exec/s", "corpus"
    );
    for o in &outcomes {
        let or_unknown = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
        let (execs, rate) = (or_unknown(o.executions), or_unknown(o.rate));
        println!(
            "fuzz: {:<16} {:>8} {:>12} {:>9} {:>7}  {}",
            o.target,
            o.seconds,
            execs,
            rate,
            o.corpus,
            o.failure.as_deref().unwrap_or("ok")
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| o.target)
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzzing found something in {} (the log and the input are named above; \
             reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run {} TARGET INPUT`)",
            failed.join(", "),
            flags.join(" ")
        );
    }
    Ok(())
}

/// Where the seeds, the grown corpora and the logs go: under `target/fuzz/`, which
/// git ignores. cargo-fuzz keeps its own `fuzz/artifacts/TARGET/` for the inputs
/// that crash.
struct Dirs {
    root: PathBuf,
    captures: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = workspace_root();
        Self {
            captures: root.join("../shared/captures"),
            root: root.join("target/fuzz"),
        }
    }

    fn seeds(&self, target: &str) -> PathBuf {
        self.root.join("seeds").join(target)
    }
    fn corpus(&self, target: &str) -> PathBuf {
        self.root.join("corpus").join(target)
    }
    fn log(&self, target: &str) -> PathBuf {
        self.root.join("logs").join(format!("{target}.log"))
    }

    /// Writes `target`'s seeds afresh; returns how many.
    fn write_seeds(&self, target: &str) -> Result<usize> {
        if !self.captures.is_dir() {
            eprintln!(
                "fuzz: {} is missing: seeds from the generators only",
                self.captures.display()
            );
        }
        let dir = self.seeds(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let seeds = crate::fuzz_seeds::for_target(target, &self.captures);
        for (name, bytes) in &seeds {
            let path = dir.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::create_dir_all(self.corpus(target))?;
        std::fs::create_dir_all(self.root.join("logs"))?;
        Ok(seeds.len())
    }
}

/// `cargo fuzz SUBCOMMAND`, from the workspace root, with nightly flags allowed.
fn cargo_fuzz_cmd(subcommand: &str) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["fuzz", subcommand])
        .current_dir(workspace_root())
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Installs cargo-fuzz [`CARGO_FUZZ_VERSION`] unless `cargo fuzz` is there.
fn cargo_fuzz() -> Result<()> {
    let present = cargo_fuzz_cmd("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("fuzz: cargo install cargo-fuzz@{CARGO_FUZZ_VERSION} --locked (about a minute)");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "install",
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        "--locked",
    ]);
    crate::setup::status(cmd)
}

/// Runs one target for `seconds` over its corpus and seeds, its output to its log.
fn run_target(
    target: &Target,
    seconds: u64,
    flags: &[&str],
    dirs: &Dirs,
    seeds: usize,
) -> Result<Outcome> {
    let corpus = dirs.corpus(target.name);
    let log_path = dirs.log(target.name);
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = cargo_fuzz_cmd("run");
    cmd.args(flags)
        .arg(target.name)
        .arg(&corpus)
        .arg(dirs.seeds(target.name))
        .arg("--")
        .args([
            format!("-max_total_time={seconds}"),
            format!("-max_len={}", target.max_len),
            format!("-timeout={TIMEOUT_SECS}"),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
            format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"),
            "-print_final_stats=1".to_owned(),
        ])
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!(
        "fuzz: {} for {seconds} s ({seeds} seeds, {} in the corpus; log {})",
        target.name,
        count_files(&corpus),
        log_path.display()
    );
    let status = cmd.status().context("running cargo fuzz")?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let failure = (!status.success()).then(|| {
        // What libFuzzer said, and where it left the input.
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("  | {line}");
        }
        let what = failure_kind(&text);
        match artifact(&text) {
            Some(input) => format!("{what}: {input}"),
            None => format!("{what} ({status})"),
        }
    });
    Ok(Outcome {
        target: target.name,
        executions: executions(&text),
        rate: stat(&text, "average_exec_per_sec"),
        seconds,
        corpus: count_files(&corpus),
        failure,
    })
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// The executions libFuzzer reports: its final statistics, or the last status line
/// (`#123456 pulse ...`) when it stopped on a finding.
fn executions(log: &str) -> Option<u64> {
    stat(log, "number_of_executed_units").or_else(|| {
        log.lines().rev().find_map(|l| {
            let n = l.strip_prefix('#')?.split_whitespace().next()?;
            n.parse().ok()
        })
    })
}

/// One of libFuzzer's final statistics (`stat::NAME: value`).
fn stat(log: &str, name: &str) -> Option<u64> {
    let prefix = format!("stat::{name}:");
    log.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
}

/// What kind of finding stopped libFuzzer.
fn failure_kind(log: &str) -> &'static str {
    if log.contains("ERROR: libFuzzer: timeout") {
        "timeout"
    } else if log.contains("out-of-memory") || log.contains("malloc limit") {
        "out of memory"
    } else if log.contains("panicked at")
        || log.contains("deadly signal")
        || log.contains("ERROR: AddressSanitizer")
    {
        "crash"
    } else {
        "failed"
    }
}

/// The input libFuzzer saved (`Test unit written to ./fuzz/artifacts/...`).
fn artifact(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        l.split_once("Test unit written to ")
            .map(|(_, p)| p.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_from_the_final_stats_or_the_last_status_line() {
        let done = "#1024\tpulse  cov: 10 ft: 12 corp: 3/20b exec/s: 512 rss: 40Mb\n\
                    Done 60123 runs in 31 second(s)\n\
                    stat::number_of_executed_units: 60123\n\
                    stat::average_exec_per_sec:     1939\n";
        assert_eq!(executions(done), Some(60123));
        assert_eq!(stat(done, "average_exec_per_sec"), Some(1939));
        let crashed = "#2048\tNEW    cov: 11 ft: 13 corp: 4/28b lim: 4 exec/s: 0 rss: 41Mb L: 3/4 MS: 1 ChangeBit-\n\
                       thread '<unnamed>' panicked at fuzz_targets/x.rs:3:5:\n\
                       ==1== ERROR: libFuzzer: deadly signal\n\
                       artifact_prefix='/w/fuzz/artifacts/x/'; Test unit written to /w/fuzz/artifacts/x/crash-ab\n";
        assert_eq!(executions(crashed), Some(2048));
        assert_eq!(failure_kind(crashed), "crash");
        assert_eq!(
            artifact(crashed).as_deref(),
            Some("/w/fuzz/artifacts/x/crash-ab")
        );
        assert_eq!(executions("nothing"), None);
        assert_eq!(
            failure_kind("==1== ERROR: libFuzzer: timeout after 10 seconds"),
            "timeout"
        );
        assert_eq!(
            failure_kind("==1== ERROR: libFuzzer: out-of-memory (malloc(300000000))"),
            "out of memory"
        );
    }

    /// The versions in a `Cargo.lock`, by package name.
    fn locked(path: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(path).expect("a lock file");
        let mut out = Vec::new();
        let mut name = None;
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_owned());
            } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
                out.push((n, v.trim_matches('"').to_owned()));
            }
        }
        out
    }

    /// The fuzz crate's own lock holds the versions the sensor ships with: what is
    /// fuzzed is what runs (`cargo update` in one wants the same in the other).
    #[test]
    fn the_fuzz_lock_has_the_versions_that_ship() {
        let root = workspace_root();
        let shipped = locked(&root.join("Cargo.lock"));
        let fuzzed = locked(&root.join("fuzz/Cargo.lock"));
        for (name, version) in &fuzzed {
            let versions: Vec<&str> = shipped
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            assert!(
                versions.is_empty() || versions.contains(&version.as_str()),
                "{name} {version} is fuzzed, {versions:?} ships"
            );
        }
        assert!(fuzzed.iter().any(|(n, _)| n == "libfuzzer-sys"));
    }

    #[test]
    fn every_target_has_a_file_and_seeds_from_the_generators() {
        let root = workspace_root();
        for target in TARGETS {
            let file = root
                .join("fuzz/fuzz_targets")
                .join(format!("{}.rs", target.name));
            assert!(file.is_file(), "{}", file.display());
            // Without ../shared every target still gets seeds (from synth or the repo);
            // with it, more, none longer than the target takes.
            let alone = crate::fuzz_seeds::for_target(target.name, Path::new("/nonexistent"));
            assert!(!alone.is_empty(), "{}", target.name);
            let shared = crate::fuzz_seeds::for_target(target.name, &Dirs::new().captures);
            assert!(shared.len() >= alone.len(), "{}", target.name);
            for (name, bytes) in alone.iter().chain(&shared) {
                assert!(
                    bytes.len() <= target.max_len,
                    "{}/{name}: {} bytes",
                    target.name,
                    bytes.len()
                );
            }
        }
    }
}
