//! Names, query types and times as people read them. Every attacker-controlled byte
//! that reaches an output goes through [`escape_name`] first.

use std::time::{Duration, UNIX_EPOCH};

use hickory_proto::rr::RecordType;

use crate::detect::{Alert, Evidence};
use crate::Nanos;

/// Renders a canonical name for people: printable ASCII as is (the canonical form
/// already escapes `.` and `\` inside labels), every other byte as `\DDD` (decimal, as
/// RFC 1035 and Packetbeat do).
///
/// The result holds only bytes 0x21..=0x7E: no space, no control character, nothing
/// outside ASCII, so it is safe in terminals, logs, journal fields and mail headers.
pub fn escape_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &byte in name {
        if (0x21..=0x7e).contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('\\');
            out.push(char::from(b'0' + byte / 100));
            out.push(char::from(b'0' + byte / 10 % 10));
            out.push(char::from(b'0' + byte % 10));
        }
    }
    out
}

/// The inverse of [`escape_name`] for canonical names, where a `\\` is followed by
/// `\\` or `.` or three digits: the name a fleet row's text stands for. `None` for text
/// [`escape_name`] cannot have written.
pub fn unescape_name(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if !(0x21..=0x7e).contains(&bytes[i]) {
            return None;
        }
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        match (digits, bytes.get(i + 1)) {
            (Some(d), _) => {
                let value = d.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
                out.push(u8::try_from(value).ok()?);
                i += 4;
            }
            (None, Some(&next @ (b'\\' | b'.'))) => {
                out.extend_from_slice(&[b'\\', next]);
                i += 2;
            }
            (None, _) => return None,
        }
    }
    Some(out)
}

/// The mnemonic of a QTYPE (`A`, `TXT`, `NULL`...), or `TYPEnnn` (RFC 3597) for a type
/// without one. hickory names unknown types "Unknown", and maps two codes to names
/// IANA does not assign (0 to `ZERO`, 65305 to its provisional `ANAME`): those get the
/// generic form too.
pub fn qtype_name(qtype: u16) -> String {
    match RecordType::from(qtype) {
        RecordType::Unknown(_) | RecordType::ZERO | RecordType::ANAME => format!("TYPE{qtype}"),
        known => known.to_string(),
    }
}

/// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-26T22:15:00.000Z`.
pub fn rfc3339(t: Nanos) -> String {
    let time = UNIX_EPOCH + Duration::from_nanos(t);
    humantime::format_rfc3339_millis(time).to_string()
}

/// `d` as people write it: `4h`, `3h 45m`, `90s` (whole seconds).
pub fn duration(d: Nanos) -> String {
    humantime::format_duration(Duration::from_secs(d / crate::NANOS_PER_SEC)).to_string()
}

/// The alert's severity and score in brackets, `[high 84]`: how the summary line and a
/// mail's subject start what they say of an alert.
pub fn severity_tag(alert: &Alert) -> String {
    format!(
        "[{} {}]",
        alert.assessment.severity.as_str(),
        alert.assessment.score
    )
}

/// One line that says what an alert is, for a journal `MESSAGE`, a mail and a SIEM's
/// `message`: the severity and score ([`severity_tag`]), the domain (escaped), the
/// figures and the clients. Printable ASCII only.
pub fn summary_line(alert: &Alert) -> String {
    use std::fmt::Write as _;
    let mut line = format!(
        "{} suspected DNS tunnel: {} had {}{} unique hostnames (threshold {}) in {} \
         requests over {} ending {}",
        severity_tag(alert),
        escape_name(&alert.domain),
        if alert.estimated { "about " } else { "" },
        alert.unique_hostnames,
        alert.threshold,
        alert.total_requests,
        duration(alert.window_end.saturating_sub(alert.window_start)),
        rfc3339(alert.window_end),
    );
    for (i, (ip, requests)) in alert.top_clients.iter().take(3).enumerate() {
        let lead = if i == 0 { "; from " } else { ", " };
        let _ = write!(line, "{lead}{ip} ({requests})");
    }
    line
}

/// One figure of an alert's [`Evidence`], as the text outputs (journal, mail) show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// Its name in the JSON documents' `evidence` object (`names_per_query`).
    pub name: &'static str,
    /// The number, as Rust writes it: `1`, `0.991`, `75.73` (three decimals at most:
    /// the evidence is rounded so).
    pub value: String,
}

impl Figure {
    /// Its journal field: `EVIDENCE_` and the name in capitals
    /// (`EVIDENCE_NAMES_PER_QUERY`).
    pub fn journal_field(&self) -> String {
        format!("EVIDENCE_{}", self.name.to_ascii_uppercase())
    }
}

/// Every figure of `evidence`, in the order of its fields (the JSON `evidence` object's
/// order).
pub fn evidence_figures(evidence: &Evidence) -> Vec<Figure> {
    evidence
        .figures()
        .into_iter()
        .map(|(name, value)| Figure {
            name,
            value: value.to_string(),
        })
        .collect()
}

/// A stable id for an alert: the same domain, evaluation and window give the same id,
/// whichever output carries it and however often it is delivered (a SIEM can drop
/// duplicates). A UUID (version 8, RFC 9562) made of the xxh3-128 of those three.
pub fn alert_id(alert: &Alert) -> String {
    let mut key = Vec::with_capacity(alert.domain.len() + 16);
    key.extend_from_slice(&alert.at.to_be_bytes());
    key.extend_from_slice(&alert.window_start.to_be_bytes());
    key.extend_from_slice(&alert.domain);
    let h = xxhash_rust::xxh3::xxh3_128(&key);
    // Version 8 in bits 76-79, variant 0b10 in bits 62-63.
    let h = (h & !(0xf << 76)) | (0x8 << 76);
    let h = (h & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 96,
        (h >> 80) & 0xffff,
        (h >> 64) & 0xffff,
        (h >> 48) & 0xffff,
        h & 0xffff_ffff_ffff
    )
}

/// This machine's host name, escaped as names are (it goes into every output), or
/// `localhost` when it cannot be read.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // or truncates, and we stop at the first NUL or the end.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = buf
        .iter()
        .position(|&b| b == 0)
        .map_or(&buf[..], |n| &buf[..n]);
    if !ok || name.is_empty() {
        return "localhost".into();
    }
    escape_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(text: &str) -> Vec<u8> {
        unescape_name(text).expect("an escaped name")
    }

    /// How the canonical form writes a raw label byte.
    fn canonical(byte: u8) -> Vec<u8> {
        match byte {
            b'.' | b'\\' => vec![b'\\', byte],
            _ => vec![byte],
        }
    }

    #[test]
    fn escapes_every_byte_to_printable_and_back() {
        let mut all = Vec::new();
        for byte in 0..=255u8 {
            let name = [canonical(byte), b".sea".to_vec()].concat();
            let escaped = escape_name(&name);
            assert!(
                escaped.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{byte}: {escaped}"
            );
            assert_eq!(unescape(&escaped), name, "{byte}: {escaped}");
            all.extend(canonical(byte));
        }
        let escaped = escape_name(&all);
        assert!(!escaped.chars().any(char::is_control));
        assert_eq!(unescape(&escaped), all);
    }

    #[test]
    fn escapes_known_bytes() {
        assert_eq!(escape_name(b"www.example.com"), "www.example.com");
        assert_eq!(escape_name(b"a\xc8b.sea"), "a\\200b.sea");
        assert_eq!(escape_name(b"a b"), "a\\032b");
        assert_eq!(escape_name(b"\x00\n\x7f\xff"), "\\000\\010\\127\\255");
        assert_eq!(escape_name(b"a\\.b.sea"), "a\\.b.sea");
        assert_eq!(escape_name(b""), "");
    }

    #[test]
    fn text_escape_name_cannot_write_is_no_name() {
        for bad in [
            "a\\300.sea",
            "a\\",
            "a\\x.sea",
            "a b.sea",
            "a\u{1b}.sea",
            "é.sea",
        ] {
            assert_eq!(unescape_name(bad), None, "{bad:?}");
        }
        assert_eq!(unescape_name("a\\255\\.b.sea").unwrap(), b"a\xff\\.b.sea");
    }

    #[test]
    fn qtype_names() {
        assert_eq!(qtype_name(1), "A");
        assert_eq!(qtype_name(10), "NULL");
        assert_eq!(qtype_name(16), "TXT");
        assert_eq!(qtype_name(28), "AAAA");
        assert_eq!(qtype_name(5), "CNAME");
        assert_eq!(qtype_name(15), "MX");
        assert_eq!(qtype_name(255), "ANY");
        assert_eq!(qtype_name(0), "TYPE0");
        assert_eq!(qtype_name(65305), "TYPE65305");
        assert_eq!(qtype_name(65534), "TYPE65534");
        assert_eq!(qtype_name(99), "TYPE99");
    }

    #[test]
    fn summary_line_says_what_and_who_in_printable_ascii() {
        let mut alert = crate::alert::test_alerts::sample_alert();
        alert.domain = Box::from(&b"x\r\n\x1b[31m.evil\"sea"[..]);
        let line = summary_line(&alert);
        assert_eq!(
            line,
            "[high 84] suspected DNS tunnel: x\\013\\010\\027[31m.evil\"sea had 222 unique \
             hostnames (threshold 200) in 222 requests over 4h ending \
             2027-01-15T08:00:00.000Z; from 10.0.2.30 (220), 2001:db8::1 (2)"
        );
        assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line}");
        alert.estimated = true;
        assert!(summary_line(&alert).contains("had about 222 unique"));
        alert.assessment = crate::detect::Assessment::default();
        assert!(summary_line(&alert).starts_with("[low 0] suspected DNS tunnel: x"));
    }

    #[test]
    fn evidence_figures_name_every_field_of_the_json_in_its_order() {
        let evidence = crate::alert::test_alerts::sample_alert().evidence;
        let figures = evidence_figures(&evidence);
        let json = serde_json::to_string(&evidence).expect("serialises");
        let keys: Vec<&str> = json.split('"').skip(1).step_by(2).collect();
        let names: Vec<&str> = figures.iter().map(|f| f.name).collect();
        assert_eq!(names, keys, "{json}");
        for figure in &figures {
            let number: f64 = figure.value.parse().expect("a number");
            let read: serde_json::Value = serde_json::from_str(&json).expect("JSON");
            assert_eq!(read[figure.name].as_f64(), Some(number), "{}", figure.name);
        }
        assert_eq!(figures[0].value, "1");
        assert_eq!(figures[0].journal_field(), "EVIDENCE_NAMES_PER_QUERY");
        assert_eq!(figures[1].value, "2");
        assert_eq!(figures[2].value, "0.991");
    }

    #[test]
    fn alert_ids_are_uuids_stable_per_domain_and_evaluation() {
        let alert = crate::alert::test_alerts::sample_alert();
        let id = alert_id(&alert);
        assert_eq!(id, alert_id(&alert.clone()));
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "{id}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8'..=b'9' | b'a'..=b'b'),
            "{id}"
        );
        let mut later = alert.clone();
        later.at += 15 * 60 * crate::NANOS_PER_SEC;
        assert_ne!(alert_id(&later), id);
        let mut other = alert;
        other.domain = Box::from(&b"other.sea"[..]);
        assert_ne!(alert_id(&other), id);
    }

    #[test]
    fn host_name_is_printable() {
        let name = host_name();
        assert!(!name.is_empty());
        assert!(name.bytes().all(|b| (0x21..0x7f).contains(&b)), "{name}");
    }
}
