//! Video and download edges of the content delivery networks: the player or the updater
//! is handed a URL on one cache server among hundreds, each with a host name of its own,
//! and resolves it. Every endpoint, A and AAAA, a few hundred names a domain.
//!
//! Shaped after what the operators publish and what any capture of them shows:
//! - YouTube's video caches, `rN---sn-XXXXXXXX.googlevideo.com`: `sn-` and eight
//!   characters name a cache cluster (the Google Global Cache nodes in the viewer's ISP
//!   first, then Google's own), `rN` a server of it; a session streams from a few of them.
//!   Chrome's and its components' updates come from the same caches under `gvt1.com`,
//!   after a look-up of `redirector.gvt1.com`.
//! - Netflix Open Connect: the steering service hands the client a ranked list of
//!   Open Connect Appliances, `ipv4-c001-fra001-ix.1.oca.nflxvideo.net` and the `ipv6-`
//!   twin (cache number, site, the exchange point `ix` or an ISP's embedded caches
//!   `<isp>-isp`); each name has addresses of its family only.
//! - Akamai: customers CNAME their host names to `<host>.edgesuite.net` or
//!   `<host>.edgekey.net`, which CNAME to the edge map's `aNNNN.dscX.akamai.net` or
//!   `eNNNN.dscX.akamaiedge.net`; pages and installers that still carry Akamai resource
//!   locators (`http://aNNNN.dscX.akamai.net/...`) have the endpoint ask the map's name
//!   itself. `akamai.net` is a public suffix (the list's private section), so each map,
//!   `dscb.akamai.net`, is a registered domain of its own, with tens of names.

use super::{Network, Reply, Truth};
use crate::synth::scenario::MINUTE;
use crate::synth::{mix64, name_rdata, rtype};

/// YouTube's video domain.
const YOUTUBE: &str = "googlevideo.com";
/// Chrome's downloads' domain.
const CHROME: &str = "gvt1.com";

/// Cache clusters that serve this network's viewers (the ISP's caches and the nearest
/// Google sites).
const YOUTUBE_CLUSTERS: u64 = 24;
/// Cache clusters that serve its Chrome updates.
const CHROME_CLUSTERS: u64 = 4;
/// Servers (`rN`) a cluster names.
const SERVERS_PER_CLUSTER: u64 = 20;

/// Video sessions an endpoint starts an hour (training videos, conference talks).
const YOUTUBE_SESSIONS_PER_HOUR: f64 = 0.1;

/// Netflix's video domain.
const NETFLIX: &str = "nflxvideo.net";

/// Open Connect sites near the network (site and its kind), and their appliances.
const NETFLIX_SITES: &[(&str, u64)] = &[
    ("fra001-ix", 96),
    ("fra002-ix", 64),
    ("ham001-metrocable-isp", 24),
    ("ams001-ix", 40),
];

/// Netflix sessions an endpoint starts an hour: lunch breaks.
const NETFLIX_SESSIONS_PER_HOUR: f64 = 0.03;

/// Akamai maps whose names are asked directly, with how many `aNNNN` serials of each
/// this network's pages and installers carry.
const AKAMAI_MAPS: &[(&str, u64)] = &[
    ("dscb.akamai.net", 120),
    ("dscd.akamai.net", 80),
    ("dscx.akamai.net", 50),
    ("g.akamai.net", 30),
];

/// Direct Akamai look-ups an endpoint sends an hour.
const AKAMAI_DIRECT_PER_HOUR: f64 = 0.3;

/// Customer host names on Akamai (fictitious companies), the suffix their CNAME points
/// into, and the map the edge name is on.
const AKAMAI_CUSTOMERS: &[(&str, &str, &str)] = &[
    (
        "updates.tailspin-toys.com",
        "edgesuite.net",
        "dscd.akamai.net",
    ),
    (
        "download.litware-software.com",
        "edgesuite.net",
        "dscb.akamai.net",
    ),
    ("www.wingtip-shop.com", "edgekey.net", "dscx.akamaiedge.net"),
    (
        "media.adventure-works.com",
        "edgekey.net",
        "dscx.akamaiedge.net",
    ),
    (
        "static.fourth-coffee.com",
        "edgesuite.net",
        "dscb.akamai.net",
    ),
];

/// Look-ups of those customers' names an endpoint sends an hour.
const AKAMAI_CUSTOMER_PER_HOUR: f64 = 0.5;

/// Chrome update downloads an endpoint makes an hour (browser and components).
const CHROME_UPDATES_PER_HOUR: f64 = 0.05;

/// The edges' look-ups over the whole window.
pub fn cdn(net: &mut Network) {
    net.label(YOUTUBE, "cdn", Truth::Benign);
    net.label(CHROME, "cdn", Truth::Benign);
    net.label(NETFLIX, "cdn", Truth::Benign);
    for (map, _) in AKAMAI_MAPS {
        net.label(map, "cdn", Truth::Benign);
    }
    youtube(net);
    netflix(net);
    akamai(net);
    chrome_updates(net);
}

fn youtube(net: &mut Network) {
    for _ in 0..net.endpoint_events(YOUTUBE_SESSIONS_PER_HOUR) {
        let client = net.any_endpoint();
        let start = net.any_time();
        let home = net.skewed(YOUTUBE_CLUSTERS);
        // The player moves between servers of its cluster as it buffers, and now and
        // then to another cluster when the first is loaded.
        for _ in 0..2 + net.rng().below(4) {
            let cluster = if net.rng().below(5) == 0 {
                net.rng().below(YOUTUBE_CLUSTERS)
            } else {
                home
            };
            let server = 1 + net.rng().below(SERVERS_PER_CLUSTER);
            let name = format!("r{server}---{}.{YOUTUBE}", cluster_code(0x7907, cluster));
            let ts = net.time_near(start, 10 * MINUTE);
            net.ask_both_families(
                ts,
                client,
                &name,
                google_cache([cluster as u8, server as u8]),
                1_000_000,
            );
        }
    }
}

fn chrome_updates(net: &mut Network) {
    for _ in 0..net.endpoint_events(CHROME_UPDATES_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let redirector = format!("redirector.{CHROME}");
        net.ask(
            ts,
            client,
            redirector.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &[142, 250, 185, 14])]),
        );
        let cluster = net.skewed(CHROME_CLUSTERS);
        for _ in 0..1 + net.rng().below(2) {
            let server = 1 + net.rng().below(SERVERS_PER_CLUSTER);
            let name = format!("r{server}---{}.{CHROME}", cluster_code(0xc470, cluster));
            let at = net.time_near(ts + 100_000_000, 2_000_000_000);
            net.ask_both_families(
                at,
                client,
                &name,
                google_cache([64 + cluster as u8, server as u8]),
                1_000_000,
            );
        }
    }
}

/// The addresses of a Google cache `host`: one in 74.125/16, one in 2a00:1450::/32.
fn google_cache(host: [u8; 2]) -> ([u8; 4], [u8; 16]) {
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x2a, 0x00, 0x14, 0x50]);
    v6[14..].copy_from_slice(&host);
    ([74, 125, host[0], host[1]], v6)
}

/// A cache cluster's `sn-` label: eight letters and digits, fixed per cluster.
fn cluster_code(salt: u64, cluster: u64) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = mix64(salt << 32 | cluster);
    let code: String = (0..8)
        .map(|_| {
            let c = ALPHABET[(r % 36) as usize] as char;
            r /= 36;
            c
        })
        .collect();
    format!("sn-{code}")
}

fn netflix(net: &mut Network) {
    let weights: u64 = NETFLIX_SITES.iter().map(|(_, n)| n).sum();
    for _ in 0..net.endpoint_events(NETFLIX_SESSIONS_PER_HOUR) {
        let client = net.any_endpoint();
        let start = net.any_time();
        // Steering ranks appliances of one site, the bigger sites more often.
        let mut pick = net.rng().below(weights);
        let (site_index, (site, caches)) = NETFLIX_SITES
            .iter()
            .enumerate()
            .find(|(_, (_, n))| {
                let here = pick < *n;
                pick = pick.saturating_sub(*n);
                here
            })
            .unwrap_or((0, &NETFLIX_SITES[0]));
        for _ in 0..3 + net.rng().below(3) {
            let cache = 1 + net.rng().below(*caches);
            let ts = net.time_near(start, 30_000_000_000);
            let v4 = format!("ipv4-c{cache:03}-{site}.1.oca.{NETFLIX}");
            let v6 = format!("ipv6-c{cache:03}-{site}.1.oca.{NETFLIX}");
            let address = [45, 57, 10 + site_index as u8, cache as u8];
            let mut address6 = [0u8; 16];
            address6[..4].copy_from_slice(&[0x2a, 0x00, 0x86, 0xc0]);
            address6[13] = site_index as u8;
            address6[15] = cache as u8;
            // A browser asks both types of each name; each has its family only.
            net.ask(
                ts,
                client,
                v4.as_bytes(),
                rtype::A,
                Reply::Records(&[(rtype::A, &address)]),
            );
            net.ask(
                ts + 400_000,
                client,
                v4.as_bytes(),
                rtype::AAAA,
                Reply::NoData,
            );
            net.ask(
                ts + 900_000,
                client,
                v6.as_bytes(),
                rtype::AAAA,
                Reply::Records(&[(rtype::AAAA, &address6)]),
            );
            net.ask(
                ts + 1_300_000,
                client,
                v6.as_bytes(),
                rtype::A,
                Reply::NoData,
            );
        }
    }
}

/// The `aNNNN` serial `k` of a map: fixed four-digit numbers, distinct within a map.
fn serial(map: usize, k: u64) -> u64 {
    // Spread the serials over 1000..9999 without collisions: k is below 9000 / 4.
    1000 + (k * 4 + map as u64) % 9000
}

fn akamai(net: &mut Network) {
    for _ in 0..net.endpoint_events(AKAMAI_DIRECT_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let map = net.rng().below(AKAMAI_MAPS.len() as u64) as usize;
        let (zone, serials) = AKAMAI_MAPS[map];
        let k = net.skewed(serials);
        let name = format!("a{}.{zone}", serial(map, k));
        let address = [23, 32 + map as u8, (k / 250) as u8, (k % 250) as u8 + 1];
        net.ask(
            ts,
            client,
            name.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &address)]),
        );
        if net.rng().below(2) == 0 {
            net.ask(
                ts + 500_000,
                client,
                name.as_bytes(),
                rtype::AAAA,
                Reply::NoData,
            );
        }
    }
    for _ in 0..net.endpoint_events(AKAMAI_CUSTOMER_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let c = net.rng().below(AKAMAI_CUSTOMERS.len() as u64) as usize;
        let (host, alias_suffix, map) = AKAMAI_CUSTOMERS[c];
        // The resolver hands back the whole chain: the customer's alias, the edge
        // name, the edge's addresses.
        let alias = name_rdata(&format!("{host}.{alias_suffix}"));
        let edge_kind = if alias_suffix == "edgekey.net" {
            'e'
        } else {
            'a'
        };
        let edge = name_rdata(&format!(
            "{edge_kind}{}.{map}",
            1000 + mix64(c as u64) % 9000
        ));
        let first = [23, 48, c as u8, 1 + net.rng().below(200) as u8];
        let second = [first[0], first[1], first[2], first[3] + 1];
        let chain: [(u16, &[u8]); 4] = [
            (rtype::CNAME, &alias),
            (rtype::CNAME, &edge),
            (rtype::A, &first),
            (rtype::A, &second),
        ];
        net.ask(
            ts,
            client,
            host.as_bytes(),
            rtype::A,
            Reply::Records(&chain),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under, Exchange};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::{HashMap, HashSet};

    fn unique<'e>(seen: &[&'e Exchange]) -> HashSet<&'e str> {
        seen.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn video_caches_are_many_names_of_a_fixed_shape() {
        let mut net = Network::new(31, EPOCH, 4 * HOUR, 2_000);
        cdn(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let youtube = under(&all, YOUTUBE);
        for e in &youtube {
            let (server, rest) = e.name.split_once("---sn-").expect("rN---sn-");
            let n: u64 = server
                .strip_prefix('r')
                .and_then(|n| n.parse().ok())
                .expect("rN");
            assert!((1..=SERVERS_PER_CLUSTER).contains(&n));
            assert_eq!(rest.len(), 8 + 1 + YOUTUBE.len(), "{}", e.name);
            assert_eq!(e.rcode, Some(0));
            assert_eq!(e.answers, 1);
        }
        let a = youtube.iter().filter(|e| e.qtype == rtype::A).count();
        assert_eq!(a * 2, youtube.len(), "every name is asked for A and AAAA");
        let names = unique(&youtube).len() as u64;
        assert!(
            (300..=YOUTUBE_CLUSTERS * SERVERS_PER_CLUSTER).contains(&names),
            "{names}"
        );
        let clients: HashSet<_> = youtube.iter().map(|e| e.client).collect();
        assert!(clients.len() > 500, "{} viewers", clients.len());
        let netflix = under(&all, NETFLIX);
        let names = unique(&netflix).len();
        assert!(names > 300, "{names} appliance names");
    }

    #[test]
    fn open_connect_names_carry_their_family_only() {
        let mut net = Network::new(32, EPOCH, 2 * HOUR, 1_000);
        cdn(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let netflix = under(&all, NETFLIX);
        assert!(!netflix.is_empty());
        for e in &netflix {
            let family_type = if e.name.starts_with("ipv4-c") {
                rtype::A
            } else {
                assert!(e.name.starts_with("ipv6-c"), "{}", e.name);
                rtype::AAAA
            };
            assert!(e.name.ends_with(".1.oca.nflxvideo.net"));
            assert_eq!(e.rcode, Some(0));
            assert_eq!(
                e.answers,
                u16::from(e.qtype == family_type),
                "{} {}",
                e.name,
                e.qtype
            );
            let size = if e.qtype == rtype::A { 16 } else { 28 };
            let extra = if e.answers == 1 { size } else { 0 };
            assert_eq!(e.response_len, Some(e.query_len + extra));
        }
    }

    #[test]
    fn akamai_maps_stay_small_and_customers_get_a_chain() {
        let mut net = Network::new(33, EPOCH, 6 * HOUR, 2_000);
        cdn(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        for (map, serials) in AKAMAI_MAPS {
            let names = unique(&under(&all, map));
            assert!(
                names.len() as u64 <= *serials && names.len() * 2 > *serials as usize,
                "{map}"
            );
            assert!(names
                .iter()
                .all(|n| n.starts_with('a') && n.split('.').count() == 4));
        }
        let mut per_host: HashMap<&str, usize> = HashMap::new();
        for (host, _, _) in AKAMAI_CUSTOMERS {
            for e in all.iter().filter(|e| e.name == *host) {
                assert_eq!((e.rcode, e.answers), (Some(0), 4), "two CNAMEs and two A");
                *per_host.entry(host).or_default() += 1;
            }
        }
        assert_eq!(per_host.len(), AKAMAI_CUSTOMERS.len());
        // Chrome's caches: a few clusters, under 200 names; each download is preceded by
        // the redirector.
        let chrome = under(&all, CHROME);
        let names = unique(&chrome);
        assert!(names.len() < 100, "{}", names.len());
        let redirects = chrome
            .iter()
            .filter(|e| e.name.starts_with("redirector."))
            .count();
        assert_eq!(
            redirects as u64,
            Network::new(0, EPOCH, 6 * HOUR, 2_000).endpoint_events(CHROME_UPDATES_PER_HOUR)
        );
    }

    #[test]
    fn cluster_codes_are_fixed_and_distinct() {
        let codes: HashSet<String> = (0..YOUTUBE_CLUSTERS)
            .map(|c| cluster_code(0x7907, c))
            .collect();
        assert_eq!(codes.len() as u64, YOUTUBE_CLUSTERS);
        assert_eq!(cluster_code(1, 2), cluster_code(1, 2));
        let serials: HashSet<u64> = (0..4)
            .flat_map(|m| (0..120).map(move |k| serial(m, k)))
            .collect();
        assert_eq!(serials.len(), 480);
    }
}
