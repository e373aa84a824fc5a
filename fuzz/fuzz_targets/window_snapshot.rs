//! The window snapshot reader (`detect::Detector::from_snapshot`, and the sketch codec
//! under it), on snapshots with a good checksum and on raw bytes.
//!
//! Input: the first byte picks the rule the window is restored under (the default,
//! a 10-minute interval, or a 1-hour window of 5-minute intervals with a threshold of
//! 10); the rest is a snapshot's body, which the target puts between the header and
//! checksum of a real snapshot so that the reader gets past them, or, when it starts
//! with the header itself, a whole file taken as it is.
//!
//! Checks: reading refuses or reads, never panics. A window it reads can be used (a
//! shard added, evaluations at its end and at the start of the traffic) and written
//! again, and what is written reads back to a window of the same slots, domains,
//! size and losses.

#![no_main]

use dns_sensor::detect::{Detector, RuleSettings};
use dns_sensor::sketch::{Shard, SketchSettings};
use dns_sensor_fuzz::{Input, T0};
use libfuzzer_sys::fuzz_target;

const MIN: u64 = 60 * dns_sensor::NANOS_PER_SEC;

fn rule(pick: u8) -> RuleSettings {
    let default = RuleSettings::default();
    match pick % 3 {
        0 => default,
        1 => RuleSettings {
            interval: 10 * MIN,
            ..default
        },
        _ => RuleSettings {
            threshold: 10,
            window: 60 * MIN,
            interval: 5 * MIN,
            ..default
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let rule = rule(input.u8());
    let body = input.rest();
    let sketch = SketchSettings::default();
    // A real snapshot of an empty window: its header and where its checksum goes.
    let empty = Detector::new(rule.clone()).to_snapshot(0, None);
    let header_len = empty.iter().position(|&b| b == b'\n').map_or(0, |n| n + 1) + 4;
    let header = &empty[..header_len];
    let bytes = if body.starts_with(header) {
        body.to_vec()
    } else {
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(body);
        let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    };
    let Ok(restored) = Detector::from_snapshot(&bytes, rule.clone(), &sketch) else {
        return;
    };
    let mut window = restored.detector;

    // Written again, it reads back the same.
    let again = window.to_snapshot(restored.written_at, restored.evaluated_until);
    let reread = Detector::from_snapshot(&again, rule, &sketch)
        .expect("a window read from a snapshot, written again, reads back");
    let figures = |d: &Detector| {
        (
            d.slots(),
            d.tracked(),
            d.bytes(),
            d.late_shards(),
            d.shed_records_total(),
            d.evicted_domains_total(),
            d.held_span(),
        )
    };
    assert_eq!(figures(&reread.detector), figures(&window));
    assert_eq!(reread.written_at, restored.written_at);
    assert_eq!(reread.evaluated_until, restored.evaluated_until);

    // And it can be used.
    let newest = window.held_span().map_or(T0, |(_, end)| end);
    let mut shard = Shard::new(window.slot_start(newest), &sketch);
    shard.record_query(
        b"example.org",
        b"a.example.org",
        [10, 0, 0, 1].into(),
        40,
        60,
    );
    window.add(shard);
    if let Some(start) = window.next_traffic_for(0) {
        let _ = window.evaluate(start.saturating_add(window.slot_length()));
    }
    if let Some((_, end)) = window.held_span() {
        let _ = window.evaluate(end);
    }
});
