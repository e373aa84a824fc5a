//! Ordinary browsing: what every endpoint asks all day, a few names under each of many
//! domains, none anywhere near a threshold. The background the busy services and the
//! tunnels stand out from.

use super::Network;
use crate::synth::rtype;

/// Registered domains browsed.
const DOMAINS: u64 = 4_000;

/// Queries an endpoint sends an hour (A and AAAA for each page's names, less what its
/// own cache answers).
const QUERIES_PER_ENDPOINT_HOUR: u64 = 12;

const HOSTS: &[&str] = &[
    "www", "api", "cdn", "static", "img", "login", "assets", "m", "app", "media",
];
const TLDS: &[&str] = &["com", "net", "org", "de", "co.uk", "fr", "io", "com.au"];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ter", "son", "bri", "dal", "ven", "ro", "sta", "nor", "el", "pa", "qui",
    "zen", "mar", "tek", "lu", "ora", "fin",
];

/// Browsing over the whole window: popularity Zipf-skewed (exponent about 1), one to
/// four host names a domain, every query answered.
pub fn browsing(net: &mut Network) {
    let queries = QUERIES_PER_ENDPOINT_HOUR * u64::from(net.endpoints()) * net.hours();
    let harmonic: f64 = (1..=DOMAINS).map(|r| 1.0 / r as f64).sum();
    for _ in 0..queries {
        let rank = zipf_rank(net.rng().next_u64(), harmonic);
        let domain = domain_name(rank);
        let hosts = 1 + rank % 4;
        let host = HOSTS[(net.rng().below(hosts)) as usize];
        let name = format!("{host}.{domain}");
        let ts = net.any_time();
        let client = net.any_endpoint();
        let (qtype, rdata): (u16, &[u8]) = if net.rng().below(2) == 0 {
            (rtype::A, &[198, 51, 100, 7])
        } else {
            (
                rtype::AAAA,
                &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            )
        };
        net.ask(
            ts,
            client,
            name.as_bytes(),
            qtype,
            super::Reply::Records(&[(qtype, rdata)]),
        );
    }
}

/// The rank (from 0) whose share is about `1 / (rank + 1)` of all queries.
fn zipf_rank(r: u64, harmonic: f64) -> u64 {
    // The inverse of the harmonic partial sums, H(n) ~ ln n + 0.5772.
    let u = (r >> 11) as f64 / (1u64 << 53) as f64;
    let n = (u * harmonic - 0.5772).exp();
    (n as u64).min(DOMAINS - 1)
}

/// Domain `rank`'s name: three syllables and a top-level domain, distinct per rank.
fn domain_name(rank: u64) -> String {
    let s = SYLLABLES.len() as u64;
    let word: String = [rank % s, rank / s % s, rank / (s * s) % s]
        .iter()
        .map(|&i| SYLLABLES[i as usize])
        .collect();
    let tld = TLDS[(rank / (s * s * s) + rank) as usize % TLDS.len()];
    format!("{word}{}.{tld}", rank / (s * s * s))
}

#[cfg(test)]
mod tests {
    use super::super::testing::exchanges;
    use super::*;
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::{HashMap, HashSet};

    #[test]
    fn browsing_is_skewed_and_keeps_every_domain_small() {
        let mut net = Network::new(3, EPOCH, HOUR, 500);
        browsing(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        assert_eq!(all.len() as u64, QUERIES_PER_ENDPOINT_HOUR * 500);
        let mut names: HashMap<String, HashSet<&str>> = HashMap::new();
        for e in &all {
            let domain = e.name.split_once('.').map_or("", |(_, d)| d);
            names.entry(domain.to_owned()).or_default().insert(&e.name);
            assert_eq!(e.rcode, Some(0));
        }
        assert!(names.values().all(|n| n.len() <= 4));
        let top = all
            .iter()
            .filter(|e| e.name.ends_with(&domain_name(0)))
            .count();
        assert!(
            top * 20 > all.len(),
            "the first domain takes a large share: {top}"
        );
        assert!(names.len() > 1000, "a long tail: {} domains", names.len());
    }

    #[test]
    fn ranks_have_distinct_names() {
        let names: HashSet<String> = (0..DOMAINS).map(domain_name).collect();
        assert_eq!(names.len() as u64, DOMAINS);
    }
}
