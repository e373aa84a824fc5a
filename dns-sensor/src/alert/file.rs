//! The file output: one JSON line per alert appended to a file, which is reopened on
//! SIGHUP so logrotate can move it away (`postrotate: systemctl kill -s HUP`, or
//! `systemctl reload`).
//!
//! Each evaluation's lines go out in one `write` on a file opened with `O_APPEND`, so
//! a reader tailing the file never sees half a line from the sensor, and a second
//! writer cannot interleave inside one. The file is created `0640` (owner and group
//! read it: alerts name clients and domains).

use crate::files::shown;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::format::LineFormat;
use super::{AlertError, Sink};
use crate::detect::Alert;

/// Appends alerts to a file as JSON lines.
pub struct FileSink {
    path: PathBuf,
    format: LineFormat,
    file: File,
    lines: Vec<u8>,
}

impl FileSink {
    /// Opens (creating it if need be) `path` for appending.
    pub fn open(path: &Path, format: LineFormat) -> Result<Self, AlertError> {
        Ok(Self {
            file: open_append(path)?,
            path: path.to_owned(),
            format,
            lines: Vec::new(),
        })
    }

    /// Whether [`open`](Self::open) would succeed, without creating the file: an
    /// existing one must be a file this process can append to; else its directory
    /// must exist and let this process create it. The error is the one `open` would
    /// give, naming the file.
    pub fn check(path: &Path) -> Result<(), AlertError> {
        let checked = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(std::io::ErrorKind::IsADirectory.into()),
            Ok(_) => OpenOptions::new().append(true).open(path).map(drop),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir,
                    _ => Path::new("."),
                };
                match std::fs::metadata(dir) {
                    Ok(meta) if meta.is_dir() => may_create_in(dir),
                    Ok(_) => Err(std::io::ErrorKind::NotADirectory.into()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        checked.map_err(|source| AlertError::File {
            path: shown(path),
            source,
        })
    }
}

/// Whether this process may create files in `dir` (write and search permission for its
/// effective user and groups), as the kernel would decide it.
pub(crate) fn may_create_in(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and
    // faccessat only reads it.
    let status = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn open_append(path: &Path) -> Result<File, AlertError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|source| AlertError::File {
            path: shown(path),
            source,
        })
}

impl Sink for FileSink {
    fn name(&self) -> String {
        format!("file {}", shown(&self.path))
    }

    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        self.lines.clear();
        for alert in alerts {
            self.format.write_line(alert, &mut self.lines);
        }
        self.file
            .write_all(&self.lines)
            .map_err(|source| AlertError::File {
                path: shown(&self.path),
                source,
            })
    }

    /// Opens the path anew: after a rotation the old file was renamed and alerts go to
    /// a fresh one. On failure the old file stays in use.
    fn reopen(&mut self) -> Result<bool, AlertError> {
        self.file = open_append(&self.path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::alert::format::Format;
    use crate::alert::test_alerts::sample_alert;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dns-sensor-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("readable")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    #[test]
    fn check_says_what_open_would_without_creating_anything() {
        let dir = temp_dir("check");
        let new = dir.join("alerts.json");
        FileSink::check(&new).expect("a new file in a directory that exists");
        assert!(!new.exists(), "checked, not created");
        std::fs::write(&new, b"").expect("create");
        FileSink::check(&new).expect("an existing file");
        let refused = |path: &Path| match FileSink::check(path) {
            Err(AlertError::File { path: named, .. }) => named,
            other => panic!("{}: {other:?}", path.display()),
        };
        assert_eq!(refused(&dir), dir.display().to_string());
        let nowhere = dir.join("missing").join("alerts.json");
        assert_eq!(refused(&nowhere), nowhere.display().to_string());
        let under_a_file = new.join("alerts.json");
        assert_eq!(refused(&under_a_file), under_a_file.display().to_string());
        assert!(!dir.join("missing").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn appends_lines_and_reopens_after_a_rotation() {
        let dir = temp_dir("rotate");
        let path = dir.join("alerts.json");
        std::fs::write(&path, "{\"kept\":true}\n").expect("an earlier line");
        let mut sink =
            FileSink::open(&path, LineFormat::new(Format::Ecs, "sensor1")).expect("opens");
        sink.deliver(&[sample_alert(), sample_alert()])
            .expect("written");
        let written = lines(&path);
        assert_eq!(written.len(), 3);
        assert_eq!(written[0]["kept"], true);
        assert_eq!(written[1]["event"]["kind"], "alert");
        assert_eq!(written[2]["observer"]["hostname"], "sensor1");

        // logrotate moves the file away; until the reopen the sensor still writes to it.
        let rotated = dir.join("alerts.json.1");
        std::fs::rename(&path, &rotated).expect("rotated");
        sink.deliver(&[sample_alert()]).expect("written");
        assert_eq!(lines(&rotated).len(), 4);
        assert!(!path.exists());
        assert!(sink.reopen().expect("reopened"));
        sink.deliver(&[sample_alert()]).expect("written");
        assert_eq!(lines(&path).len(), 1);
        assert_eq!(lines(&rotated).len(), 4);
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640 & !umask());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The process's umask, as the kernel reports it (setting it to read it would race
    /// with the other tests creating files).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").expect("readable");
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .expect("Umask line");
        u32::from_str_radix(line.trim(), 8).expect("octal")
    }

    #[test]
    fn errors_name_the_file() {
        let err = FileSink::open(
            Path::new("/nonexistent/dir/alerts.json"),
            LineFormat::reference(),
        )
        .err()
        .expect("cannot open");
        assert!(
            err.to_string().contains("/nonexistent/dir/alerts.json"),
            "{err}"
        );
    }
}
