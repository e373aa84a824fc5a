//! The DNS header and first question (`decode::parse_question`), against a plain
//! reader of the same rules written here.
//!
//! Input: one DNS message.
//!
//! The sensor reads only the header (id, QR, opcode, rcode, qdcount) and the first
//! question: nothing parses answers, so there is no answer parser to fuzz. Checks:
//! - the result (header fields, qtype, qclass, or the error) and the canonical name are
//!   what the plain reader below makes of the message: labels of 1-63 bytes joined by
//!   `.`, `.` and `\` inside a label escaped, `A`-`Z` lower-cased, at most 255 bytes on
//!   the wire, compression pointers only backwards of everything read so far, at most
//!   64 of them;
//! - the name is at most `MAX_NAME_LEN` bytes, and empty after an error;
//! - `label_starts`, when given, are exactly where the name's labels start;
//! - a `Name` reused after another message gives the same answer as a new one.

#![no_main]

use dns_sensor::decode::dns::{MAX_NAME_LEN, MAX_POINTER_JUMPS, MAX_WIRE_NAME_LEN};
use dns_sensor::decode::{parse_question, DnsError, Name, Question};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut name = Name::new();
    let got = parse_question(data, &mut name);
    let expected = reference(data);
    match (&got, &expected) {
        (Ok(q), Ok((eq, labels))) => {
            assert_eq!(q, eq);
            assert_eq!(name.as_bytes(), canonical(labels).as_slice());
            check_label_starts(&name, labels);
        }
        (Err(e), Err(ee)) => {
            assert_eq!(e, ee);
            assert!(name.as_bytes().is_empty(), "a name left after {e:?}");
        }
        _ => panic!("parse_question gave {got:?}, the plain reader {expected:?}"),
    }
    assert!(name.as_bytes().len() <= MAX_NAME_LEN);

    // The worker reuses one Name for every packet: what the last one left in it must
    // not show through.
    let mut reused = Name::new();
    let _ = parse_question(&longest_name_message(), &mut reused);
    assert_eq!(parse_question(data, &mut reused), got);
    assert_eq!(reused.as_bytes(), name.as_bytes());
    assert_eq!(reused.label_starts(), name.label_starts());
});

/// Reads the header and first question byte by byte, by the rules `parse_question`
/// documents; the name as its wire labels.
fn reference(m: &[u8]) -> Result<(Question, Vec<Vec<u8>>), DnsError> {
    let header = m.get(..12).ok_or(DnsError::ShortHeader)?;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if qdcount == 0 {
        return Err(DnsError::NoQuestion);
    }
    let mut labels = Vec::new();
    let (mut pos, mut lowest, mut after, mut jumps, mut wire) = (12, 12, None, 0, 0);
    loop {
        let b = *m.get(pos).ok_or(DnsError::Truncated)?;
        match b >> 6 {
            0 if b == 0 => break,
            0 => {
                let len = usize::from(b);
                wire += 1 + len;
                if wire + 1 > MAX_WIRE_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                let label = m.get(pos + 1..pos + 1 + len).ok_or(DnsError::Truncated)?;
                labels.push(label.to_vec());
                pos += 1 + len;
            }
            3 => {
                let low = *m.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(b & 0x3f) << 8 | usize::from(low);
                jumps += 1;
                if target >= lowest || jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::BadPointer);
                }
                after.get_or_insert(pos + 2);
                lowest = target;
                pos = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
    let end = after.unwrap_or(pos + 1);
    let tail = m.get(end..end + 4).ok_or(DnsError::Truncated)?;
    let question = Question {
        id: u16::from_be_bytes([header[0], header[1]]),
        is_response: header[2] & 0x80 != 0,
        opcode: (header[2] >> 3) & 0x0f,
        rcode: header[3] & 0x0f,
        qdcount,
        qtype: u16::from_be_bytes([tail[0], tail[1]]),
        qclass: u16::from_be_bytes([tail[2], tail[3]]),
    };
    Ok((question, labels))
}

/// The canonical form of a name's wire labels.
fn canonical(labels: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        for &b in label {
            if b == b'.' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b.to_ascii_lowercase());
        }
    }
    out
}

/// `label_starts`, when the parser gives them, are where each label starts.
fn check_label_starts(name: &Name, labels: &[Vec<u8>]) {
    let Some(starts) = name.label_starts() else {
        return;
    };
    assert_eq!(starts.len(), labels.len(), "{starts:?} for {name:?}");
    let mut at = 0;
    for (start, label) in starts.iter().zip(labels) {
        assert_eq!(usize::from(*start), at, "{starts:?} for {name:?}");
        at += label.len() + 1;
    }
}

/// A query whose name takes the longest canonical form: 255 wire bytes of labels of
/// backslashes, each written `\\`.
fn longest_name_message() -> Vec<u8> {
    let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for len in [63, 63, 63, 61] {
        m.push(len);
        m.extend(std::iter::repeat_n(b'\\', usize::from(len)));
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}
