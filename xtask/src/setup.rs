//! `cargo xtask setup`: installs what building the XDP program and running the live tests
//! need, from a fresh Debian 12 machine. Idempotent: each step checks first and does
//! nothing when already done.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Debian packages: Debian's rustc with a prebuilt `core` for BPF (rustup's toolchains
/// here have no rust-src), LLVM 22 for bpf-linker, libxdp/libbpf build deps for xsk-rs,
/// the tools the network-namespace tests drive, and the SMTP server the email output's
/// tests send to (aiosmtpd, for Debian's python3: the tests look in /usr/bin/python3
/// first), and what `cargo xtask bench-instructions` and `bench-replay --side-by-side`
/// run: valgrind (callgrind counts instructions) and dnstop (the tool the sensor is
/// compared with), promtool (in Debian's prometheus package), which the metrics
/// endpoint's tests lint its text with, and ClickHouse (18.16), which the fleet's tests
/// start on loopback (its service is installed disabled and does not start).
const PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev-bpf",
    "rust-web-clippy",
    "llvm-22-dev",
    "clang",
    "llvm",
    "libelf-dev",
    "zlib1g-dev",
    "m4",
    "pkg-config",
    "iproute2",
    "iputils-ping",
    "iodine",
    "dnsutils",
    "tcpdump",
    "python3-aiosmtpd",
    "valgrind",
    "dnstop",
    "prometheus",
    "clickhouse-server",
    "python3-venv",
];

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
/// The rustup toolchain name dns-sensor's build.rs uses for the BPF target.
pub const TOOLCHAIN: &str = "debian";

/// Runs every step.
pub fn run() -> Result<()> {
    apt_packages(PACKAGES)?;
    no_servers_at_boot();
    rustup_link()?;
    bpf_linker()?;
    chdb()?;
    eprintln!("setup: done. `cargo build -p dns-sensor` now builds and embeds the XDP program.");
    Ok(())
}

/// Where chdb goes (PyPI: ClickHouse's current engine in-process, which the fleet's
/// tests run the schema and the fleet query on beside Debian's 18.16): a virtual
/// environment of Debian's python3, outside the project so a fresh clone reuses it.
/// About 900 MB; 45-50 s to install here.
const CHDB_VENV: &str = "/opt/dns-sensor-chdb";
/// The chdb the tests were written against (its engine: ClickHouse 26.9).
const CHDB_VERSION: &str = "4.4.0";

fn chdb() -> Result<()> {
    let python = format!("{CHDB_VENV}/bin/python");
    let check = format!("import sys, chdb; sys.exit(chdb.__version__ != '{CHDB_VERSION}')");
    let present = Command::new(&python)
        .args(["-c", &check])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if present {
        eprintln!("setup: chdb {CHDB_VERSION} already in {CHDB_VENV}");
        return Ok(());
    }
    eprintln!("setup: installing chdb {CHDB_VERSION} into {CHDB_VENV}");
    status(root_cmd(&["/usr/bin/python3", "-m", "venv", CHDB_VENV]))?;
    let pip = format!("{CHDB_VENV}/bin/pip");
    let wanted = format!("chdb=={CHDB_VERSION}");
    status(root_cmd(&[&pip, "install", "-q", &wanted]))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `cmd` as root: directly when we are root, else through sudo.
fn root_cmd(args: &[&str]) -> Command {
    let mut cmd;
    if is_root() {
        cmd = Command::new(args[0]);
        cmd.args(&args[1..]);
    } else {
        cmd = Command::new("sudo");
        cmd.args(args);
    }
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// Runs `cmd`, failing with its command line and status unless it succeeds.
pub fn status(mut cmd: Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs those of `packages` that are not installed (`apt-get update` first, only
/// then).
pub fn apt_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("setup: Debian packages already installed");
        return Ok(());
    }
    eprintln!("setup: installing {}", missing.join(" "));
    status(root_cmd(&["apt-get", "update", "-q"]))?;
    let mut args = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    status(root_cmd(&args))
}

/// The prometheus package is here for its promtool and clickhouse-server for the tests,
/// which start their own: on a machine run by systemd, the servers the packages enable
/// (and prometheus's starts) are stopped and disabled.
fn no_servers_at_boot() {
    if std::path::Path::new("/run/systemd/system").exists() {
        let mut cmd = root_cmd(&[
            "systemctl",
            "disable",
            "--now",
            "--quiet",
            "prometheus.service",
            "clickhouse-server.service",
        ]);
        let _ = cmd.status();
    }
}

fn rustup_link() -> Result<()> {
    if Command::new("rustup").arg("--version").output().is_err() {
        eprintln!("setup: no rustup: build.rs will use the cargo and rustc on PATH");
        return Ok(());
    }
    let works = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--print", "sysroot"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "/usr")
        .unwrap_or(false);
    if works {
        eprintln!("setup: rustup toolchain `{TOOLCHAIN}` already links /usr");
        return Ok(());
    }
    eprintln!("setup: rustup toolchain link {TOOLCHAIN} /usr");
    let mut cmd = Command::new("rustup");
    cmd.args(["toolchain", "link", TOOLCHAIN, "/usr"]);
    status(cmd)
}

fn bpf_linker() -> Result<()> {
    let current = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if current.contains(BPF_LINKER_VERSION) {
        eprintln!("setup: bpf-linker {BPF_LINKER_VERSION} already installed");
        return Ok(());
    }
    eprintln!("setup: cargo install bpf-linker@{BPF_LINKER_VERSION} (LLVM 22, about 2 minutes)");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "install",
        &format!("bpf-linker@{BPF_LINKER_VERSION}"),
        "--no-default-features",
        "--features",
        "llvm-22",
        "--locked",
        "--force",
    ])
    // Without it, bpf-linker's build finds LLVM 14's llvm-config and fails on -lLLVM.
    .env("LLVM_PREFIX", LLVM_PREFIX);
    status(cmd)
}
