//! The replay runner: capture files, merged in time order, through one worker and the
//! coordinator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::coordinator::{Coordinator, RunSummary};
use super::worker::Worker;
use super::{PipelineError, Settings};
use crate::alert::Sink;
use crate::capture::{CaptureError, CaptureReader, Frame};
use crate::domain::Classifier;
use crate::Nanos;

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
    sinks: Vec<Box<dyn Sink>>,
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
