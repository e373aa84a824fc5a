//! What the coordinator is told, over one channel so that it takes everything in the
//! order it was sent: the workers' closed slots and their end, and the runner's
//! reloads (SIGHUP).

use super::{Reload, WorkerStats};
use crate::sketch::Shard;
use crate::Nanos;

/// What the coordinator is told, in order, over its one channel.
pub enum ToCoordinator {
    /// A slot is closed: its shard, and the start of the worker's next slot (nothing
    /// earlier will come from this worker again).
    Slot {
        /// Which worker.
        worker: usize,
        /// The closed slot's counts.
        shard: Shard,
        /// The closed slot's end: its start plus the slot length, but for the last
        /// slot of the old length after a reload changed it.
        end: Nanos,
        /// Start of the worker's next slot.
        next_start: Nanos,
    },
    /// The worker has stopped; its last slot was sent before this.
    Done {
        /// Which worker.
        worker: usize,
        /// Its counters.
        stats: WorkerStats,
        /// Time of the last frame it saw.
        last_ts: Option<Nanos>,
    },
    /// New settings (SIGHUP): applied after everything sent before them.
    Reload(Box<Reload>),
    /// The outputs reopen their files (SIGHUP with settings that did not load:
    /// logrotate still needs the files reopened).
    ReopenOutputs,
}
