//! `cargo xtask deb` builds the Debian package with cargo-deb (the settings are in
//! `dns-sensor/Cargo.toml`, `[package.metadata.deb]`); `cargo xtask test-deb` installs,
//! runs, upgrades and purges it in a booted throw-away root
//! (`../shared/tools/fresh-machine --boot`, the checks in `xtask/test-deb.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::ci::workspace_root;

/// The cargo-deb release installed (`cargo install --locked`) when another or none is.
pub const CARGO_DEB_VERSION: &str = "3.8.0";

/// Debian packages cargo-deb runs: dpkg-shlibdeps (for `depends = "$auto"`).
const DEB_TOOLS: &[&str] = &["dpkg-dev"];

/// What `cargo deb` made.
pub struct Built {
    /// The package.
    pub deb: PathBuf,
    /// The debug symbols of its binary (a `-dbgsym` package), if made.
    pub dbgsym: Option<PathBuf>,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Installs cargo-deb [`CARGO_DEB_VERSION`] unless `cargo deb --version` says it is there.
fn cargo_deb() -> Result<()> {
    let current = cargo()
        .args(["deb", "--version"])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if current.split_whitespace().any(|w| w == CARGO_DEB_VERSION) {
        eprintln!("deb: cargo-deb {CARGO_DEB_VERSION} already installed");
        return Ok(());
    }
    eprintln!("deb: cargo install cargo-deb@{CARGO_DEB_VERSION} --locked (about 3 minutes)");
    let mut cmd = cargo();
    cmd.args([
        "install",
        &format!("cargo-deb@{CARGO_DEB_VERSION}"),
        "--locked",
        "--force",
    ]);
    crate::setup::status(cmd)
}

/// Builds the release binary and the package; returns the paths cargo-deb printed.
pub fn build() -> Result<Built> {
    // The binary embeds the XDP program: Debian's rustc and bpf-linker (idempotent).
    crate::setup::run()?;
    crate::setup::apt_packages(DEB_TOOLS)?;
    cargo_deb()?;
    eprintln!("+ cargo deb -p dns-sensor --locked");
    let out = cargo()
        .args(["deb", "-p", "dns-sensor", "--locked"])
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo deb")?;
    if !out.status.success() {
        bail!("cargo deb failed ({})", out.status);
    }
    parse_built(&String::from_utf8_lossy(&out.stdout))
}

/// The `.deb` and `.ddeb` paths among cargo-deb's output lines.
fn parse_built(stdout: &str) -> Result<Built> {
    let paths: Vec<PathBuf> = stdout.lines().map(|l| PathBuf::from(l.trim())).collect();
    let with = |ext: &str| {
        paths
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .cloned()
    };
    let deb = with("deb").with_context(|| format!("cargo deb printed no .deb path: {stdout}"))?;
    Ok(Built {
        deb,
        dbgsym: with("ddeb"),
    })
}

/// `cargo xtask deb`: builds the package and prints its path on stdout.
pub fn run() -> Result<()> {
    let built = build()?;
    if let Some(d) = &built.dbgsym {
        eprintln!("deb: debug symbols in {}", d.display());
    }
    eprintln!(
        "deb: install it with: apt-get install {}",
        built.deb.display()
    );
    println!("{}", built.deb.display());
    Ok(())
}

/// The fresh-machine tool, beside the project's checkout.
fn fresh_machine() -> PathBuf {
    workspace_root().join("../shared/tools/fresh-machine")
}

/// `cargo xtask test-deb`: builds the package on this machine, then in a booted copy of
/// a new machine's root installs it and runs `xtask/test-deb.sh`. Returns the passed
/// and failed check counts the script printed.
pub fn test() -> Result<(u64, u64)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("test-deb boots a throw-away root with systemd-nspawn: run as root");
    }
    let tool = fresh_machine();
    if !tool.is_file() {
        bail!(
            "{} is missing (clone the project next to shared/)",
            tool.display()
        );
    }
    let built = build()?;
    // The package and the script (from the work tree, like the package) go in through
    // a read-only bind mount; the copy's /build/proj is the committed HEAD.
    let stage = workspace_root().join("target/test-deb");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    std::fs::create_dir_all(&stage)?;
    std::fs::copy(&built.deb, stage.join("dns-sensor.deb")).context("staging the .deb")?;
    std::fs::copy(
        workspace_root().join("xtask/test-deb.sh"),
        stage.join("test-deb.sh"),
    )
    .context("staging test-deb.sh")?;
    let mut nspawn = std::env::var("FRESH_MACHINE_NSPAWN").unwrap_or_default();
    nspawn.push_str(&format!(" --bind-ro={}:/build/pkg", stage.display()));
    eprintln!(
        "+ FRESH_MACHINE_NSPAWN='{}' {} --boot -- bash /build/pkg/test-deb.sh /build/pkg/dns-sensor.deb",
        nspawn.trim(),
        tool.display()
    );
    let mut child = Command::new("bash")
        .arg(&tool)
        .args(["--boot", "--", "bash", "/build/pkg/test-deb.sh"])
        .arg("/build/pkg/dns-sensor.deb")
        .env("FRESH_MACHINE_NSPAWN", nspawn.trim())
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting fresh-machine")?;
    let mut counts = None;
    if let Some(out) = child.stdout.take() {
        use std::io::{BufRead, BufReader};
        for line in BufReader::new(out).lines() {
            let line = line.context("reading the test's output")?;
            println!("{line}");
            counts = parse_counts(&line).or(counts);
        }
    }
    let st = child.wait().context("waiting for fresh-machine")?;
    let (passed, failed) = counts.unwrap_or((0, 1));
    if !st.success() || failed > 0 || passed == 0 {
        bail!("test-deb failed ({st}; {passed} passed, {failed} failed)");
    }
    Ok((passed, failed))
}

/// The counts of the script's closing `test-deb: N passed, N failed` line.
fn parse_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test-deb: ")?;
    let (p, f) = rest.split_once(" passed, ")?;
    let f = f.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

/// Why `cargo xtask ci` does not run `test-deb` here, or `None` when it does. It runs
/// only as root, with `../shared/tools/fresh-machine` beside the checkout, outside any
/// fresh-machine run (the README's commands are checked inside one: no nesting), and
/// with the tool's base root already built and current (building it takes minutes
/// and the network: CI's warm machine has it, a brand-new one does not).
pub fn ci_skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let tool = fresh_machine();
    if !tool.is_file() {
        return Some(format!("no {}", tool.display()));
    }
    if let Some(inside) = inside_fresh_machine(Path::new("/")) {
        return Some(format!("inside a fresh-machine run ({inside}): no nesting"));
    }
    let root = std::env::var_os("FRESH_ROOT")
        .map_or_else(|| PathBuf::from("/var/tmp/fresh-root"), PathBuf::from);
    let list = std::env::var_os("FRESH_MACHINE_LIST").map_or_else(
        || tool.with_file_name("new-machine-packages.txt"),
        PathBuf::from,
    );
    match base_is_current(&root, &list, &tool) {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "fresh-machine's base root in {} is missing or stale (building it takes \
             minutes: run `cargo xtask test-deb` once by hand)",
            root.display()
        )),
        Err(e) => Some(format!(
            "cannot tell whether fresh-machine's base is built: {e:#}"
        )),
    }
}

/// The marker of a fresh-machine run seen from `root`: under `--boot`, nspawn's
/// container file `/run/systemd/container`; without it, the run's PID 1 (in the PID
/// namespace whose /proc the run mounts) is the fresh-machine script itself.
fn inside_fresh_machine(root: &Path) -> Option<String> {
    if let Ok(manager) = std::fs::read_to_string(root.join("run/systemd/container")) {
        return Some(format!("container {}", manager.trim()));
    }
    let init = std::fs::read(root.join("proc/1/cmdline")).unwrap_or_default();
    let init = String::from_utf8_lossy(&init);
    if init.contains("fresh-machine") {
        return Some("PID 1 is fresh-machine".into());
    }
    None
}

/// Whether fresh-machine would use its cached base as it is: `base.stamp` holds the
/// package list's sha256 on its first line and `recipe N` (the tool's `RECIPE=`) on
/// its second, as the tool itself checks.
fn base_is_current(root: &Path, list: &Path, tool: &Path) -> Result<bool> {
    let Ok(stamp) = std::fs::read_to_string(root.join("base.stamp")) else {
        return Ok(false);
    };
    let script = std::fs::read_to_string(tool).context("reading fresh-machine")?;
    let recipe = script
        .lines()
        .find_map(|l| l.strip_prefix("RECIPE="))
        .and_then(|r| r.split_whitespace().next())
        .context("fresh-machine has no RECIPE= line")?;
    let out = Command::new("sha256sum")
        .arg(list)
        .output()
        .context("running sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum {} failed", list.display());
    }
    let sha = String::from_utf8_lossy(&out.stdout);
    let sha = sha.split_whitespace().next().unwrap_or_default();
    let mut lines = stamp.lines();
    Ok(lines.next() == Some(sha)
        && lines.next() == Some(&format!("recipe {recipe}"))
        && root.join("base/bin/bash").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_deb_output_gives_both_paths() {
        let out = "/w/target/debian/dns-sensor-dbgsym_0.1.0-1_amd64.ddeb\n\
                   /w/target/debian/dns-sensor_0.1.0-1_amd64.deb\n";
        let built = parse_built(out).expect("paths");
        assert_eq!(
            built.deb,
            Path::new("/w/target/debian/dns-sensor_0.1.0-1_amd64.deb")
        );
        assert_eq!(
            built.dbgsym.as_deref(),
            Some(Path::new(
                "/w/target/debian/dns-sensor-dbgsym_0.1.0-1_amd64.ddeb"
            ))
        );
        assert!(parse_built("warning: nothing\n").is_err());
    }

    #[test]
    fn closing_line_counts_are_read() {
        assert_eq!(parse_counts("test-deb: 61 passed, 2 failed"), Some((61, 2)));
        assert_eq!(parse_counts("test-deb: ok: 3 passed, 0 failed"), None);
        assert_eq!(parse_counts("61 passed, 2 failed"), None);
    }

    /// A scratch folder under target/, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let p = workspace_root()
                .join("target/xtask-tests")
                .join(format!("{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("scratch dir");
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn fresh_machine_runs_are_recognised() {
        let s = Scratch::new("inside");
        std::fs::create_dir_all(s.0.join("proc/1")).unwrap();
        std::fs::write(s.0.join("proc/1/cmdline"), b"/sbin/init\0").unwrap();
        assert_eq!(inside_fresh_machine(&s.0), None);
        std::fs::write(
            s.0.join("proc/1/cmdline"),
            b"/bin/bash\0/build/shared/tools/fresh-machine\0__run-inner\0",
        )
        .unwrap();
        assert_eq!(
            inside_fresh_machine(&s.0).as_deref(),
            Some("PID 1 is fresh-machine")
        );
        std::fs::create_dir_all(s.0.join("run/systemd")).unwrap();
        std::fs::write(s.0.join("run/systemd/container"), "systemd-nspawn\n").unwrap();
        assert_eq!(
            inside_fresh_machine(&s.0).as_deref(),
            Some("container systemd-nspawn")
        );
    }

    #[test]
    fn base_counts_only_when_its_stamp_matches() {
        let s = Scratch::new("base");
        let list = s.0.join("list.txt");
        let tool = s.0.join("fresh-machine");
        std::fs::write(&list, "apt\tbash\t5.2\n").unwrap();
        std::fs::write(&tool, "#!/bin/bash\nRECIPE=2 # bump to rebuild\n").unwrap();
        let out = Command::new("sha256sum").arg(&list).output().unwrap();
        let sha = String::from_utf8(out.stdout).unwrap();
        let sha = sha.split_whitespace().next().unwrap().to_string();
        assert!(!base_is_current(&s.0, &list, &tool).unwrap(), "no stamp");
        std::fs::write(
            s.0.join("base.stamp"),
            format!("{sha}\nrecipe 2\nbuilt ...\n"),
        )
        .unwrap();
        assert!(
            !base_is_current(&s.0, &list, &tool).unwrap(),
            "no base/bin/bash"
        );
        std::fs::create_dir_all(s.0.join("base/bin")).unwrap();
        std::fs::write(s.0.join("base/bin/bash"), "").unwrap();
        assert!(base_is_current(&s.0, &list, &tool).unwrap());
        std::fs::write(s.0.join("base.stamp"), format!("{sha}\nrecipe 1\n")).unwrap();
        assert!(!base_is_current(&s.0, &list, &tool).unwrap(), "old recipe");
        std::fs::write(&list, "apt\tbash\t5.3\n").unwrap();
        std::fs::write(s.0.join("base.stamp"), format!("{sha}\nrecipe 2\n")).unwrap();
        assert!(
            !base_is_current(&s.0, &list, &tool).unwrap(),
            "list changed"
        );
    }
}
