//! The company's Active Directory domain, `corp.northwind-traders.com`: every endpoint
//! locating its domain controllers, resolving the company's servers, being resolved by
//! the management server, and its browser's random probes completed by the DNS suffix.
//! Thousands of names under one registered domain, `northwind-traders.com`, all benign.
//!
//! Shaped after Microsoft's documentation of the DC locator ("How domain controllers
//! are located in Windows", and the SRV records Netlogon registers): a client looks up
//! `_ldap._tcp.<Site>._sites.dc._msdcs.<domain>` for the DCs of its site, falls back to
//! `_ldap._tcp.dc._msdcs.<domain>` for all of them, finds the KDCs through
//! `_kerberos._tcp...`, the password service through `_kpasswd._tcp.<domain>`, the
//! global catalog through `_gc._tcp.<forest>` and the PDC emulator through
//! `_ldap._tcp.pdc._msdcs.<domain>`; each answer is SRV records (RFC 2782: priority,
//! weight, port, target) naming the DCs, whose addresses the client then asks for.
//! Group Policy refreshes every 90 minutes with a random offset of up to 30 and
//! locates a DC each time.
//!
//! Chromium's intranet redirect detector, at start-up and at every network change,
//! resolves three random single labels of 7 to 15 lower-case letters to learn whether
//! the network's resolver answers names that do not exist; Windows completes a single
//! label with the primary DNS suffix before sending it, so the resolver sees
//! `<random>.corp.northwind-traders.com`, and answers NXDOMAIN.

use std::net::IpAddr;

use super::{Network, Reply, Truth};
use crate::synth::scenario::{MINUTE, SECOND};
use crate::synth::{name_rdata, rtype};

/// The Active Directory domain (a single-domain forest).
pub(super) const AD_DOMAIN: &str = "corp.northwind-traders.com";
/// Its registered domain.
const REGISTERED: &str = "northwind-traders.com";

/// AD sites, each with two domain controllers; endpoint subnets (their /24s) belong to
/// the sites in turn.
const SITES: &[&str] = &[
    "HQ-Frankfurt",
    "Branch-Hamburg",
    "Branch-Munich",
    "Branch-Vienna",
];

/// Servers of the domain that endpoints use by name, with their address
/// ([`Network::server`]'s rack and number).
pub(super) const SERVERS: &[(&str, u8, u8)] = &[
    ("fs01", 3, 11),
    ("fs02", 3, 12),
    ("fs-projects", 3, 13),
    ("print01", 3, 21),
    ("print02", 3, 22),
    ("intranet", 4, 10),
    ("wiki", 4, 11),
    ("jira", 4, 12),
    ("crm", 4, 13),
    ("erp-app01", 4, 20),
    ("sccm01", 3, 10),
    ("wsus01", 3, 30),
    ("exch01", 2, 40),
    ("exch02", 2, 41),
    ("adfs", 1, 30),
    ("vpn-gw", 1, 40),
    ("proxy", 1, 41),
    ("nas-backup", 5, 50),
    ("ipam01", 3, 40),
    ("syslog01", 3, 50),
    ("acme01", 5, 10),
];

/// Group Policy's refresh interval.
const GP_INTERVAL: u64 = 90 * MINUTE;
/// The largest random offset added to it.
const GP_OFFSET: u64 = 30 * MINUTE;

/// Logons an endpoint makes an hour (boots, new sessions; a full DC discovery each).
const LOGONS_PER_HOUR: f64 = 0.08;

/// Look-ups of the company's servers an endpoint sends an hour, past its own cache.
const SERVER_LOOKUPS_PER_HOUR: f64 = 0.7;

/// How often the management server resolves each workstation (client health checks).
const MANAGEMENT_INTERVAL: u64 = 3 * 60 * MINUTE;

/// Browser start-ups an endpoint makes an hour.
const BROWSER_STARTS_PER_HOUR: f64 = 0.1;
/// Network changes a laptop goes through an hour (docking, Wi-Fi, VPN).
const NETWORK_CHANGES_PER_HOUR: f64 = 0.2;

/// The directory's look-ups over the whole window.
pub fn directory(net: &mut Network) {
    net.label(REGISTERED, "directory", Truth::Benign);
    group_policy(net);
    logons(net);
    servers(net);
    management(net);
    redirect_probes(net);
}

/// Endpoint `i`'s workstation name: laptops (two in three) and desktops, numbered.
pub(super) fn workstation(i: u32) -> String {
    let kind = if is_laptop(i) { 'l' } else { 'd' };
    format!("nwt-{kind}{:05}", i + 1)
}

fn is_laptop(i: u32) -> bool {
    i % 3 != 0
}

/// Endpoint `i`'s site.
fn site_of(i: u32) -> usize {
    (i / 250) as usize % SITES.len()
}

/// Domain controller `k` (0-based; site `k / 2`): name and address.
fn dc(k: usize) -> (String, [u8; 4]) {
    (
        format!("nwt-dc{:02}.{AD_DOMAIN}", k + 1),
        [10, 1, 1, 10 + k as u8],
    )
}

/// SRV rdata for each of `dcs` at `port`: the site's own at priority 0.
fn srv_records(dcs: &[usize], port: u16) -> Vec<Vec<u8>> {
    dcs.iter()
        .map(|&k| {
            let mut rdata = Vec::new();
            for field in [0u16, 100, port] {
                rdata.extend_from_slice(&field.to_be_bytes());
            }
            rdata.extend_from_slice(&name_rdata(&dc(k).0));
            rdata
        })
        .collect()
}

/// One SRV look-up answered with `dcs` at `port`.
fn locate(net: &mut Network, ts: u64, client: IpAddr, name: &str, dcs: &[usize], port: u16) {
    let records = srv_records(dcs, port);
    let answers: Vec<(u16, &[u8])> = records.iter().map(|r| (rtype::SRV, r.as_slice())).collect();
    net.ask(
        ts,
        client,
        name.as_bytes(),
        rtype::SRV,
        Reply::Records(&answers),
    );
}

/// The two DCs of `site`.
fn site_dcs(site: usize) -> [usize; 2] {
    [2 * site, 2 * site + 1]
}

/// Every DC of the domain.
fn all_dcs() -> Vec<usize> {
    (0..2 * SITES.len()).collect()
}

fn group_policy(net: &mut Network) {
    let end = net.start() + net.duration();
    for i in 0..net.endpoints() {
        let client = net.endpoint(i);
        let site = site_of(i);
        let name = format!("_ldap._tcp.{}._sites.dc._msdcs.{AD_DOMAIN}", SITES[site]);
        // The first refresh falls inside even a short window.
        let first = GP_INTERVAL.min(net.duration());
        let mut ts = net.start() + net.rng().below(first);
        while ts < end {
            locate(net, ts, client, &name, &site_dcs(site), 389);
            // The DC's address is in the endpoint's cache half the time.
            if net.rng().below(2) == 0 {
                let (host, address) = dc(site_dcs(site)[net.rng().below(2) as usize]);
                net.ask(
                    ts + 2_000_000,
                    client,
                    host.as_bytes(),
                    rtype::A,
                    Reply::Records(&[(rtype::A, &address)]),
                );
            }
            ts += GP_INTERVAL + net.rng().below(GP_OFFSET);
        }
    }
}

fn logons(net: &mut Network) {
    let logons = (LOGONS_PER_HOUR * f64::from(net.endpoints()) * net.hours() as f64) as u64;
    for _ in 0..logons {
        let endpoints = u64::from(net.endpoints());
        let i = net.rng().below(endpoints) as u32;
        let client = net.endpoint(i);
        let site = site_of(i);
        let dcs = site_dcs(site);
        let mut ts = net.any_time();
        let site_name = SITES[site];
        // At boot the client does not know its site yet: the domain-wide name first,
        // then the site's once a DC has told it.
        let steps: [(String, bool, u16); 6] = [
            (format!("_ldap._tcp.dc._msdcs.{AD_DOMAIN}"), false, 389),
            (
                format!("_ldap._tcp.{site_name}._sites.dc._msdcs.{AD_DOMAIN}"),
                true,
                389,
            ),
            (
                format!("_kerberos._tcp.{site_name}._sites.dc._msdcs.{AD_DOMAIN}"),
                true,
                88,
            ),
            (format!("_kerberos._tcp.dc._msdcs.{AD_DOMAIN}"), false, 88),
            (format!("_gc._tcp.{AD_DOMAIN}"), false, 3268),
            (format!("_kpasswd._tcp.{AD_DOMAIN}"), false, 464),
        ];
        for (name, in_site, port) in &steps {
            let answer = if *in_site { dcs.to_vec() } else { all_dcs() };
            locate(net, ts, client, name, &answer, *port);
            ts += 5_000_000 + net.rng().below(200_000_000);
        }
        let (host, address) = dc(dcs[net.rng().below(2) as usize]);
        net.ask(
            ts,
            client,
            host.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &address)]),
        );
        // A password change due: the PDC emulator.
        if net.rng().below(20) == 0 {
            let name = format!("_ldap._tcp.pdc._msdcs.{AD_DOMAIN}");
            locate(net, ts + SECOND, client, &name, &[0], 389);
        }
    }
}

fn servers(net: &mut Network) {
    let lookups =
        (SERVER_LOOKUPS_PER_HOUR * f64::from(net.endpoints()) * net.hours() as f64) as u64;
    for _ in 0..lookups {
        let client = net.any_endpoint();
        let ts = net.any_time();
        // The file servers and the intranet first, the rest less.
        let u = (net.rng().next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let k = (((SERVERS.len() + 1) as f64).powf(u) - 1.0) as usize;
        let (host, rack, n) = SERVERS[k.min(SERVERS.len() - 1)];
        let name = format!("{host}.{AD_DOMAIN}");
        net.ask(
            ts,
            client,
            name.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &[10, 1, rack, n])]),
        );
    }
}

fn management(net: &mut Network) {
    // sccm01 of SERVERS.
    let sccm = Network::server(3, 10);
    let end = net.start() + net.duration();
    for i in 0..net.endpoints() {
        let name = format!("{}.{AD_DOMAIN}", workstation(i));
        let IpAddr::V4(address) = net.endpoint(i) else {
            continue;
        };
        let first = MANAGEMENT_INTERVAL.min(net.duration());
        let mut ts = net.start() + net.rng().below(first);
        while ts < end {
            net.ask(
                ts,
                sccm,
                name.as_bytes(),
                rtype::A,
                Reply::Records(&[(rtype::A, &address.octets())]),
            );
            ts += MANAGEMENT_INTERVAL;
        }
    }
}

fn redirect_probes(net: &mut Network) {
    let count = net.endpoints();
    let endpoints = f64::from(count);
    let hours = net.hours() as f64;
    // Laptops alone change networks.
    let laptops = f64::from(net.endpoints() - net.endpoints().div_ceil(3));
    let events = (BROWSER_STARTS_PER_HOUR * endpoints * hours
        + NETWORK_CHANGES_PER_HOUR * laptops * hours) as u64;
    let starts = (BROWSER_STARTS_PER_HOUR * endpoints * hours) as u64;
    for e in 0..events {
        let i = loop {
            let i = net.rng().below(u64::from(count)) as u32;
            if e < starts || is_laptop(i) {
                break i;
            }
        };
        let client = net.endpoint(i);
        // The detector waits a little after start-up or the change, then sends all three.
        let ts = net.any_time();
        for _ in 0..3 {
            let len = 7 + net.rng().below(9) as usize;
            let label: String = (0..len)
                .map(|_| (b'a' + net.rng().below(26) as u8) as char)
                .collect();
            let name = format!("{label}.{AD_DOMAIN}");
            let at = net.time_near(ts, 50_000_000);
            net.ask(at, client, name.as_bytes(), rtype::A, Reply::NxDomain);
            // Endpoints with IPv6 on ask for AAAA as well.
            if i % 2 == 0 {
                net.ask(
                    at + 300_000,
                    client,
                    name.as_bytes(),
                    rtype::AAAA,
                    Reply::NxDomain,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::{HashMap, HashSet};

    #[test]
    fn every_endpoint_locates_the_dcs_of_its_own_site() {
        let mut net = Network::new(61, EPOCH, 2 * HOUR, 1_000);
        directory(&mut net);
        let endpoints: Vec<IpAddr> = (0..1_000).map(|i| net.endpoint(i)).collect();
        let all = exchanges(&net.finish().traffic.into_sorted());
        let srv: Vec<_> = all.iter().filter(|e| e.qtype == rtype::SRV).collect();
        let mut sites: HashMap<IpAddr, HashSet<&str>> = HashMap::new();
        for e in &srv {
            assert!(
                e.name.ends_with(AD_DOMAIN) && e.name.starts_with('_'),
                "{}",
                e.name
            );
            if let Some((_, rest)) = e.name.split_once("._tcp.") {
                if let Some((site, _)) = rest.split_once("._sites.") {
                    sites.entry(e.client).or_default().insert(site);
                }
            }
        }
        for (i, client) in endpoints.iter().enumerate() {
            let asked = sites
                .get(client)
                .expect("every endpoint refreshes its policy");
            let own = SITES[site_of(i as u32)].to_ascii_lowercase();
            assert_eq!(
                asked.iter().copied().collect::<Vec<_>>(),
                vec![own.as_str()]
            );
        }
    }

    #[test]
    fn srv_answers_name_the_dcs_with_their_ports() {
        let mut net = Network::new(62, EPOCH, 3 * HOUR, 500);
        directory(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let rr_len = |k: usize| 12 + 6 + name_rdata(&dc(k).0).len();
        let mut seen_domain_wide = false;
        for e in all.iter().filter(|e| e.qtype == rtype::SRV) {
            let dcs: Vec<usize> = if e.name.contains("._sites.") {
                let site = SITES
                    .iter()
                    .position(|s| e.name.contains(&format!(".{}.", s.to_ascii_lowercase())))
                    .expect("a site");
                site_dcs(site).to_vec()
            } else if e.name.contains(".pdc.") {
                vec![0]
            } else {
                seen_domain_wide = true;
                all_dcs()
            };
            assert_eq!(
                (e.rcode, usize::from(e.answers)),
                (Some(0), dcs.len()),
                "{}",
                e.name
            );
            let expected: usize = dcs.iter().map(|&k| rr_len(k)).sum();
            assert_eq!(e.response_len, Some(e.query_len + expected), "{}", e.name);
        }
        assert!(seen_domain_wide);
        let srv = &srv_records(&[3], 88)[0];
        assert_eq!(&srv[..6], &[0, 0, 0, 100, 0, 88]);
        assert_eq!(
            &srv[6..],
            &name_rdata("nwt-dc04.corp.northwind-traders.com")[..]
        );
    }

    #[test]
    fn browser_probes_are_random_letters_completed_by_the_suffix() {
        let mut net = Network::new(63, EPOCH, 4 * HOUR, 2_000);
        directory(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let suffix = format!(".{AD_DOMAIN}");
        let probes: Vec<_> = all.iter().filter(|e| e.rcode == Some(3)).collect();
        assert!(!probes.is_empty());
        for e in &probes {
            let label = e.name.strip_suffix(&suffix).expect("under the AD domain");
            assert!(
                (7..=15).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_lowercase()),
                "{}",
                e.name
            );
        }
        let a: Vec<_> = probes.iter().filter(|e| e.qtype == rtype::A).collect();
        assert_eq!(a.len() % 3, 0, "three probes an event");
        let unique: HashSet<&str> = a.iter().map(|e| e.name.as_str()).collect();
        assert!(
            unique.len() * 100 >= a.len() * 99,
            "random names hardly repeat"
        );
        // With the workstations the management server resolves, thousands of names.
        let names: HashSet<&str> = under(&all, REGISTERED)
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert!(names.len() > 5_000, "{} names", names.len());
    }

    #[test]
    fn the_management_server_resolves_every_workstation() {
        let mut net = Network::new(64, EPOCH, HOUR, 300);
        directory(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let sccm = Network::server(3, 10);
        let resolved: HashSet<&str> = all
            .iter()
            .filter(|e| e.client == sccm)
            .map(|e| e.name.as_str())
            .collect();
        let expected: HashSet<String> = (0..300)
            .map(|i| format!("{}.{AD_DOMAIN}", workstation(i)))
            .collect();
        assert_eq!(resolved.len(), expected.len());
        assert!(resolved.iter().all(|n| expected.contains(*n)));
        assert_eq!(workstation(0), "nwt-d00001");
        assert_eq!(workstation(1), "nwt-l00002");
    }
}
