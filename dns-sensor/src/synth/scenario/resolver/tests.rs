use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hickory_proto::op::Message;

use super::*;
use crate::capture::Frame;
use crate::config::Config;
use crate::decode::{parse_question, Decoder, Name};
use crate::domain::{Classifier, DomainSettings, Verdict};
use crate::synth::scenario::{EPOCH, SECOND};

fn classifier(include_private: bool) -> Classifier {
    Classifier::new(&DomainSettings {
        include_private,
        whitelist: Vec::new(),
    })
    .unwrap()
}

fn registered(c: &Classifier, name: &str) -> String {
    match c.classify(name.as_bytes()) {
        Verdict::Registered(d) => String::from_utf8(d.to_vec()).unwrap(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn the_catalogue_has_50_000_domains_with_1_to_5_names_under_real_suffixes() {
    let mix = ResolverMix::new(2, EPOCH, 1);
    let domains: Vec<&str> = mix.domains().collect();
    assert_eq!(domains.len(), DOMAINS);
    assert_eq!(domains.iter().collect::<HashSet<_>>().len(), DOMAINS);

    // The sensor's own Public Suffix List walk puts every name under its domain, and
    // finds exactly 50 000 registered domains (private section counted).
    let psl = classifier(true);
    let mut per_domain: HashMap<String, usize> = HashMap::new();
    for entry in &mix.names {
        let domain = registered(&psl, &entry.name);
        assert_eq!(domain, entry.name[entry.name.len() - domain.len()..]);
        assert_eq!(
            usize::from(entry.domain_len),
            domain.len(),
            "{}",
            entry.name
        );
        *per_domain.entry(domain).or_default() += 1;
    }
    assert_eq!(per_domain.len(), DOMAINS);
    assert!(domains.iter().all(|d| per_domain.contains_key(*d)));
    assert!(per_domain.values().all(|n| (1..=5).contains(n)));
    let names: HashSet<&str> = mix.names().collect();
    assert_eq!(names.len(), mix.names.len(), "names are distinct");

    // Names per domain follow 35/25/18/12/10 % (the well-known domains have five).
    let mut histogram = [0usize; 5];
    for (d, n) in &per_domain {
        if !WELL_KNOWN.contains(&d.as_str()) {
            histogram[n - 1] += 1;
        }
    }
    let made_up = (DOMAINS - WELL_KNOWN.len()) as f64;
    for (k, &want) in NAMES_PER_DOMAIN.iter().enumerate() {
        let got = 100.0 * histogram[k] as f64 / made_up;
        assert!(
            (got - want as f64).abs() < 1.5,
            "{} names: {got:.1} %",
            k + 1
        );
    }
    let mean = mix.names.len() as f64 / DOMAINS as f64;
    assert!((2.3..2.5).contains(&mean), "{mean} names per domain");

    // Every kind of rule is there: two- and three-label suffixes, wildcards, the
    // exception, the private section and the default rule for unknown TLDs.
    let under = |suffix: &str| {
        domains
            .iter()
            .filter(|d| {
                d.strip_suffix(suffix).is_some_and(|label| {
                    label.ends_with('.') && !label[..label.len() - 1].contains('.')
                })
            })
            .count()
    };
    let com = under("com") as f64 / DOMAINS as f64;
    assert!((0.42..0.46).contains(&com), "com {com}");
    for (suffix, at_least) in [
        ("co.uk", 300),
        ("com.au", 150),
        ("co.jp", 150),
        ("io", 200),
        ("blogspot.com", 100),
        ("github.io", 100),
        ("co.ck", 1),
        ("com.np", 1),
        ("lan", 10),
    ] {
        assert!(under(suffix) >= at_least, "{suffix}: {}", under(suffix));
    }
    assert_eq!(registered(&psl, "www.city.kawasaki.jp"), "city.kawasaki.jp");
    let blog = domains
        .iter()
        .find(|d| d.ends_with(".blogspot.com"))
        .unwrap();
    assert_eq!(registered(&classifier(false), blog), "blogspot.com");

    // The head of the popularity table is the well-known domains' names.
    for entry in &mix.names[..5 * WELL_KNOWN.len()] {
        let domain = &entry.name[entry.name.len() - usize::from(entry.domain_len)..];
        assert!(WELL_KNOWN.contains(&domain), "{}", entry.name);
    }
}

/// One decoded message of the generated traffic.
struct Seen {
    ts: Nanos,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    id: u16,
    is_response: bool,
    qtype: u16,
    name: String,
    message: Vec<u8>,
}

fn decode_all(frames: &[(Nanos, Vec<u8>)]) -> Vec<Seen> {
    let settings = Config::default().settings().unwrap();
    let mut decoder = Decoder::new(settings.decode);
    let mut name = Name::new();
    let mut seen = Vec::with_capacity(frames.len());
    for (ts, data) in frames {
        let frame = Frame {
            ts: *ts,
            link: LinkType::Ethernet,
            data,
        };
        let before = seen.len();
        decoder.decode(&frame, |p| {
            let q = parse_question(p.message, &mut name).expect("the question parses");
            seen.push(Seen {
                ts: p.ts,
                src: p.src,
                dst: p.dst,
                src_port: p.src_port,
                dst_port: p.dst_port,
                id: q.id,
                is_response: q.is_response,
                qtype: q.qtype,
                name: String::from_utf8(name.as_bytes().to_vec()).unwrap(),
                message: p.message.to_vec(),
            });
        });
        assert_eq!(seen.len(), before + 1, "one DNS message per frame");
    }
    seen
}

#[test]
fn traffic_is_time_ordered_every_query_answered_zipf_skewed_with_two_percent_tunnels() {
    let frames = 60_000;
    let mix = ResolverMix::new(frames, EPOCH, 1);
    let traffic = resolver_mix(frames, EPOCH, 1).into_sorted();
    assert_eq!(traffic.len() as u64, frames);
    assert_eq!(mix.frame_count(), frames);
    let seen = decode_all(&traffic);
    assert!(seen.windows(2).all(|w| w[0].ts <= w[1].ts), "time order");
    assert!(seen[0].ts >= EPOCH);
    assert!(seen.last().unwrap().ts < EPOCH + HOUR + SECOND);
    assert!(
        seen.last().unwrap().ts > EPOCH + HOUR - SECOND,
        "spread over the hour"
    );

    // Every query is answered once, later, from the resolver to the query's port.
    let queries: Vec<&Seen> = seen.iter().filter(|s| !s.is_response).collect();
    assert_eq!(queries.len() as u64, frames / 2);
    let mut pending: HashMap<(IpAddr, u16, u16, &str, u16), Vec<Nanos>> = HashMap::new();
    for s in &seen {
        if s.is_response {
            let key = (s.dst, s.dst_port, s.id, s.name.as_str(), s.qtype);
            let sent = pending.get_mut(&key).and_then(Vec::pop);
            let sent = sent.unwrap_or_else(|| panic!("unasked response {}", s.name));
            assert!(sent < s.ts);
            assert_eq!(s.src_port, 53);
        } else {
            assert_eq!(s.dst_port, 53);
            let key = (s.src, s.src_port, s.id, s.name.as_str(), s.qtype);
            pending.entry(key).or_default().push(s.ts);
        }
    }
    assert!(pending.values().all(Vec::is_empty), "every query answered");

    // 2 % of queries are tunnel names: 40-60 base32 characters in 2 or 3 labels under
    // a tunnel domain, every one new.
    let mut tunnel_names = HashSet::new();
    let mut per_tunnel = [0u64; 4];
    for q in &queries {
        let Some(t) = TUNNEL_DOMAINS
            .iter()
            .position(|(d, _, _)| q.name.ends_with(&format!(".{d}")))
        else {
            continue;
        };
        per_tunnel[t] += 1;
        let (domain, qtype, _) = TUNNEL_DOMAINS[t];
        assert_eq!(q.qtype, qtype);
        let data = &q.name[..q.name.len() - domain.len() - 1];
        let labels: Vec<&str> = data.split('.').collect();
        assert!((2..=3).contains(&labels.len()), "{}", q.name);
        let chars: usize = labels.iter().map(|l| l.len()).sum();
        assert!((40..=60).contains(&chars), "{}", q.name);
        assert!(data.bytes().all(|b| b == b'.' || BASE32.contains(&b)));
        assert!(tunnel_names.insert(q.name.clone()), "repeated {}", q.name);
    }
    let tunnel_share = tunnel_names.len() as f64 / queries.len() as f64;
    assert!((0.017..0.023).contains(&tunnel_share), "{tunnel_share}");
    assert!(per_tunnel.iter().all(|&n| n > 50), "{per_tunnel:?}");

    // Zipf 0.9: the most popular name takes its share of ordinary queries, the top
    // 100 theirs, and the most frequent name is rank 0.
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for q in queries.iter().filter(|q| !tunnel_names.contains(&q.name)) {
        *counts.entry(q.name.as_str()).or_default() += 1;
    }
    let ordinary = counts.values().sum::<u64>() as f64;
    let top = mix.names[0].name.as_str();
    let top_share = counts[top] as f64 / ordinary;
    let want = mix.expected_share(0);
    assert!((0.035..0.055).contains(&want), "{want}");
    assert!(
        (top_share / want - 1.0).abs() < 0.12,
        "{top_share} vs {want}"
    );
    assert_eq!(counts.values().max(), Some(&counts[top]));
    let top100: u64 = mix.names[..100]
        .iter()
        .map(|e| counts.get(e.name.as_str()).copied().unwrap_or(0))
        .sum();
    let want100: f64 = (0..100).map(|r| mix.expected_share(r)).sum();
    assert!(
        (top100 as f64 / ordinary / want100 - 1.0).abs() < 0.05,
        "{top100} of {ordinary}, want {want100}"
    );
    // A long tail: thousands of distinct names, most asked once.
    assert!(counts.len() > 10_000, "{}", counts.len());

    // 5 000 clients, uniformly active: nearly all show up in 30 000 queries, 5 % on
    // IPv6, each asking the resolver of its family.
    let clients: HashSet<IpAddr> = queries.iter().map(|q| q.src).collect();
    let expected = CLIENTS as f64 * (1.0 - (-(queries.len() as f64) / CLIENTS as f64).exp());
    assert!(clients.len() <= CLIENTS);
    assert!(
        (clients.len() as f64 - expected).abs() < 40.0,
        "{}",
        clients.len()
    );
    let v6 = queries.iter().filter(|q| q.src.is_ipv6()).count() as f64;
    assert!((0.04..0.06).contains(&(v6 / queries.len() as f64)), "{v6}");
    assert!(queries.iter().all(|q| q.src.is_ipv6() == q.dst.is_ipv6()));
    let resolvers: HashSet<IpAddr> = queries.iter().map(|q| q.dst).collect();
    assert_eq!(resolvers.len(), 2);

    // Query types and response sizes of a resolver: mostly A and AAAA, answers of
    // 50-900 bytes, mostly 60-150, every one well formed for hickory.
    let mut qtypes: HashMap<u16, u64> = HashMap::new();
    for q in &queries {
        *qtypes.entry(q.qtype).or_default() += 1;
    }
    let share = |t: u16| qtypes.get(&t).copied().unwrap_or(0) as f64 / queries.len() as f64;
    assert!((0.5..0.65).contains(&share(rtype::A)), "{qtypes:?}");
    assert!((0.2..0.35).contains(&share(rtype::AAAA)), "{qtypes:?}");
    for t in [HTTPS, rtype::MX, rtype::TXT, rtype::NULL, rtype::CNAME] {
        assert!(share(t) > 0.002, "{t}: {qtypes:?}");
    }
    let mut sizes: Vec<usize> = seen
        .iter()
        .filter(|s| s.is_response)
        .map(|s| s.message.len())
        .collect();
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    assert!((60..=150).contains(&median), "median {median}");
    assert!(sizes[0] >= 40 && *sizes.last().unwrap() <= 900, "{sizes:?}");
    let query_sizes: HashSet<usize> = queries.iter().map(|q| q.message.len()).collect();
    assert!(query_sizes.iter().all(|&n| (17..=120).contains(&n)));
    let mut answered = 0;
    for s in seen.iter().step_by(7) {
        let m = Message::from_vec(&s.message)
            .unwrap_or_else(|e| panic!("{} type {}: {e}", s.name, s.qtype));
        assert_eq!(m.queries.len(), 1);
        if s.is_response {
            answered += usize::from(!m.answers.is_empty());
            assert!(
                !m.answers.is_empty() || !m.authorities.is_empty(),
                "{}",
                s.name
            );
        }
    }
    assert!(answered > 1_000);
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a: Vec<_> = ResolverMix::new(4_000, EPOCH, 7).frames().collect();
    let b: Vec<_> = ResolverMix::new(4_000, EPOCH, 7).frames().collect();
    assert_eq!(a.len(), 4_000);
    assert!(a == b);
    let c: Vec<_> = ResolverMix::new(4_000, EPOCH, 8).frames().collect();
    assert!(a != c);
    // An odd count is rounded down: every query has its response.
    assert_eq!(ResolverMix::new(4_001, EPOCH, 7).frames().count(), 4_000);
    assert_eq!(ResolverMix::new(4_001, EPOCH, 7).frame_count(), 4_000);
}
