//! A capture whose names are written to attack whatever prints them: CR/LF (forged
//! mail headers, log lines, journal fields), NUL, ESC sequences (terminals), quotes
//! (JSON, SQL) and bytes that are not UTF-8.

use std::path::Path;

use dns_sensor::capture::LinkType;
use dns_sensor::synth::scenario::{v4, EPOCH};
use dns_sensor::synth::{query_labels, rtype, udp_frame, write_pcap, Flow};

/// The registered domain's own label: a header injection, a terminal sequence, a NUL,
/// quotes and invalid UTF-8 in one.
pub const DOMAIN_LABEL: &[u8] =
    b"x\r\nBcc: victim@example.org\r\n\x00\x1b[2J\x1b]0;pwned\x07\"'`\xff\xfe";

/// First labels of the names under it: a journal field, a fake log line, an SQL quote.
pub const NAME_LABELS: &[&[u8]] = &[
    b"\nPRIORITY=0\nFORGED_FIELD=1",
    b"a\r\n[ERROR] fake log line",
    b"b'); DROP TABLE slots; --",
    b"\x1b[31mred\x1b[0m",
    b"\xc3\x28\xa0\xa1",
    b"plain",
];

/// The escaped form every output must show for the registered domain: lower-cased
/// (RFC 4343), the label's own `.` escaped, every other byte outside printable ASCII as
/// `\DDD`.
pub const ESCAPED_DOMAIN: &str =
    "x\\013\\010bcc:\\032victim@example\\.org\\013\\010\\000\\027[2j\\027]0;pwned\\007\"'`\\255\\254.com";

/// Writes the capture: one query per name from 10.9.9.9, a second apart.
pub fn write(path: &Path) {
    let flow = Flow::to_dns(v4(10, 9, 9, 9), 40_000, v4(192, 0, 2, 53));
    let frames: Vec<(u64, Vec<u8>)> = NAME_LABELS
        .iter()
        .enumerate()
        .map(|(i, first)| {
            let labels: [&[u8]; 3] = [first, DOMAIN_LABEL, b"com"];
            let ts = EPOCH + i as u64 * 1_000_000_000;
            (
                ts,
                udp_frame(&flow, &query_labels(i as u16, &labels, rtype::TXT)),
            )
        })
        .collect();
    write_pcap(path, LinkType::Ethernet, frames).expect("capture written");
}

/// Whether `text` holds only printable ASCII and the line breaks a format puts between
/// its own records (`\n`), never a name's CR, NUL, ESC or a byte above 0x7E.
pub fn printable(text: &[u8]) -> bool {
    text.iter()
        .all(|&b| b == b'\n' || (0x20..0x7f).contains(&b))
}
