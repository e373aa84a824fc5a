//! A real `systemd-journald` of the test's own: Debian's binary, started inside a
//! private mount and PID namespace (`unshare`) with tmpfs over `/run/systemd`,
//! `/run/log` and `/var/log/journal`, so it listens on its own
//! `/run/systemd/journal/socket` and writes a journal nobody else sees. The command
//! under test runs inside the same namespace; `journalctl -o json` reads the journal
//! back. Everything (journald, mounts) goes with the namespace when the script exits,
//! also on failure. Needs root.

use std::process::Command;

use serde_json::Value;

use super::TempDir;

/// What a command run beside a private journald gave.
pub struct Journaled {
    /// The command's exit status (97: journald did not come up).
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// Every journal entry, as `journalctl -o json` prints them.
    pub entries: Vec<Value>,
}

impl Journaled {
    /// Entries whose `field` is `value`.
    pub fn with(&self, field: &str, value: &str) -> Vec<&Value> {
        self.entries.iter().filter(|e| e[field] == value).collect()
    }
}

const SCRIPT: &str = r#"
set -eu
out=$1; shift
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald &
for _ in $(seq 200); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
[ -S /run/systemd/journal/socket ] || { echo "journald did not start" >&2; exit 97; }
set +e
if [ -n "${STDERR_AS_JOURNAL:-}" ]; then
  # What systemd does for a service: JOURNAL_STREAM names the device and inode of the
  # stream its stderr is; here a file stands in for the stream socket.
  : > "$out/stderr"
  export JOURNAL_STREAM=$(stat -c '%d:%i' "$out/stderr")
fi
"$@" > "$out/stdout" 2>> "$out/stderr"
echo $? > "$out/status"
set -e
journalctl --sync 2>/dev/null || sleep 0.5
journalctl -o json --no-pager > "$out/journal.json"
"#;

/// Runs `command` beside a private journald and reads the journal back. With
/// `stderr_is_journal`, the command is told (through `JOURNAL_STREAM`) that its stderr
/// is the journal, as a systemd service is.
pub fn run_with_journal(command: &[&std::ffi::OsStr], stderr_is_journal: bool) -> Journaled {
    let dir = TempDir::new("journal");
    let out = dir.path("");
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
        "bash",
        "-c",
        SCRIPT,
        "bash",
    ])
    .arg(&out)
    .args(command)
    .env("RUST_LOG", "info");
    if stderr_is_journal {
        cmd.env("STDERR_AS_JOURNAL", "1");
    }
    let run = cmd.output().expect("unshare runs");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let status = read("status");
    assert!(
        !status.is_empty(),
        "the script failed before the command ran: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    Journaled {
        code: status.trim().parse().unwrap_or(-1),
        stdout: read("stdout"),
        stderr: read("stderr"),
        entries: read("journal.json")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect(),
    }
}
