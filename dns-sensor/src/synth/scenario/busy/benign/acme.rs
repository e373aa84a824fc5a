//! ACME DNS-01 renewals of the company's public certificates: the ACME client publishes
//! a TXT record through its DNS provider's API, then polls the name through the
//! resolvers until the record shows, before it asks the CA to validate. Bursts of TXT
//! look-ups a few times a day, tens of names: a benign domain well under any threshold.
//!
//! Shaped after RFC 8555 section 8.4: the challenge name is `_acme-challenge.` before
//! the name being validated (for a wildcard, before the base name, so that a wildcard
//! and its base on one certificate put two records on one name), and the record's value
//! is the base64url SHA-256 digest of the key authorization: 43 characters. A poll
//! before the record has reached the provider's servers gets NXDOMAIN. The certificates
//! are short-lived (six days, as Let's Encrypt's short-lived profile issues) and
//! renewed at about half their life by a client that runs every few hours and renews
//! what is due in one burst.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{Network, Reply, Truth};
use crate::synth::scenario::{HOUR, SECOND};
use crate::synth::{rtype, txt_rdata};

/// The company's public service domain (apart from the directory's AD domain, so that
/// each service's names count on their own).
const PUBLIC_DOMAIN: &str = "northwind-apps.com";

/// Certificates per thousand endpoints: the bigger the company, the more services.
const CERTIFICATES_PER_1000: u32 = 150;

/// How often the ACME client runs.
const RUN_EVERY: u64 = 4 * HOUR;
/// How often a certificate comes due: half of a six-day certificate's life.
const RENEW_EVERY: u64 = 72 * HOUR;

/// Time between polls of one challenge name.
const POLL_EVERY: u64 = 5 * SECOND;
/// The most polls answered NXDOMAIN before the record shows.
const MAX_UNPROPAGATED: u64 = 6;

/// Host names of the company's public services, combined with a number per
/// certificate.
const SERVICES: &[&str] = &[
    "portal", "api", "shop", "status", "docs", "login", "files", "cdn",
];

/// The ACME client's polls over the whole window.
pub fn acme(net: &mut Network) {
    net.label(PUBLIC_DOMAIN, "acme", Truth::Benign);
    let client = Network::server(5, 10);
    let certificates = (net.endpoints() * CERTIFICATES_PER_1000 / 1_000).max(1);
    let runs_per_cycle = RENEW_EVERY / RUN_EVERY;
    let end = net.start() + net.duration();
    // The client's timer is set at install, not at the window: any phase, but at least
    // one run inside even a short window.
    let first_run = RUN_EVERY.min(net.duration());
    let phase = net.rng().below(first_run);
    let cycle_offset = net.rng().below(runs_per_cycle);
    let mut run_at = net.start() + phase;
    let mut run = cycle_offset;
    while run_at < end {
        // The run's burst: every certificate due, its names one after another as the
        // provider's API confirms each record.
        let mut ts = run_at + net.rng().below(30 * SECOND);
        for cert in 0..certificates {
            if (u64::from(cert) + run) % runs_per_cycle != 0 {
                continue;
            }
            for name in challenge_names(cert) {
                let wildcard = name == format!("_acme-challenge.{PUBLIC_DOMAIN}");
                poll(net, client, ts, &name, wildcard);
                ts += 2 * SECOND + net.rng().below(3 * SECOND);
            }
        }
        run_at += RUN_EVERY;
        run += 1;
    }
}

/// Certificate `cert`'s challenge names: one to three services (numbered per
/// certificate), and every twentieth a wildcard with its base.
fn challenge_names(cert: u32) -> Vec<String> {
    if cert % 20 == 0 {
        return vec![format!("_acme-challenge.{PUBLIC_DOMAIN}")];
    }
    let sans = 1 + cert % 3;
    (0..sans)
        .map(|k| {
            let service = SERVICES[((cert + k) % SERVICES.len() as u32) as usize];
            format!(
                "_acme-challenge.{service}{}.{PUBLIC_DOMAIN}",
                cert / SERVICES.len() as u32
            )
        })
        .collect()
}

/// Polls `name` until its record shows: NXDOMAIN first, then the TXT (two values for a
/// wildcard with its base).
fn poll(net: &mut Network, client: std::net::IpAddr, start: u64, name: &str, wildcard: bool) {
    let mut ts = start;
    for _ in 0..net.rng().below(MAX_UNPROPAGATED + 1) {
        net.ask(ts, client, name.as_bytes(), rtype::TXT, Reply::NxDomain);
        ts += POLL_EVERY;
    }
    let first = txt_rdata(token(net).as_bytes());
    let second = txt_rdata(token(net).as_bytes());
    let both: [(u16, &[u8]); 2] = [(rtype::TXT, &first), (rtype::TXT, &second)];
    let records = if wildcard { &both[..] } else { &both[..1] };
    net.ask(
        ts,
        client,
        name.as_bytes(),
        rtype::TXT,
        Reply::Records(records),
    );
}

/// A key authorization's digest as it goes in the record: 32 bytes in base64url
/// without padding, 43 characters.
fn token(net: &mut Network) -> String {
    let mut digest = [0u8; 32];
    net.rng().fill(&mut digest);
    URL_SAFE_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::exchanges;
    use crate::synth::scenario::EPOCH;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn the_client_polls_challenge_names_until_the_record_shows() {
        let mut net = Network::new(81, EPOCH, 12 * HOUR, 2_000);
        acme(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        assert!(!all.is_empty());
        let mut polls: HashMap<&str, Vec<Option<u8>>> = HashMap::new();
        for e in &all {
            assert_eq!((e.client, e.qtype), (Network::server(5, 10), rtype::TXT));
            assert!(
                e.name.starts_with("_acme-challenge.") && e.name.ends_with(PUBLIC_DOMAIN),
                "{}",
                e.name
            );
            polls.entry(&e.name).or_default().push(e.rcode);
            if e.rcode == Some(0) {
                // One TXT record of a 43-character string, or two on the wildcard's name.
                let one = 12 + 1 + 43;
                let records = if e.name == format!("_acme-challenge.{PUBLIC_DOMAIN}") {
                    2
                } else {
                    1
                };
                assert_eq!(usize::from(e.answers), records);
                assert_eq!(e.response_len, Some(e.query_len + records * one));
            }
        }
        for (name, rcodes) in &polls {
            // A name renewed in two runs shows the pattern twice: NXDOMAIN, then found.
            let found = rcodes.iter().filter(|r| **r == Some(0)).count();
            assert!(
                found >= 1 && rcodes.last() == Some(&Some(0)),
                "{name}: {rcodes:?}"
            );
            assert!(rcodes.len() <= found * (MAX_UNPROPAGATED as usize + 1));
        }
    }

    #[test]
    fn renewals_come_in_bursts_and_stay_far_under_the_threshold() {
        let mut net = Network::new(82, EPOCH, 4 * HOUR, 2_000);
        acme(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let first = all.first().map(|e| e.ts).expect("a run in the window");
        let last = all.last().map(|e| e.ts).unwrap_or(first);
        assert!(
            last - first < 15 * 60 * SECOND,
            "one burst in 4 h, not a trickle"
        );
        let names: HashSet<&str> = all.iter().map(|e| e.name.as_str()).collect();
        assert!((10..100).contains(&names.len()), "{} names", names.len());
    }

    #[test]
    fn tokens_are_43_characters_of_base64url() {
        let mut net = Network::new(83, EPOCH, HOUR, 10);
        let token = token(&mut net);
        assert_eq!(token.len(), 43);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&token).map(|d| d.len()).ok(),
            Some(32)
        );
        let names = challenge_names(7);
        assert_eq!(names.len(), 2);
        assert!(names
            .iter()
            .all(|n| n.starts_with("_acme-challenge.") && n.split('.').count() == 4));
    }
}
