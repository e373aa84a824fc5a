//! Names, query types and times as people read them. Every attacker-controlled byte
//! that reaches an output goes through [`escape_name`] first.

use std::time::{Duration, UNIX_EPOCH};

use hickory_proto::rr::RecordType;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Inverse of [`escape_name`] for canonical names (where `\` is always followed by
    /// `\` or `.`, so `\DDD` is unambiguous).
    fn unescape(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let digits = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(u8::is_ascii_digit));
            match (bytes[i], digits) {
                (b'\\', Some(d)) => {
                    let value = d.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
                    out.push(u8::try_from(value).expect("escape fits a byte"));
                    i += 4;
                }
                (b'\\', None) => {
                    out.extend_from_slice(&bytes[i..i + 2]);
                    i += 2;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        out
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
}
