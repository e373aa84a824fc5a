//! Builds the XDP program (`../dns-sensor-ebpf`) for `bpfel-unknown-none` and leaves the
//! object at `$OUT_DIR/dns-sensor-ebpf`, which `capture::xdp` embeds.
//!
//! The rustup toolchains here have no `rust-src`, so the program is compiled with
//! Debian's rustc (prebuilt `core` for the BPF targets, package
//! `libstd-rust-web-dev-bpf`), reached as the rustup toolchain `debian` (a link to
//! `/usr`), and linked by `bpf-linker` built against the same LLVM. `cargo xtask setup`
//! installs all of it. Without the `live` feature (how `xtask` itself is built, since it
//! must run before that set-up) there is no live capture and nothing is built here.

use std::{env, path::PathBuf, process::Command};

/// Environment variable naming the rustup toolchain that builds the program.
const TOOLCHAIN_ENV: &str = "DNS_SENSOR_BPF_TOOLCHAIN";
/// The toolchain `cargo xtask setup` links to Debian's compiler.
const DEFAULT_TOOLCHAIN: &str = "debian";
const EBPF_PACKAGE: &str = "dns-sensor-ebpf";

fn main() {
    println!("cargo:rerun-if-env-changed={TOOLCHAIN_ENV}");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_LIVE").is_none() {
        return;
    }

    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("dns-sensor lives inside the workspace");
    let ebpf_dir = root.join(EBPF_PACKAGE);
    let common_dir = root.join("dns-sensor-common");
    // aya-build watches the program's directory; the shared types matter as much.
    println!(
        "cargo:rerun-if-changed={}",
        common_dir.join("src").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        common_dir.join("Cargo.toml").display()
    );

    let toolchain = env::var(TOOLCHAIN_ENV).unwrap_or_else(|_| DEFAULT_TOOLCHAIN.to_owned());
    if let Err(missing) = check_tools(&toolchain) {
        eprintln!(
            "\nerror: dns-sensor embeds its XDP program, which needs Debian's rustc (rustup \
             toolchain `{toolchain}`) and bpf-linker 0.13 built for LLVM 22:\n  {missing}\n\n\
             Run `cargo xtask setup` once (installs both, idempotent), then build again.\n\
             To build without live capture (replay only): --no-default-features.\n"
        );
        std::process::exit(1);
    }

    // The inner cargo must run from the program's directory: it is not a member of this
    // workspace (the workspace builds with rustup's stable, which cannot target BPF).
    env::set_current_dir(&ebpf_dir).expect("enter dns-sensor-ebpf");
    // aya-ebpf uses #![feature]: allow it for that crate only. RUSTC_BOOTSTRAP=1 would make
    // aya-build ask for -Z build-std=core, which needs rust-src. Always the same value, so
    // the inner cargo's fingerprints stay valid between builds.
    env::set_var("RUSTC_BOOTSTRAP", "aya_ebpf");
    let ebpf_dir = ebpf_dir.to_str().expect("workspace path is UTF-8");
    let package = aya_build::Package {
        name: EBPF_PACKAGE,
        root_dir: ebpf_dir,
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([package], aya_build::Toolchain::Custom(&toolchain)) {
        eprintln!("\nerror: building the XDP program failed: {e:#}\n(if the tools are missing or stale, run `cargo xtask setup`)\n");
        std::process::exit(1);
    }
}

/// Checks that the toolchain has a prebuilt `core` for BPF and that bpf-linker runs.
fn check_tools(toolchain: &str) -> Result<(), String> {
    let linker = Command::new("bpf-linker").arg("--version").output();
    match linker {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Err(format!("`bpf-linker --version` failed: {}", out.status)),
        Err(e) => return Err(format!("bpf-linker not found on PATH ({e})")),
    }
    let sysroot = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .output();
    let sysroot = match sysroot {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => {
            return Err(format!(
                "rustup toolchain `{toolchain}` unusable: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
            ))
        }
        // No rustup: aya-build then uses the cargo/rustc on PATH.
        Err(_) => PathBuf::from("/usr"),
    };
    let core = sysroot.join("lib/rustlib/bpfel-unknown-none/lib");
    if !core.is_dir() {
        return Err(format!(
            "{} missing (package libstd-rust-web-dev-bpf)",
            core.display()
        ));
    }
    Ok(())
}
