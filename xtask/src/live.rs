//! `cargo xtask test-live`: the tests that need root, `#[ignore]`d in plain `cargo test`:
//! the XDP program run through BPF_PROG_TEST_RUN, AF_XDP capture across veth pairs in
//! network namespaces (`dns-sensor/tests/live.rs`), and the journal output against a
//! private journald in a mount namespace (`dns-sensor/tests/journald.rs`).

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Options of `test-live`.
#[derive(clap::Args)]
pub struct Args {
    /// Only tests whose name contains this.
    filter: Option<String>,
    /// Build and test in release mode (for the throughput figures).
    #[arg(long)]
    release: bool,
}

/// The test files whose `#[ignore]`d tests need root.
pub const ROOT_TESTS: &[&str] = &["live", "journald"];

/// Runs the live tests one at a time (they create namespaces and attach XDP).
pub fn run(args: &Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the live tests load BPF, attach XDP and create network namespaces: run as root");
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["test", "-p", "dns-sensor"]);
    for test in ROOT_TESTS {
        cmd.args(["--test", test]);
    }
    if args.release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--ignored", "--test-threads=1", "--nocapture"]);
    match &args.filter {
        Some(f) => {
            cmd.arg(f);
        }
        // The benchmark takes a minute and means something only in release: on request.
        None => {
            cmd.args(["--skip", "bench_"]);
        }
    }
    let st = cmd.status().context("running cargo test")?;
    if !st.success() {
        bail!("live tests failed ({st})");
    }
    Ok(())
}
