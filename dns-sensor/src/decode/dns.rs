//! The DNS header and first question, parsed without allocating.
//!
//! Only what the detector needs is read: the header and the first question. The rest of
//! the message (answers, EDNS) is never looked at, so a malformed answer section cannot
//! cost a query its count.

/// Longest name [`Name`] holds: 255 wire bytes, with room for escaping `.` and `\`
/// inside labels.
pub const MAX_NAME_LEN: usize = 512;

/// Longest name on the wire (RFC 1035 section 3.1), length bytes and root label included.
pub const MAX_WIRE_NAME_LEN: usize = 255;

/// Most compression pointers followed in one name. The pointer rule in
/// [`parse_question`] already makes loops impossible; this bounds the work a crafted
/// chain of tiny hops can cause.
pub const MAX_POINTER_JUMPS: usize = 64;

/// Size of the fixed DNS header.
const HEADER_LEN: usize = 12;

/// A query name in the sensor's canonical form: labels joined by `.`, no trailing dot,
/// `A`-`Z` lower-cased (RFC 4343, nothing else), every other byte kept raw except that
/// `.` and `\` inside a label are written `\.` and `\\` so that label boundaries stay
/// unambiguous. The root name is empty.
///
/// Kept inline (no heap) so that one `Name` can be reused for every packet.
pub struct Name {
    /// The name, then room for whole-word reads past its end.
    buf: [u8; MAX_NAME_LEN + BLOCK],
    len: usize,
    /// Where each label starts, left to right, when the reader knew it (every name
    /// without an escape: the fast reader); `label_count` 0 otherwise.
    label_starts: [u8; MAX_LABELS],
    label_count: usize,
}

/// Most labels a wire name has: 255 bytes hold at most 127 one-byte labels. A power
/// of two, which the fast reader's masked writes rely on.
const MAX_LABELS: usize = 128;
const _: () = assert!(MAX_LABELS.is_power_of_two() && MAX_NAME_LEN + BLOCK > 255);

/// Bytes handled at once by the block-wide scan of a name: a vector register's worth.
const BLOCK: usize = 16;

impl Name {
    /// An empty name, ready to be filled by [`parse_question`].
    pub fn new() -> Self {
        Self {
            buf: [0; MAX_NAME_LEN + BLOCK],
            len: 0,
            label_starts: [0; MAX_LABELS],
            label_count: 0,
        }
    }

    /// The canonical bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Where each label starts in [`as_bytes`](Self::as_bytes), left to right, when the
    /// parser knew it without looking again (names with no escaped byte); `None`
    /// otherwise. Spares the registered-domain lookup a scan of the name.
    pub fn label_starts(&self) -> Option<&[u8]> {
        match self.label_count {
            0 => None,
            n => self.label_starts.get(..n),
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Self::new()
    }
}

/// The header fields and first question of a DNS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    /// Transaction id.
    pub id: u16,
    /// QR bit: false for a query, true for a response.
    pub is_response: bool,
    /// Header opcode (0 = QUERY).
    pub opcode: u8,
    /// Header response code (low 4 bits).
    pub rcode: u8,
    /// Question count claimed by the header.
    pub qdcount: u16,
    /// QTYPE of the first question.
    pub qtype: u16,
    /// QCLASS of the first question.
    pub qclass: u16,
}

/// Why a message was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than the 12-byte header.
    #[error("shorter than a DNS header")]
    ShortHeader,
    /// The header claims no question.
    #[error("no question")]
    NoQuestion,
    /// A label or the question runs past the end of the message.
    #[error("question runs past the end of the message")]
    Truncated,
    /// A compression pointer points at or after itself, back into its own name (a
    /// loop), or is one too many in a chain.
    #[error("bad compression pointer")]
    BadPointer,
    /// A label type other than a plain label or a pointer (0x40, 0x80).
    #[error("unsupported label type")]
    BadLabel,
    /// The name is longer than 255 bytes on the wire.
    #[error("name longer than 255 bytes")]
    NameTooLong,
}

/// Parses the header and the first question of `message`, writing the question's name
/// into `name` in canonical form.
///
/// Only the first question is read, whatever `qdcount` claims. On error `name` is left
/// empty. A compression pointer must point before every byte the name has used so far
/// (which implies before the pointer itself): a name can then never revisit its own
/// bytes, so loops are impossible by construction and reported as
/// [`DnsError::BadPointer`], like forward pointers. [`MAX_POINTER_JUMPS`] bounds the
/// rest.
// Inlined by force into the worker (see `VerdictCache::classify_hinted`).
#[inline(always)]
pub fn parse_question(message: &[u8], name: &mut Name) -> Result<Question, DnsError> {
    name.len = 0;
    name.label_count = 0;
    let header: &[u8; HEADER_LEN] = message.first_chunk().ok_or(DnsError::ShortHeader)?;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if qdcount == 0 {
        return Err(DnsError::NoQuestion);
    }
    let tail = read_name_fast(message, HEADER_LEN, name)
        .unwrap_or_else(|| read_name(message, HEADER_LEN, name))
        .and_then(|after_name| {
            message
                .get(after_name..)
                .and_then(|rest| rest.first_chunk::<4>())
                .ok_or(DnsError::Truncated)
        });
    let &[t0, t1, c0, c1] = match tail {
        Ok(tail) => tail,
        Err(e) => {
            name.len = 0;
            return Err(e);
        }
    };
    Ok(Question {
        id: u16::from_be_bytes([header[0], header[1]]),
        is_response: header[2] & 0x80 != 0,
        opcode: (header[2] >> 3) & 0x0f,
        rcode: header[3] & 0x0f,
        qdcount,
        qtype: u16::from_be_bytes([t0, t1]),
        qclass: u16::from_be_bytes([c0, c1]),
    })
}

/// The common case of [`read_name`]: a name stored whole at `start` (no compression
/// pointer, as a question's name nearly always is) whose labels hold no `.` or `\\`.
/// Copies the wire bytes at once, turns the length bytes between labels into dots, and
/// lower-cases and checks the result a word at a time. `None` when the name is not of
/// that kind (the general reader then starts over); a name that is bad in a way the
/// general reader would also refuse is reported as it would report it.
// Inlined by force: once the worker's counting was inlined into the decoder, the
// compiler left this a call (about 20 instructions a frame).
#[inline(always)]
fn read_name_fast(
    message: &[u8],
    start: usize,
    name: &mut Name,
) -> Option<Result<usize, DnsError>> {
    // Find the end: the root label, no pointer on the way; and where each label's text
    // will start once the first length byte is dropped (its length byte's offset).
    let mut pos = start;
    let mut labels = 0usize;
    loop {
        let len_byte = *message.get(pos)?;
        if len_byte == 0 {
            break;
        }
        if len_byte & 0xc0 != 0 {
            return None;
        }
        // Past 127 labels the name is longer than the wire limit and refused below, so
        // offsets past 255 bytes, and the masked slot they wrap to, are never read.
        // Masked, and a byte wide, to be in bounds by construction: no checks.
        name.label_starts[labels & (MAX_LABELS - 1)] = (pos - start) as u8;
        labels += 1;
        pos += 1 + usize::from(len_byte);
    }
    // Checked once at the end rather than each label: the walk is bounded by the
    // message anyway.
    if pos - start + 1 > MAX_WIRE_NAME_LEN {
        return None;
    }
    name.len = 0;
    if labels == 0 {
        return Some(Ok(pos + 1));
    }
    // `L1 a a a L2 b b L3 c c c 0` becomes `a a a L2 b b L3 c c c`, is lower-cased and
    // checked (the length bytes, 1 to 63, are no letters and no `\\`; one of 46 reads as
    // a `.` and only sends the name to the general reader), then its length bytes
    // become dots.
    let text = message.get(start + 1..pos)?;
    name.buf.get_mut(..text.len())?.copy_from_slice(text);
    name.len = text.len();
    if !name.lower_and_check_plain() {
        name.len = 0;
        return None;
    }
    // Within the wire limit there are at most 127 labels, each offset below 255.
    for label in 1..labels {
        let at = name.label_starts[label & (MAX_LABELS - 1)];
        name.buf[usize::from(at.wrapping_sub(1))] = b'.';
    }
    name.label_count = labels;
    Some(Ok(pos + 1))
}

/// Decodes the name starting at `start` into `name`; returns the offset just after the
/// name as it sits at `start` (after its first pointer, if any).
fn read_name(message: &[u8], start: usize, name: &mut Name) -> Result<usize, DnsError> {
    let mut pos = start;
    // Lowest offset this name has read: every pointer must go below it.
    let mut lowest = start;
    let mut after_name = None;
    let mut jumps = 0;
    // Length bytes and label bytes so far, root label excluded.
    let mut wire_len = 0;
    loop {
        let len_byte = *message.get(pos).ok_or(DnsError::Truncated)?;
        match len_byte >> 6 {
            0 => {
                let label_len = usize::from(len_byte);
                if label_len == 0 {
                    name.finish();
                    return Ok(after_name.unwrap_or(pos + 1));
                }
                wire_len += 1 + label_len;
                // The root label's byte must still fit.
                if wire_len + 1 > MAX_WIRE_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                let label = message
                    .get(pos + 1..pos + 1 + label_len)
                    .ok_or(DnsError::Truncated)?;
                name.push_label(label)?;
                pos += 1 + label_len;
            }
            0b11 => {
                let low = *message.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(len_byte & 0x3f) << 8 | usize::from(low);
                jumps += 1;
                if target >= lowest || jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::BadPointer);
                }
                after_name.get_or_insert(pos + 2);
                lowest = target;
                pos = target;
            }
            // 0x40 (extended labels, long deprecated) and 0x80 (reserved).
            _ => return Err(DnsError::BadLabel),
        }
    }
}

impl Name {
    /// Appends one wire label, raw, after a `.` unless it is the first; `.` and `\\`
    /// inside it are escaped. Lower-casing is left to [`finish`](Self::finish), one pass
    /// over the whole name.
    ///
    /// The wire-length check done by the caller (at most 255 bytes) keeps the worst case
    /// (every byte escaped) within [`MAX_NAME_LEN`]; running out of room anyway is
    /// reported as too long rather than trusted.
    #[inline]
    fn push_label(&mut self, label: &[u8]) -> Result<(), DnsError> {
        let mut out = self.len;
        let dot = usize::from(out != 0);
        let dst = self
            .buf
            .get_mut(out..out + dot + label.len())
            .ok_or(DnsError::NameTooLong)?;
        // Common case: no byte needs escaping, and the label is copied as it is.
        if !needs_escape(label) {
            if let Some((first, rest)) = dst.split_first_mut().filter(|_| dot == 1) {
                *first = b'.';
                rest.copy_from_slice(label);
            } else {
                dst.copy_from_slice(label);
            }
            self.len = out + dot + label.len();
            return Ok(());
        }
        if dot == 1 {
            *self.buf.get_mut(out).ok_or(DnsError::NameTooLong)? = b'.';
            out += 1;
        }
        for &s in label {
            if s == b'.' || s == b'\\' {
                *self.buf.get_mut(out).ok_or(DnsError::NameTooLong)? = b'\\';
                out += 1;
            }
            *self.buf.get_mut(out).ok_or(DnsError::NameTooLong)? = s;
            out += 1;
        }
        self.len = out;
        Ok(())
    }

    /// Lower-cases `A`-`Z` (RFC 4343: nothing else) over the whole name, eight bytes at
    /// a time. Escapes are unaffected: `\\` and `.` are not letters.
    #[inline]
    fn finish(&mut self) {
        let name = &mut self.buf[..self.len];
        let mut chunks = name.chunks_exact_mut(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(&*chunk).unwrap_or_default());
            chunk.copy_from_slice(&lowercase_word(word).to_le_bytes());
        }
        chunks.into_remainder().make_ascii_lowercase();
    }

    /// Lower-cases the name as [`finish`](Self::finish) does; whether no byte of it is a
    /// `.` or a `\\`. A block of 16 bytes at a time (bytes past the name's end are
    /// lower-cased too, harmlessly, but not checked).
    // Inlined by force, as `read_name_fast` is (its call cost 8 instructions a frame).
    #[inline(always)]
    fn lower_and_check_plain(&mut self) -> bool {
        let len = self.len;
        let mut special = false;
        let mut at = 0;
        while at < len {
            let Some(block) = self
                .buf
                .get_mut(at..at + BLOCK)
                .and_then(|c| <&mut [u8; BLOCK]>::try_from(c).ok())
            else {
                return false;
            };
            special |= lower_block(block, len - at);
            at += BLOCK;
        }
        !special
    }
}

/// Lower-cases `A`-`Z` in `block` and says whether one of its first `valid` bytes is a
/// `.` or a `\\`, with SSE2 (part of every x86-64): 16 bytes in about ten instructions,
/// where a byte at a time took about twenty a byte and 64-bit words (below, for other
/// targets) about five.
#[cfg(target_arch = "x86_64")]
#[inline]
fn lower_block(block: &mut [u8; BLOCK], valid: usize) -> bool {
    use std::arch::x86_64::{
        _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_storeu_si128,
    };
    let valid_bits = if valid >= BLOCK {
        u32::MAX
    } else {
        (1u32 << valid) - 1
    };
    // SAFETY: SSE2 is in the x86-64 baseline, so these intrinsics are always available;
    // the load and the store are unaligned ones of exactly the 16 bytes of `block`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        // 'A'..='Z' moved to 0x80..=0x99, the only bytes below 0x9a as signed values.
        let moved = _mm_add_epi8(bytes, _mm_set1_epi8(0x80u8.wrapping_sub(b'A') as i8));
        let upper = _mm_cmplt_epi8(moved, _mm_set1_epi8((0x80u8 + 26) as i8));
        let lowered = _mm_or_si128(bytes, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        _mm_storeu_si128(block.as_mut_ptr().cast(), lowered);
        let dots = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'.' as i8));
        let backslashes = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
        let special = _mm_movemask_epi8(_mm_or_si128(dots, backslashes)) as u32;
        special & valid_bits != 0
    }
}

/// [`lower_block`] for targets without SSE2.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn lower_block(block: &mut [u8; BLOCK], valid: usize) -> bool {
    lower_block_words(block, valid)
}

/// [`lower_block`] in two 64-bit words, for any target.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn lower_block_words(block: &mut [u8; BLOCK], valid: usize) -> bool {
    let mut special = false;
    for (i, half) in block.chunks_exact_mut(8).enumerate() {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(&*half).unwrap_or_default());
        let valid_here = valid.saturating_sub(8 * i).min(8);
        let valid_mask = if valid_here == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * valid_here)) - 1
        };
        special |= (has_zero_byte(word ^ splat(b'.')) | has_zero_byte(word ^ splat(b'\\')))
            & valid_mask
            != 0;
        half.copy_from_slice(&lowercase_word(word).to_le_bytes());
    }
    special
}

/// Bytes of a word with only their high bit possibly set, as the tests below use them.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const LOW_SEVEN_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Repeats a byte in every byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The eight bytes of `word` with `A`-`Z` lower-cased and every other byte kept: per
/// byte, the high bit of `(b & 0x7f) + (0x80 - 'A')` says `b & 0x7f >= 'A'`, that of
/// `(b & 0x7f) + (0x80 - 'Z' - 1)` says it is past `Z`, and bytes with their own high bit
/// set are left alone; the letters get 0x20 added.
#[inline]
fn lowercase_word(word: u64) -> u64 {
    let low = word & LOW_SEVEN_BITS;
    let from_a = low + splat(0x80 - b'A');
    let past_z = low + splat(0x80 - b'Z' - 1);
    let upper = from_a & !past_z & !word & HIGH_BITS;
    word | (upper >> 2)
}

/// The high bit of every zero byte of `word` set, and maybe of some bytes above a zero
/// one (the classic has-zero-byte test: a borrow runs upwards only from a real zero, so
/// the mask is zero exactly when no byte is).
#[inline]
fn has_zero_byte(word: u64) -> u64 {
    word.wrapping_sub(splat(0x01)) & !word & HIGH_BITS
}

/// Whether `label` holds a `.` or a `\\`, which the canonical form escapes. Eight bytes
/// at a time: real labels rarely hold either.
#[inline]
fn needs_escape(label: &[u8]) -> bool {
    let mut chunks = label.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        if has_zero_byte(word ^ splat(b'.')) | has_zero_byte(word ^ splat(b'\\')) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b == b'.' || b == b'\\')
}

impl std::fmt::Debug for Name {
    /// Shows the canonical bytes, with bytes outside printable ASCII as `\xNN`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Name(\"{}\")", self.as_bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query header (id 0x1234, RD) claiming `qdcount` questions, then `body`.
    fn message(qdcount: u16, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00];
        m.extend_from_slice(&qdcount.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(body);
        m
    }

    /// Wire form of a dotted name (no escapes) followed by qtype and class IN.
    fn question(dotted: &[u8], qtype: u16) -> Vec<u8> {
        let mut q = Vec::new();
        for label in dotted.split(|&b| b == b'.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label);
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    fn parse(m: &[u8]) -> Parsed {
        let mut name = Name::new();
        let r = parse_question(m, &mut name);
        (r, name.as_bytes().to_vec())
    }

    #[test]
    fn plain_query() {
        let m = message(1, &question(b"www.Example.COM", 28));
        let (q, n) = parse(&m);
        assert_eq!(
            q,
            Ok(Question {
                id: 0x1234,
                is_response: false,
                opcode: 0,
                rcode: 0,
                qdcount: 1,
                qtype: 28,
                qclass: 1
            })
        );
        assert_eq!(n, b"www.example.com");
    }

    #[test]
    fn header_bits() {
        let mut m = message(60_000, &question(b"a.b", 1));
        // QR=1, opcode 5 (UPDATE), AA; RA, rcode 3 (NXDOMAIN) plus a Z bit.
        m[2] = 0x80 | (5 << 3) | 0x04;
        m[3] = 0x80 | 0x40 | 0x03;
        let q = parse(&m).0.unwrap();
        assert!(q.is_response);
        assert_eq!((q.opcode, q.rcode, q.qdcount), (5, 3, 60_000));
    }

    #[test]
    fn root_name_is_empty() {
        let m = message(1, &[0, 0, 2, 0, 1]);
        let (q, n) = parse(&m);
        assert_eq!(q.unwrap().qtype, 2);
        assert!(n.is_empty());
    }

    #[test]
    fn short_header_and_no_question() {
        assert_eq!(parse(&[0; 11]).0, Err(DnsError::ShortHeader));
        assert_eq!(parse(&[]).0, Err(DnsError::ShortHeader));
        assert_eq!(
            parse(&message(0, &question(b"a.b", 1))).0,
            Err(DnsError::NoQuestion)
        );
        // A response with no question is still no question here.
        let mut m = message(0, &[]);
        m[2] |= 0x80;
        assert_eq!(parse(&m).0, Err(DnsError::NoQuestion));
    }

    #[test]
    fn truncated_everywhere() {
        let full = message(1, &question(b"abc.de", 1));
        assert!(parse(&full).0.is_ok());
        // Every cut between the end of the header and the end of the question.
        for cut in HEADER_LEN..full.len() {
            let (r, n) = parse(&full[..cut]);
            assert_eq!(r, Err(DnsError::Truncated), "cut at {cut}");
            assert!(n.is_empty(), "name left behind on error");
        }
    }

    #[test]
    fn label_types() {
        for first in [0x40u8, 0x41, 0x80, 0xbf] {
            let m = message(1, &[first, b'a', 0, 0, 1, 0, 1]);
            assert_eq!(parse(&m).0, Err(DnsError::BadLabel), "{first:#x}");
        }
        // After a good label too.
        let m = message(1, &[1, b'a', 0x41, 0, 0, 1, 0, 1]);
        assert_eq!(parse(&m).0, Err(DnsError::BadLabel));
    }

    #[test]
    fn name_length_limit() {
        // 4 labels of 63 = 256 bytes with length bytes, 257 with the root: too long.
        let l63 = [b'x'; 63];
        let mut body = Vec::new();
        for _ in 0..4 {
            body.push(63);
            body.extend_from_slice(&l63);
        }
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&message(1, &body)).0, Err(DnsError::NameTooLong));
        // 3 x 63 + one of 61 = 255 exactly: accepted.
        let mut body = Vec::new();
        for _ in 0..3 {
            body.push(63);
            body.extend_from_slice(&l63);
        }
        body.push(61);
        body.extend_from_slice(&[b'y'; 61]);
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let (q, n) = parse(&message(1, &body));
        assert!(q.is_ok());
        assert_eq!(n.len(), 63 * 3 + 61 + 3);
        // 255 wire bytes of one-byte labels that all need escaping: the worst case
        // for the canonical form (127 labels, 381 bytes) must fit.
        let mut body = Vec::new();
        for _ in 0..127 {
            body.extend_from_slice(&[1, b'\\']);
        }
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let (q, n) = parse(&message(1, &body));
        assert!(q.is_ok());
        assert_eq!(n.len(), 127 * 3 - 1);
        // Worst case for bytes per label: 63-byte labels of dots.
        let mut body = Vec::new();
        for _ in 0..3 {
            body.push(63);
            body.extend_from_slice(&[b'.'; 63]);
        }
        body.push(61);
        body.extend_from_slice(&[b'.'; 61]);
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let (q, n) = parse(&message(1, &body));
        assert!(q.is_ok());
        assert_eq!(n.len(), 2 * (63 * 3 + 61) + 3);
        assert!(n.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn escapes_case_and_high_bytes() {
        // Labels: "A.b", "C\\d", 0x00, 0xC3 0x89 (UTF-8 É), "Zz".
        let body = [
            3, b'A', b'.', b'b', 3, b'C', b'\\', b'd', 1, 0, 2, 0xc3, 0x89, 2, b'Z', b'z', 0, 0, 1,
            0, 1,
        ];
        let (q, n) = parse(&message(1, &body));
        assert!(q.is_ok());
        assert_eq!(n, b"a\\.b.c\\\\d.\x00.\xc3\x89.zz");
    }

    #[test]
    fn backward_pointer_is_followed() {
        // A crafted but legal question whose suffix is a pointer back into the header's
        // id/flags bytes, set up to spell the label "x" and then the root.
        let mut m = message(1, &[1, b'a', 0xc0, 0x00, 0, 16, 0, 1]);
        m[0] = 1;
        m[1] = b'X';
        m[2] = 0;
        let (q, n) = parse(&m);
        let q = q.unwrap();
        assert_eq!(n, b"a.x");
        // qtype/qclass come right after the pointer, not after the pointed-to name.
        assert_eq!((q.qtype, q.qclass), (16, 1));
    }

    #[test]
    fn bad_pointers() {
        // Pointer to itself.
        let m = message(1, &[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&m).0, Err(DnsError::BadPointer));
        // Forward pointer to a well-formed name later in the message.
        let mut body = vec![0xc0, 18, 0, 1, 0, 1];
        body.extend_from_slice(&question(b"a.b", 1));
        assert_eq!(parse(&message(1, &body)).0, Err(DnsError::BadPointer));
        // Loop: "a" then a pointer back to the start of the name.
        let m = message(1, &[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&m).0, Err(DnsError::BadPointer));
        // Loop between two labels of the same name, pointing into its middle.
        let m = message(1, &[1, b'a', 1, b'b', 0xc0, 14, 0, 1, 0, 1]);
        assert_eq!(parse(&m).0, Err(DnsError::BadPointer));
        // A pointer cut in half.
        let m = message(1, &[1, b'a', 0xc0]);
        assert_eq!(parse(&m).0, Err(DnsError::Truncated));
    }

    #[test]
    fn long_backward_chain_is_bounded() {
        // Offsets 12.. hold 100 two-byte pointers each pointing at the previous one,
        // the first at a root label in the header (offset 11, the low byte of arcount).
        // The name starts at the last pointer: 100 jumps, over the limit.
        let mut body = Vec::new();
        let mut prev = 11u16;
        for i in 0..100u16 {
            body.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            prev = 12 + 2 * i;
        }
        let mut m = message(1, &[]);
        m.extend_from_slice(&body);
        m.extend_from_slice(&[0, 1, 0, 1]);
        // Read the name from the last pointer through the private helper.
        let mut name = Name::new();
        let start = m.len() - 6;
        assert_eq!(read_name(&m, start, &mut name), Err(DnsError::BadPointer));
        // 64 jumps are still fine.
        let start = 12 + 2 * (MAX_POINTER_JUMPS - 1);
        assert_eq!(read_name(&m, start, &mut name), Ok(start + 2));
        assert!(name.as_bytes().is_empty());
    }

    #[test]
    fn hostile_inputs_never_panic() {
        // Deterministic, so failures reproduce.
        let mut rng = crate::synth::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
        let mut name = Name::new();
        let mut buf = [0u8; 300];
        let mut outcomes = [0usize; 2];
        for _ in 0..200_000 {
            let len = (rng.next_u64() % 300) as usize;
            for b in buf[..len].iter_mut() {
                *b = rng.next_u64() as u8;
            }
            // Make names more likely than uniform bytes would: small label lengths,
            // and pointers into the message.
            if len > 13 && rng.next_u64() % 2 == 0 {
                buf[4] = 0;
                buf[5] = 1;
                for b in buf[12..len].iter_mut() {
                    if rng.next_u64() % 3 == 0 {
                        *b = match rng.next_u64() % 4 {
                            0 => 0,
                            1 => 0xc0,
                            _ => (rng.next_u64() % 8) as u8,
                        };
                    }
                }
            }
            let r = parse_question(&buf[..len], &mut name);
            outcomes[usize::from(r.is_ok())] += 1;
            assert!(name.as_bytes().len() <= MAX_NAME_LEN);
            if r.is_err() {
                assert!(name.as_bytes().is_empty());
            }
        }
        // The generator must reach both outcomes, or it tests nothing.
        assert!(outcomes[0] > 1000 && outcomes[1] > 1000, "{outcomes:?}");
    }

    /// UDP payloads of an Ethernet/IPv4 classic pcap (either byte order), in order.
    /// Frames that are not unfragmented IPv4/UDP are skipped.
    fn udp_payloads(file: &str) -> Vec<Vec<u8>> {
        let path = format!(
            "{}/../../shared/captures/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let big_endian = match data[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
            _ => panic!("{path}: not a classic pcap"),
        };
        let u32_at = |at: usize| {
            let b: [u8; 4] = data[at..at + 4].try_into().unwrap();
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        if u32_at(20) != 1 {
            // Not Ethernet: nothing this small reader understands.
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let caplen = u32_at(at + 8) as usize;
            let frame = &data[at + 16..at + 16 + caplen];
            at += 16 + caplen;
            if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
                continue;
            }
            let ip = &frame[14..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragmented = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            if ip[9] != 17 || fragmented || total > ip.len() {
                continue;
            }
            let udp = &ip[ihl..total];
            let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            out.push(udp[8..udp_len.min(udp.len())].to_vec());
        }
        out
    }

    /// One message's outcome from our parser: the result and the name it left.
    type Parsed = (Result<Question, DnsError>, Vec<u8>);

    /// The canonical form built independently from hickory's raw labels.
    fn hickory_canonical(name: &hickory_proto::rr::Name) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, label) in name.iter().enumerate() {
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

    /// Parses every UDP payload of `file` with both parsers; where hickory accepts a
    /// message, we must accept it too with the same name and qtype. Returns ours and
    /// how many messages were compared.
    fn differential(file: &str) -> (Vec<Parsed>, usize) {
        let mut ours = Vec::new();
        let mut compared = 0;
        for payload in udp_payloads(file) {
            let (r, n) = parse(&payload);
            if let Ok(msg) = hickory_proto::op::Message::from_vec(&payload) {
                if let Some(query) = msg.queries.first() {
                    let q = r.unwrap_or_else(|e| panic!("{file}: hickory parses, we say {e}"));
                    assert_eq!(n, hickory_canonical(query.name()), "{file}");
                    assert_eq!(q.qtype, u16::from(query.query_type()), "{file}");
                    compared += 1;
                }
            }
            ours.push((r, n));
        }
        (ours, compared)
    }

    #[test]
    fn iodine_tunnel_matches_hickory() {
        let (all, compared) = differential("elastic-iodine-tunnel.pcap");
        assert_eq!(all.len(), 434);
        assert_eq!(compared, 434);
        let mut queries = 0;
        let mut high_bytes = 0;
        let mut longest = 0;
        for (r, n) in &all {
            let q = r.expect("every message parses");
            assert!(n.ends_with(b".pirate.sea"), "{}", n.escape_ascii());
            if !q.is_response {
                queries += 1;
                assert_eq!(q.qtype, 10, "NULL");
                high_bytes += usize::from(n.iter().any(|&b| b > 0x7f));
                longest = longest.max(n.len());
            }
        }
        assert_eq!(queries, 222);
        // Facts from captures/README.md.
        assert_eq!(high_bytes, 41);
        assert_eq!(longest, 252);
    }

    #[test]
    fn other_tunnels_match_hickory() {
        for (file, domain, queries) in [
            ("dmachard-sods.pcap", &b".hsc.fr"[..], 493),
            ("dmachard-dns2tcp.pcap", b".hsc.fr", 22),
            ("dmachard-dnscat2.pcap", b".biillpi.com", 12),
            ("dmachard-dnsextrator.pcap", b".hsc.fr", 14),
            ("dmachard-iodine.pcap", b".biillpi.com", 12),
        ] {
            let (all, compared) = differential(file);
            assert_eq!(compared, all.len(), "{file}: hickory rejects some");
            let mut seen = 0;
            for (r, n) in &all {
                if let Ok(q) = r {
                    if !q.is_response {
                        seen += 1;
                        assert!(n.ends_with(domain), "{file}: {}", n.escape_ascii());
                    }
                }
            }
            assert_eq!(seen, queries, "{file}");
        }
    }

    #[test]
    fn rfc1035_escape_sample() {
        // PacketQ's expected names (MANIFEST #66), in our canonical form.
        let names: Vec<Vec<u8>> = differential("peers/packetq-sample-rfc1035escape.pcap")
            .0
            .into_iter()
            .map(|(r, n)| {
                assert!(r.is_ok());
                n
            })
            .collect();
        let long = b"_test.all.54.non-escaped.characters.abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz.0123456789.test";
        let expected: Vec<&[u8]> = vec![
            b"test",
            b"'",
            b"\"",
            b"$",
            b"\\\\",
            b"\x00",
            b"\xff",
            long,
            b"dot\\.embeded.in.a.label.test",
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn zeek_invalid_names() {
        // Label past the end, pointer to itself (zeek: forward compress offset),
        // missing root label.
        let got: Vec<_> = udp_payloads("peers/zeek-dns_dns-invalid-names.pcap")
            .iter()
            .map(|m| parse(m).0)
            .collect();
        assert_eq!(
            got,
            [
                Err(DnsError::Truncated),
                Err(DnsError::BadPointer),
                Err(DnsError::Truncated)
            ]
        );
    }

    #[test]
    fn zeek_original_case_and_compression_depth() {
        let (all, _) = differential("peers/zeek-dns_original_case.pcap");
        assert_eq!(all[0].1, b"us.v27.distributed.net");
        assert_eq!(all[0].0.unwrap().qtype, 1);
        // The long pointer chain is in the answers, which we never read.
        let (all, _) = differential("peers/zeek-dns_max-compression-depth.pcap");
        assert_eq!(all[0].1, b"a");
        assert!(all[0].0.unwrap().is_response);
    }

    #[test]
    fn peer_captures_match_hickory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures/peers");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".pcap") && !f.contains("forward-pointer"))
            .collect();
        files.sort();
        let mut compared = 0;
        for f in &files {
            compared += differential(&format!("peers/{f}")).1;
        }
        // Plain Ethernet/IPv4/UDP DNS messages across the corpus; catches a reader
        // that silently finds nothing.
        assert!(compared >= 400, "{compared}");
    }

    #[test]
    fn suricata_forward_pointer_rejected() {
        // Suricata accepts a first QNAME pointing forward to the second question; we
        // deliberately do not (pointers go backwards only). The response is fine.
        let all = udp_payloads("peers/suricata-verify-dns-forward-pointer_input.pcap");
        assert_eq!(parse(&all[0]).0, Err(DnsError::BadPointer));
        let (r, n) = parse(&all[1]);
        assert!(r.unwrap().is_response);
        assert_eq!(n, b"codemonkey.net");
    }

    #[test]
    fn words_lower_case_exactly_a_to_z_in_every_position() {
        for byte in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = *b"Az09[`{\xff";
                bytes[pos] = byte;
                let mut expected = bytes;
                expected.make_ascii_lowercase();
                let got = lowercase_word(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(got, expected, "{byte:#04x} at {pos}");
            }
        }
    }

    #[test]
    fn escapes_are_found_in_every_position_of_any_length() {
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert!(!needs_escape(&plain), "{len}");
            for pos in 0..len {
                for special in [b'.', b'\\'] {
                    let mut label = plain.clone();
                    label[pos] = special;
                    assert!(needs_escape(&label), "{len} {pos} {special}");
                }
                // Neighbours of the special bytes are not special.
                let mut label = plain.clone();
                label[pos] = b'.' ^ 1;
                label[len - 1 - pos] = b'\\' ^ 0x80;
                assert!(!needs_escape(&label), "{len} {pos}");
            }
        }
    }

    #[test]
    fn the_fast_reader_agrees_with_the_general_one() {
        use crate::synth::SplitMix64;
        let mut rng = SplitMix64::new(7);
        let alphabet: &[u8] = b"abcXYZ09-_.\\\x00\xc8\xff";
        let (mut fast_taken, mut fallbacks) = (0, 0);
        for _ in 0..20_000 {
            let labels = (rng.next_u64() % 6) as usize;
            let mut wire = vec![0u8; HEADER_LEN];
            for _ in 0..labels {
                let len = 1 + (rng.next_u64() % 40) as usize;
                wire.push(len as u8);
                for _ in 0..len {
                    // Mostly letters, now and then a byte that needs escaping.
                    let pick = rng.next_u64() as usize;
                    let byte = if pick % 50 == 0 {
                        alphabet[pick / 50 % alphabet.len()]
                    } else {
                        alphabet[pick % 9]
                    };
                    wire.push(byte);
                }
            }
            wire.push(0);
            // What follows the name (nothing, the question's type and class, records)
            // must not reach the name, dots and capitals among it.
            for _ in 0..rng.next_u64() % 24 {
                wire.push(alphabet[rng.next_u64() as usize % alphabet.len()]);
            }
            let mut general = Name::new();
            let expected = read_name(&wire, HEADER_LEN, &mut general);
            let mut fast = Name::new();
            match read_name_fast(&wire, HEADER_LEN, &mut fast) {
                Some(got) => {
                    fast_taken += 1;
                    assert_eq!(got, expected);
                    assert_eq!(fast.as_bytes(), general.as_bytes(), "{wire:?}");
                }
                None => fallbacks += 1,
            }
        }
        // Both paths were exercised.
        assert!(
            fast_taken > 10_000 && fallbacks > 1_000,
            "{fast_taken} {fallbacks}"
        );
    }

    #[test]
    fn blocks_lower_and_check_alike_with_sse2_and_words() {
        use crate::synth::SplitMix64;
        let mut rng = SplitMix64::new(11);
        for round in 0..50_000 {
            let mut block = [0u8; BLOCK];
            for b in &mut block {
                // Any byte, with the interesting ones often.
                let r = rng.next_u64();
                *b = match r % 4 {
                    0 => b"AZaz.\\@[`{\x80\xc1\xdb"[(r >> 8) as usize % 13],
                    _ => (r >> 16) as u8,
                };
            }
            let valid = round % (BLOCK + 3);
            let mut expected = block;
            expected.make_ascii_lowercase();
            let special = block[..valid.min(BLOCK)]
                .iter()
                .any(|&b| b == b'.' || b == b'\\');
            let (mut simd, mut words) = (block, block);
            assert_eq!(lower_block(&mut simd, valid), special, "{block:?} {valid}");
            assert_eq!(
                lower_block_words(&mut words, valid),
                special,
                "{block:?} {valid}"
            );
            assert_eq!(simd, expected);
            assert_eq!(words, expected);
        }
    }

    #[test]
    fn label_starts_are_known_for_plain_names_only() {
        let mut name = Name::new();
        let m = message(1, &question(b"www.Example.co.uk", 1));
        parse_question(&m, &mut name).expect("parses");
        assert_eq!(name.as_bytes(), b"www.example.co.uk");
        assert_eq!(name.label_starts(), Some(&[0u8, 4, 12, 15][..]));
        // An escaped dot: the parser does not say where labels start.
        let mut body = vec![3, b'a', b'.', b'b', 3, b'c', b'o', b'm', 0];
        body.extend_from_slice(&[0, 1, 0, 1]);
        parse_question(&message(1, &body), &mut name).expect("parses");
        assert_eq!(name.as_bytes(), b"a\\.b.com");
        assert_eq!(name.label_starts(), None);
        // A root question: no label.
        parse_question(&message(1, &[0, 0, 1, 0, 1]), &mut name).expect("parses");
        assert_eq!(name.label_starts(), None);
    }
}
