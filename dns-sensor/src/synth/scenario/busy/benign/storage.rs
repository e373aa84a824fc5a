//! Cloud storage: accounts, buckets, tenants and shared links, each a host name of its
//! own under the provider's domain. Whether a provider's names pile up under one
//! registered domain depends on the Public Suffix List, which the sensor groups by with
//! its private section (the default):
//! - `blob.core.windows.net`, `s3.amazonaws.com` and the regional `s3.<region>.amazonaws.com`
//!   are suffixes there, so each Azure storage account and each S3 bucket is a
//!   registered domain of its own with one name: nothing to label.
//! - `googleapis.com` is a suffix, so Cloud Storage's virtual-hosted buckets
//!   (`<bucket>.storage.googleapis.com`) all count under `storage.googleapis.com`;
//!   `sharepoint.com`, `googleusercontent.com` and `dropboxusercontent.com` are not, so
//!   every SharePoint and OneDrive tenant, every Drive download and every Dropbox link
//!   counts under the provider's domain itself.
//!
//! Shaped after the providers' public documentation: Azure Blob Storage's endpoint
//! `https://<account>.blob.core.windows.net` (account names of 3 to 24 lower-case
//! letters and digits, answered by a CNAME to the storage cluster); Amazon S3's
//! virtual-hosted-style `<bucket>.s3.<region>.amazonaws.com` and the legacy global
//! `<bucket>.s3.amazonaws.com`; Cloud Storage's `<bucket>.storage.googleapis.com`;
//! SharePoint Online's `<tenant>.sharepoint.com` and OneDrive's
//! `<tenant>-my.sharepoint.com`. Google Drive's downloads come from
//! `doc-<xx>-<yy>-docs.googleusercontent.com` and Dropbox's shared links from a host
//! per link, `uc<hex>.dl.dropboxusercontent.com` (`.previews.` for previews), as any
//! capture of them shows.

use std::net::IpAddr;

use super::{Network, Reply, Truth};
use crate::synth::scenario::SECOND;
use crate::synth::{mix64, name_rdata, rtype};

/// The company's own SharePoint tenant (the company of `directory.rs`).
const OWN_TENANT: &str = "northwindtraders";

/// SharePoint's domain.
const SHAREPOINT: &str = "sharepoint.com";
/// Cloud Storage's registered domain (`googleapis.com` is a suffix).
const GCS: &str = "storage.googleapis.com";

/// Drive's content domain.
const DRIVE: &str = "googleusercontent.com";
/// Dropbox's content domain.
const DROPBOX: &str = "dropboxusercontent.com";

/// Look-ups of the own tenant's two names an endpoint's Office and OneDrive clients
/// send an hour (the stub cache answers the rest).
const OWN_TENANT_PER_HOUR: f64 = 0.8;

/// Links into other companies' tenants (partners, suppliers, customers) an endpoint
/// opens an hour.
const PARTNER_LINKS_PER_HOUR: f64 = 0.25;
/// The tenants such links lead to.
const PARTNER_TENANTS: u64 = 2_500;

/// Azure storage accounts the endpoints reach (the company's and its applications'
/// vendors').
const BLOB_ACCOUNTS: u64 = 130;
/// Look-ups of them an endpoint sends an hour.
const BLOB_PER_HOUR: f64 = 0.4;

/// S3 buckets the endpoints reach.
const S3_BUCKETS: u64 = 200;
/// Look-ups of them an endpoint sends an hour.
const S3_PER_HOUR: f64 = 0.3;
/// The regions of the buckets' regional names.
const S3_REGIONS: &[&str] = &["eu-central-1", "eu-west-1", "us-east-1", "us-west-2"];

/// Cloud Storage buckets named virtual-hosted style (most use the path style instead).
const GCS_BUCKETS: u64 = 140;
/// Look-ups of them an endpoint sends an hour.
const GCS_PER_HOUR: f64 = 0.2;

/// Drive downloads an endpoint starts an hour.
const DRIVE_PER_HOUR: f64 = 0.12;

/// Dropbox links an endpoint opens an hour.
const DROPBOX_PER_HOUR: f64 = 0.08;

/// Syllables of company and application names.
const SYLLABLES: &[&str] = &[
    "al", "ber", "co", "da", "en", "fin", "gra", "hol", "in", "jo", "kel", "lin", "mer", "nov",
    "or", "pax", "quin", "ros", "sil", "tor", "ul", "vin", "wes", "xen",
];

/// The storage look-ups over the whole window.
pub fn storage(net: &mut Network) {
    for domain in [SHAREPOINT, GCS, DRIVE, DROPBOX] {
        net.label(domain, "storage", Truth::Benign);
    }
    sharepoint(net);
    blobs_and_buckets(net);
    shared_files(net);
}

/// A name made of syllables, fixed per `salt` and `k`, distinct per `k` below 13 824.
fn word(salt: u64, k: u64) -> String {
    let s = SYLLABLES.len() as u64;
    // A multiplier coprime to 24^3 permutes the ranks: unrelated words for neighbours.
    let p = (k * 2_654_435_761 + mix64(salt) % (s * s * s)) % (s * s * s);
    [p % s, p / s % s, p / (s * s)]
        .iter()
        .map(|&i| SYLLABLES[i as usize])
        .collect()
}

/// A tenant's SharePoint name: through its CNAME to the tenant's farm and Microsoft's
/// edge, to an address.
fn ask_tenant(net: &mut Network, ts: u64, client: IpAddr, tenant: &str, onedrive: bool) {
    let name = if onedrive {
        format!("{tenant}-my.{SHAREPOINT}")
    } else {
        format!("{tenant}.{SHAREPOINT}")
    };
    // Each tenant lives on one farm, fixed by its name.
    let farm = tenant.bytes().fold(0, |h, b| mix64(h ^ u64::from(b))) % 400;
    let alias = name_rdata(&format!(
        "{farm}-ipv4e.clump.dprodmgd{}.aa-rt.{SHAREPOINT}",
        100 + farm % 9
    ));
    let edge = name_rdata(&format!("dual-spo-{:04}.spo-msedge.net", farm % 8));
    let address = [13, 107, 136, 8 + (farm % 4) as u8];
    let chain: [(u16, &[u8]); 3] = [
        (rtype::CNAME, &alias),
        (rtype::CNAME, &edge),
        (rtype::A, &address),
    ];
    net.ask(
        ts,
        client,
        name.as_bytes(),
        rtype::A,
        Reply::Records(&chain),
    );
}

fn sharepoint(net: &mut Network) {
    for _ in 0..net.endpoint_events(OWN_TENANT_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let onedrive = net.rng().below(2) == 0;
        ask_tenant(net, ts, client, OWN_TENANT, onedrive);
    }
    for _ in 0..net.endpoint_events(PARTNER_LINKS_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let tenant = word(0x5a7e, net.skewed(PARTNER_TENANTS));
        // Documents shared from a team site or from someone's OneDrive.
        let onedrive = net.rng().below(2) == 0;
        ask_tenant(net, ts, client, &tenant, onedrive);
    }
}

fn blobs_and_buckets(net: &mut Network) {
    for _ in 0..net.endpoint_events(BLOB_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let k = net.skewed(BLOB_ACCOUNTS);
        let mut account = word(0xb10b, k);
        // Applications' accounts often carry a suffix of digits or a hash.
        if k % 3 == 0 {
            account.push_str(&format!("{:x}", mix64(k) % 0xfffff));
        }
        let name = format!("{account}.blob.core.windows.net");
        let cluster = name_rdata(&format!(
            "blob.fra{}prdstr{:02}a.store.core.windows.net",
            20 + k % 6,
            k % 17
        ));
        let address = [20, 60, (k % 250) as u8, 4];
        let chain: [(u16, &[u8]); 2] = [(rtype::CNAME, &cluster), (rtype::A, &address)];
        net.ask(
            ts,
            client,
            name.as_bytes(),
            rtype::A,
            Reply::Records(&chain),
        );
    }
    for _ in 0..net.endpoint_events(S3_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let k = net.skewed(S3_BUCKETS);
        let bucket = format!(
            "{}-{}",
            word(0x53b0, k),
            ["assets", "downloads", "prod", "media"][(k % 4) as usize]
        );
        // A bucket is reached by one of its names, fixed per bucket.
        let name = match mix64(k ^ 0x53) % 3 {
            0 => format!("{bucket}.s3.amazonaws.com"),
            r => format!(
                "{bucket}.s3.{}.amazonaws.com",
                S3_REGIONS[(r as usize + k as usize) % S3_REGIONS.len()]
            ),
        };
        net.ask(
            ts,
            client,
            name.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &[52, 219, 170, (k % 250) as u8])]),
        );
    }
    for _ in 0..net.endpoint_events(GCS_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let k = net.skewed(GCS_BUCKETS);
        let name = format!("{}-static.{GCS}", word(0x6c50, k));
        net.ask(
            ts,
            client,
            name.as_bytes(),
            rtype::A,
            Reply::Records(&[(rtype::A, &[142, 250, 185, 91])]),
        );
    }
}

fn shared_files(net: &mut Network) {
    const ALNUM: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    for _ in 0..net.endpoint_events(DRIVE_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let r = net.rng().next_u64();
        let c = |shift: u32| ALNUM[((r >> shift) % 36) as usize] as char;
        let name = format!(
            "doc-{}{}-{}{}-docs.{DRIVE}",
            (b'0' + (r & 1) as u8) as char,
            c(8),
            c(16),
            c(24)
        );
        net.ask_both_families(
            ts,
            client,
            &name,
            content_host([142, 250, 186, 33]),
            SECOND / 100,
        );
    }
    for _ in 0..net.endpoint_events(DROPBOX_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let (a, b) = (net.rng().next_u64(), net.rng().next_u64());
        let link = format!("{a:016x}{b:016x}");
        let kind = if net.rng().below(3) == 0 {
            "previews"
        } else {
            "dl"
        };
        let name = format!("uc{}.{kind}.{DROPBOX}", &link[..26]);
        net.ask_both_families(
            ts,
            client,
            &name,
            content_host([162, 125, 69, 15]),
            SECOND / 100,
        );
    }
}

/// A content host's addresses: `v4`, and the same four bytes at the end of an address
/// in 2a00::/16.
fn content_host(v4: [u8; 4]) -> ([u8; 4], [u8; 16]) {
    let mut v6 = [0u8; 16];
    v6[..2].copy_from_slice(&[0x2a, 0x00]);
    v6[12..].copy_from_slice(&v4);
    (v4, v6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Classifier, DomainSettings, Verdict};
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::{HashMap, HashSet};

    /// Unique names per registered domain, as the sensor groups them at its defaults.
    fn per_domain(names: &HashSet<&str>) -> HashMap<String, usize> {
        let classifier = Classifier::new(&DomainSettings {
            include_private: true,
            whitelist: Vec::new(),
        })
        .expect("the embedded list");
        let mut out: HashMap<String, usize> = HashMap::new();
        for name in names {
            if let Verdict::Registered(domain) = classifier.classify(name.as_bytes()) {
                *out.entry(String::from_utf8_lossy(domain).into_owned())
                    .or_default() += 1;
            }
        }
        out
    }

    #[test]
    fn the_labels_are_the_registered_domains_that_collect_names() {
        let mut net = Network::new(51, EPOCH, 4 * HOUR, 2_000);
        storage(&mut net);
        let network = net.finish();
        let labels: Vec<String> = network.labels.iter().map(|l| l.domain.clone()).collect();
        let all = exchanges(&network.traffic.into_sorted());
        let names: HashSet<&str> = all.iter().map(|e| e.name.as_str()).collect();
        let counts = per_domain(&names);
        for label in &labels {
            assert!(
                counts.get(label).is_some_and(|&n| n > 50),
                "{label}: {:?}",
                counts.get(label)
            );
        }
        for (domain, n) in &counts {
            assert!(
                labels.contains(domain) || *n <= 3,
                "{domain}: {n} names, no label"
            );
        }
        // Each Azure account and S3 bucket is its own registered domain, one name each.
        let blob = names
            .iter()
            .find(|n| n.ends_with(".blob.core.windows.net"))
            .expect("a blob name");
        assert_eq!(counts.get(*blob), Some(&1));
        for big in [SHAREPOINT, DRIVE, DROPBOX] {
            assert!(counts[big] > 300, "{big}: {}", counts[big]);
        }
        assert!(
            counts[GCS] < 180,
            "Cloud Storage stays small: {}",
            counts[GCS]
        );
    }

    #[test]
    fn the_own_tenant_is_the_busiest_and_partners_are_many() {
        let mut net = Network::new(52, EPOCH, 2 * HOUR, 1_000);
        storage(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let sharepoint = under(&all, SHAREPOINT);
        let own = sharepoint
            .iter()
            .filter(|e| e.name.starts_with(OWN_TENANT))
            .count();
        assert_eq!(
            own as u64,
            Network::new(0, EPOCH, 2 * HOUR, 1_000).endpoint_events(OWN_TENANT_PER_HOUR)
        );
        let tenants: HashSet<&str> = sharepoint
            .iter()
            .map(|e| {
                e.name
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches("-my")
            })
            .collect();
        assert!(tenants.len() > 100, "{} tenants", tenants.len());
        for e in &sharepoint {
            assert_eq!((e.rcode, e.answers), (Some(0), 3), "two CNAMEs and an A");
        }
        for e in under(&all, "blob.core.windows.net") {
            let account = e.name.split('.').next().unwrap_or_default();
            assert!((3..=24).contains(&account.len()), "{}", e.name);
            assert!(account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
            assert_eq!(e.answers, 2);
        }
    }

    #[test]
    fn every_download_link_is_a_name_of_its_own() {
        let mut net = Network::new(53, EPOCH, 3 * HOUR, 1_000);
        storage(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let dropbox = under(&all, DROPBOX);
        for e in &dropbox {
            let host = e.name.split('.').next().unwrap_or_default();
            assert_eq!(host.len(), 28, "{}", e.name);
            assert!(host.starts_with("uc"));
        }
        let unique: HashSet<&str> = dropbox.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(unique.len() * 2, dropbox.len(), "one A and one AAAA a link");
        let drive = under(&all, DRIVE);
        assert!(drive
            .iter()
            .all(|e| e.name.starts_with("doc-") && e.name.contains("-docs.")));
        let unique: HashSet<&str> = drive.iter().map(|e| e.name.as_str()).collect();
        assert!(
            unique.len() * 2 > drive.len() * 9 / 10,
            "{} of {}",
            unique.len(),
            drive.len()
        );
    }
}
