//! Project tasks: `cargo xtask <command>`.

mod ebpf;
mod live;
mod setup;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "dns-sensor project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the BPF toolchain and test tools (Debian packages, bpf-linker); idempotent.
    Setup,
    /// Build the XDP program alone and report where the object is.
    BuildEbpf(ebpf::Args),
    /// Run the live-capture tests (root: BPF, AF_XDP, network namespaces).
    TestLive(live::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::BuildEbpf(args) => ebpf::run(&args),
        Command::TestLive(args) => live::run(&args),
    }
}
