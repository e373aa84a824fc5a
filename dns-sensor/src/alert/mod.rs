//! Alert: turns [`Alert`]s into output. Owns the output formats (the reference JSON
//! line), the escaping of attacker-controlled names, and the [`Sink`] interface every
//! output implements.
//!
//! - [`text`]: names, query types and times as people read them, the one-line summary
//!   and the alert's id;
//! - [`mod@reference`] and [`ecs`]: the JSON documents, chosen by [`Format`];
//! - the outputs: [`lines`] (stdout), [`mod@file`], [`journald`], [`email`]; [`outputs`] opens those a
//!   run's settings ask for.

pub mod ecs;
pub mod email;
pub mod file;
pub mod format;
pub mod journald;
pub mod lines;
pub mod outputs;
pub mod reference;
pub mod text;

pub use ecs::EcsAlert;
pub use file::FileSink;
pub use format::{Format, LineFormat};
pub use journald::JournaldSink;
pub use lines::JsonLines;
pub use outputs::{AtLeast, FileSettings, OutputSettings};
pub use reference::{to_json, AlertJson, ClientJson, QtypeCounts};
pub use text::{
    alert_id, escape_name, evidence_figures, qtype_name, rfc3339, severity_tag, summary_line,
    unescape_name, Figure,
};

use crate::detect::Alert;

/// Somewhere alerts go. The coordinator hands every output the alerts of each
/// evaluation that has any; an output that fails is logged and counted, and the others
/// and detection go on.
pub trait Sink: Send {
    /// What the output is, for log lines (`stdout`, `journald`, `file /var/log/...`).
    fn name(&self) -> String;
    /// Delivers the alerts of one evaluation, most unique hostnames first; never empty.
    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError>;
    /// Flushes anything buffered; called when the run ends.
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(())
    }
    /// Reopens what the output writes to (after logrotate moved a file away: SIGHUP).
    /// `false` when the output has nothing to reopen.
    fn reopen(&mut self) -> Result<bool, AlertError> {
        Ok(false)
    }
    /// What an output that queues its deliveries (email) has done with them so far;
    /// `None` for one that delivers at once.
    fn queue_stats(&self) -> Option<QueueStats> {
        None
    }
}

/// The deliveries of an output that queues them, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Which output (`email`).
    pub output: &'static str,
    /// Deliveries made.
    pub sent: u64,
    /// Attempts that failed (each is logged; a delivery can take several).
    pub failed_attempts: u64,
    /// Deliveries given up after their last attempt.
    pub given_up: u64,
    /// Deliveries dropped because the queue was full.
    pub dropped: u64,
    /// Deliveries queued or under way.
    pub queued: u64,
    /// Alerts held back because their severity is under the output's `min_severity`
    /// ([`outputs::AtLeast`]).
    pub below_severity: u64,
}

/// An alert that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Writing failed.
    #[error("writing alert: {0}")]
    Io(#[from] std::io::Error),
    /// The journal could not be reached or refused the entry.
    #[error("journald ({socket}): {0}", socket = journald::JOURNAL_SOCKET)]
    Journal(std::io::Error),
    /// A file output could not be opened or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An output the settings ask for could not start (`output` names its table).
    #[error("output.{output}: {reason}")]
    Start {
        /// `email`...
        output: &'static str,
        /// Why.
        reason: String,
    },
    /// The email output could not take a message.
    #[error(transparent)]
    Email(#[from] email::EmailError),
}

#[cfg(test)]
pub(crate) mod test_alerts;
