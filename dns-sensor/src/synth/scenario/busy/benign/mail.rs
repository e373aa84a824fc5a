//! Mail relays checking every connecting address and every domain in a message against
//! DNS blocklists: the busiest benign domains of many networks.
//!
//! Shaped after RFC 5782 (DNS Blacklists and Whitelists): an IPv4 address is looked up
//! as its octets reversed under the list's zone (`2.0.0.127.zen.spamhaus.org`), an IPv6
//! one as its 32 nibbles reversed; a listed address answers A `127.0.0.x`, an unlisted one
//! NXDOMAIN. Domain lists (URIBLs) take the domain itself under the zone. Return codes
//! from the lists' public documentation: Spamhaus ZEN answers 127.0.0.2 (SBL), .3 (CSS),
//! .4 (XBL) and .10/.11 (PBL), its DBL 127.0.1.2 (spam domain), .4 (phish), .5
//! (malware); SpamCop and Barracuda 127.0.0.2; URIBL's multi list a bit mask, 127.0.0.2
//! (black), .4 (grey), .8 (red).

use super::{Network, Reply, Truth};
use crate::synth::rtype;

/// Address lists every connection is checked against: zone, registered domain.
const ADDRESS_LISTS: &[(&str, &str)] = &[
    ("zen.spamhaus.org", "spamhaus.org"),
    ("bl.spamcop.net", "spamcop.net"),
    ("b.barracudacentral.org", "barracudacentral.org"),
];

/// Domain lists every domain of a message body is checked against.
const DOMAIN_LISTS: &[(&str, &str)] = &[
    ("dbl.spamhaus.org", "spamhaus.org"),
    ("multi.uribl.com", "uribl.com"),
];

/// Inbound connections an hour to the relays.
const CONNECTIONS_PER_HOUR: u64 = 450;

/// Domains that legitimate mail links to (newsletters, banks, shops): repeated often.
const LINKED: &[&str] = &[
    "example-bank.com",
    "newsletter-shop.com",
    "github.com",
    "linkedin.com",
    "microsoft.com",
    "google.com",
    "zoom.us",
    "dropbox.com",
    "paypal.com",
    "amazon.com",
];

/// The relays' lookups over the whole window.
pub fn blocklists(net: &mut Network) {
    for (_, domain) in ADDRESS_LISTS.iter().chain(DOMAIN_LISTS) {
        net.label(domain, "dnsbl", Truth::Benign);
    }
    let relays = [Network::server(2, 25), Network::server(2, 26)];
    // Legitimate senders come back all day; spam comes from ever new addresses.
    let regular_senders: Vec<[u8; 4]> = (0..300)
        .map(|_| (net.rng().next_u64() as u32).to_le_bytes())
        .collect();
    let connections = CONNECTIONS_PER_HOUR * net.hours();
    for _ in 0..connections {
        let ts = net.any_time();
        let relay = relays[net.rng().below(2) as usize];
        let spam = net.rng().below(10) < 4;
        let v6 = net.rng().below(20) == 0;
        let listed = if spam {
            net.rng().below(10) < 7
        } else {
            net.rng().below(100) == 0
        };
        let reversed = if v6 {
            let mut address = [0u8; 16];
            net.rng().fill(&mut address);
            nibbles_reversed(&address)
        } else {
            let octets = if spam {
                (net.rng().next_u64() as u32).to_le_bytes()
            } else {
                regular_senders[net.rng().below(regular_senders.len() as u64) as usize]
            };
            format!("{}.{}.{}.{}", octets[3], octets[2], octets[1], octets[0])
        };
        for (i, (zone, _)) in ADDRESS_LISTS.iter().enumerate() {
            let name = format!("{reversed}.{zone}");
            let code: [u8; 4] = match i {
                0 => [127, 0, 0, [2, 3, 4, 10, 11][net.rng().below(5) as usize]],
                _ => [127, 0, 0, 2],
            };
            let at = net.time_near(ts, 2_000_000);
            let reply = if listed {
                Reply::Records(&[(rtype::A, &code)])
            } else {
                Reply::NxDomain
            };
            net.ask(at, relay, name.as_bytes(), rtype::A, reply);
        }
        // The message's links, checked once it has been accepted.
        for _ in 0..1 + net.rng().below(3) {
            let linked = if spam {
                format!("{}.com", spam_domain(net.rng().next_u64()))
            } else {
                LINKED[net.rng().below(LINKED.len() as u64) as usize].to_owned()
            };
            for (i, (zone, _)) in DOMAIN_LISTS.iter().enumerate() {
                let name = format!("{linked}.{zone}");
                let code: [u8; 4] = match i {
                    0 => [127, 0, 1, [2, 4, 5][net.rng().below(3) as usize]],
                    _ => [127, 0, 0, [2, 4, 8][net.rng().below(3) as usize]],
                };
                let at = net.time_near(ts + 500_000_000, 2_000_000_000);
                let reply = if spam && net.rng().below(2) == 0 {
                    Reply::Records(&[(rtype::A, &code)])
                } else {
                    Reply::NxDomain
                };
                net.ask(at, relay, name.as_bytes(), rtype::A, reply);
            }
        }
    }
}

/// An address's nibbles, lowest first, dotted: RFC 5782's IPv6 look-up name.
fn nibbles_reversed(address: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(63);
    for byte in address.iter().rev() {
        for nibble in [byte & 0x0f, byte >> 4] {
            if !out.is_empty() {
                out.push('.');
            }
            out.push(HEX[usize::from(nibble)] as char);
        }
    }
    out
}

/// A throw-away domain of a spam run: two words and a number, as such domains read.
fn spam_domain(r: u64) -> String {
    const WORDS: &[&str] = &[
        "best", "deal", "pharma", "win", "prize", "cheap", "offer", "bonus", "secure", "verify",
        "account", "crypto", "loan", "gift", "promo", "update",
    ];
    let a = WORDS[(r % 16) as usize];
    let b = WORDS[((r >> 8) % 16) as usize];
    format!("{a}-{b}{}", (r >> 16) % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;

    #[test]
    fn relays_look_up_reversed_addresses_mostly_unlisted() {
        let mut net = Network::new(7, EPOCH, 2 * HOUR, 100);
        blocklists(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let zen = under(&all, "zen.spamhaus.org");
        assert!(zen.len() as u64 >= CONNECTIONS_PER_HOUR * 2);
        let clients: HashSet<_> = zen.iter().map(|e| e.client).collect();
        assert_eq!(clients.len(), 2, "only the two relays ask");
        let v4 = zen
            .iter()
            .filter(|e| e.name.split('.').count() == 7)
            .count();
        let v6 = zen
            .iter()
            .filter(|e| e.name.split('.').count() == 35)
            .count();
        assert_eq!(
            v4 + v6,
            zen.len(),
            "four octets or 32 nibbles, then the zone"
        );
        assert!(v6 > 0 && v6 * 10 < zen.len());
        let nx = zen.iter().filter(|e| e.rcode == Some(3)).count();
        assert!(
            nx * 2 > zen.len(),
            "most addresses are not listed: {nx} of {}",
            zen.len()
        );
        for e in &zen {
            assert_eq!(e.qtype, rtype::A);
            if e.rcode == Some(0) {
                assert_eq!(e.answers, 1);
                // Header, question, one A record with a pointer owner.
                assert_eq!(e.response_len, Some(e.query_len + 16));
            }
        }
        let unique: HashSet<_> = zen.iter().map(|e| &e.name).collect();
        assert!(
            unique.len() * 10 > zen.len() * 4,
            "spam's ever new addresses"
        );
    }

    #[test]
    fn message_domains_go_to_the_domain_lists() {
        let mut net = Network::new(8, EPOCH, HOUR, 100);
        blocklists(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let dbl = under(&all, "dbl.spamhaus.org");
        let uribl = under(&all, "multi.uribl.com");
        assert_eq!(dbl.len(), uribl.len());
        assert!(dbl.len() as u64 >= CONNECTIONS_PER_HOUR);
        assert!(dbl.iter().any(|e| e.name == "github.com.dbl.spamhaus.org"));
    }

    #[test]
    fn ipv6_names_are_the_nibbles_lowest_first() {
        let mut address = [0u8; 16];
        address[0] = 0x20;
        address[1] = 0x01;
        address[15] = 0xab;
        let name = nibbles_reversed(&address);
        assert!(name.starts_with("b.a.0.0."));
        assert!(name.ends_with(".1.0.0.2"));
        assert_eq!(name.len(), 63);
    }
}
