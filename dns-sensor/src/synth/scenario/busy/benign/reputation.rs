//! Endpoint security agents asking their vendors' clouds about the files they meet: a
//! hash for a name under the vendor's zone, answered with a tiny A record in 127/8 or
//! NXDOMAIN. Hundreds of endpoints, thousands of names, every one of them benign.
//!
//! Shaped after the vendors' public documentation:
//! - Team Cymru's Malware Hash Registry (hash.cymru.com, "DNS API"): the MD5 or SHA-1
//!   hex of a file, or a SHA-256 cut into two 32-character labels, under
//!   `hash.cymru.com`; a hash known as malware answers A 127.0.0.2, any other NXDOMAIN,
//!   and a TXT query of a known one gives `"<unix time> <AV hit %>"`.
//! - McAfee (Trellix) Global Threat Intelligence file reputation, formerly Artemis
//!   (knowledge base articles KB53735 and KB84084): the agent sends a DNS query holding
//!   a fingerprint of a suspicious file, one label of 26 lower-case letters and digits
//!   under `avqs.mcafee.com`, to the system's resolver, and reads the verdict from bits
//!   of an A record in 127/8.
//! - Sophos Live Protection (knowledge base article 111334, "SXL"): the agent sends "a
//!   specially crafted DNS query that includes generic information about the file and
//!   the detection features" to the `sophosxl.net` name servers. The article gives no
//!   layout; the one here (the file's SHA-256 in two hex labels, a features label and a
//!   protocol version) is a stand-in of the same size and spread.
//!
//! The files are what an office's endpoints run and download: most are the same popular
//! files (installers, browser updates, office add-ins) looked up again and again across
//! endpoints, a long tail is new. A software deployment to one department makes every
//! endpoint of it look up the same few new files within the hour.

use super::{Network, Reply, Truth};
use crate::synth::scenario::MINUTE;
use crate::synth::{mix64, rtype, txt_rdata};

/// The Malware Hash Registry's zone and its registered domain.
const MHR_ZONE: (&str, &str) = ("hash.cymru.com", "cymru.com");

/// Global Threat Intelligence's zone and registered domain.
const GTI_ZONE: (&str, &str) = ("avqs.mcafee.com", "mcafee.com");

/// Live Protection's zone, which is its registered domain.
const SXL_ZONE: &str = "sophosxl.net";

/// One endpoint in this many runs an open-source agent checking new executables
/// against the Malware Hash Registry (the IT and developer machines).
const MHR_ONE_IN: u32 = 5;

/// One endpoint in this many runs Sophos (the business unit that came with an
/// acquisition); the others run McAfee.
const SXL_ONE_IN: u32 = 3;

/// Look-ups a Malware Hash Registry agent sends an hour: files meeting its criteria
/// (new, unsigned, downloaded) less what its own cache answers.
const MHR_PER_HOUR: u64 = 3;
/// Look-ups a McAfee agent sends an hour (only files its heuristics find suspicious).
const GTI_PER_HOUR: u64 = 2;
/// Look-ups a Sophos agent sends an hour.
const SXL_PER_HOUR: u64 = 4;

/// Popular files each vendor's agents keep meeting (per-vendor pools: the hashes of the
/// same file differ between vendors' schemes).
const POPULAR_FILES: u64 = 400;

/// Share of look-ups, in percent, that are of a file no other endpoint has met.
const NEW_FILE_PERCENT: u64 = 15;

/// Files a software deployment brings.
const DEPLOYED_FILES: u64 = 12;
/// The deployment goes to one endpoint in this many (one department).
const DEPLOYMENT_ONE_IN: u32 = 10;

/// Which vendor a look-up goes to.
#[derive(Clone, Copy)]
enum Vendor {
    Mhr,
    Gti,
    Sxl,
}

/// The agents' look-ups over the whole window, and one deployment's.
pub fn reputation(net: &mut Network) {
    net.label(MHR_ZONE.1, "reputation", Truth::Benign);
    net.label(GTI_ZONE.1, "reputation", Truth::Benign);
    net.label(SXL_ZONE, "reputation", Truth::Benign);
    let endpoints = net.endpoints();
    for (vendor, one_in, phase, per_hour) in [
        (Vendor::Mhr, MHR_ONE_IN, 1, MHR_PER_HOUR),
        (Vendor::Sxl, SXL_ONE_IN, 0, SXL_PER_HOUR),
    ] {
        let agents = (endpoints / one_in).max(1);
        for _ in 0..u64::from(agents) * per_hour * net.hours() {
            let i = net.rng().below(u64::from(agents)) as u32 * one_in + phase;
            let file = pick_file(net, vendor);
            let ts = net.any_time();
            look_up(net, vendor, i, file, ts);
        }
    }
    // McAfee runs on every endpoint Sophos does not.
    let gti_agents = endpoints - endpoints / SXL_ONE_IN;
    for _ in 0..u64::from(gti_agents) * GTI_PER_HOUR * net.hours() {
        let i = loop {
            let i = net.rng().below(u64::from(endpoints)) as u32;
            if i % SXL_ONE_IN != 0 {
                break i;
            }
        };
        let file = pick_file(net, Vendor::Gti);
        let ts = net.any_time();
        look_up(net, Vendor::Gti, i, file, ts);
    }
    // The deployment: the same new files on every endpoint of one department, each
    // agent asking its own vendor as the installer unpacks them.
    let at = net.any_time();
    let batch = net.rng().next_u64();
    for i in (DEPLOYMENT_ONE_IN - 3..endpoints).step_by(DEPLOYMENT_ONE_IN as usize) {
        let vendor = if i % SXL_ONE_IN == 0 {
            Vendor::Sxl
        } else {
            Vendor::Gti
        };
        let arrives = net.time_near(at, 40 * MINUTE);
        for f in 0..DEPLOYED_FILES {
            let ts = net.time_near(arrives, 2 * MINUTE);
            look_up(net, vendor, i, File::new(mix64(batch ^ f)), ts);
        }
    }
}

/// A file an agent meets: its identity (every vendor hashes it its own way) and
/// whether it is in the long tail.
#[derive(Clone, Copy)]
struct File {
    id: u64,
    new: bool,
}

impl File {
    fn new(id: u64) -> Self {
        Self { id, new: true }
    }
}

/// A popular file (log-uniform over the pool: a few files take most look-ups), or a new
/// one.
fn pick_file(net: &mut Network, vendor: Vendor) -> File {
    if net.rng().below(100) < NEW_FILE_PERCENT {
        return File::new(net.rng().next_u64());
    }
    let u = (net.rng().next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let rank = ((POPULAR_FILES as f64 + 1.0).powf(u) - 1.0) as u64;
    let salt = match vendor {
        Vendor::Mhr => 0x3c3f,
        Vendor::Gti => 0x6771,
        Vendor::Sxl => 0x5a1e,
    };
    File {
        id: mix64(salt << 32 | rank.min(POPULAR_FILES - 1)),
        new: false,
    }
}

/// Endpoint `i`'s agent asks its vendor about `file` at `ts`.
fn look_up(net: &mut Network, vendor: Vendor, i: u32, file: File, ts: u64) {
    let client = net.endpoint(i);
    // Only new files can be malware: the popular ones are what everyone runs.
    let malware = file.new && net.rng().below(50) == 0;
    match vendor {
        Vendor::Mhr => {
            // The agent hashes a file one way: the kind follows from the file.
            let hash = match file.id % 10 {
                0..=4 => hex(file.id, 40),
                5..=8 => hex(file.id, 32),
                _ => format!("{}.{}", hex(file.id, 32), hex(!file.id, 32)),
            };
            let name = format!("{hash}.{}", MHR_ZONE.0);
            if malware {
                net.ask(
                    ts,
                    client,
                    name.as_bytes(),
                    rtype::A,
                    Reply::Records(&[(rtype::A, &[127, 0, 0, 2])]),
                );
                // A hit is worth the details: when it was seen, how many engines flag it.
                let seen = 1_760_000_000 + net.rng().below(7_000_000);
                let detail = txt_rdata(format!("{seen} {}", 5 + net.rng().below(90)).as_bytes());
                let at = net.time_near(ts + 50 * 1_000_000, 200 * 1_000_000);
                net.ask(
                    at,
                    client,
                    name.as_bytes(),
                    rtype::TXT,
                    Reply::Records(&[(rtype::TXT, &detail)]),
                );
            } else {
                net.ask(ts, client, name.as_bytes(), rtype::A, Reply::NxDomain);
            }
        }
        Vendor::Gti => {
            let name = format!("{}.{}", fingerprint(file.id), GTI_ZONE.0);
            // Every fingerprint gets an answer; the last octets carry the verdict.
            let code: [u8; 4] = if malware {
                [127, 0, 4, [1, 2, 4, 8][net.rng().below(4) as usize]]
            } else {
                [127, 0, 0, 1]
            };
            net.ask(
                ts,
                client,
                name.as_bytes(),
                rtype::A,
                Reply::Records(&[(rtype::A, &code)]),
            );
        }
        Vendor::Sxl => {
            let features = (mix64(file.id ^ 0xfea7) as u32) & 0x0fff_ffff;
            let name = format!(
                "{}.{}.{features:08x}.4.{SXL_ZONE}",
                hex(file.id, 32),
                hex(!file.id, 32)
            );
            // Known files get a verdict, malware its own; the long tail is unknown.
            let reply_code: Option<[u8; 4]> = if malware {
                Some([127, 0, 0, 4])
            } else if !file.new || net.rng().below(4) == 0 {
                Some([127, 0, 0, 1])
            } else {
                None
            };
            match reply_code {
                Some(code) => net.ask(
                    ts,
                    client,
                    name.as_bytes(),
                    rtype::A,
                    Reply::Records(&[(rtype::A, &code)]),
                ),
                None => net.ask(ts, client, name.as_bytes(), rtype::A, Reply::NxDomain),
            }
        }
    }
}

/// `chars` lower-case hex digits of a digest of `id`.
fn hex(id: u64, chars: usize) -> String {
    (0..chars.div_ceil(16))
        .map(|k| format!("{:016x}", mix64(id.wrapping_add(k as u64))))
        .collect::<String>()[..chars]
        .to_owned()
}

/// A 26-character fingerprint label of lower-case letters and digits.
fn fingerprint(id: u64) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let (mut a, mut b) = (mix64(id ^ 0xa17e), mix64(id ^ 0x9ec5));
    (0..26)
        .map(|k| {
            let c = if k < 13 { &mut a } else { &mut b };
            let digit = ALPHABET[(*c % 36) as usize] as char;
            *c /= 36;
            digit
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;
    use std::net::IpAddr;

    fn endpoint_index(client: IpAddr) -> u32 {
        match client {
            IpAddr::V4(a) => {
                let [_, _, c, d] = a.octets();
                u32::from(c) * 250 + u32::from(d) - 1
            }
            IpAddr::V6(_) => panic!("endpoints are IPv4"),
        }
    }

    #[test]
    fn each_vendor_is_asked_by_its_own_agents_only() {
        let mut net = Network::new(21, EPOCH, 2 * HOUR, 600);
        reputation(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        for (zone, agent) in [
            (MHR_ZONE.0, (|i| i % MHR_ONE_IN == 1) as fn(u32) -> bool),
            (SXL_ZONE, |i| i % SXL_ONE_IN == 0),
            (GTI_ZONE.0, |i| i % SXL_ONE_IN != 0),
        ] {
            let seen = under(&all, zone);
            assert!(!seen.is_empty(), "{zone}");
            assert!(
                seen.iter().all(|e| agent(endpoint_index(e.client))),
                "{zone}"
            );
            let clients: HashSet<_> = seen.iter().map(|e| e.client).collect();
            assert!(clients.len() >= 100, "{zone}: {} agents", clients.len());
        }
        let sxl = under(&all, SXL_ZONE).len() as u64;
        // 200 Sophos agents at four an hour, and the 20 of the deployment's 60 endpoints
        // that run Sophos.
        assert_eq!(sxl, 200 * SXL_PER_HOUR * 2 + 20 * DEPLOYED_FILES);
    }

    #[test]
    fn hash_registry_names_are_hex_digests_mostly_unknown() {
        let mut net = Network::new(22, EPOCH, 3 * HOUR, 1_000);
        reputation(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let mhr = under(&all, MHR_ZONE.0);
        let a: Vec<_> = mhr.iter().filter(|e| e.qtype == rtype::A).collect();
        assert!(a.len() as u64 >= u64::from(1_000 / MHR_ONE_IN) * MHR_PER_HOUR * 3);
        for e in &a {
            let labels: Vec<&str> = e
                .name
                .trim_end_matches(".hash.cymru.com")
                .split('.')
                .collect();
            let lens: Vec<usize> = labels.iter().map(|l| l.len()).collect();
            assert!(matches!(lens[..], [32] | [40] | [32, 32]), "{}", e.name);
            assert!(labels
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_hexdigit())));
            match e.rcode {
                Some(0) => assert_eq!(e.response_len, Some(e.query_len + 16), "one A"),
                Some(3) => assert_eq!(e.answers, 0),
                other => panic!("rcode {other:?}"),
            }
        }
        let listed = a.iter().filter(|e| e.rcode == Some(0)).count();
        assert!(
            listed > 0 && listed * 100 < a.len(),
            "{listed} of {} listed",
            a.len()
        );
        let txt = mhr.iter().filter(|e| e.qtype == rtype::TXT).count();
        assert_eq!(txt, listed, "every hit is followed by its details");
    }

    #[test]
    fn popular_files_repeat_across_endpoints_and_a_tail_is_new() {
        let mut net = Network::new(23, EPOCH, 4 * HOUR, 2_000);
        reputation(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        for zone in [MHR_ZONE.0, GTI_ZONE.0, SXL_ZONE] {
            let seen = under(&all, zone);
            let unique: HashSet<&str> = seen.iter().map(|e| e.name.as_str()).collect();
            assert!(unique.len() > 500, "{zone}: {} names", unique.len());
            assert!(unique.len() * 3 < seen.len(), "{zone}: names repeat");
            // The most asked name comes from many endpoints.
            let top = unique
                .iter()
                .max_by_key(|n| seen.iter().filter(|e| e.name == **n).count())
                .copied()
                .unwrap_or_default();
            let askers: HashSet<_> = seen
                .iter()
                .filter(|e| e.name == top)
                .map(|e| e.client)
                .collect();
            assert!(
                askers.len() > 20,
                "{zone}: {top} from {} endpoints",
                askers.len()
            );
        }
    }

    #[test]
    fn mcafee_answers_every_fingerprint_and_sophos_labels_hold_a_digest() {
        let mut net = Network::new(24, EPOCH, HOUR, 300);
        reputation(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        for e in under(&all, GTI_ZONE.0) {
            let label = e.name.split('.').next().unwrap_or_default();
            assert_eq!(label.len(), 26, "{}", e.name);
            assert!(label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
            assert_eq!((e.rcode, e.answers), (Some(0), 1));
        }
        let sxl = under(&all, SXL_ZONE);
        for e in &sxl {
            let labels: Vec<&str> = e.name.split('.').collect();
            assert_eq!(labels.len(), 6, "{}", e.name);
            assert_eq!(
                (labels[0].len(), labels[1].len(), labels[2].len()),
                (32, 32, 8)
            );
        }
        assert!(sxl.iter().any(|e| e.rcode == Some(3)) && sxl.iter().any(|e| e.rcode == Some(0)));
    }

    #[test]
    fn digests_are_as_long_as_asked() {
        assert_eq!(hex(1, 40).len(), 40);
        assert_ne!(hex(1, 32), hex(2, 32));
        assert!(hex(1, 40).starts_with(&hex(1, 32)));
        assert_ne!(fingerprint(1), fingerprint(2));
    }
}
