//! A few sample names per domain, in one block.

use super::codec::{CodecError, Decoder, Encoder};
use super::shard::heap_block;

/// A few distinct names, in one block: a count byte, then each name as a little-endian
/// `u16` length and the bytes. One block instead of one per name and a vector of
/// pointers halves what five samples cost, and samples are kept for every domain of
/// every slot.
#[derive(Clone, Debug, Default)]
pub(super) struct Samples {
    buf: Box<[u8]>,
}

impl Samples {
    pub(super) fn iter(&self) -> SampleNames<'_> {
        SampleNames {
            rest: self.buf.get(1..).unwrap_or_default(),
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.buf.first().map_or(0, |&n| usize::from(n))
    }

    pub(super) fn contains(&self, name: &[u8]) -> bool {
        self.iter().any(|s| s == name)
    }

    /// Appends `name` (cut to 65 535 bytes, far past any DNS name) unless 255 are held.
    pub(super) fn push(&mut self, name: &[u8]) {
        let Ok(count) = u8::try_from(self.len() + 1) else {
            return;
        };
        let name = &name[..name.len().min(usize::from(u16::MAX))];
        let mut buf = Vec::with_capacity(self.buf.len().max(1) + 2 + name.len());
        buf.push(count);
        buf.extend_from_slice(self.buf.get(1..).unwrap_or_default());
        buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buf.extend_from_slice(name);
        self.buf = buf.into_boxed_slice();
    }

    pub(super) fn heap_bytes(&self) -> usize {
        heap_block(self.buf.len())
    }
}

/// The names kept as samples of a domain, first kept first.
#[derive(Clone, Debug)]
pub struct SampleNames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SampleNames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (name, rest) = rest.split_at(len);
        self.rest = rest;
        Some(name)
    }
}

/// Largest block of samples read back: 255 names of 255 bytes and their lengths.
const MAX_DECODED_SAMPLES: usize = 1 + 255 * (2 + 255);

impl Samples {
    /// Writes the block as it is.
    pub(super) fn encode(&self, e: &mut Encoder) {
        e.bytes(&self.buf);
    }

    /// Reads what [`encode`](Self::encode) wrote: a block whose count byte says how
    /// many names it holds, each whole, and nothing after them.
    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        let buf = d.bytes(MAX_DECODED_SAMPLES, "a block of samples too large")?;
        if let Some((&count, mut rest)) = buf.split_first() {
            for _ in 0..count {
                let [lo, hi, tail @ ..] = rest else {
                    return Err(CodecError::Invalid("a sample name cut short"));
                };
                let len = usize::from(u16::from_le_bytes([*lo, *hi]));
                if tail.len() < len {
                    return Err(CodecError::Invalid("a sample name cut short"));
                }
                rest = &tail[len..];
            }
            if !rest.is_empty() || count == 0 {
                return Err(CodecError::Invalid(
                    "a block of samples with bytes to spare",
                ));
            }
        }
        Ok(Self { buf: buf.into() })
    }
}

#[cfg(test)]
mod tests {
    use crate::sketch::test_shards::*;

    #[test]
    fn samples_are_first_distinct_names() {
        let settings = SketchSettings::default();
        let mut shard = Shard::new(0, &settings);
        for i in [1, 1, 2, 3, 2, 4, 5, 6, 7] {
            shard.record_query(b"pirate.sea", &name(i), CLIENT, 10, 75);
        }
        let counts = shard.get(b"pirate.sea").expect("tracked");
        let expected: Vec<Vec<u8>> = [1, 2, 3, 4, 5].iter().map(|&i| name(i)).collect();
        let samples: Vec<Vec<u8>> = counts.sample_names().map(<[u8]>::to_vec).collect();
        assert_eq!(samples, expected);

        let mut a = shard_with(0, &settings, [1, 2].into_iter());
        a.merge(&shard_with(0, &settings, [2, 3, 4, 5, 6].into_iter()));
        let merged = a.get(b"pirate.sea").expect("tracked");
        let samples: Vec<Vec<u8>> = merged.sample_names().map(<[u8]>::to_vec).collect();
        assert_eq!(samples, expected);
    }

    #[test]
    fn samples_stay_distinct_once_estimated_and_keep_long_names_whole() {
        // Exact limit 2: the third name is already past it, so whether a name is new
        // comes from comparing with the samples held.
        let settings = SketchSettings {
            exact_limit: 2,
            max_samples: 4,
            ..SketchSettings::default()
        };
        let long = [b'a'; 400];
        let mut shard = Shard::new(0, &settings);
        for n in [
            &name(1)[..],
            &name(2),
            &name(3),
            &name(3),
            &long,
            &name(4),
            &name(5),
        ] {
            shard.record_query(b"pirate.sea", n, CLIENT, 10, 75);
        }
        let counts = shard.get(b"pirate.sea").expect("tracked");
        assert!(counts.is_estimated());
        let samples: Vec<&[u8]> = counts.sample_names().collect();
        assert_eq!(samples, vec![&name(1)[..], &name(2), &name(3), &long[..]]);
    }
}
