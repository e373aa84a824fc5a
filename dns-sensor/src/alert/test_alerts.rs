//! Alerts for the output tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::detect::Alert;
use crate::NANOS_PER_SEC;

/// pirate.sea as the real iodine capture gives it, with a second client and a name and
/// a query type that need escaping or a generic name.
pub(crate) fn sample_alert() -> Alert {
    let at = 1_800_000_000 * NANOS_PER_SEC;
    Alert {
        at,
        domain: Box::from(&b"pirate.sea"[..]),
        total_requests: 222,
        unique_hostnames: 222,
        estimated: false,
        threshold: 200,
        total_bytes_in: 16812,
        total_bytes_out: 35212,
        window_start: at - 4 * 3600 * NANOS_PER_SEC,
        window_end: at,
        top_clients: vec![
            (IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30)), 220),
            (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                2,
            ),
        ],
        sample_names: vec![Box::from(&b"0ebb\x01.pirate.sea"[..])],
        qtypes: vec![(10, 221), (65534, 1)],
    }
}
