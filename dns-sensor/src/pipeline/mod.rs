//! Pipeline: wires capture → decode → domain → sketch into [`Worker`]s, and detect →
//! alert into the [`Coordinator`]. Replay and live capture share both; they differ only
//! in where frames come from and which clock cuts the slots.
//!
//! A worker owns one shard per slot. When a frame's time passes the slot's end, the
//! worker hands the closed shard to the coordinator over a channel. The coordinator
//! merges shards into the detector's window and evaluates the rule at every interval
//! boundary that every worker has passed, so alerts are the same whatever the number of
//! workers or the speed of the input.
//!
//! - [`worker`]: one thread's share of the hot path;
//! - [`coordinator`]: the window, the rule's evaluations and the alerts' delivery;
//! - [`message`]: what the coordinator is told, and by whom;
//! - [`reload`]: new settings for a running pipeline;
//! - [`state`]: the window kept across restarts in the state directory;
//! - [`budget`]: how the memory cap is shared between the shards alive at once;
//! - [`mod@replay`] and [`frames`]: runners over capture files and frames in memory;
//! - `live` (with the `live` feature): the runner over an interface's receive queues.

pub mod budget;
pub mod coordinator;
pub mod frames;
#[cfg(feature = "live")]
pub mod live;
pub mod message;
pub mod reload;
pub mod replay;
pub mod state;
pub mod worker;

pub use budget::{history_bytes, history_halving, shard_budget, ShardBudget};
pub use coordinator::{Coordinator, Heartbeat, Progress, RunSummary, WindowGauges};
pub use frames::{partition_by_flow, run_frames};
pub use message::ToCoordinator;
pub use reload::{ReadError, ReadSettings, Reload, WorkerSettings, WorkerUpdates};
pub use replay::{replay, replay_with, replay_with_progress, ReplayProgress, ReplayReport};
pub use worker::{Worker, WorkerStats};

use crate::capture::CaptureError;
use crate::decode::DecodeSettings;
use crate::detect::RuleSettings;
use crate::domain::{DomainError, DomainSettings};
use crate::sketch::SketchSettings;

/// Everything the pipeline's steps are configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Link to transport decoding.
    pub decode: DecodeSettings,
    /// Registered domains and the whitelist.
    pub domain: DomainSettings,
    /// Per-slot counting.
    pub sketch: SketchSettings,
    /// The rule and its window.
    pub rule: RuleSettings,
}

/// What stops the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A capture file could not be opened or read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The domain classifier could not be built.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A worker thread died.
    #[error("worker thread panicked")]
    WorkerPanicked,
    /// The state directory cannot be used.
    #[error("state directory {path}: {source}")]
    State {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The fleet's shipper thread could not start.
    #[error("fleet: the shipper thread: {0}")]
    Fleet(std::io::Error),
}

/// `3 not IP, 2 whitelisted`: the counts that are not zero, with what they count, for
/// the summary's lines.
pub(crate) fn nonzero_counts(parts: &[(u64, &str)]) -> String {
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
