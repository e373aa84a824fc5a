//! What `fleet run` reported and when, kept in the state directory, so that a restart
//! (an upgrade, a reboot) does not report every domain of the window again.
//!
//! The file is text, one domain a line: the time of its last report (nanoseconds since
//! the epoch), a space, and the domain as every output escapes it (printable ASCII
//! without spaces). It is replaced whole after each evaluation, so that a crash leaves
//! the one before or the one after.

use std::path::{Path, PathBuf};

use crate::alert::{escape_name, unescape_name};
use crate::detect::Reports;
use crate::files::{read_text_limited, replace_file, shown};
use crate::Nanos;

/// The file's name in the state directory.
pub const REPORTS_FILE: &str = "fleet-reports";

/// Most bytes read back: a million reported domains of 60 bytes.
const MAX_REPORTS_BYTES: u64 = 64 << 20;

/// The reports file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportsFileError {
    /// Reading or writing it failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, escaped.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `NANOS DOMAIN`.
    #[error("{path}:{line}: not a report (`NANOS DOMAIN`)")]
    Line {
        /// The file, escaped.
        path: String,
        /// Its line, from 1.
        line: usize,
    },
}

/// Writes `reports` into `dir`.
pub fn save_reports(dir: &Path, reports: &Reports) -> Result<PathBuf, ReportsFileError> {
    let mut text = String::with_capacity(reports.len() * 40);
    for (domain, at) in reports.iter() {
        text.push_str(&at.to_string());
        text.push(' ');
        text.push_str(&escape_name(domain));
        text.push('\n');
    }
    replace_file(dir, REPORTS_FILE, text.as_bytes()).map_err(|source| ReportsFileError::Io {
        path: shown(&dir.join(REPORTS_FILE)),
        source,
    })
}

/// The reports kept in `dir`; none when it holds no file.
pub fn load_reports(dir: &Path) -> Result<Reports, ReportsFileError> {
    let path = dir.join(REPORTS_FILE);
    let text = match read_text_limited(&path, MAX_REPORTS_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Reports::new()),
        Err(source) => {
            return Err(ReportsFileError::Io {
                path: shown(&path),
                source,
            })
        }
    };
    let mut reports = Reports::new();
    for (i, line) in text.lines().enumerate() {
        let report = line.split_once(' ').and_then(|(at, domain)| {
            let at: Nanos = at.parse().ok()?;
            Some((unescape_name(domain)?, at))
        });
        match report {
            Some((domain, at)) if !domain.is_empty() => {
                reports.insert(domain.into_boxed_slice(), at);
            }
            _ => {
                return Err(ReportsFileError::Line {
                    path: shown(&path),
                    line: i + 1,
                })
            }
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dns-sensor-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("directory");
        dir
    }

    #[test]
    fn reports_come_back_as_written_hostile_names_included() {
        let dir = temporary_dir("reports-round-trip");
        let mut reports = Reports::new();
        reports.insert(b"tunnel.example"[..].into(), 1_800_000_000_000_000_000);
        reports.insert(b"a b\n\x1b[31m\xff.org"[..].into(), 7);
        save_reports(&dir, &reports).expect("written");
        let text = std::fs::read_to_string(dir.join(REPORTS_FILE)).expect("read");
        assert!(text
            .bytes()
            .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)));
        assert_eq!(text.lines().count(), 2);
        assert_eq!(load_reports(&dir).expect("read back"), reports);
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn no_file_is_no_report_and_a_bad_line_is_an_error_with_its_place() {
        let dir = temporary_dir("reports-bad");
        assert!(load_reports(&dir).expect("none").is_empty());
        std::fs::write(dir.join(REPORTS_FILE), "5 ok.org\nsoon bad.org\n").expect("write");
        let error = load_reports(&dir).expect_err("a bad line").to_string();
        assert!(
            error.ends_with("fleet-reports:2: not a report (`NANOS DOMAIN`)"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
