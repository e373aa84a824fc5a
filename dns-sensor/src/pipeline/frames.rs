//! The in-memory runner: frames already in memory, split between workers as a NIC
//! splits them between receive queues (benchmarks and tests).

use std::sync::Arc;
use std::time::Instant;

use super::coordinator::Coordinator;
use super::replay::ReplayReport;
use super::worker::Worker;
use super::{PipelineError, Settings};
use crate::alert::Sink;
use crate::capture::Frame;
use crate::decode::flow_hash;
use crate::domain::Classifier;

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
    sinks: Vec<Box<dyn Sink>>,
) -> Result<ReplayReport, PipelineError> {
    let classifier = Arc::new(Classifier::new(&settings.domain)?);
    let workers = parts.len().max(1);
    let (to_coordinator, from_workers) = crossbeam_channel::bounded(64);
    let coordinator = Coordinator::new(&settings.rule, workers, sinks);
    let started = Instant::now();
    let (summary, window) = std::thread::scope(|scope| {
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
        let finished = coordinator.run_keeping_window(from_workers);
        let mut joined = spawned;
        for handle in handles {
            joined &= handle.join().is_ok();
        }
        if !joined {
            return Err(PipelineError::WorkerPanicked);
        }
        finished
    })?;
    // Before the window is dropped: `elapsed` is the pipeline's time, not the free's.
    let elapsed = started.elapsed();
    Ok(ReplayReport {
        summary,
        elapsed,
        window: Some(window),
        truncated: Vec::new(),
        skipped_frames: 0,
    })
}
