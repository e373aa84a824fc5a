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

/// `cargo clippy -- -D warnings` on the XDP program, for its own target, with Debian's
/// compiler and clippy (package `rust-web-clippy`), the same flags as its build.
pub fn clippy() -> Result<()> {
    let root = crate::ci::workspace_root();
    let mut cmd = bpf_cargo(&root, "clippy", &root.join("target/bpf-clippy"));
    cmd.args(["--release", "--", "-D", "warnings"]);
    eprintln!(
        "+ rustup run {} cargo clippy (dns-sensor-ebpf, bpfel-unknown-none)",
        crate::setup::TOOLCHAIN
    );
    let st = cmd
        .status()
        .context("running clippy for the BPF target (run `cargo xtask setup`)")?;
    if !st.success() {
        bail!("clippy on dns-sensor-ebpf failed ({st})");
    }
    Ok(())
}

/// `rustup run debian cargo SUBCOMMAND --target bpfel-unknown-none` in the program's
/// folder, with build.rs's flags: aya-ebpf's #![feature]s only, BTF in the object.
fn bpf_cargo(root: &std::path::Path, subcommand: &str, target_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        crate::setup::TOOLCHAIN,
        "cargo",
        subcommand,
        "--target",
        "bpfel-unknown-none",
    ])
    .arg("--target-dir")
    .arg(target_dir)
    .current_dir(root.join("dns-sensor-ebpf"))
    .env("RUSTC_BOOTSTRAP", "aya_ebpf")
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        "--cfg=bpf_target_arch=\"x86_64\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf",
    )
    .env_remove("RUSTC")
    .env_remove("RUSTC_WORKSPACE_WRAPPER");
    cmd
}

/// Builds the object and prints its path.
pub fn run(args: &Args) -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    let target_dir = root.join("target/bpf");
    let mut cmd = bpf_cargo(&root, "build", &target_dir);
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
