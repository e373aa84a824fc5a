//! The replay runner: capture files, merged in time order, through one worker and the
//! coordinator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::coordinator::{Coordinator, RunSummary};
use super::worker::Worker;
use super::{PipelineError, Settings};
use crate::alert::Sink;
use crate::capture::{read_merged, CaptureError, CaptureReader};
use crate::detect::Detector;
use crate::domain::Classifier;

/// A finished replay: the summary, how long it took, and files that were cut short.
#[derive(Debug)]
pub struct ReplayReport {
    /// Totals of the run.
    pub summary: RunSummary,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The window as the run left it. Dropping it frees every table; a process about to
    /// exit can `std::mem::forget` it instead.
    pub window: Option<Detector>,
    /// Files that ended inside a record (everything before was read).
    pub truncated: Vec<CaptureError>,
}

impl ReplayReport {
    /// The summary as one JSON object, for scripts: [`RunSummary`]'s fields, the run's
    /// `elapsed_seconds` and `frames_per_second`, and `cut_short`, what each capture
    /// that ended inside a record says.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            summary: &'a RunSummary,
            elapsed_seconds: f64,
            frames_per_second: f64,
            cut_short: Vec<String>,
        }
        serde_json::to_value(Json {
            summary: &self.summary,
            elapsed_seconds: self.elapsed.as_secs_f64(),
            frames_per_second: self.frames_per_second(),
            cut_short: self.truncated.iter().map(ToString::to_string).collect(),
        })
        .unwrap_or_default()
    }

    /// Frames read per second of the run's wall-clock time (0 for a run too short to
    /// time).
    pub fn frames_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.summary.workers.decode.frames as f64 / secs
        } else {
            0.0
        }
    }
}

/// The summary line, with the run's time and rate.
impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = self.frames_per_second();
        write!(f, "{}, {secs:.3} s, {rate:.0} frames/s", self.summary)
    }
}

/// Replays capture files through one worker and the coordinator, merging the files in
/// time order. Files are opened (and checked to be captures) before anything runs; a
/// path of `-` is standard input ([`CaptureReader::open_or_stdin`]).
pub fn replay(
    files: &[PathBuf],
    settings: &Settings,
    sinks: Vec<Box<dyn Sink>>,
) -> Result<ReplayReport, PipelineError> {
    let started = Instant::now();
    let mut readers = files
        .iter()
        .map(|path| CaptureReader::open_or_stdin(path))
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
    let finished = coordinator.run_keeping_window(from_workers);
    let truncated = reading
        .join()
        .map_err(|_| PipelineError::WorkerPanicked)??;
    let (summary, window) = finished?;
    Ok(ReplayReport {
        summary,
        elapsed: started.elapsed(),
        window: Some(window),
        truncated,
    })
}
