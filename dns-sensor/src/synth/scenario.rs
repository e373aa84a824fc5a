//! Named traffic scenarios with known answers, built from the [`synth`](super) blocks:
//! ordinary traffic, tunnels of every shape the sensor must catch, and the near misses
//! it must stay quiet on. Tests replay them and compare the alerts with the figures the
//! builders record; `cargo xtask gen` writes them to files; the benchmarks use
//! [`resolver_mix`] (traffic shaped like a real resolver's, the default) and [`mix`].

pub mod busy;
pub mod resolver;

pub use resolver::{resolver_mix, ResolverMix};

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::{
    hostile, iodine_name, ipv4_udp_fragments, query, randomize_case, response_sized, rtype,
    tcp_stream, tunnel_name, udp_frame, Flow, SplitMix64, TcpFlow, Vlan,
};
use crate::capture::LinkType;
use crate::{Nanos, NANOS_PER_SEC};

/// One second, one minute and one hour in [`Nanos`].
pub const SECOND: Nanos = NANOS_PER_SEC;
/// One minute.
pub const MINUTE: Nanos = 60 * SECOND;
/// One hour.
pub const HOUR: Nanos = 60 * MINUTE;

/// Where scenarios start by default: 2026-01-05 00:00:00 UTC, on every slot boundary.
pub const EPOCH: Nanos = 1_767_571_200 * NANOS_PER_SEC;

/// What the sensor should report for one domain, recorded while building the traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Queries sent.
    pub requests: u64,
    /// Distinct names among them (ASCII case-insensitive).
    pub unique: u64,
    /// Sum of query message sizes.
    pub bytes_in: u64,
    /// Sum of response message sizes.
    pub bytes_out: u64,
}

/// Frames with their capture times, in any order until [`Traffic::into_sorted`].
#[derive(Default)]
pub struct Traffic {
    frames: Vec<(Nanos, Vec<u8>)>,
}

impl Traffic {
    /// No frames.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame.
    pub fn push(&mut self, ts: Nanos, frame: Vec<u8>) {
        self.frames.push((ts, frame));
    }

    /// Adds every frame of `other`.
    pub fn extend(&mut self, other: Traffic) {
        self.frames.extend(other.frames);
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames in time order (stable: frames with equal times keep their order).
    pub fn into_sorted(mut self) -> Vec<(Nanos, Vec<u8>)> {
        self.frames.sort_by_key(|(ts, _)| *ts);
        self.frames
    }

    /// Borrows sorted frames (from [`into_sorted`](Self::into_sorted)) as the pipeline's
    /// Ethernet [`Frame`](crate::capture::Frame)s, to feed it from memory.
    pub fn frames_of(sorted: &[(Nanos, Vec<u8>)]) -> Vec<crate::capture::Frame<'_>> {
        sorted
            .iter()
            .map(|(ts, data)| crate::capture::Frame {
                ts: *ts,
                link: LinkType::Ethernet,
                data,
            })
            .collect()
    }

    /// Writes the frames in time order to a classic pcap file of Ethernet frames.
    pub fn write_pcap(self, path: &Path) -> io::Result<usize> {
        super::write_pcap(path, LinkType::Ethernet, self.into_sorted())
    }
}

/// How the queries of a [`Tunnel`] travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// One UDP datagram each way.
    Udp,
    /// One TCP connection each way, messages split across segments and packed together.
    Tcp,
    /// UDP, with every response cut into IPv4 fragments of at most 200 bytes.
    FragmentedUdp,
}

/// A tunnel: one client sending `names` distinct queries (each sent `repeats` times)
/// under `domain`, spread evenly over `duration` from `start`, each answered.
#[derive(Clone, Debug)]
pub struct Tunnel {
    /// Registered domain the names are under (the tunnel's zone may be deeper).
    pub domain: String,
    /// Zone the names are built under, `domain` or a name below it.
    pub zone: String,
    /// Distinct names.
    pub names: u64,
    /// Times each name is queried (retransmissions, resolvers asking twice).
    pub repeats: u64,
    /// First query time.
    pub start: Nanos,
    /// Time over which the queries spread.
    pub duration: Nanos,
    /// Query type.
    pub qtype: u16,
    /// Size of each response message.
    pub response_len: usize,
    /// Client and server flow (addresses, ports, VLAN tags).
    pub flow: Flow,
    /// How messages travel.
    pub carrier: Carrier,
    /// Names with raw bytes above 0x7F, as iodine's Base128 encoding makes them.
    pub binary_names: bool,
    /// First name's sequence number (distinct tunnels should not share names).
    pub first_seq: u64,
    /// Whether the server answers (a flood against a victim's zone goes unanswered).
    pub answered: bool,
}

impl Tunnel {
    /// A UDP TXT tunnel of `names` names under `zone` (registered domain `domain`) from
    /// client 10.1.0.66 to server 192.0.2.53, over `duration` from `start`.
    pub fn new(domain: &str, names: u64, start: Nanos, duration: Nanos) -> Self {
        Self {
            domain: domain.to_string(),
            zone: domain.to_string(),
            names,
            repeats: 1,
            start,
            duration,
            qtype: rtype::TXT,
            response_len: 180,
            flow: Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53)),
            carrier: Carrier::Udp,
            binary_names: false,
            first_seq: 0,
            answered: true,
        }
    }

    /// The name for sequence number `seq`.
    pub fn name(&self, seq: u64) -> Vec<u8> {
        if self.binary_names {
            iodine_name(self.first_seq + seq, &self.zone)
        } else {
            tunnel_name(self.first_seq + seq, &self.zone).into_bytes()
        }
    }

    /// The tunnel's frames and the figures the sensor should report for its domain.
    pub fn build(&self) -> (Traffic, Figures) {
        let mut traffic = Traffic::new();
        let mut figures = Figures::default();
        let total = self.names * self.repeats;
        let step = if total > 1 {
            self.duration / (total - 1)
        } else {
            0
        };
        let mut client = TcpFlow::new(self.flow, 1_000, 9_000);
        let mut server = TcpFlow::new(self.flow.reply(), 9_000, 1_000);
        let mut pending: Vec<(Nanos, Vec<u8>, Vec<u8>)> = Vec::new();
        for i in 0..total {
            let seq = i % self.names;
            let ts = self.start + i * step;
            let name = self.name(seq);
            let id = (i & 0xffff) as u16;
            let q = query(id, &name, self.qtype);
            let r = response_sized(id, &name, self.qtype, self.response_len);
            figures.requests += 1;
            figures.bytes_in += q.len() as u64;
            if !self.answered {
                traffic.push(ts, udp_frame(&self.flow, &q));
                continue;
            }
            figures.bytes_out += r.len() as u64;
            match self.carrier {
                Carrier::Udp => {
                    traffic.push(ts, udp_frame(&self.flow, &q));
                    traffic.push(ts + 20_000_000, udp_frame(&self.flow.reply(), &r));
                }
                Carrier::FragmentedUdp => {
                    traffic.push(ts, udp_frame(&self.flow, &q));
                    let fragments = ipv4_udp_fragments(&self.flow.reply(), &r, id, 200);
                    for (k, f) in fragments.into_iter().enumerate() {
                        traffic.push(ts + 20_000_000 + k as Nanos * 1_000, f);
                    }
                }
                Carrier::Tcp => {
                    pending.push((ts, q, r));
                    // Three exchanges at a time share segments: the second query is cut
                    // across two segments and the third packed with its tail.
                    if pending.len() == 3 || i + 1 == total {
                        self.push_tcp_batch(&mut traffic, &mut client, &mut server, &pending);
                        pending.clear();
                    }
                }
            }
        }
        figures.unique = self.names.min(total);
        (traffic, figures)
    }

    fn push_tcp_batch(
        &self,
        traffic: &mut Traffic,
        client: &mut TcpFlow,
        server: &mut TcpFlow,
        batch: &[(Nanos, Vec<u8>, Vec<u8>)],
    ) {
        let queries: Vec<&[u8]> = batch.iter().map(|(_, q, _)| q.as_slice()).collect();
        let responses: Vec<&[u8]> = batch.iter().map(|(_, _, r)| r.as_slice()).collect();
        let ts = batch[0].0;
        for (stream, flow, at) in [
            (tcp_stream(&queries), &mut *client, ts),
            (tcp_stream(&responses), &mut *server, ts + 20_000_000),
        ] {
            let first = 2 + batch.first().map_or(0, |(_, q, _)| q.len());
            let cuts: Vec<usize> = if batch.len() >= 2 {
                vec![first + 7]
            } else {
                vec![stream.len() / 2]
            };
            for (k, segment) in flow.segments(&stream, &cuts).into_iter().enumerate() {
                traffic.push(at + k as Nanos * 1_000, segment);
            }
        }
    }
}

/// Ordinary traffic: `clients` clients asking for popular names with a skewed
/// (Zipf-like) popularity, `per_second` queries a second for `duration`, every query
/// answered. No domain gets anywhere near 200 names.
pub fn background(
    start: Nanos,
    duration: Nanos,
    per_second: u64,
    clients: u8,
    seed: u64,
) -> Traffic {
    const DOMAINS: &[&str] = &[
        "example.com",
        "wikipedia.org",
        "github.com",
        "debian.org",
        "mozilla.org",
        "bbc.co.uk",
        "example.net",
        "rust-lang.org",
        "cloudflare.com",
        "microsoft.com",
        "office.com",
        "slack.com",
        "zoom.us",
        "ubuntu.com",
        "python.org",
        "npmjs.com",
        "crates.io",
        "stackoverflow.com",
        "gov.uk",
        "nhs.uk",
        "example.co.uk",
        "lemonde.fr",
        "spiegel.de",
        "kernel.org",
        "gnu.org",
        "sourceforge.net",
        "openstreetmap.org",
        "letsencrypt.org",
        "digicert.com",
        "twitter.com",
    ];
    const HOSTS: &[&str] = &[
        "www", "api", "cdn", "static", "mail", "img", "login", "assets", "m", "status",
    ];
    let mut rng = SplitMix64::new(seed);
    let mut traffic = Traffic::new();
    let total = duration / SECOND * per_second;
    let step = duration.checked_div(total).unwrap_or(0);
    for i in 0..total {
        // Rank r is picked with weight about 1/(r+1): the head dominates, the tail shows up.
        let rank =
            (DOMAINS.len() as f64).powf(rng.below(1 << 20) as f64 / (1 << 20) as f64) as usize - 1;
        let domain = DOMAINS[rank.min(DOMAINS.len() - 1)];
        let host = HOSTS[rng.below(HOSTS.len() as u64) as usize];
        let name = format!("{host}.{domain}");
        let client = v4(10, 1, 1, 1 + (rng.below(u64::from(clients.max(1))) as u8));
        let flow = Flow::to_dns(client, 20_000 + (i % 40_000) as u16, v4(192, 0, 2, 1));
        let qtype = if rng.below(3) == 0 {
            rtype::AAAA
        } else {
            rtype::A
        };
        let id = (i & 0xffff) as u16;
        let ts = start + i * step;
        traffic.push(ts, udp_frame(&flow, &query(id, name.as_bytes(), qtype)));
        let answer_len = if qtype == rtype::A { 4 } else { 16 };
        traffic.push(
            ts + 3_000_000,
            udp_frame(
                &flow.reply(),
                &super::response(id, name.as_bytes(), qtype, qtype, answer_len),
            ),
        );
    }
    traffic
}

/// Queries from one resolver that randomises the case of every name it sends (0x20):
/// `names` names under `domain`, each sent `spellings` times in different case.
pub fn case_randomising_resolver(
    domain: &str,
    names: u64,
    spellings: u64,
    start: Nanos,
) -> (Traffic, Figures) {
    let flow = Flow::to_dns(v4(10, 1, 0, 53), 53_000, v4(192, 0, 2, 53));
    let mut traffic = Traffic::new();
    let mut figures = Figures::default();
    for seq in 0..names {
        let name = tunnel_name(seq, domain).into_bytes();
        for s in 0..spellings {
            let spelled = randomize_case(&name, seq * 1000 + s);
            let q = query((seq * spellings + s) as u16, &spelled, rtype::A);
            figures.requests += 1;
            figures.bytes_in += q.len() as u64;
            traffic.push(start + (seq * spellings + s) * SECOND, udp_frame(&flow, &q));
        }
    }
    figures.unique = names;
    (traffic, figures)
}

/// `domains` different registered domains under `suffix` (e.g. `co.uk`), each queried
/// for `per_domain` names: hundreds of names under the suffix, few under any domain.
pub fn many_domains_under(suffix: &str, domains: u64, per_domain: u64, start: Nanos) -> Traffic {
    let flow = Flow::to_dns(v4(10, 1, 2, 7), 33_000, v4(192, 0, 2, 1));
    let mut traffic = Traffic::new();
    for d in 0..domains {
        for n in 0..per_domain {
            let name = format!("host{n}.shop{d}.{suffix}");
            let i = d * per_domain + n;
            traffic.push(
                start + i * 100_000_000,
                udp_frame(&flow, &query(i as u16, name.as_bytes(), rtype::A)),
            );
        }
    }
    traffic
}

/// Hostile DNS payloads of every kind the synth knows, `rounds` of each, spread from
/// `start`, sent to port 53 over UDP: each must be counted as malformed and skipped.
pub fn hostile_mix(rounds: u64, start: Nanos) -> Traffic {
    let flow = Flow::to_dns(v4(10, 1, 0, 99), 6_666, v4(192, 0, 2, 53));
    let mut traffic = Traffic::new();
    for i in 0..rounds {
        let id = i as u16;
        let payloads = [
            hostile::compression_loop(id),
            hostile::pointer_past_end(id),
            hostile::label_past_end(id),
            hostile::empty(),
            hostile::truncated_header(id),
            hostile::garbage(i, 40 + (i % 200) as usize),
        ];
        for (k, p) in payloads.iter().enumerate() {
            traffic.push(start + i * SECOND + k as Nanos, udp_frame(&flow, p));
        }
    }
    traffic
}

/// A benchmark mix of about `frames` frames over one hour: ordinary traffic from 200
/// clients with a few tunnels (TXT, NULL with binary names, TCP) and an NXDOMAIN
/// random-subdomain flood (UDP queries only, never answered).
pub fn mix(frames: u64, start: Nanos) -> Traffic {
    let tunnel_frames = frames / 20;
    let background_frames = frames - 3 * tunnel_frames;
    let per_second = (background_frames / 2 / 3600).max(1);
    let mut traffic = background(start, HOUR, per_second, 200, 7);
    let mut txt = Tunnel::new("tunnel-txt.example", tunnel_frames / 2, start, HOUR);
    txt.first_seq = 1 << 40;
    let mut null = Tunnel::new("tunnel-null.example", tunnel_frames / 2, start, HOUR);
    null.qtype = rtype::NULL;
    null.binary_names = true;
    null.first_seq = 2 << 40;
    let mut flood = Tunnel::new("victim-flood.example", tunnel_frames, start, HOUR);
    flood.answered = false;
    flood.first_seq = 3 << 40;
    flood.flow = Flow::to_dns(v4(10, 1, 3, 3), 44_000, v4(192, 0, 2, 1));
    for t in [txt, null, flood] {
        traffic.extend(t.build().0);
    }
    traffic
}

/// An IPv4 address.
pub fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An IPv6 address in the documentation range, `2001:db8::n`.
pub fn v6(n: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n))
}

/// A tunnel over IPv6 from `2001:db8::66` to `2001:db8::53`.
pub fn ipv6_flow() -> Flow {
    Flow::to_dns(v6(0x66), 41_000, v6(0x53))
}

/// A flow tagged with one 802.1Q VLAN (`Dot1Q`) or QinQ.
pub fn tagged_flow(vlan: Vlan) -> Flow {
    Flow::to_dns(v4(10, 1, 0, 67), 41_000, v4(192, 0, 2, 53)).with_vlan(vlan)
}
