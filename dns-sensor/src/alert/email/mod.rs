//! The email output: one message per evaluation listing every alerting domain, sent
//! over SMTP without ever holding detection up.

pub mod settings;

pub use settings::{Credentials, CredentialsError, Delivery, EmailSettings, TlsMode};
