//! Upper bounds on domains' unique names over several slots, which spare the
//! evaluation the merge of every domain's slots.

use crate::sketch::DomainCounts;

/// An upper bound on a domain's unique names over several slots: the sum of its
/// per-slot counts (a union is never larger), and whether any slot's count was an
/// estimate (then the union must be merged to be known). Packed in one word, as the
/// table of bounds holds one per domain of the window (millions): the top bit is the
/// estimate flag, the rest the saturating sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct NameBound(u64);

impl NameBound {
    const ESTIMATED: u64 = 1 << 63;

    pub(super) fn add(&mut self, counts: &DomainCounts) {
        let names = self
            .names()
            .saturating_add(counts.unique_names())
            .min(!Self::ESTIMATED);
        let estimated = if self.estimated() || counts.is_estimated() {
            Self::ESTIMATED
        } else {
            0
        };
        self.0 = names | estimated;
    }

    fn names(self) -> u64 {
        self.0 & !Self::ESTIMATED
    }

    fn estimated(self) -> bool {
        self.0 & Self::ESTIMATED != 0
    }

    /// Whether the union can exceed `threshold`: the sum does, or an estimate is in it.
    pub(super) fn may_exceed(self, threshold: u64) -> bool {
        self.names() > threshold || self.estimated()
    }
}

