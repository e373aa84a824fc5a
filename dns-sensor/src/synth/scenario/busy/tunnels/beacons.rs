//! Cobalt Strike DNS beacons: several infected hosts checking in on one domain, low and
//! slow, now and then tasked.
//!
//! Shaped after Cobalt Strike's documentation of the DNS Beacon and of the Malleable C2
//! `dns-beacon` block (4.3 and later), at its defaults: a beacon checks in every `sleep`
//! shortened by up to `jitter` percent, with an A query for its id in hex under the
//! domain; the team server answers `dns_idle` (`0.0.0.0`) when it has nothing, another
//! address when tasks wait. The beacon then sends its metadata once (`put_metadata`,
//! prefix `www.`), fetches the tasks over the channel its mode names (`get_A` `cdn.`:
//! four bytes an A answer; `get_AAAA` `www6.`: sixteen an AAAA; `get_TXT` `api.`: Base64
//! text of up to 255 characters a TXT), and sends the output back hex-encoded in the
//! names of A queries (`put_output`, prefix `post.`, the first data label led by the
//! count of data labels, as the public detection rules' `post.1` has it), each name
//! within `maxdns` (255). Every fetch and every output name carries a sequence number
//! and the beacon id, so none is served from a cache.

use super::shape::{between, encode, random_bytes, BASE64, HEX};
use super::{Network, Reply, Truth};
use crate::synth::rtype;
use crate::synth::scenario::{MINUTE, SECOND};
use crate::Nanos;

/// The idle answer of a check-in (`dns_idle`).
const IDLE: [u8; 4] = [0, 0, 0, 0];

/// How a beacon fetches its tasks: the Malleable C2 prefix, the query type, the task
/// bytes one answer carries, and our stand-in for the check-in answer that selects it.
#[derive(Clone, Copy, Debug)]
struct Mode {
    prefix: &'static str,
    qtype: u16,
    per_answer: usize,
    signal: [u8; 4],
}

/// `mode dns`: A records, four bytes at a time.
const MODE_A: Mode = Mode {
    prefix: "cdn",
    qtype: rtype::A,
    per_answer: 4,
    signal: [0, 0, 0, 241],
};
/// `mode dns6`: AAAA records, sixteen bytes at a time.
const MODE_AAAA: Mode = Mode {
    prefix: "www6",
    qtype: rtype::AAAA,
    per_answer: 16,
    signal: [0, 0, 0, 243],
};
/// `mode dns-txt`: TXT records of Base64, 189 bytes at a time (252 characters).
const MODE_TXT: Mode = Mode {
    prefix: "api",
    qtype: rtype::TXT,
    per_answer: 189,
    signal: [0, 0, 0, 242],
};

/// One campaign: hosts infected by the same beacon configuration.
#[derive(Clone, Copy, Debug)]
struct Campaign {
    domain: &'static str,
    hosts: u32,
    sleep: Nanos,
    /// Percent of `sleep` a check-in may come early by.
    jitter: u64,
    mode: Mode,
    /// Per mille of check-ins that find a task waiting.
    tasked: u64,
    /// Task sizes in bytes, smallest and largest.
    task: (usize, usize),
    /// Output sizes in bytes.
    output: (usize, usize),
}

/// The campaigns: two quiet (check-ins every five to ten minutes, rare small tasks) and
/// one loud (every minute, tasks fetched four bytes at a time).
const CAMPAIGNS: [Campaign; 3] = [
    Campaign {
        domain: "cdn-serviceline.com",
        hosts: 3,
        sleep: 10 * MINUTE,
        jitter: 30,
        mode: MODE_TXT,
        tasked: 80,
        task: (40, 300),
        output: (100, 800),
    },
    Campaign {
        domain: "skylinefeeds.net",
        hosts: 2,
        sleep: 5 * MINUTE,
        jitter: 20,
        mode: MODE_AAAA,
        tasked: 40,
        task: (48, 200),
        output: (100, 900),
    },
    Campaign {
        domain: "polarbyte-cdn.xyz",
        hosts: 4,
        sleep: MINUTE,
        jitter: 20,
        mode: MODE_A,
        tasked: 30,
        task: (100, 900),
        output: (300, 4000),
    },
];

/// Hex characters of output one `post.` name carries: two labels of 62 (and the count
/// before them), which keeps the name within 255 under these domains.
const OUTPUT_CHARS: usize = 124;

/// Every campaign over the whole window, each host from its infection on.
pub fn beacons(net: &mut Network) {
    for campaign in CAMPAIGNS {
        net.label(campaign.domain, "cobaltstrike", Truth::Tunnel);
        for _ in 0..campaign.hosts {
            host(net, &campaign);
        }
    }
}

/// One infected host: a random beacon id, infected in the window's first hour, then
/// checking in until the end.
fn host(net: &mut Network, campaign: &Campaign) {
    let client = net.any_endpoint();
    let id = format!("{:08x}", net.rng().next_u64() as u32 & !1);
    let end = net.start() + net.duration();
    let mut seq = net.rng().next_u64() as u32;
    let mut ts = net.time_near(net.start(), 60 * MINUTE);
    let mut sent_metadata = false;
    while ts < end {
        let checkin = format!("{id}.{}", campaign.domain);
        let tasked = net.rng().below(1000) < campaign.tasked || !sent_metadata;
        let answer = if tasked { campaign.mode.signal } else { IDLE };
        net.ask(
            ts,
            client,
            checkin.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &answer)]),
        );
        if tasked {
            let mut at = ts + between(net, 50, 400) * 1_000_000;
            if !sent_metadata {
                // The encrypted metadata (about 128 bytes), in the first check-in's wake.
                let metadata = random_bytes(net, 128);
                at = put(
                    net,
                    client,
                    at,
                    "www",
                    &metadata,
                    &mut seq,
                    &id,
                    campaign.domain,
                );
                sent_metadata = true;
            }
            at = fetch(net, client, at, campaign, &mut seq, &id);
            let size = between(net, campaign.output.0 as u64, campaign.output.1 as u64);
            let output = random_bytes(net, size as usize);
            let after = at + between(net, 1, 20) * SECOND;
            put(
                net,
                client,
                after,
                "post",
                &output,
                &mut seq,
                &id,
                campaign.domain,
            );
        }
        // Cobalt Strike's jitter only ever shortens the sleep.
        let early = campaign.sleep / 100 * net.rng().below(campaign.jitter + 1);
        ts += campaign.sleep - early;
    }
}

/// Fetches one task over the campaign's channel; returns when the last answer came.
fn fetch(
    net: &mut Network,
    client: std::net::IpAddr,
    mut at: Nanos,
    campaign: &Campaign,
    seq: &mut u32,
    id: &str,
) -> Nanos {
    let task = between(net, campaign.task.0 as u64, campaign.task.1 as u64) as usize;
    let mode = campaign.mode;
    for _ in 0..task.div_ceil(mode.per_answer) {
        *seq = seq.wrapping_add(1);
        let name = format!("{}.{:08x}.{id}.{}", mode.prefix, *seq, campaign.domain);
        let data = random_bytes(net, mode.per_answer);
        let rdata = if mode.qtype == rtype::TXT {
            crate::synth::txt_rdata(&encode(&data, BASE64))
        } else {
            data
        };
        net.ask(
            at,
            client,
            name.as_bytes(),
            mode.qtype,
            Reply::Records(&[(mode.qtype, &rdata)]),
        );
        at += between(net, 20, 120) * 1_000_000;
    }
    at
}

/// Sends `data` hex-encoded under `prefix` (`www` metadata, `post` output), every name
/// answered with the idle address; returns when the last answer came.
#[allow(clippy::too_many_arguments)]
fn put(
    net: &mut Network,
    client: std::net::IpAddr,
    mut at: Nanos,
    prefix: &str,
    data: &[u8],
    seq: &mut u32,
    id: &str,
    domain: &str,
) -> Nanos {
    let hex = encode(data, HEX);
    for chunk in hex.chunks(OUTPUT_CHARS) {
        *seq = seq.wrapping_add(1);
        let labels: Vec<&[u8]> = chunk.chunks(62).collect();
        let mut name = format!("{prefix}.{}", labels.len()).into_bytes();
        for (i, label) in labels.iter().enumerate() {
            if i > 0 {
                name.push(b'.');
            }
            name.extend_from_slice(label);
        }
        name.extend(format!(".{:08x}.{id}.{domain}", *seq).bytes());
        net.ask(
            at,
            client,
            &name,
            rtype::A,
            Reply::Records(&[(rtype::A, &IDLE)]),
        );
        at += between(net, 20, 120) * 1_000_000;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under, Exchange};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::{HashMap, HashSet};

    fn traffic(seed: u64, hours: u64) -> Vec<Exchange> {
        let mut net = Network::new(seed, EPOCH, hours * HOUR, 500);
        beacons(&mut net);
        let done = net.finish();
        for c in CAMPAIGNS {
            assert_eq!(done.label(c.domain).map(|l| l.truth), Some(Truth::Tunnel));
        }
        exchanges(&done.traffic.into_sorted())
    }

    #[test]
    fn hosts_check_in_with_their_id_and_mostly_hear_idle() {
        let all = traffic(21, 6);
        for c in CAMPAIGNS {
            let seen = under(&all, c.domain);
            let checkins: Vec<_> = seen
                .iter()
                .filter(|e| e.name.split('.').count() == 3)
                .collect();
            let hosts: HashSet<_> = checkins.iter().map(|e| e.client).collect();
            assert_eq!(hosts.len() as u32, c.hosts, "{}", c.domain);
            // One id per host, always the same name.
            let ids: HashSet<_> = checkins.iter().map(|e| &e.name).collect();
            assert_eq!(ids.len(), hosts.len());
            assert!(checkins
                .iter()
                .all(|e| e.qtype == rtype::A && e.answers == 1));
            let idle = checkins
                .iter()
                .filter(|e| e.response_len == Some(e.query_len + 16))
                .count();
            assert_eq!(idle, checkins.len(), "an A answer each");
            // Low and slow: the gaps between one host's check-ins are its sleep, shortened.
            let mut last: HashMap<_, Nanos> = HashMap::new();
            for e in &checkins {
                if let Some(prev) = last.insert(e.client, e.ts) {
                    let gap = e.ts - prev;
                    assert!(
                        gap <= c.sleep && gap >= c.sleep / 100 * (100 - c.jitter),
                        "{gap}"
                    );
                }
            }
        }
    }

    #[test]
    fn tasks_come_over_the_mode_and_output_goes_out_in_hex_posts() {
        let all = traffic(22, 6);
        for c in CAMPAIGNS {
            let seen = under(&all, c.domain);
            let fetches: Vec<_> = seen
                .iter()
                .filter(|e| e.name.starts_with(&format!("{}.", c.mode.prefix)))
                .collect();
            assert!(!fetches.is_empty());
            assert!(fetches.iter().all(|e| e.qtype == c.mode.qtype));
            let posts: Vec<_> = seen
                .iter()
                .filter(|e| e.name.starts_with("post."))
                .collect();
            assert!(!posts.is_empty());
            for e in &posts {
                let labels: Vec<_> = e.name.split('.').collect();
                let count: usize = labels[1][..1].parse().unwrap();
                let data = labels[1][1..].len()
                    + labels[2..1 + count].iter().map(|l| l.len()).sum::<usize>();
                assert!(data > 0 && data <= OUTPUT_CHARS);
                assert!(labels[1..1 + count]
                    .iter()
                    .all(|l| l.bytes().all(|b| HEX.contains(&b))));
                assert!(e.name.len() <= 253);
            }
            let metadata = seen.iter().filter(|e| e.name.starts_with("www.")).count();
            assert!(metadata >= c.hosts as usize * 2, "metadata once a host");
        }
    }

    #[test]
    fn quiet_campaigns_stay_under_two_hundred_names_in_four_hours_and_the_loud_does_not() {
        let all = traffic(23, 4);
        let names = |domain: &str| {
            under(&all, domain)
                .iter()
                .map(|e| e.name.clone())
                .collect::<HashSet<_>>()
                .len()
        };
        for c in &CAMPAIGNS[..2] {
            let n = names(c.domain);
            assert!((30..190).contains(&n), "{}: {n}", c.domain);
        }
        assert!(names(CAMPAIGNS[2].domain) > 200);
    }
}
