//! The evidence an alert carries: figures over the window that tell a tunnel from a
//! busy benign service, computed from the merged counts when the alert is made.
//!
//! The names' figures describe their variable part, the labels left of the registered
//! domain, less the trailing labels every sample name shares (`r3---sn-x` keeps its
//! `r3---sn-x`, `<hash>.hash.cymru.com` loses `hash`). Those shared labels are found
//! in the samples only: a handful of names, so a label that all of them share and a
//! later name does not is still taken off.

use crate::sketch::{DomainCounts, EvidenceSums};

/// Query types that carry data in their answers, the ones tunnels pick: CNAME, NULL,
/// MX, TXT, ANY and iodine's PRIVATE (65 399).
const DATA_QTYPES: [u16; 6] = [5, 10, 15, 16, 255, 65399];

/// Figures over one domain's window.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Evidence {
    /// Distinct names per query: near 1 when every query asks a new name (data in the
    /// names), low when names repeat (caches expire, clients come back).
    pub names_per_query: f64,
    /// Distinct clients that asked: exact up to the sketch's `max_clients`, which it
    /// then reads.
    pub clients: u64,
    /// Share of the queries that came from the most active client.
    pub top_client_share: f64,
    /// Mean bytes of a distinct name's variable part.
    pub name_length: f64,
    /// Mean labels of a variable part.
    pub labels: f64,
    /// Mean length of a variable part's longest label.
    pub longest_label: f64,
    /// Share of the sample names' variable parts' characters (dots aside) that are
    /// digits: a hex or base32 encoding has many, words few. The samples only (a few
    /// names): reading every name's bytes on the hot path cost more than the rest of
    /// the evidence together.
    pub digit_share: f64,
    /// Share of the same characters that are neither letters nor digits (hyphens,
    /// underscores, bytes no host name holds).
    pub other_share: f64,
    /// Share of the queries of a data-carrying type (CNAME, NULL, MX, TXT, ANY,
    /// PRIVATE).
    pub data_qtype_share: f64,
    /// Share of the responses that were NXDOMAIN.
    pub nxdomain_share: f64,
    /// Share of the responses with another error (SERVFAIL, REFUSED...).
    pub failure_share: f64,
    /// Mean bytes of a query message.
    pub query_bytes: f64,
    /// Mean bytes of a response message.
    pub response_bytes: f64,
}

/// What the figures are computed from: a domain's counts over the window, from a
/// sensor's merged slots or from the fleet's rows.
#[derive(Clone, Debug)]
pub struct WindowCounts<'a> {
    /// Queries.
    pub requests: u64,
    /// Responses.
    pub responses: u64,
    /// Distinct names.
    pub unique_names: u64,
    /// Sum of query message sizes.
    pub bytes_in: u64,
    /// Sum of response message sizes.
    pub bytes_out: u64,
    /// Distinct clients (a lower bound where the counts hold only the busiest).
    pub clients: u64,
    /// Queries of the most active client.
    pub top_client_queries: u64,
    /// Query counts by type.
    pub qtypes: &'a [(u16, u64)],
    /// The names' shape and the error answers.
    pub sums: EvidenceSums,
    /// A few names, canonical bytes.
    pub samples: Vec<&'a [u8]>,
}

impl Evidence {
    /// The figures of `counts`, a domain's merged window.
    pub fn of(domain: &[u8], counts: &DomainCounts) -> Self {
        let qtypes = counts.qtypes();
        Self::of_window(
            domain,
            &WindowCounts {
                requests: counts.requests(),
                responses: counts.responses(),
                unique_names: counts.unique_names(),
                bytes_in: counts.bytes_in(),
                bytes_out: counts.bytes_out(),
                clients: counts.client_count() as u64,
                top_client_queries: counts.top_clients(1).first().map_or(0, |&(_, n)| n),
                qtypes: &qtypes,
                sums: *counts.evidence(),
                samples: counts.sample_names().collect(),
            },
        )
    }

    /// The figures of `domain`'s `window`.
    pub fn of_window(domain: &[u8], window: &WindowCounts<'_>) -> Self {
        let sums = &window.sums;
        let (requests, responses) = (window.requests, window.responses);
        let variable_parts = variable_parts(domain, &window.samples);
        let (shared_labels, shared_bytes) = shared_suffix(&variable_parts);
        let (digit_share, other_share) = character_mix(&variable_parts);
        let labels = ratio(u64::from(sums.labels), sums.names.into());
        let data_queries: u64 = window
            .qtypes
            .iter()
            .filter(|(qtype, _)| DATA_QTYPES.contains(qtype))
            .map(|(_, n)| n)
            .sum();
        Self {
            names_per_query: round3(ratio(window.unique_names, requests).min(1.0)),
            clients: window.clients,
            top_client_share: round3(ratio(window.top_client_queries, requests).min(1.0)),
            name_length: round3(
                (ratio(u64::from(sums.bytes), sums.names.into()) - shared_bytes).max(0.0),
            ),
            labels: round3((labels - shared_labels).max(0.0)),
            longest_label: round3(ratio(u64::from(sums.longest_labels), sums.names.into())),
            digit_share: round3(digit_share),
            other_share: round3(other_share),
            data_qtype_share: round3(ratio(data_queries, requests)),
            nxdomain_share: round3(ratio(u64::from(sums.nxdomain), responses)),
            failure_share: round3(ratio(u64::from(sums.failures), responses)),
            query_bytes: round3(ratio(window.bytes_in, requests)),
            response_bytes: round3(ratio(window.bytes_out, responses)),
        }
    }

    /// Every figure by its name (its field's, which the JSON `evidence` object uses),
    /// in the order of the fields: the one list the text outputs (journal fields, mail
    /// lines) are written from, so a new figure reaches all of them.
    pub fn figures(&self) -> [(&'static str, f64); 13] {
        [
            ("names_per_query", self.names_per_query),
            ("clients", self.clients as f64),
            ("top_client_share", self.top_client_share),
            ("name_length", self.name_length),
            ("labels", self.labels),
            ("longest_label", self.longest_label),
            ("digit_share", self.digit_share),
            ("other_share", self.other_share),
            ("data_qtype_share", self.data_qtype_share),
            ("nxdomain_share", self.nxdomain_share),
            ("failure_share", self.failure_share),
            ("query_bytes", self.query_bytes),
            ("response_bytes", self.response_bytes),
        ]
    }
}

/// `figure` to three decimals, as the outputs show it and the score reads it: the
/// same alert then scores the same wherever its figures are shown.
fn round3(figure: f64) -> f64 {
    (figure * 1000.0).round() / 1000.0
}

/// `a / b`, 0 when `b` is.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The variable parts of the sample names of `domain` (the labels left of it), each as
/// its labels from the right.
fn variable_parts<'c>(domain: &[u8], samples: &[&'c [u8]]) -> Vec<Vec<&'c [u8]>> {
    samples
        .iter()
        .filter_map(|name| {
            let variable = name.strip_suffix(domain)?.strip_suffix(b".")?;
            Some(variable.rsplit(|&b| b == b'.').collect())
        })
        .collect()
}

/// The trailing labels that every variable part shares (when there are two or more),
/// as a count of labels and the bytes they add to a variable part (each with its
/// dot). Every part keeps at least one label of its own.
fn shared_suffix(variable_parts: &[Vec<&[u8]>]) -> (f64, f64) {
    let [first, rest @ ..] = variable_parts else {
        return (0.0, 0.0);
    };
    if rest.is_empty() {
        return (0.0, 0.0);
    }
    let (mut labels, mut bytes) = (0usize, 0usize);
    while let Some(label) = first.get(labels) {
        let shared = variable_parts
            .iter()
            .all(|labels_of| labels_of.len() > labels + 1 && labels_of[labels] == *label);
        if !shared {
            break;
        }
        bytes += label.len() + 1;
        labels += 1;
    }
    (labels as f64, bytes as f64)
}

/// The shares of digits and of other bytes (neither letters nor digits) among the
/// variable parts' characters, dots aside.
fn character_mix(variable_parts: &[Vec<&[u8]>]) -> (f64, f64) {
    let (mut characters, mut digits, mut others) = (0u64, 0u64, 0u64);
    for byte in variable_parts
        .iter()
        .flatten()
        .flat_map(|label| label.iter())
    {
        characters += 1;
        match byte {
            b'0'..=b'9' => digits += 1,
            b'a'..=b'z' => {}
            _ => others += 1,
        }
    }
    (ratio(digits, characters), ratio(others, characters))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::{Shard, SketchSettings};
    use std::net::{IpAddr, Ipv4Addr};

    fn client(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    /// `queries` as (name, client, qtype), each answered with `rcode` in 100 bytes.
    fn counts_of(domain: &str, queries: &[(&str, u8, u16)], rcode: u8) -> Evidence {
        let mut shard = Shard::new(0, &SketchSettings::default());
        for &(name, from, qtype) in queries {
            shard.record_query(domain.as_bytes(), name.as_bytes(), client(from), qtype, 40);
            shard.record_response(domain.as_bytes(), 100, rcode);
        }
        Evidence::of(
            domain.as_bytes(),
            shard.get(domain.as_bytes()).expect("held"),
        )
    }

    #[test]
    fn repeats_and_clients() {
        let e = counts_of(
            "a.org",
            &[
                ("x.a.org", 1, 1),
                ("x.a.org", 1, 1),
                ("y.a.org", 2, 1),
                ("x.a.org", 1, 28),
            ],
            0,
        );
        assert_eq!(e.names_per_query, 0.5);
        assert_eq!(e.clients, 2);
        assert_eq!(e.top_client_share, 0.75);
        assert_eq!(e.query_bytes, 40.0);
        assert_eq!(e.response_bytes, 100.0);
        assert_eq!(e.data_qtype_share, 0.0);
    }

    #[test]
    fn the_labels_every_sample_shares_are_not_the_variable_part() {
        // Hashes under a fixed `hash` label: the variable part is the hash alone.
        let e = counts_of(
            "cymru.com",
            &[
                ("0a1b2c3d.hash.cymru.com", 1, 1),
                ("99ffee00.hash.cymru.com", 2, 1),
            ],
            3,
        );
        assert_eq!(e.name_length, 8.0);
        assert_eq!(e.labels, 1.0);
        // The longest label and the character mix are the whole variable part's.
        assert_eq!(e.longest_label, 8.0);
        // 8 digits of 24 characters (the two `hash` labels count).
        assert_eq!(e.digit_share, 0.333);
        assert_eq!(e.nxdomain_share, 1.0);
        assert_eq!(e.failure_share, 0.0);
    }

    #[test]
    fn a_name_that_is_all_shared_labels_keeps_them() {
        let e = counts_of("b.org", &[("www.b.org", 1, 1), ("a.www.b.org", 1, 1)], 0);
        // Nothing is shared by both that leaves each a label of its own.
        assert_eq!(e.name_length, (3.0 + 5.0) / 2.0);
        assert_eq!(e.labels, 1.5);
    }

    #[test]
    fn data_types_errors_and_other_characters() {
        let e = counts_of(
            "t.org",
            &[
                ("a-b_c.t.org", 1, 16),
                ("dd.t.org", 1, 10),
                ("ee.t.org", 1, 1),
                ("ff.t.org", 1, 1),
            ],
            2,
        );
        assert_eq!(e.data_qtype_share, 0.5);
        assert_eq!(e.failure_share, 1.0);
        // A hyphen and an underscore among 3 + 6 letters.
        assert_eq!(e.other_share, 0.182);
    }

    #[test]
    fn a_domain_seen_only_in_responses_has_zero_figures() {
        let mut shard = Shard::new(0, &SketchSettings::default());
        shard.record_response(b"r.org", 90, 3);
        let e = Evidence::of(b"r.org", shard.get(b"r.org").expect("held"));
        assert_eq!(e.names_per_query, 0.0);
        assert_eq!(e.nxdomain_share, 1.0);
        assert_eq!(e.response_bytes, 90.0);
        assert_eq!(e.name_length, 0.0);
    }
}
