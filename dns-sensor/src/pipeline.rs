//! Pipeline: wires capture → decode → domain → sketch into [`Worker`]s, and detect →
//! alert into the [`Coordinator`]. Replay and live capture share both; they differ only
//! in where frames come from and which clock cuts the slots.
//!
//! A worker owns one shard per slot. When a frame's time passes the slot's end, the
//! worker hands the closed shard to the coordinator over a channel. The coordinator
//! merges shards into the detector's window and evaluates the rule at every interval
//! boundary that every worker has passed, so alerts are the same whatever the number of
//! workers or the speed of the input.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::alert::{AlertError, Sink};
use crate::capture::{CaptureError, CaptureReader, Frame};
use crate::decode::{
    flow_hash, parse_question, DecodeSettings, DecodeStats, Decoder, DnsError, DnsPacket, Name,
};
use crate::detect::{Alert, Detector, RuleSettings};
use crate::domain::{Classifier, DomainError, DomainSettings, Verdict, VerdictCache};
use crate::sketch::{NameHistory, Shard, SketchSettings};
use crate::Nanos;

/// Everything the pipeline's steps are configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Link to transport decoding.
    pub decode: DecodeSettings,
    /// Registered domains and the whitelist.
    pub domain: DomainSettings,
    /// Per-slot counting.
    pub sketch: SketchSettings,
    /// The rule and its window.
    pub rule: RuleSettings,
}

/// What stops the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A capture file could not be opened or read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The domain classifier could not be built.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// An alert could not be delivered.
    #[error(transparent)]
    Alert(#[from] AlertError),
    /// A worker thread died.
    #[error("worker thread panicked")]
    WorkerPanicked,
}

/// What a worker saw, beyond the decoder's own counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Link to transport counters.
    pub decode: DecodeStats,
    /// DNS messages whose header or question did not parse.
    pub malformed_dns: u64,
    /// Well-formed messages without a question (mDNS announcements, some updates):
    /// no name to count them under.
    pub no_question: u64,
    /// Queries counted (QR=0).
    pub queries: u64,
    /// Responses counted (QR=1).
    pub responses: u64,
    /// Messages dropped because their name is whitelisted.
    pub whitelisted: u64,
    /// Messages dropped because their name has no registered domain.
    pub no_domain: u64,
}

impl WorkerStats {
    /// Adds another worker's counters into these.
    pub fn add(&mut self, other: &WorkerStats) {
        self.decode.add(&other.decode);
        self.malformed_dns += other.malformed_dns;
        self.no_question += other.no_question;
        self.queries += other.queries;
        self.responses += other.responses;
        self.whitelisted += other.whitelisted;
        self.no_domain += other.no_domain;
    }

    /// Frames or messages counted as malformed at any layer.
    pub fn malformed(&self) -> u64 {
        self.decode.malformed_frames + self.malformed_dns
    }
}

/// What a worker tells the coordinator.
pub enum WorkerMessage {
    /// A slot is closed: its shard, and the start of the worker's next slot (nothing
    /// earlier will come from this worker again).
    Slot {
        /// Which worker.
        worker: usize,
        /// The closed slot's counts.
        shard: Shard,
        /// Start of the worker's next slot.
        next_start: Nanos,
    },
    /// The worker has stopped; its last slot was sent before this.
    Done {
        /// Which worker.
        worker: usize,
        /// Its counters.
        stats: WorkerStats,
        /// Time of the last frame it saw.
        last_ts: Option<Nanos>,
    },
}

/// One thread's share of the hot path: frames in, slot shards out.
pub struct Worker {
    id: usize,
    decoder: Decoder,
    classifier: Arc<Classifier>,
    verdicts: VerdictCache,
    sketch: SketchSettings,
    slot_length: Nanos,
    shard: Option<Shard>,
    slot_end: Nanos,
    name: Name,
    stats: WorkerStats,
    last_ts: Option<Nanos>,
    to_coordinator: Sender<WorkerMessage>,
}

impl Worker {
    /// A worker numbered `id` that sends closed slots to `to_coordinator`.
    pub fn new(
        id: usize,
        settings: &Settings,
        classifier: Arc<Classifier>,
        to_coordinator: Sender<WorkerMessage>,
    ) -> Self {
        Self {
            id,
            decoder: Decoder::new(settings.decode.clone()),
            classifier,
            verdicts: VerdictCache::new(),
            sketch: settings.sketch.clone(),
            slot_length: crate::detect::slot_length(settings.rule.window, settings.rule.interval),
            shard: None,
            slot_end: 0,
            name: Name::new(),
            stats: WorkerStats::default(),
            last_ts: None,
            to_coordinator,
        }
    }

    /// Counts one frame.
    pub fn process(&mut self, frame: &Frame<'_>) {
        if frame.ts >= self.slot_end || self.shard.is_none() {
            self.advance_to(frame.ts);
        }
        self.last_ts = Some(self.last_ts.map_or(frame.ts, |t| t.max(frame.ts)));
        let Some(shard) = self.shard.as_mut() else {
            return;
        };
        let classifier = &self.classifier;
        let verdicts = &mut self.verdicts;
        let name = &mut self.name;
        let stats = &mut self.stats;
        self.decoder.decode(frame, |packet: DnsPacket<'_>| {
            let question = match parse_question(packet.message, name) {
                Ok(q) => q,
                Err(DnsError::NoQuestion) => {
                    stats.no_question += 1;
                    return;
                }
                Err(_) => {
                    stats.malformed_dns += 1;
                    return;
                }
            };
            let domain = match verdicts.classify(classifier, name.as_bytes()) {
                Verdict::Registered(domain) => domain,
                Verdict::Whitelisted => {
                    stats.whitelisted += 1;
                    return;
                }
                Verdict::NoDomain => {
                    stats.no_domain += 1;
                    return;
                }
            };
            let size = packet.message.len() as u32;
            if question.is_response {
                stats.responses += 1;
                shard.record_response(domain, size);
            } else {
                stats.queries += 1;
                let client: IpAddr = packet.src;
                shard.record_query(domain, name.as_bytes(), client, question.qtype, size);
            }
        });
    }

    /// Closes the current slot if `now` is past its end (the live clock moves on even
    /// when no frame arrives). Returns whether a slot was closed.
    pub fn tick(&mut self, now: Nanos) -> bool {
        if self.shard.is_none() {
            // A queue that has seen nothing yet still moves with the clock: otherwise the
            // coordinator would wait for its first slot forever.
            self.advance_to(now);
            return false;
        }
        if now >= self.slot_end {
            self.advance_to(now);
            return true;
        }
        false
    }

    /// Sends the last slot and the counters; the worker is done.
    pub fn finish(mut self) {
        if let Some(mut shard) = self.shard.take() {
            shard.close();
            // Time stopped at the last frame: the boundary ending this slot was never
            // reached, so it must not be evaluated.
            let reached = self.last_ts.map_or(shard.start(), |t| t.saturating_add(1));
            self.send_slot(shard, reached);
        }
        self.stats.decode = self.decoder.stats().clone();
        let _ = self.to_coordinator.send(WorkerMessage::Done {
            worker: self.id,
            stats: self.stats,
            last_ts: self.last_ts,
        });
    }

    /// Closes the current slot (if any) and opens the one holding `ts`. The history of
    /// earlier slots goes from the closed shard, which it remembers, to the new one.
    fn advance_to(&mut self, ts: Nanos) {
        let start = ts - ts % self.slot_length;
        let mut history = None;
        if let Some(mut shard) = self.shard.take() {
            if start <= shard.start() {
                // A frame from before the current slot (clock step back, or slightly
                // unordered input): count it in the open slot rather than reopen a closed one.
                self.shard = Some(shard);
                return;
            }
            history = shard.close();
            if let Some(history) = history.as_mut() {
                history.absorb(&shard, (start - shard.start()) / self.slot_length);
            }
            self.send_slot(shard, start);
        }
        let history = history.or_else(|| {
            (self.sketch.history_bytes > 0)
                .then(|| NameHistory::new(self.sketch.history_bytes, self.sketch.history_halving))
        });
        let shard = Shard::new(start, &self.sketch);
        self.shard = Some(match history {
            Some(history) => shard.with_history(history),
            None => shard,
        });
        self.slot_end = start.saturating_add(self.slot_length);
    }

    fn send_slot(&self, shard: Shard, next_start: Nanos) {
        // The coordinator only goes away when the run is over; nothing to do then.
        let _ = self.to_coordinator.send(WorkerMessage::Slot {
            worker: self.id,
            shard,
            next_start,
        });
    }
}

/// The byte budget of one shard when the window's per-domain tables may take
/// `memory_cap` bytes in all: the cap shared between every shard alive at once, that is
/// the slots the window holds (a window and an interval's worth, as
/// [`Detector::add`] keeps them), the slot being merged, and per worker its open slot
/// and one closed slot on its way to the coordinator, plus per worker its
/// [`NameHistory`], an eighth of a shard's budget ([`history_bytes`]).
pub fn shard_budget(memory_cap: usize, rule: &RuleSettings, workers: usize) -> usize {
    let shares = slots_held(rule)
        .saturating_add(1)
        .saturating_add(workers.max(1).saturating_mul(2));
    // In eighths of a share: the histories are an eighth each.
    let eighths = shares.saturating_mul(8).saturating_add(workers.max(1));
    memory_cap.saturating_mul(8) / eighths.max(1)
}

/// The bytes of each worker's [`NameHistory`] when a shard's budget is `shard_budget`.
pub fn history_bytes(shard_budget: usize) -> usize {
    shard_budget / 8
}

/// Slots between halvings of the history: half the slots of a window (at least one).
pub fn history_halving(rule: &RuleSettings) -> u32 {
    let slot = crate::detect::slot_length(rule.window, rule.interval).max(1);
    u32::try_from(rule.window / slot / 2)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Slots the window keeps: a window and an interval's worth.
fn slots_held(rule: &RuleSettings) -> usize {
    let slot = crate::detect::slot_length(rule.window, rule.interval).max(1);
    let held = rule.window.saturating_add(rule.interval) / slot;
    usize::try_from(held).unwrap_or(usize::MAX)
}

/// Totals of a run, for the summary.
#[derive(Clone, Debug, Default)]
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
    pub shed_domains: u64,
    /// Domains shed to make room (one per slot it was shed from).
    pub evicted_domains: u64,
    /// Largest estimated size of the window's per-domain tables, in bytes.
    pub peak_bytes: usize,
    /// Time of the first and last frame.
    pub span: Option<(Nanos, Nanos)>,
}

/// Merges workers' slots into the window, evaluates the rule on interval boundaries and
/// sends alerts to the sinks.
pub struct Coordinator {
    detector: Detector,
    interval: Nanos,
    window: Nanos,
    sinks: Vec<Box<dyn Sink + Send>>,
    /// Start of each worker's open slot: everything before has been received.
    frontier: Vec<Option<Nanos>>,
    /// Interval boundaries up to here have been evaluated.
    evaluated_until: Option<Nanos>,
    /// Start of the oldest and end of the newest slot received.
    data_span: Option<(Nanos, Nanos)>,
    summary: RunSummary,
    /// Where the number of domains in the window is published while running (live
    /// stats line), if anyone reads it.
    tracked_gauge: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Coordinator {
    /// A coordinator for `workers` workers.
    pub fn new(rule: &RuleSettings, workers: usize, sinks: Vec<Box<dyn Sink + Send>>) -> Self {
        Self {
            detector: Detector::new(rule.clone()),
            interval: rule.interval,
            window: rule.window,
            sinks,
            frontier: vec![None; workers],
            evaluated_until: None,
            data_span: None,
            summary: RunSummary::default(),
            tracked_gauge: None,
        }
    }

    /// Publishes the number of domains in the window into `gauge` after every slot.
    pub fn with_tracked_gauge(mut self, gauge: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        self.tracked_gauge = Some(gauge);
        self
    }

    /// Takes messages until every worker is done, then evaluates once more at the end
    /// of the input.
    pub fn run(
        mut self,
        from_workers: Receiver<WorkerMessage>,
    ) -> Result<RunSummary, PipelineError> {
        let mut running = self.frontier.len();
        let mut last_ts: Option<Nanos> = None;
        while running > 0 {
            let Ok(message) = from_workers.recv() else {
                break;
            };
            match message {
                WorkerMessage::Slot {
                    worker,
                    shard,
                    next_start,
                } => {
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
                    if let Some(gauge) = &self.tracked_gauge {
                        gauge.store(tracked, std::sync::atomic::Ordering::Relaxed);
                    }
                    self.summary.peak_bytes = self.summary.peak_bytes.max(self.detector.bytes());
                    self.summary.shed_domains = self.detector.shed_records_total();
                    self.summary.evicted_domains = self.detector.evicted_domains_total();
                    self.frontier[worker] = Some(next_start);
                    self.evaluate_passed_boundaries()?;
                }
                WorkerMessage::Done {
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
            }
        }
        if let Some(end) = last_ts {
            self.evaluate_passed_boundaries_until(end)?;
            // The final evaluation covers the frames after the last boundary too.
            self.evaluate(end + 1)?;
            self.summary.span = self.data_span.map(|(first, _)| (first, end));
        }
        for sink in &mut self.sinks {
            sink.flush()?;
        }
        Ok(self.summary)
    }

    /// Evaluates every boundary that all running workers have passed.
    fn evaluate_passed_boundaries(&mut self) -> Result<(), PipelineError> {
        let mut passed: Option<Nanos> = None;
        for f in &self.frontier {
            match f {
                // A running worker that has sent nothing yet holds everything back.
                None => return Ok(()),
                Some(t) => passed = Some(passed.map_or(*t, |p: Nanos| p.min(*t))),
            }
        }
        match passed {
            Some(t) => self.evaluate_passed_boundaries_until(t),
            None => Ok(()),
        }
    }

    /// Evaluates the rule at every interval boundary in `(evaluated_until, until]`,
    /// skipping boundaries whose window holds no data (a long gap in a capture, or a
    /// bogus timestamp, must not cost millions of empty evaluations).
    fn evaluate_passed_boundaries_until(&mut self, until: Nanos) -> Result<(), PipelineError> {
        let Some((oldest, newest)) = self.data_span else {
            return Ok(());
        };
        // No evaluation before the first data: start at the first boundary after it.
        let mut at = match self.evaluated_until {
            Some(t) => t + self.interval,
            None => oldest - oldest % self.interval + self.interval,
        };
        while at <= until {
            if at.saturating_sub(self.window) >= newest {
                // Every later window up to `until` is empty too.
                let last = until - until % self.interval;
                self.evaluated_until = Some(last);
                return Ok(());
            }
            self.evaluate(at)?;
            self.evaluated_until = Some(at);
            at += self.interval;
        }
        Ok(())
    }

    fn evaluate(&mut self, at: Nanos) -> Result<(), PipelineError> {
        self.summary.evaluations += 1;
        let alerts: Vec<Alert> = self.detector.evaluate(at);
        for alert in &alerts {
            for sink in &mut self.sinks {
                sink.emit(alert)?;
            }
        }
        self.summary.alerts += alerts.len() as u64;
        Ok(())
    }
}

/// A finished replay: the summary, how long it took, and files that were cut short.
#[derive(Debug)]
pub struct ReplayReport {
    /// Totals of the run.
    pub summary: RunSummary,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Files that ended inside a record (everything before was read).
    pub truncated: Vec<CaptureError>,
}

/// Replays capture files through one worker and the coordinator, merging the files in
/// time order. Files are opened (and checked to be captures) before anything runs.
pub fn replay(
    files: &[PathBuf],
    settings: &Settings,
    sinks: Vec<Box<dyn Sink + Send>>,
) -> Result<ReplayReport, PipelineError> {
    let started = Instant::now();
    let mut readers = files
        .iter()
        .map(|path| CaptureReader::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let classifier = Arc::new(Classifier::new(&settings.domain)?);
    let (to_coordinator, from_workers) = crossbeam_channel::bounded(64);
    let mut worker = Worker::new(0, settings, classifier, to_coordinator);
    let coordinator = Coordinator::new(&settings.rule, 1, sinks);

    let reading = std::thread::Builder::new()
        .name("dns-sensor-worker-0".into())
        .spawn(move || -> Result<Vec<CaptureError>, CaptureError> {
            let truncated = read_merged(&mut readers, |frame| worker.process(frame))?;
            worker.finish();
            Ok(truncated)
        })
        .map_err(|_| PipelineError::WorkerPanicked)?;
    let summary = coordinator.run(from_workers);
    let truncated = reading
        .join()
        .map_err(|_| PipelineError::WorkerPanicked)??;
    Ok(ReplayReport {
        summary: summary?,
        elapsed: started.elapsed(),
        truncated,
    })
}

/// Splits frames between `workers` workers by [`flow_hash`] of their IP addresses, as a
/// NIC's receive-side scaling splits them between queues: each part keeps the order of
/// `frames`, and all frames of one TCP stream or one fragmented datagram land in the
/// same part (the decoder reassembles them there). `workers` of 0 is taken as 1.
pub fn partition_by_flow<'a>(
    frames: impl IntoIterator<Item = Frame<'a>>,
    workers: usize,
) -> Vec<Vec<Frame<'a>>> {
    let workers = workers.max(1);
    let mut parts: Vec<Vec<Frame<'a>>> = (0..workers).map(|_| Vec::new()).collect();
    for frame in frames {
        // The modulo of a 64-bit hash is below `workers`, so the index always exists.
        let part = (flow_hash(&frame) % workers as u64) as usize;
        if let Some(p) = parts.get_mut(part) {
            p.push(frame);
        }
    }
    parts
}

/// Runs one worker per part of `parts`, each on its own thread counting its frames in
/// order, and the coordinator on the calling thread: the whole pipeline over frames
/// already in memory, as the live path runs it over one receive queue per worker.
/// Frames must be split so that a TCP stream or a fragmented datagram stays in one
/// part ([`partition_by_flow`]); which worker counts a query does not matter to the
/// alerts, since shards of the same slot merge exactly.
///
/// The report's `elapsed` is the wall-clock time from starting the workers to the
/// coordinator's last evaluation; `truncated` is empty.
pub fn run_frames(
    parts: &[Vec<Frame<'_>>],
    settings: &Settings,
    sinks: Vec<Box<dyn Sink + Send>>,
) -> Result<ReplayReport, PipelineError> {
    let classifier = Arc::new(Classifier::new(&settings.domain)?);
    let workers = parts.len().max(1);
    let (to_coordinator, from_workers) = crossbeam_channel::bounded(64);
    let coordinator = Coordinator::new(&settings.rule, workers, sinks);
    let started = Instant::now();
    let summary = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(parts.len());
        let mut spawned = true;
        for (id, part) in parts.iter().enumerate() {
            let mut worker = Worker::new(id, settings, classifier.clone(), to_coordinator.clone());
            let handle = std::thread::Builder::new()
                .name(format!("dns-sensor-worker-{id}"))
                .spawn_scoped(scope, move || {
                    for frame in part {
                        worker.process(frame);
                    }
                    worker.finish();
                });
            match handle {
                Ok(h) => handles.push(h),
                Err(_) => {
                    spawned = false;
                    break;
                }
            }
        }
        if parts.is_empty() {
            // No part: one worker with no frames, so the coordinator still finishes.
            Worker::new(0, settings, classifier.clone(), to_coordinator.clone()).finish();
        }
        // The coordinator stops when every worker said it is done, or when no sender is
        // left (a worker died, or one could not be started): it must run in every case,
        // or workers blocked on the full channel would never be joined.
        drop(to_coordinator);
        let summary = coordinator.run(from_workers);
        let mut joined = spawned;
        for handle in handles {
            joined &= handle.join().is_ok();
        }
        if !joined {
            return Err(PipelineError::WorkerPanicked);
        }
        summary
    })?;
    Ok(ReplayReport {
        summary,
        elapsed: started.elapsed(),
        truncated: Vec::new(),
    })
}

/// Calls `each` for every frame of `readers` in timestamp order (a k-way merge; ties go
/// to the earlier file). A file cut short ends early and is reported in the result; any
/// other read error stops the replay.
fn read_merged(
    readers: &mut [CaptureReader],
    mut each: impl FnMut(&Frame<'_>),
) -> Result<Vec<CaptureError>, CaptureError> {
    let mut truncated = Vec::new();
    let mut live: Vec<usize> = (0..readers.len()).collect();
    loop {
        let mut next: Option<(Nanos, usize)> = None;
        let mut i = 0;
        while i < live.len() {
            let r = live[i];
            match readers[r].peek_ts() {
                Ok(Some(ts)) => {
                    if next.is_none_or(|(best, _)| ts < best) {
                        next = Some((ts, r));
                    }
                    i += 1;
                }
                Ok(None) => {
                    live.remove(i);
                }
                Err(e @ CaptureError::Truncated { .. }) => {
                    truncated.push(e);
                    live.remove(i);
                }
                Err(e) => return Err(e),
            }
        }
        let Some((_, r)) = next else {
            return Ok(truncated);
        };
        // With a single file the merge is pointless; read it straight through until it
        // ends so that the common case pays one peek per frame at most.
        if live.len() == 1 {
            loop {
                match readers[r].next_frame() {
                    Ok(Some(frame)) => each(&frame),
                    Ok(None) => return Ok(truncated),
                    Err(e @ CaptureError::Truncated { .. }) => {
                        truncated.push(e);
                        return Ok(truncated);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        match readers[r].next_frame() {
            Ok(Some(frame)) => each(&frame),
            Ok(None) => {}
            Err(e @ CaptureError::Truncated { .. }) => truncated.push(e),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::config::Config;
    use crate::synth::scenario::{
        background, ipv6_flow, v4, Carrier, Traffic, Tunnel, EPOCH, HOUR, MINUTE,
    };
    use crate::synth::Flow;
    use std::sync::Mutex;

    /// A sink that keeps the alerts.
    struct Collect(Arc<Mutex<Vec<Alert>>>);

    impl Sink for Collect {
        fn emit(&mut self, alert: &Alert) -> Result<(), AlertError> {
            if let Ok(mut alerts) = self.0.lock() {
                alerts.push(alert.clone());
            }
            Ok(())
        }
    }

    fn settings() -> Settings {
        Config::default().settings().expect("default settings")
    }

    /// Runs `frames` through `workers` workers; returns the alerts and the summary.
    fn run(frames: &[(Nanos, Vec<u8>)], workers: usize) -> (Vec<Alert>, RunSummary) {
        let views = frames.iter().map(|(ts, data)| Frame {
            ts: *ts,
            link: LinkType::Ethernet,
            data,
        });
        let parts = partition_by_flow(views, workers);
        assert_eq!(parts.len(), workers);
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let report = run_frames(&parts, &settings(), vec![Box::new(Collect(alerts.clone()))])
            .expect("pipeline runs");
        let alerts = alerts.lock().expect("not poisoned").clone();
        (alerts, report.summary)
    }

    /// Two hours of ordinary traffic from 100 clients with tunnels from four clients in
    /// it: plain UDP, TCP (messages split across segments), UDP with fragmented
    /// responses, and IPv6; two of them go on across several 15-minute slots.
    fn scenario() -> Vec<(Nanos, Vec<u8>)> {
        let mut traffic = background(EPOCH, 2 * HOUR, 5, 100, 3);
        let mut udp = Tunnel::new("udp-tunnel.example", 500, EPOCH + 5 * MINUTE, HOUR);
        udp.first_seq = 1 << 40;
        let mut tcp = Tunnel::new("tcp-tunnel.example", 300, EPOCH + 20 * MINUTE, 40 * MINUTE);
        tcp.carrier = Carrier::Tcp;
        tcp.flow = Flow::to_dns(v4(10, 1, 0, 70), 40_001, v4(192, 0, 2, 54));
        tcp.first_seq = 2 << 40;
        let mut fragmented = Tunnel::new("frag-tunnel.example", 250, EPOCH + HOUR, 10 * MINUTE);
        fragmented.carrier = Carrier::FragmentedUdp;
        fragmented.response_len = 700;
        fragmented.flow = Flow::to_dns(v4(10, 1, 0, 71), 40_002, v4(192, 0, 2, 55));
        fragmented.first_seq = 3 << 40;
        let mut v6 = Tunnel::new("v6-tunnel.example", 220, EPOCH + 30 * MINUTE, HOUR);
        v6.flow = ipv6_flow();
        v6.binary_names = true;
        v6.first_seq = 4 << 40;
        for t in [udp, tcp, fragmented, v6] {
            traffic.extend(t.build().0);
        }
        traffic.into_sorted()
    }

    #[test]
    fn more_workers_give_the_same_alerts() {
        let frames = scenario();
        let (one, one_summary) = run(&frames, 1);
        let alerted: Vec<&[u8]> = one.iter().map(|a| &*a.domain).collect();
        for domain in [
            &b"udp-tunnel.example"[..],
            b"tcp-tunnel.example",
            b"frag-tunnel.example",
            b"v6-tunnel.example",
        ] {
            assert!(alerted.contains(&domain), "{alerted:?}");
        }
        for workers in [2, 3] {
            let parts = partition_by_flow(
                frames.iter().map(|(ts, data)| Frame {
                    ts: *ts,
                    link: LinkType::Ethernet,
                    data,
                }),
                workers,
            );
            assert!(
                parts.iter().all(|p| !p.is_empty()),
                "every worker gets frames"
            );
            let (many, summary) = run(&frames, workers);
            // Every figure, clients, qtypes and even the sample names agree: each
            // tunnel's names come from one client, so from one worker.
            assert_eq!(many, one, "{workers} workers");
            assert_eq!(summary.workers, one_summary.workers, "{workers} workers");
            assert_eq!(summary.evaluations, one_summary.evaluations);
            assert_eq!(summary.alerts, one_summary.alerts);
            assert_eq!(summary.span, one_summary.span);
        }
    }

    const IODINE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/captures/elastic-iodine-tunnel.pcap"
    );

    #[test]
    fn tunnel_inside_a_flood_of_new_domains_is_detected_under_a_small_cap() {
        use crate::synth::{mix64, query, rtype, udp_frame};
        let mut reader = CaptureReader::open(std::path::Path::new(IODINE)).expect("capture");
        let mut frames: Vec<(Nanos, LinkType, Vec<u8>)> = Vec::new();
        while let Some(f) = reader.next_frame().expect("readable") {
            frames.push((f.ts, f.link, f.data.to_vec()));
        }
        let (first, last) = (frames[0].0, frames[frames.len() - 1].0);
        // 20 000 queries from 50 bots over the tunnel's 24.5 s, every one for a new
        // registered domain, never answered: 90 flood domains per tunnel query.
        let flood = 20_000u64;
        for i in 0..flood {
            let ts = first + (last - first) * i / flood;
            let bot = v4(10, 66, 0, (i % 50) as u8 + 1);
            let flow = Flow::to_dns(bot, 30_000 + (i % 1000) as u16, v4(192, 0, 2, 1));
            let name = format!("www.x{:x}.example", mix64(i));
            let frame = udp_frame(&flow, &query(i as u16, name.as_bytes(), rtype::A));
            frames.push((ts, LinkType::Ethernet, frame));
        }
        frames.sort_by_key(|f| f.0);
        let views: Vec<Frame<'_>> = frames
            .iter()
            .map(|(ts, link, data)| Frame {
                ts: *ts,
                link: *link,
                data,
            })
            .collect();
        // 32 MiB for the window: about 1.6 MB per shard, some 2 500 small domains.
        let cap = 32u64 << 20;
        let settings = Config {
            memory_cap: cap,
            ..Config::default()
        }
        .settings()
        .expect("settings");
        assert!(settings.sketch.max_bytes < 2 << 20);
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let report =
            run_frames(&[views], &settings, vec![Box::new(Collect(alerts.clone()))]).expect("runs");
        let alerts = alerts.lock().expect("not poisoned").clone();
        let summary = report.summary;

        // The flood went through the cap, was shed, and every record of it is counted.
        // The capture spans one slot: the window held at most that slot's share.
        assert!(
            summary.peak_bytes <= settings.sketch.max_bytes,
            "{} bytes",
            summary.peak_bytes
        );
        // Lost records: the flood's queries that were turned away at the door or whose
        // domain was evicted later (one record each).
        assert!(summary.shed_domains > flood - 4_000, "{summary:?}");
        assert!(summary.evicted_domains > 0, "{summary:?}");
        assert!(summary.shed_domains >= summary.evicted_domains);
        assert!(summary.peak_domains < 4_000, "{summary:?}");
        // The real tunnel, with the figures it has alone (tests/real_tunnels.rs).
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(&*alert.domain, b"pirate.sea");
        assert_eq!(alert.total_requests, 222);
        assert_eq!(alert.unique_hostnames, 222);
        assert_eq!(alert.total_bytes_in, 16_812);
        assert_eq!(alert.total_bytes_out, 35_212);
        assert_eq!(alert.top_clients, vec![(v4(10, 0, 2, 30), 222)]);
    }

    /// Slots of the slow tunnel's run.
    const SLOTS: u64 = 8;
    /// The slow tunnel's names per slot.
    const TUNNEL_PER_SLOT: u64 = 15;

    /// When the slow tunnel sends its names: evenly over each slot.
    fn tunnel_times() -> impl Iterator<Item = Nanos> {
        (0..SLOTS * TUNNEL_PER_SLOT).map(|seq| {
            let (s, t) = (seq / TUNNEL_PER_SLOT, seq % TUNNEL_PER_SLOT);
            EPOCH + s * 15 * MINUTE + 15 * MINUTE * t / TUNNEL_PER_SLOT + 7
        })
    }

    /// Eight 15-minute slots, each with 1 000 look-alike domains of 12 names queried in
    /// a round-robin (the pattern that defeats least-recently-seen shedding), and a
    /// slow tunnel of 15 names a slot: 120 names in 2 h, over a threshold of 100, but
    /// in any one slot no bigger than its neighbours. Returns the tunnel's alerts and
    /// the summary.
    fn slow_tunnel_in_a_round_robin(history: bool) -> (Vec<Alert>, RunSummary) {
        use crate::synth::{mix64, query, rtype, tunnel_name, udp_frame};
        const DOMAINS: u64 = 1_000;
        const NAMES: u64 = 12;
        let slot = 15 * MINUTE;
        let per_slot = DOMAINS * NAMES;
        let tunnel = Flow::to_dns(v4(10, 1, 0, 66), 41_000, v4(192, 0, 2, 53));
        let mut frames: Vec<(Nanos, Vec<u8>)> = Vec::new();
        for s in 0..SLOTS {
            let start = EPOCH + s * slot;
            for k in 0..per_slot {
                let d = s * DOMAINS + k % DOMAINS;
                let name = format!("h{}x{:x}.d{d}.example", k / DOMAINS, mix64(k));
                let bot = v4(10, 66, 0, (k % 50) as u8 + 1);
                let flow = Flow::to_dns(bot, 30_000 + (k % 1000) as u16, v4(192, 0, 2, 1));
                let ts = start + slot * k / per_slot;
                frames.push((
                    ts,
                    udp_frame(&flow, &query(k as u16, name.as_bytes(), rtype::A)),
                ));
            }
        }
        for (seq, ts) in tunnel_times().enumerate() {
            let name = tunnel_name(seq as u64, "slow-tunnel.example");
            let frame = udp_frame(&tunnel, &query(seq as u16, name.as_bytes(), rtype::TXT));
            frames.push((ts, frame));
        }
        frames.sort_by_key(|f| f.0);
        let views = Traffic::frames_of(&frames);
        let mut settings = Config {
            threshold: 100,
            window: Duration::from_secs(2 * 3600),
            memory_cap: 3 << 20,
            ..Config::default()
        }
        .settings()
        .expect("settings");
        // Room for under half of a slot's domains.
        assert!(
            settings.sketch.max_bytes < 300_000,
            "{}",
            settings.sketch.max_bytes
        );
        if !history {
            settings.sketch.history_bytes = 0;
        }
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let report =
            run_frames(&[views], &settings, vec![Box::new(Collect(alerts.clone()))]).expect("runs");
        let alerts = alerts.lock().expect("not poisoned").clone();
        (alerts, report.summary)
    }

    #[test]
    fn slow_tunnel_among_look_alike_domains_survives_shedding_through_the_history() {
        let (alerts, summary) = slow_tunnel_in_a_round_robin(true);
        // Most of the look-alikes were shed, over and over.
        assert!(summary.shed_domains > 40_000, "{summary:?}");
        assert!(!alerts.is_empty(), "{summary:?}");
        for alert in &alerts {
            assert_eq!(&*alert.domain, b"slow-tunnel.example", "{alerts:?}");
            // Of the names it sent before the evaluation, the tunnel loses at most
            // about a slot's worth (until the history knows it, it looks like the
            // others), and every name counted is its own.
            let sent = tunnel_times().filter(|&t| t < alert.at).count() as u64;
            let counted = alert.unique_hostnames;
            assert!(counted > 100 && counted <= sent, "{counted} of {sent}");
            assert!(counted + 15 >= sent, "{counted} of {sent}");
            assert_eq!(alert.total_requests, counted);
            assert_eq!(alert.top_clients, vec![(v4(10, 1, 0, 66), counted)]);
        }

        // The same traffic without the history: each slot alone cannot tell the tunnel
        // from the look-alikes, and it is shed with them.
        let (alerts, _) = slow_tunnel_in_a_round_robin(false);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn no_frames_and_empty_parts_finish() {
        let (alerts, summary) = run(&[], 2);
        assert!(alerts.is_empty());
        assert_eq!(summary.workers.decode.frames, 0);
        let report = run_frames(&[], &settings(), Vec::new()).expect("runs");
        assert_eq!(report.summary.evaluations, 0);
    }
}
