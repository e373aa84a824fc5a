//! Alerts for the output tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::detect::{Alert, Assessment, Evidence};
use crate::NANOS_PER_SEC;

/// pirate.sea as the real iodine capture gives it, with a second client and a name and
/// a query type that need escaping or a generic name. Its evidence is the capture's
/// (`dns-sensor replay elastic-iodine-tunnel.pcap`) but for the second client: a new
/// name each query, medium-long labels, NULL queries, no NXDOMAIN. It scores
/// high, 84: `names do not repeat`, `few clients`, `data query types`.
pub(crate) fn sample_alert() -> Alert {
    let at = 1_800_000_000 * NANOS_PER_SEC;
    let evidence = Evidence {
        names_per_query: 1.0,
        clients: 2,
        top_client_share: 0.991,
        name_length: 35.829,
        labels: 1.441,
        longest_label: 17.968,
        digit_share: 0.064,
        other_share: 0.15,
        data_qtype_share: 0.995,
        nxdomain_share: 0.0,
        failure_share: 0.0,
        query_bytes: 75.73,
        response_bytes: 166.094,
    };
    let assessment = Assessment::of(&evidence);
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
        evidence,
        assessment,
    }
}
