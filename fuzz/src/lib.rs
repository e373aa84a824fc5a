//! What the fuzz targets in `fuzz_targets/` share: a reader that cuts one fuzz input
//! into the values a target builds its frames and files from, and the checks that
//! more than one target makes.
//!
//! Every input format is documented at the top of its target; `cargo xtask fuzz`
//! writes seeds in those formats (`xtask/src/fuzz.rs`), so a change to one goes with
//! a change to the other.

use dns_sensor::Nanos;

/// Reads values off the front of a fuzz input. Every read succeeds: past the end of
/// the input it gives zeros and empty slices, so a target never has to decide what a
/// short input means.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes as a little-endian `u16` (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next `n` bytes, or all that is left when fewer are.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Whether `inner` lies within `outer` in memory (a sub-slice of it, not a copy).
pub fn within(inner: &[u8], outer: &[u8]) -> bool {
    let outer = outer.as_ptr_range();
    let inner = inner.as_ptr_range();
    outer.start <= inner.start && inner.end <= outer.end
}

/// Where `inner` starts in `outer`, when it is a sub-slice of it.
pub fn offset_in(inner: &[u8], outer: &[u8]) -> Option<usize> {
    within(inner, outer).then(|| inner.as_ptr() as usize - outer.as_ptr() as usize)
}

/// Whether every byte of `text` is printable ASCII, space excluded (0x21..=0x7E):
/// what `escape_name` promises of its output.
pub fn printable_no_space(text: &[u8]) -> bool {
    text.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Whether every byte of `text` is printable ASCII, space included (0x20..=0x7E): what
/// the outputs promise of a line or a field built around escaped names.
pub fn printable(text: &[u8]) -> bool {
    text.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// A capture time to start the targets' traffic at: 2026-12-01 00:00:00 UTC.
pub const T0: Nanos = 1_796_083_200 * dns_sensor::NANOS_PER_SEC;

/// One tenth of a second: the unit of the time steps in the targets' inputs.
pub const TENTH: Nanos = dns_sensor::NANOS_PER_SEC / 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_as_zeros() {
        let mut input = Input::new(&[1, 2, 3]);
        assert_eq!(input.u16(), 0x0201);
        assert_eq!(input.bytes(5), &[3]);
        assert!(input.is_empty());
        assert_eq!((input.u8(), input.u16(), input.rest()), (0, 0, &[][..]));
    }

    #[test]
    fn sub_slices_are_told_from_copies() {
        let outer = [1u8, 2, 3, 4];
        assert!(within(&outer[1..3], &outer));
        assert_eq!(offset_in(&outer[2..], &outer), Some(2));
        let copy = outer.to_vec();
        assert!(!within(&copy[1..3], &outer));
        assert_eq!(offset_in(&[2, 3], &outer), None);
    }
}
