//! One receive queue's thread: its AF_XDP socket's frames into its worker, and the
//! counters the stats line reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::afxdp::{self, AfXdpError, QueueSocket, RingStats};
use crate::pipeline::{Worker, WorkerStats};

/// One queue's counters, updated by its worker about once a second.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Frames received.
    pub frames: AtomicU64,
    /// Kernel: dropped for other reasons (e.g. frame larger than a UMEM frame).
    pub rx_dropped: AtomicU64,
    /// Kernel: dropped because the RX ring was full (worker too slow).
    pub rx_ring_full: AtomicU64,
    /// Kernel: times the fill ring was empty.
    pub fill_ring_empty: AtomicU64,
    /// When the worker's loop last turned, in milliseconds since the run started: a
    /// worker that stops turning it is stalled.
    pub beat_ms: AtomicU64,
    /// The worker's counters (messages, what was not counted and why, reassembly), as
    /// of its last publication.
    pub worker: Mutex<WorkerStats>,
}

impl QueueCounters {
    fn store(&self, frames: u64, st: &RingStats) {
        self.frames.store(frames, Ordering::Relaxed);
        self.rx_dropped.store(st.rx_dropped, Ordering::Relaxed);
        self.rx_ring_full.store(st.rx_ring_full, Ordering::Relaxed);
        self.fill_ring_empty
            .store(st.fill_ring_empty, Ordering::Relaxed);
    }
}

/// One queue's thread: frames into the worker until `stop`, its counters published
/// about once a second. The socket (and its rings) are freed when this returns.
pub(super) fn queue_loop(
    mut socket: QueueSocket,
    mut worker: Worker,
    shared: &QueueCounters,
    stop: &AtomicBool,
    pin: Option<usize>,
    started: Instant,
) -> Result<(), AfXdpError> {
    if let Some(cpu) = pin {
        if let Err(e) = afxdp::pin_current_thread(cpu) {
            log::warn!("queue {}: cannot pin to core {cpu}: {e}", socket.queue());
        }
    }
    let mut next_publish = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let beat = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        shared.beat_ms.store(beat, Ordering::Relaxed);
        match socket.poll(Duration::from_millis(100), |frame| worker.process(&frame)) {
            Ok(_) => {}
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                break Err(e);
            }
        }
        // The live clock closes slots even when the queue is quiet, so the coordinator
        // never waits on an idle queue.
        worker.tick(crate::clock::arrival_now());
        if Instant::now() >= next_publish {
            next_publish += Duration::from_secs(1);
            if let Ok(st) = socket.stats() {
                shared.store(socket.received(), &st);
            }
            *shared.worker.lock().unwrap_or_else(|e| e.into_inner()) = worker.stats();
        }
    };
    if let Ok(st) = socket.stats() {
        shared.store(socket.received(), &st);
    }
    worker.finish();
    result
}
