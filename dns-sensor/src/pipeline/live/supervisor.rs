//! What a live run tells whoever supervises it: ready once it watches, a one-line
//! status, that it is alive, that start-up waits, that it stops. The binary turns these
//! into systemd notifications (READY=1, STATUS=, WATCHDOG=1, EXTEND_TIMEOUT_USEC=,
//! STOPPING=1); the library knows nothing of systemd.
//!
//! "Alive" is said from the coordinator's own loop ([`Heartbeat`]), and only while every
//! queue's worker has made progress lately: a coordinator stuck in an evaluation or on an
//! output, or a worker stuck on a frame or on a full channel, stops the pings, and a
//! service manager's watchdog restarts the sensor.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::QueueCounters;
use crate::pipeline::{Heartbeat, Progress};

/// Receives a live run's news. Every method has a default that does nothing.
pub trait Supervisor: Send + Sync {
    /// The program is attached and every socket bound: the sensor is watching.
    fn ready(&self, _status: &str) {}
    /// A one-line summary of the run, refreshed with every beat.
    fn status(&self, _status: &str) {}
    /// The coordinator's loop turns and every worker makes progress.
    fn alive(&self) {}
    /// Start-up waits (for an interface to appear); `status` says on what. Called about
    /// once a second while it waits.
    fn waiting(&self, _status: &str) {}
    /// The run is shutting down.
    fn stopping(&self) {}
    /// How often [`alive`](Supervisor::alive) is wanted.
    fn beat_every(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// A supervisor that listens to nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unsupervised;

impl Supervisor for Unsupervised {}

/// The shortest span a frames/s figure is measured over.
const RATE_SPAN: Duration = Duration::from_secs(5);

/// A worker that has not turned its loop for this many beats is stalled.
const STALLED_AFTER_BEATS: u32 = 2;

/// The heartbeat the coordinator beats: checks every queue's worker, tells
/// `supervisor` the status and, when all make progress, that the run is alive.
pub(super) fn heartbeat(
    supervisor: Arc<dyn Supervisor>,
    queues: Vec<Arc<QueueCounters>>,
    started: Instant,
    interface: String,
) -> Heartbeat {
    let every = supervisor.beat_every();
    let stalled_after = every * STALLED_AFTER_BEATS;
    // Queues publish their frame counts about once a second: a rate over shorter spans
    // would swing between nothing and bursts.
    let mut sample: Option<(Instant, u64)> = None;
    let mut rate = 0.0;
    let mut stalled_before: Vec<bool> = vec![false; queues.len()];
    Heartbeat {
        every,
        beat: Box::new(move |progress: &Progress| {
            let now = Instant::now();
            let since_start = now.duration_since(started);
            let mut stalled = Vec::new();
            for (i, q) in queues.iter().enumerate() {
                let beat = Duration::from_millis(q.beat_ms.load(Ordering::Relaxed));
                let is_stalled = since_start.saturating_sub(beat) > stalled_after;
                if is_stalled {
                    stalled.push(i);
                    if !stalled_before[i] {
                        log::error!(
                            "queue {i}: its worker has made no progress for {} s: \
                             not telling the watchdog we are alive",
                            since_start.saturating_sub(beat).as_secs()
                        );
                    }
                } else if stalled_before[i] {
                    log::warn!("queue {i}: its worker makes progress again");
                }
                stalled_before[i] = is_stalled;
            }
            let frames: u64 = queues
                .iter()
                .map(|q| q.frames.load(Ordering::Relaxed))
                .sum();
            match sample {
                Some((then, before)) if now.duration_since(then) >= RATE_SPAN => {
                    let secs = now.duration_since(then).as_secs_f64();
                    rate = frames.saturating_sub(before) as f64 / secs;
                    sample = Some((now, frames));
                }
                Some(_) => {}
                None => sample = Some((now, frames)),
            }
            let line = status_line(&interface, rate, &queues, progress, &stalled);
            supervisor.status(&line);
            if stalled.is_empty() {
                supervisor.alive();
            }
        }),
    }
}

/// `watching eth1: 1234 frames/s, 0 ring drops, 567 domains, 3 alerts`.
pub(super) fn status_line(
    interface: &str,
    frames_per_sec: f64,
    queues: &[Arc<QueueCounters>],
    progress: &Progress,
    stalled: &[usize],
) -> String {
    let drops: u64 = queues
        .iter()
        .map(|q| q.rx_dropped.load(Ordering::Relaxed) + q.rx_ring_full.load(Ordering::Relaxed))
        .sum();
    let mut line = format!(
        "watching {interface}: {frames_per_sec:.0} frames/s, {drops} ring drops, {} domains, \
         {} alerts",
        progress.domains, progress.alerts
    );
    if progress.delivery_failures > 0 {
        line.push_str(&format!(
            ", {} failed deliveries",
            progress.delivery_failures
        ));
    }
    if !stalled.is_empty() {
        let names: Vec<String> = stalled.iter().map(|i| format!("q{i}")).collect();
        line.push_str(&format!("; stalled: {}", names.join(" ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder {
        said: Mutex<Vec<String>>,
    }

    impl Supervisor for Recorder {
        fn status(&self, status: &str) {
            self.said
                .lock()
                .expect("not poisoned")
                .push(status.to_owned());
        }
        fn alive(&self) {
            self.said.lock().expect("not poisoned").push("alive".into());
        }
        fn beat_every(&self) -> Duration {
            Duration::from_millis(50)
        }
    }

    #[test]
    fn beats_say_alive_only_while_every_worker_moves() {
        let recorder = Arc::new(Recorder::default());
        let queues: Vec<Arc<QueueCounters>> = (0..2).map(|_| Arc::default()).collect();
        let started = Instant::now();
        let mut heartbeat = heartbeat(recorder.clone(), queues.clone(), started, "eth1".into());
        let progress = Progress {
            alerts: 3,
            domains: 567,
            ..Progress::default()
        };
        let beat_now = |q: &QueueCounters| {
            q.beat_ms
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed)
        };
        for q in &queues {
            beat_now(q);
        }
        queues[0].frames.store(1000, Ordering::Relaxed);
        (heartbeat.beat)(&progress);
        // Queue 1 stops turning; queue 0 goes on.
        std::thread::sleep(Duration::from_millis(150));
        beat_now(&queues[0]);
        (heartbeat.beat)(&progress);
        beat_now(&queues[1]);
        (heartbeat.beat)(&progress);
        let said = recorder.said.lock().expect("not poisoned").clone();
        assert_eq!(said.len(), 5, "{said:?}");
        assert_eq!(said[1], "alive");
        assert!(
            said[0].starts_with("watching eth1: 0 frames/s, 0 ring drops, 567 domains, 3 alerts")
        );
        assert!(said[2].ends_with("; stalled: q1"), "{said:?}");
        assert!(said[2].contains("0 frames/s"), "{said:?}");
        // No "alive" while queue 1 was stalled; again once it moved.
        assert_eq!(said[4], "alive");
        assert!(!said[3].contains("stalled"), "{said:?}");
    }
}
