//! Alert: turns [`Alert`]s into output. Owns the JSON line format, the escaping of
//! attacker-controlled names, and the sink interface every output implements.

use std::io::Write;

use crate::detect::Alert;

/// Somewhere alerts go: stdout JSON lines now; journald and email later.
pub trait Sink {
    /// Delivers one alert.
    fn emit(&mut self, alert: &Alert) -> Result<(), AlertError>;
    /// Flushes anything buffered.
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(())
    }
}

/// An alert that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Writing failed.
    #[error("writing alert: {0}")]
    Io(#[from] std::io::Error),
}

/// Renders a canonical name for people: printable ASCII as is (the canonical form
/// already escapes `.` and `\` inside labels), every other byte as `\DDD` (decimal, as
/// RFC 1035 and Packetbeat do).
pub fn escape_name(name: &[u8]) -> String {
    let _ = name;
    todo!()
}

/// The alert as one JSON object (the fields of the reference alert and more).
pub fn to_json(alert: &Alert) -> serde_json::Value {
    let _ = alert;
    todo!()
}

/// Writes each alert as one JSON line.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn emit(&mut self, alert: &Alert) -> Result<(), AlertError> {
        let _ = (alert, &mut self.out);
        todo!()
    }
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(self.out.flush()?)
    }
}
