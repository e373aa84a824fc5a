//! Types shared by the XDP program (`dns-sensor-ebpf`) and user space (`dns-sensor`):
//! map layouts and counters. `no_std`, plain `#[repr(C)]` data only.
#![no_std]

/// Name of the `XSKMAP` holding one AF_XDP socket per receive queue (key: rx queue index).
pub const MAP_XSKS: &str = "XSKS";
/// Name of the per-CPU array holding one [`Counters`] per CPU (single entry, key 0).
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Name of the array holding the port bitmap ([`PORT_BITMAP_WORDS`] `u64` words).
pub const MAP_PORTS: &str = "PORTS";
/// Name of the global (read-only data, set at load time) selecting the mode:
/// [`MODE_MIRROR`] or [`MODE_INLINE`].
pub const GLOBAL_MODE: &str = "DNS_SENSOR_MODE";
/// Name of the XDP program in the object.
pub const PROGRAM_NAME: &str = "dns_sensor";

/// Mode value: everything not redirected is dropped (a mirror port: nobody else wants it).
pub const MODE_MIRROR: u8 = 0;
/// Mode value: everything not redirected is passed to the kernel stack.
pub const MODE_INLINE: u8 = 1;

/// Most receive queues the `XSKMAP` can address; queues beyond it are not captured.
pub const MAX_QUEUES: u32 = 256;

/// Words in the port bitmap: one bit per TCP/UDP port, so any port set costs two lookups.
pub const PORT_BITMAP_WORDS: u32 = 65536 / 64;

/// Where a port's bit lives in the bitmap: (word index, bit mask).
#[inline(always)]
pub const fn port_bit(port: u16) -> (u32, u64) {
    ((port >> 6) as u32, 1u64 << (port & 63))
}

/// Per-CPU counters kept by the XDP program. User space sums them over CPUs.
///
/// Every frame increments `seen` and exactly one of `redirected`, `redirect_failed`,
/// `not_dns` and `too_short`; `fragments` is a subset of `redirected` + `redirect_failed`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Frames redirected to an AF_XDP socket (DNS by port, or an IP non-first fragment).
    pub redirected: u64,
    /// Matched frames whose queue had no socket in the `XSKMAP` (lost).
    pub redirect_failed: u64,
    /// Frames parsed and not DNS: dropped in mirror mode, passed in inline mode.
    pub not_dns: u64,
    /// Frames ending inside a header the program needed (treated as not DNS).
    pub too_short: u64,
    /// IPv4/IPv6 non-first fragments sent to user space (their ports are unknown here).
    pub fragments: u64,
}

impl Counters {
    /// Adds `other` field by field (summing CPUs, or computing totals).
    pub fn add(&mut self, other: &Counters) {
        self.seen = self.seen.wrapping_add(other.seen);
        self.redirected = self.redirected.wrapping_add(other.redirected);
        self.redirect_failed = self.redirect_failed.wrapping_add(other.redirect_failed);
        self.not_dns = self.not_dns.wrapping_add(other.not_dns);
        self.too_short = self.too_short.wrapping_add(other.too_short);
        self.fragments = self.fragments.wrapping_add(other.fragments);
    }
}

// SAFETY: `Counters` is `repr(C)`, made of `u64`s only: no padding, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Counters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bits_cover_the_range() {
        assert_eq!(port_bit(0), (0, 1));
        assert_eq!(port_bit(53), (0, 1 << 53));
        assert_eq!(port_bit(64), (1, 1));
        assert_eq!(port_bit(65535), (PORT_BITMAP_WORDS - 1, 1 << 63));
    }

    #[test]
    fn counters_layout_is_six_u64() {
        assert_eq!(size_of::<Counters>(), 48);
        let mut a = Counters {
            seen: 1,
            fragments: 2,
            ..Default::default()
        };
        a.add(&Counters {
            seen: 3,
            too_short: 4,
            ..Default::default()
        });
        assert_eq!(
            a,
            Counters {
                seen: 4,
                too_short: 4,
                fragments: 2,
                ..Default::default()
            }
        );
    }
}
