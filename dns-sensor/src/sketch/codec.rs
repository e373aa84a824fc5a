//! The bytes a snapshot of the window is written in, and their reading: little-endian
//! fixed-width words for hashes and addresses, LEB128 for counts, byte strings behind
//! their length. Each structure of the sketch writes and reads itself with these; a
//! reader checks every length against what is left and every value against what its
//! structure allows, so that damaged or forged bytes are refused, never half read and
//! never a panic.

/// Bytes that cannot be read back as what they should hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes end before what they hold does.
    #[error("cut short")]
    Truncated,
    /// A value its structure cannot hold.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Writes values one after the other.
#[derive(Debug)]
pub struct Encoder {
    buf: Vec<u8>,
    format: u32,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::of_format(FORMAT)
    }
}

impl Encoder {
    /// An empty buffer, to be written in the current [`FORMAT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty buffer, to be written in `format`: an older one is for tests of the
    /// readers of what older versions wrote.
    pub fn of_format(format: u32) -> Self {
        Self {
            buf: Vec::new(),
            format,
        }
    }

    /// The format being written.
    pub fn format(&self) -> u32 {
        self.format
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A word in eight bytes, little-endian: hashes and halves of addresses, which a
    /// variable length would not shorten.
    pub fn word(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A count in LEB128: seven bits a byte, most counts in one or two.
    pub fn count(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// A byte string behind its length.
    pub fn bytes(&mut self, v: &[u8]) {
        self.count(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// What was written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Reads what an [`Encoder`] wrote, in the same order.
#[derive(Debug)]
pub struct Decoder<'a> {
    rest: &'a [u8],
    format: u32,
}

/// The format [`Encoder`] writes. 2 added each domain's
/// [`EvidenceSums`](super::EvidenceSums); a reader of an older format reads what it had.
pub const FORMAT: u32 = 2;

impl<'a> Decoder<'a> {
    /// Reads `bytes`, written in the current [`FORMAT`], from their start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self::of_format(bytes, FORMAT)
    }

    /// Reads `bytes`, written in `format` (1 to [`FORMAT`]), from their start.
    pub fn of_format(bytes: &'a [u8], format: u32) -> Self {
        Self {
            rest: bytes,
            format,
        }
    }

    /// The format being read.
    pub fn format(&self) -> u32 {
        self.format
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(CodecError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    /// A word of eight bytes.
    pub fn word(&mut self) -> Result<u64, CodecError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A LEB128 count of at most ten bytes, whose last byte holds no bits past 64.
    pub fn count(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return Err(CodecError::Invalid("a count past 64 bits"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Invalid("a count past 64 bits"))
    }

    /// A count that must be at most `max`: `what` names it in the error.
    pub fn count_at_most(&mut self, max: u64, what: &'static str) -> Result<u64, CodecError> {
        match self.count()? {
            n if n > max => Err(CodecError::Invalid(what)),
            n => Ok(n),
        }
    }

    /// A number of items that follow, each at least `item_bytes` long: at most
    /// `max`, and never more than the bytes left could hold (so that a forged length
    /// cannot make the reader reserve memory it will never fill).
    pub fn items(
        &mut self,
        max: usize,
        item_bytes: usize,
        what: &'static str,
    ) -> Result<usize, CodecError> {
        let n = self.count_at_most(max as u64, what)? as usize;
        if n.saturating_mul(item_bytes.max(1)) > self.rest.len() {
            return Err(CodecError::Truncated);
        }
        Ok(n)
    }

    /// A byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let n = self.count_at_most(max as u64, what)? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written_and_cut_bytes_are_refused() {
        let mut e = Encoder::new();
        e.u8(7);
        e.word(u64::MAX - 1);
        for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            e.count(n);
        }
        e.bytes(b"pirate.sea");
        let bytes = e.into_bytes();
        let read = |bytes: &[u8]| -> Result<(), CodecError> {
            let mut d = Decoder::new(bytes);
            assert_eq!(d.u8()?, 7);
            assert_eq!(d.word()?, u64::MAX - 1);
            for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
                assert_eq!(d.count()?, n);
            }
            assert_eq!(d.bytes(255, "name")?, b"pirate.sea");
            assert!(d.is_empty());
            Ok(())
        };
        read(&bytes).expect("reads back");
        for cut in 0..bytes.len() {
            assert_eq!(
                read(&bytes[..cut]),
                Err(CodecError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn forged_lengths_and_counts_are_refused() {
        // Eleven bytes of continuation, and a tenth byte with bits past 64.
        let mut d = Decoder::new(&[0xff; 11]);
        assert!(matches!(d.count(), Err(CodecError::Invalid(_))));
        let mut d = Decoder::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(matches!(d.count(), Err(CodecError::Invalid(_))));
        // A billion items of 8 bytes in a handful of bytes.
        let mut e = Encoder::new();
        e.count(1 << 30);
        e.word(1);
        let bytes = e.into_bytes();
        assert_eq!(
            Decoder::new(&bytes).items(usize::MAX, 8, "items"),
            Err(CodecError::Truncated)
        );
        assert_eq!(
            Decoder::new(&bytes).items(1000, 8, "items"),
            Err(CodecError::Invalid("items"))
        );
    }
}
