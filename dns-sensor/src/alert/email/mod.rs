//! The email output: one message per evaluation listing every alerting domain, sent
//! over SMTP without ever holding detection up.
//!
//! - [`settings`]: what the output is configured with, and the credentials file;
//! - `message`: one evaluation's alerts as one mail (headers and the text body);
//! - `transport`: the SMTP client (TLS mode, trusted roots, AUTH, timeout);
//! - `sender`: the thread that sends, its bounded queue and the retries;
//! - [`EmailSink`], here: the [`Sink`] that composes on the coordinator's thread and
//!   hands the message to the sender without waiting.
//!
//! Errors carry their cause in their text (no `source` chain to print twice).
//!
//! Built on lettre (blocking SMTP client and message builder, rustls with ring, no
//! async runtime): see the workspace's Cargo.toml for why these features.

mod message;
mod sender;
pub mod settings;
mod transport;

use std::time::{Duration, Instant, SystemTime};

pub use sender::EmailStats;
pub use settings::{Credentials, CredentialsError, Delivery, EmailSettings, TlsMode};

use super::text::{escape_name, host_name};
use super::{AlertError, QueueStats, Sink};
use crate::detect::Alert;
use message::Composer;
use sender::{Outgoing, Sender};

/// Why the email output cannot start, or could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// `from` or a `to` that is not a mail address.
    #[error("`{field}` is not a mail address: {value:?} ({reason})")]
    Address {
        /// `from` or `to`.
        field: &'static str,
        /// What was written.
        value: String,
        /// lettre's reason.
        reason: lettre::address::AddressError,
    },
    /// No `to` at all.
    #[error("`to` needs at least one address")]
    NoRecipient,
    /// A subject of more than one line.
    #[error("`subject` must be one line")]
    Subject,
    /// The `ca_file` cannot be read or holds no usable certificate.
    #[error("ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TLS client could not be set up.
    #[error("setting up TLS: {0}")]
    Tls(lettre::transport::smtp::Error),
    /// The sender thread could not be started.
    #[error("starting the sender thread: {0}")]
    Thread(std::io::Error),
    /// lettre refused to build the message.
    #[error("composing the message: {0}")]
    Compose(lettre::error::Error),
    /// The queue was full: this evaluation's message is dropped.
    #[error("the queue is full ({capacity} messages wait): this evaluation's message is dropped")]
    QueueFull {
        /// Messages the queue holds.
        capacity: usize,
    },
    /// The sender has stopped (the run is ending).
    #[error("the sender has stopped")]
    Stopped,
    /// Messages of the run that were not sent, counted when it ends.
    #[error("{}", unsent(*given_up, *left, *waited))]
    Unsent {
        /// Messages given up after `give_up_after`.
        given_up: u64,
        /// Messages still queued or being sent when the end of the run stopped waiting.
        left: u64,
        /// How long the end of the run waited.
        waited: Duration,
    },
}

/// `3 messages not sent: 1 given up, 2 still queued after waiting 30s`.
fn unsent(given_up: u64, left: u64, waited: Duration) -> String {
    let total = given_up + left;
    let mut text = format!(
        "{total} message{} not sent:",
        if total == 1 { "" } else { "s" }
    );
    if given_up > 0 {
        text.push_str(&format!(" {given_up} given up"));
    }
    if left > 0 {
        text.push_str(&format!(
            "{} {left} still queued after waiting {} at the end of the run",
            if given_up > 0 { "," } else { "" },
            humantime::format_duration(waited)
        ));
    }
    text
}

/// Mails each evaluation's alerts: composes the message at once (on the caller's
/// thread) and queues it for a thread of its own, which sends it with retries.
pub struct EmailSink {
    name: String,
    composer: Composer,
    sender: Sender,
}

impl EmailSink {
    /// Checks the settings (addresses, `ca_file`) and starts the sender thread. Nothing
    /// is sent, nor the server reached, until the first alert.
    pub fn start(settings: &EmailSettings) -> Result<Self, EmailError> {
        let host = message::mail_host(&host_name());
        let composer = Composer::new(settings, &host)?;
        let name = format!("email via {}:{}", settings.server, settings.port);
        let transport = transport::transport(settings, &host)?;
        let sender = Sender::start(
            transport,
            name.clone(),
            settings.give_up_after,
            &settings.delivery,
        )?;
        Ok(Self {
            name,
            composer,
            sender,
        })
    }

    /// Checks the settings as [`start`](Self::start) does (the addresses, the message's
    /// header, `ca_file` and the TLS set-up), without starting the sender: nothing is
    /// sent and the server is not reached.
    pub fn check(settings: &EmailSettings) -> Result<(), EmailError> {
        let host = message::mail_host(&host_name());
        Composer::new(settings, &host)?;
        transport::transport(settings, &host)?;
        Ok(())
    }

    /// What the sender has done so far.
    pub fn stats(&self) -> EmailStats {
        self.sender.stats()
    }
}

/// The mail [`EmailSink`] would send for `alerts` under `settings`, as it goes on the
/// wire (headers, then the encoded body), dated `now`, from a machine named `host`:
/// for the fuzz target that checks that no name forges a header or a line (`fuzz/`).
/// Not a stable interface.
#[doc(hidden)]
pub fn formatted_mail(
    settings: &EmailSettings,
    host: &str,
    alerts: &[Alert],
    now: SystemTime,
) -> Result<Vec<u8>, EmailError> {
    let composer = Composer::new(settings, &message::mail_host(host))?;
    Ok(composer.compose(alerts, now)?.formatted())
}

/// `3 alerts (pirate.sea, ...) to 2 recipients`, for log lines.
fn about(alerts: &[Alert], recipients: usize) -> String {
    let first = alerts
        .first()
        .map_or_else(String::new, |a| escape_name(&a.domain));
    let more = if alerts.len() > 1 { ", ..." } else { "" };
    format!(
        "{} alert{} ({first}{more}) to {recipients} recipient{}",
        alerts.len(),
        if alerts.len() == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" },
    )
}

impl Sink for EmailSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Composes the message and queues it; never waits for the network. A full queue
    /// is the error (the coordinator logs and counts it).
    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        let message = self.composer.compose(alerts, SystemTime::now())?;
        self.sender.try_send(Outgoing {
            message,
            queued_at: Instant::now(),
            about: about(alerts, self.composer.recipients()),
        })?;
        Ok(())
    }

    /// Waits up to [`Delivery::flush_wait`] for the queue to be sent; the error counts
    /// the run's messages not sent (given up, or still queued then).
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(self.sender.finish()?)
    }

    fn queue_stats(&self) -> Option<QueueStats> {
        let s = self.stats();
        Some(QueueStats {
            output: "email",
            sent: s.sent,
            failed_attempts: s.failed_attempts,
            given_up: s.given_up,
            dropped: s.dropped,
            queued: s.pending,
            // Counted by the `AtLeast` the output runs in.
            below_severity: 0,
        })
    }
}

#[cfg(test)]
mod tests;
