//! The clocks of a live run: the wall clock, for what people read (when a snapshot
//! was written), and the arrival clock that stamps frames and closes slots.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::Nanos;

/// A forward jump of the wall clock past the arrival clock by more than this is a step
/// (NTP setting a clock that booted wrong) and is followed; less is drift, left to the
/// monotonic clock.
const STEP: Nanos = crate::NANOS_PER_SEC;

/// Now on the wall clock, in nanoseconds since the Unix epoch (0 before it).
pub fn wall_clock() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(Nanos::MAX))
}

/// Now on the arrival clock: the monotonic clock, set to the wall clock when first
/// read, and set forward again whenever the wall clock steps ahead of it, never back.
///
/// A wall clock that steps back (NTP correcting a clock that ran fast) would otherwise
/// stamp frames before the open slot's start: they are counted in it, but the slot
/// closes, and the window is evaluated, only once the wall clock has caught up again,
/// an hour late for a step of an hour. Stepped forward (a clock set at boot), the
/// arrival clock follows at once: the coordinator skips the empty windows between.
/// After a step back, times in alerts run ahead of the wall clock by the step, until
/// the next start. One clock for the process: every queue's frames compare.
pub fn arrival_now() -> Nanos {
    static BASE: OnceLock<Instant> = OnceLock::new();
    // The wall clock's reading minus the monotonic clock's when last set: 0 until then.
    static OFFSET: AtomicU64 = AtomicU64::new(0);
    let monotonic = monotonic_since(*BASE.get_or_init(Instant::now));
    let offset = OFFSET.load(Ordering::Relaxed);
    let (offset, now) = arrival(offset, monotonic, wall_clock());
    // The largest offset wins when queues set it at once: the clock only moves forward.
    OFFSET.fetch_max(offset, Ordering::Relaxed);
    now
}

fn monotonic_since(base: Instant) -> Nanos {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(Nanos::MAX)
}

/// The arrival clock's step: given its offset, the monotonic reading and the wall
/// clock's, its new offset and the time it reads.
fn arrival(offset: Nanos, monotonic: Nanos, wall: Nanos) -> (Nanos, Nanos) {
    let projected = offset.saturating_add(monotonic);
    if offset == 0 || wall > projected.saturating_add(STEP) {
        (wall.saturating_sub(monotonic), wall.max(projected))
    } else {
        (offset, projected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = crate::NANOS_PER_SEC;
    const T: Nanos = 1_800_000_000 * S;

    /// Reads the clock at each `(monotonic, wall)` pair from its first reading on.
    fn readings(pairs: &[(Nanos, Nanos)]) -> Vec<Nanos> {
        let mut offset = 0;
        pairs
            .iter()
            .map(|&(monotonic, wall)| {
                let (next, now) = arrival(offset, monotonic, wall);
                offset = next;
                now
            })
            .collect()
    }

    #[test]
    fn starts_on_the_wall_clock_and_moves_with_the_monotonic_one() {
        // Drift under a second is not followed: the monotonic clock keeps time.
        let read = readings(&[(5 * S, T), (6 * S, T + S + S / 2), (7 * S, T + 2 * S)]);
        assert_eq!(read, vec![T, T + S, T + 2 * S]);
    }

    #[test]
    fn a_step_back_is_not_followed() {
        // The wall clock goes back an hour: the slot still closes on time.
        let read = readings(&[(0, T), (S, T - 3600 * S), (2 * S, T - 3599 * S)]);
        assert_eq!(read, vec![T, T + S, T + 2 * S]);
    }

    #[test]
    fn a_step_forward_is_followed_and_time_never_goes_back() {
        // A clock that booted in 1970 is set by NTP: followed at once.
        let read = readings(&[(0, 10 * S), (S, 11 * S), (2 * S, T), (3 * S, T + S)]);
        assert_eq!(read, vec![10 * S, 11 * S, T, T + S]);
        let read = readings(&[(0, T), (S, T + 3600 * S), (2 * S, T + S)]);
        assert_eq!(read, vec![T, T + 3600 * S, T + 3601 * S]);
    }

    #[test]
    fn the_process_clock_reads_the_wall_clock_and_never_goes_back() {
        let first = arrival_now();
        assert!(first.abs_diff(wall_clock()) < S, "{first}");
        assert!(arrival_now() >= first);
    }
}
