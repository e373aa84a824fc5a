//! The shipper: a thread of its own takes the closed slots' rows and inserts them, so
//! that neither a slow ClickHouse nor one that is down ever holds up detection.
//!
//! The coordinator offers each slot's rows and never waits: the hand-over is a bounded
//! channel the thread empties at once into its queue of slots waiting. While ClickHouse
//! does not take them, they wait there, up to [`MAX_WAITING_BYTES`]; past it the oldest
//! slot is dropped, counted, with a log line. Inserting a slot again is harmless (the
//! table keeps one row per sensor, slot and domain), so a slot is retried until taken.
//!
//! With a state directory, slots that wait are also written to its spool
//! ([`super::spool`]) from the first failed insert on, and removed once taken: what a
//! run could not send, even if it crashed, is sent by the next one first. The same
//! bound holds for the spool; the oldest slot dropped leaves it too.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::clickhouse::{ClickHouse, ClickHouseError};
use super::rows::{json_lines, SlotRow};
use super::schema::{ensure_schema, Database, TABLE};
use super::spool::{Batch, Spool};
use super::FleetSettings;

/// Slots the hand-over holds before the thread takes them: it takes them as they
/// come, so this only absorbs a burst (the end of a replay closes every worker's last
/// slot at once).
const HANDOVER_SLOTS: usize = 64;

/// Bytes of rows (as JSON) waiting for ClickHouse at most: a 4 h outage of a busy
/// sensor's 1-minute slots, at about 1 MB a slot.
pub const MAX_WAITING_BYTES: usize = 256 << 20;

/// How long the end of a run waits for ClickHouse when what it cannot send stays in the
/// spool for the next run.
const SPOOLED_PATIENCE: Duration = Duration::from_secs(5);

/// Longest wait between two tries while ClickHouse is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the shipper has done so far.
#[derive(Debug, Default)]
pub struct ShipperStats {
    /// Slots ClickHouse took.
    pub slots_shipped: AtomicU64,
    /// Their rows.
    pub rows_shipped: AtomicU64,
    /// Their bytes as sent (JSONEachRow).
    pub bytes_shipped: AtomicU64,
    /// Inserts that failed and were tried again.
    pub failed_tries: AtomicU64,
    /// Slots dropped: the waiting queue was full, or the run ended before ClickHouse
    /// took them and there is no spool.
    pub slots_dropped: AtomicU64,
    /// Slots left in the spool at the end of the run, for the next one.
    pub slots_spooled: AtomicU64,
}

impl std::fmt::Display for ShipperStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        write!(
            f,
            "{} slots shipped ({} rows, {} bytes), {} failed tries, {} slots dropped, \
             {} slots spooled for the next run",
            get(&self.slots_shipped),
            get(&self.rows_shipped),
            get(&self.bytes_shipped),
            get(&self.failed_tries),
            get(&self.slots_dropped),
            get(&self.slots_spooled)
        )
    }
}

/// Ships closed slots to the fleet's ClickHouse from a thread of its own.
pub struct SlotShipper {
    to_thread: Option<Sender<Batch>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<ShipperStats>,
    /// Until when the thread may go on trying once the run ends.
    drain: Arc<AtomicU64>,
    started: Instant,
    spooled: bool,
}

impl SlotShipper {
    /// Starts the thread, with its spool in `state_directory` if there is one (the
    /// slots it holds are sent first). The schema is created on the first insert.
    pub fn start(
        settings: &FleetSettings,
        state_directory: Option<&Path>,
    ) -> std::io::Result<Self> {
        let spool = state_directory.map(Spool::open).transpose()?;
        let spooled = spool.is_some();
        let (to_thread, from_coordinator) = crossbeam_channel::bounded(HANDOVER_SLOTS);
        let stats = Arc::new(ShipperStats::default());
        let drain = Arc::new(AtomicU64::new(u64::MAX));
        let started = Instant::now();
        let client = ClickHouse::new(
            &settings.url,
            settings.user.clone(),
            settings.password.clone(),
        );
        let database = settings.database.clone();
        let table = format!("{}.{TABLE}", settings.database);
        let thread = {
            let stats = Arc::clone(&stats);
            let drain = Arc::clone(&drain);
            std::thread::Builder::new()
                .name("fleet-shipper".into())
                .spawn(move || {
                    let mut shipping = Shipping {
                        client,
                        database,
                        table,
                        schema_made: false,
                        waiting: VecDeque::new(),
                        waiting_bytes: 0,
                        spool,
                        down: false,
                        stats,
                        drain,
                        started,
                    };
                    shipping.take_spooled();
                    shipping.run(from_coordinator)
                })?
        };
        Ok(Self {
            to_thread: Some(to_thread),
            thread: Some(thread),
            stats,
            drain,
            started,
            spooled,
        })
    }

    /// Hands over a slot's rows; never waits. An empty slot is not shipped.
    pub fn offer(&self, slot_start: u64, rows: &[SlotRow]) {
        if rows.is_empty() {
            return;
        }
        let batch = Batch {
            slot_start,
            rows: rows.len(),
            body: json_lines(rows),
            file: None,
        };
        if let Some(to_thread) = &self.to_thread {
            match to_thread.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.stats.slots_dropped.fetch_add(1, Ordering::Relaxed);
                    log::warn!("fleet: the hand-over to the shipper is full; the slot at {slot_start} is dropped");
                }
            }
        }
    }

    /// The shipper's figures so far.
    pub fn stats(&self) -> &ShipperStats {
        &self.stats
    }

    /// Ends the hand-over and waits for the thread to send what waits, for at most
    /// `patience` (a few seconds with a spool); what is still waiting then stays in the
    /// spool, or without one is dropped, and is counted.
    pub fn finish(mut self, patience: Duration) -> Arc<ShipperStats> {
        let patience = if self.spooled {
            patience.min(SPOOLED_PATIENCE)
        } else {
            patience
        };
        let deadline = self.started.elapsed().saturating_add(patience);
        self.drain.store(
            u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        drop(self.to_thread.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("fleet: the shipper thread panicked");
            }
        }
        Arc::clone(&self.stats)
    }
}

impl Drop for SlotShipper {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.drain.store(0, Ordering::Relaxed);
            drop(self.to_thread.take());
        }
    }
}

/// The thread's side.
struct Shipping {
    client: ClickHouse,
    database: Database,
    table: String,
    schema_made: bool,
    waiting: VecDeque<Batch>,
    waiting_bytes: usize,
    spool: Option<Spool>,
    /// The last insert failed: slots handed over go to the spool at once.
    down: bool,
    stats: Arc<ShipperStats>,
    drain: Arc<AtomicU64>,
    started: Instant,
}

impl Shipping {
    /// Queues the slots an earlier run left in the spool, oldest first.
    fn take_spooled(&mut self) {
        let Some(spool) = &self.spool else {
            return;
        };
        match spool.load(MAX_WAITING_BYTES as u64) {
            Ok(batches) => {
                if !batches.is_empty() {
                    log::info!(
                        "fleet: {} slots an earlier run could not ship are sent first",
                        batches.len()
                    );
                }
                for batch in batches {
                    self.push(batch);
                }
            }
            Err(e) => log::error!("fleet: reading the spool: {e}"),
        }
    }

    /// Writes every waiting slot not yet in the spool there.
    fn spool_waiting(&mut self) {
        let Some(spool) = &self.spool else {
            return;
        };
        for batch in &mut self.waiting {
            if let Err(e) = spool.keep(batch) {
                log::error!("fleet: spool: the slot at {}: {e}", batch.slot_start);
                // Memory still holds it; the next failure tries the disk again.
                break;
            }
        }
    }

    fn run(mut self, from_coordinator: Receiver<Batch>) {
        let mut open = true;
        let mut backoff = Duration::ZERO;
        let mut down_since: Option<Instant> = None;
        loop {
            // Take what was handed over; wait for more only when nothing waits, or
            // for the backoff while ClickHouse is down.
            let wait = if self.waiting.is_empty() {
                Duration::from_secs(3600)
            } else {
                backoff
            };
            if open {
                match from_coordinator.recv_timeout(wait) {
                    Ok(batch) => self.push(batch),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
                while let Ok(batch) = from_coordinator.try_recv() {
                    self.push(batch);
                }
            } else if !backoff.is_zero() {
                std::thread::sleep(backoff.min(self.time_left()));
            }
            if !open && (self.waiting.is_empty() || self.time_left().is_zero()) {
                break;
            }
            let Some(batch) = self.waiting.pop_front() else {
                continue;
            };
            let sent = self.send(&batch);
            // Back in front: it leaves the queue only once taken (below).
            self.waiting.push_front(batch);
            match sent {
                Ok(()) => {
                    if let Some(since) = down_since.take() {
                        log::info!(
                            "fleet: {} takes slots again after {:.0?}",
                            self.client.url(),
                            since.elapsed()
                        );
                    }
                    backoff = Duration::ZERO;
                    self.down = false;
                    let batch = self.waiting.pop_front().expect("a batch was in front");
                    Spool::forget(&batch);
                    self.waiting_bytes -= batch.body.len();
                    self.stats.slots_shipped.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .rows_shipped
                        .fetch_add(batch.rows as u64, Ordering::Relaxed);
                    self.stats
                        .bytes_shipped
                        .fetch_add(batch.body.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.failed_tries.fetch_add(1, Ordering::Relaxed);
                    if down_since.is_none() {
                        down_since = Some(Instant::now());
                        log::warn!("fleet: {e}; slots wait and are tried again");
                    }
                    self.schema_made = false;
                    self.down = true;
                    self.spool_waiting();
                    backoff = (backoff * 2).clamp(Duration::from_millis(250), MAX_BACKOFF);
                }
            }
        }
        let left = self.waiting.len() as u64;
        if left > 0 && self.spool.is_some() {
            self.spool_waiting();
            let kept = self.waiting.iter().filter(|b| b.file.is_some()).count() as u64;
            self.stats.slots_spooled.fetch_add(kept, Ordering::Relaxed);
            self.stats
                .slots_dropped
                .fetch_add(left - kept, Ordering::Relaxed);
            log::warn!("fleet: {kept} slots not shipped stay in the spool for the next run");
        } else if left > 0 {
            self.stats.slots_dropped.fetch_add(left, Ordering::Relaxed);
            log::error!("fleet: {left} slots were not shipped before the end of the run");
        }
    }

    /// Time left to send what waits once the run has ended.
    fn time_left(&self) -> Duration {
        let deadline = Duration::from_nanos(self.drain.load(Ordering::Relaxed));
        deadline.saturating_sub(self.started.elapsed())
    }

    fn push(&mut self, batch: Batch) {
        self.waiting_bytes += batch.body.len();
        self.waiting.push_back(batch);
        if self.down {
            self.spool_waiting();
        }
        while self.waiting_bytes > MAX_WAITING_BYTES && self.waiting.len() > 1 {
            if let Some(oldest) = self.waiting.pop_front() {
                self.waiting_bytes -= oldest.body.len();
                Spool::forget(&oldest);
                self.stats.slots_dropped.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "fleet: {} MiB of slots wait for ClickHouse; the oldest, at {}, is dropped",
                    MAX_WAITING_BYTES >> 20,
                    oldest.slot_start
                );
            }
        }
    }

    fn send(&mut self, batch: &Batch) -> Result<(), ClickHouseError> {
        if !self.schema_made {
            ensure_schema(&self.client, &self.database)?;
            self.schema_made = true;
        }
        self.client.insert(&self.table, "JSONEachRow", &batch.body)
    }
}
