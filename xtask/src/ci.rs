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
    run_cmd_env(program, args, &[])
}

/// As [`run_cmd`], with extra environment variables.
pub fn run_cmd_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Installs what is missing, then formatting, lints, docs, every test of the workspace,
/// every fuzz target for [`CI_SECONDS`](crate::fuzz::CI_SECONDS), (as root) the
/// live-capture tests in network namespaces, and (as root, outside a fresh root, with
/// fresh-machine's base built) the package's test.
pub fn run() -> anyhow::Result<()> {
    let shared = workspace_root().join("../shared/captures");
    if !shared.is_dir() {
        bail!(
            "{} is missing: the tests replay the captures there (clone the project next to shared/)",
            shared.display()
        );
    }
    // Building the workspace embeds the XDP program, which needs Debian's compiler and
    // bpf-linker; the live tests need iodine, tcpdump, dig. Idempotent.
    crate::setup::run()?;
    run_cmd("cargo", &["fmt", "--all", "--check"])?;
    // The XDP program is outside the workspace: formatted and linted on its own.
    run_cmd(
        "cargo",
        &[
            "fmt",
            "--manifest-path",
            "dns-sensor-ebpf/Cargo.toml",
            "--check",
        ],
    )?;
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
    crate::ebpf::clippy()?;
    // The fuzz targets are a workspace of their own too (fuzz/).
    run_cmd(
        "cargo",
        &["fmt", "--manifest-path", "fuzz/Cargo.toml", "--check"],
    )?;
    run_cmd(
        "cargo",
        &[
            "clippy",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Every public item is documented, and the docs' links resolve.
    run_cmd_env(
        "cargo",
        &["doc", "--workspace", "--no-deps", "--quiet"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    let mut totals = run_tests(&["test", "--workspace"])?;
    totals.add(&run_tests(&[
        "test",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--lib",
    ])?);
    // Every fuzz target for a short while from fresh seeds: a crash, hang or
    // out-of-memory fails the run (`cargo xtask fuzz` runs them longer).
    let targets: Vec<&crate::fuzz::Target> = crate::fuzz::TARGETS.iter().collect();
    crate::fuzz::fuzz(
        &targets,
        crate::fuzz::CI_SECONDS,
        crate::fuzz::Sanitizer::Address,
    )?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // One at a time: they create namespaces, attach XDP, start journald. The
        // throughput benchmarks mean something only in release and on request
        // (`cargo xtask test-live --release bench`).
        let mut args = vec!["test", "-p", "dns-sensor"];
        for test in crate::live::ROOT_TESTS {
            args.extend(["--test", test]);
        }
        args.extend(["--", "--ignored", "--test-threads=1", "--skip", "bench_"]);
        let live = run_tests(&args)?;
        totals.add(&live);
    } else {
        eprintln!(
            "ci: not root, the tests that need it (live capture, journald: cargo xtask test-live) were not run"
        );
    }
    // The package, installed and run under its own unit in a booted fresh root: only
    // where that is safe and cheap (crate::deb::ci_skip_reason says when).
    match crate::deb::ci_skip_reason() {
        None => {
            let (passed, failed) = crate::deb::test()?;
            totals.add(&Totals {
                passed,
                failed,
                ignored: 0,
            });
        }
        Some(why) => eprintln!("ci: test-deb skipped: {why}"),
    }
    // One closing line for the whole run: cargo prints one per test binary, the last
    // of which is often an empty doc-test run.
    println!(
        "ci: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if totals.failed > 0 || totals.passed == 0 {
        bail!("tests failed");
    }
    Ok(())
}

/// Test counts summed over cargo's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests ignored.
    pub ignored: u64,
}

impl Totals {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    /// Adds the counts of one `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs `cargo ARGS`, echoing its output, and sums the test results it printed.
fn run_tests(args: &[&str]) -> anyhow::Result<Totals> {
    use std::io::{BufRead, BufReader};
    eprintln!("+ cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo")?;
    let mut totals = Totals::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading cargo's output")?;
            println!("{line}");
            totals.add_line(&line);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        println!(
            "ci: {} passed, {} failed, {} skipped",
            totals.passed,
            totals.failed.max(1),
            totals.ignored
        );
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn test_result_lines_are_summed() {
        let mut totals = Totals::default();
        totals.add_line("test result: ok. 138 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 3.60s");
        totals.add_line("running 2 tests");
        totals.add_line(
            "test result: FAILED. 9 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        assert_eq!(
            totals,
            Totals {
                passed: 147,
                failed: 1,
                ignored: 1
            }
        );
    }
}
