//! Advertising and marketing tags in the pages the endpoints' browsers load: host names
//! made per ad slot, per advertiser or per customer of the tag's vendor, so that a few
//! registered domains collect thousands of names from every browser of the network.
//!
//! Shaped after the vendors' public documentation:
//! - Google Ad Manager, "Render creatives using SafeFrame": since January 2022 every
//!   SafeFrame uses a randomized subdomain, `<32 hex>.safeframe.googlesyndication.com`,
//!   a new one for each ad slot rendered; the tag itself loads from
//!   `securepubads.g.doubleclick.net`, creatives from `tpc.googlesyndication.com`.
//! - Campaign Manager 360 Floodlight tags: advertisers' conversion pages call
//!   `<advertiser id>.fls.doubleclick.net` (`/activityi;src=<advertiser id>;...`).
//! - Adobe Experience Cloud: Target's edge is `<client code>.tt.omtrdc.net`, Analytics'
//!   tracking server `<company>.sc.omtrdc.net` (or with a data centre,
//!   `<company>.d1.sc.omtrdc.net`); Audience Manager syncs visitor IDs with its partners
//!   through `dpm.demdex.net` and the customer's own `<partner>.demdex.net`.
//!
//! Each site runs its own vendor customer codes; popularity is skewed (a few news and
//! shopping sites take most views), so the same codes recur while the tail keeps adding
//! names.

use super::{Network, Reply, Truth};
use crate::synth::scenario::SECOND;
use crate::synth::{mix64, rtype};

/// The SafeFrame and creative domain.
const SYNDICATION: &str = "googlesyndication.com";
/// The ad server's and Floodlight's domain.
const DOUBLECLICK: &str = "doubleclick.net";

/// Adobe's edge domain (Target, Analytics).
const OMTRDC: &str = "omtrdc.net";
/// Audience Manager's domain.
const DEMDEX: &str = "demdex.net";

/// Page views with Google Publisher Tag ads an endpoint's browser makes an hour.
const AD_PAGES_PER_HOUR: f64 = 0.4;
/// The most ad slots such a page renders.
const MAX_SLOTS: u64 = 3;

/// Page views of sites with Adobe tags an endpoint makes an hour.
const ADOBE_PAGES_PER_HOUR: f64 = 0.5;
/// Sites using Adobe's tags, each with its customer code.
const ADOBE_SITES: u64 = 1_500;
/// Share of those sites, in percent, that also run Audience Manager's ID sync.
const AUDIENCE_MANAGER_PERCENT: u64 = 40;

/// Floodlight conversion pages an endpoint loads an hour.
const FLOODLIGHT_PAGES_PER_HOUR: f64 = 0.25;
/// Advertisers that tag them.
const ADVERTISERS: u64 = 3_000;

/// Syllables of the vendors' customer codes (site brands).
const SYLLABLES: &[&str] = &[
    "nor", "tel", "ka", "via", "mon", "re", "sta", "lux", "bank", "shop", "news", "air", "go",
    "max", "ver", "ion", "pro", "tri", "zo", "den",
];

/// The browsers' ad and marketing look-ups over the whole window.
pub fn adtech(net: &mut Network) {
    for domain in [SYNDICATION, DOUBLECLICK, OMTRDC, DEMDEX] {
        net.label(domain, "adtech", Truth::Benign);
    }
    publisher_ads(net);
    adobe(net);
    floodlight(net);
}

/// Asks A for `name` and answers it with one address.
fn ask_a(net: &mut Network, ts: u64, client: std::net::IpAddr, name: &str, address: [u8; 4]) {
    net.ask(
        ts,
        client,
        name.as_bytes(),
        rtype::A,
        Reply::Records(&[(rtype::A, &address)]),
    );
}

fn publisher_ads(net: &mut Network) {
    for _ in 0..net.endpoint_events(AD_PAGES_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        // The tag and the creatives' host are in the endpoint's own cache most of the
        // time; the slots' names never are.
        if net.rng().below(4) == 0 {
            ask_a(
                net,
                ts,
                client,
                &format!("securepubads.g.{DOUBLECLICK}"),
                [142, 250, 74, 66],
            );
            let at = net.time_near(ts, SECOND);
            ask_a(
                net,
                at,
                client,
                &format!("tpc.{SYNDICATION}"),
                [142, 250, 74, 97],
            );
        }
        for _ in 0..1 + net.rng().below(MAX_SLOTS) {
            let mut random = [0u8; 16];
            net.rng().fill(&mut random);
            let label: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let name = format!("{label}.safeframe.{SYNDICATION}");
            let at = net.time_near(ts + SECOND, 3 * SECOND);
            ask_a(net, at, client, &name, [142, 250, 185, 65]);
        }
    }
}

fn adobe(net: &mut Network) {
    for _ in 0..net.endpoint_events(ADOBE_PAGES_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let site = net.skewed(ADOBE_SITES);
        let code = brand(0xad0b, site);
        // A site runs Target, Analytics or both, fixed per site, as it runs the
        // Audience Manager sync or not.
        let traits = mix64(0x5173 ^ site);
        if traits % 3 != 1 {
            let at = net.time_near(ts, SECOND);
            ask_a(
                net,
                at,
                client,
                &format!("{code}.tt.{OMTRDC}"),
                [66, 235, 152, 200],
            );
        }
        if traits % 3 != 0 {
            let server = match traits >> 8 & 3 {
                0 => format!("{code}.sc.{OMTRDC}"),
                n => format!("{code}.d{n}.sc.{OMTRDC}"),
            };
            let at = net.time_near(ts + SECOND, 2 * SECOND);
            ask_a(
                net,
                at,
                client,
                &server,
                [63, 140, 39, 1 + (site % 200) as u8],
            );
        }
        if (traits >> 16) % 100 < AUDIENCE_MANAGER_PERCENT {
            let at = net.time_near(ts + SECOND, 2 * SECOND);
            ask_a(net, at, client, &format!("dpm.{DEMDEX}"), [52, 29, 110, 4]);
            let partner = format!("{code}.{DEMDEX}");
            ask_a(net, at + 200_000_000, client, &partner, [52, 29, 110, 5]);
        }
    }
}

fn floodlight(net: &mut Network) {
    for _ in 0..net.endpoint_events(FLOODLIGHT_PAGES_PER_HOUR) {
        let client = net.any_endpoint();
        let ts = net.any_time();
        let advertiser = advertiser_id(net.skewed(ADVERTISERS));
        ask_a(
            net,
            ts,
            client,
            &format!("{advertiser}.fls.{DOUBLECLICK}"),
            [142, 250, 74, 70],
        );
    }
}

/// Advertiser `rank`'s Floodlight id: seven digits, distinct per rank.
fn advertiser_id(rank: u64) -> u64 {
    // A multiplier coprime to 9 000 000 permutes the residues: ids spread, none shared.
    1_000_000 + (rank * 7_777_777 + 1_234) % 9_000_000
}

/// Customer `k`'s code: three syllables, distinct per `k` below 8 000.
fn brand(salt: u64, k: u64) -> String {
    let s = SYLLABLES.len() as u64;
    // An odd multiplier not divisible by five permutes 0..8000: neighbouring customers
    // get unrelated codes, and no two the same.
    let p = (k * 2_654_435_761 + mix64(salt) % 8_000) % (s * s * s);
    [p % s, p / s % s, p / (s * s)]
        .iter()
        .map(|&i| SYLLABLES[i as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::busy::testing::{exchanges, under};
    use crate::synth::scenario::{EPOCH, HOUR};
    use std::collections::HashSet;

    #[test]
    fn every_safeframe_slot_is_a_new_hex_name_from_many_browsers() {
        let mut net = Network::new(41, EPOCH, 2 * HOUR, 1_000);
        adtech(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let frames = under(&all, &format!("safeframe.{SYNDICATION}"));
        let pages =
            Network::new(0, EPOCH, 2 * HOUR, 1_000).endpoint_events(AD_PAGES_PER_HOUR) as usize;
        assert!(
            (pages..=pages * MAX_SLOTS as usize).contains(&frames.len()),
            "{}",
            frames.len()
        );
        for e in &frames {
            let label = e.name.split('.').next().unwrap_or_default();
            assert_eq!(label.len(), 32, "{}", e.name);
            assert!(label
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!((e.qtype, e.rcode, e.answers), (rtype::A, Some(0), 1));
            assert_eq!(e.response_len, Some(e.query_len + 16));
        }
        let unique: HashSet<&str> = frames.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(unique.len(), frames.len(), "no slot name repeats");
        let browsers: HashSet<_> = frames.iter().map(|e| e.client).collect();
        assert!(browsers.len() > 400, "{} browsers", browsers.len());
    }

    #[test]
    fn adobe_codes_recur_across_endpoints_and_keep_their_shape() {
        let mut net = Network::new(42, EPOCH, 4 * HOUR, 2_000);
        adtech(&mut net);
        let all = exchanges(&net.finish().traffic.into_sorted());
        let adobe = under(&all, OMTRDC);
        for e in &adobe {
            let labels: Vec<&str> = e.name.split('.').collect();
            let shape_ok =
                matches!(
                    labels[1..],
                    ["tt", "omtrdc", "net"] | ["sc", "omtrdc", "net"]
                ) || (labels.len() == 5 && labels[1].starts_with('d') && labels[2] == "sc");
            assert!(shape_ok, "{}", e.name);
        }
        let unique: HashSet<&str> = adobe.iter().map(|e| e.name.as_str()).collect();
        assert!(
            unique.len() > 400 && unique.len() * 3 < adobe.len(),
            "{} of {}",
            unique.len(),
            adobe.len()
        );
        let demdex = under(&all, DEMDEX);
        let dpm = demdex.iter().filter(|e| e.name == "dpm.demdex.net").count();
        assert_eq!(
            dpm * 2,
            demdex.len(),
            "each sync asks dpm and the partner's name"
        );
        // Floodlight: seven-digit advertiser ids, the popular ones asked again.
        let fls: Vec<_> = under(&all, DOUBLECLICK)
            .into_iter()
            .filter(|e| e.name.contains(".fls."))
            .collect();
        assert!(fls
            .iter()
            .all(|e| e.name.len() == 7 + ".fls.doubleclick.net".len()));
        let advertisers: HashSet<&str> = fls.iter().map(|e| e.name.as_str()).collect();
        assert!(advertisers.len() > 300 && advertisers.len() < fls.len());
    }

    #[test]
    fn codes_and_ids_are_distinct_per_rank() {
        let codes: HashSet<String> = (0..ADOBE_SITES).map(|k| brand(0xad0b, k)).collect();
        // Syllables of different lengths could spell the same code twice; hardly ever do.
        assert!(
            codes.len() as u64 >= ADOBE_SITES * 99 / 100,
            "{} codes",
            codes.len()
        );
        let ids: HashSet<u64> = (0..ADVERTISERS).map(advertiser_id).collect();
        assert_eq!(ids.len() as u64, ADVERTISERS);
        assert!(ids.iter().all(|id| (1_000_000..10_000_000).contains(id)));
    }
}
