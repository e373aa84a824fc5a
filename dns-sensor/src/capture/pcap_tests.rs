//! The reader's and writer's tests, shared by both readers while they are compared.

use super::*;
use std::io::Cursor;

const ALL_LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::BsdLoopback,
];

fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader("test", Cursor::new(bytes))
}

/// Every frame as (ts, link, bytes), and the error that ended the file, if any.
type Drained = (Vec<(Nanos, LinkType, Vec<u8>)>, Option<CaptureError>);

fn drain(r: &mut CaptureReader) -> Drained {
    let mut out = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => out.push((f.ts, f.link, f.data.to_vec())),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn sample_frames() -> Vec<(Nanos, Vec<u8>)> {
    vec![
        (1_700_000_000_123_456_789, vec![0x45; 60]),
        (1_700_000_001_000_000_001, (0..=255u8).collect()),
        (1_700_000_002_999_999_999, vec![7; 1]),
    ]
}

fn written(link: LinkType, frames: &[(Nanos, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), link).unwrap();
    for (ts, data) in frames {
        w.write(*ts, data).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn writer_output_reads_back_for_every_link_type() {
    let frames = sample_frames();
    for link in ALL_LINKS {
        let bytes = written(link, &frames);
        let total = bytes.len() as u64;
        assert_eq!(
            &bytes[0..4],
            &[0x4d, 0x3c, 0xb2, 0xa1],
            "LE nanosecond magic"
        );
        assert_eq!(
            u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
            262_144
        );
        let mut r = reader(bytes).unwrap();
        assert_eq!(r.link_type(), Some(link));
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{err:?}");
        let want: Vec<_> = frames.iter().map(|(t, d)| (*t, link, d.clone())).collect();
        assert_eq!(got, want);
        assert_eq!(r.offset(), total);
        assert_eq!(r.skipped_frames(), 0);
    }
}

#[test]
fn writer_cuts_frames_longer_than_snaplen() {
    let big = vec![1u8; WRITER_SNAPLEN as usize + 10];
    let bytes = written(LinkType::RawIp, &[(5, big)]);
    assert_eq!(
        u32::from_le_bytes(bytes[36..40].try_into().unwrap()),
        WRITER_SNAPLEN + 10,
        "original length kept"
    );
    let (got, err) = drain(&mut reader(bytes).unwrap());
    assert!(err.is_none());
    assert_eq!(got[0].2.len(), WRITER_SNAPLEN as usize);
}

/// A classic pcap file built by hand: magic, byte order, link type, records of
/// (seconds, fraction, data).
fn classic(magic: u32, be: bool, linktype: u32, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut b = Vec::new();
    b.extend(w32(magic));
    b.extend(w16(2));
    b.extend(w16(4));
    b.extend(w32(0));
    b.extend(w32(0));
    b.extend(w32(65535));
    b.extend(w32(linktype));
    for (s, f, d) in recs {
        b.extend(w32(*s));
        b.extend(w32(*f));
        b.extend(w32(d.len() as u32));
        b.extend(w32(d.len() as u32));
        b.extend_from_slice(d);
    }
    b
}

#[test]
fn hand_built_headers_in_both_byte_orders_and_resolutions() {
    let recs: &[(u32, u32, &[u8])] = &[(1, 500_000, b"abcd"), (u32::MAX, 999_999, b"e")];
    for be in [false, true] {
        let bytes = classic(MAGIC_MICROS, be, 1, recs);
        let (got, err) = drain(&mut reader(bytes).unwrap());
        assert!(err.is_none());
        assert_eq!(
            got[0],
            (1_500_000_000, LinkType::Ethernet, b"abcd".to_vec())
        );
        assert_eq!(got[1].0, u64::from(u32::MAX) * NANOS_PER_SEC + 999_999_000);

        let bytes = classic(MAGIC_NANOS, be, 101, recs);
        let (got, err) = drain(&mut reader(bytes).unwrap());
        assert!(err.is_none());
        assert_eq!(got[0], (1_000_500_000, LinkType::RawIp, b"abcd".to_vec()));
    }
    // The big-endian header really is big-endian on disk.
    assert_eq!(
        &classic(MAGIC_MICROS, true, 1, &[])[0..4],
        &[0xa1, 0xb2, 0xc3, 0xd4]
    );
}

#[test]
fn fcs_bits_of_the_link_type_field_are_ignored() {
    let bytes = classic(MAGIC_MICROS, false, 0x1000_0000 | 1, &[(1, 0, b"x")]);
    let (got, _) = drain(&mut reader(bytes).unwrap());
    assert_eq!(got[0].1, LinkType::Ethernet);
}

#[test]
fn undecodable_link_type_frames_are_skipped_and_counted() {
    let recs: &[(u32, u32, &[u8])] = &[(1, 0, b"a"), (2, 0, b"b"), (3, 0, b"c")];
    let mut r = reader(classic(MAGIC_MICROS, false, 105, recs)).unwrap();
    assert_eq!(r.link_type(), None);
    let (got, err) = drain(&mut r);
    assert!(got.is_empty() && err.is_none());
    assert_eq!(r.skipped_frames(), 3);
}

#[test]
fn truncation_at_every_offset_returns_complete_frames_then_the_record_start() {
    let frames = sample_frames();
    let full = written(LinkType::Ethernet, &frames);
    // Record starts: 24, then each record is 16 bytes of header plus its data.
    let mut starts = vec![24usize];
    for (_, d) in &frames {
        starts.push(starts.last().unwrap() + 16 + d.len());
    }
    for cut in 0..full.len() {
        let res = reader(full[..cut].to_vec());
        if cut < 24 {
            match res {
                Err(CaptureError::Truncated { offset: 0, .. }) => continue,
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let mut r = res.unwrap();
        let (got, err) = drain(&mut r);
        let complete = starts.iter().skip(1).filter(|&&end| end <= cut).count();
        assert_eq!(got.len(), complete, "cut {cut}");
        if starts.contains(&cut) {
            assert!(err.is_none(), "cut {cut} at a record boundary: {err:?}");
        } else {
            match err {
                Some(CaptureError::Truncated { offset, .. }) => {
                    assert_eq!(offset as usize, starts[complete], "cut {cut}")
                }
                other => panic!("cut {cut}: {other:?}"),
            }
            // Errors are final.
            assert!(matches!(r.next_frame(), Ok(None)));
        }
    }
}

#[test]
fn empty_file_is_truncated_at_zero_and_text_is_not_a_capture() {
    assert!(matches!(
        reader(Vec::new()),
        Err(CaptureError::Truncated { offset: 0, .. })
    ));
    match reader(b"GET / HTTP/1.1\r\n\r\n".to_vec()) {
        Err(CaptureError::NotACapture { magic, .. }) => assert_eq!(magic, 0x4745_5420),
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_caplen_is_malformed_at_its_record() {
    let mut bytes = classic(MAGIC_MICROS, false, 1, &[(1, 0, b"ok")]);
    let second = bytes.len();
    bytes.extend(1u32.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(0x7fff_ffffu32.to_le_bytes());
    bytes.extend(0x7fff_ffffu32.to_le_bytes());
    let (got, err) = drain(&mut reader(bytes).unwrap());
    assert_eq!(got.len(), 1);
    match err {
        Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, second),
        other => panic!("{other:?}"),
    }
}

#[test]
fn peek_ts_does_not_consume_and_lets_readers_merge() {
    let a = written(
        LinkType::Ethernet,
        &[(1, vec![1]), (4, vec![4]), (5, vec![5])],
    );
    let b = written(LinkType::RawIp, &[(2, vec![2]), (3, vec![3]), (6, vec![6])]);
    let mut rs = [reader(a).unwrap(), reader(b).unwrap()];
    assert_eq!(rs[0].peek_ts().unwrap(), Some(1));
    assert_eq!(rs[0].peek_ts().unwrap(), Some(1));
    let mut merged = Vec::new();
    loop {
        let mut best: Option<(usize, Nanos)> = None;
        for (i, r) in rs.iter_mut().enumerate() {
            if let Some(ts) = r.peek_ts().unwrap() {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        let Some((i, ts)) = best else { break };
        let f = rs[i].next_frame().unwrap().unwrap();
        assert_eq!(f.ts, ts);
        merged.push(f.data[0]);
    }
    assert_eq!(merged, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn tsresol_conversions_saturate_and_never_panic() {
    assert_eq!(TsScale::from_tsresol(6).to_nanos(1_500_000), 1_500_000_000);
    assert_eq!(TsScale::from_tsresol(9).to_nanos(42), 42);
    assert_eq!(TsScale::from_tsresol(0).to_nanos(u64::MAX), u64::MAX);
    assert_eq!(TsScale::from_tsresol(12).to_nanos(5_000), 5);
    assert_eq!(TsScale::from_tsresol(127).to_nanos(u64::MAX), 0);
    // 2^-10 s: 1024 ticks are one second.
    assert_eq!(TsScale::from_tsresol(0x8a).to_nanos(1024), NANOS_PER_SEC);
    assert_eq!(TsScale::from_tsresol(0x80).to_nanos(u64::MAX), u64::MAX);
    assert_eq!(TsScale::from_tsresol(0xff).to_nanos(u64::MAX), 0);
}

/// pcapng blocks built by hand, in either byte order.
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, btype: u32, body: &[u8]) -> usize {
        let start = self.out.len();
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        let (t, l) = (self.u32(btype), self.u32(total));
        self.out.extend(t);
        self.out.extend(l);
        self.out.extend(body);
        self.out.extend(l);
        start
    }
    fn shb(&mut self) -> usize {
        let mut body = Vec::new();
        body.extend(self.u32(PCAPNG_BYTE_ORDER));
        body.extend(self.u16(1));
        body.extend(self.u16(0));
        body.extend((-1i64).to_le_bytes());
        self.block(PCAPNG_SHB, &body)
    }
    fn idb(&mut self, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> usize {
        let mut body = Vec::new();
        body.extend(self.u16(linktype));
        body.extend(self.u16(0));
        body.extend(self.u32(0));
        // An option the reader does not use comes first: if_name "eth0".
        body.extend(self.u16(2));
        body.extend(self.u16(4));
        body.extend(b"eth0");
        if let Some(r) = tsresol {
            body.extend(self.u16(9));
            body.extend(self.u16(1));
            body.extend([r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend(self.u16(14));
            body.extend(self.u16(8));
            body.extend(if self.be {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            });
        }
        body.extend([0; 4]);
        self.block(PCAPNG_IDB, &body)
    }
    fn epb(&mut self, iface: u32, ticks: u64, data: &[u8]) -> usize {
        let mut body = Vec::new();
        body.extend(self.u32(iface));
        body.extend(self.u32((ticks >> 32) as u32));
        body.extend(self.u32(ticks as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        // An epb_flags option, to be ignored.
        body.extend(self.u16(2));
        body.extend(self.u16(4));
        body.extend(self.u32(1));
        self.block(PCAPNG_EPB, &body)
    }
    fn pb(&mut self, iface: u16, ticks: u64, data: &[u8]) -> usize {
        let mut body = Vec::new();
        body.extend(self.u16(iface));
        body.extend(self.u16(0));
        body.extend(self.u32((ticks >> 32) as u32));
        body.extend(self.u32(ticks as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        self.block(PCAPNG_PB, &body)
    }
    fn spb(&mut self, data: &[u8]) -> usize {
        let mut body = Vec::new();
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        self.block(PCAPNG_SPB, &body)
    }
}

fn pcapng_two_sections() -> Vec<u8> {
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None, None); // 0: Ethernet, microseconds by default
    ng.idb(101, Some(9), Some(-1)); // 1: raw IP, nanoseconds, one second earlier
    ng.epb(0, 1_000_001, b"eth-frame");
    ng.block(5, &[0xee; 20]); // Interface Statistics: skipped
    ng.epb(1, 3_000_000_007, b"raw!");
    ng.pb(0, 2_000_000, b"old");
    ng.spb(b"simple");
    ng.block(0x0bad_0001, &[0; 3]); // unknown block type: skipped
                                    // Second section, big-endian, with its own interface numbering.
    ng.be = true;
    ng.shb();
    ng.idb(276, Some(0x8a), None); // 0: SLL2, 2^-10 s
    ng.idb(147, None, None); // 1: a user link type: skipped
    ng.idb(0, Some(3), Some(10)); // 2: BSD loopback, milliseconds, +10 s
    ng.epb(0, 2048, b"sll2");
    ng.epb(1, 1, b"user");
    ng.epb(2, 1500, b"lo");
    ng.out
}

#[test]
fn pcapng_sections_interfaces_and_packet_block_kinds() {
    let mut r = reader(pcapng_two_sections()).unwrap();
    let (got, err) = drain(&mut r);
    assert!(err.is_none(), "{err:?}");
    let want: Vec<(Nanos, LinkType, Vec<u8>)> = vec![
        (1_000_001_000, LinkType::Ethernet, b"eth-frame".to_vec()),
        (2_000_000_007, LinkType::RawIp, b"raw!".to_vec()),
        (2_000_000_000, LinkType::Ethernet, b"old".to_vec()),
        // No timestamp of its own: the previous frame's.
        (2_000_000_000, LinkType::Ethernet, b"simple".to_vec()),
        (2 * NANOS_PER_SEC, LinkType::LinuxSll2, b"sll2".to_vec()),
        (11_500_000_000, LinkType::BsdLoopback, b"lo".to_vec()),
    ];
    assert_eq!(got, want);
    assert_eq!(r.skipped_frames(), 1);
    assert_eq!(r.offset(), pcapng_two_sections().len() as u64);
}

#[test]
fn pcapng_truncated_at_every_offset_reports_the_block_start() {
    let mut ng = Ng {
        be: true,
        out: Vec::new(),
    };
    let shb = ng.shb();
    let idb = ng.idb(1, Some(6), None);
    let b1 = ng.epb(0, 1, b"first");
    let b2 = ng.block(5, &[1; 8]);
    let b3 = ng.epb(0, 2, b"second");
    let full = ng.out;
    let blocks = [shb, idb, b1, b2, b3, full.len()];
    for cut in 0..full.len() {
        let res = reader(full[..cut].to_vec());
        if cut < idb {
            assert!(
                matches!(res, Err(CaptureError::Truncated { offset: 0, .. })),
                "cut {cut}: {res:?}"
            );
            continue;
        }
        let (got, err) = drain(&mut res.unwrap());
        // The first frame is complete where the statistics block starts, the second at
        // the end of the file.
        let complete = [b2, full.len()].iter().filter(|&&end| end <= cut).count();
        assert_eq!(got.len(), complete, "cut {cut}");
        if blocks.contains(&cut) {
            assert!(err.is_none(), "cut {cut}: {err:?}");
        } else {
            let start = *blocks.iter().rfind(|&&b| b <= cut).unwrap();
            match err {
                Some(CaptureError::Truncated { offset, .. }) => {
                    assert_eq!(offset as usize, start, "cut {cut}")
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn pcapng_malformed_blocks_are_reported_with_their_offset() {
    // Length not a multiple of 4.
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    let at = ng.idb(1, None, None);
    ng.out[at + 4] += 1;
    match drain(&mut reader(ng.out).unwrap()).1 {
        Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, at),
        other => panic!("{other:?}"),
    }
    // A packet on an interface never described.
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None, None);
    ng.epb(0, 1, b"ok");
    let at = ng.epb(3, 1, b"bad");
    let (got, err) = drain(&mut reader(ng.out).unwrap());
    assert_eq!(got.len(), 1);
    match err {
        Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, at),
        other => panic!("{other:?}"),
    }
    // Captured length running past its block.
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None, None);
    let at = ng.epb(0, 1, b"abcd");
    ng.out[at + 20] = 200;
    assert!(matches!(
        drain(&mut reader(ng.out).unwrap()).1,
        Some(CaptureError::Malformed { .. })
    ));
    // A section header with a bad byte-order magic.
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.out[8] = 0;
    assert!(matches!(
        reader(ng.out),
        Err(CaptureError::Malformed { offset: 0, .. })
    ));
}

// ---- the shared real captures ----

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures");

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "2012-10-05 13:52:01.138640" (capinfos, UTC) as nanoseconds.
fn capinfos_time(s: &str) -> Nanos {
    let n: Vec<i64> = s
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap())
        .collect();
    let secs = days_from_civil(n[0], n[1], n[2]) * 86_400 + n[3] * 3600 + n[4] * 60 + n[5];
    secs as u64 * NANOS_PER_SEC + n[6] as u64 * 1000
}

struct CapInfo {
    packets: usize,
    link: LinkType,
    first: Nanos,
    last: Nanos,
}

fn capinfos() -> Vec<(String, CapInfo)> {
    let text = std::fs::read_to_string(format!("{CAPTURES}/peers/capinfos.txt")).unwrap();
    let mut out = Vec::new();
    for entry in text.split("===== ").skip(1) {
        let name = entry.lines().next().unwrap().trim().to_string();
        let field = |key: &str| {
            entry
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("{name}: no {key}"))
                .trim()
                .to_string()
        };
        let link = match field("File encapsulation:").as_str() {
            "Ethernet" => LinkType::Ethernet,
            "Raw IP" | "Raw IPv4" => LinkType::RawIp,
            "NULL/Loopback" => LinkType::BsdLoopback,
            "Linux cooked-mode capture v2" => LinkType::LinuxSll2,
            "Linux cooked-mode capture v1" => LinkType::LinuxSll,
            other => panic!("{name}: encapsulation {other}"),
        };
        out.push((
            name.clone(),
            CapInfo {
                packets: field("Number of packets:").parse().unwrap(),
                link,
                first: capinfos_time(&field("First packet time:")),
                last: capinfos_time(&field("Last packet time:")),
            },
        ));
    }
    out
}

#[test]
fn every_peer_capture_matches_capinfos() {
    let infos = capinfos();
    let mut files: Vec<String> = std::fs::read_dir(format!("{CAPTURES}/peers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".pcap"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 67);
    assert_eq!(infos.len(), files.len(), "capinfos covers every file");
    let mut seen_links = std::collections::HashSet::new();
    for name in &files {
        let info = &infos.iter().find(|(n, _)| n == name).unwrap().1;
        let path = format!("{CAPTURES}/peers/{name}");
        let mut r = CaptureReader::open(Path::new(&path)).unwrap();
        assert_eq!(r.link_type(), Some(info.link), "{name}");
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{name}: {err:?}");
        assert_eq!(got.len(), info.packets, "{name}");
        assert_eq!(r.skipped_frames(), 0, "{name}");
        assert!(got.iter().all(|f| f.1 == info.link), "{name}");
        assert_eq!(got.first().unwrap().0, info.first, "{name}: first time");
        assert_eq!(got.last().unwrap().0, info.last, "{name}: last time");
        assert_eq!(
            r.offset(),
            std::fs::metadata(&path).unwrap().len(),
            "{name}"
        );
        seen_links.insert(format!("{:?}", info.link));
    }
    // The corpus exercises every odd link type the manifest names.
    for l in ["Ethernet", "RawIp", "BsdLoopback", "LinuxSll2"] {
        assert!(seen_links.contains(l), "{l}");
    }
}

#[test]
fn peer_odd_formats_yield_their_link_types() {
    let cases = [
        ("packetq-sample-bigendian.pcap", LinkType::Ethernet, 2),
        ("dnscap-sll2.pcap", LinkType::LinuxSll2, 2),
        ("dnscap-frags.pcap", LinkType::RawIp, 495),
        (
            "suricata-verify-dns-udp-eve-log-srv_input.pcap",
            LinkType::RawIp,
            2,
        ),
        (
            "suricata-verify-dns-incomplete_input.pcap",
            LinkType::BsdLoopback,
            18,
        ),
    ];
    for (name, link, n) in cases {
        let path = format!("{CAPTURES}/peers/{name}");
        let mut r = CaptureReader::open(Path::new(&path)).unwrap();
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{name}");
        assert_eq!(got.len(), n, "{name}");
        assert!(got.iter().all(|f| f.1 == link), "{name}");
    }
    // The big-endian one really is.
    let bytes = std::fs::read(format!("{CAPTURES}/peers/packetq-sample-bigendian.pcap"));
    assert_eq!(&bytes.unwrap()[0..4], &[0xa1, 0xb2, 0xc3, 0xd4]);
}

#[test]
fn every_tunnel_capture_reads_whole() {
    for name in [
        "elastic-iodine-tunnel.pcap",
        "dmachard-sods.pcap",
        "dmachard-dns2tcp.pcap",
        "dmachard-dnscat2.pcap",
        "dmachard-dnsextrator.pcap",
        "dmachard-iodine.pcap",
    ] {
        let path = format!("{CAPTURES}/{name}");
        let mut r = CaptureReader::open(Path::new(&path)).unwrap();
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{name}: {err:?}");
        assert!(got.iter().all(|f| f.1 == LinkType::Ethernet), "{name}");
        assert_eq!(
            r.offset(),
            std::fs::metadata(&path).unwrap().len(),
            "{name}"
        );
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "{name}: time order"
        );
        if name == "elastic-iodine-tunnel.pcap" {
            // README: 438 frames over 24.5 s.
            assert_eq!(got.len(), 438);
            let span = got.last().unwrap().0 - got[0].0;
            assert!((24 * NANOS_PER_SEC..25 * NANOS_PER_SEC).contains(&span));
        } else {
            assert!(!got.is_empty(), "{name}");
        }
    }
}

#[test]
fn reader_can_move_to_a_worker_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<CaptureReader>();
    let bytes = written(LinkType::Ethernet, &sample_frames());
    let r = reader(bytes).unwrap();
    let n = std::thread::spawn(move || {
        let mut r = r;
        drain(&mut r).0.len()
    });
    assert_eq!(n.join().unwrap(), 3);
}

#[test]
fn pcapng_interface_table_is_bounded() {
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    for _ in 0..MAX_INTERFACES {
        ng.idb(1, None, None);
    }
    ng.epb(MAX_INTERFACES as u32 - 1, 1, b"last");
    let at = ng.idb(1, None, None);
    let (got, err) = drain(&mut reader(ng.out).unwrap());
    assert_eq!(got.len(), 1);
    match err {
        Some(CaptureError::Malformed { offset, .. }) => assert_eq!(offset as usize, at),
        other => panic!("{other:?}"),
    }
}

/// A stream that hands out at most a few bytes per `read`, sometimes none with
/// `Interrupted`, as a pipe or a slow disk may.
struct Dribble {
    bytes: Vec<u8>,
    at: usize,
    calls: usize,
}

impl Read for Dribble {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 5 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = (self.calls % 7 + 1)
            .min(dst.len())
            .min(self.bytes.len() - self.at);
        dst[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn short_and_interrupted_reads_give_the_same_frames() {
    let classic_bytes = written(LinkType::Ethernet, &sample_frames());
    for bytes in [classic_bytes, pcapng_two_sections()] {
        let (want, err) = drain(&mut reader(bytes.clone()).unwrap());
        assert!(err.is_none());
        let dribble = Dribble {
            bytes: bytes.clone(),
            at: 0,
            calls: 0,
        };
        let mut r = CaptureReader::from_reader("dribble", dribble).unwrap();
        let (got, err) = drain(&mut r);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, want);
        assert_eq!(r.offset(), bytes.len() as u64);
    }
}

#[test]
fn a_read_error_is_an_io_error_naming_the_file() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
            let bytes = written(LinkType::Ethernet, &sample_frames());
            if self.0 >= bytes.len() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = (bytes.len() - self.0).min(dst.len()).min(30);
            dst[..n].copy_from_slice(&bytes[self.0..self.0 + n]);
            self.0 += n;
            Ok(n)
        }
    }
    let mut r = CaptureReader::from_reader("failing.pcap", Failing(0)).unwrap();
    let (got, err) = drain(&mut r);
    assert_eq!(got.len(), 3, "every frame before the error");
    match err {
        Some(e @ CaptureError::Io { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("failing.pcap") && text.contains("disk on fire"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocks_larger_than_the_buffer_are_skipped_unbuffered() {
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None, None);
    ng.epb(0, 1, b"before");
    // A name resolution block of 3 MiB: larger than anything the reader buffers.
    ng.block(4, &vec![0x55; 3 << 20]);
    ng.epb(0, 2, b"after");
    let total = ng.out.len() as u64;
    let mut r = reader(ng.out).unwrap();
    let (got, err) = drain(&mut r);
    assert!(err.is_none(), "{err:?}");
    let data: Vec<&[u8]> = got.iter().map(|f| f.2.as_slice()).collect();
    assert_eq!(data, [&b"before"[..], &b"after"[..]]);
    assert_eq!(r.offset(), total);
}

#[test]
fn missing_file_is_an_io_error() {
    assert!(matches!(
        CaptureReader::open(Path::new("/nonexistent/x.pcap")),
        Err(CaptureError::Io { .. })
    ));
}
