//! The coordinator: merges the workers' closed slots into the window, evaluates the
//! rule at every interval boundary every worker has passed, and hands the alerts to
//! the outputs.

use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::worker::{WorkerMessage, WorkerStats};
use super::PipelineError;
use crate::alert::Sink;
use crate::detect::{Alert, Detector, RuleSettings};
use crate::Nanos;

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
