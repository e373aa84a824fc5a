//! `cargo xtask build-ebpf`: builds the XDP program the way dns-sensor's build.rs does,
//! but on its own, into `target/bpf/`, to look at the object (llvm-objdump, bpftool).

use std::{path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};

/// Options of `build-ebpf`.
#[derive(clap::Args)]
pub struct Args {
    /// Build the debug profile instead of release.
    #[arg(long)]
    debug: bool,
}

/// Builds the object and prints its path.
pub fn run(args: &Args) -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    let target_dir = root.join("target/bpf");
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        crate::setup::TOOLCHAIN,
        "cargo",
        "build",
        "--target",
        "bpfel-unknown-none",
    ])
    .arg("--target-dir")
    .arg(&target_dir)
    .current_dir(root.join("dns-sensor-ebpf"))
    // Same values as build.rs: aya-ebpf's #![feature]s only, BTF in the object.
    .env("RUSTC_BOOTSTRAP", "aya_ebpf")
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        "--cfg=bpf_target_arch=\"x86_64\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf",
    )
    .env_remove("RUSTC")
    .env_remove("RUSTC_WORKSPACE_WRAPPER");
    if !args.debug {
        cmd.arg("--release");
    }
    let st = cmd
        .status()
        .context("running cargo for the BPF target (run `cargo xtask setup`)")?;
    if !st.success() {
        bail!("building dns-sensor-ebpf failed ({st}); `cargo xtask setup` installs the toolchain");
    }
    let profile = if args.debug { "debug" } else { "release" };
    println!(
        "{}",
        target_dir
            .join("bpfel-unknown-none")
            .join(profile)
            .join("dns-sensor-ebpf")
            .display()
    );
    Ok(())
}
