//! What the email output is configured with, and the SMTP credentials file.

use crate::files::shown;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::detect::Severity;

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP (a relay on the same host or a trusted segment).
    None,
    /// SMTP, upgraded with STARTTLS before anything is sent; a server that does not
    /// offer it is an error, never a fallback to plain text.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl TlsMode {
    /// The port a server listens on for this mode when none is set.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None | TlsMode::Starttls => 25,
            TlsMode::Tls => 465,
        }
    }
}

/// The email output's settings, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailSettings {
    /// The SMTP server's host name or address.
    pub server: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// The sender, `name@domain` or `Name <name@domain>`.
    pub from: String,
    /// The recipients, at least one.
    pub to: Vec<String>,
    /// The subject line; the highest-scoring alert's `[high 84]` and domain are
    /// appended.
    pub subject: String,
    /// User name and password for SMTP AUTH, when the server wants them.
    pub credentials: Option<Credentials>,
    /// A PEM file of further certificate authorities to trust (a private relay's),
    /// added to the web's roots.
    pub ca_file: Option<PathBuf>,
    /// How long each step of one attempt (connecting, and every read or write of the
    /// TLS handshake, AUTH and the message) may wait for the server.
    pub timeout: Duration,
    /// A message still not sent this long after its evaluation handed it over is given
    /// up (wall-clock time, in `replay` too); zero: one attempt, no retry.
    pub give_up_after: Duration,
    /// Alerts of a lower severity are not mailed: an evaluation with none left sends
    /// no mail. Applied by [`OutputSettings::open`](crate::alert::OutputSettings::open).
    pub min_severity: Severity,
    /// The queue and the retries.
    pub delivery: Delivery,
}

/// How messages wait and are retried: fixed for the sensor ([`Delivery::default`]),
/// shorter in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Messages waiting to be sent at most, besides the one being sent; another
    /// evaluation's message is then dropped (logged and counted).
    pub queue: usize,
    /// The wait after the first failed attempt; it doubles after each failure.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// How long the end of a run waits for the queue to drain.
    pub flush_wait: Duration,
}

impl Default for Delivery {
    /// 32 messages waiting (eight hours of evaluations at the default interval);
    /// retries after 1 s, 2 s, 4 s... up to 5 minutes apart; the end of a run waits up
    /// to 30 s for the queue (well inside systemd's 90 s stop timeout).
    fn default() -> Self {
        Self {
            queue: 32,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            flush_wait: Duration::from_secs(30),
        }
    }
}

/// SMTP AUTH credentials, from a file only its owner can read.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    /// Never the password: settings get logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// A credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not readable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Group or other users may read or write it.
    #[error(
        "{path}: other users can access it (mode {mode:04o}): \
         a password file must be readable by its owner only (chmod 600)"
    )]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Not `username = "..."` and `password = "..."`.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Largest credentials file read: it holds two short lines.
const MAX_CREDENTIALS_BYTES: u64 = 64 * 1024;

impl Credentials {
    /// Reads a credentials file: TOML with `username` and `password`, refused when
    /// anyone but its owner may read or write it.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let shown = shown(path);
        let io = |source| CredentialsError::Io {
            path: shown.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CredentialsError::Exposed { path: shown, mode });
        }
        let text = crate::files::read_all_limited(file, MAX_CREDENTIALS_BYTES)
            .and_then(crate::files::text)
            .map_err(io)?;
        toml::from_str(&text).map_err(|e: toml::de::Error| CredentialsError::Invalid {
            line: e.span().map_or(0, |span| {
                text.as_bytes()[..span.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1
            }),
            path: shown,
            // The reader quotes the offending text: never a password in a log line.
            message: if e.message().contains("missing field") {
                e.message().to_owned()
            } else {
                "write `username = \"...\"` and `password = \"...\"`".to_owned()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file_with(name: &str, text: &str, mode: u32) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "dns-sensor-credentials-{name}-{}",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn reads_a_private_file() {
        let path = file_with(
            "ok",
            "username = \"sensor\"\npassword = \"s3cr=t\"\n",
            0o600,
        );
        let creds = Credentials::load(&path).expect("loads");
        assert_eq!(creds.username, "sensor");
        assert_eq!(creds.password, "s3cr=t");
        assert!(!format!("{creds:?}").contains("s3cr=t"));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn refuses_a_file_others_can_read() {
        for mode in [0o640, 0o604, 0o660, 0o644] {
            let path = file_with("exposed", "username = \"u\"\npassword = \"p\"\n", mode);
            let err = Credentials::load(&path).expect_err("refused");
            assert!(matches!(err, CredentialsError::Exposed { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&format!("{mode:04o}")), "{text}");
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn a_bad_file_names_its_line_and_never_its_password() {
        let path = file_with("bad", "username = \"u\"\npassword = hunter2\n", 0o600);
        let err = Credentials::load(&path).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains(":2:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let _ = std::fs::remove_file(path);
        let path = file_with("missing", "username = \"u\"\n", 0o600);
        let text = Credentials::load(&path).expect_err("invalid").to_string();
        assert!(text.contains("password"), "{text}");
        let _ = std::fs::remove_file(path);
        let err = Credentials::load(Path::new("/nonexistent/creds")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/creds"), "{err}");
    }
}
