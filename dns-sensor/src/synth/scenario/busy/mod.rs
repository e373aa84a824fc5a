//! A busy network with the truth written down: the ground truth for telling tunnels
//! from busy benign services.
//!
//! [`BusyNetwork::build`] puts together hours of a network of a few thousand endpoints
//! behind two resolvers: ordinary browsing, the busy benign services such a network
//! has (each in a module of its own, shaped after the service's public documentation,
//! named where it is built), and tunnels, loud and quiet, from the generated shapes of
//! known tools to the real captures of `../shared/captures/`. Every registered domain
//! that gets more than a handful of names carries a [`Label`]: what it is and whether
//! it is a tunnel, so that a test can score what the sensor says about it.
//!
//! The sensor sits where it sees the endpoints ask the resolvers: the clients of the
//! figures are endpoints, mail relays and servers, never the resolvers.

mod benign;
mod ordinary;
mod tunnels;

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::{Traffic, HOUR};
use crate::synth::{answer, nxdomain, query, rtype, udp_frame, Flow, SplitMix64};
use crate::Nanos;

/// The network's two resolvers; an endpoint always asks the same one.
pub const RESOLVERS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, 53)),
];

/// What a labelled domain's traffic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    /// A service doing its job: what an analyst would whitelist.
    Benign,
    /// Data moving through DNS: what an analyst must see.
    Tunnel,
}

/// One registered domain of the traffic, and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The registered domain, as the sensor names it at its defaults (the Public Suffix
    /// List with its private section).
    pub domain: String,
    /// The kind of service or tool, one word (`dnsbl`, `iodine`, ...).
    pub service: &'static str,
    /// Tunnel or not.
    pub truth: Truth,
}

/// The answer a query gets.
#[derive(Clone, Copy, Debug)]
pub enum Reply<'a> {
    /// NXDOMAIN, no records.
    NxDomain,
    /// NOERROR with no answer (the name exists, not with this type).
    NoData,
    /// NOERROR with these answer records: type and rdata as on the wire.
    Records(&'a [(u16, &'a [u8])]),
    /// No response at all (lost, or the server does not answer).
    Unanswered,
}

/// Traffic under construction: the clock, the endpoints, the frames and the labels.
/// Each service adds its exchanges through [`ask`](Self::ask) and names its domains
/// with [`label`](Self::label).
pub struct Network {
    rng: SplitMix64,
    start: Nanos,
    duration: Nanos,
    endpoints: u32,
    traffic: Traffic,
    labels: Vec<Label>,
    queries: u64,
}

impl Network {
    /// An empty network of `endpoints` endpoints (at most 62 500) over `duration` from
    /// `start`; `seed` decides every choice.
    pub fn new(seed: u64, start: Nanos, duration: Nanos, endpoints: u32) -> Self {
        assert!(
            (1..=62_500).contains(&endpoints),
            "1 to 62 500 endpoints, not {endpoints}"
        );
        Self {
            rng: SplitMix64::new(seed),
            start,
            duration,
            endpoints,
            traffic: Traffic::new(),
            labels: Vec::new(),
            queries: 0,
        }
    }

    /// When the traffic starts.
    pub fn start(&self) -> Nanos {
        self.start
    }

    /// How long it lasts.
    pub fn duration(&self) -> Nanos {
        self.duration
    }

    /// Hours of traffic, at least one: the unit services scale their volumes by.
    pub fn hours(&self) -> u64 {
        (self.duration / HOUR).max(1)
    }

    /// The choices: every service draws from the one generator, in a fixed order.
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    /// Endpoints on the network.
    pub fn endpoints(&self) -> u32 {
        self.endpoints
    }

    /// Endpoint `i` (modulo their number): `10.20.0.1` onwards, 250 to a /24.
    pub fn endpoint(&self, i: u32) -> IpAddr {
        let i = i % self.endpoints;
        IpAddr::V4(Ipv4Addr::new(10, 20, (i / 250) as u8, (i % 250 + 1) as u8))
    }

    /// An endpoint drawn at random.
    pub fn any_endpoint(&mut self) -> IpAddr {
        let i = self.rng.below(u64::from(self.endpoints)) as u32;
        self.endpoint(i)
    }

    /// A server of the data centre: `10.1.<rack>.<n>` (mail relays, domain controllers,
    /// scanners; never an endpoint).
    pub fn server(rack: u8, n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 1, rack, n))
    }

    /// How many times `per_hour` events an endpoint an hour happen over the network
    /// and the window.
    pub fn endpoint_events(&self, per_hour: f64) -> u64 {
        (per_hour * f64::from(self.endpoints) * self.hours() as f64).round() as u64
    }

    /// A rank in `0..n` (`n` at least 1), log-uniform: the first few take most draws,
    /// as popular names, files and tenants do.
    pub fn skewed(&mut self, n: u64) -> u64 {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u) - 1.0) as u64).min(n.saturating_sub(1))
    }

    /// A time drawn uniformly in the window.
    pub fn any_time(&mut self) -> Nanos {
        self.start + self.rng.below(self.duration)
    }

    /// A time drawn uniformly in `[from, from + within)`, clipped to the window.
    pub fn time_near(&mut self, from: Nanos, within: Nanos) -> Nanos {
        (from + self.rng.below(within.max(1))).min(self.start + self.duration - 1)
    }

    /// Names `domain` as `service`'s, tunnel or not. A domain labelled twice keeps its
    /// first label.
    pub fn label(&mut self, domain: &str, service: &'static str, truth: Truth) {
        if !self.labels.iter().any(|l| l.domain == domain) {
            self.labels.push(Label {
                domain: domain.to_owned(),
                service,
                truth,
            });
        }
    }

    /// One exchange: `client` asks its resolver for `name` of type `qtype` at `ts`, and
    /// gets `reply` a few milliseconds later (a cached answer mostly, a recursion now
    /// and then).
    pub fn ask(&mut self, ts: Nanos, client: IpAddr, name: &[u8], qtype: u16, reply: Reply<'_>) {
        let resolver = RESOLVERS[(crate::synth::mix64(client_bits(client)) & 1) as usize];
        let sport = 1024 + self.rng.below(64_512) as u16;
        let flow = Flow::to_dns(client, sport, resolver);
        let id = self.rng.next_u64() as u16;
        self.queries += 1;
        self.traffic
            .push(ts, udp_frame(&flow, &query(id, name, qtype)));
        let delay = if self.rng.below(4) == 0 {
            15_000_000 + self.rng.below(60_000_000)
        } else {
            300_000 + self.rng.below(1_500_000)
        };
        let message = match reply {
            Reply::NxDomain => nxdomain(id, name, qtype),
            Reply::NoData => answer(id, name, qtype, 0, &[]),
            Reply::Records(records) => answer(id, name, qtype, 0, records),
            Reply::Unanswered => return,
        };
        self.traffic
            .push(ts + delay, udp_frame(&flow.reply(), &message));
    }

    /// A dual-stack client's pair: A for `name` at `ts` answered `v4`, then AAAA within
    /// `gap` answered `v6`.
    pub fn ask_both_families(
        &mut self,
        ts: Nanos,
        client: IpAddr,
        name: &str,
        (v4, v6): ([u8; 4], [u8; 16]),
        gap: Nanos,
    ) {
        let a = [(rtype::A, &v4[..])];
        self.ask(ts, client, name.as_bytes(), rtype::A, Reply::Records(&a));
        let at = self.time_near(ts, gap);
        let aaaa = [(rtype::AAAA, &v6[..])];
        self.ask(
            at,
            client,
            name.as_bytes(),
            rtype::AAAA,
            Reply::Records(&aaaa),
        );
    }

    /// Adds a frame as it is (a real capture's, spliced in).
    pub fn push_frame(&mut self, ts: Nanos, frame: Vec<u8>) {
        self.traffic.push(ts, frame);
    }

    /// Queries asked so far.
    pub fn queries(&self) -> u64 {
        self.queries
    }

    /// The frames and the labels.
    pub fn finish(self) -> BusyNetwork {
        BusyNetwork {
            traffic: self.traffic,
            labels: self.labels,
        }
    }
}

fn client_bits(client: IpAddr) -> u64 {
    match client {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a) as u64,
    }
}

/// A busy network's frames and the truth about its domains.
pub struct BusyNetwork {
    /// Every frame, unordered.
    pub traffic: Traffic,
    /// The labelled domains: every busy service and every tunnel.
    pub labels: Vec<Label>,
}

impl BusyNetwork {
    /// `hours` hours of a network of `endpoints` endpoints from `start`, every service
    /// and generated tunnel of this module in it, and the real tunnel captures of
    /// `captures` (the project's `../shared/captures/`) spliced in when given.
    pub fn build(
        seed: u64,
        start: Nanos,
        hours: u64,
        endpoints: u32,
        captures: Option<&Path>,
    ) -> io::Result<Self> {
        let mut net = Network::new(seed, start, hours * HOUR, endpoints);
        ordinary::browsing(&mut net);
        benign::all(&mut net);
        tunnels::generated(&mut net);
        if let Some(dir) = captures {
            tunnels::spliced(&mut net, dir)?;
        }
        Ok(net.finish())
    }

    /// The labels as tab-separated lines (domain, service, `tunnel` or `benign`), with
    /// a header: what `cargo xtask gen busy` writes beside the capture.
    pub fn labels_tsv(&self) -> String {
        let mut out = String::from("domain\tservice\ttruth\n");
        for label in &self.labels {
            let truth = match label.truth {
                Truth::Benign => "benign",
                Truth::Tunnel => "tunnel",
            };
            out.push_str(&format!("{}\t{}\t{truth}\n", label.domain, label.service));
        }
        out
    }

    /// The label of `domain`, if it has one.
    pub fn label(&self, domain: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.domain == domain)
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::EPOCH;

    #[test]
    fn an_endpoint_asks_one_resolver_and_gets_its_reply_after_the_query() {
        let mut net = Network::new(1, EPOCH, HOUR, 10);
        let client = net.endpoint(3);
        net.ask(EPOCH + 5, client, b"www.example.com", 1, Reply::NxDomain);
        net.ask(EPOCH + 9, client, b"www.example.org", 1, Reply::Unanswered);
        let frames = net.finish().traffic.into_sorted();
        let seen = testing::exchanges(&frames);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].client, client);
        assert_eq!(seen[0].rcode, Some(3));
        assert!(seen[0].answered_after.is_some_and(|d| d > 0));
        assert_eq!(seen[1].rcode, None);
        assert_eq!(seen[0].resolver, seen[1].resolver);
    }
}
