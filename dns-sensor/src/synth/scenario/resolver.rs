//! Traffic shaped like a busy recursive resolver's, for benchmarks that should look like
//! what a sensor in front of one really sees (issue 9).
//!
//! [`ResolverMix`] holds the catalogue (registered domains, their names, the popularity
//! table, the clients) and streams the frames in time order through
//! [`ResolverMix::frames`], so captures of tens of millions of frames are written
//! without being held in memory; [`resolver_mix`] collects them into a [`Traffic`] for
//! the in-memory benchmarks and the tests.
//!
//! Every choice, and why it was made:
//!
//! - **One hour.** The issue's figures are for one hour; it spans four 15-minute slots,
//!   so slot hand-over and the end-of-input evaluation are in the measurement but a
//!   window's worth of memory is not. Query `i` of `n` is sent at a uniformly random
//!   time inside the `i`-th of `n` equal steps of the hour, so times are increasing,
//!   evenly spread and not on a grid.
//! - **50 000 registered domains** ([`DOMAINS`]), plus the [`TUNNEL_DOMAINS`]. The first
//!   ones are 16 well-known real domains (google.com, apple.com, bbc.co.uk, yahoo.co.jp
//!   ...), four of which are on the default whitelist (google.com, apple.com,
//!   icloud.com, amazonaws.com), so the whitelist path gets the share of a real
//!   resolver's traffic that the big platforms take; then `city.kawasaki.jp`, which
//!   only an exception rule (`!city.kawasaki.jp` beside `*.kawasaki.jp`) makes a
//!   registered domain; the rest are made-up labels spread over [`SUFFIXES`] by weight.
//! - **Suffixes.** The weights follow the rough shares of registered domains by TLD
//!   (com about 44 %, then net, org, de, the two-level ccTLD suffixes such as co.uk,
//!   com.au and co.jp, io, and a long tail), so the Public Suffix List walk sees one-,
//!   two- and three-label suffixes in realistic proportions. About 5 % are under
//!   private-section suffixes (blogspot.com, github.io, herokuapp.com, ...), which the
//!   sensor counts by default as Packetbeat does, so `blog.blogspot.com` is a domain
//!   of its own; a few are under wildcard rules (`*.ck`, `*.np`); 0.5 % are under TLDs
//!   the list does not have (`lan`, `corp`: what leaks from office networks), which the
//!   list's default rule handles.
//! - **Labels.** A made-up label is 0 to 4 random consonant-vowel syllables followed by
//!   three more that spell the domain's index in base 80: lower-case letters that look
//!   like words, 6 to 14 characters (the length of real second-level labels), and
//!   distinct by construction (syllables have a fixed width, so the last three decide).
//! - **1 to 5 names per domain** (35 % one, 25 % two, 18 % three, 12 % four, 10 % five;
//!   the well-known domains five): most registered domains a resolver sees are asked
//!   for one or two names. The first name is the apex (half the domains) or `www`
//!   (40 %); the others are drawn without repetition from [`HOSTS`], which holds
//!   common service names (`mail`, `api`, `cdn`, `_dmarc`, ...) and multi-label ones
//!   (`assets.cdn`, `eu-west-1.api`, ...), so names have one to four labels below
//!   their domain.
//! - **Zipf popularity, exponent 0.9** ([`ZIPF_EXPONENT`]), over all names: the name of
//!   rank `r` (from 1) is asked with weight `r^-0.9`, drawn by inverse CDF (a binary
//!   search in the precomputed cumulative table, seeded). The names of the well-known
//!   domains take the first 80 ranks (shuffled among themselves), the big platforms
//!   being the head of real traffic; the ranks of all other names are a seeded random
//!   shuffle, so popular names are spread over every suffix. The most popular name
//!   then takes about 4.4 % of ordinary queries, and a few thousand names about
//!   two thirds of them, as caching resolvers report.
//! - **5 000 clients** ([`CLIENTS`]), uniformly active: 4 750 IPv4 addresses in
//!   10.20.0.0/16 and 250 (5 %) IPv6 in 2001:db8:5::/64, asking the resolver at
//!   10.20.255.53 or 2001:db8:5::53 from a random source port with a random id, as
//!   stub resolvers do. The issue gives only the count; uniform activity means every
//!   popular domain is asked by more clients than the sensor tracks per domain, as at
//!   a real resolver. 60 % of clients (fixed per client) send EDNS0 (an OPT record
//!   offering 1232 bytes, as systemd-resolved and browsers do; glibc's stub does not).
//! - **Query types**: apex names A 50 %, AAAA 22 %, MX 12 %, TXT 10 %, HTTPS 6 %;
//!   `_dmarc` names TXT; the others A 62 %, AAAA 30 %, HTTPS 8 % (browsers ask A, AAAA
//!   and HTTPS for every host; mail servers MX and TXT of the apex).
//! - **Every query answered**, by a response of a realistic shape and size, fixed per
//!   name: 35 % of names are a CNAME to a CDN (`<hash>.akamaiedge.net`, ...) followed by
//!   one or two addresses; the others carry 1 to 4 A records and, for 55 % of them, one
//!   or two AAAA (the rest answer AAAA with NODATA: no answer, the zone's SOA in the
//!   authority section). HTTPS is answered for CDN names (an alpn record at the target)
//!   and NODATA otherwise; MX with 1 to 3 exchangers; TXT at the apex with 1 to 3
//!   strings of 30 to 250 bytes (SPF, site verification), at `_dmarc` with one policy.
//!   Responses to EDNS0 queries carry an OPT record too. Responses come back after a
//!   cache hit (85 %: 0.05 to 0.8 ms) or a miss (5 to 120 ms); sizes run from about
//!   40 to 800 bytes, mostly 60 to 130 (median about 90).
//! - **2 % tunnel queries** ([`TUNNEL_PER_MILLE`]): names of 40 to 60 random base32
//!   characters (the first 13 encode a counter, so every name is new) in two or three
//!   labels, under one of four tunnel domains, each used by one client with its own
//!   query type (TXT, NULL, CNAME, TXT, weighted 40/25/20/15, the carriers of dnscat2,
//!   iodine and friends), answered after 20 to 150 ms (the resolver must ask the
//!   tunnel's server) with 30 to 300 bytes of encoded data and TTL 0. From 200 000
//!   frames up even the smallest tunnel has about 300 names, over the default
//!   threshold of 200, so all four alert at every benchmark size.
//! - **UDP only, untagged, no PTR**: dnstop counts only UDP (the comparison stays
//!   fair), VLAN tags cost the decoder nothing measurable, and reverse lookups are
//!   whitelisted by default (`in-addr.arpa`, `ip6.arpa`) and would only add skipped
//!   names. Names are lower case: stubs do not randomise case (forwarders using 0x20
//!   are a scenario of their own).
//!
//! The catalogue and the traffic depend only on the seed: the same seed gives the same
//! bytes on every machine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::super::{mix64, rtype, udp_frame, write_pcap, Flow, SplitMix64};
use super::{Traffic, HOUR};
use crate::capture::LinkType;
use crate::Nanos;

/// Registered domains of ordinary traffic (the tunnel domains come on top).
pub const DOMAINS: usize = 50_000;
/// Clients asking the resolver.
pub const CLIENTS: usize = 5_000;
/// How many of the [`CLIENTS`] use IPv6.
pub const IPV6_CLIENTS: usize = 250;
/// Exponent of the names' Zipf popularity.
pub const ZIPF_EXPONENT: f64 = 0.9;
/// Tunnel queries per thousand queries.
pub const TUNNEL_PER_MILLE: u64 = 20;

/// The tunnel domains, each with its query type and its weight among tunnel queries.
pub const TUNNEL_DOMAINS: &[(&str, u16, u64)] = &[
    ("cdn-sync-update.com", rtype::TXT, 40),
    ("x7q-telemetry.net", rtype::NULL, 25),
    ("files-backup.co.uk", rtype::CNAME, 20),
    ("metrics-agent.io", rtype::TXT, 15),
];

/// Public suffixes of the made-up domains, with their weights (in 1/10 000).
pub const SUFFIXES: &[(&str, u32)] = &[
    ("com", 4_400),
    ("net", 700),
    ("org", 550),
    ("de", 400),
    ("co.uk", 350),
    ("io", 250),
    ("com.au", 200),
    ("co.jp", 200),
    ("fr", 180),
    ("ru", 180),
    ("com.br", 150),
    ("nl", 130),
    ("it", 100),
    ("co.in", 100),
    ("ca", 100),
    ("us", 80),
    ("pl", 80),
    ("info", 80),
    ("xyz", 70),
    ("es", 60),
    ("app", 60),
    ("com.cn", 60),
    ("eu", 50),
    ("ch", 50),
    ("se", 50),
    ("dev", 50),
    ("co", 50),
    ("me", 50),
    ("org.uk", 40),
    ("com.tr", 40),
    ("com.mx", 40),
    ("tv", 30),
    ("co.kr", 30),
    ("co.nz", 30),
    ("co.za", 30),
    ("ne.jp", 20),
    // Wildcard rules: `*.ck`, `*.np`.
    ("co.ck", 5),
    ("com.np", 5),
    // The list's private section.
    ("blogspot.com", 120),
    ("github.io", 120),
    ("herokuapp.com", 50),
    ("azurewebsites.net", 50),
    ("netlify.app", 30),
    ("pages.dev", 30),
    ("appspot.com", 30),
    ("vercel.app", 30),
    ("web.app", 20),
    // Not in the list: its default rule.
    ("lan", 30),
    ("corp", 20),
];

/// Real domains at the head of the popularity table (each with five names).
pub const WELL_KNOWN: &[&str] = &[
    "google.com",
    "youtube.com",
    "facebook.com",
    "microsoft.com",
    "apple.com",
    "icloud.com",
    "amazon.com",
    "amazonaws.com",
    "netflix.com",
    "wikipedia.org",
    "bbc.co.uk",
    "yahoo.co.jp",
    "whatsapp.net",
    "instagram.com",
    "windowsupdate.com",
    "github.com",
];

/// A registered domain that only an exception rule makes one.
const EXCEPTION_DOMAIN: &str = "city.kawasaki.jp";

/// Host parts of names below their registered domain (the apex is the empty one).
pub const HOSTS: &[&str] = &[
    "mail",
    "api",
    "cdn",
    "static",
    "img",
    "m",
    "login",
    "app",
    "smtp",
    "autodiscover",
    "ns1",
    "blog",
    "shop",
    "_dmarc",
    "assets.cdn",
    "eu-west-1.api",
    "img.static",
    "push.notify",
    "a1.media",
    "prod.auth",
    "sync.edge",
    "v2.api.edge",
];

/// Shares (in %) of domains with 1, 2, 3, 4 and 5 names.
const NAMES_PER_DOMAIN: [u64; 5] = [35, 25, 18, 12, 10];

/// CDN zones that CNAME answers point into.
const CDNS: &[&str] = &[
    "akamaiedge.net",
    "edgekey.net",
    "cloudfront.net",
    "fastly.net",
    "azureedge.net",
    "cdn.cloudflare.net",
];

const SYLLABLE_CONSONANTS: &[u8; 16] = b"bcdfghjklmnprstv";
const SYLLABLE_VOWELS: &[u8; 5] = b"aeiou";
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The resolver the clients ask.
const RESOLVER_V4: Ipv4Addr = Ipv4Addr::new(10, 20, 255, 53);
const RESOLVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, 0x53);

/// How one name is answered, fixed when the catalogue is built.
#[derive(Clone, Copy, Debug)]
struct Profile {
    /// A CNAME into this CDN (index into [`CDNS`]), then addresses at the target.
    cdn: Option<usize>,
    /// A records (1..=4) of a name without CDN.
    v4: u8,
    /// AAAA records (0..=2) of a name without CDN; 0 answers AAAA with NODATA.
    v6: u8,
    /// The CNAME target's host label (`e<hex>`) in the CDN's zone.
    edge: u32,
}

/// One name of the catalogue.
#[derive(Clone, Debug)]
struct Entry {
    name: String,
    /// Length of the registered domain at the end of `name`.
    domain_len: u8,
    apex: bool,
    dmarc: bool,
    profile: Profile,
}

/// The resolver-shaped traffic generator: the catalogue of domains and names, and the
/// size and seed of the traffic (see the [module documentation](self) for every
/// choice).
pub struct ResolverMix {
    domains: Vec<String>,
    /// Names by popularity rank (0 the most popular).
    names: Vec<Entry>,
    /// `cumulative[r]`: the sum of the weights of ranks `0..=r`.
    cumulative: Vec<f64>,
    queries: u64,
    start: Nanos,
    seed: u64,
}

impl ResolverMix {
    /// The generator of `frames` frames (rounded down to an even number, at least 2:
    /// every query has its response) over one hour from `start`, seeded with `seed`.
    pub fn new(frames: u64, start: Nanos, seed: u64) -> Self {
        let mut rng = SplitMix64::new(mix64(seed ^ 0xca7a_109e));
        let mut domains: Vec<String> = WELL_KNOWN.iter().map(|d| d.to_string()).collect();
        domains.push(EXCEPTION_DOMAIN.to_string());
        let made_up = DOMAINS - domains.len();
        let total_weight: u64 = SUFFIXES.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut counts: Vec<usize> = SUFFIXES
            .iter()
            .map(|(_, w)| (made_up as u64 * u64::from(*w) / total_weight) as usize)
            .collect();
        counts[0] += made_up - counts.iter().sum::<usize>();
        let mut index = 0u64;
        for ((suffix, _), count) in SUFFIXES.iter().zip(counts) {
            for _ in 0..count {
                domains.push(format!("{}.{suffix}", made_up_label(index, &mut rng)));
                index += 1;
            }
        }

        let mut head = Vec::new();
        let mut tail = Vec::new();
        for (d, domain) in domains.iter().enumerate() {
            let count = if d < WELL_KNOWN.len() {
                5
            } else {
                1 + pick_weighted(&NAMES_PER_DOMAIN, &mut rng)
            };
            for host in pick_hosts(count, &mut rng) {
                let name = if host.is_empty() {
                    domain.clone()
                } else {
                    format!("{host}.{domain}")
                };
                let profile = Profile {
                    cdn: (rng.below(100) < 35).then(|| rng.below(CDNS.len() as u64) as usize),
                    v4: 1 + pick_weighted(&[50, 25, 15, 10], &mut rng) as u8,
                    v6: if rng.below(100) < 55 {
                        1 + rng.below(2) as u8
                    } else {
                        0
                    },
                    edge: rng.below(1 << 24) as u32,
                };
                let entry = Entry {
                    name,
                    domain_len: domain.len() as u8,
                    apex: host.is_empty(),
                    dmarc: host == "_dmarc",
                    profile,
                };
                if d < WELL_KNOWN.len() {
                    head.push(entry);
                } else {
                    tail.push(entry);
                }
            }
        }
        shuffle(&mut head, &mut rng);
        shuffle(&mut tail, &mut rng);
        let mut names = head;
        names.extend(tail);
        let mut sum = 0.0;
        let cumulative = (1..=names.len())
            .map(|r| {
                sum += (r as f64).powf(-ZIPF_EXPONENT);
                sum
            })
            .collect();
        ResolverMix {
            domains,
            names,
            cumulative,
            queries: (frames / 2).max(1),
            start,
            seed,
        }
    }

    /// Frames the traffic holds: a query and its response for each query.
    pub fn frame_count(&self) -> u64 {
        2 * self.queries
    }

    /// The registered domains of ordinary traffic ([`DOMAINS`] of them).
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.iter().map(String::as_str)
    }

    /// The names of ordinary traffic, most popular first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|e| e.name.as_str())
    }

    /// The share of ordinary queries that the name of popularity rank `rank` (0 the
    /// most popular) is expected to take.
    pub fn expected_share(&self, rank: usize) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        ((rank + 1) as f64).powf(-ZIPF_EXPONENT) / total
    }

    /// Client number `c` (below [`CLIENTS`]): the last [`IPV6_CLIENTS`] use IPv6.
    pub fn client(c: usize) -> IpAddr {
        if c < CLIENTS - IPV6_CLIENTS {
            IpAddr::V4(Ipv4Addr::new(10, 20, (c / 250) as u8, (c % 250) as u8 + 1))
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 1, c as u16))
        }
    }

    /// The frames in time order, built as they are consumed.
    pub fn frames(&self) -> ResolverFrames<'_> {
        ResolverFrames {
            mix: self,
            rng: SplitMix64::new(mix64(self.seed ^ 0x007a_ff1c)),
            next: 0,
            tunnel_seq: 0,
            query: None,
            responses: BinaryHeap::new(),
        }
    }

    /// Writes the frames to a classic pcap of Ethernet frames at `path`, streaming;
    /// returns the number of frames written.
    pub fn write_pcap(&self, path: &Path) -> io::Result<usize> {
        write_pcap(path, LinkType::Ethernet, self.frames())
    }

    /// The rank drawn for a uniform `u` in `0..1`.
    fn rank_of(&self, u: f64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = u * total;
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(self.names.len() - 1)
    }
}

/// The traffic of `frames` frames (see [`ResolverMix`]) collected in memory.
pub fn resolver_mix(frames: u64, start: Nanos, seed: u64) -> Traffic {
    let mut traffic = Traffic::new();
    for (ts, frame) in ResolverMix::new(frames, start, seed).frames() {
        traffic.push(ts, frame);
    }
    traffic
}

/// The frames of a [`ResolverMix`] in time order (from [`ResolverMix::frames`]).
pub struct ResolverFrames<'a> {
    mix: &'a ResolverMix,
    rng: SplitMix64,
    /// Index of the next query to build.
    next: u64,
    tunnel_seq: u64,
    /// The built query not yet returned.
    query: Option<(Nanos, Vec<u8>)>,
    /// Responses not yet returned, by time, then query index.
    responses: BinaryHeap<Reverse<(Nanos, u64, Vec<u8>)>>,
}

impl Iterator for ResolverFrames<'_> {
    type Item = (Nanos, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.query.is_none() && self.next < self.mix.queries {
            let (query, response) = self.exchange(self.next);
            self.responses
                .push(Reverse((response.0, self.next, response.1)));
            self.query = Some(query);
            self.next += 1;
        }
        // A response is due before the query when it was sent no later; a response
        // always comes after its own query, and later queries come later still.
        let response_first = match (&self.query, self.responses.peek()) {
            (Some((q, _)), Some(Reverse((r, _, _)))) => r <= q,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if response_first {
            self.responses.pop().map(|Reverse((ts, _, f))| (ts, f))
        } else {
            self.query.take()
        }
    }
}

impl ResolverFrames<'_> {
    /// Query `i` and its response, with their times.
    fn exchange(&mut self, i: u64) -> ((Nanos, Vec<u8>), (Nanos, Vec<u8>)) {
        let mix = self.mix;
        let rng = &mut self.rng;
        let n = u128::from(mix.queries);
        let at = |k: u64| mix.start + (u128::from(k) * u128::from(HOUR) / n) as Nanos;
        let (from, to) = (at(i), at(i + 1));
        let ts = from + rng.below(to - from);
        let id = rng.next_u64() as u16;
        let sport = 1024 + rng.below(65_536 - 1024) as u16;

        let (client, name, qtype, response_body, latency);
        if rng.below(1000) < TUNNEL_PER_MILLE {
            let weights: Vec<u64> = TUNNEL_DOMAINS.iter().map(|t| t.2).collect();
            let t = pick_weighted(&weights, rng) as usize;
            let (domain, tunnel_qtype, _) = TUNNEL_DOMAINS[t];
            client = 101 + 1000 * t;
            name = tunnel_label_name(self.tunnel_seq, domain, rng);
            self.tunnel_seq += 1;
            qtype = tunnel_qtype;
            latency = 20_000_000 + rng.below(130_000_000);
            response_body = Answer::Tunnel {
                domain_len: domain.len(),
            };
        } else {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let entry = &mix.names[mix.rank_of(u)];
            client = rng.below(CLIENTS as u64) as usize;
            name = entry.name.clone();
            qtype = if entry.dmarc {
                rtype::TXT
            } else if entry.apex {
                [rtype::A, rtype::AAAA, rtype::MX, rtype::TXT, HTTPS]
                    [pick_weighted(&[50, 22, 12, 10, 6], rng) as usize]
            } else {
                [rtype::A, rtype::AAAA, HTTPS][pick_weighted(&[62, 30, 8], rng) as usize]
            };
            latency = if rng.below(100) < 85 {
                50_000 + rng.below(750_000)
            } else {
                5_000_000 + rng.below(115_000_000)
            };
            response_body = Answer::Ordinary(entry);
        }
        let edns = mix64(mix.seed ^ client as u64) % 10 < 6;
        let query = message::query(id, name.as_bytes(), qtype, edns);
        let response = message::response(id, &name, qtype, edns, response_body, rng);
        let addr = ResolverMix::client(client);
        let resolver = match addr {
            IpAddr::V4(_) => IpAddr::V4(RESOLVER_V4),
            IpAddr::V6(_) => IpAddr::V6(RESOLVER_V6),
        };
        let flow = Flow::to_dns(addr, sport, resolver);
        (
            (ts, udp_frame(&flow, &query)),
            (ts + latency, udp_frame(&flow.reply(), &response)),
        )
    }
}

/// Record type HTTPS (RFC 9460).
const HTTPS: u16 = 65;

/// What a response answers with.
enum Answer<'a> {
    Ordinary(&'a Entry),
    /// A tunnel's data, the tunnel domain being the last `domain_len` bytes of the name.
    Tunnel {
        domain_len: usize,
    },
}

/// The DNS messages of the mix: queries with an optional OPT record, and responses
/// with several records, compression pointers, NODATA and OPT.
mod message {
    use super::super::super::{encode_name, rtype};
    use super::{Answer, SplitMix64, BASE32, CDNS, HTTPS};

    const CLASS_IN: u16 = 1;
    const OPT: u16 = 41;
    const SOA: u16 = 6;
    /// The UDP payload size offered in OPT records (the DNS flag day 2020 value).
    const EDNS_UDP: u16 = 1232;
    const HEADER: usize = 12;

    fn u16s(m: &mut Vec<u8>, vals: &[u16]) {
        for v in vals {
            m.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn header(m: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
        u16s(m, &[id, flags]);
        u16s(m, &counts);
    }

    fn opt(m: &mut Vec<u8>) {
        m.push(0);
        u16s(m, &[OPT, EDNS_UDP, 0, 0, 0]);
    }

    /// A query with RD set, and an OPT record when `edns`.
    pub(super) fn query(id: u16, name: &[u8], qtype: u16, edns: bool) -> Vec<u8> {
        let mut m = Vec::with_capacity(HEADER + name.len() + 2 + 4 + 11);
        header(&mut m, id, 0x0100, [1, 0, 0, u16::from(edns)]);
        encode_name(&mut m, name);
        u16s(&mut m, &[qtype, CLASS_IN]);
        if edns {
            opt(&mut m);
        }
        m
    }

    /// Starts a resource record: owner (a compression pointer), type, class IN, TTL,
    /// and a length placeholder; returns where the rdata starts.
    fn rr_start(m: &mut Vec<u8>, owner: usize, rtype: u16, ttl: u32) -> usize {
        u16s(m, &[0xc000 | owner as u16, rtype, CLASS_IN]);
        m.extend_from_slice(&ttl.to_be_bytes());
        u16s(m, &[0]);
        m.len()
    }

    /// Writes the rdata length of the record whose rdata started at `start`.
    fn rr_end(m: &mut [u8], start: usize) {
        let len = (m.len() - start) as u16;
        m[start - 2..start].copy_from_slice(&len.to_be_bytes());
    }

    fn random_bytes(m: &mut Vec<u8>, n: usize, rng: &mut SplitMix64) {
        m.extend((0..n).map(|_| rng.next_u64() as u8));
    }

    fn text(m: &mut Vec<u8>, n: usize, rng: &mut SplitMix64) {
        m.push(n as u8);
        m.extend((0..n).map(|_| BASE32[rng.below(32) as usize]));
    }

    /// One record of type `rtype` owned by `owner`: addresses, an alpn HTTPS record.
    fn address(m: &mut Vec<u8>, owner: usize, rtype: u16, ttl: u32, rng: &mut SplitMix64) {
        let start = rr_start(m, owner, rtype, ttl);
        match rtype {
            rtype::A => random_bytes(m, 4, rng),
            rtype::AAAA => {
                m.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                random_bytes(m, 12, rng);
            }
            // SvcPriority 1, target ".", alpn = h2,h3.
            _ => m.extend_from_slice(&[0, 1, 0, 0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3']),
        }
        rr_end(m, start);
    }

    /// The SOA of the zone at `zone` (an offset of its name) in the authority section.
    fn soa(m: &mut Vec<u8>, zone: usize) {
        let start = rr_start(m, zone, SOA, 900);
        m.extend_from_slice(&[3, b'n', b's', b'1']);
        u16s(m, &[0xc000 | zone as u16]);
        m.extend_from_slice(&[10]);
        m.extend_from_slice(b"hostmaster");
        u16s(m, &[0xc000 | zone as u16]);
        for v in [2_026_120_101u32, 7_200, 3_600, 1_209_600, 300] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        rr_end(m, start);
    }

    /// The response to `name`'s query of type `qtype`: NOERROR, the question, then what
    /// `answer` says, and an OPT record when `edns`.
    pub(super) fn response(
        id: u16,
        name: &str,
        qtype: u16,
        edns: bool,
        answer: Answer<'_>,
        rng: &mut SplitMix64,
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(256);
        header(&mut m, id, 0x8180, [1, 0, 0, 0]);
        encode_name(&mut m, name.as_bytes());
        u16s(&mut m, &[qtype, CLASS_IN]);
        let ttl = 1 + rng.below(3600) as u32;
        let (mut answers, mut authority) = (0u16, 0u16);
        match answer {
            Answer::Tunnel { domain_len } => {
                let zone = HEADER + name.len() - domain_len;
                let start = rr_start(&mut m, HEADER, qtype, 0);
                match qtype {
                    rtype::TXT => {
                        let mut left = 100 + rng.below(120) as usize;
                        while left > 0 {
                            let n = left.min(255);
                            text(&mut m, n, rng);
                            left -= n;
                        }
                    }
                    rtype::CNAME => {
                        let n = 30 + rng.below(21) as usize;
                        text(&mut m, n, rng);
                        u16s(&mut m, &[0xc000 | zone as u16]);
                    }
                    _ => random_bytes(&mut m, 100 + rng.below(201) as usize, rng),
                }
                rr_end(&mut m, start);
                answers = 1;
            }
            Answer::Ordinary(entry) => {
                let zone = HEADER + name.len() - usize::from(entry.domain_len);
                let p = entry.profile;
                match (qtype, p.cdn) {
                    (rtype::A | rtype::AAAA | HTTPS, Some(cdn)) => {
                        let start = rr_start(&mut m, HEADER, rtype::CNAME, ttl);
                        let target = format!("e{:06x}.{}", p.edge, CDNS[cdn]);
                        encode_name(&mut m, target.as_bytes());
                        rr_end(&mut m, start);
                        let records = if qtype == HTTPS {
                            1
                        } else {
                            1 + rng.below(2) as u16
                        };
                        for _ in 0..records {
                            address(&mut m, start, qtype, 20, rng);
                        }
                        answers = 1 + records;
                    }
                    (rtype::A, None) => {
                        for _ in 0..p.v4 {
                            address(&mut m, HEADER, rtype::A, ttl, rng);
                        }
                        answers = u16::from(p.v4);
                    }
                    (rtype::AAAA, None) if p.v6 > 0 => {
                        for _ in 0..p.v6 {
                            address(&mut m, HEADER, rtype::AAAA, ttl, rng);
                        }
                        answers = u16::from(p.v6);
                    }
                    (rtype::MX, _) => {
                        answers = 1 + rng.below(3) as u16;
                        for k in 0..answers {
                            let start = rr_start(&mut m, HEADER, rtype::MX, ttl);
                            u16s(&mut m, &[10 * (k + 1)]);
                            m.extend_from_slice(&[3, b'm', b'x', b'1' + k as u8]);
                            u16s(&mut m, &[0xc000 | zone as u16]);
                            rr_end(&mut m, start);
                        }
                    }
                    (rtype::TXT, _) => {
                        answers = if entry.dmarc {
                            1
                        } else {
                            1 + rng.below(3) as u16
                        };
                        for _ in 0..answers {
                            let start = rr_start(&mut m, HEADER, rtype::TXT, ttl);
                            let n = if entry.dmarc {
                                60 + rng.below(60)
                            } else {
                                30 + rng.below(221)
                            };
                            text(&mut m, n as usize, rng);
                            rr_end(&mut m, start);
                        }
                    }
                    _ => {
                        soa(&mut m, zone);
                        authority = 1;
                    }
                }
            }
        }
        if edns {
            opt(&mut m);
        }
        m[6..8].copy_from_slice(&answers.to_be_bytes());
        m[8..10].copy_from_slice(&authority.to_be_bytes());
        m[10..12].copy_from_slice(&u16::from(edns).to_be_bytes());
        m
    }
}

/// A tunnel name: 40 to 60 base32 characters (the first 13 a bijection of `seq`, so
/// every name is new) in two or three labels, then `domain`.
fn tunnel_label_name(seq: u64, domain: &str, rng: &mut SplitMix64) -> String {
    let unique = mix64(seq);
    let len = 40 + rng.below(21) as usize;
    let data: Vec<u8> = (0..len)
        .map(|i| {
            if i < 13 {
                BASE32[((unique >> (i * 5)) & 31) as usize]
            } else {
                BASE32[rng.below(32) as usize]
            }
        })
        .collect();
    let labels = 2 + rng.below(2) as usize;
    let mut name = String::with_capacity(len + labels + domain.len());
    let mut from = 0;
    for k in 0..labels {
        let to = len * (k + 1) / labels;
        name.extend(data[from..to].iter().map(|&b| b as char));
        name.push('.');
        from = to;
    }
    name.push_str(domain);
    name
}

/// A made-up second-level label: 0 to 4 random syllables, then three spelling `index`
/// in base 80 (distinct for distinct indexes below 512 000).
fn made_up_label(index: u64, rng: &mut SplitMix64) -> String {
    let syllable = |s: u64| {
        [
            SYLLABLE_CONSONANTS[(s / 5) as usize] as char,
            SYLLABLE_VOWELS[(s % 5) as usize] as char,
        ]
    };
    let mut label = String::with_capacity(14);
    for _ in 0..rng.below(5) {
        label.extend(syllable(rng.below(80)));
    }
    let mut rest = index;
    for _ in 0..3 {
        label.extend(syllable(rest % 80));
        rest /= 80;
    }
    label
}

/// `count` distinct host parts: first the apex (half the time), `www` (40 %) or another
/// host, then others from [`HOSTS`].
fn pick_hosts(count: u64, rng: &mut SplitMix64) -> Vec<&'static str> {
    let mut pool: Vec<&'static str> = vec!["", "www"];
    pool.extend(HOSTS);
    let first = match rng.below(10) {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2 + rng.below(HOSTS.len() as u64) as usize,
    };
    let mut hosts = vec![pool.swap_remove(first)];
    while (hosts.len() as u64) < count {
        let k = rng.below(pool.len() as u64) as usize;
        hosts.push(pool.swap_remove(k));
    }
    hosts
}

/// An index into `weights` drawn with those weights.
fn pick_weighted(weights: &[u64], rng: &mut SplitMix64) -> u64 {
    let mut r = rng.below(weights.iter().sum());
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i as u64;
        }
        r -= w;
    }
    weights.len() as u64 - 1
}

/// A seeded Fisher-Yates shuffle.
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests;
