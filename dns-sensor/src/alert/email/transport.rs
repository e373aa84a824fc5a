//! The SMTP client of the email output, from its settings: which server, how the
//! connection is secured, whom to trust, the AUTH credentials and the timeout.
//!
//! - `tls = "none"`: plain SMTP;
//! - `tls = "starttls"`: lettre's `Tls::Required`: a server that does not offer
//!   STARTTLS, or whose certificate does not verify, fails the attempt before anything
//!   of the message is sent; never a fallback to plain text;
//! - `tls = "tls"`: lettre's `Tls::Wrapper`, TLS from the first byte (SMTPS).
//!
//! The certificate must be valid for `server` (a name, or an address in the
//! certificate's IP SANs) and chain to webpki-roots (Mozilla's roots, built in) or to a
//! certificate of `ca_file`.

use crate::files::shown;
use std::path::Path;

use lettre::transport::smtp::authentication::Credentials as SmtpCredentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::SmtpTransport;

use super::{EmailError, EmailSettings, TlsMode};

/// The blocking SMTP client for `settings`, saying `hello` in EHLO. Opens a new
/// connection for every message (lettre without its pool).
pub(crate) fn transport(
    settings: &EmailSettings,
    hello: &str,
) -> Result<SmtpTransport, EmailError> {
    let tls = match settings.tls {
        TlsMode::None => Tls::None,
        TlsMode::Starttls => Tls::Required(tls_parameters(settings)?),
        TlsMode::Tls => Tls::Wrapper(tls_parameters(settings)?),
    };
    let mut builder = SmtpTransport::builder_dangerous(settings.server.as_str())
        .port(settings.port)
        .tls(tls)
        .timeout(Some(settings.timeout))
        .hello_name(ClientId::Domain(hello.to_owned()));
    if let Some(credentials) = &settings.credentials {
        builder = builder.credentials(SmtpCredentials::new(
            credentials.username.clone(),
            credentials.password.clone(),
        ));
    }
    Ok(builder.build())
}

fn tls_parameters(settings: &EmailSettings) -> Result<TlsParameters, EmailError> {
    let mut builder = TlsParameters::builder(settings.server.clone());
    if let Some(path) = &settings.ca_file {
        builder = builder.add_root_certificate(ca_file(path)?);
    }
    builder.build_rustls().map_err(EmailError::Tls)
}

/// Reads a PEM file of one or more CA certificates.
fn ca_file(path: &Path) -> Result<Certificate, EmailError> {
    let invalid = |reason: String| EmailError::CaFile {
        path: shown(path),
        reason,
    };
    let pem = crate::files::read_limited(path, crate::files::MAX_CERTIFICATES_BYTES)
        .map_err(|e| invalid(e.to_string()))?;
    // lettre takes a PEM file without a certificate as an empty list.
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(invalid("no PEM certificate in it".into()));
    }
    Certificate::from_pem(&pem).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_with_ca(path: &Path) -> EmailSettings {
        EmailSettings {
            tls: TlsMode::Starttls,
            ca_file: Some(path.to_owned()),
            ..crate::alert::email::tests::settings()
        }
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_is_an_error_naming_it() {
        let err = transport(&settings_with_ca(Path::new("/nonexistent/ca.pem")), "h")
            .expect_err("missing");
        assert!(matches!(err, EmailError::CaFile { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = std::env::temp_dir().join(format!("dns-sensor-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello\n").expect("written");
        let err = transport(&settings_with_ca(&not_pem), "h").expect_err("not PEM");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .expect("written");
        let err = transport(&settings_with_ca(&broken), "h").expect_err("broken");
        assert!(matches!(err, EmailError::CaFile { .. }), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
