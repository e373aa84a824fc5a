//! dnstt (David Fifield's Turbo Tunnel DNS tunnel) over plaintext UDP: two clients, one
//! idling through an afternoon with bursts of browsing, one pulling a large download in
//! an hour.
//!
//! Shaped after dnstt's README and its protocol page (bamsoftware.com/software/dnstt):
//! the tunnel lives in a short delegated zone (`t.<domain>`); every query is TXT, its
//! name the Base32 (no padding, lower case) of an 8-byte client id, a padding-length
//! byte (0xE0 plus the count) with that many random bytes (8 on a bare poll, 3 with
//! data), then length-prefixed KCP packets, cut into labels of 63; every response is a
//! TXT record carrying the server's packets, up to the 1 232-byte EDNS payload the
//! client offers. An idle client polls with empty queries, its delay doubling from
//! half a second to ten; when the server has much to send, the client keeps it
//! supplied with queries back to back.
//!
//! The sensor's decoder sees no EDNS option on these queries (the network's builder
//! adds none); the responses are as large as the option would allow.

use super::shape::{between, encode, push_labels, random_bytes, room, session, BASE32};
use super::{Network, Reply, Truth};
use crate::synth::scenario::{MINUTE, SECOND};
use crate::synth::{rtype, txt_rdata};
use crate::Nanos;

/// The afternoon client's domain and zone.
const IDLER: (&str, &str) = ("quillmesh.net", "t.quillmesh.net");
/// The download's.
const DOWNLOAD: (&str, &str) = ("lanternbox.xyz", "t.lanternbox.xyz");

/// Largest DNS response the client accepts (its EDNS payload size).
const MAX_RESPONSE: usize = 1232;
/// Room for TXT data in such a response after the header (12 bytes), the longest
/// question (260), the record's fixed fields (12) and the character-strings' length
/// bytes, with room to spare.
const MAX_TXT: usize = MAX_RESPONSE - 332;
/// Slowest idle poll.
const MAX_POLL: Nanos = 10 * SECOND;
/// Fastest.
const MIN_POLL: Nanos = SECOND / 2;

/// Both dnstt clients.
pub fn dnstt(net: &mut Network) {
    // Browsing through a SOCKS proxy at the tunnel's end: mostly idle polls, now and
    // then a page of a few hundred kilobytes.
    client(net, IDLER, 4 * 60 * MINUTE, 18, (40, 400));
    // A 2 MB download in an hour.
    client(net, DOWNLOAD, 60 * MINUTE, 3, (600, 900));
}

/// One client over a session of about `len`: `pages` transfers of `responses` full
/// responses each, polls in between.
fn client(
    net: &mut Network,
    (domain, zone): (&str, &str),
    len: Nanos,
    pages: u64,
    responses: (u64, u64),
) {
    net.label(domain, "dnstt", Truth::Tunnel);
    let endpoint = net.any_endpoint();
    let (start, len) = session(net, len);
    let end = start + len;
    let id = random_bytes(net, 8);
    let mut transfers: Vec<Nanos> = (0..pages).map(|_| start + net.rng().below(len)).collect();
    transfers.sort_unstable();
    let mut next = transfers.into_iter().peekable();
    let mut ts = start;
    let mut poll = MIN_POLL;
    while ts < end {
        if next.peek().is_some_and(|&t| t <= ts) {
            next.next();
            // A transfer: queries back to back, each answered with a full response, the
            // upstream carrying the KCP acknowledgements.
            for _ in 0..between(net, responses.0, responses.1) {
                let up = between(net, 20, 120) as usize;
                let name = query_name(net, &id, zone, 3, up);
                let size = MAX_TXT - between(net, 0, 60) as usize;
                let text = random_bytes(net, size);
                ask(net, ts, endpoint, &name, &text);
                ts += between(net, 30, 120) * 1_000_000;
            }
            poll = MIN_POLL;
            continue;
        }
        let name = query_name(net, &id, zone, 8, 0);
        // The server holds a poll up to a second in case data comes; mostly none does.
        let text = if net.rng().below(10) == 0 {
            let size = between(net, 40, 300) as usize;
            random_bytes(net, size)
        } else {
            Vec::new()
        };
        ask(net, ts, endpoint, &name, &text);
        ts += poll + net.rng().below(poll / 4);
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// A query name: Base32 of the client id, the padding, and `data` bytes of packets
/// (none on a poll), under `zone`.
fn query_name(net: &mut Network, id: &[u8], zone: &str, padding: u8, data: usize) -> Vec<u8> {
    let mut payload = id.to_vec();
    payload.push(0xe0 + padding);
    payload.extend(random_bytes(net, usize::from(padding)));
    if data > 0 {
        let fits = room(zone, 0) * 5 / 8 - payload.len() - 1;
        let data = data.min(fits);
        payload.push(data as u8);
        payload.extend(random_bytes(net, data));
    }
    let mut name = Vec::with_capacity(253);
    push_labels(&mut name, &encode(&payload, BASE32), 63);
    name.extend_from_slice(zone.as_bytes());
    name
}

/// One exchange answered by a TXT record of `data` (an empty string when the server
/// has nothing to send).
fn ask(net: &mut Network, ts: Nanos, endpoint: std::net::IpAddr, name: &[u8], data: &[u8]) {
    let rdata = txt_rdata(data);
    net.ask(
        ts,
        endpoint,
        name,
        rtype::TXT,
        Reply::Records(&[(rtype::TXT, &rdata)]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under, Exchange};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;

    fn traffic(seed: u64) -> Vec<Exchange> {
        let mut net = Network::new(seed, EPOCH, 6 * HOUR, 400);
        dnstt(&mut net);
        let done = net.finish();
        assert!(done.label(IDLER.0).is_some() && done.label(DOWNLOAD.0).is_some());
        exchanges(&done.traffic.into_sorted())
    }

    #[test]
    fn every_query_is_txt_base32_in_labels_of_63_under_the_zone() {
        let all = traffic(31);
        for zone in [IDLER.1, DOWNLOAD.1] {
            let seen = under(&all, zone);
            let clients: HashSet<_> = seen.iter().map(|e| e.client).collect();
            assert_eq!(clients.len(), 1);
            assert_eq!(
                seen.iter().map(|e| &e.name).collect::<HashSet<_>>().len(),
                seen.len()
            );
            // The client id leads every name: its 13 characters (8 bytes, 64 bits, so the
            // 13th shares bits with the padding byte) are the same on all.
            let id = &seen[0].name[..12];
            for e in &seen {
                assert_eq!(e.qtype, rtype::TXT);
                assert!(e.name.starts_with(id));
                let data = &e.name[..e.name.len() - zone.len() - 1];
                assert!(data.split('.').all(|l| !l.is_empty() && l.len() <= 63));
                assert!(
                    data.bytes().all(|b| b == b'.' || BASE32.contains(&b)),
                    "{}",
                    e.name
                );
                assert!(e.response_len.is_some_and(|n| n <= MAX_RESPONSE));
            }
            // Bare polls: 17 bytes, 28 characters in one label.
            assert!(seen.iter().any(|e| e.name.len() == 28 + 1 + zone.len()));
        }
    }

    #[test]
    fn the_download_is_big_answers_in_an_hour_and_the_idler_polls_slowly() {
        let all = traffic(32);
        let download = under(&all, DOWNLOAD.1);
        let big = download
            .iter()
            .filter(|e| e.response_len.is_some_and(|n| n > 900))
            .count();
        assert!(big >= 1800, "three transfers of 600 or more: {big}");
        let span = download.last().unwrap().ts - download[0].ts;
        assert!(span <= HOUR + MAX_POLL);
        let idler = under(&all, IDLER.1);
        let polls: Vec<_> = idler
            .iter()
            .filter(|e| e.name.len() == 28 + 1 + IDLER.1.len())
            .collect();
        let gaps = polls
            .windows(2)
            .filter(|w| w[1].ts - w[0].ts >= MAX_POLL)
            .count();
        assert!(
            gaps * 2 > polls.len(),
            "most polls at the slowest rate: {gaps} of {}",
            polls.len()
        );
        assert!(
            polls.len() > 1000 && idler.len() < 20_000,
            "{} {}",
            polls.len(),
            idler.len()
        );
    }
}
