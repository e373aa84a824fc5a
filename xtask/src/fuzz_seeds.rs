//! The fuzz targets' seeds, written fresh before every run into a directory under
//! `target/` (nothing binary is kept in the repository): frames, DNS messages, names
//! and file heads cut from the real captures in `../shared/captures/` (a few frames or
//! records of each, never a whole file), and what the `synth` generators make (link
//! types, fragments, TCP streams and hostile messages no capture there has).
//!
//! Each target's input format is documented at the top of its file in
//! `fuzz/fuzz_targets/`; the encoders here write those formats, so a change to a
//! format goes with a change here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dns_sensor::capture::{CaptureReader, LinkType};
use dns_sensor::decode::{DecodeSettings, Decoder, Transport};
use dns_sensor::detect::{Detector, RuleSettings};
use dns_sensor::sketch::{Shard, SketchSettings};
use dns_sensor::synth::{self, scenario, Flow, SplitMix64, TcpFlow};
use dns_sensor::{Nanos, NANOS_PER_SEC};

/// One seed: a file name and its bytes.
pub type Seed = (String, Vec<u8>);

/// Most bytes of real frames put in one seed.
const SEED_BYTES: usize = 3000;

/// The seeds of `target` (a name in `crate::fuzz::TARGETS`).
pub fn for_target(target: &str, captures: &Path) -> Vec<Seed> {
    let shared = Shared::read(captures);
    match target {
        "decode_frame" => decode_frame(&shared),
        "dns_question" => dns_question(&shared),
        "tcp_reassembly" => tcp_reassembly(&shared),
        "ip_fragments" => ip_fragments(&shared),
        "capture_reader" => capture_reader(&shared),
        "config_parse" => config_parse(),
        "window_snapshot" => window_snapshot(&shared),
        "escape_names" => escape_names(&shared),
        _ => Vec::new(),
    }
}

/// One capture of `../shared/captures/`, read.
struct Capture {
    /// The file's name without `.pcap`.
    stem: String,
    /// Its bytes.
    file: Vec<u8>,
    link: LinkType,
    frames: Vec<(Nanos, Vec<u8>)>,
    /// The DNS messages the decoder finds in it, in order.
    messages: Vec<(Transport, Vec<u8>)>,
}

/// The shared captures this machine has (none when `../shared` is missing: the seeds
/// are then the generators' alone).
struct Shared {
    captures: Vec<Capture>,
}

impl Shared {
    fn read(dir: &Path) -> Self {
        let mut paths: Vec<PathBuf> = [dir.to_path_buf(), dir.join("peers")]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
            .collect();
        paths.sort();
        let captures = paths.iter().filter_map(|p| read_capture(p)).collect();
        Self { captures }
    }

    fn get(&self, stem: &str) -> Option<&Capture> {
        self.captures.iter().find(|c| c.stem == stem)
    }

    /// The first capture of each link type, by file name.
    fn one_per_link(&self) -> Vec<&Capture> {
        let mut out: Vec<&Capture> = Vec::new();
        for c in &self.captures {
            if !out.iter().any(|o| o.link == c.link) {
                out.push(c);
            }
        }
        out
    }
}

fn read_capture(path: &Path) -> Option<Capture> {
    let file = std::fs::read(path).ok()?;
    let mut reader = CaptureReader::open(path).ok()?;
    let mut frames = Vec::new();
    while let Ok(Some(f)) = reader.next_frame() {
        frames.push((f.ts, f.data.to_vec()));
    }
    let link = reader.link_type()?;
    let mut decoder = Decoder::new(DecodeSettings::default());
    let mut messages = Vec::new();
    for (ts, data) in &frames {
        let frame = dns_sensor::capture::Frame {
            ts: *ts,
            link,
            data,
        };
        decoder.decode(&frame, |p| messages.push((p.transport, p.message.to_vec())));
    }
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    Some(Capture {
        stem,
        file,
        link,
        frames,
        messages,
    })
}

// ---------------------------------------------------------------------------
// decode_frame: [link][frames: u16 LE length, time step in tenths, bytes]...
// ---------------------------------------------------------------------------

/// The first input byte that picks `link` (the order of the target's `LINKS`).
fn link_byte(link: LinkType) -> u8 {
    match link {
        LinkType::Ethernet => 0,
        LinkType::LinuxSll => 1,
        LinkType::LinuxSll2 => 2,
        LinkType::RawIp => 3,
        LinkType::BsdLoopback => 4,
    }
}

/// Frames in decode_frame's format, as many as fit in [`SEED_BYTES`] (at least one).
fn frames_input<F: AsRef<[u8]>>(link: LinkType, frames: &[(Nanos, F)]) -> Vec<u8> {
    let mut out = vec![link_byte(link)];
    let mut last = frames.first().map_or(0, |f| f.0);
    for (ts, frame) in frames {
        let frame = frame.as_ref();
        if out.len() > 1 && out.len() + frame.len() > SEED_BYTES {
            break;
        }
        let frame = &frame[..frame.len().min(u16::MAX.into())];
        out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
        let step = ts.saturating_sub(last) / (NANOS_PER_SEC / 10);
        out.push(step.min(255) as u8);
        out.extend_from_slice(frame);
        last = *ts;
    }
    out
}

fn decode_frame(shared: &Shared) -> Vec<Seed> {
    let mut seeds = Vec::new();
    let chosen = [
        "elastic-iodine-tunnel",
        "dmachard-dnscat2",
        "dnscap-frags",
        "zeek-ipv6-fragmented-dns",
        "dnscap-dnso1tcp",
        "suricata-verify-dns-tcp-multirequest-buffer",
        "dnscap-vlan11",
        "dnscap-dns6",
    ];
    let mut captures: Vec<&Capture> = chosen.iter().filter_map(|s| shared.get(s)).collect();
    for c in shared.one_per_link() {
        if !captures.iter().any(|o| o.stem == c.stem) {
            captures.push(c);
        }
    }
    for c in captures {
        seeds.push((c.stem.clone(), frames_input(c.link, &c.frames)));
    }
    // Every link type, Linux SLL v1 included (no capture here has it): a query and its
    // answer, over IPv4 and over IPv6.
    let v4 = Flow::to_dns(scenario::v4(10, 0, 0, 1), 40000, scenario::v4(10, 0, 0, 2));
    let (q, r) = synth::udp_exchange(&v4, 7, b"www.example.com", 1, 120);
    let (q6, r6) = synth::udp_exchange(&scenario::ipv6_flow(), 8, b"www.example.com", 28, 140);
    for link in [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::BsdLoopback,
    ] {
        let frames: Vec<(Nanos, Vec<u8>)> = [&q, &r, &q6, &r6]
            .iter()
            .enumerate()
            .map(|(i, f)| (i as Nanos * NANOS_PER_SEC, synth::relink(f, link)))
            .collect();
        seeds.push((format!("synth-{link:?}"), frames_input(link, &frames)));
    }
    // A response in IPv4 fragments, and a TCP exchange in segments.
    let response = synth::response_sized(9, b"x.tunnel.example", 16, 900);
    let frags: Vec<(Nanos, Vec<u8>)> = synth::ipv4_udp_fragments(&v4.reply(), &response, 77, 400)
        .into_iter()
        .map(|f| (0, f))
        .collect();
    seeds.push((
        "synth-fragments".into(),
        frames_input(LinkType::Ethernet, &frags),
    ));
    let stream = synth::tcp_stream(&[
        &synth::query(1, b"a.tunnel.example", 16),
        &synth::query(2, b"b.tunnel.example", 16),
    ]);
    let mut tcp = TcpFlow::new(v4, 1000, 1);
    let segments: Vec<(Nanos, Vec<u8>)> = tcp
        .segments(&stream, &[1, 30])
        .into_iter()
        .map(|f| (0, f))
        .collect();
    seeds.push((
        "synth-tcp".into(),
        frames_input(LinkType::Ethernet, &segments),
    ));
    seeds
}

// ---------------------------------------------------------------------------
// dns_question: one DNS message
// ---------------------------------------------------------------------------

fn dns_question(shared: &Shared) -> Vec<Seed> {
    let mut seeds: Vec<Seed> = Vec::new();
    let odd = [
        "elastic-iodine-tunnel",
        "dmachard-sods",
        "zeek-dns_dns-invalid-names",
        "packetq-sample-rfc1035escape",
        "zeek-dns_max-compression-depth",
        "suricata-verify-dns-forward-pointer_input",
        "zeek-dns_original_case",
        "suricata-verify-dns-truncated-rname_poc2",
        "zeek-dns-svcb-rdlength-mismatch",
        "suricata-verify-dns-udp-junkrequest-first_input",
    ];
    for c in odd.iter().filter_map(|s| shared.get(s)) {
        // A query and a response of each.
        for (i, (_, m)) in c.messages.iter().enumerate().take(2) {
            seeds.push((format!("{}-{i}", c.stem), m.clone()));
        }
    }
    let domain = "tunnel.example";
    seeds.push((
        "synth-tunnel".into(),
        synth::query(1, synth::tunnel_name(5, domain).as_bytes(), 16),
    ));
    seeds.push((
        "synth-iodine".into(),
        synth::query(2, &synth::iodine_name(5, domain), 10),
    ));
    seeds.push((
        "synth-response".into(),
        synth::response(3, b"www.example.com", 1, 1, 4),
    ));
    seeds.push((
        "synth-nxdomain".into(),
        synth::nxdomain(4, b"no.example.com", 1),
    ));
    use synth::hostile;
    for (name, m) in [
        ("loop", hostile::compression_loop(5)),
        ("pointer-past-end", hostile::pointer_past_end(6)),
        ("label-past-end", hostile::label_past_end(7)),
        ("many-questions", hostile::many_questions(8)),
        ("truncated-header", hostile::truncated_header(9)),
    ] {
        seeds.push((format!("hostile-{name}"), m));
    }
    seeds
}

// ---------------------------------------------------------------------------
// tcp_reassembly: [flows][buffer][segments: flags, delta, step, length, payload]...
// ---------------------------------------------------------------------------

/// Segments in tcp_reassembly's format.
#[derive(Default)]
struct TcpOps(Vec<u8>);

/// Flag bits of a segment (see the target).
const SYN: u8 = 4;
const FIN: u8 = 8;
const RST: u8 = 16;

impl TcpOps {
    fn new(flows_byte: u8, buffer_byte: u8) -> Self {
        Self(vec![flows_byte, buffer_byte])
    }

    /// One segment of flow `flow`, `delta` bytes from its next one (a multiple of 8^shift).
    fn segment(&mut self, flow: u8, flags: u8, delta: i8, shift: u8, step: u8, payload: &[u8]) {
        let payload = &payload[..payload.len().min(255)];
        self.0.extend_from_slice(&[
            flow | flags | shift << 5,
            delta as u8,
            step,
            payload.len() as u8,
        ]);
        self.0.extend_from_slice(payload);
    }

    /// `stream` as in-order segments of `flow` cut at `cuts` (and every 255 bytes).
    fn stream(&mut self, flow: u8, stream: &[u8], cuts: &[usize]) {
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            for piece in stream[from..cut.max(from)].chunks(255) {
                self.segment(flow, 0, 0, 0, 1, piece);
            }
            from = cut.max(from);
        }
    }
}

/// DNS messages carried over TCP in the shared captures, or generated ones.
fn tcp_messages(shared: &Shared) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut queries = Vec::new();
    let mut responses = Vec::new();
    for stem in [
        "dnscap-dnso1tcp",
        "suricata-verify-dns-tcp-multirequest-buffer",
    ] {
        for (transport, m) in shared
            .get(stem)
            .map(|c| c.messages.as_slice())
            .unwrap_or(&[])
        {
            let response = m.get(2).is_some_and(|b| b & 0x80 != 0);
            let list = if response {
                &mut responses
            } else {
                &mut queries
            };
            if *transport == Transport::Tcp && list.len() < 3 && m.len() <= 600 {
                list.push(m.clone());
            }
        }
    }
    if queries.is_empty() {
        queries = (0..3)
            .map(|i| synth::query(i, b"www.example.com", 1))
            .collect();
    }
    if responses.is_empty() {
        responses = (0..3)
            .map(|i| synth::response(i, b"www.example.com", 1, 1, 4))
            .collect();
    }
    (queries, responses)
}

fn tcp_reassembly(shared: &Shared) -> Vec<Seed> {
    let (queries, responses) = tcp_messages(shared);
    let refs = |ms: &[Vec<u8>]| -> Vec<u8> {
        synth::tcp_stream(&ms.iter().map(Vec::as_slice).collect::<Vec<_>>())
    };
    let (qs, rs) = (refs(&queries), refs(&responses));
    let mut seeds = Vec::new();

    // A whole exchange in order, a length prefix and messages split across segments.
    let mut ops = TcpOps::new(3, 255);
    ops.segment(0, SYN, 0, 0, 0, &[]);
    ops.segment(1, SYN, 0, 0, 0, &[]);
    ops.stream(0, &qs, &[1, 20, qs.len() / 2]);
    ops.stream(1, &rs, &[rs.len() / 3]);
    ops.segment(0, FIN, 0, 0, 1, &[]);
    ops.segment(1, FIN, 0, 0, 1, &[]);
    seeds.push(("in-order".into(), ops.0));

    // A retransmission, then a gap and a resync, on IPv6 without a SYN.
    let mut ops = TcpOps::new(3, 255);
    let first = &qs[..qs.len().min(100)];
    ops.segment(2, 0, 0, 0, 0, first);
    ops.segment(2, 0, -(first.len() as i8).max(-100), 0, 1, first);
    ops.segment(2, 0, 100, 0, 1, &qs[qs.len().min(100)..]);
    ops.segment(2, 0, 1, 3, 1, &qs);
    seeds.push(("retransmit-gap".into(), ops.0));

    // A buffer of 46 bytes: a split message longer than it is skipped.
    let mut ops = TcpOps::new(0, 4);
    ops.segment(0, SYN, 0, 0, 0, &[]);
    ops.stream(0, &rs, &[10]);
    seeds.push(("small-buffer".into(), ops.0));

    // One flow allowed: the second is refused; a reset; a timeout.
    let mut ops = TcpOps::new(0, 255);
    ops.segment(0, SYN, 0, 0, 0, &qs[..qs.len().min(7)]);
    ops.segment(2, SYN, 0, 0, 0, &qs);
    ops.segment(1, RST, 0, 0, 1, &[]);
    ops.segment(0, 0, 0, 0, 255, &qs);
    ops.segment(0, 0, 0, 0, 255, &qs);
    seeds.push(("refused-reset-timeout".into(), ops.0));
    seeds
}

// ---------------------------------------------------------------------------
// ip_fragments: [table][fragments: flags, id, offset, step, length, payload]...
// ---------------------------------------------------------------------------

/// Fragments in ip_fragments' format.
struct FragOps(Vec<u8>);

/// Flag bits of a fragment (see the target).
const V6: u8 = 1;
const MF: u8 = 8;
const BEHIND_OPTIONS: u8 = 3 << 4;

impl FragOps {
    fn new(table_byte: u8) -> Self {
        Self(vec![table_byte])
    }

    fn fragment(&mut self, flags: u8, id: u8, offset: usize, step: u8, data: &[u8]) {
        let units = (offset / 8) as u16;
        self.0.extend_from_slice(&[flags, id]);
        self.0.extend_from_slice(&units.to_le_bytes());
        self.0.extend_from_slice(&[step, data.len() as u8]);
        self.0.extend_from_slice(data);
    }

    /// `datagram` in fragments of `size` bytes (a multiple of 8), in the order `order`
    /// gives their indexes.
    fn datagram(&mut self, flags: u8, id: u8, datagram: &[u8], size: usize, order: &[usize]) {
        let pieces: Vec<&[u8]> = datagram.chunks(size).collect();
        for &i in order.iter().filter(|&&i| i < pieces.len()) {
            let more = if i + 1 < pieces.len() { MF } else { 0 };
            self.fragment(flags | more, id, i * size, 0, pieces[i]);
        }
    }
}

/// A UDP datagram to port 53 carrying `message` (checksum left zero: none).
fn udp_datagram(message: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + message.len());
    d.extend_from_slice(&40000u16.to_be_bytes());
    d.extend_from_slice(&53u16.to_be_bytes());
    d.extend_from_slice(&((8 + message.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(message);
    d
}

fn ip_fragments(shared: &Shared) -> Vec<Seed> {
    // A real response of a few hundred bytes (the iodine tunnel's), or a generated one.
    let response = shared
        .get("elastic-iodine-tunnel")
        .and_then(|c| {
            c.messages
                .iter()
                .map(|(_, m)| m)
                .find(|m| (200..=600).contains(&m.len()))
        })
        .cloned()
        .unwrap_or_else(|| synth::response_sized(1, b"x.tunnel.example", 10, 400));
    let datagram = udp_datagram(&response);
    let pieces = datagram.len().div_ceil(96);
    let in_order: Vec<usize> = (0..pieces).collect();
    let reversed: Vec<usize> = (0..pieces).rev().collect();
    let mut seeds = Vec::new();

    let mut ops = FragOps::new(7);
    ops.datagram(0, 1, &datagram, 96, &in_order);
    seeds.push(("v4-in-order".into(), ops.0));

    let mut ops = FragOps::new(7);
    ops.datagram(0, 2, &datagram, 96, &reversed);
    ops.datagram(V6, 2, &datagram, 96, &in_order);
    seeds.push(("v4-reversed-v6".into(), ops.0));

    // Duplicates and an overlap.
    let mut ops = FragOps::new(7);
    ops.datagram(0, 3, &datagram, 96, &[0, 1, 1, 0, 2, 3, 4, 5, 6, 7]);
    ops.fragment(MF, 3, 40, 0, &datagram[40..40 + 96]);
    seeds.push(("duplicates-overlap".into(), ops.0));

    // IPv6 with a destination-options header in the fragmentable part: the first
    // fragment's 8 header bytes shift the rest.
    let mut ops = FragOps::new(7);
    let behind = [&[17, 0, 1, 4, 0, 0, 0, 0][..], &datagram].concat();
    let first = &behind[8..96];
    ops.fragment(V6 | BEHIND_OPTIONS | MF, 4, 0, 0, first);
    for (i, piece) in behind[96..].chunks(96).enumerate() {
        let more = if 96 * (i + 2) < behind.len() { MF } else { 0 };
        ops.fragment(V6 | BEHIND_OPTIONS | more, 4, 96 * (i + 1), 0, piece);
    }
    seeds.push(("v6-behind-options".into(), ops.0));

    // A table of one datagram: two interleaved, one evicted; then one timed out.
    let mut ops = FragOps::new(0);
    ops.datagram(0, 5, &datagram, 96, &[0, 1]);
    ops.datagram(1 << 1, 6, &datagram, 96, &in_order);
    ops.datagram(0, 5, &datagram, 96, &in_order[2..]);
    ops.fragment(MF, 7, 0, 0, &datagram[..96]);
    ops.fragment(0, 7, 96, 255, &datagram[96..192]);
    ops.fragment(0, 7, 96, 255, &datagram[96..192]);
    seeds.push(("evicted-expired".into(), ops.0));
    seeds
}

// ---------------------------------------------------------------------------
// capture_reader: a capture file
// ---------------------------------------------------------------------------

/// The head of a classic pcap: its header and its first `records` records.
fn pcap_head(file: &[u8], records: usize) -> Option<Vec<u8>> {
    let magic = file.get(..4)?;
    let big = magic == [0xa1, 0xb2, 0xc3, 0xd4] || magic == [0xa1, 0xb2, 0x3c, 0x4d];
    let mut end = 24;
    for _ in 0..records {
        let len = file.get(end + 8..end + 12)?;
        let len = [len[0], len[1], len[2], len[3]];
        let len = if big {
            u32::from_be_bytes(len)
        } else {
            u32::from_le_bytes(len)
        } as usize;
        if end + 16 + len > file.len() {
            break;
        }
        end += 16 + len;
    }
    Some(file[..end].to_vec())
}

fn capture_reader(shared: &Shared) -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut chosen: Vec<&Capture> = ["elastic-iodine-tunnel", "packetq-sample-bigendian"]
        .iter()
        .filter_map(|s| shared.get(s))
        .collect();
    chosen.extend(shared.one_per_link());
    for c in chosen {
        if let Some(head) = pcap_head(&c.file, 4).filter(|h| h.len() <= SEED_BYTES) {
            // Cut short inside its last record, too.
            seeds.push((format!("{}-cut", c.stem), head[..head.len() - 3].to_vec()));
            seeds.push((c.stem.clone(), head));
        }
    }
    // pcapng (no capture here is one), and a nanosecond pcap, of real frames.
    let frames: Vec<(Nanos, Vec<u8>)> = shared
        .get("elastic-iodine-tunnel")
        .map(|c| c.frames.iter().take(3).cloned().collect())
        .unwrap_or_else(|| {
            let flow = Flow::to_dns(scenario::v4(10, 0, 0, 1), 40000, scenario::v4(10, 0, 0, 2));
            let (q, r) = synth::udp_exchange(&flow, 1, b"www.example.com", 1, 100);
            vec![(NANOS_PER_SEC, q), (2 * NANOS_PER_SEC, r)]
        });
    let micros = frames.iter().map(|(ts, f)| (ts / 1000, f));
    seeds.push((
        "pcapng".into(),
        synth::pcapng_bytes(LinkType::Ethernet, micros),
    ));
    let raw: Vec<(Nanos, Vec<u8>)> = frames
        .iter()
        .map(|(ts, f)| (*ts, synth::relink(f, LinkType::LinuxSll)))
        .collect();
    seeds.push((
        "writer-sll".into(),
        synth::pcap_bytes(LinkType::LinuxSll, raw),
    ));
    seeds
}

// ---------------------------------------------------------------------------
// config_parse: a settings file
// ---------------------------------------------------------------------------

fn config_parse() -> Vec<Seed> {
    let documented = include_str!("../../deploy/dns-sensor.toml");
    let mut seeds = vec![(
        "deploy-dns-sensor.toml".to_owned(),
        documented.as_bytes().to_vec(),
    )];
    // Each of its tables on its own, with its commented-out keys set.
    let mut table = String::new();
    let mut n = 0;
    for line in documented.lines().chain(std::iter::once("[end]")) {
        if line.starts_with('[') && !table.is_empty() {
            seeds.push((
                format!("table-{n}"),
                std::mem::take(&mut table).into_bytes(),
            ));
            n += 1;
        }
        let line = line
            .strip_prefix("# ")
            .filter(|l| l.contains(" = "))
            .unwrap_or(line);
        table.push_str(line);
        table.push('\n');
    }
    for (name, text) in [
        (
            "email",
            "[output.email]\nenabled = true\nserver = \"mail.example.org\"\nport = 587\n\
             tls = \"starttls\"\nfrom = \"Sensor <sensor@example.org>\"\n\
             to = [\"soc@example.org\", \"noc@example.org\"]\nsubject = \"DNS\"\n\
             timeout = \"30s\"\ngive_up_after = \"1h 30m\"\n",
        ),
        (
            "rule",
            "threshold = 10\nwindow = \"1h\"\ninterval = \"5m\"\nrealert = \"0\"\n\
             memory_cap = \"512MiB\"\nports = [53, 5353]\nwhitelist = [\"example.org\"]\n",
        ),
        ("bad-value", "window = \"soon\"\n"),
        ("bad-key", "[output.syslog]\nenabled = true\n"),
    ] {
        seeds.push((name.to_owned(), text.as_bytes().to_vec()));
    }
    seeds
}

// ---------------------------------------------------------------------------
// window_snapshot: [rule][snapshot body, or a whole snapshot]
// ---------------------------------------------------------------------------

/// The body of a snapshot: without its magic line, version and checksum.
fn snapshot_body(snapshot: &[u8]) -> Vec<u8> {
    let start = snapshot
        .iter()
        .position(|&b| b == b'\n')
        .map_or(0, |n| n + 1)
        + 4;
    snapshot[start..snapshot.len() - 8].to_vec()
}

fn window_snapshot(shared: &Shared) -> Vec<Seed> {
    let rule = RuleSettings::default();
    let sketch = SketchSettings::default();
    let slot = 15 * 60 * NANOS_PER_SEC;
    let client: IpAddr = [10, 0, 2, 30].into();
    let mut seeds = Vec::new();

    // The iodine tunnel's real names, in the slots of their times, evaluated once.
    let mut window = Detector::new(rule.clone());
    if let Some(c) = shared.get("elastic-iodine-tunnel") {
        let mut name = dns_sensor::decode::Name::new();
        let mut shards: Vec<Shard> = Vec::new();
        let mut ts = c.frames.first().map_or(0, |f| f.0);
        for (_, m) in c.messages.iter().take(40) {
            if dns_sensor::decode::parse_question(m, &mut name).is_ok() {
                ts += 60 * NANOS_PER_SEC;
                let start = ts - ts % slot;
                if shards.last().is_none_or(|s| s.start() != start) {
                    shards.push(Shard::new(start, &sketch));
                }
                if let Some(shard) = shards.last_mut() {
                    shard.record_query(b"pirate.sea", name.as_bytes(), client, 10, m.len() as u32);
                }
            }
        }
        let end = shards.last().map_or(0, |s| s.start() + slot);
        for shard in shards {
            window.add(shard);
        }
        window.evaluate(end);
        let snapshot = window.to_snapshot(end, Some(end));
        seeds.push((
            "iodine-body".into(),
            [&[0][..], &snapshot_body(&snapshot)].concat(),
        ));
        seeds.push(("iodine-whole".into(), [&[1][..], &snapshot].concat()));
    }

    // Two domains over a window, one reported, restored under each rule.
    let mut window = Detector::new(rule);
    let mut rng = SplitMix64::new(11);
    let t0 = 1_796_083_200 * NANOS_PER_SEC;
    for s in 0..6 {
        let mut shard = Shard::new(t0 + s * slot, &sketch);
        for i in 0..40 {
            let n = rng.below(1000);
            shard.record_query(
                b"tunnel.org",
                format!("{n}.{i}.tunnel.org").as_bytes(),
                client,
                16,
                70,
            );
            shard.record_response(b"tunnel.org", 200, 0);
        }
        shard.record_query(b"quiet.org", b"www.quiet.org", [10, 0, 0, 9].into(), 1, 40);
        window.add(shard);
    }
    window.evaluate(t0 + 6 * slot);
    let body = snapshot_body(&window.to_snapshot(t0 + 6 * slot, None));
    for pick in 0..3u8 {
        seeds.push((
            format!("two-domains-rule{pick}"),
            [&[pick][..], &body].concat(),
        ));
    }
    seeds.push((
        "empty".into(),
        [
            &[0][..],
            &snapshot_body(&Detector::new(RuleSettings::default()).to_snapshot(0, None)),
        ]
        .concat(),
    ));
    seeds
}

// ---------------------------------------------------------------------------
// escape_names: [names: length, bytes]... then figures
// ---------------------------------------------------------------------------

/// The wire bytes of a message's question name, when it is stored whole (no pointer).
fn wire_name(message: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    loop {
        let len = usize::from(*message.get(at)?);
        if len == 0 {
            return message.get(12..at + 1);
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
}

fn names_input(names: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        let name = &name[..name.len().min(255)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
    }
    // Figures: times, counts, two clients, a query type.
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 222, 0, 0, 0, 222, 0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 200, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 14, 16]);
    out.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 10, 0, 0]);
    out
}

fn escape_names(shared: &Shared) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for stem in [
        "elastic-iodine-tunnel",
        "dmachard-dnscat2",
        "zeek-dns_dns-invalid-names",
        "packetq-sample-rfc1035escape",
    ] {
        let Some(c) = shared.get(stem) else { continue };
        let names: Vec<&[u8]> = c
            .messages
            .iter()
            .filter_map(|(_, m)| wire_name(m))
            .take(3)
            .collect();
        if !names.is_empty() {
            seeds.push((stem.to_owned(), names_input(&names)));
        }
    }
    // Raw bytes that would forge a line, a field, a header or a terminal sequence.
    let hostile: [&[u8]; 6] = [
        b"x\r\n\x1b[31m.evil\"sea",
        b"=?utf-8?q?forged?=.sea",
        b"a\\065.sea\nSubject: forged",
        b"\x00\x7f\xff\xc3\xa9.sea",
        b"\\\\.\\..sea",
        &[b'a'; 255],
    ];
    seeds.push(("hostile".into(), names_input(&hostile)));
    let domain = "tunnel.example";
    let iodine = synth::query(1, &synth::iodine_name(3, domain), 10);
    let tunnel = synth::query(2, synth::tunnel_name(3, domain).as_bytes(), 16);
    let names: Vec<&[u8]> = [&iodine, &tunnel]
        .iter()
        .filter_map(|m| wire_name(m))
        .collect();
    seeds.push(("synth".into(), names_input(&names)));
    seeds
}
