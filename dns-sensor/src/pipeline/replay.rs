//! The replay runner: capture files, merged in time order, through one worker and the
//! coordinator.

use crate::files::shown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::coordinator::{Coordinator, RunSummary};
use super::state::{restore, StateWriter};
use super::worker::Worker;
use super::{nonzero_counts, PipelineError, Settings};
use crate::alert::Sink;
use crate::capture::{read_merged, CaptureError, CaptureReader};
use crate::detect::Detector;
use crate::domain::Classifier;
use crate::fleet::{FleetSettings, SlotShipper};

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
    /// Frames the capture files held of a link type the sensor does not decode.
    pub skipped_frames: u64,
}

impl ReplayReport {
    /// The summary as one JSON object, for scripts: [`RunSummary`]'s fields, the run's
    /// `elapsed_seconds` and `frames_per_second`, `cut_short`, what each capture that
    /// ended inside a record says, and `skipped_frames`.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            summary: &'a RunSummary,
            elapsed_seconds: f64,
            frames_per_second: f64,
            cut_short: Vec<String>,
            skipped_frames: u64,
        }
        serde_json::to_value(Json {
            summary: &self.summary,
            elapsed_seconds: self.elapsed.as_secs_f64(),
            frames_per_second: self.frames_per_second(),
            cut_short: self.truncated.iter().map(ToString::to_string).collect(),
            skipped_frames: self.skipped_frames,
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

/// The summary's lines, then what the capture files held that was skipped, and the
/// run's time and rate.
impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.summary)?;
        let input = nonzero_counts(&[
            (self.skipped_frames, "frames of link types not decoded"),
            (self.truncated.len() as u64, "captures cut short"),
        ]);
        if !input.is_empty() {
            write!(f, "\n  input: {input}")?;
        }
        let secs = self.elapsed.as_secs_f64();
        let rate = self.frames_per_second();
        write!(f, "\n  time: {secs:.3} s, {rate:.0} frames/s")
    }
}

/// How far a replay has got, for a progress display: bytes read from the files (moved
/// once a buffer) and frames read (moved every few thousand).
#[derive(Debug, Default)]
pub struct ReplayProgress {
    /// Bytes read from the capture files.
    pub bytes: Arc<AtomicU64>,
    /// Frames read.
    pub frames: AtomicU64,
}

/// Frames between two updates of [`ReplayProgress::frames`].
const FRAMES_PER_UPDATE: u64 = 1 << 14;

/// Replays capture files through one worker and the coordinator, merging the files in
/// time order. Files are opened (and checked to be captures) before anything runs; a
/// path of `-` is standard input ([`CaptureReader::open_or_stdin`]).
pub fn replay(
    files: &[PathBuf],
    settings: &Settings,
    sinks: Vec<Box<dyn Sink>>,
) -> Result<ReplayReport, PipelineError> {
    replay_with_progress(files, settings, sinks, None)
}

/// As [`replay`], publishing how far it has got in `progress` while it runs.
pub fn replay_with_progress(
    files: &[PathBuf],
    settings: &Settings,
    sinks: Vec<Box<dyn Sink>>,
    progress: Option<Arc<ReplayProgress>>,
) -> Result<ReplayReport, PipelineError> {
    replay_with(files, settings, sinks, progress, None, None)
}

/// As [`replay_with_progress`]; with `state`, going on from the window kept in that
/// directory (whatever its age: a capture's time is not the clock's) and keeping it
/// there at the end, without the end-of-input evaluation: the next file of a rotated
/// capture goes on where this one stopped, its first slot merged with this one's last.
/// With `fleet`, every slot is shipped to the fleet's ClickHouse as it closes, and the
/// last one at the end; the replay ends once they are sent (or a minute has passed).
pub fn replay_with(
    files: &[PathBuf],
    settings: &Settings,
    sinks: Vec<Box<dyn Sink>>,
    progress: Option<Arc<ReplayProgress>>,
    state: Option<&Path>,
    fleet: Option<&FleetSettings>,
) -> Result<ReplayReport, PipelineError> {
    let started = Instant::now();
    let bytes = progress
        .as_ref()
        .map_or_else(Arc::default, |p| Arc::clone(&p.bytes));
    let mut readers = files
        .iter()
        .map(|path| CaptureReader::open_counting(path, Arc::clone(&bytes)))
        .collect::<Result<Vec<_>, _>>()?;
    let classifier = Arc::new(Classifier::new(&settings.domain)?);
    let (to_coordinator, from_workers) = crossbeam_channel::bounded(64);
    let mut worker = Worker::new(0, settings, classifier, to_coordinator);
    let mut coordinator = Coordinator::new(&settings.rule, 1, sinks);
    if let Some(dir) = state {
        let writer = StateWriter::start(dir, None).map_err(|source| PipelineError::State {
            path: shown(dir),
            source,
        })?;
        if let Some(restored) = restore(dir, &settings.rule, &settings.sketch, None) {
            coordinator = coordinator.with_restored(restored);
        }
        coordinator = coordinator
            .with_state_at_the_end(writer)
            .without_final_evaluation();
    }

    if let Some(fleet) = fleet {
        let shipper = SlotShipper::start(fleet, state).map_err(PipelineError::Fleet)?;
        coordinator = coordinator.with_fleet(shipper, fleet);
    }

    let reading = std::thread::Builder::new()
        .name("dns-sensor-worker-0".into())
        .spawn(move || -> Result<(Vec<CaptureError>, u64), CaptureError> {
            let truncated = match progress {
                // Only a run that shows its progress counts its frames as it goes.
                Some(progress) => {
                    let mut frames = 0u64;
                    let read = read_merged(&mut readers, |frame| {
                        frames += 1;
                        if frames % FRAMES_PER_UPDATE == 0 {
                            progress.frames.store(frames, Ordering::Relaxed);
                        }
                        worker.process(frame);
                    });
                    progress.frames.store(frames, Ordering::Relaxed);
                    read?
                }
                None => read_merged(&mut readers, |frame| worker.process(frame))?,
            };
            worker.finish();
            let skipped = readers.iter().map(CaptureReader::skipped_frames).sum();
            Ok((truncated, skipped))
        })
        .map_err(|_| PipelineError::WorkerPanicked)?;
    let finished = coordinator.run_keeping_window(from_workers);
    let (truncated, skipped_frames) = reading
        .join()
        .map_err(|_| PipelineError::WorkerPanicked)??;
    let (summary, window) = finished?;
    Ok(ReplayReport {
        summary,
        elapsed: started.elapsed(),
        window: Some(window),
        truncated,
        skipped_frames,
    })
}
