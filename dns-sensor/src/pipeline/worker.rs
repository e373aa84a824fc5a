//! One thread's share of the hot path: frames in, one shard per slot out to the
//! coordinator.

use std::sync::Arc;

use crossbeam_channel::Sender;
use xxhash_rust::xxh3::xxh3_64;

use super::{nonzero_counts, Settings, ToCoordinator, WorkerUpdates};
use crate::capture::Frame;
use crate::decode::{parse_question, DecodeStats, Decoder, DnsError, DnsPacket, MessageSink, Name};
use crate::domain::{Classifier, Verdict, VerdictCache};
use crate::sketch::{NameHistory, Query, Shard, SketchSettings};
use crate::Nanos;

/// What a worker saw, beyond the decoder's own counters. Serialised with these field
/// names in the replay's JSON summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStats {
    /// Link to transport counters.
    pub decode: DecodeStats,
    /// DNS messages whose header or question did not parse.
    pub malformed_dns: u64,
    /// Well-formed messages without a question (mDNS announcements, some updates):
    /// no name to count them under.
    pub no_question: u64,
    /// Queries counted (QR=0).
    pub queries: u64,
    /// Responses counted (QR=1).
    pub responses: u64,
    /// Messages dropped because their name is whitelisted.
    pub whitelisted: u64,
    /// Messages dropped because their name has no registered domain.
    pub no_domain: u64,
}

impl WorkerStats {
    /// Adds another worker's counters into these.
    pub fn add(&mut self, other: &WorkerStats) {
        self.decode.add(&other.decode);
        self.malformed_dns += other.malformed_dns;
        self.no_question += other.no_question;
        self.queries += other.queries;
        self.responses += other.responses;
        self.whitelisted += other.whitelisted;
        self.no_domain += other.no_domain;
    }

    /// Frames or messages counted as malformed at any layer.
    pub fn malformed(&self) -> u64 {
        self.decode.malformed_frames + self.malformed_dns
    }
}

/// The summary's traffic lines: frames and messages read, then, each on a line of its
/// own and only where some count is not zero, what was not counted and why, and what
/// reassembly dropped.
impl std::fmt::Display for WorkerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.decode;
        write!(
            f,
            "{} frames read, {} DNS messages ({} queries, {} responses)",
            d.frames, d.dns_messages, self.queries, self.responses
        )?;
        let not_counted = nonzero_counts(&[
            (d.malformed_frames, "malformed frames"),
            (self.malformed_dns, "malformed DNS messages"),
            (self.no_question, "without a question"),
            (d.not_ip, "not IP"),
            (d.not_dns, "not DNS"),
            (self.whitelisted, "whitelisted"),
            (self.no_domain, "without a registered domain"),
        ]);
        if !not_counted.is_empty() {
            write!(f, "\n  not counted: {not_counted}")?;
        }
        let reassembly = nonzero_counts(&[
            (d.ip_fragments, "IPv4 fragments"),
            (d.ip_reassembled, "reassembled"),
            (d.ip_fragments_dropped, "fragments dropped"),
            (d.tcp_bytes_dropped, "TCP bytes dropped"),
        ]);
        if !reassembly.is_empty() {
            write!(f, "\n  reassembly: {reassembly}")?;
        }
        Ok(())
    }
}

/// One thread's share of the hot path: frames in, slot shards out.
pub struct Worker {
    id: usize,
    decoder: Decoder,
    classifier: Arc<Classifier>,
    verdicts: VerdictCache,
    sketch: SketchSettings,
    slot_length: Nanos,
    shard: Option<Shard>,
    slot_end: Nanos,
    name: Name,
    stats: WorkerStats,
    last_ts: Option<Nanos>,
    to_coordinator: Sender<ToCoordinator>,
    /// Where reloads leave new settings, and the generation of the last ones taken.
    updates: Option<(Arc<WorkerUpdates>, u64)>,
}

impl Worker {
    /// A worker numbered `id` that sends closed slots to `to_coordinator`.
    pub fn new(
        id: usize,
        settings: &Settings,
        classifier: Arc<Classifier>,
        to_coordinator: Sender<ToCoordinator>,
    ) -> Self {
        Self {
            id,
            decoder: Decoder::new(settings.decode.clone()),
            classifier,
            verdicts: VerdictCache::new(),
            sketch: settings.sketch.clone(),
            slot_length: crate::detect::slot_length(settings.rule.window, settings.rule.interval),
            shard: None,
            slot_end: 0,
            name: Name::new(),
            stats: WorkerStats::default(),
            last_ts: None,
            to_coordinator,
            updates: None,
        }
    }

    /// Takes the settings reloads publish in `updates`, at every [`tick`](Self::tick).
    pub fn with_updates(mut self, updates: Arc<WorkerUpdates>) -> Self {
        self.updates = Some((updates, 0));
        self
    }

    /// Counts one frame.
    pub fn process(&mut self, frame: &Frame<'_>) {
        if frame.ts >= self.slot_end || self.shard.is_none() {
            self.advance_to(frame.ts);
        }
        self.last_ts = Some(self.last_ts.map_or(frame.ts, |t| t.max(frame.ts)));
        let Some(shard) = self.shard.as_mut() else {
            return;
        };
        let counter = Counter {
            classifier: &self.classifier,
            verdicts: &mut self.verdicts,
            name: &mut self.name,
            stats: &mut self.stats,
            shard,
        };
        self.decoder.decode_to(frame, counter);
    }

    /// Closes the current slot if `now` is past its end (the live clock moves on even
    /// when no frame arrives). Returns whether a slot was closed.
    pub fn tick(&mut self, now: Nanos) -> bool {
        self.take_updates();
        if self.shard.is_none() {
            // A queue that has seen nothing yet still moves with the clock: otherwise the
            // coordinator would wait for its first slot forever.
            self.advance_to(now);
            return false;
        }
        if now >= self.slot_end {
            self.advance_to(now);
            return true;
        }
        false
    }

    /// The counters so far (the decoder's included), for whoever reports on a run while
    /// it goes.
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            decode: self.decoder.stats().clone(),
            ..self.stats.clone()
        }
    }

    /// Sends the last slot and the counters; the worker is done.
    pub fn finish(mut self) {
        if let Some(mut shard) = self.shard.take() {
            shard.close();
            // Time stopped at the last frame: the boundary ending this slot was never
            // reached, so it must not be evaluated.
            let reached = self.last_ts.map_or(shard.start(), |t| t.saturating_add(1));
            self.send_slot(shard, reached);
        }
        self.stats.decode = self.decoder.stats().clone();
        let _ = self.to_coordinator.send(ToCoordinator::Done {
            worker: self.id,
            stats: self.stats,
            last_ts: self.last_ts,
        });
    }

    /// Takes the settings a reload published, if there are new ones. The open slot
    /// keeps its shard and its end; the whitelist applies to the next message.
    fn take_updates(&mut self) {
        let Some((updates, seen)) = &mut self.updates else {
            return;
        };
        let Some((generation, settings)) = updates.newer_than(*seen) else {
            return;
        };
        *seen = generation;
        self.classifier = settings.classifier;
        // Its verdicts are the old whitelist's, and its hints the old tables'.
        self.verdicts = VerdictCache::new();
        self.sketch = settings.sketch;
        self.slot_length = settings.slot_length;
    }

    /// Closes the current slot (if any) and opens the one holding `ts`. The history of
    /// earlier slots goes from the closed shard, which it remembers, to the new one.
    ///
    /// Slots start on multiples of the slot length, except the first after a reload
    /// changed it: that one starts where the last slot of the old length ended, and
    /// ends on the new grid.
    fn advance_to(&mut self, ts: Nanos) {
        let on_grid = ts - ts % self.slot_length;
        let start = match &self.shard {
            Some(_) => on_grid.max(self.slot_end),
            None => on_grid,
        };
        let mut history = None;
        let mut expected_domains = 0;
        if let Some(mut shard) = self.shard.take() {
            if start <= shard.start() {
                // A frame from before the current slot (clock step back, or slightly
                // unordered input): count it in the open slot rather than reopen a closed one.
                self.shard = Some(shard);
                return;
            }
            // Slots follow the same traffic: the next will hold about as many domains,
            // its table sized for them at once rather than grown by doubling.
            expected_domains = shard.len();
            history = shard.close();
            if let Some(history) = history.as_mut() {
                history.absorb(&shard, (start - shard.start()) / self.slot_length);
            }
            self.send_slot(shard, start);
        }
        let history = history.or_else(|| {
            (self.sketch.history_bytes > 0)
                .then(|| NameHistory::new(self.sketch.history_bytes, self.sketch.history_halving))
        });
        let shard = Shard::new(start, &self.sketch).sized_for(expected_domains);
        self.shard = Some(match history {
            Some(history) => shard.with_history(history),
            None => shard,
        });
        self.slot_end = (start - start % self.slot_length).saturating_add(self.slot_length);
    }

    fn send_slot(&self, shard: Shard, next_start: Nanos) {
        // The coordinator only goes away when the run is over; nothing to do then.
        let _ = self.to_coordinator.send(ToCoordinator::Slot {
            worker: self.id,
            shard,
            end: self.slot_end,
            next_start,
        });
    }
}

/// The counting of one DNS message, handed to the decoder: the question, its
/// registered domain, the counts.
struct Counter<'w> {
    classifier: &'w Classifier,
    verdicts: &'w mut VerdictCache,
    name: &'w mut Name,
    stats: &'w mut WorkerStats,
    shard: &'w mut Shard,
}

impl MessageSink for Counter<'_> {
    // Inlined by force where the decoder hands a message over: the message's fields
    // then stay in registers, where a closure's call passed them through memory.
    #[inline(always)]
    fn message(&mut self, packet: DnsPacket<'_>) {
        let question = match parse_question(packet.message, self.name) {
            Ok(q) => q,
            Err(DnsError::NoQuestion) => {
                self.stats.no_question += 1;
                return;
            }
            Err(_) => {
                self.stats.malformed_dns += 1;
                return;
            }
        };
        // One hash of the name serves the verdict cache's slot and the counts' set.
        let name_hash = xxh3_64(self.name.as_bytes());
        // Read once for the registered domain and the names' shape.
        let label_starts = self.name.label_starts();
        let (verdict, hint) = self.verdicts.classify_hinted(
            self.classifier,
            self.name.as_bytes(),
            name_hash,
            label_starts,
        );
        let domain = match verdict {
            Verdict::Registered(domain) => domain,
            Verdict::Whitelisted => {
                self.stats.whitelisted += 1;
                return;
            }
            Verdict::NoDomain => {
                self.stats.no_domain += 1;
                return;
            }
        };
        let size = packet.message.len() as u32;
        if question.is_response {
            self.stats.responses += 1;
            self.shard
                .record_response_hinted(domain, hint, size, question.rcode);
        } else {
            self.stats.queries += 1;
            let query = Query {
                name: self.name.as_bytes(),
                label_starts,
                hash: name_hash,
                client: packet.src,
                qtype: question.qtype,
                size,
            };
            self.shard.record_query_hashed(domain, hint, query);
        }
    }
}
