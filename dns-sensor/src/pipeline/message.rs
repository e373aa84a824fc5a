//! What the coordinator is told, over one channel so that it takes everything in the
//! order it was sent: the workers' closed slots and their end.

use super::WorkerStats;
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
}
