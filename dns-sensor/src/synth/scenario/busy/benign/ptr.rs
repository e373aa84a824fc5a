//! Reverse look-ups of the company's own addresses: the inventory scanner sweeping whole
//! /16s one address after the other, and the log server naming the hosts its messages
//! come from. Tens of thousands of names under one registered domain: the Public Suffix
//! List has `in-addr.arpa` as a suffix, so every name of 10/8 counts under
//! `10.in-addr.arpa`.
//!
//! Shaped after RFC 1035 section 3.5: the address's octets reversed under
//! `in-addr.arpa`, answered with a PTR record naming the host; an address without a
//! host is NXDOMAIN. The scanner works like an IP address management tool's discovery
//! (or `nmap -sL`): it walks its ranges at a steady pace, a /16 a day, answered for the
//! live hosts only. The names are the directory's (`directory.rs`): the resolvers are
//! the domain's DNS servers and hold its reverse zones.

use std::net::IpAddr;

use super::directory::{workstation, AD_DOMAIN, SERVERS};
use super::{Network, Reply, Truth};
use crate::synth::scenario::HOUR;
use crate::synth::{name_rdata, rtype};

/// The registered domain of every reverse name of 10/8.
const REVERSE_10: &str = "10.in-addr.arpa";

/// The /16s the scanner sweeps (second octet of 10.x/16): the servers' and the
/// endpoints' (see [`Network::server`] and [`Network::endpoint`]).
const SWEPT: &[u8] = &[1, 20];

/// How long a sweep of a /16 takes: the scanner paces itself to a /16 a day.
const SWEEP_TIME: u64 = 24 * HOUR;

/// Source look-ups the log server sends an hour per endpoint (its cache expires; the
/// endpoints' and servers' messages keep coming).
const LOG_LOOKUPS_PER_HOUR: f64 = 0.5;

/// Servers of the mail relays (`mail.rs`), beyond the directory's.
const RELAYS: &[(&str, u8, u8)] = &[("relay01", 2, 25), ("relay02", 2, 26)];

/// The sweeps and the log server's look-ups over the whole window.
pub fn ptr_sweeps(net: &mut Network) {
    net.label(REVERSE_10, "reverse", Truth::Benign);
    sweeps(net);
    log_server(net);
}

/// The host at `10.b.c.d`, if there is one.
fn host(net: &Network, [b, c, d]: [u8; 3]) -> Option<String> {
    match b {
        20 if (1..=250).contains(&d) => {
            let i = u32::from(c) * 250 + u32::from(d) - 1;
            (i < net.endpoints()).then(|| workstation(i))
        }
        1 if c == 1 && (10..10 + 8).contains(&d) => Some(format!("nwt-dc{:02}", d - 9)),
        1 => SERVERS
            .iter()
            .chain(RELAYS)
            .find(|&&(_, rack, n)| (rack, n) == (c, d))
            .map(|&(name, _, _)| name.to_owned()),
        _ => None,
    }
    .map(|h| format!("{h}.{AD_DOMAIN}"))
}

/// `10.b.c.d`'s reverse name.
fn reverse_name([b, c, d]: [u8; 3]) -> String {
    format!("{d}.{c}.{b}.{REVERSE_10}")
}

/// Asks for `10.b.c.d`'s PTR: answered for a live host, NXDOMAIN otherwise.
fn ask_ptr(net: &mut Network, ts: u64, client: IpAddr, address: [u8; 3]) {
    let name = reverse_name(address);
    match host(net, address) {
        Some(fqdn) => {
            let rdata = name_rdata(&fqdn);
            net.ask(
                ts,
                client,
                name.as_bytes(),
                rtype::PTR,
                Reply::Records(&[(rtype::PTR, &rdata)]),
            );
        }
        None => net.ask(ts, client, name.as_bytes(), rtype::PTR, Reply::NxDomain),
    }
}

fn sweeps(net: &mut Network) {
    let scanner = Network::server(3, 40);
    let step = SWEEP_TIME / 65_536;
    let count = net.duration() / step;
    for &b in SWEPT {
        // Where the day's sweep stands when the window opens.
        let first = net.rng().below(65_536);
        for k in 0..count {
            let offset = (first + k) % 65_536;
            let address = [b, (offset >> 8) as u8, offset as u8];
            let ts = net.start() + k * step + net.rng().below(step / 4);
            ask_ptr(net, ts, scanner, address);
        }
    }
}

fn log_server(net: &mut Network) {
    let syslog = Network::server(3, 50);
    let lookups = (LOG_LOOKUPS_PER_HOUR * f64::from(net.endpoints()) * net.hours() as f64) as u64;
    for _ in 0..lookups {
        let ts = net.any_time();
        // Servers log far more per host than endpoints do.
        let address = if net.rng().below(10) < 3 {
            let k = net.rng().below((SERVERS.len() + RELAYS.len()) as u64) as usize;
            let &(_, rack, n) = SERVERS.iter().chain(RELAYS).nth(k).unwrap_or(&SERVERS[0]);
            [1, rack, n]
        } else {
            let IpAddr::V4(a) = net.any_endpoint() else {
                continue;
            };
            let [_, b, c, d] = a.octets();
            [b, c, d]
        };
        ask_ptr(net, ts, syslog, address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Classifier, DomainSettings, Verdict};
    use crate::synth::scenario::busy::testing::exchanges;
    use crate::synth::scenario::EPOCH;
    use std::collections::{HashMap, HashSet};

    fn address_of(name: &str) -> [u8; 3] {
        let octets: Vec<u8> = name
            .strip_suffix(".10.in-addr.arpa")
            .expect("under 10.in-addr.arpa")
            .split('.')
            .map(|o| o.parse().expect("an octet"))
            .collect();
        [octets[2], octets[1], octets[0]]
    }

    #[test]
    fn the_scanner_walks_each_16_one_address_after_the_other() {
        let mut net = Network::new(71, EPOCH, 2 * HOUR, 2_000);
        ptr_sweeps(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let scanner = Network::server(3, 40);
        let mut per_16: HashMap<u8, Vec<u32>> = HashMap::new();
        for e in all.iter().filter(|e| e.client == scanner) {
            assert_eq!(e.qtype, rtype::PTR);
            let [b, c, d] = address_of(&e.name);
            per_16
                .entry(b)
                .or_default()
                .push(u32::from(c) << 8 | u32::from(d));
        }
        assert_eq!(per_16.len(), SWEPT.len());
        for (b, walked) in &per_16 {
            assert_eq!(
                walked.len() as u64,
                2 * HOUR / (SWEEP_TIME / 65_536),
                "10.{b}/16"
            );
            assert!(
                walked.windows(2).all(|w| w[1] == (w[0] + 1) % 65_536),
                "10.{b}/16 in order"
            );
        }
        let unique: HashSet<&str> = all
            .iter()
            .filter(|e| e.client == scanner)
            .map(|e| e.name.as_str())
            .collect();
        assert!(unique.len() > 10_000);
    }

    #[test]
    fn live_hosts_answer_their_names_and_the_rest_nxdomain() {
        let mut net = Network::new(72, EPOCH, HOUR, 2_000);
        // The endpoints' /16: the endpoints and nothing else are live.
        let client = Network::server(9, 9);
        for address in [
            [20, 0, 1],
            [20, 0, 0],
            [20, 0, 251],
            [20, 7, 250],
            [20, 8, 1],
            [1, 3, 11],
            [1, 1, 12],
            [1, 9, 9],
        ] {
            ask_ptr(&mut net, EPOCH, client, address);
        }
        let all = exchanges(&net.finish().traffic.into_sorted());
        let rcodes: Vec<Option<u8>> = all.iter().map(|e| e.rcode).collect();
        assert_eq!(rcodes, [0, 3, 3, 0, 3, 0, 0, 3].map(Some));
        let fqdn = format!("{}.{AD_DOMAIN}", workstation(0));
        assert_eq!(
            all[0].response_len,
            Some(all[0].query_len + 12 + name_rdata(&fqdn).len())
        );
    }

    #[test]
    fn the_log_server_names_live_sources_again_and_again() {
        let mut net = Network::new(73, EPOCH, 2 * HOUR, 500);
        ptr_sweeps(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let syslog: Vec<_> = all
            .iter()
            .filter(|e| e.client == Network::server(3, 50))
            .collect();
        assert_eq!(syslog.len(), 500);
        assert!(syslog.iter().all(|e| e.rcode == Some(0) && e.answers == 1));
        let unique: HashSet<&str> = syslog.iter().map(|e| e.name.as_str()).collect();
        assert!(unique.len() < syslog.len() * 3 / 4, "the servers come back");
    }

    #[test]
    fn every_name_counts_under_10_in_addr_arpa() {
        let classifier = Classifier::new(&DomainSettings {
            include_private: true,
            whitelist: Vec::new(),
        })
        .expect("the embedded list");
        let name = reverse_name([2, 3, 4]);
        assert_eq!(name, "4.3.2.10.in-addr.arpa");
        assert_eq!(
            classifier.classify(name.as_bytes()),
            Verdict::Registered(REVERSE_10.as_bytes())
        );
    }
}
