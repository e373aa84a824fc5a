//! The replay's progress on a terminal: bytes and frames read, the rate, the time left.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dns_sensor::pipeline::ReplayProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the display is redrawn.
const REDRAW: Duration = Duration::from_millis(250);

/// A progress bar on stderr, redrawn from `progress` by a thread of its own until
/// dropped, and cleared then (the summary takes its place).
pub(crate) struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    drawing: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Draws `progress` against `total` bytes (a bar, the rate and the time left), or
    /// only what was read when the total is unknown (standard input).
    pub(crate) fn start(progress: Arc<ReplayProgress>, total: Option<u64>) -> Self {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{binary_bytes}/{binary_total_bytes} [{bar:30}] {msg}, {eta} left",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {binary_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let drawing = std::thread::Builder::new()
            .name("dns-sensor-progress".into())
            .spawn(move || {
                let started = Instant::now();
                loop {
                    let frames = progress.frames.load(Ordering::Relaxed);
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_position(progress.bytes.load(Ordering::Relaxed));
                    bar.set_message(format!(
                        "{frames} frames, {:.0} frames/s",
                        frames as f64 / secs
                    ));
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(REDRAW);
                }
                bar.finish_and_clear();
            })
            .ok();
        Self { stop, drawing }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(drawing) = self.drawing.take() {
            let _ = drawing.join();
        }
    }
}
