//! Project tasks: `cargo xtask <task>`. Everything a developer or CI runs beyond plain
//! cargo lives here, so the README's commands stay one line each.

mod bench_instructions;
mod bench_pipeline;
mod callgrind;
mod captures;
mod ci;
mod compare;
mod deb;
mod ebpf;
mod fuzz;
mod fuzz_seeds;
mod live;
mod psl;
mod setup;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The sensor binary's allocator, so that the benchmarks run here measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "dns-sensor project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Installs what the tests need, then runs every check and test CI runs.
    Ci,
    /// Generates a capture with the demo tunnel and replays it: prints a real alert.
    Demo,
    /// Writes a generated capture (scenarios: demo, resolver, mix, window, flood).
    Gen {
        /// Which scenario.
        scenario: String,
        /// Output file (default target/captures/SCENARIO.pcap).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Frames, for scenarios that take a size.
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
    },
    /// Benchmarks replay throughput (frames/s, one worker) on a generated capture, or
    /// (--against-dnstop) its whole-process wall time pinned to one core beside dnstop's.
    BenchReplay(captures::BenchReplay),
    /// Counts instructions per frame (valgrind's callgrind) for the sensor and dnstop on
    /// resolver-shaped captures of several sizes, and splits the sensor's into steps.
    BenchInstructions(bench_instructions::Args),
    /// Benchmarks the whole pipeline (N workers and the coordinator) over a generated
    /// mix held in memory, and the per-frame cost of each step.
    BenchPipeline {
        /// Frames in the generated mix.
        #[arg(long, default_value_t = 2_000_000)]
        frames: u64,
        /// Runs per measurement; medians are reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Worker counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Which traffic.
        #[arg(long, value_enum, default_value = "resolver")]
        scenario: captures::Scenario,
    },
    /// Refreshes the embedded Public Suffix List and its provenance note.
    RefreshPsl(psl::RefreshPsl),
    /// Installs the BPF toolchain and live-test tools (apt, bpf-linker); idempotent.
    Setup,
    /// Builds the XDP program alone and prints where the object is.
    BuildEbpf(ebpf::Args),
    /// Runs the live-capture tests (root: BPF, AF_XDP, network namespaces).
    TestLive(live::Args),
    /// Runs the fuzz targets of fuzz/ (cargo-fuzz, installed if missing) for a while
    /// each, from seeds cut from the shared captures and made by the generators.
    Fuzz(fuzz::Args),
    /// Builds the Debian package (cargo-deb, installed if missing) and prints its path.
    Deb,
    /// Builds the package, then installs, runs, upgrades and purges it in a booted
    /// throw-away root (root; ../shared/tools/fresh-machine --boot).
    TestDeb,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Ci => ci::run(),
        Task::Demo => captures::demo(),
        Task::Gen {
            scenario,
            out,
            frames,
        } => {
            let out = out.unwrap_or_else(|| captures::out_dir().join(format!("{scenario}.pcap")));
            let written = captures::generate(&scenario, &out, frames)?;
            eprintln!("wrote {} ({written} frames)", out.display());
            Ok(())
        }
        Task::BenchReplay(args) => captures::bench_replay(&args),
        Task::BenchInstructions(args) => bench_instructions::run(&args),
        Task::BenchPipeline {
            frames,
            runs,
            workers,
            scenario,
        } => bench_pipeline::run(frames, runs, &workers, scenario),
        Task::RefreshPsl(args) => psl::refresh(&args),
        Task::Setup => setup::run(),
        Task::BuildEbpf(args) => ebpf::run(&args),
        Task::TestLive(args) => live::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Deb => deb::run(),
        Task::TestDeb => deb::test().map(|_| ()),
    }
}
