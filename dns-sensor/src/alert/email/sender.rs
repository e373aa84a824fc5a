//! The thread that sends: it owns the SMTP client and takes messages from a bounded
//! queue, so the coordinator (which also pings systemd's watchdog) never waits for the
//! network.
//!
//! One message at a time, oldest first. A failed attempt is logged (warning) with the
//! server and the error, then retried after 1 s, 2 s, 4 s... up to
//! [`Delivery::max_retry`] apart, until `give_up_after` has passed since the message was
//! queued: then it is given up (error). A queue already full drops the new message
//! (the caller's error, which the coordinator logs and counts). At the end of a run,
//! [`Sender::finish`] lets the thread go on for at most [`Delivery::flush_wait`] and
//! reports what is still unsent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, RecvTimeoutError, TrySendError};
use lettre::{Message, SmtpTransport, Transport};

use super::{Delivery, EmailError};

/// A message waiting to be sent.
pub(crate) struct Outgoing {
    /// The mail.
    pub(crate) message: Message,
    /// When the evaluation handed it over.
    pub(crate) queued_at: Instant,
    /// What it is about, for log lines: `3 alerts (pirate.sea...)`.
    pub(crate) about: String,
}

/// What the sender has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmailStats {
    /// Messages sent.
    pub sent: u64,
    /// Attempts that failed (each is logged).
    pub failed_attempts: u64,
    /// Messages given up after `give_up_after`.
    pub given_up: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    /// Messages queued or being sent.
    pub pending: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed_attempts: AtomicU64,
    given_up: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn done(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The queue's end and the thread behind it.
pub(crate) struct Sender {
    /// `None` once finished.
    queue: Option<crossbeam_channel::Sender<Outgoing>>,
    capacity: usize,
    /// Tells the thread when the run ends (the deadline to drain by).
    drain: crossbeam_channel::Sender<Instant>,
    /// Disconnects when the thread ends.
    ended: Receiver<()>,
    counters: Arc<Counters>,
    flush_wait: Duration,
}

/// What the thread needs.
struct Worker {
    transport: SmtpTransport,
    label: String,
    give_up_after: Duration,
    first_retry: Duration,
    max_retry: Duration,
    queue: Receiver<Outgoing>,
    drain: Receiver<Instant>,
    /// When the run ends, the queue is sent until then at most.
    drain_by: Option<Instant>,
    counters: Arc<Counters>,
    _ended: crossbeam_channel::Sender<()>,
}

impl Sender {
    /// Starts the thread. `label` names the output in log lines (it names the server).
    pub(crate) fn start(
        transport: SmtpTransport,
        label: String,
        give_up_after: Duration,
        delivery: &Delivery,
    ) -> Result<Self, EmailError> {
        let (queue_tx, queue_rx) = bounded(delivery.queue);
        let (drain_tx, drain_rx) = bounded(1);
        let (ended_tx, ended_rx) = bounded(0);
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            transport,
            label,
            give_up_after,
            first_retry: delivery.first_retry,
            max_retry: delivery.max_retry,
            queue: queue_rx,
            drain: drain_rx,
            drain_by: None,
            counters: Arc::clone(&counters),
            _ended: ended_tx,
        };
        std::thread::Builder::new()
            .name("email".into())
            .spawn(move || worker.run())
            .map_err(EmailError::Thread)?;
        Ok(Self {
            queue: Some(queue_tx),
            capacity: delivery.queue,
            drain: drain_tx,
            ended: ended_rx,
            counters,
            flush_wait: delivery.flush_wait,
        })
    }

    /// Queues a message without waiting: a full queue drops it and says so.
    pub(crate) fn try_send(&self, outgoing: Outgoing) -> Result<(), EmailError> {
        let queue = self.queue.as_ref().ok_or(EmailError::Stopped)?;
        self.counters.pending.fetch_add(1, Ordering::Relaxed);
        match queue.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.counters.done();
                match e {
                    TrySendError::Full(_) => {
                        Counters::add(&self.counters.dropped);
                        Err(EmailError::QueueFull {
                            capacity: self.capacity,
                        })
                    }
                    TrySendError::Disconnected(_) => Err(EmailError::Stopped),
                }
            }
        }
    }

    /// Ends the queue and waits up to `flush_wait` for the thread to send what is in
    /// it (the thread then stops trying). The error counts the messages of the run
    /// that were not sent: given up, or still queued (dropped ones were the error of
    /// their `try_send`).
    pub(crate) fn finish(&mut self) -> Result<(), EmailError> {
        if self.queue.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        let deadline = now.checked_add(self.flush_wait).unwrap_or(now);
        let _ = self.drain.try_send(deadline);
        self.queue = None;
        // Disconnected when the thread has ended; a timeout leaves it to the process's
        // exit.
        let _ = self.ended.recv_deadline(deadline);
        let stats = self.stats();
        if stats.given_up == 0 && stats.pending == 0 {
            return Ok(());
        }
        Err(EmailError::Unsent {
            given_up: stats.given_up,
            left: stats.pending,
            waited: self.flush_wait,
        })
    }

    /// What the thread has done so far.
    pub(crate) fn stats(&self) -> EmailStats {
        let c = &self.counters;
        EmailStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            given_up: c.given_up.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
        }
    }
}

/// The waits between attempts: `first`, doubled each time, at most `max`.
pub(crate) fn backoff(first: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

impl Worker {
    fn run(mut self) {
        loop {
            let next = match self.drain_by {
                None => select! {
                    recv(self.queue) -> outgoing => match outgoing {
                        Ok(outgoing) => outgoing,
                        // The sink went away without finishing.
                        Err(_) => return,
                    },
                    recv(self.drain) -> deadline => {
                        self.drain_by = Some(deadline.unwrap_or_else(|_| Instant::now()));
                        continue;
                    }
                },
                // Finishing: the queue's end is gone, take what is left.
                Some(_) => match self.queue.try_recv() {
                    Ok(outgoing) => outgoing,
                    Err(_) => return,
                },
            };
            self.send(&next);
        }
    }

    /// Tries until sent, given up, or the end of the run's deadline.
    fn send(&mut self, outgoing: &Outgoing) {
        // None: too far to be represented, so never.
        let give_up_at = outgoing.queued_at.checked_add(self.give_up_after);
        let mut failures = 0u32;
        loop {
            if self.drain_by.is_some_and(|by| Instant::now() >= by) {
                // Left in `pending`: the finishing side reports it.
                return;
            }
            let error = match self.transport.send(&outgoing.message) {
                Ok(_) => {
                    Counters::add(&self.counters.sent);
                    self.counters.done();
                    let after = match failures {
                        0 => String::new(),
                        n => format!(" after {} attempts", n + 1),
                    };
                    log::info!("{}: sent {}{after}", self.label, outgoing.about);
                    return;
                }
                Err(e) => e,
            };
            failures += 1;
            Counters::add(&self.counters.failed_attempts);
            let now = Instant::now();
            if give_up_at.is_some_and(|at| now >= at) {
                Counters::add(&self.counters.given_up);
                self.counters.done();
                log::error!(
                    "{}: given up a message of {} after {failures} failed attempt{} over {}: \
                     {error}",
                    self.label,
                    outgoing.about,
                    if failures == 1 { "" } else { "s" },
                    humantime::format_duration(round_ms(
                        now.saturating_duration_since(outgoing.queued_at)
                    )),
                );
                return;
            }
            let wait = backoff(self.first_retry, self.max_retry, failures)
                .min(give_up_at.map_or(Duration::MAX, |at| at - now));
            log::warn!(
                "{}: attempt {failures} failed: {error}; retrying in {}",
                self.label,
                humantime::format_duration(round_ms(wait)),
            );
            self.wait(wait);
        }
    }

    /// Sleeps `wait`, but no later than the end of the run: when it comes, the
    /// message is tried once more at once.
    fn wait(&mut self, wait: Duration) {
        match self.drain_by {
            Some(by) => std::thread::sleep(wait.min(by.saturating_duration_since(Instant::now()))),
            None => match self.drain.recv_timeout(wait) {
                Ok(by) => self.drain_by = Some(by),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.drain_by = Some(Instant::now()),
            },
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let s = Duration::from_secs;
        let waits: Vec<Duration> = (1..=12).map(|n| backoff(s(1), s(300), n)).collect();
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map(s)
        );
        assert_eq!(backoff(s(1), s(300), 40), s(300));
        assert_eq!(backoff(s(1), s(300), u32::MAX), s(300));
        let ms = Duration::from_millis;
        assert_eq!(backoff(ms(100), ms(250), 1), ms(100));
        assert_eq!(backoff(ms(100), ms(250), 3), ms(250));
    }
}
