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
    parse_question, DecodeSettings, DecodeStats, Decoder, DnsError, DnsPacket, Name,
};
use crate::detect::{Alert, Detector, RuleSettings};
use crate::domain::{Classifier, DomainError, DomainSettings, Verdict};
use crate::sketch::{Shard, SketchSettings};
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
            let domain = match classifier.classify(name.as_bytes()) {
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
        if let Some(shard) = self.shard.take() {
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

    /// Closes the current slot (if any) and opens the one holding `ts`.
    fn advance_to(&mut self, ts: Nanos) {
        let start = ts - ts % self.slot_length;
        if let Some(shard) = self.shard.take() {
            if start <= shard.start() {
                // A frame from before the current slot (clock step back, or slightly
                // unordered input): count it in the open slot rather than reopen a closed one.
                self.shard = Some(shard);
                return;
            }
            self.send_slot(shard, start);
        }
        self.shard = Some(Shard::new(start, &self.sketch));
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
    /// Domains not tracked because a shard was full.
    pub shed_domains: u64,
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
                    self.summary.shed_domains += shard.shed_domains();
                    self.detector.add(shard);
                    let tracked = self.detector.tracked();
                    self.summary.peak_domains = self.summary.peak_domains.max(tracked);
                    if let Some(gauge) = &self.tracked_gauge {
                        gauge.store(tracked, std::sync::atomic::Ordering::Relaxed);
                    }
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
