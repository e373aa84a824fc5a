//! Project chores: `cargo xtask <command>` (the alias is in `.cargo/config.toml`).

mod psl;

use clap::{Parser, Subcommand};

/// dns-sensor's development tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Refresh the embedded Public Suffix List and its provenance note.
    RefreshPsl(psl::RefreshPsl),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::RefreshPsl(args) => psl::refresh(&args),
    }
}
