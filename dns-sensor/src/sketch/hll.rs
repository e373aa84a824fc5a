//! The unique-name estimate past the exact limit: a HyperLogLog over the same 64-bit
//! name hashes (see the module above for why this one and not hyperloglogplus).

use super::codec::{CodecError, Decoder, Encoder};

/// Precision (log2 of the register count) of the unique-name estimate past the exact
/// limit: 2^15 one-byte registers (32 KiB per estimated domain per slot), standard error
/// 1.04/sqrt(2^15) = 0.57 %, so the 2 % bound is 3.5 standard errors. p=14 (0.81 %)
/// would put 2 % at only 2.5 standard errors: about one estimate in 70 would miss it.
/// Sensors whose sketches merge must use the same precision.
pub const HLL_PRECISION: u8 = 15;

/// Register count of the estimate.
pub(super) const HLL_REGISTERS: usize = 1 << HLL_PRECISION;

/// Hash bits left after the register index: register values run 0..=HLL_Q + 1.
pub(super) const HLL_Q: usize = 64 - HLL_PRECISION as usize;

/// A HyperLogLog over pre-hashed 64-bit values: one byte per register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Hll {
    pub(super) registers: Box<[u8]>,
}

impl Hll {
    pub(super) fn new() -> Self {
        Self {
            registers: vec![0; HLL_REGISTERS].into_boxed_slice(),
        }
    }

    #[inline]
    pub(super) fn insert(&mut self, hash: u64) {
        let index = (hash >> HLL_Q) as usize;
        // The low HLL_Q bits, moved to the top: their leading zeros (capped at HLL_Q
        // because only HLL_Q bits are real) plus one is the register value.
        let rest = hash << HLL_PRECISION;
        let rank = (rest.leading_zeros() as usize).min(HLL_Q) as u8 + 1;
        if let Some(register) = self.registers.get_mut(index) {
            if rank > *register {
                *register = rank;
            }
        }
    }

    pub(super) fn merge(&mut self, other: &Hll) {
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Ertl's improved raw estimator (Algorithm 6 of the paper).
    pub(super) fn estimate(&self) -> f64 {
        let mut histogram = [0u32; HLL_Q + 2];
        for &register in self.registers.iter() {
            if let Some(slot) = histogram.get_mut(register as usize) {
                *slot += 1;
            }
        }
        let m = HLL_REGISTERS as f64;
        if histogram[0] as usize == HLL_REGISTERS {
            return 0.0;
        }
        let mut z = m * tau(1.0 - f64::from(histogram[HLL_Q + 1]) / m);
        for k in (1..=HLL_Q).rev() {
            z = 0.5 * (z + f64::from(histogram[k]));
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        // alpha_infinity = 1 / (2 ln 2)
        let alpha = 1.0 / (2.0 * std::f64::consts::LN_2);
        alpha * m * m / z
    }
}

/// sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), for x in [0, 1).
fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    // Converges doubly exponentially; the cap only guards against a non-terminating
    // loop should rounding ever oscillate.
    for _ in 0..128 {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            break;
        }
    }
    z
}

/// tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3, for x in [0, 1].
fn tau(mut x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    for _ in 0..128 {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == previous {
            break;
        }
    }
    z / 3.0
}

impl Hll {
    /// Writes the registers.
    pub(super) fn encode(&self, e: &mut Encoder) {
        e.bytes(&self.registers);
    }

    /// Reads what [`encode`](Self::encode) wrote: every register, none past the
    /// largest rank.
    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Self, CodecError> {
        let registers = d.bytes(HLL_REGISTERS, "HyperLogLog registers")?;
        if registers.len() != HLL_REGISTERS {
            return Err(CodecError::Invalid("a HyperLogLog of another precision"));
        }
        if registers.iter().any(|&r| usize::from(r) > HLL_Q + 1) {
            return Err(CodecError::Invalid(
                "a HyperLogLog register past its largest rank",
            ));
        }
        Ok(Self {
            registers: registers.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::sketch::test_shards::*;

    #[test]
    fn estimate_within_two_percent() {
        let settings = SketchSettings::default();
        for n in [10_000u64, 100_000, 1_000_000] {
            let shard = shard_with(0, &settings, 0..n);
            let estimate = uniques(&shard);
            assert!(
                relative_error(estimate, n) < 0.02,
                "{n} names estimated as {estimate}"
            );
        }
    }

    #[test]
    fn estimate_within_two_percent_when_merged_from_overlapping_slots() {
        let settings = SketchSettings::default();
        for n in [10_000u64, 100_000, 1_000_000] {
            // 16 slots, each a window of 2n/16 names sliding by n/16: every name is
            // in two slots, the last slot wraps to the start. Some slots stay exact
            // (n = 10 000: 1 250 per slot is past the limit; smaller pieces below).
            let step = n / 16;
            let mut merged = Shard::new(0, &settings);
            for s in 0..16 {
                let names = (s * step..s * step + 2 * step).map(|i| i % n);
                merged.merge_owned(shard_with(0, &settings, names));
            }
            let estimate = uniques(&merged);
            assert!(
                relative_error(estimate, n) < 0.02,
                "{n} names merged from 16 slots estimated as {estimate}"
            );
        }
        // Many small exact shards whose union overflows the limit.
        let mut merged = Shard::new(0, &settings);
        for s in 0..100u64 {
            merged.merge(&shard_with(0, &settings, s * 90..s * 90 + 180));
        }
        let estimate = uniques(&merged);
        assert!(relative_error(estimate, 9_090) < 0.02, "{estimate}");
        // Estimated into exact, and exact into estimated, give the same union.
        let big = shard_with(0, &settings, 0..20_000);
        let small = shard_with(0, &settings, 19_500..20_500);
        let mut a = big.clone();
        a.merge(&small);
        let mut b = small.clone();
        b.merge(&big);
        assert_eq!(uniques(&a), uniques(&b));
        assert!(relative_error(uniques(&a), 20_500) < 0.02);
    }
}
