//! The decoder against other projects' DNS test captures (`../shared/captures/peers/`):
//! per file, the queries, responses and distinct query names the sensor's decoder finds
//! must equal what the manifest states (tshark's two-pass dissection), except where a
//! listed, explained convention differs.

mod common;

use std::collections::{BTreeMap, HashSet};

use dns_sensor::capture::CaptureReader;
use dns_sensor::decode::{parse_question, DecodeSettings, Decoder, Name};

/// What the manifest or the decoder says of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counts {
    queries: u64,
    responses: u64,
    distinct_names: u64,
}

/// The "tshark DNS summary" of every file in the manifest.
fn manifest() -> BTreeMap<String, Counts> {
    let text = std::fs::read_to_string(common::capture("peers/MANIFEST.md")).expect("manifest");
    let mut files = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            current = rest.split('`').nth(1).map(str::to_string);
        } else if let (Some(file), Some(summary)) =
            (&current, line.strip_prefix("* **tshark DNS summary:** "))
        {
            let number_before = |word: &str| -> u64 {
                let at = summary
                    .find(word)
                    .unwrap_or_else(|| panic!("{file}: no {word:?} in {summary}"));
                summary[..at]
                    .split_whitespace()
                    .last()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let distinct = summary.rsplit("distinct query names ").next().unwrap();
            files.insert(
                file.clone(),
                Counts {
                    queries: number_before(" queries"),
                    responses: number_before(" responses"),
                    distinct_names: distinct.trim().parse().unwrap(),
                },
            );
        }
    }
    files
}

/// Decodes `file` the way the sensor does, on every port the peers use.
fn decode(file: &str) -> Counts {
    let mut reader =
        CaptureReader::open(&common::capture(&format!("peers/{file}"))).expect("capture");
    let mut decoder = Decoder::new(DecodeSettings {
        ports: vec![53, 1053, 5353, 5355],
        ..DecodeSettings::default()
    });
    let mut name = Name::new();
    let mut counts = Counts::default();
    let mut names = HashSet::new();
    while let Some(frame) = reader.next_frame().expect("readable") {
        decoder.decode(&frame, |packet| {
            if let Ok(question) = parse_question(packet.message, &mut name) {
                if question.is_response {
                    counts.responses += 1;
                } else {
                    counts.queries += 1;
                }
                names.insert(name.as_bytes().to_vec());
            }
        });
    }
    counts.distinct_names = names.len() as u64;
    counts
}

/// Files where the sensor's figures differ from tshark's on purpose, and why.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "suricata-verify-dns-forward-pointer_input.pcap",
        "the query's first name is a forward compression pointer: RFC 1035 pointers refer to a \
         prior occurrence, so the sensor rejects it (counted malformed) where Suricata follows it",
    ),
    (
        "suricata-verify-dns-truncated-rname_poc2.pcap",
        "the names are longer than 255 bytes: malformed for the sensor; Suricata keeps a truncated copy",
    ),
    (
        "suricata-verify-dns-udp-junkrequest-first_input.pcap",
        "tshark dissects an SNMP datagram on the DNS flow as a query; the sensor counts it malformed",
    ),
    (
        "suricata-verify-mdns_ipv6-malformed-fragments-9_frag-9.pcap",
        "the mDNS response has no question section: no name to count it under",
    ),
    (
        "zeek-dns_dns-invalid-names.pcap",
        "all three queries are malformed (label past the end, pointer to itself, pointer loop): \
         tshark counts them as queries, the sensor as malformed",
    ),
    (
        "zeek-dns_mdns-no-assoc.pcap",
        "the three mDNS announcements carry answers and no question: no name to count them under",
    ),
];

#[test]
fn decoder_agrees_with_the_peers_manifest() {
    let expected = manifest();
    assert!(
        expected.len() >= 60,
        "only {} files in the manifest",
        expected.len()
    );
    let mut disagreements = Vec::new();
    for (file, wanted) in &expected {
        let got = decode(file);
        let explained = DIFFERENCES.iter().any(|(f, _)| f == file);
        if got != *wanted && !explained {
            disagreements.push(format!("{file}: manifest {wanted:?}, decoder {got:?}"));
        }
        if got == *wanted && explained {
            disagreements.push(format!(
                "{file}: listed as different but agrees now: {got:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
}
