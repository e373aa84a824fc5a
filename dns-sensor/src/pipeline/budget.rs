//! How `memory_cap` is shared between the shards alive at once: the one place the cap
//! is divided ([`ShardBudget`]).

use crate::detect::RuleSettings;
#[cfg(doc)]
use crate::{decode::DecodeSettings, detect::Detector, sketch::NameHistory};

/// What each shard and each worker's history may take when the window's tables share
/// `memory_cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardBudget {
    /// Bytes of one shard ([`shard_budget`]).
    pub shard_bytes: usize,
    /// Bytes of each worker's [`NameHistory`] ([`history_bytes`]).
    pub history_bytes: usize,
    /// Slots between the history's halvings ([`history_halving`]).
    pub history_halving: u32,
}

impl ShardBudget {
    /// The budget of `workers` workers under `rule`, each of which also holds
    /// `worker_tables` bytes of its own at most (its decoder's reassembly tables,
    /// [`DecodeSettings::max_bytes`], and its verdict cache): those come off the cap
    /// first, so that everything an attacker can grow stays within it.
    pub fn new(
        memory_cap: usize,
        rule: &RuleSettings,
        workers: usize,
        worker_tables: usize,
    ) -> Self {
        let window_cap = memory_cap.saturating_sub(workers.max(1).saturating_mul(worker_tables));
        let shard_bytes = shard_budget(window_cap, rule, workers);
        Self {
            shard_bytes,
            history_bytes: history_bytes(shard_bytes),
            history_halving: history_halving(rule),
        }
    }
}

/// The byte budget of one shard when the window's per-domain tables may take
/// `memory_cap` bytes in all: the cap shared between every shard alive at once, that is
/// the slots the window holds (a window and an interval's worth, as
/// [`Detector::add`] keeps them), the slot being merged, and per worker its open slot
/// and one closed slot on its way to the coordinator, plus per worker its
/// [`NameHistory`], an eighth of a shard's budget ([`history_bytes`]).
pub fn shard_budget(memory_cap: usize, rule: &RuleSettings, workers: usize) -> usize {
    let shares = slots_held(rule)
        .saturating_add(1)
        .saturating_add(workers.max(1).saturating_mul(2));
    // In eighths of a share: the histories are an eighth each.
    let eighths = shares.saturating_mul(8).saturating_add(workers.max(1));
    memory_cap.saturating_mul(8) / eighths.max(1)
}

/// The bytes of each worker's [`NameHistory`] when a shard's budget is `shard_budget`.
pub fn history_bytes(shard_budget: usize) -> usize {
    shard_budget / 8
}

/// Slots between halvings of the history: half the slots of a window (at least one).
pub fn history_halving(rule: &RuleSettings) -> u32 {
    let slot = crate::detect::slot_length(rule.window, rule.interval).max(1);
    u32::try_from(rule.window / slot / 2)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Slots the window keeps: a window and an interval's worth.
fn slots_held(rule: &RuleSettings) -> usize {
    let slot = crate::detect::slot_length(rule.window, rule.interval).max(1);
    let held = rule.window.saturating_add(rule.interval) / slot;
    usize::try_from(held).unwrap_or(usize::MAX)
}
