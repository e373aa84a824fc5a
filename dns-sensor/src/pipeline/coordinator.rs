//! The coordinator: merges the workers' closed slots into the window, evaluates the
//! rule at every interval boundary every worker has passed, and hands the alerts to
//! the outputs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::state::{Snapshot, StateWriter};
use super::PipelineError;
use super::{nonzero_counts, Reload, ToCoordinator, WorkerStats};
use crate::alert::{QueueStats, Sink};
use crate::detect::snapshot::Restored;
use crate::detect::{spans_a_boundary, Alert, Detector, RuleSettings};
use crate::fleet::{slot_rows, FleetSettings, SlotShipper};
use crate::Nanos;

/// Totals of a run, for the summary. Serialised with these field names in the
/// replay's JSON summary (`span` as two numbers, nanoseconds since the epoch).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunSummary {
    /// Counters summed over the workers.
    pub workers: WorkerStats,
    /// Alerts emitted.
    pub alerts: u64,
    /// Rule evaluations run.
    pub evaluations: u64,
    /// Most domains held in the window at once.
    pub peak_domains: usize,
    /// Records (queries and responses) lost because their domain was shed or refused
    /// for lack of room in a shard.
    pub shed_records: u64,
    /// Domains shed to make room (one per slot it was shed from).
    pub evicted_domains: u64,
    /// Shards dropped on arrival because their slot had already left the window (a
    /// worker far behind the others): their records are lost, and counted here.
    pub late_shards: u64,
    /// Largest estimated size of the window's per-domain tables, in bytes.
    pub peak_bytes: usize,
    /// What the window covered: the start of the first slot that held data, and the
    /// time of the last frame.
    pub span: Option<(Nanos, Nanos)>,
    /// Deliveries of an evaluation's alerts that an output refused (each is logged).
    pub delivery_failures: u64,
}

/// The summary: the workers' traffic lines, then a line for the window (what it lost
/// for room only when it lost some) and one for the evaluations and the outputs.
impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n  window: at most {} domains ({:.1} MiB of tables)",
            self.workers,
            self.peak_domains,
            self.peak_bytes as f64 / f64::from(1u32 << 20)
        )?;
        let lost = nonzero_counts(&[
            (self.evicted_domains, "domains shed for room"),
            (self.shed_records, "records lost with them"),
            (self.late_shards, "late shards dropped"),
        ]);
        if !lost.is_empty() {
            write!(f, ", {lost}")?;
        }
        write!(
            f,
            "\n  rule: {} evaluations, {} alerts",
            self.evaluations, self.alerts
        )?;
        if self.delivery_failures > 0 {
            write!(f, ", {} failed deliveries", self.delivery_failures)?;
        }
        Ok(())
    }
}

/// The window's figures as the coordinator last published them (after every slot it
/// took in and the evaluations that followed), for whoever reports on a run while it
/// goes: the live stats line.
#[derive(Debug, Default)]
pub struct WindowGauges {
    /// Domains in the window (a domain in several slots counts once per slot).
    pub domains: AtomicUsize,
    /// [`RunSummary::shed_records`] so far.
    pub shed_records: AtomicU64,
    /// [`RunSummary::evicted_domains`] so far.
    pub evicted_domains: AtomicU64,
    /// [`RunSummary::late_shards`] so far.
    pub late_shards: AtomicU64,
    /// [`RunSummary::evaluations`] so far.
    pub evaluations: AtomicU64,
    /// How long the latest evaluation took (the rule's merges and the deliveries), in
    /// nanoseconds.
    pub last_evaluation_nanos: AtomicU64,
    /// [`RunSummary::alerts`] so far.
    pub alerts: AtomicU64,
    /// [`RunSummary::delivery_failures`] so far.
    pub delivery_failures: AtomicU64,
    /// The outputs that queue their deliveries, as of the loop's last turn.
    pub queues: std::sync::Mutex<Vec<QueueStats>>,
    /// When the last snapshot of the window was written whole, in nanoseconds since
    /// the epoch (0: none yet).
    pub last_snapshot_at: AtomicU64,
    /// How long the last snapshot took to encode and write, in nanoseconds.
    pub last_snapshot_nanos: AtomicU64,
}

/// How the coordinator is doing, for a [`Heartbeat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Alerts delivered so far.
    pub alerts: u64,
    /// Evaluations run so far.
    pub evaluations: u64,
    /// Domains in the window (a domain in several slots counts once per slot).
    pub domains: usize,
    /// Deliveries an output refused so far.
    pub delivery_failures: u64,
}

/// Called from the coordinator's own loop at least every `every` while it is making
/// progress, and never while it is stuck (in an evaluation, or on an output that
/// blocks): what a service manager's watchdog needs to hear.
pub struct Heartbeat {
    /// At most this long between beats while the loop turns.
    pub every: Duration,
    /// What a beat does.
    pub beat: Box<dyn FnMut(&Progress) + Send>,
}

/// Merges workers' slots into the window, evaluates the rule on interval boundaries and
/// sends alerts to the sinks.
pub struct Coordinator {
    detector: Detector,
    interval: Nanos,
    window: Nanos,
    sinks: Vec<Box<dyn Sink>>,
    /// Start of each worker's open slot: everything before has been received.
    frontier: Vec<Option<Nanos>>,
    /// Interval boundaries up to here have been evaluated.
    evaluated_until: Option<Nanos>,
    /// Boundaries before this are skipped: a slot held spans them (the last slots of
    /// the old length after a reload changed the interval), and an evaluation there
    /// would count traffic from after it.
    skip_before: Nanos,
    /// Start of the oldest and end of the newest slot received.
    data_span: Option<(Nanos, Nanos)>,
    summary: RunSummary,
    /// How long the latest evaluation took.
    last_evaluation_nanos: u64,
    /// Where the window's figures are published while running (the live stats line),
    /// if anyone reads them.
    gauges: Option<Arc<WindowGauges>>,
    heartbeat: Option<Heartbeat>,
    /// Where the window is kept across restarts, if anywhere.
    state: Option<StateWriter>,
    /// The last slot boundary a snapshot was handed in at.
    kept_boundary: Option<Nanos>,
    /// Whether the end of the input is the end of the traffic: then the frames after
    /// the last boundary are evaluated too.
    final_evaluation: bool,
    /// Where closed slots are shipped for the fleet's rule, if anywhere.
    fleet: Option<FleetShipping>,
}

/// The fleet's side of the coordinator: its shipper, and the next slot to ship.
struct FleetShipping {
    shipper: SlotShipper,
    settings: FleetSettings,
    /// Slots before this start have been offered.
    next_slot: Nanos,
}

/// How long the end of a run waits for the fleet's shipper to send what waits.
const FLEET_PATIENCE: Duration = Duration::from_secs(60);

impl Coordinator {
    /// A coordinator for `workers` workers.
    pub fn new(rule: &RuleSettings, workers: usize, sinks: Vec<Box<dyn Sink>>) -> Self {
        Self {
            detector: Detector::new(rule.clone()),
            interval: rule.interval,
            window: rule.window,
            sinks,
            frontier: vec![None; workers],
            evaluated_until: None,
            skip_before: 0,
            data_span: None,
            summary: RunSummary::default(),
            last_evaluation_nanos: 0,
            gauges: None,
            heartbeat: None,
            state: None,
            kept_boundary: None,
            final_evaluation: true,
            fleet: None,
        }
    }

    /// Ships every slot to the fleet's ClickHouse through `shipper` once every worker
    /// has closed it, and at the end of the run the slots still open.
    pub fn with_fleet(mut self, shipper: SlotShipper, settings: &FleetSettings) -> Self {
        self.fleet = Some(FleetShipping {
            shipper,
            settings: settings.clone(),
            next_slot: 0,
        });
        self
    }

    /// Leaves the frames after the last boundary to the next run, which goes on from
    /// the kept window (`replay --state`: the next file of a rotated capture): no
    /// evaluation at the end of the input.
    pub fn without_final_evaluation(mut self) -> Self {
        self.final_evaluation = false;
        self
    }

    /// Goes on from a window kept by an earlier run: its slots, its reports, the
    /// boundaries it had evaluated.
    pub fn with_restored(mut self, restored: Restored) -> Self {
        self.detector = restored.detector;
        self.evaluated_until = restored.evaluated_until;
        if let Some(end) = restored.skip_before {
            self.skip_before = self.skip_before.max(end);
        }
        self.data_span = self.detector.held_span();
        self.summary.peak_domains = self.detector.tracked();
        self.summary.peak_bytes = self.detector.bytes();
        self
    }

    /// Keeps the window with `state`: a snapshot at every slot boundary (after its
    /// evaluations), and one at the end of the run.
    pub fn with_state(mut self, state: StateWriter) -> Self {
        self.state = Some(state);
        self
    }

    /// Keeps the window with `state` at the end of the run only: a replay, which a
    /// crash does not leave half done, need not pay an encoding every slot.
    pub fn with_state_at_the_end(mut self, state: StateWriter) -> Self {
        self.state = Some(state);
        self.kept_boundary = Some(Nanos::MAX);
        self
    }

    /// Publishes the window's figures into `gauges` after every slot.
    pub fn with_gauges(mut self, gauges: Arc<WindowGauges>) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Beats `heartbeat` from the loop: the loop then wakes at least that often even
    /// when no slot arrives.
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }

    /// Takes messages until every worker is done, then evaluates once more at the end
    /// of the input.
    pub fn run(self, from_workers: Receiver<ToCoordinator>) -> Result<RunSummary, PipelineError> {
        self.run_keeping_window(from_workers)
            .map(|(summary, _)| summary)
    }

    /// As [`run`](Self::run), and hands back the window as the run left it: to keep it,
    /// or, in a process about to exit, to not spend time freeing it (a full window is a
    /// million and more tables).
    pub fn run_keeping_window(
        mut self,
        from_workers: Receiver<ToCoordinator>,
    ) -> Result<(RunSummary, Detector), PipelineError> {
        let mut running = self.frontier.len();
        let mut last_ts: Option<Nanos> = None;
        // Without a heartbeat, nothing needs the loop between messages.
        let wake_every = self
            .heartbeat
            .as_ref()
            .map_or(Duration::MAX, |h| h.every.min(Duration::from_secs(1)));
        let mut next_beat = Instant::now();
        while running > 0 {
            self.beat_if_due(&mut next_beat);
            let message = match from_workers.recv_timeout(wake_every) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match message {
                ToCoordinator::Slot {
                    worker,
                    shard,
                    end,
                    next_start,
                } => {
                    if spans_a_boundary(shard.start(), end, self.interval) {
                        self.skip_before = self.skip_before.max(end);
                    }
                    if !shard.is_empty() {
                        let start = shard.start();
                        let end = start.saturating_add(self.detector.slot_length());
                        self.data_span = Some(match self.data_span {
                            None => (start, end),
                            Some((first, last)) => (first.min(start), last.max(end)),
                        });
                    }
                    self.detector.add(shard);
                    let tracked = self.detector.tracked();
                    self.summary.peak_domains = self.summary.peak_domains.max(tracked);
                    self.summary.peak_bytes = self.summary.peak_bytes.max(self.detector.bytes());
                    self.summary.shed_records = self.detector.shed_records_total();
                    self.summary.evicted_domains = self.detector.evicted_domains_total();
                    self.summary.late_shards = self.detector.late_shards();
                    self.frontier[worker] = Some(next_start);
                    self.evaluate_passed_boundaries()?;
                    if let Some(passed) = self.passed() {
                        self.ship_closed_slots(passed);
                    }
                    self.keep_state_at_slot_boundaries();
                    self.publish_gauges();
                }
                ToCoordinator::Done {
                    worker,
                    stats,
                    last_ts: worker_last,
                } => {
                    running -= 1;
                    self.summary.workers.add(&stats);
                    if let Some(t) = worker_last {
                        last_ts = Some(last_ts.map_or(t, |l| l.max(t)));
                    }
                    // A finished worker holds no boundary back.
                    self.frontier[worker] = Some(Nanos::MAX);
                }
                ToCoordinator::Reload(reload) => self.reload(*reload),
                ToCoordinator::ReopenOutputs => self.reopen_outputs(),
            }
        }
        if let Some(end) = last_ts {
            self.evaluate_passed_boundaries_until(end)?;
            if self.final_evaluation {
                // The final evaluation covers the frames after the last boundary too.
                self.evaluate(end.saturating_add(1))?;
            }
            self.summary.span = self.data_span.map(|(first, _)| (first, end));
            self.publish_gauges();
        }
        // Every worker is done: the slots still open are as complete as they get.
        self.ship_closed_slots(Nanos::MAX);
        if let Some(fleet) = self.fleet.take() {
            let stats = fleet.shipper.finish(FLEET_PATIENCE);
            log::info!("fleet: {stats}");
        }
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                log::error!("alert output {}: {e}", sink.name());
                self.summary.delivery_failures += 1;
            }
        }
        if let Some(state) = self.state.take() {
            let started = Instant::now();
            let written_at = crate::clock::wall_clock();
            let bytes = self.detector.to_snapshot(written_at, self.evaluated_until);
            state.finish(Snapshot::new(bytes, written_at, started));
        }
        Ok((self.summary, self.detector))
    }

    /// Offers the fleet's shipper every held slot not offered yet that ends by
    /// `passed` (every worker has moved past it, so no more shards of it come).
    fn ship_closed_slots(&mut self, passed: Nanos) {
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let slot = self.detector.slot_length();
        let version = crate::clock::wall_clock();
        for shard in self.detector.slots_from(fleet.next_slot) {
            let end = shard.start().saturating_add(slot);
            if end > passed {
                break;
            }
            let rows = slot_rows(shard, slot, &fleet.settings, version);
            fleet.shipper.offer(shard.start(), &rows);
            fleet.next_slot = end;
        }
    }

    /// Hands the window to the state writer, if there is one.
    fn keep_state(&self) {
        if let Some(state) = &self.state {
            let started = Instant::now();
            let written_at = crate::clock::wall_clock();
            let bytes = self.detector.to_snapshot(written_at, self.evaluated_until);
            if !state.offer(Snapshot::new(bytes, written_at, started)) {
                log::debug!("state: the last snapshot is still being written; this one is skipped");
            }
        }
    }

    /// Stores the window's figures where the gauges' reader looks (after a slot is
    /// taken in and its boundaries evaluated, so a pruned window shows as such).
    fn publish_gauges(&self) {
        if let Some(gauges) = &self.gauges {
            let s = &self.summary;
            gauges
                .domains
                .store(self.detector.tracked(), Ordering::Relaxed);
            gauges.shed_records.store(s.shed_records, Ordering::Relaxed);
            gauges
                .evicted_domains
                .store(s.evicted_domains, Ordering::Relaxed);
            gauges.late_shards.store(s.late_shards, Ordering::Relaxed);
            gauges.evaluations.store(s.evaluations, Ordering::Relaxed);
            gauges
                .last_evaluation_nanos
                .store(self.last_evaluation_nanos, Ordering::Relaxed);
            gauges.alerts.store(s.alerts, Ordering::Relaxed);
            gauges
                .delivery_failures
                .store(s.delivery_failures, Ordering::Relaxed);
        }
    }

    /// Evaluates every boundary that all running workers have passed.
    fn evaluate_passed_boundaries(&mut self) -> Result<(), PipelineError> {
        match self.passed() {
            Some(t) => self.evaluate_passed_boundaries_until(t),
            None => Ok(()),
        }
    }

    /// How far every running worker has got: the earliest start of their open slots
    /// (`None` while one has sent nothing yet, which holds everything back).
    fn passed(&self) -> Option<Nanos> {
        let mut passed: Option<Nanos> = None;
        for f in &self.frontier {
            let t = (*f)?;
            passed = Some(passed.map_or(t, |p| p.min(t)));
        }
        passed
    }

    /// Hands the window to the state writer once every worker has passed a slot
    /// boundary not kept yet: a snapshot a slot, after that slot's evaluations.
    fn keep_state_at_slot_boundaries(&mut self) {
        if self.state.is_none() {
            return;
        }
        let Some(passed) = self.passed() else {
            return;
        };
        let boundary = self.detector.slot_start(passed);
        if self.kept_boundary.is_none_or(|kept| boundary > kept) {
            self.kept_boundary = Some(boundary);
            self.keep_state();
        }
    }

    /// Evaluates the rule at every interval boundary in `(evaluated_until, until]`,
    /// skipping boundaries whose window holds no traffic: a long gap in a capture, a
    /// bogus timestamp or a clock step must not cost millions of empty evaluations.
    /// Timestamps come from the input, up to `Nanos::MAX`: the arithmetic here stops at
    /// the end of the range rather than wrapping.
    fn evaluate_passed_boundaries_until(&mut self, until: Nanos) -> Result<(), PipelineError> {
        let Some((oldest, _)) = self.data_span else {
            return Ok(());
        };
        let interval = self.interval;
        let boundary_after = |t: Nanos| (t - t % interval).checked_add(interval);
        let last_boundary = until - until % interval;
        // No evaluation before the first data: start at the first boundary after it.
        let first = match self.evaluated_until {
            Some(t) => t.checked_add(interval),
            None => boundary_after(oldest),
        };
        let Some(mut at) = first else {
            return Ok(());
        };
        while at <= until {
            if at >= self.skip_before {
                match self.detector.next_traffic_for(at) {
                    Some(start) if start < at => self.evaluate(at)?,
                    Some(start) => match boundary_after(start) {
                        // The next window with traffic is the one that takes in `start`.
                        Some(next) if next <= until => {
                            self.evaluated_until = Some(next - interval);
                            at = next;
                            continue;
                        }
                        _ => {
                            self.evaluated_until = Some(last_boundary);
                            return Ok(());
                        }
                    },
                    None => {
                        self.evaluated_until = Some(last_boundary);
                        return Ok(());
                    }
                }
            }
            self.evaluated_until = Some(at);
            match at.checked_add(interval) {
                Some(next) => at = next,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, at: Nanos) -> Result<(), PipelineError> {
        let started = Instant::now();
        self.deliver_evaluation(at);
        self.last_evaluation_nanos =
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Evaluates the rule at `at` and hands its alerts to every output.
    fn deliver_evaluation(&mut self, at: Nanos) {
        self.summary.evaluations += 1;
        let alerts: Vec<Alert> = self.detector.evaluate(at);
        if alerts.is_empty() {
            return;
        }
        // One output failing (a full disk, a journal that went away) must not silence
        // the others, nor stop detection.
        for sink in &mut self.sinks {
            if let Err(e) = sink.deliver(&alerts) {
                log::error!(
                    "alert output {}: {} alerts not delivered: {e}",
                    sink.name(),
                    alerts.len()
                );
                self.summary.delivery_failures += 1;
            }
        }
        self.summary.alerts += alerts.len() as u64;
    }

    /// Applies new settings to the window held: the rule at once, the outputs in
    /// place of the running ones (flushed on a thread of their own). A new interval resumes evaluations
    /// on its own boundaries after the last evaluated one, skipping those that a slot
    /// of the old length spans.
    fn reload(&mut self, reload: Reload) {
        let Reload { rule, sinks } = reload;
        let changes = rule_changes(self.detector.settings(), &rule);
        if let Some(end) = self.detector.reconfigure(rule.clone()) {
            self.skip_before = self.skip_before.max(end);
        }
        if rule.interval != self.interval {
            self.evaluated_until = self.evaluated_until.map(|t| t - t % rule.interval);
        }
        self.interval = rule.interval;
        self.window = rule.window;
        let replaced = std::mem::replace(&mut self.sinks, sinks);
        // Flushing waits for a queue to be sent (email: up to its flush_wait, 30 s by
        // default, while a relay is down), which the coordinator, whose loop feeds the
        // watchdog, must not wait for.
        let flushing = std::thread::Builder::new()
            .name("dns-sensor-replaced-outputs".into())
            .spawn(move || {
                for mut sink in replaced {
                    if let Err(e) = sink.flush() {
                        log::error!("alert output {} (replaced by a reload): {e}", sink.name());
                    }
                }
            });
        if let Err(e) = flushing {
            log::error!("the replaced outputs are dropped unflushed: {e}");
        }
        let outputs: Vec<String> = self.sinks.iter().map(|s| s.name()).collect();
        log::info!(
            "settings reloaded: {changes}; outputs {}",
            if outputs.is_empty() {
                "none".to_owned()
            } else {
                outputs.join(", ")
            }
        );
    }

    /// Reopens every output's files (logrotate moved them away).
    fn reopen_outputs(&mut self) {
        for sink in &mut self.sinks {
            match sink.reopen() {
                Ok(true) => log::info!("alert output {}: reopened", sink.name()),
                Ok(false) => {}
                Err(e) => log::error!("alert output {}: reopening failed: {e}", sink.name()),
            }
        }
    }

    /// Beats the heartbeat when due, and publishes the queueing outputs' figures:
    /// called whenever the loop wakes.
    fn beat_if_due(&mut self, next_beat: &mut Instant) {
        if let Some(gauges) = &self.gauges {
            let queues = self.sinks.iter().filter_map(|s| s.queue_stats()).collect();
            *gauges.queues.lock().unwrap_or_else(|e| e.into_inner()) = queues;
        }
        let progress = Progress {
            alerts: self.summary.alerts,
            evaluations: self.summary.evaluations,
            domains: self.detector.tracked(),
            delivery_failures: self.summary.delivery_failures,
        };
        if let Some(heartbeat) = &mut self.heartbeat {
            let now = Instant::now();
            if now >= *next_beat {
                (heartbeat.beat)(&progress);
                *next_beat = now + heartbeat.every;
            }
        }
    }
}

/// What a reload changes in the rule, for its log line: `threshold 200 -> 150, window
/// 4h -> 2h`, or `the rule unchanged`.
fn rule_changes(old: &RuleSettings, new: &RuleSettings) -> String {
    let duration = |n: Nanos| humantime::format_duration(Duration::from_nanos(n)).to_string();
    let mut changes = Vec::new();
    let mut changed = |what: &str, old: String, new: String| {
        if old != new {
            changes.push(format!("{what} {old} -> {new}"));
        }
    };
    changed(
        "threshold",
        old.threshold.to_string(),
        new.threshold.to_string(),
    );
    changed("window", duration(old.window), duration(new.window));
    changed("interval", duration(old.interval), duration(new.interval));
    changed("realert", duration(old.realert), duration(new.realert));
    changed(
        "max_domains",
        old.max_domains.to_string(),
        new.max_domains.to_string(),
    );
    changed(
        "top_clients",
        old.top_clients.to_string(),
        new.top_clients.to_string(),
    );
    if changes.is_empty() {
        "the rule unchanged".to_owned()
    } else {
        changes.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Mutex;

    use super::*;
    use crate::alert::AlertError;
    use crate::capture::{Frame, LinkType};
    use crate::config::Config;
    use crate::domain::Classifier;
    use crate::pipeline::{run_frames, Worker};
    use crate::synth::scenario::{background, Traffic, Tunnel, EPOCH, MINUTE};

    /// A tunnel of 300 names in ten minutes, inside ordinary traffic.
    fn tunnel_traffic() -> Vec<(Nanos, Vec<u8>)> {
        let mut traffic = background(EPOCH, 20 * MINUTE, 5, 20, 7);
        traffic.extend(
            Tunnel::new("t.example", 300, EPOCH + MINUTE, 10 * MINUTE)
                .build()
                .0,
        );
        traffic.into_sorted()
    }

    struct Refuses;

    impl Sink for Refuses {
        fn name(&self) -> String {
            "refuses".into()
        }
        fn deliver(&mut self, _: &[Alert]) -> Result<(), AlertError> {
            Err(std::io::Error::other("disk full").into())
        }
    }

    struct Keeps(Arc<Mutex<Vec<Vec<Alert>>>>);

    impl Sink for Keeps {
        fn name(&self) -> String {
            "keeps".into()
        }
        fn deliver(&mut self, alerts: &[Alert]) -> Result<(), AlertError> {
            self.0.lock().expect("not poisoned").push(alerts.to_vec());
            Ok(())
        }
    }

    #[test]
    fn a_failing_output_is_counted_and_the_others_still_get_every_alert() {
        let frames = tunnel_traffic();
        let settings = Config::default().settings().expect("defaults");
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Refuses), Box::new(Keeps(kept.clone()))];
        let report = run_frames(&[Traffic::frames_of(&frames)], &settings, sinks).expect("runs");
        let kept = kept.lock().expect("not poisoned");
        // One delivery per evaluation with alerts, each evaluation's alerts together.
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(&*kept[0][0].domain, b"t.example");
        assert_eq!(report.summary.alerts, 1);
        assert_eq!(report.summary.delivery_failures, 1);
    }

    #[test]
    fn gauges_follow_the_window_and_late_shards_are_counted() {
        use crate::sketch::{Shard, SketchSettings};
        let rule = RuleSettings::default();
        let slot = crate::detect::slot_length(rule.window, rule.interval);
        let small = SketchSettings {
            max_domains: 4,
            ..SketchSettings::default()
        };
        let client = std::net::IpAddr::from([10, 0, 0, 1]);
        let shard_at = |start: Nanos, domains: u32| {
            let mut shard = Shard::new(start, &small);
            for d in 0..domains {
                let domain = format!("d{d}.example");
                let name = format!("www.{domain}");
                shard.record_query(domain.as_bytes(), name.as_bytes(), client, 1, 60);
            }
            shard
        };
        let gauges = Arc::new(WindowGauges::default());
        let coordinator = Coordinator::new(&rule, 1, Vec::new()).with_gauges(Arc::clone(&gauges));
        let (to_coordinator, from_workers) = crossbeam_channel::unbounded();
        let first = EPOCH - EPOCH % slot;
        // Eight domains into room for four: shed. Then slots past a whole window, and
        // one for the first slot again, gone from the window by then: late.
        let slots = rule.window / slot + 2;
        for i in 0..slots {
            let start = first + i * slot;
            let shard = shard_at(start, if i == 0 { 8 } else { 2 });
            let next_start = start + slot;
            let message = ToCoordinator::Slot {
                worker: 0,
                shard,
                end: next_start,
                next_start,
            };
            to_coordinator.send(message).expect("sent");
        }
        let late = ToCoordinator::Slot {
            worker: 0,
            shard: shard_at(first, 1),
            end: first + slot,
            next_start: first + (slots + 1) * slot,
        };
        to_coordinator.send(late).expect("sent");
        to_coordinator
            .send(ToCoordinator::Done {
                worker: 0,
                stats: WorkerStats::default(),
                last_ts: Some(first + (slots + 1) * slot - 1),
            })
            .expect("sent");
        drop(to_coordinator);
        let (summary, window) = coordinator.run_keeping_window(from_workers).expect("runs");
        assert!(
            summary.evicted_domains > 0 && summary.shed_records > 0,
            "{summary}"
        );
        assert_eq!(summary.late_shards, 1, "{summary}");
        assert!(
            summary.to_string().contains(", 1 late shards dropped\n"),
            "{summary}"
        );
        let load = |g: &AtomicU64| g.load(Ordering::Relaxed);
        assert_eq!(load(&gauges.shed_records), summary.shed_records);
        assert_eq!(load(&gauges.evicted_domains), summary.evicted_domains);
        assert_eq!(load(&gauges.late_shards), 1);
        assert_eq!(gauges.domains.load(Ordering::Relaxed), window.tracked());
    }

    /// Blocks every delivery until the test lets it go.
    struct Blocks(Arc<Mutex<()>>);

    impl Sink for Blocks {
        fn name(&self) -> String {
            "blocks".into()
        }
        fn deliver(&mut self, _: &[Alert]) -> Result<(), AlertError> {
            drop(self.0.lock().expect("not poisoned"));
            Ok(())
        }
    }

    /// Beats that arrive within `within`.
    fn beats(rx: &mpsc::Receiver<Progress>, within: Duration) -> Vec<Progress> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(p) => got.push(p),
                Err(_) => break,
            }
        }
        got
    }

    #[test]
    fn heartbeat_beats_while_idle_stops_while_an_output_blocks_and_comes_back() {
        let settings = Config::default().settings().expect("defaults");
        let gate = Arc::new(Mutex::new(()));
        let (beat_tx, beat_rx) = mpsc::channel();
        let beat_tx = Mutex::new(beat_tx);
        let coordinator = Coordinator::new(&settings.rule, 1, vec![Box::new(Blocks(gate.clone()))])
            .with_heartbeat(Heartbeat {
                every: Duration::from_millis(20),
                beat: Box::new(move |p| {
                    let _ = beat_tx.lock().expect("not poisoned").send(*p);
                }),
            });
        let (to_coordinator, from_workers) = crossbeam_channel::bounded(64);
        let classifier = Arc::new(Classifier::new(&settings.domain).expect("classifier"));
        let mut worker = Worker::new(0, &settings, classifier, to_coordinator);
        let coordinating = std::thread::spawn(move || coordinator.run(from_workers));

        // Idle: no slot has come, the loop still turns.
        let idle = beats(&beat_rx, Duration::from_millis(400));
        assert!(idle.len() >= 5, "{} beats while idle", idle.len());
        assert!(idle.iter().all(|p| p.evaluations == 0));

        // The tunnel's slot closes; its evaluation's delivery blocks on the gate.
        let held = gate.lock().expect("not poisoned");
        for (ts, data) in tunnel_traffic() {
            worker.process(&Frame {
                ts,
                link: LinkType::Ethernet,
                data: &data,
            });
        }
        worker.tick(EPOCH + 20 * MINUTE);
        // Beats already on their way may still land; then nothing while it is stuck.
        let _ = beats(&beat_rx, Duration::from_millis(100));
        let stuck = beats(&beat_rx, Duration::from_millis(400));
        assert!(stuck.is_empty(), "{} beats while stuck", stuck.len());

        drop(held);
        let back = beats(&beat_rx, Duration::from_millis(400));
        assert!(back.len() >= 5, "{} beats after", back.len());
        assert_eq!(back.last().map(|p| p.alerts), Some(1));
        worker.finish();
        let summary = coordinating.join().expect("joined").expect("ran");
        assert_eq!(summary.alerts, 1);
    }

    /// A worker over `traffic` with reloads in between: `reloads` holds, for a time,
    /// the settings the coordinator and the workers take at that time. Returns the
    /// alerts of every output, old and new, in order, and the summary.
    fn run_with_reloads(
        settings: &crate::pipeline::Settings,
        traffic: &[(Nanos, Vec<u8>)],
        reloads: &[(Nanos, crate::pipeline::Settings)],
        until: Nanos,
    ) -> (Vec<Vec<Vec<Alert>>>, RunSummary) {
        use crate::pipeline::{Reload, WorkerSettings, WorkerUpdates};
        let classifier = Arc::new(Classifier::new(&settings.domain).expect("classifier"));
        let kept: Vec<_> = (0..=reloads.len())
            .map(|_| Arc::new(Mutex::new(Vec::new())))
            .collect();
        let coordinator =
            Coordinator::new(&settings.rule, 1, vec![Box::new(Keeps(kept[0].clone()))]);
        let (to_coordinator, from_workers) = crossbeam_channel::unbounded();
        let updates = Arc::new(WorkerUpdates::default());
        let mut worker = Worker::new(0, settings, Arc::clone(&classifier), to_coordinator.clone())
            .with_updates(Arc::clone(&updates));
        let mut frames = traffic.iter().peekable();
        for (i, (at, reloaded)) in reloads.iter().enumerate() {
            while let Some((ts, data)) = frames.next_if(|(ts, _)| ts < at) {
                let link = LinkType::Ethernet;
                worker.process(&Frame {
                    ts: *ts,
                    link,
                    data,
                });
            }
            let classifier = Classifier::new(&reloaded.domain).expect("classifier");
            updates.publish(WorkerSettings::new(reloaded, Arc::new(classifier)));
            let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Keeps(kept[i + 1].clone()))];
            let reload = Reload {
                rule: reloaded.rule.clone(),
                sinks,
            };
            to_coordinator
                .send(ToCoordinator::Reload(Box::new(reload)))
                .expect("sent");
            worker.tick(*at);
        }
        for (ts, data) in frames {
            worker.process(&Frame {
                ts: *ts,
                link: LinkType::Ethernet,
                data,
            });
        }
        worker.tick(until);
        worker.finish();
        drop(to_coordinator);
        let summary = coordinator.run(from_workers).expect("runs");
        let kept = kept
            .iter()
            .map(|k| k.lock().expect("not poisoned").clone())
            .collect();
        (kept, summary)
    }

    #[test]
    fn a_reload_applies_its_rule_to_the_window_held_and_its_outputs_take_the_alerts() {
        // The tunnel's 300 names in [0:01, 0:11) do not exceed 300; they exceed 200.
        let mut settings = Config::default().settings().expect("defaults");
        settings.rule.threshold = 300;
        // The reference rule's count alone: the tunnel would alert under either
        // threshold from its evidence.
        settings.rule.tunnel_threshold = 0;
        let mut lower = settings.clone();
        lower.rule.threshold = 200;
        let traffic = tunnel_traffic();
        let (kept, summary) = run_with_reloads(
            &settings,
            &traffic,
            &[(EPOCH + 16 * MINUTE, lower)],
            EPOCH + 30 * MINUTE,
        );
        assert!(kept[0].is_empty(), "the old outputs got {:?}", kept[0]);
        assert_eq!(kept[1].len(), 1, "{:?}", kept[1]);
        let alert = &kept[1][0][0];
        assert_eq!(&*alert.domain, b"t.example");
        assert_eq!(alert.threshold, 200);
        assert_eq!(alert.unique_hostnames, 300);
        // The 0:15 boundary was evaluated before the reload; 0:30 after it.
        assert_eq!(alert.at, EPOCH + 30 * MINUTE);
        assert_eq!(summary.alerts, 1);
    }

    #[test]
    fn a_new_interval_resumes_on_its_boundaries_once_the_old_slot_has_closed() {
        let settings = Config::default().settings().expect("defaults");
        let mut every_ten = settings.clone();
        every_ten.rule.interval = 10 * MINUTE;
        let traffic = tunnel_traffic();
        let until = EPOCH + 40 * MINUTE;
        let (kept, summary) = run_with_reloads(
            &settings,
            &traffic,
            &[(EPOCH + 5 * MINUTE, every_ten)],
            until,
        );
        // The open slot [0:00, 0:15) spans 0:10: that boundary is skipped rather than
        // evaluated with five minutes from after it. Next, [0:15, 0:20) ends on the
        // new grid, and 0:20 counts the whole tunnel.
        let alerts: Vec<&Alert> = kept[1].iter().flatten().collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].at, EPOCH + 20 * MINUTE);
        assert_eq!(alerts[0].unique_hostnames, 300);
        assert_eq!(alerts[0].total_requests, 300);
        assert!(kept[0].is_empty());
        // Every message was counted as without the reload; evaluations at 0:20, 0:30,
        // 0:40 and the end of the input.
        let (_, unchanged) = run_with_reloads(&settings, &traffic, &[], until);
        assert_eq!(summary.workers, unchanged.workers);
        assert_eq!(summary.evaluations, 4);
    }

    #[test]
    fn a_reloaded_whitelist_applies_to_the_next_message() {
        let mut settings = Config::default().settings().expect("defaults");
        // Its 150 names before the reload would alert from the evidence alone.
        settings.rule.tunnel_threshold = 0;
        let mut whitelisted = settings.clone();
        whitelisted.domain.whitelist.push("t.example".into());
        let traffic = tunnel_traffic();
        let at = EPOCH + 6 * MINUTE;
        let until = EPOCH + 30 * MINUTE;
        let (kept, summary) = run_with_reloads(&settings, &traffic, &[(at, whitelisted)], until);
        let (_, unchanged) = run_with_reloads(&settings, &traffic, &[], until);
        // The tunnel's messages from the reload on, queries and responses.
        let tunnel_after = traffic
            .iter()
            .filter(|(ts, data)| {
                *ts >= at && data.windows(11).any(|w| w == b"\x01t\x07example\x00")
            })
            .count() as u64;
        assert!(tunnel_after > 100, "{tunnel_after}");
        assert_eq!(
            summary.workers.whitelisted,
            unchanged.workers.whitelisted + tunnel_after
        );
        // Half its names came before: not enough for an alert.
        assert!(kept.iter().all(Vec::is_empty), "{kept:?}");
        assert_eq!(unchanged.alerts, 1);
    }

    /// An output that queues, and says so.
    struct Queues(QueueStats);

    impl Sink for Queues {
        fn name(&self) -> String {
            "queues".into()
        }
        fn deliver(&mut self, _: &[Alert]) -> Result<(), AlertError> {
            Ok(())
        }
        fn queue_stats(&self) -> Option<QueueStats> {
            Some(self.0)
        }
    }

    #[test]
    fn the_queueing_outputs_figures_are_published_as_the_loop_turns() {
        let stats = QueueStats {
            output: "email",
            sent: 4,
            failed_attempts: 2,
            queued: 1,
            ..QueueStats::default()
        };
        let gauges = Arc::new(WindowGauges::default());
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Queues(stats)), Box::new(Refuses)];
        let coordinator = Coordinator::new(&RuleSettings::default(), 1, sinks)
            .with_gauges(Arc::clone(&gauges))
            .with_heartbeat(Heartbeat {
                every: Duration::from_millis(10),
                beat: Box::new(|_| {}),
            });
        let (to_coordinator, from_workers) = crossbeam_channel::unbounded();
        let running = std::thread::spawn(move || coordinator.run(from_workers));
        let deadline = Instant::now() + Duration::from_secs(10);
        while gauges.queues.lock().expect("not poisoned").is_empty() {
            assert!(Instant::now() < deadline, "never published");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(*gauges.queues.lock().expect("not poisoned"), vec![stats]);
        to_coordinator
            .send(ToCoordinator::Done {
                worker: 0,
                stats: WorkerStats::default(),
                last_ts: None,
            })
            .expect("sent");
        running.join().expect("joined").expect("ran");
    }

    /// Flushes only once the test lets it.
    struct FlushBlocks(Arc<Mutex<()>>);

    impl Sink for FlushBlocks {
        fn name(&self) -> String {
            "flush-blocks".into()
        }
        fn deliver(&mut self, _: &[Alert]) -> Result<(), AlertError> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), AlertError> {
            drop(self.0.lock().expect("not poisoned"));
            Ok(())
        }
    }

    #[test]
    fn a_reload_does_not_wait_for_the_replaced_outputs_to_flush() {
        use crate::pipeline::Reload;
        let settings = Config::default().settings().expect("defaults");
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().expect("not poisoned");
        let kept = Arc::new(Mutex::new(Vec::new()));
        let coordinator = Coordinator::new(
            &settings.rule,
            1,
            vec![Box::new(FlushBlocks(Arc::clone(&gate)))],
        );
        let (to_coordinator, from_workers) = crossbeam_channel::unbounded();
        let reload = Reload {
            rule: settings.rule.clone(),
            sinks: vec![Box::new(Keeps(Arc::clone(&kept)))],
        };
        to_coordinator
            .send(ToCoordinator::Reload(Box::new(reload)))
            .expect("sent");
        let classifier = Arc::new(Classifier::new(&settings.domain).expect("classifier"));
        let mut worker = Worker::new(0, &settings, classifier, to_coordinator);
        let running = std::thread::spawn(move || coordinator.run(from_workers));
        for (ts, data) in tunnel_traffic() {
            let link = LinkType::Ethernet;
            worker.process(&Frame {
                ts,
                link,
                data: &data,
            });
        }
        worker.tick(EPOCH + 20 * MINUTE);
        // The tunnel's alert reaches the new output while the old one's flush waits.
        let deadline = Instant::now() + Duration::from_secs(10);
        while kept.lock().expect("not poisoned").is_empty() {
            assert!(Instant::now() < deadline, "the reload waited for the flush");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(held);
        worker.finish();
        let summary = running.join().expect("joined").expect("ran");
        assert_eq!(summary.alerts, 1);
    }
}
