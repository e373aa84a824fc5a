//! The JSON line formats an output writes: the reference alert, or ECS.

use serde::Deserialize;

use super::ecs::EcsAlert;
use super::reference::AlertJson;
use crate::detect::Alert;

/// Which JSON document an output writes per alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The reference alert's fields, then the sensor's additions ([`AlertJson`]).
    #[default]
    Reference,
    /// The Elastic Common Schema ([`EcsAlert`]).
    Ecs,
}

/// Renders alerts as JSON lines in one [`Format`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFormat {
    format: Format,
    /// `observer.hostname` of ECS documents.
    hostname: String,
}

impl LineFormat {
    /// Lines in `format`; ECS documents name `hostname` as their observer.
    pub fn new(format: Format, hostname: &str) -> Self {
        Self {
            format,
            hostname: hostname.to_owned(),
        }
    }

    /// The reference alert, which names no observer.
    pub fn reference() -> Self {
        Self::new(Format::Reference, "")
    }

    /// Appends `alert` as one JSON object and a newline to `out`.
    pub fn write_line(&self, alert: &Alert, out: &mut Vec<u8>) {
        // Serialising strings, numbers and arrays of them into memory cannot fail.
        let _ = match self.format {
            Format::Reference => serde_json::to_writer(&mut *out, &AlertJson::from(alert)),
            Format::Ecs => serde_json::to_writer(&mut *out, &EcsAlert::new(alert, &self.hostname)),
        };
        out.push(b'\n');
    }
}
