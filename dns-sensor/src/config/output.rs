//! `[output.*]`: where alerts go. Each table is one output; the same outputs serve
//! `replay` and `run`.
//!
//! ```toml
//! [output.stdout]          # on by default for replay
//! format = "reference"     # or "ecs"
//! [output.journald]
//! enabled = true
//! [output.email]
//! enabled = true
//! server = "127.0.0.1"
//! to = ["soc@example.org"]
//! from = "dns-sensor@sensor.example"
//! min_severity = "high"    # the default: mail high alerts only
//! [output.file]
//! path = "/var/log/dns-sensor/alerts.json"
//! format = "ecs"
//! min_severity = "low"     # the default: every alert
//! ```
//!
//! `min_severity` (email and file): alerts of a lower severity do not go to that
//! output; stdout and the journal take every alert (the journal's `PRIORITY` tells
//! them apart).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::any_duration;
use crate::alert::email::{Credentials, Delivery, EmailSettings, TlsMode};
use crate::alert::{FileSettings, Format, OutputSettings};
use crate::detect::Severity;

/// The `[output]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// `[output.stdout]`.
    pub stdout: StdoutConfig,
    /// `[output.journald]`.
    pub journald: JournaldConfig,
    /// `[output.email]`.
    pub email: EmailConfig,
    /// `[output.file]`.
    pub file: FileConfig,
}

/// `[output.stdout]`: one JSON line per alert on standard output.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutConfig {
    /// On or off; unset, it is on for `replay`, and for `run` only when no other output
    /// is enabled (under systemd, stdout is the journal already).
    pub enabled: Option<bool>,
    /// The document written.
    pub format: Format,
}

/// `[output.journald]`: one structured journal entry per alert.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct JournaldConfig {
    /// Off unless set.
    pub enabled: bool,
}

/// `[output.file]`: JSON lines appended to a file, reopened on SIGHUP.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// On when `path` is set, unless this says otherwise.
    pub enabled: Option<bool>,
    /// The file.
    pub path: Option<PathBuf>,
    /// The document written.
    pub format: Format,
    /// Alerts of a lower severity are not written; `low` (the default) writes every
    /// one.
    pub min_severity: Severity,
}

/// `[output.email]` as written; checked into [`EmailSettings`].
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawEmailConfig")]
pub struct EmailConfig {
    /// Off unless set.
    pub enabled: bool,
    /// The SMTP server.
    pub server: String,
    /// Its port (default: 25, or 465 with `tls = "tls"`).
    pub port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    pub tls: TlsMode,
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject line.
    pub subject: String,
    /// A file with the SMTP user name and password, readable by its owner only.
    pub credentials_file: Option<PathBuf>,
    /// A PEM file of further certificate authorities to trust.
    pub ca_file: Option<PathBuf>,
    /// How long each step of an attempt (connecting, each read or write) may wait.
    pub timeout: Duration,
    /// When to give a message up.
    pub give_up_after: Duration,
    /// Alerts of a lower severity are not mailed; `high` by default (a mail for what
    /// looks like a tunnel only).
    pub min_severity: Severity,
}

/// The subject of alert mails when the file sets none.
pub const DEFAULT_SUBJECT: &str = "Suspected DNS Tunnel Alert";

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            server: "localhost".into(),
            port: None,
            tls: TlsMode::default(),
            from: String::new(),
            to: Vec::new(),
            subject: DEFAULT_SUBJECT.into(),
            credentials_file: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            give_up_after: Duration::from_secs(3600),
            min_severity: Severity::High,
        }
    }
}

/// `[output.email]` before the checks that span keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmailConfig {
    #[serde(default)]
    enabled: bool,
    server: Option<String>,
    port: Option<u16>,
    #[serde(default)]
    tls: TlsMode,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    subject: Option<String>,
    credentials_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "optional_duration")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "optional_duration")]
    give_up_after: Option<Duration>,
    min_severity: Option<Severity>,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Duration>, D::Error> {
    any_duration(de).map(Some)
}

impl TryFrom<RawEmailConfig> for EmailConfig {
    type Error = String;

    fn try_from(raw: RawEmailConfig) -> Result<Self, String> {
        let defaults = EmailConfig::default();
        let config = EmailConfig {
            enabled: raw.enabled,
            server: raw.server.unwrap_or(defaults.server),
            port: raw.port,
            tls: raw.tls,
            from: raw.from.unwrap_or_default(),
            to: raw.to,
            subject: raw.subject.unwrap_or(defaults.subject),
            credentials_file: raw.credentials_file,
            ca_file: raw.ca_file,
            timeout: raw.timeout.unwrap_or(defaults.timeout),
            give_up_after: raw.give_up_after.unwrap_or(defaults.give_up_after),
            min_severity: raw.min_severity.unwrap_or(defaults.min_severity),
        };
        if !config.enabled {
            return Ok(config);
        }
        if config.server.trim().is_empty() {
            return Err("output.email: `server` is empty".into());
        }
        if config.port == Some(0) {
            return Err("output.email: port 0 is not a port".into());
        }
        if config.from.trim().is_empty() {
            return Err("output.email: `from` is needed when enabled".into());
        }
        if config.to.is_empty() {
            return Err("output.email: `to` needs at least one address when enabled".into());
        }
        for (key, address) in
            std::iter::once(("from", &config.from)).chain(config.to.iter().map(|to| ("to", to)))
        {
            if address.parse::<lettre::message::Mailbox>().is_err() {
                return Err(format!(
                    "output.email: `{key}` {address:?} is not a mail address \
                     (name@domain or \"Name <name@domain>\"; one per string)"
                ));
            }
        }
        if config.credentials_file.is_some() && config.tls == TlsMode::None {
            return Err(
                "output.email: `credentials_file` with `tls = \"none\"` would send \
                        the password in clear: use \"starttls\" or \"tls\""
                    .into(),
            );
        }
        if config.subject.contains(['\r', '\n']) {
            return Err("output.email: `subject` must be one line".into());
        }
        if config.timeout.is_zero() {
            return Err("output.email: `timeout` must be longer than zero".into());
        }
        Ok(config)
    }
}

/// An `[output.*]` setting that cannot be used once read (a file it names).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The SMTP credentials file.
    #[error("output.email: {0}")]
    Credentials(#[from] crate::alert::email::CredentialsError),
    /// A file output with `enabled = true` but no `path`.
    #[error("output.file: `enabled = true` needs a `path`")]
    FileWithoutPath,
}

/// Which command the outputs are for: it decides whether stdout is on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `dns-sensor replay`: stdout is on unless the file turns it off.
    Replay,
    /// `dns-sensor run`: stdout is on when no other output is, unless the file says.
    Run,
}

impl OutputConfig {
    /// The outputs `command` writes to, with the credentials file read and checked.
    pub fn settings(&self, command: Command) -> Result<OutputSettings, OutputError> {
        let file = match (&self.file.path, self.file.enabled) {
            (_, Some(false)) => None,
            (Some(path), _) => Some(FileSettings {
                path: path.clone(),
                format: self.file.format,
                min_severity: self.file.min_severity,
            }),
            (None, Some(true)) => return Err(OutputError::FileWithoutPath),
            (None, None) => None,
        };
        let email = if self.email.enabled {
            let e = &self.email;
            Some(EmailSettings {
                server: e.server.clone(),
                port: e.port.unwrap_or_else(|| e.tls.default_port()),
                tls: e.tls,
                from: e.from.clone(),
                to: e.to.clone(),
                subject: e.subject.clone(),
                credentials: e
                    .credentials_file
                    .as_deref()
                    .map(Credentials::load)
                    .transpose()?,
                ca_file: e.ca_file.clone(),
                timeout: e.timeout,
                give_up_after: e.give_up_after,
                min_severity: e.min_severity,
                delivery: Delivery::default(),
            })
        } else {
            None
        };
        let others = self.journald.enabled || email.is_some() || file.is_some();
        let stdout_on = self.stdout.enabled.unwrap_or(match command {
            Command::Replay => true,
            Command::Run => !others,
        });
        Ok(OutputSettings {
            stdout: stdout_on.then_some(self.stdout.format),
            journald: self.journald.enabled,
            email,
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    fn outputs(text: &str, command: Command) -> OutputSettings {
        Config::parse(text, "t.toml")
            .expect("valid")
            .output
            .settings(command)
            .expect("usable")
    }

    fn invalid(text: &str) -> (usize, String) {
        match Config::parse(text, "t.toml") {
            Err(ConfigError::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an invalid-config error, got {other:?}"),
        }
    }

    #[test]
    fn stdout_is_on_for_replay_and_for_a_run_with_nothing_else() {
        let replay = outputs("", Command::Replay);
        assert_eq!(replay.stdout, Some(Format::Reference));
        assert!(!replay.journald && replay.email.is_none() && replay.file.is_none());
        assert_eq!(outputs("", Command::Run).stdout, Some(Format::Reference));

        let journald = "[output.journald]\nenabled = true\n";
        assert_eq!(outputs(journald, Command::Run).stdout, None);
        assert_eq!(
            outputs(journald, Command::Replay).stdout,
            Some(Format::Reference)
        );
        let both = "[output.journald]\nenabled = true\n[output.stdout]\nenabled = true\nformat = \"ecs\"\n";
        assert_eq!(outputs(both, Command::Run).stdout, Some(Format::Ecs));
        let off = "[output.stdout]\nenabled = false\n";
        assert_eq!(outputs(off, Command::Replay).stdout, None);
    }

    #[test]
    fn file_output_is_on_with_a_path() {
        let on = outputs(
            "[output.file]\npath = \"/var/log/dns-sensor/alerts.json\"\nformat = \"ecs\"\n",
            Command::Run,
        );
        let file = on.file.expect("file output");
        assert_eq!(file.path, PathBuf::from("/var/log/dns-sensor/alerts.json"));
        assert_eq!(file.format, Format::Ecs);
        assert_eq!(on.stdout, None);
        let off = outputs(
            "[output.file]\npath = \"/x\"\nenabled = false\n",
            Command::Run,
        );
        assert!(off.file.is_none());
        let err = Config::parse("[output.file]\nenabled = true\n", "t")
            .expect("parses")
            .output
            .settings(Command::Run)
            .expect_err("no path");
        assert!(err.to_string().contains("path"), "{err}");
        let (line, message) = invalid("[output.file]\npath = \"/x\"\nformat = \"xml\"\n");
        assert_eq!(line, 3);
        assert!(
            message.contains("reference") && message.contains("ecs"),
            "{message}"
        );
    }

    #[test]
    fn min_severity_defaults_to_high_for_email_and_low_for_the_file() {
        let email = "[output.email]\nenabled = true\nserver = \"127.0.0.1\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";
        let file = "[output.file]\npath = \"/x\"\n";
        let both = outputs(&format!("{email}{file}"), Command::Run);
        assert_eq!(both.email.expect("email").min_severity, Severity::High);
        assert_eq!(both.file.expect("file").min_severity, Severity::Low);
        let set = format!("{email}min_severity = \"low\"\n{file}min_severity = \"high\"\n");
        let both = outputs(&set, Command::Run);
        assert_eq!(both.email.expect("email").min_severity, Severity::Low);
        assert_eq!(both.file.expect("file").min_severity, Severity::High);
    }

    #[test]
    fn a_bad_min_severity_names_its_line_and_the_values() {
        let (line, message) = invalid("[output.file]\npath = \"/x\"\nmin_severity = \"medium\"\n");
        assert_eq!(line, 3);
        assert!(
            message.contains("medium") && message.contains("low") && message.contains("high"),
            "{message}"
        );
        let (line, message) = invalid(
            "[output.email]\nenabled = true\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\nmin_severity = \"High\"\n",
        );
        assert_eq!(line, 5);
        assert!(
            message.contains("High") && message.contains("high"),
            "{message}"
        );
        let (line, message) = invalid("[output.file]\nmin_severity = 1\n");
        assert_eq!(line, 2);
        assert!(
            message.contains("min_severity") || message.contains("string"),
            "{message}"
        );
    }

    #[test]
    fn email_settings_with_their_defaults() {
        let text = "[output.email]\nenabled = true\nserver = \"127.0.0.1\"\nfrom = \"dns-sensor@sensor.example\"\nto = [\"soc@example.org\", \"noc@example.org\"]\n";
        let email = outputs(text, Command::Replay).email.expect("email output");
        assert_eq!(email.server, "127.0.0.1");
        assert_eq!(email.port, 25);
        assert_eq!(email.tls, TlsMode::Starttls);
        assert_eq!(email.subject, DEFAULT_SUBJECT);
        assert_eq!(email.to.len(), 2);
        assert_eq!(email.credentials, None);
        assert_eq!(email.timeout, Duration::from_secs(30));
        let tls = format!("{text}tls = \"tls\"\n");
        assert_eq!(outputs(&tls, Command::Run).email.expect("on").port, 465);
        let port = format!("{text}tls = \"none\"\nport = 2525\ntimeout = \"5s\"\n");
        let email = outputs(&port, Command::Run).email.expect("on");
        assert_eq!((email.port, email.tls), (2525, TlsMode::None));
        assert_eq!(email.timeout, Duration::from_secs(5));
        // Disabled, nothing is required.
        assert!(outputs("[output.email]\nserver = \"x\"\n", Command::Run)
            .email
            .is_none());
    }

    #[test]
    fn email_mistakes_name_the_table_and_what_is_missing() {
        let (line, message) =
            invalid("threshold = 10\n\n[output.email]\nenabled = true\nto = [\"a@b.c\"]\n");
        assert!((3..=5).contains(&line), "{line}");
        assert!(message.contains("`from`"), "{message}");
        let (_, message) = invalid("[output.email]\nenabled = true\nfrom = \"a@b.c\"\n");
        assert!(message.contains("`to`"), "{message}");
        let (line, message) = invalid("[output.email]\nenabled = true\ntls = \"ssl\"\n");
        assert_eq!(line, 3);
        assert!(message.contains("starttls"), "{message}");
        let (line, message) = invalid("[output.email]\nenabled = true\nsmtp = \"x\"\n");
        assert_eq!(line, 3);
        assert!(message.contains("smtp"), "{message}");
        let (_, message) = invalid(
            "[output.email]\nenabled = true\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\nsubject = \"a\\r\\nBcc: x@y.z\"\n",
        );
        assert!(message.contains("one line"), "{message}");
    }

    #[test]
    fn email_addresses_are_checked_when_read() {
        let head = "[output.email]\nenabled = true\nserver = \"127.0.0.1\"\n";
        let ok = format!(
            "{head}from = \"DNS sensor <dns-sensor@sensor.example>\"\n\
             to = [\"soc@example.org\", \"NOC <noc@example.org>\"]\n"
        );
        let email = outputs(&ok, Command::Run).email.expect("on");
        assert_eq!(email.from, "DNS sensor <dns-sensor@sensor.example>");
        assert_eq!(email.to, ["soc@example.org", "NOC <noc@example.org>"]);
        for (keys, key, bad) in [
            (
                "from = \"sensor\"\nto = [\"a@b.c\"]\n",
                "from",
                "\"sensor\"",
            ),
            (
                "from = \"a@b.c\"\nto = [\"d@e.f\", \"d@e.f, g@h.i\"]\n",
                "to",
                "\"d@e.f, g@h.i\"",
            ),
            (
                "from = \"a@b.c\\r\\nBcc: x@y.z\"\nto = [\"d@e.f\"]\n",
                "from",
                "\"a@b.c\\r\\nBcc: x@y.z\"",
            ),
            ("from = \"a@b.c\"\nto = [\"@e.f\"]\n", "to", "\"@e.f\""),
        ] {
            let (line, message) = invalid(&format!("{head}{keys}"));
            assert!((1..=5).contains(&line), "{line}");
            assert!(
                message.contains(&format!("`{key}` {bad} is not a mail address")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_password_is_never_sent_in_clear() {
        let text = "[output.email]\nenabled = true\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n\
                    credentials_file = \"/nonexistent/dns-sensor/smtp\"\n";
        let (_, message) = invalid(&format!("{text}tls = \"none\"\n"));
        assert!(message.contains("in clear"), "{message}");
        // With TLS it is read (and here missing: the error names it).
        let err = Config::parse(text, "t")
            .expect("valid")
            .output
            .settings(Command::Run)
            .expect_err("no such file");
        assert!(
            err.to_string().contains("/nonexistent/dns-sensor/smtp"),
            "{err}"
        );
    }

    #[test]
    fn unknown_output_names_its_line() {
        let (line, message) = invalid("[output.syslog]\nenabled = true\n");
        assert_eq!(line, 1);
        assert!(message.contains("syslog"), "{message}");
    }
}
