//! A sink that writes each alert as one JSON line to any writer (stdout).

use std::io::Write;

use super::format::LineFormat;
use super::{AlertError, Sink};
use crate::detect::Alert;

/// Writes each alert as one JSON line.
pub struct JsonLines<W: Write> {
    out: W,
    format: LineFormat,
    line: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    /// Writes the reference alert to `out`.
    pub fn new(out: W) -> Self {
        Self::with_format(out, LineFormat::reference())
    }
    /// Writes `format`'s documents to `out`.
    pub fn with_format(out: W, format: LineFormat) -> Self {
        Self {
            out,
            format,
            line: Vec::new(),
        }
    }
    /// The writer, back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn name(&self) -> String {
        "stdout".into()
    }
    /// Writes the lines and flushes, so a consumer on a pipe sees each evaluation's
    /// alerts at once.
    fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
        self.line.clear();
        for alert in alerts {
            self.format.write_line(alert, &mut self.line);
        }
        self.out.write_all(&self.line)?;
        self.out.flush()?;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), AlertError> {
        Ok(self.out.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::reference::to_json;
    use crate::alert::test_alerts::sample_alert;

    #[test]
    fn json_line_keeps_field_order_and_flushes() {
        let mut sink = JsonLines::new(Vec::new());
        sink.deliver(&[sample_alert(), sample_alert()])
            .expect("written");
        let text = String::from_utf8(sink.into_inner()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let line = lines[0];
        let keys = [
            "\"@timestamp\"",
            "\"domain\"",
            "\"total_requests\"",
            "\"unique_hostnames\"",
            "\"total_bytes_in\"",
            "\"total_bytes_out\"",
            "\"total_bytes\"",
            "\"window_start\"",
            "\"window_end\"",
            "\"top_clients\"",
            "\"sample_names\"",
            "\"qtypes\"",
            "\"severity\"",
            "\"score\"",
            "\"reasons\"",
            "\"evidence\"",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| line.find(k).expect(k)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(line.starts_with(
            "{\"@timestamp\":\"2027-01-15T08:00:00.000Z\",\"domain\":\"pirate.sea\","
        ));
        assert!(
            line.contains(
                "\"qtypes\":{\"NULL\":221,\"TYPE65534\":1},\"severity\":\"high\",\"score\":84,\
                 \"reasons\":[\"names do not repeat\",\"few clients\",\"data query types\"],\
                 \"evidence\":{\"names_per_query\":1.0,\"clients\":2,\"top_client_share\":0.991,"
            ),
            "{line}"
        );
        assert!(
            line.ends_with("\"query_bytes\":75.73,\"response_bytes\":166.094}}"),
            "{line}"
        );
        let parsed: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(parsed, to_json(&sample_alert()));
    }

    #[test]
    fn write_errors_are_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "closed",
                ))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = JsonLines::new(Broken);
        assert!(matches!(
            sink.deliver(&[sample_alert()]),
            Err(AlertError::Io(_))
        ));
    }
}
