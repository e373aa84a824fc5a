//! What the tunnels share: the encodings their names carry data in, and the timing of
//! a session (when it runs, when its client polls, when it moves data).

use super::Network;
use crate::Nanos;

/// Hexadecimal digits, lower case (dnscat2, Cobalt Strike).
pub(super) const HEX: &[u8] = b"0123456789abcdef";
/// RFC 4648 Base32, lower case (sods upstream, dnstt, DNSExfiltrator's `-b32`).
pub(super) const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
/// RFC 4648 Base32, upper case (sods downstream, DNSExfiltrator's `init` label).
pub(super) const BASE32_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// RFC 4648 Base64 (dns2tcp, Cobalt Strike's TXT tasks).
pub(super) const BASE64: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Longest query name in characters, dots included and the final dot not: 255 bytes
/// of wire format.
pub(super) const MAX_NAME: usize = 253;

/// `data` written `log2(alphabet.len())` bits a character, most significant first, the
/// last character zero-padded and no `=`: hex, Base32, Base64 and Base128 alike.
pub(super) fn encode(data: &[u8], alphabet: &[u8]) -> Vec<u8> {
    debug_assert!(alphabet.len().is_power_of_two() && alphabet.len() >= 2);
    let bits = alphabet.len().trailing_zeros();
    let mask = (1u32 << bits) - 1;
    let mut out = Vec::with_capacity(data.len() * 8 / bits as usize + 1);
    let (mut acc, mut held) = (0u32, 0u32);
    for &byte in data {
        acc = (acc << 8) | u32::from(byte);
        held += 8;
        while held >= bits {
            held -= bits;
            out.push(alphabet[((acc >> held) & mask) as usize]);
        }
        acc &= (1 << held) - 1;
    }
    if held > 0 {
        out.push(alphabet[((acc << (bits - held)) & mask) as usize]);
    }
    out
}

/// `encoded` cut into labels of at most `label` bytes, appended to `name` each with a
/// dot after it.
pub(super) fn push_labels(name: &mut Vec<u8>, encoded: &[u8], label: usize) {
    for chunk in encoded.chunks(label) {
        name.extend_from_slice(chunk);
        name.push(b'.');
    }
}

/// Characters of data that fit in labels of 63 before `domain`, `fixed` characters of
/// other labels (dots included) already taken.
pub(super) fn room(domain: &str, fixed: usize) -> usize {
    let free = MAX_NAME.saturating_sub(domain.len() + 1 + fixed);
    free - free.div_ceil(64)
}

/// `n` pseudo-random bytes: the ciphertext or compressed data a tunnel carries.
pub(super) fn random_bytes(net: &mut Network, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    net.rng().fill(&mut out);
    out
}

/// A uniform draw in `[lo, hi]`.
pub(super) fn between(net: &mut Network, lo: u64, hi: u64) -> u64 {
    lo + net.rng().below(hi.saturating_sub(lo) + 1)
}

/// `base` scaled by a factor drawn in `[1 - jitter, 1 + jitter]` (`jitter` in percent).
pub(super) fn jittered(net: &mut Network, base: Nanos, jitter: u64) -> Nanos {
    let spread = base / 100 * jitter;
    (base - spread + net.rng().below(2 * spread + 1)).max(1)
}

/// Where a session of `len` (at most the window) starts: drawn so that it ends inside.
pub(super) fn session(net: &mut Network, len: Nanos) -> (Nanos, Nanos) {
    let len = len.min(net.duration());
    let slack = net.duration() - len;
    let start = net.start() + net.rng().below(slack + 1);
    (start, len)
}

/// How an interactive tunnel client uses its session: polls when idle, and transfers
/// that send queries back to back.
#[derive(Clone, Copy, Debug)]
pub(super) struct Activity {
    /// Time between polls when nothing moves (jittered by half).
    pub idle: Nanos,
    /// Transfers in the session.
    pub transfers: u64,
    /// Queries a transfer takes, fewest and most.
    pub queries: (u64, u64),
    /// Time between a transfer's queries (jittered by half).
    pub gap: Nanos,
}

/// One query time of a session, and whether data was moving.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tick {
    /// When the client asks.
    pub ts: Nanos,
    /// Inside a transfer (else an idle poll).
    pub busy: bool,
}

/// The query times of a session `[start, start + len)` used as `activity` says, in
/// order, none past the window: a client polls only when no transfer is running.
pub(super) fn ticks(net: &mut Network, start: Nanos, len: Nanos, activity: &Activity) -> Vec<Tick> {
    let end = (start + len).min(net.start() + net.duration());
    let mut out = Vec::new();
    let mut spans = Vec::new();
    for _ in 0..activity.transfers {
        let mut ts = start + net.rng().below(len.max(1));
        let first = ts;
        for _ in 0..between(net, activity.queries.0, activity.queries.1) {
            if ts >= end {
                break;
            }
            out.push(Tick { ts, busy: true });
            ts += jittered(net, activity.gap, 50);
        }
        spans.push((first, ts));
    }
    let mut ts = start;
    while ts < end {
        if !spans.iter().any(|&(a, b)| (a..b).contains(&ts)) {
            out.push(Tick { ts, busy: false });
        }
        ts += jittered(net, activity.idle, 50);
    }
    out.sort_by_key(|t| t.ts);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::{EPOCH, HOUR, MINUTE, SECOND};

    #[test]
    fn encodings_match_rfc_4648_vectors() {
        assert_eq!(encode(b"foobar", BASE32), b"mzxw6ytboi");
        assert_eq!(encode(b"foob", BASE64), b"Zm9vYg");
        assert_eq!(encode(&[0xde, 0xad], HEX), b"dead");
        assert_eq!(room("t.example.com", 0), 253 - 14 - 4);
    }

    #[test]
    fn a_session_polls_between_its_transfers_and_stays_in_the_window() {
        let mut net = Network::new(5, EPOCH, HOUR, 10);
        let activity = Activity {
            idle: 10 * SECOND,
            transfers: 3,
            queries: (20, 40),
            gap: SECOND / 5,
        };
        let (start, len) = session(&mut net, 2 * HOUR);
        assert_eq!(
            (start, len),
            (EPOCH, HOUR),
            "a session no longer than the window"
        );
        let (start, len) = session(&mut net, 20 * MINUTE);
        let ticks = ticks(&mut net, start, len, &activity);
        assert!(ticks.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert!(ticks.iter().all(|t| (start..start + len).contains(&t.ts)));
        let busy = ticks.iter().filter(|t| t.busy).count();
        assert!((60..=120).contains(&busy), "{busy} queries in transfers");
        let idle = ticks.len() - busy;
        // 20 minutes of polls every 5 to 15 s, less the transfers' few seconds.
        assert!((70..=250).contains(&idle), "{idle} polls");
    }
}
