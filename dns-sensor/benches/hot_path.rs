//! Micro-benchmarks of each step of the hot path, on the benchmark mix made by the
//! synth generator and on the real iodine capture:
//!
//! ```text
//! frame decode → DNS question (lower-casing) → xxh3 → registered domain → shard update
//!                                           closed slots → slot merge → rule evaluation
//! ```
//!
//! Run with `cargo bench -p dns-sensor --bench hot_path` (add a filter such as `decode`
//! to run one group). Each group reports time per element (frame, message, name, ...),
//! so the figures add up to a per-frame budget; `docs/performance.md` quotes them.
//! Measurement times are short on purpose: the development machines have two shared
//! cores, and criterion's median over its samples absorbs most of the noise.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dns_sensor::capture::{CaptureReader, Frame, LinkType};
use dns_sensor::config::Config;
use dns_sensor::decode::{parse_question, Decoder, Name};
use dns_sensor::detect::{Detector, RuleSettings};
use dns_sensor::domain::VerdictCache;
use dns_sensor::domain::{Classifier, Verdict};
use dns_sensor::pipeline::Settings;
use dns_sensor::sketch::{Shard, SketchSettings};
use dns_sensor::synth::scenario::{mix, EPOCH, MINUTE};
use dns_sensor::synth::{randomize_case, tunnel_name};
use dns_sensor::Nanos;
use xxhash_rust::xxh3::xxh3_64;

/// The sensor binary's allocator, so that allocation costs are what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IODINE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/captures/elastic-iodine-tunnel.pcap"
);

/// Frames of the benchmark mix: ordinary traffic, TXT and NULL tunnels, a flood.
const MIX_FRAMES: u64 = 20_000;

/// One query or response as the worker sees it after decoding.
struct Message {
    bytes: Vec<u8>,
    client: IpAddr,
}

/// What the benches feed on, built once.
struct Inputs {
    settings: Settings,
    mix: Vec<(Nanos, Vec<u8>)>,
    iodine: Vec<(Nanos, LinkType, Vec<u8>)>,
    mix_messages: Vec<Message>,
    iodine_messages: Vec<Message>,
    /// Canonical query names of the mix (lower case).
    mix_names: Vec<Vec<u8>>,
    /// Canonical query names of the iodine capture.
    iodine_names: Vec<Vec<u8>>,
}

fn settings() -> Settings {
    match Config::default().settings() {
        Ok(s) => s,
        Err(e) => panic!("default settings: {e}"),
    }
}

fn frame(data: &[u8], ts: Nanos, link: LinkType) -> Frame<'_> {
    Frame { ts, link, data }
}

fn messages(frames: &[(Nanos, LinkType, &[u8])], settings: &Settings) -> Vec<Message> {
    let mut decoder = Decoder::new(settings.decode.clone());
    let mut out = Vec::new();
    for &(ts, link, data) in frames {
        decoder.decode(&frame(data, ts, link), |p| {
            out.push(Message {
                bytes: p.message.to_vec(),
                client: p.src,
            })
        });
    }
    out
}

fn names(messages: &[Message]) -> Vec<Vec<u8>> {
    let mut name = Name::new();
    messages
        .iter()
        .filter_map(|m| {
            parse_question(&m.bytes, &mut name)
                .ok()
                .map(|_| name.as_bytes().to_vec())
        })
        .collect()
}

impl Inputs {
    fn build() -> Self {
        let settings = settings();
        let mix = mix(MIX_FRAMES, EPOCH).into_sorted();
        let mut iodine = Vec::new();
        let mut reader = match CaptureReader::open(Path::new(IODINE)) {
            Ok(r) => r,
            Err(e) => panic!("{IODINE}: {e}"),
        };
        while let Ok(Some(f)) = reader.next_frame() {
            iodine.push((f.ts, f.link, f.data.to_vec()));
        }
        let mix_views: Vec<_> = mix
            .iter()
            .map(|(ts, d)| (*ts, LinkType::Ethernet, d.as_slice()))
            .collect();
        let iodine_views: Vec<_> = iodine
            .iter()
            .map(|(ts, l, d)| (*ts, *l, d.as_slice()))
            .collect();
        let mix_messages = messages(&mix_views, &settings);
        let iodine_messages = messages(&iodine_views, &settings);
        let mix_names = names(&mix_messages);
        let iodine_names = names(&iodine_messages);
        Self {
            settings,
            mix,
            iodine,
            mix_messages,
            iodine_messages,
            mix_names,
            iodine_names,
        }
    }
}

fn inputs() -> &'static Inputs {
    static INPUTS: std::sync::OnceLock<Inputs> = std::sync::OnceLock::new();
    INPUTS.get_or_init(Inputs::build)
}

/// Frame decode: link, IP, UDP/TCP, reassembly bookkeeping; up to the DNS message.
fn frame_decode(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("frame_decode");
    group.throughput(Throughput::Elements(inputs.mix.len() as u64));
    group.bench_function("mix", |b| {
        let mut decoder = Decoder::new(inputs.settings.decode.clone());
        b.iter(|| {
            let mut bytes = 0usize;
            for (ts, data) in &inputs.mix {
                decoder.decode(&frame(data, *ts, LinkType::Ethernet), |p| {
                    bytes += p.message.len()
                });
            }
            black_box(bytes)
        })
    });
    group.throughput(Throughput::Elements(inputs.iodine.len() as u64));
    group.bench_function("iodine", |b| {
        let mut decoder = Decoder::new(inputs.settings.decode.clone());
        b.iter(|| {
            let mut bytes = 0usize;
            for (ts, link, data) in &inputs.iodine {
                decoder.decode(&frame(data, *ts, *link), |p| bytes += p.message.len());
            }
            black_box(bytes)
        })
    });
    group.finish();
}

/// DNS header and first question, name written in canonical (lower-cased) form.
fn dns_question(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("dns_question");
    for (label, messages) in [
        ("mix", &inputs.mix_messages),
        ("iodine", &inputs.iodine_messages),
    ] {
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function(label, |b| {
            let mut name = Name::new();
            b.iter(|| {
                let mut len = 0usize;
                for m in messages {
                    if parse_question(&m.bytes, &mut name).is_ok() {
                        len += name.as_bytes().len();
                    }
                }
                black_box(len)
            })
        });
        // The same work through hickory-proto: the header and the first question only
        // (not the whole message), the name as hickory builds it.
        group.bench_function(format!("{label}_hickory_header_query"), |b| {
            use hickory_proto::op::{Header, Query};
            use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
            b.iter(|| {
                let mut len = 0usize;
                for m in messages {
                    let mut decoder = BinDecoder::new(&m.bytes);
                    if Header::read(&mut decoder).is_ok() {
                        if let Ok(query) = Query::read(&mut decoder) {
                            len += query.name().len();
                        }
                    }
                }
                black_box(len)
            })
        });
    }
    group.finish();
}

/// Lower-casing and hashing: the same 2 000 tunnel-like queries written in lower case and
/// with 0x20 case randomisation (the difference is the cost of lower-casing inside the
/// question parser), then xxh3-64 of the canonical names.
fn lowercase_and_hash(c: &mut Criterion) {
    let lower: Vec<Vec<u8>> = (0..2000)
        .map(|i| tunnel_name(i, "t.tunnel-bench.example").into_bytes())
        .collect();
    let mixed: Vec<Vec<u8>> = lower
        .iter()
        .enumerate()
        .map(|(i, n)| randomize_case(n, i as u64))
        .collect();
    let as_queries = |names: &[Vec<u8>]| -> Vec<Vec<u8>> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| dns_sensor::synth::query(i as u16, n, 16))
            .collect()
    };
    let lower_queries = as_queries(&lower);
    let mixed_queries = as_queries(&mixed);
    let mut group = c.benchmark_group("lowercase_and_hash");
    group.throughput(Throughput::Elements(lower.len() as u64));
    for (label, queries) in [
        ("question_lower_case", &lower_queries),
        ("question_0x20_case", &mixed_queries),
    ] {
        group.bench_function(label, |b| {
            let mut name = Name::new();
            b.iter(|| {
                let mut acc = 0u64;
                for q in queries {
                    if parse_question(q, &mut name).is_ok() {
                        acc ^= u64::from(name.as_bytes()[0]);
                    }
                }
                black_box(acc)
            })
        });
    }
    let inputs = inputs();
    for (label, names) in [
        ("xxh3_tunnel_names", &lower),
        ("xxh3_mix_names", &inputs.mix_names),
        ("xxh3_iodine_names", &inputs.iodine_names),
    ] {
        group.throughput(Throughput::Elements(names.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for n in names {
                    acc ^= xxh3_64(n);
                }
                black_box(acc)
            })
        });
    }
    group.finish();
}

/// Registered domain (PSL) and whitelist, with the default whitelist.
fn registered_domain(c: &mut Criterion) {
    let inputs = inputs();
    let classifier = match Classifier::new(&inputs.settings.domain) {
        Ok(c) => c,
        Err(e) => panic!("classifier: {e}"),
    };
    let mut group = c.benchmark_group("registered_domain");
    for (label, names) in [("mix", &inputs.mix_names), ("iodine", &inputs.iodine_names)] {
        group.throughput(Throughput::Elements(names.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut len = 0usize;
                for n in names {
                    if let Verdict::Registered(d) = classifier.classify(n) {
                        len += d.len();
                    }
                }
                black_box(len)
            })
        });
    }
    group.throughput(Throughput::Elements(inputs.mix_names.len() as u64));
    group.bench_function("mix_through_verdict_cache", |b| {
        let mut cache = VerdictCache::new();
        b.iter(|| {
            let mut len = 0usize;
            for n in &inputs.mix_names {
                if let Verdict::Registered(d) = cache.classify(&classifier, n) {
                    len += d.len();
                }
            }
            black_box(len)
        })
    });
    group.finish();
}

/// The public suffix of 6 000 names under 40 suffixes of every kind (one label, two,
/// private, wildcard, IDN, unknown), three ways: the sensor's own table, the
/// `publicsuffix` crate's trie (what the sensor used before) and the `psl` crate (the
/// list compiled into code, with its own copy of the list).
fn suffix_lookup(c: &mut Criterion) {
    use dns_sensor::domain::{PublicSuffixes, PUBLIC_SUFFIX_LIST};
    use publicsuffix::Psl as _;
    let tails = [
        "com",
        "net",
        "org",
        "de",
        "io",
        "co.uk",
        "org.uk",
        "com.au",
        "co.jp",
        "ne.jp",
        "com.br",
        "co.in",
        "fr",
        "ru",
        "nl",
        "blogspot.com",
        "github.io",
        "herokuapp.com",
        "s3.amazonaws.com",
        "compute-1.amazonaws.com",
        "x.ck",
        "kawasaki.jp",
        "xn--p1ai",
        "cn",
        "com.cn",
        "gov.uk",
        "ac.uk",
        "edu",
        "info",
        "biz",
        "tv",
        "me",
        "cloudfront.net",
        "appspot.com",
        "azurewebsites.net",
        "pirate.sea",
        "local",
        "arpa",
        "in-addr.arpa",
        "k12.ca.us",
    ];
    let names: Vec<Vec<u8>> = (0..6_000u64)
        .map(|i| {
            let tail = tails[(i % tails.len() as u64) as usize];
            let first = ["www", "mail", "api", "cdn", "a1b2c3"][(i / 40 % 5) as usize];
            format!("{first}.site{}.{tail}", i * 7919 % 10_007).into_bytes()
        })
        .collect();
    let ours = PublicSuffixes::parse(PUBLIC_SUFFIX_LIST, true).expect("the list parses");
    let theirs: publicsuffix::List = PUBLIC_SUFFIX_LIST.parse().expect("the list parses");
    let mut group = c.benchmark_group("suffix_lookup");
    group.throughput(Throughput::Elements(names.len() as u64));
    group.bench_function("own_table", |b| {
        b.iter(|| {
            let mut len = 0usize;
            for n in &names {
                len += ours.suffix_start(n).unwrap_or(0);
            }
            black_box(len)
        })
    });
    group.bench_function("publicsuffix_crate", |b| {
        b.iter(|| {
            let mut len = 0usize;
            for n in &names {
                len += theirs.find(n.rsplit(|&b| b == b'.')).len;
            }
            black_box(len)
        })
    });
    group.bench_function("psl_crate", |b| {
        b.iter(|| {
            let mut len = 0usize;
            for n in &names {
                len += psl::List.find(n.rsplit(|&b| b == b'.')).len;
            }
            black_box(len)
        })
    });
    group.finish();
}

/// (domain, name, client, qtype, size) of every query in `messages`.
type Record = (Vec<u8>, Vec<u8>, IpAddr, u16, u32);

fn records(messages: &[Message], classifier: &Classifier) -> Vec<Record> {
    let mut name = Name::new();
    messages
        .iter()
        .filter_map(|m| {
            let q = parse_question(&m.bytes, &mut name).ok()?;
            if q.is_response {
                return None;
            }
            match classifier.classify(name.as_bytes()) {
                Verdict::Registered(d) => Some((
                    d.to_vec(),
                    name.as_bytes().to_vec(),
                    m.client,
                    q.qtype,
                    m.bytes.len() as u32,
                )),
                _ => None,
            }
        })
        .collect()
}

/// Shard count update: a query recorded in a fresh slot's shard (new domains, growing
/// exact sets, samples, clients), the steady state of a shard already holding every
/// name, and a flood of new domains into a shard at its memory cap.
fn shard_update(c: &mut Criterion) {
    let inputs = inputs();
    let classifier = match Classifier::new(&inputs.settings.domain) {
        Ok(c) => c,
        Err(e) => panic!("classifier: {e}"),
    };
    let mix = records(&inputs.mix_messages, &classifier);
    let sketch = inputs.settings.sketch.clone();
    let mut group = c.benchmark_group("shard_update");
    group.throughput(Throughput::Elements(mix.len() as u64));
    group.bench_function("mix_fresh_shard", |b| {
        b.iter_batched(
            || Shard::new(EPOCH, &sketch),
            |mut shard| {
                for (d, n, client, qtype, size) in &mix {
                    shard.record_query(d, n, *client, *qtype, *size);
                }
                shard
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("mix_warm_shard", |b| {
        let mut shard = Shard::new(EPOCH, &sketch);
        for (d, n, client, qtype, size) in &mix {
            shard.record_query(d, n, *client, *qtype, *size);
        }
        b.iter(|| {
            for (d, n, client, qtype, size) in &mix {
                shard.record_query(d, n, *client, *qtype, *size);
            }
        })
    });
    let flood: Vec<(Vec<u8>, Vec<u8>)> = (0..20_000u64)
        .map(|i| {
            let domain = format!("dga{i:x}.example");
            (
                domain.clone().into_bytes(),
                format!("www.{domain}").into_bytes(),
            )
        })
        .collect();
    let small = SketchSettings {
        max_bytes: 2 << 20,
        ..sketch.clone()
    };
    let client = IpAddr::from([10, 9, 9, 9]);
    group.throughput(Throughput::Elements(flood.len() as u64));
    group.bench_function("new_domain_flood_at_cap", |b| {
        let mut shard = Shard::new(EPOCH, &small);
        b.iter(|| {
            for (d, n) in &flood {
                shard.record_query(d, n, client, 1, 40);
            }
        })
    });
    group.finish();
}

/// A shard with `domains` small domains (a few names each, as ordinary traffic makes
/// them) and `tunnels` domains with `tunnel_names` names each, as one slot might hold.
fn slot_shard(start: Nanos, settings: &SketchSettings, domains: u64, seed: u64) -> Shard {
    let client = IpAddr::from([10, 1, 1, 1]);
    let mut shard = Shard::new(start, settings);
    for d in 0..domains {
        let domain = format!("site{d}.example");
        for h in 0..3 {
            let name = format!("h{}.{domain}", (h + seed) % 5);
            shard.record_query(domain.as_bytes(), name.as_bytes(), client, 1, 40);
        }
    }
    for t in 0..4u64 {
        let domain = format!("tunnel{t}.example");
        for i in 0..15 {
            let name = tunnel_name(seed * 1000 + i, &domain);
            shard.record_query(domain.as_bytes(), name.as_bytes(), client, 16, 90);
        }
    }
    shard
}

/// Slot merge: two workers' shards of the same slot (10 000 domains each, half shared).
fn slot_merge(c: &mut Criterion) {
    let settings = SketchSettings::default();
    let a = slot_shard(EPOCH, &settings, 10_000, 1);
    let mut b_shard = Shard::new(EPOCH, &settings);
    b_shard.merge(&slot_shard(EPOCH, &settings, 5_000, 2));
    for d in 10_000..15_000u64 {
        let domain = format!("site{d}.example");
        b_shard.record_query(
            domain.as_bytes(),
            format!("www.{domain}").as_bytes(),
            IpAddr::from([10, 1, 1, 2]),
            1,
            40,
        );
    }
    let mut group = c.benchmark_group("slot_merge");
    group.throughput(Throughput::Elements(b_shard.len() as u64));
    group.bench_function("two_shards_10k_domains", |b| {
        b.iter_batched(
            || (a.clone(), b_shard.clone()),
            |(mut mine, theirs)| {
                mine.merge_owned(theirs);
                mine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Rule evaluation over a full 4 h window: 16 slots of 15 min, each with 5 000 ordinary
/// domains and 4 tunnels of 15 names per slot (240 in the window: over the threshold).
fn rule_evaluation(c: &mut Criterion) {
    let settings = SketchSettings::default();
    let rule = RuleSettings {
        realert: 0,
        ..RuleSettings::default()
    };
    let slot = 15 * MINUTE;
    let mut detector = Detector::new(rule);
    for s in 0..16u64 {
        detector.add(slot_shard(EPOCH + s * slot, &settings, 5_000, s));
    }
    let at = EPOCH + 16 * slot;
    assert_eq!(detector.evaluate(at).len(), 4, "the 4 tunnels alert");
    let mut group = c.benchmark_group("rule_evaluation");
    group.throughput(Throughput::Elements(detector.tracked() as u64));
    group.bench_function("window_16_slots_80k_entries", |b| {
        b.iter(|| black_box(detector.evaluate(at).len()))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = hot_path;
    config = config();
    targets = frame_decode, dns_question, lowercase_and_hash, registered_domain,
    suffix_lookup,
        shard_update, slot_merge, rule_evaluation
}
criterion_main!(hot_path);
