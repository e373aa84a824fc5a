//! Detect: the window (a ring of closed slots), the rule evaluated over it every
//! interval, each alert's evidence and severity (`evidence`, `severity`: and with them
//! the alerts under the threshold of domains that look like tunnels, [`judge`]), and
//! re-alert suppression. Produces [`Alert`]s; knows nothing of sinks.
//!
//! The window is a map of closed slots by start time. Workers hand in one shard per slot
//! each; shards of the same slot merge. An evaluation at `at` covers the slots starting
//! in `[at - window, at)`: on interval boundaries (multiples of the slot length) that is
//! exactly the window; the final evaluation at the end of a capture may fall between
//! boundaries, and then covers the whole slots starting in that range.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::sketch::{DomainCounts, Shard};
use crate::{Nanos, NANOS_PER_SEC};

mod bounds;
mod evidence;
mod realert;
mod severity;
pub mod snapshot;

use bounds::WindowBounds;
pub use evidence::{Evidence, WindowCounts};
pub use realert::Reports;
pub use severity::{Assessment, Severity, HIGH_SCORE};

/// The rule's parameters.
#[derive(Clone, Debug)]
pub struct RuleSettings {
    /// Alert when unique hostnames exceed this.
    pub threshold: u64,
    /// Length of the window evaluated.
    pub window: Nanos,
    /// Evaluate at every multiple of this since the Unix epoch.
    pub interval: Nanos,
    /// Alerts per evaluation at most, largest first.
    pub max_domains: usize,
    /// A domain already alerted is reported again only after this long, and only if it
    /// was queried since its last report (0: at every evaluation, as the reference does).
    pub realert: Nanos,
    /// Client addresses listed per alert.
    pub top_clients: usize,
    /// A domain under `threshold` alerts too when its unique hostnames exceed this, its
    /// evidence scores [`Severity::High`] and its names carry data ([`TUNNEL_LABEL`])
    /// (0: never).
    pub tunnel_threshold: u64,
}

impl RuleSettings {
    /// The fewest names a domain needs to alert at all: what the window's bounds
    /// look for.
    pub fn lowest_threshold(&self) -> u64 {
        match self.tunnel_threshold {
            0 => self.threshold,
            tunnel => tunnel.min(self.threshold),
        }
    }
}

impl Default for RuleSettings {
    /// The reference rule: more than 200 unique hostnames in 4 hours, evaluated every
    /// 15 minutes, at most 1 000 alerts per evaluation; re-alert after 1 hour; 10
    /// clients per alert; a domain that looks like a tunnel alerts from 50 names.
    fn default() -> Self {
        Self {
            threshold: 200,
            window: 4 * 3600 * NANOS_PER_SEC,
            interval: 15 * 60 * NANOS_PER_SEC,
            max_domains: 1000,
            realert: 3600 * NANOS_PER_SEC,
            top_clients: 10,
            tunnel_threshold: 50,
        }
    }
}

/// One domain over the threshold in one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// When the evaluation ran (capture time).
    pub at: Nanos,
    /// Registered domain, canonical bytes.
    pub domain: Box<[u8]>,
    /// Queries in the window.
    pub total_requests: u64,
    /// Distinct query names in the window.
    pub unique_hostnames: u64,
    /// Whether `unique_hostnames` is an estimate (past the exact limit of some slot)
    /// rather than an exact count.
    pub estimated: bool,
    /// The threshold `unique_hostnames` exceeded.
    pub threshold: u64,
    /// Sum of query message sizes.
    pub total_bytes_in: u64,
    /// Sum of response message sizes.
    pub total_bytes_out: u64,
    /// Start of the window covered.
    pub window_start: Nanos,
    /// End of the window covered.
    pub window_end: Nanos,
    /// Most active clients and their query counts.
    pub top_clients: Vec<(IpAddr, u64)>,
    /// A few names seen, canonical bytes.
    pub sample_names: Vec<Box<[u8]>>,
    /// Query counts by QTYPE.
    pub qtypes: Vec<(u16, u64)>,
    /// Figures over the window that tell a tunnel from a busy service.
    pub evidence: Evidence,
    /// The severity the evidence gives.
    pub assessment: Assessment,
}

/// Under the threshold, a domain alerts only if its names carry data: their longest
/// label is this long on average, and at least [`TUNNEL_NEW_NAMES`] of its queries ask
/// a new name. A run of short numbered names from one host (a script, a monitor)
/// scores high on the other traits and carries next to nothing; so do a few long names
/// asked over and over.
pub const TUNNEL_LABEL: f64 = 20.0;

/// See [`TUNNEL_LABEL`].
pub const TUNNEL_NEW_NAMES: f64 = 0.5;

/// The slot length the window is cut into: the largest that divides both the window
/// and the interval, so every evaluation falls on a slot boundary. `gcd(x, 0) = x`, and
/// 0 only when both are 0 (settings validation rejects that; [`Detector`] then uses 1).
pub fn slot_length(window: Nanos, interval: Nanos) -> Nanos {
    let (mut a, mut b) = (window, interval);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Whether a multiple of `interval` lies strictly inside `(start, end)`: an
/// evaluation there would see part of the slot `[start, end)`, from after itself.
pub fn spans_a_boundary(start: Nanos, end: Nanos, interval: Nanos) -> bool {
    start / interval != end.saturating_sub(1) / interval
}

/// Whether `domain` was queried in one of `slots` starting at or after `since`.
fn queried_since(slots: &BTreeMap<Nanos, Shard>, domain: &[u8], since: Nanos) -> bool {
    slots
        .range(since..)
        .any(|(_, shard)| shard.get(domain).is_some_and(|c| c.requests() > 0))
}

/// Holds the window and evaluates the rule over it.
pub struct Detector {
    settings: RuleSettings,
    slot: Nanos,
    /// Closed slots by start.
    slots: BTreeMap<Nanos, Shard>,
    /// Latest slot start handed in.
    newest: Option<Nanos>,
    /// Start of the window of the latest evaluation: older slots are never needed again.
    horizon: Nanos,
    /// The domains' bounds over the slots evaluations have covered.
    bounds: WindowBounds,
    /// When each recently alerted domain was last reported.
    reports: Reports,
    /// Shards refused because their slot had already left the window.
    late_shards: u64,
    /// Records lost to shedding in every shard handed in, and in the window's merges.
    shed_records: u64,
    /// Domains shed likewise.
    evicted_domains: u64,
}

impl std::fmt::Debug for Detector {
    /// The window's shape, not its millions of tables.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("settings", &self.settings)
            .field("slots", &self.slots.len())
            .field("tracked", &self.tracked())
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// An empty window.
    pub fn new(settings: RuleSettings) -> Self {
        let slot = slot_length(settings.window, settings.interval).max(1);
        Self {
            bounds: WindowBounds::new(settings.lowest_threshold()),
            settings,
            slot,
            slots: BTreeMap::new(),
            newest: None,
            horizon: 0,
            reports: Reports::new(),
            late_shards: 0,
            shed_records: 0,
            evicted_domains: 0,
        }
    }
    /// The rule in use.
    pub fn settings(&self) -> &RuleSettings {
        &self.settings
    }
    /// The slot length in use.
    pub fn slot_length(&self) -> Nanos {
        self.slot
    }
    /// The start of the slot holding time `t`.
    pub fn slot_start(&self, t: Nanos) -> Nanos {
        t - t % self.slot
    }
    /// Applies a new rule to the window it holds (a reload): the slots and what was
    /// reported stay. A shorter window drops its older slots at the next shard or
    /// evaluation; a new threshold recounts the bounds at the next evaluation. A new
    /// slot length (the window or the interval changed) keeps every held slot that
    /// starts inside the window, at its old length.
    ///
    /// Returns the end of the latest held slot that spans one of the new interval's
    /// boundaries (a 15-minute slot across a 10-minute boundary): an evaluation at
    /// such a boundary would count traffic from after it, so the caller skips those
    /// before that end. `None` when no held slot spans one.
    pub fn reconfigure(&mut self, settings: RuleSettings) -> Option<Nanos> {
        let old_slot = self.slot;
        self.slot = slot_length(settings.window, settings.interval).max(1);
        if settings.lowest_threshold() != self.settings.lowest_threshold() {
            self.bounds = WindowBounds::new(settings.lowest_threshold());
        }
        self.settings = settings;
        let interval = self.settings.interval.max(1);
        self.slots
            .keys()
            .map(|&start| (start, start.saturating_add(old_slot)))
            .filter(|&(start, end)| spans_a_boundary(start, end, interval))
            .map(|(_, end)| end)
            .max()
    }
    /// Adds a closed slot's shard (merged into any shard already held for that slot).
    /// Slots that have left the window are dropped.
    ///
    /// A slot leaves the window when the latest evaluation no longer covered it, or
    /// when it is older than a full window plus one interval before the newest slot
    /// handed in (evaluations may lag the shards by up to an interval: a fast worker
    /// can hand in a slot before the coordinator evaluated the boundary before it).
    /// A shard for a slot already gone is dropped and counted in
    /// [`late_shards`](Self::late_shards).
    pub fn add(&mut self, shard: Shard) {
        let start = shard.start();
        let newest = self.newest.map_or(start, |n| n.max(start));
        self.newest = Some(newest);
        let cutoff = self.cutoff();
        if start < cutoff {
            self.late_shards = self.late_shards.saturating_add(1);
            return;
        }
        // A merge adds the incoming shard's shedding counters to the held one's, plus
        // whatever the merge itself sheds: the difference is what is new.
        let (shed, evicted) = match self.slots.entry(start) {
            std::collections::btree_map::Entry::Occupied(mut held) => {
                let held = held.get_mut();
                // Counted again, as it will be, by the next evaluation that covers it.
                self.bounds.uncount(start, held);
                let before = (held.shed_records(), held.evicted_domains());
                held.merge_owned(shard);
                (
                    held.shed_records().saturating_sub(before.0),
                    held.evicted_domains().saturating_sub(before.1),
                )
            }
            std::collections::btree_map::Entry::Vacant(free) => {
                let counted = (shard.shed_records(), shard.evicted_domains());
                free.insert(shard);
                counted
            }
        };
        self.shed_records = self.shed_records.saturating_add(shed);
        self.evicted_domains = self.evicted_domains.saturating_add(evicted);
        self.drop_before(cutoff);
    }
    /// Oldest slot start still needed.
    fn cutoff(&self) -> Nanos {
        let by_shards = self.newest.map_or(0, |newest| {
            newest
                .saturating_add(self.slot)
                .saturating_sub(self.settings.window)
                .saturating_sub(self.settings.interval)
        });
        by_shards.max(self.horizon)
    }
    fn drop_before(&mut self, cutoff: Nanos) {
        if self
            .slots
            .first_key_value()
            .is_some_and(|(&start, _)| start < cutoff)
        {
            let kept = self.slots.split_off(&cutoff);
            for (start, shard) in std::mem::replace(&mut self.slots, kept) {
                self.bounds.uncount(start, &shard);
            }
        }
    }
    /// Evaluates the rule over the window ending at `at`: every slot that overlaps
    /// `[at - window, at)` (clamped at 0). Returns alerts, largest first, with
    /// `window_start` the start of the oldest slot counted and `window_end = at`.
    ///
    /// On interval boundaries the window is exactly `window` long. The end-of-input
    /// evaluation falls inside a slot; its window then reaches back to the start of the
    /// slot holding `at - window`, at most one slot more than `window`, rather than
    /// leaving out the traffic of that slot.
    ///
    /// Evaluations are expected at non-decreasing `at`: slots older than this window
    /// are dropped. Of the domains over the threshold, those reported less than
    /// `realert` ago are left out first, then the largest `max_domains` are returned
    /// (so domains already reported do not crowd out new ones).
    pub fn evaluate(&mut self, at: Nanos) -> Vec<Alert> {
        let reach = at.saturating_sub(self.settings.window);
        let window_start = reach - reach % self.slot;
        self.horizon = self.horizon.max(window_start);
        self.drop_before(self.horizon);
        for (&start, shard) in self.slots.range(window_start..at) {
            self.bounds.count(start, shard);
        }
        let slots: Vec<&Shard> = self.slots.range(window_start..at).map(|(_, s)| s).collect();
        let candidates = self.bounds.candidates();
        let mut alerts = over_threshold(&slots, candidates, &self.settings, at, window_start);
        alerts.sort_unstable_by(|a, b| {
            b.unique_hostnames
                .cmp(&a.unique_hostnames)
                .then_with(|| a.domain.cmp(&b.domain))
        });
        let slots = &self.slots;
        self.reports
            .select(alerts, at, &self.settings, |domain, since| {
                queried_since(slots, domain, since)
            })
    }

    /// Domains held across the window's slots (a domain in several slots counts once per slot).
    pub fn tracked(&self) -> usize {
        self.slots.values().map(Shard::len).sum()
    }
    /// The start of the oldest slot held and the end of the newest, if any is.
    pub fn held_span(&self) -> Option<(Nanos, Nanos)> {
        let first = *self.slots.keys().next()?;
        let last = *self.slots.keys().next_back()?;
        Some((first, last.saturating_add(self.slot)))
    }
    /// The start of the earliest held slot with traffic that an evaluation at `at`
    /// or later would count (one starting at or after the window's start at `at`).
    /// `None` when no later evaluation has anything to count: the caller skips the
    /// empty windows up to that slot instead of evaluating each (a capture's gap of
    /// years, or a clock that jumped, is millions of intervals).
    pub fn next_traffic_for(&self, at: Nanos) -> Option<Nanos> {
        let reach = at.saturating_sub(self.settings.window);
        let window_start = reach - reach % self.slot;
        self.slots
            .range(window_start..)
            .find(|(_, shard)| !shard.is_empty())
            .map(|(&start, _)| start)
    }
    /// The held slots starting at or after `from`, oldest first.
    pub fn slots_from(&self, from: Nanos) -> impl Iterator<Item = &Shard> {
        self.slots.range(from..).map(|(_, shard)| shard)
    }
    /// Slots held.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
    /// Shards dropped on arrival because their slot had already left the window.
    pub fn late_shards(&self) -> u64 {
        self.late_shards
    }
    /// Records shed by the held slots' shards for lack of room (see
    /// [`Shard::shed_records`]).
    pub fn held_shed_records(&self) -> u64 {
        self.slots.values().map(Shard::shed_records).sum()
    }
    /// Records lost to shedding since the start, in the workers' shards and in the
    /// window's merges, including slots no longer held.
    pub fn shed_records_total(&self) -> u64 {
        self.shed_records
    }
    /// Domains shed since the start (a domain shed from several slots counts in each).
    pub fn evicted_domains_total(&self) -> u64 {
        self.evicted_domains
    }
    /// Estimated bytes of the window's per-domain tables (see [`Shard::bytes`]).
    pub fn bytes(&self) -> usize {
        self.slots.values().map(Shard::bytes).sum()
    }
}

/// The alert of every domain of `candidates` whose unique names over `slots` exceed
/// the threshold, unsorted. The candidates are the domains whose bound may exceed it
/// (see [`WindowBounds`]); only they are merged.
fn over_threshold<'d>(
    slots: &[&Shard],
    candidates: impl Iterator<Item = &'d [u8]>,
    settings: &RuleSettings,
    at: Nanos,
    window_start: Nanos,
) -> Vec<Alert> {
    let lowest = settings.lowest_threshold();
    let mut alerts = Vec::new();
    for domain in candidates {
        let Some(merged) = merge_from(slots, domain) else {
            continue;
        };
        let unique = merged.unique_names();
        if unique <= lowest {
            continue;
        }
        let evidence = Evidence::of(domain, &merged);
        let Some((threshold, assessment)) = judge(unique, &evidence, settings) else {
            continue;
        };
        alerts.push(Alert {
            at,
            domain: domain.into(),
            total_requests: merged.requests(),
            unique_hostnames: unique,
            estimated: merged.is_estimated(),
            threshold,
            total_bytes_in: merged.bytes_in(),
            total_bytes_out: merged.bytes_out(),
            window_start,
            window_end: at,
            top_clients: merged.top_clients(settings.top_clients),
            sample_names: merged.sample_names().map(Box::from).collect(),
            qtypes: merged.qtypes(),
            evidence,
            assessment,
        });
    }
    alerts
}

/// Whether a domain of `unique` names over the window and `evidence` alerts under
/// `settings`: the threshold it exceeded, and its assessment. Over the threshold every
/// domain alerts (the reference rule); under it, from the tunnel threshold, a domain
/// whose evidence says tunnel.
pub fn judge(
    unique: u64,
    evidence: &Evidence,
    settings: &RuleSettings,
) -> Option<(u64, Assessment)> {
    if unique <= settings.lowest_threshold() {
        return None;
    }
    let mut assessment = Assessment::of(evidence);
    if unique > settings.threshold {
        return Some((settings.threshold, assessment));
    }
    if assessment.severity == Severity::High
        && evidence.longest_label >= TUNNEL_LABEL
        && evidence.names_per_query >= TUNNEL_NEW_NAMES
    {
        assessment.reasons.push("under the count threshold");
        return Some((settings.tunnel_threshold, assessment));
    }
    None
}

/// `domain`'s counts over `slots`, merged; `None` if it is in none.
fn merge_from(slots: &[&Shard], domain: &[u8]) -> Option<DomainCounts> {
    let mut merged: Option<DomainCounts> = None;
    for shard in slots {
        if let Some(counts) = shard.get(domain) {
            match merged.as_mut() {
                Some(merged) => merged.merge(counts, shard.settings()),
                None => merged = Some(counts.clone()),
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::SketchSettings;
    use std::net::Ipv4Addr;

    pub(super) const MIN: Nanos = 60 * NANOS_PER_SEC;
    pub(super) const HOUR: Nanos = 60 * MIN;
    /// A start aligned to 4 h (and so to 15 min): 2027-01-15T08:00:00Z.
    pub(super) const T0: Nanos = 1_800_000_000 * NANOS_PER_SEC;
    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30));

    #[test]
    fn bounds_kept_across_evaluations_give_what_a_fresh_window_gives() {
        // Two workers' shards per slot, the second arriving after its slot was
        // evaluated every third slot; domains of every size, some passing the
        // threshold only once slots merge. After every evaluation, a detector given
        // the same slots at once must alert alike.
        use crate::synth::SplitMix64;
        let settings = RuleSettings {
            threshold: 40,
            window: 2 * HOUR,
            realert: 0,
            ..RuleSettings::default()
        };
        let mut rng = SplitMix64::new(9);
        let mut incremental = Detector::new(settings.clone());
        let slot = incremental.slot_length();
        let mut evaluations = 0;
        let mut alerts = 0;
        let mut check = |incremental: &mut Detector, at: Nanos| {
            let mut fresh = Detector::new(settings.clone());
            for shard in incremental.slots.values() {
                fresh.add(shard.clone());
            }
            let got = incremental.evaluate(at);
            assert_eq!(got, fresh.evaluate(at), "at {at}");
            evaluations += 1;
            alerts += got.len();
        };
        for s in 0..20u64 {
            let start = T0 + s * slot;
            let mut halves = Vec::new();
            for worker in 0..2u64 {
                let mut shard = Shard::new(start, &SketchSettings::default());
                for d in 0..30u64 {
                    let domain = format!("d{d}.example");
                    let names = rng.next_u64() % (d + 1) % 25;
                    for i in 0..names {
                        // The workers' names overlap: the union is less than the sum.
                        let n = name(&domain, s * 100 + i + worker * (names / 2));
                        shard.record_query(domain.as_bytes(), &n, CLIENT, 1, 60);
                    }
                }
                halves.push(shard);
            }
            let at = start + slot;
            let (first, second) = (halves.remove(0), halves.remove(0));
            incremental.add(first);
            if s % 3 == 0 {
                check(&mut incremental, at);
            }
            incremental.add(second);
            check(&mut incremental, at);
        }
        assert_eq!(evaluations, 27);
        assert!(alerts > 20, "{alerts} alerts");
    }

    fn detector() -> Detector {
        Detector::new(RuleSettings::default())
    }

    fn name(domain: &str, i: u64) -> Vec<u8> {
        format!("n{i}.{domain}").into_bytes()
    }

    /// One shard per slot holding `count` distinct names `first..first + count` of
    /// `domain`.
    pub(super) fn shard(start: Nanos, domain: &str, first: u64, count: u64) -> Shard {
        let mut shard = Shard::new(start, &SketchSettings::default());
        for i in first..first + count {
            shard.record_query(domain.as_bytes(), &name(domain, i), CLIENT, 10, 75);
            shard.record_response(domain.as_bytes(), 160, 0);
        }
        shard
    }

    /// Feeds `names` query times (name i at `times[i]`) as slot shards, evaluating at
    /// every interval boundary; returns the alerts with the evaluation time.
    fn replay(detector: &mut Detector, domain: &str, times: &[Nanos], until: Nanos) -> Vec<Alert> {
        let slot = detector.slot_length();
        let mut alerts = Vec::new();
        let mut t = T0;
        while t <= until {
            // Close the slot [t - slot, t) and evaluate at t.
            if t > T0 {
                let start = t - slot;
                let mut s = Shard::new(start, &SketchSettings::default());
                for (i, &when) in times.iter().enumerate() {
                    if (start..t).contains(&when) {
                        s.record_query(domain.as_bytes(), &name(domain, i as u64), CLIENT, 16, 80);
                    }
                }
                detector.add(s);
            }
            alerts.extend(detector.evaluate(t));
            t += slot;
        }
        alerts
    }

    #[test]
    fn slot_is_gcd() {
        assert_eq!(slot_length(4 * HOUR, 15 * MIN), 15 * MIN);
        assert_eq!(slot_length(4 * HOUR, 25 * MIN), 5 * MIN);
        assert_eq!(slot_length(HOUR, 0), HOUR);
        assert_eq!(slot_length(0, 0), 0);
        assert_eq!(
            Detector::new(RuleSettings {
                window: 0,
                interval: 0,
                ..RuleSettings::default()
            })
            .slot_length(),
            1
        );
        assert_eq!(detector().slot_start(T0 + 20 * MIN), T0 + 15 * MIN);
    }

    #[test]
    fn threshold_is_exceeded_not_reached() {
        let mut d = detector();
        d.add(shard(T0, "quiet.org", 0, 200));
        d.add(shard(T0, "loud.org", 0, 201));
        let alerts = d.evaluate(T0 + 15 * MIN);
        assert_eq!(alerts.len(), 1);
        let alert = &alerts[0];
        assert_eq!(&*alert.domain, b"loud.org");
        assert_eq!(alert.unique_hostnames, 201);
        assert_eq!(alert.total_requests, 201);
        assert_eq!(alert.total_bytes_in, 201 * 75);
        assert_eq!(alert.total_bytes_out, 201 * 160);
        assert_eq!(alert.at, T0 + 15 * MIN);
        assert_eq!(alert.window_start, T0 + 15 * MIN - 4 * HOUR);
        assert_eq!(alert.window_end, T0 + 15 * MIN);
        assert_eq!(alert.top_clients, vec![(CLIENT, 201)]);
        assert_eq!(alert.qtypes, vec![(10, 201)]);
        assert_eq!(alert.sample_names.len(), 5);
        assert_eq!(&*alert.sample_names[0], b"n0.loud.org");
    }

    #[test]
    fn names_are_counted_once_across_slots() {
        // 150 names, then the same 150 again plus 51 new ones: 201 distinct in the
        // window though no slot has more than 201 and the sum is 351.
        let mut d = detector();
        d.add(shard(T0, "a.org", 0, 150));
        d.add(shard(T0 + 15 * MIN, "a.org", 0, 150));
        assert!(d.evaluate(T0 + 30 * MIN).is_empty());
        d.add(shard(T0 + 30 * MIN, "a.org", 150, 51));
        let alerts = d.evaluate(T0 + 45 * MIN);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].unique_hostnames, 201);
        assert_eq!(alerts[0].total_requests, 351);
    }

    /// A slot of `count` queries under `domain`, each a new name of a 40-character
    /// label, TXT, spread round-robin over `clients` clients, each answered.
    fn data_names(start: Nanos, domain: &str, count: u64, clients: u8) -> Shard {
        let mut shard = Shard::new(start, &SketchSettings::default());
        for i in 0..count {
            let name = format!("{:040x}.{domain}", u128::from(i) * 0x9e37_79b9_7f4a_7c15);
            let client = IpAddr::V4(Ipv4Addr::new(10, 0, 3, (i % u64::from(clients)) as u8));
            shard.record_query(domain.as_bytes(), name.as_bytes(), client, 16, 90);
            shard.record_response(domain.as_bytes(), 200, 0);
        }
        shard
    }

    #[test]
    fn a_domain_that_looks_like_a_tunnel_alerts_under_the_threshold() {
        let mut d = detector();
        d.add(data_names(T0, "quiet.org", 120, 1));
        let alerts = d.evaluate(T0 + 15 * MIN);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert.threshold, 50);
        assert_eq!(alert.unique_hostnames, 120);
        assert_eq!(alert.assessment.severity, Severity::High);
        assert_eq!(
            alert.assessment.reasons,
            [
                "names do not repeat",
                "one client",
                "long labels",
                "data query types",
                "under the count threshold"
            ]
        );
        assert_eq!(alert.evidence.clients, 1);
        assert_eq!(alert.evidence.longest_label, 40.0);
    }

    #[test]
    fn under_the_threshold_only_high_severity_with_long_labels_alerts() {
        // The same names from 40 clients: a busy service's shape, low.
        let mut d = detector();
        d.add(data_names(T0, "shared.org", 120, 40));
        assert!(d.evaluate(T0 + 15 * MIN).is_empty());
        // Short names from one client score high, but carry no data.
        let mut d = detector();
        d.add(shard(T0, "numbered.org", 0, 120));
        assert!(d.evaluate(T0 + 15 * MIN).is_empty());
        // Long names, from one client, each asked four times: 50, high, but no data.
        let mut d = detector();
        let mut repeated = data_names(T0, "repeated.org", 120, 1);
        repeated.merge(&data_names(T0, "repeated.org", 120, 1));
        repeated.merge(&data_names(T0, "repeated.org", 120, 1));
        repeated.merge(&data_names(T0, "repeated.org", 120, 1));
        d.add(repeated);
        assert!(d.evaluate(T0 + 15 * MIN).is_empty());
        // Too few names.
        let mut d = detector();
        d.add(data_names(T0, "few.org", 50, 1));
        assert!(d.evaluate(T0 + 15 * MIN).is_empty());
        // Turned off.
        let mut d = Detector::new(RuleSettings {
            tunnel_threshold: 0,
            ..RuleSettings::default()
        });
        d.add(data_names(T0, "quiet.org", 120, 1));
        assert!(d.evaluate(T0 + 15 * MIN).is_empty());
    }

    #[test]
    fn over_the_threshold_every_domain_alerts_whatever_its_severity() {
        let mut d = detector();
        d.add(data_names(T0, "busy.org", 300, 60));
        d.add(data_names(T0, "tunnel.org", 300, 1));
        let alerts = d.evaluate(T0 + 15 * MIN);
        let severities: Vec<(&[u8], Severity, u64)> = alerts
            .iter()
            .map(|a| (&*a.domain, a.assessment.severity, a.threshold))
            .collect();
        assert_eq!(
            severities,
            [
                (&b"busy.org"[..], Severity::Low, 200),
                (&b"tunnel.org"[..], Severity::High, 200)
            ]
        );
        assert!(alerts[0].assessment.reasons.contains(&"many clients"));
    }

    #[test]
    fn names_spread_over_six_hours_stay_quiet() {
        // 260 names evenly over 6 h: about 173 in any 4 h window.
        let times: Vec<Nanos> = (0..260).map(|i| T0 + i * 6 * HOUR / 260).collect();
        let mut d = detector();
        let alerts = replay(&mut d, "slow.org", &times, T0 + 11 * HOUR);
        assert!(alerts.is_empty(), "{alerts:?}");
        // Old slots were dropped along the way: the window plus the newest slot.
        assert!(d.slots() <= 17, "{} slots held", d.slots());
    }

    #[test]
    fn slow_tunnel_over_three_and_a_half_hours_alerts() {
        // 210 names over 3.5 h: one query a minute.
        let times: Vec<Nanos> = (0..210).map(|i| T0 + i * MIN).collect();
        let mut d = detector();
        let alerts = replay(&mut d, "tunnel.org", &times, T0 + 5 * HOUR);
        // First alert when the slot holding the 201st name closes (name 200 at 3:20).
        assert_eq!(alerts[0].at, T0 + 3 * HOUR + 30 * MIN);
        assert_eq!(alerts[0].unique_hostnames, 210);
        assert_eq!(alerts[0].window_start, T0 + 3 * HOUR + 30 * MIN - 4 * HOUR);
        // Suppressed at 3:45 and 4:00, then under the threshold before the hour is
        // up (at 4:15 the window holds 195 names): no second alert.
        let at: Vec<Nanos> = alerts.iter().map(|a| a.at).collect();
        assert_eq!(at, vec![T0 + 3 * HOUR + 30 * MIN]);
    }

    #[test]
    fn realert_after_an_hour_or_every_time() {
        let feed = |d: &mut Detector| {
            let mut at = Vec::new();
            // 300 names in the first slot: over the threshold for 4 hours.
            d.add(shard(T0, "t.org", 0, 300));
            let mut t = T0 + 15 * MIN;
            while t <= T0 + 5 * HOUR {
                at.extend(d.evaluate(t).iter().map(|a| (a.at - T0) / MIN));
                t += 15 * MIN;
            }
            at
        };
        // A tunnel that stopped is reported once, not again every hour it stays over.
        assert_eq!(feed(&mut detector()), vec![15]);
        let mut every = Detector::new(RuleSettings {
            realert: 0,
            ..RuleSettings::default()
        });
        let expected: Vec<Nanos> = (1..=16).map(|k| k * 15).collect();
        assert_eq!(feed(&mut every), expected);
        assert_eq!(every.reports.len(), 0);
    }

    #[test]
    fn a_tunnel_that_goes_on_is_reported_again_each_realert() {
        let mut d = detector();
        let mut alerted = Vec::new();
        // 300 names up front, then a few more names every slot: it keeps going.
        d.add(shard(T0, "t.org", 0, 300));
        let mut t = T0 + 15 * MIN;
        let mut next_name = 300;
        while t <= T0 + 3 * HOUR {
            alerted.extend(d.evaluate(t).iter().map(|a| (a.at - T0) / MIN));
            d.add(shard(t, "t.org", next_name, 5));
            next_name += 5;
            t += 15 * MIN;
        }
        assert_eq!(alerted, vec![15, 75, 135]);
    }

    #[test]
    fn capped_largest_first_ties_by_name() {
        let mut d = Detector::new(RuleSettings {
            max_domains: 3,
            realert: 0,
            ..RuleSettings::default()
        });
        for (domain, n) in [
            ("e.org", 250),
            ("b.org", 300),
            ("c.org", 300),
            ("a.org", 220),
            ("d.org", 500),
        ] {
            d.add(shard(T0, domain, 0, n));
        }
        let alerts = d.evaluate(T0 + 15 * MIN);
        let got: Vec<(&[u8], u64)> = alerts
            .iter()
            .map(|a| (&*a.domain, a.unique_hostnames))
            .collect();
        assert_eq!(
            got,
            vec![(&b"d.org"[..], 500), (b"b.org", 300), (b"c.org", 300)]
        );
    }

    #[test]
    fn suppressed_domains_leave_room_for_new_ones() {
        let mut d = Detector::new(RuleSettings {
            max_domains: 1,
            ..RuleSettings::default()
        });
        d.add(shard(T0, "big.org", 0, 500));
        d.add(shard(T0, "small.org", 0, 250));
        let first: Vec<Box<[u8]>> = d
            .evaluate(T0 + 15 * MIN)
            .into_iter()
            .map(|a| a.domain)
            .collect();
        let second: Vec<Box<[u8]>> = d
            .evaluate(T0 + 30 * MIN)
            .into_iter()
            .map(|a| a.domain)
            .collect();
        assert_eq!(first, vec![Box::from(&b"big.org"[..])]);
        assert_eq!(second, vec![Box::from(&b"small.org"[..])]);
    }

    #[test]
    fn shards_of_two_workers_merge() {
        let mut d = detector();
        // Two workers saw overlapping names of the same domain in the same slot.
        d.add(shard(T0, "w.org", 0, 150));
        d.add(shard(T0, "w.org", 100, 150));
        assert_eq!(d.slots(), 1);
        assert_eq!(d.tracked(), 1);
        let alerts = d.evaluate(T0 + 15 * MIN);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].unique_hostnames, 250);
        assert_eq!(alerts[0].total_requests, 300);
        assert_eq!(alerts[0].total_bytes_out, 300 * 160);
    }

    #[test]
    fn old_slots_are_dropped() {
        let mut d = detector();
        d.add(shard(T0, "old.org", 0, 300));
        d.add(shard(T0 + 4 * HOUR, "new.org", 0, 10));
        // Evaluating at 4:00 still sees the slot at 0:00; at 4:15 it has left.
        assert_eq!(d.evaluate(T0 + 4 * HOUR).len(), 1);
        assert_eq!(d.slots(), 2);
        assert!(d.evaluate(T0 + 4 * HOUR + 15 * MIN).is_empty());
        assert_eq!(d.slots(), 1);
        assert_eq!(d.tracked(), 1);
        // A straggler for a slot that left the window is refused.
        d.add(shard(T0, "old.org", 0, 300));
        assert_eq!(d.late_shards(), 1);
        assert_eq!(d.slots(), 1);
        // Without evaluations, shards far ahead push old slots out too.
        let mut d = detector();
        d.add(shard(T0, "old.org", 0, 300));
        d.add(shard(T0 + 5 * HOUR, "new.org", 0, 10));
        assert_eq!(d.slots(), 1);
    }

    #[test]
    fn unaligned_final_evaluation() {
        let mut d = detector();
        d.add(shard(T0, "a.org", 0, 300));
        d.add(shard(T0 + 4 * HOUR, "a.org", 300, 1));
        // At 4:07 the window reaches back to the slot holding 0:07: the one at 0:00.
        let alerts = d.evaluate(T0 + 4 * HOUR + 7 * MIN);
        assert_eq!(alerts[0].unique_hostnames, 301);
        assert_eq!(alerts[0].window_start, T0);
        // At 4:15, a boundary, the window is exactly [0:15, 4:15): the slot at 0:00 is out.
        let mut d = detector();
        d.add(shard(T0, "a.org", 0, 300));
        d.add(shard(T0 + 4 * HOUR, "a.org", 300, 1));
        assert!(d.evaluate(T0 + 4 * HOUR + 15 * MIN).is_empty());
        let mut d = detector();
        d.add(shard(T0 + 15 * MIN, "a.org", 0, 300));
        let alerts = d.evaluate(T0 + 7 * MIN);
        assert_eq!(
            alerts.len(),
            0,
            "slot starting after `at` is not in the window"
        );
        d.add(shard(T0, "a.org", 0, 300));
        let alerts = d.evaluate(T0 + 7 * MIN);
        assert_eq!(alerts[0].window_end, T0 + 7 * MIN);
        assert_eq!(alerts[0].window_start, T0 - 4 * HOUR);
    }

    #[test]
    fn estimated_domains_are_merged_and_reported() {
        let mut d = detector();
        d.add(shard(T0, "big.org", 0, 5000));
        d.add(shard(T0 + 15 * MIN, "big.org", 2500, 5000));
        let alerts = d.evaluate(T0 + 30 * MIN);
        assert_eq!(alerts.len(), 1);
        let unique = alerts[0].unique_hostnames as f64;
        assert!((unique - 7500.0).abs() / 7500.0 < 0.02, "{unique}");
        assert!(alerts[0].estimated);
        assert_eq!(alerts[0].threshold, 200);
        assert_eq!(alerts[0].total_requests, 10_000);
        // Under the exact limit in every slot, the count is exact and says so.
        let mut d = detector();
        d.add(shard(T0, "small.org", 0, 300));
        let alerts = d.evaluate(T0 + 15 * MIN);
        assert_eq!(alerts[0].unique_hostnames, 300);
        assert!(!alerts[0].estimated);
    }

    #[test]
    fn a_new_rule_applies_to_the_window_held_and_keeps_what_was_reported() {
        // 250 names over four slots: under a threshold of 300, over one of 200.
        let strict = RuleSettings {
            threshold: 300,
            ..RuleSettings::default()
        };
        let mut d = Detector::new(strict);
        for s in 0..4 {
            let names = if s < 2 { 63 } else { 62 };
            d.add(shard(T0 + s * 15 * MIN, "t.org", s * 63, names));
        }
        d.add(shard(T0, "quiet.org", 0, 150));
        assert!(d.evaluate(T0 + HOUR).is_empty());
        let looser = RuleSettings {
            threshold: 200,
            ..RuleSettings::default()
        };
        assert_eq!(
            d.reconfigure(looser.clone()),
            None,
            "15 min slots, as before"
        );
        let mut fresh = Detector::new(looser.clone());
        for shard in d.slots.values() {
            fresh.add(shard.clone());
        }
        let alerts = d.evaluate(T0 + HOUR + 15 * MIN);
        assert_eq!(alerts.len(), 1);
        assert_eq!(&*alerts[0].domain, b"t.org");
        assert_eq!(alerts[0].threshold, 200);
        assert_eq!(alerts, fresh.evaluate(T0 + HOUR + 15 * MIN));
        // A report stays a report: a lower threshold still waits for `realert`.
        d.reconfigure(RuleSettings {
            threshold: 100,
            ..looser
        });
        let alerts = d.evaluate(T0 + HOUR + 30 * MIN);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(&*alerts[0].domain, b"quiet.org");
    }

    #[test]
    fn a_shorter_window_keeps_only_the_slots_inside_it() {
        let mut d = detector();
        d.add(shard(T0, "early.org", 0, 300));
        d.add(shard(T0 + 3 * HOUR, "late.org", 0, 300));
        let hour = RuleSettings {
            window: HOUR,
            ..RuleSettings::default()
        };
        assert_eq!(d.reconfigure(hour), None);
        let alerts = d.evaluate(T0 + 3 * HOUR + 15 * MIN);
        assert_eq!(alerts.len(), 1);
        assert_eq!(&*alerts[0].domain, b"late.org");
        assert_eq!(alerts[0].window_start, T0 + 2 * HOUR + 15 * MIN);
        assert_eq!(d.slots(), 1, "the slot three hours back is gone");
    }

    #[test]
    fn a_new_interval_names_the_slots_that_span_its_boundaries() {
        let held = |d: &mut Detector| {
            for s in 0..4 {
                d.add(shard(T0 + s * 15 * MIN, "t.org", s * 100, 100));
            }
        };
        let every = |interval: Nanos| RuleSettings {
            interval,
            ..RuleSettings::default()
        };
        // 15 min slots fit 30 min and 1 h boundaries.
        for interval in [30 * MIN, HOUR] {
            let mut d = detector();
            held(&mut d);
            assert_eq!(d.reconfigure(every(interval)), None, "{interval}");
        }
        // Every 15 min slot spans a 10 min boundary (0:10, 0:20, 0:40, 0:50), and two
        // 5 min ones.
        for interval in [5 * MIN, 10 * MIN] {
            let mut d = detector();
            held(&mut d);
            assert_eq!(
                d.reconfigure(every(interval)),
                Some(T0 + HOUR),
                "{interval}"
            );
        }
        let mut d = detector();
        held(&mut d);
        d.reconfigure(every(10 * MIN));
        assert_eq!(d.slot_length(), 10 * MIN);
        // The slots stay, at their length: the next boundary counts them all.
        let alerts = d.evaluate(T0 + HOUR);
        assert_eq!(alerts[0].unique_hostnames, 400);
        assert!(spans_a_boundary(T0 + 5 * MIN, T0 + 15 * MIN, 10 * MIN));
        assert!(!spans_a_boundary(T0, T0 + 10 * MIN, 10 * MIN));
        assert!(!spans_a_boundary(T0 + 10 * MIN, T0 + 15 * MIN, 10 * MIN));
    }
}
