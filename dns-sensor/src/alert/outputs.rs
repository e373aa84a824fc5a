//! Which outputs a run writes to, and opening them.

use std::path::PathBuf;

use super::email::{EmailSettings, EmailSink};
use super::file::FileSink;
use super::format::{Format, LineFormat};
use super::journald::JournaldSink;
use super::lines::JsonLines;
use super::text::host_name;
use super::{AlertError, QueueStats, Sink};
use crate::detect::{Alert, Severity};

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
    /// Alerts of a lower severity are not written.
    pub min_severity: Severity,
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
            let sink = FileSink::open(&file.path, LineFormat::new(file.format, &hostname))?;
            sinks.push(Box::new(AtLeast::new(sink, file.min_severity)));
        }
        if let Some(email) = &self.email {
            let sink = EmailSink::start(email).map_err(|e| AlertError::Start {
                output: "email",
                reason: e.to_string(),
            })?;
            sinks.push(Box::new(AtLeast::new(sink, email.min_severity)));
        }
        Ok(sinks)
    }
}

/// An output that takes only the alerts of a severity of at least `min_severity`
/// (`[output.email]` and `[output.file]`'s `min_severity`): the others of each
/// evaluation are held back and counted, and an evaluation with none left is not
/// delivered at all (no empty mail). Everything else is the output's own.
pub struct AtLeast<S> {
    inner: S,
    min_severity: Severity,
    below_severity: u64,
    kept: Vec<Alert>,
}

impl<S: Sink> AtLeast<S> {
    /// `inner`, taking the alerts of `min_severity` and above.
    pub fn new(inner: S, min_severity: Severity) -> Self {
        Self {
            inner,
            min_severity,
            below_severity: 0,
            kept: Vec::new(),
        }
    }

    /// Alerts held back so far.
    pub fn below_severity(&self) -> u64 {
        self.below_severity
    }

    /// The output itself.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Sink> Sink for AtLeast<S> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        let below = alerts
            .iter()
            .filter(|a| a.assessment.severity < self.min_severity)
            .count();
        if below == 0 {
            return self.inner.deliver(alerts);
        }
        self.below_severity += below as u64;
        log::debug!(
            "alert output {}: {below} alert{} under min_severity {} held back",
            self.inner.name(),
            if below == 1 { "" } else { "s" },
            self.min_severity.as_str(),
        );
        if below == alerts.len() {
            return Ok(());
        }
        // The kept alerts in their order (most unique hostnames first); cloned, as the
        // output takes a slice, into a buffer kept for the next evaluation.
        self.kept.clear();
        self.kept.extend(
            alerts
                .iter()
                .filter(|a| a.assessment.severity >= self.min_severity)
                .cloned(),
        );
        let result = self.inner.deliver(&self.kept);
        self.kept.clear();
        result
    }

    fn flush(&mut self) -> Result<(), AlertError> {
        self.inner.flush()
    }

    fn reopen(&mut self) -> Result<bool, AlertError> {
        self.inner.reopen()
    }

    /// The output's own figures with the alerts held back; `None` still for an output
    /// that delivers at once (the file), whose count [`below_severity`](Self::below_severity)
    /// gives.
    fn queue_stats(&self) -> Option<QueueStats> {
        self.inner.queue_stats().map(|stats| QueueStats {
            below_severity: self.below_severity,
            ..stats
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::alert::test_alerts::sample_alert;
    use crate::detect::Assessment;

    /// Keeps the domains of each delivery; says it queues, as the email output does.
    struct Keeps(Arc<Mutex<Vec<Vec<String>>>>);

    impl Sink for Keeps {
        fn name(&self) -> String {
            "keeps".into()
        }
        fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
            assert!(!alerts.is_empty(), "an output is never handed no alert");
            let domains = alerts
                .iter()
                .map(|a| String::from_utf8_lossy(&a.domain).into_owned())
                .collect();
            self.0.lock().expect("not poisoned").push(domains);
            Ok(())
        }
        fn queue_stats(&self) -> Option<QueueStats> {
            Some(QueueStats {
                output: "keeps",
                sent: 7,
                ..QueueStats::default()
            })
        }
    }

    fn alert(domain: &str, clients: u64) -> Alert {
        let mut alert = sample_alert();
        alert.domain = domain.as_bytes().into();
        alert.evidence.clients = clients;
        alert.assessment = Assessment::of(&alert.evidence);
        alert
    }

    #[test]
    fn only_alerts_of_the_severity_and_above_go_through_in_their_order() {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let mut sink = AtLeast::new(Keeps(Arc::clone(&kept)), Severity::High);
        let evaluation = [alert("a.sea", 1), alert("b.sea", 64), alert("c.sea", 2)];
        assert_eq!(evaluation[1].assessment.severity, Severity::Low);
        sink.deliver(&evaluation).expect("delivered");
        // An evaluation of low alerts only: nothing is delivered.
        sink.deliver(&[alert("d.sea", 64)]).expect("held back");
        sink.deliver(&[alert("e.sea", 1)]).expect("delivered");
        assert_eq!(
            *kept.lock().expect("not poisoned"),
            [vec!["a.sea", "c.sea"], vec!["e.sea"]]
        );
        assert_eq!(sink.below_severity(), 2);
        let stats = sink.queue_stats().expect("the output's");
        assert_eq!(
            (stats.output, stats.sent, stats.below_severity),
            ("keeps", 7, 2)
        );
        assert_eq!(sink.name(), "keeps");
    }

    #[test]
    fn low_takes_every_alert() {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let mut sink = AtLeast::new(Keeps(Arc::clone(&kept)), Severity::Low);
        sink.deliver(&[alert("a.sea", 64), alert("b.sea", 1)])
            .expect("delivered");
        assert_eq!(
            *kept.lock().expect("not poisoned"),
            [vec!["a.sea", "b.sea"]]
        );
        assert_eq!(sink.below_severity(), 0);
    }

    #[test]
    fn a_file_output_writes_only_what_its_min_severity_lets_through() {
        let dir = std::env::temp_dir().join(format!("dns-sensor-at-least-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("alerts.json");
        let settings = OutputSettings {
            file: Some(FileSettings {
                path: path.clone(),
                format: Format::Reference,
                min_severity: Severity::High,
            }),
            ..OutputSettings::default()
        };
        let mut sinks = settings.open().expect("opens");
        assert_eq!(sinks.len(), 1);
        sinks[0]
            .deliver(&[alert("a.sea", 64), alert("b.sea", 1)])
            .expect("written");
        // A file output has no queue to report.
        assert!(sinks[0].queue_stats().is_none());
        let text = std::fs::read_to_string(&path).expect("written");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["domain"], "b.sea");
        assert_eq!(lines[0]["severity"], "high");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
