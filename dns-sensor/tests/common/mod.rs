//! Helpers shared by the end-to-end tests: run the real `dns-sensor` binary and read
//! what it prints.

#![allow(dead_code)] // each test file uses its own subset

pub mod clickhouse;
pub mod hostile;
pub mod journal;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A capture under `../shared/captures/` (the project is cloned next to `shared/`).
pub fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/captures")
        .join(name)
}

/// What one run of `dns-sensor replay` gave.
pub struct Run {
    /// Exit status code.
    pub code: i32,
    /// Alerts, one per stdout line.
    pub alerts: Vec<Value>,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    /// The alerts for `domain`.
    pub fn for_domain(&self, domain: &str) -> Vec<&Value> {
        self.alerts
            .iter()
            .filter(|a| a["domain"] == domain)
            .collect()
    }

    /// The domains alerted, in output order.
    pub fn domains(&self) -> Vec<String> {
        self.alerts
            .iter()
            .map(|a| a["domain"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// Runs `dns-sensor ARGS...` and parses its output; every stdout line must be JSON.
pub fn dns_sensor<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let run = dns_sensor_text(args);
    let alerts = alerts_of(&run.stdout);
    Run {
        code: run.code,
        alerts,
        stderr: run.stderr,
    }
}

/// What a run of `dns-sensor` printed, for commands whose output is text.
pub struct TextRun {
    /// The exit status (-1 if killed by a signal).
    pub code: i32,
    /// Standard output, which must be UTF-8.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `dns-sensor ARGS...`, its output kept as text.
pub fn dns_sensor_text<I, S>(args: I) -> TextRun
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    dns_sensor_text_with_stdin(args, std::process::Stdio::null())
}

/// [`dns_sensor_text`] with `stdin` as the command's standard input.
pub fn dns_sensor_text_with_stdin<I, S>(args: I, stdin: impl Into<std::process::Stdio>) -> TextRun
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output: Output = Command::new(env!("CARGO_BIN_EXE_dns-sensor"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(stdin)
        .output()
        .expect("dns-sensor runs");
    TextRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `dns-sensor ARGS...` started with no standard input and its output piped.
fn spawn_piped<I, S>(args: I) -> std::process::Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::process::Stdio;
    Command::new(env!("CARGO_BIN_EXE_dns-sensor"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dns-sensor runs")
}

/// The alerts of a run's standard output, one JSON object a line.
fn alerts_of(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// [`dns_sensor`], killed and failed if it has not exited within `limit`: for inputs
/// that once made the sensor loop for ever.
pub fn dns_sensor_within<I, S>(limit: std::time::Duration, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let child = spawn_piped(args);
    let pid = child.id() as libc::pid_t;
    let (exited, exit_seen) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let timed_out = exit_seen.recv_timeout(limit).is_err();
        if timed_out {
            // SAFETY: kill(2) takes any pid and touches no memory of ours. Only when the
            // limit passed without the exit being sent: a child reaped in the instant
            // between would make this reach a free pid, and the limits are many times
            // what the runs take.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        timed_out
    });
    let output = child.wait_with_output().expect("output");
    let _ = exited.send(());
    let timed_out = watchdog.join().expect("watchdog");
    assert!(!timed_out, "dns-sensor still running after {limit:?}");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    Run {
        code: output.status.code().unwrap_or(-1),
        alerts: alerts_of(&stdout),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`dns_sensor`], and the most resident memory the process had, in KiB (its
/// `ru_maxrss`, read when it is reaped). The figure includes the moment between fork
/// and exec, when the child still maps the test process's pages: compare runs made
/// from a test process of the same size, or write captures without holding them.
// The child is reaped by wait4, which std's Child does not know of.
#[allow(clippy::zombie_processes)]
pub fn dns_sensor_peak_rss<I, S>(args: I) -> (Run, u64)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::Read;
    let mut child = spawn_piped(args);
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).expect("read");
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, not reaped yet (std's Child never waited on it).
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(reaped > 0, "wait4: {}", std::io::Error::last_os_error());
    let stdout = String::from_utf8(stdout.join().expect("stdout")).expect("stdout is UTF-8");
    let run = Run {
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        alerts: alerts_of(&stdout),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr")).into_owned(),
    };
    (run, usage.ru_maxrss as u64)
}

/// The JSON summary `--summary json` prints as the last line of stderr.
pub fn json_summary(stderr: &str) -> Value {
    let last = stderr.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON summary ({e}): {stderr}"))
}

/// Writes `traffic` to a capture and replays it with `flags`; the run must succeed.
pub fn replay(name: &str, traffic: dns_sensor::synth::scenario::Traffic, flags: &[&str]) -> Run {
    let dir = TempDir::new(name);
    let file = dir.path("capture.pcap");
    traffic.write_pcap(&file).expect("write capture");
    let mut args: Vec<std::ffi::OsString> = vec!["replay".into()];
    args.extend(flags.iter().map(|f| f.into()));
    args.push(file.into_os_string());
    let run = dns_sensor(args);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    run
}

/// A fresh directory for one test's files, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/dns-sensor-test-<name>-<pid>-<n>`, `n` counting the directories
    /// this process made (tests of one binary run in parallel).
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("dns-sensor-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// A path inside the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
