//! Detect: the window (a ring of closed slots), the rule evaluated over it every
//! interval, and re-alert suppression. Produces [`Alert`]s; knows nothing of sinks.

use std::net::IpAddr;

use crate::sketch::Shard;
use crate::Nanos;

/// The rule's parameters.
#[derive(Clone, Debug)]
pub struct RuleSettings {
    /// Alert when unique hostnames exceed this.
    pub threshold: u64,
    /// Length of the window evaluated.
    pub window: Nanos,
    /// Evaluate at every multiple of this since the Unix epoch.
    pub interval: Nanos,
    /// Alerts per evaluation at most, largest first.
    pub max_domains: usize,
    /// A domain already alerted is reported again only after this long (0: every time).
    pub realert: Nanos,
    /// Client addresses listed per alert.
    pub top_clients: usize,
}

/// One domain over the threshold in one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// When the evaluation ran (capture time).
    pub at: Nanos,
    /// Registered domain, canonical bytes.
    pub domain: Box<[u8]>,
    /// Queries in the window.
    pub total_requests: u64,
    /// Distinct query names in the window.
    pub unique_hostnames: u64,
    /// Sum of query message sizes.
    pub total_bytes_in: u64,
    /// Sum of response message sizes.
    pub total_bytes_out: u64,
    /// Start of the window covered.
    pub window_start: Nanos,
    /// End of the window covered.
    pub window_end: Nanos,
    /// Most active clients and their query counts.
    pub top_clients: Vec<(IpAddr, u64)>,
    /// A few names seen, canonical bytes.
    pub sample_names: Vec<Box<[u8]>>,
    /// Query counts by QTYPE.
    pub qtypes: Vec<(u16, u64)>,
}

/// The slot length the window is cut into: the largest that divides both the window
/// and the interval, so every evaluation falls on a slot boundary.
pub fn slot_length(window: Nanos, interval: Nanos) -> Nanos {
    let _ = (window, interval);
    todo!()
}

/// Holds the window and evaluates the rule over it.
pub struct Detector {}

impl Detector {
    /// An empty window.
    pub fn new(settings: RuleSettings) -> Self {
        let _ = settings;
        todo!()
    }
    /// The slot length in use.
    pub fn slot_length(&self) -> Nanos {
        todo!()
    }
    /// Adds a closed slot's shard (merged into any shard already held for that slot).
    /// Slots that have left the window are dropped.
    pub fn add(&mut self, shard: Shard) {
        let _ = shard;
        todo!()
    }
    /// Evaluates the rule over the window ending at `at`: every slot starting at or
    /// after `at - window` and before `at`. Returns alerts, largest first.
    pub fn evaluate(&mut self, at: Nanos) -> Vec<Alert> {
        let _ = at;
        todo!()
    }
    /// Domains held across the window's slots (a domain in several slots counts once per slot).
    pub fn tracked(&self) -> usize {
        todo!()
    }
}
