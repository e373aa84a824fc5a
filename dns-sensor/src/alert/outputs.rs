//! Which outputs a run writes to, and opening them.

use std::path::PathBuf;

use super::email::{EmailSettings, EmailSink};
use super::file::FileSink;
use super::format::{Format, LineFormat};
use super::journald::JournaldSink;
use super::lines::JsonLines;
use super::text::host_name;
use super::{AlertError, Sink};

/// Every output of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputSettings {
    /// JSON lines on stdout, in this format.
    pub stdout: Option<Format>,
    /// One journal entry per alert.
    pub journald: bool,
    /// One mail per evaluation.
    pub email: Option<EmailSettings>,
    /// JSON lines appended to a file.
    pub file: Option<FileSettings>,
}

/// The file output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSettings {
    /// The file.
    pub path: PathBuf,
    /// The document written.
    pub format: Format,
}

impl OutputSettings {
    /// Whether [`open`](Self::open) would succeed, with no side effect: the journal
    /// reachable, the file output's file or directory writable (nothing created), the
    /// email output's addresses, certificates and TLS set-up usable (nothing sent). The
    /// first output that would fail is the error, as `open` reports it.
    pub fn check(&self) -> Result<(), AlertError> {
        if self.journald {
            JournaldSink::open()?;
        }
        if let Some(file) = &self.file {
            FileSink::check(&file.path)?;
        }
        if let Some(email) = &self.email {
            EmailSink::check(email).map_err(|e| AlertError::Start {
                output: "email",
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Opens every output; the first that cannot be opened is the error (an output the
    /// settings ask for and cannot work is a start-up problem, not a silent loss).
    pub fn open(&self) -> Result<Vec<Box<dyn Sink>>, AlertError> {
        let hostname = host_name();
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(format) = self.stdout {
            sinks.push(Box::new(JsonLines::with_format(
                std::io::stdout(),
                LineFormat::new(format, &hostname),
            )));
        }
        if self.journald {
            sinks.push(Box::new(JournaldSink::open()?));
        }
        if let Some(file) = &self.file {
            sinks.push(Box::new(FileSink::open(
                &file.path,
                LineFormat::new(file.format, &hostname),
            )?));
        }
        if let Some(email) = &self.email {
            let sink = EmailSink::start(email).map_err(|e| AlertError::Start {
                output: "email",
                reason: e.to_string(),
            })?;
            sinks.push(Box::new(sink));
        }
        Ok(sinks)
    }
}
