//! The window kept in the state directory (`state_directory`), so that a restart, an
//! upgrade or a crash does not throw four hours of evidence away: the coordinator
//! hands a snapshot to a writer thread at every slot boundary (after its evaluations)
//! and writes one last at the end of the run; a run that starts restores the one it
//! finds, when it is younger than the window.

use crate::files::shown;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};

use crate::detect::snapshot::{read_snapshot, write_snapshot, Restored, SNAPSHOT_FILE};
use crate::detect::{Detector, RuleSettings};
use crate::sketch::SketchSettings;
use crate::Nanos;

use super::WindowGauges;

/// A snapshot on its way to the disk.
pub struct Snapshot {
    bytes: Vec<u8>,
    written_at: Nanos,
    started: Instant,
}

impl Snapshot {
    /// `bytes`, stamped `written_at`, whose encoding started at `started`.
    pub fn new(bytes: Vec<u8>, written_at: Nanos, started: Instant) -> Self {
        Self {
            bytes,
            written_at,
            started,
        }
    }
}

/// Writes the snapshots it is handed, one at a time, on a thread of its own: the
/// coordinator only encodes them.
pub struct StateWriter {
    dir: PathBuf,
    to_writer: Option<Sender<Snapshot>>,
    writing: Option<JoinHandle<()>>,
}

impl StateWriter {
    /// A writer of snapshots into `dir` ([`check_directory`] first), which tells
    /// `gauges` when it wrote the last one and how long that took.
    pub fn start(dir: &Path, gauges: Option<Arc<WindowGauges>>) -> std::io::Result<Self> {
        check_directory(dir)?;
        // One waiting: a snapshot handed in while another is written replaces nothing,
        // it is dropped (the next round writes a newer one).
        let (to_writer, from_coordinator) = crossbeam_channel::bounded::<Snapshot>(1);
        let target = dir.to_path_buf();
        let writing = std::thread::Builder::new()
            .name("dns-sensor-state".into())
            .spawn(move || {
                for snapshot in from_coordinator {
                    if let Err(e) = write_snapshot(&target, &snapshot.bytes) {
                        log::error!("state: writing {}: {e}", shown(&target.join(SNAPSHOT_FILE)));
                        continue;
                    }
                    if let Some(g) = &gauges {
                        let took = snapshot.started.elapsed().as_nanos();
                        let took = u64::try_from(took).unwrap_or(u64::MAX);
                        g.last_snapshot_nanos.store(took, Ordering::Relaxed);
                        g.last_snapshot_at
                            .store(snapshot.written_at, Ordering::Relaxed);
                    }
                }
            })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            to_writer: Some(to_writer),
            writing: Some(writing),
        })
    }

    /// Hands `snapshot` to the writer; `false` when it is still writing the last one
    /// and this one is dropped.
    pub fn offer(&self, snapshot: Snapshot) -> bool {
        match self.to_writer.as_ref().map(|w| w.try_send(snapshot)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// Writes `snapshot` after anything already handed in, and waits until it is on
    /// disk: the end of the run.
    pub fn finish(mut self, snapshot: Snapshot) {
        if let Some(to_writer) = self.to_writer.take() {
            let _ = to_writer.send(snapshot);
        }
        if let Some(writing) = self.writing.take() {
            let _ = writing.join();
        }
        log::info!(
            "state: the window is kept in {}",
            shown(&self.dir.join(SNAPSHOT_FILE))
        );
    }
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        self.to_writer = None;
        if let Some(writing) = self.writing.take() {
            let _ = writing.join();
        }
    }
}

/// Whether `dir` is a directory this process may create the snapshot in, as the
/// kernel would decide it (creates nothing).
pub fn check_directory(dir: &Path) -> std::io::Result<()> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    crate::alert::file::may_create_in(dir)
}

/// The window kept in `dir`, under `rule`, if there is one (younger than the window
/// at `now`, the wall clock, when a `now` is given: a live run's): what was found and
/// why it was not taken is logged, and is never an error (a run then starts with an
/// empty window, as without one).
pub fn restore(
    dir: &Path,
    rule: &RuleSettings,
    sketch: &SketchSettings,
    now: Option<Nanos>,
) -> Option<Restored> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match read_snapshot(dir) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            log::info!("state: no window kept in {}: starting empty", shown(dir));
            return None;
        }
        Err(e) => {
            log::warn!("state: reading {}: {e}; starting empty", shown(&path));
            return None;
        }
    };
    let restored = match Detector::from_snapshot(&bytes, rule.clone(), sketch) {
        Ok(restored) => restored,
        Err(e) => {
            log::warn!("state: {} is {e}; starting empty", shown(&path));
            return None;
        }
    };
    let age = now.map_or(0, |now| now.saturating_sub(restored.written_at));
    let age_text =
        humantime::format_duration(std::time::Duration::from_secs(age / crate::NANOS_PER_SEC));
    if now.is_some() && age >= rule.window {
        log::info!(
            "state: the window in {} was kept {age_text} ago, longer than the window: \
             starting empty",
            shown(&path)
        );
        return None;
    }
    let kept = if now.is_some() {
        format!(" (kept {age_text} ago)")
    } else {
        String::new()
    };
    log::info!(
        "state: window restored from {}{kept}: {} slots, {} domains",
        shown(&path),
        restored.detector.slots(),
        restored.detector.tracked()
    );
    Some(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_writes_what_it_is_handed_and_says_when() {
        let dir = std::env::temp_dir().join(format!("dnss-state-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        assert!(StateWriter::start(&dir.join("absent"), None).is_err());
        let gauges = Arc::new(WindowGauges::default());
        let writer = StateWriter::start(&dir, Some(Arc::clone(&gauges))).expect("starts");
        let window = Detector::new(RuleSettings::default());
        let bytes = window.to_snapshot(42, Some(7));
        writer.finish(Snapshot::new(bytes.clone(), 42, Instant::now()));
        assert_eq!(read_snapshot(&dir).expect("readable"), Some(bytes));
        assert_eq!(gauges.last_snapshot_at.load(Ordering::Relaxed), 42);
        let restored = restore(
            &dir,
            &RuleSettings::default(),
            &SketchSettings::default(),
            None,
        )
        .expect("restored");
        assert_eq!(restored.evaluated_until, Some(7));
        // Too old for a live run's clock: left alone.
        let window = RuleSettings::default().window;
        assert!(restore(
            &dir,
            &RuleSettings::default(),
            &SketchSettings::default(),
            Some(42 + window)
        )
        .is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
