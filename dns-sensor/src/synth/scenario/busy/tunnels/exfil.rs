//! Exfiltration over A queries: data Base32-encoded in the labels, each query answered
//! by one tiny A record the attacker's name server makes up, the shape of the simple
//! exfiltration scripts and implants that public write-ups on DNS exfiltration describe
//! (MITRE ATT&CK T1048.003 and T1071.004).
//!
//! The shape that anti-virus reputation look-ups also have (a hash in a label, a
//! `127.0.0.x` answer), which is what makes it hard: only the counts and the few hosts
//! asking set it apart. Two channels: several hosts trickling small files out, one name
//! every few minutes each (quiet), and a staged database dump from three hosts in an
//! hour (loud).

use super::shape::{between, encode, jittered, push_labels, random_bytes, session, BASE32};
use super::{Network, Reply, Truth};
use crate::synth::rtype;
use crate::synth::scenario::MINUTE;
use crate::Nanos;

/// The trickle's domain.
const TRICKLE: &str = "scanverdict.net";
/// Hosts trickling.
const TRICKLE_HOSTS: u32 = 4;
/// Time between one trickling host's queries, before jitter.
const TRICKLE_EVERY: Nanos = 8 * MINUTE;

/// The dump's domain.
const DUMP: &str = "sigcheck-cloud.net";
/// Hosts the dump is staged on.
const DUMP_HOSTS: u32 = 3;
/// Queries each dumping host sends.
const DUMP_QUERIES: u64 = 1_500;
/// How long the dump takes.
const DUMP_LEN: Nanos = 60 * MINUTE;

/// Base32 characters of data a query carries: a 52-character label (32 bytes, the
/// length of a SHA-256 in Base32), and a second on the dump.
const LABEL: usize = 52;

/// Both channels.
pub fn exfil(net: &mut Network) {
    net.label(TRICKLE, "exfil", Truth::Tunnel);
    for _ in 0..TRICKLE_HOSTS {
        let host = net.any_endpoint();
        let tag = host_tag(net);
        let mut ts = net.time_near(net.start(), TRICKLE_EVERY);
        let mut seq = 0u16;
        while ts < net.start() + net.duration() {
            send(net, ts, host, &tag, seq, 1, TRICKLE);
            seq = seq.wrapping_add(1);
            ts += jittered(net, TRICKLE_EVERY, 50);
        }
    }
    net.label(DUMP, "exfil", Truth::Tunnel);
    let (start, len) = session(net, DUMP_LEN);
    for _ in 0..DUMP_HOSTS {
        let host = net.any_endpoint();
        let tag = host_tag(net);
        let every = len / DUMP_QUERIES;
        let mut ts = net.time_near(start, every);
        for seq in 0..DUMP_QUERIES {
            if ts >= start + len {
                break;
            }
            send(net, ts, host, &tag, seq as u16, 2, DUMP);
            ts += jittered(net, every, 50);
        }
    }
}

/// A host's tag in its names: 5 bytes of Base32, 8 characters.
fn host_tag(net: &mut Network) -> Vec<u8> {
    encode(&random_bytes(net, 5), BASE32)
}

/// One chunk: `labels` labels of data (the sequence number first), the host's tag,
/// the domain; answered `127.0.0.x`, `x` acknowledging the chunk.
fn send(
    net: &mut Network,
    ts: Nanos,
    host: std::net::IpAddr,
    tag: &[u8],
    seq: u16,
    labels: usize,
    domain: &str,
) {
    let mut data = seq.to_be_bytes().to_vec();
    data.extend(random_bytes(net, labels * LABEL * 5 / 8 - 2));
    let mut name = Vec::with_capacity(160);
    push_labels(&mut name, &encode(&data, BASE32), LABEL);
    name.extend_from_slice(tag);
    name.push(b'.');
    name.extend_from_slice(domain.as_bytes());
    let ack = [127, 0, 0, 1 + (seq % 200) as u8];
    let reply = if between(net, 0, 99) == 0 {
        Reply::Unanswered
    } else {
        Reply::Records(&[(rtype::A, &ack)])
    };
    net.ask(ts, host, &name, rtype::A, reply);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;

    #[test]
    fn a_queries_of_base32_labels_tiny_answers_few_hosts() {
        let mut net = Network::new(41, EPOCH, 6 * HOUR, 1000);
        exfil(&mut net);
        let done = net.finish();
        assert_eq!(done.label(DUMP).map(|l| l.service), Some("exfil"));
        let all = exchanges(&done.traffic.into_sorted());
        for (domain, hosts, labels) in [(TRICKLE, TRICKLE_HOSTS, 1), (DUMP, DUMP_HOSTS, 2)] {
            let seen = under(&all, domain);
            let clients: HashSet<_> = seen.iter().map(|e| e.client).collect();
            assert_eq!(clients.len() as u32, hosts);
            let tags: HashSet<_> = seen
                .iter()
                .map(|e| e.name.split('.').nth(labels).unwrap())
                .collect();
            assert_eq!(tags.len() as u32, hosts, "one tag a host");
            for e in &seen {
                assert_eq!(e.qtype, rtype::A);
                let parts: Vec<_> = e.name.split('.').collect();
                assert_eq!(parts.len(), labels + 3);
                assert!(parts[..labels]
                    .iter()
                    .all(|l| l.len() == LABEL && l.bytes().all(|b| BASE32.contains(&b))));
                if e.rcode.is_some() {
                    assert_eq!(e.response_len, Some(e.query_len + 16), "one A record");
                }
            }
            assert_eq!(
                seen.iter().map(|e| &e.name).collect::<HashSet<_>>().len(),
                seen.len()
            );
            if domain == DUMP {
                assert!(
                    seen.iter().any(|e| e.rcode.is_none()),
                    "a lost query now and then"
                );
            }
        }
    }

    #[test]
    fn the_trickle_is_quiet_and_the_dump_loud_within_an_hour() {
        let mut net = Network::new(42, EPOCH, 4 * HOUR, 1000);
        exfil(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let trickle = under(&all, TRICKLE).len();
        assert!((30..190).contains(&trickle), "{trickle}");
        let dump = under(&all, DUMP);
        assert!(dump.len() as u64 > DUMP_QUERIES * 2);
        assert!(dump.last().unwrap().ts - dump[0].ts <= DUMP_LEN);
    }
}
