//! Generated tunnels of the classic tools, each on one endpoint (DNSExfiltrator on two)
//! under a registered domain of its own, shaped after the tools' documentation and the
//! real captures of `../shared/captures/` (`dmachard-*.pcap`, `elastic-iodine-tunnel.pcap`).
//!
//! - iodine (its `doc/proto_00000502.txt`): every query NULL, the first byte a command
//!   (`v` version, `l` login, `i` address, `z` case check, `s` codec switch, `o`
//!   options, `r`/`y` fragment-size probes, `n` fragment size, `p` ping) or, for data,
//!   the user id as one hex digit and a 4-character header in iodine's Base32 (`a`-`z`,
//!   `0`-`5`); the upstream data after it in Base32 or, once the codec switch took,
//!   Base128 (raw bytes 0xBC to 0xFD among the letters and digits); the downstream in
//!   NULL answers of up to the negotiated fragment size (1 130 bytes here). A 2-byte
//!   cache-miss counter makes every name unique.
//! - dns2tcp: TXT queries of Base64 labels (`+` and `/` included) under the resource
//!   domain, `=auth` and `=connect` labels during the handshake; TXT answers of Base64.
//! - sods (Dan Kaminsky's DNS shell): upstream as A queries of standard Base32 in three
//!   labels, `<nonce>-<bytes sent>.id-<session>.up.`, answered `0.0.0.x`; downstream
//!   as CNAME queries `<bytes received>-<nonce>.id-<session>.down.`, answered by a
//!   CNAME of upper-case Base32.
//! - DNSExfiltrator (Arno0x0x): TXT, `init.<Base32 of "name|chunks">.base64.` (or
//!   `.base32.`) answered `OK`, then `<chunk number>.<data in labels of 63>.`, Base64url
//!   by default, Base32 with `-b32`, each answered by its chunk number.
//! - dnscat2 (its `doc/protocol.md`): each packet hex-encoded in labels under the
//!   domain, the query type drawn from TXT, MX and CNAME, the answer the server's packet
//!   hex-encoded the same way (a TXT string, or a name under the domain); the client
//!   polls once a second.

use super::shape::{
    between, encode, jittered, push_labels, random_bytes, room, session, ticks, Activity, BASE32,
    BASE32_UPPER, BASE64, HEX, MAX_NAME,
};
use super::{Network, Reply, Truth};
use crate::synth::scenario::{MINUTE, SECOND};
use crate::synth::{name_rdata, rtype, txt_rdata};
use crate::Nanos;

/// RFC 4648 Base64url (DNSExfiltrator's default).
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// iodine's Base32: the letters and `0`-`5`, so `6`-`9` never appear.
const IODINE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";
/// iodine's Base128: letters of both cases and digits, then the 66 bytes 0xBC-0xFD,
/// which resolvers pass through unchanged.
const IODINE128: [u8; 128] = {
    let ascii = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        table[i] = if i < 62 {
            ascii[i]
        } else {
            0xbc + (i - 62) as u8
        };
        i += 1;
    }
    table
};

/// iodine with Base128 upstream: the registered domain and the delegated zone.
const IODINE_FAST: (&str, &str) = ("nordvik-hosting.com", "t1.nordvik-hosting.com");
/// iodine held to Base32 (a resolver on its path mangles 8-bit bytes).
const IODINE_SLOW: (&str, &str) = ("fastmirror-updates.net", "x.fastmirror-updates.net");
/// dns2tcp's resource domain.
const DNS2TCP: (&str, &str) = ("kelpie-systems.xyz", "d2.kelpie-systems.xyz");
/// sods' domain.
const SODS: (&str, &str) = ("brightwave-analytics.com", "tun.brightwave-analytics.com");
/// DNSExfiltrator moving an archive (Base64url, loud).
const EXFILTRATOR_BULK: &str = "oakridge-backup.net";
/// DNSExfiltrator moving a small document slowly (Base32, throttled: quiet).
const EXFILTRATOR_SLOW: &str = "quietharbor.xyz";
/// dnscat2's domain.
const DNSCAT2: &str = "sunpeak-media.com";

/// iodine's downstream fragment size after the probes.
const IODINE_FRAGMENT: usize = 1130;
/// Bytes the slow DNSExfiltrator sends: a 12 KB document, about 80 chunks.
const SLOW_FILE_BYTES: usize = 12_000;
/// Its throttle between chunks (`-t`), before jitter.
const SLOW_THROTTLE: Nanos = 60 * SECOND;

/// Every generated tool tunnel, each run once over a part of the window.
pub fn tools(net: &mut Network) {
    iodine(net, IODINE_FAST, true, 50 * MINUTE);
    iodine(net, IODINE_SLOW, false, 3 * 60 * MINUTE);
    dns2tcp(net);
    sods(net);
    exfiltrator(net, EXFILTRATOR_BULK, false, 600_000, 300_000_000);
    exfiltrator(net, EXFILTRATOR_SLOW, true, SLOW_FILE_BYTES, SLOW_THROTTLE);
    dnscat2(net);
}

// ---------------------------------------------------------------------------
// iodine
// ---------------------------------------------------------------------------

/// An iodine session of about `len` from one endpoint under `zone`: the handshake, then
/// pings and data, Base128 upstream when `fast` (the codec switch accepted), Base32 not.
fn iodine(net: &mut Network, (domain, zone): (&str, &str), fast: bool, len: Nanos) {
    net.label(domain, "iodine", Truth::Tunnel);
    let client = net.any_endpoint();
    let (start, len) = session(net, len);
    let user = net.rng().below(16) as usize;
    let mut cmc = net.rng().next_u64() as u16;
    let mut ts = start;
    // The handshake: command letter, Base32 of its fields and the counter, one after
    // the other as fast as the answers come.
    let handshake: [(u8, usize, usize); 8] = [
        (b'v', 4, 9),
        (b'l', 17, 25),
        (b'i', 1, 5),
        (b'z', 30, 40),
        (b'z', 30, 40),
        (b's', 1, 7),
        (b'o', 1, 4),
        (b'n', 2, 4),
    ];
    for (command, fields, answer) in handshake {
        cmc = cmc.wrapping_add(1);
        let mut data = random_bytes(net, fields);
        data.extend_from_slice(&cmc.to_be_bytes());
        let mut name = vec![command];
        name.extend(encode(&data, IODINE32));
        name.push(b'.');
        name.extend_from_slice(zone.as_bytes());
        let rdata = random_bytes(net, answer);
        net.ask(
            ts,
            client,
            &name,
            rtype::NULL,
            Reply::Records(&[(rtype::NULL, &rdata)]),
        );
        ts += between(net, 2, 30) * 1_000_000;
    }
    // Fragment-size probes: long names asking for answers of a given size; the too big
    // ones are lost on the way.
    for size in [1434usize, 1258, 1130, 1130] {
        cmc = cmc.wrapping_add(1);
        let mut name = vec![if fast { b'r' } else { b'y' }];
        let probe = random_bytes(net, room(zone, 2) * 5 / 8 - 1);
        let encoded = encode(&probe, IODINE32);
        // The command letter leads the first label.
        let (head, rest) = encoded.split_at(62);
        name.extend_from_slice(head);
        name.push(b'.');
        push_labels(&mut name, rest, 63);
        name.extend_from_slice(zone.as_bytes());
        if size > IODINE_FRAGMENT {
            net.ask(ts, client, &name, rtype::NULL, Reply::Unanswered);
            ts += SECOND;
        } else {
            let rdata = random_bytes(net, size);
            net.ask(
                ts,
                client,
                &name,
                rtype::NULL,
                Reply::Records(&[(rtype::NULL, &rdata)]),
            );
            ts += 20_000_000;
        }
    }
    let activity = Activity {
        // Lazy mode: the server holds the one pending query up to its 4 s timeout.
        idle: 4 * SECOND,
        transfers: if fast { 6 } else { 14 },
        queries: if fast { (200, 700) } else { (20, 200) },
        gap: 40_000_000,
    };
    let (alphabet, bits): (&[u8], usize) = if fast { (&IODINE128, 7) } else { (IODINE32, 5) };
    let after = ts.saturating_sub(start);
    for tick in ticks(net, ts, len.saturating_sub(after), &activity) {
        cmc = cmc.wrapping_add(1);
        let mut name = Vec::with_capacity(MAX_NAME);
        if tick.busy {
            // Data: the user id, the header (sequence, fragment, downstream ack, and
            // the counter), then as much upstream as the transfer has for this query.
            name.push(HEX[user]);
            let header = [
                net.rng().next_u64() as u8,
                net.rng().next_u64() as u8,
                cmc as u8,
            ];
            name.extend(encode(&header, IODINE32).into_iter().take(4));
            // One character spare for the header label's own dot, and one for the last
            // character's padding bits.
            let chars = room(zone, 5 + 2) - 1;
            let upstream = if net.rng().below(3) == 0 {
                chars * bits / 8
            } else {
                between(net, 8, 60) as usize
            };
            let encoded = encode(&random_bytes(net, upstream), alphabet);
            // The first label continues the header; the rest are cut at 63.
            let (head, rest) = encoded.split_at(encoded.len().min(63 - 5));
            name.extend_from_slice(head);
            name.push(b'.');
            push_labels(&mut name, rest, 63);
        } else {
            name.push(b'p');
            let ping = [
                user as u8,
                net.rng().next_u64() as u8,
                (cmc >> 8) as u8,
                cmc as u8,
            ];
            name.extend(encode(&ping, IODINE32));
            name.push(b'.');
        }
        name.extend_from_slice(zone.as_bytes());
        let down = if tick.busy && net.rng().below(4) != 0 {
            IODINE_FRAGMENT
        } else {
            2 + net.rng().below(120) as usize
        };
        let rdata = random_bytes(net, down);
        net.ask(
            tick.ts,
            client,
            &name,
            rtype::NULL,
            Reply::Records(&[(rtype::NULL, &rdata)]),
        );
    }
}

// ---------------------------------------------------------------------------
// dns2tcp
// ---------------------------------------------------------------------------

/// A dns2tcp session carrying SSH: the `=auth` and `=connect` exchanges, then data and
/// polls, every query TXT and every answer Base64 text.
fn dns2tcp(net: &mut Network) {
    let (domain, zone) = DNS2TCP;
    net.label(domain, "dns2tcp", Truth::Tunnel);
    let client = net.any_endpoint();
    let (start, len) = session(net, 70 * MINUTE);
    let session_id = net.rng().next_u64() as u16;
    let mut seq = 0u16;
    let mut ts = start;
    for resource in ["=auth", "=auth", "=connect"] {
        let size = between(net, 7, 45) as usize;
        let mut name = encode(&random_bytes(net, size), BASE64);
        name.push(b'.');
        name.extend_from_slice(resource.as_bytes());
        name.push(b'.');
        name.extend_from_slice(zone.as_bytes());
        let text = encode(&random_bytes(net, 8), BASE64);
        net.ask(
            ts,
            client,
            &name,
            rtype::TXT,
            Reply::Records(&[(rtype::TXT, &txt_rdata(&text))]),
        );
        ts += between(net, 3, 10) * 1_000_000;
    }
    let activity = Activity {
        idle: 2 * SECOND,
        transfers: 25,
        queries: (10, 150),
        gap: 15_000_000,
    };
    for tick in ticks(net, ts, len, &activity) {
        seq = seq.wrapping_add(1);
        // A 5-byte header (session, sequence, acknowledgement) before any data.
        let mut packet = session_id.to_be_bytes().to_vec();
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.push(net.rng().next_u64() as u8);
        if tick.busy {
            let fits = room(zone, 0) * 6 / 8 - packet.len();
            let bytes = if net.rng().below(2) == 0 {
                fits
            } else {
                between(net, 20, 120) as usize
            };
            packet.extend(random_bytes(net, bytes.min(fits)));
        }
        let mut name = Vec::with_capacity(MAX_NAME);
        push_labels(&mut name, &encode(&packet, BASE64), 63);
        name.extend_from_slice(zone.as_bytes());
        let down = if tick.busy { between(net, 20, 300) } else { 8 } as usize;
        let text = encode(&random_bytes(net, down), BASE64);
        net.ask(
            tick.ts,
            client,
            &name,
            rtype::TXT,
            Reply::Records(&[(rtype::TXT, &txt_rdata(&text))]),
        );
    }
}

// ---------------------------------------------------------------------------
// sods
// ---------------------------------------------------------------------------

/// Bytes a sods upstream query carries: three Base32 labels of about 60 characters.
const SODS_UP: usize = 110;

/// A sods shell session: A queries upstream, CNAME queries downstream, both counting
/// bytes in their names.
fn sods(net: &mut Network) {
    let (domain, zone) = SODS;
    net.label(domain, "sods", Truth::Tunnel);
    let client = net.any_endpoint();
    let (start, len) = session(net, 40 * MINUTE);
    let id = between(net, 1000, 9999);
    let (mut sent, mut received) = (0u64, 0u64);
    let activity = Activity {
        idle: SECOND,
        transfers: 20,
        queries: (10, 120),
        gap: 20_000_000,
    };
    for tick in ticks(net, start, len, &activity) {
        if tick.busy {
            let bytes = if net.rng().below(3) == 0 {
                SODS_UP
            } else {
                between(net, 10, 60) as usize
            };
            let mut name = Vec::with_capacity(MAX_NAME);
            push_labels(&mut name, &encode(&random_bytes(net, bytes), BASE32), 62);
            let nonce = net.rng().below(65_536);
            name.extend(format!("{nonce}-{sent}.id-{id}.up.{zone}").bytes());
            sent += bytes as u64;
            let ack = [0, 0, 0, (sent / SODS_UP as u64) as u8];
            net.ask(
                tick.ts,
                client,
                &name,
                rtype::A,
                Reply::Records(&[(rtype::A, &ack)]),
            );
        }
        // Downstream is polled after every upstream query and when idle.
        let nonce = net.rng().below(65_536);
        let name = format!("{received}-{nonce}.id-{id}.down.{zone}");
        let at = tick.ts + 1_000_000;
        if tick.busy || net.rng().below(8) == 0 {
            let mut target = Vec::new();
            push_labels(
                &mut target,
                &encode(&random_bytes(net, SODS_UP), BASE32_UPPER),
                62,
            );
            let target = String::from_utf8_lossy(&target).into_owned();
            received += SODS_UP as u64;
            let rdata = name_rdata(&target);
            net.ask(
                at,
                client,
                name.as_bytes(),
                rtype::CNAME,
                Reply::Records(&[(rtype::CNAME, &rdata)]),
            );
        } else {
            // Nothing to send: a CNAME to the root.
            let rdata = name_rdata(".");
            net.ask(
                at,
                client,
                name.as_bytes(),
                rtype::CNAME,
                Reply::Records(&[(rtype::CNAME, &rdata)]),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// DNSExfiltrator
// ---------------------------------------------------------------------------

/// DNSExfiltrator sending a file of `bytes` under `domain`, Base32 when `base32`, one
/// chunk every `throttle` or so, from an endpoint of its own.
fn exfiltrator(net: &mut Network, domain: &str, base32: bool, bytes: usize, throttle: Nanos) {
    net.label(domain, "dnsexfiltrator", Truth::Tunnel);
    let client = net.any_endpoint();
    let (alphabet, bits, coding): (&[u8], usize, &str) = if base32 {
        (BASE32, 5, "base32")
    } else {
        (BASE64URL, 6, "base64")
    };
    // Four labels of data after the chunk number (up to 6 digits and its dot).
    let chars = room(domain, 7).min(4 * 63);
    let per_chunk = chars * bits / 8;
    let chunks = bytes.div_ceil(per_chunk);
    let (mut ts, _) = session(net, chunks as Nanos * throttle * 3 / 2 + MINUTE);
    let file = format!(
        "{}.zip|{chunks}",
        ["backup", "q3-report", "hr-export", "keys"][net.rng().below(4) as usize]
    );
    let mut init = b"init.".to_vec();
    init.extend(encode(file.as_bytes(), BASE32_UPPER));
    init.extend(format!(".{coding}.{domain}").bytes());
    net.ask(
        ts,
        client,
        &init,
        rtype::TXT,
        Reply::Records(&[(rtype::TXT, &txt_rdata(b"OK"))]),
    );
    let end = net.start() + net.duration();
    for chunk in 0..chunks {
        ts += jittered(net, throttle, 50);
        if ts >= end {
            break;
        }
        let left = bytes - chunk * per_chunk;
        let data = random_bytes(net, left.min(per_chunk));
        let mut name = format!("{chunk}.").into_bytes();
        push_labels(&mut name, &encode(&data, alphabet), 63);
        name.extend_from_slice(domain.as_bytes());
        let number = chunk.to_string();
        net.ask(
            ts,
            client,
            &name,
            rtype::TXT,
            Reply::Records(&[(rtype::TXT, &txt_rdata(number.as_bytes()))]),
        );
    }
}

// ---------------------------------------------------------------------------
// dnscat2
// ---------------------------------------------------------------------------

/// A dnscat2 command session: MSG packets (packet id, type 1, session, sequence and
/// acknowledgement, then data) hex-encoded, polled once a second.
fn dnscat2(net: &mut Network) {
    let domain = DNSCAT2;
    net.label(domain, "dnscat2", Truth::Tunnel);
    let client = net.any_endpoint();
    let (start, len) = session(net, 100 * MINUTE);
    let session_id = net.rng().next_u64() as u16;
    let (mut seq, mut ack) = (net.rng().next_u64() as u16, net.rng().next_u64() as u16);
    let activity = Activity {
        idle: SECOND,
        transfers: 30,
        queries: (5, 60),
        gap: 150_000_000,
    };
    for tick in ticks(net, start, len, &activity) {
        // Up to 97 bytes a packet: 194 hex characters, four labels, under 253.
        let up = if tick.busy {
            between(net, 8, 80) as usize
        } else {
            0
        };
        let down = if tick.busy {
            between(net, 0, 90) as usize
        } else {
            0
        };
        let mut packet = (net.rng().next_u64() as u16).to_be_bytes().to_vec();
        packet.push(1);
        packet.extend_from_slice(&session_id.to_be_bytes());
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ack.to_be_bytes());
        // The encrypted session's 8-byte header, then the data.
        packet.extend(random_bytes(net, 8 + up));
        seq = seq.wrapping_add(up as u16);
        ack = ack.wrapping_add(down as u16);
        let mut name = Vec::with_capacity(MAX_NAME);
        push_labels(&mut name, &encode(&packet, HEX), 62);
        name.extend_from_slice(domain.as_bytes());
        let mut reply = (net.rng().next_u64() as u16).to_be_bytes().to_vec();
        reply.push(1);
        reply.extend(random_bytes(net, 14 + down));
        let encoded = encode(&reply, HEX);
        let qtype = [rtype::TXT, rtype::MX, rtype::CNAME][net.rng().below(3) as usize];
        let rdata = if qtype == rtype::TXT {
            txt_rdata(&encoded)
        } else {
            let mut target = Vec::new();
            push_labels(&mut target, &encoded, 62);
            target.extend_from_slice(domain.as_bytes());
            let target = name_rdata(&String::from_utf8_lossy(&target));
            if qtype == rtype::MX {
                [&10u16.to_be_bytes()[..], &target[..]].concat()
            } else {
                target
            }
        };
        net.ask(
            tick.ts,
            client,
            &name,
            qtype,
            Reply::Records(&[(qtype, &rdata)]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under, Exchange};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;

    fn all(seed: u64, hours: u64) -> Vec<Exchange> {
        let mut net = Network::new(seed, EPOCH, hours * HOUR, 300);
        tools(&mut net);
        let labels = net.finish();
        for domain in [
            IODINE_FAST.0,
            IODINE_SLOW.0,
            DNS2TCP.0,
            SODS.0,
            EXFILTRATOR_BULK,
            DNSCAT2,
        ] {
            let label = labels
                .label(domain)
                .expect("every tool's domain is labelled");
            assert_eq!(label.truth, Truth::Tunnel);
        }
        exchanges(&labels.traffic.into_sorted())
    }

    fn unique(of: &[&Exchange]) -> usize {
        of.iter().map(|e| &e.name).collect::<HashSet<_>>().len()
    }

    fn one_client(of: &[&Exchange]) {
        let clients: HashSet<_> = of.iter().map(|e| e.client).collect();
        assert_eq!(clients.len(), 1, "one endpoint runs the tool");
    }

    #[test]
    fn iodine_base128_is_seven_bits_a_character_ending_in_high_bytes() {
        assert_eq!(encode(&[0xff; 7], &IODINE128), vec![0xfd; 8]);
        assert_eq!(encode(&[0; 7], &IODINE128), vec![b'a'; 8]);
    }

    #[test]
    fn iodine_asks_null_with_unique_names_and_big_answers() {
        let all = all(11, 6);
        let fast = under(&all, IODINE_FAST.1);
        one_client(&fast);
        assert!(fast.iter().all(|e| e.qtype == rtype::NULL));
        assert_eq!(unique(&fast), fast.len(), "the cache-miss counter");
        assert!(fast.len() > 1000, "{}", fast.len());
        let data: Vec<_> = fast
            .iter()
            .filter(|e| HEX.contains(&e.name.as_bytes()[0]))
            .collect();
        assert!(data.len() > 500, "data queries: {}", data.len());
        assert!(
            data.iter().all(|e| e.name.contains('\u{fffd}')),
            "Base128 carries high bytes"
        );
        let big = fast
            .iter()
            .filter(|e| e.response_len.is_some_and(|n| n > IODINE_FRAGMENT))
            .count();
        assert!(big * 3 > data.len(), "downstream in full fragments: {big}");
        assert!(fast.iter().any(|e| e.rcode.is_none()), "a lost probe");
        let mut pings = fast.iter().filter(|e| e.name.starts_with('p'));
        assert!(pings.clone().count() > 100);
        assert!(
            pings.all(|e| e.name.len() == 9 + IODINE_FAST.1.len()),
            "p and 7 characters"
        );

        let slow = under(&all, IODINE_SLOW.1);
        one_client(&slow);
        assert!(slow.len() > 2000, "three hours of pings: {}", slow.len());
        for e in &slow {
            // After the first byte: the user id's hex digit on data queries.
            let data = &e.name[1..e.name.len() - IODINE_SLOW.1.len() - 1];
            assert!(
                data.bytes().all(|b| b == b'.' || IODINE32.contains(&b)),
                "{}",
                e.name
            );
            assert!(data.split('.').all(|l| l.len() <= 63));
        }
    }

    #[test]
    fn dns2tcp_and_sods_have_their_shapes() {
        let all = all(12, 3);
        let d2 = under(&all, DNS2TCP.1);
        one_client(&d2);
        assert!(d2.iter().all(|e| e.qtype == rtype::TXT && e.answers == 1));
        assert_eq!(d2.iter().filter(|e| e.name.contains(".=auth.")).count(), 2);
        // Base64 is case-sensitive and the sensor's names are lower-cased: a few
        // sequence numbers meet.
        let (n, u) = (d2.len(), unique(&d2));
        assert!(n > 1000 && u * 100 > n * 95, "{u} unique of {n}");
        assert!(
            d2.iter()
                .any(|e| e.name.contains('+') || e.name.contains('/')),
            "Base64's own characters"
        );

        let sods = under(&all, SODS.1);
        one_client(&sods);
        let up: Vec<_> = sods.iter().filter(|e| e.name.contains(".up.")).collect();
        let down: Vec<_> = sods.iter().filter(|e| e.name.contains(".down.")).collect();
        assert_eq!(up.len() + down.len(), sods.len());
        assert!(
            up.iter().all(|e| e.qtype == rtype::A) && down.iter().all(|e| e.qtype == rtype::CNAME)
        );
        assert!(down.len() > up.len() && up.len() > 200);
        for e in &up {
            let labels: Vec<_> = e.name.split('.').collect();
            assert!(labels[0].len() <= 62 && labels[0].bytes().all(|b| BASE32.contains(&b)));
            assert!(labels.iter().any(|l| l.starts_with("id-")));
        }
        // The byte counters only grow.
        let sent: Vec<u64> = up
            .iter()
            .map(|e| {
                e.name
                    .split(".id-")
                    .next()
                    .unwrap()
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(sent.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn exfiltrator_announces_the_file_then_counts_its_chunks() {
        let all = all(13, 6);
        let bulk = under(&all, EXFILTRATOR_BULK);
        one_client(&bulk);
        assert!(bulk[0].name.starts_with("init.") && bulk[0].name.contains(".base64."));
        for (i, e) in bulk[1..].iter().enumerate() {
            assert_eq!(e.name.split('.').next(), Some(i.to_string().as_str()));
            assert_eq!(e.qtype, rtype::TXT);
        }
        assert!(bulk.len() > 2000, "{}", bulk.len());
        let slow = under(&all, EXFILTRATOR_SLOW);
        one_client(&slow);
        assert!(slow[0].name.contains(".base32."));
        assert!(
            (40..190).contains(&unique(&slow)),
            "quiet: {}",
            unique(&slow)
        );
        let span = slow.last().unwrap().ts - slow[0].ts;
        assert!(span > HOUR, "throttled: {span}");
    }

    #[test]
    fn dnscat2_hex_names_mixed_types_once_a_second() {
        let all = all(14, 3);
        let cat = under(&all, DNSCAT2);
        one_client(&cat);
        let types: HashSet<_> = cat.iter().map(|e| e.qtype).collect();
        assert_eq!(types, HashSet::from([rtype::TXT, rtype::MX, rtype::CNAME]));
        for e in &cat {
            let data = &e.name[..e.name.len() - DNSCAT2.len() - 1];
            assert!(
                data.bytes().all(|b| b == b'.' || HEX.contains(&b)),
                "{}",
                e.name
            );
            // Packet id, type 1 (MSG), session id: the session id is the same in all.
            assert_eq!(&data[4..6], "01");
            assert_eq!(&data[6..10], &cat[0].name[6..10]);
        }
        assert!(
            cat.len() > 3000 && unique(&cat) == cat.len(),
            "{}",
            cat.len()
        );
    }
}
