//! Byte-string helpers the hot path shares across steps.

/// Whether `a` and `b` hold the same bytes, compared inline a word at a time.
///
/// Slice `==` is a call to libc's `memcmp`: on the worker's short names and domains
/// (20 bytes on average on the resolver mix) the call, its set-up and its dispatch on
/// length cost about 25 instructions each time, and the worker compares twice a
/// message (the verdict cache's name, the domain table's key). This is the same test,
/// in about a third of that for strings up to a few dozen bytes.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        // Whole words, then the last word (overlapping the one before it).
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        return word(a, n - 8) == word(b, n - 8);
    }
    if n >= 4 {
        return half_word(a, 0) == half_word(b, 0) && half_word(a, n - 4) == half_word(b, n - 4);
    }
    // 0 to 3 bytes: the first, middle and last cover them all.
    n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1])
}

#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[inline(always)]
fn half_word(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_slice_equality_at_every_length_and_position() {
        let base: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for len in 0..=base.len() {
            let a = &base[..len];
            assert!(same_bytes(a, a), "len {len}");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "len {len}, byte {at} differs");
                assert!(!same_bytes(&b, a), "len {len}, byte {at} differs");
            }
            if len > 0 {
                assert!(
                    !same_bytes(a, &base[..len - 1]),
                    "lengths {len}, {}",
                    len - 1
                );
                if len < base.len() {
                    assert!(!same_bytes(a, &base[1..=len]), "shifted by one, len {len}");
                }
            }
        }
    }
}
