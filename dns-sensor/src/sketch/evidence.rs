//! What a domain's names look like and how its queries were answered, beyond the
//! count: the sums the severity is computed from.
//!
//! Everything here is a sum of small counters, so it merges by addition across
//! workers, slots and sensors, and costs a fixed 24 bytes a domain-slot (which took
//! the counts from mimalloc's 128-byte class to its 160-byte one). The names are
//! measured once each, when the set of names first sees them (repeats of a name add
//! nothing), and only their variable part: the labels left of the registered domain.

use super::codec::{CodecError, Decoder, Encoder};

/// Distinct names measured per domain-slot: past it the shape's means are those of the
/// first names, and the sums stay far inside 32 bits after any merge of a window's
/// slots (4 096 names of at most 255 bytes is 1 MiB a slot).
pub const SHAPE_NAMES: u32 = 4096;

/// RCODE 3: the name does not exist.
const NXDOMAIN: u8 = 3;

/// Sums over a domain's distinct names and its responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvidenceSums {
    /// Names measured (at most [`SHAPE_NAMES`] a slot).
    pub names: u32,
    /// Bytes of their variable parts, dots between labels included.
    pub bytes: u32,
    /// Labels of their variable parts.
    pub labels: u32,
    /// Of each name's variable part, its longest label's length.
    pub longest_labels: u32,
    /// Responses with RCODE NXDOMAIN.
    pub nxdomain: u32,
    /// Responses with another error RCODE (SERVFAIL, REFUSED and the rest).
    pub failures: u32,
}

impl EvidenceSums {
    /// Measures one distinct name's variable part: its first `variable` bytes (without
    /// the dot that joins them to the registered domain; 0 for the domain itself),
    /// whose labels start at `label_starts` when the parser knew (offsets in the
    /// name, as [`Name::label_starts`](crate::decode::Name::label_starts) gives them).
    /// From the offsets, a name costs a step per label, not per byte: measured with
    /// a scan of its bytes instead, the sensor spent 28 more instructions a frame on
    /// the resolver mix.
    #[inline]
    pub(super) fn record_name(
        &mut self,
        name: &[u8],
        variable: usize,
        label_starts: Option<&[u8]>,
    ) {
        if self.names >= SHAPE_NAMES {
            return;
        }
        let (labels, longest) = match label_starts {
            _ if variable == 0 => (0, 0),
            Some(starts) => {
                let (mut labels, mut longest, mut start) = (0u32, 0usize, 0usize);
                for &next in starts.iter().skip(1) {
                    let next = usize::from(next);
                    if next > variable + 1 {
                        break;
                    }
                    // The parser's offsets only grow; saturating keeps a bad one from wrapping.
                    longest = longest.max(next.saturating_sub(start + 1));
                    labels += 1;
                    start = next;
                }
                (labels, longest as u32)
            }
            None => name[..variable]
                .split(|&b| b == b'.')
                .fold((0u32, 0u32), |(labels, longest), label| {
                    (labels + 1, longest.max(label.len() as u32))
                }),
        };
        self.names += 1;
        // A name is at most 255 bytes: a window's sums stay under 2^32 (SHAPE_NAMES).
        self.bytes = self.bytes.saturating_add(variable.min(255) as u32);
        self.labels = self.labels.saturating_add(labels);
        self.longest_labels = self.longest_labels.saturating_add(longest.min(255));
    }

    /// Counts one response's RCODE.
    #[inline]
    pub(super) fn record_rcode(&mut self, rcode: u8) {
        match rcode {
            0 => {}
            NXDOMAIN => self.nxdomain = self.nxdomain.saturating_add(1),
            _ => self.failures = self.failures.saturating_add(1),
        }
    }

    /// Adds `other`'s sums into `self`.
    pub fn merge(&mut self, other: &EvidenceSums) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(other.fields()) {
            *mine = mine.saturating_add(theirs);
        }
    }

    fn fields(&self) -> [u32; 6] {
        [
            self.names,
            self.bytes,
            self.labels,
            self.longest_labels,
            self.nxdomain,
            self.failures,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u32; 6] {
        [
            &mut self.names,
            &mut self.bytes,
            &mut self.labels,
            &mut self.longest_labels,
            &mut self.nxdomain,
            &mut self.failures,
        ]
    }

    /// Writes the sums in order.
    pub(super) fn encode(&self, e: &mut Encoder) {
        for field in self.fields() {
            e.count(u64::from(field));
        }
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        let mut evidence = Self::default();
        for field in evidence.fields_mut() {
            *field = d.count_at_most(u64::from(u32::MAX), "an evidence sum past 32 bits")? as u32;
        }
        Ok(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the parser says `name`'s labels start.
    fn starts(name: &str) -> Vec<u8> {
        let mut starts = vec![0];
        starts.extend(name.match_indices('.').map(|(i, _)| i as u8 + 1));
        starts
    }

    /// Each of `names` under `domain`, with the label offsets (`parsed`) or without.
    fn measured(domain: &str, names: &[&str], parsed: bool) -> EvidenceSums {
        let mut evidence = EvidenceSums::default();
        for name in names {
            let variable = name.len().saturating_sub(domain.len() + 1);
            let starts = starts(name);
            evidence.record_name(name.as_bytes(), variable, parsed.then_some(&starts[..]));
        }
        evidence
    }

    #[test]
    fn measures_length_and_labels_of_the_variable_part() {
        let names = [
            "www.a.co.uk",
            "r3---sn-4g5e.c.a.co.uk",
            "0.1.168.192.a.co.uk",
            "a.co.uk",
        ];
        for parsed in [true, false] {
            let evidence = measured("a.co.uk", &names, parsed);
            assert_eq!(evidence.names, 4);
            assert_eq!(evidence.bytes, 3 + 14 + 11);
            assert_eq!(evidence.labels, 1 + 2 + 4);
            assert_eq!(evidence.longest_labels, 3 + 12 + 3, "parsed: {parsed}");
        }
    }

    #[test]
    fn stops_measuring_past_the_bound() {
        let mut evidence = EvidenceSums::default();
        for _ in 0..SHAPE_NAMES + 10 {
            evidence.record_name(b"abc.d.org", 3, Some(&[0, 4, 6]));
        }
        assert_eq!(evidence.names, SHAPE_NAMES);
        assert_eq!(evidence.bytes, 3 * SHAPE_NAMES);
        assert_eq!(evidence.longest_labels, 3 * SHAPE_NAMES);
    }

    #[test]
    fn counts_error_rcodes_apart() {
        let mut evidence = EvidenceSums::default();
        for rcode in [0, 3, 3, 2, 5, 0, 15] {
            evidence.record_rcode(rcode);
        }
        assert_eq!((evidence.nxdomain, evidence.failures), (2, 3));
    }

    #[test]
    fn merges_by_addition_and_round_trips() {
        let mut a = measured("d.org", &["abc.x1.d.org"], true);
        a.record_rcode(3);
        let b = measured("d.org", &["x-y.d.org"], true);
        let mut merged = a;
        merged.merge(&b);
        assert_eq!(merged.names, 2);
        assert_eq!(merged.bytes, 9);
        assert_eq!(merged.labels, 3);
        assert_eq!(merged.nxdomain, 1);
        let mut full = EvidenceSums {
            bytes: u32::MAX - 1,
            ..merged
        };
        full.merge(&merged);
        assert_eq!(full.bytes, u32::MAX);

        let mut e = Encoder::new();
        merged.encode(&mut e);
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(EvidenceSums::decode(&mut d).unwrap(), merged);
        assert!(d.is_empty());
        for cut in 0..bytes.len() {
            assert!(EvidenceSums::decode(&mut Decoder::new(&bytes[..cut])).is_err());
        }
    }
}
