//! New settings for a pipeline that is running (SIGHUP): what the coordinator takes
//! (the rule, the outputs) and what the workers pick up between batches (the domains
//! and the whitelist, how a slot is counted, the slot length). The counted window
//! stays.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Settings;
use crate::alert::Sink;
use crate::detect::{slot_length, RuleSettings};
use crate::domain::Classifier;
use crate::sketch::SketchSettings;
use crate::Nanos;

/// Reads the settings again for a reload: the pipeline's settings for this many
/// workers, and the outputs they name, opened. An error keeps the running settings;
/// it is logged as it is, so it names the file and the line.
pub type ReadSettings =
    dyn Fn(usize) -> Result<(Settings, Vec<Box<dyn Sink>>), ReadError> + Send + Sync;

/// Why a reload's settings could not be read (the binary's own error, as it words it).
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// What the coordinator applies on a reload.
pub struct Reload {
    /// The new rule: threshold, window, interval, realert, alerts per evaluation.
    pub rule: RuleSettings,
    /// The new outputs, opened: they replace the running ones, which are flushed.
    pub sinks: Vec<Box<dyn Sink>>,
}

/// What a worker applies on a reload, from its next slot on (the open slot keeps how
/// it was counting, and its end).
#[derive(Clone)]
pub struct WorkerSettings {
    /// Registered domains and the whitelist.
    pub classifier: Arc<Classifier>,
    /// How the next slots are counted (their share of the memory cap, the names that
    /// protect a domain from shedding, the samples kept).
    pub sketch: SketchSettings,
    /// The length of the next slots.
    pub slot_length: Nanos,
}

impl WorkerSettings {
    /// What `settings` asks of the workers, with its classifier already built.
    pub fn new(settings: &Settings, classifier: Arc<Classifier>) -> Self {
        Self {
            classifier,
            sketch: settings.sketch.clone(),
            slot_length: slot_length(settings.rule.window, settings.rule.interval).max(1),
        }
    }
}

/// Where a reload leaves the workers' new settings. Each worker looks between batches
/// (one atomic load) and takes them once.
#[derive(Default)]
pub struct WorkerUpdates {
    /// Bumped by every [`publish`](Self::publish); 0 until the first.
    generation: AtomicU64,
    latest: Mutex<Option<WorkerSettings>>,
}

impl WorkerUpdates {
    /// Makes `settings` the ones every worker takes next.
    pub fn publish(&self, settings: WorkerSettings) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        *latest = Some(settings);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The latest settings and their generation, if newer than `seen`.
    pub(super) fn newer_than(&self, seen: u64) -> Option<(u64, WorkerSettings)> {
        if self.generation.load(Ordering::Acquire) == seen {
            return None;
        }
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(Ordering::Acquire);
        latest.clone().map(|settings| (generation, settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn each_publication_is_taken_once_and_the_latest_wins() {
        let settings = Config::default().settings().expect("defaults");
        let classifier = Arc::new(Classifier::new(&settings.domain).expect("classifier"));
        let updates = WorkerUpdates::default();
        assert!(updates.newer_than(0).is_none());
        let mut first = WorkerSettings::new(&settings, Arc::clone(&classifier));
        first.slot_length = 1;
        updates.publish(first);
        let mut second = WorkerSettings::new(&settings, classifier);
        second.slot_length = 2;
        updates.publish(second);
        let (seen, taken) = updates.newer_than(0).expect("published");
        assert_eq!(taken.slot_length, 2);
        assert!(updates.newer_than(seen).is_none());
    }
}
