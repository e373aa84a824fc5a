//! `cargo xtask ci`: the one command that checks and tests everything, on a fresh
//! machine as on a warm one.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The workspace root (xtask sits one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Runs `program args` in the workspace root, failing with the command line if it fails.
pub fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Formatting, lints, then every test of the workspace.
pub fn run() -> anyhow::Result<()> {
    let shared = workspace_root().join("../shared/captures");
    if !shared.is_dir() {
        bail!(
            "{} is missing: the tests replay the captures there (clone the project next to shared/)",
            shared.display()
        );
    }
    run_cmd("cargo", &["fmt", "--all", "--check"])?;
    run_cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run_cmd("cargo", &["test", "--workspace"])?;
    Ok(())
}
