//! Project tasks: `cargo xtask <task>`. Everything a developer or CI runs beyond plain
//! cargo lives here, so the README's commands stay one line each.

mod ci;

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Ci => ci::run(),
    }
}
